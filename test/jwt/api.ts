// Seed 004 client (JwtService) with three transports: @grpc/grpc-js, Connect and REST. Arguments
// are given in the document's terms (`user`, `pass`, `access_token`, `refresh_token`); over REST
// they go in one of the document's argument styles (JSON body by default, as the document writes
// them; a form body, URL-encoded or multipart, or the query string), the access token also from
// `Authorization: Bearer`.
// Plain-text answers (tokens, the PEM key) come as `{content_type, text}` in every protocol.
import http from "node:http";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import type { RestResponse } from "../support/clients.js";
import { restOutcome, RpcClient, type Outcome, type Protocol } from "../support/api.js";

export type ArgStyle = "json" | "form" | "multipart" | "query";
export const argStyles: readonly ArgStyle[] = ["json", "form", "multipart", "query"];

/** The multipart/form-data body (RFC 7578) of text fields, as `curl -F` and browsers write it. */
export function multipartBody(fields: Record<string, string>, boundary = "----tessera-test-7MA4YWxkTrZu0gW"): { contentType: string; body: string } {
  const parts = Object.entries(fields).map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: `${parts.join("")}--${boundary}--\r\n` };
}

/** A plain-text answer: a JWT or the PEM public key. */
export interface PlainText {
  content_type: string;
  text: string;
}

/** The claims of an access token, as GET /check and GET /user answer them. */
export type Claims = Record<string, unknown>;

export type Creds = Record<string, string>;

export interface JwtApi {
  readonly protocol: Protocol;
  /** GET /token: `{user, pass}`, or `{user: <refresh token>}`. */
  getToken(args: { user?: string; pass?: string }): Promise<Outcome<PlainText>>;
  /** GET /check */
  check(args: { access_token?: string }, headers?: Creds): Promise<Outcome<Claims>>;
  /** GET /pubkey */
  getPublicKey(): Promise<Outcome<PlainText>>;
  /** GET /refresh_token */
  getRefreshToken(args: { access_token?: string }, headers?: Creds): Promise<Outcome<PlainText>>;
  /** DELETE /refresh_token; answers {} (REST: 204, no body). */
  deleteRefreshToken(args: { refresh_token?: string; access_token?: string }, headers?: Creds): Promise<Outcome<Record<string, never>>>;
  /** POST /user; answers {} (REST: 201). */
  createUser(args: { user?: string; pass?: string }): Promise<Outcome<Record<string, never>>>;
  /** PATCH /user; answers {}. */
  changePassword(args: { pass?: string; access_token?: string }, headers?: Creds): Promise<Outcome<Record<string, never>>>;
  /** GET /user: the claims, or no data without a valid token (REST: 204, no body). */
  getUser(args: { access_token?: string }, headers?: Creds): Promise<Outcome<Claims | undefined>>;
  /** DELETE /user; answers {} (REST: 204, no body). */
  deleteUser(args: { access_token?: string }, headers?: Creds): Promise<Outcome<Record<string, never>>>;
  /** GET /version */
  getVersion(): Promise<Outcome<{ version: string }>>;
  close(): void;
}

export interface JwtApiOptions {
  /** REST only: where the API is mounted (TESSERA_JWT_BASE_PATH). */
  basePath?: string;
  /** REST only: how arguments are sent. */
  style?: ArgStyle;
}

export function jwtApi(protocol: Protocol, baseUrl: string, opts: JwtApiOptions = {}): JwtApi {
  if (protocol === "rest") return restJwtApi(baseUrl, opts);
  const rpc = new RpcClient(protocol, baseUrl);
  const m = JwtService.method;
  const utf8 = new TextDecoder();
  const plain = async (p: ReturnType<typeof rpc.callJson>): Promise<Outcome<any>> => {
    const o = await p;
    if (o.code !== "ok") return o;
    const body = (o.response as { body?: { contentType: string; data: Uint8Array } }).body;
    return { ...o, data: body && { content_type: body.contentType, text: utf8.decode(body.data) } };
  };
  const claims = async (p: ReturnType<typeof rpc.callJson>): Promise<Outcome<any>> => {
    const o = await p;
    return o.code === "ok" ? { ...o, data: o.data!.claims } : o;
  };
  const as = (p: ReturnType<typeof rpc.callJson>) => p as Promise<Outcome<any>>;
  return {
    protocol,
    getToken: (args) => plain(rpc.callJson(m.getToken, args)),
    check: (args, headers) => claims(rpc.callJson(m.check, args, headers)),
    getPublicKey: () => plain(rpc.callJson(m.getPublicKey, {})),
    getRefreshToken: (args, headers) => plain(rpc.callJson(m.getRefreshToken, args, headers)),
    deleteRefreshToken: (args, headers) => as(rpc.callJson(m.deleteRefreshToken, args, headers)),
    createUser: (args) => as(rpc.callJson(m.createUser, args)),
    changePassword: (args, headers) => as(rpc.callJson(m.changePassword, args, headers)),
    getUser: (args, headers) => claims(rpc.callJson(m.getUser, args, headers)),
    deleteUser: (args, headers) => as(rpc.callJson(m.deleteUser, args, headers)),
    getVersion: () => as(rpc.callJson(m.getVersion, {})),
    close: () => rpc.close(),
  };
}

