/* core/internal.h — regio's private types, invariants and cross-file API.
 * Never installed.  Names: rg_ public, rgi_ internal across files, static
 * file-local.
 *
 * Glossary
 * --------
 *  reservation  one range of address space reserved PROT_NONE at init; every
 *               segment of the default page source lives inside it.
 *  segment      2 MiB, 2 MiB-aligned piece of the reservation.  Its first
 *               4 KiB hold a rgi_segment header; the header is found from any
 *               interior address by masking (never by a search).
 *  run          n contiguous segments holding one large object (header in the
 *               first segment only).
 *  page         64 KiB slice of an arena segment; page 0 starts after the
 *               header.  32 pages a segment.
 *  span         a run of pages inside one segment serving one purpose: blocks
 *               of one size class, one medium object, or free.
 *  block        one object slot in a size-class span.
 *  arena        per-thread allocator state; owns segments; no lock on the
 *               fast path.  Orphaned at thread exit, adopted by the next thread.
 *  inbox        lock-free stack of blocks freed by threads other than the
 *               owner; drained by the owner on its slow path.
 *  charge       bytes counted against the hard limit (rgi_page_charge).  The
 *               page layer is the only place that charges.
 *  idle         a committed, charged segment with nothing in it, cached for
 *               reuse; the scavenger returns it to the OS after a delay.
 *  scavenged    a segment whose pages went back (MADV_DONTNEED): mapped but
 *               not charged; reuse charges it again.
 *  region/chunk per-request bump allocator; its memory comes in chunks.
 *  ladder       what a commit does when it would cross the limit: release
 *               idle segments, run pressure hooks (pools, collector), the
 *               user's OOM handler, then fail.
 */
#ifndef REGIO_INTERNAL_H
#define REGIO_INTERNAL_H

#include "regio.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Checks.  RG_ASSERT: debug_checks builds.  RG_ASSERT_EXPENSIVE: heap walks.
 * rgi_corrupt: always on — detected metadata corruption is the one reason
 * regio aborts in a release build.
 * ------------------------------------------------------------------------- */
#ifndef RG_DEBUG_CHECKS
#define RG_DEBUG_CHECKS 0
#endif

#define RGI_NOINLINE __attribute__((noinline))
#define RGI_COLD __attribute__((cold, noinline))
#define RGI_UNUSED __attribute__((unused))

RGI_COLD __attribute__((noreturn, format(printf, 1, 2))) void rgi_corrupt(const char *fmt, ...);
RGI_COLD __attribute__((format(printf, 2, 3))) void rgi_diag(const char *call, const char *fmt, ...);

#if RG_DEBUG_CHECKS
#define RG_ASSERT(c) do { if (RG_UNLIKELY(!(c))) rgi_corrupt("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__); } while (0)
#else
#define RG_ASSERT(c) ((void)0)
#endif
#if RG_DEBUG_CHECKS > 1
#define RG_ASSERT_EXPENSIVE(c) RG_ASSERT(c)
#else
#define RG_ASSERT_EXPENSIVE(c) ((void)0)
#endif

/* Sanitizer and Valgrind seams: poison/unpoison memory handed back. */
#if defined(__SANITIZE_ADDRESS__)
#define RGI_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RGI_ASAN 1
#endif
#endif
#ifndef RGI_ASAN
#define RGI_ASAN 0
#endif
#if defined(__SANITIZE_THREAD__)
#define RGI_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RGI_TSAN 1
#endif
#endif
#ifndef RGI_TSAN
#define RGI_TSAN 0
#endif

void rgi_poison(void *p, size_t n);   /* no access until rgi_unpoison */
void rgi_unpoison(void *p, size_t n); /* addressable, contents undefined */
bool rgi_poisoning(void);             /* ASan, Valgrind, debug_checks or RG_DEBUG=poison=1 */

/* ---------------------------------------------------------------------------
 * Options (one table: core/options.c).  Read once at init, API overrides.
 * ------------------------------------------------------------------------- */
typedef struct rgi_options {
    int hugepages;             /* enum rg_hugepages, resolved (never DEFAULT after init) */
    size_t reserve_bytes;
    int64_t scavenge_delay_ns; /* -1 = never */
    int gc_percent;
    int gctrace, gcstress, scavtrace, poison, memtrace_s;
} rgi_options;

