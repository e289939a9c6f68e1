// Shared pieces of the hostile-input suites: every REST binding and every RPC of Tessera's protos
// (walked from the generated descriptors, so a new route is covered without editing a list),
// the credentials a fuzzed request may carry, a snapshot of the whole store (read behind the
// server's back: better-sqlite3 on the file, the mongo driver on the database), and raw
// HTTP/1.1 and HTTP/2 requests that can send bytes fetch refuses to send.
import { restMount } from "../../src/tessera.js";
import { strict as assert } from "node:assert";
import http from "node:http";
import http2 from "node:http2";
import { join } from "node:path";
import { create, toBinary, type DescMethod, type DescService } from "@bufbuild/protobuf";
import Database from "better-sqlite3";
import fc from "fast-check";
import { MongoClient } from "mongodb";
import { HealthCheckRequestSchema } from "../../gen/health/v1/health_pb.js";
import { ApiTokenService } from "../../gen/tessera/apitoken/v1/api_token_pb.js";
import { AuditService } from "../../gen/tessera/audit/v1/audit_pb.js";
import { AuthenticationTokenService } from "../../gen/tessera/authtoken/v1/authentication_token_pb.js";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { KeyService } from "../../gen/tessera/key/v1/key_pb.js";
import { SessionService, UserService } from "../../gen/tessera/session/v1/session_pb.js";
import { UserTokenService } from "../../gen/tessera/usertoken/v1/user_token_pb.js";
import { httpRules } from "../../src/transcode/binding.js";
import { parsePathTemplate } from "../../src/transcode/index.js";
import { basic, bearer } from "../support/clients.js";
import { startTestServer, testAdminToken, testClientId, type TestServer } from "../support/server.js";
import {
  createApiToken,
  createAuthenticationToken,
  createJwtUser,
  jwtLogin,
  jwtRefreshToken,
  loginUserToken,
  password,
  signUp,
  startSession,
} from "../support/users.js";

export const services: readonly DescService[] = [
  SessionService,
  UserService,
  ApiTokenService,
  UserTokenService,
  AuthenticationTokenService,
  JwtService,
  KeyService,
  AuditService,
];

export interface Route {
  service: DescService;
  method: DescMethod;
  httpMethod: string;
  /** A concrete path: "x" for a `*` variable, "x/y" for a `**`. */
  path: string;
  /** Literal segments and where the variables sit, so a fuzzer can put its own text there. */
  segments: Array<{ literal: string } | { variable: true; multi: boolean }>;
  verb?: string;
  body: string;
  basePath: string;
}

function basePath(s: DescService, jwtBase: string): string {
  return restMount(s, jwtBase).basePath;
}

/** Every google.api.http binding (additional bindings included) as mounted by Tessera. */
export function restRoutes(jwtBase = "/jwt"): Route[] {
  const out: Route[] = [];
  for (const s of services) {
    for (const m of s.methods) {
      for (const rule of httpRules(m)) {
        const kind = rule.pattern.case!;
        const value = rule.pattern.value!;
        const template = typeof value === "string" ? value : value.path;
        const httpMethod = typeof value === "string" ? kind.toUpperCase() : value.kind;
        const base = basePath(s, jwtBase);
        const t = parsePathTemplate(base.replace(/\/$/, "") + template);
        const segments = t.segments.map((seg) =>
          seg.kind === "literal" ? { literal: seg.value } : { variable: true as const, multi: seg.kind !== "wildcard" },
        );
        const path = "/" + t.segments.map((seg) => (seg.kind === "literal" ? seg.value : seg.kind === "wildcard" ? "x" : "x/y")).join("/") + (t.verb ? ":" + t.verb : "");
        out.push({ service: s, method: m, httpMethod, path, segments, verb: t.verb, body: rule.body, basePath: base });
      }
    }
  }
  return out;
}

