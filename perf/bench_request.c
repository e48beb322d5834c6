/* perf/bench_request.c — the per-request allocation workload of ANCHORS.md.
 *
 * One iteration is one request: 64 allocations whose sizes come from a
 * sequence generated once with a fixed seed (94% uniform in 16..256 B, 6%
 * uniform in 257..4096 B; 256 different requests, cycled), each touched with
 * one 8-byte write ("touch8": the figure is the allocator's own cost) or with
 * every byte written ("fill"), the 64 pointers kept in an array as a request
 * keeps its objects, then everything freed: a region reset, a pool clear, a
 * bump pointer reset, or 64 free() calls in allocation order.  Every variant
 * runs the same loop on the same sizes; only the allocate and free-all steps
 * differ.  Per-thread state (region, pool, chunk) is created once per thread,
 * outside the timing, as a server creates it once per worker.
 *
 * Variants, by binary (a malloc replacement owns the whole process, so each
 * lives in its own executable built from this file):
 *   bench_request           bump, regio, regio-64k, apr, glibc
 *   bench_request_jemalloc  jemalloc   (malloc/free, linked with libjemalloc)
 *   bench_request_tcmalloc  tcmalloc   (malloc/free, linked with libtcmalloc_minimal)
 *   bench_request_mimalloc  mimalloc   (mi_malloc/mi_free, its explicit API)
 * Names: request/<variant>/<touch8|fill>/threads:<1|2>.  rgb_set_items_per_
 * iteration(64) makes `per_item` the time per allocation.
 *
 * The naive bump pointer is the physical limit: a 64 KiB chunk, 16-byte
 * rounding, one compare; an out-of-line overflow path exists for honesty but
 * the generated requests never need it (checked at start).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include "shim.h"

#include <regio.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(BENCH_APR)
#include <apr_general.h>
#include <apr_pools.h>
#endif
#if defined(BENCH_MIMALLOC)
#include <mimalloc.h>
#endif

#define NALLOC 64 /* allocations per request */
#define NSEQ 256  /* different requests in the size sequence (power of two) */
#define BATCH 16  /* requests per call into the harness */
#define SEED UINT64_C(0x7265676970657266)

static uint16_t sizes[NSEQ][NALLOC];

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Returns the largest request's total (16-rounded) bytes. */
static size_t gen_sizes(void)
{
    uint64_t s = SEED;
    size_t max_total = 0;
    for (int r = 0; r < NSEQ; r++) {
        size_t total = 0;
        for (int i = 0; i < NALLOC; i++) {
            uint64_t x = splitmix64(&s);
            unsigned n = (x % 100) < 94 ? 16 + (unsigned)((x >> 8) % 241)
                                        : 257 + (unsigned)((x >> 8) % (4096 - 256));
            sizes[r][i] = (uint16_t)n;
            total += (n + 15) & ~(size_t)15;
        }
        if (total > max_total)
            max_total = total;
    }
    return max_total;
}

enum touch { TOUCH8, FILL };

static inline __attribute__((always_inline)) void touch(void *p, size_t n, uint64_t v, enum touch t)
{
    if (t == TOUCH8)
        *(volatile uint64_t *)p = v;
    else
        memset(p, (int)v, n);
}

/* The shared request loop.  ALLOC(n) yields a pointer (NULL on failure),
 * FREE_ALL() frees the request; both see `ptrs`. */
#define REQUEST_LOOP(st, t, ALLOC, FREE_ALL)                                      \
    do {                                                                          \
        void *ptrs[NALLOC];                                                       \
        unsigned seq = 0;                                                         \
        while (rgb_keep_running_batch((st), BATCH)) {                             \
            for (int k = 0; k < BATCH; k++) {                                     \
                const uint16_t *sz = sizes[seq++ & (NSEQ - 1)];                   \
                for (int i = 0; i < NALLOC; i++) {                                \
                    size_t n = sz[i];                                             \
                    void *p = ALLOC(n);                                           \
                    if (__builtin_expect(p == NULL, 0)) {                         \
                        rgb_skip_with_error((st), "allocation failed");           \
                        goto out;                                                 \
                    }                                                             \
                    touch(p, n, (uint64_t)i, (t));                                \
                    ptrs[i] = p;                                                  \
                }                                                                 \
                rgb_do_not_optimize(ptrs);                                        \
                FREE_ALL();                                                       \
            }                                                                     \
        }                                                                         \
    out:                                                                          \
        rgb_set_items_per_iteration((st), NALLOC);                                \
    } while (0)

