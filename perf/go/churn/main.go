// perf/go/churn — the server-shaped churn of perf/bench_churn.c in Go 1.19:
// the same table (entries of 64/128/192/256 bytes with a chain pointer and a
// friend pointer to the partner key's entry, one bucket array, 4096 striped
// mutexes, lock-free readers with atomic loads), the same operation (replace
// one of the thread's own entries, look up --lookups random keys and check
// them), the same pacing and timing, and the same output lines, so
// perf/run_churn.py can put both side by side.
//
// Each worker goroutine is locked to its OS thread (runtime.LockOSThread):
// that makes it a thread like regio's workers, so getrusage(RUSAGE_THREAD)
// classifies its slow ops (blocked: the runtime parked the thread, e.g. for
// a stop-the-world or while a GC worker held its P; preempted: the OS took
// the CPU; clean: the op's own work, e.g. a mark assist) and its CPU time is
// the mutator's.  The memory limit is debug.SetMemoryLimit (GOMEMLIMIT) at
// the same factor of the live set; GOGC stays 100.  Pauses: each cycle's
// stop-the-world total from MemStats.PauseNs (read before and after the run,
// outside the timed window, because ReadMemStats stops the world) and each
// single stop-the-world from runtime/metrics' /gc/pauses:seconds histogram
// (bucket upper bounds).  GC CPU: MemStats.GCCPUFraction over the window
// (Go's definition: GC CPU over wall x GOMAXPROCS, not counting idle-priority
// mark workers, which run for free on idle Ps).
//
// Usage: churn [--live BYTES] [--threads N] [--secs S] [--rate OPS]
//
//	[--lookups N] [--limit-factor F] [--gc-off] [--hist FILE] [--seed N]
package main

import (
	"fmt"
	"math"
	"math/bits"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// ---------------------------------------------------------------------------
// Histograms (the same log-linear buckets as the C side).
const hsub = 32
const hbuckets = 64 * hsub

type hist struct {
	n, max uint64
	b      [hbuckets]uint64
}

func hidx(v uint64) int {
	if v < hsub {
		return int(v)
	}
	e := 63 - bits.LeadingZeros64(v)
	return (e-4)*hsub + int((v>>(uint(e)-5))&(hsub-1))
}

func hupper(i int) uint64 {
	if i < hsub {
		return uint64(i)
	}
	e, sub := uint(i/hsub+4), uint64(i%hsub)
	return ((hsub + sub) << (e - 5)) + (1 << (e - 5)) - 1
}

func (h *hist) add(v uint64) {
	h.b[hidx(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

func (h *hist) merge(o *hist) {
	for i := range h.b {
		h.b[i] += o.b[i]
	}
	h.n += o.n
	if o.max > h.max {
		h.max = o.max
	}
}

func (h *hist) q(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if rank >= h.n {
		rank = h.n - 1
	}
	var c uint64
	for i := range h.b {
		c += h.b[i]
		if c > rank {
			u := hupper(i)
			if u > h.max {
				u = h.max
			}
			return u
		}
	}
	return h.max
}

func (h *hist) dump(f *os.File, sys string, threads int, who, kind string) {
	for i := range h.b {
		if h.b[i] != 0 {
			u := hupper(i)
			if u > h.max {
				u = h.max
			}
			fmt.Fprintf(f, "%s\t%d\t%s\t%s\t%d\t%d\n", sys, threads, who, kind, u, h.b[i])
		}
	}
}

// ---------------------------------------------------------------------------
// The table.
type hdr struct {
	next   atomic.Pointer[hdr]
	friend atomic.Pointer[hdr]
	key    uint64
	size   uint32
	check  uint32
}

const hdrBytes = unsafe.Sizeof(hdr{}) // 32, as in C

type e64 struct {
	h hdr
	p [64 - hdrBytes]byte
}
type e128 struct {
	h hdr
	p [128 - hdrBytes]byte
}
type e192 struct {
	h hdr
	p [192 - hdrBytes]byte
}
type e256 struct {
	h hdr
	p [256 - hdrBytes]byte
}

const nstripes = 4096

var (
	stripes  [nstripes]sync.Mutex
	buckets  []atomic.Pointer[hdr]
	gbits    uint
	nkeys    uint64
	nthreads int
	rate     float64
	lookups  int
	stop     atomic.Bool
)

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func bucketOf(k uint64) uint64          { return mix64(k) >> (64 - gbits) }
func checkOf(k uint64, s uint32) uint32 { return uint32(mix64(k^0x5bd1e995)>>32) ^ s }
func byteOf(k uint64) byte              { return byte(k*131 + 7) }

func payload(h *hdr) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(h), hdrBytes)), uintptr(h.size)-hdrBytes)
}

