// The password logins and sign-ups of every API, through real clients over three transports:
// REST over HTTP/1.1 (fetch), REST over h2c (node:http2, as `curl --http2-prior-knowledge`),
// and gRPC (@grpc/grpc-js, h2c too). Each call resolves with the shared Outcome
// (support/api.ts), so a login-protection test reads like the API documents and runs over every
// transport. Answers that carry a credential give it as `data.token`.
//
// Nothing here depends on how the server learns the client's address: every client of one
// transport reaches the server the same way, so one test's requests share one address.
import assert from "node:assert/strict";
import argon2 from "argon2";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { SessionService, UserService } from "../../gen/tessera/session/v1/session_pb.js";
import { UserTokenService } from "../../gen/tessera/usertoken/v1/user_token_pb.js";
import { expectCode, expectOk, restOutcome, RpcClient, type Outcome } from "../support/api.js";
import { basic, bearer, rest, type RestResponse } from "../support/clients.js";
import { RestH2c } from "../support/rest-h2c.js";
import { spyOn } from "../support/spy.js";
import { clientIdHeader, uniqueEmail, uniqueName } from "../support/users.js";

export type Transport = "rest-h1" | "rest-h2c" | "grpc";
export const transports: readonly Transport[] = ["rest-h1", "rest-h2c", "grpc"];

/** An answer that carries a credential (an access token, a JWT, a user token), as `token`. */
export type Credential = { token: string };
/** GET /jwt/check: the token's claims. */
export type Claims = Record<string, unknown>;

export interface LoginApi {
  readonly transport: Transport;
  /** Seed 000 sign-up: `POST /user` {email, password}; UserService/CreateUser. */
  signUp(email: string, password: string): Promise<Outcome<unknown>>;
  /** Seed 004 sign-up, no credential: `POST /jwt/user` {user, pass}; JwtService/CreateUser. */
  createJwtUser(user: string, pass: string): Promise<Outcome<unknown>>;
  /** Seed 000 login: `POST /session` {account_type, email, password}; SessionService/CreateSession. */
  logIn(email: string, password: string): Promise<Outcome<Credential>>;
  /** Seed 004 login: `GET /jwt/token?user=&pass=`; JwtService/GetToken. */
  jwtToken(user: string, pass: string): Promise<Outcome<Credential>>;
  /** Seed 004 password change, with a password login's access token: `PATCH /jwt/user` {pass}; JwtService/ChangePassword. */
  changeJwtPassword(accessToken: string, pass: string): Promise<Outcome<unknown>>;
  /** Seed 002 login: `POST /auth/login` with `Authorization: Basic`; UserTokenService/Login. */
  basicLogin(login: string, password: string): Promise<Outcome<Credential>>;
  /** Seed 000: `GET /session` with the access token; SessionService/GetSession. */
  getSession(accessToken: string): Promise<Outcome<unknown>>;
  /** Seed 004: `GET /jwt/check?access_token=`; JwtService/Check. */
  jwtCheck(accessToken: string): Promise<Outcome<Claims>>;
  close(): void;
}

export function loginApi(transport: Transport, baseUrl: string): LoginApi {
  return transport === "grpc" ? grpcApi(baseUrl) : restApi(transport, baseUrl);
}

/** The outcome with `data` made `{token}` from the answer (when ok). */
function credential<T>(o: Outcome<T>, token: (data: T) => string): Outcome<Credential> {
  return o.code === "ok" ? { ...o, data: { token: token(o.data as T) } } : (o as Outcome<unknown> as Outcome<Credential>);
}

function restApi(transport: "rest-h1" | "rest-h2c", baseUrl: string): LoginApi {
  const h2 = transport === "rest-h2c" ? new RestH2c(baseUrl) : undefined;
  const call = async (method: string, path: string, opts: { json?: unknown; headers?: Record<string, string> } = {}): Promise<Outcome<any>> => {
    const res: RestResponse = h2 ? await h2.request(method, path, opts) : await rest(baseUrl, method, path, opts);
    return restOutcome(res);
  };
  return {
    transport,
    signUp: (email, password) => call("POST", "/user", { json: { email, password }, headers: clientIdHeader }),
    createJwtUser: (user, pass) => call("POST", "/jwt/user", { json: { user, pass } }),
    logIn: async (email, password) =>
      credential(await call("POST", "/session", { json: { account_type: "traditional", email, password }, headers: clientIdHeader }), (d: any) => d.access_token),
    jwtToken: async (user, pass) => credential(await call("GET", `/jwt/token?${new URLSearchParams({ user, pass })}`), (text: string) => text),
    changeJwtPassword: (accessToken, pass) => call("PATCH", "/jwt/user", { json: { pass }, headers: bearer(accessToken) }),
    basicLogin: async (login, password) => credential(await call("POST", "/auth/login", { headers: basic(login, password) }), (d: any) => d.token),
    getSession: (accessToken) => call("GET", "/session", { headers: { ...clientIdHeader, ...bearer(accessToken) } }),
    jwtCheck: (accessToken) => call("GET", `/jwt/check?${new URLSearchParams({ access_token: accessToken })}`),
    close: () => h2?.close(),
  };
}

