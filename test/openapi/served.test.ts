// GET /openapi.json and GET /docs as a client sees them: the committed document, public and
// cacheable; adapted to the APIs a deployment serves and where; the page and its files from
// this server only, under a strict Content-Security-Policy.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import http from "node:http";
import SwaggerParser from "@apidevtools/swagger-parser";
import { startTestServer, type TestServer } from "../support/server.js";
import { decodedBody, tesseraDetails } from "../support/error-details.js";

const committed = JSON.parse(readFileSync("gen/openapi.json", "utf8"));

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** node:http, so that compression and HEAD are seen as sent. */
function get(url: string, method = "GET", headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("GET /openapi.json and GET /docs", function () {
  this.timeout(30000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });

  it("GET /openapi.json: the committed document, public and cacheable", async () => {
    const a = await get(`${server.url}/openapi.json`);
    assert.equal(a.status, 200);
    assert.equal(a.headers["content-type"], "application/json");
    assert.equal(a.headers["cache-control"], "public, max-age=300");
    assert.equal(a.headers["x-content-type-options"], "nosniff");
    assert.match(a.headers.etag ?? "", /^"[A-Za-z0-9_-]{27}"$/);
    assert.equal(a.headers["content-length"], String(a.body.length));
    assert.deepEqual(JSON.parse(a.body.toString("utf8")), committed);
  });

  it("answers a matching If-None-Match with 304 and no body, HEAD without a body, gzip when asked", async () => {
    const first = await get(`${server.url}/openapi.json`);
    const again = await get(`${server.url}/openapi.json`, "GET", { "if-none-match": first.headers.etag! });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
    const head = await get(`${server.url}/openapi.json`, "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.headers["content-length"], first.headers["content-length"]);
    assert.equal(head.body.length, 0);
    const zipped = await get(`${server.url}/openapi.json`, "GET", { "accept-encoding": "gzip" });
    assert.equal(zipped.headers["content-encoding"], "gzip");
    assert.equal(zipped.headers.vary, "accept-encoding");
    assert.notEqual(zipped.headers.etag, first.headers.etag, "the gzip representation has its own entity tag");
    assert.deepEqual(gunzipSync(zipped.body), first.body);
  });

  it("reads Accept-Encoding's weights (RFC 9110 12.5.3): gzip refused with q=0 is not sent, any case of the name is taken", async () => {
    const plain = await get(`${server.url}/openapi.json`);
    for (const [acceptEncoding, gzip] of [
      ["gzip;q=0", false],
      ["br, gzip; q=0.000", false],
      ["gzip;q=0, *", false],
      ["GZIP", true],
      ["gzip;q=0.5", true],
      ["x-gzip", true],
      ["*", true],
      ["*;q=0", false],
      ["identity", false],
      ["deflate, br", false],
    ] as const) {
      const a = await get(`${server.url}/openapi.json`, "GET", { "accept-encoding": acceptEncoding });
      assert.equal(a.status, 200);
      assert.equal(a.headers["content-encoding"], gzip ? "gzip" : undefined, acceptEncoding);
      assert.deepEqual(gzip ? gunzipSync(a.body) : a.body, plain.body, acceptEncoding);
    }
  });

  it("refuses other methods with 405 and Allow", async () => {
    for (const path of ["/openapi.json", "/docs"]) {
      const a = await get(`${server.url}${path}`, "POST");
      assert.equal(a.status, 405);
      assert.equal(a.headers.allow, "GET, HEAD");
      assert.deepEqual(decodedBody(JSON.parse(a.body.toString())), { code: "unimplemented", message: `POST is not allowed on ${path}`, details: tesseraDetails("METHOD_NOT_ALLOWED") });
    }
  });

  it("GET /docs: an HTML page under a strict CSP that loads only this server's files", async () => {
    const a = await get(`${server.url}/docs`);
    assert.equal(a.status, 200);
    assert.equal(a.headers["content-type"], "text/html; charset=utf-8");
    assert.equal(
      a.headers["content-security-policy"],
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    assert.equal(a.headers["referrer-policy"], "no-referrer");
    const html = a.body.toString("utf8");
    const loaded = [...html.matchAll(/<(?:script|link)\b[^>]*\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]);
    assert.deepEqual(loaded, ["data:,", "/docs/swagger-ui.css", "/docs/docs.css", "/docs/swagger-ui-bundle.js", "/docs/docs.js"]);
    assert.doesNotMatch(html, /<script>|<style>|\bstyle="/, "nothing inline");
    assert.match(html, /<h3 id="rpc-tessera.session.v1.SessionService">tessera.session.v1.SessionService<\/h3>/);
    assert.match(html, /<td><code>GetSession<\/code><\/td><td><code>GET \/session<\/code><\/td>/);
  });

  it("serves Swagger UI's files from node_modules", async () => {
    const dir = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
    for (const [path, file, type] of [
      ["/docs/swagger-ui-bundle.js", "swagger-ui-bundle.js", "text/javascript; charset=utf-8"],
      ["/docs/swagger-ui.css", "swagger-ui.css", "text/css; charset=utf-8"],
    ]) {
      const a = await get(`${server.url}${path}`);
      assert.equal(a.status, 200);
      assert.equal(a.headers["content-type"], type);
      assert.deepEqual(a.body, readFileSync(join(dir, file)));
    }
    const start = await get(`${server.url}/docs/docs.js`);
    assert.match(start.body.toString(), /url: "\/openapi.json"/);
    assert.match(start.body.toString(), /validatorUrl: null/, "no call to an outside validator");
  });
});

describe("GET /openapi.json and GET /docs with CORS enabled", function () {
  this.timeout(30000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { TESSERA_CORS_ORIGINS: "https://app.example" } });
  });
  after(async () => {
    await server?.close();
  });

  // The answer is public and cacheable, and whether it carries Access-Control-Allow-Origin
  // depends on Origin: a shared cache must key it on Origin as well as on Accept-Encoding.
  it("varies with Origin as well as Accept-Encoding, whatever the Origin and encoding", async () => {
    for (const path of ["/openapi.json", "/docs", "/docs/docs.js"]) {
      for (const origin of [{ origin: "https://app.example" }, { origin: "https://other.example" }, {}] as Array<Record<string, string>>) {
        for (const encoding of [{ "accept-encoding": "gzip" }, {}] as Array<Record<string, string>>) {
          const a = await get(`${server.url}${path}`, "GET", { ...origin, ...encoding });
          assert.equal(a.status, 200);
          assert.equal(a.headers.vary, "Origin, accept-encoding", `${path} ${JSON.stringify({ ...origin, ...encoding })}`);
          assert.equal(a.headers["access-control-allow-origin"], origin.origin === "https://app.example" ? origin.origin : undefined);
          const again = await get(`${server.url}${path}`, "GET", { ...origin, ...encoding, "if-none-match": a.headers.etag! });
          assert.equal(again.status, 304);
          assert.equal(again.headers.vary, "Origin, accept-encoding");
        }
      }
    }
  });
});

