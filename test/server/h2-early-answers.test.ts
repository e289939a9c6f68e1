// HTTP/2 answers without a body sent before the request has ended (its client has not sent
// END_STREAM): OPTIONS *, a CORS preflight, a HEAD refused early. Each is answered, then
// the server resets the stream with RST_STREAM(NO_ERROR) so that the client stops sending (RFC
// 9113 8.1), as it does after an answer with a body: the request is no longer in flight (a
// graceful stop would wait for it) once the answer is out, whatever the client does next.
// A client that resets such a stream itself once its answer has come whole (RST_STREAM(CANCEL))
// is not taken for a rapid reset. A CONNECT, answered 405 by the listener, is in flight as any
// other request.
import assert from "node:assert/strict";
import http2 from "node:http2";
import { makeTestCertificate, type TestCertificate } from "../support/net.js";
import { pollUntil } from "../support/poll.js";
import { errorInfoJson } from "../support/error-details.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";

const app = "https://app.example";
const allow = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

interface EarlyAnswer {
  headers: http2.IncomingHttpHeaders;
  body: string;
  /** The stream's RST_STREAM code, once the server has closed it (the client never ends it). */
  reset: number | undefined;
}

/**
 * Sends `headers` on a new stream without END_STREAM (and nothing after), reads the answer, then
 * waits up to `closeWithinMs` for the server to close the stream. The session stays open.
 */
function unendedRequest(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, closeWithinMs = 5000): Promise<EarlyAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: false });
    let answer: http2.IncomingHttpHeaders | undefined;
    let body = "";
    let timer: NodeJS.Timeout | undefined;
    const done = (reset: number | undefined) => {
      clearTimeout(timer);
      if (answer === undefined) return reject(new Error(`the stream closed (${String(reset)}) with no answer`));
      resolve({ headers: answer, body, reset });
    };
    stream.on("response", (h) => {
      answer = h;
      timer = setTimeout(() => done(undefined), closeWithinMs);
    });
    stream.setEncoding("utf8");
    stream.on("data", (c: string) => (body += c));
    stream.on("close", () => done(stream.rstCode));
    stream.on("error", reject);
  });
}

/**
 * Sends `headers` on a new stream without END_STREAM, then the start of a body (a client still
 * uploading), reads the answer, and once it has come whole (END_STREAM) resets the stream with
 * RST_STREAM(CANCEL) unless the server has closed it already.
 */
function cancelledOnceAnswered(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<{ headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: false });
    let answer: http2.IncomingHttpHeaders | undefined;
    let body = "";
    stream.on("response", (h) => (answer = h));
    stream.setEncoding("utf8");
    stream.on("data", (c: string) => (body += c));
    stream.on("end", () => {
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    });
    stream.on("close", () => (answer === undefined ? reject(new Error(`the stream closed (${stream.rstCode}) with no answer`)) : resolve({ headers: answer, body })));
    stream.on("error", reject);
    stream.write(Buffer.alloc(1024));
  });
}

