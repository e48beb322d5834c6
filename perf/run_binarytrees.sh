#!/usr/bin/env bash
# perf/run_binarytrees.sh — binary-trees (Benchmarks Game shape) on regio's
# collected heap, Boehm GC 8.2 and Go, side by side in one run.
# Usage: perf/run_binarytrees.sh [depth] [build dir]   (defaults: 18, build)
# Needs: a configured build dir (ninja builds perf/bench_binarytrees*),
# golang-go for the Go peer.  Prints one line per system.
set -euo pipefail
cd "$(dirname "$0")/.."
depth=${1:-18}
build=${2:-build}
ninja -C "$build" perf/bench_binarytrees perf/bench_binarytrees_boehm >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if command -v go >/dev/null; then
  (cd perf/go/binarytrees && GO111MODULE=off GOCACHE="$tmp/cache" go build -o "$tmp/bt_go" .)
fi
for bin in "$build/perf/bench_binarytrees" "$build/perf/bench_binarytrees_boehm" "$tmp/bt_go"; do
  [ -x "$bin" ] && "$bin" "$depth"
done
