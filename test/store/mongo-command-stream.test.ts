// README's "Scale out" checked on the commands a MongoDB-backed server sends (the driver's command
// monitoring), call by call: each call type of the table "What each call costs in MongoDB" (and
// the paragraphs under it: an API-token rename and revocation, a user-token logout), with cold
// caches and warm ones, under the caps and past them, makes exactly the operations, on the
// collections, that the text lists (an operation it does not list fails here, a find as much
// as a delete or an aggregate); every filter it sends is served by an index the store made at
// start (`_id`, or an index whose first key the filter compares for equality; a hint names such
// an index): no collection scan on a call's path; and,
// with `w=majority&journal=true&readConcernLevel=majority` in MONGODB_URI ("Replica sets"), every
// write carries that write concern and every read the connection string's read concern, but for
// the reads of marks and an API-token creation's reads of the account's tokens, at "local".
import assert from "node:assert/strict";
import { MongoClient, type CommandStartedEvent, type Document } from "mongodb";
import { pollLast } from "../support/poll.js";
import { basic, bearer, rest, type RestResponse } from "../support/clients.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { admin, clientIdHeader, password, uniqueEmail, uniqueName } from "../support/users.js";

/** The driver's own commands (handshake, monitoring, sessions) and the start-up's index making. */
const unlisted = new Set(["hello", "isMaster", "ismaster", "ping", "endSessions", "buildInfo", "buildinfo", "getParameter", "listIndexes", "createIndexes", "listCollections"]);

/** One command, as the table counts it: its operation, collection, filters, and concerns. */
interface Sent {
  op: string;
  collection: string;
  filters: Document[];
  hint?: unknown;
  writeConcern?: Document;
  readConcern?: Document;
}

/** `command` (a started command's body) as the table counts it. */
function sentOf(name: string, command: Document): Sent {
  const collection = String(command[name]);
  const concerns = { writeConcern: command.writeConcern as Document | undefined, readConcern: command.readConcern as Document | undefined };
  switch (name) {
    case "find":
      return { op: "find", collection, filters: [command.filter ?? {}], hint: command.hint, ...concerns };
    case "count":
      return { op: "count", collection, filters: [command.query ?? {}], hint: command.hint, ...concerns };
    case "aggregate": {
      // countDocuments is an aggregate: $match, ($skip/$limit), $group counting.
      const pipeline = command.pipeline as Document[];
      const counts = pipeline.some((stage) => stage.$group !== undefined);
      return { op: counts ? "count" : "aggregate", collection, filters: [pipeline[0]?.$match ?? {}], hint: command.hint, ...concerns };
    }
    case "insert":
      return { op: "insert", collection, filters: [], ...concerns };
    case "update": {
      const updates = command.updates as Document[];
      return { op: updates.some((u) => u.upsert) ? "upsert" : "update", collection, filters: updates.map((u) => u.q as Document), ...concerns };
    }
    case "delete":
      return { op: "delete", collection, filters: (command.deletes as Document[]).map((d) => d.q as Document), ...concerns };
    case "findAndModify":
      return { op: "findAndModify", collection, filters: [command.query ?? {}], ...concerns };
    default:
      return { op: name, collection, filters: [], ...concerns };
  }
}

/** Whether `value` (a filter's value for a field) compares the field for equality. */
function isEquality(value: unknown): boolean {
  if (value === null || typeof value !== "object" || value instanceof Date || Array.isArray(value)) return true;
  const operators = Object.keys(value).filter((k) => k.startsWith("$"));
  return operators.length === 0 || operators.every((k) => k === "$eq" || k === "$in");
}

