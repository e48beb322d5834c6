/* pool/dpdk_ops.c — regio as DPDK's memory provider: the "regio" mempool
 * ops driver, regio memory registered as DPDK external memory, mbuf pools
 * in it, and a page source that puts regio's segments in a DPDK memzone.
 *
 * Algorithm.  A DPDK mempool keeps its idle objects in a "common pool"
 * behind per-lcore caches; the ops driver is that common pool: enqueue and
 * dequeue of object pointers, all or nothing, plus a count.  That is exactly
 * regio's shared ring (pool/ring.c: Vyukov's bounded MPMC queue with bulk
 * claims, one CAS per batch), so the driver is a ring sized to the pool —
 * every object fits, an enqueue never fails.  rg_objpool itself does not fit
 * the contract (it creates its objects; DPDK populates its own) and its
 * per-thread caches would duplicate DPDK's per-lcore cache.
 *
 * Guarantee.  Lock-free enqueue/dequeue; each pointer enqueued is dequeued
 * exactly once; get_count is a snapshot (exact when the pool is quiescent).
 * The ring's slots come from regio (rgi_arena_malloc), so they count against
 * the hard limit; so do extmem areas (regio allocations) and, with the
 * memzone source, the segments cut from the memzone (charged on commit like
 * any segment).
 *
 * Reference: DPDK's mempool ops contract (rte_mempool.h, "Mempool
 * handlers"); D. Vyukov, "Bounded MPMC queue", 1024cores.net.
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

#include <string.h>
#include <sys/mman.h>

/* ---------------------------------------------------------------------------
 * The ops driver
 * ------------------------------------------------------------------------- */
static int regio_ops_alloc(struct rte_mempool *mp)
{
    rgi_ring *r = rgi_arena_malloc(sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    /* Room for every object and as many again: DPDK may enqueue all of
     * them, and the slack makes it rare that a producer laps onto a slot
     * whose consumer has claimed it but not yet freed it (see enqueue). */
    int rc = rgi_ring_init(r, 2 * ((size_t)mp->size + 1));
    if (rc != 0) {
        rgi_arena_free(r);
        return rc;
    }
    mp->pool_data = r;
    return 0;
}

static void regio_ops_free(struct rte_mempool *mp)
{
    rgi_ring *r = mp->pool_data;
    if (r == NULL)
        return;
    rgi_ring_fini(r);
    rgi_arena_free(r);
    mp->pool_data = NULL;
}

/* Fast path: one ring claim (a CAS) for the whole batch.
 *
 * DPDK's put ignores a failed enqueue (the objects would be lost), so the
 * driver must not fail one that fits.  The ring says "full" also when a
 * slot ahead of the producers is still being emptied: its consumer has
 * moved head past it (the object is out of the ring) but not yet stamped
 * it free.  Then count + n still fits the ring — the pool never holds more
 * than its size — and the producer waits for that consumer, which is
 * between two steps of its own (the ring's bounded spin).  Only a ring
 * really full (a double put or a foreign pointer) reports -ENOBUFS. */
static RGI_COLD int enqueue_slow(rgi_ring *r, void *const *objs, unsigned n)
{
    unsigned step = 0;
    for (;;) {
        if (rgi_ring_count(r) + n > rgi_ring_size(r))
            return -ENOBUFS;
        rgi_spin(&step);
        if (rgi_ring_put(r, objs, n) == n)
            return 0;
    }
}

static int regio_ops_enqueue(struct rte_mempool *mp, void *const *objs, unsigned n)
{
    rgi_ring *r = mp->pool_data;
    if (RG_LIKELY(rgi_ring_put(r, objs, n) == n))
        return 0;
    return enqueue_slow(r, objs, n);
}

static int regio_ops_dequeue(struct rte_mempool *mp, void **objs, unsigned n)
{
    return rgi_ring_get(mp->pool_data, objs, n) == n ? 0 : -ENOENT;
}

static unsigned regio_ops_get_count(const struct rte_mempool *mp)
{
    return (unsigned)rgi_ring_count(mp->pool_data);
}

static const struct rte_mempool_ops regio_ops = {
    .name = RG_DPDK_OPS_NAME,
    .alloc = regio_ops_alloc,
    .free = regio_ops_free,
    .enqueue = regio_ops_enqueue,
    .dequeue = regio_ops_dequeue,
    .get_count = regio_ops_get_count,
};

RTE_MEMPOOL_REGISTER_OPS(regio_ops)

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
