// Short-lived authentication tokens (seed 003): a logged-in user asks for one, hands it to
// another client, and that client exchanges it once for the user's identity and a browser
// session (the `tessera_session` cookie, a UserTokens cookie session).
//
// The token id is a random secret; the store keeps only its SHA-256. Expiry is decided here,
// on every read, against the injected clock (valid while now < expiresAt), never by a store's
// background cleanup. Single use is the store's atomic `consume`, so two concurrent exchanges
// (on one instance or several) cannot both win; it comes before the exchange's only other
// write, and is undone (`release`) when that one fails, so a store failure leaves the token
// unused (see exchange).
import { beyondDeadline } from "../call-scope.js";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { AuthTokenRecord, AuthTokenStore } from "../store/ports/auth-tokens.js";
import type { UserRecord } from "../store/ports/users.js";
import type { Clock } from "./clock.js";
import { liveSource, MAX_SOURCES, sourcesLive, type CredentialSourceStores } from "./credential-sources.js";
import type { KeyRing } from "./key-ring.js";
import { outdated } from "./credential-lifecycle.js";
import { alreadyExists, invalidField, missingField, notFound, refusal, unauthenticated } from "./errors.js";
import { hashSecret, randomToken, secretEquals } from "./secrets.js";
import type { UserTokens } from "./user-tokens.js";
import type { Users } from "./users.js";

/** Token ids are URL-safe; anything else (or longer) is rejected before the store. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{1,128}$/;

/** What the API shows of a token. */
export interface AuthenticationTokenView {
  token: string;
  ttlSeconds: number;
  userId: string;
  createdAt: Date;
}

export interface ExchangeResult {
  user: UserRecord;
  /** The new session's cookie; absent when the caller's valid session cookie is kept. */
  cookie?: { value: string; maxAgeSeconds: number };
}

export interface AuthenticationTokensDeps {
  authTokens: AuthTokenStore;
  users: Pick<Users, "get">;
  userTokens: Pick<UserTokens, "startCookieSession" | "verifyCookie">;
  /** Whether a key the token's source tokens were signed by has been revoked (AuthTokenRecord.sourceKids). */
  keys: Pick<KeyRing, "anyRevoked">;
  clock: Clock;
  logger: Logger;
  config: Pick<Config, "authenticationTokenTtlSeconds">;
  /** Where the credential a token was made from is looked up when it is exchanged (AuthTokenRecord.source). */
  sources: CredentialSourceStores;
}

const credentialOutdated = () =>
  unauthenticated("TOKEN_REVOKED", "the credential was issued before the user's last password change or deactivation");
const tokenNotFound = () => notFound("TOKEN_NOT_FOUND", "authentication token not found (unknown, used or expired)");
/** A calling credential with less than a second left: refused as one that has ended (see create). */
const sourceEnding = () =>
  unauthenticated("TOKEN_EXPIRED", "the credential expires in less than a second: an authentication token made from it would have no whole second to live");

function checkShape(token: string): void {
  if (token === "") throw missingField("token");
  if (!TOKEN_SHAPE.test(token)) throw invalidField("token", "token is malformed: expected at most 128 characters of [A-Za-z0-9_-]");
}

function view(token: string, record: AuthTokenRecord): AuthenticationTokenView {
  return {
    token,
    ttlSeconds: Math.round((record.expiresAt.getTime() - record.createdAt.getTime()) / 1000),
    userId: record.userId,
    createdAt: record.createdAt,
  };
}

export class AuthenticationTokens {
  constructor(private readonly deps: AuthenticationTokensDeps) {}

