// A steady mixed load against every service, with a ledger of what the server acknowledged:
// sign-ups, sessions (create, refresh, get, end), API tokens (create, authenticate, revoke), user
// tokens (login, logout), JWT users and tokens (create, login, check). Every answer is judged:
// success, UNAVAILABLE/503, or a failure (anything else, a transport error, a hang). Afterwards
// `verifyLedger` checks that every acknowledged write is still there, through the store ports and
// the API.
import http from "node:http";
import { randomBytes } from "node:crypto";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { decodeJwt } from "jose";
import { ApiTokenService } from "../../gen/tessera/apitoken/v1/api_token_pb.js";
import { SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import { hashSecret } from "../../src/core/secrets.js";
import type { Store } from "../../src/store/ports.js";
import { basic, bearer, GrpcJsClient, type GrpcResult } from "../support/clients.js";
import { password } from "../support/users.js";
import { faultAdminToken, faultClientId, httpRequest, restVerdict, type HttpAnswer, type Tally, type Verdict } from "./support.js";
import { loginKey } from "../../src/core/login-name.js";


interface User { email: string }
interface Session { email: string; sid: string; access: string; refresh: string; busy: boolean; tainted: boolean; ended: boolean }
interface ApiToken { accountId: string; token: string; link?: string; busy: boolean; tainted: boolean; revoked: boolean }
interface UserToken { email: string; token: string; busy: boolean; tainted: boolean; loggedOut: boolean }
interface JwtUser { user: string }
interface JwtToken { user: string; token: string }

/** What the server acknowledged with success. */
export interface Ledger {
  users: User[];
  sessions: Session[];
  apiTokens: ApiToken[];
  userTokens: UserToken[];
  jwtUsers: JwtUser[];
  jwtTokens: JwtToken[];
}

export function newLedger(): Ledger {
  return { users: [], sessions: [], apiTokens: [], userTokens: [], jwtUsers: [], jwtTokens: [] };
}

const pick = <T>(items: T[], ok: (t: T) => boolean): T | undefined => {
  // A few random probes, then a scan from a random start: cheap and fair enough.
  if (items.length === 0) return undefined;
  const start = Math.floor(Math.random() * items.length);
  for (let i = 0; i < items.length; i++) {
    const t = items[(start + i) % items.length];
    if (ok(t)) return t;
  }
  return undefined;
};

const grpcTimeout = (p: Promise<GrpcResult>, ms: number): Promise<GrpcResult | "timeout"> =>
  Promise.race([p, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), ms).unref())]);

export interface MixedLoad {
  readonly ledger: Ledger;
  /** Runs `concurrency` workers until `stop()`; resolves when they have all finished. */
  run(concurrency: number): Promise<void>;
  stop(): void;
  close(): void;
}

