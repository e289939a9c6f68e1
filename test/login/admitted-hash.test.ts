// A sign-up or login is admitted by the hasher before it looks its login up, and holds its place
// in the hasher's bound (TESSERA_HASH_CONCURRENCY + TESSERA_HASH_QUEUE_LIMIT) until it hashes in
// it: a hasher filled while the lookup runs refuses neither a free login nor a taken one. Were a
// free login's sign-up admitted a second time after its lookup (as it was), a flood filling the
// hasher would have it refused 503 HASHER_BUSY while a taken login is answered 409 at once: which
// logins exist, told by the load. A sign-up or login that ends without hashing (a taken login, a
// store error, a lock, its client gone) gives its place back.
//
// Each lookup here is held (the store's findByLogin, for one login) while the hasher fills: a
// sign-up whose hash is held takes the only hasher, and one more sign-up finds every place
// taken. The places are read on /metrics.
import assert from "node:assert/strict";
import { loginKey } from "../../src/core/login-name.js";
import { StoreUnavailableError } from "../../src/store/ports/errors.js";
import type { UserStore } from "../../src/store/ports/users.js";
import { rest, type RestResponse } from "../support/clients.js";
import { heldArgon2 } from "../support/held-argon2.js";
import { scrape, value } from "../support/metrics.js";
import { pollUntil } from "../support/poll.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { clientIdHeader, password, uniqueEmail, uniqueName } from "../support/users.js";
import { wrongPassword } from "./api.js";

const busy = "too many password checks in progress; retry shortly";

/**
 * The store's lookup of `login` (by its key) held until `release()`, once: it reads the user,
 * then waits (or, with `fail`, throws a store error instead of answering).
 */
function heldLookup(server: TestServer, login: string, fail = false) {
  const users = server.tessera.store.users as UserStore;
  const original = users.findByLogin;
  let reach!: () => void;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const restore = () => {
    users.findByLogin = original;
    release();
  };
  users.findByLogin = async (spelling, key) => {
    if (key !== loginKey(login)) return original.call(users, spelling, key);
    users.findByLogin = original; // the next lookups of this login are not held
    const user = await original.call(users, spelling, key);
    reach();
    await released;
    if (fail) throw new StoreUnavailableError("the store went away during the lookup");
    return user;
  };
  return { reached, release, restore };
}

/** A promise and whether it has settled. */
function watched<T>(p: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let settled = false;
  const promise = p.finally(() => (settled = true));
  promise.catch(() => {});
  return { promise, settled: () => settled };
}

/** Places of the hasher's bound taken now: hashing, waiting, held by admitted callers. */
async function places(server: TestServer) {
  const m = await scrape(`${server.url}/metrics`);
  return { inUse: value(m, "tessera_hasher_in_use"), queued: value(m, "tessera_hasher_queue_depth"), reserved: value(m, "tessera_hasher_reserved") };
}

/** Polls until `done` holds (generous: the machine is shared). */
async function until(what: string, done: () => boolean | Promise<boolean>): Promise<void> {
  await pollUntil(what, done, { limitMs: 60_000, intervalMs: 10 });
}

const expectBusy = (r: RestResponse, what: string) => {
  assert.equal(r.status, 503, `${what}: ${r.text}`);
  assert.equal(r.body.message, busy, what);
  assert.equal(r.body.details[0].debug.reason, "HASHER_BUSY", what);
  assert.match(r.headers.get("retry-after") ?? "", /^[123]$/, what);
};

