// The REST wire scenario: a fixed sequence of requests over every documented route of the five
// seed APIs and the key service, successes and documented errors, against real servers on a
// frozen clock. It uses nothing but HTTP and startTestServer, so it keeps working, unchanged,
// when the protos, the generated code or the services are rewritten: any difference in what
// it records is a change of the wire.
import { readFileSync } from "node:fs";
import { basic, bearer } from "../support/clients.js";
import { multipartBody } from "../jwt/api.js";
import { startTestServer, testAdminToken, testClientId, otherClientId, type StoreKind, type TestServer } from "../support/server.js";
import { Recorder, type Recording, type WireAnswer, type WireRequest } from "./recorder.js";

/** A clock that moves only when told (structurally the server's Clock). */
class FrozenClock {
  constructor(private t: number) {}
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** Where the servers' clocks start: milliseconds not zero, so their rendering shows. */
export const frozenAt = Date.parse("2026-05-01T09:30:00.250Z");

const packageVersion = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** Environment of each server, beyond startTestServer's defaults. */
export const serverEnv: Record<string, Record<string, string>> = {
  main: { TESSERA_CORS_ORIGINS: "https://app.example" },
  // Seed 004 at `/` (which needs the Session API off), signed with HS256.
  jwtAtRoot: {
    TESSERA_SESSION_API: "false",
    TESSERA_JWT_BASE_PATH: "/",
    TESSERA_JWT_ALG: "HS256",
    TESSERA_JWT_SECRET: "wire-scenario-hs256-test-secret-0123456789",
  },
};

const password = "correct horse battery staple";
const newPassword = "tr0ubador & a second staple";
const allowedOrigin = "https://app.example";

const cid = { "x-koms-clientid": testClientId };
const admin = bearer(testAdminToken);

/** A request with a JSON body. */
function json(method: string, path: string, value: unknown, headers: Record<string, string> = {}): WireRequest {
  return { method, path, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(value) };
}

/** A request with a form-encoded body (seed 004). */
function form(method: string, path: string, args: Record<string, string>, headers: Record<string, string> = {}): WireRequest {
  return { method, path, headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body: new URLSearchParams(args).toString() };
}

/** A request with a multipart/form-data body of text fields (seed 004), as `curl -F` sends it. */
function multipart(method: string, path: string, args: Record<string, string>, headers: Record<string, string> = {}): WireRequest {
  const { contentType, body } = multipartBody(args, "b0undary");
  return { method, path, headers: { "content-type": contentType, ...headers }, body };
}

/** A request with its arguments in the query string. */
function query(method: string, path: string, args: Record<string, string>, headers: Record<string, string> = {}): WireRequest {
  return { method, path: `${path}?${new URLSearchParams(args).toString()}`, headers };
}

function plain(method: string, path: string, headers: Record<string, string> = {}): WireRequest {
  return { method, path, headers };
}

function expectStatus(a: WireAnswer, status: number, what: string): void {
  // The scenario needs some answers to go on (a token to use next); a different status is a
  // wire change the comparison will show, but the scenario cannot continue without the value.
  if (a.status !== status) throw new Error(`${what}: expected ${status}, got ${a.status} ${a.text}`);
}

/** Starts the servers on `store`, runs the scenario, stops them, returns the recording. */
export async function recordScenario(store: StoreKind): Promise<Recording> {
  const clocks = { main: new FrozenClock(frozenAt), jwtAtRoot: new FrozenClock(frozenAt) };
  const servers: Record<string, TestServer> = {};
  try {
    for (const name of Object.keys(serverEnv) as (keyof typeof clocks)[]) {
      servers[name] = await startTestServer({ store, clock: clocks[name], env: serverEnv[name] });
    }
    const urls = Object.fromEntries(Object.entries(servers).map(([k, s]) => [k, s.url]));
    const rec = new Recorder(urls, serverEnv, [[JSON.stringify(packageVersion), '"<package version>"']]);
    try {
      await mainScenario(rec, clocks.main);
      await jwtAtRootScenario(rec, clocks.jwtAtRoot);
    } catch (e) {
      // What was recorded up to here still shows where the wire changed.
      return { ...rec.recording(), aborted: e instanceof Error ? e.message : String(e) };
    }
    return rec.recording();
  } finally {
    for (const s of Object.values(servers)) await s.close();
  }
}

async function mainScenario(rec: Recorder, clock: FrozenClock): Promise<void> {
  const x = (step: string, req: WireRequest) => rec.exchange(step, "main", req);

  // ---- probes and the transcoder's own answers ----
  await x("GET /healthz: serving", plain("GET", "/healthz"));
  await x("HEAD /healthz: headers only", plain("HEAD", "/healthz"));
  await x("GET /readyz: the store answers", plain("GET", "/readyz"));
  await x("POST /healthz: 405 with Allow", plain("POST", "/healthz"));
  await x("GET /: no route, 404", plain("GET", "/"));
  await x("GET /nope: no route, 404", plain("GET", "/nope"));

  // ---- seed 000: Session API ----
  const ada = "ada@example.com";
  await x("000 POST /user: created, 201", json("POST", "/user", { email: ada, password }, cid));
  await x("000 POST /user: the email exists, 409", json("POST", "/user", { email: ada, password }, cid));
  await x("000 POST /user: the email exists in another case, 409", json("POST", "/user", { email: " Ada@Example.COM", password }, cid));
  await x("000 POST /user: invalid email, 400", json("POST", "/user", { email: "not-an-email", password }, cid));
  await x("000 POST /user: too short a password, 400", json("POST", "/user", { email: "bob@example.com", password: "short" }, cid));
  await x("000 POST /user: a common password, 400", json("POST", "/user", { email: "bob@example.com", password: "password123" }, cid));
  await x("000 POST /user: no client id, 401", json("POST", "/user", { email: "bob@example.com", password }));
  await x("000 POST /user: unknown client id, 401", json("POST", "/user", { email: "bob@example.com", password }, { "x-koms-clientid": "nobody" }));
  await x("000 POST /user: text/plain body, 415", { method: "POST", path: "/user", headers: { ...cid, "content-type": "text/plain" }, body: "hello" });
  await x("000 POST /user: invalid JSON, 400", { method: "POST", path: "/user", headers: { ...cid, "content-type": "application/json" }, body: '{"email":' });
  await x("000 POST /user: a number for a string, 400", json("POST", "/user", { email: 5, password }, cid));
  await x("000 POST /user: a query parameter with a body rule, 400", json("POST", "/user?email=bob@example.com", { password }, cid));
  await x("000 POST /user: gzip content-encoding", { method: "POST", path: "/user", headers: { ...cid, "content-type": "application/json", "content-encoding": "gzip" }, body: "{}" });
  const big = JSON.stringify({ email: "big@example.com", password: "p".repeat(70_000) });
  await x("000 POST /user: Content-Length over the limit, 413", { method: "POST", path: "/user", headers: { ...cid, "content-type": "application/json" }, body: big });
  await x("000 POST /user: chunked body over the limit, 413", { method: "POST", path: "/user", headers: { ...cid, "content-type": "application/json", "transfer-encoding": "chunked" }, body: big });

  const login = { account_type: "traditional", email: ada, password };
  const s1 = await x("000 POST /session: a token pair", json("POST", "/session", login, cid));
  expectStatus(s1, 200, "POST /session");
  const a1 = s1.json().access_token as string;
  const r1 = s1.json().refresh_token as string;
  await x("000 POST /session: account_type other than traditional, 400", json("POST", "/session", { ...login, account_type: "google" }, cid));
  await x("000 POST /session: wrong password, 401", json("POST", "/session", { ...login, password: newPassword }, cid));
  await x("000 POST /session: unknown email, 401 (same answer)", json("POST", "/session", { ...login, email: "nobody@example.com" }, cid));
  await x("000 POST /session: no client id, 401", json("POST", "/session", login));
  await x("000 GET /session: time left", plain("GET", "/session", { ...cid, ...bearer(a1) }));
  await x("000 HEAD /session: headers only", plain("HEAD", "/session", { ...cid, ...bearer(a1) }));
  await x("000 GET /session: no token, 401", plain("GET", "/session", cid));
  await x("000 GET /session: a garbage token, 401", plain("GET", "/session", { ...cid, ...bearer("a.b.c") }));
  await x("000 GET /session: another client's id, 401", plain("GET", "/session", { "x-koms-clientid": otherClientId, ...bearer(a1) }));
  await x("000 GET /session: no client id, 401", plain("GET", "/session", bearer(a1)));
  await x("000 GET /user: id and email", plain("GET", "/user", { ...cid, ...bearer(a1) }));
  await x("000 GET /user: no token, 401", plain("GET", "/user", cid));

  const s2 = await x("000 PUT /session: rotated pair", json("PUT", "/session", { refresh_token: r1 }, { ...cid, ...bearer(a1) }));
  expectStatus(s2, 200, "PUT /session");
  const a2 = s2.json().access_token as string;
  await x("000 GET /session: the previous access token, 401", plain("GET", "/session", { ...cid, ...bearer(a1) }));
  await x("000 PUT /session: spent refresh token within the grace window, 401", json("PUT", "/session", { refresh_token: r1 }, { ...cid, ...bearer(a2) }));
  await x("000 PUT /session: unknown refresh token, 401", json("PUT", "/session", { refresh_token: "not-a-refresh-token" }, { ...cid, ...bearer(a2) }));
  await x("000 PUT /session: no body, 400", plain("PUT", "/session", { ...cid, ...bearer(a2) }));
  await x("000 GET /session: the session lives on", plain("GET", "/session", { ...cid, ...bearer(a2) }));
  clock.advance(11_000);
  await x("000 PUT /session: spent refresh token after the grace window, 401 (ends the session)", json("PUT", "/session", { refresh_token: r1 }, { ...cid, ...bearer(a2) }));
  await x("000 GET /session: the session has ended, 401", plain("GET", "/session", { ...cid, ...bearer(a2) }));

  const s3 = await x("000 POST /session: a second session", json("POST", "/session", login, cid));
  expectStatus(s3, 200, "POST /session");
  const a3 = s3.json().access_token as string;
  const r3 = s3.json().refresh_token as string;
  await x("000 DELETE /session: ended, {}", plain("DELETE", "/session", { ...cid, ...bearer(a3) }));
  await x("000 GET /session: after DELETE, 401", plain("GET", "/session", { ...cid, ...bearer(a3) }));
  await x("000 PUT /session: after DELETE, 401", json("PUT", "/session", { refresh_token: r3 }, { ...cid, ...bearer(a3) }));
  await x("000 PATCH /session: 405 with Allow", plain("PATCH", "/session", cid));
  await x("000 DELETE /user: 405 with Allow", plain("DELETE", "/user", cid));

  const s4 = await x("000 POST /session: a session for the other seeds", json("POST", "/session", login, cid));
  expectStatus(s4, 200, "POST /session");
  const sessionAccess = s4.json().access_token as string;
  const sessionRefresh = s4.json().refresh_token as string;

  // ---- seed 001: API tokens ----
  const c1 = await x(
    "001 POST /v1/frontend/auth: a token",
    json("POST", "/v1/frontend/auth", { account_id: "acct-1", description: "CI deploys", created_by: "ops@example.com" }, admin),
  );
  expectStatus(c1, 200, "POST /v1/frontend/auth");
  const t1 = c1.json().token as string;
  // A minute later, so the list order (newest first) does not rest on a tie.
  clock.advance(60_000);
  const c2 = await x("001 POST /v1/frontend/auth: a second token", json("POST", "/v1/frontend/auth", { account_id: "acct-1", description: "Monitoring" }, admin));
  expectStatus(c2, 200, "POST /v1/frontend/auth");
  const t2 = c2.json().token as string;
  await x("001 POST /v1/frontend/auth: every field missing, 400", json("POST", "/v1/frontend/auth", {}, admin));
  await x("001 POST /v1/frontend/auth: a blank description, 400", json("POST", "/v1/frontend/auth", { account_id: "acct-1", description: "   " }, admin));
  await x("001 POST /v1/frontend/auth: account_id too long, 400", json("POST", "/v1/frontend/auth", { account_id: "a".repeat(256), description: "x" }, admin));
  await x("001 POST /v1/frontend/auth: no credential, 401", json("POST", "/v1/frontend/auth", { account_id: "acct-1", description: "x" }));
  await x("001 POST /v1/frontend/auth: wrong admin token, 401", json("POST", "/v1/frontend/auth", { account_id: "acct-1", description: "x" }, bearer("wrong-admin-token-0123456789")));
  await x("001 POST /v1/frontend/auth: an API token as admin, 401", json("POST", "/v1/frontend/auth", { account_id: "acct-1", description: "x" }, bearer(t1)));

  const auth1 = await x("001 GET /v1/api/auth: the token's account", plain("GET", "/v1/api/auth", bearer(t1)));
  expectStatus(auth1, 200, "GET /v1/api/auth");
  const link1 = auth1.json().token_link as string;
  await x("001 HEAD /v1/api/auth: 405 (its GET records last_used)", plain("HEAD", "/v1/api/auth", bearer(t1)));
  // last_used is written without being awaited: wait until the list shows it.
  for (let i = 0; i < 500; i++) {
    const list = await rec.unrecorded("main", plain("GET", "/v1/frontend/auth/acct-1", admin));
    const tokens = (list.status === 200 ? list.json().tokens : []) as { token_link: string; last_used?: string }[];
    if (tokens.some((t) => t.token_link === link1 && t.last_used !== undefined)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await x("001 GET /v1/api/auth: no token, 401", plain("GET", "/v1/api/auth"));
  await x("001 GET /v1/api/auth: a bad checksum, 401", plain("GET", "/v1/api/auth", bearer(`tsr_${"A".repeat(38)}`)));
  await x("001 GET /v1/api/auth: not a token, 401", plain("GET", "/v1/api/auth", bearer("hello")));
  await x("001 GET /v1/api/auth: the admin token, 401", plain("GET", "/v1/api/auth", admin));
  await x("001 POST /v1/api/auth: 405 with Allow", plain("POST", "/v1/api/auth", bearer(t1)));

  await x("001 GET /v1/frontend/auth/{account_id}: active tokens, newest first", plain("GET", "/v1/frontend/auth/acct-1", admin));
  await x("001 GET /v1/frontend/auth/{account_id}?state=ACTIVE", plain("GET", "/v1/frontend/auth/acct-1?state=ACTIVE", admin));
  await x("001 GET /v1/frontend/auth/{account_id}?state=bogus, 400", plain("GET", "/v1/frontend/auth/acct-1?state=bogus", admin));
  await x("001 GET /v1/frontend/auth/{account_id}?limit=5: unknown parameter, 400", plain("GET", "/v1/frontend/auth/acct-1?limit=5", admin));
  await x("001 GET /v1/frontend/auth/{account_id}: an account without tokens", plain("GET", "/v1/frontend/auth/acct%202", admin));
  await x("001 GET /v1/frontend/auth/{account_id}: a malformed escape, 400", plain("GET", "/v1/frontend/auth/%zz", admin));
  await x("001 HEAD /v1/frontend/auth/{account_id}: a malformed escape, its GET's 400 without a body", plain("HEAD", "/v1/frontend/auth/%zz", admin));
  await x("001 GET /v1/frontend/auth/{account_id}: no credential, 401", plain("GET", "/v1/frontend/auth/acct-1"));

  await x("001 PUT /v1/frontend/auth: new description", json("PUT", "/v1/frontend/auth", { token_link: link1, description: "CI deploys (prod)" }, admin));
  await x("001 PUT /v1/frontend/auth: unknown link, 404", json("PUT", "/v1/frontend/auth", { token_link: "550e8400-e29b-41d4-a716-446655440000", description: "x" }, admin));
  await x("001 PUT /v1/frontend/auth: not a UUID, 404", json("PUT", "/v1/frontend/auth", { token_link: "not-a-uuid", description: "x" }, admin));
  await x("001 PUT /v1/frontend/auth: missing fields, 400", json("PUT", "/v1/frontend/auth", {}, admin));

  await x("001 DELETE /v1/frontend/auth/{account_id}: another account's token, 404", json("DELETE", "/v1/frontend/auth/acct-2", { token_link: link1 }, admin));
  await x("001 DELETE /v1/frontend/auth/{account_id}: revoked", json("DELETE", "/v1/frontend/auth/acct-1", { token_link: link1 }, admin));
  await x("001 DELETE /v1/frontend/auth/{account_id}: already revoked, 404", json("DELETE", "/v1/frontend/auth/acct-1", { token_link: link1 }, admin));
  await x("001 DELETE /v1/frontend/auth/{account_id}: no token_link, 400", json("DELETE", "/v1/frontend/auth/acct-1", {}, admin));
  await x("001 GET /v1/api/auth: a revoked token, 401", plain("GET", "/v1/api/auth", bearer(t1)));
  await x("001 GET /v1/frontend/auth/{account_id}?state=revoked", plain("GET", "/v1/frontend/auth/acct-1?state=revoked", admin));
  await x("001 GET /v1/frontend/auth/{account_id}: active after the revocation", plain("GET", "/v1/frontend/auth/acct-1", admin));

  // ---- seed 002: user tokens ----
  const u1 = await x("002 POST /auth/login: a user token", plain("POST", "/auth/login", basic(ada, password)));
  expectStatus(u1, 200, "POST /auth/login");
  const userToken = u1.json().token as string;
  const u2 = await x(
    "002 POST /auth/login: with note and expirationTime",
    json("POST", "/auth/login", { note: "Client API Access", expirationTime: "2027-07-29T23:59:59-05:00" }, basic(ada, password)),
  );
  expectStatus(u2, 200, "POST /auth/login");
  const userToken2 = u2.json().token as string;
  await x("002 POST /auth/login: wrong password, 401", plain("POST", "/auth/login", basic(ada, newPassword)));
  await x("002 POST /auth/login: unknown login, 401 (same answer)", plain("POST", "/auth/login", basic("nobody@example.com", password)));
  await x("002 POST /auth/login: no credential, 401", plain("POST", "/auth/login"));
  await x("002 POST /auth/login: a bearer credential, 401", plain("POST", "/auth/login", bearer(userToken)));
  await x("002 POST /auth/login: malformed Basic, 400", plain("POST", "/auth/login", { authorization: "Basic !!!" }));
  await x("002 POST /auth/login: empty password, 400", plain("POST", "/auth/login", basic(ada, "")));
  await x("002 POST /auth/login: expirationTime in the past, 400", json("POST", "/auth/login", { expirationTime: "2020-01-01T00:00:00Z" }, basic(ada, password)));
  await x("002 POST /auth/login: expirationTime not RFC 3339, 400", json("POST", "/auth/login", { expirationTime: "tomorrow" }, basic(ada, password)));
  await x("002 POST /auth/login: note too long, 400", json("POST", "/auth/login", { note: "n".repeat(1025) }, basic(ada, password)));
  await x("002 GET /auth/login: 405 with Allow", plain("GET", "/auth/login", basic(ada, password)));
  clock.advance(1_000);
  await x("002 POST /auth/bump: last login time", plain("POST", "/auth/bump", bearer(userToken)));
  await x("002 POST /auth/bump: unknown token, 401", plain("POST", "/auth/bump", bearer("b94cf5c7-cddc-4610-9d4c-6b8e04088ae8")));
  await x("002 POST /auth/bump: a session access token, 401", plain("POST", "/auth/bump", { ...cid, ...bearer(sessionAccess) }));
  await x("002 POST /auth/bump: no token, 401", plain("POST", "/auth/bump"));
  await x("002 POST /auth/logout: success", plain("POST", "/auth/logout", bearer(userToken2)));
  await x("002 POST /auth/logout: again, 401", plain("POST", "/auth/logout", bearer(userToken2)));
  await x("002 POST /auth/bump: a logged-out token, 401", plain("POST", "/auth/bump", bearer(userToken2)));

  // ---- seed 004: the JWT API under /jwt ----
  await x("004 GET /jwt/version", plain("GET", "/jwt/version"));
  await x("004 HEAD /jwt/version: headers only", plain("HEAD", "/jwt/version"));
  await x("004 GET /jwt/version/: one trailing slash is ignored", plain("GET", "/jwt/version/"));
  await x("004 GET /jwt/version?x=1: unknown argument, 400", plain("GET", "/jwt/version?x=1"));
  await x("004 GET /jwt/version?_=<ms>: jQuery's cache-buster is ignored", plain("GET", "/jwt/version?_=1764720000000"));
  await x("004 POST /jwt/user?_=<ms>: `_` on a POST is unknown, 400", plain("POST", "/jwt/user?_=1764720000000"));
  await x("004 PUT /jwt/version: 405 with Allow", plain("PUT", "/jwt/version"));
  await x("004 GET /jwt/nope: no route, 404", plain("GET", "/jwt/nope"));
  await x("004 POST /jwt/user: JSON arguments, 201", json("POST", "/jwt/user", { user: "linus", pass: password }));
  await x("004 POST /jwt/user: form arguments, 201", form("POST", "/jwt/user", { user: "margaret", pass: password }));
  await x("004 POST /jwt/user: query arguments, 201", query("POST", "/jwt/user", { user: "barbara", pass: password }));
  await x("004 POST /jwt/user: the user exists, 409", json("POST", "/jwt/user", { user: "linus", pass: password }));
  await x("004 POST /jwt/user: weak password, 400", json("POST", "/jwt/user", { user: "ken", pass: "short" }));
  await x("004 POST /jwt/user: missing pass, 400", json("POST", "/jwt/user", { user: "ken" }));
  await x("004 POST /jwt/user: an unknown form argument, 400", form("POST", "/jwt/user", { user: "ken", pass: password, role: "admin" }));
  await x("004 POST /jwt/user: an unknown query argument, 400", query("POST", "/jwt/user", { user: "ken", pass: password, role: "admin" }));
  await x("004 POST /jwt/user: an unknown key in a JSON body is ignored, 201", json("POST", "/jwt/user", { user: "ken", pass: password, role: "admin" }));
  await x("004 POST /jwt/user: an argument in both query and form, 400", form("POST", "/jwt/user?user=ken", { user: "ken", pass: password }));
  await x("004 POST /jwt/user: text/plain body, 415", { method: "POST", path: "/jwt/user", headers: { "content-type": "text/plain" }, body: "user=ken" });
  const filePart = '--b0undary\r\nContent-Disposition: form-data; name="user"; filename="user.txt"\r\n\r\nken\r\n--b0undary--\r\n';
  await x("004 POST /jwt/user: a file part in a multipart body, 400", { method: "POST", path: "/jwt/user", headers: { "content-type": "multipart/form-data; boundary=b0undary" }, body: filePart });

  const j1 = await x("004 GET /jwt/token: JSON body on GET, text/plain token", json("GET", "/jwt/token", { user: "linus", pass: password }));
  expectStatus(j1, 200, "GET /jwt/token");
  const access1 = j1.text;
  await x("004 GET /jwt/token: query arguments (same second, same claims: the same token)", query("GET", "/jwt/token", { user: "linus", pass: password }));
  const j2 = await x("004 GET /jwt/token: form body on GET", form("GET", "/jwt/token", { user: "margaret", pass: password }));
  const access2 = j2.text;
  await x("004 GET /jwt/token: wrong password, 401", json("GET", "/jwt/token", { user: "linus", pass: newPassword }));
  await x("004 GET /jwt/token: unknown user, 401 (same answer)", json("GET", "/jwt/token", { user: "nobody", pass: password }));
  await x("004 GET /jwt/token: no arguments, 400", plain("GET", "/jwt/token"));
  await x("004 GET /jwt/token: query arguments again", query("GET", "/jwt/token", { user: "linus", pass: password }));
  await x("004 HEAD /jwt/token: 405 (its GET logs in)", query("HEAD", "/jwt/token", { user: "linus", pass: password }));

  await x("004 GET /jwt/check: access_token in the query, the claims", query("GET", "/jwt/check", { access_token: access1 }));
  await x("004 GET /jwt/check: bearer", plain("GET", "/jwt/check", bearer(access1)));
  await x("004 GET /jwt/check: access_token in a form body", form("GET", "/jwt/check", { access_token: access1 }));
  await x("004 GET /jwt/check: access_token in a multipart form body", multipart("GET", "/jwt/check", { access_token: access1 }));
  await x("004 GET /jwt/check: two different tokens, 400", query("GET", "/jwt/check", { access_token: access1 }, bearer(access2)));
  await x("004 GET /jwt/check: the same token twice", query("GET", "/jwt/check", { access_token: access1 }, bearer(access1)));
  await x("004 GET /jwt/check: not a token, 400", query("GET", "/jwt/check", { access_token: "garbage" }));
  await x("004 GET /jwt/check: no token, 400", plain("GET", "/jwt/check"));
  await x("004 GET /jwt/check: an Authorization header of another scheme, 400", plain("GET", "/jwt/check", { authorization: `Basic ${Buffer.from("linus:pass").toString("base64")}` }));
  const [h, p] = access1.split(".") as [string, string];
  const noneHeader = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
  await x("004 GET /jwt/check: alg none, 400", query("GET", "/jwt/check", { access_token: `${noneHeader}.${p}.` }));
  const tamperedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, "base64url").toString()), user: "margaret" })).toString("base64url");
  await x("004 GET /jwt/check: tampered payload, 400", query("GET", "/jwt/check", { access_token: `${h}.${tamperedPayload}.${access1.split(".")[2]}` }));

  await x("004 GET /jwt/pubkey: PEM text/plain", plain("GET", "/jwt/pubkey"));

  const rt1 = await x("004 GET /jwt/refresh_token: bearer, text/plain token", plain("GET", "/jwt/refresh_token", bearer(access1)));
  expectStatus(rt1, 200, "GET /jwt/refresh_token");
  const refresh1 = rt1.text;
  const rt2 = await x("004 GET /jwt/refresh_token: access_token in the query", query("GET", "/jwt/refresh_token", { access_token: access1 }));
  const refresh2 = rt2.text;
  await x("004 GET /jwt/refresh_token: no token, 401", plain("GET", "/jwt/refresh_token"));
  await x("004 GET /jwt/refresh_token: a refresh token as access token, 401", plain("GET", "/jwt/refresh_token", bearer(refresh1)));
  const jr = await x("004 GET /jwt/token: refresh login (user = refresh token)", query("GET", "/jwt/token", { user: refresh1 }));
  expectStatus(jr, 200, "GET /jwt/token refresh");
  const refreshAccess = jr.text;
  await x("004 GET /jwt/check: a refresh-derived token", plain("GET", "/jwt/check", bearer(refreshAccess)));
  await x("004 GET /jwt/check: a refresh token, 400", query("GET", "/jwt/check", { access_token: refresh1 }));
  await x("004 GET /jwt/refresh_token: refresh-derived token, 403", plain("GET", "/jwt/refresh_token", bearer(refreshAccess)));

  await x("004 GET /jwt/user: the claims", plain("GET", "/jwt/user", bearer(access1)));
  await x("004 GET /jwt/user: access_token in a JSON body", json("GET", "/jwt/user", { access_token: access1 }));
  await x("004 GET /jwt/user: no token, 204", plain("GET", "/jwt/user"));
  await x("004 GET /jwt/user: an invalid token, 204", plain("GET", "/jwt/user", bearer("a.b.c")));
  await x("004 PATCH /jwt/user: refresh-derived token, 403", json("PATCH", "/jwt/user", { pass: newPassword }, bearer(refreshAccess)));
  await x("004 PATCH /jwt/user: weak password, 400", json("PATCH", "/jwt/user", { pass: "short" }, bearer(access1)));
  await x("004 PATCH /jwt/user: missing pass, 400", json("PATCH", "/jwt/user", {}, bearer(access1)));
  await x("004 PATCH /jwt/user: no token, 401", json("PATCH", "/jwt/user", { pass: newPassword }));

  await x("004 DELETE /jwt/refresh_token: revoked, 204", json("DELETE", "/jwt/refresh_token", { refresh_token: refresh2 }, bearer(access1)));
  await x("004 DELETE /jwt/refresh_token: again, 204", form("DELETE", "/jwt/refresh_token", { refresh_token: refresh2, access_token: access1 }));
  await x("004 DELETE /jwt/refresh_token: missing refresh_token, 400", json("DELETE", "/jwt/refresh_token", {}, bearer(access1)));
  await x("004 DELETE /jwt/refresh_token: an access token, 400", json("DELETE", "/jwt/refresh_token", { refresh_token: access1 }, bearer(access1)));
  await x("004 DELETE /jwt/refresh_token: no access token, 401", json("DELETE", "/jwt/refresh_token", { refresh_token: refresh2 }));
  await x("004 GET /jwt/token: a revoked refresh token, 401", query("GET", "/jwt/token", { user: refresh2 }));

  clock.advance(1_000);
  await x("004 PATCH /jwt/user: password changed, {}", json("PATCH", "/jwt/user", { pass: newPassword }, bearer(access1)));
  await x("004 GET /jwt/token: a refresh token from before the change, 401", query("GET", "/jwt/token", { user: refresh1 }));
  await x("004 GET /jwt/token: the old password, 401", json("GET", "/jwt/token", { user: "linus", pass: password }));
  const j4 = await x("004 GET /jwt/token: the new password", json("GET", "/jwt/token", { user: "linus", pass: newPassword }));
  expectStatus(j4, 200, "GET /jwt/token");
  const access4 = j4.text;
  await x("004 DELETE /jwt/user: refresh-derived token, 403", plain("DELETE", "/jwt/user", bearer(refreshAccess)));
  await x("004 DELETE /jwt/user: no token, 401", plain("DELETE", "/jwt/user"));
  await x("004 DELETE /jwt/user: deactivated, 204", plain("DELETE", "/jwt/user", bearer(access4)));
  await x("004 GET /jwt/check: a deactivated user's token, 400", plain("GET", "/jwt/check", bearer(access4)));
  await x("004 GET /jwt/user: a deactivated user's token, 204", plain("GET", "/jwt/user", bearer(access4)));
  await x("004 GET /jwt/token: a deactivated user with the right password, 403", json("GET", "/jwt/token", { user: "linus", pass: newPassword }));

  const jm = await x("004 GET /jwt/token: margaret", query("GET", "/jwt/token", { user: "margaret", pass: password }));
  expectStatus(jm, 200, "GET /jwt/token");
  const jwtAccess = jm.text;

  // ---- key service ----
  const keys1 = await x("key GET /.well-known/jwks.json: one key", plain("GET", "/.well-known/jwks.json"));
  await x("key HEAD /.well-known/jwks.json: headers only", plain("HEAD", "/.well-known/jwks.json"));
  await x("key GET /.well-known/jwks.json: If-None-Match its ETag, 304", plain("GET", "/.well-known/jwks.json", { "if-none-match": String(keys1.headers.etag) }));
  await x("key POST /v1/admin/keys:rotate: no credential, 401", json("POST", "/v1/admin/keys:rotate", {}));
  await x("key POST /v1/admin/keys:rotate: a JWT, 401", json("POST", "/v1/admin/keys:rotate", {}, bearer(jwtAccess)));
  await x("key GET /v1/admin/keys:rotate: 405 with Allow", plain("GET", "/v1/admin/keys:rotate", admin));
  await x("key POST /v1/admin/keys:spin: unknown verb, 404", json("POST", "/v1/admin/keys:spin", {}, admin));
  await x("key POST /v1/admin/keys:rotate: the new kid", json("POST", "/v1/admin/keys:rotate", {}, admin));
  await x("key POST /v1/admin/keys:rotate: no body", plain("POST", "/v1/admin/keys:rotate", admin));
  await x("key GET /.well-known/jwks.json: current and previous keys", plain("GET", "/.well-known/jwks.json", { "if-none-match": String(keys1.headers.etag) }));
  await x("key GET /jwt/pubkey: the new current key", plain("GET", "/jwt/pubkey"));
  await x("key GET /jwt/check: a token of the previous key still checks", plain("GET", "/jwt/check", bearer(jwtAccess)));
  await x("key GET /jwt/token: signed with the new key", query("GET", "/jwt/token", { user: "margaret", pass: password }));

  // ---- seed 003: authentication tokens ----
  const grace = "grace@example.com";
  await x("003 setup: POST /user (seed 000) for a second user", json("POST", "/user", { email: grace, password }, cid));
  const g = await x("003 setup: POST /auth/login (seed 002) for the second user", plain("POST", "/auth/login", basic(grace, password)));
  expectStatus(g, 200, "POST /auth/login");
  const graceToken = g.json().token as string;

  const k1 = await x("003 GET /api/authenticationtoken: with a user token", plain("GET", "/api/authenticationtoken", bearer(userToken)));
  expectStatus(k1, 200, "GET /api/authenticationtoken");
  const authToken1 = k1.json().token as string;
  await x("003 GET /api/authenticationtoken: with a session access token and client id", plain("GET", "/api/authenticationtoken", { ...cid, ...bearer(sessionAccess) }));
  await x("003 GET /api/authenticationtoken: with a JWT", plain("GET", "/api/authenticationtoken", bearer(jwtAccess)));
  await x("003 GET /api/authenticationtoken: no credential, 401", plain("GET", "/api/authenticationtoken"));
  await x("003 GET /api/authenticationtoken: an API token, 401", plain("GET", "/api/authenticationtoken", bearer(t2)));
  await x("003 GET /api/authenticationtoken: a logged-out user token, 401", plain("GET", "/api/authenticationtoken", bearer(userToken2)));
  await x("003 POST /api/authenticationtoken: 405 with Allow", plain("POST", "/api/authenticationtoken", bearer(userToken)));

  await x("003 GET /api/authenticationtoken/{token}: the token", plain("GET", `/api/authenticationtoken/${authToken1}`, bearer(userToken)));
  await x("003 GET /api/authenticationtoken/{token}: another user's token, 404", plain("GET", `/api/authenticationtoken/${authToken1}`, bearer(graceToken)));
  await x("003 GET /api/authenticationtoken/{token}: unknown, 404", plain("GET", "/api/authenticationtoken/132427377339939930", bearer(userToken)));
  await x("003 GET /api/authenticationtoken/{token}: malformed, 400", plain("GET", "/api/authenticationtoken/not.a.token", bearer(userToken)));
  await x("003 GET /api/authenticationtoken/{token}: no credential, 401", plain("GET", `/api/authenticationtoken/${authToken1}`));

  await x("003 HEAD /api/authenticationtoken/{token}/user: 405 with Allow: GET, the token not spent", plain("HEAD", `/api/authenticationtoken/${authToken1}/user`));
  await x("003 HEAD /api/authenticationtoken/{token}/user: a malformed escape, 405 with Allow: GET all the same", plain("HEAD", "/api/authenticationtoken/%ZZ/user"));
  const e1 = await x("003 GET /api/authenticationtoken/{token}/user: the user and a session cookie", plain("GET", `/api/authenticationtoken/${authToken1}/user`));
  expectStatus(e1, 200, "exchange");
  const setCookie = e1.headers["set-cookie"]?.[0] ?? "";
  const sessionCookie = setCookie.split(";", 1)[0]!;
  await x("003 GET /api/authenticationtoken/{token}/user: already exchanged, 404", plain("GET", `/api/authenticationtoken/${authToken1}/user`));
  await x("003 GET /api/authenticationtoken/{token}: exchanged, 404", plain("GET", `/api/authenticationtoken/${authToken1}`, bearer(userToken)));
  await x("003 GET /api/authenticationtoken/{token}/user: malformed, 400", plain("GET", "/api/authenticationtoken/not.a.token/user"));
  const k3 = await x("003 GET /api/authenticationtoken: with the session cookie", plain("GET", "/api/authenticationtoken", { cookie: sessionCookie }));
  expectStatus(k3, 200, "GET /api/authenticationtoken (cookie)");
  await x("003 GET /api/authenticationtoken/{token}/user: with the same user's cookie, no new cookie", plain("GET", `/api/authenticationtoken/${k3.json().token as string}/user`, { cookie: sessionCookie }));
  await x("003 GET /api/authenticationtoken: a cookie that is no session, 401", plain("GET", "/api/authenticationtoken", { cookie: "tessera_session=nope" }));
  await x("003 GET /api/authenticationtoken: a user token as the cookie, 401", plain("GET", "/api/authenticationtoken", { cookie: `tessera_session=${userToken}` }));
  const k4 = await x("003 GET /api/authenticationtoken: a token to let expire", plain("GET", "/api/authenticationtoken", bearer(userToken)));
  const authToken4 = k4.json().token as string;
  clock.advance(59_999);
  await x("003 GET /api/authenticationtoken/{token}: 1 ms before expiry", plain("GET", `/api/authenticationtoken/${authToken4}`, bearer(userToken)));
  clock.advance(1);
  await x("003 GET /api/authenticationtoken/{token}: expired, 404", plain("GET", `/api/authenticationtoken/${authToken4}`, bearer(userToken)));
  await x("003 GET /api/authenticationtoken/{token}/user: expired, 404", plain("GET", `/api/authenticationtoken/${authToken4}/user`));

  // ---- CORS (TESSERA_CORS_ORIGINS=https://app.example) ----
  await x(
    "cors OPTIONS /session: preflight from an allowed origin, 204",
    plain("OPTIONS", "/session", { origin: allowedOrigin, "access-control-request-method": "POST", "access-control-request-headers": "content-type, x-koms-clientid" }),
  );
  await x("cors OPTIONS /session: preflight from another origin, 403", plain("OPTIONS", "/session", { origin: "https://evil.example", "access-control-request-method": "POST" }));
  await x("cors OPTIONS /session: not a preflight, 405", plain("OPTIONS", "/session", { origin: allowedOrigin }));
  await x("cors GET /jwt/version: an allowed origin", plain("GET", "/jwt/version", { origin: allowedOrigin }));
  await x("cors GET /jwt/version: another origin", plain("GET", "/jwt/version", { origin: "https://evil.example" }));
  await x("cors POST /user: an error to an allowed origin", json("POST", "/user", { email: ada, password }, { ...cid, origin: allowedOrigin }));

  // ---- transcoder limits ----
  const many = Array.from({ length: 101 }, (_, i) => `a${i}=1`).join("&");
  await x("GET /jwt/version: more than 100 query parameters, 400", plain("GET", `/jwt/version?${many}`));
  await x("GET /v1/frontend/auth/{account_id}: a singular parameter twice, 400", plain("GET", "/v1/frontend/auth/acct-1?state=active&state=revoked", admin));

  // ---- login protection (last: it counts failures per login and per address) ----
  const eve = "eve@example.com";
  await x("000 setup: POST /user for the lockout", json("POST", "/user", { email: eve, password }, cid));
  for (let i = 1; i <= 6; i++) {
    await x(`000 POST /session: wrong password #${i}`, json("POST", "/session", { account_type: "traditional", email: eve, password: newPassword }, cid));
  }
  await x("000 POST /session: the right password while locked out, 429", json("POST", "/session", { account_type: "traditional", email: eve, password }, cid));
  await x("002 POST /auth/login: the same login while locked out, 429", plain("POST", "/auth/login", basic(eve, password)));
  clock.advance(3_600_000);
  await x("000 POST /session: after the lockout", json("POST", "/session", { account_type: "traditional", email: eve, password }, cid));

  // ---- an hour later: expired access tokens ----
  await x("000 GET /session: an expired access token, 401", plain("GET", "/session", { ...cid, ...bearer(sessionAccess) }));
  await x("000 PUT /session: refreshed with the expired access token", json("PUT", "/session", { refresh_token: sessionRefresh }, { ...cid, ...bearer(sessionAccess) }));
  await x("004 GET /jwt/check: an expired token, 400", plain("GET", "/jwt/check", bearer(jwtAccess)));
  await x("004 GET /jwt/user: an expired token, 204", plain("GET", "/jwt/user", bearer(jwtAccess)));
  await x("004 GET /jwt/refresh_token: an expired token, 401", plain("GET", "/jwt/refresh_token", bearer(jwtAccess)));
  await x("003 GET /api/authenticationtoken: an expired JWT, 401", plain("GET", "/api/authenticationtoken", bearer(jwtAccess)));
}

