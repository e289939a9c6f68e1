// Small network and TLS helpers shared by the suites.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net, { createServer } from "node:net";
import tls from "node:tls";
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

/** True when a connection to 127.0.0.1:`port` is refused (nothing listens there). */
export function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

/** A call under way: its request sent but for the end of its body. */
export interface CallInFlight {
  /** Its answer, once `finish()` has sent the rest of the body. */
  answer: Promise<{ status: number; text: string }>;
  finish(): void;
}

/**
 * POSTs `body` to `path` on a connection of its own, sending all but the first `sent` characters
 * only on `finish()`: a call whose body is still arriving (in flight when a stop comes).
 */
export function callInFlight(port: number, path: string, body: string, headers: http.OutgoingHttpHeaders = {}, sent = 5): CallInFlight {
  let req!: http.ClientRequest;
  const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
    req = http.request(
      { host: "127.0.0.1", port, method: "POST", path, agent: false, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...headers } },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode!, text }));
      },
    );
    req.on("error", reject);
    req.write(body.slice(0, sent));
  });
  return { answer, finish: () => req.end(body.slice(sent)) };
}

export interface TestCertificate {
  /** The self-signed certificate, to trust as a CA. */
  ca: Buffer;
  /** TESSERA_TLS_CERT_FILE and TESSERA_TLS_KEY_FILE for startTestServer. */
  env: Record<string, string>;
  remove(): void;
}

/**
 * A self-signed certificate for localhost and 127.0.0.1, valid one day (openssl): a P-256 key, or
 * an RSA one (2048 bits).
 */
export function makeTestCertificate(keyType: "ec" | "rsa" = "ec"): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), "tessera-tls-"));
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", ...(keyType === "ec" ? ["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] : ["rsa:2048"]), "-nodes", "-days", "1",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-keyout", key, "-out", cert,
  ], { stdio: "ignore" });
  return {
    ca: readFileSync(cert),
    env: { TESSERA_TLS_CERT_FILE: cert, TESSERA_TLS_KEY_FILE: key },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * RSA and RSA-PSS keys made by `openssl genpkey`, by its arguments, in the order they were made.
 * Making one costs openssl 0.1-0.5 s of CPU (the search for its primes), an EC or Ed25519 key a
 * few ms, and a TLS suite makes dozens: each is made once per test process and used again in
 * the certificates that follow. What those tests check is the certificate each key is in (its
 * size, its curve, its chain, its signatures), not that the key is new; a chain's links never
 * share one (the n-th link with these arguments gets the n-th key), and makeTestCertificate, whose
 * certificates serve as "another key", makes a new key every time.
 */
const rsaKeys = new Map<string, string[]>();

/** Writes to `file` (as openssl does, mode 0600) the `nth` RSA key of `keyArgs`, or a new key of another kind. */
function genpkey(keyArgs: string[], file: string, nth: number, run: (args: string[]) => void): void {
  const algorithm = keyArgs[keyArgs.indexOf("-algorithm") + 1]?.toLowerCase();
  if (algorithm !== "rsa" && algorithm !== "rsa-pss") {
    run(["genpkey", ...keyArgs, "-out", file]);
    return;
  }
  const made = rsaKeys.get(keyArgs.join(" ")) ?? [];
  rsaKeys.set(keyArgs.join(" "), made);
  while (made.length <= nth) {
    run(["genpkey", ...keyArgs, "-out", file]);
    made.push(readFileSync(file, "latin1"));
  }
  writeFileSync(file, made[nth]!, { encoding: "latin1", mode: 0o600 });
}

/**
 * A self-signed certificate for localhost and 127.0.0.1 with a key of the given kind (`openssl
 * genpkey` arguments: ["-algorithm", "ed25519"], ["-algorithm", "rsa", "-pkeyopt",
 * "rsa_keygen_bits:1024"], ...), valid one day from now, or from `notBefore` to a year later.
 */
export function makeCertificateWith(keyArgs: string[], notBefore?: Date): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), "tessera-tls-"));
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  genpkey(keyArgs, key, 0, run);
  const names = ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"];
  if (notBefore === undefined) {
    run(["req", "-x509", "-new", "-key", key, "-days", "1", ...names, "-out", cert]);
  } else {
    // openssl req and x509 (3.0) set notBefore to now; openssl ca takes one.
    const stamp = (d: Date) => d.toISOString().replace(/[-:T]/g, "").replace(/\.\d+Z$/, "Z");
    writeFileSync(join(dir, "index.txt"), "");
    writeFileSync(join(dir, "serial"), "01\n");
    writeFileSync(
      join(dir, "ca.cnf"),
      "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\ncopy_extensions = copy\n[p]\ncommonName = supplied\n",
    );
    run(["req", "-new", "-key", key, ...names, "-out", "csr.pem"]);
    const notAfter = new Date(notBefore.getTime() + 365 * 86_400_000);
    run(["ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", key, "-in", "csr.pem", "-startdate", stamp(notBefore), "-enddate", stamp(notAfter), "-notext", "-out", cert]);
  }
  return {
    ca: readFileSync(cert),
    env: { TESSERA_TLS_CERT_FILE: cert, TESSERA_TLS_KEY_FILE: key },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** One certificate of a chain made by makeChain. */
export interface ChainLink {
  /** Its subject's CN ("": no subject at all). */
  cn: string;
  /** Its key (`openssl genpkey` arguments). */
  key: string[];
  /** How its issuer signs it (`openssl x509` arguments: ["-sha1"], ["-sha256", "-sigopt", "rsa_padding_mode:pss"]). */
  sign: string[];
}

/**
 * A chain made with openssl, valid one day: `links` from the root (self-signed, CA) down to the
 * leaf (for localhost and 127.0.0.1), each link signed by the one before. The certificate file
 * holds them leaf first, up to the root (the root only when `withRoot`); the key file is the leaf's.
 */
export function makeChain(links: ChainLink[], withRoot = true): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), "tessera-tls-"));
  const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  writeFileSync(join(dir, "ca.ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n");
  writeFileSync(join(dir, "leaf.ext"), "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n");
  links.forEach((link, i) => {
    const sameKeyArgs = links.slice(0, i).filter((l) => l.key.join(" ") === link.key.join(" ")).length;
    genpkey(link.key, join(dir, `${i}.key`), sameKeyArgs, run);
    run(["req", "-new", "-key", `${i}.key`, "-subj", link.cn === "" ? "/" : `/CN=${link.cn}`, "-out", `${i}.csr`]);
    const issuer = i === 0 ? ["-signkey", "0.key"] : ["-CA", `${i - 1}.pem`, "-CAkey", `${i - 1}.key`, "-set_serial", String(1000 + i)];
    const ext = i === links.length - 1 ? "leaf.ext" : "ca.ext";
    run(["x509", "-req", "-in", `${i}.csr`, ...issuer, ...link.sign, "-days", "1", "-extfile", ext, "-out", `${i}.pem`]);
  });
  const served = links.map((_, i) => i).reverse().filter((i) => withRoot || i > 0);
  const cert = join(dir, "cert.pem");
  writeFileSync(cert, served.map((i) => readFileSync(join(dir, `${i}.pem`), "latin1")).join(""));
  return {
    ca: readFileSync(join(dir, "0.pem")),
    env: { TESSERA_TLS_CERT_FILE: cert, TESSERA_TLS_KEY_FILE: join(dir, `${links.length - 1}.key`) },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface SlowClientResult {
  closedAfterMs: number;
  /** Everything the server sent (latin1). */
  received: string;
}

/**
 * Opens a connection (TCP, or TLS with `tls.ca` and the given ALPN protocols), runs `feed` once
 * it is up, and resolves with what the server sent and when it closed the connection.
 */
export function slowClient(port: number, feed: (s: net.Socket) => void, opts: { tls?: { ca: Buffer; alpn?: string[] } } = {}): Promise<SlowClientResult> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = opts.tls
      ? tls.connect({ host: "127.0.0.1", port, ca: opts.tls.ca, servername: "localhost", ALPNProtocols: opts.tls.alpn ?? ["http/1.1"] })
      : net.connect(port, "127.0.0.1");
    let received = "";
    s.on("data", (d: Buffer) => (received += d.toString("latin1")));
    s.on("error", () => {});
    s.on("close", () => resolve({ closedAfterMs: Date.now() - t0, received }));
    s.on(opts.tls ? "secureConnect" : "connect", () => feed(s));
  });
}

