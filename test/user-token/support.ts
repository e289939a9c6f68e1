// Helpers for the seed 002 and seed 003 suites: users created through seed 000's API, user
// tokens through seed 002's, and the credentials of the other services for cross-use checks.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { hashSecret } from "../../src/core/secrets.js";
import { Passwords } from "../../src/core/passwords.js";
import type { UserRecord, UserTokenRecord } from "../../src/store/ports.js";
import { rest } from "../support/clients.js";
import { testAdminToken, testClientId, type TestServer } from "../support/server.js";

export const password = "correct horse battery staple";

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function uniqueEmail(prefix = "user"): string {
  return `${prefix}-${randomBytes(5).toString("hex")}@example.com`;
}

import { basic, bearer } from "../support/clients.js";
export { basic, bearer };

/** Seed 000 sign-up (`POST /user`); returns the stored user. */
export async function createUser(server: TestServer, email = uniqueEmail()): Promise<UserRecord> {
  const res = await rest(server.url, "POST", "/user", { json: { email, password }, headers: { "x-koms-clientid": testClientId } });
  assert.equal(res.status, 201, res.text);
  const user = await server.tessera.store.users.findByLogin(email.trim().toLowerCase());
  assert.ok(user);
  return user;
}

/**
 * A user with first and last name, which no public sign-up sets: written to the store directly
 * (with a real argon2id hash, cheap parameters), as an admin tool would.
 */
export async function createNamedUser(
  server: TestServer,
  names: { firstname?: string; lastname?: string },
  /** The server's "now" (its clock may be a ManualClock). */
  createdAt: Date,
): Promise<UserRecord> {
  const passwords = new Passwords({ memoryKib: 1024, iterations: 1, parallelism: 1 });
  const email = uniqueEmail("named");
  return server.tessera.store.users.create({
    id: randomBytes(12).toString("hex"),
    login: email,
    emails: [email],
    ...names,
    passwordHash: await passwords.hash(password),
    createdAt,
  });
}

/** Seed 002 login over REST; returns the user token. */
export async function loginToken(server: TestServer, email: string, body?: Record<string, unknown>): Promise<string> {
  const res = await rest(server.url, "POST", "/auth/login", { headers: basic(email, password), ...(body !== undefined && { json: body }) });
  assert.equal(res.status, 200, res.text);
  return res.body.token as string;
}

/** The stored record of a user token (the API never shows lastUsageTime after login). */
export async function storedToken(server: TestServer, secret: string): Promise<UserTokenRecord> {
  const record = await server.tessera.store.userTokens.findByHash(hashSecret(secret));
  assert.ok(record, "token not stored");
  return record;
}

/** Seed 000 session for the user (`POST /session`); returns the access token. */
export async function sessionAccessToken(server: TestServer, email: string): Promise<string> {
  const res = await rest(server.url, "POST", "/session", {
    json: { account_type: "traditional", email, password },
    headers: { "x-koms-clientid": testClientId },
  });
  assert.equal(res.status, 200, res.text);
  return res.body.access_token as string;
}

/** Seed 004 user and password-login JWT access token. */
export async function jwtAccessToken(server: TestServer): Promise<{ user: string; token: string }> {
  const user = `jwt-${randomBytes(5).toString("hex")}`;
  const created = await rest(server.url, "POST", "/jwt/user", { json: { user, pass: password } });
  assert.equal(created.status, 201, created.text);
  const res = await rest(server.url, "GET", `/jwt/token?user=${encodeURIComponent(user)}&pass=${encodeURIComponent(password)}`);
  assert.equal(res.status, 200, res.text);
  return { user, token: res.text };
}

/** Seed 001 API token (admin creates it). */
export async function apiToken(server: TestServer): Promise<string> {
  const res = await rest(server.url, "POST", "/v1/frontend/auth", {
    json: { account_id: `acct-${randomBytes(4).toString("hex")}`, description: "cross-use test" },
    headers: bearer(testAdminToken),
  });
  assert.equal(res.status, 200, res.text);
  return res.body.token as string;
}

/** Asserts a REST error answer: status, Connect code name, and a message matching `message`. */
export function assertError(res: { status: number; body: any; text: string }, status: number, code: string, message?: RegExp): void {
  assert.equal(res.status, status, res.text);
  assert.equal(res.body.code, code, res.text);
  assert.equal(typeof res.body.message, "string");
  if (message) assert.match(res.body.message, message);
}
