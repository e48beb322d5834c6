/* tests/map.c — Swiss-table maps: every call, 1M random keys with
 * delete/reinsert cycles against a reference, shrink with hysteresis,
 * iteration with deletion and insertion, integer keys, region maps, bad
 * input, maps on several threads. */
#include "cu.h"
#include "internal.h"

#include <pthread.h>
#include <stdint.h>

bool rgi_map_is_valid(const rg_map *m);

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Key i: 4..40 bytes, the first 4 are i (so keys are distinct), the rest
 * pseudo-random; about 1 in 8 keys fit in a slot (<= 8 bytes). */
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

static void *val_of(uint32_t i, uint32_t gen) { return (void *)(uintptr_t)(((uint64_t)i << 8) | gen | 1); }

static void test_basic_api(void)
{
    rg_map *m = rg_map_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(rg_map_len(m), 0);
    CU_ASSERT_PTR_NULL(rg_map_get(m, "a", 1));
    CU_ASSERT_EQUAL(rg_map_del(m, "a", 1), 0);
    int x, y;
    CU_ASSERT_EQUAL(rg_map_put(m, "alpha", 5, &x), 1);
    CU_ASSERT_EQUAL(rg_map_put(m, "alpha", 5, &y), 0); /* replaced */
    CU_ASSERT_PTR_EQUAL(rg_map_get(m, "alpha", 5), &y);
    CU_ASSERT_PTR_NULL(rg_map_get(m, "alph", 4));
    CU_ASSERT_PTR_NULL(rg_map_get(m, "alphab", 6));
    /* the empty key, keys that differ only in length or past byte 8 */
    CU_ASSERT_EQUAL(rg_map_put(m, NULL, 0, &x), 1);
    CU_ASSERT_PTR_EQUAL(rg_map_get(m, "", 0), &x);
    CU_ASSERT_EQUAL(rg_map_put(m, "\0", 1, &y), 1);
    CU_ASSERT_EQUAL(rg_map_put(m, "\0\0", 2, &x), 1);
    CU_ASSERT_PTR_EQUAL(rg_map_get(m, "\0", 1), &y);
    CU_ASSERT_EQUAL(rg_map_put(m, "0123456789abcdefX", 17, &x), 1);
    CU_ASSERT_EQUAL(rg_map_put(m, "0123456789abcdefY", 17, &y), 1);
    CU_ASSERT_PTR_EQUAL(rg_map_get(m, "0123456789abcdefY", 17), &y);
    CU_ASSERT_EQUAL(rg_map_len(m), 6);
    /* a stored NULL value is told apart from absence by find */
    CU_ASSERT_EQUAL(rg_map_put(m, "nil", 3, NULL), 1);
    void *v = &x;
    CU_ASSERT_EQUAL(rg_map_find(m, "nil", 3, &v), 1);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_EQUAL(rg_map_find(m, "nil?", 4, &v), 0);
    CU_ASSERT_EQUAL(rg_map_find(m, "nil", 3, NULL), 1);
    CU_ASSERT_EQUAL(rg_map_del(m, "alpha", 5), 1);
    CU_ASSERT_EQUAL(rg_map_del(m, "alpha", 5), 0);
    CU_ASSERT_EQUAL(rg_map_len(m), 6);
    CU_ASSERT(rg_map_mem(m) > sizeof(void *));
    CU_ASSERT(rg_map_capacity(m) >= 16);
    CU_ASSERT(rgi_map_is_valid(m));
    rg_map_clear(m);
    CU_ASSERT_EQUAL(rg_map_len(m), 0);
    CU_ASSERT_PTR_NULL(rg_map_get(m, "nil", 3));
    CU_ASSERT_EQUAL(rg_map_put(m, "again", 5, &x), 1);
    CU_ASSERT(rgi_map_is_valid(m));
    rg_map_free(m);
    rg_map_free(NULL);
}

