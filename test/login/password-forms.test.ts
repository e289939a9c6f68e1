// Passwords are hashed and compared in their prepared form (RFC 8265's OpaqueString: non-ASCII
// spaces mapped to U+0020, then NFC), on every API that sets or checks one, over every
// transport: a password set precomposed ("é", U+00E9) logs in typed decomposed ("e" + U+0301, as
// macOS and some keyboards write it) and the other way round, a no-break or ideographic space is
// a space, and a password change is prepared as a sign-up is. An account whose hash was made of
// the password as typed, before passwords were prepared, logs in typed so (its hash is then made
// again of the prepared form, so any form logs in from then on). A wrong password is refused as
// before, and a password verified in both forms costs a known login what it costs an unknown
// one and counts as one attempt.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import argon2 from "argon2";
import { ManualClock } from "../../src/core/clock.js";
import { loginKey } from "../../src/core/login-name.js";
import { expectCode, expectOk, type Outcome } from "../support/api.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { password, uniqueEmail, uniqueName } from "../support/users.js";
import { argon2Costs, loginApi, loginPaths, transports, type LoginApi, type LoginPath, type Seen } from "./api.js";

/** One password in two forms: precomposed (NFC) and decomposed (NFD). */
const composed = "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e";
const decomposed = "cafe\u0301 cre\u0300me bru\u0302le\u0301e";
/** Wrong for every account here, in both forms. */
const wrongComposed = "not the caf\u00e9 42";
const wrongDecomposed = "not the cafe\u0301 42";
const invalidLogin = "invalid login or password";

