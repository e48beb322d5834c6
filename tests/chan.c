/* tests/chan.c — rg_chan: every channel rule (FIFO, exact capacity, try,
 * timeouts, close with blocked senders and receivers, bulk, select, bad
 * input, the hard limit) and an MPMC stress run with 2-8 threads. */
#include "cu.h"
#include "internal.h"

#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

static void test_fifo_len_cap(void)
{
    rg_chan *c = rg_chan_new(sizeof(int), 5); /* not a power of two: exact capacity */
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(rg_chan_cap(c), 5);
    CU_ASSERT_EQUAL(rg_chan_len(c), 0);
    int v = -1;
    CU_ASSERT_EQUAL(rg_chan_try_recv(c, &v), -EAGAIN);
    /* many laps around the ring, with the count checked at every step */
    int next_in = 0, next_out = 0;
    for (int round = 0; round < 200; round++) {
        while (rg_chan_len(c) < 5) {
            CU_ASSERT_EQUAL_FATAL(rg_chan_try_send(c, &next_in), 0);
            next_in++;
        }
        CU_ASSERT_EQUAL(rg_chan_try_send(c, &next_in), -EAGAIN);
        CU_ASSERT_EQUAL(rg_chan_len(c), 5);
        int take = 1 + round % 5;
        for (int k = 0; k < take; k++) {
            CU_ASSERT_EQUAL_FATAL(rg_chan_recv(c, &v), 0);
            CU_ASSERT_EQUAL_FATAL(v, next_out);
            next_out++;
        }
        CU_ASSERT_EQUAL(rg_chan_len(c), (size_t)(5 - take));
    }
    CU_ASSERT_EQUAL(rg_chan_closed(c), 0);
    rg_chan_free(c);
}

static void test_big_and_zero_elements(void)
{
    char big[300], out[300];
    rg_chan *c = rg_chan_new(sizeof big, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (int i = 0; i < 3; i++) {
        memset(big, 'a' + i, sizeof big);
        CU_ASSERT_EQUAL(rg_chan_send(c, big), 0);
    }
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(rg_chan_recv(c, out), 0);
        CU_ASSERT(out[0] == 'a' + i && out[299] == 'a' + i);
    }
    CU_ASSERT_EQUAL(rg_chan_send(c, big), 0);
    CU_ASSERT_EQUAL(rg_chan_recv(c, NULL), 0); /* NULL discards */
    rg_chan_free(c);

    rg_chan *z = rg_chan_new(0, 2); /* chan struct{} */
    CU_ASSERT_PTR_NOT_NULL_FATAL(z);
    CU_ASSERT_EQUAL(rg_chan_send(z, NULL), 0);
    CU_ASSERT_EQUAL(rg_chan_send(z, NULL), 0);
    CU_ASSERT_EQUAL(rg_chan_try_send(z, NULL), -EAGAIN);
    CU_ASSERT_EQUAL(rg_chan_recv(z, NULL), 0);
    CU_ASSERT_EQUAL(rg_chan_len(z), 1);
    rg_chan_free(z);
}

