// The store contract: one suite, run against every adapter (see contract.test.ts), so the core can
// trust any Store the same way.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { runInCall } from "../../src/call-scope.js";
import {
  type AuditEventRecord,
  CAP_BATCH,
  CLOCK_STEP_MS,
  DeadlineExceededError,
  DuplicateError,
  StoreUnavailableError,
  type HeldSlot,
  type NewSession,
  type NewSigningKey,
  type Reservation,
  type Store,
} from "../../src/store/ports.js";
import { newSigningKey, type StoreHarness } from "../support/store.js";

const CONCURRENCY = 20;
/** How many uncapped creations of a test's setup are made at once (few: FerretDB answers each within the store's 2 s bound on a loaded machine). */
const WAVE = 8;
/** A housekeeping batch larger than anything one test deletes. */
const BATCH = 1000;
const t0 = new Date("2026-01-02T03:04:05.678Z");
const at = (offsetMs: number): Date => new Date(t0.getTime() + offsetMs);
const id = (prefix: string): string => `${prefix}-${randomUUID()}`;

async function settle<T>(calls: Array<Promise<T>>): Promise<{ values: T[]; errors: unknown[] }> {
  const results = await Promise.allSettled(calls);
  return {
    values: results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : [])),
    errors: results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : [])),
  };
}

/**
 * Stores `session` with a first refresh token, as a login does (the token expiring at
 * `tokenExpiresAt`, by default with the session); answers the session's record.
 */
async function createSession(s: Store, session: NewSession, tokenExpiresAt = session.expiresAt) {
  return (await s.sessions.createThenSync(session, { hash: id("rt-hash"), sessionId: session.id, createdAt: session.createdAt, expiresAt: tokenExpiresAt })).record;
}

const newKey = (generation: number, kid = id("kid")): NewSigningKey => newSigningKey(generation, at(generation), kid);

/**
 * `makeHarness` gives the harness of the suite's shared databases; `makeOwnHarness` one for each
 * test that opens databases of its own (`ownDatabases()`), cleaned up once that test has run (a
 * harness of freshStores: a MongoDB database emptied for a later test, not a new one each time).
 */
