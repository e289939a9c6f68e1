// Free text a caller stores (notes, descriptions, account ids): bounded, and without control
// characters other than tab and line breaks. NUL in particular is refused: several databases
// cannot store it (PostgreSQL-backed MongoDB-compatible servers among them), and no client
// means it.
import { quotable } from "../credential-shapes.js";
import { invalidField } from "./errors.js";

// eslint-disable-next-line no-control-regex
const forbidden = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/u;

/** True when `value` holds a control character free text may not (so no stored value has it). */
export function holdsControlCharacters(value: string): boolean {
  return forbidden.test(value);
}

/** Throws INVALID_ARGUMENT naming `field` when `value` is too long or holds control characters. */
export function checkFreeText(field: string, value: string | undefined, maxLength: number): void {
  if (value === undefined) return;
  if (value.length > maxLength) throw invalidField(field, `${field} is too long (at most ${maxLength} characters)`);
  if (holdsControlCharacters(value)) throw invalidField(field, `${field} must not contain control characters`);
}

/**
 * A caller's text as a log line or an audit event keeps it: at most `max` characters,
 * well-formed, no control characters, no line or paragraph separators (U+2028, U+2029: JSON
 * keeps them as they are, and a reader that breaks lines at them, as Python's splitlines() does
 * at those and at NEL, U+0085, would split the line in two, or read a line the text wrote) and no
 * bidirectional formatting characters (U+202E would show the rest of the line reversed;
 * login-name.ts refuses the same in a login): each replaced by U+FFFD.
 */
export function lineText(text: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  return (text.length > max ? text.slice(0, max) : text).replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

/** Longest part of a value an error message quotes (configuration values). */
export const quotedMax = 64;

/**
 * What no message shows as it is: a control character (C0, DEL, C1), a bidirectional formatting
 * character, half of a surrogate pair alone.
 */
// eslint-disable-next-line no-control-regex
const unprintable = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]/gu;

