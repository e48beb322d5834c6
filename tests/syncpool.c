/* tests/syncpool.c — rg_syncpool (Go's sync.Pool): private slot, thread
 * cache, shared list, victim and epochs, new_fn/free_fn, objects idle in
 * other threads' caches, thread exit, a 2-8 thread stress run, debug
 * diagnostics, and both pool kinds letting go under limit pressure. */
#include "cu.h"
#include "../pool/pool_internal.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

static rg_syncpool *mk(size_t obj)
{
    rg_syncpool_opts o = {.obj_size = obj, .name = "bufs"};
    return rg_syncpool_new(&o);
}

static void test_private_then_new(void)
{
    rg_syncpool *p = mk(100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    void *a = rg_syncpool_get(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    memset(a, 1, 100);
    rg_syncpool_put(p, a);
    CU_ASSERT_PTR_EQUAL(rg_syncpool_get(p), a); /* the private slot */
    void *b = rg_syncpool_get(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_EQUAL(a, b);
    rg_syncpool_put(p, a);
    rg_syncpool_put(p, b);
    rg_syncpool_stats st;
    rg_syncpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.news, 2);
    CU_ASSERT_EQUAL(st.gets, 3);
    CU_ASSERT_EQUAL(st.puts, 3);
    CU_ASSERT(st.hits_local >= 1);
    rg_syncpool_put(p, NULL); /* harmless */
    rg_syncpool_free(p);
}

static atomic_int made, freed;
static void *my_new(void *arg)
{
    (void)arg;
    atomic_fetch_add(&made, 1);
    return rg_malloc(48);
}
static void my_free(void *o, void *arg)
{
    CU_ASSERT_PTR_EQUAL(arg, (void *)&made);
    atomic_fetch_add(&freed, 1);
    rg_free(o);
}

/* The inline private-slot paths (regio/pool.h) count in the thread's cache:
 * stats stay exact, and an epoch run by another thread still takes the
 * object parked in this thread's private slot. */
static void *epoch_thread(void *arg)
{
    (void)arg;
    rgi_pool_epoch();
    return NULL;
}

static void test_inline_stats_and_epoch(void)
{
    rg_syncpool *p = mk(64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    for (int i = 0; i < 1000; i++) {
        void *o = rg_syncpool_get(p);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        rg_syncpool_put(p, o);
    }
    rg_syncpool_stats st;
    rg_syncpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.gets, 1000);
    CU_ASSERT_EQUAL(st.puts, 1000);
    CU_ASSERT_EQUAL(st.news, 1);
    CU_ASSERT_EQUAL(st.hits_local + st.hits_shared + st.hits_victim + st.news, st.gets);
    CU_ASSERT(st.cached <= 1); /* a cache publishes at its slow paths and epochs */
    /* two epochs from another thread: the private slot's object goes to
     * the victim, then is freed */
    pthread_t t;
    pthread_create(&t, NULL, epoch_thread, NULL);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, epoch_thread, NULL);
    pthread_join(t, NULL);
    rg_syncpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.cached, 0);
    CU_ASSERT_EQUAL(st.frees, 1);
    void *o = rg_syncpool_get(p); /* nothing idle: a new one */
    CU_ASSERT_PTR_NOT_NULL(o);
    rg_syncpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.news, 2);
    rg_syncpool_put(p, o);
    rg_syncpool_free(p);
}

/* The inline paths count in the private slot's word and the library folds
 * those counts (regio/pool.h): stats must be exact after any mix of inline
 * and slow calls, on several threads, while epochs take the slots, read at
 * a point where a thread holds an object (an odd count), and when a count
 * reaches its limit and the fast path declines. */
typedef struct fold_worker {
    rg_syncpool *p;
    unsigned seed;
    pthread_barrier_t *bar; /* met once mid-way, holding an object */
    uint64_t gets, puts, nulls;
} fold_worker;

static void *fold_run(void *arg)
{
    fold_worker *w = arg;
    void *held[4];
    unsigned r = w->seed;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 40000; i++) {
            r = r * 1103515245u + 12345u;
            unsigned k = 1 + (r >> 16) % 4; /* 1-4 out at once: slot, cache */
            for (unsigned j = 0; j < k; j++) {
                held[j] = rg_syncpool_get(w->p);
                w->gets++;
                w->nulls += held[j] == NULL;
            }
            for (unsigned j = k; j-- > 0;) {
                rg_syncpool_put(w->p, held[j]);
                w->puts += held[j] != NULL;
            }
        }
        if (round == 0) {
            /* hold one object (the slot's count is odd here) while the
             * main thread reads the stats */
            held[0] = rg_syncpool_get(w->p);
            w->gets++;
            pthread_barrier_wait(w->bar);
            pthread_barrier_wait(w->bar);
            rg_syncpool_put(w->p, held[0]);
            w->puts++;
        }
    }
    return NULL;
}

