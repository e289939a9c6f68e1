// Trace correlation for every call: the W3C trace context in, a span id per call, `trace_id` and
// `span_id` in every log line and audit event (through the call scope), `traceparent` out.
//
// Spans are exported only when OTEL_EXPORTER_OTLP_ENDPOINT is set: the OpenTelemetry SDK is then
// loaded (dynamic import of ./otel.ts) and spans are recorded for calls, store operations and
// password hashing. Unset, none of the SDK is loaded and a call costs two random ids.
import type { CallScope } from "../call-scope.js";
import { currentCall } from "../call-scope.js";
import type { StoreCallHook } from "../store/instrumented.js";
import { newSpanId, newTraceId, type TraceParent } from "./trace-context.js";

/** A call's span as the server sees it. */
export interface CallSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly flags: string;
  /** Names the span by its RPC and records the outcome (an exporter's span only). */
  rpc?(service: string, method: string, protocol: string, code: string): void;
  end(httpStatus: number): void;
}

export interface Tracing {
  /** True when spans are exported (the SDK is loaded). */
  readonly exporting: boolean;
  startCall(name: string, parent: TraceParent | undefined, tracestate: string | undefined): CallSpan;
  /** Store operations as child spans of the current call's (exporting only). */
  storeHook?: StoreCallHook;
  /** Hashing as a child span of the current call's (exporting only). */
  aroundHash?<T>(job: () => Promise<T>): Promise<T>;
  /** Flushes and stops the exporter; never rejects (a collector that is down loses the last spans). */
  shutdown(): Promise<void>;
}

/** Ids only: no span is recorded anywhere. */
export const idsOnly: Tracing = {
  exporting: false,
  startCall(_name, parent) {
    return { traceId: parent?.traceId ?? newTraceId(), spanId: newSpanId(), flags: parent?.flags ?? "01", end() {} };
  },
  async shutdown() {},
};

// The methods OpenTelemetry's HTTP conventions know (http.request.method); another is "_OTHER".
const knownMethods = new Set(["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"]);

/**
 * A call's span name until it reaches a method (which renames it "pkg.Service/Method"): its HTTP
 * method alone, "HTTP" for one the conventions do not know. Never the path: it may hold a
 * credential (seed 003's /api/authenticationtoken/{token}), and a name per path has no bound.
 */
export function httpSpanName(method: string | undefined): string {
  return method !== undefined && knownMethods.has(method) ? method : "HTTP";
}

/** Tracing for this configuration: with an OTLP endpoint, the SDK, loaded now. */
export async function createTracing(otlpEndpoint: string | undefined, serviceVersion: string): Promise<Tracing> {
  if (!otlpEndpoint) return idsOnly;
  const { createOtelTracing } = await import("./otel.js");
  return createOtelTracing(otlpEndpoint, serviceVersion, currentSpan);
}

/** The current call's span, for child spans. */
function currentSpan(): unknown {
  return currentCall()?.span;
}

/** Puts a call's ids into its scope (log lines and audit events read them there). */
export function enterSpan(scope: CallScope, span: CallSpan): void {
  scope.traceId = span.traceId;
  scope.spanId = span.spanId;
  scope.span = span;
}
