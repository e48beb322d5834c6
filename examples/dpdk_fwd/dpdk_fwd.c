/* examples/dpdk_fwd — an l2fwd-style forwarding loop on regio memory.
 *
 * Two ports, forwarded both ways (0 → 1, 1 → 0), one lcore.  Without a NIC
 * the ports are net_null vdevs: a null port's receive allocates a burst of
 * mbufs from the pool and its transmit frees them, so every forwarded packet
 * is one mbuf alloc + free through the mempool — the work a real NIC's
 * driver does on rx refill and tx completion.  Per packet the loop swaps the
 * Ethernet addresses and hashes the flow; per burst it keeps metadata (the
 * hashes, the lengths) in a regio region that is reset after the burst.
 *
 *   dpdk_fwd [EAL args] -- [--seconds N] [--pool regio|regio-ops|ring_mp_mc]
 *                          [--burst N] [--cache N] [--mbufs N]
 *
 * --pool regio       mbufs in regio memory (rg_dpdk_pktmbuf_pool_create):
 *                    regio's extmem and the "regio" mempool ops (default)
 * --pool regio-ops   DPDK memory, "regio" ops (rte_pktmbuf_pool_create_by_ops)
 * --pool ring_mp_mc  DPDK's default pool, for comparison
 *
 * Prints Mpps once a second and a summary line at the end: Mpps over wall
 * time and per second of the forwarding thread's CPU time (the figure to
 * compare on a shared machine).  See README.md.
 */
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "regio.h"
#include "regio/dpdk.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BURST 256

typedef struct pkt_meta { /* per packet, per burst: lives in the burst's region */
    uint32_t hash;
    uint16_t len;
    uint16_t out_port;
} pkt_meta;

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
/* The forwarding thread's CPU time: on a shared machine the wall clock also
 * counts the time other processes had the core; this does not. */
static double cpu_s(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [EAL args] -- [--seconds N] [--pool regio|regio-ops|ring_mp_mc]\n"
            "          [--burst N] [--cache N] [--mbufs N]\n",
            prog);
    exit(2);
}

static int port_init(uint16_t port, struct rte_mempool *mp)
{
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof conf);
    int rc = rte_eth_dev_configure(port, 1, 1, &conf);
    if (rc == 0)
        rc = rte_eth_rx_queue_setup(port, 0, 1024, rte_eth_dev_socket_id(port), NULL, mp);
    if (rc == 0)
        rc = rte_eth_tx_queue_setup(port, 0, 1024, rte_eth_dev_socket_id(port), NULL);
    if (rc == 0)
        rc = rte_eth_dev_start(port);
    return rc;
}

/* FNV-1a over the first 16 bytes (addresses and ethertype): the flow key. */
static inline uint32_t flow_hash(const uint8_t *p)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

typedef struct fwd_stats {
    uint64_t fwd, dropped, checksum;
} fwd_stats;

/* The forwarding loop, until `seconds` have passed since `start`.  Not
 * inlined, so callgrind can count it alone (--toggle-collect=forward_loop):
 * instructions per packet are the steady measure on a noisy machine. */
static __attribute__((noinline)) void forward_loop(rg_region *meta_region, unsigned burst, double start,
                                                   double seconds, fwd_stats *st)
{
    struct rte_mbuf *pkts[MAX_BURST];
    uint64_t fwd = 0, fwd_last = 0, dropped = 0, checksum = 0;
    double last = start, end = start + seconds;
    for (;;) {
        for (uint16_t in = 0; in < 2; in++) {
            uint16_t out = in ^ 1;
            uint16_t n = rte_eth_rx_burst(in, 0, pkts, (uint16_t)burst);
            if (n == 0)
                continue;
            pkt_meta *meta = rg_alloc(meta_region, n * sizeof *meta);
            if (meta == NULL) {
                rte_pktmbuf_free_bulk(pkts, n);
                dropped += n;
                continue;
            }
            for (uint16_t i = 0; i < n; i++) {
                struct rte_ether_hdr *eth = rte_pktmbuf_mtod(pkts[i], struct rte_ether_hdr *);
                struct rte_ether_addr tmp = eth->dst_addr; /* l2fwd: swap addresses */
                eth->dst_addr = eth->src_addr;
                eth->src_addr = tmp;
                meta[i].hash = flow_hash((const uint8_t *)eth);
                meta[i].len = (uint16_t)rte_pktmbuf_pkt_len(pkts[i]);
                meta[i].out_port = out;
            }
            uint16_t sent = rte_eth_tx_burst(out, 0, pkts, n);
            for (uint16_t i = 0; i < sent; i++)
                checksum += meta[i].hash ^ meta[i].len;
            if (sent < n) {
                rte_pktmbuf_free_bulk(pkts + sent, n - sent);
                dropped += n - sent;
            }
            fwd += sent;
            rg_region_reset(meta_region); /* the burst's metadata dies here */
        }
        if ((fwd & 0x3ff) < burst) { /* look at the clock about every 1k packets */
            double t = now_s();
            if (t - last >= 1.0) {
                printf("%7.1f s  %8.3f Mpps\n", t - start, (double)(fwd - fwd_last) / (t - last) / 1e6);
                fflush(stdout);
                fwd_last = fwd;
                last = t;
            }
            if (t >= end)
                break;
        }
    }
    st->fwd = fwd;
    st->dropped = dropped;
    st->checksum = checksum;
}

