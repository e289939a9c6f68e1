// The served /openapi.json checked against the server that serves it. Every operation of the
// document is called: once with valid arguments for each of its security alternatives (seed 004's
// loose operations also once per argument style: query, JSON body, form body), and in the error
// cases the document declares for it. Each answer's status must be one the document declares for
// the operation, its body must validate against the declared schema (ajv, JSON Schema 2020-12)
// and its declared headers must be there (an ETag or a Set-Cookie only where declared, and a
// declared Set-Cookie sent by some call); an operation declaring a 304 is called again with If-None-Match naming the ETag it answered, which must be that 304; and
// each declared status must have been seen, except 500 and 503 (an internal error, the store
// down) and the exemptions listed below.
import assert from "node:assert/strict";
import http from "node:http";
import { randomUUID } from "node:crypto";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { basic, bearer } from "../support/clients.js";
import { startTestServer, storesUnderTest, testAdminToken, testClientId, type TestServer } from "../support/server.js";
import { otherPassword as newPassword, password, uniqueEmail, uniqueName } from "../support/users.js";

// ajv-formats is CommonJS: its default export arrives as the module object under NodeNext.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (a: Ajv2020) => void;

type Json = any;

interface Request {
  path?: Record<string, string>;
  query?: Record<string, string>;
  json?: unknown;
  form?: Record<string, string>;
  /** A raw body with its content type. */
  body?: { type: string; data: string };
  headers?: Record<string, string>;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}


/** Credentials and objects for one call, each made on first use (so each call gets fresh ones). */
class World {
  private readonly memo = new Map<string, Promise<unknown>>();
  readonly email = uniqueEmail("reality");
  constructor(private readonly send: (method: string, path: string, r: Request) => Promise<Answer>) {}

  private once<T>(key: string, make: () => Promise<T>): Promise<T> {
    if (!this.memo.has(key)) this.memo.set(key, make());
    return this.memo.get(key) as Promise<T>;
  }
  private async ok(method: string, path: string, r: Request, status = 200): Promise<Answer> {
    const a = await this.send(method, path, r);
    assert.equal(a.status, status, `fixture ${method} ${path}: ${a.text}`);
    return a;
  }

