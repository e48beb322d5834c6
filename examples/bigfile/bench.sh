#!/usr/bin/env bash
# examples/bigfile/bench.sh — warm page-cache scan of one large file, side by
# side in one run: bigfile (rg_mapfile, both cores), bigfile --mode=pread
# (both cores), bigfile --mode=read (one 64 KiB read() loop) and wc.
# usage: bench.sh BUILD_DIR [FILE] [SIZE_MiB]
#   FILE defaults to $TMPDIR/regio-bigfile.txt, created with SIZE_MiB
#   (default 2048) of text lines when missing.  Needs hyperfine.
set -euo pipefail
build=${1:?usage: bench.sh BUILD_DIR [FILE] [SIZE_MiB]}
file=${2:-${TMPDIR:-/tmp}/regio-bigfile.txt}
size=${3:-2048}
bf=$build/examples/bigfile/bigfile
[ -x "$bf" ] || { echo "bench.sh: build $bf first" >&2; exit 1; }
if [ ! -f "$file" ]; then
  python3 - "$file" "$size" <<'PY'
import random, sys
random.seed(7)
ws = ['the','quick','brown','fox','jumps','over','lazy','dog','regio','memory','region',
      'arena','pool','server','request','zero-copy','file','map','\tcol','data,value']
lines = [' '.join(random.choice(ws) for _ in range(random.randint(4, 20))) for _ in range(20000)]
chunk = ('\n'.join(lines) + '\n').encode()
with open(sys.argv[1], 'wb') as f:
    for _ in range((int(sys.argv[2]) << 20) // len(chunk)):
        f.write(chunk)
PY
fi
cat "$file" > /dev/null   # warm the page cache
echo "file: $file ($(stat -c %s "$file") bytes), $(nproc) cores"
echo "-- counts (must agree)"
LC_ALL=C wc "$file"
"$bf" -q "$file"
"$bf" -q --mode=read "$file"
"$bf" -q --mode=pread "$file"
out=${BENCH_OUT:-/dev/null}
echo "-- lines only (wc -l)"
hyperfine -N -w 1 -r "${RUNS:-5}" --export-markdown "$out.lines.md" \
  "wc -l $file" "$bf -q -l $file" "$bf -q -l --mode=pread $file" "$bf -q -l --mode=read $file"
echo "-- lines, words, bytes (wc)"
LC_ALL=C hyperfine -N -w 1 -r "${RUNS:-5}" --export-markdown "$out.all.md" \
  "wc $file" "$bf -q $file" "$bf -q --mode=pread $file" "$bf -q --mode=read $file"
