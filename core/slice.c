/* core/slice.c — Go-style slices: make, append with Go's growth, clone,
 * sub-slicing, on a region or standalone.
 *
 * Algorithm: runtime.growslice of Go 1.18+ (see regio/slice.h for the
 * formula): double below 256 elements, then grow by (newcap + 768) / 4 per
 * step, which moves smoothly from 2x towards 1.25x; the byte size is then
 * rounded up to Go's malloc size class so capacities match Go's exactly.
 * Guarantee: append is amortized O(1) (each growth at least 1.25x), and no
 * call writes outside [ptr, ptr + cap * elem_size).
 * Reference: Go's runtime/slice.go and runtime/sizeclasses.go (the class
 * table below is Go's published table of sizes, data rather than code).
 *
 * The allocation seam: every array comes from cont_alloc() and goes back
 * through cont_release(), which pick the region (bump, never freed one by
 * one), the calling thread's arena (rg_malloc/rg_free), or the collected
 * heap (rg_new_array(type, n) when s->type is set; release is nothing: the
 * collector frees what is unreachable; copies of pointerful elements go
 * through the write barrier).
 */
#include "internal.h"

#include "regio/gc.h"
#include "regio/slice.h"

/* Go's size classes (bytes), runtime/sizeclasses.go, Go 1.18-1.21. */
static const uint16_t go_class_size[] = {
    8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
    288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280,
    1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528,
    6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072,
    20480, 21760, 24576, 27264, 28672, 32768,
};
#define GO_MAX_SMALL 32768u
#define GO_PAGE 8192u
#define GO_THRESHOLD 256u

/* Go's roundupsize(): 0 on overflow. */
static size_t go_roundupsize(size_t n)
{
    if (n < GO_MAX_SMALL) {
        /* binary search for the smallest class >= n */
        size_t lo = 0, hi = sizeof go_class_size / sizeof go_class_size[0] - 1;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (go_class_size[mid] >= n)
                hi = mid;
            else
                lo = mid + 1;
        }
        return go_class_size[lo];
    }
    if (n > SIZE_MAX - GO_PAGE)
        return 0;
    return (n + GO_PAGE - 1) & ~(size_t)(GO_PAGE - 1);
}

#define MAX_BYTES ((size_t)PTRDIFF_MAX)

size_t rg_slice_next_cap(size_t cap, size_t need, size_t es)
{
    if (es == 0 || need > MAX_BYTES / es)
        return 0;
    size_t newcap = cap;
    if (cap > SIZE_MAX / 2 || need > cap * 2) {
        newcap = need;
    } else if (cap < GO_THRESHOLD) {
        newcap = cap * 2;
    } else {
        while (newcap < need) {
            size_t step = (newcap + 3 * GO_THRESHOLD) / 4;
            if (newcap > SIZE_MAX - step) {
                newcap = need;
                break;
            }
            newcap += step;
        }
    }
    if (newcap < need)
        newcap = need;
    if (newcap > MAX_BYTES / es)
        newcap = need; /* Go would overflow to need too; still fits (checked above) */
    size_t bytes = go_roundupsize(newcap * es);
    if (bytes == 0 || bytes > MAX_BYTES)
        return 0;
    return bytes / es;
}

/* ---------------------------------------------------------------------------
 * The allocation seam: region, standalone, or the collected heap
 * ------------------------------------------------------------------------- */
static void *cont_alloc(rg_region *r, const rg_type *t, size_t n, size_t es)
{
    if (t != NULL)
        return rg_new_array(t, n); /* zeroed, typed, traced */
    if (r != NULL)
        return rg_alloc(r, n * es);
    return rg_malloc(n * es);
}

/* Copies n elements into a heap array: the pointer fields go through the
 * write barrier (the destination may be allocated black while the collector
 * marks; shading what we store keeps it from being freed).  src may overlap
 * dst (append of the slice's own elements): memmove first, then re-store
 * each pointer through rg_write. */
static void heap_copy(const rg_type *t, void *arr, char *dst, const void *src, size_t n)
{
    size_t es = t->size;
    memmove(dst, src, n * es);
    if (t->nptrs == 0)
        return;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < t->nptrs; k++) {
            void **slot = (void **)(void *)(dst + i * es + t->ptr_offsets[k]);
            rg_write(arr, slot, *slot);
        }
}

/* The array a heap slice's element pointer belongs to: its own array when
 * not a view (views of heap slices are not supported: see the header). */
static inline void *heap_base(const rg_slice *s) { return s->ptr; }

/* Copies n elements (src NULL: zeroes) to dst inside s's array. */
static inline void put_elems(const rg_slice *s, char *dst, const void *src, size_t n)
{
    if (s->type != NULL && src != NULL) {
        heap_copy(s->type, heap_base(s), dst, src, n);
        return;
    }
    if (src)
        memmove(dst, src, n * s->elem_size);
    else
        memset(dst, 0, n * s->elem_size); /* NULL pointers need no barrier */
}

