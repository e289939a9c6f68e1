// Logins are text: an email (seeds 000, 002, 003) or a user name (seed 004). Every login a
// request carries is checked here before anything else looks at it, and has two forms:
//
// - its spelling: trimmed, Unicode NFC, emails lower-cased. An account keeps the spelling it was
//   created with; that is what it shows and what `users.login` stores.
// - its key: the spelling with default-ignorable code points removed, then NFKC and case folding
//   (Unicode's NFKC_Casefold, approximated with the String methods), then whitespace trimmed and
//   each run of it made one space. Logins are compared by key, so `ａda@example.com` (full-width
//   a) or `ADA` is the same login as `ada@example.com` or `ada`, and `ada \u200b` (a space kept
//   from trimming by a zero-width space behind it) or `ada  lovelace` (two spaces, which display
//   as one) is `ada` or `ada lovelace`: a look-alike of an existing login is a duplicate, not a
//   second account. Failed-login counters and remembered logins are kept per key too, so a
//   look-alike buys no extra guesses.
//
// A login holding a control character (NUL included), a bidirectional formatting character
// (U+202E and friends, which make a login display as another) or a lone surrogate (not text at
// all) is refused with INVALID_ARGUMENT naming the field, before any store call: no account can
// have one, and several databases cannot even store NUL.
//
// A new login (a sign-up: parseNewLogin) is also refused, INVALID_ARGUMENT naming the field, when
// it holds a default-ignorable code point (U+200B and the other zero-width characters, U+00AD,
// the variation selectors, U+3164 and the other Hangul fillers, the tag characters...), an
// unassigned one (noncharacters included) or a private-use one, as RFC 8265 (PRECIS) refuses
// them in a user name: the first display as nothing (a name of nothing but U+3164 would have an
// empty key), the second as anything a later Unicode version assigns them, the third as whatever
// a font makes of them. Two default-ignorables are taken where a script needs them, as RFC
// 8265 takes them (RFC 5892's CONTEXTJ rules, contextj.ts): U+200D ZERO WIDTH JOINER after a
// virama, U+200C ZERO WIDTH NON-JOINER there or between letters that would join across it
// (Persian writes words with it; after a letter that joins nothing that follows it, such as
// Arabic alef or dal, it changes nothing shown and is refused). A login with any of them still
// finds the account its key names (default-ignorables, those two included, are left out of the
// key, as NFKC_Casefold leaves them out: with or without a joiner is one login, as with or
// without U+200B), so an account created before keeps logging in, however it is typed.
//
// What else RFC 8264's derivation (section 8) disallows in both string classes is refused too,
// with one message: RFC 5892's Exceptions that are DISALLOWED (U+0640 ARABIC TATWEEL, which only
// stretches a joined letter, U+07FA NKO LAJANYALAN, alike for NKo, U+302E and U+302F Hangul tone
// marks, U+3031 to U+3035 vertical kana repeat marks, U+303B VERTICAL IDEOGRAPHIC ITERATION
// MARK), OldHangulJamo (Hangul_Syllable_Type L, V or T: conjoining jamo; NFC composes those
// that spell a modern syllable into it, and what is left, Old Korean or a lone jamo, shows as one
// block or as loose letters as the font has it), line and paragraph separators (Zl, Zp) and the format
// characters (Cf) that are not default-ignorable (U+0600 ARABIC NUMBER SIGN, U+06DD, U+FFF9 to
// U+FFFB interlinear annotation, the Egyptian hieroglyph format controls...), which change how
// text around them is laid out; and RFC 5892's CONTEXTO code points out of their context
// (contexto.ts: a middle dot only between two "l"...). The derivation's other DISALLOWED
// categories are those above (controls, default-ignorables and noncharacters, unassigned,
// private-use and surrogate code points); the rest of what IdentifierClass disallows (symbols,
// punctuation, spaces, compatibility forms) a user name may still hold. These rules are applied
// as RFC 8265's UsernameCaseMapped profile applies them: to the spelling with its full- and
// half-width forms mapped to their decompositions, lower-cased, NFC (so "COL·LEGI" is
// "col·legi", and U+FF65 HALFWIDTH KATAKANA MIDDLE DOT is U+30FB). A new password is refused
// the same code points, in its OpaqueString form (password-policy.ts).
//
// Last, a new login holding a right-to-left character (Bidi_Class R, AL or AN: Hebrew, Arabic,
// Syriac, Thaana, NKo... letters, Arabic-Indic digits) must follow RFC 5893's Bidi Rule, as
// UsernameCaseMapped's rule 6 asks (bidi-rule.ts), in the same form and in each of its parts
// between spaces, "@" and "." (RFC 8265's userparts, section 3.5; an email's local part and the
// labels of its domain, which RFC 5893 judges one by one): a part holding right-to-left text
// starts with a right-to-left letter, holds no left-to-right character, ends with a right-to-left
// letter or a digit (marks after it aside), and does not mix Arabic-Indic digits with European
// ones; any other part starts with a letter and ends with a letter or a digit. Otherwise the
// bidirectional algorithm shows it as another login ("abc" followed by a Hebrew letter, one ending
// in "!"). So "א ב" and "א@example.com" are taken, "abcא" and "א 123" are not. Passwords are no
// such text (OpaqueString has no direction rule), and a login that is not new is never judged by it.
import { bidiRuleBroken } from "./bidi-rule.js";
import { joinersInContext } from "./contextj.js";
import { othersInContext } from "./contexto.js";
import { invalidField, type AuthError } from "./errors.js";
import { beyondNormalLength } from "./normal-length.js";

