/**
 * Property-based hostile input on EVERY REST binding (walked from the descriptors): malformed
 * JSON, wrong types, huge numbers, deep nesting, invalid UTF-8, NUL bytes, very long strings,
 * MongoDB operator objects and prototype-pollution keys in the body, the query and the path,
 * with no credential, a garbage one, or each valid credential. Every answer is a 2xx (a
 * well-typed odd value may be accepted) or a 4xx with a JSON `{code, message}` body; a body that
 * cannot be the request message is always a 4xx; never a 5xx; the server still answers
 * /healthz; and a refused request leaves the store exactly as it was.
 *
 * Replay a failure with HOSTILE_SEED=<printed seed>; scale with HOSTILE_RUNS=<n>.
 */
import { strict as assert } from "node:assert";
import fc from "fast-check";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { password } from "../support/users.js";
import { hostileBody, hostileQuery, hostileSegment } from "./arbitraries.js";
import {
  credentialHeaders,
  diff,
  fcParams,
  healthy,
  makeCredentials,
  raw,
  restRoutes,
  storeReader,
  type Credentials,
  type Route,
  type Snapshot,
  type StoreReader,
} from "./support.js";

const runsPerRoute = 30;

for (const store of storesUnderTest()) {
  describe(`hostile REST input on every route (${store})`, function () {
    this.timeout(120_000);
    let server: TestServer;
    let reader: StoreReader;
    let creds: Credentials;
    let credSets: Array<Record<string, string>>;
    let baseline: Snapshot;
    let generation = 0;
    const routes = restRoutes();

    before(async () => {
      // Login protection would lock 127.0.0.1 out after the fuzzer's failed logins, and the
      // credentials are re-made after an accepted request; its own suites test it.
      server = await startTestServer({ store, env: { TESSERA_LOGIN_PROTECTION: "false" } });
      creds = await makeCredentials(server, `${store}-${generation++}`);
      credSets = credentialHeaders(creds);
      reader = await storeReader(server);
      baseline = await reader.snapshot();
    });
    after(async () => {
      await reader?.close();
      await server?.close();
    });

    it("walks at least 25 bindings", () => {
      assert.ok(routes.length >= 25, `${routes.length} routes`);
    });

    it("the snapshot sees a write (so 'unchanged' means something)", async () => {
      const before = await reader.snapshot();
      const r = await raw(server.url, "POST", "/jwt/user", { "content-type": "application/json" }, JSON.stringify({ user: `probe-${store}`, pass: password }));
      assert.equal(r.status, 201, r.text);
      assert.notEqual(diff(before, await reader.snapshot()), "");
      baseline = await reader.snapshot();
    });

    for (const route of routes) {
      const readsBody = route.body !== "" || route.service.typeName === "tessera.jwt.v1.JwtService";
      it(`${route.httpMethod} ${route.path} (${route.method.name})`, async () => {
        const arb = fc.record({
          cred: fc.nat({ max: 8 }),
          segments: fc.array(hostileSegment, { minLength: 3, maxLength: 3 }),
          query: hostileQuery(route.method.input),
          body: fc.option(hostileBody(route.method.input), { freq: 4, nil: undefined }),
        });
        const params = fcParams(runsPerRoute);
        try {
          await fc.assert(
            fc.asyncProperty(arb, async (input) => {
              let v = 0;
              let pathReject = false;
              const path =
                "/" +
                route.segments
                  .map((s) => {
                    if ("literal" in s) return s.literal;
                    const seg = input.segments[v++]!;
                    pathReject ||= seg.mustReject;
                    return seg.text;
                  })
                  .join("/") +
                (route.verb ? `:${route.verb}` : "");
              const target = path + (input.query.text ? `?${input.query.text}` : "");
              const headers: Record<string, string> = { ...credSets[input.cred]! };
              if (input.body) headers["content-type"] = input.body.contentType;
              const res = await raw(server.url, route.httpMethod, target, headers, input.body?.bytes);
              const what = `${route.httpMethod} ${target.slice(0, 200)} [${input.body?.kind ?? "no body"}] -> ${res.status} ${res.text.slice(0, 300)}`;

              // Store first: an accepted write moves the baseline even when an assertion below fails,
              // so a failure never leaves a stale baseline behind for the shrinker or the next route.
              const after = await reader.snapshot();
              const changed = diff(baseline, after);
              if (res.status < 400 && changed !== "") {
                // Accepted and it wrote something (a rotation, a logout...): fresh credentials.
                creds = await makeCredentials(server, `${store}-${generation++}`);
                credSets = credentialHeaders(creds);
                baseline = await reader.snapshot();
              }

              assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined, `Object.prototype polluted by ${what}`);
              assert.ok(res.status >= 200 && res.status < 500, `not a 2xx/4xx: ${what}`);
              const mustReject = pathReject || input.query.mustReject || (readsBody && input.body?.mustReject === true);
              if (mustReject) assert.ok(res.status >= 400, `accepted: ${what}`);
              if (res.status >= 400) {
                assert.match(String(res.headers["content-type"]), /^application\/json/, what);
                const body = JSON.parse(res.text) as { code?: unknown; message?: unknown };
                assert.equal(typeof body.code, "string", what);
                assert.equal(typeof body.message, "string", what);
                assert.notEqual(body.code, "internal", what);
                assert.notEqual(body.code, "unknown", what);
                assert.equal(changed, "", `a refused request changed the store: ${what}\n${changed}`);
              }
            }),
            params,
          );
        } catch (e) {
          const cause = e instanceof Error && e.cause instanceof Error ? `\n${e.cause.message}` : "";
          throw new Error(`seed ${params.seed} (replay: HOSTILE_SEED=${params.seed}): ${e instanceof Error ? e.message : String(e)}${cause}`);
        }
        await healthy(server.url);
      });
    }
  });
}
