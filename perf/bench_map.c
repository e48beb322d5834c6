/* perf/bench_map.c — rg_map vs glib's GHashTable: insert, lookup hit,
 * lookup miss and delete with N byte-string keys, plus the memory left after
 * deleting 99% of 1M keys.  Go's map runs the same keys in perf/go
 * (map_test.go); perf/run_map.py runs both and prints the table.
 *
 * Keys: key i is "k:" followed by the decimal of a 40-bit bijective mix of
 * i (13 digits at most: keys of 9-15 bytes, mostly 14-15, past the 8 bytes
 * rg_map keeps inline, like typical cache keys).  Misses use i + N.  Every lookup and delete uses a
 * separate copy of the key bytes (as a server has after parsing a request),
 * in a shuffled order shared with the Go benchmark, so no implementation
 * gets pointer-equal keys or sequential access for free.
 * Values are pointers (i + 1).  GHashTable gets NUL-terminated keys with
 * g_str_hash/g_str_equal and does not copy them (its usual use); rg_map
 * copies every key into the map.
 *
 * Per item: CPU ns for one operation.  insert: a fresh map filled with N
 * keys and freed (no size hint, so growth is included; Go's make(map) too).
 * delete: a filled map (built with the timer paused) emptied key by key.
 *
 * Usage: bench_map [Google Benchmark flags]        the timings
 *        bench_map --mem                           memory after 99% deletes
 */
#include "shim.h"

#include <regio.h>

#include <glib.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct keyset {
    size_t n;
    char **ins;        /* keys as inserted */
    char **probe;      /* copies used by lookups and deletes */
    char **miss;       /* keys not in the map */
    uint32_t *klen, *mlen;
    uint32_t *order;   /* shuffled 0..n-1 */
} keyset;

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A bijection on 40 bits (odd multiplies and xorshifts mod 2^40), so the
 * keys of 0 .. 2N-1 are all distinct and look random. */
static uint64_t mix40(uint64_t x)
{
    const uint64_t m = ((uint64_t)1 << 40) - 1;
    x = (x * 0x9e3779b97full) & m;
    x ^= x >> 19;
    x = (x * 0xbf58476d1dull) & m;
    x ^= x >> 21;
    return x;
}

static char *key_str(uint64_t i, uint32_t *len)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "k:%" PRIu64, mix40(i));
    *len = (uint32_t)n;
    char *s = malloc((size_t)n + 1);
    memcpy(s, buf, (size_t)n + 1);
    return s;
}

static keyset *keys_for(size_t n)
{
    static keyset *cache[8];
    for (int i = 0; i < 8 && cache[i]; i++)
        if (cache[i]->n == n)
            return cache[i];
    keyset *k = calloc(1, sizeof *k);
    k->n = n;
    k->ins = malloc(n * sizeof(char *));
    k->probe = malloc(n * sizeof(char *));
    k->miss = malloc(n * sizeof(char *));
    k->klen = malloc(n * sizeof(uint32_t));
    k->mlen = malloc(n * sizeof(uint32_t));
    k->order = malloc(n * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) {
        k->ins[i] = key_str(i, &k->klen[i]);
        k->miss[i] = key_str(i + n, &k->mlen[i]);
        k->order[i] = (uint32_t)i;
    }
    for (size_t i = 0; i < n; i++) /* copies made later: other memory */
        k->probe[i] = strdup(k->ins[i]);
    /* Fisher-Yates with splitmix64 draws (the Go benchmark does the same) */
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(splitmix64(0x5eed0000ull + i) % (i + 1));
        uint32_t t = k->order[i];
        k->order[i] = k->order[j];
        k->order[j] = t;
    }
    for (int i = 0; i < 8; i++)
        if (!cache[i]) {
            cache[i] = k;
            break;
        }
    return k;
}

static void *val_of(size_t i) { return (void *)(uintptr_t)(i + 1); }

/* ---------------------------------------------------------------------------
 * rg_map
 * ------------------------------------------------------------------------- */
static rg_map *rg_fill(const keyset *k)
{
    rg_map *m = rg_map_new(NULL);
    for (size_t i = 0; i < k->n; i++)
        rg_map_put(m, k->ins[i], k->klen[i], val_of(i));
    return m;
}