/** The sets of fields `filter` compares for equality: one set per branch of a top-level $or. */
function equalityBranches(filter: Document): Set<string>[] {
  const fields = new Set<string>();
  let branches: Set<string>[] = [new Set()];
  for (const [field, value] of Object.entries(filter)) {
    if (field === "$and") {
      for (const part of value as Document[]) {
        const inner = equalityBranches(part);
        branches = branches.flatMap((b) => inner.map((i) => new Set([...b, ...i])));
      }
    } else if (field === "$or") {
      const alternatives = (value as Document[]).flatMap(equalityBranches);
      // A branch without an equality the rest lacks cannot narrow the read: only all of them together do.
      branches = branches.flatMap((b) => alternatives.map((a) => new Set([...b, ...a])));
    } else if (!field.startsWith("$") && isEquality(value)) {
      fields.add(field);
    }
  }
  return branches.map((b) => new Set([...b, ...fields]));
}

/** The index of `indexes` that serves `filter` (each branch of it), or a description of what is missing. */
function indexFor(sent: Sent, filter: Document, indexes: Map<string, Document>): string | undefined {
  const names: string[] = [];
  for (const branch of equalityBranches(filter)) {
    const usable = [...indexes].filter(([, key]) => branch.has(Object.keys(key)[0]!)).map(([name]) => name);
    if (typeof sent.hint === "string") {
      if (!usable.includes(sent.hint)) return undefined;
      names.push(sent.hint);
    } else if (branch.has("_id")) {
      names.push("_id_");
    } else if (usable.length > 0) {
      names.push(usable[0]!);
    } else {
      return undefined;
    }
  }
  return names.join(" | ");
}