  user(): Promise<void> {
    return this.once("user", async () => {
      await this.ok("POST", "/user", { headers: { "x-koms-clientid": testClientId }, json: { email: this.email, password } }, 201);
    });
  }
  session(): Promise<{ access_token: string; refresh_token: string }> {
    return this.once("session", async () => {
      await this.user();
      const a = await this.ok("POST", "/session", {
        headers: { "x-koms-clientid": testClientId },
        json: { account_type: "traditional", email: this.email, password },
      });
      return JSON.parse(a.text);
    });
  }
  userToken(): Promise<string> {
    return this.once("userToken", async () => {
      await this.user();
      return JSON.parse((await this.ok("POST", "/auth/login", { headers: basic(this.email, password) })).text).token;
    });
  }
  jwt(): Promise<string> {
    return this.once("jwt", async () => {
      await this.user();
      return (await this.ok("GET", "/jwt/token", { query: { user: this.email, pass: password } })).text;
    });
  }
  refreshJwt(): Promise<string> {
    return this.once("refreshJwt", async () => (await this.ok("GET", "/jwt/refresh_token", { headers: bearer(await this.jwt()) })).text);
  }
  /** An access token from a refresh login: refused (403) where a password login is required. */
  refreshDerivedJwt(): Promise<string> {
    return this.once("refreshDerivedJwt", async () => (await this.ok("GET", "/jwt/token", { query: { user: await this.refreshJwt() } })).text);
  }
  apiToken(): Promise<{ account: string; token: string; link: string }> {
    return this.once("apiToken", async () => {
      const account = uniqueName("acct");
      const created = await this.ok("POST", "/v1/frontend/auth", { headers: bearer(testAdminToken), json: { account_id: account, description: "reality" } });
      const token = JSON.parse(created.text).token as string;
      const link = JSON.parse((await this.ok("GET", "/v1/api/auth", { headers: bearer(token) })).text).token_link as string;
      return { account, token, link };
    });
  }
  authenticationToken(): Promise<string> {
    return this.once("authenticationToken", async () => JSON.parse((await this.ok("GET", "/api/authenticationtoken", { headers: bearer(await this.userToken()) })).text).token);
  }
  sessionCookie(): Promise<string> {
    return this.once("sessionCookie", async () => {
      // A token of its own: the exchange consumes it.
      const token = JSON.parse((await this.ok("GET", "/api/authenticationtoken", { headers: bearer(await this.userToken()) })).text).token;
      const a = await this.ok("GET", `/api/authenticationtoken/${token}/user`, {});
      const cookie = String(a.headers["set-cookie"]?.[0] ?? "").split(";", 1)[0]!;
      assert.match(cookie, /^tessera_session=/);
      return cookie;
    });
  }
  /** The published next signing key's kid (revoking it disturbs no token). */
  nextKid(): Promise<string> {
    return this.once("nextKid", async () => JSON.parse((await this.ok("GET", "/.well-known/jwks.json", {})).text).keys[0].kid as string);
  }
  /** An authentication token of another user than `email`'s. */
  othersAuthenticationToken(): Promise<string> {
    return this.once("othersAuthenticationToken", async () => {
      const other = uniqueEmail("reality-other");
      await this.ok("POST", "/user", { headers: { "x-koms-clientid": testClientId }, json: { email: other, password } }, 201);
      const token = JSON.parse((await this.ok("POST", "/auth/login", { headers: basic(other, password) })).text).token;
      return JSON.parse((await this.ok("GET", "/api/authenticationtoken", { headers: bearer(token) })).text).token;
    });
  }
  /** A user deactivated through the JWT API, whose password is still right. */
  deactivated(): Promise<void> {
    return this.once("deactivated", async () => {
      await this.ok("DELETE", "/jwt/user", { headers: bearer(await this.jwt()) }, 204);
    });
  }

  /** The request parts that present one security alternative of the document. */
  async credentials(requirement: Record<string, string[]>): Promise<Request> {
    const r: Required<Pick<Request, "headers" | "query">> = { headers: {}, query: {} };
    for (const scheme of Object.keys(requirement)) {
      switch (scheme) {
        case "clientId":
          r.headers["x-koms-clientid"] = testClientId;
          break;
        case "sessionAccessToken":
          r.headers.authorization = bearer((await this.session()).access_token).authorization;
          break;
        case "apiToken":
          r.headers.authorization = bearer((await this.apiToken()).token).authorization;
          break;
        case "userToken":
          r.headers.authorization = bearer(await this.userToken()).authorization;
          break;
        case "jwtAccessToken":
          r.headers.authorization = bearer(await this.jwt()).authorization;
          break;
        case "jwtAccessTokenArgument":
          r.query.access_token = await this.jwt();
          break;
        case "adminToken":
          r.headers.authorization = bearer(testAdminToken).authorization;
          break;
        case "basic":
          Object.assign(r.headers, basic(this.email, password));
          await this.user();
          break;
        case "sessionCookie":
          r.headers.cookie = await this.sessionCookie();
          break;
        default:
          throw new Error(`no credential for security scheme ${scheme}`);
      }
    }
    return r;
  }
}


interface Scenario {
  /** Valid arguments (path, query, body); for seed 004's loose operations, sent in each style. */
  args: (w: World) => Promise<Request>;
  /**
   * Changes what other operations' answers rest on (the signing keys: their tokens, their
   * ETags): called alone, in its place in the document, where the others are called side by side.
   */
  alone?: true;
  /** The operation's own error cases: the status the document declares for each. */
  errors?: Array<{
    status: number;
    name: string;
    request: (w: World) => Promise<Request>;
    /** Sent from a loopback address of its own (what it counts per address starts from nothing). */
    ownAddress?: boolean;
    /** Calls that bring the case about, each answering `status`, before the one checked. */
    before?: { times: number; status: number; request: (w: World) => Promise<Request> };
  }>;
}

const failedLogins = (status: number) => ({ status, name: "locked out after failed logins" });