static void bm_rg_insert(rgb_state *st)
{
    keyset *k = keys_for((size_t)rgb_range(st));
    while (rgb_keep_running_batch(st, k->n)) {
        rg_map *m = rg_map_new(NULL);
        for (size_t i = 0; i < k->n; i++) {
            uint32_t j = k->order[i];
            rg_map_put(m, k->ins[j], k->klen[j], val_of(j));
        }
        rgb_do_not_optimize(m);
        rg_map_free(m);
    }
    rgb_set_items_per_iteration(st, 1);
}

static void bm_rg_hit(rgb_state *st)
{
    keyset *k = keys_for((size_t)rgb_range(st));
    rg_map *m = rg_fill(k);
    uintptr_t sum = 0;
    while (rgb_keep_running_batch(st, k->n))
        for (size_t i = 0; i < k->n; i++) {
            uint32_t j = k->order[i];
            sum += (uintptr_t)rg_map_get(m, k->probe[j], k->klen[j]);
        }
    rgb_do_not_optimize((void *)sum);
    if (sum == 0)
        rgb_skip_with_error(st, "lookups missed");
    rg_map_free(m);
    rgb_set_items_per_iteration(st, 1);
}

static void bm_rg_miss(rgb_state *st)
{
    keyset *k = keys_for((size_t)rgb_range(st));
    rg_map *m = rg_fill(k);
    uintptr_t sum = 0;
    while (rgb_keep_running_batch(st, k->n))
        for (size_t i = 0; i < k->n; i++) {
            uint32_t j = k->order[i];
            sum += (uintptr_t)rg_map_get(m, k->miss[j], k->mlen[j]);
        }
    rgb_do_not_optimize((void *)sum);
    if (sum != 0)
        rgb_skip_with_error(st, "misses hit");
    rg_map_free(m);
    rgb_set_items_per_iteration(st, 1);
}

static void bm_rg_delete(rgb_state *st)
{
    keyset *k = keys_for((size_t)rgb_range(st));
    while (rgb_keep_running_batch(st, k->n)) {
        rgb_pause_timing(st);
        rg_map *m = rg_fill(k);
        rgb_resume_timing(st);
        for (size_t i = 0; i < k->n; i++) {
            uint32_t j = k->order[i];
            rg_map_del(m, k->probe[j], k->klen[j]);
        }
        rgb_pause_timing(st);
        if (rg_map_len(m) != 0)
            rgb_skip_with_error(st, "delete left keys");
        rg_map_free(m);
        rgb_resume_timing(st);
    }
    rgb_set_items_per_iteration(st, 1);
}

/* ---------------------------------------------------------------------------
 * GHashTable
 * ------------------------------------------------------------------------- */
static GHashTable *gh_fill(const keyset *k)
{
    GHashTable *h = g_hash_table_new(g_str_hash, g_str_equal);
    for (size_t i = 0; i < k->n; i++)
        g_hash_table_insert(h, k->ins[i], val_of(i));
    return h;
}

static void bm_gh_insert(rgb_state *st)
{
    keyset *k = keys_for((size_t)rgb_range(st));
    while (rgb_keep_running_batch(st, k->n)) {
        GHashTable *h = g_hash_table_new(g_str_hash, g_str_equal);
        for (size_t i = 0; i < k->n; i++) {
            uint32_t j = k->order[i];
            g_hash_table_insert(h, k->ins[j], val_of(j));
        }
        rgb_do_not_optimize(h);
        g_hash_table_destroy(h);
    }
    rgb_set_items_per_iteration(st, 1);
}

static void bm_gh_hit(rgb_state *st)
{
    keyset *k = keys_for((size_t)rgb_range(st));
    GHashTable *h = gh_fill(k);
    uintptr_t sum = 0;
    while (rgb_keep_running_batch(st, k->n))
        for (size_t i = 0; i < k->n; i++)
            sum += (uintptr_t)g_hash_table_lookup(h, k->probe[k->order[i]]);
    rgb_do_not_optimize((void *)sum);
    if (sum == 0)
        rgb_skip_with_error(st, "lookups missed");
    g_hash_table_destroy(h);
    rgb_set_items_per_iteration(st, 1);
}

