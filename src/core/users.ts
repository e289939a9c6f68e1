// Users shared by every service: one login per user (seeds 000/002: an email; seed 004: a user
// name), an argon2id password, an active flag. Password logins go through `authenticate`, which
// answers an unknown login and a wrong password identically, at the same cost.
import type { Logger } from "../logger.js";
import { DuplicateError } from "../store/ports/errors.js";
import type { UserRecord, UserStore } from "../store/ports/users.js";
import type { Clock } from "./clock.js";
import type { CredentialLifecycle } from "./credential-lifecycle.js";
import { AuthError, alreadyExists, invalidField, notFound, permissionDenied, requireField, unauthenticated } from "./errors.js";
import type { LoginThrottle } from "./login-throttle.js";
import { checkPassword } from "./password-policy.js";
import type { Passwords } from "./passwords.js";
import { randomId } from "./secrets.js";

export type LoginKind = "email" | "name";

const maxNameLength = 256;
// Deliberately simple: one @, no whitespace, a dot in the domain. RFC 5321 size limits.
const emailPattern = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/u;
// eslint-disable-next-line no-control-regex
const controlCharacters = /[\u0000-\u001f\u007f]/u;

/**
 * Trim, Unicode NFC, lower-case for emails. AuthError invalid_argument when malformed; its field
 * violation names `field`, the request field the login came in (default: "email" or "user").
 */
export function normalizeLogin(raw: string, kind: LoginKind, field: string = kind === "email" ? "email" : "user"): string {
  const login = raw.trim().normalize("NFC");
  if (kind === "email") {
    if (login.length === 0) throw invalidField(field, "email is required", "MISSING_FIELDS");
    const email = login.toLowerCase();
    const at = email.lastIndexOf("@");
    if (!emailPattern.test(email) || at > 64 || email.length > 254 || controlCharacters.test(email)) {
      throw invalidField(field, "email is not a valid email address");
    }
    return email;
  }
  if (login.length === 0) throw invalidField(field, "user name is required", "MISSING_FIELDS");
  if ([...login].length > maxNameLength) throw invalidField(field, `user name too long: at most ${maxNameLength} characters`);
  if (controlCharacters.test(login)) throw invalidField(field, "user name must not contain control characters");
  return login;
}

// One answer for an unknown login and a wrong password: message and reason alike.
const invalidLogin = () => unauthenticated("INVALID_CREDENTIALS", "invalid login or password");

export interface NewUserInput {
  login: string;
  kind: LoginKind;
  password: string;
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
  async signUp(email: string, password: string): Promise<UserRecord> {
    requireField("email", email);
    requireField("password", password);
    return this.create({ login: email, kind: "email", password });
  }

  /** Policy errors: invalid_argument; a login already taken: already_exists. */
  async create(input: NewUserInput): Promise<UserRecord> {
    const login = normalizeLogin(input.login, input.kind);
    checkPassword(input.password, input.passwordField);
    const emails = (input.emails ?? (input.kind === "email" ? [login] : [])).map((e) => normalizeLogin(e, "email"));
    const passwordHash = await this.passwords.hash(input.password);
    try {
      return await this.users.create({
        id: randomId(),
        login,
        emails,
        ...(input.firstname !== undefined && { firstname: input.firstname }),
        ...(input.lastname !== undefined && { lastname: input.lastname }),
        passwordHash,
        createdAt: this.clock.now(),
      });
    } catch (e) {
      if (e instanceof DuplicateError && e.key === "login") {
        throw alreadyExists("USER_EXISTS", input.kind === "email" ? "a user with this email already exists" : "a user with this name already exists");
      }
      throw e;
    }
  }

  async authenticate(rawLogin: string, password: string, kind: LoginKind, clientAddress: string): Promise<UserRecord> {
    let login: string | undefined;
    try {
      login = normalizeLogin(rawLogin, kind);
    } catch {
      login = undefined;
    }
    // A malformed login is counted like an unknown one (same answer, same cost), under its raw form.
    const throttleKey = login ?? rawLogin.trim().toLowerCase();
    const hadFailures = await this.throttle.check(throttleKey, clientAddress);
    const user = login === undefined ? null : await this.users.findByLogin(login);
    if (!user) {
      await this.passwords.verifyDummy(password);
      await this.throttle.recordFailure(throttleKey, clientAddress);
      throw invalidLogin();
    }
    if (!(await this.passwords.verify(user.passwordHash, password))) {
      await this.throttle.recordFailure(throttleKey, clientAddress);
      throw invalidLogin();
    }
    await this.throttle.recordSuccess(throttleKey, hadFailures);
    // Only someone who knows the password learns that the account is deactivated.
    if (!user.active) throw permissionDenied("USER_DEACTIVATED", "user is deactivated");
    if (this.passwords.needsRehash(user.passwordHash)) await this.rehash(user, password);
    return user;
  }

  get(id: string): Promise<UserRecord | null> {
    return this.users.findById(id);
  }

  async getActive(id: string): Promise<UserRecord> {
    const user = await this.users.findById(id);
    if (!user || !user.active) throw unauthenticated("USER_DEACTIVATED", "the user does not exist or is deactivated");
    return user;
  }

  /**
   * Changes the password, in every service at once; the credential lifecycle then ends the
   * user's credentials issued before it.
   */
  async changePassword(id: string, newPassword: string, passwordField = "password"): Promise<UserRecord> {
    checkPassword(newPassword, passwordField);
    const hash = await this.passwords.hash(newPassword);
    const user = await this.users.updatePasswordHash(id, hash, this.clock.now());
    if (!user) throw notFound("USER_NOT_FOUND", "user not found");
    await this.lifecycle.passwordChanged(id, user.passwordChangedAt);
    return user;
  }

  /** Deactivates the user; the credential lifecycle then ends everything they hold. */
  async deactivate(id: string): Promise<void> {
    const at = this.clock.now();
    const changed = await this.users.deactivate(id, at);
    if (!changed && !(await this.users.findById(id))) throw notFound("USER_NOT_FOUND", "user not found");
    // Also when already inactive: finishing a cascade an earlier call could not complete.
    await this.lifecycle.deactivated(id, at);
  }

  async bumpLastLogin(id: string): Promise<Date> {
    const at = await this.users.setLastLogin(id, this.clock.now());
    if (!at) throw unauthenticated("USER_DEACTIVATED", "the user does not exist or is deactivated");
    return at;
  }

  /**
   * Records a password login in lastLoginAt, at most once per `minIntervalSeconds` per user:
   * a login storm must not turn into a storm of writes.
   */
  async noteLogin(user: UserRecord, minIntervalSeconds: number): Promise<void> {
    const now = this.clock.now().getTime();
    if (user.lastLoginAt && now - user.lastLoginAt.getTime() < minIntervalSeconds * 1000) return;
    await this.users.setLastLogin(user.id, new Date(now));
  }

  private async rehash(user: UserRecord, password: string): Promise<void> {
    try {
      const newHash = await this.passwords.hash(password);
      await this.users.rehashPassword(user.id, user.passwordHash, newHash);
    } catch (e) {
      // The login itself succeeded; a failed upgrade is retried at the next login.
      if (e instanceof AuthError) throw e;
      this.logger.warn("password rehash failed", { userId: user.id, error: e instanceof Error ? e.message : String(e) });
    }
  }
}
