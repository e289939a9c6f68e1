/**
 * Property-based credential headers, written as an attacker or a sloppy client writes them, over
 * REST on HTTP/1.1: the Authorization header (the scheme in any case, another scheme, a tab or no
 * separator, no token or two, whitespace around, sent twice), seed 000's x-koms-clientid beside it
 * (absent, empty, another case, a comma list, sent twice), and the Cookie header (the
 * tessera_session cookie among others, with or without "=", spaces around, once or twice, on one
 * line or two). Each answer is the one documented for how the header was built: the status, the
 * code, the message, the ErrorInfo reason and the WWW-Authenticate challenge (RFC 6750), or the
 * method's answer for a valid credential; neither an error nor the log quotes the credential; and
 * the server still serves a valid request afterwards.
 *
 * Replay a failure with HOSTILE_SEED=<printed seed>; scale with HOSTILE_RUNS=<n>.
 */
import { strict as assert } from "node:assert";
import fc from "fast-check";
import { bearer } from "../support/clients.js";
import { otherClientId, startTestServer, storesUnderTest, testAdminToken, testClientId, type TestServer } from "../support/server.js";
import { createApiToken, loginUserToken, sessionCookie, signUp, startSession, uniqueEmail, uniqueName } from "../support/users.js";
import { assertProperty, raw, type RawAnswer } from "./support.js";

const runs = 60;

/** The one documented answer: a refusal, or the method's answer for a valid credential. */
type Expected = { status: number; code: string; message: string; reason: string; challenge: string | null } | { status: 200 };

/** What an Authorization header presents, as RFC 6750's challenges tell it apart. */
type Presented = "token" | "malformed" | "none";

interface Header {
  /** The header's lines (none: not sent). */
  lines: string[];
  what: string;
}

interface AuthorizationHeader extends Header {
  presented: Presented;
  /** Per kind of header: a valid token, an unknown one, or a refusal before any token is looked at. */
  outcome: "valid" | "unknown" | "missing" | "malformed" | "unsupported" | "repeated";
}

const mustBeBearer = 'the Authorization header must be "Bearer <token>"';
const invalidRequest = 'Bearer error="invalid_request"';
const invalidToken = 'Bearer error="invalid_token"';

const ows = fc.constantFrom("", " ", "\t", " \t");
const bearerWord = fc.constantFrom("Bearer", "bearer", "BEARER", "bEaReR");

/**
 * Authorization headers built around `valid` (a token the method takes) and `unknown` tokens
 * (which it refuses as such), each knowing what it presents.
 */
function authorizationHeader(valid: string, unknown: readonly string[]): fc.Arbitrary<AuthorizationHeader> {
  const token = fc.oneof(fc.constant({ text: valid, valid: true }), fc.constantFrom(...unknown).map((text) => ({ text, valid: false })));
  const h = (lines: string[], presented: Presented, outcome: AuthorizationHeader["outcome"]): AuthorizationHeader => ({
    lines,
    presented,
    outcome,
    what: JSON.stringify(lines.map((l) => l.replace(valid, "<valid>"))),
  });
  const wellFormed = fc
    .tuple(ows, bearerWord, fc.constantFrom(" ", "  ", "   "), token, ows)
    .map(([lead, word, sep, t, trail]) => h([lead + word + sep + t.text + trail], "token", t.valid ? "valid" : "unknown"));
  // RFC 6750 2.1: "Bearer" 1*SP b64token. A tab, no token or two are a malformed bearer credential.
  const tabSeparated = fc.tuple(bearerWord, fc.constantFrom("\t", " \t", "\t "), token).map(([word, sep, t]) => h([word + sep + t.text], "malformed", "malformed"));
  const bare = fc.tuple(ows, bearerWord, ows).map(([lead, word, trail]) => h([lead + word + trail], "malformed", "malformed"));
  const twoTokens = fc.tuple(bearerWord, token, fc.constantFrom(" ", "  "), fc.constantFrom("x", "extra", valid)).map(([word, t, sep, more]) => h([`${word} ${t.text}${sep}${more}`], "malformed", "malformed"));
  // Another scheme, "Bearer" run into the token or into punctuation, or an empty value.
  const otherScheme = fc
    .tuple(fc.constantFrom("Basic", "Token", "Digest", "JWT", "Bearer:", "Bearer=", "Bearer,", "Bearerx"), fc.constantFrom(" ", ""), token)
    .map(([scheme, sep, t]) => h([scheme + sep + t.text], "none", "unsupported"));
  const glued = fc.tuple(bearerWord, token).map(([word, t]) => h([word + t.text], "none", "unsupported"));
  const empty = ows.map((v) => h([v], "none", "unsupported"));
  const absent = fc.constant(h([], "none", "missing"));
  // RFC 9110 5.3: no list-based field, so never repeated; refused before routing.
  const repeated = fc
    .tuple(fc.constantFrom(`Bearer ${valid}`, "Bearer x", "Basic eDp5"), fc.constantFrom(`Bearer ${valid}`, "Bearer y", ""))
    .map(([a, b]) => h([a, b], "none", "repeated"));
  return fc.oneof(
    { arbitrary: wellFormed, weight: 4 },
    tabSeparated,
    bare,
    twoTokens,
    otherScheme,
    glued,
    empty,
    absent,
    repeated,
  );
}

