/* pool/objpool.c — rg_objpool: a bounded object pool with per-thread caches
 * in front of a shared ring (the rte_mempool shape), grown from the seed's
 * channel-backed BufferPool.
 *
 * Algorithm.  Objects are created lazily from the arenas (init_fn once each)
 * while fewer than `capacity` are alive; `live` is reserved with a CAS that
 * checks the bound before any allocation, so live <= capacity at every
 * instant.  Idle objects sit in the calling thread's cache (a LIFO array of
 * cache_size pointers, owner-only, as rte_mempool's per-lcore cache) or in
 * the shared ring (pool/ring.c, Vyukov's bounded MPMC queue with bulk
 * claims).  A cache that fills flushes its upper half to the ring; one that
 * empties refills half from it.  A put that finds the ring full drops (frees)
 * the object.  An exhausted get fails (RG_POOL_FAIL) or waits on a futex
 * eventcount (RG_POOL_BLOCK), after taking every other thread's cache into
 * the ring; while anyone waits, puts bypass the caches.
 *
 * Guarantee.  live <= capacity always; each object is handed out to one
 * caller at a time; get+put on a thread's cache costs two plain stores of
 * the guard, a load, and the array access — no atomic read-modify-write.
 *
 * Counting invariant (quiescent): live == out + in_ring + sum(cache len).
 * memstats.pool_cached counts obj_size for each idle object: exact for the
 * ring, published for caches at their slow paths and at every flush (so it
 * lags by at most cache_size objects per thread).
 */
#include "pool_internal.h"

#define OP_MAGIC 0x6f62706fu /* "obpo" */
#define CACHE_MAX 512u

/* tc.lenw: objects in objs[] and, above them, the inline puts' count
 * (regio/pool.h), written by the owner (or a reclaimer holding the guard);
 * tc.cap: objs' size; tc.pub: len last published to pool_cached;
 * tc.gets/puts: objects the fast paths served, folded (all hits; the slow
 * paths count in the pool).  Whoever holds the guard folds (rgi_tc_fold)
 * before it sets the length.  objs follows tc, where the inline fast paths
 * of regio/pool.h expect it. */
typedef struct op_cache {
    rgi_tcache tc;
    void *objs[];
} op_cache;
_Static_assert(offsetof(op_cache, objs) == sizeof(rg_pool_tc), "objs must follow the cache head");

struct rg_objpool {
    rg_pool_head h;           /* id, slow, nwaiters: read by the inline fast paths */
    /* read-mostly */
    uint32_t magic;
    size_t obj_size, capacity;
    unsigned cache_size;
    int policy;
    int64_t timeout_ns;
    void (*init_fn)(void *, void *), (*reset_fn)(void *, void *);
    void *arg;
    char name[48];
    rgi_ring ring;
    _Alignas(64) atomic_size_t live;
    atomic_uint ev;           /* eventcount waiters sleep on */
    atomic_uint_fast64_t creates, drops, fails, waits;
    atomic_uint_fast64_t sgets, shits, smisses, sputs; /* slow paths' share */
    /* under rgi_tc_lock */
    rgi_tcache *caches;
    struct rg_objpool *next, *prev;
    uint64_t ret_gets, ret_puts, ret_hits, ret_misses; /* from exited threads */
#if RG_DEBUG_CHECKS
    rgi_objreg reg;
#endif
};

static rg_objpool *all_pools; /* under rgi_tc_lock */

#define OWNER_ADD(ctr, v) RGI_ST(ctr, RGI_LD(ctr) + (v))

static void op_retire(void *pool, rgi_tcache *tc);
static const rgi_tc_class op_class = {op_retire};

/* ---------------------------------------------------------------------------
 * Objects
 * ------------------------------------------------------------------------- */
static void wake_waiters(rg_objpool *p)
{
    /* seq_cst: pairs with a waiter's add to nwaiters then its look at the
     * ring or at live (see ring.c) */
    if (RG_UNLIKELY(__atomic_load_n(&p->h.nwaiters, __ATOMIC_SEQ_CST) != 0)) {
        atomic_fetch_add_explicit(&p->ev, 1, memory_order_release);
        rgi_futex_wake(&p->ev, INT_MAX); /* bulk waiters may need several: wake all */
    }
}

