// Public keys client (KeyService) with three transports: @grpc/grpc-js, Connect and REST.
import { KeyService } from "../../gen/tessera/key/v1/key_pb.js";
import { rest } from "../support/clients.js";
import { restOutcome, RpcClient, type Outcome, type Protocol } from "../support/api.js";

/** A published key (RFC 7517 JWK, public members only). */
export type Jwk = Record<string, unknown> & { kid: string; kty: string; alg: string; use: string };

export interface KeyApi {
  readonly protocol: Protocol;
  /** GET /.well-known/jwks.json */
  getJwks(): Promise<Outcome<{ keys: Jwk[] }>>;
  /** POST /v1/admin/keys:rotate (admin credential) */
  rotateKey(headers: Record<string, string>): Promise<Outcome<{ kid: string }>>;
  /** POST /v1/admin/keys/{kid}:revoke (admin credential) */
  revokeKey(kid: string, headers: Record<string, string>): Promise<Outcome<{ kid: string; signing_kid: string }>>;
  close(): void;
}

export function keyApi(protocol: Protocol, baseUrl: string): KeyApi {
  if (protocol === "rest") {
    return {
      protocol,
      getJwks: async () => restOutcome(await rest(baseUrl, "GET", "/.well-known/jwks.json")),
      rotateKey: async (headers) => restOutcome(await rest(baseUrl, "POST", "/v1/admin/keys:rotate", { json: {}, headers })),
      revokeKey: async (kid, headers) => restOutcome(await rest(baseUrl, "POST", `/v1/admin/keys/${encodeURIComponent(kid)}:revoke`, { json: {}, headers })),
      close: () => {},
    };
  }
  const rpc = new RpcClient(protocol, baseUrl);
  return {
    protocol,
    getJwks: () => rpc.callJson(KeyService.method.getJwks, {}) as Promise<Outcome<any>>,
    rotateKey: (headers) => rpc.callJson(KeyService.method.rotateKey, {}, headers) as Promise<Outcome<any>>,
    revokeKey: (kid, headers) => rpc.callJson(KeyService.method.revokeKey, { kid }, headers) as Promise<Outcome<any>>,
    close: () => rpc.close(),
  };
}