/* Gives back an array the slice owns (never a view's borrowed array, never
 * a heap array: the collector frees it once unreachable). */
static void cont_release(const rg_slice *s)
{
    if (s->ptr != NULL && s->r == NULL && s->type == NULL && !(s->flags & RG_SLICE_VIEW))
        rg_free(s->ptr);
}

static inline bool bad_slice(const rg_slice *s, const char *call)
{
    if (RG_UNLIKELY(s == NULL || s->elem_size == 0 || s->len > s->cap)) {
        if (RG_DEBUG_CHECKS)
            rgi_diag(call, "invalid slice %p (elem_size %zu, len %zu, cap %zu)", (const void *)s,
                     s ? s->elem_size : 0, s ? s->len : 0, s ? s->cap : 0);
        return true;
    }
    return false;
}

int rg_slice_make(rg_slice *s, rg_region *r, size_t elem_size, size_t len, size_t cap)
{
    if (s == NULL)
        return -EINVAL;
    *s = (rg_slice){.elem_size = elem_size, .r = r};
    if (elem_size == 0 || len > cap) {
        if (RG_DEBUG_CHECKS)
            rgi_diag("rg_slice_make", "elem_size %zu, len %zu, cap %zu", elem_size, len, cap);
        return -EINVAL;
    }
    if (cap > MAX_BYTES / elem_size) {
        if (RG_DEBUG_CHECKS)
            rgi_diag("rg_slice_make", "cap %zu * elem_size %zu overflows", cap, elem_size);
        return -EOVERFLOW;
    }
    if (cap == 0)
        return 0;
    void *p = cont_alloc(r, NULL, cap, elem_size);
    if (p == NULL)
        return -errno;
    memset(p, 0, cap * elem_size);
    s->ptr = p;
    s->len = len;
    s->cap = cap;
    return 0;
}

int rg_slice_make_heap(rg_slice *s, const struct rg_type *t, size_t len, size_t cap)
{
    if (s == NULL)
        return -EINVAL;
    *s = (rg_slice){.elem_size = t ? t->size : 0, .type = t};
    if (t == NULL || t->size == 0 || len > cap) {
        if (RG_DEBUG_CHECKS)
            rgi_diag("rg_slice_make_heap", "type %p, len %zu, cap %zu", (const void *)t, len, cap);
        return -EINVAL;
    }
    if (cap > MAX_BYTES / t->size)
        return -EOVERFLOW;
    if (cap == 0)
        return 0;
    void *p = cont_alloc(NULL, t, cap, t->size); /* zeroed by the collector */
    if (p == NULL)
        return -errno;
    s->ptr = p;
    s->len = len;
    s->cap = cap;
    return 0;
}

/* Moves s to a new array of at least `need` elements (Go's growth).  The old
 * array is released only after the caller copied what it needs from it, so
 * the caller gets it back in *old. */
static int grow(rg_slice *s, size_t need, rg_slice *old)
{
    size_t newcap = rg_slice_next_cap(s->cap, need, s->elem_size);
    if (newcap == 0) {
        if (RG_DEBUG_CHECKS)
            rgi_diag("rg_slice_append", "slice %p: %zu elements of %zu bytes overflow",
                     (void *)s, need, s->elem_size);
        return -EOVERFLOW;
    }
    void *p = cont_alloc(s->r, s->type, newcap, s->elem_size);
    if (p == NULL)
        return -errno;
    size_t used = s->len * s->elem_size;
    if (s->type != NULL) {
        if (s->len)
            heap_copy(s->type, p, p, s->ptr, s->len); /* rg_new_array zeroed the rest */
    } else {
        if (used)
            memcpy(p, s->ptr, used);
        /* like Go, [len, cap) of the new array is zeroed: set_len exposes it */
        memset((char *)p + used, 0, newcap * s->elem_size - used);
    }
    *old = *s;
    s->ptr = p;
    s->cap = newcap;
    s->flags &= ~RG_SLICE_VIEW; /* the new array is ours */
    return 0;
}

void *rg_slice_append_n(rg_slice *s, const void *elems, size_t n)
{
    if (bad_slice(s, "rg_slice_append"))
        goto inval;
    size_t es = s->elem_size;
    if (n > SIZE_MAX - s->len) {
        errno = EOVERFLOW;
        return NULL;
    }
    size_t need = s->len + n;
    if (n == 0) {
        errno = 0;
        return s->ptr ? (char *)s->ptr + s->len * es : NULL;
    }
    rg_slice old = {0};
    if (need > s->cap) {
        int rc = grow(s, need, &old);
        if (rc < 0) {
            errno = -rc;
            return NULL;
        }
    }
    char *dst = (char *)s->ptr + s->len * es;
    /* elems may point into the old array, which is still alive here;
     * memmove covers elems overlapping the destination in place */
    put_elems(s, dst, elems, n);
    s->len = need;
    cont_release(&old);
    return dst;
inval:
    errno = EINVAL;
    return NULL;
}

