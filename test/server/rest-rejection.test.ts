// A REST handler that rejects (a failure outside the transcoder's own catch) is a 500 with a
// generic body, and is logged without the request's path: a path may hold a credential (seed
// 003's /api/authenticationtoken/{token}), and the log keeps what it is given. The transcoder
// reports the matched route template; the server, which knows no template, reports the method.
import assert from "node:assert/strict";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { startServer, type RunningServer } from "../../src/server/index.js";
import type { CredentialVerifiers } from "../../src/access/interceptor.js";

const refuse = (): Promise<never> => Promise.reject(new Error("no credential here"));
const verifiers: CredentialVerifiers = { session: refuse, apiToken: refuse, userToken: refuse, jwt: refuse, sessionCookie: refuse };

describe("server without REST routes: a path no route takes", () => {
  let server: RunningServer;
  before(async () => {
    const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", TESSERA_ADMIN_TOKEN: "admin-token-0123456789abcdef", TESSERA_CLIENT_IDS: "c" });
    server = await startServer({ config, logger: createLogger("silent"), bindings: [], verifiers, ready: async () => true });
  });
  after(() => server.close());

  it("is 404 naming its first segment, the rest not quoted (it may hold a token)", async () => {
    const secret = "path-held-token-9a7e21";
    const res = await fetch(`${server.url}/api/authenticationtoken/${secret}/user`);
    assert.equal(res.status, 404);
    const body = (await res.json()) as { code: string; message: string };
    assert.deepEqual([body.code, body.message], ["not_found", "no route for GET /api/*/*/*"]);
  });
});

describe("server: a REST handler that rejects", () => {
  let server: RunningServer;
  const logs: string[] = [];
  before(async () => {
    const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", TESSERA_ADMIN_TOKEN: "admin-token-0123456789abcdef", TESSERA_CLIENT_IDS: "c", TESSERA_LOG_LEVEL: "debug" });
    server = await startServer({
      config,
      logger: createLogger("debug", (line) => logs.push(line)),
      bindings: [],
      verifiers,
      ready: async () => true,
      rest: () => async () => {
        throw new Error("handler failed");
      },
    });
  });
  after(() => server.close());

  it("answers 500 {code: internal} and logs the method alone, never the path (which may hold a token)", async () => {
    const secret = "path-held-token-5f0c1d";
    const res = await fetch(`${server.url}/api/authenticationtoken/${secret}/user?x=${secret}`);
    assert.equal(res.status, 500);
    const body = (await res.json()) as { code: string; message: string; details: Array<{ debug?: { reason?: string } }> };
    assert.deepEqual([body.code, body.message, body.details[0]?.debug?.reason], ["internal", "internal error", "INTERNAL"]);
    const reports = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === "unexpected error");
    assert.equal(reports.length, 1, logs.join(""));
    assert.equal(reports[0]!.route, "GET (REST)");
    assert.match(String(reports[0]!.error), /^Error: handler failed$/);
    assert.deepEqual(logs.filter((l) => l.includes(secret)), []);
  });
});
