// The signing keys of every JWT Tessera issues: storage, generation, rotation, revocation, JWKS
// and PEM. Asymmetric keys (EdDSA by default, or ES256) are made with jose and persisted in the
// signing key store, so a restart and every other instance use the same ones: the unique
// generation number decides which instance's key wins at start-up and at rotation.
//
// Keys are published before they sign. The highest generation is the NEXT key: in the JWKS, but
// signing nothing. A rotation promotes it — it signs from max(now, published +
// TESSERA_KEY_PUBLISH_SECONDS) — retires the key that signed until then, and publishes a new
// next key. So every verifier that refreshes its copy of the JWKS at least as often as that
// (the JWKS max-age is kept below it) knows a key before the first token it signs. A retired
// key keeps verifying, and stays in the JWKS, until the longest-lived token it may have signed
// has expired. A revoked key (emergency) verifies nothing, at once on the revoking instance and
// within the 30 s reload interval on the others (but, while it is held, that a token being ended
// is its caller's: endedKeyFor); revoking the signing key first promotes the
// next key at once. HS256 uses TESSERA_JWT_SECRET and stores nothing: its tokens' header names
// the kid "hs256", whatever the secret, and changing the secret is how its key is revoked. A
// verification names the key by an id of the secret (hs256KeyId), which is what a credential
// made from the token records (source kids): once the secret has changed, that id is no longer
// the key's, and anyRevoked ends such a credential as one made from a revoked key's token; so,
// under HS256, one made from an EdDSA or ES256 key's token, whose tokens verify no more there.
//
// Instances learn about rotations and revocations by re-reading the key list: at most every
// `reloadIntervalMs` before signing or verifying, and at once (rate-limited) when a token names
// an unknown kid. Every time read here is the injected clock's.
import { createHmac } from "node:crypto";
import {
  calculateJwkThumbprint,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JWK,
} from "jose";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { outcomeOf, reasonOf, REDACTED_LOGIN, type AuditTrail } from "./audit.js";
import type { NewSigningKey, SigningKeyRecord, SigningKeyStore } from "../store/ports/signing-keys.js";
import { settledOf } from "../store/ports/errors.js";
import type { Clock } from "./clock.js";
import { failedPrecondition, notFound, requireField } from "./errors.js";
import { KeySealer } from "./key-sealing.js";
import type { OwedWrites } from "./owed-writes.js";
import { signJwt } from "./token-signer.js";

export type SigningAlg = "EdDSA" | "ES256" | "HS256";

export type KeysConfig = Pick<Config, "jwtAlg" | "jwtSecret" | "accessTokenTtlSeconds" | "refreshTokenTtlSeconds"> &
  Partial<Pick<Config, "keyEncryptionKey" | "keyEncryptionKeyPrevious" | "keyPublishSeconds">>;

/** What a verifier needs of one key. */
export interface VerificationKey {
  readonly kid: string;
  readonly alg: SigningAlg;
  readonly publicKey: CryptoKey | Uint8Array;
}

interface LoadedKey extends VerificationKey {
  generation: number;
  /**
   * Absent when the key's sealed private part does not open with this instance's
   * TESSERA_KEY_ENCRYPTION_KEY (another instance, configured otherwise, stored it after this one
   * started): it still verifies; `unsealable` says why it cannot sign.
   */
  privateKey?: CryptoKey | Uint8Array;
  unsealable?: string;
  publicJwk?: JWK;
  createdAt?: Date;
  activatedAt?: Date;
  retiredAt?: Date;
  notAfter?: Date;
  revokedAt?: Date;
}

const hs256Kid = "hs256";
/** The prefix of the ids of HS256 secrets (hs256KeyId). */
const hs256KeyIdPrefix = "hs256:";

/**
 * The id of an HS256 secret: what a verification names the key by, and what a credential made
 * from one of its tokens records. It names no other secret; 16 characters of an HMAC under the
 * secret, so it tells nothing of it that any token it signs does not.
 */
function hs256KeyId(secret: Uint8Array): string {
  return hs256KeyIdPrefix + createHmac("sha256", secret).update("tessera HS256 key id").digest("base64url").slice(0, 16);
}
/** A key that is current when another instance rotates may sign for up to this long; a revoked key may verify on another instance for up to this long. */
export const reloadIntervalMs = 30_000;
/** The JWKS max-age ceiling (seconds). */
const jwksMaxAgeCeiling = 300;
const unknownKidReloadMs = 2_000;

/** True when `interval` has passed since `since` — or the clock went back past it. */
const due = (now: number, since: number, interval: number) => now - since >= interval || now < since;

/**
 * True when `kid` was revoked after a rotation promoted it (one instance revoking the published
 * next key while another rotates): it will never sign, while the key it retired stops signing
 * when it would have begun, so nothing would sign from then on. Nothing was promoted after it
 * yet (which is what its revoker or its rotator does next).
 */
function promotedThenRevoked(records: readonly SigningKeyRecord[], kid: string): boolean {
  const key = records.find((r) => r.kid === kid);
  const top = records.at(-1)!;
  if (!key?.revokedAt || key.retiredAt || key.generation >= top.generation) return false;
  if (records.some((r) => r.generation > key.generation && r.generation < top.generation)) return false;
  // A rotation retires the key that signed as of the promoted key's start.
  return records.some((r) => r.generation < key.generation && !r.revokedAt && r.retiredAt?.getTime() === key.activatedAt.getTime());
}

