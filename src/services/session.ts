// SessionService (seed 000): messages in, core call, messages out. The client id and the bearer
// access token are checked by the access interceptor (see the `access` options in
// session.proto) through `sessionVerifier` below, before a handler runs.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import { clientAddressKey, principalKey } from "../access/context.js";
import type { CredentialVerifiers } from "../access/interceptor.js";
import type { SessionPrincipal } from "../access/principal.js";
import { invalidArgument, invalidField, missingField, unauthenticated } from "../core/errors.js";
import type { Core } from "../core/index.js";
import type { SessionAccess } from "../core/sessions.js";
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

export function createSessionService(core: Core): ServiceImpl<typeof SessionService> {
  return {
    async createSession(req, ctx) {
      const clientId = clientOf(ctx);
      if (req.accountType === "") throw missingField("account_type");
      if (req.accountType !== "traditional") throw invalidField("account_type", 'account_type must be "traditional"');
      if (req.email === "") throw missingField("email");
      if (req.password === "") throw missingField("password");
      const user = await core.users.authenticate(req.email, req.password, "email", ctx.values.get(clientAddressKey));
      const [pair] = await Promise.all([core.sessions.start(user.id, clientId), core.users.noteLogin(user, core.config.lastUsedIntervalSeconds)]);
      return pair;
    },

    async refreshSession(req, ctx) {
      return core.sessions.refresh(sessionOf(ctx), req.refreshToken);
    },

    getSession(_req, ctx) {
      return { accessTokenExpiresIn: core.sessions.expiresIn(sessionOf(ctx)) };
    },

    async deleteSession(_req, ctx) {
      await core.sessions.end(sessionOf(ctx).sessionId);
      return {};
    },
  };
}

/** The `session` credential verifier of the access interceptor. */
export function sessionVerifier(core: Core): CredentialVerifiers["session"] {
  return async (token, clientId, allowExpired) => {
    const access: SessionAccess = await core.sessions.verifyAccess(token, clientId, allowExpired);
    return { kind: "session", ...access };
  };
}

export function sessionBinding(core: Core): ServiceBinding {
  // ServiceBinding erases the service type; the implementation above is checked against it.
  return { service: SessionService, impl: createSessionService(core) as unknown as ServiceBinding["impl"] };
}
