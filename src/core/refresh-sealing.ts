// The child pair a refresh answered, kept with the spent refresh token so that a retry of the
// same refresh (its answer was lost) gets the same pair. The store must never hold a usable
// token, so the pair is sealed with AES-256-GCM under a key derived (HKDF-SHA256) from the
// parent refresh token itself, which the store knows only as a SHA-256 hash, and from the jti
// of the access token the refresh was made with: only a caller presenting both again can open
// it. The parent's hash is the associated data, so a sealed pair cannot be moved to another
// token's record.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

const prefix = "child:v1:";

/** What a refresh answered. */
export interface ChildPair {
  accessToken: string;
  refreshToken: string;
  /** The jti of `accessToken`: the session's most recent one once the refresh completes. */
  jti: string;
}

function keyOf(parentRefreshToken: string, accessJti: string): Buffer {
  return Buffer.from(hkdfSync("sha256", parentRefreshToken, "tessera refresh child", `v1:${accessJti}`, 32));
}

export function sealChild(child: ChildPair, parentRefreshToken: string, parentHash: string, accessJti: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", keyOf(parentRefreshToken, accessJti), iv);
  cipher.setAAD(Buffer.from(parentHash, "utf8"));
  const body = Buffer.concat([cipher.update(JSON.stringify([child.accessToken, child.refreshToken, child.jti]), "utf8"), cipher.final()]);
  return prefix + Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url");
}

/** The sealed pair, or undefined when it does not open with this token and access jti. */
export function openChild(sealed: string, parentRefreshToken: string, parentHash: string, accessJti: string): ChildPair | undefined {
  if (!sealed.startsWith(prefix)) return undefined;
  const raw = Buffer.from(sealed.slice(prefix.length), "base64url");
  if (raw.length < 12 + 16) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", keyOf(parentRefreshToken, accessJti), raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(parentHash, "utf8"));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    const text = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString("utf8");
    const [accessToken, refreshToken, jti] = JSON.parse(text) as [string, string, string];
    return { accessToken, refreshToken, jti };
  } catch {
    return undefined;
  }
}
