/* core/gc.c — the collected heap: typed spans, an incremental tri-color
 * collector with ragged handshakes (no stop-the-world), lazy sweep,
 * finalizers at safepoints, the pacer and the limit rung.
 *
 * Algorithm.
 *  Heap.  Objects live in gspans carved from the pages of one page heap
 *  shared by all threads (a detached arena, Go's mheap; the collector's
 *  metadata comes from it too): one (type, size class) per span, so a block's type is its span's (no object header; the
 *  pointer map is precise).  Each thread keeps the spans it allocates from
 *  in a small direct-mapped cache (Go's mcache) and allocates without a lock
 *  by scanning the span's alloc bits from its free index (Go's allocCache)
 *  a run of free blocks at a time, which the fast path bumps through;
 *  central lists per (type, class) under one heap lock play mcentral.
 *  Objects above 32 KiB get their own arena span or run.  Mark bytes, alloc
 *  and finalizer bits live on the side.  Sweeping a span makes alloc := mark
 *  and clears mark, poisoning freed blocks (the generational mode keeps the
 *  marks of traced blocks: below).
 *
 *  Marking (Dijkstra 1978 tri-color, with Go's hybrid barrier, Go 1.8
 *  "Eliminate STW stack re-scanning" proposal): while marking, rg_write
 *  shades the old value (Yuasa deletion) and the new one (Dijkstra
 *  insertion).  A cycle is a sequence of ragged handshakes, each acknowledged
 *  by every attached running thread at its next safepoint (the collector
 *  acknowledges for parked ones, holding them parked while it does):
 *    START  the barrier is on; nothing is marked before everyone acked.
 *           Once everyone did (mark_open), threads allocate black from
 *           their next span refill (alloc_black_now): every barrier is on,
 *           so a black object only ever holds shaded pointers.
 *    ROOTS  each thread shades its roots and gives back its cached spans
 *           (any still white); the collector shades global roots, region
 *           pins and objects awaiting finalization.
 *    (mark) gray objects are drained by the collector thread, by allocation
 *           assists and by safepoint steps.
 *    TERM   repeated: each thread rescans its roots and flushes its gray
 *           buffer; the collector rescans its roots.  A round in which no
 *           object was shaded anywhere and after which the gray set is empty
 *           ends marking.  A round begins only once marking is quiescent
 *           (the gray set empty, no drain in flight: mark_until_empty), not
 *           while others still mark, which kept every round dirty until
 *           marking ended: normally one round per cycle, two when a
 *           thread's buffer held barrier shades.
 *           Once, before the last round, unreachable objects with
 *           finalizers are queued and shaded (with what they reach).
 *    SWEEP  the barrier is off; each thread gives back the spans it
 *           allocated black in (they are swept now); then sweepgen advances
 *           and spans are swept lazily by allocating threads and eagerly by
 *           the collector, before the next cycle may start.
 *  Guarantee: with the discipline of regio/gc.h, an object reachable from a
 *  root, a pin or a live thread's locals (since its last safepoint) is never
 *  freed; the verifier checks the tri-color invariant after termination.
 *
 *  Why termination is sound: during a clean round no object turned gray, so
 *  (gray set empty at its end) every marked object is scanned and has only
 *  marked children; every thread's roots were rescanned inside the round and
 *  its locals died at its acknowledgement; a pointer a thread loaded after
 *  acknowledging came from a marked object (so it is marked) or was
 *  allocated black.  A shade sets the global `dirty` flag before it sets the
 *  mark bit, so a shade the collector could miss would have to be of an
 *  object white at the end of a clean round — which the argument excludes.
 *
 *  Generations (regio/gc.h rule 9; sticky mark bits, Demers et al. 1990):
 *  a block a full cycle traced stays marked after the sweep (old), so the
 *  minor cycles after it do not mark it again; a minor cycle adds to the
 *  roots the old objects on the cards rg_write marked (scan_cards, before
 *  threads allocate black), clearing each card it scans unless an old
 *  object on it points to a young one.  Minor cycles promote nothing: what
 *  they trace (MARK_YOUNG) or what was allocated black (MARK_BLACK) loses
 *  its mark at the sweep.  A full cycle first clears every mark and card.
 *
 *  Pacing (Go's GOGC, Go 1.5 concurrent GC pacer): the goal is
 *  traced * (1 + GC_PERCENT/100), at least 4 MiB, where traced is what the
 *  last full cycle's marking reached (the heap it kept less what was
 *  allocated black while it ran); a cycle starts before the goal by what
 *  the last cycle of its kind saw allocated while it ran, or earlier when
 *  the room the memory limit leaves, less 1.5x that (at least 10%), would
 *  be used; limit-forced cycles wait so that GC CPU stays under half the
 *  wall time, unless the heap comes within half that margin of the limit.
 *  Assists start when a thread allocates black (after START) and the
 *  marking's gray work is shared with the collector and helper threads.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif
#include "gc_internal.h"

#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* the pools' epoch hook (pool/): defined there when pools are linked */
size_t rgi_pool_epoch(void) __attribute__((weak));

#define GSPAN_MAGIC 0x7267677370616e21ull
#define GRAY_CAP 256
#define CACHE_SLOTS 64
#define ACCOUNT_BYTES ((uint64_t)64 << 10) /* per-thread batching of heap accounting */
#define MIN_TRIGGER ((uint64_t)4 << 20)
#define LARGE_MAX_PAGES 30                  /* bigger objects get a run */
#define SAFEPOINT_BUDGET ((size_t)64 << 10) /* scan bytes per safepoint step */
#define ASSIST_MAX ((size_t)256 << 10)      /* scan bytes per assist */
/* A large object is scanned this much at a time: 1024 pointers, each
 * possibly a cache miss (~50 ns), keep an oblet near MUTATOR_STEP_NS. */
#define OBLET_BYTES ((size_t)8 << 10)
#define MUTATOR_STEP_NS 50000ull            /* time bound of one assist or safepoint step */
#define DRAIN_CLOCK_BYTES ((size_t)2 << 10) /* scan bytes between clock reads in a timed drain */
#define PREFETCH_N 8 /* gray objects in flight between the stack and the scan (drain_for) */
#define SPAN_CACHE 16 /* pages whose span a drain remembers (span_hint) */
#define GRAY_SHARE_MIN 4 /* gray items a drain keeps to itself (gray_share) */
#define ASSIST_STEPS 4        /* MUTATOR_STEP_NS steps per paced assist call, at most */
#define ASSIST_RATIO_MAX 64   /* paced: scan bytes owed per byte allocated, at most */

enum { PH_OFF = 0, PH_MARK = 1, PH_DONE = 2 };
enum { HS_NONE = 0, HS_START, HS_ROOTS, HS_TERM, HS_SWEEP };
enum { T_RUNNING = 0, T_PARKED = 1, T_BUSY = 2 };
enum { L_NONE = 0, L_PARTIAL, L_FULL, L_UNSWEPT };
/* The kind of cycle asked for: full (rg_gc, the limit), minor (gcstress,
 * a test seam) or whichever the generational mode decides (want_full). */
enum { CY_AUTO = 0, CY_FULL, CY_MINOR };

typedef struct gspan gspan;
typedef struct tclass tclass;
typedef struct gthread gthread;

/* A span of the collected heap.  Invariants (heap lock, span not cached):
 *   nalloc == popcount(alloc) after a sweep;  cached => list == L_NONE;
 *   sweepgen in {G-2 (unswept), G-1 (being swept), G (swept), G+2 (made in
 *   PH_DONE, already on the next generation)}. */
struct gspan {
    uint64_t magic;              /* GSPAN_MAGIC ^ (uintptr_t)self */
    const rg_type *type;
    tclass *tc;                  /* NULL for large objects */
    char *start;                 /* first block */
    size_t elem;                 /* block bytes (large: usable bytes) */
    size_t obj_bytes;            /* large: bytes asked for (the scan bound) */
    uint32_t nelems, nwords;
    uint32_t div_mul;            /* ceil(2^32 / elem): block index by multiply (Go's divMagic) */
    uint32_t nper;               /* small: elements of the type per block (a scan without a divide) */
    _Atomic uint32_t sweepgen;
    _Atomic uint32_t freeindex;  /* blocks below it were handed out since the sweep */
    uint32_t abase;              /* holder: first block of the word in acache */
    _Atomic uint32_t black_from; /* alloc_black: freeindex when the holder cached it */
    uint32_t nalloc;             /* heap lock: blocks live after the last sweep */
    uint64_t acache;             /* holder: inverted alloc bits of word abase/64, taken bits cleared */
    uint8_t large, cached, list, finq_linked;
    uint8_t alloc_black;         /* __atomic: cached by a holder allocating black (see span_uncache) */
    rgi_span *aspan;             /* arena span (NULL for a run) */
    void *run;
    size_t run_committed;
    gspan *next, *prev;          /* central list (heap lock) */
    gspan *all_next, *all_prev;  /* every span (heap lock) */
    gspan *finq_next;            /* spans with finalizers due (fin lock) */
    gspan *card_next;            /* spans with a marked card (scan_cards, collector only) */
    _Atomic uint64_t *alloc, *fin, *finq;
    /* mark state, a byte per block (nwords * 64, its own meta block):
     * shade sets one with a plain store, where a bit needs a locked
     * read-modify-write (mark_word gathers 64 of them into a word) */
    _Atomic uint8_t *mark;
};

/* Central lists for one (type, size class). */
struct tclass {
    const rg_type *type;
    unsigned sclass;
    gspan *partial, *full, *unswept;
    tclass *next_all;
};

typedef struct gwork {
    void *buf[GRAY_CAP];
    unsigned n;
    /* inside drain_for only (off elsewhere): the spans of the last pages
     * looked up, direct-mapped by page number (see span_hint) */
    bool pc_on;
    uintptr_t pc_page[SPAN_CACHE];
    gspan *pc_span[SPAN_CACHE];
} gwork;

struct rg_root {
    void **slot;
    gthread *owner; /* NULL: global (owner detached) */
    rg_root *next, *prev;
};

/* A thread's cached span for one (type, size class), with a run of free
 * blocks taken from it: [bump, bump_end), the block at bump at the span's
 * freeindex.  The allocation fast path hands out from the run (a bump and
 * freeindex advanced; the run was counted as allocated when taken); runs
 * end at a word of alloc bits (64 blocks), and bump == bump_end when there
 * is none (run_drop). */
typedef struct cache_ent {
    const rg_type *type;
    gspan *s;
    char *bump, *bump_end;
    uint16_t sclass;
    uint16_t elem;
} cache_ent;

/* Per-thread collector state.  `state` and `ack_seq` are read by the
 * collector; everything else is the thread's, or the collector's while it
 * holds the thread parked (state T_BUSY, taken by CAS: acquire/release
 * pairs with the thread's own CAS in unpark). */
struct gthread {
    _Atomic int state;
    _Atomic uint64_t ack_seq;   /* last handshake acknowledged */
    int attached;               /* attach count (explicit attaches) */
    bool black;                 /* allocate black: marking open this cycle (alloc_black_now) */
    bool in_finalizer;
    uint64_t roots_cycle;       /* cycle_seq of the cycle it handed its roots over in, at a safepoint */
    pid_t tid;
    uint64_t local_bytes;       /* allocated since the last accounting */
    uint64_t local_objs;
    uint64_t unpaced;           /* bytes flushed since the pacer last looked (see pace_check) */
    uint64_t waited;            /* times the collector waited on this thread */
    uint64_t assist_debt;       /* paced assists: scan bytes owed (assist_paced) */
    uint64_t debt_cycle;        /* the cycle_seq the debt is of */
    cache_ent cache[CACHE_SLOTS];
    gspan *last_black;          /* the span it cached black last (the barrier's fresh_black) */
    rg_gc_fresh *fw;            /* the thread's rg_gc_tls_fresh (set_last_black) */
    gwork gw;
    rg_root *roots;             /* roots lock */
    gthread *next, *prev;       /* threads list (gc lock) */
};

/* ---------------------------------------------------------------------------
 * Globals
 * ------------------------------------------------------------------------- */
int rg_gc_barrier_on; /* atomic via builtins: the header is C and C++ */
rg_gc_cards rg_gc_card_table; /* gc.h rule 9: set once at init (n 0: the mode is off) */
RG_EXPORT __thread rg_gc_fresh rg_gc_tls_fresh __attribute__((tls_model("initial-exec")));

static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;   /* central lists, allspans, tclasses */
static pthread_mutex_t gc_lock = PTHREAD_MUTEX_INITIALIZER;     /* threads list, handshakes */
static pthread_cond_t gc_cond = PTHREAD_COND_INITIALIZER;       /* acks, kicks, cycle ends */
static pthread_mutex_t cycle_lock = PTHREAD_MUTEX_INITIALIZER;  /* one cycle at a time */
static pthread_mutex_t roots_lock = PTHREAD_MUTEX_INITIALIZER;  /* root lists */
static pthread_mutex_t gray_lock = PTHREAD_MUTEX_INITIALIZER;   /* global gray chunks */
static pthread_mutex_t fin_lock = PTHREAD_MUTEX_INITIALIZER;    /* finalizer queue */

static _Atomic int phase;           /* PH_*; written under heap lock */
static _Atomic uint64_t hs_word;    /* (seq << 8) | kind of the current handshake */
static _Atomic uint32_t sweepgen_g = 2; /* G; written under heap lock */
static _Atomic int dirty;           /* something was shaded this round */
static _Atomic int gray_overflow;   /* a gray push was dropped: rescan the heap */
static _Atomic int fin_pending;     /* finalizers are due */
static bool roots_started;          /* gc lock: ROOTS handshake published this cycle */
static _Atomic uint64_t cycle_seq;  /* cycles begun; written under the cycle lock before START */
/* Generations (gc.h rule 9): marks are sticky between full cycles. */
static bool gen_mode;               /* RG_GC_GEN (default on); read once at init */
static _Atomic int want_full;       /* the next cycle traces the whole heap */
static _Atomic uint64_t full_done;  /* full cycles completed (the limit rung waits for one) */
static _Atomic uint64_t full_base;  /* traced by the last full cycle: the goal's base until the next */
static _Atomic uint64_t minor_done; /* minor cycles completed (statistics) */
static _Atomic uintptr_t heap_hwm;  /* end of the highest span made: the cards worth reading */

static gthread *threads;            /* gc lock */
static size_t nthreads;
static rg_root *global_roots;       /* roots lock */
static gspan *allspans;             /* heap lock */
static tclass *tclasses;            /* heap lock */
#define TC_HASH 4096
static tclass *tc_table[TC_HASH];   /* heap lock */
static gspan *finq_spans;           /* fin lock */

/* Global gray set: chunks of pointers. */
typedef struct gchunk {
    struct gchunk *next;
    unsigned n;
    void *p[510];
} gchunk;
static gchunk *gray_full, *gray_free; /* gray lock */
static _Atomic size_t gray_nchunks;
/* Chunks kept for acknowledgements and root scans (gray lock), so that no
 * ack and nobody holding the roots lock allocates one: a new chunk may mean
 * a new span, a new segment and a first touch of a 2 MiB page, which
 * gctrace showed as 0.2-6 ms termination acks (in the flush, and in the
 * root scan behind a collector that allocated under the roots lock).  The
 * collector refills it before every handshake, outside any lock. */
static gchunk *gray_reserve;
static size_t gray_reserve_n;
static __thread unsigned tls_gray_reserved; /* > 0: pushes take from the reserve first */

/* Accounting (bytes of live-looking objects). */
static _Atomic uint64_t heap_live;    /* allocated since the last sweep + kept by it */
static _Atomic uint64_t heap_marked;  /* live after the last full sweep */
static _Atomic uint64_t heap_traced;  /* of that, what marking reached (not allocated black): the goal's base */
static _Atomic uint64_t black_bytes;  /* allocated black this cycle (span_uncache, alloc_large) */
static _Atomic uint64_t span_bytes;   /* bytes in gspans */
static _Atomic uint64_t fin_spans;    /* gspans of types with finalizers */
/* Bytes allocated during the last cycle (the pacer), per kind: [1] full,
 * [0] minor (gc.h rule 9: a minor cycle is short, and a full cycle
 * started as early as the last minor one ran would end far past its goal). */
static _Atomic uint64_t cycle_alloc[2];
static _Atomic uint64_t st_mallocs, st_frees, st_total_alloc, st_freed_bytes, st_fin_run;
static _Atomic uint64_t cycles_done, forced_by_limit, term_rounds, assist_scanned, gray_shares;
static _Atomic uint64_t pause_total, last_gc_ns, next_gc_goal, pause_max_cycle;
static _Atomic uint64_t gc_cpu_ns, pause_ring[256];
/* Acknowledgements observed (issue 5: what a thread does during a long
 * one).  Each ack by a running thread is timed in parts and bracketed by
 * getrusage(RUSAGE_THREAD): an involuntary context switch inside it means
 * the OS preempted the thread (the pause is the machine's), a voluntary one
 * that it blocked (on a lock); an ack with neither is "clean", its time the
 * collector's own work.  Totals since start, plus per-cycle figures for
 * gctrace (relaxed: statistics only). */
enum { ACK_CACHE = 0, ACK_ROOTS, ACK_FLUSH, ACK_NPARTS };
typedef struct ack_cycle {
    _Atomic uint64_t n[HS_SWEEP + 1], max[HS_SWEEP + 1], part_max[HS_SWEEP + 1][ACK_NPARTS];
    _Atomic uint64_t preempted, blocked, clean_max, preempted_max;
} ack_cycle;
static ack_cycle acyc;                 /* this cycle's (reset at its start) */
static _Atomic uint64_t pause_clean_max_cycle, pause_clean_ring[256];
static _Atomic uint64_t acks_total, acks_preempted, acks_blocked, ack_max_ns, ack_max_clean_ns;
static _Atomic uint64_t gc_assist_ns;  /* mutators' mark work (assists, safepoint steps) */
static uint64_t start_ns;
static _Atomic uint64_t limit_cycle_gate_ns; /* limit-forced cycles wait until then */
static atomic_bool worker_started;
static _Atomic int worker_kick, worker_force;
/* Background marking (RG_GC_THREADS): the collector thread marks when
 * mark_threads >= 1, and mark_threads - 1 helpers mark beside it. */
static _Atomic int mark_threads = -1;  /* -1: not read from the environment yet */
static _Atomic int helpers_started;    /* helper threads running */
static _Atomic int mark_open;          /* START acknowledged by all: gray may turn black */
static _Atomic int draining;           /* drains in flight that took gray work (termination waits for 0) */
static _Atomic int quiet_waiter;       /* the driver waits for draining == 0 (see shared_drain) */
/* RG_GC_ASSIST: how allocation assists are sized (assists_paced). */
enum { ASSIST_LIGHT = 0, ASSIST_PACED, ASSIST_AUTO };
static int assist_mode = ASSIST_AUTO;
static _Atomic int paced_now; /* this cycle's assists are paced (assists_paced) */

/* Are this cycle's assists paced (assist_paced) rather than light?
 * RG_GC_ASSIST=paced or light says; the default (auto) paces them when no
 * memory limit is set, decided at each cycle's start (refinement: with the
 * generational mode, paced assists cost binary-trees 3-7% of its time
 * over light ones for a quarter less memory, 2.9-3.1 s at 121 MiB against
 * 2.8 s at 151-181 MiB; on the churn under its limit light ones keep the
 * op p99.9 at 98 us against 147 us).  Light assists scan twice the bytes
 * allocated, bounded per call, and a thread that finds no gray work goes
 * on: the
 * collector thread marks beside the mutators, the fastest way through a
 * cycle with a spare core, but a mutator that allocates faster than the
 * collector marks then allocates (black) about as much as the cycle marks,
 * and the next goal doubles that too.  Measured on binary-trees depth 20
 * before the generational mode (perf/RESULTS.md): paced ran in 115-151 MiB
 * against light's 187-231 MiB, and took 5-20% more time; under a memory
 * limit, which caps the heap anyway, paced only costs time, so auto stays
 * light there. */
static inline bool assists_paced(void)
{
    return atomic_load_explicit(&paced_now, memory_order_relaxed);
}
static _Atomic uint64_t scan_done;   /* bytes scanned this cycle, by every drain */
static _Atomic uint64_t scan_expect; /* the scan work expected of this cycle: the last one's of its kind */
static _Atomic uint64_t scan_last[2]; /* the scan work of the last cycle of each kind ([1] full) */
/* A paced assist found no gray work: the next drain holding some gives
 * half of it to the global set (gray_share).  On its own cache line: every
 * drain reads it once per object scanned. */
static struct {
    _Alignas(64) _Atomic int v;
    char pad[64 - sizeof(int)];
} gray_wanted_line;
#define gray_wanted (gray_wanted_line.v)
static pthread_cond_t mark_cond = PTHREAD_COND_INITIALIZER; /* gc lock: marking opened */
static int ncpu = 1;

atomic_int rgi_gc_verify_next, rgi_gc_fail_gray;
atomic_uint_fast64_t rgi_gc_verify_failures, rgi_gc_verify_runs;

static __thread gthread *tls_me;
static __thread bool tls_in_gc;    /* inside collector work: the limit rung must not re-enter */
static __thread bool tls_in_safepoint;
static pthread_key_t thread_key;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static bool poisoning;

static void gc_init_once(void);
static gthread *self_slow(void);
static void drain(gwork *w, size_t budget);
static void flush_gray(gwork *w);
static size_t drain_for(gwork *w, size_t budget, uint64_t max_ns);
static size_t shared_drain(gwork *w, size_t budget, uint64_t max_ns);
static size_t assist(gthread *me, size_t budget);
static size_t pressure(size_t need, void *arg);
static void *meta_alloc(size_t n);
static void meta_free(void *p, size_t n);

