// SessionService and UserService (seed 000): messages in, core call, messages out. The client id
// and the bearer access token are checked by the access interceptor (see the `access` options
// in session.proto) before a handler runs.
import { SessionService, UserService } from "../../gen/tessera/session/v1/session_pb.js";
import { clientAddressKey, requirePrincipal } from "../access/context.js";
import { sessionEnded, type Sessions } from "../core/sessions.js";
import type { Users } from "../core/users.js";
import { bind, type ServiceBinding } from "./binding.js";

export function sessionService(sessions: Pick<Sessions, "logIn" | "refresh" | "expiresIn" | "end">): ServiceBinding {
  return bind(SessionService, {
    createSession: (req, ctx) =>
      sessions.logIn({
        accountType: req.accountType,
        email: req.email,
        password: req.password,
        clientId: requirePrincipal(ctx, "client").clientId,
        clientAddress: ctx.values.get(clientAddressKey),
      }),

    refreshSession: (req, ctx) => sessions.refresh(requirePrincipal(ctx, "session"), req.refreshToken),

    getSession: (_req, ctx) => ({ accessTokenExpiresIn: sessions.expiresIn(requirePrincipal(ctx, "session")) }),

    async deleteSession(_req, ctx) {
      const caller = requirePrincipal(ctx, "session");
      await sessions.end(caller.sessionId, caller.userId, { logout: true });
      return {};
    },
  });
}

export function userService(users: Pick<Users, "signUp" | "get">): ServiceBinding {
  return bind(UserService, {
    async createUser(req, ctx) {
      await users.signUp(req.email, req.password, ctx.values.get(clientAddressKey));
      return { message: "User created" };
    },

    async getUser(_req, ctx) {
      const user = await users.get(requirePrincipal(ctx, "session").userId);
      // Deactivated since the session's check (on any instance): what GET /session is told after it.
      if (!user || !user.active) throw sessionEnded();
      return { id: user.id, email: user.emails[0] ?? user.login };
    },
  });
}