/* Frees idle objects (the ring was full, or a drain). */
static void drop_objs(rg_objpool *p, void *const *objs, unsigned n)
{
    if (n == 0)
        return;
    for (unsigned i = 0; i < n; i++) {
#if RG_DEBUG_CHECKS
        if (RGI_ASAN)
            rgi_unpoison(objs[i], p->obj_size);
        rgi_objreg_del(&p->reg, objs[i]);
#endif
        rgi_arena_free(objs[i]);
    }
    atomic_fetch_add_explicit(&p->drops, n, memory_order_relaxed);
    /* seq_cst: a waiter that sees the old live sees our wake */
    atomic_fetch_sub_explicit(&p->live, n, memory_order_seq_cst);
    wake_waiters(p);
}

/* Puts idle objects in the ring; what does not fit is dropped.  Accounts
 * pool_cached for what went in. */
static void to_ring(rg_objpool *p, void *const *objs, unsigned n)
{
    if (n == 0)
        return;
    unsigned k = rgi_ring_put_burst(&p->ring, objs, n);
    if (k)
        rgi_pool_cached_add((int64_t)k * (int64_t)p->obj_size);
    if (k < n)
        drop_objs(p, objs + k, n - k);
    else
        wake_waiters(p);
}

static unsigned from_ring(rg_objpool *p, void **objs, unsigned n, bool all)
{
    unsigned k = all ? rgi_ring_get(&p->ring, objs, n) : rgi_ring_get_burst(&p->ring, objs, n);
    if (k)
        rgi_pool_cached_add(-(int64_t)k * (int64_t)p->obj_size);
    return k;
}

/* Creates up to n objects within capacity; returns how many. */
static unsigned create_objs(rg_objpool *p, void **objs, unsigned n)
{
    size_t live = atomic_load_explicit(&p->live, memory_order_relaxed);
    size_t k;
    do {
        k = p->capacity - live < n ? p->capacity - live : n;
        if (k == 0)
            return 0;
        /* seq_cst: checks the bound and reserves in one step; pairs with
         * the waiters' Dekker (a drop's decrement) */
    } while (!atomic_compare_exchange_weak_explicit(&p->live, &live, live + k, memory_order_seq_cst,
                                                    memory_order_relaxed));
    unsigned made = 0;
    while (made < k) {
        void *o = rgi_arena_malloc(p->obj_size);
        if (o == NULL)
            break;
#if RG_DEBUG_CHECKS
        rgi_objreg_set(&p->reg, o, RGI_OBJ_OUT, 0);
#endif
        if (p->init_fn)
            p->init_fn(o, p->arg);
        objs[made++] = o;
    }
    if (made < k) {
        atomic_fetch_sub_explicit(&p->live, k - made, memory_order_seq_cst);
        wake_waiters(p);
        errno = ENOMEM;
    }
    atomic_fetch_add_explicit(&p->creates, made, memory_order_relaxed);
    return made;
}

static inline void publish(rg_objpool *p, op_cache *c)
{
    unsigned len = rgi_tc_len(&c->tc);
    if (len != c->tc.pub) {
        rgi_pool_cached_add(((int64_t)len - (int64_t)c->tc.pub) * (int64_t)p->obj_size);
        c->tc.pub = len;
    }
}

/* Moves everything from a held cache to the ring (owner entered, or a
 * reclaimer holding the guard). */
static void cache_flush_held(rg_objpool *p, op_cache *c)
{
    rgi_tc_fold(&c->tc);
    unsigned len = rgi_tc_len(&c->tc);
    rgi_tc_set_len(&c->tc, 0);
    publish(p, c);
    to_ring(p, c->objs, len);
}

