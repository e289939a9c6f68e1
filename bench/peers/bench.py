#!/usr/bin/env python3
"""Tessera side by side with Supabase Auth (GoTrue) on one machine, and Tessera scaled out.

    python3 bench/peers/bench.py PHASE [--rounds N]      (from the project root; `npm run bench -- peers PHASE`)

Phases (each prints its table and ratios at the end; bench/peers/README.md has the set-up):
  read      token checks: Supabase GET /user vs Tessera GET /session (REST) and GetSession (gRPC, h2c),
            Tessera with 1 and with 2 workers in the same rounds (also gives 2 workers / 1 worker)
  refresh   chained refresh: Supabase POST /token?grant_type=refresh_token vs Tessera PUT /session
  login     password login, then the raw hash rate of each system's hash in the same round
  signup    sign-up (POST /signup vs POST /user)
  hash      raw hash verify throughput only: bcrypt cost 10 (Go) vs argon2id at Tessera's parameters
  startup   start-up to the first healthy answer, idle RSS of the whole process tree (per worker)
  noop      no-op calls (Supabase GET /health, Tessera GET /jwt/version and gRPC GetVersion) and the
            Node platform floors (node:http, node:http2), for reference
  scaleout  Tessera only: token checks against two instances on one MongoDB (FerretDB) vs one

Tessera runs compiled (`node dist/src/start.cjs`; `npm run build` first), on a fresh data directory
seeded through its own store adapters (bench/peers/seed.ts) with the peer's volume.
Every load run is bounded (warm-up + measured). Before each measured run the machine is checked
(/proc/stat over 2 s); when other processes use more than BENCH_QUIET % of it, the run waits
(10 s steps, up to 10 min). A run during which others used more than BENCH_NOISY % is repeated
(up to twice) and left out of the figures. Each run is one JSON line in $BENCH_RES/<phase>.jsonl.
Only processes started here are stopped, by PID.
"""
import json, os, re, resource, shutil, signal, subprocess, sys, tempfile, threading, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TS_DIR = os.environ.get("TESSERA_DIR", os.path.dirname(os.path.dirname(HERE)))  # the project checkout
ROOT = os.environ.get("PEERS_WORK", os.path.expanduser("~/peers-bench"))  # binaries, checkouts, data, results
BIN = f"{ROOT}/bin"
# the peers kit (Supabase configuration, seed, Node floors): PEERS_KIT, else ../shared/peers beside the checkout
KIT = os.environ.get("PEERS_KIT") or next((k for k in (os.path.join(TS_DIR, *[".."] * up, "shared", "peers") for up in (1, 2)) if os.path.isdir(k)),
                                          os.path.join(TS_DIR, "..", "shared", "peers"))
SB_DIR = os.environ.get("SUPABASE_DIR", f"{ROOT}/supabase-auth")
SB_ENV = f"{KIT}/supabase/perf.env"
SB_PORT, TS_PORT, F1_PORT, F2_PORT = 9999, 8088, 18081, 18082
SB = f"http://127.0.0.1:{SB_PORT}"
CLK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count()
C = int(os.environ.get("BENCH_C", "16"))          # in-flight requests
WARM = int(os.environ.get("BENCH_WARM", "3"))     # seconds
DUR = int(os.environ.get("BENCH_DUR", "12"))      # seconds measured
QUIET_LIMIT = float(os.environ.get("BENCH_QUIET", "15"))  # % of the machine others may use before a run
NOISY_LIMIT = float(os.environ.get("BENCH_NOISY", "20"))  # % others may use during a run
WORKERS = [int(x) for x in os.environ.get("BENCH_WORKERS", "1,2").split(",") if x.strip()]  # TESSERA_WORKERS values measured
SETTLED_S = 15  # startup: the second idle RSS sample, seconds after the first healthy answer (after V8's memory reducer)
SEED = os.environ.get("BENCH_SEED", "1") == "1"
SEED_USERS = int(os.environ.get("BENCH_SEED_USERS", "20000"))
ADMIN = "admin-0123456789abcdef"
STARTED = []  # Popen objects we own
LOAD_STARTED = threading.Event()  # set by a runner when its load (warm-up) begins
RES = None
LOG = None


def log(*a):
    s = time.strftime("%H:%M:%S ") + " ".join(str(x) for x in a)
    print(s, flush=True)
    if LOG:
        LOG.write(s + "\n")
        LOG.flush()


def need(path, what):
    if not os.path.exists(path):
        raise SystemExit(f"missing {path}: {what} (bench/peers/README.md, 'Set up once')")


# ---------------------------------------------------------------- /proc helpers
def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / CLK
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def proc_mem(pid):
    d = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS", "VmHWM")):
                    k, v = line.split(":")
                    d[k] = int(v.split()[0])
    except FileNotFoundError:
        pass
    return d


