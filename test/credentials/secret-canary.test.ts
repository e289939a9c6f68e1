// No secret ever reaches what Tessera writes down or exports. One server per store, at
// TESSERA_LOG_LEVEL=debug, exporting spans to a local OTLP collector, is driven through every
// API's main flows over REST, Connect, gRPC and gRPC-Web, successes and failures, with distinctive
// random secrets (passwords, the admin token, tokens that are wrong, and every token the server
// hands out). Then every sink is searched for every secret, as sent and in its obvious encodings
// (base64, base64url, percent-encoding, form-encoding, JSON-escaped):
// - the log, every line from start to graceful stop;
// - audit events, read back through the audit API;
// - exported spans (names, attributes, events, status messages: the collector's whole bodies);
// - /metrics;
// - every error answer (body, message, details, headers, gRPC trailers);
// - every answer a cache may keep (one without `no-store`): headers and body.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import { SessionService, UserService } from "../../gen/tessera/session/v1/session_pb.js";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { UserTokenService } from "../../gen/tessera/usertoken/v1/user_token_pb.js";
import { ApiTokenService } from "../../gen/tessera/apitoken/v1/api_token_pb.js";
import { ManualClock } from "../../src/core/clock.js";
import { KeySealer } from "../../src/core/key-sealing.js";
import { apiTokenApi } from "../api-token/api.js";
import { auditApi, type AuditEventJson } from "../audit/api.js";
import { authenticationTokenApi, sessionCookieOf } from "../authentication-token/api.js";
import { jwtApi } from "../jwt/api.js";
import { keyApi } from "../key/api.js";
import { sessionApi } from "../session/api.js";
import { protocols, type Outcome, type Protocol } from "../support/api.js";
import { basic, bearer, GrpcJsClient, grpcWebClient, rest, type RestResponse } from "../support/clients.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { userTokenApi } from "../user-token/api.js";
import { entryArgv } from "../support/process.js";
import { projectRoot } from "../../src/project-files.js";

/** A distinctive value no test or server would write by chance. Short: no "token-like run" mask applies. */
const canary = (kind: string) => `${kind}Cn${randomBytes(8).toString("hex")}`;
/** A password with characters that encodings change (space, &, +, !), as a user may choose. */
const canaryPassword = (kind: string) => `${kind} Cn+${randomBytes(6).toString("hex")}&!`;

/** What an answer showed: the sinks are searched in what a client received too. */
interface Seen {
  what: string;
  ok: boolean;
  cacheable: boolean;
  text: string;
}

/**
 * Every form a secret could take in a sink: as is, percent- and form-encoded, JSON-escaped, and
 * base64/base64url at each of the three alignments it can have inside a longer encoded value
 * (HTTP Basic's base64 of `login:password`): the characters that depend on the secret alone.
 */
function encodings(secret: string): string[] {
  const forms = new Set([secret, encodeURIComponent(secret), new URLSearchParams({ x: secret }).toString().slice(2), JSON.stringify(secret).slice(1, -1)]);
  const bytes = Buffer.from(secret);
  for (const shift of [0, 1, 2]) {
    const end = Math.floor((8 * (bytes.length + shift)) / 6);
    const start = Math.ceil((8 * shift) / 6);
    for (const alphabet of ["base64", "base64url"] as const) forms.add(Buffer.concat([Buffer.alloc(shift), bytes]).toString(alphabet).slice(start, end));
  }
  return [...forms];
}

const headersText = (h: Headers | undefined): string => {
  if (!h) return "";
  const lines: string[] = [];
  h.forEach((v, k) => lines.push(`${k}: ${v}`));
  for (const c of h.getSetCookie?.() ?? []) lines.push(`set-cookie: ${c}`);
  return lines.join("\n");
};

const cacheable = (h: Headers | undefined): boolean => !/\bno-store\b/.test(h?.get("cache-control") ?? "");

