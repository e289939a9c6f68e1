// A stream the server refused, as gRPC clients report it, and sent again when it can be.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/**
 * RFC 9113 8.7: a stream the server reset with REFUSED_STREAM was not processed, and may be sent
 * again, whatever the method. Tessera refuses the streams that race its closing of an idle
 * HTTP/2 connection (TESSERA_IDLE_TIMEOUT_MS), and Node's HTTP/2 server those past its
 * concurrent stream bound; connect-node fails them with INTERNAL. A unary or server-streaming
 * call (its one message at hand; nothing has been received when its stream is refused) is sent
 * once more, within its own deadline (the deadline interceptor announces what is left of it, and
 * sends nothing when nothing is); refused again, or a call streaming its own messages (they
 * have been read), it fails UNAVAILABLE, as gRPC maps REFUSED_STREAM.
 */
export const transportFailures: Interceptor = (next) => async (req) => {
  if (req.stream && req.method.methodKind !== "server_streaming") {
    try {
      return await next(req);
    } catch (e) {
      throw unavailable(e);
    }
  }
  let attempt = next;
  if (req.stream) {
    // The one request message, read once, for each attempt.
    const messages: unknown[] = [];
    for await (const m of req.message) messages.push(m);
    attempt = (r) => next({ ...r, message: (async function* () { yield* messages; })() } as typeof r);
  }
  try {
    return await attempt(req);
  } catch (e) {
    if (!refusedStream(e) || req.signal.aborted) throw unavailable(e);
  }
  try {
    return await attempt(req);
  } catch (e) {
    throw unavailable(e, "the server refused the call's stream twice (REFUSED_STREAM): it was not processed");
  }
};

/** `e`, or UNAVAILABLE when it is a refused stream (with `refused` for message). */
function unavailable(e: unknown, refused = "the server refused the call's stream (REFUSED_STREAM): it was not processed"): unknown {
  if (e instanceof ConnectError && e.code === Code.Unavailable) return e;
  if (refusedStream(e)) return new ConnectError(refused, Code.Unavailable, undefined, undefined, e);
  return e;
}

function refusedStream(e: unknown): boolean {
  // connect-node's error when the reset closes the stream first.
  if (e instanceof ConnectError && e.code === Code.Unavailable && e.rawMessage.startsWith("http/2 stream closed with error code REFUSED_STREAM ")) return true;
  // Node's stream error, as the cause of connect-node's INTERNAL.
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    if ((c as NodeJS.ErrnoException).code === "ERR_HTTP2_STREAM_ERROR" && c.message.endsWith(" NGHTTP2_REFUSED_STREAM")) return true;
  }
  return false;
}
