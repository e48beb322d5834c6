#!/usr/bin/env python3
"""perf/run_map.py — rg_map vs glib's GHashTable vs Go 1.19's map, same keys
in the same run, and the memory left after deleting 99% of 1M keys.

What it does:
  1. ROUNDS alternating rounds of perf/bench_map (rg_map and GHashTable,
     Google Benchmark, CPU time per operation, repetitions randomly
     interleaved) and of `go test -bench` in perf/go (cpu-ns/op: process CPU
     time per operation, so the collector's work counts), so slow phases of a
     noisy machine hit every map alike.  The figure is the median over all
     repetitions.
  2. `bench_map --mem` and `go test -run TestMemAfterDelete`: bytes after
     deleting 99% of 1M keys vs a fresh map of the remaining keys.
  3. Prints a Markdown table with ratios, checks the goals (lookups >= 1.5x
     faster than GHashTable and no slower than Go; memory within 2x of a
     fresh map), writes perf/results/map.{md,json,tsv,svg}.

Usage: perf/run_map.py --build BUILD [--rounds 3] [--sizes 1000,100000,1000000]
       [--ops hit,miss] [--no-mem]     (10M keys: --sizes 10000000 takes long)
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

OPS = ["insert", "hit", "miss", "delete"]
IMPLS = ["rg", "glib", "go"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_c(binary, sizes, reps, min_time, out_json):
    filt = "^map/(rg|glib)/(" + "|".join(OPS) + ")/(" + "|".join(str(s) for s in sizes) + ")/"
    cmd = [binary, f"--benchmark_filter={filt}", f"--benchmark_repetitions={reps}",
           f"--benchmark_min_time={min_time}", "--benchmark_enable_random_interleaving=true",
           f"--benchmark_out={out_json}", "--benchmark_out_format=json"]
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit(f"bench_map failed ({r.returncode}):\n{r.stderr[-2000:]}")
    with open(out_json) as f:
        doc = json.load(f)
    out = []
    for b in doc["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        if b.get("error_occurred"):
            raise SystemExit(f"{b['name']}: {b.get('error_message')}")
        m = re.match(r"^map/(rg|glib)/([a-z]+)/(\d+)/threads:1$", b["run_name"])
        if m and "per_item" in b:
            out.append((m.group(1), m.group(2), int(m.group(3)), b["per_item"] * 1e9))
    return out


def run_go(godir, sizes, reps, benchtime):
    filt = "^BenchmarkMap$/^(" + "|".join(OPS) + ")$/^(" + "|".join(str(s) for s in sizes) + ")$"
    cmd = ["go", "test", "-run", "^$", "-bench", filt, f"-benchtime={benchtime}", f"-count={reps}", "-timeout", "0"]
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off", GOTOOLCHAIN="local")
    r = subprocess.run(cmd, cwd=godir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"go test failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    out = []
    for line in r.stdout.splitlines():
        m = re.match(r"^BenchmarkMap/([a-z]+)/(\d+)-\d+\s+\d+\s+[\d.]+ ns/op\s+([\d.]+) cpu-ns/op", line)
        if m:
            out.append(("go", m.group(1), int(m.group(2)), float(m.group(3))))
    return out


def mem_figures(binary, godir):
    res = {}
    r = subprocess.run([binary, "--mem"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in r.stdout.splitlines():
        m = re.match(r"^rg_map .*: (\d+) bytes; after deleting 99%: (\d+) bytes .*: (\d+) bytes; ratio", line)
        if m:
            res["rg"] = tuple(int(x) for x in m.groups())
        m = re.match(r"^GHashTable .*: (\d+) bytes .*; after deleting 99%: (\d+) bytes; fresh: (\d+) bytes", line)
        if m:
            res["glib"] = tuple(int(x) for x in m.groups())
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off")
    r = subprocess.run(["go", "test", "-run", "^TestMemAfterDelete$", "-v"], cwd=godir,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in r.stdout.splitlines():
        m = re.match(r"^go map .*: (\d+) bytes .*; after deleting 99%: (\d+) bytes .*; fresh: (\d+) bytes", line)
        if m:
            res["go"] = tuple(int(x) for x in m.groups())
    return res


def plot(tsv, out, sizes):
    term = "svg size 960,460 dynamic noenhanced font 'sans,11'"
    script = f"""
set terminal {term}
set output '{out}'
set title 'rg_map vs GHashTable vs Go map: CPU ns per operation (lower is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set ylabel 'ns / operation (log)'
set xtics rotate by -30
set bmargin 6
set rmargin 8
set key top left
set datafile separator '\\t'
plot '{tsv}' using 2:xtic(1) title 'rg_map', '' using 3 title 'GHashTable', '' using 4 title 'Go map'
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, stderr=subprocess.PIPE)
    if r.returncode != 0:
        log(f"gnuplot failed: {r.stderr}")