static void test_bad_input(void)
{
    rg_chan *unbuffered = rg_chan_new(8, 0); /* capacity 0: tests/chan_unbuffered.c */
    CU_ASSERT_PTR_NOT_NULL(unbuffered);
    CU_ASSERT_EQUAL(rg_chan_cap(unbuffered), 0);
    rg_chan_free(unbuffered);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_chan_new(8, (size_t)1 << 40));
    CU_ASSERT_EQUAL(errno, EINVAL);
    int v = 0;
    CU_ASSERT_EQUAL(rg_chan_send(NULL, &v), -EINVAL);
    CU_ASSERT_EQUAL(rg_chan_recv(NULL, &v), -EINVAL);
    CU_ASSERT_EQUAL(rg_chan_try_send(NULL, &v), -EINVAL);
    CU_ASSERT_EQUAL(rg_chan_try_recv(NULL, &v), -EINVAL);
    CU_ASSERT_EQUAL(rg_chan_len(NULL), 0);
    CU_ASSERT_EQUAL(rg_chan_cap(NULL), 0);
    rg_chan_close(NULL);
    rg_chan_free(NULL);
    rg_chan *c = rg_chan_new(sizeof v, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(rg_chan_send(c, NULL), -EINVAL); /* elem needed when elem_size > 0 */
    CU_ASSERT_EQUAL(rg_chan_send_bulk(c, NULL, 1, 0), -EINVAL);
    CU_ASSERT_EQUAL(rg_chan_select(NULL, 1, 0), -EINVAL);
    rg_chan_case bad = {c, 7, &v, 0};
    CU_ASSERT_EQUAL(rg_chan_select(&bad, 1, 0), -EINVAL);
    rg_chan_free(c);
}

static void test_timeouts(void)
{
    rg_chan *c = rg_chan_new(sizeof(int), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    int v = 7;
    uint64_t t0 = rgi_now_ns();
    CU_ASSERT_EQUAL(rg_chan_recv_timeout(c, &v, 20 * 1000000), -ETIMEDOUT);
    CU_ASSERT(rgi_now_ns() - t0 >= 20 * 1000000u); /* never early */
    CU_ASSERT_EQUAL(rg_chan_recv_timeout(c, &v, 0), -EAGAIN);
    CU_ASSERT_EQUAL(rg_chan_send_timeout(c, &v, 0), 0);
    t0 = rgi_now_ns();
    CU_ASSERT_EQUAL(rg_chan_send_timeout(c, &v, 15 * 1000000), -ETIMEDOUT);
    CU_ASSERT(rgi_now_ns() - t0 >= 15 * 1000000u);
    CU_ASSERT_EQUAL(rg_chan_send_timeout(c, &v, 0), -EAGAIN);
    CU_ASSERT_EQUAL(rg_chan_recv_timeout(c, &v, 1000), 0);
    CU_ASSERT_EQUAL(v, 7);
    rg_chan_free(c);
}

static void test_close_rules(void)
{
    rg_chan *c = rg_chan_new(sizeof(int), 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(rg_chan_send(c, &i), 0);
    rg_chan_close(c);
    rg_chan_close(c); /* twice: harmless */
    CU_ASSERT_EQUAL(rg_chan_closed(c), 1);
    int v = 9;
    CU_ASSERT_EQUAL(rg_chan_send(c, &v), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_try_send(c, &v), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_send_timeout(c, &v, 1000), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_send_bulk(c, &v, 1, -1), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_len(c), 3);
    for (int i = 0; i < 3; i++) { /* receivers drain what is buffered ... */
        CU_ASSERT_EQUAL(rg_chan_recv(c, &v), 0);
        CU_ASSERT_EQUAL(v, i);
    }
    /* ... then get -EPIPE, from every form, without blocking */
    CU_ASSERT_EQUAL(rg_chan_recv(c, &v), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_try_recv(c, &v), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_recv_timeout(c, &v, -1), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_recv_bulk(c, &v, 1, -1), -EPIPE);
    rg_chan_free(c);
}

typedef struct blocked_arg {
    rg_chan *c;
    atomic_int started;
    atomic_int results[8];
} blocked_arg;

static void *blocked_recv(void *arg)
{
    blocked_arg *a = arg;
    int slot = atomic_fetch_add(&a->started, 1), v;
    int r = rg_chan_recv(a->c, &v);
    atomic_store(&a->results[slot], r == 0 ? 1000 + v : r);
    return NULL;
}

static void *blocked_send(void *arg)
{
    blocked_arg *a = arg;
    int slot = atomic_fetch_add(&a->started, 1), v = 100 + slot;
    atomic_store(&a->results[slot], rg_chan_send(a->c, &v));
    return NULL;
}

static void wait_blocked(rg_chan *c, blocked_arg *a, int n)
{
    (void)c;
    while (atomic_load(&a->started) < n)
        usleep(1000);
    usleep(30000); /* let them reach the futex; the outcome does not depend on it */
}

static void test_close_wakes_blocked_receivers(void)
{
    blocked_arg a = {.c = rg_chan_new(sizeof(int), 2)};
    CU_ASSERT_PTR_NOT_NULL_FATAL(a.c);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, blocked_recv, &a);
    wait_blocked(a.c, &a, 4);
    int v = 5;
    CU_ASSERT_EQUAL(rg_chan_send(a.c, &v), 0); /* exactly one receiver gets it */
    rg_chan_close(a.c);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    int got = 0, pipes = 0;
    for (int i = 0; i < 4; i++) {
        int r = atomic_load(&a.results[i]);
        got += r == 1005;
        pipes += r == -EPIPE;
    }
    CU_ASSERT_EQUAL(got, 1);
    CU_ASSERT_EQUAL(pipes, 3);
    rg_chan_free(a.c);
}

static void test_close_wakes_blocked_senders(void)
{
    blocked_arg a = {.c = rg_chan_new(sizeof(int), 2)};
    CU_ASSERT_PTR_NOT_NULL_FATAL(a.c);
    int v = 1;
    rg_chan_send(a.c, &v);
    rg_chan_send(a.c, &v);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, blocked_send, &a);
    wait_blocked(a.c, &a, 3);
    rg_chan_close(a.c);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(atomic_load(&a.results[i]), -EPIPE);
    /* the two buffered before the close are still delivered */
    CU_ASSERT_EQUAL(rg_chan_recv(a.c, &v), 0);
    CU_ASSERT_EQUAL(rg_chan_recv(a.c, &v), 0);
    CU_ASSERT_EQUAL(rg_chan_recv(a.c, &v), -EPIPE);
    rg_chan_free(a.c);
}

