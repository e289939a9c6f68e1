// The caller's deadline holds on every protocol. A server stream (grpc.health.v1.Health/Watch)
// ends at the deadline with DEADLINE_EXCEEDED — gRPC trailers, the gRPC-Web trailer frame, the
// Connect end-stream message — and its log line is written then, with that code and the
// stream's duration; Watch leaves no listener or timer behind. A unary call whose handler is
// still busy at the deadline (a sign-up hashing its password) answers DEADLINE_EXCEEDED then,
// and the store writes after it are not made: the account does not exist.
import { strict as assert } from "node:assert";
import { getEventListeners } from "node:events";
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { Code, ConnectError, createHandlerContext } from "@connectrpc/connect";
import { Health, HealthCheckRequestSchema, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import { UserService } from "../../gen/tessera/session/v1/session_pb.js";
import { createHealthImpl } from "../../src/server/health.js";
import { connectEnvelopes, grpcFrame, grpcStatus, grpcWebTrailer, h2request } from "../hostile/support.js";
import { scrape, value } from "../support/metrics.js";
import { pollUntil } from "../support/poll.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { clientIdHeader, password, signUp, uniqueEmail } from "../support/users.js";

const watch = "/grpc.health.v1.Health/Watch";
const watchRequest = Buffer.from(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "" })));

interface RpcLine {
  msg: string;
  procedure: string;
  protocol: string;
  code: string;
  durationMs: number;
  requestId?: string;
}

/**
 * Until no password hash runs, waits or holds a place (/metrics): a call past its deadline has
 * finished its hash by then, and made the insert that would follow it, were it made.
 */
async function hashesDone(server: TestServer): Promise<void> {
  await pollUntil(
    "no password hash running, queued or reserved",
    async () => {
      const families = await scrape(`${server.url}/metrics`);
      return ["tessera_hasher_in_use", "tessera_hasher_queue_depth", "tessera_hasher_reserved"].every((gauge) => value(families, gauge) === 0);
    },
    { limitMs: 10_000, intervalMs: 20 },
  );
}

function rpcLines(server: TestServer, procedure: string): RpcLine[] {
  return server.logs.map((l) => JSON.parse(l) as RpcLine).filter((l) => l.msg === "rpc" && l.procedure === procedure);
}

/** UserService/CreateUser over raw gRPC (h2c) with `grpc-timeout`: the answer's headers and trailers. */
async function grpcCreateUser(server: TestServer, email: string, grpcTimeout: string, contentType = "application/grpc"): Promise<Awaited<ReturnType<typeof h2request>>> {
  const session = http2.connect(server.url);
  try {
    const request = toBinary(UserService.method.createUser.input, create(UserService.method.createUser.input, { email, password }));
    return await h2request(
      session,
      { ":method": "POST", ":path": "/tessera.session.v1.UserService/CreateUser", "content-type": contentType, te: "trailers", "grpc-timeout": grpcTimeout, ...clientIdHeader },
      grpcFrame(request),
      { timeoutMs: 10_000 },
    );
  } finally {
    session.close();
  }
}