export type LoginKind = "email" | "name";

export interface LoginName {
  /** As the account spells it: trimmed, NFC; emails lower-cased. */
  readonly spelling: string;
  /** What logins are compared by (NFKC_Casefold of the spelling, whitespace trimmed and collapsed). */
  readonly key: string;
}

/** Where a login came from, for the error that refuses it. */
export interface LoginSource {
  /** The request field, as the proto names it ("email", "user"; "authorization" for HTTP Basic). */
  field: string;
  /** How a message calls it; default: the field name. */
  label?: string;
}

const maxNameLength = 256;
/** RFC 5321's limit on a path, less its angle brackets: an email's longest, in UTF-16 code units. */
const maxEmailLength = 254;
// Deliberately simple: one @, no whitespace, a dot in the domain. RFC 5321 size limits.
const emailPattern = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/u;
// Cc (C0, DEL, C1), the bidirectional formatting characters (ALM, LRM, RLM, LRE..RLO, LRI..PDI)
// and lone surrogates.
const notText = /[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\p{Cs}]/u;
const ignorable = /\p{Default_Ignorable_Code_Point}/gu;
// What new text may not hold besides (newTextRefusal): default-ignorable code points (but the
// two joiners, which joinersInContext judges) and unassigned ones, noncharacters included;
// private-use ones.
const invisibleOrUnassigned = /(?![\u200c\u200d])[\p{Default_Ignorable_Code_Point}\p{Cn}]/u;
const privateUse = /\p{Co}/u;
// RFC 5892's DISALLOWED Exceptions; OldHangulJamo (HangulSyllableType.txt's L, V and T ranges,
// unchanged since Unicode 5.2); Zl, Zp; Cf but the default-ignorables (refused as invisible).
const disallowed = /[\u0640\u07fa\u302e\u302f\u3031-\u3035\u303b\u1100-\u11ff\ua960-\ua97c\ud7b0-\ud7c6\ud7cb-\ud7fb\p{Zl}\p{Zp}]|(?!\p{Default_Ignorable_Code_Point})\p{Cf}/u;
// Full- and half-width forms, which UsernameCaseMapped maps to their decompositions (NFKC of each):
// U+3000 IDEOGRAPHIC SPACE (<wide> U+0020) and the Halfwidth and Fullwidth Forms block.
const widthForms = /[\u3000\uff01-\uffee]/gu;

