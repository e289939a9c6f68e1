// What node:http2's compatibility layer (Http2ServerRequest / Http2ServerResponse, which every
// request of Tessera's HTTP/2 server goes through) costs a unary gRPC answer against node:http2's
// stream API, with nothing of Tessera around either: the ceiling of what answering unary gRPC on
// the Http2Stream could save a call. Three bare servers give the same answer (the same headers,
// in the same order, one message, grpc-status in the trailers), each in its own process, started
// afresh every round, the order rotating; h2load drives each in turn (16 h2c connections, one
// call in flight on each), and CPU per call is the process's user + system time over the calls:
// - compat: what Tessera's unary gRPC path does with the compatibility objects (two headers set
//   as the call arrives, the body read from the request's 'data' and 'end', then writeHead,
//   write, addTrailers, end);
// - stream: the 'stream' event alone (the body read from the stream, respond with
//   waitForTrailers, end, sendTrailers);
// - stream-under-compat: the compatibility objects made, as the request pipeline needs them,
//   but the answer written on their stream (respond, write, then the response ended).
// Run: npm run bench -- h2-compat   (BENCH_ROUNDS, BENCH_DUR seconds)
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import http2 from "node:http2";
import { freePort, median } from "./lib.js";
import { benchSeconds, emptyGrpcFrame, grpcHeaders, h2load, requireH2load, rounds } from "./h2load.js";

const modes = ["compat", "stream", "stream-under-compat"] as const;
type Mode = (typeof modes)[number];

/** GetVersion's answer: one envelope holding field 1, "v1". */
const message = Buffer.from([0, 0, 0, 0, 4, 10, 2, 118, 49]);
const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const requestId = () => `req_${Math.random().toString(36).slice(2)}`;
const answerHeaders = { "content-type": "application/grpc+proto", "cache-control": "no-store", pragma: "no-cache" };
const trailers = { "grpc-status": "0" };

function serve(mode: Mode, port: number): void {
  let server: http2.Http2Server;
  if (mode === "stream") {
    server = http2.createServer();
    server.on("stream", (stream) => {
      const early = { "x-request-id": requestId(), traceparent };
      stream.on("data", () => {});
      stream.once("end", () => {
        if (stream.destroyed || stream.closed) return;
        stream.respond({ ...early, ...answerHeaders, ":status": 200 }, { waitForTrailers: true });
        stream.once("wantTrailers", () => stream.sendTrailers(trailers));
        stream.end(message);
      });
    });
  } else {
    server = http2.createServer((req, res) => {
      res.setHeader("x-request-id", requestId());
      res.setHeader("traceparent", traceparent);
      req.on("data", () => {});
      req.once("end", () => {
        if (mode === "compat") {
          res.writeHead(200, answerHeaders);
          res.write(message);
          res.addTrailers(trailers);
          res.end();
          return;
        }
        const stream = res.stream;
        if (stream.destroyed || stream.closed) return void res.end();
        res.addTrailers(trailers);
        stream.respond({ ...res.getHeaders(), ...answerHeaders, ":status": 200 }, { waitForTrailers: true });
        stream.write(message);
        res.end();
      });
    });
  }
  server.listen(port, "127.0.0.1", () => process.stdout.write("up\n"));
}

async function start(mode: Mode): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", "bench/h2-compat.ts", "serve", mode, String(port)], { stdio: ["ignore", "pipe", "inherit"] });
  await once(child.stdout!, "data");
  return { child, url: `http://127.0.0.1:${port}/tessera.jwt.v1.JwtService/GetVersion` };
}

async function main(): Promise<void> {
  requireH2load();
  const cpu = Object.fromEntries(modes.map((m) => [m, [] as number[]])) as Record<Mode, number[]>;
  const rps = Object.fromEntries(modes.map((m) => [m, [] as number[]])) as Record<Mode, number[]>;
  console.log(`bare node:http2, a unary gRPC answer, 16 h2c connections, ${rounds} rounds of ${benchSeconds} s`);
  for (let r = 0; r < rounds; r++) {
    const order = modes.map((_, i) => modes[(i + r) % modes.length]!);
    for (const mode of order) {
      const { child, url } = await start(mode);
      try {
        const res = await h2load({ url, headers: grpcHeaders, body: emptyGrpcFrame }, benchSeconds, [child.pid!]);
        if (res.errors > 0) throw new Error(`${mode}: ${res.errors} calls failed`);
        cpu[mode].push(res.cpuMsPerCall! * 1000);
        rps[mode].push(res.rps);
        console.log(`  round ${r + 1}  ${mode}: ${res.rps.toFixed(0)}/s, ${(res.cpuMsPerCall! * 1000).toFixed(1)} µs CPU per call`);
      } finally {
        child.kill();
        await once(child, "exit");
      }
    }
  }
  for (const mode of modes) {
    const ratios = cpu[mode].map((x, i) => (x / cpu.compat[i]!).toFixed(2)).join(", ");
    console.log(`${mode}: median ${median(rps[mode]).toFixed(0)}/s, ${median(cpu[mode]).toFixed(1)} µs CPU per call; CPU per call / compat per round ${ratios}`);
  }
}

if (process.argv[2] === "serve") serve(process.argv[3] as Mode, Number(process.argv[4]));
else await main();
