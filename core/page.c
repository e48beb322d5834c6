/* core/page.c — the page layer: address space, segments, the hard limit.
 *
 * Algorithm.  One range of address space is reserved PROT_NONE at init and
 * cut into 2 MiB segments.  A segment is committed on demand (mmap FIXED over
 * the reservation: MAP_HUGETLB when explicit hugepages are reserved, else
 * anonymous memory advised MADV_HUGEPAGE, else 4 KiB pages) and its backing
 * recorded.  An arena segment that empties becomes idle (still committed and
 * charged) and is reused LIFO; a background scavenger purges segments idle
 * longer than the delay with MADV_DONTNEED, so memory goes back while the
 * process sleeps (it waits on a condition variable, not a tick, when nothing
 * is idle, and wakes exactly when the oldest idle segment comes due).
 * Large objects get runs of segments committed to 4 KiB granularity.
 *
 * Guarantee.  `committed` only grows through a CAS that checks the limit, so
 * committed <= limit at every instant, with any number of threads.  A charge
 * that would cross runs the ladder: purge idle segments, pressure hooks in
 * level order (pools, collector), the user's OOM handler; then it fails.
 *
 * Invariants (under `lock`):
 *   nfree + nactive + nidle + nscav == nsegs
 *   committed == metadata + SEG_SIZE * (nactive_arena + nidle) + sum(run commits)
 *                + bytes charged by rgi_page_charge callers directly
 */
#include "internal.h"

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << 26)
#endif

enum seg_state { ST_FREE = 0, ST_ARENA, ST_IDLE, ST_SCAV, ST_RUN_HEAD, ST_RUN_TAIL };

typedef struct idle_node { /* lives in the idle segment's header area */
    uint64_t magic;
    uint64_t since_ns;
    struct idle_node *next, *prev;
} idle_node;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t scav_cv;
    char *base;
    size_t nsegs;
    uint8_t *state;    /* per segment: enum seg_state | backing << 4 */
    uint64_t *freemap; /* bit set: segment is ST_FREE */
    uint64_t *scavmap; /* bit set: segment is ST_SCAV */
    size_t free_hint;
    idle_node *idle_head, *idle_tail; /* head newest */
    size_t nidle, nscav;
    bool scav_running, scav_stop;
    pthread_t scav_thread;
    const rgi_page_source *src;
    bool hugetlb_ok;
    unsigned hugetlb_skips;
} pg = {.lock = PTHREAD_MUTEX_INITIALIZER, .scav_cv = PTHREAD_COND_INITIALIZER};

/* The counters; each is read by rg_read_memstats without the lock. */
static atomic_uint_fast64_t committed;
static atomic_int_fast64_t limit = INT64_MAX;
static atomic_uint_fast64_t by_backing[3];
static atomic_uint_fast64_t idle_bytes, released_total, limit_hits, oom_fails, nsegments;
static uint64_t metadata_bytes;

static struct {
    pthread_mutex_t lock;
    int n;
    struct { int level; rgi_pressure_fn fn; void *arg; } h[16];
    rg_oom_handler oom;
    void *oom_arg;
} hooks = {.lock = PTHREAD_MUTEX_INITIALIZER};
static __thread bool in_ladder;

/* ---------------------------------------------------------------------------
 * The OS page source
 * ------------------------------------------------------------------------- */