extern rgi_options rgi_opt;
void rgi_options_from_env(rg_config *cfg); /* fills unset fields of cfg from the environment */
int rgi_parse_bytes(const char *s, int64_t *out); /* Go's GOMEMLIMIT syntax; 0 or -EINVAL */
int rgi_parse_debug(const char *s);               /* RG_DEBUG list into rgi_opt; 0 or -EINVAL */

/* Lazy initialization: every public entry calls rgi_ensure_init() first. */
extern atomic_int rgi_inited;
int rgi_init_slow(const rg_config *cfg);
static inline int rgi_ensure_init(void)
{
    /* acquire: pairs with the release store at the end of rgi_init_slow */
    if (RG_LIKELY(atomic_load_explicit(&rgi_inited, memory_order_acquire) == 2))
        return 0;
    return rgi_init_slow(NULL);
}

uint64_t rgi_now_ns(void); /* CLOCK_MONOTONIC */
/* pthread_cond_timedwait for at most ns from now; lock held.  Returns its result. */
int rgi_cond_wait_ns(pthread_cond_t *cv, pthread_mutex_t *lock, uint64_t ns);

/* ---------------------------------------------------------------------------
 * Page layer (core/page.c): reservation, segments, the hard limit.
 * ------------------------------------------------------------------------- */
#define RGI_SEG_SHIFT 21
#define RGI_SEG_SIZE ((size_t)1 << RGI_SEG_SHIFT)
#define RGI_SEG_MASK (RGI_SEG_SIZE - 1)
#define RGI_OS_PAGE ((size_t)4096)
#define RGI_SEG_HDR ((size_t)4096) /* header bytes at the start of a segment */

/* A page source: where segments get their memory (ops table; one file each).
 * All return 0 or -errno.  `backing` reports the backing obtained. */
typedef struct rgi_page_source {
    const char *name;
    int (*reserve)(size_t size, void **base);
    int (*commit)(void *addr, size_t len, int want_hugepages, int *backing);
    int (*decommit)(void *addr, size_t len, int backing); /* drop pages, keep the range reserved */
    int (*purge)(void *addr, size_t len, int backing);    /* drop pages, keep the mapping usable */
} rgi_page_source;

extern const rgi_page_source rgi_os_source;
/* Installs the page source init will use (before the first allocation);
 * 0, or -EBUSY once the page layer is initialized. */
int rgi_page_set_source(const rgi_page_source *s);

/* Test seam: wrap the page source so commits fail (SQLite's fault.c idea).
 * nth > 0: the nth commit from now fails (once).  permille > 0: each commit
 * fails with that probability, drawn from a generator seeded with seed.
 * All zero: no faults.  Returns the number of faults injected so far. */
uint64_t rgi_fault_inject(uint64_t nth, uint32_t permille, uint64_t seed);

enum rgi_seg_kind { RGI_SEG_FREE = 0, RGI_SEG_ARENA = 1, RGI_SEG_LARGE = 2 };

/* Pressure hooks: the upper layers' rungs of the limit ladder.  A hook is
 * called with the bytes wanted and returns the bytes it believes it freed.
 * Levels run in ascending order: 10 pools, 20 collector.  Hooks run with no
 * page-layer lock held and are never re-entered on the same thread. */
typedef size_t (*rgi_pressure_fn)(size_t need, void *arg);
#define RGI_PRESSURE_POOLS 10
#define RGI_PRESSURE_GC 20
int rgi_pressure_register(int level, rgi_pressure_fn fn, void *arg);

/* Charges n bytes against the limit, running the ladder if needed.
 * Returns 0 or -ENOMEM.  Never lets committed bytes exceed the limit. */
int rgi_page_charge(size_t n);
void rgi_page_uncharge(size_t n);

/* One segment for an arena: committed, charged, zero-filled when fresh
 * (a reused idle segment is not zeroed; *fresh says which).
 * NULL + errno on failure. */
void *rgi_segment_alloc(bool *fresh);
/* Gives an arena segment back: cached idle (still charged), scavenged later. */
void rgi_segment_free(void *seg);

