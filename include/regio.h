/* regio.h — the umbrella header: Go-style memory management for C servers.
 *
 * Sections (one header each, every one compiles alone as C and as C++):
 *   regio/common.h   lifecycle, tuning, the hard memory limit, memstats
 *   regio/arena.h    general allocation from per-thread arenas
 *   regio/region.h   per-request regions (Go's stack: freed all at once)
 *   regio/gc.h       the collected heap: typed objects, write barrier, roots, safepoints
 *   regio/debug.h    heap profiles (pprof), debug HTTP endpoint, memtrace, leaks
 *   regio/mapfile.h  zero-copy file maps and views (golang.org/x/exp/mmap)
 *   regio/uring.h    io_uring glue (not included here: include it yourself,
 *                    it needs liburing and the meson feature `uring`)
 *   regio/dpdk.h     DPDK mempool ops "regio", mbuf pools in regio memory, regio
 *                    segments in a memzone (not included here: meson feature `dpdk`)
 *   regio/chan.h     bounded MPMC channels with Go's semantics
 *   regio/pool.h     rg_syncpool (sync.Pool), rg_objpool (bounded pool), rg_buf
 *   regio/slice.h    make([]T) and append() with Go's growth, on a region or standalone
 *   regio/map.h      Swiss-table maps with byte-string keys that grow and shrink
 *
 * Errors: allocations return NULL and set errno; int-returning calls return
 * 0 (or a count) on success and -errno on failure.  See regio/common.h.
 */
#ifndef REGIO_H
#define REGIO_H

#include "regio/common.h"
#include "regio/arena.h"
#include "regio/region.h"
#include "regio/gc.h"
#include "regio/debug.h"
#include "regio/mapfile.h"
#include "regio/chan.h"
#include "regio/pool.h"
#include "regio/slice.h"
#include "regio/map.h"

#endif /* REGIO_H */
