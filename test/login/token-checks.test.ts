// Token checks never wait behind password hashing: argon2 runs on libuv's thread pool, and so
// does WebCrypto in Node, so access tokens are verified with node:crypto on the calling thread.
// Shown here by taking WebCrypto's verify away from the (in-process) server: token checks on
// every transport still answer. How long they take under a flood is bench/flood.ts's to measure.
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { expectCode, expectOk } from "../support/api.js";
import { password, uniqueEmail, uniqueName } from "../support/users.js";
import { loginApi, transports, type LoginApi } from "./api.js";

/** Runs `fn` while WebCrypto's verify throws. */
async function withoutWebCryptoVerify<T>(fn: () => Promise<T>): Promise<T> {
  const subtle = webcrypto.subtle;
  assert.equal(globalThis.crypto.subtle, subtle);
  Object.defineProperty(subtle, "verify", {
    configurable: true,
    value: () => Promise.reject(new Error("WebCrypto verify was used")),
  });
  try {
    return await fn();
  } finally {
    delete (subtle as { verify?: unknown }).verify; // the prototype's again
  }
}

for (const store of storesUnderTest()) {
  for (const transport of transports) {
    describe(`token checks use no WebCrypto (${store}, ${transport})`, function () {
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

      it("GET /session verifies the session's access token", async () => {
        const email = uniqueEmail("check");
        expectOk(await api.signUp(email, password), 201);
        const login = await api.logIn(email, password);
        expectOk(login);
        await withoutWebCryptoVerify(async () => {
          expectOk(await api.getSession(login.data!.token));
          // A forged signature is still refused.
          const [h, p, s] = login.data!.token.split(".");
          const forged = `${h}.${p}.${s!.startsWith("A") ? "B" : "A"}${s!.slice(1)}`;
          expectCode(await api.getSession(forged), "unauthenticated", "invalid token signature", "INVALID_TOKEN");
        });
      });

      it("GET /jwt/check verifies a seed 004 access token", async () => {
        const user = uniqueName("check");
        expectOk(await api.createJwtUser(user, password), 201);
        const token = await api.jwtToken(user, password);
        expectOk(token);
        await withoutWebCryptoVerify(async () => {
          const checked = await api.jwtCheck(token.data!.token);
          expectOk(checked);
          assert.equal(checked.data?.user, user);
        });
      });
    });
  }
}