static void test_blocked_sender_unblocked_by_recv(void)
{
    blocked_arg a = {.c = rg_chan_new(sizeof(int), 1)};
    CU_ASSERT_PTR_NOT_NULL_FATAL(a.c);
    int v = 42;
    rg_chan_send(a.c, &v);
    pthread_t t;
    pthread_create(&t, NULL, blocked_send, &a);
    wait_blocked(a.c, &a, 1);
    CU_ASSERT_EQUAL(rg_chan_recv(a.c, &v), 0);
    CU_ASSERT_EQUAL(v, 42);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(atomic_load(&a.results[0]), 0);
    CU_ASSERT_EQUAL(rg_chan_recv(a.c, &v), 0);
    CU_ASSERT_EQUAL(v, 100);
    rg_chan_free(a.c);
}

static void test_bulk(void)
{
    rg_chan *c = rg_chan_new(sizeof(int), 10);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    int in[16], out[16];
    for (int i = 0; i < 16; i++)
        in[i] = i;
    CU_ASSERT_EQUAL(rg_chan_send_bulk(c, in, 0, 0), 0);
    CU_ASSERT_EQUAL(rg_chan_send_bulk(c, in, 16, 0), 10); /* burst: as many as fit */
    CU_ASSERT_EQUAL(rg_chan_send_bulk(c, in, 4, 0), -EAGAIN);
    CU_ASSERT_EQUAL(rg_chan_send_bulk(c, in, 4, 1000000), -ETIMEDOUT);
    CU_ASSERT_EQUAL(rg_chan_recv_bulk(c, out, 4, 0), 4);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(out[i], i);
    CU_ASSERT_EQUAL(rg_chan_recv_bulk(c, out, 16, -1), 6);
    CU_ASSERT_EQUAL(out[5], 9);
    CU_ASSERT_EQUAL(rg_chan_recv_bulk(c, out, 16, 0), -EAGAIN);
    CU_ASSERT_EQUAL(rg_chan_recv_bulk(c, out, 16, 1000000), -ETIMEDOUT);
    rg_chan_free(c);
}

