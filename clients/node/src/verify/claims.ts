// The claims of a token whose signature verified. The registered claims (iss, aud, exp, nbf,
// iat) are checked by jose's own claim validation (`UnsecuredJWT.decode` over the verified
// payload: the signature was checked with node:crypto already, so jose is asked for its claim
// rules only), in jose's order: issuer, audience, then time — so an expired token of the wrong
// audience says WRONG_AUDIENCE; before them, as in Tessera, numbers no reader can use
// (unusableNumber: jose takes an exp of 1e400, Infinity). Tessera's own claims (the token's kind, `sid`, `jti`, `user`,
// `authentication_method`, the shapes of `source_kids` and `credential_epoch`) are checked here.
//
// Tessera issues two kinds of access token, told apart by their claims:
// - seed 000 session access tokens: `aud` is the client id the session is bound to; `sub`
//   (user id), `sid` (session id), `jti` (token id); no `token_type`.
// - seed 004 JWT API access tokens: `aud` is TESSERA_JWT_AUDIENCE; `token_type: "access_token"`,
//   `sub` (user id), `user` (user name), `authentication_method`. Seed 004 refresh tokens carry
//   `token_type: "refresh_token"` (and an audience of their own, TESSERA_JWT_AUDIENCE followed by
//   `/refresh_token`; older ones the access tokens'): refused here.
import { errors, UnsecuredJWT } from "jose";
import { quoted, refuse } from "./errors.js";

/** The claims of a seed 000 session access token. */
export interface SessionAccessClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: string | readonly string[];
  readonly exp: number;
  readonly iat?: number;
  readonly nbf?: number;
  readonly sid: string;
  readonly jti: string;
}

/** The claims of a seed 004 JWT API access token. */
export interface JwtAccessClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: string | readonly string[];
  readonly exp: number;
  readonly iat?: number;
  readonly nbf?: number;
  readonly user: string;
  readonly token_type: "access_token";
  readonly authentication_method: AuthenticationMethod;
  /** The kids of the keys that signed the tokens this one was made from (a refresh login's). */
  readonly source_kids?: readonly string[];
  /** The user's credential epoch when the token was issued (it changes with the password). */
  readonly credential_epoch?: number;
}

export type AuthenticationMethod = "password" | "refresh_token";

/** A verified seed 000 session access token. */
export interface SessionAccessToken {
  readonly kind: "session";
  /** `sub`. */
  readonly userId: string;
  /** `sid`. */
  readonly sessionId: string;
  /** The configured client id the token's `aud` matched. */
  readonly clientId: string;
  /** `jti`. */
  readonly tokenId: string;
  /** `exp`. */
  readonly expiresAt: Date;
  readonly claims: SessionAccessClaims;
}

/** A verified seed 004 JWT API access token. */
export interface JwtAccessToken {
  readonly kind: "jwt";
  /** `sub`. */
  readonly userId: string;
  /** `user`: the user name. */
  readonly user: string;
  /** `authentication_method`: a password login, or a token derived from a refresh token. */
  readonly authenticationMethod: AuthenticationMethod;
  /** `exp`. */
  readonly expiresAt: Date;
  readonly claims: JwtAccessClaims;
}

/** What a verified Tessera access token says: switch on `kind`. */
export type VerifiedToken = SessionAccessToken | JwtAccessToken;

export interface ClaimRules {
  /** The expected `iss`; undefined: not checked. */
  readonly issuer: string | undefined;
  /** The `aud` of JWT API tokens; undefined: they are refused. */
  readonly audience: string | undefined;
  /** The `aud` values of session tokens (client ids); empty: they are refused. */
  readonly clientIds: readonly string[];
  /** How far ahead of `now` an nbf may be; exp has no leeway. */
  readonly clockToleranceSeconds: number;
}

const isString = (v: unknown): v is string => typeof v === "string" && v !== "";

/** jose's unsecured-JWT header: the payload below it has been verified already. */
const verifiedHeader = Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url");

/**
 * How far ahead of this machine's clock a token's iat may be, in seconds (or clockToleranceSeconds
 * when more), as Tessera's own verifier: a token issued by a Tessera whose clock runs some seconds
 * ahead is taken; one issued further ahead comes from a clock far off.
 */
export const IAT_TOLERANCE_SECONDS = 60;

/**
 * `payloadSegment` is the verified token's payload, as sent (base64url); `payload` its parsed
 * JSON. Throws TokenVerificationError with the reason.
 */