static inline gthread *self(void)
{
    gthread *me = tls_me;
    return RG_LIKELY(me != NULL) ? me : self_slow();
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------------------
 * Spans: lookup, bits
 * ------------------------------------------------------------------------- */
static inline bool gspan_ok(const gspan *s)
{
    return s != NULL && s->magic == (GSPAN_MAGIC ^ (uintptr_t)s);
}

/* The gspan holding p, or NULL when p is not in the collected heap. */
static gspan *span_of(const void *p)
{
    if (p == NULL)
        return NULL;
    int k = rgi_page_kind(p);
    gspan *s;
    if (k == RGI_SEG_ARENA) {
        rgi_segment *seg = rgi_segment_of(p);
        rgi_span *sp = rgi_span_of(seg, p);
        if (sp->kind != RGI_SPAN_USER)
            return NULL;
        s = sp->user;
    } else if (k == RGI_SEG_LARGE) {
        char *run = rgi_page_run_head(p);
        if (run == NULL)
            return NULL;
        s = *(gspan **)(run + RGI_SEG_HDR);
    } else {
        return NULL;
    }
    if (!gspan_ok(s) || (const char *)p < s->start)
        return NULL;
    return s;
}

/* Block index of p in s, or -1. */
static inline long block_index(const gspan *s, const void *p)
{
    size_t off = (size_t)((const char *)p - s->start);
    size_t i;
    if (s->large) {
        i = off < s->elem ? 0 : s->nelems;
    } else {
        /* off * ceil(2^32/elem) / 2^32 is off/elem or one more (small
         * spans are under 2^20 bytes): one multiply and a correction
         * instead of a division on every shade */
        i = (size_t)(((uint64_t)off * s->div_mul) >> 32);
        if (i * s->elem > off)
            i--;
    }
    return i < s->nelems ? (long)i : -1;
}

static inline bool bit_get(_Atomic uint64_t *bits, uint32_t i)
{
    return (atomic_load_explicit(&bits[i >> 6], memory_order_acquire) >> (i & 63)) & 1;
}

/* Blocks below freeindex in word w (handed out since the sweep). */
static inline uint64_t below_mask(uint32_t freeindex, uint32_t w)
{
    uint32_t lo = w * 64;
    if (freeindex >= lo + 64)
        return ~(uint64_t)0;
    if (freeindex <= lo)
        return 0;
    return ((uint64_t)1 << (freeindex - lo)) - 1;
}

static inline uint64_t allocated_word(gspan *s, uint32_t w, uint32_t fi)
{
    return atomic_load_explicit(&s->alloc[w], memory_order_relaxed) | below_mask(fi, w);
}

/* Allocation black in bulk.  A holder allocating black does not set a
 * mark bit per object (an atomic RMW on every allocation while marking,
 * ~8% of binary-trees' mutator time): the blocks it hands out from a span
 * cached with alloc_black are black by position — free in the alloc bits
 * (not a survivor of the last sweep) and in [black_from, freeindex).
 * span_uncache turns them into mark bits before the span leaves the cache,
 * which every handshake that needs real mark bits (SWEEP) does first.
 * Readers of mark bits while marking (shade, the finalizer pass, the
 * verifier, the overflow rescan) add these.  Order: the holder stores
 * black_from, then alloc_black (release); it clears alloc_black (release)
 * only after the mark bits are set.  A reader reached the object through a
 * pointer published after its hand_out (release store of freeindex), so
 * reading alloc_black with acquire it sees the holder's caching or later. */
static inline uint64_t implicit_black_word(gspan *s, uint32_t w)
{
    if (!__atomic_load_n(&s->alloc_black, __ATOMIC_ACQUIRE))
        return 0;
    uint32_t from = atomic_load_explicit(&s->black_from, memory_order_relaxed);
    uint32_t fi = atomic_load_explicit(&s->freeindex, memory_order_acquire);
    return below_mask(fi, w) & ~below_mask(from, w) & ~atomic_load_explicit(&s->alloc[w], memory_order_relaxed);
}

/* The mark bytes of blocks [64w, 64w+64) as a word of bits.  Mark bytes
 * are 0 or 1 and past nelems stay 0.  A vector load where there is one;
 * byte by byte under TSan, which would take the vector load of bytes other
 * threads store for a race (on x86 it reads each byte whole, and a load is
 * an acquire). */
static inline uint64_t mark_word(const gspan *s, uint32_t w)
{
    const _Atomic uint8_t *b = s->mark + (size_t)w * 64;
#if defined(__SSE2__) && !RGI_TSAN
    const __m128i z = _mm_setzero_si128();
    uint64_t m = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + 16 * k));
        m |= (uint64_t)(uint16_t)~_mm_movemask_epi8(_mm_cmpeq_epi8(v, z)) << (16 * k);
    }
    return m;
#else
    uint64_t m = 0;
    for (int k = 0; k < 64; k++)
        m |= (uint64_t)(atomic_load_explicit(&b[k], memory_order_acquire) != 0) << k;
    return m;
#endif
}

/* Mark byte values: a block a full cycle's shade reached (MARK_TRACED),
 * one a thread allocated black (MARK_BLACK), one a minor cycle's shade
 * reached (MARK_YOUNG).  All are marked for this cycle; in the
 * generational mode only MARK_TRACED blocks stay marked (old) after its
 * sweep (gc.h rule 9): minor cycles promote nothing. */
#define MARK_TRACED 1
#define MARK_BLACK 2
#define MARK_YOUNG 3
static _Atomic uint8_t shade_value = MARK_TRACED; /* this cycle's shade: TRACED, or YOUNG in a minor one */

/* The blocks of word w whose mark byte is v, as a word of bits. */
static inline uint64_t mark_word_eq(const gspan *s, uint32_t w, uint8_t v)
{
    const _Atomic uint8_t *b = s->mark + (size_t)w * 64;
#if defined(__SSE2__) && !RGI_TSAN
    const __m128i x = _mm_set1_epi8((char)v);
    uint64_t m = 0;
    for (int k = 0; k < 4; k++) {
        __m128i q = _mm_loadu_si128((const __m128i *)(const void *)(b + 16 * k));
        m |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(q, x)) << (16 * k);
    }
    return m;
#else
    uint64_t m = 0;
    for (int k = 0; k < 64; k++)
        m |= (uint64_t)(atomic_load_explicit(&b[k], memory_order_acquire) == v) << k;
    return m;
#endif
}

/* Sets the mark bytes of word w's blocks whose bits m has to v (release:
 * after what the caller stored before, as shade's dirty flag). */
static inline void mark_word_set(gspan *s, uint32_t w, uint64_t m, uint8_t v)
{
    for (; m; m &= m - 1)
        atomic_store_explicit(&s->mark[(size_t)w * 64 + (size_t)__builtin_ctzll(m)], v, memory_order_release);
}

/* Unmarks word w's blocks: no thread marks (sweep, a dropped cycle). */
static inline void mark_word_clear(gspan *s, uint32_t w)
{
#if RGI_TSAN
    for (int k = 0; k < 64; k++)
        atomic_store_explicit(&s->mark[(size_t)w * 64 + (size_t)k], 0, memory_order_relaxed);
#else
    memset((void *)(s->mark + (size_t)w * 64), 0, 64);
#endif
}

/* Mark bits of word w, with the blocks allocated black in bulk. */
static inline uint64_t effective_mark_word(gspan *s, uint32_t w)
{
    return mark_word(s, w) | implicit_black_word(s, w);
}

/* The holder caches s (heap lock held): from now on it allocates black or
 * white in it. */
static void span_cache(gspan *s, bool black)
{
    s->cached = 1;
    atomic_store_explicit(&s->black_from, atomic_load_explicit(&s->freeindex, memory_order_relaxed),
                          memory_order_relaxed);
    /* release: pairs with the acquire in implicit_black_word */
    __atomic_store_n(&s->alloc_black, (uint8_t)black, __ATOMIC_RELEASE);
}

/* s leaves its holder's cache: what it handed out black gets its mark bits
 * (bounded: at most one word per 64 blocks of one span). */
static void span_uncache(gspan *s)
{
    if (__atomic_load_n(&s->alloc_black, __ATOMIC_RELAXED)) {
        uint32_t from = atomic_load_explicit(&s->black_from, memory_order_relaxed);
        uint32_t fi = atomic_load_explicit(&s->freeindex, memory_order_relaxed);
        uint64_t nblack = 0;
        for (uint32_t w = from >> 6; w < s->nwords && w * 64 < fi; w++) {
            uint64_t m = below_mask(fi, w) & ~below_mask(from, w) &
                         ~atomic_load_explicit(&s->alloc[w], memory_order_relaxed);
            /* the marks are set before the release clear below */
            if (m) {
                mark_word_set(s, (uint32_t)w, m, MARK_BLACK);
                nblack += (uint64_t)__builtin_popcountll(m);
            }
        }
        atomic_fetch_add_explicit(&black_bytes, nblack * s->elem, memory_order_relaxed);
        /* release: pairs with the acquire in implicit_black_word */
        __atomic_store_n(&s->alloc_black, 0, __ATOMIC_RELEASE);
    }
    s->cached = 0;
}

/* ---------------------------------------------------------------------------
 * Shading and the gray set
 * ------------------------------------------------------------------------- */
/* Moves w's k oldest gray items (all, if k >= w->n) to a chunk of the
 * global set; the newer ones stay in w. */
static void gray_push_global_n(gwork *w, unsigned k)
{
    if (k > w->n)
        k = w->n;
    if (k == 0)
        return;
    gchunk *c = NULL;
    if (!atomic_load_explicit(&rgi_gc_fail_gray, memory_order_relaxed)) {
        pthread_mutex_lock(&gray_lock);
        if ((c = gray_free) != NULL) {
            gray_free = c->next;
        } else if (tls_gray_reserved && (c = gray_reserve) != NULL) {
            gray_reserve = c->next;
            gray_reserve_n--;
        }
        pthread_mutex_unlock(&gray_lock);
    }
    if (c == NULL && !atomic_load_explicit(&rgi_gc_fail_gray, memory_order_relaxed)) {
        bool was = tls_in_gc;
        tls_in_gc = true; /* the limit rung must not run a cycle from here */
        c = meta_alloc(sizeof *c);
        tls_in_gc = was;
    }
    if (c == NULL) {
        /* No memory for the gray set: the objects stay marked but unscanned;
         * termination rescans every marked object (see rescan_heap). */
        atomic_store_explicit(&gray_overflow, 1, memory_order_seq_cst);
        memmove(w->buf, w->buf + k, (w->n - k) * sizeof(void *));
        w->n -= k;
        return;
    }
    c->n = k;
    memcpy(c->p, w->buf, k * sizeof(void *));
    memmove(w->buf, w->buf + k, (w->n - k) * sizeof(void *));
    w->n -= k;
    pthread_mutex_lock(&gray_lock);
    c->next = gray_full;
    gray_full = c;
    atomic_fetch_add_explicit(&gray_nchunks, 1, memory_order_relaxed);
    pthread_mutex_unlock(&gray_lock);
}

static void gray_push_global(gwork *w)
{
    gray_push_global_n(w, w->n);
}

/* Fills the reserve to `want` chunks (the collector, before a handshake,
 * no lock held; best effort: a failed allocation leaves it short). */
static void gray_reserve_fill(size_t want)
{
    for (;;) {
        pthread_mutex_lock(&gray_lock);
        bool enough = gray_reserve_n >= want;
        gchunk *c = NULL;
        if (!enough && (c = gray_free) != NULL) /* a free chunk serves as well */
            gray_free = c->next;
        if (c) {
            c->next = gray_reserve;
            gray_reserve = c;
            gray_reserve_n++;
        }
        pthread_mutex_unlock(&gray_lock);
        if (enough)
            return;
        if (c)
            continue;
        bool was = tls_in_gc;
        tls_in_gc = true;
        c = meta_alloc(sizeof *c); /* the shared page heap, as every gray chunk */
        tls_in_gc = was;
        if (c == NULL)
            return;
        pthread_mutex_lock(&gray_lock);
        c->next = gray_reserve;
        gray_reserve = c;
        gray_reserve_n++;
        pthread_mutex_unlock(&gray_lock);
    }
}

static bool gray_pop_global(gwork *w)
{
    if (atomic_load_explicit(&gray_nchunks, memory_order_relaxed) == 0)
        return false;
    pthread_mutex_lock(&gray_lock);
    gchunk *c = gray_full;
    if (c) {
        gray_full = c->next;
        atomic_fetch_sub_explicit(&gray_nchunks, 1, memory_order_relaxed);
        /* a chunk holds more than a buffer: take what fits, put back the rest */
        unsigned take = c->n < GRAY_CAP - w->n ? c->n : GRAY_CAP - w->n;
        /* Half of it when another marker may want some.  A tree's gray set
         * is a few dozen subtrees, one chunk: the first to take it all
         * marked alone while the others found nothing, so the collector
         * thread and the paced assists took turns instead of marking side
         * by side (binary-trees, paced: the collector thread was busy for
         * half of each mark phase).  Not with light assists and one mark
         * thread: there the collector thread should mark alone, and what
         * it left in the global set the mutators' assists would take
         * (binary-trees, light: 3.1-3.3 s / 241-301 MiB taking all,
         * 3.5-3.7 s / 191-247 MiB taking half). */
        if (take >= 2 * GRAY_SHARE_MIN &&
            (assists_paced() || atomic_load_explicit(&mark_threads, memory_order_relaxed) > 1))
            take = (take + 1) / 2;
        memcpy(w->buf + w->n, c->p + (c->n - take), take * sizeof(void *));
        w->n += take;
        c->n -= take;
        if (c->n) {
            c->next = gray_full;
            gray_full = c;
            atomic_fetch_add_explicit(&gray_nchunks, 1, memory_order_relaxed);
        } else {
            c->next = gray_free;
            gray_free = c;
        }
    }
    pthread_mutex_unlock(&gray_lock);
    return c != NULL;
}

static void flush_gray(gwork *w)
{
    gray_push_global(w);
}

/* A drain by anyone but the cycle's driver (assists, safepoint steps,
 * helper mark threads): announced in `draining` before it takes gray work
 * and retracted after what is left is flushed.  Termination needs it: the
 * driver reads "gray set empty" and then "draining == 0", both seq_cst, so
 * a gray object another thread took before the driver looked is either
 * still being scanned (draining > 0: the round is not clean) or scanned,
 * with every white child it found shaded (dirty set) before the count
 * dropped.  The last drain to end with the gray set empty wakes the driver
 * if it waits for that and does not mark (mark_until_empty: it then backs
 * off to 1 ms between looks, and marking may be over).  At most one wake
 * per wait. */
static size_t shared_drain(gwork *w, size_t budget, uint64_t max_ns)
{
    atomic_fetch_add_explicit(&draining, 1, memory_order_seq_cst);
    size_t done = drain_for(w, budget, max_ns);
    flush_gray(w);
    /* seq_cst: a Dekker pair with mark_until_empty, which stores
     * quiet_waiter and then loads draining: either it sees this decrement
     * or this load sees its flag */
    if (atomic_fetch_sub_explicit(&draining, 1, memory_order_seq_cst) == 1 &&
        atomic_load_explicit(&quiet_waiter, memory_order_seq_cst) &&
        atomic_load_explicit(&gray_nchunks, memory_order_relaxed) == 0 &&
        atomic_exchange_explicit(&quiet_waiter, 0, memory_order_relaxed)) {
        /* the driver holds gc_lock from its flag to its wait: no lost wake */
        pthread_mutex_lock(&gc_lock);
        pthread_cond_broadcast(&gc_cond);
        pthread_mutex_unlock(&gc_lock);
    }
    return done;
}

/* Gives the older half of w's gray items to the global set when a paced
 * assist asked for work and found none (Go's gcWork.balance).  A
 * depth-first scan of a tree or a list keeps all of its gray work in its
 * own buffer — a few dozen items with the whole heap below them — so an
 * assist finds nothing to scan while the collector thread marks alone.
 * The older items are the larger subtrees; the newer ones, near the scan,
 * stay for their cache locality. */
static inline void gray_share(gwork *w)
{
    if (w->n >= GRAY_SHARE_MIN && atomic_load_explicit(&gray_wanted, memory_order_relaxed) &&
        atomic_load_explicit(&gray_nchunks, memory_order_relaxed) == 0) {
        atomic_store_explicit(&gray_wanted, 0, memory_order_relaxed);
        gray_push_global_n(w, w->n / 2);
        atomic_fetch_add_explicit(&gray_shares, 1, memory_order_relaxed);
    }
}

/* Pushes a gray work item on w (spilling a full buffer to the global set). */
static inline void gray_push(gwork *w, void *p)
{
    if (w->n == GRAY_CAP)
        gray_push_global(w);
    w->buf[w->n++] = p;
}

/* span_of(p) through w's page cache.  A scan touches few pages at a time
 * (a tree's nodes near its leaves, a list allocated in order), but a drain
 * interleaves several: the gray object's page and its children's, and the
 * prefetch FIFO's items from other subtrees, so the one-span hint this
 * replaces missed about once per object (span_of and the page layer's
 * lookup, a call and five dependent loads, were a tenth of bench_gcmark).
 * Valid only while w drains: no span is destroyed while marking (sweeps
 * finish before START), and drain_for turns the cache off before it
 * returns and empties it when it starts, so a barrier's shade never sees
 * an entry from an earlier cycle. */
static inline gspan *span_hint(gwork *w, const void *p)
{
    if (!w->pc_on)
        return span_of(p);
    uintptr_t pg = (uintptr_t)p >> RGI_PAGE_SHIFT;
    /* hashed: a tree's subtrees sit a power of two of pages apart */
    unsigned k = (unsigned)((pg * 0x9e3779b97f4a7c15ull) >> 60) & (SPAN_CACHE - 1);
    if (w->pc_page[k] == pg) /* below start: a span's own header page, as span_of says */
        return (const char *)p >= w->pc_span[k]->start ? w->pc_span[k] : NULL;
    gspan *s = span_of(p);
    if (s != NULL) {
        w->pc_page[k] = pg;
        w->pc_span[k] = s;
    }
    return s;
}

/* Shades p: white -> gray (pushed on w if its type has pointers).  Inline
 * in the scan loop (a call per pointer, with its saved registers, was a
 * sixth of shade's instructions); shade() is the out-of-line copy. */
static inline __attribute__((always_inline)) void shade_inl(gwork *w, const void *p)
{
    gspan *s = span_hint(w, p);
    if (s == NULL)
        return;
    long i = block_index(s, p);
    if (i < 0)
        return;
    _Atomic uint8_t *mark = &s->mark[i];
    if (atomic_load_explicit(mark, memory_order_relaxed))
        return;
    if ((implicit_black_word(s, (uint32_t)i >> 6) >> (i & 63)) & 1)
        return; /* allocated black, its mark not written yet */
    /* seq_cst: the collector reads `dirty` after a round's acks; setting it
     * before the mark (release, below) means no shade can hide from a round
     * (file header) */
    if (!atomic_load_explicit(&dirty, memory_order_relaxed))
        atomic_store_explicit(&dirty, 1, memory_order_seq_cst);
    /* A plain store: two threads shading p at once may both find it white
     * and both push it, and it is scanned twice, which is harmless (a
     * scan only shades); the locked bit set this replaces cost 12-20% of
     * the marker's time (bench_gcmark, depth 20 and in-cache). */
    atomic_store_explicit(mark, atomic_load_explicit(&shade_value, memory_order_relaxed), memory_order_release);

    if (s->type->nptrs == 0)
        return; /* no pointers: black at once */
    gray_push(w, s->start + (size_t)i * s->elem);
}

static void shade(gwork *w, const void *p)
{
    shade_inl(w, p);
}

/* Scans one gray work item; returns the bytes scanned.  An item is a small
 * object's start, or a large object's start plus an offset (an oblet, as in
 * Go's scanobject): a large object is scanned OBLET_BYTES at a time, the
 * rest pushed back as one gray item, so no step of any drain — a safepoint
 * step, an assist — scans more than one oblet of it.  The object is marked
 * already, so rg_write during its scan shades both values as for any gray
 * object.  `whole` scans to the end without pushing (rescan_heap must make
 * progress while gray pushes fail). */
static size_t scan_object_slow(gwork *w, gspan *s, void *item, bool whole);

static inline __attribute__((always_inline)) size_t scan_object(gwork *w, void *item, bool whole)
{
    gspan *s = span_hint(w, item);
    if (RG_LIKELY(s != NULL && s->nper == 1)) {
        /* a small block holding one object (nper is 0 for a large one):
         * the common case, inline in the drain loop and without the loop
         * over elements */
        const rg_type *t = s->type;
        const size_t *off = t->ptr_offsets;
        for (size_t k = 0, np = t->nptrs; k < np; k++) {
            /* acquire: pairs with rg_write's release store, so the target's
             * span metadata (read by shade) is visible */
            void *v = __atomic_load_n((void **)((char *)item + off[k]), __ATOMIC_ACQUIRE);
            if (v)
                shade_inl(w, v);
        }
        return s->elem;
    }
    return scan_object_slow(w, s, item, whole);
}

static size_t scan_object_slow(gwork *w, gspan *s, void *item, bool whole)
{
    if (s == NULL)
        rgi_corrupt("gc: gray object %p is not in the heap", item);
    const rg_type *t = s->type;
    char *base = item;
    size_t esz = t->size ? t->size : 1;
    size_t n = s->nper;
    if (s->large) {
        size_t off = (size_t)(base - s->start);
        size_t total = s->obj_bytes / esz, e0 = off / esz;
        if (off % esz != 0 || e0 > total)
            rgi_corrupt("gc: gray oblet %p is not an element boundary", item);
        size_t per = OBLET_BYTES / esz ? OBLET_BYTES / esz : 1;
        n = total - e0;
        if (!whole && n > per) {
            n = per;
            /* the rest first: the children this oblet shades go on top */
            gray_push(w, base + n * esz);
        }
    }
    for (size_t e = 0; e < n; e++, base += esz)
        for (size_t k = 0; k < t->nptrs; k++) {
            /* acquire: pairs with rg_write's release store, so the target's
             * span metadata (read by shade) is visible */
            void *v = __atomic_load_n((void **)(base + t->ptr_offsets[k]), __ATOMIC_ACQUIRE);
            if (v)
                shade(w, v);
        }
    return s->large ? n * esz : s->elem;
}

/* Drains gray items until about `budget` bytes were scanned (0 = all) or,
 * when max_ns is not 0, about max_ns passed: every pointer of a cold heap
 * is a cache miss, so bytes alone do not bound a mutator's step in time.
 * The clock is read every DRAIN_CLOCK_BYTES scanned (an item — a small
 * object or one oblet — is the unit, so at most one oblet past the bound). */
