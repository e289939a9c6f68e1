/**
 * HTTP/2 abuse, each from a hand-made client on a raw socket (test/support/h2-wire.ts): rapid
 * reset (CVE-2023-44487), its variant MadeYouReset (CVE-2025-8671: frames that make the server
 * reset streams that have reached their method), a CONTINUATION flood, PING and SETTINGS floods
 * from a client that reads every ACK, a window that never opens (a stream's, or the
 * connection's), and a client that never reads its socket. Each time the abusive connection is
 * shed (a stalled one is closed without a log line: its client may just be stuck) while a normal
 * client on its own connection keeps being served: every one of its requests is answered 200 (its
 * latency is measured for the failure message, not asserted). The MadeYouReset frames that Node
 * takes as connection errors end their connection at the first, without a log line either.
 * Tessera sheds with GOAWAY (ENHANCE_YOUR_CALM) and logs why; the GOAWAY
 * itself can be lost on the way (the server closes a socket that still has flood bytes unread, and
 * the kernel answers them with a TCP reset), so the tests read the reason from the log and see the
 * socket close.
 * What Node 20 (nghttp2 1.61) does by itself and what Tessera adds is in src/server/h2-guard.ts.
 */
import { strict as assert } from "node:assert";
import http2 from "node:http2";
import { makeTestCertificate, type TestCertificate } from "../support/net.js";
import { pollLast } from "../support/poll.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { itSideBySide } from "../support/side-by-side.js";
import { eventually } from "./support.js";
import { ErrorCode, Flag, frame, FrameType, grpcHeaders, H2Wire, hpack, hpackTableSizeUpdate, Setting, settingsPayload } from "../support/h2-wire.js";

const version = "/tessera.jwt.v1.JwtService/GetVersion";
const rstCancel = Buffer.from([0, 0, 0, ErrorCode.CANCEL]);

