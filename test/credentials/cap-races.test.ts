// The caps on a user's live credentials (README "Caps") when creations for one user race on two
// instances sharing one store, through real clients, at a cap of 1 (one session per user):
// - two logins started at once, one on each instance, leave exactly one of the two new
//   credentials live, the other answering what an ended one answers. On MongoDB the one kept is
//   the newer by (creation time, then id), the order every creation's cap agrees on
//   (src/store/README.md, "Caps"): each creation's cap used to count the other's new credential
//   among the user's others and end it, so both ended, both logins having been answered with a
//   credential already ended. Every other round holds both inserts until both are acknowledged
//   (each cap then reads the other's credential: the race at its closest); the rounds between
//   race as they come, where a creation's cap may also run before the other's insert: the newer
//   stays then too, and the older may stay beside it (one more than the cap), ended by the next
//   round;
// - with the instances' clocks 2 s apart, a credential made on the instance behind after one made
//   on the instance ahead is the older: on MongoDB both stay (one more than the cap) until the
//   user's next credential of that kind; the embedded store ends the other one (exactly the cap).
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import type { Clock } from "../../src/core/clock.js";
import { hashSecret } from "../../src/core/secrets.js";
import { jwtApi } from "../jwt/api.js";
import { sessionApi } from "../session/api.js";
import { bearer } from "../support/clients.js";
import { expectCode, expectOk } from "../support/api.js";
import { storesUnderTest, testClientId, type StoreKind, type TestServer } from "../support/server.js";
import { createJwtUser, jwtLogin, password, signUp, uniqueEmail } from "../support/users.js";
import { userTokenApi } from "../user-token/api.js";
import { insertsHeldTogether, startServerPair, type ServerPair } from "./support.js";

const ROUNDS = 20;
const client = { clientId: testClientId };
const caps = { TESSERA_MAX_SESSIONS_PER_USER: "1", TESSERA_MAX_JWT_REFRESH_TOKENS_PER_USER: "1", TESSERA_MAX_USER_TOKENS_PER_USER: "1" };

/** A credential as the store was given it: its id and creation time (ms). */
interface Made {
  id: string;
  at: number;
}

/** The newest of `credentials` by (creation time, then id). */
function newest(credentials: readonly Made[]): Made {
  return credentials.reduce((n, c) => (c.at > n.at || (c.at === n.at && c.id > n.id) ? c : n));
}

/** What the stores of two instances were given to create, by what names each credential. */
interface Records {
  sessions: Map<string, Made>;
  refreshTokens: Map<string, Made>;
  userTokens: Map<string, Made>;
}

/** Records what `servers` create from now on by `target(server)[method]`, by the name `of` gives its first argument. */
function recordMade(servers: readonly TestServer[], target: (server: TestServer) => object, method: string, of: (arg: any) => [name: string, made: Made]): Map<string, Made> {
  const made = new Map<string, Made>();
  for (const server of servers) {
    const object = target(server) as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const original = object[method]!;
    object[method] = (...args: unknown[]) => {
      const [name, credential] = of(args[0]);
      made.set(name, credential);
      return original.apply(object, args);
    };
  }
  return made;
}

/** Starts two instances on one store, capped at 1, recording what they create. */
async function cappedPair(store: StoreKind, clocks?: readonly [Clock, Clock]): Promise<{ pair: ServerPair; records: Records }> {
  const env = {
    ...caps,
    // Without login protection: the rounds' logins of one user would wait for attempt slots.
    TESSERA_LOGIN_PROTECTION: "false",
    // Bounded by 10 s rather than 2 s: on a loaded machine FerretDB can be slow, and the cases
    // are about which credentials end, not how fast.
    ...(store === "mongo" && { TESSERA_STORE_TIMEOUT_MS: "10000" }),
  };
  const pair = await startServerPair(store, env, clocks);
  const servers = [pair.a, pair.b];
  const records = {
    sessions: recordMade(servers, (s) => s.tessera.store.sessions, "createThenSync", (s: { id: string; createdAt: Date }) => [s.id, { id: s.id, at: s.createdAt.getTime() }]),
    refreshTokens: recordMade(servers, (s) => s.tessera.store.jwtRefreshTokens, "create", (t: { jti: string; issuedAt: Date }) => [t.jti, { id: t.jti, at: t.issuedAt.getTime() }]),
    userTokens: recordMade(servers, (s) => s.tessera.store.userTokens, "createThenSync", (t: { id: string; hash: string; createdAt: Date }) => [t.hash, { id: t.id, at: t.createdAt.getTime() }]),
  };
  return { pair, records };
}

/** One user's credentials of a capped kind, made and checked through the API of either instance. */
interface Credentials {
  /** Makes one on `server`; answers its secret (an access token, a refresh token, a user token). */
  create(server: TestServer): Promise<string>;
  /** Whether it still works; when not, checks the answer is an ended one's. */
  live(secret: string): Promise<boolean>;
  /** Its id and creation time, as the store was given them. */
  made(secret: string): Made;
  close(): void;
}

interface Kind {
  name: string;
  /** The collection of the credential's document on MongoDB. */
  collection: string;
  /** Makes a user of `pair`'s. */
  credentials(pair: ServerPair, records: Records): Promise<Credentials>;
}

