// The admin methods (the admin credential) check it before the request message is read. The
// access interceptor runs after the message is parsed (connect-es parses a unary message before
// the interceptors; the REST transcoder builds it before the call), so a body or query that did
// not parse was answered 400 naming the field problem before the credential was looked at: a
// caller without the admin token could probe the admin methods' request schemas, and a refused
// call left no audit event. So where a message is read (the dispatcher, the transcoder) a call
// of an admin method whose request does not present the admin token runs with an empty message
// instead of its own: the access check refuses it, as it refuses every such call, with the same
// 401 / UNAUTHENTICATED and `admin.call` event. A call that does present the token and whose
// message does not parse is answered as before, and recorded as a refused `admin.call`; one
// whose message never arrived whole (its client left, the request timeout cut it off) as a
// canceled one.
// The seeds' methods that take another credential are not touched: their order of checks is
// part of their documented wire.
import type { DescService } from "@bufbuild/protobuf";
import { Credential } from "../../gen/tessera/options/v1/options_pb.js";
import { apiOf, currentCall } from "../call-scope.js";
import type { AuditOutcome, AuditTrail } from "../core/audit.js";
import { secretMatcher } from "../core/secrets.js";
import { bearerToken } from "./credentials.js";
import { accessRules } from "./interceptor.js";

export interface AdminGate {
  /** Whether `procedure` ("pkg.Service/Method") takes the admin credential. */
  isAdmin(procedure: string): boolean;
  /**
   * Whether `procedure` takes the admin credential and `header` does not present it: the access
   * check refuses the call whatever its message, so the message is not read.
   */
  refuses(procedure: string, header: Headers): boolean;
  /**
   * Records a call of an admin method that presented the admin credential and was refused
   * because its request did not parse (`reason`: the error reason of the answer). Never rejects.
   */
  malformed(procedure: string, reason: string | undefined): Promise<void>;
  /**
   * Records a call of an admin method that presented the admin credential and whose request
   * never arrived whole (its client left, or the request timeout cut it off: answered
   * DEADLINE_EXCEEDED): canceled, as a call whose client left or whose deadline passed while
   * its method ran. Never rejects.
   */
  cut(procedure: string): Promise<void>;
}

export function createAdminGate(o: { services: readonly DescService[]; adminToken: string; audit?: Pick<AuditTrail, "record"> | undefined }): AdminGate {
  const admin = new Set<string>();
  for (const [path, rule] of accessRules({ services: o.services, publicServices: [] })) if (rule !== "public" && rule.credential === Credential.ADMIN) admin.add(path);
  const isAdminToken = secretMatcher([o.adminToken]);
  const presentsAdminToken = (header: Headers): boolean => {
    try {
      const token = bearerToken(header);
      return token !== undefined && isAdminToken(token);
    } catch {
      return false; // a malformed Authorization header
    }
  };
  return {
    isAdmin: (procedure) => admin.has(procedure),
    refuses: (procedure, header) => admin.has(procedure) && !presentsAdminToken(header),
    malformed: (procedure, reason) => unread(procedure, "failure", reason),
    cut: (procedure) => unread(procedure, "canceled", undefined),
  };

  /** The admin.call of a call refused before its message was read whole. */
  async function unread(procedure: string, outcome: AuditOutcome, reason: string | undefined): Promise<void> {
    if (!o.audit || !admin.has(procedure)) return;
    // The admin credential checked out (refuses() let the message be read): the audit
    // budget leaves the event alone, as it leaves every event of a verified caller.
    const scope = currentCall();
    if (scope) scope.authenticated = true;
    // Refused before the interceptors that name the call's API in its scope: named here, as
    // every other admin.call names it.
    await o.audit.record({ type: "admin.call", subject: procedure, outcome, reason, api: apiOf(procedure.slice(0, procedure.indexOf("/"))) });
  }
}
