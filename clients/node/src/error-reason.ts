// Tessera's errors carry a google.rpc.ErrorInfo (domain "tessera") with a stable reason
// (INVALID_CREDENTIALS, TOKEN_EXPIRED, LOGIN_LOCKED...): clients branch on it, never on the
// message. Every protocol carries it; connect-es decodes it from each.
import { ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";

/** The reason of a Tessera error (e.g. "TOKEN_EXPIRED"), or undefined when it carries none. */
export function errorReason(error: unknown): string | undefined {
  return ConnectError.from(error).findDetails(ErrorInfoSchema).find((info) => info.domain === "tessera")?.reason;
}

/** The longest wait retryAfterSeconds gives: a day. */
export const maxRetryAfterSeconds = 86_400;

/**
 * How many seconds to wait before retrying (LOGIN_LOCKED, TOO_MANY_SIGNUPS, HASHER_BUSY,
 * STORE_UNAVAILABLE), or undefined. The error's RetryInfo as whole seconds, a fraction rounded
 * up; a negative delay (which no server means) is undefined, and one longer than a day is a day:
 * a caller's timer would fire at once for a delay past 2^31 ms.
 */
export function retryAfterSeconds(error: unknown): number | undefined {
  const delay = ConnectError.from(error).findDetails(RetryInfoSchema)[0]?.retryDelay;
  if (delay === undefined || delay.seconds < 0n || delay.nanos < 0) return undefined;
  if (delay.seconds >= BigInt(maxRetryAfterSeconds)) return maxRetryAfterSeconds;
  return Math.min(maxRetryAfterSeconds, Number(delay.seconds) + (delay.nanos > 0 ? 1 : 0));
}
