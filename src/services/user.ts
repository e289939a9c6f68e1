// UserService (seed 000): sign-up with an email and a password, and the caller's own user.
import type { ServiceImpl } from "@connectrpc/connect";
import { UserService } from "../../gen/tessera/session/v1/session_pb.js";
import type { Users } from "../core/users.js";
import type { ServiceBinding } from "../server/index.js";
import { sessionOf } from "./session.js";

export function createUserService(users: Pick<Users, "signUp" | "getActive">): ServiceImpl<typeof UserService> {
  return {
    async createUser(req) {
      await users.signUp(req.email, req.password);
      return { message: "User created" };
    },

    async getUser(_req, ctx) {
      const user = await users.getActive(sessionOf(ctx).userId);
      return { id: user.id, email: user.emails[0] ?? user.login };
    },
  };
}

export function userBinding(users: Pick<Users, "signUp" | "getActive">): ServiceBinding {
  return { service: UserService, impl: createUserService(users) as unknown as ServiceBinding["impl"] };
}
