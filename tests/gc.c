/* tests/gc.c — the collector: one test per rule of the contract in
 * regio/gc.h, the verifier, finalizers, pacing, the limit rung, gcstress,
 * fault injection while marking, and a seeded multi-threaded graph-mutation
 * stress with checksums verified after every cycle. */
#include "cu.h"
#include "gc_internal.h"
#include "gc_nodes.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

/* Counts nodes reachable along a/b (a list or a tree), checking each. */
static size_t walk(const node *n, size_t *bad)
{
    size_t c = 0;
    while (n) {
        c++;
        if (!node_ok(n))
            (*bad)++;
        if (n->b)
            c += walk(n->b, bad);
        n = n->a;
    }
    return c;
}

/* Runs rg_gc() with the verifier armed; returns violations it found. */
static uint64_t gc_verified(void)
{
    uint64_t f0 = atomic_load(&rgi_gc_verify_failures), r0 = atomic_load(&rgi_gc_verify_runs);
    atomic_store(&rgi_gc_verify_next, 1);
    rg_gc();
    CU_ASSERT(atomic_load(&rgi_gc_verify_runs) > r0); /* every other thread was parked */
    return atomic_load(&rgi_gc_verify_failures) - f0;
}

/* ------------------------------------------------------------------------ */
static void test_new_zeroed_typed(void)
{
    node *n = rg_new(&node_t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_PTR_NULL(n->a);
    CU_ASSERT_PTR_NULL(n->b);
    CU_ASSERT_EQUAL(n->id, 0);
    CU_ASSERT_EQUAL(rgi_gc_object_check(n), true);
    CU_ASSERT_EQUAL(rgi_gc_object_check((char *)n + 8), false);
    int local;
    CU_ASSERT_EQUAL(rgi_gc_object_check(&local), false);
    node *arr = rg_new_array(&node_t, 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(arr);
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL(arr[i].id, 0);
    /* a reused block comes back zeroed */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 20000; i++) {
            node *m = mk((uint64_t)i + 1);
            CU_ASSERT_PTR_NOT_NULL_FATAL(m);
            CU_ASSERT_EQUAL(m->a, NULL);
            rg_write(m, &m->a, m);
        }
        rg_gc();
    }
    node *z = rg_new(&node_t);
    CU_ASSERT_EQUAL(z->a, NULL);
    CU_ASSERT_EQUAL(z->check, 0);
}

static void test_bad_input(void)
{
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_new(NULL));
    CU_ASSERT_EQUAL(errno, EINVAL);
    static const size_t bad_off[] = {20};
    static const rg_type bad = {"bad", 24, bad_off, 1, NULL};
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_new(&bad));
    CU_ASSERT_EQUAL(errno, EINVAL);
    static const size_t out_off[] = {24};
    static const rg_type out = {"out", 24, out_off, 1, NULL};
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_new(&out));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_new_array(&node_t, SIZE_MAX / 8));
    CU_ASSERT_EQUAL(errno, EOVERFLOW);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_root_add(NULL));
    CU_ASSERT_EQUAL(errno, EINVAL);
    rg_root_remove(NULL);
    CU_ASSERT_PTR_NULL(rg_clone(NULL, "x", 1));
    /* zero-size types and zero-length arrays give distinct objects */
    static const rg_type empty = {"empty", 0, NULL, 0, NULL};
    void *e1 = rg_new(&empty), *e2 = rg_new(&empty), *e3 = rg_new_array(&node_t, 0);
    CU_ASSERT(e1 && e2 && e3 && e1 != e2);
}

/* Rule 3 and the basic promise: what roots reach survives, the rest goes. */
static int fin_count;
static pthread_t fin_thread;
static int fin_thread_ok = 1;
static void count_fin(void *obj)
{
    (void)obj;
    fin_count++;
    if (!pthread_equal(pthread_self(), fin_thread))
        fin_thread_ok = 0;
}
static const rg_type fin_t = {"fin", sizeof(node), node_ptrs, 2, count_fin};