static void test_inline_counts_fold_exactly(void)
{
    enum { T = 3 };
    rg_syncpool *p = mk(64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, T + 1);
    fold_worker w[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        w[i] = (fold_worker){.p = p, .seed = 7u + (unsigned)i, .bar = &bar};
        pthread_create(&t[i], NULL, fold_run, &w[i]);
    }
    for (int i = 0; i < 20; i++) /* epochs while the owners run */
        rgi_pool_epoch();
    pthread_barrier_wait(&bar); /* every worker holds one object now */
    rg_syncpool_stats st;
    rg_syncpool_read_stats(p, &st);
    uint64_t gets = 0, puts = 0;
    for (int i = 0; i < T; i++)
        gets += w[i].gets, puts += w[i].puts;
    CU_ASSERT_EQUAL(st.gets, gets);
    CU_ASSERT_EQUAL(st.puts, puts);
    CU_ASSERT_EQUAL(st.gets, st.puts + T);
    pthread_barrier_wait(&bar);
    for (int i = 0; i < 20; i++)
        rgi_pool_epoch();
    gets = puts = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(t[i], NULL);
        gets += w[i].gets, puts += w[i].puts;
        CU_ASSERT_EQUAL(w[i].nulls, 0);
    }
    rg_syncpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.gets, gets);
    CU_ASSERT_EQUAL(st.puts, puts);
    CU_ASSERT_EQUAL(st.hits_local + st.hits_shared + st.hits_victim + st.news, st.gets);
    CU_ASSERT(gets >= T * 2 * 40000);
    pthread_barrier_destroy(&bar);

#if !RG_DEBUG_CHECKS
    /* A count at its limit: make this thread's slot count 2^16 - 4 (taking
     * as much from the folded counts, so the totals do not move); the next
     * inline calls decline and the slow path folds; stats stay exact. */
    void *o = rg_syncpool_get(p);
    rg_syncpool_put(p, o);
    rg_pool_tc *tc = rg_pool_tls[((rg_pool_head *)(void *)p)->id];
    CU_ASSERT_PTR_EQUAL_FATAL(tc->pool, p);
    rg_syncpool_read_stats(p, &st);
    uint64_t g0 = st.gets, p0 = st.puts;
    uintptr_t k = ((uintptr_t)1 << 16) - 4;
    tc->priv += k << RG_POOL_PRIV_BITS;
    tc->gets -= k / 2;
    tc->puts -= k / 2;
    rg_syncpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.gets, g0);
    CU_ASSERT_EQUAL(st.puts, p0);
    for (int i = 0; i < 10; i++) {
        o = rg_syncpool_get(p);
        rg_syncpool_put(p, o);
    }
    CU_ASSERT((tc->priv >> RG_POOL_PRIV_BITS) < 32); /* folded on the way */
    rg_syncpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.gets, g0 + 10);
    CU_ASSERT_EQUAL(st.puts, p0 + 10);
#endif
    rg_syncpool_free(p);
}

static void test_new_and_free_fn(void)
{
    atomic_store(&made, 0);
    atomic_store(&freed, 0);
    rg_syncpool_opts o = {.new_fn = my_new, .free_fn = my_free, .arg = &made};
    rg_syncpool *p = rg_syncpool_new(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    void *objs[40];
    for (int i = 0; i < 40; i++)
        objs[i] = rg_syncpool_get(p);
    CU_ASSERT_EQUAL(atomic_load(&made), 40);
    for (int i = 0; i < 40; i++)
        rg_syncpool_put(p, objs[i]);
    rg_syncpool_free(p); /* every idle object through free_fn */
    CU_ASSERT_EQUAL(atomic_load(&freed), 40);
}

static void test_bad_input(void)
{
    rg_syncpool_opts o = {0};
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_syncpool_new(&o)); /* neither obj_size nor new_fn */
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_PTR_NULL(rg_syncpool_new(NULL));
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_syncpool_get(NULL));
    CU_ASSERT_EQUAL(errno, EINVAL);
    rg_syncpool_put(NULL, &o);
    rg_syncpool_free(NULL);
}

