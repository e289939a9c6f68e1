// An admin method (the admin credential) checks that credential before it reads the request
// message: a call without it is 401 / UNAUTHENTICATED whether or not its body or query parses,
// on every protocol (REST, Connect, gRPC, gRPC-Web), so a caller without the admin token learns
// nothing of the methods' request schemas. A call with the credential whose message does not
// parse is refused as before (400 / INVALID_ARGUMENT naming the problem), and recorded as an
// `admin.call` failure with its reason. Before, the message was parsed first: 400 naming the
// field to anyone, and no event.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import http2 from "node:http2";
import { auditApi } from "../audit/api.js";
import { expectOk } from "../support/api.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { admin } from "../support/users.js";
import { grpcFrame, grpcStatus, grpcWebTrailer, h2request, raw, type RawAnswer } from "../hostile/support.js";

const rotate = "/tessera.key.v1.KeyService/RotateKey";
// The admin methods a Connect GET may call (idempotency_level NO_SIDE_EFFECTS).
const listAuditEvents = "/tessera.audit.v1.AuditService/ListAuditEvents";
const listTokens = "/tessera.apitoken.v1.ApiTokenService/ListTokens";
const wrong = { authorization: "Bearer not-the-admin-token-0123456789" };
/** A protobuf message that does not parse: a varint that never ends. */
const badProto = Buffer.from([0x08, 0xff]);

/** What a 401 answer says, compared between a body that parses and one that does not. */
function answer(a: RawAnswer): { status: number; challenge: string | string[] | undefined; body: string } {
  return { status: a.status, challenge: a.headers["www-authenticate"], body: a.text };
}