/* Defines bm_<name>_touch8 and bm_<name>_fill from run_<name>(st, t). */
#define VARIANTS(name)                                                                \
    static void bm_##name##_touch8(rgb_state *st) { run_##name(st, TOUCH8); }        \
    static void bm_##name##_fill(rgb_state *st) { run_##name(st, FILL); }

#if defined(BENCH_MAIN)
/* --------------------------------------------------------------- bump */
typedef struct bump {
    char *base, *cur, *end;
    void *overflow; /* list of malloc'd overflow chunks (never used here) */
} bump;

#define BUMP_CHUNK ((size_t)64 << 10)

static __attribute__((noinline, cold)) void *bump_slow(bump *b, size_t n)
{
    void **c = malloc(sizeof(void *) + ((n + 15) & ~(size_t)15) + 16);
    if (c == NULL)
        return NULL;
    *c = b->overflow;
    b->overflow = c;
    return (void *)(((uintptr_t)(c + 1) + 15) & ~(uintptr_t)15);
}

static inline void *bump_alloc(bump *b, size_t n)
{
    size_t sz = (n + 15) & ~(size_t)15;
    char *p = b->cur;
    if (__builtin_expect(sz > (size_t)(b->end - p), 0))
        return bump_slow(b, n);
    b->cur = p + sz;
    return p;
}

static inline void bump_reset(bump *b)
{
    b->cur = b->base;
    while (__builtin_expect(b->overflow != NULL, 0)) {
        void **c = b->overflow;
        b->overflow = *c;
        free(c);
    }
}

static inline __attribute__((always_inline)) void run_bump(rgb_state *st, enum touch t)
{
    bump b = {0};
    b.base = b.cur = aligned_alloc(64, BUMP_CHUNK);
    if (b.base == NULL) {
        rgb_skip_with_error(st, "no memory for the bump chunk");
        return;
    }
    b.end = b.base + BUMP_CHUNK;
#define BUMP_ALLOC(n) bump_alloc(&b, (n))
#define BUMP_FREE() bump_reset(&b)
    REQUEST_LOOP(st, t, BUMP_ALLOC, BUMP_FREE);
    bump_reset(&b);
    free(b.base);
}
VARIANTS(bump)

/* --------------------------------------------------------------- regio */
static inline __attribute__((always_inline)) void run_regio_opts(rgb_state *st, enum touch t,
                                                                 const rg_region_opts *o)
{
    rg_region *r = rg_region_new_opts(o);
    if (r == NULL) {
        rgb_skip_with_error(st, "rg_region_new failed");
        return;
    }
#define RG_ALLOC(n) rg_alloc(r, (n))
#define RG_FREE() rg_region_reset(r)
    REQUEST_LOOP(st, t, RG_ALLOC, RG_FREE);
    rg_region_free(r);
}

/* rg_region_new(): the defaults a user gets. */
static inline __attribute__((always_inline)) void run_regio(rgb_state *st, enum touch t)
{
    run_regio_opts(st, t, NULL);
}
VARIANTS(regio)

/* A first chunk as large as the bump pointer's, for a like-for-like shape. */
static inline __attribute__((always_inline)) void run_regio64k(rgb_state *st, enum touch t)
{
    rg_region_opts o = {.first_chunk = (size_t)64 << 10};
    run_regio_opts(st, t, &o);
}
VARIANTS(regio64k)
#endif /* BENCH_MAIN */