/**
 * The key promoted in place of `kid` when `kid` was promoted, then revoked, and the revocation (or
 * another rotation) has already promoted the key above it: the lowest unrevoked key between it
 * and the published next key.
 */
function promotedInstead(records: readonly SigningKeyRecord[], kid: string): string | undefined {
  const key = records.find((r) => r.kid === kid);
  const top = records.at(-1)!;
  if (!key?.revokedAt) return undefined;
  return records.find((r) => r.generation > key.generation && r.generation < top.generation && !r.revokedAt)?.kid;
}

/** KeyRing.advance's options (see there). */
interface AdvanceOptions {
  settled?: (records: readonly SigningKeyRecord[]) => string | undefined;
  rotated?: (kid: string) => Promise<unknown> | undefined;
  revoking?: string;
  writing?: () => void;
}

export interface KeyRingDeps {
  keys: SigningKeyStore;
  config: KeysConfig;
  clock: Clock;
  logger: Logger;
  /**
   * Where the start's re-seals (`key.resealed`) and promotions (`key.rotated`: no key could sign),
   * and the rotations and revocations of rotate() and revoke() (`key.rotated`, `key.revoked`), are
   * recorded.
   */
  audit?: Pick<AuditTrail, "record">;
  /** Where the start's key write goes when the store refuses it for a full disk (retried until made); without it, such a start fails. */
  owed?: OwedWrites;
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
  private readonly audit: Pick<AuditTrail, "record"> | undefined;
  private keys = new Map<string, LoadedKey>();
  private current: LoadedKey | undefined;
  /** Under HS256, the id of TESSERA_JWT_SECRET (hs256KeyId). */
  private hs256Id: string | undefined;
  private loadedAt = -Infinity;
  private lastUnknownKidReload = -Infinity;
  /** The read of the key list under way, and when it began. */
  private reloading: { readonly done: Promise<void>; readonly readAt: number } | undefined;
  private changed: (() => unknown) | undefined;
  /** Set once open() has loaded the keys: from then on a key that does not unseal is logged, not thrown. */
  private opened = false;
  /** Keys open() loaded whose stored form is to be sealed again under the current secret (KeySealer.unseal). */
  private stale = new Map<string, { stored: string; privateJwk: string }>();
  /** Whether a key open() loaded opened only with TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS. */
  private neededPrevious = false;
  /**
   * The start's write (a key promoted, the next key published) is owed (refused for a full disk):
   * until it is made, a stored key of this algorithm that no rotation has made the signer (a
   * single key from before next keys existed) signs, as it did before.
   */
  private owing = false;
  /** Writes of a rotation or revocation made here that go on after their error (afterLateWrite). */
  private lateWrites = 0;

  private constructor(deps: KeyRingDeps) {
    this.store = deps.keys;
    this.config = deps.config;
    this.clock = deps.clock;
    this.logger = deps.logger;
    this.audit = deps.audit;
    this.alg = deps.config.jwtAlg;
    this.algorithms = this.alg === "HS256" ? ["HS256"] : ["EdDSA", "ES256"];
    this.sealer = new KeySealer(deps.config.keyEncryptionKey, deps.config.keyEncryptionKeyPrevious);
  }

  static async open(deps: KeyRingDeps): Promise<KeyRing> {
    const ring = new KeyRing(deps);
    if (ring.alg === "HS256") {
      const secret = deps.config.jwtSecret;
      if (!secret) throw new Error("TESSERA_JWT_SECRET is required for HS256");
      const key = new TextEncoder().encode(secret);
      // Named "hs256" in its tokens' header, and by the secret's id once a token verified.
      ring.hs256Id = hs256KeyId(key);
      ring.current = { kid: ring.hs256Id, alg: "HS256", generation: 0, publicKey: key, privateKey: key };
      ring.keys.set(hs256Kid, ring.current);
      ring.keys.set(ring.current.kid, ring.current);
      return ring;
    }
    if (deps.owed) {
      await deps.owed.run(
        "the signing keys' start-up write (a key promoted, the next key published)",
        async () => {
          await ring.ensureCurrent();
          // Made later, once space is back: other workers read the keys again.
          if (ring.owing) await ring.changed?.();
          ring.owing = false;
        },
        () => ring.signsMeanwhile(),
      );
    } else await ring.ensureCurrent();
    ring.opened = true;
    if (ring.sealer.hasPrevious && !ring.neededPrevious) {
      ring.logger.info('TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS opened no signing key at this start: it may be unset once no instance needs it to start (README "Upgrades", step 4)');
    }
    await ring.resealStale();
    return ring;
  }

