// Seed 004's tokens: access JWTs and refresh JWTs, signed by the key ring and verified by the
// token verifier.
//
// Access tokens are self-contained, but every online check also looks the user up, so a
// deactivated user's tokens stop working at once (offline verifiers using the JWKS only see
// the signature and `exp`: that is why access tokens are short-lived). Refresh tokens carry a
// `jti` whose state lives in the store: revoked one by one (DELETE /refresh_token), all at
// once on deactivation, and those issued before a password change are refused.
//
// Every token carries the user's credential epoch (`credential_epoch`, see
// credential-lifecycle.ts) as the login read it. An access token from before a password change
// still verifies until it expires (offline verifiers cannot be told anyway), but it mints
// nothing: no refresh token, no further password change, no deactivation (nor, elsewhere,
// hand-off tokens).
//
// A token made with another token records the kids of the keys that signed what it was made
// from (`source_kids`): a refresh token the access token's (and what that one records), an
// access token of a refresh login the refresh token's (and what that one records). Revoking a
// key ends them with the tokens it signed: a key that leaked must not have bought a credential
// signed by the next key. Hand-off tokens and the cookie sessions they start record the same
// list (authentication-tokens.ts).
import type { Logger } from "../logger.js";
import type { JwtRefreshTokenStore } from "../store/ports/jwt-refresh-tokens.js";
import type { UserRecord } from "../store/ports/users.js";
import type { Clock } from "./clock.js";
import { issuedBeforePasswordChange, outdated } from "./credential-lifecycle.js";
import { AuthError, invalidArgument, invalidField, permissionDenied, recode, requireField, storedOrWithdrawn, unauthenticated } from "./errors.js";
import type { KeyRing } from "./key-ring.js";
import type { TokenVerifier, VerifiedPayload, VerifyOptions } from "./token-verifier.js";
import { randomId } from "./secrets.js";
import type { Users } from "./users.js";

export type AuthenticationMethod = "password" | "refresh_token";

const compactJws = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Whether `value` has the shape of a compact JWS (says nothing about its validity). */
export function looksLikeJwt(value: string): boolean {
  return compactJws.test(value);
}

export const accessTokenType = "access_token";
export const refreshTokenType = "refresh_token";

/**
 * The `aud` of refresh tokens: not the access tokens' (TESSERA_JWT_AUDIENCE), so that a verifier
 * of access tokens that checks only the signature, issuer and audience (an offline one, over the
 * JWKS) refuses a refresh token, which lives far longer and is revoked only in Tessera's store
 * (RFC 8725, 3.12: kinds of JWT of one issuer with mutually exclusive validation rules). Only
 * Tessera takes them. Refresh tokens issued with the access audience, before they had their own,
 * are still taken as refresh tokens until they expire.
 */
export function refreshTokenAudience(audience: string): string {
  return `${audience}/refresh_token`;
}

/** The claims of a verified access token, as issued. */
export type JwtClaims = VerifiedPayload & {
  readonly sub: string;
  readonly user: string;
  readonly token_type: string;
};

export interface VerifiedAccessToken {
  readonly userId: string;
  readonly claims: JwtClaims;
  readonly authenticationMethod: AuthenticationMethod;
  /** The credential epoch the token was issued under (-1: before the user's last password change, for a token without one). */
  readonly credentialEpoch: number;
  /** The user's credential epoch as this check read it: the token's is outdated when they differ. */
  readonly userCredentialEpoch: number;
  /** The token's kid and those it records (`source_kids`): what is made with it ends once one of these keys is revoked. */
  readonly keyIds: readonly string[];
}

export const credentialEpochClaim = "credential_epoch";
/** The kids of the keys that signed the tokens a token was made from (see above). */
export const sourceKidsClaim = "source_kids";

/** The kid of a verified token's key and the kids the token records, each once. */
function keyIdsOf({ kid, claims }: VerifiedJwt): string[] {
  return [...new Set([kid, ...sourceKidsOf(claims)])];
}

/** A verified token's claims, and the kid of the key that signed it. */
interface VerifiedJwt<C extends JwtClaims = JwtClaims> {
  readonly claims: C;
  readonly kid: string;
}

