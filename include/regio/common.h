/* regio/common.h — lifecycle, tuning, the hard memory limit and memstats.
 *
 * ---------------------------------------------------------------------------
 * Contract of this section
 * ---------------------------------------------------------------------------
 * regio works with no call at all: the first allocation initializes the
 * library from the environment (RG_MEMLIMIT, RG_GC_PERCENT, RG_DEBUG,
 * RG_HUGEPAGES; see README "Configuration").  rg_init() is optional and may
 * override those values; settings that shape the address space (hugepage
 * mode, reservation size) only take effect if rg_init() runs before the
 * first allocation.
 *
 * Errors, everywhere in regio:
 *   - allocating calls return NULL and set errno (ENOMEM, EINVAL, EOVERFLOW);
 *   - int-returning calls return 0 (or a count) on success, -errno on
 *     failure: -EAGAIN would block, -ETIMEDOUT, -EPIPE closed channel,
 *     -ENOMEM, -EINVAL.
 *   - nothing aborts on bad input in release builds; only detected heap
 *     corruption does.
 *
 * The hard limit: every byte regio commits from the OS — segments, spans,
 * large objects, region chunks, pool objects, channel buffers and regio's own
 * metadata — is counted in one place (the page layer).  A commit that would
 * cross the limit first returns idle memory to the OS, then asks the upper
 * layers to let go (pool caches, a collection), then calls the user's OOM
 * handler, and only then fails with NULL/ENOMEM.  The limit is never crossed.
 */
#ifndef REGIO_COMMON_H
#define REGIO_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RG_EXPORT __attribute__((visibility("default")))
#define RG_LIKELY(x) __builtin_expect(!!(x), 1)
#define RG_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RG_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define RG_EXPORT
#define RG_LIKELY(x) (x)
#define RG_UNLIKELY(x) (x)
#define RG_MALLOC_ATTR
#endif

#define RG_VERSION_MAJOR 0
#define RG_VERSION_MINOR 1
#define RG_VERSION_PATCH 0
#define RG_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------- */

/* Hugepage policy for segments (RG_HUGEPAGES). */
enum rg_hugepages {
    RG_HUGEPAGES_DEFAULT = 0, /* explicit if hugepages are reserved, else thp */
    RG_HUGEPAGES_EXPLICIT,    /* MAP_HUGETLB, falling back to THP, then 4 KiB */
    RG_HUGEPAGES_THP,         /* madvise(MADV_HUGEPAGE), falling back to 4 KiB */
    RG_HUGEPAGES_OFF          /* 4 KiB pages only */
};

/* Backing a committed segment got (see rg_memstats.bytes_*). */
enum rg_backing { RG_BACKING_4K = 0, RG_BACKING_THP = 1, RG_BACKING_HUGETLB = 2 };

#define RG_MEMLIMIT_UNSET INT64_MIN /* rg_config.memory_limit: take env/default */
#define RG_MEMLIMIT_OFF   INT64_MAX /* no limit (Go's math.MaxInt64) */
#define RG_GC_PERCENT_UNSET INT32_MIN
#define RG_GC_OFF (-1)

typedef struct rg_config {
    int64_t memory_limit;   /* bytes; RG_MEMLIMIT_OFF; RG_MEMLIMIT_UNSET = env */
    int gc_percent;         /* RG_GC_OFF (-1) disables; RG_GC_PERCENT_UNSET = env */
    int hugepages;          /* enum rg_hugepages; 0 = env/default */
    size_t reserve_bytes;   /* address space to reserve; 0 = default (256 GiB) */
    int64_t scavenge_delay_ns; /* idle time before the scavenger returns a
                                  segment to the OS; 0 = default (1 s), -1 = never */
    const char *debug;      /* RG_DEBUG-style list, NULL = env */
} rg_config;

/* Fills *cfg with "take everything from the environment". */
RG_EXPORT void rg_config_default(rg_config *cfg);