def main():
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="meson build dir holding perf/bench_map")
    ap.add_argument("--out", default="perf/results")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--min-time", default="0.2")
    ap.add_argument("--go-benchtime", default="0.2s")
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--ops", default=",".join(OPS), help="subset of insert,hit,miss,delete")
    ap.add_argument("--no-mem", action="store_true", help="skip the memory figures")
    args = ap.parse_args()
    OPS[:] = [o for o in args.ops.split(",") if o in OPS]
    sizes = [int(s) for s in args.sizes.split(",")]
    binary = os.path.join(args.build, "perf", "bench_map")
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"no {binary}: build with -Dbenchmark=enabled (needs libglib2.0-dev)")
    godir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "go")
    os.makedirs(args.out, exist_ok=True)

    samples = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            log(f"round {rnd + 1}/{args.rounds}: bench_map")
            for impl, op, n, ns in run_c(binary, sizes, args.reps, args.min_time, os.path.join(tmp, "c.json")):
                samples.setdefault((impl, op, n), []).append(ns)
            log(f"round {rnd + 1}/{args.rounds}: go test -bench")
            for impl, op, n, ns in run_go(godir, sizes, args.reps, args.go_benchtime):
                samples.setdefault((impl, op, n), []).append(ns)
    med = {k: statistics.median(v) for k, v in samples.items()}
    mem = {}
    if not args.no_mem:
        log("memory after deleting 99% of 1M keys")
        mem = mem_figures(binary, godir)

    lines = []
    lines.append(f"CPU ns per operation, median of {args.rounds} rounds x {args.reps} repetitions; "
                 "byte-string keys of 9-15 bytes; lookups and deletes use copies of the keys in shuffled order.")
    lines.append("")
    lines.append("| op | keys | rg_map | GHashTable | Go map | GHashTable / rg | Go / rg |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    rows = []
    goals = []
    for op in OPS:
        for n in sizes:
            v = [med.get((i, op, n)) for i in IMPLS]
            if v[0] is None:
                continue
            rg, gl, go = v
            r_gl = gl / rg if gl else None
            r_go = go / rg if go else None
            f = lambda x: "—" if x is None else f"{x:.1f}"
            g = lambda x: "—" if x is None else f"{x:.2f}x"
            lines.append(f"| {op} | {n:,} | {f(rg)} | {f(gl)} | {f(go)} | {g(r_gl)} | {g(r_go)} |")
            rows.append((f"{op}/{n}", rg, gl or 0, go or 0))
            if op in ("hit", "miss"):
                goals.append((f"{op}/{n}: >= 1.5x faster than GHashTable", r_gl is not None and r_gl >= 1.5))
                goals.append((f"{op}/{n}: no slower than Go", r_go is not None and r_go >= 1.0))
    lines.append("")
    lines.append("Memory after deleting 99% of 1,000,000 keys (10,000 left):")
    lines.append("")
    lines.append("| map | full | after deleting 99% | fresh map of the 10,000 keys | after / fresh |")
    lines.append("|---|---:|---:|---:|---:|")
    names = {"rg": "rg_map (rg_map_mem: table + key bytes)", "glib": "GHashTable (malloc bytes; keys not owned)",
             "go": "Go map (MemStats.HeapAlloc; keys shared)"}
    for i in IMPLS:
        if i in mem:
            full, after, fresh = mem[i]
            lines.append(f"| {names[i]} | {full:,} | {after:,} | {fresh:,} | {after / fresh:.2f} |")
            if i == "rg":
                goals.append(("rg_map memory after 99% deletes within 2x of a fresh map", after <= 2 * fresh))
    lines.append("")
    for g, ok in goals:
        lines.append(f"- {'MET' if ok else 'MISSED'}: {g}")
    md = "\n".join(lines)
    print(md)
    with open(os.path.join(args.out, "map.md"), "w") as f:
        f.write(md + "\n")
    with open(os.path.join(args.out, "map.json"), "w") as f:
        json.dump({"median_ns": {"/".join(map(str, k)): v for k, v in med.items()},
                   "samples_ns": {"/".join(map(str, k)): v for k, v in samples.items()},
                   "memory": mem}, f, indent=1)
    tsv = os.path.join(args.out, "map.tsv")
    with open(tsv, "w") as f:
        for r in rows:
            f.write("\t".join([r[0]] + [f"{x:.3f}" for x in r[1:]]) + "\n")
    if shutil.which("gnuplot"):
        plot(tsv, os.path.join(args.out, "map.svg"), sizes)


if __name__ == "__main__":
    main()
