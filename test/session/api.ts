// One seed 000 client with three transports: @grpc/grpc-js, Connect (connect-node) and REST
// (fetch). Each call resolves with the same Outcome shape, so a test reads like the API
// document once and runs over every protocol.
import assert from "node:assert/strict";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { SessionService, UserService } from "../../gen/tessera/session/v1/session_pb.js";
import { connectClient, GrpcJsClient, rest } from "../support/clients.js";

export type Protocol = "grpc" | "connect" | "rest";
export const protocols: Protocol[] = ["grpc", "connect", "rest"];

export interface Outcome<T = Record<string, unknown>> {
  /** "ok" or the Connect code name in snake_case ("unauthenticated", "invalid_argument", ...). */
  code: string;
  /** The response, with JSON (snake_case) field names whatever the protocol. */
  data?: T;
  message?: string;
  /** REST only: the HTTP status. */
  status?: number;
  /** Response headers (REST, Connect) or trailing/initial metadata (gRPC) as a Headers object. */
  headers: Headers;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  access_token_expires_in: number;
}

/** Headers of a seed 000 call: the client id, and a bearer access token when given. */
export interface Creds {
  clientId?: string;
  access?: string;
}

function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

function headersOf(creds: Creds): Record<string, string> {
  const h: Record<string, string> = {};
  if (creds.clientId !== undefined) h["x-koms-clientid"] = creds.clientId;
  if (creds.access !== undefined) h.authorization = `Bearer ${creds.access}`;
  return h;
}

function snake(value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === "$typeName") continue;
    out[k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = v;
  }
  return out;
}

export interface SessionApi {
  readonly protocol: Protocol;
  createUser(body: { email: string; password: string }, creds: Creds): Promise<Outcome<{ message: string }>>;
  getUser(creds: Creds): Promise<Outcome<{ id: string; email: string }>>;
  createSession(body: { account_type: string; email: string; password: string }, creds: Creds): Promise<Outcome<TokenPair>>;
  refreshSession(body: { refresh_token: string }, creds: Creds): Promise<Outcome<TokenPair>>;
  getSession(creds: Creds): Promise<Outcome<{ access_token_expires_in: number }>>;
  deleteSession(creds: Creds): Promise<Outcome<Record<string, never>>>;
  close(): void;
}

const camel = (body: Record<string, string>) =>
  Object.fromEntries(Object.entries(body).map(([k, v]) => [k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()), v]));

export function sessionApi(protocol: Protocol, baseUrl: string): SessionApi {
  if (protocol === "rest") return restApi(baseUrl);
  if (protocol === "connect") return connectApi(baseUrl);
  return grpcApi(baseUrl);
}

function restApi(baseUrl: string): SessionApi {
  const call = async (method: string, path: string, creds: Creds, json?: unknown): Promise<Outcome<any>> => {
    const res = await rest(baseUrl, method, path, { headers: headersOf(creds), ...(json !== undefined && { json }) });
    if (res.status >= 200 && res.status < 300) return { code: "ok", data: res.body, status: res.status, headers: res.headers };
    return { code: res.body?.code ?? `http_${res.status}`, message: res.body?.message, status: res.status, headers: res.headers };
  };
  return {
    protocol: "rest",
    createUser: (body, creds) => call("POST", "/user", creds, body),
    getUser: (creds) => call("GET", "/user", creds),
    createSession: (body, creds) => call("POST", "/session", creds, body),
    refreshSession: (body, creds) => call("PUT", "/session", creds, body),
    getSession: (creds) => call("GET", "/session", creds),
    deleteSession: (creds) => call("DELETE", "/session", creds),
    close: () => {},
  };
}

function connectApi(baseUrl: string): SessionApi {
  const sessions: Client<typeof SessionService> = connectClient(SessionService, baseUrl);
  const users: Client<typeof UserService> = connectClient(UserService, baseUrl);
  const call = async (fn: (opts: { headers: Record<string, string>; onHeader: (h: Headers) => void }) => Promise<object>, creds: Creds): Promise<Outcome<any>> => {
    let headers = new Headers();
    try {
      const res = await fn({ headers: headersOf(creds), onHeader: (h) => (headers = h) });
      return { code: "ok", data: snake(res as Record<string, unknown>), headers };
    } catch (e) {
      const err = ConnectError.from(e);
      return { code: codeName(err.code), message: err.rawMessage, headers: err.metadata };
    }
  };
  return {
    protocol: "connect",
    createUser: (body, creds) => call((o) => users.createUser(body, o), creds),
    getUser: (creds) => call((o) => users.getUser({}, o), creds),
    createSession: (body, creds) => call((o) => sessions.createSession(camel(body), o), creds),
    refreshSession: (body, creds) => call((o) => sessions.refreshSession(camel(body), o), creds),
    getSession: (creds) => call((o) => sessions.getSession({}, o), creds),
    deleteSession: (creds) => call((o) => sessions.deleteSession({}, o), creds),
    close: () => {},
  };
}

function grpcApi(baseUrl: string): SessionApi {
  const sessions = new GrpcJsClient(SessionService, baseUrl);
  const users = new GrpcJsClient(UserService, baseUrl);
  const call = async (p: Promise<{ message?: object; error?: { code: number; details: string; metadata: { getMap(): Record<string, unknown> } } }>): Promise<Outcome<any>> => {
    const r = await p;
    if (r.message) return { code: "ok", data: snake(r.message as Record<string, unknown>), headers: new Headers() };
    const headers = new Headers();
    for (const [k, v] of Object.entries(r.error!.metadata.getMap())) headers.set(k, String(v));
    return { code: codeName(r.error!.code as Code), message: r.error!.details, headers };
  };
  return {
    protocol: "grpc",
    createUser: (body, creds) => call(users.call("CreateUser", body, headersOf(creds))),
    getUser: (creds) => call(users.call("GetUser", {}, headersOf(creds))),
    createSession: (body, creds) => call(sessions.call("CreateSession", camel(body), headersOf(creds))),
    refreshSession: (body, creds) => call(sessions.call("RefreshSession", camel(body), headersOf(creds))),
    getSession: (creds) => call(sessions.call("GetSession", {}, headersOf(creds))),
    deleteSession: (creds) => call(sessions.call("DeleteSession", {}, headersOf(creds))),
    close: () => {
      sessions.close();
      users.close();
    },
  };
}

let counter = 0;
/** A fresh email per test, so tests never share users. */
export function uniqueEmail(): string {
  return `user${Date.now().toString(36)}${(counter++).toString(36)}@example.com`;
}

export const goodPassword = "violet-kettle-harbour-29";

/** HTTP status of each Connect code over REST (ARCHITECTURE.md). */
export const httpStatus: Record<string, number> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  already_exists: 409,
  resource_exhausted: 429,
  unavailable: 503,
};

/** Asserts the outcome's code (and, over REST, the HTTP status it maps to). */
export function expectCode(outcome: Outcome<unknown>, code: string, message?: RegExp): void {
  assert.equal(outcome.code, code, `expected ${code}, got ${outcome.code}: ${outcome.message ?? ""}`);
  if (outcome.status !== undefined && code !== "ok") assert.equal(outcome.status, httpStatus[code]);
  if (message) assert.match(outcome.message ?? "", message);
}