export function checkClaims(payloadSegment: string, p: Record<string, unknown>, rules: ClaimRules, now: Date): VerifiedToken {
  // The kind decides the audience: a JWT API token's, or one of the configured client ids.
  let audience: string | readonly string[];
  if (p.token_type !== undefined) {
    if (p.token_type !== "access_token") throw refuse("WRONG_TOKEN_TYPE", `not an access token (token_type ${quoted(p.token_type)})`);
    if (rules.audience === undefined) throw refuse("WRONG_AUDIENCE", "JWT API tokens are not accepted (no audience configured)");
    audience = rules.audience;
  } else if (p.sid !== undefined) {
    if (rules.clientIds.length === 0) throw refuse("WRONG_AUDIENCE", "session tokens are not accepted (no client id configured)");
    audience = rules.clientIds;
  } else {
    throw refuse("INVALID_CLAIMS", "not a Tessera access token (neither token_type nor sid)");
  }
  const unusable = unusableNumber(p);
  if (unusable) throw unusable;
  // The tolerance is for an nbf ahead of this clock (a token a Tessera whose clock runs ahead
  // issued a moment ago), as Tessera's; an iat may be ahead by a minute (IAT_TOLERANCE_SECONDS)
  // or the tolerance if more. Such a token is checked as at the later of them, exp included (no
  // leeway), so a token Tessera takes as expired is expired here. One further ahead fails jose's
  // nbf or iat check, as does one that is not a number.
  const nowSeconds = Math.floor(now.getTime() / 1000);
  const nbf = typeof p.nbf === "number" ? p.nbf : -Infinity;
  const iat = typeof p.iat === "number" ? p.iat : -Infinity;
  const iatBeyond = iat > nowSeconds + Math.max(rules.clockToleranceSeconds, IAT_TOLERANCE_SECONDS);
  const from = Math.max(nbf, iat);
  const at = from > nowSeconds && nbf <= nowSeconds + rules.clockToleranceSeconds && !iatBeyond ? new Date(from * 1000) : now;
  try {
    UnsecuredJWT.decode(`${verifiedHeader}.${payloadSegment}.`, {
      ...(rules.issuer !== undefined && { issuer: rules.issuer }),
      audience: audience as string | string[],
      currentDate: at,
      clockTolerance: 0,
      requiredClaims: ["iss", "sub", "aud", "exp"],
      // iat required, and refused when ahead of `at`; no age limit of its own (exp bounds a
      // token's life): the latest time a Date holds.
      maxTokenAge: 8.64e12,
    });
  } catch (e) {
    // An iat beyond its tolerance is the refusal, whichever of nbf and iat jose looked at first.
    if (iatBeyond && e instanceof errors.JWTClaimValidationFailed && (e.claim === "nbf" || e.claim === "iat") && e.reason === "check_failed") {
      throw refuse("TOKEN_NOT_YET_VALID", "the token was issued in the future", claimCheck(e));
    }
    throw claimRefusal(e, p);
  }
  // A JWT API access token's aud is the audience itself, as Tessera requires (jose took an array
  // naming it, RFC 7519's form, which Tessera never issues and refuses); a session token's may be
  // an array naming the client id, in both.
  if (p.token_type !== undefined && p.aud !== audience) throw refuse("WRONG_AUDIENCE", "the token was issued for another audience");
  if (!isString(p.iss)) throw refuse("INVALID_CLAIMS", 'the token has no "iss"');
  if (!isString(p.sub)) throw refuse("INVALID_CLAIMS", 'the token has no "sub"');

  if (p.token_type !== undefined) {
    if (!isString(p.user)) throw refuse("INVALID_CLAIMS", 'the token has no "user"');
    if (p.authentication_method !== "password" && p.authentication_method !== "refresh_token") {
      throw refuse("INVALID_CLAIMS", 'the token has no valid "authentication_method"');
    }
    // Shapes Tessera holds its access tokens to (jwt-tokens.ts), though what they say (a source
    // key revoked, a password changed since) is for Tessera alone to judge.
    if (p.source_kids !== undefined && !(Array.isArray(p.source_kids) && p.source_kids.every((k) => typeof k === "string"))) {
      throw refuse("INVALID_CLAIMS", 'the token\'s "source_kids" claim is malformed');
    }
    if (p.credential_epoch !== undefined && !Number.isSafeInteger(p.credential_epoch)) throw refuse("INVALID_CLAIMS", 'the token\'s "credential_epoch" claim is malformed');
    const claims = p as unknown as JwtAccessClaims;
    return { kind: "jwt", userId: claims.sub, user: claims.user, authenticationMethod: claims.authentication_method, expiresAt: new Date(claims.exp * 1000), claims };
  }
  if (!isString(p.sid)) throw refuse("INVALID_CLAIMS", 'the token has no "sid"');
  if (!isString(p.jti)) throw refuse("INVALID_CLAIMS", 'the token has no "jti"');
  const claims = p as unknown as SessionAccessClaims;
  const audiences = typeof claims.aud === "string" ? [claims.aud] : claims.aud;
  const clientId = rules.clientIds.find((c) => audiences.includes(c))!;
  return { kind: "session", userId: claims.sub, sessionId: claims.sid, clientId, tokenId: claims.jti, expiresAt: new Date(claims.exp * 1000), claims };
}

