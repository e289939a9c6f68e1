// The signing keys of every JWT Tessera issues: storage, generation, rotation, JWKS and PEM.
// Asymmetric keys (EdDSA by default, or ES256) are made with jose and persisted in the signing
// key store, so a restart and every other instance use the same ones: the unique generation
// number decides which instance's key wins at start-up and at rotation. A rotated key keeps
// verifying, and stays in the JWKS, until the longest-lived token it may have signed has
// expired. HS256 uses TESSERA_JWT_SECRET and stores nothing.
//
// Instances learn about a rotation by re-reading the key list: at most every `reloadIntervalMs`
// before signing, and at once (rate-limited) when a token names an unknown kid. Every time read
// here is the injected clock's.
import {
  calculateJwkThumbprint,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  importJWK,
  SignJWT,
  type CryptoKey,
  type JWK,
} from "jose";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { NewSigningKey, SigningKeyRecord, SigningKeyStore } from "../store/ports/signing-keys.js";
import type { Clock } from "./clock.js";
import { failedPrecondition, notFound } from "./errors.js";
import { KeySealer } from "./key-sealing.js";

export type SigningAlg = "EdDSA" | "ES256" | "HS256";

export type KeysConfig = Pick<Config, "jwtAlg" | "jwtSecret" | "accessTokenTtlSeconds" | "refreshTokenTtlSeconds"> &
  Partial<Pick<Config, "keyEncryptionKey">>;

/** What a verifier needs of one key. */
export interface VerificationKey {
  readonly kid: string;
  readonly alg: SigningAlg;
  readonly publicKey: CryptoKey | Uint8Array;
}

interface LoadedKey extends VerificationKey {
  generation: number;
  privateKey: CryptoKey | Uint8Array;
  publicJwk?: JWK;
  notAfter?: Date;
}

const hs256Kid = "hs256";
/** A key that is current when another instance rotates may sign for up to this long. */
const reloadIntervalMs = 30_000;
const unknownKidReloadMs = 2_000;

/** True when `interval` has passed since `since` — or the clock went back past it. */
const due = (now: number, since: number, interval: number) => now - since >= interval || now < since;

export interface KeyRingDeps {
  keys: SigningKeyStore;
  config: KeysConfig;
  clock: Clock;
  logger: Logger;
}

export class KeyRing {
  readonly alg: SigningAlg;
  /** The algorithms a token may name: any the ring holds keys of (a previous alg's keys verify until they retire). */
  readonly algorithms: readonly SigningAlg[];
  private readonly store: SigningKeyStore;
  private readonly config: KeysConfig;
  private readonly sealer: KeySealer;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private keys = new Map<string, LoadedKey>();
  private current: LoadedKey | undefined;
  private loadedAt = -Infinity;
  private lastUnknownKidReload = -Infinity;
  private reloading: Promise<void> | undefined;

  private constructor(deps: KeyRingDeps) {
    this.store = deps.keys;
    this.config = deps.config;
    this.clock = deps.clock;
    this.logger = deps.logger;
    this.alg = deps.config.jwtAlg;
    this.algorithms = this.alg === "HS256" ? ["HS256"] : ["EdDSA", "ES256"];
    this.sealer = new KeySealer(deps.config.keyEncryptionKey);
  }

  static async open(deps: KeyRingDeps): Promise<KeyRing> {
    const ring = new KeyRing(deps);
    if (ring.alg === "HS256") {
      const secret = deps.config.jwtSecret;
      if (!secret) throw new Error("TESSERA_JWT_SECRET is required for HS256");
      const key = new TextEncoder().encode(secret);
      ring.current = { kid: hs256Kid, alg: "HS256", generation: 0, publicKey: key, privateKey: key };
      ring.keys.set(hs256Kid, ring.current);
      return ring;
    }
    await ring.ensureCurrent();
    return ring;
  }

  /** Signs with the current key. `iat` defaults to now; `exp` is iat + expiresInSeconds. */
  async sign(payload: Record<string, unknown>, expiresInSeconds: number): Promise<string> {
    const key = await this.signingKey();
    const iat = typeof payload.iat === "number" ? payload.iat : Math.floor(this.clock.now().getTime() / 1000);
    return new SignJWT({ ...payload, iat, exp: iat + expiresInSeconds })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
      .sign(key.privateKey);
  }

  /**
   * The key `kid` names while it may still verify (not past its notAfter); undefined otherwise.
   * An unknown kid re-reads the key list first (at most every 2 s): another instance may have
   * rotated.
   */
  async keyFor(kid: string): Promise<VerificationKey | undefined> {
    let key = this.keys.get(kid);
    if (!key && this.alg !== "HS256") {
      const now = this.clock.now().getTime();
      if (due(now, this.lastUnknownKidReload, unknownKidReloadMs)) {
        this.lastUnknownKidReload = now;
        await this.reload();
        key = this.keys.get(kid);
      }
    }
    if (key?.notAfter && key.notAfter.getTime() <= this.clock.now().getTime()) return undefined;
    return key;
  }