/** The `source_kids` of verified claims (their shape checked by verifyToken); none when absent. */
function sourceKidsOf(claims: JwtClaims): readonly string[] {
  return (claims[sourceKidsClaim] as readonly string[] | undefined) ?? [];
}

/** What a verification may let pass (VerifyOptions): for a token being used, nothing. */
type TokenChecks = Pick<VerifyOptions, "allowExpired" | "endedKeys">;

/**
 * A refresh token being ended (revoked, or named in the audit trail of its revocation): one
 * that can no longer be used, expired or signed by a key that verifies no more, is still its
 * user's, and its revocation idempotent.
 */
const endingToken: TokenChecks = { allowExpired: true, endedKeys: true };

/** An access token's user deactivated (or unknown): every answer to it, whenever the call learns it. */
const userDeactivated = () => unauthenticated("USER_DEACTIVATED", "the token's user is deactivated");
const credentialOutdated = () =>
  unauthenticated("TOKEN_REVOKED", "the access token was issued before the user's last password change");

export interface JwtTokensDeps {
  ring: Pick<KeyRing, "sign" | "anyRevoked">;
  verifier: Pick<TokenVerifier, "verifyKeyed">;
  users: Pick<Users, "authenticateAndIssue" | "noteLogin" | "get" | "create" | "changePassword" | "deactivate" | "credentialState">;
  refreshTokens: JwtRefreshTokenStore;
  clock: Clock;
  logger: Logger;
  issuer: string;
  audience: string;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  /** TESSERA_MAX_JWT_REFRESH_TOKENS_PER_USER: a new refresh token revokes the user's oldest beyond it. */
  maxRefreshTokensPerUser: number;
  /** lastLoginAt is written at most once per this interval per user. */
  lastLoginIntervalSeconds: number;
}

export class JwtTokens {
  /** The audiences a token of this API may carry: the access tokens', then the refresh tokens'. */
  private readonly audiences: readonly string[];

  constructor(private readonly deps: JwtTokensDeps) {
    this.audiences = [deps.audience, refreshTokenAudience(deps.audience)];
  }

  /**
   * GET /token: a password login with `user` and `pass`; with `user` only, `user` is a refresh
   * token (the document's one-field refresh login).
   */
  async getToken(user: string, pass: string, clientAddress: string): Promise<string> {
    requireField("user", user);
    if (pass !== "") return this.loginWithPassword(user, pass, clientAddress);
    if (!looksLikeJwt(user)) {
      const message = "pass is required (or user must be a refresh token)";
      throw invalidArgument("MISSING_FIELDS", message, { fieldViolations: [{ field: "pass", description: message }] });
    }
    return this.loginWithRefreshToken(user);
  }

  /** POST /user: a user with a user name and a password, both required (sign-ups are limited per `clientAddress`). */
  async createUser(user: string, pass: string, clientAddress: string): Promise<void> {
    requireField("user", user);
    requireField("pass", pass);
    await this.deps.users.create({ login: user, kind: "name", password: pass, passwordField: "pass", clientAddress });
  }

  /**
   * Password login (abuse protection and deactivation handled by Users.authenticate). Its audit
   * event records the answer, the refusal below included (Users.authenticateAndIssue).
   */
  loginWithPassword(login: string, password: string, clientAddress: string): Promise<string> {
    return this.deps.users.authenticateAndIssue(login, password, "name", clientAddress, async (user) => {
      const [token] = await Promise.all([
        this.issueAccessToken(user, "password"),
        this.deps.users.noteLogin(user, this.deps.lastLoginIntervalSeconds),
      ]);
      // Deactivated, or the password changed, while the login was in flight (on any instance; the
      // password was checked against the hash the user's first read gave): refused as a login
      // after it is, not answered with a token that offline verifiers would take until it expires.
      // After a change, the password this login gave is the old one: answered as that is now.
      const state = await this.deps.users.credentialState(user.id, user.credentialEpoch);
      if (state === "deactivated") throw permissionDenied("USER_DEACTIVATED", "user is deactivated");
      if (state === "changed") throw unauthenticated("INVALID_CREDENTIALS", "invalid login or password");
      return token;
    });
  }