  /**
   * GET /api/authenticationtoken: a new token for the (already verified) calling credential. A
   * credential issued under an outdated credential epoch (an access JWT from before a password
   * change) gets none. The token records the epoch, `notAfter` when the caller is a cookie
   * session or an access JWT (the session its exchange starts ends no later than that one, or
   * than the JWT's `exp`: a JWT has no record to look up then), and `source`, the
   * calling credential (see AuthTokenRecord): a token is dead once the credential it came from
   * has ended (a logout, DELETE /session, an expiry), and the session its exchange starts ends
   * no later than that credential. `sourceKids`: the kids of the keys that signed the calling
   * credential's tokens; the token, and the session its exchange starts, end once one of them is
   * revoked.
   *
   * The token lives TESSERA_AUTHENTICATION_TOKEN_TTL_SECONDS, or less when the calling credential
   * ends sooner (`sourceEnd`: a seed 000 session's, a user token's or a cookie session's end, an
   * access JWT's `exp`), in whole seconds, rounded down: it never outlives what it came from
   * (whose end would leave it dead, 404, before the `ttl` it advertises had passed), and its
   * `ttl` is its true lifetime (valid while now < created_at + ttl). A credential with less than
   * a second left gets none: the token would be dead as it is made, a `ttl` of 0, so the call is
   * refused as the credential's own use will be a moment later, 401 TOKEN_EXPIRED.
   *
   * The user is not read again: `userCredentialEpoch` is the user's epoch as the credential check
   * read it moments before (which refused a deactivated user), and a second read would close no
   * window (a password change or deactivation may land just after it too). What does close it:
   * the token records the caller's epoch, and its read and exchange refuse it once that is no
   * longer the user's or the user is deactivated (`outdated`), as they refuse any token made
   * before the change.
   */
  async create(caller: {
    userId: string;
    credentialEpoch: number;
    /** The user's credential epoch as the calling credential's check read it. */
    userCredentialEpoch: number;
    notAfter?: Date;
    source?: string;
    /** When the calling credential ends (undefined: never). */
    sourceEnd?: Date;
    sourceKids?: readonly string[];
  }): Promise<AuthenticationTokenView> {
    if (caller.userCredentialEpoch !== caller.credentialEpoch) throw credentialOutdated();
    const userId = caller.userId;
    const createdAt = this.deps.clock.now();
    const configuredMs = this.deps.config.authenticationTokenTtlSeconds * 1000;
    const lifetimeMs = caller.sourceEnd === undefined ? configuredMs : Math.min(configuredMs, caller.sourceEnd.getTime() - createdAt.getTime());
    const ttlSeconds = Math.floor(lifetimeMs / 1000);
    if (ttlSeconds < 1) throw sourceEnding();
    const token = randomToken(24);
    const record = await this.deps.authTokens.create({
      hash: hashSecret(token),
      userId,
      createdAt,
      expiresAt: new Date(createdAt.getTime() + ttlSeconds * 1000),
      credentialEpoch: caller.credentialEpoch,
      ...(caller.notAfter !== undefined && { notAfter: caller.notAfter }),
      ...(caller.source !== undefined && { source: caller.source }),
      ...(caller.sourceKids !== undefined && caller.sourceKids.length > 0 && { sourceKids: [...caller.sourceKids] }),
    });
    this.deps.logger.info("authentication token created", { userId });
    return view(token, record);
  }

  /**
   * GET /api/authenticationtoken/{token}: the caller's own token while unexpired, unused and not
   * outdated by a password change (what its exchange would accept). Another user's token is 404
   * like an unknown one: a token id is not a way to learn who someone is without exchanging it.
   */
  async get(token: string, callerUserId: string): Promise<AuthenticationTokenView> {
    checkShape(token);
    const hash = hashSecret(token);
    const record = await this.deps.authTokens.findByHash(hash);
    if (record === null || !secretEquals(record.hash, hash)) throw tokenNotFound();
    if (record.consumedAt !== undefined) throw tokenNotFound();
    if (record.expiresAt.getTime() <= this.deps.clock.now().getTime()) throw tokenNotFound();
    if (record.userId !== callerUserId) throw tokenNotFound();
    const user = await this.deps.users.get(record.userId);
    if (user === null || !user.active || outdated(record, record.createdAt, user)) throw tokenNotFound();
    await this.liveSources(record);
    if (await this.deps.keys.anyRevoked(record.sourceKids)) throw tokenNotFound();
    return view(token, record);
  }

