// What every layer may know about the call it is serving, without each signature carrying it:
// the request id (every log line written during the call names it) and the caller's deadline
// (a store call waits no longer than what is left of it). The server opens one scope per HTTP
// request (src/server/index.ts) and sets the deadline once the protocol's timeout header is
// read (src/server/deadline-interceptor.ts); the logger and the store adapters read it. Outside
// a request (start-up, housekeeping) there is no scope: no request id, no deadline.
//
// A scope rather than parameters: the deadline is needed at the bottom (the store adapters) and
// set at the top (the server), and the core in between neither knows nor cares about it.
import { AsyncLocalStorage } from "node:async_hooks";
import type { DescMessage } from "@bufbuild/protobuf";

export interface CallScope {
  /** The request's id: the caller's `x-request-id` when it is sane, else generated. */
  readonly requestId: string;
  /**
   * When the caller stops waiting, from `grpc-timeout` / `connect-timeout-ms`: on the monotonic
   * clock (`performance.now()` ms, see callClock), not the wall clock, which an NTP step or an
   * operator can move by hours while a call is served.
   */
  deadline?: number;
  /**
   * Aborts when the call ends before its answer: its deadline passed, or its client went away
   * (cancelled, reset its HTTP/2 stream, closed its connection). Set by the deadline interceptor;
   * before it, for a call of a gRPC, gRPC-Web or Connect path, the request's own (the client
   * gone), set by the dispatcher. A CallEnd until something needs the signal itself
   * (callSignal).
   */
  signal?: AbortSignal | CallEnd;
  /** W3C trace context of the call: 32 hex digits (the caller's trace, or a new one). */
  traceId?: string;
  /** This call's own span id (16 hex digits), new for every call. */
  spanId?: string;
  /** The client's address as login protection counts it (server/client-address.ts). */
  clientAddress?: string;
  /** The caller's User-Agent, as sent (bounded). */
  userAgent?: string;
  /**
   * The API being called ("session", "jwt", ...: the proto package's name), once the call reached
   * the interceptors (the logging interceptor sets it): unset, a call was refused before.
   */
  api?: string;
  /** The verified client id (`x-koms-clientid`) of the call, once the access check passed. */
  clientId?: string;
  /**
   * True once the access check has verified a credential of the caller (a session, user token,
   * cookie, JWT, API token or the admin token; not a client id alone, nor Basic credentials
   * before their password is checked): the audit budget never holds back such a caller's events.
   */
  authenticated?: boolean;
  /** Per-call hooks of the server layer (a trace span for store calls and hashing). */
  span?: unknown;
  /**
   * The request message type of the RPC being served, once the dispatcher has routed it: the
   * router's JSON text decoder, which protobuf-es's parse follows, checks its Timestamps
   * (server/json-text.ts).
   */
  requestType?: DescMessage;
  /**
   * The types of the audit events recorded during the call (AuditTrail.record): a login or
   * sign-up refused before its core call recorded one is recorded at the server
   * (server/audit-interceptor.ts).
   */
  recordedEvents?: Set<string>;
}

const storage = new AsyncLocalStorage<CallScope>();

/** The clock `CallScope.deadline` is kept on: ms that only move forward, at the pace of real time. */
export function callClock(): number {
  return performance.now();
}

/** Runs `fn` (and everything it starts) inside `scope`. */
export function runInCall<T>(scope: CallScope, fn: () => T): T {
  return storage.run(scope, fn);
}

/** Runs `fn` outside any call's scope (what it starts is no part of the current call). */
export function outsideCall<T>(fn: () => T): T {
  return storage.exit(fn);
}

/**
 * Runs `fn` in the current call's scope without its deadline: for the server's own bookkeeping
 * that must be done whether the caller still waits or not (a login attempt giving back or
 * counting the slots it took). Its store calls wait for the store's own timeout only.
 */
export function beyondDeadline<T>(fn: () => T): T {
  const scope = storage.getStore();
  if (scope?.deadline === undefined) return fn();
  const { deadline: _deadline, ...rest } = scope;
  return storage.run(rest, fn);
}

/** The scope of the call being served, if any. */
export function currentCall(): CallScope | undefined {
  return storage.getStore();
}

/**
 * Thrown instead of starting work for a call that has ended (callEnded): the server answers it
 * as the call's own signal says (CANCELED, or DEADLINE_EXCEEDED), to nobody.
 */
export class CallEndedError extends Error {
  override name = "CallEndedError";
  constructor() {
    super("the call ended before this work started");
  }
}

/** True once the current call has ended (its signal aborted, or its deadline passed); false outside a call. */
export function callEnded(): boolean {
  const scope = storage.getStore();
  if (scope === undefined) return false;
  return scope.signal?.aborted === true || (scope.deadline !== undefined && scope.deadline <= callClock());
}

/** The current call's signal (see CallScope.signal), if it has one. */
export function callSignal(): AbortSignal | undefined {
  const signal = storage.getStore()?.signal;
  return signal instanceof CallEnd ? signal.signal : signal;
}

/**
 * A call's early end (its client gone before the answer was written), with the AbortSignal
 * that says so made only when something asks for it. An AbortSignal costs Node 20 about 10 µs
 * (its createAbortSignal sets the prototype of a new EventTarget, and V8 is slow at that): 3 %
 * of a gRPC token check's CPU (bench/profile.ts), for a signal that nearly every call only asks
 * whether it aborted (signalAborted). `signal`, asked for after the abort, is made aborted with
 * the same reason.
 */
export class CallEnd {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/**
 * The key under which an object whose `signal` is a CallEnd's (a getter) carries that CallEnd:
 * signalAborted and callEndOf read it without making the signal.
 */
export const callEndKey = Symbol("tessera.callEnd");

/** The CallEnd behind `carrier.signal`, when it has one (callEndKey). */
export function callEndOf(carrier: object): CallEnd | undefined {
  return (carrier as { [callEndKey]?: CallEnd })[callEndKey];
}

/** `carrier.signal.aborted`, without making a CallEnd's signal. */
export function signalAborted(carrier: { readonly signal: AbortSignal }): boolean {
  const end = callEndOf(carrier);
  return end === undefined ? carrier.signal.aborted : end.aborted;
}

/** Milliseconds left before the current call's deadline (negative once past); undefined without one. */
export function timeLeftMs(): number | undefined {
  const deadline = storage.getStore()?.deadline;
  return deadline === undefined ? undefined : deadline - callClock();
}

/** The API a service belongs to, as audit events and login metrics name it: "tessera.jwt.v1.JwtService" -> "jwt". */
export function apiOf(serviceTypeName: string): string {
  const parts = serviceTypeName.split(".");
  return parts.length >= 3 && parts[0] === "tessera" ? parts[1]! : parts.slice(0, -1).join(".");
}
