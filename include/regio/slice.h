/* regio/slice.h — make([]T, len, cap) and append() for C: growable arrays
 * with Go's growth policy, on a region or standalone.
 *
 * ---------------------------------------------------------------------------
 * Contract of this section
 * ---------------------------------------------------------------------------
 * An rg_slice is a value (pointer, length, capacity) over an array of
 * elem_size-byte elements, exactly like a Go slice header.  Where the array
 * lives is chosen at rg_slice_make():
 *
 *   r != NULL   on a region: arrays come from rg_alloc(r); growth leaves the
 *               old array to the region (it dies at reset/free, like Go's
 *               garbage); rg_slice_free() only forgets the array.
 *   r == NULL   standalone: arrays come from rg_malloc(); growth frees the old
 *               array after copying; rg_slice_free() frees it.
 *   heap        rg_slice_make_heap(): arrays come from rg_new_array(type)
 *               on the collected heap, typed and traced; growth leaves the
 *               old array to the collector.  The array is reachable only
 *               through what the collector sees: root the slice's `ptr`
 *               (rg_root_add(&s.ptr): the root follows growth, since growth
 *               stores the new array there) or store it in a heap object.
 *               Appends copy pointer fields through the write barrier;
 *               writes through rg_slice_at() pointers must use rg_write().
 *               Views must start at element 0 (the collector follows
 *               pointers to an object's start only); rg_slice_free()
 *               forgets the array.
 *
 * Growth is Go's (runtime.growslice, Go 1.18+), so a program ported from Go
 * sees the same capacities: when an append needs room for `need` elements,
 *     newcap = cap * 2                       if need <= 2 * cap and cap < 256
 *     newcap += (newcap + 3 * 256) / 4       repeated until >= need, cap >= 256
 *     newcap = need                          if need > 2 * cap
 * then newcap * elem_size is rounded up to Go's malloc size class (67
 * classes up to 32 KiB, then 8 KiB pages) and newcap = rounded / elem_size.
 * (The rounding uses Go's class table, not regio's, so the sequence of
 * capacities is exactly Go's; regio's own classes round the bytes again.)
 *
 * Sub-slicing (rg_slice_sub, rg_slice_sub3) gives views that share the
 * array, like s[a:b] and s[a:b:c]; a view never frees the array it borrows:
 * growing a view copies into a new array and leaves the borrowed one alone.
 * rg_slice_clone() copies out, so a small slice of a huge array does not keep
 * the huge array alive (in Go, s[a:b] does: the classic leak).
 *
 * Arrays are zeroed past len (make and growth), like Go's; appended
 * elements are copied, or zeroed when no element is given.
 * Bounds are always checked.  Errors: int-returning calls return 0 or
 * -errno; pointer-returning calls return NULL and set errno:
 *   EINVAL     NULL slice, zero elem_size, index or range out of bounds,
 *              len > cap;
 *   EOVERFLOW  len/cap * elem_size does not fit in a size_t (or PTRDIFF_MAX);
 *   ENOMEM     the hard limit or the OS.
 * Debug builds (debug_checks) also print which call got which bad argument.
 * A slice is used by one thread at a time, like a Go slice.
 *
 * Refinements of DESIGN.md §3: rg_slice gains two trailing fields (`type`,
 * the element type of a heap slice, and `flags`, which marks views); a
 * zero-initialized rg_slice with elem_size set is a valid empty standalone
 * slice (Go's nil slice) that append can grow.
 */
#ifndef REGIO_SLICE_H
#define REGIO_SLICE_H

#include "common.h"
#include "region.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rg_type; /* the collector's type descriptor (regio/gc.h) */

typedef struct rg_slice {
    void *ptr;        /* element 0; NULL when cap == 0 */
    size_t len, cap;  /* elements */
    size_t elem_size; /* bytes per element, > 0 */
    rg_region *r;     /* the region holding the array; NULL = standalone */
    const struct rg_type *type; /* heap slices: the element type; else NULL */
    unsigned flags;   /* RG_SLICE_VIEW: ptr borrows another slice's array */
} rg_slice;

#define RG_SLICE_VIEW 1u

/* make([]T, len, cap): a zeroed array of cap elements of elem_size bytes on
 * r (NULL = standalone), len of them in use.  cap == 0 allocates nothing.
 * Returns 0, or -EINVAL (s NULL, elem_size 0, len > cap), -EOVERFLOW,
 * -ENOMEM; on failure *s is an empty slice (still valid to free). */
