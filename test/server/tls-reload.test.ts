// A renewed TLS certificate is served without a restart (README, "Connections and limits"): on
// SIGHUP, in every worker, and when its files change (TESSERA_TLS_RELOAD_SECONDS). A pair that
// does not check out (the key not the certificate's, an expired certificate or one not yet valid,
// a file missing) is not served: the one before stays, and the log names the problem, never the
// key; one not yet valid is served once it is. Connections open before a reload keep working.
// /metrics tells when the served certificate expires.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import http2 from "node:http2";
import tls from "node:tls";
import { loadCertificate, CertificateError, watchCertificate, type TlsPair } from "../../src/server/tls-certificate.js";
import { createLogger } from "../../src/logger.js";
import { family, scrape } from "../support/metrics.js";
import { freePort, makeCertificateWith, makeChain, makeTestCertificate, type ChainLink, type TestCertificate } from "../support/net.js";
import { pollUntil } from "../support/poll.js";
import { startService } from "../support/process.js";
import { startTestServer, type TestServer } from "../support/server.js";

/** The SHA-256 fingerprint a new TLS handshake with 127.0.0.1:`port` is shown. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername: "localhost", rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.on("error", reject);
  });
}

const fingerprintOf = (pem: Buffer) => new X509Certificate(pem).fingerprint256;

/** Writes `next`'s certificate and key over `into`'s files (a renewal in place). */
function renew(into: TestCertificate, next: TestCertificate): void {
  copyFileSync(next.env.TESSERA_TLS_CERT_FILE!, into.env.TESSERA_TLS_CERT_FILE!);
  copyFileSync(next.env.TESSERA_TLS_KEY_FILE!, into.env.TESSERA_TLS_KEY_FILE!);
}

async function until(check: () => Promise<boolean> | boolean, what: string, ms = 5000): Promise<void> {
  await pollUntil(what, check, { limitMs: ms, intervalMs: 50 });
}

const logged = (server: TestServer, msg: string) => server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);

