// User tokens (seed 002) and the browser session behind seed 003's `tessera_session` cookie.
//
// Both are opaque random secrets of which the store keeps only SHA-256 (one user_tokens row
// each), checked the same way: enabled, unexpired, user active, created after the user's last
// password change. They are told apart by the secret's shape, with no I/O: a bearer user token
// is a lower-case UUID (the form seed 002 shows), a cookie session 43 characters of base64url.
// The two shapes cannot overlap (different lengths), so a cookie value is never accepted as a
// bearer token nor a bearer token as the cookie, and anything else (an API token, a JWT) is
// refused before the store is asked.
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { UserTokenRecord, UserTokenStore } from "../store/ports/user-tokens.js";
import type { UserRecord } from "../store/ports/users.js";
import type { Clock } from "./clock.js";
import type { KeyRing } from "./key-ring.js";
import { outdated } from "./credential-lifecycle.js";
import { sourcesLive, type CredentialSourceStores } from "./credential-sources.js";
import { durableBeforeError, invalidField, permissionDenied, storedOrWithdrawn, unauthenticated, type Reason } from "./errors.js";
import { checkFreeText } from "./text.js";
import { hashSecret, randomId, randomToken, secretEquals } from "./secrets.js";
import type { Users } from "./users.js";

/** Longest accepted `note`. */
export const MAX_NOTE_LENGTH = 1024;

/** The note stored on cookie sessions, so an operator looking at the store can tell them apart. */
export const COOKIE_SESSION_NOTE = "tessera_session cookie";

const BEARER_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const COOKIE_SHAPE = /^[A-Za-z0-9_-]{43}$/;
// RFC 3339 can only write years 0000-9999; protobuf Timestamps are limited to 0001-9999.
const LATEST_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export type UserTokenKind = "bearer" | "cookie";

const refused = (reason: Reason, message: string) => unauthenticated(reason, message);

/** The login comes in the HTTP Basic credentials (the Authorization header), not in a field. */
const basicLogin = { field: "authorization", label: "the Basic login" };

export interface UserTokensDeps {
  userTokens: UserTokenStore;
  users: Pick<Users, "authenticateThen" | "bumpLastLogin" | "credentialState">;
  /** Whether a key a cookie session's source tokens were signed by has been revoked (UserTokenRecord.sourceKids). */
  keys: Pick<KeyRing, "anyRevoked">;
  /** Where the credentials a cookie session descends from are looked up (UserTokenRecord.sources). */
  sources: CredentialSourceStores;
  clock: Clock;
  logger: Logger;
  config: Pick<Config, "lastUsedIntervalSeconds" | "sessionCookieTtlSeconds" | "maxUserTokensPerUser">;
}

/** Where a cookie session comes from (UserTokens.startCookieSession). */
export interface CookieSessionOrigin {
  notAfter?: Date;
  sourceKids?: readonly string[];
  sources?: readonly string[];
}

export interface LoginInput {
  login: string;
  password: string;
  note?: string;
  /** Undefined: the token never expires. */
  expirationTime?: Date;
  clientAddress: string;
}

/** A login's user token, stored (UserTokens.begin). */
export interface IssuedToken {
  result: { secret: string; token: UserTokenRecord };
  durable: () => Promise<void>;
  loggedOutByCap: Promise<void>;
}

export class UserTokens {
  private readonly intervalMs: number;

  constructor(private readonly deps: UserTokensDeps) {
    this.intervalMs = deps.config.lastUsedIntervalSeconds * 1000;
  }

  /**
   * POST /auth/login: password login (abuse protection and timing-safe failure are Users'),
   * then a new token. Input is checked first, so bad input never costs a password hash or
   * counts as a failed login. Returns the secret (shown once) and the stored record.
   */
  async login(input: LoginInput): Promise<{ secret: string; token: UserTokenRecord }> {
    const { result, durable, loggedOutByCap } = await this.begin(input);
    await loggedOutByCap;
    await durable();
    return result;
  }

