// UserTokenService (seed 002): messages in, core call, messages out. Login's HTTP Basic
// credentials are parsed (not verified) by the access interceptor and logged in here; Bump and
// Logout get a verified user-token principal.
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { UserTokenService } from "../../gen/tessera/usertoken/v1/user_token_pb.js";
import { clientAddressKey, principalKey } from "../access/context.js";
import type { UserTokenPrincipal } from "../access/principal.js";
import { unauthenticated } from "../core/errors.js";
import type { UserTokens } from "../core/user-tokens.js";
import type { ServiceBinding } from "../server/index.js";

function userTokenPrincipal(ctx: HandlerContext): UserTokenPrincipal {
  const principal = ctx.values.get(principalKey);
  if (principal.kind !== "user_token") throw unauthenticated("MISSING_CREDENTIAL", "a user token is required");
  return principal;
}

export function createUserTokenService(userTokens: UserTokens): ServiceImpl<typeof UserTokenService> {
  return {
    async login(req, ctx) {
      const principal = ctx.values.get(principalKey);
      if (principal.kind !== "basic") throw unauthenticated("MISSING_CREDENTIAL", "HTTP Basic credentials required");
      const { secret, token } = await userTokens.login({
        login: principal.login,
        password: principal.password,
        ...(req.note !== undefined && { note: req.note }),
        ...(req.expirationTime !== undefined && { expirationTime: timestampDate(req.expirationTime) }),
        clientAddress: ctx.values.get(clientAddressKey),
      });
      ctx.responseHeader.set("cache-control", "no-store");
      return {
        token: secret,
        ...(token.note !== undefined && { note: token.note }),
        ...(token.expiresAt !== undefined && { expirationTime: timestampFromDate(token.expiresAt) }),
        creationTime: timestampFromDate(token.createdAt),
        enabled: token.enabled,
        version: token.version,
        ...(token.lastUsedAt !== undefined && { lastUsageTime: timestampFromDate(token.lastUsedAt) }),
      };
    },

    async bump(_req, ctx) {
      const lastLoginTime = await userTokens.bump(userTokenPrincipal(ctx).userId);
      return { lastLoginTime: timestampFromDate(lastLoginTime) };
    },

    async logout(_req, ctx) {
      await userTokens.logout(userTokenPrincipal(ctx).tokenId);
      return { success: true };
    },
  };
}

/** The `userToken` credential verifier of the access interceptor. */
export function userTokenVerifier(userTokens: UserTokens): (token: string) => Promise<UserTokenPrincipal> {
  return async (secret) => {
    const token = await userTokens.verify(secret);
    return { kind: "user_token", userId: token.userId, tokenId: token.id };
  };
}

/** The service with its implementation, for the server's bindings. */
export function userTokenBinding(userTokens: UserTokens): ServiceBinding {
  // ServiceBinding erases the service type; the implementation above is checked against it.
  return { service: UserTokenService, impl: createUserTokenService(userTokens) as unknown as ServiceBinding["impl"] };
}
