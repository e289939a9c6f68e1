// Environment -> one typed, validated configuration object.
//
// Every variable is declared once in `variables` below, with its default, its parser and one line
// of documentation: the same table validates the environment at start-up and is written by
// `npm run docs:config` into the README. A bad value stops the service with one line naming the
// variable and what is wrong with it.
import { randomBytes } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { availableParallelism } from "node:os";
import { isIP } from "node:net";
import { refreshTokenAudience } from "./core/jwt-tokens.js";
import { jwtRouteClash } from "./rest-routes.js";
import { nat64Prefix, proxySubnet } from "./server/client-address.js";
import { defaultMaxConnections, headerCredentialLimitBytes, processOpenFileLimit, requestHeaderLimitBytes } from "./server/limits.js";
import { CertificateError, loadCertificate, pemFileProblem } from "./server/tls-certificate.js";
import { databaseInUri } from "./store/mongo/mongo-uri.js";
import { secretEquals, secretMatcher, secretWithin } from "./core/secrets.js";
import { oneLine, quoted, withoutTrailingSlashes, withoutUrlPasswords } from "./core/text.js";
import { threadPoolSize } from "./thread-pool-size.cjs";

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(message: string) {
    // Written as one line on stderr, whatever a value quoted in it holds, never a URL's password.
    super(oneLine(withoutUrlPasswords(message)));
  }
}

type Parser<T> = (raw: string) => T;

interface Variable<T, D extends T | undefined = T | undefined> {
  readonly name: string;
  readonly doc: string;
  /** Text shown as the default in the docs. */
  readonly shownDefault: string;
  /** Default used when the variable is unset (undefined: no value). */
  readonly fallback: D;
  readonly parse: Parser<T>;
  /** Secrets are never echoed in error messages. */
  readonly secret?: boolean;
}

function variable<T, D extends T | undefined = T | undefined>(
  name: string,
  fallback: D,
  parse: Parser<T>,
  doc: string,
  opts: { shownDefault?: string; secret?: boolean } = {},
): Variable<T, D> {
  return {
    name,
    doc,
    fallback,
    parse,
    shownDefault: opts.shownDefault ?? (fallback === undefined ? "(unset)" : String(fallback)),
    secret: opts.secret,
  };
}

/**
 * Free text (a directory, an issuer, an audience): never blank, without white space at either
 * end or control characters, which no deployment means and which would otherwise be taken as
 * given (a directory named "   ", an audience "tessera " no verifier expects, a NODE_ENV "test "
 * that is not "test").
 */
const text: Parser<string> = (raw) => {
  // eslint-disable-next-line no-control-regex
  if (raw.trim() === "" || raw.trim() !== raw || /[\u0000-\u001f\u007f]/.test(raw)) {
    throw new Error(`must not be blank, begin or end with white space, or hold control characters, got ${quoted(raw)}`);
  }
  return raw;
};

/**
 * NODE_ENV: free text, except that a value that reads as production in another letter case or
 * with white space ("Production", " production") is refused: only "production" exactly turns on
 * the production requirements, and such a value ran as development without them.
 */
const nodeEnv: Parser<string> = (raw) => {
  if (raw !== "production" && raw.trim().toLowerCase() === "production") {
    throw new Error(`must be "production" exactly (lower case, no white space) to run as production, got ${quoted(raw)}`);
  }
  return text(raw);
};

function integer(min: number, max: number): Parser<number> {
  return (raw) => {
    if (!/^-?\d+$/.test(raw.trim())) throw new Error(`must be a whole number, got ${quoted(raw)}`);
    const n = Number(raw.trim());
    // A number past 2^53 is not the one written ("1e+22", "Infinity", 2^53 + 1 as 2^53): quoted as written.
    if (n < min || n > max) throw new Error(`must be between ${min} and ${max}, got ${Number.isSafeInteger(n) ? n : quoted(raw)}`);
    return n;
  };
}

const boolean: Parser<boolean> = (raw) => {
  const v = raw.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["0", "false", "no", "off"].includes(v)) return false;
  throw new Error(`must be true or false (on or off), got ${quoted(raw)}`);
};

function oneOf<T extends string>(...values: T[]): Parser<T> {
  return (raw) => {
    const v = values.find((x) => x.toLowerCase() === raw.trim().toLowerCase());
    if (!v) throw new Error(`must be one of ${values.join(", ")}, got ${quoted(raw)}`);
    return v;
  };
}

const list: Parser<string[]> = (raw) => {
  const items = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (items.length === 0) throw new Error("must list at least one value (comma-separated)");
  const seen = new Set<string>();
  const twice = items.find((item) => seen.size === seen.add(item).size);
  if (twice !== undefined) throw new Error(`${quoted(twice)} is listed twice`);
  return items;
};

/**
 * A mount path: "/", or "/" and segments (a trailing "/" dropped). An empty segment ("/jwt//x",
 * "//") stopped the start as a route that does not compile, naming no variable; a "." or ".."
 * segment was served as written, under paths that no URL a client sends reaches (its parser
 * removes them: "/jwt/../user/token" is sent as "/user/token").
 */
const mountPath: Parser<string> = (raw) => {
  const v = raw.trim();
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(v)) throw new Error(`must be a path starting with "/", got ${quoted(raw)}`);
  if (v === "/") return v;
  const path = withoutTrailingSlashes(v);
  if (path === "" || path.slice(1).split("/").some((segment) => segment === "" || segment === "." || segment === "..")) {
    throw new Error(`must be "/" or a path of segments, none of them empty, "." or "..", got ${quoted(raw)}`);
  }
  return path;
};

/**
 * PEM text, or PEM text in base64 (as a secret store hands it out: "LS0tLS1CRUdJT" is
 * "-----BEGIN"), where a file's path goes: the key itself, never quoted.
 */
const pemText = /-----BEGIN|LS0tLS1CRUdJT/;

/** A file that can be read as a PEM certificate or key (pemFileProblem: no FIFO, device or huge file). */
const readableFile: Parser<string> = (raw) => {
  if (pemText.test(raw)) {
    throw new Error(
      "must be the path of a file, not the key or certificate itself (the value holds PEM text, or PEM text in base64, and is not shown); write it to a file readable by Tessera's user alone and give that file's path",
    );
  }
  const cannotRead = () => new Error(`cannot read file ${quoted(raw)}`);
  let problem: string | undefined;
  try {
    problem = pemFileProblem(raw);
  } catch {
    throw cannotRead();
  }
  if (problem !== undefined) throw new Error(`${quoted(raw)} is ${problem}`);
  try {
    accessSync(raw, constants.R_OK);
  } catch {
    throw cannotRead();
  }
  return raw;
};

const mongoUri: Parser<string> = (raw) => {
  if (!/^mongodb(\+srv)?:\/\/./.test(raw.trim())) {
    throw new Error("must be a mongodb:// or mongodb+srv:// connection string");
  }
  return raw.trim();
};

/**
 * Comma list of web origins as browsers send them in `Origin` (scheme://host[:port], no path), or
 * `*`: anything else ("app.example.com", "https://app.example.com/login") never matches one.
 */
const originList: Parser<string[]> = (raw) =>
  list(raw).map((origin) => {
    if (origin !== "*" && !/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#\s@]+\/?$/.test(origin)) {
      throw new Error(`${quoted(origin)} is not a web origin (scheme://host[:port], as a browser sends it) or *`);
    }
    // An http(s) origin as browsers serialize it: the default port left out, the host in
    // punycode. Any other spelling ("https://app.example.com:443", "https://äpp.example") never
    // matched, found at the first browser call.
    if (/^https?:/i.test(origin)) {
      let sent: string;
      try {
        sent = new URL(origin).origin;
      } catch {
        throw new Error(`${quoted(origin)} is not a web origin (scheme://host[:port], as a browser sends it) or *`);
      }
      if (sent.toLowerCase() !== origin.replace(/\/$/, "").toLowerCase()) {
        throw new Error(`${quoted(origin)} never matches: a browser sends this origin as ${quoted(sent)}`);
      }
    }
    return origin;
  });