for (const store of storesUnderTest()) {
  for (const transport of transports) {
    describe(`passwords are compared in their prepared form, RFC 8265 (${store}, ${transport})`, function () {
      this.timeout(60_000);
      const clock = new ManualClock(Date.now());
      let server: TestServer;
      let api: LoginApi;
      before(async () => {
        // Three failures lock a login, twelve an address.
        server = await startTestServer({ store, clock, env: { TESSERA_LOGIN_MAX_FAILURES: "3" } });
        api = loginApi(transport, server.url);
      });
      afterEach(() => clock.advance(16 * 60 * 1000)); // past every window and lock
      after(async () => {
        api?.close();
        await server?.close();
      });

      assert.notEqual(composed, decomposed);
      assert.equal(composed, decomposed.normalize("NFC"));
      assert.equal(wrongComposed, wrongDecomposed.normalize("NFC"));

      /** An account as a version before passwords were prepared signed it up: its hash is of `typed` as it came. */
      async function accountHashedAsTyped(path: LoginPath, typed: string): Promise<string> {
        const login = path.name.startsWith("GET /jwt") ? uniqueName("forms") : uniqueEmail("forms");
        // At the server's own cost: only its form, not its parameters, has the login make it again.
        const { argon2MemoryKib: memoryCost, argon2Iterations: timeCost, argon2Parallelism: parallelism } = server.config;
        await server.tessera.store.users.create({
          id: randomBytes(12).toString("hex"),
          login,
          loginKey: loginKey(login),
          emails: login.includes("@") ? [login] : [],
          passwordHash: await argon2.hash(typed, { type: argon2.argon2id, memoryCost, timeCost, parallelism }),
          createdAt: clock.now(),
        });
        return login;
      }

      /**
       * A case of the password forms themselves, run over REST on HTTP/1.1 only (on each store):
       * every transport hands the password as decoded to the same core (Passwords in
       * src/core/passwords.ts, through src/core/users.ts), which prepares, hashes, verifies, makes
       * a hash again and counts the attempt. Each transport keeps, on each login, a password set in
       * one form logging in typed in the other, and the change of a password.
       */
      const formCase = (title: string, test: () => Promise<void>) => {
        if (transport === "rest-h1") it(title, test);
      };

      for (const path of loginPaths("forms")) {
        it(`${path.name}: a password set precomposed logs in typed decomposed, and one set decomposed logs in typed precomposed`, async () => {
          const setComposed = await path.createAccount(api, composed);
          expectOk(await path.attempt(api, setComposed, decomposed));
          expectOk(await path.attempt(api, setComposed, composed));
          const setDecomposed = await path.createAccount(api, decomposed);
          expectOk(await path.attempt(api, setDecomposed, composed));
          expectOk(await path.attempt(api, setDecomposed, decomposed));
        });

        formCase(`${path.name}: a no-break space typed for a space logs in, and a space for a no-break or ideographic space`, async () => {
          const spaced = await path.createAccount(api, password);
          expectOk(await path.attempt(api, spaced, password.replaceAll(" ", "\u00a0")));
          const unbroken = await path.createAccount(api, "correct\u00a0horse\u3000battery staple");
          expectOk(await path.attempt(api, unbroken, password));
        });

        formCase(`${path.name}: an account hashed from the decomposed password as typed before logs in typed so, and from then on typed precomposed too`, async () => {
          const login = await accountHashedAsTyped(path, decomposed);
          // Its hash is of the decomposed form: until it is made again, that is the form that logs in.
          expectCode(await path.attempt(api, login, composed), "unauthenticated", invalidLogin, "INVALID_CREDENTIALS");
          expectOk(await path.attempt(api, login, decomposed));
          expectOk(await path.attempt(api, login, composed));
          expectOk(await path.attempt(api, login, decomposed));
        });

        formCase(`${path.name}: a wrong password is 401 INVALID_CREDENTIALS; decomposed, it costs two verifications for a known login and an unknown one alike, precomposed one`, async () => {
          const costs = argon2Costs();
          /** The refusal, its REST status and body checked as documented, and what it showed and cost. */
          const seen = (call: () => Promise<Outcome<unknown>>): Promise<Seen> =>
            costs.seen(async () => {
              const o = await call();
              expectCode(o, "unauthenticated", invalidLogin, "INVALID_CREDENTIALS");
              return o;
            });
          try {
            const known = await path.createAccount(api, composed);
            const unknown = () => (path.name.startsWith("GET /jwt") ? uniqueName("nobody") : uniqueEmail("nobody"));
            expectCode(await path.attempt(api, unknown(), wrongComposed), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS"); // the dummy hash is made by now
            for (const [wrong, verifies] of [[wrongDecomposed, 2], [wrongComposed, 1]] as const) {
              const reference = await seen(() => path.attempt(api, unknown(), wrong));
              assert.deepEqual(
                { ...reference, challenge: undefined },
                { code: "unauthenticated", message: invalidLogin, reason: "INVALID_CREDENTIALS", challenge: undefined, retryAfter: null, verifies, hashes: 0 },
              );
              assert.deepEqual(await seen(() => path.attempt(api, known, wrong)), reference, `the known login, ${verifies === 2 ? "decomposed" : "precomposed"}`);
            }
          } finally {
            costs.restore();
          }
        });

        formCase(`${path.name}: a password verified in both forms counts as one attempt`, async () => {
          const login = await path.createAccount(api, composed);
          // Two failures of the three that lock the login, each verified twice.
          for (let i = 0; i < 2; i++) expectCode(await path.attempt(api, login, wrongDecomposed), "unauthenticated", invalidLogin, "INVALID_CREDENTIALS");
          expectOk(await path.attempt(api, login, decomposed));
        });
      }

      it("PATCH /jwt/user: a new password is prepared as a sign-up's is", async () => {
        const user = uniqueName("forms");
        expectOk(await api.createJwtUser(user, password), 201);
        let access = expectOk(await api.jwtToken(user, password)).token;
        for (const [set, typed] of [[composed, decomposed], [decomposed, composed]] as const) {
          expectOk(await api.changeJwtPassword(access, set));
          access = expectOk(await api.jwtToken(user, typed)).token;
        }
        expectCode(await api.jwtToken(user, password), "unauthenticated", invalidLogin, "INVALID_CREDENTIALS");
      });
    });
  }
}
