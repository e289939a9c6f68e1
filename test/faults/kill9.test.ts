// Fault 4: kill -9 of the service on the embedded store (SQLite, WAL) in the middle of a write
// load (API token creation and user sign-ups), three times over, restarting on the same
// TESSERA_DATA_DIR each time: the store opens, and every write the service acknowledged before
// it died is there — through the API (the tokens authenticate, the users log in) and the store.
import assert from "node:assert/strict";
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { hashSecret } from "../../src/core/secrets.js";
import { openStore } from "../../src/store/index.js";
import { bearer } from "../support/clients.js";
import { password } from "../support/users.js";
import { faultAdminToken, faultClientId, httpRequest, sleep, startServerProcess, type ServerProcess } from "./support.js";
import { loginKey } from "../../src/core/login-name.js";

const ROUNDS = 3;

describe("faults: kill -9 on the embedded store under write load", function () {
  this.timeout(60000);
  let dataDir: string;
  let server: ServerProcess | undefined;

  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), "tessera-kill9-"));
  });
  after(async () => {
    if (server && !server.hasExited()) server.child.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("reopens the store after each kill with every acknowledged write present", async () => {
    const env = { TESSERA_DATA_DIR: dataDir };
    const tokens: string[] = []; // acknowledged API token secrets
    const users: string[] = []; // acknowledged sign-ups (emails)
    let inDoubt = 0; // calls cut off by the kill: no answer, so no promise either way
    const wrongAnswers: string[] = []; // an answer other than success while the server was up
    const figures: string[] = [];

    for (let round = 1; round <= ROUNDS; round++) {
      server = await startServerProcess(env);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
      let killed = false;
      const worker = (write: () => Promise<void>) => async () => {
        while (!killed) {
          try {
            await write();
          } catch (e) {
            if (e instanceof assert.AssertionError) wrongAnswers.push(e.message);
            else inDoubt++;
          }
        }
      };
      const createToken = async () => {
        const res = await httpRequest(server!.url, { agent, method: "POST", path: "/v1/frontend/auth", headers: bearer(faultAdminToken), json: { account_id: `acct-${randomBytes(4).toString("hex")}`, description: "kill -9" } });
        assert.equal(res.status, 200, res.text);
        tokens.push(res.body.token);
      };
      const signUp = async () => {
        const email = `kill9-${randomBytes(5).toString("hex")}@example.com`;
        const res = await httpRequest(server!.url, { agent, method: "POST", path: "/user", headers: { "x-koms-clientid": faultClientId }, json: { email, password } });
        assert.equal(res.status, 201, res.text);
        users.push(email);
      };
      const before = { tokens: tokens.length, users: users.length };
      const running = Promise.all([...Array.from({ length: 6 }, () => worker(createToken)), ...Array.from({ length: 2 }, () => worker(signUp))].map((w) => w()));
      await sleep(1000 + Math.floor(Math.random() * 500));
      server.child.kill("SIGKILL");
      const exit = await server.exited;
      killed = true;
      await running;
      agent.destroy();
      assert.equal(exit.signal, "SIGKILL");
      figures.push(`round ${round}: +${tokens.length - before.tokens} tokens, +${users.length - before.users} users acknowledged`);
    }
    assert.deepEqual(wrongAnswers.slice(0, 5), [], "every answer before the kill was a success");
    assert.ok(tokens.length > 100 && users.length > 10, `the load wrote: ${figures.join("; ")}`);

    // Restart on the same directory: the store opens and every acknowledged write is there.
    server = await startServerProcess(env);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const problems: string[] = [];
    try {
      let i = 0;
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (i < tokens.length) {
          const token = tokens[i++];
          const res = await httpRequest(server!.url, { agent, path: "/v1/api/auth", headers: bearer(token) });
          if (res.status !== 200) problems.push(`token ${token.slice(0, 6)}…: ${res.status}`);
        }
      }));
      for (const email of users) {
        const res = await httpRequest(server.url, { agent, method: "POST", path: "/session", headers: { "x-koms-clientid": faultClientId }, json: { account_type: "traditional", email, password } });
        if (res.status !== 200) problems.push(`user ${email}: login ${res.status}`);
      }
    } finally {
      agent.destroy();
      await server.stop();
    }
    // And the store itself, opened directly after a clean stop.
    const store = await openStore({ dataDir });
    try {
      for (const token of tokens) if (!(await store.apiTokens.findByHash(hashSecret(token)))) problems.push(`token ${token.slice(0, 6)}… not stored`);
      for (const email of users) if (!(await store.users.findByLogin(email, loginKey(email)))) problems.push(`user ${email} not stored`);
    } finally {
      await store.close();
    }
    assert.deepEqual(problems, [], `every acknowledged write survived kill -9 (${figures.join("; ")}; ${inDoubt} calls cut off by the kills; checked ${tokens.length} tokens and ${users.length} users)`);
  });
});
