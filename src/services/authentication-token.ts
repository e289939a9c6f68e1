// AuthenticationTokenService (seed 003): messages in, core call, messages out. CreateToken and
// GetToken get any verified user principal; ExchangeToken takes no credential (the token is
// one) and asks for the `tessera_session` cookie to be set (access/session-cookie.ts writes it).
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AuthenticationTokenService } from "../../gen/tessera/authtoken/v1/authentication_token_pb.js";
import { requirePrincipal } from "../access/context.js";
import { userPrincipalKinds } from "../access/principal.js";
import { issueSessionCookie, presentedSessionCookie } from "../access/session-cookie.js";
import type { AuthenticationTokens, AuthenticationTokenView } from "../core/authentication-tokens.js";
import { bind, type ServiceBinding } from "./binding.js";

function toMessage(t: AuthenticationTokenView) {
  return { token: t.token, ttl: t.ttlSeconds, user: t.userId, createdAt: timestampFromDate(t.createdAt) };
}

export function authenticationTokenService(authTokens: Pick<AuthenticationTokens, "create" | "get" | "exchange">): ServiceBinding {
  return bind(AuthenticationTokenService, {
    async createToken(_req, ctx) {
      const caller = requirePrincipal(ctx, ...userPrincipalKinds);
      const token = await authTokens.create({
        userId: caller.userId,
        credentialEpoch: caller.credentialEpoch,
        // As the credential check read it: a session's, user token's or cookie session's epoch is
        // the user's (the check refuses one that is not), an access JWT's may be older.
        userCredentialEpoch: caller.kind === "jwt" ? caller.userCredentialEpoch : caller.credentialEpoch,
        // From a cookie session or an access JWT: the session the exchange starts ends no later
        // than it (a JWT has no record for the exchange to look up: its exp is recorded here).
        ...((caller.kind === "cookie" || caller.kind === "jwt") && { notAfter: caller.expiresAt }),
        // The credential it comes from, which must still be live when the token is exchanged.
        ...(caller.kind === "session" && { source: `session:${caller.sessionId}` }),
        ...(caller.kind === "cookie" && { source: `user_token:${caller.sessionId}` }),
        ...(caller.kind === "user_token" && { source: `user_token:${caller.tokenId}` }),
        // When it ends: the token lives no longer, and its ttl says so.
        ...(caller.kind === "session" && { sourceEnd: caller.sessionExpiresAt }),
        ...((caller.kind === "cookie" || caller.kind === "jwt") && { sourceEnd: caller.expiresAt }),
        ...(caller.kind === "user_token" && caller.expiresAt !== undefined && { sourceEnd: caller.expiresAt }),
        // The signing keys of the tokens it comes from: it, and the session its exchange starts,
        // end once one of them is revoked.
        ...(caller.kind !== "user_token" && caller.keyIds.length > 0 && { sourceKids: [...caller.keyIds] }),
      });
      return { token: toMessage(token) };
    },

    async getToken(req, ctx) {
      const token = await authTokens.get(req.token, requirePrincipal(ctx, ...userPrincipalKinds).userId);
      return { token: toMessage(token) };
    },

    async exchangeToken(req, ctx) {
      const { user, cookie } = await authTokens.exchange(req.token, presentedSessionCookie(ctx.requestHeader));
      if (cookie) issueSessionCookie(ctx.values, cookie);
      return {
        id: user.id,
        ...(user.firstname !== undefined && { firstname: user.firstname }),
        ...(user.lastname !== undefined && { lastname: user.lastname }),
        emails: user.emails,
      };
    },
  });
}
