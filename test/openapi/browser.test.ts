// GET /docs in a real headless browser (Debian's chromium, driven by playwright-core): the
// operations render, the Connect/gRPC section is there, the page breaks none of its own
// Content-Security-Policy, and no request leaves the server.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { makeTestCertificate, type TestCertificate } from "../support/net.js";
import { startTestServer, type TestServer } from "../support/server.js";

const executablePath = "/usr/bin/chromium";

describe("GET /docs in a browser", function () {
  this.timeout(120000);
  let server: TestServer;
  let tlsServer: TestServer;
  let cert: TestCertificate;
  let context: BrowserContext;
  let profile: string;
  const requests: string[] = [];
  const problems: string[] = [];

  before(async function () {
    if (!existsSync(executablePath)) {
      if (process.env.CI === "true") throw new Error(`${executablePath} is missing (.ci/run installs Debian's chromium)`);
      this.skip();
    }
    server = await startTestServer();
    cert = makeTestCertificate();
    tlsServer = await startTestServer({ env: cert.env });
    profile = mkdtempSync(join(tmpdir(), "tessera-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      ignoreHTTPSErrors: true, // the TLS server's certificate is self-signed
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    const origins = [server.url, tlsServer.url].map((u) => new URL(u).origin);
    // Every request is recorded; one for another origin is refused, so nothing leaves the machine.
    await context.route("**/*", (route) => {
      const url = route.request().url();
      requests.push(url);
      return origins.some((o) => url.startsWith(o + "/")) || url.startsWith("data:") ? route.continue() : route.abort();
    });
  });

  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await server?.close();
    await tlsServer?.close();
    cert?.remove();
  });

  it("renders the operations and the Connect/gRPC calls, with no request off the server and no CSP violation", async () => {
    const page = await context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    const answer = await page.goto(`${server.url}/docs`);
    assert.equal(answer?.status(), 200);
    assert.match(answer!.headers()["content-security-policy"] ?? "", /default-src 'none'/);

    // Swagger UI's operations, from /openapi.json.
    const operation = page.locator(".opblock", { hasText: "/session" }).filter({ hasText: "Starts a session for a user with a password" });
    await operation.first().waitFor({ state: "visible", timeout: 60000 });
    assert.equal(await page.locator(".opblock-summary-method", { hasText: "POST" }).first().isVisible(), true);
    assert.equal(await page.locator(".opblock-summary-path", { hasText: "/jwt/token" }).first().isVisible(), true);
    const document = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const methods = new Set(["get", "put", "post", "delete", "patch", "head", "options"]);
    const documented = Object.values(document.paths).reduce((n, item) => n + Object.keys(item).filter((k) => methods.has(k)).length, 0);
    assert.ok(documented >= 31, `${documented} operations documented`);
    const operations = await page.locator(".opblock").count();
    assert.equal(operations, documented, "every operation of the document is rendered");

    // The Connect/gRPC section, beside it.
    const rpc = page.locator("#rpc");
    assert.equal(await rpc.locator("h3", { hasText: "tessera.jwt.v1.JwtService" }).isVisible(), true);
    // Its buf curl lines name the server the page came from, not the document's example address.
    const origin = new URL(server.url).origin;
    assert.equal(
      await rpc.getByText(`buf curl --http2-prior-knowledge -d '{"user":"","pass":""}' ${origin}/tessera.jwt.v1.JwtService/GetToken`, { exact: true }).isVisible(),
      true,
    );
    assert.equal(await rpc.getByText(`buf curl --http2-prior-knowledge --list-services ${origin}`, { exact: true }).isVisible(), true);
    assert.equal(await rpc.getByText("localhost:8080").count(), 0);

    // Open one operation: its details render too (parameters, responses).
    await page.locator(".opblock-summary-path", { hasText: "/jwt/token" }).first().click();
    await page.locator(".opblock.is-open .responses-table").first().waitFor({ state: "visible" });

    assert.ok(requests.includes(`${origin}/openapi.json`), "the page loaded the document from the server");
    assert.deepEqual(requests.filter((u) => !u.startsWith(origin + "/") && !u.startsWith("data:")), [], "no request left the server");
    assert.deepEqual(problems, [], "no console error, CSP violation or page error");
  });

  it("over TLS, its buf curl lines name the https origin without --http2-prior-knowledge (buf curl negotiates HTTP/2 by ALPN)", async () => {
    const page = await context.newPage();
    const answer = await page.goto(`${tlsServer.url}/docs`);
    assert.equal(answer?.status(), 200);
    const origin = new URL(tlsServer.url).origin;
    assert.equal(new URL(origin).protocol, "https:");
    const rpc = page.locator("#rpc");
    await rpc.getByText(`buf curl -d '{"user":"","pass":""}' ${origin}/tessera.jwt.v1.JwtService/GetToken`, { exact: true }).waitFor({ state: "visible" });
    assert.equal(await rpc.getByText(`buf curl --list-services ${origin}`, { exact: true }).isVisible(), true);
    assert.equal(await rpc.getByText("--http2-prior-knowledge").count(), 0);
    await page.close();
  });
});
