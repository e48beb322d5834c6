/* pool/dpdk_ops.c — regio as DPDK's memory provider: the "regio" mempool
 * ops driver, regio memory registered as DPDK external memory, mbuf pools
 * in it, and a page source that puts regio's segments in a DPDK memzone.
 *
 * Algorithm.  A DPDK mempool keeps its idle objects in a "common pool"
 * behind per-lcore caches; the ops driver is that common pool: enqueue and
 * dequeue of object pointers, all or nothing, plus a count.  The driver is
 * regio's pool layout: a shared ring (pool/ring.c: Vyukov's bounded MPMC
 * queue with bulk claims, one CAS per batch) sized so every object fits,
 * and in front of it a per-thread cache (a LIFO array) for small batches.
 * With DPDK's cache on, DPDK's refills and flushes are large batches that
 * go to the ring; with it off (cache_size 0, or a thread without an lcore
 * id) every get and put reaches the driver, and the thread's cache serves
 * it with plain loads and stores — no atomic read-modify-write, where a
 * ring costs a CAS on each side — and hands back the objects it freed
 * last, still in the CPU's caches.  Objects another thread keeps are not
 * lost: get_count counts them, and a get the ring cannot serve takes them
 * (the reclaim below) before it reports -ENOENT.
 *
 * Guarantee.  Enqueue never fails for an object of the pool; each pointer
 * enqueued is dequeued exactly once; a dequeue fails only when the whole
 * pool (ring and every cache) holds fewer than n; get_count is a snapshot
 * (exact when the pool is quiescent).  The ring, the caches and the extmem
 * areas come from regio, so they count against the hard limit; so, with
 * the memzone source, do the segments cut from the memzone (charged on
 * commit like any segment).
 *
 * Reference: DPDK's mempool ops contract (rte_mempool.h, "Mempool
 * handlers"); D. Vyukov, "Bounded MPMC queue", 1024cores.net; the
 * asymmetric fence: membarrier(2), as in userspace RCU.
 */
#include <rte_config.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wcast-qual"
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_memory.h>
#include <rte_memzone.h>
#include <rte_mempool.h>
#pragma GCC diagnostic pop

#include "pool_internal.h"
#include "regio/dpdk.h"

#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------
 * The ops driver
 *
 * Layout.  mp->pool_data is a dp_pool: an rg_pool_head (its ids in the
 * pools' cache registry, pool/tcache.c) and the shared ring.  Every thread
 * that calls the ops with a small batch gets a cache for the pool from that
 * registry — the same cache head, TLS vector, last-pool pair and guard as
 * rg_objpool's and rg_syncpool's (regio/pool.h), so there is one guard
 * protocol for every pool kind.  The cache holds up to TC_CAP pointers; a
 * batch above TC_BATCH (DPDK's own cache refilling or flushing, typically
 * 256+ objects) goes to the ring.  Its lenw is a plain length here (this
 * driver keeps no statistics, so nothing is ever folded).
 *
 * The guard (rg_pool_tc_try, see pool/pool_internal.h): the owner stores
 * busy = 1, a compiler barrier, loads reclaim; another thread that must
 * take the cache's objects marks reclaim = 1, runs membarrier(2) (every
 * running thread executes a full fence), then waits for busy == 0.  So the
 * owner's fast path has no atomic read-modify-write and no fence; the
 * reclaimer pays a system call, and only when the ring alone cannot serve a
 * get (or the pool is freed).  Without membarrier there are no caches;
 * under TSan, which does not model it, both sides use seq_cst instead.
 * ------------------------------------------------------------------------- */
enum {
    TC_CAP = 128,            /* pointers in a thread's cache */
    TC_BATCH = TC_CAP / 2,   /* larger batches bypass the cache */
};

typedef struct dp_pool {
    rg_pool_head h;     /* first: the registry's ids (rgi_tc_remember reads it) */
    rgi_tcache *caches; /* under rgi_tc_lock */
    rgi_ring ring;
} dp_pool;

static inline unsigned dp_len(rgi_tcache *tc)
{
    return (unsigned)(RG_POOL_LD(tc->lenw) & RG_POOL_LEN_MASK);
}
static inline void dp_set_len(rgi_tcache *tc, unsigned len)
{
    RG_POOL_ST(tc->lenw, (uint64_t)len);
}

