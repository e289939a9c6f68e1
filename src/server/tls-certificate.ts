// The TLS certificate and its key (TESSERA_TLS_CERT_FILE, TESSERA_TLS_KEY_FILE): read at start,
// and read again without a restart when the files change (looked at every
// TESSERA_TLS_RELOAD_SECONDS) or on SIGHUP. A renewed pair is checked before it is used: both
// files must parse, the key must be the certificate's and strong enough (keyProblem), every
// certificate of the chain in the file too, none signed with SHA-1 or MD5 but a self-signed
// root (chainProblem), and the certificate must be valid now (not expired, not valid only from
// later: notBeforeSkewMs); otherwise the pair served until then stays, and the problem is logged
// (never the key) and counted (tessera_tls_reload_failures_total). New
// handshakes get the new pair; connections already open keep theirs.
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import tls from "node:tls";
import type { Logger } from "../logger.js";

export interface TlsPair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface LoadedCertificate extends TlsPair {
  /** The leaf certificate's notAfter. */
  readonly notAfter: Date;
  /** SHA-256 of the leaf certificate (DER), hex: public, for the log. */
  readonly fingerprint: string;
  /** The key file's permission bits, as read. */
  readonly keyMode: number;
  /** The files' version (stampsOf) looked at before they were read. */
  readonly stamp: string;
}

/**
 * A certificate and key that cannot be served: the message names the variable, the file and the
 * problem (never the key).
 */
export class CertificateError extends Error {}

/** A certificate whose notBefore is at most this far ahead of the clock is taken (clock skew). */
export const notBeforeSkewMs = 5 * 60_000;

/**
 * A certificate refused because it is valid only from `notBefore`: a renewal refused so is tried
 * again once that time (less the skew) has come, the files unchanged.
 */
export class NotYetValidError extends CertificateError {
  constructor(
    message: string,
    readonly notBefore: Date,
  ) {
    super(message);
  }
}

const certVariable = "TESSERA_TLS_CERT_FILE";
const keyVariable = "TESSERA_TLS_KEY_FILE";

/** The EC curves served (their OpenSSL names): P-256, P-384 and P-521, as TLS 1.3 signs with. */
const servedCurves = new Set(["prime256v1", "secp384r1", "secp521r1"]);

/**
 * What makes a certificate's key too weak to serve, or undefined ("RSA key has 1024 bits; ...").
 * OpenSSL's default security level (1, as Node builds it) takes RSA keys of 1024 bits, some 80
 * bits of strength: 112 bits or more are asked here, as NIST SP 800-57 does past 2013, and the
 * CA/Browser Forum of every publicly trusted certificate: RSA (and RSA-PSS) of 2048 bits or more,
 * EC on P-256, P-384 or P-521 (the curves TLS 1.3 signs with), Ed25519 or Ed448. Other kinds (DSA,
 * other curves) are refused: no client of this service's protocols needs them. Every certificate
 * served is held to it, the chain's as the leaf's: a client refuses a chain with one weak link.
 */
function keyProblem(key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === "rsa" || type === "rsa-pss") {
    const bits = details.modulusLength ?? 0;
    return bits >= 2048 ? undefined : `${type.toUpperCase()} key has ${bits} bits; at least 2048 are needed`;
  }
  if (type === "ec") {
    const curve = details.namedCurve ?? "unnamed";
    return servedCurves.has(curve) ? undefined : `EC key is on curve ${curve}; P-256, P-384 or P-521 is needed`;
  }
  if (type === "ed25519" || type === "ed448") return undefined;
  return `key is of type ${type ?? "unknown"}; RSA (2048 bits or more), EC (P-256, P-384 or P-521), Ed25519 or Ed448 is needed`;
}

/**
 * Signature algorithms (their OIDs) whose digest clients no longer accept in a certificate:
 * MD2, MD4, MD5 and SHA-1 (CA/Browser Forum, and browsers, OpenSSL 3 and Go refuse them).
 */
const weakSignatures = new Map([
  ["1.2.840.113549.1.1.2", ["MD2", "md2WithRSAEncryption"]],
  ["1.2.840.113549.1.1.3", ["MD4", "md4WithRSAEncryption"]],
  ["1.2.840.113549.1.1.4", ["MD5", "md5WithRSAEncryption"]],
  ["1.2.840.113549.1.1.5", ["SHA-1", "sha1WithRSAEncryption"]],
  ["1.3.14.3.2.29", ["SHA-1", "sha1WithRSASignature"]],
  ["1.2.840.10045.4.1", ["SHA-1", "ecdsa-with-SHA1"]],
  ["1.2.840.10040.4.3", ["SHA-1", "dsa-with-sha1"]],
]);
const rsassaPss = "1.2.840.113549.1.1.10";
/** The digests of RSASSA-PSS parameters (RFC 4055) refused as above; SHA-1 is their default. */
const weakPssDigests = new Map([
  ["1.3.14.3.2.26", "SHA-1"],
  ["1.2.840.113549.2.5", "MD5"],
]);

