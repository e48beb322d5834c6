/* regio/uring.h — io_uring glue: regio memory as fixed buffers, a provided
 * buffer ring fed by an rg_objpool, and zero-copy sends of mapped files.
 *
 * ---------------------------------------------------------------------------
 * Contract of this section
 * ---------------------------------------------------------------------------
 * Built only with the meson feature `uring` (liburing); not included by
 * <regio.h>: include <regio/uring.h> yourself and link liburing.  Works with
 * liburing 2.3 (no io_uring_setup_buf_ring there: regio maps the ring).
 *
 * Fixed buffers (rg_uring_bufs).  A table of up to 16384 byte ranges — a
 * region block, each object of an rg_objpool, any memory regio handed out —
 * registered at once with io_uring_register_buffers; then READ_FIXED and
 * WRITE_FIXED on any address inside a range find its index by a binary
 * search (rg_uring_prep_read_fixed / _write_fixed).  Registration pins the
 * pages: above RLIMIT_MEMLOCK (8 MiB for non-root here) the kernel answers
 * -ENOMEM.  The memory must stay alive until the ring is gone or the
 * buffers are unregistered.
 *
 * Buffer ring (rg_uring_bufring).  A provided buffer ring (bgid) whose
 * buffers are objects of an rg_objpool.  A recv with IOSQE_BUFFER_SELECT (or
 * a multishot recv) takes one; rg_uring_bufring_take turns the CQE into the
 * buffer, which then belongs to the caller; rg_uring_bufring_put gives it
 * back and re-arms it in the ring at once (or returns it to the pool when
 * the ring is full).  Guarantee: running dry never drops a connection.  A
 * recv that finds the ring empty completes with -ENOBUFS; the caller hands
 * that to rg_uring_bufring_enobufs, which re-arms from the pool and says
 * whether a buffer is armed now (resubmit at once) or not (park the
 * connection; rg_uring_bufring_put returns 1 when it re-arms one, the signal
 * to resubmit a parked recv).  The data stays in the socket meanwhile: reads
 * slow down, nothing is lost.  (tests/uring.c proves it.)
 *
 * Zero-copy sends (rg_uring_zc).  SEND_ZC of a view or a mapped file range.
 * The kernel posts a result CQE (flag F_MORE if a notification follows) and
 * later a notification CQE (F_NOTIF) once it no longer reads the buffer; the
 * buffer (or the map) may be reused or closed only then.  rg_uring_zc_cqe
 * tracks both.  On loopback the kernel copies anyway (the notification says
 * so); the semantics are the same.
 *
 * Errors: NULL + errno, or -errno, as everywhere in regio; the kernel's
 * -errno from liburing is passed through unchanged (-EOPNOTSUPP, -EINVAL
 * when the kernel lacks a feature).
 *
 * Threads: each object here is used by one thread (the ring's owner).
 */
#ifndef REGIO_URING_H
#define REGIO_URING_H

#include "common.h"
#include "mapfile.h"
#include "pool.h"
#include "region.h"

#include <liburing.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Fixed buffers
 * ------------------------------------------------------------------------- */
#define RG_URING_MAX_FIXED 16384

typedef struct rg_uring_bufs rg_uring_bufs;

/* A table for up to max ranges (<= RG_URING_MAX_FIXED).  NULL + errno
 * (EINVAL, ENOMEM). */
RG_EXPORT rg_uring_bufs *rg_uring_bufs_new(unsigned max);
/* Adds [base, base+len); returns its buffer index, or -EINVAL (NULL, len 0,
 * overlaps a range already added), -ENOSPC (table full), -EBUSY (already
 * registered). */
RG_EXPORT int rg_uring_bufs_add(rg_uring_bufs *t, void *base, size_t len);
/* Allocates len bytes (4 KiB-aligned) from region r and adds them; *out gets
 * the address.  Index, or -ENOMEM and the errors of rg_uring_bufs_add. */
RG_EXPORT int rg_uring_bufs_add_region(rg_uring_bufs *t, rg_region *r, size_t len, void **out);
/* Adds every object of pool p: takes `count` objects of obj_size bytes (all
 * the pool will ever hold: count = capacity, and the pool's ring_size must
 * be 0 or >= capacity so objects are never dropped and re-created
 * elsewhere), adds each, puts them back.  Returns the number added, or
 * -EBUSY (fewer than count objects could be taken now), -ENOSPC, -EINVAL. */
RG_EXPORT int rg_uring_bufs_add_objpool(rg_uring_bufs *t, rg_objpool *p, size_t obj_size, unsigned count);
/* io_uring_register_buffers of every range added.  0 or -errno (-ENOMEM:
 * above RLIMIT_MEMLOCK; -EBUSY: already registered). */
RG_EXPORT int rg_uring_bufs_register(rg_uring_bufs *t, struct io_uring *ring);
/* Index of the range holding [p, p+n), or -ENOENT. */
RG_EXPORT int rg_uring_bufs_index(const rg_uring_bufs *t, const void *p, size_t n);
/* io_uring_prep_read_fixed / _write_fixed with the index looked up:
 * 0, or -ENOENT (buf not inside one registered range), -EINVAL. */
RG_EXPORT int rg_uring_prep_read_fixed(const rg_uring_bufs *t, struct io_uring_sqe *sqe, int fd, void *buf,
                                       unsigned n, uint64_t off);
