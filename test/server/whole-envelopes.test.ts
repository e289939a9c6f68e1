// The enveloped body of a gRPC, gRPC-Web or Connect streaming call on its way to connect-es,
// whose decoder adds up the sizes of the chunks it holds for each chunk it is given: a message
// that arrived in 60 000 one-byte pieces (HTTP/2 DATA frames, HTTP/1.1 chunks, gRPC-Web text
// segments) cost it time quadratic in that number, a minute on Health/Watch. A message now
// reaches it whole, in one chunk; a prefix and what ends a message reach it as they arrive.
import { strict as assert } from "node:assert";
import { ConnectError } from "@connectrpc/connect";
import { wholeEnvelopes } from "../../src/server/dispatch.js";

async function* pieces(bytes: Buffer, sizes: number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length]!;
    yield bytes.subarray(at, at + size);
    at += size;
  }
}

async function handedOn(body: AsyncIterable<Uint8Array>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of wholeEnvelopes(body)) out.push(Buffer.from(chunk));
  return out;
}

function envelope(flags: number, message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(flags, 0);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

describe("enveloped bodies on their way to connect-es", () => {
  it("a 60 000-byte message in one-byte pieces: its prefix's bytes as they come, the message in one chunk", async () => {
    const message = Buffer.alloc(60_000, 7);
    const chunks = await handedOn(pieces(envelope(0, message), [1]));
    assert.deepEqual(
      chunks.map((c) => c.length),
      [1, 1, 1, 1, 1, 60_000],
    );
    assert.deepEqual(Buffer.concat(chunks), envelope(0, message));
  });

  it("what ends a message and the next prefix go on together; the rest of a message waits for its end", async () => {
    const body = Buffer.concat([envelope(0, Buffer.from("abc")), envelope(0, Buffer.from("defgh")), envelope(0x80, Buffer.alloc(0))]);
    // 6 bytes: a prefix and a byte; 4: two bytes of the first message, the next prefix's first
    // two; 4: its last three and "d"; 4: "efgh" (the end); 5: the last, empty envelope.
    const chunks = await handedOn(pieces(body, [6, 4, 4, 4, 5]));
    assert.deepEqual(
      chunks.map((c) => c.toString("latin1")),
      [
        "\x00\x00\x00\x00\x03",
        "abc\x00\x00",
        "\x00\x00\x05",
        "defgh",
        "\x80\x00\x00\x00\x00",
      ],
    );
  });

  it("a body that ends inside a message: every byte handed on, then the incomplete envelope", async () => {
    const body = envelope(0, Buffer.alloc(10, 1)).subarray(0, 12);
    const out: Buffer[] = [];
    await assert.rejects(async () => {
      for await (const chunk of wholeEnvelopes(pieces(body, [1]))) out.push(Buffer.from(chunk));
    }, (e: unknown) => e instanceof ConnectError && e.rawMessage === "protocol error: incomplete envelope");
    assert.deepEqual(
      out.map((c) => c.length),
      [1, 1, 1, 1, 1, 7],
    );
  });
});
