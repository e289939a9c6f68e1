// Host values the server has found valid are remembered (so that its own names are parsed once,
// not on every request), a bounded number of them: a client sending ever new ones must not make
// the server keep what it sent. A Host value may be as long as the header block allows (16 KiB);
// no host name is longer than 253 characters and a port. Checked in a child process of its own,
// from the heap after a garbage collection, before and after 230 requests, each with another
// Host of 15,000 characters (valid: a registered name of letters).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

const child = `
import net from "node:net";
const { startTestServer } = await import("./test/support/server.ts");
const server = await startTestServer({ env: { TESSERA_LOG_LEVEL: "error" } });
const socket = net.connect(server.port, "127.0.0.1");
await new Promise((r) => socket.once("connect", r));
let received = "";
socket.on("data", (d) => (received += d.toString("latin1")));
const statuses = [];
// One request at a time on one keep-alive connection; resolves with the answer's status.
async function ask(host) {
  received = "";
  socket.write("GET /healthz HTTP/1.1\\r\\nhost: " + host + "\\r\\n\\r\\n");
  while (!/\\r\\n\\r\\n[^]*\\}/.test(received)) await new Promise((r) => socket.once("data", r));
  statuses.push(Number(received.slice(9, 12)));
}
const heap = () => {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
};
for (let i = 0; i < 20; i++) await ask("localhost:" + (1000 + i));
const before = heap();
for (let i = 0; i < 230; i++) await ask(i.toString(36).padStart(4, "0") + "x".repeat(14996));
const after = heap();
socket.destroy();
await server.close();
process.stdout.write(JSON.stringify({ statuses: [...new Set(statuses)], count: statuses.length, grownBytes: after - before }));
`;

describe("hostile: Host values the server remembers", function () {
  this.timeout(60_000);

  it("230 requests, each with another Host of 15,000 characters, are answered and leave the heap within 1 MiB of where it was", async () => {
    const { stdout } = await run(process.execPath, ["--expose-gc", "--import", "tsx", "--input-type=module", "-e", child], { cwd: process.cwd() });
    const result = JSON.parse(stdout) as { statuses: number[]; count: number; grownBytes: number };
    assert.deepEqual(result.statuses, [200], "every request was answered 200");
    assert.equal(result.count, 250);
    assert.ok(result.grownBytes < 1024 * 1024, `the heap grew by ${result.grownBytes} bytes`);
  });
});
