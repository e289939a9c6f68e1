// repeatedKey (json-keys.ts) over generated JSON: text JSON.stringify wrote never repeats a key,
// and a key written a second time into any object, with any escaping, is found with the keys of
// the objects around it.
import { strict as assert } from "node:assert";
import fc from "fast-check";
import { repeatedKey } from "../../src/core/json-keys.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** `value` as JSON text, with `extra` written as a last member of the object at `path` (keys and array indexes). */
function withMember(value: Json, path: Array<string | number>, extra: string): string {
  if (path.length === 0) {
    const text = JSON.stringify(value);
    return `${text.slice(0, -1)}${text.length > 2 ? "," : ""}${extra}}`;
  }
  const [step, ...rest] = path;
  if (Array.isArray(value)) return `[${value.map((v, i) => (i === step ? withMember(v, rest, extra) : JSON.stringify(v))).join(",")}]`;
  const o = value as Record<string, Json>;
  return `{${Object.keys(o).map((k) => `${JSON.stringify(k)}:${k === step ? withMember(o[k]!, rest, extra) : JSON.stringify(o[k])}`).join(",")}}`;
}

/** Every object in `value` that has a key, with its path and the keys of the objects on the way. */
function objects(value: Json, path: Array<string | number> = [], keys: string[] = []): Array<{ path: Array<string | number>; keys: string[]; own: string[] }> {
  if (value === null || typeof value !== "object") return [];
  if (Array.isArray(value)) return value.flatMap((v, i) => objects(v, [...path, i], keys));
  const own = Object.keys(value);
  return [...(own.length > 0 ? [{ path, keys, own }] : []), ...own.flatMap((k) => objects(value[k]!, [...path, k], [...keys, k]))];
}

/** `key` as a JSON string, each character perhaps written as a \u escape. */
const escapedKey = (key: string, escapes: boolean[]) =>
  `"${[...key].map((ch, i) => (escapes[i % escapes.length] ? [...ch].map((u) => `\\u${u.charCodeAt(0).toString(16).padStart(4, "0")}`).join("") : JSON.stringify(ch).slice(1, -1))).join("")}"`;

describe("transcoder: repeatedKey (a JSON object that names a key twice)", () => {
  it("ends on text that is no JSON (an unterminated string, a trailing backslash): nothing repeated is found", () => {
    for (const text of ['{"a', '{"a":"b', '{"a\\', '{"a":1,"a', '["x\\"]']) assert.equal(repeatedKey(text), undefined, text);
  });
  it("finds none in JSON.stringify's text", () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => assert.equal(repeatedKey(JSON.stringify(v)), undefined)));
  });

  it("finds a key written again into any object, however escaped, with the keys around it", () => {
    const arb = fc
      .jsonValue()
      .map((v) => v as Json)
      .filter((v) => objects(v).length > 0)
      .chain((v) => fc.record({ v: fc.constant(v), at: fc.constantFrom(...objects(v)), pick: fc.nat(), escapes: fc.array(fc.boolean(), { minLength: 1 }) }));
    fc.assert(
      fc.property(arb, ({ v, at, pick, escapes }) => {
        const key = at.own[pick % at.own.length]!;
        const text = withMember(v, at.path, `${escapedKey(key, escapes)}:0`);
        JSON.parse(text);
        assert.deepEqual(repeatedKey(text), [...at.keys, key], text);
      }),
    );
  });

  it("looks neither at nor into an outer key that does not count", () => {
    assert.equal(repeatedKey('{"x":1,"x":{"a":1,"a":2},"y":[{"b":1,"b":1}]}', (k) => k === "z"), undefined);
    assert.deepEqual(repeatedKey('{"x":1,"x":2,"z":{"a":[{"b":1,"b":1}]}}', (k) => k === "z"), ["z", "a", "b"]);
  });
});