describe("server: TLS certificate renewal", function () {
  this.timeout(30000);
  const made: TestCertificate[] = [];
  const certificate = () => {
    const c = makeTestCertificate();
    made.push(c);
    return c;
  };
  after(() => made.forEach((c) => c.remove()));

  const chain = (links: ChainLink[]) => {
    const c = makeChain(links);
    made.push(c);
    return c;
  };

  describe("in one process", () => {
    let server: TestServer;
    let first: TestCertificate;
    let metricsPort: number;

    beforeEach(async () => {
      first = certificate();
      metricsPort = await freePort();
      server = await startTestServer({ env: { ...first.env, TESSERA_TLS_RELOAD_SECONDS: "0", TESSERA_METRICS_PORT: String(metricsPort) } });
    });
    afterEach(async () => server?.close());

    it("a reload serves the renewed pair to new handshakes; an HTTP/2 connection opened before keeps working", async () => {
      assert.equal(await servedFingerprint(server.port), fingerprintOf(first.ca));
      const before = http2.connect(server.url, { ca: first.ca });
      try {
        await once(before, "connect");
        const next = certificate();
        renew(first, next);
        assert.equal(server.tessera.server.reloadCertificate(), true);
        assert.equal(await servedFingerprint(server.port), fingerprintOf(next.ca));
        const [line] = logged(server, "TLS certificate reloaded");
        assert.equal(line?.why, "signal");
        assert.equal(line?.fingerprint, new X509Certificate(next.ca).fingerprint256.replaceAll(":", "").toLowerCase());

        // The connection made before the reload still answers.
        const status = await new Promise<number>((resolve, reject) => {
          const req = before.request({ ":path": "/healthz" });
          req.on("response", (h) => resolve(Number(h[":status"])));
          req.on("error", reject);
          req.end();
        });
        assert.equal(status, 200);
      } finally {
        before.close();
      }
    });

    it("a key that is not the certificate's is refused: the served pair stays and the log names the problem, not the key", async () => {
      const other = certificate();
      copyFileSync(other.env.TESSERA_TLS_KEY_FILE!, first.env.TESSERA_TLS_KEY_FILE!);
      assert.equal(server.tessera.server.reloadCertificate(), false);
      assert.equal(await servedFingerprint(server.port), fingerprintOf(first.ca));
      const [line] = logged(server, "TLS certificate not reloaded");
      assert.equal(line?.level, "warn");
      assert.match(String(line?.error), /^TESSERA_TLS_KEY_FILE \(.+key\.pem\): not the private key of the first certificate in TESSERA_TLS_CERT_FILE \(.+cert\.pem\)$/);
      assert.doesNotMatch(server.logs.join("\n"), /PRIVATE KEY/);
    });

    it("a missing certificate file is refused, naming the file", async () => {
      rmSync(first.env.TESSERA_TLS_CERT_FILE!);
      assert.equal(server.tessera.server.reloadCertificate(), false);
      assert.equal(await servedFingerprint(server.port), fingerprintOf(first.ca));
      assert.equal(logged(server, "TLS certificate not reloaded")[0]?.error, `TESSERA_TLS_CERT_FILE (${first.env.TESSERA_TLS_CERT_FILE}): ENOENT`);
    });

    it("/metrics gives the served certificate's expiry, and the renewed one's after a reload", async () => {
      const expiry = async () => Number(family(await scrape(`http://127.0.0.1:${metricsPort}/metrics`), "tessera_tls_certificate_expiry_timestamp_seconds").metrics[0]!.value);
      assert.equal(await expiry(), new Date(new X509Certificate(first.ca).validTo).getTime() / 1000);
      await new Promise((resolve) => setTimeout(resolve, 1100)); // the next certificate expires a second later
      const next = certificate();
      renew(first, next);
      server.tessera.server.reloadCertificate();
      assert.equal(await expiry(), new Date(new X509Certificate(next.ca).validTo).getTime() / 1000);
    });

    it("a renewal whose chain is refused (a 1024-bit intermediate, a leaf signed with SHA-1) keeps the served certificate, and is counted in tessera_tls_reload_failures_total", async () => {
      const failures = async () => Number(family(await scrape(`http://127.0.0.1:${metricsPort}/metrics`), "tessera_tls_reload_failures_total").metrics[0]!.value);
      const rsa = (bits: number) => ["-algorithm", "rsa", "-pkeyopt", `rsa_keygen_bits:${bits}`];
      const root: ChainLink = { cn: "Tessera Test Root", key: rsa(2048), sign: ["-sha256"] };
      const intermediate: ChainLink = { cn: "Tessera Test Intermediate", key: rsa(2048), sign: ["-sha256"] };
      const leaf: ChainLink = { cn: "localhost", key: ["-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], sign: ["-sha256"] };
      const certFile = first.env.TESSERA_TLS_CERT_FILE!;
      assert.equal(await failures(), 0);

      renew(first, chain([root, { ...intermediate, key: rsa(1024) }, leaf]));
      assert.equal(server.tessera.server.reloadCertificate(), false);
      assert.equal(await servedFingerprint(server.port), fingerprintOf(first.ca));
      assert.equal(
        logged(server, "TLS certificate not reloaded")[0]?.error,
        `TESSERA_TLS_CERT_FILE (${certFile}): certificate 2 in the file (CN=Tessera Test Intermediate): its RSA key has 1024 bits; at least 2048 are needed`,
      );
      assert.equal(await failures(), 1);

      renew(first, chain([root, intermediate, { ...leaf, sign: ["-sha1"] }]));
      assert.equal(server.tessera.server.reloadCertificate(), false);
      assert.equal(await servedFingerprint(server.port), fingerprintOf(first.ca));
      assert.equal(
        logged(server, "TLS certificate not reloaded")[1]?.error,
        `TESSERA_TLS_CERT_FILE (${certFile}): the certificate (CN=localhost) is signed with SHA-1 (sha1WithRSAEncryption), which clients refuse; it must be issued again, signed with SHA-256 or stronger`,
      );
      assert.equal(await failures(), 2);

      // A sound chain is served, and a reload served is not counted.
      renew(first, chain([root, intermediate, leaf]));
      assert.equal(server.tessera.server.reloadCertificate(), true);
      assert.equal(await servedFingerprint(server.port), fingerprintOf(readFileSync(certFile)));
      assert.equal(await failures(), 2);
    });
  });

  it("without TLS there is no expiry metric, nor reload failures counted", async () => {
    const metricsPort = await freePort();
    const server = await startTestServer({ env: { TESSERA_METRICS_PORT: String(metricsPort) } });
    try {
      const families = await scrape(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(families.find((f) => f.name === "tessera_tls_certificate_expiry_timestamp_seconds"), undefined);
      assert.equal(families.find((f) => f.name === "tessera_tls_reload_failures_total"), undefined);
      assert.equal(server.tessera.server.reloadCertificate(), false);
    } finally {
      await server.close();
    }
  });

  it("an expired certificate is refused", () => {
    const c = certificate();
    const notAfter = new Date(new X509Certificate(c.ca).validTo);
    const later = new Date(notAfter.getTime() + 1000);
    assert.throws(() => loadCertificate(c.env.TESSERA_TLS_CERT_FILE!, c.env.TESSERA_TLS_KEY_FILE!, later), (e: unknown) => {
      assert.ok(e instanceof CertificateError);
      assert.equal(e.message, `TESSERA_TLS_CERT_FILE (${c.env.TESSERA_TLS_CERT_FILE}): expired at ${notAfter.toISOString()}`);
      return true;
    });
    assert.equal(loadCertificate(c.env.TESSERA_TLS_CERT_FILE!, c.env.TESSERA_TLS_KEY_FILE!, new Date(notAfter.getTime() - 1000)).notAfter.getTime(), notAfter.getTime());
  });

  it("a certificate valid from up to 5 minutes ahead of the clock is served (clock skew); one valid from later is refused", () => {
    const notBefore = new Date("2030-01-01T00:00:00Z");
    const c = makeCertificateWith(["-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], notBefore);
    made.push(c);
    const at = (ms: number) => () => loadCertificate(c.env.TESSERA_TLS_CERT_FILE!, c.env.TESSERA_TLS_KEY_FILE!, new Date(notBefore.getTime() + ms));
    assert.doesNotThrow(at(-5 * 60_000));
    assert.doesNotThrow(at(0));
    assert.throws(at(-5 * 60_000 - 1000), { message: `TESSERA_TLS_CERT_FILE (${c.env.TESSERA_TLS_CERT_FILE}): not valid before 2030-01-01T00:00:00.000Z` });
  });

  it("a renewal refused as not yet valid is served once it is, the files unchanged", async () => {
    const notBefore = new Date("2030-01-01T00:00:00Z");
    const first = certificate();
    const next = makeCertificateWith(["-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], notBefore);
    made.push(next);
    let clock = new Date(notBefore.getTime() - 3_600_000);
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger("info", (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    const applied: TlsPair[] = [];
    const watcher = watchCertificate(first.env.TESSERA_TLS_CERT_FILE!, first.env.TESSERA_TLS_KEY_FILE!, loadCertificate(first.env.TESSERA_TLS_CERT_FILE!, first.env.TESSERA_TLS_KEY_FILE!), (p) => applied.push(p), logger, { intervalMs: 20, now: () => clock });
    try {
      renew(first, next);
      await until(() => lines.some((l) => l.msg === "TLS certificate not reloaded"), "the refusal");
      assert.equal(lines.find((l) => l.msg === "TLS certificate not reloaded")?.error, `TESSERA_TLS_CERT_FILE (${first.env.TESSERA_TLS_CERT_FILE}): not valid before 2030-01-01T00:00:00.000Z`);
      assert.equal(applied.length, 0);
      clock = new Date(notBefore.getTime() - 60_000);
      await until(() => applied.length === 1, "the renewal served");
      assert.equal(fingerprintOf(applied[0]!.cert), fingerprintOf(next.ca));
      assert.equal(lines.filter((l) => l.msg === "TLS certificate not reloaded").length, 1);
      assert.equal(lines.find((l) => l.msg === "TLS certificate reloaded")?.why, "changed");
    } finally {
      watcher.stop();
    }
  });

  it("a renewal written after the start read the pair, before it watches the files, is served once it has started (TESSERA_TLS_RELOAD_SECONDS 0 too)", async () => {
    const first = certificate();
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger("info", (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    const loaded = loadCertificate(first.env.TESSERA_TLS_CERT_FILE!, first.env.TESSERA_TLS_KEY_FILE!);
    const next = certificate();
    renew(first, next);
    const applied: TlsPair[] = [];
    const watcher = watchCertificate(first.env.TESSERA_TLS_CERT_FILE!, first.env.TESSERA_TLS_KEY_FILE!, loaded, (p) => applied.push(p), logger, { intervalMs: 0 });
    try {
      await until(() => applied.length === 1, "the renewal served");
      assert.equal(fingerprintOf(applied[0]!.cert), fingerprintOf(next.ca));
      assert.equal(watcher.current.fingerprint, new X509Certificate(next.ca).fingerprint256.replaceAll(":", "").toLowerCase());
      assert.equal(lines.find((l) => l.msg === "TLS certificate reloaded")?.why, "changed");
    } finally {
      watcher.stop();
    }
  });

  it("a renewal that fails to be served for any other reason is refused, logged and counted, never thrown", () => {
    const first = certificate();
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger("info", (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    let refused = 0;
    const loaded = loadCertificate(first.env.TESSERA_TLS_CERT_FILE!, first.env.TESSERA_TLS_KEY_FILE!);
    const apply = () => {
      throw new Error("setSecureContext failed");
    };
    const watcher = watchCertificate(first.env.TESSERA_TLS_CERT_FILE!, first.env.TESSERA_TLS_KEY_FILE!, loaded, apply, logger, { intervalMs: 0, onRefused: () => refused++ });
    try {
      renew(first, certificate());
      assert.equal(watcher.reload("signal"), false);
      assert.equal(refused, 1);
      assert.equal(watcher.current.fingerprint, loaded.fingerprint);
      const line = lines.find((l) => l.msg === "TLS certificate not reloaded");
      assert.equal(line?.error, "setSecureContext failed");
      assert.equal(line?.level, "error");
    } finally {
      watcher.stop();
    }
  });

  it("a file that is not PEM is refused", () => {
    const c = certificate();
    writeFileSync(c.env.TESSERA_TLS_CERT_FILE!, "not a certificate\n");
    assert.throws(() => loadCertificate(c.env.TESSERA_TLS_CERT_FILE!, c.env.TESSERA_TLS_KEY_FILE!), { message: `TESSERA_TLS_CERT_FILE (${c.env.TESSERA_TLS_CERT_FILE}): not a PEM certificate` });
  });

  it("TESSERA_TLS_RELOAD_SECONDS: a renewal written to the files is served without a signal", async () => {
    const first = certificate();
    const server = await startTestServer({ env: { ...first.env, TESSERA_TLS_RELOAD_SECONDS: "1" } });
    try {
      const next = certificate();
      renew(first, next);
      await until(async () => (await servedFingerprint(server.port)) === fingerprintOf(next.ca), "the renewed certificate");
      assert.equal(logged(server, "TLS certificate reloaded")[0]?.why, "changed");
    } finally {
      await server.close();
    }
  });

  it("SIGHUP reloads the certificate in every worker and does not end the process", async () => {
    const first = certificate();
    const cluster = await startService("compiled", { ...first.env, TESSERA_WORKERS: "2", TESSERA_TLS_RELOAD_SECONDS: "0" }, { listeners: 2 });
    try {
      const next = certificate();
      renew(first, next);
      cluster.child.kill("SIGHUP");
      await until(() => cluster.lines().filter((l) => l.msg === "TLS certificate reloaded").length === 2, "both workers' reload");
      assert.deepEqual(new Set(cluster.lines().filter((l) => l.msg === "TLS certificate reloaded").map((l) => l.worker)), new Set([1, 2]));
      // Connections go to both workers in turn: every one is shown the renewed certificate.
      for (let i = 0; i < 6; i++) assert.equal(await servedFingerprint(cluster.port), fingerprintOf(next.ca));
      assert.equal(cluster.child.exitCode, null);
      cluster.child.kill("SIGTERM");
      assert.equal(await cluster.exited, 0);
    } finally {
      cluster.child.kill("SIGKILL");
    }
  });
});