def proc_pss(pid):
    """Proportional set size (kB): shared pages (node's binary, in every process of the tree)
    divided among the processes mapping them, so a tree's sum counts them once."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


PG_DB = "supabase_perf"  # the database whose backends count as the store's CPU


def pg_backends(db=None):
    db = db or PG_DB
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            c = cmdline(p)
            if c.startswith("postgres: ") and f" {db} " in c:
                out.append(int(p))
    return out


def children(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if ppid == pid:
                out.append(int(p))
    return out


def descendants(pid):
    out = []
    for c in children(pid):
        out.append(c)
        out += descendants(c)
    return out


def stat_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def cpu_of(pids):
    return sum(x for x in (proc_cpu(p) for p in pids) if x is not None)


def other_busy(ours, secs=2.0):
    """% of the whole machine (all cores) used by processes not in `ours` over `secs`."""
    b0, t0 = stat_ticks()
    o0 = cpu_of(ours)
    time.sleep(secs)
    b1, t1 = stat_ticks()
    o1 = cpu_of(ours)
    busy = 100.0 * (b1 - b0) / max(1, t1 - t0)
    ours_pct = 100.0 * (o1 - o0) / (secs * NCPU)
    return max(0.0, busy - ours_pct), busy


def top_snapshot():
    return subprocess.run("top -bn1 | head -15", shell=True, capture_output=True, text=True).stdout


def wait_quiet(ours, label, max_wait=600):
    t0 = time.time()
    while True:
        snap = top_snapshot()
        other, _ = other_busy(ours)
        LOG.write(f"--- top before {label} (others {other:.1f}% of machine) ---\n{snap}\n")
        if other <= QUIET_LIMIT:
            return round(other, 1), round(time.time() - t0)
        if time.time() - t0 > max_wait:
            log(f"  WARNING: machine still busy ({other:.0f}% others) after {max_wait}s; running {label} anyway")
            return round(other, 1), round(time.time() - t0)
        log(f"  busy: others use {other:.0f}% of the machine before {label}; waiting 10 s. top: {snap.splitlines()[7:9]}")
        time.sleep(10)


# ---------------------------------------------------------------- servers
def http_status(url, headers=None, timeout=2):
    try:
        req = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:
        return None


class Server:
    def __init__(self, name, argv, cwd, env, health, logname):
        self.name, self.argv, self.cwd, self.env, self.health, self.logname = name, argv, cwd, env, health, logname
        self.p = None
        self.extra_pids = []

    def start(self):
        lf = open(f"{RES}/{self.logname}.log", "a")
        t0 = time.monotonic()
        self.p = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=lf, stderr=subprocess.STDOUT)
        STARTED.append(self.p)
        while True:
            if self.health is None or http_status(self.health, timeout=1) == 200:
                break
            if self.p.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.p.returncode}; see {RES}/{self.logname}.log")
            if time.monotonic() - t0 > 60:
                raise RuntimeError(f"{self.name} not healthy after 60 s")
            time.sleep(0.005)
        self.startup_ms = round((time.monotonic() - t0) * 1000)
        return self

    @property
    def pid(self):
        return self.p.pid

    def server_pids(self):
        """Every process of the server: npm, its workers (and e.g. its FerretDB)."""
        return [self.p.pid] + descendants(self.p.pid) + list(self.extra_pids)

    def signal_target(self):
        """Tessera: the topmost `node … start.cjs` (the first worker forwards it to the others)."""
        for pid in [self.p.pid] + descendants(self.p.pid):
            argv = cmdline(pid).split()
            if argv and os.path.basename(argv[0]) == "node" and any(a.endswith(("start.cjs", "main.js")) for a in argv):
                return pid
        return self.p.pid

    def stop(self):
        if self.p is None or self.p.poll() is not None:
            return
        tree = [self.p.pid] + descendants(self.p.pid)
        try:
            os.kill(self.signal_target(), signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            log(f"  {self.name} did not stop in 30 s; SIGKILL {self.p.pid}")
            self.p.kill()
            self.p.wait()
        for pid in tree:  # leftovers of the tree, by PID
            if pid != self.p.pid and proc_cpu(pid) is not None:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for d in getattr(self, "cleanup", []):
            shutil.rmtree(d, ignore_errors=True)


# -- Supabase Auth (the peer): built and configured by the peers kit
def reset_sb_db():
    """A fresh Supabase database for each phase, migrated and seeded."""
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "supabase_perf"], check=True)
    subprocess.run([f"{KIT}/supabase/setup-db.sh"], check=True, capture_output=True)
    subprocess.run([f"{BIN}/auth", "migrate", "-c", SB_ENV], cwd=SB_DIR, check=True, capture_output=True)
    log("  supabase_perf: fresh database, migrated")
    if SEED:
        sql = re.sub(r"(?m)^\\set n \d+", f"\\\\set n {SEED_USERS}", open(f"{KIT}/seed/supabase-seed.sql").read())
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "supabase_perf", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"],
                       input=sql, text=True, check=True, capture_output=True)
        vacuum_sb()
        log(f"  supabase_perf seeded ({SEED_USERS} users, 2 sessions each, 5 refresh tokens per session), VACUUM ANALYZE")


def vacuum_sb():
    """VACUUM ANALYZE between rounds (outside any measurement), as autovacuum would."""
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "supabase_perf", "-qc", "VACUUM ANALYZE"], check=True)


def supabase(cmd="serve", env_file=None, health=None):
    env_file = env_file or SB_ENV
    argv = [f"{BIN}/auth", "-c", env_file] if cmd == "root" else [f"{BIN}/auth", "serve", "-c", env_file]
    return Server(f"supabase({cmd})", argv, SB_DIR, dict(os.environ), health or f"{SB}/health", "supabase")


# -- Tessera
TEMPLATE = {}


def seeded_template():
    """One seeded SQLite store per invocation (bench/peers/seed.ts), copied for every server."""
    if "dir" not in TEMPLATE:
        d = tempfile.mkdtemp(prefix="seed-", dir=f"{ROOT}/data")
        os.rmdir(d)
        out = subprocess.run(["node", "--import", "tsx", f"{HERE}/seed.ts", "sqlite", d, str(SEED_USERS)], cwd=TS_DIR,
                             check=True, capture_output=True, text=True).stdout
        log(f"  tessera store seeded: {out.strip()}")
        TEMPLATE["dir"] = d
    return TEMPLATE["dir"]


def start_tunables():
    """The GLIBC_TUNABLES that package.json's start script puts before the caller's own (a hash's
    memory in huge pages, README): a `node dist/src/start.cjs` here runs as `npm start` does, and
    the raw argon2id run gets the same, so that the login ratio compares like with like."""
    script = json.load(open(f"{TS_DIR}/package.json"))["scripts"]["start"]
    m = re.search(r'GLIBC_TUNABLES="([^"$]*)', script)
    own = os.environ.get("GLIBC_TUNABLES")
    return ":".join(x for x in ((m.group(1) if m else ""), own) if x)


def with_tunables(env):
    t = start_tunables()
    if t:
        env["GLIBC_TUNABLES"] = t
    return env


def ts_env(port, workers, data_dir, extra=None):
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", TESSERA_LOG_LEVEL=os.environ.get("BENCH_TS_LOG_LEVEL", "warn"),
               TESSERA_CLIENT_IDS="web", TESSERA_ADMIN_TOKEN=ADMIN, TESSERA_DATA_DIR=data_dir, MONGODB_URI="",
               # the peer runs with its rate limits lifted (perf.env); sign-ups per address likewise
               TESSERA_SIGNUP_MAX_PER_ADDRESS="1000000", NODE_ENV="development")
    if workers is not None:
        env["TESSERA_WORKERS"] = str(workers)
    with_tunables(env)
    env.update(extra or {})
    return env


def tessera(port=TS_PORT, workers=1, extra=None, via_npm=False, seed=True, node_flags=()):
    """`node dist/src/start.cjs` (or `npm start`) on a fresh data directory (a copy of the seeded store)."""
    d = tempfile.mkdtemp(prefix="ts-", dir=f"{ROOT}/data")
    if seed and SEED and not (extra or {}).get("MONGODB_URI"):
        shutil.copy2(f"{seeded_template()}/tessera.db", f"{d}/tessera.db")
        os.chmod(d, 0o700)
    argv = ["npm", "start", "--silent"] if via_npm else ["node", *node_flags, "dist/src/start.cjs"]
    name = f"tessera-w{workers}" + ("-npm" if via_npm else "")
    srv = Server(name, argv, TS_DIR, ts_env(port, workers, d, extra), f"http://127.0.0.1:{port}/healthz", name)
    srv.data_dir, srv.port, srv.url, srv.workers = d, port, f"http://127.0.0.1:{port}", workers
    srv.cleanup = [d]
    return srv


def check_build():
    main = f"{TS_DIR}/dist/src/start.cjs"
    need(main, "run `npm run build` in the project first")
    built = os.path.getmtime(main)
    newer = [os.path.join(dp, f) for dp, _, fs in os.walk(f"{TS_DIR}/src") for f in fs if f.endswith(".ts") and os.path.getmtime(os.path.join(dp, f)) > built]
    if newer:
        log(f"  WARNING: {len(newer)} file(s) under src/ are newer than dist/ (e.g. {newer[0]}): run `npm run build`")


def empty_grpc():
    """One empty gRPC message (flag 0, length 0): the body of GetSession / GetVersion."""
    p = f"{ROOT}/empty.grpc"
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(b"\0\0\0\0\0")
    return p


def start_floor(kind):
    port = F1_PORT if kind == "http1" else F2_PORT
    s = Server(f"floor-{kind}", ["node", f"{KIT}/floor-{'http1' if kind == 'http1' else 'h2c'}.mjs"], KIT, dict(os.environ, PORT=str(port)), None, f"floor-{kind}")
    s.start()
    time.sleep(0.5)
    if kind == "http1":
        assert http_status(f"http://127.0.0.1:{F1_PORT}/") == 200
    else:
        grpc_check(f"http://127.0.0.1:{F2_PORT}/floor.v1.Floor/Get", [])
    return s


def stop_all():
    for p in STARTED:
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(20)
            except Exception:
                p.kill()


# ---------------------------------------------------------------- load runners
class Sampler(threading.Thread):
    """From WARM to WARM+DUR after the load starts: CPU of the server pids and of PG backends,
    the machine's busy share; peak RSS of the server processes (summed) every 0.5 s."""

    def __init__(self, server_pids, pg=False, store_pids=()):
        super().__init__(daemon=True)
        self.server_pids, self.pg, self.store_pids = server_pids, pg, list(store_pids)
        self.rss_peak = 0
        self.res = {}

    def run(self):
        LOAD_STARTED.wait(120)
        time.sleep(WARM)
        pg0 = {p: proc_cpu(p) or 0 for p in (pg_backends() if self.pg else [])}
        s0 = cpu_of(self.server_pids)
        d0 = cpu_of(self.store_pids)
        b0, t0 = stat_ticks()
        w0 = time.monotonic()
        while time.monotonic() - w0 < DUR:
            self.rss_peak = max(self.rss_peak, sum(proc_mem(p).get("VmRSS", 0) for p in self.server_pids))
            time.sleep(0.5)
        el = time.monotonic() - w0
        s1 = cpu_of(self.server_pids)
        d1 = cpu_of(self.store_pids)
        b1, t1 = stat_ticks()
        pg1 = sum((proc_cpu(p) or 0) - pg0.get(p, 0) for p in pg_backends()) if self.pg else 0.0
        pg1 += d1 - d0  # a store server of our own (FerretDB) counts with its PostgreSQL backends
        self.res = dict(server_cpu_pct=round(100 * (s1 - s0) / el, 1), pg_cpu_pct=round(100 * pg1 / el, 1),
                        machine_busy_pct=round(100 * (b1 - b0) / max(1, t1 - t0), 1),
                        server_cpu_s=round(s1 - s0, 2), pg_cpu_s=round(pg1, 2), window_s=round(el, 2))