/** `text` with each character of `unprintable` written as a \uXXXX escape. */
export function printable(text: string): string {
  return text.replace(unprintable, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * A value as an error message quotes it: JSON-escaped, so on one line whatever it holds (a line
 * break is written \n), the characters JSON leaves (DEL, C1 controls, bidirectional formatting)
 * as \uXXXX escapes too, and cut to its first 64 characters, its length then said.
 */
export function quoted(value: string): string {
  const shown = withoutUrlPassword(value);
  const cut = shown.length <= quotedMax ? "" : `... (${shown.length} characters)`;
  return printable(JSON.stringify(cut === "" ? shown : shown.slice(0, quotedMax))) + cut;
}

/** A request's text (a header's value, a name) as an error quotes it (quoted), or * when quotable says not to. */
export function quotedRequestText(text: string, hidden: (text: string) => boolean): string {
  return quotable(text, hidden, quotedMax) ? quoted(text) : "*";
}

/**
 * A request's text where a message shows it bare (an origin, a path's segment): as it is when
 * quotedRequestText quotes it whole and unchanged (nothing cut, escaped or hidden), else as
 * quotedRequestText writes it (cut, escaped, a URL's password hidden, or *), so that no message
 * grows with the request or shows what it hides.
 */
export function shownRequestText(text: string, hidden: (text: string) => boolean): string {
  const shown = quotedRequestText(text, hidden);
  return shown === `"${text}"` ? text : shown;
}

/**
 * A path no route or RPC takes, as an error may quote it: its first segment as
 * shownRequestText shows it (`hidden`: see unquotable), each further one "*" (it may hold a
 * credential), as the transcoder's route table describes a path past its routes; at most
 * describedSegmentsMax of them (describedPath).
 */
export function unroutedPath(path: string, hidden: (text: string) => boolean): string {
  const segments = path.slice(1).split("/");
  const shown = segments.slice(0, describedSegmentsMax).map((s, i) => (i === 0 ? shownRequestText(s, hidden) : "*"));
  return describedPath(shown, segments.length);
}

/** Most segments a path's description names: a route has at most 5. */
export const describedSegmentsMax = 16;

/**
 * A path as a message describes it, from the descriptions of its segments (`total` of them in
 * the path): "/" before each, at most describedSegmentsMax of them, then "/... (N segments)",
 * so that no description grows with the path (a path of 15 000 slashes was described as "/*"
 * 15 000 times: 30 000 bytes back for a 15 000-byte request line).
 */
export function describedPath(segments: readonly string[], total: number): string {
  const shown = segments.length > describedSegmentsMax ? segments.slice(0, describedSegmentsMax) : segments;
  return `/${shown.join("/")}${total > shown.length ? `/... (${total} segments)` : ""}`;
}

/**
 * Whether `text` is as quotedRequestText writes a request's text: "*", or a JSON string of at
 * most 64 characters, printable and quotable, its length perhaps said after it.
 */
export function isQuotedRequestText(text: string, hidden: (text: string) => boolean): boolean {
  if (text === "*") return true;
  const m = /^("(?:[^"\\]|\\.)*")(?:\.\.\. \(\d+ characters\))?$/.exec(text);
  if (!m || printable(m[1]!) !== m[1]) return false;
  let inner: unknown;
  try {
    inner = JSON.parse(m[1]!);
  } catch {
    return false;
  }
  return typeof inner === "string" && inner.length <= quotedMax && quotable(inner, hidden, quotedMax);
}

/** Characters a URL's scheme may hold after its first letter (the parser drops tabs and line breaks). */
const schemeCharacter = /[A-Za-z0-9+.\-\t\n\r]/;
const letter = /[A-Za-z]/;

/**
 * `value` with the password of every URL in it ("https://user:pass@host", alone or within other
 * text: `text/plain; x=https://user:pass@host/`) replaced by <hidden>, before it is escaped or
 * cut: the password as the URL parser reads it, whatever it holds (a space, a quote, an escape).
 * A scheme is a run of letters, digits, "+", "-" and "." (tabs and line breaks, which the parser
 * drops, too) with a letter in it, then ":"; its slashes (or backslashes, tabs, line breaks)
 * follow; the user name begins with the first character that is none of theirs and ends at the
 * first ":", "/", "?" or "#"; a ":" there begins the password, which ends at the authority's last
 * "@" (before its "/", "?" or "#"). Read wider than that (a path taken for user info), the text
 * hidden is longer, never shorter. Linear in the value's length: each ":" a scheme may end is
 * looked at once, its user name read up to the next ":" at most, and the authority's last "@"
 * found from one pass from the end (an expression that tried each split of a run of tabs
 * between the slashes and the user name, or each ":" as a scheme's, took time quadratic in it).
 */
export function withoutUrlPassword(value: string): string {
  const n = value.length;
  if (value.indexOf("@") < 0 || value.indexOf(":") < 0) return value;
  // lastAt[i]: the last "@" at i or after it, before the first "/", "?" or "#" from i; -1 if none.
  const lastAt = new Int32Array(n + 1).fill(-1);
  for (let i = n - 1; i >= 0; i--) {
    const c = value[i];
    lastAt[i] = c === "/" || c === "?" || c === "#" ? -1 : lastAt[i + 1]! >= 0 ? lastAt[i + 1]! : c === "@" ? i : -1;
  }
  let out = "";
  let copied = 0;
  let schemeHasLetter = false;
  for (let i = 0; i < n; i++) {
    const c = value[i]!;
    if (c !== ":") {
      schemeHasLetter = schemeCharacter.test(c) ? schemeHasLetter || letter.test(c) : false;
      continue;
    }
    if (!schemeHasLetter) continue;
    schemeHasLetter = false;
    let j = i + 1;
    while (j < n && /[/\\\t\n\r]/.test(value[j]!)) j++;
    while (j < n && !/[/?#:]/.test(value[j]!)) j++;
    const at = j < n && value[j] === ":" ? lastAt[j + 1]! : -1;
    // None: the text after this ":" is read on as any other (a ":" in it may end a scheme).
    if (at < 0) continue;
    out += value.slice(copied, j + 1) + "<hidden>";
    copied = at;
    i = at;
  }
  return copied === 0 ? value : out + value.slice(copied);
}

/**
 * `value` without the "/" it ends with, however many ("https://idp.example//" ->
 * "https://idp.example"). Read back from the end, linear in its length: /\/+$/ tried each "/"
 * with the rest of the run, time quadratic in a run of "/" that something else ends (64 Ki of
 * them then a NUL in a configured URL or path: seconds of a start).
 */
export function withoutTrailingSlashes(value: string): string {
  let end = value.length;
  while (end > 0 && value.charCodeAt(end - 1) === 0x2f) end--;
  return end === value.length ? value : value.slice(0, end);
}

/** `text` with every control character escaped as JSON escapes it: one line, whatever it holds. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

/**
 * `text` with the password of every URL it quotes ("scheme://user:password@host") replaced by
 * <hidden>: a refused OTLP endpoint, public URL or origin may carry one. Within a word (a run of
 * characters other than white space and '"'), the first "//" whose user name (up to the first
 * "/", ":" or "@") ends at a ":" before the word's last "@": from that ":" to the last "@" is the
 * password. Linear in the text's length: each "//" is looked at once, and the user names read
 * from two of them do not overlap (an expression that tried each "//" with the rest of its word
 * when no "@" followed took time quadratic in a run of "//:").
 */
export function withoutUrlPasswords(text: string): string {
  return text.replace(/[^\s"]+/g, (word) => {
    const at = word.lastIndexOf("@");
    for (let p = word.indexOf("//"); p >= 0 && p < at; p = word.indexOf("//", p + 1)) {
      let j = p + 2;
      while (j < at && word[j] !== "/" && word[j] !== ":" && word[j] !== "@") j++;
      if (j < at && word[j] === ":") return `${word.slice(0, j)}:<hidden>${word.slice(at)}`;
    }
    return word;
  });
}