/** The answer to an Authorization header on a bearer method, given its messages. */
function bearerAnswer(a: AuthorizationHeader, missing: string, unknown: string): Expected {
  switch (a.outcome) {
    case "valid":
      return { status: 200 };
    case "unknown":
      return { status: 401, code: "unauthenticated", message: unknown, reason: "INVALID_TOKEN", challenge: invalidToken };
    case "missing":
      return { status: 401, code: "unauthenticated", message: missing, reason: "MISSING_CREDENTIAL", challenge: "Bearer" };
    case "malformed":
      return { status: 401, code: "unauthenticated", message: mustBeBearer, reason: "MALFORMED_CREDENTIAL", challenge: invalidRequest };
    case "unsupported":
      return { status: 401, code: "unauthenticated", message: mustBeBearer, reason: "UNSUPPORTED_CREDENTIAL", challenge: "Bearer" };
    case "repeated":
      return {
        status: 400,
        code: "invalid_argument",
        message: `the request has ${a.lines.length} Authorization headers: it must have at most one`,
        reason: "MALFORMED_CREDENTIAL",
        challenge: null,
      };
  }
}

interface ClientIdHeader extends Header {
  outcome: "ours" | "other" | "missing" | "unknown" | "several";
}

/** x-koms-clientid headers: once (whitespace around is no part of a field's value) or twice. */
const clientIdHeader: fc.Arbitrary<ClientIdHeader> = (() => {
  const values: Array<[string, ClientIdHeader["outcome"]]> = [
    [testClientId, "ours"],
    [otherClientId, "other"],
    ["", "missing"],
    [testClientId.toUpperCase(), "unknown"],
    ["no-such-client", "unknown"],
    [`${testClientId}.`, "unknown"],
    ["t\u00e9st-client", "unknown"],
    [`${testClientId},${otherClientId}`, "several"],
    [`${testClientId}, ${testClientId}`, "several"],
    [",", "several"],
  ];
  const once = fc.tuple(ows, fc.constantFrom(...values), ows).map(([lead, [v, outcome], trail]) => ({ lines: [lead + v + trail], outcome, what: JSON.stringify([lead + v + trail]) }));
  // Node joins two lines with ", ", as a proxy in front may not: whichever they name, 400.
  const twice = fc
    .tuple(fc.constantFrom(...values), fc.constantFrom(...values))
    .map(([[a], [b]]): ClientIdHeader => ({ lines: [a, b], outcome: "several", what: JSON.stringify([a, b]) }));
  const absent = fc.constant<ClientIdHeader>({ lines: [], outcome: "missing", what: "[]" });
  return fc.oneof({ arbitrary: once, weight: 4 }, twice, absent);
})();

/**
 * GET /session's answer: the Authorization header's repetition is refused before routing, then
 * the client id is checked, then the bearer credential, then the token's client.
 */
