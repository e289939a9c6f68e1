#!/usr/bin/env python3
"""Start-up of two builds side by side: `node DIST/src/start.cjs` (one worker, the embedded store,
a fresh data directory each start), milliseconds from spawn to the first 200 from /healthz, and the
node process's VmRSS and CPU time (user + system) at that moment, in interleaved rounds (A then B, B then A, ...); then the
medians and B/A. The servers are started and timed by bench.py's own code (phase `startup`).

    python3 bench/peers/startup_ab.py DIST_A DIST_B [--rounds N]   (DIST: a built dist/ of this project)

A dist elsewhere than dist/ is built with `npx tsc -p tsconfig.build.json --outDir DIR/dist &&
node scripts/bundle.mjs DIR/dist`, DIR inside the project (so that it finds package.json and
node_modules). The machine's load average is printed with each round: only ratios are figures.
"""
import os, statistics, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402


def start_once(dist, port):
    d = tempfile.mkdtemp(prefix="ts-ab-", dir=f"{B.ROOT}/data")
    env = B.ts_env(port, 1, d)
    s = B.Server(f"tessera {dist}", ["node", f"{dist}/src/start.cjs"], B.TS_DIR, env, f"http://127.0.0.1:{port}/healthz", "tessera-ab")
    s.cleanup = [d]
    s.start()
    rss_kb = B.proc_mem(s.pid).get("VmRSS", 0)
    cpu_ms = round(B.proc_cpu(s.pid) * 1000)
    s.stop()
    return s.startup_ms, rss_kb, cpu_ms


def main():
    args = [a for a in sys.argv[1:]]
    rounds = 15
    if "--rounds" in args:
        i = args.index("--rounds")
        rounds = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        print(__doc__)
        raise SystemExit(2)
    dists = [os.path.abspath(a) for a in args]
    for d in dists:
        B.need(f"{d}/src/start.cjs", "build it first")
    os.makedirs(f"{B.ROOT}/data", exist_ok=True)
    B.RES = tempfile.mkdtemp(prefix="startup-ab-", dir=os.environ.get("TMPDIR", "/tmp"))
    B.LOG = open(f"{B.RES}/log.txt", "a")
    got = {0: [], 1: []}
    try:
        start_once(dists[0], B.TS_PORT)  # a first start of each: file cache warm for both
        start_once(dists[1], B.TS_PORT)
        for rnd in range(1, rounds + 1):
            order = (0, 1) if rnd % 2 else (1, 0)
            for side in order:
                ms, rss, cpu = start_once(dists[side], B.TS_PORT)
                got[side].append((ms, rss, cpu))
                B.log(f"  r{rnd} {'AB'[side]}: {ms} ms to healthy, VmRSS {rss / 1024:.1f} MiB, CPU {cpu} ms; load {os.getloadavg()[0]:.2f}")
                time.sleep(0.3)
    finally:
        B.stop_all()
    print(f"\n{'':4} {'ms median':>10} {'VmRSS MiB median':>17} {'CPU ms median':>14}   ({rounds} rounds; load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    for side in (0, 1):
        ms, rss, cpu = (statistics.median(x[i] for x in got[side]) for i in range(3))
        print(f"{'AB'[side]:4} {ms:>10.0f} {rss / 1024:>17.1f} {cpu:>14.0f}   {dists[side]}")
    for i, what in enumerate(("time", "VmRSS", "CPU")):
        print(f"B/A {what}, median of the rounds' ratios: {statistics.median(b[i] / a[i] for a, b in zip(got[0], got[1])):.3f}")


if __name__ == "__main__":
    main()