static void test_bad_input(void)
{
    rg_map *m = rg_map_new(NULL);
    int x;
    CU_ASSERT_EQUAL(rg_map_put(NULL, "a", 1, &x), -EINVAL);
    CU_ASSERT_EQUAL(rg_map_put(m, NULL, 1, &x), -EINVAL);
    CU_ASSERT_EQUAL(rg_map_put(m, "a", RG_MAP_KEY_MAX + 1, &x), -EINVAL);
    CU_ASSERT_EQUAL(rg_map_put(m, "a", SIZE_MAX, &x), -EINVAL);
    CU_ASSERT_PTR_NULL(rg_map_get(NULL, "a", 1));
    CU_ASSERT_PTR_NULL(rg_map_get(m, NULL, 5));
    CU_ASSERT_PTR_NULL(rg_map_get(m, "a", SIZE_MAX));
    CU_ASSERT_EQUAL(rg_map_del(NULL, "a", 1), -EINVAL);
    CU_ASSERT_EQUAL(rg_map_del(m, "a", SIZE_MAX), -EINVAL);
    CU_ASSERT_EQUAL(rg_map_find(NULL, "a", 1, NULL), 0);
    CU_ASSERT_EQUAL(rg_map_len(NULL), 0);
    CU_ASSERT_EQUAL(rg_map_mem(NULL), 0);
    CU_ASSERT_EQUAL(rg_map_put_u64(NULL, 1, &x), -EINVAL);
    CU_ASSERT_EQUAL(rg_map_del_u64(NULL, 1), -EINVAL);
    CU_ASSERT_PTR_NULL(rg_map_get_u64(NULL, 1));
    CU_ASSERT_EQUAL(rg_map_len(m), 0);
    rg_map_iter it;
    rg_map_iter_init(&it, NULL);
    CU_ASSERT_EQUAL(rg_map_iter_next(&it, NULL, NULL, NULL), 0);
    rg_map_iter_end(&it);
    CU_ASSERT_EQUAL(rg_map_iter_next(NULL, NULL, NULL, NULL), 0);
    /* a huge hint fails cleanly */
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_map_new_hint(NULL, SIZE_MAX));
    CU_ASSERT(errno == ENOMEM || errno == EOVERFLOW);
    /* a long (1 MiB) key works */
    size_t big = 1 << 20;
    char *k = rg_malloc(big);
    memset(k, 'k', big);
    CU_ASSERT_EQUAL(rg_map_put(m, k, big, &x), 1);
    CU_ASSERT_PTR_EQUAL(rg_map_get(m, k, big), &x);
    k[big - 1] = 'j';
    CU_ASSERT_PTR_NULL(rg_map_get(m, k, big));
    rg_free(k);
    rg_map_free(m);
}

