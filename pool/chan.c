/* pool/chan.c — rg_chan: bounded MPMC channels with Go's semantics.
 *
 * Algorithm.  The buffer is Dmitry Vyukov's bounded MPMC queue
 * ("Bounded MPMC queue", 1024cores.net, 2010): each slot carries a stamp
 * saying which position may use it next; a sender claims position `tail`
 * with one CAS when the slot's stamp equals it, copies the element in and
 * publishes it by storing tail + 1; a receiver claims `head` when the stamp is
 * head + 1 and frees the slot by storing head + one lap.  So that the
 * capacity is exact (Go's cap(ch)) without a division, positions are encoded
 * as (lap, index) with the index below a power of two `mark` and laps
 * counted in units of one_lap = 2 * mark, the encoding crossbeam's bounded
 * channel uses.  The bit `mark` in tail means "closed": close sets it with
 * one fetch_or, after which every sender's CAS on tail fails, so a send
 * either completed before the close or returns -EPIPE.
 *
 * Blocking.  Each direction has a waiter count and an eventcount futex word.
 * A waiter increments the count (seq_cst), reads the eventcount, tries once
 * more, then sleeps on the word.  A sender, after publishing, loads the
 * receivers' count (seq_cst) and, only if it is non-zero, bumps the word and
 * wakes one.  The two seq_cst pairs (CAS tail; load waiters) and
 * (add waiters; load tail) cannot both miss each other, so a wakeup is never
 * lost, and the uncontended path pays no fence beyond the CAS it already
 * does.  A receiver that sees tail moved but the slot not yet published
 * spins briefly (the sender is between two stores) instead of sleeping, and
 * a blocking call spins a few steps (pause, then yield) before it registers
 * as a waiter, so a producer and a consumer running on two cores rarely
 * make a system call.
 * select registers on every channel with a large weight, which makes
 * senders wake all waiters of that channel (a woken selector may take
 * another case, so a wake-one could be lost on it); plain waiters never pay
 * for select.
 *
 * Guarantee: FIFO per channel, each element received exactly once, sends
 * fail only when closed, and no blocked thread consumes CPU.
 */
#include "pool_internal.h"

#define CHAN_MAGIC 0x6368616eu /* "chan" */
#define SEL_WEIGHT (1u << 20)  /* a selector's share of a waiter count */

typedef struct chan_slot {
    atomic_size_t stamp;
    /* elem_size bytes follow */
} chan_slot;

struct rg_chan {
    /* read-only after rg_chan_new: shared by every core without traffic */
    size_t cap, mark, one_lap, elem_size, slot_size;
    char *slots;
    uint32_t magic;
    /* receivers' side */
    _Alignas(64) atomic_size_t head;
    /* senders' side; bit `mark` = closed */
    _Alignas(64) atomic_size_t tail;
    _Alignas(64) atomic_uint recv_waiters; /* blocked receivers (+SEL_WEIGHT per selector) */
    atomic_uint recv_ev;                   /* eventcount receivers sleep on */
    _Alignas(64) atomic_uint send_waiters;
    atomic_uint send_ev;
};

static inline chan_slot *slot_at(const rg_chan *c, size_t idx)
{
    return (chan_slot *)(c->slots + idx * c->slot_size);
}

static inline void *slot_data(chan_slot *s)
{
    return (char *)s + sizeof(chan_slot);
}

/* Element copy: the common sizes (a pointer, an int, two words) as inline
 * moves, not a libc call, which was a third of a try_send+try_recv pair. */
static inline void elem_copy(void *dst, const void *src, size_t n)
{
    switch (n) {
    case 8:
        memcpy(dst, src, 8);
        break;
    case 4:
        memcpy(dst, src, 4);
        break;
    case 16:
        memcpy(dst, src, 16);
        break;
    case 0:
        break;
    default:
        memcpy(dst, src, n);
    }
}

/* ---------------------------------------------------------------------------
 * The ring: one element in or out, never blocking.
 * ------------------------------------------------------------------------- */