describe("access: an admin method checks the admin credential before it reads the message", function () {
  this.timeout(30_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server?.close());

  /** The admin.call event of the call tagged `requestId`. */
  async function event(requestId: string) {
    const page = expectOk(await auditApi("rest", server.url).listAuditEvents({ type: "admin.call", page_size: 500 }, admin));
    const found = page.events.filter((e) => e.request_id === requestId);
    assert.equal(found.length, 1, JSON.stringify(found));
    return found[0]!;
  }

  const noCredentials: Array<[string, Record<string, string>, string]> = [
    ["no credential", {}, "MISSING_CREDENTIAL"],
    ["a wrong admin token", wrong, "INVALID_TOKEN"],
  ];

  for (const [name, auth, reason] of noCredentials) {
    it(`REST, ${name}: a body that is no JSON is 401 ${reason}, as a valid body is, and an admin.call failure event`, async () => {
      const good = await raw(server.url, "POST", "/v1/admin/keys:rotate", { ...auth, "content-type": "application/json" }, "{}");
      const requestId = `admin-order-refused-${reason}`;
      const bad = await raw(server.url, "POST", "/v1/admin/keys:rotate", { ...auth, "content-type": "application/json", "x-request-id": requestId }, '{"x":');
      assert.equal(bad.status, 401, bad.text);
      assert.equal(JSON.parse(bad.text).details[0].debug.reason, reason, bad.text);
      assert.deepEqual(answer(bad), answer(good));
      const e = await event(requestId);
      assert.deepEqual([e.outcome, e.subject, e.reason], ["failure", "tessera.key.v1.KeyService/RotateKey", reason]);
    });

    it(`REST, ${name}: a query parameter that does not parse is 401 ${reason}, as a valid one is`, async () => {
      const good = await raw(server.url, "GET", "/v1/admin/audit-events?page_size=5", auth);
      const bad = await raw(server.url, "GET", "/v1/admin/audit-events?page_size=many", auth);
      assert.equal(bad.status, 401, bad.text);
      assert.deepEqual(answer(bad), answer(good));
    });

    it(`Connect, ${name}: a JSON or binary message that does not parse is 401 unauthenticated, as a valid one is`, async () => {
      const good = await raw(server.url, "POST", rotate, { ...auth, "content-type": "application/json" }, "{}");
      assert.equal(good.status, 401, good.text);
      for (const [type, body, encoding] of [
        ["application/json", "{", undefined],
        ["application/proto", badProto, undefined],
        ["application/json", "not gzip", "gzip"],
      ] as const) {
        const bad = await raw(server.url, "POST", rotate, { ...auth, "content-type": type, ...(encoding && { "content-encoding": encoding }) }, body);
        assert.equal(bad.status, 401, `${type}: ${bad.text}`);
        assert.equal(JSON.parse(bad.text).code, "unauthenticated");
        if (type === "application/json") assert.deepEqual(answer(bad), answer(good));
      }
    });

    it(`Connect GET, ${name}: a message that does not parse is 401 ${reason}, as a valid one is, and an admin.call failure event`, async () => {
      const get = (procedure: string, query: string, requestId?: string) =>
        raw(server.url, "GET", `${procedure}?connect=v1&${query}`, { ...auth, ...(requestId && { "x-request-id": requestId }) });
      const jsonMessage = (text: string) => `encoding=json&message=${encodeURIComponent(text)}`;
      for (const procedure of [listAuditEvents, listTokens]) {
        const good = await get(procedure, jsonMessage("{}"));
        assert.equal(good.status, 401, good.text);
        for (const query of [
          jsonMessage("{"),
          // A field's value of the wrong shape: its error would name the field.
          jsonMessage('{"since":"yesterday","accountId":7}'),
          `encoding=proto&message=${badProto.toString("base64url")}&base64=1`,
          `encoding=json&message=${encodeURIComponent("{}")}&compression=gzip`,
          `encoding=json&message=${encodeURIComponent("not base64!")}&base64=1`,
        ]) {
          const requestId = `admin-order-get-${reason}-${randomUUID()}`;
          const bad = await get(procedure, query, requestId);
          assert.equal(bad.status, 401, `${procedure}?${query}: ${bad.text}`);
          assert.equal(JSON.parse(bad.text).details[0].debug.reason, reason, bad.text);
          assert.deepEqual(answer(bad), answer(good));
          const e = await event(requestId);
          assert.deepEqual([e.outcome, e.subject, e.reason], ["failure", procedure.slice(1), reason]);
        }
      }
    });

    it(`gRPC, ${name}: a message that does not parse is UNAUTHENTICATED (16), as a valid one is`, async () => {
      const session = http2.connect(server.url);
      try {
        const headers = { ":method": "POST", ":path": rotate, "content-type": "application/grpc", te: "trailers", ...auth };
        const good = await h2request(session, headers, grpcFrame(new Uint8Array(0)));
        const bad = await h2request(session, headers, grpcFrame(badProto));
        assert.equal(grpcStatus(bad), 16, JSON.stringify(bad.trailers));
        assert.equal(bad.trailers["grpc-message"], good.trailers["grpc-message"]);
        assert.equal(bad.trailers["www-authenticate"], good.trailers["www-authenticate"]);
        // Compressed (served by connect-es, not grpc-unary.ts): a compressed envelope that is no gzip.
        const gzipped = await h2request(session, { ...headers, "grpc-encoding": "gzip" }, grpcFrame(Buffer.from("not gzip"), 1));
        assert.equal(grpcStatus(gzipped), 16, JSON.stringify(gzipped.trailers));
      } finally {
        session.close();
      }
    });

    it(`gRPC-Web, ${name}: a message that does not parse is UNAUTHENTICATED (16), binary and text`, async () => {
      for (const [type, body] of [
        ["application/grpc-web+proto", grpcFrame(badProto)],
        ["application/grpc-web-text", Buffer.from(grpcFrame(badProto).toString("base64"))],
      ] as const) {
        const a = await raw(server.url, "POST", rotate, { ...auth, "content-type": type }, body);
        const bytes = type === "application/grpc-web-text" ? Buffer.from(a.text, "base64") : Buffer.from(a.text, "latin1");
        assert.equal(grpcWebTrailer(bytes)["grpc-status"], "16", `${type}: ${bytes.toString("latin1")}`);
      }
    });
  }

  describe("with the admin credential, a message that does not parse", () => {
    it("REST: 400 MALFORMED_BODY as before, and an admin.call failure event with that reason", async () => {
      const a = await raw(server.url, "POST", "/v1/admin/keys:rotate", { ...admin, "content-type": "application/json", "x-request-id": "admin-order-rest" }, '{"x":');
      assert.equal(a.status, 400, a.text);
      const e = await event("admin-order-rest");
      assert.deepEqual([e.outcome, e.subject, e.reason], ["failure", "tessera.key.v1.KeyService/RotateKey", "MALFORMED_BODY"]);
    });

    it("Connect: 400 invalid_argument as before, and an admin.call failure event with its reason", async () => {
      const a = await raw(server.url, "POST", rotate, { ...admin, "content-type": "application/json", "x-request-id": "admin-order-connect" }, "{");
      assert.equal(a.status, 400, a.text);
      const e = await event("admin-order-connect");
      assert.deepEqual([e.outcome, e.subject, e.reason], ["failure", "tessera.key.v1.KeyService/RotateKey", "MALFORMED_REQUEST"]);
    });

    it("gRPC: INVALID_ARGUMENT (3) as before, and an admin.call failure event with its reason", async () => {
      const session = http2.connect(server.url);
      try {
        const headers = { ":method": "POST", ":path": rotate, "content-type": "application/grpc", te: "trailers", ...admin, "x-request-id": "admin-order-grpc" };
        const a = await h2request(session, headers, grpcFrame(badProto));
        assert.equal(grpcStatus(a), 3, JSON.stringify(a.trailers));
      } finally {
        session.close();
      }
      const e = await event("admin-order-grpc");
      assert.deepEqual([e.outcome, e.subject, e.reason], ["failure", "tessera.key.v1.KeyService/RotateKey", "MALFORMED_REQUEST"]);
    });
  });
});
