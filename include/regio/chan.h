/* regio/chan.h — buffered and unbuffered channels with Go's semantics.
 *
 * ---------------------------------------------------------------------------
 * Contract of this section
 * ---------------------------------------------------------------------------
 * An rg_chan is a bounded FIFO of fixed-size elements (copied in and out by
 * value, like a Go `chan T` with a buffer), safe for any number of senders
 * and receivers at once.  The buffer comes from regio and counts against the
 * hard limit.  Capacity 0 makes an unbuffered channel (Go's make(chan T)),
 * described below.
 *
 *  - Blocking calls wait on a futex: a blocked thread burns no CPU.  Waiters
 *    are woken one per element moved, and all of them by rg_chan_close.
 *  - Timeouts are relative, in nanoseconds: 0 means "do not wait" (the try_*
 *    form), a negative value waits forever.  The deadline is computed once,
 *    on CLOCK_MONOTONIC, so spurious wakeups never stretch it.
 *  - Close (Go's close(ch)): afterwards every send returns -EPIPE (never a
 *    crash); receivers still get every buffered element, then -EPIPE.  Close
 *    is linearizable with sends: a send either completed before the close
 *    (and its element will be received) or fails with -EPIPE.  Closing twice
 *    is harmless (Go panics; regio is a library and does not).
 *  - elem_size may be 0 (like chan struct{}); then elem may be NULL.
 *  - Bulk calls move several elements with one wakeup; they are "burst"
 *    calls (as many as possible), documented at each.
 *
 * Unbuffered channels (capacity 0) are a rendezvous, as in Go: nothing is
 * ever buffered; the element goes straight from the sender's buffer to the
 * receiver's.
 *  - rg_chan_send blocks until a receiver has taken the element: a return of
 *    0 means it was received.  rg_chan_recv blocks until a sender offers one.
 *    Waiters are served in FIFO order.
 *  - try_send succeeds only if a receiver is waiting right now (else
 *    -EAGAIN), try_recv only if a sender is.
 *  - A timeout leaves nothing half-done: a send that returns -ETIMEDOUT was
 *    not and will never be delivered; a receive that returns -ETIMEDOUT took
 *    nothing.  (A partner that arrives exactly at the deadline either
 *    completes the exchange, and the call returns 0, or finds nobody.)
 *  - Close wakes every blocked sender and receiver with -EPIPE; afterwards
 *    every send and receive returns -EPIPE at once.
 *  - rg_chan_len is always 0 and rg_chan_cap 0.
 *  - Bulk calls are repeated single operations (see each).
 *  - In rg_chan_select a send case is ready only when a receiver waits and a
 *    receive case only when a sender waits (Go's rule); two threads may
 *    select on each other's unbuffered channels and one pair of cases fires.
 *  - Waiting is on a futex after a short bounded spin (no core burnt while
 *    idle), with the thread parked for the collector as below.
 * The buffered path does not pay for any of this: an unbuffered channel is
 * told apart only on paths that already left the fast path.
 *
 * A blocking call that has to sleep parks an attached thread for the
 * collector while it sleeps (as if wrapped in rg_park()/rg_unpark()), so a
 * thread blocked on a channel never delays a cycle.  Consequence of rule 2
 * of regio/gc.h: a heap pointer held only in a local does not survive a
 * blocking channel call; root or pin it first.  Element bytes in a channel
 * are not traced: a heap pointer sent through a channel must be kept alive
 * by a root, a pin or another heap object until it is received.
 */
#ifndef REGIO_CHAN_H
#define REGIO_CHAN_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rg_chan rg_chan;

/* A channel of `capacity` elements of `elem_size` bytes; capacity 0 makes
 * an unbuffered (rendezvous) channel.
 * NULL + errno: EINVAL (capacity above 2^31, elem_size above 1 MiB), ENOMEM
 * (limit or OS).
 * Refinement of DESIGN.md §3: capacity 0 was refused with EINVAL before
 * unbuffered channels existed; it is now Go's make(chan T). */
RG_EXPORT rg_chan *rg_chan_new(size_t elem_size, size_t capacity);

/* Sends a copy of *elem, blocking while the channel is full (unbuffered:
 * until a receiver has taken it).
 * Returns 0, -EPIPE (closed, before or while waiting), -EINVAL (NULL c, or
 * NULL elem with elem_size > 0). */
RG_EXPORT int rg_chan_send(rg_chan *c, const void *elem);

/* Receives the oldest element into *elem, blocking while the channel is
 * empty (unbuffered: until a sender offers one).  Returns 0, -EPIPE once the
 * channel is closed and drained, -EINVAL.  elem may be NULL to discard the
 * element. */
RG_EXPORT int rg_chan_recv(rg_chan *c, void *elem);

