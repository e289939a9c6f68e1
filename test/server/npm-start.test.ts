// `npm start` under a supervisor: npm forwards SIGTERM (and SIGINT) to the process its start
// script runs. That process must be the service itself, which stops gracefully; a shell between
// them (sh -c "node ...") dies of the signal and leaves the service running without a parent.
// The project's own start script is run by npm, on the build of the current sources.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "../../src/project-files.js";
import { compiledEntry } from "../support/process.js";
import { testAdminToken } from "../support/server.js";

function health(port: number): Promise<number | "refused"> {
  return new Promise((resolve) => {
    http
      .get({ host: "127.0.0.1", port, path: "/healthz", agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on("error", () => resolve("refused"));
  });
}

describe("server: npm start passes a supervisor's SIGTERM to the service", function () {
  this.timeout(90000);

  it("SIGTERM to npm: the service logs its graceful stop, npm exits 0 and nothing answers on the port", async () => {
    const script = (JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as { scripts: { start: string } }).scripts.start;
    assert.match(script, /dist\/src\/start\.cjs/);
    const dir = mkdtempSync(join(tmpdir(), "tessera-npm-start-"));
    let group: number | undefined;
    try {
      // The same script, naming the test build's entry instead of dist/'s.
      writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "npm-start-probe", private: true, scripts: { start: script.replace("dist/src/start.cjs", await compiledEntry()) } }));
      const npm = spawn("npm", ["start", "--silent"], {
        cwd: dir,
        env: {
          ...process.env,
          MONGODB_URI: "",
          HOST: "127.0.0.1",
          PORT: "0",
          TESSERA_WORKERS: "1",
          TESSERA_DATA_DIR: join(dir, "data"),
          TESSERA_LOG_LEVEL: "info",
          TESSERA_ADMIN_TOKEN: testAdminToken,
          TESSERA_CLIENT_IDS: "test-client",
          TESSERA_ARGON2_MEMORY_KIB: "1024",
          TESSERA_ARGON2_ITERATIONS: "1",
        },
        stdio: ["ignore", "pipe", "pipe"],
        // Its own process group, so that whatever this test leaves running can be ended at once.
        detached: true,
      });
      group = npm.pid;
      let out = "";
      npm.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
      npm.stderr!.on("data", (chunk: Buffer) => (out += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => npm.once("exit", (code) => resolve(code)));
      const messages = () => out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { msg: string; url?: string });
      let port = 0;
      for (let i = 0; i < 1500 && port === 0; i++) {
        const listening = messages().find((m) => m.msg === "listening");
        if (listening) port = Number(/:(\d+)$/.exec(listening.url!)![1]);
        else await new Promise((r) => setTimeout(r, 20));
      }
      assert.notEqual(port, 0, `never listening: ${out}`);
      assert.equal(await health(port), 200);

      npm.kill("SIGTERM"); // npm alone, as a supervisor signals the process it started
      assert.equal(await exited, 0, out);
      assert.deepEqual(
        messages().filter((m) => m.msg === "stopping" || m.msg === "stopped").map((m) => m.msg),
        ["stopping", "stopped"],
        out,
      );
      assert.equal(await health(port), "refused");
    } finally {
      // After a failure: npm, and a service it left without a parent, are still in the group.
      if (group !== undefined) {
        try {
          process.kill(-group, "SIGKILL");
        } catch {
          // none left
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("npm run in the project reads its .npmrc: the update notifier is off, whatever the user's own configuration", () => {
    // npm's update notifier, on by default, asks the registry for npm's latest version once a
    // week (at every start of a fresh container) before the start script runs: the project's
    // .npmrc turns it off. Asked of npm with an empty user configuration and none of the npm_config_
    // variables an npm running this test passes down (they would win over the project's file).
    const dir = mkdtempSync(join(tmpdir(), "tessera-npmrc-"));
    try {
      const userconfig = join(dir, "npmrc");
      writeFileSync(userconfig, "");
      const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_config_/i.test(name)));
      const got = execFileSync("npm", ["config", "get", "update-notifier"], { cwd: projectRoot, env: { ...env, NPM_CONFIG_USERCONFIG: userconfig }, encoding: "utf8" });
      assert.equal(got.trim(), "false");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
