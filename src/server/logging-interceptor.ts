// One structured log line per call: procedure, protocol, code and duration (the logger adds the
// request id). A stream's line is written when it ends, with its final code: a stream that
// the client abandoned is `canceled`; so is a unary call whose client left before its method
// returned (its deadline passed then: `deadline_exceeded`), whatever the method answered. No
// arguments, no headers: they may hold credentials.
// The same moment feeds the RPC metrics (`observe`), and the call scope learns which API the
// call is for (audit events name it).
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { protocolKey } from "../access/context.js";
import { apiOf, currentCall, signalAborted } from "../call-scope.js";
import type { Logger } from "../logger.js";

/** Told of every finished call: service, method, protocol, code and seconds. */
export type RpcObserver = (service: string, method: string, protocol: string, code: string, seconds: number) => void;

/**
 * Told of every call to a method of the server refused before it reached this interceptor
 * (dispatch.ts, the REST transcoder): service, method, protocol and the code its client got.
 * Such a call writes no `rpc` line and has no latency of its method.
 */
export type RefusalObserver = (service: string, method: string, protocol: string, code: string) => void;

/**
 * Whether the call of the current call scope was refused before this interceptor saw it (it
 * names the call's API in the scope as it enters). Without a scope: false.
 */
export function refusedBeforeInterceptors(): boolean {
  const scope = currentCall();
  return scope !== undefined && scope.api === undefined;
}

/**
 * The protocol of a call: the transport's own name from the context (REST), else told by the
 * request's content type, whose case does not matter (RFC 9110 8.3.1; connect-es serves
 * "Application/gRPC" as gRPC).
 */
export function protocolOf(contentType: string | null, fromContext: string): string {
  if (fromContext) return fromContext;
  const ct = contentType === null ? "" : contentType.toLowerCase();
  if (ct.startsWith("application/grpc-web")) return "grpc-web";
  if (ct.startsWith("application/grpc")) return "grpc";
  return "connect";
}

/** A Connect code as the log and the Connect protocol spell it: "deadline_exceeded". */
export function codeName(e: unknown): string {
  return nameOfCode(e instanceof ConnectError ? e.code : Code.Internal);
}

/** A Connect code's name: Code.InvalidArgument -> "invalid_argument". */
export function nameOfCode(code: Code): string {
  return snake(Code[code]);
}

/**
 * The code a unary call is logged and counted with: the one its method ended with (`code`),
 * unless the call's signal aborted before that, its client gone (CANCELED) or its deadline
 * passed (DEADLINE_EXCEEDED, the signal's reason): then that, as grpc-go and grpc-java count
 * such a call, for the answer reaches nobody. A call without a deadline is not cut short when
 * its client leaves (deadline-interceptor.ts): its method runs to its end, and what it did is
 * the audit trail's to record. A method that ended with CANCELED or DEADLINE_EXCEEDED itself
 * keeps its code (a store call refused at the deadline, and the client's own reset at that
 * deadline arriving first).
 */
function delivered(req: { readonly signal: AbortSignal }, code: string): string {
  if (!signalAborted(req) || code === "canceled" || code === "deadline_exceeded") return code;
  const reason: unknown = req.signal.reason;
  return reason instanceof ConnectError ? codeName(reason) : "canceled";
}

async function* observed<T>(messages: AsyncIterable<T>, end: (code: string) => void): AsyncGenerator<T> {
  let code = "canceled"; // unless it completes or fails: the consumer stopped reading
  try {
    for await (const m of messages) yield m;
    code = "ok";
  } catch (e) {
    code = codeName(e);
    throw e;
  } finally {
    end(code);
  }
}

export function createLoggingInterceptor(logger: Logger, observe?: RpcObserver): Interceptor {
  const apis = new Map<string, string>();
  return (next) => async (req) => {
    const start = performance.now();
    const protocol = protocolOf(req.header.get("content-type"), req.contextValues.get(protocolKey));
    const service = req.method.parent.typeName;
    const procedure = `${service}/${req.method.name}`;
    const scope = currentCall();
    if (scope) {
      let api = apis.get(service);
      if (api === undefined) apis.set(service, (api = apiOf(service)));
      scope.api = api;
    }
    const end = (code: string) => {
      const ms = performance.now() - start;
      logger.info("rpc", { procedure, protocol, code, durationMs: round(ms) });
      observe?.(service, req.method.name, protocol, code, ms / 1000);
    };
    let res;
    try {
      res = await next(req);
    } catch (e) {
      end(delivered(req, codeName(e)));
      throw e;
    }
    if (!res.stream) {
      end(delivered(req, "ok"));
      return res;
    }
    return { ...res, message: observed(res.message, end) };
  };
}

const round = (ms: number) => Math.round(ms * 100) / 100;
const snake = (s: string) => s.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
