/* tests/objpool.c — rg_objpool: the capacity bound, policies (fail, block
 * with timeout), drops, init/reset callbacks, bulk all-or-nothing, per-thread
 * caches (inspect, flush from another thread, give back at thread exit),
 * stats, bad input, debug diagnostics, and a 2-8 thread stress run in which
 * the bound must never be crossed. */
#include "cu.h"
#include "internal.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static rg_objpool *mk(size_t obj, size_t cap, size_t cache, int policy, int64_t to)
{
    rg_objpool_opts o = {.obj_size = obj, .capacity = cap, .cache_size = cache, .policy = policy,
                         .timeout_ns = to, .name = "test"};
    return rg_objpool_new(&o);
}

static void test_capacity_bound_fail(void)
{
    rg_objpool *p = mk(2048, 16, 4, RG_POOL_FAIL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    void *objs[16];
    for (int i = 0; i < 16; i++) {
        objs[i] = rg_objpool_get(p);
        CU_ASSERT_PTR_NOT_NULL_FATAL(objs[i]);
        memset(objs[i], i, 2048);
        for (int j = 0; j < i; j++)
            CU_ASSERT_PTR_NOT_EQUAL(objs[i], objs[j]);
    }
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_objpool_get(p));
    CU_ASSERT_EQUAL(errno, EAGAIN);
    rg_objpool_stats st;
    rg_objpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.live, 16);
    CU_ASSERT_EQUAL(st.creates, 16);
    CU_ASSERT_EQUAL(st.fails, 1);
    CU_ASSERT_EQUAL(rg_objpool_put(p, objs[3]), 0);
    void *again = rg_objpool_get(p);
    CU_ASSERT_PTR_EQUAL(again, objs[3]); /* LIFO through the cache */
    for (int i = 0; i < 16; i++)
        CU_ASSERT_EQUAL(rg_objpool_put(p, objs[i]), 0);
    rg_objpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.live, 16);
    CU_ASSERT_EQUAL(st.in_ring + st.in_caches, 16);
    CU_ASSERT_EQUAL(st.drops, 0);
    CU_ASSERT(st.hits >= 1);
    rg_objpool_free(p);
}

static atomic_int inits, resets;
static void on_init(void *o, void *arg) { (void)arg; atomic_fetch_add(&inits, 1); memset(o, 0x11, 64); }
static void on_reset(void *o, void *arg) { (void)arg; atomic_fetch_add(&resets, 1); ((char *)o)[0] = 0x22; }

static void test_callbacks_and_prefill(void)
{
    atomic_store(&inits, 0);
    atomic_store(&resets, 0);
    rg_objpool_opts o = {.obj_size = 64, .capacity = 10, .cache_size = 2, .init_fn = on_init,
                         .reset_fn = on_reset, .prefill = 6};
    rg_objpool *p = rg_objpool_new(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(atomic_load(&inits), 6);
    rg_objpool_stats st;
    rg_objpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.in_ring, 6);
    CU_ASSERT_EQUAL(st.live, 6);
    void *objs[10];
    for (int i = 0; i < 10; i++) {
        objs[i] = rg_objpool_get(p);
        CU_ASSERT_PTR_NOT_NULL_FATAL(objs[i]);
    }
    CU_ASSERT_EQUAL(atomic_load(&inits), 10); /* once per created object, never on reuse */
    for (int i = 0; i < 10; i++)
        rg_objpool_put(p, objs[i]);
    CU_ASSERT_EQUAL(atomic_load(&resets), 10);
    void *x = rg_objpool_get(p);
    CU_ASSERT_EQUAL(((unsigned char *)x)[0], 0x22); /* contents survive the pool */
    CU_ASSERT_EQUAL(((unsigned char *)x)[1], 0x11);
    rg_objpool_put(p, x);
    CU_ASSERT_EQUAL(atomic_load(&inits), 10);
    rg_objpool_free(p);
}