/* Non-blocking forms: -EAGAIN when full (send) or empty (recv) — on an
 * unbuffered channel, when no receiver (send) or no sender (recv) is waiting
 * right now; otherwise as above.  A try_send on a closed channel returns
 * -EPIPE, as does a try_recv on a closed, drained one. */
RG_EXPORT int rg_chan_try_send(rg_chan *c, const void *elem);
RG_EXPORT int rg_chan_try_recv(rg_chan *c, void *elem);

/* Blocking forms with a relative timeout in ns (0 = try, < 0 = forever).
 * Returns 0, -ETIMEDOUT, -EPIPE, -EINVAL (and -EAGAIN for timeout 0).
 * -ETIMEDOUT means nothing moved: on an unbuffered channel a timed-out
 * element is never delivered later. */
RG_EXPORT int rg_chan_send_timeout(rg_chan *c, const void *elem, int64_t timeout_ns);
RG_EXPORT int rg_chan_recv_timeout(rg_chan *c, void *elem, int64_t timeout_ns);

/* Bulk send of n elements laid out contiguously at elems (n * elem_size
 * bytes), waiting up to timeout_ns (0 = try, < 0 = forever) for room.
 * Returns the number sent, which is n unless the timeout expired or the
 * channel was closed part way (the first count elements were sent, in
 * order).  When none could be sent: -EAGAIN (timeout 0), -ETIMEDOUT, -EPIPE.
 * -EINVAL for bad arguments.  n == 0 returns 0.
 * Unbuffered: n single sends in order, each handed to a receiver, all within
 * the one deadline (timeout 0: as many as receivers are waiting now). */
RG_EXPORT int rg_chan_send_bulk(rg_chan *c, const void *elems, unsigned n, int64_t timeout_ns);

/* Bulk receive: waits up to timeout_ns for at least one element, then takes
 * as many as are buffered, up to n, into elems.  Returns the number received
 * (>= 1), or -EAGAIN (timeout 0, empty), -ETIMEDOUT, -EPIPE (closed and
 * drained), -EINVAL.  n == 0 returns 0.
 * Unbuffered: waits for one sender, then takes from as many further senders
 * as are waiting right now, up to n (repeated single receives). */
RG_EXPORT int rg_chan_recv_bulk(rg_chan *c, void *elems, unsigned n, int64_t timeout_ns);

/* Elements buffered now (a snapshot under concurrency), and the capacity;
 * both 0 for an unbuffered channel. */
RG_EXPORT size_t rg_chan_len(const rg_chan *c);
RG_EXPORT size_t rg_chan_cap(const rg_chan *c);
/* 1 once rg_chan_close was called, else 0. */
RG_EXPORT int rg_chan_closed(const rg_chan *c);

/* Closes the channel: wakes every blocked sender (-EPIPE) and receiver
 * (they drain what is buffered, then get -EPIPE; unbuffered: -EPIPE at
 * once).  NULL and repeated calls are harmless. */
RG_EXPORT void rg_chan_close(rg_chan *c);

/* Frees the channel and any elements still buffered (they are plain bytes).
 * No thread may be using or blocked on it.  NULL does nothing. */
RG_EXPORT void rg_chan_free(rg_chan *c);

/* Select over several channels (Go's select): one case fires.
 * Each case names a channel, the operation and the element buffer.  Cases
 * are tried in a random order each call (Go's fairness); with timeout 0 the
 * call never blocks (Go's `default:`).  A NULL chan disables its case (as a
 * nil channel does in Go).  A case on an unbuffered channel is ready only
 * when a partner waits on it (a receiver for a send case, a sender for a
 * receive case); a blocked select waits as a partner on all its unbuffered
 * cases at once, and two selects on the same channels find each other.  The
 * two cases of one select never pair with each other.
 * Returns the index of the case that fired; for a receive on a closed,
 * drained channel that case fires with its `result` set to -EPIPE (as Go's
 * `v, ok := <-ch` gives ok == false); a send on a closed channel fires
 * with -EPIPE.  Otherwise result is 0.  -EAGAIN (timeout 0, nothing ready),
 * -ETIMEDOUT, -EINVAL (n == 0 or above 64, bad case). */
enum rg_chan_op { RG_CHAN_SEND = 1, RG_CHAN_RECV = 2 };
typedef struct rg_chan_case {
    rg_chan *chan;
    int op;        /* enum rg_chan_op */
    void *elem;    /* send: the element to copy in; recv: where to copy out (may be NULL) */
    int result;    /* out: 0 or -EPIPE for the case that fired */
} rg_chan_case;
RG_EXPORT int rg_chan_select(rg_chan_case *cases, unsigned n, int64_t timeout_ns);

#ifdef __cplusplus
}
#endif
#endif /* REGIO_CHAN_H */
