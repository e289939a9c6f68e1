// The metrics' label sets are made from names the server itself has (services, methods, store
// operations, APIs, protocols, codes, outcomes), never from what a request carries: a label value
// taken from a path, a client id, a login, a token's kid, a content type or an address would add
// a series per distinct value, held for the life of the process and sent on every scrape.
// Checked by scraping after a round of hostile requests (every value distinct, carrying a marker)
// of each kind, once with 3 (every series those kinds of calls make now exists) and once with 100
// (the second round adds no series, and no series names a marker), on each store under test.
import assert from "node:assert/strict";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";

/** The series of the tessera_* metrics in an exposition text: each sample line without its value. */
function tesseraSeries(text: string): Set<string> {
  return new Set(
    text
      .split("\n")
      .filter((l) => l.startsWith("tessera_"))
      .map((l) => l.slice(0, l.lastIndexOf(" "))),
  );
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

/** One request of each hostile kind per `i`, every value naming `tag` and `i`. */
async function hostileRound(server: TestServer, tag: string, n: number): Promise<void> {
  const send = (path: string, init: RequestInit = {}) => fetch(server.url + path, init).then((r) => r.arrayBuffer());
  for (let i = 0; i < n; i++) {
    const v = `${tag}${i}`;
    const ipv6 = `2001:db8:${i.toString(16)}::${tag.length}`;
    const common = {
      "x-forwarded-for": ipv6,
      "x-request-id": `req-${v}`,
      "user-agent": `agent-${v}`,
      traceparent: `00-${i.toString(16).padStart(32, "a")}-${i.toString(16).padStart(16, "b")}-01`,
    };
    await Promise.all([
      // Paths no route has, under REST, gRPC and Connect.
      send(`/${v}/users/${v}`, { headers: common }),
      send(`/tessera.${v}.v1.Service/${v}`, { method: "POST", headers: { ...common, "content-type": "application/grpc" }, body: new Uint8Array(5) }),
      send(`/tessera.jwt.v1.JwtService/${v}`, { method: "POST", headers: { ...common, "content-type": "application/json" }, body: "{}" }),
      // A method of a service with a content type of the client's making.
      send("/tessera.jwt.v1.JwtService/GetVersion", { method: "POST", headers: { ...common, "content-type": `application/${v}` }, body: "{}" }),
      // A login that does not exist, from a client id that does not, and from one that does.
      send("/session", {
        method: "POST",
        headers: { ...common, "content-type": "application/json", "x-koms-clientid": `client-${v}` },
        body: JSON.stringify({ account_type: "traditional", email: `${v}@example.com`, password: `pw-${v}` }),
      }),
      send("/session", {
        method: "POST",
        headers: { ...common, "content-type": "application/json", "x-koms-clientid": testClientId },
        body: JSON.stringify({ account_type: "traditional", email: `${v}@example.com`, password: `pw-${v}` }),
      }),
      send(`/jwt/token?${new URLSearchParams({ user: `user-${v}`, pass: `pw-${v}` })}`, { headers: common }),
      // A JWT naming a kid no key has, and an API token no one issued.
      send("/session", {
        headers: { ...common, "x-koms-clientid": testClientId, authorization: `Bearer ${b64({ alg: "EdDSA", kid: `kid-${v}` })}.${b64({ sub: v })}.AAAA` },
      }),
      send("/v1/api/auth", { headers: { ...common, authorization: `Bearer tok-${v}` } }),
    ]);
  }
}

for (const store of storesUnderTest()) {
  describe(`hostile: request values add no metric series, on ${store}`, function () {
    this.timeout(240_000);
    let server: TestServer;
    before(async () => {
      server = await startTestServer({
        store,
        env: {
          TESSERA_LOG_LEVEL: "error",
          // The same outcomes in both rounds: no lock, every refusal stored (no summary).
          TESSERA_LOGIN_MAX_FAILURES: "1000",
          TESSERA_AUDIT_REFUSALS_PER_MINUTE: "0",
          TESSERA_AUDIT_REFUSALS_PER_MINUTE_TOTAL: "0",
        },
      });
    });
    after(() => server?.close());

    const scrape = async () => {
      const res = await fetch(`${server.url}/metrics`);
      assert.equal(res.status, 200);
      return res.text();
    };

    it("100 distinct paths, methods, content types, client ids, logins, kids, tokens and addresses of each kind leave the series as 3 did", async () => {
      await hostileRound(server, "warmup", 3);
      const warm = tesseraSeries(await scrape());
      await hostileRound(server, "hostile", 100);
      const text = await scrape();
      const after = tesseraSeries(text);
      assert.deepEqual([...after].filter((s) => !warm.has(s)), [], "series added by the second round");
      assert.ok(!/warmup|hostile/.test(text), "a series names a request's value");
      // The round did reach the methods and the counters: it is not an empty scrape.
      assert.ok([...after].some((s) => s.startsWith('tessera_logins_total{api="session",outcome="failure"')), [...after].join("\n"));
    });
  });
}
