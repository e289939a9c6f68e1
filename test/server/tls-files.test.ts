// The TLS certificate and key files (README, "TLS certificates"): a pair that cannot be served
// stops the start with one line naming the variable and the file, never quoting the key (a key
// that is not the certificate's, an encrypted key, a key or certificate that is not PEM, an
// expired certificate or one not yet valid, a weak key); the same pair on reload keeps the served
// one, with the same message logged. A key file other users may read is warned about.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { entryArgv } from "../support/process.js";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { makeCertificateWith, makeChain, makeTestCertificate, type ChainLink, type TestCertificate } from "../support/net.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { loadCertificate } from "../../src/server/tls-certificate.js";

const run = promisify(execFile);

/** The base64 lines of a PEM private key: none of them may appear in an error or a log. */
const keyLines = (pem: Buffer | string) =>
  pem
    .toString()
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("-----"));

describe("server: TLS certificate and key files", function () {
  this.timeout(60000);
  const made: TestCertificate[] = [];
  const certificate = () => {
    const c = makeTestCertificate();
    made.push(c);
    return c;
  };
  const certificateWith = (keyArgs: string[], notBefore?: Date) => {
    const c = makeCertificateWith(keyArgs, notBefore);
    made.push(c);
    return c;
  };
  const chain = (links: ChainLink[]) => {
    const c = makeChain(links);
    made.push(c);
    return c.env;
  };
  after(() => made.forEach((c) => c.remove()));

  const rsa = (bits: number) => ["-algorithm", "rsa", "-pkeyopt", `rsa_keygen_bits:${bits}`];
  const p256 = ["-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
  const root: ChainLink = { cn: "Tessera Test Root", key: rsa(2048), sign: ["-sha256"] };
  const intermediate: ChainLink = { cn: "Tessera Test Intermediate", key: rsa(2048), sign: ["-sha256"] };
  const leaf: ChainLink = { cn: "localhost", key: p256, sign: ["-sha256"] };
  const p224Args = ["-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-224"];

  const start = async (env: Record<string, string>) =>
    run(process.execPath, await entryArgv("compiled"), { env: { ...process.env, MONGODB_URI: "", PORT: "0", TESSERA_WORKERS: "1", ...env }, timeout: 20000 }).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );

  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const exactly = (s: string) => new RegExp(`^${escape(s)}$`);

  /**
   * The pairs that cannot be served: what, their env, the message expected given the files'
   * paths (certificate, key), and the key text that must not appear.
   */
  function badPairs(): [string, Record<string, string>, (cert: string, key: string) => RegExp, string][] {
    const good = certificate();
    const cert = good.env.TESSERA_TLS_CERT_FILE!;
    const key = good.env.TESSERA_TLS_KEY_FILE!;
    const dir = join(cert, "..");
    const other = certificate().env.TESSERA_TLS_KEY_FILE!;
    const encrypted = join(dir, "encrypted.pem");
    execFileSync("openssl", ["pkcs8", "-topk8", "-in", key, "-out", encrypted, "-passout", "pass:not-given"]);
    const garbage = join(dir, "garbage.pem");
    writeFileSync(garbage, "this is not a key\n");
    const expired = join(dir, "expired.pem");
    const csr = join(dir, "csr.pem");
    execFileSync("openssl", ["req", "-new", "-key", key, "-subj", "/CN=localhost", "-out", csr]);
    execFileSync("openssl", ["x509", "-req", "-in", csr, "-signkey", key, "-days", "-1", "-out", expired], { stdio: "ignore" });
    // Valid from tomorrow (whole seconds: a certificate's dates have no fraction).
    const tomorrow = new Date(Math.ceil(Date.now() / 1000) * 1000 + 86_400_000);
    const notYet = certificateWith(["-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], tomorrow).env;
    const rsa1024 = certificateWith(["-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:1024"]).env;
    const p224 = certificateWith(["-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-224"]).env;
    const weakIntermediate = chain([root, { ...intermediate, key: rsa(1024) }, leaf]);
    const sha1Leaf = chain([root, intermediate, { ...leaf, sign: ["-sha1"] }]);
    const md5Intermediate = chain([root, { ...intermediate, sign: ["-md5"] }, leaf]);
    const keyText = [key, other, notYet, rsa1024, p224, weakIntermediate, sha1Leaf, md5Intermediate]
      .map((f) => readFileSync(typeof f === "string" ? f : f.TESSERA_TLS_KEY_FILE!, "utf8"))
      .join("");
    return [
      ["a key that is not the certificate's", { TESSERA_TLS_CERT_FILE: cert, TESSERA_TLS_KEY_FILE: other },
        (c, k) => exactly(`TESSERA_TLS_KEY_FILE (${k}): not the private key of the first certificate in TESSERA_TLS_CERT_FILE (${c})`), keyText],
      ["an encrypted key", { TESSERA_TLS_CERT_FILE: cert, TESSERA_TLS_KEY_FILE: encrypted },
        (_c, k) => exactly(`TESSERA_TLS_KEY_FILE (${k}): the private key is encrypted; give it unencrypted (openssl pkey -in <encrypted> -out <key>), readable by Tessera's user alone`), readFileSync(encrypted, "utf8")],
      ["a key file that is not PEM", { TESSERA_TLS_CERT_FILE: cert, TESSERA_TLS_KEY_FILE: garbage },
        (_c, k) => exactly(`TESSERA_TLS_KEY_FILE (${k}): not a PEM private key`), keyText],
      ["the certificate and key files swapped", { TESSERA_TLS_CERT_FILE: key, TESSERA_TLS_KEY_FILE: cert },
        (c) => exactly(`TESSERA_TLS_CERT_FILE (${c}): not a PEM certificate`), keyText],
      ["an expired certificate", { TESSERA_TLS_CERT_FILE: expired, TESSERA_TLS_KEY_FILE: key },
        (c) => new RegExp(`^${escape(`TESSERA_TLS_CERT_FILE (${c}): expired at `)}\\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z$`), keyText],
      ["a certificate not yet valid", notYet,
        (c) => exactly(`TESSERA_TLS_CERT_FILE (${c}): not valid before ${tomorrow.toISOString()}`), keyText],
      ["an RSA key of 1024 bits", rsa1024,
        (c) => exactly(`TESSERA_TLS_CERT_FILE (${c}): the certificate's RSA key has 1024 bits; at least 2048 are needed`), keyText],
      ["an EC key on P-224", p224,
        (c) => exactly(`TESSERA_TLS_CERT_FILE (${c}): the certificate's EC key is on curve secp224r1; P-256, P-384 or P-521 is needed`), keyText],
      ["a chain whose intermediate has an RSA key of 1024 bits", weakIntermediate,
        (c) => exactly(`TESSERA_TLS_CERT_FILE (${c}): certificate 2 in the file (CN=Tessera Test Intermediate): its RSA key has 1024 bits; at least 2048 are needed`), keyText],
      ["a leaf signed with SHA-1 by its intermediate", sha1Leaf,
        (c) => exactly(`TESSERA_TLS_CERT_FILE (${c}): the certificate (CN=localhost) is signed with SHA-1 (sha1WithRSAEncryption), which clients refuse; it must be issued again, signed with SHA-256 or stronger`), keyText],
      ["an intermediate signed with MD5 by the root", md5Intermediate,
        (c) => exactly(`TESSERA_TLS_CERT_FILE (${c}): certificate 2 in the file (CN=Tessera Test Intermediate) is signed with MD5 (md5WithRSAEncryption), which clients refuse; it must be issued again, signed with SHA-256 or stronger`), keyText],
    ];
  }

  it("a pair that cannot be served stops the start: exit 2, one line naming the variable, never the key", async () => {
    for (const [what, env, expected, secret] of badPairs()) {
      const r = await start(env);
      assert.equal(r.code, 2, `${what}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `${what}: ${r.stderr}`);
      assert.match(lines[0]!.replace(/^tessera: configuration error: /, ""), expected(env.TESSERA_TLS_CERT_FILE!, env.TESSERA_TLS_KEY_FILE!), what);
      assert.ok(lines[0]!.startsWith("tessera: configuration error: "), lines[0]);
      for (const line of keyLines(secret)) assert.ok(!r.stderr.includes(line), `${what}: the key is quoted`);
    }
  });

  it("RSA keys of 2048 bits or more, EC keys on P-256, P-384 and P-521, and Ed25519 and Ed448 keys are served", () => {
    for (const keyArgs of [
      ["-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:2048"],
      ["-algorithm", "rsa-pss", "-pkeyopt", "rsa_keygen_bits:2048"],
      ["-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
      ["-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
      ["-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
      ["-algorithm", "ed25519"],
      ["-algorithm", "ed448"],
    ]) {
      const c = certificateWith(keyArgs).env;
      assert.doesNotThrow(() => loadCertificate(c.TESSERA_TLS_CERT_FILE!, c.TESSERA_TLS_KEY_FILE!, new Date()), keyArgs.join(" "));
    }
  });

  it("a chain is held to the leaf's rules: every key strong enough, no SHA-1 or MD5 signature but a self-signed root's own", () => {
    const load = (env: Record<string, string>) => () => loadCertificate(env.TESSERA_TLS_CERT_FILE!, env.TESSERA_TLS_KEY_FILE!, new Date());
    const refused = (links: ChainLink[], problem: string) => {
      const env = chain(links);
      assert.throws(load(env), { message: `TESSERA_TLS_CERT_FILE (${env.TESSERA_TLS_CERT_FILE}): ${problem}` }, problem);
    };
    // Served: a root signed with SHA-1 by itself (no client checks that signature), an RSA-PSS
    // signature with SHA-256, an Ed25519 root.
    assert.doesNotThrow(load(chain([{ ...root, sign: ["-sha1"] }, intermediate, leaf])));
    assert.doesNotThrow(load(chain([root, { ...leaf, sign: ["-sha256", "-sigopt", "rsa_padding_mode:pss"] }])));
    assert.doesNotThrow(load(chain([{ cn: "Tessera Test Root", key: ["-algorithm", "ed25519"], sign: [] }, { ...leaf, sign: [] }])));
    const sha1 = "which clients refuse; it must be issued again, signed with SHA-256 or stronger";
    refused([{ ...root, key: p256 }, { ...leaf, sign: ["-sha1"] }], `the certificate (CN=localhost) is signed with SHA-1 (ecdsa-with-SHA1), ${sha1}`);
    refused([root, { ...leaf, sign: ["-sha1", "-sigopt", "rsa_padding_mode:pss"] }], `the certificate (CN=localhost) is signed with SHA-1 (RSASSA-PSS with SHA-1), ${sha1}`);
    refused([root, { ...intermediate, sign: ["-sha1"] }, leaf], `certificate 2 in the file (CN=Tessera Test Intermediate) is signed with SHA-1 (sha1WithRSAEncryption), ${sha1}`);
    // The root's key is held to the rule too; a root signed by itself with SHA-1 is not refused for it.
    refused([{ ...root, key: rsa(1024), sign: ["-sha1"] }, intermediate, leaf], "certificate 3 in the file (CN=Tessera Test Root): its RSA key has 1024 bits; at least 2048 are needed");
    refused([root, { ...intermediate, key: p224Args }, leaf], "certificate 2 in the file (CN=Tessera Test Intermediate): its EC key is on curve secp224r1; P-256, P-384 or P-521 is needed");
  });

  it("a certificate of the chain whose public key cannot be read (an algorithm OpenSSL does not know) stops the start: exit 2, one line naming the variable", async () => {
    const env = chain([root, { ...intermediate, key: p256 }, leaf]);
    const file = env.TESSERA_TLS_CERT_FILE!;
    // The intermediate's key algorithm, id-ecPublicKey (1.2.840.10045.2.1), made 1.2.840.10045.2.9:
    // OpenSSL still parses the certificate, and cannot make a key of it.
    const blocks = readFileSync(file, "latin1").split(/(?<=-----END CERTIFICATE-----\n)/);
    const der = Buffer.from(blocks[1]!.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    const at = der.indexOf(Buffer.from("2a8648ce3d0201", "hex"));
    assert.ok(at > 0);
    der[at + 6] = 0x09;
    blocks[1] = `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n")}-----END CERTIFICATE-----\n`;
    writeFileSync(file, blocks.join(""));
    const r = await start(env);
    assert.deepEqual(r, { code: 2, stderr: `tessera: configuration error: TESSERA_TLS_CERT_FILE (${file}): certificate 2 in the file (CN=Tessera Test Intermediate): its public key cannot be read\n` });
  });

  it("a certificate under another PEM label OpenSSL reads as one (X509 CERTIFICATE, TRUSTED CERTIFICATE) is held to the chain's rules too", () => {
    // The leaf's block or the intermediate's relabelled: OpenSSL serves both certificates all the same.
    const relabelled = (which: number, label: string) => {
      const env = chain([root, { ...intermediate, key: rsa(1024) }, leaf]);
      const file = env.TESSERA_TLS_CERT_FILE!;
      const blocks = readFileSync(file, "latin1").split(/(?<=-----END CERTIFICATE-----\n)/);
      blocks[which] = blocks[which]!.replace(/(BEGIN|END) CERTIFICATE/g, `$1 ${label}`);
      writeFileSync(file, blocks.join(""));
      return env;
    };
    for (const [which, label] of [[0, "X509 CERTIFICATE"], [0, "TRUSTED CERTIFICATE"], [1, "X509 CERTIFICATE"]] as const) {
      const env = relabelled(which, label);
      assert.throws(() => loadCertificate(env.TESSERA_TLS_CERT_FILE!, env.TESSERA_TLS_KEY_FILE!, new Date()), {
        message: `TESSERA_TLS_CERT_FILE (${env.TESSERA_TLS_CERT_FILE}): certificate 2 in the file (CN=Tessera Test Intermediate): its RSA key has 1024 bits; at least 2048 are needed`,
      }, `${label} at ${which}`);
    }
  });

  it("certificates without a subject (named by their subjectAltName alone) are served, and named by their place when refused", () => {
    const load = (env: Record<string, string>) => () => loadCertificate(env.TESSERA_TLS_CERT_FILE!, env.TESSERA_TLS_KEY_FILE!, new Date());
    assert.doesNotThrow(load(chain([root, { ...intermediate, cn: "" }, { ...leaf, cn: "" }])));
    const env = chain([root, { ...intermediate, cn: "", sign: ["-sha1"] }, leaf]);
    assert.throws(load(env), {
      message: `TESSERA_TLS_CERT_FILE (${env.TESSERA_TLS_CERT_FILE}): certificate 2 in the file (no subject) is signed with SHA-1 (sha1WithRSAEncryption), which clients refuse; it must be issued again, signed with SHA-256 or stronger`,
    });
  });

  it("an RSA-PSS key of 1024 bits is refused as an RSA one is", () => {
    const c = certificateWith(["-algorithm", "rsa-pss", "-pkeyopt", "rsa_keygen_bits:1024"]).env;
    assert.throws(() => loadCertificate(c.TESSERA_TLS_CERT_FILE!, c.TESSERA_TLS_KEY_FILE!, new Date()), {
      message: `TESSERA_TLS_CERT_FILE (${c.TESSERA_TLS_CERT_FILE}): the certificate's RSA-PSS key has 1024 bits; at least 2048 are needed`,
    });
  });

  describe("on reload", () => {
    let server: TestServer;
    let served: TestCertificate;

    before(async () => {
      served = certificate();
      server = await startTestServer({ env: { ...served.env, TESSERA_TLS_RELOAD_SECONDS: "0" } });
    });
    after(async () => server?.close());

    it("the same pairs are refused with the same message, the served pair kept, the key never logged", () => {
      const servedCert = readFileSync(served.env.TESSERA_TLS_CERT_FILE!);
      const servedKey = readFileSync(served.env.TESSERA_TLS_KEY_FILE!);
      for (const [what, env, expected, secret] of badPairs()) {
        const before = server.logs.length;
        writeFileSync(served.env.TESSERA_TLS_CERT_FILE!, readFileSync(env.TESSERA_TLS_CERT_FILE!));
        writeFileSync(served.env.TESSERA_TLS_KEY_FILE!, readFileSync(env.TESSERA_TLS_KEY_FILE!));
        assert.equal(server.tessera.server.reloadCertificate(), false, what);
        const lines = server.logs.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>);
        const refused = lines.find((l) => l.msg === "TLS certificate not reloaded");
        // The files are the served pair's: the message names them.
        assert.match(String(refused?.error), expected(served.env.TESSERA_TLS_CERT_FILE!, served.env.TESSERA_TLS_KEY_FILE!), what);
        for (const line of keyLines(secret).concat(keyLines(servedKey))) assert.ok(!server.logs.join("\n").includes(line), `${what}: the key is logged`);
        writeFileSync(served.env.TESSERA_TLS_CERT_FILE!, servedCert);
        writeFileSync(served.env.TESSERA_TLS_KEY_FILE!, servedKey);
      }
      assert.equal(server.tessera.server.reloadCertificate(), true);
    });
  });

  describe("a key file other users may read", () => {
    it("is warned about at start and on reload, naming the file and its mode; 0600 and 0640 are not", async () => {
      const c = certificate();
      const key = c.env.TESSERA_TLS_KEY_FILE!;
      chmodSync(key, 0o644);
      const server = await startTestServer({ env: { ...c.env, TESSERA_TLS_RELOAD_SECONDS: "0" } });
      const warnings = () => server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === "TLS key file is readable by other users");
      try {
        assert.deepEqual(warnings(), [{ ...warnings()[0], level: "warn", file: key, mode: "0644", fix: "chmod o-r" }]);
        chmodSync(key, 0o640);
        assert.equal(server.tessera.server.reloadCertificate(), true);
        assert.equal(warnings().length, 1);
        chmodSync(key, 0o604);
        assert.equal(server.tessera.server.reloadCertificate(), true);
        assert.equal(warnings().length, 2);
        assert.equal(warnings()[1]!.mode, "0604");
      } finally {
        await server.close();
      }
      chmodSync(key, 0o600);
      const quiet = await startTestServer({ env: c.env });
      try {
        assert.ok(!quiet.logs.some((l) => l.includes("TLS key file is readable")));
      } finally {
        await quiet.close();
      }
    });
  });
});
