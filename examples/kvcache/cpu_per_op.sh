#!/usr/bin/env bash
# examples/kvcache/cpu_per_op.sh [KVCACHE] [OPS] — server CPU per operation,
# a figure a busy machine disturbs far less than TPS: for kvcache (io_uring
# loop), kvcache -E (epoll loop) and memcached, each fresh, one thread,
# -m 64, memcaslap's defaults for a fixed number of operations (-x OPS), then
# the server's utime+stime from /proc/PID/stat (all its threads, kernel
# time included) divided by OPS.  Servers are stopped by PID.
set -u
srv=${1:-build/examples/kvcache/kvcache}
ops=${2:-300000}
command -v memcaslap >/dev/null || { echo "memcaslap missing"; exit 77; }
command -v memcached >/dev/null || { echo "memcached missing"; exit 77; }
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
hz=$(getconf CLK_TCK)
one() { # name port-or-empty cmd...
  local name=$1 port=$2; shift 2
  "$@" >"$tmp/$name.out" 2>&1 &
  pid=$!
  for _ in $(seq 50); do
    [ -z "$port" ] && port=$(sed -n 's/^port //p' "$tmp/$name.out")
    [ -n "$port" ] && (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.1
  done
  memcaslap -s 127.0.0.1:"$port" -x "$ops" >"$tmp/$name.cl" 2>&1
  local t; t=$(awk '{ print $14 + $15 }' /proc/"$pid"/stat)
  kill "$pid"; wait "$pid" 2>/dev/null; pid=
  local tps; tps=$(awk '/^Run time:/ { for (i = 1; i <= NF; i++) if ($i == "TPS:") print $(i+1) }' "$tmp/$name.cl")
  printf '%-18s %8s CPU ticks %10s ns/op %10s TPS\n' "$name" "$t" "$((t * 1000000000 / hz / ops))" "${tps:-?}"
}
mport=$((20000 + RANDOM % 20000))
user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
echo "cpu_per_op: $ops operations each, load average $(cut -d' ' -f1-3 /proc/loadavg)"
one "kvcache io_uring" "" "$srv" -p 0 -t 1 -m 64
one "kvcache epoll" "" "$srv" -p 0 -t 1 -m 64 -E
one "memcached" "$mport" memcached "${user[@]}" -m 64 -t 1 -p "$mport" -l 127.0.0.1 -U 0
