// Where a new login may hold U+200C ZERO WIDTH NON-JOINER or U+200D ZERO WIDTH JOINER: RFC 5892
// Appendix A.1 and A.2 (CONTEXTJ), which RFC 8265's IdentifierClass applies to user names.
// Elsewhere they are invisible characters a new login may not hold (login-name.ts).
//
// - either, right after a virama (Canonical_Combining_Class 9): a Devanagari half form is
//   क + ् + ZWJ + ष, and ZWNJ there keeps the virama visible;
// - ZWNJ, between letters that join, combining marks between them skipped: Persian writes
//   می‌خواهم with one between ی and خ, which would otherwise join.
//
// JavaScript's regular expressions know neither Canonical_Combining_Class nor Joining_Type, so
// both come from small static tables:
// - the viramas are every code point UnicodeData.txt gives class 9 (Unicode 17.0, the version of
//   Node 20's ICU): a virama a later Unicode version adds is taken for no virama until it is
//   added here;
// - a joining letter (RFC 5892's Joining_Type L or D before, R or D after) is any letter of a
//   script whose letters join (those ArabicShaping.txt gives joining types: Arabic, Syriac, N'Ko,
//   Mongolian, Mandaic, Manichaean, Psalter Pahlavi, Hanifi Rohingya, Sogdian, Chorasmian,
//   Old Uyghur, Adlam, Phags-pa), and a transparent one (Joining_Type T) any nonspacing or
//   enclosing mark. So this takes a little more than the RFC does: a ZWNJ after a letter that
//   joins on one side only (Arabic alef, dal, reh, waw: R) or on none (hamza: U), where it
//   changes nothing shown. It never takes one where no letter of those scripts is on each side.

const ZWNJ = "\u200c";
const ZWJ = "\u200d";
const joiners = /[\u200c\u200d]/u;

/** Canonical_Combining_Class 9 (Virama), from UnicodeData.txt (Unicode 17.0). */
const viramas = new Set([
  0x094d, 0x09cd, 0x0a4d, 0x0acd, 0x0b4d, 0x0bcd, 0x0c4d, 0x0ccd, 0x0d3b, 0x0d3c, 0x0d4d, 0x0dca, 0x0e3a, 0x0eba, 0x0f84, 0x1039, 0x103a, 0x1714,
  0x1715, 0x1734, 0x17d2, 0x1a60, 0x1b44, 0x1baa, 0x1bab, 0x1bf2, 0x1bf3, 0x2d7f, 0xa806, 0xa82c, 0xa8c4, 0xa953, 0xa9c0, 0xaaf6, 0xabed, 0x10a3f,
  0x11046, 0x11070, 0x1107f, 0x110b9, 0x11133, 0x11134, 0x111c0, 0x11235, 0x112ea, 0x1134d, 0x113ce, 0x113cf, 0x113d0, 0x11442, 0x114c2, 0x115bf,
  0x1163f, 0x116b6, 0x1172b, 0x11839, 0x1193d, 0x1193e, 0x119e0, 0x11a34, 0x11a47, 0x11a99, 0x11c3f, 0x11d44, 0x11d45, 0x11d97, 0x11f41, 0x11f42,
  0x1612f,
]);

/** A letter of a script whose letters join (approximating Joining_Type L, D and R). */
const joiningLetter =
  /^(?=\p{L})[\p{Script=Arabic}\p{Script=Syriac}\p{Script=Nko}\p{Script=Mongolian}\p{Script=Mandaic}\p{Script=Manichaean}\p{Script=Psalter_Pahlavi}\p{Script=Hanifi_Rohingya}\p{Script=Sogdian}\p{Script=Chorasmian}\p{Script=Old_Uyghur}\p{Script=Adlam}\p{Script=Phags_Pa}]$/u;
/** Approximating Joining_Type T: nonspacing and enclosing marks. */
const transparent = /^[\p{Mn}\p{Me}]$/u;

/** True when every ZWNJ and ZWJ of `text` stands where RFC 5892's CONTEXTJ rules (as approximated above) take it. */
export function joinersInContext(text: string): boolean {
  if (!joiners.test(text)) return true;
  const chars = [...text];
  for (let i = 0; i < chars.length; i++) {
    if (chars[i] !== ZWNJ && chars[i] !== ZWJ) continue;
    if (i > 0 && viramas.has(chars[i - 1]!.codePointAt(0)!)) continue;
    if (chars[i] === ZWJ) return false;
    let before = i - 1;
    while (before >= 0 && transparent.test(chars[before]!)) before--;
    let after = i + 1;
    while (after < chars.length && transparent.test(chars[after]!)) after++;
    if (before < 0 || after >= chars.length || !joiningLetter.test(chars[before]!) || !joiningLetter.test(chars[after]!)) return false;
  }
  return true;
}
