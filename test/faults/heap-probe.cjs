// Preloaded into a Tessera child process by the fault tests (`node --require
// ./test/faults/heap-probe.cjs <the compiled entry>`): every 200 ms it sends the process's memory
// figures over the IPC channel, so a test can watch heap and RSS of the server it is hurting. It
// only reads process.memoryUsage(); it changes nothing in the server. Not in a follower of
// TESSERA_WORKERS (TESSERA_WORKER_ID set): its channel is the first worker's, not the test's, and
// unref'ing it would let the follower exit 0 while it waits on that channel for the port.
// CommonJS, loaded with --require: it reads its file synchronously, so libuv's pool is still
// unused when start.cjs lowers its priority.
if (typeof process.send === "function" && process.env.TESSERA_WORKER_ID === undefined) {
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    try {
      process.send({ probe: "memory", at: Date.now(), rss: m.rss, heapUsed: m.heapUsed, external: m.external });
    } catch {
      // the parent went away: nothing to report to
    }
  }, 200);
  timer.unref();
  // The IPC channel must not keep a stopping server alive.
  process.channel?.unref();
}
