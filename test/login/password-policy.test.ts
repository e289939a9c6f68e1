// The password policy on every sign-up (POST /user, POST /jwt/user), over every transport: a
// password is judged in the form logins are compared by (NFKC and case folding, white space
// trimmed and collapsed, invisible and control characters left out), so white space or NULs
// alone, a common password padded or spelt in full-width look-alikes, and the account's own
// login (or an email login's local part) are 400 WEAK_PASSWORD naming the rule and the field.
// A new password that breaks none of those rules but holds a control character, or an invisible
// (default-ignorable), unassigned or private-use code point, or another one RFC 8264 disallows
// in FreeformClass (a tatweel, a conjoining Hangul jamo, a line separator, a format character, a
// middle dot out of its context...), is 400 INVALID_FIELD (RFC 8265's OpaqueString refuses them),
// on a sign-up and a change alike.
// The password is hashed with its white space kept (only its RFC 8265 form is taken:
// password-forms.test.ts), and logins never apply the policy: an account whose password
// the policy now refuses still logs in on every API. (Password changes: test/jwt/jwt-api.test.ts.)
import { randomBytes } from "node:crypto";
import { expectCode, expectFieldRefused, expectOk, expectWeakPassword, type Outcome } from "../support/api.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { fullWidthCommon, password, storedAccount, uniqueEmail, uniqueName, weakPassword } from "../support/users.js";
import { loginApi, loginPaths, transports, type LoginApi } from "./api.js";

const { onlyBlank, tooCommon, isLogin } = weakPassword;
const noControls = "password must not contain control characters";
const noInvisible = "password must not contain invisible (zero-width, default-ignorable) characters or unassigned code points";
const noPrivate = "password must not contain private-use characters";
const noDisallowed =
  "password must not contain characters that RFC 8265 disallows (tatweel, conjoining Hangul jamo, format characters, line separators, ...), nor a middle dot, keraia, geresh or Arabic-Indic digit out of its context";
const notUtf8 = (field: string) => `invalid request body: field "${field}": expected string: invalid UTF8`;
const shortOnceTrimmed = "password too short: at least 8 characters required, not counting white space at either end, repeated white space, control or invisible characters";

interface SignUpPath {
  name: string;
  field: string;
  /** A login no other test uses, of this path's kind. */
  newLogin(): string;
  signUp(api: LoginApi, login: string, pass: string): Promise<Outcome<unknown>>;
}

const signUps: SignUpPath[] = [
  { name: "POST /user (seed 000)", field: "password", newLogin: () => uniqueEmail("policy"), signUp: (api, login, pass) => api.signUp(login, pass) },
  { name: "POST /jwt/user (seed 004)", field: "pass", newLogin: () => uniqueName("policy"), signUp: (api, login, pass) => api.createJwtUser(login, pass) },
];