static size_t drain_for(gwork *w, size_t budget, uint64_t max_ns)
{
    size_t done = 0, next_clock = DRAIN_CLOCK_BYTES;
    uint64_t deadline = max_ns ? rgi_now_ns() + max_ns : 0;
    bool was = tls_in_gc;
    tls_in_gc = true;
    /* A FIFO of PREFETCH_N items between the gray stack and the scan, each
     * prefetched when it enters (the prefetch-on-grey of Cher, Hosking and
     * Vijaykumar, ASPLOS 2004): loading a gray object's pointers was two
     * thirds of scan_object's time on a tree larger than the cache, and a
     * LIFO stack hands out next the object it pushed last, too soon for a
     * prefetch to land. */
    void *ring[PREFETCH_N];
    unsigned head = 0, cnt = 0;
    memset(w->pc_page, 0, sizeof w->pc_page);
    w->pc_on = true;
    for (;;) {
        while (cnt < PREFETCH_N && (w->n > 0 || gray_pop_global(w))) {
            void *o = w->buf[--w->n];
            __builtin_prefetch(o);
            ring[(head + cnt++) % PREFETCH_N] = o;
        }
        if (cnt == 0)
            break;
        void *obj = ring[head];
        head = (head + 1) % PREFETCH_N;
        cnt--;
        done += scan_object(w, obj, false);
        gray_share(w);
        if (budget && done >= budget)
            break;
        if (deadline && done >= next_clock) {
            if (rgi_now_ns() >= deadline)
                break;
            next_clock = done + DRAIN_CLOCK_BYTES;
        }
    }
    /* what was taken and not scanned stays this drain's gray work */
    for (; cnt; cnt--, head = (head + 1) % PREFETCH_N)
        gray_push(w, ring[head]);
    w->pc_on = false;
    tls_in_gc = was;
    if (done && assists_paced()) /* only paced assists read it */
        atomic_fetch_add_explicit(&scan_done, done, memory_order_relaxed);
    return done;
}

static void drain(gwork *w, size_t budget)
{
    drain_for(w, budget, 0);
}

/* ---------------------------------------------------------------------------
 * Types and central lists
 * ------------------------------------------------------------------------- */
static bool type_ok(const rg_type *t)
{
    if (t == NULL)
        return false;
    for (size_t k = 0; k < t->nptrs; k++) {
        size_t off = t->ptr_offsets[k];
        if ((off & 7) || off + sizeof(void *) > t->size || off + sizeof(void *) < off)
            return false;
    }
    return t->nptrs == 0 || t->ptr_offsets != NULL;
}

static inline size_t tc_hash(const rg_type *t, unsigned c)
{
    uintptr_t h = ((uintptr_t)t >> 4) * 0x9e3779b97f4a7c15ull + c;
    return (size_t)(h ^ (h >> 29)) & (TC_HASH - 1);
}

static tclass *tclass_find_locked(const rg_type *t, unsigned c)
{
    for (size_t h = tc_hash(t, c), k = 0; k < TC_HASH; k++, h = (h + 1) & (TC_HASH - 1)) {
        tclass *tc = tc_table[h];
        if (tc == NULL)
            return NULL;
        if (tc->type == t && tc->sclass == c)
            return tc;
    }
    return NULL;
}

/* The tclass for (t, c), made on first use.  NULL + errno. */
static tclass *tclass_get(const rg_type *t, unsigned c)
{
    pthread_mutex_lock(&heap_lock);
    tclass *tc = tclass_find_locked(t, c);
    pthread_mutex_unlock(&heap_lock);
    if (tc)
        return tc;
    if (!type_ok(t)) {
        if (RG_DEBUG_CHECKS)
            rgi_diag("rg_new", "type %s has a pointer offset outside the object or misaligned",
                     t && t->name ? t->name : "?");
        errno = EINVAL;
        return NULL;
    }
    tclass *n = meta_alloc(sizeof *n);
    if (n == NULL)
        return NULL;
    memset(n, 0, sizeof *n);
    n->type = t;
    n->sclass = c;
    pthread_mutex_lock(&heap_lock);
    tc = tclass_find_locked(t, c);
    if (tc == NULL) {
        size_t h = tc_hash(t, c), k = 0;
        for (; k < TC_HASH && tc_table[h]; k++)
            h = (h + 1) & (TC_HASH - 1);
        if (k < TC_HASH) {
            tc_table[h] = n;
            n->next_all = tclasses;
            tclasses = n;
            tc = n;
            n = NULL;
        }
    }
    pthread_mutex_unlock(&heap_lock);
    if (n)
        meta_free(n, sizeof *n);
    if (tc == NULL)
        errno = ENOMEM; /* 4096 (type, class) pairs in use */
    return tc;
}

static void list_push(gspan **head, gspan *s, int which)
{
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
    s->list = (uint8_t)which;
}

static void list_unlink(tclass *tc, gspan *s)
{
    gspan **head = s->list == L_PARTIAL ? &tc->partial : s->list == L_FULL ? &tc->full : &tc->unswept;
    if (s->prev) s->prev->next = s->next; else *head = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = NULL;
    s->list = L_NONE;
}

static bool span_has_free(gspan *s)
{
    if (s->acache && s->abase + (uint32_t)__builtin_ctzll(s->acache) < s->nelems)
        return true;
    for (uint32_t w = (s->abase >> 6) + 1; w < s->nwords; w++) {
        uint64_t valid = (w + 1 == s->nwords && (s->nelems & 63)) ? ((uint64_t)1 << (s->nelems & 63)) - 1 : ~(uint64_t)0;
        if (~atomic_load_explicit(&s->alloc[w], memory_order_relaxed) & valid)
            return true;
    }
    return false;
}

/* Puts an uncached span on its central list (heap lock). */
static void central_put_locked(gspan *s)
{
    uint32_t g = atomic_load_explicit(&sweepgen_g, memory_order_relaxed);
    if (atomic_load_explicit(&s->sweepgen, memory_order_relaxed) == g - 2)
        list_push(&s->tc->unswept, s, L_UNSWEPT);
    else if (span_has_free(s))
        list_push(&s->tc->partial, s, L_PARTIAL);
    else
        list_push(&s->tc->full, s, L_FULL);
}

static void allspans_unlink_locked(gspan *s)
{
    if (s->all_prev) s->all_prev->all_next = s->all_next; else allspans = s->all_next;
    if (s->all_next) s->all_next->all_prev = s->all_prev;
}

/* Resets the holder's allocation cursor (after a sweep or on creation). */
static void cursor_reset(gspan *s)
{
    atomic_store_explicit(&s->freeindex, 0, memory_order_relaxed);
    s->abase = 0;
    uint64_t a = atomic_load_explicit(&s->alloc[0], memory_order_relaxed);
    s->acache = ~a;
}

/* Next free block of a cached span, or -1.  Holder only. */
static inline long span_next(gspan *s)
{
    while (s->acache == 0) {
        uint32_t base = s->abase + 64;
        if (base >= s->nelems)
            return -1;
        s->abase = base;
        s->acache = ~atomic_load_explicit(&s->alloc[base >> 6], memory_order_relaxed);
    }
    uint32_t i = s->abase + (uint32_t)__builtin_ctzll(s->acache);
    if (i >= s->nelems) {
        s->acache = 0;
        s->abase = s->nelems; /* exhausted */
        return -1;
    }
    s->acache &= s->acache - 1;
    return (long)i;
}

/* Takes a run of free blocks of s for e's bump allocation: block i (which
 * span_next just took) and the free blocks after it in the same word of
 * alloc bits.  The run's blocks after i are counted as allocated now (the
 * fast path counts nothing; run_drop takes back what was not used).
 * Holder only. */
static inline void run_take(gthread *me, cache_ent *e, gspan *s, long i)
{
    uint32_t b = (uint32_t)i - s->abase + 1; /* the next bit in acache */
    uint32_t n = 0;
    if (b < 64) {
        uint64_t rest = ~(s->acache >> b); /* a one at each taken block */
        n = rest ? (uint32_t)__builtin_ctzll(rest) : 64 - b;
        if (b + n > 64)
            n = 64 - b;
        if ((uint32_t)i + 1 + n > s->nelems)
            n = s->nelems - (uint32_t)i - 1;
        if (n)
            s->acache &= ~((((uint64_t)1 << n) - 1) << b);
    }
    e->bump = s->start + ((size_t)i + 1) * s->elem;
    e->bump_end = e->bump + (size_t)n * s->elem;
    me->local_bytes += (uint64_t)n * s->elem;
    me->local_objs += n;
}

/* Gives the unused part of e's run back to its span's cursor (the run
 * lies in the word acache holds; its first block is at freeindex) and
 * empties it; me (NULL: a thread that is gone) stops counting it.  Holder
 * only. */
static inline void run_drop(gthread *me, cache_ent *e)
{
    gspan *s = e->s;
    if (s != NULL && e->bump < e->bump_end) {
        uint32_t n = (uint32_t)((size_t)(e->bump_end - e->bump) / s->elem);
        uint32_t b = atomic_load_explicit(&s->freeindex, memory_order_relaxed) - s->abase;
        if (b < 64)
            s->acache |= (n >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1)) << b;
        if (me != NULL) {
            uint64_t bytes = (uint64_t)n * s->elem;
            if (me->local_bytes >= bytes && me->local_objs >= n) {
                me->local_bytes -= bytes;
                me->local_objs -= n;
            } else {
                /* counted already (account_flush): take it back there */
                atomic_fetch_sub_explicit(&heap_live, bytes, memory_order_relaxed);
                atomic_fetch_sub_explicit(&st_total_alloc, bytes, memory_order_relaxed);
                atomic_fetch_sub_explicit(&st_mallocs, n, memory_order_relaxed);
            }
        }
    }
    e->bump = e->bump_end = NULL;
}

/* ---------------------------------------------------------------------------
 * The collector's page heap (Go's mheap): every gspan's pages, and the
 * collector's metadata, come from one detached arena shared by all threads.
 * Why not the allocating thread's arena: pages freed there are reusable
 * only by that thread (another thread's frees wait in its inbox until it
 * allocates again), so under a limit of a few segments a heap spread over
 * per-thread arenas strands whole segments — measured at 32 MiB live under
 * 40 MiB with 2 threads: 18 free pages stranded in the builder's arena and
 * a 2 MiB segment per worker thread, while the limit refused the next
 * segment.  Here pages a sweep frees are every thread's at once, a segment
 * that empties goes back to the page layer, and a thread that only uses the
 * collected heap commits no segment of its own.  The lock is taken once per
 * span (64 KiB or more), never on the allocation fast path.
 * ------------------------------------------------------------------------- */
static pthread_mutex_t pages_lock = PTHREAD_MUTEX_INITIALIZER; /* gc_pages, meta lists; a leaf: never held across a commit */
static rgi_arena *gc_pages;                                     /* set once by gc_init_once */
/* What the shared heap holds, for the pacer's room (written under
 * pages_lock, read relaxed): segments, and pages handed out of them (spans
 * and metadata).  Their difference is free pages any thread can use. */
static _Atomic uint64_t heap_seg_bytes, heap_page_bytes;
static _Atomic uint64_t heap_page_peak; /* highest heap_page_bytes (gctrace) */
static _Atomic uint64_t recent_page_peak; /* highest since the last release_idle_past_goal */

static void pages_out_locked(size_t npages)
{
    uint64_t v = atomic_fetch_add_explicit(&heap_page_bytes, npages * RGI_PAGE_SIZE, memory_order_relaxed) +
                 npages * RGI_PAGE_SIZE;
    if (v > atomic_load_explicit(&heap_page_peak, memory_order_relaxed))
        atomic_store_explicit(&heap_page_peak, v, memory_order_relaxed);
    if (v > atomic_load_explicit(&recent_page_peak, memory_order_relaxed))
        atomic_store_explicit(&recent_page_peak, v, memory_order_relaxed);
}

/* npages pages of the shared heap; NULL + errno.  A new segment is
 * committed with no lock held: the limit ladder may run (and sweep). */
static rgi_span *heap_pages_alloc(size_t npages)
{
    if (gc_pages == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    for (int tries = 0; tries < 4; tries++) {
        pthread_mutex_lock(&pages_lock);
        rgi_span *sp = rgi_arena_span_take(gc_pages, npages);
        if (sp != NULL)
            pages_out_locked(npages);
        pthread_mutex_unlock(&pages_lock);
        if (sp != NULL)
            return sp;
        if (errno != EAGAIN)
            return NULL;
        bool fresh;
        void *seg = rgi_segment_alloc(&fresh);
        pthread_mutex_lock(&pages_lock);
        if (seg != NULL) {
            rgi_arena_segment_add(gc_pages, seg, fresh);
            atomic_fetch_add_explicit(&heap_seg_bytes, RGI_SEG_SIZE, memory_order_relaxed);
        }
        /* without a segment, the ladder's sweep may still have freed pages */
        sp = rgi_arena_span_take(gc_pages, npages);
        if (sp != NULL)
            pages_out_locked(npages);
        pthread_mutex_unlock(&pages_lock);
        if (sp != NULL)
            return sp;
        if (seg == NULL) {
            errno = ENOMEM;
            return NULL;
        }
        /* others took the new segment's pages first: try again */
    }
    errno = ENOMEM;
    return NULL;
}

static void heap_pages_free(rgi_span *sp)
{
    size_t npages = sp->npages;
    pthread_mutex_lock(&pages_lock);
    atomic_fetch_sub_explicit(&heap_page_bytes, npages * RGI_PAGE_SIZE, memory_order_relaxed);
    atomic_fetch_sub_explicit(&heap_seg_bytes, rgi_arena_span_put(gc_pages, sp), memory_order_relaxed);
    pthread_mutex_unlock(&pages_lock);
}

/* Under limit pressure: every empty segment of the shared heap goes back
 * to the page layer (the last one too), whose ladder then releases it. */
static size_t heap_pages_trim(void)
{
    if (gc_pages == NULL)
        return 0;
    pthread_mutex_lock(&pages_lock);
    size_t n = rgi_arena_trim(gc_pages);
    atomic_fetch_sub_explicit(&heap_seg_bytes, n, memory_order_relaxed);
    pthread_mutex_unlock(&pages_lock);
    return n;
}

/* Collector metadata (gspan headers with their side bits, gthreads, gray
 * chunks, tclasses): power-of-two blocks of 64 B to 8 KiB carved from
 * pages of the shared heap (RGI_SPAN_USER spans with no gspan: span_of()
 * never takes them for heap objects), kept on free lists for reuse.  What
 * they hold is bounded by the heap's spans and threads. */
#define META_MIN_SHIFT 6
#define META_NCLASSES 8 /* 64 B .. 8 KiB (a gthread is about 5 KiB) */
static void *meta_lists[META_NCLASSES]; /* pages_lock */
_Static_assert(sizeof(gthread) <= 8192 && sizeof(gchunk) <= 8192 && sizeof(tclass) <= 8192,
               "collector metadata fits the largest meta class");

static int meta_class(size_t n)
{
    int c = 0;
    while (((size_t)1 << (c + META_MIN_SHIFT)) < n)
        c++;
    return c < META_NCLASSES ? c : -1;
}

/* NULL + errno; blocks are not zeroed. */
static void *meta_alloc(size_t n)
{
    int c = meta_class(n);
    if (c < 0)
        return rgi_arena_malloc(n); /* not expected: every caller asks for <= 8 KiB */
    pthread_mutex_lock(&pages_lock);
    void *p = meta_lists[c];
    if (p != NULL)
        meta_lists[c] = *(void **)p;
    pthread_mutex_unlock(&pages_lock);
    if (p != NULL)
        return p;
    rgi_span *sp = heap_pages_alloc(1);
    if (sp == NULL)
        return NULL;
    size_t bs = (size_t)1 << (c + META_MIN_SHIFT);
    char *b = sp->start, *end = sp->end;
    p = b;
    pthread_mutex_lock(&pages_lock);
    for (b += bs; b + bs <= end; b += bs) {
        *(void **)b = meta_lists[c];
        meta_lists[c] = b;
    }
    pthread_mutex_unlock(&pages_lock);
    return p;
}

static void meta_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    int c = meta_class(n);
    if (c < 0) {
        rgi_arena_free(p);
        return;
    }
    pthread_mutex_lock(&pages_lock);
    *(void **)p = meta_lists[c];
    meta_lists[c] = p;
    pthread_mutex_unlock(&pages_lock);
}

/* ---------------------------------------------------------------------------
 * Span creation, sweeping, freeing
 * ------------------------------------------------------------------------- */
static size_t gspan_meta_bytes(uint32_t nwords, bool fin)
{
    return sizeof(gspan) + (size_t)nwords * 8 * (fin ? 3 : 1);
}

/* New span: arena pages or a run; not linked anywhere yet.  NULL + errno. */
static gspan *span_create(const rg_type *t, tclass *tc, size_t elem, size_t obj_bytes, bool large)
{
    bool fin = t->finalize != NULL;
    rgi_span *sp = NULL;
    void *run = NULL;
    size_t committed = 0;
    char *start;
    size_t usable;
    bool was = tls_in_gc;
    if (!large) {
        size_t npages = elem > 8192 ? 4 : 1;
        if ((sp = heap_pages_alloc(npages)) == NULL)
            return NULL;
        start = sp->start;
        usable = (size_t)(sp->end - sp->start);
    } else {
        size_t npages = (obj_bytes + RGI_PAGE_SIZE - 1) >> RGI_PAGE_SHIFT;
        if (npages <= LARGE_MAX_PAGES) {
            if ((sp = heap_pages_alloc(npages)) == NULL)
                return NULL;
            if ((size_t)(sp->end - sp->start) < obj_bytes) {
                heap_pages_free(sp); /* page 0 is short by the segment header */
                if ((sp = heap_pages_alloc(npages + 1)) == NULL)
                    return NULL;
            }
            start = sp->start;
            usable = (size_t)(sp->end - sp->start);
        } else {
            if (obj_bytes > SIZE_MAX / 2) {
                errno = ENOMEM;
                return NULL;
            }
            run = rgi_run_alloc(RGI_SEG_HDR + 64 + obj_bytes, &committed);
            if (run == NULL)
                return NULL;
            start = (char *)run + RGI_SEG_HDR + 64;
            usable = obj_bytes;
        }
    }
    uint32_t nelems = large ? 1 : (uint32_t)(usable / elem);
    uint32_t nwords = (nelems + 63) / 64;
    gspan *s = meta_alloc(gspan_meta_bytes(nwords, fin));
    _Atomic uint8_t *mark = s ? meta_alloc((size_t)nwords * 64) : NULL;
    tls_in_gc = was;
    if (mark == NULL) {
        int e = errno;
        meta_free(s, gspan_meta_bytes(nwords, fin));
        if (sp) heap_pages_free(sp);
        if (run) rgi_run_free(run, committed);
        errno = e;
        return NULL;
    }
    memset(s, 0, gspan_meta_bytes(nwords, fin));
    s->type = t;
    s->tc = tc;
    s->start = start;
    s->elem = large ? usable : elem;
    s->obj_bytes = obj_bytes;
    s->nelems = nelems;
    s->nwords = nwords;
    s->div_mul = large ? 0 : (uint32_t)(((uint64_t)1 << 32) / elem + 1);
    s->nper = large ? 0 : (uint32_t)(elem / (t->size ? t->size : 1));
    s->large = large;
    s->aspan = sp;
    s->run = run;
    s->run_committed = committed;
    _Atomic uint64_t *bits = (_Atomic uint64_t *)(s + 1);
    s->alloc = bits;
    memset((void *)mark, 0, (size_t)nwords * 64);
    s->mark = mark;
    if (fin) {
        s->fin = bits + nwords;
        s->finq = bits + 2 * nwords;
        atomic_fetch_add_explicit(&fin_spans, 1, memory_order_relaxed);
    }
    cursor_reset(s);
    /* the card scan reads the cards up to the highest span's end */
    uintptr_t end = (uintptr_t)start + usable, hw = atomic_load_explicit(&heap_hwm, memory_order_relaxed);
    while (hw < end && !atomic_compare_exchange_weak_explicit(&heap_hwm, &hw, end, memory_order_relaxed,
                                                              memory_order_relaxed))
        ;
    if (poisoning && !run)
        rgi_poison(start, usable);
    /* publish: span_of() on another thread reaches s only through a pointer
     * to one of its objects, published after this (via the heap or locks) */
    s->magic = GSPAN_MAGIC ^ (uintptr_t)s;
    if (sp)
        sp->user = s;
    else
        *(gspan **)((char *)run + RGI_SEG_HDR) = s;
    atomic_fetch_add_explicit(&span_bytes, large ? usable : (size_t)nelems * elem, memory_order_relaxed);
    return s;
}

/* Gives a span's memory back.  Not reachable by anyone any more. */
static void span_destroy(gspan *s)
{
    atomic_fetch_sub_explicit(&span_bytes, s->large ? s->elem : (size_t)s->nelems * s->elem, memory_order_relaxed);
    s->magic = 0;
    if (s->fin)
        atomic_fetch_sub_explicit(&fin_spans, 1, memory_order_relaxed);
    if (s->aspan) {
        /* the arena writes its own links into freed pages */
        rgi_unpoison(s->aspan->start, (size_t)(s->aspan->end - s->aspan->start));
        s->aspan->user = NULL;
        heap_pages_free(s->aspan);
    } else {
        *(gspan **)((char *)s->run + RGI_SEG_HDR) = NULL;
        rgi_unpoison(s->start, s->obj_bytes); /* the range may become an arena segment */
        rgi_run_free(s->run, s->run_committed);
    }
    meta_free((void *)s->mark, (size_t)s->nwords * 64);
    meta_free(s, gspan_meta_bytes(s->nwords, s->fin != NULL));
}

/* Sweeps s (heap lock held, s claimed: not cached, sweepgen G-2).
 * A block is live when it is marked: alloc := mark.  The generational mode
 * keeps the traced marks (old objects stay marked until a full cycle).
 * Returns true when the span is now empty. */
