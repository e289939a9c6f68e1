// JwtService (seed 004): message in -> core call -> message out. Credentials of the
// authenticated methods are checked by the access interceptor (CREDENTIAL_JWT /
// CREDENTIAL_JWT_PASSWORD); Check's token comes from the interceptor unverified (its
// `token_field`), and GetToken's credentials are its arguments.
import { create, type JsonObject } from "@bufbuild/protobuf";
import { HttpBodySchema, type HttpBody } from "../../gen/google/api/httpbody_pb.js";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { cacheable, clientAddressKey, presentedTokenKey, principalKey, requirePrincipal } from "../access/context.js";
import type { JwtTokens } from "../core/jwt-tokens.js";
import type { KeyRing } from "../core/key-ring.js";
import { packageVersion } from "../project-files.js";
import { bind, type ServiceBinding } from "./binding.js";

const textPlain = "text/plain; charset=utf-8";


function text(value: string): HttpBody {
  return create(HttpBodySchema, { contentType: textPlain, data: new TextEncoder().encode(value) });
}

export function jwtService(
  jwt: Pick<JwtTokens, "getToken" | "check" | "issueRefreshToken" | "revokeRefreshToken" | "createUser" | "changePassword" | "deleteUser">,
  keyRing: Pick<KeyRing, "publicKeyPem">,
): ServiceBinding {
  return bind(JwtService, {
    async getToken(req, ctx) {
      return { body: text(await jwt.getToken(req.user, req.pass, ctx.values.get(clientAddressKey))) };
    },

    async check(_req, ctx) {
      return { claims: (await jwt.check(ctx.values.get(presentedTokenKey) ?? "")) as JsonObject };
    },

    async getPublicKey(_req, ctx) {
      const pem = await keyRing.publicKeyPem();
      // The signing key alone, not the published next key (the JWKS has both): a rotation changes
      // it at once, so a cache keeps it but asks again (If-None-Match: 304 while it is the same)
      // before each use. Set once there is a key (an error is never cached).
      cacheable(ctx, "public, no-cache");
      return { body: text(pem) };
    },

    async getRefreshToken(_req, ctx) {
      const caller = requirePrincipal(ctx, "jwt");
      return { body: text(await jwt.issueRefreshToken(caller.userId, caller.credentialEpoch, caller.keyIds)) };
    },

    async deleteRefreshToken(req, ctx) {
      await jwt.revokeRefreshToken(requirePrincipal(ctx, "jwt").userId, req.refreshToken);
      return {};
    },

    async createUser(req, ctx) {
      await jwt.createUser(req.user, req.pass, ctx.values.get(clientAddressKey));
      return {};
    },

    async changePassword(req, ctx) {
      const caller = requirePrincipal(ctx, "jwt");
      await jwt.changePassword(caller.userId, caller.credentialEpoch, req.pass);
      return {};
    },

    getUser(_req, ctx) {
      // Authentication is optional here: no valid token, no claims (REST: 204 with no body).
      const p = ctx.values.get(principalKey);
      return p.kind === "jwt" ? { claims: p.claims as JsonObject } : {};
    },

    async deleteUser(_req, ctx) {
      const caller = requirePrincipal(ctx, "jwt");
      await jwt.deleteUser(caller.userId, caller.credentialEpoch);
      return {};
    },

    // GET /version answers Tessera's package version; public, briefly cacheable.
    getVersion(_req, ctx) {
      cacheable(ctx, "public, max-age=60");
      return { version: packageVersion };
    },
  });
}
