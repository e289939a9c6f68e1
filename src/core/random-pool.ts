// Random bytes that name things (audit event ids, trace and span ids), never secrets: taken from
// a pool the system's CSPRNG refills 4 KiB at a time, one call per a few hundred ids instead of
// one each (crypto.randomBytes costs about 5 µs a call; crypto.randomUUID pools its bytes the
// same way). Tokens and keys do not come from here: the bytes of later ones would wait in
// memory before they are used.
import { randomFillSync } from "node:crypto";

const pool = Buffer.alloc(4096);
let offset = pool.length;

/** Where the next `bytes` (at most the pool's 4096) random bytes start in the pool, refilled when it has too few left. */
function take(bytes: number): number {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const at = offset;
  offset += bytes;
  return at;
}

/** `bytes` random bytes as lowercase hex. */
export function randomHex(bytes: number): string {
  const at = take(bytes);
  return pool.toString("hex", at, at + bytes);
}

/** `bytes` random bytes copied into `into` from `start`. */
export function fillRandom(into: Buffer, start: number, bytes: number): void {
  const at = take(bytes);
  pool.copy(into, start, at, at + bytes);
}
