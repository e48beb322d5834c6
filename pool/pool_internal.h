/* pool/pool_internal.h — what the pools and channels share, never installed:
 * futex waiting with deadlines, bounded spinning, the per-thread cache
 * registry with its asymmetric guard, and the bounded MPMC ring of pointers.
 *
 * Glossary
 * --------
 *  ring      Vyukov's bounded MPMC queue: every slot carries a sequence
 *            stamp saying whose turn it is; producers and consumers claim a
 *            position with one CAS and hand the slot over with one store.
 *  tcache    a pool's per-thread cache; only its owner thread touches it on
 *            the fast path, with plain loads and stores.
 *  guard     the asymmetric Dekker pair (busy, reclaim) that lets another
 *            thread take a tcache's objects: the owner pays two plain stores
 *            and a load, the rare reclaimer pays a membarrier(2).
 *  epoch     a syncpool generation: at each epoch the primary becomes the
 *            victim and the old victim is freed (Go's poolCleanup).
 *  eventcount  a futex word bumped on every wakeup; a waiter reads it, checks
 *            its condition once more, and sleeps only if the word has not
 *            moved (so no wakeup is lost).
 */
#ifndef REGIO_POOL_INTERNAL_H
#define REGIO_POOL_INTERNAL_H

#include "internal.h"
#include "regio/chan.h"
#include "regio/pool.h"

#include <limits.h>
#include <sched.h>
#include <time.h>

/* ---------------------------------------------------------------------------
 * Futex seam (pool/futex.c).  All return 0 or -errno.
 * ------------------------------------------------------------------------- */
#define RGI_FOREVER UINT64_MAX
/* Absolute CLOCK_MONOTONIC deadline for a relative timeout: < 0 = forever. */
static inline uint64_t rgi_deadline(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return RGI_FOREVER;
    uint64_t now = rgi_now_ns();
    return now + (uint64_t)timeout_ns < now ? RGI_FOREVER : now + (uint64_t)timeout_ns;
}
/* Sleeps while *word == val, until woken or the deadline; -EAGAIN when the
 * word had already moved, -ETIMEDOUT, -EINTR, 0 when woken. */
int rgi_futex_wait(atomic_uint *word, unsigned val, uint64_t deadline);
/* Sleeps on several words at once (futex_waitv); polls if the kernel lacks it. */
int rgi_futex_waitv(atomic_uint **words, const unsigned *vals, unsigned n, uint64_t deadline);
void rgi_futex_wake(atomic_uint *word, int n);

/* Bounded spin for a peer that is between two steps of a short operation
 * (e.g. a producer between claiming a slot and publishing it): pause first,
 * then yield the CPU so a preempted peer can run.  Never used to wait for a
 * condition that may take long: that is what futexes are for. */
static inline void rgi_spin(unsigned *step)
{
    if (*step < 6) {
        for (unsigned i = 0; i < (1u << *step); i++)
            __builtin_ia32_pause();
    } else {
        sched_yield();
    }
    if (*step < 10)
        (*step)++;
}

/* ---------------------------------------------------------------------------
 * Ring of pointers (pool/ring.c): Vyukov's bounded MPMC queue, power-of-two
 * size, with bulk claims (one CAS for n positions once their n stamps show
 * they are free).  Guarantee: lock-free; an element enqueued is dequeued
 * exactly once; FIFO per producer.
 * ------------------------------------------------------------------------- */
typedef struct rgi_ring_slot {
    atomic_size_t seq;
    void *obj;
} rgi_ring_slot;

typedef struct rgi_ring {
    _Alignas(64) atomic_size_t tail; /* producers' next position */
    _Alignas(64) atomic_size_t head; /* consumers' next position */
    _Alignas(64) size_t mask;
    rgi_ring_slot *slots;
} rgi_ring;

