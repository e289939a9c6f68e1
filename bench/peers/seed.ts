// Seeds Tessera's store with the volume the peer gets (seed/supabase-seed.sql in the peers kit):
// N users (20,000 by default), 2 sessions each, 5 refresh tokens per session of which 4 are spent.
// Rows are written by Tessera's own store adapters (and the core's login keys and secret hashes),
// so the seed follows the schema wherever it goes.
//
//   node --import tsx bench/peers/seed.ts sqlite <data dir> [users]
//   node --import tsx bench/peers/seed.ts mongo <uri> <database> [users]
//
// SQLite: run it before the server starts on that directory. The schema is created by the store
// itself; the rows go in through the adapters on a second connection that commits once at the
// end without fsyncs (a seed that fails is thrown away, so durability buys nothing here).
// MongoDB: run it while nothing else writes these records (it may run beside a server).
import argon2 from "argon2";
import Database from "better-sqlite3";
import { join } from "node:path";
import { loadConfig } from "../../src/config.js";
import { loginKey } from "../../src/core/login-name.js";
import { hashSecret, randomId, randomToken } from "../../src/core/secrets.js";
import type { RefreshTokenStore, SessionStore, UserStore } from "../../src/store/index.js";
import { openMongoStore } from "../../src/store/mongo/mongo-store.js";
import { openSqliteStore, SQLITE_FILE_NAME } from "../../src/store/sqlite/sqlite-store.js";
import { sqliteRefreshTokens } from "../../src/store/sqlite/sqlite-refresh-tokens.js";
import { sqliteSessions } from "../../src/store/sqlite/sqlite-sessions.js";
import { sqliteUsers } from "../../src/store/sqlite/sqlite-users.js";

interface Ports {
  users: UserStore;
  sessions: SessionStore;
  refreshTokens: RefreshTokenStore;
}

const SESSIONS_PER_USER = 2;
const TOKENS_PER_SESSION = 5;

/** One user with its sessions and refresh tokens (all but the last token of a session spent). */
async function seedUser(ports: Ports, i: number, passwordHash: string, now: Date, later: Date): Promise<void> {
  const login = `seed${i}@seed.example.com`;
  const user = await ports.users.create({ id: randomId(), login, loginKey: loginKey(login), emails: [login], passwordHash, createdAt: now });
  for (let s = 0; s < SESSIONS_PER_USER; s++) {
    const sessionId = randomId();
    for (let g = 1; g <= TOKENS_PER_SESSION; g++) {
      const hash = hashSecret(randomToken(32));
      const token = { hash, sessionId, createdAt: now, expiresAt: later };
      // The first is stored with its session, as a login stores it; the others as refreshes do.
      if (g === 1) await ports.sessions.createThenSync({ id: sessionId, userId: user.id, clientId: "web", accessJti: randomId(), createdAt: now, expiresAt: later, credentialEpoch: user.credentialEpoch }, token);
      else await ports.refreshTokens.insertThenSync(token);
      if (g < TOKENS_PER_SESSION) await ports.refreshTokens.spendThenSync(hash, now, ""); // spent long ago: no child pair kept
    }
  }
}

async function main(): Promise<void> {
  const [kind, target, ...rest] = process.argv.slice(2);
  if ((kind !== "sqlite" && kind !== "mongo") || !target || (kind === "mongo" && !rest[0])) {
    console.error("usage: seed.ts sqlite <data dir> [users] | seed.ts mongo <uri> <database> [users]");
    process.exit(2);
  }
  const count = Number((kind === "mongo" ? rest[1] : rest[0]) ?? 20000);
  const config = loadConfig({ ...process.env, MONGODB_URI: "" });
  // A real hash at the configured cost (so nothing would want to rehash it); one for every user.
  const passwordHash = await argon2.hash(randomToken(12), {
    type: argon2.argon2id,
    memoryCost: config.argon2MemoryKib,
    timeCost: config.argon2Iterations,
    parallelism: config.argon2Parallelism,
  });
  const now = new Date();
  const later = new Date(now.getTime() + 30 * 24 * 3600 * 1000);
  const t0 = performance.now();

  if (kind === "sqlite") {
    // The store creates the file (private modes) and its schema, as the server would.
    await (await openSqliteStore(target)).close();
    const db = new Database(join(target, SQLITE_FILE_NAME));
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = OFF");
    const ports: Ports = { users: sqliteUsers(db), sessions: sqliteSessions(db), refreshTokens: sqliteRefreshTokens(db) };
    db.exec("BEGIN IMMEDIATE");
    for (let i = 1; i <= count; i++) await seedUser(ports, i, passwordHash, now, later);
    db.exec("COMMIT");
    db.pragma("wal_checkpoint(TRUNCATE)");
    const counts = db.prepare("SELECT (SELECT count(*) FROM users) users, (SELECT count(*) FROM sessions) sessions, (SELECT count(*) FROM refresh_tokens) refresh_tokens").get();
    db.close();
    console.log(JSON.stringify({ store: "sqlite", ...(counts as object), seconds: +((performance.now() - t0) / 1000).toFixed(1) }));
    return;
  }

  const store = await openMongoStore(target, { dbName: rest[0]!, serverSelectionTimeoutMs: 30000 });
  try {
    let next = 1;
    const lane = async () => {
      while (next <= count) await seedUser(store, next++, passwordHash, now, later);
    };
    await Promise.all(Array.from({ length: 16 }, lane));
    const total = count * SESSIONS_PER_USER;
    console.log(JSON.stringify({ store: "mongo", users: count, sessions: total, refresh_tokens: total * TOKENS_PER_SESSION, seconds: +((performance.now() - t0) / 1000).toFixed(1) }));
  } finally {
    await store.close();
  }
}

await main();
