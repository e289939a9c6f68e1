// Under TESSERA_JWT_ALG=HS256 a key is revoked by changing TESSERA_JWT_SECRET (the admin
// revocation answers so). As a revoked key's, the earlier secret's tokens are then refused, and so
// is what was made from them (README, Emergency revocation): a seed 003 authentication token made
// with a seed 004 access JWT or a seed 000 session access token the earlier secret signed is dead
// (404, as a used one), and the cookie session its exchange started ends (401 TOKEN_REVOKED, as
// after a logout), on every instance with the new secret; so once HS256 is left for another
// algorithm. What no such token made (a hand-off token from a seed 002 user token) lives on.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { decodeProtectedHeader } from "jose";
import { expectCode, expectOk } from "../support/api.js";
import { bearer, rest } from "../support/clients.js";
import { keyApi } from "../key/api.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { admin, clientIdHeader, createAuthenticationToken, jwtLogin, loginUserToken, signUp, startSession, uniqueEmail } from "../support/users.js";
import { exchangeHandOff, expectDeadHandOff, expectEndedCookie, sessionCookieHeader } from "./support.js";

const firstSecret = "the first HS256 secret, long enough: 0123456789";
const secondSecret = "the second HS256 secret, long enough: 9876543210";

/** A new user of `server`, with what its credentials present: a seed 004 access JWT, a seed 000 session access token, a seed 002 user token. */
async function credentialsOf(server: TestServer, email: string): Promise<{ jwt: Record<string, string>; session: Record<string, string>; userToken: Record<string, string> }> {
  await signUp(server, email);
  const access = await jwtLogin(server, email);
  const session = await startSession(server, email);
  return { jwt: bearer(access), session: { ...clientIdHeader, ...bearer(session.access_token) }, userToken: bearer(await loginUserToken(server, email)) };
}

type Presented = Awaited<ReturnType<typeof credentialsOf>>;

/** A hand-off token made with each credential of `presented` (its JWT's, its session's, its user token's). */
function handOffs(server: TestServer, presented: Presented): Promise<string[]> {
  return Promise.all([presented.jwt, presented.session, presented.userToken].map((headers) => createAuthenticationToken(server, headers)));
}

/** The cookie sessions the exchanges of `tokens` start, one after another. */
async function cookiesOf(server: TestServer, tokens: readonly string[]): Promise<string[]> {
  const values: string[] = [];
  for (const token of tokens) values.push(await exchangeHandOff(server, token));
  return values;
}

async function expectLiveCookie(server: TestServer, value: string): Promise<void> {
  const res = await rest(server.url, "GET", "/api/authenticationtoken", { headers: sessionCookieHeader(value) });
  assert.equal(res.status, 200, res.text);
}

