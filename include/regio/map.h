/* regio/map.h — make(map[string]unsafe.Pointer) for C: a Swiss-table hash
 * map with byte-string (and integer) keys and pointer values, that grows
 * and, unlike Go's maps, shrinks; standalone, on a region, or on the
 * collected heap with its values traced.
 *
 * ---------------------------------------------------------------------------
 * Contract of this section
 * ---------------------------------------------------------------------------
 * Keys are byte strings (any bytes, 0 .. RG_MAP_KEY_MAX long) copied into
 * the map; values are opaque pointers the map stores and never follows
 * (except a heap map's, which the collector follows: see below).
 * Integer keys (rg_map_*_u64) are the 8 bytes of the integer in host order:
 * rg_map_put_u64(m, k, v) is rg_map_put(m, &k, 8, v), so both kinds of keys
 * may be mixed and the iterator shows integer keys as 8-byte strings.
 *
 * Where memory lives:
 *   r == NULL (standalone): the map's header, its table and its key bytes
 *     come from rg_malloc.  Keys of up to 16 bytes live inside the table's
 *     slots; longer keys live in a key log owned by the table, which is
 *     compacted whenever the table is rebuilt.  The map shrinks: when fewer
 *     than 5/16 of its slots are live after a delete it is rebuilt at the
 *     size a fresh map would have, so rg_map_mem() falls with the number of
 *     keys.  rg_map_free() returns everything.
 *   r != NULL (on a region): the header, tables and long keys come from the
 *     region and die with it (rg_region_reset/free; rg_map_free only marks
 *     the map dead).  A region cannot give bytes back, so a region map never
 *     shrinks, a rebuilt table leaves the old one to the region (like slice
 *     growth), and deleted keys' bytes stay until the region dies.  Use a
 *     region map for request-scoped maps; use a standalone map for a
 *     long-lived map with churn (a cache).
 *   on the collected heap (rg_map_new_heap): the header, tables, control
 *     bytes and key storage are objects of the collected heap (regio/gc.h),
 *     typed so that the collector follows exactly the values (never key or
 *     control bytes).  Rules:
 *       - every value is NULL or a pointer returned by rg_new, rg_new_array
 *         or rg_clone (an object's start); put checks it in every build and
 *         returns -EINVAL otherwise (debug builds also print a diagnostic);
 *       - a value is kept alive while its entry is in a reachable map; a
 *         deleted or replaced value is no longer kept by the map (one
 *         exception: a table replaced by a rebuild during an iteration is
 *         kept, with its values, until the iteration ends);
 *       - the map is itself a heap object: it lives while it is reachable
 *         from a root (rg_root_add(&m)), a region pin or another heap
 *         object (store it there with rg_write), and the collector reclaims
 *         it, tables and keys included, once it is not.  A map pointer held
 *         only in a local dies at the thread's next safepoint (rule 2);
 *       - rg_map_free does not release memory eagerly: it drops the tables
 *         (so the values are no longer kept) and marks the map freed; the
 *         collector reclaims the bytes at its next cycle.  Calling it is
 *         optional: an unreachable map needs no free;
 *       - every store into the map goes through the write barrier, so a
 *         heap map may be used while the collector marks concurrently;
 *       - it grows and shrinks like a standalone map; the tables it gives up
 *         are reclaimed by the collector, so rg_map_mem() (bytes of the
 *         current objects) falls at once and the process's heap after the
 *         next cycle.
 *     A table's slots are one heap object of 32 bytes per slot, which
 *     the collector scans in one step: a map of millions of entries makes
 *     that step long (the collector does not split large objects yet).
 *
 * rg_map_mem() is every byte the map holds: header, control bytes, slots,
 * key storage (the log's whole capacity, including dead bytes), and tables
 * kept alive for running iterators; on a region, every byte the map took
 * from the region (old tables and dead keys included), since that is what
 * the region holds on its behalf.
 *
 * Growth and shrink (hysteresis): a table of C slots rebuilds when live plus
 * deleted slots would exceed 7/8 C, and (standalone) when live entries fall
 * below 5/16 C.  A rebuild sizes the table to the smallest power of two
 * (>= 16 slots, >= the hint) that keeps the load at or under 5/8.  So after
 * a grow or a shrink to C slots, at least C/8 inserts or deletes happen
 * before the next resize (a rebuild that only cleared deleted slots may be
 * followed sooner by one shrink): a map oscillating around a threshold does
 * not thrash, and every operation is amortized O(1).
 *
 * Hashing: a wyhash-style multiply-mix keyed with a per-map random seed, so
 * an attacker who does not know the seed cannot make keys collide (hash
 * flooding).  Iteration order is unspecified and differs between maps.
 *
 * Iteration (rg_map_iter_*): produces every entry present for the whole
 * iteration exactly once.  During an iteration the caller may:
 *   - delete any entry (the current one included, through rg_map_del or
 *     rg_map_iter_del); a deleted entry not yet reached is not produced;
 *   - replace values (rg_map_put of an existing key): the new value is
 *     produced if the entry is reached later;
 *   - insert: a new entry may or may not be produced (never twice, unless it
 *     was deleted and inserted again); entries present throughout are still
 *     produced exactly once, even if the insert rebuilt the table.
 * A key pointer an iterator returns stays valid, whatever the map does
 * meanwhile, until the next rg_map_iter_next on that iterator (keys of up to
 * 16 bytes are copied into the iterator); longer keys stay valid
 * until the iteration ends (iter_next returned 0, or rg_map_iter_end): a
 * table rebuilt during an iteration is kept until then.  An iteration
 * abandoned early must be ended with rg_map_iter_end(), else the kept tables
 * stay until rg_map_free.
 *
 * Errors: rg_map_new: NULL + errno (ENOMEM).  put: 1 new, 0 replaced,
 * -EINVAL (NULL map/key with klen > 0, klen > RG_MAP_KEY_MAX, freed map,
 * on a heap map a value that is not NULL or a heap object),
 * -ENOMEM (the map is unchanged).  get: NULL when absent (also for bad
 * arguments; use rg_map_find to tell a stored NULL from absence).  del: 1
 * deleted, 0 absent, -EINVAL.  Debug builds print the call and argument.
 * A map is used by one thread at a time, like a Go map; different maps on
 * different threads are independent.
 *
 * Refinements of DESIGN.md §3: rg_map_new_hint (make(map, hint)),
 * rg_map_new_heap (the heap variant DESIGN.md §1 implies), rg_map_find,
 * the u64 entry points and the iterator are additions; the §3 calls are as
 * written.
 */