// TESSERA_SIGNUP_MAX_PER_ADDRESS of the server below (the default): the sign-ups one address may make.
const signUpLimit = 20;
/** The sign-up limit: `signUpLimit` sign-ups from a fresh address, then one more. */
const tooManySignUps = (signUp: () => Request) => ({
  status: 429,
  name: "too many sign-ups from one address",
  ownAddress: true,
  before: { times: signUpLimit, status: 201, request: async () => signUp() },
  request: async () => signUp(),
});

/** What a valid call of each operation needs, and its own error cases, by "METHOD /path". */
const scenarios: Record<string, Scenario> = {
  "GET /v1/api/auth": { args: async () => ({}) },
  "POST /v1/frontend/auth": { args: async () => ({ json: { account_id: "acct-new", description: "CI deploys" } }) },
  "PUT /v1/frontend/auth": {
    args: async (w) => ({ json: { token_link: (await w.apiToken()).link, description: "renamed" } }),
    errors: [{ status: 404, name: "unknown token link", request: async () => ({ headers: bearer(testAdminToken), json: { token_link: randomUUID(), description: "x" } }) }],
  },
  "GET /v1/frontend/auth/{account_id}": { args: async (w) => ({ path: { account_id: (await w.apiToken()).account }, query: { state: "active" } }) },
  "DELETE /v1/frontend/auth/{account_id}": {
    args: async (w) => {
      const t = await w.apiToken();
      return { path: { account_id: t.account }, json: { token_link: t.link } };
    },
    errors: [{ status: 404, name: "unknown token link", request: async () => ({ headers: bearer(testAdminToken), path: { account_id: "acct-x" }, json: { token_link: randomUUID() } }) }],
  },
  "GET /api/authenticationtoken": { args: async () => ({}) },
  "GET /api/authenticationtoken/{token}": {
    args: async (w) => ({ path: { token: await w.authenticationToken() } }),
    errors: [{ status: 404, name: "unknown token", request: async (w) => ({ headers: bearer(await w.userToken()), path: { token: "unknown-token-0000" } }) }],
  },
  "GET /api/authenticationtoken/{token}/user": {
    args: async (w) => ({ path: { token: await w.authenticationToken() } }),
    errors: [
      { status: 404, name: "unknown token", request: async () => ({ path: { token: "unknown-token-0000" } }) },
      {
        status: 409,
        name: "another user's session cookie",
        request: async (w) => ({ path: { token: await w.othersAuthenticationToken() }, headers: { cookie: await w.sessionCookie() } }),
      },
    ],
  },
  "GET /jwt/token": {
    args: async (w) => (await w.user(), { query: { user: w.email, pass: password } }),
    errors: [
      { status: 401, name: "wrong password", request: async (w) => (await w.user(), { query: { user: w.email, pass: "wrong password!" } }) },
      { status: 403, name: "deactivated user", request: async (w) => (await w.deactivated(), { query: { user: w.email, pass: password } }) },
      { ...failedLogins(429), request: async (w) => (await w.user(), { query: { user: w.email, pass: "wrong password!" } }) },
    ],
  },
  "GET /jwt/check": { args: async (w) => ({ query: { access_token: await w.jwt() } }) },
  "GET /jwt/pubkey": { args: async () => ({}) },
  "GET /jwt/refresh_token": { args: async () => ({}) },
  "DELETE /jwt/refresh_token": { args: async (w) => ({ query: { refresh_token: await w.refreshJwt() } }) },
  "POST /jwt/user": {
    args: async () => ({ query: { user: uniqueName("jwt"), pass: password } }),
    errors: [
      { status: 409, name: "existing user", request: async (w) => (await w.user(), { query: { user: w.email, pass: password } }) },
      tooManySignUps(() => ({ query: { user: uniqueName("jwt"), pass: password } })),
    ],
  },
  "PATCH /jwt/user": { args: async () => ({ query: { pass: newPassword } }) },
  "GET /jwt/user": { args: async () => ({}) },
  "DELETE /jwt/user": { args: async () => ({}) },
  "GET /jwt/version": { args: async () => ({}) },
  "GET /.well-known/jwks.json": { args: async () => ({}) },
  "GET /.well-known/openid-configuration": { args: async () => ({}) },
  "POST /v1/admin/keys:rotate": { alone: true, args: async () => ({}) },
  "GET /v1/admin/audit-events": {
    args: async () => ({ query: { page_size: "2", type: "login" } }),
    errors: [{ status: 400, name: "bad page token", request: async () => ({ headers: bearer(testAdminToken), query: { page_token: "bm90IGEgdG9rZW4" } }) }],
  },
  "POST /v1/admin/keys/{kid}:revoke": {
    alone: true,
    args: async (w) => ({ path: { kid: await w.nextKid() } }),
    errors: [{ status: 404, name: "unknown kid", request: async () => ({ headers: bearer(testAdminToken), path: { kid: "no-such-kid" } }) }],
  },
  "POST /session": {
    args: async (w) => (await w.user(), { json: { account_type: "traditional", email: w.email, password } }),
    errors: [
      { status: 403, name: "deactivated user", request: async (w) => (await w.deactivated(), { headers: { "x-koms-clientid": testClientId }, json: { account_type: "traditional", email: w.email, password } }) },
      { ...failedLogins(429), request: async (w) => (await w.user(), { headers: { "x-koms-clientid": testClientId }, json: { account_type: "traditional", email: w.email, password: "wrong password!" } }) },
    ],
  },
  "PUT /session": { args: async (w) => ({ json: { refresh_token: (await w.session()).refresh_token } }) },
  "GET /session": { args: async () => ({}) },
  "DELETE /session": { args: async () => ({}) },
  "POST /user": {
    args: async () => ({ json: { email: uniqueEmail("new"), password } }),
    errors: [
      { status: 409, name: "existing email", request: async (w) => (await w.user(), { headers: { "x-koms-clientid": testClientId }, json: { email: w.email, password } }) },
      tooManySignUps(() => ({ headers: { "x-koms-clientid": testClientId }, json: { email: uniqueEmail("new"), password } })),
    ],
  },
  "GET /user": { args: async () => ({}) },
  "POST /auth/login": {
    args: async () => ({ json: { note: "reality" } }),
    errors: [
      { status: 403, name: "deactivated user", request: async (w) => (await w.deactivated(), { headers: basic(w.email, password) }) },
      { ...failedLogins(429), request: async (w) => (await w.user(), { headers: basic(w.email, "wrong password!") }) },
    ],
  },
  "POST /auth/bump": { args: async () => ({}) },
  "POST /auth/logout": {
    args: async () => ({}),
    errors: [
      {
        status: 403,
        name: "the session cookie from another origin's page",
        request: async (w) => ({ headers: { cookie: await w.sessionCookie(), origin: "https://evil.example.com", "sec-fetch-site": "same-site" } }),
      },
      {
        status: 401,
        name: "a session cookie that is no session (its answer clears the cookie)",
        request: async () => ({ headers: { cookie: "tessera_session=nope" } }),
      },
    ],
  },
};