for (const store of storesUnderTest()) {
  describe(`secret canaries on ${store}: no secret reaches the log, audit events, spans, /metrics, errors or cacheable answers`, function () {
    this.timeout(60_000);
    let collector: http.Server;
    let endpoint: string;
    const exported: string[] = [];
    before(async () => {
      collector = http.createServer((req, res) => {
        let body = "";
        req.on("data", (c) => (body += c));
        req.on("end", () => {
          exported.push(`${req.url}\n${JSON.stringify(req.headers)}\n${body}`);
          res.writeHead(200, { "content-type": "application/json" });
          res.end("{}");
        });
      });
      await new Promise<void>((r) => collector.listen(0, "127.0.0.1", r));
      endpoint = `http://127.0.0.1:${(collector.address() as { port: number }).port}`;
    });
    after(() => new Promise<void>((r) => collector.close(() => r())));

    it("every API's flows over every protocol, then every sink searched for every secret", async () => {
      const adminToken = canary("admin");
      const keyEncryptionKey = canary("kek").repeat(2);
      const clock = new ManualClock();
      const server: TestServer = await startTestServer({
        store,
        clock,
        env: { TESSERA_ADMIN_TOKEN: adminToken, TESSERA_KEY_ENCRYPTION_KEY: keyEncryptionKey, TESSERA_LOG_LEVEL: "debug", OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: "200", TESSERA_AUDIT_REFUSALS_PER_MINUTE: "0", TESSERA_AUDIT_REFUSALS_PER_MINUTE_TOTAL: "0" },
      });
      const admin = bearer(adminToken);
      /** Every secret, by what it is. */
      const secrets = new Map<string, string>([
        ["admin token", adminToken],
        ["key encryption key", keyEncryptionKey],
      ]);
      /**
       * Secrets a caller typed into a login field. A failed login's audit event names what was
       * tried, as given (README "Audit trail": `login`; control characters replaced), so there, and
       * only there, such a value is expected: in the event's `login` field, of an audit log line
       * or a listed event.
       */
      const typedAsLogin = new Set<string>();
      const asLogin = (name: string, value: string): string => {
        typedAsLogin.add(name);
        return keep(name, value);
      };
      const keep = (name: string, value: string | undefined): string => {
        assert.ok(value, `no ${name}`);
        secrets.set(name, value);
        return value;
      };
      const seen: Seen[] = [];
      const record = (what: string, o: Outcome<unknown>): void => {
        seen.push({ what, ok: o.code === "ok", cacheable: cacheable(o.headers), text: `${JSON.stringify({ code: o.code, status: o.status, message: o.message, details: o.details, data: o.data })}\n${headersText(o.headers)}` });
      };
      /** Records every call of an API client. */
      const recorded = <T extends object>(name: string, api: T): T =>
        new Proxy(api, {
          get(target, prop, receiver) {
            const v = Reflect.get(target, prop, receiver) as unknown;
            if (typeof v !== "function" || prop === "close") return v;
            return async (...args: unknown[]) => {
              const o = (await (v as (...a: unknown[]) => Promise<Outcome<unknown>>).apply(target, args)) as Outcome<unknown>;
              record(`${name}.${String(prop)}`, o);
              return o;
            };
          },
        });
      const ok = <T>(o: Outcome<T>): T => {
        assert.equal(o.code, "ok", `expected ok, got ${o.code}: ${o.message ?? ""}`);
        return o.data as T;
      };
      /** A failure (its code is other suites' business; here what it shows is). */
      const fails = (o: Outcome<unknown>): void => assert.notEqual(o.code, "ok", `expected a failure: ${JSON.stringify(o.data)}`);
      const raw = async (method: string, path: string, opts: Parameters<typeof rest>[3] = {}): Promise<RestResponse> => {
        const r = await rest(server.url, method, path, opts);
        const grpcStatus = /grpc-status: ?(\d+)/.exec(`${headersText(r.headers)}\n${r.text}`)?.[1];
        seen.push({ what: `REST ${method} ${path.split("?")[0]!.split("/").slice(0, 3).join("/")}/...`, ok: r.status < 400 && (grpcStatus === undefined || grpcStatus === "0"), cacheable: cacheable(r.headers), text: `${r.status}\n${headersText(r.headers)}\n${r.text}` });
        return r;
      };

      try {
        for (const protocol of protocols) await drive(protocol);
        await driveGrpcWeb();
        await driveGrpcRaw();
        await driveRestOnly();
        await driveKeysAndAudit();

        // Private signing keys: every private member of every stored key (after the rotations above).
        const sealer = new KeySealer(keyEncryptionKey);
        for (const key of await server.tessera.store.keys.list()) {
          keep(`sealed private key ${key.kid}`, key.privateJwk);
          const jwk = JSON.parse(sealer.open(key.privateJwk, key.kid)) as Record<string, unknown>;
          for (const member of ["d", "p", "q", "dp", "dq", "qi", "k"]) if (typeof jwk[member] === "string") keep(`private key ${key.kid} ${member}`, jwk[member]);
          keep(`private key ${key.kid} JWK`, JSON.stringify(jwk));
        }
      } catch (e) {
        await server.close();
        throw e;
      }

      // Read the audit trail and /metrics while the server runs, then stop it (which flushes spans).
      const audit = auditApi("rest", server.url);
      const events: AuditEventJson[] = [];
      let pageToken: string | undefined;
      do {
        const page = ok(await audit.listAuditEvents({ page_size: 100, ...(pageToken && { page_token: pageToken }) }, admin));
        events.push(...page.events);
        pageToken = page.next_page_token || undefined;
      } while (pageToken);
      audit.close();
      const metrics = await rest(server.url, "GET", "/metrics");
      assert.equal(metrics.status, 200);
      await server.close();

      assert.ok(events.length > 20, `audit events recorded: ${events.length}`);
      assert.ok(server.logs.length > 50, `log lines: ${server.logs.length}`);
      assert.ok(exported.some((b) => b.includes("tessera.session.v1.SessionService/CreateSession")), "spans were exported");
      assert.ok(seen.filter((s) => !s.ok).length > 40, "failures were driven");

      /** Each sink: what it holds, each text with a label for the report (not searched: it names the request). */
      const sinks: Array<[string, Array<[string, string]>]> = [
        ["log", server.logs.map((l, i) => [`line ${i}`, l])],
        ["audit events", events.map((e) => [e.id, JSON.stringify(e)])],
        ["exported spans", exported.map((b, i) => [`export ${i}`, b])],
        ["/metrics", [["scrape", metrics.text]]],
        ["error answers", seen.filter((x) => !x.ok).map((x) => [x.what, x.text])],
        ["cacheable answers", seen.filter((x) => x.cacheable).map((x) => [x.what, x.text])],
      ];
      const leaks: string[] = [];
      for (const [name, secret] of secrets) {
        const forms = encodings(secret);
        for (const [sink, texts] of sinks) {
          for (const [label, full] of texts) {
            const text = typedAsLogin.has(name) && (sink === "audit events" || (sink === "log" && full.includes('"type":"audit"'))) ? full.replace(/"login":"(?:[^"\\]|\\.)*"/g, (field) => (field.includes(secret) ? "" : field)) : full;
            const form = forms.find((f) => text.includes(f));
            if (form !== undefined) leaks.push(`${name} (${form === secret ? "as is" : `as ${form}`}) in ${sink} (${label}): ${full.slice(0, 600)}`);
          }
        }
      }
      assert.deepEqual(leaks, [], `${leaks.length} leaks of ${secrets.size} secrets`);

      // --- the flows ---

      async function drive(protocol: Protocol): Promise<void> {
        const p = protocol;
        const clientId = { clientId: testClientId };
        // Seed 000: sign-up, login (wrong password, right one), refresh (bad, right, replayed),
        // access token (bad, right, expired), logout, the logged-out token.
        const s = recorded(`${p} session`, sessionApi(protocol, server.url));
        const email = `canary-${randomBytes(5).toString("hex")}@example.com`;
        const pw = keep(`${p} seed 000 password`, canaryPassword("pw000"));
        ok(await s.createUser({ email, password: pw }, clientId));
        fails(await s.createUser({ email, password: keep(`${p} seed 000 duplicate sign-up password`, canaryPassword("dup")) }, clientId));
        fails(await s.createSession({ account_type: "traditional", email, password: keep(`${p} seed 000 wrong password`, canaryPassword("wrong")) }, clientId));
        // A password typed into the email field.
        const misplaced = asLogin(`${p} seed 000 password in the email field`, canaryPassword("misplaced"));
        const inEmail = await s.createSession({ account_type: "traditional", email: misplaced, password: pw }, clientId);
        assert.notEqual(inEmail.code, "ok");
        fails(await s.createUser({ email: misplaced, password: pw }, clientId));
        const pair = ok(await s.createSession({ account_type: "traditional", email, password: pw }, clientId));
        keep(`${p} seed 000 access token`, pair.access_token);
        keep(`${p} seed 000 refresh token`, pair.refresh_token);
        ok(await s.getSession({ ...clientId, access: pair.access_token }));
        fails(await s.getSession({ ...clientId, access: keep(`${p} seed 000 bad access token`, canary("badaccess")) }));
        fails(await s.getSession({ clientId: keep(`${p} x-koms-clientid unknown`, canary("clientid")), access: pair.access_token }));
        fails(await s.refreshSession({ refresh_token: keep(`${p} seed 000 bad refresh token`, canary("badrefresh")) }, { ...clientId, access: pair.access_token }));
        const next = ok(await s.refreshSession({ refresh_token: pair.refresh_token }, { ...clientId, access: pair.access_token }));
        keep(`${p} seed 000 refreshed access token`, next.access_token);
        keep(`${p} seed 000 refreshed refresh token`, next.refresh_token);
        // A retry of the same refresh (answered as the first, refresh-retry.test.ts).
        await s.refreshSession({ refresh_token: pair.refresh_token }, { ...clientId, access: pair.access_token });
        ok(await s.getUser({ ...clientId, access: next.access_token }));
        const other = ok(await s.createSession({ account_type: "traditional", email, password: pw }, clientId));
        keep(`${p} seed 000 second access token`, other.access_token);
        keep(`${p} seed 000 second refresh token`, other.refresh_token);
        clock.advance(16 * 60_000); // past the 900 s access token lifetime
        fails(await s.getSession({ ...clientId, access: other.access_token }));
        const renewed = ok(await s.refreshSession({ refresh_token: other.refresh_token }, { ...clientId, access: other.access_token }));
        keep(`${p} seed 000 renewed access token`, renewed.access_token);
        keep(`${p} seed 000 renewed refresh token`, renewed.refresh_token);
        ok(await s.deleteSession({ ...clientId, access: renewed.access_token }));
        fails(await s.getSession({ ...clientId, access: renewed.access_token }));
        assert.notEqual((await s.refreshSession({ refresh_token: renewed.refresh_token }, { ...clientId, access: renewed.access_token })).code, "ok", "the refresh token of a closed session");
        s.close();

        // Seed 001: API tokens created by the admin, checked, revoked; a wrong admin token; bad tokens.
        const a = recorded(`${p} api-token`, apiTokenApi(protocol, server.url));
        const account = `acct-${randomBytes(4).toString("hex")}`;
        fails(await a.createToken({ account_id: account, description: "canary" }, bearer(keep(`${p} wrong admin token`, canary("badadmin")))));
        const apiToken = keep(`${p} seed 001 API token`, ok(await a.createToken({ account_id: account, description: "canary" }, admin)).token);
        const who = ok(await a.authenticate(bearer(apiToken)));
        fails(await a.authenticate(bearer(keep(`${p} seed 001 bad API token`, canary("badapi")))));
        ok(await a.listTokens(account, "active", admin));
        ok(await a.updateToken({ token_link: who.token_link, description: "renamed" }, admin));
        ok(await a.revokeToken(account, { token_link: who.token_link }, admin));
        fails(await a.authenticate(bearer(apiToken)));
        a.close();

        // Seed 002: HTTP Basic login (wrong password, right one), bump, logout, the revoked token.
        const u = recorded(`${p} user-token`, userTokenApi(protocol, server.url));
        fails(await u.login(undefined, basic(email, keep(`${p} seed 002 wrong password`, canaryPassword("wrong002")))));
        const userToken = keep(`${p} seed 002 user token`, ok(await u.login({ note: "canary" }, basic(email, pw))).token);
        ok(await u.bump(bearer(userToken)));
        fails(await u.bump(bearer(keep(`${p} seed 002 bad user token`, canary("baduser")))));
        fails(await u.bump({ authorization: `Token ${keep(`${p} seed 002 token under an unknown scheme`, canary("scheme"))}` }));

        // Seed 003: authentication tokens, looked up and exchanged (once, then used), the cookie,
        // made from a user token of its own (one logged out would end the cookie session with it).
        const t = recorded(`${p} authentication-token`, authenticationTokenApi(protocol, server.url));
        const browserToken = keep(`${p} seed 002 user token of the browser`, ok(await u.login({ note: "browser" }, basic(email, pw))).token);
        const handOff = keep(`${p} seed 003 authentication token`, ok(await t.createToken(bearer(browserToken))).token);
        ok(await t.getToken(handOff, bearer(browserToken)));
        const exchanged = await t.exchangeToken(handOff);
        ok(exchanged);
        const cookie = sessionCookieOf(exchanged.headers);
        if (cookie) keep(`${p} seed 003 session cookie`, cookie.value);
        fails(await t.exchangeToken(handOff));
        fails(await t.exchangeToken(keep(`${p} seed 003 bad authentication token`, canary("badhandoff"))));
        fails(await t.getToken(keep(`${p} seed 003 bad token looked up`, canary("badlookup")), bearer(userToken)));
        const expiring = keep(`${p} seed 003 expired authentication token`, ok(await t.createToken(bearer(userToken))).token);
        clock.advance(61_000);
        assert.notEqual((await t.exchangeToken(expiring)).code, "ok", "an expired authentication token");
        t.close();
        ok(await u.logout(bearer(userToken)));
        fails(await u.bump(bearer(userToken)));
        u.close();

        // Seed 004: sign-up, login (wrong, right), check (bad, right, expired), refresh token,
        // password change, refresh token deleted, user deleted.
        const j = recorded(`${p} jwt`, jwtApi(protocol, server.url));
        const user = `jwt-${randomBytes(5).toString("hex")}`;
        const jpw = keep(`${p} seed 004 password`, canaryPassword("pw004"));
        ok(await j.createUser({ user, pass: jpw }));
        fails(await j.getToken({ user, pass: keep(`${p} seed 004 wrong password`, canaryPassword("wrong004")) }));
        fails(await j.getToken({ user: asLogin(`${p} seed 004 password as the user name`, canaryPassword("asuser")), pass: jpw }));
        const access = keep(`${p} seed 004 access JWT`, ok(await j.getToken({ user, pass: jpw })).text);
        ok(await j.check({ access_token: access }));
        fails(await j.check({ access_token: keep(`${p} seed 004 bad JWT`, canary("badjwt")) }));
        const [head, , signature] = access.split(".");
        const forged = keep(`${p} seed 004 forged JWT`, `${head}.${Buffer.from(JSON.stringify({ sub: canary("sub"), exp: 9e9 })).toString("base64url")}.${signature}`);
        fails(await j.check({ access_token: forged }));
        const refresh = keep(`${p} seed 004 refresh token`, ok(await j.getRefreshToken({ access_token: access })).text);
        keep(`${p} seed 004 access JWT from a refresh login`, ok(await j.getToken({ user: refresh })).text);
        ok(await j.getUser({ access_token: access }));
        const newPw = keep(`${p} seed 004 new password`, canaryPassword("new004"));
        ok(await j.changePassword({ pass: newPw, access_token: access }));
        fails(await j.changePassword({ pass: keep(`${p} seed 004 new password, bad JWT`, canaryPassword("new004b")), access_token: keep(`${p} seed 004 bad JWT for a password change`, canary("badjwtpw")) }));
        fails(await j.deleteRefreshToken({ refresh_token: keep(`${p} seed 004 bad refresh token`, canary("badjwtrefresh")) }));
        const fresh = keep(`${p} seed 004 access JWT after the change`, ok(await j.getToken({ user, pass: newPw })).text);
        const refresh2 = keep(`${p} seed 004 second refresh token`, ok(await j.getRefreshToken({ access_token: fresh })).text);
        ok(await j.deleteRefreshToken({ refresh_token: refresh2, access_token: fresh }));
        clock.advance(16 * 60_000);
        fails(await j.check({ access_token: fresh }));
        fails(await j.getToken({ user: refresh })); // the password changed: the refresh token with it
        const last = keep(`${p} seed 004 access JWT before deletion`, ok(await j.getToken({ user, pass: newPw })).text);
        ok(await j.deleteUser({ access_token: last }));
        fails(await j.check({ access_token: last }));
        j.close();
      }

      /** gRPC-Web (connect-node): a login, a wrong password, a bad token, Basic. */
      async function driveGrpcWeb(): Promise<void> {
        const call = async (what: string, work: () => Promise<unknown>): Promise<void> => {
          try {
            const answer = await work();
            seen.push({ what, ok: true, cacheable: false, text: JSON.stringify(answer) });
          } catch (e) {
            assert.ok(e instanceof ConnectError, String(e));
            // Details as sent: their bytes (a secret's ASCII shows in them as is).
            const details = e.details.map((d) => ("type" in d && d.value instanceof Uint8Array ? `${d.type} ${Buffer.from(d.value).toString("latin1")}` : JSON.stringify(d)));
            seen.push({ what, ok: false, cacheable: false, text: `${e.code} ${e.rawMessage}\n${details.join("\n")}\n${headersText(e.metadata)}` });
          }
        };
        const email = `canary-web-${randomBytes(5).toString("hex")}@example.com`;
        const pw = keep("grpc-web seed 000 password", canaryPassword("web"));
        const headers = { "x-koms-clientid": testClientId };
        const sessions = grpcWebClient(SessionService, server.url);
        await call("grpc-web CreateUser", () => grpcWebClient(UserService, server.url).createUser({ email, password: pw }, { headers }));
        await call("grpc-web CreateSession wrong", () => sessions.createSession({ accountType: "traditional", email, password: keep("grpc-web wrong password", canaryPassword("webwrong")) }, { headers }));
        let access = "";
        await call("grpc-web CreateSession", async () => {
          const r = await sessions.createSession({ accountType: "traditional", email, password: pw }, { headers });
          access = keep("grpc-web access token", r.accessToken);
          keep("grpc-web refresh token", r.refreshToken);
          return {};
        });
        await call("grpc-web GetSession bad", () => sessions.getSession({}, { headers: { ...headers, authorization: `Bearer ${keep("grpc-web bad access token", canary("webbad"))}` } }));
        await call("grpc-web GetSession", () => sessions.getSession({}, { headers: { ...headers, authorization: `Bearer ${access}` } }));
        const tokens = grpcWebClient(UserTokenService, server.url);
        await call("grpc-web Login wrong", () => tokens.login({}, { headers: basic(email, keep("grpc-web Basic wrong password", canaryPassword("webbasic"))) }));
        await call("grpc-web API token bad", () => grpcWebClient(ApiTokenService, server.url).authenticate({}, { headers: bearer(keep("grpc-web bad API token", canary("webapi"))) }));
        await call("grpc-web JWT check bad", () => grpcWebClient(JwtService, server.url).check({ accessToken: keep("grpc-web bad JWT", canary("webjwt")) }));
      }

      /** gRPC (@grpc/grpc-js) failures as sent: grpc-message, and grpc-status-details-bin's bytes. */
      async function driveGrpcRaw(): Promise<void> {
        const md = (m: grpc.Metadata | undefined): string =>
          Object.entries(m?.getMap() ?? {})
            .map(([k, v]) => `${k}: ${Buffer.isBuffer(v) ? v.toString("latin1") : v}`)
            .join("\n");
        const call = async <S extends DescService>(service: S, method: string, input: Record<string, unknown>, metadata: Record<string, string>): Promise<void> => {
          const client = new GrpcJsClient(service, server.url);
          try {
            const r = await client.call(method, input, metadata);
            assert.ok(r.error, `${method}: expected a failure`);
            seen.push({ what: `grpc raw ${method}`, ok: false, cacheable: false, text: `${r.error.code} ${r.error.details}\n${md(r.header)}\n${md(r.trailer)}` });
          } finally {
            client.close();
          }
        };
        const h = { "x-koms-clientid": testClientId };
        await call(SessionService, "CreateSession", { accountType: "traditional", email: "nobody@example.com", password: keep("grpc raw wrong password", canaryPassword("rawpw")) }, h);
        await call(UserService, "CreateUser", { email: asLogin("grpc raw password as the email", canaryPassword("rawmail")), password: "x" }, h);
        await call(SessionService, "GetSession", {}, { ...h, authorization: `Bearer ${keep("grpc raw bad access token", canary("rawtok"))}` });
        await call(SessionService, "GetSession", {}, { "x-koms-clientid": keep("grpc raw client id", canary("rawcid")), authorization: "Bearer x" });
        await call(SessionService, "RefreshSession", { refreshToken: keep("grpc raw bad refresh token", canary("rawref")) }, { ...h, authorization: "Bearer x" });
        await call(JwtService, "Check", { accessToken: keep("grpc raw bad JWT", canary("rawjwt")) }, {});
        await call(UserTokenService, "Login", {}, { authorization: `Basic ${Buffer.from(`nobody@example.com:${keep("grpc raw Basic password", canaryPassword("rawbasic"))}`).toString("base64")}` });
        await call(ApiTokenService, "Authenticate", {}, { authorization: `Bearer ${keep("grpc raw bad API token", canary("rawapi"))}` });
      }

      /** What only REST carries: tokens in paths and query strings, malformed bodies and headers. */
      async function driveRestOnly(): Promise<void> {
        const pathToken = keep("token in a seed 003 path", canary("pathtok"));
        await raw("GET", `/api/authenticationtoken/${pathToken}`, { headers: bearer(keep("user token for a path lookup", canary("pathuser"))) });
        await raw("GET", `/api/authenticationtoken/${pathToken}/user`);
        await raw("DELETE", `/api/authenticationtoken/${pathToken}/user`);
        await raw("GET", `/api/authenticationtoken/${pathToken}/user?extra=1`);
        await raw("GET", `/api/authenticationtoken/${pathToken}/nothing`);
        await raw("GET", `/api/authenticationtoken/${encodeURIComponent(keep("token with spaces in a path", canaryPassword("pathsp")))}/user`);
        // Seed 004 takes its arguments in the query string: a login, a check and a refresh token
        // there, answered (every answer that carries a secret must not be cacheable).
        const user = `jwtq-${randomBytes(5).toString("hex")}`;
        const pass = keep("seed 004 password in a sign-up form", canaryPassword("qpw"));
        assert.equal((await raw("POST", "/jwt/user", { headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ user, pass }).toString() })).status, 201);
        const jwtText = (await raw("GET", `/jwt/token?${new URLSearchParams({ user, pass })}`)).text;
        const jwt = keep("seed 004 access JWT from a query login", jwtText);
        assert.equal((await raw("GET", `/jwt/check?${new URLSearchParams({ access_token: jwt })}`)).status, 200);
        const refreshed = keep("seed 004 refresh token from a query", (await raw("GET", `/jwt/refresh_token?${new URLSearchParams({ access_token: jwt })}`)).text);
        // A refresh login: the refresh token goes as `user`; then refused, once revoked, and a
        // refresh token that does not verify (JWT-shaped, and its signature broken).
        keep("seed 004 access JWT from a refresh login", (await raw("GET", `/jwt/token?${new URLSearchParams({ user: refreshed })}`)).text);
        assert.equal((await raw("DELETE", `/jwt/refresh_token?${new URLSearchParams({ refresh_token: refreshed, access_token: jwt })}`)).status, 204);
        assert.notEqual((await raw("GET", `/jwt/token?${new URLSearchParams({ user: refreshed })}`)).status, 200);
        const [rh, rb] = refreshed.split(".");
        const broken = keep("seed 004 refresh token with a broken signature", `${rh}.${rb}.${canary("sig")}`);
        assert.notEqual((await raw("GET", `/jwt/token?${new URLSearchParams({ user: broken })}`)).status, 200);
        const unsigned = keep("seed 004 JWT-shaped token as user", `${rh}.${Buffer.from(JSON.stringify({ token_type: "refresh_token", jti: canary("jti") })).toString("base64url")}.`);
        assert.notEqual((await raw("GET", `/jwt/token?${new URLSearchParams({ user: unsigned })}`)).status, 200);
        // Connect GET: the request message, and the token in it, in the query string.
        const connectGet = (message: unknown, base64: boolean) =>
          raw("GET", `/tessera.jwt.v1.JwtService/Check?connect=v1&encoding=json&${base64 ? `base64=1&message=${Buffer.from(JSON.stringify(message)).toString("base64url")}` : `message=${encodeURIComponent(JSON.stringify(message))}`}`);
        for (const base64 of [false, true]) {
          assert.equal((await connectGet({ access_token: jwt }, base64)).status, 200);
          await connectGet({ access_token: keep(`bad JWT in a Connect GET (base64 ${base64})`, canary("cget")) }, base64);
          await connectGet({ access_token: [keep(`JWT in an array in a Connect GET (base64 ${base64})`, canary("cgeta"))] }, base64);
        }
        await raw("GET", `/tessera.jwt.v1.JwtService/Check?connect=v1&encoding=json&message={"access_token":${keep("unquoted JWT in a Connect GET", canary("cgetu"))}}`);
        await raw("GET", `/jwt/check?${new URLSearchParams({ access_token: keep("JWT in a query string", canary("queryjwt")) })}`);
        await raw("GET", `/jwt/token?${new URLSearchParams({ user: "nobody-at-all", pass: keep("password in a query string", canaryPassword("querypw")) })}`);
        await raw("GET", `/jwt/refresh_token?${new URLSearchParams({ access_token: keep("JWT in a refresh query", canary("queryref")) })}`);
        await raw("DELETE", `/jwt/refresh_token?${new URLSearchParams({ refresh_token: keep("refresh token in a query string", canary("queryrt")) })}`);
        await raw("GET", `/jwt/check?access_token=${keep("query token twice", canary("twice"))}&access_token=${keep("query token twice (2)", canary("twice2"))}`);
        await raw("GET", `/session?access_token=${keep("token in a query where none is taken", canary("noquery"))}`, { headers: { "x-koms-clientid": testClientId } });
        await raw("GET", `/nowhere/${keep("token in an unknown path", canary("nowhere"))}`);
        await raw("GET", `/v2/api/authenticationtoken/${keep("token under a wrong prefix", canary("prefix"))}/user`);
        await raw("POST", `/auth/api/authenticationtoken/${keep("token under a wrong prefix (2)", canary("prefix2"))}`);
        // RPC paths that name no method or no service: the dispatcher's answers, metrics and spans.
        const json = { "content-type": "application/json" };
        await raw("POST", `/tessera.jwt.v1.JwtService/${keep("token as an RPC method", canary("rpcmethod"))}`, { headers: json, body: "{}" });
        // (Not probed: a token as the first path segment no route knows, or as an RPC's service
        // name. Those are quoted back, "no route for POST /<it>/*" and "unknown service <it>",
        // as what names the mistake, unless they have a credential's shape (error-echo.test.ts);
        // a client puts no token there.)
        await raw("GET", `/tessera.jwt.v1.JwtService/Check/${keep("token after an RPC path", canary("rpctail"))}`);
        // The seed 003 cookie as a credential, right and wrong.
        const cookie = secrets.get("rest seed 003 session cookie");
        assert.ok(cookie, "the REST exchange set a cookie");
        const withCookie = await raw("GET", "/api/authenticationtoken", { headers: { cookie: `tessera_session=${cookie}` } });
        assert.equal(withCookie.status, 200, withCookie.text);
        keep("authentication token for the cookie", (withCookie.body as { token: string }).token);
        // Malformed bodies: the secret in the wrong type or the wrong place, or not JSON at all.
        const pw = () => canaryPassword("body");
        const h = { "x-koms-clientid": testClientId };
        await raw("POST", "/session", { headers: h, json: { account_type: "traditional", email: "a@example.com", password: [keep("password in an array", pw())] } });
        await raw("POST", "/session", { headers: h, json: { account_type: "traditional", email: "a@example.com", password: { value: keep("password in an object", pw()) } } });
        await raw("POST", "/session", { headers: h, json: { account_type: keep("password as the account type", pw()), email: "a@example.com", password: "x" } });
        await raw("POST", "/session", { headers: h, json: { account_type: "traditional", email: "a@example.com", pasword: keep("password under a misspelt name", pw()) } });
        await raw("POST", "/session", { headers: { ...h, "content-type": "application/json" }, body: `{"account_type":"traditional","email":"a@example.com","password":'${keep("password in single quotes", canary("quoted"))}'}` });
        await raw("POST", "/session", { headers: { ...h, "content-type": "application/json" }, body: `{"account_type":"traditional","email":"a@example.com","password":${keep("password unquoted", canary("unquoted"))}}` });
        await raw("POST", "/session", { headers: { ...h, "content-type": "application/json" }, body: `{"password":"${keep("password in a truncated body", canary("trunc"))}` });
        await raw("POST", "/user", { headers: h, json: { email: "b@example.com", password: 12345678901234 } });
        // Passwords the policy refuses: too short, too long, a control character, the login itself.
        const shortPw = keep("a password too short", `Cn${randomBytes(2).toString("hex")}`);
        await raw("POST", "/user", { headers: h, json: { email: `c-${randomBytes(4).toString("hex")}@example.com`, password: shortPw } });
        await raw("POST", "/user", { headers: h, json: { email: `c-${randomBytes(4).toString("hex")}@example.com`, password: keep("a password too long", canaryPassword("long").repeat(60)) } });
        await raw("POST", "/user", { headers: h, json: { email: `c-${randomBytes(4).toString("hex")}@example.com`, password: `${keep("a password with a control character", canaryPassword("ctl"))}\u0007` } });
        const own = `${canary("own")}@example.com`;
        await raw("POST", "/user", { headers: h, json: { email: own, password: own } });
        await raw("POST", "/jwt/user", { json: { user: `j-${randomBytes(4).toString("hex")}`, pass: keep("a seed 004 password too short", `Cn${randomBytes(2).toString("hex")}`) } });
        // A control or bidirectional character in a login that holds a password.
        await raw("POST", "/session", { headers: h, json: { account_type: "traditional", email: `${asLogin("password with a control character in the email field", canaryPassword("ctlmail"))}\u0000`, password: "x" } });
        await raw("POST", "/jwt/user", { json: { user: `\u202e${asLogin("password with U+202E in the user field", canaryPassword("bidi"))}`, pass: "x" } });
        // The same key twice in a JSON body.
        await raw("POST", "/session", { headers: { ...h, "content-type": "application/json" }, body: `{"account_type":"traditional","email":"a@example.com","password":"x","password":"${keep("password as a duplicate key", canary("dupkey"))}"}` });
        await raw("POST", "/user", { headers: h, json: { email: asLogin("password as the sign-up email", pw()), password: "x" } });
        await raw("POST", "/session/refresh", { headers: h, json: { refresh_token: 42, access_token: keep("token under an unknown field", canary("unknownfield")) } });
        await raw("POST", "/jwt/user", { json: { user: "u", pass: { p: keep("seed 004 password in an object", pw()) } } });
        await raw("POST", "/jwt/user", { headers: { "content-type": "application/x-www-form-urlencoded" }, body: `user=u&pass=${encodeURIComponent(keep("seed 004 form password, too short?", canary("f")))}&pass=${encodeURIComponent(keep("seed 004 form password twice", pw()))}` });
        await raw("POST", "/v1/frontend/auth", { headers: admin, json: { account_id: { id: keep("secret in the account id", canary("acct")) }, description: "x" } });
        // Malformed credentials in headers.
        await raw("GET", "/session", { headers: { ...h, authorization: `Bearer  ${keep("bearer with two spaces", canary("twosp"))}` } });
        await raw("GET", "/session", { headers: { ...h, authorization: `Bearer ${keep("bearer with a comma", canary("comma"))}, Bearer x` } });
        await raw("GET", "/auth/login", { headers: { authorization: `Basic ${keep("Basic that is not base64", canary("notb64"))}!` } });
        await raw("POST", "/auth/login", { headers: { authorization: `Basic ${Buffer.from(keep("Basic without a colon", canary("nocolon"))).toString("base64")}` } });
        const basicValue = keep("Basic header value", Buffer.from(`someone@example.com:${keep("Basic password of an unknown user", pw())}`).toString("base64"));
        await raw("POST", "/auth/login", { headers: { authorization: `Basic ${basicValue}` } });
        await raw("GET", "/api/authenticationtoken", { headers: { authorization: `Digest ${keep("credential under an unknown scheme", canary("digest"))}` } });
        await raw("GET", "/api/authenticationtoken", { headers: { cookie: `tessera_session=${keep("bad session cookie", canary("cookie"))}` } });
        await raw("GET", "/api/authenticationtoken", { headers: { cookie: `other=1; tessera_session=${keep("bad session cookie (second)", canary("cookie2"))}; tessera_session=${keep("bad session cookie (twice)", canary("cookie3"))}` } });
        await raw("GET", "/v1/frontend/auth/acct-1/tokens", { headers: { authorization: `Bearer ${keep("admin token, wrong", canary("admwrong"))}` } });
        await raw("GET", "/session", { headers: { "x-koms-clientid": keep("x-koms-clientid value", canary("kclient")), authorization: "Bearer x" } });
        await raw("GET", "/session", { headers: { "x-koms-clientid": `${testClientId}, ${keep("x-koms-clientid repeated", canary("kclient2"))}`, authorization: "Bearer x" } });
        await raw("GET", "/session", { headers: { ...h, "x-koms-extra": keep("x-koms-* value", canary("kextra")) } });
        await raw("GET", "/session", { headers: { ...h, authorization: `Bearer ${keep("bearer of 2 KiB", canary("long").repeat(120))}` } });
      }

      /** Key rotation and revocation (admin), with a wrong admin token; audit events with a wrong one. */
      async function driveKeysAndAudit(): Promise<void> {
        for (const protocol of protocols) {
          const k = recorded(`${protocol} key`, keyApi(protocol, server.url));
          fails(await k.rotateKey(bearer(keep(`${protocol} wrong admin token (keys)`, canary("keyadm")))));
          const { kid } = ok(await k.rotateKey(admin));
          ok(await k.getJwks());
          if (protocol === "rest") ok(await k.revokeKey(kid, admin));
          k.close();
          const a = recorded(`${protocol} audit`, auditApi(protocol, server.url));
          fails(await a.listAuditEvents({}, bearer(keep(`${protocol} wrong admin token (audit)`, canary("audadm")))));
          fails(await a.listAuditEvents({ page_token: keep(`${protocol} secret as a page token`, canary("page")) }, admin));
          a.close();
        }
      }
    });
  });
}