static int os_reserve(size_t size, void **base)
{
    /* Over-reserve by one segment and trim so the base is segment-aligned. */
    char *p = mmap(NULL, size + RGI_SEG_SIZE, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    uintptr_t aligned = ((uintptr_t)p + RGI_SEG_MASK) & ~(uintptr_t)RGI_SEG_MASK;
    size_t head = aligned - (uintptr_t)p, tail = RGI_SEG_SIZE - head;
    if (head)
        munmap(p, head);
    if (tail)
        munmap((char *)aligned + size, tail);
    *base = (void *)aligned;
    return 0;
}

static int os_commit(void *addr, size_t len, int want, int *backing)
{
    bool aligned = ((uintptr_t)addr & RGI_SEG_MASK) == 0 && (len & RGI_SEG_MASK) == 0;
    if (want == RG_HUGEPAGES_EXPLICIT && aligned) {
        void *p = mmap(addr, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
        if (p != MAP_FAILED) {
            *backing = RG_BACKING_HUGETLB;
            return 0;
        }
    }
    void *p = mmap(addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    *backing = RG_BACKING_4K;
    if (want != RG_HUGEPAGES_OFF && len >= RGI_SEG_SIZE) {
#ifdef MADV_HUGEPAGE
        if (madvise(addr, len & ~RGI_SEG_MASK, MADV_HUGEPAGE) == 0)
            *backing = RG_BACKING_THP;
#endif
    }
    return 0;
}

static int os_decommit(void *addr, size_t len, int backing)
{
    (void)backing;
    void *p = mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? -errno : 0;
}

static int os_purge(void *addr, size_t len, int backing)
{
    (void)backing;
    return madvise(addr, len, MADV_DONTNEED) == 0 ? 0 : -errno;
}

/* A page source installed before init (pool/dpdk_ops.c's memzone source);
 * NULL = the OS.  Written before the first allocation, read by init under
 * the init lock, so it needs no atomics. */
static const rgi_page_source *base_src;

const rgi_page_source rgi_os_source = {
    .name = "os", .reserve = os_reserve, .commit = os_commit,
    .decommit = os_decommit, .purge = os_purge,
};

/* ---------------------------------------------------------------------------
 * The fault-injecting source: wraps the OS source's commit.
 * ------------------------------------------------------------------------- */
static struct {
    pthread_mutex_t lock;
    uint64_t nth, seed, injected;
    uint32_t permille;
} fault = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int fault_commit(void *addr, size_t len, int want, int *backing)
{
    bool fail = false;
    pthread_mutex_lock(&fault.lock);
    if (fault.nth > 0 && --fault.nth == 0)
        fail = true;
    if (!fail && fault.permille) {
        /* xorshift64*: deterministic for a given seed and call order */
        fault.seed ^= fault.seed >> 12;
        fault.seed ^= fault.seed << 25;
        fault.seed ^= fault.seed >> 27;
        fail = ((fault.seed * 2685821657736338717ull) >> 32) % 1000 < fault.permille;
    }
    if (fail)
        fault.injected++;
    pthread_mutex_unlock(&fault.lock);
    if (fail)
        return -ENOMEM;
    return os_commit(addr, len, want, backing);
}

static const rgi_page_source fault_source = {
    .name = "fault", .reserve = os_reserve, .commit = fault_commit,
    .decommit = os_decommit, .purge = os_purge,
};

uint64_t rgi_fault_inject(uint64_t nth, uint32_t permille, uint64_t seed)
{
    rgi_ensure_init();
    pthread_mutex_lock(&fault.lock);
    fault.nth = nth;
    fault.permille = permille > 1000 ? 1000 : permille;
    fault.seed = seed ? seed : 0x9e3779b97f4a7c15ull;
    uint64_t n = fault.injected;
    pthread_mutex_unlock(&fault.lock);
    __atomic_store_n(&pg.src, (nth || permille) ? &fault_source : (base_src ? base_src : &rgi_os_source), __ATOMIC_RELEASE);
    return n;
}

/* ---------------------------------------------------------------------------
 * Bitmaps and state
 * ------------------------------------------------------------------------- */
static inline void bit_set(uint64_t *m, size_t i) { m[i >> 6] |= 1ull << (i & 63); }
static inline void bit_clr(uint64_t *m, size_t i) { m[i >> 6] &= ~(1ull << (i & 63)); }
/* The page source may be swapped by the fault-injection seam while others
 * allocate: acquire pairs with the release store in rgi_fault_inject. */
static inline const rgi_page_source *src(void) { return __atomic_load_n(&pg.src, __ATOMIC_ACQUIRE); }

static inline bool bit_get(const uint64_t *m, size_t i) { return (m[i >> 6] >> (i & 63)) & 1; }

static inline size_t seg_index(const void *p) { return (size_t)((const char *)p - pg.base) >> RGI_SEG_SHIFT; }
static inline char *seg_addr(size_t i) { return pg.base + (i << RGI_SEG_SHIFT); }
static inline int st_get(size_t i) { return pg.state[i] & 15; }
static inline int st_backing(size_t i) { return pg.state[i] >> 4; }
static inline void st_set(size_t i, int st, int backing) { pg.state[i] = (uint8_t)(st | (backing << 4)); }

/* First-fit search for n contiguous free segments; lock held. */
static ssize_t find_free_locked(size_t n)
{
    size_t words = (pg.nsegs + 63) / 64;
    for (int pass = 0; pass < 2; pass++) {
        size_t start = pass == 0 ? pg.free_hint : 0, limit_i = pass == 0 ? pg.nsegs : pg.free_hint + n;
        if (limit_i > pg.nsegs)
            limit_i = pg.nsegs;
        size_t run = 0;
        for (size_t i = start; i < limit_i; i++) {
            if ((i & 63) == 0 && run == 0 && i / 64 < words && pg.freemap[i / 64] == 0) {
                i += 63;
                continue;
            }
            if (bit_get(pg.freemap, i)) {
                if (++run == n) {
                    size_t first = i + 1 - n;
                    pg.free_hint = i + 1;
                    return (ssize_t)first;
                }
            } else {
                run = 0;
            }
        }
    }
    return -1;
}

/* ---------------------------------------------------------------------------
 * Charging and the ladder
 * ------------------------------------------------------------------------- */
static inline bool try_charge(size_t n)
{
    uint_fast64_t cur = atomic_load_explicit(&committed, memory_order_relaxed);
    for (;;) {
        int64_t lim = atomic_load_explicit(&limit, memory_order_relaxed);
        if (cur + n > (uint64_t)lim || cur + n < cur)
            return false;
        /* relaxed suffices: the counter orders nothing else; the CAS is what
         * makes "check then add" one step, so the limit is never crossed */
        if (atomic_compare_exchange_weak_explicit(&committed, &cur, cur + n,
                                                  memory_order_relaxed, memory_order_relaxed))
            return true;
    }
}

static RGI_COLD int charge_slow(size_t n)
{
    atomic_fetch_add_explicit(&limit_hits, 1, memory_order_relaxed);
    /* Rung 1: idle segments back to the OS. */
    rgi_page_release_idle(n);
    if (try_charge(n))
        return 0;
    if (!in_ladder) {
        in_ladder = true;
        /* Rung 2: the upper layers (pools, then the collector), in level order. */
        for (int i = 0;; i++) {
            pthread_mutex_lock(&hooks.lock);
            if (i >= hooks.n) {
                pthread_mutex_unlock(&hooks.lock);
                break;
            }
            rgi_pressure_fn fn = hooks.h[i].fn;
            void *arg = hooks.h[i].arg;
            pthread_mutex_unlock(&hooks.lock);
            fn(n, arg);
            rgi_page_release_idle(n);
            if (try_charge(n)) {
                in_ladder = false;
                return 0;
            }
        }
        /* Rung 3: the user's OOM handler, once. */
        pthread_mutex_lock(&hooks.lock);
        rg_oom_handler oom = hooks.oom;
        void *oom_arg = hooks.oom_arg;
        pthread_mutex_unlock(&hooks.lock);
        if (oom && oom(n, oom_arg)) {
            rgi_page_release_idle(n);
            if (try_charge(n)) {
                in_ladder = false;
                return 0;
            }
        }
        in_ladder = false;
    }
    atomic_fetch_add_explicit(&oom_fails, 1, memory_order_relaxed);
    return -ENOMEM;
}

int rgi_page_charge(size_t n)
{
    if (RG_LIKELY(try_charge(n)))
        return 0;
    return charge_slow(n);
}

void rgi_page_uncharge(size_t n)
{
    uint_fast64_t prev = atomic_fetch_sub_explicit(&committed, n, memory_order_relaxed);
    if (RG_UNLIKELY(prev < n))
        rgi_corrupt("page layer: uncharge of %zu bytes with only %llu charged", n, (unsigned long long)prev);
}

int rgi_pressure_register(int level, rgi_pressure_fn fn, void *arg)
{
    if (fn == NULL)
        return -EINVAL;
    pthread_mutex_lock(&hooks.lock);
    if (hooks.n == (int)(sizeof hooks.h / sizeof hooks.h[0])) {
        pthread_mutex_unlock(&hooks.lock);
        return -ENOSPC;
    }
    int i = hooks.n++;
    while (i > 0 && hooks.h[i - 1].level > level) {
        hooks.h[i] = hooks.h[i - 1];
        i--;
    }
    hooks.h[i].level = level;
    hooks.h[i].fn = fn;
    hooks.h[i].arg = arg;
    pthread_mutex_unlock(&hooks.lock);
    return 0;
}

void rg_set_oom_handler(rg_oom_handler fn, void *arg)
{
    pthread_mutex_lock(&hooks.lock);
    hooks.oom = fn;
    hooks.oom_arg = arg;
    pthread_mutex_unlock(&hooks.lock);
}

int64_t rgi_page_set_limit(int64_t bytes)
{
    int64_t prev = atomic_load(&limit);
    if (bytes < 0)
        return prev;
    atomic_store(&limit, bytes);
    if ((uint64_t)bytes < atomic_load(&committed))
        rgi_page_release_idle(SIZE_MAX);
    return prev;
}

int64_t rg_set_memory_limit(int64_t bytes)
{
    rgi_ensure_init();
    return rgi_page_set_limit(bytes);
}

/* ---------------------------------------------------------------------------
 * Idle segments and the scavenger
 * ------------------------------------------------------------------------- */
static void idle_unlink_locked(idle_node *n)
{
    if (n->prev) n->prev->next = n->next; else pg.idle_head = n->next;
    if (n->next) n->next->prev = n->prev; else pg.idle_tail = n->prev;
    pg.nidle--;
}

/* Purges segments taken off the idle list (lock not held). */
static size_t purge_segments(char **segs, size_t n, const char *why)
{
    size_t released = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = seg_index(segs[k]);
        int b = st_backing(i);
        int rc = src()->purge(segs[k], RGI_SEG_SIZE, b);
        pthread_mutex_lock(&pg.lock);
        if (rc == 0) {
            st_set(i, ST_SCAV, b);
            bit_set(pg.scavmap, i);
            pg.nscav++;
        } else {
            /* hugetlb may refuse DONTNEED: hand the range back instead */
            src()->decommit(segs[k], RGI_SEG_SIZE, b);
            st_set(i, ST_FREE, 0);
            bit_set(pg.freemap, i);
        }
        pthread_mutex_unlock(&pg.lock);
        atomic_fetch_sub(&by_backing[b], RGI_SEG_SIZE);
        atomic_fetch_sub(&idle_bytes, RGI_SEG_SIZE);
        atomic_fetch_sub(&nsegments, 1);
        rgi_page_uncharge(RGI_SEG_SIZE);
        released += RGI_SEG_SIZE;
    }
    atomic_fetch_add(&released_total, released);
    if (released && rgi_opt.scavtrace)
        fprintf(stderr, "regio: scav: %s released %zu KiB, %llu KiB committed, %zu idle segments left\n",
                why, released >> 10, (unsigned long long)(atomic_load(&committed) >> 10), pg.nidle);
    return released;
}

size_t rgi_page_release_idle(size_t want)
{
    char *batch[64];
    size_t total = 0;
    while (total < want) {
        size_t n = 0;
        pthread_mutex_lock(&pg.lock);
        while (n < 64 && pg.idle_tail && total + n * RGI_SEG_SIZE < want) {
            idle_node *node = pg.idle_tail; /* oldest first */
            idle_unlink_locked(node);
            batch[n++] = (char *)node;
        }
        pthread_mutex_unlock(&pg.lock);
        if (n == 0)
            break;
        total += purge_segments(batch, n, "limit");
    }
    return total;
}

size_t rg_release_memory(void)
{
    rgi_ensure_init();
    return rgi_page_release_idle(SIZE_MAX);
}

static void *scavenger_main(void *arg)
{
    (void)arg;
    char *batch[16];
    pthread_mutex_lock(&pg.lock);
    while (!pg.scav_stop) {
        int64_t delay = rgi_opt.scavenge_delay_ns;
        if (pg.idle_tail == NULL || delay < 0) {
            pthread_cond_wait(&pg.scav_cv, &pg.lock);
            continue;
        }
        uint64_t now = rgi_now_ns(), due = pg.idle_tail->since_ns + (uint64_t)delay;
        if (now < due) {
            rgi_cond_wait_ns(&pg.scav_cv, &pg.lock, due - now);
            continue;
        }
        /* A small budget per step: 16 segments (32 MiB), then yield the lock
         * and sleep 1 ms, so the scavenger never competes with allocation. */
        size_t n = 0;
        while (n < 16 && pg.idle_tail && pg.idle_tail->since_ns + (uint64_t)delay <= now) {
            idle_node *node = pg.idle_tail;
            idle_unlink_locked(node);
            batch[n++] = (char *)node;
        }
        pthread_mutex_unlock(&pg.lock);
        purge_segments(batch, n, "idle");
        struct timespec nap = {0, 1000000};
        nanosleep(&nap, NULL);
        pthread_mutex_lock(&pg.lock);
    }
    pg.scav_running = false;
    pthread_mutex_unlock(&pg.lock);
    return NULL;
}

static void scavenger_start_locked(void)
{
    if (pg.scav_running || rgi_opt.scavenge_delay_ns < 0)
        return;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 64 << 10);
    if (pthread_create(&pg.scav_thread, &a, scavenger_main, NULL) == 0)
        pg.scav_running = true;
    pthread_attr_destroy(&a);
}

/* ---------------------------------------------------------------------------
 * Segments
 * ------------------------------------------------------------------------- */
static int want_hugepages(void)
{
    if (rgi_opt.hugepages != RG_HUGEPAGES_EXPLICIT)
        return rgi_opt.hugepages;
    /* After a MAP_HUGETLB failure, try explicit pages again only every
     * 64th commit: the pool may be empty for a long time. */
    if (!pg.hugetlb_ok && (pg.hugetlb_skips++ & 63) != 0)
        return RG_HUGEPAGES_THP;
    return RG_HUGEPAGES_EXPLICIT;
}

void *rgi_segment_alloc(bool *fresh)
{
    if (rgi_ensure_init() != 0) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&pg.lock);
    idle_node *node = pg.idle_head; /* newest first: its pages are warm */
    if (node) {
        idle_unlink_locked(node);
        size_t i = seg_index(node);
        st_set(i, ST_ARENA, st_backing(i));
        pthread_mutex_unlock(&pg.lock);
        atomic_fetch_sub(&idle_bytes, RGI_SEG_SIZE);
        *fresh = false;
        return node;
    }
    pthread_mutex_unlock(&pg.lock);

    if (rgi_page_charge(RGI_SEG_SIZE) != 0) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&pg.lock);
    ssize_t idx = -1;
    bool scav = false;
    if (pg.nscav) {
        size_t words = (pg.nsegs + 63) / 64;
        for (size_t w = 0; w < words; w++) {
            if (pg.scavmap[w]) {
                idx = (ssize_t)(w * 64 + (size_t)__builtin_ctzll(pg.scavmap[w]));
                break;
            }
        }
        if (idx >= 0) {
            bit_clr(pg.scavmap, (size_t)idx);
            pg.nscav--;
            scav = true;
            st_set((size_t)idx, ST_ARENA, st_backing((size_t)idx));
        }
    }
    if (idx < 0) {
        idx = find_free_locked(1);
        if (idx >= 0) {
            bit_clr(pg.freemap, (size_t)idx);
            st_set((size_t)idx, ST_ARENA, 0);
        }
    }
    int want = want_hugepages();
    pthread_mutex_unlock(&pg.lock);
    if (idx < 0) {
        rgi_page_uncharge(RGI_SEG_SIZE);
        errno = ENOMEM;
        return NULL;
    }
    char *seg = seg_addr((size_t)idx);
    int backing = st_backing((size_t)idx);
    if (!scav) {
        int rc = src()->commit(seg, RGI_SEG_SIZE, want, &backing);
        if (rc != 0) {
            pthread_mutex_lock(&pg.lock);
            st_set((size_t)idx, ST_FREE, 0);
            bit_set(pg.freemap, (size_t)idx);
            pthread_mutex_unlock(&pg.lock);
            rgi_page_uncharge(RGI_SEG_SIZE);
            errno = -rc;
            return NULL;
        }
        pthread_mutex_lock(&pg.lock);
        if (want == RG_HUGEPAGES_EXPLICIT)
            pg.hugetlb_ok = backing == RG_BACKING_HUGETLB;
        st_set((size_t)idx, ST_ARENA, backing);
        pthread_mutex_unlock(&pg.lock);
    }
    atomic_fetch_add(&by_backing[backing], RGI_SEG_SIZE);
    atomic_fetch_add(&nsegments, 1);
    *fresh = true;
    return seg;
}

