// The audit side of every call, at the server: every call of an admin method (the admin
// credential) is an `admin.call` event, refused ones included (placed before the access check,
// so it sees its refusal, and after the error interceptor, so errors are still the core's); and once the access check has passed, the call scope learns the verified
// client id, which every event recorded during the call then names.
import { getOption, hasOption, type DescService } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import { access, Credential } from "../../gen/tessera/options/v1/options_pb.js";
import { principalKey } from "../access/context.js";
import { currentCall } from "../call-scope.js";
import type { AuditTrail } from "../core/audit.js";
import { outcomeOf, reasonOf } from "../core/audit.js";

/** `admin.call` for every call of a method that takes the admin credential. */
export function createAdminAuditInterceptor(audit: Pick<AuditTrail, "record">, services: readonly DescService[]): Interceptor {
  const admin = new Set<string>();
  for (const s of services) {
    for (const m of s.methods) if (hasOption(m, access) && getOption(m, access).credential === Credential.ADMIN) admin.add(`${s.typeName}/${m.name}`);
  }
  return (next) => async (req) => {
    const procedure = `${req.method.parent.typeName}/${req.method.name}`;
    if (!admin.has(procedure)) return next(req);
    try {
      const res = await next(req);
      await audit.record({ type: "admin.call", outcome: "success", subject: procedure });
      return res;
    } catch (e) {
      await audit.record({ type: "admin.call", outcome: outcomeOf(e), subject: procedure, reason: reasonOf(e) });
      throw e;
    }
  };
}

/** After the access check: the verified client id goes into the call scope. */
export function createCallerScopeInterceptor(): Interceptor {
  return (next) => (req) => {
    const principal = req.contextValues.get(principalKey);
    if (principal.kind === "client" || principal.kind === "session") {
      const scope = currentCall();
      if (scope) scope.clientId = principal.clientId;
    }
    return next(req);
  };
}
