// Caching is opt-in: an answer the handler did not mark cacheable is `Cache-Control: no-store`
// and `Pragma: no-cache` (for HTTP/1.0 caches and proxies that ignore Cache-Control).
// Tessera's answers hold tokens, refresh tokens, API tokens, claims and users' data, and the
// side-effect-free methods are also served over Connect GET, which HTTP caches store by default
// rules; only the public keys, the discovery document and the version say otherwise (their
// handlers set `public, max-age`). This interceptor runs for every protocol (REST through the
// transcoder, Connect, gRPC-Web, gRPC).
import type { Interceptor } from "@connectrpc/connect";

export function createCacheControlInterceptor(): Interceptor {
  return (next) => async (req) => {
    const res = await next(req);
    if (!res.header.has("cache-control")) {
      res.header.set("cache-control", "no-store");
      res.header.set("pragma", "no-cache");
    }
    return res;
  };
}