/* A run of segments for one large object of `bytes` (header included);
 * commits round_up(bytes, 4 KiB).  NULL + errno. */
void *rgi_run_alloc(size_t bytes, size_t *committed);
void rgi_run_free(void *run, size_t committed);

/* Is p inside a committed segment of the reservation?  (Safe for any p.) */
bool rgi_page_owns(const void *p);
/* Kind of the segment holding p, RGI_SEG_FREE if none (safe for any p). */
int rgi_page_kind(const void *p);

/* The reservation: every segment lies in [*base, *base + *len) (len 0
 * before init). */
void rgi_page_range(char **base, size_t *len);

/* The first segment of the run holding p (p may lie past the run's first
 * segment), or NULL.  Safe for any p. */
void *rgi_page_run_head(const void *p);

/* Checks the page layer's counting invariants (takes its lock). */
bool rgi_page_is_valid(void);

/* Releases idle segments to the OS now; returns bytes released. */
size_t rgi_page_release_idle(size_t want);

typedef struct rgi_page_stats {
    uint64_t committed, limit_bytes, metadata, idle, released_total;
    uint64_t by_backing[3];
    uint64_t segments, limit_hits, oom_fails;
    int64_t limit; /* -1 = none */
} rgi_page_stats;
void rgi_page_read_stats(rgi_page_stats *st);

int64_t rgi_page_set_limit(int64_t bytes);
int rgi_page_init(void);
void rgi_page_atfork_prepare(void);
void rgi_page_atfork_parent(void);
void rgi_page_atfork_child(void);

/* ---------------------------------------------------------------------------
 * Arenas (core/arena.c)
 * ------------------------------------------------------------------------- */
#define RGI_PAGE_SHIFT 16
#define RGI_PAGE_SIZE ((size_t)1 << RGI_PAGE_SHIFT)
#define RGI_PAGES_PER_SEG (RGI_SEG_SIZE / RGI_PAGE_SIZE)
#define RGI_SMALL_MAX ((size_t)32 << 10)   /* largest size-class block */
#define RGI_MEDIUM_MAX (15 * RGI_PAGE_SIZE) /* largest page-run object: 960 KiB */
#define RGI_NCLASSES 40

typedef struct rgi_arena rgi_arena;

enum rgi_span_kind { RGI_SPAN_FREE = 0, RGI_SPAN_SMALL = 1, RGI_SPAN_MEDIUM = 2, RGI_SPAN_USER = 3 };

/* A span: pages [page, page + npages) of its segment.
 * Invariant (owner's view, inbox blocks count as used until drained):
 *     used + nfree + (end - bump) / block_size == capacity           */
typedef struct rgi_span {
    void *free;              /* local free list (owner only) */
    char *bump;              /* next never-used block */
    char *end;               /* end of the usable area */
    char *start;             /* first block */
    uint32_t used, nfree, capacity, block_size;
    uint8_t kind, sclass, page, npages;
    uint8_t in_list, pad;
    uint16_t sampled;        /* live heap-profile samples in this span (0xffff: sticky);
                                nonzero: frees look in the side table (core/profile.c) */
    struct rgi_span *next, *prev; /* in the arena's class list */
    void *user;              /* RGI_SPAN_USER: owner's data (the collector's spans) */
} rgi_span;

/* Segment header.  Invariant: popcount(free_pages) + sum(npages of spans)
 * == RGI_PAGES_PER_SEG; page_span[i] is the first page of the span holding
 * page i. */
typedef struct rgi_segment {
    uint64_t magic;          /* RGI_SEG_MAGIC ^ (uintptr_t)self */
    uint8_t kind;            /* enum rgi_seg_kind */
    uint8_t backing;         /* enum rg_backing */
    uint8_t sampled;         /* RGI_SEG_LARGE: the object is a heap-profile sample */
    uint8_t pad[5];
    size_t committed;        /* bytes committed in this segment or run */
    size_t nsegs;            /* segments in this run (1 for arena segments) */
    size_t obj_size;         /* RGI_SEG_LARGE: the object's requested size */
    rgi_arena *arena;        /* owner (arena segments); never changes while in use */
    uint32_t free_pages;     /* bitmap of free pages */
    uint32_t used_pages;
    struct rgi_segment *next, *prev; /* arena's segment list */
    uint8_t page_span[RGI_PAGES_PER_SEG];
    rgi_span spans[RGI_PAGES_PER_SEG]; /* span i is valid if it starts at page i */
} rgi_segment;

