// Crafted JWTs for the attack cases: a changed payload under the same signature, alg none.
import { decodeJwt, decodeProtectedHeader } from "jose";

export function b64url(value: unknown): string {
  return Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
}

/** Re-encodes a token with a changed payload, keeping header and signature (tampering). */
export function withPayload(token: string, change: (p: Record<string, unknown>) => Record<string, unknown>): string {
  const [h, , s] = token.split(".");
  return `${h}.${b64url(change(decodeJwt(token) as Record<string, unknown>))}.${s}`;
}

/** The same claims with `alg: none` and no signature. */
export function algNone(token: string): string {
  const header = { ...decodeProtectedHeader(token), alg: "none" };
  return `${b64url(header)}.${token.split(".")[1]}.`;
}
