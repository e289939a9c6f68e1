// Public keys from a JWKS, as node:crypto KeyObjects bound to the algorithms they may verify.
// Only asymmetric signature algorithms exist here: `none` and HS* cannot be configured, and a
// key is used only for the algorithm it declares (or, without `alg`, the one its curve
// implies), so a token cannot choose how its signature is checked.
import { createPublicKey, verify, type KeyObject } from "node:crypto";

/** The algorithms a verifier can be configured with. Tessera signs with EdDSA (default) or ES256. */
export const supportedAlgorithms = ["EdDSA", "Ed25519", "ES256", "ES384", "ES512"] as const;
export type Algorithm = (typeof supportedAlgorithms)[number];

export const defaultAlgorithms: readonly Algorithm[] = ["EdDSA", "ES256"];

interface Curve {
  readonly kty: "OKP" | "EC";
  readonly crv: string;
  /** The digest node:crypto uses (null: the curve's own, Ed25519). */
  readonly digest: string | null;
  readonly signatureLength: number;
}

const curves: Record<Algorithm, Curve> = {
  EdDSA: { kty: "OKP", crv: "Ed25519", digest: null, signatureLength: 64 },
  Ed25519: { kty: "OKP", crv: "Ed25519", digest: null, signatureLength: 64 },
  ES256: { kty: "EC", crv: "P-256", digest: "sha256", signatureLength: 64 },
  ES384: { kty: "EC", crv: "P-384", digest: "sha384", signatureLength: 96 },
  ES512: { kty: "EC", crv: "P-521", digest: "sha512", signatureLength: 132 },
};

export function isAlgorithm(value: unknown): value is Algorithm {
  return typeof value === "string" && Object.hasOwn(curves, value);
}

/** The configured algorithm list, checked: a TypeError names anything that is not accepted. */
export function algorithmList(configured: readonly string[] | undefined): ReadonlySet<Algorithm> {
  if (configured === undefined) return new Set(defaultAlgorithms);
  if (!Array.isArray(configured) || configured.length === 0) throw new TypeError("algorithms: give at least one algorithm");
  for (const alg of configured) {
    if (!isAlgorithm(alg)) {
      throw new TypeError(`algorithms: "${String(alg)}" is not accepted; only asymmetric signatures (${supportedAlgorithms.join(", ")})`);
    }
  }
  return new Set(configured as Algorithm[]);
}

/** One usable key of the set. */
export interface VerificationKey {
  readonly kid: string;
  /** The algorithms this key verifies: its `alg`, or those its curve implies, within the allowed list. */
  readonly algorithms: ReadonlySet<Algorithm>;
  /** Whether `signature` over `data` verifies with this key under `alg` (one of `algorithms`). */
  verify(alg: Algorithm, data: Buffer, signature: Buffer): boolean;
}

/** A key of the set that passed the checks that need no cryptography, not yet imported. */
interface Candidate {
  readonly jwk: Record<string, unknown>;
  readonly kid: string;
  readonly algorithms: ReadonlySet<Algorithm>;
}

/**
 * The usable keys of a JWKS document, by kid, each imported (node:crypto's createPublicKey)
 * when a token first names it. Importing a P-256 key costs tens of microseconds on the calling
 * thread: a set of thousands (a key rotated often, kept for its refresh tokens' lifetime; or a
 * hostile endpoint's 1 MiB of keys) imported whole on every fetch would hold the event loop for
 * hundreds of milliseconds, once per cooldown when tokens name unknown kids.
 */
export class KeySet {
  private readonly imported = new Map<string, VerificationKey | null>();

  constructor(private readonly candidates: ReadonlyMap<string, readonly Candidate[]>) {}

  /** Whether the set names `kid` with a key of an accepted algorithm (not imported). */
  names(kid: string): boolean {
    return this.candidates.has(kid);
  }

  kids(): IterableIterator<string> {
    return this.candidates.keys();
  }

  /** The key for `kid`: of the keys the set gives it, the first that imports. */
  get(kid: string): VerificationKey | undefined {
    const candidates = this.candidates.get(kid);
    if (candidates === undefined) return undefined;
    let key = this.imported.get(kid);
    if (key === undefined) {
      key = null;
      for (const candidate of candidates) {
        key = imported(candidate) ?? null;
        if (key !== null) break;
      }
      this.imported.set(kid, key);
    }
    return key ?? undefined;
  }
}

/**
 * The usable keys of a JWKS document, by kid. A key is skipped (not an error: a set may hold
 * keys for other uses) when it has no kid, is not for signatures, holds private members, is of
 * no allowed algorithm, or does not import. A kid given twice keeps its first such key.
 */
export function keysOf(document: unknown, allowed: ReadonlySet<Algorithm>): KeySet | undefined {
  if (typeof document !== "object" || document === null || !Array.isArray((document as { keys?: unknown }).keys)) return undefined;
  const out = new Map<string, Candidate[]>();
  for (const jwk of (document as { keys: unknown[] }).keys) {
    const candidate = candidateKey(jwk, allowed);
    if (candidate) {
      const same = out.get(candidate.kid);
      if (same) same.push(candidate);
      else out.set(candidate.kid, [candidate]);
    }
  }
  return new KeySet(out);
}

function candidateKey(jwk: unknown, allowed: ReadonlySet<Algorithm>): Candidate | undefined {
  if (typeof jwk !== "object" || jwk === null) return undefined;
  const k = jwk as Record<string, unknown>;
  if (typeof k.kid !== "string" || k.kid === "") return undefined;
  if (k.use !== undefined && k.use !== "sig") return undefined;
  if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.includes("verify"))) return undefined;
  if ("d" in k) return undefined;
  const candidates: Algorithm[] = k.alg !== undefined ? (isAlgorithm(k.alg) ? [k.alg] : []) : impliedAlgorithms(k);
  const algorithms = new Set(candidates.filter((a) => allowed.has(a) && curves[a].kty === k.kty && curves[a].crv === k.crv));
  if (algorithms.size === 0) return undefined;
  return { jwk: k, kid: k.kid, algorithms };
}

function imported({ jwk: k, kid, algorithms }: Candidate): VerificationKey | undefined {
  let keyObject: KeyObject;
  try {
    const publicMembers = k.kty === "OKP" ? { kty: k.kty, crv: k.crv, x: k.x } : { kty: k.kty, crv: k.crv, x: k.x, y: k.y };
    keyObject = createPublicKey({ key: publicMembers as never, format: "jwk" });
  } catch {
    return undefined;
  }
  return {
    kid,
    algorithms,
    verify(alg, data, signature) {
      const curve = curves[alg];
      if (signature.length !== curve.signatureLength) return false;
      return curve.digest === null
        ? verify(null, data, keyObject, signature)
        : verify(curve.digest, data, { key: keyObject, dsaEncoding: "ieee-p1363" }, signature);
    },
  };
}

/** Without `alg`, the algorithms a key's curve implies. */
function impliedAlgorithms(k: Record<string, unknown>): Algorithm[] {
  return (Object.keys(curves) as Algorithm[]).filter((a) => curves[a].kty === k.kty && curves[a].crv === k.crv);
}
