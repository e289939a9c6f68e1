// One id per request, for the logs and for whoever reports a problem: the caller's
// `x-request-id` when it is sane (a proxy or a client that already numbers its requests), else
// a new random UUID. It comes back as the `x-request-id` response header on every protocol. An id
// that is or holds a secret of the configuration (the admin token, sent in the wrong header)
// anywhere in it (`rt:<token>`, `x-<token>`, `<token>_1`), or something of a credential's shape
// (an API token, a refresh token, a JWT: credentialShapedId), whole or as a piece of it
// (`rt:<token>`, as holdsCredential splits it), is not kept: the id is in every log line of the
// call and in its audit events.
import { randomUUID } from "node:crypto";
import { credentialShapedId, holdsCredential } from "../credential-shapes.js";

export const requestIdHeader = "x-request-id";

/** Printable, no spaces or separators a log reader could trip on; at most 128 characters. */
const sane = /^[A-Za-z0-9._:+/=@-]{1,128}$/;
/** Characters holdsCredential never splits a piece at, but for "." (a JWT's, or a sentence's). */
const oneWord = /^[A-Za-z0-9_-]+$/;

/**
 * The request's id: `incoming` when it is sane, `holdsSecret` (config.ts holdsConfiguredSecret)
 * finds no secret in it and it holds nothing of a credential's shape, else a new UUID.
 */
export function requestIdOf(incoming: string | string[] | undefined, holdsSecret?: (text: string) => boolean): string {
  if (typeof incoming !== "string" || !sane.test(incoming) || holdsSecret?.(incoming) === true) return randomUUID();
  // An id of base64url characters alone (a UUID) is one piece: looked at whole, without the split.
  return (oneWord.test(incoming) ? credentialShapedId(incoming) : holdsCredential(incoming, credentialShapedId)) ? randomUUID() : incoming;
}