export function mixedLoad(baseUrl: string, tally: Tally, opts: { timeoutMs?: number } = {}): MixedLoad {
  const timeoutMs = opts.timeoutMs ?? 10000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const sessionsGrpc = new GrpcJsClient(SessionService, baseUrl);
  const tokensGrpc = new GrpcJsClient(ApiTokenService, baseUrl);
  const ledger = newLedger();
  let stopping = false;

  const rest = async (op: string, o: Parameters<typeof httpRequest>[1], okStatus?: number): Promise<{ verdict: Verdict; res?: HttpAnswer }> => {
    try {
      const res = await httpRequest(baseUrl, { agent, timeoutMs, ...o });
      const { verdict, detail } = restVerdict(res, okStatus);
      tally.record(op, verdict, detail);
      return { verdict, res };
    } catch (e) {
      tally.record(op, "failure", e instanceof Error ? e.message : String(e));
      return { verdict: "failure" };
    }
  };

  const grpc = async (op: string, call: Promise<GrpcResult>): Promise<{ verdict: Verdict; message?: any }> => {
    const r = await grpcTimeout(call, timeoutMs);
    if (r === "timeout") return { verdict: tally.record(op, "failure", "no answer in time") };
    if (r.message) return { verdict: tally.record(op, "ok"), message: r.message };
    const err = r.error!;
    return { verdict: tally.record(op, err.code === GrpcStatus.UNAVAILABLE ? "unavailable" : "failure", `${GrpcStatus[err.code]} ${err.details}`) };
  };

  const client = { "x-koms-clientid": faultClientId };
  const admin = bearer(faultAdminToken);

  const ops: { weight: number; run: () => Promise<void> }[] = [
    { weight: 6, run: createUser },
    { weight: 6, run: createSession },
    { weight: 8, run: refreshSession },
    { weight: 6, run: () => getSession("rest") },
    { weight: 6, run: () => getSession("grpc") },
    { weight: 2, run: endSession },
    { weight: 5, run: createApiToken },
    { weight: 6, run: () => authenticate("rest") },
    { weight: 6, run: () => authenticate("grpc") },
    { weight: 3, run: revokeApiToken },
    { weight: 5, run: userTokenLogin },
    { weight: 3, run: userTokenLogout },
    { weight: 3, run: createJwtUser },
    { weight: 5, run: jwtToken },
    { weight: 8, run: jwtCheck },
  ];
  const totalWeight = ops.reduce((n, o) => n + o.weight, 0);

  async function createUser(): Promise<void> {
    const email = `fault-${randomBytes(6).toString("hex")}@example.com`;
    const { verdict } = await rest("user.create", { method: "POST", path: "/user", headers: client, json: { email, password } });
    if (verdict === "ok") ledger.users.push({ email });
  }

  async function createSession(): Promise<void> {
    const user = pick(ledger.users, () => true);
    if (!user) return createUser();
    const { verdict, res } = await rest("session.create", { method: "POST", path: "/session", headers: client, json: { account_type: "traditional", email: user.email, password } });
    if (verdict !== "ok") return;
    const access = res!.body.access_token as string;
    ledger.sessions.push({ email: user.email, sid: String(decodeJwt(access).sid), access, refresh: res!.body.refresh_token, busy: false, tainted: false, ended: false });
  }

  const liveSession = () => pick(ledger.sessions, (s) => !s.busy && !s.tainted && !s.ended);

  async function refreshSession(): Promise<void> {
    const s = liveSession();
    if (!s) return createSession();
    s.busy = true;
    const { verdict, res } = await rest("session.refresh", { method: "PUT", path: "/session", headers: { ...client, ...bearer(s.access) }, json: { refresh_token: s.refresh } });
    if (verdict === "ok") {
      s.access = res!.body.access_token;
      s.refresh = res!.body.refresh_token;
    } else s.tainted = true; // the rotation may or may not have happened: no longer predictable
    s.busy = false;
  }

  async function getSession(via: "rest" | "grpc"): Promise<void> {
    const s = liveSession();
    if (!s) return createSession();
    s.busy = true;
    const headers = { ...client, ...bearer(s.access) };
    if (via === "rest") await rest("session.get (REST)", { path: "/session", headers });
    else await grpc("session.get (gRPC)", sessionsGrpc.call("GetSession", {}, headers));
    s.busy = false;
  }

  async function endSession(): Promise<void> {
    const s = liveSession();
    if (!s) return createSession();
    s.busy = true;
    const { verdict } = await rest("session.delete", { method: "DELETE", path: "/session", headers: { ...client, ...bearer(s.access) } });
    if (verdict === "ok") s.ended = true;
    else s.tainted = true;
    s.busy = false;
  }

  async function createApiToken(): Promise<void> {
    const accountId = `acct-${randomBytes(4).toString("hex")}`;
    const { verdict, res } = await rest("apitoken.create", { method: "POST", path: "/v1/frontend/auth", headers: admin, json: { account_id: accountId, description: "fault test" } });
    if (verdict === "ok") ledger.apiTokens.push({ accountId, token: res!.body.token, busy: false, tainted: false, revoked: false });
  }

  const liveApiToken = () => pick(ledger.apiTokens, (t) => !t.busy && !t.tainted && !t.revoked);

  async function authenticate(via: "rest" | "grpc"): Promise<void> {
    const t = liveApiToken();
    if (!t) return createApiToken();
    t.busy = true;
    const headers = bearer(t.token);
    if (via === "rest") {
      const { verdict, res } = await rest("apitoken.authenticate (REST)", { path: "/v1/api/auth", headers });
      if (verdict === "ok") t.link = res!.body.token_link;
    } else {
      const { verdict, message } = await grpc("apitoken.authenticate (gRPC)", tokensGrpc.call("Authenticate", {}, headers));
      if (verdict === "ok") t.link = message.tokenLink;
    }
    t.busy = false;
  }

  async function revokeApiToken(): Promise<void> {
    const t = pick(ledger.apiTokens, (x) => !x.busy && !x.tainted && !x.revoked && x.link !== undefined);
    if (!t) return authenticate("rest");
    t.busy = true;
    const { verdict } = await rest("apitoken.revoke", { method: "DELETE", path: `/v1/frontend/auth/${t.accountId}`, headers: admin, json: { token_link: t.link } });
    if (verdict === "ok") t.revoked = true;
    else t.tainted = true;
    t.busy = false;
  }

  async function userTokenLogin(): Promise<void> {
    const user = pick(ledger.users, () => true);
    if (!user) return createUser();
    const { verdict, res } = await rest("usertoken.login", { method: "POST", path: "/auth/login", headers: basic(user.email, password) });
    if (verdict === "ok") ledger.userTokens.push({ email: user.email, token: res!.body.token, busy: false, tainted: false, loggedOut: false });
  }

  async function userTokenLogout(): Promise<void> {
    const t = pick(ledger.userTokens, (x) => !x.busy && !x.tainted && !x.loggedOut);
    if (!t) return userTokenLogin();
    t.busy = true;
    const { verdict } = await rest("usertoken.logout", { method: "POST", path: "/auth/logout", headers: bearer(t.token) });
    if (verdict === "ok") t.loggedOut = true;
    else t.tainted = true;
    t.busy = false;
  }

  async function createJwtUser(): Promise<void> {
    const user = `jwt-${randomBytes(6).toString("hex")}`;
    const { verdict } = await rest("jwt.user.create", { method: "POST", path: "/jwt/user", json: { user, pass: password } });
    if (verdict === "ok") ledger.jwtUsers.push({ user });
  }

  async function jwtToken(): Promise<void> {
    const u = pick(ledger.jwtUsers, () => true);
    if (!u) return createJwtUser();
    const q = new URLSearchParams({ user: u.user, pass: password });
    const { verdict, res } = await rest("jwt.token", { path: `/jwt/token?${q}` });
    if (verdict === "ok") ledger.jwtTokens.push({ user: u.user, token: res!.text });
  }

  async function jwtCheck(): Promise<void> {
    const t = pick(ledger.jwtTokens, () => true);
    if (!t) return jwtToken();
    await rest("jwt.check", { path: "/jwt/check", headers: bearer(t.token) });
  }

  const worker = async () => {
    while (!stopping) {
      let r = Math.random() * totalWeight;
      const op = ops.find((o) => (r -= o.weight) < 0) ?? ops[0];
      await op.run();
    }
  };

  return {
    ledger,
    async run(concurrency) {
      await Promise.all(Array.from({ length: concurrency }, worker));
    },
    stop() {
      stopping = true;
    },
    close() {
      sessionsGrpc.close();
      tokensGrpc.close();
      agent.destroy();
    },
  };
}

