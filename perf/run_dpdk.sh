#!/usr/bin/env bash
# perf/run_dpdk.sh — the DPDK section of perf/RESULTS.md in one run:
#   1. instructions per object (callgrind, repeatable) for mbuf alloc+free on
#      each pool, DPDK cache 256 and off, single and bulk 32;
#   2. CPU time per object, in PROCS separate processes (each has its own
#      physical placement of the pools, which moves a cell by 10-20% with the
#      same instructions), each the median of interleaved rounds; then the
#      median over the processes of each cell and of each ratio;
#   3. examples/dpdk_fwd: instructions per packet (callgrind), then Mpps in
#      alternating runs with medians (examples/dpdk_fwd/run.sh).
#   run_dpdk.sh [BUILD_DIR] [ROUNDS] [FWD_SECONDS] [FWD_ROUNDS] [PROCS]
# defaults: build 5 3 5 5.  EAL: PLATFORM.md's flags (no hugepages, no NIC).
set -euo pipefail
build=${1:-build}; rounds=${2:-5}; fsecs=${3:-3}; frounds=${4:-5}; procs=${5:-5}
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
echo "## CPU time"
echo
tabs=$(mktemp)
for i in $(seq "$procs"); do
  echo "process $i:"
  "$bin" "${eal[@]}" -- --rounds "$rounds" --ms 100 | tee -a "$tabs" | grep '^| [0-9]'
done
echo
echo "median over $procs processes, CPU ns per object (median of the per-process ratios):"
echo
echo "| DPDK cache | op | regio (regio memory) | regio-ops (DPDK memory) | ring_mp_mc |"
echo "|---|---|---|---|---|"
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for cell in "256|single" "256|bulk 32" "0|single" "0|bulk 32"; do
  c=${cell%%|*}; o=${cell#*|}
  rows=$(grep "^| $c | $o |" "$tabs" | tr -d '()x' | awk -F'|' '{ split($4, a, " "); split($5, b, " "); print a[1], a[2], b[1], b[2], $6 }')
  m=(); for k in 1 2 3 4 5; do m+=("$(awk -v k=$k '{ print $k }' <<<"$rows" | median)"); done
  printf '| %s | %s | %.2f (%.2fx) | %.2f (%.2fx) | %.2f |\n' "$c" "$o" "${m[0]}" "${m[1]}" "${m[2]}" "${m[3]}" "${m[4]}"
done
rm -f "$tabs"
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
