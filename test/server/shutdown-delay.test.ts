// TESSERA_SHUTDOWN_DELAY_SECONDS: a lame-duck period before the graceful stop. On SIGTERM/SIGINT
// readiness fails at once (GET /readyz, grpc.health.v1.Health) while the listener stays open and
// every other call is served as before, so that a load balancer takes the instance out before
// its listener closes; then the graceful stop runs as without it. A second signal cuts the delay
// short. Under TESSERA_WORKERS every worker fails readiness at once and none stops before the
// delay ends. From the signal on, the connections clients keep are drained as a proxy drains
// them: every HTTP/1.1 answer carries Connection: close and its connection closes, and every
// HTTP/2 session gets GOAWAY(NO_ERROR) once its streams are read, so that clients move to other
// instances before the listener closes instead of meeting a reset then. Real processes, real
// clients (HTTP/1.1, node:http2, @grpc/grpc-js, connect-node over h2c; HTTP/1.1 and h2 over TLS).
import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import type { AddressInfo, Socket } from "node:net";
import { createClient } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { packageVersion } from "../../src/project-files.js";
import { connectGrpcClient, GrpcJsClient } from "../support/clients.js";
import { Flag, FrameType, H2Wire } from "../support/h2-wire.js";
import { connectionRefused, makeTestCertificate, type TestCertificate } from "../support/net.js";
import { pollUntil } from "../support/poll.js";
import { buildCompiledEntry, killService, request, startService, type ServiceProcess } from "../support/process.js";

/** Resolves once `ok()` holds (checked every 20 ms); fails after `ms`. */
async function until(ok: () => boolean | Promise<boolean>, what: string, ms = 15000): Promise<void> {
  await pollUntil(what, ok, { limitMs: ms, intervalMs: 20 });
}

const messages = (s: ServiceProcess, msg: string) => s.lines().filter((l) => l.msg === msg);

/** GET `path` over TLS (ALPN http/1.1) on a new connection, closed once answered, trusting `ca`. */
function tlsGet(port: number, ca: Buffer, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: "127.0.0.1", port, path, ca, agent: false, headers: { connection: "close" } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode!, text }));
    });
    req.on("error", reject);
  });
}

/**
 * Asks GET /readyz, each time on a new connection (over TLS when `ca` is given), until it no
 * longer answers 200 (the signal handled). A connection refused fails the test: the listener
 * must stay open.
 */
async function readinessFailed(s: ServiceProcess, ca?: Buffer): Promise<void> {
  const readyz = () => (ca === undefined ? request(s.port, "GET", "/readyz") : tlsGet(s.port, ca, "/readyz"));
  await until(async () => (await readyz()).status !== 200, "readiness to fail");
}

/** What a worker that is draining answers on new connections: readiness fails, the rest is served. */
async function assertDraining(s: ServiceProcess): Promise<void> {
  const ready = await request(s.port, "GET", "/readyz");
  assert.deepEqual([ready.status, ready.text], [503, JSON.stringify({ status: "NOT_SERVING" })]);
  const live = await request(s.port, "GET", "/healthz");
  assert.deepEqual([live.status, live.text], [200, JSON.stringify({ status: "SERVING" })]);
  const version = await request(s.port, "GET", "/jwt/version");
  assert.deepEqual([version.status, version.json], [200, { version: packageVersion }]);
}

