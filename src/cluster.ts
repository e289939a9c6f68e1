// TESSERA_WORKERS: that many worker processes on the one port. The process started is worker
// 1, the leader: it serves like any worker, and it also listens on the port, forks the others
// (the followers, 2..n) once it listens, and hands each connection it accepts to the next
// worker in turn (itself included) before reading a byte of it, so every worker serves whole
// connections, round-robin, as Node's cluster module distributes them. There is no separate
// supervising process: the first healthy answer waits for one worker's start, not a
// supervisor's and then a worker's, and the process tree has one node process per worker.
// Forked as soon as the leader's configuration was read, the followers' starts took cores from
// its own and delayed its first healthy answer; forked once it listens, they start on a store
// it has made (schema, signing key), and the last of them serves about as soon as it did
// (README, "Start-up and memory"). A stop asked for before the leader listens (a signal during
// its start) forks none.
//
// The leader generates the development credentials once (every follower accepts the same); on
// SIGTERM/SIGINT it stops accepting, forwards the signal to every follower, drains its own
// requests and exits once every follower has drained (with TESSERA_SHUTDOWN_DELAY_SECONDS, it
// first tells every follower to fail readiness, and they keep serving until it tells them to
// stop, once its delay has ended); a follower that dies unexpectedly (also during that delay,
// not once the graceful stop has begun) is replaced at once, and one that keeps dying young
// (within `steadyMs` of its start: one that cannot start) after a second, then twice its last
// wait each time, up to a minute, so that it neither spins nor floods the log; respawns are a second apart at least. A follower stops on
// its own when the leader is gone (its IPC channel closes), so no follower outlives it.
//
// What stays per process, as it does across instances on one MongoDB: caches bounded by their
// TTLs (API tokens: TESSERA_API_TOKEN_CACHE_SECONDS; keys: the reload interval). Housekeeping
// runs in the leader only. The embedded store is shared through SQLite's own locking (WAL, busy
// timeout, write transactions taken IMMEDIATE), and so is its failure: a worker whose fsync of
// the WAL failed tells the leader, which tells every follower, now and as each one (a
// replacement too) becomes ready, so every worker refuses writes and reports itself unready and
// not live, whichever took the probe's connection (sqlite-durability.ts says why).
import { fork, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";

// Every time below (a connection's hand-off, a follower's spawn, the respawns' spacing) is on the
// monotonic clock (performance.now()): the wall clock, stepped back an hour, made a lost
// follower's replacement wait that hour.

/** A follower that has not taken a connection handed to it this long ago is handed no more until it has. */
const unresponsiveMs = 1000;

/**
 * A follower that died is replaced at once; again within `steadyMs` of its start, after
 * `restartMs`, then twice its last wait (up to `maxRestartMs`) each time. Respawns are `restartMs`
 * apart at least.
 */
const restartMs = 1000;
const maxRestartMs = 60_000;
const steadyMs = 10_000;
/** How long a follower's death by SIGINT or SIGTERM waits for the same signal to reach this process (a group's stop). */
const groupSignalMs = 250;
/**
 * How long the leader waits for each follower's acknowledgement of news, its own or a follower's
 * it passes on (the followers are told at once, and waited for side by side).
 */
const newsAckMs = 1500;
/** How long a follower that sent news waits for the leader's acknowledgement, which follows every other follower's (newsAckMs). */
const sentNewsAckMs = 2000;

/** Set in each follower's environment: its number, 2..TESSERA_WORKERS. */
export const workerIdVariable = "TESSERA_WORKER_ID";

/** This process's part: alone, the leader of a cluster, or one of its followers. */
export type Role = "single" | "leader" | "follower";

/** Messages between the leader and its followers (IPC). */
const message = {
  /** follower -> leader: ready to be handed connections. */
  ready: "tessera:ready",
  /** leader -> follower: the port it listens on (the follower's URL), after "ready". */
  port: "tessera:port",
  /** leader -> follower: a connection, with its socket and its number (`seq`). */
  connection: "tessera:connection",
  /**
   * follower -> leader: it has the connection numbered `seq` (the leader lets go of its copy), or
   * with `refused`, it is stopping and did not take it (the leader serves it).
   */
  taken: "tessera:taken",
  /** follower -> leader: it is stopping; hand it no more connections. */
  leaving: "tessera:leaving",
  /**
   * leader -> follower, and back: numbered (`seq`) after the connections sent before it. Its
   * answer says that every one of those that reached the follower has been answered "taken".
   */
  sync: "tessera:sync",
  /** either way: a request to the other side, and its answer. */
  ask: "tessera:ask",
  answer: "tessera:answer",
  /**
   * follower -> leader, and leader -> followers: the embedded store has failed for good
   * (`reason`: the error's message); every worker's store fails with it.
   */
  storeFailed: "tessera:store-failed",
  /**
   * follower -> leader, and leader -> the other followers: a change every worker must act on at
   * once (`kind`, with its `reason` when it has one), as the worker that made it did. With an
   * `id`, the sender waits for its acknowledgement.
   */
  news: "tessera:news",
  /**
   * either way: the news numbered `id` is in effect here; from the leader to the follower that
   * sent it, in every other follower too (or they were given up on: newsAckMs, or failed). With
   * `failed`: this worker's handler of it threw or rejected (it logged why), from a follower as
   * soon as it did; from the leader, its own handler (it reports the other followers itself).
   */
  newsAck: "tessera:news-ack",
  /**
   * leader -> the follower that sent the news numbered `id`: it is in effect in the leader, which
   * is still waiting for the other followers (it reports those late or failed itself:
   * newsAckMs); with `failed`, the leader's handler of it failed.
   */
  newsApplied: "tessera:news-applied",
  /**
   * follower -> leader: its start failed (`reason`: the line it would have written); it exits 1.
   * The leader logs it with the worker's exit, so that a start failing in every worker at once
   * (a data directory that cannot be made) writes the first worker's line alone.
   */
  startFailed: "tessera:start-failed",
  /**
   * leader -> follower: the instance is draining (TESSERA_SHUTDOWN_DELAY_SECONDS, on `reason`, the
   * signal): readiness fails from now on, every call is still served, and the follower waits for
   * "stop" (or the leader's end) rather than ending the delay itself.
   */
  drain: "tessera:drain",
  /**
   * leader -> follower, after "drain": the delay has ended (the leader's listener closes); the
   * graceful stop begins. The signal forwarded with it cannot say so: a follower that is sent
   * SIGTERM as its whole process group is (a supervisor stopping a control group, a terminal's
   * Ctrl-C) must go on serving through the delay.
   */
  stop: "tessera:stop",
} as const;

interface Envelope {
  type?: string;
  id?: string;
  kind?: string;
  port?: number;
  seq?: number;
  refused?: boolean;
  value?: unknown;
  error?: string;
  reason?: string;
  failed?: boolean;
}

/** A process's role, from its environment: a follower is forked by a leader, with an IPC channel. */
export function roleOf(workers: number, env: NodeJS.ProcessEnv = process.env): Role {
  if (env[workerIdVariable] && process.send !== undefined) return "follower";
  return workers > 1 ? "leader" : "single";
}

/** The worker's number (1..n) in a cluster; undefined in a single process. */
export function workerId(role: Role, env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (role === "follower") return Number(env[workerIdVariable]);
  return role === "leader" ? 1 : undefined;
}

let role: Role = "single";
/** Followers taking connections (leader). */
const ready: ChildProcess[] = [];
/** Followers that have started and not exited, with their numbers (leader): those taking connections, and those draining theirs. */
const started = new Map<ChildProcess, number>();
const answerers = new Map<string, () => unknown>();
const pending = new Map<string, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();

export function currentRole(): Role {
  return role;
}

/** The embedded store's failure, once one worker's store has failed (in a cluster). */
let storeFailure: string | undefined;
/** Fails this worker's store (set once it is open). */
let failStore: ((reason: string) => void) | undefined;
/** Leader: sends the failure to every follower. */
let tellFollowers: ((reason: string) => void) | undefined;

/** Another worker's store failed: this one's fails too (now, or as soon as it is open), and the leader passes it on. */
function heardStoreFailure(reason: string): void {
  if (storeFailure !== undefined) return;
  storeFailure = reason;
  failStore?.(reason);
  tellFollowers?.(reason);
}

/**
 * This worker's store has failed for good: every other worker's store fails too (a follower
 * tells the leader, which tells the others). Nothing to share in a single process.
 */
export function shareStoreFailure(reason: string): void {
  if (role === "single" || storeFailure !== undefined) return;
  storeFailure = reason;
  if (role === "leader") tellFollowers?.(reason);
  else if (process.connected) process.send!({ type: message.storeFailed, reason }, undefined, undefined, () => {});
}

/** `fail` fails this worker's store when another worker's has failed (at once if one already has). */
export function onSharedStoreFailure(fail: (reason: string) => void): void {
  if (role === "single") return;
  failStore = fail;
  if (storeFailure !== undefined) fail(storeFailure);
}

/** Follower: what the leader's "drain" and "stop" do here (onLeaderDrain). */
let leaderDrain: { drain(signal: string): void; stop(signal: string): void } | undefined;

/**
 * In a follower: `drain` runs when the leader's stop begins its delay (TESSERA_SHUTDOWN_DELAY_SECONDS),
 * `stop` when that delay ends, each with the signal the leader was sent.
 */
export function onLeaderDrain(handlers: { drain(signal: string): void; stop(signal: string): void }): void {
  leaderDrain = handlers;
}

/** What each kind of news does in this worker (onNews): done once what it returns has settled. */
const newsHandlers = new Map<string, (value: string) => unknown>();
/**
 * Leader: passes news on to every follower but the one it came from, and resolves once each
 * follower taking connections has acknowledged it or has been given up on (newsAckMs).
 */
let tellNews: ((kind: string, value: string, from?: ChildProcess) => Promise<void>) | undefined;
/** Told of news not in effect in a worker (onNewsReports). */
let newsReports: NewsReports | undefined;
/**
 * The acknowledgements this worker waits for, by the id of the news sent: the whole (newsAck),
 * and the leader's own part (newsApplied); each says whether it failed. `to`: in the leader, the
 * follower it was sent to, the only one whose acknowledgement counts.
 */
const newsAcks = new Map<string, { to?: ChildProcess; acknowledged(failed: boolean): void; applied(failed: boolean): void }>();
let newsSeq = 0;
/**
 * How news sent to one worker fared (sendNews): acknowledged in time (or the worker is gone),
 * acknowledged as failed (its handler threw or rejected), or not acknowledged in time.
 */
type NewsOutcome = "acknowledged" | "failed" | "late";

/**
 * News that arrived while this worker was starting, before a handler of its kind was set (onNews):
 * each is applied once one is, or once the start has ended (newsHandled) with none of its kind.
 * Undefined from then on. So a worker that read the key list (or anything else news makes stale)
 * before a change made elsewhere does not become ready serving what it read.
 */
let heldNews: Array<{ kind: string; apply(): void }> | undefined = [];

/** Runs the held news of `kind` (every kind: undefined), in the order it arrived. */
function releaseNews(kind?: string): void {
  if (heldNews === undefined) return;
  const now = heldNews.filter((n) => kind === undefined || n.kind === kind);
  heldNews = kind === undefined ? undefined : heldNews.filter((n) => !now.includes(n));
  for (const n of now) n.apply();
}

/** This worker has started (it is about to be handed connections): news no handler was set for is held no longer. */
function newsHandled(): void {
  releaseNews();
}

/**
 * Puts news in effect here: now, or once a handler of its kind is set (heldNews). Settles as what
 * the handler returns does, and rejects when it throws: a handler's error never escapes into the
 * channel's "message" listener (an uncaught exception: the worker died of it) or into onNews.
 */
function handleNews(kind: string, value: string): Promise<unknown> {
  const held = heldNews;
  if (newsHandlers.has(kind) || held === undefined) return new Promise((resolve) => resolve(newsHandlers.get(kind)?.(value)));
  return new Promise((resolve) => held.push({ kind, apply: () => resolve(handleNews(kind, value)) }));
}

/**
 * Puts news that arrived over one channel in effect here and, in the leader, in every other
 * follower (tellNews), then acknowledges it over `reply` when it asks (`id`). A handler that
 * throws or rejects is reported here (onNewsReports: failedHere, once) and acknowledged as failed,
 * at once in a follower: its sender reports the failure rather than wait out its bound for an
 * acknowledgement that never comes. The leader also says, over `reply`, once its own handler has
 * settled (newsApplied, failed or not): a follower whose wait ends while the leader still waits
 * for the others then leaves those to the leader's report, and reports the leader only if it
 * failed. The leader's whole acknowledgement still follows the others' (or their bounds).
 */
function applyNews(m: Envelope, reply: Send, from?: ChildProcess): void {
  const { id } = m;
  const kind = m.kind!;
  /** Whether this worker's handler failed, once it has settled. */
  const failedHere = handleNews(kind, m.reason!).then(
    () => false,
    (error: unknown) => {
      try {
        newsReports?.failedHere(kind, error);
      } catch {
        // A report that fails (an error whose fields throw when read) still answers the sender.
      }
      return true;
    },
  );
  const answer = (type: string, failed: boolean) => id !== undefined && reply({ type, id, ...(failed && { failed }) }, () => {});
  if (from !== undefined) failedHere.then((failed) => answer(message.newsApplied, failed));
  Promise.all([failedHere, tellNews?.(kind, m.reason!, from)]).then(
    ([failed]) => answer(message.newsAck, failed),
    () => {},
  );
}

/**
 * Sends news over one channel (to the follower `to`, in the leader). With `waitMs`: resolves once
 * it is acknowledged, "failed" when the other side's handler failed (the leader's own, for the
 * news of a follower: newsApplied or newsAck), "acknowledged" otherwise; once `waitMs` have
 * passed, "late" unless the other side has said its own handler has settled (the leader, waiting
 * for the others: newsApplied); "acknowledged" too when it could not be sent (the channel closed:
 * the worker is gone, and serves nothing), or when the follower `to` exits before it answers.
 * Without `waitMs`, at once. The first answer counts: an acknowledgement once it has resolved
 * (late, a duplicate) or for an id it did not send is ignored.
 */
function sendNews(send: Send, kind: string, value: string, waitMs?: number, to?: ChildProcess): Promise<NewsOutcome> {
  if (waitMs === undefined) {
    send({ type: message.news, kind, reason: value }, () => {});
    return Promise.resolve("acknowledged");
  }
  const id = String(++newsSeq);
  return new Promise<NewsOutcome>((resolve) => {
    const done = (outcome: NewsOutcome) => {
      clearTimeout(timer);
      newsAcks.delete(id);
      to?.off("exit", gone);
      resolve(outcome);
    };
    /** The leader's own part, once it has said (newsApplied). */
    let leaderPart: "applied" | "failed" | undefined;
    const timer = setTimeout(() => done(leaderPart === "failed" ? "failed" : leaderPart === "applied" ? "acknowledged" : "late"), waitMs);
    newsAcks.set(id, {
      ...(to !== undefined && { to }),
      acknowledged: (failed) => done(failed || leaderPart === "failed" ? "failed" : "acknowledged"),
      applied: (failed) => (leaderPart ??= failed ? "failed" : "applied"),
    });
    // A follower that exits before it acknowledges serves nothing from then on (its replacement
    // reads the store as it starts), as one the news could not be sent to.
    const gone = () => done("acknowledged");
    to?.once("exit", gone);
    send({ type: message.news, id, kind, reason: value }, (e) => e && done("acknowledged"));
  });
}

/** Reports what sendNews found of the worker numbered `worker`. */
function reportNews(kind: string, worker: number, outcome: NewsOutcome): void {
  if (outcome === "late") newsReports?.late(kind, worker);
  else if (outcome === "failed") newsReports?.failed(kind, worker);
}

/**
 * Tells every other worker of a change this one made (a signing key rotated or revoked, an API
 * token revoked) or found (the embedded store's disk full), so that each acts on it at once
 * instead of when its own caches expire, and resolves once every worker taking connections has
 * put it in effect: the call that made the change answers after. A worker that has not
 * acknowledged it within newsAckMs (the leader waits for each follower) or sentNewsAckMs (a
 * follower waits for the leader, which waits for the others) is reported late, one whose handler
 * threw or rejected as failed, as soon as it says so (onNewsReports), and the promise resolves all
 * the same; it never rejects. Each late or failed worker is reported once, by the worker that
 * waited for it: a follower reports the leader only when the leader had not put the news in
 * effect itself by then, or failed to, not when it was still waiting for a follower it reports
 * itself. Nothing to tell in a single process.
 */
export async function shareNews(kind: string, value = ""): Promise<void> {
  if (role === "leader") await tellNews?.(kind, value);
  else if (role === "follower" && process.connected) {
    reportNews(kind, 1, await sendNews((m, done) => process.send!(m, undefined, undefined, done), kind, value, sentNewsAckMs));
  }
}

/**
 * `handle` runs in this worker when another worker shares news of `kind`; the news is in effect
 * here (and acknowledged) once what it returns has settled. When it throws or rejects, the error
 * is reported here (onNewsReports: failedHere) and the sender told that it failed.
 */
export function onNews(kind: string, handle: (value: string) => unknown): void {
  if (role === "single") return;
  newsHandlers.set(kind, handle);
  releaseNews(kind);
}

/** What a worker hears of news not in effect in some worker (onNewsReports), each once. */
export interface NewsReports {
  /** The worker numbered `worker` did not acknowledge news of `kind` in time (shareNews). */
  late(kind: string, worker: number): void;
  /** The worker numbered `worker` acknowledged news of `kind` as failed: its handler threw or rejected (it reports why: failedHere). */
  failed(kind: string, worker: number): void;
  /** This worker's handler of news of `kind` threw or rejected `error` (onNews). */
  failedHere(kind: string, error: unknown): void;
}

/** `reports` hears of news this worker sent that another did not put in effect, and of news its own handlers failed to. */
export function onNewsReports(reports: NewsReports): void {
  if (role === "single") return;
  newsReports = reports;
}

/** Answers `kind` requests from the other side of the cluster (the leader, or a follower). */
export function answer(kind: string, fn: () => unknown): void {
  answerers.set(kind, fn);
}

/** Asks the leader (in a follower) for `kind`. */
export function askLeader<T>(kind: string, timeoutMs = 10_000): Promise<T> {
  return ask<T>((m, done) => process.send!(m, undefined, undefined, done), kind, timeoutMs, "the first worker did not answer");
}

/**
 * Asks every follower that has started and not exited (in the leader) for `kind`: one draining
 * its connections (stopping) too. Resolves with each answer and its follower's process id;
 * `each` is given each answer as it arrives: before that follower's exit is seen (onFollowerGone),
 * whatever the others answer. A follower that exits before it answers (or whose channel has
 * closed, its exit to follow) is left out as soon as its exit is seen (after onFollowerGone), not
 * waited for until `timeoutMs`.
 */
export async function askFollowers<T>(kind: string, timeoutMs = 10_000, each?: (follower: number, value: T) => void): Promise<Array<{ follower: number; value: T }>> {
  const answers = await Promise.all([...started].map(([f, worker]) => askFollower<T>(f, worker, kind, timeoutMs, each)));
  return answers.filter((a) => a !== undefined);
}

/** One follower's answer (askFollowers), its failure naming the follower's number; undefined once it has exited without one. */
function askFollower<T>(f: ChildProcess, worker: number, kind: string, timeoutMs: number, each?: (follower: number, value: T) => void): Promise<{ follower: number; value: T } | undefined> {
  const silence = `worker ${worker} did not answer`;
  return new Promise((resolve, reject) => {
    const settle = () => {
      clearTimeout(timer);
      f.off("close", exited);
    };
    const exited = () => {
      settle();
      resolve(undefined);
    };
    // Its exit not seen within the bound either (its channel closed, the process still there).
    const timer = setTimeout(() => {
      settle();
      reject(new Error(silence));
    }, timeoutMs);
    f.once("close", exited);
    ask<T>((m, done) => f.send(m, done), kind, timeoutMs, silence).then(
      (value) => {
        settle();
        // One that has said it is ready (started) is a process, with its id.
        const follower = f.pid!;
        each?.(follower, value);
        resolve({ follower, value });
      },
      (e: Error) => {
        // Not sent, its channel closed: its exit follows, and settles this.
        if (f.connected) {
          settle();
          reject(e);
        }
      },
    );
  });
}

/** Leader: told of each follower that has exited (its process id), once every message it sent has been read. */
let followerGone: ((follower: number) => void) | undefined;

/** In the leader, `gone` runs with a follower's process id once it has exited (it is replaced by another process). */
export function onFollowerGone(gone: (follower: number) => void): void {
  followerGone = gone;
}

/** Sends `m` over an IPC channel; `done` is told of a failure (a channel closed), never thrown. */
type Send = (m: Envelope, done: (e: Error | null) => void) => void;

function ask<T>(send: Send, kind: string, timeoutMs: number, silence: string): Promise<T> {
  const id = randomUUID();
  return new Promise<T>((resolve, reject) => {
    const fail = (e: Error) => {
      clearTimeout(timer);
      pending.delete(id);
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error(silence)), timeoutMs);
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
    send({ type: message.ask, id, kind }, (e) => e && fail(e));
  });
}

