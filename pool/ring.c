/* pool/ring.c — the pools' shared ring of object pointers.
 *
 * Algorithm: Dmitry Vyukov's bounded MPMC queue ("Bounded MPMC queue",
 * 1024cores.net, 2010).  Slot i starts with seq = i.  A producer at position
 * pos may fill slot pos & mask when its seq == pos and publishes it with
 * seq = pos + 1; a consumer at pos takes it when seq == pos + 1 and frees it
 * with seq = pos + size.  Bulk: a thread checks the n stamps ahead of the
 * position it read and claims all n with one CAS; the stamps cannot change
 * between the check and a successful CAS, because only the owner of a
 * position moves its stamp forward and positions never repeat (64-bit).
 *
 * Guarantee: lock-free; each pointer put is got exactly once; all-or-nothing
 * calls never move a partial batch.  A consumer that finds a slot unpublished
 * while tail is past it (a producer between its CAS and its stamp store)
 * spins instead of reporting "empty", so a waiter that registered before
 * looking (see objpool.c) can never miss a put: (CAS tail; load waiters) and
 * (add waiters; load tail) are seq_cst pairs.
 */
#include "pool_internal.h"

int rgi_ring_init(rgi_ring *r, size_t min_size)
{
    size_t size = 2;
    while (size < min_size) {
        if (size > ((size_t)1 << 40))
            return -EINVAL;
        size <<= 1;
    }
    r->slots = rgi_arena_malloc(size * sizeof(rgi_ring_slot));
    if (r->slots == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < size; i++) {
        atomic_init(&r->slots[i].seq, i);
        r->slots[i].obj = NULL;
    }
    r->mask = size - 1;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return 0;
}

void rgi_ring_fini(rgi_ring *r)
{
    rgi_arena_free(r->slots);
    r->slots = NULL;
}

/* How many of the n positions from pos are free for producers (stamps say
 * so); *behind reports that the first busy one still holds an older lap
 * (the ring is full there) rather than being claimed by a faster producer. */
static inline unsigned free_run(rgi_ring *r, size_t pos, unsigned n, bool *behind)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        /* acquire: pairs with the consumer's release that freed the slot */
        size_t seq = atomic_load_explicit(&r->slots[(pos + i) & r->mask].seq, memory_order_acquire);
        if (seq != pos + i) {
            *behind = (intptr_t)(seq - (pos + i)) < 0;
            return i;
        }
    }
    *behind = false;
    return n;
}

static unsigned ring_put(rgi_ring *r, void *const *objs, unsigned n, bool all)
{
    if (n == 0)
        return 0;
    size_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
    for (;;) {
        bool behind;
        unsigned k = free_run(r, pos, n, &behind);
        if (k < n && !behind) { /* another producer moved on: catch up */
            pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
            continue;
        }
        if (k == 0 || (all && k < n))
            return 0; /* full */
        /* seq_cst: the producers' half of the waiter Dekker pair */
        if (atomic_compare_exchange_weak_explicit(&r->tail, &pos, pos + k, memory_order_seq_cst,
                                                  memory_order_relaxed)) {
            for (unsigned i = 0; i < k; i++) {
                rgi_ring_slot *s = &r->slots[(pos + i) & r->mask];
                s->obj = objs[i];
                /* release: publishes obj; pairs with the consumer's acquire */
                atomic_store_explicit(&s->seq, pos + i + 1, memory_order_release);
            }
            return k;
        }
    }
}

static unsigned ring_get(rgi_ring *r, void **objs, unsigned n, bool all)
{
    if (n == 0)
        return 0;
    unsigned step = 0;
    size_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);
    for (;;) {
        unsigned k;
        bool behind = false;
        for (k = 0; k < n; k++) {
            /* acquire: pairs with the producer's release that published the slot */
            size_t seq = atomic_load_explicit(&r->slots[(pos + k) & r->mask].seq, memory_order_acquire);
            if (seq != pos + k + 1) {
                behind = (intptr_t)(seq - (pos + k + 1)) < 0;
                break;
            }
        }
        if (k < n && !behind) { /* another consumer moved on */
            pos = atomic_load_explicit(&r->head, memory_order_relaxed);
            continue;
        }
        if (k < n && (k == 0 || all)) {
            /* Not published: empty, or a producer between CAS and store.
             * seq_cst: the consumers' half of the waiter Dekker pair. */
            size_t tail = atomic_load_explicit(&r->tail, memory_order_seq_cst);
            if ((intptr_t)(tail - (pos + (all ? n : 1))) < 0)
                return 0;
            rgi_spin(&step);
            pos = atomic_load_explicit(&r->head, memory_order_relaxed);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&r->head, &pos, pos + k, memory_order_seq_cst,
                                                  memory_order_relaxed)) {
            for (unsigned i = 0; i < k; i++) {
                rgi_ring_slot *s = &r->slots[(pos + i) & r->mask];
                objs[i] = s->obj;
                /* release: frees the slot for the next lap; pairs with the producer's acquire */
                atomic_store_explicit(&s->seq, pos + i + r->mask + 1, memory_order_release);
            }
            return k;
        }
    }
}

unsigned rgi_ring_put(rgi_ring *r, void *const *objs, unsigned n) { return ring_put(r, objs, n, true); }
unsigned rgi_ring_put_burst(rgi_ring *r, void *const *objs, unsigned n) { return ring_put(r, objs, n, false); }
unsigned rgi_ring_get(rgi_ring *r, void **objs, unsigned n) { return ring_get(r, objs, n, true); }
unsigned rgi_ring_get_burst(rgi_ring *r, void **objs, unsigned n) { return ring_get(r, objs, n, false); }

size_t rgi_ring_count(rgi_ring *r)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_seq_cst);
    size_t tail = atomic_load_explicit(&r->tail, memory_order_seq_cst);
    return tail - head > r->mask + 1 ? r->mask + 1 : tail - head; /* head read first: tail >= head */
}
