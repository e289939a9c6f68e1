// A stopped Tessera lets go of itself: after `close()` nothing process-wide still reaches the
// server, its core or its store (an embedder or a test runner that starts and stops Tessera
// many times in one process must not keep every one of them, private signing keys included).
// Checked in a child process of its own, with a WeakRef to the running Tessera, which a garbage
// collection must clear once it is closed and forgotten.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

// A child's script: `once()` (defined by `start`) starts and stops one server and returns a
// WeakRef to its Tessera object with the server's answers; then reports those answers and
// whether the object is still reachable after a full collection.
const reported = (start: string) => `
const { startTestServer } = await import("./test/support/server.ts");
const tick = () => new Promise((r) => setTimeout(r, 20));
${start}
const { ref, answers } = await once();
for (let i = 0; i < 5 && ref.deref() !== undefined; i++) {
  await tick();
  globalThis.gc();
}
process.stdout.write(JSON.stringify({ answers, kept: ref.deref() !== undefined }));
`;

// One call made, one scrape of /metrics when on.
const child = (metrics: "on" | "off") =>
  reported(`
async function once() {
  const server = await startTestServer({ env: { TESSERA_LOG_LEVEL: "error", TESSERA_METRICS: "${metrics}" } });
  const ref = new WeakRef(server.tessera);
  const answers = [await fetch(server.url + "/jwt/version").then((r) => r.status)];
  if ("${metrics}" === "on") answers.push(await fetch(server.url + "/metrics").then((r) => r.status));
  await server.close();
  return { ref, answers };
}`);

// A user signed up, and logged in with the right password while the store fails the login's
// release (503: the release is owed, store/ports/owed-releases.ts).
const owing = reported(`
const { StoreUnavailableError } = await import("./src/store/ports/errors.ts");
const headers = { "content-type": "application/json", "x-koms-clientid": "test-client" };
async function once() {
  const server = await startTestServer({ env: { TESSERA_LOG_LEVEL: "error" } });
  const ref = new WeakRef(server.tessera);
  const post = (path, body) => fetch(server.url + path, { method: "POST", headers, body: JSON.stringify(body) }).then((r) => r.status);
  const email = "owing@example.com";
  const password = "correct horse battery staple";
  const answers = [await post("/user", { email, password })];
  server.tessera.store.loginAttempts.release = () => Promise.reject(new StoreUnavailableError("the store went away"));
  answers.push(await post("/session", { account_type: "traditional", email, password }));
  await server.close();
  return { ref, answers };
}`);

describe("server: a stopped Tessera is not kept", function () {
  this.timeout(60_000);

  for (const metrics of ["on", "off"] as const) {
    it(`after close() (TESSERA_METRICS=${metrics}), nothing still reaches it`, async () => {
      const { stdout } = await run(process.execPath, ["--expose-gc", "--import", "tsx", "--input-type=module", "-e", child(metrics)], { cwd: process.cwd() });
      const result = JSON.parse(stdout) as { answers: number[]; kept: boolean };
      assert.deepEqual(result.answers, metrics === "on" ? [200, 200] : [200], "the server answered");
      assert.equal(result.kept, false, "the closed Tessera is still reachable");
    });
  }

  it("after close() with a login's release owed to the store, nothing still reaches it", async () => {
    const { stdout } = await run(process.execPath, ["--expose-gc", "--import", "tsx", "--input-type=module", "-e", owing], { cwd: process.cwd() });
    const result = JSON.parse(stdout) as { answers: number[]; kept: boolean };
    assert.deepEqual(result.answers, [201, 503], "the sign-up made, the login answered 503");
    assert.equal(result.kept, false, "the closed Tessera is still reachable");
  });
});
