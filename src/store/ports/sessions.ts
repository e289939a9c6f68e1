// Sessions of seed 000 and their opaque refresh tokens.
import type { PasswordChange, UserStanding } from "./users.js";

export interface SessionRecord {
  id: string;
  userId: string;
  clientId: string;
  /** jti of the most recent access token; only that one is accepted. */
  accessJti: string;
  createdAt: Date;
  expiresAt: Date;
  endedAt?: Date;
  /** The user's credential epoch when this was issued (UserRecord.credentialEpoch); absent on records from before epochs. */
  credentialEpoch?: number;
}

export type NewSession = Omit<SessionRecord, "endedAt">;

export interface SessionStore {
  /**
   * Stores a new session together with its first refresh token (a login's), answered once
   * stored, with `durable`, which resolves once both, and everything committed before them, are
   * durable. The caller makes its last write in between (the session.started audit event, which
   * waits for its own fsync) and then waits for `durable`, as after
   * RefreshTokenStore.insertThenSync: on the embedded store the two are one transaction, committed
   * without an fsync of its own, so a crash or power cut keeps both or neither. MongoDB (no
   * transactions here): two inserts, the session first, answered once both are acknowledged;
   * `durable` resolves at once. A failure of the second leaves the session's document without a
   * refresh token; the call fails, so no token of that session goes out and nothing can use it
   * (housekeeping deletes it at its expiry). DuplicateError("id") on a session id clash,
   * DuplicateError("hash") on a refresh token clash.
   *
   * `cap` (TESSERA_MAX_SESSIONS_PER_USER): once the session is stored, the user's oldest
   * unexpired sessions beyond the newest `cap` (this one counted, ended ones too: a session
   * counts until it is deleted) are deleted with their refresh tokens, at most CAP_BATCH of them;
   * never this one, whatever its time. `ended`: the ids of those this call ended, which had not
   * ended before (none without a cap): of a logout or another creation ending one at the same
   * time, only the call whose end the store took names it. The embedded store does it in the insert's transaction; MongoDB after both
   * inserts (src/store/README.md, "Caps").
   */
  createThenSync(session: NewSession, refreshToken: NewRefreshToken, cap?: number): Promise<{ record: SessionRecord; durable: () => Promise<void>; ended: string[] }>;
  findById(id: string): Promise<SessionRecord | null>;
  /**
   * The session and the standing of the user `userId` (both from the access token being
   * checked: every token check needs the two), read together: on the embedded store one
   * statement, so both come from one snapshot; on MongoDB two concurrent reads. Null when the
   * session is unknown; `user` null when the user is. The caller checks that the session is
   * that user's.
   */
  findWithUser(id: string, userId: string): Promise<{ session: SessionRecord; user: UserStanding | null } | null>;
  /**
   * CAS: sets accessJti=newJti only while it is expectedJti and the session is not ended. A
   * second caller of the same move (the same newJti) may get true too, finishing it when its
   * first caller stopped before its write (MongoDB: the move is claimed, then written).
   * Visible to every instance at once, but durable (across a power cut) only with the caller's
   * next write: the embedded store commits it without an fsync (a refresh stores its child
   * refresh token next, RefreshTokenStore.insertThenSync, and waits for its `durable`, or, when
   * that insert fails, for synced()).
   */
  setAccessJti(id: string, expectedJti: string, newJti: string): Promise<boolean>;
  /**
   * Resolves once every write of this store made so far is durable: for a refresh whose next
   * write after setAccessJti failed, before its error goes on. The embedded store waits for an
   * fsync that starts after them; MongoDB resolves at once (each write was acknowledged).
   */
  synced(): Promise<void>;
  /**
   * Ends the session (sets endedAt) if it is not ended yet: `ended`, whether this call ended it,
   * answered once committed, with `durable`, which resolves once the end, and everything
   * committed before it, is durable (see RefreshTokenStore.insertThenSync): a logout deletes the
   * session's refresh tokens and records its audit event in between, whose fsync covers the end
   * on the embedded store. A call that ended nothing (another ended it first, maybe in another
   * process, its write not yet durable) is answered at once too, its `durable` resolving once
   * what it read is durable: the loser's audit event, recorded in between, shares that fsync.
   * MongoDB: answered once acknowledged; `durable` resolves at once.
   */
  endThenSync(id: string, at: Date): Promise<{ ended: boolean; durable: () => Promise<void> }>;
  /** Ends every open session of the user (only those `outdatedBy` outdated when given); returns how many. */
  endAllForUser(userId: string, at: Date, outdatedBy?: PasswordChange): Promise<number>;
  /**
   * Housekeeping: deletes at most `limit` sessions with expiresAt < before (one batch, see
   * ports.ts), ended or not (none can be live again, and a check refuses an unknown session as it
   * refuses an expired one); returns how many. Their refresh tokens expire with them
   * (RefreshTokenStore.deleteExpired).
   */
  deleteExpired(before: Date, limit: number): Promise<number>;
}

