// Logins are text, checked first: a login holding NUL, another control character or a
// bidirectional formatting character is a 400 naming its field on every API, before any store
// call (it answers so even with the store closed), and counts nowhere. Logins are compared by
// NFKC and case folding: a look-alike of an existing login is that login (a duplicate sign-up is
// 409, a login succeeds), and the account keeps the spelling it was created with. Whitespace is
// compared trimmed and collapsed, after zero-width characters are taken out. A new login (a
// sign-up) holding an invisible (default-ignorable), unassigned, private-use or otherwise
// disallowed code point (tatweel, conjoining Hangul jamo, format characters, a middle dot out of
// its context...), or right-to-left text that breaks RFC 5893's Bidi Rule, is refused, 400
// INVALID_FIELD naming its field (RFC 8265); an account whose login has one still logs in.
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { connectClient, rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { UserService } from "../../gen/tessera/session/v1/session_pb.js";
import { expectCode, expectFieldRefused, expectOk, type Outcome } from "../support/api.js";
import { decodedBody, tesseraDetails } from "../support/error-details.js";
import { password, storedAccount, uniqueEmail, uniqueName } from "../support/users.js";
import { loginApi, transports, wrongPassword, type LoginApi } from "./api.js";

const notText = (field: string) => `${field} must not contain control characters or bidirectional formatting characters`;
const notNewText = (field: string) => `${field} must not contain invisible (zero-width, default-ignorable) characters or unassigned code points`;
const notPrivate = (field: string) => `${field} must not contain private-use characters`;
const notAllowed = (field: string) =>
  `${field} must not contain characters that RFC 8265 disallows (tatweel, conjoining Hangul jamo, format characters, line separators, ...), nor a middle dot, keraia, geresh or Arabic-Indic digit out of its context`;
const notBidi = (field: string) =>
  `${field} must follow the Bidi Rule of RFC 5893 in each part (between spaces, @ and dots) when it holds right-to-left characters: a part holding them starts with a right-to-left letter, ends with one or a digit, and holds neither left-to-right characters nor both Arabic-Indic and European digits; any other part starts with a letter and ends with a letter or digit; no part holds other white space`;
const notUtf8 = (field: string) => `invalid request body: field "${field}": expected string: invalid UTF8`;
/**
 * A unique tag's digits: right-to-left letters followed by European digits keep a part of a new
 * login (between spaces, "@" and dots) within RFC 5893's Bidi Rule, where the tag's Latin letters
 * would break it.
 */
const digitsOf = (hexTag: string) => String(parseInt(hexTag, 16));
/** European digits as Arabic-Indic ones (AN), for a login whose other digits are Arabic-Indic (the rule keeps them apart). */
const arabicIndic = (digits: string) => digits.replace(/[0-9]/gu, (d) => String.fromCodePoint(0x0660 + Number(d)));
/** An all-Arabic mail domain (مثال.ایران), each of its labels a right-to-left part to the Bidi Rule. */
const arabicDomain = "\u0645\u062b\u0627\u0644.\u0627\u06cc\u0631\u0627\u0646";
/** NUL, C0, DEL, C1 (NEL), and the bidi controls RLO, LRI, RLM and ALM. */
const hostile = ["\u0000", "\u0007", "\u007f", "\u0085", "\u202e", "\u2066", "\u200f", "\u061c"];

interface Entry {
  name: string;
  field: string;
  call(api: LoginApi, login: string): Promise<Outcome<unknown>>;
}

const entries: Entry[] = [
  { name: "POST /session email", field: "email", call: (api, login) => api.logIn(login, wrongPassword) },
  { name: "GET /jwt/token user", field: "user", call: (api, login) => api.jwtToken(login, wrongPassword) },
  { name: "POST /auth/login Basic login", field: "the Basic login", call: (api, login) => api.basicLogin(login, wrongPassword) },
  { name: "POST /user email", field: "email", call: (api, login) => api.signUp(login, password) },
  { name: "POST /jwt/user user", field: "user", call: (api, login) => api.createJwtUser(login, password) },
];

for (const store of storesUnderTest()) {
  for (const transport of transports) {
    describe(`logins are text (${store}, ${transport})`, function () {
      this.timeout(60_000);
      let server: TestServer;
      let api: LoginApi;
      before(async () => {
        // Two failures lock a login, eight an address; sixty-four sign-ups per address (what these
        // tests make): had any refused login counted anywhere, what follows would be locked.
        server = await startTestServer({ store, env: { TESSERA_LOGIN_MAX_FAILURES: "2", TESSERA_SIGNUP_MAX_PER_ADDRESS: "64" } });
        api = loginApi(transport, server.url);
      });
      after(async () => {
        api?.close();
        await server?.close();
      });

      /**
       * A case of the text rules themselves, run over REST on HTTP/1.1 only (on each store): every
       * transport decodes its request, then hands the login to the same core (src/core/users.ts:
       * parseNewLogin on a sign-up, checkLoginText and parseLogin on a login, all of
       * src/core/login-name.ts), and carries the refusal through the same error mapping. What a
       * transport does on its own is checked on each: its decoding (a lone surrogate), and how it
       * answers a login that is not text on every API, a look-alike of an existing login, and a
       * new login refused with INVALID_FIELD (private-use code points).
       */
      const ruleCase = (title: string, test: () => Promise<void>) => {
        if (transport === "rest-h1") it(title, test);
      };

      it("refuses a login holding a control or bidi character with 400 naming the field, on every API, counting nothing", async () => {
        const email = uniqueEmail("text");
        expectOk(await api.signUp(email, password), 201);
        for (const entry of entries) {
          for (const c of hostile) {
            const login = entry.field.includes("email") || entry.field.includes("Basic") ? `a${c}b@example.com` : `a${c}b`;
            expectCode(await entry.call(api, login), "invalid_argument", notText(entry.field), "INVALID_FIELD");
          }
        }
        // The same login with a control character is not the login: nothing was counted for it.
        expectCode(await api.logIn(`${email}\u0000`, wrongPassword), "invalid_argument", notText("email"), "INVALID_FIELD");
        expectOk(await api.logIn(email, password));
        expectOk(await api.createJwtUser(uniqueName("text"), password), 201);
      });

      it("compares logins by NFKC and case folding: look-alikes are the same login; the account keeps its spelling", async () => {
        const tag = uniqueName("ada").slice(4);
        const email = `ada${tag}@example.com`;
        expectOk(await api.signUp(email, password), 201);
        const fullWidth = `\uff41da${tag}@example.com`; // ａ: FULLWIDTH LATIN SMALL LETTER A
        expectCode(await api.signUp(fullWidth, password), "already_exists", "a user with this email already exists", "USER_EXISTS");
        const login = await api.logIn(`ADA${tag.toUpperCase()}@EXAMPLE.COM`, password);
        expectOk(login);
        expectOk(await api.logIn(fullWidth, password));
        // GET /user answers the email as it was created.
        const user = await connectClient(UserService, server.url).getUser({}, { headers: { "x-koms-clientid": testClientId, authorization: `Bearer ${login.data!.token}` } });
        assert.equal(user.email, email);

        const name = `Zo\u00eb${tag}`;
        expectOk(await api.createJwtUser(name, password), 201);
        expectCode(await api.createJwtUser(`ZO\u00cb${tag.toUpperCase()}`, password), "already_exists", "a user with this name already exists", "USER_EXISTS");
        const token = await api.jwtToken(`zoe\u0308${tag}`, password); // e + COMBINING DIAERESIS
        expectOk(token);
        assert.equal(decodeJwt(token.data!.token).user, name);

        // U+1E9E CAPITAL SHARP S folds as U+00DF does: to ss.
        const street = `stra\u00dfe${tag}`;
        expectOk(await api.createJwtUser(street, password), 201);
        expectCode(await api.createJwtUser(`STRA\u1e9eE${tag.toUpperCase()}`, password), "already_exists", "a user with this name already exists", "USER_EXISTS");
        const capital = await api.jwtToken(`STRA\u1e9eE${tag}`, password);
        expectOk(capital);
        assert.equal(decodeJwt(capital.data!.token).user, street);
      });

      ruleCase("checks an email's shape in the form it is compared by: a full-width at sign or dot makes a look-alike, the same login on every API", async () => {
        const tag = uniqueName("at").slice(3);
        const email = `ada${tag}@example.com`;
        expectOk(await api.signUp(email, password), 201);
        // ＠ (U+FF20) and ． (U+FF0E) are @ and . under NFKC, as ａ is a: what a keyboard in
        // full-width mode types.
        const fullWidth = (text: string) => [...text].map((c) => String.fromCodePoint(c.codePointAt(0)! + 0xfee0)).join("");
        for (const lookAlike of [email.replace("@", "\uff20"), fullWidth(email)]) {
          expectCode(await api.signUp(lookAlike, password), "already_exists", "a user with this email already exists", "USER_EXISTS");
          expectOk(await api.logIn(lookAlike, password));
          expectOk(await api.basicLogin(lookAlike, password));
          expectOk(await api.jwtToken(lookAlike, password));
        }
        // A free one is created, and keeps its spelling; its ASCII form is its login.
        const other = `bob${tag}@example.com`;
        expectOk(await api.signUp(fullWidth(other), password), 201);
        const login = await api.logIn(other, password);
        expectOk(login);
        const user = await connectClient(UserService, server.url).getUser({}, { headers: { "x-koms-clientid": testClientId, authorization: `Bearer ${login.data!.token}` } });
        assert.equal(user.email, fullWidth(other));
      });

      ruleCase("refuses a new email whose compared form is no email (a trailing dot, two at signs) as malformed, as its ASCII form is; an account holding one still logs in", async () => {
        const tag = uniqueName("shape").slice(6);
        const notAnEmail = "email is not a valid email address";
        // U+2024 ONE DOT LEADER is "." under NFKC, U+FE6B SMALL COMMERCIAL AT "@": each of these
        // displays as its ASCII form, which no sign-up takes, and would be an account whose
        // login, typed in the form logins are compared by, is refused.
        for (const [lookAlike, ascii] of [
          [`ada${tag}@example.com\u2024`, `ada${tag}@example.com.`],
          [`ada${tag}@example\u2024\u2024com`, `ada${tag}@example..com`],
          [`ada${tag}@\u2024example.com`, `ada${tag}@.example.com`],
          [`ada\ufe6b${tag}@example.com`, `ada@${tag}@example.com`],
        ]) {
          expectFieldRefused(await api.signUp(ascii!, password), "email", notAnEmail);
          expectFieldRefused(await api.signUp(lookAlike!, password), "email", notAnEmail);
        }
        // Logins are not judged so: an account stored with such a login logs in by its spelling.
        const stored = `bob${tag}@example.com\u2024`;
        await storedAccount(server, stored);
        expectOk(await api.logIn(stored, password));
      });

      ruleCase("compares whitespace trimmed and collapsed, also next to zero-width characters: such look-alikes are the same login and share its lock", async () => {
        const tag = uniqueName("ws").slice(3);
        const name = `ada ${tag}`;
        expectOk(await api.createJwtUser(name, password), 201);
        // Each displays as the name (two spaces show as one): a duplicate, not a second account;
        // one with a zero-width space (which shields a space from trimming) is no new login at all.
        for (const lookAlike of [`ada  ${tag}`, `ada\u2003\u2003${tag}`]) {
          expectCode(await api.createJwtUser(lookAlike, password), "already_exists", "a user with this name already exists", "USER_EXISTS");
        }
        for (const lookAlike of [`${name} \u200b`, `\u200b ${name}`, `ada \u200b ${tag}`]) {
          expectCode(await api.createJwtUser(lookAlike, password), "invalid_argument", notNewText("user"), "INVALID_FIELD");
        }
        const token = await api.jwtToken(`ada \u200b ${tag} \u200b`, password);
        expectOk(token);
        assert.equal(decodeJwt(token.data!.token).user, name);
        // Its failures count in the name's own window (two lock it).
        for (let i = 0; i < 2; i++) expectCode(await api.jwtToken(`${name} \u200b`, wrongPassword), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
        expectCode(await api.jwtToken(name, password), "resource_exhausted", "too many failed logins; try again later", "LOGIN_LOCKED");
      });

      ruleCase("refuses a new login holding an invisible (default-ignorable) or unassigned code point with 400 INVALID_FIELD naming the field, on both sign-ups", async () => {
        const invisible = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\ufe0f", "\u3164", "\u{e0041}"];
        const unassigned = ["\u0378", "\ufdd0", "\uffff", "\u{10ffff}"];
        for (const c of [...invisible, ...unassigned]) {
          const tag = uniqueName("new").slice(4);
          expectCode(await api.signUp(`a${c}${tag}@example.com`, password), "invalid_argument", notNewText("email"), "INVALID_FIELD");
          expectCode(await api.createJwtUser(`a${c}${tag}`, password), "invalid_argument", notNewText("user"), "INVALID_FIELD");
        }
        // A name of nothing but a Hangul filler (its key would be empty) or a zero-width space.
        for (const name of ["\u3164", "\u3164\u3164", "\u200b"]) expectCode(await api.createJwtUser(name, password), "invalid_argument", notNewText("user"), "INVALID_FIELD");
        // A byte order mark at either end is trimmed, as white space is.
        const tag = uniqueName("bom").slice(4);
        expectOk(await api.createJwtUser(`\ufeffbom${tag}`, password), 201);
        expectOk(await api.jwtToken(`bom${tag}`, password));
        // Letters of every script, emoji: still new logins.
        for (const name of [`Zo\u00eb ${tag}`, `\u674e\u5c0f\u9f8d${tag}`, `\u0645\u0631\u064a\u0645${digitsOf(tag)}`, `\u{1f600}${tag}`]) {
          expectOk(await api.createJwtUser(name, password), 201);
        }
      });

      it("refuses a new login holding a private-use code point with 400 INVALID_FIELD naming the field, on both sign-ups", async () => {
        // The BMP's private use area and both supplementary ones (RFC 8265 disallows them: their
        // look is whatever a font makes of them).
        for (const c of ["\ue000", "\uf8ff", "\u{f0000}", "\u{10fffd}"]) {
          const tag = uniqueName("pua").slice(4);
          expectFieldRefused(await api.signUp(`a${c}${tag}@example.com`, password), "email", notPrivate("email"));
          expectFieldRefused(await api.createJwtUser(`a${c}${tag}`, password), "user", notPrivate("user"));
        }
      });

      // What else RFC 8264's derivation disallows in IdentifierClass as in FreeformClass: RFC 5892's
      // DISALLOWED Exceptions, OldHangulJamo, line and paragraph separators, and the format
      // characters that are not default-ignorable.
      ruleCase("refuses a new login holding a tatweel, a conjoining Hangul jamo, a line separator or a format character with 400 INVALID_FIELD naming the field, on both sign-ups", async () => {
        const exceptions = ["\u0640", "\u07fa", "\u302e", "\u302f", "\u3031", "\u3035", "\u303b"];
        const oldJamo = ["\u1100", "\u1140", "\u11a8", "\u11ff", "\ua960", "\ud7b0", "\ud7fb"];
        const format = ["\u0600", "\u0605", "\u06dd", "\u070f", "\u0890", "\u08e2", "\ufff9", "\ufffb", "\u{110bd}", "\u{110cd}", "\u{13430}", "\u{1343f}"];
        for (const c of [...exceptions, ...oldJamo, ...format]) {
          const tag = uniqueName("dis").slice(4);
          expectFieldRefused(await api.signUp(`a${c}${tag}@example.com`, password), "email", notAllowed("email"));
          expectFieldRefused(await api.createJwtUser(`a${c}${tag}`, password), "user", notAllowed("user"));
        }
        // A line or paragraph separator is white space to an email's shape (it has none).
        for (const c of ["\u2028", "\u2029"]) {
          const tag = uniqueName("dis").slice(4);
          expectFieldRefused(await api.signUp(`a${c}${tag}@example.com`, password), "email", "email is not a valid email address");
          expectFieldRefused(await api.createJwtUser(`a${c}${tag}`, password), "user", notAllowed("user"));
        }
        // Modern Hangul typed as jamo is its syllables once NFC (한국); symbols, punctuation and
        // spaces stay as user names have them.
        const tag = uniqueName("ok").slice(3);
        expectOk(await api.createJwtUser(`\u1112\u1161\u11ab\u1100\u116e\u11a8${tag}`, password), 201);
        expectCode(await api.createJwtUser(`\ud55c\uad6d${tag}`, password), "already_exists", "a user with this name already exists", "USER_EXISTS");
        expectOk(await api.signUp(`\u1112\u1161\u11ab${tag}@example.com`, password), 201);
        for (const name of [`o'brien+${tag}!`, `\u00a7\u20ac\u2022${tag}`, `\u0645\u0631\u064a\u0645\u060c${digitsOf(tag)}`, `ada\u3000${tag}`]) {
          expectOk(await api.createJwtUser(name, password), 201);
        }
      });

      // RFC 5892 Appendix A.3 to A.9 (CONTEXTO), in both PRECIS classes: punctuation and digits
      // taken only where their script has them, judged as UsernameCaseMapped does, lower-cased
      // (COL·LEGI is col·legi), and over the whole login (an email's local part and domain alike).
      ruleCase("takes a middle dot, keraia, geresh, katakana middle dot or Arabic-Indic digit in a new login only in its RFC 5892 context (CONTEXTO)", async () => {
        const tag = uniqueName("co").slice(3);
        const inContext = [
          "col\u00b7legi", // Catalan
          "COL\u00b7LEGI",
          "\u0375\u03b1", // ͵α: Greek 1000
          "\u05e6\u05d4\u05f4\u05dc", // צה״ל
          "\u05d2\u05f3", // ג׳
          "\u30c8\u30e0\u30fb\u30bd\u30fc\u30e4", // トム・ソーヤ
          "\u674e\u30fbx", // Han anywhere in the login
          "\u0628\u0661\u0662", // Arabic-Indic digits
          "\u06f1\u06f2", // extended ones
        ];
        // Digits for a tag (Arabic-Indic ones after Arabic-Indic digits): the Bidi Rule takes no
        // Latin letter after a Hebrew or Arabic one in the same part.
        const suffix = (name: string, i: number) => {
          const digits = `${digitsOf(tag)}${i}`;
          return /[\u0660-\u0669]/u.test(name) ? arabicIndic(digits) : digits;
        };
        for (const [i, name] of inContext.entries()) expectOk(await api.createJwtUser(`${name}${suffix(name, i)}`, password), 201);
        expectOk(await api.signUp(`col\u00b7legi${tag}@example.cat`, password), 201);
        expectOk(await api.signUp(`\u0628\u0661${arabicIndic(digitsOf(tag))}@\u0645\u062b\u0627\u0644.example`, password), 201);

        const out = [
          "a\u00b7b",
          "l\u00b7",
          "\u00b7l",
          "a\u0375", // nothing Greek after it
          "\u0375a",
          "a\u05f3", // nothing Hebrew before it
          "\u05f4\u05d2",
          "a\u30fbb", // no Hiragana, Katakana or Han
          "a\uff65b", // HALFWIDTH KATAKANA MIDDLE DOT: U+30FB once width-mapped
          "\u0661\u06f1", // both kinds of Arabic digit
        ];
        for (const name of out) {
          expectFieldRefused(await api.signUp(`${tag}${name}@example.com`, password), "email", notAllowed("email"));
          expectFieldRefused(await api.createJwtUser(`${tag}${name}`, password), "user", notAllowed("user"));
        }
        // An email's digits mixed across the @ are still one login.
        expectFieldRefused(await api.signUp(`\u0661${tag}@\u06f1.example`, password), "email", notAllowed("email"));
      });

      // RFC 5892 Appendix A.1 and A.2 (CONTEXTJ), which RFC 8265's IdentifierClass applies: a
      // joiner right after a virama (a Devanagari half form), a non-joiner there too or between
      // letters that would join across it (Persian writes words with it: Joining_Type L or D
      // before, R or D after), transparent marks between them skipped.
      // Anywhere else they are invisible characters, refused as U+200B is. Logins are compared
      // without them, as without every invisible character: with or without is one login.
      ruleCase("takes a zero-width joiner or non-joiner in a new login where its script needs it (RFC 5892 CONTEXTJ), nowhere else; with or without it is the same login", async () => {
        const tag = uniqueName("cj").slice(3);
        const persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"; // می‌خواهم
        const needed = [
          "\u0915\u094d\u200d\u0937", // क्‍ष: a half form, the joiner after the virama
          "\u0915\u094d\u200c\u0937", // क्‌ष: the non-joiner after the virama
          "\u0d28\u0d4d\u200d", // ന്‍: a Malayalam chillu in its older spelling
          "\u0628\u064e\u200c\u064e\u0628", // Arabic letters with a fatha on either side
          "\u0721\u200c\u0722", // Syriac
          "\u1820\u200c\u1821", // Mongolian
          "\u0628\u200c\u0627", // beh (D) joins alef (R) that follows it
        ];
        // Digits for a tag: the Bidi Rule takes no Latin letter in a part holding Persian.
        const digits = digitsOf(tag);
        expectOk(await api.signUp(`${persian}${digits}@example.com`, password), 201);
        expectOk(await api.createJwtUser(`${persian}${digits}`, password), 201);
        for (const [i, name] of needed.entries()) expectOk(await api.createJwtUser(`${name}${digits}${i}`, password), 201);
        // Without the non-joiner it is the same login: a duplicate, and it logs in to the account.
        const without = persian.replace("\u200c", "");
        expectCode(await api.signUp(`${without}${digits}@example.com`, password), "already_exists", "a user with this email already exists", "USER_EXISTS");
        expectCode(await api.createJwtUser(`${without}${digits}`, password), "already_exists", "a user with this name already exists", "USER_EXISTS");
        expectOk(await api.logIn(`${without}${digits}@example.com`, password));
        const token = expectOk(await api.jwtToken(`${without}${digits}`, password));
        assert.equal(decodeJwt(token.token).user, `${persian}${digits}`);
        // So is the conjunct क्ष, or its half form with a non-joiner for the joiner.
        for (const lookAlike of ["\u0915\u094d\u0937", "\u0915\u094d\u200c\u0937"]) {
          expectCode(await api.createJwtUser(`${lookAlike}${digits}0`, password), "already_exists", "a user with this name already exists", "USER_EXISTS");
        }

        const out = [
          "a\u200cb", // Latin letters do not join
          "a\u200db",
          "\u0915\u200d\u0937", // a consonant, no virama
          "\u0628\u200db", // a joiner after a joining letter: only a virama takes one
          "\u0628\u200c", // nothing after it
          "\u0628\u200cb", // a letter that does not join after it
          "b\u200c\u0628", // nor before it
          "\u200c\u0628", // nothing before it
          "\u{1f468}\u200d\u{1f469}", // an emoji ZWJ sequence
          // After a letter that joins nothing that follows it, the non-joiner changes nothing shown:
          // right-joining dal, alef, reh, waw (R), non-joining hamza (U), a fatha between skipped.
          "\u062f\u200c\u0627", // دا
          "\u0627\u200c\u0628",
          "\u0631\u064e\u200c\u0628",
          "\u0648\u200c\u0628",
          "\u0621\u200c\u0628",
          "\u0628\u200c\u0621", // nor before hamza, which joins nothing that precedes it
        ];
        for (const name of out) {
          expectFieldRefused(await api.signUp(`${tag}${name}@example.com`, password), "email", notNewText("email"));
          expectFieldRefused(await api.createJwtUser(`${tag}${name}`, password), "user", notNewText("user"));
        }
        // An existing login with a joiner where none is taken is refused as a new one (400, not 409),
        // and logs in to the account without it.
        const latin = `ab${tag}`;
        expectOk(await api.createJwtUser(latin, password), 201);
        expectFieldRefused(await api.createJwtUser(`a\u200cb${tag}`, password), "user", notNewText("user"));
        expectOk(await api.jwtToken(`a\u200cb${tag}`, password));
      });

      // RFC 8265's rule 6 (RFC 5893's Bidi Rule), judged in each part of a login between spaces
      // (RFC 8265's userparts), "@" and dots (an email's local part, its domain's labels): when a
      // new login holds a right-to-left character (Bidi_Class R, AL or AN), a part holding one
      // starts with a right-to-left letter, holds no left-to-right character, ends with a
      // right-to-left letter or a digit, and does not mix European and Arabic-Indic digits; any
      // other part starts with a letter and ends with a letter or a digit. Otherwise the
      // bidirectional algorithm shows it as another login.
      ruleCase("refuses a new login whose right-to-left text breaks RFC 5893's Bidi Rule in a part with 400 INVALID_FIELD naming the field, on both sign-ups", async () => {
        const tag = uniqueName("bidi").slice(5);
        const digits = digitsOf(tag);
        const out = [
          `abc${tag}\u05d0`, // Latin, then Hebrew, in one part
          `\u05d0abc${tag}`, // Hebrew, then Latin
          `${digits}\u05d0\u05d1`, // a digit first
          `\u05d0\u05d1${digits}!`, // a neutral last
          `\u05d0${digits}\u0661`, // European and Arabic-Indic digits
          `\u05d0\u05d1 ${digits}`, // a left-to-right part starting with a digit
          `\u05d0\u05d1 abc${tag}!`, // a left-to-right part ending with a neutral
        ];
        for (const name of out) expectFieldRefused(await api.createJwtUser(name, password), "user", notBidi("user"));
        for (const email of [`abc${tag}\u05d0@example.com`, `\u05d0${digits}@1example.com`]) {
          expectFieldRefused(await api.signUp(email, password), "email", notBidi("email"));
        }
        // Logins whose every part follows it, right-to-left parts beside left-to-right ones; Latin
        // ones, which it does not judge (even ending with "!", which it would refuse beside a
        // right-to-left part).
        const names = [
          `\u05d0\u05d1${digits}`, // אב
          `\u05d0 \u05d1${digits}`, // א ב
          `abc${tag}.\u05d0`, // abc.א
          `ada${tag} \u05d0\u05d1`, // a Latin userpart, a Hebrew one
          `\u0627\u0644\u0639\u0631\u0628\u064a\u0629${digits}`, // العربية
          `\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd${digits}`, // שָׁלוֹם: points (NSM) kept
          `ada${tag}!`,
        ];
        for (const name of names) expectOk(await api.createJwtUser(name, password), 201);
        const emails = [
          `\u05d0${digits}@example.com`, // א@example.com
          `\u05de\u05e8\u05d9\u05dd${digits}@example.co.il`, // מרים@example.co.il
          `\u05d0${digits}@${arabicDomain}`,
          `ada.lovelace+${tag}@example.com`,
        ];
        for (const email of emails) expectOk(await api.signUp(email, password), 201);
        expectOk(await api.logIn(emails[0]!, password));
        expectOk(await api.jwtToken(names[1]!, password));
      });

      if (transport === "rest-h1") {
        it("answers a new login breaking the Bidi Rule over REST with the documented JSON error", async () => {
          const message = notBidi("user");
          const res = await rest(server.url, "POST", "/jwt/user", { json: { user: `abc${uniqueName("bidi").slice(5)}\u05d0`, pass: password } });
          assert.equal(res.status, 400, `HTTP ${res.status}: ${res.text}`);
          assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
          assert.deepEqual(decodedBody(res.body), { code: "invalid_argument", message, details: tesseraDetails("INVALID_FIELD", { user: message }) });
          assert.deepEqual(
            res.body.details.map(({ type, debug }: { type: string; debug: unknown }) => ({ type, debug })),
            [
              { type: "google.rpc.ErrorInfo", debug: { reason: "INVALID_FIELD", domain: "tessera", metadata: {} } },
              { type: "google.rpc.BadRequest", debug: { fieldViolations: [{ field: "user", description: message, reason: "" }] } },
            ],
          );
        });
      }

      // A lone surrogate is no text: JSON's "\ud800" is not read as a login at all, the body is
      // refused naming the field. (gRPC's binary messages are UTF-8, in which it has no form.)
      if (transport !== "grpc") {
        it("refuses a new login holding a lone surrogate with 400 INVALID_BODY_FIELD naming the field, on both sign-ups", async () => {
          for (const c of ["\ud800", "\udfff"]) {
            const tag = uniqueName("sur").slice(4);
            expectFieldRefused(await api.signUp(`a${c}${tag}@example.com`, password), "email", notUtf8("email"), "INVALID_BODY_FIELD");
            expectFieldRefused(await api.createJwtUser(`a${c}${tag}`, password), "user", notUtf8("user"), "INVALID_BODY_FIELD");
          }
        });
      }

      ruleCase("an account whose login holds an invisible character (created before they were refused) still logs in, by its spelling or without the character", async () => {
        const tag = uniqueName("old").slice(4);
        const spelling = `ada\u200b${tag}@example.com`;
        await storedAccount(server, spelling);
        for (const login of [spelling, `ada${tag}@example.com`]) {
          expectOk(await api.logIn(login, password));
          expectOk(await api.basicLogin(login, password));
          expectOk(await api.jwtToken(login, password));
        }
        // Its look-alikes are refused as new logins, before the duplicate is looked for.
        expectCode(await api.signUp(spelling, password), "invalid_argument", notNewText("email"), "INVALID_FIELD");
        expectCode(await api.signUp(`ada${tag}@example.com`, password), "already_exists", "a user with this email already exists", "USER_EXISTS");
        // So does a user name with a non-joiner after a right-joining letter (دا, taken before the
        // joining types were checked exactly).
        const name = `\u062f\u200c\u0627${tag}`;
        await storedAccount(server, name);
        for (const login of [name, name.replace("\u200c", "")]) expectOk(await api.jwtToken(login, password));
        expectFieldRefused(await api.createJwtUser(name, password), "user", notNewText("user"));
      });

      /**
       * Accounts stored with `email` and `name`, as a version that took them made them: each logs
       * in by its spelling, on every password login of its kind, and as a new login is refused
       * with `refused` (before the duplicate is looked for: 400, not 409).
       */
      async function storedLoginsStillWork(email: string, name: string, refused: (field: string) => string): Promise<void> {
        await storedAccount(server, email);
        await storedAccount(server, name);
        expectOk(await api.logIn(email, password));
        expectOk(await api.basicLogin(email, password));
        expectOk(await api.jwtToken(email, password));
        const token = expectOk(await api.jwtToken(name, password));
        assert.equal(decodeJwt(token.token).user, name);
        expectFieldRefused(await api.signUp(email, password), "email", refused("email"));
        expectFieldRefused(await api.createJwtUser(name, password), "user", refused("user"));
      }

      ruleCase("an account whose login holds a code point RFC 8265 disallows (created before it was refused) still logs in, by its spelling", async () => {
        const tag = uniqueName("old").slice(4);
        // A tatweel, a middle dot out of context; a line separator, a format character, a jamo.
        await storedLoginsStillWork(`a\u0640\u00b7b${tag}@example.com`, `a\u2028\u0600\u1100${tag}`, notAllowed);
      });

      ruleCase("an account whose login breaks the Bidi Rule (created before it was judged) still logs in, by its spelling", async () => {
        const tag = uniqueName("old").slice(4);
        // Latin, then Hebrew, in a local part; Latin, then Hebrew, then a neutral last.
        await storedLoginsStillWork(`abc${tag}\u05d0@example.com`, `abc${tag}\u05d0!`, notBidi);
      });

      it("answers a login that is not text with 400 before any store call: so even with the store closed", async () => {
        await server.tessera.store.close();
        for (const entry of entries) expectCode(await entry.call(api, "a\u0000b@example.com"), "invalid_argument", notText(entry.field), "INVALID_FIELD");
        expectCode(await api.logIn(uniqueEmail("text"), wrongPassword), "unavailable", "the store is unavailable, try again shortly", "STORE_UNAVAILABLE");
      });
    });
  }
}
