// A unary call whose client leaves before its answer (an aborted fetch, an HTTP/1.1 socket
// destroyed, an HTTP/2 stream reset, a gRPC call cancelled) is logged and counted as `canceled`,
// as grpc-go and grpc-java count it: its answer reaches nobody, whatever its method returned.
// Without a deadline the method is not cut short (deadline-interceptor.ts), so what it did is
// done, and the audit trail records that: a login whose client left while its password was
// being checked still started its session, which the trail names and the store holds.
// A request whose client left before it arrived whole (mid-body, or an HTTP/2 stream reset
// before its END_STREAM) is not served, and counts once as `canceled` on every protocol and
// path (the unary fast paths, connect-es's own handlers, the REST transcoder), with no rpc line.
import assert from "node:assert/strict";
import { connect as connectHttp2, constants as http2Constants } from "node:http2";
import { connect as connectTcp } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { create, toBinary } from "@bufbuild/protobuf";
import { CreateSessionRequestSchema, SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import { expectOk } from "../support/api.js";
import { connectClient, grpcMethodDefinition, grpcWebClient } from "../support/clients.js";
import { ErrorCode, frame, FrameType, H2Wire } from "../support/h2-wire.js";
import { heldArgon2 } from "../support/held-argon2.js";
import { family, scrape, value } from "../support/metrics.js";
import { http1Answer } from "../support/net.js";
import { pollLast, pollUntil } from "../support/poll.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { admin, clientIdHeader, password, signUp, uniqueEmail, uniqueName } from "../support/users.js";
import { auditApi } from "../audit/api.js";
import { grpcWebTrailer } from "../hostile/support.js";

/** Polls until `done` holds (generous: the machine is shared). */
const until = <T>(what: string, done: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> => pollUntil(what, done, { limitMs: 20_000, intervalMs: 10 });

const service = SessionService.typeName;
/** A method, as tessera_rpc_requests_total labels it. */
interface Method {
  service: string;
  method: string;
}
const createSession: Method = { service, method: "CreateSession" };
const loginBody = (email: string) => JSON.stringify({ account_type: "traditional", email, password });

/** A login (SessionService/CreateSession) sent by a real client, and how that client leaves. */
interface Leaving {
  name: string;
  /** The protocol label the call is counted under. */
  protocol: string;
  /** Sends the login with x-request-id `requestId`; returns how to leave. */
  start(server: TestServer, email: string, requestId: string): () => void;
}

/** REST over HTTP/1.1: the login written on a socket, which is then destroyed. */
const restSocketDestroyed: Leaving = {
  name: "REST over HTTP/1.1, the socket destroyed",
  protocol: "rest",
  start(server, email, requestId) {
    const socket = connectTcp(server.port, "127.0.0.1");
    socket.on("error", () => {});
    const body = loginBody(email);
    socket.write(
      `POST /session HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `x-koms-clientid: ${testClientId}\r\nx-request-id: ${requestId}\r\n\r\n${body}`,
    );
    return () => socket.destroy();
  },
};

/** REST over h2c: the login's stream reset (RST_STREAM CANCEL). */
const restStreamReset: Leaving = {
  name: "REST over h2c, the stream reset (RST_STREAM CANCEL)",
  protocol: "rest",
  start(server, email, requestId) {
    const session = connectHttp2(server.url);
    session.on("error", () => {});
    const stream = session.request({ ":method": "POST", ":path": "/session", "content-type": "application/json", "x-request-id": requestId, ...clientIdHeader });
    stream.on("error", () => {});
    stream.end(loginBody(email));
    return () => {
      stream.close(http2Constants.NGHTTP2_CANCEL);
      session.close();
    };
  },
};

const clients: Leaving[] = [
  {
    name: "REST over HTTP/1.1, the fetch aborted",
    protocol: "rest",
    start(server, email, requestId) {
      const abort = new AbortController();
      const headers = { ...clientIdHeader, "content-type": "application/json", "x-request-id": requestId };
      fetch(`${server.url}/session`, { method: "POST", headers, body: loginBody(email), signal: abort.signal }).catch(() => {});
      return () => abort.abort();
    },
  },
  restSocketDestroyed,
  restStreamReset,
  ...[false, true].map(
    (http2): Leaving => ({
      name: `Connect over HTTP/${http2 ? "2 (RST_STREAM)" : "1.1 (the connection closed)"}, the call aborted`,
      protocol: "connect",
      start(server, email, requestId) {
        const abort = new AbortController();
        connectClient(SessionService, server.url, { http2 })
          .createSession({ accountType: "traditional", email, password }, { headers: { ...clientIdHeader, "x-request-id": requestId }, signal: abort.signal })
          .catch(() => {});
        return () => abort.abort();
      },
    }),
  ),
  {
    name: "gRPC (@grpc/grpc-js), the call cancelled",
    protocol: "grpc",
    start(server, email, requestId) {
      const Client = grpc.makeGenericClientConstructor({ CreateSession: grpcMethodDefinition(SessionService.method.createSession) }, service);
      const client = new Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
      const metadata = new grpc.Metadata();
      metadata.set("x-koms-clientid", testClientId);
      metadata.set("x-request-id", requestId);
      const call = (client as unknown as Record<string, Function>).CreateSession!.call(
        client,
        create(CreateSessionRequestSchema, { accountType: "traditional", email, password }),
        metadata,
        () => {},
      ) as grpc.ClientUnaryCall;
      return () => {
        call.cancel();
        client.close();
      };
    },
  },
  {
    name: "gRPC-Web over HTTP/1.1, the call aborted",
    protocol: "grpc-web",
    start(server, email, requestId) {
      const abort = new AbortController();
      grpcWebClient(SessionService, server.url)
        .createSession({ accountType: "traditional", email, password }, { headers: { ...clientIdHeader, "x-request-id": requestId }, signal: abort.signal })
        .catch(() => {});
      return () => abort.abort();
    },
  },
];

/** A login request sent in part (or whole but without its end): its protocol and how it is framed. */
interface Partial {
  name: string;
  protocol: string;
  http2: boolean;
  path: string;
  contentType: string;
  /** Headers sent besides the client id and request id (an admin call's credential). */
  headers?: Record<string, string>;
  /** What is sent of the body of a login of `email`. */
  part(email: string): Buffer;
}

const connectPath = `/${service}/CreateSession`;

/** The HTTP/1.1 head of `request` with Content-Length 200. */
const http1Head = (request: Partial, requestId: string) =>
  `POST ${request.path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: ${request.contentType}\r\ncontent-length: 200\r\nx-koms-clientid: ${testClientId}\r\nx-request-id: ${requestId}\r\n` +
  Object.entries(request.headers ?? {}).map(([name, v]) => `${name}: ${v}\r\n`).join("") +
  "\r\n";

/** HTTP/1.1: the head with Content-Length 200, part of the body, then the socket destroyed. */
async function http1Cut(server: TestServer, request: Partial, email: string, requestId: string): Promise<void> {
  const socket = connectTcp(server.port, "127.0.0.1");
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.write(http1Head(request, requestId));
  socket.write(request.part(email));
  await new Promise((r) => setTimeout(r, 50));
  socket.destroy();
}

/** HTTP/2: HEADERS, one DATA frame of the body without END_STREAM, then RST_STREAM (CANCEL). */
async function http2Cut(server: TestServer, request: Partial, email: string, requestId: string): Promise<void> {
  const wire = await H2Wire.open(server.port);
  const head: Array<[string, string]> = [[":method", "POST"], [":scheme", "http"], [":authority", "localhost"], [":path", request.path], ["content-type", request.contentType], ["x-koms-clientid", testClientId], ["x-request-id", requestId], ...Object.entries(request.headers ?? {})];
  wire.write(wire.headers(1, head));
  wire.write(frame(FrameType.DATA, 0, 1, request.part(email)));
  const cancel = Buffer.alloc(4);
  cancel.writeUInt32BE(ErrorCode.CANCEL);
  wire.write(frame(FrameType.RST_STREAM, 0, 1, cancel));
  await new Promise((r) => setTimeout(r, 50));
  wire.destroy();
}

/**
 * HTTP/1.1: the head with Content-Length 200 and part of the body, then nothing more: the
 * answer's status, and a gRPC-Web answer's grpc-status (its trailer frame's), as http2Stalled's.
 */
async function http1Stalled(server: TestServer, request: Partial, email: string, requestId: string): Promise<string> {
  const socket = connectTcp(server.port, "127.0.0.1");
  socket.on("error", () => {});
  socket.write(http1Head(request, requestId));
  socket.write(request.part(email));
  let received = "";
  socket.on("data", (d: Buffer) => (received += d.toString("latin1")));
  await new Promise((resolve) => socket.once("close", resolve));
  const answer = http1Answer(received);
  if (!answer.headers["content-type"]?.startsWith("application/grpc-web")) return String(answer.status);
  const body = answer.headers["content-type"] === "application/grpc-web-text" ? Buffer.from(answer.body.toString("latin1"), "base64") : answer.body;
  return `${answer.status} grpc-status ${grpcWebTrailer(body)["grpc-status"]}`;
}

/** HTTP/2: the head and part of the body, the stream left open: the answer's :status. */
async function http2Stalled(server: TestServer, request: Partial, email: string, requestId: string): Promise<string> {
  const session = connectHttp2(server.url);
  session.on("error", () => {});
  try {
    const stream = session.request({ ":method": "POST", ":path": request.path, "content-type": request.contentType, "x-request-id": requestId, ...clientIdHeader, ...request.headers });
    stream.on("error", () => {});
    stream.write(request.part(email));
    let grpcStatus = "";
    stream.once("trailers", (t) => (grpcStatus = t["grpc-status"] === undefined ? "" : ` grpc-status ${String(t["grpc-status"])}`));
    const status = await new Promise<number>((resolve) => stream.once("response", (h) => resolve(Number(h[":status"]))));
    stream.resume();
    await new Promise((resolve) => stream.once("close", resolve));
    return `${status}${grpcStatus}`;
  } finally {
    session.close();
  }
}

const loginProto = (email: string) => Buffer.from(toBinary(CreateSessionRequestSchema, create(CreateSessionRequestSchema, { accountType: "traditional", email, password })));
const envelopeOf = (message: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), message]).fill(message.length, 4, 5);
const someJson = (email: string) => Buffer.from(loginBody(email).slice(0, 20));

const partials: Partial[] = [
  { name: "REST over HTTP/1.1", protocol: "rest", http2: false, path: "/session", contentType: "application/json", part: someJson },
  { name: "REST over h2c", protocol: "rest", http2: true, path: "/session", contentType: "application/json", part: someJson },
  { name: "Connect (JSON) over HTTP/1.1", protocol: "connect", http2: false, path: connectPath, contentType: "application/json", part: someJson },
  // The whole message without its end: a Connect unary body ends only at END_STREAM.
  { name: "Connect (binary) over HTTP/2, the whole message sent but not its end", protocol: "connect", http2: true, path: connectPath, contentType: "application/proto", part: loginProto },
  { name: "gRPC over HTTP/2", protocol: "grpc", http2: true, path: connectPath, contentType: "application/grpc", part: (email) => envelopeOf(loginProto(email)).subarray(0, 12) },
  { name: "gRPC-Web over HTTP/1.1", protocol: "grpc-web", http2: false, path: connectPath, contentType: "application/grpc-web+proto", part: (email) => envelopeOf(loginProto(email)).subarray(0, 12) },
  // Read by connect-es's own handlers.
  { name: "gRPC-Web (text) over HTTP/1.1", protocol: "grpc-web", http2: false, path: connectPath, contentType: "application/grpc-web-text", part: (email) => Buffer.from(envelopeOf(loginProto(email)).toString("base64").slice(0, 16)) },
  { name: "gRPC (JSON) over HTTP/2", protocol: "grpc", http2: true, path: connectPath, contentType: "application/grpc+json", part: (email) => envelopeOf(Buffer.from(loginBody(email))).subarray(0, 12) },
];

const rotateKey: Method = { service: "tessera.key.v1.KeyService", method: "RotateKey" };
const rotatePath = `/${rotateKey.service}/${rotateKey.method}`;
/** JSON that never ends (its request is cut before it could be refused). */
const someAdminJson = () => Buffer.from('{"x":');

/** An admin call (KeyService/RotateKey) with the admin credential, its body sent in part. */
const adminPartials: Partial[] = [
  { name: "REST over HTTP/1.1", protocol: "rest", http2: false, path: "/v1/admin/keys:rotate", contentType: "application/json", headers: admin, part: someAdminJson },
  { name: "REST over h2c", protocol: "rest", http2: true, path: "/v1/admin/keys:rotate", contentType: "application/json", headers: admin, part: someAdminJson },
  { name: "Connect (JSON) over HTTP/1.1", protocol: "connect", http2: false, path: rotatePath, contentType: "application/json", headers: admin, part: someAdminJson },
  { name: "gRPC over HTTP/2", protocol: "grpc", http2: true, path: rotatePath, contentType: "application/grpc", headers: admin, part: () => Buffer.from([0, 0, 0, 0, 10, 0x0a]) },
];

/** tessera_rpc_requests_total of `method` (SessionService/CreateSession unless said) over `protocol`, by code. */
async function callCodes(server: TestServer, protocol: string, method = createSession): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const m of family(await scrape(`${server.url}/metrics`), "tessera_rpc_requests_total").metrics) {
    if (m.labels?.method === method.method && m.labels.service === method.service && m.labels.protocol === protocol) counts[m.labels.code!] = Number(m.value);
  }
  return counts;
}

/** The admin.call events of the call tagged `requestId`, as `outcome reason`. */
async function adminCallEvents(server: TestServer, requestId: string): Promise<string[]> {
  const page = expectOk(await auditApi("rest", server.url).listAuditEvents({ type: "admin.call", page_size: 500 }, admin));
  return page.events.filter((e) => e.request_id === requestId).map((e) => `${e.subject} ${e.outcome} ${e.reason ?? "-"}`);
}

/** Polls the counts of `method` over `protocol` until they change from `before` (or 3 s pass), then a little longer: the change. */
async function countedOnce(server: TestServer, protocol: string, before: Record<string, number>, method?: Method): Promise<Record<string, number>> {
  await pollLast(async () => delta(before, await callCodes(server, protocol, method)), (counted) => Object.keys(counted).length > 0, { limitMs: 3000, intervalMs: 20 });
  // Anything counted later (a second count) would show here too.
  await new Promise((r) => setTimeout(r, 200));
  return delta(before, await callCodes(server, protocol, method));
}

/** The counts that changed from `before` to `after`, by how much. */
const delta = (before: Record<string, number>, after: Record<string, number>) =>
  Object.fromEntries(Object.entries(after).flatMap(([code, n]) => (n !== (before[code] ?? 0) ? [[code, n - (before[code] ?? 0)]] : [])));

/** A login or admin call sent by a test: the user it was sent for (none for an admin call), its x-request-id, and what sending it came to. */
interface Tagged<R> {
  user?: { id: string };
  requestId: string;
  outcome: R;
}

/** A request of a test, sent with others side by side: what it is counted under, and how it is sent. */
interface Sending<T> {
  protocol: string;
  method: Method;
  /** Sets up what the request needs and sends it; resolves once it has ended. */
  send(server: TestServer): Promise<T>;
}

/** What a request sent side by side came to: `send`'s value, and its change of tessera_rpc_requests_total (countedOnce). */
interface Sent<T> {
  sent: T;
  counted: Record<string, number>;
}

/**
 * Sends `requests` side by side, in rounds in which no two are counted under the same protocol and
 * method, so that each request's change of tessera_rpc_requests_total is its own alone. The i-th
 * function answers the i-th request's outcome (its failure, if it failed); the first call of any
 * request of a round sends the whole round.
 */
function inRounds<T>(server: () => TestServer, requests: Array<Sending<T>>): Array<() => Promise<Sent<T>>> {
  const counter = (r: Sending<T>) => `${r.protocol} ${r.method.service}/${r.method.method}`;
  const rounds: number[][] = [];
  requests.forEach((request, i) => {
    const round = rounds.find((members) => members.every((j) => counter(requests[j]!) !== counter(request)));
    if (round) round.push(i);
    else rounds.push([i]);
  });
  const outcomes = new Map<number[], Promise<Array<PromiseSettledResult<Sent<T>>>>>();
  const sendOne = async ({ protocol, method, send }: Sending<T>): Promise<Sent<T>> => {
    const before = await callCodes(server(), protocol, method);
    const sent = await send(server());
    return { sent, counted: await countedOnce(server(), protocol, before, method) };
  };
  return requests.map((_, i) => async () => {
    const round = rounds.find((members) => members.includes(i))!;
    let settled = outcomes.get(round);
    if (!settled) outcomes.set(round, (settled = Promise.allSettled(round.map((j) => sendOne(requests[j]!)))));
    const outcome = (await settled)[round.indexOf(i)]!;
    if (outcome.status === "rejected") throw outcome.reason;
    return outcome.value;
  });
}

/**
 * The logins of `partials` (each for a user signed up for it) and the admin calls of
 * `adminPartials`, each sent by `act` with an x-request-id named after `tag`.
 */
function partialRequests<R>(tag: string, act: (server: TestServer, request: Partial, email: string, requestId: string) => Promise<R>): Array<Sending<Tagged<R>>> {
  return [
    ...partials.map((client) => ({
      protocol: client.protocol,
      method: createSession,
      async send(server: TestServer) {
        const email = uniqueEmail(tag);
        const user = await signUp(server, email);
        const requestId = uniqueName(tag);
        return { user, requestId, outcome: await act(server, client, email, requestId) };
      },
    })),
    ...adminPartials.map((client) => ({
      protocol: client.protocol,
      method: rotateKey,
      async send(server: TestServer) {
        const requestId = uniqueName(`admin-${tag}`);
        return { requestId, outcome: await act(server, client, "", requestId) };
      },
    })),
  ];
}

/**
 * A login sent by `client`, which leaves while the login's password is checked (the check held
 * until the server has seen it go): the call's rpc line and count say canceled; the login and
 * the session it started are in the audit trail, and the session in the store.
 */
async function leavesWhileHashing(server: TestServer, client: Leaving): Promise<void> {
  const email = uniqueEmail("leaves");
  const user = await signUp(server, email);
  const requestId = uniqueName("leaves");
  const before = await callCodes(server, client.protocol);
  const verify = heldArgon2("verify");
  try {
    const leave = client.start(server, email, requestId);
    await verify.started();
    const scope = verify.scopes[0];
    assert.equal(scope?.requestId, requestId, "the held password check is the login's");
    leave();
    await until("the server sees its client gone", () => scope?.signal?.aborted);
  } finally {
    verify.restore();
  }

  // The login went on (no deadline cuts it short) and ended: its rpc line says how it was answered.
  const line = await until("the login's rpc line", () =>
    server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "rpc" && l.requestId === requestId),
  );
  assert.deepEqual([line.procedure, line.protocol, line.code], [`${service}/CreateSession`, client.protocol, "canceled"]);
  assert.deepEqual(delta(before, await callCodes(server, client.protocol)), { canceled: 1 }, "tessera_rpc_requests_total of CreateSession, by code");

  // What it did is recorded as it happened: the password checked out, the session started.
  const page = expectOk(await auditApi("rest", server.url).listAuditEvents({ user_id: user.id }, admin));
  const mine = page.events.filter((e) => e.request_id === requestId).reverse();
  assert.deepEqual(mine.map((e) => `${e.type} ${e.outcome}`), ["login success", "session.started success"]);
  const sessionId = mine[1]!.subject!;
  assert.equal((await server.tessera.store.sessions.findById(sessionId))?.userId, user.id, "the session the trail names is stored");

  // Nothing left in flight, nothing failed.
  const m = await scrape(`${server.url}/metrics`);
  for (const gauge of ["tessera_hasher_in_use", "tessera_hasher_queue_depth", "tessera_hasher_reserved", "tessera_streams_open"]) {
    assert.equal(value(m, gauge), 0, gauge);
  }
  assert.deepEqual(server.logs.filter((l) => /"level":"error"/.test(l)), []);
}

for (const store of storesUnderTest()) {
  describe(`unary calls whose client left (${store})`, function () {
    this.timeout(60_000);
    let server: TestServer;
    before(async () => (server = await startTestServer({ store })));
    after(() => server?.close());

    for (const client of clients) {
      it(`${client.name}, while its password was checked: logged and counted canceled, not ok; the session it started is in the trail and the store`, () => leavesWhileHashing(server, client));
    }

    it("a login answered before its client left is counted ok, not canceled", async () => {
      const email = uniqueEmail("stays");
      await signUp(server, email);
      const before = await callCodes(server, "connect");
      const answered = await connectClient(SessionService, server.url).createSession({ accountType: "traditional", email, password }, { headers: clientIdHeader });
      assert.ok(answered.accessToken);
      assert.deepEqual(delta(before, await callCodes(server, "connect")), { ok: 1 });
    });

    // Each request cut short is sent side by side with others of other counts.
    const cut = inRounds(() => server, partialRequests("cut", (server, client, email, requestId) => (client.http2 ? http2Cut : http1Cut)(server, client, email, requestId)));

    partials.forEach((client, i) => {
      it(`${client.name}, cut short: not served, counted once as canceled, no rpc line, no audit event`, async () => {
        const { sent, counted } = await cut[i]!();
        const { user, requestId } = sent;
        // Counted when the server has seen the client go (or not at all: then after a while).
        assert.deepEqual(counted, { canceled: 1 }, "tessera_rpc_requests_total of CreateSession, by code");
        assert.deepEqual(server.logs.filter((l) => l.includes(requestId)), [], "log lines of the request");
        const page = expectOk(await auditApi("rest", server.url).listAuditEvents({ user_id: user!.id }, admin));
        assert.deepEqual(page.events.map((e) => e.type), ["signup"]);
        assert.equal(value(await scrape(`${server.url}/metrics`), "tessera_hasher_in_use"), 0);
      });
    });

    adminPartials.forEach((client, i) => {
      it(`an admin call with the admin credential, ${client.name}, cut short: not served, counted once as canceled, admin.call recorded canceled`, async () => {
        const { sent, counted } = await cut[partials.length + i]!();
        const { requestId } = sent;
        assert.deepEqual(counted, { canceled: 1 }, "tessera_rpc_requests_total of RotateKey, by code");
        assert.deepEqual(await until("the admin.call event", async () => ((await adminCallEvents(server, requestId)).length > 0 ? adminCallEvents(server, requestId) : false)), [
          `${rotateKey.service}/${rotateKey.method} canceled -`,
        ]);
      });
    });
  });
}

// A request that has not arrived whole within TESSERA_REQUEST_TIMEOUT_MS is answered 408
// DEADLINE_EXCEEDED by the server itself (a gRPC or gRPC-Web call: grpc-status 4 in its trailers):
// counted with the code its client got, not as one whose client left.
for (const store of storesUnderTest()) {
  describe(`requests the server's request timeout cut off (${store})`, function () {
    this.timeout(60_000);
    let server: TestServer;
    before(async () => (server = await startTestServer({ store, env: { TESSERA_REQUEST_TIMEOUT_MS: "1000", TESSERA_HEADERS_TIMEOUT_MS: "1000" } })));
    after(() => server?.close());

    // Each stalled request waits out the request timeout side by side with others of other counts.
    const stalled = inRounds(() => server, partialRequests("slow", (server, client, email, requestId) => (client.http2 ? http2Stalled : http1Stalled)(server, client, email, requestId)));
    // gRPC and gRPC-Web in their own framing (over HTTP/1.1 as over HTTP/2); REST and Connect
    // unary calls 408 with the JSON error.
    const answer = (client: Partial) => (client.protocol === "grpc" || client.protocol === "grpc-web" ? "200 grpc-status 4" : "408");

    partials.forEach((client, i) => {
      it(`${client.name}, its body never finished: answered ${answer(client)}, counted once as deadline_exceeded, no rpc line, no audit event`, async () => {
        const { sent, counted } = await stalled[i]!();
        const { user, requestId, outcome: status } = sent;
        assert.equal(status, answer(client));
        assert.deepEqual(counted, { deadline_exceeded: 1 }, "tessera_rpc_requests_total of CreateSession, by code");
        assert.deepEqual(server.logs.filter((l) => l.includes(requestId)), [], "log lines of the request");
        const page = expectOk(await auditApi("rest", server.url).listAuditEvents({ user_id: user!.id }, admin));
        assert.deepEqual(page.events.map((e) => e.type), ["signup"]);
      });
    });

    adminPartials.forEach((client, i) => {
      it(`an admin call with the admin credential, ${client.name}, its body never finished: answered ${answer(client)}, counted once as deadline_exceeded, admin.call recorded canceled`, async () => {
        const { sent, counted } = await stalled[partials.length + i]!();
        const { requestId, outcome: status } = sent;
        assert.equal(status, answer(client));
        assert.deepEqual(counted, { deadline_exceeded: 1 }, "tessera_rpc_requests_total of RotateKey, by code");
        assert.deepEqual(await until("the admin.call event", async () => ((await adminCallEvents(server, requestId)).length > 0 ? adminCallEvents(server, requestId) : false)), [
          `${rotateKey.service}/${rotateKey.method} canceled -`,
        ]);
      });
    });
  });
}