  /**
   * At start, once the keys are loaded: each stored key that opened only with
   * TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS, or (sealing on) was stored in the clear, is sealed under
   * TESSERA_KEY_ENCRYPTION_KEY and written back if its stored form is still the one read (another
   * instance starting at once may have done it: then it is logged and recorded by one of them).
   * A form another instance began to write (MongoDB) is written only if it opens with this
   * instance's current secret to the same private key; otherwise the key is left as it is, and
   * named in an error. A write the store answers with an error does not stop the start: it is
   * told apart from one made all the same by reading the key again (resealInDoubt); one not made
   * leaves the key opening with the previous secret, and the next start tries again.
   */
  private async resealStale(): Promise<void> {
    const stale = this.stale;
    this.stale = new Map();
    for (const [kid, { stored, privateJwk }] of stale) {
      const sealedHere = (form: string) => {
        try {
          const opened = this.sealer.unseal(form, kid);
          return !opened.reseal && opened.privateJwk === privateJwk;
        } catch {
          return false;
        }
      };
      const form = this.sealer.seal(privateJwk, kid);
      try {
        const outcome = await this.store.reseal(kid, stored, form, this.clock.now(), sealedHere);
        if (outcome === "refused") {
          this.logger.error("signing key not re-sealed: another instance began to seal it under a secret that is not this instance's TESSERA_KEY_ENCRYPTION_KEY; it is left as it was", { kid });
        }
        if (outcome === "resealed") await this.resealed(kid);
      } catch (error) {
        // A write still under way (MongoDB, past the store's time bound) is read for once it has
        // ended, without holding up the start.
        const settled = settledOf(error);
        if (settled) void settled.then(() => this.resealInDoubt(kid, form, error));
        else await this.resealInDoubt(kid, form, error);
      }
    }
  }

  /** A re-seal made: logged by kid and recorded as `key.resealed`. */
  private async resealed(kid: string): Promise<void> {
    this.logger.info("signing key re-sealed", { kid });
    await this.audit?.record({ type: "key.resealed", outcome: "success", subject: kid });
  }

  /**
   * A re-seal whose write the store answered with an error, which may have been made all the
   * same (a write that landed, its answer lost; on MongoDB, the key written and the mark that
   * reports it refused). The key is read again: holding `form`, this re-seal's own (sealed with a
   * random IV: no other write stores it), the re-seal landed, and is logged and recorded as any
   * re-seal. Otherwise, or when the read fails too, it is logged as not re-sealed and recorded as
   * `key.resealed` with outcome `error`: that is all that can be told of it, as a write the
   * database applies after this read (MongoDB: after the driver gave the operation up, past its
   * socket timeout) cannot be told from one never made. The next start seals the key
   * again if it still opens only with the previous secret, and records that. On MongoDB, an
   * instance starting at the same moment that found this re-seal's mark may have finished and
   * reported it too: the trail then holds it twice, never not at all.
   */
  private async resealInDoubt(kid: string, form: string, error: unknown): Promise<void> {
    const landed = await this.store.list().then(
      (records) => records.some((r) => r.kid === kid && r.privateJwk === form),
      () => false,
    );
    if (landed) return this.resealed(kid);
    this.logger.warn("signing key not re-sealed: it is tried again at the next start", { kid, error: error instanceof Error ? error.message : String(error) });
    await this.audit?.record({ type: "key.resealed", outcome: "error", subject: kid });
  }

  /** Seconds a key is published before it may sign (TESSERA_KEY_PUBLISH_SECONDS). */
  get publishSeconds(): number {
    return this.config.keyPublishSeconds ?? 600;
  }

  /**
   * How long verifiers may cache the JWKS: below the publication lead, less the
   * reload interval in which another instance may not list a new next key yet; at most 300 s.
   */
  get jwksMaxAgeSeconds(): number {
    return Math.max(0, Math.min(jwksMaxAgeCeiling, this.publishSeconds - reloadIntervalMs / 1000));
  }

  /**
   * Signs with the current key, on the event loop (token-signer.ts). `iat` defaults to now; `exp`
   * is iat + expiresInSeconds.
   */
  async sign(payload: Record<string, unknown>, expiresInSeconds: number): Promise<string> {
    const key = await this.signingKey();
    if (key.privateKey === undefined) throw new Error(key.unsealable);
    const iat = typeof payload.iat === "number" ? payload.iat : Math.floor(this.clock.now().getTime() / 1000);
    const kid = this.alg === "HS256" ? hs256Kid : key.kid;
    return signJwt({ kid, alg: key.alg, privateKey: key.privateKey }, { ...payload, iat, exp: iat + expiresInSeconds });
  }

  /**
   * The key `kid` names while it may still verify (not revoked, not past its notAfter); undefined
   * otherwise. The key list is re-read when stale (every 30 s: revocations elsewhere), and at
   * once for an unknown kid (at most every 2 s): another instance may have rotated.
   */
  async keyFor(kid: string): Promise<VerificationKey | undefined> {
    if (this.alg !== "HS256") await this.reloadIfStale();
    let key = this.keys.get(kid);
    if (!key && this.alg !== "HS256") {
      const now = this.clock.now().getTime();
      if (due(now, this.lastUnknownKidReload, unknownKidReloadMs)) {
        this.lastUnknownKidReload = now;
        await this.reload();
        key = this.keys.get(kid);
      }
    }
    if (key?.revokedAt) return undefined;
    if (key?.notAfter && key.notAfter.getTime() <= this.clock.now().getTime()) return undefined;
    return key;
  }

  /**
   * The key `kid` names once it verifies no more (revoked, or past its notAfter) while this
   * instance still holds it (housekeeping has not deleted it); undefined otherwise. Only for a
   * token being ended (DELETE /refresh_token), which must still be told to be its caller's: never
   * for one being used. Call after keyFor (which re-reads the key list).
   */
  endedKeyFor(kid: string): VerificationKey | undefined {
    const key = this.keys.get(kid);
    if (key === undefined) return undefined;
    const ended = key.revokedAt !== undefined || (key.notAfter !== undefined && key.notAfter.getTime() <= this.clock.now().getTime());
    return ended ? key : undefined;
  }