static void test_roots_keep_the_rest_goes(void)
{
    node *head = NULL;
    rg_root *r = rg_root_add(&head);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    for (uint64_t i = 0; i < 50000; i++) {
        node *n = mk(i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(n);
        rg_write(n, &n->a, head);
        head = n;
        if (i % 3 == 0)
            mk(i + 1000000); /* garbage */
    }
    rg_memstats ms0, ms1;
    rg_read_memstats(&ms0);
    CU_ASSERT_EQUAL(gc_verified(), 0);
    CU_ASSERT_EQUAL(gc_verified(), 0);
    rg_read_memstats(&ms1);
    CU_ASSERT(ms1.num_gc >= ms0.num_gc + 2);
    CU_ASSERT(ms1.frees > ms0.frees);
    CU_ASSERT(ms1.next_gc > 0);
    size_t bad = 0;
    CU_ASSERT_EQUAL(walk(head, &bad), 50000);
    CU_ASSERT_EQUAL(bad, 0);
    head = NULL;
    rg_root_remove(r);
    rg_gc();
    rgi_gc_stats st;
    rgi_gc_read_stats(&st);
    CU_ASSERT(st.live_objects < 50000); /* the list went */
}

/* Finalizers run after the sweep, on a thread at a safepoint (here the end
 * of rg_gc), never inside the collector; what they reach survives for them. */
static int fin_b_ok = 1, fin_b_seen;
static void check_fin(void *obj)
{
    node *n = obj;
    fin_b_seen++;
    if (n->a == NULL || !node_ok(n->a) || n->a->id != n->id + 1)
        fin_b_ok = 0;
}
static const rg_type check_fin_t = {"checkfin", sizeof(node), node_ptrs, 2, check_fin};

static void test_finalizers(void)
{
    fin_count = 0;
    fin_thread = pthread_self();
    for (int i = 0; i < 1000; i++) {
        node *n = rg_new(&fin_t);
        CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    }
    CU_ASSERT_EQUAL(fin_count, 0);
    rg_gc();
    CU_ASSERT_EQUAL(fin_count, 1000);
    CU_ASSERT(fin_thread_ok);
    rg_gc();
    CU_ASSERT_EQUAL(fin_count, 1000); /* once only */
    /* a finalizable object keeps what it reaches until its finalizer ran */
    for (uint64_t i = 0; i < 500; i++) {
        node *f = rg_new(&check_fin_t);
        node *m = mk(i * 2 + 1);
        f->id = i * 2;
        rg_write(f, &f->a, m);
    }
    rg_gc();
    CU_ASSERT_EQUAL(fin_b_seen, 500);
    CU_ASSERT(fin_b_ok);
    rg_gc();
    rg_gc();
}

/* Rule 2: a local stays valid until this thread's next safepoint, even when
 * another thread asks for a collection meanwhile. */
static atomic_int other_gc_done;
static void *other_gc(void *arg)
{
    (void)arg;
    rg_gc();
    atomic_store(&other_gc_done, 1);
    rg_thread_detach();
    return NULL;
}

static void test_locals_until_safepoint(void)
{
    fin_count = 0;
    fin_thread = pthread_self();
    node *local = rg_new(&fin_t); /* unreachable except from this local */
    local->id = 42;
    local->check = mix(42);
    atomic_store(&other_gc_done, 0);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, other_gc, NULL), 0);
    usleep(50000);
    /* the other thread's cycle cannot pass its handshakes without our ack */
    CU_ASSERT_EQUAL(atomic_load(&other_gc_done), 0);
    CU_ASSERT(node_ok(local));
    CU_ASSERT_EQUAL(fin_count, 0);
    while (!atomic_load(&other_gc_done)) {
        rg_safepoint();
        usleep(100);
    }
    rg_park();
    pthread_join(th, NULL);
    rg_unpark();
    rg_safepoint();
}

