// CORS for every protocol on the one port: REST, Connect and gRPC-Web (and gRPC, which browsers
// cannot speak, alike), from the same TESSERA_CORS_ORIGINS. The dispatcher applies it once,
// before routing, with the transcoder's Cors (transcode/cors.ts) configured for what those
// protocols send and need to read: connect-es's own lists (`cors` from @connectrpc/connect)
// plus Tessera's headers.
import { Code, cors as connectCors } from "@connectrpc/connect";
import { Cors } from "../transcode/cors.js";
import type { NodeRequest, NodeResponse } from "./dispatch.js";
import { sendErrorBody } from "./error-details.js";
import { requestIdHeader } from "./request-id.js";
import { shownRequestText } from "../core/text.js";

/** Request headers a browser may send: the protocols' own, the credentials, a request id, trace context. */
export const corsAllowedHeaders = [
  ...connectCors.allowedHeaders, // content-type, connect-protocol-version, connect-timeout-ms, x-grpc-web, x-user-agent, grpc-timeout, ...
  "authorization",
  "x-koms-clientid",
  requestIdHeader,
  "traceparent",
  "tracestate",
];

/** Response headers scripts may read: the gRPC-Web status, challenges, retry times, the request id, trace context. */
export const corsExposedHeaders = [
  ...connectCors.exposedHeaders, // grpc-status, grpc-message, grpc-status-details-bin, ...
  "www-authenticate",
  "retry-after",
  requestIdHeader,
  "traceparent",
];

export function createCors(origins: readonly string[]): Cors {
  return new Cors(origins, {
    // REST routes take every method; Connect takes POST (GET for side-effect-free methods).
    allowedMethods: ["GET", "POST", "PUT", "PATCH", "DELETE"],
    allowedHeaders: corsAllowedHeaders,
    exposedHeaders: corsExposedHeaders,
  });
}

/**
 * Applies CORS to one request: answers a preflight (true: nothing more to do), otherwise sets
 * `Vary` on the response and, for an allowed origin, the CORS headers. A refused preflight's
 * error shows the origin as shownRequestText does (`hidden`: see unquotable).
 */
export function applyCors(cors: Cors, req: NodeRequest, res: NodeResponse, hidden: (text: string) => boolean): boolean {
  if (!cors.enabled) return false;
  const origin = req.headers.origin;
  if (origin !== undefined && Cors.isPreflight(req.method, req.headers)) {
    if (!cors.allows(origin)) {
      sendErrorBody(res, 403, Code.PermissionDenied, "ORIGIN_NOT_ALLOWED", `origin ${shownRequestText(origin, hidden)} is not allowed`, { vary: cors.vary });
      return true;
    }
    res.writeHead(204, cors.preflightHeaders(origin, undefined));
    res.end();
    return true;
  }
  const headers = origin !== undefined && cors.allows(origin) ? cors.originHeaders(origin) : { vary: cors.vary };
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  return false;
}