for (const store of storesUnderTest()) {
  for (const transport of transports) {
    describe(`the password policy (${store}, ${transport})`, function () {
      this.timeout(60_000);
      let server: TestServer;
      let api: LoginApi;
      before(async () => {
        server = await startTestServer({ store });
        api = loginApi(transport, server.url);
      });
      after(async () => {
        api?.close();
        await server?.close();
      });

      /**
       * A case of the policy's rules themselves, run over REST on HTTP/1.1 only (on each store):
       * every transport hands the password as decoded to the same core (checkPassword of
       * src/core/password-policy.ts, through src/core/users.ts, on a sign-up and a change alike;
       * logins never call it) and carries the refusal through the same error mapping. Each
       * transport keeps, on both sign-ups, a WEAK_PASSWORD refusal and an INVALID_FIELD one, its
       * own decoding (a lone surrogate), and on every login an account the policy now refuses.
       */
      const ruleCase = (title: string, test: () => Promise<void>) => {
        if (transport === "rest-h1") it(title, test);
      };

      for (const path of signUps) {
        describe(path.name, () => {
          it("refuses a password of white space, control or invisible characters only, or short once they are left out", async () => {
            for (const pw of [" ".repeat(8), "\t \u3000 \u00a0 \n ", "\u0000".repeat(8), "\u200b".repeat(8)]) {
              expectWeakPassword(await path.signUp(api, path.newLogin(), pw), path.field, onlyBlank);
            }
            expectWeakPassword(await path.signUp(api, path.newLogin(), "x       "), path.field, shortOnceTrimmed);
            expectWeakPassword(await path.signUp(api, path.newLogin(), "ab\u0000\u0000\u0000\u0000cd"), path.field, shortOnceTrimmed);
          });

          ruleCase("refuses a common password padded with white space or a control character, or spelt in full-width look-alikes", async () => {
            for (const pw of [" password1 ", "password1\u0000", "\u0000password1", "pass\u200bword1", fullWidthCommon, ` ${fullWidthCommon.toUpperCase()}\u3000`]) {
              expectWeakPassword(await path.signUp(api, path.newLogin(), pw), path.field, tooCommon);
            }
          });

          // RFC 8265's OpaqueString refuses control characters in a password: a new one holding
          // any (C0, DEL, C1) that the rules above let through is refused for it.
          it("refuses a password holding a control character: 400 INVALID_FIELD naming the field", async () => {
            for (const c of ["\u0000", "\t", "\n", "\u001b", "\u007f", "\u0085"]) {
              expectFieldRefused(await path.signUp(api, path.newLogin(), `${password}${c}x`), path.field, noControls);
            }
            // Those the rules above refuse keep their answer.
            expectWeakPassword(await path.signUp(api, path.newLogin(), "password1\u0000"), path.field, tooCommon);
            // White space other than tab and line breaks is no control character.
            expectOk(await path.signUp(api, path.newLogin(), `${password}\u3000\u00a0x`), 201);
          });

          // RFC 8265's OpaqueString (FreeformClass) refuses default-ignorable code points and
          // noncharacters (PrecisIgnorableProperties), unassigned and private-use ones: as a new
          // login is refused for them, so is a new password that the rules above let through.
          ruleCase("refuses a password holding an invisible (default-ignorable), unassigned or private-use code point: 400 INVALID_FIELD naming the field", async () => {
            const invisible = ["\u200b", "\u2060", "\ufeff", "\u00ad", "\ufe0f", "\u3164", "\u{e0041}", "\u200d", "\u200c"];
            const unassigned = ["\u0378", "\ufdd0", "\uffff", "\u{10ffff}"];
            for (const c of [...invisible, ...unassigned]) {
              expectFieldRefused(await path.signUp(api, path.newLogin(), `${password}${c}x`), path.field, noInvisible);
            }
            for (const c of ["\ue000", "\uf8ff", "\u{f0000}", "\u{10fffd}"]) {
              expectFieldRefused(await path.signUp(api, path.newLogin(), `${password}${c}x`), path.field, noPrivate);
            }
            // Those the rules above refuse keep their answer; a control character is named first.
            expectWeakPassword(await path.signUp(api, path.newLogin(), "pass\u200bword1"), path.field, tooCommon);
            expectFieldRefused(await path.signUp(api, path.newLogin(), `${password}\u200b\u0000x`), path.field, noControls);
            // A joiner where its script needs it (RFC 5892 CONTEXTJ, as in a login): Persian می‌خواهم,
            // a Devanagari half form क्‍ष.
            expectOk(await path.signUp(api, path.newLogin(), `${password} \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645`), 201);
            expectOk(await path.signUp(api, path.newLogin(), `${password} \u0915\u094d\u200d\u0937`), 201);
          });

          // RFC 8264's derivation disallows these in FreeformClass too: RFC 5892's DISALLOWED
          // Exceptions, OldHangulJamo, Zl and Zp, Cf but the default-ignorables, and RFC 5892's
          // CONTEXTO code points out of their context, judged in the OpaqueString form (NFC; no
          // case mapping: L·L is out of context in a password). Symbols, punctuation and spaces stay.
          ruleCase("refuses a password holding a tatweel, a conjoining Hangul jamo, a line separator, a format character or a CONTEXTO code point out of its context: 400 INVALID_FIELD naming the field", async () => {
            const disallowed = ["\u0640", "\u07fa", "\u302e", "\u3031", "\u303b", "\u1100", "\u11a8", "\ud7b0", "\u2028", "\u2029", "\u0600", "\u06dd", "\u070f", "\u08e2", "\ufff9", "\u{110bd}", "\u{13430}"];
            const outOfContext = ["a\u00b7b", "L\u00b7L", "a\u0375", "a\u05f3", "a\u30fbb", "\u0661\u06f1"];
            for (const c of [...disallowed, ...outOfContext]) {
              expectFieldRefused(await path.signUp(api, path.newLogin(), `${password} ${c}x`), path.field, noDisallowed);
            }
            // Those the rules above refuse keep their answer (a line separator is white space to
            // them); an invisible character is named first.
            expectWeakPassword(await path.signUp(api, path.newLogin(), "password1\u2028"), path.field, tooCommon);
            expectFieldRefused(await path.signUp(api, path.newLogin(), `${password}\u200b\u0640x`), path.field, noInvisible);
            const inContext = [
              "col\u00b7legi \u0375\u03b1 \u05d2\u05f3 \u30c8\u30e0\u30fb\u30bd\u30fc\u30e4 \u0661\u0662",
              "\u1112\u1161\u11ab\u1100\u116e\u11a8", // 한국 typed as jamo: its syllables once NFC
              "!#$%&'*+/=?^_`{|}~ \u00a7\u20ac\u2022\u00bf\u060c\uff65\u3000\u00a0\u{1f600}",
            ];
            for (const text of inContext) expectOk(await path.signUp(api, path.newLogin(), `${password} ${text}`), 201);
          });

          // A lone surrogate is no text: JSON's "\ud800" is not read as a password at all (were it
          // hashed, it would be hashed as U+FFFD: "x\ud800" and "x\ufffd" one password); the body
          // is refused naming the field, not quoting it. (gRPC's binary messages are UTF-8, in
          // which it has no form; its JSON ones are refused alike.)
          if (transport !== "grpc") {
            it("refuses a password holding a lone surrogate: 400 INVALID_BODY_FIELD naming the field", async () => {
              for (const pw of [`${password}\ud800`, `\udfff${password}`, `${password}\udc00\ud800`]) {
                expectFieldRefused(await path.signUp(api, path.newLogin(), pw), path.field, notUtf8(path.field), "INVALID_BODY_FIELD");
              }
              // U+FFFD itself and a surrogate pair (an emoji) are text.
              expectOk(await path.signUp(api, path.newLogin(), `${password}\ufffd`), 201);
              expectOk(await path.signUp(api, path.newLogin(), `${password}\ud83d\ude00`), 201);
            });
          }

          ruleCase("refuses the login as the password, in any spelling that is the same login", async () => {
            const login = path.newLogin();
            for (const pw of [login, ` ${login.toUpperCase()} `, `${login}\u0000`, login.replace("p", "\uff50")]) {
              expectWeakPassword(await path.signUp(api, login, pw), path.field, isLogin);
            }
            // Refused ones created nothing: the login is still free.
            expectOk(await path.signUp(api, login, password), 201);
          });
        });
      }

      ruleCase("POST /user refuses an email login's local part as the password", async () => {
        const local = `ada.lovelace.${randomBytes(4).toString("hex")}`;
        const email = `${local}@example.com`;
        for (const pw of [local, local.toUpperCase(), ` ${local}\u0000`]) {
          expectWeakPassword(await api.signUp(email, pw), "password", isLogin);
        }
        // Its domain, or the local part with more to it, is no part the rule looks at.
        expectOk(await api.signUp(email, `${local}!x`), 201);
      });

      ruleCase("PATCH /jwt/user refuses a new password holding a control, invisible, private-use or otherwise disallowed character: 400 INVALID_FIELD naming pass, the password unchanged", async () => {
        const user = uniqueName("policy");
        expectOk(await api.createJwtUser(user, password), 201);
        const access = expectOk(await api.jwtToken(user, password)).token;
        const refused = [["\u0000", noControls], ["\u200b", noInvisible], ["\ufdd0", noInvisible], ["\ue000", noPrivate], ["\u0640", noDisallowed], ["\u2029", noDisallowed], ["\u0600", noDisallowed], ["\u1100", noDisallowed], ["a\u00b7b", noDisallowed]] as const;
        for (const [c, message] of refused) {
          expectFieldRefused(await api.changeJwtPassword(access, `new ${password}${c}`), "pass", message);
        }
        expectOk(await api.jwtToken(user, password));
      });

      if (transport !== "grpc") {
        it("PATCH /jwt/user refuses a new password holding a lone surrogate: 400 INVALID_BODY_FIELD naming pass, the password unchanged", async () => {
          const user = uniqueName("policy");
          expectOk(await api.createJwtUser(user, password), 201);
          const access = expectOk(await api.jwtToken(user, password)).token;
          expectFieldRefused(await api.changeJwtPassword(access, `new ${password}\ud800`), "pass", notUtf8("pass"), "INVALID_BODY_FIELD");
          expectOk(await api.jwtToken(user, password));
          expectCode(await api.jwtToken(user, `new ${password}\ufffd`), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
        });
      }

      ruleCase("keeps white space at either end of the password: padded with spaces, it logs in only so padded", async () => {
        const email = uniqueEmail("policy");
        const padded = `  ${password}  `;
        expectOk(await api.signUp(email, padded), 201);
        expectOk(await api.logIn(email, padded));
        expectCode(await api.logIn(email, password), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
      });

      describe("an account whose password the policy now refuses still logs in", () => {
        const refusedNow: [string, (login: string) => string][] = [
          ["its login", (login) => login],
          ["a common password padded with spaces", () => " password1 "],
          ["a common password in full-width look-alikes", () => fullWidthCommon],
          ["a password holding control characters", () => `${password}\u0000\t\u0085`],
          ["a password holding invisible, unassigned and private-use characters", () => `${password}\u200b\ufdd0\ue000`],
          ["a password holding a tatweel, a jamo, a line separator, a format character and a middle dot out of context", () => `${password}\u0640\u1100\u2028\u0600 a\u00b7b`],
        ];
        for (const path of loginPaths("old-policy")) {
          for (const [what, passwordOf] of refusedNow) {
            (what === "its login" ? it : ruleCase)(`${path.name}: ${what}`, async () => {
              const login = path.name.startsWith("GET /jwt") ? uniqueName("old-policy") : uniqueEmail("old-policy");
              // As an older policy let it be signed up: written to the store.
              await storedAccount(server, login, passwordOf(login));
              expectOk(await path.attempt(api, login, passwordOf(login)));
            });
          }
        }
      });
    });
  }
}