static void test_ring_full_drops(void)
{
    rg_objpool_opts o = {.obj_size = 128, .capacity = 8, .ring_size = 2};
    rg_objpool *p = rg_objpool_new(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    void *objs[8];
    for (int i = 0; i < 8; i++)
        CU_ASSERT_PTR_NOT_NULL_FATAL(objs[i] = rg_objpool_get(p));
    for (int i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(rg_objpool_put(p, objs[i]), 0);
    rg_objpool_stats st;
    rg_objpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.drops, 6);
    CU_ASSERT_EQUAL(st.live, 2);
    CU_ASSERT_EQUAL(st.in_ring, 2);
    /* dropped objects made room: all 8 can be had again (2 reused, 6 created) */
    for (int i = 0; i < 8; i++)
        CU_ASSERT_PTR_NOT_NULL_FATAL(objs[i] = rg_objpool_get(p));
    rg_objpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.creates, 14);
    CU_ASSERT_EQUAL(st.live, 8);
    CU_ASSERT_EQUAL(rg_objpool_put_bulk(p, objs, 8), 0);
    rg_objpool_free(p);
}

static void test_bulk_all_or_nothing(void)
{
    rg_objpool *p = mk(256, 10, 4, RG_POOL_FAIL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    void *a[10], *b[10];
    CU_ASSERT_EQUAL(rg_objpool_get_bulk(p, a, 0), 0);
    CU_ASSERT_EQUAL(rg_objpool_get_bulk(p, a, 8), 8);
    errno = 0;
    CU_ASSERT_EQUAL(rg_objpool_get_bulk(p, b, 4), 0); /* only 2 left: nothing taken */
    CU_ASSERT_EQUAL(errno, EAGAIN);
    rg_objpool_stats st;
    rg_objpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.live, 10); /* the 2 created for the attempt stay, idle */
    CU_ASSERT_EQUAL(st.in_ring + st.in_caches, 2);
    CU_ASSERT_EQUAL(rg_objpool_get_bulk(p, b, 2), 2);
    errno = 0;
    CU_ASSERT_EQUAL(rg_objpool_get_bulk(p, b + 2, 11), 0); /* more than capacity */
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_EQUAL(rg_objpool_put_bulk(p, a, 8), 0);
    CU_ASSERT_EQUAL(rg_objpool_put_bulk(p, b, 2), 0);
    CU_ASSERT_EQUAL(rg_objpool_get_bulk(p, a, 10), 10);
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < i; j++)
            CU_ASSERT_PTR_NOT_EQUAL(a[i], a[j]);
    CU_ASSERT_EQUAL(rg_objpool_put_bulk(p, a, 10), 0);
    rg_objpool_free(p);
}

static void test_bad_input(void)
{
    rg_objpool_opts o = {.obj_size = 0, .capacity = 4};
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_objpool_new(&o));
    CU_ASSERT_EQUAL(errno, EINVAL);
    o.obj_size = 8;
    o.capacity = 0;
    CU_ASSERT_PTR_NULL(rg_objpool_new(&o));
    o.capacity = 4;
    o.policy = 9;
    CU_ASSERT_PTR_NULL(rg_objpool_new(&o));
    o.policy = RG_POOL_FAIL;
    o.prefill = 5;
    CU_ASSERT_PTR_NULL(rg_objpool_new(&o));
    CU_ASSERT_PTR_NULL(rg_objpool_new(NULL));
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_objpool_get(NULL));
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_EQUAL(rg_objpool_put(NULL, &o), -EINVAL);
    CU_ASSERT_EQUAL(rg_objpool_get_bulk(NULL, NULL, 1), 0);
    CU_ASSERT_EQUAL(rg_objpool_put_bulk(NULL, NULL, 1), -EINVAL);
    CU_ASSERT_EQUAL(rg_objpool_flush(NULL), -EINVAL);
    CU_ASSERT_EQUAL(rg_objpool_caches(NULL, NULL, 0), -EINVAL);
    rg_objpool_free(NULL);
    rg_objpool *p = mk(8, 4, 0, RG_POOL_FAIL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(rg_objpool_put(p, NULL), -EINVAL);
    rg_objpool_free(p);
}

/* A thread that fills its cache and then sleeps until told to exit. */
typedef struct holder {
    rg_objpool *p;
    int n;
    atomic_int ready, go;
} holder;

static void *hold_in_cache(void *arg)
{
    holder *h = arg;
    void *objs[64];
    for (int i = 0; i < h->n; i++)
        objs[i] = rg_objpool_get(h->p);
    for (int i = 0; i < h->n; i++)
        rg_objpool_put(h->p, objs[i]);
    atomic_store(&h->ready, 1);
    while (!atomic_load(&h->go))
        usleep(1000);
    return NULL;
}