function sessionAnswer(c: ClientIdHeader, a: AuthorizationHeader): Expected {
  if (a.outcome === "repeated") return bearerAnswer(a, "", "");
  // Refused for its client id: a bearer credential presented, well-formed or not, is challenged
  // invalid_request (RFC 6750 3.1: the request is malformed), none with plain Bearer.
  const challenge = a.presented === "none" ? "Bearer" : invalidRequest;
  switch (c.outcome) {
    case "several":
      return {
        status: 400,
        code: "invalid_argument",
        message: "the x-koms-clientid header names more than one client (it was sent more than once, or holds a comma list): it must name one",
        reason: "MALFORMED_CREDENTIAL",
        challenge: null,
      };
    case "missing":
      return { status: 401, code: "unauthenticated", message: "missing x-koms-clientid header", reason: "MISSING_CLIENT_ID", challenge };
    case "unknown":
      return { status: 401, code: "unauthenticated", message: "unknown x-koms-clientid", reason: "UNKNOWN_CLIENT_ID", challenge };
    case "ours":
    case "other": {
      const answer = bearerAnswer(a, "missing bearer access token", "malformed token");
      if (answer.status === 200 && c.outcome === "other") {
        return { status: 401, code: "unauthenticated", message: "token issued for another audience", reason: "WRONG_CLIENT", challenge: invalidToken };
      }
      return answer;
    }
  }
}

interface CookieHeader extends Header {
  /** How many tessera_session cookies it carries, and whether the one is the valid session. */
  sessions: number;
  valid: boolean;
}

/** Cookie headers: the session cookie (valid, not, empty) among others, joined in any way. */
function cookieHeader(valid: string): fc.Arbitrary<CookieHeader> {
  type Crumb = { text: string; session?: "valid" | "invalid" };
  const pad = fc.constantFrom("", " ");
  const session: fc.Arbitrary<Crumb> = fc
    .tuple(pad, pad, fc.constantFrom<[string, "valid" | "invalid"]>([valid, "valid"], ["", "invalid"], ["x", "invalid"], [`"${valid}"`, "invalid"], [`${valid}x`, "invalid"], ["a=b", "invalid"]), pad)
    .map(([a, b, [v, kind], c]) => ({ text: `${a}tessera_session${b}=${c}${v}`, session: kind }));
  // Not the session cookie: other names (case counts), a crumb with no "=", a quoted value.
  const other: fc.Arbitrary<Crumb> = fc
    .constantFrom("theme=dark", "a=", "=v", "tessera_session", "TESSERA_SESSION=x", "tessera_sessionx=y", "x_tessera_session=y", 'q="a b"', "junk")
    .map((text) => ({ text }));
  return fc
    .tuple(fc.array(fc.oneof(session, other, other), { minLength: 0, maxLength: 4 }), fc.constantFrom("; ", ";", " ; "), fc.boolean())
    .filter(([crumbs]) => crumbs.length > 0)
    .map(([crumbs, sep, twoLines]) => {
      const texts = crumbs.map((c) => c.text);
      // Two Cookie lines are one list to Node (joined with "; "), as RFC 9113 8.2.3 has it for HTTP/2.
      const lines = twoLines && texts.length > 1 ? [texts.slice(0, 1).join(sep), texts.slice(1).join(sep)] : [texts.join(sep)];
      const sessions = crumbs.filter((c) => c.session !== undefined);
      return { lines, sessions: sessions.length, valid: sessions.length === 1 && sessions[0]!.session === "valid", what: JSON.stringify(lines.map((l) => l.replaceAll(valid, "<valid>"))) };
    });
}

/** GET /api/authenticationtoken's answer to a cookie header alone (no Authorization). */
function cookieAnswer(c: CookieHeader): Expected {
  if (c.sessions > 1) {
    return { status: 400, code: "invalid_argument", message: "the tessera_session cookie appears more than once", reason: "MALFORMED_CREDENTIAL", challenge: null };
  }
  if (c.sessions === 0) return { status: 401, code: "unauthenticated", message: "missing credential", reason: "MISSING_CREDENTIAL", challenge: "Bearer" };
  if (!c.valid) return { status: 401, code: "unauthenticated", message: "invalid session cookie", reason: "INVALID_TOKEN", challenge: "Bearer" };
  return { status: 200 };
}