for (const store of storesUnderTest()) {
  describe(`a sign-up or login admitted before the hasher fills up is not refused by it (${store})`, function () {
    this.timeout(120_000);
    let server: TestServer;
    const signUp = (email: string) => rest(server.url, "POST", "/user", { json: { email, password }, headers: clientIdHeader });
    const jwtSignUp = (user: string) => rest(server.url, "POST", "/jwt/user", { json: { user, pass: password } });
    const logIn = (email: string, pass: string) => rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password: pass }, headers: clientIdHeader });

    before(async () => {
      // One hasher, one place in its queue.
      server = await startTestServer({ store, env: { TESSERA_HASH_CONCURRENCY: "1", TESSERA_HASH_QUEUE_LIMIT: "1" } });
      assert.equal((await logIn(uniqueEmail("nobody"), wrongPassword)).status, 401); // the dummy hash is made by now
    });
    after(() => server?.close());
    afterEach(async () => {
      // Every place came back.
      await until("every place of the hasher is free", async () => {
        const p = await places(server);
        return p.inUse === 0 && p.queued === 0 && p.reserved === 0;
      });
    });

    /**
     * `call` (for `login`) is admitted and its lookup held; meanwhile a sign-up whose hash is held
     * takes the hasher and one more finds the bound full (the held call's place and the hasher:
     * 503). Then the lookup goes on, the held hash ends; `call`'s answer, checked to be `status`
     * (not 503 HASHER_BUSY).
     */
    async function filledDuringLookup(login: string, call: () => Promise<RestResponse>, status: number): Promise<RestResponse> {
      const lookup = heldLookup(server, login);
      const hash = heldArgon2("hash");
      try {
        const answer = watched(call());
        await lookup.reached;
        const filler = signUp(uniqueEmail("filler"));
        await hash.started();
        const late = watched(signUp(uniqueEmail("late")));
        // Refused at once (the held call's place counts), or, were that place not held, waiting
        // in the queue for the hasher.
        await until("the late sign-up is refused or waits for the hasher", async () => late.settled() || (await places(server)).queued === 1);
        lookup.release();
        // The held call is answered (a taken login), or waits its turn for the hasher.
        await until("the held call is answered or waits for the hasher", async () => answer.settled() || (late.settled() && (await places(server)).queued === 1));
        hash.release();
        const answered = await answer.promise;
        assert.equal(answered.status, status, `admitted before the hasher filled up: ${answered.text}`);
        assert.equal((await filler).status, 201);
        expectBusy(await late.promise, "a sign-up that finds every place taken, the held call's too");
        return answered;
      } finally {
        lookup.restore();
        hash.restore();
      }
    }

    it("POST /user: a free login is created (201), a taken one answered 409, though the hasher filled while they were looked up", async () => {
      const free = uniqueEmail("free");
      await filledDuringLookup(free, () => signUp(free), 201);
      assert.equal((await logIn(free, password)).status, 200, "the account was made with its password");
      const taken = await filledDuringLookup(free, () => signUp(free), 409);
      assert.equal(taken.body.details[0].debug.reason, "USER_EXISTS");
    });

    it("POST /jwt/user (seed 004): a free name is created (201), a taken one answered 409, alike", async () => {
      const free = uniqueName("free");
      await filledDuringLookup(free, () => jwtSignUp(free), 201);
      await filledDuringLookup(free, () => jwtSignUp(free), 409);
    });

    it("POST /session: a known login and an unknown one are checked (200, 401), not refused, though the hasher filled while they were looked up", async () => {
      const known = uniqueEmail("known");
      assert.equal((await signUp(known)).status, 201);
      await filledDuringLookup(known, () => logIn(known, password), 200);
      await filledDuringLookup(known, () => logIn(known, wrongPassword), 401);
      const unknown = uniqueEmail("unknown");
      await filledDuringLookup(unknown, () => logIn(unknown, wrongPassword), 401);
    });

    it("a sign-up or login whose lookup fails in the store gives its place back", async () => {
      for (const [login, call] of [
        [uniqueEmail("store-error"), (l: string) => signUp(l)],
        [uniqueEmail("store-error"), (l: string) => logIn(l, password)],
      ] as const) {
        const lookup = heldLookup(server, login, true);
        try {
          const answer = call(login);
          await lookup.reached;
          assert.deepEqual(await places(server), { inUse: 0, queued: 0, reserved: 1 }, "held while it is looked up");
          lookup.release();
          const r = await answer;
          assert.equal(r.status, 503, r.text);
          assert.equal(r.body.details[0].debug.reason, "STORE_UNAVAILABLE");
        } finally {
          lookup.restore();
        }
        assert.deepEqual(await places(server), { inUse: 0, queued: 0, reserved: 0 });
      }
    });

    it("a sign-up whose client leaves during its lookup gives its place back at once, and is not hashed", async () => {
      const email = uniqueEmail("gone");
      const lookup = heldLookup(server, email);
      const leaving = new AbortController();
      try {
        const answer = fetch(`${server.url}/user`, {
          method: "POST",
          headers: { ...clientIdHeader, "content-type": "application/json" },
          body: JSON.stringify({ email, password }),
          signal: leaving.signal,
        });
        await lookup.reached;
        assert.equal((await places(server)).reserved, 1);
        leaving.abort();
        await assert.rejects(answer);
        await until("the place is given back while the lookup still waits", async () => (await places(server)).reserved === 0);
      } finally {
        lookup.restore();
      }
      await until("no account made", async () => (await logIn(email, password)).status === 401);
    });
  });

  describe(`a sign-up or login refused by its throttle gives its hasher place back (${store})`, function () {
    this.timeout(120_000);
    let server: TestServer;
    before(async () => {
      // One hasher and no queue: a place not given back would refuse every later call.
      server = await startTestServer({
        store,
        env: { TESSERA_HASH_CONCURRENCY: "1", TESSERA_HASH_QUEUE_LIMIT: "0", TESSERA_SIGNUP_MAX_PER_ADDRESS: "2", TESSERA_LOGIN_MAX_FAILURES: "1" },
      });
    });
    after(() => server?.close());

    it("TOO_MANY_SIGNUPS, LOGIN_LOCKED and a taken login (409): each leaves every place free", async () => {
      const signUp = (email: string) => rest(server.url, "POST", "/user", { json: { email, password }, headers: clientIdHeader });
      const logIn = (email: string, pass: string) => rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password: pass }, headers: clientIdHeader });
      const free = async () => assert.deepEqual(await places(server), { inUse: 0, queued: 0, reserved: 0 });
      const email = uniqueEmail("throttled");
      assert.equal((await signUp(email)).status, 201);
      assert.equal((await signUp(email)).status, 409);
      await free();
      const refused = await signUp(uniqueEmail("one-too-many"));
      assert.equal(refused.status, 429, refused.text);
      assert.equal(refused.body.details[0].debug.reason, "TOO_MANY_SIGNUPS");
      await free();
      assert.equal((await logIn(email, wrongPassword)).status, 401);
      const locked = await logIn(email, password);
      assert.equal(locked.status, 429, locked.text);
      assert.equal(locked.body.details[0].debug.reason, "LOGIN_LOCKED");
      await free();
      // The only place is free: another login is checked.
      assert.equal((await logIn(uniqueEmail("nobody"), wrongPassword)).status, 401);
      await free();
    });
  });
}
