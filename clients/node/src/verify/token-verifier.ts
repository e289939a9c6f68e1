// Offline verification of Tessera's access tokens with the public keys Tessera publishes.
//
// The signature is checked with node:crypto (synchronous, on the calling thread), not through
// WebCrypto: a verification is one Ed25519 (or ECDSA) check plus parsing, and WebCrypto's
// asynchronous verify costs more than the check itself (see bench/verifier.ts at the
// repository root). With a fresh key set, verify() does no I/O.
import { checkClaims, type VerifiedToken } from "./claims.js";
import { checkType, decodeJson, parseCompactJws, type HeaderCache } from "./compact-jws.js";
import { jwksUrlFromDiscovery } from "./discovery.js";
import { quoted, refuse } from "./errors.js";
import { algorithmList, isAlgorithm, type Algorithm } from "./jwk.js";
import { RemoteKeySet } from "./remote-key-set.js";

interface CommonOptions {
  /**
   * The `aud` of seed 004 JWT API access tokens (Tessera's TESSERA_JWT_AUDIENCE, default
   * "tessera"). Unset: those tokens are refused (WRONG_AUDIENCE).
   */
  audience?: string;
  /**
   * The client id (`x-koms-clientid`), or ids, whose seed 000 session access tokens are
   * accepted: a session token's `aud` is its client id. Unset: session tokens are refused.
   */
  clientId?: string | readonly string[];
  /** The signature algorithms accepted (default EdDSA and ES256): asymmetric only. */
  algorithms?: readonly Algorithm[];
  /**
   * How far ahead of this machine's clock a token's `nbf` may be, in seconds (default 5, as
   * Tessera's own verifier): a token issued a moment ago by a Tessera whose clock runs ahead. Its
   * `iat` may be ahead by 60 s, or by this tolerance when more (as in Tessera: its session tokens
   * carry no `nbf`). `exp` has no leeway, as in Tessera: a token is expired once this clock
   * reaches its `exp`; one whose `nbf` or `iat` is ahead within its tolerance is checked as at the
   * later of them, as Tessera checks it, so an `exp` at or before that time has passed.
   */
  clockToleranceSeconds?: number;
  /** Least time between two fetches of the key set, in seconds (default 10): rate-limits refetches on unknown kids and after failures. */
  cooldownSeconds?: number;
  /** How long a key set is kept when its response has no Cache-Control max-age (default 300). */
  defaultCacheSeconds?: number;
  /** The most a max-age may keep a key set (default 86400). */
  maxCacheSeconds?: number;
  /** Timeout of each fetch, in milliseconds (default 5000); beyond 2^31 - 1 (24.8 days, the longest a Node timer holds), that. */
  timeoutMs?: number;
  /** The fetch to use (default globalThis.fetch): proxies, custom CAs. */
  fetch?: typeof globalThis.fetch;
  /** The current time (default Date.now); for tests. */
  now?: () => number;
}

export type TokenVerifierOptions =
  | (CommonOptions & {
      /**
       * Tessera's issuer URL (its TESSERA_PUBLIC_URL): the keys are found through
       * `<issuer>/.well-known/openid-configuration`, whose `issuer` must be this exactly, and
       * every token's `iss` must be this.
       */
      issuer: string;
      jwksUrl?: undefined;
    })
  | (CommonOptions & {
      /** The key set's URL (`<tessera>/.well-known/jwks.json`); no discovery. */
      jwksUrl: string | URL;
      /** The expected `iss` (Tessera's TESSERA_JWT_ISSUER, default "tessera"); unset: not checked. */
      issuer?: string;
    });