static bool sweep_span_locked(gspan *s)
{
    /* sweeping clears mark bits: never while marking */
    RG_ASSERT(atomic_load_explicit(&phase, memory_order_relaxed) != PH_MARK);
    uint32_t g = atomic_load_explicit(&sweepgen_g, memory_order_relaxed);
    atomic_store_explicit(&s->sweepgen, g - 1, memory_order_relaxed);
    uint32_t fi = atomic_load_explicit(&s->freeindex, memory_order_relaxed);
    uint32_t live = 0;
    uint64_t freed = 0;
    for (uint32_t w = 0; w < s->nwords; w++) {
        uint64_t a = allocated_word(s, w, fi);
        uint64_t m = mark_word(s, w);
        uint64_t dead = a & ~m;
        if (dead) {
            if (s->fin)
                atomic_fetch_and_explicit(&s->fin[w], ~dead, memory_order_relaxed);
            freed += (uint64_t)__builtin_popcountll(dead);
            if (poisoning)
                for (uint64_t d = dead; d; d &= d - 1)
                    rgi_poison(s->start + ((size_t)w * 64 + (size_t)__builtin_ctzll(d)) * s->elem,
                               s->large ? s->obj_bytes : s->elem);
        }
        atomic_store_explicit(&s->alloc[w], m, memory_order_relaxed);
        if (!gen_mode)
            mark_word_clear(s, w);
        else if (m)
            /* sticky: traced blocks stay marked (old) until a full cycle
             * clears them; blocks allocated black are young again */
            mark_word_set(s, w, m & ~mark_word_eq(s, w, MARK_TRACED), 0);
        live += (uint32_t)__builtin_popcountll(m);
    }
    s->nalloc = live;
    cursor_reset(s);
    atomic_store_explicit(&s->sweepgen, g, memory_order_relaxed);
    if (freed) {
        size_t bytes = (size_t)freed * (s->large ? s->obj_bytes : s->elem);
        atomic_fetch_add_explicit(&st_frees, freed, memory_order_relaxed);
        atomic_fetch_add_explicit(&st_freed_bytes, bytes, memory_order_relaxed);
        uint64_t hl = atomic_load_explicit(&heap_live, memory_order_relaxed);
        atomic_fetch_sub_explicit(&heap_live, bytes < hl ? bytes : hl, memory_order_relaxed);
    }
    return live == 0;
}

/* Sweeps unswept spans of tc until one has a free block (returned, unlinked)
 * or none are left.  Heap lock held.  Empty spans are collected in *dead. */
static gspan *sweep_for_alloc_locked(tclass *tc, gspan **dead)
{
    gspan *s;
    while ((s = tc->unswept) != NULL) {
        list_unlink(tc, s);
        if (sweep_span_locked(s)) {
            allspans_unlink_locked(s);
            s->next = *dead;
            *dead = s;
            continue;
        }
        if (span_has_free(s))
            return s;
        list_push(&tc->full, s, L_FULL);
    }
    return NULL;
}

static void destroy_list(gspan *dead)
{
    while (dead) {
        gspan *n = dead->next;
        span_destroy(dead);
        dead = n;
    }
}

/* Sweeps every unswept span (the collector's background sweep; also what a
 * new cycle does first).  Returns bytes of spans given back. */
static size_t sweep_all(void)
{
    size_t released = 0;
    bool was = tls_in_gc;
    tls_in_gc = true;
    for (;;) {
        gspan *dead = NULL;
        unsigned n = 0;
        pthread_mutex_lock(&heap_lock);
        uint32_t g = atomic_load_explicit(&sweepgen_g, memory_order_relaxed);
        for (tclass *tc = tclasses; tc && n < 64; tc = tc->next_all) {
            gspan *s;
            while ((s = tc->unswept) != NULL && n < 64) {
                list_unlink(tc, s);
                n++;
                if (sweep_span_locked(s)) {
                    allspans_unlink_locked(s);
                    s->next = dead;
                    dead = s;
                } else {
                    central_put_locked(s);
                }
            }
        }
        /* large spans live only on allspans */
        for (gspan *s = allspans, *nx; s && n < 64; s = nx) {
            nx = s->all_next;
            if (s->large && atomic_load_explicit(&s->sweepgen, memory_order_relaxed) == g - 2) {
                n++;
                if (sweep_span_locked(s)) {
                    allspans_unlink_locked(s);
                    s->next = dead;
                    dead = s;
                }
            }
        }
        pthread_mutex_unlock(&heap_lock);
        for (gspan *s = dead; s; s = s->next)
            released += s->large ? s->elem : (size_t)s->nelems * s->elem;
        destroy_list(dead);
        if (n < 64)
            break;
    }
    tls_in_gc = was;
    return released;
}

/* ---------------------------------------------------------------------------
 * Thread caches
 * ------------------------------------------------------------------------- */
static inline unsigned cache_slot(const rg_type *t, unsigned c)
{
    uintptr_t h = ((uintptr_t)t >> 4) * 0x9e3779b97f4a7c15ull;
    return (unsigned)((h >> 40) + c) & (CACHE_SLOTS - 1);
}

/* Sets t->last_black to s (NULL: none) and with it the inline barrier's
 * window (regio/gc.h rg_gc_tls_fresh): the blocks of s from black_from up
 * to its first survivor of the last sweep (alloc bit set: white or marked,
 * not fresh), which this thread hands out black or are still free.  So the
 * window is never stale past the span's black caching: after it leaves the
 * cache its blocks keep real mark bits until the SWEEP handshake, which
 * clears every window (release_cache) before anything is swept.  t->fw is
 * written by t, or by the collector while t is parked (t runs no barrier
 * then). */
static void set_last_black(gthread *t, gspan *s)
{
    t->last_black = s;
    if (t->fw == NULL)
        return;
    uintptr_t lo = 0, len = 0;
    if (s != NULL && !s->large) {
        uint32_t from = atomic_load_explicit(&s->black_from, memory_order_relaxed), end = s->nelems;
        for (uint32_t w = from >> 6; w < s->nwords; w++) {
            uint64_t a = atomic_load_explicit(&s->alloc[w], memory_order_relaxed) & ~below_mask(from, w);
            if (a) {
                end = w * 64 + (uint32_t)__builtin_ctzll(a);
                break;
            }
        }
        if (end > from) {
            lo = (uintptr_t)s->start + (uintptr_t)from * s->elem;
            len = (uintptr_t)(end - from) * s->elem;
        }
    }
    __atomic_store_n(&t->fw->len, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&t->fw->lo, lo, __ATOMIC_RELAXED);
    __atomic_store_n(&t->fw->len, len, __ATOMIC_RELAXED);
}

/* Gives every cached span back to the central lists (heap lock taken). */
static void release_cache(gthread *t)
{
    set_last_black(t, NULL);
    pthread_mutex_lock(&heap_lock);
    for (unsigned i = 0; i < CACHE_SLOTS; i++) {
        gspan *s = t->cache[i].s;
        if (s == NULL)
            continue;
        run_drop(t, &t->cache[i]);
        t->cache[i].s = NULL;
        span_uncache(s);
        central_put_locked(s);
    }
    pthread_mutex_unlock(&heap_lock);
}

/* ---------------------------------------------------------------------------
 * Allocation
 * ------------------------------------------------------------------------- */
static void account_slow(gthread *me);

/* Zeroes a block about to be handed out. */
static inline void block_zero(char *p, size_t elem)
{
    if (RG_LIKELY(elem <= 64)) {
        /* small classes are multiples of 16: inline stores, not a call
         * (binary-trees' 16-byte nodes spent 5% of the mutator in memset) */
        for (size_t k = 0; k < elem; k += 16)
            memset(p + k, 0, 16);
    } else {
        memset(p, 0, elem);
    }
}

/* Hands block i of s out: zeroed; black by position when the holder
 * allocates black (implicit_black_word).  Order: zero, then freeindex
 * (release), so a collector that reads freeindex (acquire) sees an
 * initialized object, and its colour. */
static inline void *hand_out(gthread *me, gspan *s, long i, size_t bytes)
{
    char *p = s->start + (size_t)i * s->elem;
    if (poisoning)
        rgi_unpoison(p, s->elem);
    block_zero(p, s->elem);
    atomic_store_explicit(&s->freeindex, (uint32_t)i + 1, memory_order_release);
    me->local_objs++;
    if (RG_UNLIKELY((me->local_bytes += s->elem) >= ACCOUNT_BYTES))
        account_slow(me);
    (void)bytes;
    return p;
}

/* Does this thread allocate black now?  From the moment every thread
 * acknowledged START (mark_open: every barrier is on), not only from its
 * roots handover: an object allocated black holds no pointer but those
 * stored into it through the barrier since, which shaded them, so it needs
 * no scan.  Allocating white until the handover (as before) made every
 * object a thread built while the cycle waited for its safepoint gray at
 * its first store, shaded by the barrier's slow path and then scanned by
 * the collector: on binary-trees that wait is a whole tree, and it was
 * most of the barrier's and the collector's time.  White spans still
 * cached stay white until they leave the cache (ROOTS releases them all).
 * `black` set here also starts assists, which marking allows once
 * mark_open is set. */
static inline bool alloc_black_now(gthread *me, int ph)
{
    if (ph != PH_MARK)
        return false;
    /* acquire: pairs with the store in run_cycle after START completed */
    if (RG_UNLIKELY(!me->black) && atomic_load_explicit(&mark_open, memory_order_acquire))
        me->black = true;
    return me->black;
}

/* Refill: a span with a free block for (t, c) into the cache. */
/* e now holds s (heap lock), with no run yet. */
static inline void cache_set(cache_ent *e, const rg_type *t, unsigned c, gspan *s)
{
    e->type = t;
    e->sclass = (uint16_t)c;
    e->elem = (uint16_t)s->elem;
    e->s = s;
    e->bump = e->bump_end = NULL;
}

static RGI_NOINLINE void *alloc_refill(gthread *me, const rg_type *t, unsigned c, size_t bytes)
{
    tclass *tc = tclass_get(t, c);
    if (tc == NULL)
        return NULL;
    unsigned slot = cache_slot(t, c);
    gspan *dead = NULL, *s = NULL;
    pthread_mutex_lock(&heap_lock);
    cache_ent *e = &me->cache[slot];
    if (e->s) {
        if (e->s == me->last_black)
            set_last_black(me, NULL);
        run_drop(me, e);
        span_uncache(e->s);
        central_put_locked(e->s);
        e->s = NULL;
    }
    int ph = atomic_load_explicit(&phase, memory_order_relaxed);
    if (ph != PH_DONE) {
        /* In PH_DONE every old span waits for this cycle's sweep, which may
         * not start before the SWEEP handshake: only fresh spans then. */
        if ((s = tc->partial) != NULL)
            list_unlink(tc, s);
        else
            s = sweep_for_alloc_locked(tc, &dead);
    }
    if (s) {
        bool blk = alloc_black_now(me, ph);
        span_cache(s, blk);
        if (blk)
            set_last_black(me, s);
        cache_set(e, t, c, s);
    }
    pthread_mutex_unlock(&heap_lock);
    destroy_list(dead);
    if (s == NULL) {
        s = span_create(t, tc, rgi_class_size(c), 0, false);
        if (s == NULL) {
            /* The limit refused a new span, after its ladder ran a cycle:
             * the blocks that cycle freed are in swept spans of this class,
             * not in the page layer.  Take one of those. */
            int err = errno;
            dead = NULL; /* destroyed above */
            pthread_mutex_lock(&heap_lock);
            ph = atomic_load_explicit(&phase, memory_order_relaxed);
            if (ph != PH_DONE) {
                if ((s = tc->partial) != NULL)
                    list_unlink(tc, s);
                else
                    s = sweep_for_alloc_locked(tc, &dead);
            }
            if (s) {
                bool blk = alloc_black_now(me, ph);
                span_cache(s, blk);
                if (blk)
                    set_last_black(me, s);
                cache_set(e, t, c, s);
            }
            pthread_mutex_unlock(&heap_lock);
            destroy_list(dead);
            if (s == NULL) {
                errno = err;
                return NULL;
            }
            goto got;
        }
        pthread_mutex_lock(&heap_lock);
        ph = atomic_load_explicit(&phase, memory_order_relaxed);
        uint32_t g = atomic_load_explicit(&sweepgen_g, memory_order_relaxed);
        atomic_store_explicit(&s->sweepgen, ph == PH_DONE ? g + 2 : g, memory_order_relaxed);
        s->all_next = allspans;
        if (allspans)
            allspans->all_prev = s;
        allspans = s;
        bool blk = alloc_black_now(me, ph);
        span_cache(s, blk);
        if (blk)
            set_last_black(me, s);
        cache_set(e, t, c, s);
        pthread_mutex_unlock(&heap_lock);
    }
got:;
    long i = span_next(s);
    if (i < 0)
        rgi_corrupt("gc: refilled span %p has no free block", (void *)s);
    if (!poisoning)
        run_take(me, e, s, i);
    return hand_out(me, s, i, bytes);
}

/* The fast path's run is empty: the next run of the cached span, or a
 * refill.  Under poisoning every block goes through hand_out (no runs). */
static RGI_NOINLINE void *alloc_next(gthread *me, const rg_type *t, unsigned c, size_t bytes)
{
    cache_ent *e = &me->cache[cache_slot(t, c)];
    gspan *s = e->s;
    if (s != NULL && e->type == t && e->sclass == c) {
        long i = span_next(s);
        if (i >= 0) {
            if (!poisoning)
                run_take(me, e, s, i);
            return hand_out(me, s, i, bytes);
        }
    }
    return alloc_refill(me, t, c, bytes);
}

static void *alloc_large(gthread *me, const rg_type *t, size_t bytes)
{
    gspan *s = span_create(t, NULL, 0, bytes, true);
    if (s == NULL)
        return NULL;
    if (!s->run) {
        if (poisoning)
            rgi_unpoison(s->start, s->elem);
        memset(s->start, 0, bytes); /* arena pages may be reused; runs are fresh */
    }
    pthread_mutex_lock(&heap_lock);
    int ph = atomic_load_explicit(&phase, memory_order_relaxed);
    uint32_t g = atomic_load_explicit(&sweepgen_g, memory_order_relaxed);
    atomic_store_explicit(&s->sweepgen, ph == PH_DONE ? g + 2 : g, memory_order_relaxed);
    if (alloc_black_now(me, ph)) {
        atomic_store_explicit(&s->mark[0], MARK_BLACK, memory_order_release);
        atomic_fetch_add_explicit(&black_bytes, bytes, memory_order_relaxed);
    }
    atomic_store_explicit(&s->freeindex, 1, memory_order_release);
    s->all_next = allspans;
    if (allspans)
        allspans->all_prev = s;
    allspans = s;
    pthread_mutex_unlock(&heap_lock);
    me->local_objs++;
    me->local_bytes += bytes;
    account_slow(me);
    return s->start;
}

static inline void *gc_alloc(const rg_type *t, size_t bytes)
{
    gthread *me = self();
    if (RG_UNLIKELY(me == NULL))
        return NULL;
    if (RG_UNLIKELY(bytes > RGI_SMALL_MAX))
        return alloc_large(me, t, bytes);
    unsigned c = rgi_size_class_inl(bytes);
    cache_ent *e = &me->cache[cache_slot(t, c)];
    char *p = e->bump;
    if (RG_LIKELY(e->type == t && e->sclass == c && p < e->bump_end)) {
        /* the run: no read of the span (hand_out's order: zero, then
         * freeindex with release) */
        size_t elem = e->elem;
        gspan *s = e->s;
        e->bump = p + elem;
        block_zero(p, elem);
        atomic_store_explicit(&s->freeindex, atomic_load_explicit(&s->freeindex, memory_order_relaxed) + 1,
                              memory_order_release);
        return p; /* counted when the run was taken */
    }
    return alloc_next(me, t, c, bytes);
}

void *rg_new(const rg_type *t)
{
    if (RG_UNLIKELY(t == NULL)) {
        errno = EINVAL;
        return NULL;
    }
    return gc_alloc(t, t->size ? t->size : 1);
}

void *rg_new_array(const rg_type *t, size_t n)
{
    if (RG_UNLIKELY(t == NULL)) {
        errno = EINVAL;
        return NULL;
    }
    size_t bytes;
    if (__builtin_mul_overflow(t->size ? t->size : 1, n ? n : 1, &bytes) || bytes > ((size_t)1 << 46)) {
        errno = EOVERFLOW;
        return NULL;
    }
    return gc_alloc(t, bytes);
}

void *rg_clone(const rg_type *t, const void *src, size_t n)
{
    if (t == NULL || (src == NULL && n)) {
        errno = EINVAL;
        return NULL;
    }
    size_t esz = t->size ? t->size : 1;
    void *p = rg_new_array(t, (n + esz - 1) / esz);
    if (p == NULL)
        return NULL;
    if (n)
        memcpy(p, src, n);
    if (__atomic_load_n(&rg_gc_barrier_on, __ATOMIC_RELAXED) && t->nptrs) {
        /* a bulk barrier: the copied pointers are inserted into the heap */
        gthread *me = self();
        for (size_t e = 0; e * esz < n; e++)
            for (size_t k = 0; k < t->nptrs; k++)
                if (e * esz + t->ptr_offsets[k] + sizeof(void *) <= n)
                    shade(&me->gw, *(void **)((char *)p + e * esz + t->ptr_offsets[k]));
    }
    return p;
}

/* ---------------------------------------------------------------------------
 * The barrier
 * ------------------------------------------------------------------------- */
/* Is p an object this thread allocated black from the span it cached black
 * last?  Then it is black (implicit_black_word) and the barrier need not
 * shade it: the common store of a just-allocated child into its parent,
 * answered without span_of.  Holder only: the span stays cached by this
 * thread, black, while last_black points to it (release_cache and
 * alloc_refill clear it before the span leaves the cache). */
static inline bool fresh_black(gthread *me, const void *p)
{
    gspan *s = me->last_black;
    if (s == NULL || !__atomic_load_n(&s->alloc_black, __ATOMIC_RELAXED))
        return false;
    size_t off = (size_t)((const char *)p - s->start);
    if (off >= (size_t)s->nelems * s->elem)
        return false;
    uint32_t i = (uint32_t)(((uint64_t)off * s->div_mul) >> 32);
    if ((size_t)i * s->elem > off)
        i--;
    return i >= atomic_load_explicit(&s->black_from, memory_order_relaxed) &&
           i < atomic_load_explicit(&s->freeindex, memory_order_relaxed) &&
           !((atomic_load_explicit(&s->alloc[i >> 6], memory_order_relaxed) >> (i & 63)) & 1);
}

void rg_write_slow(void *obj, void *slot, void *val)
{
    gthread *me = self();
#if RG_DEBUG_CHECKS
    gspan *s = span_of(obj);
    if (s == NULL || (char *)slot < (char *)obj || (char *)slot + sizeof(void *) > (char *)obj + (s->large ? s->obj_bytes : s->elem))
        rgi_diag("rg_write", "slot %p is not inside heap object %p (barrier misuse)", slot, obj);
    if (me && atomic_load_explicit(&me->state, memory_order_relaxed) != T_RUNNING)
        rgi_diag("rg_write", "called while the thread is parked (object %p)", obj);
#else
    (void)obj;
#endif
    if (me && __atomic_load_n(&rg_gc_barrier_on, __ATOMIC_RELAXED)) {
        /* Go's hybrid barrier: shade(*slot); shade(val); *slot = val */
        /* acquire: pairs with the release store that put the old value
         * there, so its span metadata is visible to shade */
        void *old = __atomic_load_n((void **)slot, __ATOMIC_ACQUIRE);
        if (old != NULL) /* a fresh object's slots: no call */
            shade(&me->gw, old);
        if (val != NULL && !fresh_black(me, val))
            shade(&me->gw, val);
    }
    /* release: see rg_write */
    __atomic_store_n((void **)slot, val, __ATOMIC_RELEASE);
    /* The card again, unconditionally and after the store (release): the
     * inline check may have found it marked just before a minor cycle's
     * card scan cleared it, and val may be young after this cycle (gc.h
     * rule 9; the scan clears with an exchange, which reads this store) */
    unsigned char *card = rg_gc_card(slot);
    if (card)
        __atomic_store_n(card, (unsigned char)1, __ATOMIC_RELEASE);
}

/* ---------------------------------------------------------------------------
 * Roots
 * ------------------------------------------------------------------------- */
rg_root *rg_root_add(void *slot)
{
    if (slot == NULL) {
        errno = EINVAL;
        return NULL;
    }
    gthread *me = self();
    if (me == NULL)
        return NULL;
    rg_root *r = meta_alloc(sizeof *r);
    if (r == NULL)
        return NULL;
    r->slot = slot;
    r->owner = me;
    r->prev = NULL;
    pthread_mutex_lock(&roots_lock);
    r->next = me->roots;
    if (me->roots)
        me->roots->prev = r;
    me->roots = r;
    pthread_mutex_unlock(&roots_lock);
    /* A root added while marking is a root store: shade what it holds now
     * (the thread may have handed over its roots already). */
    if (__atomic_load_n(&rg_gc_barrier_on, __ATOMIC_RELAXED))
        shade(&me->gw, *(void **)slot);
    return r;
}

static void root_unlink_locked(rg_root *r)
{
    rg_root **head = r->owner ? &r->owner->roots : &global_roots;
    if (r->prev) r->prev->next = r->next; else *head = r->next;
    if (r->next) r->next->prev = r->prev;
}

void rg_root_remove(rg_root *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&roots_lock);
    root_unlink_locked(r);
    pthread_mutex_unlock(&roots_lock);
    meta_free(r, sizeof *r);
}

/* Shades the targets of a thread's roots (owner == NULL: global roots). */
static void scan_roots(gthread *owner, gwork *w)
{
    tls_gray_reserved++; /* no chunk allocation under the roots lock */
    pthread_mutex_lock(&roots_lock);
    for (rg_root *r = owner ? owner->roots : global_roots; r; r = r->next)
        shade(w, *r->slot);
    pthread_mutex_unlock(&roots_lock);
    tls_gray_reserved--;
}

static void shade_pin(void *obj, void *arg)
{
    shade(arg, obj);
}

/* Objects waiting for their finalizer are roots until it ran. */
static void scan_finq(gwork *w)
{
    pthread_mutex_lock(&fin_lock);
    for (gspan *s = finq_spans; s; s = s->finq_next)
        for (uint32_t wd = 0; wd < s->nwords; wd++)
            for (uint64_t b = atomic_load_explicit(&s->finq[wd], memory_order_relaxed); b; b &= b - 1)
                shade(w, s->start + ((size_t)wd * 64 + (size_t)__builtin_ctzll(b)) * s->elem);
    pthread_mutex_unlock(&fin_lock);
}

/* The collector's own roots: global roots, region pins, the finalizer queue. */
static void scan_collector_roots(gwork *w)
{
    scan_roots(NULL, w);
    rgi_region_pins_foreach(shade_pin, w);
    scan_finq(w);
}

/* ---------------------------------------------------------------------------
 * Cards and sticky marks (gc.h rule 9)
 * ------------------------------------------------------------------------- */
