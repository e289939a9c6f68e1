// The JWTs Tessera signs, three kinds under one key ring and one header (typ "JWT"): seed 000
// session access tokens (aud: the client id), seed 004 access tokens (aud: TESSERA_JWT_AUDIENCE,
// token_type access_token) and seed 004 refresh tokens (aud: that followed by /refresh_token,
// token_type refresh_token). Each kind is refused wherever another is expected, on the paths
// that take a token in a field (GET /check, a refresh login, DELETE /refresh_token) as on those
// that take it as the credential (GET /refresh_token, GET and PUT /session, seed 000 GET /user;
// test/hostile/tokens.test.ts has the whole credential table). And tokens signed with the
// server's REAL key (read from its store) whose header or payload names a member twice, or whose
// header is typed other than "JWT", are refused on every path that verifies one of Tessera's
// tokens, 401 INVALID_TOKEN naming the member or the type (GET /check: 400): JSON.parse (and so
// jose) reads the last of two equal members; a proxy or another verifier in front may read the
// first and see another token. Each such token differs from one the server accepts (the control
// cases) only in the thing under test. Over gRPC, Connect and REST.
import assert from "node:assert/strict";
import { createPrivateKey, sign, type KeyObject } from "node:crypto";
import { decodeJwt, decodeProtectedHeader, type JWK } from "jose";
import { expectCode, expectOk, protocols } from "../support/api.js";
import { bearer } from "../support/clients.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { jwtsOfEachKind } from "../support/users.js";
import { sessionApi, type SessionApi } from "../session/api.js";
import { jwtApi, type JwtApi } from "./api.js";

const b64url = (text: string) => Buffer.from(text).toString("base64url");
/** U+FEFF, the byte order mark: EF BB BF in UTF-8. */
const bom = "\uFEFF";
/** A seed 000 call's credentials: the client id and `token` as the bearer access token. */
const as000 = (token: string) => ({ clientId: testClientId, access: token });

/** The JSON text of `value` with `"name":<first>` written before its own members (the same name again, or a new one). */
function withFirst(value: Record<string, unknown>, name: string, first: unknown): string {
  return `{${JSON.stringify(name)}:${JSON.stringify(first)},${JSON.stringify(value).slice(1)}`;
}

