// The framework's floor: a minimal connect-node server serving the same two RPCs Tessera's
// per-call figures are about, with nothing of Tessera's server around them (no interceptors,
// no transcoder, no logging, no call scope), on the same transports.
// - tessera.jwt.v1.JwtService/GetVersion: the same answer as Tessera's, no work at all;
// - tessera.session.v1.SessionService/GetSession: the least a correct token check does, on
//   the same data: the bearer token's signature checked once with node:crypto against the key
//   Tessera publishes (then remembered by its text, as Tessera's verifier does), its exp, then
//   the session row read from Tessera's own SQLite file (WAL: a concurrent reader) and compared,
//   and the user's row (active, credential epoch), since a session ends with its user's
//   deactivation or password change.
//
// Listeners (ports from argv): `h2c` (node:http2, prior knowledge: gRPC), `h1` (node:http:
// Connect, gRPC-Web) and `one` (the same handler behind Tessera's one-port listener, so the
// cost of serving HTTP/1.1 and h2c on one port is measured against `h2c`).
// `als` is `h2c` with every request run in an AsyncLocalStorage scope, as Tessera's call scope
// (src/call-scope.ts) runs each: the price of the request id and client address reaching
// every log line without being passed along.
// Run by bench/floor.ts: node --import tsx bench/floor-server.ts <h2c> <h1> <one> <als> <dataDir> <jwksUrl>
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import http from "node:http";
import http2 from "node:http2";
import { runInCall } from "../src/call-scope.js";
import Database from "better-sqlite3";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { JwtService } from "../gen/tessera/jwt/v1/jwt_pb.js";
import { SessionService } from "../gen/tessera/session/v1/session_pb.js";
import { packageVersion } from "../src/project-files.js";
import { listen } from "../src/server/listener.js";

const [h2cPort, h1Port, onePort, alsPort] = process.argv.slice(2, 6).map(Number);
const dataDir = process.argv[6];
const jwksUrl = process.argv[7];

const db = new Database(`${dataDir}/tessera.db`, { readonly: true, fileMustExist: true });
db.pragma("busy_timeout = 5000");
const sessionById = db.prepare("SELECT user_id, client_id, access_jti, expires_at, ended_at, credential_epoch FROM sessions WHERE id = ?");
const userById = db.prepare("SELECT active, credential_epoch FROM users WHERE id = ?");

const keys = new Map<string, KeyObject>();
for (const jwk of ((await (await fetch(jwksUrl)).json()) as { keys: Array<{ kid: string }> }).keys) {
  keys.set(jwk.kid, createPublicKey({ key: jwk, format: "jwk" }));
}
const verified = new Map<string, { sub: string; sid: string; jti: string; exp: number }>();
const unauthenticated = () => new ConnectError("unauthenticated", Code.Unauthenticated);

function claimsOf(token: string) {
  let c = verified.get(token);
  if (c === undefined) {
    const [h, p, s] = token.split(".");
    const header = JSON.parse(Buffer.from(h, "base64url").toString()) as { kid: string };
    const key = keys.get(header.kid);
    if (!key || !verify(null, Buffer.from(`${h}.${p}`), key, Buffer.from(s, "base64url"))) throw unauthenticated();
    c = JSON.parse(Buffer.from(p, "base64url").toString()) as { sub: string; sid: string; jti: string; exp: number };
    verified.set(token, c);
  }
  return c;
}

const handler = connectNodeAdapter({
  routes(router) {
    router.service(JwtService, { getVersion: () => ({ version: packageVersion }) });
    router.service(SessionService, {
      getSession(_req, ctx) {
        const auth = ctx.requestHeader.get("authorization") ?? "";
        const clientId = ctx.requestHeader.get("x-koms-clientid");
        if (!auth.startsWith("Bearer ")) throw unauthenticated();
        const c = claimsOf(auth.slice(7));
        const now = Date.now();
        if (c.exp * 1000 <= now) throw unauthenticated();
        const row = sessionById.get(c.sid) as { user_id: string; client_id: string; access_jti: string; expires_at: number; ended_at: number | null; credential_epoch: number } | undefined;
        if (!row || row.ended_at !== null || row.expires_at <= now || row.client_id !== clientId || row.user_id !== c.sub || row.access_jti !== c.jti) {
          throw unauthenticated();
        }
        const user = userById.get(c.sub) as { active: number; credential_epoch: number } | undefined;
        if (!user || user.active !== 1 || user.credential_epoch !== row.credential_epoch) throw unauthenticated();
        return { accessTokenExpiresIn: Math.ceil((c.exp * 1000 - now) / 1000) };
      },
    });
  },
});

http2.createServer(handler).listen(h2cPort, "127.0.0.1");
http.createServer({ keepAliveTimeout: 60_000 }, handler).listen(h1Port, "127.0.0.1");
await listen(handler, {
  host: "127.0.0.1",
  port: onePort,
  requestTimeoutMs: 60_000,
  headersTimeoutMs: 20_000,
  idleTimeoutMs: 60_000,
  keepAliveMs: 60_000,
  maxHeaderBytes: 16 * 1024,
  maxConcurrentStreams: 100,
});
let calls = 0;
http2.createServer((req, res) => runInCall({ requestId: String(++calls) }, () => handler(req, res))).listen(alsPort, "127.0.0.1");
process.stdout.write("ready\n");
