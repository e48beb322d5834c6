// Go's map with the same keys, order and operations as perf/bench_map.c, for
// perf/run_map.py: insert, lookup hit, lookup miss and delete for N keys,
// plus the memory a map keeps after deleting 99% of 1M keys.
//
//	go test -run XXX -bench . -benchtime 0.5s      the timings
//	go test -run TestMemAfterDelete -v             the memory figures
//
// Stdlib only, no network.
package mapbench

import (
	"fmt"
	"runtime"
	"strconv"
	"syscall"
	"testing"
)

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// A bijection on 40 bits, as in bench_map.c.
func mix40(x uint64) uint64 {
	const m = 1<<40 - 1
	x = (x * 0x9e3779b97f) & m
	x ^= x >> 19
	x = (x * 0xbf58476d1d) & m
	x ^= x >> 21
	return x
}

// key i is "k:" + decimal(mix40(i)), as in bench_map.c.
func key(i uint64) string { return "k:" + strconv.FormatUint(mix40(i), 10) }

type keyset struct {
	ins, probe, miss []string
	order            []uint32
}

var cache = map[int]*keyset{}

func keysFor(n int) *keyset {
	if k, ok := cache[n]; ok {
		return k
	}
	k := &keyset{ins: make([]string, n), probe: make([]string, n), miss: make([]string, n), order: make([]uint32, n)}
	for i := 0; i < n; i++ {
		k.ins[i] = key(uint64(i))
		k.miss[i] = key(uint64(i + n))
		k.order[i] = uint32(i)
	}
	for i := 0; i < n; i++ {
		// a copy with its own bytes: lookups never compare pointer-equal strings
		k.probe[i] = string([]byte(k.ins[i]))
	}
	for i := n - 1; i > 0; i-- {
		j := int(splitmix64(0x5eed0000+uint64(i)) % uint64(i+1))
		k.order[i], k.order[j] = k.order[j], k.order[i]
	}
	cache[n] = k
	return k
}

var sizes = []int{1000, 100000, 1000000, 10000000}

func fill(k *keyset) map[string]uintptr {
	m := make(map[string]uintptr)
	for i, s := range k.ins {
		m[s] = uintptr(i + 1)
	}
	return m
}

var sink uintptr

// cpuNanos is the process's CPU time (all threads: the collector's work is
// part of what a Go map costs).  The C side reports CPU time too.
func cpuNanos() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// rounds splits b.N operations into rounds of at most n.
func rounds(bN, n int) []int {
	var r []int
	for done := 0; done < bN; {
		lim := n
		if bN-done < lim {
			lim = bN - done
		}
		r = append(r, lim)
		done += lim
	}
	return r
}

// One b.N unit is one operation (as bench_map.c's per_item).  The loops are
// written out (no closure per operation) so Go's compiler sees what the C
// compiler sees.  cpu-ns/op counts only the operation loops: setup rounds
// (filling the map for delete) are excluded, like the C side's paused timer.
func BenchmarkMap(b *testing.B) {
	for _, n := range sizes {
		n := n
		var k *keyset // built by the first sub-benchmark the filter selects
		b.Run(fmt.Sprintf("insert/%d", n), func(b *testing.B) {
			k = keysFor(n)
			var cpu int64
			for _, lim := range rounds(b.N, n) {
				c0 := cpuNanos()
				m := make(map[string]uintptr)
				for _, j := range k.order[:lim] {
					m[k.ins[j]] = uintptr(j + 1)
				}
				cpu += cpuNanos() - c0
			}
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		})
		b.Run(fmt.Sprintf("hit/%d", n), func(b *testing.B) {
			k = keysFor(n)
			m := fill(k)
			runtime.GC() // finish the cycle fill started: lookups do not allocate
			var sum uintptr
			b.ResetTimer()
			c0 := cpuNanos()
			for _, lim := range rounds(b.N, n) {
				for _, j := range k.order[:lim] {
					sum += m[k.probe[j]]
				}
			}
			b.ReportMetric(float64(cpuNanos()-c0)/float64(b.N), "cpu-ns/op")
			if sum == 0 {
				b.Fatal("lookups missed")
			}
			sink += sum
		})
		b.Run(fmt.Sprintf("miss/%d", n), func(b *testing.B) {
			k = keysFor(n)
			m := fill(k)
			runtime.GC() // finish the cycle fill started: lookups do not allocate
			var sum uintptr
			b.ResetTimer()
			c0 := cpuNanos()
			for _, lim := range rounds(b.N, n) {
				for _, j := range k.order[:lim] {
					sum += m[k.miss[j]]
				}
			}
			b.ReportMetric(float64(cpuNanos()-c0)/float64(b.N), "cpu-ns/op")
			if sum != 0 {
				b.Fatal("misses hit")
			}
		})
		b.Run(fmt.Sprintf("delete/%d", n), func(b *testing.B) {
			k = keysFor(n)
			var cpu int64
			b.StopTimer()
			for _, lim := range rounds(b.N, n) {
				m := fill(k)
				runtime.GC()
				b.StartTimer()
				c0 := cpuNanos()
				for _, j := range k.order[:lim] {
					delete(m, k.probe[j])
				}
				cpu += cpuNanos() - c0
				b.StopTimer()
			}
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// The map's own bytes (keys' bytes are shared with the keyset, as the C
// benchmark's GHashTable; rg_map copies them and counts them).
func TestMemAfterDelete(t *testing.T) {
	n := 1000000
	k := keysFor(n)
	base := heapInuse()
	m := fill(k)
	full := heapInuse() - base
	left := 0
	for i := 0; i < n; i++ {
		if i%100 == 0 {
			left++
		} else {
			delete(m, k.probe[i])
		}
	}
	after := heapInuse() - base
	base2 := heapInuse()
	f := make(map[string]uintptr)
	for i := 0; i < n; i += 100 {
		f[k.ins[i]] = uintptr(i + 1)
	}
	fresh := heapInuse() - base2
	fmt.Printf("go map %d keys: %d bytes (keys not included); after deleting 99%%: %d bytes (%d keys); fresh: %d bytes; ratio %.2f\n",
		n, full, after, left, fresh, float64(after)/float64(fresh))
	runtime.KeepAlive(m)
	runtime.KeepAlive(f)
}
