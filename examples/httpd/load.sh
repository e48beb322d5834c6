#!/usr/bin/env bash
# examples/httpd/load.sh — httpd (regio), httpd --alloc=malloc and nginx
# serving the same files on loopback, measured with wrk side by side in one
# run.  Each server gets its own docroot copy, config and pid, and is
# stopped by PID.  Never part of scripts/test.
# nginx runs twice, with tcp_nopush off and on.  With ROUNDS > 1 the servers
# run in alternating order (forward, then backward, ...) so that a change in
# the machine's load hits all of them alike; summary.py takes the medians
# and draws the plot (gnuplot).
# usage: load.sh BUILD_DIR
# env: DURATION (10), CONNS (32), WRK_THREADS (1), WORKERS (1),
#      SIZES ("1k 64k"), ROUNDS (1), RSS_RUN (0; seconds of one extra 1 KiB
#      run on httpd with VmRSS sampled every 5 s), OUT (file prefix for the
#      .tsv, .summary.tsv and .svg results)
set -euo pipefail
build=${1:?usage: load.sh BUILD_DIR}
httpd=$build/examples/httpd/httpd
[ -x "$httpd" ] || { echo "load.sh: build $httpd first" >&2; exit 1; }
dur=${DURATION:-10} conns=${CONNS:-32} wt=${WRK_THREADS:-1} workers=${WORKERS:-1}
sizes=${SIZES:-"1k 64k"} out=${OUT:-${TMPDIR:-/tmp}/httpd-load}
work=$(mktemp -d "${TMPDIR:-/tmp}/regio-httpd-load-XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/www"; chmod 755 "$work" "$work/www"
for s in $sizes; do
  n=$(( ${s%k} * 1024 ))
  head -c "$n" /dev/urandom > "$work/www/$s.bin"; chmod 644 "$work/www/$s.bin"
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_httpd() { # $1 alloc
  rm -f "$work/port"
  "$httpd" --root="$work/www" --port=0 --port-file="$work/port" --workers="$workers" --alloc="$1" --quiet &
  pid=$!; pids+=("$pid")
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
  port=$(cat "$work/port")
}
start_nginx() { # $1: tcp_nopush on|off
  port=$(free_port)
  mkdir -p "$work/nginx/logs"
  cat > "$work/nginx/nginx.conf" <<CONF
worker_processes $workers;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
user nobody nogroup;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush $1;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 65;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$port;
    root $work/www;
  }
}
CONF
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
  pid=$!; pids+=("$pid")
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.05; done
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }

# CPU time (user + system, clock ticks) of the server's serving processes:
# httpd itself, nginx's workers.  Load-independent: what a request costs.
server_ticks() {
  local p ps=$pid
  [ "${1#nginx}" != "$1" ] && ps=$(ps --ppid "$pid" -o pid= | tr '\n' ' ')
  for p in $ps; do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0; done | awk '{s+=$1} END {print s+0}'
}
run_wrk() { # $1 server name, $2 size
  local r t0 t1 reqs cpu
  t0=$(server_ticks "$1")
  r=$(wrk -t"$wt" -c"$conns" -d"${dur}s" --latency --timeout 30s "http://127.0.0.1:$port/$2.bin")
  t1=$(server_ticks "$1")
  reqs=$(awk '/requests in/ {print $1}' <<<"$r")
  cpu=$(awk -v a="$t0" -v b="$t1" -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (n > 0 ? (b - a) * 1e6 / hz / n : 0)}')
  local rps p50 p99 rss
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$r")
  p50=$(awk '$1=="50%" {print $2}' <<<"$r")
  p99=$(awk '$1=="99%" {print $2}' <<<"$r")
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  [ "${1#nginx}" != "$1" ] && rss=$(ps --ppid "$pid" -o rss= | awk '{s+=$1} END {print s+0}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$rps" "$p50" "$p99" "$rss" "$cpu" | tee -a "$out.tsv"
}

echo -e "server\tfile\treq/s\tp50\tp99\trss_kib\tcpu_us_per_req" | tee "$out.tsv"
echo "# workers=$workers wrk -t$wt -c$conns -d${dur}s --latency, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
servers=(httpd httpd-malloc nginx nginx-nopush)
for round in $(seq "${ROUNDS:-1}"); do
  order=("${servers[@]}")
  [ $((round % 2)) -eq 0 ] && order=(nginx-nopush nginx httpd-malloc httpd)
  for s in $sizes; do
    for srv in "${order[@]}"; do
      case $srv in
        httpd) start_httpd regio ;;
        httpd-malloc) start_httpd malloc ;;
        nginx) start_nginx off ;;
        nginx-nopush) start_nginx on ;;
      esac
      run_wrk "$srv" "$s"; stop
    done
  done
done
python3 "$(dirname "$0")/summary.py" "$out" "wrk -t$wt -c$conns -d${dur}s, $workers worker(s), ${ROUNDS:-1} round(s)"
if [ "${RSS_RUN:-0}" -gt 0 ]; then
  start_httpd regio
  echo -e "t_s\tvmrss_kib" > "$out.rss.tsv"
  wrk -t"$wt" -c"$conns" -d"${RSS_RUN}s" --timeout 30s "http://127.0.0.1:$port/1k.bin" > "$work/rss.wrk" &
  w=$!
  for t in $(seq 0 5 "$RSS_RUN"); do
    echo -e "$t\t$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")" >> "$out.rss.tsv"; sleep 5
  done
  wait "$w"; stop
  cat "$out.rss.tsv"
fi
