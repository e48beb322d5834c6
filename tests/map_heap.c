/* tests/map_heap.c — maps on the collected heap: values reachable only
 * through a map survive many cycles (checksums), deleted and replaced values
 * are collected, the map itself is collected once unreachable, growth and
 * shrink while a collector thread marks concurrently (and under gcstress),
 * iteration across cycles, maps inside heap objects, several threads, and
 * bad values. */
#include "cu.h"
#include "gc_internal.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

bool rgi_map_is_valid(const rg_map *m);

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A value: an id, its checksum, and a child reached only through it (so
 * the test also checks that what a value reaches is traced). */
typedef struct val {
    uint64_t id, check;
    struct val *child;
} val;
static const size_t val_ptrs[] = {offsetof(val, child)};
static const rg_type val_t = {"test.val", sizeof(val), val_ptrs, 1, NULL};

static atomic_long fin_count;
static void val_fin(void *obj)
{
    (void)obj;
    atomic_fetch_add(&fin_count, 1);
}
static const rg_type fin_val_t = {"test.finval", sizeof(val), val_ptrs, 1, val_fin};

static val *mkval(const rg_type *t, uint64_t id)
{
    val *v = rg_new(t);
    val *c = v ? rg_new(&val_t) : NULL;
    if (c == NULL)
        return NULL;
    v->id = id;
    v->check = mix64(id);
    c->id = ~id;
    c->check = mix64(~id);
    rg_write(v, &v->child, c);
    return v;
}

static bool val_ok(const val *v, uint64_t id)
{
    return v && v->id == id && v->check == mix64(id) && v->child && v->child->id == ~id &&
           v->child->check == mix64(~id);
}

/* Key i: 1..40 bytes, the first 4 bytes (or fewer) from i, so short keys
 * (in the slot) and long ones (in the key log) both occur; distinct for
 * i < 2^24 at lengths >= 3, and the length itself depends on i. */
static size_t make_key(uint32_t i, uint8_t *buf)
{
    uint64_t r = mix64(i);
    size_t len = 4 + (size_t)(r % 37);
    memcpy(buf, &i, 4);
    for (size_t j = 4; j < len; j++) {
        r = mix64(r);
        buf[j] = (uint8_t)r;
    }
    return len;
}

static uint64_t heap_live_bytes(void)
{
    rgi_gc_stats st;
    rgi_gc_read_stats(&st);
    return st.live_bytes;
}

/* ------------------------------------------------------------------------ */