/** Handles an ask or an answer that arrived over one channel (from the leader, or from one follower). */
function onAsksAndAnswers(m: Envelope, reply: Send): void {
  if (m.type === message.answer && m.id !== undefined) {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.error !== undefined) p.reject(new Error(m.error));
    else p.resolve(m.value);
  } else if (m.type === message.ask && m.id !== undefined) {
    const fn = answerers.get(m.kind ?? "");
    const id = m.id;
    // An asker that is gone is not answered.
    const send = (a: Envelope) => reply(a, () => {});
    if (!fn) return send({ type: message.answer, id, error: `nothing answers ${m.kind}` });
    Promise.resolve()
      .then(fn)
      .then(
        (value) => send({ type: message.answer, id, value }),
        (e: unknown) => send({ type: message.answer, id, error: e instanceof Error ? e.message : String(e) }),
      );
  }
}

/** How a worker takes part in sharing the one port (listener.ts): the leader's side, or a follower's. */
export type PortSharing = LeaderSharing | FollowerSharing;

/** The leader listens on the port and hands connections over. */
export interface LeaderSharing {
  readonly leads: true;
  /** An accepted connection, paused (nothing read yet); true when another worker takes it. */
  handOff(socket: Socket): boolean;
  /**
   * It listens on `port` now (the followers are forked, unless a stop was asked for); `serve`
   * serves a connection here after all (one handed to a follower that did not take it: it died
   * first, or was stopping).
   */
  listening(port: number, serve: (socket: Socket) => void): void;
}

