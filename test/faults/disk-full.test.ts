// The embedded store when its file system fills up, and when space comes back. The service runs
// as a child process on a data directory on a small tmpfs (mount needs root), and a filler file
// takes the last byte. Then every write answers 503 STORE_UNAVAILABLE with Retry-After (no 500,
// no hang, no exit), what needs no write keeps answering (a session check, an API token check,
// JWKS, liveness), and readiness says NOT_SERVING (the store answers but takes no write). The log
// passes its checkpoint threshold meanwhile, so the checkpointer thread runs against the full
// disk. Once the filler is deleted, readiness and writes come back by themselves, without a
// restart, the checkpointer thread still in use (no fallback warning), and every write
// acknowledged before or during is still there: through the API, and in the store reopened after
// the stop. Under TESSERA_WORKERS=2, one worker's write refused for the full disk makes every
// worker report NOT_SERVING (probes over fresh connections reach both), and each is ready again
// by itself once space is freed; a worker started while the disk is full (one killed, replaced)
// reports NOT_SERVING from its first probe, and one started once space is back reports SERVING.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import Database from "better-sqlite3";
import { loginKey } from "../../src/core/login-name.js";
import { hashSecret } from "../../src/core/secrets.js";
import { openStore } from "../../src/store/index.js";
import { bearer } from "../support/clients.js";
import { fill, mountTmpfs, type Tmpfs } from "../support/tmpfs.js";
import { password } from "../support/users.js";
import { faultAdminToken, faultClientId, httpRequest, sleep, startServerProcess, type HttpAnswer, type ServerProcess } from "./support.js";

/** A bound on each call: no answer within it is a hang. Not a measure of speed. */
const CALL_MS = 15000;

/** The one answer a write gets while the store cannot write: 503 STORE_UNAVAILABLE, Retry-After 1. */
function isStoreUnavailable(res: HttpAnswer): boolean {
  return (
    res.status === 503 &&
    res.headers["retry-after"] === "1" &&
    res.body?.code === "unavailable" &&
    res.body?.message === "the store is unavailable, try again shortly" &&
    res.body?.details?.[0]?.debug?.reason === "STORE_UNAVAILABLE"
  );
}

/** The followers of the leader `pid` numbered `worker` (not its other children, if any). */
function followersOf(pid: number, worker: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) !== pid) continue;
    let environ = "";
    try {
      environ = readFileSync(`/proc/${entry}/environ`, "utf8");
    } catch {
      continue;
    }
    if (environ.split("\0").includes(`TESSERA_WORKER_ID=${worker}`)) children.push(Number(entry));
  }
  return children;
}

/** Resolves with `promise`, or fails after `ms` naming `what`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** `s` killed (SIGKILL) unless gone already; resolves once it has exited. */
async function killed(s: ServerProcess | undefined): Promise<void> {
  if (!s || s.hasExited()) return;
  s.child.kill("SIGKILL");
  await s.exited;
}

const show = (res: HttpAnswer) => `${res.status} retry-after=${res.headers["retry-after"] ?? "-"} ${res.text.slice(0, 200)}`;