/* Rule 5: a parked thread never delays a cycle; unpark syncs with it. */
static atomic_int parked_ready, parked_go;
static node *parked_head;
static void *parked_thread(void *arg)
{
    (void)arg;
    rg_thread_attach();
    parked_head = NULL;
    rg_root *r = rg_root_add(&parked_head);
    for (uint64_t i = 0; i < 1000; i++) {
        node *n = mk(i);
        rg_write(n, &n->a, parked_head);
        parked_head = n;
    }
    rg_park();
    atomic_store(&parked_ready, 1);
    while (!atomic_load(&parked_go))
        usleep(1000);
    rg_unpark();
    size_t bad = 0;
    size_t c = walk(parked_head, &bad);
    node *n = mk(5000); /* allocating after unpark works */
    rg_write(n, &n->a, parked_head);
    parked_head = n;
    rg_safepoint();
    rg_root_remove(r);
    rg_thread_detach();
    return (void *)(uintptr_t)(c == 1000 && bad == 0 && n != NULL);
}

static void test_parked_never_delays(void)
{
    atomic_store(&parked_ready, 0);
    atomic_store(&parked_go, 0);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, parked_thread, NULL), 0);
    while (!atomic_load(&parked_ready))
        usleep(1000);
    uint64_t c0 = rgi_gc_cycles();
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(gc_verified(), 0); /* returns although that thread never reaches a safepoint */
    CU_ASSERT(rgi_gc_cycles() >= c0 + 5);
    atomic_store(&parked_go, 1);
    rg_park();
    void *ok;
    pthread_join(th, &ok);
    rg_unpark();
    CU_ASSERT_EQUAL((uintptr_t)ok, 1);
}

/* Pause accounting: the acknowledgements a running thread makes are
 * counted and split into preempted / blocked / clean, consistently with
 * memstats' PauseNs ring. */
static atomic_int pauses_stop, pauses_started;
static void *pauses_mutator(void *arg)
{
    (void)arg;
    rg_thread_attach();
    void *keep = NULL;
    rg_root *r = rg_root_add(&keep);
    atomic_store(&pauses_started, 1);
    while (!atomic_load(&pauses_stop)) {
        for (int i = 0; i < 64; i++)
            keep = mk((uint64_t)i);
        rg_safepoint();
    }
    rg_root_remove(r);
    rg_thread_detach();
    return NULL;
}

static void test_pause_accounting(void)
{
    CU_ASSERT_EQUAL(rg_gc_read_pauses(NULL), -EINVAL);
    rg_gc_pauses p0, p1;
    CU_ASSERT_EQUAL(rg_gc_read_pauses(&p0), 0);
    atomic_store(&pauses_stop, 0);
    atomic_store(&pauses_started, 0);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, pauses_mutator, NULL), 0);
    while (!atomic_load(&pauses_started))
        usleep(1000);
    for (int i = 0; i < 5; i++)
        rg_gc(); /* the mutator acknowledges every handshake itself */
    atomic_store(&pauses_stop, 1);
    rg_park();
    pthread_join(th, NULL);
    rg_unpark();
    CU_ASSERT_EQUAL(rg_gc_read_pauses(&p1), 0);
    CU_ASSERT(p1.num_gc >= p0.num_gc + 5);
    CU_ASSERT(p1.acks > p0.acks);
    CU_ASSERT(p1.acks_preempted <= p1.acks && p1.acks_blocked <= p1.acks);
    CU_ASSERT(p1.max_clean_ns <= p1.max_ns);
    CU_ASSERT(p1.max_ns > 0);
    rg_memstats ms;
    rg_read_memstats(&ms);
    for (uint64_t c = p0.num_gc; c < p1.num_gc && c < p0.num_gc + 256; c++) {
        CU_ASSERT(p1.clean_ns[c % 256] <= p1.pause_ns[c % 256]);
        CU_ASSERT(p1.pause_ns[c % 256] <= p1.max_ns);
        if (ms.num_gc == p1.num_gc)
            CU_ASSERT_EQUAL(p1.pause_ns[c % 256], ms.pause_ns[c % 256]);
    }
}

/* Rule 3: region pins are roots while their region lives. */
static void test_region_pins(void)
{
    fin_count = 0;
    fin_thread = pthread_self();
    rg_region *r = rg_region_new();
    node *n = rg_new(&fin_t);
    CU_ASSERT_EQUAL(rg_region_keep(r, n), 0);
    int x;
    CU_ASSERT_EQUAL(rg_region_keep(r, &x), -EINVAL);      /* not a heap object */
    CU_ASSERT_EQUAL(rg_region_keep(r, (char *)n + 8), -EINVAL);
    n = NULL;
    rg_gc();
    rg_gc();
    CU_ASSERT_EQUAL(fin_count, 0);
    rg_region_reset(r);
    rg_gc();
    CU_ASSERT_EQUAL(fin_count, 1);
    rg_region_free(r);
}

