// Guesses at one account spread over the spellings of its login and over the password logins of
// every API count in one window: each spelling that logs in to the account (the right password
// succeeds with it) is the same login to login protection (core/users.ts authenticate: the
// throttle's key is the key the account is looked up by, core/login-name.ts loginKey). The
// spellings are made by fast-check from an email login, piece by piece: letter case, full-width
// forms, the Kelvin sign for K, long s, dotless i, ß and ẞ for "ss", the ﬀ ligature, a final
// sigma, a decomposed ë, one of the four normalization forms over the whole, zero-width and other
// default-ignorable characters between the pieces, white space around it. The account is made by
// seed 000's sign-up (an email) or seed 004's (a user name that is an email); each spelling logs
// in to it on seed 000 (POST /session), seed 002 (POST /auth/login, HTTP Basic) and seed 004
// (GET /jwt/token), and the limit's worth of failures, one spelling and one API after another,
// locks it for every spelling on every API. Spellings that are another login (what the account
// lookup does not fold: plus-addressing, a domain's trailing dot or punycode form, İ, whose
// lower case is i and a combining dot) do not log in to it, and count apart.
import assert from "node:assert/strict";
import fc from "fast-check";
import { expectCode, expectOk } from "../support/api.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { password, uniqueName } from "../support/users.js";
import { expectRetryLater, loginApi, transports, wrongPassword, type LoginApi } from "./api.js";

const locked = "too many failed logins; try again later";
const invalidLogin = "invalid login or password";
/** A login's window; an address's is four times as many, which these failures stay under. */
const maxFailures = 6;

/** A character's full-width form (U+FF01..U+FF5E), as a keyboard in full-width mode types it. */
const fullWidth = (c: string) => String.fromCodePoint(c.codePointAt(0)! + 0xfee0);

/** Spellings of one piece of the login that NFKC and case folding make that piece again. */
function alternatives(piece: string): string[] {
  switch (piece) {
    case "\u00eb": // ë: precomposed, decomposed, in either case
      return ["\u00eb", "\u00cb", "e\u0308", "E\u0308"];
    case "\u03c3": // σ: capital, final form
      return ["\u03c3", "\u03a3", "\u03c2"];
    case "ss":
      return ["ss", "SS", "Ss", "\u00df", "\u1e9e", "\u017fs", "s\u017f", fullWidth("s") + fullWidth("S")];
    case "ff":
      return ["ff", "FF", "\ufb00"]; // ﬀ
    case "k":
      return ["k", "K", "\u212a", fullWidth("k"), fullWidth("K")]; // KELVIN SIGN
    case "i":
      return ["i", "I", "\u0131", fullWidth("i"), fullWidth("I")]; // dotless ı, whose capital is I
    default:
      return [...new Set([piece, piece.toUpperCase(), fullWidth(piece), fullWidth(piece.toUpperCase())])];
  }
}

/** An email login as the pieces its spellings are made of. */
function pieces(tag: string): string[] {
  return ["z", "o", "\u00eb", "\u03c3", ".", "k", "i", "ss", ".", "o", "ff", ...tag, "@", ..."example", ".", ..."com"];
}

const ignorables = ["\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\u034f", "\ufe0f", "\u3164"];
const spaces = ["", " ", "\u00a0", "\u2003", "\u3000", "\ufeff"];
const forms = [undefined, "NFC", "NFD", "NFKC", "NFKD"] as const;

/** One spelling of the login `pieces(tag)`, as choices fast-check makes. */
interface Spelling {
  choices: number[];
  inserted: Array<[number, string]>;
  before: string;
  after: string;
  form: (typeof forms)[number];
}

const tagLength = uniqueName("").length - 1;
const spellingArb: fc.Arbitrary<Spelling> = fc.record({
  choices: fc.array(fc.nat(), { minLength: pieces("0".repeat(tagLength)).length, maxLength: pieces("0".repeat(tagLength)).length }),
  inserted: fc.array(fc.tuple(fc.nat(), fc.constantFrom(...ignorables)), { maxLength: 3 }),
  before: fc.constantFrom(...spaces),
  after: fc.constantFrom(...spaces),
  form: fc.constantFrom(...forms),
});