/* Cards [0, n) cover every span made so far. */
static size_t cards_in_use(void)
{
    const rg_gc_cards *ct = &rg_gc_card_table;
    uintptr_t hw = atomic_load_explicit(&heap_hwm, memory_order_relaxed);
    if (ct->n == 0 || hw <= ct->lo)
        return 0;
    size_t n = (size_t)((hw - ct->lo + RG_GC_CARD_BYTES - 1) >> RG_GC_CARD_SHIFT);
    return n < ct->n ? n : ct->n;
}

/* Eight cards as a word (non-zero: one is marked).  A word load where the
 * mutators store single bytes; byte by byte under TSan, as mark_word. */
static inline uint64_t cards_word(size_t i)
{
    const unsigned char *m = rg_gc_card_table.map + i;
#if RGI_TSAN
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)__atomic_load_n(&m[k], __ATOMIC_RELAXED) << (8 * k);
    return v;
#else
    uint64_t v;
    memcpy(&v, m, sizeof v);
    return v;
#endif
}

/* Unmarks every card: a full cycle, once all threads run the barrier and
 * before any allocates black.  A card a store marks just before this
 * clear is lost, but that store shaded what it stored (no object is fresh
 * black yet, so none skips the shade), and what a full cycle shades ends
 * it old.  Every later store marks its card for the next cycle: that is
 * what finds the objects this cycle allocated black (young again after
 * its sweep) from the old objects they were stored into.  Only words
 * holding a mark are written (a card page nobody touched stays
 * unbacked). */
static void cards_clear(void)
{
    unsigned char *m = rg_gc_card_table.map;
    for (size_t i = 0, n = cards_in_use(); i < n; i += 8)
        if (cards_word(i))
            for (int k = 0; k < 8; k++)
                __atomic_store_n(&m[i + (size_t)k], (unsigned char)0, __ATOMIC_RELAXED);
}

/* Any mark byte set among blocks [i0, i1] of s? */
static inline bool marks_any(const gspan *s, size_t i0, size_t i1)
{
    const _Atomic uint8_t *m = s->mark;
#if !RGI_TSAN
    for (; i0 <= i1 && (i0 & 7); i0++)
        if (atomic_load_explicit(&m[i0], memory_order_relaxed))
            return true;
    for (; i0 + 8 <= i1 + 1; i0 += 8) {
        uint64_t v;
        memcpy(&v, (const void *)(m + i0), sizeof v);
        if (v)
            return true;
    }
#endif
    for (; i0 <= i1; i0++)
        if (atomic_load_explicit(&m[i0], memory_order_relaxed))
            return true;
    return false;
}

/* Shades v, the child of an old object on a card; *young is set when v
 * is in the heap and not old (so not old after this minor cycle either:
 * minor cycles promote nothing), and the card must stay marked. */
static void shade_card_child(gwork *w, void *v, bool *young)
{
    shade(w, v);
    if (*young)
        return;
    gspan *s = span_of(v);
    long i = s ? block_index(s, v) : -1;
    if (i >= 0 && atomic_load_explicit(&s->mark[i], memory_order_acquire) != MARK_TRACED)
        *young = true;
}

/* Scans the old objects of s overlapping the card at a: a small block
 * whole (once, though it covers several cards: *last), a large object's
 * elements that overlap the card.  Sets *young when one of them points to
 * a young object.  Returns the bytes scanned. */
static size_t scan_card(gwork *w, gspan *s, char *a, char **last, bool *young)
{
    char *hi = s->start + (s->large ? s->obj_bytes : (size_t)s->nelems * s->elem);
    char *lo = a > s->start ? a : s->start;
    char *e = a + RG_GC_CARD_BYTES;
    if (e > hi)
        e = hi;
    if (lo >= e)
        return 0;
    const rg_type *t = s->type;
    size_t esz = t->size ? t->size : 1;
    if (s->large) {
        if (atomic_load_explicit(&s->mark[0], memory_order_acquire) != MARK_TRACED)
            return 0;
        size_t e0 = (size_t)(lo - s->start) / esz, e1 = (size_t)(e - 1 - s->start) / esz;
        for (size_t k = e0; k <= e1; k++)
            for (size_t f = 0; f < t->nptrs; f++) {
                void *v = __atomic_load_n((void **)(s->start + k * esz + t->ptr_offsets[f]), __ATOMIC_ACQUIRE);
                if (v)
                    shade_card_child(w, v, young);
            }
        return (e1 - e0 + 1) * esz;
    }
    long i0 = block_index(s, lo), i1 = block_index(s, e - 1);
    if (i0 < 0 || i1 < i0 || !marks_any(s, (size_t)i0, (size_t)i1))
        return 0; /* the common case: a card of young objects */
    size_t done = 0;
    for (long i = i0; i <= i1; i++) {
        char *b = s->start + (size_t)i * s->elem;
        if (b == *last || atomic_load_explicit(&s->mark[i], memory_order_acquire) != MARK_TRACED)
            continue;
        *last = b;
        for (size_t k = 0; k < s->nper; k++)
            for (size_t f = 0; f < t->nptrs; f++) {
                /* acquire: pairs with rg_write's release store */
                void *v = __atomic_load_n((void **)(b + k * esz + t->ptr_offsets[f]), __ATOMIC_ACQUIRE);
                if (v)
                    shade_card_child(w, v, young);
            }
        done += s->elem;
    }
    return done;
}

/* The cards covering s's blocks: [*c0, *c1). */
static inline void span_cards(const gspan *s, size_t *c0, size_t *c1)
{
    const rg_gc_cards *ct = &rg_gc_card_table;
    uintptr_t lo = (uintptr_t)s->start, hi = lo + (s->large ? s->obj_bytes : (size_t)s->nelems * s->elem);
    *c0 = (size_t)((lo - ct->lo) >> RG_GC_CARD_SHIFT);
    *c1 = (size_t)((hi - ct->lo + RG_GC_CARD_BYTES - 1) >> RG_GC_CARD_SHIFT);
}

/* A minor cycle's extra roots: the old objects on marked cards.  Run once
 * every thread has the barrier on (after START) and before any allocates
 * black: a store made before a thread's acknowledgement marked its card,
 * one made after shades what it stores.  The spans with a marked card are
 * listed under the heap lock and scanned outside it: no span is freed
 * while marking, and a card is only read through the span that holds it
 * (a card of pages freed since it was marked is never looked up).  Each
 * card is cleared before its scan and marked again when an old object on
 * it points to a young one (the next minor cycle must find that one
 * again: minor cycles promote nothing); a store meanwhile marks it anew.
 * Cards outside every span stay as they are until a full cycle clears
 * them all.  Returns the number of marked cards. */
static size_t scan_cards(gwork *w)
{
    size_t ncards = 0, bytes = 0;
    unsigned char *map = rg_gc_card_table.map;
    gspan *list = NULL;
    pthread_mutex_lock(&heap_lock);
    for (gspan *s = allspans; s; s = s->all_next) {
        size_t c0, c1, c;
        span_cards(s, &c0, &c1);
        for (c = c0; c < c1 && !__atomic_load_n(&map[c], __ATOMIC_RELAXED); c++)
            ;
        if (c < c1) {
            s->card_next = list;
            list = s;
        }
    }
    pthread_mutex_unlock(&heap_lock);
    for (gspan *s = list; s; s = s->card_next) {
        size_t c0, c1;
        span_cards(s, &c0, &c1);
        char *last = NULL;
        for (size_t c = c0; c < c1; c++) {
            if (!__atomic_load_n(&map[c], __ATOMIC_RELAXED))
                continue;
            ncards++;
            /* an exchange: it reads the card store of a barrier that ran
             * (rg_write_slow, release), so the scan below sees that
             * barrier's slot store; a store after it marks the card anew */
            (void)__atomic_exchange_n(&map[c], (unsigned char)0, __ATOMIC_ACQ_REL);
            bool young = false;
            bytes += scan_card(w, s, (char *)(rg_gc_card_table.lo + (c << RG_GC_CARD_SHIFT)), &last, &young);
            if (young)
                __atomic_store_n(&map[c], (unsigned char)1, __ATOMIC_RELAXED);
        }
    }
    if (bytes && assists_paced())
        atomic_fetch_add_explicit(&scan_done, bytes, memory_order_relaxed);
    return ncards;
}

/* A full cycle starts from no marks (the sweep left the old ones): every
 * span swept, nothing marking (the collector, before START). */
static void marks_clear_all(void)
{
    pthread_mutex_lock(&heap_lock);
    for (gspan *s = allspans; s; s = s->all_next)
        for (uint32_t w = 0; w < s->nwords; w++)
            mark_word_clear(s, w);
    pthread_mutex_unlock(&heap_lock);
}

/* ---------------------------------------------------------------------------
 * Handshakes
 * ------------------------------------------------------------------------- */
/* Raises *m to v (relaxed: statistics). */
static inline void stat_max(_Atomic uint64_t *m, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(m, memory_order_relaxed);
    while (v > cur && !atomic_compare_exchange_weak_explicit(m, &cur, v, memory_order_relaxed, memory_order_relaxed))
        ;
}

/* The work of acknowledging handshake `kind` for thread t (t itself at a
 * safepoint, or the collector holding t parked).  `parts`, when not NULL,
 * gets the time spent in each part (ACK_*): the thread's own acks are
 * timed for gctrace. */
static void ack_work(gthread *t, int kind, uint64_t *parts)
{
    uint64_t t0 = parts ? rgi_now_ns() : 0, t1;
    tls_gray_reserved++; /* flushes take the reserve's chunks */
#define ACK_PART(k)                         \
    do {                                    \
        if (parts) {                        \
            t1 = rgi_now_ns();              \
            parts[k] += t1 - t0;            \
            t0 = t1;                        \
        }                                   \
    } while (0)
    switch (kind) {
    case HS_START:
        break; /* seeing the new hs_word means seeing the barrier on */
    case HS_ROOTS:
        release_cache(t); /* its spans allocated white */
        t->black = true;
        ACK_PART(ACK_CACHE);
        scan_roots(t, &t->gw);
        ACK_PART(ACK_ROOTS);
        flush_gray(&t->gw);
        ACK_PART(ACK_FLUSH);
        t->roots_cycle = atomic_load_explicit(&cycle_seq, memory_order_relaxed);
        break;
    case HS_TERM:
        scan_roots(t, &t->gw);
        ACK_PART(ACK_ROOTS);
        flush_gray(&t->gw);
        ACK_PART(ACK_FLUSH);
        break;
    case HS_SWEEP:
        flush_gray(&t->gw);
        ACK_PART(ACK_FLUSH);
        release_cache(t); /* its black spans: swept after this handshake */
        t->black = false;
        ACK_PART(ACK_CACHE);
        break;
    }
    tls_gray_reserved--;
#undef ACK_PART
}

static void account_flush(gthread *me);
static void pace_check(gthread *me);

/* A thread acknowledges the current handshake, if it has not yet.
 * `safepoint` says whether the thread's locals are dead here (a safepoint,
 * an unpark) or live (an allocation).  Only ROOTS needs dead locals: it is
 * the moment the thread's "stack" (its root slots, with no locals beside
 * them) is scanned once and turns black, as a goroutine stack in Go's hybrid
 * barrier proof.  After that every pointer the thread can hold is marked,
 * allocated black, or still reachable from a gray object, from which it can
 * only be unlinked through the deletion barrier: so START (seeing the
 * barrier), TERM (rescanning roots, flushing gray) and SWEEP (giving back
 * black spans) may be acknowledged in the middle of any allocation, which
 * is what makes a cycle wait for only one safepoint per thread. */
static int ack_pending(gthread *me, bool safepoint)
{
    /* acquire: pairs with the release store publishing the handshake, so the
     * barrier flag and phase written before it are visible */
    uint64_t hw = atomic_load_explicit(&hs_word, memory_order_acquire);
    if (atomic_load_explicit(&me->ack_seq, memory_order_relaxed) == hw >> 8)
        return HS_NONE;
    if (!safepoint && (hw & 0xff) == HS_ROOTS &&
        me->roots_cycle != atomic_load_explicit(&cycle_seq, memory_order_relaxed))
        return HS_NONE;
    int kind = (int)(hw & 0xff);
    struct rusage r0, r1;
    bool ru = getrusage(RUSAGE_THREAD, &r0) == 0;
    uint64_t parts[ACK_NPARTS] = {0};
    uint64_t t0 = rgi_now_ns();
    ack_work(me, kind, parts);
    account_flush(me);
    /* release: the collector (acquire load of ack_seq) sees the work done */
    atomic_store_explicit(&me->ack_seq, hw >> 8, memory_order_release);
    /* No wake-up of the collector here: it polls (handshake()).  A futex
     * wake costs ~5 us in a VM and, with as many runnable threads as CPUs,
     * often gets this thread preempted by the one it woke, inside the
     * pause: gctrace showed acks of 1-10 ms whose own work took 2 us. */
    uint64_t d = rgi_now_ns() - t0;
    ru = ru && getrusage(RUSAGE_THREAD, &r1) == 0;
    bool preempted = ru && r1.ru_nivcsw != r0.ru_nivcsw;
    bool blocked = ru && r1.ru_nvcsw != r0.ru_nvcsw;
    stat_max(&pause_max_cycle, d);
    stat_max(&ack_max_ns, d);
    atomic_fetch_add_explicit(&acks_total, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&acyc.n[kind], 1, memory_order_relaxed);
    stat_max(&acyc.max[kind], d);
    for (int k = 0; k < ACK_NPARTS; k++)
        stat_max(&acyc.part_max[kind][k], parts[k]);
    if (preempted) {
        atomic_fetch_add_explicit(&acks_preempted, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&acyc.preempted, 1, memory_order_relaxed);
        stat_max(&acyc.preempted_max, d);
    }
    if (blocked) {
        atomic_fetch_add_explicit(&acks_blocked, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&acyc.blocked, 1, memory_order_relaxed);
    }
    if (!preempted && !blocked) {
        stat_max(&pause_clean_max_cycle, d);
        stat_max(&ack_max_clean_ns, d);
        stat_max(&acyc.clean_max, d);
    }
    return kind;
}

/* Publishes handshake `kind` and waits until every thread acknowledged it,
 * acknowledging for parked ones; drains gray work while it waits.  Called
 * by the cycle's driver with no lock held.  Returns threads waited on. */
static pid_t waited_tids[8]; /* cycle lock: threads a handshake waited on */
static unsigned nwaited_tids;

static void note_waited_locked(gthread *t)
{
    for (unsigned i = 0; i < nwaited_tids; i++)
        if (waited_tids[i] == t->tid)
            return;
    t->waited++;
    if (nwaited_tids < 8)
        waited_tids[nwaited_tids++] = t->tid;
}

static void handshake(int kind, gwork *w)
{
    static uint64_t seq; /* cycle lock */
    /* a chunk per thread and kind of flush, plus slack (see gray_reserve) */
    long nt = atomic_load_explicit(&rgi_gc_threads_attached, memory_order_relaxed);
    gray_reserve_fill(2 * (size_t)(nt > 0 ? nt : 1) + 4);
    pthread_mutex_lock(&gc_lock);
    seq++;
    if (kind == HS_ROOTS)
        roots_started = true;
    /* seq_cst: Dekker pair with rg_unpark's CAS of the thread state followed
     * by its load of hs_word: either we see it running, or it sees us */
    atomic_store_explicit(&hs_word, (seq << 8) | (uint64_t)kind, memory_order_seq_cst);
    uint64_t t_start = rgi_now_ns(), warned = 0, backoff = 20000;
    unsigned last_acked = 0;
    for (;;) {
        bool all = true;
        for (gthread *t = threads; t; t = t->next) {
            if (atomic_load_explicit(&t->ack_seq, memory_order_acquire) == seq)
                continue;
            int parked = T_PARKED;
            if (atomic_compare_exchange_strong_explicit(&t->state, &parked, T_BUSY, memory_order_seq_cst, memory_order_seq_cst)) {
                ack_work(t, kind, NULL);
                atomic_store_explicit(&t->ack_seq, seq, memory_order_relaxed);
                /* release: pairs with the acquire CAS in rg_unpark */
                atomic_store_explicit(&t->state, T_PARKED, memory_order_release);
                continue;
            }
            all = false;
            note_waited_locked(t);
        }
        if (all)
            break;
        /* Wait for safepoints; mark meanwhile (the background mark work). */
        if (w && atomic_load_explicit(&gray_nchunks, memory_order_relaxed)) {
            pthread_mutex_unlock(&gc_lock);
            drain(w, (size_t)256 << 10);
            pthread_mutex_lock(&gc_lock);
            continue;
        }
        /* Acks do not wake us (ack_pending): poll, 20 us doubling to 1 ms,
         * back to 20 us whenever an ack came in since the last look */
        unsigned acked = 0;
        for (gthread *t = threads; t; t = t->next)
            acked += atomic_load_explicit(&t->ack_seq, memory_order_relaxed) == seq;
        if (acked != last_acked)
            backoff = 20000;
        last_acked = acked;
        rgi_cond_wait_ns(&gc_cond, &gc_lock, backoff);
        if (backoff < 1000000)
            backoff *= 2;
        uint64_t now = rgi_now_ns();
        bool report = now - t_start > (warned + 1) * 1000000000ull;
        if (report)
            warned++;
        for (gthread *t = threads; t; t = t->next) {
            if (atomic_load_explicit(&t->ack_seq, memory_order_acquire) == seq)
                continue;
            if (report && rgi_opt.gctrace)
                fprintf(stderr, "gc: waiting %.1fs for thread %d to reach a safepoint\n",
                        (double)(now - t_start) / 1e9, (int)t->tid);
        }
    }
    pthread_mutex_unlock(&gc_lock);
}

/* ---------------------------------------------------------------------------
 * Thread states: attach, park, unpark, detach, safepoints
 * ------------------------------------------------------------------------- */
static void thread_exit(void *arg);

static gthread *thread_new(void)
{
    if (rgi_ensure_init() != 0) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_once(&init_once, gc_init_once);
    gthread *t = meta_alloc(sizeof *t);
    if (t == NULL)
        return NULL;
    memset(t, 0, sizeof *t);
    t->tid = (pid_t)syscall(SYS_gettid);
    t->fw = &rg_gc_tls_fresh;
    set_last_black(t, NULL);
    atomic_init(&t->state, T_PARKED);
    pthread_mutex_lock(&gc_lock);
    /* joins parked: any handshake in flight is acknowledged for it, and it
     * allocates black if roots were already handed over this cycle */
    t->black = atomic_load_explicit(&phase, memory_order_relaxed) == PH_MARK && roots_started;
    atomic_store_explicit(&t->ack_seq, atomic_load_explicit(&hs_word, memory_order_relaxed) >> 8, memory_order_relaxed);
    t->next = threads;
    if (threads)
        threads->prev = t;
    threads = t;
    nthreads++;
    atomic_fetch_add_explicit(&rgi_gc_threads_attached, 1, memory_order_relaxed); /* leak report */
    pthread_mutex_unlock(&gc_lock);
    tls_me = t;
    pthread_setspecific(thread_key, t);
    rg_unpark();
    return t;
}

static RGI_NOINLINE gthread *self_slow(void)
{
    return thread_new();
}

void rg_thread_attach(void)
{
    gthread *me = self();
    if (me)
        me->attached++;
}

/* Leaves the collector.  Everything the thread holds (cached spans, gray
 * buffer, roots) is handed over while it is still in the threads list and
 * held parked (T_BUSY, under gc_lock): a handshake in flight thus either
 * got its acknowledgement or finds the thread gone with nothing left behind
 * (a span released after the cycle's sweep began would escape it). */
static void thread_remove(gthread *me)
{
    rg_park();
    pthread_mutex_lock(&gc_lock);
    /* with gc_lock held the collector cannot be acknowledging for us */
    int parked = T_PARKED;
    if (!atomic_compare_exchange_strong(&me->state, &parked, T_BUSY))
        rgi_corrupt("gc: thread %d detaching in state %d", (int)me->tid, parked);
    flush_gray(&me->gw);
    release_cache(me);
    me->fw = NULL; /* the window is cleared; the thread's TLS may go */
    account_flush(me);
    /* its roots become global roots, scanned by the collector */
    pthread_mutex_lock(&roots_lock);
    rg_root *r = me->roots;
    while (r) {
        rg_root *n = r->next;
        r->owner = NULL;
        r->prev = NULL;
        r->next = global_roots;
        if (global_roots)
            global_roots->prev = r;
        global_roots = r;
        r = n;
    }
    me->roots = NULL;
    pthread_mutex_unlock(&roots_lock);
    if (me->prev) me->prev->next = me->next; else threads = me->next;
    if (me->next) me->next->prev = me->prev;
    nthreads--;
    atomic_fetch_sub_explicit(&rgi_gc_threads_attached, 1, memory_order_relaxed);
    pthread_cond_broadcast(&gc_cond);
    pthread_mutex_unlock(&gc_lock);
    tls_me = NULL;
    pthread_setspecific(thread_key, NULL);
    meta_free(me, sizeof *me);
}

void rg_thread_detach(void)
{
    gthread *me = tls_me;
    if (me == NULL)
        return;
    if (me->attached > 1) {
        me->attached--;
        return;
    }
    thread_remove(me);
}

static void thread_exit(void *arg)
{
    gthread *me = arg;
    if (me == NULL)
        return;
    tls_me = me;
    thread_remove(me);
}

void rg_park(void)
{
    gthread *me = self();
    if (me == NULL)
        return;
    if (atomic_load_explicit(&me->state, memory_order_relaxed) != T_RUNNING) {
        if (RG_DEBUG_CHECKS)
            rgi_diag("rg_park", "thread %d is already parked", (int)me->tid);
        return;
    }
    flush_gray(&me->gw);
    account_flush(me);
    if (me->unpaced >= ACCOUNT_BYTES && !tls_in_gc && !me->in_finalizer)
        pace_check(me);
    /* seq_cst: the collector's CAS PARKED->BUSY must see our writes
     * (gray flush, cache) — pairs with its seq_cst CAS */
    atomic_store_explicit(&me->state, T_PARKED, memory_order_seq_cst);
}

void rg_unpark(void)
{
    gthread *me = tls_me;
    if (me == NULL) {
        self(); /* attaching unparks */
        return;
    }
    for (int spins = 0;; spins++) {
        int parked = T_PARKED;
        /* seq_cst CAS then seq_cst load of hs_word: Dekker pair with
         * handshake(); acquire side pairs with the collector's release of
         * T_BUSY, so what it did for us (roots, cache, colour) is visible */
        if (atomic_compare_exchange_weak_explicit(&me->state, &parked, T_RUNNING, memory_order_seq_cst, memory_order_seq_cst))
            break;
        if (parked == T_RUNNING) {
            if (RG_DEBUG_CHECKS)
                rgi_diag("rg_unpark", "thread %d is not parked", (int)me->tid);
            return;
        }
        if (spins > 64)
            sched_yield(); /* the collector is acknowledging for us: bounded work */
    }
    ack_pending(me, true);
}

