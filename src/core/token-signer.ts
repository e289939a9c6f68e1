// Signs a JWT as JWS compact serialization with node:crypto, on the event loop: the signing half
// of token-verifier.ts. jose's SignJWT signs through WebCrypto, which Node runs on libuv's pool,
// the threads that hash passwords (at a lower CPU priority, TESSERA_HASH_NICE): a login's, a
// refresh's or a token exchange's signature would wait behind a flood's hashes, and each one
// cost about three times the CPU of a direct call (an Ed25519 signature: ~60 us against ~180 us
// here). The bytes are jose's: the same header and payload JSON, base64url without padding
// (pinned by test/core/token-signer.test.ts against SignJWT).
import { createHmac, sign } from "node:crypto";
import type { CryptoKey } from "jose";
import { keyObjectOf } from "./token-verifier.js";

/** What signing needs of a key. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: "EdDSA" | "ES256" | "HS256";
  readonly privateKey: CryptoKey | Uint8Array;
}

/** `claims` signed with `key`, header `{alg, kid, typ: "JWT"}`. */
export function signJwt(key: SigningKey, claims: Record<string, unknown>): string {
  const header = Buffer.from(JSON.stringify({ alg: key.alg, kid: key.kid, typ: "JWT" })).toString("base64url");
  const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
  const signingInput = `${header}.${payload}`;
  const data = Buffer.from(signingInput, "ascii");
  const object = keyObjectOf(key.privateKey);
  let signature: Buffer;
  switch (key.alg) {
    case "EdDSA":
      signature = sign(null, data, object);
      break;
    case "ES256":
      signature = sign("sha256", data, { key: object, dsaEncoding: "ieee-p1363" });
      break;
    case "HS256":
      signature = createHmac("sha256", object).update(data).digest();
      break;
  }
  return `${signingInput}.${signature.toString("base64url")}`;
}