/** An HTTP/1.1 answer read off a raw connection. */
interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * One HTTP/1.1 connection, kept alive by its client and never closed by it: what the server does
 * with it is seen as is (an HTTP client's agent would itself close a connection it was told to).
 */
class RawConnection {
  private buffered = "";
  private waiting: (() => void) | undefined;
  /** Resolves once the server has closed its side (FIN), or the connection has gone. */
  readonly ended: Promise<void>;
  private constructor(readonly socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.buffered += chunk;
      this.waiting?.();
    });
    socket.on("error", () => {});
    this.ended = new Promise((resolve) => {
      socket.once("end", resolve);
      socket.once("close", resolve);
    });
    void this.ended.then(() => this.waiting?.());
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => resolve(new RawConnection(socket)));
      socket.once("error", reject);
    });
  }

  /** The same over TLS (ALPN http/1.1), trusting `ca`. */
  static openTls(port: number, ca: Buffer): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ port, host: "127.0.0.1", ca, ALPNProtocols: ["http/1.1"] }, () => resolve(new RawConnection(socket)));
      socket.once("error", reject);
    });
  }

  /** Sends GET `path` and resolves with its answer once it has arrived whole (Content-Length or chunked). */
  async get(path: string): Promise<RawAnswer> {
    this.socket.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
    for (;;) {
      const answer = this.take();
      if (answer) return answer;
      if (this.socket.readableEnded || this.socket.destroyed) throw new Error(`connection closed before the answer to ${path}`);
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }

  /** The first whole answer buffered, removed from the buffer. */
  private take(): RawAnswer | undefined {
    const end = this.buffered.indexOf("\r\n\r\n");
    if (end < 0) return undefined;
    const [statusLine, ...fields] = this.buffered.slice(0, end).split("\r\n");
    const headers = Object.fromEntries(fields.map((f) => [f.slice(0, f.indexOf(":")).toLowerCase(), f.slice(f.indexOf(":") + 1).trim()]));
    let rest = this.buffered.slice(end + 4);
    let body = "";
    if (headers["transfer-encoding"] === "chunked") {
      for (;;) {
        const line = rest.indexOf("\r\n");
        if (line < 0) return undefined;
        const size = parseInt(rest.slice(0, line), 16);
        if (rest.length < line + 2 + size + 2) return undefined;
        body += rest.slice(line + 2, line + 2 + size);
        rest = rest.slice(line + 2 + size + 2);
        if (size === 0) break;
      }
    } else {
      const length = Number(headers["content-length"] ?? 0);
      if (rest.length < length) return undefined;
      body = rest.slice(0, length);
      rest = rest.slice(length);
    }
    this.buffered = rest;
    return { status: Number(statusLine!.split(" ")[1]), headers, body };
  }
}

/** The answer to a request on an HTTP/2 session: its status and body. */
function h2Answer(stream: http2.ClientHttp2Stream): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let text = "";
    stream.setEncoding("utf8");
    stream.on("response", (headers) => (status = Number(headers[":status"])));
    stream.on("data", (chunk: string) => (text += chunk));
    stream.on("end", () => resolve({ status, text }));
    stream.on("error", reject);
  });
}

/**
 * A TCP proxy to `port` on this host that counts the connections through it, and those the
 * server closed (its side: whether the client then closes its own at once is the client's
 * choice; grpc-js, given a GOAWAY, may hold its half open a while).
 */