/**
 * Comma list of client ids: each printable ASCII (spaces inside allowed), as a client sends it in
 * the x-koms-clientid header; a line break or a non-ASCII letter could never arrive (a header
 * carries bytes, read as Latin-1), and every call of that client would be refused.
 */
const clientIdList: Parser<string[]> = (raw) =>
  list(raw).map((id) => {
    if (!/^[\x20-\x7e]+$/.test(id)) throw new Error(`${quoted(id)} is not printable ASCII (it is sent as the x-koms-clientid header)`);
    // Printable ASCII: a character is a byte. Quoted cut short (quoted()), never in full.
    if (id.length > headerCredentialLimitBytes) {
      throw new Error(
        `${quoted(id)} is longer than ${headerCredentialLimitBytes} bytes: it is sent as the x-koms-clientid header, and the server limits a request's headers to ${requestHeaderLimitBytes} bytes (${requestHeaderLimitBytes - headerCredentialLimitBytes} left for the request line and the other headers)`,
      );
    }
    return id;
  });

/** Comma list of IP addresses or CIDRs ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7"). */
/** Proxy addresses and CIDRs, each checked as the client address resolver reads it. */
const cidrList: Parser<string[]> = (raw) =>
  list(raw).map((cidr) => {
    proxySubnet(cidr);
    return cidr;
  });

const nat64List: Parser<string[]> = (raw) =>
  list(raw).map((cidr) => {
    nat64Prefix(cidr);
    return cidr;
  });

/**
 * A listen address: an IP address, or a host name (RFC 1123 labels) the resolver looks up. Not a
 * name whose last label is a number (RFC 3696 2: no top-level label is all-numeric): getaddrinfo
 * reads it as an IPv4 address in inet_aton's notations, so 127.000.000.010 was listened on as
 * 127.0.0.8 (a part with a leading 0 is octal), and 0 as 0.0.0.0, every interface.
 */
const hostLabel = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const numberLabel = /^(?:\d+|0x[0-9a-f]*)$/i;
const listenHost: Parser<string> = (raw) => {
  const v = raw.trim();
  if (isIP(v) !== 0) return v;
  const labels = (v.endsWith(".") ? v.slice(0, -1) : v).split(".");
  if (labels.join(".").length === 0 || labels.join(".").length > 253 || !labels.every((label) => hostLabel.test(label))) {
    throw new Error(`must be an IP address or a host name, got ${quoted(raw)}`);
  }
  if (numberLabel.test(labels.at(-1)!)) {
    throw new Error(
      `must be an IP address or a host name, got ${quoted(raw)}: the resolver reads a name ending in a number as an IPv4 address (a part with a leading 0 as octal, 0x as hexadecimal, fewer than four parts as filling the last): write the address as four decimal numbers without leading zeros, or a host name`,
    );
  }
  return v;
};

/** A MongoDB database name as the server takes it (its documented restrictions, on every OS). */
const mongoDatabaseName: Parser<string> = (raw) => {
  // eslint-disable-next-line no-control-regex
  if (Buffer.byteLength(raw, "utf8") > 63 || /[/\\. "$\x00-\x1f\x7f]/.test(raw)) {
    throw new Error(`must be a MongoDB database name (1 to 63 bytes, none of / \\ . " $, a space or a control character), got ${quoted(raw)}`);
  }
  return raw;
};

/** An http or https URL (the OTLP/HTTP endpoint, to which /v1/traces is appended). */
const httpUrl: Parser<string> = (raw) => {
  let url: URL | undefined;
  try {
    url = new URL(raw.trim());
  } catch {
    // refused below
  }
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) throw new Error(`must be an http or https URL, got ${quoted(raw)}`);
  return raw.trim();
};

/** Hosts a development `http://` public URL may name (OpenID Connect requires https otherwise). */
const loopbackHosts = new Set(["localhost", "127.0.0.1", "[::1]"]);

const publicUrl: Parser<string> = (raw) => {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new Error(`must be an absolute https URL, got ${quoted(raw)}`);
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopbackHosts.has(url.hostname))) {
    throw new Error(`must be an https URL (http only for localhost), got ${quoted(raw)}`);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new Error(`must have no query, fragment or credentials, got ${quoted(raw)}`);
  }
  return `${url.origin}${withoutTrailingSlashes(url.pathname)}`;
};

/**
 * A secret: at least `bytes` long, and neither white space only nor one character repeated (32
 * spaces, "aaaa..."), which pass a length check and are guessed at once. The message never
 * quotes the value.
 */
function secretOfAtLeast(bytes: number): Parser<string> {
  return (raw) => {
    if (Buffer.byteLength(raw, "utf8") < bytes) throw new Error(`must be at least ${bytes} bytes long`);
    if (raw.trim() === "") throw new Error("must not be white space only");
    if (new Set(raw).size === 1) throw new Error("must not be one character repeated");
    return raw;
  };
}

/**
 * A secret presented as `Authorization: Bearer <token>`: at least `bytes` long, printable ASCII
 * without spaces (a header carries bytes, read as Latin-1; the bearer token ends at white
 * space), and short enough to fit in a request's headers (else the server answers 431), else no
 * client could ever present it.
 */
function bearerSecretOfAtLeast(bytes: number): Parser<string> {
  const ofLength = secretOfAtLeast(bytes);
  return (raw) => {
    if (!/^[\x21-\x7e]*$/.test(raw)) throw new Error('must be printable ASCII without spaces (it is sent as "Authorization: Bearer <token>")');
    if (raw.length > headerCredentialLimitBytes) {
      throw new Error(
        `must be at most ${headerCredentialLimitBytes} bytes: an admin call sends it in its headers, which the server limits to ${requestHeaderLimitBytes} bytes (${requestHeaderLimitBytes - headerCredentialLimitBytes} left for the request line and the other headers)`,
      );
    }
    return ofLength(raw);
  };
}

/**
 * The longest lifetime any setting gives a credential (seconds, a year):
 * TESSERA_REFRESH_TOKEN_TTL_SECONDS (seed 000 sessions, refresh tokens) and
 * TESSERA_SESSION_COOKIE_TTL_SECONDS at most; access tokens (a day) and authentication tokens (an
 * hour) live less. Housekeeping keeps a revoked signing key this long after its revocation
 * (REVOKED_KEY_KEPT_MS): what was made from its tokens may have been given it by earlier settings.
 */
export const LONGEST_CREDENTIAL_LIFETIME_SECONDS = 31_536_000;

