/* tests/dpdk.c — the "regio" mempool ops driver, extmem mbuf pools and the
 * memzone page source, each case in its own forked process (EAL starts once
 * per process); skips (77) when EAL cannot start here.  The hugepage path
 * of the memzone source is tests/dpdk_hugepages.c; the static link,
 * tests/dpdk_static.c.
 */
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_memory.h>
#include <rte_memzone.h>
#include <rte_mempool.h>

#include "cu.h"
#include "support.h"
#include "regio.h"
#include "regio/dpdk.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Under ThreadSanitizer one EAL start takes 10-15 s here: EAL dlopens every
 * PMD plugin in DPDK's driver directory and TSan rescans all loaded modules
 * at each dlopen.  That build runs the cases TSan adds most to — threads
 * sharing a pool, the per-thread caches' reclaim — in one process, and the
 * case without EAL; the others run in the normal
 * and ASan builds. */
#if TU_UNDER_TSAN
#define SLOW_EAL 1
#endif

#ifdef SLOW_EAL
#pragma GCC diagnostic ignored "-Wunused-function" /* the cases this build leaves out */
#endif

/* In a child: a failed check reports and exits 1 (the parent asserts 0). */
#define CHECK(c) TU_CHECK(c)

static int eal_start(void)
{
    char *argv[] = {"test_dpdk", "--no-huge", "--no-pci", "-m", "512", "--no-shconf",
                    "--lcores=0@(0-1)", "--no-telemetry", "--log-level=lib.eal:warning",
                    "--log-level=lib.mempool:warning", NULL};
    return rte_eal_init((int)(sizeof argv / sizeof argv[0]) - 1, argv);
}

/* Runs body in a child, with EAL started (eal) or not; returns its exit code
 * (77: EAL could not start). */
static int run_child(void (*body)(void), bool eal)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        if (eal && eal_start() < 0)
            _exit(77);
        body();
        if (eal)
            rte_eal_cleanup();
        _exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return 2;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static const char *ops_name_of(struct rte_mempool *mp)
{
    return rte_mempool_get_ops(mp->ops_index)->name;
}

/* ---------------------------------------------------------------------------
 * The ops driver on a plain mempool, DPDK cache off and on
 * ------------------------------------------------------------------------- */
enum { N_OBJ = 1023 };

static void empty_pool_case(unsigned cache)
{
    struct rte_mempool *mp = rte_mempool_create_empty(cache ? "c_on" : "c_off", N_OBJ, 64, cache, 0,
                                                      SOCKET_ID_ANY, 0);
    CHECK(mp != NULL);
    CHECK(rte_mempool_set_ops_byname(mp, rg_dpdk_ops_name(), NULL) == 0);
    CHECK(rte_mempool_populate_default(mp) == N_OBJ);
    CHECK(strcmp(ops_name_of(mp), "regio") == 0);
    CHECK(rte_mempool_avail_count(mp) == N_OBJ);

    static void *objs[N_OBJ];
    for (unsigned i = 0; i < N_OBJ; i++) {
        CHECK(rte_mempool_get(mp, &objs[i]) == 0);
        memset(objs[i], (int)(i & 0xff), 64);
    }
    void *extra;
    CHECK(rte_mempool_get(mp, &extra) == -ENOENT); /* exhausted */
    CHECK(rte_mempool_avail_count(mp) == 0);
    CHECK(rte_mempool_full(mp) == 0);
    /* every object distinct and untouched by the others' writes */
    for (unsigned i = 0; i < N_OBJ; i++)
        CHECK(((unsigned char *)objs[i])[63] == (i & 0xff));
    for (unsigned i = 0; i < N_OBJ; i++)
        rte_mempool_put(mp, objs[i]);
    CHECK(rte_mempool_avail_count(mp) == N_OBJ);

    /* bulk: all or nothing */
    for (int round = 0; round < 100; round++) {
        unsigned k = 0;
        while (k + 32 <= N_OBJ && rte_mempool_get_bulk(mp, objs + k, 32) == 0)
            k += 32;
        CHECK(k == N_OBJ / 32 * 32);
        CHECK(rte_mempool_get_bulk(mp, objs + k, 32) == -ENOENT);
        CHECK(rte_mempool_avail_count(mp) == N_OBJ - k);
        rte_mempool_put_bulk(mp, objs, k);
    }
    CHECK(rte_mempool_avail_count(mp) == N_OBJ);
    rte_mempool_free(mp);
}