/* Puts n pointers in the ring.  The ring has room for every object of the
 * pool twice over, so an enqueue that fits must not fail: the ring says
 * "full" also when a slot ahead of the producers is still being emptied (its
 * consumer has moved head past it but not yet stamped it free).  Then
 * count + n still fits, and the producer waits for that consumer, which is
 * between two steps of its own.  Only a ring really full (a double put or a
 * foreign pointer) reports -ENOBUFS. */
static int ring_put_all(dp_pool *p, void *const *objs, unsigned n)
{
    unsigned step = 0;
    while (rgi_ring_put(&p->ring, objs, n) != n) {
        if (rgi_ring_count(&p->ring) + n > rgi_ring_size(&p->ring))
            return -ENOBUFS;
        rgi_spin(&step);
    }
    return 0;
}

/* Reclaimer, rgi_tc_lock held: takes every cache of p into the ring (drop:
 * empties them without keeping the objects and leaves reclaim = 1 for
 * good, for the pool's free). */
static void take_all_locked(dp_pool *p, bool drop)
{
    if (p->caches == NULL)
        return;
    for (rgi_tcache *tc = p->caches; tc; tc = tc->next)
        rgi_tc_mark(tc);
    rgi_tc_fence();
    for (rgi_tcache *tc = p->caches; tc; tc = tc->next) {
        rgi_tc_acquire(tc);
        unsigned len = dp_len(tc);
        if (!drop && len)
            ring_put_all(p, RG_POOL_TC_OBJS(tc), len);
        dp_set_len(tc, 0);
        if (!drop)
            rgi_tc_release(tc);
    }
}

/* The owner thread exits (rgi_tc_lock held, the cache unlisted): its
 * objects go back to the ring. */
static void dp_retire(void *pool, rgi_tcache *tc)
{
    unsigned len = dp_len(tc);
    if (len)
        ring_put_all(pool, RG_POOL_TC_OBJS(tc), len);
    dp_set_len(tc, 0);
}
static const rgi_tc_class dp_class = {dp_retire};

/* The calling thread's cache of p (made if need be), entered; NULL when it
 * cannot have one (no membarrier, more pools than cache ids, no memory):
 * the caller then works on the ring. */
static rgi_tcache *tc_find_enter(dp_pool *p)
{
    rgi_tcache *tc = rgi_tc_lookup(p, p->h.tcid);
    if (tc == NULL) {
        int saved = errno;
        tc = rgi_tc_create(p, p->h.tcid, sizeof(rgi_tcache) + TC_CAP * sizeof(void *), &dp_class, &p->caches);
        errno = saved;
        if (tc == NULL)
            return NULL;
        tc->cap = TC_CAP;
    }
    while (!rgi_tc_enter(tc))
        rgi_tc_wait_reclaim(tc);
    return tc;
}

static int regio_ops_alloc(struct rte_mempool *mp)
{
    dp_pool *p = rg_malloc_aligned(sizeof *p, 64);
    if (p == NULL)
        return -ENOMEM;
    memset(p, 0, sizeof *p);
    /* Room for every object and as many again: DPDK may enqueue all of
     * them, and the slack makes it rare that a producer laps onto a slot
     * whose consumer has claimed it but not yet freed it (ring_put_all). */
    int rc = rgi_ring_init(&p->ring, 2 * ((size_t)mp->size + 1));
    if (rc != 0) {
        rg_free(p);
        return rc;
    }
    p->h.tcid = rgi_tc_id_alloc();
    if (p->h.tcid == UINT32_MAX) {
        rgi_ring_fini(&p->ring);
        rg_free(p);
        return -ENOMEM;
    }
    p->h.id = rgi_tc_fast_id(p->h.tcid, true);
    mp->pool_data = p;
    return 0;
}

