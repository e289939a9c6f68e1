// Fault 3: SIGTERM while the server is under load (REST keep-alive, gRPC over h2c, production-cost
// logins, writes, and a request whose body is still arriving). Every call that was in flight
// when the signal came finishes with its normal answer; new connections are refused; a call
// that starts after the signal is either answered normally or refused at the connection level
// (never a 5xx or a wrong answer); the process exits 0 within TESSERA_SHUTDOWN_GRACE_SECONDS;
// and every write acknowledged before the exit is in the store when it is opened again.
import assert from "node:assert/strict";
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { ApiTokenService } from "../../gen/tessera/apitoken/v1/api_token_pb.js";
import { hashSecret } from "../../src/core/secrets.js";
import { openStore } from "../../src/store/index.js";
import { bearer, GrpcJsClient } from "../support/clients.js";
import { callInFlight, connectionRefused } from "../support/net.js";
import { pollUntil } from "../support/poll.js";
import { password } from "../support/users.js";
import { faultAdminToken, faultClientId, httpRequest, sleep, startServerProcess, type ServerProcess } from "./support.js";

const GRACE_SECONDS = 5;
/** A call started at least this long before the signal has reached the server: it must finish. */
const IN_FLIGHT_MARGIN_MS = 25;

interface CallRecord {
  op: string;
  start: number;
  end: number;
  /** "ok", "refused" (connection-level: refused, reset, closed before an answer; "refused (fresh
   * connection)" when the connection was opened for this call) or the failure. */
  outcome: string;
}

const connectionLevel = /ECONNREFUSED|ECONNRESET|EPIPE|socket hang up|other side closed/;

