import { badRequest } from "./http-error.js";

/**
 * Decodes one raw path segment completely (`%2F` becomes `/`). Used for literals and for
 * variables that span one segment.
 * A malformed escape, or bytes that are not UTF-8, is a 400 that does not quote the segment (a
 * path segment may be a credential): the transcoder names where it is (the variable, or the
 * path as its errors describe it).
 */
export function decodeSegment(raw: string): string {
  const decoded = tryDecodeSegment(raw);
  if (decoded === undefined) {
    throw badRequest("MALFORMED_PATH", "malformed percent-encoding in the path");
  }
  return decoded;
}

/** decodeSegment, with undefined for a segment that does not decode. */
export function tryDecodeSegment(raw: string): string | undefined {
  if (raw.indexOf("%") < 0) {
    return raw;
  }
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/**
 * Decodes a segment of a multi-segment variable, keeping `%2F` (and `%2f`) encoded: the value
 * is a path, and a slash the client escaped must stay distinguishable from a separator.
 */
export function decodeSegmentKeepSlash(raw: string): string {
  if (raw.indexOf("%") < 0) {
    return raw;
  }
  const parts = raw.split(/%2f/i);
  if (parts.length === 1) {
    return decodeSegment(raw);
  }
  return parts.map(decodeSegment).join("%2F");
}

/**
 * Decodes a query-string key or value: `+` is a space (form encoding), then percent escapes. A
 * malformed escape is a 400 naming `what`, and the field violation `field` (`named`, called only
 * then: what the error says and the field it names, if any).
 */
export function decodeQueryComponent(raw: string, named: () => [what: string, field: string | undefined]): string {
  const s = raw.indexOf("+") < 0 ? raw : raw.replace(/\+/g, " ");
  if (s.indexOf("%") < 0) {
    return s;
  }
  try {
    return decodeURIComponent(s);
  } catch {
    const [what, field] = named();
    throw badRequest("INVALID_QUERY_PARAMETER", `malformed percent-encoding in ${what}`, field);
  }
}
