// The server: one Connect router (gRPC, gRPC-Web, Connect) whose handlers also serve the REST
// routes through the transcoder, plus health, reflection and the /healthz and /readyz probes.
// dispatch.ts sends RPC paths to the router and every other path to the fallback below.
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, createContextValues, type ContextValues } from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { Health } from "../../gen/health/v1/health_pb.js";
import { UserTokenService } from "../../gen/tessera/usertoken/v1/user_token_pb.js";
import { createAdminGate, type AdminGate } from "../access/admin-gate.js";
import { clientAddressKey, httpMethodKey, protocolKey, secureKey } from "../access/context.js";
import { createAccessInterceptor, type CredentialVerifiers } from "../access/interceptor.js";
import { createSessionCookieInterceptor } from "../access/session-cookie.js";
import { currentCall, runInCall, type CallScope } from "../call-scope.js";
import { configuredSecret, holdsConfiguredSecret, type Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { ServiceBinding } from "../services/binding.js";
import { createCacheControlInterceptor, notStored } from "./cache-control.js";
import { createClientAddressResolver } from "./client-address.js";
import { createCors } from "./cors.js";
import { createDeadlineInterceptor } from "./deadline-interceptor.js";
import { createDispatcher, type NodeRequest, type NodeResponse } from "./dispatch.js";
import { createDocs } from "./docs.js";
import { sendErrorBody, sendMethodNotAllowed } from "./error-details.js";
import { createErrorInterceptor } from "./error-interceptor.js";
import { createStreamBound } from "./stream-bound.js";
import { createTimestampInterceptor } from "./timestamp-interceptor.js";
import { describeError } from "./error-report.js";
import { createHealthImpl, unlessDraining, type LivenessProbe, type ReadinessProbe } from "./health.js";
import { continueWithheld, listen, peerAddress, servedMethods, type Listener } from "./listener.js";
import { requestHeaderLimitBytes } from "./limits.js";
import { createLoggingInterceptor, type RpcObserver } from "./logging-interceptor.js";
import { createAdminAuditInterceptor, createCallerScopeInterceptor, createOwnAccountAuditInterceptor, createEntryAuditInterceptor } from "./audit-interceptor.js";
import type { AuditTrail } from "../core/audit.js";
import type { PortSharing } from "../cluster.js";
import type { Metrics } from "./metrics.js";
import { formatTraceparent, parseTraceparent, parseTracestate } from "./trace-context.js";
import { enterSpan, httpSpanName, idsOnly, type CallSpan, type Tracing } from "./tracing.js";
import { jsonTextDecoder } from "./json-text.js";
import { reflectionServices } from "./reflection.js";
import { refusalLog, type RefusalLog } from "./refusal-log.js";
import { requestIdHeader, requestIdOf } from "./request-id.js";
import { loadCertificate, warnIfKeyExposed, watchCertificate } from "./tls-certificate.js";
import {
  asteriskProblem,
  authorizationProblem,
  contentTypeProblem,
  fragmentProblem,
  hostProblem,
  pathProblem,
  schemeProblem,
  toOriginForm,
  transferCodingNotImplemented,
} from "./request-target.js";
import { unquotable } from "../credential-shapes.js";
import { quotedRequestText, shownRequestText, unroutedPath } from "../core/text.js";

/** Serves everything that is not a gRPC/Connect path (the REST routes). */
export type RestHandlerFactory = (args: {
  handlers: UniversalHandler[];
  services: readonly DescService[];
  contextValues: (req: NodeRequest) => ContextValues;
  /** The admin methods' credential check before the request is read (access/admin-gate.ts). */
  adminGate: AdminGate;
  /** Logs an unexpected failure of a REST request (the route, the request id, the stack). */
  onError: (error: unknown, route: string) => void;
  /** Counts a REST request refused before its RPC was called (the RPC, the code name answered). */
  refused?: ((rpc: DescMethod, code: string) => void) | undefined;
}) => RestHandler;

/** The REST handler, and the path templates of the routes it serves ("/jwt/token", "/v1/frontend/auth/{account_id}"). */
export type RestHandler = ((req: NodeRequest, res: NodeResponse) => Promise<void> | void) & { readonly routes?: ReadonlyArray<{ path: string }> };

export interface ServerOptions {
  config: Config;
  logger: Logger;
  /** Tessera's services and their implementations (missing methods answer UNIMPLEMENTED). */
  bindings: readonly ServiceBinding[];
  verifiers: CredentialVerifiers;
  /** GET /readyz and grpc.health.v1; fails from drain() on, whatever the probe says. */
  ready: ReadinessProbe;
  /** GET /healthz; default: always live. */
  live?: LivenessProbe;
  rest?: RestHandlerFactory;
  /** Where admin calls are recorded. */
  audit?: Pick<AuditTrail, "record">;
  /** Trace ids per call, and spans when exporting (default: ids only). */
  tracing?: Tracing;
  /** Prometheus metrics: GET /metrics here, or on TESSERA_METRICS_PORT. */
  metrics?: Metrics | undefined;
  /** Under TESSERA_WORKERS: how this worker shares the one port (cluster.ts). */
  sharing?: PortSharing | undefined;
  /** How often connections refused at TESSERA_MAX_CONNECTIONS are logged, in ms (default a minute): tests shorten it. */
  refusalLogIntervalMs?: number | undefined;
}

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly listener: Listener;
  /** The port of the metrics listener, when TESSERA_METRICS_PORT gives it one. */
  readonly metricsPort?: number;
  /** Under TLS: reads the certificate and key files again (SIGHUP); false when they did not check out. */
  reloadCertificate(): boolean;
  /**
   * The lame-duck period of a stop (TESSERA_SHUTDOWN_DELAY_SECONDS): readiness fails from now on
   * (GET /readyz, grpc.health.v1, every Watch stream told at once), and the connections clients
   * keep are drained on the main port and the metrics port (Listener.drain), while every other
   * call is served as before and the listeners stay open.
   */
  drain(): void;
  close(): Promise<void>;
}

