// Prometheus metrics (prom-client), in one registry per server. The core knows nothing of them:
// it offers hooks (the hash pool's observer, the audit trail's observer, cache counters, the
// store's call hook in store/instrumented.ts) and this module turns what they report into
// metrics. What a call pays is kept small: label children are made once per label set and
// kept in maps, so an RPC costs two map lookups, one counter increment and one histogram
// observation (bench/metrics.ts measures it).
//
// Under TESSERA_WORKERS > 1 each worker keeps its own registry and a scrape is answered with
// all of them aggregated (prom-client's AggregatorRegistry.aggregate, in the first worker, which
// asks the others for theirs: cluster.ts): counters and histograms are summed, the build info
// and the key gauges are taken once.
//
// A scrape needs no credential and a rendering costs milliseconds of CPU (a gathering, under
// TESSERA_WORKERS, some in every worker), so scrapes share them (sharedRuns): one is made at a
// time, answering every scrape that arrived before it began; one that arrives while it is made
// waits for the next, which begins renderingSpacingMs after it ended at the earliest. A flood
// of scrapes costs about one rendering per renderingSpacingMs whatever its size, and still
// every answer is read after its scrape arrived (no rendering is kept for later scrapes).
import { setTimeout as sleep } from "node:timers/promises";
import client from "prom-client";
import { callClock, timeLeftMs } from "../call-scope.js";
import { answer, askFollowers, askLeader, currentRole, onFollowerGone } from "../cluster.js";
import type { AuditEventRecord } from "../store/ports/audit-events.js";
import { DeadlineExceededError, DuplicateError, StoreUnavailableError, type Store, type StoreKind } from "../store/ports.js";
import { watchingWait, type StoreCallHook } from "../store/instrumented.js";
import { packageVersion } from "../project-files.js";
import type { NodeRequest, NodeResponse } from "./dispatch.js";
import { sendMethodNotAllowed } from "./error-details.js";

/** What the metrics read from the core at scrape time. */
export interface MetricSources {
  hashPool: { readonly inUse: number; readonly queued: number; readonly reserved: number };
  /** `enabled` false (TESSERA_AUDIT=off): events are seen (logins, sign-ups) but not recorded, nor counted as recorded. */
  audit: {
    readonly enabled: boolean;
    observe(o: { recorded?(e: AuditEventRecord): void; writeFailed?(e: AuditEventRecord): void; suppressed?(e: AuditEventRecord): void }): void;
  };
  apiTokens: { cacheCounts(): { hits: number; misses: number } };
  verifier: { cacheCounts(): { hits: number; misses: number } };
  keyRing: { readonly alg: string; jwks(): Promise<unknown[]>; signingKeyAgeSeconds(): Promise<number | undefined> };
}

/** A registry's metrics as JSON (getMetricsAsJSON), which AggregatorRegistry.aggregate sums. */
type RegistryJSON = Awaited<ReturnType<client.Registry["getMetricsAsJSON"]>>;

/** The least time between the end of one rendering (or gathering) for scrapes and the start of the next. */
export const renderingSpacingMs = 100;

/**
 * `run`, shared by its callers: one run at a time, which answers every call made before it
 * began; a call made while it runs waits for the next, which begins `spacingMs` after it ended
 * at the earliest, and on the next turn of the event loop in any case, so that the requests
 * read in one turn share it. A run that fails fails the calls it answers, and the next call
 * begins a new one.
 */
function sharedRuns<T>(run: () => Promise<T>, spacingMs: number): () => Promise<T> {
  let next: Promise<T> | undefined;
  let current: Promise<unknown> = Promise.resolve();
  let endedAt = -Infinity;
  return () => {
    if (next !== undefined) return next;
    const previous = current;
    const mine = (async () => {
      await previous.catch(() => {});
      await sleep(Math.max(0, endedAt + spacingMs - performance.now()));
      next = undefined;
      try {
        return await run();
      } finally {
        endedAt = performance.now();
      }
    })();
    next = current = mine;
    return mine;
  };
}

/** RPC latency: 1 ms to 10 s. */
const rpcBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const storeBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