export interface Http1Answer {
  status: number;
  /** Header names lower-cased; the last value of a repeated header. */
  headers: Record<string, string>;
  /** The body, de-chunked when it was sent chunked. */
  body: Buffer;
}

/**
 * The head of the HTTP/1.1 answer `received` begins with (latin1): its status, its headers (names
 * lower-cased; the last value of a repeated one) and what follows the head; undefined until the
 * whole head has arrived.
 */
export function http1Head(received: string): { status: number; headers: Record<string, string>; rest: string } | undefined {
  const end = received.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const [line, ...lines] = received.slice(0, end).split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(line!)?.[1]), headers, rest: received.slice(end + 4) };
}

/**
 * The one HTTP/1.1 answer in `received` (what slowClient read, latin1): its status, headers and
 * body (framed by Content-Length, chunked, or the connection's close). Fails on bytes after it.
 */
export function http1Answer(received: string): Http1Answer {
  const head = http1Head(received);
  assert.ok(head, `no whole answer head in ${JSON.stringify(received)}`);
  const { status, headers } = head;
  let rest = head.rest;
  let body = "";
  if (headers["transfer-encoding"]?.toLowerCase() === "chunked") {
    for (;;) {
      const size = rest.indexOf("\r\n");
      assert.ok(size > 0, `a chunk cut short in ${JSON.stringify(received)}`);
      const length = parseInt(rest.slice(0, size), 16);
      if (length === 0) {
        assert.equal(rest.slice(size), "\r\n\r\n", "the last chunk, no trailers, nothing after it");
        rest = "";
        break;
      }
      body += rest.slice(size + 2, size + 2 + length);
      assert.equal(rest.slice(size + 2 + length, size + 4 + length), "\r\n", "a chunk's end");
      rest = rest.slice(size + 4 + length);
    }
  } else if (headers["content-length"] !== undefined) {
    body = rest.slice(0, Number(headers["content-length"]));
    rest = rest.slice(body.length);
  } else {
    body = rest;
    rest = "";
  }
  assert.equal(rest, "", "nothing after the answer");
  return { status, headers, body: Buffer.from(body, "latin1") };
}

/** Writes `text` one character every `everyMs` until done or the socket closes. */
export function dribble(s: net.Socket, text: string, everyMs: number): void {
  let i = 0;
  const t = setInterval(() => {
    if (s.destroyed || i >= text.length) return clearInterval(t);
    s.write(text[i++]!);
  }, everyMs);
  s.on("close", () => clearInterval(t));
}
