// Seed 000 client (SessionService, UserService) with three transports: @grpc/grpc-js, Connect
// and REST. Each call resolves with the same Outcome, so a test reads like the API document once
// and runs over every protocol.
import { SessionService, UserService } from "../../gen/tessera/session/v1/session_pb.js";
import { rest } from "../support/clients.js";
import { restOutcome, RpcClient, type Outcome, type Protocol } from "../support/api.js";

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

function headersOf(creds: Creds): Record<string, string> {
  const h: Record<string, string> = {};
  if (creds.clientId !== undefined) h["x-koms-clientid"] = creds.clientId;
  if (creds.access !== undefined) h.authorization = `Bearer ${creds.access}`;
  return h;
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

export function sessionApi(protocol: Protocol, baseUrl: string): SessionApi {
  if (protocol === "rest") {
    const call = async (method: string, path: string, creds: Creds, json?: unknown): Promise<Outcome<any>> =>
      restOutcome(await rest(baseUrl, method, path, { headers: headersOf(creds), ...(json !== undefined && { json }) }));
    return {
      protocol,
      createUser: (body, creds) => call("POST", "/user", creds, body),
      getUser: (creds) => call("GET", "/user", creds),
      createSession: (body, creds) => call("POST", "/session", creds, body),
      refreshSession: (body, creds) => call("PUT", "/session", creds, body),
      getSession: (creds) => call("GET", "/session", creds),
      deleteSession: (creds) => call("DELETE", "/session", creds),
      close: () => {},
    };
  }
  const rpc = new RpcClient(protocol, baseUrl);
  const s = SessionService.method;
  const u = UserService.method;
  return {
    protocol,
    createUser: (body, creds) => rpc.callJson(u.createUser, body, headersOf(creds)) as Promise<Outcome<any>>,
    getUser: (creds) => rpc.callJson(u.getUser, {}, headersOf(creds)) as Promise<Outcome<any>>,
    createSession: (body, creds) => rpc.callJson(s.createSession, body, headersOf(creds)) as Promise<Outcome<any>>,
    refreshSession: (body, creds) => rpc.callJson(s.refreshSession, body, headersOf(creds)) as Promise<Outcome<any>>,
    getSession: (creds) => rpc.callJson(s.getSession, {}, headersOf(creds)) as Promise<Outcome<any>>,
    deleteSession: (creds) => rpc.callJson(s.deleteSession, {}, headersOf(creds)) as Promise<Outcome<any>>,
    close: () => rpc.close(),
  };
}