export interface TokenVerifier {
  /**
   * The verified token, or a TokenVerificationError with its code. Refused: a bad signature,
   * an algorithm or key not accepted, another issuer or audience, a refresh token, an expired
   * or not-yet-valid token.
   */
  verify(token: string): Promise<VerifiedToken>;
}

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const o = options as CommonOptions & { issuer?: string; jwksUrl?: string | URL };
  const algorithms = algorithmList(o.algorithms);
  const clientIds = o.clientId === undefined ? [] : typeof o.clientId === "string" ? [o.clientId] : [...o.clientId];
  if (o.audience === undefined && clientIds.length === 0) throw new TypeError("createTokenVerifier: give an audience (JWT API tokens), a clientId (session tokens), or both");
  if (o.audience !== undefined && (typeof o.audience !== "string" || o.audience === "")) throw new TypeError("audience: must be a non-empty string");
  if (clientIds.some((c) => typeof c !== "string" || c === "")) throw new TypeError("clientId: every client id must be a non-empty string");
  if (o.issuer !== undefined && (typeof o.issuer !== "string" || o.issuer === "")) throw new TypeError("issuer: must be a non-empty string");
  const clockToleranceSeconds = seconds(o.clockToleranceSeconds, 5, "clockToleranceSeconds");
  // A Node timer holds at most 2^31 - 1 ms; a longer one fires at once (and every fetch would time out).
  const timeoutMs = Math.min(seconds(o.timeoutMs, 5000, "timeoutMs"), maxTimerMs);
  const fetchImpl = o.fetch ?? globalThis.fetch;
  const now = clock(o.now);

  let url: () => Promise<URL>;
  if (o.jwksUrl !== undefined) {
    const jwks = httpUrl(o.jwksUrl, "jwksUrl");
    url = async () => jwks;
  } else if (o.issuer !== undefined) {
    httpUrl(o.issuer, "issuer");
    // OpenID Connect Discovery 1.0, 2: the document's path is added to the issuer's, which an
    // issuer's query or fragment would swallow (the document asked for at the issuer's root).
    if (/[?#]/.test(o.issuer)) throw new TypeError("issuer: must have no query or fragment (an OpenID Connect issuer has none)");
    url = jwksUrlFromDiscovery(o.issuer, fetchImpl, timeoutMs);
  } else {
    throw new TypeError("createTokenVerifier: give an issuer (discovery) or a jwksUrl");
  }

  const keys = new RemoteKeySet({
    url,
    algorithms,
    fetch: fetchImpl,
    now,
    timeoutMs,
    cooldownMs: seconds(o.cooldownSeconds, 10, "cooldownSeconds") * 1000,
    defaultCacheMs: seconds(o.defaultCacheSeconds, 300, "defaultCacheSeconds") * 1000,
    maxCacheMs: seconds(o.maxCacheSeconds, 86400, "maxCacheSeconds") * 1000,
  });
  const rules = { issuer: o.issuer, audience: o.audience, clientIds, clockToleranceSeconds };
  const headers: HeaderCache = new Map();

  return {
    async verify(token: string): Promise<VerifiedToken> {
      const jws = parseCompactJws(token, headers);
      const alg = jws.header.alg;
      if (!isAlgorithm(alg) || !algorithms.has(alg)) throw refuse("UNSUPPORTED_ALGORITHM", `the token's algorithm (${quoted(alg)}) is not accepted`);
      const key = keys.freshKey(jws.header.kid) ?? (await keys.key(jws.header.kid));
      // The key decides how it verifies: a token cannot make an EdDSA key check "ES256".
      if (!key.algorithms.has(alg)) throw refuse("UNSUPPORTED_ALGORITHM", `the token's algorithm (${alg}) is not its key's`);
      if (!key.verify(alg, jws.signingInput, jws.signature)) throw refuse("INVALID_SIGNATURE", "the token's signature does not verify");
      checkType(jws.header);
      const payload = Object.freeze(decodeJson(jws.payloadSegment, "payload"));
      return checkClaims(jws.payloadSegment, payload, rules, new Date(now()));
    },
  };
}

/**
 * The verifier's clock: `now`, or Date.now. A time that is not a finite number (NaN: a date
 * parsed from nothing) is the caller's mistake, a TypeError naming `now`, as the verifier names
 * its other options: compared with it, every expiry and cooldown failed (KEYS_UNAVAILABLE).
 */
function clock(now: (() => number) | undefined): () => number {
  if (now === undefined) return Date.now;
  if (typeof now !== "function") throw new TypeError("now: must be a function giving the time in milliseconds since the epoch");
  return () => {
    const ms = now();
    if (typeof ms !== "number" || !Number.isFinite(ms)) throw new TypeError("now: must return a finite number of milliseconds since the epoch");
    return ms;
  };
}

/** The longest delay a Node timer (AbortSignal.timeout) holds: 2^31 - 1 ms, 24.8 days. */
const maxTimerMs = 2 ** 31 - 1;

function seconds(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw new TypeError(`${name}: must be a non-negative number`);
  return value;
}

/** `value` as an http or https URL without credentials; a TypeError naming `name` otherwise. */
export function httpUrl(value: string | URL, name: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`${name}: not a URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new TypeError(`${name}: must be an http or https URL`);
  // fetch refuses a URL with credentials: every fetch would fail, naming them.
  if (url.username !== "" || url.password !== "") throw new TypeError(`${name}: must not carry credentials (user:password@)`);
  return url;
}
