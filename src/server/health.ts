// grpc.health.v1: SERVING while the store answers, NOT_SERVING while it does not, and from the
// moment a stop begins its lame-duck period (TESSERA_SHUTDOWN_DELAY_SECONDS) on.
// The overall status ("") and every Tessera service share the store, so share its status.
import { create, type DescService } from "@bufbuild/protobuf";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
} from "../../gen/health/v1/health_pb.js";
import { credentialShaped, quotable } from "../credential-shapes.js";
import { printable } from "../core/text.js";
import { serverError } from "./error-details.js";

/** Resolves true when the service can serve requests (the store answers and takes writes). */
export type ReadinessProbe = () => Promise<boolean>;

/**
 * False when only a restart can make the service whole again (the embedded store refusing writes
 * after a failed fsync): GET /healthz then answers 503, so that an orchestrator restarts it. A
 * store that is merely down (MongoDB unreachable) comes back by itself and fails readiness only.
 */
export type LivenessProbe = () => boolean;

/**
 * `ready`, failing once `draining` has aborted (a stop's lame-duck period): also when the store
 * check was already under way as it aborted, so that no probe answered after the stop began
 * says SERVING, however long the store took to answer.
 */
export function unlessDraining(ready: ReadinessProbe, draining: AbortSignal): ReadinessProbe {
  return () => (draining.aborted ? Promise.resolve(false) : ready().then((ok) => ok && !draining.aborted));
}

/**
 * `draining` aborts when a stop's lame-duck period begins (RunningServer.drain; `ready` is then
 * unlessDraining's and fails from then on): every Watch stream is told NOT_SERVING at once
 * rather than at its next probe. `stopping` aborts when the graceful stop begins
 * (RunningServer.close): every Watch stream is then told NOT_SERVING, if it has not been, and
 * ends (OK, which health.proto tells a client to retry, elsewhere). The stop waits for the calls
 * under way, and a Watch never ends by itself: otherwise one open stream (a gRPC client's
 * health checking holds one per connection) held every stop for the whole
 * TESSERA_SHUTDOWN_GRACE_SECONDS, and was then cut off with its connection, SERVING its last
 * word. An unknown service's name is quoted (named) with its control and bidirectional
 * characters escaped (printable), and not at all ("*") when `hidden` says not to (quotable: a
 * credential's shape, a secret of the configuration).
 */
export function createHealthImpl(
  services: readonly DescService[],
  ready: ReadinessProbe,
  watchIntervalMs = 1000,
  draining?: AbortSignal,
  hidden: (text: string) => boolean = credentialShaped,
  stopping?: AbortSignal,
): ServiceImpl<typeof Health> {
  const names = new Set(["", ...services.map((s) => s.typeName)]);
  const status = async () => ((await ready()) ? Status.SERVING : Status.NOT_SERVING);
  // Every Watch stream reads the one status probed per interval: a stream stays open as long as
  // its client wants (100 a connection, unauthenticated), and a probe of its own per stream
  // and interval would let one client make the store answer thousands a second.
  let watched: { at: number; status: Promise<Status> } | undefined;
  // The Watch pauses under way as the stop begins, cut short by the one listener on `draining`
  // and the one on `stopping` (a listener of its own per stream passed Node's limit of 10 on an
  // AbortSignal, and Node then warned of a leak on stderr with the eleventh Watch stream).
  const paused = new Set<() => void>();
  const wakeAll = () => {
    for (const wake of [...paused]) wake();
  };
  draining?.addEventListener("abort", wakeAll, { once: true });
  stopping?.addEventListener("abort", wakeAll, { once: true });
  const wakeable = () => draining?.aborted === false || stopping?.aborted === false;
  const watchedStatus = () => {
    // The status probed before the stop began may be SERVING for up to an interval more: a
    // balancer watching must hear at once that the instance is leaving.
    if (draining?.aborted) return Promise.resolve(Status.NOT_SERVING);
    const now = performance.now();
    if (watched === undefined || now - watched.at >= watchIntervalMs) watched = { at: now, status: status() };
    return watched.status;
  };
  const known = (service: string) => {
    if (!names.has(service)) throw serverError(Code.NotFound, "SERVICE_NOT_FOUND", `unknown service ${quotable(service, hidden, shownNameMax) ? printable(named(service)) : "*"}`);
  };
  return {
    async check(req) {
      known(req.service);
      return { status: await status() };
    },
    async *watch(req, ctx) {
      const unknown = !names.has(req.service);
      let last: Status | undefined;
      while (!ctx.signal.aborted) {
        const stopped = stopping?.aborted === true;
        const now = stopped ? Status.NOT_SERVING : unknown ? Status.SERVICE_UNKNOWN : await watchedStatus();
        if (now !== last) {
          last = now;
          yield create(HealthCheckResponseSchema, { status: now });
        }
        if (stopped) return;
        // (A stop that began while the status was read is not waited for.)
        if (!stopping?.aborted) await pause(watchIntervalMs, ctx.signal, wakeable() ? paused : undefined);
      }
      // The stream ends as the call did: DEADLINE_EXCEEDED at the client's deadline, not OK.
      ctx.signal.throwIfAborted();
    },
    async list() {
      const s = await status();
      return { statuses: Object.fromEntries([...names].map((n) => [n, create(HealthCheckResponseSchema, { status: s })])) };
    },
  };
}

/** Longest part of an unknown service's name the error quotes (no service's name is longer). */
const shownNameMax = 256;

/**
 * The name as the error names it: whole, or its first 256 characters and its length. The request
 * may hold a name of any length up to the body limit; quoted whole, it made the trailers (the
 * message twice: grpc-message, grpc-status-details-bin) larger than a client takes.
 */
function named(service: string): string {
  if (service.length <= shownNameMax) return service;
  // Not between the two halves of a surrogate pair: a lone one is no text to encode.
  const end = /[\ud800-\udbff]/.test(service[shownNameMax - 1]!) ? shownNameMax - 1 : shownNameMax;
  return `${service.slice(0, end)}... (${service.length} characters)`;
}

/**
 * Waits `ms`, or less when `signal` aborts, or when the stop begins during the pause (`wakers`:
 * those createHealthImpl's listeners on `draining` and `stopping` call; a Watch's pause as the
 * stop begins, cut short for its NOT_SERVING; once both have aborted, a Watch pauses whole);
 * leaves no timer, no listener and no waker behind.
 */
function pause(ms: number, signal: AbortSignal, wakers?: Set<() => void>): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      wakers?.delete(done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    wakers?.add(done);
  });
}