  /** Whether `kid` names a key this instance knows to be revoked. */
  isRevoked(kid: string): boolean {
    return this.keys.get(kid)?.revokedAt !== undefined;
  }

  /**
   * Whether any of `kids` names a revoked key: a credential made from tokens those keys signed
   * (recorded where it is stored or signed) ends with them. The key list is re-read when stale,
   * as for a token (other instances' revocations within the reload interval; other workers of
   * this one are told at once). A kid the list does not hold names no revoked key: a key
   * housekeeping deleted once retired, after its last token (what its tokens made lives on to its
   * own expiry, as it would have with the key kept), or once revoked, when no credential that
   * records it can still live (REVOKED_KEY_KEPT_MS: kept until then, whatever the lifetimes are
   * now); or a key stored since the list was read (its revocation, as any, reaches this instance
   * within the reload interval).
   */
  async anyRevoked(kids: readonly string[] | undefined): Promise<boolean> {
    if (kids === undefined || kids.length === 0) return false;
    // Under HS256 the configured secret alone verifies: a kid of another secret (changed since)
    // or of an EdDSA or ES256 key (the algorithm changed since; the stored keys, and so their
    // revocations, are not read under HS256) names a key whose tokens verify no more here, as a
    // revoked key's. "hs256" alone (recorded before secrets had ids) names no secret in
    // particular, and ends nothing.
    if (this.alg === "HS256") return kids.some((kid) => kid !== hs256Kid && kid !== this.hs256Id);
    // An HS256 secret's (HS256 left since): its tokens verify no more.
    if (kids.some((kid) => kid.startsWith(hs256KeyIdPrefix))) return true;
    await this.reloadIfStale();
    return kids.some((kid) => this.isRevoked(kid));
  }

  /** Public keys that may verify a valid token, and the published next key, as JWKs with kid, alg and use. */
  async jwks(): Promise<Array<Record<string, unknown>>> {
    if (this.alg === "HS256") return [];
    await this.reloadIfStale();
    const now = this.clock.now().getTime();
    return [...this.keys.values()]
      .filter((k) => k.publicJwk && !k.revokedAt && (k.notAfter === undefined || k.notAfter.getTime() > now))
      .sort((a, b) => b.generation - a.generation)
      .map((k) => ({ ...k.publicJwk, kid: k.kid, alg: k.alg, use: "sig" }));
  }

  /** The current public key as SPKI PEM; NOT_FOUND under HS256, which has none. */
  async publicKeyPem(): Promise<string> {
    if (this.alg === "HS256") throw notFound("NO_PUBLIC_KEY", "a symmetric algorithm (HS256) is in use: there is no public key");
    const key = await this.signingKey();
    return exportSPKI(key.publicKey as CryptoKey);
  }

  /**
   * Promotes the published next key (it signs from max(now, its publication +
   * TESSERA_KEY_PUBLISH_SECONDS)) and publishes a new next key; returns the promoted kid. A
   * concurrent rotation elsewhere wins: the key it promoted is returned. Recorded: `key.rotated`
   * (`subject`: the promoted key) once the store holds each rotation this call made, or, when
   * another instance's rotation answers it, as answered; or with the refusal or error answered
   * before any was stored.
   */
  async rotate(): Promise<string> {
    return this.recording("key.rotated", () => undefined, async (recorded) => {
      if (this.alg === "HS256") {
        throw failedPrecondition("UNSUPPORTED_OPERATION", "HS256 keys are rotated by changing TESSERA_JWT_SECRET");
      }
      return this.changing(async (wrote) => {
        let stored = false;
        const rotated = (kid: string) => ((stored = true), recorded(kid));
        // Each rotation step's write marks the change written before it is made: one the store
        // answers with an error may have been made all the same (its answer lost, or on MongoDB
        // still under way when the store's time bound passed).
        let promoted = await this.advance("scheduled", { rotated, writing: wrote });
        // Also when another instance's rotation answers this call: the other workers read it now.
        wrote();
        // Revoked elsewhere after the look that chose it: promote the next key at once instead, or
        // answer the key the revocation promoted in its place when it has already done so.
        const records = await this.store.list();
        if (promotedThenRevoked(records, promoted)) promoted = await this.advance("now", { rotated, writing: wrote });
        else promoted = promotedInstead(records, promoted) ?? promoted;
        // Another instance's rotation answers this call: recorded as answered.
        if (!stored) await recorded(promoted);
        return promoted;
      });
    });
  }

  /**
   * Runs a rotation or a revocation, recording `type` as the store holds it: `work` calls
   * `recorded` (which records `type` with success, naming the key) once its change is stored,
   * or once an unchanged answer is known (a key already revoked, a rotation another instance
   * made). A call that fails before `recorded` records `type` with its refusal or error
   * (naming `subject()`), as tracked() records a refused call; one that fails after it records
   * nothing more (the change it recorded is in the store).
   */
  private async recording<T>(type: "key.rotated" | "key.revoked", subject: () => string | undefined, work: (recorded: (kid: string) => Promise<void>) => Promise<T>): Promise<T> {
    let done = false;
    const recorded = async (kid: string) => {
      done = true;
      await this.audit?.record({ type, outcome: "success", subject: kid });
    };
    try {
      return await work(recorded);
    } catch (e) {
      if (!done) await this.audit?.record({ type, outcome: outcomeOf(e), reason: reasonOf(e), subject: subject() });
      throw e;
    }
  }

