/**
 * The transcoder's conformance table: each case is one HTTP request to a real server (a Connect
 * router plus the transcoder on node:http) and either the exact request message the handler
 * received, or the exact HTTP answer, or both.
 */
import { strict as assert } from "node:assert";
import { request } from "node:http";
import type { JsonValue } from "@bufbuild/protobuf";
import { startLibraryServer, type LibraryServer } from "./support/library-server.js";

interface Case {
  name: string;
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** The handler's input: RPC name and request message (proto3 JSON, defaults omitted). */
  input?: { rpc: string; message: JsonValue; header?: Record<string, string> };
  /** No RPC must be called (the transcoder answers itself). */
  noCall?: true;
  status: number;
  /** Exact JSON body. */
  json?: JsonValue;
  /** Exact text body. */
  text?: string;
  /** For error answers: the JSON body's code, and a fragment of its message. */
  error?: { code: string; message?: string };
  /** Response headers: a value, or null for "absent". */
  responseHeaders?: Record<string, string | null>;
}

const json = { "content-type": "application/json" };

/** The Content-Length of the transcoder's error body (what a HEAD's answer stands for). */
const errorLength = (code: string, message: string): string => String(Buffer.byteLength(JSON.stringify({ code, message, details: [] })));

const boundaryLength = "the multipart/form-data boundary parameter must be 1 to 70 characters (RFC 2046 5.1.1)";