/* Large objects (own span, own run) are traced and freed. */
/* Large objects are scanned in bounded pieces (oblets), the rest going back
 * to the gray set: every target of a 32 MiB pointer array (a run) and of a
 * 100 KiB one (an arena span) survives cycles run by another thread, while
 * this thread moves targets across the arrays' halves with rg_write —
 * from parts not scanned yet to parts already scanned and back — between
 * safepoints. */
static atomic_int oblet_gc_done;
static void *oblet_gc(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        rg_gc();
    atomic_store(&oblet_gc_done, 1);
    rg_thread_detach();
    return NULL;
}

static size_t oblet_count(node **arr, size_t n, size_t *bad)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (arr[i]) {
            c++;
            if (!node_ok(arr[i]))
                (*bad)++;
        }
    return c;
}

static void test_large_oblets(void)
{
    const size_t nbig = ((size_t)32 << 20) / sizeof(void *), stride = 512;
    const size_t nmid = ((size_t)100 << 10) / sizeof(void *);
    node **big = NULL, **mid = NULL;
    rg_root *rb = rg_root_add((void **)&big), *rm = rg_root_add((void **)&mid);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rb);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rm);
    big = rg_new_array(&ptr_t, nbig);
    mid = rg_new_array(&ptr_t, nmid);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mid);
    size_t want = 0;
    for (size_t i = 0; i < nbig; i += stride) {
        node *n = mk(i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(n);
        rg_write(big, &big[i], n);
        want++;
    }
    node *last = mk(nbig); /* the very last slot: in the last oblet */
    CU_ASSERT_PTR_NOT_NULL_FATAL(last);
    rg_write(big, &big[nbig - 1], last);
    want++;
    for (size_t i = 0; i < nmid; i++) {
        node *n = mk(i + ((uint64_t)1 << 40));
        CU_ASSERT_PTR_NOT_NULL_FATAL(n);
        rg_write(mid, &mid[i], n);
    }
    rg_safepoint();

    atomic_store(&oblet_gc_done, 0);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, oblet_gc, NULL), 0);
    /* Move targets between halves until the other thread's cycles ended
     * (and at least one round of moves happened). */
    size_t half = nbig / 2, round = 0;
    do {
        for (size_t i = 0; i < half; i += stride) {
            size_t from = round % 2 ? i + 1 : i + half, to = round % 2 ? i + half : i + 1;
            node *n = big[from];
            if (n) {
                rg_write(big, &big[to], n);
                rg_write(big, &big[from], NULL);
            }
            node *m = mid[(i / stride) % nmid];
            rg_write(mid, &mid[(i / stride) % nmid], mid[nmid - 1 - (i / stride) % nmid]);
            rg_write(mid, &mid[nmid - 1 - (i / stride) % nmid], m);
            if ((i / stride) % 64 == 0)
                rg_safepoint();
        }
        round++;
        rg_safepoint();
    } while (!atomic_load(&oblet_gc_done) || round < 2);
    rg_park();
    pthread_join(th, NULL);
    rg_unpark();
    rg_safepoint();

    CU_ASSERT_EQUAL(gc_verified(), 0);
    size_t bad = 0;
    CU_ASSERT_EQUAL(oblet_count(big, nbig, &bad), want);
    CU_ASSERT_EQUAL(oblet_count(mid, nmid, &bad), nmid);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_PTR_EQUAL(big[nbig - 1], last);
    big = NULL;
    mid = NULL;
    rg_root_remove(rb);
    rg_root_remove(rm);
    rg_gc();
}

