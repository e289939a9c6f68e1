// How long a fetched key set stays fresh, as its response says (RFC 9111, as a private cache):
// `max-age` less the `Age` a cache in between has added; `no-store` and `no-cache` mean not at
// all (the verifier still keeps the keys, but asks again before trusting them for longer than
// its cooldown). `s-maxage` is for shared caches and is ignored.

/** Seconds the response is fresh for, or undefined when it does not say. */
export function freshnessSeconds(headers: Headers): number | undefined {
  const cacheControl = headers.get("cache-control");
  if (cacheControl === null) return undefined;
  let maxAge: number | undefined;
  for (const part of cacheControl.split(",")) {
    const [rawName, ...rest] = part.split("=");
    const name = rawName!.trim().toLowerCase();
    if (name === "no-store" || name === "no-cache") return 0;
    if (name === "max-age" && maxAge === undefined) {
      const value = rest.join("=").trim().replace(/^"(.*)"$/, "$1");
      // An invalid max-age makes the response stale (RFC 9111, 4.2.1).
      maxAge = /^\d+$/.test(value) ? Number(value) : 0;
    }
  }
  if (maxAge === undefined) return undefined;
  const age = headers.get("age")?.trim();
  const ageSeconds = age !== undefined && /^\d+$/.test(age) ? Number(age) : 0;
  return Math.max(0, maxAge - ageSeconds);
}
