#!/usr/bin/env bash
# examples/kvcache/load.sh — memcaslap (libmemcached-tools) against kvcache
# and against memcached, same settings for both, on 127.0.0.1, and a
# side-by-side table: TPS, latency (memcaslap's log2 histogram: mean, p50 and
# p99 buckets), the share of gets that missed (per round and overall), the
# items each server holds at the end (a cache that holds fewer misses more,
# and a miss is cheaper than a hit: read TPS beside these), peak RSS (VmHWM
# from /proc/PID/status, sampled once the runs are over), and regio's GC
# cycles and longest pause (kvcache's `stats`).
#
# Both servers run for the whole comparison; the load alternates between
# them (round 1: kvcache then memcached, round 2: memcached then kvcache, ...)
# so a busy machine hurts both alike.  Only the ratio of one run means
# anything on a shared machine.  Servers are stopped by PID.
#
# Usage: load.sh [options] [KVCACHE [SECONDS]]
#   -t N     server threads, both servers (1)
#   -m MiB   memory limit, both servers (64): kvcache's hard limit, memcached -m
#   -s SEC   seconds per memcaslap run (10)
#   -r N     rounds; each round runs memcaslap once against each server (1)
#   -c N     memcaslap connections (16, its real default)
#   -T N     memcaslap threads (1, its real default)
#   -D       start kvcache with its debug dashboard (-D 127.0.0.1:0) and
#            print the URL while the load runs
#   -o DIR   keep memcaslap's raw output and a summary (summary.tsv) in DIR
#   -E       run kvcache's epoll loop instead of io_uring
#   -B USEC  kvcache busy-polls up to USEC µs before it sleeps (its -B)
# Exit 77 when memcaslap or memcached is missing.
set -u
threads=1 mib=64 secs=10 rounds=1 conns=16 cthreads=1 dash=0 outdir= kvextra=()
while getopts "t:m:s:r:c:T:Do:EB:" o; do
  case $o in
    t) threads=$OPTARG ;; m) mib=$OPTARG ;; s) secs=$OPTARG ;; r) rounds=$OPTARG ;;
    c) conns=$OPTARG ;; T) cthreads=$OPTARG ;; D) dash=1 ;; o) outdir=$OPTARG ;; E) kvextra+=(-E) ;; B) kvextra+=(-B "$OPTARG") ;;
    *) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//;/^set -u/d'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
srv=${1:-build/examples/kvcache/kvcache}
secs=${2:-$secs}
command -v memcaslap >/dev/null || { echo "memcaslap missing (libmemcached-tools)"; exit 77; }
command -v memcached >/dev/null || { echo "memcached missing"; exit 77; }
[ -x "$srv" ] || { echo "load.sh: no kvcache binary at $srv"; exit 2; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { # a port nobody listens on now (memcached needs a fixed -p)
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
  done
}
stat_of() { # port name -> value of "STAT name" from the server's stats
  exec 4<>/dev/tcp/127.0.0.1/"$1" || return
  printf 'stats\r\n' >&4
  local l v=
  while IFS= read -r -t 5 l <&4; do
    l=${l%$'\r'}
    [ "$l" = END ] && break
    case $l in "STAT $2 "*) v=${l#"STAT $2 "} ;; esac
  done
  exec 4>&- 4<&-
  echo "${v:-?}"
}
hwm_kib() { awk '/^VmHWM:/ { print $2 }' /proc/"$1"/status 2>/dev/null || echo 0; }
# memcaslap's "Total Statistics (N events)" block: "avg A" and "b E COUNT" for
# each log2 bucket E, which holds latencies in [2^(E-1), 2^E) microseconds.
hist_of() {
  awk '/^Total Statistics \(/ { on = 1; next }
       on && /Avg:/ { print "avg", $2 }
       on && /Log2 Dist:/ { d = 1; next }
       on && d && /^ *[0-9]+:/ { e = $1 + 0; for (i = 2; i <= NF; i++) print "b", e + i - 2, $i; next }
       on && d { exit }' "$1"
}
tps_of() { awk '/^Run time:/ { for (i = 1; i <= NF; i++) if ($i == "TPS:") t = $(i+1) } END { print t + 0 }' "$1"; }

# kvcache
kv_args=(-p 0 -t "$threads" -m "$mib" ${kvextra[@]+"${kvextra[@]}"})
[ "$dash" = 1 ] && kv_args+=(-D 127.0.0.1:0)
start_kv() {
  "$srv" "$@" >"$tmp/kv.out" 2>&1 &
  kpid=$!; pids+=($kpid)
  kport=
  for _ in $(seq 100); do
    kport=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$tmp/kv.out")
    [ -n "$kport" ] && break
    kill -0 "$kpid" 2>/dev/null || break
    sleep 0.1
  done
}
start_kv "${kv_args[@]}"
if [ -z "$kport" ] && [ "$dash" = 1 ] && grep -q 'not supported' "$tmp/kv.out"; then
  echo "load: no dashboard (regio built without libmicrohttpd); kvcache without -D"
  dash=0
  start_kv -p 0 -t "$threads" -m "$mib" ${kvextra[@]+"${kvextra[@]}"}
fi
[ -n "$kport" ] || { echo "load.sh: kvcache did not start:"; cat "$tmp/kv.out"; exit 1; }
# memcached, same threads and memory limit
mport=$(free_port)
user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
memcached "${user[@]}" -m "$mib" -t "$threads" -p "$mport" -l 127.0.0.1 -U 0 >"$tmp/mc.out" 2>&1 &
mpid=$!; pids+=($mpid)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$mport) 2>/dev/null && break; sleep 0.1; done
kill -0 "$mpid" 2>/dev/null || { echo "load.sh: memcached did not start:"; cat "$tmp/mc.out"; exit 1; }

