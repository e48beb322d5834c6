#!/usr/bin/env bash
# examples/dpdk_fwd/run.sh — runs dpdk_fwd on each mbuf pool, side by side,
# in alternating rounds (machines are noisy: compare within one run).
#   run.sh [BUILD_DIR] [SECONDS] [ROUNDS]      defaults: build 3 2
# EAL: no hugepages, no NIC, two net_null ports (PLATFORM.md's flags).
set -euo pipefail
build=${1:-build}; secs=${2:-3}; rounds=${3:-2}
bin=$build/examples/dpdk_fwd/dpdk_fwd
[ -x "$bin" ] || { echo "run.sh: $bin not built (meson feature dpdk)"; exit 1; }
eal=(--no-huge --no-pci -m 512 --no-shconf "--lcores=0@(0-1)" --no-telemetry
     --log-level=lib.eal:warning --vdev=net_null0 --vdev=net_null1)
for cache in 256 0; do
  for r in $(seq "$rounds"); do
    for pool in regio regio-ops ring_mp_mc; do
      "$bin" "${eal[@]}" -- --seconds "$secs" --pool "$pool" --cache "$cache" | tail -1 |
        sed "s/^/cache $cache round $r: /"
    done
  done
done