static void test_api_on_heap(void)
{
    rg_map *m = rg_map_new_heap(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    rg_root *root = rg_root_add(&m);
    CU_ASSERT_EQUAL(rg_map_len(m), 0);
    CU_ASSERT_PTR_NULL(rg_map_get(m, "a", 1));
    val *a = mkval(&val_t, 1), *b = mkval(&val_t, 2);
    CU_ASSERT_EQUAL(rg_map_put(m, "alpha", 5, a), 1);
    CU_ASSERT_EQUAL(rg_map_put(m, "alpha", 5, b), 0);
    CU_ASSERT_PTR_EQUAL(rg_map_get(m, "alpha", 5), b);
    CU_ASSERT_EQUAL(rg_map_put(m, "a key longer than eight bytes", 29, a), 1);
    CU_ASSERT_EQUAL(rg_map_put_u64(m, 77, a), 1);
    CU_ASSERT_PTR_EQUAL(rg_map_get_u64(m, 77), a);
    CU_ASSERT_EQUAL(rg_map_put(m, "nil", 3, NULL), 1); /* NULL is a valid value */
    void *out = &out;
    CU_ASSERT_EQUAL(rg_map_find(m, "nil", 3, &out), 1);
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_EQUAL(rg_map_find_u64(m, 77, &out), 1);
    CU_ASSERT_PTR_EQUAL(out, a);
    CU_ASSERT_EQUAL(rg_map_len(m), 4);
    CU_ASSERT(rg_map_mem(m) > 0);
    CU_ASSERT(rgi_map_is_valid(m));
    a = b = NULL;
    rg_gc();
    rg_gc();
    CU_ASSERT(val_ok(rg_map_get(m, "alpha", 5), 2));
    CU_ASSERT(val_ok(rg_map_get(m, "a key longer than eight bytes", 29), 1));
    CU_ASSERT(val_ok(rg_map_get_u64(m, 77), 1));
    CU_ASSERT_EQUAL(rg_map_del_u64(m, 77), 1);
    CU_ASSERT_EQUAL(rg_map_del(m, "alpha", 5), 1);
    CU_ASSERT_EQUAL(rg_map_del(m, "alpha", 5), 0);
    CU_ASSERT_EQUAL(rg_map_len(m), 2);
    /* iteration */
    rg_map_iter it;
    const void *k;
    size_t kl, n = 0;
    void *v;
    rg_map_iter_init(&it, m);
    while (rg_map_iter_next(&it, &k, &kl, &v)) {
        n++;
        bool ok = kl == 29 ? val_ok(v, 1) : kl == 3 && v == NULL;
        CU_ASSERT(ok);
    }
    CU_ASSERT_EQUAL(n, 2);
    rg_map_clear(m);
    CU_ASSERT_EQUAL(rg_map_len(m), 0);
    CU_ASSERT_EQUAL(rg_map_put(m, "again", 5, mkval(&val_t, 3)), 1);
    rg_gc();
    CU_ASSERT(val_ok(rg_map_get(m, "again", 5), 3));
    CU_ASSERT(rgi_map_is_valid(m));
    rg_map_free(m);
    CU_ASSERT_EQUAL(rg_map_len(m), 0); /* freed: every call is refused */
    CU_ASSERT_EQUAL(rg_map_put(m, "x", 1, NULL), -EINVAL);
    m = NULL;
    rg_root_remove(root);
    rg_gc();
}

/* Values reachable only through the map survive many cycles, with puts,
 * replacements and deletes between them; a reference array (not a root)
 * says which id each key should hold. */
static void test_values_survive_cycles(void)
{
    enum { N = 20000 };
    uint32_t *ref = calloc(N, sizeof *ref); /* generation + 1, 0 = absent */
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    rg_map *m = rg_map_new_heap(0);
    rg_root *root = rg_root_add(&m);
    uint8_t key[64];
    uint64_t rnd = 12345;
    for (int round = 0; round < 8; round++) {
        for (uint32_t j = 0; j < N; j++) {
            uint32_t i = (uint32_t)(mix64(rnd++) % N);
            size_t kl = make_key(i, key);
            uint64_t op = mix64(rnd++) % 4;
            if (op == 0 && ref[i]) {
                CU_ASSERT_EQUAL(rg_map_del(m, key, kl), 1);
                ref[i] = 0;
            } else {
                uint32_t gen = (uint32_t)round + 1;
                int rc = rg_map_put(m, key, kl, mkval(&val_t, ((uint64_t)i << 8) | gen));
                CU_ASSERT_EQUAL(rc, ref[i] ? 0 : 1);
                ref[i] = gen;
            }
            if (j % 512 == 0)
                rg_safepoint();
        }
        rg_gc();
        size_t live = 0, bad = 0;
        for (uint32_t i = 0; i < N; i++) {
            size_t kl = make_key(i, key);
            val *v = rg_map_get(m, key, kl);
            if (ref[i]) {
                live++;
                bad += !val_ok(v, ((uint64_t)i << 8) | ref[i]);
            } else {
                bad += v != NULL;
            }
        }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL(rg_map_len(m), live);
        CU_ASSERT(rgi_map_is_valid(m));
    }
    m = NULL;
    rg_root_remove(root);
    free(ref);
    rg_gc();
}

/* Deleted and replaced values are collected; the live ones are not. */
static void test_deleted_values_collected(void)
{
    rg_gc();
    rg_gc();
    atomic_store(&fin_count, 0);
    rg_map *m = rg_map_new_heap(0);
    rg_root *root = rg_root_add(&m);
    for (uint64_t i = 0; i < 3000; i++)
        CU_ASSERT_EQUAL(rg_map_put_u64(m, i, mkval(&fin_val_t, i)), 1);
    rg_gc();
    CU_ASSERT_EQUAL(atomic_load(&fin_count), 0);
    for (uint64_t i = 0; i < 1000; i++) /* delete 1000 */
        CU_ASSERT_EQUAL(rg_map_del_u64(m, i), 1);
    for (uint64_t i = 1000; i < 1500; i++) /* replace 500 with unfinalized values */
        CU_ASSERT_EQUAL(rg_map_put_u64(m, i, mkval(&val_t, i)), 0);
    rg_gc();
    rg_gc();
    CU_ASSERT_EQUAL(atomic_load(&fin_count), 1500);
    size_t bad = 0;
    for (uint64_t i = 1000; i < 3000; i++)
        bad += !val_ok(rg_map_get_u64(m, i), i);
    CU_ASSERT_EQUAL(bad, 0);
    /* clear drops every value; the shrunk map keeps nothing */
    rg_map_clear(m);
    rg_gc();
    rg_gc();
    CU_ASSERT_EQUAL(atomic_load(&fin_count), 3000);
    m = NULL;
    rg_root_remove(root);
}

/* The map is collected once unreachable: its values (finalizer counts) and
 * its tables (heap bytes) go. */
static void test_map_collected(void)
{
    rg_gc();
    rg_gc();
    atomic_store(&fin_count, 0);
    uint64_t before = heap_live_bytes();
    rg_map *m = rg_map_new_heap(0);
    rg_root *root = rg_root_add(&m);
    uint8_t key[64];
    for (uint32_t i = 0; i < 50000; i++) {
        size_t kl = make_key(i, key);
        CU_ASSERT_EQUAL(rg_map_put(m, key, kl, i % 10 == 0 ? mkval(&fin_val_t, i) : NULL), 1);
        if (i % 1024 == 0)
            rg_safepoint();
    }
    size_t mem = rg_map_mem(m);
    CU_ASSERT(mem > 50000 * 25);
    rg_gc();
    uint64_t full = heap_live_bytes();
    CU_ASSERT(full >= before + mem / 2);
    CU_ASSERT_EQUAL(atomic_load(&fin_count), 0);
    m = NULL;
    rg_root_remove(root);
    rg_gc();
    rg_gc();
    rg_gc();
    CU_ASSERT_EQUAL(atomic_load(&fin_count), 5000);
    uint64_t after = heap_live_bytes();
    CU_ASSERT(after + mem / 2 <= full);
    printf("(map of 50000 keys: %zu bytes; heap %llu -> %llu -> %llu) ", mem, (unsigned long long)before,
           (unsigned long long)full, (unsigned long long)after);
}

/* A map reached from another heap object (not a root) lives with it. */
typedef struct holder {
    rg_map *map;
} holder;
static const size_t holder_ptrs[] = {offsetof(holder, map)};
static const rg_type holder_t = {"test.holder", sizeof(holder), holder_ptrs, 1, NULL};

static void test_map_inside_heap_object(void)
{
    holder *h = rg_new(&holder_t);
    rg_root *root = rg_root_add(&h);
    rg_write(h, &h->map, rg_map_new_heap(100));
    CU_ASSERT_PTR_NOT_NULL_FATAL(h->map);
    for (uint64_t i = 0; i < 5000; i++)
        CU_ASSERT_EQUAL(rg_map_put_u64(h->map, i * 7919, mkval(&val_t, i)), 1);
    for (int c = 0; c < 3; c++) {
        rg_gc();
        size_t bad = 0;
        for (uint64_t i = 0; i < 5000; i++)
            bad += !val_ok(rg_map_get_u64(h->map, i * 7919), i);
        CU_ASSERT_EQUAL(bad, 0);
    }
    /* a region pin keeps a map too */
    rg_region *r = rg_region_new();
    rg_map *pinned = rg_map_new_heap(0);
    rg_region_keep(r, pinned);
    CU_ASSERT_EQUAL(rg_map_put(pinned, "k", 1, mkval(&val_t, 9)), 1);
    rg_gc();
    CU_ASSERT(val_ok(rg_map_get(pinned, "k", 1), 9));
    rg_region_free(r);
    h = NULL;
    rg_root_remove(root);
    rg_gc();
}

/* Growth and shrink while a collector thread runs cycle after cycle: the
 * mutator churns (grow to 20K, shrink to 100, repeatedly), reaches a
 * safepoint every few operations, and checks every value at the end of each
 * phase.  Debug builds also run the heap verifier at every termination. */
static atomic_int stop_gc;
static void *gc_loop(void *arg)
{
    (void)arg;
    rg_thread_attach();
    while (!atomic_load(&stop_gc)) {
        rg_gc();
        usleep(200);
    }
    rg_thread_detach();
    return NULL;
}

static void churn(rg_map *m, uint32_t *ref, uint32_t n, int phases, uint64_t seed)
{
    uint8_t key[64];
    for (int ph = 0; ph < phases; ph++) {
        bool grow = ph % 2 == 0;
        for (uint32_t i = 0; i < n; i++) {
            size_t kl = make_key(i + (uint32_t)(seed << 20), key);
            if (grow || i < 100) {
                val *v = mkval(&val_t, ((uint64_t)i << 8) | (uint64_t)(ph & 0xff));
                CU_ASSERT_FATAL(v != NULL);
                int rc = rg_map_put(m, key, kl, v);
                CU_ASSERT_EQUAL(rc, ref[i] ? 0 : 1);
                ref[i] = (uint32_t)ph + 1;
            } else if (ref[i]) {
                CU_ASSERT_EQUAL(rg_map_del(m, key, kl), 1);
                ref[i] = 0;
            }
            if (i % 64 == 0)
                rg_safepoint();
        }
        size_t bad = 0, live = 0;
        for (uint32_t i = 0; i < n; i++) {
            size_t kl = make_key(i + (uint32_t)(seed << 20), key);
            val *v = rg_map_get(m, key, kl);
            if (ref[i]) {
                live++;
                bad += !val_ok(v, ((uint64_t)i << 8) | (uint64_t)((ref[i] - 1) & 0xff));
            } else {
                bad += v != NULL;
            }
            if (i % 256 == 0)
                rg_safepoint();
        }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL(rg_map_len(m), live);
    }
}

static void test_grow_shrink_while_marking(void)
{
    enum { N = 20000 };
    uint64_t f0 = atomic_load(&rgi_gc_verify_failures), c0 = rgi_gc_cycles();
    uint32_t *ref = calloc(N, sizeof *ref);
    rg_map *m = rg_map_new_heap(0);
    rg_root *root = rg_root_add(&m);
    atomic_store(&stop_gc, 0);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, gc_loop, NULL), 0);
    /* at least 2 rounds, and on until 3 cycles ran beside the churn (a
     * loaded machine may give the collector thread little time: bounded) */
    for (int rep = 0; rep < 2 || (rgi_gc_cycles() <= c0 + 2 && rep < 40); rep++) {
        churn(m, ref, N, 2, 0);
        CU_ASSERT(rgi_map_is_valid(m));
    }
    atomic_store(&stop_gc, 1);
    rg_park(); /* the collector thread's last cycle must not wait for us */
    pthread_join(th, NULL);
    rg_unpark();
    CU_ASSERT(rg_map_capacity(m) <= 512); /* 100 live keys after 20000: it shrank */
    CU_ASSERT(rgi_gc_cycles() > c0 + 2);
    CU_ASSERT_EQUAL(atomic_load(&rgi_gc_verify_failures), f0);
    printf("(%llu cycles during the churn) ", (unsigned long long)(rgi_gc_cycles() - c0));
    m = NULL;
    rg_root_remove(root);
    free(ref);
}

