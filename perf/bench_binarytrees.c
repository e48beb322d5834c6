/* perf/bench_binarytrees.c — the Benchmarks Game's binary-trees on regio's
 * collected heap (default), on Boehm GC (-DBT_BOEHM; incremental mode with
 * BT_BOEHM_INCR=1 in the environment, printed as boehm-incr), on glibc
 * malloc/free (-DBT_MALLOC: each tree freed node by node after its check)
 * or on APR pools (-DBT_APR: each tree in a pool cleared after its check,
 * as the Benchmarks Game's C entries do), single mutator thread, same
 * shape as perf/go/binarytrees for Go.  Prints one line:
 *   <system> depth=<n> wall_s=<> peak_rss_mib=<> gcs=<> max_pause_us=<> p99_pause_us=<> gc_cpu=<>
 * A "pause" is what the mutator thread stops for: for regio its longest
 * handshake acknowledgement per cycle; for Boehm the stop-the-world
 * collection (start to end event).  Usage: bench_binarytrees [depth
 * [pause file]]; the pause file gets every pause recorded, in ns, one a
 * line (regio: the last 256 cycles').  BT_SP_DEPTH=d (regio only): every
 * subtree of depth >= d roots its finished children and passes a safepoint
 * before the next, so a cycle waits for at most one depth-d subtree
 * instead of one whole tree for a thread's roots (the Benchmarks Game shape
 * has one safepoint per tree). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct node {
    struct node *l, *r;
} node;

static const char *sys_name;

#ifdef BT_BOEHM
#include <gc.h>
#define SYSTEM "boehm"
static uint64_t pauses[1 << 16];
static unsigned npauses;
static uint64_t gc_t0, gc_total;
static void on_event(GC_EventType e)
{
    if (e == GC_EVENT_START) {
        gc_t0 = now_ns();
    } else if (e == GC_EVENT_END) {
        uint64_t d = now_ns() - gc_t0;
        gc_total += d;
        if (npauses < (1u << 16))
            pauses[npauses++] = d;
    }
}
static node *new_node(node *l, node *r)
{
    node *n = GC_MALLOC(sizeof *n);
    n->l = l;
    n->r = r;
    return n;
}
static void safepoint(void) {}
static void setup(void)
{
    GC_INIT();
    if (getenv("BT_BOEHM_INCR") && atoi(getenv("BT_BOEHM_INCR"))) {
        GC_enable_incremental();
        sys_name = "boehm-incr";
    }
    GC_set_on_collection_event(on_event);
}
static void tree_done(node *t) { (void)t; }
static void long_begin(void) {}
static void long_end(void) {}
#elif defined(BT_MALLOC) || defined(BT_APR)
#ifdef BT_MALLOC
#define SYSTEM "malloc"
static node *alloc_node(void) { return malloc(sizeof(node)); }
static void free_tree(node *n)
{
    if (n->l) {
        free_tree(n->l);
        free_tree(n->r);
    }
    free(n);
}
static void setup(void) {}
static void tree_done(node *t) { free_tree(t); }
static void long_begin(void) {}
static void long_end(void) {}
#else
#include <apr_pools.h>
#define SYSTEM "apr"
static apr_pool_t *pool_cur, *pool_tree, *pool_long;
static node *alloc_node(void) { return apr_palloc(pool_cur, sizeof(node)); }
static void setup(void)
{
    if (apr_initialize() != APR_SUCCESS || apr_pool_create(&pool_tree, NULL) != APR_SUCCESS ||
        apr_pool_create(&pool_long, NULL) != APR_SUCCESS) {
        fprintf(stderr, "apr: no pool\n");
        exit(1);
    }
    pool_cur = pool_tree;
}
static void tree_done(node *t)
{
    (void)t;
    apr_pool_clear(pool_tree);
}
static void long_begin(void) { pool_cur = pool_long; }
static void long_end(void) { pool_cur = pool_tree; }
#endif
static node *new_node(node *l, node *r)
{
    node *n = alloc_node();
    if (n == NULL) {
        perror("alloc");
        exit(1);
    }
    n->l = l;
    n->r = r;
    return n;
}
static void safepoint(void) {}
#else
#include "regio.h"
#define SYSTEM "regio"
static const size_t node_offs[] = {offsetof(node, l), offsetof(node, r)};
static const rg_type node_t = {"node", sizeof(node), node_offs, 2, NULL};
static node *new_node(node *l, node *r)
{
    node *n = rg_new(&node_t);
    if (n == NULL) {
        perror("rg_new");
        exit(1);
    }
    /* fresh objects: stores still go through the barrier (rule 1) */
    rg_write(n, &n->l, l);
    rg_write(n, &n->r, r);
    return n;
}
static void safepoint(void) { rg_safepoint(); }
static void setup(void)
{
    const char *a = getenv("RG_GC_ASSIST");
    if (a && !strcmp(a, "paced"))
        sys_name = "regio-paced";
    else if (a && !strcmp(a, "light"))
        sys_name = "regio-light";
}
static void tree_done(node *t) { (void)t; }
static void long_begin(void) {}
static void long_end(void) {}
#endif