typedef struct xfer {
    rg_syncpool *p;
    void *objs[64];
    int n;
    atomic_int ready, go;
} xfer;

static void *put_and_idle(void *arg)
{
    xfer *x = arg;
    for (int i = 0; i < x->n; i++)
        rg_syncpool_put(x->p, x->objs[i]);
    atomic_store(&x->ready, 1);
    while (!atomic_load(&x->go))
        usleep(1000);
    return NULL;
}

static void test_shared_across_threads(void)
{
    rg_syncpool *p = mk(64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    xfer x = {.p = p, .n = 60};
    for (int i = 0; i < x.n; i++)
        x.objs[i] = rg_syncpool_get(p);
    pthread_t t;
    pthread_create(&t, NULL, put_and_idle, &x);
    while (!atomic_load(&x.ready))
        usleep(1000);
    /* most of the 60 overflowed that thread's cache into the shared list */
    rg_syncpool_stats st0, st;
    rg_syncpool_read_stats(p, &st0);
    int reused = 0;
    void *got[60];
    for (int i = 0; i < 60; i++) {
        got[i] = rg_syncpool_get(p);
        for (int j = 0; j < x.n; j++)
            if (got[i] == x.objs[j]) {
                reused++;
                break;
            }
    }
    CU_ASSERT(reused >= 60 - 17); /* at most private + cache stay with the idle thread */
    rg_syncpool_read_stats(p, &st);
    CU_ASSERT(st.hits_shared > st0.hits_shared);
    for (int i = 0; i < 60; i++)
        rg_syncpool_put(p, got[i]);
    atomic_store(&x.go, 1);
    pthread_join(t, NULL);
    rg_syncpool_free(p);
}

static void test_epochs_victim_then_free(void)
{
    rg_syncpool *p = mk(256);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    void *objs[30];
    for (int i = 0; i < 30; i++)
        objs[i] = rg_syncpool_get(p);
    for (int i = 0; i < 30; i++)
        rg_syncpool_put(p, objs[i]);
    rg_syncpool_stats st;
    rgi_pool_epoch(); /* primary (and caches) -> victim */
    rg_syncpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.cached, 30);
    CU_ASSERT_EQUAL(st.frees, 0);
    rg_memstats ms;
    rg_read_memstats(&ms);
    CU_ASSERT(ms.pool_cached >= 30 * 256);
    /* the victim still serves gets */
    void *v = rg_syncpool_get(p);
    int known = 0;
    for (int i = 0; i < 30; i++)
        known += v == objs[i];
    CU_ASSERT_EQUAL(known, 1);
    rg_syncpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.hits_victim, 1);
    rg_syncpool_put(p, v);
    uint64_t before = ms.pool_cached;
    rgi_pool_epoch(); /* old victim (29) freed; v moves to the victim */
    rgi_pool_epoch(); /* and now v too */
    rg_syncpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.frees, 30);
    CU_ASSERT_EQUAL(st.cached, 0);
    CU_ASSERT(st.epochs >= 3);
    rg_read_memstats(&ms);
    CU_ASSERT(ms.pool_cached + 30 * 256 <= before);
    rg_syncpool_free(p);
}

static void test_epoch_reaches_idle_thread(void)
{
    rg_syncpool *p = mk(128);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    xfer x = {.p = p, .n = 10}; /* fits in that thread's private slot + cache */
    for (int i = 0; i < x.n; i++)
        x.objs[i] = rg_syncpool_get(p);
    pthread_t t;
    pthread_create(&t, NULL, put_and_idle, &x);
    while (!atomic_load(&x.ready))
        usleep(1000);
    rgi_pool_epoch();
    rgi_pool_epoch();
    rg_syncpool_stats st;
    rg_syncpool_read_stats(p, &st);
    CU_ASSERT_EQUAL(st.frees, 10); /* taken from the idle thread's cache, then freed */
    atomic_store(&x.go, 1);
    pthread_join(t, NULL);
    rg_syncpool_free(p);
}

static void *put_and_exit(void *arg)
{
    xfer *x = arg;
    for (int i = 0; i < x->n; i++)
        rg_syncpool_put(x->p, x->objs[i]);
    return NULL;
}