/* Explicit registration on top of the constructor's: still one entry. */
static void body_register(void)
{
    CHECK(rg_dpdk_ops_register() == 0);
    CHECK(rg_dpdk_ops_register() == 0);
    int found = 0;
    for (uint32_t i = 0; i < rte_mempool_ops_table.num_ops; i++)
        found += strcmp(rte_mempool_ops_table.ops[i].name, "regio") == 0;
    CHECK(found == 1);
}
static void test_register(void) { CU_ASSERT_EQUAL(run_child(body_register, true), 0); }

static void body_nocache(void) { empty_pool_case(0); }
static void body_cache(void) { empty_pool_case(256); }

static void test_ops_nocache(void) { CU_ASSERT_EQUAL(run_child(body_nocache, true), 0); }
static void test_ops_cache(void) { CU_ASSERT_EQUAL(run_child(body_cache, true), 0); }

/* ---------------------------------------------------------------------------
 * rte_pktmbuf_pool_create_by_ops(..., "regio")
 * ------------------------------------------------------------------------- */
static void body_pktmbuf(void)
{
    for (unsigned cache = 0; cache <= 256; cache += 256) {
        struct rte_mempool *mp = rte_pktmbuf_pool_create_by_ops(cache ? "mb1" : "mb0", 4095, cache, 0,
                                                                RTE_MBUF_DEFAULT_BUF_SIZE,
                                                                SOCKET_ID_ANY, "regio");
        CHECK(mp != NULL);
        CHECK(strcmp(ops_name_of(mp), "regio") == 0);
        struct rte_mbuf *m[32];
        for (int round = 0; round < 1000; round++) {
            CHECK(rte_pktmbuf_alloc_bulk(mp, m, 32) == 0);
            for (int i = 0; i < 32; i++) {
                CHECK(m[i]->pool == mp && rte_mbuf_refcnt_read(m[i]) == 1);
                char *d = rte_pktmbuf_append(m[i], 60);
                CHECK(d != NULL);
                memset(d, round & 0xff, 60);
            }
            rte_pktmbuf_free_bulk(m, 32);
        }
        struct rte_mbuf *one = rte_pktmbuf_alloc(mp);
        CHECK(one != NULL);
        rte_pktmbuf_free(one);
        CHECK(rte_mempool_avail_count(mp) == 4095);
        CHECK(rte_mempool_in_use_count(mp) == 0);
        rte_mempool_free(mp);
    }
}
static void test_pktmbuf_by_ops(void) { CU_ASSERT_EQUAL(run_child(body_pktmbuf, true), 0); }

/* ---------------------------------------------------------------------------
 * Two non-EAL threads (no DPDK cache for them) share the pool through the
 * ops' per-thread caches and the ring; each object carries an owner flag,
 * so a pointer handed out twice is caught.  The tight pool is smaller than
 * two threads' caches: gets there often need the other thread's cache
 * (a reclaim while its owner is working).
 * ------------------------------------------------------------------------- */
enum { MT_OBJ = 511, MT_ROUNDS = 100000, MT_TIGHT_OBJ = 40, MT_TIGHT_ROUNDS = 20000 };

typedef struct mt_arg {
    struct rte_mempool *mp;
    int rounds;
    long got; /* successful gets */
} mt_arg;

static void *mt_worker(void *argp)
{
    mt_arg *a = argp;
    void *objs[16];
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    long errors = 0;
    for (int r = 0; r < a->rounds; r++) {
        seed = seed * 1103515245u + 12345u;
        unsigned n = 1 + (seed >> 16) % 16;
        if (rte_mempool_get_bulk(a->mp, objs, n) != 0)
            continue;
        a->got++;
        for (unsigned i = 0; i < n; i++)
            if (atomic_exchange_explicit((atomic_int *)objs[i], 1, memory_order_relaxed) != 0)
                errors++;
        for (unsigned i = 0; i < n; i++)
            atomic_store_explicit((atomic_int *)objs[i], 0, memory_order_relaxed);
        rte_mempool_put_bulk(a->mp, objs, n);
    }
    return (void *)errors;
}

static void zero_obj(struct rte_mempool *mp, void *arg, void *obj, unsigned idx)
{
    (void)mp, (void)arg, (void)idx;
    memset(obj, 0, sizeof(atomic_int));
}