/* Values move between two maps (get from one, put in the other, delete
 * from the first) while a collector thread marks: the barrier on the slot
 * stores is what keeps a value moved from a not-yet-scanned table into an
 * already-scanned one. */
/* The collector pushes a pair's fields in order and pops the last first:
 * b's tables, then the long chain, then a's, so a's slots are scanned well
 * after b's while the test moves values from a to b. */
typedef struct pair {
    rg_map *a;
    val *chain;
    rg_map *b;
} pair;
static const size_t pair_ptrs[] = {offsetof(pair, a), offsetof(pair, chain), offsetof(pair, b)};
static const rg_type pair_t = {"test.pair", sizeof(pair), pair_ptrs, 3, NULL};
static pair *global_pair;

/* Registers global_pair as a root of a thread that then detaches: the
 * collector itself scans it, so the maps' tables are marked by the
 * collector's threads, concurrently with the test's moves. */
static void *register_global_root(void *arg)
{
    *(rg_root **)arg = rg_root_add(&global_pair);
    rg_thread_detach();
    return NULL;
}

static void test_values_move_between_maps(void)
{
    enum { N = 20000 };
    global_pair = rg_new(&pair_t);
    rg_write(global_pair, &global_pair->a, rg_map_new_heap(0));
    rg_write(global_pair, &global_pair->b, rg_map_new_heap(0));
    rg_root *groot = NULL;
    pthread_t reg;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&reg, NULL, register_global_root, &groot), 0);
    pthread_join(reg, NULL);
    for (uint64_t i = 0; i < 100000; i++) {
        val *n = rg_new(&val_t);
        CU_ASSERT_PTR_NOT_NULL_FATAL(n);
        rg_write(n, &n->child, global_pair->chain);
        rg_write(global_pair, &global_pair->chain, n);
    }
    rg_map *a = global_pair->a, *b = global_pair->b;
    for (uint64_t i = 0; i < N; i++)
        CU_ASSERT_EQUAL(rg_map_put_u64(a, i, mkval(&fin_val_t, i)), 1);
    rg_gc();
    atomic_store(&fin_count, 0); /* a finalizer run now means a lost value */
    atomic_store(&stop_gc, 0);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, gc_loop, NULL), 0);
    uint64_t c0 = rgi_gc_cycles();
    size_t bad = 0;
    for (int pass = 0; pass < 6; pass++) {
        rg_map *from = pass % 2 ? b : a, *to = pass % 2 ? a : b;
        for (uint64_t j = 0; j < N; j++) {
            uint64_t i = (j * 7919) % N;
            void *v = rg_map_get_u64(from, i);
            bad += v == NULL;
            CU_ASSERT(rg_map_put_u64(to, i, v) == 1);
            CU_ASSERT(rg_map_del_u64(from, i) == 1);
            
            if (j % 32 == 0)
                rg_safepoint();
        }
        for (uint64_t i = 0; i < N; i++) {
            bad += !val_ok(rg_map_get_u64(to, i), i);
            if (i % 256 == 0)
                rg_safepoint();
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    atomic_store(&stop_gc, 1);
    rg_park();
    pthread_join(th, NULL);
    rg_unpark();
    rg_gc();
    CU_ASSERT_EQUAL(atomic_load(&fin_count), 0);
    printf("(%llu cycles, %ld values lost) ", (unsigned long long)(rgi_gc_cycles() - c0), atomic_load(&fin_count));
    a = b = NULL;
    rg_root_remove(groot);
    rg_gc();
}

/* gcstress: a full cycle at every safepoint, with a small map growing and
 * shrinking through several rebuilds between safepoints. */
static void test_gcstress(void)
{
    enum { N = 600 };
    uint32_t ref[N] = {0};
    rg_map *m = rg_map_new_heap(0);
    rg_root *root = rg_root_add(&m);
    int prev = rgi_opt.gcstress;
    rgi_opt.gcstress = 1;
    uint64_t c0 = rgi_gc_cycles();
    churn(m, ref, N, 4, 1);
    rgi_opt.gcstress = prev;
    CU_ASSERT(rgi_gc_cycles() > c0 + 20);
    CU_ASSERT(rgi_map_is_valid(m));
    m = NULL;
    rg_root_remove(root);
}

/* An iteration spans cycles: the tables it walks stay alive (the iterator
 * is not a root), long keys stay readable, values are intact, and inserts
 * that rebuild the table during the iteration lose nothing. */
static void test_iteration_across_cycles(void)
{
    rg_map *m = rg_map_new_heap(0);
    rg_root *root = rg_root_add(&m);
    uint8_t key[64];
    enum { N = 3000 };
    for (uint32_t i = 0; i < N; i++) {
        size_t kl = make_key(i, key);
        CU_ASSERT_EQUAL(rg_map_put(m, key, kl, mkval(&val_t, i)), 1);
    }
    uint8_t *seen = calloc(N, 1);
    rg_map_iter it;
    const void *k;
    size_t kl;
    void *v;
    size_t n = 0, bad = 0, extra = 0;
    rg_map_iter_init(&it, m);
    while (rg_map_iter_next(&it, &k, &kl, &v)) {
        uint32_t i;
        memcpy(&i, k, 4);
        if (i < N) {
            uint8_t want[64];
            bad += seen[i] || make_key(i, want) != kl || memcmp(want, k, kl) != 0 || !val_ok(v, i);
            seen[i] = 1;
            n++;
        } else {
            extra++;
        }
        if (n % 100 == 0) {
            /* insert enough to force rebuilds, and collect, mid-iteration */
            for (uint32_t j = 0; j < 300; j++) {
                uint32_t id = N + (uint32_t)(n * 300 + j);
                size_t l2 = make_key(id, key);
                CU_ASSERT(rg_map_put(m, key, l2, mkval(&val_t, id)) >= 0);
            }
            rg_gc();
        }
    }
    CU_ASSERT_EQUAL(n, N);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(rgi_map_is_valid(m));
    free(seen);
    m = NULL;
    rg_root_remove(root);
    rg_gc();
}

/* Maps on several attached threads, each rooted by its thread, while the
 * collector runs cycles. */
static void *thread_main(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    rg_thread_attach();
    enum { N = 8000 };
    uint32_t *ref = calloc(N, sizeof *ref);
    rg_map *m = rg_map_new_heap(0);
    rg_root *root = rg_root_add(&m);
    churn(m, ref, N, 4, seed);
    CU_ASSERT(rgi_map_is_valid(m));
    m = NULL;
    rg_root_remove(root);
    free(ref);
    rg_thread_detach();
    return NULL;
}

static void test_threads(void)
{
    atomic_store(&stop_gc, 0);
    pthread_t gc, th[3];
    CU_ASSERT_EQUAL_FATAL(pthread_create(&gc, NULL, gc_loop, NULL), 0);
    for (uintptr_t i = 0; i < 3; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, thread_main, (void *)(i + 2)), 0);
    rg_park();
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    atomic_store(&stop_gc, 1);
    pthread_join(gc, NULL);
    rg_unpark();
}

