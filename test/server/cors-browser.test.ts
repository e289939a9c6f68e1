// Browsers on every protocol, in a real one (Debian's chromium, driven by playwright-core): a
// page served from another origin calls Tessera with fetch over REST, Connect (POST and GET)
// and gRPC-Web, custom headers and all (so the browser sends its preflights), and reads what
// its scripts may read: the status, WWW-Authenticate, the error details. A page from an origin
// TESSERA_CORS_ORIGINS does not list cannot read anything. A page of another origin of the same
// site, which the browser sends the session cookie from, cannot log that session out; a logout
// from Tessera's own origin of a session that has already ended leaves the browser without the cookie.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { bearer, rest } from "../support/clients.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { createAuthenticationToken, loginUserToken, signUp, uniqueEmail } from "../support/users.js";

const executablePath = "/usr/bin/chromium";

/** A page server on its own port (so its own origin): every path is an empty page. */
async function pageServer(): Promise<{ origin: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>app</title>");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { origin: `http://localhost:${(server.address() as AddressInfo).port}`, server };
}

/** What each call lets the page's script see. */
interface Seen {
  status?: number;
  wwwAuthenticate?: string | null;
  reason?: string;
  body?: string;
  error?: string;
}

/**
 * The four calls, as the page's own script (plain JavaScript text: the test's compiler must not
 * rewrite it with helpers the page does not have).
 */
const pageScript = `async ({ tessera, clientId }) => {
  const seen = {};
  const reasonOf = (body) => (body.details || []).filter((d) => d.type === "google.rpc.ErrorInfo").map((d) => d.debug && d.debug.reason)[0];
  const attempt = async (name, f) => {
    try { seen[name] = await f(); } catch (e) { seen[name] = { error: String(e) }; }
  };
  await attempt("rest", async () => {
    const res = await fetch(tessera + "/session", { headers: { "x-koms-clientid": clientId } });
    return { status: res.status, wwwAuthenticate: res.headers.get("www-authenticate"), reason: reasonOf(await res.json()) };
  });
  await attempt("connect", async () => {
    const res = await fetch(tessera + "/tessera.session.v1.SessionService/GetSession", {
      method: "POST",
      headers: { "content-type": "application/json", "connect-protocol-version": "1", "connect-timeout-ms": "5000", "x-koms-clientid": clientId },
      body: "{}",
    });
    return { status: res.status, wwwAuthenticate: res.headers.get("www-authenticate"), reason: reasonOf(await res.json()) };
  });
  await attempt("connect-get", async () => {
    const res = await fetch(tessera + "/tessera.jwt.v1.JwtService/GetVersion?connect=v1&encoding=json&message=%7B%7D");
    return { status: res.status, body: await res.text() };
  });
  await attempt("grpc-web", async () => {
    const res = await fetch(tessera + "/tessera.session.v1.SessionService/GetSession", {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", "x-user-agent": "grpc-web-javascript/0.1", "grpc-timeout": "5S", "x-koms-clientid": clientId },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    // The trailers are the body's last envelope: "grpc-status:16\\r\\n...".
    const bytes = new Uint8Array(await res.arrayBuffer());
    return { status: res.status, body: new TextDecoder("latin1").decode(bytes.subarray(5)) };
  });
  return seen;
}`;

/** Runs the four calls in the page, against `tessera`. */
function calls(page: Page, tessera: string, clientId: string): Promise<Record<string, Seen>> {
  return page.evaluate(`(${pageScript})(${JSON.stringify({ tessera, clientId })})`) as Promise<Record<string, Seen>>;
}

