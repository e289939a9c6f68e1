// Sessions of seed 000. A session records the jti of its most recent access token (a JWT signed
// by the key ring) and owns a chain of opaque refresh tokens, stored only as SHA-256 hashes.
// Every check reads the store, so ending a session takes effect on every instance at once.
//
// Refresh rotation: the presented refresh token is spent with an atomic compare-and-set
// (store.refreshTokens.spendThenSync), which stores the new pair with the spend, sealed under a key
// derived from the presented refresh token and access token's jti (refresh-sealing.ts): exactly
// one caller's pair is kept. A refresh is retry-safe: within `refreshGraceSeconds` of the
// spend, the same refresh token with the same (now superseded) access token answers that same
// pair again — a retry after a lost answer, or a concurrent duplicate, which also finishes the
// refresh if its first caller stopped half-way (the child refresh token stored, the session's
// jti moved on; both steps are idempotent). The spent token with another access token within
// the window gets a plain 401; after it, a spent refresh token presented again means it was
// copied: the whole session ends (reuse detection), unless the refresh never stored its child
// refresh token (its call failed after the spend, so no client got the pair): the same refresh
// then finishes it, however late, and the window also counts from that answer.
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { RefreshTokenRecord, RefreshTokenStore, SessionRecord, SessionStore } from "../store/ports/sessions.js";
import { outcomeOf } from "./audit.js";
import { withinWindow, type Clock } from "./clock.js";
import { outdated } from "./credential-lifecycle.js";
import { AuthError, durableBeforeError, invalidField, missingField, permissionDenied, requireField, storedOrWithdrawn, unauthenticated } from "./errors.js";
import type { KeyRing } from "./key-ring.js";
import type { TokenVerifier, VerifiedPayload } from "./token-verifier.js";
import { openChild, sealChild, type ChildPair } from "./refresh-sealing.js";
import { hashSecret, randomId, randomToken } from "./secrets.js";
import { DuplicateError, errorDurable, withDurable } from "../store/ports/errors.js";
import type { UserRecord, UserStanding } from "../store/ports/users.js";
import type { Users } from "./users.js";
import { setTimeout as delay } from "node:timers/promises";
import { decodeJwt } from "jose";

export type SessionsConfig = Pick<Config, "accessTokenTtlSeconds" | "refreshTokenTtlSeconds" | "refreshGraceSeconds" | "jwtIssuer" | "lastUsedIntervalSeconds" | "maxSessionsPerUser">;

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  /** Seconds until the access token expires. */
  accessTokenExpiresIn: number;
}

/**
 * A pair answered once its writes are committed, with `durable`, which resolves once they are
 * durable: a caller's own write in between (the audit event of AuditedSessions) shares their
 * fsync on the embedded store.
 */
export interface PairThenSync {
  pair: TokenPair;
  durable: () => Promise<void>;
}

/** A password login of seed 000 (POST /session), as the request gives it. */
export interface SessionLogin {
  accountType: string;
  email: string;
  password: string;
  /** The verified client id the session is bound to. */
  clientId: string;
  /** For login abuse protection. */
  clientAddress: string;
}

/** A verified access token of a live session bound to `clientId`. */
export interface SessionAccess {
  userId: string;
  sessionId: string;
  clientId: string;
  jti: string;
  expiresAt: Date;
  /** When the session itself ends (its refresh tokens' lifetime): what is made from it ends no later. */
  sessionExpiresAt: Date;
  /** The user's credential epoch, which the session was checked against. */
  credentialEpoch: number;
  /** The kid of the access token (what is made with it ends once that key is revoked). */
  keyIds: readonly string[];
}

