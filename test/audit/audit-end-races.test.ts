// A session's end is recorded once when a logout races the sessions cap on another instance
// sharing the store: the cap (TESSERA_MAX_SESSIONS_PER_USER) of a login there ends the user's
// oldest session while DELETE /session of that session is under way. Whichever ended it records
// `session.ended`; the other is answered as a logout after the end is (401 SESSION_ENDED).
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { Collection, type Document } from "mongodb";
import { bearer, rest } from "../support/clients.js";
import { storesUnderTest, type TestServer } from "../support/server.js";
import { clientIdHeader, password, signUp, uniqueEmail } from "../support/users.js";
import { assertRefused, gate, holdAfter, startServerPair, type Gate, type ServerPair } from "../credentials/support.js";
import { allEvents } from "./api.js";

const login = (server: TestServer, email: string) => rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password }, headers: clientIdHeader });

/**
 * Holds the cap of the next login on `server` once it has ended the session `sessionId`, until
 * `open()`: on MongoDB at that session's delete (the cap ends a session, then deletes its
 * document), on SQLite once the login's store call has answered (its cap is in its transaction).
 */
function holdCapEnding(server: TestServer, sessionId: string): Gate & { restore(): void } {
  if (!server.config.mongodbUri) return holdAfter(server.tessera.store.sessions, "createThenSync");
  const held = gate();
  const deleteOne = Collection.prototype.deleteOne;
  const restore = () => void (Collection.prototype.deleteOne = deleteOne);
  Collection.prototype.deleteOne = function (this: Collection<Document>, filter?: Document, ...rest: unknown[]) {
    if (this.collectionName !== "sessions" || filter?._id !== sessionId) return (deleteOne as any).call(this, filter, ...rest);
    restore();
    return held.pass().then(() => (deleteOne as any).call(this, filter, ...rest));
  } as typeof deleteOne;
  return { ...held, restore };
}

for (const store of storesUnderTest()) {
  describe(`audit trail on ${store}: a logout racing the sessions cap on another instance`, function () {
    this.timeout(60_000);
    let pair: ServerPair;
    before(async () => (pair = await startServerPair(store, { TESSERA_MAX_SESSIONS_PER_USER: "1" })));
    after(() => pair?.close());

    it("DELETE /session of the session a login's cap ended, before the cap's delete: 401 SESSION_ENDED; session.ended recorded once, the cap's", async () => {
      const { a, b } = pair;
      const email = uniqueEmail("caprace");
      await signUp(a, email);
      const first = await login(a, email);
      assert.equal(first.status, 200, first.text);
      const { sid, sub } = decodeJwt(first.body.access_token as string) as { sid: string; sub: string };
      const held = holdCapEnding(b, sid);
      try {
        const second = login(b, email);
        await held.reached;
        const logout = await rest(a.url, "DELETE", "/session", { headers: { ...clientIdHeader, ...bearer(first.body.access_token as string) } });
        held.open();
        assert.equal((await second).status, 200);
        const ended = (await allEvents(a, { user_id: sub, type: "session.ended" })).filter((e) => e.subject === sid);
        assert.deepEqual(
          ended.map((e) => [e.outcome, e.reason ?? null]),
          [["success", "CAP"]],
        );
        assertRefused(logout, 401, "the session has ended", "SESSION_ENDED");
      } finally {
        held.restore();
        held.open();
      }
    });
  });
}