  /** Refresh login: a valid, unrevoked refresh token of an active user, newer than their password. */
  async loginWithRefreshToken(token: string): Promise<string> {
    const verified = await this.verifyRefreshToken(token, "unauthenticated");
    const { claims } = verified;
    // Minted with an access token of a key revoked since: revoked with it.
    if (await this.deps.ring.anyRevoked(sourceKidsOf(claims))) throw unauthenticated("TOKEN_REVOKED", "refresh token revoked");
    const user = await this.refreshLogin(claims);
    const issued = await this.issueAccessToken(user, "refresh_token", keyIdsOf(verified));
    // Read again once the token is made: a revocation, deactivation or password change while the
    // login was in flight (on any instance) is answered as a login after it is, with no token.
    await this.refreshLogin(claims);
    return issued;
  }

  /**
   * The user of a refresh token that may log in (its record and user read together): unrevoked,
   * its user active, and the user's credential epoch still the token's.
   */
  private async refreshLogin(claims: JwtClaims & { jti: string }): Promise<UserRecord> {
    const [record, user] = await Promise.all([this.deps.refreshTokens.findByJti(claims.jti), this.deps.users.get(claims.sub)]);
    if (!record || record.userId !== claims.sub || record.revokedAt !== undefined) {
      throw unauthenticated("TOKEN_REVOKED", "refresh token revoked");
    }
    if (!user) throw unauthenticated("TOKEN_REVOKED", "refresh token revoked");
    if (!user.active) throw permissionDenied("USER_DEACTIVATED", "user is deactivated");
    if (outdated(record, record.issuedAt, user)) {
      throw unauthenticated("TOKEN_REVOKED", "refresh token issued before the last password change");
    }
    return user;
  }

  /**
   * A new refresh token for the (already authenticated) user, whose access token was issued
   * under `credentialEpoch`: none when that is no longer the user's. The token is withdrawn
   * (revoked) at once when a change moved the epoch while it was being written, and, beyond the
   * deadline, before the error goes on, when the call ended (its deadline passed, a store call
   * refused at it) or the store or the server failed once it may have been stored
   * (storedOrWithdrawn): no refresh token is left live that no one received. `keyIds`: those of
   * the access token (VerifiedAccessToken.keyIds), recorded in the token (`source_kids`).
   */
  async issueRefreshToken(userId: string, credentialEpoch: number, keyIds: readonly string[] = []): Promise<string> {
    const user = await this.currentUser(userId, credentialEpoch);
    const now = this.deps.clock.now();
    const jti = randomId();
    const ttl = this.deps.refreshTokenTtlSeconds;
    const withdraw = () => this.deps.refreshTokens.revoke(jti, user.id, now);
    return storedOrWithdrawn(
      withdraw,
      this.deps.logger,
      () =>
        this.deps.refreshTokens.create(
          { jti, userId: user.id, issuedAt: now, expiresAt: new Date(now.getTime() + ttl * 1000), credentialEpoch },
          this.deps.maxRefreshTokensPerUser,
        ),
      async ({ ended }) => {
        await this.revokedByCap(user.id, ended);
        const state = await this.deps.users.credentialState(user.id, credentialEpoch);
        if (state !== "current") {
          await withdraw();
          if (state === "deactivated") throw userDeactivated();
          throw credentialOutdated();
        }
        const claims = {
          ...this.baseClaims(user, now),
          aud: refreshTokenAudience(this.deps.audience),
          token_type: refreshTokenType,
          jti,
          ...(keyIds.length > 0 && { [sourceKidsClaim]: [...keyIds] }),
        };
        return this.deps.ring.sign(claims, ttl);
      },
    );
  }

  /**
   * The refresh tokens (jtis) of `userId` a new one revoked for
   * TESSERA_MAX_JWT_REFRESH_TOKENS_PER_USER: AuditedJwtTokens records a jwt_refresh_token.revoked
   * event (reason CAP) for each.
   */
  protected async revokedByCap(_userId: string, _jtis: readonly string[]): Promise<void> {}

