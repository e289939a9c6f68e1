// Verification of the JWTs Tessera issued, in the order jose's jwtVerify checks them: the
// header (before anything else, three checks of our own: the signature must be spelled
// canonically — base64url is malleable in its last character, so one token would have several
// spellings —, the header must name each member once, and headers that point at other keys
// (jku, x5u, jwk, x5c, x5t, x5t#S256), demand extensions (crit) or change what the signature
// covers (b64) are refused), the algorithm, the key the
// token's kid names in the key ring, the signature, the header's `typ` (every token Tessera
// signs is typed "JWT"), the payload's member names (each once), then the claims (exp, nbf,
// iat, iss, aud, required claims) against the injected clock, and last that the payload holds no
// number no reader can use (unusableNumber: jose asks only that a time claim be a number;
// `1e400` parses as Infinity, which no JSON answer can hold).
//
// A member named twice (`{"kid":"a","kid":"b"}`) is read by jose as JSON.parse reads it, the
// last one; a proxy or another verifier in front may read the first, and so see another token
// (RFC 7515 5.2 lets a parser refuse such a header or payload, which this one does).
//
// `typ` tells nothing apart among Tessera's own tokens (seed 000 session tokens and seed 004
// access and refresh tokens all carry "JWT", as every token Tessera ever signed did, and offline
// verifiers of them may expect exactly that): their kinds are told apart by `aud`, which no two
// kinds share (see TESSERA_CLIENT_IDS), and by their claims (token_type, sid). A token under one
// of Tessera's kids typed otherwise (`at+jwt`, `JOSE`: with HS256 whoever holds the secret can
// sign one) is no token Tessera issued, and is refused.
//
// The signature is checked with node:crypto, synchronously, on the calling thread, not with
// WebCrypto (which jose uses, and which runs on libuv's thread pool): argon2 runs there too, so
// under a flood of logins and sign-ups every token check would queue behind password hashes.
// An Ed25519 verification takes tens of microseconds (bench/verify.ts measures both ways). The
// claims are still checked by jose's own claim validation: `UnsecuredJWT.decode` of the same
// payload under an `alg: none` header runs it without any cryptography.
//
// Tokens that verified are remembered (by a SHA-256 of their exact text, with the issuer and
// audience they verified for: never the text itself, which would stay in memory, revoked or
// not, until its exp), so a token presented again skips the signature work, which is most of a
// check's cost. An entry lives until the token's exp; a hit whose nbf or iat is ahead of the clock
// (it can move back) is treated as a miss, so jose decides every time failure. Besides expiry,
// a token becomes invalid when its key is revoked: a hit asks the ring for the key again (a map
// lookup; the ring re-reads the key list every 30 s), so a revoked key's tokens fail at once on
// the revoking instance and within that interval on the others. Token revocation and user state
// are the callers' to check on every use.
import { createHmac, createSecretKey, KeyObject, timingSafeEqual, verify as verifySignature } from "node:crypto";
import { base64url, decodeProtectedHeader, errors, UnsecuredJWT, type CryptoKey, type JWTPayload, type ProtectedHeaderParameters } from "jose";
import type { Clock } from "./clock.js";
import { AuthError, unauthenticated } from "./errors.js";
import type { KeyRing, SigningAlg, VerificationKey } from "./key-ring.js";
import { Lru } from "./lru.js";
import { hashSecret } from "./secrets.js";
import { quoted, quotedMax } from "./text.js";
import { credentialShaped } from "../credential-shapes.js";
import { repeatedKey } from "./json-keys.js";

export interface VerifyOptions {
  /** Accept a token past its exp (every other check still applies). */
  allowExpired?: boolean;
  /**
   * Accept a token signed by a key that verifies no more (revoked, or retired past its lifetime)
   * while the ring still holds it: for a token being ended, which must still be told to be its
   * caller's, never for one being used. Such a token is not remembered.
   */
  endedKeys?: boolean;
  /** The `aud` required: one value, or any of several. */
  audience?: string | readonly string[];
  issuer?: string;
}

