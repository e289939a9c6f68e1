// Under TESSERA_WORKERS, a signing key revoked or an API token revoked is refused at once by every
// worker, not only by the one that answered the revocation (README, "Emergency revocation"): the
// others are told (cluster.ts shareNews) instead of waiting for their key list's reload (30 s) or
// their API-token cache (TESSERA_API_TOKEN_CACHE_SECONDS); so too when the store holds the
// revocation but answers it with an error (503: test/support/landing-failures.ts), which every
// worker must take for made; so too a key rotation the store holds but answers with an error. Each
// connection below is a new one, so the workers take them in turn.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killService, request, startService, type ServiceProcess } from "../support/process.js";

const password = "correct horse battery staple";
/** Enough new connections that each of the two workers serves several. */
const connections = 6;

/**
 * A cluster of two workers for the suite that calls it, started with `env` (and `nodeArgs`): a
 * long API-token cache, so only the news can explain a refusal within it. Compiled (`npm start`),
 * unless `nodeArgs` preload a module that patches the store's modules as the sources load them.
 */
function newsCluster(env: Record<string, string> = {}, nodeArgs?: string[]) {
  let dataDir: string;
  let cluster: ServiceProcess | undefined;
  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "tessera-news-"));
    cluster = await startService(nodeArgs ? "sources" : "compiled", { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir, TESSERA_API_TOKEN_CACHE_SECONDS: "60", ...env }, { listeners: 2, ...(nodeArgs && { nodeArgs }) });
  });
  after(async () => {
    await killService(cluster);
    rmSync(dataDir, { recursive: true, force: true });
  });
  /** The workers that answered `procedure` so far (from their rpc log lines). */
  const servedBy = (procedure: string) => new Set(cluster!.lines().filter((l) => l.msg === "rpc" && l.procedure === procedure).map((l) => l.worker));
  const statuses = async (path: string, headers: Record<string, string>) => {
    const out: number[] = [];
    for (let i = 0; i < connections; i++) out.push((await request(cluster!.port, "GET", path, undefined, headers)).status);
    return out;
  };
  return {
    port: () => cluster!.port,
    /** The statuses of `connections` requests, each on a new connection. */
    statuses,
    servedBy,
    /** A new API token of `account`, checked (and cached) by both workers, with its link. */
    async cachedApiToken(account: string) {
      const created = await request(cluster!.port, "POST", "/v1/frontend/auth", { account_id: account, description: "news" });
      assert.equal(created.status, 200, created.text);
      const bearer = { authorization: `Bearer ${created.json.token as string}` };
      assert.deepEqual(await statuses("/v1/api/auth", bearer), Array(connections).fill(200));
      assert.deepEqual([...servedBy("tessera.apitoken.v1.ApiTokenService/Authenticate")].sort(), [1, 2]);
      const link = (await request(cluster!.port, "GET", "/v1/api/auth", undefined, bearer)).json.token_link as string;
      return { bearer, link };
    },
  };
}

describe("server: TESSERA_WORKERS, revocations reach every worker at once", function () {
  this.timeout(60000);
  const { port, statuses, servedBy, cachedApiToken } = newsCluster();

  it("a revoked signing key: every worker refuses the tokens it signed at once", async () => {
    assert.equal((await request(port(), "POST", "/jwt/user", { user: "news", pass: password })).status, 201);
    const issued = await request(port(), "GET", `/jwt/token?user=news&pass=${encodeURIComponent(password)}`);
    assert.equal(issued.status, 200, issued.text);
    const token = issued.text;
    const bearer = { authorization: `Bearer ${token}` };
    // Both workers have verified (and cached) it.
    assert.deepEqual(await statuses("/jwt/check", bearer), Array(connections).fill(200));
    assert.deepEqual([...servedBy("tessera.jwt.v1.JwtService/Check")].sort(), [1, 2]);

    const { kid } = JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString()) as { kid: string };
    const revoked = await request(port(), "POST", `/v1/admin/keys/${kid}:revoke`, {});
    assert.equal(revoked.status, 200, revoked.text);
    assert.deepEqual(await statuses("/jwt/check", bearer), Array(connections).fill(400));
  });

  it("a revoked signing key: every worker refuses at once a cookie session started with a token it signed", async () => {
    assert.equal((await request(port(), "POST", "/jwt/user", { user: "news-derived", pass: password })).status, 201);
    const issued = await request(port(), "GET", `/jwt/token?user=news-derived&pass=${encodeURIComponent(password)}`);
    assert.equal(issued.status, 200, issued.text);
    const handOff = await request(port(), "GET", "/api/authenticationtoken", undefined, { authorization: `Bearer ${issued.text}` });
    assert.equal(handOff.status, 200, handOff.text);
    const exchanged = await request(port(), "GET", `/api/authenticationtoken/${handOff.json.token as string}/user`, undefined, { authorization: undefined });
    assert.equal(exchanged.status, 200, exchanged.text);
    const value = /^tessera_session=([^;]+)/.exec(exchanged.headers["set-cookie"]?.[0] ?? "")?.[1];
    assert.ok(value, "no session cookie");
    const cookie = { cookie: `tessera_session=${value}`, authorization: undefined as unknown as string };
    assert.deepEqual(await statuses("/api/authenticationtoken", cookie), Array(connections).fill(200));
    assert.deepEqual([...servedBy("tessera.authtoken.v1.AuthenticationTokenService/CreateToken")].sort(), [1, 2]);

    const { kid } = JSON.parse(Buffer.from(issued.text.split(".")[0]!, "base64url").toString()) as { kid: string };
    const revoked = await request(port(), "POST", `/v1/admin/keys/${kid}:revoke`, {});
    assert.equal(revoked.status, 200, revoked.text);
    assert.deepEqual(await statuses("/api/authenticationtoken", cookie), Array(connections).fill(401));
  });

  it("a revoked API token: every worker refuses it at once, though each had it cached", async () => {
    const { bearer, link } = await cachedApiToken("acct-news");
    const revoked = await request(port(), "DELETE", "/v1/frontend/auth/acct-news", { token_link: link });
    assert.equal(revoked.status, 200, revoked.text);
    assert.deepEqual(await statuses("/v1/api/auth", bearer), Array(connections).fill(401));
  });
});