/** Every RPC of Tessera's own services. */
export function rpcs(): Array<{ service: DescService; method: DescMethod }> {
  return services.flatMap((service) => service.methods.map((method) => ({ service, method })));
}

// ---------------------------------------------------------------------------------------------
// Credentials: one valid credential of every kind, so fuzzed requests get past authentication and
// reach the argument checks of the handlers too.

export interface Credentials {
  email: string;
  jwtUser: string;
  sessionAccess: string;
  sessionRefresh: string;
  apiToken: string;
  userToken: string;
  authToken: string;
  jwtAccess: string;
  jwtRefresh: string;
  basic: string;
}

/** One fresh credential of every kind; `tag` keeps the logins apart between calls. */
export async function makeCredentials(server: TestServer, tag: string): Promise<Credentials> {
  const email = `hostile-${tag}@example.com`;
  // Three independent chains, made side by side: a fuzzer re-makes its credentials after every
  // accepted write, hundreds of times a run.
  const [[session, userToken, authToken], [jwtUser, jwtAccess, jwtRefresh], apiToken] = await Promise.all([
    (async () => {
      await signUp(server, email);
      const [session, [userToken, authToken]] = await Promise.all([
        startSession(server, email),
        loginUserToken(server, email).then(async (token) => [token, await createAuthenticationToken(server, bearer(token))] as const),
      ]);
      return [session, userToken, authToken] as const;
    })(),
    (async () => {
      const jwtUser = await createJwtUser(server, `hostile-jwt-${tag}`);
      const jwtAccess = await jwtLogin(server, jwtUser);
      return [jwtUser, jwtAccess, await jwtRefreshToken(server, jwtAccess)] as const;
    })(),
    createApiToken(server, `acct-${tag}`, "hostile"),
  ]);
  return {
    email,
    jwtUser,
    sessionAccess: session.access_token,
    sessionRefresh: session.refresh_token,
    apiToken,
    userToken,
    authToken,
    jwtAccess,
    jwtRefresh,
    basic: basic(email, password).authorization,
  };
}

/** Header sets a fuzzed request may carry: nothing, garbage, or each valid credential. */
export function credentialHeaders(c: Credentials): Array<Record<string, string>> {
  return [
    {},
    { authorization: "Bearer \u00ff\u00fe" },
    bearer(testAdminToken),
    { "x-koms-clientid": testClientId },
    { "x-koms-clientid": testClientId, ...bearer(c.sessionAccess) },
    bearer(c.apiToken),
    bearer(c.userToken),
    bearer(c.jwtAccess),
    { authorization: c.basic },
  ];
}

// ---------------------------------------------------------------------------------------------
// Store snapshots

/**
 * Tables/collections and fields that legitimately change on a refused request (a refused call is
 * itself an audit event: a failed login, sign-up or admin call).
 */
const volatileTables = new Set(["login_attempts", "api_token_usage", "user_token_usage", "schema_version", "audit_events"]);
const volatileFields = new Set(["last_used_at", "lastUsedAt", "last_login_at", "lastLoginAt"]);
const volatileMark = /^(api-touch|ut-touch):/;

export type Snapshot = Map<string, string[]>;

export interface StoreReader {
  snapshot(): Promise<Snapshot>;
  close(): Promise<void>;
}

function clean(row: Record<string, unknown>): string {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(row).sort()) if (!volatileFields.has(k)) out[k] = row[k];
  return JSON.stringify(out);
}

/**
 * Reads every table (SQLite) or collection (MongoDB) of the server's store, minus the
 * bookkeeping that failed logins and token use are documented to update.
 */