/** A session ended, expired or unknown, or its user's standing changed: every call with its tokens. */
export const sessionEnded = () => unauthenticated("SESSION_ENDED", "the session has ended");
const notMostRecent = () => unauthenticated("NOT_MOST_RECENT_TOKEN", "not the most recent access token of the session");
const notSessionToken = () => unauthenticated("WRONG_TOKEN_TYPE", "not a session access token");
const alreadyUsed = () => unauthenticated("REFRESH_TOKEN_ALREADY_USED", "refresh token already used");
const unknownRefreshToken = () => unauthenticated("INVALID_TOKEN", "unknown refresh token");

export class Sessions {
  private readonly sessions: SessionStore;
  private readonly refreshTokens: RefreshTokenStore;
  private readonly users: Pick<Users, "authenticateThen" | "noteLogin" | "credentialState">;
  private readonly ring: Pick<KeyRing, "sign">;
  private readonly verifier: Pick<TokenVerifier, "verifyKeyed">;
  private readonly clock: Clock;
  private readonly config: SessionsConfig;
  private readonly logger: Logger;

  constructor(deps: {
    sessions: SessionStore;
    refreshTokens: RefreshTokenStore;
    users: Pick<Users, "authenticateThen" | "noteLogin" | "credentialState">;
    ring: Pick<KeyRing, "sign">;
    verifier: Pick<TokenVerifier, "verifyKeyed">;
    clock: Clock;
    config: SessionsConfig;
    logger: Logger;
  }) {
    this.sessions = deps.sessions;
    this.refreshTokens = deps.refreshTokens;
    this.users = deps.users;
    this.ring = deps.ring;
    this.verifier = deps.verifier;
    this.clock = deps.clock;
    this.config = deps.config;
    this.logger = deps.logger;
  }

  /**
   * POST /session: checks the request (account_type, then email, then password), logs in
   * (abuse protection and timing-safe failure are Users'), and starts a session.
   */
  async logIn(input: SessionLogin): Promise<TokenPair> {
    requireField("account_type", input.accountType);
    if (input.accountType !== "traditional") throw invalidField("account_type", 'account_type must be "traditional"');
    requireField("email", input.email);
    requireField("password", input.password);
    // lastLoginAt, then the session with its refresh token, all unsynced, then session.started
    // (AuditedSessions), committed with the login's audit event (authenticateThen, which does
    // not wait for it): on the embedded store the answer waits for one fsync that started after
    // all of them (start()).
    // lastLoginAt is written beside the session and is part of its start: when it is refused,
    // the session is refused too (its event says so: AuditedSessions.start) and withdrawn, once
    // the session's writes are durable, and a refusal of the session itself goes first.
    return this.users.authenticateThen(input.email, input.password, "email", input.clientAddress, undefined, (user) =>
      this.start(user, input.clientId, this.users.noteLogin(user, this.config.lastUsedIntervalSeconds, { syncedByNextWrite: true })),
    );
  }

  /**
   * Starts a session for an authenticated user (as the login read it), bound to `clientId`. The
   * session records the user's credential epoch; when a password change or a deactivation
   * moved it while the login was in flight, the session is ended again and the login refused.
   * `alongside`: a write of the login made meanwhile (its lastLoginAt), whose failure refuses
   * the session too. Resolves once the session and its refresh token are durable (begin()).
   */
  async start(user: Pick<UserRecord, "id" | "credentialEpoch">, clientId: string, alongside?: Promise<void>): Promise<TokenPair> {
    const { pair, durable, endedByCap } = await this.begin(user, clientId, alongside);
    await endedByCap;
    await durable();
    return pair;
  }