/** Every configuration variable Tessera reads. */
export const variables = {
  port: variable("PORT", 8080, integer(0, 65535), "The one port for gRPC, gRPC-Web, Connect and REST."),
  host: variable("HOST", "127.0.0.1", listenHost, "Listen address (0.0.0.0 in containers): an IP address, or a host name; a name ending in a number (`0`, `127.1`, `127.000.000.010`), which the resolver reads as another IPv4 address than it shows, is refused."),
  mongodbUri: variable<string>("MONGODB_URI", undefined, mongoUri, "MongoDB connection string; unset: the embedded SQLite store.", { secret: true }),
  mongodbDatabase: variable<string>("TESSERA_MONGODB_DATABASE", undefined, mongoDatabaseName, "MongoDB database name when MONGODB_URI names none (default `tessera`); naming another one than the URI is an error.", { shownDefault: "(the URI's, else tessera)" }),
  storeTimeoutMs: variable("TESSERA_STORE_TIMEOUT_MS", 2000, integer(100, 60000), "How long a store call waits for an unreachable MongoDB before answering UNAVAILABLE (less when the caller's deadline is nearer)."),
  storeStartWaitSeconds: variable("TESSERA_STORE_START_WAIT_SECONDS", 0, integer(0, 600), "How long a start keeps trying to reach MongoDB that cannot be reached yet (unreachable, timing out, a retryable or network error, a mongodb+srv host's DNS records not found), each try failed logged at warn, 0.5 s after the first and twice as long each time up to 5 s; then the start fails as it would have at once (README \"Configuration\"). Refused credentials or permissions, an index conflict, a bad MONGODB_URI, a TLS certificate the driver refuses (unknown CA, self-signed, expired, another host's) and a TLS handshake that fails for a mismatch (tls=true against a plaintext port, no protocol version or cipher in common) fail at once; 0: no wait."),
  dataDir: variable("TESSERA_DATA_DIR", "./data", text, "Directory of the embedded store (created 0700, its files 0600; a wider existing mode is warned about)."),
  clientIds: variable<string[]>("TESSERA_CLIENT_IDS", undefined, clientIdList, "Comma list of accepted `x-koms-clientid` values, each printable ASCII of at most 15360 bytes (so that it fits in the 16 KiB a request's headers may take; development: one is generated and printed). A session access token's `aud` is its client id, so none may equal TESSERA_JWT_AUDIENCE (nor the refresh tokens' audience, it followed by `/refresh_token`).", { shownDefault: "(dev: generated, printed)" }),
  adminToken: variable<string>("TESSERA_ADMIN_TOKEN", undefined, bearerSecretOfAtLeast(16), "Bearer credential of the admin methods (`/v1/frontend/*`, key rotation, audit events); 16 to 15360 bytes (so that it fits in the 16 KiB a request's headers may take) of printable ASCII without spaces, not one character repeated (development: generated, printed).", { shownDefault: "(dev: generated, printed)", secret: true }),
  logLevel: variable("TESSERA_LOG_LEVEL", "info" as "debug" | "info" | "warn" | "error" | "silent", oneOf("debug", "info", "warn", "error", "silent"), "Log level; at info, one JSON line per call of a method (`rpc`: procedure, protocol, code, durationMs); a request refused before it reaches one (no route, a target, query or body that does not parse) writes none (one to a method the server has is counted in tessera_rpc_requests_total all the same)."),
  tlsCertFile: variable<string>("TESSERA_TLS_CERT_FILE", undefined, readableFile, "PEM certificate chain; with TESSERA_TLS_KEY_FILE, serve TLS (ALPN h2, http/1.1 and http/1.0)."),
  tlsKeyFile: variable<string>("TESSERA_TLS_KEY_FILE", undefined, readableFile, "PEM private key for TLS, unencrypted (a file other users may read is warned about)."),
  tlsReloadSeconds: variable("TESSERA_TLS_RELOAD_SECONDS", 60, integer(0, 86400), "How often the TLS certificate and key files are checked for a renewal, served once both check out (0: only on SIGHUP, which reloads them at once)."),
  bodyLimitBytes: variable("TESSERA_BODY_LIMIT_BYTES", 65536, integer(1024, 64 * 1024 * 1024), "Largest request body accepted (REST 413, RPC RESOURCE_EXHAUSTED)."),
  corsOrigins: variable<string[]>("TESSERA_CORS_ORIGINS", [], originList, "Comma list of web origins allowed by CORS, as browsers send them (`https://app.example.com`, a port if not the default, no path; `*` for any, without credentials), for REST, Connect and gRPC-Web alike.", { shownDefault: "(none)" }),
  jwtBasePath: variable("TESSERA_JWT_BASE_PATH", "/jwt", mountPath, "Mount path of the JWT API (seed 004): `/`, or segments none of which is empty, `.` or `..` (a client's URL parser removes those); `/` requires TESSERA_SESSION_API=false. A path under which a JWT API route would take another API's requests (`/v1/frontend/auth`: its `GET .../token` is the API token API's `GET /v1/frontend/auth/{account_id}`) is refused, both routes named."),
  sessionApi: variable("TESSERA_SESSION_API", true, boolean, "Serve the Session API (seed 000: SessionService, UserService); false frees `/user` for the JWT API mounted at `/`."),
  workers: variable("TESSERA_WORKERS", availableParallelism(), integer(1, 256), "Worker processes serving the one port (the process started is the first and hands connections round-robin to the others); 1: a single process.", { shownDefault: "(cores)" }),
  shutdownGraceSeconds: variable("TESSERA_SHUTDOWN_GRACE_SECONDS", 10, integer(0, 600), "On SIGTERM/SIGINT: how long in-flight calls may take to finish."),
  shutdownDelaySeconds: variable("TESSERA_SHUTDOWN_DELAY_SECONDS", 0, integer(0, 600), "On SIGTERM/SIGINT: how long readiness fails (GET /readyz and grpc.health.v1 answer NOT_SERVING) while every other call is still accepted and served and kept connections are drained (HTTP/1.1 answers close theirs, HTTP/2 sessions get GOAWAY), before the graceful stop; a second signal ends it at once (README \"Health probes\"); 0: the stop begins at once."),
  requestTimeoutMs: variable("TESSERA_REQUEST_TIMEOUT_MS", 30000, integer(1000, 600000), "A request (headers and body) must arrive within this time: else 408, a gRPC, gRPC-Web or Connect streaming call's DEADLINE_EXCEEDED in its framing, over HTTP/1.1 as over HTTP/2 (HTTP/2: per stream, or RST_STREAM once the answer has begun). Also the time a password login's check gets once its attempt slot is taken (at least 10 s; a verdict later than that is answered 503 `HASHER_BUSY`), and half the lease on which that slot is held (README \"Login protection\")."),
  headersTimeoutMs: variable("TESSERA_HEADERS_TIMEOUT_MS", 10000, integer(1000, 600000), "Request headers, and under TLS the handshake, must arrive within this time."),
  idleTimeoutMs: variable("TESSERA_IDLE_TIMEOUT_MS", 65000, integer(1000, 3600000), "Idle connections (HTTP/1.1 keep-alive, HTTP/2 without open streams) are closed after this time; so is an HTTP/1.1 connection whose client has taken none of its waiting answers for this long, and an HTTP/2 answer that cannot be sent for this long is reset."),
  tcpKeepaliveSeconds: variable("TESSERA_TCP_KEEPALIVE_SECONDS", 60, integer(0, 7200), "TCP keepalive on every accepted connection: after this many seconds without a packet the kernel probes the client, then every second, and closes the connection after 10 probes unanswered, so a client that vanished (its host gone, a NAT that forgot it) during a quiet stream is noticed; 0: off."),
  maxConnections: variable<number>("TESSERA_MAX_CONNECTIONS", undefined, integer(0, 1000000), "Connections each worker process serves at once; beyond, a new one is closed as it is accepted, before a byte of it is read (under TESSERA_WORKERS, one handed to a worker that has no room is served by the first worker if it has, else closed), counted in tessera_connections_refused_total and logged at warn at most once a minute (and at a stop, those refused since); TESSERA_METRICS_PORT has the same limit, its connections counted apart. The default leaves half the process's open-file limit (`ulimit -n`, which Node raises to its hard limit) to the store, files and logs; 0: no limit (each connection holds a file descriptor and some 5 to 40 KiB of memory). Set (or 0) to as many as the open-file limit or more (twice it with TESSERA_METRICS_PORT): a warning at start.", { shownDefault: "(a quarter of the open-file limit, 1024 assumed where it cannot be read, at most 10000)" }),
  maxOpenStreams: variable("TESSERA_MAX_OPEN_STREAMS", 1000, integer(1, 1000000), "Streams each worker process holds open at once (grpc.health.v1.Health/Watch and server reflection, served without a credential; a gRPC client checking health holds one per connection); beyond, a new one is refused at once with RESOURCE_EXHAUSTED `TOO_MANY_STREAMS`, and a stream's place is given back as it ends, however it ends."),
  trustedProxies: variable("TESSERA_TRUSTED_PROXIES", [] as string[], cidrList, "Comma list of proxy addresses or CIDRs whose `X-Forwarded-For` (else `Forwarded`) names the client: the right-most hop that is not one of them. A /0 (every address; so is the IPv4-mapped `::ffff:0.0.0.0/96`, every IPv4 address) is refused: clients would name their own address. An IPv4 client is checked against the IPv4 entries (IPv4-mapped ones included) alone, an IPv6 one against the IPv6 entries: `::1/64` trusts no IPv4 address.", { shownDefault: "(none)" }),
  nat64Prefixes: variable("TESSERA_NAT64_PREFIXES", [] as string[], nat64List, "Comma list of the IPv6 prefixes (length 32, 40, 48, 56, 64 or 96, RFC 6052) by which your NAT64 translators or proxies present IPv4 clients, such as a local-use `64:ff9b:1:ab::/64` (RFC 8215) or one of your own network: a client address in one counts, for login protection, as the IPv4 address it embeds, not as an IPv6 /64 and /48 (the well-known `64:ff9b::/96` always does; none may lie in Teredo's `2001::/32`, whose addresses count as their clients' IPv4 addresses). List only prefixes that route to your translators: a native IPv6 client in one would count as 32 bits of its address.", { shownDefault: "(none)" }),
  nodeEnv: variable("NODE_ENV", "development", nodeEnv, "`production` (exactly: `Production` or ` production` is refused, not taken for development) refuses to start without TESSERA_KEY_ENCRYPTION_KEY (private signing keys would be stored in the clear; not under TESSERA_JWT_ALG=HS256, which stores none), TESSERA_ADMIN_TOKEN, and TESSERA_CLIENT_IDS unless TESSERA_SESSION_API=false (generated and printed in development only)."),
  // Identity core
  argon2MemoryKib: variable("TESSERA_ARGON2_MEMORY_KIB", 19456, integer(1024, 4 * 1024 * 1024), "argon2id memory cost in KiB (OWASP: 19456 with 2 iterations)."),
  argon2Iterations: variable("TESSERA_ARGON2_ITERATIONS", 2, integer(1, 100), "argon2id time cost."),
  argon2Parallelism: variable("TESSERA_ARGON2_PARALLELISM", 1, integer(1, 16), "argon2id parallelism."),
  hashConcurrency: variable<number>("TESSERA_HASH_CONCURRENCY", undefined, integer(1, 256), "Password hashes (argon2id) each worker process runs at once, on libuv's thread pool; at most UV_THREADPOOL_SIZE - 1 (the pool, 4 threads unless set, is shared with file reads, DNS lookups and the embedded store's fsync): more is refused at start, naming both.", { shownDefault: "(cores / TESSERA_WORKERS, at least 1, at most UV_THREADPOOL_SIZE - 1)" }),
  hashNice: variable("TESSERA_HASH_NICE", 19, integer(0, 19), "Nice value (CPU priority, Linux) of the threads that hash passwords (libuv's pool, set as `npm start` starts): above 0, a flood of logins or sign-ups cannot take the CPU from the event loop, which answers every other call; 0: the process's own priority."),
  hashQueueLimit: variable("TESSERA_HASH_QUEUE_LIMIT", 64, integer(0, 100000), "Password hashes that may wait for a free hasher, per worker process (a login or sign-up admitted and still reading its account holds its place in this bound and TESSERA_HASH_CONCURRENCY's, until it hashes or ends); beyond, logins and sign-ups answer UNAVAILABLE (REST 503) with Retry-After at once."),
  loginProtection: variable("TESSERA_LOGIN_PROTECTION", true, boolean, "Limit login attempts per login, per client address and per IPv6 /48, and sign-ups per client address and per IPv6 /48."),
  loginMaxFailures: variable("TESSERA_LOGIN_MAX_FAILURES", 5, integer(1, 1000), "Failed logins per login (4x per client address) within the window before a lockout; also how many of its attempts may be checked at once."),
  loginWindowSeconds: variable("TESSERA_LOGIN_WINDOW_SECONDS", 900, integer(1, 86400), "Window over which login attempts and sign-ups are counted."),
  loginLockoutSeconds: variable("TESSERA_LOGIN_LOCKOUT_SECONDS", 60, integer(1, 86400), "First lockout; each attempt let through after a lockout locks for twice as long as the window's last failure did (a failure let through doubles the next lock, a right password does not), up to the window."),
  signupMaxPerAddress: variable("TESSERA_SIGNUP_MAX_PER_ADDRESS", 20, integer(1, 1000000), "Sign-ups (every API that creates users) per client address within the window before a lockout."),
  loginMaxFailuresPerIpv6_48: variable("TESSERA_LOGIN_MAX_FAILURES_PER_IPV6_48", 100, integer(1, 1000000), "Failed logins per IPv6 /48 (every address in it together: one holder may take a fresh /64 of it for each request) within the window before a lockout; also how many of its attempts may be checked at once. A login known from its /64 (its success there remembered, README \"Login protection\") is not counted, as with the address's window. IPv4 addresses are never grouped (README \"Login protection\")."),
  signupMaxPerIpv6_48: variable("TESSERA_SIGNUP_MAX_PER_IPV6_48", 100, integer(1, 1000000), "Sign-ups (every API that creates users) per IPv6 /48 (every address in it together) within the window before a lockout."),
  accessTokenTtlSeconds: variable("TESSERA_ACCESS_TOKEN_TTL_SECONDS", 900, integer(5, 86400), "Lifetime of session access tokens (cut to what is left of their session) and JWT access tokens."),
  refreshTokenTtlSeconds: variable("TESSERA_REFRESH_TOKEN_TTL_SECONDS", 2592000, integer(60, LONGEST_CREDENTIAL_LIFETIME_SECONDS), "Lifetime of refresh tokens (and of a session)."),
  refreshGraceSeconds: variable("TESSERA_REFRESH_GRACE_SECONDS", 10, integer(0, 300), "After a refresh, presenting the old refresh token with the same access token answers the same new pair (a retry), and with another a plain 401, for this long; after it, reuse detection ends the session."),
  lastUsedIntervalSeconds: variable("TESSERA_LAST_USED_INTERVAL_SECONDS", 60, integer(0, 86400), "At most one last-used write per token per this interval."),
  maxApiTokensPerAccount: variable("TESSERA_MAX_API_TOKENS_PER_ACCOUNT", 1000, integer(1, 1000000), "Active (unrevoked) API tokens one account may hold: creating one more is refused (400 FAILED_PRECONDITION, reason TOO_MANY_TOKENS) until one is revoked; none is ended to make room."),
  apiTokenRetentionDays: variable("TESSERA_API_TOKEN_RETENTION_DAYS", 30, integer(1, 36500), "Housekeeping deletes seed 001 API tokens this many days after they were revoked; until then the revoked listing (`state=revoked`) shows them, after it they are unknown everywhere. Active tokens are never deleted."),
  apiTokenCacheSeconds: variable("TESSERA_API_TOKEN_CACHE_SECONDS", 2, integer(0, 60), "How long an instance may cache an API token lookup (bound on cross-instance revocation delay; the workers of one instance learn of a revocation at once)."),
  authenticationTokenTtlSeconds: variable("TESSERA_AUTHENTICATION_TOKEN_TTL_SECONDS", 60, integer(1, 3600), "Lifetime of seed 003 authentication tokens: less when the credential a token is made from ends sooner (its `ttl` is then what that credential has left, in whole seconds)."),
  housekeepingIntervalSeconds: variable("TESSERA_HOUSEKEEPING_INTERVAL_SECONDS", 600, integer(0, 86400), "How often housekeeping deletes expired sessions, refresh tokens, authentication tokens, JWT refresh tokens, retired and revoked keys, stale login counters, remembered logins, old audit events, user tokens and cookie sessions past their retention, revoked API tokens past theirs, and API tokens whose creation never finished, in batches of 1000 (0: never)."),
  jwtAlg: variable("TESSERA_JWT_ALG", "EdDSA" as "EdDSA" | "ES256" | "HS256", oneOf("EdDSA", "ES256", "HS256"), "Signing algorithm of every JWT Tessera issues."),
  jwtSecret: variable<string>("TESSERA_JWT_SECRET", undefined, secretOfAtLeast(32), "HS256 secret (at least 32 bytes, neither white space only nor one character repeated); required when TESSERA_JWT_ALG=HS256, refused otherwise.", { secret: true }),
  keyPublishSeconds: variable("TESSERA_KEY_PUBLISH_SECONDS", 600, integer(0, 86400), "How long a signing key is published in the JWKS before it may sign: a rotation promotes the next key no earlier than this after it was published. The JWKS max-age is at most this, minus the 30 s in which instances learn of new keys."),
  keyEncryptionKey: variable<string>("TESSERA_KEY_ENCRYPTION_KEY", undefined, secretOfAtLeast(32), "Secret (at least 32 bytes, neither white space only nor one character repeated) that seals private signing keys in the store (AES-256-GCM); unset: stored in the clear (refused when NODE_ENV=production, but for HS256, which stores no private key).", { secret: true }),
  keyEncryptionKeyPrevious: variable<string>("TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS", undefined, secretOfAtLeast(32), "The secret TESSERA_KEY_ENCRYPTION_KEY was before it changed (same rules; requires TESSERA_KEY_ENCRYPTION_KEY, and must differ from it): it also opens stored keys, and each key that opens only with it is sealed again under TESSERA_KEY_ENCRYPTION_KEY at start (README \"Upgrades\").", { secret: true }),
  publicUrl: variable<string>("TESSERA_PUBLIC_URL", undefined, publicUrl, "The https URL clients reach Tessera at: the `issuer` of /.well-known/openid-configuration and the `iss` of every JWT (http only for localhost)."),
  jwtIssuer: variable("TESSERA_JWT_ISSUER", "tessera", text, "`iss` of the JWTs Tessera issues; TESSERA_PUBLIC_URL when that is set (then leave this unset or equal)."),
  jwtAudience: variable("TESSERA_JWT_AUDIENCE", "tessera", text, "`aud` of seed 004 access JWTs; refresh JWTs carry it followed by `/refresh_token`, so that no verifier of access tokens takes one."),
  hstsMaxAgeSeconds: variable("TESSERA_HSTS_MAX_AGE_SECONDS", 31536000, integer(0, 63072000), "Under TLS every answer carries `Strict-Transport-Security: max-age=` this (a browser then reaches the service over HTTPS only); 0: none. Never sent without TLS (a proxy that terminates TLS sets its own)."),
  cookieSecure: variable<boolean>("TESSERA_COOKIE_SECURE", undefined, boolean, "Mark the session cookie Secure (default: on under TLS or with an https TESSERA_PUBLIC_URL). Set it behind a proxy that ends TLS: the server is then reached over https, and a cookie logout from an http:// page of its host is refused as another origin's.", { shownDefault: "(on under TLS or with an https TESSERA_PUBLIC_URL)" }),
  // Operations
  metrics: variable("TESSERA_METRICS", true, boolean, "Serve Prometheus metrics at `GET /metrics` (`on` or `off`).", { shownDefault: "on" }),
  metricsPort: variable<number>("TESSERA_METRICS_PORT", undefined, integer(0, 65535), "Serve `/metrics` on this port of HOST instead of the main port (which then answers 404 there); refused with TESSERA_METRICS=off."),
  audit: variable("TESSERA_AUDIT", true, boolean, "Record the audit trail (store and `\"type\":\"audit\"` log lines); `off` records nothing (metrics still count logins).", { shownDefault: "on" }),
  auditRetentionDays: variable("TESSERA_AUDIT_RETENTION_DAYS", 90, integer(1, 36500), "Housekeeping deletes audit events older than this many days."),
  auditRefusalsPerMinute: variable("TESSERA_AUDIT_REFUSALS_PER_MINUTE", 100, integer(0, 1000000), "Audit events of refused calls without a verified credential that name no user (failed logins, refused admin calls, ...) each worker process stores per client address per minute; beyond, they are counted and stored as one `audit.suppressed` event per address at the minute's end (README \"Audit trail\"); 0: no limit.", { shownDefault: "100 (0: no limit)" }),
  auditRefusalsPerMinuteTotal: variable("TESSERA_AUDIT_REFUSALS_PER_MINUTE_TOTAL", 1000, integer(0, 100000000), "The same, over every client address together: beyond, they are counted in one `audit.suppressed` event without an address; 0: no limit.", { shownDefault: "1000 (0: no limit)" }),
  maxSessionsPerUser: variable("TESSERA_MAX_SESSIONS_PER_USER", 500, integer(1, 1000000), "Unexpired seed 000 sessions one user holds at most (logged-out ones count until they expire): a login beyond ends (deletes) the user's oldest, at most 100 per login (README \"Caps\")."),
  maxJwtRefreshTokensPerUser: variable("TESSERA_MAX_JWT_REFRESH_TOKENS_PER_USER", 500, integer(1, 1000000), "Unrevoked, unexpired seed 004 refresh tokens one user holds at most: a new one beyond revokes the user's oldest, at most 100 per token (README \"Caps\")."),
  maxUserTokensPerUser: variable("TESSERA_MAX_USER_TOKENS_PER_USER", 500, integer(1, 1000000), "Enabled, unexpired seed 002 user tokens and seed 003 cookie sessions (together) one user holds at most: a new one beyond logs out the user's oldest, at most 100 per token, never one a new cookie session descends from (so one line of descent, 17 at most, may exceed a lower cap; README \"Caps\")."),
  userTokenRetentionDays: variable("TESSERA_USER_TOKEN_RETENTION_DAYS", 30, integer(1, 36500), "Housekeeping deletes seed 002 user tokens and seed 003 cookie sessions this many days after they expired or were logged out; until then they answer TOKEN_EXPIRED or TOKEN_REVOKED, after it INVALID_TOKEN (unknown)."),
  otlpEndpoint: variable<string>("OTEL_EXPORTER_OTLP_ENDPOINT", undefined, httpUrl, "Set: export trace spans (calls, store operations, hashing) over OTLP/HTTP to this endpoint through the OpenTelemetry SDK (other `OTEL_*` variables apply, but for OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, which is not read: warned about at start); unset: the SDK is not loaded."),
  sessionCookieTtlSeconds: variable("TESSERA_SESSION_COOKIE_TTL_SECONDS", 86400, integer(60, LONGEST_CREDENTIAL_LIFETIME_SECONDS), "Lifetime (and cookie Max-Age) of the `tessera_session` cookie set by seed 003's token exchange."),
} as const;

