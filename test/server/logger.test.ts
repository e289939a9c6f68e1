// The log line's shape: one JSON object per line, its keys in a fixed order (time, level, msg,
// the logger's base fields, the call's request id and trace ids, then the caller's fields), a
// field named like a secret redacted, an error as {name, message}, levels below the minimum
// dropped.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { runInCall } from "../../src/call-scope.js";
import { createLogger } from "../../src/logger.js";

describe("logger: the line", () => {
  it("keys in order: time, level, msg, base, requestId, trace_id, span_id, then the fields (redacted)", () => {
    const lines: string[] = [];
    const logger = createLogger("info", (l) => lines.push(l), { worker: 2 });
    runInCall({ requestId: "r-1", traceId: "a".repeat(32), spanId: "b".repeat(16) }, () =>
      logger.info("rpc", { procedure: "p/M", password: "hunter2", tokenLink: "link", failure: new TypeError("bad"), msg: "again" }),
    );
    assert.equal(lines.length, 1);
    assert.ok(lines[0]!.endsWith("\n"));
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(entry), ["time", "level", "msg", "worker", "requestId", "trace_id", "span_id", "procedure", "password", "tokenLink", "failure"]);
    assert.deepEqual(
      { ...entry, time: undefined },
      {
        time: undefined,
        level: "info",
        msg: "again",
        worker: 2,
        requestId: "r-1",
        trace_id: "a".repeat(32),
        span_id: "b".repeat(16),
        procedure: "p/M",
        password: "[redacted]",
        tokenLink: "link",
        failure: { name: "TypeError", message: "bad" },
      },
    );
    assert.ok(!Number.isNaN(Date.parse(entry.time as string)));
  });

  it("outside a call: no request or trace ids; below the level: nothing", () => {
    const lines: string[] = [];
    const logger = createLogger("warn", (l) => lines.push(l));
    logger.info("dropped");
    logger.warn("kept", { authorization: "Bearer x" });
    assert.equal(lines.length, 1);
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(entry), ["time", "level", "msg", "authorization"]);
    assert.equal(entry.authorization, "[redacted]");
  });

  it("a number under a name like a secret's is kept (a count: housekeeping's refreshTokens), any other value redacted", () => {
    const lines: string[] = [];
    createLogger("info", (l) => lines.push(l)).info("housekeeping", { refreshTokens: 3, userTokens: 0, token: "tsr_x", passwordHash: ["$argon2id$"], secret: true });
    assert.deepEqual(JSON.parse(lines[0]!), {
      ...JSON.parse(lines[0]!),
      refreshTokens: 3,
      userTokens: 0,
      token: "[redacted]",
      passwordHash: "[redacted]",
      secret: "[redacted]",
    });
  });
});

describe("logger: stdout", () => {
  it("a write holds at most 4096 bytes (PIPE_BUF: atomic on a pipe the workers share), counted in bytes, not characters", async () => {
    const writes: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => (writes.push(chunk), true)) as typeof process.stdout.write;
    try {
      const logger = createLogger("info");
      // About 1,100 bytes but 420 characters a line: ten lines are 4,200 characters, 11,000 bytes.
      for (let i = 0; i < 10; i++) logger.info("audit", { login: "\u6f22".repeat(350), n: i });
      await new Promise((r) => setImmediate(r));
    } finally {
      process.stdout.write = write;
    }
    const lines = writes.join("").split("\n").filter((l) => l.startsWith('{"')).map((l) => JSON.parse(l) as { msg: string; n: number }).filter((l) => l.msg === "audit");
    assert.deepEqual(lines.map((l) => l.n), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const w of writes) assert.ok(Buffer.byteLength(w) <= 4096, `a write of ${Buffer.byteLength(w)} bytes`);
  });

  it("a reader that stops reading leaves at most 16 MiB of lines waiting in memory: the lines past it are dropped, and their count logged once it reads again", async function () {
    this.timeout(60_000);
    const total = 40_000; // about 40 MB of lines
    const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "fixtures", "stalled-log-reader.ts"), String(total)], {
      stdio: ["ignore", "pipe", "inherit", "ipc"],
    });
    // Ended in any case: a child left waiting for its reader would outlive the test.
    try {
      const out = child.stdout!;
      out.pause();
      const { waiting } = await new Promise<{ waiting: number }>((resolve) => child.once("message", (m) => resolve(m as { waiting: number })));
      // 16 MiB, and the one batch (at most 4096 bytes) written as it was reached.
      assert.ok(waiting <= 16 * 1024 * 1024 + 4096, `${waiting} bytes of lines waiting`);
      out.setEncoding("utf8");
      let text = "";
      out.on("data", (chunk: string) => (text += chunk));
      out.resume();
      await new Promise((resolve) => child.once("close", resolve));
      const lines = text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { msg: string; level: string; lines?: number });
      const written = lines.filter((l) => l.msg === "filler").length;
      const dropped = lines.filter((l) => l.msg !== "filler");
      assert.deepEqual(dropped, [{ ...dropped[0], level: "error", msg: "log lines dropped: standard output was not read", lines: total - written }]);
      assert.ok(written > 0 && written < total, `${written} lines written`);
    } finally {
      child.kill();
    }
  });
});