interface CounterChild {
  inc(value?: number): void;
}
interface HistogramChild {
  observe(value: number): void;
}
/** One (service, method, protocol): its calls by code and its latency histogram, as plain numbers. */
interface RpcSeries {
  labels: { service: string; method: string; protocol: string };
  codes: Map<string, number>;
  /** Calls per bucket (not cumulative): index i counts latencies in (rpcBuckets[i-1], rpcBuckets[i]]. */
  buckets: Float64Array;
  sum: number;
  count: number;
}

/**
 * The per-call RPC metrics, counted in plain numbers and turned into prom-client's exposition
 * only when scraped (`get()`, the shape prom-client's own Counter and Histogram give, so the
 * registry formats them and a cluster's AggregatorRegistry sums them as it does theirs).
 * prom-client's label children validate and hash their label set on every inc() and observe():
 * on a no-op REST call that cost about 8 % of the throughput (bench/metrics.ts); here a call is
 * a map lookup and three additions.
 */
class RpcFigures {
  private readonly series = new Map<string, RpcSeries>();

  record(service: string, method: string, protocol: string, code: string, seconds: number): void {
    const s = this.counted(service, method, protocol, code);
    let i = 0;
    while (i < rpcBuckets.length && seconds > rpcBuckets[i]!) i++;
    if (i < rpcBuckets.length) s.buckets[i]! += 1;
    s.sum += seconds;
    s.count += 1;
  }