describe("faults: the embedded store's file system full, then space back", function () {
  this.timeout(180000);
  let tmpfs: Tmpfs | undefined;
  let mountDir: string | undefined;
  let server: ServerProcess | undefined;
  let reader: Database.Database | undefined;

  // A tmpfs of its own for each case.
  beforeEach(function () {
    tmpfs = mountTmpfs("16m", this);
    mountDir = tmpfs?.dir;
  });
  afterEach(async () => {
    if (reader?.open) reader.close();
    reader = undefined;
    await killed(server);
    server = undefined;
    tmpfs?.remove();
    tmpfs = undefined;
    mountDir = undefined;
  });

  it("answers writes 503 STORE_UNAVAILABLE while full, serves reads, reports NOT_SERVING, and takes writes again once space is freed, losing nothing", async () => {
    const dataDir = join(mountDir!, "data");
    const fillers = [join(mountDir!, "filler-1"), join(mountDir!, "filler-2")];
    server = await startServerProcess({ TESSERA_DATA_DIR: dataDir });
    const s = server;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const client = { "x-koms-clientid": faultClientId };
    const admin = bearer(faultAdminToken);
    const call = (o: { method?: string; path: string; headers?: Record<string, string>; json?: unknown }) => httpRequest(s.url, { ...o, agent, timeoutMs: CALL_MS });

    const users: string[] = []; // acknowledged sign-ups
    const tokens: string[] = []; // acknowledged API tokens
    const signUp = async () => {
      const email = `full-${randomBytes(5).toString("hex")}@example.com`;
      const res = await call({ method: "POST", path: "/user", headers: client, json: { email, password } });
      if (res.status === 201) users.push(email);
      return res;
    };
    const login = (email: string) => call({ method: "POST", path: "/session", headers: client, json: { account_type: "traditional", email, password } });
    const createToken = async () => {
      const res = await call({ method: "POST", path: "/v1/frontend/auth", headers: admin, json: { account_id: `acct-${randomBytes(4).toString("hex")}`, description: "disk full" } });
      if (res.status === 200) tokens.push(res.body.token);
      return res;
    };
    let pair: { access: string; refresh: string };
    const refresh = () => call({ method: "PUT", path: "/session", headers: { ...client, ...bearer(pair.access) }, json: { refresh_token: pair.refresh } });
    const userTokenLogin = (email: string) => call({ method: "POST", path: "/auth/login", headers: { authorization: `Basic ${Buffer.from(`${email}:${password}`).toString("base64")}` } });
    const probe = async (path: string) => {
      const res = await call({ path });
      return { status: res.status, body: res.body };
    };

    // Before: users, a session, and API tokens until the log nears its checkpoint threshold.
    for (let i = 0; i < 5; i++) assert.equal((await signUp()).status, 201);
    const started = await login(users[0]!);
    assert.equal(started.status, 200, started.text);
    pair = { access: started.body.access_token, refresh: started.body.refresh_token };
    for (let i = 0; i < 400; i++) assert.equal((await createToken()).status, 200);

    const other = await login(users[3]!); // a session no refresh below moves on
    assert.equal(other.status, 200, other.text);

    // Full: writes go on until the store meets the full disk (what the log already holds is
    // reused, so the first may still succeed: those are acknowledged, and checked at the end).
    // A reader's snapshot, held meanwhile, keeps the log from starting over in the file's space
    // it already has (a checkpoint that copied it all would let writes succeed again while the
    // disk is full): so every write below needs new space.
    reader = new Database(join(dataDir, "tessera.db"), { readonly: true });
    reader.prepare("BEGIN").run();
    reader.prepare("SELECT count(*) FROM users").get();
    fill(fillers[0]!);
    const wrong: string[] = []; // answers other than a success or 503 STORE_UNAVAILABLE
    let refused = 0;
    for (let i = 0; i < 2000 && refused === 0; i++) {
      const res = await createToken();
      if (isStoreUnavailable(res)) refused++;
      else if (res.status !== 200) wrong.push(`token while filling: ${show(res)}`);
    }
    assert.equal(refused, 1, "a write met the full disk");
    // Whatever a checkpoint or a truncated log gave back is taken too.
    fill(fillers[1]!);
    const duringFull: Record<string, string[]> = {};
    const write = async (name: string, res: Promise<HttpAnswer>) => {
      const answer = await res;
      (duringFull[name] ??= []).push(isStoreUnavailable(answer) ? "503 STORE_UNAVAILABLE" : show(answer));
    };
    for (let i = 0; i < 3; i++) {
      await write("sign-up", signUp());
      await write("login", login(users[1]!));
      await write("refresh", refresh());
      await write("API token", createToken());
      await write("user token login", userTokenLogin(users[2]!));
    }
    assert.deepEqual(duringFull, Object.fromEntries(["sign-up", "login", "refresh", "API token", "user token login"].map((k) => [k, Array(3).fill("503 STORE_UNAVAILABLE")])));
    // Each refusal is logged as README says: a warning naming SQLite's full-disk error.
    const refusals = s.problems.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === "store unavailable");
    assert.ok(refusals.length > 0, "the refusals were logged");
    assert.deepEqual(new Set(refusals.map((l) => `${l.level} ${l.error}`)), new Set(["warn embedded store unavailable (SQLITE_FULL)"]));
    // What needs no write keeps answering (an API token's last-use write fails and is only logged).
    const checked = await call({ path: "/session", headers: { ...client, ...bearer(other.body.access_token) } });
    assert.equal(checked.status, 200, checked.text);
    const authenticated = await call({ path: "/v1/api/auth", headers: bearer(tokens[0]!) });
    assert.equal(authenticated.status, 200, authenticated.text);
    const jwks = await call({ path: "/.well-known/jwks.json" });
    assert.equal(jwks.status, 200, jwks.text);
    assert.ok(jwks.body.keys.length > 0);
    // Liveness: a restart would not help. Readiness: the store takes no write.
    assert.deepEqual([await probe("/healthz"), await probe("/readyz")], [
      { status: 200, body: { status: "SERVING" } },
      { status: 503, body: { status: "NOT_SERVING" } },
    ]);

    // Space back: readiness and writes return by themselves, without a restart.
    reader.prepare("COMMIT").run();
    reader.close();
    for (const f of fillers) unlinkSync(f);
    let ready = await probe("/readyz");
    for (let i = 0; i < 50 && ready.status !== 200; i++) {
      await sleep(200);
      ready = await probe("/readyz");
    }
    assert.deepEqual(ready, { status: 200, body: { status: "SERVING" } }, "ready again once space is freed");
    const after = [await signUp(), await login(users[1]!), await refresh(), await createToken(), await userTokenLogin(users[2]!)];
    assert.deepEqual(after.map((r) => r.status), [201, 200, 200, 200, 200], after.map(show).join("\n"));
    pair = { access: after[2]!.body.access_token, refresh: after[2]!.body.refresh_token };
    // And the log is checkpointed again (by its thread: no fallback) as it grows past the threshold.
    for (let i = 0; i < 400; i++) assert.equal((await createToken()).status, 200);
    assert.equal((await refresh()).status, 200);

    assert.deepEqual(wrong, []);
    assert.equal(s.hasExited(), false, "the process never exits");
    // Nothing logged at error level, and the checkpointer thread was never given up.
    assert.deepEqual(s.problems.filter((l) => /"level":"error"|on the event loop instead/.test(l)), []);

    // Every acknowledged write is there: through the API, then in the store after the stop.
    const missing: string[] = [];
    for (const token of tokens) if ((await call({ path: "/v1/api/auth", headers: bearer(token) })).status !== 200) missing.push(`token ${token.slice(0, 8)}`);
    for (const email of users) if ((await login(email)).status !== 200) missing.push(`user ${email}`);
    agent.destroy();
    await s.stop();
    const store = await openStore({ dataDir });
    try {
      for (const token of tokens) if (!(await store.apiTokens.findByHash(hashSecret(token)))) missing.push(`token ${token.slice(0, 8)} not stored`);
      for (const email of users) if (!(await store.users.findByLogin(email, loginKey(email)))) missing.push(`user ${email} not stored`);
    } finally {
      await store.close();
    }
    assert.deepEqual(missing, [], `checked ${tokens.length} tokens and ${users.length} users`);
  });

  /**
   * The service under TESSERA_WORKERS=2 on `dataDir`, each call on a connection of its own (the
   * connections are handed to the workers in turn): `readiness(n)` is n probes' answers,
   * `bothServing()` waits until both workers have served a write, `fillUntilRefused()` fills the
   * disk (a reader's snapshot keeping the log from starting over in the space it already has) and
   * writes over one connection (so one worker) until a write is refused, `spaceBack()` frees it
   * and waits until every probe answers SERVING.
   */
  async function twoWorkers(dataDir: string, filler: string, accountId: string) {
    server = await startServerProcess({ TESSERA_DATA_DIR: dataDir, TESSERA_WORKERS: "2" });
    const s = server;
    const fresh = (o: { method?: string; path: string; headers?: Record<string, string>; json?: unknown }) => {
      const agent = new http.Agent({ keepAlive: false });
      return httpRequest(s.url, { ...o, agent, timeoutMs: CALL_MS }).finally(() => agent.destroy());
    };
    const tokenCall = { method: "POST", path: "/v1/frontend/auth", headers: bearer(faultAdminToken), json: { account_id: accountId, description: "disk full" } };
    const readiness = async (n: number) => {
      const answers: string[] = [];
      for (let i = 0; i < n; i++) {
        const res = await fresh({ path: "/readyz" });
        answers.push(`${res.status} ${res.body?.status}`);
      }
      return answers;
    };
    const bothServing = async () => {
      const served = [s.logged(/"msg":"rpc","worker":1,/), s.logged(/"msg":"rpc","worker":2,/)];
      let both = false;
      void Promise.all(served).then(() => (both = true));
      for (let i = 0; i < 100 && !both; i++) {
        assert.equal((await fresh(tokenCall)).status, 200);
        await sleep(50);
      }
      assert.ok(both, "both workers served a call");
    };
    const fillUntilRefused = async () => {
      reader = new Database(join(dataDir, "tessera.db"), { readonly: true });
      reader.prepare("BEGIN").run();
      reader.prepare("SELECT count(*) FROM users").get();
      fill(filler);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      let refused: HttpAnswer | undefined;
      for (let i = 0; i < 2000 && refused === undefined; i++) {
        const res = await httpRequest(s.url, { ...tokenCall, agent, timeoutMs: CALL_MS });
        if (res.status !== 200) refused = res;
      }
      agent.destroy();
      assert.ok(refused && isStoreUnavailable(refused), `a write met the full disk: ${refused && show(refused)}`);
    };
    const spaceBack = async () => {
      reader!.prepare("COMMIT").run();
      reader!.close();
      unlinkSync(filler);
      let probes = await readiness(20);
      for (let i = 0; i < 50 && probes.some((p) => p !== "200 SERVING"); i++) {
        await sleep(200);
        probes = await readiness(20);
      }
      assert.deepEqual(probes, Array(20).fill("200 SERVING"), "every worker ready again once space is freed");
    };
    return { s, fresh, tokenCall, readiness, bothServing, fillUntilRefused, spaceBack };
  }

  it("under TESSERA_WORKERS=2, every worker reports NOT_SERVING once one worker's write met the full disk, and every one is ready again once space is freed", async () => {
    const { s, fresh, tokenCall, readiness, bothServing, fillUntilRefused, spaceBack } = await twoWorkers(join(mountDir!, "data"), join(mountDir!, "filler"), "acct-workers");
    await bothServing();
    assert.deepEqual(await readiness(4), Array(4).fill("200 SERVING"));

    // Full: one worker's write refused; the other worker wrote nothing meanwhile.
    await fillUntilRefused();
    // Every probe, whichever worker answers it: NOT_SERVING.
    assert.deepEqual(await readiness(20), Array(20).fill("503 NOT_SERVING"));

    // Space back: every worker is ready again by itself, and writes succeed in both.
    await spaceBack();
    const writes = [];
    for (let i = 0; i < 4; i++) writes.push((await fresh(tokenCall)).status);
    assert.deepEqual(writes, [200, 200, 200, 200]);
    assert.equal(s.hasExited(), false, "the process never exits");
    assert.deepEqual(s.problems.filter((l) => /"level":"error"/.test(l)), []);
  });

  it("under TESSERA_WORKERS=2, a worker started while the disk is full reports NOT_SERVING from its first probe, and one started once space is back and a write committed reports SERVING", async () => {
    const { s, fresh, tokenCall, readiness, bothServing, fillUntilRefused, spaceBack } = await twoWorkers(join(mountDir!, "data"), join(mountDir!, "filler"), "acct-restarted");
    // Worker 2 killed, and replaced by the leader: resolves once the new one is handed connections
    // (it logs "listening" once the leader has admitted it), having served a call.
    const replaceWorker2 = async () => {
      const [pid, ...others] = followersOf(s.pid, 2);
      assert.ok(pid !== undefined && others.length === 0, `one follower: ${[pid, ...others].join(", ")}`);
      const listening = s.logged(/"msg":"listening","worker":2,/);
      process.kill(pid, "SIGKILL");
      const line = JSON.parse(await within(listening, 30000, "worker 2 replaced").catch((e: Error) => Promise.reject(new Error(`${e.message}; ${s.problems.slice(-4).join("\n")}`)))) as { pid: number };
      assert.notEqual(line.pid, pid);
      // Connections reach it (round-robin): a read that every worker answers, until the new one has.
      const served = s.logged(/"msg":"rpc","worker":2,/);
      let reached = false;
      void served.then(() => (reached = true));
      for (let i = 0; i < 20 && !reached; i++) {
        assert.equal((await fresh({ path: "/jwt/version" })).status, 200);
        await sleep(20);
      }
      assert.ok(reached, "the new worker 2 served a call");
    };

    await bothServing();
    assert.deepEqual(await readiness(4), Array(4).fill("200 SERVING"));

    // Full, as above: one worker's write refused, every worker NOT_SERVING.
    await fillUntilRefused();
    assert.deepEqual(await readiness(10), Array(10).fill("503 NOT_SERVING"));

    // A worker started while the disk is full (one that crashed, replaced) has made no write of
    // its own and heard no news: it reports NOT_SERVING from its first probe, as every other does.
    await replaceWorker2();
    assert.deepEqual(await readiness(20), Array(20).fill("503 NOT_SERVING"), "a worker started on the full disk");

    // Space back: every worker ready again, and a write commits.
    await spaceBack();
    assert.equal((await fresh(tokenCall)).status, 200);

    // A worker started now is not taken for full (no stale news): SERVING from its first probe.
    await replaceWorker2();
    assert.deepEqual(await readiness(20), Array(20).fill("200 SERVING"), "a worker started once space is back");
    const writes = [];
    for (let i = 0; i < 4; i++) writes.push((await fresh(tokenCall)).status);
    assert.deepEqual(writes, [200, 200, 200, 200]);
    assert.equal(s.hasExited(), false, "the first worker never exits");
    // At error level: only the two workers killed here.
    const errors = s.problems.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === "error");
    assert.deepEqual(errors.map((l) => [l.msg, l.worker, l.signal]), [["worker exited", 2, "SIGKILL"], ["worker exited", 2, "SIGKILL"]]);
  });
});