static void test_large(void)
{
    static const size_t slot_off[] = {0};
    static const rg_type slot_t = {"slot", sizeof(void *), slot_off, 1, NULL};
    void **big = NULL, **huge = NULL;
    rg_root *r1 = rg_root_add(&big), *r2 = rg_root_add(&huge);
    big = rg_new_array(&slot_t, 100000);       /* 800 KB: an arena span */
    huge = rg_new_array(&slot_t, 1000000);     /* 8 MB: a run */
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(huge);
    for (size_t i = 0; i < 100000; i += 97)
        rg_write(big, &big[i], mk(i));
    for (size_t i = 0; i < 1000000; i += 997)
        rg_write(huge, &huge[i], mk(i));
    CU_ASSERT_EQUAL(gc_verified(), 0);
    int bad = 0;
    for (size_t i = 0; i < 100000; i++)
        if (i % 97 == 0)
            bad += big[i] == NULL || ((node *)big[i])->id != i || !node_ok(big[i]);
        else
            bad += big[i] != NULL;
    for (size_t i = 0; i < 1000000; i += 997)
        bad += huge[i] == NULL || !node_ok(huge[i]);
    CU_ASSERT_EQUAL(bad, 0);
    rgi_gc_stats s0, s1;
    rgi_gc_read_stats(&s0);
    big = huge = NULL;
    rg_gc();
    rgi_gc_read_stats(&s1);
    CU_ASSERT(s1.span_bytes + 8000000 < s0.span_bytes);
    rg_root_remove(r1);
    rg_root_remove(r2);
}

