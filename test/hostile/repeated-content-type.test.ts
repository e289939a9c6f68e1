// A request carries at most one Content-Type header (RFC 9110 5.3: it is no list-based field).
// Node's parsers keep the first of two and drop the rest silently, so Tessera read a body by one
// media type while a proxy or filter in front may have read it by the other (a form body taken
// for JSON, JSON taken for protobuf). Two are refused before routing, on every path and
// protocol, with a 400 naming the problem, as two Authorization headers are.
import assert from "node:assert/strict";
import { assertBadRequest, raw } from "./support.js";
import { Flag, frame, FrameType, H2Wire } from "../support/h2-wire.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { password } from "../support/users.js";

const message = "the request has 2 Content-Type headers: it must have at most one";

describe("hostile: two Content-Type headers", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  const assertRefused = (a: { status: number; text: string }) => assertBadRequest(a, message, "MALFORMED_REQUEST");

  it("REST (seed 004, which takes JSON and form bodies): 400 MALFORMED_REQUEST, and no user is created", async () => {
    const user = `twotypes-${Date.now()}`;
    const form = new URLSearchParams({ user, pass: password }).toString();
    assertRefused(await raw(server.url, "POST", "/jwt/user", { "content-type": ["application/x-www-form-urlencoded", "application/json"] }, form));
    assertRefused(await raw(server.url, "POST", "/jwt/user", { "content-type": ["application/json", "text/plain"] }, JSON.stringify({ user, pass: password })));
    // The user does not exist: signing up now succeeds.
    const a = await raw(server.url, "POST", "/jwt/user", { "content-type": "application/json" }, JSON.stringify({ user, pass: password }));
    assert.equal(a.status, 201, a.text);
  });

  it("Connect (HTTP/1.1): 400 MALFORMED_REQUEST", async () => {
    assertRefused(await raw(server.url, "POST", "/tessera.jwt.v1.JwtService/GetVersion", { "content-type": ["application/json", "application/proto"] }, "{}"));
  });

  it("the same type twice is refused too; one Content-Type is served as before", async () => {
    assertRefused(await raw(server.url, "POST", "/tessera.jwt.v1.JwtService/GetVersion", { "content-type": ["application/json", "application/json"] }, "{}"));
    const a = await raw(server.url, "POST", "/tessera.jwt.v1.JwtService/GetVersion", { "content-type": "application/json" }, "{}");
    assert.equal(a.status, 200, a.text);
  });

  it("REST over HTTP/2 (two content-type header fields): 400 (Node's HTTP/2 server refuses them itself, without a body)", async () => {
    const w = await H2Wire.open(server.port);
    try {
      w.write(
        w.headers(1, [
          [":method", "POST"],
          [":scheme", "http"],
          [":authority", "localhost"],
          [":path", "/jwt/user"],
          ["content-type", "application/x-www-form-urlencoded"],
          ["content-type", "application/json"],
        ]),
      );
      w.write(frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from("{}")));
      const answer = await w.until((f) => f.type === FrameType.HEADERS && f.stream === 1, 5000);
      assert.ok(answer, "no answer");
      // nghttp2 sends ":status: 400" as index 12 of HPACK's static table (RFC 7541 appendix A).
      assert.equal(answer.payload[0], 0x80 | 12, `first header field is not ":status: 400" (0x${answer.payload[0]?.toString(16)})`);
    } finally {
      w.destroy();
    }
  });
});
