// Why a token was refused, as a stable code a caller can branch on. Messages say what is wrong
// with the token; they never contain it.

/** Every reason a token can be refused. */
export const TokenErrorCodes = [
  /** Not a compact JWS of the expected form: segments, base64url (canonical), JSON, length. */
  "MALFORMED_TOKEN",
  /** The header names an algorithm that is not allowed (never `none` or HS*), or not the key's. */
  "UNSUPPORTED_ALGORITHM",
  /** No key with the token's `kid` in the key set, even after fetching it again. */
  "UNKNOWN_KEY",
  /** The token's key was in the key set once and is no longer: retired or revoked. */
  "KEY_REMOVED",
  /** The signature does not verify with the key the token names. */
  "INVALID_SIGNATURE",
  /** `exp` has passed (no leeway, as in Tessera). */
  "TOKEN_EXPIRED",
  /** `nbf`, or `iat` (issued in the future), is still ahead, by more than the clock tolerance. */
  "TOKEN_NOT_YET_VALID",
  /** `iss` is not the expected issuer. */
  "WRONG_ISSUER",
  /** `aud` is not the configured audience (JWT API tokens) or a configured client id (session tokens). */
  "WRONG_AUDIENCE",
  /** A valid Tessera token that is not an access token (a refresh token). */
  "WRONG_TOKEN_TYPE",
  /** A claim is missing or of the wrong type, or the token is of no Tessera kind. */
  "INVALID_CLAIMS",
  /** The key set (or the discovery document) could not be fetched: nothing can be verified. */
  "KEYS_UNAVAILABLE",
] as const;

export type TokenErrorCode = (typeof TokenErrorCodes)[number];

/** A token was refused, or could not be checked (KEYS_UNAVAILABLE). */
export class TokenVerificationError extends Error {
  override readonly name = "TokenVerificationError";
  constructor(
    readonly code: TokenErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const refuse = (code: TokenErrorCode, message: string, cause?: unknown) =>
  new TokenVerificationError(code, message, cause === undefined ? undefined : { cause });

/** How many characters of a value a message quotes. */
const quotedLength = 64;

/** C1 controls and the bidirectional formatting characters, which JSON.stringify leaves as they are. */
const unquotable = /[\u0080-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

/** C0 controls and DEL besides: what a text quoted as it is (not JSON) escapes. */
const unprintable = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

const escaped = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * `text` with its controls and bidirectional formatting characters escaped as `quoted` escapes
 * them: a message of another's (JSON.parse's) that quotes a served document as it is.
 */
export function printable(text: string): string {
  return text.replace(unprintable, escaped);
}

/**
 * A value from a token or a served document as a message quotes it: JSON, those characters
 * escaped too, at most 64 characters (never half an escape or a surrogate pair), the length of
 * its JSON said when cut. A value of any size (a 6 KB header, a 1 MiB document) is a short line.
 */
export function quoted(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  const text = json.replace(unquotable, escaped);
  if (text.length <= quotedLength) return text;
  return `${wholeEscapes(text.slice(0, quotedLength))}... (${json.length} characters)`;
}

/**
 * `cut`, JSON text cut anywhere, less what the cut left of an escape or a surrogate pair: a
 * trailing backslash that begins an escape (one of an odd run: an even run is escaped
 * backslashes), with the "u" and hex digits of a \uXXXX cut short, or a lone high surrogate.
 */
function wholeEscapes(cut: string): string {
  const m = /(\\+)(u[0-9a-fA-F]{0,3})?$/.exec(cut);
  if (m && m[1]!.length % 2 === 1) return cut.slice(0, m.index + m[1]!.length - 1);
  return cut.replace(/[\ud800-\udbff]$/, "");
}

/** How many characters of a URL (before its redacted query and fragment) a message quotes. */
const quotedUrlLength = 256;

/**
 * A URL as an error quotes it: without what may hold a secret (a `user:password@`, a query such
 * as `?api_key=...`, a fragment), each replaced by a marker saying it was there; what is left
 * (a served document's `jwks_uri` may have a path of up to 1 MiB) at most 256 characters, its
 * length said when cut, as `quoted` says it. A URL is ASCII (its path percent-encoded): the cut
 * only drops a percent-escape it would leave half written.
 */
export function redactedUrl(url: URL): string {
  const userInfo = url.username !== "" || url.password !== "" ? "<redacted>@" : "";
  const shown = `${url.protocol}//${userInfo}${url.host}${url.pathname}`;
  const bounded = shown.length <= quotedUrlLength ? shown : `${shown.slice(0, quotedUrlLength).replace(/%[0-9a-fA-F]?$/, "")}... (${shown.length} characters)`;
  return `${bounded}${url.search !== "" ? "?<redacted>" : ""}${url.hash !== "" ? "#<redacted>" : ""}`;
}
