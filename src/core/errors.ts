// Errors of the identity core. The core knows no transport: it throws AuthError with a
// transport-neutral code, and the server maps it to a Connect code (and so an HTTP status).
// Messages are for the caller: they never contain secrets or internal details.
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

export interface AuthErrorMeta {
  /** Seconds until a limited caller may retry (429 Retry-After). */
  retryAfterSeconds?: number;
  /** A WWW-Authenticate challenge to send with a 401. */
  challenge?: string;
}

export class AuthError extends Error {
  override name = "AuthError";
  constructor(
    readonly code: AuthErrorCode,
    message: string,
    readonly meta: AuthErrorMeta = {},
  ) {
    super(message);
  }
}

export const invalidArgument = (message: string) => new AuthError("invalid_argument", message);
export const unauthenticated = (message = "authentication required", meta?: AuthErrorMeta) =>
  new AuthError("unauthenticated", message, meta);
export const permissionDenied = (message: string) => new AuthError("permission_denied", message);
export const notFound = (message: string) => new AuthError("not_found", message);
export const alreadyExists = (message: string) => new AuthError("already_exists", message);
