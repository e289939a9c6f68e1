// What a refused login's audit event records, and what a 404 quotes of a path, is looked through
// for a credential word by word and piece by piece (holdsCredential): a refused login may be as
// long as a request body. Each piece lost its outer dots to `/^\.+|\.+$/g`, time quadratic in a
// run of dots inside it; and each word and piece was tested against the configuration's secrets
// with a SHA-256 digest of its own. Both are linear now, digests only of text as long as a secret.
import { strict as assert } from "node:assert";
import { configuredSecret } from "../../src/config.js";
import { credentialShaped, holdsCredential, unquotable } from "../../src/credential-shapes.js";
import { within } from "../support/within.js";

/** Far above what each takes now (some 20 ms at most), below what each took (2 s or more). */
const limitMs = 1000;

const timed = <T>(what: string, run: () => T): T => within(limitMs, what, run);

const adminToken = "test-admin-token-0123456789abcdef";
const secrets = { adminToken, jwtSecret: undefined, keyEncryptionKey: undefined, keyEncryptionKeyPrevious: undefined };
const apiToken = `tsr_${"A1b2".repeat(9)}x9`;

describe("credential shapes in long text", () => {
  it("a letter, 64 Ki dots and a letter is looked through at once (3 s and more before)", () => {
    assert.equal(
      timed("holdsCredential", () => holdsCredential(`a${".".repeat(64 * 1024)}a`, credentialShaped)),
      false,
    );
  });

  it("a piece's outer dots are left out, and its parts between dots looked at, as before", () => {
    assert.equal(credentialShaped(apiToken), true);
    for (const text of [`...${apiToken}...`, `see ${apiToken}.`, `x.${apiToken}.y`, `(${apiToken})`, `..x.y..${apiToken}`]) {
      assert.equal(holdsCredential(text, credentialShaped), true, text);
    }
    for (const text of ["...", "a.b.c", `${apiToken}xy`, "...a..."]) assert.equal(holdsCredential(text, credentialShaped), false, text);
  });

  it("the configuration's secrets: text of a length none has is told apart without a digest (2 Mi tests: 2 s and more before)", () => {
    const isSecret = configuredSecret(secrets);
    const words = Array.from({ length: 64 }, (_, i) => `w${i}`.padEnd(adminToken.length - 1, "x"));
    timed("the tests", () => {
      for (let i = 0; i < 2 * 1024 * 1024; i++) if (isSecret(words[i % words.length]!)) assert.fail("a word taken for the secret");
    });
    assert.equal(isSecret(adminToken), true);
    assert.equal(isSecret(`${adminToken.slice(0, -1)}g`), false);
    assert.equal(isSecret(`${adminToken}x`), false);
    assert.equal(holdsCredential(`login:${adminToken}`, unquotable(isSecret)), true);
  });
});