/* Blocking waits inside regio (channels, bounded pools) park an attached,
 * running thread for the duration of the sleep, so a thread blocked in
 * rg_chan_recv never delays a cycle.  Threads that never touched the heap
 * are not attached by this. */
bool rgi_gc_park_for_wait(void)
{
    gthread *me = tls_me;
    if (me == NULL || tls_in_gc || atomic_load_explicit(&me->state, memory_order_relaxed) != T_RUNNING)
        return false;
    rg_park();
    return true;
}

void rgi_gc_unpark_after_wait(bool parked)
{
    if (parked)
        rg_unpark();
}

static void run_finalizers(gthread *me);
static void collect(int kind);

static RGI_NOINLINE void safepoint_slow(gthread *me)
{
    tls_in_safepoint = true;
    ack_pending(me, true);
    if (atomic_load_explicit(&phase, memory_order_relaxed) == PH_MARK && me->black)
        assist(me, SAFEPOINT_BUDGET);
    if (atomic_load_explicit(&fin_pending, memory_order_relaxed))
        run_finalizers(me);
    tls_in_safepoint = false;
    if (rgi_opt.gcstress) {
        /* both kinds of cycle, alternately (minor ones are full when the
         * generational mode is off) */
        static _Atomic unsigned stress_n;
        collect(atomic_fetch_add_explicit(&stress_n, 1, memory_order_relaxed) & 1 ? CY_FULL : CY_MINOR);
    }
}

void rg_safepoint(void)
{
    gthread *me = self();
    if (RG_UNLIKELY(me == NULL) || me->in_finalizer || tls_in_safepoint)
        return;
    if (RG_UNLIKELY(atomic_load_explicit(&me->state, memory_order_relaxed) != T_RUNNING)) {
        if (RG_DEBUG_CHECKS)
            rgi_diag("rg_safepoint", "thread %d is parked", (int)me->tid);
        return;
    }
    if (RG_LIKELY((atomic_load_explicit(&hs_word, memory_order_relaxed) >> 8) ==
                  atomic_load_explicit(&me->ack_seq, memory_order_relaxed) &&
                  atomic_load_explicit(&phase, memory_order_relaxed) == PH_OFF &&
                  !atomic_load_explicit(&fin_pending, memory_order_relaxed) && !rgi_opt.gcstress))
        return;
    safepoint_slow(me);
}

/* ---------------------------------------------------------------------------
 * Finalizers
 * ------------------------------------------------------------------------- */
/* Queues unreachable finalizable objects and shades them (they and what they
 * reach survive this cycle).  Runs after a clean round, still marking. */
static bool fin_pass(gwork *w)
{
    gspan *queue = NULL;
    bool queued = false;
    if (atomic_load_explicit(&fin_spans, memory_order_relaxed) == 0)
        return false; /* no finalizable type in use: no heap walk */
    pthread_mutex_lock(&heap_lock);
    for (gspan *s = allspans; s; s = s->all_next) {
        if (!s->fin)
            continue;
        bool any = false;
        /* acquire: pairs with hand_out's release store of freeindex */
        uint32_t fi = atomic_load_explicit(&s->freeindex, memory_order_acquire);
        for (uint32_t wd = 0; wd < s->nwords; wd++) {
            uint64_t cand = allocated_word(s, wd, fi) & ~effective_mark_word(s, wd) &
                            ~atomic_load_explicit(&s->fin[wd], memory_order_relaxed) &
                            ~atomic_load_explicit(&s->finq[wd], memory_order_relaxed);
            if (!cand)
                continue;
            any = true;
            atomic_fetch_or_explicit(&s->finq[wd], cand, memory_order_relaxed);
            for (uint64_t b = cand; b; b &= b - 1)
                shade(w, s->start + ((size_t)wd * 64 + (size_t)__builtin_ctzll(b)) * s->elem);
        }
        if (any) {
            queued = true;
            s->finq_next = queue; /* linked below under fin lock */
            queue = s;
        }
    }
    /* link while still holding the heap lock: spans cannot die meanwhile */
    pthread_mutex_lock(&fin_lock);
    while (queue) {
        gspan *n = queue->finq_next;
        if (!queue->finq_linked) {
            queue->finq_linked = 1;
            queue->finq_next = finq_spans;
            finq_spans = queue;
        } else {
            queue->finq_next = NULL;
        }
        queue = n;
    }
    pthread_mutex_unlock(&fin_lock);
    pthread_mutex_unlock(&heap_lock);
    return queued;
}

/* Runs due finalizers on the calling thread (at a safepoint). */
static void run_finalizers(gthread *me)
{
    for (;;) {
        pthread_mutex_lock(&fin_lock);
        gspan *s = finq_spans;
        if (s) {
            finq_spans = s->finq_next;
            s->finq_linked = 0;
            s->finq_next = NULL;
        }
        /* only publish "nothing due" once the queue is empty; the flag is
         * re-raised when the sweep after a fin pass queues more */
        if (finq_spans == NULL)
            atomic_store_explicit(&fin_pending, 0, memory_order_relaxed);
        pthread_mutex_unlock(&fin_lock);
        if (s == NULL)
            break;
        /* The objects are ours until our next safepoint: no handshake can
         * complete while we run them, so none is swept or queued again. */
        me->in_finalizer = true;
        for (uint32_t wd = 0; wd < s->nwords; wd++) {
            uint64_t b = atomic_exchange_explicit(&s->finq[wd], 0, memory_order_acq_rel);
            for (; b; b &= b - 1) {
                uint64_t bit = b & -b;
                void *obj = s->start + ((size_t)wd * 64 + (size_t)__builtin_ctzll(b)) * s->elem;
                s->type->finalize(obj);
                atomic_fetch_or_explicit(&s->fin[wd], bit, memory_order_release);
                atomic_fetch_add_explicit(&st_fin_run, 1, memory_order_relaxed);
            }
        }
        me->in_finalizer = false;
    }
}

/* ---------------------------------------------------------------------------
 * Heap verifier and overflow rescan
 * ------------------------------------------------------------------------- */
static unsigned verify_fail;

static void verify_target(const void *from, const void *p, const char *what)
{
    gspan *s = span_of(p);
    if (s == NULL)
        return;
    long i = block_index(s, p);
    if (i < 0)
        return;
    if (!((effective_mark_word(s, (uint32_t)i >> 6) >> (i & 63)) & 1)) {
        if (verify_fail++ < 8) {
            uint32_t fi = atomic_load(&s->freeindex);
            bool allocd = bit_get(s->alloc, (uint32_t)i) || (uint32_t)i < fi;
            gspan *fs = from ? span_of(from) : NULL;
            rgi_diag("gc verify", "%s %p points to unmarked %s object %p (%s; span gen %u/%u cached %d black %d%s)",
                     what, from, s->type->name ? s->type->name : "?", p,
                     allocd ? "allocated" : "FREE: dangling", atomic_load(&s->sweepgen), atomic_load(&sweepgen_g),
                     s->cached, __atomic_load_n(&s->alloc_black, __ATOMIC_RELAXED), fs ? (fs->large ? ", from large" : ", from small") : "");
        }
    }
}

static void verify_pin(void *obj, void *arg)
{
    (void)arg;
    verify_target(NULL, obj, "region pin");
}

/* Checks the tri-color invariant; heap quiescent (see gc_internal.h). */
static unsigned verify_heap(void)
{
    verify_fail = 0;
    pthread_mutex_lock(&roots_lock);
    for (gthread *t = threads; t; t = t->next)
        for (rg_root *r = t->roots; r; r = r->next)
            verify_target(r->slot, *r->slot, "root");
    for (rg_root *r = global_roots; r; r = r->next)
        verify_target(r->slot, *r->slot, "root");
    pthread_mutex_unlock(&roots_lock);
    rgi_region_pins_foreach(verify_pin, NULL);
    pthread_mutex_lock(&heap_lock);
    for (gspan *s = allspans; s; s = s->all_next) {
        const rg_type *t = s->type;
        if (t->nptrs == 0)
            continue;
        size_t esz = t->size ? t->size : 1;
        size_t n = (s->large ? s->obj_bytes : s->elem) / esz;
        for (uint32_t wd = 0; wd < s->nwords; wd++)
            for (uint64_t b = effective_mark_word(s, wd); b; b &= b - 1) {
                char *obj = s->start + ((size_t)wd * 64 + (size_t)__builtin_ctzll(b)) * s->elem;
                for (size_t e = 0; e < n; e++)
                    for (size_t k = 0; k < t->nptrs; k++)
                        verify_target(obj, __atomic_load_n((void **)(obj + e * esz + t->ptr_offsets[k]), __ATOMIC_ACQUIRE), "object");
            }
    }
    pthread_mutex_unlock(&heap_lock);
    atomic_fetch_add(&rgi_gc_verify_runs, 1);
    atomic_fetch_add(&rgi_gc_verify_failures, verify_fail);
    return verify_fail;
}

/* After a dropped gray push: scan every marked object again, shading its
 * children in place.  Marks only grow, so passes repeat until one completes
 * without dropping a push.  Objects are read only when marked (acquire,
 * pairs with hand_out's release), so a block being zeroed for a new object
 * is never read. */
static void rescan_heap(gwork *w)
{
    do {
        atomic_store(&gray_overflow, 0);
        pthread_mutex_lock(&heap_lock);
        for (gspan *s = allspans; s; s = s->all_next) {
            if (s->type->nptrs == 0)
                continue;
            for (uint32_t wd = 0; wd < s->nwords; wd++)
                for (uint64_t b = effective_mark_word(s, wd); b; b &= b - 1)
                    scan_object(w, s->start + ((size_t)wd * 64 + (size_t)__builtin_ctzll(b)) * s->elem, true);
        }
        pthread_mutex_unlock(&heap_lock);
        drain(w, 0);
    } while (atomic_load(&gray_overflow));
}

/* Every thread other than the caller parked (held parked: T_BUSY) — the heap
 * is quiescent.  Returns false (and claims nothing) otherwise. */
static bool claim_all_parked(gthread *me)
{
    pthread_mutex_lock(&gc_lock);
    gthread *t;
    for (t = threads; t; t = t->next) {
        if (t == me)
            continue;
        int parked = T_PARKED;
        if (!atomic_compare_exchange_strong(&t->state, &parked, T_BUSY))
            break;
    }
    if (t == NULL)
        return true; /* keeps gc_lock */
    for (gthread *u = threads; u != t; u = u->next)
        if (u != me)
            atomic_store_explicit(&u->state, T_PARKED, memory_order_release);
    pthread_mutex_unlock(&gc_lock);
    return false;
}

static void unclaim_all(gthread *me)
{
    for (gthread *u = threads; u; u = u->next)
        if (u != me)
            atomic_store_explicit(&u->state, T_PARKED, memory_order_release);
    pthread_mutex_unlock(&gc_lock);
}

/* ---------------------------------------------------------------------------
 * Accounting and the pacer
 * ------------------------------------------------------------------------- */
static void kick_worker(void);

/* The heap goal is GC_PERCENT past the traced heap (at least 4 MiB): what
 * the last cycle's marking reached, without the objects allocated black
 * while it ran.  Go counts those too, but its assists keep them few; here
 * the collector thread marks beside mutators running at full speed, a
 * cycle allocates black about what it marks, and counting it made each
 * goal twice the allocation of a cycle on top of twice the live heap
 * (binary-trees depth 20: peak RSS 273-317 MiB counting them, 225-249 not,
 * 10% more time; perf/RESULTS.md).  Survivors among them are reached, and
 * counted, by the next cycle.  The cycle starts early enough that the heap reaches the goal about
 * when the cycle ends: goal minus what the mutators allocated during the
 * last cycle, kept between 60% and 95% of the way from marked to goal (the
 * bounds of Go 1.19's trigger ratio). */
/* Will the next cycle be full (as far as the pacer can tell)? */
static inline int next_is_full(void)
{
    return !gen_mode || atomic_load_explicit(&want_full, memory_order_relaxed);
}


static uint64_t trigger_bytes(bool *by_limit, uint64_t *goal_out, uint64_t *ungated)
{
    if (ungated)
        *ungated = UINT64_MAX;
    uint64_t goal = UINT64_MAX;
    uint64_t marked = atomic_load_explicit(&heap_traced, memory_order_relaxed);
    int pct = __atomic_load_n(&rgi_opt.gc_percent, __ATOMIC_RELAXED);
    uint64_t trig = UINT64_MAX;
    if (pct >= 0) {
        goal = marked + marked / 100 * (uint64_t)pct;
        if (goal < MIN_TRIGGER)
            goal = MIN_TRIGGER;
        uint64_t run = goal > marked ? goal - marked : 0;
        uint64_t during = atomic_load_explicit(&cycle_alloc[next_is_full()], memory_order_relaxed);
        trig = goal > during ? goal - during : 0;
        if (trig < marked + run / 10 * 6)
            trig = marked + run / 10 * 6;
        if (trig > marked + run / 100 * 95)
            trig = marked + run / 100 * 95;
    }
    *by_limit = false;
    rgi_page_stats ps;
    rgi_page_read_stats(&ps);
    if (ps.limit >= 0) {
        /* room the limit leaves the heap: its spans, the free pages of the
         * shared heap, and the whole segments still committable under the
         * limit (commits come 2 MiB at a time: measured, a heap of 4
         * segments under a 10 MiB limit with 8.2 MiB committed cannot
         * grow, and the byte count of the room would say 1.8 MiB) */
        uint64_t heap = atomic_load_explicit(&span_bytes, memory_order_relaxed);
        uint64_t segs = atomic_load_explicit(&heap_seg_bytes, memory_order_relaxed);
        uint64_t pages = atomic_load_explicit(&heap_page_bytes, memory_order_relaxed);
        uint64_t left = (uint64_t)ps.limit > ps.committed ? (uint64_t)ps.limit - ps.committed : 0;
        uint64_t room = heap + (segs > pages ? segs - pages : 0) + (left & ~(uint64_t)RGI_SEG_MASK);
        /* start early enough for what the last cycle saw allocated while it
         * ran (a running thread meeting the limit before it handed over its
         * roots cannot wait for the cycle, and the collector thread may
         * not run at once on a busy machine): 1.5x that, at least 10% of
         * the room.  (20% before: a cache whose items fill the heap — the
         * kvcache example — kept a fifth of its limit empty for nothing;
         * the 1.5x term covers heaps that allocate fast.)  A cycle the
         * limit starts is full: its kind's allocation (a minor cycle's,
         * long ago while a heap was built, would keep the margin wide,
         * and measured on the churn, start full cycles back to back). */
        uint64_t during = atomic_load_explicit(&cycle_alloc[1], memory_order_relaxed);
        uint64_t margin = during + during / 2 > room / 10 ? during + during / 2 : room / 10;
        /* and at least a segment: the heap grows 2 MiB at a time, so less
         * is no margin at all (under a 12 MiB limit, room/10 is 1.2 MiB,
         * and tests/gc_limit under ASan failed 1 run in 20 with 7
         * allocations refused, each in the short window in which a cycle
         * has started and the allocating thread has not yet handed over
         * its roots: it cannot wait for that cycle) */
        if (margin < RGI_SEG_SIZE)
            margin = RGI_SEG_SIZE;
        if (margin > room / 2)
            margin = room / 2; /* past that, cycles would run back to back */
        uint64_t lt = room > margin ? room - margin : 0;
        if (ungated)
            *ungated = room > margin / 2 ? room - margin / 2 : 0;
        if (lt < trig) {
            trig = lt;
            *by_limit = true;
        }
        if (lt < goal)
            goal = lt;
    }
    if (goal_out)
        *goal_out = goal;
    return trig;
}

/* Mark work done by a mutator (allocation assist, safepoint step): counted
 * as GC CPU (its wall time: the thread is running, and a CPU-time clock
 * would cost a system call per assist).  What is left gray goes to the
 * global set, where the collector and other threads can take it: a gray
 * object kept in a buffer would make the next termination round dirty. */
static size_t assist(gthread *me, size_t budget)
{
    uint64_t t0 = rgi_now_ns();
    size_t done = shared_drain(&me->gw, budget, MUTATOR_STEP_NS);
    atomic_fetch_add_explicit(&gc_assist_ns, rgi_now_ns() - t0, memory_order_relaxed);
    if (done)
        atomic_fetch_add_explicit(&assist_scanned, done, memory_order_relaxed);
    return done;
}


/* Paced assists, as Go's (Go 1.5 concurrent GC pacer): a thread allocating
 * while marking owes scan work in the ratio of the scan work still expected
 * this cycle (the last cycle's, less what was done) to the heap the goal
 * still leaves, so that marking ends near the goal however fast the
 * mutators allocate.  A thread that finds no gray work asks the collector
 * to share (gray_share) and its debt is forgiven.  It pays in steps of at
 * most MUTATOR_STEP_NS, at most ASSIST_STEPS per call, and carries the rest
 * to its next call: a bound on one allocation's latency, not a pause (no
 * other thread waits on it). */
static void assist_paced(gthread *me, uint64_t bytes)
{
    uint64_t seq = atomic_load_explicit(&cycle_seq, memory_order_relaxed);
    if (me->debt_cycle != seq) {
        me->debt_cycle = seq;
        me->assist_debt = 0;
    }
    uint64_t expect = atomic_load_explicit(&scan_expect, memory_order_relaxed);
    uint64_t done = atomic_load_explicit(&scan_done, memory_order_relaxed);
    uint64_t left = expect > done ? expect - done : 0;
    uint64_t goal = atomic_load_explicit(&next_gc_goal, memory_order_relaxed);
    uint64_t live = atomic_load_explicit(&heap_live, memory_order_relaxed);
    uint64_t runway = goal > live ? goal - live : 0;
    if (runway < ACCOUNT_BYTES || left / runway >= ASSIST_RATIO_MAX)
        me->assist_debt += bytes * ASSIST_RATIO_MAX;
    else
        me->assist_debt += (uint64_t)((double)bytes * (double)left / (double)runway);
    if (me->assist_debt < bytes)
        me->assist_debt = bytes; /* the estimate may be short: half a light assist at least */
    for (int k = 0; k < ASSIST_STEPS && me->assist_debt > 0; k++) {
        if (me->gw.n == 0 && atomic_load_explicit(&gray_nchunks, memory_order_relaxed) == 0) {
            if (!atomic_load_explicit(&gray_wanted, memory_order_relaxed))
                atomic_store_explicit(&gray_wanted, 1, memory_order_relaxed);
            me->assist_debt = 0; /* nothing gray to take: nothing owed */
            break;
        }
        size_t got = assist(me, me->assist_debt < ASSIST_MAX ? (size_t)me->assist_debt : ASSIST_MAX);
        me->assist_debt = got < me->assist_debt ? me->assist_debt - got : 0;
        if (got == 0)
            break;
    }
}

static void account_flush(gthread *me)
{
    if (me->local_bytes == 0 && me->local_objs == 0)
        return;
    atomic_fetch_add_explicit(&heap_live, me->local_bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&st_total_alloc, me->local_bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&st_mallocs, me->local_objs, memory_order_relaxed);
    me->unpaced += me->local_bytes;
    me->local_bytes = 0;
    me->local_objs = 0;
}

/* Starts a cycle when the heap is past the trigger.  Run every
 * ACCOUNT_BYTES a thread allocates, counted across flushes: a thread that
 * parks often (a server between requests) flushes its bytes at each
 * rg_park() long before they reach ACCOUNT_BYTES, and the pacer must look
 * at them all the same — measured: at 20 000 ops/s, parking every
 * millisecond, the trigger was never consulted after the build and every
 * cycle was forced by the ladder at the limit. */
static void pace_check(gthread *me)
{
    me->unpaced = 0;
    int ph = atomic_load_explicit(&phase, memory_order_relaxed);
    if (ph != PH_OFF)
        return;
    bool by_limit;
    uint64_t ungated;
    uint64_t trig = trigger_bytes(&by_limit, NULL, &ungated);
    if (atomic_load_explicit(&heap_live, memory_order_relaxed) < trig)
        return;
    /* GC CPU cap: no death spiral under the limit.  It holds only when
     * the last cycle left the heap past the trigger already (cycles free
     * little: the spiral), and only while the heap keeps clear of the limit
     * (past half the trigger's margin a cycle costs less than a failed
     * allocation). */
    if (by_limit && atomic_load_explicit(&heap_marked, memory_order_relaxed) >= trig &&
        atomic_load_explicit(&heap_live, memory_order_relaxed) < ungated &&
        rgi_now_ns() < atomic_load_explicit(&limit_cycle_gate_ns, memory_order_relaxed))
        return;
    if (by_limit)
        atomic_fetch_add_explicit(&forced_by_limit, 1, memory_order_relaxed);
    kick_worker();
}

/* Every ACCOUNT_BYTES allocated: publish, assist, maybe trigger. */
static RGI_NOINLINE void account_slow(gthread *me)
{
    uint64_t bytes = me->local_bytes;
    account_flush(me);
    if (!tls_in_gc && !me->in_finalizer &&
        atomic_load_explicit(&me->state, memory_order_relaxed) == T_RUNNING &&
        (atomic_load_explicit(&hs_word, memory_order_relaxed) >> 8) != atomic_load_explicit(&me->ack_seq, memory_order_relaxed))
        ack_pending(me, false); /* START, TERM, SWEEP need no safepoint */
    int ph = atomic_load_explicit(&phase, memory_order_relaxed);
    if (alloc_black_now(me, ph) && !tls_in_gc) {
        if (assists_paced()) {
            assist_paced(me, bytes);
            return;
        }
        /* light: scan work in proportion to what we allocated, bounded */
        size_t budget = (size_t)bytes * 2;
        if (budget > ASSIST_MAX)
            budget = ASSIST_MAX;
        assist(me, budget);
        return;
    }
    pace_check(me);
}

/* ---------------------------------------------------------------------------
 * The cycle
 * ------------------------------------------------------------------------- */
