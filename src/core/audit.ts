// The audit trail: security events, written durably to the store (store.auditEvents) and as a
// JSON log line ({"msg":"audit","type":"audit","event":"login",...}). Whoever records an event
// says what happened (`type`, `outcome`, the user and the subject when known); who called, from
// where and in which request and trace is read from the call scope (src/call-scope.ts), filled
// in by the server for every call.
//
// An audit write never fails the call it records: `record` resolves whatever the store does.
// Nor is an event lost silently: the log line goes out first, and an event the store refused is
// logged again as a warning and counted (the observer's `writeFailed`, a metric).
// Refusals of callers without a verified credential are stored one by one only within the audit
// budget (audit-budget.ts): beyond it they are counted, and the counts stored as one
// `audit.suppressed` event per address when the budget's minute ends (or at drain()), so a
// flood of refused calls cannot fill the store.
//
// Events carry ids, names and addresses, never a secret: no password, no token, no hash. The
// recorder takes only the fields below, so a caller cannot pass one by accident.
import { beyondDeadline, currentCall, outsideCall } from "../call-scope.js";
import type { Logger } from "../logger.js";
import type { AppendOptions, AuditEventRecord, AuditEventStore } from "../store/ports/audit-events.js";
import { AuditBudget, type AuditBudgetOptions, type SuppressedSummary } from "./audit-budget.js";
import type { Clock } from "./clock.js";
import { fillRandom } from "./random-pool.js";
import { AuthError, endedCall, Reasons } from "./errors.js";
import { StoreUnavailableError } from "../store/ports/errors.js";
import { isBusyRefusal } from "./login-throttle.js";
import { holdsCredential, unquotable } from "../credential-shapes.js";
import { lineText } from "./text.js";

/** Every event type, as stored and listed (README "Operate it" lists them). */
export const auditEventTypes = [
  "login",
  "signup",
  "password.changed",
  "user.deactivated",
  "session.started",
  "session.refreshed",
  "session.reuse_detected",
  "session.ended",
  "user_token.login",
  "user_token.logout",
  "user_token.bump",
  "auth_token.created",
  "auth_token.exchanged",
  "cookie_session.started",
  "cookie_session.ended",
  "api_token.created",
  "api_token.described",
  "api_token.revoked",
  "jwt_refresh_token.issued",
  "jwt_refresh_token.used",
  "jwt_refresh_token.revoked",
  "key.rotated",
  "key.revoked",
  "key.resealed",
  "admin.call",
  "audit.suppressed",
] as const;

export type AuditEventType = (typeof auditEventTypes)[number];

/**
 * success; failure (refused: wrong password, unknown token, bad input); locked (a login lock in
 * force); throttled (every attempt slot busy, too many sign-ups); shed (refused by hash admission,
 * or a login or sign-up check that took longer than its time: HASHER_BUSY); canceled (the call ended, its client gone or its deadline passed, before its
 * work was done: nothing was checked, or a store call was not made or waited for past the
 * deadline); error (the store or the server failed).
 */
export type AuditOutcome = "success" | "failure" | "locked" | "throttled" | "shed" | "canceled" | "error";

/** What a recorder says about an event; the rest comes from the call scope. */
export interface AuditInput {
  type: AuditEventType;
  outcome: AuditOutcome;
  userId?: string | undefined;
  login?: string | undefined;
  /** A public id: session id, token link, user token id, key id, RPC name. Never a secret. */
  subject?: string | undefined;
  /** The error reason of a refused call. */
  reason?: string | undefined;
  /** The API called, for a call refused before its interceptors named it in the call scope. */
  api?: string | undefined;
}

/** What the server layer watches (metrics). */
export interface AuditObserver {
  recorded?(event: AuditEventRecord): void;
  /** The store refused the event (it was logged). */
  writeFailed?(event: AuditEventRecord): void;
  /** The audit budget counted the event instead of storing it (audit-budget.ts). */
  suppressed?(event: AuditEventRecord): void;
}

/** The outcome an error of a recorded call stands for. */
export function outcomeOf(e: unknown): AuditOutcome {
  // The caller stopped waiting (answered CANCELED or DEADLINE_EXCEEDED): no store or server failed.
  if (endedCall(e)) return "canceled";
  if (!(e instanceof AuthError)) return "error";
  if (e.reason === "LOGIN_LOCKED") return isBusyRefusal(e) ? "throttled" : "locked";
  if (e.reason === "TOO_MANY_SIGNUPS") return "throttled";
  if (e.reason === "HASHER_BUSY") return "shed";
  if (e.code === "unavailable" || e.code === "internal") return "error";
  return "failure";
}

