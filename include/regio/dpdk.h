/* regio/dpdk.h — regio as a memory provider for DPDK (kernel-bypass servers):
 * a mempool ops driver named "regio", mbuf pools whose memory is regio's,
 * and regio's segments in DPDK memory.
 *
 * ---------------------------------------------------------------------------
 * Contract of this section
 * ---------------------------------------------------------------------------
 * Present when regio was built with the meson feature `dpdk` (the default
 * when libdpdk is installed); RG_HAVE_DPDK is then defined by this header.
 * Nothing here includes a DPDK header: struct rte_mempool is only named.
 *
 * Memory both ways, and both count against regio's hard limit:
 *  - regio → DPDK: rg_dpdk_extmem_alloc hands out regio memory registered
 *    with rte_extmem_register; rg_dpdk_pktmbuf_pool_create builds an mbuf
 *    pool in it, on the "regio" ops.  Without a device the IOVA of that
 *    memory is RTE_BAD_IOVA (4 KiB pages, RTE_MEMPOOL_F_NO_IOVA_CONTIG):
 *    fine for software PMDs (net_ring, net_null, vhost), not for DMA.
 *  - DPDK → regio: rg_dpdk_use_memzone_source makes one memzone (on EAL's
 *    hugepages when it has them) the reservation regio cuts its 2 MiB
 *    segments from, so every regio allocation lives in DPDK memory.
 *
 * The ops driver ("regio", RG_DPDK_OPS_NAME) keeps a mempool's common pool
 * in regio's lock-free bounded MPMC ring (Vyukov's queue with bulk claims,
 * pool/ring.c) with a per-thread cache in front of it for small batches, so
 * with DPDK's per-lcore cache off (or on threads without one) a get or put
 * is a few plain loads and stores.  Objects in a thread's cache are counted
 * by rte_mempool_avail_count, and a get that the ring cannot serve takes
 * them from the other threads' caches before it fails; a thread's cache
 * goes back to the ring when the thread exits.  With DPDK's cache on, the
 * driver sees only DPDK's large refills and flushes, which go to the ring.
 *
 * Registration.  A constructor registers the ops when libregio is loaded
 * (shared) or when the object holding the driver is linked in (static).  A
 * program that names the ops only as the string "regio" references nothing
 * of libregio, so a static link leaves the driver out and a shared link with
 * --as-needed may drop libregio itself.  Either call rg_dpdk_ops_register()
 * once before rte_mempool_set_ops_byname (robust with both libraries), or
 * link with the flags `pkg-config --libs [--static] regio` gives: they carry
 * -Wl,-u,rg_dpdk_ops_register, which keeps the driver in either link.
 *
 * Errors: DPDK's rte_errno values are converted here, at the seam: calls
 * returning a pointer return NULL with errno set, int calls return -errno.
 */
#ifndef REGIO_DPDK_H
#define REGIO_DPDK_H

#include "common.h"

#define RG_HAVE_DPDK 1
#define RG_DPDK_OPS_NAME "regio"

#ifdef __cplusplus
extern "C" {
#endif

struct rte_mempool;

/* Makes sure the "regio" ops are registered with DPDK (a no-op when the
 * constructor already did it; safe to call from several threads, before or
 * after rte_eal_init).  0, or -ENOSPC (DPDK's table of ops is full),
 * -EINVAL (DPDK refused the ops). */
RG_EXPORT int rg_dpdk_ops_register(void);

/* "regio": the name to give rte_mempool_set_ops_byname or
 * rte_pktmbuf_pool_create_by_ops.  Calling it also keeps the driver linked. */
RG_EXPORT const char *rg_dpdk_ops_name(void);

/* Regio memory for DPDK: `len` bytes (rounded up to 4 KiB), 4 KiB-aligned,
 * from regio (charged against the limit), registered with
 * rte_extmem_register (4 KiB pages, IOVA unknown).  Call after rte_eal_init.
 * NULL + errno: EINVAL (len 0), ENOMEM (limit or OS), ENODEV (EAL not
 * running), or the errno DPDK gave for the registration. */
RG_EXPORT void *rg_dpdk_extmem_alloc(size_t len);
/* Unregisters and frees memory from rg_dpdk_extmem_alloc (NULL: nothing).
 * Nothing DPDK holds may point into it any more.  0 or -EINVAL (not from
 * rg_dpdk_extmem_alloc), -EBUSY (DPDK still uses it). */
RG_EXPORT int rg_dpdk_extmem_free(void *p);

/* Like rte_pktmbuf_pool_create_by_ops(name, n, cache_size, priv_size,
 * data_room_size, socket_id, "regio"), but the mbufs themselves live in
 * regio memory (rg_dpdk_extmem_alloc).  rte_mempool_free frees the pool and
 * gives its memory back to regio.  NULL + errno: EINVAL (bad sizes, cache
 * too large), EEXIST (name taken), ENOMEM (limit, or DPDK's own memory for
 * the pool header), ENODEV (EAL not running). */
RG_EXPORT struct rte_mempool *rg_dpdk_pktmbuf_pool_create(const char *name, unsigned n,
                                                          unsigned cache_size, uint16_t priv_size,
                                                          uint16_t data_room_size, int socket_id);

/* DPDK memory for regio: reserves one memzone of `bytes` (rounded down to
 * 2 MiB, at least 128 MiB; 2 MiB-aligned) and makes it the range regio cuts
 * its segments from, so all regio memory lives in DPDK memory.  Call after
 * rte_eal_init and before regio's first allocation (or rg_init); regio then
 * initializes from the environment with this reservation.  Segments are
 * charged against the limit as usual; on 4 KiB pages (EAL's --no-huge)
 * idle segments go back to the OS, on hugepages they stay in the memzone.
 * 0, or -EBUSY (regio already initialized), -ENODEV (EAL not running),
 * -EINVAL (bytes below 128 MiB), -ENOMEM (the memzone does not fit:
 * raise EAL's -m). */
RG_EXPORT int rg_dpdk_use_memzone_source(size_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* REGIO_DPDK_H */
