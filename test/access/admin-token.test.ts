// The admin token is presented as `Authorization: Bearer <token>`, so only a value a client can
// send that way is accepted as TESSERA_ADMIN_TOKEN: printable ASCII without spaces. A space, a
// control character or a non-ASCII letter (an HTTP header carries bytes, read as Latin-1) made
// every admin call 401 while the service started as if configured.
import assert from "node:assert/strict";
import { loadConfig } from "../../src/config.js";
import { raw } from "../hostile/support.js";
import { startTestServer } from "../support/server.js";

const unsendable = /^TESSERA_ADMIN_TOKEN: must be printable ASCII without spaces \(it is sent as "Authorization: Bearer <token>"\)$/;

describe("access: TESSERA_ADMIN_TOKEN", () => {
  for (const [name, token] of [
    ["a space", "change me 0123456789"],
    ["a tab", "change-me\t0123456789"],
    ["a non-ASCII letter", "chänge-me-0123456789"],
    ["a line break", "change-me-0123456789\n"],
  ] as const) {
    it(`with ${name} is refused at start-up, naming the problem (never the value)`, () => {
      assert.throws(
        () => loadConfig({ TESSERA_ADMIN_TOKEN: token }),
        (e: Error) => unsendable.test(e.message) && !e.message.includes("0123456789"),
      );
    });
  }

  it("of printable ASCII (punctuation included) is accepted and works as a bearer token", async () => {
    const token = "Adm1n!#$%&'*+-./:;<=>?@[]^_`{|}~\"(),\\";
    const server = await startTestServer({ env: { TESSERA_ADMIN_TOKEN: token } });
    try {
      const a = await raw(server.url, "GET", "/v1/frontend/auth/acct-x", { authorization: `Bearer ${token}` });
      assert.equal(a.status, 200, a.text);
    } finally {
      await server.close();
    }
  });
});