/* Initializes regio.  Optional: every entry point initializes lazily.
 * cfg == NULL: environment and defaults.  May be called again later: the
 * limit and GC percent are applied, address-space settings are ignored once
 * memory was handed out.  Returns 0, or -EINVAL for a bad field, or -ENOMEM
 * when the address space cannot be reserved. */
RG_EXPORT int rg_init(const rg_config *cfg);

/* Like Go's debug.SetMemoryLimit: sets the hard limit on committed bytes and
 * returns the previous one.  A negative value only queries.  RG_MEMLIMIT_OFF
 * (INT64_MAX) removes the limit.  A limit below what is committed now is
 * allowed: regio releases what it can at once, and later commits fail until
 * usage is back under it. */
RG_EXPORT int64_t rg_set_memory_limit(int64_t bytes);

/* Like Go's debug.SetGCPercent: returns the previous value; -1 = off. */
RG_EXPORT int rg_set_gc_percent(int percent);

/* Called as the last step of the limit ladder, before an allocation fails.
 * `need` is the number of bytes the failing commit wanted.  Return non-zero
 * if memory was released and regio should try once more; 0 to fail.  It may
 * run on any thread that allocates, and must not allocate from regio. */
typedef int (*rg_oom_handler)(size_t need, void *arg);
RG_EXPORT void rg_set_oom_handler(rg_oom_handler fn, void *arg);

/* Returns idle memory to the OS now (like Go's debug.FreeOSMemory, without
 * the collection).  Returns the number of bytes released. */
RG_EXPORT size_t rg_release_memory(void);

/* ---------------------------------------------------------------------------
 * Memory statistics (like runtime.ReadMemStats)
 * ------------------------------------------------------------------------- */
typedef struct rg_memstats {
    uint64_t sys;            /* bytes committed from the OS, counted against the limit */
    uint64_t rss;            /* the process's resident set, from /proc/self/statm */
    int64_t  limit;          /* the hard limit in bytes, -1 = none */
    uint64_t heap_alloc;     /* bytes in live objects (arena + collected heap) */
    uint64_t heap_inuse;     /* bytes in spans that hold objects */
    uint64_t heap_objects;   /* live objects */
    uint64_t total_alloc;    /* cumulative bytes allocated */
    uint64_t mallocs, frees; /* cumulative object counts */
    uint64_t region_inuse;   /* bytes held by region chunks and region large blocks */
    uint64_t pool_cached;    /* bytes of objects cached in pools */
    uint64_t bytes_hugetlb, bytes_thp, bytes_4k; /* committed bytes by backing */
    uint64_t heap_idle;      /* committed bytes in idle segments (cached, charged) */
    uint64_t heap_released;  /* bytes returned to the OS, cumulative */
    uint64_t metadata;       /* regio's own metadata, counted in sys */
    uint64_t segments;       /* segments committed now */
    uint64_t limit_hits;     /* commits that ran the limit ladder */
    uint64_t oom_fails;      /* allocations failed with ENOMEM by the limit */
    uint64_t num_gc, pause_total_ns, pause_ns[256], last_gc_ns, next_gc;
    double   gc_cpu_fraction;
    /* Observability (core/stats.c, core/profile.c).  Layers append their own
     * fields below; never insert above, so the struct only grows. */
    uint64_t heap_sys;        /* Go's HeapSys: sys - metadata (segments in use or idle) */
    uint64_t arenas;          /* per-thread arenas created (live + orphaned) */
    uint64_t arenas_orphaned; /* arenas whose thread exited, not yet adopted */
    uint64_t pool_hits;       /* pool gets served from a cache, summed over pools */
    uint64_t pool_misses;     /* pool gets that had to make a new object */
    uint64_t chans;           /* channels alive */
    uint64_t profile_rate;    /* heap profile sampling rate in bytes, 0 = off */
    uint64_t profile_samples; /* allocations sampled since start */
    uint64_t read_ns;         /* rg_read_memstats wall time of this call */
} rg_memstats;

RG_EXPORT void rg_read_memstats(rg_memstats *out);

#ifdef __cplusplus
}
#endif
#endif /* REGIO_COMMON_H */