/** Asserts the documented answer; a refusal's body quotes none of `secrets`. */
function assertAnswer(r: RawAnswer, expected: Expected, what: string, secrets: readonly string[]): unknown {
  const at = `${what} -> ${r.status} ${r.text.slice(0, 300)}`;
  assert.equal(r.status, expected.status, at);
  assert.match(String(r.headers["content-type"]), /^application\/json/, at);
  const body = JSON.parse(r.text) as { code?: string; message?: string; details?: Array<{ debug?: { reason?: string } }> };
  if (!("code" in expected)) return body;
  assert.equal(body.code, expected.code, at);
  assert.equal(body.message, expected.message, at);
  assert.equal(body.details?.[0]?.debug?.reason, expected.reason, at);
  assert.equal(r.headers["www-authenticate"] ?? null, expected.challenge, `WWW-Authenticate: ${at}`);
  for (const s of secrets) assert.ok(!r.text.includes(s), `the error quotes a credential: ${at}`);
  return body;
}

const headerLines = (name: string, h: Header): Record<string, string | string[]> => (h.lines.length === 0 ? {} : { [name]: h.lines.length === 1 ? h.lines[0]! : h.lines });

for (const store of storesUnderTest()) {
  describe(`hostile credential headers (${store})`, function () {
    this.timeout(60_000);
    let server: TestServer;
    let account: string;
    let apiToken: string;
    let access: string;
    let cookie: string;

    before(async () => {
      server = await startTestServer({ store });
      account = uniqueName("acct");
      apiToken = await createApiToken(server, account, "credential headers");
      const email = uniqueEmail("headers");
      await signUp(server, email);
      access = (await startSession(server, email)).access_token;
      cookie = await sessionCookie(server, await loginUserToken(server, email));
    });
    after(() => server?.close());
    afterEach(() => {
      // Nor does the log, whatever the header held.
      for (const secret of [apiToken, access, cookie]) assert.deepEqual(server.logs.filter((l) => l.includes(secret)), [], "a credential in the log");
    });

    it("GET /v1/api/auth (seed 001): any Authorization header gets its documented answer", async () => {
      const unknown = ["x", "a.b.c", `tsr_${"a".repeat(38)}`, `"${apiToken}"`, `${apiToken},`, `${apiToken}x`, testAdminToken];
      await assertProperty(authorizationHeader(apiToken, unknown), async (a) => {
        const r = await raw(server.url, "GET", "/v1/api/auth", headerLines("authorization", a));
        const body = assertAnswer(r, bearerAnswer(a, "missing bearer API token", "invalid API token"), `authorization ${a.what}`, [apiToken]);
        if (r.status === 200) assert.equal((body as { account_id: string }).account_id, account);
      }, runs);
      const ok = await raw(server.url, "GET", "/v1/api/auth", bearer(apiToken));
      assert.equal(ok.status, 200, ok.text);
    });

    it("GET /session (seed 000): any x-koms-clientid beside any Authorization header gets its documented answer", async () => {
      const unknown = ["x", "a.b.c", `tsr_${"a".repeat(38)}`, `"${access}"`, `${access},`];
      await assertProperty(fc.tuple(clientIdHeader, authorizationHeader(access, unknown)), async ([c, a]) => {
        const r = await raw(server.url, "GET", "/session", { ...headerLines("x-koms-clientid", c), ...headerLines("authorization", a) });
        const body = assertAnswer(r, sessionAnswer(c, a), `x-koms-clientid ${c.what}, authorization ${a.what}`, [access]);
        if (r.status === 200) assert.equal(typeof (body as { access_token_expires_in: unknown }).access_token_expires_in, "number");
      }, runs);
      const ok = await raw(server.url, "GET", "/session", { "x-koms-clientid": testClientId, ...bearer(access) });
      assert.equal(ok.status, 200, ok.text);
    });

    it("GET /api/authenticationtoken (seed 003): any Cookie header gets its documented answer", async () => {
      await assertProperty(cookieHeader(cookie), async (c) => {
        const r = await raw(server.url, "GET", "/api/authenticationtoken", headerLines("cookie", c));
        const body = assertAnswer(r, cookieAnswer(c), `cookie ${c.what}`, [cookie]);
        if (r.status === 200) assert.equal((body as { ttl: number }).ttl, 60);
      }, runs);
      const ok = await raw(server.url, "GET", "/api/authenticationtoken", { cookie: `tessera_session=${cookie}` });
      assert.equal(ok.status, 200, ok.text);
    });
  });
}