/** A follower binds nothing and is handed connections. */
export interface FollowerSharing {
  readonly leads: false;
  /**
   * Tells the leader it can take connections (each is given to `accept`, which returns false to
   * refuse it: the leader then serves it) and resolves with the leader's port.
   */
  follow(accept: (socket: Socket) => boolean): Promise<number>;
  /** Tells the leader it is stopping: it is handed no more connections (its drain is its own). */
  leave(): void;
}

export interface Leader {
  sharing: LeaderSharing;
  /**
   * A signal asked this process to stop (it stops the followers once it has started): none is
   * forked if it has not listened yet; a follower that dies of it meanwhile, still starting (a
   * terminal's Ctrl-C reaches every process of the group), is not replaced; one that dies during
   * the delay (drainFollowers) is.
   */
  stopRequested(signal: NodeJS.Signals): void;
  /**
   * The lame-duck period of a stop (TESSERA_SHUTDOWN_DELAY_SECONDS), on `signal`: every follower
   * fails readiness and keeps serving until stopFollowers (one that becomes ready meanwhile is
   * told as it does); a follower that dies meanwhile is replaced as at any other time.
   */
  drainFollowers(signal: NodeJS.Signals): void;
  /**
   * Graceful stop: forwards `signal` to every follower (after drainFollowers, with a "stop"
   * message as well) and resolves once all have exited, with false when one of them did not
   * exit 0.
   */
  stopFollowers(signal: NodeJS.Signals): Promise<boolean>;
  /**
   * Passes SIGHUP (reload the TLS certificate) on to every follower that has started (one still
   * starting reads the files as it starts; SIGHUP's default action would end it).
   */
  reloadFollowers(): void;
  /**
   * The leader's own start failed and it is about to exit: the followers still starting (handed
   * no connection yet) are ended at once, so that the leader's line is the start's only one (each
   * would otherwise write that the first worker is gone).
   */
  startFailed(): void;
}

