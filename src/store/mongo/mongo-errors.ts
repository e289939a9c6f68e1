import type { MongoServerError } from "mongodb";
import { DuplicateError, StoreError, StoreUnavailableError } from "../ports.js";
import { mongoDriver } from "./mongo-driver.js";
import { isDuplicateKey } from "./mongo-inserts.js";

// Server error codes that mean "this server cannot answer right now", not "your request is wrong".
const unavailableCodes = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
  134, // ReadConcernMajorityNotAvailableYet
  64, // WriteConcernFailed: the write concern was not met in time (members down or lagging)
]);

// Labels the server or the driver puts on an error that the same operation may succeed when
// retried (a failover, an overloaded server): the database cannot answer this one right now.
const unavailableLabels = ["ResetPool", "RetryableWriteError", "RetryableError", "SystemOverloadedError"];

// FerretDB (PostgreSQL backend) answers any failure of its PostgreSQL as InternalError (code 1),
// the cause only in errmsg. These mean PostgreSQL cannot serve right now, not that the request or
// the service is wrong:
// - a PostgreSQL error whose SQLSTATE is of class 08 (connection exception), class 53
//   (insufficient resources: 53300 "sorry, too many clients already", out of memory, disk full),
//   57P01-57P03 (admin or crash shutdown, "the database system is starting up"), 25006 (a
//   read-only transaction: FerretDB's PostgreSQL is a standby, as after a failover), or 40001 /
//   40P01 (a serialization failure or deadlock: the same call succeeds when made again);
// - no connection to PostgreSQL at all: pgx's "failed to connect to `user=... database=...`"
//   (PostgreSQL down or unreachable), or a connection lost under a query (Go's network errors:
//   "read: connection reset by peer", "unexpected EOF", ...).
// A message that carries a SQLSTATE is decided by it alone: pgx's "failed to connect to" also
// heads a connection PostgreSQL refused for the service's own settings (3D000, a database that
// does not exist; 28P01, a password refused), which no retry mends.
// Any other InternalError stays an error of its own (INTERNAL).
const FERRETDB_INTERNAL_ERROR = 1;
const sqlstate = /\(SQLSTATE [0-9A-Z]{5}\)/;
const postgresUnavailableState = /\(SQLSTATE (?:08[0-9A-Z]{3}|53[0-9A-Z]{3}|57P0[123]|25006|40001|40P01)\)/;
const postgresUnreachable = new RegExp(
  [
    "failed to connect to `",
    String.raw`(?:\] |: )(?:connection reset by peer|broken pipe|connection refused|i/o timeout|unexpected EOF|conn closed|use of closed network connection|no route to host|network is unreachable)`,
  ].join("|"),
);
const postgresUnavailable = (message: string): boolean => (sqlstate.test(message) ? postgresUnavailableState.test(message) : postgresUnreachable.test(message));

