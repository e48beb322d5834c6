/* pool/syncpool.c — rg_syncpool: Go's sync.Pool, plus the pools' epochs and
 * their rung of the limit ladder.
 *
 * Algorithm (Go's sync.Pool, runtime/pool.go, mapped onto threads): each
 * thread has a private slot and a small LIFO cache (owner-only, behind the
 * asymmetric guard of pool_internal.h); behind them a shared lock-free list
 * (the primary ring, Vyukov's bounded MPMC queue) and a victim ring.  Get:
 * private, cache, primary (refilling half a cache), victim, then new.  Put:
 * private, cache, then half the cache moves to the primary; what the ring
 * refuses is freed (sync.Pool may drop any object at any time).
 *
 * Epochs (Go's poolCleanup): the old victim is freed, the primary becomes
 * the victim, an empty ring becomes the primary, and every thread's private
 * slot and cache move to the victim.  The rings are swapped by pointer; a
 * thread still holding the old pointer only puts into or gets from a ring
 * that is still live, so no object is lost.  Epochs come from a timer
 * thread (1 s) until the collector calls rgi_pool_epoch at each cycle; the
 * limit ladder drains everything (primary, victim, caches) instead.
 *
 * Guarantee: get+put on a thread's private slot is a few plain loads and
 * stores; idle objects survive at most two epochs; memory idle in any
 * thread's cache is reclaimable by any thread.  Objects must be at least
 * pointer-sized (freeing links idle objects through their first word).
 */
#include "pool_internal.h"

#define SP_MAGIC 0x73706f6cu /* "spol" */
#define SP_CACHE 16u
#define SP_BATCH 64u

/* tc.priv: Go's private slot, with the inline paths' count in its high
 * bits (regio/pool.h); tc.lenw: objects in objs (owner, or a reclaimer
 * holding the guard; never a count here); tc.pub: objects last published
 * to pool_cached (read by stats); tc.gets/puts: fast-path calls, folded
 * (all gets local hits).  The private slot's fast paths are inline in
 * regio/pool.h; whoever holds the guard folds (rgi_tc_fold) before it
 * changes the slot or the length. */
typedef struct sp_cache {
    rgi_tcache tc;
    void *objs[SP_CACHE];
} sp_cache;

struct rg_syncpool {
    rg_pool_head h;           /* id and slow: read by the inline fast paths */
    uint32_t magic;
    size_t obj_size;
    void *(*new_fn)(void *);
    void (*free_fn)(void *, void *);
    void *arg;
    char name[48];
    atomic_size_t obj_bytes;  /* bytes counted per idle object */
    _Alignas(64) _Atomic(rgi_ring *) primary;
    _Atomic(rgi_ring *) victim;
    rgi_ring rings[2];
    _Alignas(64) atomic_uint_fast64_t sgets, sputs, hits_shared, hits_victim, news, frees, epochs;
    /* under rgi_tc_lock */
    rgi_tcache *caches;
    struct rg_syncpool *next, *prev;
    uint64_t ret_gets, ret_puts, ret_hits;
#if RG_DEBUG_CHECKS
    rgi_objreg reg;
#endif
};

static rg_syncpool *all_pools; /* under rgi_tc_lock */

#define OWNER_ADD(ctr, v) RGI_ST(ctr, RGI_LD(ctr) + (v))

/* The private slot's object (guard held, after a fold). */
static inline void *priv_obj(sp_cache *c)
{
    return (void *)(RGI_LD(c->tc.priv) & RG_POOL_PRIV_PTR);
}
static inline void priv_set(sp_cache *c, void *o)
{
    RGI_ST(c->tc.priv, (uintptr_t)o);
}
/* Only objects within the slot's address bits may sit in it. */
static inline bool priv_fits(const void *o)
{
    return (uintptr_t)o <= RG_POOL_PRIV_PTR;
}

static void sp_retire(void *pool, rgi_tcache *tc);
static const rgi_tc_class sp_class = {sp_retire};

static inline RGI_UNUSED size_t dbg_size(rg_syncpool *p, void *o)
{
    if (p->obj_size)
        return p->obj_size;
    return rgi_page_owns(o) ? rgi_arena_usable(o) : 0;
}

