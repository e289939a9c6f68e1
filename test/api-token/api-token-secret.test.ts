// The token format of api_token.proto: `tsr_` + 32 base62 random characters + 6 base62 CRC-32
// checksum characters.
import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import fc from "fast-check";
import {
  API_TOKEN_LENGTH,
  apiTokenChecksum,
  generateApiTokenSecret,
  isWellFormedApiToken,
} from "../../src/core/api-token-secret.js";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

describe("API token secret format", () => {
  it("is tsr_ + 32 base62 random characters + 6 base62 checksum characters", () => {
    const secret = generateApiTokenSecret();
    assert.equal(secret.length, 42);
    assert.equal(API_TOKEN_LENGTH, 42);
    assert.match(secret, /^tsr_[0-9A-Za-z]{38}$/);
    assert.ok(isWellFormedApiToken(secret));
  });

  it("the checksum is CRC-32 of the random part, as 6 zero-padded base62 digits", () => {
    const random = "0123456789abcdefghijABCDEFGHIJxy";
    let n = crc32(random);
    let expected = "";
    for (let i = 0; i < 6; i++) {
      expected = BASE62[n % 62] + expected;
      n = Math.floor(n / 62);
    }
    assert.equal(apiTokenChecksum(random), expected);
    assert.ok(isWellFormedApiToken(`tsr_${random}${expected}`));
  });

  it("carries at least 128 bits of randomness: 1000 secrets are distinct and use the whole alphabet evenly", () => {
    // 32 characters of 62 = 190 bits. A cheap sanity check of the generator: no repeats, every
    // character appears, and no character is wildly over-represented (modulo bias would show).
    const secrets = Array.from({ length: 1000 }, generateApiTokenSecret);
    assert.equal(new Set(secrets).size, 1000);
    const counts = new Map<string, number>();
    for (const s of secrets) for (const ch of s.slice(4, 36)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    assert.equal(counts.size, 62);
    const mean = 32000 / 62;
    for (const [ch, c] of counts) assert.ok(Math.abs(c - mean) < mean * 0.3, `character ${ch}: ${c} (mean ${mean.toFixed(0)})`);
  });

  it("refuses any single-character change (CRC-32 catches every substitution)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 41 }), fc.constantFrom(...BASE62), (pos, ch) => {
        const secret = generateApiTokenSecret();
        fc.pre(secret[pos] !== ch);
        const broken = secret.slice(0, pos) + ch + secret.slice(pos + 1);
        return !isWellFormedApiToken(broken);
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses wrong prefix, truncation, extension, swapped neighbours and non-base62 characters", () => {
    const secret = generateApiTokenSecret();
    const swapAt = [...Array(35).keys()].slice(4).find((i) => secret[i] !== secret[i + 1])!;
    const swapped = secret.slice(0, swapAt) + secret[swapAt + 1] + secret[swapAt] + secret.slice(swapAt + 2);
    for (const bad of [
      "",
      "tsr_",
      secret.slice(0, -1),
      secret + "0",
      "tsx_" + secret.slice(4),
      "TSR_" + secret.slice(4),
      swapped,
      secret.slice(0, 10) + "-" + secret.slice(11),
      secret.slice(0, 10) + "é" + secret.slice(11),
      ` ${secret}`,
    ]) {
      assert.equal(isWellFormedApiToken(bad), false, JSON.stringify(bad));
    }
  });

  it("accepts any random part with its checksum (property)", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...BASE62), minLength: 32, maxLength: 32 }), (random) =>
        isWellFormedApiToken(`tsr_${random}${apiTokenChecksum(random)}`),
      ),
    );
  });
});
