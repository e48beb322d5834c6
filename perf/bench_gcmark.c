/* perf/bench_gcmark.c — the collector's marking speed alone: a complete
 * binary tree of 2^(depth+1)-1 two-pointer nodes on the collected heap,
 * reached from one root, collected `rounds` times with rg_gc() while nothing
 * else runs.  Prints the best round's process CPU per node (the marker's
 * cost per object, plus a sweep of spans that stay full).  Usage:
 * bench_gcmark [depth [rounds]] (defaults 20, 7).  Deterministic enough for
 * `valgrind --tool=callgrind` at depth 16. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "regio.h"

typedef struct node {
    struct node *l, *r;
} node;
static const size_t node_offs[] = {offsetof(node, l), offsetof(node, r)};
static const rg_type node_t = {"node", sizeof(node), node_offs, 2, NULL};

static node *make(int d)
{
    node *n = rg_new(&node_t);
    if (n == NULL) {
        perror("rg_new");
        exit(1);
    }
    if (d > 0) {
        node *l = make(d - 1);
        rg_write(n, &n->l, l);
        node *r = make(d - 1);
        rg_write(n, &n->r, r);
    }
    return n;
}

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int depth = argc > 1 ? atoi(argv[1]) : 20;
    int rounds = argc > 2 ? atoi(argv[2]) : 7;
    if (depth < 1 || depth > 26 || rounds < 1) {
        fprintf(stderr, "usage: bench_gcmark [depth 1..26 [rounds]]\n");
        return 2;
    }
    rg_set_gc_percent(-1); /* only the collections asked for */
    node *root = make(depth);
    if (rg_root_add(&root) == NULL) {
        perror("rg_root_add");
        return 1;
    }
    rg_gc(); /* the first one also sweeps what building left */
    double best = 1e30;
    for (int i = 0; i < rounds; i++) {
        double c0 = cpu_s();
        rg_gc();
        double d = cpu_s() - c0;
        if (d < best)
            best = d;
    }
    double nodes = (double)((2L << depth) - 1);
    printf("gcmark depth=%d nodes=%.0f best_ms=%.2f ns_per_node=%.1f\n", depth, nodes, best * 1e3, best * 1e9 / nodes);
    return 0;
}
