// The credential checks of the access interceptor, each answered by the core part that owns the
// credential and turned into the access layer's typed principal.
import type { CredentialVerifiers } from "../access/interceptor.js";
import type { ApiTokens } from "../core/api-tokens.js";
import type { JwtTokens } from "../core/jwt-tokens.js";
import type { Sessions } from "../core/sessions.js";
import type { UserTokens } from "../core/user-tokens.js";

export function credentialVerifiers(core: {
  sessions: Pick<Sessions, "verifyAccess">;
  apiTokens: Pick<ApiTokens, "authenticate">;
  userTokens: Pick<UserTokens, "verify" | "verifyCookie">;
  jwt: Pick<JwtTokens, "verifyAccessToken">;
}): CredentialVerifiers {
  return {
    async session(token, clientId, allowExpired) {
      return { kind: "session", ...(await core.sessions.verifyAccess(token, clientId, allowExpired)) };
    },
    async apiToken(token) {
      const { accountId, tokenLink } = await core.apiTokens.authenticate(token);
      return { kind: "api_token", accountId, tokenLink };
    },
    async userToken(secret) {
      const token = await core.userTokens.verify(secret);
      return {
        kind: "user_token",
        userId: token.userId,
        tokenId: token.id,
        credentialEpoch: token.credentialEpoch ?? -1,
        ...(token.expiresAt !== undefined && { expiresAt: token.expiresAt }),
      };
    },
    async jwt(token) {
      const v = await core.jwt.verifyAccessToken(token);
      return {
        kind: "jwt",
        userId: v.userId,
        claims: v.claims,
        authenticationMethod: v.authenticationMethod,
        expiresAt: new Date(v.claims.exp * 1000),
        credentialEpoch: v.credentialEpoch,
        userCredentialEpoch: v.userCredentialEpoch,
        keyIds: v.keyIds,
      };
    },
    async sessionCookie(value) {
      const session = await core.userTokens.verifyCookie(value);
      return {
        kind: "cookie",
        userId: session.userId,
        sessionId: session.id,
        credentialEpoch: session.credentialEpoch ?? -1,
        // A cookie session always has an expiry; the fallback only satisfies the type.
        expiresAt: session.expiresAt ?? new Date(0),
        keyIds: session.sourceKids ?? [],
      };
    },
  };
}
