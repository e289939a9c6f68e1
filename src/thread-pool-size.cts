// The size of libuv's thread pool, as libuv reads UV_THREADPOOL_SIZE. CommonJS, like the entry
// (start.cts), which runs before the service's ES modules are loaded and imports none of them:
// the entry and config.ts read the variable with this one function.

/**
 * The threads of libuv's pool (UV_THREADPOOL_SIZE, default 4), read as libuv reads it: C's atoi
 * into an unsigned int. atoi skips the C locale's white space only (not a no-break space, which
 * JavaScript's parseInt skips), takes a sign and decimal digits, saturates at a 64-bit long and
 * keeps the low 32 bits; then 0 (or no number, or empty) is 1, and above 1024 (a negative number
 * too) is 1024. So " 4" and "4abc" are 4, "-1" is 1024, and "4294967297" is 1, as the threads
 * libuv starts show.
 */
export function threadPoolSize(env: NodeJS.ProcessEnv): number {
  const raw = env.UV_THREADPOOL_SIZE;
  if (raw === undefined) return 4;
  const digits = /^[ \t\n\v\f\r]*([+-]?[0-9]+)/.exec(raw)?.[1];
  const value = digits === undefined ? 0n : BigInt(digits);
  // strtol saturates at a long's bounds; atoi's int keeps the low 32 bits, unsigned in libuv.
  const longMax = 2n ** 63n - 1n;
  const long = value > longMax ? longMax : value < -longMax - 1n ? -longMax - 1n : value;
  const threads = Number(BigInt.asUintN(32, long));
  return threads === 0 ? 1 : Math.min(threads, 1024);
}