/**
 * The reason of an error, as events carry it: the one its answer carries. A store outage is
 * answered STORE_UNAVAILABLE (server/error-interceptor.ts) though it is no AuthError, and its
 * `error` event says so too.
 */
export function reasonOf(e: unknown): string | undefined {
  if (e instanceof AuthError) return e.reason;
  return e instanceof StoreUnavailableError ? Reasons.STORE_UNAVAILABLE : undefined;
}

type AuditFields = Omit<AuditInput, "type" | "outcome">;

/**
 * The arguments of tracked() and trackedThen(): the trail, the event's type and fields, the
 * `work` it records, the result's fields on success (`onSuccess`), and `successOptions`, the
 * store's options for that event (see AuditTrail.record), and whether a success changed anything
 * (`changed`).
 */
type Tracked<T> = [
  audit: Pick<AuditTrail, "record">,
  type: AuditEventType,
  fields: AuditFields,
  work: () => Promise<T>,
  onSuccess?: (result: T) => AuditFields,
  successOptions?: AppendOptions,
  /** Whether a success is an event (default yes): false for work that changed nothing, another call having made the change. */
  changed?: (result: T) => boolean,
];

/** Runs `work`, then records `type` with its outcome (and the result's fields on success). */
export async function tracked<T>(...args: Tracked<T>): Promise<T> {
  const { result, recorded } = await trackedThen(...args);
  await recorded;
  return result;
}

/**
 * tracked(), answered as soon as `work` succeeded, with `recorded`: the record of its success,
 * under way (AuditTrail.record's answer: whether the store has the event). A failure is recorded
 * before the error goes on, as tracked() does, with the user the error names (AuthError.userId:
 * a login refused once its password checked out) when it names one.
 */
export async function trackedThen<T>(...[audit, type, fields, work, onSuccess, successOptions, changed]: Tracked<T>): Promise<{ result: T; recorded: Promise<boolean> }> {
  let result: T;
  try {
    result = await work();
  } catch (e) {
    await audit.record({ type, ...fields, ...(e instanceof AuthError && e.userId !== undefined ? { userId: e.userId } : {}), outcome: outcomeOf(e), reason: reasonOf(e) });
    throw e;
  }
  if (changed !== undefined && !changed(result)) return { result, recorded: Promise.resolve(false) };
  return { result, recorded: audit.record({ type, ...fields, ...onSuccess?.(result), outcome: "success" }, successOptions) };
}

/** Free text as an event keeps it (lineText): at most `max` characters, nothing that changes how the event or its log line reads. */
const bounded = (s: string | undefined, max = 256) => (s === undefined ? undefined : lineText(s, max));

/**
 * What a refused attempt's `login` is recorded as when it has the shape of a credential: people
 * and tools send a token as the user name (git and npm send theirs so, over Basic), and a token
 * kept in the trail and its log lines would be a live secret there. The shapes of Tessera's own:
 * a JWT, an API token, a UUID (seed 002 user tokens), 32 or 43 base64url characters (hand-off,
 * refresh and other random tokens: credentialShaped), or holding one anywhere (credential-shapes.ts
 * holdsCredential: as a word, as a whole Authorization value pasted as the name does
 * ("Bearer tsr_..."), or joined by any character no token holds: `token:tsr_...`, `"tsr_..."`,
 * `(Bearer eyJ...)`, `x/tsr_...`). A login with such a name that succeeds is
 * still recorded as given: it is an account's name. A login that is one of the configuration's
 * secrets (the admin token, of any shape: an admin's tool sending it as the user name) is
 * recorded so whatever its outcome.
 */
export const REDACTED_LOGIN = "[redacted]";

/** The characters of a User-Agent an event keeps. */
const AGENT_SHOWN = 256;

/**
 * Fewer UTF-16 code units than any credential or configured secret has: the admin token is at
 * least 16 ASCII characters, the other secrets at least 32 bytes (11 characters of three bytes),
 * Tessera's tokens 32 characters or more (a JWT more still).
 */
const SHORTEST_SECRET = 11;

export interface AuditTrailDeps {
  events: AuditEventStore;
  clock: Clock;
  logger: Logger;
  /** TESSERA_AUDIT: false records nothing (no store write, no log line); observers still see events. */
  enabled: boolean;
  /** The budget of refusals of unverified callers (TESSERA_AUDIT_REFUSALS_PER_MINUTE[_TOTAL]); absent: no limit. */
  budget?: AuditBudgetOptions;
  /** Whether text is a secret of the configuration (config.ts configuredSecret): a login that is one is recorded as REDACTED_LOGIN. */
  isSecret?: (text: string) => boolean;
}

