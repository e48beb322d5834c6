#!/usr/bin/env bash
# perf/run_binarytrees.sh — binary-trees (Benchmarks Game shape) on regio's
# collected heap (default: paced assists, with no memory limit set; and
# RG_GC_ASSIST=light as regio-light), Boehm GC 8.2 (normal and
# incremental), glibc malloc/free, APR pools and Go, side by side in one
# run.
# Usage: perf/run_binarytrees.sh [depth] [build dir] [runs]
#   (defaults: 18, build, 1).  Needs: a configured build dir (ninja builds
# perf/bench_binarytrees*), golang-go for the Go peer, gnuplot for the plot.
# Prints one line per system and run (systems alternate within a run), and
# writes perf/results/binarytrees_pauses_d<depth>.svg: the distribution of
# pauses (regio: per-cycle max handshake acknowledgement; Boehm: each
# collection; Go: each stop-the-world pause), from the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
depth=${1:-18}
build=${2:-build}
runs=${3:-1}
targets=()
for t in bench_binarytrees bench_binarytrees_boehm bench_binarytrees_malloc bench_binarytrees_apr; do
  grep -q "^build perf/$t:" "$build/build.ninja" && targets+=("perf/$t")
done
ninja -C "$build" "${targets[@]}" >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if command -v go >/dev/null; then
  (cd perf/go/binarytrees && GO111MODULE=off GOCACHE="$tmp/cache" go build -o "$tmp/bt_go" .)
fi
for r in $(seq "$runs"); do
  for sys in regio regio-light boehm boehm-incr malloc apr go; do
    envs=()
    case $sys in
      regio) bin="$build/perf/bench_binarytrees" ;;
      regio-light) bin="$build/perf/bench_binarytrees"; envs=(RG_GC_ASSIST=light) ;;
      boehm) bin="$build/perf/bench_binarytrees_boehm" ;;
      boehm-incr) bin="$build/perf/bench_binarytrees_boehm"; envs=(BT_BOEHM_INCR=1) ;;
      malloc) bin="$build/perf/bench_binarytrees_malloc" ;;
      apr) bin="$build/perf/bench_binarytrees_apr" ;;
      go) bin="$tmp/bt_go" ;;
    esac
    if [ -x "$bin" ]; then env ${envs[@]+"${envs[@]}"} "$bin" "$depth" "$tmp/pauses_$sys"; fi
  done
done
if command -v gnuplot >/dev/null; then
  mkdir -p perf/results
  for sys in regio regio-light boehm go; do
    [ -s "$tmp/pauses_$sys" ] || continue
    sort -n "$tmp/pauses_$sys" | awk -v n="$(wc -l <"$tmp/pauses_$sys")" '{ printf "%.3f %.4f\n", $1 / 1000, NR / n }' >"$tmp/cdf_$sys"
  done
  plots=()
  for sys in regio regio-light boehm go; do
    [ -s "$tmp/cdf_$sys" ] && plots+=("'$tmp/cdf_$sys' using 1:2 with steps lw 2 title '$sys'")
  done
  out=perf/results/binarytrees_pauses_d$depth.svg
  gnuplot <<GP
set terminal svg size 720,420 dynamic font "sans,12"
set output '$out'
set title "binary-trees depth $depth: pause distribution (fraction of pauses <= x)"
set logscale x
set xlabel "pause (µs, log scale)"
set ylabel "fraction of pauses"
set key bottom right
set grid
set yrange [0:1.02]
plot $(IFS=,; echo "${plots[*]}")
GP
  echo "plot: $out"
fi