static void regio_ops_free(struct rte_mempool *mp)
{
    dp_pool *p = mp->pool_data;
    if (p == NULL)
        return;
    pthread_mutex_lock(&rgi_tc_lock);
    take_all_locked(p, true);
    /* the owners free them at their next cache creation or at exit; their
     * reclaim stays 1 and their pool NULL, so they are never entered again */
    rgi_tc_orphan_all(&p->caches);
    rgi_tc_id_free(p->h.tcid);
    pthread_mutex_unlock(&rgi_tc_lock);
    rgi_ring_fini(&p->ring);
    rg_free(p);
    mp->pool_data = NULL;
}

/* Copies n pointers, two at a time in 16-byte vectors.  Not memcpy: for a
 * length known only at run time the compiler emits `rep movsq` or a libc
 * call, both with a start-up cost larger than the copy of a burst. */
typedef long long ptr_pair __attribute__((vector_size(16), aligned(8), may_alias));
static inline void copy_ptrs(void **dst, void *const *src, unsigned n)
{
    if (RG_LIKELY(n == 1)) {
        dst[0] = src[0];
        return;
    }
    unsigned i = 0;
    for (; i + 4 <= n; i += 4) {
        ptr_pair a = *(const ptr_pair *)(const void *)(src + i);
        ptr_pair b = *(const ptr_pair *)(const void *)(src + i + 2);
        *(ptr_pair *)(void *)(dst + i) = a;
        *(ptr_pair *)(void *)(dst + i + 2) = b;
    }
    for (; i < n; i++)
        dst[i] = src[i];
}

/* Dequeue when the fast path could not serve: no cache yet, a batch too
 * large for it, a reclaimer at work, or the cache short of n. */
static RGI_NOINLINE int dequeue_slow(dp_pool *p, void **objs, unsigned n)
{
    if (n <= TC_BATCH) {
        rgi_tcache *tc = tc_find_enter(p);
        if (tc != NULL) {
            void **cobjs = RG_POOL_TC_OBJS(tc);
            unsigned len = dp_len(tc);
            if (len < n) /* refill: serve n and keep half the cache */
                len += rgi_ring_get_burst(&p->ring, cobjs + len, TC_BATCH + n - len);
            if (len >= n) {
                len -= n;
                copy_ptrs(objs, cobjs + len, n);
                dp_set_len(tc, len);
                rgi_tc_leave(tc);
                return 0;
            }
            dp_set_len(tc, len);
            rgi_tc_leave(tc);
        }
    }
    if (rgi_ring_get(&p->ring, objs, n) == n)
        return 0;
    /* Not enough in the ring: when other threads' caches make up the
     * difference, take them all into the ring (one membarrier) and try
     * once more.  A pool that is really short of n fails without it. */
    pthread_mutex_lock(&rgi_tc_lock);
    size_t have = rgi_ring_count(&p->ring);
    for (rgi_tcache *tc = p->caches; tc; tc = tc->next)
        have += dp_len(tc);
    if (have >= n && p->caches != NULL)
        take_all_locked(p, false);
    pthread_mutex_unlock(&rgi_tc_lock);
    return rgi_ring_get(&p->ring, objs, n) == n ? 0 : -ENOENT;
}

/* Fast path: the calling thread's cache (the thread's last pool, else its
 * vector slot), no atomic read-modify-write. */
static int regio_ops_dequeue(struct rte_mempool *mp, void **objs, unsigned n)
{
    dp_pool *p = mp->pool_data;
    rgi_tcache *tc = rg_pool_tc_enter_pool(&p->h);
    /* no test of n: a batch above TC_CAP cannot pass len >= n */
    if (RG_LIKELY(tc != NULL)) {
        uint64_t w = RG_POOL_LD(tc->lenw);
        if (RG_LIKELY(w >= n)) { /* w is the length: no count in it here */
            copy_ptrs(objs, RG_POOL_TC_OBJS(tc) + (w - n), n);
            RG_POOL_ST(tc->lenw, w - n);
            rgi_tc_leave(tc);
            return 0;
        }
        rgi_tc_leave(tc);
    }
    return dequeue_slow(p, objs, n);
}

