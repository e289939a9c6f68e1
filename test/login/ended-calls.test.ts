// A login waiting for a hasher whose call ends meanwhile (its client cancels it, resets its
// HTTP/2 stream, closes its HTTP/1.1 connection, or its deadline passes: test/core/hash-pool.test.ts
// holds that case, whose timing a server cannot) is not hashed: nobody
// will read the answer, and every hash run for nobody is one a live caller waits behind (or is
// refused for: its place in the queue, TESSERA_HASH_QUEUE_LIMIT, was held by a call that had
// ended). Counted as Prometheus counts hashes that got a hasher: the samples of
// tessera_hasher_wait_seconds.
import assert from "node:assert/strict";
import { Code } from "@connectrpc/connect";
import { SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import { connectClient, connectError, connectGrpcClient, rest } from "../support/clients.js";
import { heldArgon2 } from "../support/held-argon2.js";
import { histogramCount, scrape, value } from "../support/metrics.js";
import { pollUntil } from "../support/poll.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { password, uniqueEmail } from "../support/users.js";

const clientId = { "x-koms-clientid": testClientId };
const login = (email: string) => ({ accountType: "traditional", email, password });

/** Polls /metrics until `done` holds (generous: the machine is shared). */
async function until(server: TestServer, what: string, done: (m: Awaited<ReturnType<typeof scrape>>) => boolean): Promise<void> {
  await pollUntil(what, async () => done(await scrape(`${server.url}/metrics`)), { limitMs: 60_000, intervalMs: 20 });
}

for (const store of storesUnderTest()) {
  describe(`logins whose call ended while they waited for a hasher (${store})`, function () {
    this.timeout(120_000);
    let server: TestServer;
    before(async () => {
      server = await startTestServer({
        store,
        env: {
          // One hash at a time: the calls sent after the first wait in the queue while its
          // password check runs (held by the test until they have ended).
          TESSERA_HASH_CONCURRENCY: "1",
          TESSERA_HASH_QUEUE_LIMIT: "16",
        },
      });
    });
    after(() => server?.close());

    it("cancelled by their clients (HTTP/1.1 and HTTP/2), they leave the queue at once and are never hashed; the first login, still waited for, is", async () => {
      const hashedBefore = histogramCount(await scrape(`${server.url}/metrics`), "tessera_hasher_wait_seconds");
      // The first login (a made-up account: one verification of the dummy hash) takes the hasher
      // and keeps it: its verification is held until the others have ended.
      const verify = heldArgon2("verify");
      let firstAnswered = false;
      let first: ReturnType<typeof rest>;
      try {
        first = rest(server.url, "POST", "/session", {
          json: { account_type: "traditional", email: uniqueEmail("first"), password },
          headers: clientId,
        }).finally(() => (firstAnswered = true));
        await until(server, "the first login hashes", (m) => value(m, "tessera_hasher_in_use") === 1);
        await verify.started();

        // Three calls queue behind it and are then cancelled by their clients: Connect over
        // HTTP/1.1 (the connection closed), Connect over HTTP/2 and gRPC (RST_STREAM).
        const clients = [
          connectClient(SessionService, server.url),
          connectClient(SessionService, server.url, { http2: true }),
          connectGrpcClient(SessionService, server.url),
        ];
        const aborts = clients.map(() => new AbortController());
        const cancelled = clients.map((c, i) => connectError(c.createSession(login(uniqueEmail("cancelled")), { headers: clientId, signal: aborts[i]!.signal })));
        await until(server, "three logins wait for the hasher", (m) => value(m, "tessera_hasher_queue_depth") === 3);
        aborts.forEach((a) => a.abort());
        for (const e of await Promise.all(cancelled)) assert.equal(e.code, Code.Canceled);
        // They left the queue as they ended: its places are free for others.
        await until(server, "the queue is empty", (m) => value(m, "tessera_hasher_queue_depth") === 0);
        assert.equal(firstAnswered, false, "the first login was still hashing when the others had ended (else this test shows nothing)");
      } finally {
        verify.restore();
      }
      // None of them was verified: only the first login's check ran.
      assert.equal(verify.calls.length, 1, "password checks run");

      const answer = await first;
      assert.equal(answer.status, 401, answer.text);
      await until(server, "the hasher is free and nothing waits", (m) => value(m, "tessera_hasher_in_use") === 0 && value(m, "tessera_hasher_queue_depth") === 0);
      const hashed = histogramCount(await scrape(`${server.url}/metrics`), "tessera_hasher_wait_seconds") - hashedBefore;
      assert.equal(hashed, 1, "only the first login got a hasher");

      // Counted, and audited, as cancelled: not as a store or server error.
      const m = await scrape(`${server.url}/metrics`);
      assert.equal(value(m, "tessera_logins_total", { api: "session", outcome: "canceled" }), 3);
      assert.equal(value(m, "tessera_logins_total", { api: "session", outcome: "error" }), 0);

      // Ending a call is no server failure, and no line names the password.
      assert.deepEqual(server.logs.filter((l) => /"level":"error"|unexpected/.test(l) || l.includes(password)), []);

      // The hasher serves the next login at once.
      const next = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email: uniqueEmail("next"), password }, headers: clientId });
      assert.equal(next.status, 401, next.text);
    });
  });
}