  /**
   * login(), answered once the token is stored, with `durable`, which resolves once it and every
   * write before it are durable (UserTokenStore.createThenSync): a caller's own write in between
   * (AuditedUserTokens' user_token.login event) shares their fsync. `loggedOutByCap`:
   * loggedOutByCap() for the tokens the cap logged out, under way (it never rejects), for the
   * caller to wait for before its answer: not waited for by issue(), so that its own event is
   * recorded in the same turn as theirs (AuditedUserTokens.issue: one commit of the audit table
   * for the login's events and one fsync, not one of each for the cap's and more for
   * user_token.login). An error goes out once it has settled.
   */
  protected async begin(input: LoginInput): Promise<IssuedToken> {
    const now = this.deps.clock.now();
    const note = input.note === undefined || input.note === "" ? undefined : input.note;
    checkFreeText("note", note, MAX_NOTE_LENGTH);
    const expiresAt = input.expirationTime;
    if (expiresAt !== undefined) {
      const ms = expiresAt.getTime();
      if (!Number.isFinite(ms) || ms > LATEST_TIME_MS) throw invalidField("expiration_time", "expirationTime is not a valid RFC 3339 time");
      if (ms <= now.getTime()) throw invalidField("expiration_time", "expirationTime must be in the future");
    }
    // The login's audit event (authenticateThen), then the token, both unsynced, then
    // user_token.login (AuditedUserTokens.issue, in the same turn): on the embedded store the
    // answer waits for one fsync that started after all of them (login()).
    return this.deps.users.authenticateThen(input.login, input.password, "email", input.clientAddress, basicLogin, (user) => this.issue(user, note, expiresAt, input.login));
  }

  /**
   * The user token of a login whose password was checked (login()). `_login`: the login as the
   * caller gave it (AuditedUserTokens' user_token.login event names it).
   */
  protected async issue(
    user: UserRecord,
    note: string | undefined,
    expiresAt: Date | undefined,
    _login: string,
  ): Promise<IssuedToken> {
    const secret = randomId();
    // A password change or deactivation while the login was in flight: withdraw the token (the
    // withdrawal waits for an fsync that covers the token's commit); so is one whose call ended
    // first (its deadline passed, a store call refused at it), or whose store or server failed,
    // its own write included, beyond the deadline. An error of any step after the write goes out
    // once the token is durable.
    return this.withdrawnUnlessHandedOut(
      // The user's oldest tokens and cookie sessions beyond TESSERA_MAX_USER_TOKENS_PER_USER are
      // logged out with it.
      (id) =>
        this.deps.userTokens.createThenSync(
          {
            id,
            hash: hashSecret(secret),
            userId: user.id,
            ...(note !== undefined && { note }),
            ...(expiresAt !== undefined && { expiresAt }),
            createdAt: this.deps.clock.now(),
            credentialEpoch: user.credentialEpoch,
          },
          this.deps.config.maxUserTokensPerUser,
        ),
      async ({ record: token, durable, ended }, withdraw) => {
        const loggedOutByCap = this.loggedOutByCap(user.id, ended, { eventFollows: true });
        const answer = durableBeforeError(durable, async () => {
          const state = await this.deps.users.credentialState(user.id, user.credentialEpoch);
          if (state !== "current") {
            await withdraw();
            if (state === "deactivated") throw permissionDenied("USER_DEACTIVATED", "user is deactivated");
            throw unauthenticated("INVALID_CREDENTIALS", "invalid login or password");
          }
          this.deps.logger.info("user token created", { userId: user.id, credentialId: token.id });
          return { result: { secret, token }, durable, loggedOutByCap };
        });
        return answer.catch(async (e: unknown) => {
          await loggedOutByCap;
          throw e;
        });
      },
    );
  }

  /** The `userToken` credential: a live bearer user token, its use recorded. 401 otherwise. */
  verify(secret: string): Promise<UserTokenRecord> {
    return this.check(secret, "bearer");
  }

  /** The `sessionCookie` credential: a live cookie session, its use recorded. 401 otherwise. */
  verifyCookie(secret: string): Promise<UserTokenRecord> {
    return this.check(secret, "cookie");
  }