#define RGI_SEG_MAGIC 0x7265672d73656721ull

static inline rgi_segment *rgi_segment_of(const void *p)
{
    return (rgi_segment *)((uintptr_t)p & ~(uintptr_t)RGI_SEG_MASK);
}
static inline bool rgi_segment_check(const rgi_segment *s)
{
    return s->magic == (RGI_SEG_MAGIC ^ (uintptr_t)s);
}
static inline rgi_span *rgi_span_of(rgi_segment *s, const void *p)
{
    size_t page = ((uintptr_t)p & RGI_SEG_MASK) >> RGI_PAGE_SHIFT;
    return &s->spans[s->page_span[page]];
}

/* The calling thread's arena (created or adopted lazily); NULL + errno. */
rgi_arena *rgi_arena_get(void);
rgi_arena *rgi_arena_current(void); /* NULL if the thread has none yet */
void *rgi_arena_malloc(size_t n);
void rgi_arena_free(void *p);
size_t rgi_arena_usable(const void *p);

/* Spans for other allocators (the collector's typed spans): npages pages of
 * the calling thread's arena, kind RGI_SPAN_USER.  The caller owns their
 * layout; s->user is free for its metadata.  NULL + errno. */
rgi_span *rgi_arena_span_alloc(size_t npages);
void rgi_arena_span_free(rgi_span *s);

/* Detached arenas: a page heap no thread owns (the collector's, shared by
 * all its threads); the caller serializes every call on one.  Spans are
 * RGI_SPAN_USER as above.  take: npages from the arena's own segments, or
 * NULL + errno EAGAIN when none has room (it never commits: the caller gets
 * a segment with rgi_segment_alloc, with no lock held since the limit
 * ladder may run, and adds it).  put: frees a span's pages; an emptied
 * segment goes back to the page layer unless it is the arena's last
 * (returns the bytes of segments given back, 0 or one segment).
 * trim: gives every empty segment back (the last one too); returns bytes. */
rgi_arena *rgi_arena_new_detached(void); /* NULL + errno */
rgi_span *rgi_arena_span_take(rgi_arena *a, size_t npages);
void rgi_arena_segment_add(rgi_arena *a, void *seg, bool fresh);
size_t rgi_arena_span_put(rgi_arena *a, rgi_span *sp); /* bytes of segments given back */
size_t rgi_arena_trim(rgi_arena *a);

typedef struct rgi_arena_stats {
    uint64_t mallocs, frees, bytes_alloc, bytes_freed, inuse_spans_bytes;
    uint64_t arenas, abandoned, inbox_drained;
} rgi_arena_stats;
void rgi_arena_read_stats(rgi_arena_stats *st);
bool rgi_arena_is_valid(const rgi_arena *a); /* checks the counting invariants (owner only) */
void rgi_arena_atfork_prepare(void);
void rgi_arena_atfork_parent(void);
void rgi_arena_atfork_child(void);

/* size class helpers, exposed for tests */
unsigned rgi_size_class(size_t n);
/* rgi_size_class, inline for allocation fast paths (same classes) */
static inline unsigned rgi_size_class_inl(size_t n)
{
    if (n <= 128)
        return n == 0 ? 0 : (unsigned)((n + 15) >> 4) - 1;
    unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
    return 8u + (b - 7u) * 4u + (unsigned)(((n - 1) >> (b - 2)) & 3u);
}
size_t rgi_class_size(unsigned c);

/* ---------------------------------------------------------------------------
 * Regions (core/region.c)
 * ------------------------------------------------------------------------- */
extern atomic_uint_fast64_t rgi_region_bytes; /* memstats.region_inuse */
/* Pins of live regions, for the collector's root scan: calls fn for every
 * object pinned by any live region.  Takes the pin registry's lock. */
void rgi_region_pins_foreach(void (*fn)(void *obj, void *arg), void *arg);
/* The collector's hook: called by rg_region_keep to validate an object
 * (returns true when obj is a collected-heap object).  NULL until the
 * collector registers one; then pins of non-heap pointers fail with -EINVAL. */
