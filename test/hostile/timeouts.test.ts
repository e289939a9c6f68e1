/**
 * The configured timeouts hold on every transport (headers 1 s, request 1.5 s, idle 1 s here):
 * HTTP/1.1 over TLS as over plain TCP (test/hostile/limits.test.ts has the plain cases), the TLS
 * handshake itself, the h2c connection preface, and every HTTP/2 stream, h2c and h2 over TLS: a
 * request whose body has not arrived within the request timeout gets 408, or RST_STREAM(CANCEL)
 * once its answer has begun; a gRPC, gRPC-Web or Connect streaming call, over HTTP/1.1 as over
 * HTTP/2, DEADLINE_EXCEEDED in its own framing.
 */
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import http2 from "node:http2";
import net from "node:net";
import { connectEnvelopes, grpcFrame, grpcWebTrailer, h2request } from "./support.js";
import { errorInfoJson, grpcStatusDetails } from "../support/error-details.js";
import { dribble, http1Answer, makeTestCertificate, slowClient, type Http1Answer, type TestCertificate } from "../support/net.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { itSideBySide } from "../support/side-by-side.js";
import { clientIdHeader } from "../support/users.js";

/** A web origin CORS allows: a browser's gRPC-Web or Connect client reads no answer without it. */
const origin = "https://app.example.com";
const timeouts = { TESSERA_HEADERS_TIMEOUT_MS: "1000", TESSERA_REQUEST_TIMEOUT_MS: "1500", TESSERA_IDLE_TIMEOUT_MS: "1000", TESSERA_CORS_ORIGINS: origin };

/** A reflection request (list_services) as a gRPC message: field 7, an empty string. */
const listServices = grpcFrame(Buffer.from([0x3a, 0x00]));

/** The answer to a call the request timeout (1.5 s) cut off, as over HTTP/2 (the listener's sendRefusal). */
const notArrived = "the request did not arrive in time: all of it is due within 1500 ms";

