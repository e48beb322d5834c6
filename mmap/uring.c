/* mmap/uring.c — io_uring glue: fixed-buffer tables over regio memory, a
 * provided buffer ring fed by an rg_objpool, zero-copy send tracking.
 *
 * Fixed buffers: ranges are kept in registration order (the kernel's buffer
 * index) and, once registered, in a copy sorted by address, so the index of
 * any address is a binary search (O(log n), no syscall).
 *
 * Buffer ring: the ring (entries x 16 bytes) is anonymous memory mapped
 * here and charged to the hard limit, registered with
 * io_uring_register_buf_ring (liburing 2.3 has no io_uring_setup_buf_ring).
 * Buffer ids are slots of a table bid -> object; free bids live on a stack.
 * The kernel consumes ring entries in order and reports the bid of the one it
 * used, so a bid is free again as soon as its CQE is taken; re-arming a
 * buffer is one ring entry and a release store of the tail
 * (io_uring_buf_ring_advance), which the kernel's acquire load of the tail
 * pairs with.  Reference: io_uring_register_buf_ring(3), "provided buffer
 * rings" (Linux 5.19).
 *
 * Zero-copy sends: the result CQE carries IORING_CQE_F_MORE when a
 * notification CQE (IORING_CQE_F_NOTIF) will follow; the buffer is the
 * kernel's until then (io_uring_prep_send_zc(3)).
 */
#define _GNU_SOURCE
#include "internal.h"
#include "regio/uring.h"

#include <sys/mman.h>

#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3) /* missing in liburing 2.3 */
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

/* ---------------------------------------------------------------------------
 * Fixed buffers
 * ------------------------------------------------------------------------- */
typedef struct range {
    uintptr_t lo, hi;
    unsigned idx;
} range;

struct rg_uring_bufs {
    unsigned n, max;
    bool registered;
    struct iovec *iov; /* registration order */
    range *sorted;     /* by address, built at registration */
};

