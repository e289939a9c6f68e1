// Under TESSERA_WORKERS, a signing key revoked or an API token revoked is refused at once by every
// worker, not only by the one that answered the revocation (README, "Emergency revocation"): the
// others are told (cluster.ts shareNews) instead of waiting for their key list's reload (30 s) or
// their API-token cache (TESSERA_API_TOKEN_CACHE_SECONDS). Each connection below is a new one, so
// the workers take them in turn.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killService, request, startService, type ServiceProcess } from "../support/process.js";

const password = "correct horse battery staple";
/** Enough new connections that each of the two workers serves several. */
const connections = 6;

describe("server: TESSERA_WORKERS, revocations reach every worker at once", function () {
  this.timeout(60000);
  let dataDir: string;
  let cluster: ServiceProcess | undefined;
  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "tessera-news-"));
    // A long API-token cache: only the news can explain a refusal within it.
    cluster = await startService("sources", { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir, TESSERA_API_TOKEN_CACHE_SECONDS: "60" }, { listeners: 2 });
  });
  after(async () => {
    await killService(cluster);
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** The statuses of `connections` requests, each on a new connection. */
  const statuses = async (path: string, headers: Record<string, string>) => {
    const out: number[] = [];
    for (let i = 0; i < connections; i++) out.push((await request(cluster!.port, "GET", path, undefined, headers)).status);
    return out;
  };
  /** The workers that answered `procedure` so far (from their rpc log lines). */
  const servedBy = (procedure: string) => new Set(cluster!.lines().filter((l) => l.msg === "rpc" && l.procedure === procedure).map((l) => l.worker));

  it("a revoked signing key: every worker refuses the tokens it signed at once", async () => {
    assert.equal((await request(cluster!.port, "POST", "/jwt/user", { user: "news", pass: password })).status, 201);
    const issued = await request(cluster!.port, "GET", `/jwt/token?user=news&pass=${encodeURIComponent(password)}`);
    assert.equal(issued.status, 200, issued.text);
    const token = issued.text;
    const bearer = { authorization: `Bearer ${token}` };
    // Both workers have verified (and cached) it.
    assert.deepEqual(await statuses("/jwt/check", bearer), Array(connections).fill(200));
    assert.deepEqual([...servedBy("tessera.jwt.v1.JwtService/Check")].sort(), [1, 2]);

    const { kid } = JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString()) as { kid: string };
    const revoked = await request(cluster!.port, "POST", `/v1/admin/keys/${kid}:revoke`, {});
    assert.equal(revoked.status, 200, revoked.text);
    assert.deepEqual(await statuses("/jwt/check", bearer), Array(connections).fill(400));
  });

  it("a revoked signing key: every worker refuses at once a cookie session started with a token it signed", async () => {
    assert.equal((await request(cluster!.port, "POST", "/jwt/user", { user: "news-derived", pass: password })).status, 201);
    const issued = await request(cluster!.port, "GET", `/jwt/token?user=news-derived&pass=${encodeURIComponent(password)}`);
    assert.equal(issued.status, 200, issued.text);
    const handOff = await request(cluster!.port, "GET", "/api/authenticationtoken", undefined, { authorization: `Bearer ${issued.text}` });
    assert.equal(handOff.status, 200, handOff.text);
    const exchanged = await request(cluster!.port, "GET", `/api/authenticationtoken/${handOff.json.token as string}/user`, undefined, { authorization: undefined });
    assert.equal(exchanged.status, 200, exchanged.text);
    const value = /^tessera_session=([^;]+)/.exec(exchanged.headers["set-cookie"]?.[0] ?? "")?.[1];
    assert.ok(value, "no session cookie");
    const cookie = { cookie: `tessera_session=${value}`, authorization: undefined as unknown as string };
    assert.deepEqual(await statuses("/api/authenticationtoken", cookie), Array(connections).fill(200));
    assert.deepEqual([...servedBy("tessera.authtoken.v1.AuthenticationTokenService/CreateToken")].sort(), [1, 2]);

    const { kid } = JSON.parse(Buffer.from(issued.text.split(".")[0]!, "base64url").toString()) as { kid: string };
    const revoked = await request(cluster!.port, "POST", `/v1/admin/keys/${kid}:revoke`, {});
    assert.equal(revoked.status, 200, revoked.text);
    assert.deepEqual(await statuses("/api/authenticationtoken", cookie), Array(connections).fill(401));
  });

  it("a revoked API token: every worker refuses it at once, though each had it cached", async () => {
    const created = await request(cluster!.port, "POST", "/v1/frontend/auth", { account_id: "acct-news", description: "news" });
    assert.equal(created.status, 200, created.text);
    const bearer = { authorization: `Bearer ${created.json.token as string}` };
    assert.deepEqual(await statuses("/v1/api/auth", bearer), Array(connections).fill(200));
    assert.deepEqual([...servedBy("tessera.apitoken.v1.ApiTokenService/Authenticate")].sort(), [1, 2]);

    const link = (await request(cluster!.port, "GET", "/v1/api/auth", undefined, bearer)).json.token_link as string;
    const revoked = await request(cluster!.port, "DELETE", "/v1/frontend/auth/acct-news", { token_link: link });
    assert.equal(revoked.status, 200, revoked.text);
    assert.deepEqual(await statuses("/v1/api/auth", bearer), Array(connections).fill(401));
  });
});
