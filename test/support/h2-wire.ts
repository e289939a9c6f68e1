// A hand-made HTTP/2 client on a raw socket (node:net, or node:tls with ALPN h2), for the tests
// that must send what no real client sends: streams reset as soon as they open, CONTINUATION
// frames without end, SETTINGS and PING floods, a flow-control window that never opens, frames
// that are stream errors for the server (a request body past its content-length, a
// WINDOW_UPDATE of 0).
// It writes frames as given and records what the server sends back; it decodes no header
// block (HPACK) — assertions read frame types, stream ids and error codes.
import net from "node:net";
import tls from "node:tls";

export const FrameType = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
export const ErrorCode = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, FLOW_CONTROL_ERROR: 3, STREAM_CLOSED: 5, FRAME_SIZE_ERROR: 6, CANCEL: 8, COMPRESSION_ERROR: 9, ENHANCE_YOUR_CALM: 11 } as const;
export const Setting = { HEADER_TABLE_SIZE: 1, ENABLE_PUSH: 2, MAX_CONCURRENT_STREAMS: 3, INITIAL_WINDOW_SIZE: 4, MAX_FRAME_SIZE: 5 } as const;

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h.writeUInt8(type, 3);
  h.writeUInt8(flags, 4);
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** An HPACK integer with an `n`-bit prefix (RFC 7541 5.1). */
function hpackInt(value: number, n: number, first: number): Buffer {
  const max = (1 << n) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  value -= max;
  while (value >= 128) {
    out.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return Buffer.from(out);
}

/** A header block of "literal header field without indexing, new name" entries (no Huffman). */
export function hpack(headers: Array<[string, string]>): Buffer {
  const str = (s: string) => {
    const b = Buffer.from(s, "latin1");
    return Buffer.concat([hpackInt(b.length, 7, 0x00), b]);
  };
  return Buffer.concat(headers.flatMap(([k, v]) => [Buffer.from([0x00]), str(k), str(v)]));
}

/** An HPACK dynamic table size update to `size` (RFC 7541 6.3), as a header block of its own. */
export function hpackTableSizeUpdate(size: number): Buffer {
  return hpackInt(size, 5, 0x20);
}

export function settingsPayload(entries: Array<[number, number]>): Buffer {
  const p = Buffer.alloc(6 * entries.length);
  entries.forEach(([id, value], i) => {
    p.writeUInt16BE(id, 6 * i);
    p.writeUInt32BE(value, 6 * i + 2);
  });
  return p;
}

export interface ReceivedFrame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

export interface WireOptions {
  /** Our SETTINGS (sent right after the preface). */
  settings?: Array<[number, number]>;
  /** Acknowledge the server's SETTINGS (a real client does); default true. */
  ackSettings?: boolean;
  /** Connect with TLS (ALPN h2), trusting this CA. */
  tlsCa?: Buffer;
}

export class H2Wire {
  readonly frames: ReceivedFrame[] = [];
  closed = false;
  private buf: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  private constructor(
    readonly socket: net.Socket,
    private readonly opts: WireOptions,
  ) {
    socket.on("data", (d: Buffer) => this.read(d));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
  }

  /** Connects, sends the preface and our SETTINGS, and waits for the server's SETTINGS. */
  static async open(port: number, opts: WireOptions = {}): Promise<H2Wire> {
    const socket = opts.tlsCa
      ? tls.connect({ host: "127.0.0.1", port, ca: opts.tlsCa, servername: "localhost", ALPNProtocols: ["h2"] })
      : net.connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once(opts.tlsCa ? "secureConnect" : "connect", () => resolve());
      socket.once("error", reject);
    });
    const w = new H2Wire(socket, opts);
    w.write(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    w.write(frame(FrameType.SETTINGS, 0, 0, settingsPayload(opts.settings ?? [])));
    await w.until((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK), 5000);
    return w;
  }

  write(bytes: Buffer): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(bytes);
  }

  /** Resolves once the socket can take more writes (or is gone). */
  async drained(): Promise<void> {
    if (this.socket.destroyed || !this.socket.writableNeedDrain) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  headers(stream: number, headers: Array<[string, string]>, opts: { endStream?: boolean; endHeaders?: boolean } = {}): Buffer {
    const flags = (opts.endStream ? Flag.END_STREAM : 0) | (opts.endHeaders === false ? 0 : Flag.END_HEADERS);
    return frame(FrameType.HEADERS, flags, stream, hpack(headers));
  }

  /** The first frame received (from now or before) that matches, or undefined at the timeout / close. */
  async until(match: (f: ReceivedFrame) => boolean, timeoutMs: number): Promise<ReceivedFrame | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find(match);
      if (f || this.closed) return f;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves true when the server closed the connection within `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    await this.until(() => false, timeoutMs);
    return this.closed;
  }

  /** The server's GOAWAY, if one came: its error code and last stream id. */
  goaway(): { code: number; lastStream: number } | undefined {
    const f = this.frames.find((x) => x.type === FrameType.GOAWAY);
    return f && { lastStream: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) };
  }

  resets(): Array<{ stream: number; code: number }> {
    return this.frames.filter((f) => f.type === FrameType.RST_STREAM).map((f) => ({ stream: f.stream, code: f.payload.readUInt32BE(0) }));
  }

  count(type: number, flags?: number): number {
    return this.frames.filter((f) => f.type === type && (flags === undefined || (f.flags & flags) === flags)).length;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private read(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    let got = false;
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const f: ReceivedFrame = {
        type: this.buf[3]!,
        flags: this.buf[4]!,
        stream: this.buf.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.buf.subarray(9, 9 + len)),
      };
      this.buf = this.buf.subarray(9 + len);
      // DATA payloads are not kept (a flood would hold them all); their size is.
      this.frames.push(f.type === FrameType.DATA ? { ...f, payload: Buffer.alloc(0) } : f);
      if (f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK) && this.opts.ackSettings !== false) {
        this.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
      }
      got = true;
    }
    if (got) this.wake();
  }
}

/** The request headers of a unary gRPC call on `path` (h2c or h2). */
export function grpcHeaders(path: string, extra: Array<[string, string]> = []): Array<[string, string]> {
  return [
    [":method", "POST"],
    [":scheme", "http"],
    [":authority", "localhost"],
    [":path", path],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ...extra,
  ];
}