export type VerifiedPayload = Readonly<Record<string, unknown>> & { readonly exp: number; readonly iat?: number; readonly nbf?: number };

/**
 * How far ahead of this instance's clock a token's nbf may be (RFC 7519 4.1.5 allows a small
 * leeway): seed 004's tokens carry nbf = iat in whole seconds, so a token issued by another
 * instance whose clock runs a few milliseconds ahead, across a second's boundary, would otherwise
 * be refused as not yet valid right after it was issued. exp has no leeway.
 */
export const NBF_LEEWAY_SECONDS = 5;

/**
 * How far ahead of this instance's clock a token's iat may be. Every token Tessera signs carries
 * iat; one issued further ahead comes from a clock far off (its exp as far ahead, so it would live
 * that much longer on every other clock) and is refused as not yet valid. Wider than nbf's
 * leeway: seed 000's session tokens carry no nbf, and instances whose clocks differ by seconds
 * take each other's tokens (a refresh retried on another instance, its clock 10 s behind, is
 * answered the same pair, which works there).
 */
export const IAT_LEEWAY_SECONDS = 60;

/**
 * jose's maxTokenAge, which is what has jose check iat (required, and not ahead of the clock):
 * no age limit of its own (exp bounds a token's life), the latest time a Date holds.
 */
const noMaxTokenAge = 8.64e12;

/** How many verified tokens an instance remembers by default. */
export const DEFAULT_VERIFIED_CACHE_ENTRIES = 10_000;

/**
 * Headers no token Tessera signs carries, refused whatever their value (as @tessera/client
 * refuses them). `b64` (RFC 7797) says whether the signature covers the payload encoded: jose,
 * as this verifier, ignores it unless `crit` names it, but a verifier that honours it reads
 * another payload under the same signature.
 */
const forbiddenHeaders = ["jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit", "b64"] as const;

/**
 * The longest header segment taken: far above that of any token Tessera signs (`{alg, kid, typ}`,
 * about 100 characters). The header is read before the signature is checked, so its size is all
 * that bounds what anyone can make a check parse (twice: jose, then refuseRepeatedMember): a
 * header of nested arrays as long as the body limit took 6 ms at the default 64 KiB, 0.7 s at
 * 1 MiB, where a valid token takes 0.2 ms.
 */
const maxHeaderLength = 1024;

const malformed = () => unauthenticated("INVALID_TOKEN", "malformed token");
const issuedInTheFuture = (cause: unknown) => unauthenticated("TOKEN_NOT_YET_VALID", "token issued in the future", { cause });
const unexpectedAlgorithm = () => unauthenticated("INVALID_TOKEN", "unexpected token algorithm");

/** base64url of {"alg":"none"}: the header under which jose checks the claims alone. */
const unsecuredHeader = Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url");

/** A token split and its header read (and checked). */
interface ParsedToken {
  header: ProtectedHeaderParameters & { kid: string };
  signingInput: string;
  payload: string;
  signature: Buffer;
}

export interface TokenVerifierDeps {
  ring: Pick<KeyRing, "keyFor" | "algorithms"> & Partial<Pick<KeyRing, "isRevoked" | "endedKeyFor">>;
  clock: Clock;
  /** How many verified tokens to remember (0: none); default DEFAULT_VERIFIED_CACHE_ENTRIES. */
  cacheEntries?: number;
}

export class TokenVerifier {
  private readonly ring: TokenVerifierDeps["ring"];
  private readonly clock: Clock;
  private readonly verified: Lru<string, { claims: VerifiedPayload; kid: string }>;

  constructor(deps: TokenVerifierDeps) {
    this.ring = deps.ring;
    this.clock = deps.clock;
    this.verified = new Lru({ maxEntries: deps.cacheEntries ?? DEFAULT_VERIFIED_CACHE_ENTRIES });
  }