static void test_caches_inspect_flush_exit(void)
{
    rg_objpool *p = mk(512, 8, 8, RG_POOL_FAIL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    holder h = {.p = p, .n = 8};
    pthread_t t;
    pthread_create(&t, NULL, hold_in_cache, &h);
    while (!atomic_load(&h.ready))
        usleep(1000);
    /* all 8 objects idle in the other thread's cache: this thread starves */
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_objpool_get(p));
    CU_ASSERT_EQUAL(errno, EAGAIN);
    rg_objpool_cache_info info[4];
    int nc = rg_objpool_caches(p, info, 4);
    CU_ASSERT(nc >= 1);
    unsigned cached = 0;
    for (int i = 0; i < nc && i < 4; i++)
        cached += info[i].cached;
    CU_ASSERT_EQUAL(cached, 8);
    /* flush takes them without the owner's help */
    CU_ASSERT_EQUAL(rg_objpool_flush(p), 8);
    rg_objpool_stats st;
    rg_objpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.in_caches, 0);
    CU_ASSERT_EQUAL(st.in_ring, 8);
    void *x = rg_objpool_get(p);
    CU_ASSERT_PTR_NOT_NULL(x);
    rg_objpool_put(p, x);
    /* thread exit gives its cache back */
    holder h2 = {.p = p, .n = 6};
    atomic_store(&h.go, 1);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, hold_in_cache, &h2);
    while (!atomic_load(&h2.ready))
        usleep(1000);
    rg_objpool_read_stats(p, &st);
    CU_ASSERT(st.in_caches >= 6);
    uint64_t threads_before = st.threads;
    atomic_store(&h2.go, 1);
    pthread_join(t, NULL);
    rg_objpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.threads, threads_before - 1);
    CU_ASSERT_EQUAL(st.in_ring + st.in_caches, 8);
    CU_ASSERT_EQUAL(st.live, 8);
    CU_ASSERT_EQUAL(st.gets, st.puts);
    rg_objpool_free(p);
}

/* The inline fast paths (regio/pool.h) count in the thread's cache: the
 * pool's stats must stay exact, single and bulk. */
static void test_inline_stats_exact(void)
{
    rg_objpool *p = mk(64, 256, 64, RG_POOL_FAIL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    void *objs[32];
    for (int i = 0; i < 1000; i++) {
        void *o = rg_objpool_get(p);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        CU_ASSERT_EQUAL(rg_objpool_put(p, o), 0);
    }
    for (int i = 0; i < 100; i++) {
        CU_ASSERT_EQUAL_FATAL(rg_objpool_get_bulk(p, objs, 32), 32);
        for (int j = 0; j < 32; j++)
            for (int k = 0; k < j; k++)
                CU_ASSERT_PTR_NOT_EQUAL(objs[j], objs[k]);
        CU_ASSERT_EQUAL(rg_objpool_put_bulk(p, objs, 32), 0);
    }
    rg_objpool_stats st;
    rg_objpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.gets, 1000 + 100 * 32);
    CU_ASSERT_EQUAL(st.puts, 1000 + 100 * 32);
    CU_ASSERT(st.creates <= 64);
    CU_ASSERT_EQUAL(st.live, st.creates);
    CU_ASSERT_EQUAL(st.in_ring + st.in_caches, st.live);
    rg_objpool_cache_info ci[2];
    CU_ASSERT_EQUAL(rg_objpool_caches(p, ci, 2), 1);
#if !RG_DEBUG_CHECKS
    /* almost every call took the inline path, which counts in the cache */
    CU_ASSERT(ci[0].gets >= 1000);
    CU_ASSERT(ci[0].puts >= 1000);
#endif
    rg_objpool_free(p);
}

/* The inline paths count puts in the cache's length word and gets by the
 * length they take (regio/pool.h); the library folds them.  Stats must be
 * exact after a mix of single and bulk calls of odd sizes on several
 * threads while another thread flushes their caches, and when a count
 * reaches its limit and the fast path declines. */
typedef struct mix_worker {
    rg_objpool *p;
    unsigned seed;
    uint64_t gets, puts, bad;
} mix_worker;

