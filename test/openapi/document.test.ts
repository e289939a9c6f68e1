// gen/openapi.json: a valid OpenAPI 3.1 document that says what the protos and the seeds say.
// (Its freshness against proto/ is test/server/generated.test.ts's; that it matches what the
// server answers is reality.test.ts's.)
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import SwaggerParser from "@apidevtools/swagger-parser";

const load = (): any => JSON.parse(readFileSync("gen/openapi.json", "utf8"));
const doc = load();
const op = (method: string, path: string): any => {
  const o = doc.paths[path]?.[method];
  assert.ok(o, `${method.toUpperCase()} ${path} is in the document`);
  return o;
};
const schema = (ref: string): any => doc.components.schemas[ref.replace("#/components/schemas/", "")];

describe("gen/openapi.json", () => {
  it("is a valid OpenAPI 3.1 document (swagger-parser)", async () => {
    assert.equal(doc.openapi, "3.1.0");
    await SwaggerParser.validate(load());
  });

  it("the validator refuses a broken copy (an operation answering an undefined schema)", async () => {
    const broken = load();
    broken.paths["/session"].get.responses["200"].content["application/json"].schema = { $ref: "#/components/schemas/Missing" };
    await assert.rejects(SwaggerParser.validate(broken), /Missing/);
  });

  it("lists every seed path with its method", () => {
    const operations = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item as object).map((m) => `${m.toUpperCase()} ${path}`));
    assert.deepEqual(operations.sort(), [
      "DELETE /jwt/refresh_token",
      "DELETE /jwt/user",
      "DELETE /session",
      "DELETE /v1/frontend/auth/{account_id}",
      "GET /.well-known/jwks.json",
      "GET /.well-known/openid-configuration",
      "GET /api/authenticationtoken",
      "GET /api/authenticationtoken/{token}",
      "GET /api/authenticationtoken/{token}/user",
      "GET /jwt/check",
      "GET /jwt/pubkey",
      "GET /jwt/refresh_token",
      "GET /jwt/token",
      "GET /jwt/user",
      "GET /jwt/version",
      "GET /session",
      "GET /user",
      "GET /v1/admin/audit-events",
      "GET /v1/api/auth",
      "GET /v1/frontend/auth/{account_id}",
      "PATCH /jwt/user",
      "POST /auth/bump",
      "POST /auth/login",
      "POST /auth/logout",
      "POST /jwt/user",
      "POST /session",
      "POST /user",
      "POST /v1/admin/keys/{kid}:revoke",
      "POST /v1/admin/keys:rotate",
      "POST /v1/frontend/auth",
      "PUT /session",
      "PUT /v1/frontend/auth",
    ]);
  });

  it("names each operation's RPC and shows a buf curl call of it", () => {
    const o = op("get", "/jwt/token");
    assert.equal(o["x-rpc"], "tessera.jwt.v1.JwtService/GetToken");
    assert.equal(o["x-buf-curl"], `buf curl --http2-prior-knowledge -d '{"user":"","pass":""}' http://localhost:8080/tessera.jwt.v1.JwtService/GetToken`);
    assert.equal(
      op("get", "/session")["x-buf-curl"],
      `buf curl --http2-prior-knowledge -H "x-koms-clientid: $CLIENT_ID" -H "authorization: Bearer $ACCESS_TOKEN" -d '{}' http://localhost:8080/tessera.session.v1.SessionService/GetSession`,
    );
  });

  it("its Basic credential line sends one header line for a login and password of any length (base64 wraps at 76 columns)", () => {
    const line: string = op("post", "/auth/login")["x-buf-curl"];
    const flag = /-H "(authorization: Basic \$\(.*?\))"/.exec(line);
    assert.ok(flag, line);
    const login = "a-rather-long-login-name@subdomain.example.com";
    const password = "correct horse battery staple, and then some";
    const header = execFileSync("sh", ["-c", `printf '%s' "${flag[1]}"`], { env: { PATH: process.env.PATH, LOGIN: login, PASSWORD: password }, encoding: "utf8" });
    assert.equal(header, `authorization: Basic ${Buffer.from(`${login}:${password}`).toString("base64")}`);
  });

  it("takes summaries and descriptions from the proto comments", () => {
    const o = op("post", "/session");
    assert.equal(o.summary, "Starts a session for a user with a password (POST /session).");
    assert.match(o.description, /repeated failures for one login or one client address, or as many attempts for one login\nat once as it may fail, are RESOURCE_EXHAUSTED \(429\)/);
    assert.equal(schema("tessera.session.v1.CreateSessionRequest").properties.account_type.description, 'The kind of account; "traditional" (email and password) is the only one supported.');
    assert.match(doc.tags.find((t: any) => t.name === "tessera.session.v1.SessionService").description, /^The Session API \(seed 000\)/);
  });

  it("declares the success statuses the protos declare: 201, 204, and seed 004's GET /user 200 with claims or 204", () => {
    const statuses = (method: string, path: string) => Object.keys(op(method, path).responses).filter((s) => s < "300");
    assert.deepEqual(statuses("post", "/user"), ["201"]);
    assert.deepEqual(statuses("post", "/jwt/user"), ["201"]);
    assert.deepEqual(statuses("delete", "/jwt/user"), ["204"]);
    assert.deepEqual(statuses("delete", "/jwt/refresh_token"), ["204"]);
    assert.deepEqual(statuses("get", "/jwt/user"), ["200", "204"]);
    assert.deepEqual(op("get", "/jwt/user").responses["200"].content["application/json"].schema, {
      type: "object",
      description: "The claims of the caller's access token; unset when no valid token was given (the REST\nanswer is then 204 with no body).",
    });
    assert.equal(op("delete", "/jwt/user").responses["204"].content, undefined);
    assert.deepEqual(statuses("get", "/session"), ["200"]);
  });

  it("describes text/plain answers (HttpBody) and JSON answers with json_name keys and the default-value policy", () => {
    assert.deepEqual(op("get", "/jwt/token").responses["200"].content, { "text/plain; charset=utf-8": { schema: { type: "string" } } });
    const created = schema("tessera.session.v1.CreateSessionResponse");
    assert.deepEqual(created.required, ["access_token", "refresh_token", "access_token_expires_in"]);
    assert.equal(created.additionalProperties, false);
    const login = schema("tessera.usertoken.v1.LoginResponse");
    assert.deepEqual(Object.keys(login.properties), ["token", "note", "expirationTime", "creationTime", "enabled", "version", "lastUsageTime"]);
    // Optional and message fields appear only when set.
    assert.deepEqual(login.required, ["token", "enabled", "version"]);
    assert.deepEqual(login.properties.creationTime, { type: "string", format: "date-time", description: "When the token was created." });
    // response_body: the field itself (the token object), not the wrapper.
    assert.deepEqual(op("get", "/api/authenticationtoken").responses["200"].content["application/json"].schema, {
      anyOf: [{ $ref: "#/components/schemas/tessera.authtoken.v1.AuthenticationToken", description: "The new token." }, { type: "null" }],
    });
  });

  it("describes seed 004's loose arguments: query, JSON body (GET included) and form body", () => {
    // The arguments, without the deadline header every operation takes.
    const args = (o: any) => o.parameters.filter((p: any) => p.$ref === undefined).map((p: any) => `${p.in}:${p.name}`);
    const o = op("get", "/jwt/token");
    assert.deepEqual(args(o), ["query:user", "query:pass"]);
    assert.deepEqual(Object.keys(o.requestBody.content), ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]);
    // Elsewhere a body: "*" binding takes JSON only, and no query arguments.
    const session = op("post", "/session");
    assert.deepEqual(args(session), []);
    assert.deepEqual(Object.keys(session.requestBody.content), ["application/json"]);
    assert.deepEqual(args(op("get", "/v1/frontend/auth/{account_id}")), ["path:account_id", "query:state"]);
  });

  it("declares each route's security from its access credential", () => {
    const security = (method: string, path: string) => op(method, path).security;
    assert.deepEqual(security("post", "/session"), [{ clientId: [] }]);
    assert.deepEqual(security("get", "/session"), [{ sessionAccessToken: [], clientId: [] }]);
    assert.deepEqual(security("get", "/v1/api/auth"), [{ apiToken: [] }]);
    assert.deepEqual(security("post", "/v1/frontend/auth"), [{ adminToken: [] }]);
    assert.deepEqual(security("post", "/auth/login"), [{ basic: [] }]);
    assert.deepEqual(security("post", "/auth/bump"), [{ userToken: [] }]);
    assert.deepEqual(security("get", "/api/authenticationtoken"), [{ sessionAccessToken: [], clientId: [] }, { userToken: [] }, { jwtAccessToken: [] }, { sessionCookie: [] }]);
    assert.deepEqual(security("get", "/jwt/refresh_token"), [{ jwtAccessToken: [] }, { jwtAccessTokenArgument: [] }]);
    // Optional: answers without a credential too.
    assert.deepEqual(security("get", "/jwt/user"), [{ jwtAccessToken: [] }, { jwtAccessTokenArgument: [] }, {}]);
    assert.deepEqual(security("get", "/jwt/version"), []);
    const schemes = doc.components.securitySchemes;
    assert.deepEqual(schemes.clientId, { type: "apiKey", in: "header", name: "x-koms-clientid", description: schemes.clientId.description });
    assert.deepEqual(schemes.sessionCookie.in, "cookie");
    assert.deepEqual(schemes.sessionCookie.name, "tessera_session");
    assert.deepEqual(schemes.basic.scheme, "basic");
  });

  it("declares the error answers: 401 with WWW-Authenticate on Bearer and Basic routes, 429 with Retry-After on login routes", () => {
    const errors = (method: string, path: string) => Object.keys(op(method, path).responses).filter((s) => s >= "400");
    assert.deepEqual(errors("post", "/session"), ["400", "401", "403", "413", "415", "429", "500", "503", "504"]);
    assert.deepEqual(errors("post", "/auth/login"), ["400", "401", "403", "413", "415", "429", "500", "503", "504"]);
    assert.deepEqual(errors("get", "/jwt/token"), ["400", "401", "403", "413", "415", "429", "500", "503", "504"]);
    assert.deepEqual(errors("get", "/session"), ["400", "401", "500", "503", "504"]);
    assert.deepEqual(errors("post", "/user"), ["400", "401", "409", "413", "415", "429", "500", "503", "504"]);
    assert.deepEqual(errors("get", "/api/authenticationtoken/{token}"), ["400", "401", "404", "500", "503", "504"]);
    assert.deepEqual(errors("get", "/jwt/version"), ["400", "413", "415", "500", "503", "504"]);
    // The optional credential of seed 004's GET /user: 401 only for one given malformed.
    assert.deepEqual(errors("get", "/jwt/user"), ["400", "401", "413", "415", "500", "503", "504"]);
    assert.equal(op("get", "/jwt/user").responses["401"].headers["WWW-Authenticate"].example, 'Bearer error="invalid_request"');
    assert.deepEqual(op("get", "/session").responses["401"].headers["WWW-Authenticate"], {
      $ref: "#/components/headers/WWW-Authenticate",
      example: 'Bearer error="invalid_token"',
    });
    // A client id, or a password in the body or the query: no scheme to challenge with.
    assert.equal(op("post", "/session").responses["401"].headers, undefined);
    assert.equal(op("get", "/jwt/token").responses["401"].headers, undefined);
    assert.equal(op("post", "/auth/login").responses["401"].headers["WWW-Authenticate"].example, 'Basic realm="tessera", charset="UTF-8"');
    assert.equal(doc.components.responses.TooManyRequests.headers["Retry-After"].$ref, "#/components/headers/Retry-After");
    // The caller's deadline holds on every route: its header, and the 504 it ends in (a cookie
    // logout's with the Set-Cookie that clears the cookie, as its other errors once the credential is checked).
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      for (const [method, o] of Object.entries<any>(item)) {
        assert.ok(o.parameters.some((p: any) => p.$ref === "#/components/parameters/connect-timeout-ms"), `${method} ${path}: connect-timeout-ms`);
        if (`${method} ${path}` === "post /auth/logout") continue;
        assert.equal(o.responses["504"]?.$ref, "#/components/responses/GatewayTimeout", `${method} ${path}: 504`);
      }
    }
    const { headers: logoutTimeoutHeaders, ...logoutTimeout } = op("post", "/auth/logout").responses["504"];
    assert.deepEqual(logoutTimeout, doc.components.responses.GatewayTimeout);
    assert.deepEqual(Object.keys(logoutTimeoutHeaders), ["Set-Cookie"]);
    assert.deepEqual(doc.components.parameters["connect-timeout-ms"].schema, { type: "string", pattern: "^[0-9]{1,10}$" });
    assert.deepEqual(doc.components.schemas.Error.required, ["code", "message", "details"]);
    assert.deepEqual(doc.components.schemas.Error.properties.details.items.required, ["type", "value"]);
  });

  it("declares ETag, If-None-Match and 304 on the cacheable public GETs (keys, discovery, version), and nowhere else", () => {
    const conditional: string[] = [];
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      for (const [method, o] of Object.entries<any>(item)) {
        const parts = [
          o.parameters.some((p: any) => p.$ref === "#/components/parameters/If-None-Match"),
          o.responses["200"]?.headers?.ETag?.$ref === "#/components/headers/ETag",
          o.responses["304"]?.$ref === "#/components/responses/NotModified",
        ];
        assert.ok(parts.every((x) => x === parts[0]), `${method} ${path}: If-None-Match, ETag and 304 go together`);
        if (parts[0]) conditional.push(`${method.toUpperCase()} ${path}`);
      }
    }
    assert.deepEqual(conditional.sort(), ["GET /.well-known/jwks.json", "GET /.well-known/openid-configuration", "GET /jwt/pubkey", "GET /jwt/version"]);
    assert.deepEqual(doc.components.parameters["If-None-Match"], { ...doc.components.parameters["If-None-Match"], name: "If-None-Match", in: "header", required: false });
    assert.equal(doc.components.headers.ETag.required, true);
    assert.deepEqual(doc.components.responses.NotModified.headers, { ETag: { $ref: "#/components/headers/ETag" } });
    assert.equal(doc.components.responses.NotModified.content, undefined);
  });

  it("declares Set-Cookie on the answers that set or clear the session cookie (the token exchange, the logout, its errors once the credential is checked), and nowhere else", () => {
    const setting: string[] = [];
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      for (const [method, o] of Object.entries<any>(item)) {
        for (const [status, r] of Object.entries<any>(o.responses)) {
          if (r.headers?.["Set-Cookie"] !== undefined) setting.push(`${method.toUpperCase()} ${path} ${status}`);
        }
      }
    }
    assert.deepEqual(setting.sort(), [
      "GET /api/authenticationtoken/{token}/user 200",
      "POST /auth/logout 200",
      "POST /auth/logout 401",
      "POST /auth/logout 500",
      "POST /auth/logout 503",
      "POST /auth/logout 504",
    ]);
    const header = op("post", "/auth/logout").responses["200"].headers["Set-Cookie"];
    assert.equal(header.required, false);
    assert.match("tessera_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax", new RegExp(header.schema.pattern));
  });
});