static void bm_gh_miss(rgb_state *st)
{
    keyset *k = keys_for((size_t)rgb_range(st));
    GHashTable *h = gh_fill(k);
    uintptr_t sum = 0;
    while (rgb_keep_running_batch(st, k->n))
        for (size_t i = 0; i < k->n; i++)
            sum += (uintptr_t)g_hash_table_lookup(h, k->miss[k->order[i]]);
    rgb_do_not_optimize((void *)sum);
    if (sum != 0)
        rgb_skip_with_error(st, "misses hit");
    g_hash_table_destroy(h);
    rgb_set_items_per_iteration(st, 1);
}

static void bm_gh_delete(rgb_state *st)
{
    keyset *k = keys_for((size_t)rgb_range(st));
    while (rgb_keep_running_batch(st, k->n)) {
        rgb_pause_timing(st);
        GHashTable *h = gh_fill(k);
        rgb_resume_timing(st);
        for (size_t i = 0; i < k->n; i++)
            g_hash_table_remove(h, k->probe[k->order[i]]);
        rgb_pause_timing(st);
        if (g_hash_table_size(h) != 0)
            rgb_skip_with_error(st, "delete left keys");
        g_hash_table_destroy(h);
        rgb_resume_timing(st);
    }
    rgb_set_items_per_iteration(st, 1);
}

/* ---------------------------------------------------------------------------
 * Memory after deleting 99% of 1M keys
 * ------------------------------------------------------------------------- */
static size_t malloc_inuse(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static int mem_report(size_t n)
{
    keyset *k = keys_for(n);
    rg_map *m = rg_fill(k);
    size_t full = rg_map_mem(m);
    size_t left = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 100 == 0)
            left++;
        else
            rg_map_del(m, k->probe[i], k->klen[i]);
    }
    size_t after = rg_map_mem(m);
    rg_map *fresh = rg_map_new(NULL);
    for (size_t i = 0; i < n; i += 100)
        rg_map_put(fresh, k->ins[i], k->klen[i], val_of(i));
    size_t fr = rg_map_mem(fresh);
    printf("rg_map %zu keys: %zu bytes; after deleting 99%%: %zu bytes (%zu keys); "
           "fresh map of those keys: %zu bytes; ratio %.2f\n",
           n, full, after, left, fr, (double)after / (double)fr);
    rg_map_free(fresh);
    rg_map_free(m);

    /* GHashTable: malloc'd bytes (it does not own the keys) */
    size_t base = malloc_inuse();
    GHashTable *h = gh_fill(k);
    size_t gfull = malloc_inuse() - base;
    for (size_t i = 0; i < n; i++)
        if (i % 100 != 0)
            g_hash_table_remove(h, k->probe[i]);
    size_t gafter = malloc_inuse() - base;
    size_t base2 = malloc_inuse();
    GHashTable *g2 = g_hash_table_new(g_str_hash, g_str_equal);
    for (size_t i = 0; i < n; i += 100)
        g_hash_table_insert(g2, k->ins[i], val_of(i));
    size_t gfresh = malloc_inuse() - base2;
    printf("GHashTable %zu keys: %zu bytes (keys not included); after deleting 99%%: %zu bytes; "
           "fresh: %zu bytes; ratio %.2f\n",
           n, gfull, gafter, gfresh, (double)gafter / (double)gfresh);
    g_hash_table_destroy(g2);
    g_hash_table_destroy(h);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--mem") == 0)
        return mem_report(argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : 1000000);
    /* 10M takes minutes: perf/run_map.py filters sizes (--sizes) */
    static const int64_t sizes[] = {1000, 100000, 1000000, 10000000};
    static const struct { const char *name; rgb_body *body; } defs[] = {
        {"map/rg/insert", bm_rg_insert},   {"map/glib/insert", bm_gh_insert},
        {"map/rg/hit", bm_rg_hit},         {"map/glib/hit", bm_gh_hit},
        {"map/rg/miss", bm_rg_miss},       {"map/glib/miss", bm_gh_miss},
        {"map/rg/delete", bm_rg_delete},   {"map/glib/delete", bm_gh_delete},
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
        rgb_register(&(rgb_def){.name = defs[i].name, .body = defs[i].body,
                                .args = sizes, .nargs = 4});
    return rgb_main(argc, argv);
}
