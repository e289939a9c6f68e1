// JSON.parse keeps the last of two equal members of an object and says nothing:
// `{"kid":"a","kid":"b"}` reads as `{"kid":"b"}`. A proxy or another verifier in front that reads
// the first would see another token than this verifier does (RFC 7515 5.2 lets a parser refuse
// such a header or payload; Tessera does). The JSON text is walked once, after JSON.parse has
// accepted it.
//
// A copy of Tessera's own src/core/json-keys.ts (repeatedKey), less its option to pass over some
// top-level members (REST bodies): this package is published on its own and cannot import from
// the server's sources. Keep the two in step.

interface Frame {
  /** An object's members so far; undefined for an array. */
  names: Set<string> | undefined;
  /** The member whose value is being read. */
  name: string | undefined;
}

/**
 * The first member name that an object of `text` (valid JSON) gives a second time, with the
 * names of the objects it sits in, outermost first (`["note", "a"]`: `a` twice in the object
 * under `note`; arrays in between are passed over). Names are compared as JSON.parse reads them
 * (`"\u0061"` is `"a"`). Undefined when every object's names are distinct.
 */
export function repeatedMember(text: string): string[] | undefined {
  const frames: Frame[] = [];
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      let escaped = false;
      for (i++; text.charCodeAt(i) !== 0x22; i++) {
        if (text.charCodeAt(i) === 0x5c /* \ */) {
          escaped = true;
          i++;
        }
      }
      if (!expectName) continue;
      expectName = false;
      const frame = frames[frames.length - 1]!;
      const name = escaped ? (JSON.parse(text.slice(start, i + 1)) as string) : text.slice(start + 1, i);
      if (frame.names!.has(name)) return [...frames.slice(0, -1).flatMap((f) => (f.names ? [f.name!] : [])), name];
      frame.names!.add(name);
      frame.name = name;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      frames.push({ names: c === 0x7b ? new Set() : undefined, name: undefined });
      expectName = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      frames.pop();
      expectName = false;
    } else if (c === 0x2c /* , */) {
      expectName = frames[frames.length - 1]?.names !== undefined;
    }
  }
  return undefined;
}
