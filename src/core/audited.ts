// The core parts whose calls are security events, each recording them in the audit trail
// (audit.ts): the same classes, with the audited methods wrapped. Kept apart from the parts
// themselves so that what is audited is read in one place; the composition (index.ts) builds
// these instead of the plain ones.
//
// To record an event from anywhere else in the core or the services: `audit.record({type,
// outcome, userId, login, subject, reason})` on the trail the core was built with (core.audit).
import { decodeJwt } from "jose";
import { callEnded, CallEndedError } from "../call-scope.js";
import type { ApiTokenRecord } from "../store/ports/api-tokens.js";
import type { UserRecord } from "../store/ports/users.js";
import { ApiTokens, TOKEN_LINK, type ApiTokensDeps } from "./api-tokens.js";
import { outcomeOf, REDACTED_LOGIN, reasonOf, tracked, trackedThen, type AuditEventType, type AuditTrail } from "./audit.js";
import { AuthenticationTokens, type AuthenticationTokensDeps, type ExchangeResult } from "./authentication-tokens.js";
import { JwtTokens, type JwtTokensDeps } from "./jwt-tokens.js";
import type { LoginKind, LoginSource } from "./login-name.js";
import { sessionEnded, Sessions, type PairThenSync, type SessionAccess, type TokenPair } from "./sessions.js";
import { UserTokens, type CookieSessionOrigin, type IssuedToken, type UserTokensDeps } from "./user-tokens.js";
import { Users, type NewUserInput } from "./users.js";
import type { AppendOptions } from "../store/ports/audit-events.js";
import type { UserTokenRecord } from "../store/ports/user-tokens.js";
import { errorDurable } from "../store/ports/errors.js";

/**
 * A login's last wait, once its credential is stored and its own event (session.started,
 * user_token.login) recorded: for the credential's `durable`, which resolves at once when that
 * event's fsync covered it. When the event is not stored (auditing off, the store refused it),
 * what the trail holds is committed and synced first (synced(): the login's `login` event,
 * recorded syncedByNextWrite, counted on that event's fsync), then `durable` makes one if needed.
 */
async function durableAfterEvent(audit: AuditTrail, stored: boolean, durable: () => Promise<void>): Promise<void> {
  if (!stored) await audit.synced();
  await durable();
}

/**
 * The reason of the events of credentials a cap ended (TESSERA_MAX_SESSIONS_PER_USER and the
 * like): the user's oldest, ended by a new one.
 */
export const CAP_REASON = "CAP";

/**
 * One `type` event per credential a cap ended (`subject`: its id), reason CAP, recorded in one
 * turn (the embedded store commits them together). `options`: the store's append's (a login
 * whose own event, recorded next, makes them durable: AuditedSessions.endedByCap).
 */
async function recordEndedByCap(audit: AuditTrail, type: AuditEventType, userId: string, ids: readonly string[], options?: AppendOptions): Promise<void> {
  await Promise.all(ids.map((subject) => audit.record({ type, outcome: "success", userId, subject, reason: CAP_REASON }, options)));
}

export class AuditedUsers extends Users {
  private readonly audit: AuditTrail;

  constructor(audit: AuditTrail, deps: ConstructorParameters<typeof Users>[0]) {
    super(deps);
    this.audit = audit;
  }

  /** Every password login, on every API: `login`. */
  override authenticate(rawLogin: string, password: string, kind: LoginKind, clientAddress: string, source?: LoginSource): Promise<UserRecord> {
    return tracked(this.audit, "login", { login: rawLogin }, () => super.authenticate(rawLogin, password, kind, clientAddress, source), (u) => ({ userId: u.id }));
  }