describe("deadlines", function () {
  this.timeout(30_000);

  describe("server streams end at the deadline with DEADLINE_EXCEEDED (Health/Watch, deadline 400 ms)", () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer();
    });
    after(() => server?.close());

    it("gRPC: the trailers say grpc-status 4 after the SERVING message; the stream's log line, written when it ends, says deadline_exceeded", async () => {
      const before = rpcLines(server, "grpc.health.v1.Health/Watch").length;
      const session = http2.connect(server.url);
      try {
        const a = await h2request(
          session,
          { ":method": "POST", ":path": watch, "content-type": "application/grpc", te: "trailers", "grpc-timeout": "400m" },
          grpcFrame(watchRequest),
          { timeoutMs: 5000 },
        );
        assert.equal(a.headers[":status"], 200);
        assert.ok(a.data.length > 5, "the SERVING message was not sent");
        assert.equal(grpcStatus(a), grpc.status.DEADLINE_EXCEEDED, JSON.stringify(a.trailers));
        // This client has no timer of its own: the server's deadline ends the stream.
        // (Up to 10 s: on a loaded machine the line can come well after the client saw its error.)
        for (let i = 0; i < 500 && rpcLines(server, "grpc.health.v1.Health/Watch").length === before; i++) await new Promise((r) => setTimeout(r, 20));
        const lines = rpcLines(server, "grpc.health.v1.Health/Watch").slice(before);
        assert.equal(lines.length, 1, JSON.stringify(lines));
        assert.equal(lines[0]!.code, "deadline_exceeded");
      } finally {
        session.close();
      }
    });

    it("gRPC-Web: the trailer frame says grpc-status 4", async () => {
      const res = await fetch(`${server.url}${watch}`, {
        method: "POST",
        headers: { "content-type": "application/grpc-web+proto", "grpc-timeout": "400m" },
        body: grpcFrame(watchRequest),
      });
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(res.status, 200);
      assert.equal(grpcWebTrailer(body)["grpc-status"], String(grpc.status.DEADLINE_EXCEEDED));
    });

    it("Connect: the end-stream message carries the error deadline_exceeded", async () => {
      const res = await fetch(`${server.url}${watch}`, {
        method: "POST",
        headers: { "content-type": "application/connect+proto", "connect-timeout-ms": "400" },
        body: grpcFrame(watchRequest),
      });
      const envelopes = connectEnvelopes(Buffer.from(await res.arrayBuffer()));
      assert.equal(res.status, 200);
      const [flags, end] = envelopes.at(-1)!;
      assert.equal(flags, 0x02, "the last envelope is the end-stream message");
      assert.equal(JSON.parse(end).error?.code, "deadline_exceeded", end);
    });

    it("a @grpc/grpc-js client's Watch with a deadline: DEADLINE_EXCEEDED; its log line is written when the stream ends, with the stream's duration", async () => {
      const before = rpcLines(server, "grpc.health.v1.Health/Watch").length;
      const Ctor = grpc.makeGenericClientConstructor(
        {
          Watch: {
            path: watch,
            requestStream: false,
            responseStream: true,
            requestSerialize: (b: Buffer) => b,
            requestDeserialize: (b: Buffer) => b,
            responseSerialize: (b: Buffer) => b,
            responseDeserialize: (b: Buffer) => b,
          },
        },
        "Health",
      );
      const client = new Ctor(server.url.replace("http://", ""), grpc.credentials.createInsecure());
      try {
        const code = await new Promise<number>((resolve) => {
          const call = (client as unknown as { Watch: Function }).Watch(watchRequest, { deadline: Date.now() + 400 }) as grpc.ClientReadableStream<Buffer>;
          call.on("data", () => {});
          call.on("error", (e: grpc.ServiceError) => resolve(e.code));
          call.on("end", () => resolve(grpc.status.OK));
        });
        assert.equal(code, grpc.status.DEADLINE_EXCEEDED);
        // The server's own deadline fires at the same time as the client's: wait for its line.
        // (Up to 10 s: on a loaded machine the line can come well after the client saw its error.)
        for (let i = 0; i < 500 && rpcLines(server, "grpc.health.v1.Health/Watch").length === before; i++) await new Promise((r) => setTimeout(r, 20));
        const lines = rpcLines(server, "grpc.health.v1.Health/Watch").slice(before);
        assert.equal(lines.length, 1, JSON.stringify(lines));
        assert.equal(lines[0]!.protocol, "grpc");
        // (Its code is not asserted: this client resets the stream at its own deadline, the same
        // instant as the server's, so the line says deadline_exceeded or canceled by which of the
        // two the server saw first. The test above, whose client has no timer, pins the code.)
        assert.ok(lines[0]!.durationMs >= 200, `the line says the stream lasted ${lines[0]!.durationMs} ms`);
      } finally {
        client.close();
      }
    });
  });

  describe("Health/Watch polls without leaking (interval 5 ms)", () => {
    it("holds at most one abort listener at a time, ends with the deadline's DEADLINE_EXCEEDED, and polls no more once ended", async () => {
      let probes = 0;
      const impl = createHealthImpl([], async () => (probes++, true), 5);
      const ctx = createHandlerContext({
        service: Health,
        method: Health.method.watch,
        protocolName: "grpc",
        requestMethod: "POST",
        url: `http://localhost${watch}`,
      });
      const listenersBefore = getEventListeners(ctx.signal, "abort").length; // connect-es's own
      const it = impl.watch(create(HealthCheckRequestSchema), ctx)[Symbol.asyncIterator]();
      const first = await it.next();
      assert.equal((first.value as { status: Status }).status, Status.SERVING);
      const pending = it.next(); // no change: the stream waits, polling every 5 ms
      await new Promise((r) => setTimeout(r, 150));
      assert.ok(probes >= 5, `only ${probes} polls`);
      const listeners = getEventListeners(ctx.signal, "abort").length - listenersBefore;
      assert.ok(listeners <= 1, `${listeners} abort listeners of the stream's after ~30 polls`);
      ctx.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
      await assert.rejects(pending, (e: unknown) => e instanceof ConnectError && e.code === Code.DeadlineExceeded);
      assert.equal(getEventListeners(ctx.signal, "abort").length, 0, "a listener outlived the stream");
      const probesAtEnd = probes;
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(probes, probesAtEnd, "the stream went on polling after it ended");
    });

    // Watch is public and a stream stays open as long as its client wants: a client holding many
    // streams open (100 a connection) must not make the store answer a probe per stream each
    // interval. Every watcher reads the one status probed per interval.
    it("many watchers share one probe per interval: 50 streams open for 10 intervals (20 ms) cost about 10 probes, not 500", async () => {
      let probes = 0;
      const intervalMs = 20;
      const impl = createHealthImpl([], async () => (probes++, true), intervalMs);
      const watchers = Array.from({ length: 50 }, () => {
        const ctx = createHandlerContext({ service: Health, method: Health.method.watch, protocolName: "grpc", requestMethod: "POST", url: `http://localhost${watch}` });
        return { ctx, it: impl.watch(create(HealthCheckRequestSchema), ctx)[Symbol.asyncIterator]() };
      });
      const started = performance.now();
      for (const w of watchers) assert.equal(((await w.it.next()).value as { status: Status }).status, Status.SERVING);
      const pending = watchers.map((w) => w.it.next());
      await new Promise((r) => setTimeout(r, 10 * intervalMs));
      const intervals = (performance.now() - started) / intervalMs;
      const seen = probes;
      for (const w of watchers) w.ctx.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
      await Promise.allSettled(pending);
      assert.ok(seen <= intervals + 2, `${seen} probes in ${intervals.toFixed(1)} intervals for 50 watchers`);
    });
  });

  // Deadlines are kept in whole ms, rounded down: a grpc-timeout under a millisecond ("1n",
  // "999u") has passed on arrival, as "0m" and connect-timeout-ms 0 have. Such a call is not
  // served: it was (a timer under 1 ms runs after 1 ms, and GetVersion never waits).
  describe("a deadline passed on arrival (under a millisecond, or 0) ends the call with DEADLINE_EXCEEDED", () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer();
    });
    after(() => server?.close());
    const version = "/tessera.jwt.v1.JwtService/GetVersion";

    for (const timeout of ["0m", "1n", "1u", "999u", "999999n"]) {
      for (const [path, body] of [
        [version, grpcFrame(new Uint8Array())],
        [watch, grpcFrame(watchRequest)],
      ] as const) {
        it(`gRPC (grpc-timeout ${timeout}), ${path}: grpc-status 4, no message`, async () => {
          const session = http2.connect(server.url);
          try {
            const a = await h2request(session, { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", "grpc-timeout": timeout }, body, { timeoutMs: 5000 });
            assert.equal(grpcStatus(a), grpc.status.DEADLINE_EXCEEDED, JSON.stringify({ ...a.headers, ...a.trailers }));
            assert.equal(a.data.length, 0);
          } finally {
            session.close();
          }
        });
      }
      it(`gRPC-Web (grpc-timeout ${timeout}): grpc-status 4`, async () => {
        const res = await fetch(`${server.url}${version}`, { method: "POST", headers: { "content-type": "application/grpc-web+proto", "grpc-timeout": timeout }, body: grpcFrame(new Uint8Array()) });
        assert.equal(grpcWebTrailer(Buffer.from(await res.arrayBuffer()))["grpc-status"], String(grpc.status.DEADLINE_EXCEEDED));
      });
    }

    it("gRPC (grpc-timeout 99999999u, 99.9 s): served", async () => {
      const session = http2.connect(server.url);
      try {
        const a = await h2request(session, { ":method": "POST", ":path": version, "content-type": "application/grpc", te: "trailers", "grpc-timeout": "99999999u" }, grpcFrame(new Uint8Array()));
        assert.equal(grpcStatus(a), grpc.status.OK);
      } finally {
        session.close();
      }
    });

    for (const [name, contentType] of [["Connect JSON", "application/json"], ["Connect binary", "application/proto"]] as const) {
      it(`${name} (connect-timeout-ms 0): 504 deadline_exceeded`, async () => {
        const res = await fetch(`${server.url}${version}`, { method: "POST", headers: { "content-type": contentType, "connect-timeout-ms": "0" }, body: contentType === "application/json" ? "{}" : new Uint8Array() });
        assert.equal(res.status, 504);
        assert.equal(((await res.json()) as { code: string }).code, "deadline_exceeded");
      });
    }

    it("REST (connect-timeout-ms 0): GET /jwt/version is 504 deadline_exceeded", async () => {
      const res = await fetch(`${server.url}/jwt/version`, { headers: { "connect-timeout-ms": "0" } });
      const text = await res.text();
      assert.equal(res.status, 504, text);
      assert.match(text, /deadline/i);
    });
  });

  describe("a unary call still busy at its deadline (sign-up hashing a password: argon2 32 MiB x 3)", () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ env: { TESSERA_ARGON2_MEMORY_KIB: "32768", TESSERA_ARGON2_ITERATIONS: "3" } });
    });
    after(() => server?.close());

    it("gRPC (grpc-timeout 50m): grpc-status 4 at the deadline, and the account is not created", async () => {
      const email = uniqueEmail("late-grpc");
      const a = await grpcCreateUser(server, email, "50m");
      assert.equal(grpcStatus(a), grpc.status.DEADLINE_EXCEEDED, JSON.stringify({ ...a.headers, ...a.trailers }));
      const line = rpcLines(server, "tessera.session.v1.UserService/CreateUser").at(-1);
      assert.equal(line?.code, "deadline_exceeded");
      // The hash finishes after the deadline; the insert that follows is not made.
      await hashesDone(server);
      await signUp(server, email); // 201: the account was not created
    });

    // Media types are case-insensitive (RFC 9110 8.3.1): connect-es serves "Application/gRPC" as
    // gRPC, so its grpc-timeout is the call's deadline too.
    it("gRPC with an upper-case content type (Application/gRPC, grpc-timeout 50m): grpc-status 4 at the deadline, and the account is not created", async () => {
      const email = uniqueEmail("late-grpc-upper");
      const a = await grpcCreateUser(server, email, "50m", "Application/gRPC");
      assert.equal(grpcStatus(a), grpc.status.DEADLINE_EXCEEDED, JSON.stringify({ ...a.headers, ...a.trailers }));
      const line = rpcLines(server, "tessera.session.v1.UserService/CreateUser").at(-1);
      assert.deepEqual([line?.protocol, line?.code], ["grpc", "deadline_exceeded"]);
      await hashesDone(server);
      await signUp(server, email); // 201: the account was not created
    });

    it("Connect (connect-timeout-ms 50): deadline_exceeded at the deadline, and the account is not created", async () => {
      const email = uniqueEmail("late-connect");
      const res = await fetch(`${server.url}/tessera.session.v1.UserService/CreateUser`, {
        method: "POST",
        headers: { "content-type": "application/json", "connect-timeout-ms": "50", ...clientIdHeader },
        body: JSON.stringify({ email, password }),
      });
      const body = (await res.json()) as { code: string };
      assert.equal(body.code, "deadline_exceeded");
      assert.equal(res.status, 504);
      await hashesDone(server);
      await signUp(server, email); // 201: the account was not created
    });
  });

  // Node fires a timer set beyond 2^31-1 ms (24.8 days) after 1 ms. A deadline that far away
  // (a grpc-js client's 30-day deadline is "2592000S") must not end the call at once — nor
  // answer DEADLINE_EXCEEDED while the account is created anyway, as it did.
  describe("a deadline further away than a timer holds (over 2^31-1 ms) is no deadline (sign-up hashing: argon2 32 MiB x 3)", () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ env: { TESSERA_ARGON2_MEMORY_KIB: "32768", TESSERA_ARGON2_ITERATIONS: "3" } });
    });
    after(() => server?.close());

    for (const [name, contentType] of [
      ["Connect", "application/json"],
      ["Connect (charset parameter: connect-es's handler)", "application/json; charset=utf-8"],
    ] as const) {
      it(`${name} (connect-timeout-ms 9999999999): the call is answered`, async () => {
        const email = uniqueEmail("far-connect");
        const res = await fetch(`${server.url}/tessera.session.v1.UserService/CreateUser`, {
          method: "POST",
          headers: { "content-type": contentType, "connect-timeout-ms": "9999999999", ...clientIdHeader },
          body: JSON.stringify({ email, password }),
        });
        assert.equal(res.status, 200, await res.text());
      });
    }

    it("REST (connect-timeout-ms 9999999999): POST /user is 201", async () => {
      const email = uniqueEmail("far-rest");
      const res = await fetch(`${server.url}/user`, {
        method: "POST",
        headers: { "content-type": "application/json", "connect-timeout-ms": "9999999999", ...clientIdHeader },
        body: JSON.stringify({ email, password }),
      });
      assert.equal(res.status, 201, await res.text());
    });

    for (const [name, timeout] of [
      ["grpc-timeout 99999999S", "99999999S"],
      ["grpc-timeout 2592000S: a grpc-js deadline 30 days away", "2592000S"],
    ] as const) {
      it(`gRPC (${name}): grpc-status 0`, async () => {
        const a = await grpcCreateUser(server, uniqueEmail("far-grpc"), timeout);
        assert.equal(grpcStatus(a), grpc.status.OK, JSON.stringify({ ...a.headers, ...a.trailers }));
      });
    }
  });
  // The deadline runs from the request's arrival, reading its body included: a client that
  // stops sending mid-message is answered at its deadline, not at the request timeout (30 s).
  describe("a request body still arriving at the deadline (grpc-timeout 300m, connect-timeout-ms 300): DEADLINE_EXCEEDED at the deadline", () => {
    let server: TestServer;
    let session: http2.ClientHttp2Session;
    before(async () => {
      server = await startTestServer();
    });
    after(() => server?.close());
    beforeEach(() => {
      session = http2.connect(server.url);
      session.on("error", () => {});
    });
    afterEach(() => session.destroy());
    const version = "/tessera.jwt.v1.JwtService/GetVersion";
    /** Log lines of an answer that failed or an unexpected error: none, the client is at fault. */
    const failures = (s: TestServer) => s.logs.filter((l) => /"msg":"(rpc answer failed|unexpected error)"/.test(l));
    /** An envelope announcing 10 bytes, 2 of them sent. */
    const cutShort = Buffer.from([0, 0, 0, 0, 10, 0x0a, 0x01]);
    const grpcCases: Array<[string, string, http2.OutgoingHttpHeaders, Buffer]> = [
      ["gRPC", version, { "content-type": "application/grpc" }, cutShort],
      ["gRPC, grpc-encoding gzip", version, { "content-type": "application/grpc", "grpc-encoding": "gzip" }, cutShort],
      ["gRPC+JSON", version, { "content-type": "application/grpc+json" }, cutShort],
      ["gRPC server stream (Health/Watch)", watch, { "content-type": "application/grpc" }, cutShort],
      ["gRPC-Web", version, { "content-type": "application/grpc-web+proto" }, cutShort],
      ["gRPC-Web text", version, { "content-type": "application/grpc-web-text" }, Buffer.from(cutShort.subarray(0, 6).toString("base64"))],
    ];
    for (const [name, path, headers, body] of grpcCases) {
      it(`${name}: grpc-status 4 "the operation timed out"`, async () => {
        const t0 = Date.now();
        const a = await h2request(session, { ":method": "POST", ":path": path, te: "trailers", "grpc-timeout": "300m", ...headers }, body, { endStream: false, timeoutMs: 5000 });
        const ms = Date.now() - t0;
        const data = String(headers["content-type"]).includes("text") ? Buffer.from(a.data.toString("latin1"), "base64") : a.data;
        const status = String(headers["content-type"]).startsWith("application/grpc-web") ? grpcWebTrailer(data) : { ...a.headers, ...a.trailers };
        assert.equal(status["grpc-status"], String(grpc.status.DEADLINE_EXCEEDED), JSON.stringify(status));
        assert.equal(status["grpc-message"], "the operation timed out");
        assert.ok(ms >= 250 && ms < 2000, `answered after ${ms} ms`);
        assert.deepEqual(failures(server), []);
      });
    }
    for (const [name, headers, body] of [
      ["Connect JSON", { "content-type": "application/json" }, Buffer.from('{"a":')],
      ["Connect JSON, content-encoding gzip", { "content-type": "application/json", "content-encoding": "gzip" }, Buffer.from([0x1f, 0x8b])],
    ] as const) {
      it(`${name}: 504 deadline_exceeded "the operation timed out"`, async () => {
        const t0 = Date.now();
        const a = await h2request(session, { ":method": "POST", ":path": version, "connect-timeout-ms": "300", ...headers }, body, { endStream: false, timeoutMs: 5000 });
        const ms = Date.now() - t0;
        assert.equal(a.headers[":status"], 504, a.data.toString());
        const error = JSON.parse(a.data.toString()) as { code: string; message: string };
        assert.deepEqual([error.code, error.message], ["deadline_exceeded", "the operation timed out"]);
        assert.ok(ms >= 250 && ms < 2000, `answered after ${ms} ms`);
        assert.deepEqual(failures(server), []);
      });
    }
  });
});