describe("faults: SIGTERM under load", function () {
  this.timeout(60000);
  let dataDir: string;
  let server: ServerProcess | undefined;

  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), "tessera-sigterm-"));
  });
  after(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("finishes in-flight calls, refuses new connections and exits 0 within the grace period, losing nothing acknowledged", async () => {
    // Production argon2 parameters (the defaults): logins take real time, so some are in flight.
    server = await startServerProcess({
      TESSERA_DATA_DIR: dataDir,
      TESSERA_SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS),
      TESSERA_ARGON2_MEMORY_KIB: "19456",
      TESSERA_ARGON2_ITERATIONS: "2",
      TESSERA_LOGIN_PROTECTION: "false",
    });
    const { url, port } = server;
    const admin = bearer(faultAdminToken);
    const email = `sigterm-${randomBytes(4).toString("hex")}@example.com`;
        assert.equal((await httpRequest(url, { method: "POST", path: "/user", headers: { "x-koms-clientid": faultClientId }, json: { email, password } })).status, 201);
    const created = await httpRequest(url, { method: "POST", path: "/v1/frontend/auth", headers: admin, json: { account_id: "acct-sigterm", description: "load" } });
    assert.equal(created.status, 200);
    const apiToken = created.body.token as string;

    const calls: CallRecord[] = [];
    const acknowledged: string[] = []; // API token secrets whose creation was answered 200
    let exited = false;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const grpc = new GrpcJsClient(ApiTokenService, url);

    const timed = async (op: string, fn: () => Promise<string>) => {
      const start = Date.now();
      let outcome: string;
      try {
        outcome = await fn();
      } catch (e) {
        const message = e instanceof Error ? `${e.message} ${(e as { code?: string }).code ?? ""}` : String(e);
        // A reset of a connection opened just before the signal: the kernel had completed the
        // handshake but the server never accepted it (it was still in the listen backlog when the
        // listener closed). That is a refused new connection, not a lost in-flight call.
        const fresh = (e as { reused?: boolean }).reused === false;
        outcome = connectionLevel.test(message) ? (fresh ? "refused (fresh connection)" : "refused") : `error: ${message}`;
      }
      calls.push({ op, start, end: Date.now(), outcome });
      if (outcome.startsWith("refused")) await sleep(10);
    };
    const restOk = (op: string, o: Parameters<typeof httpRequest>[1], onOk?: (body: any) => void) =>
      timed(op, async () => {
        const res = await httpRequest(url, { agent, timeoutMs: 15000, ...o });
        if (res.status !== 200 && res.status !== 201) return `HTTP ${res.status} ${res.text.slice(0, 120)}`;
        onOk?.(res.body);
        return "ok";
      });
    const loop = (fn: () => Promise<void>) => async () => {
      while (!exited) await fn();
    };
    const workers = [
      ...Array.from({ length: 4 }, () => loop(() => restOk("GET /v1/api/auth", { path: "/v1/api/auth", headers: bearer(apiToken) }))),
      ...Array.from({ length: 4 }, () =>
        loop(() =>
          timed("gRPC Authenticate", async () => {
            const r = await grpc.call("Authenticate", {}, bearer(apiToken));
            if (r.message) return "ok";
            // A call the client could not even send (the listener is gone) is refused, not failed.
            if (r.error!.code === GrpcStatus.UNAVAILABLE && /ECONNREFUSED|No connection established|GOAWAY|Connection dropped/i.test(r.error!.details)) return "refused";
            return `gRPC ${GrpcStatus[r.error!.code]} ${r.error!.details}`;
          }),
        ),
      ),
      ...Array.from({ length: 2 }, () =>
        loop(() => restOk("POST /session (argon2)", { method: "POST", path: "/session", headers: { "x-koms-clientid": faultClientId }, json: { account_type: "traditional", email, password } })),
      ),
      ...Array.from({ length: 2 }, () =>
        loop(() => {
          const accountId = `acct-${randomBytes(4).toString("hex")}`;
          return restOk("POST /v1/frontend/auth", { method: "POST", path: "/v1/frontend/auth", headers: admin, json: { account_id: accountId, description: "written during shutdown" } }, (b) =>
            acknowledged.push(b.token),
          );
        }),
      ),
    ];
    const running = Promise.all(workers.map((w) => w()));

    // The load runs until more than 100 calls were answered (at least 1.5 s): a fixed 1.5 s left
    // too few answered on a loaded machine for the assertion below that the load ran.
    await sleep(1500);
    await pollUntil("more than 100 calls answered before the signal", () => calls.filter((c) => c.outcome === "ok").length > 100, { limitMs: 30_000, intervalMs: 50 });
    // A request whose body is still arriving when the signal comes: in flight, must be answered.
    const slowBody = JSON.stringify({ account_id: "acct-slow", description: "slow body" });
    const slow = callInFlight(port, "/v1/frontend/auth", slowBody, admin, 10);
    setTimeout(slow.finish, 600);
    await sleep(200);
    // A burst of logins just before the signal: argon2 at production cost queues them on the
    // thread pool, so they are surely in flight when it comes.
    // A burst of logins just before the signal, on connections already open and idle: argon2 at
    // production cost queues them on the thread pool, so they are surely in flight when it comes.
    const burstAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    await Promise.all(Array.from({ length: 8 }, () => httpRequest(url, { agent: burstAgent, path: "/healthz" })));
    const burst = Array.from({ length: 8 }, () =>
      restOk("POST /session (burst)", { agent: burstAgent, method: "POST", path: "/session", headers: { "x-koms-clientid": faultClientId }, json: { account_type: "traditional", email, password } }),
    );
    await sleep(IN_FLIGHT_MARGIN_MS + 5);

    const signalAt = Date.now();
    const stopping = server.logged(/"msg":"stopping"/);
    server.child.kill("SIGTERM");
    // While the server drains (from its "stopping" line on): new connections are refused.
    const refusals: boolean[] = [];
    const probing = (async () => {
      await stopping;
      await sleep(20);
      while (!server!.hasExited()) {
        refusals.push(await connectionRefused(port));
        await sleep(50);
      }
    })();
    const exit = await server.exited;
    const exitMs = Date.now() - signalAt;
    exited = true;
    await probing;
    await running;
    await Promise.all(burst);
    grpc.close();
    agent.destroy();
    const slowAnswer = await slow.answer;

    const inFlight = calls.filter((c) => c.start <= signalAt - IN_FLIGHT_MARGIN_MS && c.end >= signalAt);
    const after = calls.filter((c) => c.start >= signalAt);
    const byOutcome = (cs: CallRecord[]) => cs.reduce<Record<string, number>>((m, c) => ((m[c.outcome.slice(0, 40)] = (m[c.outcome.slice(0, 40)] ?? 0) + 1), m), {});
    // What happened, for any assertion below that fails.
    const figures = `exit ${JSON.stringify(exit)} after ${exitMs} ms (grace ${GRACE_SECONDS} s); calls ${calls.length}; in flight at the signal ${inFlight.length} ${JSON.stringify(byOutcome(inFlight))}; started after ${after.length} ${JSON.stringify(byOutcome(after))}; refused probes ${refusals.filter(Boolean).length}/${refusals.length}; slow body ${slowAnswer.status}`;

    assert.equal(exit.code, 0, `exit code 0 (got ${JSON.stringify(exit)}): ${server.stderr()}`);
    assert.ok(exitMs < GRACE_SECONDS * 1000, `exited within the grace period: ${figures}`);
    assert.ok(calls.filter((c) => c.end < signalAt && c.outcome === "ok").length > 100, `the load ran before the signal: ${figures}`);
    assert.ok(inFlight.length >= 4, `calls were in flight at the signal: ${figures}`);
    assert.deepEqual(inFlight.filter((c) => c.outcome !== "ok" && c.outcome !== "refused (fresh connection)").map((c) => `${c.op}: ${c.outcome}`), [], "every in-flight call finished with its answer");
    assert.deepEqual(
      calls.filter((c) => c.outcome !== "ok" && !c.outcome.startsWith("refused")).map((c) => `${c.op} (+${c.start - signalAt} ms): ${c.outcome}`),
      [],
      "no call got a wrong answer (only success or a refused connection)",
    );
    assert.ok(refusals.length > 0 && refusals.every(Boolean), `new connections are refused while draining (${refusals.filter(Boolean).length}/${refusals.length})`);
    assert.equal(slowAnswer.status, 200, `the request whose body was arriving got its answer: ${slowAnswer.text}`);
    acknowledged.push(JSON.parse(slowAnswer.text).token);

    // Everything acknowledged is in the store after the exit.
    const store = await openStore({ dataDir });
    try {
      const missing: string[] = [];
      for (const token of acknowledged) if (!(await store.apiTokens.findByHash(hashSecret(token)))) missing.push(token.slice(0, 6));
      assert.deepEqual(missing, [], `all ${acknowledged.length} acknowledged API tokens are stored`);
    } finally {
      await store.close();
    }
  });
});
