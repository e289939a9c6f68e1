// gRPC status messages as the gRPC spec encodes them. connect-node percent-encodes the
// `grpc-message` trailer with encodeURIComponent, so ":" and "," travel as %3A and %2C; the spec
// escapes only bytes outside 0x20-0x7E and "%", and @grpc/grpc-js decodes with decodeURI, which
// leaves %3A and %2C in place — a grpc-js caller would read "Missing fields%3A [...]". Re-encoding
// the trailer the spec's way gives every client the message verbatim.
import type http from "node:http";
import type http2 from "node:http2";

/** Percent-encodes `message` as the gRPC spec says (UTF-8; bytes outside 0x20-0x7E, and "%"). */
export function encodeGrpcMessage(message: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = "";
  for (const b of Buffer.from(message, "utf8")) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** For gRPC (not gRPC-Web) responses over HTTP/2: rewrites `grpc-message` on its way out. */
export function respecGrpcMessage(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void {
  if (req.httpVersionMajor !== 2) return;
  const ct = req.headers["content-type"];
  if (typeof ct !== "string" || !ct.startsWith("application/grpc") || ct.startsWith("application/grpc-web")) return;
  const addTrailers = res.addTrailers.bind(res) as (headers: http.OutgoingHttpHeaders) => void;
  res.addTrailers = (headers: http.OutgoingHttpHeaders) => {
    const m = headers["grpc-message"];
    if (typeof m === "string") {
      let decoded = m;
      try {
        decoded = decodeURIComponent(m);
      } catch {
        // not percent-encoded as expected: send it as it is
      }
      headers["grpc-message"] = encodeGrpcMessage(decoded);
    }
    addTrailers(headers);
  };
}