  /**
   * `login` as authenticate() records it, but its success is stored syncedByNextWrite, and `next`
   * runs without waiting for that: `next` records its own event once its credential is stored (a
   * session's session.started, a user token's user_token.login), which the embedded store commits
   * with this one (the events of one turn are one transaction) or after it, and whose fsync makes
   * both durable: one commit of the audit table and its indexes per login instead of two, and one
   * fsync. When that event is not stored, `next` waits for synced() (AuditedSessions.start,
   * AuditedUserTokens.login); when `next` fails (the store refused the credential, the user's
   * epoch moved, the caller went away), this event is made durable before the error goes on: the
   * trail keeps what happened, whatever the answer. Either way the answer waits for this event's
   * record to settle.
   */
  override async authenticateThen<T>(
    rawLogin: string,
    password: string,
    kind: LoginKind,
    clientAddress: string,
    source: LoginSource | undefined,
    next: (user: UserRecord) => Promise<T>,
  ): Promise<T> {
    const { result: user, recorded } = await trackedThen(
      this.audit,
      "login",
      { login: rawLogin },
      () => super.authenticate(rawLogin, password, kind, clientAddress, source),
      (u) => ({ userId: u.id }),
      { syncedByNextWrite: true },
    );
    try {
      return await next(user);
    } catch (e) {
      await this.audit.synced();
      throw e;
    } finally {
      await recorded;
    }
  }

  /**
   * `login` once the whole login has its answer (seed 004's GET /token: the access token signed
   * and the user read again): a refusal after the password check (the user deactivated or the
   * password changed meanwhile) is the event's outcome and reason, with the user's id, as the
   * caller is answered; never a success followed by a refusal no event names.
   */
  override authenticateAndIssue<T>(rawLogin: string, password: string, kind: LoginKind, clientAddress: string, issue: (user: UserRecord) => Promise<T>): Promise<T> {
    // Read when the event is recorded: the user's id once the password was checked.
    const fields: { login: string; userId?: string } = { login: rawLogin };
    return tracked(this.audit, "login", fields, async () => {
      const user = await super.authenticate(rawLogin, password, kind, clientAddress);
      fields.userId = user.id;
      const issued = await issue(user);
      // Its deadline passed, or its client left, meanwhile: the caller was answered that (the
      // server's deadline interceptor), not with what was issued.
      if (callEnded()) throw new CallEndedError();
      return issued;
    });
  }

  /** Every sign-up (seed 000's and seed 004's): `signup`. */
  override create(input: NewUserInput): Promise<UserRecord> {
    return tracked(this.audit, "signup", { login: input.login }, () => super.create(input), (u) => ({ userId: u.id }));
  }

}

export class AuditedSessions extends Sessions {
  private readonly audit: AuditTrail;

  constructor(audit: AuditTrail, deps: ConstructorParameters<typeof Sessions>[0]) {
    super(deps);
    this.audit = audit;
  }

  /**
   * `session.started` (`subject`: the session id, the access token's `sid`). Recorded once the
   * session and its refresh token are stored, before the wait for them to be durable: on the
   * embedded store the event's fsync, which starts after their commit, is the one the login
   * waits for (it also makes the login's own event durable: AuditedUsers.authenticateThen), and
   * when the event is not stored (auditing off, the store refused it) the wait makes one, after what the trail
   * still holds is committed (synced()). The session.ended events of the sessions the login ended
   * for the cap (endedByCap()) are recorded before it, in the same turn, and waited for with it.
   */
  override async start(user: Pick<UserRecord, "id" | "credentialEpoch">, clientId: string, alongside?: Promise<void>): Promise<TokenPair> {
    const {
      result: { pair, durable, endedByCap },
      recorded,
    } = await trackedThen(
      this.audit,
      "session.started",
      { userId: user.id },
      () => super.begin(user, clientId, alongside),
      ({ sessionId }) => ({ subject: sessionId }),
    );
    const stored = await recorded;
    await endedByCap;
    await durableAfterEvent(this.audit, stored, durable);
    return pair;
  }