const kinds: Kind[] = [
  {
    name: "sessions (POST /session; GET /session 200 or 401 SESSION_ENDED)",
    collection: "sessions",
    credentials: async (pair, records) => {
      const email = uniqueEmail("cap-race");
      await signUp(pair.a, email);
      const apis = new Map([
        [pair.a, sessionApi("rest", pair.a.url)],
        [pair.b, sessionApi("connect", pair.b.url)],
      ]);
      return {
        create: async (server) => expectOk(await apis.get(server)!.createSession({ account_type: "traditional", email, password }, client)).access_token,
        live: async (access) => {
          const answer = await apis.get(pair.a)!.getSession({ ...client, access });
          if (answer.code === "ok") return true;
          expectCode(answer, "unauthenticated", "the session has ended", "SESSION_ENDED");
          return false;
        },
        made: (access) => records.sessions.get(decodeJwt(access).sid as string)!,
        close: () => apis.forEach((api) => api.close()),
      };
    },
  },
  {
    name: "seed 004 refresh tokens (GET /jwt/refresh_token; GET /jwt/token 200 or 401 TOKEN_REVOKED)",
    collection: "jwt_refresh_tokens",
    credentials: async (pair, records) => {
      const access = await jwtLogin(pair.a, await createJwtUser(pair.a));
      const apis = new Map([
        [pair.a, jwtApi("rest", pair.a.url)],
        [pair.b, jwtApi("grpc", pair.b.url)],
      ]);
      return {
        create: async (server) => expectOk(await apis.get(server)!.getRefreshToken({}, bearer(access))).text,
        live: async (token) => {
          const answer = await apis.get(pair.a)!.getToken({ user: token });
          if (answer.code === "ok") return true;
          expectCode(answer, "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");
          return false;
        },
        made: (token) => records.refreshTokens.get(decodeJwt(token).jti!)!,
        close: () => apis.forEach((api) => api.close()),
      };
    },
  },
  {
    name: "user tokens (POST /auth/login; POST /auth/bump 200 or 401 TOKEN_REVOKED)",
    collection: "user_tokens",
    credentials: async (pair, records) => {
      const user = await signUp(pair.a);
      const basic = { authorization: `Basic ${Buffer.from(`${user.login}:${password}`).toString("base64")}` };
      const apis = new Map([
        [pair.a, userTokenApi("rest", pair.a.url)],
        [pair.b, userTokenApi("connect", pair.b.url)],
      ]);
      return {
        create: async (server) => expectOk(await apis.get(server)!.login(undefined, basic)).token,
        live: async (secret) => {
          const answer = await apis.get(pair.a)!.bump(bearer(secret));
          if (answer.code === "ok") return true;
          expectCode(answer, "unauthenticated", "user token is disabled", "TOKEN_REVOKED");
          return false;
        },
        made: (secret) => records.userTokens.get(hashSecret(secret))!,
        close: () => apis.forEach((api) => api.close()),
      };
    },
  },
];

for (const store of storesUnderTest()) {
  describe(`caps at 1 with creations racing on two instances sharing one store, on ${store}`, function () {
    this.timeout(120_000);
    let pair: ServerPair;
    let records: Records;
    before(async () => ({ pair, records } = await cappedPair(store)));
    after(async () => {
      await pair?.close();
    });

    for (const kind of kinds) {
      it(`${kind.name}: ${ROUNDS} times two at once, one on each instance: exactly one of the two stays${store === "mongo" ? ", the newer (every other round: both inserted before either cap reads; between them, the older may stay too)" : ""}; the round before has ended`, async () => {
        const credentials = await kind.credentials(pair, records);
        try {
          let before: string[] = [];
          for (let round = 0; round < ROUNDS; round++) {
            const closest = store === "mongo" && round % 2 === 0;
            const release = closest ? insertsHeldTogether(kind.collection, 2) : undefined;
            let secrets: string[];
            try {
              secrets = await Promise.all([pair.a, pair.b].map((server) => credentials.create(server)));
            } finally {
              release?.();
            }
            const live = await Promise.all(secrets.map((secret) => credentials.live(secret)));
            const made = secrets.map((secret) => credentials.made(secret));
            const kept = made.filter((_, i) => live[i]);
            const shown = `round ${round}: ${JSON.stringify(made)} live ${JSON.stringify(live)}`;
            if (store === "sqlite" || closest) assert.equal(kept.length, 1, `exactly one stays: ${shown}`);
            if (store === "mongo") assert.ok(kept.includes(newest(made)), `the newer stays: ${shown}`);
            for (const secret of before) assert.equal(await credentials.live(secret), false, `round ${round - 1}'s have ended`);
            before = secrets;
          }
        } finally {
          credentials.close();
        }
      });
    }
  });

  describe(`caps at 1 on two instances sharing one store whose clocks are 2 s apart, on ${store}`, function () {
    this.timeout(60_000);
    let pair: ServerPair;
    let records: Records;
    // a is behind: what it makes is older than what b made a moment before.
    const behind: Clock = { now: () => new Date(Date.now() - 2_000) };
    const ahead: Clock = { now: () => new Date() };
    before(async () => ({ pair, records } = await cappedPair(store, [behind, ahead])));
    after(async () => {
      await pair?.close();
    });

    for (const kind of kinds) {
      it(`${kind.name}: one made on the instance behind after one made on the instance ahead ${store === "mongo" ? "stays beside it (one more than the cap)" : "ends it (exactly the cap)"}; the next made ahead ends ${store === "mongo" ? "both" : "it"}`, async () => {
        const credentials = await kind.credentials(pair, records);
        try {
          const first = await credentials.create(pair.b);
          const second = await credentials.create(pair.a);
          assert.equal(newest([credentials.made(first), credentials.made(second)]), credentials.made(first), "the first is the newer by the instances' clocks");
          assert.deepEqual(await Promise.all([first, second].map((s) => credentials.live(s))), [store === "mongo", true]);
          const third = await credentials.create(pair.b);
          assert.deepEqual(await Promise.all([first, second, third].map((s) => credentials.live(s))), [false, false, true]);
        } finally {
          credentials.close();
        }
      });
    }
  });
}