describe("kinds of JWT, and tokens with a member named twice or typed other than JWT", function () {
  let server: TestServer;
  let key: KeyObject;
  let kid: string;
  /** A seed 004 access token, its refresh token and a seed 000 session pair, as issued. */
  let access: string;
  let refresh: string;
  let session: { access_token: string; refresh_token: string };

  before(async () => {
    server = await startTestServer();
    ({ access, refresh, session } = await jwtsOfEachKind(server));
    kid = decodeProtectedHeader(access).kid!;
    const record = (await server.tessera.store.keys.list()).find((k) => k.kid === kid)!;
    key = createPrivateKey({ key: JSON.parse(record.privateJwk) as JWK, format: "jwk" });
  });
  after(async () => {
    await server?.close();
  });

  /** `payload` (JSON text) signed with the server's key under `header` (JSON text). */
  function signed(header: string, payload: string): string {
    const input = `${b64url(header)}.${b64url(payload)}`;
    return `${input}.${sign(null, Buffer.from(input), key).toString("base64url")}`;
  }
  /** The header every issued token carries, as JSON text. */
  const header = () => JSON.stringify({ alg: "EdDSA", kid, typ: "JWT" });
  /** `token`'s claims signed again under `headerText`, or with `payloadText` (default: as they are). */
  const again = (token: string, headerText = header(), payloadText = JSON.stringify(decodeJwt(token))) => signed(headerText, payloadText);

  /** The variants of `token` under test, each with the exact message it is refused with. */
  function variants(token: string): Array<[string, string, string]> {
    const claims = decodeJwt(token) as Record<string, unknown>;
    const h = { alg: "EdDSA", kid, typ: "JWT" };
    return [
      ["a header naming kid twice", again(token, withFirst(h, "kid", "not-a-key-of-ours")), 'malformed token: member "kid" of the header is given more than once'],
      ["a header naming alg twice", again(token, withFirst(h, "alg", "none")), 'malformed token: member "alg" of the header is given more than once'],
      ["a payload naming sub twice", again(token, header(), withFirst(claims, "sub", "someone-else")), 'malformed token: member "sub" of the payload is given more than once'],
      ["a payload naming exp twice", again(token, header(), withFirst(claims, "exp", 1)), 'malformed token: member "exp" of the payload is given more than once'],
      [
        "a payload naming a member twice inside a claim",
        again(token, header(), JSON.stringify({ ...claims, note: 0 }).replace('"note":0', '"note":{"a":1,"a":2}')),
        'malformed token: member "note.a" of the payload is given more than once',
      ],
      // A path longer than 64 characters, or a name of a credential's shape, is not named: the
      // header is read before its signature is checked, and anyone writes it.
      [
        "a header naming a member twice 40 objects deep",
        again(token, JSON.stringify({ ...h, x: 0 }).replace('"x":0', `${'"x":{'.repeat(40)}"a":1,"a":2${"}".repeat(40)}`)),
        "malformed token: a member of the header is given more than once",
      ],
      [
        "a header naming a member of 43 base64url characters twice",
        again(token, withFirst(h, "Q".repeat(43), 1).replace("{", `{${JSON.stringify("Q".repeat(43))}:0,`)),
        "malformed token: a member of the header is given more than once",
      ],
      // jose reads a segment as TextDecoder does, a leading UTF-8 BOM dropped (RFC 8259 8.1).
      ["a header after a BOM naming kid twice", again(token, bom + withFirst(h, "kid", "not-a-key-of-ours")), 'malformed token: member "kid" of the header is given more than once'],
      ["a payload after a BOM naming sub twice", again(token, header(), bom + withFirst(claims, "sub", "someone-else")), 'malformed token: member "sub" of the payload is given more than once'],
      ["a header typed at+jwt", again(token, JSON.stringify({ ...h, typ: "at+jwt" })), 'unexpected token type "at+jwt": header "typ" must be "JWT"'],
      ["a header with no typ", again(token, JSON.stringify({ alg: "EdDSA", kid })), 'token has no type: header "typ" must be "JWT"'],
    ];
  }

  it("the three kinds share the key and the header and differ in aud", () => {
    const kinds = [session.access_token, access, refresh];
    assert.equal(new Set(kinds.map((t) => JSON.stringify(decodeProtectedHeader(t)))).size, 1, "one header");
    assert.equal(decodeProtectedHeader(access).typ, "JWT");
    assert.deepEqual(
      kinds.map((t) => decodeJwt(t).aud),
      [testClientId, server.config.jwtAudience, `${server.config.jwtAudience}/refresh_token`],
    );
  });

  for (const protocol of protocols) {
    describe(`over ${protocol}`, () => {
      let jwt: JwtApi;
      let sessions: SessionApi;
      before(() => {
        jwt = jwtApi(protocol, server.url);
        sessions = sessionApi(protocol, server.url);
      });
      after(() => {
        jwt.close();
        sessions.close();
      });

      it("control: each token signed again as issued, and typed jwt or application/JWT, is accepted", async () => {
        for (const token of [
          again(access),
          again(access, JSON.stringify({ alg: "EdDSA", kid, typ: "jwt" })),
          again(access, JSON.stringify({ alg: "EdDSA", kid, typ: "application/JWT" })),
          again(access, bom + header(), bom + JSON.stringify(decodeJwt(access))),
        ]) {
          assert.equal(expectOk(await jwt.check({ access_token: token })).sub, decodeJwt(access).sub);
          expectOk(await jwt.getRefreshToken({}, bearer(token)));
        }
        expectOk(await sessions.getSession(as000(again(session.access_token))));
        // A refresh login with the refresh token signed again (it stays unrevoked).
        assert.equal(decodeJwt(expectOk(await jwt.getToken({ user: again(refresh) })).text).authentication_method, "refresh_token");
      });

      it("seed 004 access token: GET /check 400, GET and DELETE /refresh_token 401, GET /user no token (204)", async () => {
        for (const [name, token, message] of variants(access)) {
          expectCode(await jwt.check({ access_token: token }), "invalid_argument", message, "INVALID_TOKEN");
          expectCode(await jwt.getRefreshToken({}, bearer(token)), "unauthenticated", message, "INVALID_TOKEN");
          expectCode(await jwt.deleteRefreshToken({ refresh_token: refresh }, bearer(token)), "unauthenticated", message, "INVALID_TOKEN");
          // GET /user answers a token refused as no token: no claims.
          assert.equal(expectOk(await jwt.getUser({}, bearer(token)), 204), undefined, name);
        }
      });

      it("seed 004 refresh token: GET /token 401, DELETE /refresh_token 400", async () => {
        for (const [, token, message] of variants(refresh)) {
          expectCode(await jwt.getToken({ user: token }), "unauthenticated", `invalid refresh token: ${message}`, "INVALID_TOKEN");
          expectCode(await jwt.deleteRefreshToken({ refresh_token: token }, bearer(access)), "invalid_argument", `invalid refresh token: ${message}`, "INVALID_TOKEN");
        }
        // The refresh token was revoked by none of them.
        expectOk(await jwt.getToken({ user: refresh }));
      });

      it("seed 000 session access token: GET /session and PUT /session 401", async () => {
        for (const [, token, message] of variants(session.access_token)) {
          expectCode(await sessions.getSession(as000(token)), "unauthenticated", message, "INVALID_TOKEN");
          expectCode(await sessions.refreshSession({ refresh_token: session.refresh_token }, as000(token)), "unauthenticated", message, "INVALID_TOKEN");
        }
        // The session goes on.
        expectOk(await sessions.getSession(as000(session.access_token)));
      });

      it("a session access token is no seed 004 access or refresh token", async () => {
        const t = session.access_token;
        expectCode(await jwt.check({ access_token: t }), "invalid_argument", "token issued for another audience", "WRONG_AUDIENCE");
        expectCode(await jwt.getRefreshToken({}, bearer(t)), "unauthenticated", "token issued for another audience", "WRONG_AUDIENCE");
        expectCode(await jwt.getToken({ user: t }), "unauthenticated", "invalid refresh token: token issued for another audience", "WRONG_AUDIENCE");
        expectCode(await jwt.deleteRefreshToken({ refresh_token: t }, bearer(access)), "invalid_argument", "invalid refresh token: token issued for another audience", "WRONG_AUDIENCE");
        assert.equal(expectOk(await jwt.getUser({}, bearer(t)), 204), undefined);
      });

      it("a seed 004 access token is no refresh token and no session access token", async () => {
        expectCode(await jwt.getToken({ user: access }), "unauthenticated", "invalid refresh token: not a refresh token", "WRONG_TOKEN_TYPE");
        expectCode(await jwt.deleteRefreshToken({ refresh_token: access }, bearer(access)), "invalid_argument", "invalid refresh token: not a refresh token", "WRONG_TOKEN_TYPE");
        expectCode(await sessions.getSession(as000(access)), "unauthenticated", "not a session access token", "WRONG_TOKEN_TYPE");
        expectCode(await sessions.refreshSession({ refresh_token: session.refresh_token }, as000(access)), "unauthenticated", "not a session access token", "WRONG_TOKEN_TYPE");
        expectCode(await sessions.getUser(as000(access)), "unauthenticated", "not a session access token", "WRONG_TOKEN_TYPE");
      });

      it("a seed 004 refresh token is no access token and no session access token", async () => {
        expectCode(await jwt.check({ access_token: refresh }), "invalid_argument", "not an access token", "WRONG_TOKEN_TYPE");
        expectCode(await jwt.getRefreshToken({}, bearer(refresh)), "unauthenticated", "not an access token", "WRONG_TOKEN_TYPE");
        assert.equal(expectOk(await jwt.getUser({}, bearer(refresh)), 204), undefined);
        expectCode(await sessions.getSession(as000(refresh)), "unauthenticated", "not a session access token", "WRONG_TOKEN_TYPE");
        expectCode(await sessions.refreshSession({ refresh_token: session.refresh_token }, as000(refresh)), "unauthenticated", "not a session access token", "WRONG_TOKEN_TYPE");
        expectCode(await sessions.getUser(as000(refresh)), "unauthenticated", "not a session access token", "WRONG_TOKEN_TYPE");
      });
    });
  }
});
