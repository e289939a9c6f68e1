// Signing keys for every JWT Tessera issues. Asymmetric keys (EdDSA by default, or ES256) are made
// with jose and persisted in store.keys, so a restart and every other instance use the same
// ones: the unique generation number decides which instance's key wins at start-up and at
// rotation. A rotated key keeps verifying, and stays in the JWKS, until the longest-lived token
// it may have signed has expired. HS256 uses TESSERA_JWT_SECRET and stores nothing.
//
// Instances learn about a rotation by re-reading the key list: at most every
// `reloadIntervalMs` before signing, and at once (rate-limited) when a token names an unknown kid.
import {
  calculateJwkThumbprint,
  compactVerify,
  decodeProtectedHeader,
  errors as joseErrors,
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
import type { NewSigningKey, SigningKeyRecord, Store } from "../store/ports.js";
import type { Clock } from "./clock.js";
import { failedPrecondition, unauthenticated } from "./errors.js";
import { KeySealer } from "./key-sealing.js";

export type SigningAlg = "EdDSA" | "ES256" | "HS256";

export type KeysConfig = Pick<Config, "jwtAlg" | "jwtSecret" | "accessTokenTtlSeconds" | "refreshTokenTtlSeconds"> &
  Partial<Pick<Config, "keyEncryptionKey">>;

export interface VerifyOptions {
  allowExpired?: boolean;
  audience?: string;
  issuer?: string;
}

export type VerifiedPayload = Record<string, unknown> & { exp?: number; iat?: number };

interface LoadedKey {
  kid: string;
  alg: SigningAlg;
  generation: number;
  publicKey: CryptoKey | Uint8Array;
  privateKey: CryptoKey | Uint8Array;
  publicJwk?: JWK;
  notAfter?: Date;
}

const hs256Kid = "hs256";
/** A key that is current when another instance rotates may sign for up to this long. */
const reloadIntervalMs = 30_000;
const unknownKidReloadMs = 2_000;
const forbiddenHeaders = ["jku", "x5u", "jwk", "x5c"] as const;

export class SigningKeys {
  readonly alg: SigningAlg;
  private readonly store: Store;
  private readonly config: KeysConfig;
  private readonly sealer: KeySealer;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private keys = new Map<string, LoadedKey>();
  private current: LoadedKey | undefined;
  private loadedAt = 0;
  private lastUnknownKidReload = 0;
  private reloading: Promise<void> | undefined;

  private constructor(deps: { store: Store; config: KeysConfig; clock: Clock; logger: Logger }) {
    this.store = deps.store;
    this.config = deps.config;
    this.clock = deps.clock;
    this.logger = deps.logger;
    this.alg = deps.config.jwtAlg;
    this.sealer = new KeySealer(deps.config.keyEncryptionKey);
  }

  static async open(deps: { store: Store; config: KeysConfig; clock: Clock; logger: Logger }): Promise<SigningKeys> {
    const keys = new SigningKeys(deps);
    if (keys.alg === "HS256") {
      const secret = deps.config.jwtSecret;
      if (!secret) throw new Error("TESSERA_JWT_SECRET is required for HS256");
      const key = new TextEncoder().encode(secret);
      keys.current = { kid: hs256Kid, alg: "HS256", generation: 0, publicKey: key, privateKey: key };
      keys.keys.set(hs256Kid, keys.current);
      return keys;
    }
    await keys.ensureCurrent();
    return keys;
  }

  /** Signs with the current key. `iat` defaults to now; `exp` is iat + expiresInSeconds. */
  async sign(payload: Record<string, unknown>, expiresInSeconds: number): Promise<string> {
    const key = await this.signingKey();
    const iat = typeof payload.iat === "number" ? payload.iat : Math.floor(this.clock.now().getTime() / 1000);
    return new SignJWT({ ...payload, iat, exp: iat + expiresInSeconds })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
      .sign(key.privateKey);
  }

  async verify(token: string, opts: VerifyOptions = {}): Promise<VerifiedPayload> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw unauthenticated("INVALID_TOKEN", "malformed token");
    }
    const segments = token.split(".");
    if (segments.length !== 3) throw unauthenticated("INVALID_TOKEN", "malformed token");
    // base64url is malleable in its last character (unused low bits): jose would accept a
    // signature segment with other padding bits, so one token would have several spellings.
    // Only the canonical spelling is the token.
    const signature = segments[2]!;
    if (Buffer.from(signature, "base64url").toString("base64url") !== signature) throw unauthenticated("INVALID_TOKEN", "malformed token");
    for (const h of forbiddenHeaders) if (h in header) throw unauthenticated("INVALID_TOKEN", `token header "${h}" is not accepted`);
    if (header.crit !== undefined) throw unauthenticated("INVALID_TOKEN", "token header \"crit\" is not accepted");
    if (typeof header.kid !== "string") throw unauthenticated("INVALID_TOKEN", "token has no key id");
    const key = await this.keyFor(header.kid);
    if (!key) throw unauthenticated("INVALID_TOKEN", "token signed by an unknown key");
    // The algorithm comes from our key record, never from the token: no alg confusion, no "none".
    if (header.alg !== key.alg) throw unauthenticated("INVALID_TOKEN", "unexpected token algorithm");
    let payloadBytes: Uint8Array;
    try {
      ({ payload: payloadBytes } = await compactVerify(token, key.publicKey, { algorithms: [key.alg] }));
    } catch (e) {
      if (e instanceof joseErrors.JWSSignatureVerificationFailed) throw unauthenticated("INVALID_TOKEN", "invalid token signature");
      throw unauthenticated("INVALID_TOKEN", "malformed token");
    }
    let payload: unknown;
    try {
      payload = JSON.parse(new TextDecoder().decode(payloadBytes));
    } catch {
      throw unauthenticated("INVALID_TOKEN", "malformed token");
    }
    if (typeof payload !== "object" || payload === null || Array.isArray(payload)) throw unauthenticated("INVALID_TOKEN", "malformed token");
    const claims = payload as VerifiedPayload;
    const now = Math.floor(this.clock.now().getTime() / 1000);
    if (typeof claims.exp !== "number") throw unauthenticated("INVALID_TOKEN", "token has no expiry");
    if (claims.iat !== undefined && typeof claims.iat !== "number") throw unauthenticated("INVALID_TOKEN", "malformed token");
    if (!opts.allowExpired && claims.exp <= now) throw unauthenticated("TOKEN_EXPIRED", "token expired");
    if (claims.nbf !== undefined && (typeof claims.nbf !== "number" || claims.nbf > now)) throw unauthenticated("TOKEN_NOT_YET_VALID", "token not yet valid");
    if (opts.audience !== undefined) {
      const aud = claims.aud;
      const ok = typeof aud === "string" ? aud === opts.audience : Array.isArray(aud) && aud.includes(opts.audience);
      if (!ok) throw unauthenticated("WRONG_AUDIENCE", "token issued for another audience");
    }
    if (opts.issuer !== undefined && claims.iss !== opts.issuer) throw unauthenticated("WRONG_ISSUER", "token issued by another issuer");
    return claims;
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

  /** The current public key as SPKI PEM; undefined under HS256. */
  async publicKeyPem(): Promise<string | undefined> {
    if (this.alg === "HS256") return undefined;
    const key = await this.signingKey();
    return exportSPKI(key.publicKey as CryptoKey);
  }

  /** Makes a new key current; returns its kid. A concurrent rotation elsewhere wins: its kid is returned. */
  async rotate(): Promise<string> {
    if (this.alg === "HS256") {
      throw failedPrecondition("UNSUPPORTED_OPERATION", "HS256 keys are rotated by changing TESSERA_JWT_SECRET");
    }
    const previous = await this.store.keys.current();
    const next = await this.newKey((previous?.generation ?? 0) + 1);
    const won = previous
      ? await this.store.keys.rotate(next, this.retiredNotAfter())
      : await this.store.keys.insertGeneration(next);
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
      const stored = await this.store.keys.current();
      if (stored && stored.alg === this.alg) break;
      const next = await this.newKey((stored?.generation ?? 0) + 1);
      const won = stored ? await this.store.keys.rotate(next, this.retiredNotAfter()) : await this.store.keys.insertGeneration(next);
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

  private async keyFor(kid: string): Promise<LoadedKey | undefined> {
    if (this.alg === "HS256") return this.keys.get(kid);
    let key = this.keys.get(kid);
    if (!key) {
      const now = Date.now();
      if (now - this.lastUnknownKidReload >= unknownKidReloadMs) {
        this.lastUnknownKidReload = now;
        await this.reload();
        key = this.keys.get(kid);
      }
    }
    if (key?.notAfter && key.notAfter.getTime() <= this.clock.now().getTime()) return undefined;
    return key;
  }

  private async reloadIfStale(): Promise<void> {
    if (Date.now() - this.loadedAt >= reloadIntervalMs) await this.reload();
  }

  /** Re-reads the key list; concurrent callers share one read. */
  private reload(): Promise<void> {
    this.reloading ??= this.doReload().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async doReload(): Promise<void> {
    const records = await this.store.keys.list();
    const next = new Map<string, LoadedKey>();
    for (const r of records) {
      const loaded = this.keys.get(r.kid);
      next.set(r.kid, loaded ? { ...loaded, ...(r.notAfter && { notAfter: r.notAfter }) } : await this.load(r));
    }
    this.keys = next;
    const top = records.at(-1);
    this.current = top ? next.get(top.kid) : undefined;
    this.loadedAt = Date.now();
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