  /** Lookups of the verified-token cache that hit and missed, since start (metrics). */
  cacheCounts(): { hits: number; misses: number } {
    return { hits: this.verified.hits, misses: this.verified.misses };
  }

  /** The verified claims; AuthError unauthenticated with the reason otherwise. */
  async verify(token: string, opts: VerifyOptions = {}): Promise<VerifiedPayload> {
    return (await this.verifyKeyed(token, opts)).claims;
  }

  /**
   * As verify, with the kid of the key that signed the token (no second parse of its header): the
   * key ring's name of it, the header's kid but under HS256, where it is the secret's id.
   */
  async verifyKeyed(token: string, opts: VerifyOptions = {}): Promise<{ claims: VerifiedPayload; kid: string }> {
    const now = this.clock.now();
    const audiences = opts.audience === undefined ? undefined : typeof opts.audience === "string" ? [opts.audience] : opts.audience;
    const hit = this.verified.get(cacheKeyOf(token, opts.issuer, opts.audience), now.getTime());
    if (hit !== undefined && beyondLeeway(hit.claims, now) === undefined) {
      if ((await this.ring.keyFor(hit.kid)) !== undefined) return hit;
    }

    let payload: JWTPayload;
    let kid: string;
    let key: VerificationKey & { ended?: true };
    try {
      const parsed = this.parse(token);
      key = await this.keyFor(parsed.header, opts.endedKeys === true);
      // The ring's name of the key, which is the header's but under HS256 (KeyRing: the secret's id).
      kid = key.kid;
      if (!signatureMatches(key, parsed.signingInput, parsed.signature)) throw unauthenticated("INVALID_TOKEN", "invalid token signature");
      checkType(parsed.header.typ);
      refuseRepeatedMember("payload", parsed.payload);
      const decode = (at: Date) =>
        UnsecuredJWT.decode(`${unsecuredHeader}.${parsed.payload}.`, {
          ...(opts.issuer !== undefined && { issuer: opts.issuer }),
          ...(audiences !== undefined && { audience: [...audiences] }),
          requiredClaims: ["exp"],
          // iat required, and refused when ahead of `at` (its "too far in the past" never applies).
          maxTokenAge: noMaxTokenAge,
          currentDate: at,
          clockTolerance: 0,
        });
      try {
        ({ payload } = decode(now));
      } catch (e) {
        // An nbf or iat ahead, within its leeway (a token another instance, its clock a little
        // ahead, issued a moment ago): the claims are checked as at the later of them. Every
        // other check gives the same answer then: a token valid then whose exp is after it is
        // valid now too, now being before it.
        if (!isAhead(e) || beyondLeeway(e.payload, now) !== undefined) throw e;
        ({ payload } = decode(new Date(validFrom(e.payload) * 1000)));
      }
    } catch (e) {
      // A claim jose refused for its value (a time, the issuer, the audience) in a payload that
      // holds a number no reader can use is refused for that number.
      const unusable = e instanceof errors.JWTClaimValidationFailed || e instanceof errors.JWTExpired ? unusableNumber(e.payload) : undefined;
      if (unusable) throw unusable;
      // An iat beyond its leeway is the refusal, whichever of nbf and iat jose looked at first.
      if (isAhead(e) && beyondLeeway(e.payload, now) === "iat") throw issuedInTheFuture(e);
      // JWTExpired comes from the claim checks, after the signature verified; exp is the last
      // claim jose checks, so every other claim has passed too.
      if (opts.allowExpired && e instanceof errors.JWTExpired && e.claim === "exp") {
        // jose checks iat after exp: an expired token issued in the future is refused as one that is not expired.
        if (beyondLeeway(e.payload, now) === "iat") throw issuedInTheFuture(e);
        return { claims: Object.freeze({ ...e.payload }) as VerifiedPayload, kid: kid! };
      }
      throw refusal(e);
    }
    const unusable = unusableNumber(payload);
    if (unusable) throw unusable;
    const entry = { claims: Object.freeze(payload) as VerifiedPayload, kid };
    if (key.ended) return entry;
    this.verified.set(cacheKeyOf(token, opts.issuer, opts.audience), entry, now.getTime(), entry.claims.exp * 1000);
    return entry;
  }

