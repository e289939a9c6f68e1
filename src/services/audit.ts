// AuditService: the audit trail for administrators (the admin credential is checked by the
// access interceptor). Pages are cut by a cursor (the last event's time and id), so events
// recorded while a reader pages through never shift a page. A page token also names the filters
// of the listing it continues: asked with other filters, it would have joined two listings' pages.
import { createHash } from "node:crypto";
import { timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { AuditService } from "../../gen/tessera/audit/v1/audit_pb.js";
import { auditEventTypes } from "../core/audit.js";
import { invalidField } from "../core/errors.js";
import { checkFreeText } from "../core/text.js";
import type { AuditCursor, AuditEventStore } from "../store/ports/audit-events.js";
import { bind, type ServiceBinding } from "./binding.js";
import { timestampDateUp } from "./timestamps.js";

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 500;
/** Longer than any user id: a filter no event can match is refused, not sent to the store. */
const MAX_USER_ID_LENGTH = 256;

/** C0 and C1 controls and DEL (Unicode general category Cc). */
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

const knownTypes = new Set<string>(auditEventTypes);

/** What a listing is filtered by, as the store is asked (since and until in whole ms). */
interface AuditFilters {
  userId: string;
  type: string;
  since: Date | undefined;
  until: Date | undefined;
}

/**
 * The filters' digest a page token carries: the first 128 bits of SHA-256 over them, in hex. Two
 * spellings of the same bounds (RFC 3339 offsets, digits beyond the ms) are the same listing.
 */
function filtersDigest(f: AuditFilters): string {
  const text = JSON.stringify([f.userId, f.type, f.since?.getTime() ?? null, f.until?.getTime() ?? null]);
  return createHash("sha256").update(text).digest("hex").slice(0, 32);
}

/**
 * A page token: base64url of "<time ms>:<id>:<filters digest>", the last event of the page and
 * the filters of the listing it continues.
 */
function pageToken(cursor: AuditCursor, digest: string): string {
  return Buffer.from(`${cursor.time.getTime()}:${cursor.id}:${digest}`).toString("base64url");
}

/** The last ms of the year 9999: no event time (a google.protobuf.Timestamp) is later. */
const MAX_EVENT_MS = 253402300799999;

/**
 * The cursor of a token pageToken() made for a listing with the filters of `digest`, else
 * INVALID_ARGUMENT: only its own spelling (base64url without padding, the time without leading
 * zeros, an event id, a time an event can have, a digest), and only for those filters.
 */
function parsePageToken(token: string, digest: string): AuditCursor {
  const bad = () => invalidField("page_token", "page_token is not a page token this method returned");
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(token)) throw bad();
  const m = /^(0|[1-9]\d{0,14}):([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):([0-9a-f]{32})$/.exec(Buffer.from(token, "base64url").toString());
  if (!m || Number(m[1]) > MAX_EVENT_MS) throw bad();
  const cursor = { time: new Date(Number(m[1])), id: m[2]! };
  // Base64 leaves bits of the last character unused: another spelling of the same bytes is not one returned.
  if (pageToken(cursor, m[3]!) !== token) throw bad();
  if (m[3] !== digest) {
    throw invalidField("page_token", "page_token was returned for other filters: user_id, type, since and until must be those of the call that returned it");
  }
  return cursor;
}

/** Whether `a` is an earlier time than `b` (to the nanosecond). */
function timestampBefore(a: Timestamp, b: Timestamp): boolean {
  return a.seconds < b.seconds || (a.seconds === b.seconds && a.nanos < b.nanos);
}

export function auditService(events: Pick<AuditEventStore, "list">): ServiceBinding {
  return bind(AuditService, {
    async listAuditEvents(req) {
      if (req.pageSize < 0) throw invalidField("page_size", "page_size must not be negative");
      if (req.type !== "" && !knownTypes.has(req.type)) throw invalidField("type", `type must be one of ${auditEventTypes.join(", ")}`);
      // NUL in particular: a PostgreSQL-backed MongoDB-compatible server fails to compare it (a 500).
      // Every control character, tab and line breaks included (free text may hold those, no user id does).
      checkFreeText("user_id", req.userId, MAX_USER_ID_LENGTH);
      if (CONTROL_CHARACTER.test(req.userId)) throw invalidField("user_id", "user_id must not contain control characters");
      // Event times are whole ms: taken up to the next whole ms, these bounds keep exactly the
      // events at or after since and before until, however many digits they have.
      const since = req.since === undefined ? undefined : timestampDateUp(req.since);
      const until = req.until === undefined ? undefined : timestampDateUp(req.until);
      // Compared as sent: two bounds within one ms are taken up to the same ms.
      if (req.since !== undefined && req.until !== undefined && timestampBefore(req.until, req.since)) throw invalidField("until", "until must not be before since");
      const size = req.pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(req.pageSize, MAX_PAGE_SIZE);
      const digest = filtersDigest({ userId: req.userId, type: req.type, since, until });
      const after = req.pageToken === "" ? undefined : parsePageToken(req.pageToken, digest);
      const found = await events.list({
        ...(req.userId !== "" && { userId: req.userId }),
        ...(req.type !== "" && { type: req.type }),
        ...(since !== undefined && { since }),
        ...(until !== undefined && { until }),
        ...(after !== undefined && { after }),
        limit: size + 1,
      });
      const page = found.slice(0, size);
      const last = page.at(-1);
      return {
        events: page.map(({ time, suppressed, ...rest }) => ({
          ...rest,
          time: timestampFromDate(time),
          ...(suppressed !== undefined && { suppressed: { ...suppressed, since: timestampFromDate(suppressed.since) } }),
        })),
        nextPageToken: found.length > size && last ? pageToken(last, digest) : "",
      };
    },
  });
}