  /**
   * A new cookie session for the user (seed 003's exchange); the secret is the cookie value. It
   * lasts TESSERA_SESSION_COOKIE_TTL_SECONDS, but never past `notAfter` (the end of the
   * credential the exchanged token was made from). It records `credentialEpoch` (the one the
   * exchanged token was made under); null when the user's epoch moved meanwhile (the new
   * session is then withdrawn at once) or nothing of the lifetime is left. `sourceKids`: those
   * the exchanged token records; the session ends once one of those keys is revoked. `sources`:
   * the credentials it descends from (UserTokenRecord.sources); it ends once one of them has
   * ended. When a step after its write throws, the session is withdrawn (its secret never
   * handed out) and the error passed on.
   */
  async startCookieSession(
    user: { id: string; credentialEpoch: number },
    origin: CookieSessionOrigin = {},
  ): Promise<{ secret: string; token: UserTokenRecord; maxAgeSeconds: number } | null> {
    const { notAfter, sourceKids, sources } = origin;
    const now = this.deps.clock.now();
    let expiresAt = now.getTime() + this.deps.config.sessionCookieTtlSeconds * 1000;
    if (notAfter !== undefined) expiresAt = Math.min(expiresAt, notAfter.getTime());
    const maxAgeSeconds = Math.floor((expiresAt - now.getTime()) / 1000);
    if (maxAgeSeconds <= 0) return null;
    const secret = randomToken(32);
    // Refused once stored (the user's epoch moved), the session is withdrawn (null); so is one
    // whose call ended first (its deadline passed, a store call refused at it), or whose store or
    // server failed, its own write included, beyond the deadline, before the error goes on.
    return this.withdrawnUnlessHandedOut(
      // Counted with the user's user tokens (one cap, TESSERA_MAX_USER_TOKENS_PER_USER).
      (id) =>
        this.deps.userTokens.create(
          {
            id,
            hash: hashSecret(secret),
            userId: user.id,
            note: COOKIE_SESSION_NOTE,
            expiresAt: new Date(now.getTime() + maxAgeSeconds * 1000),
            createdAt: now,
            credentialEpoch: user.credentialEpoch,
            ...(sourceKids !== undefined && sourceKids.length > 0 && { sourceKids: [...sourceKids] }),
            ...(sources !== undefined && sources.length > 0 && { sources: [...sources] }),
          },
          this.deps.config.maxUserTokensPerUser,
        ),
      async ({ record: token, ended }, withdraw) => {
        await this.loggedOutByCap(user.id, ended);
        if ((await this.deps.users.credentialState(user.id, user.credentialEpoch)) !== "current") {
          await withdraw();
          return null;
        }
        this.deps.logger.info("cookie session started", { userId: user.id, credentialId: token.id });
        return { secret, token, maxAgeSeconds };
      },
    );
  }

  /**
   * A new user token or cookie session, its id made here: written by `write`, then `next`, given
   * its withdrawal (disabled); withdrawn when either fails, save for a refusal
   * (storedOrWithdrawn: no token of it went out).
   */
  private withdrawnUnlessHandedOut<S, T>(write: (id: string) => Promise<S>, next: (stored: S, withdraw: () => Promise<boolean>) => Promise<T>): Promise<T> {
    const id = randomId();
    const withdraw = () => this.deps.userTokens.disable(id, this.deps.clock.now());
    return storedOrWithdrawn(withdraw, this.deps.logger, () => write(id), (stored) => next(stored, withdraw));
  }

  /**
   * The user tokens and cookie sessions of `userId` a new one logged out for
   * TESSERA_MAX_USER_TOKENS_PER_USER: logged here; AuditedUserTokens records a user_token.logout
   * event (reason CAP) for each. `eventFollows`: the caller records its own event next, in the
   * same turn, and waits for that event to be durable (login()), so these are made durable with
   * it (AppendOptions.syncedByNextWrite). Never rejects.
   */
  protected async loggedOutByCap(userId: string, tokenIds: readonly string[], _options: { eventFollows?: boolean } = {}): Promise<void> {
    if (tokenIds.length > 0) this.deps.logger.info("user tokens logged out by the cap", { userId, count: tokenIds.length });
  }

  /** POST /auth/bump: the user's new last login time. */
  bump(userId: string): Promise<Date> {
    return this.deps.users.bumpLastLogin(userId);
  }