/** Declared statuses no call here can bring about, and why. */
const notExercised: Record<string, number[]> = {
  // NOT_FOUND only under a symmetric algorithm (TESSERA_JWT_ALG=HS256).
  "GET /jwt/pubkey": [404],
};

// TESSERA_LOGIN_MAX_FAILURES (default 5): the failed logins that lock a login out.
const maxFailures = 5;

for (const store of storesUnderTest()) {
  describe(`/openapi.json against the server (${store})`, function () {
    this.timeout(180000);
    let server: TestServer;
    let doc: Json;
    let ajv: Ajv2020;
    const validators = new Map<string, ValidateFunction>();
    // Each operation calls from its own loopback address: the login throttle also counts per address.
    let nextAddress = 10;

    before(async () => {
      server = await startTestServer({ store, env: { TESSERA_SIGNUP_MAX_PER_ADDRESS: String(signUpLimit) } });
      doc = await (await fetch(`${server.url}/openapi.json`)).json();
      ajv = new Ajv2020({ strict: false, allErrors: true });
      addFormats(ajv);
      ajv.addSchema({ $id: "openapi.json", components: doc.components });
    });
    after(async () => {
      await server?.close();
    });

    const validator = (schema: Json): ValidateFunction => {
      const key = JSON.stringify(schema);
      let v = validators.get(key);
      if (!v) {
        v = ajv.compile(JSON.parse(key.replaceAll('"$ref":"#/', '"$ref":"openapi.json#/')));
        validators.set(key, v);
      }
      return v;
    };
    const resolve = (x: Json): Json => {
      if (x?.$ref === undefined) return x;
      const [, kind, name] = /^#\/components\/(\w+)\/(.+)$/.exec(x.$ref)!;
      return { ...doc.components[kind!][name!], ...Object.fromEntries(Object.entries(x).filter(([k]) => k !== "$ref")) };
    };

    it("every operation answers as the document says", async () => {
      const operations = Object.entries<Json>(doc.paths).flatMap(([path, item]) => Object.entries<Json>(item).map(([method, op]) => ({ path, method, op: op as Json })));
      // Each operation's calls one after another, the operations side by side (each calls from
      // its own address with users of its own), but for those that must be called alone.
      const failures = operations.map(() => [] as string[]);
      let batch: Promise<void>[] = [];
      const settle = async () => {
        const settled = await Promise.allSettled(batch);
        batch = [];
        for (const r of settled) if (r.status === "rejected") throw r.reason;
      };
      for (const [i, { path, method, op }] of operations.entries()) {
        if (scenarios[`${method.toUpperCase()} ${path}`]?.alone) {
          await settle();
          await exercise(path, method, op, failures[i]!);
        } else batch.push(exercise(path, method, op, failures[i]!));
      }
      await settle();
      assert.deepEqual(failures.flat(), []);
    });

    /** Every call of one operation; what departs from the document is added to `failures`. */
    const exercise = async (path: string, method: string, op: Json, failures: string[]): Promise<void> => {
      const key = `${method.toUpperCase()} ${path}`;
      const scenario = scenarios[key];
      if (!scenario) {
        failures.push(`${key}: no scenario in reality.test.ts`);
        return;
      }
      const localAddress = `127.0.0.${nextAddress++}`;
      const send = (m: string, p: string, r: Request) => request(server.url, m, p, r, localAddress);
      const seen = new Set<number>();
      let setsCookie = false;
      const check = (what: string, a: Answer, expected: number) => {
        seen.add(a.status);
        if (a.headers["set-cookie"] !== undefined) setsCookie = true;
        const problems = conformance(op, a, resolve, validator);
        if (a.status !== expected) problems.unshift(`status ${a.status}, expected ${expected}: ${a.text.slice(0, 200)}`);
        for (const p of problems) failures.push(`${key} (${what}): ${p}`);
      };
      const statuses = Object.keys(op.responses).map(Number);
      const success = statuses.filter((s) => s < 300);
      const loose = op.requestBody?.content?.["application/x-www-form-urlencoded"] !== undefined;

      // Valid calls: one per security alternative, and per argument style where loose.
      for (const requirement of op.security.length > 0 ? op.security : [{}]) {
        for (const style of loose ? (["query", "json", "form"] as const) : ([undefined] as const)) {
          const w = new World(send);
          const creds = await w.credentials(requirement);
          const args = await scenario.args(w);
          const r = merge(creds, args);
          if (style !== undefined) restyle(r, style);
          const anonymous = Object.keys(requirement).length === 0 && op.security.length > 0;
          // The optional credential: without one, seed 004's GET /user answers its unset-body status.
          const expected = anonymous ? success[success.length - 1]! : success[0]!;
          check(`valid, ${Object.keys(requirement).join("+") || "no credential"}${style ? `, ${style}` : ""}`, await send(method.toUpperCase(), path, r), expected);
        }
      }

      // Conditional GET: a cacheable answer's ETag, sent back in If-None-Match, is 304.
      if (statuses.includes(304)) {
        const w = new World(send);
        const r = merge(await w.credentials(op.security[0] ?? {}), await scenario.args(w));
        const first = await send(method.toUpperCase(), path, r);
        check("valid, for its ETag", first, success[0]!);
        const etag = first.headers.etag;
        const again = await send(method.toUpperCase(), path, merge(r, { headers: { "if-none-match": String(etag) } }));
        check("If-None-Match naming its ETag", again, 304);
        if (again.headers.etag !== etag) failures.push(`${key} (If-None-Match naming its ETag): ETag ${again.headers.etag}, expected ${etag}`);
      }

      // The transcoder's errors.
      {
        const w = new World(send);
        const r = merge(await w.credentials(op.security[0] ?? {}), await scenario.args(w));
        r.query = { ...r.query, no_such_argument: "1" };
        check("an unknown argument", await send(method.toUpperCase(), path, r), 400);
      }
      // The caller's deadline (README): one that has passed on arrival ends every call.
      {
        const w = new World(send);
        const r = merge(await w.credentials(op.security[0] ?? {}), await scenario.args(w));
        check("a deadline passed on arrival", await send(method.toUpperCase(), path, merge(r, { headers: { "connect-timeout-ms": "0" } })), 504);
      }
      // An admin method checks the admin credential before it reads the request (README "Audit
      // trail"): its body's errors are answered to a caller that presents it.
      const pathArgs = async () => {
        const w = new World(send);
        const admin = op.security.some((s: Json) => "adminToken" in s);
        return merge(admin ? await w.credentials(op.security[0]!) : {}, { path: (await scenario.args(w)).path });
      };
      if (statuses.includes(413)) {
        const r = { ...(await pathArgs()), body: { type: "application/json", data: `{"x":"${"a".repeat(70000)}"}` } };
        check("a body over the limit", await send(method.toUpperCase(), path, r), 413);
      }
      if (statuses.includes(415)) {
        const r = { ...(await pathArgs()), body: { type: "text/xml", data: "<x/>" } };
        check("a body of another media type", await send(method.toUpperCase(), path, r), 415);
      }
      // The access rule's.
      if (statuses.includes(401) && op.security.length > 0 && !op.security.some((s: Json) => Object.keys(s).length === 0)) {
        const w = new World(send);
        const r = await scenario.args(w);
        check("no credential", await send(method.toUpperCase(), path, r), 401);
      }
      // An optional credential (one security requirement is empty) is refused only malformed.
      if (statuses.includes(401) && op.security.some((s: Json) => Object.keys(s).length === 0) && op.security.some((s: Json) => "jwtAccessToken" in s)) {
        const w = new World(send);
        const r = merge({ headers: { authorization: "Bearer" } }, await scenario.args(w));
        check("a malformed Bearer credential", await send(method.toUpperCase(), path, r), 401);
      }
      if (statuses.includes(403) && op.security.some((s: Json) => "jwtAccessToken" in s)) {
        const w = new World(send);
        const r = merge({ headers: bearer(await w.refreshDerivedJwt()) }, await scenario.args(w));
        check("a refresh-derived access token", await send(method.toUpperCase(), path, r), 403);
      }
      // The method's own.
      for (const e of scenario.errors ?? []) {
        const address = e.ownAddress ? `127.0.0.${nextAddress++}` : localAddress;
        const sendFrom = (m: string, p: string, r: Request) => request(server.url, m, p, r, address);
        const w = new World(sendFrom);
        const r = await e.request(w);
        if (e.before) {
          for (let i = 0; i < e.before.times; i++) check(`${e.name}: call ${i + 1}`, await sendFrom(method.toUpperCase(), path, await e.before.request(w)), e.before.status);
        } else if (e.status === 429) {
          for (let i = 0; i < maxFailures; i++) {
            const a = await sendFrom(method.toUpperCase(), path, r);
            check(`${e.name}: failure ${i + 1}`, a, 401);
          }
        }
        check(e.name, await sendFrom(method.toUpperCase(), path, r), e.status);
      }

      const unseen = statuses.filter((s) => !seen.has(s) && s !== 500 && s !== 503 && !(notExercised[key] ?? []).includes(s));
      if (unseen.length > 0) failures.push(`${key}: declared ${unseen.join(", ")} but no call answered it`);
      const cookieDeclared = success.some((s) => Object.keys(resolve(op.responses[String(s)]).headers ?? {}).includes("Set-Cookie"));
      if (cookieDeclared && !setsCookie) failures.push(`${key}: declared Set-Cookie but no call answered one`);
    };
  });
}

