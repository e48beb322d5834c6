#!/usr/bin/env python3
"""perf/run_request.py — runs the per-request allocation benchmark of
ANCHORS.md for every allocator in one invocation and prints one table.

Called by scripts/bench (which builds first).  What it does:
  1. Runs the benchmark binaries (bench_request: bump, regio, APR, glibc; and
     one process per malloc replacement: jemalloc, tcmalloc, mimalloc) in
     ROUNDS alternating rounds, each with Google Benchmark's repetitions
     randomly interleaved, so slow phases of a noisy machine hit every
     allocator alike.  The figure is the median over all repetitions of the
     `per_item` counter: CPU time per allocation as one thread pays it.
  2. Counts instructions per allocation with callgrind (1 thread, touch8,
     a fixed number of requests, only the benchmark body collected).
  3. Prints a Markdown table with ratios vs the bump pointer and vs APR,
     checks the goals, writes perf/results/request.{md,json,tsv,svg}.

Noise: other builds share the two cores, so absolute times move 10-50% run
to run; the ratios inside one run are what the goals are stated in.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

NALLOC = 64
# Display order and the binary each variant lives in.
VARIANTS = [
    ("bump", "bench_request", "naive bump pointer (64 KiB chunk, reset per request)"),
    ("regio", "bench_request", "regio region (rg_region_new defaults, rg_region_reset per request)"),
    ("regio-64k", "bench_request", "regio region, 64 KiB first chunk (rg_region_new_opts)"),
    ("apr", "bench_request", "APR pools (apr_palloc, apr_pool_clear per request)"),
    ("tcmalloc", "bench_request_tcmalloc", "tcmalloc (gperftools, malloc/free)"),
    ("jemalloc", "bench_request_jemalloc", "jemalloc (malloc/free)"),
    ("mimalloc", "bench_request_mimalloc", "mimalloc (mi_malloc/mi_free)"),
    ("glibc", "bench_request", "glibc malloc/free"),
]
MODES = ["touch8", "fill"]
THREADS = [1, 2]
GOAL_VS_BUMP = 1.3
GOAL_VS_APR = 2.0


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_round(binary, out_json, reps, min_time):
    cmd = [binary, f"--benchmark_repetitions={reps}", f"--benchmark_min_time={min_time}",
           "--benchmark_enable_random_interleaving=true",
           f"--benchmark_out={out_json}", "--benchmark_out_format=json"]
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{os.path.basename(binary)} failed ({r.returncode}):\n{r.stderr}")
    with open(out_json) as f:
        return json.load(f)


NAME_RE = re.compile(r"^request/([^/]+)/([^/]+)/threads:(\d+)$")


def collect(samples, by_round, rnd, doc):
    for b in doc["benchmarks"]:
        if b.get("run_type") != "iteration" or b.get("error_occurred"):
            continue
        m = NAME_RE.match(b["run_name"])
        if not m or "per_item" not in b:
            continue
        key = (m.group(1), m.group(2), int(m.group(3)))
        samples.setdefault(key, []).append(b["per_item"] * 1e9)
        by_round.setdefault((rnd,) + key, []).append(b["per_item"] * 1e9)


def callgrind(binary, variant, requests, tmp):
    out = os.path.join(tmp, f"cg.{variant}.out")
    env = dict(os.environ, RG_DEBUG="poison=0")  # regio poisons under Valgrind unless told not to
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--collect-atstart=no",
           "--toggle-collect=rgb_counted_run", binary, f"--rgb_count=^request/{variant}/touch8$:{requests}"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    m = re.search(r"Collected : (\d+)", r.stderr)
    c = re.search(r"^rgb_count \S+ (\d+) (\d+)$", r.stdout, re.M)
    if r.returncode != 0 or not m or not c:
        log(f"callgrind failed for {variant}: {r.stderr[-500:]}")
        return None
    return int(m.group(1)) / int(c.group(2))


def fmt(x, nd=2):
    return "—" if x is None else f"{x:.{nd}f}"


def main():
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="meson build dir holding perf/bench_request*")
    ap.add_argument("--out", default="perf/results", help="where request.{md,json,tsv,svg} go")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds over the binaries")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per benchmark per round")
    ap.add_argument("--min-time", default="0.05", help="seconds per repetition (plain number)")
    ap.add_argument("--cg-requests", type=int, default=20000, help="requests counted by callgrind")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()

    perf_dir = os.path.join(args.build, "perf")
    binaries = []
    for _, b, _ in VARIANTS:
        if b not in binaries:
            binaries.append(b)
    present = [b for b in binaries if os.access(os.path.join(perf_dir, b), os.X_OK)]
    if "bench_request" not in present:
        raise SystemExit(f"no {perf_dir}/bench_request: build with -Dbenchmark=enabled first")
    for b in binaries:
        if b not in present:
            log(f"note: {b} not built (its library is missing); its row is left out")
    os.makedirs(args.out, exist_ok=True)

    t0 = time.time()
    samples = {}
    by_round = {}
    malloc_from = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for b in present:
                log(f"round {rnd + 1}/{args.rounds}: {b}")
                doc = run_round(os.path.join(perf_dir, b), os.path.join(tmp, f"{b}.{rnd}.json"),
                                args.reps, args.min_time)
                collect(samples, by_round, rnd, doc)
                context = doc["context"]
                malloc_from[b] = context.get("malloc_from", "?")
        instr = {}
        if not args.no_callgrind and shutil.which("valgrind"):
            for v, b, _ in VARIANTS:
                if b in present:
                    log(f"callgrind: {v}")
                    instr[v] = callgrind(os.path.join(perf_dir, b), v, args.cg_requests, tmp)
    elapsed = time.time() - t0

    # A peer whose malloc does not come from its own library measures glibc.
    expect = {"bench_request": "libc.so", "bench_request_jemalloc": "libjemalloc",
              "bench_request_tcmalloc": "libtcmalloc", "bench_request_mimalloc": "libmimalloc"}
    wrong = [b for b in present if expect[b] not in malloc_from.get(b, "")]
    for b in wrong:
        log(f"WARNING: {b} calls malloc from {malloc_from.get(b)}, not {expect[b]}: its row is dropped")
    med = {k: statistics.median(v) for k, v in samples.items()
           if not any(b in wrong for v2, b, _ in VARIANTS if v2 == k[0])}
    nsamp = min(len(v) for v in samples.values())
    rows = [v for v, b, _ in VARIANTS if b in present and b not in wrong]

    def get(v, mode, t):
        return med.get((v, mode, t))

    # ---- the table
    lines = []
    lines.append("| allocator | ns/alloc 1T | ns/alloc 2T | x bump 1T | x bump 2T | faster than APR 1T | faster than APR 2T "
                 "| fill: ns/alloc 1T | fill 2T | fill x bump 1T | instr/alloc (callgrind) |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for v in rows:
        c = [v]
        for t in THREADS:
            c.append(fmt(get(v, "touch8", t)))
        for t in THREADS:
            x, b = get(v, "touch8", t), get("bump", "touch8", t)
            c.append(fmt(x / b if x and b else None))
        for t in THREADS:
            x, a = get(v, "touch8", t), get("apr", "touch8", t)
            c.append(fmt(a / x if x and a else None))
        for t in THREADS:
            c.append(fmt(get(v, "fill", t)))
        x, b = get(v, "fill", 1), get("bump", "fill", 1)
        c.append(fmt(x / b if x and b else None))
        c.append(fmt(instr.get(v), 1))
        lines.append("| " + " | ".join(c) + " |")
    table = "\n".join(lines)

    def round_ratios(num, den, t):
        """The ratio of per-round medians, over the rounds: how stable it is."""
        out = []
        for rnd in range(args.rounds):
            x, y = by_round.get((rnd, num, "touch8", t)), by_round.get((rnd, den, "touch8", t))
            if x and y:
                out.append(statistics.median(x) / statistics.median(y))
        return f"{min(out):.2f}-{max(out):.2f}" if out else "-"

    # ---- goals
    verdict = []
    all_met = True
    for t in THREADS:
        r, b, a = get("regio", "touch8", t), get("bump", "touch8", t), get("apr", "touch8", t)
        if not (r and b and a):
            verdict.append(f"- {t} thread(s): not measured")
            all_met = False
            continue
        ok_b, ok_a = r / b <= GOAL_VS_BUMP, a / r >= GOAL_VS_APR
        rb, ar = round_ratios("regio", "bump", t), round_ratios("apr", "regio", t)
        all_met &= ok_b and ok_a
        verdict.append(f"- {t} thread{'s' if t > 1 else ''}: regio/bump = {r / b:.2f} (goal <= {GOAL_VS_BUMP}: "
                       f"{'met' if ok_b else 'MISSED'}), APR/regio = {a / r:.2f} (goal >= {GOAL_VS_APR}: "
                       f"{'met' if ok_a else 'MISSED'}); per round: regio/bump {rb}, APR/regio {ar}")
    verdict.append(f"- goals {'met' if all_met else 'NOT met'} in this run")

    host = (f"{context.get('num_cpus')} CPUs at {context.get('mhz_per_cpu')} MHz, "
            f"load average {', '.join(f'{x:.2f}' for x in context.get('load_avg', []))} at the last round")
    header = (f"Per-request allocation, {NALLOC} allocations per request (ns per allocation = median CPU time "
              f"per allocation per thread over {nsamp}+ repetitions in {args.rounds} interleaved rounds; "
              f"{host}; {elapsed:.0f} s)")
    print()
    print(header)
    print()
    print(table)
    print()
    print("\n".join(verdict))

    # ---- files
    with open(os.path.join(args.out, "request.md"), "w") as f:
        f.write(header + "\n\n" + table + "\n\n" + "\n".join(verdict) + "\n")
    with open(os.path.join(args.out, "request.json"), "w") as f:
        json.dump({"context": context, "elapsed_s": elapsed, "malloc_from": malloc_from,
                   "median_ns_per_alloc": {f"{v}/{m}/threads:{t}": x for (v, m, t), x in sorted(med.items())},
                   "samples_ns_per_alloc": {f"{v}/{m}/threads:{t}": x for (v, m, t), x in sorted(samples.items())},
                   "instructions_per_alloc": instr, "goals_met": all_met}, f, indent=1)
    tsv = os.path.join(args.out, "request.tsv")
    with open(tsv, "w") as f:
        f.write("# allocator\ttouch8_1T\ttouch8_2T\tfill_1T\tfill_2T\n")
        for v in rows:
            f.write(v + "\t" + "\t".join(fmt(get(v, m, t), 3).replace("—", "NaN")
                                         for m in MODES for t in THREADS) + "\n")
    if not args.no_plot and shutil.which("gnuplot"):
        plot(tsv, os.path.join(args.out, "request.svg"))
        plot(tsv, os.path.join(args.out, "request.png"))
    return 0


def plot(tsv, out):
    term = "svg size 900,480 dynamic font 'sans,12'" if out.endswith(".svg") else "pngcairo size 900,480"
    script = f"""
set terminal {term}
set output '{out}'
set title 'Per-request allocation: ns per allocation (64 allocations per request; lower is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left
set ylabel 'ns / allocation (CPU time per thread)'
set yrange [0:*]
set grid ytics
set xtics nomirror
set datafile missing 'NaN'
plot '{tsv}' using 2:xtic(1) title 'touch 8 B, 1 thread', '' using 3 title 'touch 8 B, 2 threads', \\
     '' using 4 title 'write every byte, 1 thread', '' using 5 title 'write every byte, 2 threads'
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, stderr=subprocess.PIPE)
    if r.returncode != 0:
        log(f"gnuplot failed: {r.stderr}")


if __name__ == "__main__":
    sys.exit(main())