func newEntry(k uint64, c uint) *hdr {
	var h *hdr
	switch c {
	case 0:
		h = &new(e64).h
	case 1:
		h = &new(e128).h
	case 2:
		h = &new(e192).h
	default:
		h = &new(e256).h
	}
	h.key = k
	h.size = uint32(64 * (c + 1))
	h.check = checkOf(k, h.size)
	p := payload(h)
	b := byteOf(k)
	for i := range p {
		p[i] = b
	}
	return h
}

func find(k uint64) *hdr {
	e := buckets[bucketOf(k)].Load()
	for e != nil && e.key != k {
		e = e.next.Load()
	}
	return e
}

func entryOK(e *hdr, k uint64) bool {
	if e.key != k || e.size < 64 || e.size > 256 || e.check != checkOf(k, e.size) {
		return false
	}
	p := payload(e)
	return p[len(p)-1] == byteOf(k)
}

func insert(e *hdr) *hdr {
	b := bucketOf(e.key)
	m := &stripes[b&(nstripes-1)]
	m.Lock()
	slot := &buckets[b]
	x := slot.Load()
	for x != nil && x.key != e.key {
		slot = &x.next
		x = x.next.Load()
	}
	if x != nil {
		e.next.Store(x.next.Load())
	} else {
		slot = &buckets[b]
		e.next.Store(slot.Load())
	}
	slot.Store(e)
	m.Unlock()
	return x
}

// ---------------------------------------------------------------------------
// Workers.
const slowNS = 20000

type worker struct {
	id                                    int
	rng                                   uint64
	ops, missing, damaged, late, replaced uint64
	slowClean, slowPreempted, slowBlocked uint64
	nvcsw, nivcsw                         int64
	cpu                                   float64
	lat, clean                            hist
}

