// Random secrets, their stored form, and constant-time comparison. Every token Tessera hands
// out is random; the store keeps only SHA-256(secret), so a leaked database holds no usable
// credential, and lookups by hash need no secret comparison at all.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";

/** `bytes` random bytes as base64url (32 bytes = 256 bits by default). */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

/** A random UUID v4. */
export function randomId(): string {
  return randomUUID();
}

/** The stored form of a secret: SHA-256, hex. */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** Constant-time equality of two strings of any length (compares their SHA-256 digests). */
export function secretEquals(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a, "utf8").digest();
  const hb = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(ha, hb);
}