static void test_thread_exit_gives_back(void)
{
    rg_syncpool *p = mk(128);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    xfer x = {.p = p, .n = 5};
    for (int i = 0; i < x.n; i++)
        x.objs[i] = rg_syncpool_get(p);
    pthread_t t;
    pthread_create(&t, NULL, put_and_exit, &x);
    pthread_join(t, NULL);
    int reused = 0;
    for (int i = 0; i < 5; i++) {
        void *o = rg_syncpool_get(p);
        for (int j = 0; j < 5; j++)
            reused += o == x.objs[j];
    }
    CU_ASSERT_EQUAL(reused, 5);
    rg_syncpool_free(p);
}

/* Stress: threads get, stamp, check and put; epochs run concurrently. */
typedef struct stress {
    rg_syncpool *p;
    atomic_int stop;
    atomic_uint_fast64_t violations;
} stress;

static void *stress_worker(void *arg)
{
    stress *s = ((void **)arg)[0];
    uint64_t me = (uint64_t)(uintptr_t)((void **)arg)[1], seed = me * 0x9e3779b97f4a7c15ull;
    void *held[8];
    int n = 0;
    uint64_t bad = 0;
    for (int it = 0; it < 30000; it++) {
        seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
        if ((seed >> 33) % 2 && n < 8) {
            void *o = rg_syncpool_get(s->p);
            if (o) {
                *(volatile uint64_t *)o = me;
                held[n++] = o;
            }
        } else if (n) {
            bad += *(volatile uint64_t *)held[n - 1] != me;
            rg_syncpool_put(s->p, held[--n]);
        }
    }
    while (n)
        rg_syncpool_put(s->p, held[--n]);
    atomic_fetch_add(&s->violations, bad);
    return NULL;
}

static void *stress_epochs(void *arg)
{
    stress *s = arg;
    while (!atomic_load(&s->stop)) {
        rgi_pool_epoch();
        usleep(500);
    }
    return NULL;
}

static void run_stress(int threads)
{
    stress s = {.p = mk(64)};
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.p);
    pthread_t t[8], ep;
    void *args[8][2];
    pthread_create(&ep, NULL, stress_epochs, &s);
    for (int i = 0; i < threads; i++) {
        args[i][0] = &s;
        args[i][1] = (void *)(uintptr_t)(i + 1);
        pthread_create(&t[i], NULL, stress_worker, args[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    atomic_store(&s.stop, 1);
    pthread_join(ep, NULL);
    CU_ASSERT_EQUAL(atomic_load(&s.violations), 0);
    rg_syncpool_stats st;
    rg_syncpool_read_stats(s.p, &st);
    CU_ASSERT_EQUAL(st.gets, st.puts);
    CU_ASSERT_EQUAL(st.news, st.frees + st.cached); /* nothing lost, nothing twice */
    rg_syncpool_free(s.p);
}

static void test_stress_2(void) { run_stress(2); }
static void test_stress_8(void) { run_stress(8); }

/* Under limit pressure the pools are drained before an allocation fails. */
static void test_pools_drain_under_pressure(void)
{
    enum { OBJ = 1100 << 10, N = 6 }; /* large objects: each its own segment run */
    rg_syncpool *sp = mk(OBJ);
    rg_objpool_opts oo = {.obj_size = OBJ, .capacity = N, .cache_size = 2, .name = "big"};
    rg_objpool *op = rg_objpool_new(&oo);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(op);
    void *s_objs[N], *o_objs[N];
    for (int i = 0; i < N; i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(s_objs[i] = rg_syncpool_get(sp));
        CU_ASSERT_PTR_NOT_NULL_FATAL(o_objs[i] = rg_objpool_get(op));
    }
    rg_release_memory();
    rg_memstats ms;
    rg_read_memstats(&ms);
    /* headroom of 3 MiB; the allocation wants 8 MiB */
    int64_t prev = rg_set_memory_limit((int64_t)ms.sys + (3 << 20));
    errno = 0;
    void *big = rg_malloc(8 << 20);
    CU_ASSERT_PTR_NULL(big); /* the objects are out: nothing can let go */
    CU_ASSERT_EQUAL(errno, ENOMEM);
    for (int i = 0; i < N; i++) {
        rg_syncpool_put(sp, s_objs[i]);
        rg_objpool_put(op, o_objs[i]);
    }
    rgi_pool_epoch(); /* publishes the per-thread caches exactly */
    rg_memstats before;
    rg_read_memstats(&before);
    CU_ASSERT(before.pool_cached >= (uint64_t)2 * N * OBJ);
    big = rg_malloc(8 << 20); /* same request: now the pools let go */
    CU_ASSERT_PTR_NOT_NULL(big);
    rg_memstats after;
    rg_read_memstats(&after);
    CU_ASSERT(after.pool_cached + (8u << 20) <= before.pool_cached);
    CU_ASSERT(after.sys <= (uint64_t)ms.sys + (3 << 20)); /* the limit held */
    rg_syncpool_stats sst;
    rg_syncpool_read_stats(sp, &sst);
    rg_objpool_stats ost;
    rg_objpool_read_stats(op, &ost);
    CU_ASSERT(sst.frees + ost.drops >= 8); /* 8 MiB came from the pools */
    rg_free(big);
    rg_set_memory_limit(prev);
    rg_syncpool_free(sp);
    rg_objpool_free(op);
}

#if RG_DEBUG_CHECKS
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
    rg_syncpool *p = mk(64);
    void *x = rg_syncpool_get(p);
    rg_syncpool_put(p, x);
    rg_syncpool_put(p, x);
    if (rg_syncpool_get(p) == rg_syncpool_get(p))
        _exit(4);
}

static void misuse_foreign(void)
{
    rg_syncpool *p = mk(64);
    static char not_regio[64];
    rg_syncpool_put(p, not_regio);
    rg_syncpool_put(p, rg_malloc(16)); /* regio memory, but smaller than obj_size */
}

static void misuse_use_after_put(void)
{
    rg_syncpool *p = mk(64);
    char *x = rg_syncpool_get(p);
    rg_syncpool_put(p, x);
    x[3] = 'u';
    (void)rg_syncpool_get(p);
}

static void test_debug_diagnostics(void)
{
    char buf[4096];
    int status;
    capture(misuse_double_put, buf, sizeof buf, &status);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "rg_syncpool_put: syncpool \"bufs\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "double put of object 0x"));
    capture(misuse_foreign, buf, sizeof buf, &status);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "foreign pointer"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "smaller than obj_size"));
    capture(misuse_use_after_put, buf, sizeof buf, &status);
    if (RGI_ASAN) {
        CU_ASSERT(strstr(buf, "use-after-poison") != NULL);
    } else {
        CU_ASSERT(strstr(buf, "use after put") != NULL && strstr(buf, "\"bufs\"") != NULL);
    }
}
#endif