static void *mix_run(void *arg)
{
    mix_worker *w = arg;
    void *objs[40];
    unsigned r = w->seed;
    for (int i = 0; i < 30000; i++) {
        r = r * 1103515245u + 12345u;
        unsigned n = 1 + (r >> 16) % 40;
        if ((r >> 8) & 1) {
            for (unsigned j = 0; j < n; j++) {
                objs[j] = rg_objpool_get(w->p);
                w->bad += objs[j] == NULL;
            }
            for (unsigned j = 0; j < n; j++)
                if (objs[j] != NULL && rg_objpool_put(w->p, objs[j]) == 0)
                    w->puts++;
            w->gets += n;
        } else if (rg_objpool_get_bulk(w->p, objs, n) == n) {
            w->gets += n;
            if (rg_objpool_put_bulk(w->p, objs, n) == 0)
                w->puts += n;
        } else {
            w->bad++;
        }
    }
    return NULL;
}

static void test_inline_counts_fold_exactly(void)
{
    enum { T = 3 };
    /* room for every thread's 40 out at once: no get may fail */
    rg_objpool *p = mk(64, 512, 64, RG_POOL_FAIL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    mix_worker w[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        w[i] = (mix_worker){.p = p, .seed = 11u + (unsigned)i};
        pthread_create(&t[i], NULL, mix_run, &w[i]);
    }
    for (int i = 0; i < 50; i++) {
        CU_ASSERT(rg_objpool_flush(p) >= 0);
        usleep(100);
    }
    uint64_t gets = 0, puts = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(w[i].bad, 0);
        gets += w[i].gets, puts += w[i].puts;
    }
    rg_objpool_stats st;
    rg_objpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.gets, gets);
    CU_ASSERT_EQUAL(st.puts, puts);
    CU_ASSERT_EQUAL(st.gets, st.puts);
    CU_ASSERT_EQUAL(st.in_ring + st.in_caches, st.live);

    /* This thread: an odd state (objects out), read exactly. */
    void *objs[32];
    CU_ASSERT_EQUAL_FATAL(rg_objpool_get_bulk(p, objs, 5), 5);
    void *one = rg_objpool_get(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(one);
    rg_objpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.gets, gets + 6);
    CU_ASSERT_EQUAL(st.puts, puts);
    CU_ASSERT_EQUAL(rg_objpool_put(p, one), 0);
    CU_ASSERT_EQUAL(rg_objpool_put_bulk(p, objs, 5), 0);
    gets += 6, puts += 6;

#if !RG_DEBUG_CHECKS
    /* A count at its limit: make this thread's put count 2^47 - 8 below
     * bit 63 (taking as much from the folded counts: gets follow puts), so
     * a few more inline puts reach it, decline, and the slow path folds. */
    rg_pool_tc *tc = rg_pool_tls[((rg_pool_head *)(void *)p)->id];
    CU_ASSERT_PTR_EQUAL_FATAL(tc->pool, p);
    uint64_t k = ((uint64_t)1 << 47) - 8 - (tc->lenw >> RG_POOL_LEN_BITS);
    tc->lenw += k << RG_POOL_LEN_BITS;
    tc->puts -= k;
    tc->gets -= k;
    rg_objpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.gets, gets);
    CU_ASSERT_EQUAL(st.puts, puts);
    for (int i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL_FATAL(rg_objpool_get_bulk(p, objs, 3), 3);
        CU_ASSERT_EQUAL(rg_objpool_put_bulk(p, objs, 3), 0);
    }
    CU_ASSERT((tc->lenw >> RG_POOL_LEN_BITS) < 64); /* folded on the way */
    rg_objpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.gets, gets + 30);
    CU_ASSERT_EQUAL(st.puts, puts + 30);
#endif
    rg_objpool_free(p);
}

/* Another thread flushes this pool's caches while their owner keeps going
 * on the inline paths: nothing is lost or handed out twice, the stats add up. */
typedef struct churner {
    rg_objpool *p;
    atomic_int stop;
    uint64_t ops, bad; /* the churner's own; read after the join */
} churner;

static void *churn(void *arg)
{
    churner *c = arg;
    void *objs[8];
    while (!atomic_load(&c->stop)) {
        void *o = rg_objpool_get(c->p);
        if (o) {
            *(volatile uint64_t *)o = (uintptr_t)o; /* ours alone while out */
            c->bad += *(volatile uint64_t *)o != (uintptr_t)o;
            rg_objpool_put(c->p, o);
            c->ops += 2;
        }
        if (rg_objpool_get_bulk(c->p, objs, 8) == 8) {
            rg_objpool_put_bulk(c->p, objs, 8);
            c->ops += 16;
        }
    }
    return NULL;
}