static int sp_depth = 1 << 30;
static node *make(int d)
{
    if (d == 0)
        return new_node(NULL, NULL);
#if !defined(BT_BOEHM) && !defined(BT_MALLOC) && !defined(BT_APR)
    if (d >= sp_depth) {
        node *l = make(d - 1);
        rg_root *rl = rg_root_add((void **)&l);
        rg_safepoint();
        node *r = make(d - 1);
        rg_root *rr = rg_root_add((void **)&r);
        rg_safepoint();
        node *n = new_node(l, r);
        rg_root_remove(rl);
        rg_root_remove(rr);
        return n;
    }
#endif
    /* both children are locals until the parent holds them: no safepoint
     * between (rule 2) */
    node *l = make(d - 1);
    node *r = make(d - 1);
    return new_node(l, r);
}

static long check(const node *n)
{
    return n->l ? 1 + check(n->l) + check(n->r) : 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20;
    int maxd = n < 6 ? 6 : n;
    setup();
    if (getenv("BT_SP_DEPTH"))
        sp_depth = atoi(getenv("BT_SP_DEPTH"));
    uint64_t t0 = now_ns();
    long total = 0;
    {
        node *s = make(maxd + 1);
        total += check(s);
        tree_done(s);
        safepoint();
    }
    long_begin();
    node *longlived = make(maxd);
    long_end();
#if !defined(BT_BOEHM) && !defined(BT_MALLOC) && !defined(BT_APR)
    rg_root *root = rg_root_add(&longlived);
#endif
    safepoint();
    for (int d = 4; d <= maxd; d += 2) {
        long iters = 1L << (maxd - d + 4), c = 0;
        for (long i = 0; i < iters; i++) {
            node *t = make(d);
            c += check(t);
            tree_done(t);
            safepoint();
        }
        total += c;
    }
    total += check(longlived);
    double wall = (double)(now_ns() - t0) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    uint64_t maxp = 0, p99 = 0, gcs = 0;
    double cpu = 0;
#ifdef BT_BOEHM
    gcs = GC_get_gc_no(); /* npauses counts only collections with START/END events: none in incremental mode */
    qsort(pauses, npauses, sizeof pauses[0], cmp_u64);
    if (npauses) {
        maxp = pauses[npauses - 1];
        p99 = pauses[(npauses * 99) / 100];
    }
    cpu = (double)gc_total / 1e9 / wall;
#elif defined(BT_MALLOC) || defined(BT_APR)
    (void)cmp_u64;
#else
    rg_root_remove(root);
    rg_memstats ms;
    rg_read_memstats(&ms);
    gcs = ms.num_gc;
    unsigned k = gcs < 256 ? (unsigned)gcs : 256;
    uint64_t p[256];
    for (unsigned i = 0; i < k; i++)
        p[i] = ms.pause_ns[i];
    qsort(p, k, sizeof p[0], cmp_u64);
    if (k) {
        maxp = p[k - 1];
        p99 = p[(k * 99) / 100];
    }
    cpu = ms.gc_cpu_fraction;
    if (getenv("BT_VERBOSE"))
        fprintf(stderr, "sys %.1f MiB, idle %.1f MiB, heap_alloc %.1f MiB, segments %llu\n", ms.sys / 1048576.0,
                ms.heap_idle / 1048576.0, ms.heap_alloc / 1048576.0, (unsigned long long)ms.segments);
#endif
    if (argc > 2) {
        FILE *pf = fopen(argv[2], "w");
        if (pf) {
#ifdef BT_BOEHM
            for (unsigned i = 0; i < npauses; i++)
                fprintf(pf, "%llu\n", (unsigned long long)pauses[i]);
#elif defined(BT_MALLOC) || defined(BT_APR)
            /* no collector, no pauses: an empty file */
#else
            for (unsigned i = 0; i < k; i++)
                fprintf(pf, "%llu\n", (unsigned long long)p[i]);
#endif
            fclose(pf);
        }
    }
    printf("%s depth=%d wall_s=%.3f peak_rss_mib=%.1f gcs=%llu max_pause_us=%.1f p99_pause_us=%.1f gc_cpu=%.3f check=%ld\n",
           sys_name ? sys_name : SYSTEM, n, wall, (double)ru.ru_maxrss / 1024.0, (unsigned long long)gcs, (double)maxp / 1e3,
           (double)p99 / 1e3, cpu, total);
    return 0;
}