for (const transport of ["h2c", "TLS (ALPN h2)"] as const) {
  describe(`server: HTTP/2 (${transport}) answers without a body to a request not ended`, () => {
    let server: TestServer;
    let cert: TestCertificate | undefined;
    let session: http2.ClientHttp2Session;
    before(async () => {
      if (transport !== "h2c") cert = makeTestCertificate();
      server = await startTestServer({ env: { TESSERA_CORS_ORIGINS: app, ...cert?.env } });
    });
    after(async () => {
      await server?.close();
      cert?.remove();
    });
    beforeEach(() => {
      session = cert === undefined ? http2.connect(server.url) : http2.connect(server.url, { ca: cert.ca });
      // A session shed or closed fails the request under way, which names it.
      session.on("error", () => {});
    });
    // destroy(), not close(): close() would wait for a stream the server failed to close.
    afterEach(() => session.destroy());

    /** Asserts the stream was reset with NO_ERROR after its answer, and nothing is in flight. */
    async function resetAndNotInFlight(a: EarlyAnswer): Promise<void> {
      assert.equal(a.reset, http2.constants.NGHTTP2_NO_ERROR, "the server did not close the stream its client left open");
      await pollUntil("no request in flight", () => server.tessera.server.listener.inFlight() === 0, { limitMs: 5000, intervalMs: 20 });
    }

    it("OPTIONS * (:path *): 204 with Allow, then RST_STREAM(NO_ERROR)", async () => {
      const a = await unendedRequest(session, { ":method": "OPTIONS", ":path": "*" });
      assert.equal(a.headers[":status"], 204);
      assert.equal(a.headers.allow, allow);
      assert.equal(a.body, "");
      await resetAndNotInFlight(a);
    });

    it("a CORS preflight: 204 allowing the origin, then RST_STREAM(NO_ERROR)", async () => {
      const a = await unendedRequest(session, {
        ":method": "OPTIONS",
        ":path": "/session",
        origin: app,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, x-koms-clientid",
      });
      assert.equal(a.headers[":status"], 204);
      assert.equal(a.headers["access-control-allow-origin"], app);
      assert.equal(a.body, "");
      await resetAndNotInFlight(a);
    });

    // REST reads a request whole before it carries it out: a DELETE /jwt/refresh_token (204) or a
    // GET answered 304 is answered once its client has ended the stream, and needs no reset. A HEAD
    // refused before its body is read is answered early, with no body.
    it("HEAD on no route: 404 without a body, then RST_STREAM(NO_ERROR)", async () => {
      const a = await unendedRequest(session, { ":method": "HEAD", ":path": "/no/such/route" });
      assert.equal(a.headers[":status"], 404);
      assert.equal(a.body, "");
      await resetAndNotInFlight(a);
    });

    it("HEAD announcing a body over the limit: 413 without a body, then RST_STREAM(NO_ERROR)", async () => {
      const a = await unendedRequest(session, { ":method": "HEAD", ":path": "/jwt/version", "content-length": "99999999" });
      assert.equal(a.headers[":status"], 413);
      assert.equal(a.body, "");
      await resetAndNotInFlight(a);
    });

    // The streams reset so are not the client's resets: 600 on one connection, three times the
    // rapid-reset budget's burst (twice the 100 concurrent streams, refilled at 10 a second), and
    // the connection is not shed (h2-guard.ts, endedWhole).
    it("600 OPTIONS * on one connection, each reset so once answered: none counts against the rapid-reset budget", async () => {
      const from = server.logs.length;
      for (let batch = 0; batch < 12; batch++) {
        const answers = await Promise.all(Array.from({ length: 50 }, () => unendedRequest(session, { ":method": "OPTIONS", ":path": "*" })));
        for (const a of answers) {
          assert.equal(a.headers[":status"], 204);
          assert.equal(a.reset, http2.constants.NGHTTP2_NO_ERROR, "the server did not close the stream its client left open");
        }
      }
      assert.equal(session.closed || session.destroyed, false, "the connection was closed");
      const shed = server.logs.slice(from).filter((l) => (JSON.parse(l) as { msg: string }).msg === "http2 connection shed");
      assert.deepEqual(shed, []);
      await pollUntil("no request in flight", () => server.tessera.server.listener.inFlight() === 0, { limitMs: 5000, intervalMs: 20 });
    });

    // A client still sending a request whose complete answer has come (END_STREAM) stops sending
    // and resets the stream, RST_STREAM(CANCEL), as RFC 9113 8.1 lets it. The server has closed its
    // side whole by then: such a reset does not count as a stream cut short (h2-guard.ts,
    // endedWhole). 1000 on one connection, five times the rapid-reset budget's burst, half with
    // a body and trailers (POST, 413 with the JSON error), half ending with the HEADERS frame
    // (HEAD /jwt/version, 413): none counts, and the connection serves the next call.
    it("1000 uploads announcing a body over the limit, each answered 413 whole and then cancelled by its client: none counts against the rapid-reset budget", async () => {
      const from = server.logs.length;
      const tooLarge = { code: "resource_exhausted", message: "request body is larger than 65536 bytes", details: [errorInfoJson("REQUEST_TOO_LARGE")] };
      for (let batch = 0; batch < 20; batch++) {
        const answers = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            cancelledOnceAnswered(
              session,
              i % 2 === 0
                ? { ":method": "POST", ":path": "/user", "content-type": "application/json", "content-length": "99999999", "x-koms-clientid": testClientId }
                : { ":method": "HEAD", ":path": "/jwt/version", "content-length": "99999999" },
            ),
          ),
        );
        answers.forEach((a, i) => {
          assert.equal(a.headers[":status"], 413, `batch ${batch}, stream ${i}: ${a.body}`);
          if (i % 2 === 0) assert.deepEqual(JSON.parse(a.body), tooLarge);
          else assert.equal(a.body, "");
        });
      }
      const shed = server.logs.slice(from).filter((l) => (JSON.parse(l) as { msg: string }).msg === "http2 connection shed");
      assert.deepEqual(shed, []);
      const next = await unendedRequest(session, { ":method": "OPTIONS", ":path": "*" });
      assert.equal(next.headers[":status"], 204);
      await pollUntil("no request in flight", () => server.tessera.server.listener.inFlight() === 0, { limitMs: 5000, intervalMs: 20 });
    });

    it("an answer with a body (405) is reset with NO_ERROR as before", async () => {
      const a = await unendedRequest(session, { ":method": "PATCH", ":path": "/jwt/version" });
      assert.equal(a.headers[":status"], 405);
      await resetAndNotInFlight(a);
    });
  });
}

