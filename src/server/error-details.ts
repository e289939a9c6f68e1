// The machine-readable details of every error Tessera answers, in every protocol: gRPC and
// gRPC-Web carry them in `grpc-status-details-bin` (a google.rpc.Status), Connect and REST in the
// JSON error's `details` (`{type, value, debug}`), as connect-es encodes them.
// - google.rpc.ErrorInfo on every error: `reason` (UPPER_SNAKE, stable; core/errors.ts `Reasons`,
//   `ServerReasons` below, the transcoder's `TranscodeReasons`) and `domain` "tessera".
//   `metadata` is empty: nothing a client needs beyond the reason is both useful and safe there.
// - google.rpc.RetryInfo when a retry can succeed after a wait (a login lockout, a store outage):
//   the same number of seconds as the Retry-After header.
// - google.rpc.BadRequest when the error is about request fields: one violation per field.
import type http from "node:http";
import type http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { errorToJson } from "@connectrpc/connect/protocol-connect";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { FieldViolation } from "../core/errors.js";
import { shownRequestText } from "../core/text.js";

/** A detail as ConnectError takes it. */
export type OutgoingDetail = NonNullable<ConstructorParameters<typeof ConnectError>[3]>[number];

/** ErrorInfo.domain of every Tessera error. */
export const errorDomain = "tessera";

/**
 * Reasons of the errors the server raises itself, outside the core: connect-es's refusals of a
 * request it cannot read (before any interceptor runs), a method without an implementation, the
 * probes and the CORS check. Where the REST transcoder has a reason for the same failure, the
 * name is the same.
 */
export const ServerReasons = {
  /** The request cannot be read: its message does not parse (binary or JSON), a protocol header or the Host/:authority is malformed, or its HTTP/1.1 bytes do not parse. */
  MALFORMED_REQUEST: "MALFORMED_REQUEST",
  /** The request has two Authorization headers (the core's reason for a credential of the wrong form). */
  MALFORMED_CREDENTIAL: "MALFORMED_CREDENTIAL",
  /** The request message is larger than TESSERA_BODY_LIMIT_BYTES, or its header block (HTTP/1.1) or header list (HTTP/2) larger than 16 KiB (or its :path alone). */
  REQUEST_TOO_LARGE: "REQUEST_TOO_LARGE",
  /** The method, or the request's compression, is not implemented. */
  UNIMPLEMENTED: "UNIMPLEMENTED",
  /** The call's deadline (grpc-timeout, connect-timeout-ms) passed before it was answered, or the request had not arrived by the headers or request timeout. */
  DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED",
  /** The caller canceled the call. */
  CANCELED: "CANCELED",
  /** grpc.health.v1: no such service. */
  SERVICE_NOT_FOUND: "SERVICE_NOT_FOUND",
  /** A stream (grpc.health.v1 Watch, server reflection) past TESSERA_MAX_OPEN_STREAMS. */
  TOO_MANY_STREAMS: "TOO_MANY_STREAMS",
  /** No route for this path (no RPC, no REST binding, no probe). */
  ROUTE_NOT_FOUND: "ROUTE_NOT_FOUND",
  /** The path exists, but not for this HTTP method (`Allow` lists those it takes). */
  METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
  /** A content type (or a Connect GET's encoding) that no protocol of the RPC takes. */
  UNSUPPORTED_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  /** A CORS preflight from an origin TESSERA_CORS_ORIGINS does not list (also core's: a cookie logout from another origin). */
  ORIGIN_NOT_ALLOWED: "ORIGIN_NOT_ALLOWED",
  /** An unexpected failure; details are in the server log only. */
  INTERNAL: "INTERNAL",
} as const;

export type ServerReason = (typeof ServerReasons)[keyof typeof ServerReasons];

export interface ErrorFacts {
  reason: string;
  /** Seconds until a retry may succeed (RetryInfo); unset: a retry cannot help. */
  retryAfterSeconds?: number | undefined;
  fieldViolations?: readonly FieldViolation[];
}

/** Whole seconds, at least 1: the Retry-After header and RetryInfo say the same. */
export function retryAfter(seconds: number): number {
  return Math.max(1, Math.ceil(seconds));
}

