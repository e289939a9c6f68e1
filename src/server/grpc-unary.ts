// Unary gRPC calls (over HTTP/2) and gRPC-Web calls, answered without connect-es's streaming pipeline.
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
// request compression; or the same in gRPC-Web's binary framing, over either HTTP version, one uncompressed envelope within the size limit, a timeout header that
// parses) is answered here, with connect-es's own parts: the handler context
// (createHandlerContext), the implementation and the router's interceptors
// (invokeUnaryImplementation), the trailer status (setTrailerStatus), and the corrections the
// dispatcher applies to every gRPC answer (protocol-errors.ts: INVALID_ARGUMENT for protobuf
// that does not parse, ErrorInfo on every error, `grpc-message` encoded as the spec says). The
// answer is what connect-es's gRPC handler sends for the call, header for header, without
// response compression. Anything else (streams, gRPC+JSON, compressed requests, a body that is
// not exactly one envelope, a message over the limit) is handed to connect-es's handler with the
// bytes already read. test/server/grpc-unary.test.ts holds the two paths to the same answers.
import { fromBinary, toBinary, type DescMethodUnary } from "@bufbuild/protobuf";
import { Code, ConnectError, createHandlerContext, type ContextValues, type Interceptor, type MethodImplSpec } from "@connectrpc/connect";
import { invokeUnaryImplementation } from "@connectrpc/connect/protocol";
import { headerGrpcMessage, parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import type { NodeRequest, NodeResponse } from "./dispatch.js";
import { encodeGrpcMessage } from "./grpc-message.js";
import { correctedError } from "./protocol-errors.js";

export type UnarySpec = MethodImplSpec & { kind: "unary"; method: DescMethodUnary };

export interface GrpcUnaryOptions {
  interceptors: Interceptor[];
  readMaxBytes: number;
}

export type UnaryFraming = "grpc" | "grpc-web";

/**
 * The framing of a plain unary call (gRPC over HTTP/2; gRPC-Web, binary, over either HTTP
 * version), or undefined for any other request.
 */
export function plainUnaryGrpc(req: NodeRequest): UnaryFraming | undefined {
  if (req.method !== "POST") return undefined;
  const enc = req.headers["grpc-encoding"];
  if (enc !== undefined && enc !== "identity") return undefined;
  const ct = req.headers["content-type"];
  if (ct === "application/grpc" || ct === "application/grpc+proto") return req.httpVersionMajor === 2 ? "grpc" : undefined;
  if (ct === "application/grpc-web" || ct === "application/grpc-web+proto") return "grpc-web";
  return undefined;
}

const contentTypes: Record<UnaryFraming, string> = { grpc: "application/grpc+proto", "grpc-web": "application/grpc-web+proto" };

/** Calls this path answered (in this process): what shows it is taken. */
export const grpcUnaryAnswered = { count: 0 };

/** The end of a call, given to connect-es's context instead of a fresh DOMException per call. */
const callEnd = new DOMException("This operation was aborted", "AbortError");

/** The request body, read until it ends or passes `limit` bytes. */
export async function readBody(it: AsyncIterator<Buffer>, limit: number): Promise<{ chunks: Buffer[]; size: number; done: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) return { chunks, size, done: true };
    chunks.push(r.value);
    size += r.value.length;
    if (size > limit) return { chunks, size, done: false };
  }
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
  header: Headers,
  url: string,
  signal: AbortSignal,
  contextValues: ContextValues,
): Promise<boolean> {
  if (body.length < 5 || body[0] !== 0) return false;
  const length = body.readUInt32BE(1);
  if (length !== body.length - 5 || length > o.readMaxBytes) return false;
  const timeout = parseTimeout(header.get("grpc-timeout"), Number.MAX_SAFE_INTEGER);
  if (timeout.error) return false;
  const context = createHandlerContext({
    service: spec.method.parent,
    method: spec.method,
    protocolName: framing,
    requestMethod: "POST",
    timeoutMs: timeout.timeoutMs,
    requestSignal: signal,
    requestHeader: header,
    url,
    responseHeader: { "content-type": contentTypes[framing] },
    responseTrailer: { "grpc-status": "0" },
    contextValues,
  });
  let out: Uint8Array | undefined;
  try {
    let input;
    try {
      input = fromBinary(spec.method.input, body.subarray(5));
    } catch (e) {
      throw new ConnectError(`parse binary: ${e instanceof Error ? e.message : String(e)}`, Code.Internal);
    }
    const message = await invokeUnaryImplementation(spec, context, input, o.interceptors);
    out = toBinary(spec.method.output, message);
  } catch (e) {
    const error = e instanceof ConnectError ? e : new ConnectError("internal error", Code.Internal, undefined, undefined, e);
    out = undefined;
    setTrailerStatus(context.responseTrailer, correctedError(error) ?? error);
    const m = context.responseTrailer.get(headerGrpcMessage);
    if (m !== null) context.responseTrailer.set(headerGrpcMessage, encodeGrpcMessage(decodeURIComponent(m)));
  } finally {
    context.abort(callEnd);
  }
  grpcUnaryAnswered.count++;
  if (res.destroyed || res.writableEnded) return true;
  res.writeHead(200, nodeHeaders(context.responseHeader));
  const write = (b: Buffer) => (res as { write(chunk: Buffer): boolean }).write(b);
  if (out !== undefined) write(envelope(0, out));
  if (framing === "grpc") {
    res.addTrailers(nodeHeaders(context.responseTrailer));
  } else {
    // gRPC-Web: the trailers are the body's last envelope.
    write(envelope(trailerFlag, trailerSerialize(context.responseTrailer)));
  }
  res.end();
  return true;
}

function envelope(flags: number, data: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + data.length);
  frame[0] = flags;
  frame.writeUInt32BE(data.length, 1);
  frame.set(data, 5);
  return frame;
}

function nodeHeaders(h: Headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  h.forEach((v, k) => {
    out[k] = v;
  });
  const cookies = h.getSetCookie();
  if (cookies.length > 0) out["set-cookie"] = cookies;
  return out;
}
