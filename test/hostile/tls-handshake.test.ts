/**
 * What a TLS handshake may agree on (README, "TLS certificates"), whatever the process's own
 * defaults: TLS 1.2 and 1.3 only; under TLS 1.2 forward-secret AEAD suites only (ECDHE with
 * AES-GCM or ChaCha20-Poly1305: no CBC, no SHA-1 MAC, no static RSA key exchange), also after a
 * certificate reload; no renegotiation.
 */
import { strict as assert } from "node:assert";
import http2 from "node:http2";
import net from "node:net";
import { Duplex } from "node:stream";
import tls from "node:tls";
import { errorInfoJson } from "../support/error-details.js";
import { dribble, makeTestCertificate, slowClient, type TestCertificate } from "../support/net.js";
import { startTestServer, type TestServer } from "../support/server.js";

interface Handshake {
  protocol?: string | null;
  alpn?: string | false | null;
  cipher?: string;
  error?: string;
}

/** A TLS handshake with 127.0.0.1:`port` with the given client options: what was agreed, or the error code. */
function handshake(port: number, ca: Buffer, options: tls.ConnectionOptions): Promise<Handshake> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost", ALPNProtocols: ["http/1.1"], ...options }, () => {
      resolve({ protocol: s.getProtocol(), cipher: s.getCipher().standardName, alpn: s.alpnProtocol });
      s.destroy();
    });
    s.on("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
  });
}

