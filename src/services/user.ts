// UserService (seed 000): sign-up with an email and a password, and the caller's own user.
import type { ServiceImpl } from "@connectrpc/connect";
import { UserService } from "../../gen/tessera/session/v1/session_pb.js";
import { missingField } from "../core/errors.js";
import type { Core } from "../core/index.js";
import type { ServiceBinding } from "../server/index.js";
import { sessionOf } from "./session.js";

export function createUserService(core: Core): ServiceImpl<typeof UserService> {
  return {
    async createUser(req) {
      if (req.email === "") throw missingField("email");
      if (req.password === "") throw missingField("password");
      await core.users.create({ login: req.email, kind: "email", password: req.password });
      return { message: "User created" };
    },

    async getUser(_req, ctx) {
      const user = await core.users.getActive(sessionOf(ctx).userId);
      return { id: user.id, email: user.emails[0] ?? user.login };
    },
  };
}

export function userBinding(core: Core): ServiceBinding {
  return { service: UserService, impl: createUserService(core) as unknown as ServiceBinding["impl"] };
}