const cases: Case[] = [
  // --- path templates ---
  {
    name: "nested multi-segment match",
    path: "/v1/shelves/s1/books/b1",
    input: { rpc: "GetBook", message: { name: "shelves/s1/books/b1" } },
    status: 200,
  },
  {
    name: "extra segment is 404",
    path: "/v1/shelves/s1/books/b1/extra",
    noCall: true,
    status: 404,
    error: { code: "not_found", message: "no route for GET /v1/shelves/*/books/*/extra" },
  },
  {
    name: "%2F is kept in a ** variable",
    path: "/v1/files/a%2Fb/c%20d.txt",
    input: { rpc: "GetFile", message: { path: "a%2Fb/c d.txt" } },
    status: 200,
  },
  {
    name: "single-segment variable is fully decoded",
    path: "/v1/items/a%2Fb%20c%3Ad",
    input: { rpc: "GetItem", message: { id: "a/b c:d" } },
    status: 200,
  },
  {
    name: "malformed escape is 400",
    path: "/v1/items/a%zz",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: 'malformed percent-encoding in path variable "id"' },
  },
  {
    name: "malformed escape where a literal or a variable may go is 400, the segment not quoted",
    path: "/v1/users/SECRET%zz",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: "malformed percent-encoding in the path /v1/users/*" },
  },
  {
    name: "malformed escape where the path leaves the routes is 400 quoting that segment, as a 404 does",
    path: "/v1/ite%zz/SECRET",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: "malformed percent-encoding in the path /v1/ite%zz/*" },
  },
  {
    name: "{x=**} catch-all",
    path: "/v1/files/a/b/c.txt",
    input: { rpc: "GetFile", message: { path: "a/b/c.txt" } },
    status: 200,
    text: "contents of a/b/c.txt",
    responseHeaders: { "content-type": "text/plain; charset=utf-8" },
  },
  {
    name: "HttpBody upload with a verb after **",
    method: "POST",
    path: "/v1/files/dir/photo.png:upload",
    headers: { "content-type": "image/png" },
    body: new Uint8Array([0x89, 0x50, 0x4e, 0x47]),
    input: { rpc: "UploadFile", message: { path: "dir/photo.png", file: { contentType: "image/png", data: "iVBORw==" } } },
    status: 200,
    json: { path: "dir/photo.png", size: 4 },
  },
  {
    name: "unknown verb is 404",
    method: "POST",
    path: "/v1/shelves/s1:burn",
    body: "{}",
    headers: json,
    noCall: true,
    status: 404,
  },
  {
    name: "known verb routes",
    method: "POST",
    path: "/v1/shelves/s1:archive",
    input: { rpc: "ArchiveShelf", message: { shelf: "s1" } },
    status: 200,
    json: {},
  },
  {
    name: "foo:bar is a plain value where no :bar verb is registered",
    path: "/v1/items/foo:bar",
    input: { rpc: "GetItem", message: { id: "foo:bar" } },
    status: 200,
  },
  {
    name: "a registered verb on a GET route without verbs stays part of the value",
    path: "/v1/files/x.txt:upload",
    input: { rpc: "GetFile", message: { path: "x.txt:upload" } },
    status: 200,
  },
  {
    name: "literal beats variable (literal declared first)",
    path: "/v1/users/me",
    input: { rpc: "GetMe", message: {} },
    status: 200,
  },
  {
    name: "variable still matches other values (literal declared first)",
    path: "/v1/users/42",
    input: { rpc: "GetUser", message: { id: "42" } },
    status: 200,
  },
  {
    name: "literal beats variable (literal declared last)",
    path: "/v1/groups/default",
    input: { rpc: "GetDefaultGroup", message: {} },
    status: 200,
  },
  {
    name: "variable still matches other values (literal declared last)",
    path: "/v1/groups/7",
    input: { rpc: "GetGroup", message: { id: "7" } },
    status: 200,
  },
  {
    name: "* beats ** for one segment",
    path: "/v1/tree/leaf",
    input: { rpc: "GetTreeNode", message: { node: "leaf" } },
    status: 200,
  },
  {
    name: "** takes several segments",
    path: "/v1/tree/a/b",
    input: { rpc: "GetTree", message: { rest: "a/b" } },
    status: 200,
  },
  {
    name: "trailing slash is ignored (variable route)",
    path: "/v1/items/abc/",
    input: { rpc: "GetItem", message: { id: "abc" } },
    status: 200,
  },
  {
    name: "trailing slash is ignored (literal route)",
    path: "/v1/users/me/",
    input: { rpc: "GetMe", message: {} },
    status: 200,
  },
  {
    name: "an empty segment never matches a variable",
    path: "/v1/items//",
    noCall: true,
    status: 404,
  },
  {
    name: "additional binding",
    path: "/v1/legacy/items/9",
    input: { rpc: "GetItem", message: { id: "9" } },
    status: 200,
  },
  {
    name: "no route is 404",
    path: "/nowhere",
    noCall: true,
    status: 404,
    error: { code: "not_found" },
  },
  {
    name: "405 with Allow when only the method is wrong",
    method: "PUT",
    path: "/v1/items/abc",
    body: "{}",
    headers: json,
    noCall: true,
    status: 405,
    error: { code: "unimplemented" },
    responseHeaders: { allow: "DELETE, GET, HEAD, PATCH" },
  },
  {
    name: "HEAD runs the GET route (declared NO_SIDE_EFFECTS) and answers its status and headers without a body",
    method: "HEAD",
    path: "/v1/items/abc",
    input: { rpc: "GetItem", message: { id: "abc" } },
    status: 200,
    responseHeaders: { "content-type": "application/json" },
    text: "",
  },
  {
    name: "HEAD to a GET route with side effects is 405 with Allow (no HEAD), the RPC not called",
    method: "HEAD",
    path: "/v1/search?q=x",
    noCall: true,
    status: 405,
    responseHeaders: { allow: "GET", "content-type": "application/json" },
    text: "",
  },
  {
    name: "HEAD goes where GET goes: a side-effect-free variable route does not take the HEAD of a literal route with effects",
    method: "HEAD",
    path: "/v1/groups/default",
    noCall: true,
    status: 405,
    responseHeaders: { allow: "GET" },
    text: "",
  },
  {
    name: "405 of a GET route with side effects: Allow without HEAD",
    method: "POST",
    path: "/v1/search",
    noCall: true,
    status: 405,
    error: { code: "unimplemented", message: "POST is not allowed on /v1/search" },
    responseHeaders: { allow: "GET" },
  },
  // The method is checked before the path is decoded: a HEAD a route does not answer, or a
  // method no route there takes, is 405 whatever its segments hold.
  {
    name: "HEAD to a GET route with side effects is 405 with Allow even when a segment does not decode",
    method: "HEAD",
    path: "/v1/found/%zz",
    noCall: true,
    status: 405,
    responseHeaders: { allow: "GET", "content-type": "application/json", "content-length": errorLength("unimplemented", "HEAD is not allowed on /v1/found/*") },
    text: "",
  },
  {
    name: "HEAD is 405 with Allow where the undecodable segment may be a literal or a variable, no route there answering HEAD",
    method: "HEAD",
    path: "/v1/users/SECRET%zz",
    noCall: true,
    status: 405,
    responseHeaders: { allow: "GET", "content-length": errorLength("unimplemented", "HEAD is not allowed on /v1/users/*") },
    text: "",
  },
  {
    name: "a method no route takes is 405 with Allow even when a segment does not decode",
    method: "POST",
    path: "/v1/found/%zz",
    noCall: true,
    status: 405,
    error: { code: "unimplemented", message: "POST is not allowed on /v1/found/*" },
    responseHeaders: { allow: "GET" },
  },
  {
    name: "a method no route takes is 405 where the undecodable segment may be a literal or a variable",
    method: "DELETE",
    path: "/v1/users/SECRET%zz",
    noCall: true,
    status: 405,
    error: { code: "unimplemented", message: "DELETE is not allowed on /v1/users/*" },
    responseHeaders: { allow: "GET" },
  },
  {
    name: "HEAD to a route without side effects and an undecodable variable answers its GET's 400, without a body",
    method: "HEAD",
    path: "/v1/items/a%zz",
    noCall: true,
    status: 400,
    responseHeaders: { "content-type": "application/json", "content-length": errorLength("invalid_argument", 'malformed percent-encoding in path variable "id"') },
    text: "",
  },
  {
    name: "GET where the undecodable segment may be a literal (with side effects) or a variable (without): 400 quoting the path",
    path: "/v1/groups/SECRET%zz",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: "malformed percent-encoding in the path /v1/groups/*" },
  },
  {
    name: "HEAD there answers its GET's 400, without a body (the variable route answers HEAD)",
    method: "HEAD",
    path: "/v1/groups/SECRET%zz",
    noCall: true,
    status: 400,
    responseHeaders: { "content-type": "application/json", "content-length": errorLength("invalid_argument", "malformed percent-encoding in the path /v1/groups/*") },
    text: "",
  },
  {
    name: "405 there lists HEAD, which the variable route answers",
    method: "POST",
    path: "/v1/groups/SECRET%zz",
    noCall: true,
    status: 405,
    error: { code: "unimplemented", message: "POST is not allowed on /v1/groups/*" },
    responseHeaders: { allow: "GET, HEAD" },
  },
  {
    name: "no route, an undecodable segment: still 400 quoting the path (no method check to make)",
    method: "HEAD",
    path: "/v1/ite%zz/SECRET",
    noCall: true,
    status: 400,
    responseHeaders: { "content-length": errorLength("invalid_argument", "malformed percent-encoding in the path /v1/ite%zz/*") },
    text: "",
  },

  // --- request mapping ---
  {
    name: "body field plus query parameters",
    method: "POST",
    path: "/v1/shelves/s1/books?request_id=r-1",
    headers: json,
    body: JSON.stringify({ title: "Dune", pages: 412 }),
    input: { rpc: "CreateBook", message: { shelf: "s1", book: { title: "Dune", pages: 412 }, requestId: "r-1" } },
    status: 200,
  },
  {
    name: "empty body with a body rule",
    method: "POST",
    path: "/v1/shelves/s1/books",
    input: { rpc: "CreateBook", message: { shelf: "s1" } },
    status: 200,
  },
  {
    name: 'body "*" fills every field; proto and JSON names; unknown keys ignored',
    method: "POST",
    path: "/v1/items",
    headers: json,
    body: JSON.stringify({ item: { display_name: "Lamp", count: "3", labels: ["x"] }, requestId: "r-2", unknownKey: 1 }),
    input: { rpc: "CreateItem", message: { item: { displayName: "Lamp", count: "3", labels: ["x"] }, requestId: "r-2" } },
    status: 200,
  },
  // JSON body values protobuf-es would misread are refused (error-reasons.test.ts); these are taken.
  ...[
    ["a number, or a string holding a JSON number's text", { count: "-16", book: { pages: "1.6e1" } }, { count: "-16", book: { pages: 16 } }],
    ["an enum by name", { color: "COLOR_GREEN" }, { color: "COLOR_GREEN" }],
    ["an enum by a number the open enum does not name, as in the query", { color: 99 }, { color: 99 }],
  ].map(([what, sent, got]): Case => ({
    name: `JSON body: ${what as string} is taken`,
    method: "POST",
    path: "/v1/items",
    headers: json,
    body: JSON.stringify({ item: sent }),
    input: { rpc: "CreateItem", message: { item: got as JsonValue } },
    status: 200,
  })),
  {
    name: 'a field in the query with body "*" is refused, said to come from the body',
    method: "POST",
    path: "/v1/items?request_id=x",
    headers: json,
    body: "{}",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: 'invalid query parameter "request_id": every field comes from the JSON body' },
  },
  {
    name: 'a parameter naming no field with body "*" is unknown',
    method: "POST",
    path: "/v1/items?colour=x",
    headers: json,
    body: "{}",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: 'unknown query parameter "colour"' },
  },
  {
    name: "path variables win over the body",
    method: "PATCH",
    path: "/v1/items/from-path",
    headers: json,
    body: JSON.stringify({ item: { id: "from-body", displayName: "kept" }, updateMask: "displayName" }),
    input: { rpc: "UpdateItem", message: { item: { id: "from-path", displayName: "kept" }, updateMask: "displayName" } },
    status: 200,
  },
  {
    name: 'a path variable\'s field in the query of a body "*" route is said to come from the path',
    method: "PATCH",
    path: "/v1/items/from-path?item.id=x",
    headers: json,
    body: "{}",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: 'invalid query parameter "item.id": "item.id" comes from the path' },
  },
  {
    name: "invalid JSON body is 400",
    method: "POST",
    path: "/v1/items",
    headers: json,
    body: "{not json",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: "not valid JSON" },
  },
  {
    name: "wrong JSON type in the body is 400",
    method: "POST",
    path: "/v1/items",
    headers: json,
    body: JSON.stringify({ item: { count: "many" } }),
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: "invalid request body" },
  },
  {
    name: "nested query fields (proto and JSON names)",
    path: "/v1/search?filter.name=n&filter.child.minCount=3&filter.child.child.name=deep",
    input: { rpc: "Search", message: { filter: { name: "n", child: { minCount: 3, child: { name: "deep" } } } } },
    status: 200,
  },
  {
    name: "repeated query parameters",
    path: "/v1/search?tags=a&tags=b+c&ids=1&ids=18446744073",
    input: { rpc: "Search", message: { tags: ["a", "b c"], ids: ["1", "18446744073"] } },
    status: 200,
  },
  {
    name: "singular field given twice is 400",
    path: "/v1/search?query=a&query=b",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: 'query parameter "query" is given more than once' },
  },
  {
    name: "singular field given twice under its two names is 400",
    path: "/v1/search?page_size=1&pageSize=2",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: "more than once" },
  },
  {
    name: "enum by name",
    path: "/v1/search?color=COLOR_GREEN",
    input: { rpc: "Search", message: { color: "COLOR_GREEN" } },
    status: 200,
  },
  {
    name: "enum by number",
    path: "/v1/search?color=1",
    input: { rpc: "Search", message: { color: "COLOR_RED" } },
    status: 200,
  },
  {
    name: "bad enum is 400",
    path: "/v1/search?color=PURPLE",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: 'invalid query parameter "color"' },
  },
  {
    name: "bool forms: true, 1",
    path: "/v1/search?exact=true&flag=1",
    input: { rpc: "Search", message: { exact: true, flag: true } },
    status: 200,
  },
  {
    name: "bool forms: FALSE, 0",
    path: "/v1/search?exact=FALSE&flag=0",
    input: { rpc: "Search", message: { flag: false } },
    status: 200,
  },
  {
    name: "bad bool is 400",
    path: "/v1/search?exact=yes",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: 'invalid query parameter "exact"' },
  },
  {
    name: "Timestamp, Duration, wrapper and FieldMask in the query",
    path: "/v1/search?after=2024-05-01T10:00:00Z&within=1.5s&limit=7&read_mask=displayName,book.title",
    input: {
      rpc: "Search",
      message: { after: "2024-05-01T10:00:00Z", within: "1.500s", limit: 7, readMask: "displayName,book.title" },
    },
    status: 200,
  },
  {
    name: "bad Timestamp is 400",
    path: "/v1/search?after=yesterday",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: 'invalid query parameter "after"' },
  },
  {
    name: "double, uint64 and base64 bytes in the query",
    path: "/v1/search?score=-1.5e3&big=18446744073709551615&blob=aGk_",
    input: { rpc: "Search", message: { score: -1500, big: "18446744073709551615", blob: "aGk/" } },
    status: 200,
  },
  {
    name: "jQuery's cache-buster `_` is ignored on GET",
    path: "/v1/search?query=a&_=1764720000000",
    input: { rpc: "Search", message: { query: "a" } },
    status: 200,
  },
  {
    name: "jQuery's cache-buster `_` is ignored on HEAD",
    method: "HEAD",
    path: "/v1/items/abc?_=1764720000000",
    input: { rpc: "GetItem", message: { id: "abc" } },
    status: 200,
    text: "",
  },
  {
    name: "`_` on a POST is an unknown query parameter",
    method: "POST",
    path: "/v1/shelves/s1/books?_=1764720000000",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: 'unknown query parameter "_"' },
  },
  {
    name: "unknown query parameter is 400",
    path: "/v1/search?colour=1",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: 'unknown query parameter "colour"' },
  },
  {
    name: "message-typed query parameter is 400",
    path: "/v1/search?filter=x",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: 'invalid query parameter "filter"' },
  },
  {
    name: "invalid number is 400",
    path: "/v1/search?page_size=ten",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: 'invalid query parameter "page_size": not a valid int32' },
  },
  {
    name: "out-of-range number is 400",
    path: "/v1/search?page_size=2147483648",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: 'invalid query parameter "page_size"' },
  },
  {
    name: "malformed escape in the query is 400",
    path: "/v1/search?query=%E0%A4%A",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: 'query parameter "query"' },
  },
  {
    name: "a query parameter for a path-bound field is 400",
    path: "/v1/items/a?id=b",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: "comes from the path" },
  },
  {
    name: "wrong content type is 415",
    method: "POST",
    path: "/v1/items",
    headers: { "content-type": "text/plain" },
    body: "hello",
    noCall: true,
    status: 415,
    error: { code: "invalid_argument", message: "unsupported content type" },
  },
  {
    name: "compressed request bodies are 415",
    method: "POST",
    path: "/v1/items",
    headers: { ...json, "content-encoding": "gzip" },
    body: "{}",
    noCall: true,
    status: 415,
    error: { code: "invalid_argument", message: 'unsupported content encoding "gzip"' },
    // RFC 9110 15.5.16: the content codings that would have been accepted.
    responseHeaders: { "accept-encoding": "identity" },
  },
  {
    name: "a charset parameter does not change how a JSON body is read (RFC 8259: it is UTF-8)",
    method: "POST",
    path: "/v1/items",
    headers: { "content-type": "application/json; charset=ISO-8859-1" },
    body: JSON.stringify({ requestId: "x" }),
    input: { rpc: "CreateItem", message: { requestId: "x" } },
    status: 200,
  },
  {
    name: "a JSON body in the UTF-16 its charset declares is 415 naming the charset, not 'not valid JSON'",
    method: "POST",
    path: "/v1/items",
    headers: { "content-type": "application/json; charset=utf-16" },
    body: Buffer.from("\ufeff" + JSON.stringify({ requestId: "x" }), "utf16le"),
    noCall: true,
    status: 415,
    error: { code: "invalid_argument", message: 'unsupported charset "utf-16" (content type "application/json; charset=utf-16"): a JSON body is read as UTF-8' },
  },
  {
    name: "a JSON body in UTF-16 without its BOM, charset declared, is 415 naming the charset",
    method: "POST",
    path: "/v1/items",
    headers: { "content-type": 'application/json; charset="UTF-16LE"' },
    body: Buffer.from(JSON.stringify({ requestId: "x" }), "utf16le"),
    noCall: true,
    status: 415,
    error: { code: "invalid_argument", message: 'unsupported charset "UTF-16LE" (content type "application/json; charset=\\"UTF-16LE\\""): a JSON body is read as UTF-8' },
  },
  {
    name: "a Latin-1 JSON body that is no UTF-8, charset declared, is 415 naming the charset",
    method: "POST",
    path: "/v1/items",
    headers: { "content-type": "application/json; charset=iso-8859-1" },
    body: Buffer.from('{"requestId":"caf\u00e9"}', "latin1"),
    noCall: true,
    status: 415,
    error: { code: "invalid_argument", message: 'unsupported charset "iso-8859-1" (content type "application/json; charset=iso-8859-1"): a JSON body is read as UTF-8' },
  },
  {
    name: "a UTF-8 body that is no JSON is 400 whatever its charset parameter says",
    method: "POST",
    path: "/v1/items",
    headers: { "content-type": "application/json; charset=iso-8859-1" },
    body: "{not json",
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: "request body is not valid JSON" },
  },
  {
    name: "a JSON body that is no UTF-8, no charset declared, is 400",
    method: "POST",
    path: "/v1/items",
    headers: json,
    body: Buffer.from('{"requestId":"caf\u00e9"}', "latin1"),
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: "request body is not valid UTF-8" },
  },
  {
    name: "form bodies are 415 unless the service opts in",
    method: "POST",
    path: "/v1/items",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "request_id=x",
    noCall: true,
    status: 415,
  },
  {
    name: "body over the limit is 413",
    method: "POST",
    path: "/v1/items",
    headers: json,
    body: JSON.stringify({ requestId: "x".repeat(2048) }),
    noCall: true,
    status: 413,
    error: { code: "resource_exhausted" },
  },

  // --- loose arguments (seed 004 style), under a base path ---
  {
    name: "loose: query arguments on GET",
    path: "/loose/token?user=ann&pass=pw",
    input: { rpc: "Login", message: { user: "ann", pass: "pw" } },
    status: 200,
    text: "token-for-ann",
    responseHeaders: { "content-type": "text/plain" },
  },
  {
    name: "loose: form body on GET",
    path: "/loose/token",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "user=bob&pass=p%26w",
    input: { rpc: "Login", message: { user: "bob", pass: "p&w" } },
    status: 200,
  },
  {
    name: "loose: JSON body on GET, the query adds the fields it does not give",
    path: "/loose/token?pass=q",
    headers: json,
    body: JSON.stringify({ user: "cy" }),
    input: { rpc: "Login", message: { user: "cy", pass: "q" } },
    status: 200,
  },
  {
    name: "loose: the same argument in a JSON body and the query is 400, neither taken over the other",
    path: "/loose/token?pass=q",
    headers: json,
    body: JSON.stringify({ user: "cy", pass: "b" }),
    noCall: true,
    status: 400,
    error: { code: "invalid_argument", message: '"pass" is given both as a JSON body field and as a query parameter' },
  },
  {
    name: "loose: a JSON body field that is null gives no value: the query's is taken",
    path: "/loose/token?pass=q",
    headers: json,
    body: JSON.stringify({ user: "cy", pass: null }),
    input: { rpc: "Login", message: { user: "cy", pass: "q" } },
    status: 200,
  },
  {
    name: "loose: form body and query on POST body *",
    method: "POST",
    path: "/loose/user?age=30",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "user=dee&pass=secret",
    input: { rpc: "SignUp", message: { user: "dee", pass: "secret", age: 30 } },
    status: 200,
  },
  {
    name: "loose: a Latin-1 form body that is no UTF-8, charset declared, is 415 naming the charset",
    path: "/loose/token",
    headers: { "content-type": "application/x-www-form-urlencoded; charset=windows-1252" },
    body: Buffer.from("user=b\u00f6b&pass=pw", "latin1"),
    noCall: true,
    status: 415,
    error: { code: "invalid_argument", message: 'unsupported charset "windows-1252" (content type "application/x-www-form-urlencoded; charset=windows-1252"): a form body is read as UTF-8' },
  },
  {
    name: "loose: a multipart field in a Content-Transfer-Encoding (base64) is 415 naming it, not read as its encoded text",
    path: "/loose/token",
    headers: { "content-type": "multipart/form-data; boundary=x" },
    body: '--x\r\nContent-Disposition: form-data; name="user"\r\nContent-Transfer-Encoding: base64\r\n\r\nYWRh\r\n--x--\r\n',
    noCall: true,
    status: 415,
    error: { code: "invalid_argument", message: 'form field "user" is in the Content-Transfer-Encoding "base64": a field is read as sent (RFC 7578 4.7)' },
  },
  {
    name: "loose: a multipart field in a charset other than UTF-8 is 415 naming it",
    path: "/loose/token",
    headers: { "content-type": "multipart/form-data; boundary=x" },
    body: Buffer.concat([
      Buffer.from('--x\r\nContent-Disposition: form-data; name="user"\r\nContent-Type: text/plain; charset=utf-16le\r\n\r\n'),
      Buffer.from("ada", "utf16le"),
      Buffer.from("\r\n--x--\r\n"),
    ]),
    noCall: true,
    status: 415,
    error: { code: "invalid_argument", message: 'form field "user" is in the charset "utf-16le": a field is read as UTF-8' },
  },
  {
    name: "loose: a multipart field that says it is UTF-8 (or 8bit) is read",
    path: "/loose/token",
    headers: { "content-type": "multipart/form-data; boundary=x" },
    body: '--x\r\nContent-Disposition: form-data; name="user"\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nb\u00f6b\r\n--x\r\nContent-Disposition: form-data; name="pass"\r\n\r\npw\r\n--x--\r\n',
    input: { rpc: "Login", message: { user: "b\u00f6b", pass: "pw" } },
    status: 200,
  },
  // multipart/form-data framing that a reader in front could take otherwise: 400 naming it.
  ...(
    [
      ["a boundary over 70 characters", `boundary="${"b".repeat(71)}"`, "b".repeat(71), "", boundaryLength],
      ["an empty boundary", 'boundary=""', "", "", boundaryLength],
      ["two boundary parameters", "boundary=x; boundary=y", "x", "", "multipart/form-data with 2 boundary parameters: it must have one"],
      [
        "a part with two Content-Disposition headers",
        "boundary=x",
        "x",
        'Content-Disposition: form-data; name="pass"\r\n',
        "a part of the multipart/form-data body has 2 Content-Disposition headers: it must have one",
      ],
    ] as const
  ).map(
    ([what, parameters, boundary, extraHeader, message]): Case => ({
      name: `loose: multipart/form-data with ${what} is 400 naming it`,
      path: "/loose/token",
      headers: { "content-type": `multipart/form-data; ${parameters}` },
      body: `--${boundary}\r\nContent-Disposition: form-data; name="user"\r\n${extraHeader}\r\nada\r\n--${boundary}--\r\n`,
      noCall: true,
      status: 400,
      error: { code: "invalid_argument", message },
    }),
  ),
  {
    name: "loose: the same argument in form and query is 400",
    method: "POST",
    path: "/loose/user?user=a",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "user=b",
    noCall: true,
    status: 400,
  },
  {
    name: "base path: the route is not mounted at /",
    path: "/token?user=x",
    noCall: true,
    status: 404,
  },

  // --- response mapping ---
  {
    name: "JSON response: implicit fields always written, optional and message fields omitted when unset",
    path: "/v1/items/p",
    status: 200,
    json: { id: "p", displayName: "", count: "0", labels: [], color: "COLOR_UNSPECIFIED" },
    responseHeaders: { "content-type": "application/json" },
  },
  {
    name: "response_body picks a repeated field",
    path: "/v1/tags",
    input: { rpc: "ListTags", message: {} },
    status: 200,
    json: ["a", "b"],
  },
  {
    name: "HttpBody response is written raw",
    path: "/v1/files/readme",
    status: 200,
    text: "contents of readme",
    responseHeaders: { "content-type": "text/plain; charset=utf-8" },
  },
  {
    name: "HttpBody response without a content_type gets the method's declared one",
    path: "/v1/files/untyped.md",
    status: 200,
    text: "contents of untyped.md",
    responseHeaders: { "content-type": "text/markdown" },
  },
  {
    name: "Empty response is {}",
    method: "DELETE",
    path: "/v1/items/gone",
    input: { rpc: "DeleteItem", message: { id: "gone" } },
    status: 200,
    json: {},
  },
  {
    name: "headers in and out; a handler's header does not choose the status",
    method: "POST",
    path: "/v1/items",
    headers: { ...json, "x-trace": "t-1" },
    body: JSON.stringify({ item: { displayName: "Chair" } }),
    input: { rpc: "CreateItem", message: { item: { displayName: "Chair" } }, header: { "x-trace": "t-1" } },
    status: 200,
    json: { id: "new", displayName: "Chair", count: "0", labels: [], color: "COLOR_UNSPECIFIED" },
    responseHeaders: { "x-served-by": "library", "x-http-code": "299" },
  },
  {
    name: "declared success status 201",
    method: "POST",
    path: "/v1/registrations",
    headers: json,
    body: JSON.stringify({ displayName: "Desk" }),
    input: { rpc: "RegisterItem", message: { displayName: "Desk" } },
    status: 201,
    json: { id: "registered", displayName: "Desk", count: "0", labels: [], color: "COLOR_UNSPECIFIED" },
  },
  {
    name: "declared success status 204 answers no body",
    method: "DELETE",
    path: "/v1/purged/p-1",
    input: { rpc: "PurgeItem", message: { id: "p-1" } },
    status: 204,
    text: "",
    responseHeaders: { "content-type": null, "content-length": null },
  },
  {
    name: "declared unset-body status: the response_body field when set",
    path: "/v1/found/found",
    input: { rpc: "FindItem", message: { query: "found" } },
    status: 200,
    json: { id: "f-1", displayName: "Found", count: "0", labels: [], color: "COLOR_UNSPECIFIED" },
  },
  {
    name: "declared unset-body status 204: no body when the response_body field is unset",
    path: "/v1/found/nothing",
    input: { rpc: "FindItem", message: { query: "nothing" } },
    status: 204,
    text: "",
    responseHeaders: { "content-type": null },
  },
  {
    name: "401 gets the handler's WWW-Authenticate when its error sets one",
    path: "/v1/errors/unauthenticated_basic",
    status: 401,
    json: { code: "unauthenticated", message: "who are you", details: [] },
    responseHeaders: { "www-authenticate": 'Basic realm="test"' },
  },
  {
    name: "error metadata becomes response headers (Retry-After)",
    path: "/v1/errors/resource_exhausted",
    status: 429,
    json: { code: "resource_exhausted", message: "failed with resource_exhausted", details: [] },
    responseHeaders: { "retry-after": "30" },
  },
];

