#!/usr/bin/env python3
"""perf/run_churn.py — the server-shaped churn (perf/bench_churn.c) on
regio's collected heap and in Go 1.19 (perf/go/churn), side by side.

For each thread count, runs regio then Go (each a fresh process: build the
table, churn for --secs, print `thread` and `summary` lines), then writes
perf/results/churn.{txt,md,tsv,svg}: the raw lines, the tables, every
histogram bucket, and a plot of each thread's operation latency by
percentile.  --baseline adds a run of each with the collector off (no
limit), the same operations at the same rate: the process CPU per
operation above that baseline is what collecting cost, counted the same
way for both systems.

Usage: perf/run_churn.py [--build DIR] [--live 1G] [--secs 20]
       [--rate 100000] [--threads 1,2] [--baseline] [--regio-4k] [--quick] [--out DIR]
       [--systems regio,go] [-- extra bench_churn args]
--quick: a 64 MiB live set for 3 s (a smoke run, ~30 s in all).
Needs: a configured meson build dir (ninja builds perf/bench_churn),
golang-go for the Go side, gnuplot for the plot (skipped if absent).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_line(line):
    parts = line.split()
    d = {"kind": parts[0], "sys": parts[1]}
    for p in parts[2:]:
        if "=" in p:
            k, v = p.split("=", 1)
            try:
                d[k] = float(v)
            except ValueError:
                d[k] = v
    return d


def run(cmd, env=None):
    print("+", " ".join(cmd), flush=True)
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    sys.stdout.write(p.stdout)
    if p.stderr.strip():
        sys.stdout.write("  stderr: " + p.stderr.strip().replace("\n", "\n  stderr: ") + "\n")
    print(f"  ({time.time() - t0:.0f} s, exit {p.returncode})", flush=True)
    rows = [parse_line(l) for l in p.stdout.splitlines() if l.startswith(("thread ", "summary "))]
    for r in rows:
        r["exit"] = p.returncode
        r["stderr"] = p.stderr.strip()
    return rows, p.stdout + p.stderr


def fmt(v, nd=1):
    if v is None or v == "":
        return "—"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{nd}f}"


def us(v):
    """µs -> readable: 3.2 µs, 180 µs, 14.4 ms"""
    if v is None:
        return "—"
    if v >= 1000:
        return f"{v / 1000:.1f} ms"
    if v >= 100:
        return f"{v:.0f} µs"
    return f"{v:.1f} µs"


def tables(summaries, threads_rows, base):
    out = []
    out.append("| system | threads | ops/s | cycles | pause p50 / p99 / max | op p50 | op p99 | op p99.9 | op max "
               "| clean op p99.9 / max | slow ops >20 µs: clean / preempted / blocked | GC CPU (own) "
               "| non-mutator CPU | GC CPU vs GC off | CPU µs/op | peak RSS MiB (limit) | RSS samples over limit "
               "| alloc fails | damaged |")
    out.append("|" + "---|" * 19)
    for s in summaries:
        b = base.get((s["sys"], int(s["threads"])))
        vs_off = "—"
        if b:
            ncpu = s.get("gomaxprocs", 2.0)
            extra = (s["cpu_us_per_op"] - b["cpu_us_per_op"]) * s["ops_per_s"] / 1e6 / ncpu
            vs_off = f"{extra * 100:.1f}%"
        pause = f"{us(s['pause_p50_us'])} / {us(s['pause_p99_us'])} / {us(s['pause_max_us'])}"
        if "stw_max_us" in s:
            pause += f" (single STW max {us(s['stw_max_us'])})"
        if "pause_clean_max_us" in s:
            # regio: the same cycles' longest acks with no context switch,
            # and how many acks the OS preempted or blocked
            pause += (f"; without preemption {us(s['pause_clean_p50_us'])} / {us(s['pause_clean_max_us'])}"
                      f" ({fmt(s['acks_preempted'], 0)} of {fmt(s['acks'], 0)} acks preempted,"
                      f" {fmt(s['acks_blocked'], 0)} blocked)")
        out.append("| " + " | ".join([
            s["sys"], fmt(s["threads"], 0), fmt(s["ops_per_s"], 0), fmt(s["cycles"], 0), pause,
            us(s["lat_p50_us"]), us(s["lat_p99_us"]), us(s["lat_p999_us"]), us(s["lat_max_us"]),
            f"{us(s['clean_p999_us'])} / {us(s['clean_max_us'])}",
            f"{fmt(s['slow_clean'], 0)} / {fmt(s['slow_preempted'], 0)} / {fmt(s['slow_blocked'], 0)}",
            f"{s['gc_cpu'] * 100:.1f}%", f"{s['nonmutator_cpu'] * 100:.1f}%", vs_off,
            fmt(s["cpu_us_per_op"], 2), f"{fmt(s['peak_rss_mib'], 0)} ({fmt(s['limit_mib'], 0)})",
            f"{fmt(s['rss_over_limit'], 0)} of {fmt(s['rss_samples'], 0)}",
            fmt(s.get("alloc_fails", 0), 0), fmt(s.get("damaged", 0) + s.get("missing", 0), 0),
        ]) + " |")
    out.append("")
    out.append("Per thread (safepoint = one rg_safepoint() call, regio only):")
    out.append("")
    out.append("| system | threads | thread | ops/s | op p50 | op p99 | op p99.9 | op max | clean op max "
               "| slow: clean / preempted / blocked | safepoint p99 / max | CPU s |")
    out.append("|" + "---|" * 12)
    for t in threads_rows:
        sp = "—"
        if "sp_max_us" in t:
            sp = f"{us(t['sp_p99_us'])} / {us(t['sp_max_us'])}"
        out.append("| " + " | ".join([
            t["sys"], fmt(t["threads"], 0), fmt(t["id"], 0), fmt(t["ops_per_s"], 0), us(t["lat_p50_us"]),
            us(t["lat_p99_us"]), us(t["lat_p999_us"]), us(t["lat_max_us"]), us(t["clean_max_us"]),
            f"{fmt(t['slow_clean'], 0)} / {fmt(t['slow_preempted'], 0)} / {fmt(t['slow_blocked'], 0)}", sp,
            fmt(t["cpu_s"], 2),
        ]) + " |")
    return "\n".join(out) + "\n"


def plot(tsv, svg, thread_counts):
    """Each thread's op latency against percentile (log-log, HdrHistogram
    style), one panel per thread count; thin lines: clean ops only."""
    if not shutil.which("gnuplot"):
        print("gnuplot not found: no plot")
        return
    # cumulative points per series
    series = {}
    with open(tsv) as f:
        for line in f:
            sysname, thr, who, kind, val, cnt = line.rstrip("\n").split("\t")
            if kind not in ("op", "op_clean"):
                continue
            series.setdefault((sysname, int(thr), who, kind), []).append((int(val), int(cnt)))
    tmp = tempfile.mkdtemp()
    panels = []
    for tc in thread_counts:
        cmds = []
        for (sysname, thr, who, kind), pts in sorted(series.items()):
            if thr != tc or sysname.endswith("gcoff"):
                continue
            pts.sort()
            n = sum(c for _, c in pts)
            path = os.path.join(tmp, f"{sysname}_{thr}_{who}_{kind}.dat")
            with open(path, "w") as o:
                c = 0
                for v, k in pts:
                    c += k
                    q = min(c / n, 1 - 1.0 / (n * 10))  # the max at 1/(10n)
                    o.write(f"{1.0 / (1.0 - q):.6g} {v / 1000.0:.6g}\n")
            palette = {"regio": ("#1f77b4", "#17becf"), "go": ("#d62728", "#ff7f0e"),
                       "regio-4k": ("#2ca02c", "#98df8a")}
            color = palette.get(sysname, ("#7f7f7f", "#bcbd22"))[1 if who == "t1" else 0]
            # clean ops: thin (dashed lines do not survive every SVG renderer)
            width = "lw 1" if kind == "op_clean" else "lw 2.5"
            title = f"{sysname} {who}" + (" (clean ops)" if kind == "op_clean" else "")
            cmds.append(f"'{path}' using 1:2 with steps {width} lc rgb '{color}' title '{title}'")
        if cmds:
            panels.append((tc, cmds))
    if not panels:
        return
    g = [f"set terminal svg size {520 * len(panels)},440 dynamic font 'sans,11'",
         f"set output '{svg}'",
         f"set multiplot layout 1,{len(panels)}",
         "set logscale xy", "set grid",
         "set xtics ('50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, '99.999%%' 100000, '99.9999%%' 1000000)",
         "set xlabel 'percentile of operations'", "set ylabel 'operation latency (µs)'",
         "set key top left font 'sans,9'", "set yrange [0.5:*]"]
    for tc, cmds in panels:
        g.append(f"set title '{tc} thread{'s' if tc > 1 else ''}: replace 1 + look up 4, per thread'")
        g.append("plot " + ", ".join(cmds))
    g.append("unset multiplot")
    gp = os.path.join(tmp, "plot.gp")
    with open(gp, "w") as o:
        o.write("\n".join(g) + "\n")
    subprocess.run(["gnuplot", gp], check=False)
    shutil.rmtree(tmp, ignore_errors=True)
    print("wrote", svg)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--live", default="1G")
    ap.add_argument("--secs", default="20")
    ap.add_argument("--rate", default="100000")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--systems", default="regio,go")
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--regio-4k", action="store_true",
                    help="also regio on 4 KiB pages (RG_HUGEPAGES=off), as Go 1.19's heap mostly is here")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "perf", "results"))
    ap.add_argument("extra", nargs="*")
    a = ap.parse_args()
    if a.quick:
        a.live, a.secs = "64M", "3"
    os.chdir(ROOT)
    subprocess.run(["ninja", "-C", a.build, "perf/bench_churn"], check=True, stdout=subprocess.DEVNULL)
    regio_bin = os.path.join(a.build, "perf", "bench_churn")
    tmp = tempfile.mkdtemp()
    go_bin = os.path.join(tmp, "churn_go")
    systems = a.systems.split(",")
    if "go" in systems:
        if shutil.which("go"):
            env = dict(os.environ, GO111MODULE="off", GOCACHE=os.path.join(tmp, "gocache"))
            subprocess.run(["go", "build", "-o", go_bin, "."], cwd=os.path.join(ROOT, "perf", "go", "churn"),
                           env=env, check=True)
        else:
            print("go not found: regio only")
            systems.remove("go")
    os.makedirs(a.out, exist_ok=True)
    tsv = os.path.join(a.out, "churn.tsv")
    if os.path.exists(tsv):
        os.remove(tsv)
    common = ["--live", a.live, "--secs", a.secs, "--rate", a.rate, "--hist", tsv] + a.extra
    summaries, trows, base, raw = [], [], {}, []
    header = (f"# perf/run_churn.py {' '.join(sys.argv[1:]).replace(a.out, '<out>')}\n# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"load average {os.getloadavg()[0]:.1f}, commit "
              + subprocess.run(["git", "log", "-1", "--format=%h %s"], stdout=subprocess.PIPE, text=True).stdout.strip())
    raw.append(header)
    thread_counts = [int(t) for t in a.threads.split(",")]
    for tc in thread_counts:
        variants = []
        for s in systems:
            variants.append((s, False))
            if a.baseline:
                variants.append((s, True))
            if s == "regio" and a.regio_4k:
                variants.append(("regio-4k", False))
        for s, off in variants:
            args = common + ["--threads", str(tc)] + (["--gc-off"] if off else [])
            if s == "regio":
                cmd = [regio_bin] + args
                env = dict(os.environ)
            elif s == "regio-4k":
                cmd = [regio_bin] + args + ["--label", "regio-4k"]
                env = dict(os.environ, RG_HUGEPAGES="off")
            else:
                cmd = [go_bin] + args
                env = dict(os.environ, GOMAXPROCS=os.environ.get("GOMAXPROCS", "2"))
                env.pop("GOMEMLIMIT", None)  # the program sets its own limit
            rows, text = run(cmd, env)
            pre = "GOMAXPROCS=2 " if s == "go" else "RG_HUGEPAGES=off " if s == "regio-4k" else ""
            shown = " ".join(cmd).replace(a.out, "<out>").replace(tmp, "<go build>")
            raw.append(f"$ {pre}{shown}\n{text.rstrip()}")  # no machine paths in the kept record
            for r in rows:
                if r["kind"] == "summary":
                    if off:
                        base[(s, tc)] = r
                    else:
                        summaries.append(r)
                elif not off:
                    trows.append(r)
    md = tables(summaries, trows, base)
    if base:
        md += "\nGC off (no limit), the baseline of \"GC CPU vs GC off\":\n\n"
        md += "| system | threads | ops/s | CPU µs/op | op p99.9 | op max | peak RSS MiB |\n|---|---|---|---|---|---|---|\n"
        for (s, tc), b in sorted(base.items()):
            md += (f"| {b['sys']} | {tc} | {fmt(b['ops_per_s'], 0)} | {fmt(b['cpu_us_per_op'], 2)} | "
                   f"{us(b['lat_p999_us'])} | {us(b['lat_max_us'])} | {fmt(b['peak_rss_mib'], 0)} |\n")
    with open(os.path.join(a.out, "churn.md"), "w") as o:
        o.write(header + "\n\n" + md)
    with open(os.path.join(a.out, "churn.txt"), "w") as o:
        o.write("\n\n".join(raw) + "\n")
    plot(tsv, os.path.join(a.out, "churn.svg"), thread_counts)
    print()
    print(md)
    shutil.rmtree(tmp, ignore_errors=True)
    bad = [s for s in summaries if s["exit"] != 0]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