static void threads_case(const char *name, unsigned nobj, int rounds)
{
    struct rte_mempool *mp = rte_mempool_create_empty(name, nobj, 64, 0, 0, SOCKET_ID_ANY, 0);
    CHECK(mp != NULL);
    CHECK(rte_mempool_set_ops_byname(mp, "regio", NULL) == 0);
    CHECK(rte_mempool_populate_default(mp) == (int)nobj);
    rte_mempool_obj_iter(mp, zero_obj, NULL);
    pthread_t t[2];
    mt_arg a[2] = {{mp, rounds, 0}, {mp, rounds, 0}};
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, mt_worker, &a[i]) == 0);
    for (int i = 0; i < 2; i++) {
        void *errors;
        pthread_join(t[i], &errors);
        CHECK(errors == NULL);
        CHECK(a[i].got > 0);
    }
    /* the threads' caches went back to the ring when they exited */
    CHECK(rte_mempool_avail_count(mp) == nobj);
    void *one;
    CHECK(rte_mempool_get(mp, &one) == 0);
    rte_mempool_put(mp, one);
    rte_mempool_free(mp);
}

static void body_threads(void)
{
    threads_case("mt", MT_OBJ, MT_ROUNDS);
    threads_case("mt_tight", MT_TIGHT_OBJ, MT_TIGHT_ROUNDS);
}
static void test_threads(void) { CU_ASSERT_EQUAL(run_child(body_threads, true), 0); }

/* ---------------------------------------------------------------------------
 * The ops' per-thread caches: objects another thread keeps are counted and
 * can be had (reclaimed); a pool freed while a thread still has a cache,
 * then a new pool in its place.
 * ------------------------------------------------------------------------- */
enum { RC_OBJ = 255 };

typedef struct holder {
    struct rte_mempool *mp;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int step; /* main: 1 go on, 2 exit; holder: 10 has filled its cache, 11 used the new pool */
    int ok;
} holder;

static void holder_wait(holder *h, int step)
{
    pthread_mutex_lock(&h->lock);
    while (h->step < step)
        pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
}

static void holder_set(holder *h, int step)
{
    pthread_mutex_lock(&h->lock);
    h->step = step;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
}

static void *holder_main(void *arg)
{
    holder *h = arg;
    void *objs[32];
    /* round trips leave objects in this thread's cache */
    h->ok = rte_mempool_get_bulk(h->mp, objs, 32) == 0;
    if (h->ok)
        rte_mempool_put_bulk(h->mp, objs, 32);
    holder_set(h, 10);
    holder_wait(h, 20); /* main frees the pool and makes a new one meanwhile */
    /* the new pool may have the freed one's slot: the stale cache must not serve it */
    for (int i = 0; i < 100 && h->ok; i++) {
        h->ok = rte_mempool_get_bulk(h->mp, objs, 8) == 0;
        if (h->ok)
            rte_mempool_put_bulk(h->mp, objs, 8);
    }
    holder_set(h, 21);
    holder_wait(h, 30);
    return NULL;
}

static void body_caches(void)
{
    static void *objs[RC_OBJ];
    holder h = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    h.mp = rte_mempool_create_empty("rc1", RC_OBJ, 64, 0, 0, SOCKET_ID_ANY, 0);
    CHECK(h.mp != NULL);
    CHECK(rte_mempool_set_ops_byname(h.mp, "regio", NULL) == 0);
    CHECK(rte_mempool_populate_default(h.mp) == RC_OBJ);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, holder_main, &h) == 0);
    holder_wait(&h, 10);
    CHECK(h.ok);
    CHECK(rte_mempool_avail_count(h.mp) == RC_OBJ); /* the holder's cache is counted */
    /* every object can be had from here, one at a time and in bulk,
     * though the holder (alive, idle) keeps some in its cache */
    for (unsigned i = 0; i < RC_OBJ; i++)
        CHECK(rte_mempool_get(h.mp, &objs[i]) == 0);
    void *extra;
    CHECK(rte_mempool_get(h.mp, &extra) == -ENOENT);
    CHECK(rte_mempool_avail_count(h.mp) == 0);
    for (unsigned i = 0; i < RC_OBJ; i++)
        CHECK(objs[i] != NULL);
    rte_mempool_put_bulk(h.mp, objs, RC_OBJ);
    CHECK(rte_mempool_avail_count(h.mp) == RC_OBJ);
    CHECK(rte_mempool_get_bulk(h.mp, objs, RC_OBJ) == 0);
    rte_mempool_put_bulk(h.mp, objs, RC_OBJ);

    /* freed while the holder still has a cache of it, then a new pool */
    rte_mempool_free(h.mp);
    h.mp = rte_mempool_create_empty("rc2", 64, 64, 0, 0, SOCKET_ID_ANY, 0);
    CHECK(h.mp != NULL);
    CHECK(rte_mempool_set_ops_byname(h.mp, "regio", NULL) == 0);
    CHECK(rte_mempool_populate_default(h.mp) == 64);
    holder_set(&h, 20);
    holder_wait(&h, 21);
    CHECK(h.ok);
    CHECK(rte_mempool_avail_count(h.mp) == 64);
    holder_set(&h, 30);
    pthread_join(t, NULL);
    CHECK(rte_mempool_avail_count(h.mp) == 64); /* the exit flush */
    CHECK(rte_mempool_get_bulk(h.mp, objs, 64) == 0);
    rte_mempool_put_bulk(h.mp, objs, 64);
    rte_mempool_free(h.mp);
}
static void test_caches(void) { CU_ASSERT_EQUAL(run_child(body_caches, true), 0); }