type Vars = typeof variables;
type Values = { -readonly [K in keyof Vars]: Vars[K] extends Variable<infer T, infer D> ? (undefined extends D ? T | undefined : T) : never };
export type Config = Omit<Values, "clientIds" | "adminToken" | "mongodbDatabase" | "hashConcurrency" | "maxConnections"> & {
  readonly clientIds: string[];
  readonly adminToken: string;
  /** The MongoDB database: MONGODB_URI's, else TESSERA_MONGODB_DATABASE, else "tessera". */
  readonly mongodbDatabase: string;
  readonly hashConcurrency: number;
  /** TESSERA_MAX_CONNECTIONS, else its default (defaultMaxConnections); 0: no limit. */
  readonly maxConnections: number;
  /** True when client ids or the admin token were generated for development. */
  readonly generated: { clientId?: string; adminToken?: string };
};

/**
 * One variable read as loadConfig reads it (unset or empty: its default), for a command that
 * needs only a few of them (`npm run backup`: TESSERA_DATA_DIR, MONGODB_URI); throws ConfigError
 * naming the variable.
 */
export function readVariable<K extends keyof Vars>(key: K, env: NodeJS.ProcessEnv = process.env): Values[K] {
  const v = variables[key] as Variable<unknown, unknown>;
  const raw = env[v.name];
  if (raw === undefined || raw === "") return v.fallback as Values[K];
  try {
    return v.parse(raw) as Values[K];
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new ConfigError(`${v.name}: ${withSecretsHidden(why, v, env)}`);
  }
}