static void test_flush_while_owner_runs(void)
{
    rg_objpool *p = mk(64, 64, 32, RG_POOL_FAIL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    churner c = {.p = p};
    pthread_t t;
    pthread_create(&t, NULL, churn, &c);
    unsigned moved = 0;
    for (int i = 0; i < 200; i++) {
        int k = rg_objpool_flush(p);
        CU_ASSERT(k >= 0);
        moved += (unsigned)k;
        rg_objpool_stats st;
        rg_objpool_read_stats(p, &st);
        CU_ASSERT(st.live <= 64);
        usleep(200);
    }
    atomic_store(&c.stop, 1);
    pthread_join(t, NULL); /* the exit gives the cache back */
    rg_objpool_stats st;
    rg_objpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(c.bad, 0);
    CU_ASSERT_EQUAL(st.gets + st.puts, c.ops);
    CU_ASSERT_EQUAL(st.gets, st.puts);
    CU_ASSERT_EQUAL(st.in_caches, 0);
    CU_ASSERT_EQUAL(st.in_ring, st.live);
    CU_ASSERT(st.live <= 64);
    (void)moved;
    rg_objpool_free(p);
}

/* More pools alive than the inline fast paths have slots: the last ones
 * work on their rings, correctly. */
static void test_more_pools_than_slots(void)
{
    enum { NP = RG_POOL_FAST_IDS + 40 };
    rg_objpool **ps = malloc(NP * sizeof *ps);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ps);
    int made = 0;
    for (; made < NP; made++) {
        ps[made] = mk(32, 4, 2, RG_POOL_FAIL, 0);
        if (ps[made] == NULL)
            break;
    }
    CU_ASSERT_EQUAL(made, NP);
    for (int i = 0; i < made; i++) {
        void *a = rg_objpool_get(ps[i]), *b = rg_objpool_get(ps[i]);
        CU_ASSERT_PTR_NOT_NULL(a);
        CU_ASSERT_PTR_NOT_NULL(b);
        CU_ASSERT_PTR_NOT_EQUAL(a, b);
        rg_objpool_put(ps[i], a);
        rg_objpool_put(ps[i], b);
        rg_objpool_stats st;
        rg_objpool_read_stats(ps[i], &st);
        CU_ASSERT_EQUAL(st.gets, 2);
        CU_ASSERT_EQUAL(st.puts, 2);
        CU_ASSERT_EQUAL(st.in_ring + st.in_caches, st.live);
    }
    for (int i = 0; i < made; i++)
        rg_objpool_free(ps[i]);
    free(ps);
}

static void *put_later(void *arg)
{
    void **a = arg;
    usleep(20000);
    rg_objpool_put(a[0], a[1]);
    return NULL;
}

