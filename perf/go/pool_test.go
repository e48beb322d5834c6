// Go's side of perf/bench_pool.c, for perf/run_pool.py: sync.Pool Get+Put
// (one goroutine, and RunParallel on GOMAXPROCS), a buffered channel's
// send+recv in one goroutine and across a producer/consumer pair, the same
// pair on an unbuffered channel, and the channel-backed BufferPool of the
// seed (one goroutine and parallel).
// Objects are 2 KiB, as in ANCHORS.md.
//
//	go test -run XXX -bench 'Pool|Chan' -benchtime 0.5s
//
// Stdlib only, no network.
package mapbench

import (
	"sync"
	"testing"
)

const objSize = 2048

var syncPool = sync.Pool{New: func() any { b := make([]byte, objSize); return &b }}

func BenchmarkSyncPool(b *testing.B) {
	for i := 0; i < b.N; i++ {
		p := syncPool.Get().(*[]byte)
		syncPool.Put(p)
	}
}

func BenchmarkSyncPoolParallel(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := syncPool.Get().(*[]byte)
			syncPool.Put(p)
		}
	})
}

func BenchmarkChanSendRecv(b *testing.B) {
	c := make(chan *int, 1024)
	v := new(int)
	for i := 0; i < b.N; i++ {
		c <- v
		<-c
	}
}

// prodCons sends b.N elements through c to a consumer goroutine.
func prodCons(b *testing.B, c chan uint64) {
	done := make(chan struct{})
	go func() {
		for i := 0; i < b.N; i++ {
			<-c
		}
		close(done)
	}()
	for i := 0; i < b.N; i++ {
		c <- uint64(i)
	}
	<-done
}

func BenchmarkChanProdCons(b *testing.B) { prodCons(b, make(chan uint64, 1024)) }

// The same pair on an unbuffered channel: every element is a rendezvous.
func BenchmarkChanUnbufferedProdCons(b *testing.B) { prodCons(b, make(chan uint64)) }

// BufferPool: the seed's channel-backed pool (take from the channel or make
// a new buffer; put back unless the channel is full).
type BufferPool struct{ c chan []byte }

func (p *BufferPool) Get() []byte {
	select {
	case b := <-p.c:
		return b
	default:
		return make([]byte, objSize)
	}
}

func (p *BufferPool) Put(b []byte) {
	select {
	case p.c <- b:
	default:
	}
}

func BenchmarkBufferPool(b *testing.B) {
	p := &BufferPool{c: make(chan []byte, 1024)}
	for i := 0; i < b.N; i++ {
		p.Put(p.Get())
	}
}

func BenchmarkBufferPoolParallel(b *testing.B) {
	p := &BufferPool{c: make(chan []byte, 1024)}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Put(p.Get())
		}
	})
}