// CONNECT (RFC 9110 9.3.6) is answered 405 by the listener itself (Node hands it to the "connect"
// listener, not to the request listener). That answer is a request in flight as any other: a
// graceful stop waits for it to go out whole. Here the client has given its streams a window of 0
// (SETTINGS_INITIAL_WINDOW_SIZE), so the 405's headers come but its body cannot, as the stop
// begins; the window opens 300 ms later, well within the grace period (2 s).
for (const transport of ["h2c", "TLS (ALPN h2)"] as const) {
  describe(`server: HTTP/2 (${transport}) CONNECT during a graceful stop`, () => {
    it("the 405 is counted in flight, and a graceful stop waits for it to go out whole", async () => {
      const cert = transport === "h2c" ? undefined : makeTestCertificate();
      const server = await startTestServer({ env: { ...cert?.env } });
      const session = http2.connect(server.url, { settings: { initialWindowSize: 0 }, ...(cert && { ca: cert.ca }) });
      session.on("error", () => {});
      try {
        const stream = session.request({ ":method": "CONNECT", ":authority": "localhost:443" });
        let body = "";
        stream.setEncoding("utf8");
        stream.on("data", (c: string) => (body += c));
        const closed = new Promise<void>((resolve) => stream.on("close", resolve));
        const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          stream.once("response", resolve);
          stream.once("error", reject);
        });
        const inFlight = server.tessera.server.listener.inFlight();
        const stopped = server.close();
        setTimeout(() => session.destroyed || session.settings({ initialWindowSize: 65535 }), 300);
        await closed;
        await stopped;
        assert.equal(headers[":status"], 405);
        assert.equal(headers.allow, "GET, HEAD, POST, PUT, PATCH, DELETE");
        // The body, or what came of it (an answer cut short is no JSON).
        const got: unknown = /^\{.*\}$/s.test(body) ? JSON.parse(body) : `${body.length} bytes: ${JSON.stringify(body)}`;
        assert.deepEqual(got, { code: "unimplemented", message: "CONNECT is not allowed: this server opens no tunnels", details: [errorInfoJson("METHOD_NOT_ALLOWED")] });
        assert.equal(stream.rstCode, http2.constants.NGHTTP2_NO_ERROR, "the stream's close");
        assert.equal(inFlight, 1, "requests in flight as the stop began");
      } finally {
        session.destroy();
        cert?.remove();
      }
    });
  });
}
