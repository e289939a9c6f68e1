// The process helper's `exited` (support/process.ts): it resolves once everything the process
// tree wrote has been read, not as soon as the first worker has exited.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildCompiledEntry, killService, startService } from "./process.js";

describe("test support: startService's exited", function () {
  this.timeout(60000);
  before(buildCompiledEntry);

  it("under TESSERA_WORKERS=2, the first worker SIGKILLed: the lines the other writes as it stops, finding it gone, have been read", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-exited-"));
    const cluster = await startService("compiled", { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir }, { listeners: 2 });
    try {
      cluster.child.kill("SIGKILL");
      assert.equal(await cluster.exited, null);
      assert.deepEqual(
        cluster
          .lines()
          .filter((l) => l.worker === 2 && (l.msg === "stopping" || l.msg === "stopped"))
          .map((l) => [l.msg, l.signal]),
        [
          ["stopping", "disconnect"],
          ["stopped", undefined],
        ],
      );
    } finally {
      await killService(cluster);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
