// Errors of the identity core. The core knows no transport: it throws AuthError with a
// transport-neutral code (which the server maps to a Connect code, and so an HTTP status) and a
// stable machine-readable reason (which clients may branch on; it is meant to travel as
// `google.rpc.ErrorInfo.reason`, domain "tessera"). Messages are for people: they never contain
// secrets or internal details, and clients should not parse them.
//
// The core never decides transport headers: a 401's WWW-Authenticate challenge is chosen outside
// it (access/challenge.ts) from the method's credential and the reason.
import { beyondDeadline, CallEndedError } from "../call-scope.js";
import type { Logger } from "../logger.js";
import { DeadlineExceededError, settledOf } from "../store/ports/errors.js";

export type AuthErrorCode =
  | "invalid_argument"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "already_exists"
  | "resource_exhausted"
  | "failed_precondition"
  | "unavailable"
  | "internal";

/**
 * Every reason an error may carry, UPPER_SNAKE, stable once released. A reason says what went
 * wrong, independent of the code: TOKEN_EXPIRED is 401 where the token is the credential and 400
 * where it is an argument (GET /jwt/check). An unknown login and a wrong password share
 * INVALID_CREDENTIALS on purpose: no reason tells them apart.
 */
export const Reasons = {
  // --- credentials, as the request presents them

  /** The method needs a credential and the request carries none. */
  MISSING_CREDENTIAL: "MISSING_CREDENTIAL",
  /** The Authorization header does not have the form its scheme requires (`Bearer` without a token, undecodable Basic), the session cookie appears twice, or `x-koms-clientid` names more than one client. */
  MALFORMED_CREDENTIAL: "MALFORMED_CREDENTIAL",
  /** The request carries a credential of a kind (an Authorization scheme) the method does not take. */
  UNSUPPORTED_CREDENTIAL: "UNSUPPORTED_CREDENTIAL",
  /** Two different access tokens in one request (the Authorization header and a request field). */
  CONFLICTING_TOKENS: "CONFLICTING_TOKENS",
  /** The `x-koms-clientid` header is missing or empty. */
  MISSING_CLIENT_ID: "MISSING_CLIENT_ID",
  /** The `x-koms-clientid` header names no configured client. */
  UNKNOWN_CLIENT_ID: "UNKNOWN_CLIENT_ID",
  /** The method declares no access rule, so it is refused (fail closed). */
  NO_ACCESS_RULE: "NO_ACCESS_RULE",
  /** The method needs an access token from a password login; this one came from a refresh token. */
  PASSWORD_LOGIN_REQUIRED: "PASSWORD_LOGIN_REQUIRED",

  // --- tokens

  /** The token is malformed or unknown, or its signature, key, algorithm or claims do not verify. */
  INVALID_TOKEN: "INVALID_TOKEN",
  /** A valid token of another kind (a refresh token where an access token is expected, and so on). */
  WRONG_TOKEN_TYPE: "WRONG_TOKEN_TYPE",
  /** The token (or session cookie, or refresh token) has expired. */
  TOKEN_EXPIRED: "TOKEN_EXPIRED",
  /** The token's `nbf` is still ahead of the server's clock by more than 5 s, or its `iat` (issued in the future) by more than 60 s. */
  TOKEN_NOT_YET_VALID: "TOKEN_NOT_YET_VALID",
  /** The token was issued for another audience. */
  WRONG_AUDIENCE: "WRONG_AUDIENCE",
  /** The token was issued by another issuer. */
  WRONG_ISSUER: "WRONG_ISSUER",
  /** The token was revoked: logged out, disabled, or issued before the user's last password change. */
  TOKEN_REVOKED: "TOKEN_REVOKED",
  /** A session access token that is no longer the session's most recent one. */
  NOT_MOST_RECENT_TOKEN: "NOT_MOST_RECENT_TOKEN",
  /** The session has ended (logout, expiry, password change, deactivation or refresh token reuse). */
  SESSION_ENDED: "SESSION_ENDED",
  /** The session access token was issued to another client id. */
  WRONG_CLIENT: "WRONG_CLIENT",
  /** The refresh token was just spent by another refresh (within the grace period) made with another access token; the session lives on. */
  REFRESH_TOKEN_ALREADY_USED: "REFRESH_TOKEN_ALREADY_USED",
  /** A spent refresh token was presented again: it was copied, so its session has ended. */
  REFRESH_TOKEN_REUSED: "REFRESH_TOKEN_REUSED",
  /** The user is deactivated (told only to a caller who proved the password, or who holds a token). */
  USER_DEACTIVATED: "USER_DEACTIVATED",
  /** The browser already holds a live session cookie of another user: it is kept; log out first. */
  OTHER_USER_SESSION: "OTHER_USER_SESSION",
  /** A state-changing call authenticated by the session cookie comes from another origin's page (or a CORS preflight from an origin TESSERA_CORS_ORIGINS does not list). */
  ORIGIN_NOT_ALLOWED: "ORIGIN_NOT_ALLOWED",

  // --- password logins

  /** Unknown login or wrong password: deliberately one reason for both. */
  INVALID_CREDENTIALS: "INVALID_CREDENTIALS",
  /** Too many failed logins for this login or address; retry after the error's retryAfterSeconds. */
  LOGIN_LOCKED: "LOGIN_LOCKED",
  /** Too many sign-ups from this client address; retry after the error's retryAfterSeconds. */
  TOO_MANY_SIGNUPS: "TOO_MANY_SIGNUPS",

  // --- arguments

  /** One or more required fields are missing or empty; the field violations name each. */
  MISSING_FIELDS: "MISSING_FIELDS",
  /** A field has a value that is not accepted (format, length, characters, range); the field violation names it. */
  INVALID_FIELD: "INVALID_FIELD",
  /** The password breaks the password policy (core/password-policy.ts: too short, only white space, control or invisible characters, common, or the login). */
  WEAK_PASSWORD: "WEAK_PASSWORD",

  // --- resources

  /** A user with this login already exists. */
  USER_EXISTS: "USER_EXISTS",
  /** No such user. */
  USER_NOT_FOUND: "USER_NOT_FOUND",
  /** No such token among those the caller may see or change (unknown, used, expired, revoked or another's). */
  TOKEN_NOT_FOUND: "TOKEN_NOT_FOUND",
  /** No signing key with this kid (or it can no longer verify anything). */
  KEY_NOT_FOUND: "KEY_NOT_FOUND",
  /** A symmetric algorithm (HS256) is in use: there is no public key to publish. */
  NO_PUBLIC_KEY: "NO_PUBLIC_KEY",
  /** The operation does not apply to this configuration (HS256 keys are not rotated through the API). */
  UNSUPPORTED_OPERATION: "UNSUPPORTED_OPERATION",
  /** The account already holds as many active API tokens as it may (TESSERA_MAX_API_TOKENS_PER_ACCOUNT): revoke one first. */
  TOO_MANY_TOKENS: "TOO_MANY_TOKENS",

  // --- the service itself

  /** The store is down or unreachable; retry after the error's retryAfterSeconds. */
  STORE_UNAVAILABLE: "STORE_UNAVAILABLE",
  /** Every password hasher is busy and the wait queue is full; nothing was checked: retry after the error's retryAfterSeconds. */
  HASHER_BUSY: "HASHER_BUSY",
  /** An unexpected failure; details are in the server log only. */
  INTERNAL: "INTERNAL",
} as const;

