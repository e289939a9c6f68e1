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

/**
 * A test of whether text holds one of the known secrets anywhere in it (`rt:<token>`,
 * `<token>_1`): each place in the text a secret fits is compared with it character by character,
 * every character of every place, with no early end on a difference, so that how long the test
 * takes tells nothing of a secret but its length. (A digest of each place, as secretMatcher
 * compares, would cost a SHA-256 a place.) Time: the text's length times the secrets' lengths;
 * for short text only (a request id is at most 128 characters).
 */
export function secretWithin(known: readonly string[]): (text: string) => boolean {
  // As UTF-16 code units in typed arrays: charCodeAt in the inner loop took five times as long.
  const units = (text: string) => {
    const codes = new Uint16Array(text.length);
    for (let i = 0; i < text.length; i++) codes[i] = text.charCodeAt(i);
    return codes;
  };
  const secrets = [...new Set(known)].filter((secret) => secret !== "").map(units);
  return (text) => {
    const t = units(text);
    let found = 0;
    for (const secret of secrets) {
      const n = secret.length;
      for (let at = 0; at + n <= t.length; at++) {
        let difference = 0;
        for (let i = 0; i < n; i++) difference |= t[at + i]! ^ secret[i]!;
        found |= difference === 0 ? 1 : 0;
      }
    }
    return found !== 0;
  };
}