  /**
   * `session.ended`, reason CAP, for each session a login ended for the cap. Recorded
   * syncedByNextWrite, as the login's `login` event is: the login waits for the fsync of its
   * session.started event, recorded after them (start()), or for synced() when that event is not
   * stored or the login fails (start(), AuditedUsers.authenticateThen), either of which makes them
   * durable before the answer: one fsync per login at the cap, not one more for these events.
   * Logged and appended to the store before this returns: begin() goes on without waiting for
   * their commit, so that session.started is appended in the same turn and the embedded store
   * commits the login's events together (on the audit table and its indexes, one commit per login
   * at the cap, not two).
   */
  protected override endedByCap(userId: string, sessionIds: readonly string[]): Promise<void> {
    return Promise.all([super.endedByCap(userId, sessionIds), recordEndedByCap(this.audit, "session.ended", userId, sessionIds, { syncedByNextWrite: true })]).then(() => undefined);
  }

  /**
   * `session.refreshed`; a reused refresh token also records `session.reuse_detected` (the
   * session it ended is the subject). Recorded once the child refresh token is stored, before
   * the wait for the refresh's writes to be durable, as start() records session.started; an
   * error's events are recorded before the wait for what it rests on (errorDurable: a lost
   * spend's read), whose fsync they share.
   */
  override async refresh(access: SessionAccess, refreshToken: string): Promise<TokenPair> {
    const fields = { userId: access.userId, subject: access.sessionId };
    let rotated: PairThenSync;
    try {
      rotated = await tracked(this.audit, "session.refreshed", fields, () => super.rotate(access, refreshToken));
    } catch (e) {
      if (reasonOf(e) === "REFRESH_TOKEN_REUSED") await this.audit.record({ type: "session.reuse_detected", ...fields, outcome: "success", reason: "REFRESH_TOKEN_REUSED" });
      await errorDurable(e);
      throw e;
    }
    await rotated.durable();
    return rotated.pair;
  }

  /**
   * `session.ended`, recorded once the session's end and its refresh tokens' delete are
   * committed, before the wait for them to be durable: on the embedded store the event's fsync,
   * which starts after them, is the one the logout waits for, and when the event is not stored
   * (auditing off, the store refused it) the wait makes one. A logout of a session ended by
   * another call meanwhile is refused (SESSION_ENDED), once its writes are durable too. Any other
   * end (a reuse detection's) of a session ended meanwhile records nothing: the call that ended
   * it recorded that, and the session ended once.
   */
  override async end(sessionId: string, userId?: string, options: { logout?: boolean } = {}): Promise<void> {
    let durable = () => Promise.resolve();
    try {
      await tracked(this.audit, "session.ended", { userId, subject: sessionId }, async () => {
        const ending = await super.ending(sessionId);
        durable = ending.durable;
        if (!ending.ended && options.logout) throw sessionEnded();
        return ending.ended;
      }, undefined, undefined, (ended) => ended);
    } finally {
      await durable();
    }
  }
}

export class AuditedUserTokens extends UserTokens {
  private readonly audit: AuditTrail;

  constructor(audit: AuditTrail, deps: UserTokensDeps) {
    super(deps);
    this.audit = audit;
  }

  /**
   * The password check is the `login` event; `user_token.login` records the token it created,
   * once the token is stored and checked, in the same turn as the user_token.logout events of the
   * tokens it logged out for the cap (loggedOutByCap()) and before authenticateThen waits for the
   * `login` event's commit: the embedded store commits the login's events together, once per
   * login. The login then waits (its `durable`) for this event's fsync, which starts after the
   * token's commit and makes the others durable too (AuditedUsers.authenticateThen), or, when the
   * event is not stored (auditing off, the store refused it), for one made after what the trail
   * still holds is committed (synced()). A token refused once the password was checked (the user
   * deactivated or the password changed while the login was in flight, the store failed, the
   * caller went away): `user_token.login` with that outcome and reason, as AuditedSessions.start
   * records a session refused there. The `login` event before it says only that the password was
   * right.
   */
  protected override async issue(...args: Parameters<UserTokens["issue"]>): Promise<IssuedToken> {
    let issued: IssuedToken;
    try {
      issued = await super.issue(...args);
    } catch (e) {
      await this.audit.record({ type: "user_token.login", userId: args[0].id, outcome: outcomeOf(e), reason: reasonOf(e) });
      throw e;
    }
    const { token } = issued.result;
    const recorded = this.audit.record({ type: "user_token.login", outcome: "success", userId: token.userId, login: args[3], subject: token.id });
    return { ...issued, durable: async () => durableAfterEvent(this.audit, await recorded, issued.durable) };
  }

