// Helpers of the credential lifetime suites: two server instances on one store (MongoDB: one
// database; SQLite: one file), and a gate that holds a password login in flight, after it read
// the user and before it checks the password, so a test can change the user meanwhile.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Collection } from "mongodb";
import type { Clock } from "../../src/core/clock.js";
import type { UserStore } from "../../src/store/ports/users.js";
import { rest } from "../support/clients.js";
import { expectCode, restOutcome } from "../support/api.js";
import { sessionCookieOf } from "../authentication-token/api.js";
import { pollLast, pollUntil } from "../support/poll.js";
import { startTestServer, type StoreKind, type TestServer } from "../support/server.js";
import { admin } from "../support/users.js";

export interface ServerPair {
  readonly a: TestServer;
  readonly b: TestServer;
  close(): Promise<void>;
}

/** Two instances sharing one store; `clock`: theirs, or one each (a's, b's). */
export async function startServerPair(store: StoreKind, env: Record<string, string> = {}, clock?: Clock | readonly [Clock, Clock]): Promise<ServerPair> {
  const dataDir = mkdtempSync(join(tmpdir(), "tessera-pair-"));
  const shared = { ...env, TESSERA_DATA_DIR: dataDir, TESSERA_MONGODB_DATABASE: `tessera_pair_${randomBytes(6).toString("hex")}` };
  const [clockA, clockB] = Array.isArray(clock) ? clock : [clock as Clock | undefined, clock as Clock | undefined];
  const a = await startTestServer({ store, env: shared, ...(clockA && { clock: clockA }) });
  const b = await startTestServer({ store, env: shared, ...(clockB && { clock: clockB }) });
  return {
    a,
    b,
    async close() {
      await b.close();
      await a.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface LoginGate {
  /** Resolves once a login has read its user and is held. */
  readonly reached: Promise<void>;
  /** Lets the held login go on (and stops holding new ones). */
  release(): void;
}

/** A gate calls wait at: `reached` once the first has arrived, all let through by `open()`. */
export interface Gate {
  readonly reached: Promise<void>;
  /** Called by a held call: resolves once the gate opens. */
  pass(): Promise<void>;
  open(): void;
}

export function gate(): Gate {
  let open!: () => void;
  let arrived!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const reached = new Promise<void>((resolve) => (arrived = resolve));
  return {
    reached,
    pass() {
      arrived();
      return opened;
    },
    open,
  };
}

/** A REST answer refused with `status`, `message` and `reason` (its ErrorInfo's). */
export function assertRefused(res: { status: number; text: string; body: any }, status: number, message: string, reason: string): void {
  assert.equal(res.status, status, res.text);
  assert.equal(res.body.message, message);
  assert.equal(res.body.details[0].debug.reason, reason);
}

/**
 * Holds the next call of `target[method]` once it has answered, until `open()`; calls after it
 * go through. `restore()` puts the method back (also when no call came).
 */
export function holdAfter<T extends object>(target: T, method: keyof T & string): Gate & { restore(): void } {
  const methods = target as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = methods[method]!;
  const held = gate();
  const restore = () => {
    methods[method] = original;
  };
  methods[method] = async (...args: unknown[]) => {
    const answer = await original.apply(target, args);
    restore();
    await held.pass();
    return answer;
  };
  return { ...held, restore };
}

/** Holds the next password logins of `server` right after they read the user. */
export function holdLogins(server: TestServer): LoginGate {
  const users = server.tessera.store.users as UserStore;
  const original = users.findByLogin;
  const held = gate();
  users.findByLogin = async (login, loginKey) => {
    const user = await original.call(users, login, loginKey);
    await held.pass();
    return user;
  };
  return {
    reached: held.reached,
    release() {
      users.findByLogin = original;
      held.open();
    },
  };
}

/**
 * Holds the next password login of `server` once its password was checked against the hash its
 * read of the user gave: as the login gives its throttle slots back (a success's first store call).
 */
export function holdCheckedLogins(server: TestServer): LoginGate {
  const held = holdAfter(server.tessera.store.loginAttempts, "release");
  return { reached: held.reached, release: () => held.open() };
}

/** The points where a test holds a password login in flight, named. */
export const passwordLoginHolds = [
  ["after it read the user", holdLogins],
  ["once its password was checked", holdCheckedLogins],
] as const;

/** How long story() and until() poll (generous: the machine is shared), and how often. */
const pace = { limitMs: 20_000, intervalMs: 20 };

/**
 * The `type outcome reason` of the user's audit events (those of `types` only, when given), oldest
 * first, once `count` are listed.
 */
export async function story(server: TestServer, userId: string, count: number, types?: readonly string[]): Promise<string[]> {
  const told = async () => {
    const page = await rest(server.url, "GET", `/v1/admin/audit-events?${new URLSearchParams({ user_id: userId })}`, { headers: admin });
    assert.equal(page.status, 200, page.text);
    return (page.body.events as Array<{ type: string; outcome: string; reason?: string }>)
      .filter((e) => types === undefined || types.includes(e.type))
      .map((e) => `${e.type} ${e.outcome}${e.reason ? ` ${e.reason}` : ""}`)
      .reverse();
  };
  return pollLast(told, (events) => events.length >= count, pace);
}

/** Waits until `done` holds (a call that goes on once its caller was answered). */
export async function until(what: string, done: () => Promise<boolean>): Promise<void> {
  await pollUntil(what, done, pace);
}

/** Whether `server`'s store holds the session `id` ended, the user token (or cookie session) of `hash` disabled, the seed 004 refresh token `jti` revoked. */
export const withdrawn = {
  session: async (server: TestServer, id: string) => (await server.tessera.store.sessions.findById(id))?.endedAt !== undefined,
  userToken: async (server: TestServer, hash: string) => (await server.tessera.store.userTokens.findByHashWithUser(hash))?.token.enabled === false,
  jwtRefreshToken: async (server: TestServer, jti: string) => (await server.tessera.store.jwtRefreshTokens.findByJti(jti))?.revokedAt !== undefined,
};

/** The ids of the sessions, the hashes of the user tokens and cookie sessions, and the jtis of the seed 004 refresh tokens `server` writes from now on. */
export interface Written {
  sessions: string[];
  userTokens: string[];
  jwtRefreshTokens: string[];
}

export function recordWrites(server: TestServer): Written {
  const written: Written = { sessions: [], userTokens: [], jwtRefreshTokens: [] };
  const { sessions, userTokens, jwtRefreshTokens } = server.tessera.store;
  const createRefreshToken = jwtRefreshTokens.create;
  jwtRefreshTokens.create = async (...args) => {
    written.jwtRefreshTokens.push(args[0].jti);
    return createRefreshToken.apply(jwtRefreshTokens, args);
  };
  const createSession = sessions.createThenSync;
  sessions.createThenSync = async (...args) => {
    written.sessions.push(args[0].id);
    return createSession.apply(sessions, args);
  };
  const createUserToken = userTokens.create;
  userTokens.create = async (...args) => {
    written.userTokens.push(args[0].hash);
    return createUserToken.apply(userTokens, args);
  };
  const createUserTokenThenSync = userTokens.createThenSync;
  userTokens.createThenSync = async (...args) => {
    written.userTokens.push(args[0].hash);
    return createUserTokenThenSync.apply(userTokens, args);
  };
  return written;
}

/**
 * On MongoDB (every store of this process), holds each of the next `count` inserts into
 * `collection`, once acknowledged, until all of them are: creations racing then each read what
 * the others inserted. Answers the release, which also puts the driver back (call it whatever
 * happened).
 */
export function insertsHeldTogether(collection: string, count: number): () => void {
  const insertOne = Collection.prototype.insertOne;
  let waiting = count;
  let release!: () => void;
  const all = new Promise<void>((resolve) => (release = resolve));
  Collection.prototype.insertOne = async function (this: Collection, ...args: Parameters<Collection["insertOne"]>) {
    const result = await insertOne.apply(this, args);
    if (this.collectionName === collection && waiting > 0) {
      if (--waiting === 0) release();
      await all;
    }
    return result;
  } as Collection["insertOne"];
  return () => {
    Collection.prototype.insertOne = insertOne;
    release();
  };
}

/** The headers of a request carrying the `tessera_session` cookie `value`. */
export const sessionCookieHeader = (value: string) => ({ cookie: `tessera_session=${value}` });

/** The message of a seed 003 token that is unknown, used, expired or dead. */
export const handOffNotFound = "authentication token not found (unknown, used or expired)";

/** Exchanges a seed 003 token on `server`; the cookie value it set. */
export async function exchangeHandOff(server: TestServer, token: string): Promise<string> {
  const res = await rest(server.url, "GET", `/api/authenticationtoken/${token}/user`);
  assert.equal(res.status, 200, res.text);
  return sessionCookieOf(res.headers)!.value;
}

/** A seed 003 token `server` refuses to exchange as a dead one (404), starting no session. */
export async function expectDeadHandOff(server: TestServer, token: string): Promise<void> {
  const res = await rest(server.url, "GET", `/api/authenticationtoken/${token}/user`);
  expectCode(restOutcome(res), "not_found", handOffNotFound, "TOKEN_NOT_FOUND");
  assert.equal(sessionCookieOf(res.headers), undefined, "no session started");
}

/** A cookie session `server` refuses as ended (401 TOKEN_REVOKED, as after a logout). */
export async function expectEndedCookie(server: TestServer, value: string): Promise<void> {
  const res = await rest(server.url, "GET", "/api/authenticationtoken", { headers: sessionCookieHeader(value) });
  expectCode(restOutcome(res), "unauthenticated", "session cookie is disabled", "TOKEN_REVOKED");
}