  /** Splits the token and checks its header: its length, canonical signature, no foreign-key headers, a kid. */
  private parse(token: string): ParsedToken {
    if (token.indexOf(".") > maxHeaderLength) {
      throw unauthenticated("INVALID_TOKEN", `malformed token: the header is longer than ${maxHeaderLength} characters`);
    }
    let header: ProtectedHeaderParameters;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw malformed();
    }
    const segments = token.split(".");
    if (segments.length !== 3) throw malformed();
    const [encodedHeader, payload, encodedSignature] = segments as [string, string, string];
    const signature = Buffer.from(encodedSignature, "base64url");
    if (signature.toString("base64url") !== encodedSignature) throw malformed();
    refuseRepeatedMember("header", encodedHeader);
    for (const h of forbiddenHeaders) if (h in header) throw unauthenticated("INVALID_TOKEN", `token header "${h}" is not accepted`);
    if (typeof header.kid !== "string") throw unauthenticated("INVALID_TOKEN", "token has no key id");
    return { header: header as ParsedToken["header"], signingInput: `${encodedHeader}.${payload}`, payload, signature };
  }

  /**
   * The ring's key for the kid, of the algorithm the token names (one the ring holds keys of);
   * `ended`: also one that verifies no more but is still held (marked `ended`).
   */
  private async keyFor(header: ParsedToken["header"], ended: boolean): Promise<VerificationKey & { ended?: true }> {
    if (!this.ring.algorithms.includes(header.alg as SigningAlg)) throw unexpectedAlgorithm();
    const key: (VerificationKey & { ended?: true }) | undefined =
      (await this.ring.keyFor(header.kid)) ?? (ended ? withEnded(this.ring.endedKeyFor?.(header.kid)) : undefined);
    if (!key) throw unauthenticated("INVALID_TOKEN", this.ring.isRevoked?.(header.kid) ? "token signed by a revoked key" : "token signed by an unknown key");
    // The algorithm comes from our key record, never from the token: no alg confusion.
    if (header.alg !== key.alg) throw unexpectedAlgorithm();
    return key;
  }
}

/** jose's refusal of an nbf or an iat (a number) ahead of the time it checked at. */
function isAhead(e: unknown): e is errors.JWTClaimValidationFailed {
  return e instanceof errors.JWTClaimValidationFailed && (e.claim === "nbf" || e.claim === "iat") && e.reason === "check_failed";
}

/** The claim, nbf or iat, ahead of `now` by more than its leeway, if either is. */
function beyondLeeway(claims: Readonly<JWTPayload>, now: Date): "nbf" | "iat" | undefined {
  const seconds = Math.floor(now.getTime() / 1000);
  if (typeof claims.nbf === "number" && claims.nbf > seconds + NBF_LEEWAY_SECONDS) return "nbf";
  if (typeof claims.iat === "number" && claims.iat > seconds + IAT_LEEWAY_SECONDS) return "iat";
  return undefined;
}

/** The later of a token's nbf and iat (seconds; those that are numbers), or -Infinity. */
function validFrom(claims: Readonly<JWTPayload>): number {
  return Math.max(typeof claims.nbf === "number" ? claims.nbf : -Infinity, typeof claims.iat === "number" ? claims.iat : -Infinity);
}

/** `key` marked as one that verifies no more (VerifyOptions.endedKeys). */
function withEnded(key: VerificationKey | undefined): (VerificationKey & { ended: true }) | undefined {
  return key && { ...key, ended: true };
}

/** The `typ` of every token Tessera signs (token-signer.ts). */
const tokenType = "JWT";

