// Turns every error a handler or the core throws into a ConnectError a caller can act on.
// Core errors keep their code, message and Retry-After (and a 401 the challenge the access
// interceptor chose for it), and ride along as the ConnectError's
// `cause` (their reason and field violations are there for whoever reads it next); a store
// outage is UNAVAILABLE; anything else is INTERNAL with a generic message, and its details go
// to the log only.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { challengeKey } from "../access/context.js";
import { AuthError, internal, unavailable, type AuthErrorCode } from "../core/errors.js";
import type { Logger } from "../logger.js";
import { StoreUnavailableError } from "../store/ports.js";

const codes: Record<AuthErrorCode, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  resource_exhausted: Code.ResourceExhausted,
  failed_precondition: Code.FailedPrecondition,
  unavailable: Code.Unavailable,
  internal: Code.Internal,
};

/** The AuthError a caller sees for `e`: core errors as they are, store outages and the rest mapped. */
export function toAuthError(e: unknown, logger: Logger, procedure: string): AuthError {
  if (e instanceof AuthError) return e;
  if (e instanceof StoreUnavailableError) {
    logger.warn("store unavailable", { procedure, error: e.message });
    return unavailable("STORE_UNAVAILABLE", "the store is unavailable, try again shortly", { cause: e, retryAfterSeconds: 1 });
  }
  logger.error("unexpected error", { procedure, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e), stack: e instanceof Error ? e.stack : undefined });
  return internal("INTERNAL", "internal error", { cause: e });
}

/** `challenge`: the WWW-Authenticate value for a 401 (from the access interceptor). */
export function toConnectError(e: unknown, logger: Logger, procedure: string, challenge?: string): ConnectError {
  if (e instanceof ConnectError) return e;
  const error = toAuthError(e, logger, procedure);
  const metadata = new Headers();
  if (error.retryAfterSeconds !== undefined) metadata.set("retry-after", String(Math.max(1, Math.ceil(error.retryAfterSeconds))));
  if (error.code === "unauthenticated" && challenge !== undefined) metadata.set("www-authenticate", challenge);
  return new ConnectError(error.message, codes[error.code], metadata, undefined, error);
}

export function createErrorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (e) {
      throw toConnectError(e, logger, req.url, req.contextValues.get(challengeKey));
    }
  };
}