/**
 * Checks every acknowledged write: each record exists in the store, and each one whose later
 * operations were all answered (none left in doubt by a 503) is in exactly the state the
 * acknowledgements say, through the API as well. Returns the problems found (empty: all there).
 */
export async function verifyLedger(baseUrl: string, store: Store, ledger: Ledger): Promise<{ problems: string[]; checked: Record<string, number> }> {
  const problems: string[] = [];
  const checked: Record<string, number> = {};
  const count = (k: string) => (checked[k] = (checked[k] ?? 0) + 1);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const call = (o: Parameters<typeof httpRequest>[1]) => httpRequest(baseUrl, { agent, timeoutMs: 10000, ...o });
  const client = { "x-koms-clientid": faultClientId };
  // Bounded parallelism: thousands of checks, a small machine.
  const all = async <T>(items: T[], check: (t: T) => Promise<void>) => {
    let i = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (i < items.length) await check(items[i++]);
    }));
  };
  try {
    await all(ledger.users, async (u) => {
      count("users");
      if (!(await store.users.findByLogin(u.email, loginKey(u.email)))) problems.push(`user ${u.email}: acknowledged sign-up missing`);
    });
    // Logging in again through the API: a sample (each login is an argon2 verification).
    await all(ledger.users.slice(0, 25), async (u) => {
      count("user logins (API)");
      const res = await call({ method: "POST", path: "/session", headers: client, json: { account_type: "traditional", email: u.email, password } });
      if (res.status !== 200) problems.push(`user ${u.email}: login after the outage answered ${res.status} ${res.text.slice(0, 100)}`);
    });
    await all(ledger.sessions, async (s) => {
      count("sessions");
      const record = await store.sessions.findById(s.sid);
      if (!record) return void problems.push(`session ${s.sid}: acknowledged session missing`);
      if (s.tainted) return;
      const res = await call({ path: "/session", headers: { ...client, ...bearer(s.access) } });
      if (s.ended) {
        count("session ends");
        if (!record.endedAt) problems.push(`session ${s.sid}: acknowledged end not stored`);
        if (res.status !== 401) problems.push(`session ${s.sid}: ended session answered ${res.status}`);
        return;
      }
      if (record.accessJti !== decodeJwt(s.access).jti) problems.push(`session ${s.sid}: acknowledged refresh lost (stored jti differs)`);
      const refresh = await store.refreshTokens.findByHash(hashSecret(s.refresh));
      if (!refresh || refresh.spentAt) problems.push(`session ${s.sid}: latest acknowledged refresh token ${refresh ? "spent" : "missing"}`);
      if (res.status !== 200) problems.push(`session ${s.sid}: GET /session answered ${res.status} ${res.text.slice(0, 100)}`);
    });
    await all(ledger.apiTokens, async (t) => {
      count("api tokens");
      const record = await store.apiTokens.findByHash(hashSecret(t.token));
      if (!record) return void problems.push(`api token of ${t.accountId}: acknowledged token missing`);
      if (t.tainted) return;
      const res = await call({ path: "/v1/api/auth", headers: bearer(t.token) });
      if (t.revoked) {
        count("api token revocations");
        if (!record.revokedAt) problems.push(`api token ${record.link}: acknowledged revocation not stored`);
        if (res.status !== 401) problems.push(`api token ${record.link}: revoked token answered ${res.status}`);
      } else if (res.status !== 200) problems.push(`api token ${record.link}: authenticate answered ${res.status} ${res.text.slice(0, 100)}`);
    });
    await all(ledger.userTokens, async (t) => {
      count("user tokens");
      const record = await store.userTokens.findByHashWithUser(hashSecret(t.token)).then((f) => f?.token ?? null);
      if (!record) return void problems.push(`user token of ${t.email}: acknowledged token missing`);
      if (t.tainted) return;
      if (t.loggedOut) {
        count("user token logouts");
        if (record.enabled) problems.push(`user token ${record.id}: acknowledged logout not stored`);
        return;
      }
      if (!record.enabled) problems.push(`user token ${record.id}: disabled without an acknowledged logout`);
      const res = await call({ method: "POST", path: "/auth/bump", headers: bearer(t.token) });
      if (res.status !== 200) problems.push(`user token ${record.id}: bump answered ${res.status} ${res.text.slice(0, 100)}`);
    });
    await all(ledger.jwtUsers, async (u) => {
      count("jwt users");
      if (!(await store.users.findByLogin(u.user, loginKey(u.user)))) problems.push(`jwt user ${u.user}: acknowledged user missing`);
    });
    await all(ledger.jwtTokens, async (t) => {
      count("jwt tokens");
      const res = await call({ path: "/jwt/check", headers: bearer(t.token) });
      if (res.status !== 200) problems.push(`jwt token of ${t.user}: check answered ${res.status} ${res.text.slice(0, 100)}`);
    });
  } finally {
    agent.destroy();
  }
  return { problems, checked };
}
