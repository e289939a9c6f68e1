// Unicode normalization (String.prototype.normalize, ICU) takes time quadratic in the length of
// a run of combining marks it has to reorder (each is moved past those before it): 64 Ki of
// them, a 128 KiB request body, hold the event loop for seconds. Text whose use bounds its length
// (a login, a password) is measured before it is normalized. No code point's canonical
// decomposition is longer than 4 code points (U+1F82's), none is empty, and canonically
// equivalent texts have one decomposition: so text of more than 4 × n code points is not
// canonically equivalent to any text of n or fewer (its NFC and NFKC have more than n code
// points too), and need not be normalized to be told apart from them.

/** The longest canonical decomposition, in code points (UnicodeData.txt: U+1F82 and others). */
const longestDecomposition = 4;

/**
 * Whether `text` has more than 4 × `n` code points: then no text of `n` code points or fewer is
 * canonically equivalent to it, and its NFC (NFKC) has more than `n`. Linear in its length.
 */
export function beyondNormalLength(text: string, n: number): boolean {
  const most = longestDecomposition * n;
  if (text.length <= most) return false;
  if (text.length > 2 * most) return true;
  let count = 0;
  for (const _ of text) if (++count > most) return true;
  return false;
}