describe("mongo store: the commands each call sends (README, Scale out)", function () {
  let server: TestServer;
  /** A server whose caps are 1 (API tokens: 2), for the operations past them. */
  let capped: TestServer;
  let client: MongoClient;
  const emit = MongoClient.prototype.emit;
  /** Every command the servers sent since the last call looked at (but the signing keys' timed re-reads). */
  let sent: Sent[] = [];
  const inFlight = new Set<number>();

  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    const uri = process.env.MONGODB_URI!;
    const options = "monitorCommands=true&w=majority&journal=true&readConcernLevel=majority";
    const monitored = uri + (uri.includes("?") ? "&" : /^mongodb(\+srv)?:\/\/[^/]+$/.test(uri) ? "/?" : "?") + options;
    // The server's client is made by the store: its command events are heard where they are emitted.
    (MongoClient.prototype as unknown as { emit: (...args: unknown[]) => boolean }).emit = function (this: MongoClient, name: unknown, ...args: unknown[]) {
      if (this.options.monitorCommands && this !== client) {
        const event = args[0] as CommandStartedEvent & { requestId: number };
        if (name === "commandStarted" && !unlisted.has(event.commandName)) {
          const one = sentOf(event.commandName, event.command);
          // The signing keys and their revocation marks are re-read on a timer, not by a call.
          if (one.collection !== "signing_keys" && !(one.collection === "marks" && JSON.stringify(one.filters).includes('"key-revoked:'))) {
            sent.push(one);
            inFlight.add(event.requestId);
          }
        } else if (name === "commandSucceeded" || name === "commandFailed") {
          inFlight.delete(event.requestId);
        }
      }
      return (emit as (...a: unknown[]) => boolean).call(this, name, ...args);
    };
    // Caches and last-use intervals at their longest: a warm call stays warm on a loaded machine.
    const env = { MONGODB_URI: monitored, TESSERA_HOUSEKEEPING_INTERVAL_SECONDS: "0", TESSERA_API_TOKEN_CACHE_SECONDS: "60", TESSERA_LAST_USED_INTERVAL_SECONDS: "86400" };
    server = await startTestServer({ store: "mongo", env });
    const caps = { TESSERA_MAX_SESSIONS_PER_USER: "1", TESSERA_MAX_USER_TOKENS_PER_USER: "1", TESSERA_MAX_JWT_REFRESH_TOKENS_PER_USER: "1", TESSERA_MAX_API_TOKENS_PER_ACCOUNT: "2" };
    capped = await startTestServer({ store: "mongo", env: { ...env, ...caps } });
    client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
    await client.connect();
    sent = [];
  });

  after(async () => {
    (MongoClient.prototype as unknown as { emit: unknown }).emit = emit;
    await client?.close();
    await server?.close();
    await capped?.close();
  });

  /** The indexes of `collection` by name, as the store made them at start. */
  const indexCache = new Map<string, Map<string, Document>>();
  async function indexesOf(collection: string): Promise<Map<string, Document>> {
    let found = indexCache.get(collection);
    if (found === undefined) {
      const list = await client
        .db(server.config.mongodbDatabase)
        .collection(collection)
        .listIndexes()
        .toArray()
        .catch((error: { code?: unknown }) => {
          if (error.code === 26) return []; // NamespaceNotFound: none made
          throw error;
        });
      indexCache.set(collection, (found = new Map(list.map((index) => [index.name as string, index.key as Document]))));
    }
    return found;
  }

  /**
   * Makes `call` and checks the commands it sent: their operations by collection are `expected`
   * exactly (those that may land after the answer, as the audit inserts, are waited for), each filter is
   * served by an index, and each carries the concerns README states.
   */
  async function costOf(what: string, call: () => Promise<RestResponse>, status: number, expected: Record<string, number>): Promise<RestResponse> {
    assert.deepEqual(sent.map((one) => `${one.op} ${one.collection}`), [], `sent between calls, before ${what}`);
    const res = await call();
    assert.equal(res.status, status, `${what}: ${res.text}`);
    // Every command the table lists, whichever of them land after the answer (not the audit
    // inserts alone), and none still under way (generous: the machine may be loaded).
    const total = Object.values(expected).reduce((a, b) => a + b, 0);
    await pollLast(() => sent.length >= total && inFlight.size === 0, Boolean, { limitMs: 20_000, intervalMs: 20 });
    const made = sent;
    sent = [];
    const counts: Record<string, number> = {};
    for (const one of made) counts[`${one.op} ${one.collection}`] = (counts[`${one.op} ${one.collection}`] ?? 0) + 1;
    const sorted = (record: Record<string, number>) => Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
    assert.deepEqual(sorted(counts), sorted(expected), `${what}: the operations it made`);
    for (const one of made) {
      const shown = `${what}: ${one.op} ${one.collection} ${JSON.stringify(one.filters)} hint ${JSON.stringify(one.hint)}`;
      for (const filter of one.filters) assert.ok(indexFor(one, filter, await indexesOf(one.collection)), `${shown}: no index serves it`);
      if (["insert", "update", "upsert", "delete", "findAndModify"].includes(one.op)) {
        assert.deepEqual({ w: one.writeConcern?.w, j: one.writeConcern?.j }, { w: "majority", j: true }, `${shown}: write concern`);
      } else {
        const local = one.collection === "marks" || (one.collection === "api_tokens" && typeof one.hint === "string");
        assert.equal(one.readConcern?.level, local ? "local" : "majority", `${shown}: read concern`);
      }
    }
    return res;
  }

  const epoch = { "find users": 1, "find user_passwords": 1, "find marks": 1 };
  /** The operations of `parts` added up. */
  const sum = (...parts: Record<string, number>[]): Record<string, number> => {
    const total: Record<string, number> = {};
    for (const part of parts) for (const [key, n] of Object.entries(part)) total[key] = (total[key] ?? 0) + n;
    return total;
  };
  const times = (n: number, part: Record<string, number>) => sum(...Array.from({ length: n }, () => part));
  // Sign-up: the user looked up ($or on login_1, loginKey_1; an absent user's epoch), the
  // sign-up limit's slot (login_attempts 3 reads, 2 inserts), the user inserted.
  const signUp = sum(epoch, { "find login_attempts": 3, "insert login_attempts": 2, "insert users": 1, "insert audit_events": 1 });
  /** A login's slot, taken and released. */
  const slot = { "find login_attempts": 2, "insert login_attempts": 1, "insert login_attempt_releases": 1 };
  /** The first login of a user from an address: a second slot (the address's), the address remembered, lastLoginAt. */
  const firstLogin = sum(slot, epoch, { "upsert known_logins": 1, "update users": 1 });
  /** A seed 000 login from a remembered address. */
  const login = sum(slot, epoch, { "find known_logins": 1, "insert sessions": 1, "insert refresh_tokens": 1, "find sessions": 1 }, epoch, { "insert audit_events": 2 });
  const userTokenLogin = sum(slot, epoch, { "find known_logins": 1, "insert user_tokens": 1, "find user_tokens": 2 }, epoch, { "insert audit_events": 2 });
  /** A seed 004 login. */
  const issue = sum(slot, epoch, { "find known_logins": 1 }, epoch, { "insert audit_events": 1 });
  /** An API-token creation. */
  const creation = { "insert api_tokens": 1, "find api_tokens": 2, "update api_tokens": 1, "insert audit_events": 2 };
  const tokenPath = (user: string) => `/jwt/token?${new URLSearchParams({ user, pass: password })}`;

  it("each call type makes the operations README's table lists, each served by an index, at the stated concerns", async () => {
    const email = uniqueEmail("stream");
    await costOf("seed 000 sign-up", () => rest(server.url, "POST", "/user", { json: { email, password }, headers: clientIdHeader }), 201, signUp);

    // Login, the first from this address: two slots (login, address), the address remembered,
    // lastLoginAt written after a read of the user; the session's cap boundary; the user again.
    const body = { account_type: "traditional", email, password };
    await costOf("login, address not remembered", () => rest(server.url, "POST", "/session", { json: body, headers: clientIdHeader }), 200, sum(login, firstLogin));
    const pair = (await costOf("login", () => rest(server.url, "POST", "/session", { json: body, headers: clientIdHeader }), 200, login)).body as { access_token: string; refresh_token: string };

    const access = { ...clientIdHeader, ...bearer(pair.access_token) };
    const sessionCheck = sum({ "find sessions": 1, "find marks": 1 }, epoch);
    await costOf("token check", () => rest(server.url, "GET", "/session", { headers: access }), 200, sessionCheck);
    await costOf("refresh", () => rest(server.url, "PUT", "/session", { json: { refresh_token: pair.refresh_token }, headers: access }), 200, {
      ...sum({ "find sessions": 3, "find refresh_tokens": 2, "find marks": 4 }, epoch, epoch),
      "insert marks": 2,
      "insert refresh_tokens": 1,
      "update sessions": 1,
      "insert audit_events": 1,
    });

    // API tokens: a creation (the account's first, then its second: its revocations read by the
    // first's id), a check on a cold cache (its last use written), then on a warm one.
    const account = uniqueName("acct");
    const create = () => rest(server.url, "POST", "/v1/frontend/auth", { json: { account_id: account, description: "d" }, headers: admin });
    await costOf("API-token creation, the account's first", create, 200, creation);
    const apiToken = ((await costOf("API-token creation", create, 200, { ...creation, "find marks": 1 })).body as { token: string }).token;
    await costOf("API-token check, cache cold", () => rest(server.url, "GET", "/v1/api/auth", { headers: bearer(apiToken) }), 200, {
      "find api_tokens": 1,
      "find marks": 1,
      "find api_token_usage": 2,
      "count api_tokens": 1,
      "insert marks": 1,
      "upsert api_token_usage": 1,
    });
    const link = (
      (await costOf("API-token check, cache warm", () => rest(server.url, "GET", "/v1/api/auth", { headers: bearer(apiToken) }), 200, {})).body as { token_link: string }
    ).token_link;
    // A rename and a revocation (the paragraphs under the table) read the token first.
    const token = { "find api_tokens": 1, "find marks": 1, "find api_token_usage": 1 };
    await costOf("API-token rename", () => rest(server.url, "PUT", "/v1/frontend/auth", { json: { token_link: link, description: "e" }, headers: admin }), 200, {
      ...token,
      "findAndModify api_tokens": 1,
      "find marks": 2,
      "insert audit_events": 2,
    });
    await costOf("API-token revocation", () => rest(server.url, "DELETE", `/v1/frontend/auth/${account}`, { json: { token_link: link }, headers: admin }), 200, {
      ...token,
      "insert marks": 1,
      "update api_tokens": 1,
      "insert audit_events": 2,
    });

    // User tokens: a login (the address remembered), then checks: the first use writes the last use.
    const userToken = ((await costOf("user-token login", () => rest(server.url, "POST", "/auth/login", { headers: basic(email, password) }), 200, userTokenLogin)).body as { token: string }).token;
    const userTokenCheck = sum({ "find user_tokens": 1, "find marks": 1, "find user_token_usage": 1 }, epoch);
    const lastUse = (collection: string, usage: string) => ({ [`count ${collection}`]: 1, [`find ${usage}`]: 1, "insert marks": 1, [`upsert ${usage}`]: 1 });
    const authCreate = { "insert auth_tokens": 1, "insert audit_events": 1 };
    const made = await costOf(
      "authentication token creation, the user token's first use",
      () => rest(server.url, "GET", "/api/authenticationtoken", { headers: bearer(userToken) }),
      200,
      sum(userTokenCheck, lastUse("user_tokens", "user_token_usage"), authCreate),
    );
    const authToken = (made.body as { token: string }).token;
    // Its credential's reads: the user token it was made from, by _id.
    const source = { "find user_tokens": 1, "find marks": 1 };
    await costOf("authentication token get", () => rest(server.url, "GET", `/api/authenticationtoken/${authToken}`, { headers: bearer(userToken) }), 200, sum(userTokenCheck, { "find auth_tokens": 1, "find marks": 1 }, epoch, source));
    const exchanged = await costOf("authentication token exchange", () => rest(server.url, "GET", `/api/authenticationtoken/${authToken}/user`), 200, {
      ...sum({ "find auth_tokens": 2, "find marks": 1 }, epoch, source, { "insert marks": 1, "insert user_tokens": 1, "find user_tokens": 2 }, epoch),
      "insert audit_events": 2,
    });
    const cookie = /^tessera_session=([^;]+)/.exec(exchanged.headers.getSetCookie().find((c) => c.startsWith("tessera_session=")) ?? "")?.[1];
    assert.ok(cookie, "no session cookie");
    // A cookie session's check: as a user token's, then the credentials it descends from.
    await costOf(
      "authentication token creation with the cookie, its first use",
      () => rest(server.url, "GET", "/api/authenticationtoken", { headers: { cookie: `tessera_session=${cookie}` } }),
      200,
      sum(userTokenCheck, source, lastUse("user_tokens", "user_token_usage"), authCreate),
    );

    await costOf("user-token logout", () => rest(server.url, "POST", "/auth/logout", { headers: bearer(userToken) }), 200, {
      ...sum(userTokenCheck, { "find user_tokens": 1 }),
      "insert marks": 1,
      "update user_tokens": 1,
      "insert audit_events": 1,
    });

    // Seed 004: a sign-up from the same address (its slot's group starts after the first
    // sign-up's ended: that group's releases deleted), logins, checks, refresh tokens.
    const user = uniqueName("jwt");
    await costOf("JWT sign-up", () => rest(server.url, "POST", "/jwt/user", { json: { user, pass: password } }), 201, { ...signUp, "delete login_attempt_releases": 1 });
    await costOf("JWT issue, the first login of the user (the address not remembered for it)", () => rest(server.url, "GET", tokenPath(user)), 200, sum(issue, firstLogin));
    const jwt = (await costOf("JWT issue", () => rest(server.url, "GET", tokenPath(user)), 200, issue)).text;
    await costOf("JWT check", () => rest(server.url, "GET", "/jwt/check", { headers: bearer(jwt) }), 200, epoch);
    const refreshToken = (
      await costOf("JWT refresh token", () => rest(server.url, "GET", "/jwt/refresh_token", { headers: bearer(jwt) }), 200, {
        ...times(3, epoch),
        "insert jwt_refresh_tokens": 1,
        "find jwt_refresh_tokens": 1,
        "insert audit_events": 1,
      })
    ).text;
    await costOf("JWT issue from a refresh token", () => rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: refreshToken })}`), 200, {
      ...times(2, sum({ "find jwt_refresh_tokens": 1, "find marks": 1 }, epoch)),
      "insert audit_events": 1,
    });

    // Key fetches: none per call.
    await costOf("key fetch", () => rest(server.url, "GET", "/.well-known/jwks.json"), 200, {});
    await costOf("key fetch (seed 004)", () => rest(server.url, "GET", "/jwt/pubkey"), 200, {});
  });
  it("past the caps, a creation makes the further operations README's table lists", async () => {
    const on = capped.url;
    const email = uniqueEmail("capped");
    await costOf("seed 000 sign-up", () => rest(on, "POST", "/user", { json: { email, password }, headers: clientIdHeader }), 201, signUp);
    const body = { account_type: "traditional", email, password };
    await costOf("login, address not remembered", () => rest(on, "POST", "/session", { json: body, headers: clientIdHeader }), 200, sum(login, firstLogin));
    // Past the cap: the oldest past it, the ended ones (none), the sessions without an endedAt
    // copy and their marks (a live one goes); its end claimed, its refresh tokens and it deleted.
    await costOf("login past the session cap", () => rest(on, "POST", "/session", { json: body, headers: clientIdHeader }), 200, {
      ...sum(login, { "find sessions": 3, "find marks": 1, "insert marks": 1, "delete refresh_tokens": 1, "delete sessions": 1 }),
      "insert audit_events": 3,
    });

    await costOf("user-token login", () => rest(on, "POST", "/auth/login", { headers: basic(email, password) }), 200, userTokenLogin);
    await costOf("user-token login past the cap", () => rest(on, "POST", "/auth/login", { headers: basic(email, password) }), 200, {
      ...sum(userTokenLogin, { "find user_tokens": 1, "insert marks": 1, "update user_tokens": 1 }),
      "insert audit_events": 3,
    });

    const user = uniqueName("jwt");
    await costOf("JWT sign-up", () => rest(on, "POST", "/jwt/user", { json: { user, pass: password } }), 201, { ...signUp, "delete login_attempt_releases": 1 });
    const jwt = (await costOf("JWT issue", () => rest(on, "GET", tokenPath(user)), 200, sum(issue, firstLogin))).text;
    const refreshToken = { ...times(3, epoch), "insert jwt_refresh_tokens": 1, "find jwt_refresh_tokens": 1, "insert audit_events": 1 };
    await costOf("JWT refresh token", () => rest(on, "GET", "/jwt/refresh_token", { headers: bearer(jwt) }), 200, refreshToken);
    await costOf("JWT refresh token past the cap", () => rest(on, "GET", "/jwt/refresh_token", { headers: bearer(jwt) }), 200, {
      ...sum(refreshToken, { "find jwt_refresh_tokens": 1, "insert marks": 1, "update jwt_refresh_tokens": 1 }),
      "insert audit_events": 2,
    });

    const account = uniqueName("acct");
    const create = () => rest(on, "POST", "/v1/frontend/auth", { json: { account_id: account, description: "d" }, headers: admin });
    await costOf("API-token creation, the account's first", create, 200, creation);
    await costOf("API-token creation", create, 200, { ...creation, "find marks": 1 });
    // At the bound: the two tokens before it and their marks, one each; withdrawn.
    await costOf("API-token creation at the bound", create, 400, { "insert api_tokens": 1, "find api_tokens": 1, "find marks": 2, "delete api_tokens": 1, "insert audit_events": 2 });
  });
});
