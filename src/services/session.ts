// SessionService (seed 000): messages in, core call, messages out. The client id and the bearer
// access token are checked by the access interceptor (see the `access` options in
// session.proto) through `sessionVerifier` below, before a handler runs.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import { clientAddressKey, principalKey } from "../access/context.js";
import type { CredentialVerifiers } from "../access/interceptor.js";
import type { SessionPrincipal } from "../access/principal.js";
import { unauthenticated } from "../core/errors.js";
import type { SessionAccess, Sessions } from "../core/sessions.js";
import type { ServiceBinding } from "../server/index.js";

/** The verified session of the call (set by the access interceptor). */
export function sessionOf(ctx: HandlerContext): SessionPrincipal {
  const principal = ctx.values.get(principalKey);
  if (principal.kind !== "session") throw unauthenticated("MISSING_CREDENTIAL", "missing bearer access token");
  return principal;
}

function clientOf(ctx: HandlerContext): string {
  const principal = ctx.values.get(principalKey);
  if (principal.kind !== "client") throw unauthenticated("MISSING_CLIENT_ID", "missing x-koms-clientid header");
  return principal.clientId;
}

export function createSessionService(sessions: Sessions): ServiceImpl<typeof SessionService> {
  return {
    async createSession(req, ctx) {
      return sessions.logIn({
        accountType: req.accountType,
        email: req.email,
        password: req.password,
        clientId: clientOf(ctx),
        clientAddress: ctx.values.get(clientAddressKey),
      });
    },

    async refreshSession(req, ctx) {
      return sessions.refresh(sessionOf(ctx), req.refreshToken);
    },

    getSession(_req, ctx) {
      return { accessTokenExpiresIn: sessions.expiresIn(sessionOf(ctx)) };
    },

    async deleteSession(_req, ctx) {
      await sessions.end(sessionOf(ctx).sessionId);
      return {};
    },
  };
}

/** The `session` credential verifier of the access interceptor. */
export function sessionVerifier(sessions: Sessions): CredentialVerifiers["session"] {
  return async (token, clientId, allowExpired) => {
    const access: SessionAccess = await sessions.verifyAccess(token, clientId, allowExpired);
    return { kind: "session", ...access };
  };
}

export function sessionBinding(sessions: Sessions): ServiceBinding {
  // ServiceBinding erases the service type; the implementation above is checked against it.
  return { service: SessionService, impl: createSessionService(sessions) as unknown as ServiceBinding["impl"] };
}