/* Blocking bulk across threads: a producer sends 20000 in batches through a
 * channel of 7, a consumer takes them in bursts; order must hold. */
static void *bulk_producer(void *arg)
{
    rg_chan *c = arg;
    int batch[13];
    for (int base = 0; base < 20000; base += 13) {
        int n = 20000 - base < 13 ? 20000 - base : 13;
        for (int i = 0; i < n; i++)
            batch[i] = base + i;
        if (rg_chan_send_bulk(c, batch, (unsigned)n, -1) != n)
            return (void *)1;
    }
    rg_chan_close(c);
    return NULL;
}

static void test_bulk_threads(void)
{
    rg_chan *c = rg_chan_new(sizeof(int), 7);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    pthread_t t;
    pthread_create(&t, NULL, bulk_producer, c);
    int buf[9], expect = 0, bad = 0, r;
    while ((r = rg_chan_recv_bulk(c, buf, 9, -1)) > 0)
        for (int i = 0; i < r; i++)
            bad += buf[i] != expect++;
    void *ret;
    pthread_join(t, &ret);
    CU_ASSERT_PTR_NULL(ret);
    CU_ASSERT_EQUAL(r, -EPIPE);
    CU_ASSERT_EQUAL(expect, 20000);
    CU_ASSERT_EQUAL(bad, 0);
    rg_chan_free(c);
}

static void *select_sender(void *arg)
{
    usleep(20000);
    int v = 77;
    rg_chan_send(arg, &v);
    return NULL;
}