describe("hostile: TLS handshakes", function () {
  this.timeout(30_000);

  describe("protocol versions, when the process's defaults would allow TLS 1.0", () => {
    let cert: TestCertificate;
    let server: TestServer;
    const saved = { min: tls.DEFAULT_MIN_VERSION, ciphers: tls.DEFAULT_CIPHERS };

    before(async () => {
      cert = makeTestCertificate("rsa");
      // What NODE_OPTIONS="--tls-min-v1.0 --tls-cipher-list=...:@SECLEVEL=0" gives a process.
      tls.DEFAULT_MIN_VERSION = "TLSv1";
      tls.DEFAULT_CIPHERS = `${saved.ciphers}:@SECLEVEL=0`;
      try {
        server = await startTestServer({ env: cert.env });
      } finally {
        tls.DEFAULT_MIN_VERSION = saved.min;
        tls.DEFAULT_CIPHERS = saved.ciphers;
      }
    });
    after(async () => {
      await server?.close();
      cert?.remove();
    });

    for (const version of ["TLSv1", "TLSv1.1"] as const) {
      it(`${version} is refused`, async () => {
        const r = await handshake(server.port, cert.ca, { minVersion: version, maxVersion: version, ciphers: "ALL:@SECLEVEL=0" });
        assert.equal(r.error, "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION", JSON.stringify(r));
      });
    }

    it("TLS 1.2 and 1.3 are served", async () => {
      assert.equal((await handshake(server.port, cert.ca, { maxVersion: "TLSv1.2" })).protocol, "TLSv1.2");
      assert.equal((await handshake(server.port, cert.ca, {})).protocol, "TLSv1.3");
    });
  });

  describe("cipher suites under TLS 1.2", () => {
    let rsa: TestCertificate;
    let ec: TestCertificate;
    let rsaServer: TestServer;
    let ecServer: TestServer;

    before(async () => {
      rsa = makeTestCertificate("rsa");
      ec = makeTestCertificate("ec");
      rsaServer = await startTestServer({ env: { ...rsa.env, TESSERA_TLS_RELOAD_SECONDS: "0" } });
      ecServer = await startTestServer({ env: ec.env });
    });
    after(async () => {
      await rsaServer?.close();
      await ecServer?.close();
      rsa?.remove();
      ec?.remove();
    });

    // CBC with SHA-1 or SHA-2 MACs, static RSA key exchange (no forward secrecy), CCM with a
    // truncated tag, ARIA: all in Node's default list (its "HIGH").
    const refusedRsa = ["AES128-SHA", "AES256-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256", "AES128-CCM8", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA", "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES256-SHA384", "ECDHE-ARIA128-GCM-SHA256"];
    const servedRsa = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"];
    const refusedEc = ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-CCM8", "ECDHE-ECDSA-ARIA128-GCM-SHA256"];
    const servedEc = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"];

    async function check(server: TestServer, ca: Buffer, refused: string[], served: string[]): Promise<void> {
      for (const cipher of refused) {
        const r = await handshake(server.port, ca, { maxVersion: "TLSv1.2", ciphers: `${cipher}:@SECLEVEL=0` });
        assert.equal(r.error, "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE", `${cipher}: ${JSON.stringify(r)}`);
      }
      for (const cipher of served) {
        const r = await handshake(server.port, ca, { maxVersion: "TLSv1.2", ciphers: cipher });
        assert.equal(r.error, undefined, `${cipher}: ${JSON.stringify(r)}`);
      }
    }

    it("an RSA certificate: only ECDHE with AES-GCM or ChaCha20-Poly1305", async () => {
      await check(rsaServer, rsa.ca, refusedRsa, servedRsa);
    });

    it("an ECDSA certificate: only ECDHE with AES-GCM or ChaCha20-Poly1305", async () => {
      await check(ecServer, ec.ca, refusedEc, servedEc);
    });

    it("a reloaded certificate is served with the same suites and versions", async () => {
      assert.equal(rsaServer.tessera.server.reloadCertificate(), true);
      await check(rsaServer, rsa.ca, refusedRsa, servedRsa);
      const old = await handshake(rsaServer.port, rsa.ca, { minVersion: "TLSv1.1", maxVersion: "TLSv1.1", ciphers: "ALL:@SECLEVEL=0" });
      assert.equal(old.error, "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION");
      // ALPN is the server's, not the context's: h2 is still chosen, an unknown protocol refused.
      assert.equal((await handshake(rsaServer.port, rsa.ca, { ALPNProtocols: ["h2", "http/1.1"] })).alpn, "h2");
      assert.equal((await handshake(rsaServer.port, rsa.ca, { ALPNProtocols: ["spdy/3"] })).error, "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL");
    });

    it("a client-initiated renegotiation under TLS 1.2 is refused", async () => {
      const s = tls.connect({ host: "127.0.0.1", port: rsaServer.port, ca: rsa.ca, servername: "localhost", maxVersion: "TLSv1.2", ALPNProtocols: ["http/1.1"] });
      await new Promise((resolve) => s.once("secureConnect", resolve));
      // The server answers the new ClientHello with the no_renegotiation alert, which OpenSSL's
      // client takes as the end of the connection (Node reports it on the socket).
      const error = await new Promise<Error | null>((resolve) => {
        s.once("error", resolve);
        s.renegotiate({}, (e) => resolve(e ?? null));
      });
      s.destroy();
      assert.match(String(error?.message), /no renegotiation/);
    });
  });
});

describe("hostile: ALPN on the TLS port", function () {
  this.timeout(30_000);
  let cert: TestCertificate;
  let server: TestServer;

  before(async () => {
    cert = makeTestCertificate();
    server = await startTestServer({ env: cert.env });
  });
  after(async () => {
    await server?.close();
    cert?.remove();
  });

  /** Sends `request` on a TLS connection offering `alpn` (none: no ALPN extension); what came back. */
  function exchange(alpn: string[] | undefined, request: string): Promise<{ protocol: string | false | null; received: string; error?: string }> {
    return new Promise((resolve) => {
      let protocol: string | false | null = null;
      let received = "";
      const s = tls.connect({ host: "127.0.0.1", port: server.port, ca: cert.ca, servername: "localhost", ...(alpn && { ALPNProtocols: alpn }) }, () => {
        protocol = s.alpnProtocol;
        s.write(request);
      });
      s.on("data", (d: Buffer) => (received += d.toString("latin1")));
      s.on("error", (e: NodeJS.ErrnoException) => resolve({ protocol, received, error: e.code }));
      s.on("close", () => resolve({ protocol, received }));
    });
  }

  it("a client without ALPN is served HTTP/1.1", async () => {
    const r = await exchange(undefined, "GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    assert.equal(r.protocol, false);
    assert.match(r.received, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(r.received, /\{"status":"SERVING"\}$/);
  });

  it("a client offering only http/1.0 (curl --http1.0) is served HTTP/1.0; one offering http/1.1 too gets http/1.1", async () => {
    const r = await exchange(["http/1.0"], "GET /healthz HTTP/1.0\r\nhost: localhost\r\n\r\n");
    assert.equal(r.error, undefined);
    assert.equal(r.protocol, "http/1.0");
    assert.match(r.received, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(r.received, /\{"status":"SERVING"\}$/);
    const both = await exchange(["http/1.0", "http/1.1"], "GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    assert.equal(both.protocol, "http/1.1");
  });

  it("a client offering only an unknown protocol is refused with the no_application_protocol alert", async () => {
    const r = await exchange(["spdy/3"], "GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n");
    assert.equal(r.error, "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL");
  });

  it("an HTTP/2 client that did not negotiate h2 gets GOAWAY(HTTP_1_1_REQUIRED) saying so", async () => {
    // As a gRPC client over TLS whose TLS layer sends no ALPN: the HTTP/2 preface and frames
    // arrive on a connection served as HTTP/1.1.
    const session = http2.connect(server.url, {
      createConnection: () => tls.connect({ host: "127.0.0.1", port: server.port, ca: cert.ca, servername: "localhost" }),
    });
    session.on("error", () => {});
    const goaway = new Promise<{ code: number; debug: string }>((resolve) => {
      session.once("goaway", (code: number, _last: number, opaque?: Buffer) => resolve({ code, debug: opaque?.toString() ?? "" }));
      session.once("close", () => resolve({ code: -1, debug: "closed without GOAWAY" }));
    });
    const req = session.request({ ":path": "/grpc.health.v1.Health/Check", ":method": "POST", "content-type": "application/grpc" });
    req.on("error", () => {});
    req.end();
    const { code, debug } = await goaway;
    session.destroy();
    assert.equal(code, http2.constants.NGHTTP2_HTTP_1_1_REQUIRED);
    assert.equal(debug, "HTTP/2 over TLS is negotiated with ALPN h2: this connection did not negotiate it, and is served HTTP/1.1");
  });

  it("an HTTP/2 client that did not negotiate h2 and sends 20 KB with its preface (a call's message) gets that GOAWAY too", async () => {
    // Under TLS the GOAWAY is written while the TLS layer is still handing over the read that
    // brought the preface (more than one record): a socket destroyed at once never sends it.
    const frame = (type: number, streamId: number, payload: string) => {
      const header = Buffer.alloc(9);
      header.writeUIntBE(payload.length, 0, 3);
      header[3] = type;
      header.writeUInt32BE(streamId, 5);
      return header.toString("latin1") + payload;
    };
    const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const r = await exchange(undefined, preface + frame(0x4, 0, "") + frame(0x0, 1, "a".repeat(20_000)));
    const debug = "HTTP/2 over TLS is negotiated with ALPN h2: this connection did not negotiate it, and is served HTTP/1.1";
    const code = String.fromCharCode(0, 0, 0, http2.constants.NGHTTP2_HTTP_1_1_REQUIRED);
    // The server preface (an empty SETTINGS frame), then GOAWAY(last stream 0, HTTP_1_1_REQUIRED) saying why.
    assert.equal(r.received, frame(0x4, 0, "") + frame(0x7, 0, "\0\0\0\0" + code + debug));
  });
});

describe("hostile: plain HTTP on the TLS port", function () {
  this.timeout(30_000);
  let cert: TestCertificate;
  let server: TestServer;

  before(async () => {
    cert = makeTestCertificate();
    server = await startTestServer({ env: cert.env });
  });
  after(async () => {
    await server?.close();
    cert?.remove();
  });

  it("a plain HTTP request (http:// for https://) is answered 400 in plain HTTP, saying so, and the connection closed", async () => {
    const plainUrl = server.url.replace(/^https:/, "http:");
    for (const method of ["GET", "POST", "PUT", "HEAD"]) {
      const res = await fetch(`${plainUrl}/healthz`, { method, ...(method === "POST" || method === "PUT" ? { body: "{}" } : {}) });
      assert.equal(res.status, 400, method);
      assert.equal(res.headers.get("connection"), "close");
      if (method === "HEAD") continue;
      assert.deepEqual(await res.json(), {
        code: "invalid_argument",
        message: "this port serves HTTPS: the request was sent in plain HTTP; use https://",
        details: [errorInfoJson("MALFORMED_REQUEST")],
      });
    }
    // The port still serves TLS.
    const r = await handshake(server.port, cert.ca, {});
    assert.equal(r.protocol, "TLSv1.3");
  });

  it("a plain HTTP request sent a byte at a time is answered 400 as one sent at once is", async () => {
    const request = "GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n";
    const r = await slowClient(server.port, (s) => dribble(s, request, 10));
    const [head, body] = r.received.split("\r\n\r\n");
    assert.match(String(head), /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(String(head), /\r\nconnection: close(\r\n|$)/);
    assert.deepEqual(JSON.parse(String(body)), {
      code: "invalid_argument",
      message: "this port serves HTTPS: the request was sent in plain HTTP; use https://",
      details: [errorInfoJson("MALFORMED_REQUEST")],
    });
    // A ClientHello whose first bytes come one at a time still gets its handshake.
    const hello = await new Promise<string>((resolve) => {
      const raw = net.connect(server.port, "127.0.0.1");
      let sent = 0;
      const wire = new Duplex({
        read() {},
        write(chunk: Buffer, _encoding, done) {
          const next = () => {
            if (raw.destroyed) return done();
            if (sent >= 8 || chunk.length <= 1) {
              sent += chunk.length;
              return raw.write(chunk, () => done());
            }
            raw.write(chunk.subarray(0, 1));
            sent++;
            chunk = chunk.subarray(1);
            setTimeout(next, 10);
          };
          next();
        },
      });
      raw.on("data", (d: Buffer) => wire.push(d));
      raw.on("close", () => wire.destroy());
      raw.on("error", () => {});
      const s = tls.connect({ socket: wire, ca: cert.ca, servername: "localhost", ALPNProtocols: ["http/1.1"] }, () => {
        resolve(String(s.getProtocol()));
        s.destroy();
        raw.destroy();
      });
      s.on("error", (e) => resolve(String(e)));
    });
    assert.equal(hello, "TLSv1.3");
  });

  it("an h2c client (a gRPC client without TLS) gets GOAWAY(INADEQUATE_SECURITY) in cleartext, saying the port serves TLS", async () => {
    const session = http2.connect(server.url.replace(/^https:/, "http:"));
    session.on("error", () => {});
    const goaway = new Promise<{ code: number; debug: string }>((resolve) => {
      session.once("goaway", (code: number, _last: number, opaque?: Buffer) => resolve({ code, debug: opaque?.toString() ?? "" }));
      session.once("close", () => resolve({ code: -1, debug: "closed without GOAWAY" }));
    });
    const req = session.request({ ":path": "/grpc.health.v1.Health/Check", ":method": "POST", "content-type": "application/grpc" });
    req.on("error", () => {});
    req.end();
    const { code, debug } = await goaway;
    session.destroy();
    assert.equal(code, http2.constants.NGHTTP2_INADEQUATE_SECURITY);
    assert.equal(debug, "this port serves HTTP/2 over TLS only: connect with TLS (https://, a gRPC client's TLS credentials), not in cleartext (h2c)");
  });

  it("a plain HTTP request with another method (DELETE, OPTIONS, PATCH) is answered 400 too", async () => {
    const plainUrl = server.url.replace(/^https:/, "http:");
    for (const method of ["DELETE", "OPTIONS", "PATCH"]) {
      const res = await fetch(`${plainUrl}/session`, { method });
      assert.equal(res.status, 400, method);
      assert.equal(((await res.json()) as { message: string }).message, "this port serves HTTPS: the request was sent in plain HTTP; use https://");
    }
  });
});

describe("hostile: handshakes beyond TESSERA_MAX_CONNECTIONS, and hostile server names", function () {
  this.timeout(30_000);
  let cert: TestCertificate;
  let server: TestServer;

  before(async () => {
    cert = makeTestCertificate();
    server = await startTestServer({ env: { ...cert.env, TESSERA_MAX_CONNECTIONS: "2" } });
  });
  after(async () => {
    await server?.close();
    cert?.remove();
  });

  it("a connection beyond the cap is closed before its handshake: no ServerHello, no signature spent", async () => {
    const open: tls.TLSSocket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const s = tls.connect({ host: "127.0.0.1", port: server.port, ca: cert.ca, servername: "localhost" });
        s.on("error", () => {});
        await new Promise((resolve) => s.once("secureConnect", resolve));
        open.push(s);
      }
      // A raw ClientHello's worth of bytes: the server sends nothing back and closes.
      const received = await new Promise<number>((resolve) => {
        const s = net.connect(server.port, "127.0.0.1", () => s.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00])));
        let n = 0;
        s.on("data", (d: Buffer) => (n += d.length));
        s.on("error", () => {});
        s.on("close", () => resolve(n));
      });
      assert.equal(received, 0);
      assert.equal((await handshake(server.port, cert.ca, {})).error, "ECONNRESET");
    } finally {
      for (const s of open) s.destroy();
    }
  });

  it("a long, a non-ASCII or a control-character server name does not stop the handshake (the name is not used)", async () => {
    for (let i = 0; i < 100 && server.tessera.server.listener.connections() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    for (const servername of ["a".repeat(255), "bücher.例え.test", "evil\u0000.localhost", "x.."]) {
      const r = await handshake(server.port, cert.ca, { servername, checkServerIdentity: () => undefined });
      assert.equal(r.protocol, "TLSv1.3", `${JSON.stringify(servername)}: ${JSON.stringify(r)}`);
    }
  });
});