/**
 * A refusal's message with no secret quoted in it. A secret's parser never quotes it; should one,
 * the value as quoted() writes it is hidden. Not the bare value: a short one ("e", " ") is text
 * of the message itself, which would be garbled ("must b<hidden> at l<hidden>ast") and spell the
 * refused secret out. Another variable's refusal may quote a secret too, pasted where it does
 * not belong (the admin token listed twice in TESSERA_CLIENT_IDS): named by its variable instead.
 */
function withSecretsHidden(why: string, refused: Variable<unknown, unknown>, env: NodeJS.ProcessEnv): string {
  let message = why;
  for (const v of Object.values(variables) as Variable<unknown, unknown>[]) {
    const raw = env[v.name];
    if (!v.secret || raw === undefined || raw === "") continue;
    const shown = v === refused ? "<hidden>" : `<the value of ${v.name}>`;
    for (const value of new Set([raw, raw.trim()])) if (value !== "") message = message.replaceAll(quoted(value), shown);
  }
  return message;
}

/** The secrets of the configuration, by variable (undefined: unset). */
function namedSecrets(c: Pick<Values, "adminToken" | "jwtSecret" | "keyEncryptionKey" | "keyEncryptionKeyPrevious">) {
  return [
    ["TESSERA_ADMIN_TOKEN", c.adminToken],
    ["TESSERA_JWT_SECRET", c.jwtSecret],
    ["TESSERA_KEY_ENCRYPTION_KEY", c.keyEncryptionKey],
    ["TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS", c.keyEncryptionKeyPrevious],
  ] as const;
}