  /**
   * start(), answered once the session and its refresh token are stored, with `durable`, which
   * resolves once they and every write before them are durable (SessionStore.createThenSync): a
   * caller's own write in between (AuditedSessions' session.started event) shares their fsync.
   * `sessionId` is the access token's `sid` (the event's subject, not read back from the token).
   * `endedByCap`: endedByCap() for the sessions the cap ended, under way (it never rejects), for
   * the caller to wait for before its answer: not waited for here, so that the caller's own event
   * is recorded in the same turn as theirs (AuditedSessions.start: one commit of the audit table
   * for the login's events, not one for the cap's and one more for session.started). An error
   * goes out once it has settled.
   */
  protected async begin(
    user: Pick<UserRecord, "id" | "credentialEpoch">,
    clientId: string,
    alongside?: Promise<void>,
  ): Promise<PairThenSync & { sessionId: string; endedByCap: Promise<void> }> {
    // Settled whenever it fails: its error is passed on below, or dropped for an earlier one.
    const alongsideSettled = alongside?.then(
      () => undefined,
      (e: unknown) => ({ error: e }),
    );
    const now = this.clock.now();
    const sessionId = randomId();
    const jti = randomId();
    const expiresAt = new Date(now.getTime() + this.config.refreshTokenTtlSeconds * 1000);
    // The session and its first refresh token are stored together (one transaction on the
    // embedded store). A session has an absolute lifetime; no refresh token outlives it.
    const refreshToken = randomToken(32);
    // Checked once the session is stored: a password change or deactivation that moved the
    // epoch before this read is seen here, one after it ends this session with the user's others.
    // A session refused here is ended, its refresh token deleted with it (ending()), before any
    // token of it goes out; so is one whose call ended first (its deadline passed, a store call
    // refused at it), or whose store or server failed, its own write included (storedOrWithdrawn),
    // beyond the deadline. An error of any step after the write goes out once the session is
    // durable.
    const withdraw = async () => (await this.ending(sessionId)).durable();
    return storedOrWithdrawn(
      withdraw,
      this.logger,
      // The user's oldest sessions beyond TESSERA_MAX_SESSIONS_PER_USER are deleted with it.
      () =>
        this.sessions.createThenSync(
          { id: sessionId, userId: user.id, clientId, accessJti: jti, createdAt: now, expiresAt, credentialEpoch: user.credentialEpoch },
          { hash: hashSecret(refreshToken), sessionId, createdAt: now, expiresAt },
          this.config.maxSessionsPerUser,
        ),
      async ({ record: session, durable, ended }) => {
        const endedByCap = this.endedByCap(user.id, ended);
        const answer = durableBeforeError(durable, async () => {
          const state = await this.users.credentialState(user.id, user.credentialEpoch);
          if (state !== "current") {
            // Withdrawn before any token of it went out: ended by ending() itself, not end(), whose
            // session.ended event (AuditedSessions) would record the end of a session never started
            // (its session.started records the refusal).
            await withdraw();
            if (state === "deactivated") throw permissionDenied("USER_DEACTIVATED", "user is deactivated");
            throw unauthenticated("INVALID_CREDENTIALS", "invalid login or password");
          }
          const failed = await alongsideSettled;
          if (failed) throw failed.error;
          const accessToken = await this.signAccess(session, jti);
          return { pair: { accessToken, refreshToken, accessTokenExpiresIn: this.leftOn(session, accessToken) }, durable, sessionId, endedByCap };
        });
        return answer.catch(async (e: unknown) => {
          await endedByCap;
          throw e;
        });
      },
    );
  }

  /**
   * The sessions of `userId` a new one ended (deleted) for TESSERA_MAX_SESSIONS_PER_USER: logged
   * here; AuditedSessions records a session.ended event (reason CAP) for each.
   */
  protected async endedByCap(userId: string, sessionIds: readonly string[]): Promise<void> {
    if (sessionIds.length > 0) this.logger.info("sessions ended by the cap", { userId, count: sessionIds.length });
  }

