import { strict as assert } from "node:assert";
import { createServer as createHttp1Server, type Server } from "node:http";
import { connect, createServer, type Http2Server } from "node:http2";
import net, { type AddressInfo } from "node:net";
import { createConnectRouter } from "@connectrpc/connect";
import { PrecedenceService } from "../../gen/transcodetest/v1/library_pb.js";
import { createTranscoder } from "../../src/transcode/index.js";
import { startLibraryServer, type LibraryServer } from "./support/library-server.js";
import { RestH2c } from "../support/rest-h2c.js";

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
    assert.equal(res.headers.get("access-control-allow-headers"), "authorization, content-type");
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

/**
 * One preflight's answer over HTTP/1.1, its request written byte for byte (latin1: a byte past
 * ASCII as sent, which fetch would refuse to send): the status and the headers.
 */
function preflightHttp1(port: number, requestHeaders: string): Promise<{ status: number; headers: Map<string, string> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("end", () => {
      const [head = ""] = Buffer.concat(chunks).toString("latin1").split("\r\n\r\n");
      const [statusLine = "", ...lines] = head.split("\r\n");
      const headers = new Map<string, string>();
      for (const line of lines) {
        const colon = line.indexOf(":");
        headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
      }
      resolve({ status: Number(statusLine.split(" ")[1]), headers });
    });
    socket.end(
      Buffer.from(
        "OPTIONS /v1/users/u1 HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n" +
          `Access-Control-Request-Headers: ${requestHeaders}\r\nConnection: close\r\n\r\n`,
        "latin1",
      ),
    );
  });
}

describe("transcoder CORS: a preflight's Access-Control-Request-Headers, without configured allowed headers", () => {
  let h1: Server;
  let h2: Http2Server;
  let h2c: RestH2c;
  before(async () => {
    const router = createConnectRouter();
    router.service(PrecedenceService, { getUser: (req) => ({ id: req.id, displayName: "cors" }) });
    const t = createTranscoder({ services: [{ service: PrecedenceService }], handlers: router.handlers, corsOrigins: ["https://app.example"] });
    h1 = createHttp1Server((req, res) => void t.handle(req, res));
    h2 = createServer((req, res) => void t.handle(req, res));
    await Promise.all([h1, h2].map((s) => new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve))));
    h2c = new RestH2c(`http://127.0.0.1:${(h2.address() as AddressInfo).port}`);
  });
  after(async () => {
    h2c.close();
    await Promise.all([h1, h2].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });

  const names = (n: number) => Array.from({ length: n }, (_, i) => `x-h${i}`);
  // What is asked, and the one Access-Control-Allow-Headers answered (none: undefined).
  const cases: Array<[string, string, string | undefined]> = [
    ["as a browser sends it", "authorization,content-type", "authorization, content-type"],
    ["white space around names, names in any case, one twice", "X-Trace-Id ,\tAuthorization, x-trace-id", "x-trace-id, authorization"],
    ["32 names", names(32).join(","), names(32).join(", ")],
    ["a name of 64 characters", `x-${"a".repeat(62)}`, `x-${"a".repeat(62)}`],
    ["33 names", names(33).join(","), undefined],
    ["a name of 65 characters", `x-${"a".repeat(63)}`, undefined],
    ["a name of 10 000 characters", `x-${"a".repeat(9998)}`, undefined],
    ["a tab within a name", "x-a\tx-b", undefined],
    ["quotes and angle brackets", 'x-a"<script>', undefined],
    ["a byte past ASCII", "x-caf\u00e9", undefined],
    ["a space within a name", "x-a x-b", undefined],
    ["a star", "*", undefined],
    ["a star among names", "authorization,*", undefined],
  ];

  for (const [what, asked, allowed] of cases) {
    it(`${what}: over HTTP/1.1 and h2c alike`, async () => {
      const one = await preflightHttp1((h1.address() as AddressInfo).port, asked);
      const two = await h2c.request("OPTIONS", "/v1/users/u1", {
        headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": asked },
      });
      for (const [protocol, status, header] of [
        ["HTTP/1.1", one.status, (name: string) => one.headers.get(name)],
        ["h2c", two.status, (name: string) => two.headers.get(name) ?? undefined],
      ] as const) {
        assert.deepEqual(
          [status, header("access-control-allow-origin"), header("access-control-allow-headers"), header("vary")],
          [204, "https://app.example", allowed, "Origin, Access-Control-Request-Headers"],
          protocol,
        );
      }
    });
  }
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
