#!/usr/bin/env bash
# examples/kvcache/cost_ab.sh — where one memcaslap thread's TPS goes: runs
# kvcache variants and memcached side by side (one thread, -m 64, all on
# 127.0.0.1), fills each, then alternates memcaslap runs (its defaults: 1
# thread, 16 connections) between them and prints per run: TPS, the share
# of gets missed, the client's user+system CPU per operation (/usr/bin/time),
# the server's CPU per operation (utime+stime of all its threads from
# /proc/PID/task/*/stat) and its voluntary context switches per operation
# (how often it slept waiting for a request).  With one client thread on 2
# cores the client's CPU per operation bounds TPS; read TPS beside it.
#
# Usage: cost_ab.sh [-s SECONDS (8)] [-r ROUNDS (2)] [-f FILL_SECONDS (8)]
#                   KVCACHE NAME[:ARG,ARG...]...
#   NAME:ARGS  a kvcache started with ARGS (commas become spaces), e.g.
#              "B0:-B,0" "B50:-B,50"; the name "mc" is memcached.
# Servers are stopped by PID.  Exit 77 when memcaslap or memcached is missing.
set -u
secs=8 rounds=2 fill=8
while getopts "s:r:f:" o; do
  case $o in s) secs=$OPTARG ;; r) rounds=$OPTARG ;; f) fill=$OPTARG ;;
    *) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//;/^set -u/d'; exit 2 ;; esac
done
shift $((OPTIND - 1))
kv=${1:?usage: cost_ab.sh [-s S] [-r R] [-f F] KVCACHE NAME[:ARGS]...}; shift
command -v memcaslap >/dev/null || { echo "memcaslap missing"; exit 77; }
command -v memcached >/dev/null || { echo "memcached missing"; exit 77; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time missing"; exit 77; }
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
hz=$(getconf CLK_TCK)
cpu() { local s=0 t; for t in /proc/"$1"/task/*; do s=$((s + $(awk '{ print $14 + $15 }' "$t"/stat))); done; echo $s; }
vcs() { local s=0 t; for t in /proc/"$1"/task/*; do s=$((s + $(awk '/^voluntary_ctxt/ { print $2 }' "$t"/status))); done; echo $s; }
names=(); declare -A port spid
user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
for spec in "$@"; do
  name=${spec%%:*}; args=; [ "$spec" != "$name" ] && args=${spec#*:}
  if [ "$name" = mc ]; then
    while :; do p=$((20000 + RANDOM % 20000)); (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || break; done
    memcached "${user[@]}" -m 64 -t 1 -p "$p" -l 127.0.0.1 -U 0 >"$tmp/$name.out" 2>&1 &
    spid[$name]=$!; port[$name]=$p
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
  else
    # shellcheck disable=SC2086
    "$kv" ${args//,/ } -p 0 -t 1 -m 64 >"$tmp/$name.out" 2>&1 &
    spid[$name]=$!; port[$name]=
    for _ in $(seq 50); do
      port[$name]=$(sed -n 's/^port //p' "$tmp/$name.out"); [ -n "${port[$name]}" ] && break; sleep 0.1
    done
  fi
  pids+=("${spid[$name]}"); names+=("$name")
  [ -n "${port[$name]}" ] || { echo "cost_ab.sh: $name did not start"; cat "$tmp/$name.out"; exit 1; }
done
echo "cost_ab: ${names[*]}; fill ${fill}s each, then ${rounds} x ${secs}s alternating; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for n in "${names[@]}"; do memcaslap -s 127.0.0.1:"${port[$n]}" -t "${fill}s" >/dev/null 2>&1; done
for r in $(seq "$rounds"); do
  order=("${names[@]}"); [ $((r % 2)) = 0 ] && mapfile -t order < <(printf '%s\n' "${names[@]}" | tac)
  for n in "${order[@]}"; do
    pid=${spid[$n]}; c0=$(cpu "$pid"); v0=$(vcs "$pid")
    /usr/bin/time -f "%U %S" -o "$tmp/t" memcaslap -s 127.0.0.1:"${port[$n]}" -t "${secs}s" -S "${secs}s" >"$tmp/o" 2>&1
    c1=$(cpu "$pid"); v1=$(vcs "$pid")
    read -r u s <"$tmp/t"
    awk -v n="$n" -v r="$r" -v u="$u" -v s="$s" -v c=$((c1 - c0)) -v hz="$hz" -v v=$((v1 - v0)) -v la="$(cut -d' ' -f1 /proc/loadavg)" '
      /^Run time:/ { for (i = 1; i <= NF; i++) { if ($i == "Ops:") o = $(i+1); if ($i == "TPS:") t = $(i+1) } }
      /^cmd_get:/ { g = $2 } /^get_misses:/ { m = $2 }
      END { if (!o) { printf "round %d %-6s no result\n", r, n; exit }
            printf "round %d %-6s TPS %7d  gets missed %4.1f%%  client CPU/op %.2f us (user %.2f + sys %.2f)  server CPU/op %.2f us  server sleeps/op %.3f  load %s\n",
                   r, n, t, g ? 100 * m / g : 0, (u + s) * 1e6 / o, u * 1e6 / o, s * 1e6 / o, c * 1e6 / hz / o, v / o, la }' "$tmp/o"
  done
done
