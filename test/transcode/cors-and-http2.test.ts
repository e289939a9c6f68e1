import { strict as assert } from "node:assert";
import { connect, createServer, type Http2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { createConnectRouter } from "@connectrpc/connect";
import { PrecedenceService } from "../../gen/transcodetest/v1/library_pb.js";
import { createTranscoder } from "../../src/transcode/index.js";
import { startLibraryServer, type LibraryServer } from "./support/library-server.js";

describe("transcoder CORS", () => {
  let server: LibraryServer;
  before(async () => {
    server = await startLibraryServer({ corsOrigins: ["https://app.example"] });
  });
  after(() => server.close());

  it("answers a preflight from an allowed origin before routing", async () => {
    const res = await fetch(`${server.url}/not/even/a/route`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "https://app.example");
    assert.equal(res.headers.get("access-control-allow-headers"), "authorization,content-type");
    assert.equal(res.headers.get("access-control-allow-credentials"), "true");
    assert.match(res.headers.get("access-control-allow-methods")!, /POST/);
    // The allowed headers are the ones asked for, so the answer varies with them too.
    assert.equal(res.headers.get("vary"), "Origin, Access-Control-Request-Headers");
  });

  it("refuses a preflight from another origin", async () => {
    const res = await fetch(`${server.url}/v1/items`, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
    });
    assert.equal(res.status, 403);
    assert.equal(res.headers.get("access-control-allow-origin"), null);
    assert.equal(res.headers.get("vary"), "Origin, Access-Control-Request-Headers");
  });

  it("refuses a preflight from an Origin of 2000 characters or holding a URL's password, quoting it as a request's text is quoted", async () => {
    const cases: Array<[string, string]> = [
      [`https://${"a".repeat(1984)}.example`, `origin "https://${"a".repeat(56)}"... (2000 characters) is not allowed`],
      ["https://ada:hunter2@evil.example", 'origin "https://ada:<hidden>@evil.example" is not allowed'],
      ["https://evil.example", "origin https://evil.example is not allowed"],
    ];
    for (const [origin, message] of cases) {
      const res = await fetch(`${server.url}/v1/items`, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST" } });
      assert.equal(res.status, 403);
      const body = (await res.json()) as { code: string; message: string };
      assert.deepEqual([body.code, body.message], ["permission_denied", message]);
    }
  });

  it("marks answers to an allowed origin, errors included", async () => {
    const ok = await fetch(`${server.url}/v1/items/1`, { headers: { origin: "https://app.example" } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get("access-control-allow-origin"), "https://app.example");
    assert.equal(ok.headers.get("vary"), "Origin, Access-Control-Request-Headers");
    assert.equal(ok.headers.get("access-control-expose-headers"), "www-authenticate, retry-after");
    const missing = await fetch(`${server.url}/nope`, { headers: { origin: "https://app.example" } });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get("access-control-allow-origin"), "https://app.example");
    const other = await fetch(`${server.url}/v1/items/1`, { headers: { origin: "https://evil.example" } });
    assert.equal(other.headers.get("access-control-allow-origin"), null);
    // The answer without Origin depends on Origin as much: a cache must not serve it to a page.
    for (const res of [other, await fetch(`${server.url}/v1/items/1`)]) {
      assert.equal(res.headers.get("vary"), "Origin, Access-Control-Request-Headers");
      assert.equal(res.headers.get("access-control-expose-headers"), null);
    }
  });
});

describe("transcoder over HTTP/2", () => {
  let h2: Http2Server;
  let url: string;
  const seen: string[] = [];
  before(async () => {
    const router = createConnectRouter();
    router.service(PrecedenceService, {
      getUser: (req, ctx) => {
        seen.push(`${req.id} ${ctx.requestHeader.get("x-h2")}`);
        return { id: req.id, displayName: "h2" };
      },
    });
    const t = createTranscoder({ services: [{ service: PrecedenceService }], handlers: router.handlers });
    h2 = createServer((req, res) => void t.handle(req, res));
    await new Promise<void>((resolve) => h2.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(h2.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => h2.close(() => resolve())));

  it("serves a route on an h2c stream, pseudo-headers dropped", async () => {
    const session = connect(url);
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ":method": "GET", ":path": "/v1/users/u%201", "x-h2": "yes" });
        let status = 0;
        let body = "";
        stream.on("response", (h) => (status = Number(h[":status"])));
        stream.setEncoding("utf8");
        stream.on("data", (d: string) => (body += d));
        stream.on("end", () => resolve({ status, body }));
        stream.on("error", reject);
        stream.end();
      });
      assert.equal(status, 200);
      assert.deepEqual(JSON.parse(body), { id: "u 1", displayName: "h2", count: "0", labels: [], color: "COLOR_UNSPECIFIED" });
      assert.deepEqual(seen, ["u 1 yes"]);
    } finally {
      session.close();
    }
  });
});
