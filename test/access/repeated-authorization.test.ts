// A request carries at most one Authorization header (RFC 9110 5.3: it is no list-based field,
// so a sender must not repeat it). Node's parsers keep the first of two and drop the rest
// silently (HTTP/1.1 and HTTP/2 alike), so Tessera would act on one credential while a proxy in
// front may have checked the other. Two are refused before routing, on every protocol, with a
// 400 naming the problem, whichever of them is valid.
import assert from "node:assert/strict";
import { assertBadRequest, grpcFrame, raw } from "../hostile/support.js";
import { Flag, frame, FrameType, grpcHeaders, H2Wire } from "../support/h2-wire.js";
import { startTestServer, testAdminToken, type TestServer } from "../support/server.js";
import { createApiToken } from "../support/users.js";

const admin = `Bearer ${testAdminToken}`;
const message = "the request has 2 Authorization headers: it must have at most one";

describe("access: two Authorization headers", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
    await createApiToken(server, "acct-repeated");
  });
  after(() => server.close());

  const assertRefused = (a: { status: number; text: string }) => assertBadRequest(a, message, "MALFORMED_CREDENTIAL");

  for (const [name, lines] of [
    ["the admin token first", [admin, "Bearer not-the-admin-token"]],
    ["the admin token second", ["Bearer not-the-admin-token", admin]],
    ["the admin token twice", [admin, admin]],
  ] as const) {
    it(`REST: ${name} is 400 MALFORMED_CREDENTIAL`, async () => {
      assertRefused(await raw(server.url, "GET", "/v1/frontend/auth/acct-repeated", { authorization: [...lines] }));
    });
  }

  it("Connect (HTTP/1.1): 400 MALFORMED_CREDENTIAL", async () => {
    const a = await raw(
      server.url,
      "POST",
      "/tessera.apitoken.v1.ApiTokenService/ListTokens",
      { "content-type": "application/json", authorization: [admin, "Bearer not-the-admin-token"] },
      JSON.stringify({ accountId: "acct-repeated" }),
    );
    assertRefused(a);
  });

  it("one Authorization header is served as before", async () => {
    const a = await raw(server.url, "GET", "/v1/frontend/auth/acct-repeated", { authorization: admin });
    assert.equal(a.status, 200, a.text);
  });

  it("gRPC (HTTP/2, two authorization header fields): refused with 400, the call never runs", async () => {
    const w = await H2Wire.open(server.port);
    try {
      const path = "/tessera.apitoken.v1.ApiTokenService/ListTokens";
      w.write(w.headers(1, grpcHeaders(path, [["authorization", admin], ["authorization", "Bearer not-the-admin-token"]])));
      w.write(frame(FrameType.DATA, Flag.END_STREAM, 1, grpcFrame(new Uint8Array(0))));
      const answer = await w.until((f) => f.type === FrameType.HEADERS && f.stream === 1, 5000);
      assert.ok(answer, "no answer");
      // nghttp2 sends ":status: 400" as index 12 of HPACK's static table (RFC 7541 appendix A).
      assert.equal(answer.payload[0], 0x80 | 12, `first header field is not ":status: 400" (0x${answer.payload[0]?.toString(16)})`);
    } finally {
      w.destroy();
    }
  });
});
