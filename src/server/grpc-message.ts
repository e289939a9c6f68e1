// The `grpc-message` trailer as the gRPC spec encodes it (PROTOCOL-HTTP2.md, "Status-Message"):
// UTF-8, then every byte outside 0x20-0x7E, and "%", as %XX. connect-es uses
// encodeURIComponent, which escapes ":" and "," too; @grpc/grpc-js decodes with decodeURI, which
// leaves %3A and %2C in place, so a grpc-js caller would read "Missing fields%3A [...]". A
// spec-encoded message decodes to itself with decodeURI and decodeURIComponent alike.

const printable = /^[\x20-\x24\x26-\x7e]*$/;

/** Percent-encodes `message` as the gRPC spec says. */
export function encodeGrpcMessage(message: string): string {
  if (printable.test(message)) return message;
  let out = "";
  for (const b of Buffer.from(message, "utf8")) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}
