// The embedded store after a failed fsync of its log: it refuses every write until the process
// restarts (503 STORE_UNAVAILABLE, however well the disk syncs afterwards), readiness and
// liveness fail, a token check (which only reads) still answers, and the failure is logged once.
import assert from "node:assert/strict";
import { fsync } from "node:fs";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import { bearer, connectClient, rest } from "../support/clients.js";
import { assertStoreUnavailable } from "../support/error-details.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { clientIdHeader, password, startSession, uniqueEmail } from "../support/users.js";

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
  /** One sign-up while the disk fails its fsync; the disk is sound again afterwards. */
  const failOnce = async () => {
    failing = true;
    assertStoreUnavailable(await signUp());
    failing = false;
  };
  const probe = async (path: string) => {
    const res = await fetch(`${server.url}${path}`);
    return { status: res.status, body: await res.json() };
  };

  it("the write whose fsync failed, and every later write, answer 503 STORE_UNAVAILABLE though the disk syncs again", async () => {
    assert.equal((await signUp()).status, 201);
    await failOnce();
    assertStoreUnavailable(await signUp());
    assertStoreUnavailable(await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email: uniqueEmail(), password }, headers: clientIdHeader }));
  });

  it("/readyz and /healthz answer 503 NOT_SERVING, and gRPC health NOT_SERVING; a token check, which only reads, still answers", async () => {
    const email = uniqueEmail();
    assert.equal((await signUp(email)).status, 201);
    const { access_token } = await startSession(server, email);
    assert.deepEqual([await probe("/readyz"), await probe("/healthz")], [
      { status: 200, body: { status: "SERVING" } },
      { status: 200, body: { status: "SERVING" } },
    ]);
    await failOnce();
    assert.deepEqual([await probe("/readyz"), await probe("/healthz")], [
      { status: 503, body: { status: "NOT_SERVING" } },
      { status: 503, body: { status: "NOT_SERVING" } },
    ]);
    assert.equal((await connectClient(Health, server.url).check({ service: "" })).status, Status.NOT_SERVING);
    const session = await rest(server.url, "GET", "/session", { headers: { ...clientIdHeader, ...bearer(access_token) } });
    assert.equal(session.status, 200, session.text);
  });

  it("logs the failure once, at error level, with its cause", async () => {
    await failOnce();
    assertStoreUnavailable(await signUp());
    const errors = server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === "error");
    assert.deepEqual(
      errors.map(({ msg, component, error }) => ({ msg, component, error })),
      [{ msg: "store failed", component: "store", error: "embedded store could not sync its log (EIO); it refuses writes until restarted" }],
    );
  });
});