  /**
   * Revokes one of the user's refresh tokens. Not a refresh token, or another user's:
   * INVALID_ARGUMENT. A token of the user that can no longer be used is accepted (idempotent):
   * expired, already revoked, or signed by a key revoked or retired since (while the ring still
   * holds the key, which tells whose it is). Resolves with whether this call revoked it (false:
   * revoked already, by an earlier call, a cap or a password change, or its record deleted).
   */
  async revokeRefreshToken(userId: string, token: string): Promise<boolean> {
    requireField("refresh_token", token);
    const { claims } = await this.verifyRefreshToken(token, "invalid_argument", endingToken);
    const record = await this.deps.refreshTokens.findByJti(claims.jti);
    // Housekeeping deletes the record of an expired token; the token, signed for this user, still
    // proves it was theirs: the same answer as before the deletion.
    if (!record && claims.sub === userId && claims.exp * 1000 <= this.deps.clock.now().getTime()) return false;
    if (!record || record.userId !== userId || claims.sub !== userId) {
      throw invalidField("refresh_token", "refresh_token is not a refresh token of this user", "TOKEN_NOT_FOUND");
    }
    return this.deps.refreshTokens.revoke(claims.jti, userId, this.deps.clock.now());
  }

  /**
   * Whom a refresh token names, for the audit trail: its user and jti when its signature,
   * issuer and audience verify (expired or not; `ending`, for its revocation, also when its key
   * verifies no more: only a key still trusted names the user of a login), else nothing. Never
   * throws.
   */
  async refreshTokenOwner(token: string, ending = false): Promise<{ userId?: string; jti?: string }> {
    try {
      const { claims } = await this.verifyRefreshToken(token, "unauthenticated", ending ? endingToken : { allowExpired: true });
      return { userId: claims.sub, jti: claims.jti };
    } catch {
      return {};
    }
  }

  /**
   * Changes the password, for a caller whose access token was issued under the user's current
   * credential epoch; the credential lifecycle revokes every refresh token issued before it.
   */
  async changePassword(userId: string, credentialEpoch: number, newPassword: string): Promise<void> {
    requireField("pass", newPassword);
    const user = await this.currentUser(userId, credentialEpoch);
    try {
      // Checked again in the write: a concurrent change with the same token must not win too.
      await this.deps.users.changePassword(user, newPassword, "pass", credentialEpoch);
    } catch (e) {
      if (e instanceof AuthError && e.reason === "TOKEN_REVOKED") throw credentialOutdated();
      throw e;
    }
  }

  /**
   * Deactivates the user: their sessions, user tokens and refresh tokens end with it. As for a
   * password change, the caller's access token must be of the user's current credential epoch:
   * one from before a password change cannot deactivate the account that change took back.
   */
  async deleteUser(userId: string, credentialEpoch: number): Promise<void> {
    await this.currentUser(userId, credentialEpoch);
    // The credential lifecycle revokes the JWT refresh tokens too; access tokens stop working
    // because verifyAccessToken looks the user up.
    await this.deps.users.deactivate(userId);
  }

  /**
   * The credential check behind CREDENTIAL_JWT: a valid access token of an active user.
   * Failures are UNAUTHENTICATED with a short reason.
   */
  async verifyAccessToken(token: string): Promise<VerifiedAccessToken> {
    const verified = await this.verifyToken(token, {});
    const { claims } = verified;
    if (claims.token_type !== accessTokenType) throw unauthenticated("WRONG_TOKEN_TYPE", "not an access token");
    // Verified for either audience (a refresh token is told it is not an access token, above);
    // an access token must carry the access tokens' own.
    if (claims.aud !== this.deps.audience) throw unauthenticated("WRONG_AUDIENCE", "token issued for another audience");
    const method = claims.authentication_method;
    if (method !== "password" && method !== "refresh_token") throw unauthenticated("INVALID_TOKEN", "invalid token claims");
    // Its own key was checked by the verifier; those of the tokens it was made from, here.
    if (await this.deps.ring.anyRevoked(sourceKidsOf(claims))) {
      throw unauthenticated("INVALID_TOKEN", "token derived from a token signed by a revoked key");
    }
    const user = await this.deps.users.get(claims.sub);
    if (!user || !user.active) throw userDeactivated();
    const epoch = claims[credentialEpochClaim];
    let credentialEpoch: number;
    if (epoch === undefined) {
      // Issued before tokens carried the epoch: judged by its issue time.
      const issuedAt = typeof claims.iat === "number" ? new Date(claims.iat * 1000) : new Date(0);
      credentialEpoch = issuedBeforePasswordChange(issuedAt, user) ? -1 : user.credentialEpoch;
    } else if (typeof epoch === "number" && Number.isSafeInteger(epoch)) {
      credentialEpoch = epoch;
    } else {
      throw unauthenticated("INVALID_TOKEN", "invalid token claims");
    }
    return {
      userId: user.id,
      claims,
      authenticationMethod: method,
      credentialEpoch,
      userCredentialEpoch: user.credentialEpoch,
      keyIds: keyIdsOf(verified),
    };
  }

