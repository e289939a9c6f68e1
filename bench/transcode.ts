/**
 * REST (transcoded) vs Connect JSON for the same RPCs on the same server.
 *
 *     npx tsx bench/transcode.ts [seconds=5] [concurrency=32]
 *
 * The server (connectNodeAdapter with the transcoder as its fallback, one node:http server)
 * runs in a child process so the load generator does not share its event loop. Each scenario
 * runs the two protocols interleaved, twice, after a warm-up; figures are the mean of the runs.
 * Prints requests/s, p50 and p99 latency, and REST/Connect throughput. Never fails on a time.
 */
import { fork } from "node:child_process";
import { createServer, request, Agent } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { LibraryService } from "../gen/transcodetest/v1/library_pb.js";
import { createTranscoder, type Transcoder } from "../src/transcode/index.js";

async function serve(): Promise<void> {
  let handlers: UniversalHandler[] = [];
  let transcoder: Transcoder | undefined;
  const item = (id: string, name: string) => ({
    id,
    displayName: name,
    count: 42n,
    labels: ["red", "large", "sale"],
    book: { name: "shelves/1/books/2", title: "The Left Hand of Darkness", pages: 304 },
  });
  const adapter = connectNodeAdapter({
    routes(router) {
      router.service(LibraryService, {
        getItem: (req) => item(req.id, "Lamp"),
        createItem: (req) => item("new", req.item?.displayName ?? ""),
      });
      handlers = router.handlers;
    },
    fallback: (req, res) => void transcoder!.handle(req, res as never),
  });
  transcoder = createTranscoder({ services: [{ service: LibraryService }], handlers });
  const server = createServer({ keepAliveTimeout: 60_000 }, adapter);
  server.listen(0, "127.0.0.1", () => process.send!((server.address() as AddressInfo).port));
}

interface Target {
  label: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function drive(port: number, t: Target, seconds: number, concurrency: number): Promise<Result> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  const headers = t.body === undefined ? t.headers : { ...t.headers, "content-length": String(Buffer.byteLength(t.body)) };
  const one = () =>
    new Promise<void>((resolve) => {
      const start = performance.now();
      const req = request({ host: "127.0.0.1", port, agent, method: t.method, path: t.path, headers }, (res) => {
        if (res.statusCode !== 200) errors++;
        res.resume();
        res.on("end", () => {
          latencies.push(performance.now() - start);
          resolve();
        });
      });
      req.on("error", () => {
        errors++;
        resolve();
      });
      req.end(t.body);
    });
  const worker = async () => {
    while (performance.now() < deadline) await one();
  };
  const began = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - began) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { rps: latencies.length / elapsed, p50: q(0.5), p99: q(0.99), errors };
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const concurrency = Number(process.argv[3] ?? 32);
  const child = fork(fileURLToPath(import.meta.url), ["--serve"], { execArgv: ["--import", "tsx"] });
  const port = await new Promise<number>((resolve) => child.once("message", (m) => resolve(m as number)));
  const json = { "content-type": "application/json" };
  const scenarios: Array<[string, Target, Target]> = [
    [
      "GetItem",
      { label: "REST GET /v1/items/{id}", method: "GET", path: "/v1/items/abc-123", headers: {} },
      { label: "Connect JSON", method: "POST", path: "/transcodetest.v1.LibraryService/GetItem", headers: json, body: '{"id":"abc-123"}' },
    ],
    [
      "CreateItem",
      {
        label: 'REST POST /v1/items (body "*")',
        method: "POST",
        path: "/v1/items",
        headers: json,
        body: JSON.stringify({ item: { displayName: "Chair", labels: ["a", "b"], count: "3" }, requestId: "r-1" }),
      },
      {
        label: "Connect JSON",
        method: "POST",
        path: "/transcodetest.v1.LibraryService/CreateItem",
        headers: json,
        body: JSON.stringify({ item: { displayName: "Chair", labels: ["a", "b"], count: "3" }, requestId: "r-1" }),
      },
    ],
  ];
  console.log(`node ${process.version}, ${seconds}s per run, ${concurrency} concurrent keep-alive connections, 2 runs each (interleaved)`);
  for (const [name, rest, connect] of scenarios) {
    await drive(port, rest, 1, concurrency); // warm-up
    await drive(port, connect, 1, concurrency);
    const runs: Record<"rest" | "connect", Result[]> = { rest: [], connect: [] };
    for (let i = 0; i < 2; i++) {
      runs.rest.push(await drive(port, rest, seconds, concurrency));
      runs.connect.push(await drive(port, connect, seconds, concurrency));
    }
    const mean = (rs: Result[], k: keyof Result) => rs.reduce((s, r) => s + r[k], 0) / rs.length;
    const line = (label: string, rs: Result[]) =>
      `  ${label.padEnd(32)} ${mean(rs, "rps").toFixed(0).padStart(7)} req/s   p50 ${mean(rs, "p50").toFixed(2)} ms   p99 ${mean(rs, "p99").toFixed(2)} ms   errors ${mean(rs, "errors")}`;
    console.log(name);
    console.log(line(rest.label, runs.rest));
    console.log(line(connect.label, runs.connect));
    console.log(`  REST / Connect JSON throughput: ${((100 * mean(runs.rest, "rps")) / mean(runs.connect, "rps")).toFixed(1)}%`);
  }
  child.kill();
}

if (process.argv.includes("--serve")) {
  void serve();
} else {
  void main();
}
