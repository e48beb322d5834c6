/* regio/debug.h — observability: heap profiles in pprof's format, a debug
 * HTTP endpoint with a live dashboard, the memtrace monitor, leak reports.
 *
 * ---------------------------------------------------------------------------
 * Contract of this section
 * ---------------------------------------------------------------------------
 * What Go gives a server with runtime.MemProfileRate, pprof.WriteHeapProfile,
 * net/http/pprof, expvar and GODEBUG, regio gives a C server here:
 *
 *  - Heap profiling samples allocations at an average of one per
 *    `rate` bytes (RG_MEMPROFILERATE, default 512 KiB, 0 = off; like Go's
 *    MemProfileRate): each thread counts down an exponentially distributed
 *    number of bytes, and the allocation that crosses zero is recorded with
 *    its call stack.  Unsampled allocations pay one subtract and one
 *    predictable branch; unsampled frees pay at most one predictable branch.
 *    Covered: rg_malloc and friends, region chunks and region large blocks
 *    (sampled per chunk in the region's slow path — the inline rg_alloc is
 *    untouched, so a region sample stands for the chunk that holds the
 *    bytes, attributed to the caller whose rg_alloc needed it), and every
 *    layer that allocates from the arenas (pools, channels).  A rate change
 *    takes effect in each thread once its current countdown runs out (at
 *    most 16 MiB of its allocation after turning sampling on); set it early.
 *  - Profiles are pprof protobuf, gzipped, with sample types alloc_objects,
 *    alloc_space, inuse_objects and inuse_space, values scaled like Go's
 *    (an estimate of all allocations, not only the sampled ones), function
 *    names filled in, so `go tool pprof FILE` needs no binary.  regio's own
 *    frames are cut from the top of each stack: the leaf is the caller of
 *    regio.  Functions are named from ELF symbol tables (static functions
 *    included); a stripped binary shows addresses.
 *  - rg_debug_serve() runs an HTTP server (libmicrohttpd, its own threads)
 *    with /debug/pprof/heap, /debug/pprof/allocs, /debug/vars (memstats as
 *    JSON) and /debug/regio (a self-contained live dashboard: heap, limit,
 *    RSS, GC pauses, pool hit rates).  It serves anyone who can connect:
 *    bind it to loopback unless you mean otherwise.
 *  - RG_DEBUG=memtrace=30s starts a monitor thread that prints one line of
 *    memstats to stderr per interval (see README); rg_monitor_start() does
 *    the same from code.
 *  - Debug builds (debug_checks) print a leak report at exit: regions never
 *    freed, arena objects never freed, threads attached to the collector and
 *    never detached.  rg_leak_report() prints it on demand in any build
 *    (regions are only listed in debug builds).
 *
 * Pieces that need an optional dependency (libunwind for stacks, protobuf-c
 * and zlib for profiles, libmicrohttpd for the server) return -ENOTSUP when
 * regio was built without it.
 */
#ifndef REGIO_DEBUG_H
#define REGIO_DEBUG_H

#include "common.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sets the heap profile sampling rate in bytes (0 = off) and returns the
 * previous one.  A negative value only queries.  Like runtime.MemProfileRate. */
RG_EXPORT int64_t rg_set_memprofile_rate(int64_t bytes);

/* Writes the heap profile (pprof protobuf, gzip; default sample type
 * inuse_space, like /debug/pprof/heap) to fd.  Returns 0, -ENOTSUP (built
 * without protobuf-c or zlib), -ENOMEM, -EBADF/-EIO or another -errno from
 * write(2). */
RG_EXPORT int rg_write_heap_profile(int fd);

/* The same profile with default sample type alloc_space (/debug/pprof/allocs).
 * Same errors. */
RG_EXPORT int rg_write_allocs_profile(int fd);

/* Starts the debug HTTP server on addr: "127.0.0.1:6060", "[::1]:6060",
 * ":0" (all interfaces, ephemeral port) or "localhost:0".  One server per
 * process.  Returns 0, -EINVAL (bad address), -EALREADY (already serving),
 * -EADDRINUSE, -ENOTSUP (built without libmicrohttpd), -ENOMEM.
 * (DESIGN.md §3 gives only the signature; the endpoint list is above.) */
RG_EXPORT int rg_debug_serve(const char *addr);

/* The port the server listens on (useful after ":0"), or -ENOTCONN. */
RG_EXPORT int rg_debug_port(void);

/* Stops the server, waiting for requests in flight.  No-op if none. */
RG_EXPORT void rg_debug_stop(void);

/* Formats memstats as one JSON object into buf (NUL-terminated, truncated to
 * cap).  Returns the length the full text needs (like snprintf), or
 * -EINVAL for a NULL ms. */
RG_EXPORT int rg_memstats_json(const rg_memstats *ms, char *buf, size_t cap);

/* Starts the memtrace monitor: one line to stderr every interval_ns
 * (>= 1 ms).  Returns 0, -EINVAL, -EALREADY, or -errno from pthread_create.
 * RG_DEBUG=memtrace=30s calls it at init. */
RG_EXPORT int rg_monitor_start(int64_t interval_ns);
/* Stops the monitor thread and waits for it.  No-op if none. */
RG_EXPORT void rg_monitor_stop(void);

/* Prints the leak summary to out (stderr when NULL) and returns the number
 * of leaked items found (regions + objects + threads).  Debug builds call it
 * at exit when anything leaked. */
RG_EXPORT long rg_leak_report(FILE *out);

#ifdef __cplusplus
}
#endif
#endif /* REGIO_DEBUG_H */