describe("GET /openapi.json of a deployment that mounts the JWT API at / without the Session API", function () {
  this.timeout(30000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { TESSERA_JWT_BASE_PATH: "/", TESSERA_SESSION_API: "false" } });
  });
  after(async () => {
    await server?.close();
  });

  it("lists the JWT API under / and no Session API operation, and is still valid", async () => {
    const doc = JSON.parse((await get(`${server.url}/openapi.json`)).body.toString("utf8"));
    const paths = Object.keys(doc.paths);
    assert.ok(paths.includes("/token") && paths.includes("/user") && paths.includes("/refresh_token"));
    assert.ok(!paths.some((p) => p.startsWith("/jwt/")));
    assert.ok(!paths.includes("/session"));
    assert.deepEqual(Object.keys(doc.paths["/user"]).sort(), ["delete", "get", "patch", "post"]);
    assert.equal(doc.paths["/user"].get["x-rpc"], "tessera.jwt.v1.JwtService/GetUser");
    assert.ok(!doc.tags.some((t: any) => t.name.startsWith("tessera.session.v1.")));
    // What it lists is served: seed 004's GET /token without arguments is its documented 400.
    const a = await get(`${server.url}/token`);
    assert.equal(a.status, 400);
    await SwaggerParser.validate(doc);
  });
});