/**
 * Refuses a header whose `typ` is not "JWT" (absent included: every token Tessera signed has
 * it). Compared as RFC 7515 4.1.9 compares it, a media type: case aside, "application/"
 * omitted.
 */
function checkType(typ: unknown): void {
  if (typ === undefined) throw unauthenticated("INVALID_TOKEN", `token has no type: header "typ" must be "${tokenType}"`);
  if (typeof typ === "string" && typ.toLowerCase().replace(/^application\//, "") === tokenType.toLowerCase()) return;
  const given = typeof typ === "string" ? quoted(typ) : `of JSON type ${typ === null ? "null" : Array.isArray(typ) ? "array" : typeof typ}`;
  throw unauthenticated("INVALID_TOKEN", `unexpected token type ${given}: header "typ" must be "${tokenType}"`);
}

/** UTF-8 as jose decodes a header or payload: invalid bytes refused, a leading BOM dropped. */
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Refuses a header or payload (its base64url segment) that names a member twice in one object,
 * naming it (its path, outermost first, when each name is a plain word, none of a credential's
 * shape, and the path at most 64 characters). The segment is read as
 * jose reads it (its base64url, then TextDecoder, which drops a leading BOM that JSON.parse
 * would choke on): the walk sees the text jose parses. Text that is no JSON object is left to
 * the parser that reads it (jose: malformed token).
 */
function refuseRepeatedMember(part: "header" | "payload", segment: string): void {
  let text: string;
  try {
    text = utf8.decode(base64url.decode(segment));
    JSON.parse(text);
  } catch {
    return;
  }
  const path = repeatedKey(text);
  if (path === undefined) return;
  // Named only when the name is short and plain: the header is read before its signature is
  // checked, so anyone writes it, and a path of any length was named whole.
  const dotted = path.join(".");
  const plain = dotted.length <= quotedMax && path.every((key) => /^[\w-]+$/.test(key) && !credentialShaped(key));
  const name = plain ? `member "${dotted}"` : "a member";
  throw unauthenticated("INVALID_TOKEN", `malformed token: ${name} of the ${part} is given more than once`);
}

// node:crypto's form of each key, made once per key.
const keyObjects = new WeakMap<CryptoKey | Uint8Array, KeyObject>();

/** node:crypto's form of a jose key (or an HS256 secret), made once per key (also for token-signer.ts). */
export function keyObjectOf(material: CryptoKey | Uint8Array): KeyObject {
  let object = keyObjects.get(material);
  if (!object) {
    object = material instanceof Uint8Array ? createSecretKey(material) : KeyObject.from(material);
    keyObjects.set(material, object);
  }
  return object;
}

/** The signature check of `key.alg` (JWS: EdDSA over Ed25519, ES256 as r||s, HS256 compared in constant time). */
function signatureMatches(key: VerificationKey, signingInput: string, signature: Buffer): boolean {
  const data = Buffer.from(signingInput, "ascii");
  const object = keyObjectOf(key.publicKey);
  try {
    switch (key.alg) {
      case "EdDSA":
        return verifySignature(null, data, object, signature);
      case "ES256":
        return verifySignature("sha256", data, { key: object, dsaEncoding: "ieee-p1363" }, signature);
      case "HS256": {
        const mac = createHmac("sha256", object).update(data).digest();
        return signature.length === mac.length && timingSafeEqual(signature, mac);
      }
    }
  } catch {
    // A signature node:crypto cannot even read (wrong length for the curve) is a wrong one.
    return false;
  }
}

/** The largest time a Date holds, in seconds since the epoch (8.64e15 ms, ECMA-262 21.4.1.1). */
const latestDateSeconds = 8.64e12;

/**
 * The refusal of a payload that holds a number no reader can use, which jose's claim checks let
 * through (they ask only that a time claim be a number): one JSON writes as no number (`1e400`
 * parses as Infinity, which a JSON answer, such as GET /check's claims, cannot hold), or a time
 * claim (iat, nbf, exp) outside what a Date holds from the epoch on. Undefined when there is none.
 */
function unusableNumber(payload: JWTPayload): AuthError | undefined {
  for (const claim of ["iat", "nbf", "exp"] as const) {
    const value = payload[claim];
    if (typeof value === "number" && Number.isFinite(value) && !(value >= 0 && value <= latestDateSeconds)) {
      return unauthenticated("INVALID_TOKEN", `malformed token: "${claim}" claim is out of range`);
    }
  }
  for (const [claim, value] of Object.entries(payload)) {
    if (!holdsOnlyFiniteNumbers(value)) {
      // The claim is named when its name is a plain word (the payload is one our key signed).
      const name = /^[\w.-]{1,64}$/.test(claim) ? `"${claim}" claim` : "a claim";
      return unauthenticated("INVALID_TOKEN", `malformed token: ${name} must be a finite number`);
    }
  }
  return undefined;
}

/** False when a number in `value` (a JSON value, at any depth: walked without recursion) is not finite. */
function holdsOnlyFiniteNumbers(value: unknown): boolean {
  const pending = [value];
  while (pending.length > 0) {
    const v = pending.pop();
    if (typeof v === "number" && !Number.isFinite(v)) return false;
    if (v !== null && typeof v === "object") pending.push(...Object.values(v));
  }
  return true;
}

/** A jose failure as the AuthError a caller sees; our own and the store's errors pass through. */
function refusal(e: unknown): unknown {
  if (e instanceof AuthError) return e;
  if (e instanceof errors.JWTExpired) return unauthenticated("TOKEN_EXPIRED", "token expired", { cause: e });
  if (e instanceof errors.JWTClaimValidationFailed) {
    // jose's reason "invalid": a time claim that is no number (its message names the claim:
    // `"nbf" claim must be a number`); "missing": a required claim absent; else a value refused.
    if (e.reason === "invalid") return unauthenticated("INVALID_TOKEN", `malformed token: ${e.message}`, { cause: e });
    switch (e.claim) {
      case "exp":
        return unauthenticated("INVALID_TOKEN", "token has no expiry", { cause: e });
      case "nbf":
        return unauthenticated("TOKEN_NOT_YET_VALID", "token not yet valid", { cause: e });
      case "iat":
        // Issued after now (beyond the leeway): not yet valid, as a token whose nbf is ahead.
        if (e.reason === "missing") return unauthenticated("INVALID_TOKEN", "token has no issue time", { cause: e });
        return issuedInTheFuture(e);
      case "aud":
        return unauthenticated("WRONG_AUDIENCE", "token issued for another audience", { cause: e });
      case "iss":
        return unauthenticated("WRONG_ISSUER", "token issued by another issuer", { cause: e });
      default:
        return unauthenticated("INVALID_TOKEN", "malformed token", { cause: e });
    }
  }
  // Any other jose error (bad JSON, bad encoding, a key of the wrong type), and the TypeErrors
  // jose throws for input it cannot use, mean a token we cannot read.
  if (e instanceof errors.JOSEError || e instanceof TypeError) return unauthenticated("INVALID_TOKEN", "malformed token", { cause: e });
  return e;
}

/**
 * The verified cache's key of `token` checked for `issuer` and `audience`: length-prefixed, so no
 * issuer/audience pair (or list) can be spelled as another; one audience is spelled as a list of one.
 */
function cacheKeyOf(token: string, issuer: string | undefined, audience: string | readonly string[] | undefined): string {
  const audienceKey =
    audience === undefined
      ? "-1:"
      : typeof audience === "string"
        ? `1:${audience.length}:${audience}`
        : `${audience.length}:${audience.map((a) => `${a.length}:${a}`).join("")}`;
  return hashSecret(`${issuer?.length ?? -1}:${issuer ?? ""}${audienceKey}${token}`);
}
