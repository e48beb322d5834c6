#!/usr/bin/env bash
# perf/run_dpdk.sh — the DPDK section of perf/RESULTS.md in one run:
#   1. instructions per object (callgrind, repeatable) for mbuf alloc+free on
#      each pool, DPDK cache 256 and off, single and bulk 32;
#   2. the timed table (median of interleaved rounds);
#   3. examples/dpdk_fwd: instructions per packet (callgrind), then Mpps in
#      alternating runs with medians (examples/dpdk_fwd/run.sh).
#   run_dpdk.sh [BUILD_DIR] [ROUNDS] [FWD_SECONDS] [FWD_ROUNDS]
# defaults: build 9 3 5.  EAL: PLATFORM.md's flags (no hugepages, no NIC).
set -euo pipefail
build=${1:-build}; rounds=${2:-9}; fsecs=${3:-3}; frounds=${4:-5}
here=$(cd "$(dirname "$0")" && pwd)
bin=$build/perf/bench_dpdk
[ -x "$bin" ] || { echo "run_dpdk.sh: $bin not built (meson feature dpdk)"; exit 1; }
eal=(--no-huge --no-pci -m 512 --no-shconf "--lcores=0@(0-1)" --no-telemetry
     --log-level=lib.eal:warning)
names=(regio regio-ops ring_mp_mc); caches=(256 off); ops=(single "bulk 32")

echo "## instructions per object (callgrind --toggle-collect=count_loop, 80000 objects)"
echo
echo "| DPDK cache | op | regio | regio-ops | ring_mp_mc | regio-ops/ring_mp_mc |"
echo "|---|---|---|---|---|---|"
if command -v valgrind >/dev/null; then
  out=$(mktemp -d)
  for c in 0 1; do
    for o in 0 1; do
      iters=$(( o == 0 ? 20000 : 2500 ))
      row=()
      for p in 0 1 2; do
        valgrind --tool=callgrind --toggle-collect=count_loop --callgrind-out-file="$out/cg" \
          "$bin" "${eal[@]}" -- --count $p $c $o --iters $iters >/dev/null 2>"$out/log"
        ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/log")
        row+=("$(awk -v ir="$ir" 'BEGIN { printf "%.1f", ir / 80000 }')")
      done
      ratio=$(awk -v a="${row[1]}" -v b="${row[2]}" 'BEGIN { printf "%.2fx", a / b }')
      echo "| ${caches[$c]} | ${ops[$o]} | ${row[0]} | ${row[1]} | ${row[2]} | $ratio |"
    done
  done
  rm -rf "$out"
else
  echo "(valgrind not installed: skipped)"
fi
echo
echo "## time"
echo
"$bin" "${eal[@]}" -- --rounds "$rounds" --ms 200
echo
echo "## dpdk_fwd"
echo
fwd=$build/examples/dpdk_fwd/dpdk_fwd
if command -v valgrind >/dev/null; then
  echo "instructions per forwarded packet (callgrind --toggle-collect='forward_loop*', 2 s runs):"
  echo
  echo "| DPDK cache | regio | regio-ops | ring_mp_mc | regio-ops/ring_mp_mc |"
  echo "|---|---|---|---|---|"
  out=$(mktemp -d)
  for cache in 256 0; do
    row=()
    for pool in regio regio-ops ring_mp_mc; do
      valgrind --tool=callgrind '--toggle-collect=forward_loop*' --callgrind-out-file="$out/cg" \
        "$fwd" "${eal[@]}" --vdev=net_null0 --vdev=net_null1 -- --seconds 2 --pool $pool \
        --cache $cache >"$out/out" 2>"$out/log"
      pk=$(sed -n 's/.*(\([0-9]*\) packets.*/\1/p' "$out/out")
      ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/log")
      row+=("$(awk -v ir="$ir" -v pk="$pk" 'BEGIN { printf "%.1f", ir / pk }')")
    done
    ratio=$(awk -v a="${row[1]}" -v b="${row[2]}" 'BEGIN { printf "%.2fx", a / b }')
    echo "| $cache | ${row[0]} | ${row[1]} | ${row[2]} | $ratio |"
  done
  rm -rf "$out"
  echo
fi
"$here/../examples/dpdk_fwd/run.sh" "$build" "$fsecs" "$frounds"
