// Under TLS the session cookie is Secure; TESSERA_COOKIE_SECURE=false turns that off (and =true
// turns it on without TLS, see authentication-token-api.test.ts).
import assert from "node:assert/strict";
import https from "node:https";
import { makeTestCertificate, type TestCertificate } from "../support/net.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { basic, bearer } from "../support/clients.js";
import { password, uniqueEmail } from "../support/users.js";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

function request(server: TestServer, ca: Buffer, method: string, path: string, headers: Record<string, string>, json?: unknown): Promise<Answer> {
  const body = json === undefined ? undefined : JSON.stringify(json);
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${server.url}${path}`,
      { method, ca, headers: { ...headers, ...(body !== undefined && { "content-type": "application/json" }) } },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** Sign-up, user-token login, authentication token, exchange: the exchange's Set-Cookie. */
async function exchangeCookie(server: TestServer, ca: Buffer): Promise<string> {
  const email = uniqueEmail("tls");
  assert.equal((await request(server, ca, "POST", "/user", { "x-koms-clientid": testClientId }, { email, password })).status, 201);
  const login = await request(server, ca, "POST", "/auth/login", basic(email, password));
  assert.equal(login.status, 200);
  const created = await request(server, ca, "GET", "/api/authenticationtoken", bearer(login.body.token));
  assert.equal(created.status, 200);
  const exchanged = await request(server, ca, "GET", `/api/authenticationtoken/${created.body.token}/user`, {});
  assert.equal(exchanged.status, 200);
  const cookies = exchanged.headers["set-cookie"] as string[];
  assert.equal(cookies.length, 1);
  return cookies[0];
}

describe("session cookie under TLS", function () {
  this.timeout(30000);
  let cert: TestCertificate;
  let ca: Buffer;
  let tlsEnv: Record<string, string>;

  before(() => {
    cert = makeTestCertificate();
    ca = cert.ca;
    tlsEnv = cert.env;
  });
  after(() => cert?.remove());

  it("is Secure, HttpOnly, SameSite=Lax, Path=/ with a Max-Age", async () => {
    const server = await startTestServer({ env: tlsEnv });
    try {
      assert.match(server.url, /^https:/);
      const cookie = await exchangeCookie(server, ca);
      assert.match(cookie, /^tessera_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=86400; HttpOnly; SameSite=Lax; Secure$/);
    } finally {
      await server.close();
    }
  });

  // The server's origin is https://<Host>: a page of http://<Host> is another origin, whose
  // POST SameSite=Lax lets carry the cookie in a browser that does not tell schemes apart.
  it("POST /auth/logout with it from a page of the same host over http is refused 403 ORIGIN_NOT_ALLOWED (a browser that sends no Sec-Fetch-Site)", async () => {
    const server = await startTestServer({ env: tlsEnv });
    try {
      const value = /^tessera_session=([^;]+);/.exec(await exchangeCookie(server, ca))![1];
      const { host } = new URL(server.url);
      const fromHttp = await request(server, ca, "POST", "/auth/logout", { cookie: `tessera_session=${value}`, origin: `http://${host}` });
      assert.equal(fromHttp.status, 403, JSON.stringify(fromHttp.body));
      assert.equal(fromHttp.body.details[0].debug.reason, "ORIGIN_NOT_ALLOWED");
      assert.equal((await request(server, ca, "GET", "/api/authenticationtoken", { cookie: `tessera_session=${value}` })).status, 200, "the session lives on");
      const fromHttps = await request(server, ca, "POST", "/auth/logout", { cookie: `tessera_session=${value}`, origin: `https://${host}` });
      assert.equal(fromHttps.status, 200, JSON.stringify(fromHttps.body));
      assert.deepEqual(fromHttps.body, { success: true });
    } finally {
      await server.close();
    }
  });

  it("is not Secure when TESSERA_COOKIE_SECURE=false", async () => {
    const server = await startTestServer({ env: { ...tlsEnv, TESSERA_COOKIE_SECURE: "false" } });
    try {
      const cookie = await exchangeCookie(server, ca);
      assert.doesNotMatch(cookie, /Secure/);
      assert.match(cookie, /HttpOnly; SameSite=Lax$/);
    } finally {
      await server.close();
    }
  });
});