async function jwtAtRootScenario(rec: Recorder, clock: FrozenClock): Promise<void> {
  const x = (step: string, req: WireRequest) => rec.exchange(step, "jwtAtRoot", req);
  await x("004@/ GET /version", plain("GET", "/version"));
  await x("004@/ POST /user: 201", json("POST", "/user", { user: "linus", pass: password }));
  const t = await x("004@/ GET /token: an HS256 token", query("GET", "/token", { user: "linus", pass: password }));
  expectStatus(t, 200, "GET /token");
  const access = t.text;
  await x("004@/ GET /check", plain("GET", "/check", bearer(access)));
  await x("004@/ GET /user: the claims", plain("GET", "/user", bearer(access)));
  await x("004@/ GET /user: no token, 204", plain("GET", "/user"));
  await x("004@/ GET /pubkey: HS256 has no public key, 404", plain("GET", "/pubkey"));
  await x("004@/ GET /refresh_token", plain("GET", "/refresh_token", bearer(access)));
  await x("key@HS256 GET /.well-known/jwks.json: no keys", plain("GET", "/.well-known/jwks.json"));
  await x("key@HS256 POST /v1/admin/keys:rotate", json("POST", "/v1/admin/keys:rotate", {}, admin));
  await x("003@HS256 GET /api/authenticationtoken: with an HS256 JWT", plain("GET", "/api/authenticationtoken", bearer(access)));
  await x("000 off: GET /session, 404", plain("GET", "/session", cid));
  await x("004@/ GET /jwt/version: not mounted there, 404", plain("GET", "/jwt/version"));
  for (let i = 1; i <= 6; i++) {
    await x(`004@/ GET /token: wrong password #${i}`, query("GET", "/token", { user: "linus", pass: newPassword }));
  }
  await x("004@/ GET /token: the right password while locked out, 429", query("GET", "/token", { user: "linus", pass: password }));
  clock.advance(3_600_000);
  await x("004@/ GET /token: after the lockout", query("GET", "/token", { user: "linus", pass: password }));
}