func (w *worker) rnd() uint64 {
	w.rng += 0x9e3779b97f4a7c15
	z := w.rng
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (w *worker) op() {
	r := w.rnd()
	pairsMine := nkeys / 2 / uint64(nthreads)
	pair := (r%pairsMine)*uint64(nthreads) + uint64(w.id)
	k := 2*pair + (r>>62)&1
	c := uint(r>>60) & 3
	e := newEntry(k, c)
	f := find(k ^ 1)
	e.friend.Store(f)
	if insert(e) != nil {
		w.replaced++
	}
	if f != nil {
		f.friend.Store(e)
	}
	for i := 0; i < lookups; i++ {
		q := w.rnd() % nkeys
		x := find(q)
		if x == nil {
			w.missing++
			continue
		}
		y := x.friend.Load()
		if !entryOK(x, q) || (y != nil && !entryOK(y, q^1)) {
			w.damaged++
		}
	}
}

const rusageThread = 1 // RUSAGE_THREAD

func threadRusage() syscall.Rusage {
	var ru syscall.Rusage
	syscall.Getrusage(rusageThread, &ru)
	return ru
}

func (w *worker) readSwitches() {
	ru := threadRusage()
	w.nvcsw, w.nivcsw = ru.Nvcsw, ru.Nivcsw
}

func cpuOf(ru syscall.Rusage) float64 {
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

var base = time.Now()

func now() uint64 { return uint64(time.Since(base)) }

func (w *worker) run(wg *sync.WaitGroup) {
	defer wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := cpuOf(threadRusage())
	var interval uint64
	if rate > 0 {
		interval = uint64(1e9 / rate)
	}
	next := now()
	w.readSwitches()
	for !stop.Load() {
		t0 := now()
		w.op()
		t2 := now()
		d := t2 - t0
		w.lat.add(d)
		w.ops++
		if d > slowNS {
			ru := threadRusage()
			switch {
			case ru.Nvcsw != w.nvcsw:
				w.slowBlocked++
			case ru.Nivcsw != w.nivcsw:
				w.slowPreempted++
			default:
				w.slowClean++
				w.clean.add(d)
			}
			w.nvcsw, w.nivcsw = ru.Nvcsw, ru.Nivcsw
		} else {
			w.clean.add(d)
		}
		if interval == 0 {
			continue
		}
		next += interval
		if next > t2+1000000 {
			time.Sleep(time.Duration(next - t2))
			w.readSwitches()
		} else if t2 > next+10000000 {
			next = t2
			w.late++
		}
	}
	w.cpu = cpuOf(threadRusage()) - cpu0
}

// ---------------------------------------------------------------------------
// Monitor: RSS every 2 ms.
type monitor struct {
	limit                 int64
	rssMax, samples, over uint64
	cpu                   float64
	done                  chan struct{}
}

func readRSS(f *os.File) uint64 {
	var buf [128]byte
	n, err := f.ReadAt(buf[:], 0)
	if n <= 0 && err != nil {
		return 0
	}
	fs := strings.Fields(string(buf[:n]))
	if len(fs) < 2 {
		return 0
	}
	v, _ := strconv.ParseUint(fs[1], 10, 64)
	return v * uint64(os.Getpagesize())
}

func (m *monitor) run(stopm *atomic.Bool) {
	runtime.LockOSThread()
	cpu0 := cpuOf(threadRusage())
	f, err := os.Open("/proc/self/statm")
	for {
		last := stopm.Load()
		if err == nil {
			rss := readRSS(f)
			m.samples++
			if rss > m.rssMax {
				m.rssMax = rss
			}
			if m.limit > 0 && rss > uint64(m.limit) {
				m.over++
			}
		}
		if last {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if f != nil {
		f.Close()
	}
	m.cpu = cpuOf(threadRusage()) - cpu0
	runtime.UnlockOSThread()
	close(m.done)
}

// ---------------------------------------------------------------------------
func parseBytes(s string) uint64 {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "K") || strings.HasSuffix(s, "k"):
		mult = 1 << 10
	case strings.HasSuffix(s, "M") || strings.HasSuffix(s, "m"):
		mult = 1 << 20
	case strings.HasSuffix(s, "G") || strings.HasSuffix(s, "g"):
		mult = 1 << 30
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	v, _ := strconv.ParseFloat(s, 64)
	return uint64(v * mult)
}

func pauseMetric() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: "/gc/pauses:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return s[0].Value.Float64Histogram()
}

// quantile of the histogram difference b - a (bucket upper bounds, in s)
func histDeltaQ(a, b *metrics.Float64Histogram, q float64) (float64, uint64) {
	if a == nil || b == nil {
		return 0, 0
	}
	var n uint64
	d := make([]uint64, len(b.Counts))
	for i := range b.Counts {
		d[i] = b.Counts[i] - a.Counts[i]
		n += d[i]
	}
	if n == 0 {
		return 0, 0
	}
	rank := uint64(q * float64(n))
	if rank >= n {
		rank = n - 1
	}
	var c uint64
	for i := range d {
		c += d[i]
		if c > rank {
			u := b.Buckets[i+1]
			if math.IsInf(u, 1) {
				u = b.Buckets[i]
			}
			return u, n
		}
	}
	return 0, n
}

func main() {
	live := uint64(1 << 30)
	secs, limitFactor := 20.0, 1.25
	threads := 2
	gcOff := false
	histPath := ""
	seed := uint64(42)
	rate, lookups = 100000, 4
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--gc-off" {
			gcOff = true
			continue
		}
		if i+1 >= len(args) {
			fmt.Fprintf(os.Stderr, "churn: %s needs a value\n", a)
			os.Exit(2)
		}
		i++
		v := args[i]
		switch a {
		case "--live":
			live = parseBytes(v)
		case "--threads":
			threads, _ = strconv.Atoi(v)
		case "--secs":
			secs, _ = strconv.ParseFloat(v, 64)
		case "--rate":
			rate, _ = strconv.ParseFloat(v, 64)
		case "--lookups":
			lookups, _ = strconv.Atoi(v)
		case "--limit-factor":
			limitFactor, _ = strconv.ParseFloat(v, 64)
		case "--bucket-chunk":
			// one bucket array always: Go scans large objects in 128 KiB oblets
		case "--hist":
			histPath = v
		case "--seed":
			seed, _ = strconv.ParseUint(v, 0, 64)
		default:
			fmt.Fprintf(os.Stderr, "churn: unknown option %s\n", a)
			os.Exit(2)
		}
	}
	if threads < 1 || threads > 64 || live < 1<<20 || secs <= 0 {
		fmt.Fprintln(os.Stderr, "churn: bad arguments")
		os.Exit(2)
	}
	nthreads = threads
	n0 := live / 168
	b := uint(1)
	for uint64(1)<<b < n0 {
		b++
	}
	nb := uint64(1) << b
	keys := (live - nb*8) / 160
	pairs := keys / 2 / uint64(threads) * uint64(threads)
	nkeys = 2 * pairs
	gbits = b
	limit := int64(-1)
	sys := "go"
	if gcOff {
		sys = "go-gcoff"
		debug.SetGCPercent(-1)
	} else if limitFactor > 0 {
		limit = int64(float64(live) * limitFactor)
		debug.SetMemoryLimit(limit)
	}
	procs := runtime.GOMAXPROCS(0)
	statm, _ := os.Open("/proc/self/statm")
	rssBase := readRSS(statm)
	statm.Close()

	mon := &monitor{limit: limit, done: make(chan struct{})}
	var stopm atomic.Bool
	go mon.run(&stopm)

	tb0 := time.Now()
	buckets = make([]atomic.Pointer[hdr], nb)
	rng := seed
	for p := uint64(0); p < pairs; p++ {
		rng = rng*6364136223846793005 + 1442695040888963407
		a := newEntry(2*p, uint(rng>>60)&3)
		bb := newEntry(2*p+1, uint(rng>>56)&3)
		a.friend.Store(bb)
		bb.friend.Store(a)
		insert(a)
		insert(bb)
	}
	buildS := time.Since(tb0).Seconds()

	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	ph0 := pauseMetric()
	var ru0, ru1 syscall.Rusage
	ws := make([]*worker, threads)
	var wg sync.WaitGroup
	t0 := time.Now()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	for i := range ws {
		ws[i] = &worker{id: i, rng: seed*1000003 + uint64(i)*0x632be59bd9b4e019 + 1}
		wg.Add(1)
		go ws[i].run(&wg)
	}
	time.Sleep(time.Duration(secs * 1e9))
	stop.Store(true)
	wg.Wait()
	wall := time.Since(t0).Seconds()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	ph1 := pauseMetric()
	runtime.ReadMemStats(&ms1)
	stopm.Store(true)
	<-mon.done
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)

	var hf *os.File
	if histPath != "" {
		hf, _ = os.OpenFile(histPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	}
	var all, clean hist
	var ops, missing, damaged, slow0, slow1, slow2 uint64
	mutCPU := 0.0
	for i, x := range ws {
		fmt.Printf("thread %s threads=%d id=%d ops=%d ops_per_s=%.0f lat_p50_us=%.2f lat_p99_us=%.2f lat_p999_us=%.2f "+
			"lat_max_us=%.1f clean_p99_us=%.2f clean_p999_us=%.2f clean_max_us=%.1f slow_clean=%d "+
			"slow_preempted=%d slow_blocked=%d late=%d cpu_s=%.3f\n",
			sys, threads, i, x.ops, float64(x.ops)/wall, float64(x.lat.q(0.5))/1e3, float64(x.lat.q(0.99))/1e3,
			float64(x.lat.q(0.999))/1e3, float64(x.lat.max)/1e3, float64(x.clean.q(0.99))/1e3,
			float64(x.clean.q(0.999))/1e3, float64(x.clean.max)/1e3, x.slowClean, x.slowPreempted, x.slowBlocked,
			x.late, x.cpu)
		ops += x.ops
		missing += x.missing
		damaged += x.damaged
		slow0 += x.slowClean
		slow1 += x.slowPreempted
		slow2 += x.slowBlocked
		mutCPU += x.cpu
		all.merge(&x.lat)
		clean.merge(&x.clean)
		if hf != nil {
			who := fmt.Sprintf("t%d", i)
			x.lat.dump(hf, sys, threads, who, "op")
			x.clean.dump(hf, sys, threads, who, "op_clean")
		}
	}
	// each cycle's stop-the-world total, for the cycles in the window
	var pauses []uint64
	lost := uint64(0)
	for g := ms0.NumGC; g < ms1.NumGC; g++ {
		if ms1.NumGC-g > 256 {
			lost++
			continue
		}
		pauses = append(pauses, ms1.PauseNs[g%256]) // cycle g+1 (NumGC numbering)
	}
	sort.Slice(pauses, func(i, j int) bool { return pauses[i] < pauses[j] })
	var p50, p99, pmax uint64
	if n := len(pauses); n > 0 {
		p50, p99, pmax = pauses[n/2], pauses[n*99/100], pauses[n-1]
	}
	if hf != nil {
		for _, p := range pauses {
			fmt.Fprintf(hf, "%s\t%d\tall\tcycle_pause\t%d\t1\n", sys, threads, p)
		}
		hf.Close()
	}
	stw50, nstw := histDeltaQ(ph0, ph1, 0.5)
	stw99, _ := histDeltaQ(ph0, ph1, 0.99)
	stwMax, _ := histDeltaQ(ph0, ph1, 1.0)
	// GCCPUFraction is GC CPU / (wall since start x GOMAXPROCS) as of the
	// last cycle's end: take the window's share out of the two readings
	c0 := ms0.GCCPUFraction * float64(int64(ms0.LastGC)-base.UnixNano())
	c1 := ms1.GCCPUFraction * float64(int64(ms1.LastGC)-base.UnixNano())
	gcCPU := 0.0
	if ms1.NumGC > ms0.NumGC && ms0.LastGC != 0 {
		gcCPU = (c1 - c0) / float64(int64(ms1.LastGC)-int64(ms0.LastGC))
	}
	procCPU := cpuOf(ru1) - cpuOf(ru0)
	other := (procCPU - mutCPU - mon.cpu) / (wall * float64(procs))
	cpuPerOp := 0.0
	if ops > 0 {
		cpuPerOp = procCPU * 1e6 / float64(ops)
	}
	fmt.Printf("summary %s threads=%d live_mib=%.0f keys=%d buckets=%d bucket_arrays=1 limit_mib=%.0f secs=%.1f "+
		"build_s=%.2f rate=%.0f ops=%d ops_per_s=%.0f cycles=%d pauses_seen=%d pauses_lost=%d "+
		"pause_p50_us=%.1f pause_p99_us=%.1f pause_max_us=%.1f stw_n=%d stw_p50_us=%.1f stw_p99_us=%.1f stw_max_us=%.1f "+
		"lat_p50_us=%.2f lat_p99_us=%.2f lat_p999_us=%.2f lat_max_us=%.1f clean_p999_us=%.2f clean_max_us=%.1f "+
		"slow_clean=%d slow_preempted=%d slow_blocked=%d gc_cpu_memstats=%.4f gc_cpu=%.4f nonmutator_cpu=%.4f "+
		"proc_cpu_s=%.2f cpu_us_per_op=%.3f rss_base_mib=%.1f peak_rss_mib=%.1f rss_max_sampled_mib=%.1f rss_samples=%d "+
		"rss_over_limit=%d sys_end_mib=%.1f alloc_fails=0 missing=%d damaged=%d gomaxprocs=%d\n",
		sys, threads, float64(live)/1048576, nkeys, nb, float64(limit)/1048576, wall, buildS, rate, ops,
		float64(ops)/wall, ms1.NumGC-ms0.NumGC, len(pauses), lost, float64(p50)/1e3, float64(p99)/1e3,
		float64(pmax)/1e3, nstw, stw50*1e6, stw99*1e6, stwMax*1e6, float64(all.q(0.5))/1e3, float64(all.q(0.99))/1e3,
		float64(all.q(0.999))/1e3, float64(all.max)/1e3, float64(clean.q(0.999))/1e3, float64(clean.max)/1e3,
		slow0, slow1, slow2, gcCPU, gcCPU, other, procCPU, cpuPerOp, float64(rssBase)/1048576,
		float64(ru.Maxrss)/1024, float64(mon.rssMax)/1048576, mon.samples, mon.over, float64(ms1.Sys)/1048576,
		missing, damaged, procs)
	if limit > 0 && (mon.over > 0 || uint64(ru.Maxrss)*1024 > uint64(limit)) {
		fmt.Fprintln(os.Stderr, "churn: RSS went above the limit")
	}
	if missing > 0 || damaged > 0 {
		os.Exit(1)
	}
}