static RGI_NOINLINE int chan_push_loop(rg_chan *c, const void *elem)
{
    unsigned step = 0;
    size_t tail = atomic_load_explicit(&c->tail, memory_order_relaxed);
    for (;;) {
        if (RG_UNLIKELY(tail & c->mark))
            return -EPIPE;
        size_t idx = tail & (c->mark - 1);
        chan_slot *s = slot_at(c, idx);
        /* acquire: pairs with the receiver's release that freed the slot, so
         * its copy-out is done before we overwrite the bytes */
        size_t stamp = atomic_load_explicit(&s->stamp, memory_order_acquire);
        if (stamp == tail) {
            size_t next = idx + 1 < c->cap ? tail + 1 : (tail & ~(c->one_lap - 1)) + c->one_lap;
            /* seq_cst: one half of the Dekker pair with a receiver's
             * (add recv_waiters; load tail) — see the file header */
            if (atomic_compare_exchange_weak_explicit(&c->tail, &tail, next, memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                elem_copy(slot_data(s), elem, c->elem_size);
                /* release: publishes the element; pairs with the receiver's acquire */
                atomic_store_explicit(&s->stamp, tail + 1, memory_order_release);
                return 0;
            }
        } else if (stamp + c->one_lap == tail + 1) {
            /* The slot still holds the previous lap's element: full, or a
             * receiver is between claiming it and freeing it. */
            size_t head = atomic_load_explicit(&c->head, memory_order_seq_cst);
            if (head + c->one_lap == tail)
                return -EAGAIN;
            rgi_spin(&step);
            tail = atomic_load_explicit(&c->tail, memory_order_relaxed);
        } else {
            /* another sender claimed this position: catch up */
            __builtin_ia32_pause();
            tail = atomic_load_explicit(&c->tail, memory_order_relaxed);
        }
    }
}

static RGI_NOINLINE int chan_pop_loop(rg_chan *c, void *elem)
{
    unsigned step = 0;
    size_t head = atomic_load_explicit(&c->head, memory_order_relaxed);
    for (;;) {
        size_t idx = head & (c->mark - 1);
        chan_slot *s = slot_at(c, idx);
        /* acquire: pairs with the sender's release that published the element */
        size_t stamp = atomic_load_explicit(&s->stamp, memory_order_acquire);
        if (stamp == head + 1) {
            size_t next = idx + 1 < c->cap ? head + 1 : (head & ~(c->one_lap - 1)) + c->one_lap;
            /* seq_cst: one half of the Dekker pair with a sender's
             * (add send_waiters; load head) */
            if (atomic_compare_exchange_weak_explicit(&c->head, &head, next, memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                if (elem)
                    elem_copy(elem, slot_data(s), c->elem_size);
                /* release: frees the slot for the next lap; pairs with the sender's acquire */
                atomic_store_explicit(&s->stamp, head + c->one_lap, memory_order_release);
                return 0;
            }
        } else if (stamp == head) {
            /* Nothing published here: empty, or a sender is mid-copy. */
            size_t tail = atomic_load_explicit(&c->tail, memory_order_seq_cst);
            if ((tail & ~c->mark) == head)
                return (tail & c->mark) ? -EPIPE : -EAGAIN;
            rgi_spin(&step);
            head = atomic_load_explicit(&c->head, memory_order_relaxed);
        } else {
            __builtin_ia32_pause();
            head = atomic_load_explicit(&c->head, memory_order_relaxed);
        }
    }
}

/* The uncontended attempt, inline: one load of tail, the slot's stamp, one
 * CAS, the copy, the publishing store.  Anything else (full, empty, closed,
 * a lost CAS, a peer between two steps) goes to the loops above, which
 * start over from a fresh read. */
static inline int chan_push(rg_chan *c, const void *elem)
{
    size_t tail = atomic_load_explicit(&c->tail, memory_order_relaxed);
    size_t idx = tail & (c->mark - 1); /* the closed bit makes the stamp test fail */
    chan_slot *s = slot_at(c, idx);
    /* acquire: as in chan_push_loop */
    if (RG_LIKELY(atomic_load_explicit(&s->stamp, memory_order_acquire) == tail)) {
        size_t next = RG_LIKELY(idx + 1 < c->cap) ? tail + 1 : (tail & ~(c->one_lap - 1)) + c->one_lap;
        /* seq_cst: as in chan_push_loop (the waiters' Dekker pair) */
        if (RG_LIKELY(atomic_compare_exchange_strong_explicit(&c->tail, &tail, next, memory_order_seq_cst,
                                                              memory_order_relaxed))) {
            elem_copy(slot_data(s), elem, c->elem_size);
            /* release: publishes the element; pairs with the receiver's acquire */
            atomic_store_explicit(&s->stamp, tail + 1, memory_order_release);
            return 0;
        }
    }
    return chan_push_loop(c, elem);
}

static inline int chan_pop(rg_chan *c, void *elem)
{
    size_t head = atomic_load_explicit(&c->head, memory_order_relaxed);
    size_t idx = head & (c->mark - 1);
    chan_slot *s = slot_at(c, idx);
    /* acquire: pairs with the sender's release that published the element */
    if (RG_LIKELY(atomic_load_explicit(&s->stamp, memory_order_acquire) == head + 1)) {
        size_t next = RG_LIKELY(idx + 1 < c->cap) ? head + 1 : (head & ~(c->one_lap - 1)) + c->one_lap;
        /* seq_cst: as in chan_pop_loop */
        if (RG_LIKELY(atomic_compare_exchange_strong_explicit(&c->head, &head, next, memory_order_seq_cst,
                                                              memory_order_relaxed))) {
            if (elem)
                elem_copy(elem, slot_data(s), c->elem_size);
            /* release: frees the slot for the next lap; pairs with the sender's acquire */
            atomic_store_explicit(&s->stamp, head + c->one_lap, memory_order_release);
            return 0;
        }
    }
    return chan_pop_loop(c, elem);
}

/* Bumps an eventcount and wakes sleepers; all of them when a selector waits. */
static RGI_NOINLINE void wake(atomic_uint *waiters, atomic_uint *ev, int n)
{
    unsigned w = atomic_load_explicit(waiters, memory_order_relaxed);
    /* release: a waiter that reads the new value also sees the element */
    atomic_fetch_add_explicit(ev, 1, memory_order_release);
    rgi_futex_wake(ev, w >= SEL_WEIGHT ? INT_MAX : n);
}

static inline void after_push(rg_chan *c, int n)
{
    /* seq_cst: the other half of the pair with the CAS on tail */
    if (RG_UNLIKELY(atomic_load_explicit(&c->recv_waiters, memory_order_seq_cst) != 0))
        wake(&c->recv_waiters, &c->recv_ev, n);
}

static inline void after_pop(rg_chan *c, int n)
{
    if (RG_UNLIKELY(atomic_load_explicit(&c->send_waiters, memory_order_seq_cst) != 0))
        wake(&c->send_waiters, &c->send_ev, n);
}

/* ---------------------------------------------------------------------------
 * Blocking
 * ------------------------------------------------------------------------- */
/* Before sleeping, spin a little (pause, then yield): a peer on the other
 * core usually makes room within a microsecond, and a futex round trip
 * costs several.  Bounded: about ten steps, then the futex. */
#define SPIN_STEPS 10

static RGI_NOINLINE int send_wait(rg_chan *c, const void *elem, uint64_t deadline)
{
    for (unsigned step = 0; step < SPIN_STEPS;) {
        rgi_spin(&step);
        int r = chan_push(c, elem);
        if (r != -EAGAIN) {
            if (r == 0)
                after_push(c, 1);
            return r;
        }
    }
    for (;;) {
        /* seq_cst: pairs with a receiver's CAS on head then load of send_waiters */
        atomic_fetch_add_explicit(&c->send_waiters, 1, memory_order_seq_cst);
        unsigned ev = atomic_load_explicit(&c->send_ev, memory_order_acquire);
        int r = chan_push(c, elem);
        if (r != -EAGAIN) {
            atomic_fetch_sub_explicit(&c->send_waiters, 1, memory_order_relaxed);
            if (r == 0)
                after_push(c, 1);
            return r;
        }
        int w = rgi_futex_wait(&c->send_ev, ev, deadline);
        atomic_fetch_sub_explicit(&c->send_waiters, 1, memory_order_relaxed);
        if (w == -ETIMEDOUT) {
            r = chan_push(c, elem);
            if (r == 0)
                after_push(c, 1);
            return r == -EAGAIN ? -ETIMEDOUT : r;
        }
    }
}

static RGI_NOINLINE int recv_wait(rg_chan *c, void *elem, uint64_t deadline)
{
    for (unsigned step = 0; step < SPIN_STEPS;) {
        rgi_spin(&step);
        int r = chan_pop(c, elem);
        if (r != -EAGAIN) {
            if (r == 0)
                after_pop(c, 1);
            return r;
        }
    }
    for (;;) {
        atomic_fetch_add_explicit(&c->recv_waiters, 1, memory_order_seq_cst);
        unsigned ev = atomic_load_explicit(&c->recv_ev, memory_order_acquire);
        int r = chan_pop(c, elem);
        if (r != -EAGAIN) {
            atomic_fetch_sub_explicit(&c->recv_waiters, 1, memory_order_relaxed);
            if (r == 0)
                after_pop(c, 1);
            return r;
        }
        int w = rgi_futex_wait(&c->recv_ev, ev, deadline);
        atomic_fetch_sub_explicit(&c->recv_waiters, 1, memory_order_relaxed);
        if (w == -ETIMEDOUT) {
            r = chan_pop(c, elem);
            if (r == 0)
                after_pop(c, 1);
            return r == -EAGAIN ? -ETIMEDOUT : r;
        }
    }
}

static inline bool chan_ok(const rg_chan *c, const void *elem, bool need_elem, const char *call)
{
    if (RG_UNLIKELY(c == NULL || (need_elem && elem == NULL && c->elem_size))) {
        if (RG_DEBUG_CHECKS)
            rgi_diag(call, "channel %p: NULL %s", (const void *)c, c ? "element" : "channel");
        return false;
    }
#if RG_DEBUG_CHECKS
    if (c->magic != CHAN_MAGIC) {
        rgi_diag(call, "%p is not a live channel (freed or foreign)", (const void *)c);
        return false;
    }
#endif
    return true;
}

/* ---------------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------------- */
rg_chan *rg_chan_new(size_t elem_size, size_t capacity)
{
    if (rgi_ensure_init() != 0)
        return NULL;
    if (capacity == 0 || capacity > ((size_t)1 << 31) || elem_size > ((size_t)1 << 20)) {
        errno = EINVAL;
        return NULL;
    }
    size_t slot_size = (sizeof(chan_slot) + elem_size + 7) & ~(size_t)7;
    if (capacity > SIZE_MAX / slot_size) {
        errno = EINVAL;
        return NULL;
    }
    rg_chan *c = rg_malloc_aligned(sizeof *c, 64);
    if (c == NULL)
        return NULL;
    memset(c, 0, sizeof *c);
    c->slots = rgi_arena_malloc(capacity * slot_size);
    if (c->slots == NULL) {
        rg_free(c);
        errno = ENOMEM;
        return NULL;
    }
    size_t mark = 1;
    while (mark < capacity + 1)
        mark <<= 1;
    c->cap = capacity;
    c->mark = mark;
    c->one_lap = mark << 1;
    c->elem_size = elem_size;
    c->slot_size = slot_size;
    for (size_t i = 0; i < capacity; i++)
        atomic_init(&slot_at(c, i)->stamp, i);
    atomic_init(&c->head, 0);
    atomic_init(&c->tail, 0);
    c->magic = CHAN_MAGIC;
    atomic_fetch_add_explicit(&rgi_chans_live, 1, memory_order_relaxed);
    return c;
}

int rg_chan_try_send(rg_chan *c, const void *elem)
{
    if (!chan_ok(c, elem, true, "rg_chan_try_send"))
        return -EINVAL;
    int r = chan_push(c, elem);
    if (RG_LIKELY(r == 0))
        after_push(c, 1);
    return r;
}

int rg_chan_try_recv(rg_chan *c, void *elem)
{
    if (!chan_ok(c, elem, false, "rg_chan_try_recv"))
        return -EINVAL;
    int r = chan_pop(c, elem);
    if (RG_LIKELY(r == 0))
        after_pop(c, 1);
    return r;
}

int rg_chan_send_timeout(rg_chan *c, const void *elem, int64_t timeout_ns)
{
    if (!chan_ok(c, elem, true, "rg_chan_send"))
        return -EINVAL;
    int r = chan_push(c, elem);
    if (RG_LIKELY(r == 0)) {
        after_push(c, 1);
        return 0;
    }
    if (r != -EAGAIN || timeout_ns == 0)
        return r;
    return send_wait(c, elem, rgi_deadline(timeout_ns));
}

int rg_chan_recv_timeout(rg_chan *c, void *elem, int64_t timeout_ns)
{
    if (!chan_ok(c, elem, false, "rg_chan_recv"))
        return -EINVAL;
    int r = chan_pop(c, elem);
    if (RG_LIKELY(r == 0)) {
        after_pop(c, 1);
        return 0;
    }
    if (r != -EAGAIN || timeout_ns == 0)
        return r;
    return recv_wait(c, elem, rgi_deadline(timeout_ns));
}

int rg_chan_send(rg_chan *c, const void *elem)
{
    return rg_chan_send_timeout(c, elem, -1);
}

int rg_chan_recv(rg_chan *c, void *elem)
{
    return rg_chan_recv_timeout(c, elem, -1);
}

int rg_chan_send_bulk(rg_chan *c, const void *elems, unsigned n, int64_t timeout_ns)
{
    if (!chan_ok(c, elems, true, "rg_chan_send_bulk") || n > INT_MAX)
        return -EINVAL;
    const char *e = elems;
    uint64_t deadline = 0;
    unsigned done = 0;
    while (done < n) {
        unsigned batch = 0;
        int r = 0;
        while (done < n && (r = chan_push(c, e + (size_t)done * c->elem_size)) == 0) {
            done++;
            batch++;
        }
        if (batch)
            after_push(c, (int)batch); /* one wakeup for the batch */
        if (done == n)
            break;
        if (r != -EAGAIN || timeout_ns == 0)
            return done ? (int)done : r;
        if (deadline == 0)
            deadline = rgi_deadline(timeout_ns);
        r = send_wait(c, e + (size_t)done * c->elem_size, deadline);
        if (r != 0)
            return done ? (int)done : r;
        done++;
    }
    return (int)done;
}

int rg_chan_recv_bulk(rg_chan *c, void *elems, unsigned n, int64_t timeout_ns)
{
    if (!chan_ok(c, elems, true, "rg_chan_recv_bulk") || n > INT_MAX)
        return -EINVAL;
    if (n == 0)
        return 0;
    char *e = elems;
    int r = chan_pop(c, e);
    if (r == -EAGAIN && timeout_ns != 0)
        r = recv_wait(c, e, rgi_deadline(timeout_ns));
    else if (r == 0)
        after_pop(c, 1);
    if (r != 0)
        return r;
    unsigned done = 1;
    while (done < n && chan_pop(c, e + (size_t)done * c->elem_size) == 0)
        done++;
    if (done > 1)
        after_pop(c, (int)done - 1);
    return (int)done;
}

size_t rg_chan_len(const rg_chan *cc)
{
    if (cc == NULL)
        return 0;
    rg_chan *c = (rg_chan *)cc; /* atomics are not const-loadable everywhere */
    for (;;) {
        size_t tail = atomic_load_explicit(&c->tail, memory_order_seq_cst);
        size_t head = atomic_load_explicit(&c->head, memory_order_seq_cst);
        if (atomic_load_explicit(&c->tail, memory_order_seq_cst) != tail)
            continue; /* a consistent pair: tail did not move while head was read */
        tail &= ~c->mark;
        size_t hix = head & (c->mark - 1), tix = tail & (c->mark - 1);
        if (hix < tix)
            return tix - hix;
        if (hix > tix)
            return c->cap - hix + tix;
        return tail == head ? 0 : c->cap;
    }
}

size_t rg_chan_cap(const rg_chan *c)
{
    return c ? c->cap : 0;
}

int rg_chan_closed(const rg_chan *cc)
{
    if (cc == NULL)
        return 0;
    rg_chan *c = (rg_chan *)cc;
    return (atomic_load_explicit(&c->tail, memory_order_acquire) & c->mark) != 0;
}

void rg_chan_close(rg_chan *c)
{
    if (!chan_ok(c, NULL, false, "rg_chan_close"))
        return;
    /* seq_cst: every later CAS on tail fails; a receiver that reads the new
     * eventcount (release below) sees the mark */
    size_t prev = atomic_fetch_or_explicit(&c->tail, c->mark, memory_order_seq_cst);
    if (prev & c->mark)
        return;
    atomic_fetch_add_explicit(&c->recv_ev, 1, memory_order_release);
    rgi_futex_wake(&c->recv_ev, INT_MAX);
    atomic_fetch_add_explicit(&c->send_ev, 1, memory_order_release);
    rgi_futex_wake(&c->send_ev, INT_MAX);
}

void rg_chan_free(rg_chan *c)
{
    if (c == NULL)
        return;
    if (!chan_ok(c, NULL, false, "rg_chan_free"))
        return;
    c->magic = 0;
    atomic_fetch_sub_explicit(&rgi_chans_live, 1, memory_order_relaxed);
    rgi_arena_free(c->slots);
    rg_free(c);
}

/* ---------------------------------------------------------------------------
 * select
 * ------------------------------------------------------------------------- */
static __thread uint64_t sel_rng;

static uint32_t sel_rand(void)
{
    if (sel_rng == 0)
        sel_rng = rgi_now_ns() | 1;
    sel_rng ^= sel_rng << 13; /* xorshift64: cheap, per thread, good enough for fairness */
    sel_rng ^= sel_rng >> 7;
    sel_rng ^= sel_rng << 17;
    return (uint32_t)(sel_rng >> 32);
}

/* One pass over the cases in `order`: index of the case that fired, or -1. */
static int sel_pass(rg_chan_case *cs, const uint8_t *order, unsigned n)
{
    for (unsigned k = 0; k < n; k++) {
        rg_chan_case *x = &cs[order[k]];
        if (x->chan == NULL)
            continue;
        int r;
        if (x->op == RG_CHAN_SEND) {
            r = chan_push(x->chan, x->elem);
            if (r == 0)
                after_push(x->chan, 1);
        } else {
            r = chan_pop(x->chan, x->elem);
            if (r == 0)
                after_pop(x->chan, 1);
        }
        if (r != -EAGAIN) {
            x->result = r;
            return order[k];
        }
    }
    return -1;
}

int rg_chan_select(rg_chan_case *cs, unsigned n, int64_t timeout_ns)
{
    if (cs == NULL || n == 0 || n > 64)
        return -EINVAL;
    uint8_t order[64];
    unsigned active = 0;
    for (unsigned i = 0; i < n; i++) {
        cs[i].result = 0;
        if (cs[i].op != RG_CHAN_SEND && cs[i].op != RG_CHAN_RECV)
            return -EINVAL;
        if (cs[i].chan && !chan_ok(cs[i].chan, cs[i].elem, cs[i].op == RG_CHAN_SEND, "rg_chan_select"))
            return -EINVAL;
        active += cs[i].chan != NULL;
        order[i] = (uint8_t)i;
    }
    for (unsigned i = n - 1; i > 0; i--) { /* Fisher-Yates: Go's random case order */
        unsigned j = sel_rand() % (i + 1);
        uint8_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int k = sel_pass(cs, order, n);
    if (k >= 0)
        return k;
    if (timeout_ns == 0)
        return -EAGAIN;
    uint64_t deadline = rgi_deadline(timeout_ns);
    atomic_uint *words[64];
    unsigned vals[64];
    for (;;) {
        unsigned m = 0;
        for (unsigned i = 0; i < n; i++) {
            rg_chan *c = cs[i].chan;
            if (c == NULL)
                continue;
            bool snd = cs[i].op == RG_CHAN_SEND;
            /* seq_cst: the same Dekker pair as a single-channel waiter */
            atomic_fetch_add_explicit(snd ? &c->send_waiters : &c->recv_waiters, SEL_WEIGHT, memory_order_seq_cst);
            words[m] = snd ? &c->send_ev : &c->recv_ev;
            vals[m] = atomic_load_explicit(words[m], memory_order_acquire);
            m++;
        }
        k = sel_pass(cs, order, n);
        int w = 0;
        if (k < 0) {
            if (active == 0) { /* Go's select with only nil channels: block until the timeout */
                atomic_uint never;
                atomic_init(&never, 0);
                w = rgi_futex_wait(&never, 0, deadline);
            }
            else
                w = rgi_futex_waitv(words, vals, m, deadline);
        }
        for (unsigned i = 0; i < n; i++) {
            rg_chan *c = cs[i].chan;
            if (c)
                atomic_fetch_sub_explicit(cs[i].op == RG_CHAN_SEND ? &c->send_waiters : &c->recv_waiters,
                                          SEL_WEIGHT, memory_order_relaxed);
        }
        if (k >= 0)
            return k;
        if (w == -ETIMEDOUT) {
            k = sel_pass(cs, order, n);
            return k >= 0 ? k : -ETIMEDOUT;
        }
    }
}
