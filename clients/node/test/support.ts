// What @tessera/client's suites share: a real Tessera (the repository's test server), tokens it
// issued through its public REST API, a fetch that counts the key set requests, and a clock a
// test moves. The package's own code is imported from src/; the server from the repository.
import assert from "node:assert/strict";
import diagnostics from "node:diagnostics_channel";
import http2 from "node:http2";
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { loginKey } from "../../../src/core/login-name.js";
import { rest } from "../../../test/support/clients.js";
import { admin, createJwtUser, jwtLogin, jwtRefreshToken, password, signUp, startSession, uniqueEmail } from "../../../test/support/users.js";
import type { TestServer } from "../../../test/support/server.js";
import { ConnectError } from "@connectrpc/connect";
import { TokenVerificationError, type TesseraTransportOptions, type TokenErrorCode } from "../src/index.js";

export { startTestServer, storesUnderTest, testClientId, otherClientId, testAdminToken, type TestServer } from "../../../test/support/server.js";

/** A seed 004 user with a password-login access token and a refresh token. */
export async function jwtTokens(server: TestServer): Promise<{ user: string; userId: string; access: string; refresh: string }> {
  const user = await createJwtUser(server);
  const access = await jwtLogin(server, user);
  const refresh = await jwtRefreshToken(server, access);
  const stored = await server.tessera.store.users.findByLogin(user, loginKey(user));
  assert.ok(stored);
  return { user, userId: stored.id, access, refresh };
}