// A start (or a worker's) on a full disk, the database already holding keys that sign. What the
// start would write (the key ring's rotation owed to a single key from before next keys existed,
// its next key; login keys for accounts stored without one) waits for space; meanwhile the
// service answers reads (a token issued before is checked), reports NOT_SERVING and answers
// writes 503, and each such write is made once space is back, retried by itself. A first start
// (no key at all) on a full disk fails, in one line naming the full disk.
describe("faults: the embedded store's service started while its file system is full", function () {
  this.timeout(180000);
  let tmpfs: Tmpfs | undefined;
  let server: ServerProcess | undefined;

  beforeEach(function () {
    tmpfs = mountTmpfs("16m", this);
  });
  afterEach(async () => {
    await killed(server);
    server = undefined;
    tmpfs?.remove();
    tmpfs = undefined;
  });

  const client = { "x-koms-clientid": faultClientId };
  const email = "Full-Start@Example.com";
  const call = (s: ServerProcess, o: { method?: string; path: string; headers?: Record<string, string>; json?: unknown }) => {
    const agent = new http.Agent({ keepAlive: false });
    return httpRequest(s.url, { ...o, agent, timeoutMs: CALL_MS }).finally(() => agent.destroy());
  };
  const login = (s: ServerProcess, as: string) => call(s, { method: "POST", path: "/session", headers: client, json: { account_type: "traditional", email: as, password } });
  const kids = async (s: ServerProcess) => ((await call(s, { path: "/.well-known/jwks.json" })).body.keys as Array<{ kid: string }>).map((k) => k.kid).sort();

  /**
   * The service run on `dataDir` before the disk filled: a user signed up (`email`) and logged in,
   * then the process killed (its log not checkpointed). Resolves with the session's access token.
   */
  async function ranBefore(dataDir: string): Promise<string> {
    const s = await startServerProcess({ TESSERA_DATA_DIR: dataDir });
    try {
      assert.equal((await call(s, { method: "POST", path: "/user", headers: client, json: { email, password } })).status, 201);
      const started = await login(s, email);
      assert.equal(started.status, 200, started.text);
      return started.body.access_token as string;
    } finally {
      await killed(s);
    }
  }

  /**
   * `sql` run on the stopped service's database by a process then killed, so that its log is not
   * checkpointed at its close: the next start's checkpoint must grow the database file (the pages
   * of a table made and dropped), which a full disk refuses.
   */
  function edit(dataDir: string, sql: string): void {
    const growth = "CREATE TABLE growth (x BLOB); INSERT INTO growth VALUES (zeroblob(262144)); DROP TABLE growth;";
    const code = 'const db = new (require("better-sqlite3"))(process.argv[1]); db.exec(process.argv[2]); process.kill(process.pid, "SIGKILL");';
    const run = spawnSync(process.execPath, ["-e", code, join(dataDir, "tessera.db"), growth + sql], { encoding: "utf8" });
    assert.equal(run.signal, "SIGKILL", run.stderr);
  }
  // A database from before next keys existed: its one key signs, and a start promotes it and
  // publishes the next key. Accounts from before login keys: a start gives them theirs.
  const singleKey = "DELETE FROM signing_keys WHERE generation = (SELECT MAX(generation) FROM signing_keys);";
  const keyless = "UPDATE users SET login_key = NULL;";
  const checkpointOwed = /start-up checkpoint of its log met a full disk/;

  /** Reads answer, readiness says NOT_SERVING (every probe), writes are refused as on a running full store. */
  async function degraded(s: ServerProcess, access: string, probes: number): Promise<void> {
    const checked = await call(s, { path: "/session", headers: { ...client, ...bearer(access) } });
    assert.equal(checked.status, 200, checked.text);
    const answers: string[] = [];
    for (let i = 0; i < probes; i++) answers.push(`${(await call(s, { path: "/readyz" })).status}`);
    assert.deepEqual(answers, Array(probes).fill("503"));
    const signUp = await call(s, { method: "POST", path: "/user", headers: client, json: { email: `other-${randomBytes(4).toString("hex")}@example.com`, password } });
    assert.ok(isStoreUnavailable(signUp), show(signUp));
  }

  /** Once space is back: ready, and the start's writes made by themselves (the rotation: `keys` published; the login key). */
  async function caughtUp(s: ServerProcess, probes: number, keys: number): Promise<void> {
    let done = false;
    for (let i = 0; i < 100 && !done; i++) {
      await sleep(200);
      const ready = [];
      for (let j = 0; j < probes; j++) ready.push((await call(s, { path: "/readyz" })).status);
      done = ready.every((r) => r === 200) && (await kids(s)).length === keys && (await login(s, email.toLowerCase())).status === 200;
    }
    assert.ok(done, "ready, the next key published and the account's login key given once space is back");
    const fresh = await login(s, email);
    assert.equal(fresh.status, 200, fresh.text);
  }

  for (const [owed, sql, keysBefore, what] of [
    ["a key rotation (a single key from before next keys existed)", singleKey, 1, "the signing keys' start-up write (a key promoted, the next key published)"],
    ["login keys (accounts stored without one)", keyless, 2, "the login keys of accounts stored without one"],
  ] as const) {
    it(`a restart on a full disk, its log owed a checkpoint and ${owed} owed too: serves reads, NOT_SERVING, writes 503; all made once space is back`, async () => {
      const dataDir = join(tmpfs!.dir, "data");
      const access = await ranBefore(dataDir);
      edit(dataDir, sql);
      fill(join(tmpfs!.dir, "filler"));

      server = await startServerProcess({ TESSERA_DATA_DIR: dataDir }, { waitReady: false });
      const s = server;
      assert.equal((await kids(s)).length, keysBefore, "the stored keys are published");
      assert.ok(s.problems.some((l) => checkpointOwed.test(l)), "the start-up checkpoint is owed");
      await degraded(s, access, 4);

      unlinkSync(join(tmpfs!.dir, "filler"));
      await caughtUp(s, 4, 2);
      assert.equal(s.hasExited(), false);
      assert.deepEqual(s.problems.filter((l) => /"level":"error"/.test(l)), []);
      // The write owed is logged once, as a warning naming it and the refusal.
      const owedLines = s.problems.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => typeof l.msg === "string" && l.msg.includes("at start-up; the start goes on"));
      assert.deepEqual(owedLines.map((l) => [l.level, l.msg, l.error]), [
        ["warn", `${what} met a full disk at start-up; the start goes on without it, and it is made once space is back (tried every second)`, "embedded store unavailable (SQLITE_FULL)"],
      ]);
    });
  }

  it("under TESSERA_WORKERS=2, a start on a full disk owing a key rotation and login keys comes up, a worker replaced while full too; each write made once space is back", async () => {
    const dataDir = join(tmpfs!.dir, "data");
    const access = await ranBefore(dataDir);
    edit(dataDir, singleKey + keyless);
    fill(join(tmpfs!.dir, "filler"));

    server = await startServerProcess({ TESSERA_DATA_DIR: dataDir, TESSERA_WORKERS: "2" }, { waitReady: false });
    const s = server;
    assert.ok(s.problems.some((l) => checkpointOwed.test(l)), "the start-up checkpoint is owed");
    // Worker 2 up too: connections (round-robin) reach it.
    const served = s.logged(/"msg":"rpc","worker":2,/);
    let reached = false;
    void served.then(() => (reached = true));
    for (let i = 0; i < 100 && !reached; i++) {
      await call(s, { path: "/jwt/version" });
      await sleep(100);
    }
    assert.ok(reached, "worker 2 serves on the full disk");
    await degraded(s, access, 10);

    // Worker 2 killed and replaced while the disk is full: it starts too.
    const [pid] = followersOf(s.pid, 2);
    assert.ok(pid !== undefined, "worker 2 runs");
    const listening = s.logged(/"msg":"listening","worker":2,/);
    process.kill(pid, "SIGKILL");
    await within(listening, 30000, `worker 2 replaced on the full disk: ${s.problems.slice(-3).join("\n")}`);
    await degraded(s, access, 10);

    unlinkSync(join(tmpfs!.dir, "filler"));
    await caughtUp(s, 10, 2);
    await sleep(2000);
    assert.equal((await kids(s)).length, 2, "one rotation, not one per worker");
    assert.equal(s.hasExited(), false);
    const errors = s.problems.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === "error");
    assert.deepEqual(errors.map((l) => [l.msg, l.worker, l.signal]), [["worker exited", 2, "SIGKILL"]]);
  });

  it("a first start on a full disk (no key stored yet) fails, in one line naming the full disk", async () => {
    fill(join(tmpfs!.dir, "filler"));
    const failed = await startServerProcess({ TESSERA_DATA_DIR: join(tmpfs!.dir, "data") }).then(
      () => assert.fail("started"),
      (e: Error) => e.message,
    );
    assert.equal(failed, "the server exited during start-up: tessera: failed to start: embedded store unavailable (SQLITE_FULL): database or disk is full\n");
  });
});
