// What the transport reports of a connection or stream that failed, as gRPC clients report it,
// and the failures a call is sent again for: a stream the server refused, a call that never
// left, and a side-effect-free call's connection failing before its answer.
import { constants as h2, type ClientHttp2Stream } from "node:http2";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Interceptor, type StreamResponse, type UnaryResponse } from "@connectrpc/connect";
import { causeChain } from "./causes.js";
import { connectionNotEstablished, failedUnanswered, neverSent } from "./connections.js";

/**
 * What a call fails with when its connection was lost before its answer was complete: a server
 * that crashed or restarted, a connection reset in between. gRPC clients report it UNAVAILABLE
 * ("Connection dropped"); connect-node says CANCELED over HTTP/2 (Node closes the session's
 * streams with CANCEL, as if the caller had cancelled) and ABORTED for a reset (its code for a
 * server whose client hung up). The request may have been processed: it is not sent again.
 */
const connectionLost = "the connection to the server was lost before the call was answered";

/**
 * The Node error codes of a connection that was closed or reset under a call, or that the server
 * ended with a GOAWAY naming an error (ERR_HTTP2_SESSION_ERROR: connect-node said INTERNAL).
 */
const lostCodes = new Set(["ECONNRESET", "EPIPE", "ERR_HTTP2_SESSION_ERROR"]);

/**
 * RFC 9113 8.7: a stream the server reset with REFUSED_STREAM was not processed, and may be sent
 * again, whatever the method. Tessera refuses the streams that race its closing of an idle
 * HTTP/2 connection (TESSERA_IDLE_TIMEOUT_MS), and Node's HTTP/2 server those past its
 * concurrent stream bound; connect-node fails them with INTERNAL. A unary or server-streaming
 * call (its one message at hand; nothing has been received when its stream is refused) is sent
 * once more, within its own deadline (the deadline interceptor announces what is left of it, and
 * sends nothing when nothing is); refused again, or a call streaming its own messages (they
 * have been read), it fails UNAVAILABLE, as gRPC maps REFUSED_STREAM. So is a unary or
 * server-streaming call that never left (neverSent: its connection refused, or not established
 * within pingTimeoutMs before its stream was opened), whatever its method. A TLS handshake that
 * failed (the server's certificate refused: unknown CA, wrong host name, expired) is
 * UNAVAILABLE too, as gRPC clients report it, with the TLS error's message, not INTERNAL.
 */
export const transportFailures: Interceptor = (next) => async (req) => {
  if (req.stream && req.method.methodKind !== "server_streaming") {
    try {
      return answerMapped(await next(req));
    } catch (e) {
      throw unavailable(e);
    }
  }
  let attempt = next;
  if (req.stream) {
    // The one request message, read once, for each attempt.
    const messages: unknown[] = [];
    for await (const m of req.message) messages.push(m);
    attempt = async (r) => answerMapped(await next({ ...r, message: (async function* () { yield* messages; })() } as typeof r));
  }
  try {
    return await attempt(req);
  } catch (e) {
    const again = refusedStream(e) || neverSent(e) || (req.method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS && connectionFailedUnanswered(e));
    if (!again || req.signal.aborted) throw unavailable(e);
  }
  try {
    return await attempt(req);
  } catch (e) {
    throw unavailable(e, "the server refused the call's stream twice (REFUSED_STREAM): it was not processed");
  }
};

/**
 * RFC 9110 9.2.2: a request whose method has no side effects may be sent again after its
 * connection failed. A call of a method declared `idempotency_level = NO_SIDE_EFFECTS` whose
 * connection was refused, reset, closed or ended by a GOAWAY (over HTTP/2 connect-node opens a
 * new connection after any of them) before any byte of its answer came is sent once more on a
 * fresh connection; so is one whose connection was not established within pingTimeoutMs after
 * its stream was opened (its request written before the server's SETTINGS came). Any other call
 * may have been processed (a login, a token created), and fails UNAVAILABLE (connectionLost, or
 * the connection not established), unsent again.
 */
function connectionFailedUnanswered(e: unknown): boolean {
  if (!failedUnanswered(e)) return false;
  if (connectionNotEstablished(e)) return true;
  for (const c of causeChain(e)) {
    if (c instanceof ConnectError && c.rawMessage === connectionLost) return true;
    const code = (c as NodeJS.ErrnoException).code ?? "";
    if (lostCodes.has(code) || code === "ECONNREFUSED") return true;
  }
  return false;
}

/** A streaming answer whose messages, read after the call began, fail as the call would have. */
function answerMapped<R extends UnaryResponse | StreamResponse>(res: R): R {
  if (!res.stream) return res;
  const messages = res.message;
  return {
    ...res,
    message: (async function* () {
      try {
        yield* messages;
      } catch (e) {
        throw unavailable(e);
      }
    })(),
  };
}