/* ---------------------------------------------------------------------------
 * regio memory for DPDK
 * ------------------------------------------------------------------------- */
static void body_extmem(void)
{
    errno = 0;
    CHECK(rg_dpdk_extmem_alloc(0) == NULL && errno == EINVAL);
    int local;
    CHECK(rg_dpdk_extmem_free(&local) == -EINVAL);
    CHECK(rg_dpdk_extmem_free(NULL) == 0);

    void *a = rg_dpdk_extmem_alloc(100000);
    CHECK(a != NULL && ((uintptr_t)a & 4095) == 0);
    CHECK(rg_owns(a));
    CHECK(rte_mem_virt2memseg(a, NULL) != NULL); /* DPDK knows the pages */
    memset(a, 1, 100000);
    void *raw = rg_malloc(64);
    CHECK(raw != NULL);
    CHECK(rg_dpdk_extmem_free(raw) == -EINVAL); /* a regio pointer, not an area */
    rg_free(raw);
    CHECK(rg_dpdk_extmem_free(a) == 0);
    CHECK(rte_mem_virt2memseg(a, NULL) == NULL);

    uint64_t before = tu_memstats()->sys;
    enum { N = 2047, ROOM = 2048 + RTE_PKTMBUF_HEADROOM };
    struct rte_mempool *mp = rg_dpdk_pktmbuf_pool_create("ext", N, 32, 0, ROOM, SOCKET_ID_ANY);
    CHECK(mp != NULL);
    CHECK(strcmp(ops_name_of(mp), "regio") == 0);
    uint64_t with_pool = tu_memstats()->sys;
    CHECK(with_pool >= before + (uint64_t)N * ROOM); /* the mbufs are charged */
    struct rte_mbuf *m[64];
    for (int round = 0; round < 200; round++) {
        CHECK(rte_pktmbuf_alloc_bulk(mp, m, 64) == 0);
        for (int i = 0; i < 64; i++) {
            CHECK(rg_owns(m[i]));
            CHECK(rte_pktmbuf_data_room_size(mp) == ROOM);
            char *d = rte_pktmbuf_append(m[i], 1500);
            CHECK(d != NULL && rg_owns(d));
            memset(d, 0x5a, 1500);
        }
        rte_pktmbuf_free_bulk(m, 64);
    }
    CHECK(rte_mempool_avail_count(mp) == N);
    CHECK(rte_mempool_lookup("ext") == mp);
    rte_mempool_free(mp);
    CHECK(tu_memstats()->sys < with_pool); /* the area went back to regio */

    /* the hard limit bounds DPDK's use of regio memory too */
    int64_t old = rg_set_memory_limit((int64_t)tu_memstats()->sys + (4 << 20));
    errno = 0;
    mp = rg_dpdk_pktmbuf_pool_create("big", 8191, 0, 0, ROOM, SOCKET_ID_ANY);
    CHECK(mp == NULL && errno == ENOMEM);
    CHECK(rte_mempool_lookup("big") == NULL); /* nothing left behind */
    rg_set_memory_limit(old);
    mp = rg_dpdk_pktmbuf_pool_create("big", 8191, 0, 0, ROOM, SOCKET_ID_ANY);
    CHECK(mp != NULL);
    rte_mempool_free(mp);

    /* regio is running: too late for the memzone source */
    CHECK(rg_dpdk_use_memzone_source((size_t)128 << 20) == -EBUSY);
}
static void test_extmem(void) { CU_ASSERT_EQUAL(run_child(body_extmem, true), 0); }