static void test_select(void)
{
    rg_chan *a = rg_chan_new(sizeof(int), 1), *b = rg_chan_new(sizeof(int), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    int va = -1, vb = -1, one = 1;
    rg_chan_case cs[2] = {{a, RG_CHAN_RECV, &va, 0}, {b, RG_CHAN_RECV, &vb, 0}};
    CU_ASSERT_EQUAL(rg_chan_select(cs, 2, 0), -EAGAIN); /* Go's default: */
    CU_ASSERT_EQUAL(rg_chan_select(cs, 2, 5000000), -ETIMEDOUT);
    rg_chan_send(b, &one);
    CU_ASSERT_EQUAL(rg_chan_select(cs, 2, -1), 1);
    CU_ASSERT_EQUAL(vb, 1);
    CU_ASSERT_EQUAL(cs[1].result, 0);
    /* both ready: both cases fire over many calls (random order) */
    int fired[2] = {0, 0};
    for (int i = 0; i < 200; i++) {
        rg_chan_try_send(a, &one);
        rg_chan_try_send(b, &one);
        int k = rg_chan_select(cs, 2, 0);
        CU_ASSERT_FATAL(k == 0 || k == 1);
        fired[k]++;
    }
    CU_ASSERT(fired[0] > 0 && fired[1] > 0);
    while (rg_chan_try_recv(a, NULL) == 0) {}
    while (rg_chan_try_recv(b, NULL) == 0) {}
    /* blocking select woken by a send from another thread */
    pthread_t t;
    pthread_create(&t, NULL, select_sender, a);
    CU_ASSERT_EQUAL(rg_chan_select(cs, 2, -1), 0);
    CU_ASSERT_EQUAL(va, 77);
    pthread_join(t, NULL);
    /* a send case, a disabled (NULL) case, and a closed channel */
    rg_chan_case sc[2] = {{NULL, RG_CHAN_RECV, NULL, 0}, {a, RG_CHAN_SEND, &one, 0}};
    CU_ASSERT_EQUAL(rg_chan_select(sc, 2, 0), 1);
    CU_ASSERT_EQUAL(rg_chan_select(sc, 2, 0), -EAGAIN); /* a is full now */
    rg_chan_close(b);
    CU_ASSERT_EQUAL(rg_chan_select(&cs[1], 1, -1), 0);
    CU_ASSERT_EQUAL(cs[1].result, -EPIPE); /* v, ok := <-b gives ok == false */
    rg_chan_close(a);
    CU_ASSERT_EQUAL(rg_chan_select(&sc[1], 1, -1), 0);
    CU_ASSERT_EQUAL(sc[1].result, -EPIPE);
    rg_chan_free(a);
    rg_chan_free(b);
}

static void test_buffer_counts_against_limit(void)
{
    rg_memstats st;
    rg_read_memstats(&st);
    rg_set_memory_limit((int64_t)st.sys + (8 << 20));
    errno = 0;
    rg_chan *c = rg_chan_new(1024, 64 * 1024); /* 64 MiB of buffer */
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_EQUAL(errno, ENOMEM);
    rg_chan *small = rg_chan_new(1024, 1024); /* 1 MiB fits */
    CU_ASSERT_PTR_NOT_NULL(small);
    rg_chan_free(small);
    rg_set_memory_limit(RG_MEMLIMIT_OFF);
}

/* MPMC stress: P producers each send a tagged sequence, C consumers check that
 * each producer's values arrive in order and that the sum is exact.  Runs for
 * 2, 4 and 8 threads; bounded by the element count. */
enum { PER_PRODUCER = 8000 };
typedef struct stress {
    rg_chan *c;
    int producers;
    atomic_int prod_done;
    atomic_uint_fast64_t sum, count, order_bad;
} stress;

static void *stress_producer(void *arg)
{
    stress *s = ((void **)arg)[0];
    uint64_t id = (uint64_t)(uintptr_t)((void **)arg)[1];
    for (uint64_t i = 0; i < PER_PRODUCER; i++) {
        uint64_t v = id << 32 | i;
        int r = (i % 3) ? rg_chan_send(s->c, &v) : rg_chan_send_timeout(s->c, &v, 1000000000);
        if (r != 0) {
            if (r != -ETIMEDOUT)
                return (void *)1;
            i--; /* timed out: try again */
        }
    }
    if (atomic_fetch_add(&s->prod_done, 1) + 1 == s->producers)
        rg_chan_close(s->c);
    return NULL;
}

static void *stress_consumer(void *arg)
{
    stress *s = arg;
    uint64_t last[8];
    for (int i = 0; i < 8; i++)
        last[i] = UINT64_MAX;
    uint64_t v, sum = 0, n = 0, bad = 0;
    for (;;) {
        int r = (n % 2) ? rg_chan_recv(s->c, &v) : rg_chan_try_recv(s->c, &v);
        if (r == -EAGAIN)
            continue;
        if (r != 0)
            break;
        unsigned id = (unsigned)(v >> 32);
        uint64_t seq = v & 0xffffffffu;
        if (last[id] != UINT64_MAX && seq <= last[id])
            bad++;
        last[id] = seq;
        sum += seq;
        n++;
    }
    atomic_fetch_add(&s->sum, sum);
    atomic_fetch_add(&s->count, n);
    atomic_fetch_add(&s->order_bad, bad);
    return NULL;
}

static void run_stress(int producers, int consumers, size_t cap)
{
    stress s = {.c = rg_chan_new(sizeof(uint64_t), cap), .producers = producers};
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.c);
    pthread_t pt[8], ct[8];
    void *args[8][2];
    for (int i = 0; i < consumers; i++)
        pthread_create(&ct[i], NULL, stress_consumer, &s);
    for (int i = 0; i < producers; i++) {
        args[i][0] = &s;
        args[i][1] = (void *)(uintptr_t)i;
        pthread_create(&pt[i], NULL, stress_producer, args[i]);
    }
    int perr = 0;
    for (int i = 0; i < producers; i++) {
        void *r;
        pthread_join(pt[i], &r);
        perr += r != NULL;
    }
    for (int i = 0; i < consumers; i++)
        pthread_join(ct[i], NULL);
    CU_ASSERT_EQUAL(perr, 0);
    CU_ASSERT_EQUAL(atomic_load(&s.count), (uint64_t)producers * PER_PRODUCER);
    CU_ASSERT_EQUAL(atomic_load(&s.sum), (uint64_t)producers * ((uint64_t)PER_PRODUCER * (PER_PRODUCER - 1) / 2));
    CU_ASSERT_EQUAL(atomic_load(&s.order_bad), 0);
    CU_ASSERT_EQUAL(rg_chan_len(s.c), 0);
    rg_chan_free(s.c);
}