export type Reason = (typeof Reasons)[keyof typeof Reasons];

/** A field whose value was refused (sent as a google.rpc.BadRequest.FieldViolation). */
export interface FieldViolation {
  /** The request field as the proto names it (`account_id`, `refresh_token`, `expiration_time`). */
  readonly field: string;
  /** What is wrong with it, for people. */
  readonly description: string;
}

export interface AuthErrorOptions {
  /** The error this one was raised from (ES2022 `cause`): for logs and debugging, never sent. */
  cause?: unknown;
  /** Seconds until the caller may retry (429 and 503: Retry-After). */
  retryAfterSeconds?: number;
  /** For INVALID_ARGUMENT about request fields: each refused field. */
  fieldViolations?: readonly FieldViolation[];
  /** The user a refusal is known to be about (a login whose password checked out): its audit event's `user_id`, never sent. */
  userId?: string;
}

export class AuthError extends Error {
  override name = "AuthError";
  readonly retryAfterSeconds: number | undefined;
  readonly fieldViolations: readonly FieldViolation[];
  readonly userId: string | undefined;

  constructor(
    readonly code: AuthErrorCode,
    readonly reason: Reason,
    message: string,
    options: AuthErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.fieldViolations = options.fieldViolations ?? [];
    this.userId = options.userId;
  }
}

/**
 * Makes an error without capturing a stack trace. The errors the core raises are answers
 * (a wrong password, a lock, a full hasher), not faults: their stack is never logged, and
 * capturing it was a tenth of the cost of a refused sign-up under a flood. Unexpected failures
 * keep theirs, as the cause of the internal error that wraps them.
 */