/** The request's path, without its query. */
function pathOf(req: NodeRequest): string {
  return (req.url ?? "").split("?", 1)[0]!;
}

/**
 * A probe's answer (GET /healthz, /readyz): never stored, 200 as 503. A 200 without Cache-Control
 * may be stored by a shared cache with a heuristic freshness (RFC 9111 4.2.2; a proxy's default
 * TTL), which would then answer SERVING for an instance that is out.
 */
function probeAnswer(res: NodeResponse, serving: boolean): void {
  const text = JSON.stringify({ status: serving ? "SERVING" : "NOT_SERVING" });
  res.writeHead(serving ? 200 : 503, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...notStored });
  res.end(text);
}

/**
 * Answers a request no port serves, and says so (true): a malformed target (400), or a body in a
 * transfer coding other than chunked (501; its body is not read, so the connection closes). The
 * main port and the metrics port ask it first.
 */
function refusedOnArrival(req: NodeRequest, res: NodeResponse, hidden: (text: string) => boolean): boolean {
  const badTarget = hostProblem(req, hidden) ?? schemeProblem(req, hidden) ?? pathProblem(req) ?? asteriskProblem(req) ?? toOriginForm(req, hidden) ?? fragmentProblem(req);
  if (badTarget !== undefined) {
    sendErrorBody(res, 400, Code.InvalidArgument, "MALFORMED_REQUEST", badTarget);
    return true;
  }
  const coding = transferCodingNotImplemented(req);
  if (coding !== undefined) {
    sendErrorBody(res, 501, Code.Unimplemented, "UNIMPLEMENTED", `the transfer coding ${quotedRequestText(coding, hidden)} is not implemented: a request body is framed by chunked alone, or by Content-Length`, {
      connection: "close",
    });
    return true;
  }
  return false;
}

/**
 * Whether the request's Content-Length announces a body larger than any the server reads for a
 * message of at most `limit` bytes: gRPC, gRPC-Web and Connect's streaming framing put 5 bytes
 * before it, and gRPC-Web's text mode sends that in base64.
 */
function declaredOver(req: NodeRequest, limit: number): boolean {
  const length = req.headers["content-length"];
  if (typeof length !== "string" || !/^\d+$/.test(length)) return false;
  const type = req.headers["content-type"] ?? "";
  const most = /^application\/grpc-web-text/i.test(type) ? Math.ceil((limit + 5) / 3) * 4 : /^application\/(?:grpc|connect\+)/i.test(type) ? limit + 5 : limit;
  return Number(length) > most;
}