/** What newTextRefusal finds, as the message refusing it says it (after the field's name). */
export const newTextRefusals = {
  invisible: "must not contain invisible (zero-width, default-ignorable) characters or unassigned code points",
  privateUse: "must not contain private-use characters",
  disallowed:
    "must not contain characters that RFC 8265 disallows (tatweel, conjoining Hangul jamo, format characters, line separators, ...), nor a middle dot, keraia, geresh or Arabic-Indic digit out of its context",
} as const;

/** What refuses a new login that breaks RFC 5893's Bidi Rule (bidiRuleBroken), after the field's name. */
export const bidiRefusal =
  "must follow the Bidi Rule of RFC 5893 in each part (between spaces, @ and dots) when it holds right-to-left characters: a part holding them starts with a right-to-left letter, ends with one or a digit, and holds neither left-to-right characters nor both Arabic-Indic and European digits; any other part starts with a letter and ends with a letter or digit; no part holds other white space";

/**
 * What RFC 8265 refuses in new text besides control characters, in a user name (IdentifierClass)
 * and a password (FreeformClass) alike (RFC 8264 sections 7 and 8, categories of section 9): a
 * default-ignorable code point or a noncharacter (PrecisIgnorableProperties), ZWNJ and ZWJ aside
 * where RFC 5892's CONTEXTJ rules take them (JoinControl), or an unassigned one: "invisible"; a
 * private-use one: "privateUse"; a DISALLOWED Exception, an OldHangulJamo, a Zl, Zp or Cf one, or
 * a CONTEXTO one out of its context: "disallowed". Undefined when `text` holds none. `text` is
 * the form its profile checks (usernameForm; a password's OpaqueString form).
 */
export function newTextRefusal(text: string): keyof typeof newTextRefusals | undefined {
  if (invisibleOrUnassigned.test(text) || !joinersInContext(text)) return "invisible";
  if (privateUse.test(text)) return "privateUse";
  if (disallowed.test(text) || !othersInContext(text)) return "disallowed";
  return undefined;
}

/** A spelling as RFC 8265's UsernameCaseMapped checks it: width forms mapped, lower-cased, NFC. */
function usernameForm(spelling: string): string {
  return spelling.replace(widthForms, (c) => c.normalize("NFKC")).toLowerCase().normalize("NFC");
}

/**
 * The version of loginKey: raised whenever it gives some spelling another key than before. At the
 * first start of a version whose number the store has not recorded, every account whose stored
 * key differs from loginKey(its spelling) is given its current key (Users.backfillLoginKeys).
 * 1: NFKC and case folding; 2: whitespace trimmed and collapsed, U+1E9E folded to "ss".
 */
export const LOGIN_KEY_FUNCTION = 2;

/** The key logins are compared by: NFKC_Casefold of the spelling, whitespace trimmed and collapsed. */
export function loginKey(spelling: string): string {
  // Lower-, upper-, then lower-casing folds what lower-casing alone does not (ß -> ss, final
  // sigma), U+1E9E CAPITAL SHARP S included (upper-casing keeps it, lower-casing makes it
  // U+00DF); the second NFKC recomposes what case mapping may decompose. Whitespace is trimmed again
  // once the ignorables are out (the spelling's trim stops at a zero-width space) and NFKC has
  // made every space character U+0020.
  return spelling.replace(ignorable, "").normalize("NFKC").toLowerCase().toUpperCase().toLowerCase().normalize("NFKC").replace(/\s+/gu, " ").trim();
}

/** Throws INVALID_ARGUMENT naming the field when `raw` holds anything but text a login may hold. */
export function checkLoginText(raw: string, source: LoginSource): void {
  if (notText.test(raw)) {
    throw refused(source, "must not contain control characters or bidirectional formatting characters");
  }
}

