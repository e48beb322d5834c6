#!/usr/bin/env bash
# tests/kvcache.sh KVCACHE — starts examples/kvcache on an ephemeral port on
# 127.0.0.1 (two loops), runs memcached's conformance suite (memccapable -a,
# libmemcached-tools) against it, then checks the bad-input replies (malformed
# commands, oversized keys and values, a client gone mid-value) and that the
# server is still up.  All of it three times: with the io_uring loop (when
# built and the kernel allows it), the same with its busy poll (-B 50), and
# with the epoll loop (-E).  Exit 77 (skip)
# when memccapable is missing.
set -u
srv=${1:?usage: kvcache.sh KVCACHE}
command -v memccapable >/dev/null || { echo "memccapable missing: skip"; exit 77; }
fail=0
pid= pid2= pid3=
out=$(mktemp)
cleanup() {
  for p in $pid $pid2 $pid3; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -f "$out"
}
trap cleanup EXIT
# A server that closes a connection mid-upload must fail a check, not kill
# this script with SIGPIPE (which would leave the server running).
trap '' PIPE
check() { # name expected actual
  if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1: expected [$2] got [$3]"; fail=1; fi
}
start() { # args... -> pid, port (the server's stdout in $out)
  "$srv" "$@" >"$out" 2>&1 &
  pid=$!
  port=
  for _ in $(seq 100); do
    port=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$out")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "FAIL: no port printed"; cat "$out"; exit 1; }
}
stop() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=; }

for loopflag in "" "-B 50" -E; do
start -p 0 -t 2 -m 64 $loopflag
echo "== $(sed -n 's/^loop //p' "$out") loop $loopflag"
timeout 60 memccapable -h 127.0.0.1 -p "$port" -a -t 5 || { echo "FAIL: memccapable"; fail=1; }

# One request on a fresh connection: prints the first reply line, CR stripped.
ask() {
  exec 3<>/dev/tcp/127.0.0.1/"$port" || return 1
  printf '%b' "$1" >&3
  local line=
  IFS= read -r -t 5 line <&3
  exec 3>&- 3<&-
  printf '%s' "${line%$'\r'}"
}
long=$(printf 'k%.0s' $(seq 251))
big=$((1024 * 1024 + 1))
check "unknown command" "ERROR" "$(ask 'bogus\r\n')"
check "empty line" "ERROR" "$(ask '\r\n')"
check "set missing fields" "CLIENT_ERROR bad command line format" "$(ask 'set k 0 0\r\n')"
check "set bad number" "CLIENT_ERROR bad command line format" "$(ask 'set k 0 0 abc\r\nxx\r\n')"
check "set negative length" "CLIENT_ERROR bad command line format" "$(ask 'set k 0 0 -1\r\n')"
check "key over 250" "CLIENT_ERROR bad command line format" "$(ask "set $long 0 0 1\r\nx\r\n")"
check "get key over 250" "CLIENT_ERROR bad command line format" "$(ask "get $long\r\n")"
check "value over item max" "SERVER_ERROR object too large for cache" "$(ask "set k 0 0 $big\r\n")"
check "bad data chunk" "CLIENT_ERROR bad data chunk" "$(ask 'set k 0 0 2\r\nxyz\r\n')"
check "incr non-numeric" "CLIENT_ERROR cannot increment or decrement non-numeric value" \
      "$(ask 'set n 0 0 1\r\nx\r\nincr n 1\r\n' >/dev/null; ask 'incr n 1\r\n')"
check "incr bad delta" "CLIENT_ERROR invalid numeric delta argument" "$(ask 'incr n abc\r\n')"
check "get of 1000 keys" "END" "$(ask "get$(printf ' k%d' $(seq 1000))\r\n")"
# A client that disconnects in the middle of a value.
exec 3<>/dev/tcp/127.0.0.1/"$port"
printf 'set half 0 0 100\r\nonly-some' >&3
exec 3>&- 3<&-
check "half value not stored" "END" "$(ask 'get half\r\n')"
check "still serving" "STORED" "$(ask 'set after 0 0 2\r\nok\r\n')"
# A value in pieces, each in its own read: received into its item as it comes.
split() { # cmd key value-part-1 value-part-2 -> the reply line
  exec 3<>/dev/tcp/127.0.0.1/"$port" || return 1
  printf '%s %s 0 0 %d\r\n%s' "$1" "$2" $(( ${#3} + ${#4} )) "$3" >&3
  sleep 0.1
  printf '%s' "$4" >&3
  sleep 0.1
  printf '\r\n' >&3
  local line=
  IFS= read -r -t 5 line <&3
  exec 3>&- 3<&-
  printf '%s' "${line%$'\r'}"
}
getval() { # key -> the value line after VALUE
  exec 3<>/dev/tcp/127.0.0.1/"$port" || return 1
  printf 'get %s\r\n' "$1" >&3
  local l1= l2=
  IFS= read -r -t 5 l1 <&3; IFS= read -r -t 5 l2 <&3
  exec 3>&- 3<&-
  printf '%s' "${l2%$'\r'}"
}
check "split set" "STORED" "$(split set sp hello- world)"
check "split set value" "hello-world" "$(getval sp)"
check "split append" "STORED" "$(split append sp '<' '>')"
check "split append value" "hello-world<>" "$(getval sp)"
check "split add of a present key" "NOT_STORED" "$(split add sp a b)"
check "split bad chunk" "CLIENT_ERROR bad data chunk" "$(exec 3<>/dev/tcp/127.0.0.1/$port;
      printf 'set sq 0 0 2\r\na' >&3; sleep 0.1; printf 'bcd\r\n' >&3;
      IFS= read -r -t 5 l <&3; exec 3>&- 3<&-; printf '%s' "${l%$'\r'}")"
check "split bad chunk not stored" "END" "$(ask 'get sq\r\n')"
check "stats has regio fields" "1" "$(exec 3<>/dev/tcp/127.0.0.1/$port; printf 'stats\r\n' >&3;
      n=0; while IFS= read -r -t 5 l <&3; do l=${l%$'\r'}; [ "$l" = END ] && break;
      case $l in "STAT regio_limit "*) n=1;; esac; done; echo $n)"