/* Pools and channels show up in rg_read_memstats (and so in /debug/vars and
 * the dashboard). */
static void test_memstats_see_pools(void)
{
    rg_memstats a, b;
    rg_read_memstats(&a);
    rg_syncpool_opts o = {.obj_size = 64, .name = "memstats"};
    rg_syncpool *p = rg_syncpool_new(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    void *x = rg_syncpool_get(p); /* a miss: New makes it */
    rg_syncpool_put(p, x);
    for (int i = 0; i < 10; i++) /* hits */
        rg_syncpool_put(p, rg_syncpool_get(p));
    rg_chan *c = rg_chan_new(8, 4);
    rg_read_memstats(&b);
    CU_ASSERT(b.pool_misses >= a.pool_misses + 1);
    CU_ASSERT(b.pool_hits >= a.pool_hits + 10);
    CU_ASSERT_EQUAL(b.chans, a.chans + 1);
    rg_chan_free(c);
    rg_syncpool_free(p);
    rg_read_memstats(&b);
    CU_ASSERT_EQUAL(b.chans, a.chans);
}

int main(void)
{
    rgi_pool_epoch_ns = 3600ull * 1000000000u; /* epochs only when a test asks */
    static const cu_test tests[] = {
        {"private slot, then new", test_private_then_new},
        {"memstats count pool hits, misses and channels", test_memstats_see_pools},
        {"new_fn and free_fn", test_new_and_free_fn},
        {"inline paths: stats exact, epochs reach the private slot", test_inline_stats_and_epoch},
        {"inline counts fold exactly across threads, epochs and limits", test_inline_counts_fold_exactly},
        {"bad input is refused", test_bad_input},
        {"the shared list carries objects across threads", test_shared_across_threads},
        {"epochs: primary to victim, then freed", test_epochs_victim_then_free},
        {"an epoch reaches an idle thread's cache", test_epoch_reaches_idle_thread},
        {"thread exit gives the cache back", test_thread_exit_gives_back},
        {"stress 2 threads with epochs", test_stress_2},
        {"stress 8 threads with epochs", test_stress_8},
        {"pools drain under limit pressure", test_pools_drain_under_pressure},
#if RG_DEBUG_CHECKS
        {"debug: double put, foreign pointer, use after put", test_debug_diagnostics},
#endif
        {NULL, NULL},
    };
    return cu_run("syncpool", tests);
}