async function countingProxy(port: number): Promise<{ port: number; opened(): number; closed(): number; close(): void }> {
  let opened = 0;
  let closed = 0;
  const links = new Set<Socket>();
  const server = net.createServer((client) => {
    opened++;
    const upstream = net.connect(port, "127.0.0.1");
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      links.add(from);
      from.pipe(to);
      from.on("error", () => to.destroy());
    }
    upstream.once("close", () => {
      closed++;
      client.destroy();
    });
    client.once("close", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    opened: () => opened,
    closed: () => closed,
    close: () => {
      server.close();
      for (const l of links) l.destroy();
    },
  };
}

/**
 * On `session`, opened before the signal: a Connect unary call whose body has not arrived whole,
 * and a call after it whose answer shows that the server has the first one's headers; then
 * SIGTERM and `readiness` (it has failed): the session is sent GOAWAY(NO_ERROR) (Node may follow
 * the first with another as the session ends: each says NO_ERROR) while the call in flight
 * completes with its answer, and the session closes.
 */
async function drainedWithCallInFlight(s: ServiceProcess, session: http2.ClientHttp2Session, readiness: () => Promise<void>): Promise<void> {
  const goaways: number[] = [];
  session.on("goaway", (code: number) => goaways.push(code));
  const sessionClosed = new Promise((resolve) => session.once("close", resolve));
  session.on("error", () => {});
  const inFlight = session.request({ ":method": "POST", ":path": "/tessera.jwt.v1.JwtService/GetVersion", "content-type": "application/json" });
  const inFlightAnswer = h2Answer(inFlight);
  inFlight.write("{");
  assert.equal((await h2Answer(session.request({ ":path": "/jwt/version" }))).status, 200);
  s.child.kill("SIGTERM");
  await readiness();
  await until(() => goaways.length > 0, "a GOAWAY on the session opened before the signal", 5000);
  assert.deepEqual(new Set(goaways), new Set([http2.constants.NGHTTP2_NO_ERROR]));
  inFlight.end("}");
  const answer = await inFlightAnswer;
  assert.deepEqual([answer.status, JSON.parse(answer.text)], [200, { version: packageVersion }]);
  await sessionClosed;
}

/** The service has not begun its stop (the delay runs on); a second SIGTERM ends it, exit 0. */
async function stillDrainingThenStopped(s: ServiceProcess): Promise<void> {
  assert.deepEqual(messages(s, "stopping"), []);
  s.child.kill("SIGTERM");
  assert.equal(await s.exited, 0);
}

describe("server: TESSERA_SHUTDOWN_DELAY_SECONDS (a lame-duck period before the stop)", function () {
  this.timeout(60000);
  before(buildCompiledEntry);
  let service: ServiceProcess | undefined;
  afterEach(async () => {
    await killService(service);
    service = undefined;
  });

  // The longest delay there is in the tests that look at what is served during it: whatever they
  // see before the second signal that ends it is the delay's doing, and none of it races the
  // delay's end (a shorter one ran out on a loaded machine while the calls were still being made).
  const untilStopped = { TESSERA_WORKERS: "1", TESSERA_SHUTDOWN_DELAY_SECONDS: "600", TESSERA_SHUTDOWN_GRACE_SECONDS: "2" };

  it("SIGTERM: readiness fails at once on every protocol while new connections are still served, and nothing of the stop begins", async () => {
    service = await startService("compiled", untilStopped);
    const s = service;
    const url = `http://127.0.0.1:${s.port}`;
    // A Watch stream opened before the signal: SERVING first, then told NOT_SERVING.
    const stream = new AbortController();
    const watch = connectGrpcClient(Health, url).watch({ service: "" }, { signal: stream.signal })[Symbol.asyncIterator]();
    assert.equal((await watch.next()).value?.status, Status.SERVING);

    s.child.kill("SIGTERM");
    await readinessFailed(s);
    // Every call below is made on a connection opened after the signal.
    await assertDraining(s);
    const health = new GrpcJsClient(Health, url);
    const jwt = new GrpcJsClient(JwtService, url);
    try {
      assert.equal((await health.call("Check", { service: "" })).message?.status, Status.NOT_SERVING);
      const listed = (await health.call("List", {})).message?.statuses as Record<string, { status: Status }>;
      assert.ok(Object.keys(listed).length > 1);
      assert.deepEqual(new Set(Object.values(listed).map((v) => v.status)), new Set([Status.NOT_SERVING]));
      assert.equal((await jwt.call("GetVersion", {})).message?.version, packageVersion);
      const connect = createClient(JwtService, (await import("@connectrpc/connect-node")).createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
      assert.equal((await connect.getVersion({})).version, packageVersion);
    } finally {
      health.close();
      jwt.close();
    }
    assert.equal((await watch.next()).value?.status, Status.NOT_SERVING);
    stream.abort();
    const [draining] = messages(s, "draining");
    assert.deepEqual([draining?.level, draining?.signal, draining?.delaySeconds], ["info", "SIGTERM", 600]);
    // Nothing of the stop has begun while the calls above were served.
    await stillDrainingThenStopped(s);
  });

  it("SIGTERM: once the delay has passed, the graceful stop runs by itself and the process exits 0", async () => {
    service = await startService("compiled", { TESSERA_WORKERS: "1", TESSERA_SHUTDOWN_DELAY_SECONDS: "2", TESSERA_SHUTDOWN_GRACE_SECONDS: "2" });
    const s = service;
    s.child.kill("SIGTERM");
    assert.equal(await s.exited, 0);
    assert.deepEqual(
      s.lines().filter((l) => ["draining", "stopping", "stopped"].includes(l.msg as string)).map((l) => [l.msg, l.signal, l.delaySeconds]),
      [
        ["draining", "SIGTERM", 2],
        ["stopping", "SIGTERM", undefined],
        ["stopped", undefined, undefined],
      ],
    );
  });

  it("a second signal during the delay starts the graceful stop at once", async () => {
    // Only the second signal can end the delay within the test's time.
    service = await startService("compiled", untilStopped);
    const s = service;
    s.child.kill("SIGINT");
    await readinessFailed(s);
    await assertDraining(s);
    s.child.kill("SIGTERM");
    assert.equal(await s.exited, 0);
    assert.deepEqual(messages(s, "draining").map((l) => [l.signal, l.delaySeconds]), [["SIGINT", 600]]);
    assert.equal(messages(s, "stopping").length, 1);
  });

  it("HTTP/1.1 during the delay: a keep-alive connection opened before the signal gets Connection: close on its next answer and the server closes it; a new connection is served alike (main port and TESSERA_METRICS_PORT)", async () => {
    service = await startService("compiled", { ...untilStopped, TESSERA_METRICS_PORT: "0" });
    const s = service;
    const metricsPort = Number(messages(s, "listening")[0]!.metricsPort);
    const ports = [
      [s.port, "/jwt/version"],
      [metricsPort, "/metrics"],
    ] as const;
    const kept: RawConnection[] = [];
    for (const [port, path] of ports) {
      const c = await RawConnection.open(port);
      const before = await c.get(path);
      assert.deepEqual([before.status, before.headers.connection], [200, "keep-alive"]);
      kept.push(c);
    }
    s.child.kill("SIGTERM");
    await readinessFailed(s);
    for (const [i, [port, path]] of ports.entries()) {
      for (const c of [kept[i]!, await RawConnection.open(port)]) {
        const during = await c.get(path);
        assert.deepEqual([during.status, during.headers.connection], [200, "close"], `${path} on port ${port}`);
        await c.ended;
      }
    }
    await stillDrainingThenStopped(s);
  });

  it("HTTP/2 during the delay: a session opened before the signal is sent GOAWAY(NO_ERROR) while its call in flight completes; one opened during the delay is served, then sent GOAWAY(NO_ERROR) too", async () => {
    service = await startService("compiled", untilStopped);
    const s = service;
    const url = `http://127.0.0.1:${s.port}`;
    await drainedWithCallInFlight(s, http2.connect(url), () => readinessFailed(s));

    const late = http2.connect(url);
    late.on("error", () => {});
    const lateGoaway = new Promise<number>((resolve) => late.once("goaway", resolve));
    const lateAnswer = await h2Answer(late.request({ ":path": "/jwt/version" }));
    assert.deepEqual([lateAnswer.status, JSON.parse(lateAnswer.text)], [200, { version: packageVersion }]);
    assert.equal(await lateGoaway, http2.constants.NGHTTP2_NO_ERROR);
    late.close();

    await stillDrainingThenStopped(s);
  });

  it("HTTP/2 during the delay: a session opened then whose first call comes a while after its preface is served before its GOAWAY (no connection is closed before it serves a call)", async () => {
    service = await startService("compiled", untilStopped);
    const s = service;
    const url = `http://127.0.0.1:${s.port}`;
    s.child.kill("SIGTERM");
    await readinessFailed(s);
    const late = http2.connect(url);
    late.on("error", () => {});
    const goaways: number[] = [];
    late.on("goaway", (code: number) => goaways.push(code));
    // Connected, settings exchanged (and a PING answered), no call yet: a channel opened ahead of
    // its first call, or a client that dials and then prepares its request.
    await new Promise<void>((resolve) => late.once("remoteSettings", () => resolve()));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(goaways, [], "GOAWAY before the session's first call");
    const answer = await h2Answer(late.request({ ":path": "/jwt/version" }));
    assert.deepEqual([answer.status, JSON.parse(answer.text)], [200, { version: packageVersion }]);
    await until(() => goaways.length > 0, "a GOAWAY once the first call is answered", 5000);
    assert.deepEqual(new Set(goaways), new Set([http2.constants.NGHTTP2_NO_ERROR]));
    late.close();
    await stillDrainingThenStopped(s);
  });

  it("HTTP/2 during the delay: a session whose client never acks the server's PING is still sent GOAWAY(NO_ERROR) during the delay, naming the stream it sent", async () => {
    service = await startService("compiled", untilStopped);
    const s = service;
    // A raw client: preface and SETTINGS (the server's acked), one call answered, and no PING
    // ever acked (a broken peer, or an ACK lost behind a stalled connection).
    const w = await H2Wire.open(s.port);
    try {
      w.write(w.headers(1, [[":method", "GET"], [":scheme", "http"], [":authority", "localhost"], [":path", "/jwt/version"]], { endStream: true }));
      assert.ok(await w.until((f) => f.stream === 1 && (f.flags & Flag.END_STREAM) !== 0, 5000), "the call before the signal was not answered");
      s.child.kill("SIGTERM");
      await readinessFailed(s);
      assert.ok(await w.until((f) => f.type === FrameType.PING && !(f.flags & Flag.ACK), 5000), "no PING from the drain");
      // The delay is 600 s: a GOAWAY that comes now is the drain's, not the stop's.
      const goaway = await w.until((f) => f.type === FrameType.GOAWAY, 10000);
      assert.ok(goaway, "no GOAWAY during the delay for a session whose client does not ack the PING");
      assert.deepEqual(w.goaway(), { code: http2.constants.NGHTTP2_NO_ERROR, lastStream: 1 });
    } finally {
      w.destroy();
    }
    await stillDrainingThenStopped(s);
  });

  it("gRPC (grpc-js) across the delay: the channel's connection opened before the signal is closed by a GOAWAY, and the next call succeeds on a new one", async () => {
    service = await startService("compiled", untilStopped);
    const s = service;
    const proxy = await countingProxy(s.port);
    const jwt = new GrpcJsClient(JwtService, `127.0.0.1:${proxy.port}`);
    try {
      assert.equal((await jwt.call("GetVersion", {})).message?.version, packageVersion);
      assert.deepEqual([proxy.opened(), proxy.closed()], [1, 0]);
      s.child.kill("SIGTERM");
      await readinessFailed(s);
      await until(() => proxy.closed() === 1, "the server closed the connection opened before the signal", 5000);
      const after = await jwt.call("GetVersion", {});
      assert.equal(after.error, undefined);
      assert.equal(after.message?.version, packageVersion);
      assert.equal(proxy.opened(), 2);
    } finally {
      jwt.close();
      proxy.close();
    }
    await stillDrainingThenStopped(s);
  });

  describe("over TLS (TESSERA_TLS_CERT_FILE, TESSERA_TLS_KEY_FILE)", () => {
    let cert: TestCertificate;
    before(() => (cert = makeTestCertificate()));
    after(() => cert?.remove());

    it("HTTP/1.1 over TLS during the delay: /readyz answers 503 NOT_SERVING; a keep-alive connection opened before the signal gets Connection: close on its next answer and the server closes it", async () => {
      service = await startService("compiled", { ...untilStopped, ...cert.env });
      const s = service;
      const kept = await RawConnection.openTls(s.port, cert.ca);
      const before = await kept.get("/jwt/version");
      assert.deepEqual([before.status, before.headers.connection], [200, "keep-alive"]);
      s.child.kill("SIGTERM");
      await readinessFailed(s, cert.ca);
      const ready = await tlsGet(s.port, cert.ca, "/readyz");
      assert.deepEqual([ready.status, ready.text], [503, JSON.stringify({ status: "NOT_SERVING" })]);
      const during = await kept.get("/jwt/version");
      assert.deepEqual([during.status, during.headers.connection, JSON.parse(during.body)], [200, "close", { version: packageVersion }]);
      await kept.ended;
      await stillDrainingThenStopped(s);
    });

    it("HTTP/2 over TLS (ALPN h2) during the delay: a session opened before the signal is sent GOAWAY(NO_ERROR) while its call in flight completes", async () => {
      service = await startService("compiled", { ...untilStopped, ...cert.env });
      const s = service;
      const session = http2.connect(`https://127.0.0.1:${s.port}`, { ca: cert.ca });
      await drainedWithCallInFlight(s, session, () => readinessFailed(s, cert.ca));
      assert.equal(session.alpnProtocol, "h2");
      await stillDrainingThenStopped(s);
    });
  });

  it("unset (0, the default): SIGTERM closes the listener at once, without a draining line", async () => {
    service = await startService("compiled", { TESSERA_WORKERS: "1", TESSERA_SHUTDOWN_GRACE_SECONDS: "2" });
    const s = service;
    s.child.kill("SIGTERM");
    assert.equal(await s.exited, 0);
    assert.equal(await connectionRefused(s.port), true);
    assert.deepEqual(messages(s, "draining"), []);
    assert.equal(messages(s, "stopping").length, 1);
  });

  for (const to of ["the first worker", "the process group"] as const) {
    it(`TESSERA_WORKERS=2, SIGTERM to ${to}: every worker fails readiness at once and serves until the delay ends (a second signal to the first); the second stops after the first`, async () => {
      service = await startService("compiled", { ...untilStopped, TESSERA_WORKERS: "2" }, { listeners: 2, detached: to === "the process group" });
      const s = service;
      const pid = s.child.pid!;
      process.kill(to === "the process group" ? -pid : pid, "SIGTERM");
      await readinessFailed(s);
      await until(() => messages(s, "draining").length === 2, "both workers draining");
      const seen = s.lines().length;
      // Each connection goes to the next worker in turn: both are asked, twice.
      for (let i = 0; i < 4; i++) await assertDraining(s);
      // (an rpc line is written once its answer has gone)
      const served = () =>
        s
          .lines()
          .slice(seen)
          .filter((l) => l.msg === "rpc" && l.procedure === "tessera.jwt.v1.JwtService/GetVersion")
          .map((l) => l.worker);
      await until(() => served().length === 4, "four rpc lines");
      assert.deepEqual([...new Set(served())].sort(), [1, 2], "both workers served calls during the delay");
      assert.deepEqual(messages(s, "stopping"), [], "no worker stops before the delay ends");
      s.child.kill("SIGTERM");
      assert.equal(await s.exited, 0);
      // Each worker batches its lines per event-loop turn, so their order on the shared stdout
      // may differ from the order they were logged in: the times tell.
      const at = (msg: string, worker: number) => Date.parse(messages(s, msg).find((l) => l.worker === worker)!.time as string);
      assert.ok(at("stopping", 2) >= at("stopping", 1), "the second worker began to stop once the first had");
      assert.ok(at("stopped", 1) >= at("stopped", 2), "the first worker stopped last");
    });
  }

  it("TESSERA_WORKERS=2: a worker that dies during the delay is replaced; the replacement fails readiness and serves until the delay ends; exit 0", async () => {
    // The replacement starts and serves within the delay, whatever that takes: the test waits for
    // each step, and a second signal ends the delay.
    service = await startService("compiled", { ...untilStopped, TESSERA_WORKERS: "2" }, { listeners: 2 });
    const s = service;
    const listening = () => messages(s, "listening").filter((l) => l.worker === 2);
    s.child.kill("SIGTERM");
    await readinessFailed(s);
    await until(() => messages(s, "draining").length === 2, "both workers draining");
    process.kill(listening()[0]!.pid as number, "SIGKILL");
    await until(() => listening().length === 2, "a replacement for worker 2");
    assert.deepEqual(messages(s, "worker exited").map((l) => [l.worker, l.signal]), [[2, "SIGKILL"]]);
    // Told to drain as it became ready: it fails readiness like the first worker.
    await until(() => messages(s, "draining").filter((l) => l.worker === 2).length === 2, "the replacement draining");
    const seen = s.lines().length;
    const servedByReplacement = () => s.lines().slice(seen).some((l) => l.msg === "rpc" && l.worker === 2);
    // Each connection goes to the next worker in turn: a few calls reach the replacement.
    for (let i = 0; i < 4; i++) await assertDraining(s);
    await until(servedByReplacement, "a call served by the replacement");
    assert.deepEqual(messages(s, "stopping"), [], "the calls above were served during the delay");
    s.child.kill("SIGTERM");
    assert.equal(await s.exited, 0);
    assert.deepEqual(messages(s, "stopped").map((l) => l.worker).sort(), [1, 2], "the replacement stopped gracefully with the first");
  });
});
