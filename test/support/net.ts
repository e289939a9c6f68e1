// Small network and TLS helpers shared by the suites.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface TestCertificate {
  /** The self-signed certificate, to trust as a CA. */
  ca: Buffer;
  /** TESSERA_TLS_CERT_FILE and TESSERA_TLS_KEY_FILE for startTestServer. */
  env: Record<string, string>;
  remove(): void;
}

/** A self-signed P-256 certificate for localhost and 127.0.0.1, valid one day (openssl). */
export function makeTestCertificate(): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), "tessera-tls-"));
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-keyout", key, "-out", cert,
  ], { stdio: "ignore" });
  return {
    ca: readFileSync(cert),
    env: { TESSERA_TLS_CERT_FILE: cert, TESSERA_TLS_KEY_FILE: key },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
