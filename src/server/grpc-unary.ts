// Unary calls answered without connect-es's per-protocol handlers: gRPC (over HTTP/2), gRPC-Web
// and Connect (POST), and the REST transcoder's calls.
//
// connect-es serves every gRPC call, unary or not, as a stream: the request body goes through a
// chain of async-iterable transforms (split, decompress, parse envelopes), the implementation is
// invoked through another, and the answer comes back through a third (serialize, compress,
// join, catch), each stage a down-levelled async generator. Measured on this machine
// (bench/floor.ts, CPU per call), that pipeline costs a unary gRPC call about 0.5 ms more than
// the same call over the Connect protocol, whose unary handler reads the body and invokes the
// implementation directly — gRPC, the protocol internal services call Tessera with, was the
// slowest of all.
//
// So a plain unary gRPC request (HTTP/2 POST, `application/grpc` or `application/grpc+proto`, no
// request compression; or the same in gRPC-Web's binary framing, over either HTTP version, one
// uncompressed envelope within the size limit, a timeout header that parses) is answered here,
// with connect-es's own parts (a handler context built as its createHandlerContext builds one,
// less its extra abort signals: unaryContext below), the implementation and the router's
// interceptors (invokeUnaryImplementation, connect-es's own less its signal made for every
// call), the trailer status (setTrailerStatus), and the corrections the
// dispatcher applies to every gRPC answer (protocol-errors.ts: INVALID_ARGUMENT for protobuf
// that does not parse, ErrorInfo on every error, `grpc-message` encoded as the spec says). The
// answer is what connect-es's gRPC handler sends for the call, header for header, compressed as
// it compresses (grpc-accept-encoding, compressMinBytes). Anything else (streams, gRPC+JSON, compressed requests, a body that is
// not exactly one envelope, a message over the limit) is handed to connect-es's handler with the
// bytes already read. test/server/grpc-unary.test.ts holds the two paths to the same answers.
//
// A plain unary Connect POST (`application/json` or `application/proto`, no content-encoding) is
// answered the same way (answerUnaryConnect): connect-es's serialization, error body and
// response compression, without the universal request and response in between.
//
// The REST transcoder invokes unary methods the same way (invokeUnary): it builds the request
// message itself, so the Connect framing in between (encode, the Connect handler reading and
// decoding it, and the same for the answer) is skipped; test/wire pins its answers byte for byte.
import { fromBinary, toBinary, type BinaryReadOptions, type DescMethodUnary, type JsonReadOptions, type JsonWriteOptions, type Message } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type Interceptor, type MethodImplSpec, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { compressedFlag, compressionNegotiate, createMethodSerializationLookup, type Compression } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, endStreamFlag, endStreamToJson, errorToJsonBytes, parseTimeout as parseConnectTimeout, trailerMux } from "@connectrpc/connect/protocol-connect";
import { headerAcceptEncoding, headerEncoding, headerGrpcMessage, parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { addAnswerHeaders } from "../access/context.js";
import type { UnaryCall, UnaryOutcome } from "../transcode/transcoder.js";
import type { NodeRequest, NodeResponse } from "./dispatch.js";
import { encodeGrpcMessage } from "./grpc-message.js";
import { correctedError } from "./protocol-errors.js";
import { arrivalTimedOut } from "../request-arrival.js";
import { callEndKey, callEndOf, type CallEnd } from "../call-scope.js";

export type UnarySpec = MethodImplSpec & { kind: "unary"; method: DescMethodUnary };

export interface GrpcUnaryOptions {
  interceptors: Interceptor[];
  readMaxBytes: number;
  /** How a request message is read: the router's binary options (unknown fields skipped, not kept: dispatch.ts). */
  binaryOptions: Partial<BinaryReadOptions>;
  /** What the Connect protocol needs besides: the router's JSON options and response compression. */
  jsonOptions?: Partial<JsonReadOptions & JsonWriteOptions>;
  compressions: Compression[];
  compressMinBytes: number;
  /** Told of a call refused because its message does not parse (the error it is answered with, the protocol). */
  malformed?: ((spec: UnarySpec, error: ConnectError, protocol: string) => Promise<void>) | undefined;
}

export type UnaryFraming = "grpc" | "grpc-web";

/**
 * The framing of a plain unary call (gRPC over HTTP/2; gRPC-Web, binary, over either HTTP
 * version) of content type `ct` (as the dispatcher passes it on), or undefined for any other
 * request.
 */
export function plainUnaryGrpc(req: NodeRequest, ct: string | null): UnaryFraming | undefined {
  if (req.method !== "POST") return undefined;
  const enc = req.headers["grpc-encoding"];
  // Empty: no coding (the dispatcher's codingHeaders).
  if (enc !== undefined && enc !== "" && enc !== "identity") return undefined;
  if (ct === "application/grpc" || ct === "application/grpc+proto") return req.httpVersionMajor === 2 ? "grpc" : undefined;
  if (ct === "application/grpc-web" || ct === "application/grpc-web+proto") return "grpc-web";
  return undefined;
}

/** The body format of a plain unary Connect call (POST, no request compression: no content-encoding, or an empty one), or undefined. */
export function plainUnaryConnect(req: NodeRequest): "json" | "proto" | undefined {
  if (req.method !== "POST") return undefined;
  const enc = req.headers["content-encoding"];
  if (enc !== undefined && enc !== "") return undefined;
  const ct = req.headers["content-type"];
  return ct === "application/json" ? "json" : ct === "application/proto" ? "proto" : undefined;
}

const serializations = new WeakMap<DescMethodUnary, ReturnType<typeof createMethodSerializationLookup>>();

/**
 * Answers a unary Connect call from `body` as connect-es's Connect handler does (the same
 * serialization, error body, trailers as `trailer-` headers, response compression), and
 * returns true; false, without writing, when the timeout header does not parse.
 */
export async function answerUnaryConnect(
  spec: UnarySpec,
  o: GrpcUnaryOptions,
  type: "json" | "proto",
  res: NodeResponse,
  body: Buffer,
  request: Omit<UnaryCall, "timeoutMs">,
): Promise<boolean> {
  const { header } = request;
  const timeout = parseConnectTimeout(header.get("connect-timeout-ms"), Number.MAX_SAFE_INTEGER);
  if (timeout.error) return false;
  let serialization = serializations.get(spec.method);
  if (!serialization) {
    serialization = createMethodSerializationLookup(spec.method, o.binaryOptions, o.jsonOptions, { readMaxBytes: o.readMaxBytes, writeMaxBytes: 0xffffffff });
    serializations.set(spec.method, serialization);
  }
  const binary = type === "proto";
  const compression = compressionNegotiate(o.compressions, null, header.get("accept-encoding"), "accept-encoding");
  // Set on the caller's object, made for this call: a copy would read its signal (a CallEnd's, call-scope.ts).
  const call: UnaryCall = Object.assign(request, { timeoutMs: timeout.timeoutMs });
  const outcome = await invokeUnary(spec, o.interceptors, "connect", call, binary ? "application/proto" : "application/json", () => serialization.getI(binary).parse(body), o.malformed);
  let status = 200;
  let out: Uint8Array;
  if (outcome.error) {
    status = codeToHttpStatus(outcome.error.code);
    outcome.header.set("content-type", "application/json");
    out = errorToJsonBytes(outcome.error, o.jsonOptions ?? {});
  } else {
    out = serialization.getO(binary).serialize(outcome.message);
  }
  if (compression.response && out.byteLength >= o.compressMinBytes) {
    out = await compression.response.compress(out);
    outcome.header.set("content-encoding", compression.response.name);
  }
  const headers = trailerMux(outcome.header, outcome.trailer);
  headers.set("content-length", String(out.byteLength));
  if (res.destroyed || res.writableEnded) return true;
  res.writeHead(status, nodeHeaders(headers));
  (res as { end(chunk: Uint8Array): void }).end(out);
  return true;
}

const contentTypes: Record<UnaryFraming, string> = { grpc: "application/grpc+proto", "grpc-web": "application/grpc-web+proto" };

/** Calls invoked by invokeUnary (in this process): what shows this path is taken. */
export const unaryInvoked = { count: 0 };

/** The end of a call, given to connect-es's context instead of a fresh DOMException per call. */
const callEnd = new DOMException("This operation was aborted", "AbortError");

/** What readBody rejects with when the client left before the request's body ended. */
export class BodyCutError extends ConnectError {
  constructor() {
    super("the client closed the request before its body ended", Code.Aborted);
  }
}

/**
 * The request body, read until it ends, passes `limit` bytes or `due` (performance.now(), the
 * call's deadline) comes; then the request is left paused, the rest unread (the caller reads it
 * through the request's async iterator). Read with 'data'
 * events rather than that iterator: the iterator's async generator and end-of-stream watch cost
 * a bare node:http2 gRPC answer about a fifth more CPU per call (measured, 16 connections).
 * A client that goes away first is a BodyCutError (the call is counted as canceled), and so is
 * a body the request timeout cut off (counted as deadline_exceeded: request-arrival.ts).
 */
export function readBody(req: NodeRequest, limit: number, due?: number): Promise<{ chunks: Buffer[]; size: number; done: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cut = () => {
      settle();
      req.pause();
      resolve({ chunks, size, done: false });
    };
    const timer = due === undefined ? undefined : setTimeout(cut, Math.max(0, due - performance.now()));
    const settle = () => {
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limit) cut();
    };
    const onEnd = () => {
      settle();
      // The request timeout's 408 closed its HTTP/2 stream, which ends the body: not whole.
      if (arrivalTimedOut(req)) reject(new BodyCutError());
      else resolve({ chunks, size, done: true });
    };
    const onError = (e: NodeJS.ErrnoException) => {
      settle();
      // Node's HTTP/1.1 request emits ECONNRESET ("aborted") when its client leaves mid-body,
      // before 'close': the same client gone away.
      reject(e.code === "ECONNRESET" ? new BodyCutError() : e);
    };
    const onClose = () => {
      settle();
      reject(new BodyCutError());
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

/**
 * Answers the call from `body` (the whole request body) and returns true, or returns false
 * without writing anything when the body is not exactly one uncompressed envelope of at most
 * readMaxBytes or the timeout header does not parse (the caller hands it to connect-es).
 */
export async function answerUnaryGrpc(
  spec: UnarySpec,
  o: GrpcUnaryOptions,
  framing: UnaryFraming,
  res: NodeResponse,
  body: Buffer,
  request: Omit<UnaryCall, "timeoutMs">,
): Promise<boolean> {
  const { header } = request;
  if (body.length < 5 || body[0] !== 0) return false;
  const length = body.readUInt32BE(1);
  if (length !== body.length - 5 || length > o.readMaxBytes) return false;
  const timeout = parseTimeout(header.get("grpc-timeout"), Number.MAX_SAFE_INTEGER);
  if (timeout.error) return false;
  // Set on the caller's object, made for this call: a copy would read its signal (a CallEnd's, call-scope.ts).
  const call: UnaryCall = Object.assign(request, { timeoutMs: timeout.timeoutMs });
  const outcome = await invokeUnary(spec, o.interceptors, framing, call, contentTypes[framing], () => {
    try {
      return fromBinary(spec.method.input, body.subarray(5), o.binaryOptions);
    } catch (e) {
      throw new ConnectError(`parse binary: ${e instanceof Error ? e.message : String(e)}`, Code.Internal);
    }
  }, o.malformed);
  const { header: responseHeader, trailer } = outcome;
  // The answer's compression, as connect-es's gRPC and gRPC-Web handlers choose it: the first
  // name in grpc-accept-encoding that the server has (the request is uncompressed here, so with
  // no grpc-accept-encoding there is none), named in grpc-encoding whatever the answer's size;
  // each envelope of at least compressMinBytes is compressed (gRPC-Web's trailer envelope too).
  const compression = compressionNegotiate(o.compressions, null, header.get(headerAcceptEncoding), headerAcceptEncoding).response;
  if (compression) responseHeader.set(headerEncoding, compression.name);
  const compressed = (flags: number, data: Uint8Array) =>
    compression && data.byteLength >= o.compressMinBytes ? compression.compress(data).then((c) => envelope(flags | compressedFlag, c)) : envelope(flags, data);
  let out: Buffer | undefined;
  if (outcome.error) {
    setGrpcError(trailer, outcome.error);
  } else {
    out = await compressed(0, toBinary(spec.method.output, outcome.message));
  }
  // gRPC-Web: the trailers are the body's last envelope.
  const trailerEnvelope = framing === "grpc-web" ? await compressed(trailerFlag, trailerSerialize(trailer)) : undefined;
  if (res.destroyed || res.writableEnded) return true;
  res.writeHead(200, nodeHeaders(responseHeader));
  const write = (b: Buffer) => (res as { write(chunk: Buffer): boolean }).write(b);
  if (out !== undefined) write(out);
  if (trailerEnvelope === undefined) res.addTrailers(nodeHeaders(trailer));
  else write(trailerEnvelope);
  res.end();
  return true;
}

/**
 * Invokes a unary method as connect-es's handlers do (its handler context, the router's
 * interceptors, the implementation), with the error corrections every Tessera answer gets
 * (protocol-errors.ts). `input` may throw a ConnectError (a message that does not parse): it
 * is that call's error. The response header starts with `contentType`; the trailer with
 * grpc-status 0 for the gRPC framings. On an error, its metadata joins the trailer (gRPC) or
 * the header (Connect), as connect-es's handlers place it. The call's answer headers
 * (answerHeaders) join the header, whatever the outcome and the framing. `malformed` is told when `input` threw
 * (with the error answered), before the answer is made.
 */
export async function invokeUnary(
  spec: UnarySpec,
  interceptors: Interceptor[],
  protocolName: string,
  call: UnaryCall,
  contentType: string,
  input: () => Message,
  malformed?: (spec: UnarySpec, error: ConnectError, protocol: string) => Promise<void>,
): Promise<UnaryOutcome> {
  unaryInvoked.count++;
  const grpc = protocolName !== "connect";
  const context = unaryContext(spec, protocolName, call, contentType, grpc);
  let parsed = false;
  try {
    const request = input();
    parsed = true;
    const message = await invokeUnaryImplementation(spec, context, request, interceptors);
    return { message, header: context.responseHeader, trailer: context.responseTrailer };
  } catch (e) {
    const raised = e instanceof ConnectError ? e : new ConnectError("internal error", Code.Internal, undefined, undefined, e);
    const error = correctedError(raised) ?? raised;
    if (!parsed && malformed) await malformed(spec, error, protocolName);
    if (!grpc) error.metadata.forEach((value, key) => context.responseHeader.set(key, value));
    return { error, header: context.responseHeader, trailer: context.responseTrailer };
  } finally {
    // Into the header either outcome returned (the same Headers), after an error's metadata.
    addAnswerHeaders(call.contextValues, context.responseHeader);
    context.end();
  }
}

/**
 * What a unary call is invoked with (unaryContext): connect-es's handler context, but for its
 * signal, made only when something asks for it (`signalOf()`; a CallEnd's, call-scope.ts).
 */
interface UnaryContext extends Omit<HandlerContext, "signal"> {
  signalOf(): AbortSignal;
  readonly [callEndKey]: CallEnd | undefined;
  end(): void;
}

/**
 * The request the router's interceptors get (connect-es's UnaryRequest, the same fields), its
 * signal the context's, read when asked for. A class: an object literal with a getter costs V8
 * a map of its own, several µs a call. The signal is an own, enumerable accessor (one shared
 * descriptor, about 0.2 µs a call), so that a copy an interceptor passes on spread
 * (`next({ ...req, message })`, as connect-es's Interceptor allows) carries the signal itself:
 * a getter of the prototype is not copied, and the copy had none (undefined in the
 * implementation's context; a TypeError in an interceptor asking signalAborted).
 */
class UnaryCallRequest implements UnaryRequest {
  readonly stream = false;
  readonly requestMethod: string;
  readonly url: string;
  readonly header: Headers;
  readonly service: UnaryRequest["service"];
  readonly contextValues: UnaryRequest["contextValues"];
  readonly [callEndKey]: CallEnd | undefined;
  declare readonly signal: AbortSignal;
  readonly #context: UnaryContext;

  static readonly #signal: PropertyDescriptor = {
    get(this: UnaryCallRequest): AbortSignal {
      return this.#context.signalOf();
    },
    enumerable: true,
  };

  constructor(
    readonly message: Message,
    readonly method: DescMethodUnary,
    context: UnaryContext,
  ) {
    this.requestMethod = context.requestMethod;
    this.url = context.url;
    this.header = context.requestHeader;
    this.service = method.parent;
    this.contextValues = context.values;
    this[callEndKey] = context[callEndKey];
    this.#context = context;
    Object.defineProperty(this, "signal", UnaryCallRequest.#signal);
  }
}

/** The implementation's context, as connect-es merges it from the handler's and the request the interceptors passed on. */
class ImplementationContext implements HandlerContext {
  readonly service: HandlerContext["service"];
  readonly method: HandlerContext["method"];
  readonly protocolName: string;
  readonly requestMethod: string;
  readonly url: string;
  readonly timeoutMs: HandlerContext["timeoutMs"];
  readonly requestHeader: Headers;
  readonly responseHeader: Headers;
  readonly responseTrailer: Headers;
  readonly values: HandlerContext["values"];
  readonly [callEndKey]: CallEnd | undefined;
  readonly #req: UnaryRequest;

  constructor(context: UnaryContext, req: UnaryRequest) {
    this.service = req.service;
    this.method = context.method;
    this.protocolName = context.protocolName;
    this.requestMethod = context.requestMethod;
    this.url = context.url;
    this.timeoutMs = context.timeoutMs;
    this.requestHeader = req.header;
    this.responseHeader = context.responseHeader;
    this.responseTrailer = context.responseTrailer;
    this.values = req.contextValues;
    this[callEndKey] = callEndOf(req);
    this.#req = req;
  }

  get signal(): AbortSignal {
    return this.#req.signal;
  }
}

/**
 * connect-es's invokeUnaryImplementation (protocol/invoke-implementation.ts, 2.1.2: the router's
 * interceptors around the implementation, its output normalized, the header and trailer the
 * interceptors answer copied into the context's), but for the signal: the interceptors' request
 * and the implementation's context read the context's when asked for, where connect-es copies
 * it into both at once, which made a CallEnd's signal for every call (call-scope.ts).
 */
async function invokeUnaryImplementation(spec: UnarySpec, context: UnaryContext, input: Message, interceptors: Interceptor[]): Promise<Message> {
  const anyFn = async (req: UnaryRequest): Promise<UnaryResponse> => {
    const message = create(spec.method.output, await spec.impl(req.message, new ImplementationContext(context, req)));
    return { message, stream: false, method: spec.method, service: spec.method.parent, header: context.responseHeader, trailer: context.responseTrailer };
  };
  let next = anyFn as (req: UnaryRequest) => Promise<UnaryResponse>;
  for (const i of interceptors.concat().reverse()) next = i(next as Parameters<Interceptor>[0]) as typeof next;
  const { message, header, trailer } = await next(new UnaryCallRequest(input, spec.method, context));
  copyHeaders(header, context.responseHeader);
  copyHeaders(trailer, context.responseTrailer);
  return message;
}

/** connect-es's copyHeaders: `to` made the same as `from`. */
function copyHeaders(from: Headers, to: Headers): void {
  if (from === to) return;
  to.forEach((_, key) => to.delete(key));
  from.forEach((value, key) => to.set(key, value));
}

/**
 * The handler context of one unary call: what connect-es's createHandlerContext builds, less two
 * of its per-call costs. It makes two AbortControllers (a deadline's, even with no deadline, and
 * one linked to it and to the request's signal) beside the request's own, and copies the
 * request's Headers; creating, linking and finally aborting those signals was about 8 % of a gRPC
 * token check's process (bench/profile.ts). Here the call's signal is the request's own (which
 * aborts when the client leaves before its answer; made only when something asks for it,
 * signalOf), linked to a deadline only when the call has one; the request's Headers, built for this call alone, are used as they are. `end()`, once the
 * answer is made, stops the deadline.
 */
function unaryContext(spec: UnarySpec, protocolName: string, call: UnaryCall, contentType: string, grpc: boolean): UnaryContext {
  // Without a deadline the call's own signal, read when asked for (a CallEnd's is made then).
  let signal: AbortSignal | undefined;
  let end = () => {};
  let timeoutMs = (): number | undefined => undefined;
  if (call.timeoutMs !== undefined) {
    // On the monotonic clock: a wall clock stepped mid-call must not move the deadline.
    const deadline = performance.now() + call.timeoutMs;
    timeoutMs = () => deadline - performance.now();
    const controller = new AbortController();
    const left = () => controller.abort(call.signal.reason);
    const timedOut = () => controller.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    // A deadline that has passed on arrival (a timeout of 0) ends the call at once, as
    // connect-es's createDeadlineSignal ends it: a timer would let a call that never waits answer.
    const timer = call.timeoutMs > 0 ? setTimeout(timedOut, call.timeoutMs) : undefined;
    if (timer === undefined) timedOut();
    if (call.signal.aborted) left();
    else call.signal.addEventListener("abort", left, { once: true });
    signal = controller.signal;
    end = () => {
      clearTimeout(timer);
      call.signal.removeEventListener("abort", left);
      controller.abort(callEnd);
    };
  }
  // Headers made empty and then set: an object given to the constructor goes through its
  // WebIDL record conversion first, which cost five times the set (about 1.5 µs a Headers).
  const responseHeader = new Headers();
  responseHeader.set("content-type", contentType);
  const responseTrailer = new Headers();
  if (grpc) responseTrailer.set("grpc-status", "0");
  return {
    service: spec.method.parent,
    method: spec.method,
    protocolName,
    requestMethod: "POST",
    url: call.url,
    signalOf: signal === undefined ? () => call.signal : () => signal,
    [callEndKey]: signal === undefined ? callEndOf(call) : undefined,
    timeoutMs,
    requestHeader: call.header,
    responseHeader,
    responseTrailer,
    values: call.contextValues,
    end,
  };
}

/** Sets `error` in a gRPC trailer: its status and details, grpc-message encoded as gRPC's spec has it. */
export function setGrpcError(trailer: Headers, error: ConnectError): void {
  setTrailerStatus(trailer, error);
  // connect-es percent-encodes every character outside its safe set; gRPC's spec, fewer.
  trailer.set(headerGrpcMessage, encodeGrpcMessage(error.rawMessage));
}

/**
 * The framing of a call's error answer that is no JSON body: gRPC (the status in the trailers),
 * gRPC-Web (the body's one trailer envelope; -text: in base64), a Connect stream (HTTP 200 and
 * the end-stream message carrying the error).
 */
export type FramedError = "grpc" | "grpc-web" | "grpc-web-text" | "connect-stream";

/**
 * The framing a POST of content type `contentType` (its media type, parameters left out) takes
 * for an error, told from that type alone (a gRPC or gRPC-Web type, a Connect streaming type);
 * undefined for any other request, answered with a JSON error body (a Connect unary call's is its
 * error JSON).
 */
export function errorFramingOf(req: NodeRequest, contentType: string): FramedError | undefined {
  if (req.method !== "POST") return undefined;
  const grpc = /^application\/grpc(-web(-text)?)?(?:\+|$)/i.exec(contentType);
  if (grpc) return grpc[1] === undefined ? "grpc" : grpc[2] === undefined ? "grpc-web" : "grpc-web-text";
  return /^application\/connect\+/i.test(contentType) ? "connect-stream" : undefined;
}

/** Answers `error` in `framing`, the answer's content type `contentType` (the request's). */
export function sendFramedError(req: NodeRequest, res: NodeResponse, framing: FramedError, contentType: string, error: ConnectError): void {
  if (framing === "connect-stream") {
    res.writeHead(200, { "content-type": contentType.toLowerCase() });
    const end = Buffer.from(JSON.stringify(endStreamToJson(new Headers(), error, undefined)));
    (res as { end(chunk: Buffer): void }).end(envelope(endStreamFlag, end));
    return;
  }
  const trailer = new Headers();
  setGrpcError(trailer, error);
  if (framing === "grpc") {
    if (req.httpVersionMajor !== 2) {
      // Trailers-only: HTTP/1.1 carries trailers only after a chunked body.
      res.writeHead(200, { "content-type": contentType, ...nodeHeaders(trailer) });
      res.end();
      return;
    }
    res.writeHead(200, { "content-type": contentType });
    res.addTrailers(nodeHeaders(trailer));
    res.end();
    return;
  }
  res.writeHead(200, { "content-type": contentType });
  // gRPC-Web: the trailers are the body's one envelope (in base64 for the text mode).
  const frame = envelope(trailerFlag, trailerSerialize(trailer));
  (res as { end(chunk: Buffer): void }).end(framing === "grpc-web" ? frame : Buffer.from(frame.toString("base64"), "latin1"));
}

/** One gRPC envelope: its flags, its length, the data. */
export function envelope(flags: number, data: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + data.length);
  frame[0] = flags;
  frame.writeUInt32BE(data.length, 1);
  frame.set(data, 5);
  return frame;
}

/** Fetch Headers as Node's header object (Set-Cookie kept as its several lines). */
export function nodeHeaders(h: Headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  h.forEach((v, k) => {
    out[k] = v;
  });
  const cookies = h.getSetCookie();
  if (cookies.length > 0) out["set-cookie"] = cookies;
  return out;
}