/* ---------------------------------------------------------------------------
 * DPDK memory for regio
 * ------------------------------------------------------------------------- */
static void body_memzone(void)
{
    CHECK(rg_dpdk_use_memzone_source((size_t)64 << 20) == -EINVAL);
    CHECK(rg_dpdk_use_memzone_source((size_t)128 << 20) == 0);
    CHECK(rg_dpdk_use_memzone_source((size_t)128 << 20) == -EBUSY);
    const struct rte_memzone *mz = rte_memzone_lookup("regio_segments");
    CHECK(mz != NULL && mz->len >= ((size_t)128 << 20));
    char *lo = mz->addr, *hi = lo + mz->len;

    char *p = rg_malloc(1000);
    CHECK(p != NULL && p >= lo && p < hi);
    memset(p, 7, 1000);
    rg_region *r = rg_region_new();
    CHECK(r != NULL);
    char *q = rg_alloc(r, 100000);
    CHECK(q != NULL && q >= lo && q < hi);
    CHECK(rte_mem_virt2memseg(q, NULL) != NULL);
    /* fresh memory is zero, as everywhere in regio */
    char *z = rg_malloc_zeroed(1, 3 << 20);
    CHECK(z != NULL && z >= lo && z < hi);
    for (size_t i = 0; i < (3u << 20); i += 4096)
        CHECK(z[i] == 0);
    rg_free(z);

    /* the limit still holds: allocate until refused, never above it */
    CHECK(tu_limit_holds(lo, hi) == 0);
    rg_region_free(r);
    rg_free(p);
}
static void test_memzone(void) { CU_ASSERT_EQUAL(run_child(body_memzone, true), 0); }

static void body_no_eal(void)
{
    errno = 0;
    CHECK(rg_dpdk_extmem_alloc(4096) == NULL && errno == ENODEV);
    CHECK(rg_dpdk_use_memzone_source((size_t)128 << 20) == -ENODEV);
    errno = 0;
    CHECK(rg_dpdk_pktmbuf_pool_create("x", 10, 0, 0, 2048, SOCKET_ID_ANY) == NULL && errno == ENODEV);
}
static void test_no_eal(void) { CU_ASSERT_EQUAL(run_child(body_no_eal, false), 0); }

static void body_probe(void) {}

#ifdef SLOW_EAL
static bool eal_skipped;
static void body_threads_and_caches(void)
{
    body_threads();
    body_caches();
}
static void test_threads_or_skip(void)
{
    int rc = run_child(body_threads_and_caches, true);
    if (rc == 77)
        eal_skipped = true;
    else
        CU_ASSERT_EQUAL(rc, 0);
}
#endif

int main(void)
{
#ifdef SLOW_EAL
    static const cu_test tests[] = {
        {"threads share the pool; per-thread caches", test_threads_or_skip},
        {"without EAL", test_no_eal},
        {NULL, NULL},
    };
    int rc = cu_run("dpdk", tests);
    if (rc == 0 && eal_skipped) {
        printf("dpdk: EAL cannot start here, skipping\n");
        return CU_SKIP_EXIT;
    }
    return rc;
#else
    if (run_child(body_probe, true) == 77) {
        printf("dpdk: EAL cannot start here, skipping\n");
        return CU_SKIP_EXIT;
    }
    static const cu_test tests[] = {
        {"rg_dpdk_ops_register", test_register},
        {"ops, DPDK cache off", test_ops_nocache},
        {"ops, DPDK cache 256", test_ops_cache},
        {"pktmbuf pool by ops", test_pktmbuf_by_ops},
        {"two threads share the ring", test_threads},
        {"per-thread caches: reclaim, exit, pool free", test_caches},
        {"extmem and mbuf pools in regio memory", test_extmem},
        {"memzone page source", test_memzone},
        {"without EAL", test_no_eal},
        {NULL, NULL},
    };
    return cu_run("dpdk", tests);
#endif
}