/** The details for an error: ErrorInfo, then RetryInfo and BadRequest where they apply. */
export function errorDetails(facts: ErrorFacts): OutgoingDetail[] {
  const details: OutgoingDetail[] = [
    { desc: ErrorInfoSchema, value: { reason: facts.reason, domain: errorDomain } },
  ];
  if (facts.retryAfterSeconds !== undefined) {
    details.push({ desc: RetryInfoSchema, value: { retryDelay: { seconds: BigInt(retryAfter(facts.retryAfterSeconds)) } } });
  }
  if (facts.fieldViolations && facts.fieldViolations.length > 0) {
    details.push({
      desc: BadRequestSchema,
      value: { fieldViolations: facts.fieldViolations.map((v) => ({ field: v.field, description: v.description })) },
    });
  }
  return details;
}

/** The reason of an error connect-es raised itself, by its code. */
export function protocolReason(code: Code): ServerReason {
  switch (code) {
    case Code.InvalidArgument:
      return "MALFORMED_REQUEST";
    case Code.ResourceExhausted:
      return "REQUEST_TOO_LARGE";
    case Code.Unimplemented:
      return "UNIMPLEMENTED";
    case Code.DeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case Code.Canceled:
      return "CANCELED";
    default:
      return "INTERNAL";
  }
}

/** True for a google.rpc.ErrorInfo detail (outgoing, or decoded from the wire). */
export function isErrorInfo(d: ConnectError["details"][number]): boolean {
  return ("desc" in d ? d.desc.typeName : d.type) === ErrorInfoSchema.typeName;
}

/** True when the error carries a google.rpc.ErrorInfo. */
export function hasErrorInfo(e: ConnectError): boolean {
  return e.details.some(isErrorInfo);
}

/**
 * `e` with an ErrorInfo for its code (protocolReason) when it has none; undefined when it has
 * one already.
 */
export function withErrorInfo(e: ConnectError): ConnectError | undefined {
  if (hasErrorInfo(e)) return undefined;
  const fixed = new ConnectError(e.rawMessage, e.code, e.metadata, errorDetails({ reason: protocolReason(e.code) }), e.cause);
  fixed.details.push(...e.details);
  return fixed;
}

/** A ConnectError with its details, for errors the server raises itself. */
export function serverError(code: Code, reason: ServerReason, message: string): ConnectError {
  return new ConnectError(message, code, undefined, errorDetails({ reason }));
}

/**
 * The JSON error body of a plain HTTP answer, in Connect's error format as connect-es writes it
 * (the same `{type, value, debug}` details the RPC errors carry over REST), `details` always
 * present.
 */
export function errorBody(code: Code, reason: ServerReason, message: string): string {
  const json = errorToJson(serverError(code, reason, message), jsonOptions);
  return JSON.stringify({ code: json.code, message, details: json.details ?? [] });
}

/**
 * Answers `status` with errorBody's JSON (after `headers`, e.g. Allow or Vary): every plain HTTP
 * error Tessera makes outside the router and the transcoder.
 */
export function sendErrorBody(
  res: http.ServerResponse | http2.Http2ServerResponse,
  status: number,
  code: Code,
  reason: ServerReason,
  message: string,
  headers: http.OutgoingHttpHeaders = {},
): void {
  const body = errorBody(code, reason, message);
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/**
 * 405 METHOD_NOT_ALLOWED, "<method> is not allowed on <where>", Allow listing `allow`: the
 * method as shownRequestText shows it (`hidden`: see unquotable). HTTP/2's :method is any token
 * the header list holds (HTTP/1.1's parser takes the few dozen methods it knows), and a 405
 * quoted it whole: 15 000 characters back for as many sent.
 */
export function sendMethodNotAllowed(res: http.ServerResponse | http2.Http2ServerResponse, method: string | undefined, where: string, allow: string, hidden: (text: string) => boolean): void {
  sendErrorBody(res, 405, Code.Unimplemented, "METHOD_NOT_ALLOWED", `${shownRequestText(method ?? "", hidden)} is not allowed on ${where}`, { allow });
}

/** The router's JSON options, so `debug` reads as it does in the RPC errors. */
const jsonOptions = { alwaysEmitImplicit: true } as const;