int rgi_ring_init(rgi_ring *r, size_t min_size); /* 0 or -ENOMEM/-EINVAL */
void rgi_ring_fini(rgi_ring *r);
/* Enqueues all n or none: returns n or 0 (full). */
unsigned rgi_ring_put(rgi_ring *r, void *const *objs, unsigned n);
/* Enqueues as many as fit: returns the count. */
unsigned rgi_ring_put_burst(rgi_ring *r, void *const *objs, unsigned n);
/* Dequeues all n or none: returns n or 0 (not enough). */
unsigned rgi_ring_get(rgi_ring *r, void **objs, unsigned n);
/* Dequeues up to n: returns the count. */
unsigned rgi_ring_get_burst(rgi_ring *r, void **objs, unsigned n);
size_t rgi_ring_count(rgi_ring *r); /* snapshot */
static inline size_t rgi_ring_size(const rgi_ring *r) { return r->mask + 1; }

/* ---------------------------------------------------------------------------
 * Per-thread caches (pool/tcache.c)
 *
 * Each pool gets a small id; each thread a vector of tcache pointers indexed
 * by id.  A tcache is created by its owner on first use, listed in its pool
 * (under rgi_tc_lock), and handed back to the pool's `retire` callback when
 * the thread exits.  rg_*_free marks the pool's tcaches dead (pool = NULL);
 * their owners free them at their next lookup or at exit.
 *
 * The guard.  Owner fast path:
 *     busy = 1 (relaxed);  compiler barrier;  if (reclaim) -> slow;  ...op...;
 *     busy = 0 (release).
 * Reclaimer: reclaim = 1 on every tcache it wants, then one membarrier(2)
 * (MEMBARRIER_CMD_PRIVATE_EXPEDITED), then waits until busy == 0 (acquire),
 * takes the objects, reclaim = 0 (release).  The membarrier makes every
 * running thread execute a full fence, so either the owner's busy = 1 is
 * visible to the reclaimer, or the owner's load sees reclaim = 1 — the
 * classic asymmetric-fence Dekker (as in userspace RCU).  Where membarrier
 * is unavailable there are no per-thread caches (every operation goes to
 * the shared ring); under TSan, which does not model membarrier, both sides
 * use seq_cst atomics instead.
 * Rules: never allocate, block or take rgi_tc_lock while busy == 1 (the
 * limit ladder may reclaim from the same thread).
 * ------------------------------------------------------------------------- */
typedef rg_pool_tc rgi_tcache; /* the layout lives in regio/pool.h: the inline fast paths read it */
typedef struct rgi_tc_class {
    /* Owner thread exits: give its objects back to the pool (called with
     * rgi_tc_lock held and the tcache unlisted). */
    void (*retire)(void *pool, rgi_tcache *tc);
} rgi_tc_class;

/* Relaxed access to the cache fields that are plain in the public layout
 * (the header is C and C++, so it cannot use _Atomic): owner-written,
 * read by inspection, or handed over by the guard. */
#define RGI_LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define RGI_ST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* The length of a tcache's array: the low bits of lenw (regio/pool.h). */
static inline unsigned rgi_tc_len(rgi_tcache *tc)
{
    return (unsigned)(RGI_LD(tc->lenw) & RG_POOL_LEN_MASK);
}

/* Guard held (owner entered, or a reclaimer): moves the counts the inline
 * fast paths keep in lenw and priv (regio/pool.h) into gets/puts, so that
 * the slow path may then change the length and the private slot freely.
 * objpool: puts = lenw's high part; gets = puts + base - len (the length
 * moved only by fast ops since the last fold).  syncpool: priv's high part
 * counts fast gets and puts, which alternate on the slot: an even count is
 * half each; an odd one ended with a put when the slot is full now. */