static void test_stress_1x1(void) { run_stress(1, 1, 3); }
static void test_stress_2x2(void) { run_stress(2, 2, 16); }
static void test_stress_4x4(void) { run_stress(4, 4, 5); }
static void test_stress_6x2(void) { run_stress(6, 2, 64); }

/* A thread blocked in rg_chan_recv is parked for the collector: rg_gc()
 * on another thread completes while it sleeps (and it can still receive). */
static rg_chan *gc_ch;
static atomic_int gc_waiter_ready;
static const rg_type gc_leaf = {.name = "leaf", .size = 32};

static void *blocked_receiver(void *arg)
{
    (void)arg;
    void *obj = rg_new(&gc_leaf); /* attaches this thread to the collector */
    (void)obj;
    atomic_store(&gc_waiter_ready, 1);
    int v = 0;
    int rc = rg_chan_recv(gc_ch, &v);
    return (void *)(intptr_t)(rc == 0 ? v : -1);
}

static void test_blocked_recv_does_not_delay_gc(void)
{
    gc_ch = rg_chan_new(sizeof(int), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gc_ch);
    pthread_t t;
    pthread_create(&t, NULL, blocked_receiver, NULL);
    while (!atomic_load(&gc_waiter_ready))
        usleep(1000);
    usleep(20000); /* let it reach the futex wait */
    rg_memstats before, after;
    rg_read_memstats(&before);
    rg_gc(); /* would wait forever for the blocked thread's ack if it were not parked */
    rg_gc();
    rg_read_memstats(&after);
    CU_ASSERT(after.num_gc >= before.num_gc + 2);
    int v = 42;
    CU_ASSERT_EQUAL(rg_chan_send(gc_ch, &v), 0);
    void *res;
    pthread_join(t, &res);
    CU_ASSERT_EQUAL((intptr_t)res, 42);
    rg_chan_free(gc_ch);
}

int main(void)
{
    static const cu_test tests[] = {
        {"a thread blocked in recv never delays a collection", test_blocked_recv_does_not_delay_gc},
        {"fifo, len and exact capacity over many laps", test_fifo_len_cap},
        {"large and zero-size elements", test_big_and_zero_elements},
        {"bad input is refused, never a crash", test_bad_input},
        {"timeouts expire, never early", test_timeouts},
        {"close: send -EPIPE, receivers drain then -EPIPE", test_close_rules},
        {"close wakes blocked receivers", test_close_wakes_blocked_receivers},
        {"close wakes blocked senders", test_close_wakes_blocked_senders},
        {"a recv unblocks a blocked sender", test_blocked_sender_unblocked_by_recv},
        {"bulk send and recv", test_bulk},
        {"blocking bulk across threads keeps order", test_bulk_threads},
        {"select: default, timeout, wakeup, send, closed", test_select},
        {"the buffer counts against the hard limit", test_buffer_counts_against_limit},
        {"stress 1 producer x 1 consumer", test_stress_1x1},
        {"stress 2x2", test_stress_2x2},
        {"stress 4x4", test_stress_4x4},
        {"stress 6x2", test_stress_6x2},
        {NULL, NULL},
    };
    return cu_run("chan", tests);
}
