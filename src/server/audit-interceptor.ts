// The audit side of every call, at the server: every call of an admin method (the admin
// credential) is an `admin.call` event, refused ones included (placed before the access check,
// so it sees its refusal, and after the error interceptor, so errors are still the core's; a
// call without the admin credential reaches it whatever its message, and a call with it whose
// message does not parse is recorded where the message is read: access/admin-gate.ts); and once the access check has passed, the call scope learns the verified
// client id, which every event recorded during the call then names, and whether the caller
// holds a verified credential (the audit budget, core/audit-budget.ts, reads it). A call on the
// caller's own account refused by the access check (seed 004's password change and
// deactivation, its token missing or refused) records that account event here, with the refusal.
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { SessionService, UserService } from "../../gen/tessera/session/v1/session_pb.js";
import { UserTokenService } from "../../gen/tessera/usertoken/v1/user_token_pb.js";
import { Credential } from "../../gen/tessera/options/v1/options_pb.js";
import { principalKey } from "../access/context.js";
import { accessRules } from "../access/interceptor.js";
import { CallEndedError, currentCall, signalAborted } from "../call-scope.js";
import { outcomeOf, reasonOf, tracked, type AuditEventType, type AuditTrail } from "../core/audit.js";

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
      if (signalAborted(req)) throw new CallEndedError();
      return res;
    });
  };
}

/**
 * The calls on the caller's own account whose event the core records (audited.ts), by method:
 * one the access check refuses (its token missing, invalid, expired, its user's) reaches no core
 * call, so its event is recorded at the server.
 */
const ownAccountEvents: ReadonlyMap<DescMethod, AuditEventType> = new Map<DescMethod, AuditEventType>([
  [JwtService.method.changePassword, "password.changed"],
  [JwtService.method.deleteUser, "user.deactivated"],
]);

/**
 * A call on the caller's own account refused by the access check (placed before it, as the
 * admin audit is): its event, with the refusal's outcome and reason, as a refused login is
 * recorded. A call that passed the check (it has a principal) records its event in the core.
 */
export function createOwnAccountAuditInterceptor(audit: Pick<AuditTrail, "record">): Interceptor {
  return refusalRecorder(ownAccountEvents, (type, e, req) => {
    if (req.contextValues.get(principalKey).kind === "anonymous") return audit.record({ type, outcome: outcomeOf(e), reason: reasonOf(e) });
  });
}

type Next = Parameters<Interceptor>[0];

/**
 * An interceptor for the methods of `events`: a call of one that fails is given to `record` (its
 * method's entry, the error, the request) before its error goes on. Every other call passes
 * straight through, without an async frame of its own.
 */
function refusalRecorder<T>(events: ReadonlyMap<DescMethod, T>, record: (entry: T, e: unknown, req: Parameters<Next>[0]) => Promise<unknown> | undefined): Interceptor {
  return (next) => (req) => {
    const entry = events.get(req.method);
    return entry === undefined ? next(req) : recorded(entry, next, req);
  };
  async function recorded(entry: T, next: Next, req: Parameters<Next>[0]) {
    try {
      return await next(req);
    } catch (e) {
      await record(entry, e, req);
      throw e;
    }
  }
}

/** A method's own event first, then the core's events that stand for it. */
type EntryEvents = readonly [AuditEventType, ...AuditEventType[]];

/**
 * The login and sign-up methods, by method: the event each records in the core (audited.ts), and
 * the events of the core that stand for it (a seed 004 refresh login records
 * jwt_refresh_token.used). One refused before its core call recorded any of them (a required
 * field missing, its Basic credentials malformed or missing, its client id refused) records it
 * here, with the answer's outcome and reason, as one refused by the core is (a malformed email:
 * `login` failure INVALID_FIELD), and is counted with them (tessera_logins_total,
 * tessera_signups_total). Without a `login`: what was sent may be a password, or undecodable.
 */
const entryEvents: ReadonlyMap<DescMethod, EntryEvents> = new Map<DescMethod, EntryEvents>([
  [SessionService.method.createSession, ["login"]],
  [UserTokenService.method.login, ["login"]],
  [JwtService.method.getToken, ["login", "jwt_refresh_token.used"]],
  [UserService.method.createUser, ["signup"]],
  [JwtService.method.createUser, ["signup"]],
]);

/** A login or sign-up refused before its core call recorded its event (entryEvents): that event, at the server. Placed before the access check. */
export function createEntryAuditInterceptor(audit: Pick<AuditTrail, "record">): Interceptor {
  return refusalRecorder(entryEvents, (types, e) => {
    const recorded = currentCall()?.recordedEvents;
    if (!types.some((t) => recorded?.has(t))) return audit.record({ type: types[0], outcome: outcomeOf(e), reason: reasonOf(e) });
  });
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