/** The largest time a Date holds, in seconds since the epoch (8.64e15 ms, ECMA-262 21.4.1.1). */
const latestDateSeconds = 8.64e12;

/**
 * The refusal of a payload holding a number no reader can use, which jose's claim checks let
 * through (they ask only that a time claim be a number): one JSON writes as no number (`1e400`
 * parses as Infinity: an exp of 1e400 never expires, and its expiresAt is an Invalid Date), at any
 * depth of any claim, or a time claim (iat, nbf, exp) before the epoch or past what a Date holds.
 * Undefined when there is none. Checked before the issuer, audience and times, as Tessera does:
 * the same rule as Tessera's verifier (src/core/token-verifier.ts unusableNumber), kept here
 * because this package cannot import the server's sources.
 */
function unusableNumber(payload: Record<string, unknown>) {
  for (const claim of ["iat", "nbf", "exp"] as const) {
    const value = payload[claim];
    if (typeof value === "number" && Number.isFinite(value) && !(value >= 0 && value <= latestDateSeconds)) {
      return refuse("INVALID_CLAIMS", `the token's "${claim}" claim is out of range`);
    }
  }
  for (const [claim, value] of Object.entries(payload)) {
    if (!holdsOnlyFiniteNumbers(value)) {
      // Named when the name is a plain word (the payload's signature has verified).
      return refuse("INVALID_CLAIMS", /^[\w.-]{1,64}$/.test(claim) ? `the token's "${claim}" claim must be a finite number` : "a claim of the token must be a finite number");
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

/** jose's claim errors as this package's codes, the cause what jose said without the claims (claimCheck). */
function claimRefusal(e: unknown, p: Record<string, unknown>) {
  const cause = claimCheck(e);
  if (e instanceof errors.JWTExpired) return refuse("TOKEN_EXPIRED", "the token has expired", cause);
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.reason === "check_failed" || e.reason === "unspecified") {
      if (e.claim === "iss") return refuse("WRONG_ISSUER", "the token was issued by another issuer", cause);
      if (e.claim === "aud") {
        return refuse("WRONG_AUDIENCE", p.token_type !== undefined ? "the token was issued for another audience" : "the token was issued for another client id", cause);
      }
      if (e.claim === "nbf") return refuse("TOKEN_NOT_YET_VALID", "the token is not valid yet", cause);
      if (e.claim === "iat") return refuse("TOKEN_NOT_YET_VALID", "the token was issued in the future", cause);
    }
    return refuse("INVALID_CLAIMS", `the token's "${e.claim}" claim is missing or malformed`, cause);
  }
  return refuse("INVALID_CLAIMS", "the token's claims are malformed", cause);
}

/**
 * What jose said of the claims, as a refusal's cause: its name, message (claim names only) and
 * stack, and its `code`, `claim` and `reason` (`ERR_JWT_EXPIRED`, `exp`, `check_failed`). Not
 * jose's error itself: it holds the whole claims set (`payload`, and again in its own cause),
 * the user's id and login among them, which a logger writing out an error's fields (and its
 * cause's) would write.
 */
function claimCheck(e: unknown): Error {
  const jose = e instanceof errors.JOSEError ? e : undefined;
  const check = new Error(jose?.message ?? "the claims could not be checked");
  if (jose === undefined) return check;
  Object.defineProperty(check, "name", { value: jose.name, configurable: true, writable: true });
  if (jose.stack !== undefined) check.stack = jose.stack;
  const { claim, reason } = jose as Partial<errors.JWTClaimValidationFailed>;
  return Object.assign(check, { code: jose.code }, claim !== undefined && { claim }, reason !== undefined && { reason });
}