  /**
   * Runs the steps of a rotation or a revocation, then re-reads the key list here (a read begun
   * after their writes: one already under way may have read it before, and would leave a revoked
   * key verifying, and signing, here for 30 s) and tells the other workers (onChange). They are
   * told once the steps have said that a write is made (`wrote`, before it), whatever follows:
   * that write answered with an error (it may have been made all the same: its answer lost, or
   * on MongoDB still under way), a later step that fails, or this worker's own re-read (its list
   * is then stale: reload), leaves the change in the store all the same, and the others would go
   * on with the list they hold until their reload interval ended; this worker reads the list
   * again too. A change that fails before it writes anything tells no one.
   */
  private async changing<T>(steps: (wrote: () => void) => Promise<T>): Promise<T> {
    let written = false;
    let stepped = false;
    try {
      const result = await steps(() => (written = true));
      stepped = true;
      await this.reload(true);
      return result;
    } catch (e) {
      // A step failed after a write: the list held here is out of date as well. Read it again
      // (a read that fails leaves it stale, read again at its next use); the step's error answers.
      if (written && !stepped) {
        this.afterLateWrite(e);
        await this.reload(true).catch(() => {});
      }
      throw e;
    } finally {
      if (written) await this.changed?.();
    }
  }

  /**
   * A step's write that goes on after its error (settledOf: on MongoDB, one still under way when
   * the store's time bound passed) may land after the list was read again: until it has ended,
   * every use of a key reads the list (one read at a time, shared), and once it has, the list is
   * read again and the other workers are told again.
   */
  private afterLateWrite(error: unknown): void {
    const settled = settledOf(error);
    if (!settled) return;
    this.lateWrites++;
    void settled.then(async () => {
      await this.reload(true).catch(() => {});
      this.lateWrites--;
      await this.changed?.();
    }).catch((e: unknown) => this.logger.warn("signing key change in doubt: telling the other workers failed", { error: e instanceof Error ? e.message : String(e) }));
  }

  /**
   * `told` hears of every rotation and revocation made here (to tell other workers: reloadNow),
   * also one that failed after its first write (changing); the rotation or revocation ends once
   * what it returns has settled.
   */
  onChange(told: () => unknown): void {
    this.changed = told;
  }

  /**
   * The key list changed elsewhere: read it again now, not at the next reload interval. When the
   * read fails, the list is stale: its next use reads it again (reload).
   */
  reloadNow(): Promise<void> {
    return this.reload(true);
  }

  /**
   * Emergency revocation: the key leaves the JWKS and verifies nothing from now on (on other
   * instances within the reload interval; other workers are told at once: onChange). Revoking
   * the signing key first promotes the next key, at once; revoking the key a rotation is about to
   * make it, while the key before it signs, promotes the next key as a rotation does (the key
   * that signs goes on until then); revoking the next key publishes a new one. Revoking an
   * already revoked key changes nothing. Recorded: `key.revoked` once the store holds the revocation (at once when the key
   * was revoked already), or with the refusal or error answered before it; `key.rotated` for
   * each key the call promoted, once the store holds the promotion. A refusal or error before
   * `kid` was found among the stored keys names it `[redacted]`: it names no key, and may be a
   * secret sent in its place (the admin token, an API token), which no event may hold.
   */
  revoke(kid: string): Promise<{ kid: string; signingKid: string }> {
    let found = false;
    return this.recording(
      "key.revoked",
      () => (found || kid === "" ? kid : REDACTED_LOGIN),
      (recorded) => this.revokeRecorded(kid, recorded, () => (found = true)),
    );
  }

