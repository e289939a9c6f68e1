// A number field (32- and 64-bit integers, float, double) may be given in JSON as a number or as
// a string holding one (the proto3 JSON mapping). protobuf-es reads such a string with Number()
// (32-bit integers, float, double) or BigInt() (64-bit integers), which take much more than a
// number's text: "0x10" (16), "0b11", "0o17", "+5", "010", ".5", and for BigInt " 5 " and hex
// as well. A client that wrote {"page_size": "0x10"} over Connect, gRPC or gRPC-Web in JSON got
// 16 events, where REST refuses page_size=0x10 (400), and the proto3 JSON mapping takes a
// number or a string holding a decimal one. findNonDecimalNumber finds such a string, for the
// router's JSON text decoder (server/json-text.ts), which refuses it naming the field. The text
// of a JSON number is taken (RFC 8259 6: "1e2" and "1.0" for an integer, which protobuf-es then
// checks is one, as it checks a number), and for float and double the proto3 JSON names of the
// special values ("NaN", "Infinity", "-Infinity").
import { ScalarType, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { findRefusedValue, holder, type JsonValueCheck, type RefusedJsonValue, type ValueType } from "./json-fields.js";

/** The text of a JSON number (RFC 8259 6). */
const jsonNumberText = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/** protobuf-es's name of each number type (its reflect check's words), by scalar type. */
const numberTypes = new Map<ScalarType, string>([
  [ScalarType.INT32, "number (int32)"],
  [ScalarType.SINT32, "number (int32)"],
  [ScalarType.SFIXED32, "number (int32)"],
  [ScalarType.UINT32, "number (uint32)"],
  [ScalarType.FIXED32, "number (uint32)"],
  [ScalarType.INT64, "bigint (int64)"],
  [ScalarType.SINT64, "bigint (int64)"],
  [ScalarType.SFIXED64, "bigint (int64)"],
  [ScalarType.UINT64, "bigint (uint64)"],
  [ScalarType.FIXED64, "bigint (uint64)"],
  [ScalarType.DOUBLE, "number (float64)"],
  [ScalarType.FLOAT, "number (float32)"],
]);

/** The wrapper types, whose JSON form is their value's. */
const wrappers = new Map<string, ScalarType>([
  ["google.protobuf.Int32Value", ScalarType.INT32],
  ["google.protobuf.UInt32Value", ScalarType.UINT32],
  ["google.protobuf.Int64Value", ScalarType.INT64],
  ["google.protobuf.UInt64Value", ScalarType.UINT64],
  ["google.protobuf.FloatValue", ScalarType.FLOAT],
  ["google.protobuf.DoubleValue", ScalarType.DOUBLE],
]);

/** Why a JSON value of type `t` is refused here, or undefined (numbers, and values of other types, are left to protobuf-es). */
function nonDecimal(t: ValueType, value: JsonValue): string | undefined {
  const scalar = typeof t === "object" ? wrappers.get(t.typeName) : t;
  const type = scalar === undefined ? undefined : numberTypes.get(scalar);
  if (type === undefined || typeof value !== "string" || jsonNumberText.test(value)) return undefined;
  if ((scalar === ScalarType.DOUBLE || scalar === ScalarType.FLOAT) && (value === "NaN" || value === "Infinity" || value === "-Infinity")) return undefined;
  // protobuf-es's own words for a string it cannot read as the type ("abc"), without the value.
  return `expected ${type}, got string`;
}

/** Whether a message type holds a number field (or a map with number keys) at any depth (computed once per type). */
export const hasNumberField = holder((t) => (typeof t === "object" ? wrappers.has(t.typeName) : numberTypes.has(t)));

const numberCheck: JsonValueCheck = { holds: hasNumberField, refuse: nonDecimal };

/**
 * The first number field of `json`, read as a `desc` message, given a string that is no JSON
 * number's text (nor a special value's name, for float and double): its field path in proto
 * names ("page_size", "filter.limits[1]") and why; undefined when there is none, or when `desc`
 * holds no number field (then nothing is walked). Keys that name no field, and values of the
 * wrong JSON type, are left to protobuf-es.
 */
export function findNonDecimalNumber(desc: DescMessage, json: JsonValue): RefusedJsonValue | undefined {
  return findRefusedValue(desc, json, numberCheck);
}