static RGI_NOINLINE int enqueue_slow(dp_pool *p, void *const *objs, unsigned n)
{
    if (n <= TC_BATCH) {
        rgi_tcache *tc = tc_find_enter(p);
        if (tc != NULL) {
            void **cobjs = RG_POOL_TC_OBJS(tc);
            unsigned len = dp_len(tc);
            int rc = 0;
            if (len + n > TC_CAP) {
                /* spill the oldest (the bottom) so that half the cache is
                 * left after the put (len + n - TC_BATCH <= len, as
                 * n <= TC_BATCH): the objects freed last stay, still warm,
                 * and the ring gets objects in the order they were put */
                unsigned k = len + n - TC_BATCH;
                rc = ring_put_all(p, cobjs, k);
                if (rc == 0) {
                    memmove(cobjs, cobjs + k, (len - k) * sizeof *cobjs);
                    len -= k;
                }
            }
            if (rc == 0) {
                copy_ptrs(cobjs + len, objs, n);
                len += n;
            }
            dp_set_len(tc, len);
            rgi_tc_leave(tc);
            return rc;
        }
    }
    return ring_put_all(p, objs, n);
}

static int regio_ops_enqueue(struct rte_mempool *mp, void *const *objs, unsigned n)
{
    dp_pool *p = mp->pool_data;
    rgi_tcache *tc = rg_pool_tc_enter_pool(&p->h);
    /* no test of n: DPDK's own cache flushes batches above TC_CAP */
    if (RG_LIKELY(tc != NULL)) {
        uint64_t w = RG_POOL_LD(tc->lenw);
        if (RG_LIKELY(w + n <= TC_CAP)) {
            copy_ptrs(RG_POOL_TC_OBJS(tc) + w, objs, n);
            RG_POOL_ST(tc->lenw, w + n);
            rgi_tc_leave(tc);
            return 0;
        }
        rgi_tc_leave(tc);
    }
    return enqueue_slow(p, objs, n);
}

/* The ring plus every thread's cache: a snapshot, exact when quiescent. */
static unsigned regio_ops_get_count(const struct rte_mempool *mp)
{
    dp_pool *p = mp->pool_data;
    pthread_mutex_lock(&rgi_tc_lock);
    size_t n = rgi_ring_count(&p->ring);
    for (rgi_tcache *tc = p->caches; tc; tc = tc->next)
        n += dp_len(tc);
    pthread_mutex_unlock(&rgi_tc_lock);
    return n > mp->size ? mp->size : (unsigned)n;
}

static const struct rte_mempool_ops regio_ops = {
    .name = RG_DPDK_OPS_NAME,
    .alloc = regio_ops_alloc,
    .free = regio_ops_free,
    .enqueue = regio_ops_enqueue,
    .dequeue = regio_ops_dequeue,
    .get_count = regio_ops_get_count,
};

/* Registered at load by this constructor; rg_dpdk_ops_register is the
 * explicit way for a program that names the ops only as a string (with the
 * static library nothing else would pull this object into the link). */
RTE_MEMPOOL_REGISTER_OPS(regio_ops)

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

static int ops_index(void)
{
    /* the table only grows; its lock orders us against a registration */
    rte_spinlock_lock(&rte_mempool_ops_table.sl);
    int idx = -1;
    for (uint32_t i = 0; i < rte_mempool_ops_table.num_ops; i++)
        if (strcmp(rte_mempool_ops_table.ops[i].name, RG_DPDK_OPS_NAME) == 0) {
            idx = (int)i;
            break;
        }
    rte_spinlock_unlock(&rte_mempool_ops_table.sl);
    return idx;
}

int rg_dpdk_ops_register(void)
{
    pthread_mutex_lock(&reg_lock); /* check and register as one step */
    int idx = ops_index();
    if (idx < 0)
        idx = rte_mempool_register_ops(&regio_ops);
    pthread_mutex_unlock(&reg_lock);
    return idx < 0 ? (idx == -ENOSPC ? -ENOSPC : -EINVAL) : 0;
}

const char *rg_dpdk_ops_name(void)
{
    return RG_DPDK_OPS_NAME;
}

/* EAL sets the lcore count during rte_eal_init; zero means not running. */
static bool eal_running(void)
{
    return rte_lcore_count() > 0;
}

/* ---------------------------------------------------------------------------
 * regio memory for DPDK: external memory areas
 *
 * An area is one regio allocation: a 4 KiB header page (magic, length), then
 * the registered pages.  The header keeps the length for the unregistration
 * and lets rg_dpdk_extmem_free refuse a foreign pointer.
 * ------------------------------------------------------------------------- */