void rgi_segment_free(void *seg)
{
    size_t i = seg_index(seg);
    if (RG_UNLIKELY(((uintptr_t)seg & RGI_SEG_MASK) || i >= pg.nsegs))
        rgi_corrupt("page layer: freeing %p, not a segment", seg);
    idle_node *node = seg;
    node->magic = 0;
    node->since_ns = rgi_now_ns();
    node->prev = NULL;
    pthread_mutex_lock(&pg.lock);
    if (RG_UNLIKELY(st_get(i) != ST_ARENA))
        rgi_corrupt("page layer: segment %p freed twice", seg);
    st_set(i, ST_IDLE, st_backing(i));
    node->next = pg.idle_head;
    if (pg.idle_head) pg.idle_head->prev = node; else pg.idle_tail = node;
    pg.idle_head = node;
    pg.nidle++;
    scavenger_start_locked();
    pthread_cond_signal(&pg.scav_cv);
    pthread_mutex_unlock(&pg.lock);
    atomic_fetch_add(&idle_bytes, RGI_SEG_SIZE);
    /* Over the limit (it was lowered), idle memory goes back at once. */
    if (atomic_load(&committed) > (uint64_t)atomic_load(&limit))
        rgi_page_release_idle(SIZE_MAX);
}

void *rgi_run_alloc(size_t bytes, size_t *out_committed)
{
    if (rgi_ensure_init() != 0) {
        errno = ENOMEM;
        return NULL;
    }
    if (bytes > (size_t)1 << 46) {
        errno = ENOMEM;
        return NULL;
    }
    size_t commit = (bytes + RGI_OS_PAGE - 1) & ~(RGI_OS_PAGE - 1);
    size_t n = (commit + RGI_SEG_MASK) >> RGI_SEG_SHIFT;
    if (rgi_page_charge(commit) != 0) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&pg.lock);
    ssize_t idx = find_free_locked(n);
    if (idx >= 0) {
        for (size_t k = 0; k < n; k++) {
            bit_clr(pg.freemap, (size_t)idx + k);
            st_set((size_t)idx + k, k ? ST_RUN_TAIL : ST_RUN_HEAD, 0);
        }
    }
    int want = rgi_opt.hugepages == RG_HUGEPAGES_OFF ? RG_HUGEPAGES_OFF : RG_HUGEPAGES_THP;
    pthread_mutex_unlock(&pg.lock);
    if (idx < 0) {
        rgi_page_uncharge(commit);
        errno = ENOMEM;
        return NULL;
    }
    char *run = seg_addr((size_t)idx);
    int backing = RG_BACKING_4K;
    int rc = src()->commit(run, commit, want, &backing);
    if (rc != 0) {
        pthread_mutex_lock(&pg.lock);
        for (size_t k = 0; k < n; k++) {
            st_set((size_t)idx + k, ST_FREE, 0);
            bit_set(pg.freemap, (size_t)idx + k);
        }
        pthread_mutex_unlock(&pg.lock);
        rgi_page_uncharge(commit);
        errno = -rc;
        return NULL;
    }
    pthread_mutex_lock(&pg.lock);
    st_set((size_t)idx, ST_RUN_HEAD, backing);
    pthread_mutex_unlock(&pg.lock);
    atomic_fetch_add(&by_backing[backing], commit);
    atomic_fetch_add(&nsegments, n);
    *out_committed = commit;
    return run;
}