/* Takes every thread's cache into the ring now.  Returns objects moved. */
static unsigned flush_all(rg_objpool *p)
{
    unsigned moved = 0;
    pthread_mutex_lock(&rgi_tc_lock);
    for (rgi_tcache *t = p->caches; t; t = t->next)
        rgi_tc_mark(t);
    if (p->caches)
        rgi_tc_fence();
    for (rgi_tcache *t = p->caches; t; t = t->next) {
        op_cache *c = (op_cache *)t;
        rgi_tc_acquire(t);
        moved += rgi_tc_len(&c->tc);
        cache_flush_held(p, c);
        rgi_tc_release(t);
    }
    pthread_mutex_unlock(&rgi_tc_lock);
    return moved;
}

static void op_retire(void *pool, rgi_tcache *tc)
{
    rg_objpool *p = pool;
    op_cache *c = (op_cache *)tc;
    cache_flush_held(p, c); /* folds */
    p->ret_gets += RGI_LD(c->tc.gets);
    p->ret_puts += RGI_LD(c->tc.puts);
    p->ret_hits += RGI_LD(c->tc.gets);
}

/* The calling thread's cache, entered; NULL when it has none and none can
 * be made (then the caller works on the ring directly). */
static op_cache *cache_enter(rg_objpool *p, op_cache *c)
{
    for (;;) {
        if (c == NULL) {
            c = (op_cache *)rgi_tc_lookup(p, p->h.tcid);
            if (c == NULL) {
                int saved = errno;
                c = (op_cache *)rgi_tc_create(p, p->h.tcid, sizeof(op_cache) + p->cache_size * sizeof(void *),
                                              &op_class, &p->caches);
                errno = saved;
                if (c == NULL)
                    return NULL;
                c->tc.cap = p->cache_size;
            }
        }
        if (rgi_tc_enter(&c->tc)) {
            rgi_tc_fold(&c->tc);
            return c;
        }
        rgi_tc_wait_reclaim(&c->tc);
    }
}

/* ---------------------------------------------------------------------------
 * Get
 * ------------------------------------------------------------------------- */
static inline void debug_got(rg_objpool *p, void **objs, unsigned n)
{
#if RG_DEBUG_CHECKS
    for (unsigned i = 0; i < n; i++)
        rgi_objreg_get(&p->reg, "rg_objpool_get", objs[i], p->obj_size, true);
#else
    (void)p, (void)objs, (void)n;
#endif
}

/* Gathers n objects: cache, ring, creation.  All or nothing: on a shortfall
 * everything gathered goes back and 0 is returned (errno EAGAIN or ENOMEM). */
static unsigned gather(rg_objpool *p, void **objs, unsigned n)
{
    op_cache *c = cache_enter(p, NULL);
    unsigned got = 0;
    if (c) {
        unsigned len = rgi_tc_len(&c->tc);
        if (len < n && c->tc.cap) {
            /* refill: what is asked plus half a cache, as far as the ring has it */
            unsigned want = n - len + c->tc.cap / 2;
            if (len + want > c->tc.cap)
                want = c->tc.cap - len;
            /* end on a multiple of 8: then bulk calls of 8k objects copy
             * whole 16-byte pairs that never straddle a cache line (an odd
             * len made get_bulk+put_bulk of 32 take 1.5x as long) */
            unsigned even = (len + want) & ~7u;
            if (even >= n && even > len)
                want = even - len;
            len += from_ring(p, c->objs + len, want, false);
        }
        got = len < n ? len : n;
        memcpy(objs, c->objs + (len - got), got * sizeof *objs);
        rgi_tc_set_len(&c->tc, len - got);
        publish(p, c);
        rgi_tc_leave(&c->tc); /* before creating: an allocation may run the ladder */
    }
    if (got < n)
        got += from_ring(p, objs + got, n - got, false);
    unsigned hits = got;
    if (got < n) {
        int saved = errno;
        errno = EAGAIN;
        got += create_objs(p, objs + got, n - got);
        if (got == n)
            errno = saved;
    }
    if (got == n) { /* slow-path statistics live in the pool: rare, and no guard needed */
        atomic_fetch_add_explicit(&p->sgets, n, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->shits, hits, memory_order_relaxed);
        if (hits < n)
            atomic_fetch_add_explicit(&p->smisses, 1, memory_order_relaxed);
    }
    if (got < n) {
        int e = errno;
        to_ring(p, objs, got); /* all or nothing: give back what was gathered */
        errno = e;
        return 0;
    }
    return n;
}

