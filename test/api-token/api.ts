// Seed 001 client (ApiTokenService) with three transports: @grpc/grpc-js, Connect and REST, each
// call in the document's terms (`account_id`, `token_link`, ...) and answered with an Outcome.
import { ApiTokenService } from "../../gen/tessera/apitoken/v1/api_token_pb.js";
import { rest } from "../support/clients.js";
import { restOutcome, RpcClient, type Outcome, type Protocol } from "../support/api.js";

/** A listed token (GET /v1/frontend/auth/{account_id}). */
export interface ListedToken {
  token_link: string;
  description: string;
  issued_date: string;
  last_used?: string;
  created_by?: string;
  revoked?: string;
}

/** Request headers: `admin` for the /v1/frontend methods, `bearer(token)` for Authenticate. */
export type Creds = Record<string, string>;

export interface ApiTokenApi {
  readonly protocol: Protocol;
  /** GET /v1/api/auth */
  authenticate(headers: Creds): Promise<Outcome<{ account_id: string; token_link: string }>>;
  /** POST /v1/frontend/auth */
  createToken(body: { account_id?: string; description?: string; created_by?: string }, headers: Creds): Promise<Outcome<{ token: string }>>;
  /** PUT /v1/frontend/auth */
  updateToken(body: { token_link?: string; description?: string }, headers: Creds): Promise<Outcome<{ token_link: string; description: string }>>;
  /** GET /v1/frontend/auth/{account_id}?state= */
  listTokens(accountId: string, state: string | undefined, headers: Creds): Promise<Outcome<{ tokens: ListedToken[] }>>;
  /** DELETE /v1/frontend/auth/{account_id} */
  revokeToken(accountId: string, body: { token_link?: string }, headers: Creds): Promise<Outcome<{ revoked: string }>>;
  close(): void;
}

export function apiTokenApi(protocol: Protocol, baseUrl: string): ApiTokenApi {
  if (protocol === "rest") {
    const call = async (method: string, path: string, headers: Creds, json?: unknown): Promise<Outcome<any>> =>
      restOutcome(await rest(baseUrl, method, path, { headers, ...(json !== undefined && { json }) }));
    const accountPath = (accountId: string) => `/v1/frontend/auth/${encodeURIComponent(accountId)}`;
    return {
      protocol,
      authenticate: (headers) => call("GET", "/v1/api/auth", headers),
      createToken: (body, headers) => call("POST", "/v1/frontend/auth", headers, body),
      updateToken: (body, headers) => call("PUT", "/v1/frontend/auth", headers, body),
      listTokens: (accountId, state, headers) => call("GET", accountPath(accountId) + (state === undefined ? "" : `?state=${encodeURIComponent(state)}`), headers),
      revokeToken: (accountId, body, headers) => call("DELETE", accountPath(accountId), headers, body),
      close: () => {},
    };
  }
  const rpc = new RpcClient(protocol, baseUrl);
  const m = ApiTokenService.method;
  const call = (p: Promise<Outcome>) => p as Promise<Outcome<any>>;
  return {
    protocol,
    authenticate: (headers) => call(rpc.callJson(m.authenticate, {}, headers)),
    createToken: (body, headers) => call(rpc.callJson(m.createToken, body, headers)),
    updateToken: (body, headers) => call(rpc.callJson(m.updateToken, body, headers)),
    listTokens: (accountId, state, headers) => call(rpc.callJson(m.listTokens, { account_id: accountId, state }, headers)),
    revokeToken: (accountId, body, headers) => call(rpc.callJson(m.revokeToken, { ...body, account_id: accountId }, headers)),
    close: () => rpc.close(),
  };
}