/* ---------------------------------------------------------------------------
 * Freeing: objects to free are linked through their first word and freed
 * after every lock is dropped (free_fn is the user's code).
 * ------------------------------------------------------------------------- */
typedef struct freelist {
    void *head;
    size_t n;
} freelist;

static void fl_push(rg_syncpool *p, freelist *fl, void *o)
{
#if RG_DEBUG_CHECKS
    rgi_objreg_get(&p->reg, "rg_syncpool (free)", o, dbg_size(p, o), false);
#else
    (void)p;
#endif
    *(void **)o = fl->head;
    fl->head = o;
    fl->n++;
}

static void fl_free(rg_syncpool *p, freelist *fl)
{
    for (void *o = fl->head, *next; o; o = next) {
        next = *(void **)o;
        if (p->free_fn)
            p->free_fn(o, p->arg);
        else
            rg_free(o);
    }
    if (fl->n)
        atomic_fetch_add_explicit(&p->frees, fl->n, memory_order_relaxed);
    fl->head = NULL;
    fl->n = 0;
}

static inline int64_t obj_bytes(rg_syncpool *p)
{
    return (int64_t)atomic_load_explicit(&p->obj_bytes, memory_order_relaxed);
}

/* Into a ring; what it refuses goes to fl. */
static void to_ring(rg_syncpool *p, rgi_ring *r, void *const *objs, unsigned n, freelist *fl)
{
    if (n == 0)
        return;
    unsigned k = rgi_ring_put_burst(r, objs, n);
    if (k)
        rgi_pool_cached_add((int64_t)k * obj_bytes(p));
    for (unsigned i = k; i < n; i++)
        fl_push(p, fl, objs[i]);
}

static unsigned from_ring(rg_syncpool *p, rgi_ring *r, void **objs, unsigned n)
{
    unsigned k = rgi_ring_get_burst(r, objs, n);
    if (k)
        rgi_pool_cached_add(-(int64_t)k * obj_bytes(p));
    return k;
}

static inline void publish(rg_syncpool *p, sp_cache *c)
{
    unsigned now = rgi_tc_len(&c->tc) + (priv_obj(c) != NULL);
    unsigned pub = RGI_LD(c->tc.pub);
    if (now != pub) {
        rgi_pool_cached_add(((int64_t)now - (int64_t)pub) * obj_bytes(p));
        RGI_ST(c->tc.pub, now);
    }
}

/* Empties a held cache (owner entered or reclaimer holding the guard) into
 * ring r, or into fl when r is NULL. */
static void cache_empty_held(rg_syncpool *p, sp_cache *c, rgi_ring *r, freelist *fl)
{
    void *objs[SP_CACHE + 1];
    rgi_tc_fold(&c->tc);
    unsigned n = rgi_tc_len(&c->tc);
    memcpy(objs, c->objs, n * sizeof *objs);
    if (priv_obj(c))
        objs[n++] = priv_obj(c);
    priv_set(c, NULL);
    rgi_tc_set_len(&c->tc, 0);
    publish(p, c);
    if (r)
        to_ring(p, r, objs, n, fl);
    else
        for (unsigned i = 0; i < n; i++)
            fl_push(p, fl, objs[i]);
}

static void sp_retire(void *pool, rgi_tcache *tc)
{
    rg_syncpool *p = pool;
    sp_cache *c = (sp_cache *)tc;
    freelist fl = {0};
    cache_empty_held(p, c, atomic_load_explicit(&p->primary, memory_order_acquire), &fl);
    fl_free(p, &fl); /* what a full primary refuses (free_fn under the lock: documented) */
    p->ret_gets += RGI_LD(c->tc.gets); /* folded by cache_empty_held */
    p->ret_puts += RGI_LD(c->tc.puts);
    p->ret_hits += RGI_LD(c->tc.gets);
}

