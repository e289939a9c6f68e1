// jQuery's cache-buster over REST: `$.ajax({ cache: false })` appends `_=<milliseconds>` to the
// URL of a GET (and a HEAD). Tessera's query is strict (an unknown parameter is 400
// UNKNOWN_QUERY_PARAMETER), but a parameter named exactly `_` is ignored on GET and HEAD, on
// every seed API; the answer, its ETag and If-None-Match are those of the URL without it. On
// other methods, and in a body, `_` is unknown as before.
import assert from "node:assert/strict";
import { request } from "node:http";
import { decodedBody, tesseraDetails } from "../support/error-details.js";
import { bearer, rest } from "../support/clients.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { clientIdHeader, createApiToken, createJwtUser, jwtLogin, loginUserToken, signUp, startSession } from "../support/users.js";

/** What jQuery 3 appends: `_=` and the milliseconds of the first request of the page. */
const jquery = "_=1764720000000";

/** Asserts the 400 of an unknown query parameter `name`, exactly. */
function assertUnknownParameter(body: unknown, name: string, what: string, noun = "query parameter"): void {
  const message = `unknown ${noun} "${name}"`;
  assert.deepEqual(decodedBody(body as Parameters<typeof decodedBody>[0]), { code: "invalid_argument", message, details: tesseraDetails("UNKNOWN_QUERY_PARAMETER", { [name]: message }) }, what);
}

describe("REST: jQuery's cache-buster `_` on GET and HEAD", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server?.close());

  it("seed 004: GET /jwt/version?_=<ms> answers as GET /jwt/version, with the same ETag; If-None-Match is 304 with or without `_`", async () => {
    const plain = await fetch(`${server.url}/jwt/version`);
    const plainBody = await plain.text();
    assert.equal(plain.status, 200, plainBody);
    const tag = plain.headers.get("etag");
    assert.match(tag ?? "", /^"[^"]+"$/);

    const busted = await fetch(`${server.url}/jwt/version?${jquery}`);
    assert.equal(busted.status, 200);
    assert.equal(await busted.text(), plainBody);
    assert.equal(busted.headers.get("etag"), tag);
    assert.equal(busted.headers.get("cache-control"), plain.headers.get("cache-control"));

    const revalidated = await fetch(`${server.url}/jwt/version?${jquery}`, { headers: { "if-none-match": tag! } });
    assert.equal(revalidated.status, 304);
    assert.equal(await revalidated.text(), "");
    assert.equal(revalidated.headers.get("etag"), tag);
    // A tag that is not the current one is still a 200 with the body.
    const stale = await fetch(`${server.url}/jwt/version?${jquery}`, { headers: { "if-none-match": '"other"' } });
    assert.equal(stale.status, 200);
    assert.equal(await stale.text(), plainBody);

    const head = await fetch(`${server.url}/jwt/version?${jquery}`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("etag"), tag);
    assert.equal(head.headers.get("content-length"), String(Buffer.byteLength(plainBody)));
    const headRevalidated = await fetch(`${server.url}/jwt/version?${jquery}`, { method: "HEAD", headers: { "if-none-match": tag! } });
    assert.equal(headRevalidated.status, 304);
  });

  it("seed 004: GET /jwt/check?access_token=...&_=<ms> checks the token", async () => {
    const access = await jwtLogin(server, await createJwtUser(server));
    const plain = await rest(server.url, "GET", `/jwt/check?access_token=${access}`);
    assert.equal(plain.status, 200, plain.text);
    const busted = await rest(server.url, "GET", `/jwt/check?access_token=${access}&${jquery}`);
    assert.equal(busted.status, 200, busted.text);
    assert.deepEqual(busted.body, plain.body);
  });

  it("seed 003: GET /api/authenticationtoken?_=<ms> and GET /api/authenticationtoken/{token}?_=<ms>", async () => {
    const user = await signUp(server);
    const token = await loginUserToken(server, user.login);
    const created = await rest(server.url, "GET", `/api/authenticationtoken?${jquery}`, { headers: bearer(token) });
    assert.equal(created.status, 200, created.text);
    assert.equal(created.body.user, user.id);
    const read = await rest(server.url, "GET", `/api/authenticationtoken/${created.body.token}?${jquery}`, { headers: bearer(token) });
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(read.body, created.body);
  });

  it("seed 000: GET /session?_=<ms>; seed 001: GET /v1/api/auth?_=<ms>", async () => {
    const user = await signUp(server);
    const access = (await startSession(server, user.login)).access_token;
    const session = await rest(server.url, "GET", `/session?${jquery}`, { headers: { ...bearer(access), ...clientIdHeader } });
    assert.equal(session.status, 200, session.text);
    const apiToken = await createApiToken(server, "acct-cache-buster");
    const auth = await rest(server.url, "GET", `/v1/api/auth?${jquery}`, { headers: bearer(apiToken) });
    assert.equal(auth.status, 200, auth.text);
    assert.equal(auth.body.account_id, "acct-cache-buster");
  });

  it("other unknown parameters stay 400 on GET, with `_` or without", async () => {
    for (const [query, name] of [
      ["__=1764720000000", "__"],
      ["_x=1", "_x"],
      [`${jquery}&colour=red`, "colour"],
      [`colour=red&${jquery}`, "colour"],
    ] as const) {
      const res = await rest(server.url, "GET", `/jwt/version?${query}`);
      assert.equal(res.status, 400, query);
      assertUnknownParameter(res.body, name, query);
    }
  });

  it("`_` on a POST, PUT or DELETE is an unknown parameter: 400", async () => {
    const user = await signUp(server);
    const token = await loginUserToken(server, user.login);
    const bump = await rest(server.url, "POST", `/auth/bump?${jquery}`, { headers: bearer(token) });
    assert.equal(bump.status, 400, bump.text);
    assertUnknownParameter(bump.body, "_", "POST");
    const access = await jwtLogin(server, await createJwtUser(server));
    const del = await rest(server.url, "DELETE", `/jwt/refresh_token?${jquery}`, { headers: bearer(access) });
    assert.equal(del.status, 400, del.text);
    assertUnknownParameter(del.body, "_", "DELETE");
  });

  it("`_` in a GET's form body (seed 004 takes arguments there) is an unknown parameter: 400", async () => {
    // fetch sends no body with a GET: node:http does.
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(`${server.url}/jwt/version`, { method: "GET", headers: { "content-type": "application/x-www-form-urlencoded", "content-length": String(jquery.length) } }, (r) => {
        let text = "";
        r.setEncoding("utf8");
        r.on("data", (c: string) => (text += c));
        r.on("end", () => resolve({ status: r.statusCode!, text }));
      });
      req.on("error", reject);
      req.end(jquery);
    });
    assert.equal(res.status, 400, res.text);
    assertUnknownParameter(JSON.parse(res.text), "_", "form body", "form field");
  });
});
