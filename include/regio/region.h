/* regio/region.h — per-request regions: bump allocation, freed all at once.
 *
 * ---------------------------------------------------------------------------
 * Contract of this section
 * ---------------------------------------------------------------------------
 * A region is Go's stack frame for a request: everything allocated from it
 * dies together at rg_region_reset() or rg_region_free().  Allocation is a
 * bump of a pointer inside the current chunk (inline below: one compare, one
 * branch); chunks grow geometrically (8 KiB first, doubling to 1 MiB) and
 * come from the calling thread's arena.  Requests of 64 KiB or more bypass
 * the chunks: they are allocated on their own and returned on reset.
 *
 *  - Every pointer is 16-byte aligned (rg_alloc_aligned: any power of two up
 *    to 2 MiB).
 *  - A zero-size request returns a valid non-NULL pointer that may equal the
 *    next allocation's (Go's zero-size allocations behave the same).
 *  - Failure returns NULL with errno: ENOMEM (the hard limit or the OS),
 *    EINVAL (NULL region, bad alignment), EOVERFLOW (count * size overflows).
 *  - reset keeps the first chunk and reuses further chunks up to the region's
 *    retain cap (default 256 KiB), so a steady request loop allocates nothing
 *    from the arena; it runs on_reset cleanups newest first, drops pins and
 *    frees large blocks.  free does the same and returns everything.
 *  - mark/release pop the region like a stack: memory, large blocks, pins and
 *    cleanups registered after the mark are released (cleanups run).
 *  - A region is used by one thread at a time (like a goroutine's stack); it
 *    may move between threads with proper synchronization (hand-off).
 *  - Poisoning: under AddressSanitizer, Valgrind, debug_checks builds, or
 *    RG_DEBUG=poison=1, memory released by reset/release/free is poisoned,
 *    so a use after reset is reported at the faulting access.
 *  - Debug builds (debug_checks) detect a region freed twice and a foreign
 *    region pointer, and name the call.  Release builds return EINVAL-style
 *    without crashing where the region's header shows it is not live.
 */
#ifndef REGIO_REGION_H
#define REGIO_REGION_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rg_region rg_region;

/* The first fields of every region; the inline fast path reads them. */
typedef struct rg_region_head {
    char *cur; /* next free byte, 16-byte aligned */
    char *end; /* end of the current chunk (== cur while poisoning: forces the slow path) */
} rg_region_head;

/* A position to pop back to with rg_region_release(). */
typedef struct rg_mark {
    void *chunk;
    char *cur;
    void *large;
    void *cleanups;
    size_t npins;
} rg_mark;

typedef struct rg_region_opts {
    size_t first_chunk; /* bytes, including the region header; 0 = 8 KiB */
    size_t max_chunk;   /* growth stops here; 0 = 1 MiB */
    size_t retain;      /* chunk bytes a reset keeps for reuse; 0 = 256 KiB */
} rg_region_opts;

#define RG_REGION_LARGE_MIN ((size_t)64 << 10) /* requests this big bypass chunks */
#define RG_REGION_MAX_ALIGN ((size_t)2 << 20)

/* A new empty region; NULL + errno (ENOMEM) on failure. */
RG_EXPORT rg_region *rg_region_new(void);
/* o == NULL: defaults.  NULL + EINVAL when first_chunk > max_chunk. */
RG_EXPORT rg_region *rg_region_new_opts(const rg_region_opts *o);

/* Out-of-line path of rg_alloc: new chunk, large block, poisoning, errors. */
RG_EXPORT void *rg_alloc_slow(rg_region *r, size_t n);

/* 16-byte aligned bytes from r; NULL + errno=ENOMEM (or EINVAL for r==NULL).
 * Fast path budget: a NULL test, one compare, one bump. */
static inline void *rg_alloc(rg_region *r, size_t n)
{
    if (RG_LIKELY(r != NULL)) {
        rg_region_head *h = (rg_region_head *)r;
        char *p = h->cur;
        if (RG_LIKELY(n <= (size_t)(h->end - p))) {
            /* end - cur is a multiple of 16, so the rounded size still fits */
            h->cur = p + ((n + 15) & ~(size_t)15);
            return p;
        }
    }
    return rg_alloc_slow(r, n);
}

/* align: a power of two, at most RG_REGION_MAX_ALIGN; else NULL + EINVAL. */
RG_EXPORT void *rg_alloc_aligned(rg_region *r, size_t n, size_t align);
/* Zeroed; NULL + EOVERFLOW when count * size overflows. */
RG_EXPORT void *rg_calloc(rg_region *r, size_t count, size_t size);
/* Copies s into r; NULL + EINVAL for s == NULL. */
RG_EXPORT char *rg_strdup(rg_region *r, const char *s);
/* Copies n bytes of s and a terminating NUL. */
RG_EXPORT char *rg_strndup(rg_region *r, const char *s, size_t n);
/* Copies n bytes. */
RG_EXPORT void *rg_memdup(rg_region *r, const void *src, size_t n);

RG_EXPORT rg_mark rg_region_mark(rg_region *r);
RG_EXPORT void rg_region_release(rg_region *r, rg_mark m);

/* Registers fn(arg) to run at reset/free (newest first) or when a release
 * pops past it.  Returns 0, -EINVAL, or -ENOMEM. */
RG_EXPORT int rg_region_on_reset(rg_region *r, void (*fn)(void *), void *arg);

/* Pins a collected-heap object while r lives (until reset/free/release):
 * the collector treats it as a root.  Returns 0, -EINVAL, -ENOMEM.
 * (Declared as void in DESIGN.md §3; it returns int so a failed pin is seen.) */
RG_EXPORT int rg_region_keep(rg_region *r, void *gc_obj);

RG_EXPORT void rg_region_reset(rg_region *r);
RG_EXPORT void rg_region_free(rg_region *r);

/* Bytes held by r: chunks plus large blocks (what region_inuse sums). */
RG_EXPORT size_t rg_region_size(const rg_region *r);
/* Bytes handed out since the last reset (sum of rounded requests). */
RG_EXPORT size_t rg_region_used(const rg_region *r);

#ifdef __cplusplus
}
#endif
#endif /* REGIO_REGION_H */