kill -0 "$pid" 2>/dev/null || { echo "FAIL: server died"; fail=1; }
stop
done

# -D: regio's debug endpoint beside the cache (skipped when regio was built
# without libmicrohttpd: the server then refuses to start).
out3=$(mktemp)
"$srv" -p 0 -t 1 -D 127.0.0.1:0 >"$out3" 2>&1 &
pid3=$!
dport=
for _ in $(seq 50); do
  dport=$(sed -n 's/^debug port \([0-9]*\)$/\1/p' "$out3")
  [ -n "$dport" ] && grep -q '^port ' "$out3" && break
  kill -0 "$pid3" 2>/dev/null || break
  sleep 0.1
done
if [ -n "$dport" ]; then
  exec 3<>/dev/tcp/127.0.0.1/"$dport"
  printf 'GET /debug/vars HTTP/1.0\r\n\r\n' >&3
  IFS= read -r -t 5 l <&3
  exec 3>&- 3<&-
  check "debug endpoint" "HTTP/1.1 200 OK" "${l%$'\r'}"
elif grep -q 'not supported' "$out3"; then
  echo "skip: debug endpoint not built"
else
  echo "FAIL: -D did not start"; cat "$out3"; fail=1
fi
kill "$pid3" 2>/dev/null; wait "$pid3" 2>/dev/null; pid3=; rm -f "$out3"

# Eviction under the hard limit: 20 MiB of values into -m 16 (items are
# evicted past 8 MiB): every store succeeds, evictions are counted.  Values
# of 512 KiB arrive in many receive buffers, pipelined.
for loopflag in "" -E; do
out2=$(mktemp)
"$srv" -p 0 -t 1 -m 16 $loopflag >"$out2" &
pid2=$!
port2=
for _ in $(seq 100); do port2=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$out2"); [ -n "$port2" ] && break; sleep 0.1; done
v=$(head -c 524288 /dev/zero | tr '\0' x)
exec 3<>/dev/tcp/127.0.0.1/"$port2"
for i in $(seq 40); do printf 'set big%d 0 0 524288\r\n%s\r\n' "$i" "$v" >&3; done
printf 'stats\r\n' >&3
stored=0 evicted=0
while IFS= read -r -t 10 l <&3; do
  l=${l%$'\r'}
  case $l in STORED) stored=$((stored + 1));; "STAT evictions "*) evicted=${l#STAT evictions };; END) break;; esac
done
exec 3>&- 3<&-
check "stores under the limit" 40 "$stored"
[ "${evicted:-0}" -gt 0 ] && echo "ok: evictions $evicted" || { echo "FAIL: no evictions"; fail=1; }
kill -0 "$pid2" 2>/dev/null || { echo "FAIL: server died under the limit"; fail=1; }
kill "$pid2" 2>/dev/null; wait "$pid2" 2>/dev/null; pid2=; rm -f "$out2"
done

# Hash collisions: with the key hash cut to 3 bits (a test knob) nearly
# every key shares its hash with another, so stores, gets, deletes and
# evictions go through the overflow map; the protocol suite must still
# pass, and a collided key must survive its partner's delete.
# A bad -B is refused with the usage, not taken as 0.
for b in -1 x "" 1000001; do
  "$srv" -p 0 -B "$b" >/dev/null 2>&1 & bp=$!
  ( sleep 5; kill "$bp" 2>/dev/null ) & wd=$!
  wait "$bp"; rc=$?
  kill "$wd" 2>/dev/null; wait "$wd" 2>/dev/null
  check "-B '$b' refused" 2 "$rc"
done

KVCACHE_TEST_HASH_BITS=3 start -p 0 -t 2 -m 16
echo "== 3-bit key hash"
timeout 60 memccapable -h 127.0.0.1 -p "$port" -a -t 5 || { echo "FAIL: memccapable with collisions"; fail=1; }
ask 'set ca 0 0 1\r\nA\r\n' >/dev/null
for k in cb cc cd ce cf cg ch ci cj; do ask "set $k 0 0 2\r\n$k\r\n" >/dev/null; done
check "delete a collided key" "DELETED" "$(ask 'delete ca\r\n')"
check "its partners stay" "VALUE cj 0 2" "$(ask 'get cj\r\n')"
check "and it is gone" "END" "$(ask 'get ca\r\n')"
check "set it again" "STORED" "$(ask 'set ca 0 0 1\r\nB\r\n')"
check "and get it" "VALUE ca 0 1" "$(ask 'get ca\r\n')"
kill -0 "$pid" 2>/dev/null || { echo "FAIL: server died with collisions"; fail=1; }
stop
exit $fail
