#!/usr/bin/env bash
# examples/kvcache/plot.sh OUT DIR... — turns the -o directories of load.sh
# runs into OUT.tsv (every summary row, with the run's directory name as its
# configuration) and OUT.svg (gnuplot): TPS of kvcache and memcached per
# configuration, and each configuration's latency distribution (memcaslap's
# log2 buckets, share of operations per bucket).
#   examples/kvcache/plot.sh perf/results/kvcache run-t1 run-t2
set -eu
out=$1; shift
command -v gnuplot >/dev/null || { echo "gnuplot missing (gnuplot-nox)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
first=1
for d in "$@"; do
  cfg=$(basename "$d")
  if [ $first = 1 ]; then sed -n '1s/^/config\t/p' "$d/summary.tsv" >"$out.tsv"; first=0; fi
  sed -n "2,\$s/^/$cfg\t/p" "$d/summary.tsv" >>"$out.tsv"
  # share of operations per log2 bucket, kvcache and memcached side by side
  awk -v cfg="$cfg" '{ split($1, a, "."); n[a[1]] += $3; c[a[1], $2] += $3; if ($2 > mx) mx = $2 }
       END { for (e = 1; e <= mx; e++) printf "%s\t%d\t%.4f\t%.4f\n", cfg, 2 ^ e,
             n["kvcache"] ? 100 * c["kvcache", e] / n["kvcache"] : 0,
             n["memcached"] ? 100 * c["memcached", e] / n["memcached"] : 0 }' "$d/hist.tsv" >"$tmp/hist.$cfg"
done
awk -F'\t' 'NR > 1 { t[$1, $2] = $9; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
     END { for (i = 1; i <= k; i++) printf "%s\t%s\t%s\n", order[i], t[order[i], "kvcache"], t[order[i], "memcached"] }' \
    "$out.tsv" >"$tmp/tps"
n=$#
{
  echo "set terminal svg size 1000,$((360 * ((n + 1) / 2 + 1))) font 'sans,11'"
  echo "set output '$out.svg'"
  echo "set multiplot layout $(((n + 1) / 2 + 1)),2"
  echo "set style data histograms; set style histogram clustered gap 1; set style fill solid 0.8 border -1"
  echo "set title 'memcaslap TPS (higher is better)'; set ylabel 'TPS'; set yrange [0:*]; set key top left"
  echo "plot '$tmp/tps' using 2:xtic(1) title 'kvcache (regio)', '' using 3 title 'memcached 1.6'"
  echo "set title 'TPS ratio kvcache / memcached (goal 1.2)'; set ylabel 'ratio'; set yrange [0:2]"
  echo "plot '$tmp/tps' using (\$2/\$3):xtic(1) title 'kvcache / memcached', 1.2 with lines dt 2 lc rgb 'black' title 'goal'"
  echo "unset yrange"
  for d in "$@"; do
    cfg=$(basename "$d")
    echo "set xtics rotate by -45"
  echo "set title 'latency, $cfg: share of operations per log2 bucket'; set ylabel '% of operations'; set xlabel 'latency below (us)'"
    echo "plot '$tmp/hist.$cfg' using 3:xtic(2) title 'kvcache (regio)', '' using 4 title 'memcached 1.6'"
  done
  echo "unset multiplot"
} >"$tmp/plot.gp"
gnuplot "$tmp/plot.gp"
echo "plot: $out.tsv $out.svg"
