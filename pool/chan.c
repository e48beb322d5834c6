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
 * Unbuffered channels (capacity 0, Go's make(chan T)) are a rendezvous,
 * built like Go's runtime/chan.go: a per-channel mutex guards two FIFO
 * queues of waiters (blocked senders, blocked receivers).  A waiter is a
 * record on its own stack naming its element buffer and a state word
 * (shared by all the cases of one select).  An arriving operation takes the
 * first waiter of the opposite queue whose state it can move from WAIT to
 * CLAIMED with one CAS, unlocks, copies the element straight between the
 * two callers' buffers and stores DONE; a waiter that times out moves its
 * state from WAIT to CANCELLED instead, so exactly one of the two wins and a
 * timed-out send is never delivered later.  A select locks the unbuffered
 * channels it names in address order (no deadlock), looks for a partner on
 * each, and only then enqueues a record on every one of them, so two
 * threads selecting on each other's channels always find each other.  The
 * buffered path never looks at any of this: the ring of an unbuffered
 * channel is one sentinel slot whose stamp never matches, so the inline
 * attempts fall through to the slow paths, which branch on the capacity.
 *
 * Guarantee: FIFO per channel, each element received exactly once, sends
 * fail only when closed, and no blocked thread consumes CPU.  Unbuffered: a
 * send returns 0 only once a receiver has taken its element.
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

/* Before sleeping, spin a little (pause, then yield): a peer on the other
 * core usually makes room within a microsecond, and a futex round trip
 * costs several.  Bounded: about ten steps, then the futex. */
#define SPIN_STEPS 10

/* ---------------------------------------------------------------------------
 * Unbuffered channels: the rendezvous state (see the file header)
 * ------------------------------------------------------------------------- */
/* A waiter's state word.  WAIT/SLEEP: claimable (SLEEP: the owner is, or is
 * about to be, asleep on the word, so the claimer must wake it).  Only the
 * owner leaves WAIT for SLEEP or CANCELLED; only a claimer (a partner or
 * close) leaves WAIT/SLEEP for CLAIMED, then DONE. */
enum { U_WAIT = 0, U_SLEEP = 1, U_CLAIMED = 2, U_DONE = 3, U_CANCELLED = 4 };

/* The sentinel slot's stamp: never a tail (0, or 1 when closed) nor a head
 * + 1 (1), so chan_push/chan_pop always go to their loops. */
#define UNBUF_STAMP ((size_t)2)

typedef struct usel { /* one blocked call; the cases of a select share it */
    atomic_uint state;
    int fired;  /* the case index, written by the claimer before DONE */
    int result; /* 0, or -EPIPE when close fired it */
} usel;

typedef struct uwait { /* one waiting case, on its owner's stack */
    struct uwait *next, *prev;
    usel *sel;
    void *elem; /* send: the element; recv: where it goes (may be NULL) */
    int idx;
    bool linked; /* in a queue; changed only under the channel's lock */
} uwait;

typedef struct uqueue {
    uwait *head, *tail;
    atomic_uint n; /* linked records; read without the lock by try_* */
} uqueue;

typedef struct unbuf { /* an unbuffered channel's c->slots */
    chan_slot sentinel; /* first: slot_at(c, 0) */
    pthread_mutex_t lock;
    uqueue sendq, recvq;
} unbuf;

static inline unbuf *ub_of(const rg_chan *c)
{
    return (unbuf *)(void *)c->slots;
}

static inline bool ub_closed(rg_chan *c)
{
    /* acquire: pairs with close's fetch_or (done under the lock) */
    return (atomic_load_explicit(&c->tail, memory_order_acquire) & c->mark) != 0;
}

static void uq_push_locked(uqueue *q, uwait *w)
{
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    w->linked = true;
    /* seq_cst: try_* reads n without the lock; the lock orders the rest */
    atomic_fetch_add_explicit(&q->n, 1, memory_order_seq_cst);
}

static void uq_unlink_locked(uqueue *q, uwait *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->linked = false;
    atomic_fetch_sub_explicit(&q->n, 1, memory_order_seq_cst);
}

/* Moves s from WAIT or SLEEP to CLAIMED; returns the state it had (above
 * U_SLEEP: not claimable, left alone). */
static unsigned usel_claim(usel *s)
{
    unsigned st = atomic_load_explicit(&s->state, memory_order_relaxed);
    /* acq_rel: exactly one of a claimer and the cancelling owner wins this
     * word; the element bytes themselves are ordered by the channel lock */
    while (st <= U_SLEEP &&
           !atomic_compare_exchange_weak_explicit(&s->state, &st, U_CLAIMED, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
    }
    return st;
}

/* Owner: cancels s unless a claimer got it first; true when cancelled. */
static bool usel_cancel(usel *s)
{
    unsigned st = atomic_load_explicit(&s->state, memory_order_relaxed);
    /* acq_rel: the other side of usel_claim's CAS */
    while (st <= U_SLEEP &&
           !atomic_compare_exchange_weak_explicit(&s->state, &st, U_CANCELLED, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
    }
    return st <= U_SLEEP;
}

/* Owner, after a claim: the claimer is between CLAIMED and DONE (a copy and
 * a wake, never a block), so a bounded spin then yields is the right wait. */
static void usel_wait_done(usel *s)
{
    unsigned step = 0;
    /* acquire: pairs with usel_finish's release; fired, result and the
     * copied element are visible afterwards */
    while (atomic_load_explicit(&s->state, memory_order_acquire) != U_DONE)
        rgi_spin(&step);
}

/* Claimer: publishes the outcome of a claimed waiter w and lets it go.  The
 * wake comes before DONE so that it never targets a record whose owner has
 * already returned (the woken owner waits for DONE in usel_wait_done). */
static void usel_finish(uwait *w, unsigned prev, int result)
{
    usel *s = w->sel;
    s->fired = w->idx;
    s->result = result;
    if (prev == U_SLEEP)
        rgi_futex_wake(&s->state, 1);
    /* release: pairs with usel_wait_done's acquire */
    atomic_store_explicit(&s->state, U_DONE, memory_order_release);
}

/* The first claimable waiter of q, claimed and unlinked, or NULL.  Stale
 * records (cancelled, or fired through another case of their select) are
 * unlinked on the way; their owners check `linked` before unlinking. */
static uwait *uq_take_locked(uqueue *q, unsigned *prev)
{
    uwait *w;
    while ((w = q->head) != NULL) {
        uq_unlink_locked(q, w);
        unsigned st = usel_claim(w->sel);
        if (st <= U_SLEEP) {
            *prev = st;
            return w;
        }
    }
    return NULL;
}

/* Claimer, after unlocking: copies the element between the two callers'
 * buffers (snd: the claimer sends `mine`) and completes the waiter. */
static void ub_hand_over(const rg_chan *c, uwait *w, unsigned prev, bool snd, void *mine)
{
    if (snd) {
        if (w->elem)
            elem_copy(w->elem, mine, c->elem_size);
    } else if (mine) {
        elem_copy(mine, w->elem, c->elem_size);
    }
    usel_finish(w, prev, 0);
}

/* try_send / try_recv on an unbuffered channel: succeeds only with a partner
 * waiting now.  The lock-free count skips the lock when nobody waits (a
 * polling select with `default:` must stay cheap). */
static RGI_NOINLINE int ub_try(rg_chan *c, bool snd, void *elem)
{
    unbuf *u = ub_of(c);
    uqueue *q = snd ? &u->recvq : &u->sendq;
    if (ub_closed(c))
        return -EPIPE;
    /* seq_cst: pairs with uq_push_locked's increment */
    if (atomic_load_explicit(&q->n, memory_order_seq_cst) == 0)
        return -EAGAIN;
    unsigned prev = 0;
    uwait *w = NULL;
    int r = -EAGAIN;
    pthread_mutex_lock(&u->lock);
    if (ub_closed(c))
        r = -EPIPE;
    else if ((w = uq_take_locked(q, &prev)) != NULL)
        r = 0;
    pthread_mutex_unlock(&u->lock);
    if (w)
        ub_hand_over(c, w, prev, snd, elem);
    return r;
}

/* Owner: waits until s is fired (0) or the deadline passes and s is
 * cancelled (-ETIMEDOUT; nobody touches s any more).  A bounded spin first:
 * a partner on the other core usually arrives within a microsecond, and a
 * futex round trip costs several. */
static int usel_sleep(usel *s, uint64_t deadline)
{
    for (unsigned step = 0; step < SPIN_STEPS;) {
        if (atomic_load_explicit(&s->state, memory_order_relaxed) != U_WAIT)
            goto fired;
        rgi_spin(&step);
    }
    unsigned st = U_WAIT;
    /* relaxed: a CAS on the one word; a claimer that moved it first makes
     * this fail, one that comes later sees SLEEP and wakes us */
    if (atomic_compare_exchange_strong_explicit(&s->state, &st, U_SLEEP, memory_order_relaxed,
                                                memory_order_relaxed)) {
        for (;;) {
            int w = rgi_futex_wait(&s->state, U_SLEEP, deadline);
            if (atomic_load_explicit(&s->state, memory_order_relaxed) != U_SLEEP)
                break;
            if (w == -ETIMEDOUT) {
                if (usel_cancel(s))
                    return -ETIMEDOUT;
                break;
            }
        }
    }
fired:
    usel_wait_done(s);
    return 0;
}

/* Blocking send (snd) or receive on an unbuffered channel. */
static RGI_NOINLINE int ub_wait(rg_chan *c, bool snd, void *elem, uint64_t deadline)
{
    unbuf *u = ub_of(c);
    usel s = {.fired = 0, .result = 0};
    atomic_init(&s.state, U_WAIT);
    uwait me = {.sel = &s, .elem = elem, .idx = 0};
    unsigned prev = 0;
    uwait *w = NULL;
    pthread_mutex_lock(&u->lock);
    if (ub_closed(c)) {
        pthread_mutex_unlock(&u->lock);
        return -EPIPE;
    }
    w = uq_take_locked(snd ? &u->recvq : &u->sendq, &prev);
    if (w == NULL)
        uq_push_locked(snd ? &u->sendq : &u->recvq, &me);
    pthread_mutex_unlock(&u->lock);
    if (w) {
        ub_hand_over(c, w, prev, snd, elem);
        return 0;
    }
    if (usel_sleep(&s, deadline) == 0)
        return s.result; /* a partner (0) or close (-EPIPE) unlinked us */
    pthread_mutex_lock(&u->lock);
    if (me.linked)
        uq_unlink_locked(snd ? &u->sendq : &u->recvq, &me);
    pthread_mutex_unlock(&u->lock);
    return -ETIMEDOUT;
}

/* ---------------------------------------------------------------------------
 * The ring: one element in or out, never blocking.
 * ------------------------------------------------------------------------- */
static RGI_NOINLINE int chan_push_loop(rg_chan *c, const void *elem)
{
    /* an unbuffered channel's sentinel sends every attempt here */
    if (RG_UNLIKELY(c->cap == 0))
        return ub_try(c, true, (void *)elem);
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
    if (RG_UNLIKELY(c->cap == 0))
        return ub_try(c, false, elem);
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
static RGI_NOINLINE int send_wait(rg_chan *c, const void *elem, uint64_t deadline)
{
    if (c->cap == 0)
        return ub_wait(c, true, (void *)elem, deadline);
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
    if (c->cap == 0)
        return ub_wait(c, false, elem, deadline);
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

/* Close of an unbuffered channel: under the lock, so that an operation
 * either saw the channel open and queued (and is fired here with -EPIPE) or
 * sees it closed. */
static RGI_NOINLINE void ub_close(rg_chan *c)
{
    unbuf *u = ub_of(c);
    pthread_mutex_lock(&u->lock);
    /* seq_cst, as for a buffered close; ub_closed's acquire pairs with it */
    atomic_fetch_or_explicit(&c->tail, c->mark, memory_order_seq_cst);
    unsigned prev;
    uwait *w;
    while ((w = uq_take_locked(&u->sendq, &prev)) != NULL)
        usel_finish(w, prev, -EPIPE);
    while ((w = uq_take_locked(&u->recvq, &prev)) != NULL)
        usel_finish(w, prev, -EPIPE);
    pthread_mutex_unlock(&u->lock);
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
    if (capacity > ((size_t)1 << 31) || elem_size > ((size_t)1 << 20)) {
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
    /* unbuffered: no ring, the rendezvous state behind a sentinel slot */
    c->slots = rgi_arena_malloc(capacity ? capacity * slot_size : sizeof(unbuf));
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
    if (capacity == 0) {
        unbuf *u = ub_of(c);
        memset(u, 0, sizeof *u);
        atomic_init(&u->sentinel.stamp, UNBUF_STAMP);
        pthread_mutex_init(&u->lock, NULL);
    }
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
    if (c->cap == 0) {
        ub_close(c);
        return;
    }
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
    if (c->cap == 0)
        pthread_mutex_destroy(&ub_of(c)->lock);
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

/* Registers (delta = +SEL_WEIGHT) or unregisters a selector on the buffered
 * channels of its cases; fills words/vals with their eventcounts when
 * registering.  Returns how many. */
static unsigned sel_weigh(rg_chan_case *cs, unsigned n, int delta, atomic_uint **words, unsigned *vals)
{
    unsigned m = 0;
    for (unsigned i = 0; i < n; i++) {
        rg_chan *c = cs[i].chan;
        if (c == NULL || c->cap == 0)
            continue;
        bool snd = cs[i].op == RG_CHAN_SEND;
        /* seq_cst: the same Dekker pair as a single-channel waiter (relaxed
         * suffices to leave) */
        atomic_fetch_add_explicit(snd ? &c->send_waiters : &c->recv_waiters, (unsigned)delta,
                                  delta > 0 ? memory_order_seq_cst : memory_order_relaxed);
        if (delta > 0) {
            words[m] = snd ? &c->send_ev : &c->recv_ev;
            vals[m] = atomic_load_explicit(words[m], memory_order_acquire);
        }
        m++;
    }
    return m;
}

/* A blocking select with at least one unbuffered case.  Each round: register
 * on the buffered channels (eventcounts), lock the unbuffered ones in address
 * order, try every case in the round's random order (an unbuffered case is
 * ready only with a partner queued), and if none fired queue one record per
 * unbuffered case, all sharing one state word; unlock; sleep on that word
 * and the eventcounts at once.  Woken: cancel the word (or learn which case
 * a partner fired), unlink the records, and go round again. */
static RGI_NOINLINE int sel_block_unbuf(rg_chan_case *cs, const uint8_t *order, unsigned n, uint64_t deadline)
{
    rg_chan *locks[64];
    unsigned nl = 0;
    for (unsigned i = 0; i < n; i++) { /* distinct unbuffered channels, sorted by address */
        rg_chan *c = cs[i].chan;
        if (c == NULL || c->cap != 0)
            continue;
        unsigned j = 0;
        while (j < nl && (uintptr_t)locks[j] < (uintptr_t)c)
            j++;
        if (j < nl && locks[j] == c)
            continue;
        memmove(&locks[j + 1], &locks[j], (nl - j) * sizeof locks[0]);
        locks[j] = c;
        nl++;
    }
    uwait recs[64];
    usel s;
    atomic_init(&s.state, U_WAIT);
    atomic_uint *words[65];
    unsigned vals[65];
    for (;;) {
        unsigned m = sel_weigh(cs, n, (int)SEL_WEIGHT, words, vals);
        /* no record of ours is linked now: nobody else can see s */
        atomic_store_explicit(&s.state, U_WAIT, memory_order_relaxed);
        s.fired = -1;
        s.result = 0;
        for (unsigned j = 0; j < nl; j++)
            pthread_mutex_lock(&ub_of(locks[j])->lock);
        int k = -1;
        uwait *partner = NULL;
        unsigned prev = 0;
        for (unsigned o = 0; o < n && k < 0; o++) {
            unsigned i = order[o];
            rg_chan_case *x = &cs[i];
            rg_chan *c = x->chan;
            if (c == NULL)
                continue;
            bool snd = x->op == RG_CHAN_SEND;
            int r;
            if (c->cap != 0) {
                r = snd ? chan_push(c, x->elem) : chan_pop(c, x->elem);
                if (r == 0) {
                    if (snd)
                        after_push(c, 1);
                    else
                        after_pop(c, 1);
                }
            } else if (ub_closed(c)) {
                r = -EPIPE;
            } else {
                unbuf *u = ub_of(c);
                partner = uq_take_locked(snd ? &u->recvq : &u->sendq, &prev);
                r = partner ? 0 : -EAGAIN;
            }
            if (r != -EAGAIN) {
                x->result = r;
                k = (int)i;
            }
        }
        if (k < 0) {
            for (unsigned i = 0; i < n; i++) {
                rg_chan *c = cs[i].chan;
                if (c == NULL || c->cap != 0)
                    continue;
                unbuf *u = ub_of(c);
                recs[i] = (uwait){.sel = &s, .elem = cs[i].elem, .idx = (int)i};
                uq_push_locked(cs[i].op == RG_CHAN_SEND ? &u->sendq : &u->recvq, &recs[i]);
            }
        }
        for (unsigned j = nl; j-- > 0;)
            pthread_mutex_unlock(&ub_of(locks[j])->lock);
        if (k >= 0) {
            sel_weigh(cs, n, -(int)SEL_WEIGHT, NULL, NULL);
            if (partner)
                ub_hand_over(cs[k].chan, partner, prev, cs[k].op == RG_CHAN_SEND, cs[k].elem);
            return k;
        }
        int w = 0;
        unsigned st = U_WAIT;
        /* relaxed: as in usel_sleep; a claimer that came first makes it fail */
        if (atomic_compare_exchange_strong_explicit(&s.state, &st, U_SLEEP, memory_order_relaxed,
                                                    memory_order_relaxed)) {
            words[m] = &s.state;
            vals[m] = U_SLEEP;
            for (;;) {
                w = m ? rgi_futex_waitv(words, vals, m + 1, deadline) : rgi_futex_wait(&s.state, U_SLEEP, deadline);
                if (atomic_load_explicit(&s.state, memory_order_relaxed) != U_SLEEP)
                    break; /* a partner or close fired one of our records */
                if (w == -ETIMEDOUT || m > 0)
                    break; /* out of time, or a buffered channel may have moved */
            }
        }
        sel_weigh(cs, n, -(int)SEL_WEIGHT, NULL, NULL);
        bool cancelled = usel_cancel(&s);
        if (!cancelled)
            usel_wait_done(&s);
        for (unsigned j = 0; j < nl; j++) { /* take back the records still queued */
            unbuf *u = ub_of(locks[j]);
            pthread_mutex_lock(&u->lock);
            for (unsigned i = 0; i < n; i++)
                if (cs[i].chan == locks[j] && recs[i].linked)
                    uq_unlink_locked(cs[i].op == RG_CHAN_SEND ? &u->sendq : &u->recvq, &recs[i]);
            pthread_mutex_unlock(&u->lock);
        }
        if (!cancelled) {
            cs[s.fired].result = s.result;
            return s.fired;
        }
        if (w == -ETIMEDOUT) {
            k = sel_pass(cs, order, n);
            return k >= 0 ? k : -ETIMEDOUT;
        }
    }
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
    for (unsigned i = 0; i < n; i++)
        if (cs[i].chan && cs[i].chan->cap == 0)
            return sel_block_unbuf(cs, order, n, deadline);
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
