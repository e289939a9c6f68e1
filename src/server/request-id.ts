// One id per request, for the logs and for whoever reports a problem: the caller's
// `x-request-id` when it is sane (a proxy or a client that already numbers its requests), else
// a new random UUID. It comes back as the `x-request-id` response header on every protocol.
import { randomUUID } from "node:crypto";

export const requestIdHeader = "x-request-id";

/** Printable, no spaces or separators a log reader could trip on; at most 128 characters. */
const sane = /^[A-Za-z0-9._:+/=@-]{1,128}$/;

export function requestIdOf(incoming: string | string[] | undefined): string {
  return typeof incoming === "string" && sane.test(incoming) ? incoming : randomUUID();
}