  /**
   * `user_token.logout`, reason CAP, for each user token or cookie session a new one logged out for
   * the cap. Followed by the login's user_token.login (`eventFollows`): recorded
   * syncedByNextWrite, as AuditedSessions.endedByCap records a login's: committed with the login's
   * events, made durable by the fsync the login waits for, one per login at the cap, not two.
   */
  protected override async loggedOutByCap(userId: string, tokenIds: readonly string[], options: { eventFollows?: boolean } = {}): Promise<void> {
    await Promise.all([
      super.loggedOutByCap(userId, tokenIds, options),
      recordEndedByCap(this.audit, "user_token.logout", userId, tokenIds, options.eventFollows ? { syncedByNextWrite: true } : undefined),
    ]);
  }

  override logout(tokenId: string, userId?: string): Promise<void> {
    return tracked(this.audit, "user_token.logout", { userId, subject: tokenId }, () => super.logout(tokenId, userId));
  }

  override endCookieSession(sessionId: string, userId?: string): Promise<void> {
    return tracked(this.audit, "cookie_session.ended", { userId, subject: sessionId }, () => super.endCookieSession(sessionId, userId));
  }

  override bump(userId: string): Promise<Date> {
    return tracked(this.audit, "user_token.bump", { userId }, () => super.bump(userId));
  }

  override async startCookieSession(
    user: { id: string; credentialEpoch: number },
    origin?: CookieSessionOrigin,
  ): Promise<{ secret: string; token: UserTokenRecord; maxAgeSeconds: number } | null> {
    let started: { secret: string; token: UserTokenRecord; maxAgeSeconds: number } | null;
    try {
      started = await super.startCookieSession(user, origin);
    } catch (e) {
      await this.audit.record({ type: "cookie_session.started", userId: user.id, outcome: outcomeOf(e), reason: reasonOf(e) });
      throw e;
    }
    // Null: the session was withdrawn before its secret went out (the user's epoch moved, or
    // nothing of its lifetime was left): none started, and the caller's own event says why.
    if (started) await this.audit.record({ type: "cookie_session.started", userId: user.id, subject: started.token.id, outcome: "success" });
    return started;
  }
}

export class AuditedAuthenticationTokens extends AuthenticationTokens {
  private readonly audit: AuditTrail;

  constructor(audit: AuditTrail, deps: AuthenticationTokensDeps) {
    super(deps);
    this.audit = audit;
  }

  override create(caller: Parameters<AuthenticationTokens["create"]>[0]): ReturnType<AuthenticationTokens["create"]> {
    return tracked(this.audit, "auth_token.created", { userId: caller.userId }, () => super.create(caller));
  }

  /**
   * `auth_token.exchanged`, naming the token's user once the token is found: a refusal after that
   * (a replay of a used token, an exchange that lost the consume to another, a dead source) or a
   * failure (the store's) names whose token it was, as a success does; an unknown token names none.
   */
  override exchange(token: string, currentCookie?: string): Promise<ExchangeResult> {
    // Read when the event is recorded.
    const fields: { userId?: string } = {};
    return tracked(this.audit, "auth_token.exchanged", fields, () =>
      super.exchange(token, currentCookie, (userId) => {
        fields.userId = userId;
      }),
    );
  }
}

/**
 * A requested token_link as the audit trail names it: lower-cased, as links are stored, when it
 * has a link's shape; otherwise REDACTED_LOGIN. Text of another shape names no token (the call is
 * refused) and is most likely the token itself, pasted by an admin revoking a leaked one: a live
 * secret, kept in the trail and its log lines for as long as they are.
 */