#define EXT_MAGIC 0x7267647064656d78ull /* "rgdpdemx" */
#define EXT_PAGE RGI_OS_PAGE

typedef struct ext_hdr {
    uint64_t magic;
    size_t len;
} ext_hdr;

void *rg_dpdk_extmem_alloc(size_t len)
{
    if (len == 0 || len > ((size_t)1 << 46)) {
        errno = EINVAL;
        return NULL;
    }
    if (!eal_running()) {
        errno = ENODEV;
        return NULL;
    }
    len = (len + EXT_PAGE - 1) & ~(EXT_PAGE - 1);
    char *base = rg_malloc_aligned(len + EXT_PAGE, EXT_PAGE);
    if (base == NULL)
        return NULL; /* errno from regio: ENOMEM */
    char *p = base + EXT_PAGE;
    /* 4 KiB pages whatever the backing (THP may split them), no IOVAs:
     * without a device DPDK only needs the virtual range. */
    if (rte_extmem_register(p, len, NULL, 0, EXT_PAGE) != 0) {
        int e = rte_errno;
        rg_free(base);
        errno = e ? e : ENOMEM;
        return NULL;
    }
    ext_hdr *h = (ext_hdr *)base;
    h->magic = EXT_MAGIC ^ (uintptr_t)p;
    h->len = len;
    return p;
}

int rg_dpdk_extmem_free(void *p)
{
    if (p == NULL)
        return 0;
    if (((uintptr_t)p & (EXT_PAGE - 1)) != 0 || !rg_owns(p))
        return -EINVAL;
    ext_hdr *h = (ext_hdr *)((char *)p - EXT_PAGE);
    if (!rg_owns(h) || h->magic != (EXT_MAGIC ^ (uintptr_t)p))
        return -EINVAL;
    if (rte_extmem_unregister(p, h->len) != 0)
        return rte_errno == EBUSY ? -EBUSY : -EINVAL;
    h->magic = 0;
    rg_free(h);
    return 0;
}

/* rte_mempool_free calls this for each chunk populated from an area. */
static void ext_chunk_free(struct rte_mempool_memhdr *memhdr, void *opaque)
{
    (void)memhdr;
    rg_dpdk_extmem_free(opaque);
}

struct rte_mempool *rg_dpdk_pktmbuf_pool_create(const char *name, unsigned n, unsigned cache_size,
                                                uint16_t priv_size, uint16_t data_room_size,
                                                int socket_id)
{
    if (name == NULL || n == 0 || RTE_ALIGN(priv_size, RTE_MBUF_PRIV_ALIGN) != priv_size) {
        errno = EINVAL;
        return NULL;
    }
    if (!eal_running()) {
        errno = ENODEV;
        return NULL;
    }
    unsigned elt_size = (unsigned)sizeof(struct rte_mbuf) + priv_size + data_room_size;
    struct rte_pktmbuf_pool_private priv;
    memset(&priv, 0, sizeof priv);
    priv.mbuf_data_room_size = data_room_size;
    priv.mbuf_priv_size = priv_size;

    /* NO_IOVA_CONTIG: the area's 4 KiB pages have no known IOVA, so objects
     * need not respect page boundaries. */
    struct rte_mempool *mp = rte_mempool_create_empty(name, n, elt_size, cache_size, sizeof priv,
                                                      socket_id, RTE_MEMPOOL_F_NO_IOVA_CONTIG);
    if (mp == NULL) {
        errno = rte_errno ? rte_errno : ENOMEM;
        return NULL;
    }
    int e = 0;
    void *area = NULL;
    if (rte_mempool_set_ops_byname(mp, RG_DPDK_OPS_NAME, NULL) != 0) {
        e = EINVAL;
        goto fail;
    }
    rte_pktmbuf_pool_init(mp, &priv);

    /* Our ops keep DPDK's default object layout, so its default sizing
     * holds; pg_shift 0: no page boundaries to respect (NO_IOVA_CONTIG). */
    size_t min_chunk = 0, align = 0;
    ssize_t need = rte_mempool_op_calc_mem_size_default(mp, n, 0, &min_chunk, &align);
    if (need <= 0 || align > EXT_PAGE) {
        e = EINVAL;
        goto fail;
    }
    area = rg_dpdk_extmem_alloc((size_t)need);
    if (area == NULL) {
        e = errno;
        goto fail;
    }
    int got = rte_mempool_populate_iova(mp, area, RTE_BAD_IOVA, (size_t)need, ext_chunk_free, area);
    if (got < 0 || (unsigned)got != n) {
        if (got >= 0) {
            /* the chunk is owned by the pool now: rte_mempool_free frees it */
            area = NULL;
            e = ENOMEM;
        } else {
            e = -got;
        }
        goto fail;
    }
    rte_mempool_obj_iter(mp, rte_pktmbuf_init, NULL);
    return mp;

fail:
    rte_mempool_free(mp);
    if (area)
        rg_dpdk_extmem_free(area);
    errno = e ? e : ENOMEM;
    return NULL;
}

