/* pool/tcache.c — per-thread caches for every pool kind: pool ids, each
 * thread's vector of caches, creation, thread exit, and the reclaim side of
 * the asymmetric guard (see pool_internal.h for the protocol and why it is
 * correct).
 *
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) makes every thread of the
 * process that is running execute a full memory barrier before it returns;
 * a thread that is not running passes through the scheduler's own barrier.
 * Registered once, at the first pool's creation, before any cache exists.
 */
#include "pool_internal.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

pthread_mutex_t rgi_tc_lock = PTHREAD_MUTEX_INITIALIZER;
bool rgi_tc_asym;
/* The never-enterable cache every empty slot points to: reclaim stays 1,
 * so an enter fails (and drops busy again) without a NULL check.  Many
 * threads store its busy word; only threads without a cache do. */
rgi_tcache rgi_tc_none = {.reclaim = 1};
#define NONE8 &rgi_tc_none, &rgi_tc_none, &rgi_tc_none, &rgi_tc_none, &rgi_tc_none, &rgi_tc_none, &rgi_tc_none, &rgi_tc_none
#define NONE64 NONE8, NONE8, NONE8, NONE8, NONE8, NONE8, NONE8, NONE8
/* The vector of a thread that has no cache yet (never written). */
static rgi_tcache *const tc_empty_vec[RG_POOL_FAST_IDS] = {NONE64, NONE64, NONE64, NONE64, NONE64, NONE64, NONE64, NONE64};
_Static_assert(RG_POOL_FAST_IDS == 512, "tc_empty_vec's initializer");
_Static_assert(sizeof(rg_pool_tc) == 128, "the caches' arrays start on a cache line");
/* initial-exec: the inline fast paths in regio/pool.h reach it with one
 * %fs-relative load, also from a program linked with the shared library */
RG_EXPORT __thread rg_pool_tc **rg_pool_tls __attribute__((tls_model("initial-exec"))) = (rg_pool_tc **)tc_empty_vec;
/* The thread's last-used cache (regio/pool.h).  Only its owner writes it;
 * it is cleared before the cache it names is freed. */
RG_EXPORT __thread rg_pool_last rg_pool_tls_last __attribute__((tls_model("initial-exec")));

static void forget_last(rgi_tcache *tc)
{
    if (rg_pool_tls_last.tc == tc) {
        rg_pool_tls_last.pool = NULL;
        rg_pool_tls_last.tc = NULL;
    }
}

static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static uint32_t next_id = 1;    /* under rgi_tc_lock; 0 is never a cache */
static uint32_t *free_ids;      /* recycled ids, under rgi_tc_lock */
static uint32_t nfree_ids, cap_free_ids;

static void tc_thread_exit(void *arg);

/* fork(): the pools' registry lock must not be held by another thread at
 * the fork, or the child could never use a pool again.  Taken before the
 * core's own prepare handlers run (registered later, so run earlier), the
 * same order the pools take them in (registry lock, then arena). */
static void tc_atfork_prepare(void) { pthread_mutex_lock(&rgi_tc_lock); }
static void tc_atfork_release(void) { pthread_mutex_unlock(&rgi_tc_lock); }

static void tc_init(void)
{
    pthread_atfork(tc_atfork_prepare, tc_atfork_release, tc_atfork_release);
    pthread_key_create(&tc_key, tc_thread_exit);
    int saved = errno;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
        rgi_tc_asym = true;
    errno = saved;
}

uint32_t rgi_tc_id_alloc(void)
{
    pthread_once(&tc_once, tc_init);
    /* The free-id stack must hold every id handed out; it grows outside the
     * lock because an allocation may run the limit ladder, which takes it. */
    uint32_t *grown = NULL, want = 0;
    for (;;) {
        pthread_mutex_lock(&rgi_tc_lock);
        if (nfree_ids > 0 || next_id < cap_free_ids) {
            uint32_t id = nfree_ids > 0 ? free_ids[--nfree_ids] : next_id++;
            pthread_mutex_unlock(&rgi_tc_lock);
            rgi_arena_free(grown);
            return id;
        }
        if (grown != NULL && want > cap_free_ids) {
            if (nfree_ids)
                memcpy(grown, free_ids, nfree_ids * sizeof *free_ids);
            uint32_t *old = free_ids;
            free_ids = grown;
            cap_free_ids = want;
            grown = NULL;
            pthread_mutex_unlock(&rgi_tc_lock);
            rgi_arena_free(old);
            continue;
        }
        want = cap_free_ids ? cap_free_ids * 2 : 64;
        pthread_mutex_unlock(&rgi_tc_lock);
        rgi_arena_free(grown);
        grown = rgi_arena_malloc(want * sizeof *free_ids);
        if (grown == NULL)
            return UINT32_MAX;
    }
}

void rgi_tc_id_free(uint32_t id)
{
    /* called with rgi_tc_lock held; the stack has room for every id handed out */
    free_ids[nfree_ids++] = id;
}