/**
 * A login as a request gives it -> its spelling and key. Refuses (INVALID_ARGUMENT naming the
 * field) an empty login, one that is not text (checkLoginText), a malformed email and an
 * over-long user name. A login whose NFC would be over-long is refused so before it is
 * normalized (normal-length.ts: normalizing it would take time quadratic in its length).
 */
export function parseLogin(raw: string, kind: LoginKind, source: LoginSource = { field: defaultField(kind) }): LoginName {
  checkLoginText(raw, source);
  const spaced = raw.trim();
  if (beyondNormalLength(spaced, kind === "email" ? maxEmailLength : maxNameLength)) throw kind === "email" ? notAnEmail(source) : nameTooLong(source);
  const trimmed = spaced.normalize("NFC");
  if (kind === "email") {
    if (trimmed.length === 0) throw invalidField(source.field, "email is required", "MISSING_FIELDS");
    const email = trimmed.toLowerCase();
    const key = loginKey(email);
    // Its shape is also that of the form it is compared by: `ada＠example.com` (a full-width at
    // sign, as a keyboard in full-width mode types it) is the login `ada@example.com`, as
    // `ａda@example.com` is, on every API (a user name, which has no shape, always was).
    // The size limits hold for both: the key leaves out what a spelling may hold much of (U+200B).
    const address = emailPattern.test(email) ? email : key;
    const at = address.lastIndexOf("@");
    if (!emailPattern.test(address) || at > 64 || Math.max(email.length, address.length) > maxEmailLength) throw notAnEmail(source);
    return { spelling: email, key };
  }
  if (trimmed.length === 0) throw invalidField(source.field, "user name is required", "MISSING_FIELDS");
  if ([...trimmed].length > maxNameLength) throw nameTooLong(source);
  return { spelling: trimmed, key: loginKey(trimmed) };
}

const notAnEmail = (source: LoginSource) => invalidField(source.field, "email is not a valid email address");
const nameTooLong = (source: LoginSource) => invalidField(source.field, `user name too long: at most ${maxNameLength} characters`);

/**
 * The key a login that parseLogin refused is counted under (Users.authenticate): loginKey of it
 * trimmed, or, when it is longer than any account's login can be, its trimmed text as it is
 * (not normalized: normal-length.ts).
 */
export function refusedLoginKey(raw: string): string {
  const trimmed = raw.trim();
  return beyondNormalLength(trimmed, maxNameLength) ? trimmed : loginKey(trimmed);
}

/**
 * A login a sign-up gives -> its spelling and key: parseLogin, then an email whose key is not
 * shaped as one, or a spelling holding a
 * default-ignorable (a joiner where its script needs it aside), unassigned, private-use or
 * otherwise disallowed code point (newTextRefusal), or one holding right-to-left text with a part
 * (between spaces, "@" and ".") that breaks RFC 5893's Bidi Rule (bidiRuleBroken), is refused
 * (INVALID_ARGUMENT naming the field).
 */
export function parseNewLogin(raw: string, kind: LoginKind, source: LoginSource = { field: defaultField(kind) }): LoginName {
  const login = parseLogin(raw, kind, source);
  // A login is an email by the shape of its spelling or of the form it is compared by (an account
  // made before logs in by either); a new one has it in the form compared by too, so that no
  // account holds a login that, typed in that form (U+2024 ONE DOT LEADER as "."), is refused as
  // malformed. The size limits stay the spelling's: case folding may lengthen what it stores.
  if (kind === "email" && !emailPattern.test(login.key)) throw notAnEmail(source);
  const form = usernameForm(login.spelling);
  const refusal = newTextRefusal(form);
  if (refusal) throw refused(source, newTextRefusals[refusal]);
  if (bidiRuleBroken(form) !== undefined) throw refused(source, bidiRefusal);
  return login;
}

/** The request field a login of this kind comes in by default. */
export function defaultField(kind: LoginKind): string {
  return kind === "email" ? "email" : "user";
}

function refused(source: LoginSource, what: string): AuthError {
  return invalidField(source.field, `${source.label ?? source.field} ${what}`);
}