  /**
   * POST /auth/logout: disables the token (version + 1). Of two concurrent logouts with one
   * token, the second is 401 like any call with a disabled token. `userId`: the token's user,
   * named by the audit trail (audited.ts).
   */
  async logout(tokenId: string, _userId?: string): Promise<void> {
    if (!(await this.deps.userTokens.disable(tokenId, this.deps.clock.now()))) throw refused("TOKEN_REVOKED", "user token is disabled");
    this.deps.logger.info("user token logged out", { credentialId: tokenId });
  }

  /** POST /auth/logout with the session cookie: ends the cookie session (as `logout` does a token). */
  async endCookieSession(sessionId: string, _userId?: string): Promise<void> {
    if (!(await this.deps.userTokens.disable(sessionId, this.deps.clock.now()))) throw refused("TOKEN_REVOKED", "session cookie is disabled");
    this.deps.logger.info("cookie session ended", { credentialId: sessionId });
  }

  private async check(secret: string, kind: UserTokenKind): Promise<UserTokenRecord> {
    const shape = kind === "bearer" ? BEARER_SHAPE : COOKIE_SHAPE;
    const what = kind === "bearer" ? "user token" : "session cookie";
    if (!shape.test(secret)) throw refused("INVALID_TOKEN", `invalid ${what}`);
    const hash = hashSecret(secret);
    // The token and its user's standing in one store call (UserTokenStore.findByHashWithUser):
    // this runs on every call a user token or cookie session authenticates. The user is still
    // judged only after the token's own expiry, logout and keys, so an expired or logged-out
    // token is answered as such whatever its user's standing.
    const found = await this.deps.userTokens.findByHashWithUser(hash);
    // The store matched the hash already; re-check in constant time so a loosely matching
    // store can never authenticate the wrong token.
    if (found === null || !secretEquals(found.token.hash, hash)) throw refused("INVALID_TOKEN", `invalid ${what}`);
    const { token, user } = found;
    // Expiry before the logout: an expired token answers TOKEN_EXPIRED whether or not it was
    // logged out (seed 002: expirationTime ends it "regardless of enabled state"). Checked the
    // other way round, the answer changed under housekeeping on MongoDB, where a logout is a mark
    // that carries the token's expiry and is deleted once that has passed.
    const now = this.deps.clock.now();
    if (token.expiresAt !== undefined && token.expiresAt.getTime() <= now.getTime()) throw refused("TOKEN_EXPIRED", `${what} has expired`);
    if (!token.enabled) throw refused("TOKEN_REVOKED", `${what} is disabled`);
    // Descends from a token of a key revoked since: ended with it, answered as a logout.
    if (await this.deps.keys.anyRevoked(token.sourceKids)) throw refused("TOKEN_REVOKED", `${what} is disabled`);
    if (user === null || !user.active) throw refused("USER_DEACTIVATED", `the ${what}'s user does not exist or is deactivated`);
    if (outdated(token, token.createdAt, user)) throw refused("TOKEN_REVOKED", `${what} predates a password change`);
    // Descends from a credential that has ended since (a logout, DELETE /session): ended with it,
    // answered as a logout. Asked last: a password change or deactivation, which may have ended
    // that credential too, is named as such.
    if (!(await sourcesLive(this.deps.sources, token.sources, now))) throw refused("TOKEN_REVOKED", `${what} is disabled`);
    await this.recordUse(token, now);
    // Checked against the user's epoch just now: the token stands for the current one.
    return { ...token, credentialEpoch: user.credentialEpoch };
  }

  /**
   * Coalesced `lastUsageTime`: no write when the row just read says the last one is recent;
   * otherwise one conditional update, which concurrent instances cannot double. Bookkeeping
   * must not fail the call it records: a failed write is logged.
   */
  private async recordUse(token: UserTokenRecord, now: Date): Promise<void> {
    if (token.lastUsedAt !== undefined && token.lastUsedAt.getTime() >= now.getTime() - this.intervalMs) return;
    try {
      await this.deps.userTokens.touchLastUsed(token.id, now, this.intervalMs);
    } catch (e) {
      this.deps.logger.warn("recording user token use failed", { credentialId: token.id, error: e instanceof Error ? e.message : String(e) });
    }
  }
}
