// The MongoDB operations per call that README's "Scale out" states (its table "What each call
// costs in MongoDB" and "Capacity per instance"), counted on the operations Tessera's driver
// sends for a seed 000 token check, refresh and login. A change that adds a read or a write to
// one of these calls fails here until the README says so.
import assert from "node:assert/strict";
import { Collection } from "mongodb";
import { expectOk } from "../support/api.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { sessionApi, type SessionApi } from "../session/api.js";

/** The collection methods Tessera reads and writes with (findOne is a find underneath). */
const counted = ["find", "insertOne", "updateOne", "countDocuments"] as const;

describe("mongo store: operations per call (README, Scale out)", function () {
  let server: TestServer;
  let api: SessionApi;
  const seen = new Map<string, number>();
  let counting = false;
  const originals = new Map<string, unknown>();

  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    const proto = Collection.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const method of counted) {
      const original = proto[method]!;
      originals.set(method, original);
      proto[method] = function (this: Collection, ...args: unknown[]) {
        // Signing keys are re-read on a timer, not by a call.
        if (counting && this.collectionName !== "signing_keys") {
          const key = `${method === "find" ? "read" : "write"} ${this.collectionName}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
        }
        return original.apply(this, args);
      };
    }
    server = await startTestServer({ store: "mongo", env: { TESSERA_HOUSEKEEPING_INTERVAL_SECONDS: "0" } });
    api = sessionApi("rest", server.url);
  });

  after(async () => {
    const proto = Collection.prototype as unknown as Record<string, unknown>;
    for (const [method, original] of originals) proto[method] = original;
    api?.close();
    await server?.close();
  });

  /** The operations `call` makes, by kind and collection (the audit insert may land after the answer). */
  async function costOf(call: () => Promise<void>): Promise<Record<string, number>> {
    seen.clear();
    counting = true;
    try {
      await call();
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      counting = false;
    }
    return Object.fromEntries([...seen].sort(([a], [b]) => a.localeCompare(b)));
  }

  const creds = { clientId: testClientId };
  const login = { account_type: "traditional", email: "costs@example.com", password: "correct horse battery staple" };

  it("a login (two slots, then one), a token check and a refresh make the operations the README lists", async () => {
    expectOk(await api.createUser({ email: login.email, password: login.password }, creds), 201);

    // First login from this address: the login's and the address's slots, the address
    // remembered, lastLoginAt written.
    let pair = { access_token: "", refresh_token: "" };
    const first = await costOf(async () => {
      pair = expectOk(await api.createSession(login, creds));
    });
    assert.deepEqual(first, {
      "read known_logins": 1,
      "read login_attempts": 4,
      "read marks": 3,
      "read sessions": 1,
      "read user_passwords": 3,
      "read users": 3,
      "write audit_events": 2,
      "write known_logins": 1,
      "write login_attempt_releases": 2,
      "write login_attempts": 2,
      "write refresh_tokens": 1,
      "write sessions": 1,
      "write users": 1,
    });

    // From a remembered address: 10 reads (the cap's boundary among them) and 4 writes, and the two audit events.
    const again = await costOf(async () => {
      pair = expectOk(await api.createSession(login, creds));
    });
    assert.deepEqual(again, {
      "read known_logins": 1,
      "read login_attempts": 2,
      "read marks": 2,
      "read sessions": 1,
      "read user_passwords": 2,
      "read users": 2,
      "write audit_events": 2,
      "write login_attempt_releases": 1,
      "write login_attempts": 1,
      "write refresh_tokens": 1,
      "write sessions": 1,
    });

    // A token check: 5 reads, no write.
    const check = await costOf(async () => {
      expectOk(await api.getSession({ ...creds, access: pair.access_token }));
    });
    assert.deepEqual(check, { "read marks": 2, "read sessions": 1, "read user_passwords": 1, "read users": 1 });

    // A refresh: 15 reads (the user's epoch twice: by the access token's check, and once the new
    // pair is stored), 4 writes, and its audit event.
    const refresh = await costOf(async () => {
      expectOk(await api.refreshSession({ refresh_token: pair.refresh_token }, { ...creds, access: pair.access_token }));
    });
    assert.deepEqual(refresh, {
      "read marks": 6,
      "read refresh_tokens": 2,
      "read sessions": 3,
      "read user_passwords": 2,
      "read users": 2,
      "write audit_events": 1,
      "write marks": 2,
      "write refresh_tokens": 1,
      "write sessions": 1,
    });
  });
});
