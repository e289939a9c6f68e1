// fast-check generators of hostile input, derived from a request message's descriptor: for each
// field, values of the wrong JSON type, MongoDB operator objects, prototype-pollution keys, huge
// numbers, deep nesting, NUL bytes, lone surrogates and very long strings, a field named twice,
// a byte order mark; and bodies that are not JSON at all (truncated, invalid UTF-8). Each
// generated body says whether it MUST be refused (`mustReject`): a well-typed body with odd
// strings may legitimately be accepted.
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import fc from "fast-check";

export interface HostileBody {
  kind: string;
  bytes: Buffer;
  contentType: string;
  mustReject: boolean;
}

export const operatorObjects: unknown[] = [
  { $gt: "" },
  { $ne: null },
  { $regex: ".*" },
  { $where: "sleep(1000) || true" },
  { $in: ["a", "b"] },
  { $exists: true },
  { $expr: { $eq: [1, 1] } },
];

export const pollutionKeys = ["__proto__", "constructor", "prototype"];

/** Strings that are valid JSON strings but hostile as values. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "",
    "\u0000",
    "a\u0000b",
    "\u0000".repeat(64),
    "\ud800", // lone high surrogate (JSON.stringify escapes it; UTF-8 cannot encode it)
    "\udfff",
    "\ufeff",
    "\u202e",
    "../../etc/passwd",
    "%00",
    "%ff",
    "${jndi:ldap://x}",
    "'; DROP TABLE users; --",
    '{"$gt":""}',
    "$gt",
    "$where",
    "__proto__",
    "constructor",
    "a".repeat(10_000),
    "é".repeat(20_000),
    "🦄".repeat(5_000),
  ),
  fc.string({ unit: "binary", maxLength: 64 }),
  fc.string({ unit: "grapheme", maxLength: 64 }),
);

const hugeNumbers = ["1e999", "-1e999", "123456789012345678901234567890", "-9223372036854775809", "18446744073709551616", "4294967296", "-1", "1.5", "0.0000001", "-0", "1e-400"];

/** JSON text of a value the field cannot take. */
function wrongValueText(f: DescField): fc.Arbitrary<string> {
  const objects = fc.constantFrom(...operatorObjects.map((o) => JSON.stringify(o)), "{}", "[]", "[[[]]]", '{"__proto__":{"polluted":1}}', "null");
  if (f.fieldKind === "scalar") {
    switch (f.scalar) {
      case ScalarType.STRING:
      case ScalarType.BYTES:
        return fc.oneof(objects.filter((t) => t !== "null"), fc.constantFrom("123", "true", "false", "1e999", '["a"]'));
      case ScalarType.BOOL:
        return fc.oneof(objects.filter((t) => t !== "null"), fc.constantFrom('"yes"', "1", '"1"', '""'));
      default:
        return fc.oneof(objects.filter((t) => t !== "null"), fc.constantFrom('"abc"', "true", '""', ...hugeNumbers.filter((n) => !/^-?\d+$/.test(n) || n.length > 15 || n.startsWith("-")).map((n) => n)));
    }
  }
  if (f.fieldKind === "message") {
    // Timestamps and other well-known types: wrong JSON shapes.
    return fc.oneof(objects.filter((t) => t !== "null" && t !== "{}"), fc.constantFrom('"not a time"', "12", '"9999999-01-01T00:00:00Z"', '"2020-13-45T99:99:99Z"', "true"));
  }
  if (f.fieldKind === "list") return fc.constantFrom('"x"', "{}", "1", ...operatorObjects.map((o) => JSON.stringify(o)));
  return objects;
}

function fieldName(f: DescField): fc.Arbitrary<string> {
  return f.jsonName === f.name ? fc.constant(f.name) : fc.constantFrom(f.name, f.jsonName);
}

function json(kind: string, text: string, mustReject: boolean): HostileBody {
  return { kind, bytes: Buffer.from(text, "utf8"), contentType: "application/json", mustReject };
}

/** A nested JSON text `depth` levels deep. */
function nested(depth: number, style: "array" | "object"): string {
  return style === "array" ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
}

