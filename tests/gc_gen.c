/* tests/gc_gen.c — the generational mode (regio/gc.h rule 9): sticky marks,
 * cards marked by rg_write while the collector is idle, minor cycles that
 * trace from the roots and the old objects on marked cards, full cycles
 * that clear every mark.  Each test fails when the rule it names is broken:
 * a minor cycle that skipped the cards would free the young children of
 * old objects (their contents are checked, and freed blocks are poisoned
 * under ASan); one that cleared the marks would not keep old objects; a
 * card scan that skipped a large object's far elements would lose them.
 * Under RG_GC_GEN=0 every cycle is full and the suite checks only that.
 */
#include "cu.h"
#include "gc_hold.h"
#include "gc_nodes.h"

#include <stdint.h>
#include <stdlib.h>

static const rg_type poke_t = {"gen-poke", 16, NULL, 0, NULL};

/* A node that must be there: allocated (the suite stops otherwise). */
static node *mk_ok(uint64_t id)
{
    node *n = mk(id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    return n;
}

/* n is the node made with this id, its checksum intact. */
static int node_is(const node *n, uint64_t id)
{
    return n != NULL && n->id == id && node_ok(n);
}

static bool gen_on(void)
{
    const char *v = getenv("RG_GC_GEN");
    return !(v && (!strcmp(v, "0") || !strcmp(v, "off")));
}

/* A cycle of the given kind, verified when every other thread is parked
 * (must_verify: they are); returns the verifier's failures. */
static uint64_t verified_if(bool full, bool must_verify)
{
    uint64_t f0 = atomic_load(&rgi_gc_verify_failures), r0 = atomic_load(&rgi_gc_verify_runs);
    atomic_store(&rgi_gc_verify_next, 1);
    CU_ASSERT_EQUAL(rgi_gc_collect(full), gen_on());
    if (must_verify)
        CU_ASSERT(atomic_load(&rgi_gc_verify_runs) > r0);
    return atomic_load(&rgi_gc_verify_failures) - f0;
}

static uint64_t verified(bool full)
{
    return verified_if(full, true);
}

/* Old objects keep their marks through a minor cycle, and the young
 * children stored into them with rg_write survive it (their cards). */
static void test_young_children_of_old_objects(void)
{
    enum { N = 4000 };
    void **old = rg_new_array(&ptr_t, N); /* 32 KiB: a small block over 64 cards */
    CU_ASSERT_PTR_NOT_NULL_FATAL(old);
    rg_root *r = rg_root_add(&old);
    node *keep = mk_ok(99999);
    rg_root *rk = rg_root_add(&keep);
    rg_gc();
    CU_ASSERT_EQUAL(rgi_gc_is_marked(old), gen_on() ? 1 : 0);
    for (size_t i = 0; i < N; i += 3)
        rg_write(old, &old[i], mk_ok(i)); /* young, reachable only through old */
    for (int i = 0; i < 20000; i++)
        (void)mk_ok(1u << 30); /* young garbage */
    uint64_t m0 = rgi_gc_minor_cycles();
    CU_ASSERT_EQUAL(verified(false), 0);
    CU_ASSERT_EQUAL(rgi_gc_minor_cycles(), m0 + (gen_on() ? 1 : 0));
    size_t bad = 0, marked = 0;
    for (size_t i = 0; i < N; i++) {
        bad += i % 3 == 0 ? !node_is(old[i], i) : old[i] != NULL;
        marked += i % 3 == 0 && rgi_gc_is_marked(old[i]) == 1;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(marked, 0); /* a minor cycle promotes nothing */
    /* still young: the next minor cycle finds them through the cards the
     * last one kept marked (nothing stored into old since) */
    CU_ASSERT_EQUAL(verified(false), 0);
    for (size_t i = 0; i < N; i += 3)
        bad += !node_is(old[i], i);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(node_is(keep, 99999));
    rg_root_remove(rk);
    rg_root_remove(r);
}

/* A minor cycle frees young garbage but keeps an old object that died; a
 * full cycle frees it. */
static void test_dead_old_objects_wait_for_a_full_cycle(void)
{
    node *n = mk_ok(1);
    rg_root *r = rg_root_add(&n);
    rg_gc();
    rg_root_remove(r);
    node *dead_old = n;
    n = NULL;
    node *young = mk_ok(2);
    (void)young;
    CU_ASSERT_EQUAL(verified(false), 0);
    if (gen_on()) {
        CU_ASSERT_EQUAL(rgi_gc_is_marked(dead_old), 1); /* still there */
        CU_ASSERT(node_is(dead_old, 1));
        CU_ASSERT(rgi_gc_is_marked(young) != 1);        /* freed by the sweep */
    }
    CU_ASSERT_EQUAL(verified(true), 0);
    /* freed: unmarked, or its span gone (-1); a kept one stays marked */
    CU_ASSERT(rgi_gc_is_marked(dead_old) != 1);
}

/* A large old array: a minor cycle scans only the elements on marked
 * cards, and must find a child stored at either end. */
static void test_large_object_cards(void)
{
    enum { N = 300000 }; /* 2.4 MB: a run of its own */
    void **arr = rg_new_array(&ptr_t, N);
    CU_ASSERT_PTR_NOT_NULL_FATAL(arr);
    rg_root *r = rg_root_add(&arr);
    rg_gc();
    static const size_t at[] = {0, 63, 64, 65535, 150001, N - 1};
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++)
        rg_write(arr, &arr[at[k]], mk_ok(at[k]));
    CU_ASSERT_EQUAL(verified(false), 0);
    CU_ASSERT_EQUAL(verified(false), 0);
    size_t bad = 0;
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++)
        bad += !node_is(arr[at[k]], at[k]);
    CU_ASSERT_EQUAL(bad, 0);
    /* overwritten children die at the next full cycle, the new ones stay */
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++)
        rg_write(arr, &arr[at[k]], mk_ok(at[k] + 1));
    CU_ASSERT_EQUAL(verified(false), 0);
    CU_ASSERT_EQUAL(verified(true), 0);
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++)
        bad += !node_is(arr[at[k]], at[k] + 1);
    CU_ASSERT_EQUAL(bad, 0);
    rg_root_remove(r);
}

