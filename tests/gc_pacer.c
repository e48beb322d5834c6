/* tests/gc_pacer.c — the heap goal's base (regio/gc.h rule 8): the goal is
 * GC_PERCENT past what the last cycle's marking reached, not past the heap
 * it kept, which also holds everything allocated black while it marked.
 * The test keeps 8 MiB live, holds a cycle in its marking (this thread
 * acknowledges the barrier at allocation slow paths, its roots only at a
 * safepoint), allocates 32 MiB of garbage black meanwhile, and checks the
 * goal that cycle sets: about twice the 8 MiB, where counting the garbage
 * would make it twice 40 MiB.  The next cycle frees the garbage.
 */
#include "cu.h"
#include "gc_hold.h"

#include <stdint.h>

typedef struct node {
    struct node *next;
    uint64_t pad[3];
} node; /* 32 B blocks */
static const size_t node_offs[] = {offsetof(node, next)};
static const rg_type node_t = {"pacer-node", sizeof(node), node_offs, 1, NULL};
static const rg_type poke_t = {"pacer-poke", 16, NULL, 0, NULL};

#define MIB ((size_t)1 << 20)
#define LIVE (8 * MIB)
#define GARBAGE (32 * MIB)

static uint64_t cycles0;

static int cycle_ended(void *arg)
{
    (void)arg;
    return rgi_gc_cycles() != cycles0;
}

static void test_goal_from_traced_heap(void)
{
    rg_set_gc_percent(100);
    rg_thread_attach();
    node *head = NULL;
    rg_root *root = rg_root_add(&head);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    for (size_t i = 0; i < LIVE / sizeof(node); i++) {
        node *n = rg_new(&node_t);
        CU_ASSERT_PTR_NOT_NULL_FATAL(n);
        rg_write(n, &n->next, head);
        head = n;
    }
    rg_gc();
    rg_gc();

    gc_hold hold;
    CU_ASSERT_FATAL(gc_hold_start(&hold, &poke_t));
    /* the cycle we allocate black in (rg_gc's, or one the pacer started
     * first) cannot end before our next safepoint */
    cycles0 = rgi_gc_cycles();
    /* garbage, allocated black: the held cycle keeps all of it */
    for (size_t i = 0; i < GARBAGE / sizeof(node); i++) {
        node *n = rg_new(&node_t);
        CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    }
    CU_ASSERT_FALSE(atomic_load(&hold.done)); /* held by our roots */
    CU_ASSERT_EQUAL(rgi_gc_cycles(), cycles0);
    /* safepoints until that cycle ended; no other can end before our next
     * safepoint (it needs our roots), so its goal is the one read here */
    gc_hold_safepoints_until(cycle_ended, NULL);
    rgi_gc_stats st;
    rgi_gc_read_stats(&st);
    CU_ASSERT_FATAL(rgi_gc_cycles() == cycles0 + 1);
    /* twice the live 8 MiB, with room for the pokes and metadata; counting
     * the black garbage would give about 80 MiB */
    CU_ASSERT(st.next_gc >= 2 * LIVE - LIVE / 8);
    CU_ASSERT(st.next_gc < 2 * LIVE + 4 * MIB);
    CU_ASSERT_FATAL(gc_hold_release(&hold));

    rg_gc(); /* frees the garbage */
    rgi_gc_read_stats(&st);
    CU_ASSERT(st.live_bytes < LIVE + 4 * MIB);
    size_t n = 0;
    for (node *c = head; c; c = c->next)
        n++;
    CU_ASSERT_EQUAL(n, LIVE / sizeof(node));
    rg_root_remove(root);
    rg_thread_detach();
}

int main(void)
{
    static const cu_test tests[] = {
        {"the goal grows from the traced heap, not from what a cycle allocated black", test_goal_from_traced_heap},
        {NULL, NULL},
    };
    return cu_run("gc_pacer", tests);
}
