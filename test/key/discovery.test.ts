// GET /.well-known/openid-configuration: a library that starts from the issuer finds the keys.
// Checked as such a library does: jose's createRemoteJWKSet on the `jwks_uri` the document
// names, verifying real tokens Tessera issued with the document's `issuer`.
import assert from "node:assert/strict";
import { createRemoteJWKSet, decodeJwt, jwtVerify } from "jose";
import { ConfigError, loadConfig } from "../../src/config.js";
import { KeyService } from "../../gen/tessera/key/v1/key_pb.js";
import { connectClient, rest } from "../support/clients.js";
import { raw } from "../hostile/support.js";
import { RestH2c } from "../support/rest-h2c.js";
import { freePort } from "../support/net.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";

const password = "violet-kettle-harbour-29";

/** The document as it must read for `issuer`, `baseUrl` and `alg`. */
function expected(issuer: string, baseUrl: string, alg: string) {
  return {
    issuer,
    jwks_uri: `${baseUrl}/.well-known/jwks.json`,
    id_token_signing_alg_values_supported: [alg],
    response_types_supported: [],
    subject_types_supported: ["public"],
    grant_types_supported: [],
    response_modes_supported: [],
    claims_supported: ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "user", "token_type", "authentication_method", "credential_epoch", "source_kids"],
    request_uri_parameter_supported: false,
  };
}

/** A seed 004 access token and a seed 000 session access token, freshly issued. */
async function issueTokens(url: string): Promise<{ jwt: string; session: string }> {
  const user = `oidc${Date.now().toString(36)}`;
  assert.equal((await rest(url, "POST", "/jwt/user", { json: { user, pass: password } })).status, 201);
  const jwt = (await rest(url, "GET", `/jwt/token?user=${user}&pass=${password}`)).text;
  const email = `${user}@example.com`;
  const headers = { "x-koms-clientid": testClientId };
  assert.equal((await rest(url, "POST", "/user", { headers, json: { email, password } })).status, 201);
  const session = (await rest(url, "POST", "/session", { headers, json: { account_type: "traditional", email, password } })).body.access_token as string;
  return { jwt, session };
}

for (const store of storesUnderTest()) {
  describe(`KeyService: OpenID Connect discovery (${store})`, () => {
    describe("without TESSERA_PUBLIC_URL", () => {
      let server: TestServer;
      before(async () => {
        server = await startTestServer({ store });
      });
      after(async () => server.close());

      it("GET /.well-known/openid-configuration: issuer TESSERA_JWT_ISSUER, jwks_uri on the origin asked, cacheable by the caller alone", async () => {
        const res = await rest(server.url, "GET", "/.well-known/openid-configuration");
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("content-type"), "application/json");
        assert.equal(res.headers.get("cache-control"), "private, max-age=300");
        assert.deepEqual(res.body, expected("tessera", server.url, "EdDSA"));
      });

      it("jwks_uri follows the Host (HTTP/1.1) or :authority (h2c) alone, and the answer is private: no shared cache keeps one caller's", async () => {
        const path = "/.well-known/openid-configuration";
        const jwksUri = (text: string) => (JSON.parse(text) as { jwks_uri: string }).jwks_uri;
        const other = await raw(server.url, "GET", path, { host: "other.example:8443" });
        assert.deepEqual([other.status, jwksUri(other.text), other.headers["cache-control"]], [200, "http://other.example:8443/.well-known/jwks.json", "private, max-age=300"]);
        // A proxy's forwarding headers, which a client may send itself, name no origin here.
        const forwarded = await raw(server.url, "GET", path, { "x-forwarded-host": "evil.example", "x-forwarded-proto": "https", forwarded: "host=evil.example;proto=https" });
        assert.deepEqual([forwarded.status, jwksUri(forwarded.text), forwarded.headers["cache-control"]], [200, `${server.url}/.well-known/jwks.json`, "private, max-age=300"]);
        const h2c = new RestH2c(server.url);
        try {
          const authority = await h2c.request("GET", path, { headers: { ":authority": "other.example:8443", "x-forwarded-host": "evil.example" } });
          assert.deepEqual([authority.status, jwksUri(authority.text), authority.headers.get("cache-control")], [200, "http://other.example:8443/.well-known/jwks.json", "private, max-age=300"]);
          // A Host that names another authority than :authority is refused, not read.
          const host = new URL(server.url).host;
          const differing = await h2c.request("GET", path, { headers: { ":authority": host, host: "evil.example" } });
          assert.deepEqual([differing.status, (differing.body as { message: string }).message], [
            400,
            `the Host header "evil.example" differs from the :authority "${host}": an HTTP/2 request's Host, if sent, must name the same host and port`,
          ]);
        } finally {
          h2c.close();
        }
      });

      it("jose: createRemoteJWKSet from the jwks_uri it names verifies both kinds of access token, with its issuer", async () => {
        const doc = (await rest(server.url, "GET", "/.well-known/openid-configuration")).body as { issuer: string; jwks_uri: string };
        const jwks = createRemoteJWKSet(new URL(doc.jwks_uri));
        const { jwt, session } = await issueTokens(server.url);
        const a = await jwtVerify(jwt, jwks, { issuer: doc.issuer, audience: "tessera" });
        assert.equal(a.payload.token_type, "access_token");
        assert.equal(a.protectedHeader.alg, "EdDSA");
        const b = await jwtVerify(session, jwks, { issuer: doc.issuer, audience: testClientId });
        assert.equal(typeof b.payload.sid, "string");
        // Another issuer is refused: the document's issuer is what the tokens say.
        await assert.rejects(jwtVerify(jwt, jwks, { issuer: "someone-else" }), /unexpected "iss" claim value/);
      });

      it("claims_supported names every claim the tokens carry, those made from other tokens (source_kids) too", async () => {
        const doc = (await rest(server.url, "GET", "/.well-known/openid-configuration")).body as { claims_supported: string[] };
        const { jwt, session } = await issueTokens(server.url);
        const refresh = (await rest(server.url, "GET", "/jwt/refresh_token", { headers: { authorization: `Bearer ${jwt}` } })).text;
        const refreshed = (await rest(server.url, "GET", `/jwt/token?user=${refresh}`)).text;
        const carried = new Set([jwt, session, refresh, refreshed].flatMap((t) => Object.keys(decodeJwt(t))));
        assert.ok(carried.has("source_kids"), "a refresh login's access token records the kids it was made from");
        assert.deepEqual([...carried].filter((c) => !doc.claims_supported.includes(c)), []);
      });

      it("over Connect too (GetOpenIdConfiguration), with the same members", async () => {
        const doc = await connectClient(KeyService, server.url).getOpenIdConfiguration({});
        assert.equal(doc.issuer, "tessera");
        assert.equal(doc.jwksUri, `${server.url}/.well-known/jwks.json`);
        assert.deepEqual(doc.subjectTypesSupported, ["public"]);
      });
    });

    describe("with TESSERA_PUBLIC_URL", () => {
      let server: TestServer;
      let publicUrl: string;
      before(async () => {
        // The public URL must reach this server for jose to fetch the keys: loopback http on a
        // port chosen up front (https is required anywhere else).
        const port = await freePort();
        publicUrl = `http://127.0.0.1:${port}`;
        server = await startTestServer({ store, env: { PORT: String(port), TESSERA_PUBLIC_URL: `${publicUrl}/` } });
      });
      after(async () => server.close());

      it("issuer is the public URL (no trailing slash), jwks_uri under it, whatever Host the request names; public", async () => {
        const res = await rest(server.url.replace("127.0.0.1", "localhost"), "GET", "/.well-known/openid-configuration");
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("cache-control"), "public, max-age=300");
        assert.deepEqual(res.body, expected(publicUrl, publicUrl, "EdDSA"));
      });

      it("every token's iss is the document's issuer; jose verifies them from its jwks_uri", async () => {
        const doc = (await rest(server.url, "GET", "/.well-known/openid-configuration")).body as { issuer: string; jwks_uri: string };
        const { jwt, session } = await issueTokens(server.url);
        assert.equal(decodeJwt(jwt).iss, doc.issuer);
        assert.equal(decodeJwt(session).iss, doc.issuer);
        const jwks = createRemoteJWKSet(new URL(doc.jwks_uri));
        await jwtVerify(jwt, jwks, { issuer: doc.issuer, audience: "tessera" });
        await jwtVerify(session, jwks, { issuer: doc.issuer, audience: testClientId });
        // And Tessera itself accepts its tokens under that issuer.
        const check = await rest(server.url, "GET", `/jwt/check?access_token=${jwt}`);
        assert.equal(check.status, 200, check.text);
        assert.equal(check.body.iss, publicUrl);
      });
    });
  });
}

