// Error answers as Tessera documents them, in each protocol's own framing. Four corrections to
// what connect-es 2.1.2 produces (dispatch.ts says why they are made here):
// - protobuf bytes that do not parse are INVALID_ARGUMENT, as in connect-go: connect-es raises
//   INTERNAL "parse binary: ..." before any interceptor runs, and an INTERNAL would page whoever
//   watches error rates for a client's mistake;
// - a JSON message that does not parse, or holds a value of the wrong type, is refused without
//   quoting the request's text (a password or a token in it would come back in the error):
//   "... from JSON: not valid JSON", "... from JSON: expected string, got number";
// - an error connect-es raised itself (a request it cannot read, a message over the size
//   limit, a bad timeout header: no interceptor saw it) gets the google.rpc.ErrorInfo every
//   Tessera error carries, with the reason of its code (error-details.ts);
// - `grpc-message` is percent-encoded as the gRPC spec says (grpc-message.ts).
// Each framing is decoded and re-encoded with connect-es's own codecs: gRPC trailers, the
// gRPC-Web trailer envelope, the Connect unary error body, the Connect end-stream envelope.
import type { JsonWriteOptions } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createAsyncIterable,
  encodeEnvelope,
  envelopeDecompress,
  readAllBytes,
  type Compression,
  type EnvelopedMessage,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  createEndStreamSerialization,
  endStreamFlag,
  errorFromJsonBytes,
  errorToJsonBytes,
  headerStreamEncoding,
  headerUnaryContentLength,
  headerUnaryEncoding,
} from "@connectrpc/connect/protocol-connect";
import {
  findTrailerError,
  grpcStatusOk,
  headerEncoding,
  headerGrpcMessage,
  headerGrpcStatus,
  headerStatusDetailsBin,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { rewriteFinalEnvelope } from "./final-envelope.js";
import { isErrorInfo, withErrorInfo } from "./error-details.js";
import { encodeGrpcMessage } from "./grpc-message.js";
import { credentialShaped } from "../credential-shapes.js";
import { isQuotedRequestText, quotedRequestText } from "../core/text.js";
import { unquotedJsonError } from "../transcode/json-error.js";

/** connect-es's message for protobuf bytes that do not parse (protocol/serialization.ts). */
const parseErrorPrefix = "parse binary: ";

/**
 * The message of a JSON request message that did not parse, without the request's values: V8's
 * JSON.parse messages quote the text around the error (`Unexpected token 'h', ..."password":hunter2"...
 * is not valid JSON`), and protobuf-es quotes the value it refuses (`expected string, got
 * 12345678901`); a password or a token there would come back in the error (transcode/json-error.ts).
 * Undefined when `message` quotes nothing.
 */
function withoutRequestText(message: string): string | undefined {
  const unquoted = unquotedJsonError(message);
  return unquoted === message ? undefined : unquoted;
}

/**
 * connect-es's messages that quote a request header's value (or a Connect GET's `compression`):
 * an unknown compression (content-encoding, connect-content-encoding, grpc-encoding; the value
 * in double quotes), a timeout that does not parse (grpc-timeout, connect-timeout-ms). The text
 * before the value, the value as written, the text after it.
 */
const headerValueMessages = [
  { form: /^(unknown compression )("[\s\S]*")(: supported encodings are [\w,-]*)$/, inQuotes: true },
  { form: /^(protocol error: invalid (?:grpc|connect) timeout value: )([\s\S]*)()$/, inQuotes: false },
];

/**
 * `message` with the header value it quotes as quotedRequestText quotes it; undefined when it
 * quotes none. A message corrected already (an error may pass here twice) stays as it is.
 */
function withHeaderValueShown(message: string, hidden: (text: string) => boolean): string | undefined {
  for (const { form, inQuotes } of headerValueMessages) {
    const m = form.exec(message);
    if (!m) continue;
    const written = m[2]!;
    if (isQuotedRequestText(written, hidden)) return message;
    return `${m[1]}${quotedRequestText(inQuotes ? written.slice(1, -1) : written, hidden)}${m[3]}`;
  }
  return undefined;
}

/**
 * The error Tessera answers instead of `e`, or undefined when `e` is already right. `hidden`
 * says which header values are not to be quoted (unquotable).
 */
export function correctedError(e: ConnectError, hidden: (text: string) => boolean = credentialShaped): ConnectError | undefined {
  let recoded: ConnectError | undefined;
  const unquoted = e.code === Code.InvalidArgument ? withoutRequestText(e.rawMessage) : undefined;
  const shown = unquoted === undefined ? withHeaderValueShown(e.rawMessage, hidden) : undefined;
  if ((e.code === Code.Internal && e.rawMessage.startsWith(parseErrorPrefix)) || unquoted !== undefined) {
    recoded = new ConnectError(unquoted ?? e.rawMessage, Code.InvalidArgument, undefined, undefined, e.cause);
    // An ErrorInfo given for the INTERNAL it was goes with it.
    recoded.details.push(...e.details.filter((d) => !isErrorInfo(d)));
  } else if (shown !== undefined && shown !== e.rawMessage) {
    recoded = new ConnectError(shown, e.code, e.metadata, undefined, e.cause);
    recoded.details.push(...e.details);
  }
  return withErrorInfo(recoded ?? e) ?? recoded;
}

/**
 * Corrects the gRPC status in `trailer` (gRPC trailers, or a parsed gRPC-Web trailer) in place;
 * true when anything changed. An OK status costs one lookup. `failed`, when given, is told the
 * status of an error once corrected, with `about`.
 */
export function correctGrpcStatus<T>(trailer: Headers, hidden?: (text: string) => boolean, failed?: (status: number, about: T) => void, about?: T): boolean {
  const status = trailer.get(headerGrpcStatus);
  if (status === null || status === grpcStatusOk) return false;
  const changed = correctError(trailer, status, hidden);
  failed?.(Number(trailer.get(headerGrpcStatus)), about as T);
  return changed;
}

function correctError(trailer: Headers, status: string, hidden: ((text: string) => boolean) | undefined): boolean {
  let error: ConnectError | undefined;
  try {
    error = findTrailerError(trailer);
  } catch {
    return false; // not connect-es's encoding (a malformed message or details): leave it
  }
  if (!error || String(error.code) !== status) return false;
  const fixed = correctedError(error, hidden);
  if (fixed) {
    // Only the status fields: the trailer already holds the error's metadata.
    const fresh = setTrailerStatus(new Headers(), fixed);
    trailer.set(headerGrpcStatus, fresh.get(headerGrpcStatus)!);
    const details = fresh.get(headerStatusDetailsBin);
    if (details !== null) trailer.set(headerStatusDetailsBin, details);
  }
  const message = encodeGrpcMessage((fixed ?? error).rawMessage);
  if (!fixed && trailer.get(headerGrpcMessage) === message) return false;
  trailer.set(headerGrpcMessage, message);
  return true;
}

export interface ProtocolErrorOptions {
  /** The compressions the router negotiates: a final envelope or a unary error may be compressed. */
  compressions: readonly Compression[];
  /** The router's JSON options (for error details). */
  jsonOptions?: Partial<JsonWriteOptions>;
  /** Which header values an error may not quote (unquotable); credentialShaped by default. */
  hidden?: (text: string) => boolean;
  /**
   * Told the code of every error answered to a call whose method is named (the correction's
   * `call`), as corrected, once it is known (a stream's when it ends), with the protocol its
   * framing is (grpc, grpc-web, connect).
   */
  failed?: (call: AnsweredCall, protocol: string, code: Code) => void;
}

/** The method a response answers (a router's handler names its service and method). */
export interface AnsweredCall {
  readonly service: { readonly typeName: string };
  readonly method: { readonly name: string };
}

/** No bound on reading back what connect-es wrote: it is in memory already. */
const ownBytes = 0xffffffff;

export type ResponseCorrection = (res: UniversalServerResponse, call?: AnsweredCall) => UniversalServerResponse | Promise<UniversalServerResponse>;

/**
 * Returns the function that turns a connect-es response into the one to send. It reads the
 * protocol from the response's content type (the framing connect-es actually produced); a
 * response that can hold no error to correct is returned as it is.
 */
export function createResponseCorrection(o: ProtocolErrorOptions): ResponseCorrection {
  const endStream = createEndStreamSerialization(o.jsonOptions);
  const compression = (name: string | null | undefined) => (name ? o.compressions.find((c) => c.name === name) ?? null : null);
  const decompress = (e: EnvelopedMessage, name: string | null | undefined) => envelopeDecompress(e, compression(name), ownBytes);
  const failed = o.failed;
  const grpcFailed = failed && ((status: number, call: AnsweredCall) => failed(call, "grpc", status));
  const grpcWebFailed = failed && ((status: number, call: AnsweredCall) => failed(call, "grpc-web", status));

  // gRPC: the status travels in HTTP trailers, which the handler fills while its body is read.
  // A writer reads `trailer` once, after the last chunk (universalResponseToNodeResponse does):
  // correcting it at that moment leaves the body untouched and costs a success one lookup.
  function grpc(res: UniversalServerResponse, call: AnsweredCall | undefined): UniversalServerResponse {
    const trailer = res.trailer;
    if (!trailer) return res;
    return {
      status: res.status,
      header: res.header,
      body: res.body,
      get trailer() {
        correctGrpcStatus(trailer, o.hidden, call && grpcFailed, call);
        return trailer;
      },
    };
  }

  // gRPC-Web: the trailers are the body's final envelope.
  function grpcWeb(res: UniversalServerResponse, call: AnsweredCall | undefined): UniversalServerResponse {
    if (!res.body) return res;
    const encoding = res.header?.get(headerEncoding);
    return {
      ...res,
      body: rewriteFinalEnvelope(res.body, trailerFlag, async (envelope) => {
        const trailer = trailerParse((await decompress(envelope, encoding)).data);
        return correctGrpcStatus(trailer, o.hidden, call && grpcWebFailed, call) ? encodeEnvelope(trailerFlag, trailerSerialize(trailer)) : undefined;
      }),
    };
  }

  // Connect streaming: the error is in the end-stream message, the body's final envelope.
  function connectStream(res: UniversalServerResponse, call: AnsweredCall | undefined): UniversalServerResponse {
    if (!res.body) return res;
    const encoding = res.header?.get(headerStreamEncoding);
    return {
      ...res,
      body: rewriteFinalEnvelope(res.body, endStreamFlag, async (envelope) => {
        const end = endStream.parse((await decompress(envelope, encoding)).data);
        const fixed = end.error && correctedError(end.error, o.hidden);
        if (end.error && call && failed) failed(call, "connect", (fixed || end.error).code);
        return fixed ? encodeEnvelope(endStreamFlag, endStream.serialize({ metadata: end.metadata, error: fixed })) : undefined;
      }),
    };
  }

  // Connect unary: a JSON error body whose HTTP status follows the code (a success is 200); the
  // body is one small, already serialized buffer.
  async function connectUnary(res: UniversalServerResponse, call: AnsweredCall | undefined): Promise<UniversalServerResponse> {
    const header = res.header!;
    const bytes = await readAllBytes(res.body!, ownBytes, header.get(headerUnaryContentLength));
    const unchanged = { ...res, body: createAsyncIterable([bytes]) };
    let error: ConnectError;
    try {
      const encoding = header.get(headerUnaryEncoding);
      const c = compression(encoding);
      if (encoding !== null && !c) return unchanged;
      error = errorFromJsonBytes(c ? await c.decompress(bytes, ownBytes) : bytes, undefined, new ConnectError("", Code.Unknown));
    } catch {
      return unchanged;
    }
    const fixed = correctedError(error, o.hidden);
    if (call && failed) failed(call, "connect", (fixed ?? error).code);
    if (!fixed) return unchanged;
    const body = errorToJsonBytes(fixed, o.jsonOptions);
    const fixedHeader = new Headers(header);
    fixedHeader.delete(headerUnaryEncoding);
    fixedHeader.set(headerUnaryContentLength, String(body.byteLength));
    return { status: codeToHttpStatus(fixed.code), header: fixedHeader, body: createAsyncIterable([body]) };
  }

  return (res, call) => {
    const type = res.header?.get("content-type");
    if (!type) return res; // connect-es's own 404/405/415/505: no body
    if (type.startsWith("application/grpc-web")) return grpcWeb(res, call);
    if (type.startsWith("application/grpc")) return grpc(res, call);
    if (type.startsWith("application/connect+")) return connectStream(res, call);
    if (res.status !== 200 && type.startsWith("application/json") && res.body) return connectUnary(res, call);
    return res;
  };
}