rg_uring_bufs *rg_uring_bufs_new(unsigned max)
{
    if (max == 0 || max > RG_URING_MAX_FIXED) {
        errno = EINVAL;
        return NULL;
    }
    rg_uring_bufs *t = rg_malloc_zeroed(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->iov = rg_malloc_zeroed(max, sizeof *t->iov);
    t->sorted = rg_malloc_zeroed(max, sizeof *t->sorted);
    if (t->iov == NULL || t->sorted == NULL) {
        rg_free(t->iov);
        rg_free(t->sorted);
        rg_free(t);
        errno = ENOMEM;
        return NULL;
    }
    t->max = max;
    return t;
}

void rg_uring_bufs_free(rg_uring_bufs *t)
{
    if (t == NULL)
        return;
    rg_free(t->iov);
    rg_free(t->sorted);
    rg_free(t);
}

int rg_uring_bufs_add(rg_uring_bufs *t, void *base, size_t len)
{
    if (t == NULL || base == NULL || len == 0 || (uintptr_t)base + len < (uintptr_t)base)
        return -EINVAL;
    if (t->registered)
        return -EBUSY;
    if (t->n == t->max)
        return -ENOSPC;
    uintptr_t lo = (uintptr_t)base, hi = lo + len;
    for (unsigned i = 0; i < t->n; i++) { /* adds are rare: a linear overlap check is fine */
        uintptr_t a = (uintptr_t)t->iov[i].iov_base, b = a + t->iov[i].iov_len;
        if (lo < b && a < hi)
            return -EINVAL;
    }
    t->iov[t->n].iov_base = base;
    t->iov[t->n].iov_len = len;
    return (int)t->n++;
}

int rg_uring_bufs_add_region(rg_uring_bufs *t, rg_region *r, size_t len, void **out)
{
    if (t == NULL || r == NULL || len == 0 || out == NULL)
        return -EINVAL;
    void *p = rg_alloc_aligned(r, len, RGI_OS_PAGE);
    if (p == NULL)
        return -ENOMEM;
    int idx = rg_uring_bufs_add(t, p, len);
    if (idx >= 0)
        *out = p;
    return idx;
}

int rg_uring_bufs_add_objpool(rg_uring_bufs *t, rg_objpool *p, size_t obj_size, unsigned count)
{
    if (t == NULL || p == NULL || obj_size == 0 || count == 0)
        return -EINVAL;
    if (t->registered)
        return -EBUSY;
    if (count > t->max - t->n)
        return -ENOSPC;
    void **objs = rg_malloc_zeroed(count, sizeof *objs);
    if (objs == NULL)
        return -ENOMEM;
    unsigned got = rg_objpool_get_bulk(p, objs, count);
    if (got != count) {
        rg_free(objs);
        return -EBUSY;
    }
    unsigned n0 = t->n;
    int rc = 0;
    for (unsigned i = 0; i < count && rc >= 0; i++)
        rc = rg_uring_bufs_add(t, objs[i], obj_size);
    if (rc < 0)
        t->n = n0; /* all or nothing */
    rg_objpool_put_bulk(p, objs, count);
    rg_free(objs);
    return rc < 0 ? rc : (int)count;
}

static int range_cmp(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

int rg_uring_bufs_register(rg_uring_bufs *t, struct io_uring *ring)
{
    if (t == NULL || ring == NULL || t->n == 0)
        return -EINVAL;
    if (t->registered)
        return -EBUSY;
    int rc = io_uring_register_buffers(ring, t->iov, t->n);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < t->n; i++) {
        t->sorted[i].lo = (uintptr_t)t->iov[i].iov_base;
        t->sorted[i].hi = t->sorted[i].lo + t->iov[i].iov_len;
        t->sorted[i].idx = i;
    }
    qsort(t->sorted, t->n, sizeof *t->sorted, range_cmp);
    t->registered = true;
    return 0;
}

int rg_uring_bufs_index(const rg_uring_bufs *t, const void *p, size_t n)
{
    if (t == NULL || p == NULL || !t->registered)
        return -ENOENT;
    uintptr_t a = (uintptr_t)p;
    size_t lo = 0, hi = t->n;
    while (lo < hi) { /* first range with lo > a, then step back */
        size_t mid = lo + (hi - lo) / 2;
        if (t->sorted[mid].lo <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -ENOENT;
    const range *r = &t->sorted[lo - 1];
    if (a + n < a || a + n > r->hi)
        return -ENOENT;
    return (int)r->idx;
}

int rg_uring_prep_read_fixed(const rg_uring_bufs *t, struct io_uring_sqe *sqe, int fd, void *buf, unsigned n,
                             uint64_t off)
{
    if (sqe == NULL)
        return -EINVAL;
    int idx = rg_uring_bufs_index(t, buf, n);
    if (idx < 0)
        return idx;
    io_uring_prep_read_fixed(sqe, fd, buf, n, off, idx);
    return 0;
}

int rg_uring_prep_write_fixed(const rg_uring_bufs *t, struct io_uring_sqe *sqe, int fd, const void *buf, unsigned n,
                              uint64_t off)
{
    if (sqe == NULL)
        return -EINVAL;
    int idx = rg_uring_bufs_index(t, buf, n);
    if (idx < 0)
        return idx;
    io_uring_prep_write_fixed(sqe, fd, buf, n, off, idx);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Buffer ring
 * ------------------------------------------------------------------------- */
struct rg_uring_bufring {
    struct io_uring *ring;
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    unsigned entries, mask;
    unsigned short bgid;
    rg_objpool *pool;
    size_t buf_size;
    void **slot;        /* bid -> armed buffer, NULL when free */
    unsigned short *free_bids;
    unsigned nfree;
    rg_uring_bufring_stats st;
};

/* Puts buf into the ring under a free bid; false if no bid is free. */
static bool arm(rg_uring_bufring *b, void *buf)
{
    if (b->nfree == 0)
        return false;
    unsigned short bid = b->free_bids[--b->nfree];
    b->slot[bid] = buf;
    io_uring_buf_ring_add(b->br, buf, (unsigned)b->buf_size, bid, (int)b->mask, 0);
    io_uring_buf_ring_advance(b->br, 1); /* release store of the tail: the kernel's acquire load pairs */
    b->st.armed++;
    return true;
}

int rg_uring_bufring_refill(rg_uring_bufring *b)
{
    if (b == NULL)
        return -EINVAL;
    while (b->nfree > 0) {
        void *buf = rg_objpool_get(b->pool);
        if (buf == NULL) {
            b->st.pool_empty++;
            break;
        }
        arm(b, buf);
    }
    return (int)b->st.armed;
}

rg_uring_bufring *rg_uring_bufring_new(struct io_uring *ring, const rg_uring_bufring_opts *o)
{
    if (ring == NULL || o == NULL || o->pool == NULL || o->buf_size == 0 || o->buf_size > UINT32_MAX ||
        o->entries == 0 || o->entries > 32768 || (o->entries & (o->entries - 1))) {
        errno = EINVAL;
        return NULL;
    }
    rg_uring_bufring *b = rg_malloc_zeroed(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->ring = ring;
    b->entries = o->entries;
    b->mask = (unsigned)io_uring_buf_ring_mask(o->entries);
    b->bgid = o->bgid;
    b->pool = o->pool;
    b->buf_size = o->buf_size;
    b->slot = rg_malloc_zeroed(o->entries, sizeof *b->slot);
    b->free_bids = rg_malloc_zeroed(o->entries, sizeof *b->free_bids);
    if (b->slot == NULL || b->free_bids == NULL)
        goto fail;
    b->br_bytes = (o->entries * sizeof(struct io_uring_buf) + RGI_OS_PAGE - 1) & ~(RGI_OS_PAGE - 1);
    int rc = rgi_page_charge(b->br_bytes);
    if (rc) {
        errno = -rc;
        goto fail;
    }
    void *mem = mmap(NULL, b->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        rgi_page_uncharge(b->br_bytes);
        goto fail;
    }
    b->br = mem;
    io_uring_buf_ring_init(b->br);
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (unsigned long)(uintptr_t)b->br;
    reg.ring_entries = o->entries;
    reg.bgid = o->bgid;
    rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (rc < 0) {
        munmap(mem, b->br_bytes);
        rgi_page_uncharge(b->br_bytes);
        errno = -rc;
        goto fail;
    }
    for (unsigned i = 0; i < o->entries; i++) /* bid 0 handed out first */
        b->free_bids[i] = (unsigned short)(o->entries - 1 - i);
    b->nfree = o->entries;
    rg_uring_bufring_refill(b);
    return b;
fail: {
    int e = errno;
    rg_free(b->slot);
    rg_free(b->free_bids);
    rg_free(b);
    errno = e;
    return NULL;
}
}

void *rg_uring_bufring_take(rg_uring_bufring *b, const struct io_uring_cqe *cqe, size_t *len)
{
    if (b == NULL || cqe == NULL || !(cqe->flags & IORING_CQE_F_BUFFER)) {
        errno = EINVAL;
        return NULL;
    }
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    if (bid >= b->entries || b->slot[bid] == NULL) {
        errno = EINVAL;
        return NULL;
    }
    void *buf = b->slot[bid];
    b->slot[bid] = NULL;
    b->free_bids[b->nfree++] = (unsigned short)bid;
    b->st.armed--;
    b->st.taken++;
    if (len)
        *len = cqe->res > 0 ? (size_t)cqe->res : 0;
    return buf;
}

int rg_uring_bufring_put(rg_uring_bufring *b, void *buf)
{
    if (b == NULL || buf == NULL)
        return -EINVAL;
    if (arm(b, buf)) {
        b->st.rearmed++;
        return 1;
    }
    int rc = rg_objpool_put(b->pool, buf);
    return rc < 0 ? rc : 0;
}

int rg_uring_bufring_enobufs(rg_uring_bufring *b)
{
    if (b == NULL)
        return -EINVAL;
    b->st.enobufs++;
    return rg_uring_bufring_refill(b);
}

unsigned short rg_uring_bufring_bgid(const rg_uring_bufring *b)
{
    return b ? b->bgid : 0;
}

void rg_uring_bufring_read_stats(const rg_uring_bufring *b, rg_uring_bufring_stats *st)
{
    if (st == NULL)
        return;
    if (b == NULL) {
        memset(st, 0, sizeof *st);
        return;
    }
    *st = b->st;
}

void rg_uring_bufring_free(rg_uring_bufring *b)
{
    if (b == NULL)
        return;
    io_uring_unregister_buf_ring(b->ring, b->bgid);
    for (unsigned i = 0; i < b->entries; i++)
        if (b->slot[i])
            rg_objpool_put(b->pool, b->slot[i]);
    munmap(b->br, b->br_bytes);
    rgi_page_uncharge(b->br_bytes);
    rg_free(b->slot);
    rg_free(b->free_bids);
    rg_free(b);
}

/* ---------------------------------------------------------------------------
 * Zero-copy sends
 * ------------------------------------------------------------------------- */
bool rg_uring_op_supported(struct io_uring *ring, int op)
{
    if (ring == NULL)
        return false;
    struct io_uring_probe *p = io_uring_get_probe_ring(ring);
    if (p == NULL)
        return false;
    bool ok = io_uring_opcode_supported(p, op) != 0;
    io_uring_free_probe(p);
    return ok;
}

int rg_uring_prep_send_zc(struct io_uring_sqe *sqe, int fd, rg_view v, int msg_flags, rg_uring_zc *z)
{
    if (sqe == NULL || z == NULL || v.len > ((size_t)1 << 31) || (v.ptr == NULL && v.len))
        return -EINVAL;
    if (z->state != 0)
        return -EBUSY;
    io_uring_prep_send_zc(sqe, fd, v.ptr, v.len, msg_flags, IORING_SEND_ZC_REPORT_USAGE);
    z->res = 0;
    z->copied = false;
    z->state = 1;
    return 0;
}

int rg_uring_prep_send_zc_map(struct io_uring_sqe *sqe, int fd, const rg_mapfile *m, size_t off, size_t len,
                              int msg_flags, rg_uring_zc *z)
{
    if (m == NULL || rg_mapfile_windowed(m) || off > rg_mapfile_len(m) || len > rg_mapfile_len(m) - off)
        return -EINVAL;
    return rg_uring_prep_send_zc(sqe, fd, rg_mapfile_view(m, off, len), msg_flags, z);
}

int rg_uring_zc_cqe(rg_uring_zc *z, const struct io_uring_cqe *cqe)
{
    if (z == NULL || cqe == NULL)
        return 0;
    if (cqe->flags & IORING_CQE_F_NOTIF) {
        if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
            z->copied = true;
        z->state = 0;
        return 1;
    }
    z->res = cqe->res;
    if (cqe->flags & IORING_CQE_F_MORE) {
        z->state = 2;
        return 0;
    }
    z->state = 0; /* failed before the kernel took the buffer: no notification */
    return 1;
}
