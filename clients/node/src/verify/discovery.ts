// The key set's URL from the issuer's OpenID Connect discovery document
// (`<issuer>/.well-known/openid-configuration`, OpenID Connect Discovery 1.0): its `issuer`
// must be the configured issuer exactly (section 4.3), and its `jwks_uri` is where the keys
// are. Read once; a failed read is retried by the next fetch of the keys (rate-limited there).
import { quoted, redactedUrl, refuse } from "./errors.js";
import { fetchJson } from "./remote-key-set.js";

export function discoveryUrl(issuer: string): URL {
  return new URL(`${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`);
}

export function jwksUrlFromDiscovery(issuer: string, fetchImpl: typeof globalThis.fetch, timeoutMs: number): () => Promise<URL> {
  let found: URL | undefined;
  return async () => {
    found ??= await discover(issuer, fetchImpl, timeoutMs);
    return found;
  };
}

async function discover(issuer: string, fetchImpl: typeof globalThis.fetch, timeoutMs: number): Promise<URL> {
  const url = discoveryUrl(issuer);
  const { body } = await fetchJson(fetchImpl, url, timeoutMs, "application/json");
  const doc = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  if (doc.issuer !== issuer) {
    throw refuse("KEYS_UNAVAILABLE", `the discovery document at ${redactedUrl(url)} names another issuer (${quoted(doc.issuer)}, not ${JSON.stringify(issuer)})`);
  }
  let jwks: URL;
  try {
    jwks = new URL(String(doc.jwks_uri));
  } catch {
    throw refuse("KEYS_UNAVAILABLE", `the discovery document at ${redactedUrl(url)} has no valid "jwks_uri"`);
  }
  if (jwks.protocol !== "https:" && !(jwks.protocol === "http:" && url.protocol === "http:")) {
    throw refuse("KEYS_UNAVAILABLE", `the discovery document at ${redactedUrl(url)} names a "jwks_uri" that is not https`);
  }
  // fetch refuses such a URL with an error quoting it, password and all: never fetched, never quoted.
  if (jwks.username !== "" || jwks.password !== "") {
    throw refuse("KEYS_UNAVAILABLE", `the discovery document at ${redactedUrl(url)} names a "jwks_uri" with credentials (user:password@), which fetch refuses`);
  }
  return jwks;
}