/** Hostile bodies for a request message. */
export function hostileBody(desc: DescMessage): fc.Arbitrary<HostileBody> {
  const fields = desc.fields;
  const scalarStringFields = fields.filter((f) => f.fieldKind === "scalar" && f.scalar === ScalarType.STRING);

  const malformed = fc.oneof(
    fc.constantFrom("{", "[", '{"a":}', "{'a':1}", '{"a":1,}', "NaN", "undefined", '{"a":"\\x"}', '{"a":"\\ud800"', "\u0000{}", "{}\u0000", "{} {}", '"\\u0000'),
    // (not empty: an empty body is no body, which is fine)
    fc.string({ minLength: 1, maxLength: 40 }).filter((s) => {
      try {
        JSON.parse(s);
        return false;
      } catch {
        return true;
      }
    }),
  ).map((t) => json("malformed-json", t, true));

  const notObject = fc.constantFrom("[]", "[{}]", '"str"', "42", "true", "null", "1e999").map((t) => json("not-an-object", t, t !== "null" || true));

  const invalidUtf8 = fc
    .tuple(
      fc.constantFrom(
        [0xff],
        [0xfe, 0xff],
        [0xc0, 0xaf], // overlong "/"
        [0xed, 0xa0, 0x80], // UTF-8-encoded surrogate
        [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
        [0x80],
        [0xe2, 0x82],
      ),
      fields.length > 0 ? fc.constantFrom(...fields.map((f) => f.jsonName)) : fc.constant("x"),
    )
    .map(([bad, key]) => ({
      kind: "invalid-utf8",
      bytes: Buffer.concat([Buffer.from(`{"${key}":"a`), Buffer.from(bad), Buffer.from('"}')]),
      contentType: "application/json",
      mustReject: true,
    }));

  const deep = fc
    .tuple(fc.integer({ min: 200, max: 12_000 }), fc.constantFrom<"array" | "object">("array", "object"), fields.length > 0 ? fc.constantFrom(...fields.map((f) => f.jsonName)) : fc.constant(""))
    .map(([depth, style, key]) =>
      key === "" || style === "object"
        ? // under an unknown key a deep value is ignored, at the top level an array is not an object
          json("deep-nesting", style === "array" ? nested(depth, style) : `{"zz":${nested(depth, style)}}`, style === "array")
        : json("deep-nesting", `{"${key}":${nested(depth, style)}}`, true),
    );

  const wrongType =
    fields.length === 0
      ? notObject
      : fc
          .constantFrom(...fields)
          .chain((f) => fc.tuple(fieldName(f), wrongValueText(f)))
          .map(([k, v]) => json("wrong-type", `{"${k}":${v}}`, true));

  const operators =
    scalarStringFields.length === 0
      ? fc.constantFrom(...operatorObjects).map((o) => json("operator-unknown-key", JSON.stringify({ $where: o, filter: o }), false))
      : fc
          .tuple(fc.constantFrom(...scalarStringFields), fc.constantFrom(...operatorObjects))
          .map(([f, o]) => json("operator-object", JSON.stringify({ [f.jsonName]: o }), true));

  const pollution = fc
    .tuple(fc.constantFrom(...pollutionKeys), fc.constantFrom<unknown>({ polluted: "yes" }, { prototype: { polluted: "yes" } }, "x", null), fc.boolean())
    .map(([k, v, nestedUnderField]) => {
      const inner = `{"${k}":${JSON.stringify(v)}}`;
      const f = fields[0];
      return json("prototype-pollution", nestedUnderField && f ? `{"${f.jsonName}":${inner}}` : inner, nestedUnderField && f !== undefined);
    });

  const oddStrings =
    scalarStringFields.length === 0
      ? fc.constant(json("empty-object", "{}", false))
      : fc
          .record(Object.fromEntries(scalarStringFields.map((f) => [f.jsonName, hostileString])), { requiredKeys: [] })
          .map((o) => json("hostile-strings", JSON.stringify(o), false));

  const otherTypes = fc.constantFrom("text/plain", "application/xml", "multipart/form-data; boundary=x", "application/json; charset=latin1").map((t) => ({
    kind: "content-type",
    bytes: Buffer.from("{}"),
    contentType: t,
    // a charset parameter does not change the media type: accepted
    mustReject: !t.startsWith("application/json"),
  }));

  // A UTF-8 byte order mark before the JSON (RFC 8259 8.1 lets a parser ignore it): read as
  // the JSON after it.
  const bom = oddStrings.map((b) => ({ ...b, kind: "bom", bytes: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b.bytes]) }));

  // A field named twice, as written, under its proto and JSON names, or with its name escaped:
  // JSON.parse would take the last, a reader in front may take the first.
  const duplicateKey =
    scalarStringFields.length === 0
      ? bom
      : fc
          .tuple(fc.constantFrom(...scalarStringFields), fc.constantFrom<"same" | "names" | "escaped">("same", "names", "escaped"))
          .filter(([f, how]) => how !== "names" || f.name !== f.jsonName)
          .map(([f, how]) => {
            const second = how === "same" ? f.jsonName : how === "names" ? f.name : [...f.jsonName].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join("");
            return json("duplicate-key", `{"${f.jsonName}":"a","${second}":"b"}`, true);
          });

  const tooLarge = fc.integer({ min: 70_000, max: 200_000 }).map((n) => json("too-large", JSON.stringify({ [fields[0]?.jsonName ?? "x"]: "a".repeat(n) }), true));

  return fc.oneof(malformed, notObject, invalidUtf8, deep, wrongType, operators, pollution, { arbitrary: oddStrings, weight: 4 }, otherTypes, tooLarge, bom, duplicateKey);
}

