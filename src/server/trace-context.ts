// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` a caller sends on
// any protocol (an HTTP header; gRPC metadata is HTTP/2 headers too), read leniently as the
// recommendation says: a header that does not parse is ignored and the call starts a new trace.
// Each call gets a span id of its own; the answer carries `traceparent` with the call's trace id
// and that span id, so a caller can find the server's side of its call.
import { randomHex } from "../core/random-pool.js";

export interface TraceParent {
  traceId: string;
  /** The caller's span: the parent of this call's. */
  spanId: string;
  /**
   * Trace flags: "01" (sampled) or "00". Flags version 00 does not define are dropped (W3C:
   * vendors MUST set them to zero), so they never come back in the answer's traceparent.
   */
  flags: string;
}

const header = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const zeroTrace = "0".repeat(32);
const zeroSpan = "0".repeat(16);

/** The caller's trace context, or undefined when there is none or it is invalid. */
export function parseTraceparent(value: string | string[] | undefined): TraceParent | undefined {
  if (typeof value !== "string" || value.length > 512) return undefined;
  const m = header.exec(value.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  // Version ff is invalid; version 00 has exactly four fields; a later version may have more.
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (traceId === zeroTrace || spanId === zeroSpan) return undefined;
  return { traceId, spanId, flags: parseInt(flags, 16) & 1 ? "01" : "00" };
}

/** `tracestate` as sent, when it is plausible (at most 512 characters of printable ASCII). */
export function parseTracestate(value: string | string[] | undefined): string | undefined {
  if (typeof value !== "string" || value.length === 0 || value.length > 512 || !/^[\x20-\x7e]*$/.test(value)) return undefined;
  return value;
}

export function formatTraceparent(traceId: string, spanId: string, flags: string): string {
  return `00-${traceId}-${spanId}-${flags}`;
}

/** A new span id: 16 hex digits, never all zero. */
export function newSpanId(): string {
  let id = randomHex(8);
  while (id === zeroSpan) id = randomHex(8);
  return id;
}

/** A new trace id: 32 hex digits, never all zero. */
export function newTraceId(): string {
  let id = randomHex(16);
  while (id === zeroTrace) id = randomHex(16);
  return id;
}