describe("server: TESSERA_WORKERS, revocations the store holds but answers with an error reach every worker at once", function () {
  this.timeout(60000);
  // Every worker's revocations are written, then answered 503 (test/support/landing-failures.ts).
  // Keys sign as soon as a rotation promotes them: a key that stopped signing (and verifies) is
  // revoked alone, no promotion written before its revocation.
  const { port, statuses, servedBy, cachedApiToken } = newsCluster(
    { TESSERA_KEY_PUBLISH_SECONDS: "0", LANDING_FAILURES: "1,2" },
    ["--import", "tsx", "--import", "./test/support/landing-failures.ts"],
  );
  const assertStoreUnavailable = (res: { status: number; json: any; text: string }) => {
    assert.equal(res.status, 503, res.text);
    assert.equal(res.json.code, "unavailable");
    assert.equal(res.json.message, "the store is unavailable, try again shortly");
  };

  it("a revoked API token answered 503: every worker refuses it at once, though each had it cached", async () => {
    const { bearer, link } = await cachedApiToken("acct-doubt");
    assertStoreUnavailable(await request(port(), "DELETE", "/v1/frontend/auth/acct-doubt", { token_link: link }));
    assert.deepEqual(await statuses("/v1/api/auth", bearer), Array(connections).fill(401));
  });

  it("a revoked signing key answered 503: every worker refuses at once the tokens it signed, though each had verified them", async () => {
    assert.equal((await request(port(), "POST", "/jwt/user", { user: "doubt", pass: password })).status, 201);
    const issued = await request(port(), "GET", `/jwt/token?user=doubt&pass=${encodeURIComponent(password)}`);
    assert.equal(issued.status, 200, issued.text);
    const bearer = { authorization: `Bearer ${issued.text}` };
    const { kid } = JSON.parse(Buffer.from(issued.text.split(".")[0]!, "base64url").toString()) as { kid: string };
    const rotated = await request(port(), "POST", "/v1/admin/keys:rotate", {});
    assert.equal(rotated.status, 200, rotated.text);
    assert.notEqual(rotated.json.kid, kid);
    // Both workers have verified (and cached) it, signed by a key that no longer signs.
    assert.deepEqual(await statuses("/jwt/check", bearer), Array(connections).fill(200));
    assert.deepEqual([...servedBy("tessera.jwt.v1.JwtService/Check")].sort(), [1, 2]);

    assertStoreUnavailable(await request(port(), "POST", `/v1/admin/keys/${kid}:revoke`, {}));
    assert.deepEqual(await statuses("/jwt/check", bearer), Array(connections).fill(400));
  });
});

describe("server: TESSERA_WORKERS, a rotation the store holds but answers with an error reaches every worker at once", function () {
  this.timeout(60000);
  // Every worker's rotations are written, then answered 503 (test/support/landing-failures.ts).
  // Keys sign as soon as a rotation promotes them.
  const { port, servedBy } = newsCluster(
    { TESSERA_KEY_PUBLISH_SECONDS: "0", LANDING_ROTATIONS: "1,2" },
    ["--import", "tsx", "--import", "./test/support/landing-failures.ts"],
  );
  /** The kids of the tokens `connections` logins are issued, then the JWKS each of as many other connections answers. */
  const signedAndPublished = async () => {
    const signed: string[] = [];
    const published: string[][] = [];
    for (let i = 0; i < connections; i++) {
      const issued = await request(port(), "GET", `/jwt/token?user=rotated&pass=${encodeURIComponent(password)}`);
      assert.equal(issued.status, 200, issued.text);
      signed.push((JSON.parse(Buffer.from(issued.text.split(".")[0]!, "base64url").toString()) as { kid: string }).kid);
    }
    for (let i = 0; i < connections; i++) {
      const jwks = await request(port(), "GET", "/.well-known/jwks.json");
      assert.equal(jwks.status, 200, jwks.text);
      published.push((jwks.json.keys as Array<{ kid: string }>).map((k) => k.kid));
    }
    return { signed, published };
  };

  it("a rotation answered 503: every worker signs with the promoted key and publishes the new next key at once", async () => {
    assert.equal((await request(port(), "POST", "/jwt/user", { user: "rotated", pass: password })).status, 201);
    const before = await signedAndPublished();
    assert.deepEqual([...servedBy("tessera.jwt.v1.JwtService/GetToken")].sort(), [1, 2]);
    assert.deepEqual([...servedBy("tessera.key.v1.KeyService/GetJwks")].sort(), [1, 2]);
    const [next, signing] = before.published[0]!;
    assert.deepEqual(before.signed, Array(connections).fill(signing));

    const rotated = await request(port(), "POST", "/v1/admin/keys:rotate", {});
    assert.equal(rotated.status, 503, rotated.text);
    assert.equal(rotated.json.message, "the store is unavailable, try again shortly");
    const after = await signedAndPublished();
    assert.deepEqual(after.signed, Array(connections).fill(next), "the promoted key signs in every worker");
    const [newNext] = after.published[0]!;
    assert.ok(newNext !== next && newNext !== signing, "a new next key is published");
    assert.deepEqual(after.published, Array(connections).fill([newNext, next, signing]), "every worker publishes the new next key");
  });
});