export class AuditTrail {
  private observer: AuditObserver = {};
  /** Store writes not yet settled (awaited by drain()). */
  private readonly writes = new Set<Promise<boolean>>();

  /** Refusals of unverified callers beyond the budget are counted, then stored as summaries. */
  private readonly budget: AuditBudget | undefined;

  /** Text a refused login may not be recorded with (a credential's shape, a configured secret). */
  private readonly hidden: (text: string) => boolean;

  constructor(private readonly deps: AuditTrailDeps) {
    this.hidden = unquotable(deps.isSecret);
    if (deps.budget) this.budget = new AuditBudget(deps.budget, deps.clock, (summaries) => outsideCall(() => summaries.forEach((s) => this.storeSummary(s))));
  }

  /** TESSERA_AUDIT: whether events are recorded (observers see them either way). */
  get enabled(): boolean {
    return this.deps.enabled;
  }

  /** Sets who watches the trail (one observer; a later call replaces it). */
  observe(observer: AuditObserver): void {
    this.observer = observer;
  }

  /** Event ids in the order this instance recorded them (the listing's tie-break within a millisecond). */
  private readonly ids = new SortableIds();

  /**
   * Records one event: the log line, then the store; resolves once the store has it (true) or
   * refused it (false). Never rejects. An `error` outcome (most likely the store is down) does
   * not wait for the store (false): the call it records has failed already and must not wait a
   * second time. False too when nothing is stored (auditing off, a refusal counted by the
   * budget). `options` go to the store's append: with syncedByNextWrite, the caller's next write
   * makes the event durable, or the caller waits for synced() when that write is not made
   * (AppendOptions).
   */
  async record(input: AuditInput, options?: AppendOptions): Promise<boolean> {
    const scope = currentCall();
    const now = this.deps.clock.now();
    const event: AuditEventRecord = { id: this.ids.next(now.getTime()), time: now, type: input.type, outcome: input.outcome };
    const fields: Array<[keyof AuditEventRecord, string | undefined]> = [
      ["userId", input.userId],
      ["login", input.login !== undefined && this.redacted(input.login, input.outcome) ? REDACTED_LOGIN : bounded(input.login)],
      ["api", scope?.api ?? input.api],
      ["clientId", scope?.clientId],
      ["clientAddress", scope?.clientAddress],
      ["userAgent", this.agent(scope?.userAgent)],
      ["requestId", scope?.requestId],
      ["traceId", scope?.traceId],
      ["spanId", scope?.spanId],
      ["subject", bounded(input.subject)],
      ["reason", input.reason],
    ];
    for (const [k, v] of fields) if (v !== undefined && v !== "") (event as unknown as Record<string, unknown>)[k] = v;
    if (scope) (scope.recordedEvents ??= new Set()).add(input.type);
    this.observer.recorded?.(event);
    if (!this.deps.enabled) return false;
    // A refusal of a caller without a verified credential (inside a call: an event outside one
    // has no caller) is within the budget, or counted for its address's summary: neither stored
    // nor logged one by one (the call's own log line still is). Not one that names a user: the
    // caller presented something of that user's that checked out (a used hand-off token, a
    // revoked refresh token, a deactivated user's password), which only a holder of one of that
    // user's credentials can send, as only a verified caller's refusals are stored in full; a
    // summary, counted by type, outcome and reason, would lose it from that user's trail: a thief
    // spending the address's budget on wrong admin tokens first would replay a stolen token unseen.
    if (input.outcome !== "success" && event.userId === undefined && scope !== undefined && scope.authenticated !== true && this.budget && !this.budget.admit(event)) {
      this.observer.suppressed?.(event);
      return false;
    }
    const write = this.logAndStore(event, options);
    return input.outcome !== "error" && (await write);
  }

  /**
   * A User-Agent as an event records it: its first 256 characters, without a word the cut would
   * leave its start of (that start may be a secret's), and REDACTED_LOGIN when what is left holds
   * a credential or a configured secret (holdsCredential): a token sent in the wrong header, as
   * `curl -A` for `-H`, or as a tool's configured name, would be a live secret in the trail and its
   * log lines. No browser's or tool's own name has such a word.
   */
  private agent(agent: string | undefined): string | undefined {
    if (agent === undefined) return undefined;
    const shown = agent.length > AGENT_SHOWN && /\S/.test(agent[AGENT_SHOWN]!) ? agent.slice(0, AGENT_SHOWN).replace(/\S+$/, "") : agent.slice(0, AGENT_SHOWN);
    return holdsCredential(shown, this.hiddenInAgent) ? REDACTED_LOGIN : bounded(shown);
  }