void rgi_run_free(void *run, size_t commit)
{
    size_t i = seg_index(run);
    size_t n = (commit + RGI_SEG_MASK) >> RGI_SEG_SHIFT;
    if (RG_UNLIKELY(((uintptr_t)run & RGI_SEG_MASK) || i + n > pg.nsegs))
        rgi_corrupt("page layer: freeing %p, not a run", run);
    pthread_mutex_lock(&pg.lock);
    if (RG_UNLIKELY(st_get(i) != ST_RUN_HEAD))
        rgi_corrupt("page layer: run %p freed twice", run);
    int backing = st_backing(i);
    pthread_mutex_unlock(&pg.lock);
    src()->decommit(run, commit, backing);
    pthread_mutex_lock(&pg.lock);
    for (size_t k = 0; k < n; k++) {
        st_set(i + k, ST_FREE, 0);
        bit_set(pg.freemap, i + k);
    }
    pthread_mutex_unlock(&pg.lock);
    atomic_fetch_sub(&by_backing[backing], commit);
    atomic_fetch_sub(&nsegments, n);
    atomic_fetch_add(&released_total, commit);
    rgi_page_uncharge(commit);
}

bool rgi_page_owns(const void *p)
{
    int k = rgi_page_kind(p);
    return k == RGI_SEG_ARENA || k == RGI_SEG_LARGE;
}