static void test_block_policy(void)
{
    rg_objpool *p = mk(64, 2, 2, RG_POOL_BLOCK, 15 * 1000000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    void *a = rg_objpool_get(p), *b = rg_objpool_get(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    uint64_t t0 = rgi_now_ns();
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_objpool_get(p));
    CU_ASSERT_EQUAL(errno, ETIMEDOUT);
    CU_ASSERT(rgi_now_ns() - t0 >= 15 * 1000000u);
    rg_objpool_free(p);

    p = mk(64, 2, 2, RG_POOL_BLOCK, -1); /* forever: a put from another thread wakes us */
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    a = rg_objpool_get(p);
    b = rg_objpool_get(p);
    void *arg[2] = {p, b};
    pthread_t t;
    pthread_create(&t, NULL, put_later, arg);
    void *c = rg_objpool_get(p);
    CU_ASSERT_PTR_EQUAL(c, b);
    pthread_join(t, NULL);
    rg_objpool_stats st;
    rg_objpool_read_stats(p, &st);
    CU_ASSERT(st.waits >= 1);
    rg_objpool_put(p, a);
    rg_objpool_put(p, c);

    /* objects idle in another thread's cache reach a blocked getter */
    holder h = {.p = p, .n = 2};
    pthread_create(&t, NULL, hold_in_cache, &h);
    while (!atomic_load(&h.ready))
        usleep(1000);
    rg_objpool_flush(p); /* ... */
    rg_objpool_read_stats(p, &st);
    void *objs[2];
    CU_ASSERT_EQUAL(rg_objpool_get_bulk(p, objs, 2), 2);
    CU_ASSERT_EQUAL(rg_objpool_put_bulk(p, objs, 2), 0);
    atomic_store(&h.go, 1);
    pthread_join(t, NULL);
    rg_objpool_free(p);
}

static void test_block_steals_idle_cache(void)
{
    rg_objpool *p = mk(64, 3, 4, RG_POOL_BLOCK, 2000 * 1000000LL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    holder h = {.p = p, .n = 3};
    pthread_t t;
    pthread_create(&t, NULL, hold_in_cache, &h);
    while (!atomic_load(&h.ready))
        usleep(1000);
    /* no explicit flush: the waiter takes the idle thread's cache itself */
    void *objs[3];
    CU_ASSERT_EQUAL(rg_objpool_get_bulk(p, objs, 3), 3);
    rg_objpool_put_bulk(p, objs, 3);
    atomic_store(&h.go, 1);
    pthread_join(t, NULL);
    rg_objpool_free(p);
}

/* Stress: threads get (single and bulk) and put, checking exclusive
 * ownership by stamping each object; a monitor checks live <= capacity. */
enum { STRESS_CAP = 48 };
typedef struct stress {
    rg_objpool *p;
    atomic_int stop;
    atomic_uint_fast64_t violations, max_live, ops, fails;
} stress;

static void *stress_monitor(void *arg)
{
    stress *s = arg;
    while (!atomic_load(&s->stop)) {
        rg_objpool_stats st;
        rg_objpool_read_stats(s->p, &st);
        if (st.live > atomic_load(&s->max_live))
            atomic_store(&s->max_live, st.live);
        usleep(100);
    }
    return NULL;
}

static void *stress_worker(void *arg)
{
    stress *s = ((void **)arg)[0];
    uint64_t me = (uint64_t)(uintptr_t)((void **)arg)[1], seed = me * 0x9e3779b97f4a7c15ull + 1;
    void *held[16];
    unsigned nheld = 0;
    uint64_t ops = 0, bad = 0, fails = 0;
    for (int it = 0; it < 20000; it++) {
        seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
        unsigned r = (unsigned)(seed >> 40) % 10;
        if (r < 4 && nheld < 16) {
            void *o = rg_objpool_get(s->p);
            if (o) {
                *(uint64_t *)o = me;
                held[nheld++] = o;
            } else {
                fails++;
            }
        } else if (r < 6 && nheld + 4 <= 16) {
            if (rg_objpool_get_bulk(s->p, held + nheld, 4) == 4) {
                for (int k = 0; k < 4; k++)
                    *(uint64_t *)held[nheld + k] = me;
                nheld += 4;
            } else {
                fails++;
            }
        } else if (nheld) {
            unsigned k = r == 9 && nheld >= 3 ? 3 : 1;
            for (unsigned i = 0; i < k; i++)
                bad += *(uint64_t *)held[nheld - 1 - i] != me; /* nobody else had it */
            if (k == 1)
                rg_objpool_put(s->p, held[nheld - 1]);
            else
                rg_objpool_put_bulk(s->p, held + nheld - k, k);
            nheld -= k;
        }
        ops++;
    }
    rg_objpool_put_bulk(s->p, held, nheld);
    atomic_fetch_add(&s->violations, bad);
    atomic_fetch_add(&s->ops, ops);
    atomic_fetch_add(&s->fails, fails);
    return NULL;
}

static void run_stress(int threads, int policy)
{
    stress s = {0};
    s.p = mk(64, STRESS_CAP, 8, policy, 5 * 1000000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.p);
    pthread_t mon, t[8];
    void *args[8][2];
    pthread_create(&mon, NULL, stress_monitor, &s);
    for (int i = 0; i < threads; i++) {
        args[i][0] = &s;
        args[i][1] = (void *)(uintptr_t)(i + 1);
        pthread_create(&t[i], NULL, stress_worker, args[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    atomic_store(&s.stop, 1);
    pthread_join(mon, NULL);
    rg_objpool_stats st;
    rg_objpool_read_stats(s.p, &st);
    CU_ASSERT_EQUAL(atomic_load(&s.violations), 0);
    CU_ASSERT(atomic_load(&s.max_live) <= STRESS_CAP);
    CU_ASSERT(st.live <= STRESS_CAP);
    CU_ASSERT_EQUAL(st.in_ring + st.in_caches, st.live); /* everything came back */
    rg_objpool_free(s.p);
}

static void test_stress_2(void) { run_stress(2, RG_POOL_FAIL); }
static void test_stress_4_block(void) { run_stress(4, RG_POOL_BLOCK); }
static void test_stress_8(void) { run_stress(8, RG_POOL_FAIL); }

#if RG_DEBUG_CHECKS
/* Runs fn in a child with stderr captured; returns what it printed. */
static void capture(void (*fn)(void), char *out, size_t n, int *status)
{
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(fds[0], out + got, n - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = '\0';
    close(fds[0]);
    waitpid(pid, status, 0);
}

static void misuse_double_put(void)
{
    rg_objpool_opts o = {.obj_size = 64, .capacity = 4, .cache_size = 2, .name = "conns"};
    rg_objpool *p = rg_objpool_new(&o);
    void *x = rg_objpool_get(p);
    rg_objpool_put(p, x);
    if (rg_objpool_put(p, x) != -EINVAL)
        _exit(3);
    void *y = rg_objpool_get(p), *z = rg_objpool_get(p);
    if (y == z)
        _exit(4); /* the double put must not have handed one object out twice */
}

static void misuse_foreign(void)
{
    rg_objpool_opts o = {.obj_size = 64, .capacity = 4, .name = "conns"};
    rg_objpool *p = rg_objpool_new(&o);
    void *f = rg_malloc(64);
    if (rg_objpool_put(p, f) != -EINVAL)
        _exit(3);
    int on_stack;
    if (rg_objpool_put(p, &on_stack) != -EINVAL)
        _exit(3);
}

static void misuse_use_after_put(void)
{
    rg_objpool_opts o = {.obj_size = 64, .capacity = 1, .name = "conns"};
    rg_objpool *p = rg_objpool_new(&o);
    char *x = rg_objpool_get(p);
    rg_objpool_put(p, x);
    x[10] = 'u'; /* ASan: faults here; otherwise the next get reports it */
    (void)rg_objpool_get(p);
}

static void test_debug_diagnostics(void)
{
    char buf[4096];
    int status;
    capture(misuse_double_put, buf, sizeof buf, &status);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "rg_objpool_put"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"conns\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "double put of object 0x"));
    capture(misuse_foreign, buf, sizeof buf, &status);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "foreign pointer"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"conns\""));
    capture(misuse_use_after_put, buf, sizeof buf, &status);
    if (RGI_ASAN) {
        CU_ASSERT(strstr(buf, "use-after-poison") != NULL);
    } else {
        CU_ASSERT(strstr(buf, "use after put") != NULL && strstr(buf, "\"conns\"") != NULL);
    }
}
#endif

int main(void)
{
    static const cu_test tests[] = {
        {"capacity is a hard bound (RG_POOL_FAIL)", test_capacity_bound_fail},
        {"init once per object, reset on put, prefill", test_callbacks_and_prefill},
        {"a full ring drops, making room to create", test_ring_full_drops},
        {"bulk get is all or nothing", test_bulk_all_or_nothing},
        {"bad input is refused", test_bad_input},
        {"caches: inspect, flush from another thread, exit", test_caches_inspect_flush_exit},
        {"inline fast paths: stats stay exact", test_inline_stats_exact},
        {"inline counts fold exactly across threads, flushes and limits", test_inline_counts_fold_exactly},
        {"flush while the owner runs its inline paths", test_flush_while_owner_runs},
        {"more pools than fast-path slots", test_more_pools_than_slots},
        {"RG_POOL_BLOCK: timeout and wakeup", test_block_policy},
        {"a blocked get takes an idle thread's cache", test_block_steals_idle_cache},
        {"stress 2 threads", test_stress_2},
        {"stress 4 threads, blocking policy", test_stress_4_block},
        {"stress 8 threads", test_stress_8},
#if RG_DEBUG_CHECKS
        {"debug: double put, foreign pointer, use after put", test_debug_diagnostics},
#endif
        {NULL, NULL},
    };
    return cu_run("objpool", tests);
}
