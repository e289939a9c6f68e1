// The embedded store after a failed fsync of its log: it refuses every write until the process
// restarts (503 STORE_UNAVAILABLE, however well the disk syncs afterwards).
import assert from "node:assert/strict";
import { fsync } from "node:fs";
import { rest } from "../support/clients.js";
import { decodedBody, tesseraDetails } from "../support/error-details.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { clientIdHeader, password, uniqueEmail } from "../support/users.js";

describe("server: the embedded store after a failed fsync of its log", () => {
  let server: TestServer;
  let failing: boolean;
  const eio = Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO", syscall: "fsync" });

  beforeEach(async () => {
    failing = false;
    server = await startTestServer({ fsync: (fd, done) => (failing ? setImmediate(done, eio) : fsync(fd, done)) });
  });
  afterEach(() => server.close());

  const signUp = (email = uniqueEmail()) => rest(server.url, "POST", "/user", { json: { email, password }, headers: clientIdHeader });
  const storeUnavailable = async (res: Awaited<ReturnType<typeof rest>>) => {
    assert.equal(res.status, 503, res.text);
    assert.equal(res.headers.get("retry-after"), "1");
    assert.deepEqual(decodedBody(res.body), {
      code: "unavailable",
      message: "the store is unavailable, try again shortly",
      details: { ...tesseraDetails("STORE_UNAVAILABLE"), retryDelaySeconds: 1 },
    });
  };
  /** One sign-up while the disk fails its fsync; the disk is sound again afterwards. */
  const failOnce = async () => {
    failing = true;
    await storeUnavailable(await signUp());
    failing = false;
  };

  it("the write whose fsync failed, and every later write, answer 503 STORE_UNAVAILABLE though the disk syncs again", async () => {
    assert.equal((await signUp()).status, 201);
    await failOnce();
    await storeUnavailable(await signUp());
    await storeUnavailable(await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email: uniqueEmail(), password }, headers: clientIdHeader }));
  });
});
