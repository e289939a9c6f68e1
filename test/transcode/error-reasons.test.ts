/**
 * The transcoder's own errors, with `errorDomain` set, carry a google.rpc.ErrorInfo (their
 * reason, that domain) and, when they are about one field, a google.rpc.BadRequest naming it, in
 * Connect's JSON detail form (`{type, value, debug}`); without it, `details` stays empty
 * (conformance.test.ts).
 */
import { strict as assert } from "node:assert";
import { request } from "node:http";
import { jsonDetails, type DetailFacts } from "../support/error-details.js";
import { startLibraryServer, type LibraryServer } from "./support/library-server.js";

interface Case {
  name: string;
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  status: number;
  code: string;
  details: DetailFacts;
}

const domain = "library.example";
const info = (reason: string) => ({ reason, domain, metadata: {} });
const field = (reason: string, name: string, description: string): DetailFacts => ({ ...info(reason), fieldViolations: [{ field: name, description }] });

/** A JSON body POSTed to `path` whose value at `fieldPath` is refused: 400 INVALID_BODY_FIELD naming it. */
const refusedBodyField = (name: string, path: string, body: object, fieldPath: string, message: string): Case => ({
  name,
  method: "POST",
  path,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
  status: 400,
  code: "invalid_argument",
  details: field("INVALID_BODY_FIELD", fieldPath, message),
});

