/**
 * Malformed gRPC frames, gRPC-Web bodies and Connect envelopes/unary bodies, one table: each gets
 * its one documented answer within 3 s (no crash, no hung stream), and the next call on the same
 * HTTP/2 session still works. The answers are connect-es's, except where Tessera corrects them
 * (src/server/dispatch.ts): protobuf bytes that do not parse are INVALID_ARGUMENT in every
 * protocol (as in connect-go; connect-es alone says INTERNAL), and a body that ends right after
 * an envelope's prefix is INVALID_ARGUMENT "incomplete envelope", as one cut anywhere later is
 * (connect-es took it for no message at all). INTERNAL is the answer only where
 * the protocol says so: a compressed flag without a grpc-encoding (grpc-go: "compressed flag set
 * with identity or empty encoding"; connect-go and connect-es agree).
 */
import { strict as assert } from "node:assert";
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { grpcFrame, grpcStatus, h2request, healthy, raw, type H2Answer } from "./support.js";

const OK = 0;
const INVALID_ARGUMENT = 3;
const INTERNAL = 13;
const UNIMPLEMENTED = 12;
const RESOURCE_EXHAUSTED = 8;

const version = "/tessera.jwt.v1.JwtService/GetVersion";
/** Compressed data that ends early: zlib's "unexpected end of file" (Z_BUF_ERROR). */
const gzipCutShort = gzipSync(Buffer.from("{}")).subarray(0, 12);
const brotliCutShort = Buffer.alloc(5);
const createUser = "/tessera.session.v1.UserService/CreateUser";
const reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";

interface GrpcCase {
  name: string;
  path?: string;
  headers?: Record<string, string>;
  body: Buffer;
  /** The grpc-status of the answer (HTTP 200), or the HTTP status of a non-gRPC answer. */
  expect: { grpc: number } | { http: number };
}