export function storeContract(makeHarness: () => Promise<StoreHarness>, makeOwnHarness: () => Promise<StoreHarness> = makeHarness): void {
  let harness: StoreHarness;
  let store: Store;
  // A second store on the same database: another service instance racing the first.
  let twin: Store;
  let sharedName: string;
  const both = (i: number): Store => (i % 2 === 0 ? store : twin);
  let ownHarness: Promise<StoreHarness> | undefined;
  /** The harness of the running test's own databases (the same name reaches the same database within the test). */
  const ownDatabases = (): Promise<StoreHarness> => (ownHarness ??= makeOwnHarness());

  before(async () => {
    harness = await makeHarness();
    const name = id("shared");
    sharedName = name;
    store = await harness.open(name);
    twin = await harness.open(name);
  });
  afterEach(async () => {
    const done = ownHarness;
    ownHarness = undefined;
    await (await done)?.cleanup();
  });
  after(async () => {
    await harness?.cleanup();
  });

  describe("store", () => {
    it("answers ping", async () => {
      await store.ping();
    });

    it("has not failed for good (failure() is undefined) while it takes writes", () => {
      assert.equal(store.failure(), undefined);
    });

    it("reports its kind", () => {
      assert.equal(store.kind, harness.kind);
    });

    it("a call asked for after the caller's deadline is not made: DeadlineExceededError, nothing written", async () => {
      const login = `${id("late")}@example.com`;
      const late = { requestId: "r", deadline: performance.now() - 1 };
      const user = { id: id("u"), login, loginKey: login, emails: [login], passwordHash: "$argon2id$hash", createdAt: at(0) };
      await assert.rejects(runInCall(late, () => store.users.create(user)), DeadlineExceededError);
      await assert.rejects(runInCall(late, () => store.ping()), DeadlineExceededError);
      assert.equal(await store.users.findByLogin(login, login), null);
      // With time left, the same call is made.
      const inTime = await runInCall({ requestId: "r", deadline: performance.now() + 10_000 }, () => store.users.create(user));
      assert.equal(inTime.login, login);
    });

    it("after close, answers StoreUnavailableError and close is idempotent", async () => {
      const s = await (await ownDatabases()).open(id("closing"));
      await s.close();
      await s.close();
      await assert.rejects(s.ping(), StoreUnavailableError);
      await assert.rejects(s.users.findById("x"), StoreUnavailableError);
      await assert.rejects(s.auditEvents.append({ id: id("closed-event"), time: at(0), type: "login", outcome: "success" }), StoreUnavailableError);
    });
  });

  describe("users", () => {
    // Keys are the core's to compute; here any distinct text does (upper-cased, to tell them apart).
    const newUser = (login = id("user") + "@example.com", loginKey = login.toUpperCase()) => ({
      id: id("u"),
      login,
      loginKey,
      emails: [login, "other@example.com"],
      passwordHash: "$argon2id$hash-1",
      createdAt: at(0),
    });

    it("creates a user with defaults and finds it by id and login", async () => {
      const input = { ...newUser(), firstname: "Ada", lastname: "Lovelace" };
      const created = await store.users.create(input);
      const expected = {
        ...input,
        active: true,
        passwordChangedAt: input.createdAt,
        version: 0,
        credentialEpoch: 0,
      };
      assert.deepEqual(created, expected);
      assert.deepEqual(await twin.users.findById(input.id), expected);
      assert.deepEqual(await twin.users.findByLogin(input.login, input.loginKey), expected);
      assert.equal(await store.users.findById(id("missing")), null);
      assert.equal(await store.users.findByLogin("missing@example.com", "MISSING@EXAMPLE.COM"), null);
    });

    it("finds an account by its key under another spelling (a look-alike)", async () => {
      const input = newUser();
      const created = await store.users.create(input);
      assert.deepEqual(await twin.users.findByLogin(`other-spelling-of-${input.login}`, input.loginKey), created);
    });

    it("refuses a look-alike (another spelling, the same key) with DuplicateError(login)", async () => {
      const first = newUser();
      await store.users.create(first);
      await assert.rejects(twin.users.create(newUser(`look-alike-${first.login}`, first.loginKey)), (error: unknown) => {
        assert.ok(error instanceof DuplicateError);
        assert.equal(error.key, "login");
        return true;
      });
    });

    it(`creates exactly one of ${CONCURRENCY} concurrent signups of look-alikes of one login`, async () => {
      const key = id("KEY");
      const { values, errors } = await settle(
        Array.from({ length: CONCURRENCY }, (_, i) => both(i).users.create(newUser(`spelling-${i}-${key}`, key))),
      );
      assert.equal(values.length, 1);
      for (const error of errors) assert.ok(error instanceof DuplicateError && error.key === "login", String(error));
      assert.equal((await store.users.findByLogin("any", key))?.id, values[0]!.id);
    });

    it("gives accounts stored without a key their key, oldest first; a clashing one keeps its exact spelling", async () => {
      const tag = id("legacy");
      const legacy = (n: number, login: string) => ({ id: `${tag}-${n}`, login, emails: [login], passwordHash: "$argon2id$legacy", createdAt: at(n) });
      // "Ann" (older) and "ann" (younger) existed as two accounts; "bob" clashes with nobody.
      const older = legacy(1, `Ann-${tag}`);
      const younger = legacy(2, `ann-${tag}`);
      const single = legacy(3, `bob-${tag}`);
      await harness.insertLegacyUsers(sharedName, [younger, single, older]);
      // Before the backfill: found by exact spelling only.
      assert.equal((await store.users.findByLogin(younger.login, "no key yet"))?.id, younger.id);
      const keyOf = (login: string) => login.toLowerCase();
      const { filled, clashes } = await twin.users.backfillLoginKeys(keyOf);
      assert.equal(filled, 2);
      assert.deepEqual(clashes, [younger.id]);
      assert.equal((await store.users.findById(older.id))?.loginKey, keyOf(older.login));
      assert.equal((await store.users.findById(single.id))?.loginKey, keyOf(single.login));
      assert.equal("loginKey" in (await store.users.findById(younger.id))!, false);
      // The exact spelling wins; any other spelling finds the key's holder.
      assert.equal((await store.users.findByLogin(younger.login, keyOf(younger.login)))?.id, younger.id);
      assert.equal((await store.users.findByLogin(older.login, keyOf(older.login)))?.id, older.id);
      assert.equal((await store.users.findByLogin(`ANN-${tag}`, keyOf(older.login)))?.id, older.id);
      // A new look-alike is a duplicate of the key's holder; run again, nothing changes.
      await assert.rejects(store.users.create(newUser(`aNN-${tag}`, keyOf(older.login))), DuplicateError);
      const again = await store.users.backfillLoginKeys(keyOf);
      assert.deepEqual(again, { filled: 0, clashes: [younger.id] });
    });

    it("re-keys once per key function an account whose key an older one gave it; one whose new key another holds keeps its own and is reported", async () => {
      const name = id("rekey");
      const rekeyed = await ownDatabases();
      const fresh = await rekeyed.open(name);
      const other = await rekeyed.open(name);
      const tag = id("k");
      // The key function of this test folds case and collapses spaces; the older one only folded case.
      const keyOf = (login: string) => login.toLowerCase().replace(/ +/g, " ");
      const oldKeyOf = (login: string) => login.toLowerCase();
      const account = (n: number, login: string, loginKey?: string) => ({ id: `${tag}-${n}`, login, loginKey, emails: [], passwordHash: "$argon2id$legacy", createdAt: at(n) });
      const keyless = account(1, `Cy  Dee-${tag}`);
      const stale = account(2, `Ann  Lee-${tag}`, oldKeyOf(`Ann  Lee-${tag}`));
      const moved = account(3, `Bob  Ray-${tag}`, oldKeyOf(`Bob  Ray-${tag}`));
      // A look-alike of `moved`, younger: the key `moved` gets is taken when its turn comes.
      const movedTwin = account(4, `bob   ray-${tag}`, oldKeyOf(`bob   ray-${tag}`));
      // Signed up under the new key function as a look-alike of `stale`: it holds `stale`'s new key.
      const lookAlike = account(5, `ann lee-${tag}`, keyOf(`ann lee-${tag}`));
      const current = account(6, `Dan-${tag}`, keyOf(`Dan-${tag}`));
      await rekeyed.insertLegacyUsers(name, [current, lookAlike, movedTwin, moved, stale, keyless]);
      const keyNow = async (user: { id: string }) => (await fresh.users.findById(user.id))?.loginKey;

      assert.deepEqual(await other.users.backfillLoginKeys(keyOf, 2), { filled: 2, clashes: [stale.id, movedTwin.id] });
      assert.equal(await keyNow(keyless), keyOf(keyless.login));
      assert.equal(await keyNow(moved), keyOf(moved.login));
      // Neither of two accounts that now compare equal is changed; both keep their exact spelling.
      assert.equal(await keyNow(stale), stale.loginKey);
      assert.equal(await keyNow(lookAlike), lookAlike.loginKey);
      assert.equal(await keyNow(movedTwin), movedTwin.loginKey);
      assert.equal(await keyNow(current), current.loginKey);
      assert.equal((await fresh.users.findByLogin(stale.login, keyOf(stale.login)))?.id, stale.id);
      assert.equal((await fresh.users.findByLogin(movedTwin.login, keyOf(movedTwin.login)))?.id, movedTwin.id);
      assert.equal((await fresh.users.findByLogin(`ANN LEE-${tag}`, keyOf(lookAlike.login)))?.id, lookAlike.id);
      // A look-alike of a re-keyed account is its duplicate, and finds it.
      assert.equal((await fresh.users.findByLogin(`BOB RAY-${tag}`, keyOf(moved.login)))?.id, moved.id);
      await assert.rejects(fresh.users.create(newUser(`BOB RAY-${tag}`, keyOf(moved.login))), DuplicateError);

      // Done once per key function: a later start does not read the accounts again (an account
      // given an outdated key since, as by an older instance, keeps it), and reports no clash.
      const late = account(7, `Eve  Fox-${tag}`, oldKeyOf(`Eve  Fox-${tag}`));
      await rekeyed.insertLegacyUsers(name, [late]);
      assert.deepEqual(await fresh.users.backfillLoginKeys(keyOf, 2), { filled: 0, clashes: [] });
      assert.equal(await keyNow(late), late.loginKey);
      // A newer key function re-keys again.
      assert.deepEqual(await fresh.users.backfillLoginKeys(keyOf, 3), { filled: 1, clashes: [stale.id, movedTwin.id] });
      assert.equal(await keyNow(late), keyOf(late.login));
      // Without a key function version: the accounts without a key only, as before.
      assert.deepEqual(await fresh.users.backfillLoginKeys(keyOf), { filled: 0, clashes: [] });
    });

    it("leaves unset optional fields absent", async () => {
      const input = newUser();
      const found = await store.users.create(input).then(() => store.users.findById(input.id));
      assert.ok(found);
      for (const field of ["firstname", "lastname", "lastLoginAt", "deactivatedAt", "_id"]) {
        assert.equal(field in found, false, field);
      }
    });

    it("returns copies: changing a record changes nothing stored", async () => {
      const input = newUser();
      const created = await store.users.create(input);
      created.emails.push("mutated@example.com");
      input.emails.push("mutated-input@example.com");
      const found = await store.users.findById(input.id);
      assert.deepEqual(found?.emails, [input.login, "other@example.com"]);
    });

    it("round-trips dates to the millisecond", async () => {
      const input = { ...newUser(), createdAt: new Date(1_700_000_000_123) };
      await store.users.create(input);
      const found = await store.users.findById(input.id);
      assert.ok(found?.createdAt instanceof Date);
      assert.equal(found.createdAt.getTime(), 1_700_000_000_123);
      assert.equal(found.passwordChangedAt.getTime(), 1_700_000_000_123);
    });

    it("refuses a taken login with DuplicateError(login)", async () => {
      const first = newUser();
      await store.users.create(first);
      await assert.rejects(store.users.create({ ...newUser(), login: first.login }), (error: unknown) => {
        assert.ok(error instanceof DuplicateError);
        assert.equal(error.key, "login");
        assert.equal(error.message.includes(first.login), false, "no value in the message");
        return true;
      });
    });

    it("refuses a taken id with DuplicateError", async () => {
      const first = newUser();
      await store.users.create(first);
      await assert.rejects(store.users.create({ ...newUser(), id: first.id }), DuplicateError);
    });

    it(`creates exactly one of ${CONCURRENCY} concurrent signups of one login`, async () => {
      const login = id("race") + "@example.com";
      const { values, errors } = await settle(
        Array.from({ length: CONCURRENCY }, (_, i) => both(i).users.create(newUser(login))),
      );
      assert.equal(values.length, 1);
      assert.equal(errors.length, CONCURRENCY - 1);
      for (const error of errors) assert.ok(error instanceof DuplicateError && error.key === "login", String(error));
      assert.equal((await store.users.findByLogin(login, login.toUpperCase()))?.id, values[0]!.id);
    });

    it("changes the password hash: passwordChangedAt set, version grows", async () => {
      const input = newUser();
      await store.users.create(input);
      const updated = await store.users.updatePasswordHash(input.id, "$argon2id$hash-2", at(1000));
      assert.equal(updated?.passwordHash, "$argon2id$hash-2");
      assert.equal(updated?.passwordChangedAt.getTime(), at(1000).getTime());
      assert.equal(updated?.version, 1);
      assert.equal(updated?.credentialEpoch, 1);
      assert.deepEqual(await twin.users.findById(input.id), updated);
      assert.equal((await store.users.updatePasswordHash(input.id, "$argon2id$hash-3", at(2000)))?.credentialEpoch, 2);
      assert.equal(await store.users.updatePasswordHash(id("missing"), "h", at(0)), null);
    });

    it(`changes the password only under the expected credential epoch: one of ${CONCURRENCY} concurrent changes from one epoch wins`, async () => {
      const input = newUser();
      await store.users.create(input);
      const { values } = await settle(
        Array.from({ length: CONCURRENCY }, (_, i) => both(i).users.updatePasswordHash(input.id, `$argon2id$hash-${i}`, at(1000), 0)),
      );
      const winners = values.filter((u) => u !== null);
      assert.equal(winners.length, 1);
      assert.equal(winners[0]?.credentialEpoch, 1);
      assert.equal((await twin.users.findById(input.id))?.passwordHash, winners[0]?.passwordHash);
      assert.equal(await store.users.updatePasswordHash(input.id, "$argon2id$late", at(2000), 0), null);
      await store.users.deactivate(input.id, at(3000));
      assert.equal(await store.users.updatePasswordHash(input.id, "$argon2id$after", at(4000), 1), null, "a deactivation moved the epoch on");
    });

    it("rehashes only while the hash is still the expected one, keeping passwordChangedAt", async () => {
      const input = newUser();
      await store.users.create(input);
      assert.equal(await store.users.rehashPassword(input.id, "$argon2id$stale", "$argon2id$new"), false);
      assert.equal(await store.users.rehashPassword(input.id, input.passwordHash, "$argon2id$new"), true);
      const found = await store.users.findById(input.id);
      assert.equal(found?.passwordHash, "$argon2id$new");
      assert.equal(found?.version, 1);
      assert.equal(found?.credentialEpoch, 0, "a rehash is no change of credentials");
      assert.equal(found?.passwordChangedAt.getTime(), input.createdAt.getTime());
      assert.equal(await store.users.rehashPassword(id("missing"), "a", "b"), false);
    });

    it("rehash loses against a concurrent password change", async () => {
      const input = newUser();
      await store.users.create(input);
      await twin.users.updatePasswordHash(input.id, "$argon2id$changed", at(5));
      assert.equal(await store.users.rehashPassword(input.id, input.passwordHash, "$argon2id$rehash"), false);
      assert.equal((await store.users.findById(input.id))?.passwordHash, "$argon2id$changed");
    });

    it("sets the last login time and returns it", async () => {
      const input = newUser();
      await store.users.create(input);
      const when = at(12_345);
      const result = await store.users.setLastLogin(input.id, when);
      assert.equal(result?.getTime(), when.getTime());
      assert.equal((await store.users.findById(input.id))?.lastLoginAt?.getTime(), when.getTime());
      assert.equal(await store.users.setLastLogin(id("missing"), when), null);
    });

    it("never sets an earlier last login time over a later one (two logins racing: the earlier written last)", async () => {
      const input = newUser();
      await store.users.create(input);
      assert.equal((await store.users.setLastLogin(input.id, at(20_000)))?.getTime(), at(20_000).getTime());
      assert.equal((await twin.users.setLastLogin(input.id, at(19_999)))?.getTime(), at(19_999).getTime());
      assert.equal((await store.users.findById(input.id))?.lastLoginAt?.getTime(), at(20_000).getTime());
      assert.equal((await twin.users.setLastLogin(input.id, at(20_001)))?.getTime(), at(20_001).getTime());
      assert.equal((await store.users.findById(input.id))?.lastLoginAt?.getTime(), at(20_001).getTime());
    });

    it("deactivates once: active=false, version grows, no more last-login updates", async () => {
      const input = newUser();
      await store.users.create(input);
      assert.equal(await store.users.deactivate(input.id, at(7)), true);
      assert.equal(await store.users.deactivate(input.id, at(8)), false);
      const found = await store.users.findById(input.id);
      assert.equal(found?.active, false);
      assert.equal(found?.deactivatedAt?.getTime(), at(7).getTime());
      assert.equal(found?.version, 1);
      assert.equal(found?.credentialEpoch, 1);
      assert.equal(await store.users.setLastLogin(input.id, at(9)), null);
      assert.equal(await store.users.deactivate(id("missing"), at(7)), false);
    });

    it(`deactivates exactly once under ${CONCURRENCY} concurrent calls`, async () => {
      const input = newUser();
      await store.users.create(input);
      const { values } = await settle(Array.from({ length: CONCURRENCY }, (_, i) => both(i).users.deactivate(input.id, at(i))));
      assert.equal(values.filter(Boolean).length, 1);
      assert.equal((await store.users.findById(input.id))?.version, 1);
      assert.equal((await twin.users.findById(input.id))?.credentialEpoch, 1);
    });
  });

  describe("sessions", () => {
    const newSession = (userId = id("u")) => ({
      id: id("s"),
      userId,
      clientId: "client-a",
      accessJti: id("jti"),
      createdAt: at(0),
      expiresAt: at(3_600_000),
    });

    it("createThenSync: stores a session with its first refresh token, both found, with durable(), which resolves (again and again); refuses a duplicate session id or refresh token hash", async () => {
      const input = newSession();
      const token = { hash: id("rt-hash"), sessionId: input.id, createdAt: input.createdAt, expiresAt: input.expiresAt };
      const { record, durable } = await store.sessions.createThenSync(input, token);
      assert.deepEqual(record, input);
      await durable();
      await durable();
      assert.deepEqual(await twin.sessions.findById(input.id), input);
      assert.deepEqual(await twin.refreshTokens.findByHash(token.hash), token);
      assert.equal(await store.sessions.findById(id("missing")), null);
      await assert.rejects(store.sessions.createThenSync(input, { ...token, hash: id("rt-hash") }), (e: unknown) => e instanceof DuplicateError && e.key === "id");
      const other = newSession();
      await assert.rejects(store.sessions.createThenSync(other, { ...token, sessionId: other.id }), (e: unknown) => e instanceof DuplicateError && e.key === "hash");
    });

    it("finds a session with the standing of its user, read together", async () => {
      const login = id("user") + "@example.com";
      const user = await store.users.create({ id: id("u"), login, loginKey: login.toUpperCase(), emails: [], passwordHash: "$argon2id$hash-1", createdAt: at(0) });
      const input = { ...newSession(user.id), credentialEpoch: 0 };
      await createSession(store, input);
      const standing = { id: user.id, active: true, credentialEpoch: 0, passwordChangedAt: at(0) };
      assert.deepEqual(await twin.sessions.findWithUser(input.id, user.id), { session: input, user: standing });
      // A password change moves the epoch; a deactivation too, and the user is no longer active.
      await store.users.updatePasswordHash(user.id, "$argon2id$hash-2", at(5));
      assert.deepEqual((await twin.sessions.findWithUser(input.id, user.id))?.user, { ...standing, credentialEpoch: 1, passwordChangedAt: at(5) });
      await store.users.deactivate(user.id, at(6));
      assert.deepEqual((await twin.sessions.findWithUser(input.id, user.id))?.user, { ...standing, active: false, credentialEpoch: 2, passwordChangedAt: at(5) });
      // An ended session is found, ended; an unknown user is null; an unknown session is null.
      await store.sessions.endThenSync(input.id, at(7));
      assert.equal((await twin.sessions.findWithUser(input.id, user.id))?.session.endedAt?.getTime(), at(7).getTime());
      assert.deepEqual(await store.sessions.findWithUser(input.id, id("missing")), { session: { ...input, endedAt: at(7) }, user: null });
      assert.equal(await store.sessions.findWithUser(id("missing"), user.id), null);
    });

    it("swaps the access jti only from the expected one", async () => {
      const input = newSession();
      await createSession(store, input);
      assert.equal(await store.sessions.setAccessJti(input.id, "wrong", "jti-2"), false);
      assert.equal(await store.sessions.setAccessJti(input.id, input.accessJti, "jti-2"), true);
      assert.equal(await store.sessions.setAccessJti(input.id, input.accessJti, "jti-3"), false);
      assert.equal((await store.sessions.findById(input.id))?.accessJti, "jti-2");
      assert.equal(await store.sessions.setAccessJti(id("missing"), "a", "b"), false);
    });

    it(`lets exactly one of ${CONCURRENCY} concurrent jti swaps win`, async () => {
      const input = newSession();
      await createSession(store, input);
      const { values } = await settle(
        Array.from({ length: CONCURRENCY }, (_, i) => both(i).sessions.setAccessJti(input.id, input.accessJti, `jti-${i}`)),
      );
      const winners = values.flatMap((won, i) => (won ? [`jti-${i}`] : []));
      assert.equal(winners.length, 1);
      assert.equal((await store.sessions.findById(input.id))?.accessJti, winners[0]);
    });

    it("ends a session once; an ended session refuses jti swaps", async () => {
      const input = newSession();
      await createSession(store, input);
      assert.equal((await store.sessions.endThenSync(input.id, at(10))).ended, true);
      assert.equal((await store.sessions.endThenSync(input.id, at(20))).ended, false);
      assert.equal((await store.sessions.findById(input.id))?.endedAt?.getTime(), at(10).getTime());
      assert.equal(await store.sessions.setAccessJti(input.id, input.accessJti, "new"), false);
      assert.equal((await store.sessions.endThenSync(id("missing"), at(10))).ended, false);
    });

    it("ends every open session of one user, and only those", async () => {
      const userId = id("u");
      const open = [newSession(userId), newSession(userId)];
      const ended = newSession(userId);
      const other = newSession();
      for (const s of [...open, ended, other]) await createSession(store, s);
      await store.sessions.endThenSync(ended.id, at(1));
      assert.equal(await store.sessions.endAllForUser(userId, at(50)), 2);
      for (const s of open) assert.equal((await store.sessions.findById(s.id))?.endedAt?.getTime(), at(50).getTime());
      assert.equal((await store.sessions.findById(ended.id))?.endedAt?.getTime(), at(1).getTime());
      assert.equal((await store.sessions.findById(other.id))?.endedAt, undefined);
      assert.equal(await store.sessions.endAllForUser(userId, at(60)), 0);
    });

    it("ends only the open sessions of one user a password change outdated, when given one: of an earlier epoch, or without one created before it", async () => {
      const userId = id("u");
      const old = { ...newSession(userId), createdAt: at(1000) };
      const fresh = { ...newSession(userId), createdAt: at(5000) };
      // Of the epoch before the change, created after it by this clock (another instance's ahead).
      const outdated = { ...newSession(userId), createdAt: at(9000), credentialEpoch: 2 };
      // Of the change's epoch, created before it by this clock (another instance's behind).
      const current = { ...newSession(userId), createdAt: at(1000), credentialEpoch: 3 };
      for (const s of [old, fresh, outdated, current]) await createSession(store, s);
      assert.equal(await store.sessions.endAllForUser(userId, at(6000), { epoch: 3, changedAt: at(5000) }), 2);
      for (const s of [old, outdated]) assert.equal((await twin.sessions.findById(s.id))?.endedAt?.getTime(), at(6000).getTime());
      for (const s of [fresh, current]) assert.equal((await twin.sessions.findById(s.id))?.endedAt, undefined);
    });

    it("deletes expired sessions, ended or not, and keeps live ones", async () => {
      // A database of its own, so the counts are this test's alone.
      const own = await (await ownDatabases()).open(id("sessions-expiry"));
      const expired = { ...newSession(), expiresAt: at(-1) };
      const expiredEnded = { ...newSession(), expiresAt: at(-1) };
      const live = { ...newSession(), expiresAt: at(0) };
      const liveEnded = newSession();
      for (const s of [expired, expiredEnded, live, liveEnded]) await createSession(own, s);
      await own.sessions.endThenSync(expiredEnded.id, at(-2));
      await own.sessions.endThenSync(liveEnded.id, at(-2));
      assert.equal(await own.sessions.deleteExpired(at(0), BATCH), 2);
      assert.equal(await own.sessions.findById(expired.id), null);
      assert.equal(await own.sessions.findById(expiredEnded.id), null);
      assert.equal(await own.sessions.findWithUser(expired.id, expired.userId), null);
      assert.deepEqual(await own.sessions.findById(live.id), live);
      assert.equal((await own.sessions.findById(liveEnded.id))?.endedAt?.getTime(), at(-2).getTime());
      assert.equal(await own.sessions.deleteExpired(at(0), BATCH), 0);
    });
  });

  describe("refreshTokens", () => {
    const newToken = (sessionId = id("s"), expiresAt = at(86_400_000)) => ({
      hash: id("rt-hash"),
      sessionId,
      createdAt: at(0),
      expiresAt,
    });

    it("insertThenSync: stores and finds by hash, with durable(), which resolves (again and again); refuses a duplicate hash", async () => {
      const input = newToken();
      const { record, durable } = await store.refreshTokens.insertThenSync(input);
      assert.deepEqual(record, input);
      await durable();
      await durable();
      assert.deepEqual(await twin.refreshTokens.findByHash(input.hash), input);
      assert.equal(await store.refreshTokens.findByHash(id("missing")), null);
      await assert.rejects(store.refreshTokens.insertThenSync(input), (e: unknown) => e instanceof DuplicateError && e.key === "hash");
    });

    it("spends once: the winner sees the unspent record, a later caller sees when it was spent and the winner's child", async () => {
      const input = newToken();
      await store.refreshTokens.insertThenSync(input);
      const won = await store.refreshTokens.spendThenSync(input.hash, at(100), "child-1");
      assert.deepEqual(won.before, input);
      await won.durable();
      const lost = await twin.refreshTokens.spendThenSync(input.hash, at(200), "child-2");
      await lost.durable();
      const again = lost.before;
      assert.equal(again?.spentAt?.getTime(), at(100).getTime());
      assert.equal(again?.child, "child-1");
      const found = await store.refreshTokens.findByHash(input.hash);
      assert.equal(found?.spentAt?.getTime(), at(100).getTime());
      assert.equal(found?.child, "child-1");
      assert.equal((await store.refreshTokens.spendThenSync(id("missing"), at(100), "child")).before, null);
    });

    it(`lets exactly one of ${CONCURRENCY} concurrent spends win`, async () => {
      const input = newToken();
      await store.refreshTokens.insertThenSync(input);
      const { values, errors } = await settle(
        Array.from({ length: CONCURRENCY }, async (_, i) => {
          const { before, durable } = await both(i).refreshTokens.spendThenSync(input.hash, at(1000 + i), `child-${i}`);
          await durable();
          return before;
        }),
      );
      assert.equal(errors.length, 0);
      const winners = values.filter((r) => r !== null && r.spentAt === undefined);
      assert.equal(winners.length, 1);
      const spentAt = (await store.refreshTokens.findByHash(input.hash))?.spentAt?.getTime();
      for (const loser of values.filter((r) => r?.spentAt !== undefined)) {
        assert.equal(loser?.spentAt?.getTime(), spentAt, "every loser learns the one spend time");
        assert.equal(loser?.child, `child-${values.indexOf(winners[0]!)}`, "and the winner's child");
      }
    });

    it("deletes a session's tokens and expired tokens", async () => {
      // A database of its own, so the counts are this test's alone.
      const own = await (await ownDatabases()).open(id("expiry"));
      const sessionId = id("s");
      const mine = [newToken(sessionId), newToken(sessionId)];
      const others = newToken();
      const expired = newToken(id("s"), at(-1));
      for (const t of [...mine, others, expired]) await own.refreshTokens.insertThenSync(t);
      assert.equal((await own.refreshTokens.deleteBySessionThenSync(sessionId)).deleted, 2);
      assert.equal(await own.refreshTokens.findByHash(mine[0]!.hash), null);
      assert.ok(await own.refreshTokens.findByHash(others.hash));
      assert.equal(await own.refreshTokens.deleteExpired(at(0), BATCH), 1);
      assert.equal(await own.refreshTokens.findByHash(expired.hash), null);
      assert.ok(await own.refreshTokens.findByHash(others.hash));
    });
  });

  describe("apiTokens", () => {
    /** An account's bound on active tokens that the test does not reach. */
    const ROOM = 1000;
    const newToken = (accountId = id("acct"), issuedAt = at(0)) => ({
      link: randomUUID(),
      hash: id("api-hash"),
      accountId,
      description: "payments backend",
      issuedAt,
    });

    it("creates and finds by hash; refuses duplicates", async () => {
      const input = { ...newToken(), createdBy: "ops@example.com" };
      assert.deepEqual(await store.apiTokens.create(input, ROOM), input);
      assert.deepEqual(await twin.apiTokens.findByHash(input.hash), input);
      assert.equal(await store.apiTokens.findByHash(id("missing")), null);
      await assert.rejects(store.apiTokens.create({ ...newToken(), hash: input.hash }, ROOM), (e: unknown) => e instanceof DuplicateError && e.key === "hash");
      await assert.rejects(store.apiTokens.create({ ...newToken(), link: input.link }, ROOM), (e: unknown) => e instanceof DuplicateError && e.key === "link");
    });

    it("refuses a creation past maxActive, storing nothing; a revoked token frees a place, another account has its own", async () => {
      const accountId = id("acct");
      const held = [newToken(accountId, at(1)), newToken(accountId, at(2)), newToken(accountId, at(3))];
      for (const t of held) assert.deepEqual(await store.apiTokens.create(t, 3), t);
      const refused = newToken(accountId, at(4));
      assert.equal(await twin.apiTokens.create(refused, 3), null);
      assert.equal(await store.apiTokens.findByHash(refused.hash), null);
      assert.deepEqual((await store.apiTokens.list(accountId, "active")).map((t) => t.link), held.map((t) => t.link).reverse());
      const elsewhere = newToken(id("acct"), at(4));
      assert.deepEqual(await store.apiTokens.create(elsewhere, 3), elsewhere);
      await store.apiTokens.revoke(accountId, held[1]!.link, at(5));
      const next = newToken(accountId, at(6));
      assert.deepEqual(await twin.apiTokens.create(next, 3), next);
      assert.equal(await store.apiTokens.create(newToken(accountId, at(7)), 3), null);
      assert.equal((await store.apiTokens.list(accountId, "active")).length, 3);
    });

    it("refuses a creation issued before a token already kept, once the account is full", async () => {
      // Instances' clocks differ, and an insert can arrive after a later-issued one was
      // answered: the bound holds whatever the order of issue.
      const accountId = id("acct");
      const later = newToken(accountId, at(2000));
      assert.deepEqual(await store.apiTokens.create(later, 1), later);
      const earlier = newToken(accountId, at(1000));
      assert.equal(await twin.apiTokens.create(earlier, 1), null);
      assert.equal(await store.apiTokens.findByHash(earlier.hash), null);
      assert.deepEqual((await store.apiTokens.list(accountId, "active")).map((t) => t.link), [later.link]);
    });

    it("keeps maxActive of 10 concurrent creations from two instances, never fewer (MongoDB: more only where creations overlap, issued out of the order they are stored in); the refused are not stored", async () => {
      const accountId = id("acct");
      // Issued at three times, in no relation to the order of the calls: instances' clocks differ.
      const tokens = Array.from({ length: 10 }, (_, i) => newToken(accountId, at(i % 3)));
      const { values, errors } = await settle(tokens.map((t, i) => both(i).apiTokens.create(t, 3)));
      assert.deepEqual(errors, []);
      const kept = values.filter((r) => r !== null);
      if (store.kind === "sqlite") assert.equal(kept.length, 3);
      else assert.ok(kept.length >= 3, `${kept.length} kept`);
      const active = await store.apiTokens.list(accountId, "active");
      assert.deepEqual(new Set(active.map((t) => t.link)), new Set(kept.map((t) => t.link)));
      for (const [i, t] of tokens.entries()) {
        const found = await store.apiTokens.findByHash(t.hash);
        if (values[i] === null) assert.equal(found, null, `refused token ${i} is not stored`);
        else assert.equal(found?.link, t.link);
      }
    });

    it("updates the description of an active token only", async () => {
      const input = newToken();
      await store.apiTokens.create(input, ROOM);
      const updated = await store.apiTokens.updateDescription(input.link, "renamed");
      assert.deepEqual(updated, { ...input, description: "renamed" });
      await store.apiTokens.revoke(input.accountId, input.link, at(5));
      assert.equal(await store.apiTokens.updateDescription(input.link, "too late"), null);
      assert.equal(await store.apiTokens.updateDescription(randomUUID(), "unknown"), null);
      assert.equal((await store.apiTokens.findByHash(input.hash))?.description, "renamed");
    });

    it("lists an account's tokens by state, newest first, ties broken by link", async () => {
      const accountId = id("acct");
      const oldest = newToken(accountId, at(1000));
      const newest = newToken(accountId, at(3000));
      const tieA = { ...newToken(accountId, at(2000)), link: "00000000-0000-4000-8000-00000000000a" + accountId.slice(-4) };
      const tieB = { ...newToken(accountId, at(2000)), link: "00000000-0000-4000-8000-00000000000b" + accountId.slice(-4) };
      const revoked = newToken(accountId, at(2500));
      const foreign = newToken(id("acct"), at(4000));
      for (const t of [tieA, oldest, newest, revoked, tieB, foreign]) await store.apiTokens.create(t, ROOM);
      await store.apiTokens.revoke(accountId, revoked.link, at(5000));
      const active = await twin.apiTokens.list(accountId, "active");
      assert.deepEqual(active.map((t) => t.link), [newest.link, tieB.link, tieA.link, oldest.link]);
      const gone = await twin.apiTokens.list(accountId, "revoked");
      assert.deepEqual(gone.map((t) => t.link), [revoked.link]);
      assert.equal(gone[0]?.revokedAt?.getTime(), at(5000).getTime());
      assert.deepEqual(await store.apiTokens.list(id("nobody"), "active"), []);
    });

    it("revokes only an unrevoked token of the same account", async () => {
      const input = newToken();
      await store.apiTokens.create(input, ROOM);
      assert.equal(await store.apiTokens.revoke(id("acct"), input.link, at(1)), null, "another account");
      const revoked = await store.apiTokens.revoke(input.accountId, input.link, at(2));
      assert.deepEqual(revoked, { ...input, revokedAt: at(2) });
      assert.equal(await store.apiTokens.revoke(input.accountId, input.link, at(3)), null, "already revoked");
      assert.equal(await store.apiTokens.revoke(input.accountId, randomUUID(), at(3)), null, "unknown");
    });

    it(`revokes exactly once under ${CONCURRENCY} concurrent calls`, async () => {
      const input = newToken();
      await store.apiTokens.create(input, ROOM);
      const { values } = await settle(
        Array.from({ length: CONCURRENCY }, (_, i) => both(i).apiTokens.revoke(input.accountId, input.link, at(i))),
      );
      assert.equal(values.filter((r) => r !== null).length, 1);
    });

    it("records last use, at most once per interval", async () => {
      const input = newToken();
      await store.apiTokens.create(input, ROOM);
      assert.equal(await store.apiTokens.touchLastUsed(input.link, at(10_000), 60_000), true);
      assert.equal(await store.apiTokens.touchLastUsed(input.link, at(30_000), 60_000), false);
      assert.equal((await store.apiTokens.findByHash(input.hash))?.lastUsedAt?.getTime(), at(10_000).getTime());
      assert.equal(await store.apiTokens.touchLastUsed(input.link, at(70_001), 60_000), true);
      assert.equal((await store.apiTokens.findByHash(input.hash))?.lastUsedAt?.getTime(), at(70_001).getTime());
      // Without an interval it still never moves backwards.
      assert.equal(await store.apiTokens.touchLastUsed(input.link, at(50_000)), false);
      assert.equal(await store.apiTokens.touchLastUsed(input.link, at(70_002)), true);
      assert.equal(await store.apiTokens.touchLastUsed(randomUUID(), at(0)), false);
    });

    it("aligns last-use intervals to multiples of the interval", async () => {
      const input = newToken();
      await store.apiTokens.create(input, ROOM);
      const minute = Date.UTC(2026, 0, 2, 3, 4); // a whole minute
      assert.equal(await store.apiTokens.touchLastUsed(input.link, new Date(minute + 1), 60_000), true);
      assert.equal(await store.apiTokens.touchLastUsed(input.link, new Date(minute + 59_999), 60_000), false);
      assert.equal(await twin.apiTokens.touchLastUsed(input.link, new Date(minute + 60_000), 60_000), true);
      assert.equal((await store.apiTokens.findByHash(input.hash))?.lastUsedAt?.getTime(), minute + 60_000);
    });

    it("retention: deletes the tokens revoked before the cut-off, with their revocation and last use; keeps those revoked at it and the active ones, however old", async () => {
      // A database of its own, so the count is this test's alone.
      const own = await (await ownDatabases()).open(id("api-retention"));
      const accountId = id("acct");
      const cutOff = at(0);
      const revokedBefore = [newToken(accountId, at(-5000)), newToken(accountId, at(-4000))];
      const revokedAtCutOff = newToken(accountId, at(-3000));
      const activeOld = newToken(accountId, at(-1_000_000_000));
      for (const t of [...revokedBefore, revokedAtCutOff, activeOld]) {
        await own.apiTokens.create(t, ROOM);
        await own.apiTokens.touchLastUsed(t.link, at(-2500), 60_000);
      }
      await own.apiTokens.revoke(accountId, revokedBefore[0]!.link, at(-2));
      await own.apiTokens.revoke(accountId, revokedBefore[1]!.link, at(-1));
      await own.apiTokens.revoke(accountId, revokedAtCutOff.link, cutOff);

      assert.equal(await own.apiTokens.deleteRevokedBefore(cutOff, BATCH), 2);
      for (const t of revokedBefore) assert.equal(await own.apiTokens.findByHash(t.hash), null, t.link);
      assert.deepEqual((await own.apiTokens.list(accountId, "revoked")).map((t) => t.link), [revokedAtCutOff.link]);
      assert.deepEqual((await own.apiTokens.list(accountId, "active")).map((t) => t.link), [activeOld.link]);
      assert.equal(await own.apiTokens.revoke(accountId, revokedBefore[0]!.link, at(1)), null, "unknown");
      assert.equal(await own.apiTokens.updateDescription(revokedBefore[0]!.link, "unknown"), null);
      assert.equal(await own.apiTokens.deleteRevokedBefore(cutOff, BATCH), 0);
      assert.equal(await own.apiTokens.deleteRevokedBefore(at(1_000_000_000), BATCH), 1, "the active token is never deleted");
      assert.equal((await own.apiTokens.findByHash(activeOld.hash))?.revokedAt, undefined);
      // Nothing of a deleted token is left: a token stored again under its link starts active, never used, and revokes.
      for (const t of revokedBefore) {
        const again = { ...t, hash: id("again") };
        assert.deepEqual(await own.apiTokens.create(again, ROOM), again);
        assert.deepEqual(await own.apiTokens.findByHash(again.hash), again, t.link);
        assert.deepEqual(await own.apiTokens.revoke(accountId, again.link, at(2)), { ...again, revokedAt: at(2) }, t.link);
      }
    });

    it(`coalesces ${CONCURRENCY} concurrent uses into one write`, async () => {
      const input = newToken();
      await store.apiTokens.create(input, ROOM);
      const { values } = await settle(
        Array.from({ length: CONCURRENCY }, (_, i) => both(i).apiTokens.touchLastUsed(input.link, at(100_000 + i), 60_000)),
      );
      assert.equal(values.filter(Boolean).length, 1);
    });
  });

  describe("userTokens", () => {
    const newToken = (userId = id("u")) => ({
      id: id("ut"),
      hash: id("ut-hash"),
      userId,
      createdAt: at(0),
    });

    it("creates enabled at version 0 with optional note and expiry, and finds it", async () => {
      const input = { ...newToken(), note: "Client API Access", expiresAt: at(86_400_000) };
      const expected = { ...input, enabled: true, version: 0 };
      assert.deepEqual(await store.userTokens.create(input), { record: expected, ended: [] });
      assert.deepEqual(await twin.userTokens.findByHashWithUser(input.hash).then((f) => f?.token ?? null), expected);
      const plain = newToken();
      const { record: created } = await store.userTokens.create(plain);
      assert.equal("note" in created || "expiresAt" in created || "lastUsedAt" in created || "sourceKids" in created || "sources" in created, false);
      // A cookie session records the kids of the keys that signed the tokens it descends from,
      // and the credentials it descends from.
      const cookieSession = {
        ...newToken(),
        expiresAt: at(86_400_000),
        credentialEpoch: 1,
        sourceKids: [id("kid"), id("kid")],
        sources: [`user_token:${id("ut")}`, `session:${id("s")}`],
      };
      assert.deepEqual(await store.userTokens.create(cookieSession), { record: { ...cookieSession, enabled: true, version: 0 }, ended: [] });
      assert.deepEqual(await twin.userTokens.findByHashWithUser(cookieSession.hash).then((f) => f?.token ?? null), { ...cookieSession, enabled: true, version: 0 });
      assert.equal(await store.userTokens.findByHashWithUser(id("missing")).then((f) => f?.token ?? null), null);
      await assert.rejects(store.userTokens.create({ ...newToken(), hash: input.hash }), (e: unknown) => e instanceof DuplicateError && e.key === "hash");
    });

    it("createThenSync: stores as create does, with durable(), which resolves (again and again); refuses a duplicate hash", async () => {
      const input = { ...newToken(), note: "Client API Access", expiresAt: at(86_400_000), credentialEpoch: 1 };
      const expected = { ...input, enabled: true, version: 0 };
      const { record, durable } = await store.userTokens.createThenSync(input);
      assert.deepEqual(record, expected);
      await durable();
      await durable();
      assert.deepEqual(await twin.userTokens.findByHashWithUser(input.hash).then((f) => f?.token ?? null), expected);
      await assert.rejects(store.userTokens.createThenSync({ ...newToken(), hash: input.hash }), (e: unknown) => e instanceof DuplicateError && e.key === "hash");
    });

    it("finds a token by its hash with the standing of its user, read together", async () => {
      const login = id("user") + "@example.com";
      const user = await store.users.create({ id: id("u"), login, loginKey: login.toUpperCase(), emails: [], passwordHash: "$argon2id$hash-1", createdAt: at(0) });
      const input = { ...newToken(user.id), expiresAt: at(86_400_000), credentialEpoch: 0 };
      await store.userTokens.create(input);
      const token = { ...input, enabled: true, version: 0 };
      const standing = { id: user.id, active: true, credentialEpoch: 0, passwordChangedAt: at(0) };
      assert.deepEqual(await twin.userTokens.findByHashWithUser(input.hash), { token, user: standing });
      // Its last use and its logout are the token's; a password change moves the user's epoch, a
      // deactivation too, and the user is no longer active.
      await store.userTokens.touchLastUsed(input.id, at(1000), 60_000);
      await store.users.updatePasswordHash(user.id, "$argon2id$hash-2", at(5));
      assert.deepEqual(await twin.userTokens.findByHashWithUser(input.hash), {
        token: { ...token, lastUsedAt: at(1000) },
        user: { ...standing, credentialEpoch: 1, passwordChangedAt: at(5) },
      });
      await store.userTokens.disable(input.id, at(2000));
      await store.users.deactivate(user.id, at(6));
      assert.deepEqual(await twin.userTokens.findByHashWithUser(input.hash), {
        token: { ...token, lastUsedAt: at(1000), enabled: false, version: 1 },
        user: { ...standing, active: false, credentialEpoch: 2, passwordChangedAt: at(5) },
      });
      // A token whose user is unknown is found, its user null; an unknown hash is null.
      const orphan = newToken();
      await store.userTokens.create(orphan);
      assert.deepEqual(await store.userTokens.findByHashWithUser(orphan.hash), { token: { ...orphan, enabled: true, version: 0 }, user: null });
      assert.equal(await store.userTokens.findByHashWithUser(id("missing")), null);
    });

    it("records last use without changing the version", async () => {
      const input = newToken();
      await store.userTokens.create(input);
      assert.equal(await store.userTokens.touchLastUsed(input.id, at(1000), 60_000), true);
      assert.equal(await store.userTokens.touchLastUsed(input.id, at(2000), 60_000), false);
      const found = await store.userTokens.findByHashWithUser(input.hash).then((f) => f?.token ?? null);
      assert.equal(found?.lastUsedAt?.getTime(), at(1000).getTime());
      assert.equal(found?.version, 0);
    });

    it("disables once (logout): enabled=false, version grows", async () => {
      const input = newToken();
      await store.userTokens.create(input);
      assert.equal(await store.userTokens.disable(input.id, at(1000)), true);
      assert.equal(await store.userTokens.disable(input.id, at(2000)), false);
      const found = await store.userTokens.findByHashWithUser(input.hash).then((f) => f?.token ?? null);
      assert.deepEqual(found, { ...input, enabled: false, version: 1 }, "when it was disabled is not part of the record");
      assert.equal(await store.userTokens.disable(id("missing"), at(1000)), false);
    });

    it("finds a token by its id too (the source of an authentication token), as by its hash but without its last use", async () => {
      const input = { ...newToken(), expiresAt: at(86_400_000), sources: [`session:${id("s")}`] };
      await store.userTokens.create(input);
      await store.userTokens.touchLastUsed(input.id, at(500), 60_000);
      assert.deepEqual(await twin.userTokens.findById(input.id), { ...input, enabled: true, version: 0 });
      await store.userTokens.disable(input.id, at(1000));
      assert.deepEqual(await twin.userTokens.findById(input.id), { ...input, enabled: false, version: 1 });
      assert.equal(await store.userTokens.findById(id("missing")), null);
    });

    it("disables every enabled token of one user", async () => {
      const userId = id("u");
      const tokens = [newToken(userId), newToken(userId), newToken(userId)];
      const other = newToken();
      for (const t of [...tokens, other]) await store.userTokens.create(t);
      await store.userTokens.disable(tokens[0]!.id, at(1000));
      assert.equal(await store.userTokens.disableAllForUser(userId, at(2000)), 2);
      for (const t of tokens) {
        const found = await store.userTokens.findByHashWithUser(t.hash).then((f) => f?.token ?? null);
        assert.equal(found?.enabled, false);
        assert.equal(found?.version, 1);
      }
      assert.equal((await store.userTokens.findByHashWithUser(other.hash).then((f) => f?.token ?? null))?.enabled, true);
    });

    it("retention: deletes the tokens that expired or were disabled before the cut-off, with their logout and last use; keeps the rest", async () => {
      // A database of its own, so the count is this test's alone.
      const own = await (await ownDatabases()).open(id("retention"));
      const cutOff = at(0);
      const token = (name: string, expiresAt?: Date) => ({ ...newToken(), id: id(name), ...(expiresAt !== undefined && { expiresAt }) });
      const expiredBefore = token("expired-before", at(-1));
      const expiredAtCutOff = token("expired-at-cut-off", cutOff);
      const disabledBefore = token("disabled-before"); // never expires
      const disabledBeforeExpiresLater = token("disabled-before-expires-later", at(1000));
      const disabledAtCutOff = token("disabled-at-cut-off");
      const disabledByUser = { ...token("disabled-by-user"), userId: id("u-deactivated") };
      const neverExpires = token("never-expires");
      const all = [expiredBefore, expiredAtCutOff, disabledBefore, disabledBeforeExpiresLater, disabledAtCutOff, disabledByUser, neverExpires];
      for (const t of all) {
        await own.userTokens.create(t);
        await own.userTokens.touchLastUsed(t.id, at(-5000), 60_000);
      }
      await own.userTokens.disable(expiredBefore.id, at(-3000));
      await own.userTokens.disable(disabledBefore.id, at(-2));
      await own.userTokens.disable(disabledBeforeExpiresLater.id, at(-1));
      await own.userTokens.disable(disabledAtCutOff.id, cutOff);
      await own.userTokens.disableAllForUser(disabledByUser.userId, at(-1));

      assert.equal(await own.userTokens.deleteEndedBefore(cutOff, BATCH), 4);
      const gone = [expiredBefore, disabledBefore, disabledBeforeExpiresLater, disabledByUser];
      for (const t of gone) assert.equal(await own.userTokens.findByHashWithUser(t.hash).then((f) => f?.token ?? null), null, t.id);
      for (const t of [expiredAtCutOff, disabledAtCutOff, neverExpires]) assert.ok(await own.userTokens.findByHashWithUser(t.hash).then((f) => f?.token ?? null), t.id);
      assert.equal(await own.userTokens.deleteEndedBefore(cutOff, BATCH), 0);
      // Nothing of a deleted token is left: a token stored again under its id starts enabled, never used.
      for (const t of gone) {
        const again = { ...t, hash: id("again") };
        await own.userTokens.create(again);
        assert.deepEqual(await own.userTokens.findByHashWithUser(again.hash).then((f) => f?.token ?? null), { ...again, enabled: true, version: 0 }, t.id);
      }
    });
  });

  describe("authTokens", () => {
    const newToken = (expiresAt = at(60_000)) => ({ hash: id("at-hash"), userId: id("u"), createdAt: at(0), expiresAt });

    it("creates and finds; refuses a duplicate hash", async () => {
      const input = newToken();
      assert.deepEqual(await store.authTokens.create(input), input);
      assert.deepEqual(await twin.authTokens.findByHash(input.hash), input);
      assert.equal(await store.authTokens.findByHash(id("missing")), null);
      await assert.rejects(store.authTokens.create(input), DuplicateError);
      const sourced = { ...newToken(), credentialEpoch: 2, notAfter: at(30_000), source: `user_token:${id("ut")}`, sourceKids: [id("kid"), id("kid")] };
      assert.deepEqual(await store.authTokens.create(sourced), sourced);
      assert.deepEqual(await twin.authTokens.findByHash(sourced.hash), sourced);
    });

    it("consumes once, before expiry only (exact to the millisecond)", async () => {
      const input = newToken(at(60_000));
      await store.authTokens.create(input);
      assert.equal(await store.authTokens.consume(input.hash, at(60_000)), null, "expiresAt == now is expired");
      const consumed = await store.authTokens.consume(input.hash, at(59_999));
      assert.deepEqual(consumed, { ...input, consumedAt: at(59_999) });
      assert.equal(await store.authTokens.consume(input.hash, at(59_999)), null, "used");
      assert.equal(await store.authTokens.consume(id("missing"), at(0)), null, "unknown");
      assert.equal((await store.authTokens.findByHash(input.hash))?.consumedAt?.getTime(), at(59_999).getTime());
    });

    it("a consume given back (release, at its own time only) leaves the token unused, to be consumed once again", async () => {
      const input = newToken(at(60_000));
      await store.authTokens.create(input);
      assert.equal(await store.authTokens.release(input.hash, at(10)), false, "not consumed");
      assert.notEqual(await store.authTokens.consume(input.hash, at(10)), null);
      assert.equal(await twin.authTokens.release(input.hash, at(11)), false, "consumed at another time");
      assert.equal((await store.authTokens.findByHash(input.hash))?.consumedAt?.getTime(), at(10).getTime());
      assert.equal(await twin.authTokens.release(input.hash, at(10)), true);
      assert.deepEqual(await store.authTokens.findByHash(input.hash), input);
      assert.equal(await store.authTokens.release(input.hash, at(10)), false, "given back already");
      assert.deepEqual(await twin.authTokens.consume(input.hash, at(20)), { ...input, consumedAt: at(20) });
      assert.equal(await store.authTokens.consume(input.hash, at(21)), null, "used");
      assert.equal(await store.authTokens.release(id("missing"), at(10)), false, "unknown");
    });

    it(`lets exactly one of ${CONCURRENCY} concurrent exchanges consume`, async () => {
      const input = newToken();
      await store.authTokens.create(input);
      const { values, errors } = await settle(
        Array.from({ length: CONCURRENCY }, (_, i) => both(i).authTokens.consume(input.hash, at(i))),
      );
      assert.equal(errors.length, 0);
      assert.equal(values.filter((r) => r !== null).length, 1);
    });

    it("deletes expired tokens", async () => {
      // A database of its own, so the count is this test's alone.
      const own = await (await ownDatabases()).open(id("expiry"));
      const expired = newToken(at(-1));
      const live = newToken(at(1_000));
      await own.authTokens.create(expired);
      await own.authTokens.create(live);
      assert.equal(await own.authTokens.deleteExpired(at(0), BATCH), 1);
      assert.equal(await own.authTokens.findByHash(expired.hash), null);
      assert.ok(await own.authTokens.findByHash(live.hash));
    });
  });

  describe("jwtRefreshTokens", () => {
    const newToken = (userId = id("u"), issuedAt = at(0)) => ({
      jti: id("jti"),
      userId,
      issuedAt,
      expiresAt: at(30 * 86_400_000),
    });

    it("creates and finds by jti; refuses a duplicate jti", async () => {
      const input = newToken();
      assert.deepEqual(await store.jwtRefreshTokens.create(input), { record: input, ended: [] });
      assert.deepEqual(await twin.jwtRefreshTokens.findByJti(input.jti), input);
      assert.equal(await store.jwtRefreshTokens.findByJti(id("missing")), null);
      await assert.rejects(store.jwtRefreshTokens.create(input), (e: unknown) => e instanceof DuplicateError && e.key === "jti");
    });

    it("revokes only the owner's unrevoked token", async () => {
      const input = newToken();
      await store.jwtRefreshTokens.create(input);
      assert.equal(await store.jwtRefreshTokens.revoke(input.jti, id("u"), at(1)), false, "another user");
      assert.equal(await store.jwtRefreshTokens.revoke(input.jti, input.userId, at(2)), true);
      assert.equal(await store.jwtRefreshTokens.revoke(input.jti, input.userId, at(3)), false, "already revoked");
      assert.equal((await store.jwtRefreshTokens.findByJti(input.jti))?.revokedAt?.getTime(), at(2).getTime());
      assert.equal(await store.jwtRefreshTokens.revoke(id("missing"), input.userId, at(2)), false);
    });

    it("revokes all of a user's tokens, or only those a password change outdated: of an earlier epoch, or without one issued before it", async () => {
      const userId = id("u");
      const old = newToken(userId, at(1000));
      const fresh = newToken(userId, at(5000));
      // Of the epoch before the change, issued after it by this clock (another instance's ahead).
      const outdated = { ...newToken(userId, at(9000)), credentialEpoch: 2 };
      // Of the change's epoch, issued before it by this clock (another instance's behind).
      const current = { ...newToken(userId, at(1000)), credentialEpoch: 3 };
      const other = newToken();
      for (const t of [old, fresh, outdated, current, other]) await store.jwtRefreshTokens.create(t);
      assert.equal(await store.jwtRefreshTokens.revokeAllForUser(userId, at(6000), { epoch: 3, changedAt: at(5000) }), 2);
      for (const t of [old, outdated]) assert.equal((await store.jwtRefreshTokens.findByJti(t.jti))?.revokedAt?.getTime(), at(6000).getTime());
      for (const t of [fresh, current]) assert.equal((await store.jwtRefreshTokens.findByJti(t.jti))?.revokedAt, undefined);
      assert.equal(await store.jwtRefreshTokens.revokeAllForUser(userId, at(7000)), 2);
      for (const t of [fresh, current]) assert.equal((await store.jwtRefreshTokens.findByJti(t.jti))?.revokedAt?.getTime(), at(7000).getTime());
      assert.equal((await store.jwtRefreshTokens.findByJti(other.jti))?.revokedAt, undefined);
    });

    it("deletes expired tokens", async () => {
      // A database of its own, so the count is this test's alone.
      const own = await (await ownDatabases()).open(id("expiry"));
      const expired = { ...newToken(), expiresAt: at(-1) };
      const live = newToken();
      await own.jwtRefreshTokens.create(expired);
      await own.jwtRefreshTokens.create(live);
      assert.equal(await own.jwtRefreshTokens.deleteExpired(at(0), BATCH), 1);
      assert.equal(await own.jwtRefreshTokens.findByJti(expired.jti), null);
      assert.ok(await own.jwtRefreshTokens.findByJti(live.jti));
    });
  });

  describe("caps on a user's live credentials", () => {
    interface CapKind {
      name: string;
      /** Stores a credential of `userId` made at `createdAt` (expiring at `expiresAt`), with `cap`. */
      create(s: Store, userId: string, createdAt: Date, cap?: number, expiresAt?: Date): Promise<{ id: string; ended: string[] }>;
      /** Whether the credential is still usable as far as the store says (found, not ended). */
      live(s: Store, id: string): Promise<boolean>;
      /** Ends it as a logout does. */
      end(s: Store, userId: string, id: string): Promise<void>;
      /** Whether an ended (logged-out) one still counts until it expires (sessions: they count until deleted). */
      endedCount: boolean;
    }
    const hour = 3_600_000;
    const kinds: CapKind[] = [
      {
        name: "sessions (ended ones deleted, with their refresh tokens)",
        create: async (s, userId, createdAt, cap, expiresAt = new Date(createdAt.getTime() + hour)) => {
          const session = { id: id("s"), userId, clientId: "client-a", accessJti: id("jti"), createdAt, expiresAt };
          const { ended } = await s.sessions.createThenSync(session, { hash: `rt-${session.id}`, sessionId: session.id, createdAt, expiresAt }, cap);
          return { id: session.id, ended };
        },
        live: async (s, sessionId) => {
          const session = await s.sessions.findById(sessionId);
          const token = await s.refreshTokens.findByHash(`rt-${sessionId}`);
          assert.equal(token === null, session === null, "a session deleted by the cap goes with its refresh token, and only then");
          return session !== null && session.endedAt === undefined;
        },
        end: async (s, _userId, sessionId) => void (await s.sessions.endThenSync(sessionId, t0)),
        endedCount: true,
      },
      {
        name: "JWT refresh tokens (revoked)",
        create: async (s, userId, issuedAt, cap, expiresAt = new Date(issuedAt.getTime() + hour)) => {
          const jti = id("jti");
          const { record, ended } = await s.jwtRefreshTokens.create({ jti, userId, issuedAt, expiresAt }, cap);
          assert.equal(record.jti, jti);
          return { id: jti, ended };
        },
        live: async (s, jti) => {
          const token = await s.jwtRefreshTokens.findByJti(jti);
          assert.ok(token, "a refresh token revoked by the cap stays stored");
          return token.revokedAt === undefined;
        },
        end: async (s, userId, jti) => void (await s.jwtRefreshTokens.revoke(jti, userId, t0)),
        endedCount: false,
      },
      {
        name: "user tokens and cookie sessions, one cap (logged out)",
        // Every other one a login's token (createThenSync), the others as cookie sessions are made (create).
        create: async (s, userId, createdAt, cap, expiresAt) => {
          const token = { id: id("ut"), hash: id("ut-hash"), userId, createdAt, ...(expiresAt !== undefined && { expiresAt }) };
          const { record, ended } = Math.random() < 0.5 ? await s.userTokens.createThenSync(token, cap) : await s.userTokens.create({ ...token, note: "tessera_session cookie" }, cap);
          assert.equal(record.id, token.id);
          return { id: token.id, ended };
        },
        live: async (s, tokenId) => {
          const token = await s.userTokens.findById(tokenId);
          assert.ok(token, "a user token logged out by the cap stays stored");
          assert.equal(token.version, token.enabled ? 0 : 1);
          return token.enabled;
        },
        end: async (s, _userId, tokenId) => void (await s.userTokens.disable(tokenId, t0)),
        endedCount: false,
      },
    ];
    const liveOf = async (kind: CapKind, ids: string[], on: Store = twin) => (await Promise.all(ids.map(async (x) => ((await kind.live(on, x)) ? [x] : [])))).flat();

    for (const kind of kinds) {
      describe(kind.name, () => {
        it("a creation beyond the cap ends the oldest, never the new one: not one of the same millisecond, nor one made with an older time (MongoDB: that one then stays beside the cap's newest, one more, until the next creation)", async () => {
          const user = id("u");
          const a = await kind.create(store, user, at(0), 3);
          const b = await kind.create(store, user, at(1), 3);
          const c = await kind.create(store, user, at(2), 3);
          assert.deepEqual([a.ended, b.ended, c.ended], [[], [], []]);
          const d = await kind.create(twin, user, at(2), 3);
          assert.deepEqual(d.ended, [a.id]);
          // Made with a time older than every other: still the one that stays. The embedded store
          // ends the oldest other one; on MongoDB it is past the cap's newest (c, d and b, in the
          // order every creation agrees on), and ends none: one more than the cap.
          const e = await kind.create(store, user, at(-5), 3);
          if (store.kind === "sqlite") {
            assert.deepEqual(e.ended, [b.id]);
            assert.deepEqual(await liveOf(kind, [a.id, b.id, c.id, d.id, e.id]), [c.id, d.id, e.id]);
          } else {
            assert.deepEqual(e.ended, []);
            assert.deepEqual(await liveOf(kind, [a.id, b.id, c.id, d.id, e.id]), [b.id, c.id, d.id, e.id]);
          }
          // The next creation ends what is past the cap's newest: the older one too on MongoDB.
          const f = await kind.create(twin, user, at(3), 3);
          assert.deepEqual(f.ended, store.kind === "sqlite" ? [e.id] : [e.id, b.id]);
          assert.deepEqual(await liveOf(kind, [a.id, b.id, c.id, d.id, e.id, f.id]), [c.id, d.id, f.id]);
          // Two of the same millisecond under a cap of 1: the embedded store ends the one stored
          // first; MongoDB the one of the lower id (the older by (time, id)), unless it is the new
          // one: then both stay, until the next creation.
          const other = id("u");
          const x = await kind.create(store, other, at(7), 1);
          const y = await kind.create(twin, other, at(7), 1);
          const yNewer = store.kind === "sqlite" || y.id > x.id;
          assert.deepEqual([x.ended, y.ended], [[], yNewer ? [x.id] : []]);
          assert.deepEqual(await liveOf(kind, [x.id, y.id]), yNewer ? [y.id] : [x.id, y.id]);
          const z = await kind.create(store, other, at(8), 1);
          assert.deepEqual([...z.ended].sort(), (yNewer ? [y.id] : [x.id, y.id]).sort());
          assert.deepEqual(await liveOf(kind, [x.id, y.id, z.id]), [z.id]);
        });

        it("counts only the user's unexpired ones, and ended ones only where they count until deleted", async () => {
          const user = id("u");
          const ended = await kind.create(store, user, at(0), 2);
          await kind.end(store, user, ended.id);
          const expired = await kind.create(store, user, at(1), 2, at(10));
          const kept = await kind.create(store, user, at(20), 2);
          // Another user's do not count.
          await kind.create(store, id("u"), at(21), 2);
          const latest = await kind.create(twin, user, at(30), 2);
          // Sessions: the ended one counts, and is deleted without being reported (it had ended already).
          assert.deepEqual(latest.ended, []);
          assert.deepEqual(await liveOf(kind, [kept.id, latest.id]), [kept.id, latest.id]);
          assert.equal(await kind.live(twin, ended.id), false);
          if (kind.endedCount) assert.equal(await twin.sessions.findById(ended.id), null);
          const next = await kind.create(store, user, at(40), 2);
          assert.deepEqual(next.ended, [kept.id]);
          // An expired one is left as it is, to housekeeping; save for a user token, which a capped
          // creation marks logged out once it has expired (MongoDB: a clock step before it, not
          // yet here): see below.
          assert.equal(await kind.live(twin, expired.id), !(kind.name.startsWith("user tokens") && store.kind === "sqlite"));
        });

        if (kind.endedCount) {
          it("ends (deletes) the user's ended ones past the cap before any live one, however old the live one is", async () => {
            const user = id("u");
            const a = await kind.create(store, user, at(0), 2);
            const b = await kind.create(twin, user, at(1), 2);
            await kind.end(store, user, b.id);
            const c = await kind.create(store, user, at(2), 2);
            assert.deepEqual(c.ended, [], "the ended one deleted is not reported: it had ended");
            assert.equal(await twin.sessions.findById(b.id), null);
            assert.deepEqual(await liveOf(kind, [a.id, c.id]), [a.id, c.id]);
            const d = await kind.create(twin, user, at(3), 2);
            assert.deepEqual(d.ended, [a.id]);
            const e = await kind.create(store, user, at(4), 3);
            await kind.end(twin, user, c.id);
            await kind.end(store, user, e.id);
            // Past a cap of 3 with two ended: each creation deletes one of them, every live one stays.
            const f = await kind.create(twin, user, at(5), 3);
            const g = await kind.create(store, user, at(6), 3);
            assert.deepEqual([e.ended, f.ended, g.ended], [[], [], []]);
            assert.equal(await twin.sessions.findById(c.id), null);
            assert.equal(await twin.sessions.findById(e.id), null);
            assert.deepEqual(await liveOf(kind, [d.id, f.id, g.id]), [d.id, f.id, g.id]);
            // None ended left: the oldest live one goes.
            const h = await kind.create(twin, user, at(7), 3);
            assert.deepEqual(h.ended, [d.id]);
          });
        }

        it(`ends at most ${CAP_BATCH} per creation: a user far over a lowered cap is brought down a batch at a time`, async () => {
          const user = id("u");
          // Made without a cap (none ends another), so a wave at a time: each keeps its own time.
          const old: string[] = [];
          for (let wave = 0; wave < CAP_BATCH + 21; wave += WAVE) {
            const indices = Array.from({ length: Math.min(WAVE, CAP_BATCH + 21 - wave) }, (_, j) => wave + j);
            old.push(...(await Promise.all(indices.map(async (i) => (await kind.create(i % 2 ? store : twin, user, at(i))).id))));
          }
          const first = await kind.create(store, user, at(1000), 1);
          assert.deepEqual([...first.ended].sort(), old.slice(0, CAP_BATCH).sort(), `the ${CAP_BATCH} oldest`);
          assert.deepEqual(await liveOf(kind, old), old.slice(CAP_BATCH));
          const second = await kind.create(twin, user, at(1001), 1);
          assert.deepEqual([...second.ended].sort(), [...old.slice(CAP_BATCH), first.id].sort());
          assert.deepEqual(await liveOf(kind, [...old, first.id, second.id]), [second.id]);
        });

        it(`${CONCURRENCY} creations at once, in one millisecond, on two instances: ${"each ended once, never by its own creation; the cap kept (MongoDB: the newest by (time, id) among them, perhaps one more)"}`, async () => {
          const user = id("u");
          const cap = 5;
          // Two instances of their own, whose calls are bounded by 10 s rather than MongoDB's usual
          // 2 s: on a loaded machine a burst of capped creations on FerretDB can outlast 2 s, and
          // the case is about which credentials end, not how fast.
          const name = id("burst");
          const burst = await ownDatabases();
          const [one, two] = [await burst.open(name, { timeoutMs: 10_000 }), await burst.open(name, { timeoutMs: 10_000 })];
          const before = [await kind.create(one, user, at(0), cap), await kind.create(one, user, at(1), cap)];
          const made = await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => kind.create(i % 2 === 0 ? one : two, user, at(2), cap)));
          const all = [...before, ...made];
          for (const m of made) assert.ok(!m.ended.includes(m.id), "a creation never ends its own credential");
          const ended = all.flatMap((m) => m.ended);
          assert.equal(new Set(ended).size, ended.length, "each credential ended once");
          const live = await liveOf(kind, all.map((m) => m.id), two);
          assert.deepEqual([...live, ...ended].sort(), all.map((m) => m.id).sort(), "every credential live or reported ended");
          if (store.kind === "sqlite") assert.equal(live.length, cap);
          else {
            // Never fewer: the newest `cap` are past no creation's boundary; one more at most: the
            // creation that read last ended every other one past the newest `cap` it read.
            assert.ok(live.length === cap || live.length === cap + 1, `${live.length} live`);
            const newest = [...made].sort((x, y) => (x.id < y.id ? 1 : -1)).slice(0, cap).map((m) => m.id);
            for (const m of newest) assert.ok(live.includes(m), "the newest by (time, id) are kept");
          }
        });
      });
    }

    it(`user tokens: a capped creation marks logged out the user's expired ones never logged out (SQLite: expired by its time; MongoDB: a clock step before it), unreported, newest first, at most ${CAP_BATCH} a creation, so that the cap's reads no longer walk them; another user's stay as they are`, async () => {
      const user = id("u");
      const other = id("u");
      const expiresAt = at(1_000);
      const token = async (userId: string, createdAt: Date, cap?: number, expiry?: Date) => {
        const made = { id: id("ut"), hash: id("ut-hash"), userId, createdAt, ...(expiry !== undefined && { expiresAt: expiry }) };
        const { ended } = await store.userTokens.create(made, cap);
        assert.deepEqual(ended, [], "none of them is past the cap");
        return made.id;
      };
      const state = async (tokenId: string) => {
        const found = (await twin.userTokens.findById(tokenId))!;
        assert.equal(found.version, found.enabled ? 0 : 1);
        return found.enabled;
      };
      // Made without a cap (none marks another), so a wave at a time.
      const expired: string[] = [];
      for (let wave = 0; wave < CAP_BATCH + 3; wave += WAVE) {
        const indices = Array.from({ length: Math.min(WAVE, CAP_BATCH + 3 - wave) }, (_, j) => wave + j);
        expired.push(...(await Promise.all(indices.map((i) => token(user, at(i), undefined, expiresAt)))));
      }
      const lasting = await token(user, at(500));
      const unexpired = await token(user, at(501), undefined, at(1_000 + 2 * CLOCK_STEP_MS));
      const othersExpired = await token(other, at(502), undefined, expiresAt);
      const after = at(1_000 + CLOCK_STEP_MS + 1);
      await token(user, after, 500);
      // The newest CAP_BATCH of them; the 3 oldest are left to the next creation.
      assert.deepEqual(await Promise.all(expired.map(state)), expired.map((_, i) => i < 3));
      assert.deepEqual(await Promise.all([lasting, unexpired, othersExpired].map(state)), [true, true, true]);
      await token(user, new Date(after.getTime() + 1), 500);
      assert.deepEqual(await Promise.all(expired.map(state)), expired.map(() => false));
      assert.deepEqual(await Promise.all([lasting, unexpired, othersExpired].map(state)), [true, true, true]);
    });
  });

  describe("keys", () => {
    // Keys are global to a database: each test gets its own.
    let keysA: Store;
    let keysB: Store;
    beforeEach(async () => {
      const name = id("keys");
      const keys = await ownDatabases();
      keysA = await keys.open(name);
      keysB = await keys.open(name);
    });

    it("starts empty", async () => {
      assert.equal((await keysA.keys.list()).at(-1), undefined);
      assert.deepEqual(await keysA.keys.list(), []);
    });

    it(`agrees on exactly one initial key among ${CONCURRENCY} instances starting at once`, async () => {
      const candidates = Array.from({ length: CONCURRENCY }, () => newKey(1));
      const { values, errors } = await settle(
        candidates.map((key, i) => (i % 2 ? keysA : keysB).keys.insertGeneration(key)),
      );
      assert.equal(errors.length, 0);
      assert.equal(values.filter(Boolean).length, 1);
      const winner = candidates[values.indexOf(true)]!;
      assert.deepEqual((await keysA.keys.list()).at(-1), winner);
      assert.deepEqual(await keysB.keys.list(), [winner]);
    });

    it("rotates: the new next key is highest, the promoted one activated, the signing one retired and kept until notAfter", async () => {
      const first = newKey(1);
      const second = newKey(2);
      assert.equal(await keysA.keys.insertGeneration(first), true);
      assert.equal(await keysA.keys.insertGeneration(second), true);
      const third = newKey(3);
      const change = { promote: { kid: second.kid, activatedAt: at(500) }, retire: { kid: first.kid, retiredAt: at(500), notAfter: at(10_000) } };
      assert.equal(await keysA.keys.rotate(third, change), true);
      assert.deepEqual((await keysB.keys.list()).at(-1), third);
      assert.deepEqual(await keysB.keys.list(), [
        { ...first, retiredAt: at(500), notAfter: at(10_000) },
        { ...second, activatedAt: at(500) },
        third,
      ]);
      assert.equal(await keysA.keys.deleteExpired(at(10_000), at(10_000)), 0, "not yet past notAfter");
      assert.equal(await keysA.keys.deleteExpired(at(10_001), at(10_001)), 1);
      assert.deepEqual(await keysA.keys.list(), [{ ...second, activatedAt: at(500) }, third]);
    });

    it("a rotation retiring a key retired already gives it the new times (the key promoted in between was revoked before it signed)", async () => {
      const [first, second, third, fourth] = [newKey(1), newKey(2), newKey(3), newKey(4)];
      await keysA.keys.insertGeneration(first);
      await keysA.keys.insertGeneration(second);
      await keysA.keys.rotate(third, { promote: { kid: second.kid, activatedAt: at(500) }, retire: { kid: first.kid, retiredAt: at(500), notAfter: at(10_000) } });
      await keysA.keys.revoke(second.kid, at(100));
      const change = { promote: { kid: third.kid, activatedAt: at(700) }, retire: { kid: first.kid, retiredAt: at(700), notAfter: at(10_200) } };
      assert.equal(await keysB.keys.rotate(fourth, change), true);
      assert.deepEqual(await keysA.keys.list(), [
        { ...first, retiredAt: at(700), notAfter: at(10_200) },
        { ...second, activatedAt: at(500), revokedAt: at(100) },
        { ...third, activatedAt: at(700) },
        fourth,
      ]);
    });

    it("keeps a retired key revoked before its notAfter past it, until revokedBefore is past its revocation (what was made from its tokens must find it revoked)", async () => {
      const first = newKey(1);
      const second = newKey(2);
      await keysA.keys.insertGeneration(first);
      await keysA.keys.insertGeneration(second);
      const third = newKey(3);
      const change = { promote: { kid: second.kid, activatedAt: at(500) }, retire: { kid: first.kid, retiredAt: at(500), notAfter: at(10_000) } };
      assert.equal(await keysA.keys.rotate(third, change), true);
      assert.equal(await keysA.keys.revoke(first.kid, at(9_000)), true);
      assert.equal(await keysA.keys.deleteExpired(at(10_001), at(9_000)), 0, "past notAfter, not yet past its revocation");
      assert.deepEqual((await keysB.keys.list()).map((k) => k.kid), [first.kid, second.kid, third.kid]);
      assert.equal(await keysB.keys.deleteExpired(at(10_001), at(9_001)), 1);
      assert.deepEqual((await keysA.keys.list()).map((k) => k.kid), [second.kid, third.kid]);
    });

    it("revokes a key once", async () => {
      const first = newKey(1);
      await keysA.keys.insertGeneration(first);
      assert.equal(await keysA.keys.revoke(first.kid, at(7)), true);
      assert.equal(await keysB.keys.revoke(first.kid, at(8)), false);
      assert.deepEqual(await keysB.keys.list(), [{ ...first, revokedAt: at(7) }]);
      assert.equal(await keysA.keys.revoke("no-such-kid", at(7)), false);
    });

    it("deletes a key revoked without being retired once revokedBefore is past its revocation, never the highest generation", async () => {
      const first = newKey(1);
      const second = newKey(2);
      const third = newKey(3);
      await keysA.keys.insertGeneration(first);
      await keysA.keys.insertGeneration(second);
      // The published next key revoked, and another published above it.
      assert.equal(await keysA.keys.revoke(second.kid, at(7)), true);
      await keysA.keys.insertGeneration(third);
      assert.equal(await keysA.keys.deleteExpired(at(100), at(7)), 0, "not yet past its revocation");
      assert.equal(await keysB.keys.deleteExpired(at(100), at(8)), 1);
      assert.deepEqual(await keysA.keys.list(), [first, third]);
      // The highest generation stays, revoked or not: the next key is published above it.
      assert.equal(await keysA.keys.revoke(third.kid, at(9)), true);
      assert.equal(await keysA.keys.deleteExpired(at(100), at(1000)), 0);
      assert.deepEqual(await keysB.keys.list(), [first, { ...third, revokedAt: at(9) }]);
    });

    it(`lets exactly one of ${CONCURRENCY} concurrent rotations win`, async () => {
      await keysA.keys.insertGeneration(newKey(1));
      const candidates = Array.from({ length: CONCURRENCY }, () => newKey(2));
      const { values, errors } = await settle(
        candidates.map((key, i) => (i % 2 ? keysA : keysB).keys.rotate(key, { promote: { kid: key.kid, activatedAt: at(5) } })),
      );
      assert.equal(errors.length, 0);
      assert.equal(values.filter(Boolean).length, 1);
      const list = await keysA.keys.list();
      assert.equal(list.length, 2);
      const winner = candidates[values.indexOf(true)]!;
      assert.deepEqual(list[1], { ...winner, activatedAt: at(5) });
      assert.equal(list.filter((k) => k.activatedAt.getTime() === at(5).getTime()).length, 1, "one promotion");
    });

    it(`re-seals a key's private part only from the form it was read in: ${CONCURRENCY} instances at once, one reports it, one of their forms stored`, async () => {
      const first = newKey(1);
      await keysA.keys.insertGeneration(first);
      const forms = Array.from({ length: CONCURRENCY }, (_, i) => `sealed:v1:form-${i}`);
      const offered: string[][] = forms.map(() => []);
      const accepting = (i: number) => (form: string) => (offered[i]!.push(form), true);
      const { values, errors } = await settle(forms.map((form, i) => (i % 2 ? keysA : keysB).keys.reseal(first.kid, first.privateJwk, form, at(5), accepting(i))));
      assert.equal(errors.length, 0);
      assert.deepEqual(values.filter((v) => v !== "unchanged"), ["resealed"]);
      const [stored] = (await keysB.keys.list()).map((k) => k.privateJwk);
      assert.ok(forms.includes(stored!));
      assert.deepEqual(await keysB.keys.list(), [{ ...first, privateJwk: stored }]);
      // Only another caller's form is offered, never one's own. Usually the stored one; but once the
      // winner has written and deleted its mark, a caller that read the key before that write can
      // claim the mark anew with its form, which a still later caller is then offered (its write,
      // filtered on the form read, changes nothing: checked above by the stored form).
      assert.ok(offered.every((seen, i) => seen.every((form) => forms.includes(form) && form !== forms[i])), "only another's form is offered");
      // From a form no longer stored (read before another instance re-sealed it), or of no key: nothing changes.
      assert.equal(await keysA.keys.reseal(first.kid, first.privateJwk, "sealed:v1:late", at(6), () => true), "unchanged");
      assert.equal(await keysA.keys.reseal("no-such-kid", first.privateJwk, "sealed:v1:late", at(6), () => true), "unchanged");
      assert.deepEqual(await keysA.keys.list(), [{ ...first, privateJwk: stored }]);
      // From its new form, once more (the secret changed again).
      assert.equal(await keysB.keys.reseal(first.kid, stored!, "sealed:v1:again", at(7), () => true), "resealed");
      assert.deepEqual(await keysA.keys.list(), [{ ...first, privateJwk: "sealed:v1:again" }]);
    });

    it(`a re-seal writes no other caller's form that accepts refuses: of ${CONCURRENCY} at once, the one whose form is stored reports it`, async () => {
      const first = newKey(1);
      await keysA.keys.insertGeneration(first);
      const forms = Array.from({ length: CONCURRENCY }, (_, i) => `sealed:v1:form-${i}`);
      const { values, errors } = await settle(forms.map((form, i) => (i % 2 ? keysA : keysB).keys.reseal(first.kid, first.privateJwk, form, at(5), () => false)));
      assert.equal(errors.length, 0);
      assert.deepEqual(values.filter((v) => v === "resealed"), ["resealed"]);
      assert.deepEqual(await keysB.keys.list(), [{ ...first, privateJwk: forms[values.indexOf("resealed")] }]);
    });

    it("re-sealing changes nothing else of a key: a rotation's promotion and retirement, a revocation", async () => {
      const first = newKey(1);
      const second = newKey(2);
      const third = newKey(3);
      await keysA.keys.insertGeneration(first);
      await keysA.keys.insertGeneration(second);
      assert.equal(await keysA.keys.rotate(third, { promote: { kid: second.kid, activatedAt: at(500) }, retire: { kid: first.kid, retiredAt: at(500), notAfter: at(10_000) } }), true);
      assert.equal(await keysA.keys.revoke(first.kid, at(600)), true);
      for (const key of [first, second, third]) assert.equal(await keysB.keys.reseal(key.kid, key.privateJwk, `sealed:v1:${key.kid}`, at(700), () => true), "resealed");
      assert.deepEqual(await keysA.keys.list(), [
        { ...first, privateJwk: `sealed:v1:${first.kid}`, retiredAt: at(500), notAfter: at(10_000), revokedAt: at(600) },
        { ...second, privateJwk: `sealed:v1:${second.kid}`, activatedAt: at(500) },
        { ...third, privateJwk: `sealed:v1:${third.kid}` },
      ]);
    });

    it("refuses a rotation to a generation that exists, changing nothing", async () => {
      const first = newKey(1);
      await keysA.keys.insertGeneration(first);
      assert.equal(await keysA.keys.rotate(newKey(1), { promote: { kid: first.kid, activatedAt: at(5) } }), false);
      assert.deepEqual(await keysA.keys.list(), [first]);
    });
  });

  describe("auditEvents", () => {
    // Each test uses its own user id, type or time span, so events of other tests never match.
    const event = (offsetMs: number, fields: Partial<AuditEventRecord> = {}): AuditEventRecord => ({
      id: randomUUID(),
      time: at(offsetMs),
      type: "login",
      outcome: "success",
      ...fields,
    });

    it("appends an event and lists it back with every field, absent ones left out", async () => {
      const userId = id("u");
      const full = event(1, {
        userId,
        login: "ada@example.com",
        api: "session",
        clientId: "web",
        clientAddress: "192.0.2.7",
        userAgent: "curl/8.0",
        requestId: "req-1",
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        spanId: "00f067aa0ba902b7",
        subject: "session-1",
        reason: "INVALID_CREDENTIALS",
      });
      const bare = event(2, { userId, type: "signup", outcome: "failure" });
      await store.auditEvents.append(full);
      await twin.auditEvents.append(bare);
      assert.deepEqual(await store.auditEvents.list({ userId, limit: 10 }), [bare, full]);
    });

    it("keeps an audit.suppressed event's counts (suppressed) as given, its since a Date", async () => {
      const address = `198.51.100.${Math.floor(Math.random() * 250)}-${id("a")}`;
      const summary = event(4, {
        type: "audit.suppressed",
        outcome: "failure",
        clientAddress: address,
        suppressed: {
          since: at(-60_000),
          count: 13,
          events: [
            { type: "login", outcome: "failure", reason: "INVALID_CREDENTIALS", count: 10 },
            { type: "admin.call", outcome: "failure", reason: "", count: 3 },
          ],
        },
      });
      await store.auditEvents.append(summary);
      const listed = (await twin.auditEvents.list({ type: "audit.suppressed", since: at(4), until: at(5), limit: 100 })).filter((e) => e.clientAddress === address);
      assert.deepEqual(listed, [summary]);
      assert.ok(listed[0]!.suppressed!.since instanceof Date);
    });

    it("refuses a second event with the same id: DuplicateError(id)", async () => {
      const e = event(3, { userId: id("u") });
      await store.auditEvents.append(e);
      await assert.rejects(store.auditEvents.append({ ...e }), (err: unknown) => err instanceof DuplicateError && err.key === "id");
    });

    it("lists newest first (time, then id), filtered by user, type, since and until, in pages after a cursor", async () => {
      const userId = id("u");
      const events = [
        event(100, { userId, type: "login" }),
        event(200, { userId, type: "session.started" }),
        event(200, { userId, type: "login" }),
        event(300, { userId, type: "login", outcome: "failure" }),
        event(400, { userId: id("other"), type: "login" }),
      ];
      await Promise.all(events.map((e, i) => both(i).auditEvents.append(e)));
      const mine = events.slice(0, 4).sort((a, b) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? 1 : -1));
      assert.deepEqual(await store.auditEvents.list({ userId, limit: 10 }), mine);
      assert.deepEqual(await store.auditEvents.list({ userId, type: "login", limit: 10 }), mine.filter((e) => e.type === "login"));
      assert.deepEqual(await store.auditEvents.list({ userId, since: at(200), until: at(300), limit: 10 }), mine.filter((e) => e.time.getTime() === at(200).getTime()));
      // Pages of one: every event once, in order, whatever ties in time.
      const paged: AuditEventRecord[] = [];
      let after: { time: Date; id: string } | undefined;
      for (;;) {
        const page = await twin.auditEvents.list({ userId, limit: 1, ...(after && { after }) });
        if (page.length === 0) break;
        paged.push(...page);
        after = { time: page[0]!.time, id: page[0]!.id };
      }
      assert.deepEqual(paged, mine);
      // A cursor and until together: whichever is lower bounds the page (a cursor at or above
      // until, which no listing with that until returns, leaves until the bound).
      const [, tie1, tie2] = mine; // the two events at 200, the first of them the newer
      const cursor = { time: tie1!.time, id: tie1!.id };
      assert.deepEqual(await store.auditEvents.list({ userId, after: cursor, until: at(300), limit: 10 }), mine.slice(2));
      assert.deepEqual(await store.auditEvents.list({ userId, after: cursor, until: at(200), limit: 10 }), [mine[3]]);
      assert.deepEqual(await store.auditEvents.list({ userId, after: { time: at(400), id: tie2!.id }, until: at(201), limit: 10 }), mine.slice(1));
      assert.deepEqual(await store.auditEvents.list({ userId, type: "login", after: cursor, limit: 10 }), mine.slice(2).filter((e) => e.type === "login"));
    });

    it("deleteOlderThan removes only events before the cut-off and counts them", async () => {
      const userId = id("u");
      const old = event(-10 * 86_400_000, { userId });
      const recent = event(0, { userId });
      await store.auditEvents.append(old);
      await store.auditEvents.append(recent);
      assert.ok((await store.auditEvents.deleteOlderThan(at(-86_400_000), BATCH)) >= 1);
      assert.deepEqual(await store.auditEvents.list({ userId, limit: 10 }), [recent]);
    });
  });

  describe("loginAttempts", () => {
    const WINDOW = 15 * 60_000;
    const LOCK = 60_000;
    // A slot still being checked counts this long (from the newest one taken).
    const LEASE = 2 * LOCK;
    const rule = { windowMs: WINDOW, lockMs: LOCK, maxLockMs: WINDOW, leaseMs: LEASE };
    // A window long enough for a series of locks, which stop growing at 12 minutes.
    const longWindow = { windowMs: 100 * LOCK, lockMs: LOCK, maxLockMs: 12 * LOCK, leaseMs: LEASE };
    const slot = (key: string, limit = 3) => ({ key, limit });
    /** A refusal's lock end, "full" when refused without a lock, null when granted. */
    const refusal = (r: Reservation) => (r.granted ? null : (r.lockedUntil?.getTime() ?? "full"));
    const held = (r: Reservation) => {
      assert.ok(r.granted, "expected the slot to be granted");
      return r.slots;
    };
    const named = new Set<string>();
    /** `slots` without their ids, each checked to be there and its own (a release is named by it). */
    const unnamed = (slots: readonly HeldSlot[]) =>
      slots.map(({ id, ...rest }) => {
        assert.equal(typeof id, "string", "expected a held slot to have an id");
        assert.ok(!named.has(id!), `slot id ${id} given twice`);
        named.add(id!);
        return rest;
      });
    const withoutIds = (r: Reservation) => (r.granted ? { granted: true, slots: unnamed(r.slots) } : r);
    /** One failed attempt at `atMs` through `s`: true when it got a slot. */
    async function guess(s: Store, key: string, limit: number, atMs: number, r = rule): Promise<boolean> {
      const reservation = await s.loginAttempts.reserve([slot(key, limit)], at(atMs), r);
      if (reservation.granted) await s.loginAttempts.recordFailure(reservation.slots, at(atMs), r);
      return reservation.granted;
    }

    it("holds at most `limit` slots: while attempts are being checked, the next is refused without a lock", async () => {
      const key = `login:${id("user")}`;
      for (let i = 0; i < 3; i++) {
        const r = await both(i).loginAttempts.reserve([slot(key)], at(i), rule);
        assert.deepEqual(withoutIds(r), { granted: true, slots: [{ key, limit: 3, windowStart: at(0), takenAt: at(i) }] });
      }
      assert.deepEqual(await twin.loginAttempts.reserve([slot(key)], at(10), rule), { granted: false });
    });

    it("failures reaching the limit lock the key until the lockout's end", async () => {
      const key = `login:${id("user")}`;
      for (let i = 0; i < 3; i++) assert.equal(await guess(both(i), key, 3, i * 10), true);
      assert.equal(refusal(await twin.loginAttempts.reserve([slot(key)], at(21), rule)), at(20 + LOCK).getTime());
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key)], at(20 + LOCK - 1), rule)), at(20 + LOCK).getTime());
    });

    it("a clock stepped back an hour: a lock lasts what was left of it, not the hour more, and its end is never further than the longest lock", async () => {
      const key = `login:${id("user")}`;
      for (let i = 0; i < 3; i++) assert.equal(await guess(both(i), key, 3, i * 10), true);
      const back = -60 * 60_000; // the clock now reads an hour earlier than when the lock was set
      const lockEnd = refusal(await twin.loginAttempts.reserve([slot(key)], at(back + 1000), rule));
      assert.equal(typeof lockEnd, "number");
      assert.ok((lockEnd as number) - at(back + 1000).getTime() <= LOCK, `the lock ends ${(lockEnd as number) - at(back + 1000).getTime()} ms later, past the ${LOCK} ms lock`);
      // Once the lock has run its course on the clock as it reads now, one attempt is let through
      // (and locks at once for twice as long), as after any lock.
      assert.equal((await store.loginAttempts.reserve([slot(key)], at(back + 1000 + LOCK), rule)).granted, true);
      assert.equal(refusal(await twin.loginAttempts.reserve([slot(key)], at(back + 1001 + LOCK), rule)), at(back + 1000 + 3 * LOCK).getTime());
    });

    it("instances' clocks 10 s apart are not a step: refusals alternating between them leave the lock where it was", async () => {
      const key = `login:${id("user")}`;
      for (let i = 0; i < 3; i++) assert.equal(await guess(both(i), key, 3, i * 10), true);
      const behind = -10_000; // twin's clock reads 10 s behind the one that set the lock
      for (let i = 1; i <= 6; i++) {
        assert.equal(refusal(await twin.loginAttempts.reserve([slot(key)], at(behind + 20 + i * 1000), rule)), at(20 + LOCK).getTime());
        assert.equal(refusal(await store.loginAttempts.reserve([slot(key)], at(20 + i * 1000), rule)), at(20 + LOCK).getTime());
      }
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key)], at(20 + LOCK - 1), rule)), at(20 + LOCK).getTime());
    });

    it("grants exactly N of 50 concurrent reservations from two instances", async () => {
      const key = `login:${id("user")}`;
      const N = 5;
      const { values, errors } = await settle(
        Array.from({ length: 50 }, (_, i) => both(i).loginAttempts.reserve([slot(key, N)], at(i), rule)),
      );
      assert.deepEqual(errors, []);
      const granted = values.filter((r) => r.granted);
      assert.equal(granted.length, N);
      assert.deepEqual(new Set(values.map(refusal)), new Set([null, "full"]));
      // The N attempts fail, on both instances at once: the key locks, and 50 more get nothing.
      await Promise.all(granted.map((r, i) => both(i).loginAttempts.recordFailure(held(r), at(100), rule)));
      const again = await settle(Array.from({ length: 50 }, (_, i) => both(i).loginAttempts.reserve([slot(key, N)], at(200 + i), rule)));
      assert.deepEqual(new Set(again.values.map(refusal)), new Set([at(100 + LOCK).getTime()]));
    });

    it(`loses no failure under ${CONCURRENCY} concurrent failures`, async () => {
      const key = `addr:${id("ip")}`;
      const slots: HeldSlot[] = [];
      for (let i = 0; i < CONCURRENCY; i++) slots.push(...held(await both(i).loginAttempts.reserve([slot(key, CONCURRENCY)], at(i), rule)));
      await Promise.all(slots.map((s, i) => both(i).loginAttempts.recordFailure([s], at(50), rule)));
      // The 20th failure locks: had one been lost, the window would only be full (no lock).
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key, CONCURRENCY)], at(60), rule)), at(50 + LOCK).getTime());
    });

    it("once a lock has passed, grants one more attempt, which locks at once for twice as long, up to maxLockMs", async () => {
      const key = `login:${id("user")}`;
      for (let i = 0; i < 2; i++) assert.equal(await guess(store, key, 2, i, longWindow), true);
      let lockEnd = 1 + LOCK;
      for (const factor of [2, 4, 8, 12, 12]) {
        const start = lockEnd;
        const r = await store.loginAttempts.reserve([slot(key, 2)], at(start), longWindow);
        lockEnd = start + factor * LOCK;
        // Locked from the moment the slot is taken, before its outcome is known.
        assert.equal(refusal(await twin.loginAttempts.reserve([slot(key, 2)], at(start + 1), longWindow)), at(lockEnd).getTime());
        await store.loginAttempts.recordFailure(held(r), at(start), longWindow);
        assert.equal(refusal(await twin.loginAttempts.reserve([slot(key, 2)], at(start + 2), longWindow)), at(lockEnd).getTime());
      }
    });

    it(`grants one of ${CONCURRENCY} concurrent attempts once a lock has passed`, async () => {
      const key = `login:${id("user")}`;
      for (let i = 0; i < 2; i++) await guess(store, key, 2, i);
      const { values, errors } = await settle(
        Array.from({ length: CONCURRENCY }, (_, i) => both(i).loginAttempts.reserve([slot(key, 2)], at(1 + LOCK + i), rule)),
      );
      assert.deepEqual(errors, []);
      assert.equal(values.filter((r) => r.granted).length, 1);
    });

    it("a lock only grows: concurrent writes stamped earlier (a clock behind) or counting nothing never shorten it", async () => {
      const key = `addr:${id("ip")}`;
      // limit 1: locks of 1, 2, 4, 8 minutes, then the 12-minute cap: locked until 27 minutes.
      let start = 0;
      let first: readonly HeldSlot[] = [];
      for (const lockMs of [LOCK, 2 * LOCK, 4 * LOCK, 8 * LOCK, 12 * LOCK]) {
        const r = await store.loginAttempts.reserve([slot(key, 1)], at(start), longWindow);
        await store.loginAttempts.recordFailure(held(r), at(start), longWindow);
        if (first.length === 0) first = held(r);
        start += lockMs;
      }
      const end = start;
      assert.equal(end, 27 * LOCK);
      // At once: failures stamped up to 400 s before the last lock began, failures of a window
      // whose limit they do not reach (they count, and lock nothing), and refused attempts.
      const lastLockStart = 15 * LOCK;
      const writes = Array.from({ length: CONCURRENCY }, (_, i) => {
        const s = both(i).loginAttempts;
        if (i % 3 === 0) return s.recordFailure(first, at(lastLockStart - 400_000 + i * 1000), longWindow);
        if (i % 3 === 1) return s.recordFailure([{ ...first[0]!, limit: 1000 }], at(lastLockStart + i), longWindow);
        return s.reserve([slot(key, 1)], at(lastLockStart + i * 1000), longWindow);
      });
      const { errors } = await settle<unknown>(writes);
      assert.deepEqual(errors, []);
      // Every failure past the limit locks for the cap from its own stamp; the latest such stamp
      // (i = 18: 400 s - 18 s before the last lock began) ends before 27 minutes: nothing changes.
      assert.equal(refusal(await twin.loginAttempts.reserve([slot(key, 1)], at(end - 1), longWindow)), at(end).getTime());
      // One stamped later than the lock's start does move it forward.
      await store.loginAttempts.recordFailure(first, at(lastLockStart + 5000), longWindow);
      assert.equal(refusal(await twin.loginAttempts.reserve([slot(key, 1)], at(end - 1), longWindow)), at(end + 5000).getTime());
    });

    it("takes a slot in every key or in none", async () => {
      const free = `login:${id("user")}`;
      const locked = `addr:${id("ip")}`;
      await guess(store, locked, 1, 0);
      const r = await twin.loginAttempts.reserve([slot(free, 2), slot(locked, 4)], at(10), rule);
      assert.equal(refusal(r), at(LOCK).getTime());
      // All of the free key's slots are still there.
      for (let i = 0; i < 2; i++) assert.equal((await store.loginAttempts.reserve([slot(free, 2)], at(20), rule)).granted, true);
      assert.equal(refusal(await store.loginAttempts.reserve([slot(free, 2)], at(20), rule)), "full");
    });

    it("release gives a slot back to its window; failures stay counted and a lock stays as it is", async () => {
      const key = `login:${id("user")}`;
      await twin.loginAttempts.release(held(await store.loginAttempts.reserve([slot(key, 2)], at(0), rule)));
      const a = held(await store.loginAttempts.reserve([slot(key, 2)], at(1), rule));
      const b = held(await twin.loginAttempts.reserve([slot(key, 2)], at(2), rule));
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key, 2)], at(3), rule)), "full");
      await store.loginAttempts.recordFailure(a, at(4), rule);
      await twin.loginAttempts.release(b);
      // One failure, one free slot: the next failure reaches the limit and locks.
      const c = held(await store.loginAttempts.reserve([slot(key, 2)], at(5), rule));
      await store.loginAttempts.recordFailure(c, at(6), rule);
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key, 2)], at(7), rule)), at(6 + LOCK).getTime());
      // After it, one attempt: it locks at once (2 minutes); its success gives its slot back, not the lock.
      const d = held(await store.loginAttempts.reserve([slot(key, 2)], at(6 + LOCK), rule));
      await twin.loginAttempts.release(d);
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key, 2)], at(7 + LOCK), rule)), at(6 + 3 * LOCK).getTime());
    });

    it(`gives back exactly the slots released under ${CONCURRENCY} concurrent releases`, async () => {
      const key = `addr:${id("ip")}`;
      const limit = CONCURRENCY + 1;
      const slots: Array<readonly HeldSlot[]> = [];
      for (let i = 0; i < CONCURRENCY; i++) slots.push(held(await both(i).loginAttempts.reserve([slot(key, limit)], at(i), rule)));
      await Promise.all(slots.map((s, i) => both(i + 1).loginAttempts.release(s)));
      for (let i = 0; i < limit; i++) assert.equal((await store.loginAttempts.reserve([slot(key, limit)], at(100), rule)).granted, true, `slot ${i}`);
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key, limit)], at(100), rule)), "full");
    });

    it("successful logins one after another from two instances, each group of them ending: the window still holds exactly `limit` slots", async () => {
      const key = `login:${id("user")}`;
      for (let i = 0; i < 30; i++) await both(i + 1).loginAttempts.release(held(await both(i).loginAttempts.reserve([slot(key, 3)], at(i), rule)));
      const { values, errors } = await settle(Array.from({ length: 8 }, (_, i) => both(i).loginAttempts.reserve([slot(key, 3)], at(30 + i), rule)));
      assert.deepEqual(errors, []);
      assert.equal(values.filter((r) => r.granted).length, 3);
      assert.equal(refusal(await twin.loginAttempts.reserve([slot(key, 3)], at(40), rule)), "full");
    });

    it(`releases racing grants from two instances never let one more through: ${CONCURRENCY} reservations while the 4 slots held are given back`, async () => {
      const key = `addr:${id("ip")}`;
      const limit = 4;
      let holding: HeldSlot[] = [];
      for (let i = 0; i < limit; i++) holding.push(...held(await both(i).loginAttempts.reserve([slot(key, limit)], at(i), rule)));
      for (let round = 1; round <= 3; round++) {
        const start = round * 100;
        const [, reservations] = await Promise.all([
          Promise.all(holding.map((s, i) => both(i).loginAttempts.release([s]))),
          settle(Array.from({ length: CONCURRENCY }, (_, i) => both(i + 1).loginAttempts.reserve([slot(key, limit)], at(start + i), rule))),
        ]);
        assert.deepEqual(reservations.errors, []);
        holding = reservations.values.flatMap((r) => (r.granted ? r.slots : []));
        // A release the racing grants did not see refused one of them, never granted one more:
        // the window's free slots, taken now, fill it to exactly `limit`.
        const more = await settle(Array.from({ length: limit }, (_, i) => both(i).loginAttempts.reserve([slot(key, limit)], at(start + 50 + i), rule)));
        assert.deepEqual(more.errors, []);
        holding.push(...more.values.flatMap((r) => (r.granted ? r.slots : [])));
        assert.equal(holding.length, limit, `round ${round}`);
      }
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key, limit)], at(500), rule)), "full");
    });

    it("a window passes: counting starts over; a slot of the old window neither fails nor is given back in the new", async () => {
      const key = `login:${id("user")}`;
      const old = held(await store.loginAttempts.reserve([slot(key, 3)], at(0), rule));
      for (let i = 0; i < 2; i++) await guess(store, key, 3, 1 + i);
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key, 3)], at(3), rule)), "full");
      // The window (15 min) has passed: a new one, with all its slots.
      const fresh = await twin.loginAttempts.reserve([slot(key, 3)], at(WINDOW + 5), rule);
      assert.deepEqual(withoutIds(fresh), { granted: true, slots: [{ key, limit: 3, windowStart: at(WINDOW + 5), takenAt: at(WINDOW + 5) }] });
      await store.loginAttempts.recordFailure(old, at(WINDOW + 6), rule);
      await store.loginAttempts.release(old);
      for (let i = 0; i < 2; i++) assert.equal(await guess(store, key, 3, WINDOW + 7 + i), true);
      // Three failures in the new window: the third locks (the old slot counted nowhere).
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key, 3)], at(WINDOW + 10), rule)), "full");
      await store.loginAttempts.recordFailure(held(fresh), at(WINDOW + 10), rule);
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key, 3)], at(WINDOW + 11), rule)), at(WINDOW + 10 + LOCK).getTime());
    });

    it("a slot never ended (its process died) counts until the lease of the newest pending slot passes; failures count on", async () => {
      const key = `login:${id("user")}`;
      assert.equal(await guess(store, key, 3, 0), true);
      held(await store.loginAttempts.reserve([slot(key)], at(10), rule));
      held(await twin.loginAttempts.reserve([slot(key)], at(20), rule));
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key)], at(30), rule)), "full");
      assert.equal(refusal(await twin.loginAttempts.reserve([slot(key)], at(20 + LEASE - 1), rule)), "full");
      // Both dead slots are free; the failure still holds its own: two more, then full.
      const a = held(await store.loginAttempts.reserve([slot(key)], at(20 + LEASE), rule));
      assert.deepEqual(unnamed(a), [{ key, limit: 3, windowStart: at(0), takenAt: at(20 + LEASE) }]);
      const b = held(await twin.loginAttempts.reserve([slot(key)], at(21 + LEASE), rule));
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key)], at(22 + LEASE), rule)), "full");
      await store.loginAttempts.recordFailure(a, at(23 + LEASE), rule);
      await twin.loginAttempts.recordFailure(b, at(24 + LEASE), rule);
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key)], at(25 + LEASE), rule)), at(24 + LEASE + LOCK).getTime());
    });

    it("a late end of a slot whose lease passed: its release gives nothing back, its failure counts once, in its own window only", async () => {
      const key = `login:${id("user")}`;
      const old = held(await store.loginAttempts.reserve([slot(key)], at(0), rule));
      const x = held(await twin.loginAttempts.reserve([slot(key)], at(LEASE), rule));
      await store.loginAttempts.release(old);
      for (let i = 1; i <= 2; i++) held(await both(i).loginAttempts.reserve([slot(key)], at(LEASE + i), rule));
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key)], at(LEASE + 3), rule)), "full");
      // Counted, taking a slot again: x given back leaves the window full (1 failure, 2 pending).
      await twin.loginAttempts.recordFailure(old, at(LEASE + 4), rule);
      await store.loginAttempts.release(x);
      assert.equal(refusal(await twin.loginAttempts.reserve([slot(key)], at(LEASE + 5), rule)), "full");
      // The next window: neither end of a slot of the old one counts in it.
      const fresh = held(await store.loginAttempts.reserve([slot(key)], at(WINDOW + 10), rule));
      await twin.loginAttempts.recordFailure(old, at(WINDOW + 11), rule);
      await twin.loginAttempts.release(x);
      for (let i = 0; i < 2; i++) assert.equal(await guess(both(i), key, 3, WINDOW + 12 + i), true);
      assert.equal(refusal(await store.loginAttempts.reserve([slot(key)], at(WINDOW + 20), rule)), "full");
      await store.loginAttempts.recordFailure(fresh, at(WINDOW + 21), rule);
      assert.equal(refusal(await twin.loginAttempts.reserve([slot(key)], at(WINDOW + 22), rule)), at(WINDOW + 21 + LOCK).getTime());
    });

    it("deletes stale counters, and keeps recent and still-locked ones", async () => {
      // A database of its own: what is deleted is counted.
      const name = id("stale");
      const fresh = await ownDatabases();
      const [store, twin] = [await fresh.open(name), await fresh.open(name)];
      const grantsLeft = async (key: string, limit: number, atMs: number) => {
        let granted = 0;
        while ((await store.loginAttempts.reserve([slot(key, limit)], at(atMs), rule)).granted) granted++;
        return granted;
      };
      const stale = `login:${id("user")}`;
      const recent = `login:${id("user")}`;
      const locked = `addr:${id("ip")}`;
      for (let i = 0; i < 2; i++) await store.loginAttempts.reserve([slot(stale, 3)], at(i), rule);
      await store.loginAttempts.reserve([slot(recent, 3)], at(2 * WINDOW), rule);
      // limit 1 with a lock of 3 windows: still locked at 2 * WINDOW.
      const longRule = { ...rule, lockMs: 3 * WINDOW, maxLockMs: 3 * WINDOW };
      await guess(store, locked, 1, 0, longRule);
      // The stale counter: one row in SQLite; in MongoDB one document per state: its 2, and the
      // locked key's first state (superseded by the one that carries the lock).
      assert.equal(await twin.loginAttempts.deleteStale(at(WINDOW), at(2 * WINDOW), BATCH), store.kind === "sqlite" ? 1 : 3);
      assert.equal(await grantsLeft(recent, 3, 2 * WINDOW + 1), 2, "recent counter kept");
      assert.equal(refusal(await store.loginAttempts.reserve([slot(locked, 1)], at(2 * WINDOW), rule)), at(3 * WINDOW).getTime());
      // Once the lock has passed too, it goes (and only it: the recent counter is not stale).
      assert.equal(await twin.loginAttempts.deleteStale(at(WINDOW), at(6 * WINDOW), BATCH), 1);
    });

    it("remembers a login until a time that only moves forward, and forgets it after", async () => {
      const name = id("known");
      const fresh = await ownDatabases();
      const [store, twin] = [await fresh.open(name), await fresh.open(name)];
      const both = (i: number): Store => (i % 2 === 0 ? store : twin);
      const hash = id("known");
      assert.equal(await store.loginAttempts.rememberedUntil(hash), null);
      await store.loginAttempts.rememberLogin(hash, at(1000));
      assert.equal((await twin.loginAttempts.rememberedUntil(hash))?.getTime(), at(1000).getTime());
      await twin.loginAttempts.rememberLogin(hash, at(500));
      assert.equal((await store.loginAttempts.rememberedUntil(hash))?.getTime(), at(1000).getTime());
      await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => both(i).loginAttempts.rememberLogin(hash, at(2000))));
      assert.equal((await store.loginAttempts.rememberedUntil(hash))?.getTime(), at(2000).getTime());
      const other = id("known");
      await store.loginAttempts.rememberLogin(other, at(5000));
      assert.equal(await twin.loginAttempts.forgetExpiredLogins(at(3000), BATCH), 1);
      assert.equal(await store.loginAttempts.rememberedUntil(hash), null);
      assert.equal((await store.loginAttempts.rememberedUntil(other))?.getTime(), at(5000).getTime());
    });
  });

  // Housekeeping deletes a backlog a batch at a time (ports.ts): one call deletes at most `limit`
  // records, so that no statement holds SQLite's write lock for long; the calls together delete
  // every expired record, and nothing live.
  describe("housekeeping deletes, a batch per call", () => {
    const LIMIT = 10;
    const BACKLOG = 25;
    const WINDOW = 15 * 60_000;
    const rule = { windowMs: WINDOW, lockMs: 60_000, maxLockMs: WINDOW, leaseMs: 120_000 };
    interface Kind {
      name: string;
      /** Stores a record under `key`: expired (before the cut-off) or live. */
      add(s: Store, key: string, expired: boolean): Promise<void>;
      /** Whether the record is still there. */
      has(s: Store, key: string): Promise<boolean>;
      /** One housekeeping call. */
      remove(s: Store, limit: number): Promise<number>;
    }
    const kinds: Kind[] = [
      {
        name: "sessions.deleteExpired",
        // The first refresh token live: the refresh tokens' backlog below is theirs alone.
        add: async (s, key, expired) => void (await createSession(s, { id: key, userId: "u", clientId: "c", accessJti: "j", createdAt: at(-10), expiresAt: at(expired ? -1 : 1000) }, at(1000))),
        has: async (s, key) => (await s.sessions.findById(key)) !== null,
        remove: (s, limit) => s.sessions.deleteExpired(at(0), limit),
      },
      {
        name: "refreshTokens.deleteExpired",
        add: async (s, key, expired) => void (await s.refreshTokens.insertThenSync({ hash: key, sessionId: "s", createdAt: at(-10), expiresAt: at(expired ? -1 : 1000) })),
        has: async (s, key) => (await s.refreshTokens.findByHash(key)) !== null,
        remove: (s, limit) => s.refreshTokens.deleteExpired(at(0), limit),
      },
      {
        name: "authTokens.deleteExpired",
        add: async (s, key, expired) => void (await s.authTokens.create({ hash: key, userId: "u", createdAt: at(-10), expiresAt: at(expired ? -1 : 1000) })),
        has: async (s, key) => (await s.authTokens.findByHash(key)) !== null,
        remove: (s, limit) => s.authTokens.deleteExpired(at(0), limit),
      },
      {
        name: "jwtRefreshTokens.deleteExpired",
        add: async (s, key, expired) => void (await s.jwtRefreshTokens.create({ jti: key, userId: "u", issuedAt: at(-10), expiresAt: at(expired ? -1 : 1000) })),
        has: async (s, key) => (await s.jwtRefreshTokens.findByJti(key)) !== null,
        remove: (s, limit) => s.jwtRefreshTokens.deleteExpired(at(0), limit),
      },
      {
        name: "userTokens.deleteEndedBefore",
        // Half of the backlog expired, half logged out (and never expiring).
        add: async (s, key, expired) => {
          const ended = expired && Number.parseInt(key.slice(-1), 16) % 2 === 0;
          await s.userTokens.create({ id: key, hash: key, userId: "u", createdAt: at(-10), ...(!ended && { expiresAt: at(expired ? -1 : 1000) }) });
          if (ended) await s.userTokens.disable(key, at(-1));
        },
        has: async (s, key) => (await s.userTokens.findByHashWithUser(key).then((f) => f?.token ?? null)) !== null,
        remove: (s, limit) => s.userTokens.deleteEndedBefore(at(0), limit),
      },
      {
        name: "apiTokens.deleteRevokedBefore",
        // A live one: active (an active token is never deleted, whatever its age).
        add: async (s, key, expired) => {
          await s.apiTokens.create({ link: key, hash: key, accountId: "batched", description: "d", issuedAt: at(-10) }, 1_000_000);
          if (expired) await s.apiTokens.revoke("batched", key, at(-1));
        },
        has: async (s, key) => (await s.apiTokens.findByHash(key)) !== null,
        remove: (s, limit) => s.apiTokens.deleteRevokedBefore(at(0), limit),
      },
      {
        name: "auditEvents.deleteOlderThan",
        add: (s, key, expired) => s.auditEvents.append({ id: key, time: at(expired ? -2 : 0), type: "login", outcome: "success", userId: "batched" }),
        has: async (s, key) => (await s.auditEvents.list({ userId: "batched", limit: 100 })).some((e) => e.id === key),
        remove: (s, limit) => s.auditEvents.deleteOlderThan(at(-1), limit),
      },
      {
        name: "loginAttempts.deleteStale",
        // A stale counter: its one attempt two windows ago. A live one: full (limit 1) now.
        add: async (s, key, expired) => void (await s.loginAttempts.reserve([{ key, limit: 1 }], at(expired ? -2 * WINDOW : 0), rule)),
        // A counter that is there refuses (full); one that is gone (or stale) grants a new window.
        has: async (s, key) => !(await s.loginAttempts.reserve([{ key, limit: 1 }], at(0), rule)).granted,
        remove: (s, limit) => s.loginAttempts.deleteStale(at(-WINDOW), at(0), limit),
      },
      {
        name: "loginAttempts.forgetExpiredLogins",
        add: (s, key, expired) => s.loginAttempts.rememberLogin(key, at(expired ? -1 : 1000)),
        has: async (s, key) => (await s.loginAttempts.rememberedUntil(key)) !== null,
        remove: (s, limit) => s.loginAttempts.forgetExpiredLogins(at(0), limit),
      },
    ];

    let own: Store;
    before(async () => {
      // A database of its own: the counts are these tests' alone (each kind has its own table).
      own = await harness.open(id("batches"));
    });

    for (const kind of kinds) {
      it(`${kind.name}: a backlog of ${BACKLOG} goes in calls of at most ${LIMIT} (${LIMIT}, ${LIMIT}, ${BACKLOG - 2 * LIMIT}), the live record stays`, async () => {
        const expired = Array.from({ length: BACKLOG }, () => id("expired"));
        const live = id("live");
        for (const key of expired) await kind.add(own, key, true);
        await kind.add(own, live, false);
        const batches: number[] = [];
        for (let n = LIMIT; n === LIMIT; ) batches.push((n = await kind.remove(own, LIMIT)));
        assert.deepEqual(batches, [LIMIT, LIMIT, BACKLOG - 2 * LIMIT]);
        assert.equal(await kind.remove(own, LIMIT), 0, "nothing expired is left");
        assert.equal(await kind.has(own, live), true, "the live record is kept");
        if (kind.name !== "loginAttempts.deleteStale") for (const key of expired) assert.equal(await kind.has(own, key), false);
      });
    }
  });
}
