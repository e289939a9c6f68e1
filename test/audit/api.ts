// Audit trail client (AuditService) with three transports: @grpc/grpc-js, Connect and REST.
import { AuditService } from "../../gen/tessera/audit/v1/audit_pb.js";
import { rest } from "../support/clients.js";
import { expectOk, restOutcome, RpcClient, type Outcome, type Protocol } from "../support/api.js";
import type { TestServer } from "../support/server.js";
import { admin } from "../support/users.js";

/** One event as the API writes it (JSON names). */
export interface AuditEventJson {
  id: string;
  time: string;
  type: string;
  outcome: string;
  user_id?: string;
  login?: string;
  api?: string;
  client_id?: string;
  client_address?: string;
  user_agent?: string;
  request_id?: string;
  trace_id?: string;
  span_id?: string;
  subject?: string;
  reason?: string;
  suppressed?: { since: string; count: number; events: Array<{ type: string; outcome: string; reason: string; count: number }> };
}

export interface AuditQuery {
  page_size?: number;
  page_token?: string;
  user_id?: string;
  type?: string;
  since?: string;
  until?: string;
}

export interface AuditPage {
  events: AuditEventJson[];
  next_page_token: string;
}

export interface AuditApi {
  readonly protocol: Protocol;
  /** GET /v1/admin/audit-events (admin credential) */
  listAuditEvents(query: AuditQuery, headers: Record<string, string>): Promise<Outcome<AuditPage>>;
  close(): void;
}

export function auditApi(protocol: Protocol, baseUrl: string): AuditApi {
  if (protocol === "rest") {
    return {
      protocol,
      listAuditEvents: async (query, headers) => {
        const params = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]));
        return restOutcome(await rest(baseUrl, "GET", `/v1/admin/audit-events${params.size ? `?${params}` : ""}`, { headers }));
      },
      close: () => {},
    };
  }
  const rpc = new RpcClient(protocol, baseUrl);
  return {
    protocol,
    listAuditEvents: (query, headers) => rpc.callJson(AuditService.method.listAuditEvents, { ...query }, headers) as Promise<Outcome<any>>,
    close: () => rpc.close(),
  };
}

/** Every event matching `query`, newest first, read page by page over REST. */
export async function allEvents(server: TestServer, query: AuditQuery): Promise<AuditEventJson[]> {
  const api = auditApi("rest", server.url);
  const events: AuditEventJson[] = [];
  let token = "";
  for (;;) {
    const page = expectOk(await api.listAuditEvents({ ...query, page_size: 500, ...(token && { page_token: token }) }, admin));
    events.push(...page.events);
    if (!page.next_page_token) return events;
    token = page.next_page_token;
  }
}