const grpcCases: GrpcCase[] = [
  { name: "well-formed empty message (control)", body: grpcFrame(new Uint8Array()), expect: { grpc: OK } },
  { name: "no frame at all (unary needs one message)", body: Buffer.alloc(0), expect: { grpc: UNIMPLEMENTED } },
  { name: "truncated prefix (3 of 5 bytes)", body: Buffer.from([0, 0, 0]), expect: { grpc: INVALID_ARGUMENT } },
  { name: "length prefix 10, 3 bytes follow", body: Buffer.concat([Buffer.from([0, 0, 0, 0, 10]), Buffer.from("abc")]), expect: { grpc: INVALID_ARGUMENT } },
  // connect-es's envelope reader missed an envelope whose prefix came and none of its bytes:
  // a unary call was "missing input message" (UNIMPLEMENTED), a stream's input ended cleanly.
  { name: "length prefix 10, nothing follows", body: Buffer.from([0, 0, 0, 0, 10]), expect: { grpc: INVALID_ARGUMENT } },
  { name: "a message, then a length prefix 10 and nothing", body: Buffer.concat([grpcFrame(new Uint8Array()), Buffer.from([0, 0, 0, 0, 10])]), expect: { grpc: INVALID_ARGUMENT } },
  { name: "gzip declared: length prefix 10, nothing follows", headers: { "grpc-encoding": "gzip" }, body: Buffer.from([1, 0, 0, 0, 10]), expect: { grpc: INVALID_ARGUMENT } },
  { name: "gRPC-Web: length prefix 10, nothing follows", headers: { "content-type": "application/grpc-web+proto" }, body: Buffer.from([0, 0, 0, 0, 10]), expect: { grpc: INVALID_ARGUMENT } },
  { name: "gRPC-Web text: length prefix 10, nothing follows", headers: { "content-type": "application/grpc-web-text" }, body: Buffer.from(Buffer.from([0, 0, 0, 0, 10]).toString("base64")), expect: { grpc: INVALID_ARGUMENT } },
  { name: "server stream (Health/Watch): length prefix 10, nothing follows", path: "/grpc.health.v1.Health/Watch", body: Buffer.from([0, 0, 0, 0, 10]), expect: { grpc: INVALID_ARGUMENT } },
  { name: "reflection stream: length prefix 10, nothing follows", path: reflection, body: Buffer.from([0, 0, 0, 0, 10]), expect: { grpc: INVALID_ARGUMENT } },
  { name: "length prefix 2^31-1, nothing follows", body: Buffer.from([0, 0x7f, 0xff, 0xff, 0xff]), expect: { grpc: RESOURCE_EXHAUSTED } },
  { name: "length prefix 0xffffffff", body: Buffer.from([0, 0xff, 0xff, 0xff, 0xff]), expect: { grpc: RESOURCE_EXHAUSTED } },
  { name: "compressed flag, no grpc-encoding", body: grpcFrame(Buffer.from([1, 2, 3]), 1), expect: { grpc: INTERNAL } },
  { name: "compressed flag, gzip declared, bytes not gzip", headers: { "grpc-encoding": "gzip" }, body: grpcFrame(Buffer.from("not gzip"), 1), expect: { grpc: INVALID_ARGUMENT } },
  // zlib says Z_BUF_ERROR ("unexpected end of file") for compressed data that ends early, which
  // connect-node's decompressors answered as INTERNAL "decompression failed".
  { name: "compressed flag, gzip declared, gzip cut short", headers: { "grpc-encoding": "gzip" }, body: grpcFrame(gzipCutShort, 1), expect: { grpc: INVALID_ARGUMENT } },
  { name: "compressed flag, br declared, brotli cut short", headers: { "grpc-encoding": "br" }, body: grpcFrame(brotliCutShort, 1), expect: { grpc: INVALID_ARGUMENT } },
  { name: "gRPC-Web: compressed flag, gzip declared, gzip cut short", headers: { "content-type": "application/grpc-web+proto", "grpc-encoding": "gzip" }, body: grpcFrame(gzipCutShort, 1), expect: { grpc: INVALID_ARGUMENT } },
  { name: "gzip bomb (1 MiB of zeros, 1 KiB compressed)", headers: { "grpc-encoding": "gzip" }, body: grpcFrame(gzipSync(Buffer.alloc(1 << 20)), 1), expect: { grpc: RESOURCE_EXHAUSTED } },
  { name: "unknown grpc-encoding", headers: { "grpc-encoding": "snappy-9000" }, body: grpcFrame(new Uint8Array()), expect: { grpc: UNIMPLEMENTED } },
  // connect-es ignores flag bits other than "compressed" on requests: accepted, harmless.
  { name: "flags byte 0x80 (reserved bit)", body: grpcFrame(new Uint8Array(), 0x80), expect: { grpc: OK } },
  { name: "two messages for a unary method", body: Buffer.concat([grpcFrame(new Uint8Array()), grpcFrame(new Uint8Array())]), expect: { grpc: UNIMPLEMENTED } },
  { name: "garbage bytes (not a frame)", body: Buffer.from("GET / HTTP/1.1\r\n\r\n"), expect: { grpc: RESOURCE_EXHAUSTED } },
  { name: "protobuf that does not parse", path: createUser, headers: { "x-koms-clientid": testClientId }, body: grpcFrame(Buffer.from([0x0a, 0x7f])), expect: { grpc: INVALID_ARGUMENT } },
  { name: "gRPC-Web: protobuf that does not parse", path: createUser, headers: { "content-type": "application/grpc-web+proto", "x-koms-clientid": testClientId }, body: grpcFrame(Buffer.from([0x0a, 0x7f])), expect: { grpc: INVALID_ARGUMENT } },
  { name: "grpc-timeout malformed", headers: { "grpc-timeout": "soon" }, body: grpcFrame(new Uint8Array()), expect: { grpc: INVALID_ARGUMENT } },
  { name: "content-type application/grpc+json with binary", headers: { "content-type": "application/grpc+json" }, body: grpcFrame(Buffer.from([0xff])), expect: { grpc: INVALID_ARGUMENT } },
  // JSON whose string escapes make no Unicode text: protobuf-es's error quotes the value, and
  // connect-es's encodeURIComponent of that grpc-message threw (URIError): HTTP 500, no status.
  { name: "gRPC+JSON: a lone surrogate escape (\"\\ud800\")", path: "/tessera.jwt.v1.JwtService/Check", headers: { "content-type": "application/grpc+json" }, body: grpcFrame(Buffer.from('"\\ud800"')), expect: { grpc: INVALID_ARGUMENT } },
  { name: "gRPC+JSON: a lone low surrogate escape in a field", path: "/tessera.jwt.v1.JwtService/Check", headers: { "content-type": "application/grpc+json" }, body: grpcFrame(Buffer.from('{"access_token":{"a":"\\udfff"}}')), expect: { grpc: INVALID_ARGUMENT } },
  { name: "gRPC-Web+JSON: a lone surrogate escape", path: "/tessera.jwt.v1.JwtService/Check", headers: { "content-type": "application/grpc-web+json" }, body: grpcFrame(Buffer.from('"\\ud800"')), expect: { grpc: INVALID_ARGUMENT } },
  { name: "reflection stream, gRPC+JSON: a lone surrogate escape", path: reflection, headers: { "content-type": "application/grpc+json" }, body: grpcFrame(Buffer.from('"\\ud800"')), expect: { grpc: INVALID_ARGUMENT } },
  // A surrogate pair is one character, and an escaped backslash before "ud800" is no escape.
  { name: "gRPC+JSON: a surrogate pair escape and an escaped backslash (control)", headers: { "content-type": "application/grpc+json" }, body: grpcFrame(Buffer.from('{"x":"\\ud83e\\udd84","y":"\\\\ud800"}')), expect: { grpc: OK } },
  // RFC 9110 8.3.2: a parameter value may be a quoted string, `charset="utf-8"` being `charset=utf-8`.
  { name: "gRPC+JSON, charset=\"utf-8\" quoted (RFC 9110 8.3.2)", headers: { "content-type": 'application/grpc+json; charset="utf-8"' }, body: grpcFrame(Buffer.from("{}")), expect: { grpc: OK } },
  { name: "gRPC+JSON, charset latin1", headers: { "content-type": "application/grpc+json; charset=latin1" }, body: grpcFrame(Buffer.from("{}")), expect: { http: 415 } },
  { name: "content-type application/grpc+xml", headers: { "content-type": "application/grpc+xml" }, body: grpcFrame(new Uint8Array()), expect: { http: 415 } },
  { name: "content-type text/plain on a gRPC path", headers: { "content-type": "text/plain" }, body: grpcFrame(new Uint8Array()), expect: { http: 415 } },
  { name: "gRPC-Web: truncated frame", headers: { "content-type": "application/grpc-web+proto" }, body: Buffer.from([0, 0, 0, 0, 9, 1]), expect: { grpc: INVALID_ARGUMENT } },
  { name: "reflection stream: garbage frame", path: reflection, body: grpcFrame(Buffer.from([0xff, 0xff, 0xff])), expect: { grpc: INVALID_ARGUMENT } },
  { name: "reflection stream: truncated frame", path: reflection, body: Buffer.from([0, 0, 0, 0, 50, 1, 2]), expect: { grpc: INVALID_ARGUMENT } },
];

