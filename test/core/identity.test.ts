// Unit tests of the identity core (no server): password policy, login normalisation, argon2id
// rehash, signing keys (algorithms, refused headers, shared keys, rotation), login throttle.
import assert from "node:assert/strict";
import { base64url, decodeProtectedHeader, SignJWT } from "jose";
import { loadConfig, type Config } from "../../src/config.js";
import { ManualClock } from "../../src/core/clock.js";
import { AuthError } from "../../src/core/errors.js";
import { createCore } from "../../src/core/index.js";
import { KeyRing, type KeysConfig } from "../../src/core/key-ring.js";
import { TokenVerifier } from "../../src/core/token-verifier.js";
import { checkPassword } from "../../src/core/password-policy.js";
import { Passwords } from "../../src/core/passwords.js";
import { parseLogin, parseNewLogin } from "../../src/core/login-name.js";
import { silentLogger } from "../../src/logger.js";
import type { Store } from "../../src/store/ports.js";
import { openTestStore, type OpenedStore } from "../support/store.js";
import { password } from "../support/users.js";

/** The key ring with a verifier beside it, as the core builds them. */
async function openKeys(deps: { store: Store; config: KeysConfig; clock: ManualClock; logger: typeof silentLogger }) {
  const ring = await KeyRing.open({ keys: deps.store.keys, config: deps.config, clock: deps.clock, logger: deps.logger });
  const verifier = new TokenVerifier({ ring, clock: deps.clock });
  return {
    sign: ring.sign.bind(ring),
    jwks: ring.jwks.bind(ring),
    publicKeyPem: ring.publicKeyPem.bind(ring),
    rotate: ring.rotate.bind(ring),
    verify: verifier.verify.bind(verifier),
  };
}

const cheap = { TESSERA_ARGON2_MEMORY_KIB: "1024", TESSERA_ARGON2_ITERATIONS: "1", TESSERA_CLIENT_IDS: "c" };

function rejects(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof AuthError && e.code === code && message.test(e.message));
}

async function rejectsAsync(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof AuthError && e.code === code && message.test(e.message));
}