// Socket errors the driver sometimes passes through unwrapped (e.g. EPIPE "This socket has been
// ended by the other party" when the server dies between requests).
const socketErrorCodes = new Set(["EPIPE", "ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "ETIMEDOUT", "ENOTCONN", "EHOSTUNREACH", "ENETUNREACH", "ERR_SOCKET_CLOSED", "ERR_STREAM_DESTROYED"]);

/** True when the error means the database is down or unreachable (so: UNAVAILABLE, retry later). */
export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const m = mongoDriver();
  const fromDriver = m !== undefined && error instanceof m.MongoError;
  if (!fromDriver) return socketErrorCodes.has(String((error as { code?: unknown }).code));
  return (
    error instanceof m.MongoNetworkError || // includes timeouts and PoolClearedError
    error instanceof m.MongoServerSelectionError ||
    error instanceof m.MongoNotConnectedError ||
    error instanceof m.MongoTopologyClosedError ||
    error instanceof m.MongoClientClosedError ||
    error instanceof m.MongoOperationTimeoutError ||
    // No pooled connection free within the store timeout (waitQueueTimeoutMS): the driver does
    // not export this class, only its name.
    error.name === "MongoWaitQueueTimeoutError" ||
    unavailableLabels.some((label) => error.hasErrorLabel(label)) ||
    (error instanceof m.MongoServerError && typeof error.code === "number" && unavailableCodes.has(error.code)) ||
    (error instanceof m.MongoServerError && error.code === FERRETDB_INTERNAL_ERROR && postgresUnavailable(error.message))
  );
}

const MAX_TIME_MS_EXPIRED = 50;

/** MongoDB stopped an operation at the maxTimeMS it was given (MaxTimeMSExpired). */
export function isMaxTimeExpired(error: unknown): boolean {
  const m = mongoDriver();
  return m !== undefined && error instanceof m.MongoServerError && error.code === MAX_TIME_MS_EXPIRED;
}

/** A mongodb+srv:// URI's DNS records (SRV, TXT) that could not be looked up: the driver passes the resolver's error on. */
export function isSrvLookupFailure(error: unknown): boolean {
  const syscall = (error as { syscall?: unknown } | undefined)?.syscall;
  return error instanceof Error && (syscall === "querySrv" || syscall === "queryTxt");
}

/**
 * The server refused the service's credentials as a connection began (wrong password, unknown
 * user, a mechanism it does not take): the driver labels that, as it does a lost connection, as a
 * reason to reset its pool (so isUnavailable takes it for an outage), but no retry mends it.
 */
function refusedCredentials(error: unknown): boolean {
  const m = mongoDriver();
  if (m === undefined || !(error instanceof m.MongoServerError)) return false;
  const code = typeof error.code === "number" ? error.code : undefined;
  return code === AUTHENTICATION_FAILED || (error.hasErrorLabel("HandshakeError") && (code === undefined || !unavailableCodes.has(code)));
}
const AUTHENTICATION_FAILED = 18;

// The codes Node gives a server's TLS certificate it refuses (OpenSSL's verification results,
// and a host name the certificate is not for): an unknown CA, a self-signed certificate, an
// expired or not yet valid one, a name that does not match.
const refusedCertificateCodes = new Set([
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
  "CERT_SIGNATURE_FAILURE",
  "CERT_NOT_YET_VALID",
  "CERT_HAS_EXPIRED",
  "ERROR_IN_CERT_NOT_BEFORE_FIELD",
  "ERROR_IN_CERT_NOT_AFTER_FIELD",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_CHAIN_TOO_LONG",
  "CERT_REVOKED",
  "INVALID_CA",
  "PATH_LENGTH_EXCEEDED",
  "INVALID_PURPOSE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "HOSTNAME_MISMATCH",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** Whether the error or one of its causes (the TLS error under the driver's) has a code that `means` says so of. */
function causeCode(error: unknown, means: (code: string) => boolean): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (means(String((e as { code?: unknown }).code))) return true;
  }
  return false;
}

/**
 * The driver refused the server's TLS certificate: it passes that on as a network error (so
 * isUnavailable takes it for an outage), the TLS error its cause, but no retry mends it.
 */
const refusedCertificate = (error: unknown): boolean => causeCode(error, (code) => refusedCertificateCodes.has(code));

// The codes of OpenSSL's errors (ERR_SSL_*) that a retry may mend: a connection cut or corrupted
// under the handshake, a server's internal error. Any other ERR_SSL_* is a mismatch of the
// service's TLS and the server's (tls=true against a plaintext port, ERR_SSL_WRONG_VERSION_NUMBER;
// no protocol version or cipher in common, ...), which the next try meets again.
const transientTlsCodes = new Set([
  "ERR_SSL_UNEXPECTED_EOF_WHILE_READING",
  "ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC",
  "ERR_SSL_SSLV3_ALERT_BAD_RECORD_MAC",
  "ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR",
]);

/**
 * The TLS handshake failed for a mismatch of the service's TLS and the server's (an OpenSSL
 * ERR_SSL_* code under the network error the driver passes on, as for a refused certificate).
 */
const tlsMismatch = (error: unknown): boolean => causeCode(error, (code) => code.startsWith("ERR_SSL_") && !transientTlsCodes.has(code));

/**
 * Whether a MongoDB store that could not be opened may open when tried again
 * (TESSERA_STORE_START_WAIT_SECONDS): the server unreachable or not answering in time, a
 * retryable or network error, FerretDB without its PostgreSQL (each a StoreUnavailableError of an
 * open with failUnreachable), or the DNS records of a mongodb+srv host not found. Not a refusal
 * that no retry mends: credentials refused, a permission missing, an index that conflicts, a
 * connection string the driver cannot parse (StoreSettingError), a TLS certificate refused, a TLS
 * handshake that failed for a mismatch (a plaintext port, no protocol version or cipher in common).
 */
export function mayOpenLater(error: unknown): boolean {
  if (error instanceof StoreUnavailableError) return !refusedCredentials(error.cause) && !refusedCertificate(error.cause) && !tlsMismatch(error.cause);
  return error instanceof Error && isSrvLookupFailure(error.cause);
}

/**
 * Turns a driver error into the store's vocabulary. `idKey` names the record field stored as
 * `_id` in that collection, so a clash on `_id` reports e.g. "hash" rather than "_id".
 */
export function mapMongoError(error: unknown, idKey: string): unknown {
  if (error instanceof StoreError) return error;
  if (isDuplicateKey(error)) {
    return new DuplicateError(duplicateKey(error, idKey), { cause: error });
  }
  if (isUnavailable(error)) {
    return new StoreUnavailableError("MongoDB unavailable", { cause: error });
  }
  return error;
}

// MongoDB reports keyPattern; FerretDB may only say "index: login_1" in the message.
function duplicateKey(error: MongoServerError, idKey: string): string {
  const pattern = error.keyPattern as Record<string, unknown> | undefined;
  const field = pattern ? Object.keys(pattern)[0] : /index: (\S+?)(?:_-?1)?(?:\s|$)/.exec(error.message)?.[1];
  if (field === undefined || field === "_id" || field === "_id_") return idKey;
  return field;
}
