#!/usr/bin/env bash
# examples/bigfile/bench.sh — warm page-cache scan of one large file, side by
# side in one run: bigfile as it chooses (--mode=auto), bigfile --mode=mmap
# (rg_mapfile, both cores; and with each thread
# populating its part first), bigfile --mode=pread (both cores), bigfile
# --mode=read (one 64 KiB read() loop) and wc; then a table ($BENCH_OUT.tsv)
# and a plot ($BENCH_OUT.svg).
# usage: [STATE=reread|written|asis] [RUNS=5] bench.sh BUILD_DIR [FILE] [SIZE_MiB]
#   FILE defaults to $TMPDIR/regio-bigfile.txt, created with SIZE_MiB
#   (default 2048) of text lines when missing.  Needs hyperfine.
#   STATE says which warm page cache to measure, since a mapped scan's speed
#   depends on the folios the cache holds (include/regio/mapfile.h):
#     reread  (default) the file is written back, dropped from the cache and
#             read once with cat: the cache holds what read-ahead makes
#             (2 MiB folios with 2 MiB or more of read-ahead), as for any
#             file read from disk;
#     written the file is rewritten (copied and renamed over itself) and
#             stays cached as written: small folios, as for a file that was
#             just produced on this machine;
#     asis    whatever the cache holds now (cat warms what is missing).
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
state=${STATE:-reread}
case $state in
  reread)
    python3 - "$file" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
PY
    ;;
  written)
    cp "$file" "$file.tmp" && mv "$file.tmp" "$file"
    ;;
  asis) ;;
  *) echo "bench.sh: STATE must be reread, written or asis" >&2; exit 2 ;;
esac
cat "$file" > /dev/null   # warm the page cache
echo "file: $file ($(stat -c %s "$file") bytes), $(nproc) cores, page cache state: $state"
grep -E 'FileHugePages' /proc/meminfo
echo "-- counts (must agree)"
LC_ALL=C wc "$file"
"$bf" -q "$file"
"$bf" -q --mode=mmap "$file"
"$bf" -q --mode=read "$file"
"$bf" -q --mode=pread "$file"
echo "-- what the mapping costs: one byte per 4 KiB page, twice; how much is mapped 2 MiB at a time"
"$bf" -q --mode=touch "$file" > /dev/null
"$bf" -l "$file" > /dev/null   # prints what --mode=auto sees and picks
out=${BENCH_OUT:-${TMPDIR:-/tmp}/bigfile-bench}
echo "-- lines only (wc -l)"
hyperfine -N -w 1 -r "${RUNS:-5}" --export-markdown "$out.lines.md" --export-csv "$out.lines.csv" \
  "wc -l $file" "$bf -q -l $file" "$bf -q -l --mode=mmap $file" "$bf -q -l --mode=mmap --populate $file" \
  "$bf -q -l --mode=pread $file" "$bf -q -l --mode=read $file"
echo "-- lines, words, bytes (wc)"
LC_ALL=C hyperfine -N -w 1 -r "${RUNS:-5}" --export-markdown "$out.all.md" --export-csv "$out.all.csv" \
  "wc $file" "$bf -q $file" "$bf -q --mode=mmap $file" "$bf -q --mode=mmap --populate $file" \
  "$bf -q --mode=pread $file" "$bf -q --mode=read $file"
# one table (mean seconds) and a plot of GB/s
python3 - "$out" "$(stat -c %s "$file")" "$state" <<'PY'
import csv, subprocess, sys
out, size, state = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def load(f):
    return [(r['command'], float(r['mean'])) for r in csv.DictReader(open(f))]
lines, allc = load(out + '.lines.csv'), load(out + '.all.csv')
# short names: they label the plot (bigfile's --mode; threads: mmap and pread 2, read 1)
names = ['wc', 'auto', 'mmap', 'mmap --populate', 'pread', 'read']
with open(out + '.tsv', 'w') as o:
    o.write('tool\tlines_s\tlines_GBps\tall_s\tall_GBps\n')
    for n, (_, a), (_, b) in zip(names, lines, allc):
        o.write('%s\t%.3f\t%.2f\t%.3f\t%.2f\n' % (n, a, size / a / 1e9, b, size / b / 1e9))
print(open(out + '.tsv').read())
w = dict(zip(names, zip(lines, allc)))
for n in names[1:]:
    print('%s: %.2fx wc -l, %.2fx wc, %.2fx the read() loop (lines), %.2fx (all)' % (
        n, w['wc'][0][1] / w[n][0][1], w['wc'][1][1] / w[n][1][1],
        w[names[5]][0][1] / w[n][0][1], w[names[5]][1][1] / w[n][1][1]))
gp = """set terminal svg size 900,300 font "sans,11"
set output "%s.svg"
set datafile separator "\\t"
set title "bigfile modes vs wc, warm page-cache scan of %.1f GiB, cache %s: GB/s (higher is better), mean of hyperfine runs"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right noenhanced
set xtics font ",9" noenhanced
set bmargin 3
set yrange [0:*]
plot "%s.tsv" every ::1 using 3:xtic(1) title "lines (wc -l)", "" every ::1 using 5 title "lines, words, bytes (LC_ALL=C wc)"
""" % (out, size / 2**30, state, out)
try:
    subprocess.run(['gnuplot'], input=gp.encode(), check=False)
except FileNotFoundError:
    pass
PY
