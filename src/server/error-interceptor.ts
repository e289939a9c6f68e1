// Turns every error a handler or the core throws into a ConnectError a caller can act on.
// Core errors keep their code and message; a store outage is UNAVAILABLE; anything else is
// INTERNAL with a generic message, and its details go to the log only.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { AuthError, type AuthErrorCode } from "../core/errors.js";
import type { Logger } from "../logger.js";

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

export function toConnectError(e: unknown, logger: Logger, procedure: string): ConnectError {
  if (e instanceof ConnectError) return e;
  if (e instanceof AuthError) {
    const metadata = new Headers();
    if (e.meta.retryAfterSeconds !== undefined) metadata.set("retry-after", String(Math.max(1, Math.ceil(e.meta.retryAfterSeconds))));
    if (e.meta.challenge !== undefined) metadata.set("www-authenticate", e.meta.challenge);
    return new ConnectError(e.message, codes[e.code], metadata);
  }
  if (e instanceof Error && e.name === "StoreUnavailableError") {
    logger.warn("store unavailable", { procedure, error: e.message });
    return new ConnectError("the store is unavailable, try again shortly", Code.Unavailable, { "retry-after": "1" });
  }
  logger.error("unexpected error", { procedure, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e), stack: e instanceof Error ? e.stack : undefined });
  return new ConnectError("internal error", Code.Internal);
}

export function createErrorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (e) {
      throw toConnectError(e, logger, req.url);
    }
  };
}
