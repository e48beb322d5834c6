/* regio/arena.h — general allocation from the calling thread's arena.
 *
 * ---------------------------------------------------------------------------
 * Contract of this section
 * ---------------------------------------------------------------------------
 * Each thread allocates from its own arena (created lazily, no lock on the
 * fast path: a size-class lookup and a free-list pop).  Memory freed by
 * another thread goes to the owner's lock-free inbox and is reclaimed by the
 * owner on its slow path.  When a thread exits its arena is orphaned and the
 * next thread that needs one adopts it, with everything still allocated in it.
 *
 * Sizes up to 32 KiB come from size-class spans, up to 960 KiB from page runs
 * inside a 2 MiB segment, larger ones from their own segment run (4 KiB
 * granular commit).  Everything counts against the hard limit.  Pointers are
 * 16-byte aligned.  rg_malloc(0) returns a unique 16-byte block.
 * Errors: NULL + ENOMEM (limit or OS), EINVAL (bad alignment), EOVERFLOW.
 * rg_free(NULL) does nothing; a pointer regio did not hand out is reported in
 * debug builds and ignored (EINVAL) in release builds when it is outside
 * regio's address space.
 */
#ifndef REGIO_ARENA_H
#define REGIO_ARENA_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

RG_EXPORT RG_MALLOC_ATTR void *rg_malloc(size_t n);
RG_EXPORT RG_MALLOC_ATTR void *rg_malloc_zeroed(size_t count, size_t size);
RG_EXPORT RG_MALLOC_ATTR void *rg_malloc_aligned(size_t n, size_t align);
RG_EXPORT void *rg_realloc(void *p, size_t n);
RG_EXPORT void rg_free(void *p);
/* Bytes usable at p (at least what was asked); 0 for NULL or a foreign pointer. */
RG_EXPORT size_t rg_usable_size(const void *p);
/* 1 if p points into memory regio manages (any committed segment), else 0. */
RG_EXPORT int rg_owns(const void *p);

#ifdef __cplusplus
}
#endif
#endif /* REGIO_ARENA_H */
