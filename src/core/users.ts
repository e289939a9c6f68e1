// Users shared by every service: one login per user (seeds 000/002: an email; seed 004: a user
// name; compared by key, see login-name.ts), an argon2id password, an active flag. Password
// logins go through `authenticate`, which answers an unknown login and a wrong password
// identically, at the same cost. Both it and sign-ups check their input, are admitted by the
// passwords' bounded pool (a place held for their hash from then on), take their slot in the
// login throttle, and only then hash, in the place they hold.
import { CallEndedError } from "../call-scope.js";
import type { Logger } from "../logger.js";
import { DuplicateError } from "../store/ports/errors.js";
import type { UserRecord, UserStore } from "../store/ports/users.js";
import type { Clock } from "./clock.js";
import { credentialStateOf, type CredentialLifecycle, type CredentialState } from "./credential-lifecycle.js";
import { AuthError, alreadyExists, notFound, permissionDenied, requireField, unauthenticated } from "./errors.js";
import { checkLoginText, defaultField, LOGIN_KEY_FUNCTION, loginKey, parseLogin, parseNewLogin, refusedLoginKey, type LoginKind, type LoginSource } from "./login-name.js";
import type { Attempt, LoginThrottle } from "./login-throttle.js";
import { checkPassword } from "./password-policy.js";
import type { Passwords } from "./passwords.js";
import { randomId } from "./secrets.js";

// One answer for an unknown login and a wrong password: message and reason alike.
const invalidLogin = () => unauthenticated("INVALID_CREDENTIALS", "invalid login or password");

export type { LoginKind } from "./login-name.js";

export interface NewUserInput {
  login: string;
  kind: LoginKind;
  password: string;
  /** Where the request came from: sign-ups are limited per client address. */
  clientAddress: string;
  /** The request field the password came in, named by a policy error (default "password"). */
  passwordField?: string;
  emails?: string[];
  firstname?: string;
  lastname?: string;
}

export class Users {
  private readonly users: UserStore;
  private readonly lifecycle: Pick<CredentialLifecycle, "passwordChanged" | "deactivated">;
  private readonly passwords: Passwords;
  private readonly throttle: LoginThrottle;
  private readonly clock: Clock;
  private readonly logger: Logger;

  constructor(deps: {
    users: UserStore;
    /** Ends the credentials a password change or a deactivation outdates. */
    lifecycle: Pick<CredentialLifecycle, "passwordChanged" | "deactivated">;
    passwords: Passwords;
    throttle: LoginThrottle;
    clock: Clock;
    logger: Logger;
  }) {
    this.users = deps.users;
    this.lifecycle = deps.lifecycle;
    this.passwords = deps.passwords;
    this.throttle = deps.throttle;
    this.clock = deps.clock;
    this.logger = deps.logger;
  }

  /** Seed 000's sign-up (POST /user): an email and a password, both required. */
  async signUp(email: string, password: string, clientAddress: string): Promise<UserRecord> {
    requireField("email", email);
    requireField("password", password);
    return this.create({ login: email, kind: "email", password, clientAddress });
  }

  /**
   * Policy errors: invalid_argument; every hasher busy: unavailable, before the login is looked
   * up or anything counts, and never after (the place admitted is held for the hash); too many
   * sign-ups from the address: resource_exhausted; a login already taken (or a look-alike of
   * one): already_exists, found before any hashing; a hash that ended later than a login's
   * check may (core/login-throttle.ts): unavailable, not made, counted. Every sign-up that is not
   * refused as malformed or busy counts.
   */
  async create(input: NewUserInput): Promise<UserRecord> {
    const login = parseNewLogin(input.login, input.kind);
    checkPassword(input.password, login.spelling, input.passwordField);
    const emails = (input.emails ?? (input.kind === "email" ? [login.spelling] : [])).map((e) => parseNewLogin(e, "email").spelling);
    // A full hasher refuses before the login is looked up, a taken login as a free one: were a
    // taken login answered 409 whatever the load, a refusal under load would tell that the login
    // is free. A flood costs no store writes either. Once admitted, the sign-up holds its place
    // in the pool until it hashes (or ends without hashing): a hasher filled during the lookup
    // cannot refuse a free login then, while a taken one is answered 409.
    const { attempt, passwordHash } = await this.passwords.admitted(async (ticket) => {
      // A duplicate needs no hashing: once admitted, it is answered (and counted) at once.
      if (await this.users.findByLogin(login.spelling, login.key)) {
        await (await this.throttle.beginSignUp(input.clientAddress)).failed();
        throw userExists(input.kind);
      }
      const attempt = await this.throttle.beginSignUp(input.clientAddress);
      return { attempt, passwordHash: await abandonOnError(attempt, this.passwords.hash(input.password, ticket)) };
    });
    await attempt.succeeded(false);
    try {
      return await this.users.create({
        id: randomId(),
        login: login.spelling,
        loginKey: login.key,
        emails,
        ...(input.firstname !== undefined && { firstname: input.firstname }),
        ...(input.lastname !== undefined && { lastname: input.lastname }),
        passwordHash,
        createdAt: this.clock.now(),
      });
    } catch (e) {
      if (e instanceof DuplicateError && e.key === "login") throw userExists(input.kind);
      throw e;
    }
  }

