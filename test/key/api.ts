// Public keys client (KeyService) with three transports: @grpc/grpc-js, Connect and REST.
import assert from "node:assert/strict";
import { decodeProtectedHeader } from "jose";
import { KeyService } from "../../gen/tessera/key/v1/key_pb.js";
import type { ManualClock } from "../../src/core/clock.js";
import { rest } from "../support/clients.js";
import { expectOk, restOutcome, RpcClient, type Outcome, type Protocol } from "../support/api.js";
import type { TestServer } from "../support/server.js";
import { admin, jwtLogin, signUp, uniqueEmail } from "../support/users.js";

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

/** Rotates the keys on `server` over REST with the admin token; the promoted kid. */
export async function rotateKeys(server: TestServer): Promise<string> {
  return expectOk(await keyApi("rest", server.url).rotateKey(admin)).kid;
}

/** Revokes `kid` on `server` over REST with the admin token. */
export async function revokeKeyOn(server: TestServer, kid: string): Promise<void> {
  expectOk(await keyApi("rest", server.url).revokeKey(kid, admin));
}

/** The kid a JWT's header names. */
export const kidOf = (token: string): string => decodeProtectedHeader(token).kid!;

/**
 * A seed 004 access token of a new user (named from `prefix`) signed by a key that a rotation
 * on `server` then retired (the next key, published for the lead on `clock`, signs at once);
 * the retired kid and the one that signs now.
 */
export async function accessTokenOfRetiredKey(server: TestServer, clock: ManualClock, prefix: string): Promise<{ email: string; access: string; retired: string; current: string }> {
  const email = uniqueEmail(prefix);
  await signUp(server, email);
  clock.advance(server.config.keyPublishSeconds * 1000);
  const access = await jwtLogin(server, email);
  const retired = kidOf(access);
  const current = await rotateKeys(server);
  assert.notEqual(current, retired);
  return { email, access, retired, current };
}
