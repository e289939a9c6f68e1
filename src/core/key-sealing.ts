// Private signing keys at rest. With TESSERA_KEY_ENCRYPTION_KEY set, a private JWK is stored
// sealed with AES-256-GCM under a key derived from that secret (HKDF-SHA256), bound to the
// signing key's kid as associated data, so a sealed key cannot be swapped onto another record.
// Without it, keys are stored as plain JWK JSON (the database is then as sensitive as the keys).
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

const prefix = "sealed:v1:";

export class KeySealer {
  private readonly key: Buffer | undefined;

  /** `secret` undefined: keys are stored in the clear. */
  constructor(secret: string | undefined) {
    this.key = secret === undefined ? undefined : Buffer.from(hkdfSync("sha256", secret, "tessera", "signing-key-sealing-v1", 32));
  }

  get sealing(): boolean {
    return this.key !== undefined;
  }

  /** The stored form of a private JWK (JSON text). */
  seal(privateJwkJson: string, kid: string): string {
    if (!this.key) return privateJwkJson;
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(Buffer.from(kid, "utf8"));
    const body = Buffer.concat([cipher.update(privateJwkJson, "utf8"), cipher.final()]);
    return prefix + Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url");
  }

  /** The private JWK JSON from its stored form; throws a message naming the problem, never the key. */
  open(stored: string, kid: string): string {
    if (!stored.startsWith(prefix)) return stored;
    if (!this.key) throw new Error(`signing key ${kid} is sealed: set TESSERA_KEY_ENCRYPTION_KEY to the secret it was sealed with`);
    const raw = Buffer.from(stored.slice(prefix.length), "base64url");
    if (raw.length < 12 + 16 + 1) throw new Error(`signing key ${kid}: sealed form is truncated`);
    const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(kid, "utf8"));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    try {
      return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString("utf8");
    } catch {
      throw new Error(`signing key ${kid} cannot be unsealed: TESSERA_KEY_ENCRYPTION_KEY is not the secret it was sealed with`);
    }
  }
}