/** Opaque refresh token; the store only ever sees its hash. */
export interface RefreshTokenRecord {
  hash: string;
  sessionId: string;
  createdAt: Date;
  expiresAt: Date;
  spentAt?: Date;
  /** Set with spentAt: the pair the spending refresh answered, sealed (core/refresh-sealing.ts). */
  child?: string;
}

export type NewRefreshToken = Omit<RefreshTokenRecord, "spentAt" | "child">;

export interface RefreshTokenStore {
  /**
   * Stores a refresh's child refresh token (a session's first is stored with the session:
   * SessionStore.createThenSync), answered once stored, with `durable`, which resolves once the
   * token, and everything committed before it, is durable. The caller makes its last write in
   * between (the session.refreshed audit event, which waits for its own fsync) and then waits
   * for `durable`: on the embedded store the token is committed without an fsync of its own, and
   * `durable` resolves at once when the later write's fsync (which started after the token's
   * commit) has returned, else after one that does. DuplicateError("hash") on a clash: on the
   * embedded store at once, with a wait on the error (errorDurable, ports/errors.ts), which
   * resolves once every commit the insert may have clashed with is durable (the child token a
   * concurrent caller of the same refresh stored first, see SqliteCalls.deferredSpend): the
   * caller waits for it as for its own. MongoDB: answered once acknowledged; `durable` resolves
   * at once (the error carries no wait).
   */
  insertThenSync(token: NewRefreshToken): Promise<{ record: RefreshTokenRecord; durable: () => Promise<void> }>;
  findByHash(hash: string): Promise<RefreshTokenRecord | null>;
  /**
   * Atomically marks the token spent (only if it is not spent yet), together with `child` (the
   * sealed pair this refresh answers), and answers the record AS IT WAS BEFORE (`before`):
   * `spentAt` absent -> this call won the rotation; `spentAt` present -> it was already spent at
   * that time (reuse or a concurrent refresh), with the winner's `child`. Null when unknown.
   * Expiry is not checked here (the caller compares expiresAt). Answered once committed, with
   * `durable`, which resolves once what the call wrote or read is durable: the winner's spend is
   * durable, like setAccessJti, with the caller's next write (its child token, whose `durable`
   * the caller waits for); a loser's answer rests on the winner's spend, which on the embedded
   * store may not be durable yet (its caller records its audit event, whose fsync covers it,
   * before it waits for this, see SqliteCalls.deferredSpend). MongoDB: answered once
   * acknowledged; `durable` resolves at once.
   */
  spendThenSync(hash: string, at: Date, child: string): Promise<{ before: RefreshTokenRecord | null; durable: () => Promise<void> }>;
  /**
   * Deletes the session's tokens: `deleted`, how many, answered once committed, with `durable`,
   * as SessionStore.endThenSync (a logout records its audit event after it).
   */
  deleteBySessionThenSync(sessionId: string): Promise<{ deleted: number; durable: () => Promise<void> }>;
  /**
   * Housekeeping: deletes at most `limit` tokens with expiresAt < before (one batch, see
   * ports.ts); returns how many (on MongoDB, expired marks count too: see the adapter).
   */
  deleteExpired(before: Date, limit: number): Promise<number>;
}
