// JSON.parse keeps the last of two equal keys of an object and says nothing: `{"pass":"a",
// "pass":"b"}` reads as `{"pass":"b"}`. A proxy or a filter in front that reads the first would
// see another request than the handler does (RFC 8259 4: the behaviour of software that receives
// such an object is unpredictable), so a request body that names a key twice is refused, and so
// is a JWT whose header or payload does (token-verifier.ts). The JSON text is walked once, after
// JSON.parse has accepted it.

interface Frame {
  /** An object's keys so far; undefined for an array. */
  keys: Set<string> | undefined;
  /** The key whose value is being read. */
  key: string | undefined;
  /** Inside the value of a top-level key that does not count: nothing is compared. */
  passed: boolean;
  /** The value being read is that of a top-level key that does not count. */
  passing: boolean;
}

/**
 * The first key that an object of `text` (valid JSON) names a second time, with the keys of the
 * objects it sits in, outermost first (`["item", "id"]`: `id` twice in the object under `item`;
 * arrays in between are passed over). Keys are compared as JSON.parse reads them (`"\u0069d"` is
 * `"id"`). A key of the outermost object for which `counts` is false (one the reader ignores) is
 * neither compared nor looked into. Undefined when every object's keys are distinct.
 */
export function repeatedKey(text: string, counts: (key: string) => boolean = () => true): string[] | undefined {
  const frames: Frame[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      let escaped = false;
      // Bounded by the text's end too: text that is no JSON (an unterminated string) ends the
      // walk rather than looping past it (charCodeAt there is NaN, never a quote).
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) {
        if (text.charCodeAt(i) === 0x5c /* \ */) {
          escaped = true;
          i++;
        }
      }
      if (i >= text.length) return undefined;
      if (!expectKey) continue;
      expectKey = false;
      const frame = frames[frames.length - 1]!;
      if (frame.passed) continue;
      const key = escaped ? (JSON.parse(text.slice(start, i + 1)) as string) : text.slice(start + 1, i);
      frame.passing = frames.length === 1 && !counts(key);
      if (frame.passing) continue;
      if (frame.keys!.has(key)) return [...frames.slice(0, -1).flatMap((f) => (f.keys ? [f.key!] : [])), key];
      frame.keys!.add(key);
      frame.key = key;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const parent = frames[frames.length - 1];
      const passed = parent !== undefined && (parent.passed || parent.passing);
      frames.push({ keys: c === 0x7b && !passed ? new Set() : undefined, key: undefined, passed, passing: false });
      expectKey = c === 0x7b && !passed;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      frames.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = frames[frames.length - 1]?.keys !== undefined;
    }
  }
  return undefined;
}