/**
 * Whether text is one of the secrets of the configuration that are set (the admin token, the
 * HS256 secret, the key encryption keys), compared in constant time but for the secrets'
 * lengths: text a request gives where it gives a name (a login, a path segment, a query
 * parameter's name) is never recorded or quoted when it is one of them. Text of a length no
 * secret has is told apart without a digest: every word and piece of a refused login is looked
 * at (credential-shapes.ts holdsCredential), and a digest of each made a login of 64 KiB of short
 * words cost 0.3 s.
 */
export function configuredSecret(c: Pick<Config, "adminToken" | "jwtSecret" | "keyEncryptionKey" | "keyEncryptionKeyPrevious">): (text: string) => boolean {
  const secrets = namedSecrets(c).flatMap(([, value]) => (value === undefined ? [] : [value]));
  const lengths = new Set(secrets.map((secret) => secret.length));
  const matches = secretMatcher(secrets);
  return (text) => lengths.has(text.length) && matches(text);
}

/**
 * Whether text holds one of the secrets of the configuration anywhere in it (secretWithin:
 * constant time but for the secrets' lengths): a request id that does is not kept (request-id.ts).
 */
export function holdsConfiguredSecret(c: Pick<Config, "adminToken" | "jwtSecret" | "keyEncryptionKey" | "keyEncryptionKeyPrevious">): (text: string) => boolean {
  return secretWithin(namedSecrets(c).flatMap(([, value]) => (value === undefined ? [] : [value])));
}