  /**
   * Verifies an access token for `clientId`. With allowExpired (RefreshSession only) an expired
   * token passes, and so does an older one: `refresh` checks the jti itself, AFTER reuse
   * detection, so that a stolen old pair still trips it.
   */
  async verifyAccess(token: string, clientId: string, allowExpired: boolean): Promise<SessionAccess> {
    let claims: VerifiedPayload;
    let kid: string;
    try {
      ({ claims, kid } = await this.verifier.verifyKeyed(token, { allowExpired, audience: clientId, issuer: this.config.jwtIssuer }));
    } catch (e) {
      // A session token's audience is its client id: a token of ours (its signature verified
      // before the audience was read) for another audience is another client's session token,
      // or no session token at all (a seed 004 JWT, signed by the same keys).
      if (e instanceof AuthError && e.reason === "WRONG_AUDIENCE") {
        if (typeof decodeJwt(token).sid !== "string") throw notSessionToken();
        throw unauthenticated("WRONG_CLIENT", e.message, { cause: e });
      }
      throw e;
    }
    const { sub, sid, jti, exp } = claims;
    if (typeof sub !== "string" || typeof sid !== "string" || typeof jti !== "string" || typeof exp !== "number") throw notSessionToken();
    const { session, user } = await this.liveSession(sid, sub);
    if (session.clientId !== clientId || session.userId !== sub) throw unauthenticated("WRONG_CLIENT", "token issued for another client");
    if (!allowExpired && session.accessJti !== jti) throw notMostRecent();
    return {
      userId: sub,
      sessionId: sid,
      clientId,
      jti,
      expiresAt: new Date(exp * 1000),
      sessionExpiresAt: session.expiresAt,
      credentialEpoch: user.credentialEpoch,
      keyIds: [kid],
    };
  }

  /** Seconds left on the verified access token (0 when expired). */
  expiresIn(access: SessionAccess): number {
    return Math.max(0, Math.ceil((access.expiresAt.getTime() - this.clock.now().getTime()) / 1000));
  }

  /**
   * Rotates the refresh token of the session that `access` belongs to. Resolves once every
   * write of the refresh is durable (rotate()).
   */
  async refresh(access: SessionAccess, refreshToken: string): Promise<TokenPair> {
    let rotated: PairThenSync;
    try {
      rotated = await this.rotate(access, refreshToken);
    } catch (e) {
      await errorDurable(e);
      throw e;
    }
    await rotated.durable();
    return rotated.pair;
  }

  /**
   * refresh(), answered once the child refresh token is stored, with `durable`, which resolves
   * once it and every write before it (the spend, the session's new jti) are durable
   * (RefreshTokenStore.insertThenSync): AuditedSessions' session.refreshed event, recorded in
   * between, shares their fsync. A refusal that ended the session (reuse detection) is thrown
   * once the end is durable (end()). An error after a lost spend is thrown at once, with a wait
   * for what the spend read (errorDurable), which the caller makes before the error goes on:
   * AuditedSessions records its event first, whose fsync covers it.
   */
  protected async rotate(access: SessionAccess, refreshToken: string): Promise<PairThenSync> {
    if (refreshToken === "") throw missingField("refresh_token");
    const hash = hashSecret(refreshToken);
    const record = await this.refreshTokens.findByHash(hash);
    // A token of another session is refused without touching it. An unknown one may be this
    // session's, deleted by a logout (or a reuse detection) since the access token's check: that
    // caller is told what a refresh after the logout is told.
    if (!record) await this.openSession(access);
    if (!record || record.sessionId !== access.sessionId) throw unknownRefreshToken();
    if (record.spentAt) return this.spentTokenPresented(record, refreshToken, access);
    const now = this.clock.now();
    if (record.expiresAt.getTime() <= now.getTime()) throw unauthenticated("TOKEN_EXPIRED", "refresh token expired");
    const session = await this.openSession(access);
    if (session.accessJti !== access.jti) {
      // A concurrent duplicate may have spent the token (and moved the jti on) since it was read.
      const again = await this.refreshTokens.findByHash(hash);
      if (again?.spentAt) return this.spentTokenPresented(again, refreshToken, access);
      throw notMostRecent();
    }

    // The new pair is made first and stored (sealed) with the spend, so that every caller of
    // this refresh — this one, a concurrent duplicate, a retry — answers the same pair.
    const jti = randomId();
    const child: ChildPair = { accessToken: await this.signAccess(session, jti), refreshToken: randomToken(32), jti };
    const { before, durable: read } = await this.refreshTokens.spendThenSync(hash, now, sealChild(child, refreshToken, hash, access.jti));
    // A loser's answer rests on what it read (the winner's spend, or the token's delete), which
    // may not be durable yet: no answer goes out before it is.
    if (!before) {
      // Deleted meanwhile, as above.
      return this.afterRead(read, this.openSession(access).then(() => Promise.reject(unknownRefreshToken())));
    }
    if (before.spentAt) return this.afterRead(read, this.spentTokenPresented(before, refreshToken, access)); // a concurrent refresh won
    return this.afterRead(read, this.complete(session, access, child));
  }

