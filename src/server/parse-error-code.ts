// connect-es answers a request whose protobuf bytes do not parse with INTERNAL ("parse binary:
// ..."), before any interceptor runs. The caller sent a bad message: connect-go (the reference
// implementation) says INVALID_ARGUMENT, and an INTERNAL would page whoever watches error rates
// for what is a client's mistake. This wrapper rewrites exactly that error, in each protocol's
// framing: gRPC trailers, the gRPC-Web trailer frame, a Connect unary JSON error (500 -> 400)
// and a Connect end-stream envelope. Everything else passes through untouched.
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";

const grpcParseMessage = /^parse(%20| )binary/;
const connectParseError = /"code":"internal","message":"parse binary/;

/** Replaces `handlers[i]` in place (the Connect adapter reads the array after `routes`). */
export function rewriteParseErrors(handlers: UniversalHandler[]): void {
  for (let i = 0; i < handlers.length; i++) handlers[i] = wrap(handlers[i]!);
}

function wrap(h: UniversalHandler): UniversalHandler {
  const fn = async (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
    const res = await h(req);
    if (res.status === 500 && (res.header?.get("content-type") ?? "").startsWith("application/json") && res.body) {
      // Connect unary error: a small JSON body.
      const bytes = await collect(res.body);
      const text = new TextDecoder().decode(bytes);
      if (connectParseError.test(text)) {
        const out = new TextEncoder().encode(text.replace('"code":"internal"', '"code":"invalid_argument"'));
        if (res.header?.has("content-length")) res.header.set("content-length", String(out.length));
        return { ...res, status: 400, body: once(out) };
      }
      return { ...res, body: once(bytes) };
    }
    if (!res.body) return res;
    const body = res.body;
    return {
      ...res,
      body: (async function* () {
        for await (const chunk of body) yield rewriteEnvelopes(chunk);
        const t = res.trailer;
        if (t?.get("grpc-status") === "13" && grpcParseMessage.test(t.get("grpc-message") ?? "")) t.set("grpc-status", "3");
      })(),
    };
  };
  return Object.assign(fn, h);
}

/** gRPC-Web trailer frames (flag 0x80) and Connect end-stream envelopes (flag 0x02). */
function rewriteEnvelopes(chunk: Uint8Array): Uint8Array {
  if (chunk.length < 5 || (chunk[0] !== 0x80 && chunk[0] !== 0x02)) return chunk;
  const len = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength).getUint32(1);
  if (chunk.length !== 5 + len) return chunk;
  const text = new TextDecoder().decode(chunk.subarray(5));
  let out: string;
  if (chunk[0] === 0x80 && /grpc-status: ?13\r\n/.test(text) && /grpc-message: ?parse(%20| )binary/.test(text)) {
    out = text.replace(/grpc-status: ?13/, "grpc-status: 3");
  } else if (chunk[0] === 0x02 && connectParseError.test(text)) {
    out = text.replace('"code":"internal"', '"code":"invalid_argument"');
  } else {
    return chunk;
  }
  const payload = new TextEncoder().encode(out);
  const framed = new Uint8Array(5 + payload.length);
  framed[0] = chunk[0]!;
  new DataView(framed.buffer).setUint32(1, payload.length);
  framed.set(payload, 5);
  return framed;
}

async function collect(body: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const p of body) {
    parts.push(p);
    n += p.length;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}