/* ---------------------------------------------------------------------------
 * DPDK memory for regio: the memzone page source
 *
 * The reservation is one memzone, 2 MiB-aligned; "commit" makes a segment's
 * pages zero (regio expects fresh segments zero-filled): on 4 KiB pages
 * (EAL --no-huge, private anonymous memory) MADV_DONTNEED does it lazily and
 * also returns idle segments to the OS; on hugepages the memory stays the
 * memzone's, so commit clears it and purge declines (the page layer then
 * decommits, a no-op here, and the segment is committed again on reuse).
 * ------------------------------------------------------------------------- */
static struct {
    const struct rte_memzone *mz;
    bool small_pages;
} mzs;

static int mz_reserve(size_t size, void **base)
{
    if (mzs.mz == NULL || size > mzs.mz->len)
        return -ENOMEM;
    *base = mzs.mz->addr;
    return 0;
}

static int mz_commit(void *addr, size_t len, int want, int *backing)
{
    (void)want;
    if (mzs.small_pages) {
        if (madvise(addr, len, MADV_DONTNEED) != 0)
            memset(addr, 0, len);
        *backing = RG_BACKING_4K;
    } else {
        memset(addr, 0, len);
        *backing = RG_BACKING_HUGETLB;
    }
    return 0;
}

static int mz_decommit(void *addr, size_t len, int backing)
{
    (void)backing;
    if (mzs.small_pages)
        madvise(addr, len, MADV_DONTNEED);
    return 0;
}

static int mz_purge(void *addr, size_t len, int backing)
{
    (void)backing;
    if (!mzs.small_pages)
        return -ENOTSUP;
    return madvise(addr, len, MADV_DONTNEED) == 0 ? 0 : -errno;
}

static const rgi_page_source mz_source = {
    .name = "dpdk-memzone", .reserve = mz_reserve, .commit = mz_commit,
    .decommit = mz_decommit, .purge = mz_purge,
};

int rg_dpdk_use_memzone_source(size_t bytes)
{
    bytes &= ~RGI_SEG_MASK;
    if (bytes < 64 * RGI_SEG_SIZE)
        return -EINVAL;
    if (!eal_running())
        return -ENODEV;
    if (atomic_load_explicit(&rgi_inited, memory_order_acquire) != 0 || mzs.mz != NULL)
        return -EBUSY;
    const struct rte_memzone *mz = rte_memzone_reserve_aligned("regio_segments", bytes, SOCKET_ID_ANY,
                                                               0, RGI_SEG_SIZE);
    if (mz == NULL)
        return rte_errno == EEXIST ? -EBUSY : -ENOMEM;
    mzs.mz = mz;
    mzs.small_pages = mz->hugepage_sz < RGI_SEG_SIZE;
    int rc = rgi_page_set_source(&mz_source);
    if (rc == 0) {
        rg_config cfg;
        rg_config_default(&cfg);
        cfg.reserve_bytes = bytes;
        rc = rg_init(&cfg);
    }
    if (rc != 0) {
        rgi_page_set_source(NULL);
        mzs.mz = NULL;
        rte_memzone_free(mz);
    }
    return rc;
}
