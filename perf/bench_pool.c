/* perf/bench_pool.c — pools and channels against their peers in one binary:
 * rg_objpool vs DPDK's rte_mempool (per-thread cache of 256, single and bulk
 * 32), rg_syncpool (the Go sync.Pool shape), rg_chan try_send+try_recv vs
 * rte_ring MP/MC enqueue+dequeue, and a blocking producer/consumer pair over
 * rg_chan.  Objects are 2 KiB, as in ANCHORS.md.  Go's sync.Pool, buffered
 * channel and channel-backed BufferPool are measured by perf/go/pool_test.go
 * in the same run (perf/run_pool.py).
 *
 * DPDK (built with -DBENCH_DPDK when libdpdk is found) runs its EAL without
 * hugepages or devices; every benchmark thread brings its own
 * rte_mempool_cache, so non-EAL threads (Google Benchmark's) get the same
 * cached path as an lcore would.
 */
#include "shim.h"

#include <regio.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef BENCH_DPDK
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#endif

#define OBJ_SIZE 2048
#define NOBJ 8191
#define CACHE 256
#define BULK 32

static rg_objpool *objpool;
static rg_syncpool *syncpool;
static rg_chan *chan_try, *chan_pc, *chan_ub;

/* --------------------------------------------------------------------------
 * rg_objpool
 * ------------------------------------------------------------------------ */
/* Each regio benchmark starts from empty thread caches, as each DPDK one
 * starts with a new rte_mempool_cache: what the previous benchmark left in
 * this thread's cache (an odd count misaligns bulk copies) does not carry. */
static void fresh_caches(void)
{
    rg_objpool_flush(objpool);
}

static void bm_objpool_single(rgb_state *st)
{
    fresh_caches();
    /* warm this thread's cache, untimed */
    void *w = rg_objpool_get(objpool);
    rg_objpool_put(objpool, w);
    while (rgb_keep_running_batch(st, 64))
        for (int i = 0; i < 64; i++) {
            void *o = rg_objpool_get(objpool);
            rgb_do_not_optimize(o);
            rg_objpool_put(objpool, o);
        }
    rgb_set_items_per_iteration(st, 1);
}

static void bm_objpool_bulk(rgb_state *st)
{
    void *objs[BULK];
    fresh_caches();
    if (rg_objpool_get_bulk(objpool, objs, BULK) == BULK)
        rg_objpool_put_bulk(objpool, objs, BULK);
    while (rgb_keep_running_batch(st, 8))
        for (int i = 0; i < 8; i++) {
            if (rg_objpool_get_bulk(objpool, objs, BULK) != BULK) {
                rgb_skip_with_error(st, "rg_objpool_get_bulk failed");
                break;
            }
            rgb_do_not_optimize(objs[0]);
            rg_objpool_put_bulk(objpool, objs, BULK);
        }
    rgb_set_items_per_iteration(st, BULK);
}

/* --------------------------------------------------------------------------
 * rg_syncpool
 * ------------------------------------------------------------------------ */
static void bm_syncpool(rgb_state *st)
{
    void *w = rg_syncpool_get(syncpool);
    rg_syncpool_put(syncpool, w);
    while (rgb_keep_running_batch(st, 64))
        for (int i = 0; i < 64; i++) {
            void *o = rg_syncpool_get(syncpool);
            rgb_do_not_optimize(o);
            rg_syncpool_put(syncpool, o);
        }
    rgb_set_items_per_iteration(st, 1);
}

/* --------------------------------------------------------------------------
 * rg_chan
 * ------------------------------------------------------------------------ */
static void bm_chan_try(rgb_state *st)
{
    void *v = &v, *out = NULL;
    while (rgb_keep_running_batch(st, 64))
        for (int i = 0; i < 64; i++) {
            rg_chan_try_send(chan_try, &v);
            rg_chan_try_recv(chan_try, &out);
            rgb_do_not_optimize(out);
        }
    rgb_set_items_per_iteration(st, 1);
}

/* The pair below on an unbuffered channel (Go's make(chan T)): every
 * element is a rendezvous, each send waits for the receiver to take it. */
static void bm_chan_unbuffered(rgb_state *st)
{
    uint64_t v = 1;
    if (rgb_thread_index(st) == 0) {
        while (rgb_keep_running_batch(st, 64))
            for (int i = 0; i < 64; i++)
                rg_chan_send(chan_ub, &v);
    } else {
        while (rgb_keep_running_batch(st, 64))
            for (int i = 0; i < 64; i++) {
                rg_chan_recv(chan_ub, &v);
                rgb_do_not_optimize(&v);
            }
    }
    rgb_set_items_per_iteration(st, 1);
}

/* Thread 0 sends, thread 1 receives: every element crosses cores (or the
 * scheduler); blocking calls sleep on a futex when they must. */
static void bm_chan_prodcons(rgb_state *st)
{
    uint64_t v = 1;
    if (rgb_thread_index(st) == 0) {
        while (rgb_keep_running_batch(st, 64))
            for (int i = 0; i < 64; i++)
                rg_chan_send(chan_pc, &v);
    } else {
        while (rgb_keep_running_batch(st, 64))
            for (int i = 0; i < 64; i++) {
                rg_chan_recv(chan_pc, &v);
                rgb_do_not_optimize(&v);
            }
    }
    rgb_set_items_per_iteration(st, 1);
}

#ifdef BENCH_DPDK
static struct rte_mempool *mp;
static struct rte_ring *ring;