echo "load: kvcache ($(sed -n 's/^loop //p' "$tmp/kv.out") loop) pid $kpid port $kport, memcached pid $mpid port $mport;" \
     "-t $threads -m $mib; memcaslap -c $conns -T $cthreads -t ${secs}s x $rounds round(s);" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$dash" = 1 ]; then
  dport=$(sed -n 's/^debug port \([0-9]*\)$/\1/p' "$tmp/kv.out")
  if [ -n "$dport" ]; then
    echo "load: kvcache's live dashboard during the run: http://127.0.0.1:$dport/debug/regio (memstats: /debug/vars)"
  fi
fi
gc0=$(stat_of "$kport" regio_num_gc)

run() { # name port round
  local f="$tmp/caslap.$1.$3"
  memcaslap -s 127.0.0.1:"$2" -t "${secs}s" -c "$conns" -T "$cthreads" -S "${secs}s" >"$f" 2>&1
  local t; t=$(tps_of "$f")
  local gm; gm=$(awk -v n="$1" '/^cmd_get:/ { g = $2 } /^get_misses:/ { m = $2 } END { print n, g + 0, m + 0 }' "$f")
  echo "$gm" >>"$tmp/miss"
  printf 'load: round %d %-9s %10s TPS, %s%% of gets missed, load average %s\n' "$3" "$1" "$t" \
    "$(echo "$gm" | awk '{ printf "%.1f", $2 ? 100 * $3 / $2 : 0 }')" "$(cut -d' ' -f1 /proc/loadavg)"
  echo "$1 $3 $t" >>"$tmp/tps"
  hist_of "$f" | sed "s/^/$1 /" >>"$tmp/hist"
}
for r in $(seq "$rounds"); do
  if [ $((r % 2)) = 1 ]; then run kvcache "$kport" "$r"; run memcached "$mport" "$r"
  else run memcached "$mport" "$r"; run kvcache "$kport" "$r"; fi
done

khwm=$(hwm_kib "$kpid"); mhwm=$(hwm_kib "$mpid")
gc1=$(stat_of "$kport" regio_num_gc)
pmax=$(stat_of "$kport" regio_pause_max_ns)
evk=$(stat_of "$kport" evictions); evm=$(stat_of "$mport" evictions)
itk=$(stat_of "$kport" curr_items); itm=$(stat_of "$mport" curr_items)
kill -0 "$kpid" 2>/dev/null || echo "load: kvcache died during the run"