  /**
   * A password login. A login that is not text (control or bidi characters) is INVALID_ARGUMENT
   * naming `source.field` and counts nowhere; a malformed one is counted like an unknown one (same
   * answer, same cost), under the key of its raw form. The attempt takes its throttle slots before
   * anything is hashed (LOGIN_LOCKED otherwise), and a full hasher refuses it (HASHER_BUSY)
   * without counting it, before it takes them: once admitted, its place in the pool is held for
   * its verification (known login or not), so it is not refused for a hasher filled meanwhile.
   */
  async authenticate(rawLogin: string, password: string, kind: LoginKind, clientAddress: string, source: LoginSource = { field: defaultField(kind) }): Promise<UserRecord> {
    checkLoginText(rawLogin, source);
    let login: ReturnType<typeof parseLogin> | undefined;
    try {
      login = parseLogin(rawLogin, kind, source);
    } catch {
      login = undefined;
    }
    const { attempt, user, ok, rehash } = await this.passwords.admitted(async (ticket) => {
      const attempt = await this.throttle.beginLogin(login?.key ?? refusedLoginKey(rawLogin), clientAddress);
      const user = await abandonOnError(attempt, login ? this.users.findByLogin(login.spelling, login.key) : Promise.resolve(null));
      if (!user) {
        await abandonOnError(attempt, this.passwords.verifyDummy(password, ticket));
        await attempt.failed();
        throw invalidLogin();
      }
      return { attempt, user, ...(await abandonOnError(attempt, this.passwords.check(user.passwordHash, password, ticket))) };
    });
    if (!ok) {
      await attempt.failed();
      throw invalidLogin();
    }
    await attempt.succeeded(user.active);
    // Only someone who knows the password learns that the account is deactivated; its event
    // names the account (audit.ts trackedThen).
    if (!user.active) throw permissionDenied("USER_DEACTIVATED", "user is deactivated", { userId: user.id });
    if (rehash) await this.rehash(user, password);
    return user;
  }

  /**
   * authenticate(), then `next` with the user: a login that writes a credential next (seed
   * 000's session, seed 002's user token). When `next` succeeds it must have made a write that
   * waits to be durable: the audit trail's login event rides on that write's fsync (AuditedUsers).
   */
  async authenticateThen<T>(
    rawLogin: string,
    password: string,
    kind: LoginKind,
    clientAddress: string,
    source: LoginSource | undefined,
    next: (user: UserRecord) => Promise<T>,
  ): Promise<T> {
    return next(await this.authenticate(rawLogin, password, kind, clientAddress, source));
  }

  /**
   * authenticate(), then `issue` with the user, as one login: for a login whose answer is made
   * after the password check and may still be refused there (seed 004's access token, refused
   * when a change or deactivation moved the user's epoch meanwhile). The login's audit event
   * records what the caller is answered, `issue`'s refusal included (AuditedUsers).
   */
  async authenticateAndIssue<T>(rawLogin: string, password: string, kind: LoginKind, clientAddress: string, issue: (user: UserRecord) => Promise<T>): Promise<T> {
    return issue(await this.authenticate(rawLogin, password, kind, clientAddress));
  }

  /**
   * At start-up: gives accounts stored before login keys existed their key and, once per
   * LOGIN_KEY_FUNCTION, accounts keyed by an older key function their current one. Two such
   * accounts whose keys clash are both kept; the younger (or the one keyed before, whose new key
   * another account holds) is found by its exact spelling only (logged).
   */
  async backfillLoginKeys(): Promise<void> {
    const { filled, clashes } = await this.users.backfillLoginKeys(loginKey, LOGIN_KEY_FUNCTION);
    if (filled > 0) this.logger.info("login keys given to existing accounts", { accounts: filled });
    if (clashes.length > 0) {
      this.logger.warn("accounts whose login is a look-alike of an older account's: found by their exact spelling only", { userIds: clashes });
    }
  }

  get(id: string): Promise<UserRecord | null> {
    return this.users.findById(id);
  }

  /**
   * Re-reads the user after a credential issued under `epoch` was written: "current" when it
   * still stands, otherwise the issuer withdraws it (a change or deactivation raced the login).
   */
  async credentialState(id: string, epoch: number): Promise<CredentialState> {
    return credentialStateOf(await this.users.findById(id), epoch);
  }

