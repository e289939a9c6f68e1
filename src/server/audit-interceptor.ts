// The audit side of every call, at the server: every call of an admin method (the admin
// credential) is an `admin.call` event, refused ones included (placed before the access check,
// so it sees its refusal, and after the error interceptor, so errors are still the core's; a
// call without the admin credential reaches it whatever its message, and a call with it whose
// message does not parse is recorded where the message is read: access/admin-gate.ts); and once the access check has passed, the call scope learns the verified
// client id, which every event recorded during the call then names, and whether the caller
// holds a verified credential (the audit budget, core/audit-budget.ts, reads it).
import type { DescService } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import { Credential } from "../../gen/tessera/options/v1/options_pb.js";
import { principalKey } from "../access/context.js";
import { accessRules } from "../access/interceptor.js";
import { CallEndedError, currentCall } from "../call-scope.js";
import { tracked, type AuditTrail } from "../core/audit.js";

/** `admin.call` for every call of a method that takes the admin credential. */
export function createAdminAuditInterceptor(audit: Pick<AuditTrail, "record">, services: readonly DescService[]): Interceptor {
  // The access check's own table says which methods take the admin credential.
  const admin = new Set<string>();
  for (const [path, rule] of accessRules({ services, publicServices: [] })) if (rule !== "public" && rule.credential === Credential.ADMIN) admin.add(path);
  return (next) => (req) => {
    const procedure = `${req.method.parent.typeName}/${req.method.name}`;
    if (!admin.has(procedure)) return next(req);
    return tracked(audit, "admin.call", { subject: procedure }, async () => {
      const res = await next(req);
      // The deadline passed or the client left while the method ran: the caller was answered
      // DEADLINE_EXCEEDED or CANCELED then (deadline-interceptor.ts), not with this answer.
      if (req.signal.aborted) throw new CallEndedError();
      return res;
    });
  };
}

/** Principals that hold a verified credential (the audit budget leaves their events alone). */
const verifiedKinds: ReadonlySet<string> = new Set(["session", "user_token", "jwt", "cookie", "api_token", "admin"]);

/** After the access check: the verified client id, and whether a credential was verified, go into the call scope. */
export function createCallerScopeInterceptor(): Interceptor {
  return (next) => (req) => {
    const principal = req.contextValues.get(principalKey);
    const scope = currentCall();
    if (scope) {
      if (principal.kind === "client" || principal.kind === "session") scope.clientId = principal.clientId;
      if (verifiedKinds.has(principal.kind)) scope.authenticated = true;
    }
    return next(req);
  };
}
