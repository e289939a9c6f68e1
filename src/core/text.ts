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

/**
 * A value that is a URL with a password ("https://user:pass@host"), its password replaced by
 * <hidden>, before it is escaped or cut: the password as the URL parser reads it, whatever it
 * holds (a space, a quote, an escape). The parser skips leading C0 controls and spaces, and tabs
 * and line breaks anywhere; the authority follows "scheme:" and its slashes (or backslashes) and
 * ends at "/", "?" or "#"; its user info ends at the authority's last "@"; the password follows
 * the user info's first ":". Read wider than that (a path taken for user info), the text hidden
 * is longer, never shorter. Linear in the value's length: the user name begins with the first
 * character after the slashes that is none of theirs, so that a tab or backslash, which both may
 * hold, is read one way only (read either way, a run of them, as a request's text may hold, was
 * tried at every split between the two: 16 KiB of tabs after "a:" took 0.4 s).
 */
export function withoutUrlPassword(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/^([\u0000-\u0020]*[A-Za-z][A-Za-z0-9+.\-\t\n\r]*:[/\\\t\n\r]*(?:[^/?#:\\\t\n\r][^/?#:]*)?):[^/?#]*@/, "$1:<hidden>@");
}

/** `text` with every control character escaped as JSON escapes it: one line, whatever it holds. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

/**
 * `text` with the password of every URL it quotes ("scheme://user:password@host") replaced by
 * <hidden>: a refused OTLP endpoint, public URL or origin may carry one.
 */
export function withoutUrlPasswords(text: string): string {
  return text.replace(/(\/\/[^\s"/:@]*):[^\s"]*@/g, "$1:<hidden>@");
}
