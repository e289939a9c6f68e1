// The final envelope of an enveloped response body: gRPC-Web carries its trailers there (flag
// 0x80), a Connect stream its end-stream message (flag 0x02). To rewrite it without buffering the
// stream, the body is passed through chunk by chunk while only the 5-byte envelope prefixes are
// read to follow the boundaries; bytes are held back only for a prefix cut by a chunk boundary
// (at most 4) and from the flagged envelope on (the last one, a few hundred bytes). Where the
// chunks happen to end does not matter.
import type { EnvelopedMessage } from "@connectrpc/connect/protocol";

const prefixLength = 5;
const empty = new Uint8Array(0);

/** Follows envelope boundaries through a body fed chunk by chunk. */
export class FinalEnvelopeScanner {
  private readonly prefix = new Uint8Array(prefixLength);
  private readonly prefixView = new DataView(this.prefix.buffer);
  /** Bytes of the current envelope's prefix seen so far (it may span chunks). */
  private prefixSeen = 0;
  /** Payload bytes of the current envelope still to come. */
  private payloadLeft = 0;
  /** The flagged envelope, from its prefix on, once found. */
  private final: Uint8Array[] | undefined;

  /** `flag`: the bit that marks the final envelope. */
  constructor(private readonly flag: number) {}

  /** Takes the next chunk; returns the bytes that can be sent now (possibly none). */
  push(chunk: Uint8Array): Uint8Array {
    if (this.final) {
      this.final.push(chunk);
      return empty;
    }
    let released: Uint8Array | undefined; // prefix bytes held back from the previous chunk
    let pos = 0;
    while (pos < chunk.length) {
      if (this.payloadLeft > 0) {
        const n = Math.min(this.payloadLeft, chunk.length - pos);
        pos += n;
        this.payloadLeft -= n;
        continue;
      }
      // A prefix starts here, or continues from the previous chunk (then pos is 0).
      const start = pos;
      const carried = this.prefixSeen;
      const n = Math.min(prefixLength - carried, chunk.length - pos);
      this.prefix.set(chunk.subarray(pos, pos + n), carried);
      this.prefixSeen += n;
      pos += n;
      if (this.prefixSeen < prefixLength) {
        // Cut by the chunk boundary: hold its bytes (in `prefix`) until the next chunk.
        return join(released, chunk.subarray(0, start));
      }
      this.prefixSeen = 0;
      if ((this.prefix[0]! & this.flag) === this.flag) {
        this.final = [this.prefix.slice(0, carried), chunk.subarray(start)];
        return join(released, chunk.subarray(0, start));
      }
      if (carried > 0) released = this.prefix.slice(0, carried);
      this.payloadLeft = this.prefixView.getUint32(1);
    }
    return join(released, chunk);
  }

  /**
   * At the end of the body: the bytes still held, and the flagged envelope they hold when it is
   * one whole envelope with nothing after it.
   */
  end(): { held: Uint8Array; envelope?: EnvelopedMessage } {
    if (!this.final) return { held: this.prefix.slice(0, this.prefixSeen) };
    const held = this.final.reduce(join);
    const length = held.length >= prefixLength ? new DataView(held.buffer, held.byteOffset, held.byteLength).getUint32(1) : -1;
    if (held.length !== prefixLength + length) return { held };
    return { held, envelope: { flags: held[0]!, data: held.subarray(prefixLength) } };
  }
}

/**
 * `body` with its final envelope (marked by `flag`) replaced by what `rewrite` returns; when
 * it returns undefined or fails, or there is no such envelope, the bytes go out unchanged. A
 * write error (`throw`) and an early stop (`return`) reach the body's own iterator, as they
 * would without the wrapper.
 */
export function rewriteFinalEnvelope(
  body: AsyncIterable<Uint8Array>,
  flag: number,
  rewrite: (envelope: EnvelopedMessage) => Promise<Uint8Array | undefined>,
): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
      const it = body[Symbol.asyncIterator]();
      const scanner = new FinalEnvelopeScanner(flag);
      let ended = false;
      return {
        async next(): Promise<IteratorResult<Uint8Array>> {
          while (!ended) {
            const r = await it.next();
            if (r.done === true) {
              ended = true;
              const { held, envelope } = scanner.end();
              const out = (envelope && (await rewrite(envelope).catch(() => undefined))) ?? held;
              if (out.length > 0) return { done: false, value: out };
              break;
            }
            const out = scanner.push(r.value);
            if (out.length > 0) return { done: false, value: out };
          }
          return { done: true, value: undefined };
        },
        throw: (e?: unknown) => it.throw?.(e) ?? Promise.reject(e),
        return: (v?: unknown) => it.return?.(v) ?? Promise.resolve({ done: true, value: undefined }),
      };
    },
  };
}

function join(a: Uint8Array | undefined, b: Uint8Array): Uint8Array {
  if (!a || a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