void rgi_page_range(char **base, size_t *len)
{
    *base = pg.base;
    *len = pg.base ? pg.nsegs << RGI_SEG_SHIFT : 0;
}

int rgi_page_kind(const void *p)
{
    if (pg.base == NULL || (const char *)p < pg.base || (const char *)p >= pg.base + (pg.nsegs << RGI_SEG_SHIFT))
        return RGI_SEG_FREE;
    /* A racy read is fine for a query about memory the caller holds. */
    switch (__atomic_load_n(&pg.state[seg_index(p)], __ATOMIC_RELAXED) & 15) {
    case ST_ARENA: return RGI_SEG_ARENA;
    case ST_RUN_HEAD: case ST_RUN_TAIL: return RGI_SEG_LARGE;
    default: return RGI_SEG_FREE;
    }
}

/* ---------------------------------------------------------------------------
 * Init, stats, fork
 * ------------------------------------------------------------------------- */
static bool hugepages_reserved(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    long free_pages = 0;
    if (!f)
        return false;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "HugePages_Free: %ld", &free_pages) == 1)
            break;
    fclose(f);
    return free_pages > 0;
}

int rgi_page_set_source(const rgi_page_source *s)
{
    if (pg.base)
        return -EBUSY;
    base_src = s;
    return 0;
}