#if defined(BENCH_APR)
/* --------------------------------------------------------------- APR */
/* One allocator per thread, as httpd's worker threads have, so the clear
 * takes no lock shared with the other thread. */
static inline __attribute__((always_inline)) void run_apr(rgb_state *st, enum touch t)
{
    apr_allocator_t *al = NULL;
    apr_pool_t *pool = NULL;
    if (apr_allocator_create(&al) != APR_SUCCESS || apr_pool_create_ex(&pool, NULL, NULL, al) != APR_SUCCESS) {
        rgb_skip_with_error(st, "apr_pool_create failed");
        return;
    }
    apr_allocator_owner_set(al, pool);
#define APR_ALLOC(n) apr_palloc(pool, (n))
#define APR_FREE() apr_pool_clear(pool)
    REQUEST_LOOP(st, t, APR_ALLOC, APR_FREE);
    apr_pool_destroy(pool); /* destroys the allocator it owns */
}
VARIANTS(apr)
#endif

/* --------------------------------------------------------------- malloc */
#if defined(BENCH_MIMALLOC)
#define PEER_MALLOC mi_malloc
#define PEER_FREE mi_free
#else
#define PEER_MALLOC malloc
#define PEER_FREE free
#endif

static inline __attribute__((always_inline)) void run_malloc(rgb_state *st, enum touch t)
{
#define M_ALLOC(n) PEER_MALLOC(n)
#define M_FREE()                            \
    do {                                    \
        for (int j = 0; j < NALLOC; j++)    \
            PEER_FREE(ptrs[j]);             \
    } while (0)
    REQUEST_LOOP(st, t, M_ALLOC, M_FREE);
}
VARIANTS(malloc)

#ifndef MALLOC_NAME
#define MALLOC_NAME "glibc"
#endif

static void reg(const char *variant, const char *mode, rgb_body *fn)
{
    static const int threads[] = {1, 2, 0};
    char name[128];
    snprintf(name, sizeof name, "request/%s/%s", variant, mode);
    rgb_def d = {.name = name, .body = fn, .threads = threads};
    if (rgb_register(&d) != 0) {
        fprintf(stderr, "bench_request: cannot register %s\n", name);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    size_t max_total = gen_sizes();
    if (max_total > ((size_t)64 << 10)) {
        fprintf(stderr, "bench_request: a request needs %zu bytes, more than the bump chunk\n", max_total);
        return 1;
    }
#if defined(BENCH_APR)
    if (apr_initialize() != APR_SUCCESS) {
        fprintf(stderr, "bench_request: apr_initialize failed\n");
        return 1;
    }
#endif
#if defined(BENCH_MAIN)
    reg("bump", "touch8", bm_bump_touch8);
    reg("regio", "touch8", bm_regio_touch8);
    reg("regio-64k", "touch8", bm_regio64k_touch8);
#endif
#if defined(BENCH_APR)
    reg("apr", "touch8", bm_apr_touch8);
#endif
    reg(MALLOC_NAME, "touch8", bm_malloc_touch8);
#if defined(BENCH_MAIN)
    reg("bump", "fill", bm_bump_fill);
    reg("regio", "fill", bm_regio_fill);
    reg("regio-64k", "fill", bm_regio64k_fill);
#endif
#if defined(BENCH_APR)
    reg("apr", "fill", bm_apr_fill);
#endif
    reg(MALLOC_NAME, "fill", bm_malloc_fill);
    /* Which library's malloc this process really calls: scripts/bench checks
     * it, so a peer that silently fell back to glibc cannot pass as itself. */
    Dl_info info;
    void *(*m)(size_t) = PEER_MALLOC;
    void *addr;
    memcpy(&addr, &m, sizeof addr); /* ISO C has no function-to-object pointer cast */
    rgb_add_context("malloc_from", dladdr(addr, &info) && info.dli_fname ? info.dli_fname : "?");
    rgb_add_context("allocator", MALLOC_NAME);
    int rc = rgb_main(argc, argv);
#if defined(BENCH_APR)
    apr_terminate();
#endif
    return rc;
}