def _ms(s):
    return float(s[:-2]) if s.endswith("ms") else float(s[:-2]) / 1000 if s.endswith("us") else float(s[:-1]) * 1000


def h2load_once(url, headers=(), h1=False, c=C, m=1, data=None):
    argv = ["h2load", "-c", str(c), "-m", str(m), "-t", "1", "-D", str(DUR), "--warm-up-time", str(WARM)]
    if h1:
        argv.append("--h1")
    for h in headers:
        argv += ["-H", h]
    if data:
        argv += ["-d", data]
    argv.append(url)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=WARM + DUR + 30)
    rq = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    sc = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    tr = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if not rq or not sc:
        raise RuntimeError("h2load output not understood:\n" + out)
    # with -D, streams straddling the window edges make "2xx" and "done" differ by a few: count
    # "succeeded" as ok and failed+errored+timeout+4xx+5xx as errors
    ok = int(rq.group(4))
    errs = int(rq.group(5)) + int(rq.group(6)) + int(rq.group(7)) + int(sc.group(3)) + int(sc.group(4))
    return dict(requests=int(rq.group(3)), ok=ok, errors=errs, mean_ms=_ms(tr.group(3)), max_ms=_ms(tr.group(2)))


def h2load_many(targets, **kw):
    """Several h2load processes at once (one per target URL, each with its share of the
    connections); ok/s is their sum. Client CPU is that of all of them."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    LOAD_STARTED.set()
    res = [None] * len(targets)

    def one(i, t):
        res[i] = h2load_once(t["url"], **{**kw, **{k: v for k, v in t.items() if k != "url"}})

    th = [threading.Thread(target=one, args=(i, t)) for i, t in enumerate(targets)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if any(r is None for r in res):
        raise RuntimeError("an h2load run failed")
    ok = sum(r["ok"] for r in res)
    return dict(client="h2load" if len(res) == 1 else f"h2load x{len(res)}", requests=sum(r["requests"] for r in res), ok=ok,
                errors=sum(r["errors"] for r in res), rps=round(ok / DUR, 1), mean_ms=round(sum(r["mean_ms"] for r in res) / len(res), 3),
                max_ms=max(r["max_ms"] for r in res), client_cpu_pct=round(100 * cpu / (WARM + DUR), 1), per_target=[round(r["ok"] / DUR, 1) for r in res])


def h2load(url, headers=(), h1=False, c=C, m=1, data=None):
    r = h2load_many([dict(url=url)], headers=headers, h1=h1, c=c, m=m, data=data)
    r.update(conns=c, streams_per_conn=m)
    return r


def loadgen(*args):
    argv = [f"{BIN}/loadgen", "run", "-c", str(C), "-d", f"{DUR}s", "-warmup", f"{WARM}s", *args]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = []
    for line in p.stderr:  # "loadgen: warm-up" marks the start of the load (after any untimed prep)
        if line.startswith("loadgen: warm-up"):
            LOAD_STARTED.set()
        else:
            err.append(line)
    out = p.stdout.read()
    p.wait(WARM + DUR + 120)
    LOAD_STARTED.set()
    if p.returncode != 0:
        raise RuntimeError("loadgen failed: " + "".join(err) + out)
    r = json.loads(out.strip().splitlines()[-1])
    return dict(client="go-loadgen", requests=r["requests"], ok=r["ok"], errors=r["requests"] - r["ok"],
                rps=round(r["rps"], 1), p50_ms=r["p50_ms"], p90_ms=r["p90_ms"], p99_ms=r["p99_ms"], max_ms=r["max_ms"],
                client_cpu_pct=round(r["client_cpu_pct"], 1), status=r["status"], first_error=r.get("first_error", ""))


def measure(phase, scenario, system, rnd, server, runner, ours_extra=(), pg=False, store_pids=()):
    """One run; repeated (up to 2 more times) when others used > NOISY_LIMIT % of the machine during it.
    PG CPU: the backends of PG_DB plus `store_pids` (a FerretDB in front of them)."""
    for attempt in range(3):
        rec = measure_once(phase, scenario, system, rnd, server, runner, ours_extra, pg, attempt, store_pids)
        if not rec["discarded"]:
            return rec
        log(f"    noisy run (others {rec['others_during_pct']}% during); kept as discarded, retrying")
    return rec


def measure_once(phase, scenario, system, rnd, server, runner, ours_extra, pg, attempt, store_pids=()):
    servers = server if isinstance(server, (list, tuple)) else [server]
    spids = list(dict.fromkeys(p for s in servers for p in s.server_pids()))
    ours = spids + list(ours_extra) + list(store_pids) + (pg_backends() if pg else [])
    quiet, waited = wait_quiet(ours, f"{scenario}/{system} r{rnd}")
    LOAD_STARTED.clear()
    smp = Sampler(spids, pg=pg, store_pids=store_pids)
    smp.start()
    r = runner()
    smp.join()
    rec = dict(phase=phase, scenario=scenario, system=system, round=rnd, c=C, warm_s=WARM, dur_s=DUR,
               others_before_pct=quiet, waited_s=waited, rss_peak_kb=smp.rss_peak, **smp.res, **r)
    cpu_s = smp.res.get("server_cpu_s", 0) + smp.res.get("pg_cpu_s", 0)
    rec["cpu_ms_per_ok"] = round(1000 * cpu_s / max(1, r["ok"]) * (DUR / max(0.001, smp.res.get("window_s", DUR))), 4)
    # others during the run: machine busy minus server, PG and client (all as % of the machine)
    rec["others_during_pct"] = round(max(0.0, rec.get("machine_busy_pct", 0) - (smp.res.get("server_cpu_pct", 0) + smp.res.get("pg_cpu_pct", 0) + r["client_cpu_pct"]) / NCPU), 1)
    rec["attempt"] = attempt
    rec["discarded"] = rec["others_during_pct"] > NOISY_LIMIT and attempt < 2
    with open(f"{RES}/{phase}.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    log(f"  {scenario:<34} {system:<16} r{rnd} {r['client']:<10} ok/s={r['rps']:>9} errs={r['errors']} "
        f"lat={r.get('p50_ms', r.get('mean_ms'))}ms srv={smp.res.get('server_cpu_pct')}% pg={smp.res.get('pg_cpu_pct')}% "
        f"cli={r['client_cpu_pct']}% cpu/req={rec['cpu_ms_per_ok']}ms others(before/during)={quiet}/{rec['others_during_pct']}% "
        f"rss_peak={smp.rss_peak // 1024}MiB")
    if r["errors"]:
        log(f"    errors: {r.get('status', '')} {r.get('first_error', '')}")
    return rec


def prep_users(sys_, base, n, path, prefix):
    subprocess.run([f"{BIN}/loadgen", "prep", "-sys", sys_, "-base", base, "-n", str(n), "-prefix", prefix, "-out", path], check=True)


def relogin(sys_, base, path):
    subprocess.run([f"{BIN}/loadgen", "login", "-sys", sys_, "-base", base, "-in", path], check=True)


def token(path, i=0):
    return json.load(open(path))[i]["access_token"]


def grpc_check(url, headers):
    argv = ["curl", "-s", "--http2-prior-knowledge", "-D", "-", "-o", "/dev/null", "--data-binary", f"@{empty_grpc()}",
            "-H", "content-type: application/grpc", "-H", "te: trailers"]
    for h in headers:
        argv += ["-H", h]
    out = subprocess.run(argv + [url], capture_output=True, text=True).stdout
    if "grpc-status: 0" not in out:
        raise RuntimeError(f"gRPC check failed for {url}: {out}")


GH = ["content-type: application/grpc", "te: trailers"]
GET_SESSION = "/tessera.session.v1.SessionService/GetSession"
GET_VERSION = "/tessera.jwt.v1.JwtService/GetVersion"


def ts_sys(srv):
    return f"tessera-w{srv.workers}"


# ---------------------------------------------------------------- phases
def hash_run(alg, par, rnd, tag="hash", secs=int(os.environ.get("BENCH_HASH_SECS", "8"))):
    for attempt in range(3):
        quiet, waited = wait_quiet([], f"{tag} {alg} p{par} r{rnd}")
        if alg == "bcrypt":
            argv = [f"{BIN}/bcryptbench", "-cost", "10", "-p", str(par), "-d", f"{secs}s"]
        else:
            argv = ["node", "--import", "tsx", f"{HERE}/argon2.ts", str(par), str(secs)]
        b0, t0 = stat_ticks()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        w0 = time.monotonic()
        hash_env = with_tunables(dict(os.environ)) if alg != "bcrypt" else None
        out = subprocess.run(argv, capture_output=True, text=True, cwd=TS_DIR, env=hash_env).stdout
        el = time.monotonic() - w0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        b1, t1 = stat_ticks()
        own = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        busy = 100.0 * (b1 - b0) / max(1, t1 - t0)
        others = round(max(0.0, busy - 100 * own / el / NCPU), 1)
        r = json.loads(out.strip().splitlines()[-1])
        rec = dict(phase=tag, parallel=par, round=rnd, others_before_pct=quiet, others_during_pct=others,
                   own_cpu_pct=round(100 * own / el, 1), attempt=attempt, discarded=others > NOISY_LIMIT and attempt < 2, **r)
        with open(f"{RES}/{tag}.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        log(f"  {tag} {alg:<9} p={par} r{rnd}: {r['ops_per_s']} verifies/s  own cpu {rec['own_cpu_pct']}%  others before/during {quiet}/{others}%")
        if not rec["discarded"]:
            return rec
        log("    noisy; retrying")
    return rec


def phase_hash(rounds):
    """Raw hash cost: Go bcrypt at Supabase's cost (10) vs argon2id at Tessera's parameters."""
    need(f"{BIN}/bcryptbench", "build the kit's hashcost")
    for rnd in range(1, rounds + 1):
        for alg, par in (("bcrypt", 1), ("argon2id", 1), ("bcrypt", NCPU), ("argon2id", NCPU), ("argon2id", 2 * NCPU)):
            hash_run(alg, par, rnd)


def phase_startup(rounds):
    """Start-up to the first 200 from /healthz (Supabase: /health) and RSS 5 s after, for
    `node dist/src/start.cjs` and `npm start`, per TESSERA_WORKERS value; and, for reference,
    what npm itself costs: `npm start` of a package whose start script is `node -e 0`."""
    makers = [(lambda: supabase("serve"), "supabase (auth serve)", 1)]
    for w in WORKERS:
        makers += [(lambda w=w: tessera(workers=w, seed=False), f"tessera node, {w} worker(s)", w),
                   (lambda w=w: tessera(workers=w, seed=False, via_npm=True), f"tessera npm start, {w} worker(s)", w)]
    empty = tempfile.mkdtemp(prefix="npm-noop-", dir=RES)
    with open(f"{empty}/package.json", "w") as f:
        json.dump({"name": "noop", "version": "1.0.0", "private": True, "scripts": {"start": "node -e 0"}}, f)
    for rnd in range(1, rounds + 1):
        for argv, name in ((["node", "-e", "0"], "node -e 0"), (["npm", "start", "--silent"], "npm start of `node -e 0`")):
            wait_quiet([], f"startup {name} r{rnd}")
            t0 = time.monotonic()
            subprocess.run(argv, cwd=empty, check=True, capture_output=True)
            ms = round((time.monotonic() - t0) * 1000)
            with open(f"{RES}/startup.jsonl", "a") as f:
                f.write(json.dumps(dict(phase="startup", system=name, workers=1, round=rnd, startup_ms=ms, exit_only=True)) + "\n")
            log(f"  startup {name:<32} r{rnd}: {ms} ms to exit")
        for mk, name, w in makers:
            if name.startswith("supabase") and not os.path.exists(f"{BIN}/auth"):
                continue
            quiet, _ = wait_quiet([], f"startup {name} r{rnd}")
            s = mk().start()
            time.sleep(5)
            tree = s.server_pids()
            mem = {f"{p} {cmdline(p)[:50]}": proc_mem(p).get("VmRSS", 0) for p in tree}
            tree_kb = sum(mem.values())
            pss_kb = sum(proc_pss(p) for p in tree)
            # Again once the start-up's garbage is returned: V8's memory reducer first runs about
            # 8 s after a start (a "Mark-Compact (reduce)" in --trace-gc), shrinking the young
            # generation the start grew. Nothing is asked of the server in between.
            time.sleep(SETTLED_S - 5)
            settled_kb = sum(proc_mem(p).get("VmRSS", 0) for p in s.server_pids())
            rec = dict(phase="startup", system=name, workers=w, round=rnd, startup_ms=s.startup_ms,
                       rss_tree_kb=tree_kb, rss_tree_per_worker_kb=tree_kb // w, pss_tree_kb=pss_kb, pss_tree_per_worker_kb=pss_kb // w,
                       rss_settled_tree_kb=settled_kb, rss_settled_per_worker_kb=settled_kb // w, settled_s=SETTLED_S,
                       tree=mem, others_before_pct=quiet)
            s.stop()
            with open(f"{RES}/startup.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            log(f"  startup {name:<32} r{rnd}: {s.startup_ms} ms to healthy; idle RSS of the tree {tree_kb // 1024} MiB ({tree_kb // w // 1024} MiB per worker), PSS {pss_kb // 1024} MiB ({pss_kb // w // 1024} per worker); at {SETTLED_S} s {settled_kb // w // 1024} MiB per worker")


def start_pair():
    """Supabase and one Tessera per BENCH_WORKERS value (ports 8088, 8089, ...), all seeded."""
    need(f"{BIN}/auth", "build Supabase Auth")
    need(f"{BIN}/loadgen", "build the kit's loadgen")
    reset_sb_db()
    sb = supabase().start()
    tss = [tessera(port=TS_PORT + i, workers=w).start() for i, w in enumerate(WORKERS)]
    return sb, tss


def phase_read(rounds):
    """Token checks: Supabase GET /user vs Tessera GET /session and GetSession (h2c; 16
    connections, and 1 connection x 16 streams), every Tessera worker count, interleaved per round."""
    sb, tss = start_pair()
    sbu = f"{RES}/sb_users.json"
    prep_users("sb", SB, C, sbu, "sbr")
    tsu = {}
    for ts in tss:
        tsu[ts] = f"{RES}/ts_users_w{ts.workers}.json"
        prep_users("ts", ts.url, C, tsu[ts], f"tsr{ts.workers}")
    go = os.environ.get("BENCH_GO", "0") == "1"
    try:
        for rnd in range(1, rounds + 1):
            relogin("sb", SB, sbu)
            vacuum_sb()
            sbt = token(sbu)
            runs = [("read", "supabase GET /user", "supabase", sb, lambda: h2load(f"{SB}/user", [f"authorization: Bearer {sbt}"], h1=True), True)]
            if go:
                runs.append(("read-go", "supabase GET /user", "supabase", sb, lambda: loadgen("-mode", "get", "-url", f"{SB}/user", "-users", sbu, "-auth", "access"), True))
            for ts in tss:
                relogin("ts", ts.url, tsu[ts])
                tsh = ["x-koms-clientid: web", f"authorization: Bearer {token(tsu[ts])}"]
                grpc_check(ts.url + GET_SESSION, tsh)
                g = ts.url + GET_SESSION
                runs += [("read", "tessera GET /session", ts_sys(ts), ts, lambda u=ts.url, h=tsh: h2load(f"{u}/session", h, h1=True), False),
                         ("read", "tessera gRPC GetSession", ts_sys(ts), ts, lambda g=g, h=tsh: h2load(g, h + GH, data=empty_grpc()), False),
                         ("read", "tessera gRPC GetSession 1conn", ts_sys(ts), ts, lambda g=g, h=tsh: h2load(g, h + GH, c=1, m=C, data=empty_grpc()), False)]
                if go:
                    runs += [("read-go", "tessera GET /session", ts_sys(ts), ts, lambda u=ts.url, f=tsu[ts]: loadgen("-mode", "get", "-url", f"{u}/session", "-users", f, "-auth", "access", "-H", "x-koms-clientid: web"), False),
                             ("read-go", "tessera gRPC GetSession", ts_sys(ts), ts, lambda g=g, f=tsu[ts]: loadgen("-mode", "grpc", "-h2c", "-conns", str(C), "-url", g, "-users", f, "-auth", "access", "-H", "x-koms-clientid: web"), False)]
            everyone = [sb] + tss
            for phase, scen, system, srv, fn, pg in runs:
                others = [p for s in everyone if s is not srv for p in s.server_pids()]
                measure(phase, scen, system, rnd, srv, fn, ours_extra=others, pg=pg)
    finally:
        for s in [sb] + tss:
            s.stop()


def phase_noop(rounds):
    """No-op calls and the Node platform floors, interleaved per round."""
    need(f"{BIN}/auth", "build Supabase Auth")
    sb = supabase().start()
    tss = [tessera(port=TS_PORT + i, workers=w, seed=False).start() for i, w in enumerate(WORKERS)]
    f1, f2 = start_floor("http1"), start_floor("h2c")
    everyone = [sb, f1, f2] + tss
    try:
        for rnd in range(1, rounds + 1):
            runs = [("noop", "supabase GET /health", "supabase", sb, lambda: h2load(f"{SB}/health", h1=True)),
                    ("floor", "node http1 floor", "node-floor", f1, lambda: h2load(f"http://127.0.0.1:{F1_PORT}/", h1=True)),
                    ("floor", "node h2c gRPC floor", "node-floor", f2, lambda: h2load(f"http://127.0.0.1:{F2_PORT}/floor.v1.Floor/Get", GH, data=empty_grpc())),
                    ("floor", "node h2c gRPC floor 1conn", "node-floor", f2, lambda: h2load(f"http://127.0.0.1:{F2_PORT}/floor.v1.Floor/Get", GH, c=1, m=C, data=empty_grpc()))]
            for ts in tss:
                grpc_check(ts.url + GET_VERSION, [])
                runs += [("noop", "tessera GET /jwt/version", ts_sys(ts), ts, lambda u=ts.url: h2load(f"{u}/jwt/version", h1=True)),
                         ("noop", "tessera gRPC GetVersion", ts_sys(ts), ts, lambda u=ts.url: h2load(u + GET_VERSION, GH, data=empty_grpc())),
                         ("noop", "tessera gRPC GetVersion 1conn", ts_sys(ts), ts, lambda u=ts.url: h2load(u + GET_VERSION, GH, c=1, m=C, data=empty_grpc()))]
            for phase, scen, system, srv, fn in runs:
                measure(phase, scen, system, rnd, srv, fn, ours_extra=[p for s in everyone if s is not srv for p in s.server_pids()])
    finally:
        for s in everyone:
            s.stop()


def phase_writes(kind, rounds):
    """refresh (chained per in-flight lane), login, signup: Supabase and every Tessera, interleaved."""
    if kind == "login":
        need(f"{BIN}/bcryptbench", "build the kit's hashcost")
    sb, tss = start_pair()
    label = {"refresh": "token refresh", "login": "password login", "signup": "signup"}[kind]
    try:
        users = {}
        if kind in ("refresh", "login"):
            users[sb] = f"{RES}/sb_users_{kind}.json"
            prep_users("sb", SB, C, users[sb], f"sb{kind}")
            for ts in tss:
                users[ts] = f"{RES}/ts_users_{kind}_w{ts.workers}.json"
                prep_users("ts", ts.url, C, users[ts], f"ts{kind}{ts.workers}")
        for rnd in range(1, rounds + 1):
            vacuum_sb()
            for srv in [sb] + tss:
                pfx = "sb" if srv is sb else "ts"
                args = ["-mode", f"{pfx}-{kind}", "-base", SB if srv is sb else srv.url]
                if kind != "signup":
                    args += ["-users", users[srv]]
                others = [p for s in [sb] + tss if s is not srv for p in s.server_pids()]
                measure(kind, label, "supabase" if srv is sb else ts_sys(srv), rnd, srv, lambda a=args: loadgen(*a), ours_extra=others, pg=(srv is sb))
            if kind == "login":
                # the raw hash rate in the same round, at parallel = cores (what the server can use)
                hash_run("bcrypt", NCPU, rnd, tag="login-hash")
                hash_run("argon2id", NCPU, rnd, tag="login-hash")
    finally:
        for s in [sb] + tss:
            s.stop()


FERRET_PORT = 27027


def start_ferretdb():
    """Our own FerretDB (FERRETDB_BIN) on a fresh PostgreSQL database; or BENCH_MONGODB_URI."""
    global PG_DB
    if os.environ.get("BENCH_MONGODB_URI"):
        return None, os.environ["BENCH_MONGODB_URI"]
    PG_DB = "perf_ferret"
    binp = os.environ.get("FERRETDB_BIN", os.path.expanduser("~/.cache/tessera-ci/ferretdb-v1.24.2"))
    need(binp, "FerretDB binary (FERRETDB_BIN), or set BENCH_MONGODB_URI")
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", "DROP DATABASE IF EXISTS perf_ferret WITH (FORCE)"], check=True)
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", "CREATE DATABASE perf_ferret"], check=True)
    state = tempfile.mkdtemp(prefix="ferret-", dir=f"{ROOT}/data")
    fdb = Server("ferretdb", [binp, "--handler=postgresql", "--postgresql-url=postgres://postgres@127.0.0.1:5432/perf_ferret",
                              f"--listen-addr=127.0.0.1:{FERRET_PORT}", "--debug-addr=-", f"--state-dir={state}", "--telemetry=disable",
                              "--log-level=error"], ROOT, dict(os.environ), None, "ferretdb").start()
    fdb.cleanup = [state]
    time.sleep(2)
    return fdb, f"mongodb://127.0.0.1:{FERRET_PORT}/"


def phase_scaleout(rounds):
    """Token checks (REST GET /session, gRPC GetSession) against one Tessera instance and against
    two instances on one MongoDB, each instance BENCH_SCALE_WORKERS workers (1). The load is the
    same in both: two h2load processes with C/2 connections each, both at instance A, or one at A
    and one at B. Both instances run throughout (B idles while A is measured alone)."""
    w = int(os.environ.get("BENCH_SCALE_WORKERS", "1"))
    fdb, uri = start_ferretdb()
    dbname = f"tessera_scaleout_{os.getpid()}"
    store_pids = lambda: ([fdb.pid] if fdb else [])
    insts = []
    try:
        n = int(os.environ.get("BENCH_SCALE_SEED_USERS", "1000")) if SEED else 0
        if n:
            out = subprocess.run(["node", "--import", "tsx", f"{HERE}/seed.ts", "mongo", uri, dbname, str(n)], cwd=TS_DIR,
                                 check=True, capture_output=True, text=True).stdout
            log(f"  MongoDB store seeded: {out.strip()}")
        extra = dict(MONGODB_URI=uri, TESSERA_MONGODB_DATABASE=dbname)
        insts = [tessera(port=TS_PORT + i, workers=w, extra=extra, seed=False).start() for i in range(2)]
        a, b = insts
        users = f"{RES}/ts_users_scaleout.json"
        prep_users("ts", a.url, C, users, "tsscale")
        half = max(1, C // 2)
        for rnd in range(1, rounds + 1):
            relogin("ts", a.url, users)
            tsh = ["x-koms-clientid: web", f"authorization: Bearer {token(users)}"]
            for s in insts:  # a token issued by one instance is good at the other
                grpc_check(s.url + GET_SESSION, tsh)
            for label, targets in (("1 instance", [a, a]), ("2 instances", [a, b])):
                sysname = f"tessera-w{w} x{len(set(targets))}"
                rest = [dict(url=f"{t.url}/session", c=half) for t in targets]
                grpc = [dict(url=t.url + GET_SESSION, c=half) for t in targets]
                measure("scaleout", f"GET /session, {label}", sysname, rnd, insts, lambda r=rest: h2load_many(r, headers=tsh, h1=True), pg=bool(fdb), store_pids=store_pids())
                measure("scaleout", f"gRPC GetSession, {label}", sysname, rnd, insts, lambda g=grpc: h2load_many(g, headers=tsh + GH, data=empty_grpc()), pg=bool(fdb), store_pids=store_pids())
    finally:
        for s in insts:
            s.stop()
        if fdb:
            fdb.stop()
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", "DROP DATABASE IF EXISTS perf_ferret WITH (FORCE)"])
            log("  FerretDB stopped, database perf_ferret dropped")


PHASES = {"hash": phase_hash, "startup": phase_startup, "read": phase_read, "noop": phase_noop, "scaleout": phase_scaleout,
          "refresh": lambda r: phase_writes("refresh", r), "login": lambda r: phase_writes("login", r),
          "signup": lambda r: phase_writes("signup", r)}


def _term(signum, frame):
    raise SystemExit(f"signal {signum}")


def main():
    global RES, LOG
    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, _term)
    if len(sys.argv) < 2 or sys.argv[1] not in PHASES:
        print(__doc__)
        raise SystemExit(2)
    ph = sys.argv[1]
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
    os.makedirs(f"{ROOT}/data", exist_ok=True)
    RES = os.environ.get("BENCH_RES") or f"{ROOT}/results/{ph}-{time.strftime('%Y%m%d-%H%M%S')}"
    os.makedirs(RES, exist_ok=True)
    LOG = open(f"{RES}/log.txt", "a")
    check_build()
    log(f"=== phase {ph}, rounds {rounds}, C={C}, warm {WARM}s, measured {DUR}s, Tessera workers {WORKERS}, quiet limit {QUIET_LIMIT}%; results in {RES}")
    try:
        PHASES[ph](rounds)
    finally:
        stop_all()
        for d in [TEMPLATE.get("dir")]:
            if d:
                shutil.rmtree(d, ignore_errors=True)
    subprocess.run([sys.executable, f"{HERE}/summarize.py", RES])


if __name__ == "__main__":
    main()
