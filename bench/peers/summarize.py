#!/usr/bin/env python3
"""Tables from one or more results directories of bench/peers/bench.py: medians over rounds,
spread, and the figures as ratios against their targets.

    python3 bench/peers/summarize.py RESULTS_DIR [RESULTS_DIR ...]
"""
import json, os, statistics, sys
from collections import defaultdict

NOISY = float(os.environ.get("BENCH_NOISY", "20"))  # runs during which others used more are left out
NCPU = os.cpu_count()
DIRS = sys.argv[1:]
FIGURES = []  # (figure, Tessera, other, ratio, target, per-round ratios)


def load(name):
    out = []
    for d in DIRS:
        p = f"{d}/{name}.jsonl"
        if os.path.exists(p):
            out += [json.loads(l) for l in open(p) if l.strip()]
    return out


def kept(recs):
    return [r for r in recs if not r.get("discarded") and r.get("others_during_pct", 0) <= NOISY]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=0):
    if x is None:
        return "-"
    if isinstance(x, float) and nd == 0 and abs(x) < 100:
        nd = 1 if abs(x) >= 10 else 2
    return f"{x:,.{nd}f}"


def runs_table(recs, title):
    """One row per (scenario, system): median ok/s over rounds etc. Returns {(scenario, system): row}."""
    groups = defaultdict(list)
    for r in kept(recs):
        groups[(r["scenario"], r["system"])].append(r)
    if not groups:
        return {}
    print(f"\n### {title}\n")
    print("| scenario | system | client | n | ok/s median | min..max | latency mean or p50 (ms) | server CPU % | store CPU % (PG, FerretDB) | client CPU % | server+PG CPU ms/req | RSS peak MiB | others during % (max) | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    out = {}
    for k, rs in groups.items():
        rps = [r["rps"] for r in rs]
        m = med(rps)
        out[k] = dict(m=m, rounds={r["round"]: r["rps"] for r in rs}, cpu=med([r["cpu_ms_per_ok"] for r in rs]), recs=rs)
        print(f"| {k[0]} | {k[1]} | {rs[0]['client']} | {len(rs)} | {fmt(m)} | {fmt(min(rps))}..{fmt(max(rps))} "
              f"| {fmt(med([r.get('p50_ms', r.get('mean_ms')) for r in rs]), 2)} | {fmt(med([r['server_cpu_pct'] for r in rs]))} "
              f"| {fmt(med([r['pg_cpu_pct'] for r in rs]))} | {fmt(med([r['client_cpu_pct'] for r in rs]))} | {fmt(out[k]['cpu'], 3)} "
              f"| {max(r['rss_peak_kb'] for r in rs) // 1024} | {max(r['others_during_pct'] for r in rs)} | {sum(r['errors'] for r in rs)} |")
    return out


def ratio(t, a, b, figure, target=None):
    """Figure a/b from a runs table: ratio of medians and the per-round ratios."""
    if a not in t or b not in t or not t[b]["m"]:
        return
    A, B = t[a], t[b]
    per = [A["rounds"][r] / B["rounds"][r] for r in sorted(A["rounds"]) if r in B["rounds"] and B["rounds"][r]]
    FIGURES.append((figure, f"{a[0]} ({a[1]}) {fmt(A['m'])}/s", f"{b[0]} ({b[1]}) {fmt(B['m'])}/s", A["m"] / B["m"], target, per))


def print_figures():
    if not FIGURES:
        return
    print("\n### Figures\n")
    print("| figure | Tessera | other | ratio (or value) | target | met | per-round ratios |")
    print("|---|---|---|---|---|---|---|")
    for fig, a, b, r, target, per in FIGURES:
        tgt, met = ("-", "-")
        if target is not None:
            op, v = target
            tgt = f"{op} {v}"
            met = "yes" if (r >= v if op == ">=" else r <= v) else "no"
        print(f"| {fig} | {a} | {b} | **{r:.2f}** | {tgt} | {met} | {', '.join(f'{x:.2f}' for x in per)} |")


def ts_systems(t):
    return sorted({k[1] for k in t if k[1].startswith("tessera-w")}, key=lambda s: int(s.split("w")[1].split()[0]))


def main():
    if not DIRS:
        print(__doc__)
        raise SystemExit(2)

    hs = defaultdict(list)
    for r in kept(load("hash")):
        hs[(r["alg"], r["parallel"])].append(r["ops_per_s"])
    if hs:
        print("\n### Raw password-hash verify throughput\n")
        print("| algorithm | parameters | parallel | n | verifies/s median | min..max | ms per verify per lane |")
        print("|---|---|---|---|---|---|---|")
        for (alg, par), v in sorted(hs.items()):
            params = "bcrypt cost 10 (Supabase default)" if alg == "bcrypt" else "argon2id at Tessera's configured parameters"
            print(f"| {alg} | {params} | {par} | {len(v)} | {fmt(med(v), 1)} | {fmt(min(v), 1)}..{fmt(max(v), 1)} | {1000 * par / med(v):.1f} |")

    st = load("startup")
    if st:
        print("\n### Start-up (to the first 200 from /healthz or /health) and idle memory 5 s after\n")
        print("RSS counts the pages every process maps from node's binary once per process; PSS shares them out.")
        print("The last column is the RSS again, later (settled_s after the first healthy answer), once V8's memory reducer has")
        print("returned what the start-up left behind.\n")
        print("| system | n | start-up ms median | min..max | RSS of the whole process tree MiB | RSS per worker MiB | PSS per worker MiB | RSS per worker MiB, settled |")
        print("|---|---|---|---|---|---|---|---|")
        g = defaultdict(list)
        for r in st:
            g[r["system"]].append(r)
        for k, rs in g.items():
            v = [r["startup_ms"] for r in rs]
            if rs[0].get("exit_only"):
                print(f"| {k} (to exit; reference) | {len(rs)} | {med(v)} | {min(v)}..{max(v)} | | | | |")
                continue
            tree = med([r["rss_tree_kb"] for r in rs]) / 1024
            per = med([r["rss_tree_per_worker_kb"] for r in rs]) / 1024
            pss = [r["pss_tree_per_worker_kb"] for r in rs if "pss_tree_per_worker_kb" in r]
            settled = [r["rss_settled_per_worker_kb"] for r in rs if "rss_settled_per_worker_kb" in r]
            at = f" (at {rs[0]['settled_s']} s)" if settled else ""
            print(f"| {k} | {len(rs)} | {med(v)} | {min(v)}..{max(v)} | {tree:.0f} | {per:.0f} | {med(pss) / 1024 if pss else float('nan'):.0f} | {f'{med(settled) / 1024:.0f}{at}' if settled else ''} |")
            if k.startswith("tessera"):
                FIGURES.append((f"start-up to first healthy answer, ms ({k})", f"{med(v)} ms", "", float(med(v)), ("<=", 300), []))
                if "npm start" in k:
                    FIGURES.append((f"idle RSS per worker, MiB (whole `npm start` tree / workers; {k})", f"{per:.0f} MiB", "", per, ("<=", 120), []))
                    if settled:
                        s_per = med(settled) / 1024
                        FIGURES.append((f"idle RSS per worker, MiB, {rs[0]['settled_s']} s after the first healthy answer (whole `npm start` tree / workers; {k})", f"{s_per:.0f} MiB", "", s_per, ("<=", 120), []))

    read = load("read") + load("read-go")
    if read:
        t = runs_table(read, "Token checks (C in flight)")
        sb = ("supabase GET /user", "supabase")
        for s in ts_systems(t):
            ratio(t, ("tessera GET /session", s), sb, f"token check REST vs Supabase GET /user ({s})", (">=", 2))
            ratio(t, ("tessera gRPC GetSession", s), sb, f"token check gRPC GetSession (h2c, C connections) vs Supabase GET /user ({s})", (">=", 2))
            ratio(t, ("tessera gRPC GetSession 1conn", s), sb, f"token check gRPC GetSession (1 connection x C streams) vs Supabase GET /user ({s})", (">=", 2))
        if "tessera-w1" in ts_systems(t) and "tessera-w2" in ts_systems(t):
            # (not the 1-connection run: one connection is served by one worker)
            for scen in ("tessera GET /session", "tessera gRPC GetSession"):
                ratio(t, (scen, "tessera-w2"), (scen, "tessera-w1"), f"token checks, 2 workers vs 1 ({scen[8:]})", (">=", 1.7))

    noop = load("noop") + load("floor")
    if noop:
        t = runs_table(noop, "No-op calls and Node platform floors")
        for s in ts_systems(t):
            ratio(t, ("tessera GET /jwt/version", s), ("node http1 floor", "node-floor"), f"no-op REST vs node:http floor ({s})")
            ratio(t, ("tessera gRPC GetVersion", s), ("node h2c gRPC floor", "node-floor"), f"no-op gRPC vs node:http2 floor ({s})")
            ratio(t, ("tessera gRPC GetVersion 1conn", s), ("node h2c gRPC floor 1conn", "node-floor"), f"no-op gRPC, 1 connection, vs node:http2 floor ({s})")
            ratio(t, ("tessera GET /jwt/version", s), ("supabase GET /health", "supabase"), f"no-op REST vs Supabase GET /health ({s})")

    for ph, title, target in (("refresh", "Token refresh (chained per in-flight lane)", (">=", 2)), ("login", "Password login", None), ("signup", "Sign-up", None)):
        recs = load(ph)
        if not recs:
            continue
        t = runs_table(recs, title)
        scen = recs[0]["scenario"]
        for s in ts_systems(t):
            ratio(t, (scen, s), (scen, "supabase"), f"{scen} vs Supabase ({s})", target)

    # login per round against the raw hash rate measured right after it (parallel = cores)
    lh = kept(load("login-hash"))
    lg = kept(load("login"))
    if lh and lg:
        raw = {(r["alg"], r["round"]): r["ops_per_s"] for r in lh}
        print(f"\n### Login against the raw hash rate (verifies/s at parallel {NCPU} = cores, measured in the same round)\n")
        print("| system | round | login/s | raw verifies/s | login / raw |")
        print("|---|---|---|---|---|")
        eff = defaultdict(list)
        for r in sorted(lg, key=lambda r: (r["system"], r["round"])):
            alg = "bcrypt" if r["system"] == "supabase" else "argon2id"
            if (alg, r["round"]) in raw:
                e = r["rps"] / raw[(alg, r["round"])]
                eff[r["system"]].append((r["round"], r["rps"], raw[(alg, r["round"])], e))
                print(f"| {r['system']} | {r['round']} | {r['rps']:.1f} | {raw[(alg, r['round'])]:.1f} | {e:.2f} |")
        for k, v in eff.items():
            m = med([x[3] for x in v])
            print(f"| **{k} median** | | {med([x[1] for x in v]):.1f} | {med([x[2] for x in v]):.1f} | **{m:.2f}** |")
            FIGURES.append((f"password login vs the raw hash rate at the same parameters ({k})", f"{med([x[1] for x in v]):.1f}/s",
                            f"{med([x[2] for x in v]):.1f} verifies/s", m, (">=", 0.9) if k.startswith("tessera") else None, [x[3] for x in v]))

    so = load("scaleout")
    if so:
        t = runs_table(so, "Scale-out: token checks, one instance vs two on one MongoDB (same load: 2 clients x C/2)")
        keys = list(t)
        for proto in ("GET /session", "gRPC GetSession"):
            one = [k for k in keys if k[0] == f"{proto}, 1 instance"]
            two = [k for k in keys if k[0] == f"{proto}, 2 instances"]
            if one and two:
                ratio(t, two[0], one[0], f"token checks ({proto}), 2 instances vs 1 on one MongoDB")

    print_figures()


if __name__ == "__main__":
    main()