  private async revokeRecorded(kid: string, recorded: (kid: string) => Promise<void>, found: () => void): Promise<{ kid: string; signingKid: string }> {
    if (this.alg === "HS256") {
      throw failedPrecondition("UNSUPPORTED_OPERATION", "HS256 keys are revoked by changing TESSERA_JWT_SECRET");
    }
    requireField("kid", kid);
    const now = this.clock.now();
    let records = await this.store.list();
    const target = records.find((r) => r.kid === kid);
    if (!target) throw notFound("KEY_NOT_FOUND", "no signing key with this kid");
    found();
    await this.changing(async (wrote) => {
      // Each step below writes, and a write the store answers with an error may have been made
      // all the same (its answer lost, or on MongoDB still under way when the store's time bound
      // passed): from here on the list is read again and the other workers told, whatever the
      // store answers. Already revoked: nothing is written, and they are told again all the same.
      wrote();
      if (target.revokedAt) return recorded(kid);
      // The key signs, or a rotation is about to make it sign: promote the next key at once. Asked
      // again on every look at the store: once another instance's revocation of the same key
      // (decided from the same list) has promoted one, this one promotes nothing more, which would
      // make the key just published beside it sign at once, before any verifier could hold it.
      const needsPromotion = (rs: readonly SigningKeyRecord[]) => {
        const top = rs.at(-1)!;
        const pending = rs.filter((r) => r.generation < top.generation && !r.revokedAt && r.activatedAt.getTime() > now.getTime());
        return this.signerOf(rs, now.getTime(), false)?.kid === kid || pending.some((r) => r.kid === kid);
      };
      const rotated = this.promotedRecorded;
      // The key a rotation promoted, not signing yet, while the key it takes over from still
      // signs: the next key, published by that rotation a moment ago perhaps, is promoted as a
      // rotation promotes it, and the key that signs goes on until then. Promoted at once, it
      // would sign before verifiers that cached the JWKS could hold it. So too when a later
      // rotation has promoted a key after it already (it is retired then, as of that key's start).
      const signer = this.signerOf(records, now.getTime(), false);
      const waiting =
        signer !== undefined &&
        signer.kid !== kid &&
        target.generation < records.at(-1)!.generation &&
        target.activatedAt.getTime() > now.getTime() &&
        (!target.retiredAt || target.retiredAt.getTime() > target.activatedAt.getTime());
      // Done once a key above it is promoted and the key below it signs until that one starts.
      const promotedAbove = (rs: readonly SigningKeyRecord[]) => {
        const above = rs.find((r) => r.generation > target.generation && r.generation < rs.at(-1)!.generation && !r.revokedAt);
        const below = rs.filter((r) => r.generation < target.generation && !r.revokedAt).at(-1);
        if (above === undefined) return undefined;
        return below?.retiredAt === undefined || below.retiredAt.getTime() >= above.activatedAt.getTime() ? kid : undefined;
      };
      if (waiting) await this.advance("scheduled", { settled: promotedAbove, rotated, revoking: kid });
      else if (needsPromotion(records)) await this.advance("now", { settled: (rs) => (needsPromotion(rs) ? undefined : kid), rotated });
      if (await this.store.revoke(kid, now)) this.logger.warn("signing key revoked", { kid, generation: target.generation });
      await recorded(kid);
      records = await this.store.list();
      if (records.at(-1)!.kid === kid) {
        // The next key was revoked: publish another one (unless another instance just did, or
        // rotated: see below).
        const next = await this.newKey(records.at(-1)!.generation + 1);
        if (!(await this.store.insertGeneration(next))) records = await this.store.list();
      }
      // A rotation elsewhere promoted it after the look above: promote the next key at once.
      if (promotedThenRevoked(records, kid)) await this.advance("now", { rotated });
    });
    return { kid, signingKid: (await this.signingKey()).kid };
  }

  /**
   * Inserts a new next key and promotes the present one, retiring the key that signed. "scheduled":
   * the promoted key signs from max(now, its publication + the lead); "now": at once. Returns
   * the promoted kid (another instance's, when it rotated first). `settled`: the kid of a key
   * that already does what the caller needs, asked on every look at the store; once there is one
   * (another instance promoted the key this one stored first), nothing more is promoted.
   * `rotated`: told the promoted kid once the store holds a rotation this call made.
   * `revoking`: a promoted key about to be revoked before it signs; the key below it is retired
   * in its place, as of the new promotion (a later time than the one it had), and a key a later
   * rotation promoted above it with it. `writing`: called before each write (changing's `wrote`):
   * one the store answers with an error may have been made all the same.
   */
  private async advance(when: "scheduled" | "now", options: AdvanceOptions = {}): Promise<string> {
    const { settled, rotated, revoking, writing } = options;
    for (let attempt = 0; attempt < 5; attempt++) {
      const records = await this.store.list();
      const done = settled?.(records);
      if (done !== undefined) return done;
      const top = records.at(-1);
      if (!top) {
        writing?.();
        await this.store.insertGeneration(await this.newKey(1));
        continue;
      }
      if (top.alg !== this.alg || top.revokedAt) {
        // The next key cannot be promoted (another algorithm, or revoked): publish one that can.
        writing?.();
        await this.store.insertGeneration(await this.newKey(top.generation + 1));
        continue;
      }
      const now = this.clock.now().getTime();
      const activatedAt = new Date(when === "now" ? now : Math.max(now, top.createdAt.getTime() + this.publishSeconds * 1000));
      // The key that signs until then: the latest one below the next key not yet retired. After
      // a change of algorithm that is the previous algorithm's unused next key, and the key that
      // signed with it is below it, never retired: both stop then.
      // A key being revoked signs nothing: the one below it goes on (its retirement moved).
      const unretired = records.filter(
        (r) => r.generation < top.generation && !r.revokedAt && r.kid !== revoking && (r.retiredAt === undefined || r.retiredAt.getTime() > now),
      );
      // Being revoked after a later rotation promoted a key above it: the key below it is retired
      // again, the one above with it (it signs from its start until then, being the higher).
      const below = revoking === undefined ? unretired : unretired.filter((r) => r.generation < (records.find((k) => k.kid === revoking)?.generation ?? Infinity));
      const retiring = below.at(-1);
      const alsoRetire = unretired.filter((r) => r !== retiring && r.retiredAt === undefined).map((r) => r.kid);
      const next = await this.newKey(top.generation + 1);
      writing?.();
      const won = await this.store.rotate(next, {
        promote: { kid: top.kid, activatedAt },
        ...(retiring && { retire: { kid: retiring.kid, retiredAt: activatedAt, notAfter: this.retiredNotAfter(activatedAt) } }),
        ...(alsoRetire.length > 0 && { alsoRetire }),
      });
      if (won) {
        this.logger.info("signing key rotated", { kid: top.kid, generation: top.generation, activatedAt: activatedAt.toISOString(), nextKid: next.kid });
        await rotated?.(top.kid);
        return top.kid;
      }
      // Another instance rotated first: the key it promoted is the one below its new next key.
      const after = await this.store.list();
      const promoted = after.at(-2);
      if (promoted && after.at(-1)!.generation === top.generation + 1) return promoted.kid;
    }
    throw new Error("signing key rotation did not settle");
  }