extern bool (*rgi_gc_is_object)(const void *obj);

/* The collector's side of blocking waits (core/gc.c): park an attached,
 * running thread around a sleep; returns whether it parked. */
bool rgi_gc_park_for_wait(void);
void rgi_gc_unpark_after_wait(bool parked);

/* Stats pieces other layers add (pools register their cached bytes). */
extern atomic_uint_fast64_t rgi_pool_cached_bytes;
/* Ends a pool epoch (pool/syncpool.c): every syncpool's primary becomes its
 * victim and the old victim is freed.  The collector calls it at the end of
 * each cycle; until then a 1 s timer and limit pressure do.  Returns the
 * bytes freed.  Takes the pools' registry lock: never call it with it held. */
size_t rgi_pool_epoch(void);

/* ---------------------------------------------------------------------------
 * Observability (core/stats.c, core/profile.c, core/monitor.c)
 * ------------------------------------------------------------------------- */
/* Live channels (relaxed adds in pool/chan.c).  Pool hits and misses come
 * from the pools' row sources below, summed by rg_read_memstats. */
extern atomic_uint_fast64_t rgi_chans_live;

/* Per-pool rows for /debug/vars and the dashboard.  A layer with pools
 * registers one enumerator (at most 8 sources); it fills up to max rows and
 * returns how many it filled.  It runs on the debug server's thread and
 * must not block for long. */
typedef struct rgi_pool_row {
    const char *kind; /* "syncpool", "objpool", "chan" */
    const char *name; /* may be NULL */
    uint64_t hits, misses, cached_bytes, live;
} rgi_pool_row;
typedef size_t (*rgi_pool_rows_fn)(rgi_pool_row *rows, size_t max, void *arg);
int rgi_stats_pool_source(rgi_pool_rows_fn fn, void *arg); /* 0 or -ENOSPC */
size_t rgi_stats_pool_rows(rgi_pool_row *rows, size_t max);

/* Heap profile sampling.  An allocator keeps a per-thread byte countdown
 * (the arena's prof_left); an allocation of n bytes does
 *     if (RG_UNLIKELY((left -= n) < 0)) { left = rgi_prof_next(); flag; rgi_prof_record(p, n); }
 * and counts the sample in the span/run holding p, so that frees there call
 * rgi_prof_forget while it holds one.
 * When sampling is off the countdown is RGI_PROF_OFF_COUNTDOWN, so a rate
 * switched on later is picked up after that many bytes. */
#define RGI_PROF_OFF_COUNTDOWN ((int64_t)16 << 20)
int64_t rgi_prof_rate(void);
int64_t rgi_prof_next(void);
void rgi_prof_record(void *p, size_t size);
void rgi_prof_atfork_init(void); /* registers the profile's fork handlers now */
bool rgi_prof_forget(void *p); /* true when p was a sample (the caller uncounts it) */
uint64_t rgi_prof_inuse_samples(void);
extern atomic_uint_fast64_t rgi_prof_samples;
/* The gzipped pprof profile in a regio buffer (rgi_arena_free it); 0 or -errno. */
int rgi_prof_build(bool allocs, unsigned char **out, size_t *len);

/* Called once init succeeds: starts memtrace (RG_DEBUG=memtrace=N) and, in
 * debug builds, registers the leak report at exit. */
void rgi_observe_init(void);
/* "function+0xoff" (or the address) for pc, from the ELF symbol tables. */
void rgi_prof_symbolize(uintptr_t pc, char *buf, size_t n);
/* Live regions (debug_checks builds; returns false elsewhere): calls fn for
 * each with the bytes it holds, the arena objects it holds (chunks + large
 * blocks) and the call site that created it; also reports the freed
 * regions' first chunks kept in the debug quarantine. */
bool rgi_region_live_foreach(void (*fn)(const void *r, size_t held, size_t nblocks, const void *site, void *arg),
                             void *arg, size_t *quarantined, size_t *quarantined_bytes);
/* Threads attached to the collector (core/gc maintains it), for the leak report. */
extern atomic_long rgi_gc_threads_attached;

#endif /* REGIO_INTERNAL_H */
