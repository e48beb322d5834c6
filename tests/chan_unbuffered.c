/* tests/chan_unbuffered.c — unbuffered rg_chan (capacity 0, Go's
 * make(chan T)): rendezvous, try_* only with a partner waiting, timeouts that
 * leave nothing half-done (sequence numbers, racing partners), close with
 * blocked senders and receivers, bulk as repeated single operations, select
 * (including two threads selecting on each other's channels and mixed
 * buffered/unbuffered cases), parking for the collector, and MPMC stress
 * with 2-8 threads where every value is received exactly once.
 *
 * No assertion depends on timing: where a test waits for a peer to block it
 * polls with a bound, and the outcome it checks holds however late the peer
 * arrives. */
#include "cu.h"
#include "internal.h"

#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

/* Polls f(arg) == 0 for up to 20 s (a peer that has not blocked yet). */
static int poll_until(int (*f)(void *), void *arg)
{
    for (int i = 0; i < 200000; i++) {
        int r = f(arg);
        if (r != -EAGAIN)
            return r;
        usleep(100);
    }
    return -EAGAIN;
}

static void test_basics(void)
{
    rg_chan *c = rg_chan_new(sizeof(int), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(rg_chan_cap(c), 0);
    CU_ASSERT_EQUAL(rg_chan_len(c), 0);
    CU_ASSERT_EQUAL(rg_chan_closed(c), 0);
    int v = 5;
    /* nobody waits: nothing is ever buffered */
    CU_ASSERT_EQUAL(rg_chan_try_send(c, &v), -EAGAIN);
    CU_ASSERT_EQUAL(rg_chan_try_recv(c, &v), -EAGAIN);
    CU_ASSERT_EQUAL(rg_chan_send_timeout(c, &v, 0), -EAGAIN);
    CU_ASSERT_EQUAL(rg_chan_recv_timeout(c, &v, 0), -EAGAIN);
    uint64_t t0 = rgi_now_ns();
    CU_ASSERT_EQUAL(rg_chan_send_timeout(c, &v, 10 * 1000000), -ETIMEDOUT);
    CU_ASSERT(rgi_now_ns() - t0 >= 10 * 1000000u); /* never early */
    /* the timed-out send left nothing behind */
    CU_ASSERT_EQUAL(rg_chan_try_recv(c, &v), -EAGAIN);
    t0 = rgi_now_ns();
    CU_ASSERT_EQUAL(rg_chan_recv_timeout(c, &v, 10 * 1000000), -ETIMEDOUT);
    CU_ASSERT(rgi_now_ns() - t0 >= 10 * 1000000u);
    CU_ASSERT_EQUAL(rg_chan_try_send(c, &v), -EAGAIN); /* no receiver left behind */
    CU_ASSERT_EQUAL(rg_chan_len(c), 0);
    /* bad input as for buffered channels */
    CU_ASSERT_EQUAL(rg_chan_send(c, NULL), -EINVAL);
    CU_ASSERT_EQUAL(rg_chan_try_send(c, NULL), -EINVAL);
    rg_chan_free(c);
    /* big elements need no ring: the largest element size is accepted */
    rg_chan *big = rg_chan_new((size_t)1 << 20, 0);
    CU_ASSERT_PTR_NOT_NULL(big);
    rg_chan_free(big);
}

/* --- rendezvous ----------------------------------------------------------- */
typedef struct peer {
    rg_chan *c;
    int value;       /* what a sender sends, or what a receiver got */
    int rc;
    atomic_int done; /* set after the call returned */
    atomic_int started;
} peer;

static void *peer_send(void *arg)
{
    peer *p = arg;
    atomic_store(&p->started, 1);
    p->rc = rg_chan_send(p->c, &p->value);
    atomic_store(&p->done, 1);
    return NULL;
}

static void *peer_recv(void *arg)
{
    peer *p = arg;
    atomic_store(&p->started, 1);
    p->rc = rg_chan_recv(p->c, &p->value);
    atomic_store(&p->done, 1);
    return NULL;
}

static void wait_started(atomic_int *started)
{
    while (!atomic_load(started))
        usleep(1000);
    usleep(20000); /* let it block; no outcome depends on it */
}

static void test_send_waits_for_receiver(void)
{
    peer p = {.c = rg_chan_new(sizeof(int), 0), .value = 41};
    CU_ASSERT_PTR_NOT_NULL_FATAL(p.c);
    pthread_t t;
    pthread_create(&t, NULL, peer_send, &p);
    wait_started(&p.started);
    /* nothing can complete the send but a receive */
    CU_ASSERT_EQUAL(atomic_load(&p.done), 0);
    CU_ASSERT_EQUAL(rg_chan_len(p.c), 0);
    int v = 0;
    CU_ASSERT_EQUAL(rg_chan_recv(p.c, &v), 0);
    CU_ASSERT_EQUAL(v, 41);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(p.rc, 0);
    rg_chan_free(p.c);
}

static void test_recv_waits_for_sender(void)
{
    peer p = {.c = rg_chan_new(sizeof(int), 0), .value = -1};
    CU_ASSERT_PTR_NOT_NULL_FATAL(p.c);
    pthread_t t;
    pthread_create(&t, NULL, peer_recv, &p);
    wait_started(&p.started);
    CU_ASSERT_EQUAL(atomic_load(&p.done), 0);
    int v = 17;
    CU_ASSERT_EQUAL(rg_chan_send(p.c, &v), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(p.rc, 0);
    CU_ASSERT_EQUAL(p.value, 17);
    rg_chan_free(p.c);
}

static rg_chan *try_ch;
static int try_val;
static int do_try_send(void *arg) { (void)arg; return rg_chan_try_send(try_ch, &try_val); }
static int do_try_recv(void *arg) { return rg_chan_try_recv(try_ch, arg); }

static void test_try_needs_waiting_partner(void)
{
    try_ch = rg_chan_new(sizeof(int), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(try_ch);
    /* try_send succeeds once a receiver waits, and hands it the element */
    peer r = {.c = try_ch, .value = -1};
    pthread_t t;
    pthread_create(&t, NULL, peer_recv, &r);
    try_val = 99;
    CU_ASSERT_EQUAL(poll_until(do_try_send, NULL), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(r.rc, 0);
    CU_ASSERT_EQUAL(r.value, 99);
    CU_ASSERT_EQUAL(rg_chan_try_send(try_ch, &try_val), -EAGAIN); /* the receiver is gone */
    /* try_recv succeeds once a sender waits */
    peer s = {.c = try_ch, .value = 123};
    pthread_create(&t, NULL, peer_send, &s);
    int v = 0;
    CU_ASSERT_EQUAL(poll_until(do_try_recv, &v), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(s.rc, 0);
    CU_ASSERT_EQUAL(v, 123);
    CU_ASSERT_EQUAL(rg_chan_try_recv(try_ch, &v), -EAGAIN);
    rg_chan_free(try_ch);
}

/* chan struct{}: zero-size elements, NULL buffers, still a rendezvous. */
static void test_zero_size(void)
{
    peer p = {.c = rg_chan_new(0, 0)};
    CU_ASSERT_PTR_NOT_NULL_FATAL(p.c);
    pthread_t t;
    pthread_create(&t, NULL, peer_recv, &p);
    CU_ASSERT_EQUAL(rg_chan_send(p.c, NULL), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(p.rc, 0);
    rg_chan_free(p.c);
}

/* --- close ---------------------------------------------------------------- */
static void test_close_wakes_everyone(void)
{
    rg_chan *cs = rg_chan_new(sizeof(int), 0), *cr = rg_chan_new(sizeof(int), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cr);
    peer snd[4], rcv[4];
    pthread_t ts[4], tr[4];
    for (int i = 0; i < 4; i++) {
        snd[i] = (peer){.c = cs, .value = i};
        rcv[i] = (peer){.c = cr, .value = -1};
        pthread_create(&ts[i], NULL, peer_send, &snd[i]);
        pthread_create(&tr[i], NULL, peer_recv, &rcv[i]);
    }
    for (int i = 0; i < 4; i++) {
        wait_started(&snd[i].started);
        wait_started(&rcv[i].started);
    }
    rg_chan_close(cs);
    rg_chan_close(cr);
    rg_chan_close(cr); /* twice: harmless */
    for (int i = 0; i < 4; i++) {
        pthread_join(ts[i], NULL);
        pthread_join(tr[i], NULL);
        CU_ASSERT_EQUAL(snd[i].rc, -EPIPE);
        CU_ASSERT_EQUAL(rcv[i].rc, -EPIPE);
        CU_ASSERT_EQUAL(rcv[i].value, -1); /* nothing was buffered */
    }
    int v = 1;
    CU_ASSERT_EQUAL(rg_chan_closed(cs), 1);
    CU_ASSERT_EQUAL(rg_chan_send(cs, &v), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_try_send(cs, &v), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_send_timeout(cs, &v, 1000000), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_recv(cs, &v), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_try_recv(cs, &v), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_recv_bulk(cs, &v, 1, -1), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_send_bulk(cs, &v, 1, -1), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_len(cs), 0);
    rg_chan_free(cs);
    rg_chan_free(cr);
}

/* --- timeouts against a racing partner -------------------------------------
 * Senders send sequence numbers with short, varying timeouts and resend the
 * same number after -ETIMEDOUT; receivers receive with short timeouts too.
 * A timed-out send that was delivered later would show up twice; a receive
 * that timed out after taking an element would leave a hole. */
enum { RACE_PER_SENDER = 3000 };
typedef struct race {
    rg_chan *c;
    int senders;
    atomic_int senders_done;
    atomic_int counts[4 * RACE_PER_SENDER];
    atomic_int order_bad, timeouts;
} race;

/* A random pause between operations (a spin, sometimes a short sleep), so
 * that partners often arrive just as a deadline passes. */
static void dawdle(uint32_t *x)
{
    *x ^= *x << 13, *x ^= *x >> 17, *x ^= *x << 5;
    if (*x % 4 == 0)
        usleep(*x % 32);
    else
        for (uint32_t i = *x % 4096; i > 0; i--)
            __builtin_ia32_pause();
}

static void *race_sender(void *arg)
{
    race *r = ((void **)arg)[0];
    int id = (int)(intptr_t)((void **)arg)[1];
    uint32_t x = 2463534242u + (uint32_t)id;
    for (int i = 0; i < RACE_PER_SENDER;) {
        int v = id * RACE_PER_SENDER + i;
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        int rc = rg_chan_send_timeout(r->c, &v, (int64_t)(x % 20000)); /* 0-20 us */
        if (rc == 0)
            i++;
        else if (rc == -ETIMEDOUT || rc == -EAGAIN)
            atomic_fetch_add(&r->timeouts, 1);
        else
            return (void *)1;
        dawdle(&x);
    }
    if (atomic_fetch_add(&r->senders_done, 1) + 1 == r->senders)
        rg_chan_close(r->c);
    return NULL;
}

static void *race_receiver(void *arg)
{
    race *r = arg;
    int last[4] = {-1, -1, -1, -1};
    uint32_t x = 88172645u;
    for (;;) {
        int v = -1;
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        int rc = rg_chan_recv_timeout(r->c, &v, (int64_t)(x % 20000));
        dawdle(&x);
        if (rc == -ETIMEDOUT || rc == -EAGAIN) {
            atomic_fetch_add(&r->timeouts, 1);
            continue;
        }
        if (rc != 0)
            break;
        if (v < 0 || v >= r->senders * RACE_PER_SENDER) {
            atomic_fetch_add(&r->order_bad, 1);
            continue;
        }
        atomic_fetch_add(&r->counts[v], 1);
        int id = v / RACE_PER_SENDER; /* one sender's values arrive in order */
        if (v <= last[id])
            atomic_fetch_add(&r->order_bad, 1);
        last[id] = v;
    }
    return NULL;
}

static void run_race(int senders, int receivers)
{
    static race r;
    memset(&r, 0, sizeof r);
    r.c = rg_chan_new(sizeof(int), 0);
    r.senders = senders;
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.c);
    pthread_t st[4], rt[4];
    void *args[4][2];
    for (int i = 0; i < receivers; i++)
        pthread_create(&rt[i], NULL, race_receiver, &r);
    for (int i = 0; i < senders; i++) {
        args[i][0] = &r;
        args[i][1] = (void *)(intptr_t)i;
        pthread_create(&st[i], NULL, race_sender, args[i]);
    }
    int serr = 0;
    for (int i = 0; i < senders; i++) {
        void *ret;
        pthread_join(st[i], &ret);
        serr += ret != NULL;
    }
    for (int i = 0; i < receivers; i++)
        pthread_join(rt[i], NULL);
    CU_ASSERT_EQUAL(serr, 0);
    int missing = 0, dup = 0;
    for (int v = 0; v < senders * RACE_PER_SENDER; v++) {
        int n = atomic_load(&r.counts[v]);
        missing += n == 0;
        dup += n > 1;
    }
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(dup, 0);
    CU_ASSERT_EQUAL(atomic_load(&r.order_bad), 0);
    rg_chan_free(r.c);
}

static void test_timeouts_race_1x1(void) { run_race(1, 1); }
static void test_timeouts_race_2x3(void) { run_race(2, 3); }
static void test_timeouts_race_4x4(void) { run_race(4, 4); }

/* --- bulk: repeated single operations -------------------------------------- */
static void *bulk_taker(void *arg)
{
    rg_chan *c = arg;
    int sum = 0, v;
    for (int i = 0; i < 5; i++) {
        if (rg_chan_recv(c, &v) != 0)
            return (void *)-1;
        sum = sum * 10 + v;
    }
    return (void *)(intptr_t)sum;
}

static void test_bulk(void)
{
    rg_chan *c = rg_chan_new(sizeof(int), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    int in[5] = {1, 2, 3, 4, 5}, out[8];
    CU_ASSERT_EQUAL(rg_chan_send_bulk(c, in, 0, 0), 0);
    CU_ASSERT_EQUAL(rg_chan_send_bulk(c, in, 5, 0), -EAGAIN);
    CU_ASSERT_EQUAL(rg_chan_send_bulk(c, in, 5, 1000000), -ETIMEDOUT);
    CU_ASSERT_EQUAL(rg_chan_recv_bulk(c, out, 8, 0), -EAGAIN);
    CU_ASSERT_EQUAL(rg_chan_recv_bulk(c, out, 8, 1000000), -ETIMEDOUT);
    /* a blocking bulk send is five hand-offs, in order */
    pthread_t t;
    pthread_create(&t, NULL, bulk_taker, c);
    CU_ASSERT_EQUAL(rg_chan_send_bulk(c, in, 5, -1), 5);
    void *ret;
    pthread_join(t, &ret);
    CU_ASSERT_EQUAL((intptr_t)ret, 12345);
    /* a bulk receive waits for one sender, then takes what others offer now */
    peer s[3];
    pthread_t ts[3];
    for (int i = 0; i < 3; i++) {
        s[i] = (peer){.c = c, .value = 10 + i};
        pthread_create(&ts[i], NULL, peer_send, &s[i]);
    }
    int got = 0, mask = 0;
    while (got < 3) {
        int r = rg_chan_recv_bulk(c, out, 8, -1);
        CU_ASSERT_FATAL(r >= 1 && r <= 3 - got);
        for (int i = 0; i < r; i++)
            mask |= 1 << (out[i] - 10);
        got += r;
    }
    CU_ASSERT_EQUAL(mask, 7);
    for (int i = 0; i < 3; i++) {
        pthread_join(ts[i], NULL);
        CU_ASSERT_EQUAL(s[i].rc, 0);
    }
    rg_chan_free(c);
}

/* --- select ---------------------------------------------------------------- */
static rg_chan_case sel_cases[2];
static int do_select_try(void *arg)
{
    int k = rg_chan_select(sel_cases, (unsigned)(intptr_t)arg, 0);
    return k >= 0 ? 0 : k;
}

static void test_select_basics(void)
{
    rg_chan *u = rg_chan_new(sizeof(int), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    int v = 7, got = -1;
    rg_chan_case snd = {u, RG_CHAN_SEND, &v, 0}, rcv = {u, RG_CHAN_RECV, &got, 0};
    /* nobody waits: neither case is ready */
    CU_ASSERT_EQUAL(rg_chan_select(&snd, 1, 0), -EAGAIN);
    CU_ASSERT_EQUAL(rg_chan_select(&rcv, 1, 0), -EAGAIN);
    CU_ASSERT_EQUAL(rg_chan_select(&snd, 1, 2000000), -ETIMEDOUT);
    CU_ASSERT_EQUAL(rg_chan_select(&rcv, 1, 2000000), -ETIMEDOUT);
    /* a select's own send and receive on one channel never pair */
    rg_chan_case both[2] = {snd, rcv};
    CU_ASSERT_EQUAL(rg_chan_select(both, 2, 2000000), -ETIMEDOUT);
    CU_ASSERT_EQUAL(rg_chan_try_send(u, &v), -EAGAIN); /* its records are gone */
    CU_ASSERT_EQUAL(rg_chan_try_recv(u, &got), -EAGAIN);

    /* a polling send case fires once a receiver waits */
    peer r = {.c = u, .value = -1};
    pthread_t t;
    pthread_create(&t, NULL, peer_recv, &r);
    sel_cases[0] = (rg_chan_case){u, RG_CHAN_SEND, &v, 0};
    CU_ASSERT_EQUAL(poll_until(do_select_try, (void *)1), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(r.value, 7);
    /* a polling receive case fires once a sender waits */
    peer s = {.c = u, .value = 8};
    pthread_create(&t, NULL, peer_send, &s);
    sel_cases[0] = (rg_chan_case){u, RG_CHAN_RECV, &got, 0};
    CU_ASSERT_EQUAL(poll_until(do_select_try, (void *)1), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(got, 8);
    CU_ASSERT_EQUAL(s.rc, 0);

    /* a blocked select is found by a plain receive and a plain send */
    pthread_create(&t, NULL, peer_recv, &r);
    v = 21;
    CU_ASSERT_EQUAL(rg_chan_select(&snd, 1, -1), 0);
    CU_ASSERT_EQUAL(snd.result, 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(r.value, 21);
    s.value = 22;
    pthread_create(&t, NULL, peer_send, &s);
    CU_ASSERT_EQUAL(rg_chan_select(&rcv, 1, -1), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(got, 22);
    rg_chan_free(u);
}

/* A select blocked on an unbuffered and a buffered channel, woken by the
 * buffered one, withdraws from the unbuffered one. */
typedef struct mixed {
    rg_chan *u, *b;
    int uv, bv, k;
    atomic_int started;
} mixed;

static void *mixed_selector(void *arg)
{
    mixed *m = arg;
    rg_chan_case cs[2] = {{m->u, RG_CHAN_RECV, &m->uv, 0}, {m->b, RG_CHAN_RECV, &m->bv, 0}};
    atomic_store(&m->started, 1);
    m->k = rg_chan_select(cs, 2, -1);
    return NULL;
}

static void test_select_mixed(void)
{
    mixed m = {.u = rg_chan_new(sizeof(int), 0), .b = rg_chan_new(sizeof(int), 4), .uv = -1, .bv = -1};
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.u);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.b);
    pthread_t t;
    pthread_create(&t, NULL, mixed_selector, &m);
    wait_started(&m.started);
    int v = 5;
    CU_ASSERT_EQUAL(rg_chan_send(m.b, &v), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(m.k, 1);
    CU_ASSERT_EQUAL(m.bv, 5);
    CU_ASSERT_EQUAL(rg_chan_try_send(m.u, &v), -EAGAIN); /* no receiver left behind */
    /* and woken by the unbuffered one instead */
    m.started = 0;
    pthread_create(&t, NULL, mixed_selector, &m);
    v = 6;
    CU_ASSERT_EQUAL(rg_chan_send(m.u, &v), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(m.k, 0);
    CU_ASSERT_EQUAL(m.uv, 6);
    CU_ASSERT_EQUAL(rg_chan_len(m.b), 0);
    /* close of the unbuffered channel fires a blocked select with -EPIPE */
    m.started = 0;
    pthread_create(&t, NULL, mixed_selector, &m);
    wait_started(&m.started);
    rg_chan_close(m.u);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(m.k, 0);
    /* closed: both a send and a receive case fire at once with -EPIPE */
    rg_chan_case cs[2] = {{m.u, RG_CHAN_SEND, &v, 0}, {NULL, RG_CHAN_RECV, NULL, 0}};
    CU_ASSERT_EQUAL(rg_chan_select(cs, 2, -1), 0);
    CU_ASSERT_EQUAL(cs[0].result, -EPIPE);
    cs[0].op = RG_CHAN_RECV;
    CU_ASSERT_EQUAL(rg_chan_select(cs, 2, 0), 0);
    CU_ASSERT_EQUAL(cs[0].result, -EPIPE);
    rg_chan_free(m.u);
    rg_chan_free(m.b);
}

/* Two threads select on each other's unbuffered channels, round after round:
 * A offers i on x and listens on y, B offers i on y and listens on x.  Each
 * round pairs exactly one case of each; the value received is the round. */
enum { CROSS_ROUNDS = 2000 };
typedef struct cross {
    rg_chan *x, *y;
    atomic_int bad, fired_x, fired_y;
} cross;

static void *cross_thread(void *arg)
{
    cross *c = ((void **)arg)[0];
    bool a = ((void **)arg)[1] != NULL;
    rg_chan *mine = a ? c->x : c->y, *theirs = a ? c->y : c->x;
    for (int i = 0; i < CROSS_ROUNDS; i++) {
        int out = i, in = -1;
        rg_chan_case cs[2] = {{mine, RG_CHAN_SEND, &out, 0}, {theirs, RG_CHAN_RECV, &in, 0}};
        int k = rg_chan_select(cs, 2, -1);
        if (k == 1 && in != i)
            atomic_fetch_add(&c->bad, 1);
        if (k < 0 || cs[k].result != 0)
            atomic_fetch_add(&c->bad, 1);
        if (a && k >= 0)
            atomic_fetch_add(k == 0 ? &c->fired_x : &c->fired_y, 1);
    }
    return NULL;
}

static void test_select_cross(void)
{
    cross c = {.x = rg_chan_new(sizeof(int), 0), .y = rg_chan_new(sizeof(int), 0)};
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.y);
    pthread_t ta, tb;
    void *aa[2] = {&c, (void *)1}, *ab[2] = {&c, NULL};
    pthread_create(&ta, NULL, cross_thread, aa);
    pthread_create(&tb, NULL, cross_thread, ab);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CU_ASSERT_EQUAL(atomic_load(&c.bad), 0);
    CU_ASSERT_EQUAL(atomic_load(&c.fired_x) + atomic_load(&c.fired_y), CROSS_ROUNDS);
    /* the random case order lets both directions happen */
    CU_ASSERT(atomic_load(&c.fired_x) > 0 && atomic_load(&c.fired_y) > 0);
    rg_chan_free(c.x);
    rg_chan_free(c.y);
}

/* --- the collector ---------------------------------------------------------- */
static const rg_type leaf = {.name = "leaf", .size = 32};
static void *gc_receiver(void *arg)
{
    peer *p = arg;
    void *obj = rg_new(&leaf); /* attaches this thread to the collector */
    (void)obj;
    return peer_recv(p);
}

static void test_blocked_thread_is_parked(void)
{
    peer p = {.c = rg_chan_new(sizeof(int), 0), .value = -1};
    CU_ASSERT_PTR_NOT_NULL_FATAL(p.c);
    pthread_t t;
    pthread_create(&t, NULL, gc_receiver, &p);
    wait_started(&p.started);
    rg_memstats before, after;
    rg_read_memstats(&before);
    rg_gc(); /* would wait for the blocked thread's ack if it were not parked */
    rg_gc();
    rg_read_memstats(&after);
    CU_ASSERT(after.num_gc >= before.num_gc + 2);
    int v = 3;
    CU_ASSERT_EQUAL(rg_chan_send(p.c, &v), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(p.value, 3);
    rg_chan_free(p.c);
}

/* --- MPMC stress ------------------------------------------------------------
 * P producers and C consumers on one unbuffered channel, every form mixed
 * (blocking, try, timeout, select over the channel and a second unbuffered
 * one); every value must be received exactly once, and one producer's values
 * in order on each channel. */
enum { STRESS_PER_PRODUCER = 2000, STRESS_MAX = 8 };
typedef struct stress {
    rg_chan *c, *d;
    int producers;
    atomic_int prod_done, errors;
    atomic_int counts[STRESS_MAX * STRESS_PER_PRODUCER];
} stress;

static void *stress_producer(void *arg)
{
    stress *s = ((void **)arg)[0];
    int id = (int)(intptr_t)((void **)arg)[1];
    for (int i = 0; i < STRESS_PER_PRODUCER;) {
        int v = id * STRESS_PER_PRODUCER + i, rc;
        switch (i % 4) {
        case 0:
            rc = rg_chan_send(s->c, &v);
            break;
        case 1:
            rc = rg_chan_try_send(s->c, &v);
            if (rc == -EAGAIN)
                rc = rg_chan_send_timeout(s->c, &v, 100000);
            break;
        case 2:
            rc = rg_chan_send_timeout(s->c, &v, 1000000);
            break;
        default: {
            rg_chan_case cs[2] = {{s->c, RG_CHAN_SEND, &v, 0}, {s->d, RG_CHAN_SEND, &v, 0}};
            rc = rg_chan_select(cs, 2, 1000000);
            if (rc >= 0)
                rc = cs[rc].result;
        }
        }
        if (rc == 0)
            i++;
        else if (rc != -ETIMEDOUT && rc != -EAGAIN) {
            atomic_fetch_add(&s->errors, 1);
            return NULL;
        }
    }
    if (atomic_fetch_add(&s->prod_done, 1) + 1 == s->producers) {
        rg_chan_close(s->c);
        rg_chan_close(s->d);
    }
    return NULL;
}

static void *stress_consumer(void *arg)
{
    stress *s = ((void **)arg)[0];
    int id = (int)(intptr_t)((void **)arg)[1];
    int last[2][STRESS_MAX];
    for (int i = 0; i < STRESS_MAX; i++)
        last[0][i] = last[1][i] = -1;
    bool c_open = true, d_open = true;
    for (unsigned n = (unsigned)id; c_open || d_open; n++) {
        int v = -1, rc, from = 0;
        if (!c_open || !d_open || n % 3 == 0) {
            rg_chan_case cs[2] = {{c_open ? s->c : NULL, RG_CHAN_RECV, &v, 0},
                                  {d_open ? s->d : NULL, RG_CHAN_RECV, &v, 0}};
            rc = rg_chan_select(cs, 2, 1000000);
            if (rc >= 0) {
                from = rc;
                rc = cs[from].result;
                if (rc == -EPIPE) {
                    *(from ? &d_open : &c_open) = false;
                    continue;
                }
            }
        } else if (n % 3 == 1) {
            rc = rg_chan_recv(s->c, &v);
            if (rc == -EPIPE) {
                c_open = false;
                continue;
            }
        } else {
            rc = rg_chan_recv_timeout(s->c, &v, 50000);
            if (rc == -EPIPE) {
                c_open = false;
                continue;
            }
        }
        if (rc == -ETIMEDOUT || rc == -EAGAIN)
            continue;
        if (rc != 0 || v < 0 || v >= s->producers * STRESS_PER_PRODUCER) {
            atomic_fetch_add(&s->errors, 1);
            continue;
        }
        atomic_fetch_add(&s->counts[v], 1);
        int p = v / STRESS_PER_PRODUCER;
        if (v <= last[from][p])
            atomic_fetch_add(&s->errors, 1);
        last[from][p] = v;
    }
    return NULL;
}

static void run_stress(int producers, int consumers)
{
    static stress s;
    memset(&s, 0, sizeof s);
    s.c = rg_chan_new(sizeof(int), 0);
    s.d = rg_chan_new(sizeof(int), 0);
    s.producers = producers;
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.d);
    pthread_t pt[STRESS_MAX], ct[STRESS_MAX];
    void *pa[STRESS_MAX][2], *ca[STRESS_MAX][2];
    for (int i = 0; i < consumers; i++) {
        ca[i][0] = &s;
        ca[i][1] = (void *)(intptr_t)i;
        pthread_create(&ct[i], NULL, stress_consumer, ca[i]);
    }
    for (int i = 0; i < producers; i++) {
        pa[i][0] = &s;
        pa[i][1] = (void *)(intptr_t)i;
        pthread_create(&pt[i], NULL, stress_producer, pa[i]);
    }
    for (int i = 0; i < producers; i++)
        pthread_join(pt[i], NULL);
    for (int i = 0; i < consumers; i++)
        pthread_join(ct[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&s.errors), 0);
    int missing = 0, dup = 0;
    for (int v = 0; v < producers * STRESS_PER_PRODUCER; v++) {
        int n = atomic_load(&s.counts[v]);
        missing += n == 0;
        dup += n > 1;
    }
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(dup, 0);
    rg_chan_free(s.c);
    rg_chan_free(s.d);
}

static void test_stress_1x1(void) { run_stress(1, 1); }
static void test_stress_2x2(void) { run_stress(2, 2); }
static void test_stress_4x4(void) { run_stress(4, 4); }
static void test_stress_6x2(void) { run_stress(6, 2); }
static void test_stress_2x6(void) { run_stress(2, 6); }

int main(void)
{
    static const cu_test tests[] = {
        {"capacity 0: cap, len, try and timeouts with nobody waiting", test_basics},
        {"a send completes only when a receiver takes the element", test_send_waits_for_receiver},
        {"a receive waits for a sender", test_recv_waits_for_sender},
        {"try_send/try_recv succeed only with a partner waiting", test_try_needs_waiting_partner},
        {"zero-size elements (chan struct{})", test_zero_size},
        {"close wakes blocked senders and receivers with -EPIPE", test_close_wakes_everyone},
        {"timeouts racing a partner: nothing lost or duplicated, 1x1", test_timeouts_race_1x1},
        {"timeouts racing partners, 2 senders x 3 receivers", test_timeouts_race_2x3},
        {"timeouts racing partners, 4x4", test_timeouts_race_4x4},
        {"bulk calls are repeated single operations", test_bulk},
        {"select: send and receive cases need a waiting partner", test_select_basics},
        {"select over unbuffered and buffered channels, and close", test_select_mixed},
        {"two threads selecting on each other's channels", test_select_cross},
        {"a thread blocked on an unbuffered channel never delays a collection", test_blocked_thread_is_parked},
        {"stress 1 producer x 1 consumer", test_stress_1x1},
        {"stress 2x2", test_stress_2x2},
        {"stress 4x4", test_stress_4x4},
        {"stress 6x2", test_stress_6x2},
        {"stress 2x6", test_stress_2x6},
        {NULL, NULL},
    };
    return cu_run("chan_unbuffered", tests);
}
