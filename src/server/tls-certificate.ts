// The TLS certificate and its key (TESSERA_TLS_CERT_FILE, TESSERA_TLS_KEY_FILE): read at start,
// and read again without a restart when the files change (looked at every
// TESSERA_TLS_RELOAD_SECONDS) or on SIGHUP. A renewed pair is checked before it is used: both
// files must parse, the key must be the certificate's, and the certificate must not have expired;
// otherwise the pair served until then stays, and the problem is logged (never the key). New
// handshakes get the new pair; connections already open keep theirs.
import { X509Certificate, createHash } from "node:crypto";
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
}

/** A certificate and key that cannot be served: the message names the file and the problem. */
export class CertificateError extends Error {}

/**
 * Reads and checks the pair. `now` given: an expired certificate is refused (a renewal must not
 * replace a valid certificate with an expired one).
 */
export function loadCertificate(certFile: string, keyFile: string, now?: Date): LoadedCertificate {
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new CertificateError(`${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? "unreadable"}`);
    }
  };
  const cert = read(certFile, "TLS certificate");
  const key = read(keyFile, "TLS key");
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch {
    throw new CertificateError(`TLS certificate ${certFile}: not a PEM certificate`);
  }
  try {
    tls.createSecureContext({ cert, key });
  } catch (e) {
    // OpenSSL's reason (e.g. "key values mismatch"); it never quotes the key.
    const reason = (e as Error).message.replace(/^error:[0-9A-F]+:/i, "");
    throw new CertificateError(`TLS key ${keyFile} does not fit the certificate ${certFile}: ${reason}`);
  }
  const notAfter = new Date(leaf.validTo);
  if (now && notAfter.getTime() <= now.getTime()) {
    throw new CertificateError(`TLS certificate ${certFile}: expired at ${notAfter.toISOString()}`);
  }
  return { cert, key, notAfter, fingerprint: createHash("sha256").update(leaf.raw).digest("hex") };
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
  // (a renewal written one file at a time checks out once both are written).
  let tried = stamps();
  const reload = (why: "signal" | "changed") => {
    tried = stamps();
    let next: LoadedCertificate;
    try {
      next = loadCertificate(certFile, keyFile, now());
    } catch (e) {
      if (!(e instanceof CertificateError)) throw e;
      logger.warn("TLS certificate not reloaded", { why, error: e.message, fingerprint: current.fingerprint, notAfter: current.notAfter.toISOString() });
      return false;
    }
    apply(next);
    current = next;
    logger.info("TLS certificate reloaded", { why, fingerprint: next.fingerprint, notAfter: next.notAfter.toISOString() });
    return true;
  };
  const timer = intervalMs > 0 ? setInterval(() => stamps() !== tried && reload("changed"), intervalMs) : undefined;
  timer?.unref();
  return {
    get current() {
      return current;
    },
    reload,
    stop: () => clearInterval(timer),
  };
}