/* The escape door. */
static void test_clone(void)
{
    rg_region *r = rg_region_new();
    char *s = rg_strdup(r, "escaping the request");
    static const rg_type bytes_t = {"bytes", 1, NULL, 0, NULL};
    char *h = rg_clone(&bytes_t, s, strlen(s) + 1);
    rg_region_free(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_STRING_EQUAL(h, "escaping the request");
    CU_ASSERT(rgi_gc_object_check(h));
    /* pointer fields survive a clone and are traced */
    node tmp = {mk(7), NULL, 1, mix(1)};
    node *c = rg_clone(&node_t, &tmp, sizeof tmp);
    rg_root *rt = rg_root_add(&c);
    rg_gc();
    CU_ASSERT(c->a && node_ok(c->a) && c->a->id == 7);
    rg_root_remove(rt);
}

/* The verifier reports a violation, and none after a correct termination.
 * The violation: a store behind the barrier's back after a cycle.  In the
 * generational mode n stays marked (old) and now points to an unmarked
 * object, on a card nobody marked; with RG_GC_GEN=0 the marks are cleared
 * after the cycle and the root's target is unmarked. */
static void test_verifier_detects(void)
{
    node *n = mk(1);
    rg_root *r = rg_root_add(&n);
    rg_gc();
    node *young = mk(2);
    n->a = young; /* no rg_write: on purpose */
    uint64_t f0 = atomic_load(&rgi_gc_verify_failures);
    CU_ASSERT(rgi_gc_verify_now() >= 1);
    CU_ASSERT(atomic_load(&rgi_gc_verify_failures) > f0);
    rg_write(n, &n->a, NULL); /* undone before any cycle could see it */
    CU_ASSERT_EQUAL(gc_verified(), 0);
    rg_root_remove(r);
}

/* GC percent: -1 turns pacing off; back on, allocation alone triggers. */
static void test_gc_percent(void)
{
    int prev = rg_set_gc_percent(-1);
    CU_ASSERT_EQUAL(prev, 100);
    CU_ASSERT_EQUAL(rg_set_gc_percent(-1), -1);
    rg_gc();
    uint64_t c0 = rgi_gc_cycles();
    for (int i = 0; i < 400000; i++) { /* ~13 MB of garbage */
        mk((uint64_t)i);
        if (i % 64 == 0)
            rg_safepoint();
    }
    CU_ASSERT_EQUAL(rgi_gc_cycles(), c0);
    rg_set_gc_percent(100);
    uint64_t t0 = rgi_now_ns();
    while (rgi_gc_cycles() == c0 && rgi_now_ns() - t0 < 20000000000ull) {
        for (int i = 0; i < 1000; i++)
            mk((uint64_t)i);
        rg_safepoint();
    }
    CU_ASSERT(rgi_gc_cycles() > c0); /* the pacer started one by itself */
    rg_memstats ms;
    rg_read_memstats(&ms);
    CU_ASSERT(ms.next_gc >= (4u << 20));
    CU_ASSERT(ms.gc_cpu_fraction >= 0 && ms.gc_cpu_fraction < 1.0);
}

/* The gray set cannot grow (limit): marking still completes by rescanning. */
static void test_gray_overflow(void)
{
    node *root = NULL;
    rg_root *r = rg_root_add(&root);
    /* a wide tree: many gray objects at once */
    root = mk(0);
    node *level[4096];
    int nl = 0;
    for (int i = 0; i < 4096; i++) {
        node *n = mk((uint64_t)i + 1);
        rg_write(n, &n->b, root->b);
        rg_write(root, &root->b, n);
        level[nl++] = n;
    }
    for (int i = 0; i < nl; i++)
        for (int k = 0; k < 4; k++) {
            node *m = mk((uint64_t)(i * 4 + k) + 100000);
            rg_write(m, &m->a, level[i]->a);
            rg_write(level[i], &level[i]->a, m);
        }
    atomic_store(&rgi_gc_fail_gray, 1);
    uint64_t v = gc_verified();
    atomic_store(&rgi_gc_fail_gray, 0);
    CU_ASSERT_EQUAL(v, 0);
    size_t bad = 0;
    CU_ASSERT_EQUAL(walk(root, &bad), 1 + 4096 + 4096 * 4);
    CU_ASSERT_EQUAL(bad, 0);
    root = NULL;
    rg_root_remove(r);
}

/* Page-source faults while the heap grows and cycles mark concurrently:
 * allocations fail cleanly (NULL + ENOMEM), the heap stays intact. */
static atomic_int faults_stop;
static void *gc_loop(void *arg)
{
    (void)arg;
    while (!atomic_load(&faults_stop))
        rg_gc();
    rg_thread_detach();
    return NULL;
}

static void test_fault_injection(void)
{
    node *head = NULL;
    rg_root *r = rg_root_add(&head);
    size_t n = 0, fails = 0;
    rg_gc();
    rg_release_memory();
    atomic_store(&faults_stop, 0);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, gc_loop, NULL), 0);
    uint64_t injected0 = rgi_fault_inject(0, 300, 12345);
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < 40000; i++) {
            node *x = mk(n);
            if (x == NULL) {
                CU_ASSERT_EQUAL(errno, ENOMEM);
                fails++;
                continue;
            }
            rg_write(x, &x->a, head);
            head = x;
            n++;
            if (i % 100 == 0)
                rg_safepoint();
            if (i % 2000 == 0) { /* runs always commit: faults hit these */
                node **big = rg_new_array(&ptr_t, 300000);
                if (big == NULL) {
                    CU_ASSERT_EQUAL(errno, ENOMEM);
                    fails++;
                } else {
                    rg_write(big, &big[0], head);
                    CU_ASSERT_PTR_NULL(big[1]);
                }
            }
        }
    }
    uint64_t injected = rgi_fault_inject(0, 0, 0) - injected0;
    atomic_store(&faults_stop, 1);
    rg_park();
    pthread_join(th, NULL);
    rg_unpark();
    size_t bad = 0;
    CU_ASSERT_EQUAL(walk(head, &bad), n);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(gc_verified(), 0);
    CU_ASSERT(fails > 0);
    head = NULL;
    rg_root_remove(r);
    printf("(%llu faults injected, %zu allocations failed) ", (unsigned long long)injected, fails);
}

/* gcstress: a full cycle at every safepoint. */
static void test_gcstress(void)
{
    node *head = NULL;
    rg_root *r = rg_root_add(&head);
    int prev = rgi_opt.gcstress;
    rgi_opt.gcstress = 1;
    uint64_t c0 = rgi_gc_cycles();
    for (uint64_t i = 0; i < 300; i++) {
        node *x = mk(i);
        node *y = mk(i + 7); /* held in a local across the next allocation */
        rg_write(x, &x->b, y);
        rg_write(x, &x->a, head);
        head = x;
        if (i % 3 == 0 && head->a)
            rg_write(head, &head->a, head->a->a); /* drop one */
        rg_safepoint();
    }
    rgi_opt.gcstress = prev;
    CU_ASSERT(rgi_gc_cycles() >= c0 + 300);
    size_t bad = 0;
    walk(head, &bad);
    CU_ASSERT_EQUAL(bad, 0);
    head = NULL;
    rg_root_remove(r);
}