/* A value that is not a heap object is refused (debug builds say so). */
static void test_bad_values(void)
{
    rg_map *m = rg_map_new_heap(0);
    rg_root *root = rg_root_add(&m);
    int local;
    void *mal = rg_malloc(32);
    char tmpl[] = "/tmp/regio-map-heap-XXXXXX";
    int fd = mkstemp(tmpl);
    CU_ASSERT_FATAL(fd >= 0);
    unlink(tmpl);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    CU_ASSERT_EQUAL(rg_map_put(m, "stack", 5, &local), -EINVAL);
    CU_ASSERT_EQUAL(rg_map_put(m, "malloc", 6, mal), -EINVAL);
    CU_ASSERT_EQUAL(rg_map_put_u64(m, 5, mal), -EINVAL);
    val *v = mkval(&val_t, 5);
    CU_ASSERT_EQUAL(rg_map_put(m, "interior", 8, &v->check), -EINVAL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    CU_ASSERT_EQUAL(rg_map_len(m), 0);
    char buf[2048] = {0};
    ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (RG_DEBUG_CHECKS) {
        CU_ASSERT(got > 0 && strstr(buf, "rg_map_put") != NULL && strstr(buf, "not an object of the collected heap"));
        CU_ASSERT(strstr(buf, "rg_map_put_u64") != NULL);
    }
    CU_ASSERT_EQUAL(rg_map_put(m, "ok", 2, v), 1);
    rg_free(mal);
    m = NULL;
    rg_root_remove(root);
}

int main(void)
{
    static const cu_test tests[] = {
        {"every call on a heap map", test_api_on_heap},
        {"values reachable only through the map survive cycles", test_values_survive_cycles},
        {"deleted and replaced values are collected", test_deleted_values_collected},
        {"an unreachable map is collected", test_map_collected},
        {"a map inside a heap object or pinned", test_map_inside_heap_object},
        {"grow and shrink while marking", test_grow_shrink_while_marking},
        {"values move between maps while marking", test_values_move_between_maps},
        {"gcstress", test_gcstress},
        {"iteration across cycles and rebuilds", test_iteration_across_cycles},
        {"maps on several threads", test_threads},
        {"bad values", test_bad_values},
        {NULL, NULL},
    };
    return cu_run("map_heap", tests);
}
