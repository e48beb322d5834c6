#!/usr/bin/env bash
# examples/dpdk_fwd/run.sh — runs dpdk_fwd on each mbuf pool, side by side,
# in alternating rounds (machines are noisy: compare within one run), with
# DPDK's cache on (256) and off, then prints each cell's median Mpps per
# second of the forwarding thread's CPU time (on a shared machine the wall
# clock also counts other processes' turns) and the ratio of the medians to
# ring_mp_mc's (above 1.00: regio forwards more).
#   run.sh [BUILD_DIR] [SECONDS] [ROUNDS]      defaults: build 3 5
# EAL: no hugepages, no NIC, two net_null ports (PLATFORM.md's flags).
set -euo pipefail
build=${1:-build}; secs=${2:-3}; rounds=${3:-5}
bin=$build/examples/dpdk_fwd/dpdk_fwd
[ -x "$bin" ] || { echo "run.sh: $bin not built (meson feature dpdk)"; exit 1; }
eal=(--no-huge --no-pci -m 512 --no-shconf "--lcores=0@(0-1)" --no-telemetry
     --log-level=lib.eal:warning --vdev=net_null0 --vdev=net_null1)
pools=(regio regio-ops ring_mp_mc)
res=$(mktemp); trap 'rm -f "$res"' EXIT
for cache in 256 0; do
  for r in $(seq "$rounds"); do
    order=("${pools[@]}")
    (( r % 2 == 0 )) && order=(ring_mp_mc regio-ops regio) # alternate who runs first
    for pool in "${order[@]}"; do
      line=$("$bin" "${eal[@]}" -- --seconds "$secs" --pool "$pool" --cache "$cache" | tail -1)
      echo "cache $cache round $r: $line"
      mpps=$(sed -n 's/.*, \([0-9.]*\) Mpps per CPU second.*/\1/p' <<<"$line")
      echo "$cache $pool ${mpps:-0}" >>"$res"
    done
  done
done
echo
echo "median Mpps per CPU second:"
echo
echo "| DPDK cache | regio | regio-ops | ring_mp_mc | regio/ring_mp_mc | regio-ops/ring_mp_mc |"
echo "|---|---|---|---|---|---|"
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for cache in 256 0; do
  m=()
  for pool in "${pools[@]}"; do
    m+=("$(awk -v c="$cache" -v p="$pool" '$1 == c && $2 == p { print $3 }' "$res" | median)")
  done
  awk -v c="$cache" -v a="${m[0]}" -v b="${m[1]}" -v r="${m[2]}" \
    'BEGIN { printf "| %s | %.2f | %.2f | %.2f | %.2fx | %.2fx |\n", c, a, b, r, a / r, b / r }'
done
