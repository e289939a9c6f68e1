// A unary call whose client leaves before its answer (an aborted fetch, an HTTP/1.1 socket
// destroyed, an HTTP/2 stream reset, a gRPC call cancelled) is logged and counted as `canceled`,
// as grpc-go and grpc-java count it: its answer reaches nobody, whatever its method returned.
// Without a deadline the method is not cut short (deadline-interceptor.ts), so what it did is
// done, and the audit trail records that: a login whose client left while its password was
// being checked still started its session, which the trail names and the store holds.
import assert from "node:assert/strict";
import { connect as connectHttp2, constants as http2Constants } from "node:http2";
import { connect as connectTcp } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { CreateSessionRequestSchema, SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import { expectOk } from "../support/api.js";
import { connectClient, grpcMethodDefinition, grpcWebClient } from "../support/clients.js";
import { heldArgon2 } from "../support/held-argon2.js";
import { scrape, value } from "../support/metrics.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { admin, clientIdHeader, password, signUp, uniqueEmail, uniqueName } from "../support/users.js";
import { auditApi } from "../audit/api.js";

/** Polls until `done` holds (generous: the machine is shared). */
async function until<T>(what: string, done: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const got = await done();
    if (got !== undefined && got !== false) return got;
    assert.ok(Date.now() < deadline, `timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const service = SessionService.typeName;
const loginBody = (email: string) => JSON.stringify({ account_type: "traditional", email, password });

/** A login (SessionService/CreateSession) sent by a real client, and how that client leaves. */
interface Leaving {
  name: string;
  /** The protocol label the call is counted under. */
  protocol: string;
  /** Sends the login with x-request-id `requestId`; returns how to leave. */
  start(server: TestServer, email: string, requestId: string): () => void;
}

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
  {
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
  },
  {
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
  },
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

for (const store of storesUnderTest()) {
  describe(`unary calls whose client left before the answer (${store})`, function () {
    this.timeout(60_000);
    let server: TestServer;
    before(async () => (server = await startTestServer({ store })));
    after(() => server?.close());

    const createSessions = async (protocol: string) => {
      const m = await scrape(`${server.url}/metrics`);
      const count = (code: string) => value(m, "tessera_rpc_requests_total", { service, method: "CreateSession", protocol, code });
      return { ok: count("ok"), canceled: count("canceled"), m };
    };

    for (const client of clients) {
      it(`${client.name}, while its password was checked: logged and counted canceled, not ok; the session it started is in the trail and the store`, async () => {
        const email = uniqueEmail("leaves");
        const user = await signUp(server, email);
        const requestId = uniqueName("leaves");
        const before = await createSessions(client.protocol);
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
        const after = await createSessions(client.protocol);
        assert.deepEqual({ ok: after.ok - before.ok, canceled: after.canceled - before.canceled }, { ok: 0, canceled: 1 }, "tessera_rpc_requests_total of CreateSession");

        // What it did is recorded as it happened: the password checked out, the session started.
        const page = expectOk(await auditApi("rest", server.url).listAuditEvents({ user_id: user.id }, admin));
        const mine = page.events.filter((e) => e.request_id === requestId).reverse();
        assert.deepEqual(mine.map((e) => `${e.type} ${e.outcome}`), ["login success", "session.started success"]);
        const sessionId = mine[1]!.subject!;
        assert.equal((await server.tessera.store.sessions.findById(sessionId))?.userId, user.id, "the session the trail names is stored");

        // Nothing left in flight, nothing failed.
        for (const gauge of ["tessera_hasher_in_use", "tessera_hasher_queue_depth", "tessera_hasher_reserved", "tessera_streams_open"]) {
          assert.equal(value(after.m, gauge), 0, gauge);
        }
        assert.deepEqual(server.logs.filter((l) => /"level":"error"/.test(l)), []);
      });
    }

    it("a login answered before its client left is counted ok, not canceled", async () => {
      const email = uniqueEmail("stays");
      await signUp(server, email);
      const before = await createSessions("connect");
      const answered = await connectClient(SessionService, server.url).createSession({ accountType: "traditional", email, password }, { headers: clientIdHeader });
      assert.ok(answered.accessToken);
      const after = await createSessions("connect");
      assert.deepEqual({ ok: after.ok - before.ok, canceled: after.canceled - before.canceled }, { ok: 1, canceled: 0 });
    });
  });
}
