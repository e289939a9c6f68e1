// One id per request, for the logs and for whoever reports a problem: the caller's
// `x-request-id` when it is sane (a proxy or a client that already numbers its requests), else
// a new random UUID. It comes back as the `x-request-id` response header on every protocol. An id
// that is or holds a secret (the admin token, sent in the wrong header) or something of a
// credential's shape (an API token, a refresh token, a JWT: credentialShapedId), whole or as a
// piece of it (`rt:<token>`, as holdsCredential splits it), is not kept: the id is in every log
// line of the call and in its audit events.
import { randomUUID } from "node:crypto";
import { credentialShapedId, holdsCredential } from "../credential-shapes.js";

export const requestIdHeader = "x-request-id";

/** Printable, no spaces or separators a log reader could trip on; at most 128 characters. */
const sane = /^[A-Za-z0-9._:+/=@-]{1,128}$/;
/** Characters holdsCredential never splits a piece at, but for "." (a JWT's, or a sentence's). */
const oneWord = /^[A-Za-z0-9_-]+$/;

/** The request's id: `incoming` when it is sane and holds nothing of a credential's shape nor `secret`, else a new UUID. */
export function requestIdOf(incoming: string | string[] | undefined, secret?: (text: string) => boolean): string {
  if (typeof incoming !== "string" || !sane.test(incoming)) return randomUUID();
  const hidden = (text: string) => credentialShapedId(text) || secret?.(text) === true;
  // An id of base64url characters alone (a UUID) is one piece: looked at whole, without the split.
  return (oneWord.test(incoming) ? hidden(incoming) : holdsCredential(incoming, hidden)) ? randomUUID() : incoming;
}