static inline void rgi_tc_fold(rgi_tcache *tc)
{
    uint64_t w = RGI_LD(tc->lenw);
    uint64_t puts = w >> RG_POOL_LEN_BITS, len = w & RG_POOL_LEN_MASK;
    uint64_t gets = puts + tc->base - len;
    uintptr_t pw = RGI_LD(tc->priv);
    uint64_t n = pw >> RG_POOL_PRIV_BITS;
    if (n) {
        bool full = (pw & RG_POOL_PRIV_PTR) != 0;
        gets += n / 2 + ((n & 1) & !full);
        puts += n / 2 + ((n & 1) & full);
        RGI_ST(tc->priv, pw & RG_POOL_PRIV_PTR);
    }
    if (gets)
        RGI_ST(tc->gets, RGI_LD(tc->gets) + gets);
    if (puts)
        RGI_ST(tc->puts, RGI_LD(tc->puts) + puts);
    RGI_ST(tc->lenw, len);
    RGI_ST(tc->base, (unsigned)len);
}

/* Guard held, after a fold: sets the array's length (no unfolded count). */
static inline void rgi_tc_set_len(rgi_tcache *tc, unsigned len)
{
    RGI_ST(tc->lenw, (uint64_t)len);
    RGI_ST(tc->base, len);
}

/* Any thread, no guard: the cache's gets and puts including what is not
 * folded yet.  Exact when the owner is between operations (e.g. after a
 * join); a snapshot while it runs. */
static inline void rgi_tc_counts(rgi_tcache *tc, uint64_t *gets, uint64_t *puts)
{
    uint64_t w = RGI_LD(tc->lenw);
    uint64_t p = w >> RG_POOL_LEN_BITS;
    uint64_t g = p + RGI_LD(tc->base) - (w & RG_POOL_LEN_MASK);
    uintptr_t pw = RGI_LD(tc->priv);
    uint64_t n = pw >> RG_POOL_PRIV_BITS;
    bool full = (pw & RG_POOL_PRIV_PTR) != 0;
    g += n / 2 + ((n & 1) & !full);
    p += n / 2 + ((n & 1) & full);
    *gets = RGI_LD(tc->gets) + g;
    *puts = RGI_LD(tc->puts) + p;
}

extern pthread_mutex_t rgi_tc_lock;
extern bool rgi_tc_asym; /* membarrier available: caches allowed, the owner's fence is a compiler barrier */

uint32_t rgi_tc_id_alloc(void);        /* from 1 (0 is never a cache); -1u when out of memory */
void rgi_tc_id_free(uint32_t id);
/* Slow lookup: creates and lists the calling thread's tcache of `size`
 * bytes for pool (id), or NULL + errno. */
rgi_tcache *rgi_tc_create(void *pool, uint32_t id, size_t size, const rgi_tc_class *cls, rgi_tcache **list);
/* Marks every tcache in *list dead (the pool is going away); the caller has
 * already taken their objects.  Takes rgi_tc_lock. */
void rgi_tc_orphan_all(rgi_tcache **list);

/* Makes tc the thread's last-used cache (regio/pool.h: rg_pool_tls_last)
 * when its pool's inline fast paths are on.  Every pool that uses tcaches
 * starts with an rg_pool_head. */
static inline void rgi_tc_remember(void *pool, rgi_tcache *tc)
{
    if (((const rg_pool_head *)pool)->id != 0) {
        rg_pool_tls_last.pool = pool;
        rg_pool_tls_last.tc = tc;
    }
}

/* The calling thread's live tcache of pool (id), not entered, or NULL.
 * Empty slots hold rgi_tc_none (pool NULL, never enterable). */
extern rgi_tcache rgi_tc_none;
static inline rgi_tcache *rgi_tc_lookup(void *pool, uint32_t id)
{
    rgi_tcache *tc;
    if (RG_LIKELY(id < RG_POOL_FAST_IDS && (tc = rg_pool_tls[id])->pool == pool)) {
        rgi_tc_remember(pool, tc);
        return tc;
    }
    return NULL;
}
/* The id of the inline fast paths for a pool with cache id `tcid`: 0 (off)
 * when `fast` is false or the id has no slot. */
static inline uint32_t rgi_tc_fast_id(uint32_t tcid, bool fast)
{
    return fast && tcid < RG_POOL_FAST_IDS ? tcid : 0;
}

/* Owner: enter an operation; false when a reclaimer holds the tcache.
 * (The guard is rg_pool_tc_try in regio/pool.h, shared with the inline fast
 * paths.) */
