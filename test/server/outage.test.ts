// The store going away is an answer (NOT_SERVING, 503, UNAVAILABLE), never a crash, and the
// service recovers by itself when the store returns. Each test starts from a store that answers
// and a server that says SERVING, whatever the test before it did to the database.
import assert from "node:assert/strict";
import { Code } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import { ApiTokenService } from "../../gen/tessera/apitoken/v1/api_token_pb.js";
import { connectClient, connectError, GrpcJsClient, rest } from "../support/clients.js";
import { assertStoreUnavailable, connectDetails, tesseraDetails } from "../support/error-details.js";
import { ferretdbBinary, PrivateFerretDb } from "../support/ferretdb.js";
import { pollUntil } from "../support/poll.js";
import { startTestServer, testAdminToken, type TestServer } from "../support/server.js";

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  await pollUntil(what, check, { limitMs: timeoutMs, intervalMs: 200 });
}

describe("server: MongoDB outage", function () {
  this.timeout(60000);
  let db: PrivateFerretDb;
  let server: TestServer;
  let grpc: GrpcJsClient<typeof Health>;

  before(async function () {
    if (!ferretdbBinary()) {
      if (process.env.CI === "true") throw new Error("CI=true but the FerretDB binary is missing (FERRETDB_BIN)");
      this.skip();
    }
    db = await PrivateFerretDb.start();
    server = await startTestServer({ store: "mongo", env: { MONGODB_URI: db.uri, TESSERA_STORE_TIMEOUT_MS: "500" } });
    grpc = new GrpcJsClient(Health, server.url);
  });
  beforeEach(async () => {
    // A running database and a server that has seen it answer.
    if (!db.running) await db.resume();
    await eventually("SERVING and /readyz 200", async () => (await status()) === Status.SERVING && (await readyz()) === 200, 20000);
  });
  after(async () => {
    grpc?.close();
    await server?.close();
    await db?.destroy();
  });

  const status = async () => (await grpc.call("Check", { service: "" })).message?.status;
  const readyz = async () => (await fetch(`${server.url}/readyz`)).status;

  it("reports SERVING (gRPC) and 200 (/readyz) while the store answers", async () => {
    assert.equal(await status(), Status.SERVING);
    assert.equal(await readyz(), 200);
  });

  it("reports NOT_SERVING (gRPC) and 503 (/readyz) while the store is down, and /healthz stays 200", async () => {
    await db.stop();
    await eventually("NOT_SERVING", async () => (await status()) === Status.NOT_SERVING, 10000);
    assert.equal(await readyz(), 503);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });

  it("a call that needs the store: UNAVAILABLE with STORE_UNAVAILABLE and a RetryInfo of the Retry-After second (REST, Connect)", async () => {
    await db.stop();
    await eventually("NOT_SERVING", async () => (await status()) === Status.NOT_SERVING, 10000);
    const res = await rest(server.url, "GET", "/v1/frontend/auth/acct-1", { headers: { authorization: `Bearer ${testAdminToken}` } });
    assertStoreUnavailable(res);
    const e = await connectError(connectClient(ApiTokenService, server.url).listTokens({ accountId: "acct-1" }, { headers: { authorization: `Bearer ${testAdminToken}` } }));
    assert.equal(e.code, Code.Unavailable);
    assert.deepEqual(connectDetails(e), { ...tesseraDetails("STORE_UNAVAILABLE"), retryDelaySeconds: 1 });
  });

  it("recovers without a restart when the store returns", async () => {
    await db.stop();
    await eventually("NOT_SERVING", async () => (await status()) === Status.NOT_SERVING, 10000);
    await db.resume();
    await eventually("SERVING and /readyz 200", async () => (await status()) === Status.SERVING && (await readyz()) === 200, 20000);
  });
});