typedef struct cycle_info {
    uint64_t t_start, t_mark, t_term, t_end, cpu0, cpu_mark, cpu_term, cpu_end;
    uint64_t heap_before, heap_marked_bytes, heap_after, goal;
    unsigned rounds, threads;
    bool forced_limit, full;
    size_t cards;
    const char *why;
} cycle_info;

/* Bytes of marked objects (heap lock): the heap_marked of gctrace. */
static uint64_t marked_bytes_now(void)
{
    uint64_t b = 0;
    pthread_mutex_lock(&heap_lock);
    for (gspan *s = allspans; s; s = s->all_next) {
        uint64_t n = 0;
        for (uint32_t w = 0; w < s->nwords; w++)
            n += (uint64_t)__builtin_popcountll(mark_word(s, w));
        b += n * (s->large ? s->obj_bytes : s->elem);
    }
    pthread_mutex_unlock(&heap_lock);
    return b;
}

/* GCCPUFraction as Go defines it: the collector's CPU time (the cycle
 * driver's thread CPU, helper mark threads' thread CPU, mutators' assist and
 * safepoint mark steps) over the CPU time available since start (wall time
 * times the CPUs the process may run on). */
static double cpu_fraction(uint64_t now)
{
    uint64_t wall = start_ns && now > start_ns ? now - start_ns : 0;
    if (wall == 0)
        return 0;
    double f = (double)(atomic_load(&gc_cpu_ns) + atomic_load(&gc_assist_ns)) / ((double)wall * (double)ncpu);
    return f > 1 ? 1 : f;
}

static void set_phase_locked(int ph)
{
    atomic_store_explicit(&phase, ph, memory_order_seq_cst);
}

/* Does the cycle's driver mark?  With RG_GC_THREADS=0 marking is left to
 * assists and safepoint steps, unless nobody can do them: the driver is
 * rg_gc()'s caller (blocked in the cycle anyway), or no attached thread is
 * running. */
static bool driver_marks(gthread *caller)
{
    if (caller != NULL || atomic_load_explicit(&mark_threads, memory_order_relaxed) > 0)
        return true;
    bool running = false;
    pthread_mutex_lock(&gc_lock);
    for (gthread *t = threads; t && !running; t = t->next)
        running = atomic_load_explicit(&t->state, memory_order_relaxed) == T_RUNNING;
    pthread_mutex_unlock(&gc_lock);
    return !running;
}

/* Marks until marking is quiescent: the driver's buffer and the gray set
 * empty and no drain in flight (an assist, a safepoint step or a helper
 * scanning gray work it took; see shared_drain), or, the driver not
 * marking, waits for the mutators to get there.  Termination rounds start
 * only from here: a round begun while another thread still scans is dirty
 * by construction (that scan shades), and it lasts until every running
 * thread acknowledged it.  On the 1 GiB churn nearly every round used to
 * begin with an assist in flight (the gray set looks empty whenever the
 * few items that hold the rest of the heap are in someone's buffer), so
 * most of the marking ran inside 3,500-5,700 dirty rounds per cycle, each
 * an acknowledgement per thread.  Waiting costs little: a mutator's drain
 * ends within MUTATOR_STEP_NS and a helper's within its byte budget, and
 * each flushes what it left before it retracts its count; the driver
 * drains that meanwhile.  Gray work can still sit in a mutator's own
 * buffer (barrier shades since its last step): the first round flushes
 * it. */
static void mark_until_empty(gwork *w, gthread *caller)
{
    uint64_t backoff = 20000;
    for (;;) {
        bool marks = driver_marks(caller);
        if (marks)
            drain(w, 0);
        else
            flush_gray(w);
        /* seq_cst, drains in flight first: a drain that ended before this
         * load flushed its leftovers before its decrement (shared_drain),
         * so the gray set read next holds them.  Only a heuristic: what
         * termination rests on is the round's own check (run_cycle). */
        if (atomic_load_explicit(&draining, memory_order_seq_cst) == 0 &&
            atomic_load_explicit(&gray_nchunks, memory_order_seq_cst) == 0)
            return;
        /* relaxed: a hint; drain() takes the gray lock */
        if (marks && atomic_load_explicit(&gray_nchunks, memory_order_relaxed)) {
            backoff = 20000;
            continue;
        }
        /* Wait for the drains in flight.  A marking driver polls every
         * 20 us (plus the timer slack), as a handshake does while acks come
         * in, and drains what they flushed: backing off to 1 ms made the
         * 12 MiB limit test's mark phases 40% longer under load and failed
         * allocations in bursts, and to 250 us still left them longer
         * than at 20 us.  A driver that does not mark backs off to 1 ms,
         * and the last drain to end with the gray set empty wakes it
         * (shared_drain): the one moment it must not sleep through.  No
         * wake for a marking driver: polling this often it would gain
         * little, and it could cost a mutator a futex call at nearly
         * every assist (the gray set is often empty between two). */
        /* a marking driver out of work asks a drain in flight to share
         * its buffer (gray_share), as a paced assist that finds none does
         * (light assists are short: it takes their rest when they end) */
        if (marks && assists_paced() && !atomic_load_explicit(&gray_wanted, memory_order_relaxed))
            atomic_store_explicit(&gray_wanted, 1, memory_order_relaxed);
        pthread_mutex_lock(&gc_lock);
        /* seq_cst: the Dekker pair with shared_drain's decrement */
        if (!marks)
            atomic_store_explicit(&quiet_waiter, 1, memory_order_seq_cst);
        if (atomic_load_explicit(&draining, memory_order_seq_cst) != 0 ||
            atomic_load_explicit(&gray_nchunks, memory_order_seq_cst) != 0)
            rgi_cond_wait_ns(&gc_cond, &gc_lock, backoff);
        atomic_store_explicit(&quiet_waiter, 0, memory_order_relaxed);
        pthread_mutex_unlock(&gc_lock);
        if (!marks && backoff < 1000000)
            backoff *= 2;
    }
}

/* A helper mark thread: drains the global gray set while marking is open.
 * Helper `id` (1-based) works only while mark_threads > id, so lowering
 * RG_GC_THREADS at run time idles the extra ones. */
static void *helper_main(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    gwork *w = rgi_arena_malloc(sizeof *w);
    if (w == NULL) {
        atomic_fetch_sub(&helpers_started, 1);
        return NULL;
    }
    memset(w, 0, sizeof *w); /* n 0, page cache off */
    tls_in_gc = true;
    for (;;) {
        pthread_mutex_lock(&gc_lock);
        while (!(atomic_load(&mark_open) && atomic_load(&gray_nchunks) &&
                 (unsigned)atomic_load(&mark_threads) > id))
            rgi_cond_wait_ns(&mark_cond, &gc_lock, atomic_load(&mark_open) ? 200000 : 100000000);
        pthread_mutex_unlock(&gc_lock);
        uint64_t c0 = thread_cpu_ns();
        while (atomic_load(&mark_open) && atomic_load(&gray_nchunks))
            shared_drain(w, (size_t)256 << 10, 0);
        atomic_fetch_add_explicit(&gc_cpu_ns, thread_cpu_ns() - c0, memory_order_relaxed);
    }
    return NULL;
}

/* Starts helpers up to RG_GC_THREADS - 1 (the collector thread is the
 * first mark thread). */
static void start_helpers(void)
{
    int want = atomic_load(&mark_threads) - 1;
    while (atomic_load(&helpers_started) < want) {
        int id = atomic_fetch_add(&helpers_started, 1) + 1;
        if (id > want) {
            atomic_fetch_sub(&helpers_started, 1);
            break;
        }
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &at, helper_main, (void *)(uintptr_t)id);
        pthread_attr_destroy(&at);
        if (rc != 0) {
            atomic_fetch_sub(&helpers_started, 1);
            break;
        }
    }
}

/* After a cycle's sweep: idle segments the heap will not need before the
 * next cycle ends go back to the OS now, not after the scavenger's delay
 * (Go's scavenger likewise retains about the heap goal plus 10%).  Until
 * the next cycle ends the heap grows from its swept spans to the goal and
 * then by what the mutators allocate while that cycle runs, which it
 * sweeps only at its end: as high as the pages the last cycle had out at
 * its peak, or the goal plus the last cycle's allocation (without a memory
 * limit; under one the goal is already the limit's room).  The committed,
 * non-idle memory beyond the spans (free pages of segments in use,
 * metadata, other allocators) serves first, and idle segments are kept
 * only for what that leaves, plus 10%.  On binary-trees the idle segments
 * were a third of the peak RSS; keeping only the goal released memory
 * that the next cycle faulted back, 14 to 694 MiB a run at depth 20 with
 * the timing of cycles, and the allocating thread's system time (the
 * kernel zeroing fresh 2 MiB pages, ~3 ms each here) ranged 0.15-0.84 s;
 * keeping the last peak, 0.15-0.27 s with about the same peak RSS. */
static void release_idle_past_goal(uint64_t goal)
{
    if (goal == UINT64_MAX)
        return;
    uint64_t peak = atomic_exchange_explicit(&recent_page_peak, atomic_load(&heap_page_bytes), memory_order_relaxed);
    rgi_page_stats ps;
    rgi_page_read_stats(&ps);
    if (ps.limit < 0) {
        /* under a limit the goal is already the room the limit leaves, and
         * idle segments kept would only shrink the trigger's room */
        uint64_t during = atomic_load_explicit(&cycle_alloc[next_is_full()], memory_order_relaxed);
        goal = goal > UINT64_MAX - during ? UINT64_MAX : goal + during;
        if (peak > goal)
            goal = peak;
    }
    /* The goal moves by 2x from one cycle to the next when what a cycle
     * allocates black varies (binary-trees: 150 -> 290 -> 170 MB), and
     * releasing past each low goal only to fault the same memory back in
     * at the next high one cost binary-trees 150 MB of page zeroing and
     * about 10% of its time at depth 20 for no lower peak.  So the goal
     * kept is the highest recent one, halved for every whole second since
     * it was set; what stays idle longer, the scavenger returns (its
     * delay). */
    static uint64_t kept_goal, kept_ns; /* cycle lock */
    uint64_t now = rgi_now_ns(), dt = now - kept_ns;
    uint64_t decayed = dt >= 8000000000ull ? 0 : kept_goal >> (dt / 1000000000ull);
    if (decayed > goal) {
        goal = decayed;
    } else {
        kept_goal = goal;
        kept_ns = now;
    }
    if (ps.idle == 0)
        return;
    uint64_t spans = atomic_load_explicit(&span_bytes, memory_order_relaxed);
    uint64_t active = ps.committed > ps.idle ? ps.committed - ps.idle : 0;
    uint64_t room = active > spans ? active - spans : 0;
    uint64_t need = goal > spans ? goal - spans : 0;
    need = need > room ? need - room : 0;
    need += goal / 10;
    if (ps.idle > need)
        rgi_page_release_idle(ps.idle - need);
}

static gwork cw; /* the cycle driver's gray buffer (cycle lock) */

/* One cycle of the kind asked for (every cycle is full when the
 * generational mode is off). */
static void run_cycle(const char *why, gthread *caller, int kind)
{
    cycle_info ci = {0};
    pthread_mutex_lock(&cycle_lock);
    bool was = tls_in_gc;
    tls_in_gc = true;
    ci.why = why;
    ci.t_start = rgi_now_ns();
    ci.cpu0 = thread_cpu_ns();
    ci.heap_before = atomic_load(&heap_live);
    uint64_t alloc0 = atomic_load(&st_total_alloc), freed0 = atomic_load(&st_freed_bytes);
    atomic_store(&pause_max_cycle, 0);
    atomic_store(&pause_clean_max_cycle, 0);
    /* statistics: a late ack of the last cycle may land in either */
    for (int k = 0; k <= HS_SWEEP; k++) {
        atomic_store_explicit(&acyc.n[k], 0, memory_order_relaxed);
        atomic_store_explicit(&acyc.max[k], 0, memory_order_relaxed);
        for (int p = 0; p < ACK_NPARTS; p++)
            atomic_store_explicit(&acyc.part_max[k][p], 0, memory_order_relaxed);
    }
    atomic_store_explicit(&acyc.preempted, 0, memory_order_relaxed);
    atomic_store_explicit(&acyc.blocked, 0, memory_order_relaxed);
    atomic_store_explicit(&acyc.clean_max, 0, memory_order_relaxed);
    atomic_store_explicit(&acyc.preempted_max, 0, memory_order_relaxed);
    nwaited_tids = 0;

    start_helpers();
    sweep_all(); /* the previous cycle's sweep must be complete */
    ci.full = !gen_mode || kind == CY_FULL || (kind == CY_AUTO && atomic_load(&want_full));
    atomic_store_explicit(&shade_value, ci.full ? MARK_TRACED : MARK_YOUNG, memory_order_relaxed);
    atomic_store_explicit(&scan_expect, atomic_load_explicit(&scan_last[ci.full], memory_order_relaxed),
                          memory_order_relaxed);
    {
        rgi_page_stats ps;
        rgi_page_read_stats(&ps);
        atomic_store_explicit(&paced_now, assist_mode == ASSIST_PACED || (assist_mode == ASSIST_AUTO && ps.limit < 0),
                              memory_order_relaxed);
    }
    if (gen_mode && ci.full)
        marks_clear_all();
    /* roots_started first: a thread joining from here on must not start
     * black before this cycle's marking opens (alloc_black_now) */
    pthread_mutex_lock(&gc_lock);
    roots_started = false;
    ci.threads = (unsigned)nthreads;
    pthread_mutex_unlock(&gc_lock);
    atomic_store_explicit(&scan_done, 0, memory_order_relaxed);
    atomic_fetch_add(&cycle_seq, 1); /* published with START (release) */
    pthread_mutex_lock(&heap_lock);
    set_phase_locked(PH_MARK);
    pthread_mutex_unlock(&heap_lock);
    /* seq_cst store, then the handshake's release publication: a thread that
     * acknowledges START (acquire) has the barrier on */
    __atomic_store_n(&rg_gc_barrier_on, 1, __ATOMIC_SEQ_CST);
    handshake(HS_START, NULL);
    /* everyone runs the barrier: objects may turn black from now on.  The
     * old objects on marked cards are scanned first, before threads
     * allocate black: what a minor cycle allocates black stays old until
     * the next full cycle, so the shorter that window the better */
    if (!ci.full)
        ci.cards = scan_cards(&cw);
    if (gen_mode && ci.full)
        cards_clear(); /* what is stored from here on marks them for the next cycle */
    pthread_mutex_lock(&gc_lock);
    atomic_store(&black_bytes, 0); /* black allocation starts now */
    atomic_store(&mark_open, 1);
    pthread_cond_broadcast(&mark_cond);
    pthread_mutex_unlock(&gc_lock);
    scan_collector_roots(&cw); /* before ROOTS: helpers mark meanwhile */
    flush_gray(&cw);
    handshake(HS_ROOTS, driver_marks(caller) ? &cw : NULL);
    scan_collector_roots(&cw);
    ci.t_mark = rgi_now_ns();
    ci.cpu_mark = thread_cpu_ns();
    bool fin_done = false;
    for (;;) {
        mark_until_empty(&cw, caller);
        atomic_store_explicit(&dirty, 0, memory_order_seq_cst);
        ci.rounds++;
        atomic_fetch_add_explicit(&term_rounds, 1, memory_order_relaxed); /* statistics */
        handshake(HS_TERM, driver_marks(caller) ? &cw : NULL);
        scan_collector_roots(&cw);
        if (atomic_load(&gray_overflow)) {
            atomic_store(&dirty, 1);
            rescan_heap(&cw);
        }
        mark_until_empty(&cw, caller);
        /* order: gray set, then drains in flight, then dirty (see
         * shared_drain) */
        if (cw.n || atomic_load_explicit(&gray_nchunks, memory_order_seq_cst) ||
            atomic_load_explicit(&draining, memory_order_seq_cst) ||
            atomic_load_explicit(&dirty, memory_order_seq_cst))
            continue;
        if (!fin_done) {
            fin_done = true;
            /* another round only when it queued (and shaded) something */
            if (fin_pass(&cw))
                continue;
        }
        break;
    }
    ci.t_term = rgi_now_ns();
    ci.cpu_term = thread_cpu_ns();
    atomic_store_explicit(&scan_last[ci.full], atomic_load_explicit(&scan_done, memory_order_relaxed), memory_order_relaxed);
    /* Marking is over.  Verify while everything is still marked. */
    if (RG_DEBUG_CHECKS || atomic_load(&rgi_gc_verify_next)) {
        if (claim_all_parked(caller)) {
            atomic_store(&rgi_gc_verify_next, 0);
            verify_heap();
            unclaim_all(caller);
        }
    }
    /* Barrier off first: marking is complete, so writes need no shading;
     * allocation stays black until PH_DONE.  A barrier already past its
     * check may still shade ("late shade"): only objects allocated during
     * PH_DONE can be white then; they are pushed gray, flushed at the SWEEP
     * acknowledgement and scanned in the next cycle, so a late mark is never
     * a mark without a scan. */
    atomic_store(&mark_open, 0);
    __atomic_store_n(&rg_gc_barrier_on, 0, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&heap_lock);
    set_phase_locked(PH_DONE);
    pthread_mutex_unlock(&heap_lock);
    handshake(HS_SWEEP, NULL);
    if (rgi_opt.gctrace)
        ci.heap_marked_bytes = marked_bytes_now(); /* a walk of every span: only for the trace */
    /* Every thread is past any barrier it began while marking (its
     * acknowledgement came after), so no mark bit changes from here on. */
    pthread_mutex_lock(&heap_lock);
    uint32_t g = atomic_load_explicit(&sweepgen_g, memory_order_relaxed) + 2;
    atomic_store_explicit(&sweepgen_g, g, memory_order_relaxed);
    for (tclass *tc = tclasses; tc; tc = tc->next_all) {
        /* spans of the old generation are now unswept; spans made during
         * PH_DONE are already on the new one and stay where they are */
        gspan *lists[2] = {tc->partial, tc->full};
        for (int l = 0; l < 2; l++)
            for (gspan *s = lists[l], *nx; s; s = nx) {
                nx = s->next;
                if (atomic_load_explicit(&s->sweepgen, memory_order_relaxed) == g - 2) {
                    list_unlink(tc, s);
                    list_push(&tc->unswept, s, L_UNSWEPT);
                }
            }
    }
    set_phase_locked(PH_OFF);
    pthread_mutex_unlock(&heap_lock);
    sweep_all();
    ci.t_end = rgi_now_ns();
    ci.cpu_end = thread_cpu_ns();
    uint64_t live = atomic_load(&heap_live);
    ci.heap_after = live;
    atomic_store(&cycle_alloc[ci.full], atomic_load(&st_total_alloc) - alloc0);
    atomic_store(&heap_marked, live);
    /* the goal's base: what marking reached, not what was allocated black
     * while it ran (trigger_bytes) */
    uint64_t blk = atomic_load(&black_bytes);
    if (ci.full) {
        atomic_store(&heap_traced, live > blk ? live - blk : 0);
        atomic_store(&full_base, atomic_load(&heap_traced));
    } else {
        /* a minor cycle's survivors include old objects that died: the
         * goal keeps the last full cycle's base (gc.h rule 9) */
        atomic_store(&heap_traced, atomic_load(&full_base));
    }
    if (gen_mode) {
        if (ci.full) {
            atomic_store(&want_full, 0);
            atomic_fetch_add(&full_done, 1);
        } else {
            atomic_fetch_add_explicit(&minor_done, 1, memory_order_relaxed);
        }
        /* Minor cycles promote nothing: the young objects they trace are
         * traced again by the next one.  The next cycle is full (and
         * promotes them) once the minor cycles since the last full one
         * traced as much again as that one did (the cost of a full
         * cycle), or when the heap a minor cycle left is past the goal.
         * A minor cycle that freed less than the young objects it kept
         * (a heap being built: a cache filling) sends the next ones to
         * full cycles, 1, 2, 4 ... up to 64 of them before another minor
         * one is tried. */
        static uint64_t retraced;         /* cycle lock */
        static unsigned full_left, backoff; /* cycle lock */
        uint64_t base = atomic_load(&full_base);
        uint64_t traced = live - (live > blk ? blk : live);
        uint64_t young = traced > base ? traced - base : 0;
        if (ci.full) {
            retraced = 0;
            if (full_left > 0) {
                full_left--;
                atomic_store(&want_full, 1);
            }
        } else {
            retraced += young;
            if (atomic_load(&st_freed_bytes) - freed0 < young) {
                backoff = backoff ? (backoff < 64 ? 2 * backoff : 64) : 1;
                full_left = backoff - 1;
                atomic_store(&want_full, 1);
            } else {
                backoff = 0;
            }
            if (retraced > (base > MIN_TRIGGER ? base : MIN_TRIGGER) || live > atomic_load(&next_gc_goal))
                atomic_store(&want_full, 1);
        }
    }
    bool bl;
    trigger_bytes(&bl, &ci.goal, NULL);
    ci.forced_limit = bl;
    atomic_store(&next_gc_goal, ci.goal);
    release_idle_past_goal(ci.goal);

    /* sweep may have queued finalizers */
    pthread_mutex_lock(&fin_lock);
    if (finq_spans)
        atomic_store_explicit(&fin_pending, 1, memory_order_relaxed);
    pthread_mutex_unlock(&fin_lock);

    uint64_t n = atomic_load(&cycles_done);
    uint64_t pause = atomic_load(&pause_max_cycle);
    atomic_store(&pause_ring[n % 256], pause);
    atomic_store(&pause_clean_ring[n % 256], atomic_load(&pause_clean_max_cycle));
    atomic_fetch_add(&pause_total, pause);
    uint64_t cpu = ci.cpu_end - ci.cpu0;
    atomic_fetch_add(&gc_cpu_ns, cpu);
    /* limit-forced cycles may start again only after as much wall time as
     * this one took CPU: GC CPU under the limit stays at or below 50% */
    atomic_store(&limit_cycle_gate_ns, ci.t_end + cpu);
    atomic_store(&last_gc_ns, (uint64_t)time(NULL) * 1000000000ull);
    if (rgi_pool_epoch)
        rgi_pool_epoch(); /* each cycle ends a pool epoch */
    if (rgi_opt.gctrace) {
        char wt[96] = "";
        size_t o = 0;
        for (unsigned i = 0; i < nwaited_tids && o < sizeof wt - 16; i++)
            o += (size_t)snprintf(wt + o, sizeof wt - o, "%s%d", i ? "," : ", waited on tid ", (int)waited_tids[i]);
        uint64_t wall = ci.t_end - start_ns;
        double frac = cpu_fraction(ci.t_end);
        char kstr[48];
        if (ci.full)
            snprintf(kstr, sizeof kstr, "full");
        else
            snprintf(kstr, sizeof kstr, "minor (%zu cards)", ci.cards);
        rgi_page_stats ps;
        rgi_page_read_stats(&ps);
        char lim[32];
        if (ps.limit < 0)
            snprintf(lim, sizeof lim, "off");
        else
            snprintf(lim, sizeof lim, "%.1f MB", (double)ps.limit / 1e6);
        fprintf(stderr,
                "gc %llu @%.3fs %.0f%%: %.3f+%.3f+%.3f ms wall, %.3f+%.3f+%.3f ms cpu (start+mark+sweep; collector thread), "
                "%.2f->%.2f->%.2f MB heap (before->marked->after sweep), %.2f MB traced, %.2f MB goal, limit %s, %u threads%s, %s, %u rounds, max pause %.1f us%s%s%s\n",
                (unsigned long long)n + 1, (double)wall / 1e9, frac * 100,
                (double)(ci.t_mark - ci.t_start) / 1e6, (double)(ci.t_term - ci.t_mark) / 1e6,
                (double)(ci.t_end - ci.t_term) / 1e6, (double)(ci.cpu_mark - ci.cpu0) / 1e6,
                (double)(ci.cpu_term - ci.cpu_mark) / 1e6, (double)(ci.cpu_end - ci.cpu_term) / 1e6,
                (double)ci.heap_before / 1e6, (double)ci.heap_marked_bytes / 1e6, (double)ci.heap_after / 1e6,
                (double)atomic_load(&heap_traced) / 1e6, (double)ci.goal / 1e6, lim, ci.threads, wt, kstr, ci.rounds, (double)pause / 1e3, ci.why ? " (" : "", ci.why ? ci.why : "",
                ci.why ? ")" : "");
        /* the acknowledgements: per handshake kind the count, the longest
         * and the longest of each part; then how many were preempted or
         * blocked, and the longest with no context switch */
        static const char *const hs_name[] = {"", "start", "roots", "term", "sweep"};
        char ab[512];
        size_t ao = 0;
        for (int k = HS_START; k <= HS_SWEEP && ao < sizeof ab - 96; k++) {
            uint64_t cnt = atomic_load_explicit(&acyc.n[k], memory_order_relaxed);
            if (cnt == 0)
                continue;
            ao += (size_t)snprintf(ab + ao, sizeof ab - ao, " %s %llu max %.1f (cache %.1f roots %.1f flush %.1f)",
                                   hs_name[k], (unsigned long long)cnt, (double)atomic_load(&acyc.max[k]) / 1e3,
                                   (double)atomic_load(&acyc.part_max[k][ACK_CACHE]) / 1e3,
                                   (double)atomic_load(&acyc.part_max[k][ACK_ROOTS]) / 1e3,
                                   (double)atomic_load(&acyc.part_max[k][ACK_FLUSH]) / 1e3);
        }
        fprintf(stderr, "gc %llu acks (us):%s; preempted %llu (max %.1f), blocked %llu, clean max %.1f; "
                "spans %.2f MB, heap segments %.2f MB (pages out %.2f, peak %.2f), committed %.2f MB (idle %.2f)\n",
                (unsigned long long)n + 1, ab, (unsigned long long)atomic_load(&acyc.preempted),
                (double)atomic_load(&acyc.preempted_max) / 1e3, (unsigned long long)atomic_load(&acyc.blocked),
                (double)atomic_load(&acyc.clean_max) / 1e3, (double)atomic_load(&span_bytes) / 1e6,
                (double)atomic_load(&heap_seg_bytes) / 1e6, (double)atomic_load(&heap_page_bytes) / 1e6, (double)atomic_load(&heap_page_peak) / 1e6, (double)ps.committed / 1e6, (double)ps.idle / 1e6);
    }
    atomic_store(&cycles_done, n + 1);
    tls_in_gc = was;
    pthread_mutex_unlock(&cycle_lock);
    pthread_mutex_lock(&gc_lock);
    pthread_cond_broadcast(&gc_cond);
    pthread_mutex_unlock(&gc_lock);
}