/**
 * OPTIONS * (the asterisk form, RFC 9110 9.3.7, RFC 9112 3.2.4): a question about the server as a
 * whole, not a resource. 204 with Allow, the methods the server takes (asteriskProblem refuses
 * the asterisk with another method). A CORS preflight to "*" is the CORS check's (before routing).
 */
function serverOptions(res: NodeResponse, allow: string): void {
  res.writeHead(204, { allow });
  res.end();
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const { config, logger } = o;
  const isSecret = configuredSecret(config);
  const holdsSecret = holdsConfiguredSecret(config);
  const hidden = unquotable(isSecret);
  const services = o.bindings.map((b) => b.service);
  const reflection = reflectionServices([...services, Health], hidden);
  const secure = config.tlsCertFile !== undefined;
  const httpsPublicUrl = config.publicUrl !== undefined && new URL(config.publicUrl).protocol === "https:";
  const tracing = o.tracing ?? idsOnly;
  const clientAddress = createClientAddressResolver(config.trustedProxies, config.nat64Prefixes);
  // drain(): readiness fails from then on, also for a probe of the store already under way.
  const draining = new AbortController();
  const ready = unlessDraining(o.ready, draining.signal);
  // close(): the graceful stop has begun (every Watch stream is told NOT_SERVING and ends).
  const stopping = new AbortController();

  const contextValues = (req: NodeRequest): ContextValues =>
    createContextValues()
      .set(clientAddressKey, currentCall()?.clientAddress ?? clientAddress(peerAddress(req), req.headers))
      .set(httpMethodKey, req.method ?? "")
      .set(secureKey, secure);

  // GET /openapi.json and /docs, answered before the REST routes like the probes.
  const docs = createDocs({ services, jwtBasePath: config.jwtBasePath, hidden });

  const metricsHere = o.metrics !== undefined && config.metricsPort === undefined;
  const ops = (req: NodeRequest, res: NodeResponse): boolean => {
    const path = pathOf(req);
    if (metricsHere && path === "/metrics") {
      o.metrics!.serve(req, res, hidden);
      return true;
    }
    if (path !== "/healthz" && path !== "/readyz") return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendMethodNotAllowed(res, req.method, path, "GET, HEAD", hidden);
      return true;
    }
    if (path === "/healthz") {
      probeAnswer(res, o.live?.() ?? true);
      return true;
    }
    ready().then(
      (ok) => probeAnswer(res, ok),
      () => probeAnswer(res, false),
    );
    return true;
  };

  // Refuses invalid UTF-8 and unpaired surrogate escapes in JSON messages (json-text.ts says why).
  // connect-es reads `textDecoder` from these options at run time; its option type omits it.
  const jsonOptions = { alwaysEmitImplicit: true, textDecoder: jsonTextDecoder };
  const adminGate = createAdminGate({ services, adminToken: config.adminToken, audit: o.audit });
  const streams = createStreamBound(config.maxOpenStreams);
  o.metrics?.countStreams(streams.open);
  const rpc = createDispatcher({
    adminGate,
    isSecret,
    refused: o.metrics && ((service, method, protocol, code) => o.metrics!.refused(service, method, protocol, code)),
    interceptors: [
      // First: it sees every answer of the call, an error of any interceptor below included (a
      // cookie logout clears the cookie whatever its status). Unset, Secure under TLS or when
      // clients reach the server at an https public URL (a proxy in front ends TLS).
      createSessionCookieInterceptor(config.cookieSecure ?? (httpsPublicUrl ? true : undefined), [UserTokenService.method.logout]),
      createLoggingInterceptor(logger, rpcObserver(o.metrics, tracing.exporting)),
      createDeadlineInterceptor(),
      createErrorInterceptor(logger),
      // After the logging interceptor: a stream refused at TESSERA_MAX_OPEN_STREAMS is logged
      // and counted (resource_exhausted) as any call is.
      streams.interceptor,
      createTimestampInterceptor(),
      ...(o.audit ? [createAdminAuditInterceptor(o.audit, services), createOwnAccountAuditInterceptor(o.audit), createEntryAuditInterceptor(o.audit)] : []),
      createAccessInterceptor({
        verifiers: o.verifiers,
        clientIds: config.clientIds,
        adminToken: config.adminToken,
        services,
        publicServices: [Health, ...reflection.map((r) => r.service)],
        // Listed CORS origins are trusted with credentialed calls; "*" is any origin without credentials.
        cookieOrigins: [...(config.corsOrigins ?? []).filter((o) => o !== "*"), ...(config.publicUrl !== undefined ? [new URL(config.publicUrl).origin] : [])],
        // Reached over https: TLS here, a proxy in front that ends it (the cookie made Secure for
        // it), or the public URL clients use.
        overHttps: secure || config.cookieSecure === true || httpsPublicUrl,
      }),
      createCallerScopeInterceptor(),
      createCacheControlInterceptor(),
    ],
    jsonOptions,
    readMaxBytes: config.bodyLimitBytes,
    cors: createCors(config.corsOrigins ?? []),
    contextValues,
    logger,
    routes(router) {
      for (const b of o.bindings) b.register(router);
      router.service(Health, createHealthImpl(services, ready, undefined, draining.signal, hidden, stopping.signal));
      for (const r of reflection) router.service(r.service, r.impl);
    },
  });
  const reportRest = (error: unknown, route: string) => logger.error("unexpected error", { route, ...describeError(error) });
  const rest = o.rest?.({
    handlers: rpc.handlers,
    services,
    contextValues: (req) => contextValues(req).set(protocolKey, "rest"),
    adminGate,
    onError: reportRest,
    refused: o.metrics && ((rpc, code) => o.metrics!.refused(rpc.parent.typeName, rpc.name, "rest", code)),
  });

  const fallback = (req: NodeRequest, res: NodeResponse): void => {
    if (req.url === "*") return serverOptions(res, `${servedMethods}, OPTIONS`);
    if (ops(req, res) || docs(req, res)) return;
    if (rest) {
      Promise.resolve(rest(req, res)).catch((e: unknown) => {
        // Never the path: it may hold a credential (seed 003's /api/authenticationtoken/{token}).
        // The transcoder reports the matched template itself; here no template is known.
        reportRest(e, `${shownRequestText(req.method ?? "GET", hidden)} (REST)`);
        if (!res.headersSent) sendErrorBody(res, 500, Code.Internal, "INTERNAL", "internal error");
        else res.end();
      });
      return;
    }
    sendErrorBody(res, 404, Code.NotFound, "ROUTE_NOT_FOUND", `no route for ${shownRequestText(req.method ?? "", hidden)} ${unroutedPath(pathOf(req), hidden)}`);
  };

  // Every request runs in its own call scope: its id is in every log line written while it is
  // served, and comes back to the caller as a response header.
  // A Connect call to an unknown procedure is never answered on a REST route's path (dispatch.ts
  // unknownProcedure): the first segments of the routes' templates, any when one is a variable.
  const restFirst = new Set((rest?.routes ?? []).map((r) => r.path.split("/")[1] ?? ""));
  const anyFirst = [...restFirst].some((segment) => segment.includes("{"));
  const dispatch = rpc.listener(fallback, (segment) => anyFirst || restFirst.has(segment));
  // The paths the dispatcher serves an RPC at (`/package.Service/Method`): the listener answers a
  // call to one cut off by the request timeout over HTTP/1.1 as over HTTP/2.
  const rpcPaths = new Set(rpc.handlers.map((h) => h.requestPath));
  // Under TLS a browser is told to reach the service over HTTPS only (RFC 6797): an auth
  // service's passwords, tokens and cookie never go out over plain HTTP once it has been here.
  // A request id holding a secret of the configuration, or anything of a credential's shape, is
  // not kept as it (requestIdOf).
  const hsts = secure && config.hstsMaxAgeSeconds > 0 ? `max-age=${config.hstsMaxAgeSeconds}` : undefined;
  const handle = (req: NodeRequest, res: NodeResponse): void => {
    const requestId = requestIdOf(req.headers[requestIdHeader], holdsSecret);
    res.setHeader(requestIdHeader, requestId);
    if (hsts !== undefined) res.setHeader("strict-transport-security", hsts);
    if (refusedOnArrival(req, res, hidden)) return;
    if (continueWithheld(req)) {
      // Expect: 100-continue with a body over the limit: refused without the 100, the body not
      // read (over HTTP/1.1 the connection then closes: the client may send it all the same).
      return sendErrorBody(res, 413, Code.ResourceExhausted, "REQUEST_TOO_LARGE", `request body is larger than ${config.bodyLimitBytes} bytes`, {
        ...(req.httpVersionMajor === 1 && { connection: "close" }),
      });
    }
    const badCredential = authorizationProblem(req);
    if (badCredential !== undefined) return sendErrorBody(res, 400, Code.InvalidArgument, "MALFORMED_CREDENTIAL", badCredential);
    const badContentType = contentTypeProblem(req);
    if (badContentType !== undefined) return sendErrorBody(res, 400, Code.InvalidArgument, "MALFORMED_REQUEST", badContentType);
    const agent = req.headers["user-agent"];
    const scope: CallScope = { requestId, clientAddress: clientAddress(peerAddress(req), req.headers) };
    // Whole (the request's headers hold it anyway): an audit event keeps what it may of it.
    if (typeof agent === "string" && agent !== "") scope.userAgent = agent;
    // A span of its own for every call, in the caller's trace when it sent one.
    // The name only matters to an exporter: ids-only tracing is not handed one to build.
    const span = tracing.startCall(tracing.exporting ? httpSpanName(req.method) : "", parseTraceparent(req.headers.traceparent), parseTracestate(req.headers.tracestate));
    enterSpan(scope, span);
    res.setHeader("traceparent", formatTraceparent(span.traceId, span.spanId, span.flags));
    if (tracing.exporting) res.once("close", () => span.end(res.statusCode));
    runInCall(scope, () => dispatch(req, res));
  };

  // Checked by loadConfig already (an expired certificate too): read again, as served.
  const certificate = secure ? loadCertificate(config.tlsCertFile!, config.tlsKeyFile!, new Date()) : undefined;
  if (certificate) warnIfKeyExposed(logger, config.tlsKeyFile!, certificate);
  const refusals = refusalLog(logger, "main", config.maxConnections, { count: o.metrics && (() => o.metrics!.connectionRefused()), intervalMs: o.refusalLogIntervalMs });
  const listener = await naming("PORT", listen(handle, {
    host: config.host,
    port: config.port,
    tls: certificate,
    ...(hsts !== undefined && { hsts }),
    requestTimeoutMs: config.requestTimeoutMs,
    headersTimeoutMs: config.headersTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    keepAliveMs: config.tcpKeepaliveSeconds * 1000,
    maxConnections: config.maxConnections,
    onRefused: refusals.refused,
    maxHeaderBytes: requestHeaderLimitBytes,
    maxConcurrentStreams: 100,
    onShed: (reason, peer, protocol) => logger.warn(protocol === "h2" ? "http2 connection shed" : "http/1.1 connection shed", { reason, peer }),
    refusesBody: (req) => declaredOver(req, config.bodyLimitBytes),
    rpcCall: (req) => rpcPaths.has(pathOf(req)),
    requestIds: { holdsSecret },
    hidden,
    sharing: o.sharing,
  }));
  o.metrics?.countConnections(() => listener.connections());
  let certificateMetrics: { reloadRefused(): void } | undefined;
  const certificates =
    certificate &&
    watchCertificate(config.tlsCertFile!, config.tlsKeyFile!, certificate, (pair) => listener.setCertificate(pair), logger, {
      intervalMs: config.tlsReloadSeconds * 1000,
      onRefused: () => certificateMetrics?.reloadRefused(),
    });
  if (certificates) certificateMetrics = o.metrics?.certificate(() => certificates.current.notAfter);
  // TESSERA_METRICS_PORT is the first worker's alone (its scrape answers every worker's metrics).
  const metricsRefusals = refusalLog(logger, "metrics", config.maxConnections, { intervalMs: o.refusalLogIntervalMs });
  const metricsListener = o.metrics && config.metricsPort !== undefined && o.sharing?.leads !== false ? await serveMetricsPort(o.metrics, config, logger, metricsRefusals) : undefined;
  const hostForUrl = config.host.includes(":") ? `[${config.host}]` : config.host === "0.0.0.0" ? "127.0.0.1" : config.host;
  return {
    url: `${secure ? "https" : "http"}://${hostForUrl}:${listener.port}`,
    port: listener.port,
    listener,
    ...(metricsListener && { metricsPort: metricsListener.port }),
    reloadCertificate: () => {
      if (!certificates) {
        logger.info("no TLS certificate to reload (TESSERA_TLS_CERT_FILE is unset)");
        return false;
      }
      return certificates.reload("signal");
    },
    drain: () => {
      draining.abort();
      listener.drain();
      // A scraper keeps its connection too, and the metrics port closes with the main one.
      metricsListener?.drain();
    },
    close: async () => {
      stopping.abort();
      certificates?.stop();
      await listener.close(config.shutdownGraceSeconds * 1000);
      refusals.stop();
      // A scrape under way is not waited for.
      await metricsListener?.close(0);
      metricsRefusals.stop();
    },
  };
}

