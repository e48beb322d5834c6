#!/usr/bin/env bash
# tests/bigfile.sh — examples/bigfile counts exactly what `LC_ALL=C wc` counts,
# in every mode and thread count, on inputs made to break a SIMD word count:
# every byte value, control and high bytes inside and between words (wc
# treats them as neither part of a word nor a separator), words and runs of
# transparent bytes straddling the 64-byte blocks and the per-thread parts,
# no final newline, an empty file.
# usage: bigfile.sh BIGFILE_BINARY
set -euo pipefail
bf=${1:?usage: bigfile.sh BIGFILE}
dir=$(mktemp -d "${TMPDIR:-/tmp}/regio-bigfile-test-XXXXXX")
trap 'rm -rf "$dir"' EXIT
python3 - "$dir" <<'PY'
import random, sys, os
d = sys.argv[1]
random.seed(11)
def w(name, data): open(os.path.join(d, name), 'wb').write(data)
w('empty', b'')
w('allbytes', bytes(range(256)) * 8)
w('mixed', b'a\x00b \x01 c\x7f d\xff\n\xc2\xa0x y\x85z\x0b\x0cq\rr\tt')
alpha = [32, 9, 10, 11, 12, 13, 0, 1, 27, 127, 128, 160, 200, 255, 65, 97, 33, 126]
w('random', bytes(random.choice(alpha) for _ in range(300000)))
# > 1 MiB so the file is split between threads; long runs of transparent
# bytes across the 2 MiB part boundaries, words on both sides of them.
big = bytearray()
while len(big) < 5 << 20:
    k = random.random()
    if k < 0.02:
        big += bytes([random.choice([0, 1, 127, 200])]) * random.randint(1, 300000)
    elif k < 0.5:
        big += bytes(random.choice(b'abcXYZ!~') for _ in range(random.randint(1, 90)))
    else:
        big += bytes(random.choice(b' \n\t\x0b\x0c\r\x00\x80') for _ in range(random.randint(1, 5)))
w('big', bytes(big))
# a word that spans the part boundary at exactly 2 MiB, through transparent bytes
w('edge', b'x' * ((2 << 20) - 3) + b'\x01\x02\x03' + b'y' * 100 + b' z\n' + b'\x00' * (3 << 20) + b'w')
PY
fail=0
for f in "$dir"/*; do
  want=$(LC_ALL=C wc "$f" | awk '{print $1, $2, $3}')
  wantl=$(LC_ALL=C wc -l "$f" | awk '{print $1}')
  for args in "--mode=mmap" "--mode=mmap --threads=1" "--mode=mmap --threads=3 --populate" \
              "--mode=pread" "--mode=pread --threads=3" "--mode=read"; do
    # shellcheck disable=SC2086
    got=$("$bf" -q $args "$f" | awk '{print $1, $2, $3}')
    # shellcheck disable=SC2086
    gotl=$("$bf" -q -l $args "$f" | awk '{print $1}')
    if [ "$got" != "$want" ] || [ "$gotl" != "$wantl" ]; then
      echo "FAIL $(basename "$f") $args: got '$got' / $gotl, wc says '$want' / $wantl"
      fail=1
    fi
  done
  echo "ok $(basename "$f"): $want"
done
# --mode=auto samples how files of 64 MiB or more are mapped before choosing
# (choose_mode; smaller files always take the map, tested above); whatever
# it picks, and after --reload (RG_ADVICE_HUGE_RELOAD), the counts hold.
python3 - "$dir/large" <<'PY'
import sys
open(sys.argv[1], 'wb').write((b'alpha beta\x01gamma\n' + b'\x00 \t' * 7 + b'delta\n') * (3 << 19))  # 66 MiB
PY
want=$(LC_ALL=C wc "$dir/large" | awk '{print $1, $2, $3}')
for args in "--mode=auto" "--mode=auto --reload" "--mode=auto --threads=1"; do
  # shellcheck disable=SC2086
  got=$("$bf" $args "$dir/large" | awk '{print $1, $2, $3}')
  if [ "$got" != "$want" ]; then
    echo "FAIL large $args: got '$got', wc says '$want'"
    fail=1
  fi
done
echo "ok large: $want"
exit $fail
