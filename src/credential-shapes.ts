// The shapes of the credentials Tessera hands out: a JWT (compact JWS), an API token (`tsr_`),
// a UUID (seed 002 user tokens), 32 or 43 base64url characters (randomToken's hand-off, refresh
// and other tokens). Text of such a shape where a request gives a name (a login, a query
// parameter's name, a path segment no route has) is most likely a token sent in the wrong place,
// and is neither recorded nor quoted back. No dependencies: the transcoder, the server and the
// core use it alike.
const apiTokenShape = /^tsr_[0-9A-Za-z]{38}$/; // an API token, its checksum right or not
const uuidShape = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const credentialShapes = [
  /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/, // a JWS header is JSON: "{"..., base64url "eyJ"
  apiTokenShape,
  uuidShape,
  /^(?:[A-Za-z0-9_-]{32}|[A-Za-z0-9_-]{43})$/,
];

/** Whether `text` has the shape of one of Tessera's credentials. */
export function credentialShaped(text: string): boolean {
  return credentialShapes.some((shape) => shape.test(text));
}

/** 32 hexadecimal digits: a W3C trace id, or 16 random bytes, as ids of all kinds are written. */
const hexId = /^[0-9a-f]{32}$/i;

/**
 * Whether `text`, a caller's own id (an x-request-id), has the shape of one of Tessera's
 * credentials: a JWT, an API token, or base64url characters as many as a random token's (43: a
 * refresh token, a cookie session; 32: an authentication token), unless those are 32 hex digits.
 * Not a UUID, which a seed 002 user token is but ids of all kinds are too (request ids most of
 * all), nor 32 hex digits: no caller's own id would be kept.
 */
export function credentialShapedId(text: string): boolean {
  return credentialShaped(text) && !uuidShape.test(text) && !hexId.test(text);
}

/**
 * Whether text may not be quoted back: it has a credential's shape, or `isSecret` (config.ts
 * configuredSecret) says it is a secret of the configuration.
 */
export function unquotable(isSecret?: (text: string) => boolean): (text: string) => boolean {
  return isSecret === undefined ? credentialShaped : (text) => credentialShaped(text) || isSecret(text);
}

/**
 * Whether an error may quote `text`, a request's (a header's value, a name): not when `hidden`
 * (see unquotable) says so of it or of one of its words (split at white space and , ; =), such
 * as a token sent as a content type's parameter. Only the words that begin in the first
 * `shownMax` characters, those an error shows, are looked at (a name may be long).
 */
export function quotable(text: string, hidden: (text: string) => boolean, shownMax = Infinity): boolean {
  if (hidden(text)) return false;
  const words = /[^\s,;=]+/g;
  for (let m = words.exec(text); m !== null && m.index < shownMax; m = words.exec(text)) if (hidden(m[0])) return false;
  return true;
}

/**
 * Whether `text` holds something `hidden` (see unquotable) says of it, wherever it stands: the
 * whole text, one of its words as quotable splits them, or one of its pieces split at every
 * character no credential of Tessera's can hold (each is of base64url characters, a JWT's `.`
 * and a token's `_` included), such as a token quoted (`"tsr_..."`), in brackets, after a `:`,
 * a `/` or an `@` (a URL's user part). A piece is looked at as it is, without the `.` it ends or
 * begins with (a sentence's full stop), and part by part between its dots (`name.tsr_...`).
 */
export function holdsCredential(text: string, hidden: (text: string) => boolean): boolean {
  if (!quotable(text, hidden)) return true;
  for (const piece of text.match(/[A-Za-z0-9_.-]+/g) ?? []) {
    if (hidden(piece)) return true;
    const bare = withoutOuterDots(piece);
    if (bare !== piece && hidden(bare)) return true;
    if (piece.includes(".") && piece.split(".").some((part) => part !== "" && hidden(part))) return true;
  }
  return false;
}

/**
 * `piece` without the dots it begins or ends with. Linear in its length, as `/^\.+|\.+$/g` was
 * not: that tried `\.+$` from every dot of a run that does not end the piece, so a refused login
 * of a letter, 64 Ki dots and a letter took 3 s.
 */
function withoutOuterDots(piece: string): string {
  let start = 0;
  let end = piece.length;
  while (start < end && piece.charCodeAt(start) === 0x2e) start++;
  while (end > start && piece.charCodeAt(end - 1) === 0x2e) end--;
  return piece.slice(start, end);
}