describe("timeouts on every transport", function () {
  this.timeout(30_000);
  let cert: TestCertificate;
  let tlsServer: TestServer;
  let plainServer: TestServer;

  before(async () => {
    cert = makeTestCertificate();
    tlsServer = await startTestServer({ env: { ...timeouts, ...cert.env } });
    plainServer = await startTestServer({ env: timeouts });
  });
  after(async () => {
    await tlsServer?.close();
    await plainServer?.close();
    cert?.remove();
  });

  const tlsOpts = () => ({ tls: { ca: cert.ca } });

  describe("TLS", () => {

    // Each on its own connection, waiting for a timeout of the server's (1 s or 1.5 s): side by side.
    itSideBySide({
      "a TCP connection that never sends a ClientHello is closed after the headers timeout (1 s)": async () => {
        const r = await slowClient(tlsServer.port, () => {});
        assert.ok(r.closedAfterMs >= 900 && r.closedAfterMs < 4000, `closed after ${r.closedAfterMs} ms`);
      },
      "a ClientHello cut short is closed after the headers timeout (1 s)": async () => {
        // A TLS record header announcing a 512-byte handshake message, and 3 bytes of it.
        const r = await slowClient(tlsServer.port, (s) => s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01])));
        assert.ok(r.closedAfterMs >= 900 && r.closedAfterMs < 4000, `closed after ${r.closedAfterMs} ms`);
      },
      "a cleartext request's method cut short (\"GE\", then nothing) is closed after the headers timeout (1 s)": async () => {
        const r = await slowClient(tlsServer.port, (s) => s.write("GE"));
        assert.ok(r.closedAfterMs >= 900 && r.closedAfterMs < 4000, `closed after ${r.closedAfterMs} ms`);
        assert.equal(r.received, "");
      },
      "HTTP/1.1: a handshake and then nothing is closed after the headers timeout": async () => {
        const r = await slowClient(tlsServer.port, () => {}, tlsOpts());
        assert.ok(r.closedAfterMs >= 900 && r.closedAfterMs < 4000, `closed after ${r.closedAfterMs} ms`);
      },
      "HTTP/1.1: headers dribbled byte by byte are cut off at the headers timeout (1 s)": async () => {
        const r = await slowClient(tlsServer.port, (s) => dribble(s, "GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: " + "a".repeat(500), 20), tlsOpts());
        assert.ok(r.closedAfterMs >= 900 && r.closedAfterMs < 4000, `closed after ${r.closedAfterMs} ms`);
        assert.doesNotMatch(r.received, /200 OK/);
      },
      "HTTP/1.1: a body that never finishes is answered 408 at the request timeout (1.5 s)": async () => {
        const r = await slowClient(
          tlsServer.port,
          (s) => {
            s.write(`POST /user HTTP/1.1\r\nhost: x\r\nx-koms-clientid: ${testClientId}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"email":`);
            dribble(s, "x".repeat(500), 50);
          },
          tlsOpts(),
        );
        assert.ok(r.closedAfterMs >= 1400 && r.closedAfterMs < 5000, `closed after ${r.closedAfterMs} ms`);
        assert.match(r.received, /^HTTP\/1\.1 408 /, r.received);
      },
      "HTTP/1.1: an idle keep-alive connection is closed after the idle timeout (1 s)": async () => {
        const r = await slowClient(tlsServer.port, (s) => s.write("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"), tlsOpts());
        assert.match(r.received, /^HTTP\/1\.1 200 /);
        assert.ok(r.closedAfterMs >= 900 && r.closedAfterMs < 4000, `closed after ${r.closedAfterMs} ms`);
      },
    });
  });

  // Over HTTP/1.1, an RPC call whose request has not arrived at the request timeout gets the
  // answer it gets over HTTP/2 (below), on its own answer (its x-request-id), and the connection
  // closes: Node's sweep wrote the listener's own 408 with the JSON error instead, which no gRPC,
  // gRPC-Web or Connect streaming client reads as the call's error. A REST request keeps that 408
  // (README "Call it": HTTP/1.1 bytes Node's parser refuses, a new x-request-id).
  for (const transport of ["HTTP/1.1", "HTTP/1.1 over TLS"] as const) {
    describe(`${transport}: a request that has not arrived at the request timeout (1.5 s)`, () => {
      const server = () => (transport === "HTTP/1.1" ? plainServer : tlsServer);
      /**
       * A POST to `path` announcing 100 bytes of `contentType`, `part` of them sent, then nothing:
       * its answer (the connection closed after it) and the x-request-id it was sent with. The
       * server logs nothing of it at error level (an answer written twice: "rpc answer failed").
       */
      const stalled = async (path: string, contentType: string, part: Buffer): Promise<Http1Answer & { requestId: string }> => {
        const requestId = randomUUID();
        const r = await slowClient(
          server().port,
          (s) => {
            s.write(`POST ${path} HTTP/1.1\r\nhost: x\r\norigin: ${origin}\r\nx-koms-clientid: ${testClientId}\r\nx-request-id: ${requestId}\r\ncontent-type: ${contentType}\r\ncontent-length: 100\r\n\r\n`);
            s.write(part);
          },
          transport === "HTTP/1.1" ? {} : tlsOpts(),
        );
        assert.ok(r.closedAfterMs >= 1400 && r.closedAfterMs < 5000, `closed after ${r.closedAfterMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 200));
        const errors = server().logs.filter((l) => l.includes(requestId) && (JSON.parse(l) as { level: string }).level === "error");
        assert.deepEqual(errors, []);
        return { ...http1Answer(r.received), requestId };
      };
      /**
       * stalled()'s answer, the call's own as over HTTP/2: `status`, the request's content type,
       * the headers its handler set (its x-request-id, CORS's), and Connection: close.
       */
      const refused = async (path: string, contentType: string, part: Buffer, status: number): Promise<Http1Answer> => {
        const a = await stalled(path, contentType, part);
        assert.equal(a.status, status);
        assert.equal(a.headers["content-type"], contentType);
        assert.equal(a.headers["x-request-id"], a.requestId);
        assert.equal(a.headers["access-control-allow-origin"], origin);
        assert.equal(a.headers.connection, "close");
        return a;
      };
      /** The DEADLINE_EXCEEDED of a gRPC or gRPC-Web answer: its trailer (or trailers-only header) fields. */
      const assertGrpcDeadline = (fields: Record<string, string | undefined>) => {
        assert.equal(fields["grpc-status"], "4");
        assert.equal(fields["grpc-message"], notArrived);
        assert.deepEqual(grpcStatusDetails(fields["grpc-status-details-bin"]!), { code: 4, message: notArrived, reason: "DEADLINE_EXCEEDED", domain: "tessera", metadata: {} });
      };
      /** A gRPC-Web body that is one trailer frame and nothing else: its fields. */
      const trailerOnly = (body: Buffer) => {
        assert.equal(body[0], 0x80);
        assert.equal(body.readUInt32BE(1), body.length - 5);
        return grpcWebTrailer(body);
      };
      const getVersion = "/tessera.jwt.v1.JwtService/GetVersion";
      const watch = "/grpc.health.v1.Health/Watch";

      itSideBySide({
        "a Connect unary call (JSON): 408 with the Connect error, its own x-request-id": async () => {
          const a = await refused(getVersion, "application/json", Buffer.from('{"a":'), 408);
          assert.deepEqual(JSON.parse(a.body.toString()), { code: "deadline_exceeded", message: notArrived, details: [errorInfoJson("DEADLINE_EXCEEDED")] });
        },
        "a gRPC-Web unary call: 200 with DEADLINE_EXCEEDED in its trailer frame": async () => {
          const a = await refused(getVersion, "application/grpc-web+proto", Buffer.from([0, 0, 0]), 200);
          assertGrpcDeadline(trailerOnly(a.body));
        },
        "a gRPC-Web (text) unary call: 200 with DEADLINE_EXCEEDED in its trailer frame, in base64": async () => {
          const a = await refused(getVersion, "application/grpc-web-text", Buffer.from("AAAA"), 200);
          assertGrpcDeadline(trailerOnly(Buffer.from(a.body.toString("latin1"), "base64")));
        },
        "a gRPC unary call: 200, trailers-only, DEADLINE_EXCEEDED in its header": async () => {
          const a = await refused(getVersion, "application/grpc", Buffer.from([0, 0, 0]), 200);
          assertGrpcDeadline(a.headers);
          assert.equal(a.body.length, 0);
        },
        "a Connect server stream (Health/Watch, an envelope cut short): 200 with deadline_exceeded in its end-stream message": async () => {
          const a = await refused(watch, "application/connect+proto", Buffer.from([0, 0, 0]), 200);
          const [end, ...more] = connectEnvelopes(a.body);
          assert.deepEqual(more, []);
          assert.equal(end![0], 2);
          assert.deepEqual(JSON.parse(end![1]), { error: { code: "deadline_exceeded", message: notArrived, details: [errorInfoJson("DEADLINE_EXCEEDED", { metadata: false })] } });
        },
        "a gRPC-Web server stream (Health/Watch): 200 with DEADLINE_EXCEEDED in its trailer frame": async () => {
          const a = await refused(watch, "application/grpc-web+proto", Buffer.from([0, 0, 0]), 200);
          assertGrpcDeadline(trailerOnly(a.body));
        },
        "a REST call (POST /user): the listener's own 408, naming both timeouts, a new x-request-id": async () => {
          const a = await stalled("/user", "application/json", Buffer.from('{"email":'));
          assert.equal(a.status, 408);
          assert.equal(a.headers["content-type"], "application/json");
          assert.match(a.headers["x-request-id"]!, /^[0-9a-f-]{36}$/);
          assert.notEqual(a.headers["x-request-id"], a.requestId);
          assert.equal(a.headers.connection, "close");
          assert.deepEqual(JSON.parse(a.body.toString()), {
            code: "deadline_exceeded",
            message: "the request did not arrive in time: its headers are due within 1000 ms, all of it within 1500 ms",
            details: [errorInfoJson("DEADLINE_EXCEEDED")],
          });
        },
      });
    });
  }

  for (const transport of ["h2c", "h2 over TLS"] as const) {
    describe(`HTTP/2 streams (${transport})`, () => {
      let session: http2.ClientHttp2Session;
      let pings: NodeJS.Timeout;
      beforeEach(() => {
        const server = transport === "h2c" ? plainServer : tlsServer;
        session = http2.connect(server.url, transport === "h2c" ? {} : { ca: cert.ca });
        session.on("error", () => {});
        // The client looks alive all along: PINGs every 300 ms.
        pings = setInterval(() => !session.destroyed && session.ping(() => {}), 300);
      });
      afterEach(() => {
        clearInterval(pings);
        session.destroy();
      });

      it("a POST announcing 100 bytes that sends 6 is answered 408 at the request timeout (1.5 s)", async () => {
        const t0 = Date.now();
        const a = await h2request(
          session,
          { ":method": "POST", ":path": "/user", ...clientIdHeader, "content-type": "application/json", "content-length": "100" },
          Buffer.from('{"a":1'),
          { endStream: false, timeoutMs: 6000 },
        );
        const ms = Date.now() - t0;
        assert.equal(a.headers[":status"], 408);
        // It was a bare 408 (content-length: 0); the JSON error as over HTTP/1.1.
        assert.equal(a.headers["content-type"], "application/json");
        assert.match(String(a.headers["x-request-id"]), /^[0-9a-f-]{36}$/);
        assert.deepEqual(JSON.parse(a.data.toString()), {
          code: "deadline_exceeded",
          message: "the request did not arrive in time: all of it is due within 1500 ms",
          details: [errorInfoJson("DEADLINE_EXCEEDED")],
        });
        assert.ok(ms >= 1400, `answered after ${ms} ms`);
        assert.ok(!session.destroyed, "the session survives");
        const ok = await h2request(session, { ":path": "/healthz" });
        assert.equal(ok.headers[":status"], 200);
      });

      // A 408 with a JSON body is no answer a gRPC or Connect streaming client reads: grpc-js made
      // it UNKNOWN "Received HTTP status code 408", connect-es's clients `unknown` too. The call
      // is answered DEADLINE_EXCEEDED in its own framing, as a header list too large is
      // RESOURCE_EXHAUSTED in it.
      it("a gRPC call whose request has not arrived at the request timeout (reflection, nothing answered yet) gets DEADLINE_EXCEEDED in the gRPC trailers", async () => {
        const a = await h2request(
          session,
          { ":method": "POST", ":path": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "content-type": "application/grpc", te: "trailers" },
          Buffer.alloc(0),
          { endStream: false, timeoutMs: 6000 },
        );
        assert.equal(a.headers[":status"], 200);
        assert.equal(a.headers["content-type"], "application/grpc");
        assert.equal(a.trailers["grpc-status"], "4");
        assert.equal(a.trailers["grpc-message"], notArrived);
        assert.equal(a.data.length, 0);
      });

      it("a Connect stream whose request has not arrived at the request timeout (Health/Watch, an envelope cut short) gets deadline_exceeded in its end-stream message", async () => {
        const a = await h2request(
          session,
          { ":method": "POST", ":path": "/grpc.health.v1.Health/Watch", "content-type": "application/connect+proto" },
          Buffer.from([0, 0, 0]),
          { endStream: false, timeoutMs: 6000 },
        );
        assert.equal(a.headers[":status"], 200);
        assert.equal(a.headers["content-type"], "application/connect+proto");
        const [end, ...more] = connectEnvelopes(a.data);
        assert.deepEqual(more, []);
        assert.equal(end![0], 2);
        assert.deepEqual(JSON.parse(end![1]), { error: { code: "deadline_exceeded", message: notArrived, details: [errorInfoJson("DEADLINE_EXCEEDED", { metadata: false })] } });
      });

      it("a gRPC call whose request never ends (reflection, answer begun) is reset (CANCEL) at the request timeout", async () => {
        const a = await h2request(
          session,
          { ":method": "POST", ":path": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "content-type": "application/grpc", te: "trailers" },
          listServices,
          { endStream: false, timeoutMs: 6000 },
        );
        assert.equal(a.headers[":status"], 200);
        assert.ok(a.data.length > 0, "the first answer was not sent");
        assert.equal(a.rstCode, http2.constants.NGHTTP2_CANCEL);
        // The call ends as cancelled: no unexpected error is reported for the cut stream.
        const server = transport === "h2c" ? plainServer : tlsServer;
        await new Promise((r) => setTimeout(r, 50));
        const lines = server.logs.map((l) => JSON.parse(l) as { msg: string; procedure?: string; code?: string });
        assert.deepEqual(lines.filter((l) => l.msg === "unexpected error"), []);
        assert.equal(lines.filter((l) => l.procedure === "grpc.reflection.v1.ServerReflection/ServerReflectionInfo").at(-1)?.code, "canceled");
      });
    });
  }

  it("h2c: an HTTP/2 connection that sends the preface and then only PINGs is closed after the idle timeout (1 s)", async () => {
    const s = net.connect(plainServer.port, "127.0.0.1");
    await new Promise<void>((resolve) => s.once("connect", () => resolve()));
    s.on("error", () => {});
    const t0 = Date.now();
    s.write(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    s.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
    const ping = Buffer.from([0, 0, 8, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const t = setInterval(() => s.write(ping), 100);
    await new Promise<void>((resolve) => s.once("close", () => resolve()));
    clearInterval(t);
    const ms = Date.now() - t0;
    assert.ok(ms >= 900 && ms < 4000, `closed after ${ms} ms`);
  });

  it("h2c: the HTTP/2 connection preface dribbled byte by byte is cut off at the headers timeout (1 s), as HTTP/1.1 headers are", async () => {
    // Every byte of "PRI * HTTP/2.0" may still begin either protocol: one every 300 ms would take
    // 4.2 s to tell them apart.
    const r = await slowClient(plainServer.port, (s) => dribble(s, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 300));
    assert.ok(r.closedAfterMs >= 900 && r.closedAfterMs < 2000, `closed after ${r.closedAfterMs} ms`);
    assert.equal(r.received, "", "the server took it for HTTP/2 (it sent its SETTINGS)");
  });

  describe("with an idle timeout longer than the headers timeout (headers 1 s, idle 10 s)", () => {
    let server: TestServer;
    let tlsSlowIdle: TestServer;
    before(async () => {
      server = await startTestServer({ env: { ...timeouts, TESSERA_IDLE_TIMEOUT_MS: "10000" } });
      tlsSlowIdle = await startTestServer({ env: { ...timeouts, TESSERA_IDLE_TIMEOUT_MS: "10000", ...cert.env } });
    });
    after(async () => {
      await server?.close();
      await tlsSlowIdle?.close();
    });

    it("h2 over TLS: a handshake (ALPN h2), then a preface cut short after its first line, is cut off at the headers timeout, not held until the idle timeout", async () => {
      const r = await slowClient(tlsSlowIdle.port, (s) => s.write("PRI * HTTP/2.0\r\n"), { tls: { ca: cert.ca, alpn: ["h2"] } });
      assert.ok(r.closedAfterMs >= 900 && r.closedAfterMs < 5000, `closed after ${r.closedAfterMs} ms`);
    });

    it("h2c: a preface cut short after its first line (then nothing) is cut off at the headers timeout, not held until the idle timeout", async () => {
      // "PRI * HTTP/2.0" tells HTTP/2 apart, but the preface is 24 bytes: a connection that sends
      // 16 of them has not sent a whole preface (README, "Connections and limits": Arriving).
      const r = await slowClient(server.port, (s) => s.write("PRI * HTTP/2.0\r\n"));
      assert.ok(r.closedAfterMs >= 900 && r.closedAfterMs < 5000, `closed after ${r.closedAfterMs} ms`);
      assert.equal(r.received, "", "the server took it for HTTP/2 (it sent its SETTINGS)");
    });
  });
});