/** One DER element at `at` of `der`: its tag, where its contents start and where it ends. */
function derElement(der: Buffer, at: number, end = der.length): { tag: number; start: number; end: number } {
  if (at + 2 > end) throw new Error("truncated DER");
  let length = der[at + 1]!;
  let start = at + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4 || start + bytes > end) throw new Error("unsupported DER length");
    length = der.readUIntBE(start, bytes);
    start += bytes;
  }
  if (start + length > end) throw new Error("truncated DER");
  return { tag: der[at]!, start, end: start + length };
}

/** An OBJECT IDENTIFIER's contents, dotted ("1.2.840.113549.1.1.5"). */
function oidText(bytes: Buffer): string {
  const arcs: number[] = [];
  let arc = 0;
  for (const byte of bytes) {
    arc = arc * 128 + (byte & 0x7f);
    if (byte & 0x80) continue;
    if (arcs.length === 0) arcs.push(arc < 80 ? Math.floor(arc / 40) : 2, arc < 80 ? arc % 40 : arc - 80);
    else arcs.push(arc);
    arc = 0;
  }
  return arcs.join(".");
}

/**
 * The digest a certificate (DER, as X509Certificate parsed it) is signed with when clients refuse
 * it ("SHA-1", and the algorithm's name), or undefined. Node 20's X509Certificate does not tell
 * the signature algorithm: it is read from the DER, Certificate ::= SEQUENCE { tbsCertificate,
 * signatureAlgorithm AlgorithmIdentifier ::= SEQUENCE { OID, parameters }, signature } (RFC 5280
 * 4.1), and for RSASSA-PSS its parameters' hashAlgorithm ([0], SHA-1 when absent; RFC 4055 3.1).
 */
export function weakSignature(der: Buffer): { digest: string; algorithm: string } | undefined {
  const certificate = derElement(der, 0);
  const tbs = derElement(der, certificate.start, certificate.end);
  const algorithm = derElement(der, tbs.end, certificate.end);
  const oid = derElement(der, algorithm.start, algorithm.end);
  if (oid.tag !== 0x06) throw new Error("no signature algorithm");
  const name = oidText(der.subarray(oid.start, oid.end));
  const weak = weakSignatures.get(name);
  if (weak) return { digest: weak[0]!, algorithm: weak[1]! };
  if (name !== rsassaPss) return undefined;
  // RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] AlgorithmIdentifier DEFAULT sha1, ... }
  let digest = "1.3.14.3.2.26";
  if (oid.end < algorithm.end) {
    const params = derElement(der, oid.end, algorithm.end);
    const first = params.start < params.end ? derElement(der, params.start, params.end) : undefined;
    if (params.tag === 0x30 && first?.tag === 0xa0) {
      const hash = derElement(der, first.start, first.end);
      const hashOid = derElement(der, hash.start, hash.end);
      digest = oidText(der.subarray(hashOid.start, hashOid.end));
    }
  }
  const pss = weakPssDigests.get(digest);
  return pss === undefined ? undefined : { digest: pss, algorithm: `RSASSA-PSS with ${pss}` };
}

/**
 * A certificate's subject on one line ("O=Example, CN=example.com"), to name it in a message, or
 * "no subject" for one named by its subjectAltName alone (RFC 5280 4.1.2.6; Node's subject is
 * then undefined).
 */
function subjectOf(c: X509Certificate): string {
  return c.subject ? c.subject.split("\n").join(", ") : "no subject";
}

/**
 * The certificates of a PEM file, in order (the leaf first, then its chain), under every label
 * OpenSSL reads a certificate from: CERTIFICATE, the older X509 CERTIFICATE (served as a leaf or
 * in the chain), and TRUSTED CERTIFICATE (served as the leaf, skipped in the chain, held to the
 * rules all the same). Missing one would check the wrong certificate as the leaf's chain.
 */
const pemCertificate = /-----BEGIN (X509 |TRUSTED )?CERTIFICATE-----[^-]*-----END \1CERTIFICATE-----/g;

/**
 * What makes the chain served with the leaf unfit, or undefined: every certificate after the leaf
 * is held to keyProblem as the leaf is, and every one but a self-signed root (whose own signature
 * no client checks: it is trusted as it is) must be signed with neither SHA-1 nor MD5 (nor MD2,
 * MD4), the leaf too. Names the certificate by its place in the file and its subject.
 */
