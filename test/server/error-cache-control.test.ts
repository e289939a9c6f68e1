// An error is never cacheable: every error answer says `Cache-Control: no-store` (and `Pragma:
// no-cache`), whoever writes it (the REST transcoder, the dispatcher's and the listener's own
// refusals, the probes, the docs, the admin routes, Connect and gRPC-Web), also for a public
// method, whose successes are cacheable. A shared cache may store a 404, 405, 410, 414 or 501
// without any freshness given (RFC 9111 4.2.2), and would serve one caller's refusal to all.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Code } from "@connectrpc/connect";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { raw } from "../hostile/support.js";
import { connectClient, connectError, GrpcJsClient, grpcWebClient, rest, type RestResponse } from "../support/clients.js";
import { RestH2c } from "../support/rest-h2c.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";

/** An error request over REST, and the status it is answered with. */
interface ErrorRequest {
  what: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  status: number;
}

const jwtVersionGet = "/tessera.jwt.v1.JwtService/GetVersion?connect=v1&encoding=json&message=%7B%7D";

const restErrors: ErrorRequest[] = [
  { what: "GET /jwt/pubkey under HS256 (a public method's error)", method: "GET", path: "/jwt/pubkey", status: 404 },
  { what: "GET /jwt/version past its deadline (a public method's error)", method: "GET", path: "/jwt/version", headers: { "connect-timeout-ms": "0" }, status: 504 },
  { what: "an unknown route", method: "GET", path: "/no-such-route", status: 404 },
  { what: "a method the route does not take", method: "DELETE", path: "/jwt/version", status: 405 },
  { what: "an unknown query parameter", method: "GET", path: "/jwt/version?bogus=1", status: 400 },
  { what: "a missing credential", method: "GET", path: "/jwt/refresh_token", status: 401 },
  { what: "a body over the limit", method: "POST", path: "/jwt/user", headers: { "content-type": "application/json" }, body: `{"user":"${"x".repeat(2048)}"}`, status: 413 },
  { what: "a content type the route does not take", method: "POST", path: "/jwt/user", headers: { "content-type": "text/csv" }, body: "a,b", status: 415 },
  { what: "an admin route without the admin token", method: "GET", path: "/v1/admin/audit-events", status: 401 },
  { what: "a probe's method not allowed", method: "POST", path: "/healthz", status: 405 },
  { what: "the docs' method not allowed", method: "POST", path: "/openapi.json", status: 405 },
  { what: "a Connect GET of a method that does not exist", method: "GET", path: "/tessera.jwt.v1.JwtService/NoSuchMethod?connect=v1&encoding=json&message=%7B%7D", status: 404 },
  { what: "a Connect GET of a public method past its deadline", method: "GET", path: jwtVersionGet, headers: { "connect-timeout-ms": "0" }, status: 504 },
  { what: "a Connect GET of a public method that fails (HS256: no public key)", method: "GET", path: "/tessera.jwt.v1.JwtService/GetPublicKey?connect=v1&encoding=json&message=%7B%7D", status: 404 },
  { what: "a Connect POST whose JSON does not parse", method: "POST", path: "/tessera.jwt.v1.JwtService/GetVersion", headers: { "content-type": "application/json" }, body: "{", status: 400 },
  { what: "a Connect POST of an unsupported content type", method: "POST", path: "/tessera.jwt.v1.JwtService/GetVersion", headers: { "content-type": "text/csv", "connect-protocol-version": "1" }, body: "a", status: 415 },
];

function assertNotStored(what: string, status: number, expected: number, header: (name: string) => string | null | undefined): void {
  assert.equal(status, expected, `${what}: status`);
  assert.equal(header("cache-control"), "no-store", `${what}: Cache-Control`);
  assert.equal(header("pragma"), "no-cache", `${what}: Pragma`);
}

const secret = "an HS256 secret that is long enough: 0123456789";