/** Hostile text for a path segment (already percent-encoded where needed). */
export const hostileSegment: fc.Arbitrary<{ text: string; mustReject: boolean }> = fc.oneof(
  { arbitrary: fc.constant({ text: "x", mustReject: false }), weight: 3 },
  fc.constantFrom("%", "%zz", "%ff", "%c0%af", "%ed%a0%80").map((text) => ({ text, mustReject: true })),
  fc.constantFrom("%00", "..", "%2e%2e", "__proto__", "constructor", "%7B%22%24gt%22%3A%22%22%7D", "%24ne", "a".repeat(4000), "%F0%9F%A6%84").map((text) => ({ text, mustReject: false })),
  hostileString.filter((s) => s.length < 200).map((s) => ({ text: encodeURIComponent(s.replace(/[\ud800-\udfff]/g, "x")), mustReject: false })),
);

export interface HostileQuery {
  text: string;
  mustReject: boolean;
}

/** A hostile query string for a request message. */
export function hostileQuery(desc: DescMessage): fc.Arbitrary<HostileQuery> {
  const names = desc.fields.map((f) => f.jsonName);
  const unknown = fc.constantFrom("__proto__", "constructor", "prototype", "__proto__.polluted", "constructor.prototype.polluted", "$gt", "a[$gt]", "%00", "zz").map((k) => ({ text: `${k}=1`, mustReject: true }));
  const badEscape = fc.constantFrom("%", "%zz", "%ff", "%c0%af").map((e) => ({ text: `${names[0] ?? "x"}=${e}`, mustReject: true }));
  const operatorish = names.length === 0 ? unknown : fc.tuple(fc.constantFrom(...names), fc.constantFrom("[$gt]", "[$ne]", ".$gt", "[__proto__]")).map(([n, s]) => ({ text: `${encodeURIComponent(n + s)}=`, mustReject: true }));
  const values =
    names.length === 0
      ? unknown
      : fc.tuple(fc.constantFrom(...names), hostileString.filter((s) => s.length < 3000)).map(([n, v]) => ({ text: `${n}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, "x"))}`, mustReject: false }));
  const repeated = names.length === 0 ? unknown : fc.constantFrom(...names).map((n) => ({ text: `${n}=a&${n}=b`, mustReject: true }));
  return fc.oneof({ arbitrary: fc.constant({ text: "", mustReject: false }), weight: 6 }, unknown, badEscape, operatorish, values, repeated);
}