/* Gives the calling thread its own vector (the first cache it makes). */
static int vec_reserve(uint32_t id)
{
    if (id >= RG_POOL_FAST_IDS)
        return -ENOTSUP; /* more pools alive than slots: this one works on its ring */
    if (rg_pool_tls != (rg_pool_tc **)tc_empty_vec)
        return 0;
    rgi_tcache **v = rgi_arena_malloc(RG_POOL_FAST_IDS * sizeof *v);
    if (v == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < RG_POOL_FAST_IDS; i++)
        v[i] = &rgi_tc_none;
    /* the vector is the owner's alone; the exit path runs on this thread */
    rg_pool_tls = v;
    pthread_setspecific(tc_key, (void *)1); /* arms the exit destructor */
    return 0;
}

rgi_tcache *rgi_tc_create(void *pool, uint32_t id, size_t size, const rgi_tc_class *cls, rgi_tcache **list)
{
    pthread_once(&tc_once, tc_init);
    if (!rgi_tc_asym && !RGI_TSAN) {
        errno = ENOTSUP; /* no membarrier: no caches, the pools use their rings */
        return NULL;
    }
    int rc = vec_reserve(id);
    if (rc != 0) {
        errno = -rc;
        return NULL;
    }
    rgi_tcache *stale = rg_pool_tls[id] == &rgi_tc_none ? NULL : rg_pool_tls[id];
    /* 64-byte aligned: with the 128-byte head the array starts on a line */
    rgi_tcache *tc = rg_malloc_aligned(size, 64);
    if (tc == NULL)
        return NULL;
    memset(tc, 0, size);
    tc->pool = pool;
    tc->cls = cls;
    tc->list = list;
    tc->id = id;
    tc->tid = (int)syscall(SYS_gettid);
    pthread_mutex_lock(&rgi_tc_lock);
    if (stale != NULL && stale->pool != NULL) {
        /* a live cache of another pool that reused this id cannot be here:
         * ids are recycled only after rgi_tc_orphan_all */
        pthread_mutex_unlock(&rgi_tc_lock);
        rgi_corrupt("pool cache registry: id %u still owned by a live pool", id);
    }
    tc->next = *list;
    tc->prev = NULL;
    if (*list)
        (*list)->prev = tc;
    *list = tc;
    rg_pool_tls[id] = tc;
    pthread_mutex_unlock(&rgi_tc_lock);
    if (stale != NULL)
        forget_last(stale);
    rgi_arena_free(stale); /* the dead cache of a freed pool */
    rgi_tc_remember(pool, tc);
    return tc;
}

void rgi_tc_orphan_all(rgi_tcache **list)
{
    /* caller holds rgi_tc_lock */
    for (rgi_tcache *tc = *list, *next; tc; tc = next) {
        next = tc->next;
        tc->pool = NULL;
        tc->next = tc->prev = NULL;
        tc->list = NULL;
    }
    *list = NULL;
}

static void tc_thread_exit(void *arg)
{
    (void)arg;
    rgi_tcache **v = rg_pool_tls;
    if (v == (rg_pool_tc **)tc_empty_vec)
        return;
    pthread_mutex_lock(&rgi_tc_lock);
    for (uint32_t i = 0; i < RG_POOL_FAST_IDS; i++) {
        rgi_tcache *tc = v[i];
        if (tc == &rgi_tc_none)
            continue;
        v[i] = &rgi_tc_none;
        if (tc->pool != NULL) {
            if (tc->prev)
                tc->prev->next = tc->next;
            else
                *tc->list = tc->next;
            if (tc->next)
                tc->next->prev = tc->prev;
            ((const rgi_tc_class *)tc->cls)->retire(tc->pool, tc);
        }
        forget_last(tc);
        rgi_arena_free(tc);
    }
    pthread_mutex_unlock(&rgi_tc_lock);
    /* later destructors may still use a pool: they find no cache */
    rg_pool_tls = (rg_pool_tc **)tc_empty_vec;
    rgi_arena_free(v);
}

void rgi_tc_wait_reclaim(rgi_tcache *tc)
{
    unsigned step = 0;
    /* acquire: pairs with rgi_tc_release, so the owner sees what was taken */
    while (__atomic_load_n(&tc->reclaim, __ATOMIC_ACQUIRE))
        rgi_spin(&step);
}

void rgi_tc_mark(rgi_tcache *tc)
{
    /* seq_cst: in the fallback (no membarrier) this store and the owner's
     * seq_cst store of busy form the Dekker pair directly */
    __atomic_store_n(&tc->reclaim, 1, __ATOMIC_SEQ_CST);
}

void rgi_tc_fence(void)
{
#if !RGI_TSAN
    if (rgi_tc_asym) {
        int saved = errno;
        if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) {
            errno = saved;
            return;
        }
        errno = saved;
        /* cannot fail once registered; if it does, the owners' compiler-only
         * fences are not enough and nothing here can fix that */
        rgi_corrupt("membarrier failed after registration");
    }
#endif
    atomic_thread_fence(memory_order_seq_cst);
}

void rgi_tc_acquire(rgi_tcache *tc)
{
    unsigned step = 0;
    /* acquire: pairs with the owner's release in rgi_tc_leave, so the
     * reclaimer sees the cache as the owner left it */
    while (__atomic_load_n(&tc->busy, __ATOMIC_ACQUIRE))
        rgi_spin(&step);
}

void rgi_tc_release(rgi_tcache *tc)
{
    /* release: pairs with the owner's acquire in rgi_tc_enter/wait_reclaim */
    __atomic_store_n(&tc->reclaim, 0, __ATOMIC_RELEASE);
}