for (const store of storesUnderTest()) {
  describe(`Error answers are not cacheable on ${store}`, () => {
    let server: TestServer;
    before(async () => (server = await startTestServer({ store, env: { TESSERA_JWT_ALG: "HS256", TESSERA_JWT_SECRET: secret, TESSERA_BODY_LIMIT_BYTES: "1024" } })));
    after(() => server.close());

    describe("REST and Connect over HTTP/1.1 (fetch)", () => {
      for (const r of restErrors) {
        it(`${r.status}: ${r.what}`, async () => {
          const res: RestResponse = await rest(server.url, r.method, r.path, { headers: r.headers, body: r.body });
          assertNotStored(r.what, res.status, r.status, (name) => res.headers.get(name));
        });
      }
    });

    describe("REST and Connect over h2c", () => {
      let h2c: RestH2c;
      before(() => (h2c = new RestH2c(server.url)));
      after(() => h2c.close());
      for (const r of restErrors) {
        it(`${r.status}: ${r.what}`, async () => {
          const res = await h2c.request(r.method, r.path, { headers: r.headers, body: r.body });
          assertNotStored(r.what, res.status, r.status, (name) => res.headers.get(name));
        });
      }
    });

    describe("what the listener and the HTTP/1.1 parser refuse (node:http)", () => {
      it("501: a body in a transfer coding other than chunked", async () => {
        const res = await raw(server.url, "POST", "/jwt/user", { "transfer-encoding": "gzip, chunked", "content-type": "application/json" });
        assertNotStored("transfer coding gzip", res.status, 501, (name) => res.headers[name] as string | undefined);
      });
      it("431: a header block over 16 KiB (written by the listener as bytes)", async () => {
        const res = await raw(server.url, "GET", "/jwt/version", { "x-filler": "y".repeat(20_000) });
        assertNotStored("a header block over the limit", res.status, 431, (name) => res.headers[name] as string | undefined);
      });
    });

    describe("Connect and gRPC-Web clients (connect-node, HTTP/1.1)", () => {
      it("Connect: an RPC error carries no-store in its headers", async () => {
        const e = await connectError(connectClient(JwtService, server.url).getRefreshToken({}));
        assert.equal(e.code, Code.Unauthenticated);
        assert.equal(e.metadata.get("cache-control"), "no-store", "Cache-Control");
        assert.equal(e.metadata.get("pragma"), "no-cache", "Pragma");
      });
      it("Connect: a public method's error (HS256: no public key)", async () => {
        const e = await connectError(connectClient(JwtService, server.url).getPublicKey({}));
        assert.equal(e.code, Code.NotFound);
        assert.equal(e.metadata.get("cache-control"), "no-store", "Cache-Control");
      });
      it("gRPC-Web: an RPC error's answer carries no-store in its headers", async () => {
        const e = await connectError(grpcWebClient(JwtService, server.url).getRefreshToken({}));
        assert.equal(e.code, Code.Unauthenticated);
        assert.equal(e.metadata.get("cache-control"), "no-store", "Cache-Control");
        assert.equal(e.metadata.get("pragma"), "no-cache", "Pragma");
      });
    });

    describe("gRPC clients (@grpc/grpc-js, HTTP/2)", () => {
      it("gRPC: an error carries no Cache-Control (no HTTP cache stores a gRPC answer); a success carries its method's", async () => {
        const client = new GrpcJsClient(JwtService, server.url);
        try {
          const refused = await client.call("GetRefreshToken", {});
          assert.equal(refused.error?.code, grpc.status.UNAUTHENTICATED);
          assert.deepEqual([...(refused.header?.get("cache-control") ?? []), ...(refused.trailer?.get("cache-control") ?? [])], [], "Cache-Control of the error");
          const version = await client.call("GetVersion", {});
          assert.equal(version.error, undefined);
          assert.deepEqual(version.header?.get("cache-control"), ["public, max-age=60"]);
        } finally {
          client.close();
        }
      });
    });
  });
}