static void test_u64_keys(void)
{
    rg_map *m = rg_map_new_hint(NULL, 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    size_t cap0 = rg_map_capacity(m);
    CU_ASSERT(cap0 * 7 / 8 >= 1000);
    for (uint64_t k = 0; k < 1000; k++)
        CU_ASSERT_EQUAL(rg_map_put_u64(m, k * 0x100000001ull, val_of((uint32_t)k, 2)), 1);
    CU_ASSERT_EQUAL(rg_map_capacity(m), cap0); /* the hint avoided rebuilds */
    int bad = 0;
    for (uint64_t k = 0; k < 1000; k++) {
        bad += rg_map_get_u64(m, k * 0x100000001ull) != val_of((uint32_t)k, 2);
        bad += rg_map_get_u64(m, k * 0x100000001ull + 1) != NULL;
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* an integer key is its 8 bytes */
    uint64_t k7 = 7 * 0x100000001ull;
    CU_ASSERT_PTR_EQUAL(rg_map_get(m, &k7, 8), val_of(7, 2));
    CU_ASSERT_EQUAL(rg_map_put(m, &k7, 8, NULL), 0);
    void *v = &v;
    CU_ASSERT_EQUAL(rg_map_find_u64(m, k7, &v), 1);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_EQUAL(rg_map_del_u64(m, k7), 1);
    CU_ASSERT_EQUAL(rg_map_del_u64(m, k7), 0);
    CU_ASSERT_EQUAL(rg_map_find_u64(m, k7, NULL), 0);
    /* deleting all: the hint is a floor */
    for (uint64_t k = 0; k < 1000; k++)
        rg_map_del_u64(m, k * 0x100000001ull);
    CU_ASSERT_EQUAL(rg_map_len(m), 0);
    CU_ASSERT_EQUAL(rg_map_capacity(m), cap0);
    CU_ASSERT(rgi_map_is_valid(m));
    rg_map_free(m);
}

/* 1M random keys, churned against a reference, then 99% deleted. */
static void test_million_keys_vs_reference(void)
{
    enum { N = 1 << 20 };
    uint8_t *present = calloc(N, 1);
    uint8_t *gen = calloc(N, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(present);
    rg_map *m = rg_map_new(NULL);
    uint8_t key[64];
    size_t live = 0;
    int bad = 0;
    uint64_t rnd = 42;
    for (uint32_t i = 0; i < N; i++) {
        size_t kl = make_key(i, key);
        bad += rg_map_put(m, key, kl, val_of(i, 0)) != 1;
        present[i] = 1;
        live++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(rg_map_len(m), live);
    CU_ASSERT(rgi_map_is_valid(m));
    /* delete/reinsert cycles, random order, with value replacement */
    for (int cycle = 0; cycle < 3; cycle++) {
        for (uint32_t op = 0; op < N / 2; op++) {
            rnd = mix64(rnd);
            uint32_t i = (uint32_t)(rnd % N);
            size_t kl = make_key(i, key);
            if (present[i] && (rnd >> 40) % 4 != 0) {
                bad += rg_map_del(m, key, kl) != 1;
                present[i] = 0;
                live--;
            } else {
                int want = present[i] ? 0 : 1;
                gen[i] = (uint8_t)(gen[i] + 2);
                bad += rg_map_put(m, key, kl, val_of(i, gen[i])) != want;
                live += !present[i];
                present[i] = 1;
            }
        }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL(rg_map_len(m), live);
        for (uint32_t i = 0; i < N; i++) {
            size_t kl = make_key(i, key);
            void *v = rg_map_get(m, key, kl);
            bad += v != (present[i] ? val_of(i, gen[i]) : NULL);
        }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT(rgi_map_is_valid(m));
    }
    /* delete all but 1%: memory within 2x of a fresh map with those keys */
    size_t mem_full = rg_map_mem(m);
    for (uint32_t i = 0; i < N; i++) {
        if (present[i] && i % 100 != 0) {
            size_t kl = make_key(i, key);
            bad += rg_map_del(m, key, kl) != 1;
            present[i] = 0;
            live--;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(rg_map_len(m), live);
    CU_ASSERT(rgi_map_is_valid(m));
    rg_map *fresh = rg_map_new(NULL);
    for (uint32_t i = 0; i < N; i++) {
        if (present[i]) {
            size_t kl = make_key(i, key);
            rg_map_put(fresh, key, kl, val_of(i, gen[i]));
            bad += rg_map_get(m, key, kl) != val_of(i, gen[i]);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    size_t mem_after = rg_map_mem(m), mem_fresh = rg_map_mem(fresh);
    printf("\n    1M keys: %zu bytes; after deleting 99%%: %zu bytes (%zu keys); fresh map: %zu bytes\n",
           mem_full, mem_after, live, mem_fresh);
    CU_ASSERT(mem_after < mem_full / 20);
    CU_ASSERT(mem_after <= 2 * mem_fresh);
    rg_map_free(fresh);
    rg_map_free(m);
    free(present);
    free(gen);
}

/* Shrink happens, and oscillating around either threshold does not thrash. */
static void test_shrink_hysteresis(void)
{
    rg_map *m = rg_map_new(NULL);
    uint8_t key[64];
    enum { N = 100000 };
    for (uint32_t i = 0; i < N; i++) {
        size_t kl = make_key(i, key);
        rg_map_put(m, key, kl, val_of(i, 0));
    }
    size_t cap_full = rg_map_capacity(m), mem_full = rg_map_mem(m);
    size_t changes = 0, last = cap_full;
    uint32_t n = N;
    while (n > 100) {
        n--;
        size_t kl = make_key(n, key);
        CU_ASSERT_EQUAL(rg_map_del(m, key, kl), 1);
        if (rg_map_capacity(m) != last) {
            CU_ASSERT(rg_map_capacity(m) < last); /* only shrinks while deleting */
            last = rg_map_capacity(m);
            changes++;
        }
    }
    CU_ASSERT(changes >= 5);
    CU_ASSERT(rg_map_capacity(m) <= 256);
    CU_ASSERT(rg_map_mem(m) < mem_full / 50);
    CU_ASSERT(rgi_map_is_valid(m));

    /* Oscillate by 1 around the point where the last shrink happened and
     * around the growth point: at most one resize each. */
    for (int phase = 0; phase < 2; phase++) {
        /* walk up to just past a resize */
        size_t c0 = rg_map_capacity(m);
        while (rg_map_capacity(m) == c0) {
            size_t kl = make_key(n, key);
            rg_map_put(m, key, kl, val_of(n, 0));
            n++;
        }
        size_t resizes = 0;
        last = rg_map_capacity(m);
        for (int k = 0; k < 10000; k++) {
            size_t kl = make_key(n - 1, key);
            if (k % 2 == 0)
                rg_map_del(m, key, kl);
            else
                rg_map_put(m, key, kl, val_of(n - 1, 0));
            if (rg_map_capacity(m) != last) {
                last = rg_map_capacity(m);
                resizes++;
            }
        }
        CU_ASSERT(resizes <= 1);
    }
    /* around the shrink point: delete down to just past a shrink, then +-1 */
    size_t c0 = rg_map_capacity(m);
    while (rg_map_capacity(m) == c0) {
        n--;
        size_t kl = make_key(n, key);
        rg_map_del(m, key, kl);
    }
    size_t resizes = 0;
    last = rg_map_capacity(m);
    for (int k = 0; k < 10000; k++) {
        size_t kl = make_key(n, key);
        if (k % 2 == 0)
            rg_map_put(m, key, kl, val_of(n, 0));
        else
            rg_map_del(m, key, kl);
        if (rg_map_capacity(m) != last) {
            last = rg_map_capacity(m);
            resizes++;
        }
    }
    CU_ASSERT(resizes <= 1);
    CU_ASSERT(rgi_map_is_valid(m));
    rg_map_free(m);
}

/* Iteration: every entry exactly once; deleting the current entry and
 * others; inserting (with rebuilds) during iteration. */
static void test_iteration(void)
{
    enum { N = 5000 };
    uint8_t key[64];
    uint8_t *seen = calloc(4 * N, 1);
    rg_map *m = rg_map_new(NULL);
    for (uint32_t i = 0; i < N; i++) {
        size_t kl = make_key(i, key);
        rg_map_put(m, key, kl, val_of(i, 0));
    }
    rg_map_iter it;
    const void *k;
    size_t kl;
    void *v;
    int bad = 0, count = 0;
    rg_map_iter_init(&it, m);
    while (rg_map_iter_next(&it, &k, &kl, &v)) {
        uint32_t i;
        memcpy(&i, k, 4);
        bad += i >= N || seen[i]++ || v != val_of(i, 0) || kl != make_key(i, key) || memcmp(k, key, kl);
        count++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(count, N);
    CU_ASSERT_EQUAL(rg_map_iter_next(&it, &k, &kl, &v), 0); /* stays ended */

    /* delete every current entry with an odd index (through rg_map_del and
     * the iterator), and, at the start, every entry with index % 10 == 2
     * (not yet reached ones must not be produced) */
    memset(seen, 0, N);
    count = 0;
    rg_map_iter_init(&it, m);
    bool first = true;
    while (rg_map_iter_next(&it, &k, &kl, &v)) {
        uint32_t i;
        memcpy(&i, k, 4);
        if (first) {
            for (uint32_t j = 2; j < N; j += 10) {
                if (j == i)
                    continue;
                size_t l = make_key(j, key);
                rg_map_del(m, key, l);
            }
            /* the current entry may itself have index % 10 == 2 (which one
             * comes first depends on the map's random hash seed) */
            if (i % 10 == 2)
                bad += rg_map_iter_del(&it) != 1;
            first = false;
        } else {
            bad += i % 10 == 2;
        }
        bad += seen[i]++;
        if (i % 2 == 1) {
            if (i % 4 == 1)
                bad += rg_map_del(m, k, kl) != 1;
            else
                bad += rg_map_iter_del(&it) != 1;
        }
        count++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(rgi_map_is_valid(m));
    size_t expect = 0;
    for (uint32_t i = 0; i < N; i++)
        expect += i % 2 == 0 && i % 10 != 2;
    CU_ASSERT_EQUAL(rg_map_len(m), expect);

    /* insert 3N new keys while iterating (forces growth rebuilds): every
     * original entry still comes exactly once; a new one at most once */
    memset(seen, 0, 4 * N);
    size_t cap_before = rg_map_capacity(m);
    uint32_t next = N;
    size_t originals = 0;
    rg_map_iter_init(&it, m);
    while (rg_map_iter_next(&it, &k, &kl, &v)) {
        uint32_t i;
        memcpy(&i, k, 4);
        bad += i >= 4 * N || seen[i]++;
        originals += i < N;
        for (int j = 0; j < 3 && next < 4 * N; j++, next++) {
            size_t l = make_key(next, key);
            rg_map_put(m, key, l, val_of(next, 0));
        }
    }
    CU_ASSERT(rg_map_capacity(m) > cap_before);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(originals, expect);
    CU_ASSERT(rgi_map_is_valid(m));

    /* an iteration ended early keeps nothing alive afterwards */
    size_t mem0 = rg_map_mem(m);
    rg_map_iter_init(&it, m);
    CU_ASSERT_EQUAL(rg_map_iter_next(&it, &k, &kl, &v), 1);
    for (uint32_t i = 0; i < 4 * N; i += 1) {
        size_t l = make_key(i, key);
        rg_map_del(m, key, l); /* shrinks: the old table is kept for it */
    }
    CU_ASSERT_EQUAL(rg_map_len(m), 0);
    CU_ASSERT(rg_map_mem(m) >= mem0); /* kept while the iterator runs */
    CU_ASSERT_EQUAL(rg_map_iter_next(&it, &k, &kl, &v), 0); /* all gone */
    CU_ASSERT(rg_map_mem(m) < mem0 / 10);
    rg_map_iter_init(&it, m);
    rg_map_iter_end(&it);
    rg_map_iter_end(&it); /* idempotent */
    rg_map_free(m);
    free(seen);
}

static void test_region_map(void)
{
    rg_memstats st0, st1, st2;
    rg_read_memstats(&st0);
    rg_region *r = rg_region_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    rg_map *m = rg_map_new(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint8_t key[64];
    enum { N = 50000 };
    for (uint32_t i = 0; i < N; i++) {
        size_t kl = make_key(i, key);
        CU_ASSERT_EQUAL(rg_map_put(m, key, kl, val_of(i, 0)), 1);
    }
    int bad = 0;
    for (uint32_t i = 0; i < N; i += 2) {
        size_t kl = make_key(i, key);
        bad += rg_map_del(m, key, kl) != 1;
    }
    for (uint32_t i = 0; i < N; i++) {
        size_t kl = make_key(i, key);
        bad += rg_map_get(m, key, kl) != (i % 2 ? val_of(i, 0) : NULL);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(rgi_map_is_valid(m));
    CU_ASSERT(rg_map_mem(m) <= rg_region_size(r));
    CU_ASSERT(rg_map_mem(m) > N * 24);
    rg_read_memstats(&st1);
    CU_ASSERT(st1.region_inuse >= st0.region_inuse + rg_map_mem(m));
    rg_map_clear(m);
    CU_ASSERT_EQUAL(rg_map_len(m), 0);
    rg_map_free(m); /* marks it dead; the region owns the bytes */
    rg_region_free(r);
    rg_read_memstats(&st2);
    CU_ASSERT(st2.region_inuse <= st0.region_inuse);

    /* reset drops a map built on the region; a new one works after it */
    r = rg_region_new();
    for (int round = 0; round < 3; round++) {
        m = rg_map_new(r);
        for (uint64_t i = 0; i < 1000; i++)
            rg_map_put_u64(m, i, (void *)(uintptr_t)(i + 1));
        CU_ASSERT_PTR_EQUAL(rg_map_get_u64(m, 999), (void *)1000);
        rg_region_reset(r);
    }
    rg_region_free(r);
}

/* Many keys with a shared prefix and small differences still spread: a
 * lookup of each is correct, and the table did not need to grow beyond
 * what its size requires (a bad hash would fill groups and force rebuilds). */
static void test_similar_keys(void)
{
    rg_map *m = rg_map_new(NULL);
    char key[64];
    enum { N = 200000 };
    for (int i = 0; i < N; i++) {
        int kl = snprintf(key, sizeof key, "user:session:%08d", i);
        rg_map_put(m, key, (size_t)kl, (void *)(uintptr_t)(i + 1));
    }
    CU_ASSERT(rg_map_capacity(m) <= 524288);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        int kl = snprintf(key, sizeof key, "user:session:%08d", i);
        bad += rg_map_get(m, key, (size_t)kl) != (void *)(uintptr_t)(i + 1);
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* keys of 9..16 bytes (inline in the slot) that differ only in their
     * last bytes, and all-zero keys that differ only in length */
    rg_map_clear(m);
    for (size_t len = 9; len <= 16; len++)
        for (int i = 0; i < 1000; i++) {
            memcpy(key, "abcdefghijklmnop", 16);
            key[len - 1] = (char)i;
            key[len - 2] = (char)(i >> 8);
            CU_ASSERT_EQUAL(rg_map_put(m, key, len, (void *)(uintptr_t)(len * 1000 + (size_t)i + 1)), 1);
        }
    memset(key, 0, sizeof key);
    for (size_t len = 0; len <= 24; len++)
        CU_ASSERT_EQUAL(rg_map_put(m, key, len, (void *)(uintptr_t)(len + 1)), 1);
    for (size_t len = 9; len <= 16; len++)
        for (int i = 0; i < 1000; i++) {
            memcpy(key, "abcdefghijklmnop", 16);
            key[len - 1] = (char)i;
            key[len - 2] = (char)(i >> 8);
            bad += rg_map_get(m, key, len) != (void *)(uintptr_t)(len * 1000 + (size_t)i + 1);
        }
    memset(key, 0, sizeof key);
    for (size_t len = 0; len <= 24; len++)
        bad += rg_map_get(m, key, len) != (void *)(uintptr_t)(len + 1);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(rg_map_len(m), 8 * 1000 + 25);
    CU_ASSERT(rgi_map_is_valid(m));
    /* short keys of every length 0..3 */
    rg_map_clear(m);
    uint8_t k[3];
    for (int i = 0; i < 256 * 256; i++) {
        k[0] = (uint8_t)i;
        k[1] = (uint8_t)(i >> 8);
        rg_map_put(m, k, 2, (void *)(uintptr_t)(i + 1));
        if (i < 256)
            rg_map_put(m, k, 1, (void *)(uintptr_t)(i + 7));
    }
    CU_ASSERT_EQUAL(rg_map_len(m), 256 * 256 + 256);
    for (int i = 0; i < 256 * 256; i++) {
        k[0] = (uint8_t)i;
        k[1] = (uint8_t)(i >> 8);
        bad += rg_map_get(m, k, 2) != (void *)(uintptr_t)(i + 1);
        bad += rg_map_get(m, k, 3) != NULL;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(rgi_map_is_valid(m));
    rg_map_free(m);
}

static void *thread_map(void *arg)
{
    uintptr_t seed = (uintptr_t)arg;
    rg_map *m = rg_map_new(NULL);
    uint8_t key[64];
    long bad = 0;
    for (uint32_t i = 0; i < 50000; i++) {
        size_t kl = make_key(i ^ (uint32_t)seed, key);
        rg_map_put(m, key, kl, val_of(i, 0));
    }
    for (uint32_t i = 0; i < 50000; i += 2) {
        size_t kl = make_key(i ^ (uint32_t)seed, key);
        bad += rg_map_del(m, key, kl) != 1;
    }
    for (uint32_t i = 0; i < 50000; i++) {
        size_t kl = make_key(i ^ (uint32_t)seed, key);
        bad += rg_map_get(m, key, kl) != (i % 2 ? val_of(i, 0) : NULL);
    }
    bad += !rgi_map_is_valid(m);
    rg_map_free(m);
    return (void *)bad;
}

static void test_maps_on_threads(void)
{
    pthread_t th[4];
    for (uintptr_t i = 0; i < 4; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, thread_map, (void *)(i * 7919)), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(th[i], &bad);
        CU_ASSERT_PTR_NULL(bad);
    }
}

int main(void)
{
    static const cu_test tests[] = {
        {"every call, short and long keys, NULL values", test_basic_api},
        {"bad input: NULL, huge keys and hints", test_bad_input},
        {"integer keys and hints", test_u64_keys},
        {"1M random keys with delete/reinsert cycles vs a reference; 99% deleted", test_million_keys_vs_reference},
        {"shrink with hysteresis", test_shrink_hysteresis},
        {"iteration with deletes and inserts", test_iteration},
        {"maps on a region", test_region_map},
        {"similar and very short keys", test_similar_keys},
        {"maps on several threads", test_maps_on_threads},
        {NULL, NULL},
    };
    return cu_run("map", tests);
}
