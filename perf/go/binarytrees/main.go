// perf/go/binarytrees — the Benchmarks Game's binary-trees in Go, the same
// shape as perf/bench_binarytrees.c, printing the same line (pauses from
// runtime.MemStats.PauseNs, GC CPU from GCCPUFraction).
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"time"
)

type node struct{ l, r *node }

func make_(d int) *node {
	if d == 0 {
		return &node{}
	}
	l := make_(d - 1)
	r := make_(d - 1)
	return &node{l, r}
}

func (n *node) check() int {
	if n.l == nil {
		return 1
	}
	return 1 + n.l.check() + n.r.check()
}

func main() {
	n := 20
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	maxd := n
	if maxd < 6 {
		maxd = 6
	}
	t0 := time.Now()
	total := make_(maxd + 1).check()
	longlived := make_(maxd)
	for d := 4; d <= maxd; d += 2 {
		iters := 1 << uint(maxd-d+4)
		c := 0
		for i := 0; i < iters; i++ {
			c += make_(d).check()
		}
		total += c
	}
	total += longlived.check()
	wall := time.Since(t0).Seconds()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	k := int(ms.NumGC)
	if k > 256 {
		k = 256
	}
	p := make([]uint64, k)
	copy(p, ms.PauseNs[:k])
	sort.Slice(p, func(i, j int) bool { return p[i] < p[j] })
	var maxp, p99 uint64
	if k > 0 {
		maxp = p[k-1]
		p99 = p[k*99/100]
	}
	if len(os.Args) > 2 { // the pause file: every pause MemStats keeps, in ns
		if f, err := os.Create(os.Args[2]); err == nil {
			for _, v := range p {
				fmt.Fprintln(f, v)
			}
			f.Close()
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("go depth=%d wall_s=%.3f peak_rss_mib=%.1f gcs=%d max_pause_us=%.1f p99_pause_us=%.1f gc_cpu=%.3f check=%d\n",
		n, wall, float64(ru.Maxrss)/1024, ms.NumGC, float64(maxp)/1e3, float64(p99)/1e3, ms.GCCPUFraction, total)
}