  /** Counts a call under `code` alone, its latency not observed; returns its series. */
  counted(service: string, method: string, protocol: string, code: string): RpcSeries {
    const key = `${service}/${method}\n${protocol}`;
    let s = this.series.get(key);
    if (s === undefined) {
      s = { labels: { service, method, protocol }, codes: new Map(), buckets: new Float64Array(rpcBuckets.length), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    s.codes.set(code, (s.codes.get(code) ?? 0) + 1);
    return s;
  }

  /** The requests counter, as a metric the registry can hold. */
  requests(name: string, help: string): client.Metric {
    return this.metric(name, help, "counter", () =>
      [...this.series.values()].flatMap((s) => [...s.codes].map(([code, value]) => ({ labels: { ...s.labels, code }, value }))),
    );
  }

  /** The latency histogram, as a metric the registry can hold (cumulative buckets, +Inf, sum, count). */
  duration(name: string, help: string): client.Metric {
    return this.metric(name, help, "histogram", () =>
      [...this.series.values()].flatMap((s) => {
        let below = 0;
        const buckets = rpcBuckets.map((le, i) => ({ labels: { ...s.labels, le }, value: (below += s.buckets[i]!), metricName: `${name}_bucket` }));
        return [
          ...buckets,
          { labels: { ...s.labels, le: "+Inf" }, value: s.count, metricName: `${name}_bucket` },
          { labels: s.labels, value: s.sum, metricName: `${name}_sum` },
          { labels: s.labels, value: s.count, metricName: `${name}_count` },
        ];
      }),
    );
  }

  private metric(name: string, help: string, type: "counter" | "histogram", values: () => unknown[]): client.Metric {
    const series = this.series;
    const metric = {
      name,
      help,
      type,
      aggregator: "sum" as const,
      get: async () => ({ name, help, type, aggregator: "sum", values: values() }),
      reset: () => series.clear(),
    };
    return metric as unknown as client.Metric;
  }
}

export interface Metrics {
  readonly registry: client.Registry;
  /** One finished RPC. */
  rpc(service: string, method: string, protocol: string, code: string, seconds: number): void;
  /**
   * A call to one of the server's methods refused before the method ran (its message, body,
   * content type or timeout header refused): counted in tessera_rpc_requests_total with the
   * code its client got, its latency not observed (tessera_rpc_duration_seconds times methods).
   */
  refused(service: string, method: string, protocol: string, code: string): void;
  /** The store's call hook: latency by operation, errors, unavailability. */
  storeHook(kind: StoreKind): StoreCallHook;
  /** A password hash waited `ms` for a hasher (the hash pool's observer). */
  hashWaited(ms: number): void;
  /** A connection was closed for want of room (TESSERA_MAX_CONNECTIONS). */
  connectionRefused(): void;
  /** Reads the connections open now from `open` at scrape time. */
  countConnections(open: () => number): void;
  /** Reads the streams open now (TESSERA_MAX_OPEN_STREAMS counts them) from `open` at scrape time. */
  countStreams(open: () => number): void;
  /**
   * Under TLS: reads the certificate's notAfter from `notAfter` at scrape time; reloadRefused
   * counts a renewal refused.
   */
  certificate(notAfter: () => Date): { reloadRefused(): void };
  /** Under TESSERA_WORKERS: a worker did not acknowledge news of `kind` in time (cluster.ts shareNews). */
  newsUnacknowledged(kind: string): void;
  /** Under TESSERA_WORKERS: a worker's handler of news of `kind` failed, as it acknowledged (cluster.ts shareNews). */
  newsFailed(kind: string): void;
  /** Starts reading the core's figures. */
  watch(sources: MetricSources): void;
  /**
   * The exposition text: this process's registry, or under a cluster every worker's, aggregated;
   * shared with the other scrapes that arrived before its rendering began (sharedRuns).
   */
  scrape(): Promise<{ contentType: string; text: string }>;
  /** Answers GET/HEAD /metrics (`hidden`: what a 405 does not quote, see unquotable). */
  serve(req: NodeRequest, res: NodeResponse, hidden: (text: string) => boolean): void;
}

/**
 * prom-client's default process metrics (process_*, nodejs_*), made once per process and shared
 * by every server's registry. Made per registry, each set starts a GC PerformanceObserver and an
 * event loop delay monitor that nothing ever stops: they, and through their metrics the registry
 * and everything its gauges read (the core, the store, the signing keys), outlived every stopped
 * server of the process.
 */
let processMetrics: client.Metric[] | undefined;
function defaultMetrics(): client.Metric[] {
  if (processMetrics === undefined) {
    const own = new client.Registry();
    // The event loop delay monitor's timer wakes the loop at every tick of its precision: at
    // prom-client's default 10 ms an idle service woke about 195 times a second (epoll waits
    // counted with strace over 20 s), at 100 ms 22. A stall of 100 ms or more still always
    // shows in the nodejs_eventloop_lag_* figures; a shorter one with its share of the ticks.
    client.collectDefaultMetrics({ register: own, eventLoopMonitoringPrecision: 100 });
    processMetrics = own.getMetricsAsArray() as unknown as client.Metric[];
  }
  return processMetrics;
}

export function createMetrics(): Metrics {
  const registry = new client.Registry();
  for (const metric of defaultMetrics()) registry.registerMetric(metric);

  new client.Gauge({
    name: "tessera_build_info",
    help: "Always 1; the version label names the running build.",
    labelNames: ["version"],
    registers: [registry],
    aggregator: "first",
  }).set({ version: packageVersion }, 1);

  const rpcFigures = new RpcFigures();
  registry.registerMetric(
    rpcFigures.requests("tessera_rpc_requests_total", "RPCs served, by service, method, protocol (grpc, grpc-web, connect, rest) and code (ok or the gRPC code in snake_case); a call refused before its method ran (its message, body, content type or timeout header) counts with the code its client got."),
  );
  registry.registerMetric(
    rpcFigures.duration("tessera_rpc_duration_seconds", "RPC latency, from the call reaching its method to its answer, by service, method and protocol."),
  );
  const logins = new client.Counter({
    name: "tessera_logins_total",
    help: "Password logins by API and outcome (success, failure, locked, throttled, shed, canceled, error).",
    labelNames: ["api", "outcome"],
    registers: [registry],
  });
  const signups = new client.Counter({
    name: "tessera_signups_total",
    help: "Sign-ups by API and outcome (success, failure, throttled, shed, canceled, error).",
    labelNames: ["api", "outcome"],
    registers: [registry],
  });
  const auditEvents = new client.Counter({
    name: "tessera_audit_events_total",
    help: "Audit events recorded, by type and outcome: those over the audit budget (counted instead of stored) included, and each audit.suppressed summary (outcome failure).",
    labelNames: ["type", "outcome"],
    registers: [registry],
  });
  const auditSuppressed = new client.Counter({
    name: "tessera_audit_events_suppressed_total",
    help: "Audit events of refused calls without a verified credential counted instead of stored, over the audit budget (each counted in an audit.suppressed event), by type and outcome.",
    labelNames: ["type", "outcome"],
    registers: [registry],
  });
  const auditFailures = new client.Counter({
    name: "tessera_audit_write_failures_total",
    help: "Audit events the store refused (each was still written to the log).",
    registers: [registry],
  });
  const storeDuration = new client.Histogram({
    name: "tessera_store_operation_duration_seconds",
    help: "Store operation latency by operation (port.method) and store (sqlite, mongo).",
    labelNames: ["operation", "store"],
    buckets: storeBuckets,
    registers: [registry],
  });
  const storeErrors = new client.Counter({
    name: "tessera_store_errors_total",
    help: "Store operations that failed (any error but a duplicate key and the caller's deadline passing), by operation and store.",
    labelNames: ["operation", "store"],
    registers: [registry],
  });
  const storeUnavailable = new client.Counter({
    name: "tessera_store_unavailable_total",
    help: "Store operations that failed because the database was unavailable, by operation and store.",
    labelNames: ["operation", "store"],
    registers: [registry],
  });
  const hashWait = new client.Histogram({
    name: "tessera_hasher_wait_seconds",
    help: "How long a password hash waited for a free hasher.",
    buckets: [0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  const newsUnacknowledged = new client.Counter({
    name: "tessera_worker_news_unacknowledged_total",
    help: "News one worker told the others (a change every worker acts on at once), by kind (keys-changed, api-token-revoked, store-full), once for each worker that did not acknowledge it in time; the call that made the change answered all the same.",
    labelNames: ["kind"],
    registers: [registry],
  });
  const newsFailed = new client.Counter({
    name: "tessera_worker_news_failed_total",
    help: "News one worker told the others, by kind (keys-changed, api-token-revoked, store-full), once for each worker whose handler of it threw or rejected (that worker logs the error: news handler failed); the call that made the change answered all the same.",
    labelNames: ["kind"],
    registers: [registry],
  });
  const connectionsRefused = new client.Counter({
    name: "tessera_connections_refused_total",
    help: "Connections closed as they were accepted because the worker serving them had TESSERA_MAX_CONNECTIONS open.",
    registers: [registry],
  });
  let openConnections: (() => number) | undefined;
  new client.Gauge({
    name: "tessera_connections_open",
    help: "Connections open now (summed over workers: each counts those it serves).",
    registers: [registry],
    collect() {
      if (openConnections) this.set(openConnections());
    },
  });
  let openStreams: (() => number) | undefined;
  new client.Gauge({
    name: "tessera_streams_open",
    help: "Streams (grpc.health.v1 Watch, server reflection) open now, which TESSERA_MAX_OPEN_STREAMS bounds per worker (summed over workers).",
    registers: [registry],
    collect() {
      if (openStreams) this.set(openStreams());
    },
  });
  let sources: MetricSources | undefined;
  new client.Gauge({
    name: "tessera_hasher_in_use",
    help: "Password hashes running now.",
    registers: [registry],
    collect() {
      if (sources) this.set(sources.hashPool.inUse);
    },
  });
  new client.Gauge({
    name: "tessera_hasher_queue_depth",
    help: "Password hashes waiting for a hasher now.",
    registers: [registry],
    collect() {
      if (sources) this.set(sources.hashPool.queued);
    },
  });
  new client.Gauge({
    name: "tessera_hasher_reserved",
    help: "Places in the hasher's bound held for logins and sign-ups admitted but not hashing yet (looking their account up).",
    registers: [registry],
    collect() {
      if (sources) this.set(sources.hashPool.reserved);
    },
  });
  const cacheCounter = (name: string, help: string, pick: (c: { hits: number; misses: number }) => number) => {
    const last = new Map<string, number>();
    return new client.Counter({
      name,
      help,
      labelNames: ["cache"],
      registers: [registry],
      collect() {
        if (!sources) return;
        for (const [cache, counts] of [
          ["api_token", sources.apiTokens.cacheCounts()],
          ["verified_jwt", sources.verifier.cacheCounts()],
        ] as const) {
          const now = pick(counts);
          const delta = now - (last.get(cache) ?? 0);
          last.set(cache, now);
          this.inc({ cache }, delta);
        }
      },
    });
  };
  cacheCounter("tessera_cache_hits_total", "Cache lookups that hit, by cache (api_token, verified_jwt).", (c) => c.hits);
  cacheCounter("tessera_cache_misses_total", "Cache lookups that missed, by cache (api_token, verified_jwt).", (c) => c.misses);
  new client.Gauge({
    name: "tessera_signing_keys_published",
    help: "Public keys in the JWKS now (the signing key, the next key published before it signs, and retired keys that still verify).",
    registers: [registry],
    aggregator: "max",
    async collect() {
      if (!sources) return;
      const keys = await sources.keyRing.jwks().catch(() => undefined);
      if (keys) this.set(keys.length);
    },
  });

  // Label children, made once per label set.
  // `failed`: counts a failure of the operation (made once, not per call: watchingWait).
  type StoreChildren = { duration: HistogramChild; errors: CounterChild; unavailable: CounterChild; failed: (error: unknown) => void };
  const storeChildren = new Map<string, StoreChildren>();

  // Every scrape of a worker, GET and HEAD alike (one format: the Prometheus text), shares its
  // rendering with the scrapes that arrived with it (sharedRuns).
  const scrapeLocal = sharedRuns(async () => ({ contentType: registry.contentType, text: await registry.metrics() }), renderingSpacingMs);
  // Under TESSERA_WORKERS: the first worker aggregates every worker's registry, one gathering at
  // a time for its own scrapes and the other workers' asks alike; each of the others has one ask
  // of it at a time (the first worker spaces them).
  // A follower that dies is replaced by one whose counters start at zero: what it had counted, as
  // last gathered, stays in the sum (its counters and histograms, not its gauges), so that no
  // counter of the cluster goes down (Prometheus would read a reset, and rate() would count the
  // whole sum again as an increase). What it counted after its last gathering is lost.
  const role = currentRole();
  const lastGathered = new Map<number, RegistryJSON>();
  let goneFigures: Promise<RegistryJSON> = Promise.resolve([]);
  if (role === "leader") {
    onFollowerGone((follower) => {
      const last = lastGathered.get(follower);
      lastGathered.delete(follower);
      if (last === undefined) return;
      const kept = last.filter((m) => ["counter", "histogram"].includes(m.type as unknown as string));
      goneFigures = goneFigures.then((sum) => client.AggregatorRegistry.aggregate([sum, kept]).getMetricsAsJSON());
    });
  }
  const scrapeAll = sharedRuns(async () => {
    const own = await registry.getMetricsAsJSON();
    const answers = await askFollowers<RegistryJSON>(metricsOfWorker, undefined, (follower, figures) => lastGathered.set(follower, figures));
    // Read together: a follower that has exited since it answered is in the sums kept for those
    // gone, with that answer, and not counted again among the live.
    const gone = goneFigures;
    const live = answers.filter((a) => lastGathered.has(a.follower)).map((a) => a.value);
    const all = [own, ...live, await gone];
    return { contentType: client.Registry.PROMETHEUS_CONTENT_TYPE, text: await client.AggregatorRegistry.aggregate(all).metrics() };
  }, renderingSpacingMs);
  const scrapeFromLeader = sharedRuns(async () => ({ contentType: client.Registry.PROMETHEUS_CONTENT_TYPE, text: await askLeader<string>(metricsOfCluster) }), 0);
  if (role === "follower") answer(metricsOfWorker, () => registry.getMetricsAsJSON());
  if (role === "leader") answer(metricsOfCluster, async () => (await scrapeAll()).text);

  const metrics: Metrics = {
    registry,
    rpc: (service, method, protocol, code, seconds) => rpcFigures.record(service, method, protocol, code, seconds),
    refused: (service, method, protocol, code) => void rpcFigures.counted(service, method, protocol, code),
    storeHook(kind) {
      const children = (operation: string) => {
        let c = storeChildren.get(operation);
        if (c === undefined) {
          const errors = storeErrors.labels(operation, kind);
          const unavailable = storeUnavailable.labels(operation, kind);
          c = {
            duration: storeDuration.labels(operation, kind),
            errors,
            unavailable,
            // The caller's deadline passing (DeadlineExceededError: a call not made, or one
            // given up at that deadline) is the caller's limit, not the store failing: a client
            // with short deadlines would otherwise raise the store's error rate. Those calls
            // answer DEADLINE_EXCEEDED and a login counts as canceled.
            failed: (error) => {
              if (!(error instanceof DuplicateError) && !(error instanceof DeadlineExceededError)) errors.inc();
              if (error instanceof StoreUnavailableError) unavailable.inc();
            },
          };
          storeChildren.set(operation, c);
        }
        return c;
      };
      // A write's later wait for its fsync (watchingWait) is not timed: a failure seen only
      // there is counted under the write's operation, as the write's own would be.
      // A call asked for once its caller's deadline had passed is not made (the adapters refuse
      // it, DeadlineExceededError): not timed, or a client's short deadlines would pull the
      // latency down with calls that took no time because they never happened. Whether it
      // was made is read only then (the deadline against the start, on the call clock).
      const notMade = (error: unknown, start: number) => {
        if (!(error instanceof DeadlineExceededError)) return false;
        const left = timeLeftMs();
        return left !== undefined && left + (callClock() - start) <= 0;
      };
      return (operation, call) => {
        const start = callClock();
        return call().then(
          (value) => {
            const c = children(operation);
            c.duration.observe((callClock() - start) / 1000);
            return watchingWait(value, c.failed);
          },
          (error: unknown) => {
            const c = children(operation);
            if (!notMade(error, start)) c.duration.observe((callClock() - start) / 1000);
            c.failed(error);
            throw watchingWait(error, c.failed);
          },
        );
      };
    },
    hashWaited: (ms) => hashWait.observe(ms / 1000),
    connectionRefused: () => connectionsRefused.inc(),
    newsUnacknowledged: (kind) => newsUnacknowledged.inc({ kind }),
    newsFailed: (kind) => newsFailed.inc({ kind }),
    countConnections(open) {
      openConnections = open;
    },
    countStreams(open) {
      openStreams = open;
    },
    certificate(notAfter) {
      // Registered only under TLS: a gauge without labels would otherwise read 0 (expired), and
      // the counter would say reloads were checked.
      new client.Gauge({
        name: "tessera_tls_certificate_expiry_timestamp_seconds",
        help: "When the TLS certificate served expires (its notAfter, Unix seconds; the earliest over workers).",
        registers: [registry],
        aggregator: "min",
        collect() {
          this.set(notAfter().getTime() / 1000);
        },
      });
      const refused = new client.Counter({
        name: "tessera_tls_reload_failures_total",
        help: "TLS certificate reloads (SIGHUP or the files changed) refused, the certificate served before kept (summed over workers: each reloads).",
        registers: [registry],
      });
      return { reloadRefused: () => refused.inc() };
    },
    watch(s) {
      sources = s;
      // Registered only when keys sign (not under HS256): a gauge without labels would otherwise
      // read 0, a key made current just now.
      if (s.keyRing.alg !== "HS256") {
        new client.Gauge({
          name: "tessera_signing_key_age_seconds",
          help: "Age of the current signing key (since it became current); absent under HS256.",
          registers: [registry],
          aggregator: "max",
          async collect() {
            const age = await s.keyRing.signingKeyAgeSeconds().catch(() => undefined);
            if (age !== undefined) this.set(age);
          },
        });
      }
      s.audit.observe({
        recorded(e) {
          if (s.audit.enabled) auditEvents.inc({ type: e.type, outcome: e.outcome });
          if (e.type === "login") logins.inc({ api: e.api ?? "none", outcome: e.outcome });
          else if (e.type === "signup") signups.inc({ api: e.api ?? "none", outcome: e.outcome });
        },
        writeFailed: () => auditFailures.inc(),
        suppressed: (e) => auditSuppressed.inc({ type: e.type, outcome: e.outcome }),
      });
    },
    scrape: role === "follower" ? scrapeFromLeader : role === "leader" ? scrapeAll : scrapeLocal,
    serve(req, res, hidden) {
      if (req.method !== "GET" && req.method !== "HEAD") {
        sendMethodNotAllowed(res, req.method, "/metrics", "GET, HEAD", hidden);
        return;
      }
      metrics.scrape().then(
        ({ contentType, text }) => {
          res.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
          if (req.method === "HEAD") res.end();
          else res.end(text);
        },
        (e: unknown) => {
          const text = `metrics unavailable: ${e instanceof Error ? e.message : String(e)}\n`;
          res.writeHead(503, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text) });
          res.end(text);
        },
      );
    },
  };
  return metrics;
}

// What the workers of a cluster ask each other for (cluster.ts's answer/ask).
const metricsOfWorker = "metrics:worker";
const metricsOfCluster = "metrics:cluster";