/** Reads and validates the configuration; throws ConfigError naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(variables) as Array<keyof Vars>) out[key] = readVariable(key, env);
  const c = out as Values;
  if ((c.tlsCertFile === undefined) !== (c.tlsKeyFile === undefined)) {
    throw new ConfigError("TESSERA_TLS_CERT_FILE and TESSERA_TLS_KEY_FILE: set both or neither");
  }
  if (c.tlsCertFile !== undefined && c.tlsKeyFile !== undefined) {
    // A pair that cannot be served stops the start with one line naming the variable: a key
    // that is not the certificate's, encrypted, weak or not PEM, a certificate expired, not yet
    // valid or not PEM.
    try {
      loadCertificate(c.tlsCertFile, c.tlsKeyFile, new Date());
    } catch (e) {
      if (e instanceof CertificateError) throw new ConfigError(e.message);
      throw e;
    }
  }
  if (c.headersTimeoutMs > c.requestTimeoutMs) {
    throw new ConfigError(`TESSERA_HEADERS_TIMEOUT_MS and TESSERA_REQUEST_TIMEOUT_MS: the headers timeout (${c.headersTimeoutMs} ms) cannot exceed the request timeout (${c.requestTimeoutMs} ms), which includes the headers`);
  }
  if (c.metricsPort !== undefined && c.metricsPort !== 0 && c.metricsPort === c.port) {
    throw new ConfigError(`TESSERA_METRICS_PORT: must differ from PORT (${c.port}), which serves the API`);
  }
  if (c.metricsPort !== undefined && !c.metrics) {
    throw new ConfigError("TESSERA_METRICS and TESSERA_METRICS_PORT: metrics are off, so no port would serve them; unset TESSERA_METRICS_PORT or turn TESSERA_METRICS on");
  }
  if (c.jwtBasePath === "/" && c.sessionApi) {
    throw new ConfigError("TESSERA_JWT_BASE_PATH: \"/\" collides with the Session API's /user; set TESSERA_SESSION_API=false to mount the JWT API there");
  }
  const clash = jwtRouteClash(c.jwtBasePath, c.sessionApi);
  if (clash) {
    const { jwt, other } = clash;
    throw new ConfigError(
      `TESSERA_JWT_BASE_PATH: under ${quoted(c.jwtBasePath)} the JWT API's ${jwt.httpMethod} ${jwt.pattern} meets ${other.httpMethod} ${other.pattern} (${other.rpcName}): one would answer the other's requests; mount it where no other API's routes are`,
    );
  }
  if (c.publicUrl !== undefined) {
    // One source of truth: the discovery document's issuer is the tokens' iss.
    const issuer = env.TESSERA_JWT_ISSUER;
    if (issuer !== undefined && issuer !== "" && issuer !== c.publicUrl) {
      throw new ConfigError(`TESSERA_JWT_ISSUER: must be unset or equal TESSERA_PUBLIC_URL (${c.publicUrl}), the issuer of the discovery document`);
    }
    c.jwtIssuer = c.publicUrl;
  }
  // A session access token's aud is its client id: one equal to a JWT API audience would make
  // the two kinds of token pass each other's audience check (in every verifier that checks only
  // the signature, issuer and audience).
  const jwtAudiences = [c.jwtAudience, refreshTokenAudience(c.jwtAudience)];
  if (c.clientIds?.some((id) => jwtAudiences.includes(id))) {
    throw new ConfigError(
      "TESSERA_CLIENT_IDS: a client id equals TESSERA_JWT_AUDIENCE or the refresh tokens' audience (TESSERA_JWT_AUDIENCE followed by /refresh_token): session access tokens, whose aud is their client id, would pass a verifier of JWT API tokens, and those a verifier of session tokens",
    );
  }
  if (c.jwtAlg === "HS256" && c.jwtSecret === undefined) {
    throw new ConfigError("TESSERA_JWT_SECRET: required when TESSERA_JWT_ALG=HS256 (at least 32 bytes)");
  }
  // A secret that is set is meant to sign: without HS256 the tokens would carry EdDSA or ES256
  // signatures that verifiers given the secret refuse, found at the first token checked.
  if (c.jwtAlg !== "HS256" && c.jwtSecret !== undefined) {
    throw new ConfigError(`TESSERA_JWT_SECRET and TESSERA_JWT_ALG: a secret is set but TESSERA_JWT_ALG is ${c.jwtAlg}, which does not use it; set TESSERA_JWT_ALG=HS256 or unset TESSERA_JWT_SECRET`);
  }
  if (c.nodeEnv === "production" && c.jwtAlg !== "HS256" && c.keyEncryptionKey === undefined) {
    throw new ConfigError("TESSERA_KEY_ENCRYPTION_KEY: required when NODE_ENV=production (private signing keys would be stored unsealed)");
  }
  if (c.keyEncryptionKeyPrevious !== undefined && c.keyEncryptionKey === undefined) {
    throw new ConfigError(
      "TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: set without TESSERA_KEY_ENCRYPTION_KEY; the previous secret only opens keys sealed under it, which are sealed again under TESSERA_KEY_ENCRYPTION_KEY",
    );
  }
  // Refused rather than warned of: the operator meant to change the secret, and nothing would change.
  if (c.keyEncryptionKeyPrevious !== undefined && c.keyEncryptionKey !== undefined && secretEquals(c.keyEncryptionKeyPrevious, c.keyEncryptionKey)) {
    throw new ConfigError(
      "TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS and TESSERA_KEY_ENCRYPTION_KEY: the same secret; the previous one is the secret keys were sealed with before TESSERA_KEY_ENCRYPTION_KEY changed (unset it once every key is sealed again)",
    );
  }
  // The generated credentials are a development convenience, printed on stderr: in production
  // the admin token would sit in the logs, and every instance would have its own.
  if (c.nodeEnv === "production" && c.adminToken === undefined) {
    throw new ConfigError("TESSERA_ADMIN_TOKEN: required when NODE_ENV=production (only development generates one, printed on stderr)");
  }
  // Client ids are what Session API clients present: each instance generating its own would
  // refuse the clients of every other one.
  if (c.nodeEnv === "production" && c.sessionApi && c.clientIds === undefined) {
    throw new ConfigError("TESSERA_CLIENT_IDS: required when NODE_ENV=production with the Session API on (only development generates one, printed on stderr)");
  }
  // One secret in two roles: the admin token travels in a header of every admin call (and may be
  // seen by a proxy or a log on the way); the HS256 secret and the key encryption key never
  // leave the service. Compared, never quoted.
  const secrets = namedSecrets(c);
  for (const [i, [name, value]] of secrets.entries()) {
    const same = secrets.slice(i + 1).find(([, other]) => value !== undefined && other !== undefined && secretEquals(other, value));
    if (same) throw new ConfigError(`${name} and ${same[0]}: the same secret; each must be its own (the admin token is sent with every admin call, the others never leave the service)`);
  }
  if (c.adminToken !== undefined && c.clientIds?.includes(c.adminToken)) {
    throw new ConfigError("TESSERA_CLIENT_IDS and TESSERA_ADMIN_TOKEN: a client id is the admin token; client ids are sent by every client, the admin token by admins alone");
  }
  let uriDatabase: string | undefined;
  try {
    uriDatabase = c.mongodbUri === undefined ? undefined : databaseInUri(c.mongodbUri);
  } catch {
    // decodeURIComponent's URIError ("URI malformed"), which named neither the variable nor the part.
    throw new ConfigError("MONGODB_URI: the database name is not valid percent-encoding");
  }
  // Held to TESSERA_MONGODB_DATABASE's rules: the driver or the server refused such a name only as
  // the store opened ("failed to start: Database names cannot contain the character '.'", exit
  // 1), naming no variable.
  if (uriDatabase !== undefined) {
    try {
      mongoDatabaseName(uriDatabase);
    } catch (e) {
      throw new ConfigError(`MONGODB_URI: the database it names ${(e as Error).message}`);
    }
  }
  if (uriDatabase !== undefined && c.mongodbDatabase !== undefined && uriDatabase !== c.mongodbDatabase) {
    throw new ConfigError(`MONGODB_URI and TESSERA_MONGODB_DATABASE: the URI names the database ${quoted(uriDatabase)}, the variable ${quoted(c.mongodbDatabase)}; set one, or the same name in both`);
  }
  const mongodbDatabase = uriDatabase ?? c.mongodbDatabase ?? "tessera";
  const generated: { clientId?: string; adminToken?: string } = {};
  let clientIds = c.clientIds;
  if (!clientIds) {
    generated.clientId = `dev-${randomBytes(6).toString("hex")}`;
    clientIds = [generated.clientId];
  }
  let adminToken = c.adminToken;
  if (!adminToken) {
    generated.adminToken = randomBytes(24).toString("base64url");
    adminToken = generated.adminToken;
  }
  // Hashes run on libuv's pool, which the embedded store's fsync, file reads and DNS lookups
  // share: a setting that takes every thread of it would make those wait behind the hashes (and
  // hashes beyond its threads would wait inside libuv, unseen by TESSERA_HASH_QUEUE_LIMIT). Both
  // variables are the operator's: refused, naming both, rather than either changed (README
  // "Login protection").
  const pool = threadPoolSize(env);
  const hashCeiling = Math.max(1, pool - 1);
  if (c.hashConcurrency !== undefined && c.hashConcurrency > hashCeiling) {
    throw new ConfigError(
      `TESSERA_HASH_CONCURRENCY and UV_THREADPOOL_SIZE: ${c.hashConcurrency} hashes at once would take every thread of libuv's pool (UV_THREADPOOL_SIZE: ${pool}${env.UV_THREADPOOL_SIZE === undefined ? ", the default" : ""}), which file reads, DNS lookups and the embedded store's fsync share, so they would wait behind the hashes; set UV_THREADPOOL_SIZE to at least ${c.hashConcurrency + 1}, or TESSERA_HASH_CONCURRENCY to at most ${hashCeiling}`,
    );
  }
  // The default is one hash per core, shared out among the worker processes, leaving at least
  // one of the pool's threads to file and DNS work and the embedded store's fsync.
  const hashConcurrency = c.hashConcurrency ?? Math.max(1, Math.min(Math.floor(availableParallelism() / c.workers), pool - 1));
  const maxConnections = c.maxConnections ?? defaultMaxConnections(processOpenFileLimit());
  return { ...c, clientIds, adminToken, mongodbDatabase, hashConcurrency, maxConnections, generated } as Config;
}

/** Variables of Tessera's own that are not configuration (set by the first worker for the others: cluster.ts). */
const internalVariables = new Set(["TESSERA_WORKER_ID"]);