interface ConnectCase {
  name: string;
  path?: string;
  headers: Record<string, string>;
  body: Buffer | string;
  /** The HTTP status. */
  status: number;
  /**
   * The Connect code of the error: in the JSON body of a unary answer, in the end-stream message
   * of a streaming one; "ok" for a stream that ends cleanly ("{}").
   */
  code?: string;
}

const json = { "content-type": "application/json" };
const connectCases: ConnectCase[] = [
  { name: "unary JSON (control)", headers: json, body: "{}", status: 200 },
  { name: "unary JSON, not JSON", headers: json, body: "{", status: 400, code: "invalid_argument" },
  // connect-es checks the header only when told to require it: an unknown version is ignored.
  { name: "unary JSON, connect-protocol-version 2", headers: { ...json, "connect-protocol-version": "2" }, body: "{}", status: 200 },
  { name: "unary proto, garbage", headers: { "content-type": "application/proto" }, body: Buffer.from([0x0a, 0x7f]), path: createUser, status: 400, code: "invalid_argument" },
  { name: "Connect streaming (reflection): proto envelope that does not parse", path: reflection, headers: { "content-type": "application/connect+proto" }, body: Buffer.concat([Buffer.from([0, 0, 0, 0, 3]), Buffer.from([0xff, 0xff, 0xff])]), status: 200, code: "invalid_argument" },
  { name: "unary, content-encoding gzip, not gzip", headers: { ...json, "content-encoding": "gzip" }, body: "{}", status: 400, code: "invalid_argument" },
  { name: "unary, content-encoding gzip, gzip cut short", headers: { ...json, "content-encoding": "gzip" }, body: gzipCutShort, status: 400, code: "invalid_argument" },
  { name: "unary, content-encoding br, brotli cut short", headers: { ...json, "content-encoding": "br" }, body: brotliCutShort, status: 400, code: "invalid_argument" },
  { name: "unary GET, compression gzip, gzip cut short", path: `${version}?connect=v1&encoding=json&base64=1&compression=gzip&message=${gzipCutShort.toString("base64url")}`, headers: {}, body: "", status: 400, code: "invalid_argument" },
  { name: "Connect streaming (reflection): gzip envelope cut short", path: reflection, headers: { "content-type": "application/connect+json", "connect-content-encoding": "gzip" }, body: Buffer.concat([Buffer.from([1, 0, 0, 0, gzipCutShort.length]), gzipCutShort]), status: 200, code: "invalid_argument" },
  { name: "unary, content-encoding unknown", headers: { ...json, "content-encoding": "lz-foo" }, body: "{}", status: 501, code: "unimplemented" },
  { name: "unary, gzip bomb", headers: { ...json, "content-encoding": "gzip" }, body: gzipSync(Buffer.from(`{"a":"${"x".repeat(1 << 20)}"}`)), status: 429, code: "resource_exhausted" },
  { name: "unary JSON, a lone surrogate escape", headers: json, body: '{"x":"\\ud800"}', status: 400, code: "invalid_argument" },
  { name: "unary JSON, a surrogate pair escape (control)", headers: json, body: '{"x":"\\ud83e\\udd84"}', status: 200 },
  { name: "Connect streaming (reflection): a lone surrogate escape", path: reflection, headers: { "content-type": "application/connect+json" }, body: Buffer.concat([Buffer.from([0, 0, 0, 0, 8]), Buffer.from('"\\ud800"')]), status: 200, code: "invalid_argument" },
  // RFC 9110 8.3.1 and 8.3.2: white space around ";", empty parameters and a quoted value spell
  // the same media type; connect-go reads them so (mime.ParseMediaType), connect-es answered 415.
  { name: "unary JSON, charset=\"utf-8\" quoted (RFC 9110 8.3.2)", headers: { ...json, "content-type": 'application/json; charset="utf-8"' }, body: "{}", status: 200 },
  { name: "unary JSON, white space before \";\", an empty parameter, charset=UTF-8", headers: { "content-type": "application/json ; ; charset=UTF-8" }, body: "{}", status: 200 },
  { name: "Connect streaming (reflection): application/connect+json; charset=\"utf-8\"", path: reflection, headers: { "content-type": 'application/connect+json; charset="utf-8"' }, body: Buffer.concat([Buffer.from([2, 0, 0, 0, 2]), Buffer.from("{}")]), status: 200, code: "ok" },
  { name: "unary JSON, charset latin1", headers: { "content-type": "application/json; charset=latin1" }, body: "{}", status: 415 },
  { name: "unary JSON, charset given twice", headers: { "content-type": "application/json; charset=utf-8; charset=utf-8" }, body: "{}", status: 415 },
  { name: "unary JSON, another parameter", headers: { "content-type": "application/json; charset=utf-8; v=1" }, body: "{}", status: 415 },
  { name: "unary, content-type application/xml", headers: { "content-type": "application/xml" }, body: "<a/>", status: 415 },
  { name: "unary, no content-type", headers: {}, body: "{}", status: 415 },
  // GetToken mints a token, so it is not declared free of side effects: no GET in Connect.
  { name: "unary GET of a method with side effects", path: "/tessera.jwt.v1.JwtService/GetToken", headers: {}, body: "", status: 405 },
  // GetVersion takes GET (NO_SIDE_EFFECTS), but not without the encoding and message params.
  { name: "unary GET without encoding or message param", headers: {}, body: "", status: 415 },
  { name: "unary GET with a message that is not JSON", path: `${version}?connect=v1&encoding=json&message=%7Bx`, headers: {}, body: "", status: 400, code: "invalid_argument" },
  { name: "streaming envelope sent to a unary method", headers: { "content-type": "application/connect+json" }, body: Buffer.concat([Buffer.from([0, 0, 0, 0, 2]), Buffer.from("{}")]), status: 415 },
  { name: "Connect streaming (reflection): truncated envelope", path: reflection, headers: { "content-type": "application/connect+json" }, body: Buffer.from([0, 0, 0, 0, 40, 0x7b]), status: 200, code: "invalid_argument" },
  { name: "Connect streaming (reflection): an envelope prefix announcing 40 bytes, none follow", path: reflection, headers: { "content-type": "application/connect+json" }, body: Buffer.from([0, 0, 0, 0, 40]), status: 200, code: "invalid_argument" },
  { name: "Connect streaming (reflection): envelope of invalid JSON", path: reflection, headers: { "content-type": "application/connect+json" }, body: Buffer.concat([Buffer.from([0, 0, 0, 0, 3]), Buffer.from("{x}")]), status: 200, code: "invalid_argument" },
  // connect-es takes a client's end-stream flag as the end of its input: a clean, empty end-stream.
  { name: "Connect streaming (reflection): end-stream flag from the client with junk", path: reflection, headers: { "content-type": "application/connect+json" }, body: Buffer.concat([Buffer.from([2, 0, 0, 0, 3]), Buffer.from("abc")]), status: 200, code: "ok" },
];