/** Runs the leader's side: forks the followers (2..n) once it listens, and shares the port with them. */
export function lead(config: Config, logger: Logger): Leader {
  role = "leader";
  // The same development credentials for every worker (each would otherwise generate its own).
  const shared: Record<string, string> = {};
  if (config.generated.clientId) shared.TESSERA_CLIENT_IDS = config.clientIds.join(",");
  if (config.generated.adminToken) shared.TESSERA_ADMIN_TOKEN = config.adminToken;

  const followers = new Map<number, ChildProcess>();
  /** The port the leader listens on: set before the first follower is forked (listening). */
  let port: number | undefined;
  let stopping = false;
  let stopSignal: NodeJS.Signals | undefined;
  let requested: NodeJS.Signals | undefined;
  /** The signal on which the followers were told to drain (drainFollowers). */
  let draining: NodeJS.Signals | undefined;
  let failed = false;
  let lastRespawn = -Infinity;
  /** Each worker number's last wait before it was replaced. */
  const restartWait = new Map<number, number>();
  /** Replacements waiting for their turn (cancelled by a stop). */
  const restarts = new Set<NodeJS.Timeout>();
  let allExited: (() => void) | undefined;
  let serveHere: ((socket: Socket) => void) | undefined;
  // Connections handed to each follower that it has not said it took. Node closes its copy of a
  // handed socket only once the follower's process acknowledges it, and never when the follower
  // dies first: the one on the channel and those queued behind it would be left open, unread and
  // unanswered. So the leader keeps its copy (keepOpen) until the follower says it has the
  // connection, and serves here those a follower that is gone never took.
  // Nor does a socket always arrive: one the follower's process cannot receive (no descriptor
  // left there, EMFILE) is dropped by Node with its message, and with keepOpen the sender is told
  // nothing. Messages arrive in the order they were sent, so an answer about a later number
  // means that every connection numbered before it and not taken never arrived: those are served
  // here. A follower that has left one untaken for a while is sent a sync, so that a connection
  // lost last is found too.
  let seq = 0;
  const handed = new Map<ChildProcess, { unTaken: Map<number, { socket: Socket; at: number }>; watch(): void }>();
  const rescue = (socket: Socket) => {
    if (!socket.destroyed) serveHere!(socket);
  };

  tellFollowers = (reason) => {
    for (const child of followers.values()) if (child.connected) child.send({ type: message.storeFailed, reason }, () => {});
  };
  tellNews = async (kind, value, from) => {
    const told = [...followers].filter(([, child]) => child !== from && child.connected);
    await Promise.all(
      told.map(async ([id, child]) => {
        // One still starting is handed no connection until it is ready: it is told, not waited for.
        const waitMs = ready.includes(child) ? newsAckMs : undefined;
        reportNews(kind, id, await sendNews((m, done) => child.send(m, done), kind, value, waitMs, child));
      }),
    );
  };
  const admit = (child: ChildProcess, id: number) => {
    if (!child.connected) return;
    // Before its first connection: a worker started after the store failed refuses writes too.
    if (storeFailure !== undefined) child.send({ type: message.storeFailed, reason: storeFailure }, () => {});
    // So is one that becomes ready during the delay of a stop: it fails readiness too.
    if (draining !== undefined) child.send({ type: message.drain, reason: draining }, () => {});
    child.send({ type: message.port, port }, () => {}); // a channel just closed: its exit follows
    ready.push(child);
    started.set(child, id);
  };
  // Whether a follower that dies is replaced: not once a signal has asked for a stop (one still
  // starting may die of that same signal, sent to the whole group), unless the stop is in its
  // delay (drainFollowers): every worker serves until the delay ends, and a worker lost then
  // would leave the instance serving the rest of it with fewer. Never once the graceful stop
  // itself has begun (stopFollowers).
  const replacing = () => !stopping && (requested === undefined || draining !== undefined);
  const spawn = (id: number) => {
    // The same entry, node flags and arguments as this process (compiled or from the sources).
    const child = fork(process.argv[1]!, process.argv.slice(2), { env: { ...process.env, ...shared, [workerIdVariable]: String(id) } });
    const spawnedAt = performance.now();
    followers.set(id, child);
    const unTaken = new Map<number, { socket: Socket; at: number }>();
    /** Why its start failed, as it said before exiting. */
    let startFailure: string | undefined;
    /** Serves here the connections numbered before `n` that the follower has not taken: they never reached it. */
    const lostBefore = (n: number) => {
      for (const [k, { socket }] of unTaken) {
        if (k >= n) break;
        unTaken.delete(k);
        rescue(socket);
      }
    };
    let syncing = false;
    let watching: NodeJS.Timeout | undefined;
    const check = () => {
      watching = undefined;
      const oldest = unTaken.values().next().value;
      if (oldest === undefined || !child.connected) return;
      if (!syncing && performance.now() - oldest.at >= unresponsiveMs) {
        syncing = true;
        child.send({ type: message.sync, seq: ++seq }, (e) => e && (syncing = false));
      }
      watch();
    };
    const watch = () => {
      if (watching !== undefined) return;
      watching = setTimeout(check, unresponsiveMs);
      watching.unref();
    };
    handed.set(child, { unTaken, watch });
    child.on("message", (m: Envelope) => {
      if (m?.type === message.taken && m.seq !== undefined) {
        const socket = unTaken.get(m.seq)?.socket;
        unTaken.delete(m.seq);
        lostBefore(m.seq);
        if (socket && m.refused) rescue(socket);
        // The follower has its own descriptor of the connection: closing this one leaves it open.
        else socket?.destroy();
      } else if (m?.type === message.sync && m.seq !== undefined) {
        syncing = false;
        lostBefore(m.seq);
      } else if (m?.type === message.leaving) {
        leave();
      } else if (m?.type === message.storeFailed && typeof m.reason === "string") {
        heardStoreFailure(m.reason);
      } else if (m?.type === message.news && typeof m.kind === "string" && typeof m.reason === "string") {
        applyNews(m, (a, done) => child.send(a, done), child);
      } else if (m?.type === message.newsAck && m.id !== undefined) {
        const waiting = newsAcks.get(m.id);
        if (waiting?.to === child) waiting.acknowledged(m.failed === true);
      } else if (m?.type === message.startFailed && typeof m.reason === "string") {
        startFailure = m.reason;
      } else if (m?.type === message.ready) {
        admit(child, id);
      } else if (m) onAsksAndAnswers(m, (a, done) => child.send(a, done));
    });
    // A send to a follower that has just died: its exit is handled below.
    child.on("error", () => {});
    const leave = () => {
      const i = ready.indexOf(child);
      if (i >= 0) ready.splice(i, 1);
    };
    child.once("disconnect", leave);
    // "close": it has exited and every message it sent has been read (so no "taken" is still to come).
    child.once("close", (code: number | null, signal: NodeJS.Signals | null) => {
      leave();
      clearTimeout(watching);
      handed.delete(child);
      for (const { socket } of unTaken.values()) rescue(socket);
      unTaken.clear();
      followers.delete(id);
      started.delete(child);
      if (child.pid !== undefined) followerGone?.(child.pid);
      // Killed by SIGINT or SIGTERM: a Ctrl-C or a stop sent to the whole process group reaches
      // this process too, and its handler may not have run yet (the exit seen first, or the event
      // loop busy starting): the replacement is decided once that signal has had its turn. During
      // the delay too: the group's second signal, which ends it, may be the one.
      if (replacing() && (signal === "SIGINT" || signal === "SIGTERM")) setTimeout(decide, groupSignalMs, code, signal);
      else decide(code, signal);
    });
    const decide = (code: number | null, signal: NodeJS.Signals | null) => {
      if (!replacing()) {
        // One still starting dies of the signal itself (its handler not yet set): it served nothing.
        // Any other exit but 0 fails the stop (exit 1): the line says which worker, and how.
        if (code !== 0 && signal !== (stopSignal ?? requested)) {
          failed = true;
          logger.error("worker exited", { worker: id, code, signal, ...(startFailure !== undefined && { error: startFailure }) });
        }
        if (stopping && followers.size === 0) allExited?.();
        return;
      }
      const now = performance.now();
      const previous = restartWait.get(id);
      const backoff = previous !== undefined && now - spawnedAt < steadyMs ? Math.min(Math.max(previous * 2, restartMs), maxRestartMs) : 0;
      restartWait.set(id, backoff);
      // Whole milliseconds (the monotonic clock's are fractional): what is logged is what is waited.
      const wait = Math.ceil(Math.max(backoff, lastRespawn + restartMs - now));
      lastRespawn = now + wait;
      logger.error("worker exited", { worker: id, code, signal, restartInMs: wait, ...(startFailure !== undefined && { error: startFailure }) });
      const restart = setTimeout(() => {
        restarts.delete(restart);
        if (replacing()) spawn(id);
      }, wait);
      restarts.add(restart);
    };
  };

  let turn = 0;
  return {
    sharing: {
      leads: true,
      handOff(socket) {
        // Round-robin over the leader (turn 0) and every follower taking connections.
        turn = turn >= ready.length ? 0 : turn + 1;
        if (turn === 0) return false;
        const child = ready[turn - 1]!;
        const state = handed.get(child);
        // A follower whose channel has just closed (its exit not yet seen): this worker serves it.
        if (!child.connected || !state) return false;
        const { unTaken } = state;
        // One that has not taken a connection handed to it a while ago is not reading its channel
        // (its event loop is blocked): this worker serves its turns until it has, rather than
        // queue connections behind that one, unanswered and without bound.
        const now = performance.now();
        const oldest = unTaken.values().next().value;
        if (oldest !== undefined && now - oldest.at > unresponsiveMs) return false;
        const n = ++seq;
        unTaken.set(n, { socket, at: now });
        state.watch();
        try {
          child.send({ type: message.connection, seq: n }, socket, { keepOpen: true }, (e) => {
            // Not sent (the channel closed): the socket is still whole here.
            if (e && unTaken.delete(n)) rescue(socket);
          });
        } catch {
          unTaken.delete(n);
          return false; // as above
        }
        return true;
      },
      listening(p, serve) {
        port = p;
        serveHere = serve;
        newsHandled();
        // The followers start now, not once a stop was asked for: the leader stops as soon as
        // its start ends (run.ts), and nothing is forked after a stop began.
        if (requested === undefined && !stopping) for (let id = 2; id <= config.workers; id++) spawn(id);
      },
    },
    stopRequested(signal) {
      requested ??= signal;
    },
    drainFollowers(signal) {
      if (draining !== undefined) return;
      draining = signal;
      for (const child of ready) if (child.connected) child.send({ type: message.drain, reason: signal }, () => {});
    },
    stopFollowers(signal) {
      stopping = true;
      stopSignal = signal;
      ready.length = 0;
      for (const restart of restarts) clearTimeout(restart);
      restarts.clear();
      if (followers.size === 0) return Promise.resolve(true);
      const exited = new Promise<boolean>((resolve) => (allExited = () => resolve(!failed)));
      for (const child of followers.values()) {
        // A follower told to drain ends its delay on this message, not on the signal (message.stop).
        if (draining !== undefined && child.connected) child.send({ type: message.stop, reason: signal }, () => {});
        child.kill(signal);
      }
      // The grace period is the followers'; this only guards against one that never exits.
      const afterSeconds = config.shutdownGraceSeconds + 5;
      const force = setTimeout(() => {
        for (const [id, child] of followers) {
          logger.error("worker did not stop in time", { worker: id, afterSeconds });
          child.kill("SIGKILL");
        }
      }, afterSeconds * 1000);
      force.unref();
      return exited.finally(() => clearTimeout(force));
    },
    reloadFollowers() {
      for (const child of ready) child.kill("SIGHUP");
    },
    startFailed() {
      stopping = true;
      for (const restart of restarts) clearTimeout(restart);
      restarts.clear();
      // One already handed connections has started: it drains and stops once this one is gone.
      for (const child of followers.values()) if (!ready.includes(child)) child.kill("SIGKILL");
    },
  };
}

