// Accounts stored before logins were compared by key keep working: until a start-up gives them
// their key they are found by their exact spelling; at start-up each gets its key (oldest first),
// so look-alikes of them are then the same login. Two old accounts whose logins are look-alikes
// of each other (names were case-sensitive) both stay reachable by their own exact spelling.
import assert from "node:assert/strict";
import { join } from "node:path";
import Database from "better-sqlite3";
import { decodeJwt } from "jose";
import { MongoClient } from "mongodb";
import { Passwords } from "../../src/core/passwords.js";
import { SQLITE_FILE_NAME } from "../../src/store/sqlite/sqlite-store.js";
import { MARKS } from "../../src/store/mongo/mongo-marks.js";
import { startTestServer, storesUnderTest, type StoreKind, type TestServer } from "../support/server.js";
import { expectCode, expectOk } from "../support/api.js";
import { password, uniqueName } from "../support/users.js";
import { loginApi } from "./api.js";

interface OldAccount {
  id: string;
  login: string;
  createdAt: Date;
  /** The key an older key function gave it; none: written before login keys. */
  loginKey?: string;
}

/** Writes accounts as the previous version did: no login key (or the one an older key function gave). */
async function writeOldAccounts(server: TestServer, accounts: OldAccount[]): Promise<void> {
  const passwordHash = await new Passwords({ memoryKib: 1024, iterations: 1, parallelism: 1 }).hash(password);
  if (server.config.mongodbUri) {
    const client = new MongoClient(server.config.mongodbUri);
    try {
      await client
        .db(server.config.mongodbDatabase)
        .collection<{ _id: string }>("users")
        .insertMany(
          accounts.map((a) => ({
            _id: a.id,
            login: a.login,
            ...(a.loginKey !== undefined && { loginKey: a.loginKey }),
            emails: a.login.includes("@") ? [a.login] : [],
            passwordHash,
            createdAt: a.createdAt,
          })),
        );
    } finally {
      await client.close();
    }
    return;
  }
  const db = new Database(join(server.config.dataDir, SQLITE_FILE_NAME));
  try {
    const insert = db.prepare(`INSERT INTO users (id, login, login_key, emails, password_hash, active, created_at, password_changed_at, version)
      VALUES (?, ?, ?, ?, ?, 1, ?, ?, 0)`);
    for (const a of accounts) {
      insert.run(a.id, a.login, a.loginKey ?? null, JSON.stringify(a.login.includes("@") ? [a.login] : []), passwordHash, a.createdAt.getTime(), a.createdAt.getTime());
    }
  } finally {
    db.close();
  }
}

/** Takes away the database's record of the key function its accounts were keyed by, as a version before that record left it. */
async function forgetKeyFunction(server: TestServer): Promise<void> {
  if (server.config.mongodbUri) {
    const client = new MongoClient(server.config.mongodbUri);
    try {
      await client.db(server.config.mongodbDatabase).collection<{ _id: string }>(MARKS).deleteMany({ _id: { $regex: /^login-key-function:/ } });
    } finally {
      await client.close();
    }
    return;
  }
  const db = new Database(join(server.config.dataDir, SQLITE_FILE_NAME));
  try {
    db.exec("DELETE FROM login_key_functions");
  } finally {
    db.close();
  }
}

/** Another start of `first`'s deployment: a server on its database. */
function restart(first: TestServer, store: StoreKind): Promise<TestServer> {
  const shared: Record<string, string> =
    store === "mongo" ? { TESSERA_MONGODB_DATABASE: first.config.mongodbDatabase } : { TESSERA_DATA_DIR: first.config.dataDir };
  return startTestServer({ store, env: shared });
}

/** The user id of the JWT `api` issues for `login` and the test password. */
async function subjectOf(api: ReturnType<typeof loginApi>, login: string): Promise<string | undefined> {
  const token = await api.jwtToken(login, password);
  expectOk(token);
  return decodeJwt(token.data!.token).sub;
}

/** Whether the server logged the look-alike warning naming exactly `ids`. */
function loggedClash(server: TestServer, ids: string[]): boolean {
  return server.logs.some((line) => {
    const entry = JSON.parse(line) as { msg: string; userIds?: string[] };
    return entry.msg.includes("look-alike") && JSON.stringify(entry.userIds) === JSON.stringify(ids);
  });
}