static inline bool rgi_tc_enter(rgi_tcache *tc)
{
    return rg_pool_tc_try(tc) != 0;
}
/* Owner: leave; release pairs with the reclaimer's acquire load of busy. */
static inline void rgi_tc_leave(rgi_tcache *tc)
{
    rg_pool_tc_leave(tc);
}
/* Owner: wait until a reclaimer is done with tc (it is quick). */
void rgi_tc_wait_reclaim(rgi_tcache *tc);

/* Reclaimer side, with rgi_tc_lock held: mark, fence once for all, then for
 * each tcache wait and take, then release. */
void rgi_tc_mark(rgi_tcache *tc);
void rgi_tc_fence(void);
void rgi_tc_acquire(rgi_tcache *tc); /* waits for busy == 0 */
void rgi_tc_release(rgi_tcache *tc);

/* ---------------------------------------------------------------------------
 * Debug registry of a pool's objects (pool/debug.c, debug_checks builds):
 * which objects the pool knows, whether each is out or idle, and a hash of
 * an idle object's bytes so a write after put is caught at the next get even
 * without ASan.  A mutex-protected open-addressing table; its memory is
 * allocated outside the mutex (the limit ladder may drain this very pool).
 * ------------------------------------------------------------------------- */
enum { RGI_OBJ_OUT = 1, RGI_OBJ_IDLE = 2 };
typedef struct rgi_objreg {
    pthread_mutex_t lock;
    size_t cap, n, used; /* used = n + tombstones */
    struct rgi_objreg_ent { uintptr_t key; uint32_t state; uint32_t pad; uint64_t sum; } *t;
    const char *kind, *name; /* "objpool", the pool's name: for diagnostics */
    const void *pool;
} rgi_objreg;
void rgi_objreg_init(rgi_objreg *r, const char *kind, const char *name, const void *pool);
void rgi_objreg_fini(rgi_objreg *r);
/* -1 when the object is unknown, else its state. */
int rgi_objreg_state(rgi_objreg *r, const void *obj);
/* Records obj with state (adding it if new); 0 or -ENOMEM. */
int rgi_objreg_set(rgi_objreg *r, const void *obj, int state, uint64_t sum);
void rgi_objreg_del(rgi_objreg *r, const void *obj);
/* Put-side check: diagnoses a double put (state IDLE) and, when must_know,
 * a foreign pointer; then marks obj idle with the hash of its n bytes and
 * poisons them.  0, or -EINVAL when the put must be refused. */
int rgi_objreg_put(rgi_objreg *r, const char *call, void *obj, size_t n, bool must_know);
/* Get-side: unpoisons, checks the hash (a write after put), marks obj out
 * (or forgets it when !keep). */
void rgi_objreg_get(rgi_objreg *r, const char *call, void *obj, size_t n, bool keep);

/* ---------------------------------------------------------------------------
 * Pools' registry for the limit ladder and epochs (pool/syncpool.c, objpool.c)
 * ------------------------------------------------------------------------- */
/* The collector calls this at the end of each cycle; until it exists a timer
 * thread and limit pressure do.  Ends a syncpool epoch for every pool:
 * primary -> victim, old victim freed.  Returns bytes freed. */
size_t rgi_pool_epoch(void);
extern uint64_t rgi_pool_epoch_ns; /* the timer's period until the collector exists (1 s) */
/* Drains every pool's idle objects (syncpool primary + victim, objpool
 * rings and tcaches).  Returns bytes freed.  Used by the limit ladder. */
size_t rgi_pool_drain_all(void);
size_t rgi_objpool_drain_all(void);
void rgi_pool_pressure_init(void); /* registers the ladder hook once */

/* Adjusts memstats.pool_cached (relaxed: a statistic, orders nothing). */
static inline void rgi_pool_cached_add(int64_t delta)
{
    atomic_fetch_add_explicit(&rgi_pool_cached_bytes, (uint_fast64_t)delta, memory_order_relaxed);
}

#endif /* REGIO_POOL_INTERNAL_H */