describe("core: password policy", () => {
  const login = "ada.lovelace@example.com";

  it("names the rule broken", () => {
    rejects(() => checkPassword("1234567", login), "invalid_argument", /too short/);
    rejects(() => checkPassword("é".repeat(257), login), "invalid_argument", /too long/);
    rejects(() => checkPassword("iloveyou", login), "invalid_argument", /too common/);
    rejects(() => checkPassword("BASEBALL", login), "invalid_argument", /too common/);
    checkPassword(password, login);
    checkPassword("😀😀😀😀😀😀😀😀", login); // 8 code points
    checkPassword("é".repeat(256), login);
  });

  it("judges a password in the form logins are compared by, control characters left out", () => {
    rejects(() => checkPassword(" ".repeat(8), login), "invalid_argument", /only white space/);
    rejects(() => checkPassword("\u0000".repeat(8), login), "invalid_argument", /only white space/);
    rejects(() => checkPassword("\u200b".repeat(8), login), "invalid_argument", /only white space/);
    rejects(() => checkPassword("x       ", login), "invalid_argument", /too short: .* not counting white space/);
    rejects(() => checkPassword("ab\u0000\u0000\u0000\u0000cd", login), "invalid_argument", /too short: .* not counting white space/);
    rejects(() => checkPassword(" password1 ", login), "invalid_argument", /too common/);
    rejects(() => checkPassword("password1\u0000", login), "invalid_argument", /too common/);
    rejects(() => checkPassword("pass\u200bword1", login), "invalid_argument", /too common/);
    rejects(() => checkPassword("\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff11", login), "invalid_argument", /too common/);
    // Spaces within a passphrase count (one per run).
    checkPassword("a b c d e", login);
  });

  it("refuses a password holding a control, invisible (default-ignorable), unassigned or private-use code point, once the rules above let it through (RFC 8265 OpaqueString)", () => {
    rejects(() => checkPassword(`${password}\u0000`, login), "invalid_argument", /^password must not contain control characters$/);
    for (const c of ["\u200b", "\u00ad", "\ufe0f", "\u200d", "\u0378", "\ufdd0", "\u{10ffff}"]) {
      rejects(() => checkPassword(`${password}${c}`, login), "invalid_argument", /^password must not contain invisible \(zero-width, default-ignorable\) characters or unassigned code points$/);
    }
    for (const c of ["\ue000", "\u{f0000}"]) rejects(() => checkPassword(`${password}${c}`, login), "invalid_argument", /^password must not contain private-use characters$/);
    rejects(() => checkPassword("pass\u200bword1", login), "invalid_argument", /too common/);
    checkPassword(`${password} \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645`, login); // Persian می‌خواهم: a ZWNJ its script needs
  });

  it("refuses a password holding what else RFC 8264 disallows in FreeformClass: DISALLOWED Exceptions, old Hangul jamo, Zl, Zp, non-ignorable Cf, CONTEXTO out of context", () => {
    const refused = /^password must not contain characters that RFC 8265 disallows \(tatweel, conjoining Hangul jamo, format characters, line separators, \.\.\.\), nor a middle dot, keraia, geresh or Arabic-Indic digit out of its context$/;
    const disallowed = ["\u0640", "\u07fa", "\u302e", "\u302f", "\u3031", "\u3032", "\u3033", "\u3034", "\u3035", "\u303b", "\u1100", "\u115e", "\u1161", "\u11a7", "\u11a8", "\u11ff", "\ua960", "\ua97c", "\ud7b0", "\ud7c6", "\ud7cb", "\ud7fb", "\u2028", "\u2029"];
    const format = ["\u0600", "\u0601", "\u0602", "\u0603", "\u0604", "\u0605", "\u06dd", "\u070f", "\u0890", "\u0891", "\u08e2", "\ufff9", "\ufffa", "\ufffb", "\u{110bd}", "\u{110cd}", "\u{13430}", "\u{1343f}"];
    for (const c of [...disallowed, ...format]) rejects(() => checkPassword(`${password} a${c}`, login), "invalid_argument", refused);
    const outOfContext = ["a\u00b7b", "l\u00b7", "\u00b7l", "L\u00b7L", "l\u0301\u00b7l", "a\u0375", "\u0375a", "\u0375\u0301", "a\u05f3", "\u05f3", "a\u05f4", "a\u30fbb", "\u30fb\u30fc", "\u0661\u06f1", "\u06f1x\u0669"];
    for (const text of outOfContext) rejects(() => checkPassword(`${password} ${text}`, login), "invalid_argument", refused);
    const inContext = ["col\u00b7legi", "\u0375\u03b1", "\u0375\u0391", "\u05d2\u05f3", "\u05e6\u05d4\u05f4\u05dc", "\u30c8\u30e0\u30fb\u30bd", "\u3072\u30fb", "\u30fb\u5c71", "\u0661\u0662 0", "\u06f1\u06f2 0"];
    for (const text of inContext) checkPassword(`${password} ${text}`, login);
    // The form checked is NFC (decomposed modern Hangul is its syllables); what FreeformClass takes stays.
    checkPassword(`${password} \u1112\u1161\u11ab`, login);
    checkPassword(`${password} !"#$%&'()*+,-./:;<=>?@[\\]^_\`{|}~ \u00a7\u00b6\u20ac\u2022\u2219\u3001\u060c\uff65\u00a0\u3000\u{1f600}`, login);
  });

  it("refuses the login, or an email login's local part", () => {
    for (const pw of [login, " ADA.Lovelace@Example.com", "ada.lovelace", "\uff41da.lovelace", "ada.lovelace\u0000"]) {
      rejects(() => checkPassword(pw, login), "invalid_argument", /must not be the login/);
    }
    rejects(() => checkPassword("Ada Lovelace", "ada  lovelace"), "invalid_argument", /must not be the login/);
    checkPassword("example.com", login);
    checkPassword("ada.lovelace1", login);
  });
});