RG_EXPORT int rg_uring_prep_write_fixed(const rg_uring_bufs *t, struct io_uring_sqe *sqe, int fd, const void *buf,
                                        unsigned n, uint64_t off);
/* Frees the table (not the memory; unregister first or exit the ring). */
RG_EXPORT void rg_uring_bufs_free(rg_uring_bufs *t);

/* ---------------------------------------------------------------------------
 * Provided buffer ring fed by an rg_objpool
 * ------------------------------------------------------------------------- */
typedef struct rg_uring_bufring rg_uring_bufring;

typedef struct rg_uring_bufring_opts {
    unsigned entries;      /* ring slots: a power of two, 1..32768 */
    unsigned short bgid;   /* buffer group id for IOSQE_BUFFER_SELECT */
    rg_objpool *pool;      /* where buffers come from and go back to */
    size_t buf_size;       /* bytes of each pool object offered to the kernel */
} rg_uring_bufring_opts;

typedef struct rg_uring_bufring_stats {
    uint64_t armed;        /* buffers in the ring now */
    uint64_t taken;        /* cumulative buffers handed to the caller */
    uint64_t rearmed;      /* cumulative puts that went straight back into the ring */
    uint64_t enobufs;      /* cumulative -ENOBUFS completions reported */
    uint64_t pool_empty;   /* refills that found the pool empty */
} rg_uring_bufring_stats;

/* Maps and registers the ring (memory charged against the hard limit) and
 * arms it with as many pool objects as it holds (or the pool gives).
 * NULL + errno: EINVAL (bad opts), ENOMEM, or the kernel's error
 * (EINVAL/EOPNOTSUPP where provided buffer rings are not supported). */
RG_EXPORT rg_uring_bufring *rg_uring_bufring_new(struct io_uring *ring, const rg_uring_bufring_opts *o);
/* For a CQE with IORING_CQE_F_BUFFER: the buffer (now the caller's) and
 * *len = cqe->res (0 for EOF).  NULL + errno=EINVAL if the CQE carries no
 * buffer of this ring. */
RG_EXPORT void *rg_uring_bufring_take(rg_uring_bufring *br, const struct io_uring_cqe *cqe, size_t *len);
/* Gives a buffer back: 1 if it was re-armed in the ring at once (a parked
 * recv may be resubmitted), 0 if it went back to the pool; -EINVAL. */
RG_EXPORT int rg_uring_bufring_put(rg_uring_bufring *br, void *buf);
/* Arms free slots from the pool; returns the number armed now in total. */
RG_EXPORT int rg_uring_bufring_refill(rg_uring_bufring *br);
/* Reports a -ENOBUFS completion: counts it and refills.  Returns the number
 * of buffers armed now: > 0 resubmit the recv at once, 0 park it until
 * rg_uring_bufring_put returns 1. */
RG_EXPORT int rg_uring_bufring_enobufs(rg_uring_bufring *br);
RG_EXPORT unsigned short rg_uring_bufring_bgid(const rg_uring_bufring *br);
RG_EXPORT void rg_uring_bufring_read_stats(const rg_uring_bufring *br, rg_uring_bufring_stats *st);
/* Unregisters the ring, returns armed buffers to the pool, unmaps.  Buffers
 * the caller still holds must be put back to the pool directly. */
RG_EXPORT void rg_uring_bufring_free(rg_uring_bufring *br);

/* ---------------------------------------------------------------------------
 * Zero-copy sends
 * ------------------------------------------------------------------------- */
typedef struct rg_uring_zc {
    int res;               /* bytes sent, or -errno, once the result CQE came */
    unsigned char state;   /* internal: 0 idle, 1 sent, 2 result seen, waiting for the notification */
    bool copied;           /* the notification said the kernel copied (loopback) */
} rg_uring_zc;

/* Is IORING_OP_SEND_ZC (or any opcode) supported by this ring's kernel? */
RG_EXPORT bool rg_uring_op_supported(struct io_uring *ring, int op);
/* SEND_ZC of v on fd; z tracks it (the caller sets sqe user_data and routes
 * both CQEs to rg_uring_zc_cqe).  -EINVAL (NULL, v longer than 2 GiB),
 * -EBUSY (z still in flight). */
RG_EXPORT int rg_uring_prep_send_zc(struct io_uring_sqe *sqe, int fd, rg_view v, int msg_flags, rg_uring_zc *z);
/* The same for [off, off+len) of a whole-file map: -EINVAL when the range is
 * outside the map or the map is windowed.  The map must stay open until
 * rg_uring_zc_cqe returned 1.  A file truncated meanwhile fails the send
 * with -EFAULT in z->res; it never raises SIGBUS. */
RG_EXPORT int rg_uring_prep_send_zc_map(struct io_uring_sqe *sqe, int fd, const rg_mapfile *m, size_t off, size_t len,
                                        int msg_flags, rg_uring_zc *z);
/* Feeds one CQE of z's send.  Returns 1 when the send is over and its buffer
 * may be reused (z->res holds the result), 0 while a CQE is still due. */
RG_EXPORT int rg_uring_zc_cqe(rg_uring_zc *z, const struct io_uring_cqe *cqe);

#ifdef __cplusplus
}
#endif
#endif /* REGIO_URING_H */