void *rg_slice_append(rg_slice *s, const void *elem)
{
    /* fast path: room left — one compare, one copy */
    if (RG_LIKELY(s != NULL && s->len < s->cap && s->elem_size != 0 && s->type == NULL)) {
        char *dst = (char *)s->ptr + s->len * s->elem_size;
        if (elem)
            memmove(dst, elem, s->elem_size);
        else
            memset(dst, 0, s->elem_size);
        s->len++;
        return dst;
    }
    return rg_slice_append_n(s, elem, 1);
}

int rg_slice_grow(rg_slice *s, size_t extra)
{
    if (bad_slice(s, "rg_slice_grow"))
        return -EINVAL;
    if (extra > SIZE_MAX - s->len)
        return -EOVERFLOW;
    if (s->len + extra <= s->cap)
        return 0;
    rg_slice old = {0};
    int rc = grow(s, s->len + extra, &old);
    if (rc == 0)
        cont_release(&old);
    return rc;
}

void *rg_slice_at(const rg_slice *s, size_t i)
{
    if (RG_LIKELY(s != NULL && i < s->len))
        return (char *)s->ptr + i * s->elem_size;
    if (RG_DEBUG_CHECKS)
        rgi_diag("rg_slice_at", "slice %p: index %zu out of range [0, %zu)", (const void *)s, i,
                 s ? s->len : 0);
    errno = EINVAL;
    return NULL;
}

int rg_slice_clone(rg_slice *dst, const rg_slice *src, size_t from, size_t to, rg_region *r)
{
    if (dst == NULL || bad_slice(src, "rg_slice_clone"))
        return -EINVAL;
    if (from > to || to > src->len) {
        if (RG_DEBUG_CHECKS)
            rgi_diag("rg_slice_clone", "slice %p: range [%zu:%zu] out of bounds (len %zu)",
                     (const void *)src, from, to, src->len);
        return -EINVAL;
    }
    size_t n = to - from, es = src->elem_size;
    /* the copy is plain memory (region or standalone) even when src is a
     * heap slice: pointers in it are then not traced (see the header) */
    rg_slice out = {.elem_size = es, .r = r};
    if (n) {
        out.ptr = cont_alloc(r, NULL, n, es);
        if (out.ptr == NULL)
            return -errno;
        memcpy(out.ptr, (const char *)src->ptr + from * es, n * es);
        out.len = out.cap = n;
    }
    if (dst == src)
        cont_release(dst);
    *dst = out;
    return 0;
}

int rg_slice_sub3(rg_slice *dst, const rg_slice *src, size_t from, size_t to, size_t max)
{
    if (dst == NULL || bad_slice(src, "rg_slice_sub"))
        return -EINVAL;
    if (!(from <= to && to <= max && max <= src->cap)) {
        if (RG_DEBUG_CHECKS)
            rgi_diag("rg_slice_sub", "slice %p: [%zu:%zu:%zu] out of bounds (cap %zu)",
                     (const void *)src, from, to, max, src->cap);
        return -EINVAL;
    }
    if (src->type != NULL && from != 0) {
        /* the collector follows pointers to an object's start only */
        if (RG_DEBUG_CHECKS)
            rgi_diag("rg_slice_sub", "heap slice %p: a view must start at 0 (got %zu)", (const void *)src, from);
        return -EINVAL;
    }
    rg_slice out = *src;
    out.ptr = src->ptr ? (char *)src->ptr + from * src->elem_size : NULL;
    out.len = to - from;
    out.cap = max - from;
    out.flags |= RG_SLICE_VIEW;
    if (out.cap == 0)
        out.ptr = NULL; /* nothing reachable: never hand out a past-the-end pointer */
    *dst = out;
    return 0;
}

int rg_slice_sub(rg_slice *dst, const rg_slice *src, size_t from, size_t to)
{
    if (src == NULL)
        return -EINVAL;
    return rg_slice_sub3(dst, src, from, to, src->cap);
}

int rg_slice_set_len(rg_slice *s, size_t n)
{
    if (bad_slice(s, "rg_slice_set_len"))
        return -EINVAL;
    if (n > s->cap) {
        if (RG_DEBUG_CHECKS)
            rgi_diag("rg_slice_set_len", "slice %p: len %zu > cap %zu", (void *)s, n, s->cap);
        return -EINVAL;
    }
    /* like s = s[:n] in Go: elements between the old and new len keep their
     * contents (zero unless an earlier len or another view wrote them) */
    s->len = n;
    return 0;
}

void rg_slice_free(rg_slice *s)
{
    if (s == NULL)
        return;
    cont_release(s);
    *s = (rg_slice){.elem_size = s->elem_size, .r = s->r, .type = s->type};
}
