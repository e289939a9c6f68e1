// src/openapi/schemas.ts: the JSON Schema of a message accepts exactly the proto3 JSON the
// transcoder writes (json_name keys, implicit-presence fields always there, 64-bit integers as
// strings, well-known types in their JSON forms, recursion), and its input variant what it reads.
import assert from "node:assert/strict";
import { create, toJson, type DescMessage } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { Color, SearchRequestSchema, type SearchRequest } from "../../gen/transcodetest/v1/library_pb.js";
import { SchemaSet, type Direction } from "../../src/openapi/schemas.js";

const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (a: Ajv2020) => void;

function validatorFor(message: DescMessage, dir: Direction) {
  const set = new SchemaSet(() => undefined);
  if (dir === "output") set.noteOutput(message);
  const root = set.message(message, dir);
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ $id: "doc", components: { schemas: set.components } });
  return { v: ajv.compile(JSON.parse(JSON.stringify(root).replaceAll('"#/', '"doc#/'))), set };
}

// What the transcoder writes: the default-value policy (src/transcode/response.ts).
const written = (m: SearchRequest) => toJson(SearchRequestSchema, m, { alwaysEmitImplicit: true }) as Record<string, unknown>;

describe("message schemas", () => {
  const full = create(SearchRequestSchema, {
    query: "q",
    pageSize: 3,
    tags: ["a", "b"],
    ids: [1n, 9007199254740993n],
    color: Color.RED,
    exact: true,
    filter: { name: "outer", minCount: 2, child: { name: "inner" } },
    after: timestampFromDate(new Date("2026-01-02T03:04:05Z")),
    within: { seconds: 1n, nanos: 500_000_000 },
    limit: 7,
    readMask: { paths: ["a", "b.c"] },
    score: Number.NaN,
    big: 18446744073709551615n,
    flag: false,
    blob: new Uint8Array([1, 2, 3]),
  });

  it("the output schema accepts what the transcoder writes, full or empty", () => {
    const { v } = validatorFor(SearchRequestSchema, "output");
    for (const json of [written(full), written(create(SearchRequestSchema))]) {
      assert.ok(v(json), JSON.stringify(v.errors));
    }
    assert.equal(written(full).big, "18446744073709551615");
  });

  it("the output schema refuses what the transcoder never writes", () => {
    const { v } = validatorFor(SearchRequestSchema, "output");
    const json = written(full);
    assert.equal(v({ ...json, ids: [1, 2] }), false, "64-bit integers are strings");
    assert.equal(v({ ...json, extra: 1 }), false, "no other keys");
    const { pageSize: _, ...missing } = json;
    assert.equal(v(missing), false, "implicit-presence fields are always written");
    assert.equal(v({ ...json, after: "yesterday" }), false, "a Timestamp is RFC 3339");
    assert.equal(v({ ...json, filter: { ...(json.filter as object), child: { name: 1 } } }), false, "recursion is followed");
  });

  it("the input schema leaves every field optional and takes 64-bit integers as numbers or strings", () => {
    const { v, set } = validatorFor(SearchRequestSchema, "input");
    assert.ok(v({}), JSON.stringify(v.errors));
    assert.ok(v({ ids: [1, "2"], big: 3, unknown: "ignored" }), JSON.stringify(v.errors));
    assert.equal(set.components["transcodetest.v1.SearchRequest"]!.required, undefined);
  });

  it("names the input variant apart when a message is also an answer", () => {
    const set = new SchemaSet(() => undefined);
    set.noteOutput(SearchRequestSchema);
    assert.deepEqual(set.message(SearchRequestSchema, "output"), { $ref: "#/components/schemas/transcodetest.v1.SearchRequest" });
    assert.deepEqual(set.message(SearchRequestSchema, "input"), { $ref: "#/components/schemas/transcodetest.v1.SearchRequest.Input" });
  });
});