/* ---------------------------------------------------------------------------
 * The background collector thread
 * ------------------------------------------------------------------------- */
static void *worker_main(void *arg)
{
    (void)arg;
    tls_in_gc = true;
    for (;;) {
        pthread_mutex_lock(&gc_lock);
        while (!atomic_load(&worker_kick))
            pthread_cond_wait(&gc_cond, &gc_lock);
        atomic_store(&worker_kick, 0);
        pthread_mutex_unlock(&gc_lock);
        bool bl, forced = atomic_exchange(&worker_force, 0);
        uint64_t trig = trigger_bytes(&bl, NULL, NULL);
        /* a kick may be stale (rg_gc ran meanwhile, or pacing was turned
         * off): collect only if the heap is still past the trigger */
        if (!forced && atomic_load_explicit(&heap_live, memory_order_relaxed) < trig)
            continue;
        run_cycle(forced ? "forced by the limit ladder" : bl ? "forced by the memory limit" : NULL, NULL, forced || bl ? CY_FULL : CY_AUTO);
    }
    return NULL;
}

static void kick_worker(void)
{
    if (atomic_load_explicit(&worker_kick, memory_order_relaxed))
        return;
    bool f = false;
    if (!atomic_load(&worker_started) && atomic_compare_exchange_strong(&worker_started, &f, true)) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &at, worker_main, NULL) != 0)
            atomic_store(&worker_started, false);
        pthread_attr_destroy(&at);
    }
    pthread_mutex_lock(&gc_lock);
    atomic_store(&worker_kick, 1);
    pthread_cond_broadcast(&gc_cond);
    pthread_mutex_unlock(&gc_lock);
}

/* ---------------------------------------------------------------------------
 * rg_gc, the limit rung, init, stats
 * ------------------------------------------------------------------------- */
static void collect(int kind)
{
    gthread *me = self();
    if (me == NULL || me->in_finalizer)
        return;
    bool running = atomic_load_explicit(&me->state, memory_order_relaxed) == T_RUNNING;
    if (running)
        rg_park(); /* rg_gc is a safepoint: we do not wait on our own ack */
    run_cycle(NULL, me, kind);
    if (running)
        rg_unpark();
    if (atomic_load_explicit(&fin_pending, memory_order_relaxed) && !tls_in_safepoint) {
        tls_in_safepoint = true;
        run_finalizers(me);
        tls_in_safepoint = false;
    }
}

void rg_gc(void)
{
    collect(CY_FULL);
}

/* The RGI_PRESSURE_GC rung.  It sweeps what the last cycle found dead,
 * gives the shared heap's empty segments back to the page layer, and asks
 * for a cycle, then waits for it (bounded by the rung's timeout) when
 * the cycle can finish without this thread reaching a safepoint: the thread
 * is parked or not attached, or it is running but has handed over its roots
 * in the cycle now marking, or the cycle is past marking (ack_pending: every
 * later handshake may be
 * acknowledged in an allocation, which it does while it waits, with assist
 * work).  A running thread whose roots are not handed over holds locals the
 * collector cannot see, so no cycle can finish here; it returns what the
 * sweep freed (the limit trigger starts cycles early so that this is rare). */
static size_t pressure(size_t need, void *arg)
{
    (void)need;
    (void)arg;
    if (tls_in_gc)
        return 0;
    size_t freed = sweep_all();
    freed += heap_pages_trim();
    gthread *me = tls_me;
    bool running = me != NULL && atomic_load_explicit(&me->state, memory_order_relaxed) == T_RUNNING;
    int ph = atomic_load_explicit(&phase, memory_order_relaxed);
    /* a running thread may wait for the cycle only once it handed its roots
     * over in it (the cycle waits for that, at a safepoint) */
    bool can_wait = !running || (!me->in_finalizer &&
                                 ((ph == PH_MARK && me->roots_cycle == atomic_load_explicit(&cycle_seq, memory_order_relaxed)) ||
                                  ph == PH_DONE));
    /* a full cycle: a minor one frees no old object that died */
    uint64_t f0 = atomic_load(&full_done);
    atomic_store(&want_full, 1);
    atomic_fetch_add_explicit(&forced_by_limit, 1, memory_order_relaxed);
    atomic_store(&worker_force, 1);
    kick_worker();
    if (!can_wait)
        return freed;
    uint64_t deadline = rgi_now_ns() + 200000000ull; /* the rung's timeout */
    while (atomic_load(&full_done) < f0 + 1 && rgi_now_ns() < deadline) {
        if (running) {
            if ((atomic_load_explicit(&hs_word, memory_order_acquire) >> 8) != atomic_load_explicit(&me->ack_seq, memory_order_relaxed))
                ack_pending(me, false);
            if (atomic_load_explicit(&phase, memory_order_relaxed) == PH_MARK && me->black)
                assist(me, ASSIST_MAX);
        }
        pthread_mutex_lock(&gc_lock);
        if (atomic_load(&full_done) < f0 + 1)
            rgi_cond_wait_ns(&gc_cond, &gc_lock, running ? 200000 : 2000000);
        pthread_mutex_unlock(&gc_lock);
    }
    return freed + sweep_all();
}

bool rgi_gc_object_check(const void *obj)
{
    gspan *s = span_of(obj);
    if (s == NULL)
        return false;
    long i = block_index(s, obj);
    if (i < 0 || s->start + (size_t)i * s->elem != (const char *)obj)
        return false;
    /* a pin is a root store: while marking, shade it like the barrier */
    if (__atomic_load_n(&rg_gc_barrier_on, __ATOMIC_RELAXED)) {
        gthread *me = self();
        if (me)
            shade(&me->gw, obj);
    }
    return true;
}

int rgi_gc_is_marked(const void *obj)
{
    gspan *s = span_of(obj);
    long i = s ? block_index(s, obj) : -1;
    if (i < 0)
        return -1;
    return (int)((effective_mark_word(s, (uint32_t)i >> 6) >> (i & 63)) & 1);
}

unsigned rgi_gc_verify_now(void)
{
    return verify_heap();
}

uint64_t rgi_gc_cycles(void)
{
    return atomic_load(&cycles_done);
}

bool rgi_gc_collect(bool full)
{
    collect(full ? CY_FULL : CY_MINOR);
    return gen_mode;
}

uint64_t rgi_gc_minor_cycles(void)
{
    return atomic_load(&minor_done);
}

/* RG_GC_THREADS: a count 0..RG_GC_THREADS_MAX; anything else warns and
 * keeps the default. */
static int gc_threads_default(void)
{
    return ncpu >= 8 ? ncpu / 4 : 1; /* Go's 25% of the CPUs, at least one */
}

static void gc_threads_from_env(void)
{
    int n = gc_threads_default();
    const char *v = getenv("RG_GC_THREADS");
    if (v != NULL) {
        char *end;
        long x = strtol(v, &end, 10);
        if (*v && *end == '\0' && x >= 0 && x <= RG_GC_THREADS_MAX)
            n = (int)x;
        else
            fprintf(stderr, "regio: ignoring RG_GC_THREADS=\"%s\" (want 0..%d)\n", v, RG_GC_THREADS_MAX);
    }
    int unset = -1;
    atomic_compare_exchange_strong(&mark_threads, &unset, n); /* rg_set_gc_threads may have won */
}

/* RG_GC_ASSIST: "auto" (the default: paced without a memory limit,
 * light under one), "paced" or "light"; anything else warns and keeps the
 * default. */
static void gc_assist_from_env(void)
{
    const char *v = getenv("RG_GC_ASSIST");
    if (v == NULL || strcmp(v, "auto") == 0)
        assist_mode = ASSIST_AUTO;
    else if (strcmp(v, "light") == 0)
        assist_mode = ASSIST_LIGHT;
    else if (strcmp(v, "paced") == 0)
        assist_mode = ASSIST_PACED;
    else
        fprintf(stderr, "regio: ignoring RG_GC_ASSIST=\"%s\" (want auto, light or paced)\n", v);
}

/* RG_GC_GEN: the generational mode (gc.h rule 9), on unless "0" or "off".
 * Its card table is a byte per card of the page layer's reservation,
 * mapped without backing: pages appear as the mutators mark cards. */
static void gen_from_env(void)
{
    const char *v = getenv("RG_GC_GEN");
    if (v && strcmp(v, "0") != 0 && strcmp(v, "off") != 0 && strcmp(v, "1") != 0 && strcmp(v, "on") != 0)
        fprintf(stderr, "regio: ignoring RG_GC_GEN=\"%s\" (want 1/on or 0/off)\n", v);
    if (v && (strcmp(v, "0") == 0 || strcmp(v, "off") == 0))
        return;
    char *base;
    size_t len;
    rgi_page_range(&base, &len);
    size_t n = len >> RG_GC_CARD_SHIFT;
    if (n == 0)
        return;
    void *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return; /* every cycle full, as with RG_GC_GEN=0 */
    rg_gc_card_table.map = m;
    rg_gc_card_table.lo = (uintptr_t)base;
    rg_gc_card_table.n = n;
    gen_mode = true;
    atomic_store(&want_full, 1);
}

static void gc_atfork_prepare(void);
static void gc_atfork_parent(void);
static void gc_atfork_child(void);

static void gc_init_once(void)
{
    start_ns = rgi_now_ns();
    poisoning = rgi_poisoning();
    cpu_set_t cs;
    ncpu = sched_getaffinity(0, sizeof cs, &cs) == 0 ? CPU_COUNT(&cs) : 1;
    if (ncpu < 1)
        ncpu = 1;
    gc_threads_from_env();
    gc_assist_from_env();
    gen_from_env();
    pthread_key_create(&thread_key, thread_exit);
    gc_pages = rgi_arena_new_detached(); /* NULL: every heap allocation fails with ENOMEM */
    rgi_pressure_register(RGI_PRESSURE_GC, pressure, NULL);
    __atomic_store_n(&rgi_gc_is_object, rgi_gc_object_check, __ATOMIC_RELEASE);
    /* registered after the page, arena and profile layers' handlers, so
     * ours prepare first and run last in the child: the collector's locks
     * are taken before theirs, the order in which the collector nests them
     * (a gray chunk is allocated under the roots or heap lock) */
    rgi_prof_atfork_init();
    pthread_atfork(gc_atfork_prepare, gc_atfork_parent, gc_atfork_child);
}

int rg_set_gc_threads(int n)
{
    if (n > RG_GC_THREADS_MAX)
        return -EINVAL;
    if (rgi_ensure_init() != 0)
        return -ENOMEM;
    pthread_once(&init_once, gc_init_once);
    if (n < 0)
        return atomic_load(&mark_threads);
    int prev = atomic_exchange(&mark_threads, n);
    /* helpers start at the next cycle; idle ones wake to see their id */
    pthread_mutex_lock(&gc_lock);
    pthread_cond_broadcast(&mark_cond);
    pthread_mutex_unlock(&gc_lock);
    return prev;
}

/* ---------------------------------------------------------------------------
 * fork(): the child has one thread, the forking one.  Prepare takes the
 * collector's short-held locks (never the cycle lock: a cycle in flight may
 * need locks of modules whose fork handlers ran before ours), so the heap's
 * metadata is consistent in the child.  The child then forgets the other
 * threads as thread exit would (their roots become global roots, their
 * spans go back to the central lists), and abandons a cycle that was in
 * flight: barrier off, gray set and mark bits cleared (marks only add
 * liveness, and no span is unswept while marking), spans made for the next
 * generation moved back to the current one.  The collector and helper
 * threads start again with the child's next cycle, so the child allocates
 * and collects as the parent did.
 * ------------------------------------------------------------------------- */
static void gc_atfork_prepare(void)
{
    pthread_mutex_lock(&gc_lock);
    pthread_mutex_lock(&heap_lock);
    pthread_mutex_lock(&roots_lock);
    pthread_mutex_lock(&fin_lock);
    pthread_mutex_lock(&gray_lock);
    pthread_mutex_lock(&pages_lock);
}

static void gc_atfork_unlock(void)
{
    pthread_mutex_unlock(&pages_lock);
    pthread_mutex_unlock(&gray_lock);
    pthread_mutex_unlock(&fin_lock);
    pthread_mutex_unlock(&roots_lock);
    pthread_mutex_unlock(&heap_lock);
    pthread_mutex_unlock(&gc_lock);
}

static void gc_atfork_parent(void)
{
    gc_atfork_unlock();
}

/* Child, all locks held: drops a cycle that was in flight. */
static void abandon_cycle_locked(gthread *me)
{
    __atomic_store_n(&rg_gc_barrier_on, 0, __ATOMIC_SEQ_CST);
    atomic_store(&mark_open, 0);
    uint32_t g = atomic_load(&sweepgen_g);
    for (gspan *sp = allspans; sp; sp = sp->all_next) {
        for (uint32_t w = 0; w < sp->nwords; w++)
            mark_word_clear(sp, w);
        if (atomic_load_explicit(&sp->sweepgen, memory_order_relaxed) == g + 2)
            atomic_store_explicit(&sp->sweepgen, g, memory_order_relaxed);
        __atomic_store_n(&sp->alloc_black, 0, __ATOMIC_RELAXED);
    }
    while (gray_full) {
        gchunk *c = gray_full;
        gray_full = c->next;
        c->next = gray_free;
        gray_free = c;
    }
    atomic_store(&gray_nchunks, 0);
    cw.n = 0;
    if (me) {
        me->gw.n = 0;
        me->black = false;
        set_last_black(me, NULL);
    }
    roots_started = false;
    atomic_store(&dirty, 0);
    atomic_store(&gray_overflow, 0);
    atomic_store(&want_full, 1); /* the old objects' marks are gone */
    set_phase_locked(PH_OFF);
}

static void gc_atfork_child(void)
{
    gthread *me = tls_me, *gone = NULL;
    pthread_cond_init(&gc_cond, NULL); /* waiters of the parent are gone */
    pthread_cond_init(&mark_cond, NULL);
    pthread_mutex_init(&cycle_lock, NULL); /* its holder, if any, is gone */
    for (gthread *t = threads, *nx; t; t = nx) {
        nx = t->next;
        if (t == me)
            continue;
        for (unsigned i = 0; i < CACHE_SLOTS; i++) {
            gspan *sp = t->cache[i].s;
            if (sp == NULL)
                continue;
            run_drop(NULL, &t->cache[i]);
            t->cache[i].s = NULL;
            sp->cached = 0;
            __atomic_store_n(&sp->alloc_black, 0, __ATOMIC_RELAXED); /* the child's cycle is abandoned below, or none runs */
            central_put_locked(sp);
        }
        t->gw.n = 0; /* empty: no cycle is in flight */
        for (rg_root *r = t->roots, *rn; r; r = rn) {
            rn = r->next;
            r->owner = NULL;
            r->prev = NULL;
            r->next = global_roots;
            if (global_roots)
                global_roots->prev = r;
            global_roots = r;
        }
        t->roots = NULL;
        if (t->prev) t->prev->next = t->next; else threads = t->next;
        if (t->next) t->next->prev = t->prev;
        nthreads--;
        atomic_fetch_sub_explicit(&rgi_gc_threads_attached, 1, memory_order_relaxed);
        t->next = gone;
        gone = t;
    }
    if (atomic_load(&phase) != PH_OFF)
        abandon_cycle_locked(me);
    if (me)
        atomic_store(&me->ack_seq, atomic_load(&hs_word) >> 8);
    atomic_store(&worker_started, false);
    atomic_store(&worker_kick, 0);
    atomic_store(&worker_force, 0);
    atomic_store(&helpers_started, 0);
    atomic_store(&draining, 0);
    gc_atfork_unlock();
    while (gone) {
        gthread *n = gone->next;
        meta_free(gone, sizeof *gone);
        gone = n;
    }
}

void rgi_gc_read_stats(rgi_gc_stats *st)
{
    memset(st, 0, sizeof *st);
    st->num_gc = atomic_load(&cycles_done);
    st->pause_total_ns = atomic_load(&pause_total);
    for (int i = 0; i < 256; i++)
        st->pause_ns[i] = atomic_load(&pause_ring[i]);
    st->last_gc_ns = atomic_load(&last_gc_ns);
    st->next_gc = atomic_load(&next_gc_goal);
    st->gc_cpu_fraction = cpu_fraction(rgi_now_ns());
    st->mallocs = atomic_load(&st_mallocs);
    st->frees = atomic_load(&st_frees);
    st->total_alloc = atomic_load(&st_total_alloc);
    uint64_t fb = atomic_load(&st_freed_bytes);
    st->live_bytes = st->total_alloc > fb ? st->total_alloc - fb : 0;
    st->live_objects = st->mallocs > st->frees ? st->mallocs - st->frees : 0;
    st->span_bytes = atomic_load(&span_bytes);
    st->marked_bytes = atomic_load(&heap_marked);
    st->assist_scanned = atomic_load(&assist_scanned);
    st->gray_shares = atomic_load(&gray_shares);
    st->finalizers_run = atomic_load(&st_fin_run);
    st->forced_by_limit = atomic_load(&forced_by_limit);
    st->term_rounds = atomic_load(&term_rounds);
}

int rg_gc_read_pauses(rg_gc_pauses *out)
{
    if (out == NULL)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->acks = atomic_load(&acks_total);
    out->acks_preempted = atomic_load(&acks_preempted);
    out->acks_blocked = atomic_load(&acks_blocked);
    out->max_ns = atomic_load(&ack_max_ns);
    out->max_clean_ns = atomic_load(&ack_max_clean_ns);
    out->num_gc = atomic_load(&cycles_done);
    for (int i = 0; i < 256; i++) {
        out->pause_ns[i] = atomic_load(&pause_ring[i]);
        out->clean_ns[i] = atomic_load(&pause_clean_ring[i]);
    }
    return 0;
}

void rgi_gc_fill_memstats(rg_memstats *out)
{
    rgi_gc_stats st;
    rgi_gc_read_stats(&st);
    out->num_gc = st.num_gc;
    out->pause_total_ns = st.pause_total_ns;
    memcpy(out->pause_ns, st.pause_ns, sizeof out->pause_ns);
    out->last_gc_ns = st.last_gc_ns;
    out->next_gc = st.next_gc;
    out->gc_cpu_fraction = st.gc_cpu_fraction;
    out->heap_alloc += st.live_bytes;
    out->heap_objects += st.live_objects;
    out->mallocs += st.mallocs;
    out->frees += st.frees;
    out->total_alloc += st.total_alloc;
}