/** A seed 004 access token from a refresh login (`GET /jwt/token?user=<refresh token>`). */
export async function jwtRefreshLogin(server: TestServer, refresh: string): Promise<string> {
  const res = await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: refresh })}`);
  assert.equal(res.status, 200, res.text);
  return res.text;
}

/** A seed 000 user with a session for `clientId` (default: the test client). */
export async function sessionTokens(server: TestServer, clientId?: string): Promise<{ userId: string; access: string; refresh: string }> {
  const email = uniqueEmail();
  const user = await signUp(server, email);
  if (clientId === undefined) {
    const s = await startSession(server, email);
    return { userId: user.id, access: s.access_token, refresh: s.refresh_token };
  }
  const res = await rest(server.url, "POST", "/session", {
    json: { account_type: "traditional", email, password },
    headers: { "x-koms-clientid": clientId },
  });
  assert.equal(res.status, 200, res.text);
  return { userId: user.id, access: res.body.access_token, refresh: res.body.refresh_token };
}

/** `POST /v1/admin/keys:rotate`; the promoted kid. */
export async function rotateKey(server: TestServer): Promise<string> {
  const res = await rest(server.url, "POST", "/v1/admin/keys:rotate", { json: {}, headers: admin });
  assert.equal(res.status, 200, res.text);
  return res.body.kid as string;
}

/** `POST /v1/admin/keys/{kid}:revoke`: the key leaves the JWKS and its tokens fail at once. */
export async function revokeKey(server: TestServer, kid: string): Promise<void> {
  const res = await rest(server.url, "POST", `/v1/admin/keys/${kid}:revoke`, { json: {}, headers: admin });
  assert.equal(res.status, 200, res.text);
}

/** One request of countingFetch: its path and If-None-Match, the answer's status and ETag. */
export interface Exchange {
  path: string;
  ifNoneMatch: string | null;
  status: number;
  etag: string | null;
}

/** globalThis.fetch, recording every URL asked for, and each exchange once answered. */
export function countingFetch(): { fetch: typeof globalThis.fetch; urls: string[]; exchanges: Exchange[]; count(path: string): number } {
  const urls: string[] = [];
  const exchanges: Exchange[] = [];
  return {
    urls,
    exchanges,
    fetch: async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      urls.push(url);
      const res = await globalThis.fetch(input, init);
      exchanges.push({ path: new URL(url).pathname, ifNoneMatch: new Headers(init?.headers).get("if-none-match"), status: res.status, etag: res.headers.get("etag") });
      return res;
    },
    count: (path) => urls.filter((u) => new URL(u).pathname === path).length,
  };
}

/** A clock for the verifier (`now`), starting at the real time, moved by the test. */
export class TestClock {
  constructor(public ms = Date.now()) {}
  readonly now = () => this.ms;
  advanceSeconds(s: number): void {
    this.ms += s * 1000;
  }
}

/** Asserts that `p` rejects with a TokenVerificationError of `code` (and `message`, when given). */
export async function refused(p: Promise<unknown>, code: TokenErrorCode, message?: string): Promise<TokenVerificationError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof TokenVerificationError, `expected a TokenVerificationError, got ${String(e)}`);
    assert.equal(e.code, code, `code (message: ${e.message})`);
    if (message !== undefined) assert.equal(e.message, message);
    return e;
  }
  assert.fail(`expected ${code}, but the token verified`);
}

/** The request header a test sets to find its calls among those a server reads. */
export const testCallHeader = "x-test-call";

/** A request as a server read it: its method, its URL (path and query) and headers. */
export interface RequestRead {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/**
 * Runs `fn` and gives, by their `x-test-call` header, every request a server of this process
 * read meanwhile, as the server read it: HTTP/1.1 requests from node:http's
 * "http.server.request.start" channel, HTTP/2 ones as the server's handler first reads their
 * headers (Node 20 has no channel for those).
 */
export async function requestsRead(fn: () => Promise<void>): Promise<Map<string, RequestRead>> {
  const read = new Map<string, RequestRead>();
  const note = (request: RequestRead) => {
    const id = request.headers[testCallHeader];
    if (typeof id === "string" && !read.has(id)) read.set(id, { method: request.method, url: request.url, headers: { ...request.headers } });
  };
  const onHttp1 = (message: unknown) => {
    const { method = "", url = "", headers } = (message as { request: IncomingMessage }).request;
    note({ method, url, headers });
  };
  const prototype = http2.Http2ServerRequest.prototype;
  const headers = Object.getOwnPropertyDescriptor(prototype, "headers")!;
  diagnostics.subscribe("http.server.request.start", onHttp1);
  Object.defineProperty(prototype, "headers", {
    ...headers,
    get(this: http2.Http2ServerRequest) {
      const value = headers.get!.call(this) as IncomingHttpHeaders;
      note({ method: this.method, url: this.url, headers: value });
      return value;
    },
  });
  try {
    await fn();
  } finally {
    Object.defineProperty(prototype, "headers", headers);
    diagnostics.unsubscribe("http.server.request.start", onHttp1);
  }
  return read;
}

/** The deadline header (grpc-timeout or connect-timeout-ms) of each request requestsRead gives; undefined: none. */
export async function deadlineHeadersRead(fn: () => Promise<void>): Promise<Map<string, string | undefined>> {
  const read = await requestsRead(fn);
  return new Map([...read].map(([id, { headers }]) => [id, (headers["grpc-timeout"] ?? headers["connect-timeout-ms"]) as string | undefined]));
}

export { password };

/** How a suite reaches Tessera: a protocol, its HTTP version and its encoding. */
export type Variant = Pick<TesseraTransportOptions, "protocol" | "httpVersion" | "useBinaryFormat">;
export const variants: Array<[string, Variant]> = [
  ["gRPC", { protocol: "grpc" }],
  ["Connect over HTTP/2", { protocol: "connect" }],
  ["Connect JSON over HTTP/1.1", { protocol: "connect", httpVersion: "1.1", useBinaryFormat: false }],
  ["gRPC-Web over HTTP/1.1", { protocol: "grpc-web", httpVersion: "1.1" }],
];

/** The ConnectError `call` fails with; an assertion error when it succeeds. */
export async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (e) {
    return ConnectError.from(e);
  }
  assert.fail("expected the call to fail");
}
