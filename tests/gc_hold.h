/* tests/gc_hold.h — holding a cycle in its marking, for the collector
 * suites that look at a thread while it allocates black: rg_gc() runs on a
 * thread of its own, and the calling thread, attached and running, gives
 * the cycle its barrier acknowledgement at allocation slow paths (no
 * safepoint needed) but its roots only at a safepoint, which it does not
 * reach until it lets the cycle go. */
#ifndef REGIO_TESTS_GC_HOLD_H
#define REGIO_TESTS_GC_HOLD_H

#include "../core/gc_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

typedef struct gc_hold {
    pthread_t th;
    atomic_int done; /* rg_gc() returned */
    int minor;       /* hold a minor cycle (rgi_gc_collect) */
} gc_hold;

static inline void *gc_hold_collector(void *arg)
{
    gc_hold *h = arg;
    if (h->minor)
        rgi_gc_collect(false);
    else
        rg_gc();
    atomic_store(&h->done, 1);
    return NULL;
}

/* Starts the cycle and allocates objects of poke (a pointer-free type the
 * test allocates nothing else of) until this thread allocates black, at
 * most about 10 s.  Returns 1 when marking is open and held, 0 if not. */
static inline int gc_hold_start_kind(gc_hold *h, const rg_type *poke, int minor)
{
    atomic_store(&h->done, 0);
    h->minor = minor;
    if (pthread_create(&h->th, NULL, gc_hold_collector, h) != 0)
        return 0;
    for (int i = 0; i < 100000; i++) {
        for (int k = 0; k < 100; k++) {
            void *p = rg_new(poke);
            if (p == NULL)
                return 0;
            if (rgi_gc_is_marked(p) == 1)
                return 1;
        }
        usleep(100);
    }
    return 0;
}

static inline int gc_hold_start(gc_hold *h, const rg_type *poke)
{
    return gc_hold_start_kind(h, poke, 0);
}

/* Passes safepoints (about 2 s at most) until cond(arg) holds. */
static inline int gc_hold_safepoints_until(int (*cond)(void *), void *arg)
{
    for (int i = 0; i < 20000 && !cond(arg); i++) {
        rg_safepoint();
        usleep(100);
    }
    return cond(arg);
}

static inline int gc_hold_collector_done(void *arg)
{
    return atomic_load(&((gc_hold *)arg)->done);
}

/* Lets the cycle go: safepoints until rg_gc() returned, then joins. */
static inline int gc_hold_release(gc_hold *h)
{
    int ok = gc_hold_safepoints_until(gc_hold_collector_done, h);
    if (ok)
        pthread_join(h->th, NULL);
    return ok;
}

#endif /* REGIO_TESTS_GC_HOLD_H */
