// Private signing keys at rest. With TESSERA_KEY_ENCRYPTION_KEY set, a private JWK is stored
// sealed with AES-256-GCM under a key derived from that secret (HKDF-SHA256), bound to the
// signing key's kid as associated data, so a sealed key cannot be swapped onto another record.
// Without it, keys are stored as plain JWK JSON (the database is then as sensitive as the keys).
// TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS, the secret before a change, opens keys too: GCM's tag
// tells which secret a key was sealed with (the current one is tried first), and the key ring
// seals those again under the current one (README "Upgrades").
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

const prefix = "sealed:v1:";

const derived = (secret: string) => Buffer.from(hkdfSync("sha256", secret, "tessera", "signing-key-sealing-v1", 32));

/** The private JWK JSON in `body` (IV, ciphertext, tag) sealed under `key` for `kid`; undefined when the tag says another key. */
function openWith(key: Buffer, body: Buffer, kid: string): string | undefined {
  const decipher = createDecipheriv("aes-256-gcm", key, body.subarray(0, 12));
  decipher.setAAD(Buffer.from(kid, "utf8"));
  decipher.setAuthTag(body.subarray(body.length - 16));
  try {
    return Buffer.concat([decipher.update(body.subarray(12, body.length - 16)), decipher.final()]).toString("utf8");
  } catch {
    return undefined;
  }
}

export class KeySealer {
  private readonly key: Buffer | undefined;
  private readonly previous: Buffer | undefined;

  /** `secret` undefined: keys are stored in the clear. `previous`: the secret before it, which opens keys too. */
  constructor(secret: string | undefined, previous?: string) {
    this.key = secret === undefined ? undefined : derived(secret);
    this.previous = previous === undefined ? undefined : derived(previous);
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
    return this.unseal(stored, kid).privateJwk;
  }

  /** Whether a previous secret (TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS) opens keys too. */
  get hasPrevious(): boolean {
    return this.previous !== undefined;
  }

  /**
   * The private JWK JSON from its stored form, and whether that form is to be sealed again under
   * the current secret: it opened with the previous one only (`previous`), or it is in the clear
   * while sealing is on. Throws a message naming the problem, never the key.
   */
  unseal(stored: string, kid: string): { privateJwk: string; reseal: boolean; previous: boolean } {
    if (!stored.startsWith(prefix)) return { privateJwk: stored, reseal: this.sealing, previous: false };
    if (!this.key) throw new Error(`signing key ${kid} is sealed: set TESSERA_KEY_ENCRYPTION_KEY to the secret it was sealed with`);
    const raw = Buffer.from(stored.slice(prefix.length), "base64url");
    if (raw.length < 12 + 16 + 1) throw new Error(`signing key ${kid}: sealed form is truncated`);
    const current = openWith(this.key, raw, kid);
    if (current !== undefined) return { privateJwk: current, reseal: false, previous: false };
    const previous = this.previous && openWith(this.previous, raw, kid);
    if (previous !== undefined) return { privateJwk: previous, reseal: true, previous: true };
    throw new Error(
      this.previous
        ? `signing key ${kid} cannot be unsealed: neither TESSERA_KEY_ENCRYPTION_KEY nor TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS is the secret it was sealed with`
        : `signing key ${kid} cannot be unsealed: TESSERA_KEY_ENCRYPTION_KEY is not the secret it was sealed with`,
    );
  }
}
