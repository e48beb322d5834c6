/* pool/buf.c — rg_buf: Go's bytes.Buffer on pooled backing arrays.
 *
 * Algorithm.  Capacity grows as Go's append does for []byte (runtime
 * growslice, Go 1.18+): to the needed size if that is more than double,
 * else double while under 256 bytes, else by (cap + 3*256)/4 steps (about
 * 1.25x for big buffers), then rounded up to an arena size class.  Backing
 * arrays of a size class up to 32 KiB come from one rg_syncpool per class
 * (created on first use) and go back to it, so a request loop that builds
 * responses reuses the same arrays without touching the allocator; bigger
 * ones come from regio directly.  rg_buf_copy hands out a right-sized copy
 * so a small piece never pins a big pooled array (the seed's leak: a small
 * slice of a pooled []byte kept the whole array alive).
 *
 * Guarantee: cap is always a class size (<= 32 KiB) or a page multiple,
 * and data[0, len) is the contents.
 */
#include "pool_internal.h"

#define BUF_MIN 64u
#define BUF_POOLED_MAX RGI_SMALL_MAX

static _Atomic(rg_syncpool *) class_pools[RGI_NCLASSES];

static rg_syncpool *class_pool(unsigned c)
{
    /* acquire: pairs with the release CAS that published the pool */
    rg_syncpool *p = atomic_load_explicit(&class_pools[c], memory_order_acquire);
    if (RG_LIKELY(p != NULL))
        return p;
    rg_syncpool_opts o = {.obj_size = rgi_class_size(c), .name = "rg_buf"};
    rg_syncpool *np = rg_syncpool_new(&o);
    if (np == NULL)
        return NULL;
    rg_syncpool *expect = NULL;
    if (!atomic_compare_exchange_strong_explicit(&class_pools[c], &expect, np, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        rg_syncpool_free(np); /* another thread won */
        return expect;
    }
    return np;
}

static size_t go_growth(size_t old, size_t need)
{
    size_t cap = old, dbl = old * 2;
    if (need > dbl)
        return need;
    if (old < 256)
        return dbl;
    while (cap < need && cap > 0)
        cap += (cap + 3 * 256) / 4;
    return cap < need ? need : cap;
}

static void release_array(unsigned char *data, size_t cap)
{
    if (data == NULL)
        return;
    if (cap <= BUF_POOLED_MAX) {
        rg_syncpool *p = atomic_load_explicit(&class_pools[rgi_size_class(cap)], memory_order_acquire);
        if (p != NULL) {
            rg_syncpool_put(p, data);
            return;
        }
    }
    rg_free(data);
}

void rg_buf_init(rg_buf *b)
{
    if (b) {
        b->data = NULL;
        b->len = b->cap = 0;
    }
}

int rg_buf_grow(rg_buf *b, size_t n)
{
    if (b == NULL)
        return -EINVAL;
    if (n <= b->cap - b->len)
        return 0;
    if (n > SIZE_MAX / 2 - b->len)
        return -EOVERFLOW;
    size_t need = b->len + n;
    size_t cap = go_growth(b->cap, need);
    if (cap < BUF_MIN)
        cap = BUF_MIN;
    unsigned char *data;
    if (cap <= BUF_POOLED_MAX) {
        unsigned c = rgi_size_class(cap);
        cap = rgi_class_size(c);
        rg_syncpool *p = class_pool(c);
        data = p ? rg_syncpool_get(p) : NULL;
    } else {
        cap = (cap + RGI_OS_PAGE - 1) & ~(RGI_OS_PAGE - 1);
        data = rg_malloc(cap);
    }
    if (data == NULL)
        return -ENOMEM;
    if (b->len)
        memcpy(data, b->data, b->len);
    release_array(b->data, b->cap);
    b->data = data;
    b->cap = cap;
    return 0;
}

int rg_buf_write(rg_buf *b, const void *p, size_t n)
{
    if (b == NULL || (p == NULL && n))
        return -EINVAL;
    if (RG_UNLIKELY(n > b->cap - b->len)) {
        int r = rg_buf_grow(b, n);
        if (r != 0)
            return r;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int rg_buf_write_byte(rg_buf *b, unsigned char c)
{
    return rg_buf_write(b, &c, 1);
}

int rg_buf_write_str(rg_buf *b, const char *s)
{
    if (s == NULL)
        return -EINVAL;
    return rg_buf_write(b, s, strlen(s));
}

void rg_buf_reset(rg_buf *b)
{
    if (b)
        b->len = 0;
}

int rg_buf_truncate(rg_buf *b, size_t n)
{
    if (b == NULL || n > b->len)
        return -EINVAL;
    b->len = n;
    return 0;
}

unsigned char *rg_buf_bytes(const rg_buf *b)
{
    return b ? b->data : NULL;
}

size_t rg_buf_len(const rg_buf *b)
{
    return b ? b->len : 0;
}

size_t rg_buf_cap(const rg_buf *b)
{
    return b ? b->cap : 0;
}

void *rg_buf_copy(const rg_buf *b, size_t off, size_t n)
{
    if (b == NULL || off > b->len || n > b->len - off) {
        errno = EINVAL;
        return NULL;
    }
    void *p = rg_malloc(n); /* rg_malloc(0) is a unique minimal block */
    if (p != NULL && n)
        memcpy(p, b->data + off, n);
    return p;
}

void rg_buf_free(rg_buf *b)
{
    if (b == NULL)
        return;
    release_array(b->data, b->cap);
    b->data = NULL;
    b->len = b->cap = 0;
}