/**
 * The TESSERA_ variables of `env`, in any letter case, that no configuration variable is (a
 * misspelt name, which would otherwise be ignored without a word), each with the declared name
 * nearest to it when one is close (at most 2 edits, letter case aside): logged at start. Names
 * only: a value may be a secret.
 */
export function unknownVariables(env: NodeJS.ProcessEnv = process.env): Array<{ variable: string; didYouMean?: string }> {
  const declared = Object.values(variables).map((v) => v.name);
  // In any letter case: names are case-sensitive, and tessera_workers was ignored without a word.
  return Object.keys(env)
    .filter((name) => name.toUpperCase().startsWith("TESSERA_") && !declared.includes(name) && !internalVariables.has(name))
    .sort()
    .map((variable) => {
      let best: { name: string; distance: number } | undefined;
      for (const name of declared) {
        const distance = editDistance(variable.toUpperCase(), name);
        if (distance <= 2 && (best === undefined || distance < best.distance)) best = { name, distance };
      }
      return best === undefined ? { variable } : { variable, didYouMean: best.name };
    });
}

/**
 * The variables of `env` that are set but have no effect under the configuration chosen (a
 * MongoDB database name on the embedded store, a key encryption key under HS256, ...), each with
 * why: logged at start, as unknownVariables are, since each would otherwise be ignored without a
 * word. Names only: a value may be a secret.
 */
export function unusedVariables(config: Config, env: NodeJS.ProcessEnv = process.env): Array<{ variable: string; reason: string }> {
  const set = (name: string) => env[name] !== undefined && env[name] !== "";
  const tls = config.tlsCertFile !== undefined;
  const loginProtectionOff = "TESSERA_LOGIN_PROTECTION is off: no login attempt or sign-up is limited";
  const noKeysToSeal = "TESSERA_JWT_ALG is HS256: tokens are signed with TESSERA_JWT_SECRET, and no private signing key is stored to seal";
  const unused: Array<[string, boolean, string]> = [
    ["TESSERA_MONGODB_DATABASE", config.mongodbUri === undefined, "MONGODB_URI is unset: the embedded store is used, which has no database name"],
    ["TESSERA_STORE_TIMEOUT_MS", config.mongodbUri === undefined, "MONGODB_URI is unset: it bounds the wait for an unreachable MongoDB, and the embedded store is used"],
    ["TESSERA_STORE_START_WAIT_SECONDS", config.mongodbUri === undefined, "MONGODB_URI is unset: a start waits only for an unreachable MongoDB, and the embedded store is used"],
    ["TESSERA_DATA_DIR", config.mongodbUri !== undefined, "MONGODB_URI is set: the store is MongoDB, and the embedded store's directory is not used"],
    // HS256 signs with TESSERA_JWT_SECRET; the key ring stores no key, so nothing is sealed (core/key-ring.ts).
    ["TESSERA_KEY_ENCRYPTION_KEY", config.jwtAlg === "HS256", noKeysToSeal],
    ["TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS", config.jwtAlg === "HS256", noKeysToSeal],
    ["TESSERA_TLS_RELOAD_SECONDS", !tls, "TESSERA_TLS_CERT_FILE and TESSERA_TLS_KEY_FILE are unset: no TLS certificate is served"],
    ["TESSERA_HSTS_MAX_AGE_SECONDS", !tls, "TESSERA_TLS_CERT_FILE and TESSERA_TLS_KEY_FILE are unset: Strict-Transport-Security is sent only under TLS"],
    ["TESSERA_AUDIT_REFUSALS_PER_MINUTE", !config.audit, "TESSERA_AUDIT is off: no audit event is recorded"],
    ["TESSERA_AUDIT_REFUSALS_PER_MINUTE_TOTAL", !config.audit, "TESSERA_AUDIT is off: no audit event is recorded"],
    // Read only by LoginThrottle once it is on (core/login-throttle.ts). TESSERA_LOGIN_WINDOW_SECONDS
    // is not named: housekeeping deletes the login counters older than it either way (a shared
    // store's, or ones kept from before). Nor is TESSERA_CLIENT_IDS without the Session API: seed
    // 003's routes still take a session access token with its client id.
    ["TESSERA_LOGIN_MAX_FAILURES", !config.loginProtection, loginProtectionOff],
    ["TESSERA_LOGIN_LOCKOUT_SECONDS", !config.loginProtection, loginProtectionOff],
    ["TESSERA_SIGNUP_MAX_PER_ADDRESS", !config.loginProtection, loginProtectionOff],
    ["TESSERA_LOGIN_MAX_FAILURES_PER_IPV6_48", !config.loginProtection, loginProtectionOff],
    ["TESSERA_SIGNUP_MAX_PER_IPV6_48", !config.loginProtection, loginProtectionOff],
    // OpenTelemetry's signal-specific endpoint: the exporter is given its URL from
    // OTEL_EXPORTER_OTLP_ENDPOINT (server/otel.ts), which wins over it, and without that one the
    // SDK is not loaded. Set alone, as a collector's documentation may give it, no span went out.
    ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", true, "spans are exported to OTEL_EXPORTER_OTLP_ENDPOINT followed by /v1/traces, and none without it; set that one to the collector's base URL"],
  ];
  return unused.filter(([name, notUsed]) => notUsed && set(name)).map(([variable, , reason]) => ({ variable, reason }));
}

/**
 * TESSERA_MAX_CONNECTIONS set (0, no limit, included) to more connections than the open-file
 * limit (processOpenFileLimit) can hold: as many descriptors as the limit or more for the connections a
 * worker may hold (twice the value with TESSERA_METRICS_PORT, whose connections are counted
 * apart), where the process already holds some. Logged at start as a warning, the start not
 * refused (the limit may be raised for the service, or another process's be meant): past the
 * limit, connections are reset unanswered, neither counted nor logged, and the store can open no
 * file. Undefined where the value fits, it is not set (its default, a quarter of the limit,
 * fits), or the limit cannot be read.
 */
export function connectionsBeyondOpenFiles(config: Config, env: NodeJS.ProcessEnv = process.env): { variable: string; value: number; openFileLimit: number; reason: string } | undefined {
  const variable = "TESSERA_MAX_CONNECTIONS";
  if (env[variable] === undefined || env[variable] === "") return undefined;
  // Read only here, where the variable is set: unset, loadConfig read the limit for the default.
  const openFiles = processOpenFileLimit();
  if (openFiles === undefined) return undefined;
  const value = config.maxConnections;
  const ports = config.metricsPort === undefined ? 1 : 2;
  if (value !== 0 && value * ports < openFiles) return undefined;
  const held = value === 0 ? "0 is no limit" : ports === 2 ? `${value} connections, and as many on TESSERA_METRICS_PORT,` : `${value} connections`;
  const reason =
    `${held} can take every file descriptor of the open-file limit (ulimit -n) of ${openFiles}: each connection holds one, and the ` +
    "connections past the limit are reset unanswered, neither counted nor logged, while the store can open no file; " +
    `lower ${variable} (unset: a quarter of the limit) or raise the limit`;
  return { variable, value, openFileLimit: openFiles, reason };
}

/** Levenshtein distance (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    previous = row;
  }
  return previous[b.length]!;
}

/** The README's configuration table, generated from `variables`. */
export function configTable(): string {
  const rows = Object.values(variables).map(
    (v) => `| \`${v.name}\` | ${v.shownDefault === "" ? "" : `\`${v.shownDefault}\``} | ${v.doc} |`,
  );
  return ["| variable | default | meaning |", "|---|---|---|", ...rows].join("\n");
}
