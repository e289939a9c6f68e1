// Random secrets, their stored form, and constant-time comparison. Every token Tessera hands
// out is random; the store keeps only SHA-256(secret), so a leaked database holds no usable
// credential, and lookups by hash need no secret comparison at all.
// A namespace import: crypto.hash is missing before Node 20.12, and a named import of it would
// fail to link there.
import * as crypto from "node:crypto";

/** `bytes` random bytes as base64url (32 bytes = 256 bits by default). */
export function randomToken(bytes = 32): string {
  return crypto.randomBytes(bytes).toString("base64url");
}

/** A random UUID v4. */
export function randomId(): string {
  return crypto.randomUUID();
}

// SHA-256 of a string (UTF-8), in one call: crypto.hash (Node 20.12 and later) makes no Hash
// object, which was about 2 % of a token check (two digests for its client id); createHash where
// it is missing.
const oneShot = typeof crypto.hash === "function";

function sha256Hex(data: string): string {
  return oneShot ? crypto.hash("sha256", data, "hex") : crypto.createHash("sha256").update(data, "utf8").digest("hex");
}

function sha256Bytes(data: string): Buffer {
  return oneShot ? crypto.hash("sha256", data, "buffer") : crypto.createHash("sha256").update(data, "utf8").digest();
}

/** The stored form of a secret: SHA-256, hex. */
export function hashSecret(secret: string): string {
  return sha256Hex(secret);
}

/** Constant-time equality of two strings of any length (compares their SHA-256 digests). */
export function secretEquals(a: string, b: string): boolean {
  return crypto.timingSafeEqual(sha256Bytes(a), sha256Bytes(b));
}

/**
 * A constant-time test of a candidate against known secrets: each known secret's digest is made
 * once, the candidate's once per test (secretEquals would digest both sides every time).
 */
export function secretMatcher(known: readonly string[]): (candidate: string) => boolean {
  const digests = known.map(sha256Bytes);
  return (candidate) => {
    const digest = sha256Bytes(candidate);
    return digests.some((d) => crypto.timingSafeEqual(d, digest));
  };
}
