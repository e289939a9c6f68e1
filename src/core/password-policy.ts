// The password policy shared by every service that sets a password (sign-ups, password changes;
// never a login, so an account whose password an older policy accepted still logs in): at least
// 8 and at most 256 characters (NIST SP 800-63B), not one of the 10,000 most common passwords,
// and not the account's own login (SP 800-63B 5.1.1.2: context-specific words such as the
// user name).
//
// A password is hashed and checked in its RFC 8265 form (passwords.ts: non-ASCII spaces as
// U+0020, then NFC; nothing trimmed or folded), but it is judged in the form logins are compared by
// (login-name.ts: NFKC and case folding, white space trimmed and collapsed, invisible characters
// left out), with control characters left out too. So " password1 ", "password1\0" and the
// full-width "ｐａｓｓｗｏｒｄ１" are as common as "Password1", a password of nothing but white space
// or NULs is refused, and "ADA.Lovelace" is the login ada.lovelace@example.com's local part.
// A password those rules let through is still refused (INVALID_FIELD) when it holds what RFC
// 8265's OpaqueString profile (FreeformClass) refuses: a control character (C0, DEL, C1: tab and
// line breaks too), which no keyboard types into a password field and what reads it may cut it
// off at (NUL); then, as a new login is refused for them (login-name.ts), an invisible
// (default-ignorable) code point (ZWNJ and ZWJ aside where their script needs them), which no
// one can see to type it again (and which the form above leaves out: U+200B counts for nothing),
// an unassigned one or a private-use one, which show as whatever a later Unicode version or a
// font makes of them; then what else RFC 8264 disallows in both classes (tatweel, conjoining
// Hangul jamo, format characters, line separators; a middle dot, keraia, geresh or Arabic-Indic
// digit out of its RFC 5892 context: login-name.ts), judged in the password's OpaqueString form
// (passwords.ts: a Korean password typed as decomposed jamo is its syllables). Symbols,
// punctuation, spaces and letters of every script stay, as FreeformClass takes them. Only where a
// password is set: one set before still logs in.
//
// The list is bundled (common-passwords.txt: SecLists' "10-million-password-list-top-10000",
// MIT, see common-passwords.LICENSE) rather than taken from an npm package: none of the
// packages that wrap such a list is actively maintained, and a plain text file is easy to audit
// or replace.
import { readFileSync } from "node:fs";
import { projectFile } from "../project-files.js";
import { invalidField } from "./errors.js";
import { loginKey, newTextRefusal, newTextRefusals } from "./login-name.js";
import { maxPasswordLength, preparePassword } from "./passwords.js";

export { maxPasswordLength };
export const minPasswordLength = 8;

// Global, to leave every one out (comparedForm); search() finds one from the start whatever the
// pattern's lastIndex, where test() of a global pattern would go on from its last match.
const control = /\p{Cc}/gu;

let common: Set<string> | undefined;

function commonPasswords(): Set<string> {
  common ??= new Set(
    readFileSync(projectFile("src", "core", "common-passwords.txt"), "utf8")
      .split(/\r?\n/)
      .map(comparedForm)
      .filter((line) => line.length >= minPasswordLength),
  );
  return common;
}

/** The form a password is judged in: control characters left out, then compared as a login is. */
function comparedForm(password: string): string {
  return loginKey(password.replace(control, ""));
}

/**
 * Throws AuthError invalid_argument naming the rule the password breaks (WEAK_PASSWORD; a
 * password too long, or one holding a control, invisible, unassigned, private-use or otherwise
 * disallowed character, is INVALID_FIELD). `login` is the account's (as spelt or as a request gives it), `field` the
 * request field the password came in.
 */
export function checkPassword(password: string, login: string, field = "password"): void {
  // Length in Unicode code points, so an emoji counts as one character.
  const length = [...password].length;
  if (length < minPasswordLength) throw invalidField(field, `password too short: at least ${minPasswordLength} characters required`, "WEAK_PASSWORD");
  if (length > maxPasswordLength) throw invalidField(field, `password too long: at most ${maxPasswordLength} characters allowed`);
  const form = comparedForm(password);
  if (form.length === 0) throw invalidField(field, "password must not be only white space, control or invisible characters", "WEAK_PASSWORD");
  if ([...form].length < minPasswordLength) {
    throw invalidField(
      field,
      `password too short: at least ${minPasswordLength} characters required, not counting white space at either end, repeated white space, control or invisible characters`,
      "WEAK_PASSWORD",
    );
  }
  if (commonPasswords().has(form)) throw invalidField(field, "password too common: it is on a list of frequently used passwords", "WEAK_PASSWORD");
  // The login itself, or an email's local part (a user name holding an @ is read alike).
  const key = loginKey(login);
  const at = key.lastIndexOf("@");
  if (form === key || (at >= 0 && form === key.slice(0, at))) throw invalidField(field, "password must not be the login or part of it", "WEAK_PASSWORD");
  // Last, so a password those rules refuse keeps its answer ("password1" and a NUL: too common).
  if (password.search(control) !== -1) throw invalidField(field, "password must not contain control characters");
  const refusal = newTextRefusal(preparePassword(password));
  if (refusal) throw invalidField(field, `password ${newTextRefusals[refusal]}`);
}
