// The claims of a token whose signature verified, checked in one place and in a fixed order:
// shape of the registered claims, issuer, kind (a refresh token stops here), audience for that
// kind, the kind's own claims, and time last (so an expired token of the wrong audience says
// WRONG_AUDIENCE, as jose orders its checks).
//
// Tessera issues two kinds of access token, told apart by their claims:
// - seed 000 session access tokens: `aud` is the client id the session is bound to; `sub`
//   (user id), `sid` (session id), `jti` (token id); no `token_type`.
// - seed 004 JWT API access tokens: `aud` is TESSERA_JWT_AUDIENCE; `token_type: "access_token"`,
//   `sub` (user id), `user` (user name), `authentication_method`. Seed 004 refresh tokens carry
//   the same audience with `token_type: "refresh_token"`: refused here.
import { refuse } from "./errors.js";

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
  readonly clockToleranceSeconds: number;
}

const isString = (v: unknown): v is string => typeof v === "string" && v !== "";
const isTime = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

export function checkClaims(p: Record<string, unknown>, rules: ClaimRules, nowSeconds: number): VerifiedToken {
  if (!isTime(p.exp)) throw refuse("INVALID_CLAIMS", 'the token has no numeric "exp"');
  if (p.nbf !== undefined && !isTime(p.nbf)) throw refuse("INVALID_CLAIMS", 'the token\'s "nbf" is not a number');
  if (p.iat !== undefined && !isTime(p.iat)) throw refuse("INVALID_CLAIMS", 'the token\'s "iat" is not a number');
  if (!isString(p.iss)) throw refuse("INVALID_CLAIMS", 'the token has no "iss"');
  if (rules.issuer !== undefined && p.iss !== rules.issuer) throw refuse("WRONG_ISSUER", "the token was issued by another issuer");
  if (!isString(p.sub)) throw refuse("INVALID_CLAIMS", 'the token has no "sub"');
  const audiences = audienceList(p.aud);

  let token: VerifiedToken;
  if (p.token_type !== undefined) {
    if (p.token_type !== "access_token") throw refuse("WRONG_TOKEN_TYPE", `not an access token (token_type ${JSON.stringify(p.token_type)})`);
    if (rules.audience === undefined || !audiences.includes(rules.audience)) {
      throw refuse("WRONG_AUDIENCE", rules.audience === undefined ? "JWT API tokens are not accepted (no audience configured)" : "the token was issued for another audience");
    }
    if (!isString(p.user)) throw refuse("INVALID_CLAIMS", 'the token has no "user"');
    if (p.authentication_method !== "password" && p.authentication_method !== "refresh_token") {
      throw refuse("INVALID_CLAIMS", 'the token has no valid "authentication_method"');
    }
    const claims = p as unknown as JwtAccessClaims;
    token = { kind: "jwt", userId: claims.sub, user: claims.user, authenticationMethod: claims.authentication_method, expiresAt: new Date(claims.exp * 1000), claims };
  } else if (p.sid !== undefined) {
    const clientId = rules.clientIds.find((c) => audiences.includes(c));
    if (clientId === undefined) {
      throw refuse("WRONG_AUDIENCE", rules.clientIds.length === 0 ? "session tokens are not accepted (no client id configured)" : "the token was issued for another client id");
    }
    if (!isString(p.sid)) throw refuse("INVALID_CLAIMS", 'the token has no "sid"');
    if (!isString(p.jti)) throw refuse("INVALID_CLAIMS", 'the token has no "jti"');
    const claims = p as unknown as SessionAccessClaims;
    token = { kind: "session", userId: claims.sub, sessionId: claims.sid, clientId, tokenId: claims.jti, expiresAt: new Date(claims.exp * 1000), claims };
  } else {
    throw refuse("INVALID_CLAIMS", "not a Tessera access token (neither token_type nor sid)");
  }

  const tolerance = rules.clockToleranceSeconds;
  if (p.nbf !== undefined && (p.nbf as number) > nowSeconds + tolerance) throw refuse("TOKEN_NOT_YET_VALID", "the token is not valid yet");
  if (p.exp <= nowSeconds - tolerance) throw refuse("TOKEN_EXPIRED", "the token has expired");
  return token;
}

/** `aud` as RFC 7519 allows it: one string or an array of strings. */
function audienceList(aud: unknown): readonly string[] {
  if (isString(aud)) return [aud];
  if (Array.isArray(aud) && aud.length > 0 && aud.every(isString)) return aud;
  throw refuse("INVALID_CLAIMS", 'the token has no "aud"');
}
