/* perf/bench_dpdk.c — mbuf alloc+free through the "regio" mempool ops vs
 * DPDK's default ring_mp_mc, with and without DPDK's per-lcore cache, in one
 * process (EAL starts once per process, so this is a standalone timed
 * program rather than a Google Benchmark suite).
 *
 * Pools (same size, same mbuf layout):
 *   regio        mbufs in regio memory (rg_dpdk_pktmbuf_pool_create), regio ops
 *   regio-ops    mbufs in DPDK memory, regio ops
 *   ring_mp_mc   mbufs in DPDK memory, DPDK's default ops
 * Operations, per object: single rte_pktmbuf_alloc + rte_pktmbuf_free, and
 * bulk 32 (rte_pktmbuf_alloc_bulk + rte_pktmbuf_free_bulk).
 * Rounds interleave the pools; the table gives each cell's median and the
 * ratio to ring_mp_mc with the same cache (below 1.00: regio is faster).
 *
 *   bench_dpdk [EAL args] -- [--rounds N] [--ms N]
 *   bench_dpdk [EAL args] -- --count POOL CACHE OP --iters N
 *
 * --count runs one cell for exactly N inner loops in count_loop() and
 * nothing else timed: run it under `valgrind --tool=callgrind
 * --toggle-collect=count_loop` to get instructions per object, the steady
 * measure on a noisy machine (perf/run_dpdk.sh does it for every cell).
 * POOL is 0 regio, 1 regio-ops, 2 ring_mp_mc; CACHE 0 (256) or 1 (off);
 * OP 0 single, 1 bulk 32.
 */
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "regio.h"
#include "regio/dpdk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { NPOOL = 3, NCACHE = 2, NOP = 2, MAXROUNDS = 64, NB = 8191, BULK = 32 };
static const char *pool_names[NPOOL] = {"regio", "regio-ops", "ring_mp_mc"};
static const unsigned caches[NCACHE] = {256, 0};
static const char *op_names[NOP] = {"single", "bulk 32"};

static double now_ns(void)
{
    struct timespec ts;
    /* the thread's CPU time: other processes' turns on the core do not count */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static struct rte_mempool *make_pool(int kind, unsigned cache)
{
    char name[32];
    snprintf(name, sizeof name, "b%d_%u", kind, cache);
    if (kind == 0)
        return rg_dpdk_pktmbuf_pool_create(name, NB, cache, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
    return rte_pktmbuf_pool_create_by_ops(name, NB, cache, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id(),
                                          kind == 1 ? rg_dpdk_ops_name() : "ring_mp_mc");
}

static volatile uintptr_t sink;

/* `loops` rounds of `op` on mp; returns the objects allocated and freed.
 * Not inlined: callgrind counts this function alone (--count). */
static __attribute__((noinline)) uint64_t count_loop(struct rte_mempool *mp, int op, unsigned loops)
{
    struct rte_mbuf *m[BULK];
    uint64_t objs = 0;
    for (unsigned k = 0; k < loops; k++) {
        if (op == 0) {
            /* a few mbufs out at once, like a burst being built */
            for (int i = 0; i < 4; i++)
                m[i] = rte_pktmbuf_alloc(mp);
            sink += (uintptr_t)m[3];
            for (int i = 0; i < 4; i++)
                rte_pktmbuf_free(m[i]);
            objs += 4;
        } else {
            if (rte_pktmbuf_alloc_bulk(mp, m, BULK) != 0)
                abort();
            sink += (uintptr_t)m[BULK - 1];
            rte_pktmbuf_free_bulk(m, BULK);
            objs += BULK;
        }
    }
    return objs;
}

/* CPU ns per object for `op` on mp, running for about ms ms of CPU time. */
static double run(struct rte_mempool *mp, int op, double ms)
{
    uint64_t objs = 0;
    double t0 = now_ns(), t = t0, stop = t0 + ms * 1e6;
    while (t < stop) {
        objs += count_loop(mp, op, 1024);
        t = now_ns();
    }
    return (t - t0) / (double)objs;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double res[NPOOL][NCACHE][NOP][MAXROUNDS];

int main(int argc, char **argv)
{
    int n_eal = rte_eal_init(argc, argv);
    if (n_eal < 0) {
        fprintf(stderr, "bench_dpdk: EAL init failed\n");
        return 77;
    }
    argc -= n_eal;
    argv += n_eal;
    int rounds = 5, cp = -1, cc = 0, co = 0;
    unsigned iters = 100000;
    double ms = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--ms") == 0)
            ms = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--iters") == 0)
            iters = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--count") == 0 && i + 3 < argc) {
            cp = atoi(argv[i + 1]);
            cc = atoi(argv[i + 2]);
            co = atoi(argv[i + 3]);
            i += 2;
        }
    }
    if (rounds < 1 || rounds > MAXROUNDS)
        rounds = 5;
    if (cp >= 0) { /* one cell, a fixed count, for callgrind */
        if (cp >= NPOOL || cc < 0 || cc >= NCACHE || co < 0 || co >= NOP)
            return 2;
        struct rte_mempool *one = make_pool(cp, caches[cc]);
        if (one == NULL)
            return 1;
        count_loop(one, co, 64); /* warm: caches filled, first-use paths taken */
        uint64_t objs = count_loop(one, co, iters);
        printf("count: pool %s cache %u op %s objects %llu\n", pool_names[cp], caches[cc], op_names[co],
               (unsigned long long)objs);
        rte_mempool_free(one);
        rte_eal_cleanup();
        return 0;
    }

    struct rte_mempool *mp[NPOOL][NCACHE];
    for (int p = 0; p < NPOOL; p++)
        for (int c = 0; c < NCACHE; c++)
            if ((mp[p][c] = make_pool(p, caches[c])) == NULL) {
                fprintf(stderr, "bench_dpdk: pool %s cache %u failed\n", pool_names[p], caches[c]);
                return 1;
            }
    for (int p = 0; p < NPOOL; p++) /* warm up: touch every mbuf once */
        for (int c = 0; c < NCACHE; c++)
            for (int o = 0; o < NOP; o++)
                run(mp[p][c], o, 20);
    for (int r = 0; r < rounds; r++)
        for (int c = 0; c < NCACHE; c++)
            for (int o = 0; o < NOP; o++)
                for (int p = 0; p < NPOOL; p++)
                    res[p][c][o][r] = run(mp[p][c], o, ms);

    printf("mbuf alloc+free, CPU ns per object, median of %d rounds of %.0f ms (ratio to ring_mp_mc)\n\n",
           rounds, ms);
    printf("| DPDK cache | op | regio (regio memory) | regio-ops (DPDK memory) | ring_mp_mc |\n");
    printf("|---|---|---|---|---|\n");
    for (int c = 0; c < NCACHE; c++)
        for (int o = 0; o < NOP; o++) {
            double med[NPOOL];
            for (int p = 0; p < NPOOL; p++) {
                qsort(res[p][c][o], (size_t)rounds, sizeof(double), cmp_double);
                med[p] = res[p][c][o][rounds / 2];
            }
            printf("| %u | %s | %.2f (%.2fx) | %.2f (%.2fx) | %.2f |\n", caches[c], op_names[o], med[0],
                   med[0] / med[2], med[1], med[1] / med[2], med[2]);
        }
    for (int p = 0; p < NPOOL; p++)
        for (int c = 0; c < NCACHE; c++)
            rte_mempool_free(mp[p][c]);
    rte_eal_cleanup();
    return 0;
}
