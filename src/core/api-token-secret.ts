// The API token secret: `tsr_` + 32 base62 characters of randomness + 6 base62 characters of
// CRC-32 checksum. The prefix lets secret scanners (and people) recognise a leaked token; the
// checksum lets Authenticate refuse a mistyped, truncated or made-up token without a store
// lookup, so garbage costs neither a database round trip nor a cache slot.
//
// 32 base62 characters hold 32 * log2(62) ≈ 190 bits of randomness, well above the 128 bits
// that make guessing hopeless. The checksum is not a secret and adds no security: it is there to
// catch accidents cheaply (and lets anyone validate a token's shape offline, as GitHub's do).
import { randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";

export const API_TOKEN_PREFIX = "tsr_";
const RANDOM_CHARS = 32;
const CHECKSUM_CHARS = 6;
/** Total length of a token secret: 42 characters. */
export const API_TOKEN_LENGTH = API_TOKEN_PREFIX.length + RANDOM_CHARS + CHECKSUM_CHARS;

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SHAPE = /^tsr_[0-9A-Za-z]{38}$/;

/** `value` (an unsigned 32-bit number) as exactly 6 base62 digits, zero-padded (62^6 > 2^32). */
function base62Checksum(value: number): string {
  let n = value >>> 0;
  let out = "";
  for (let i = 0; i < CHECKSUM_CHARS; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** The checksum of a token's random part: CRC-32 (IEEE) of its ASCII bytes, base62. */
export function apiTokenChecksum(randomPart: string): string {
  return base62Checksum(crc32(randomPart));
}

/** `count` uniformly distributed base62 characters (rejection sampling: no modulo bias). */
function randomBase62(count: number): string {
  let out = "";
  while (out.length < count) {
    for (const b of randomBytes(count * 2)) {
      // 248 = 4 * 62: bytes at or above it would favour the first 8 characters.
      if (b < 248) out += ALPHABET[b % 62];
      if (out.length === count) break;
    }
  }
  return out;
}

/** A new token secret. */
export function generateApiTokenSecret(): string {
  const random = randomBase62(RANDOM_CHARS);
  return API_TOKEN_PREFIX + random + apiTokenChecksum(random);
}

/**
 * True when `secret` has the token shape and a correct checksum. Pure and cheap: it is called
 * before anything else on the hot path, so a bad token never reaches the cache or the store.
 */
export function isWellFormedApiToken(secret: string): boolean {
  if (secret.length !== API_TOKEN_LENGTH || !SHAPE.test(secret)) return false;
  const random = secret.slice(API_TOKEN_PREFIX.length, API_TOKEN_PREFIX.length + RANDOM_CHARS);
  return apiTokenChecksum(random) === secret.slice(API_TOKEN_PREFIX.length + RANDOM_CHARS);
}