export async function storeReader(server: TestServer): Promise<StoreReader> {
  const c = server.config;
  if (c.mongodbUri) {
    const client = new MongoClient(c.mongodbUri);
    await client.connect();
    const db = client.db(c.mongodbDatabase);
    return {
      async snapshot() {
        const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((x) => x.name).filter((n) => !volatileTables.has(n)).sort();
        const snap: Snapshot = new Map();
        await Promise.all(
          names.map(async (n) => {
            const docs = await db.collection(n).find({}).toArray();
            snap.set(
              n,
              docs
                .filter((d) => !(n === "marks" && volatileMark.test(String(d._id))))
                .map((d) => clean(d as Record<string, unknown>))
                .sort(),
            );
          }),
        );
        return snap;
      },
      close: () => client.close(),
    };
  }
  const db = new Database(join(c.dataDir, "tessera.db"), { readonly: true, fileMustExist: true });
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>)
    .map((t) => t.name)
    .filter((n) => !volatileTables.has(n));
  return {
    async snapshot() {
      const snap: Snapshot = new Map();
      for (const t of tables) {
        snap.set(t, (db.prepare(`SELECT * FROM "${t}"`).all() as Array<Record<string, unknown>>).map(clean).sort());
      }
      return snap;
    },
    async close() {
      db.close();
    },
  };
}