function auditedLink(tokenLink: string): string {
  return TOKEN_LINK.test(tokenLink) ? tokenLink.toLowerCase() : REDACTED_LOGIN;
}

export class AuditedApiTokens extends ApiTokens {
  private readonly audit: AuditTrail;

  constructor(audit: AuditTrail, deps: ApiTokensDeps) {
    super(deps);
    this.audit = audit;
  }

  override create(input: { accountId: string; description: string; createdBy?: string }): Promise<{ secret: string; token: ApiTokenRecord }> {
    return tracked(this.audit, "api_token.created", {}, () => super.create(input), (r) => ({ subject: r.token.link }));
  }

  override updateDescription(tokenLink: string, description: string): Promise<ApiTokenRecord> {
    return tracked(this.audit, "api_token.described", { subject: auditedLink(tokenLink) }, () => super.updateDescription(tokenLink, description));
  }

  override revoke(accountId: string, tokenLink: string): Promise<ApiTokenRecord> {
    return tracked(this.audit, "api_token.revoked", { subject: auditedLink(tokenLink) }, () => super.revoke(accountId, tokenLink));
  }
}

export class AuditedJwtTokens extends JwtTokens {
  private readonly audit: AuditTrail;

  constructor(audit: AuditTrail, deps: JwtTokensDeps) {
    super(deps);
    this.audit = audit;
  }

  /** `jwt_refresh_token.issued` (`subject`: the token's jti). */
  override issueRefreshToken(userId: string, credentialEpoch: number, keyIds?: readonly string[]): Promise<string> {
    return tracked(
      this.audit,
      "jwt_refresh_token.issued",
      { userId },
      () => super.issueRefreshToken(userId, credentialEpoch, keyIds),
      (token) => ({ subject: decodeJwt(token).jti }),
    );
  }

  /** `jwt_refresh_token.revoked`, reason CAP, for each refresh token a new one revoked for the cap. */
  protected override async revokedByCap(userId: string, jtis: readonly string[]): Promise<void> {
    await recordEndedByCap(this.audit, "jwt_refresh_token.revoked", userId, jtis);
  }

  /** A refresh login (GET /token with a refresh token): `jwt_refresh_token.used`, naming the token's user and jti when it verifies. */
  override async loginWithRefreshToken(token: string): Promise<string> {
    const owner = await this.refreshTokenOwner(token);
    return tracked(this.audit, "jwt_refresh_token.used", { userId: owner.userId, subject: owner.jti }, () => super.loginWithRefreshToken(token));
  }

  /**
   * `password.changed` (PATCH /user), recorded here rather than around Users.changePassword: the
   * call is refused before that too (a token issued before the user's last password change, no
   * `pass`), and such a refusal, a stolen token's say, is the one an incident needs to see.
   */
  override changePassword(userId: string, credentialEpoch: number, newPassword: string): Promise<void> {
    return tracked(this.audit, "password.changed", { userId }, () => super.changePassword(userId, credentialEpoch, newPassword));
  }

  /** `user.deactivated` (DELETE /user), refusals before Users.deactivate included, as changePassword(). */
  override deleteUser(userId: string, credentialEpoch: number): Promise<void> {
    return tracked(this.audit, "user.deactivated", { userId }, () => super.deleteUser(userId, credentialEpoch));
  }

  /**
   * `jwt_refresh_token.revoked` (DELETE /refresh_token), once per token: a revocation of a token
   * revoked already (answered 204 all the same) records nothing, the call that revoked it (or the
   * cap's CAP event) having recorded that, as a session's end is recorded once.
   */
  override async revokeRefreshToken(userId: string, token: string): Promise<boolean> {
    const owner = await this.refreshTokenOwner(token, true);
    return tracked(this.audit, "jwt_refresh_token.revoked", { userId, subject: owner.jti }, () => super.revokeRefreshToken(userId, token), undefined, undefined, (revoked) => revoked);
  }
}
