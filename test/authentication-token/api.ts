// Seed 003 client (AuthenticationTokenService) with three transports: @grpc/grpc-js, Connect and
// REST. The token object and the user object come in the document's terms (`created_at`, `_id`);
// the session cookie an exchange starts is in the Outcome's headers (Set-Cookie) in every protocol.
import { AuthenticationTokenService } from "../../gen/tessera/authtoken/v1/authentication_token_pb.js";
import { rest } from "../support/clients.js";
import { restOutcome, RpcClient, type Outcome, type Protocol } from "../support/api.js";

/** The token object of the document. */
export interface AuthenticationToken {
  token: string;
  ttl: number;
  user: string;
  created_at: string;
}

/** The user object of the document. */
export interface TokenUser {
  _id: string;
  firstname?: string;
  lastname?: string;
  emails: string[];
}

export type Creds = Record<string, string>;

export interface AuthenticationTokenApi {
  readonly protocol: Protocol;
  /** GET /api/authenticationtoken */
  createToken(headers: Creds): Promise<Outcome<AuthenticationToken>>;
  /** GET /api/authenticationtoken/{token} */
  getToken(token: string, headers: Creds): Promise<Outcome<AuthenticationToken>>;
  /** GET /api/authenticationtoken/{token}/user */
  exchangeToken(token: string, headers?: Creds): Promise<Outcome<TokenUser>>;
  close(): void;
}

export function authenticationTokenApi(protocol: Protocol, baseUrl: string): AuthenticationTokenApi {
  if (protocol === "rest") {
    const get = async (path: string, headers: Creds): Promise<Outcome<any>> => restOutcome(await rest(baseUrl, "GET", path, { headers }));
    return {
      protocol,
      createToken: (headers) => get("/api/authenticationtoken", headers),
      getToken: (token, headers) => get(`/api/authenticationtoken/${encodeURIComponent(token)}`, headers),
      exchangeToken: (token, headers = {}) => get(`/api/authenticationtoken/${encodeURIComponent(token)}/user`, headers),
      close: () => {},
    };
  }
  const rpc = new RpcClient(protocol, baseUrl);
  const m = AuthenticationTokenService.method;
  // CreateToken and GetToken wrap the token object in `token` (REST answers it alone: response_body).
  const unwrap = async (p: Promise<Outcome>): Promise<Outcome<any>> => {
    const o = await p;
    return o.code === "ok" ? { ...o, data: o.data!.token } : o;
  };
  return {
    protocol,
    createToken: (headers) => unwrap(rpc.callJson(m.createToken, {}, headers)),
    getToken: (token, headers) => unwrap(rpc.callJson(m.getToken, { token }, headers)),
    exchangeToken: (token, headers = {}) => rpc.callJson(m.exchangeToken, { token }, headers) as Promise<Outcome<any>>,
    close: () => rpc.close(),
  };
}

/** The `tessera_session` cookie an answer sets: its value and attributes (lower-cased names). */
export function sessionCookieOf(headers: Headers): { value: string; attributes: Map<string, string>; line: string } | undefined {
  const line = headers.getSetCookie().find((c) => c.startsWith("tessera_session="));
  if (!line) return undefined;
  const [pair, ...attrs] = line.split(";").map((p) => p.trim());
  const attributes = new Map<string, string>();
  for (const a of attrs) {
    const eq = a.indexOf("=");
    attributes.set((eq < 0 ? a : a.slice(0, eq)).toLowerCase(), eq < 0 ? "" : a.slice(eq + 1));
  }
  return { value: pair.slice("tessera_session=".length), attributes, line };
}