function grpcApi(baseUrl: string): LoginApi {
  const rpc = new RpcClient("grpc", baseUrl);
  const utf8 = new TextDecoder();
  return {
    transport: "grpc",
    signUp: (email, password) => rpc.callJson(UserService.method.createUser, { email, password }, clientIdHeader),
    createJwtUser: (user, pass) => rpc.callJson(JwtService.method.createUser, { user, pass }),
    logIn: async (email, password) =>
      credential(await rpc.callJson(SessionService.method.createSession, { account_type: "traditional", email, password }, clientIdHeader), (d) => d.access_token as string),
    jwtToken: async (user, pass) => {
      const o = await rpc.callJson(JwtService.method.getToken, { user, pass });
      return credential(o, () => utf8.decode(o.response!.body!.data));
    },
    changeJwtPassword: (accessToken, pass) => rpc.callJson(JwtService.method.changePassword, { pass }, bearer(accessToken)),
    basicLogin: async (login, password) => credential(await rpc.callJson(UserTokenService.method.login, {}, basic(login, password)), (d) => d.token as string),
    getSession: (accessToken) => rpc.callJson(SessionService.method.getSession, {}, { ...clientIdHeader, ...bearer(accessToken) }),
    jwtCheck: async (accessToken) => {
      const o = await rpc.callJson(JwtService.method.check, { access_token: accessToken });
      return o.code === "ok" ? { ...o, data: o.data!.claims as Claims } : o;
    },
    close: () => rpc.close(),
  };
}

/** Asserts a refusal that says when to retry: the code, message and reason, and a Retry-After of whole seconds (>= 1), which the RetryInfo repeats; returns it. */
export function expectRetryLater(outcome: Outcome<unknown>, code: "resource_exhausted" | "unavailable", message: string, reason: "LOGIN_LOCKED" | "TOO_MANY_SIGNUPS" | "HASHER_BUSY"): number {
  expectCode(outcome, code, message, reason);
  const retryAfter = outcome.headers.get("retry-after");
  assert.match(retryAfter ?? "", /^[1-9]\d*$/, `Retry-After: ${retryAfter}`);
  // The RetryInfo says the same seconds as Retry-After (README: Errors).
  assert.equal(outcome.details?.retryDelaySeconds, Number(retryAfter), "RetryInfo");
  return Number(retryAfter);
}

export const wrongPassword = "not-the-password-42";

/** A password login API, with the account it logs in to. */
export interface LoginPath {
  name: string;
  /** Creates an account with `password` (names start with `prefix`) and returns its login. */
  createAccount(api: LoginApi, password: string): Promise<string>;
  attempt(api: LoginApi, login: string, password: string): Promise<Outcome<unknown>>;
}

/** The password logins of every seed that has one. */
export function loginPaths(prefix: string): LoginPath[] {
  const emailAccount = async (api: LoginApi, pw: string) => {
    const email = uniqueEmail(prefix);
    expectOk(await api.signUp(email, pw), 201);
    return email;
  };
  return [
    { name: "POST /session (seed 000)", createAccount: emailAccount, attempt: (api, login, pw) => api.logIn(login, pw) },
    {
      name: "GET /jwt/token (seed 004)",
      async createAccount(api, pw) {
        const user = uniqueName(prefix);
        expectOk(await api.createJwtUser(user, pw), 201);
        return user;
      },
      attempt: (api, login, pw) => api.jwtToken(login, pw),
    },
    { name: "POST /auth/login, HTTP Basic (seed 002)", createAccount: emailAccount, attempt: (api, login, pw) => api.basicLogin(login, pw) },
  ];
}

/** What a refused login shows a caller, and what it cost in argon2 calls. */
export interface Seen {
  code: string;
  message: string | undefined;
  reason: string | undefined;
  challenge: string | null;
  retryAfter: string | null;
  verifies: number;
  hashes: number;
}

/**
 * Counts argon2's verifications and hashes (of the in-process server) from now until restore():
 * `seen(call)` answers what the call showed and what it cost.
 */
export function argon2Costs(): { seen(call: () => Promise<Outcome<unknown>>): Promise<Seen>; restore(): void } {
  const verify = spyOn(argon2, "verify");
  const hash = spyOn(argon2, "hash");
  return {
    async seen(call) {
      const [v, h] = [verify.calls.length, hash.calls.length];
      const o = await call();
      return {
        code: o.code,
        message: o.message,
        reason: o.details?.reason,
        challenge: o.headers.get("www-authenticate"),
        retryAfter: o.headers.get("retry-after"),
        verifies: verify.calls.length - v,
        hashes: hash.calls.length - h,
      };
    },
    restore() {
      verify.restore();
      hash.restore();
    },
  };
}