  /**
   * `hidden`, for text too short to be a credential or a configured secret false without a
   * digest: a User-Agent is made of many short words (a browser's of some 30 pieces), and a
   * digest of each cost an event about 0.2 ms.
   */
  private readonly hiddenInAgent = (text: string): boolean => text.length >= SHORTEST_SECRET && this.hidden(text);

  /** Whether a login is recorded as REDACTED_LOGIN: refused and holding a credential or a configured secret (holdsCredential), or a configured secret. */
  private redacted(login: string, outcome: AuditOutcome): boolean {
    return (outcome !== "success" && holdsCredential(login, this.hidden)) || this.deps.isSecret?.(login) === true;
  }

  /**
   * Resolves once every event recorded so far is durable in the store: for a call whose event
   * was recorded syncedByNextWrite and which failed before that write. Never rejects: a store
   * that cannot sync (it has failed, and says so itself) is logged.
   */
  async synced(): Promise<void> {
    if (!this.deps.enabled) return;
    try {
      await this.deps.events.synced();
    } catch (e) {
      this.deps.logger.warn("audit events not made durable", { type: "audit", error: e instanceof Error ? e.message : String(e) });
    }
  }

  /** The event's log line, then its store write (tracked for drain()): whether the store has it. */
  private logAndStore(event: AuditEventRecord, options?: AppendOptions): Promise<boolean> {
    // The logger adds the call's requestId, trace_id and span_id to every line itself; Dates
    // (a summary's `suppressed.since`) are written as JSON writes them, in ISO 8601.
    const { id, time, type, requestId: _requestId, traceId: _traceId, spanId: _spanId, ...rest } = event;
    this.deps.logger.info("audit", { type: "audit", event: type, auditId: id, eventTime: time.toISOString(), ...rest });
    const write = this.store(event, options);
    this.writes.add(write);
    void write.finally(() => this.writes.delete(write));
    return write;
  }

  /** Resolves when every store write started so far has settled, summaries of the budget's open window included (shutdown). */
  async drain(): Promise<void> {
    this.budget?.stop();
    while (this.writes.size > 0) await Promise.all(this.writes);
  }

  /**
   * An `audit.suppressed` event: observed (counted in tessera_audit_events_total), logged and
   * stored like any other (outcome failure: what it counts was refused).
   */
  private storeSummary(summary: SuppressedSummary): void {
    const now = this.deps.clock.now();
    const event: AuditEventRecord = { id: this.ids.next(now.getTime()), time: now, type: "audit.suppressed", outcome: "failure", ...summary };
    this.observer.recorded?.(event);
    void this.logAndStore(event);
  }

  private async store(event: AuditEventRecord, options?: AppendOptions): Promise<boolean> {
    const { id, type } = event;
    try {
      // Not bounded by the recorded call's deadline: an event of a call that went on past it
      // (a password checked after its caller stopped waiting, a refusal or an error that
      // followed) is stored all the same, as synced() waits for them.
      await beyondDeadline(() => this.deps.events.append(event, options));
      return true;
    } catch (e) {
      this.deps.logger.warn("audit event not stored", {
        type: "audit",
        event: type,
        auditId: id,
        error: e instanceof Error ? e.message : String(e),
      });
      this.observer.writeFailed?.(event);
      return false;
    }
  }
}

/**
 * UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then a counter within the millisecond (the
 * 12 bits of rand_a, method 1 of section 6.2), then random bits. Ids one instance makes sort as
 * it made them, as text too, so events recorded within one millisecond list in their order.
 */
export class SortableIds {
  private lastMs = 0;
  private seq = 0;

  next(nowMs: number): string {
    let ms = Math.max(nowMs, this.lastMs);
    if (ms === this.lastMs) {
      this.seq++;
      if (this.seq > 0xfff) {
        ms++; // the counter is spent: borrow the next millisecond
        this.seq = 0;
      }
    } else {
      this.seq = 0;
    }
    this.lastMs = ms;
    // Bytes 8 to 15 random (from the pool: random-pool.ts), the others written below.
    const b = Buffer.allocUnsafe(16);
    fillRandom(b, 8, 8);
    b.writeUIntBE(ms, 0, 6);
    b[6] = 0x70 | (this.seq >> 8);
    b[7] = this.seq & 0xff;
    b[8] = 0x80 | (b[8]! & 0x3f);
    const h = b.toString("hex");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
}
