// Users and their credentials for a test's setup: unique logins, passwords the policy accepts,
// and sign-ups and logins through the public REST API of each seed (setup is not what a test
// asserts, so it takes the shortest path; the behaviour under test goes through the API clients).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { loginKey } from "../../src/core/login-name.js";
import { hashSecret } from "../../src/core/secrets.js";
import { Passwords } from "../../src/core/passwords.js";
import type { UserRecord, UserTokenRecord } from "../../src/store/ports.js";
import { basic, bearer, rest } from "./clients.js";
import { testAdminToken, testClientId, type TestServer } from "./server.js";

/** A password the policy accepts. */
export const password = "correct horse battery staple";
/** Another one, for password changes and wrong-password attempts by a user who has `password`. */
export const otherPassword = "tr0ubador & a second staple";

/** What the password policy answers a password that breaks one of its rules. */
export const weakPassword = {
  onlyBlank: "password must not be only white space, control or invisible characters",
  tooCommon: "password too common: it is on a list of frequently used passwords",
  isLogin: "password must not be the login or part of it",
};
/** "password1" in full-width letters and digit, as a keyboard in full-width mode types it: a common password. */
export const fullWidthCommon = "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff11";

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The `x-koms-clientid` header of seed 000 calls. */
export const clientIdHeader = { "x-koms-clientid": testClientId };
/** The admin credential (seed 001's /v1/frontend methods, key rotation). */
export const admin = bearer(testAdminToken);

/** A name no other test uses: `prefix-<10 hex>`. */
export function uniqueName(prefix = "user"): string {
  return `${prefix}-${randomBytes(5).toString("hex")}`;
}

/** An email no other test uses. */
export function uniqueEmail(prefix = "user"): string {
  return `${uniqueName(prefix)}@example.com`;
}

/** Seed 000 sign-up (`POST /user`); returns the stored user. */
export async function signUp(server: TestServer, email = uniqueEmail(), pass = password): Promise<UserRecord> {
  const res = await rest(server.url, "POST", "/user", { json: { email, password: pass }, headers: clientIdHeader });
  assert.equal(res.status, 201, res.text);
  const spelling = email.trim().toLowerCase();
  const user = await server.tessera.store.users.findByLogin(spelling, loginKey(spelling));
  assert.ok(user);
  return user;
}

/**
 * An account written to the store directly, as an admin tool or an older version would (with a
 * login or password today's sign-ups refuse, say): a real argon2id hash of `pass`, cheap
 * parameters; an email login is its own email too.
 */
export async function storedAccount(
  server: TestServer,
  login: string,
  pass = password,
  more: { firstname?: string; lastname?: string; createdAt?: Date } = {},
): Promise<UserRecord> {
  const passwords = new Passwords({ memoryKib: 1024, iterations: 1, parallelism: 1 });
  return server.tessera.store.users.create({
    id: randomBytes(12).toString("hex"),
    login,
    loginKey: loginKey(login),
    emails: login.includes("@") ? [login] : [],
    passwordHash: await passwords.hash(pass),
    createdAt: new Date(),
    ...more,
  });
}

/**
 * A user with first and last name, which no public sign-up sets: written to the store directly,
 * as an admin tool would.
 */
export async function createNamedUser(
  server: TestServer,
  names: { firstname?: string; lastname?: string },
  /** The server's "now" (its clock may be a ManualClock). */
  createdAt: Date,
): Promise<UserRecord> {
  return storedAccount(server, uniqueEmail("named"), password, { ...names, createdAt });
}

/** Seed 000 session (`POST /session`). */
export async function startSession(server: TestServer, email: string, pass = password): Promise<{ access_token: string; refresh_token: string }> {
  const res = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password: pass }, headers: clientIdHeader });
  assert.equal(res.status, 200, res.text);
  return res.body;
}

/** Seed 002 login (`POST /auth/login`); returns the user token. */
export async function loginUserToken(server: TestServer, login: string, body?: Record<string, unknown>, pass = password): Promise<string> {
  const res = await rest(server.url, "POST", "/auth/login", { headers: basic(login, pass), ...(body !== undefined && { json: body }) });
  assert.equal(res.status, 200, res.text);
  return res.body.token as string;
}

/** The stored record of a user token (the API never shows lastUsageTime after login). */
export async function storedUserToken(server: TestServer, secret: string): Promise<UserTokenRecord> {
  const record = await server.tessera.store.userTokens.findByHashWithUser(hashSecret(secret)).then((f) => f?.token ?? null);
  assert.ok(record, "token not stored");
  return record;
}

/** Seed 004 sign-up (`POST /jwt/user`); returns the user name. */
export async function createJwtUser(server: TestServer, user = uniqueName("jwt"), pass = password): Promise<string> {
  const res = await rest(server.url, "POST", "/jwt/user", { json: { user, pass } });
  assert.equal(res.status, 201, res.text);
  return user;
}

/** Seed 004 password login (`GET /jwt/token`); returns the access JWT. */
export async function jwtLogin(server: TestServer, user: string, pass = password): Promise<string> {
  const res = await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user, pass })}`);
  assert.equal(res.status, 200, res.text);
  return res.text;
}

/** Seed 004 refresh token (`GET /jwt/refresh_token`) for a password-login access JWT. */
export async function jwtRefreshToken(server: TestServer, access: string): Promise<string> {
  const res = await rest(server.url, "GET", "/jwt/refresh_token", { headers: bearer(access) });
  assert.equal(res.status, 200, res.text);
  return res.text;
}

/** One JWT of each kind Tessera signs, for new users: a seed 004 access token and its refresh token, a seed 000 session pair. */
export async function jwtsOfEachKind(server: TestServer): Promise<{ access: string; refresh: string; session: { access_token: string; refresh_token: string } }> {
  const access = await jwtLogin(server, await createJwtUser(server));
  const email = uniqueEmail("kinds");
  await signUp(server, email);
  return { access, refresh: await jwtRefreshToken(server, access), session: await startSession(server, email) };
}

/** Seed 001 API token of a new account (the admin creates it). */
export async function createApiToken(server: TestServer, accountId = uniqueName("acct"), description = "test token"): Promise<string> {
  const res = await rest(server.url, "POST", "/v1/frontend/auth", { json: { account_id: accountId, description }, headers: admin });
  assert.equal(res.status, 200, res.text);
  return res.body.token as string;
}

/** Seed 003 authentication token for a user credential (`GET /api/authenticationtoken`). */
export async function createAuthenticationToken(server: TestServer, headers: Record<string, string>): Promise<string> {
  const res = await rest(server.url, "GET", "/api/authenticationtoken", { headers });
  assert.equal(res.status, 200, res.text);
  return res.body.token as string;
}

/** The value of the `tessera_session` cookie a seed 003 exchange answers for a user token. */
export function sessionCookie(server: TestServer, userToken: string): Promise<string> {
  return sessionCookieFrom(server, bearer(userToken));
}

/** The value of the `tessera_session` cookie a seed 003 exchange answers for the credential `headers` carry (a bearer token, a cookie). */
export async function sessionCookieFrom(server: TestServer, headers: Record<string, string>): Promise<string> {
  const token = await createAuthenticationToken(server, headers);
  const res = await rest(server.url, "GET", `/api/authenticationtoken/${token}/user`);
  assert.equal(res.status, 200, res.text);
  const value = /^tessera_session=([^;]+)/.exec(res.headers.getSetCookie().find((c) => c.startsWith("tessera_session=")) ?? "")?.[1];
  assert.ok(value, "no session cookie");
  return value;
}
