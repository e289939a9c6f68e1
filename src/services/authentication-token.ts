// AuthenticationTokenService (seed 003): messages in, core call, messages out. CreateToken and
// GetToken get any verified user principal; ExchangeToken takes no credential (the token is
// one) and answers with the `tessera_session` cookie.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { AuthenticationTokenService } from "../../gen/tessera/authtoken/v1/authentication_token_pb.js";
import { principalKey, secureKey } from "../access/context.js";
import { cookieValue } from "../access/credentials.js";
import { sessionCookieName } from "../access/interceptor.js";
import type { CookiePrincipal, UserPrincipal } from "../access/principal.js";
import type { Config } from "../config.js";
import type { AuthenticationTokens, AuthenticationTokenView } from "../core/authentication-tokens.js";
import { unauthenticated } from "../core/errors.js";
import type { UserTokens } from "../core/user-tokens.js";
import type { ServiceBinding } from "../server/index.js";

function callerUserId(ctx: HandlerContext): string {
  const principal = ctx.values.get(principalKey);
  const userKinds: ReadonlyArray<UserPrincipal["kind"]> = ["session", "user_token", "jwt", "cookie"];
  if (!(userKinds as readonly string[]).includes(principal.kind)) throw unauthenticated("MISSING_CREDENTIAL", "a user credential is required");
  return (principal as UserPrincipal).userId;
}

function toMessage(t: AuthenticationTokenView) {
  return { token: t.token, ttl: t.ttlSeconds, user: t.userId, createdAt: timestampFromDate(t.createdAt) };
}

/** `tessera_session=<value>; Path=/; Max-Age=<n>; HttpOnly; SameSite=Lax[; Secure]`. */
export function sessionCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${sessionCookieName}=${value}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${secure ? "; Secure" : ""}`;
}

export function createAuthenticationTokenService(
  authTokens: AuthenticationTokens,
  config: Pick<Config, "cookieSecure">,
): ServiceImpl<typeof AuthenticationTokenService> {
  return {
    async createToken(_req, ctx) {
      const token = await authTokens.create(callerUserId(ctx));
      ctx.responseHeader.set("cache-control", "no-store");
      return { token: toMessage(token) };
    },

    async getToken(req, ctx) {
      const token = await authTokens.get(req.token, callerUserId(ctx));
      ctx.responseHeader.set("cache-control", "no-store");
      return { token: toMessage(token) };
    },

    async exchangeToken(req, ctx) {
      const { user, cookie } = await authTokens.exchange(req.token, cookieValue(ctx.requestHeader, sessionCookieName));
      ctx.responseHeader.set("cache-control", "no-store");
      if (cookie) {
        // TESSERA_COOKIE_SECURE wins when set (a TLS-terminating proxy in front); else: TLS here.
        const secure = config.cookieSecure ?? ctx.values.get(secureKey);
        ctx.responseHeader.append("set-cookie", sessionCookie(cookie.value, cookie.maxAgeSeconds, secure));
      }
      return {
        id: user.id,
        ...(user.firstname !== undefined && { firstname: user.firstname }),
        ...(user.lastname !== undefined && { lastname: user.lastname }),
        emails: user.emails,
      };
    },
  };
}

/** The `sessionCookie` credential verifier of the access interceptor. */
export function sessionCookieVerifier(userTokens: UserTokens): (value: string) => Promise<CookiePrincipal> {
  return async (value) => {
    const session = await userTokens.verifyCookie(value);
    return { kind: "cookie", userId: session.userId, sessionId: session.id };
  };
}

/** The service with its implementation, for the server's bindings. */
export function authenticationTokenBinding(authTokens: AuthenticationTokens, config: Pick<Config, "cookieSecure">): ServiceBinding {
  // ServiceBinding erases the service type; the implementation above is checked against it.
  return {
    service: AuthenticationTokenService,
    impl: createAuthenticationTokenService(authTokens, config) as unknown as ServiceBinding["impl"],
  };
}