static void bm_mempool_single(rgb_state *st)
{
    struct rte_mempool_cache *cache = rte_mempool_cache_create(CACHE, SOCKET_ID_ANY);
    void *o;
    if (cache == NULL || rte_mempool_generic_get(mp, &o, 1, cache) != 0) {
        rgb_skip_with_error(st, "rte_mempool cache/get failed");
        return;
    }
    rte_mempool_generic_put(mp, &o, 1, cache);
    while (rgb_keep_running_batch(st, 64))
        for (int i = 0; i < 64; i++) {
            rte_mempool_generic_get(mp, &o, 1, cache);
            rgb_do_not_optimize(o);
            rte_mempool_generic_put(mp, &o, 1, cache);
        }
    rte_mempool_cache_flush(cache, mp);
    rte_mempool_cache_free(cache);
    rgb_set_items_per_iteration(st, 1);
}

static void bm_mempool_bulk(rgb_state *st)
{
    struct rte_mempool_cache *cache = rte_mempool_cache_create(CACHE, SOCKET_ID_ANY);
    void *objs[BULK];
    if (cache == NULL) {
        rgb_skip_with_error(st, "rte_mempool_cache_create failed");
        return;
    }
    while (rgb_keep_running_batch(st, 8))
        for (int i = 0; i < 8; i++) {
            if (rte_mempool_generic_get(mp, objs, BULK, cache) != 0) {
                rgb_skip_with_error(st, "rte_mempool_generic_get failed");
                break;
            }
            rgb_do_not_optimize(objs[0]);
            rte_mempool_generic_put(mp, objs, BULK, cache);
        }
    rte_mempool_cache_flush(cache, mp);
    rte_mempool_cache_free(cache);
    rgb_set_items_per_iteration(st, BULK);
}

static void bm_ring_try(rgb_state *st)
{
    void *v = &v, *out = NULL;
    while (rgb_keep_running_batch(st, 64))
        for (int i = 0; i < 64; i++) {
            rte_ring_mp_enqueue(ring, v);
            rte_ring_mc_dequeue(ring, &out);
            rgb_do_not_optimize(out);
        }
    rgb_set_items_per_iteration(st, 1);
}

static int dpdk_init(const char *prog)
{
    char *eal[] = {(char *)prog, "--no-huge", "--no-pci", "-m", "512", "--no-shconf",
                   "--lcores=0@(0-1)", "--no-telemetry", "--log-level=lib.eal:warning", NULL};
    if (rte_eal_init(9, eal) < 0) {
        fprintf(stderr, "bench_pool: rte_eal_init failed (%s); DPDK rows skipped\n", rte_strerror(rte_errno));
        return -1;
    }
    mp = rte_mempool_create("bench", NOBJ, OBJ_SIZE, CACHE, 0, NULL, NULL, NULL, NULL, SOCKET_ID_ANY, 0);
    ring = rte_ring_create("bench", 1024, SOCKET_ID_ANY, 0); /* MP/MC by default */
    if (mp == NULL || ring == NULL) {
        fprintf(stderr, "bench_pool: DPDK pool/ring creation failed; DPDK rows skipped\n");
        return -1;
    }
    return 0;
}
#endif

int main(int argc, char **argv)
{
    static const int one_two[] = {1, 2, 0};
    static const int two[] = {2, 0};
    rg_objpool_opts oo = {.obj_size = OBJ_SIZE, .capacity = NOBJ, .cache_size = CACHE,
                          .prefill = NOBJ, .name = "bench"};
    objpool = rg_objpool_new(&oo);
    rg_syncpool_opts so = {.obj_size = OBJ_SIZE, .name = "bench"};
    syncpool = rg_syncpool_new(&so);
    chan_try = rg_chan_new(sizeof(void *), 1024);
    chan_pc = rg_chan_new(sizeof(uint64_t), 1024);
    chan_ub = rg_chan_new(sizeof(uint64_t), 0);
    if (!objpool || !syncpool || !chan_try || !chan_pc || !chan_ub) {
        perror("bench_pool: setup");
        return 1;
    }
    rgb_register(&(rgb_def){.name = "objpool/regio/single", .body = bm_objpool_single, .threads = one_two});
    rgb_register(&(rgb_def){.name = "objpool/regio/bulk32", .body = bm_objpool_bulk, .threads = one_two});
    rgb_register(&(rgb_def){.name = "syncpool/regio", .body = bm_syncpool, .threads = one_two});
    rgb_register(&(rgb_def){.name = "chan/regio/try", .body = bm_chan_try, .threads = one_two});
    rgb_register(&(rgb_def){.name = "chan/regio/prodcons", .body = bm_chan_prodcons, .threads = two,
                            .real_time = 1});
    rgb_register(&(rgb_def){.name = "chan/regio/unbuffered", .body = bm_chan_unbuffered, .threads = two,
                            .real_time = 1});
#ifdef BENCH_DPDK
    if (dpdk_init(argv[0]) == 0) {
        rgb_add_context("dpdk", "22.11, EAL --no-huge, per-thread rte_mempool_cache of 256");
        rgb_register(&(rgb_def){.name = "objpool/dpdk/single", .body = bm_mempool_single, .threads = one_two});
        rgb_register(&(rgb_def){.name = "objpool/dpdk/bulk32", .body = bm_mempool_bulk, .threads = one_two});
        rgb_register(&(rgb_def){.name = "chan/dpdk_ring/try", .body = bm_ring_try, .threads = one_two});
    }
#endif
    return rgb_main(argc, argv);
}