/** The ways an answer departs from the operation's description. */
function conformance(op: Json, a: Answer, resolve: (x: Json) => Json, validator: (s: Json) => ValidateFunction): string[] {
  const declared = op.responses[String(a.status)];
  if (declared === undefined) return [`status ${a.status} is not declared (${Object.keys(op.responses).join(", ")})`];
  const response = resolve(declared);
  const problems: string[] = [];
  for (const [name, h] of Object.entries<Json>(response.headers ?? {})) {
    const header = resolve(h);
    const value = a.headers[name.toLowerCase()];
    if (value === undefined) {
      if (header.required) problems.push(`missing header ${name}`);
      continue;
    }
    const v = validator(header.schema);
    // Set-Cookie arrives as its lines: each must match.
    for (const line of Array.isArray(value) ? value : [value]) {
      if (!v(line)) problems.push(`header ${name}: ${JSON.stringify(v.errors)}`);
    }
  }
  // A validator the document does not mention is one a client cannot know to use, and a cookie
  // one it cannot know it is given (or that a call ends it).
  const declares = (header: string) => Object.keys(response.headers ?? {}).some((n) => n.toLowerCase() === header);
  if (a.headers.etag !== undefined && !declares("etag")) problems.push(`an ETag (${a.headers.etag}) the document does not declare`);
  if (a.headers["set-cookie"] !== undefined && !declares("set-cookie")) {
    problems.push(`a Set-Cookie (${a.headers["set-cookie"].map((c) => c.split("=", 1)[0]).join(", ")}) the document does not declare`);
  }
  if (response.content === undefined) {
    if (a.text !== "") problems.push(`a body where none is declared: ${a.text.slice(0, 100)}`);
    return problems;
  }
  const type = String(a.headers["content-type"] ?? "");
  const media = response.content[type];
  if (media === undefined) return [...problems, `content type "${type}" is not declared (${Object.keys(response.content).join(", ")})`];
  let body: unknown = a.text;
  if (type.startsWith("application/json")) {
    try {
      body = JSON.parse(a.text);
    } catch {
      return [...problems, `not JSON: ${a.text.slice(0, 100)}`];
    }
  }
  const v = validator(media.schema);
  if (!v(body)) problems.push(`body ${a.text.slice(0, 200)} does not match the schema: ${JSON.stringify(v.errors)}`);
  return problems;
}

