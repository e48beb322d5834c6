#!/usr/bin/env bash
# examples/kvcache/load.sh [KVCACHE] [SECONDS] — memcaslap (libmemcached-tools)
# against kvcache and against memcached, same settings for both: one server
# thread, 64 MiB, memcaslap's defaults (1 thread, 16 connections, 90/10
# get/set), on 127.0.0.1.  Prints the TPS of each side by side.  Servers are
# stopped by PID.
set -u
srv=${1:-build/examples/kvcache/kvcache}
secs=${2:-10}
command -v memcaslap >/dev/null || { echo "memcaslap missing (libmemcached-tools)"; exit 77; }
command -v memcached >/dev/null || { echo "memcached missing"; exit 77; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { # a port nobody listens on: bind :0 through kvcache's own trick is overkill
  local p
  while :; do p=$((20000 + RANDOM % 20000)); (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }; done
}
run_caslap() { # port -> TPS
  memcaslap -s 127.0.0.1:"$1" -t "${secs}s" >"$tmp/caslap.$1" 2>&1
  awk '/^Run time:/ { for (i = 1; i <= NF; i++) if ($i == "TPS:") print $(i+1) }' "$tmp/caslap.$1" | tail -1
}

"$srv" -p 0 -t 1 -m 64 >"$tmp/kv.out" &
pids+=($!)
for _ in $(seq 50); do kport=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$tmp/kv.out"); [ -n "$kport" ] && break; sleep 0.1; done
mport=$(free_port)
user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
memcached "${user[@]}" -m 64 -t 1 -p "$mport" -l 127.0.0.1 -U 0 &
pids+=($!)
sleep 0.5
kv=$(run_caslap "$kport")
mc=$(run_caslap "$mport")
printf '%-10s %12s\n' server TPS kvcache "${kv:-?}" memcached "${mc:-?}"