describe("secret canaries in the process's own output: start to graceful stop (SIGTERM)", function () {
  this.timeout(60_000);
  it("stdout and stderr of `tsx src/main.ts` at debug hold no secret of the configuration or of the calls", async () => {
    const adminToken = canary("padmin");
    const keyEncryptionKey = canary("pkek").repeat(2);
    const otlpHeader = canary("potlp");
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-canary-"));
    const child = spawn(process.execPath, await entryArgv("sources"), {
      cwd: projectRoot,
      env: {
        ...process.env,
        MONGODB_URI: "",
        PORT: "0",
        HOST: "127.0.0.1",
        TESSERA_DATA_DIR: dataDir,
        TESSERA_LOG_LEVEL: "debug",
        TESSERA_ADMIN_TOKEN: adminToken,
        TESSERA_KEY_ENCRYPTION_KEY: keyEncryptionKey,
        TESSERA_CLIENT_IDS: testClientId,
        TESSERA_ARGON2_MEMORY_KIB: "1024",
        TESSERA_ARGON2_ITERATIONS: "1",
        // A collector that is not there: the exporter's failures are logged, its headers never.
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9",
        OTEL_EXPORTER_OTLP_HEADERS: `authorization=Bearer ${otlpHeader}`,
        OTEL_BSP_SCHEDULE_DELAY: "100",
        // An export to it gives up after 1 s rather than the exporter's default 10 s, which the
        // graceful stop's last flush waited out.
        OTEL_EXPORTER_OTLP_TIMEOUT: "1000",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const secrets = new Map<string, string>([
      ["admin token", adminToken],
      ["key encryption key", keyEncryptionKey],
      ["OTLP header", otlpHeader],
    ]);
    try {
      let url: string | undefined;
      for (let i = 0; i < 600 && url === undefined; i++) {
        url = /"msg":"listening".*?"url":"([^"]+)"/.exec(out)?.[1];
        if (url === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(url, `not listening: ${out}`);
      const email = `canary-${randomBytes(5).toString("hex")}@example.com`;
      const pw = canaryPassword("ppw");
      const wrong = canaryPassword("pwrong");
      const bad = canary("pbad");
      secrets.set("password", pw).set("wrong password", wrong).set("bad token", bad);
      const h = { "x-koms-clientid": testClientId };
      assert.equal((await rest(url, "POST", "/user", { headers: h, json: { email, password: pw } })).status, 201);
      assert.equal((await rest(url, "POST", "/session", { headers: h, json: { account_type: "traditional", email, password: wrong } })).status, 401);
      const pair = (await rest(url, "POST", "/session", { headers: h, json: { account_type: "traditional", email, password: pw } })).body as { access_token: string; refresh_token: string };
      secrets.set("access token", pair.access_token).set("refresh token", pair.refresh_token);
      const login = await rest(url, "POST", "/auth/login", { headers: basic(email, pw) });
      secrets.set("user token", (login.body as { token: string }).token);
      await rest(url, "GET", `/api/authenticationtoken/${bad}/user`);
      await rest(url, "GET", "/session", { headers: { ...h, authorization: `Bearer ${bad}` } });
      assert.equal((await rest(url, "POST", "/v1/admin/keys:rotate", { headers: bearer(adminToken) })).status, 200);
      assert.equal((await rest(url, "POST", "/v1/admin/keys:rotate", { headers: bearer(bad) })).status, 401);
    } finally {
      child.kill("SIGTERM");
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    }
    assert.match(out, /"msg":"stopped"/);
    const leaks: string[] = [];
    for (const [name, secret] of secrets) {
      const form = encodings(secret).find((f) => out.includes(f));
      if (form !== undefined) leaks.push(`${name} (${form}): ${out.split("\n").find((l) => l.includes(form))}`);
    }
    assert.deepEqual(leaks, []);
  });
});
