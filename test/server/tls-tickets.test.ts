// TLS session resumption (README, "TLS certificates"): a client may resume a session with its
// ticket, but the key that seals the tickets is replaced every hour (here: every 300 ms), so a
// ticket key read out of the process's memory opens at most that long of recorded TLS 1.2
// sessions; a ticket sealed with a key since replaced gets a full handshake, never a failure.
// Under TESSERA_WORKERS each worker has its own key: a ticket shown to another worker gets a full
// handshake too.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import tls from "node:tls";
import { listen, type Listener } from "../../src/server/listener.js";
import { makeTestCertificate, type TestCertificate } from "../support/net.js";
import { startService } from "../support/process.js";

interface Visit {
  reused: boolean;
  status: string;
  session: Buffer | undefined;
}

/** A TLS connection to `port` (resuming `session` if given) and one request: what came of it. */
function visit(port: number, ca: Buffer, maxVersion: tls.SecureVersion, session?: Buffer): Promise<Visit> {
  return new Promise((resolve, reject) => {
    let reused = false;
    let ticket: Buffer | undefined;
    let received = "";
    const s = tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost", maxVersion, session, ALPNProtocols: ["http/1.1"] }, () => {
      reused = s.isSessionReused();
      s.write("GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    });
    s.on("session", (t: Buffer) => (ticket ??= t));
    s.on("data", (d: Buffer) => (received += d.toString("latin1")));
    s.on("error", reject);
    s.on("close", () => resolve({ reused, status: received.split("\r\n")[0] ?? "", session: ticket }));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("server: TLS session tickets", function () {
  this.timeout(60000);
  let cert: TestCertificate;
  before(() => (cert = makeTestCertificate()));
  after(() => cert?.remove());

  describe("the ticket key is replaced", () => {
    let listener: Listener;
    before(async () => {
      listener = await listen(
        (_req, res) => {
          res.setHeader("content-type", "text/plain");
          res.end("ok");
        },
        {
          host: "127.0.0.1",
          port: 0,
          tls: { cert: readFileSync(cert.env.TESSERA_TLS_CERT_FILE!), key: readFileSync(cert.env.TESSERA_TLS_KEY_FILE!) },
          requestTimeoutMs: 5000,
          headersTimeoutMs: 5000,
          idleTimeoutMs: 5000,
          keepAliveMs: 0,
          maxHeaderBytes: 16384,
          maxConcurrentStreams: 100,
          ticketKeyRotationMs: 300,
        },
      );
    });
    after(async () => listener?.close(0));

    for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
      it(`${version}: a ticket resumes until its key is replaced, then gets a full handshake`, async () => {
        // Just after a replacement, so that the next one is 300 ms away.
        let first: Visit | undefined;
        for (let attempt = 0; attempt < 20 && first === undefined; attempt++) {
          const t0 = Date.now();
          const fresh = await visit(listener.port, cert.ca, version);
          const again = await visit(listener.port, cert.ca, version, fresh.session);
          if (again.reused && Date.now() - t0 < 150) first = fresh;
        }
        assert.ok(first, "a ticket resumed at once");
        assert.equal(first.status, "HTTP/1.1 200 OK");
        await sleep(700);
        const later = await visit(listener.port, cert.ca, version, first.session);
        assert.equal(later.status, "HTTP/1.1 200 OK");
        assert.equal(later.reused, false);
      });
    }
  });

  it("under TESSERA_WORKERS a ticket shown to another worker gets a full handshake", async () => {
    const cluster = await startService("compiled", { ...cert.env, TESSERA_WORKERS: "2" }, { listeners: 2 });
    try {
      const first = await visit(cluster.port, cert.ca, "TLSv1.2");
      // Connections go to both workers in turn: half of these are the other worker's.
      const visits: Visit[] = [];
      for (let i = 0; i < 6; i++) visits.push(await visit(cluster.port, cert.ca, "TLSv1.2", first.session));
      for (const v of visits) assert.equal(v.status, "HTTP/1.1 200 OK");
      assert.ok(visits.some((v) => v.reused) && visits.some((v) => !v.reused), JSON.stringify(visits.map((v) => v.reused)));
    } finally {
      cluster.child.kill("SIGTERM");
      await cluster.exited;
    }
  });
});
