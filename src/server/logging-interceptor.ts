// One structured log line per call: procedure, protocol, code and duration. No arguments, no
// headers: they may hold credentials.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { protocolKey } from "../access/context.js";
import type { Logger } from "../logger.js";

export function protocolOf(contentType: string | null, fromContext: string): string {
  if (fromContext) return fromContext;
  const ct = contentType ?? "";
  if (ct.startsWith("application/grpc-web")) return "grpc-web";
  if (ct.startsWith("application/grpc")) return "grpc";
  return "connect";
}

export function createLoggingInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const start = performance.now();
    const protocol = protocolOf(req.header.get("content-type"), req.contextValues.get(protocolKey));
    const procedure = `${req.method.parent.typeName}/${req.method.name}`;
    try {
      const res = await next(req);
      logger.info("rpc", { procedure, protocol, code: "ok", durationMs: round(performance.now() - start) });
      return res;
    } catch (e) {
      const code = e instanceof ConnectError ? Code[e.code] : "Internal";
      logger.info("rpc", { procedure, protocol, code: snake(code), durationMs: round(performance.now() - start) });
      throw e;
    }
  };
}

const round = (ms: number) => Math.round(ms * 100) / 100;
const snake = (s: string) => s.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