// All 16 error codes, by the table in ARCHITECTURE.md.
const errorStatus: Record<string, number> = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
};
for (const [code, status] of Object.entries(errorStatus)) {
  cases.push({
    name: `error ${code} is ${status}`,
    path: `/v1/errors/${code}`,
    input: { rpc: "Fail", message: { code } },
    status,
    json: { code, message: `failed with ${code}`, details: [] },
    responseHeaders: {
      "content-type": "application/json",
      "www-authenticate": null,
    },
  });
}

/** fetch, except for GET with a body (seed 004 clients send those; fetch refuses to). */
async function send(base: string, c: Case): Promise<Response> {
  const method = c.method ?? "GET";
  if (method !== "GET" || c.body === undefined) {
    return fetch(base + c.path, { method, headers: c.headers, body: c.body });
  }
  return new Promise((resolve, reject) => {
    const headers = { ...c.headers, "content-length": String(Buffer.byteLength(c.body!)) };
    const req = request(base + c.path, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (typeof v === "string") headers.set(k, v);
        }
        resolve(new Response(res.statusCode === 204 ? null : Buffer.concat(chunks), { status: res.statusCode!, headers }));
      });
    });
    req.on("error", reject);
    req.end(c.body);
  });
}

describe("transcoder conformance", () => {
  let server: LibraryServer;
  before(async () => {
    server = await startLibraryServer({ maxBodyBytes: 1024 });
  });
  after(() => server.close());
  beforeEach(() => {
    server.calls.length = 0;
  });

  for (const c of cases) {
    it(c.name, async () => {
      const res = await send(server.url, c);
      const body = await res.text();
      assert.equal(res.status, c.status, `status (body: ${body})`);
      if (c.noCall) {
        assert.deepEqual(server.calls, [], "the transcoder answers without calling the RPC");
      }
      if (c.input) {
        assert.equal(server.calls.length, 1, "exactly one RPC call");
        const call = server.calls[0]!;
        assert.equal(call.rpc, c.input.rpc);
        assert.deepEqual(call.input, c.input.message);
        assert.ok(call.intercepted, "the router's interceptors ran");
        for (const [k, v] of Object.entries(c.input.header ?? {})) {
          assert.equal(call.header.get(k), v, `request header ${k}`);
        }
      }
      if (c.json !== undefined) {
        assert.deepEqual(JSON.parse(body), c.json);
      }
      if (c.text !== undefined) {
        assert.equal(body, c.text);
      }
      if (c.error) {
        const e = JSON.parse(body) as { code: string; message: string; details: unknown };
        assert.equal(e.code, c.error.code);
        assert.deepEqual(e.details, []);
        if (c.error.message) {
          assert.ok(e.message.includes(c.error.message), `message ${JSON.stringify(e.message)} includes ${JSON.stringify(c.error.message)}`);
        }
      }
      for (const [k, v] of Object.entries(c.responseHeaders ?? {})) {
        assert.equal(res.headers.get(k), v, `response header ${k}`);
      }
    });
  }
});