function restJwtApi(baseUrl: string, opts: JwtApiOptions): JwtApi {
  const base = (opts.basePath ?? "/jwt").replace(/\/$/, "");
  const call = async (method: string, path: string, args: Record<string, string | undefined>, headers: Creds = {}) =>
    restOutcome(await argumentCall(baseUrl, method, base + path, args, { style: opts.style, headers }));
  const plain = async (p: Promise<Outcome<any>>): Promise<Outcome<any>> => {
    const o = await p;
    return o.code === "ok" ? { ...o, data: { content_type: o.headers.get("content-type") ?? "", text: o.data ?? "" } } : o;
  };
  /** A 204 has no body: the answer is the empty message. */
  const empty = async (p: Promise<Outcome<any>>): Promise<Outcome<any>> => {
    const o = await p;
    return o.code === "ok" ? { ...o, data: o.data ?? {} } : o;
  };
  return {
    protocol: "rest",
    getToken: (args) => plain(call("GET", "/token", args)),
    check: (args, headers) => call("GET", "/check", args, headers),
    getPublicKey: () => plain(call("GET", "/pubkey", {})),
    getRefreshToken: (args, headers) => plain(call("GET", "/refresh_token", args, headers)),
    deleteRefreshToken: (args, headers) => empty(call("DELETE", "/refresh_token", args, headers)),
    createUser: (args) => call("POST", "/user", args),
    changePassword: (args, headers) => call("PATCH", "/user", args, headers),
    getUser: (args, headers) => call("GET", "/user", args, headers),
    deleteUser: (args, headers) => empty(call("DELETE", "/user", args, headers)),
    getVersion: () => call("GET", "/version", {}),
    close: () => {},
  };
}

/**
 * One REST request with `args` sent in `style` (JSON body by default). node:http rather than
 * fetch, because the document allows a JSON or form body on GET, which fetch refuses to send.
 */
export function argumentCall(
  baseUrl: string,
  method: string,
  path: string,
  args: Record<string, string | undefined> = {},
  opts: { style?: ArgStyle; headers?: Record<string, string> } = {},
): Promise<RestResponse> {
  const style = opts.style ?? "json";
  const headers: Record<string, string> = { ...opts.headers };
  const given = Object.fromEntries(Object.entries(args).filter(([, v]) => v !== undefined)) as Record<string, string>;
  let body: string | undefined;
  let target = path;
  const hasArgs = Object.keys(given).length > 0;
  if (style === "query" && hasArgs) target += `?${new URLSearchParams(given).toString()}`;
  if (style === "json" && hasArgs) {
    body = JSON.stringify(given);
    headers["content-type"] = "application/json";
  }
  if (style === "form" && hasArgs) {
    body = new URLSearchParams(given).toString();
    headers["content-type"] = "application/x-www-form-urlencoded";
  }
  if (style === "multipart" && hasArgs) {
    const multipart = multipartBody(given);
    body = multipart.body;
    headers["content-type"] = multipart.contentType;
  }
  if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
  const url = new URL(target, baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        const responseHeaders = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          for (const value of Array.isArray(v) ? v : v === undefined ? [] : [v]) responseHeaders.append(k, value);
        }
        let parsed: unknown = text;
        if ((res.headers["content-type"] ?? "").includes("json") && text.length > 0) parsed = JSON.parse(text);
        resolve({ status: res.statusCode ?? 0, headers: responseHeaders, text, body: parsed });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}
