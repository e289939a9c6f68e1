// Caching is opt-in: an answer the handler did not mark cacheable is `Cache-Control: no-store`.
// Tessera's answers hold tokens, claims and users' data, and the side-effect-free methods are
// also served over Connect GET, which HTTP caches store by default rules; only the public keys,
// the discovery document and the version say otherwise (their handlers set `public, max-age`).
import type { Interceptor } from "@connectrpc/connect";

export function createCacheControlInterceptor(): Interceptor {
  return (next) => async (req) => {
    const res = await next(req);
    if (!res.header.has("cache-control")) res.header.set("cache-control", "no-store");
    return res;
  };
}