static sp_cache *cache_enter(rg_syncpool *p)
{
    sp_cache *c = NULL;
    for (;;) {
        if (c == NULL) {
            c = (sp_cache *)rgi_tc_lookup(p, p->h.tcid);
            if (c == NULL) {
                int saved = errno;
                c = (sp_cache *)rgi_tc_create(p, p->h.tcid, sizeof(sp_cache), &sp_class, &p->caches);
                errno = saved;
                if (c == NULL)
                    return NULL;
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
 * Get and put
 * ------------------------------------------------------------------------- */
static inline void *debug_got(rg_syncpool *p, void *o)
{
#if RG_DEBUG_CHECKS
    rgi_objreg_get(&p->reg, "rg_syncpool_get", o, dbg_size(p, o), false);
#else
    (void)p;
#endif
    return o;
}

static RGI_NOINLINE void *get_slow(rg_syncpool *p)
{
    atomic_fetch_add_explicit(&p->sgets, 1, memory_order_relaxed);
    void *o = NULL;
    rgi_ring *pr = atomic_load_explicit(&p->primary, memory_order_acquire);
    rgi_ring *vi = atomic_load_explicit(&p->victim, memory_order_acquire);
    sp_cache *c = cache_enter(p);
    if (c != NULL) {
        unsigned len = rgi_tc_len(&c->tc);
        if (priv_obj(c)) { /* a reclaimer came and went: just retry locally */
            o = priv_obj(c);
            priv_set(c, NULL);
        } else if (len) {
            o = c->objs[len - 1];
            rgi_tc_set_len(&c->tc, len - 1);
        } else {
            unsigned k = from_ring(p, pr, c->objs, SP_CACHE / 2);
            if (k) {
                rgi_tc_set_len(&c->tc, k - 1);
                o = c->objs[k - 1];
                atomic_fetch_add_explicit(&p->hits_shared, 1, memory_order_relaxed);
            }
        }
        publish(p, c);
        rgi_tc_leave(&c->tc);
    } else if (from_ring(p, pr, &o, 1)) {
        atomic_fetch_add_explicit(&p->hits_shared, 1, memory_order_relaxed);
    }
    if (o == NULL && from_ring(p, vi, &o, 1))
        atomic_fetch_add_explicit(&p->hits_victim, 1, memory_order_relaxed);
    if (o != NULL)
        return debug_got(p, o);
    /* Nothing idle: a new object (never while holding the guard). */
    o = p->new_fn ? p->new_fn(p->arg) : rgi_arena_malloc(p->obj_size);
    if (o == NULL) {
        if (errno == 0)
            errno = ENOMEM;
        return NULL;
    }
    atomic_fetch_add_explicit(&p->news, 1, memory_order_relaxed);
    if (RG_UNLIKELY(atomic_load_explicit(&p->obj_bytes, memory_order_relaxed) == 0)) {
        size_t b = p->obj_size ? p->obj_size : (rgi_page_owns(o) ? rgi_arena_usable(o) : 0);
        size_t zero = 0;
        atomic_compare_exchange_strong_explicit(&p->obj_bytes, &zero, b, memory_order_relaxed,
                                                memory_order_relaxed);
    }
    return o;
}

void *rg_syncpool_get_slow(rg_syncpool *p)
{
    if (RG_UNLIKELY(p == NULL)) {
        errno = EINVAL;
        return NULL;
    }
    /* fast path budget: TLS vector lookup, guard, private slot swap */
    sp_cache *c = (sp_cache *)rgi_tc_lookup(p, p->h.tcid);
    if (RG_LIKELY(c != NULL) && RG_LIKELY(rgi_tc_enter(&c->tc))) {
        rgi_tc_fold(&c->tc);
        void *o = priv_obj(c);
        unsigned len = rgi_tc_len(&c->tc);
        if (RG_LIKELY(o != NULL)) {
            priv_set(c, NULL);
        } else if (len) {
            o = c->objs[len - 1];
            rgi_tc_set_len(&c->tc, len - 1);
        } else {
            rgi_tc_leave(&c->tc);
            return get_slow(p);
        }
        OWNER_ADD(c->tc.gets, 1); /* every fast-path get is a local hit */
        rgi_tc_leave(&c->tc);
        return debug_got(p, o);
    }
    return get_slow(p);
}

static RGI_NOINLINE void put_slow(rg_syncpool *p, void *obj)
{
    atomic_fetch_add_explicit(&p->sputs, 1, memory_order_relaxed);
    freelist fl = {0};
    rgi_ring *pr = atomic_load_explicit(&p->primary, memory_order_acquire);
    sp_cache *c = cache_enter(p);
    if (c == NULL) {
        to_ring(p, pr, &obj, 1, &fl);
    } else {
        if (priv_obj(c) == NULL && priv_fits(obj)) {
            priv_set(c, obj);
        } else {
            unsigned len = rgi_tc_len(&c->tc);
            if (len == SP_CACHE) { /* the upper half goes to the shared list */
                to_ring(p, pr, c->objs + SP_CACHE / 2, SP_CACHE / 2, &fl);
                len = SP_CACHE / 2;
            }
            c->objs[len++] = obj;
            rgi_tc_set_len(&c->tc, len);
        }
        publish(p, c);
        rgi_tc_leave(&c->tc);
    }
    fl_free(p, &fl);
}

void rg_syncpool_put_slow(rg_syncpool *p, void *obj)
{
    if (RG_UNLIKELY(p == NULL || obj == NULL))
        return;
#if RG_DEBUG_CHECKS
    if (p->free_fn == NULL && !rgi_page_owns(obj)) {
        rgi_diag("rg_syncpool_put", "syncpool \"%s\" (%p): put of foreign pointer %p (not regio memory)",
                 p->name, (void *)p, obj);
        return;
    }
    if (p->obj_size && rgi_page_owns(obj) && rgi_arena_usable(obj) < p->obj_size) {
        rgi_diag("rg_syncpool_put", "syncpool \"%s\" (%p): put of foreign pointer %p (smaller than obj_size)",
                 p->name, (void *)p, obj);
        return;
    }
    if (rgi_objreg_put(&p->reg, "rg_syncpool_put", obj, dbg_size(p, obj), false) != 0)
        return;
#endif
    sp_cache *c = (sp_cache *)rgi_tc_lookup(p, p->h.tcid);
    if (RG_LIKELY(c != NULL) && RG_LIKELY(rgi_tc_enter(&c->tc))) {
        rgi_tc_fold(&c->tc);
        unsigned len = rgi_tc_len(&c->tc);
        if (RG_LIKELY(priv_obj(c) == NULL && priv_fits(obj))) {
            priv_set(c, obj);
        } else if (len < SP_CACHE) {
            c->objs[len] = obj;
            rgi_tc_set_len(&c->tc, len + 1);
        } else {
            rgi_tc_leave(&c->tc);
            put_slow(p, obj);
            return;
        }
        OWNER_ADD(c->tc.puts, 1);
        rgi_tc_leave(&c->tc);
        return;
    }
    put_slow(p, obj);
}

/* ---------------------------------------------------------------------------
 * Epochs and draining (with rgi_tc_lock held; frees go to fl)
 * ------------------------------------------------------------------------- */
static void ring_to_fl(rg_syncpool *p, rgi_ring *r, freelist *fl)
{
    void *batch[SP_BATCH];
    unsigned k;
    while ((k = from_ring(p, r, batch, SP_BATCH)) > 0)
        for (unsigned i = 0; i < k; i++)
            fl_push(p, fl, batch[i]);
}

/* drain: free everything; else one epoch. Caches must be marked and fenced. */
static void sp_epoch_locked(rg_syncpool *p, bool drain, freelist *fl)
{
    rgi_ring *pr = atomic_load_explicit(&p->primary, memory_order_relaxed);
    rgi_ring *vi = atomic_load_explicit(&p->victim, memory_order_relaxed);
    ring_to_fl(p, vi, fl);
    if (drain) {
        ring_to_fl(p, pr, fl);
    } else {
        /* release: a thread that loads the new pointers sees initialized rings */
        atomic_store_explicit(&p->primary, vi, memory_order_release);
        atomic_store_explicit(&p->victim, pr, memory_order_release);
        atomic_fetch_add_explicit(&p->epochs, 1, memory_order_relaxed);
    }
    for (rgi_tcache *t = p->caches; t; t = t->next) {
        rgi_tc_acquire(t);
        cache_empty_held(p, (sp_cache *)t, drain ? NULL : pr, fl);
        rgi_tc_release(t);
    }
}

/* Runs an epoch (or a drain) over every syncpool, with one fence for all.
 * Objects of pools without a free_fn are freed after the lock is dropped;
 * a free_fn runs under the lock (documented: it must not use pools). */
static size_t epoch_all(bool drain)
{
    size_t freed = 0;
    freelist later = {0};
    pthread_mutex_lock(&rgi_tc_lock);
    bool any = false;
    for (rg_syncpool *p = all_pools; p; p = p->next)
        for (rgi_tcache *t = p->caches; t; t = t->next) {
            rgi_tc_mark(t);
            any = true;
        }
    if (any)
        rgi_tc_fence();
    for (rg_syncpool *p = all_pools; p; p = p->next) {
        freelist fl = {0};
        sp_epoch_locked(p, drain, &fl);
        freed += fl.n * (size_t)obj_bytes(p);
        if (fl.n == 0)
            continue;
        if (p->free_fn != NULL) {
            fl_free(p, &fl);
            continue;
        }
        void *tail = fl.head; /* rg_free needs no pool: merge into one list */
        while (*(void **)tail)
            tail = *(void **)tail;
        *(void **)tail = later.head;
        later.head = fl.head;
        later.n += fl.n;
        atomic_fetch_add_explicit(&p->frees, fl.n, memory_order_relaxed);
    }
    pthread_mutex_unlock(&rgi_tc_lock);
    for (void *o = later.head, *next; o; o = next) {
        next = *(void **)o;
        rg_free(o);
    }
    return freed;
}

size_t rgi_pool_epoch(void)
{
    return epoch_all(false);
}

size_t rgi_pool_drain_all(void)
{
    return epoch_all(true) + rgi_objpool_drain_all();
}

static size_t pool_pressure(size_t need, void *arg)
{
    (void)need, (void)arg;
    return rgi_pool_drain_all();
}

static pthread_once_t pressure_once = PTHREAD_ONCE_INIT;
static void pressure_register(void)
{
    rgi_pressure_register(RGI_PRESSURE_POOLS, pool_pressure, NULL);
}

void rgi_pool_pressure_init(void)
{
    pthread_once(&pressure_once, pressure_register);
}

/* The epoch timer: stands in for the collector's cycles. */
uint64_t rgi_pool_epoch_ns = 1000000000u;
static pthread_once_t timer_once = PTHREAD_ONCE_INIT;

static void *epoch_timer(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec ts = {(time_t)(rgi_pool_epoch_ns / 1000000000u), (long)(rgi_pool_epoch_ns % 1000000000u)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        rgi_pool_epoch();
    }
    return NULL;
}

static void timer_start(void)
{
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &a, epoch_timer, NULL) != 0 && RG_DEBUG_CHECKS)
        rgi_diag("rg_syncpool_new", "cannot start the pool epoch timer; epochs will come from limit pressure only");
    pthread_attr_destroy(&a);
}

/* ---------------------------------------------------------------------------
 * Life cycle and stats
 * ------------------------------------------------------------------------- */
static pthread_once_t rows_once = PTHREAD_ONCE_INIT;
static void register_rows(void);

rg_syncpool *rg_syncpool_new(const rg_syncpool_opts *o)
{
    pthread_once(&rows_once, register_rows);
    if (rgi_ensure_init() != 0)
        return NULL;
    if (o == NULL || (o->obj_size == 0 && o->new_fn == NULL) || o->obj_size > ((size_t)1 << 40)) {
        errno = EINVAL;
        return NULL;
    }
    rgi_pool_pressure_init();
    pthread_once(&timer_once, timer_start);
    rg_syncpool *p = rg_malloc_aligned(sizeof *p, 64);
    if (p == NULL)
        return NULL;
    memset(p, 0, sizeof *p);
    p->obj_size = o->obj_size < sizeof(void *) && o->obj_size ? sizeof(void *) : o->obj_size;
    p->new_fn = o->new_fn;
    p->free_fn = o->free_fn;
    p->arg = o->arg;
    atomic_init(&p->obj_bytes, p->obj_size);
    snprintf(p->name, sizeof p->name, "%s", o->name ? o->name : "syncpool");
    size_t cap = o->shared_cap ? o->shared_cap : 1024;
    if (rgi_ring_init(&p->rings[0], cap) != 0) {
        rg_free(p);
        errno = ENOMEM;
        return NULL;
    }
    if (rgi_ring_init(&p->rings[1], cap) != 0) {
        rgi_ring_fini(&p->rings[0]);
        rg_free(p);
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&p->primary, &p->rings[0]);
    atomic_init(&p->victim, &p->rings[1]);
#if RG_DEBUG_CHECKS
    rgi_objreg_init(&p->reg, "syncpool", p->name, p);
#endif
    p->h.tcid = rgi_tc_id_alloc();
    if (p->h.tcid == UINT32_MAX) {
        rgi_ring_fini(&p->rings[0]);
        rgi_ring_fini(&p->rings[1]);
        rg_free(p);
        errno = ENOMEM;
        return NULL;
    }
    /* the inline fast paths skip reset_fn and the debug registry */
    p->h.id = rgi_tc_fast_id(p->h.tcid, !RG_DEBUG_CHECKS);
    p->magic = SP_MAGIC;
    pthread_mutex_lock(&rgi_tc_lock);
    p->next = all_pools;
    if (all_pools)
        all_pools->prev = p;
    all_pools = p;
    pthread_mutex_unlock(&rgi_tc_lock);
    return p;
}

void rg_syncpool_free(rg_syncpool *p)
{
    if (p == NULL)
        return;
    if (p->magic != SP_MAGIC) {
        if (RG_DEBUG_CHECKS)
            rgi_diag("rg_syncpool_free", "%p is not a live syncpool (freed or foreign)", (void *)p);
        return;
    }
    freelist fl = {0};
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
    sp_epoch_locked(p, true, &fl); /* takes every cache (reclaim stays set: they die) */
    for (rgi_tcache *t = p->caches; t; t = t->next)
        rgi_tc_mark(t);
    rgi_tc_orphan_all(&p->caches);
    rgi_tc_id_free(p->h.tcid);
    pthread_mutex_unlock(&rgi_tc_lock);
    fl_free(p, &fl);
    rgi_ring_fini(&p->rings[0]);
    rgi_ring_fini(&p->rings[1]);
#if RG_DEBUG_CHECKS
    rgi_objreg_fini(&p->reg);
#endif
    rg_free(p);
}

/* Fills *st; rgi_tc_lock held (the caches list and retired counts). */
static void stats_locked(rg_syncpool *p, rg_syncpool_stats *st)
{
    uint64_t fast_gets = p->ret_gets, fast_puts = p->ret_puts, hits = p->ret_hits, cached = 0;
    for (rgi_tcache *t = p->caches; t; t = t->next) {
        sp_cache *c = (sp_cache *)t;
        uint64_t g, u;
        rgi_tc_counts(t, &g, &u); /* folded plus what the inline paths count */
        fast_gets += g;
        fast_puts += u;
        hits += g;
        cached += RGI_LD(c->tc.pub);
    }
    memset(st, 0, sizeof *st);
    st->gets = fast_gets + atomic_load_explicit(&p->sgets, memory_order_relaxed);
    st->puts = fast_puts + atomic_load_explicit(&p->sputs, memory_order_relaxed);
    st->hits_local = hits;
    st->hits_shared = atomic_load_explicit(&p->hits_shared, memory_order_relaxed);
    st->hits_victim = atomic_load_explicit(&p->hits_victim, memory_order_relaxed);
    st->news = atomic_load_explicit(&p->news, memory_order_relaxed);
    st->frees = atomic_load_explicit(&p->frees, memory_order_relaxed);
    st->epochs = atomic_load_explicit(&p->epochs, memory_order_relaxed);
    st->cached = cached + rgi_ring_count(&p->rings[0]) + rgi_ring_count(&p->rings[1]);
}

void rg_syncpool_read_stats(rg_syncpool *p, rg_syncpool_stats *st)
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

/* Rows for rg_read_memstats, /debug/vars and the dashboard: a get is a miss
 * when New had to make the object. */
static size_t pool_rows(rgi_pool_row *rows, size_t max, void *arg)
{
    (void)arg;
    size_t n = 0;
    pthread_mutex_lock(&rgi_tc_lock);
    for (rg_syncpool *p = all_pools; p && n < max; p = p->next, n++) {
        rg_syncpool_stats st;
        stats_locked(p, &st);
        rows[n] = (rgi_pool_row){.kind = "syncpool", .name = p->name,
                                 .hits = st.hits_local + st.hits_shared + st.hits_victim, .misses = st.news,
                                 .cached_bytes = st.cached * atomic_load_explicit(&p->obj_bytes, memory_order_relaxed),
                                 .live = st.cached};
    }
    pthread_mutex_unlock(&rgi_tc_lock);
    return n;
}

static void register_rows(void)
{
    rgi_stats_pool_source(pool_rows, NULL);
}
