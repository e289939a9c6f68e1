import { ScalarType, type DescEnum } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";

/**
 * Parses one textual argument (a path variable or a query value) into a scalar of the given
 * type, or returns an error string naming what was expected. 64-bit integers come back as
 * bigint; protobuf-es turns them into strings for `jstype = JS_STRING` fields.
 */
export function parseScalar(type: ScalarType, text: string): unknown | ParseFailure {
  switch (type) {
    case ScalarType.STRING:
      return text;
    case ScalarType.BOOL:
      return parseBool(text);
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return parseInt32(text, -0x80000000, 0x7fffffff, "int32");
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return parseInt32(text, 0, 0xffffffff, "uint32");
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return parseInt64(text, -(2n ** 63n), 2n ** 63n - 1n, "int64");
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return parseInt64(text, 0n, 2n ** 64n - 1n, "uint64");
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return parseFloat(text, type === ScalarType.FLOAT ? "float" : "double");
    case ScalarType.BYTES:
      return parseBytes(text);
  }
}

/** A failed parse: `expected` completes "not a valid <expected>". */
export class ParseFailure {
  constructor(readonly expected: string) {}
}

const intRe = /^-?(0|[1-9][0-9]*)$/;

function parseBool(text: string): boolean | ParseFailure {
  // Accepted forms: true/false in any case, and 1/0 (what HTML forms and curl users send).
  switch (text.toLowerCase()) {
    case "true":
    case "1":
      return true;
    case "false":
    case "0":
      return false;
  }
  return new ParseFailure("bool (true, false, 1 or 0)");
}

function parseInt32(text: string, min: number, max: number, name: string): number | ParseFailure {
  if (!intRe.test(text)) {
    return new ParseFailure(name);
  }
  const n = Number(text);
  return n >= min && n <= max ? n : new ParseFailure(name);
}

function parseInt64(text: string, min: bigint, max: bigint, name: string): bigint | ParseFailure {
  if (!intRe.test(text)) {
    return new ParseFailure(name);
  }
  const n = BigInt(text);
  return n >= min && n <= max ? n : new ParseFailure(name);
}

// The digits after a dot only after one: `\d+\.?\d*` read a run of digits that did not parse
// (`1111...1x`) at every split between its two runs, time quadratic in its length (16 Ki digits
// in a query: 0.5 s).
const floatRe = /^-?(\d+(?:\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

function parseFloat(text: string, name: string): number | ParseFailure {
  // The proto3 JSON spellings of the special values are accepted too.
  if (text === "NaN") return NaN;
  if (text === "Infinity") return Infinity;
  if (text === "-Infinity") return -Infinity;
  if (!floatRe.test(text)) {
    return new ParseFailure(name);
  }
  const n = Number(text);
  if (name === "float" && Number.isFinite(n) && Math.abs(n) > 3.4028234663852886e38) {
    return new ParseFailure(name);
  }
  return n;
}

function parseBytes(text: string): Uint8Array | ParseFailure {
  // Standard or URL-safe base64, padding optional, as in proto3 JSON.
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text)) {
    return new ParseFailure("base64 bytes value");
  }
  try {
    return base64Decode(text);
  } catch {
    return new ParseFailure("base64 bytes value");
  }
}

const enumNames = new WeakMap<DescEnum, Map<string, number>>();

/** An enum value by name (`COLOR_RED`) or by number (`1`). Unknown numbers pass for open enums. */
export function parseEnum(desc: DescEnum, text: string): number | ParseFailure {
  let names = enumNames.get(desc);
  if (!names) {
    names = new Map(desc.values.map((v) => [v.name, v.number]));
    enumNames.set(desc, names);
  }
  const byName = names.get(text);
  if (byName !== undefined) {
    return byName;
  }
  if (intRe.test(text)) {
    const n = Number(text);
    if (n >= -0x80000000 && n <= 0x7fffffff && (desc.open || desc.value[n] !== undefined)) {
      return n;
    }
  }
  return new ParseFailure(`${desc.typeName} value (a name or a number)`);
}