# Summary: mean TPS over rounds, latency from the summed histograms.
summ() { # name -> "tps avg p50 p99"
  awk -v n="$1" '
    FILENAME ~ /tps$/ && $1 == n { t += $3; r++ }
    FILENAME ~ /hist$/ && $1 == n && $2 == "avg" { a += $3; ar++ }
    FILENAME ~ /hist$/ && $1 == n && $2 == "b" { h[$3 + 0] += $4; tot += $4; if ($3 + 0 > mx) mx = $3 + 0 }
    function pct(p,   c, e) { c = 0; for (e = 0; e <= mx; e++) { c += h[e]; if (c >= p * tot) return sprintf("%d-%d", 2 ^ (e - 1), 2 ^ e) } return "?" }
    END { printf "%d %d %s %s\n", r ? t / r : 0, ar ? a / ar : 0, tot ? pct(0.5) : "?", tot ? pct(0.99) : "?" }' \
    "$tmp/tps" "$tmp/hist"
}
read -r ktps kavg kp50 kp99 <<<"$(summ kvcache)"
read -r mtps mavg mp50 mp99 <<<"$(summ memcached)"
ratio=$(awk -v a="$ktps" -v b="$mtps" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "?" }')
rss_ratio=$(awk -v a="$khwm" -v b="$((mib * 1024))" 'BEGIN { printf "%.0f%% of -m", 100 * a / b }')
dgc=$([ "$gc0" != "?" ] && [ "$gc1" != "?" ] && echo $((gc1 - gc0)) || echo "?")
pus=$([ "$pmax" != "?" ] && awk -v p="$pmax" 'BEGIN { printf "%.1f", p / 1000 }' || echo "?")

echo
printf '%-30s %14s %14s %12s\n' "" kvcache memcached "kv/mc"
printf '%-30s %14s %14s %12s\n' "TPS (mean of rounds)" "$ktps" "$mtps" "$ratio"
printf '%-30s %14s %14s\n' "latency mean (us)" "$kavg" "$mavg"
printf '%-30s %14s %14s\n' "latency p50 bucket (us)" "$kp50" "$mp50"
printf '%-30s %14s %14s\n' "latency p99 bucket (us)" "$kp99" "$mp99"
printf '%-30s %14s %14s %12s\n' "peak RSS (MiB, VmHWM)" "$((khwm / 1024))" "$((mhwm / 1024))" "kv $rss_ratio"
miss_of() { awk -v n="$1" '$1 == n { g += $2; m += $3 } END { printf "%.1f", g ? 100 * m / g : 0 }' "$tmp/miss"; }
# a server that holds fewer items misses more gets, and a miss ("END") is
# cheaper to serve and to read than a hit: compare TPS with this in view
printf '%-30s %14s %14s\n' "get misses (% of gets)" "$(miss_of kvcache)" "$(miss_of memcached)"
printf '%-30s %14s %14s\n' "items held at the end" "$itk" "$itm"
printf '%-30s %14s %14s\n' "evictions" "$evk" "$evm"
printf '%-30s %14s %14s\n' "regio GC cycles during the run" "$dgc" "-"
printf '%-30s %14s %14s\n' "regio longest GC pause (us)" "$pus" "-"
if [ -n "$outdir" ]; then
  mkdir -p "$outdir"
  cp "$tmp"/caslap.* "$outdir"/
  { printf 'server\tthreads\tmib\tconns\tcthreads\tsecs\trounds\ttps\tlat_mean_us\tp50_us\tp99_us\thwm_kib\tgc_cycles\tpause_max_ns\tget_miss_pct\titems\tevictions\n'
    printf 'kvcache\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$threads" "$mib" "$conns" "$cthreads" "$secs" "$rounds" "$ktps" "$kavg" "$kp50" "$kp99" "$khwm" "$dgc" "$pmax" "$(miss_of kvcache)" "$itk" "$evk"
    printf 'memcached\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t-\t-\t%s\t%s\t%s\n' "$threads" "$mib" "$conns" "$cthreads" "$secs" "$rounds" "$mtps" "$mavg" "$mp50" "$mp99" "$mhwm" "$(miss_of memcached)" "$itm" "$evm"
  } >"$outdir/summary.tsv"
  awk '/^Total Statistics \(/ { on = 1; next } on && /Log2 Dist:/ { d = 1; next }
       on && d && /^ *[0-9]+:/ { e = $1 + 0; for (i = 2; i <= NF; i++) print FILENAME, e + i - 2, $i; next } on && d { on = d = 0 }' \
      "$tmp"/caslap.* | sed "s|$tmp/caslap\.||" >"$outdir/hist.tsv"
fi