int rgi_page_init(void)
{
    if (pg.base)
        return 0;
    pg.src = base_src ? base_src : &rgi_os_source;
    if (rgi_opt.hugepages == RG_HUGEPAGES_DEFAULT)
        rgi_opt.hugepages = hugepages_reserved() ? RG_HUGEPAGES_EXPLICIT : RG_HUGEPAGES_THP;
    pg.hugetlb_ok = rgi_opt.hugepages == RG_HUGEPAGES_EXPLICIT;
    size_t size = rgi_opt.reserve_bytes & ~RGI_SEG_MASK;
    void *base = NULL;
    int rc;
    /* The kernel may refuse a large reservation (overcommit policy, ulimit -v):
     * halve until it fits, down to 64 segments. */
    while ((rc = src()->reserve(size, &base)) != 0 && size > 64 * RGI_SEG_SIZE)
        size /= 2;
    if (rc != 0)
        return rc;
    pg.nsegs = size >> RGI_SEG_SHIFT;
    size_t words = (pg.nsegs + 63) / 64;
    size_t meta = pg.nsegs + 2 * words * sizeof(uint64_t);
    meta = (meta + RGI_OS_PAGE - 1) & ~(RGI_OS_PAGE - 1);
    char *m = mmap(NULL, meta, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        munmap(base, size);
        return -ENOMEM;
    }
    pg.freemap = (uint64_t *)m;
    pg.scavmap = pg.freemap + words;
    pg.state = (uint8_t *)(pg.scavmap + words);
    memset(pg.freemap, 0xff, words * sizeof(uint64_t));
    if (pg.nsegs & 63)
        pg.freemap[words - 1] = (1ull << (pg.nsegs & 63)) - 1;
    metadata_bytes = meta;
    atomic_fetch_add(&committed, meta); /* regio's own metadata counts too */
    pg.base = base;
    return 0;
}

