// Free text a caller stores (notes, descriptions, account ids): bounded, and without control
// characters other than tab and line breaks. NUL in particular is refused: several databases
// cannot store it (PostgreSQL-backed MongoDB-compatible servers among them), and no client
// means it.
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
const quotedMax = 64;

/**
 * A value as an error message quotes it: JSON-escaped, so on one line whatever it holds (a line
 * break is written \n), and cut to its first 64 characters, its length then said.
 */
export function quoted(value: string): string {
  if (value.length <= quotedMax) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, quotedMax))}... (${value.length} characters)`;
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
