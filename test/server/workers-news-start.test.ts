// Under TESSERA_WORKERS, a worker still starting when another revokes a signing key serves no
// token of that key once it is ready (README, "Run it"): news that reaches it before its handlers
// are set is held, and applied (then acknowledged) once they are. The second worker here is
// preloaded with test/support/held-start.ts, which holds its start once it has read the key list,
// until the test lets it go on; the key is revoked meanwhile (only the first worker serves then).
// Each request is on a new connection: once both are ready, the first worker hands connections to
// the two in turn.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killService, request, startService, type ServiceProcess } from "../support/process.js";

const password = "correct horse battery staple";
/** Checks once both workers are ready, each on a new connection: half of them reach the second worker. */
const checks = 8;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, done: () => boolean): Promise<void> {
  for (let waited = 0; !done(); waited += 20) {
    if (waited >= 60_000) throw new Error(`waited a minute for ${what}`);
    await sleep(20);
  }
}

describe("server: TESSERA_WORKERS, a key revoked while a worker starts is revoked there once it is ready", function () {
  this.timeout(120000);
  let service: ServiceProcess | undefined;
  let dataDir: string;
  let holdDir: string;

  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), "tessera-news-start-"));
    holdDir = mkdtempSync(join(tmpdir(), "tessera-news-hold-"));
  });
  after(async () => {
    await killService(service);
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(holdDir, { recursive: true, force: true });
  });

  it("a token of the revoked key is refused by every worker, the one that was starting too", async () => {
    service = await startService(
      "sources",
      { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir, HOLD_START_WORKER: "2", HOLD_START_DIR: holdDir },
      { listeners: 1, nodeArgs: ["--import", "tsx", "--import", "./test/support/held-start.ts"] },
    );
    const { port } = service;
    await until("the second worker to read the key list", () => existsSync(join(holdDir, "held")));

    assert.equal((await request(port, "POST", "/jwt/user", { user: "held", pass: password })).status, 201);
    const issued = await request(port, "GET", `/jwt/token?user=held&pass=${encodeURIComponent(password)}`);
    assert.equal(issued.status, 200, issued.text);
    const bearer = { authorization: `Bearer ${issued.text}` };
    const { kid } = JSON.parse(Buffer.from(issued.text.split(".")[0]!, "base64url").toString()) as { kid: string };
    const revoked = await request(port, "POST", `/v1/admin/keys/${kid}:revoke`, {});
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.json.kid, kid);

    writeFileSync(join(holdDir, "release"), "");
    await until("the second worker to listen", () => service!.lines().filter((l) => l.msg === "listening").length === 2);
    const statuses: number[] = [];
    for (let i = 0; i < checks; i++) statuses.push((await request(port, "GET", "/jwt/check", undefined, bearer)).status);
    assert.deepEqual(statuses, Array(checks).fill(400));
    const servedBy = service.lines().filter((l) => l.msg === "rpc" && l.procedure === "tessera.jwt.v1.JwtService/Check").map((l) => l.worker);
    assert.ok(servedBy.includes(2), `the second worker served some of the checks: ${JSON.stringify(servedBy)}`);
  });
});
