// Turns every error a handler or the core throws into a ConnectError a caller can act on.
// Core errors keep their code, message and Retry-After (and a 401 the challenge the access
// interceptor chose for it), carry their reason, retry delay and field violations as error
// details (error-details.ts: google.rpc.ErrorInfo, RetryInfo, BadRequest), and ride along as
// the ConnectError's `cause`; a store outage is UNAVAILABLE; a store call the caller's deadline
// cut short is DEADLINE_EXCEEDED; anything else is INTERNAL with a generic message, and is logged
// once, here, with the RPC, the request id (the logger adds it) and the stack. Errors a stream
// throws while it is read are mapped the same way. A ConnectError raised inside the chain
// (connect-es: a method without an implementation, a streamed message that does not parse) is
// corrected as protocol-errors.ts corrects those raised outside it.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { challengeKey } from "../access/context.js";
import { CallEndedError } from "../call-scope.js";
import { AuthError, internal, unavailable, withoutStack, type AuthErrorCode } from "../core/errors.js";
import type { Logger } from "../logger.js";
import { DeadlineExceededError, StoreUnavailableError } from "../store/ports.js";
import { errorDetails, retryAfter } from "./error-details.js";
import { describeError } from "./error-report.js";
import { correctedError } from "./protocol-errors.js";

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
  logger.error("unexpected error", { procedure, ...describeError(e) });
  return internal("INTERNAL", "internal error", { cause: e });
}

/** `challenge`: the WWW-Authenticate value for a 401 (from the access interceptor). */
export function toConnectError(e: unknown, logger: Logger, procedure: string, challenge?: string): ConnectError {
  if (e instanceof ConnectError) return correctedError(e) ?? e;
  if (e instanceof DeadlineExceededError) {
    return new ConnectError("the deadline passed before the call completed", Code.DeadlineExceeded, undefined, errorDetails({ reason: "DEADLINE_EXCEEDED" }), e);
  }
  const error = toAuthError(e, logger, procedure);
  const metadata = new Headers();
  if (error.retryAfterSeconds !== undefined) metadata.set("retry-after", String(retryAfter(error.retryAfterSeconds)));
  if (error.code === "unauthenticated" && challenge !== undefined) metadata.set("www-authenticate", challenge);
  // The answer to the client carries no stack; an internal error's cause keeps its own.
  return withoutStack(() => new ConnectError(error.message, codes[error.code], metadata, errorDetails(error), error));
}

async function* mapped<T>(messages: AsyncIterable<T>, map: (e: unknown) => ConnectError): AsyncGenerator<T> {
  try {
    yield* messages;
  } catch (e) {
    throw map(e);
  }
}

/**
 * A request stream that closed before its end — the client reset it, or the server cut it at
 * its request timeout — fails the read with ERR_STREAM_PREMATURE_CLOSE over HTTP/2, and with
 * Node's ECONNRESET "aborted" over HTTP/1.1 (sometimes before the call's signal says so): the end
 * of the call, not a bug, and nobody is there to read the answer.
 */
function streamCut(e: unknown, signal: AbortSignal): ConnectError | undefined {
  if (e instanceof ConnectError || !requestCut(e)) return undefined;
  return signal.reason instanceof ConnectError ? signal.reason : new ConnectError("the request stream was cut short", Code.Canceled, undefined, undefined, e);
}

/** The error a request body's read fails with when its client left before it ended. */
function requestCut(e: unknown): boolean {
  const { code, message } = (e ?? {}) as { code?: unknown; message?: unknown };
  return code === "ERR_STREAM_PREMATURE_CLOSE" || (code === "ECONNRESET" && message === "aborted");
}

/**
 * The answer of a call whose work was not started because the call had ended (CallEndedError):
 * its signal's own reason (DEADLINE_EXCEEDED at its deadline, CANCELED when its client left), or
 * DEADLINE_EXCEEDED for a deadline seen passed before the signal fired. Nothing to report.
 */
function callEnd(signal: AbortSignal, e: CallEndedError): ConnectError {
  if (signal.reason instanceof ConnectError) return signal.reason;
  if (signal.aborted) return new ConnectError("the call was cancelled", Code.Canceled, undefined, undefined, e);
  return new ConnectError("the deadline passed before the call completed", Code.DeadlineExceeded, undefined, errorDetails({ reason: "DEADLINE_EXCEEDED" }), e);
}

export function createErrorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const map = (e: unknown) => {
      if (e instanceof CallEndedError) return callEnd(req.signal, e);
      const cut = streamCut(e, req.signal);
      return cut ? (correctedError(cut) ?? cut) : toConnectError(e, logger, `${req.method.parent.typeName}/${req.method.name}`, req.contextValues.get(challengeKey));
    };
    try {
      const res = await next(req);
      return res.stream ? { ...res, message: mapped(res.message, map) } : res;
    } catch (e) {
      throw map(e);
    }
  };
}
