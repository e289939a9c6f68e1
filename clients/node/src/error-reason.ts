// Tessera's errors carry a google.rpc.ErrorInfo (domain "tessera") with a stable reason
// (INVALID_CREDENTIALS, TOKEN_EXPIRED, LOGIN_LOCKED...): clients branch on it, never on the
// message. Every protocol carries it; connect-es decodes it from each.
import { ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";

/** The reason of a Tessera error (e.g. "TOKEN_EXPIRED"), or undefined when it carries none. */
export function errorReason(error: unknown): string | undefined {
  return ConnectError.from(error).findDetails(ErrorInfoSchema).find((info) => info.domain === "tessera")?.reason;
}

/** How many seconds to wait before retrying (LOGIN_LOCKED, TOO_MANY_SIGNUPS, HASHER_BUSY, STORE_UNAVAILABLE), or undefined. */
export function retryAfterSeconds(error: unknown): number | undefined {
  const delay = ConnectError.from(error).findDetails(RetryInfoSchema)[0]?.retryDelay;
  return delay === undefined ? undefined : Number(delay.seconds);
}