/** The grpc-status of an answer: its trailers, or gRPC-Web's trailer frame (flag 0x80, in base64 for the text mode). */
function statusOf(a: H2Answer): number | undefined {
  const status = grpcStatus(a);
  if (status !== undefined) return status;
  // gRPC-Web's text mode: the binary framing in base64.
  const text = String(a.headers["content-type"]).startsWith("application/grpc-web-text");
  const trailer = frames(text ? Buffer.from(a.data.toString("latin1"), "base64") : a.data).find(([flags]) => flags & 0x80);
  const line = trailer?.[1].toString("latin1").split("\r\n").find((l) => l.startsWith("grpc-status:"));
  return line === undefined ? undefined : Number(line.slice("grpc-status:".length));
}

/** The length-prefixed frames of a body: [flags, payload]. */
function frames(body: Buffer): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  for (let pos = 0; pos + 5 <= body.length; ) {
    const len = body.readUInt32BE(pos + 1);
    out.push([body[pos]!, body.subarray(pos + 5, pos + 5 + len)]);
    pos += 5 + len;
  }
  return out;
}

describe("malformed gRPC frames and Connect envelopes", function () {
  this.timeout(30_000);
  let server: TestServer;
  let session: http2.ClientHttp2Session;
  before(async () => {
    server = await startTestServer();
    session = http2.connect(server.url);
  });
  after(async () => {
    session?.close();
    await server?.close();
  });

  for (const c of grpcCases) {
    it(`gRPC: ${c.name}`, async () => {
      const a = await h2request(
        session,
        { ":method": "POST", ":path": c.path ?? version, "content-type": "application/grpc", te: "trailers", ...c.headers },
        c.body,
        { timeoutMs: 3000 },
      );
      const status = statusOf(a);
      const http = Number(a.headers[":status"]);
      const what = `HTTP ${http}, grpc-status ${status} "${a.trailers["grpc-message"] ?? ""}" (rst ${a.rstCode})`;
      if ("http" in c.expect) {
        assert.equal(http, c.expect.http, what);
      } else {
        assert.equal(http, 200, what);
        assert.equal(status, c.expect.grpc, what);
      }
      // The session is still usable.
      const ok = await h2request(session, { ":method": "POST", ":path": version, "content-type": "application/grpc", te: "trailers" }, grpcFrame(new Uint8Array()), { timeoutMs: 3000 });
      assert.equal(grpcStatus(ok), OK);
    });
  }

  for (const c of connectCases) {
    it(`Connect: ${c.name}`, async () => {
      if (c.path === reflection) {
        // Bidirectional streaming needs HTTP/2 (HTTP/1.1 gets 505).
        const a = await h2request(session, { ":method": "POST", ":path": reflection, ...c.headers }, Buffer.from(c.body), { timeoutMs: 3000 });
        const what = `HTTP ${a.headers[":status"]} ${a.data.toString("latin1")}`;
        assert.equal(Number(a.headers[":status"]), c.status, what);
        // No answer message: only the end-stream message (flag 0x02), which holds the error.
        const env = frames(a.data);
        assert.deepEqual(env.map(([flags]) => flags), [2], what);
        const end = JSON.parse(env[0]![1].toString("utf8")) as { error?: { code: string } };
        assert.equal(end.error?.code ?? "ok", c.code, what);
        if (c.code === "ok") assert.deepEqual(end, {}, what);
        return;
      }
      const method = c.name.includes("GET") ? "GET" : "POST";
      const r = await raw(server.url, method, c.path ?? version, { ...c.headers }, method === "GET" ? undefined : c.body);
      assert.equal(r.status, c.status, `HTTP ${r.status} ${r.text}`);
      if (c.code) assert.equal((JSON.parse(r.text) as { code: string }).code, c.code, r.text);
    });
  }

  it("the server still answers /healthz", () => healthy(server.url));
});