function spell(tag: string, s: Spelling): string {
  const parts = pieces(tag).map((piece, i) => {
    const alts = alternatives(piece);
    return alts[s.choices[i]! % alts.length]!;
  });
  for (const [at, c] of s.inserted) parts.splice(1 + (at % (parts.length - 1)), 0, c);
  const text = parts.join("");
  return `${s.before}${s.form === undefined ? text : text.normalize(s.form)}${s.after}`;
}

type Origin = "seed 000 sign-up (email)" | "seed 004 sign-up (user name)";

/** The password logins of seeds 000, 002 and 004, each by the login as given. */
const logins: Array<[string, (api: LoginApi, login: string, pass: string) => ReturnType<LoginApi["logIn"]>]> = [
  ["POST /session", (api, login, pass) => api.logIn(login, pass)],
  ["POST /auth/login", (api, login, pass) => api.basicLogin(login, pass)],
  ["GET /jwt/token", (api, login, pass) => api.jwtToken(login, pass)],
];

for (const store of storesUnderTest()) {
  for (const transport of transports) {
    describe(`login protection: one window per account, whatever the spelling and API (${store}, ${transport})`, function () {
      this.timeout(120_000);
      let server: TestServer;
      let api: LoginApi;
      before(async () => {
        server = await startTestServer({ store, env: { TESSERA_LOGIN_MAX_FAILURES: String(maxFailures) } });
        api = loginApi(transport, server.url);
      });
      after(async () => {
        api?.close();
        await server?.close();
      });

      it(`every spelling logs in on seeds 000, 002 and 004, and ${maxFailures} failures over spellings and APIs lock the account for all of them`, async () => {
        const origins: Origin[] = ["seed 000 sign-up (email)", "seed 004 sign-up (user name)"];
        await fc.assert(
          fc.asyncProperty(fc.constantFrom(...origins), fc.array(spellingArb, { minLength: maxFailures, maxLength: maxFailures }), async (origin, spellings) => {
            const tag = uniqueName("").slice(1);
            const login = pieces(tag).join("");
            if (origin === "seed 000 sign-up (email)") expectOk(await api.signUp(login, password), 201);
            else expectOk(await api.createJwtUser(login, password), 201);
            const variants = spellings.map((s) => spell(tag, s));
            // Each spelling reaches the account, on every API.
            for (const variant of variants) {
              for (const [name, attempt] of logins) {
                const o = await attempt(api, variant, password);
                assert.equal(o.code, "ok", `${name} by ${JSON.stringify(variant)}: ${o.message}`);
                expectOk(o);
              }
            }
            // One failure fewer than the limit, each by another spelling and API: not locked yet.
            for (const [i, variant] of variants.slice(1).entries()) {
              expectCode(await logins[i % logins.length]![1](api, variant, wrongPassword), "unauthenticated", invalidLogin, "INVALID_CREDENTIALS");
            }
            expectOk(await api.logIn(login, password));
            // The last one locks the account, by every spelling and on every API.
            expectCode(await logins[2]![1](api, variants[0]!, wrongPassword), "unauthenticated", invalidLogin, "INVALID_CREDENTIALS");
            for (const variant of [login, ...variants]) {
              for (const [, attempt] of logins) expectRetryLater(await attempt(api, variant, password), "resource_exhausted", locked, "LOGIN_LOCKED");
            }
          }),
          { numRuns: 4 },
        );
      });

      it("spellings that name another login (plus-addressing, a trailing dot, the domain in punycode, a dotted capital İ) do not log in to the account, nor count in its window", async () => {
        const tag = uniqueName("").slice(1);
        const email = `iada${tag}@b\u00fccher.example`;
        expectOk(await api.signUp(email, password), 201);
        const others = [`iada${tag}+x@b\u00fccher.example`, `${email}.`, `iada${tag}@xn--bcher-kva.example`, `\u0130ada${tag}@b\u00fccher.example`];
        for (const other of others) {
          for (const [name, attempt] of logins) {
            const o = await attempt(api, other, password);
            assert.equal(o.code, "unauthenticated", `${name} by ${JSON.stringify(other)}: ${o.message}`);
            expectCode(o, "unauthenticated", invalidLogin, "INVALID_CREDENTIALS");
          }
        }
        for (const [, attempt] of logins) expectOk(await attempt(api, email, password));
      });
    });
  }
}