void rgi_page_read_stats(rgi_page_stats *st)
{
    st->committed = atomic_load(&committed);
    int64_t lim = atomic_load(&limit);
    st->limit = lim == INT64_MAX ? -1 : lim;
    st->metadata = metadata_bytes;
    st->idle = atomic_load(&idle_bytes);
    st->released_total = atomic_load(&released_total);
    for (int i = 0; i < 3; i++)
        st->by_backing[i] = atomic_load(&by_backing[i]);
    st->segments = atomic_load(&nsegments);
    st->limit_hits = atomic_load(&limit_hits);
    st->oom_fails = atomic_load(&oom_fails);
}

void rgi_page_atfork_prepare(void)
{
    pthread_mutex_lock(&hooks.lock);
    pthread_mutex_lock(&fault.lock);
    pthread_mutex_lock(&pg.lock);
}

void rgi_page_atfork_parent(void)
{
    pthread_mutex_unlock(&pg.lock);
    pthread_mutex_unlock(&fault.lock);
    pthread_mutex_unlock(&hooks.lock);
}

void rgi_page_atfork_child(void)
{
    /* The scavenger did not survive the fork: restart it on demand. */
    pg.scav_running = false;
    pthread_cond_init(&pg.scav_cv, NULL);
    pthread_mutex_unlock(&pg.lock);
    pthread_mutex_unlock(&fault.lock);
    pthread_mutex_unlock(&hooks.lock);
    if (pg.idle_head) {
        pthread_mutex_lock(&pg.lock);
        scavenger_start_locked();
        pthread_mutex_unlock(&pg.lock);
    }
}