RG_EXPORT int rg_slice_make(rg_slice *s, rg_region *r, size_t elem_size, size_t len, size_t cap);

/* make([]T, len, cap) on the collected heap: a zeroed array of cap objects
 * of type t (elem_size = t->size) from rg_new_array.  Returns 0, or -EINVAL
 * (s or t NULL, t->size 0, len > cap), -EOVERFLOW, -ENOMEM. */
RG_EXPORT int rg_slice_make_heap(rg_slice *s, const struct rg_type *t, size_t len, size_t cap);

/* append(s, *elem): grows the array if needed (Go's policy, above), copies
 * elem_size bytes from elem (NULL: a zeroed element) and returns a pointer
 * to the new element, s->len incremented.  elem may point into s itself.
 * NULL + errno (EINVAL, EOVERFLOW, ENOMEM): s is unchanged. */
RG_EXPORT void *rg_slice_append(rg_slice *s, const void *elem);

/* append(s, elems[0:n]...): one growth at most, like Go's.  elems NULL: n
 * zeroed elements.  Returns a pointer to the first new element (or to where
 * it would be, for n == 0: may be NULL when cap == 0 — errno is then 0).
 * NULL + errno (EINVAL, EOVERFLOW, ENOMEM) on failure: s is unchanged. */
RG_EXPORT void *rg_slice_append_n(rg_slice *s, const void *elems, size_t n);

/* Makes room for at least `extra` more elements without changing len
 * (Go's slices.Grow).  Returns 0, -EINVAL, -EOVERFLOW, -ENOMEM. */
RG_EXPORT int rg_slice_grow(rg_slice *s, size_t extra);

/* &s[i], bounds-checked against len: NULL + EINVAL when i >= len. */
RG_EXPORT void *rg_slice_at(const rg_slice *s, size_t i);

/* Unchecked &s[i] for hot loops whose index is already known in range. */
static inline void *rg_slice_at_unchecked(const rg_slice *s, size_t i)
{
    return (char *)s->ptr + i * s->elem_size;
}

/* dst = clone(src[from:to]): a new array of exactly to - from elements on r
 * (NULL = standalone), not pointing into src's array (a clone of a heap
 * slice is plain memory: the pointers it holds are not traced).  dst == src is
 * allowed: the old array is then released (freed when standalone and owned).
 * Returns 0, or -EINVAL (NULL, from > to, to > src->len), -EOVERFLOW,
 * -ENOMEM; on failure dst is unchanged. */
RG_EXPORT int rg_slice_clone(rg_slice *dst, const rg_slice *src, size_t from, size_t to, rg_region *r);

/* dst = src[from:to] (Go's two-index slice expression): a view sharing
 * src's array, len to - from, cap src->cap - from.  to may exceed len up to
 * cap, as in Go.  dst == src is allowed.  Returns 0 or -EINVAL
 * (from > to, to > cap; from > 0 on a heap slice). */
RG_EXPORT int rg_slice_sub(rg_slice *dst, const rg_slice *src, size_t from, size_t to);

/* dst = src[from:to:max] (full slice expression): cap max - from, so an
 * append to dst reallocates instead of overwriting src[to:max].
 * Returns 0 or -EINVAL (unless from <= to <= max <= cap). */
RG_EXPORT int rg_slice_sub3(rg_slice *dst, const rg_slice *src, size_t from, size_t to, size_t max);

/* Sets len, like s = s[:n]: truncates, or extends up to cap exposing what
 * the array holds there (zero unless written before: make and growth zero
 * [len, cap)).  Returns 0 or -EINVAL (n > cap). */
RG_EXPORT int rg_slice_set_len(rg_slice *s, size_t n);

/* Releases the array: freed when standalone and owned (not a view), left to
 * the region otherwise; *s becomes an empty slice of the same elem_size and
 * region.  NULL does nothing. */
RG_EXPORT void rg_slice_free(rg_slice *s);

/* The capacity Go's append would choose when a slice of capacity `cap`
 * needs room for `need` elements of elem_size bytes (need > cap); 0 on
 * overflow.  Exposed for tests and for callers that preallocate like Go. */
RG_EXPORT size_t rg_slice_next_cap(size_t cap, size_t need, size_t elem_size);

#ifdef __cplusplus
}
#endif
#endif /* REGIO_SLICE_H */
