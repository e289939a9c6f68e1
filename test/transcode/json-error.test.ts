// protobuf-es's errors for a JSON value it cannot read, without the value (json-error.ts): each
// case is protobuf-es's real error for a value of the wrong type or out of range, in every kind
// of field a request message can have; the message kept names the field and the JSON type, and
// quotes nothing the request held.
import { strict as assert } from "node:assert";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { ListValueSchema, StructSchema } from "@bufbuild/protobuf/wkt";
import { SearchRequestSchema } from "../../gen/transcodetest/v1/library_pb.js";
import { unquotedJsonError } from "../../src/transcode/json-error.js";

const secret = "hunter2";
const pin = 12345678901;
const field = (f: string) => `cannot decode field transcodetest.v1.SearchRequest.${f} from JSON: `;

function errorOf(json: JsonValue, schema = SearchRequestSchema): string {
  try {
    fromJson(schema as typeof SearchRequestSchema, json);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error(`${JSON.stringify(json)} was read`);
}

describe("JSON decode errors without the value", () => {
  const cases: Array<[JsonValue, string]> = [
    [{ query: pin }, `${field("query")}expected string, got number`],
    [{ query: true }, `${field("query")}expected string, got boolean`],
    [{ query: [secret] }, `${field("query")}expected string, got array`],
    [{ page_size: secret }, `${field("page_size")}expected number (int32), got string`],
    [{ page_size: 2 ** 40 }, `${field("page_size")}expected number (int32), got a value out of its range`],
    [{ page_size: 1.5 }, `${field("page_size")}expected number (int32), got number`],
    [{ big: `${secret} x` }, `${field("big")}expected bigint (uint64), got a value out of its range`],
    [{ big: "-" + String(pin) }, `${field("big")}expected bigint (uint64), got a value out of its range`],
    [{ ids: [1, secret] }, `${field("ids")}list item #2: expected bigint (int64), got a value out of its range`],
    [{ ids: secret }, `${field("ids")}expected Array, got string`],
    [{ tags: [secret, pin] }, `${field("tags")}list item #2: expected string, got number`],
    [{ exact: secret }, `${field("exact")}expected boolean, got string`],
    [{ exact: pin }, `${field("exact")}expected boolean, got number`],
    [{ score: secret }, `${field("score")}expected number (float64), got string`],
    [{ color: secret }, "cannot decode enum transcodetest.v1.Color from JSON: unknown value name"],
    [{ color: 1.5 }, "cannot decode enum transcodetest.v1.Color from JSON: expected a value name or an integer, got number"],
    [{ color: pin }, `${field("color")}expected enum transcodetest.v1.Color, got a value out of its range`],
    [{ filter: secret }, "cannot decode message transcodetest.v1.Filter from JSON: expected object, got string"],
    [{ filter: { name: pin } }, "cannot decode field transcodetest.v1.Filter.name from JSON: expected string, got number"],
    [{ after: pin }, "cannot decode message google.protobuf.Timestamp from JSON: expected an RFC 3339 string, got number"],
    [{ after: secret }, "cannot decode message google.protobuf.Timestamp from JSON: invalid RFC 3339 string"],
    [{ within: secret }, "cannot decode message google.protobuf.Duration from JSON: invalid duration string"],
    [{ within: pin }, "cannot decode message google.protobuf.Duration from JSON: expected a duration string, got number"],
    [{ limit: secret }, "cannot decode field google.protobuf.Int32Value.value from JSON: expected number (int32), got string"],
    [{ read_mask: pin }, "cannot decode message google.protobuf.FieldMask from JSON: expected a string of field paths, got number"],
    [{ blob: `${secret}!` }, `${field("blob")}invalid base64 string`],
    [{ flag: secret }, "cannot decode field google.protobuf.BoolValue.value from JSON: expected boolean, got string"],
    [secret, "cannot decode message transcodetest.v1.SearchRequest from JSON: expected object, got string"],
    [pin, "cannot decode message transcodetest.v1.SearchRequest from JSON: expected object, got number"],
  ];
  for (const [json, expected] of cases) {
    it(`${JSON.stringify(json)}: "${expected}"`, () => {
      const original = errorOf(json);
      const message = unquotedJsonError(original);
      assert.equal(message, expected, original);
      assert.ok(!message.includes(secret) && !message.includes(String(pin)), message);
      // Correcting it again changes nothing (an error may pass two corrections).
      assert.equal(unquotedJsonError(message), message);
    });
  }

  it("a Struct given a value that is no object: its JSON type", () => {
    const original = errorOf(pin, StructSchema as never);
    assert.equal(unquotedJsonError(original), "cannot decode message google.protobuf.Struct from JSON expected object, got number");
  });

  it("a Struct, a ListValue and a FieldMask given a value of the wrong JSON type say what they expect", () => {
    assert.equal(unquotedJsonError(errorOf(secret, StructSchema as never)), "cannot decode message google.protobuf.Struct from JSON expected object, got string");
    assert.equal(unquotedJsonError(errorOf([secret], StructSchema as never)), "cannot decode message google.protobuf.Struct from JSON expected object, got array");
    assert.equal(unquotedJsonError(errorOf({ v: secret }, ListValueSchema as never)), "cannot decode message google.protobuf.ListValue from JSON expected array, got object");
    assert.equal(unquotedJsonError(errorOf({ read_mask: pin })), "cannot decode message google.protobuf.FieldMask from JSON: expected a string of field paths, got number");
    for (const m of ["cannot decode message google.protobuf.Struct from JSON expected object, got string", "cannot decode message google.protobuf.ListValue from JSON expected array, got object"]) {
      assert.equal(unquotedJsonError(m), m);
    }
  });

  it("a value that is valid JSON holding the word JSON is not called \"not valid JSON\"", () => {
    assert.equal(unquotedJsonError(errorOf("JSON")), "cannot decode message transcodetest.v1.SearchRequest from JSON: expected object, got string");
    assert.equal(unquotedJsonError(errorOf({ within: "not JSON" })), "cannot decode message google.protobuf.Duration from JSON: invalid duration string");
    assert.equal(unquotedJsonError(errorOf({ color: "JSON" })), "cannot decode enum transcodetest.v1.Color from JSON: unknown value name");
    assert.equal(unquotedJsonError(errorOf("JSON", StructSchema as never)), "cannot decode message google.protobuf.Struct from JSON expected object, got string");
  });

  it("a map entry is not named (its key is data the client sent)", () => {
    const message = `cannot decode field pkg.M.labels from JSON: map entry "${secret}": expected string, got ${pin}`;
    assert.equal(unquotedJsonError(message), "cannot decode field pkg.M.labels from JSON: invalid map entry");
    assert.equal(unquotedJsonError(`cannot decode field pkg.M.labels from JSON: duplicate map key "${secret}"`), "cannot decode field pkg.M.labels from JSON: invalid map entry");
  });

  it("V8's JSON.parse messages, which quote the text, become \"not valid JSON\"", () => {
    for (const v8 of [`Unexpected token 'h', "{"password":hunter2}" is not valid JSON`, `"hunter2" is not valid JSON`, "Unexpected end of JSON input"]) {
      assert.equal(unquotedJsonError(`cannot decode message pkg.M from JSON: ${v8}`), "cannot decode message pkg.M from JSON: not valid JSON");
    }
  });

  it("a reason it does not know is replaced, not passed on; a message not protobuf-es's is left alone", () => {
    assert.equal(unquotedJsonError(`cannot decode field pkg.M.f from JSON: some new wording ${secret}`), "cannot decode field pkg.M.f from JSON: invalid value");
    assert.equal(unquotedJsonError("email is not a valid email address"), "email is not a valid email address");
  });
});