void *rgi_page_run_head(const void *p)
{
    if (pg.base == NULL || (const char *)p < pg.base || (const char *)p >= pg.base + (pg.nsegs << RGI_SEG_SHIFT))
        return NULL;
    size_t i = seg_index(p);
    while (i > 0 && (__atomic_load_n(&pg.state[i], __ATOMIC_RELAXED) & 15) == ST_RUN_TAIL)
        i--;
    if ((__atomic_load_n(&pg.state[i], __ATOMIC_RELAXED) & 15) != ST_RUN_HEAD)
        return NULL;
    return seg_addr(i);
}

/* Checks the page layer's counting invariants (takes the lock; debug builds
 * and tests call it): bitmaps agree with the state bytes, the idle list
 * agrees with the idle count and the idle bytes, and per-backing bytes plus
 * metadata never exceed what is charged. */
bool rgi_page_is_valid(void)
{
    bool ok = true;
    pthread_mutex_lock(&pg.lock);
    size_t nidle = 0, nscav = 0;
    for (size_t i = 0; i < pg.nsegs; i++) {
        int st = st_get(i);
        ok &= bit_get(pg.freemap, i) == (st == ST_FREE);
        ok &= bit_get(pg.scavmap, i) == (st == ST_SCAV);
        nidle += st == ST_IDLE;
        nscav += st == ST_SCAV;
    }
    size_t listed = 0;
    for (idle_node *n = pg.idle_head; n; n = n->next) {
        ok &= st_get(seg_index(n)) == ST_IDLE;
        listed++;
    }
    ok &= listed == nidle && nidle == pg.nidle && nscav == pg.nscav;
    ok &= atomic_load(&idle_bytes) == nidle * RGI_SEG_SIZE;
    uint64_t backed = atomic_load(&by_backing[0]) + atomic_load(&by_backing[1]) + atomic_load(&by_backing[2]);
    ok &= backed + metadata_bytes <= atomic_load(&committed);
    pthread_mutex_unlock(&pg.lock);
    return ok;
}