  /**
   * How long a key may still verify after it stops signing: every token it signed expires within
   * the longest token lifetime, plus the window in which other instances may still sign with it
   * before they reload. (A revoked key is kept longer, whatever these lifetimes are now:
   * REVOKED_KEY_KEPT_MS in housekeeping.ts.)
   */
  get verifiesForMs(): number {
    return Math.max(this.config.accessTokenTtlSeconds, this.config.refreshTokenTtlSeconds) * 1000 + reloadIntervalMs;
  }

  private retiredNotAfter(retiredAt: Date): Date {
    return new Date(retiredAt.getTime() + this.verifiesForMs);
  }

  /**
   * The key that signs at `now`: the highest generation below the next key, of the configured
   * algorithm, not revoked, activated, not yet retired. `orBelowTop`: also the promoted key
   * not yet activated, when nothing else may sign (never in practice: the retiring key signs
   * until the promoted one starts).
   */
  private signerOf<K extends { kid: string; alg: string; generation: number; activatedAt?: Date; retiredAt?: Date; revokedAt?: Date }>(
    keys: readonly K[],
    now: number,
    orBelowTop: boolean,
  ): K | undefined {
    const sorted = [...keys].sort((a, b) => a.generation - b.generation);
    const top = sorted.at(-1);
    if (!top) return undefined;
    const below = sorted.filter((k) => k.generation < top.generation && k.alg === this.alg && !k.revokedAt);
    const signing = below.filter((k) => (k.activatedAt?.getTime() ?? 0) <= now && (k.retiredAt === undefined || k.retiredAt.getTime() > now)).at(-1);
    return signing ?? (orBelowTop ? below.filter((k) => k.retiredAt === undefined).at(-1) : undefined);
  }

  /**
   * At start-up: make sure there is a signing key and a published next key (promoting at once
   * when there is no signing key yet; publishing one above a revoked next key whose replacement
   * the revocation could not store). Another instance starting at once may publish it first.
   */
  private async ensureCurrent(): Promise<void> {
    const signing = (records: readonly SigningKeyRecord[]) => this.signerOf(records, this.clock.now().getTime(), false)?.kid;
    for (let attempt = 0; attempt < 5; attempt++) {
      const records = await this.store.list();
      if (signing(records) !== undefined) {
        const top = records.at(-1)!;
        if (top.revokedAt) await this.store.insertGeneration(await this.newKey(top.generation + 1));
        break;
      }
      // No key yet, a single key from before next keys existed, or an algorithm change. Another
      // instance starting at the same time may promote the key this one stores first: the start
      // whose promotion the store took records it (`key.rotated`, as a rotation does), once
      // between all the workers and instances starting on the store.
      await this.advance("now", { settled: signing, rotated: this.promotedRecorded });
    }
    await this.reload(true);
    if (!this.current) throw new Error("no signing key could be stored");
  }

  /** A promotion this instance stored outside rotate() (a start's, a revocation's): `key.rotated`. */
  private readonly promotedRecorded = (kid: string) => this.audit?.record({ type: "key.rotated", outcome: "success", subject: kid });

  /**
   * The start's write was refused for a full disk: whether a key already stored can sign
   * meanwhile (then the start goes on, owing it). None can on a first start, or after a change of
   * algorithm: that start fails.
   */
  private async signsMeanwhile(): Promise<boolean> {
    this.owing = true;
    await this.reload(true);
    if (this.current === undefined) this.owing = false;
    return this.owing;
  }