/** The same method over REST (`GET /jwt/version`): served from the request's headers alone. */
const restVersion = (method: "GET" | "HEAD", extra: Array<[string, string]> = []): Array<[string, string]> => [
  [":method", method],
  [":scheme", "http"],
  [":authority", "localhost"],
  [":path", "/jwt/version"],
  ...extra,
];

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** A well-behaved client polling /healthz on its own connection while `attack` runs. */
async function whileServing(url: string, ca: Buffer | undefined, attack: () => Promise<unknown>): Promise<{ statuses: number[]; latenciesMs: number[] }> {
  const session = http2.connect(url, ca ? { ca } : {});
  session.on("error", () => {});
  const statuses: number[] = [];
  const latenciesMs: number[] = [];
  let attacking = true;
  let answered!: () => void;
  const first = new Promise<void>((resolve) => (answered = resolve));
  const poll = (async () => {
    while (attacking) {
      const t0 = performance.now();
      const status = await new Promise<number>((resolve) => {
        const req = session.request({ ":path": "/healthz" });
        let s = 0;
        req.on("response", (h) => (s = Number(h[":status"])));
        req.on("close", () => resolve(s));
        req.on("error", () => {});
        req.resume();
        req.end();
      });
      statuses.push(status);
      latenciesMs.push(performance.now() - t0);
      answered();
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    // Its connection made and its first request answered before the attack: on a loaded machine
    // the attack could hold the server past its headers timeout (1 s) before it read this
    // connection's preface, and the server then closed it as a connection still arriving.
    await Promise.race([first, poll]);
    await attack();
  } finally {
    attacking = false;
    await poll;
    session.close();
  }
  return { statuses, latenciesMs };
}

/** Every request of the normal client was answered 200; its latencies go in the message if not. */
function assertServed(r: { statuses: number[]; latenciesMs: number[] }): void {
  const sorted = [...r.latenciesMs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]?.toFixed(1);
  const figures = `${r.statuses.length} requests, latency p50 ${at(0.5)} ms, max ${at(1)} ms`;
  assert.ok(r.statuses.length > 0, "the normal client made no request");
  assert.deepEqual([...new Set(r.statuses)], [200], `the normal client got ${JSON.stringify(r.statuses)} (${figures})`);
}

/**
 * Writes `chunks` in batches, yielding to the event loop, until the server sends GOAWAY or
 * closes the connection. Resolves with how many were written.
 */
async function pump(w: H2Wire, chunks: Iterable<Buffer>, batch: number, pauseMs: number): Promise<number> {
  let n = 0;
  for (const c of chunks) {
    if (w.closed || w.goaway()) return n;
    w.write(c);
    if (++n % batch === 0) {
      await w.drained();
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  }
  return n;
}

/**
 * Opens `count` streams (1, 3, 5, ...), each written by `make`, `batch` at a time: after each
 * batch, waits (up to 5 s) for the server to end the batch's last stream (RST_STREAM, or
 * END_STREAM), so that no more than `batch` are open at once (past the concurrent stream limit,
 * nghttp2 would end the connection itself). Stops once the server sends GOAWAY or closes the
 * connection; resolves with how many were opened.
 */
async function openInTurns(w: H2Wire, count: number, batch: number, make: (stream: number) => Buffer): Promise<number> {
  let n = 0;
  while (n < count && !w.closed && w.goaway() === undefined) {
    const end = Math.min(count, n + batch);
    const last = 1 + 2 * (end - 1);
    for (; n < end; n++) w.write(make(1 + 2 * n));
    await w.until((f) => f.stream === last && (f.type === FrameType.RST_STREAM || ((f.type === FrameType.HEADERS || f.type === FrameType.DATA) && (f.flags & Flag.END_STREAM) !== 0)), 5000);
  }
  return n;
}

function* repeat(times: number, make: (i: number) => Buffer): Iterable<Buffer> {
  for (let i = 0; i < times; i++) yield make(i);
}

/** A server under abuse, the abusive client's connections to it and what it logged. */
interface Target {
  server: TestServer;
  ca: Buffer | undefined;
  open(settings?: Array<[number, number]>): Promise<H2Wire>;
  /** The reasons of the sheddings logged since the last call. */
  shedReasons(): Array<string | undefined>;
  /** How many GetVersion calls were logged from log line `from` on: streams that reached the method. */
  versionCalls(from: number): number;
}

/**
 * A server to abuse, its headers and request timeouts short (1 s, 3 s), and its idle timeout too
 * (1.5 s) for the tests that wait it out, each on a server of its own. The server the other tests
 * of a transport's block share waits 30 s: on a loaded machine a flood can hold the event loop
 * past 1.5 s, and the session of the normal client (whileServing), its next request unread in
 * the socket meanwhile, was then closed as idle, that request answered with nothing.
 */
function startTarget(cert: TestCertificate | undefined, idleTimeoutMs = 1500): Promise<TestServer> {
  return startTestServer({ env: { TESSERA_IDLE_TIMEOUT_MS: String(idleTimeoutMs), TESSERA_HEADERS_TIMEOUT_MS: "1000", TESSERA_REQUEST_TIMEOUT_MS: "3000", ...cert?.env } });
}

function target(server: TestServer, ca: Buffer | undefined): Target {
  let logsSeen = server.logs.length;
  return {
    server,
    ca,
    open: (settings) => H2Wire.open(server.port, { settings, tlsCa: ca }),
    shedReasons() {
      const lines = server.logs.slice(logsSeen).map((l) => JSON.parse(l) as { msg: string; reason?: string });
      logsSeen = server.logs.length;
      return lines.filter((l) => l.msg === "http2 connection shed").map((l) => l.reason);
    },
    versionCalls: (from) =>
      server.logs
        .slice(from)
        .map((l) => JSON.parse(l) as { msg: string; procedure?: string })
        .filter((l) => l.msg === "rpc" && l.procedure === "tessera.jwt.v1.JwtService/GetVersion").length,
  };
}

describe("HTTP/2 abuse", function () {
  this.timeout(60_000);

  for (const transport of ["h2c", "h2 over TLS"] as const) {
    describe(transport, () => {
      let server: TestServer;
      let cert: TestCertificate | undefined;
      let ca: Buffer | undefined;
      let shared: Target;
      const open = (settings?: Array<[number, number]>) => shared.open(settings);
      const shedReasons = () => shared.shedReasons();
      beforeEach(() => shedReasons());
      const versionCalls = (from: number) => shared.versionCalls(from);

      before(async () => {
        cert = transport === "h2c" ? undefined : makeTestCertificate();
        ca = cert?.ca;
        server = await startTarget(cert, 30_000);
        shared = target(server, ca);
      });
      after(async () => {
        await server?.close();
        cert?.remove();
      });

      /**
       * A test that mostly waits out the server's timeouts, on a server of its own (the same
       * settings): such tests run side by side (itSideBySide), and what each asserts on (the log's
       * sheddings and method calls, the streams in flight) is its own server's alone.
       */
      const onOwnServer = (body: (t: Target) => Promise<void>) => async () => {
        const own = await startTarget(cert);
        try {
          await body(target(own, ca));
        } finally {
          await own.close();
        }
      };

      it("rapid reset: 1000 streams opened and cancelled at once — shed long before the last", async () => {
        const w = await open();
        let sent = 0;
        const r = await whileServing(server.url, ca, async () => {
          sent = await pump(w, repeat(1000, (i) => Buffer.concat([w.headers(1 + 2 * i, grpcHeaders(version)), frame(FrameType.RST_STREAM, 0, 1 + 2 * i, rstCancel)])), 50, 5);
        });
        assert.ok(sent < 1000, "all 1000 streams were opened and cancelled: the connection was never shed");
        assert.ok(await w.closedWithin(3000), "the connection is still open");
        assert.deepEqual(shedReasons(), ["rapid reset"]);
        assertServed(r);
      });

      it("a few cancelled streams are a client's right: 50 opened and cancelled, then a request on the same connection is answered", async () => {
        const w = await open();
        await pump(w, repeat(50, (i) => Buffer.concat([w.headers(1 + 2 * i, grpcHeaders(version)), frame(FrameType.RST_STREAM, 0, 1 + 2 * i, rstCancel)])), 50, 5);
        w.write(w.headers(101, [[":method", "GET"], [":scheme", "http"], [":authority", "localhost"], [":path", "/healthz"]], { endStream: true }));
        const answer = await w.until((f) => f.type === FrameType.HEADERS && f.stream === 101, 3000);
        assert.ok(answer, `no answer on stream 101; GOAWAY ${JSON.stringify(w.goaway())}`);
        assert.equal(w.goaway(), undefined);
        assert.deepEqual(shedReasons(), []);
        w.destroy();
      });

      // A header list over the bound (16 KiB) but within twice it is read and answered 431 on its
      // stream (limits.test.ts): such requests cost what normal ones do, and are held to the same
      // limits. Each fits one HEADERS frame (16,300 bytes of value), its list over 16 KiB.
      const oversize = restVersion("GET", [["x-pad", "a".repeat(16_300)]]);

      it("header lists over the bound, each answered 431 as it opens: 1000 on one connection, 100 at a time — every one answered, the connection neither shed nor closed, its next request served", async () => {
        const w = await open();
        // Room for the 1000 answers' bodies on the connection (the client's window).
        w.write(frame(FrameType.WINDOW_UPDATE, 0, 0, uint32(1 << 30)));
        const opened = await openInTurns(w, 1000, 100, (stream) => w.headers(stream, oversize, { endStream: true }));
        assert.equal(opened, 1000, `GOAWAY ${JSON.stringify(w.goaway())}`);
        assert.ok(await eventually(() => w.count(FrameType.DATA, Flag.END_STREAM) === 1000, 5000), `${w.count(FrameType.DATA, Flag.END_STREAM)} of 1000 answers ended`);
        assert.deepEqual(w.resets(), []);
        w.write(w.headers(2001, restVersion("GET"), { endStream: true }));
        const answer = await w.until((f) => f.type === FrameType.HEADERS && f.stream === 2001, 3000);
        assert.ok(answer, `no answer on stream 2001; GOAWAY ${JSON.stringify(w.goaway())}`);
        assert.equal(w.goaway(), undefined);
        assert.deepEqual(shedReasons(), []);
        w.destroy();
      });

      it("rapid reset with header lists over the bound (each answered 431 as it opens, then cancelled): 1000 at once — shed long before the last", async () => {
        const w = await open();
        let sent = 0;
        const r = await whileServing(server.url, ca, async () => {
          sent = await pump(w, repeat(1000, (i) => Buffer.concat([w.headers(1 + 2 * i, oversize, { endStream: true }), frame(FrameType.RST_STREAM, 0, 1 + 2 * i, rstCancel)])), 50, 5);
        });
        assert.ok(sent < 1000, "all 1000 streams were opened and cancelled: the connection was never shed");
        assert.ok(await w.closedWithin(3000), "the connection is still open");
        assert.deepEqual(shedReasons(), ["rapid reset"]);
        assertServed(r);
      });

      it("rapid reset with HEAD requests (Node ends a HEAD stream's writable side as it opens: its reset emits no 'aborted'): 1000 opened and cancelled at once — shed long before the last", async () => {
        const from = server.logs.length;
        const w = await open();
        let sent = 0;
        const r = await whileServing(server.url, ca, async () => {
          sent = await pump(w, repeat(1000, (i) => Buffer.concat([w.headers(1 + 2 * i, restVersion("HEAD"), { endStream: true }), frame(FrameType.RST_STREAM, 0, 1 + 2 * i, rstCancel)])), 50, 5);
        });
        assert.ok(sent < 1000, `all 1000 streams were opened and cancelled (${versionCalls(from)} reached the method): the connection was never shed`);
        assert.ok(await w.closedWithin(3000), "the connection is still open");
        assert.deepEqual(shedReasons(), ["rapid reset"]);
        assertServed(r);
      });

      // MadeYouReset: the client sends no RST_STREAM; each stream's request reaches its method,
      // then a byte past its content-length (0) makes it malformed, a stream error: nghttp2 resets
      // it (PROTOCOL_ERROR) and counts it nowhere (not as an invalid frame either). Its slot is
      // free again at once, whatever its method still has to do.
      it("MadeYouReset (CVE-2025-8671): 1000 GETs, each sent a byte past its content-length of 0, which the server resets (PROTOCOL_ERROR) — shed long before the last", async () => {
        const from = server.logs.length;
        const w = await open();
        let opened = 0;
        const r = await whileServing(server.url, ca, async () => {
          opened = await openInTurns(w, 1000, 50, (id) => Buffer.concat([w.headers(id, restVersion("GET", [["content-length", "0"]])), frame(FrameType.DATA, Flag.END_STREAM, id, Buffer.from("x"))]));
        });
        assert.deepEqual(w.resets()[0], { stream: 1, code: ErrorCode.PROTOCOL_ERROR }, "the server did not reset the first stream");
        assert.ok(opened < 1000, `all 1000 streams were opened and reset by the server (${versionCalls(from)} reached the method): the connection was never shed`);
        assert.ok(await w.closedWithin(3000), "the connection is still open");
        assert.deepEqual(shedReasons(), ["rapid reset"]);
        assertServed(r);
      });

      // The stream errors MadeYouReset names otherwise are connection errors for Node 20 (nghttp2
      // 1.61), so no more than one stream per connection reaches a method. Node destroys the
      // session on an invalid frame nghttp2 reports as a protocol, flow-control or closed-stream
      // error (its GOAWAY, INTERNAL_ERROR, is lost over TLS: the socket goes first); nghttp2
      // itself ends the session on DATA after END_STREAM or a bad PRIORITY (GOAWAY with the
      // error, ignoring all that follows; the connection is then closed, h2-guard.ts).
      const connectionErrors: Array<{ what: string; frame: (stream: number) => Buffer; goaway?: keyof typeof ErrorCode }> = [
        { what: "a WINDOW_UPDATE of 0", frame: (id) => frame(FrameType.WINDOW_UPDATE, 0, id, uint32(0)) },
        { what: "a WINDOW_UPDATE taking the stream's window past 2^31-1", frame: (id) => frame(FrameType.WINDOW_UPDATE, 0, id, uint32(0x7fffffff)) },
        { what: "HEADERS after the request's END_STREAM", frame: (id) => frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, hpack([["x-after", "1"]])) },
        { what: "DATA after the request's END_STREAM", frame: (id) => frame(FrameType.DATA, 0, id, Buffer.from("x")), goaway: "STREAM_CLOSED" },
        { what: "PRIORITY on the stream itself", frame: (id) => frame(FrameType.PRIORITY, 0, id, Buffer.concat([uint32(id), Buffer.from([15])])), goaway: "PROTOCOL_ERROR" },
        { what: "a PRIORITY of 4 bytes", frame: (id) => frame(FrameType.PRIORITY, 0, id, Buffer.alloc(4)), goaway: "FRAME_SIZE_ERROR" },
      ];
      const connectionError = (c: (typeof connectionErrors)[number]) => async (t: Target) => {
        const from = t.server.logs.length;
        const w = await t.open();
        try {
          w.write(Buffer.concat([w.headers(1, restVersion("GET"), { endStream: true }), c.frame(1)]));
          if (c.goaway === undefined) {
            assert.ok(await w.closedWithin(5000), "the connection is still open");
          } else {
            await w.until((f) => f.type === FrameType.GOAWAY, 5000);
            assert.deepEqual(w.goaway(), { lastStream: 1, code: ErrorCode[c.goaway] });
            w.write(w.headers(3, restVersion("GET"), { endStream: true }));
            assert.ok(await w.closedWithin(1000), "the connection is still open 1 s after the GOAWAY");
          }
          const calls = await pollLast(() => t.versionCalls(from), (n) => n >= 1, { limitMs: 3000, intervalMs: 20 });
          assert.equal(calls, 1, "streams that reached the method");
          assert.deepEqual(t.shedReasons(), []);
        } finally {
          w.destroy();
        }
      };
      const title = (c: (typeof connectionErrors)[number]) =>
        `MadeYouReset by ${c.what} on a served stream: a connection error — ${c.goaway === undefined ? "the connection closed at once (Node)" : `GOAWAY ${c.goaway} (nghttp2), a stream opened after it not served, the connection closed`}`;
      // Closed at once (those nghttp2 answers with GOAWAY, once it has gone): on the block's server.
      for (const c of connectionErrors) it(title(c), () => connectionError(c)(shared));

      it("CONTINUATION flood: a header block that never ends — shed (nghttp2's own limit)", async () => {
        const w = await open();
        let sent = 0;
        const r = await whileServing(server.url, ca, async () => {
          w.write(w.headers(1, grpcHeaders(version), { endHeaders: false }));
          sent = await pump(w, repeat(50_000, () => frame(FrameType.CONTINUATION, 0, 1, hpack([["x-flood", "a"]]))), 500, 2);
        });
        assert.ok(sent < 50_000, "all 50000 CONTINUATION frames were taken");
        assert.ok(await w.closedWithin(3000), "the connection is still open");
        assert.equal(w.count(FrameType.HEADERS), 0, "the stream was served");
        assertServed(r);
      });

      it("PING flood (2000/s), every ACK read: shed", async () => {
        const w = await open();
        let sent = 0;
        const r = await whileServing(server.url, ca, async () => {
          sent = await pump(w, repeat(4000, () => frame(FrameType.PING, 0, 0, Buffer.alloc(8))), 10, 5);
        });
        assert.ok(sent < 4000, `all 4000 PINGs were taken (${w.count(FrameType.PING, Flag.ACK)} ACKs)`);
        assert.ok(await w.closedWithin(3000), "the connection is still open");
        assert.deepEqual(shedReasons(), ["ping flood"]);
        assertServed(r);
      });

      it("SETTINGS flood (2000/s), every ACK read: shed", async () => {
        const w = await open();
        const settings = frame(FrameType.SETTINGS, 0, 0, settingsPayload([[Setting.MAX_CONCURRENT_STREAMS, 100]]));
        let sent = 0;
        const r = await whileServing(server.url, ca, async () => {
          sent = await pump(w, repeat(4000, () => settings), 10, 5);
        });
        assert.ok(sent < 4000, `all 4000 SETTINGS were taken (${w.count(FrameType.SETTINGS, Flag.ACK)} ACKs)`);
        assert.ok(await w.closedWithin(3000), "the connection is still open");
        assert.deepEqual(shedReasons(), ["settings flood"]);
        assertServed(r);
      });

      // Connection errors nghttp2 answers by itself, GOAWAY with the error, then reading and
      // writing nothing more (Node neither destroys the session nor says so): the connection is
      // closed once the GOAWAY has gone, whether or not its client closes its end (Node, no
      // longer reading, would not even see that), not left open and counted toward
      // TESSERA_MAX_CONNECTIONS until the idle timeout (here 30 s).
      describe("a session nghttp2 ends by itself", () => {
        let own: TestServer;
        before(async () => {
          own = await startTestServer({ env: { TESSERA_IDLE_TIMEOUT_MS: "30000", TESSERA_HEADERS_TIMEOUT_MS: "1000", ...cert?.env } });
        });
        after(() => own?.close());
        const counted = () => own.tessera.server.listener.connections();
        const endedByNghttp2 = [
          {
            what: "a dynamic table size update past SETTINGS_HEADER_TABLE_SIZE (4096)",
            frame: frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, hpackTableSizeUpdate(65536)),
            goaway: { lastStream: 1, code: ErrorCode.COMPRESSION_ERROR },
          },
          { what: "DATA on stream 0", frame: frame(FrameType.DATA, 0, 0, Buffer.from("x")), goaway: { lastStream: 0, code: ErrorCode.PROTOCOL_ERROR } },
        ];
        for (const c of endedByNghttp2) {
          const code = Object.entries(ErrorCode).find(([, v]) => v === c.goaway.code)![0];
          it(`${c.what}: GOAWAY ${code}; 20 connections, each closed by its client 50 ms later, are no longer counted within 1 s`, async () => {
            const wires = await Promise.all(Array.from({ length: 20 }, () => H2Wire.open(own.port, { tlsCa: ca })));
            try {
              for (const w of wires) w.write(c.frame);
              await Promise.all(wires.map((w) => w.until((f) => f.type === FrameType.GOAWAY, 5000)));
              for (const w of wires) assert.deepEqual(w.goaway(), c.goaway);
              await new Promise((r) => setTimeout(r, 50));
              for (const w of wires) w.socket.end();
              const left = await pollLast(counted, (n) => n === 0, { limitMs: 1000, intervalMs: 20 });
              assert.equal(left, 0, "connections still counted 1 s after their client closed them");
            } finally {
              for (const w of wires) w.destroy();
            }
          });
          it(`${c.what}: GOAWAY ${code}; a client that does not close has its connection closed by the server within 1 s`, async () => {
            const w = await H2Wire.open(own.port, { tlsCa: ca });
            try {
              w.write(c.frame);
              await w.until((f) => f.type === FrameType.GOAWAY, 5000);
              assert.deepEqual(w.goaway(), c.goaway);
              assert.ok(await w.closedWithin(1000), "the server has not closed the connection 1 s after its GOAWAY");
              const left = await pollLast(counted, (n) => n === 0, { limitMs: 1000, intervalMs: 20 });
              assert.equal(left, 0, "connections still counted");
            } finally {
              w.destroy();
            }
          });
        }
      });

      itSideBySide({
        "a window that never opens (INITIAL_WINDOW_SIZE 0, PINGs to look alive): the stalled stream is reset (CANCEL) after the idle timeout (1.5 s), then the connection closed": onOwnServer(async ({ server, ca, open }) => {
          const w = await open([[Setting.INITIAL_WINDOW_SIZE, 0]]);
          const pings = setInterval(() => w.write(frame(FrameType.PING, 0, 0, Buffer.alloc(8))), 200);
          try {
            const r = await whileServing(server.url, ca, async () => {
              w.write(w.headers(1, [[":method", "GET"], [":scheme", "http"], [":authority", "localhost"], [":path", "/.well-known/jwks.json"]], { endStream: true }));
              await w.until((f) => f.type === FrameType.RST_STREAM && f.stream === 1, 8000);
            });
            assert.ok(w.count(FrameType.HEADERS) >= 1, "the answer's headers were not sent");
            assert.equal(w.count(FrameType.DATA), 0, "data was sent into a closed window");
            assert.deepEqual(w.resets(), [{ stream: 1, code: ErrorCode.CANCEL }]);
            assert.ok(await w.closedWithin(8000), "the connection is still open");
            assert.equal(w.goaway()?.code, ErrorCode.NO_ERROR, "closed as idle once its stream was gone");
            assertServed(r);
          } finally {
            clearInterval(pings);
            w.destroy();
          }
        }),

        "a connection window that never opens (streams' windows wide, no WINDOW_UPDATE for the connection, a new stream every 500 ms): the session is closed (GOAWAY NO_ERROR) once an answer has waited the idle timeout (1.5 s)": onOwnServer(async ({ server, ca, open, shedReasons }) => {
          const w = await open([[Setting.INITIAL_WINDOW_SIZE, 0x7fffffff]]);
          const request = (id: number, path: string) => w.write(w.headers(id, [[":method", "GET"], [":scheme", "http"], [":authority", "localhost"], [":path", path]], { endStream: true }));
          let next = 3;
          // The OpenAPI document (about 97 KB) takes the connection's whole window (64 KiB).
          request(1, "/openapi.json");
          const more = setInterval(() => {
            if (next < 200) request(next, "/jwt/version");
            next += 2;
          }, 500);
          try {
            const r = await whileServing(server.url, ca, async () => {
              assert.ok(await w.closedWithin(20_000), "the connection is still open");
            });
            assert.equal(w.goaway()?.code, ErrorCode.NO_ERROR);
            // Its streams, every one of them stalled behind the connection's window, were reset.
            assert.equal(w.resets().find((x) => x.stream === 1)?.code, ErrorCode.CANCEL);
            assert.deepEqual(w.resets().filter((x) => x.code !== ErrorCode.CANCEL), []);
            assertServed(r);
            assert.deepEqual(shedReasons(), []);
          } finally {
            clearInterval(more);
            w.destroy();
          }
        }),

        "a client that never reads its socket (windows opened wide, 30 answers of 1.4 MB asked for): its streams end and the connection is closed": onOwnServer(async ({ server, ca, open, shedReasons }) => {
          const w = await open([[Setting.INITIAL_WINDOW_SIZE, 0x7fffffff]]);
          const increment = Buffer.alloc(4);
          increment.writeUInt32BE(0x7fffffff - 65535);
          w.write(frame(FrameType.WINDOW_UPDATE, 0, 0, increment));
          await w.until((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) !== 0, 5000);
          w.socket.pause();
          const inFlight = () => server.tessera.server.listener.inFlight();
          try {
            for (let i = 0; i < 30; i++) {
              w.write(w.headers(1 + 2 * i, [[":method", "GET"], [":scheme", "http"], [":authority", "localhost"], [":path", "/docs/swagger-ui-bundle.js"]], { endStream: true }));
            }
            const deadline = Date.now() + 30_000;
            while (inFlight() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
            assert.ok(inFlight() > 0, "the requests were not taken");
            // Its answers back up; the server lets go of them (the normal client's come and go).
            const r = await whileServing(server.url, ca, async () => {
              while (inFlight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
            });
            assert.equal(inFlight(), 0, "its streams are still open");
            w.socket.resume();
            assert.ok(await w.closedWithin(20_000), "the connection is still open");
            assertServed(r);
            assert.deepEqual(shedReasons(), []);
          } finally {
            w.destroy();
          }
        }),
      });
    });
  }
});