static RGI_NOINLINE unsigned get_slow(rg_objpool *p, void **objs, unsigned n)
{
    unsigned got = gather(p, objs, n);
    if (got == n)
        return n;
    if (errno != EAGAIN || p->policy != RG_POOL_BLOCK || p->timeout_ns == 0) {
        atomic_fetch_add_explicit(&p->fails, 1, memory_order_relaxed);
        return 0;
    }
    atomic_fetch_add_explicit(&p->waits, 1, memory_order_relaxed);
    uint64_t deadline = rgi_deadline(p->timeout_ns);
    bool flushed = false;
    for (;;) {
        /* seq_cst: pairs with a put's (CAS tail; load nwaiters) and a drop's
         * (sub live; load nwaiters); also makes later puts bypass caches */
        __atomic_fetch_add(&p->h.nwaiters, 1, __ATOMIC_SEQ_CST);
        if (!flushed) {
            flush_all(p); /* objects idle in other threads' caches */
            flushed = true;
        }
        unsigned ev = atomic_load_explicit(&p->ev, memory_order_acquire);
        got = gather(p, objs, n);
        if (got == n || errno != EAGAIN) {
            __atomic_fetch_sub(&p->h.nwaiters, 1, __ATOMIC_RELAXED);
            if (got != n)
                atomic_fetch_add_explicit(&p->fails, 1, memory_order_relaxed);
            return got;
        }
        int w = rgi_futex_wait(&p->ev, ev, deadline);
        __atomic_fetch_sub(&p->h.nwaiters, 1, __ATOMIC_RELAXED);
        if (w == -ETIMEDOUT) {
            got = gather(p, objs, n);
            if (got == n)
                return n;
            atomic_fetch_add_explicit(&p->fails, 1, memory_order_relaxed);
            if (errno == EAGAIN)
                errno = ETIMEDOUT;
            return 0;
        }
    }
}

/* Out of line so the fast path needs no stack frame (a tail call). */
static RGI_NOINLINE void *get_one_slow(rg_objpool *p)
{
    void *o;
    if (get_slow(p, &o, 1) != 1)
        return NULL;
    debug_got(p, &o, 1);
    return o;
}

void *rg_objpool_get_slow(rg_objpool *p)
{
    if (RG_UNLIKELY(p == NULL)) {
        errno = EINVAL;
        return NULL;
    }
    /* fast path budget: TLS vector lookup, guard (two plain stores and a
     * load), an array pop, two counter bumps */
    op_cache *c = (op_cache *)rgi_tc_lookup(p, p->h.tcid);
    if (RG_LIKELY(c != NULL) && RG_LIKELY(rgi_tc_enter(&c->tc))) {
        rgi_tc_fold(&c->tc);
        unsigned len = rgi_tc_len(&c->tc);
        if (RG_LIKELY(len != 0)) {
            void *o = c->objs[len - 1];
            rgi_tc_set_len(&c->tc, len - 1);
            OWNER_ADD(c->tc.gets, 1); /* every fast-path get is a hit */
            rgi_tc_leave(&c->tc);
            debug_got(p, &o, 1);
            return o;
        }
        rgi_tc_leave(&c->tc);
    }
    return get_one_slow(p);
}

unsigned rg_objpool_get_bulk_slow(rg_objpool *p, void **objs, unsigned n)
{
    if (RG_UNLIKELY(p == NULL || objs == NULL || n > p->capacity)) {
        errno = EINVAL;
        return 0;
    }
    if (n == 0) {
        errno = 0;
        return 0;
    }
    op_cache *c = (op_cache *)rgi_tc_lookup(p, p->h.tcid);
    if (RG_LIKELY(c != NULL) && RG_LIKELY(rgi_tc_enter(&c->tc))) {
        rgi_tc_fold(&c->tc);
        unsigned len = rgi_tc_len(&c->tc);
        if (RG_LIKELY(len >= n)) {
            memcpy(objs, c->objs + (len - n), n * sizeof *objs);
            rgi_tc_set_len(&c->tc, len - n);
            OWNER_ADD(c->tc.gets, n);
            rgi_tc_leave(&c->tc);
            debug_got(p, objs, n);
            return n;
        }
        rgi_tc_leave(&c->tc);
    }
    if (get_slow(p, objs, n) != n)
        return 0;
    debug_got(p, objs, n);
    return n;
}