/* ------------------------------------------------------------------------
 * Randomized graph mutation with several threads.
 * ---------------------------------------------------------------------- */
enum { NTHREADS = 4, SLOTS = 64, SHARED = 256 };
static node **shared; /* a heap array of SHARED node pointers, rooted by main */
static atomic_int stress_stop;
static atomic_uint_fast64_t stress_bad, stress_ops, stress_checks;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void check_tree(const node *n, int depth, uint64_t *bad, uint64_t *checks)
{
    for (; n && depth < 64; depth++) {
        (*checks)++;
        if (!node_ok(n))
            (*bad)++;
        const node *b = __atomic_load_n(&n->b, __ATOMIC_ACQUIRE);
        if (b && depth < 8)
            check_tree(b, depth + 1, bad, checks);
        n = __atomic_load_n(&n->a, __ATOMIC_ACQUIRE);
    }
}

static void *stress_thread(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    rg_thread_attach();
    node **mine = NULL; /* this thread's heap table, rooted */
    rg_root *r = rg_root_add(&mine);
    mine = rg_new_array(&ptr_t, SLOTS);
    uint64_t id = (uint64_t)(uintptr_t)arg << 40, bad = 0, checks = 0, ops = 0;
    uint64_t last_cycle = rgi_gc_cycles();
    while (!atomic_load(&stress_stop)) {
        for (int k = 0; k < 32; k++, ops++) {
            uint64_t x = rnd(&seed);
            int i = (int)(x % SLOTS), j = (int)((x >> 8) % SHARED);
            switch ((x >> 16) % 8) {
            case 0: case 1: { /* new node linked in front of a slot */
                node *n = mk(id++);
                if (!n) break;
                rg_write(n, &n->a, mine[i]);
                rg_write(mine, &mine[i], n);
                break;
            }
            case 2: { /* publish to the shared table */
                rg_write(shared, &shared[j], mine[i]);
                break;
            }
            case 3: { /* take from the shared table, link below one of ours */
                node *s = __atomic_load_n(&shared[j], __ATOMIC_ACQUIRE);
                node *m = mine[i];
                if (s && m)
                    rg_write(m, &m->b, s);
                else if (s)
                    rg_write(mine, &mine[i], s);
                break;
            }
            case 4: { /* drop a chain tail */
                node *m = mine[i];
                if (m)
                    rg_write(m, &m->a, NULL);
                break;
            }
            case 5: { /* cut the shared slot */
                rg_write(shared, &shared[j], NULL);
                break;
            }
            case 6: { /* hold a local across allocations, then link it */
                node *s = __atomic_load_n(&shared[j], __ATOMIC_ACQUIRE);
                rg_write(shared, &shared[j], NULL);
                node *n = mk(id++);
                for (int q = 0; q < 4; q++)
                    mk(id++);
                if (n && s) {
                    if (!node_ok(s))
                        bad++;
                    rg_write(n, &n->b, s);
                    rg_write(mine, &mine[i], n);
                }
                break;
            }
            case 7: /* an occasional big array */
                if ((x >> 24) % 64 == 0) {
                    node **arr = rg_new_array(&ptr_t, 5000 + (x >> 40) % 10000);
                    if (arr) {
                        rg_write(arr, &arr[7], mine[i]);
                        rg_write(mine, &mine[(i + 1) % SLOTS], arr[7]);
                    }
                }
                break;
            }
        }
        rg_safepoint();
        uint64_t c = rgi_gc_cycles();
        if (c != last_cycle) { /* verify after every cycle */
            last_cycle = c;
            for (int i = 0; i < SLOTS; i++)
                check_tree(mine[i], 0, &bad, &checks);
        }
        if ((rnd(&seed) & 255) == 0) { /* block for a while, parked */
            rg_park();
            usleep(200);
            rg_unpark();
        }
        if ((rnd(&seed) & 1023) == 0)
            rg_gc();
    }
    for (int i = 0; i < SLOTS; i++)
        check_tree(mine[i], 0, &bad, &checks);
    atomic_fetch_add(&stress_bad, bad);
    atomic_fetch_add(&stress_checks, checks);
    atomic_fetch_add(&stress_ops, ops);
    rg_root_remove(r);
    rg_thread_detach();
    return NULL;
}