describe("core: parseLogin", () => {
  const spelling = (raw: string, kind: "email" | "name") => parseLogin(raw, kind).spelling;
  const key = (raw: string, kind: "email" | "name") => parseLogin(raw, kind).key;

  it("spells a login trimmed and NFC, emails lower-cased, and refuses malformed ones", () => {
    assert.equal(spelling("  Ann@Example.COM ", "email"), "ann@example.com");
    assert.equal(spelling("Jose\u0301@example.com", "email"), "jos\u00e9@example.com");
    assert.equal(spelling(" Jose\u0301 ", "name"), "Jos\u00e9");
    for (const bad of ["", "a", "a@b", "a b@c.d", "@example.com", "a@@example.com", `${"x".repeat(65)}@example.com`]) {
      rejects(() => parseLogin(bad, "email"), "invalid_argument", /email/);
    }
    rejects(() => parseLogin("  ", "name"), "invalid_argument", /required/);
  });

  it("keys a login by NFKC and case folding: look-alikes share one key, the spelling stays", () => {
    assert.deepEqual(parseLogin("\uff41da@example.com", "email"), { spelling: "\uff41da@example.com", key: "ada@example.com" });
    // A full-width at sign or dot: an email by its key, as it is compared.
    assert.deepEqual(parseLogin("ada\uff20example\uff0ecom", "email"), { spelling: "ada\uff20example\uff0ecom", key: "ada@example.com" });
    rejects(() => parseLogin("ada\uff20\uff20example.com", "email"), "invalid_argument", /email/);
    // Its spelling is held to the size limits as well: zero-width characters are not in its key.
    rejects(() => parseLogin(`ada${"\u200b".repeat(300)}\uff20example.com`, "email"), "invalid_argument", /email/);
    assert.equal(key("ADA@EXAMPLE.COM", "email"), key("ada@example.com", "email"));
    assert.deepEqual(parseLogin("Stra\u00dfe", "name"), { spelling: "Stra\u00dfe", key: "strasse" });
    assert.equal(key("STRASSE", "name"), "strasse");
    assert.equal(key("\u2168", "name"), key("ix", "name")); // ROMAN NUMERAL NINE
    assert.equal(key("\ufb01le", "name"), key("FILE", "name")); // fi ligature
    assert.equal(key("a\u200bda", "name"), key("ada", "name")); // zero width space is ignorable
    assert.equal(key("\u0391\u0394\u0391", "name"), key("\u03b1\u03b4\u03b1", "name")); // Greek upper/lower
    assert.notEqual(key("ada", "name"), key("\u0430da", "name")); // Cyrillic a is another letter, not a compatibility form
  });

  it("refuses control characters, bidi controls and lone surrogates, naming the field", () => {
    for (const raw of ["a\u0000b@example.com", "a\u0007@example.com", "a\u0085b@example.com", "\u202eada@example.com", "ada\u2066@example.com", "a\u200fb@example.com", "a\ud800b@example.com", "a\u061cb@example.com"]) {
      assert.throws(() => parseLogin(raw, "email"), (e: unknown) => e instanceof AuthError && e.code === "invalid_argument" && e.message === "email must not contain control characters or bidirectional formatting characters" && e.fieldViolations[0]?.field === "email", JSON.stringify(raw));
    }
    assert.throws(() => parseLogin("a\u0000b", "name"), (e: unknown) => e instanceof AuthError && e.message.startsWith("user must not") && e.fieldViolations[0]?.field === "user");
    assert.throws(
      () => parseLogin("a\u0000b", "email", { field: "authorization", label: "the Basic login" }),
      (e: unknown) => e instanceof AuthError && e.message.startsWith("the Basic login must not") && e.fieldViolations[0]?.field === "authorization",
    );
  });

  // The rules a new password is held to besides (core: password policy), applied as RFC 8265's
  // UsernameCaseMapped applies them: width forms mapped, lower-cased, NFC.
  it("a new login: refuses what RFC 8264 disallows besides, judged width-mapped and lower-cased, over the whole login", () => {
    const refused = (raw: string, kind: "email" | "name") =>
      rejects(() => parseNewLogin(raw, kind), "invalid_argument", /^(user|email) must not contain characters that RFC 8265 disallows \(tatweel, .*out of its context$/);
    for (const name of ["a\u0640b", "\u1140\u1161", "a\u2028b", "a\u0600b", "a\u00b7b", "a\uff65b", "\u30fb\uff70", "\u0661\u06f1"]) refused(name, "name");
    for (const email of ["a\u00b7b@example.com", "\u0661@\u06f1.example", "a\u0375@example.com"]) refused(email, "email");
    // COL·LEGI is col·legi; a full-width ｌ is l; U+FF65 is U+30FB, taken beside katakana.
    for (const name of ["COL\u00b7LEGI", "\uff4c\u00b7\uff4c", "\u30a2\uff65\u30a4", "\u1112\u1161\u11ab", "a+b!", "\u00a7\u20ac"]) parseNewLogin(name, "name");
    // Katakana or Han anywhere in an email counts, its domain too; so do Arabic-Indic digits (each
    // part holding them starts with an Arabic letter, as the Bidi Rule asks).
    for (const email of ["col\u00b7legi@example.cat", "\u30fb@\u4f8b\u3048.example", "\u0628\u0661@\u0628\u0662.example"]) parseNewLogin(email, "email");
  });

  // Text too long to be a login is refused before it is normalized (normal-length.ts): what is
  // taken at the limits, typed as long as it can be (each character decomposed into 4 code
  // points, U+1F82 GREEK SMALL LETTER ALPHA WITH PSILI AND VARIA AND YPOGEGRAMMENI), still is.
  it("the longest login typed decomposed: taken; one character more: too long, as before", () => {
    const alpha = "\u1f82".normalize("NFD");
    assert.equal([...alpha].length, 4);
    assert.equal(parseNewLogin(alpha.repeat(256), "name").spelling, "\u1f82".repeat(256));
    rejects(() => parseNewLogin(alpha.repeat(257), "name"), "invalid_argument", /^user name too long: at most 256 characters$/);
    const email = (local: number, domain: number) => `${alpha.repeat(local)}@${alpha.repeat(domain)}.example`;
    // 254 characters once NFC: the most an email may have.
    assert.equal(parseNewLogin(email(64, 181), "email").spelling, email(64, 181).normalize("NFC"));
    rejects(() => parseNewLogin(email(64, 182), "email"), "invalid_argument", /^email is not a valid email address$/);
  });
});

describe("core: passwords", () => {
  it("hashes with argon2id, verifies, and asks for a rehash when the cost changes", async () => {
    const p = new Passwords({ memoryKib: 1024, iterations: 1, parallelism: 1 });
    const h = await p.hash(password);
    assert.match(h, /^\$argon2id\$/);
    assert.equal(await p.verify(h, password), true);
    assert.equal(await p.verify(h, "wrong"), false);
    assert.equal(await p.verify("not a hash", "x"), false);
    assert.equal(p.needsRehash(h), false);
    assert.equal(new Passwords({ memoryKib: 2048, iterations: 1, parallelism: 1 }).needsRehash(h), true);
    await p.verifyDummy("anything");
  });

  // A password is compared in its prepared form, however it is typed: the longest one that can
  // be set, typed with each character decomposed (4 code points each: 1024), still logs in.
  it("the longest password typed decomposed verifies against its hash", async () => {
    const p = new Passwords({ memoryKib: 1024, iterations: 1, parallelism: 1 });
    const longest = "\u1f82".repeat(256);
    checkPassword(longest, "ada@example.com");
    const h = await p.hash(longest);
    assert.deepEqual(await p.check(h, longest.normalize("NFD")), { ok: true, rehash: false });
    assert.equal(await p.verify(h, `${longest.normalize("NFD")}\u0345`), false);
  });
});

describe("core: users, keys and throttle on SQLite", () => {
  let opened: OpenedStore;
  let store: Store;
  const clock = new ManualClock(Date.now());
  const config = (env: Record<string, string> = {}): Config => loadConfig({ ...cheap, ...env });

  beforeEach(async () => {
    opened = await openTestStore("sqlite");
    store = opened.store;
  });
  afterEach(() => opened.close());

  it("rehashes on login when the argon2 parameters changed", async () => {
    const core1 = await createCore({ config: config(), store, clock, logger: silentLogger });
    const u = await core1.users.create({ login: "a@example.com", kind: "email", password, clientAddress: "addr" });
    const core2 = await createCore({ config: config({ TESSERA_ARGON2_MEMORY_KIB: "2048" }), store, clock, logger: silentLogger });
    await core2.users.authenticate("a@example.com", password, "email", "addr");
    const after = (await store.users.findById(u.id))!;
    assert.notEqual(after.passwordHash, u.passwordHash);
    assert.equal(core2.passwords.needsRehash(after.passwordHash), false);
    assert.equal(after.passwordChangedAt.getTime(), u.passwordChangedAt.getTime());
  });

  it("a deactivated user learns it only with the right password; deactivation ends sessions", async () => {
    const core = await createCore({ config: config(), store, clock, logger: silentLogger });
    const u = await core.users.create({ login: "b@example.com", kind: "email", password, clientAddress: "addr" });
    const pair = await core.sessions.start(u, "c");
    await core.users.deactivate(u.id);
    await rejectsAsync(core.users.authenticate("b@example.com", "wrong-password-1", "email", "addr"), "unauthenticated", /invalid login or password/);
    await rejectsAsync(core.users.authenticate("b@example.com", password, "email", "addr"), "permission_denied", /deactivated/);
    await rejectsAsync(core.sessions.verifyAccess(pair.accessToken, "c", false), "unauthenticated", /ended/);
  });

  it("two instances on one store agree on one signing key", async () => {
    const cfg = config();
    const [a, b] = await Promise.all([
      openKeys({ store, config: cfg, clock, logger: silentLogger }),
      openKeys({ store, config: cfg, clock, logger: silentLogger }),
    ]);
    assert.equal((await store.keys.list()).length, 2, "the signing key and the published next key");
    const token = await a.sign({ sub: "x" }, 60);
    assert.equal((await b.verify(token)).sub, "x");
    assert.deepEqual(await a.jwks(), await b.jwks());
  });

  it("two instances starting on an empty store: the one that stored the first key while the other promoted it adds no third key", async () => {
    // A stores the first key; B, starting meanwhile, finds it, promotes it and publishes the
    // next key; only then does A look again. A must find a key that signs, and stop.
    const cfg = config();
    let aInserted!: () => void;
    const inserted = new Promise<void>((resolve) => (aInserted = resolve));
    let bRotated!: () => void;
    const rotated = new Promise<void>((resolve) => (bRotated = resolve));
    const a: Store = {
      ...store,
      keys: {
        ...store.keys,
        insertGeneration: async (key) => {
          const r = await store.keys.insertGeneration(key);
          aInserted();
          await rotated;
          return r;
        },
      },
    };
    const b: Store = {
      ...store,
      keys: {
        ...store.keys,
        list: async () => {
          await inserted;
          return store.keys.list();
        },
        rotate: async (next, change) => {
          const won = await store.keys.rotate(next, change);
          bRotated();
          return won;
        },
      },
    };
    const [ka, kb] = await Promise.all([openKeys({ store: a, config: cfg, clock, logger: silentLogger }), openKeys({ store: b, config: cfg, clock, logger: silentLogger })]);
    const records = await store.keys.list();
    assert.deepEqual(
      records.map((r) => r.generation),
      [1, 2],
      "the signing key and the published next key",
    );
    assert.deepEqual(await ka.jwks(), await kb.jwks());
    assert.equal(decodeProtectedHeader(await ka.sign({ sub: "x" }, 60)).kid, records[0]!.kid);
  });

  it("refuses alg none, unknown kids, foreign keys and jku/jwk/x5u/x5c headers; checks exp, aud, iss", async () => {
    const keys = await openKeys({ store, config: config(), clock, logger: silentLogger });
    const good = await keys.sign({ sub: "x", aud: "c", iss: "tessera" }, 60);
    const kid = decodeProtectedHeader(good).kid!;
    const [, payload, sig] = good.split(".");
    const header = (h: object) => base64url.encode(JSON.stringify(h));
    await rejectsAsync(keys.verify(`${header({ alg: "none", kid })}.${payload}.`), "unauthenticated", /algorithm|malformed/);
    await rejectsAsync(keys.verify(`${header({ alg: "HS256", kid })}.${payload}.${sig}`), "unauthenticated", /algorithm/);
    await rejectsAsync(keys.verify(`${header({ alg: "EdDSA", kid: "nope" })}.${payload}.${sig}`), "unauthenticated", /unknown key/);
    for (const h of ["jku", "jwk", "x5u", "x5c"]) {
      await rejectsAsync(keys.verify(`${header({ alg: "EdDSA", kid, [h]: "x" })}.${payload}.${sig}`), "unauthenticated", new RegExp(h));
    }
    await rejectsAsync(keys.verify(`${good.slice(0, -4)}AAAA`), "unauthenticated", /signature|malformed/);
    const hs = await new SignJWT({ sub: "x", exp: 9999999999 }).setProtectedHeader({ alg: "HS256", kid }).sign(new TextEncoder().encode("x".repeat(32)));
    await rejectsAsync(keys.verify(hs), "unauthenticated", /algorithm/);
    assert.equal((await keys.verify(good, { audience: "c", issuer: "tessera" })).sub, "x");
    await rejectsAsync(keys.verify(good, { audience: "other" }), "unauthenticated", /audience/);
    await rejectsAsync(keys.verify(good, { issuer: "other" }), "unauthenticated", /issuer/);
    clock.advance(61_000);
    await rejectsAsync(keys.verify(good), "unauthenticated", /expired/);
    assert.equal((await keys.verify(good, { allowExpired: true })).sub, "x");
  });

  it("rotation: the old key verifies until notAfter, then leaves the JWKS", async () => {
    const cfg = config({ TESSERA_ACCESS_TOKEN_TTL_SECONDS: "60", TESSERA_REFRESH_TOKEN_TTL_SECONDS: "120", TESSERA_KEY_PUBLISH_SECONDS: "0" });
    const keys = await openKeys({ store, config: cfg, clock, logger: silentLogger });
    const old = await keys.sign({ sub: "x" }, 60);
    const kid = await keys.rotate();
    assert.notEqual(decodeProtectedHeader(old).kid, kid);
    assert.equal(decodeProtectedHeader(await keys.sign({}, 60)).kid, kid);
    const [next] = (await keys.jwks()).map((k) => k.kid);
    assert.equal((await keys.jwks()).length, 3, "the new next key, the promoted one and the retired one");
    assert.equal((await keys.verify(old)).sub, "x");
    clock.advance(151_000);
    assert.deepEqual((await keys.jwks()).map((k) => k.kid), [next, kid]);
    await rejectsAsync(keys.verify(old, { allowExpired: true }), "unauthenticated", /unknown key/);
  });

  it("ES256 and HS256 work too; HS256 has no JWKS and no PEM", async () => {
    const es = await openKeys({ store, config: config({ TESSERA_JWT_ALG: "ES256" }), clock, logger: silentLogger });
    const t = await es.sign({ sub: "e" }, 60);
    assert.equal(decodeProtectedHeader(t).alg, "ES256");
    assert.equal((await es.verify(t)).sub, "e");
    assert.match((await es.publicKeyPem())!, /BEGIN PUBLIC KEY/);
    const hs = await openKeys({ store, config: config({ TESSERA_JWT_ALG: "HS256", TESSERA_JWT_SECRET: "hs256-secret-0123456789abcdef-0123" }), clock, logger: silentLogger });
    const h = await hs.sign({ sub: "h" }, 60);
    assert.deepEqual(decodeProtectedHeader(h), { alg: "HS256", kid: "hs256", typ: "JWT" });
    assert.equal((await hs.verify(h)).sub, "h");
    assert.deepEqual(await hs.jwks(), []);
    await rejectsAsync(hs.publicKeyPem(), "not_found", /there is no public key/);
    await rejectsAsync(hs.rotate(), "failed_precondition", /HS256/);
  });

  it("the address limit (4x) locks out a spray over many logins", async () => {
    const core = await createCore({ config: config({ TESSERA_LOGIN_MAX_FAILURES: "2" }), store, clock, logger: silentLogger });
    for (let i = 0; i < 8; i++) {
      await rejectsAsync(core.users.authenticate(`spray${i}@example.com`, "wrong-password-1", "email", "10.0.0.1"), "unauthenticated", /invalid/);
    }
    await rejectsAsync(core.users.authenticate("fresh@example.com", "wrong-password-1", "email", "10.0.0.1"), "resource_exhausted", /too many/);
    await rejectsAsync(core.users.authenticate("fresh@example.com", "wrong-password-1", "email", "10.0.0.2"), "unauthenticated", /invalid/);
  });
});