  /**
   * `answer`, not before `read` (what the refresh's spend read is durable): an error carries the
   * wait for it (errorDurable), a pair's `durable` waits for it too, so a caller that records its
   * audit event before it waits for either (AuditedSessions.refresh) waits for one fsync, the
   * event's, which covers both on the embedded store.
   */
  private async afterRead(read: () => Promise<void>, answer: Promise<PairThenSync>): Promise<PairThenSync> {
    let answered: PairThenSync;
    try {
      answered = await answer;
    } catch (e) {
      // A refusal, an error made for this call, carries the wait. Any other error is not marked
      // (the store's may be one object thrown to many calls, once it has failed for good): it
      // waits here, before it goes on.
      if (!(e instanceof AuthError)) {
        await read();
        throw e;
      }
      throw withDurable(e, read);
    }
    return { pair: answered.pair, durable: async () => void (await Promise.all([answered.durable(), read()])) };
  }

  /**
   * Ends the session: every access and refresh token of it is refused from now on. `userId`:
   * the session's user, named by the audit trail (audited.ts). With `logout` (DELETE /session,
   * whose caller's token was checked live), a session that another call ended after that check
   * (a second logout at once, on any instance) is refused as a logout after it is: SESSION_ENDED.
   */
  async end(sessionId: string, _userId?: string, options: { logout?: boolean } = {}): Promise<void> {
    const { ended, durable } = await this.ending(sessionId);
    await durable();
    if (!ended && options.logout) throw sessionEnded();
  }

  /**
   * end()'s writes, answered once committed: `ended`, whether this call ended the session, and
   * `durable`, which resolves once they are durable (SessionStore.endThenSync,
   * RefreshTokenStore.deleteBySessionThenSync): AuditedSessions' session.ended event, recorded
   * in between, shares their fsync. The end is the write that ends the session: from it on,
   * every use of the session's access and refresh tokens reads it and is refused (openSession),
   * so when the delete then fails the end is answered as made, durable once the end is (an error
   * would tell a logout it failed, and have its client retry with a token now refused); logged,
   * the refresh tokens left are deleted by housekeeping once expired. A delete cut short by the
   * caller's deadline (or its leaving) still goes on as that, once the end is durable.
   */
  protected async ending(sessionId: string): Promise<{ ended: boolean; durable: () => Promise<void> }> {
    const end = await this.sessions.endThenSync(sessionId, this.clock.now());
    let deleted = () => Promise.resolve();
    try {
      deleted = (await this.refreshTokens.deleteBySessionThenSync(sessionId)).durable;
    } catch (e) {
      // Its deadline passed or its client left: answered that already (deadline-interceptor.ts).
      if (outcomeOf(e) === "canceled") {
        await end.durable().catch(() => {});
        throw e;
      }
      this.logger.warn("session ended, but deleting its refresh tokens failed: they are refused as the ended session's", {
        sessionId,
        error: e instanceof Error ? e.message : String(e),
      });
    }
    return { ended: end.ended, durable: async () => void (await Promise.all([end.durable(), deleted()])) };
  }

