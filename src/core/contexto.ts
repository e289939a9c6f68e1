// Where new text may hold the code points RFC 5892 makes CONTEXTO: its Appendix A.3 to A.9, which
// RFC 8264 applies to both PRECIS string classes (they are among RFC 5892's Exceptions, which
// come first in its derivation), so to a new user name and a new password alike (login-name.ts).
// Each is punctuation or a digit that belongs to one script's writing; anywhere else it is a
// look-alike of other punctuation (U+00B7 of U+2219, U+30FB of U+00B7) or of another digit:
//
// - U+00B7 MIDDLE DOT only between two "l" (Catalan col·lecció);
// - U+0375 GREEK LOWER NUMERAL SIGN (keraia) only before a Greek character;
// - U+05F3 HEBREW PUNCTUATION GERESH and U+05F4 GERSHAYIM only after a Hebrew character;
// - U+30FB KATAKANA MIDDLE DOT only in text holding a Hiragana, Katakana or Han character (its
//   own script is Common, so it does not count itself);
// - the Arabic-Indic digits (U+0660 to U+0669) and the extended ones (U+06F0 to U+06F9, Persian
//   and Urdu) not both in one text: ٣ and ۳ look alike.
//
// RFC 5892 writes its rules for a domain label; PRECIS applies them to the whole string, so an
// email login is judged as one text, its local part and domain together.

const contexto = /[\u00b7\u0375\u05f3\u05f4\u30fb\u0660-\u0669\u06f0-\u06f9]/u;
const arabicIndicDigit = /[\u0660-\u0669]/u;
const extendedArabicIndicDigit = /[\u06f0-\u06f9]/u;
const greek = /^\p{Script=Greek}$/u;
const hebrew = /^\p{Script=Hebrew}$/u;
const kanaOrHan = /[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u;

/** True when every CONTEXTO code point of `text` stands where RFC 5892's rules (Appendix A.3 to A.9) take it. */
export function othersInContext(text: string): boolean {
  if (!contexto.test(text)) return true;
  if (arabicIndicDigit.test(text) && extendedArabicIndicDigit.test(text)) return false;
  const chars = [...text];
  return chars.every((char, i) => {
    const before = chars[i - 1] ?? "";
    const after = chars[i + 1] ?? "";
    switch (char) {
      case "\u00b7":
        return before === "l" && after === "l";
      case "\u0375":
        return greek.test(after);
      case "\u05f3":
      case "\u05f4":
        return hebrew.test(before);
      case "\u30fb":
        return kanaOrHan.test(text);
      default:
        return true;
    }
  });
}