  /**
   * GET /api/authenticationtoken/{token}/user: consumes the token (atomically, once) and starts
   * a cookie session for its user, unless `currentCookie` is already a valid session of that
   * user (kept). When it is a live session of ANOTHER user, the exchange of a live token is
   * refused (ALREADY_EXISTS, the token left unused, the cookie kept): a link must not silently
   * log a browser in as someone else. A deactivated user, or a token made under an outdated
   * credential epoch, gets 404 like a dead token: no session for them. A dead token (unknown,
   * used, expired, its user's, its source's or its key's end) is 404 whatever the cookie.
   *
   * All or nothing: the token is checked, consumed, and only then the new session stored. Of
   * concurrent exchanges, on one instance or several, the consume decides: the one that wins
   * stores its session and answers it, every other answers 404 having stored nothing. (Stored
   * first, each session took its place under TESSERA_MAX_USER_TOKENS_PER_USER, ending the
   * user's oldest credentials, the winner's own among them, before the losers withdrew theirs.)
   * A session that is not handed out (the store failed as it stored it, the call ended first,
   * the user's epoch moved: UserTokens.startCookieSession withdraws it) gives the token back
   * (`release`): the call answers its error, and a retry can still exchange the token.
   *
   * `found`: told the token's user once the token is found, before anything may refuse it (the
   * audit trail names that user whatever the answer: audited.ts).
   */
  async exchange(token: string, currentCookie?: string, found?: (userId: string) => void): Promise<ExchangeResult> {
    checkShape(token);
    const hash = hashSecret(token);
    const current = currentCookie !== undefined ? await this.liveSessionUser(currentCookie) : undefined;
    const record = await this.deps.authTokens.findByHash(hash);
    if (record === null || !secretEquals(record.hash, hash)) throw tokenNotFound();
    found?.(record.userId);
    if (record.consumedAt !== undefined || record.expiresAt.getTime() <= this.deps.clock.now().getTime()) throw tokenNotFound();
    const user = await this.deps.users.get(record.userId);
    if (user === null || !user.active || outdated(record, record.createdAt, user)) throw tokenNotFound();
    const { end: sourceEnd, sources } = await this.liveSources(record);
    if (await this.deps.keys.anyRevoked(record.sourceKids)) throw tokenNotFound();
    // Only a token that would log the browser in is refused for the session it holds: a dead one
    // is 404 whatever the cookie, so that the answer does not tell another user's used or expired
    // token from an unknown one.
    if (current !== undefined && current !== user.id) {
      throw alreadyExists("OTHER_USER_SESSION", "the browser holds a session of another user: log out first");
    }
    if (current === user.id) {
      if ((await this.deps.authTokens.consume(hash, this.deps.clock.now())) === null) throw tokenNotFound();
      this.deps.logger.info("authentication token exchanged", { userId: user.id, session: "kept" });
      return { user };
    }
    const notAfter = record.notAfter === undefined || (sourceEnd !== undefined && sourceEnd < record.notAfter) ? sourceEnd : record.notAfter;
    // The consume comes first: the one that loses it (another exchange consumed the token since
    // it was read, or it expired meanwhile) stores no session, so ends none of the user's others.
    const consumedAt = this.deps.clock.now();
    if ((await this.deps.authTokens.consume(hash, consumedAt)) === null) throw tokenNotFound();
    let session: Awaited<ReturnType<UserTokens["startCookieSession"]>>;
    try {
      session = await this.deps.userTokens.startCookieSession(
        { id: user.id, credentialEpoch: record.credentialEpoch ?? user.credentialEpoch },
        {
          ...(notAfter !== undefined && { notAfter }),
          ...(record.sourceKids !== undefined && { sourceKids: record.sourceKids }),
          sources,
        },
      );
    } catch (e) {
      await this.release(hash, consumedAt, user.id);
      throw e;
    }
    if (session === null) {
      await this.release(hash, consumedAt, user.id);
      throw tokenNotFound();
    }
    this.deps.logger.info("authentication token exchanged", { userId: user.id, session: "started" });
    return { user, cookie: { value: session.secret, maxAgeSeconds: session.maxAgeSeconds } };
  }

  /**
   * Gives back a token this exchange consumed but started no session with: unused again, for a
   * retry. Beyond the call's deadline (one that passed is what may have ended the exchange). A
   * failure to is logged (the token then stays used: 404 to a retry); the exchange's own error
   * answers.
   */
  private async release(hash: string, consumedAt: Date, userId: string): Promise<void> {
    try {
      await beyondDeadline(() => this.deps.authTokens.release(hash, consumedAt));
    } catch (e) {
      this.deps.logger.warn("authentication token consumed by an exchange that started no session, and not given back", {
        userId,
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }

  /**
   * When the credential the token was made from ends (undefined: it has no end, or the token
   * records none), and the credentials the session its exchange starts descends from: that one,
   * and those it descends from in turn (credential-sources.ts). One of them ended (logged out,
   * ended, expired, deleted), or more of them than MAX_SOURCES, leaves the token dead: 404 like
   * a used one.
   */
  private async liveSources(record: AuthTokenRecord): Promise<{ end: Date | undefined; sources: string[] }> {
    if (record.source === undefined) return { end: undefined, sources: [] };
    const now = this.deps.clock.now();
    const live = await liveSource(this.deps.sources, record.source, now);
    if (live === null || live.sources.length >= MAX_SOURCES || !(await sourcesLive(this.deps.sources, live.sources, now))) throw tokenNotFound();
    return { end: live.end, sources: [record.source, ...live.sources] };
  }

  /**
   * The user of a live cookie session; undefined for a stale, foreign or malformed cookie (replaced).
   * A check that could not be made (the store failed to answer it) is no such answer: its error
   * goes on, the token left unused, so that a browser whose session could not be read is not
   * logged in as another user over it.
   */
  private async liveSessionUser(cookie: string): Promise<string | undefined> {
    try {
      return (await this.deps.userTokens.verifyCookie(cookie)).userId;
    } catch (e) {
      if (refusal(e)) return undefined;
      throw e;
    }
  }
}
