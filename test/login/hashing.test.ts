// Sign-ups are limited: every API that creates users counts its sign-ups per client address
// (TOO_MANY_SIGNUPS, 429 with Retry-After), duplicates included, malformed requests not.
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { expectCode, expectOk } from "../support/api.js";
import { password, uniqueEmail, uniqueName } from "../support/users.js";
import { expectRetryLater, loginApi, transports, type LoginApi } from "./api.js";

const tooManySignUps = "too many sign-ups from this address; try again later";

for (const store of storesUnderTest()) {
  for (const transport of transports) {
    describe(`sign-ups are limited per address (${store}, ${transport})`, function () {
      this.timeout(60_000);
      let server: TestServer;
      let api: LoginApi;
      before(async () => {
        server = await startTestServer({ store, env: { TESSERA_SIGNUP_MAX_PER_ADDRESS: "3" } });
        api = loginApi(transport, server.url);
      });
      after(async () => {
        api?.close();
        await server?.close();
      });

      it("counts POST /user and POST /jwt/user alike, duplicates too, and refuses the next with 429 and Retry-After", async () => {
        const email = uniqueEmail("signup");
        expectOk(await api.signUp(email, password), 201);
        expectCode(await api.signUp("not an email", password), "invalid_argument", "email is not a valid email address"); // not counted
        expectCode(await api.createJwtUser(uniqueName("signup"), "short"), "invalid_argument", /password too short/); // not counted
        expectOk(await api.createJwtUser(uniqueName("signup"), password), 201);
        expectCode(await api.signUp(email.toUpperCase(), password), "already_exists", "a user with this email already exists");
        expectRetryLater(await api.createJwtUser(uniqueName("signup"), password), "resource_exhausted", tooManySignUps);
        expectRetryLater(await api.signUp(uniqueEmail("signup"), password), "resource_exhausted", tooManySignUps);
        // Logins are not sign-ups.
        expectOk(await api.logIn(email, password));
      });
    });
  }
}