describe("config: TESSERA_PUBLIC_URL", () => {
  const load = (env: Record<string, string>) => loadConfig({ TESSERA_CLIENT_IDS: "web", TESSERA_ADMIN_TOKEN: "admin-token-0123456789", ...env });
  const refused = (env: Record<string, string>, message: RegExp) => assert.throws(() => load(env), (e: unknown) => e instanceof ConfigError && message.test(e.message));

  it("is the JWT issuer when set (normalised: no trailing slash, a path kept)", () => {
    assert.equal(load({}).jwtIssuer, "tessera");
    assert.equal(load({ TESSERA_PUBLIC_URL: "https://auth.example/" }).jwtIssuer, "https://auth.example");
    assert.equal(load({ TESSERA_PUBLIC_URL: "https://auth.example/" }).publicUrl, "https://auth.example");
    assert.equal(load({ TESSERA_PUBLIC_URL: "https://example.com/auth/" }).jwtIssuer, "https://example.com/auth");
    assert.equal(load({ TESSERA_PUBLIC_URL: "https://auth.example", TESSERA_JWT_ISSUER: "https://auth.example" }).jwtIssuer, "https://auth.example");
  });

  it("must be https (http only for localhost), without query, fragment or credentials, and agree with TESSERA_JWT_ISSUER", () => {
    refused({ TESSERA_PUBLIC_URL: "http://auth.example" }, /^TESSERA_PUBLIC_URL: must be an https URL \(http only for localhost\), got "http:\/\/auth\.example"$/);
    refused({ TESSERA_PUBLIC_URL: "auth.example" }, /^TESSERA_PUBLIC_URL: must be an absolute https URL/);
    refused({ TESSERA_PUBLIC_URL: "https://auth.example/?x=1" }, /^TESSERA_PUBLIC_URL: must have no query, fragment or credentials/);
    refused({ TESSERA_PUBLIC_URL: "https://auth.example", TESSERA_JWT_ISSUER: "tessera" }, /^TESSERA_JWT_ISSUER: must be unset or equal TESSERA_PUBLIC_URL \(https:\/\/auth\.example\)/);
    assert.equal(load({ TESSERA_PUBLIC_URL: "http://localhost:8080" }).publicUrl, "http://localhost:8080");
  });
});