/* ---------------------------------------------------------------------------
 * Put
 * ------------------------------------------------------------------------- */
/* Debug check and reset_fn for one object; false when the put is refused. */
static inline bool put_prepare(rg_objpool *p, void *obj, const char *call)
{
#if RG_DEBUG_CHECKS
    int st = rgi_objreg_state(&p->reg, obj);
    if (st == RGI_OBJ_IDLE) {
        rgi_diag(call, "objpool \"%s\" (%p): double put of object %p (it is already in the pool)",
                 p->name, (void *)p, obj);
        return false;
    }
    if (st < 0) {
        rgi_diag(call, "objpool \"%s\" (%p): put of foreign pointer %p (this pool did not hand it out)",
                 p->name, (void *)p, obj);
        return false;
    }
#else
    (void)call;
#endif
    if (p->reset_fn)
        p->reset_fn(obj, p->arg);
#if RG_DEBUG_CHECKS
    rgi_objreg_put(&p->reg, call, obj, p->obj_size, true);
#endif
    return true;
}

static RGI_NOINLINE void put_slow(rg_objpool *p, void *const *objs, unsigned n)
{
    op_cache *c = cache_enter(p, NULL);
    atomic_fetch_add_explicit(&p->sputs, n, memory_order_relaxed);
    if (c == NULL) {
        to_ring(p, objs, n);
        return;
    }
    if (__atomic_load_n(&p->h.nwaiters, __ATOMIC_RELAXED) != 0 || c->tc.cap == 0) {
        /* someone waits: everything goes where they can see it */
        cache_flush_held(p, c);
        rgi_tc_leave(&c->tc);
        to_ring(p, objs, n);
        return;
    }
    unsigned len = rgi_tc_len(&c->tc), i = 0;
    while (i < n) {
        if (len == c->tc.cap) {
            /* flush the upper half (rte_mempool keeps the lower, colder part) */
            unsigned k = len - c->tc.cap / 2;
            unsigned moved = rgi_ring_put_burst(&p->ring, c->objs + (len - k), k);
            if (moved)
                rgi_pool_cached_add((int64_t)moved * (int64_t)p->obj_size);
            if (moved < k) /* the ring took the first `moved`: close the gap */
                memmove(c->objs + (len - k), c->objs + (len - k + moved), (k - moved) * sizeof(void *));
            len -= moved;
            if (moved == 0)
                break; /* ring full */
        }
        c->objs[len++] = objs[i++];
    }
    rgi_tc_set_len(&c->tc, len);
    publish(p, c);
    rgi_tc_leave(&c->tc);
    if (i < n)
        to_ring(p, objs + i, n - i); /* drops what the full ring refuses */
    else
        wake_waiters(p);
}

static RGI_NOINLINE int put_one_slow(rg_objpool *p, void *obj)
{
    put_slow(p, &obj, 1);
    return 0;
}

/* The cache push; inline in both entries below. */
static inline int put_cached(rg_objpool *p, void *obj)
{
    op_cache *c = (op_cache *)rgi_tc_lookup(p, p->h.tcid);
    if (RG_LIKELY(c != NULL) && RG_LIKELY(rgi_tc_enter(&c->tc))) {
        rgi_tc_fold(&c->tc);
        unsigned len = rgi_tc_len(&c->tc);
        if (RG_LIKELY(len < c->tc.cap && __atomic_load_n(&p->h.nwaiters, __ATOMIC_RELAXED) == 0)) {
            c->objs[len] = obj;
            rgi_tc_set_len(&c->tc, len + 1);
            OWNER_ADD(c->tc.puts, 1);
            rgi_tc_leave(&c->tc);
            return 0;
        }
        rgi_tc_leave(&c->tc);
    }
    return put_one_slow(p, obj);
}

