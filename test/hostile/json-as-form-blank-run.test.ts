/**
 * A form body that begins as JSON does after a long run of white space, escaped or not, under a
 * body limit raised as an operator may raise it (up to 64 MiB): the run is read through once, as
 * any other, and the answer is the documented 415, never a failure of the server's own.
 */
import { strict as assert } from "node:assert";
import { startTestServer, type TestServer } from "../support/server.js";
import { raw } from "./support.js";

const jsonAsForm = 'a form body (application/x-www-form-urlencoded) that begins as JSON does, with "{" or "[": JSON is sent as application/json';

describe("hostile: a form body that is JSON after megabytes of white space", function () {
  this.timeout(60_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { TESSERA_BODY_LIMIT_BYTES: String(32 * 1024 * 1024) } });
  });
  after(() => server?.close());

  for (const [what, blank] of [
    ['"+" (a form\'s space)', "+"],
    ["spaces", " "],
  ] as const) {
    it(`${what} for 8 MiB, then {: 415 UNSUPPORTED_MEDIA_TYPE`, async () => {
      const body = blank.repeat(Math.ceil((8 * 1024 * 1024) / blank.length)) + '{"user":"ann","pass":"pw"}';
      const r = await raw(server.url, "POST", "/jwt/user", { host: "localhost", "content-type": "application/x-www-form-urlencoded" }, body);
      assert.equal(r.status, 415, r.text);
      const error = JSON.parse(r.text) as { code: string; message: string; details: Array<{ debug: { reason?: string } }> };
      assert.deepEqual([error.code, error.message, error.details[0]?.debug.reason], ["invalid_argument", jsonAsForm, "UNSUPPORTED_MEDIA_TYPE"]);
    });
  }
});
