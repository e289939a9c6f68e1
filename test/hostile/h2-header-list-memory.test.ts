// HTTP/2 requests whose header list is over the bound (16 KiB) but within twice it are read and
// answered 431 on their own stream (src/server/listener.ts): what they sent must go with them.
// Checked in a child process of its own, from the heap after a garbage collection, before and
// after 2000 such requests (20 KB of header each, 40 MB in all), 100 at a time on one session,
// once 1000 have been served (the session's and the server's structures grown to their size).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

const child = `
import http2 from "node:http2";
const { startTestServer } = await import("./test/support/server.ts");
const server = await startTestServer({ env: { TESSERA_LOG_LEVEL: "error" } });
const session = http2.connect(server.url);
const statuses = [];
// Resolves with the answer's status once its stream has closed.
const ask = (i) =>
  new Promise((resolve) => {
    const stream = session.request({ ":path": "/jwt/version", "x-big": i.toString(36).padStart(4, "0") + "a".repeat(19_996) });
    let status = 0;
    stream.on("response", (h) => (status = h[":status"]));
    stream.on("error", () => {});
    stream.resume();
    stream.on("close", () => resolve(statuses.push(status)));
  });
const heap = () => {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
};
const batches = async (from, count) => {
  for (let batch = from; batch < from + count; batch++) await Promise.all(Array.from({ length: 100 }, (_, i) => ask(batch * 100 + i)));
};
await batches(0, 10);
const before = heap();
await batches(10, 20);
const after = heap();
const ok = await new Promise((resolve) => {
  const stream = session.request({ ":path": "/jwt/version" });
  stream.on("response", (h) => resolve(h[":status"]));
  stream.resume();
});
session.close();
await server.close();
process.stdout.write(JSON.stringify({ statuses: [...new Set(statuses)], count: statuses.length, ok, grownBytes: after - before }));
`;

describe("hostile: HTTP/2 header lists over the bound", function () {
  this.timeout(60_000);

  it("2000 requests on one session, each with 20 KB of header, are answered 431 and leave the heap within 1 MiB of where it was; the session serves on", async () => {
    const { stdout } = await run(process.execPath, ["--expose-gc", "--import", "tsx", "--input-type=module", "-e", child], { cwd: process.cwd() });
    const result = JSON.parse(stdout) as { statuses: number[]; count: number; ok: number; grownBytes: number };
    assert.deepEqual(result.statuses, [431], "every request was answered 431");
    assert.equal(result.count, 3000);
    assert.equal(result.ok, 200, "a request after them, on the same session");
    assert.ok(result.grownBytes < 1024 * 1024, `the heap grew by ${result.grownBytes} bytes`);
  });
});