static void test_stress_threads(void)
{
    rg_root *r = rg_root_add(&shared);
    shared = rg_new_array(&ptr_t, SHARED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(shared);
    atomic_store(&stress_stop, 0);
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, stress_thread, (void *)(uintptr_t)(i + 1)), 0);
    uint64_t c0 = rgi_gc_cycles();
    rg_park(); /* main blocks in sleep/join: parked */
    uint64_t t0 = rgi_now_ns();
    unsigned secs = RGI_TSAN ? 3 : 2;
    while (rgi_now_ns() - t0 < secs * 1000000000ull) {
        usleep(100000);
        rg_unpark();
        rg_gc(); /* main forces cycles too */
        rg_park();
    }
    atomic_store(&stress_stop, 1);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    rg_unpark();
    CU_ASSERT_EQUAL(gc_verified(), 0);
    printf("(%llu ops, %llu cycles, %llu node checks) ", (unsigned long long)atomic_load(&stress_ops),
           (unsigned long long)(rgi_gc_cycles() - c0), (unsigned long long)atomic_load(&stress_checks));
    CU_ASSERT_EQUAL(atomic_load(&stress_bad), 0);
    CU_ASSERT(rgi_gc_cycles() > c0 + 5);
    for (int j = 0; j < SHARED; j++) {
        node *s = shared[j];
        if (s)
            CU_ASSERT(node_ok(s));
    }
    shared = NULL;
    rg_root_remove(r);
    rg_gc();
}

/* The memory limit: the collector's rung lets a program that allocates
 * garbage run within a limit far below what it allocates in total. */
static void test_limit_rung(void)
{
    rg_gc();
    rg_memstats ms;
    rg_read_memstats(&ms);
    int64_t prev = rg_set_memory_limit((int64_t)ms.sys + (48 << 20));
    size_t fails = 0;
    for (int i = 0; i < 3000000; i++) { /* ~100 MB of garbage */
        if (mk((uint64_t)i) == NULL)
            fails++;
        if (i % 256 == 0)
            rg_safepoint();
    }
    rg_read_memstats(&ms);
    CU_ASSERT(ms.sys <= (uint64_t)ms.limit);
    rg_set_memory_limit(prev < 0 ? RG_MEMLIMIT_OFF : prev);
    CU_ASSERT_EQUAL(fails, 0);
}

int main(void)
{
    static const cu_test tests[] = {
        {"rg_new is zeroed and typed", test_new_zeroed_typed},
        {"bad input fails cleanly", test_bad_input},
        {"roots keep, the rest goes", test_roots_keep_the_rest_goes},
        {"finalizers at safepoints", test_finalizers},
        {"locals valid until safepoint", test_locals_until_safepoint},
        {"parked threads never delay", test_parked_never_delays},
        {"pause accounting", test_pause_accounting},
        {"region pins are roots", test_region_pins},
        {"large objects", test_large},
        {"large objects scanned in oblets", test_large_oblets},
        {"rg_clone", test_clone},
        {"verifier detects", test_verifier_detects},
        {"gc percent and pacer", test_gc_percent},
        {"gray overflow rescan", test_gray_overflow},
        {"page faults while marking", test_fault_injection},
        {"gcstress", test_gcstress},
        {"threads mutate a graph", test_stress_threads},
        {"limit rung", test_limit_rung},
        {NULL, NULL},
    };
    const char *only = getenv("GC_TEST"); /* run one test by name (debugging) */
    if (only) {
        static cu_test one[2];
        for (const cu_test *t = tests; t->name; t++)
            if (strstr(t->name, only))
                one[0] = *t;
        return cu_run("gc", one);
    }
    return cu_run("gc", tests);
}
