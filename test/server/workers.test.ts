// TESSERA_WORKERS: several worker processes on the one port, over one embedded store. Every
// worker serves; writes from all of them land (SQLite across processes: WAL, busy timeout,
// IMMEDIATE write transactions); housekeeping runs in one worker only; SIGTERM drains them all.
// From the sources and compiled (a primary from primary.bundle.cjs, workers from main.bundle.cjs).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killService, request, startService, type Entry, type ServiceProcess } from "../support/process.js";

for (const entry of ["sources", "compiled"] as Entry[]) {
  describe(`server: TESSERA_WORKERS worker processes on one port (${entry})`, function () {
    this.timeout(60000);
    let dataDir: string;
    let cluster: ServiceProcess | undefined;
    before(async () => {
      dataDir = mkdtempSync(join(tmpdir(), "tessera-workers-"));
      cluster = await startService(entry, { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir, TESSERA_SHUTDOWN_GRACE_SECONDS: "5" }, { listeners: 2 });
    });
    after(async () => {
      await killService(cluster);
      rmSync(dataDir, { recursive: true, force: true });
    });

    it("starts two workers; exactly one of them runs housekeeping", () => {
      const listening = cluster!.lines().filter((l) => l.msg === "listening");
      assert.deepEqual(listening.map((l) => l.worker).sort(), [1, 2]);
      assert.deepEqual(listening.filter((l) => l.housekeeping === true).map((l) => l.worker), [1]);
    });

    it("every worker serves, and concurrent writes from both all land in the one store", async () => {
      const account = `acct-${process.pid}`;
      const n = 60;
      const created = await Promise.all(
        Array.from({ length: n }, (_, i) => request(cluster!.port, "POST", "/v1/frontend/auth", { account_id: account, description: `token ${i}` })),
      );
      assert.deepEqual(created.map((r) => r.status), Array(n).fill(200));
      const served = new Set(
        cluster!
          .lines()
          .filter((l) => l.msg === "rpc" && l.procedure === "tessera.apitoken.v1.ApiTokenService/CreateToken")
          .map((l) => l.worker),
      );
      assert.deepEqual([...served].sort(), [1, 2]);
      const listed = await request(cluster!.port, "GET", `/v1/frontend/auth/${account}`);
      assert.equal(listed.status, 200);
      assert.equal(listed.json.tokens.length, n);
    });

    it("SIGTERM stops every worker gracefully and the primary exits 0", async () => {
      cluster!.child.kill("SIGTERM");
      assert.equal(await cluster!.exited, 0);
      const stopped = cluster!.lines().filter((l) => l.msg === "stopped");
      assert.deepEqual(stopped.map((l) => l.worker ?? "primary").sort(), [1, 2, "primary"]);
    });
  });
}