  /**
   * The key that signs now among `keys` (signerOf, or the promoted key not yet activated); while
   * the start's write is owed, else the highest key of this algorithm neither revoked nor retired.
   */
  private signerNow(keys: readonly LoadedKey[]): LoadedKey | undefined {
    const signer = this.signerOf(keys, this.clock.now().getTime(), true);
    if (signer || !this.owing) return signer;
    return [...keys].sort((a, b) => a.generation - b.generation).filter((k) => k.alg === this.alg && !k.revokedAt && !k.retiredAt).at(-1);
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
      // The earliest it may sign; the rotation that promotes it sets the real time.
      activatedAt: new Date(now.getTime() + this.publishSeconds * 1000),
    };
  }

  /** Seconds since the key that signs now began to sign (undefined under HS256). */
  async signingKeyAgeSeconds(): Promise<number | undefined> {
    if (this.alg === "HS256") return undefined;
    const key = await this.signingKey();
    return key.activatedAt === undefined ? undefined : (this.clock.now().getTime() - key.activatedAt.getTime()) / 1000;
  }

  private async signingKey(): Promise<LoadedKey> {
    if (this.alg === "HS256") return this.current!;
    await this.reloadIfStale();
    let key = this.signerNow([...this.keys.values()]);
    if (!key) {
      await this.reload();
      key = this.signerNow([...this.keys.values()]);
    }
    if (!key) throw new Error("no signing key");
    return key;
  }

  private async reloadIfStale(): Promise<void> {
    if (this.lateWrites > 0 || due(this.clock.now().getTime(), this.loadedAt, reloadIntervalMs)) await this.reload();
  }

  /**
   * Re-reads the key list; concurrent callers share one read while it began less than the reload
   * interval ago (a slow store's answer to an older one, begun before a revocation elsewhere,
   * would serve the revoked key past that interval to every caller that joined it: another read
   * begins). `fresh`: the read must begin after this call (the caller, or another worker, has
   * just written a change): a read already under way is waited for, then another made (or
   * shared, when one has begun since). A fresh read that fails (the store briefly unreachable)
   * leaves the list stale, so that its next use reads it again: the list held is known to be out
   * of date, and kept as fresh it would serve a key revoked or rotated away until the reload
   * interval ended.
   */
  private reload(fresh = false): Promise<void> {
    if (fresh) {
      const again = () => this.reload();
      return (this.reloading ? this.reloading.done.then(again, again) : again()).catch((e: unknown) => {
        this.loadedAt = -Infinity;
        throw e;
      });
    }
    const now = this.clock.now().getTime();
    if (this.reloading === undefined || due(now, this.reloading.readAt, reloadIntervalMs)) {
      const done: Promise<void> = this.doReload(now).finally(() => {
        if (this.reloading?.done === done) this.reloading = undefined;
      });
      this.reloading = { done, readAt: now };
    }
    return this.reloading.done;
  }

  /**
   * Reads the key list, begun at `readAt`: the list is as fresh as that read, however late it
   * answers (the reload interval counts from then, so a revocation elsewhere is seen within it).
   * One that answers after a later one keeps what that one saw of the keys both hold (a
   * revocation among it: each key is taken from the list held, its times added to it).
   */
  private async doReload(readAt: number): Promise<void> {
    const records = await this.store.list();
    const now = this.clock.now().getTime();
    const next = new Map<string, LoadedKey>();
    for (const r of records) {
      const loaded = this.keys.get(r.kid) ?? (await this.load(r));
      next.set(r.kid, { ...loaded, ...this.times(r), ...this.supersession(records, r, now) });
    }
    this.keys = next;
    this.current = this.signerNow([...next.values()]);
    this.loadedAt = readAt;
  }

  /**
   * The retirement of a key that a later key has taken over from, when the rotation that
   * promoted that one did not get to write it (MongoDB writes it after the promotion, without a
   * transaction: a failure between them): the rotation retired it as of max(the rotation's time,
   * which is when it stored the key above the promoted one; the promoted key's start). Without
   * this the key would verify, and be published, for good.
   */
  private supersession(records: readonly SigningKeyRecord[], r: SigningKeyRecord, now: number): Pick<LoadedKey, "retiredAt" | "notAfter"> {
    if (r.retiredAt || r.notAfter) return {};
    const top = records.at(-1)!;
    const successor = records.find(
      (s) => s.generation > r.generation && s.generation < top.generation && s.alg === this.alg && !s.revokedAt && s.activatedAt.getTime() <= now,
    );
    const rotation = successor && records.find((s) => s.generation > successor.generation);
    if (!successor || !rotation) return {};
    const retiredAt = new Date(Math.max(rotation.createdAt.getTime(), successor.activatedAt.getTime()));
    return { retiredAt, notAfter: this.retiredNotAfter(retiredAt) };
  }

  /** The fields of a key that change after it is stored. */
  private times(r: SigningKeyRecord): Pick<LoadedKey, "createdAt" | "activatedAt" | "retiredAt" | "notAfter" | "revokedAt"> {
    return {
      createdAt: r.createdAt,
      activatedAt: r.activatedAt,
      ...(r.retiredAt && { retiredAt: r.retiredAt }),
      ...(r.notAfter && { notAfter: r.notAfter }),
      ...(r.revokedAt && { revokedAt: r.revokedAt }),
    };
  }

  /**
   * A key record loaded. A private part that does not unseal (TESSERA_KEY_ENCRYPTION_KEY unset or
   * another secret, and not TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS either) stops open(), naming the
   * key (one open() loads that is to be sealed again under the current secret is kept for
   * resealStale()); after open(), such a key was stored by another
   * instance configured otherwise (sealing being turned on or its secret changed instance by
   * instance): it is logged once and kept to verify with, its public part being in the clear, so
   * this instance goes on verifying tokens and only signing with it is refused.
   */
  private async load(r: SigningKeyRecord): Promise<LoadedKey> {
    const alg = r.alg as SigningAlg;
    const publicJwk = JSON.parse(r.publicJwk) as JWK;
    const key: LoadedKey = {
      kid: r.kid,
      alg,
      generation: r.generation,
      publicKey: (await importJWK(publicJwk, alg)) as CryptoKey,
      publicJwk,
      ...this.times(r),
    };
    let privateJwk: JWK;
    try {
      const opened = this.sealer.unseal(r.privateJwk, r.kid);
      privateJwk = JSON.parse(opened.privateJwk) as JWK;
      // By kid: the start reads the list more than once (the last form read is the one replaced).
      if (opened.reseal && !this.opened) this.stale.set(r.kid, { stored: r.privateJwk, privateJwk: opened.privateJwk });
      if (opened.previous && !this.opened) this.neededPrevious = true;
    } catch (error) {
      if (!this.opened) throw error;
      const message = error instanceof Error ? error.message : String(error);
      this.logger.error("signing key cannot be unsealed: it verifies, and cannot sign", { kid: r.kid, error: message });
      return { ...key, unsealable: message };
    }
    return { ...key, privateKey: (await importJWK(privateJwk, alg)) as CryptoKey };
  }
}
