// Seed 002 client (UserTokenService) with three transports: @grpc/grpc-js, Connect and REST. The
// credential rides in the headers (Basic for Login, Bearer user token for Bump and Logout); the
// answers use the document's names (`creationTime`, `lastLoginTime`, RFC 3339 times).
import { UserTokenService } from "../../gen/tessera/usertoken/v1/user_token_pb.js";
import { rest } from "../support/clients.js";
import { restOutcome, RpcClient, type Outcome, type Protocol } from "../support/api.js";

/** The UserToken object of the document. */
export interface UserToken {
  token: string;
  note?: string;
  expirationTime?: string;
  creationTime: string;
  enabled: boolean;
  version: number;
  lastUsageTime?: string;
}

export type Creds = Record<string, string>;

export interface UserTokenApi {
  readonly protocol: Protocol;
  /** POST /auth/login with Basic credentials and an optional body. */
  login(body: { note?: string; expirationTime?: string } | undefined, headers: Creds): Promise<Outcome<UserToken>>;
  /** POST /auth/bump */
  bump(headers: Creds): Promise<Outcome<{ lastLoginTime: string }>>;
  /** POST /auth/logout */
  logout(headers: Creds): Promise<Outcome<{ success: boolean }>>;
  close(): void;
}

export function userTokenApi(protocol: Protocol, baseUrl: string): UserTokenApi {
  if (protocol === "rest") {
    const post = async (path: string, headers: Creds, json?: unknown): Promise<Outcome<any>> =>
      restOutcome(await rest(baseUrl, "POST", path, { headers, ...(json !== undefined && { json }) }));
    return {
      protocol,
      login: (body, headers) => post("/auth/login", headers, body),
      bump: (headers) => post("/auth/bump", headers),
      logout: (headers) => post("/auth/logout", headers),
      close: () => {},
    };
  }
  const rpc = new RpcClient(protocol, baseUrl);
  const m = UserTokenService.method;
  return {
    protocol,
    login: (body, headers) => rpc.callJson(m.login, body ?? {}, headers) as Promise<Outcome<any>>,
    bump: (headers) => rpc.callJson(m.bump, {}, headers) as Promise<Outcome<any>>,
    logout: (headers) => rpc.callJson(m.logout, {}, headers) as Promise<Outcome<any>>,
    close: () => rpc.close(),
  };
}