function merge(a: Request, b: Request): Request {
  return { ...a, ...b, headers: { ...a.headers, ...b.headers }, query: { ...a.query, ...b.query } };
}

/** Seed 004's argument styles: the query and JSON arguments moved into one style. */
function restyle(r: Request, style: "query" | "json" | "form"): void {
  const args: Record<string, string> = { ...(r.json as Record<string, string> | undefined), ...r.query };
  delete r.json;
  r.query = {};
  if (style === "query") r.query = args;
  else if (style === "json") r.json = args;
  else r.form = args;
}

function request(baseUrl: string, method: string, template: string, r: Request, localAddress: string): Promise<Answer> {
  const path = template.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(r.path?.[name] ?? ""));
  const query = r.query && Object.keys(r.query).length > 0 ? `?${new URLSearchParams(r.query)}` : "";
  const headers: Record<string, string> = { ...r.headers };
  let body: string | undefined;
  if (r.json !== undefined) {
    body = JSON.stringify(r.json);
    headers["content-type"] = "application/json";
  } else if (r.form !== undefined) {
    body = new URLSearchParams(r.form).toString();
    headers["content-type"] = "application/x-www-form-urlencoded";
  } else if (r.body !== undefined) {
    body = r.body.data;
    headers["content-type"] = r.body.type;
  }
  if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path + query, baseUrl), { method, headers, agent: false, localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}