const cases: Case[] = [
  { name: "no route: ROUTE_NOT_FOUND", path: "/v1/nowhere", status: 404, code: "not_found", details: info("ROUTE_NOT_FOUND") },
  { name: "a method the path does not take: METHOD_NOT_ALLOWED", method: "PUT", path: "/v1/search", status: 405, code: "unimplemented", details: info("METHOD_NOT_ALLOWED") },
  {
    name: "a malformed escape in a path variable: MALFORMED_PATH naming it",
    path: "/v1/items/%zz",
    status: 400,
    code: "invalid_argument",
    details: field("MALFORMED_PATH", "id", 'malformed percent-encoding in path variable "id"'),
  },
  { name: "a malformed escape in a segment matched against a literal: MALFORMED_PATH", path: "/v1/users/%zz", status: 400, code: "invalid_argument", details: info("MALFORMED_PATH") },
  {
    name: "an unknown query parameter: UNKNOWN_QUERY_PARAMETER naming it",
    path: "/v1/search?colour=red",
    status: 400,
    code: "invalid_argument",
    details: field("UNKNOWN_QUERY_PARAMETER", "colour", 'unknown query parameter "colour"'),
  },
  {
    name: "a query value that is not valid: INVALID_QUERY_PARAMETER naming the field by its proto name",
    path: "/v1/search?pageSize=ten",
    status: 400,
    code: "invalid_argument",
    details: field("INVALID_QUERY_PARAMETER", "page_size", 'invalid query parameter "pageSize": not a valid int32'),
  },
  {
    name: "a singular parameter given twice: INVALID_QUERY_PARAMETER",
    path: "/v1/search?query=a&query=b",
    status: 400,
    code: "invalid_argument",
    details: field("INVALID_QUERY_PARAMETER", "query", 'query parameter "query" is given more than once'),
  },
  {
    name: "a malformed escape in a query value: INVALID_QUERY_PARAMETER",
    path: "/v1/search?query=%zz",
    status: 400,
    code: "invalid_argument",
    details: field("INVALID_QUERY_PARAMETER", "query", 'malformed percent-encoding in query parameter "query"'),
  },
  {
    name: "too many query parameters: TOO_MANY_QUERY_PARAMETERS",
    path: `/v1/search?${Array.from({ length: 101 }, (_, i) => `tags=${i}`).join("&")}`,
    status: 400,
    code: "invalid_argument",
    details: info("TOO_MANY_QUERY_PARAMETERS"),
  },
  {
    name: "a form field (loose arguments) that names no field: UNKNOWN_QUERY_PARAMETER calling it a form field",
    method: "POST",
    path: "/loose/user",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "user=a&colour=red",
    status: 400,
    code: "invalid_argument",
    details: field("UNKNOWN_QUERY_PARAMETER", "colour", 'unknown form field "colour"'),
  },
  {
    name: "a form field whose value is not valid: INVALID_QUERY_PARAMETER calling it a form field",
    method: "POST",
    path: "/loose/user",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "age=ten",
    status: 400,
    code: "invalid_argument",
    details: field("INVALID_QUERY_PARAMETER", "age", 'invalid form field "age": not a valid int32'),
  },
  {
    name: "a malformed escape in a form field: INVALID_QUERY_PARAMETER calling it a form field",
    method: "POST",
    path: "/loose/user",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "user=%zz",
    status: 400,
    code: "invalid_argument",
    details: field("INVALID_QUERY_PARAMETER", "user", 'malformed percent-encoding in form field "user"'),
  },
  {
    name: "a form field given twice: INVALID_QUERY_PARAMETER calling it a form field",
    method: "POST",
    path: "/loose/user",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "user=a&user=b",
    status: 400,
    code: "invalid_argument",
    details: field("INVALID_QUERY_PARAMETER", "user", 'form field "user" is given more than once'),
  },
  {
    name: "an argument given in the form body and in the query: INVALID_QUERY_PARAMETER saying so",
    method: "POST",
    path: "/loose/user?user=a",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "user=b",
    status: 400,
    code: "invalid_argument",
    details: field("INVALID_QUERY_PARAMETER", "user", '"user" is given both as a form field and as a query parameter'),
  },
  {
    name: 'a field of the request in the query of a body "*" route: INVALID_QUERY_PARAMETER naming it (it names a field, in the wrong place)',
    method: "POST",
    path: "/v1/items?requestId=r",
    headers: { "content-type": "application/json" },
    body: "{}",
    status: 400,
    code: "invalid_argument",
    details: field("INVALID_QUERY_PARAMETER", "requestId", 'invalid query parameter "requestId": every field comes from the JSON body'),
  },
  {
    name: "a body that is not JSON: MALFORMED_BODY",
    method: "POST",
    path: "/v1/items",
    headers: { "content-type": "application/json" },
    body: "{not json",
    status: 400,
    code: "invalid_argument",
    details: info("MALFORMED_BODY"),
  },
  {
    name: "a JSON field of the wrong type: INVALID_BODY_FIELD naming it by its proto name",
    method: "POST",
    path: "/v1/items",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ requestId: 7 }),
    status: 400,
    code: "invalid_argument",
    details: field("INVALID_BODY_FIELD", "request_id", 'invalid request body: field "requestId": expected string, got number'),
  },
  refusedBodyField(
    'a number field given a string that is no number\'s text ("0x10"): INVALID_BODY_FIELD naming its path, not read as 16',
    "/v1/items",
    { item: { book: { pages: "0x10" } } },
    "item.book.pages",
    'invalid request body: field "item": expected number (int32), got string',
  ),
  refusedBodyField(
    'a 64-bit integer given a string with spaces (" 16 "), which BigInt() reads: INVALID_BODY_FIELD naming it',
    "/v1/items",
    { item: { count: " 16 " } },
    "item.count",
    'invalid request body: field "item": expected bigint (int64), got string',
  ),
  refusedBodyField(
    'a body: "field" route: "+16" in the body field is INVALID_BODY_FIELD naming its path',
    "/v1/shelves/s1/books",
    { pages: "+16" },
    "book.pages",
    'invalid request body: field "book": expected number (int32), got string',
  ),
  refusedBodyField(
    "an enum field given a name the enum does not have: INVALID_BODY_FIELD naming its path, not dropped as an unknown key is",
    "/v1/items",
    { item: { color: "COLOR_BLUE" } },
    "item.color",
    'invalid request body: field "item": cannot decode enum transcodetest.v1.Color from JSON: unknown value name',
  ),
  refusedBodyField(
    'an enum field given a number as a string ("1"), which is no name of it: INVALID_BODY_FIELD naming its path',
    "/v1/items",
    { item: { color: "1" } },
    "item.color",
    'invalid request body: field "item": cannot decode enum transcodetest.v1.Color from JSON: unknown value name',
  ),
  {
    name: "a JSON field given twice under one name: INVALID_BODY_FIELD naming it (JSON.parse would keep the last)",
    method: "POST",
    path: "/v1/items",
    headers: { "content-type": "application/json" },
    body: '{"requestId":"a","requestId":"b"}',
    status: 400,
    code: "invalid_argument",
    details: field("INVALID_BODY_FIELD", "request_id", 'invalid request body: field "requestId" is given more than once'),
  },
  {
    name: "a JSON field given under its JSON and its proto name: INVALID_BODY_FIELD naming it",
    method: "POST",
    path: "/v1/items",
    headers: { "content-type": "application/json" },
    body: '{"requestId":"a","request_id":"b"}',
    status: 400,
    code: "invalid_argument",
    details: field("INVALID_BODY_FIELD", "request_id", 'invalid request body: field "request_id" is given more than once'),
  },
  {
    name: "a key given twice in an object inside a field: INVALID_BODY_FIELD naming the field, not the key",
    method: "POST",
    path: "/v1/items",
    headers: { "content-type": "application/json" },
    body: '{"item":{"id":"a","\\u0069d":"b"}}',
    status: 400,
    code: "invalid_argument",
    details: field("INVALID_BODY_FIELD", "item", 'invalid request body: field "item": an object in it names a key more than once'),
  },
  {
    name: "a body over the limit: REQUEST_TOO_LARGE",
    method: "POST",
    path: "/v1/items",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ requestId: "x".repeat(2000) }),
    status: 413,
    code: "resource_exhausted",
    details: info("REQUEST_TOO_LARGE"),
  },
  {
    name: "a content type the binding does not take: UNSUPPORTED_MEDIA_TYPE",
    method: "POST",
    path: "/v1/items",
    headers: { "content-type": "text/plain" },
    body: "hello",
    status: 415,
    code: "invalid_argument",
    details: info("UNSUPPORTED_MEDIA_TYPE"),
  },
  {
    name: "a preflight from an origin not allowed: ORIGIN_NOT_ALLOWED",
    method: "OPTIONS",
    path: "/v1/items",
    headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
    status: 403,
    code: "permission_denied",
    details: info("ORIGIN_NOT_ALLOWED"),
  },
];

function send(base: string, c: Case): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = { ...c.headers, ...(c.body !== undefined && { "content-length": String(Buffer.byteLength(c.body)) }) };
    const req = request(base + c.path, { method: c.method ?? "GET", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(c.body);
  });
}

describe("transcoder: reasons of its own errors (errorDomain)", () => {
  let server: LibraryServer;
  before(async () => {
    server = await startLibraryServer({ maxBodyBytes: 1024, errorDomain: domain, corsOrigins: ["https://app.example"] });
  });
  after(() => server.close());

  for (const c of cases) {
    it(c.name, async () => {
      const res = await send(server.url, c);
      assert.equal(res.status, c.status, res.body);
      const body = JSON.parse(res.body) as { code: string; message: string; details: unknown[] };
      assert.deepEqual(Object.keys(body), ["code", "message", "details"]);
      assert.equal(body.code, c.code);
      assert.deepEqual(jsonDetails(body.details), c.details);
      // The JSON `debug` says what the binary value says.
      const errorInfo = (body.details as Array<{ type: string; debug: unknown }>).find((d) => d.type === "google.rpc.ErrorInfo");
      assert.deepEqual(errorInfo?.debug, { reason: c.details.reason, domain, metadata: {} });
    });
  }
});