  /**
   * GET /check: the same rules, but every failure is INVALID_ARGUMENT with the reason. The token
   * is the one the caller presented (`access_token`, or the bearer token when that is empty;
   * the access layer refuses two different ones).
   */
  async check(presented: string): Promise<JwtClaims> {
    const token = requireField("access_token", presented);
    try {
      return (await this.verifyAccessToken(token)).claims;
    } catch (e) {
      if (e instanceof AuthError && e.code === "unauthenticated") throw recode(e, "invalid_argument", e.message, "access_token");
      throw e;
    }
  }

  /**
   * The active user, when `credentialEpoch` (the caller's access token's) is still theirs: else
   * TOKEN_REVOKED. Deactivated since the caller's check (on any instance): USER_DEACTIVATED, what
   * the check refuses a call after it with.
   */
  private async currentUser(userId: string, credentialEpoch: number): Promise<UserRecord> {
    const user = await this.deps.users.get(userId);
    if (!user || !user.active) throw userDeactivated();
    if (user.credentialEpoch !== credentialEpoch) throw credentialOutdated();
    return user;
  }

  private async issueAccessToken(user: UserRecord, method: AuthenticationMethod, sourceKids: readonly string[] = []): Promise<string> {
    const now = this.deps.clock.now();
    return this.deps.ring.sign(
      {
        ...this.baseClaims(user, now),
        token_type: accessTokenType,
        authentication_method: method,
        ...(sourceKids.length > 0 && { [sourceKidsClaim]: [...sourceKids] }),
      },
      this.deps.accessTokenTtlSeconds,
    );
  }

  private baseClaims(user: UserRecord, now: Date): Record<string, unknown> {
    const seconds = Math.floor(now.getTime() / 1000);
    return {
      user: user.login,
      sub: user.id,
      iss: this.deps.issuer,
      aud: this.deps.audience,
      iat: seconds,
      nbf: seconds,
      [credentialEpochClaim]: user.credentialEpoch,
    };
  }

  private async verifyRefreshToken(
    token: string,
    failure: "unauthenticated" | "invalid_argument",
    opts: TokenChecks = {},
  ): Promise<VerifiedJwt<JwtClaims & { jti: string }>> {
    let verified: VerifiedJwt;
    try {
      verified = await this.verifyToken(token, opts);
      const { claims } = verified;
      if (claims.token_type !== refreshTokenType) throw unauthenticated("WRONG_TOKEN_TYPE", "not a refresh token");
      if (typeof claims.jti !== "string" || claims.jti === "") throw unauthenticated("INVALID_TOKEN", "invalid token claims");
    } catch (e) {
      if (e instanceof AuthError && e.code === "unauthenticated") {
        throw recode(e, failure, `invalid refresh token: ${e.message}`, failure === "invalid_argument" ? "refresh_token" : undefined);
      }
      throw e;
    }
    return verified as VerifiedJwt<JwtClaims & { jti: string }>;
  }

  /**
   * Signature, algorithm, kid, time, issuer and audience (the verifier: the access tokens' or the
   * refresh tokens'; the callers hold each kind to its own), then the claim shapes.
   */
  private async verifyToken(token: string, opts: TokenChecks): Promise<VerifiedJwt> {
    const { claims: payload, kid } = await this.deps.verifier.verifyKeyed(token, {
      ...opts,
      issuer: this.deps.issuer,
      audience: this.audiences,
    });
    if (typeof payload.sub !== "string" || typeof payload.user !== "string" || typeof payload.token_type !== "string") {
      throw unauthenticated("INVALID_TOKEN", "invalid token claims");
    }
    const sourceKids = payload[sourceKidsClaim];
    if (sourceKids !== undefined && !(Array.isArray(sourceKids) && sourceKids.every((kid) => typeof kid === "string"))) {
      throw unauthenticated("INVALID_TOKEN", "invalid token claims");
    }
    return { claims: payload as JwtClaims, kid };
  }
}