/**
 * `e`, or UNAVAILABLE when it is a refused stream (with `refused` for message), a failed TLS
 * handshake or a lost connection.
 */
function unavailable(e: unknown, refused = "the server refused the call's stream (REFUSED_STREAM): it was not processed"): unknown {
  if (e instanceof ConnectError && e.code === Code.Unavailable) return e;
  if (refusedStream(e)) return new ConnectError(refused, Code.Unavailable, undefined, undefined, e);
  const tls = tlsFailure(e);
  if (tls !== undefined) return new ConnectError(tls, Code.Unavailable, undefined, undefined, e);
  for (const c of causeChain(e)) {
    if (lostCodes.has((c as NodeJS.ErrnoException).code ?? "")) return new ConnectError(connectionLost, Code.Unavailable, undefined, undefined, e);
  }
  return e;
}

/**
 * Fails the call of an HTTP/2 stream that closed without what connect-node would fail it for,
 * before connect-node's own "close" listener reads the stream's code (its "error" listener takes
 * the first failure):
 * - CANCEL on a session that was destroyed: Node closes a lost connection's streams so (the
 *   caller's own cancellation closes the stream alone, and has failed the call already):
 *   UNAVAILABLE, connectionLost;
 * - NO_ERROR before any answer (RFC 9113 8.1: a server may end a stream so only once its answer
 *   is complete): connect-node waited on for the answer, until the call's deadline or for ever.
 *   INTERNAL, as gRPC clients report a call that ended without a status.
 */
export function closedStreamsReported(stream: ClientHttp2Stream): void {
  const session = stream.session;
  let answered = false;
  stream.once("response", () => (answered = true));
  stream.once("close", () => {
    const failure =
      stream.rstCode === h2.NGHTTP2_CANCEL && session?.destroyed === true
        ? new ConnectError(connectionLost, Code.Unavailable)
        : stream.rstCode === h2.NGHTTP2_NO_ERROR && !answered
          ? new ConnectError("the server closed the call's stream without answering (RST_STREAM NO_ERROR)", Code.Internal)
          : undefined;
    if (failure !== undefined && stream.listenerCount("error") > 0) stream.emit("error", failure);
  });
}

function refusedStream(e: unknown): boolean {
  // connect-node's error when the reset closes the stream first.
  if (e instanceof ConnectError && e.code === Code.Unavailable && e.rawMessage.startsWith("http/2 stream closed with error code REFUSED_STREAM ")) return true;
  // Node's stream error, as the cause of connect-node's INTERNAL.
  for (const c of causeChain(e)) {
    if ((c as NodeJS.ErrnoException).code === "ERR_HTTP2_STREAM_ERROR" && c.message.endsWith(" NGHTTP2_REFUSED_STREAM")) return true;
  }
  return false;
}

/**
 * The certificate verification failures Node reports, by OpenSSL's X509_V_ERR names (Node's
 * crypto_common.cc), and its host name check.
 */
const certificateCodes = new Set([
  "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_CRL", "UNABLE_TO_DECRYPT_CERT_SIGNATURE", "UNABLE_TO_DECRYPT_CRL_SIGNATURE",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY", "CERT_SIGNATURE_FAILURE", "CRL_SIGNATURE_FAILURE", "CERT_NOT_YET_VALID", "CERT_HAS_EXPIRED",
  "CRL_NOT_YET_VALID", "CRL_HAS_EXPIRED", "ERROR_IN_CERT_NOT_BEFORE_FIELD", "ERROR_IN_CERT_NOT_AFTER_FIELD",
  "ERROR_IN_CRL_LAST_UPDATE_FIELD", "ERROR_IN_CRL_NEXT_UPDATE_FIELD", "DEPTH_ZERO_SELF_SIGNED_CERT", "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "CERT_CHAIN_TOO_LONG", "CERT_REVOKED", "INVALID_CA",
  "PATH_LENGTH_EXCEEDED", "INVALID_PURPOSE", "CERT_UNTRUSTED", "CERT_REJECTED", "HOSTNAME_MISMATCH", "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * What a failed TLS handshake says: the server's certificate refused (its verification error)
 * or the handshake failed (OpenSSL's ERR_SSL_*: an alert, a protocol mismatch). Undefined for any
 * other error. The messages name the problem and the host, never a credential.
 */
function tlsFailure(e: unknown): string | undefined {
  for (const c of causeChain(e)) {
    const code = (c as NodeJS.ErrnoException).code;
    if (typeof code !== "string") continue;
    if (certificateCodes.has(code)) return `TLS: the server's certificate was refused: ${c.message} (${code})`;
    if (code.startsWith("ERR_SSL_")) return `TLS: the handshake failed: ${c.message} (${code})`;
  }
  return undefined;
}
