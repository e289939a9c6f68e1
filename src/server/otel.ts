// The OpenTelemetry SDK behind Tracing (tracing.ts), loaded only when OTEL_EXPORTER_OTLP_ENDPOINT
// is set. Spans go out in batches over OTLP/HTTP (JSON) to `<endpoint>/v1/traces`; the other
// OTEL_* variables the SDK reads (OTEL_SERVICE_NAME, OTEL_BSP_*, OTEL_EXPORTER_OTLP_HEADERS)
// apply. A call's span continues the caller's trace (W3C traceparent/tracestate); the SDK's
// parent-based sampler follows the caller's sampled flag.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, createTraceState, type Span, type Tracer } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import type { CallSpan, Tracing } from "./tracing.js";
import { withoutTrailingSlashes } from "../core/text.js";

/** The SDK span behind a CallSpan. */
const sdkSpans = new WeakMap<object, Span>();

function childOf(tracer: Tracer, name: string, kind: SpanKind, parent: unknown): Span | undefined {
  const span = parent === undefined ? undefined : sdkSpans.get(parent as object);
  if (span === undefined) return undefined;
  return tracer.startSpan(name, { kind }, trace.setSpan(ROOT_CONTEXT, span));
}

async function within<T>(span: Span | undefined, work: () => Promise<T>): Promise<T> {
  if (span === undefined) return work();
  try {
    return await work();
  } catch (e) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.name : "error" });
    throw e;
  } finally {
    span.end();
  }
}

/** `currentSpan`: the current call's span (its CallSpan), read from the call scope by the caller's module. */
export function createOtelTracing(endpoint: string, serviceVersion: string, currentSpan: () => unknown): Tracing {
  const exporter = new OTLPTraceExporter({ url: `${withoutTrailingSlashes(endpoint)}/v1/traces` });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": process.env.OTEL_SERVICE_NAME || "tessera", "service.version": serviceVersion }),
    spanProcessors: [new BatchSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer("tessera", serviceVersion);

  return {
    exporting: true,
    startCall(name, parent, tracestate) {
      const context = parent
        ? trace.setSpanContext(ROOT_CONTEXT, {
            traceId: parent.traceId,
            spanId: parent.spanId,
            traceFlags: parseInt(parent.flags, 16) & TraceFlags.SAMPLED,
            isRemote: true,
            ...(tracestate !== undefined && { traceState: createTraceState(tracestate) }),
          })
        : ROOT_CONTEXT;
      const span = tracer.startSpan(name, { kind: SpanKind.SERVER }, context);
      const ids = span.spanContext();
      const call: CallSpan = {
        traceId: ids.traceId,
        spanId: ids.spanId,
        flags: ids.traceFlags.toString(16).padStart(2, "0"),
        rpc(service, method, protocol, code) {
          span.updateName(`${service}/${method}`);
          span.setAttributes({ "rpc.system": protocol === "grpc" ? "grpc" : "connect_rpc", "rpc.service": service, "rpc.method": method, "tessera.protocol": protocol, "rpc.response.code": code });
          if (code !== "ok") span.setStatus({ code: SpanStatusCode.ERROR, message: code });
        },
        end(httpStatus) {
          span.setAttribute("http.response.status_code", httpStatus);
          span.end();
        },
      };
      sdkSpans.set(call, span);
      return call;
    },
    storeHook: (operation, call) => within(childOf(tracer, `store ${operation}`, SpanKind.CLIENT, currentSpan()), call),
    aroundHash: (job) => within(childOf(tracer, "argon2id", SpanKind.INTERNAL, currentSpan()), job),
    shutdown: () => provider.shutdown().catch(() => {}),
  };
}