/** "" when equal, else a short description of what changed (table and row counts, first row). */
export function diff(a: Snapshot, b: Snapshot): string {
  const out: string[] = [];
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(k) ?? [];
    const y = b.get(k) ?? [];
    if (x.length === y.length && x.every((r, i) => r === y[i])) continue;
    const added = y.filter((r) => !x.includes(r));
    const removed = x.filter((r) => !y.includes(r));
    out.push(`${k}: ${x.length} -> ${y.length} rows; +${added.slice(0, 1).join("")} -${removed.slice(0, 1).join("")}`);
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Raw requests

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** A 400 `invalid_argument` answer with this message, its first detail the ErrorInfo of `reason`. */
export function assertBadRequest(a: { status: number; text: string }, message: string, reason: string): void {
  assert.equal(a.status, 400, a.text);
  const body = JSON.parse(a.text) as { code: string; message: string; details: Array<{ debug: { reason: string } }> };
  assert.equal(body.code, "invalid_argument");
  assert.equal(body.message, message);
  assert.equal(body.details[0]?.debug.reason, reason);
}

/** One HTTP/1.1 request with exactly these bytes as the path and body (fetch would normalise them); an array value is sent as that many header lines. */
export function raw(baseUrl: string, method: string, path: string, headers: Record<string, string | string[]>, body?: Buffer | string): Promise<RawAnswer> {
  const u = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, method, path, headers: body !== undefined ? { ...headers, "content-length": String(Buffer.byteLength(body)) } : headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer to ${method} ${path} within 10 s`)));
    req.on("error", reject);
    req.end(body);
  });
}

export interface H2Answer {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  data: Buffer;
  /** RST_STREAM code when the server reset the stream. */
  rstCode?: number;
}

/** One HTTP/2 request on an existing session (gRPC framing is up to the caller). */
export function h2request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer, opts: { endStream?: boolean; timeoutMs?: number } = {}): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined && opts.endStream !== false });
    let resHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      stream.close();
      reject(new Error(`stream hung: no end within ${opts.timeoutMs ?? 10_000} ms`));
    }, opts.timeoutMs ?? 10_000);
    stream.on("response", (h) => (resHeaders = h));
    stream.on("trailers", (t) => (trailers = t));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("close", () => {
      clearTimeout(timer);
      resolve({ headers: resHeaders, trailers, data: Buffer.concat(chunks), rstCode: stream.rstCode || undefined });
    });
    stream.on("error", () => {
      // "close" follows with rstCode set
    });
    if (body !== undefined) {
      if (opts.endStream === false) stream.write(body);
      else stream.end(body);
    }
  });
}

/** A gRPC length-prefixed message. */
export function grpcFrame(payload: Uint8Array, flags = 0, length = payload.length): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(length >>> 0, 1);
  return Buffer.concat([head, Buffer.from(payload)]);
}

/** A gRPC-Web Health/Watch request (HTTP/1.1), to pipeline; with `timeout`, its grpc-timeout. */
export function watchCall(timeout?: string): Buffer {
  const body = grpcFrame(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "" })));
  const deadline = timeout === undefined ? "" : `grpc-timeout: ${timeout}\r\n`;
  return Buffer.concat([
    Buffer.from(`POST /grpc.health.v1.Health/Watch HTTP/1.1\r\nhost: x\r\ncontent-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n${deadline}content-length: ${body.length}\r\n\r\n`),
    body,
  ]);
}

/** grpc-status of an answer (trailers, or headers for a trailers-only answer). */
export function grpcStatus(a: H2Answer): number | undefined {
  const v = a.trailers["grpc-status"] ?? a.headers["grpc-status"];
  return v === undefined ? undefined : Number(v);
}

export async function healthy(baseUrl: string): Promise<void> {
  const r = await raw(baseUrl, "GET", "/healthz", {});
  assert.equal(r.status, 200, `the server no longer answers /healthz: ${r.status} ${r.text}`);
}

/**
 * One test server for the suite it is called in, checked after every test: it still answers
 * /healthz, and nothing the test sent made it log at error level. Returns the server's getter.
 */
export function serverCheckedAfterEach(): () => TestServer {
  let server: TestServer | undefined;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });
  afterEach(async () => {
    await healthy(server!.url);
    const errors = server!.logs.filter((l) => (JSON.parse(l) as { level: string }).level === "error");
    assert.deepEqual(errors, []);
  });
  return () => server!;
}

/**
 * fast-check parameters: the seed from HOSTILE_SEED (to replay a failure); otherwise a fixed one
 * under CI (a run must be reproducible, and a landing must not depend on luck) and a fresh one
 * elsewhere (every local run explores new inputs). Printed on failure.
 */
export function fcParams(numRuns: number): { numRuns: number; seed: number; verbose: number } {
  const seed = process.env.HOSTILE_SEED
    ? Number(process.env.HOSTILE_SEED)
    : process.env.CI === "true"
      ? 20261127
      : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  return { numRuns: Number(process.env.HOSTILE_RUNS ?? numRuns), seed, verbose: 1 };
}

/** Asserts an async property over `numRuns` inputs (fcParams), naming the seed to replay on failure. */
export async function assertProperty<T>(arb: fc.Arbitrary<T>, property: (input: T) => Promise<void>, numRuns: number): Promise<void> {
  const params = fcParams(numRuns);
  try {
    await fc.assert(fc.asyncProperty(arb, property), params);
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? `\n${e.cause.message}` : "";
    throw new Error(`seed ${params.seed} (replay: HOSTILE_SEED=${params.seed}): ${e instanceof Error ? e.message : String(e)}${cause}`);
  }
}

/** The gRPC-Web trailer frame (flag 0x80) at the end of a body, as header lines. */
export function grpcWebTrailer(body: Buffer): Record<string, string> {
  let pos = 0;
  while (pos + 5 <= body.length) {
    const flags = body[pos]!;
    const len = body.readUInt32BE(pos + 1);
    if (flags & 0x80) {
      const out: Record<string, string> = {};
      for (const line of body.subarray(pos + 5, pos + 5 + len).toString("latin1").split("\r\n")) {
        const i = line.indexOf(":");
        if (i > 0) out[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      return out;
    }
    pos += 5 + len;
  }
  throw new Error(`no trailer frame in ${body.toString("hex")}`);
}

/** The envelopes of a Connect streaming body: [flags, payload text]. */
export function connectEnvelopes(body: Buffer): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  let pos = 0;
  while (pos + 5 <= body.length) {
    const len = body.readUInt32BE(pos + 1);
    out.push([body[pos]!, body.subarray(pos + 5, pos + 5 + len).toString("utf8")]);
    pos += 5 + len;
  }
  assert.equal(pos, body.length, "the body ends on an envelope boundary");
  return out;
}

/** Polls `check` every 50 ms until it holds; false if it has not within `limitMs`. */
export async function eventually(check: () => boolean, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