#ifndef REGIO_MAP_H
#define REGIO_MAP_H

#include "common.h"
#include "region.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rg_map rg_map;

#define RG_MAP_KEY_MAX ((size_t)0xffffffffu) /* longest key: 4 GiB - 1 */

/* An empty map on r (NULL = standalone).  NULL + errno (ENOMEM). */
RG_EXPORT rg_map *rg_map_new(rg_region *r);
/* make(map, hint): room for `hint` entries without a rebuild, and the map
 * never shrinks below that.  NULL + errno (ENOMEM, EOVERFLOW). */
RG_EXPORT rg_map *rg_map_new_hint(rg_region *r, size_t hint);

/* m[key] = val: copies klen bytes of key (key may be NULL when klen is 0).
 * Returns 1 (new entry), 0 (value replaced), -EINVAL, -ENOMEM. */
RG_EXPORT int rg_map_put(rg_map *m, const void *key, size_t klen, void *val);
/* m[key], NULL when absent. */
RG_EXPORT void *rg_map_get(const rg_map *m, const void *key, size_t klen);
/* v, ok := m[key]: 1 and *val (if val != NULL) when present, else 0. */
RG_EXPORT int rg_map_find(const rg_map *m, const void *key, size_t klen, void **val);
/* delete(m, key): 1 deleted, 0 absent, -EINVAL. */
RG_EXPORT int rg_map_del(rg_map *m, const void *key, size_t klen);

/* Integer keys: the same as the byte-string calls on the key's 8 bytes. */
RG_EXPORT int rg_map_put_u64(rg_map *m, uint64_t key, void *val);
RG_EXPORT void *rg_map_get_u64(const rg_map *m, uint64_t key);
RG_EXPORT int rg_map_find_u64(const rg_map *m, uint64_t key, void **val);
RG_EXPORT int rg_map_del_u64(rg_map *m, uint64_t key);

/* len(m). */
RG_EXPORT size_t rg_map_len(const rg_map *m);
/* Bytes the map holds now (see the contract above); falls after deletes. */
RG_EXPORT size_t rg_map_mem(const rg_map *m);
/* An empty map on the collected heap (see "on the collected heap" above),
 * with room for `hint` entries without a rebuild (0: none); it never
 * shrinks below the hint.  Values must be NULL or heap objects; the
 * collector traces them.  The calling thread must use the heap as regio/gc.h
 * says (the map is a local until stored in a root or a heap object).
 * NULL + errno (ENOMEM, EOVERFLOW). */
RG_EXPORT rg_map *rg_map_new_heap(size_t hint);

/* Slots in the current table (for tests and tuning). */
RG_EXPORT size_t rg_map_capacity(const rg_map *m);
/* Removes every entry and returns the table to its smallest size
 * (standalone: frees it).  Like Go's clear(m), but it also shrinks. */
RG_EXPORT void rg_map_clear(rg_map *m);
/* Frees a standalone map and everything it holds; on a region, marks it
 * dead (the region frees the memory); on the heap, drops its tables and
 * marks it dead (the collector frees the memory).  NULL does nothing. */
RG_EXPORT void rg_map_free(rg_map *m);

/* Iteration: see the contract above.
 *     rg_map_iter it;
 *     const void *k; size_t kl; void *v;
 *     rg_map_iter_init(&it, m);
 *     while (rg_map_iter_next(&it, &k, &kl, &v)) { ... }
 */
typedef struct rg_map_iter {
    rg_map *m;
    void *tab;      /* the table being walked */
    size_t pos;     /* next slot */
    const void *cur_key; size_t cur_klen; /* the entry last produced */
    uint64_t kbuf[2]; /* copy of a key of up to 16 bytes */
    int active;
} rg_map_iter;

RG_EXPORT void rg_map_iter_init(rg_map_iter *it, rg_map *m);
/* Next entry: 1 with *key, *klen, *val set (any of them may be NULL), or 0
 * at the end (the iteration is then over). */
RG_EXPORT int rg_map_iter_next(rg_map_iter *it, const void **key, size_t *klen, void **val);
/* Deletes the entry last produced: 1 deleted, 0 if already gone. */
RG_EXPORT int rg_map_iter_del(rg_map_iter *it);
/* Ends an iteration early (idempotent; harmless after the end). */
RG_EXPORT void rg_map_iter_end(rg_map_iter *it);

#ifdef __cplusplus
}
#endif
#endif /* REGIO_MAP_H */