export function withoutStack<T>(make: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

type Factory = (reason: Reason, message: string, options?: AuthErrorOptions) => AuthError;
const factory =
  (code: AuthErrorCode): Factory =>
  (reason, message, options) =>
    code === "internal" ? new AuthError(code, reason, message, options) : withoutStack(() => new AuthError(code, reason, message, options));

export const invalidArgument = factory("invalid_argument");
export const unauthenticated = factory("unauthenticated");
export const permissionDenied = factory("permission_denied");
export const notFound = factory("not_found");
export const alreadyExists = factory("already_exists");
export const resourceExhausted = factory("resource_exhausted");
export const failedPrecondition = factory("failed_precondition");
export const unavailable = factory("unavailable");
export const internal = factory("internal");

/** INVALID_ARGUMENT MISSING_FIELDS for one empty required field: "<field> is required". */
export function missingField(field: string): AuthError {
  const description = `${field} is required`;
  return invalidArgument("MISSING_FIELDS", description, { fieldViolations: [{ field, description }] });
}

/** Throws missingField(field) when `value` is empty; returns it otherwise. */
export function requireField(field: string, value: string): string {
  if (value === "") throw missingField(field);
  return value;
}

/** INVALID_ARGUMENT about one field (`reason` INVALID_FIELD unless told), the message as its description. */
export function invalidField(field: string, message: string, reason: Reason = "INVALID_FIELD"): AuthError {
  return invalidArgument(reason, message, { fieldViolations: [{ field, description: message }] });
}

/**
 * The same failure under another code (and optionally message); the original becomes the cause.
 * `field`: the request field the failure is now about (an argument rather than the credential),
 * named in a field violation.
 */
export function recode(e: AuthError, code: AuthErrorCode, message = e.message, field?: string): AuthError {
  return withoutStack(
    () =>
      new AuthError(code, e.reason, message, {
        cause: e,
        ...(e.retryAfterSeconds !== undefined && { retryAfterSeconds: e.retryAfterSeconds }),
        fieldViolations: field === undefined ? e.fieldViolations : [{ field, description: message }],
      }),
  );
}

/**
 * `next()`, the steps of a call after one of its writes was committed without an fsync of its
 * own (a login's credential, whose `durable` the call waits for before its answer): an error of
 * any step goes out once that write is durable too, so a power cut after the error cannot take
 * back what the call committed. When it cannot be made durable, that failure (the store's)
 * answers instead.
 */
export async function durableBeforeError<T>(durable: () => Promise<void>, next: () => Promise<T>): Promise<T> {
  try {
    return await next();
  } catch (e) {
    await durable();
    throw e;
  }
}

/**
 * Whether `e` says the call ended before its work was done: its deadline passed (a store call
 * not made, or not waited for, past it) or its client left (CallEndedError). Such a call was
 * answered DEADLINE_EXCEEDED or CANCELED; no store or server failed.
 */
export function endedCall(e: unknown): boolean {
  return e instanceof CallEndedError || e instanceof DeadlineExceededError;
}

/**
 * Whether `e` refuses the call (an AuthError other than UNAVAILABLE or INTERNAL: a wrong password,
 * a user deactivated meanwhile), rather than saying that it ended (endedCall) or that the store or
 * the server failed.
 */
export function refusal(e: unknown): e is AuthError {
  return e instanceof AuthError && e.code !== "unavailable" && e.code !== "internal";
}

/**
 * `store()`, the write of a login's credential (or of the credential an exchange or a refresh
 * token's issue makes), then `next()`, the steps after it, before any token of it goes out. When
 * either fails for anything but a refusal (whose step withdraws the credential itself, before it
 * is answered), no one holds the credential: it is withdrawn (`withdraw`), beyond the call's
 * deadline, before the error goes on, so that none is left live that nobody received (counted
 * against its user's cap, listed, and usable by whoever reads the store). That is when the call
 * ended (its deadline passed, a store call refused at it) or the store or the server failed, the
 * credential's own write included: one the store answered with an error may have been made all
 * the same (its answer lost; on MongoDB, a session inserted before its refresh token's insert
 * failed, or the deadline refused that second insert), and one that goes on after its error
 * (settledOf: on MongoDB, under way when its time bound passed) is withdrawn again once it has
 * ended. A withdrawal that fails is logged; the call's own error goes on.
 */
export async function storedOrWithdrawn<S, T>(withdraw: () => Promise<unknown>, logger: Pick<Logger, "warn">, store: () => Promise<S>, next: (stored: S) => Promise<T>): Promise<T> {
  let stored: S;
  try {
    stored = await store();
  } catch (e) {
    if (!refusal(e)) {
      await withdrawLogged(withdraw, logger);
      const settled = settledOf(e);
      if (settled) void settled.then(() => withdrawLogged(withdraw, logger));
    }
    throw e;
  }
  try {
    return await next(stored);
  } catch (e) {
    if (!refusal(e)) await withdrawLogged(withdraw, logger);
    throw e;
  }
}

/** `withdraw()`, beyond the call's deadline; a failure is logged (its message only: no secret is in a store's error). */
function withdrawLogged(withdraw: () => Promise<unknown>, logger: Pick<Logger, "warn">): Promise<void> {
  return beyondDeadline(withdraw).then(
    () => undefined,
    (failure: unknown) => logger.warn("a credential no answer handed out was not withdrawn", { error: failure instanceof Error ? failure.message : String(failure) }),
  );
}
