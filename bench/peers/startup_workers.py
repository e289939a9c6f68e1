#!/usr/bin/env python3
"""Start-up under TESSERA_WORKERS, builds side by side: `node DIST/src/start.cjs` (the embedded
store, a fresh data directory and a free port each start), milliseconds from spawn to the first
200 from /healthz (the first worker's answer) and to each worker's "listening" line (it is handed
connections from then on), in interleaved rounds (the order rotating each round); then per build
the medians of the first healthy answer and of "every worker serves" (the last "listening").

    python3 bench/peers/startup_workers.py [--rounds N] [--workers N] SPEC [SPEC ...]
        SPEC: DIST[,VAR=VALUE...]   a built dist/ of this project, and variables set for its starts
                                    (TESSERA_WORKERS among them overrides --workers for that build)

Defaults: 9 rounds, 2 workers. A dist elsewhere than dist/ is built as for startup_ab.py (`npx tsc
-p tsconfig.build.json --outDir DIR/dist && node scripts/bundle.mjs DIR/dist`, DIR inside the
project). Before each round the CPU others use is sampled (bench.py's wait_quiet, 2 s); above
BENCH_QUIET % (default 15) the round waits for a quieter moment, up to a minute, and goes on
anyway (its top snapshots in a log under TMPDIR). Each round's line gives
that share and the load average: only ratios between builds of the same rounds are figures.
"""
import json, os, signal, socket, statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_once(dist, extra, workers):
    """(ms to the first healthy answer, {worker: ms to its "listening" line})."""
    workers = int(extra.get("TESSERA_WORKERS", workers))
    d = tempfile.mkdtemp(prefix="ts-sw-", dir=f"{B.ROOT}/data")
    port = free_port()
    env = B.ts_env(port, workers, d, {"TESSERA_LOG_LEVEL": "info", **extra})
    t0 = time.monotonic()
    p = subprocess.Popen(["node", f"{dist}/src/start.cjs"], cwd=B.TS_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    B.STARTED.append(p)
    listening, lines = {}, []
    every = threading.Event()

    def read():
        for line in p.stdout:
            at = (time.monotonic() - t0) * 1000
            lines.append(line)
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if isinstance(m, dict) and m.get("msg") == "listening":
                listening[m.get("worker", 1)] = round(at)
                if len(listening) == workers:
                    every.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while B.http_status(f"http://127.0.0.1:{port}/healthz", timeout=1) != 200:
            if p.poll() is not None:
                raise RuntimeError(f"exited with {p.returncode}:\n{''.join(lines[-20:])}")
            if time.monotonic() - t0 > 60:
                raise RuntimeError("not healthy after 60 s")
            time.sleep(0.005)
        healthy = round((time.monotonic() - t0) * 1000)
        if not every.wait(30):
            raise RuntimeError(f"only workers {sorted(listening)} listening after 30 s")
        return healthy, dict(listening)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        reader.join(5)
        subprocess.run(["rm", "-rf", d], check=False)


def main():
    args = sys.argv[1:]
    opts = {"--rounds": 9, "--workers": 2}
    for k in opts:
        if k in args:
            i = args.index(k)
            opts[k] = int(args[i + 1])
            del args[i:i + 2]
    rounds, workers = opts["--rounds"], opts["--workers"]
    if not args:
        print(__doc__)
        raise SystemExit(2)
    specs = []
    for a in args:
        dist, *pairs = a.split(",")
        dist = os.path.abspath(dist)
        B.need(f"{dist}/src/start.cjs", "build it first")
        specs.append((a, dist, dict(kv.split("=", 1) for kv in pairs)))
    os.makedirs(f"{B.ROOT}/data", exist_ok=True)
    B.RES = tempfile.mkdtemp(prefix="startup-workers-", dir=os.environ.get("TMPDIR", "/tmp"))
    B.LOG = open(f"{B.RES}/log.txt", "a")  # B.wait_quiet's top snapshots
    got = {i: [] for i in range(len(specs))}
    try:
        for _, dist, extra in specs:  # a first start of each: the file cache warm for all
            start_once(dist, extra, workers)
        for rnd in range(1, rounds + 1):
            other, _ = B.wait_quiet([], f"round {rnd}", max_wait=60)
            n = len(specs)
            for side in [(rnd - 1 + k) % n for k in range(n)]:
                name, dist, extra = specs[side]
                healthy, listening = start_once(dist, extra, workers)
                got[side].append((healthy, max(listening.values())))
                each = " ".join(f"w{w} {ms}" for w, ms in sorted(listening.items()))
                print(f"r{rnd} {name}: healthy {healthy} ms; listening {each} ms; others {other:.0f}% before the round, load {os.getloadavg()[0]:.2f}", flush=True)
                time.sleep(0.3)
    finally:
        B.stop_all()
    print(f"\n{workers} workers, {rounds} rounds; load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'ms to first healthy':>20} {'ms every worker serves':>23}   build")
    for side, (name, _, _) in enumerate(specs):
        h = [x[0] for x in got[side]]
        e = [x[1] for x in got[side]]
        print(f"{statistics.median(h):>8.0f} ({min(h)}..{max(h)}) {statistics.median(e):>11.0f} ({min(e)}..{max(e)})   {name}")


if __name__ == "__main__":
    main()