describe("CORS in a browser: every protocol from another origin", function () {
  this.timeout(120000);
  let tessera: TestServer;
  let allowed: { origin: string; server: Server };
  let other: { origin: string; server: Server };
  let context: BrowserContext;
  let profile: string;
  /** The other page server, reached by Tessera's host: another origin of Tessera's site (a port is no part of a site). */
  const sameSite = () => other.origin.replace("//localhost:", `//${new URL(tessera.url).hostname}:`);

  before(async function () {
    if (!existsSync(executablePath)) {
      if (process.env.CI === "true") throw new Error(`${executablePath} is missing (.ci/run installs Debian's chromium)`);
      this.skip();
    }
    allowed = await pageServer();
    other = await pageServer();
    tessera = await startTestServer({ env: { TESSERA_CORS_ORIGINS: allowed.origin } });
    profile = mkdtempSync(join(tmpdir(), "tessera-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    // Nothing but the two local servers.
    const local = [allowed.origin, other.origin, sameSite(), new URL(tessera.url).origin];
    await context.route("**/*", (route) => (local.some((o) => route.request().url().startsWith(o + "/")) ? route.continue() : route.abort()));
  });

  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await tessera?.close();
    allowed?.server.close();
    other?.server.close();
  });

  it("from an allowed origin: REST, Connect, Connect GET and gRPC-Web answer, and the page reads the challenge and the reason", async () => {
    const page = await context.newPage();
    await page.goto(`${allowed.origin}/app`);
    const seen = await calls(page, tessera.url, testClientId);
    assert.deepEqual(seen.rest, { status: 401, wwwAuthenticate: "Bearer", reason: "MISSING_CREDENTIAL" });
    assert.deepEqual(seen.connect, { status: 401, wwwAuthenticate: "Bearer", reason: "MISSING_CREDENTIAL" });
    assert.equal(seen["connect-get"]!.status, 200);
    assert.match(seen["connect-get"]!.body!, /^\{"version":"\d+\.\d+\.\d+/);
    assert.equal(seen["grpc-web"]!.status, 200);
    assert.match(seen["grpc-web"]!.body!, /grpc-status: ?16\r\n/);
    await page.close();
  });

  it("from another origin: every call is refused by the browser", async () => {
    const page = await context.newPage();
    await page.goto(`${other.origin}/app`);
    const seen = await calls(page, tessera.url, testClientId);
    for (const name of ["rest", "connect", "connect-get", "grpc-web"]) {
      assert.match(seen[name]!.error ?? "", /TypeError: Failed to fetch/, `${name}: ${JSON.stringify(seen[name])}`);
    }
    await page.close();
  });

  it("the session cookie: a no-preflight POST /auth/logout from a page of another origin of the same site leaves the session live; one from Tessera's own origin ends it", async () => {
    const email = uniqueEmail("browser");
    await signUp(tessera, email);
    const userToken = await loginUserToken(tessera, email);
    const exchange = async () => {
      const link = await createAuthenticationToken(tessera, bearer(userToken));
      const page = await context.newPage();
      await page.goto(`${tessera.url}/api/authenticationtoken/${link}/user`);
      await page.close();
      const cookie = (await context.cookies(tessera.url)).find((c) => c.name === "tessera_session");
      assert.ok(cookie, "the exchange set the cookie");
      return cookie.value;
    };
    const live = async (value: string) => (await rest(tessera.url, "GET", "/api/authenticationtoken", { headers: { cookie: `tessera_session=${value}` } })).status;
    // A text/plain POST needs no preflight, and a no-cors fetch sends the cookie as a form would.
    const logout = `async (url) => { const res = await fetch(url, { method: "POST", mode: "no-cors", credentials: "include", headers: { "content-type": "text/plain" }, body: "{}" }); return res.type; }`;
    const value = await exchange();
    const sibling = await context.newPage();
    await sibling.goto(`${sameSite()}/app`);
    assert.equal(await sibling.evaluate(`(${logout})(${JSON.stringify(`${tessera.url}/auth/logout`)})`), "opaque");
    await sibling.close();
    assert.equal(await live(value), 200, "the session lives on");
    const own = await context.newPage();
    await own.goto(`${tessera.url}/healthz`);
    assert.equal(await own.evaluate(`(${logout})("/auth/logout")`), "basic");
    await own.close();
    assert.equal(await live(value), 401, "the logout from Tessera's own origin ended it");
  });

  // A logout is the call whose purpose is to end the browser's session: one refused because the
  // session had already ended elsewhere must not leave the browser holding its dead cookie.
  it("the session cookie: a logout from Tessera's own origin of a session that has already ended (401) removes the cookie from the browser, over REST and gRPC-Web", async () => {
    const email = uniqueEmail("browser");
    await signUp(tessera, email);
    const held = async () => (await context.cookies(tessera.url)).find((c) => c.name === "tessera_session");
    // The page's scripts: the logout's status (REST), or the grpc-status of its trailer envelope (gRPC-Web).
    const logouts: [string, string, number | string][] = [
      ["rest", `async () => (await fetch("/auth/logout", { method: "POST" })).status`, 401],
      [
        "grpc-web",
        `async () => { const res = await fetch("/tessera.usertoken.v1.UserTokenService/Logout", { method: "POST", headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" }, body: new Uint8Array(5) }); return /grpc-status: ?(\\d+)/.exec(new TextDecoder().decode(await res.arrayBuffer()))[1]; }`,
        "16",
      ],
    ];
    for (const [protocol, logout, refused] of logouts) {
      const userToken = await loginUserToken(tessera, email);
      const page = await context.newPage();
      await page.goto(`${tessera.url}/api/authenticationtoken/${await createAuthenticationToken(tessera, bearer(userToken))}/user`);
      assert.ok(await held(), `${protocol}: the exchange set the cookie`);
      // Ended elsewhere: the user token it came from is logged out.
      assert.equal((await rest(tessera.url, "POST", "/auth/logout", { headers: bearer(userToken) })).status, 200);
      await page.goto(`${tessera.url}/healthz`);
      assert.equal(await page.evaluate(`(${logout})()`), refused, protocol);
      await page.close();
      assert.equal(await held(), undefined, `${protocol}: the browser no longer holds the cookie`);
    }
  });
});