/**
 * A follower whose start failed tells the leader why (the leader logs it with the worker's exit),
 * then calls `done` with true; with false when the leader cannot be told (it is gone), and the
 * follower writes the line itself.
 */
export function reportStartFailure(reason: string, done: (told: boolean) => void): void {
  // roleOf, not `role`: a start may fail before follow() has run (its configuration refused).
  if (roleOf(1) !== "follower" || !process.connected) return done(false);
  try {
    process.send!({ type: message.startFailed, reason }, undefined, undefined, (e) => done(e === null || e === undefined));
  } catch {
    done(false);
  }
}

/** A follower's side: it is handed connections by the leader, once it has said it is ready. */
export function follow(): FollowerSharing {
  role = "follower";
  process.on("message", (m: Envelope) => {
    if (m?.type === message.storeFailed && typeof m.reason === "string") heardStoreFailure(m.reason);
    else if (m?.type === message.drain && typeof m.reason === "string") leaderDrain?.drain(m.reason);
    else if (m?.type === message.stop && typeof m.reason === "string") leaderDrain?.stop(m.reason);
    else if (m?.type === message.news && typeof m.kind === "string" && typeof m.reason === "string") applyNews(m, (a, done) => process.send!(a, undefined, undefined, done));
    else if (m?.type === message.newsAck && m.id !== undefined) newsAcks.get(m.id)?.acknowledged(m.failed === true);
    else if (m?.type === message.newsApplied && m.id !== undefined) newsAcks.get(m.id)?.applied(m.failed === true);
    else if (m) onAsksAndAnswers(m, (a, done) => process.send!(a, undefined, undefined, done));
  });
  return {
    leads: false,
    follow(accept) {
      return new Promise<number>((resolve, reject) => {
        // The leader gone before it listened (it failed to start, or was killed): this worker
        // cannot serve. Its channel may have closed while this worker was loading, its
        // "disconnect" emitted before anything here listened.
        const gone = () => reject(new Error("the first worker is gone"));
        if (!process.connected) return gone();
        process.once("disconnect", gone);
        process.on("message", (m: Envelope, socket?: Socket) => {
          if (m?.type === message.connection && socket) {
            // Said in the tick the socket arrived, before a byte of it is read here: taken (the
            // leader closes its copy), or refused (closed here, served by the leader).
            const taken = accept(socket);
            if (!taken) socket.destroy();
            process.send!({ type: message.taken, seq: m.seq, ...(!taken && { refused: true }) }, undefined, undefined, () => {});
          } else if (m?.type === message.sync) {
            // Every connection sent before it that arrived has been answered above.
            process.send!({ type: message.sync, seq: m.seq }, undefined, undefined, () => {});
          } else if (m?.type === message.port && m.port !== undefined) resolve(m.port);
        });
        newsHandled();
        process.send!({ type: message.ready }, undefined, undefined, () => {});
      });
    },
    leave() {
      if (process.connected) process.send!({ type: message.leaving }, undefined, undefined, () => {});
    },
  };
}