for (const store of storesUnderTest()) {
  describe(`Changing TESSERA_JWT_SECRET under HS256 ends what the earlier secret's tokens made, on ${store}`, function () {
    this.timeout(60_000);
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-hs256-"));
    const shared = { TESSERA_DATA_DIR: dataDir, TESSERA_MONGODB_DATABASE: `tessera_hs256_${randomBytes(6).toString("hex")}` };
    after(() => rmSync(dataDir, { recursive: true, force: true }));

    /**
     * Runs `test` with `open`, which starts an instance on the one store, under HS256 with
     * `secret` or, without one, under EdDSA. Each is closed once `test` has ended, not before: on
     * MongoDB a test server's close drops its database.
     */
    async function withInstances(test: (open: (secret?: string) => Promise<TestServer>) => Promise<void>): Promise<void> {
      const servers: TestServer[] = [];
      try {
        await test(async (secret) => {
          const env = secret === undefined ? { ...shared, TESSERA_JWT_ALG: "EdDSA" } : { ...shared, TESSERA_JWT_ALG: "HS256", TESSERA_JWT_SECRET: secret };
          const server = await startTestServer({ store, env });
          servers.push(server);
          return server;
        });
      } finally {
        for (const server of servers.reverse()) await server.close();
      }
    }

    it("the admin revocation answers 400 UNSUPPORTED_OPERATION, naming the secret's change, for the header's kid and the secret's id alike", () =>
      withInstances(async (open) => {
        const server = await open(firstSecret);
        const keys = keyApi("rest", server.url);
        for (const kid of ["hs256", "hs256:0123456789abcdef"]) {
          expectCode(await keys.revokeKey(kid, admin), "failed_precondition", "HS256 keys are revoked by changing TESSERA_JWT_SECRET", "UNSUPPORTED_OPERATION");
        }
      }));

    it("hand-off tokens made with a JWT or a session access token it signed are dead (404); the cookie sessions they started end (401 TOKEN_REVOKED)", () =>
      withInstances(async (open) => {
        const email = uniqueEmail("hs256");
        const before = await open(firstSecret);
        const presented = await credentialsOf(before, email);
        const [fromJwt, fromSession, fromUserToken] = await handOffs(before, presented);
        const [cookieOfJwt, cookieOfSession, cookieOfUserToken] = await cookiesOf(before, await handOffs(before, presented));
        for (const value of [cookieOfJwt, cookieOfSession, cookieOfUserToken]) await expectLiveCookie(before, value);

        const after = await open(secondSecret);
        await expectEndedCookie(after, cookieOfJwt);
        await expectEndedCookie(after, cookieOfSession);
        await expectDeadHandOff(after, fromJwt);
        await expectDeadHandOff(after, fromSession);
        // Made from a seed 002 user token, which no key signs: it lives on.
        await expectLiveCookie(after, cookieOfUserToken);
        await exchangeHandOff(after, fromUserToken);
        // What the new secret's tokens make works, and still does after a restart with that secret.
        const made = await exchangeHandOff(after, await createAuthenticationToken(after, bearer(await jwtLogin(after, email))));
        await expectLiveCookie(after, made);
        const restarted = await open(secondSecret);
        await expectLiveCookie(restarted, made);
        await expectEndedCookie(restarted, cookieOfSession);
      }));

    it("leaving HS256 (TESSERA_JWT_ALG=EdDSA) ends them too, as the secret's tokens verify no more; what a user token made lives on", () =>
      withInstances(async (open) => {
        const email = uniqueEmail("hs256-left");
        const before = await open(firstSecret);
        const presented = await credentialsOf(before, email);
        const [fromJwt, fromSession] = await handOffs(before, presented);
        const [cookieOfJwt, cookieOfSession, cookieOfUserToken] = await cookiesOf(before, await handOffs(before, presented));

        const after = await open();
        await expectEndedCookie(after, cookieOfJwt);
        await expectEndedCookie(after, cookieOfSession);
        await expectDeadHandOff(after, fromJwt);
        await expectDeadHandOff(after, fromSession);
        await expectLiveCookie(after, cookieOfUserToken);
      }));

    // The other way: under HS256 no EdDSA or ES256 key verifies, a revoked one included. What
    // their tokens made ends as what an earlier secret's tokens made; taken for live, what a
    // revoked key's tokens made (ended under EdDSA) was live again under HS256.
    it("entering HS256 from EdDSA ends what the EdDSA keys' tokens made, a revoked key's included; what a user token made lives on", () =>
      withInstances(async (open) => {
        const email = uniqueEmail("hs256-entered");
        const before = await open();
        const presented = await credentialsOf(before, email);
        const [cookieOfJwt, cookieOfSession, cookieOfUserToken] = await cookiesOf(before, await handOffs(before, presented));
        const keys = keyApi("rest", before.url);
        expectOk(await keys.revokeKey(decodeProtectedHeader(presented.jwt.authorization!.slice("Bearer ".length)).kid!, admin));
        await expectEndedCookie(before, cookieOfJwt);
        // The next key signs: what its tokens make is live under EdDSA.
        const [fromNextKey] = await handOffs(before, await credentialsOf(before, uniqueEmail("hs256-entered")));

        const after = await open(firstSecret);
        await expectEndedCookie(after, cookieOfJwt);
        await expectEndedCookie(after, cookieOfSession);
        await expectDeadHandOff(after, fromNextKey!);
        await expectLiveCookie(after, cookieOfUserToken);
      }));
  });
}