/* While a minor cycle marks, a new object stored into an old one through
 * the inline path (a fresh black object into a NULL slot: no card, no
 * shade) is kept by that cycle and the ones after it. */
static void test_black_children_while_marking(void)
{
    rg_thread_attach();
    node *old = mk_ok(7);
    rg_root *r = rg_root_add(&old);
    rg_gc();
    gc_hold hold;
    CU_ASSERT_FATAL(gc_hold_start_kind(&hold, &poke_t, 1));
    node *chain = NULL;
    for (uint64_t i = 0; i < 500; i++) {
        node *n = mk_ok(i);
        rg_write(n, &n->a, chain);
        chain = n;
    }
    rg_write(old, &old->b, chain);
    chain = NULL;
    CU_ASSERT_FATAL(gc_hold_release(&hold));
    for (int c = 0; c < 3; c++)
        CU_ASSERT_EQUAL(verified(false), 0);
    size_t n = 0, bad = 0;
    for (node *c = old->b; c; c = c->a, n++)
        bad += !node_is(c, 499 - n);
    CU_ASSERT_EQUAL(n, 500);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(node_is(old, 7));
    rg_root_remove(r);
    rg_thread_detach();
}

/* Threads rewire a shared graph of old and young objects while minor and
 * full cycles run; every node's checksum holds after each cycle, and the
 * verifier finds no old object pointing to an unmarked one. */
enum { SLOTS = 2048, ROUNDS = 200000 };
static void **table;
static atomic_int finished;

static void *mutator(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    rg_thread_attach();
    for (int i = 0; i < ROUNDS; i++) {
        seed = mix(seed);
        size_t k = seed % SLOTS;
        node *n = mk(seed >> 20); /* no CUnit assertion off the main thread */
        if (n == NULL)
            continue;
        /* a child taken from another slot: old-to-old, young-to-old */
        node *other = __atomic_load_n((node **)&table[(seed >> 8) % SLOTS], __ATOMIC_ACQUIRE);
        rg_write(n, &n->a, other);
        rg_write(table, &table[k], n);
        if ((i & 63) == 0)
            rg_safepoint();
    }
    atomic_fetch_add(&finished, 1);
    rg_thread_detach();
    return NULL;
}

/* Checks each slot's chain to depth 8. */
static size_t check_table(void)
{
    size_t bad = 0;
    for (size_t k = 0; k < SLOTS; k++) {
        node *n = __atomic_load_n((node **)&table[k], __ATOMIC_ACQUIRE);
        for (int d = 0; n && d < 8; d++, n = __atomic_load_n(&n->a, __ATOMIC_ACQUIRE))
            if (n->check != mix(n->id)) {
                bad++;
                break;
            }
    }
    return bad;
}

static void test_threads_rewire(void)
{
    table = rg_new_array(&ptr_t, SLOTS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(table);
    rg_root *r = rg_root_add(&table);
    pthread_t th[2];
    atomic_store(&finished, 0);
    for (int t = 0; t < 2; t++)
        CU_ASSERT_FATAL(pthread_create(&th[t], NULL, mutator, (void *)(uintptr_t)(t + 1)) == 0);
    size_t bad = 0;
    uint64_t fails = 0;
    int cycles = 0;
    for (; cycles < 12 || atomic_load(&finished) < 2; cycles++) {
        fails += verified_if(cycles % 4 == 3, false);
        bad += check_table();
    }
    fprintf(stderr, "(%d cycles, %llu minor in all) ", cycles, (unsigned long long)rgi_gc_minor_cycles());
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    fails += verified(false);
    bad += check_table();
    fails += verified(true);
    bad += check_table();
    CU_ASSERT_EQUAL(fails, 0);
    CU_ASSERT_EQUAL(bad, 0);
    rg_root_remove(r);
}

int main(void)
{
    static const cu_test tests[] = {
        {"young children of old objects survive a minor cycle", test_young_children_of_old_objects},
        {"dead old objects wait for a full cycle", test_dead_old_objects_wait_for_a_full_cycle},
        {"a large object's cards", test_large_object_cards},
        {"black children stored while a minor cycle marks", test_black_children_while_marking},
        {"threads rewire old and young objects", test_threads_rewire},
        {NULL, NULL},
    };
    return cu_run("gc_gen", tests);
}