for (const store of storesUnderTest()) {
  describe(`accounts stored before login keys (${store})`, function () {
    this.timeout(60_000);
    let first: TestServer;
    let restarted: TestServer;
    const tag = uniqueName("old").slice(4);
    const older = { id: `old-1-${tag}`, login: `Ann-${tag}`, createdAt: new Date(Date.now() - 3 * 86_400_000) };
    const younger = { id: `old-2-${tag}`, login: `ann-${tag}`, createdAt: new Date(Date.now() - 2 * 86_400_000) };
    const email = { id: `old-3-${tag}`, login: `bob-${tag}@example.com`, createdAt: new Date(Date.now() - 86_400_000) };

    it("log in by their exact spelling; after a restart, look-alikes are them, and clashing old accounts keep their exact spellings", async () => {
      first = await startTestServer({ store });
      await writeOldAccounts(first, [older, younger, email]);
      const api = loginApi("rest-h1", first.url);
      try {
        for (const account of [older, younger]) {
          const token = await api.jwtToken(account.login, password);
          expectOk(token);
          assert.equal(decodeJwt(token.data!.token).sub, account.id);
        }
        expectOk(await api.logIn(email.login, password));
      } finally {
        api.close();
      }
      restarted = await restart(first, store);
      assert.ok(loggedClash(restarted, [younger.id]), "the clash is logged");
      const grpc = loginApi("grpc", restarted.url);
      try {
        const subject = (login: string) => subjectOf(grpc, login);
        assert.equal(await subject(older.login), older.id);
        assert.equal(await subject(younger.login), younger.id);
        assert.equal(await subject(`ANN-${tag.toUpperCase()}`), older.id); // the key's holder: the older account
        expectCode(await grpc.createJwtUser(`aNN-${tag}`, password), "already_exists", "a user with this name already exists", "USER_EXISTS");
        expectOk(await grpc.logIn(email.login.toUpperCase(), password));
        expectCode(await grpc.signUp(`\uff42ob-${tag}@example.com`, password), "already_exists", "a user with this email already exists", "USER_EXISTS");
      } finally {
        grpc.close();
      }
    });

    // `restarted` shares the first server's database: it closes first (its own temp dir goes).
    after(async () => {
      await restarted?.close();
      await first?.close();
    });
  });
}

// Accounts whose key an older key function gave them (before whitespace was collapsed and U+1E9E
// folded in keys): they kept that key, so a look-alike of one could be signed up as a second
// account. The first start with a newer key function gives each its current key, once.
for (const store of storesUnderTest()) {
  describe(`accounts keyed by an older key function (${store})`, function () {
    this.timeout(60_000);
    let first: TestServer;
    let restarted: TestServer;
    const tag = uniqueName("key").slice(4);
    const day = 86_400_000;
    // Keyed when keys kept runs of spaces and U+1E9E.
    const spaced = { id: `spaced-${tag}`, login: `bob  ${tag}`, loginKey: `bob  ${tag}`, createdAt: new Date(Date.now() - 3 * day) };
    const sharp = { id: `sharp-${tag}`, login: `stra\u1e9ee-${tag}`, loginKey: `stra\u00dfe-${tag}`, createdAt: new Date(Date.now() - 2 * day) };
    // Keyed so too, and signed up again as a look-alike under the current key function.
    const clashing = { id: `clashing-${tag}`, login: `ann  ${tag}`, loginKey: `ann  ${tag}`, createdAt: new Date(Date.now() - day) };

    it("after a restart their look-alikes are them; one whose look-alike was signed up keeps its key, both keep their exact spellings, and the clash is logged", async () => {
      first = await startTestServer({ store });
      await writeOldAccounts(first, [spaced, sharp, clashing]);
      const api = loginApi("rest-h1", first.url);
      try {
        expectOk(await api.createJwtUser(`ann ${tag}`, password), 201);
      } finally {
        api.close();
      }
      await forgetKeyFunction(first);
      restarted = await restart(first, store);
      assert.ok(loggedClash(restarted, [clashing.id]), "the clash is logged");
      const grpc = loginApi("grpc", restarted.url);
      try {
        const subject = (login: string) => subjectOf(grpc, login);
        assert.equal(await subject(`BOB ${tag}`), spaced.id);
        assert.equal(await subject(`strasse-${tag}`), sharp.id);
        expectCode(await grpc.createJwtUser(`bob ${tag}`, password), "already_exists", "a user with this name already exists", "USER_EXISTS");
        expectCode(await grpc.createJwtUser(`STRASSE-${tag}`, password), "already_exists", "a user with this name already exists", "USER_EXISTS");
        assert.equal(await subject(clashing.login), clashing.id);
        assert.notEqual(await subject(`ann ${tag}`), clashing.id);
      } finally {
        grpc.close();
      }
    });

    after(async () => {
      await restarted?.close();
      await first?.close();
    });
  });
}