function chainProblem(leaf: X509Certificate, pem: string): string | undefined {
  const blocks = pem.match(pemCertificate) ?? [];
  for (let i = 0; i < Math.max(blocks.length, 1); i++) {
    let c = leaf;
    if (i > 0) {
      try {
        c = new X509Certificate(blocks[i]!);
      } catch {
        return `certificate ${i + 1} in the file is not a PEM certificate`;
      }
    }
    const which = i === 0 ? `the certificate (${subjectOf(c)})` : `certificate ${i + 1} in the file (${subjectOf(c)})`;
    // A key OpenSSL parses the certificate around but cannot make (an algorithm it does not know)
    // threw OpenSSL's "decode error", which named no variable (the leaf's was found not to be its key's).
    let publicKey: KeyObject;
    try {
      publicKey = c.publicKey;
    } catch {
      return `${which}: its public key cannot be read`;
    }
    const weak = i === 0 ? undefined : keyProblem(publicKey);
    if (weak !== undefined) return `${which}: its ${weak}`;
    const selfSigned = c.checkIssued(c) && c.verify(publicKey);
    let signature: ReturnType<typeof weakSignature>;
    try {
      signature = selfSigned ? undefined : weakSignature(c.raw);
    } catch {
      return `${which}: its signature algorithm cannot be read`;
    }
    if (signature !== undefined) {
      return `${which} is signed with ${signature.digest} (${signature.algorithm}), which clients refuse; it must be issued again, signed with SHA-256 or stronger`;
    }
  }
  return undefined;
}

/** Larger than any PEM certificate chain or key: a path given by mistake (a disk image, a log). */
const pemMaxBytes = 1024 * 1024;

/**
 * Why `file` is no PEM file to read, or undefined: a FIFO would block the event loop until
 * written to, a device (/dev/zero) or a huge file be read whole. Throws statSync's error for a
 * file that cannot be looked at. The configuration's check (at start) and every read (a reload
 * too) ask it.
 */
export function pemFileProblem(file: string): string | undefined {
  const stat = statSync(file);
  if (!stat.isFile()) return "not a regular file";
  if (stat.size > pemMaxBytes) return "larger than 1 MiB, which no PEM certificate or key is";
  return undefined;
}

/**
 * Reads and checks the pair. `now` given: a certificate expired, or valid only from more than
 * notBeforeSkewMs later, is refused (at start, and a renewal must not replace a valid certificate
 * with one clients refuse).
 */