int main(int argc, char **argv)
{
    int n_eal = rte_eal_init(argc, argv);
    if (n_eal < 0) {
        fprintf(stderr, "dpdk_fwd: EAL init failed: %s\n", rte_strerror(rte_errno));
        return 77;
    }
    argc -= n_eal;
    argv += n_eal;

    double seconds = 5;
    const char *pool_kind = "regio";
    unsigned burst = 32, cache = 256, nb_mbufs = 8191;
    static const struct option opts[] = {
        {"seconds", required_argument, NULL, 's'}, {"pool", required_argument, NULL, 'p'},
        {"burst", required_argument, NULL, 'b'},   {"cache", required_argument, NULL, 'c'},
        {"mbufs", required_argument, NULL, 'n'},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "s:p:b:c:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 's': seconds = atof(optarg); break;
        case 'p': pool_kind = optarg; break;
        case 'b': burst = (unsigned)atoi(optarg); break;
        case 'c': cache = (unsigned)atoi(optarg); break;
        case 'n': nb_mbufs = (unsigned)atoi(optarg); break;
        default: usage(argv[0]);
        }
    }
    if (burst == 0 || burst > MAX_BURST || seconds <= 0)
        usage(argv[0]);
    if (rte_eth_dev_count_avail() < 2) {
        fprintf(stderr, "dpdk_fwd: needs two ports, e.g. --vdev=net_null0 --vdev=net_null1\n");
        return 2;
    }

    struct rte_mempool *mp = NULL;
    if (strcmp(pool_kind, "regio") == 0)
        mp = rg_dpdk_pktmbuf_pool_create("fwd_pool", nb_mbufs, cache, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                         (int)rte_socket_id());
    else if (strcmp(pool_kind, "regio-ops") == 0 || strcmp(pool_kind, "ring_mp_mc") == 0)
        mp = rte_pktmbuf_pool_create_by_ops("fwd_pool", nb_mbufs, cache, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                            (int)rte_socket_id(),
                                            strcmp(pool_kind, "regio-ops") == 0 ? rg_dpdk_ops_name()
                                                                                : "ring_mp_mc");
    else
        usage(argv[0]);
    if (mp == NULL) {
        fprintf(stderr, "dpdk_fwd: mbuf pool: %s\n", strerror(errno ? errno : rte_errno));
        return 1;
    }
    for (uint16_t port = 0; port < 2; port++) {
        int rc = port_init(port, mp);
        if (rc != 0) {
            fprintf(stderr, "dpdk_fwd: port %u: %s\n", port, rte_strerror(-rc));
            return 1;
        }
    }
    rg_region *meta_region = rg_region_new();
    if (meta_region == NULL) {
        perror("dpdk_fwd: region");
        return 1;
    }
    printf("dpdk_fwd: pool %s (ops %s), burst %u, DPDK cache %u, %u mbufs, %.0f s\n", pool_kind,
           rte_mempool_get_ops(mp->ops_index)->name, burst, cache, nb_mbufs, seconds);

    fwd_stats st = {0, 0, 0};
    double start = now_s(), cpu0 = cpu_s();
    forward_loop(meta_region, burst, start, seconds, &st);
    double cpu = cpu_s() - cpu0;
    double elapsed = now_s() - start;
    printf("dpdk_fwd: pool %s: %.3f Mpps average over %.1f s, %.3f Mpps per CPU second "
           "(%llu packets, %llu dropped, check %llx)\n",
           pool_kind, (double)st.fwd / elapsed / 1e6, elapsed, cpu > 0 ? (double)st.fwd / cpu / 1e6 : 0.0, (unsigned long long)st.fwd,
           (unsigned long long)st.dropped, (unsigned long long)st.checksum);

    for (uint16_t port = 0; port < 2; port++) {
        rte_eth_dev_stop(port);
        rte_eth_dev_close(port);
    }
    rg_region_free(meta_region);
    rte_mempool_free(mp);
    rte_eal_cleanup();
    return 0;
}
