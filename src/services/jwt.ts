// JwtService (seed 004): message in -> core call -> message out. Credentials of the
// authenticated methods are checked by the access interceptor (CREDENTIAL_JWT /
// CREDENTIAL_JWT_PASSWORD); Check and GetToken take their token as an argument instead.
import { readFileSync } from "node:fs";
import { create, type JsonObject } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { HttpBodySchema, type HttpBody } from "../../gen/google/api/httpbody_pb.js";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { clientAddressKey, principalKey } from "../access/context.js";
import { bearerToken } from "../access/credentials.js";
import type { JwtPrincipal } from "../access/principal.js";
import { unauthenticated } from "../core/errors.js";
import type { JwtTokens } from "../core/jwt-tokens.js";
import type { KeyRing } from "../core/key-ring.js";
import type { ServiceBinding } from "../server/index.js";

export interface JwtServiceDeps {
  jwt: JwtTokens;
  keyRing: Pick<KeyRing, "publicKeyPem">;
}

const textPlain = "text/plain; charset=utf-8";

// Read once: GET /version answers Tessera's package version.
const version = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

function text(value: string): HttpBody {
  return create(HttpBodySchema, { contentType: textPlain, data: new TextEncoder().encode(value) });
}

/** The principal the interceptor verified; only CREDENTIAL_JWT* methods call this. */
function caller(ctx: HandlerContext): JwtPrincipal {
  const p = ctx.values.get(principalKey);
  if (p.kind !== "jwt") throw unauthenticated("MISSING_CREDENTIAL", "missing access token");
  return p;
}

export function createJwtService(deps: JwtServiceDeps): ServiceImpl<typeof JwtService> {
  const { jwt, keyRing } = deps;
  return {
    async getToken(req, ctx) {
      return { body: text(await jwt.getToken(req.user, req.pass, ctx.values.get(clientAddressKey))) };
    },

    async check(req, ctx) {
      return { claims: (await jwt.check(req.accessToken, bearerToken(ctx.requestHeader))) as JsonObject };
    },

    async getPublicKey() {
      return { body: text(await keyRing.publicKeyPem()) };
    },

    async getRefreshToken(_req, ctx) {
      return { body: text(await jwt.issueRefreshToken(caller(ctx).userId)) };
    },

    async deleteRefreshToken(req, ctx) {
      const userId = caller(ctx).userId;
      await jwt.revokeRefreshToken(userId, req.refreshToken);
      return {};
    },

    async createUser(req) {
      await jwt.createUser(req.user, req.pass);
      return {};
    },

    async changePassword(req, ctx) {
      await jwt.changePassword(caller(ctx).userId, req.pass);
      return {};
    },

    async getUser(_req, ctx) {
      const p = ctx.values.get(principalKey);
      // Authentication optional: no valid token -> no claims (REST: 204 with no body).
      if (p.kind !== "jwt") return {};
      return { claims: p.claims as JsonObject };
    },

    async deleteUser(_req, ctx) {
      await jwt.deleteUser(caller(ctx).userId);
      return {};
    },

    async getVersion() {
      return { version };
    },
  };
}

/** The CREDENTIAL_JWT check for the access interceptor. */
export function jwtVerifier(jwt: JwtTokens): (token: string) => Promise<JwtPrincipal> {
  return async (token) => {
    const v = await jwt.verifyAccessToken(token);
    return { kind: "jwt", userId: v.userId, claims: v.claims, authenticationMethod: v.authenticationMethod };
  };
}

export function jwtBinding(deps: JwtServiceDeps): ServiceBinding {
  // ServiceBinding erases the service type; the implementation above is checked against it.
  return { service: JwtService, impl: createJwtService(deps) as unknown as ServiceBinding["impl"] };
}
