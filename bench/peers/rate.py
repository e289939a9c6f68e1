#!/usr/bin/env python3
"""Token checks at a fixed, everyday rate: CPU per call of the service with V8's interrupt budget
as Tessera sets it once listening (src/tier-up.ts) against V8's own default (the same build,
started `node --interrupt-budget=67584 dist/src/start.cjs`: a budget on node's command line is
kept), in interleaved rounds (the order alternating); then the medians and the ratio.

    python3 bench/peers/rate.py [--rounds N] [--rate CALLS_PER_S] [--seconds S]

Each round and side: a fresh start (one worker, the embedded store, a fresh data directory), one
user logged in, then h2load at the fixed rate (4 connections, CALLS_PER_S / 4 each) for 5 s of
warm-up and S s measured, over REST (`GET /session`, HTTP/1.1) and gRPC (`GetSession`, h2c); CPU
of the whole process (/proc/PID/stat, ended threads too) and of the event loop alone. At 40
calls a second and below, the run is too short to amortize the optimizing compiler's one-time
work: the event loop's figure is the one that shows the steady state. Build first (`npm run
build`).
"""
import os, re, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402

V8_DEFAULT = ("--interrupt-budget=67584",)  # V8's default in Node 20 (node --v8-options)
CONNS = 4


def ticks(pid):
    """(event loop, whole process) CPU ticks of `pid`: the main thread's /proc entry, and the
    process's, which also counts threads that have ended (a sum over /proc/PID/task would not)."""
    def utime_stime(path):
        f = open(path).read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    return utime_stime(f"/proc/{pid}/task/{pid}/stat"), utime_stime(f"/proc/{pid}/stat")


def h2load_at(url, headers, rate, secs, extra):
    argv = ["h2load", "-c", str(CONNS), "--rps", str(max(1, rate // CONNS)), "-D", str(secs), *extra]
    for h in headers:
        argv += ["-H", h]
    out = subprocess.run(argv + [url], capture_output=True, text=True).stdout
    done = int(re.search(r"requests: \d+ total, \d+ started, (\d+) done", out).group(1))
    ok = int(re.search(r"status codes: (\d+) 2xx", out).group(1))
    return done, ok


def one(flags, rate, secs):
    srv = B.tessera(workers=1, seed=False, node_flags=flags)
    srv.start()
    try:
        users = f"{B.RES}/users.json"
        B.prep_users("ts", srv.url, 1, users, f"rate{time.time_ns()}")
        h = ["x-koms-clientid: web", f"authorization: Bearer {B.token(users)}"]
        pid = srv.server_pids()[0]
        got = {}
        for proto, url, headers, extra in (("REST", f"{srv.url}/session", h, ["--h1"]),
                                           ("gRPC", srv.url + B.GET_SESSION, h + B.GH, ["-d", B.empty_grpc()])):
            h2load_at(url, headers, rate, 5, extra)  # warm-up
            l0, t0 = ticks(pid)
            done, ok = h2load_at(url, headers, rate, secs, extra)
            l1, t1 = ticks(pid)
            if ok != done:
                raise RuntimeError(f"{proto}: {done - ok} of {done} calls failed")
            got[proto] = (1e6 * (l1 - l0) / B.CLK / done, 1e6 * (t1 - t0) / B.CLK / done)
        return got
    finally:
        srv.stop()


def main():
    args = sys.argv[1:]
    opt = lambda name, default: int(args[args.index(name) + 1]) if name in args else default
    rounds, rate, secs = opt("--rounds", 3), opt("--rate", 200), opt("--seconds", 20)
    B.need("dist/src/start.cjs", "build it first (npm run build)")
    os.makedirs(f"{B.ROOT}/data", exist_ok=True)
    B.RES = tempfile.mkdtemp(prefix="rate-", dir=os.environ.get("TMPDIR", "/tmp"))
    B.LOG = open(f"{B.RES}/log.txt", "a")
    sides = (("V8's default budget", V8_DEFAULT), ("Tessera's (8192)", ()))
    got = {0: [], 1: []}
    try:
        for rnd in range(1, rounds + 1):
            for side in ((0, 1) if rnd % 2 else (1, 0)):
                r = one(sides[side][1], rate, secs)
                got[side].append(r)
                B.log(f"  r{rnd} {sides[side][0]}: " + ", ".join(f"{p} {loop:.0f} / {tot:.0f} us" for p, (loop, tot) in r.items()))
    finally:
        B.stop_all()
    print(f"\nToken checks at {rate} calls/s ({CONNS} connections), {rounds} rounds, CPU per call in us (event loop / all threads), medians:")
    for proto in ("REST", "gRPC"):
        med = [[statistics.median(r[proto][i] for r in got[side]) for i in (0, 1)] for side in (0, 1)]
        for side in (0, 1):
            print(f"  {proto:<5} {sides[side][0]:<22} {med[side][0]:7.0f} / {med[side][1]:7.0f}")
        ratios = [statistics.median(b[proto][i] / a[proto][i] for a, b in zip(got[0], got[1])) for i in (0, 1)]
        print(f"  {proto:<5} Tessera's / V8's default, median of the rounds' ratios: {ratios[0]:.2f} / {ratios[1]:.2f}")


if __name__ == "__main__":
    main()