  /** Public keys that may still verify a valid token, as JWKs with kid, alg and use. */
  async jwks(): Promise<Array<Record<string, unknown>>> {
    if (this.alg === "HS256") return [];
    await this.reloadIfStale();
    const now = this.clock.now().getTime();
    return [...this.keys.values()]
      .filter((k) => k.publicJwk && (k.notAfter === undefined || k.notAfter.getTime() > now))
      .sort((a, b) => b.generation - a.generation)
      .map((k) => ({ ...k.publicJwk, kid: k.kid, alg: k.alg, use: "sig" }));
  }

  /** The current public key as SPKI PEM; NOT_FOUND under HS256, which has none. */
  async publicKeyPem(): Promise<string> {
    if (this.alg === "HS256") throw notFound("NO_PUBLIC_KEY", "a symmetric algorithm (HS256) is in use: there is no public key");
    const key = await this.signingKey();
    return exportSPKI(key.publicKey as CryptoKey);
  }

  /** Makes a new key current; returns its kid. A concurrent rotation elsewhere wins: its kid is returned. */
  async rotate(): Promise<string> {
    if (this.alg === "HS256") {
      throw failedPrecondition("UNSUPPORTED_OPERATION", "HS256 keys are rotated by changing TESSERA_JWT_SECRET");
    }
    const previous = await this.store.current();
    const next = await this.newKey((previous?.generation ?? 0) + 1);
    const won = previous ? await this.store.rotate(next, this.retiredNotAfter()) : await this.store.insertGeneration(next);
    if (won) this.logger.info("signing key rotated", { kid: next.kid, generation: next.generation });
    await this.reload();
    return this.current!.kid;
  }

  private retiredNotAfter(): Date {
    // Every token the retired key signed expires within the longest token lifetime; add the
    // window in which other instances may still sign with it before they reload.
    const longest = Math.max(this.config.accessTokenTtlSeconds, this.config.refreshTokenTtlSeconds);
    return new Date(this.clock.now().getTime() + longest * 1000 + reloadIntervalMs);
  }

  /** At start-up: use the stored current key, or store a first one (or a new one after an alg change). */
  private async ensureCurrent(): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const stored = await this.store.current();
      if (stored && stored.alg === this.alg) break;
      const next = await this.newKey((stored?.generation ?? 0) + 1);
      const won = stored ? await this.store.rotate(next, this.retiredNotAfter()) : await this.store.insertGeneration(next);
      if (won) {
        this.logger.info("signing key created", { kid: next.kid, alg: next.alg, generation: next.generation });
        break;
      }
      // Another instance stored this generation first: read again and use theirs.
    }
    await this.reload();
    if (!this.current) throw new Error("no signing key could be stored");
  }

  private async newKey(generation: number): Promise<NewSigningKey> {
    const alg = this.alg as "EdDSA" | "ES256";
    const pair = alg === "EdDSA" ? await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true }) : await generateKeyPair("ES256", { extractable: true });
    const publicJwk = await exportJWK(pair.publicKey);
    const privateJwk = await exportJWK(pair.privateKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    const now = this.clock.now();
    return {
      kid,
      alg,
      privateJwk: this.sealer.seal(JSON.stringify(privateJwk), kid),
      publicJwk: JSON.stringify(publicJwk),
      generation,
      createdAt: now,
      activatedAt: now,
    };
  }

  private async signingKey(): Promise<LoadedKey> {
    if (this.alg !== "HS256") await this.reloadIfStale();
    return this.current!;
  }

  private async reloadIfStale(): Promise<void> {
    if (due(this.clock.now().getTime(), this.loadedAt, reloadIntervalMs)) await this.reload();
  }

  /** Re-reads the key list; concurrent callers share one read. */
  private reload(): Promise<void> {
    this.reloading ??= this.doReload().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async doReload(): Promise<void> {
    const records = await this.store.list();
    const next = new Map<string, LoadedKey>();
    for (const r of records) {
      const loaded = this.keys.get(r.kid);
      next.set(r.kid, loaded ? { ...loaded, ...(r.notAfter && { notAfter: r.notAfter }) } : await this.load(r));
    }
    this.keys = next;
    const top = records.at(-1);
    this.current = top ? next.get(top.kid) : undefined;
    this.loadedAt = this.clock.now().getTime();
  }

  private async load(r: SigningKeyRecord): Promise<LoadedKey> {
    const alg = r.alg as SigningAlg;
    const publicJwk = JSON.parse(r.publicJwk) as JWK;
    const privateJwk = JSON.parse(this.sealer.open(r.privateJwk, r.kid)) as JWK;
    return {
      kid: r.kid,
      alg,
      generation: r.generation,
      publicKey: (await importJWK(publicJwk, alg)) as CryptoKey,
      privateKey: (await importJWK(privateJwk, alg)) as CryptoKey,
      publicJwk,
      ...(r.notAfter && { notAfter: r.notAfter }),
    };
  }
}
