// UserTokenService (seed 002): messages in, core call, messages out. Login's HTTP Basic
// credentials are parsed (not verified) by the access interceptor and logged in here; Bump and
// Logout get a verified user-token principal.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { UserTokenService } from "../../gen/tessera/usertoken/v1/user_token_pb.js";
import { clientAddressKey, requirePrincipal } from "../access/context.js";
import type { UserTokens } from "../core/user-tokens.js";
import { bind, type ServiceBinding } from "./binding.js";
import { timestampDateDown } from "./timestamps.js";

export function userTokenService(userTokens: Pick<UserTokens, "login" | "bump" | "logout" | "endCookieSession">): ServiceBinding {
  return bind(UserTokenService, {
    async login(req, ctx) {
      const { login, password } = requirePrincipal(ctx, "basic");
      const { secret, token } = await userTokens.login({
        login,
        password,
        ...(req.note !== undefined && { note: req.note }),
        ...(req.expirationTime !== undefined && { expirationTime: timestampDateDown(req.expirationTime) }),
        clientAddress: ctx.values.get(clientAddressKey),
      });
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
      const lastLoginTime = await userTokens.bump(requirePrincipal(ctx, "user_token").userId);
      return { lastLoginTime: timestampFromDate(lastLoginTime) };
    },

    async logout(_req, ctx) {
      const caller = requirePrincipal(ctx, "user_token", "cookie");
      // The answer clears the cookie, whatever it is (access/session-cookie.ts).
      if (caller.kind === "cookie") {
        await userTokens.endCookieSession(caller.sessionId, caller.userId);
      } else {
        await userTokens.logout(caller.tokenId, caller.userId);
      }
      return { success: true };
    },
  });
}