export function loadCertificate(certFile: string, keyFile: string, now?: Date): LoadedCertificate {
  const stamp = stampsOf(certFile, keyFile);
  const read = (file: string, variable: string) => {
    try {
      const problem = pemFileProblem(file);
      if (problem !== undefined) throw new CertificateError(`${variable} (${file}): ${problem}`);
      return readFileSync(file);
    } catch (e) {
      if (e instanceof CertificateError) throw e;
      throw new CertificateError(`${variable} (${file}): ${(e as NodeJS.ErrnoException).code ?? "unreadable"}`);
    }
  };
  const cert = read(certFile, certVariable);
  const key = read(keyFile, keyVariable);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch {
    throw new CertificateError(`${certVariable} (${certFile}): not a PEM certificate`);
  }
  // The key on its own first, so that the message says what is wrong with it. OpenSSL's reasons
  // never quote the key; none of them is passed on here all the same.
  if (/^-----BEGIN ENCRYPTED PRIVATE KEY-----|^Proc-Type: *4, *ENCRYPTED/m.test(key.toString("latin1"))) {
    throw new CertificateError(`${keyVariable} (${keyFile}): the private key is encrypted; give it unencrypted (openssl pkey -in <encrypted> -out <key>), readable by Tessera's user alone`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new CertificateError(`${keyVariable} (${keyFile}): not a PEM private key`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new CertificateError(`${keyVariable} (${keyFile}): not the private key of the first certificate in ${certVariable} (${certFile})`);
  }
  const weak = keyProblem(leaf.publicKey);
  if (weak !== undefined) throw new CertificateError(`${certVariable} (${certFile}): the certificate's ${weak}`);
  const chain = chainProblem(leaf, cert.toString("latin1"));
  if (chain !== undefined) throw new CertificateError(`${certVariable} (${certFile}): ${chain}`);
  try {
    tls.createSecureContext({ cert, key });
  } catch (e) {
    // OpenSSL's reason (e.g. "ee key too small"); it never quotes the key.
    const reason = (e as Error).message.replace(/^error:[0-9A-F]+:/i, "");
    throw new CertificateError(`${keyVariable} (${keyFile}) and ${certVariable} (${certFile}) cannot be served: ${reason}`);
  }
  const notAfter = new Date(leaf.validTo);
  if (now && notAfter.getTime() <= now.getTime()) {
    throw new CertificateError(`${certVariable} (${certFile}): expired at ${notAfter.toISOString()}`);
  }
  const notBefore = new Date(leaf.validFrom);
  if (now && notBefore.getTime() > now.getTime() + notBeforeSkewMs) {
    throw new NotYetValidError(`${certVariable} (${certFile}): not valid before ${notBefore.toISOString()}`, notBefore);
  }
  let keyMode = 0;
  try {
    keyMode = statSync(keyFile).mode & 0o777;
  } catch {
    // read a moment ago: gone since (a renewal under way); its next version is looked at then
  }
  return { cert, key, notAfter, fingerprint: createHash("sha256").update(leaf.raw).digest("hex"), keyMode, stamp };
}

/**
 * A private key file other users may read is served all the same (a container's mounted
 * secret often is, 0644 by default), but warned about at start and at each reload that serves it.
 * A group that may read it (0640, as Debian's ssl-cert group) is not warned about.
 */
export function warnIfKeyExposed(logger: Logger, keyFile: string, loaded: LoadedCertificate): void {
  if ((loaded.keyMode & 0o004) === 0) return;
  logger.warn("TLS key file is readable by other users", { file: keyFile, mode: `0${loaded.keyMode.toString(8)}`, fix: "chmod o-r" });
}

/** What identifies a file's version here: a rewrite or a rename onto it changes one of these. */
function stampOf(file: string): string {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return "missing";
  }
}

/** The pair's version: a renewal of either file changes it. */
function stampsOf(certFile: string, keyFile: string): string {
  return `${stampOf(certFile)}|${stampOf(keyFile)}`;
}

export interface CertificateReloader {
  /** The certificate served now. */
  readonly current: LoadedCertificate;
  /** Reads the files again and serves them if they check out; false when they did not. */
  reload(why: "signal" | "changed"): boolean;
  stop(): void;
}

export interface WatchOptions {
  /** How often the files are looked at (0: never; reload() alone reads them). */
  intervalMs: number;
  /** The clock a renewal's validity is checked against. */
  now?: () => Date;
  /** Told of each reload refused (for the metrics). */
  onRefused?: () => void;
}

/**
 * Serves `first` through `apply`, then a renewed pair whenever the files change (checked every
 * `intervalMs`, 0: never) or reload() is called.
 */
export function watchCertificate(
  certFile: string,
  keyFile: string,
  first: LoadedCertificate,
  apply: (pair: TlsPair) => void,
  logger: Logger,
  { intervalMs, now = () => new Date(), onRefused }: WatchOptions,
): CertificateReloader {
  const stamps = () => stampsOf(certFile, keyFile);
  let current = first;
  // The files' version last tried: a pair that failed is tried again only once they change again
  // (a renewal written one file at a time checks out once both are written), or, refused as not
  // yet valid, once it is (a renewal issued by a CA whose clock is ahead of this one's would
  // otherwise wait for the next renewal, while the served certificate expires).
  // From the version `first` was read from: files renewed since (while the start that read them
  // went on, a SIGHUP then finding no running service to reload) are read again below.
  let tried = first.stamp;
  let retryAt: number | undefined;
  const reload = (why: "signal" | "changed") => {
    tried = stamps();
    retryAt = undefined;
    let next: LoadedCertificate;
    try {
      next = loadCertificate(certFile, keyFile, now());
      apply(next);
    } catch (e) {
      // A pair loadCertificate refuses is the operator's to fix (warn); anything else, in reading
      // the files or in serving the pair, is unforeseen (error). Either way the pair served
      // until now stays: a reload runs on a timer or a signal, and a throw there would end the
      // process. Neither message quotes the key (OpenSSL's never does).
      const expected = e instanceof CertificateError;
      if (e instanceof NotYetValidError) retryAt = e.notBefore.getTime() - notBeforeSkewMs;
      const error = e instanceof Error ? e.message : String(e);
      logger[expected ? "warn" : "error"]("TLS certificate not reloaded", { why, error, fingerprint: current.fingerprint, notAfter: current.notAfter.toISOString() });
      onRefused?.();
      return false;
    }
    current = next;
    warnIfKeyExposed(logger, keyFile, next);
    logger.info("TLS certificate reloaded", { why, fingerprint: next.fingerprint, notAfter: next.notAfter.toISOString() });
    return true;
  };
  const due = () => stamps() !== tried || (retryAt !== undefined && now().getTime() >= retryAt);
  const timer = intervalMs > 0 ? setInterval(() => due() && reload("changed"), intervalMs) : undefined;
  timer?.unref();
  // Once, as soon as the caller has finished setting up (its onRefused counts), whatever intervalMs.
  const started = setImmediate(() => due() && reload("changed"));
  return {
    get current() {
      return current;
    },
    reload,
    stop: () => {
      clearInterval(timer);
      clearImmediate(started);
    },
  };
}