  /**
   * The refresh's last steps, idempotent: the session's jti moved from the parent's to the
   * child's (or already moved by a concurrent caller of the same refresh), then the child
   * refresh token stored (a duplicate is one that caller stored). The insert comes last: it is
   * the write whose `durable` covers the spend and the move before it (see the store port's
   * setAccessJti), so it must follow them. Until it is stored, the child refresh token is known
   * to no client: the answer is sent once it is durable. Then the user is read again: a password
   * change or deactivation (on any instance) since the access token's check refuses the refresh
   * as one after it is (SESSION_ENDED). The change ends the user's sessions only after it moved
   * the epoch, and not at all when the store fails it: a refresh that moved the jti meanwhile
   * answered a pair, its access token one offline verifiers take until it expires.
   */
  private async complete(session: SessionRecord, access: SessionAccess, child: ChildPair): Promise<PairThenSync> {
    const parentJti = access.jti;
    const moved = await this.sessions.setAccessJti(session.id, parentJti, child.jti);
    if (!moved) {
      // Another caller of this same refresh moved the jti, or is moving it: on MongoDB the move
      // is claimed (an insert-once mark) and then written, so between the two a re-read still
      // shows the parent's jti. Wait for that write, briefly, before calling the session ended.
      let now = await this.sessions.findById(session.id);
      for (let i = 0; i < 20 && now && !now.endedAt && now.accessJti === parentJti; i++) {
        await delay(10);
        now = await this.sessions.findById(session.id);
      }
      if (!now || now.endedAt || now.accessJti === parentJti) throw sessionEnded();
      // Moved on past this refresh's pair by the next refresh (made with that pair, which a
      // concurrent caller of this refresh answered): the session lives on, this pair is spent.
      if (now.accessJti !== child.jti) throw alreadyUsed();
    }
    let durable = () => Promise.resolve();
    try {
      ({ durable } = await this.refreshTokens.insertThenSync({ hash: hashSecret(child.refreshToken), sessionId: session.id, createdAt: this.clock.now(), expiresAt: session.expiresAt }));
    } catch (e) {
      // Stored by another caller of this refresh: the answer waits until it is durable. The
      // embedded store answers the clash at once, with that wait (made after this call's audit
      // event, whose fsync covers it). Any other error goes on once this call's move of the jti,
      // committed without an fsync of its own, is durable.
      if (!(e instanceof DuplicateError)) {
        if (moved) await this.sessions.synced();
        throw e;
      }
      durable = () => errorDurable(e);
    }
    await durableBeforeError(durable, async () => {
      if ((await this.users.credentialState(access.userId, access.credentialEpoch)) !== "current") throw sessionEnded();
    });
    return { pair: { accessToken: child.accessToken, refreshToken: child.refreshToken, accessTokenExpiresIn: this.leftOn(session, child.accessToken) }, durable };
  }

  private async spentTokenPresented(record: RefreshTokenRecord, refreshToken: string, access: SessionAccess): Promise<PairThenSync> {
    const sinceSpent = this.clock.now().getTime() - record.spentAt!.getTime();
    // The same refresh again (same refresh token, same access token) opens the pair it answered.
    const child = record.child === undefined ? undefined : openChild(record.child, refreshToken, record.hash, access.jti);
    if (withinWindow(sinceSpent, this.config.refreshGraceSeconds * 1000)) {
      // Within the window: the same answer.
      if (child !== undefined) {
        const session = await this.openSession(access);
        if (session.accessJti === access.jti || session.accessJti === child.jti) return this.complete(session, access, child);
      }
      throw alreadyUsed();
    }
    // After it, the same refresh whose child refresh token was never stored (the store failed
    // after the spend, before the refresh's last write) was never answered: no client holds its
    // pair, so this is no reuse. It is finished, as if the failed call had not been made. Such a
    // late answer is retry-safe like any other: the window also counts from the child's store
    // (its answer), within which the same refresh gets the same pair again. Its sealed access
    // token was signed at the spend, which may be longer ago than its lifetime (or by a key
    // revoked since): the answer carries one signed now, with the same jti.
    if (child !== undefined) {
      const stored = await this.refreshTokens.findByHash(hashSecret(child.refreshToken));
      const answeredLately = stored !== null && withinWindow(this.clock.now().getTime() - stored.createdAt.getTime(), this.config.refreshGraceSeconds * 1000);
      if (stored === null || answeredLately) {
        const session = await this.openSession(access);
        if (session.accessJti === access.jti || session.accessJti === child.jti) {
          return this.complete(session, access, { ...child, accessToken: await this.signAccess(session, child.jti) });
        }
        if (answeredLately) throw alreadyUsed();
      }
    }
    this.logger.warn("refresh token reuse: ending session", { sessionId: record.sessionId });
    await this.end(record.sessionId, access.userId);
    throw unauthenticated("REFRESH_TOKEN_REUSED", "refresh token reuse detected: the session has ended");
  }

