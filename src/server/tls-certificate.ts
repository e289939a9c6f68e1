// The TLS certificate and its key (TESSERA_TLS_CERT_FILE, TESSERA_TLS_KEY_FILE): read at start,
// and read again without a restart when the files change (looked at every
// TESSERA_TLS_RELOAD_SECONDS) or on SIGHUP. A renewed pair is checked before it is used: both
// files must parse, the key must be the certificate's and strong enough (keyProblem), and the
// certificate must be valid now (not expired, not valid only from later: notBeforeSkewMs);
// otherwise the pair served until then stays, and the problem is logged (never the key). New
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
 * What makes the certificate's key too weak to serve, or undefined. OpenSSL's default security
 * level (1, as Node builds it) takes RSA keys of 1024 bits, some 80 bits of strength: 112 bits or
 * more are asked here, as NIST SP 800-57 does past 2013, and the CA/Browser Forum of every
 * publicly trusted certificate: RSA (and RSA-PSS) of 2048 bits or more, EC on P-256, P-384 or
 * P-521 (the curves TLS 1.3 signs with), Ed25519 or Ed448. Other kinds (DSA, other curves) are
 * refused: no client of this service's protocols needs them.
 */
function keyProblem(key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === "rsa" || type === "rsa-pss") {
    const bits = details.modulusLength ?? 0;
    return bits >= 2048 ? undefined : `the certificate's ${type.toUpperCase()} key has ${bits} bits; at least 2048 are needed`;
  }
  if (type === "ec") {
    const curve = details.namedCurve ?? "unnamed";
    return servedCurves.has(curve) ? undefined : `the certificate's EC key is on curve ${curve}; P-256, P-384 or P-521 is needed`;
  }
  if (type === "ed25519" || type === "ed448") return undefined;
  return `the certificate's key is of type ${type ?? "unknown"}; RSA (2048 bits or more), EC (P-256, P-384 or P-521), Ed25519 or Ed448 is needed`;
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
  if (weak !== undefined) throw new CertificateError(`${certVariable} (${certFile}): ${weak}`);
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
  return { cert, key, notAfter, fingerprint: createHash("sha256").update(leaf.raw).digest("hex"), keyMode };
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

export interface CertificateReloader {
  /** The certificate served now. */
  readonly current: LoadedCertificate;
  /** Reads the files again and serves them if they check out; false when they did not. */
  reload(why: "signal" | "changed"): boolean;
  stop(): void;
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
  intervalMs: number,
  now: () => Date = () => new Date(),
): CertificateReloader {
  const stamps = () => `${stampOf(certFile)}|${stampOf(keyFile)}`;
  let current = first;
  // The files' version last tried: a pair that failed is tried again only once they change again
  // (a renewal written one file at a time checks out once both are written), or, refused as not
  // yet valid, once it is (a renewal issued by a CA whose clock is ahead of this one's would
  // otherwise wait for the next renewal, while the served certificate expires).
  let tried = stamps();
  let retryAt: number | undefined;
  const reload = (why: "signal" | "changed") => {
    tried = stamps();
    retryAt = undefined;
    let next: LoadedCertificate;
    try {
      next = loadCertificate(certFile, keyFile, now());
    } catch (e) {
      if (!(e instanceof CertificateError)) throw e;
      if (e instanceof NotYetValidError) retryAt = e.notBefore.getTime() - notBeforeSkewMs;
      logger.warn("TLS certificate not reloaded", { why, error: e.message, fingerprint: current.fingerprint, notAfter: current.notAfter.toISOString() });
      return false;
    }
    apply(next);
    current = next;
    warnIfKeyExposed(logger, keyFile, next);
    logger.info("TLS certificate reloaded", { why, fingerprint: next.fingerprint, notAfter: next.notAfter.toISOString() });
    return true;
  };
  const due = () => stamps() !== tried || (retryAt !== undefined && now().getTime() >= retryAt);
  const timer = intervalMs > 0 ? setInterval(() => due() && reload("changed"), intervalMs) : undefined;
  timer?.unref();
  return {
    get current() {
      return current;
    },
    reload,
    stop: () => clearInterval(timer),
  };
}