/** Each finished RPC: into the metrics, and onto the call's exported span. */
function rpcObserver(metrics: Metrics | undefined, exporting: boolean): RpcObserver | undefined {
  if (!metrics && !exporting) return undefined;
  return (service, method, protocol, code, seconds) => {
    metrics?.rpc(service, method, protocol, code, seconds);
    if (exporting) (currentCall()?.span as CallSpan | undefined)?.rpc?.(service, method, protocol, code);
  };
}

/**
 * TESSERA_METRICS_PORT: /metrics alone, on its own plain listener (HTTP/1.1, and h2c as the main
 * port), with the main port's timeouts, per-connection limits and TESSERA_MAX_CONNECTIONS, the
 * connections counted apart from the main port's (a full main port does not stop a scrape).
 */
async function serveMetricsPort(metrics: Metrics, config: Config, logger: Logger, refusals: RefusalLog): Promise<Listener> {
  const hidden = unquotable(configuredSecret(config));
  const handle = (req: NodeRequest, res: NodeResponse): void => {
    if (refusedOnArrival(req, res, hidden)) return;
    if (req.url === "*") return serverOptions(res, "GET, HEAD, OPTIONS");
    const path = pathOf(req);
    if (path === "/metrics") return metrics.serve(req, res, hidden);
    // The main port's 404, the JSON error its own 405 here answers too (was "not found" in plain text).
    sendErrorBody(res, 404, Code.NotFound, "ROUTE_NOT_FOUND", `no route for ${shownRequestText(req.method ?? "", hidden)} ${unroutedPath(path, hidden)}: this port serves GET /metrics alone`);
  };
  return naming("TESSERA_METRICS_PORT", listen(handle, {
    host: config.host,
    port: config.metricsPort!,
    requestTimeoutMs: config.requestTimeoutMs,
    headersTimeoutMs: config.headersTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    keepAliveMs: config.tcpKeepaliveSeconds * 1000,
    maxConnections: config.maxConnections,
    onRefused: refusals.refused,
    maxHeaderBytes: requestHeaderLimitBytes,
    maxConcurrentStreams: 100,
    onShed: (reason, peer, protocol) => logger.warn(protocol === "h2" ? "http2 connection shed" : "http/1.1 connection shed", { reason, peer, port: "metrics" }),
    allow: "GET, HEAD",
    hidden,
    // No x-request-id, on the listener's own answers either: this port logs no request.
  }));
}

/**
 * A listen that fails names the variable to change: `portVariable` for a port taken or not
 * allowed (EADDRINUSE, EACCES), HOST for an address not this machine's or a name that does not
 * resolve. Before, "listen EADDRINUSE: address already in use 127.0.0.1:9100" did not say
 * whether PORT or TESSERA_METRICS_PORT was meant.
 */
async function naming<T>(portVariable: string, listening: Promise<T>): Promise<T> {
  try {
    return await listening;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const variable = code === "EADDRINUSE" || code === "EACCES" ? portVariable : code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAI_AGAIN" ? "HOST" : undefined;
    if (variable === undefined || !(e instanceof Error)) throw e;
    throw new Error(`${variable}: ${e.message}`, { cause: e });
  }
}