  /**
   * The session, unended and unexpired, of an active user whose credential epoch is still the
   * one the session was started under (the user's standing is read with the session, in one
   * store call: SessionStore.findWithUser).
   */
  private async liveSession(sessionId: string, userId: string): Promise<{ session: SessionRecord; user: UserStanding }> {
    const found = await this.sessions.findWithUser(sessionId, userId);
    if (!found) throw sessionEnded();
    const { session, user } = found;
    if (session.endedAt || session.expiresAt.getTime() <= this.clock.now().getTime()) throw sessionEnded();
    if (!user || !user.active || outdated(session, session.createdAt, user)) throw sessionEnded();
    return { session, user };
  }

  /**
   * The session of `access` read again, for its jti, still unended and unexpired. Its user's
   * standing is not read again: verifyAccess compared it moments before, in the same call, and a
   * second read would close no window (a password change or deactivation may land just after it
   * too). What does close it: the change moves the user's epoch before it ends the user's
   * sessions, so a pair a refresh makes meanwhile belongs to a session whose epoch is no longer
   * the user's, which every use refuses (liveSession), and which the change then ends; and the
   * refresh reads the user again once its pair is stored (complete()), refusing it then.
   */
  private async openSession(access: SessionAccess): Promise<SessionRecord> {
    const session = await this.sessions.findById(access.sessionId);
    if (!session || session.endedAt || session.expiresAt.getTime() <= this.clock.now().getTime()) throw sessionEnded();
    return session;
  }

  private signAccess(session: SessionRecord, jti: string): Promise<string> {
    const iat = Math.floor(this.clock.now().getTime() / 1000);
    const claims = { iss: this.config.jwtIssuer, sub: session.userId, sid: session.id, jti, aud: session.clientId, iat };
    return this.ring.sign(claims, this.accessTtl(session, iat));
  }

  /**
   * Seconds left on an access token this service signed, as its `exp` counts them: a retried
   * refresh answers the pair signed at its first try, whose token has lived since. Never more
   * than a token signed now would have (accessTtl): read on a clock behind the signer's (another
   * instance's), the token would otherwise be claimed to live longer than its lifetime.
   */
  private leftOn(session: SessionRecord, accessToken: string): number {
    const left = decodeJwt(accessToken).exp! - Math.floor(this.clock.now().getTime() / 1000);
    return Math.max(0, Math.min(left, this.accessTtl(session)));
  }

  /**
   * The lifetime of an access token issued at `iat` (seconds; default now), as its `exp` counts
   * it: TESSERA_ACCESS_TOKEN_TTL_SECONDS, cut to what is left of the session, which it must not
   * outlive (an offline verifier would accept it after the session has ended, and
   * access_token_expires_in would promise time the session does not have).
   */
  private accessTtl(session: SessionRecord, iat = Math.floor(this.clock.now().getTime() / 1000)): number {
    const left = Math.floor(session.expiresAt.getTime() / 1000) - iat;
    return Math.max(0, Math.min(this.config.accessTokenTtlSeconds, left));
  }
}
