#!/usr/bin/env python3
"""perf/run_pool.py — pools and channels: regio vs DPDK (rte_mempool with a
per-thread cache of 256, rte_ring MP/MC) in one binary, and vs Go 1.19's
sync.Pool, buffered channel and channel-backed BufferPool in the same run.

What it does:
  1. ROUNDS alternating rounds of perf/bench_pool (Google Benchmark, JSON,
     repetitions randomly interleaved) and of `go test -bench` in perf/go,
     so a slow phase of a noisy machine hits every side alike.  Figures are
     medians over all repetitions.
  2. Two measures.  regio vs DPDK (same binary, same thread): CPU ns per
     object as one thread pays it.  regio vs Go: wall ns per operation,
     because that is what `go test -bench` reports (ns/op is wall time).
  3. Prints a Markdown table with the ratios and the goals of ANCHORS.md,
     writes perf/results/pool.{md,json,tsv,svg}.

Usage: perf/run_pool.py --build BUILD [--rounds 3] [--min-time 0.2]
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

HERE = os.path.dirname(os.path.abspath(__file__))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_c(binary, min_time, reps):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [binary, f"--benchmark_min_time={min_time}", f"--benchmark_repetitions={reps}",
           "--benchmark_enable_random_interleaving=true", "--benchmark_format=json",
           f"--benchmark_out={out}", "--benchmark_out_format=json"]
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        log(r.stderr)
        raise SystemExit(f"{binary} failed")
    with open(out) as f:
        data = json.load(f)
    os.unlink(out)
    res = {}
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        name = b["run_name"] if "run_name" in b else b["name"]
        scale = {"ns": 1.0, "us": 1e3, "ms": 1e6}[b["time_unit"]]
        n = 32 if "bulk32" in name else 1
        res.setdefault(name, {"cpu": [], "wall": []})
        res[name]["cpu"].append(b["cpu_time"] * scale / n)
        res[name]["wall"].append(b["real_time"] * scale / n)
    return res


def run_go(min_time, count):
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off", GO111MODULE="on")
    cmd = ["go", "test", "-run", "XXX", "-bench", "Pool|Chan", f"-benchtime={min_time}s", f"-count={count}"]
    r = subprocess.run(cmd, cwd=os.path.join(HERE, "go"), env=env, capture_output=True, text=True)
    if r.returncode != 0:
        log(r.stdout + r.stderr)
        raise SystemExit("go test failed")
    res = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^Benchmark(\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op", line)
        if m:
            res.setdefault(m.group(1), []).append(float(m.group(3)))
    return res


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="meson build dir holding perf/bench_pool")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.2)
    args = ap.parse_args()
    binary = os.path.join(args.build, "perf", "bench_pool")
    c_all, go_all = {}, {}
    for rnd in range(args.rounds):
        log(f"round {rnd + 1}/{args.rounds}: bench_pool")
        for k, v in run_c(binary, args.min_time, args.reps).items():
            c_all.setdefault(k, {"cpu": [], "wall": []})
            c_all[k]["cpu"] += v["cpu"]
            c_all[k]["wall"] += v["wall"]
        if shutil.which("go"):
            log(f"round {rnd + 1}/{args.rounds}: go test -bench")
            for k, v in run_go(args.min_time, args.reps).items():
                go_all.setdefault(k, []).extend(v)

    def c(name, what):
        return med(c_all.get(name, {}).get(what, []))

    def g(name):
        return med(go_all.get(name, []))

    rows = []  # (what, regio, peer, peer name, measure, ratio text, goal text, met)

    def add(what, r, p, pname, measure, goal_txt, ok):
        rows.append({"what": what, "regio": r, "peer": p, "peer_name": pname, "measure": measure,
                     "ratio": r / p if p == p and p else float("nan"), "goal": goal_txt, "met": ok})

    r1, d1 = c("objpool/regio/single/threads:1", "cpu"), c("objpool/dpdk/single/threads:1", "cpu")
    add("objpool get+put, 1 thread", r1, d1, "rte_mempool cache 256", "CPU ns/object", "<= 1.0x", r1 <= d1)
    r2, d2 = c("objpool/regio/single/threads:2", "cpu"), c("objpool/dpdk/single/threads:2", "cpu")
    add("objpool get+put, 2 threads", r2, d2, "rte_mempool cache 256", "CPU ns/object", "(info)", None)
    rb, db = c("objpool/regio/bulk32/threads:1", "cpu"), c("objpool/dpdk/bulk32/threads:1", "cpu")
    add("objpool get+put bulk 32, 1 thread", rb, db, "rte_mempool cache 256", "CPU ns/object", "<= 1.0x", rb <= db)
    rt, dt = c("chan/regio/try/threads:1", "cpu"), c("chan/dpdk_ring/try/threads:1", "cpu")
    add("chan try_send+try_recv, 1 thread", rt, dt, "rte_ring MP/MC", "CPU ns/pair", "<= 1.2x", rt <= 1.2 * dt)
    rs, gs = c("syncpool/regio/threads:1", "wall"), g("SyncPool")
    add("syncpool get+put, 1 thread", rs, gs, "Go sync.Pool", "wall ns/op", ">= 3.5x faster", rs * 3.5 <= gs)
    rs2, gs2 = c("syncpool/regio/threads:2", "wall") / 2, g("SyncPoolParallel")
    add("syncpool get+put, 2 threads", rs2, gs2, "Go sync.Pool RunParallel", "wall ns/op (throughput)", "(info)", None)
    rp, gp = c("chan/regio/prodcons/real_time/threads:2", "wall"), g("ChanProdCons")
    add("chan blocking producer/consumer", rp, gp, "Go buffered channel", "wall ns/element", ">= 2x faster", rp * 2 <= gp)
    ru, gu = c("chan/regio/unbuffered/real_time/threads:2", "wall"), g("ChanUnbufferedProdCons")
    add("chan unbuffered producer/consumer", ru, gu, "Go unbuffered channel", "wall ns/element", "(info)", None)
    rt1w, gc1 = c("chan/regio/try/threads:1", "wall"), g("ChanSendRecv")
    add("chan send+recv, 1 thread", rt1w, gc1, "Go buffered channel", "wall ns/pair", "(info)", None)
    ro, gb = c("objpool/regio/single/threads:1", "wall"), g("BufferPool")
    add("objpool vs the seed's BufferPool, 1 thread", ro, gb, "Go channel-backed pool", "wall ns/op", "(info)", None)
    ro2, gb2 = c("objpool/regio/single/threads:2", "wall") / 2, g("BufferPoolParallel")
    add("objpool vs BufferPool, 2 threads", ro2, gb2, "Go channel-backed pool parallel", "wall ns/op (throughput)", "(info)", None)

    lines = ["| what | regio | peer | peer ns | measure | regio/peer | goal | met |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        met = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(f"| {r['what']} | {r['regio']:.2f} | {r['peer_name']} | {r['peer']:.2f} | {r['measure']} | "
                     f"{r['ratio']:.2f}x | {r['goal']} | {met} |")
    table = "\n".join(lines)
    print(table)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "pool.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(args.out, "pool.json"), "w") as f:
        json.dump({"rows": rows, "c": c_all, "go": go_all, "rounds": args.rounds, "reps": args.reps}, f, indent=1)
    tsv = os.path.join(args.out, "pool.tsv")
    with open(tsv, "w") as f:
        for r in rows:
            label = r["what"].replace(" ", "_")
            f.write(f"{label}\t{r['regio']:.3f}\t{r['peer']:.3f}\n")
    if shutil.which("gnuplot"):
        script = f"""
set terminal svg size 1000,460 dynamic font 'sans,11'
set output '{os.path.join(args.out, "pool.svg")}'
set title 'Pools and channels: regio vs its peer per row (ns, lower is better; see pool.md for the measure)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set ylabel 'ns (log)'
set xtics rotate by -30 font 'sans,9'
set bmargin 9
set key top left
set datafile separator '\\t'
plot '{tsv}' using 2:xtic(1) title 'regio', '' using 3 title 'peer (DPDK or Go)'
"""
        r = subprocess.run(["gnuplot"], input=script, text=True, stderr=subprocess.PIPE)
        if r.returncode != 0:
            log(f"gnuplot failed: {r.stderr}")


if __name__ == "__main__":
    main()
