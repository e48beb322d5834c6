#!/usr/bin/env python3
"""examples/httpd/summary.py OUT TITLE: medians of OUT.tsv (load.sh's rows:
server, file, req/s, p50, p99, rss, server CPU us per request) per server and file size into
OUT.summary.tsv, ratios against nginx, and OUT.svg with gnuplot."""
import statistics as st
import subprocess
import sys

out, title = sys.argv[1], sys.argv[2]


def ms(v):
    for suf, f in (('us', 1e-3), ('ms', 1.0), ('s', 1e3)):
        if v.endswith(suf):
            return float(v[:-len(suf)]) * f
    return float(v)


rows = [l.rstrip('\n').split('\t') for l in open(out + '.tsv')][1:]
rows = [r for r in rows if len(r) >= 6 and r[2]]
keys = []
for r in rows:
    if (r[0], r[1]) not in keys:
        keys.append((r[0], r[1]))
med = {}
for k in keys:
    g = [r for r in rows if (r[0], r[1]) == k]
    med[k] = (st.median(float(r[2]) for r in g), st.median(ms(r[3]) for r in g),
              st.median(ms(r[4]) for r in g), int(st.median(int(r[5]) for r in g)), len(g),
              st.median(float(r[6]) if len(r) > 6 and r[6] else 0.0 for r in g))
with open(out + '.summary.tsv', 'w') as o:
    o.write('server\tfile\treq_s\tp50_ms\tp99_ms\trss_kib\truns\tcpu_us_per_req\n')
    for k, v in med.items():
        o.write('%s\t%s\t%.0f\t%.3f\t%.3f\t%d\t%d\t%.1f\n' % (k[0], k[1], *v))
print(open(out + '.summary.tsv').read())
for k, v in med.items():
    if k[0] != 'httpd':
        continue
    for peer in ('nginx', 'nginx-nopush'):
        p = med.get((peer, k[1]))
        if p:
            print('%s: httpd / %s = %.2fx req/s, p99 %.2f vs %.2f ms (%s), server CPU %.1f vs %.1f us/request' %
                  (k[1], peer, v[0] / p[0], v[2], p[2], 'no worse' if v[2] <= p[2] else 'WORSE', v[5], p[5]))
sizes = []
for k in keys:
    if k[1] not in sizes:
        sizes.append(k[1])
servers = []
for k in keys:
    if k[0] not in servers:
        servers.append(k[0])
with open(out + '.plot.dat', 'w') as d:
    d.write('server\t' + '\t'.join('%s req/s\t%s p99' % (s, s) for s in sizes) + '\n')
    for sv in servers:
        d.write(sv + '\t' + '\t'.join('%.0f\t%.3f' % (med.get((sv, s), (0, 0, 0))[0], med.get((sv, s), (0, 0, 0))[2])
                                      for s in sizes) + '\n')
gp = '''set terminal svg size 900,380 font "sans,11"
set output "{o}.svg"
set datafile separator "\\t"
set multiplot layout 1,2 title "{t}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right font ",9" autotitle columnheader
set xtics font ",9"
set title "requests/s (higher is better)"
set yrange [0:*]
plot {rq}
set title "p99 latency, ms (lower is better)"
set logscale y
set yrange [*:*]
plot {p99}
unset multiplot
'''.format(o=out, t=title.replace('"', ''),
           rq=', '.join('"%s.plot.dat" using %d:xtic(1)' % (out, 2 + 2 * i) for i in range(len(sizes))),
           p99=', '.join('"%s.plot.dat" using %d:xtic(1)' % (out, 3 + 2 * i) for i in range(len(sizes))))
try:
    subprocess.run(['gnuplot'], input=gp.encode(), check=False)
except FileNotFoundError:
    pass