static RGI_NOINLINE int put_checked(rg_objpool *p, void *obj)
{
    if (!put_prepare(p, obj, "rg_objpool_put"))
        return -EINVAL;
    return put_cached(p, obj);
}

int rg_objpool_put_slow(rg_objpool *p, void *obj)
{
    if (RG_UNLIKELY(p == NULL || obj == NULL))
        return -EINVAL;
    /* fast path budget: as get, plus the waiters check */
    if (RG_UNLIKELY(RG_DEBUG_CHECKS || p->reset_fn))
        return put_checked(p, obj);
    return put_cached(p, obj);
}

int rg_objpool_put_bulk_slow(rg_objpool *p, void *const *objs, unsigned n)
{
    if (RG_UNLIKELY(p == NULL || (objs == NULL && n)))
        return -EINVAL;
    int rc = 0;
    if (RG_UNLIKELY(RG_DEBUG_CHECKS || p->reset_fn)) {
        for (unsigned i = 0; i < n; i++) {
            if (objs[i] == NULL || !put_prepare(p, objs[i], "rg_objpool_put_bulk")) {
                /* put the good ones one by one, skip the bad */
                rc = -EINVAL;
                for (unsigned j = 0; j < i; j++)
                    put_slow(p, &objs[j], 1);
                for (unsigned j = i + 1; j < n; j++)
                    if (objs[j] && put_prepare(p, objs[j], "rg_objpool_put_bulk"))
                        put_slow(p, &objs[j], 1);
                return rc;
            }
        }
    }
    op_cache *c = (op_cache *)rgi_tc_lookup(p, p->h.tcid);
    if (RG_LIKELY(c != NULL) && RG_LIKELY(rgi_tc_enter(&c->tc))) {
        rgi_tc_fold(&c->tc);
        unsigned len = rgi_tc_len(&c->tc);
        if (RG_LIKELY(len + n <= c->tc.cap && __atomic_load_n(&p->h.nwaiters, __ATOMIC_RELAXED) == 0)) {
            memcpy(c->objs + len, objs, n * sizeof *objs);
            rgi_tc_set_len(&c->tc, len + n);
            OWNER_ADD(c->tc.puts, n);
            rgi_tc_leave(&c->tc);
            return 0;
        }
        rgi_tc_leave(&c->tc);
    }
    if (n)
        put_slow(p, objs, n);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Life cycle, stats, inspection
 * ------------------------------------------------------------------------- */
static pthread_once_t rows_once = PTHREAD_ONCE_INIT;
static void register_rows(void);

rg_objpool *rg_objpool_new(const rg_objpool_opts *o)
{
    pthread_once(&rows_once, register_rows);
    if (rgi_ensure_init() != 0)
        return NULL;
    if (o == NULL || o->obj_size == 0 || o->capacity == 0 || o->capacity > ((size_t)1 << 30) ||
        o->prefill > o->capacity || (o->policy != RG_POOL_FAIL && o->policy != RG_POOL_BLOCK) ||
        o->obj_size > ((size_t)1 << 40)) {
        errno = EINVAL;
        return NULL;
    }
    rgi_pool_pressure_init();
    rg_objpool *p = rg_malloc_aligned(sizeof *p, 64);
    if (p == NULL)
        return NULL;
    memset(p, 0, sizeof *p);
    p->obj_size = o->obj_size;
    p->capacity = o->capacity;
    p->cache_size = o->cache_size > CACHE_MAX ? CACHE_MAX : (unsigned)o->cache_size;
    if (p->cache_size > o->capacity)
        p->cache_size = (unsigned)o->capacity;
    p->policy = o->policy;
    p->timeout_ns = o->timeout_ns;
    p->init_fn = o->init_fn;
    p->reset_fn = o->reset_fn;
    p->arg = o->arg;
    snprintf(p->name, sizeof p->name, "%s", o->name ? o->name : "objpool");
    size_t ring = o->ring_size && o->ring_size < o->capacity ? o->ring_size : o->capacity;
    if (rgi_ring_init(&p->ring, ring) != 0) {
        rg_free(p);
        errno = ENOMEM;
        return NULL;
    }
#if RG_DEBUG_CHECKS
    rgi_objreg_init(&p->reg, "objpool", p->name, p);
#endif
    p->h.tcid = rgi_tc_id_alloc();
    if (p->h.tcid == UINT32_MAX) {
        rgi_ring_fini(&p->ring);
        rg_free(p);
        errno = ENOMEM;
        return NULL;
    }
    /* the inline fast paths skip reset_fn and the debug registry */
    p->h.id = rgi_tc_fast_id(p->h.tcid, !RG_DEBUG_CHECKS && o->reset_fn == NULL);
    p->magic = OP_MAGIC;
    pthread_mutex_lock(&rgi_tc_lock);
    p->next = all_pools;
    if (all_pools)
        all_pools->prev = p;
    all_pools = p;
    pthread_mutex_unlock(&rgi_tc_lock);
    for (size_t done = 0; done < o->prefill;) {
        void *batch[64];
        unsigned want = o->prefill - done < 64 ? (unsigned)(o->prefill - done) : 64;
        unsigned made = create_objs(p, batch, want);
#if RG_DEBUG_CHECKS
        for (unsigned i = 0; i < made; i++)
            rgi_objreg_put(&p->reg, "rg_objpool_new", batch[i], p->obj_size, true);
#endif
        to_ring(p, batch, made);
        if (made < want) {
            rg_objpool_free(p);
            errno = ENOMEM;
            return NULL;
        }
        done += made;
    }
    return p;
}

void rg_objpool_free(rg_objpool *p)
{
    if (p == NULL)
        return;
    if (p->magic != OP_MAGIC) {
        if (RG_DEBUG_CHECKS)
            rgi_diag("rg_objpool_free", "%p is not a live objpool (freed or foreign)", (void *)p);
        return;
    }
    pthread_mutex_lock(&rgi_tc_lock);
    p->magic = 0;
    if (p->prev)
        p->prev->next = p->next;
    else
        all_pools = p->next;
    if (p->next)
        p->next->prev = p->prev;
    for (rgi_tcache *t = p->caches; t; t = t->next)
        rgi_tc_mark(t);
    if (p->caches)
        rgi_tc_fence();
    for (rgi_tcache *t = p->caches; t; t = t->next) {
        op_cache *c = (op_cache *)t;
        rgi_tc_acquire(t);
        unsigned len = rgi_tc_len(&c->tc);
        rgi_tc_set_len(&c->tc, 0);
        publish(p, c);
        drop_objs(p, c->objs, len);
    }
    rgi_tc_orphan_all(&p->caches);
    rgi_tc_id_free(p->h.tcid);
    pthread_mutex_unlock(&rgi_tc_lock);
    /* the orphaned caches keep reclaim = 1 until their owners free them:
     * nobody may use this pool any more, and a dead cache is never entered */
    void *batch[64];
    unsigned k;
    while ((k = from_ring(p, batch, 64, false)) > 0)
        drop_objs(p, batch, k);
    rgi_ring_fini(&p->ring);
#if RG_DEBUG_CHECKS
    rgi_objreg_fini(&p->reg);
#endif
    rg_free(p);
}

/* Fills *st; rgi_tc_lock held (the caches list and retired counts). */
static void stats_locked(rg_objpool *p, rg_objpool_stats *st)
{
    memset(st, 0, sizeof *st);
    st->gets = p->ret_gets + atomic_load_explicit(&p->sgets, memory_order_relaxed);
    st->puts = p->ret_puts + atomic_load_explicit(&p->sputs, memory_order_relaxed);
    st->hits = p->ret_hits + atomic_load_explicit(&p->shits, memory_order_relaxed);
    st->misses = p->ret_misses + atomic_load_explicit(&p->smisses, memory_order_relaxed);
    for (rgi_tcache *t = p->caches; t; t = t->next) {
        uint64_t g, u;
        rgi_tc_counts(t, &g, &u); /* folded plus what the inline paths count */
        st->gets += g;
        st->puts += u;
        st->hits += g;
        st->in_caches += rgi_tc_len(t);
        st->threads++;
    }
    st->creates = atomic_load_explicit(&p->creates, memory_order_relaxed);
    st->drops = atomic_load_explicit(&p->drops, memory_order_relaxed);
    st->fails = atomic_load_explicit(&p->fails, memory_order_relaxed);
    st->waits = atomic_load_explicit(&p->waits, memory_order_relaxed);
    st->live = atomic_load_explicit(&p->live, memory_order_relaxed);
    st->capacity = p->capacity;
    st->in_ring = rgi_ring_count(&p->ring);
}

void rg_objpool_read_stats(rg_objpool *p, rg_objpool_stats *st)
{
    if (st == NULL)
        return;
    memset(st, 0, sizeof *st);
    if (p == NULL)
        return;
    pthread_mutex_lock(&rgi_tc_lock);
    stats_locked(p, st);
    pthread_mutex_unlock(&rgi_tc_lock);
}

/* Rows for rg_read_memstats, /debug/vars and the dashboard. */
static size_t pool_rows(rgi_pool_row *rows, size_t max, void *arg)
{
    (void)arg;
    size_t n = 0;
    pthread_mutex_lock(&rgi_tc_lock);
    for (rg_objpool *p = all_pools; p && n < max; p = p->next, n++) {
        rg_objpool_stats st;
        stats_locked(p, &st);
        rows[n] = (rgi_pool_row){.kind = "objpool", .name = p->name, .hits = st.hits, .misses = st.misses,
                                 .cached_bytes = (st.in_ring + st.in_caches) * p->obj_size, .live = st.live};
    }
    pthread_mutex_unlock(&rgi_tc_lock);
    return n;
}

static void register_rows(void)
{
    rgi_stats_pool_source(pool_rows, NULL);
}

int rg_objpool_caches(rg_objpool *p, rg_objpool_cache_info *out, unsigned n)
{
    if (p == NULL || (out == NULL && n))
        return -EINVAL;
    int count = 0;
    pthread_mutex_lock(&rgi_tc_lock);
    for (rgi_tcache *t = p->caches; t; t = t->next, count++) {
        if ((unsigned)count >= n)
            continue;
        out[count].tid = t->tid;
        out[count].cached = rgi_tc_len(t);
        rgi_tc_counts(t, &out[count].gets, &out[count].puts);
    }
    pthread_mutex_unlock(&rgi_tc_lock);
    return count;
}

int rg_objpool_flush(rg_objpool *p)
{
    if (p == NULL)
        return -EINVAL;
    return (int)flush_all(p);
}

/* The limit ladder: every objpool lets go of its idle objects. */
size_t rgi_objpool_drain_all(void)
{
    size_t freed = 0;
    pthread_mutex_lock(&rgi_tc_lock);
    bool any = false;
    for (rg_objpool *p = all_pools; p; p = p->next)
        for (rgi_tcache *t = p->caches; t; t = t->next) {
            rgi_tc_mark(t);
            any = true;
        }
    if (any)
        rgi_tc_fence();
    for (rg_objpool *p = all_pools; p; p = p->next) {
        for (rgi_tcache *t = p->caches; t; t = t->next) {
            op_cache *c = (op_cache *)t;
            rgi_tc_acquire(t);
            rgi_tc_fold(t); /* the stats keep what the inline paths counted */
            unsigned len = rgi_tc_len(&c->tc);
            rgi_tc_set_len(&c->tc, 0);
            publish(p, c);
            drop_objs(p, c->objs, len);
            freed += (size_t)len * p->obj_size;
            rgi_tc_release(t);
        }
        void *batch[64];
        unsigned k;
        while ((k = from_ring(p, batch, 64, false)) > 0) {
            drop_objs(p, batch, k);
            freed += (size_t)k * p->obj_size;
        }
    }
    pthread_mutex_unlock(&rgi_tc_lock);
    return freed;
}