  /**
   * Changes the password, in every service at once; the credential lifecycle then ends the
   * user's credentials issued before it (a failure of that step is logged, not thrown: see below). With `expectedEpoch` (the caller's credential's), the
   * change is made only while that is still the user's epoch (checked in the store's write):
   * TOKEN_REVOKED when another change or a deactivation moved it on first. `account` is the
   * user as the caller read it: the policy refuses its login as the new password.
   */
  async changePassword(account: Pick<UserRecord, "id" | "login">, newPassword: string, passwordField = "password", expectedEpoch?: number): Promise<UserRecord> {
    const { id } = account;
    checkPassword(newPassword, account.login, passwordField);
    const hash = await this.passwords.hash(newPassword);
    const user = await this.users.updatePasswordHash(id, hash, this.clock.now(), expectedEpoch);
    const now = !user && expectedEpoch !== undefined ? await this.users.findById(id) : null;
    // Deactivated since the caller's check (on any instance): what a call after it is told.
    if (now && !now.active) throw unauthenticated("USER_DEACTIVATED", "the token's user is deactivated");
    if (now) throw unauthenticated("TOKEN_REVOKED", "the credential was issued before the user's last password change");
    if (!user) throw notFound("USER_NOT_FOUND", "user not found");
    // The password and the credential epoch moved in that one write: from it on, every use of a
    // credential issued before it compares epochs (or, for one written before epochs, its issue
    // time with passwordChangedAt) and refuses it, ended or not. What follows only marks their
    // records ended; when it fails (the store went away meanwhile), the change is still made, so
    // it is answered as made: an error would have the client retry with a credential the change
    // outdated (refused, TOKEN_REVOKED) and tell the audit trail the change failed. Logged; the
    // records left unmarked are refused on every use and deleted as they expire.
    await this.endLogged(id, this.lifecycle.passwordChanged(id, user.passwordChangedAt, user.credentialEpoch), "password changed, but ending the credentials it outdated failed: they are refused on use as outdated");
    return user;
  }

  /**
   * Deactivates the user; the credential lifecycle then ends everything they hold (a failure of
   * that step is logged, not thrown: see below). Of two deactivations at once (both past their
   * caller's credential check), the one that did not make it is refused as a call after it is:
   * USER_DEACTIVATED.
   */
  async deactivate(id: string): Promise<void> {
    const at = this.clock.now();
    const changed = await this.users.deactivate(id, at);
    if (!changed && !(await this.users.findById(id))) throw notFound("USER_NOT_FOUND", "user not found");
    // Also when already inactive: finishing a cascade an earlier call could not complete. As
    // for a password change, the deactivation (active=false, the epoch moved) is that one write:
    // from it on, every use of the user's sessions, user tokens, cookie sessions, authentication
    // tokens and refresh tokens reads the user and refuses an inactive one, ended or not. What
    // follows only marks their records ended; when it fails, the deactivation is answered as
    // made (an error would have the client retry with a credential it refuses, and tell the
    // audit trail it failed). Logged; the records left unmarked stay refused on every use.
    await this.endLogged(id, this.lifecycle.deactivated(id, at), "user deactivated, but ending their credentials failed: they are refused on use as the user's");
    if (!changed) throw unauthenticated("USER_DEACTIVATED", "the token's user is deactivated");
  }

  /**
   * Waits for a credential lifecycle cascade run after the change's own write (changePassword,
   * deactivate), which already refuses every credential the cascade would end: a failure is
   * logged with `message`, not thrown, and the change answered as made.
   */
  private async endLogged(id: string, cascade: Promise<void>, message: string): Promise<void> {
    try {
      await cascade;
    } catch (e) {
      this.logger.warn(message, { userId: id, error: e instanceof Error ? e.message : String(e) });
    }
  }

  async bumpLastLogin(id: string): Promise<Date> {
    const at = await this.users.setLastLogin(id, this.clock.now());
    if (!at) throw unauthenticated("USER_DEACTIVATED", "the user does not exist or is deactivated");
    return at;
  }

  /**
   * Records a password login in lastLoginAt, at most once per `minIntervalSeconds` per user:
   * a login storm must not turn into a storm of writes. With `syncedByNextWrite`, the caller's
   * next write (one that waits to be durable) makes it durable (see the store port).
   */
  async noteLogin(user: UserRecord, minIntervalSeconds: number, options: { syncedByNextWrite?: boolean } = {}): Promise<void> {
    const now = this.clock.now().getTime();
    if (user.lastLoginAt && now - user.lastLoginAt.getTime() < minIntervalSeconds * 1000) return;
    await this.users.setLastLogin(user.id, new Date(now), options);
  }

  private async rehash(user: UserRecord, password: string): Promise<void> {
    try {
      const newHash = await this.passwords.hash(password);
      await this.users.rehashPassword(user.id, user.passwordHash, newHash);
    } catch (e) {
      // The login itself succeeded; a failed (or, hasher busy or caller gone, skipped) upgrade is retried at
      // the next login.
      if (e instanceof AuthError && e.reason === "HASHER_BUSY") return;
      if (e instanceof CallEndedError) return; // the caller is gone: the next login upgrades it
      if (e instanceof AuthError) throw e;
      this.logger.warn("password rehash failed", { userId: user.id, error: e instanceof Error ? e.message : String(e) });
    }
  }
}

function userExists(kind: LoginKind): AuthError {
  return alreadyExists("USER_EXISTS", kind === "email" ? "a user with this email already exists" : "a user with this name already exists");
}

/**
 * `work`'s result; when it fails, nothing was checked (the store or the hasher refused): the
 * attempt's slots are given back before the error goes on.
 */
async function abandonOnError<T>(attempt: Attempt, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (e) {
    await attempt.abandon();
    throw e;
  }
}
