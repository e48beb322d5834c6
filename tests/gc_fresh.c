/* tests/gc_fresh.c — the inline barrier's fresh window (regio/gc.h
 * rg_gc_tls_fresh): while a cycle marks, rg_write stores a pointer into a
 * slot that held NULL without the slow path when the pointer lies in the
 * window of blocks this thread allocated black.  The window must never
 * cover a block that is not fresh black: a survivor of the last sweep in
 * the same span is white while marking, and a store of it that skipped the
 * shade could lose it.  The test makes spans with a survivor every tenth
 * block, holds a cycle in its marking (this thread acknowledges the barrier
 * at allocation slow paths but its roots only at a safepoint, which it
 * does not reach until done), allocates black from those spans and
 * checks the window against every survivor; then that the window is empty
 * once the cycle ended, and that nodes built through the inline path while
 * marking and survivors keep their contents through more cycles.
 */
#include "cu.h"
#include "gc_hold.h"

#include <stdint.h>

typedef struct node {
    struct node *l, *r;
    uint64_t key, check;
} node; /* 32 B: 2048 blocks per 64 KiB span */
static const size_t node_offs[] = {offsetof(node, l), offsetof(node, r)};
static const rg_type node_t = {"fresh-node", sizeof(node), node_offs, 2, NULL};
static const rg_type poke_t = {"fresh-poke", 16, NULL, 0, NULL};
static const size_t ptr_offs[] = {0};
static const rg_type ptr_t = {"fresh-ptr", sizeof(void *), ptr_offs, 1, NULL};

#define NODES 6000 /* about three spans */
#define KEEP 10    /* a survivor every KEEP blocks */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29);
}

static int in_window(const void *p)
{
    return (uintptr_t)p - rg_gc_tls_fresh.lo < rg_gc_tls_fresh.len;
}

static void test_window_skips_survivors(void)
{
    rg_thread_attach();
    void **keep = rg_new_array(&ptr_t, NODES / KEEP + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(keep);
    rg_root *root = rg_root_add(&keep);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    size_t nkeep = 0;
    for (size_t i = 0; i < NODES; i++) {
        node *n = rg_new(&node_t);
        CU_ASSERT_PTR_NOT_NULL_FATAL(n);
        n->key = i;
        n->check = mix(i);
        if (i % KEEP == KEEP - 1)
            rg_write(keep, &keep[nkeep++], n);
    }
    rg_gc();
    rg_gc(); /* the dropped nodes are free blocks between survivors now */
    CU_ASSERT_EQUAL(rg_gc_tls_fresh.len, 0);

    /* poke objects only until marking is open, so the nodes' spans are
     * not cached white */
    gc_hold hold;
    CU_ASSERT_FATAL(gc_hold_start(&hold, &poke_t));
    CU_ASSERT_FALSE(atomic_load(&hold.done)); /* held by our roots */

    /* black from the survivors' spans: fresh blocks come from free ones */
    node *fresh = rg_new(&node_t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fresh);
    CU_ASSERT_EQUAL(rgi_gc_is_marked(fresh), 1);
    CU_ASSERT(rg_gc_tls_fresh.len > 0);
    CU_ASSERT(in_window(fresh));
    size_t bad = 0, inwin = 0;
    node *chain = fresh;
    for (int i = 0; i < 4 * KEEP; i++) {
        node *n = rg_new(&node_t);
        CU_ASSERT_PTR_NOT_NULL_FATAL(n);
        inwin += in_window(n);
        n->key = (uint64_t)i;
        n->check = mix((uint64_t)i + 7);
        rg_write(n, &n->l, chain); /* the inline path when n and chain are in the window */
        chain = n;
    }
    CU_ASSERT(inwin > 0);
    for (size_t k = 0; k < nkeep; k++) {
        node *s = keep[k];
        bad += in_window(s);
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* a survivor stored into a fresh node's NULL slot: must be shaded */
    rg_write(fresh, &fresh->r, keep[0]);
    CU_ASSERT_EQUAL(rgi_gc_is_marked(keep[0]), 1);
    rg_root *croot = rg_root_add(&chain);
    CU_ASSERT_PTR_NOT_NULL_FATAL(croot);

    CU_ASSERT_FATAL(gc_hold_release(&hold));
    rg_safepoint(); /* the sweep acknowledgement, if still due */
    CU_ASSERT_EQUAL(rg_gc_tls_fresh.len, 0);

    rgi_gc_verify_next = 1;
    uint64_t f0 = atomic_load(&rgi_gc_verify_failures);
    for (int c = 0; c < 3; c++)
        rg_gc();
    CU_ASSERT_EQUAL(atomic_load(&rgi_gc_verify_failures), f0);
    CU_ASSERT_EQUAL(rg_gc_tls_fresh.len, 0);
    size_t damaged = 0, n = 0;
    for (node *c = chain; c; c = c->l, n++)
        damaged += c != fresh && c->check != mix(c->key + 7);
    CU_ASSERT_EQUAL(n, 4 * KEEP + 1);
    CU_ASSERT_EQUAL(damaged, 0);
    for (size_t k = 0; k < nkeep; k++) {
        node *s = keep[k];
        damaged += s->check != mix(s->key) || s->key % KEEP != KEEP - 1;
    }
    CU_ASSERT_EQUAL(damaged, 0);
    CU_ASSERT_PTR_EQUAL(fresh->r, keep[0]);
    rg_root_remove(croot);
    rg_root_remove(root);
    rg_thread_detach();
}

int main(void)
{
    static const cu_test tests[] = {
        {"the fresh window covers no survivor of the last sweep", test_window_skips_survivors},
        {NULL, NULL},
    };
    return cu_run("gc_fresh", tests);
}
