/* core/map.c — a Swiss-table hash map with byte-string keys and pointer
 * values that grows and shrinks.
 *
 * Algorithm: open addressing over groups of 16 slots (Swiss table, as in
 * abseil's flat_hash_map and Go 1.24's maps).  Each slot has a control byte:
 * EMPTY (0x80), DELETED (0xFE, a tombstone) or FULL (0..127: 7 bits of the
 * key's hash, the "tag").  A lookup hashes the key once, takes the group
 * from the hash's upper bits, compares the tag against all 16 control bytes
 * with one SSE2 compare, checks only the slots whose tag matches (1/128 false
 * positives), and stops at the first group that has an EMPTY byte.  Groups
 * are probed triangularly (g, g+1, g+3, g+6, ...), which visits every group
 * of a power-of-two table.  A delete writes EMPTY when its group already has
 * an EMPTY (no probe ever passed a group that had one) and DELETED otherwise.
 * Guarantee: at most 7/8 of the slots are FULL or DELETED, so every probe
 * ends; with a good hash the expected probe length is O(1).
 * Reference: M. Kulukundis, "Designing a Fast, Efficient, Cache-friendly Hash
 * Table, Step by Step" (CppCon 2017); Go 1.24 runtime/maps design notes.
 *
 * Shrinking (regio's addition; Go's maps never shrink) and the rebuild
 * policy, memory placement and iteration rules are stated in regio/map.h.
 *
 * Hash: a wyhash-style construction written from its published description
 * (W. Yi, "wyhash"): 64x64->128-bit multiplies folded by xor, inputs xored
 * with a 128-bit per-map random seed on both multiplier sides, so an input
 * cannot zero a multiplier without knowing the seed.
 *
 * Slots are 32 bytes: keys of up to 16 bytes live in the slot (two
 * zero-padded words: equality is two compares, and a hit reads no other
 * memory), longer keys in the table's key log (standalone, heap) or on the
 * region.  The slot keeps 32 more hash bits, so
 * a rebuild never rehashes a key.
 *
 * Heap maps (rg_map_new_heap): the same tables, made of collected-heap
 * objects typed so that marking is precise (see map_type below), with every
 * pointer store through rg_write, Go's hybrid barrier: a rebuild that moves
 * values into a table the collector already scanned, or a value moved from
 * one map to another, is shaded on insertion, and a value deleted from a
 * table not yet scanned is shaded on deletion.  The collector may scan a
 * table while its owner changes it: it reads only the pointer fields (with
 * acquire loads, pairing with rg_write's release store), never key bytes or
 * control bytes, which are plain data of pointer-free objects or fields.
 */
#include "internal.h"

#include "regio/gc.h"
#include "regio/map.h"

#include <sys/random.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define GROUP 16
#define CTRL_EMPTY ((uint8_t)0x80)
#define CTRL_DELETED ((uint8_t)0xFE)
#define INLINE_MAX 16
#define MAP_MAGIC 0x6d61702du
#define MAX_GROUPS ((size_t)1 << 32) /* the slot's 32 hash bits pick the group */

typedef struct slot {
    union {
        uint64_t u[2];      /* klen <= 16: the key's bytes, zero-padded */
        const uint8_t *ptr; /* klen > 16: the key's bytes elsewhere */
    } k;
    uint32_t klen;
    uint32_t hhi; /* hash bits 7..38: the group index in any table size */
    void *val;
} slot;
/* 32 bytes: two slots per cache line, none straddling two (slot arrays are
 * 64-byte aligned in large tables), so a hit on a key of up to 16 bytes
 * touches two cache lines: its control group and its slot. */
_Static_assert(sizeof(slot) == 32, "slot layout");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "inline keys are stored as little-endian words");

/* A key of up to 16 bytes as two zero-padded words (bytes 0..7, 8..15). */
typedef struct kw {
    uint64_t a, b;
} kw;

/* One table: header, then ngroups * 16 control bytes, then the slots, in one
 * block; long keys in a separate log (standalone maps).
 * Invariants: live <= used <= max_used < capacity;
 *             live == number of FULL control bytes;
 *             used == FULL + DELETED;
 *             long_bytes == sum of klen over FULL slots with klen > 16
 *                         <= log_used <= log_cap. */
typedef struct table {
    uint8_t *ctrl;
    slot *slots;
    size_t gmask;    /* groups - 1 */
    size_t live, used, max_used;
    uint8_t *log;    /* standalone: key bytes, append-only, compacted by rebuilds */
    size_t log_cap, log_used, long_bytes;
    size_t bytes;    /* standalone: usable bytes of the block and the log */
    struct table *next_retired;
} table;

#define TABLE_HDR ((sizeof(table) + 63) & ~(size_t)63)
/* offset of the slots after the control bytes: 64-byte aligned */
#define CTRL_BYTES(cap) (((cap) + 63) & ~(size_t)63)

struct rg_map {
    table *t;
    uint64_t s0, s1;     /* per-map hash seed */
    rg_region *r;        /* NULL: standalone or heap */
    size_t min_groups;   /* from the hint; never shrink below */
    size_t region_bytes; /* region maps: everything taken from the region */
    table *retired;      /* standalone, heap: tables kept for running iterators */
    unsigned iters;      /* running iterators */
    uint32_t magic;
    bool heap;           /* on the collected heap (rg_map_new_heap) */
};

/* Heap maps: the header, each table header, control bytes, slots and key
 * log are separate heap objects with precise pointer maps.  The collector
 * follows exactly: map -> table (t, retired), table -> ctrl, slots, log,
 * next_retired, and slot -> val.  Key bytes (inline in slots or in the log)
 * and control bytes are in pointer-free fields or objects, so they are never
 * read as pointers.  Every store of one of these pointers goes through
 * rg_write (see set_val, set_ptr). */
static const size_t map_ptrs[] = {offsetof(struct rg_map, t), offsetof(struct rg_map, retired)};
static const rg_type map_type = {"rg_map", sizeof(struct rg_map), map_ptrs, 2, NULL};
static const size_t table_ptrs[] = {offsetof(table, ctrl), offsetof(table, slots), offsetof(table, log),
                                    offsetof(table, next_retired)};
static const rg_type table_type = {"rg_map.table", sizeof(table), table_ptrs, 4, NULL};
static const size_t slot_ptrs[] = {offsetof(slot, val)};
static const rg_type slot_type = {"rg_map.slots", sizeof(slot), slot_ptrs, 1, NULL};
static const rg_type bytes_type = {"rg_map.bytes", 1, NULL, 0, NULL};

/* A pointer field of a heap map's object (the map header or a table
 * header): through the barrier.  Other maps: a plain store. */
static inline void set_ptr(const rg_map *m, void *obj, void *slotp, void *v)
{
    if (m->heap)
        rg_write(obj, slotp, v);
    else
        *(void **)slotp = v;
}

/* A slot's value: through the barrier on a heap map (Go's hybrid barrier
 * shades the old and the new value while marking, so a value moved between
 * tables by a rebuild, or replaced, is never lost by concurrent marking). */
static inline void set_val(const rg_map *m, table *t, slot *s, void *v)
{
    if (m->heap)
        rg_write(t->slots, &s->val, v);
    else
        s->val = v;
}

/* The table of every empty map: one group of EMPTY bytes, no slots.  Only
 * read; an insert rebuilds first because max_used is 0. */
static _Alignas(16) uint8_t empty_ctrl[GROUP] = {
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
};
static table empty_table = {.ctrl = empty_ctrl};

/* ---------------------------------------------------------------------------
 * Hashing
 * ------------------------------------------------------------------------- */
__extension__ typedef unsigned __int128 u128; /* gcc and clang on 64-bit targets */

#define K0 0x9e3779b97f4a7c15ull /* 2^64 / golden ratio */
#define K1 0xd6e8feb86659fd93ull
#define K2 0xc2b2ae3d27d4eb4full

static inline uint64_t mix(uint64_t a, uint64_t b)
{
    u128 p = (u128)a * b;
    return (uint64_t)p ^ (uint64_t)(p >> 64);
}
static inline uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline uint64_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The key's bytes as one zero-padded word (klen <= 8): injective per klen. */
static inline uint64_t small_word(const void *key, size_t klen)
{
    const uint8_t *p = key;
    if (klen == 8)
        return rd64(p);
    if (klen >= 4) /* two overlapping loads; the overlap ORs equal bytes */
        return rd32(p) | (rd32(p + klen - 4) << ((klen - 4) * 8));
    if (klen > 0)
        return (uint64_t)p[0] | ((uint64_t)p[klen >> 1] << ((klen >> 1) * 8)) |
               ((uint64_t)p[klen - 1] << ((klen - 1) * 8));
    return 0;
}

/* The key's bytes as two zero-padded words (klen <= 16): injective per
 * klen.  Keys of 9..16 bytes: two overlapping loads, the second shifted so
 * that only bytes 8.. remain. */
static inline kw key_words(const void *key, size_t klen)
{
    const uint8_t *p = key;
    if (klen > 8)
        return (kw){rd64(p), rd64(p + klen - 8) >> ((16 - klen) * 8)};
    return (kw){small_word(p, klen), 0};
}

static inline uint64_t hash_small(const rg_map *m, kw w, size_t klen)
{
    uint64_t h = mix(w.a ^ m->s0, w.b ^ m->s1 ^ (klen * K0));
    return mix(h ^ K1, m->s0 ^ K2);
}

static RGI_NOINLINE uint64_t hash_long(const rg_map *m, const uint8_t *p, size_t n)
{
    uint64_t x = m->s1 ^ (n * K0);
    size_t i = n;
    while (i > 16) {
        x = mix(rd64(p) ^ m->s0, rd64(p + 8) ^ x);
        p += 16;
        i -= 16;
    }
    /* the last 16 bytes, overlapping what the loop read when n % 16 != 0 */
    uint64_t a = rd64(p + i - 16), b = rd64(p + i - 8);
    uint64_t h = mix(a ^ m->s0, b ^ x ^ K1);
    return mix(h ^ K1, m->s0 ^ K2);
}

static inline uint64_t hash_key(const rg_map *m, const void *key, size_t klen, kw w)
{
    if (klen <= INLINE_MAX)
        return hash_small(m, w, klen);
    return hash_long(m, key, klen);
}

static uint64_t seed_base;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t seed_counter; /* relaxed: only needs distinct values */

static void seed_init(void)
{
    if (getrandom(&seed_base, sizeof seed_base, GRND_NONBLOCK) != (ssize_t)sizeof seed_base)
        seed_base = rgi_now_ns() ^ (uint64_t)(uintptr_t)&seed_base;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += K0);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void map_seed(rg_map *m)
{
    pthread_once(&seed_once, seed_init);
    uint64_t x = seed_base ^ (atomic_fetch_add_explicit(&seed_counter, 1, memory_order_relaxed) * K2);
    m->s0 = splitmix(&x) | 1;
    m->s1 = splitmix(&x) | ((uint64_t)1 << 63);
}

/* ---------------------------------------------------------------------------
 * Group matching: 16 control bytes at once
 * ------------------------------------------------------------------------- */
#if defined(__SSE2__)
typedef __m128i grp;
static inline grp grp_load(const uint8_t *c) { return _mm_load_si128((const __m128i *)(const void *)c); }
static inline uint32_t grp_match(grp g, uint8_t b)
{
    return (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(g, _mm_set1_epi8((char)b)));
}
/* EMPTY or DELETED: the high bit */
static inline uint32_t grp_free(grp g) { return (uint32_t)_mm_movemask_epi8(g); }
#else
typedef struct { uint8_t b[GROUP]; } grp;
static inline grp grp_load(const uint8_t *c)
{
    grp g;
    memcpy(g.b, c, GROUP);
    return g;
}
static inline uint32_t grp_match(grp g, uint8_t b)
{
    uint32_t m = 0;
    for (int i = 0; i < GROUP; i++)
        m |= (uint32_t)(g.b[i] == b) << i;
    return m;
}
static inline uint32_t grp_free(grp g)
{
    uint32_t m = 0;
    for (int i = 0; i < GROUP; i++)
        m |= (uint32_t)(g.b[i] >> 7) << i;
    return m;
}
#endif
static inline uint32_t grp_empty(grp g) { return grp_match(g, CTRL_EMPTY); }

/* Equality of two long keys (klen > 16): overlapping word loads up to 32
 * bytes (no call), memcmp beyond. */
static inline bool long_eq(const uint8_t *a, const uint8_t *b, size_t n)
{
    if (n <= 16)
        return ((rd64(a) ^ rd64(b)) | (rd64(a + n - 8) ^ rd64(b + n - 8))) == 0;
    if (n <= 32)
        return ((rd64(a) ^ rd64(b)) | (rd64(a + 8) ^ rd64(b + 8)) |
                (rd64(a + n - 16) ^ rd64(b + n - 16)) | (rd64(a + n - 8) ^ rd64(b + n - 8))) == 0;
    return memcmp(a, b, n) == 0;
}

static inline bool slot_eq(const slot *s, const void *key, size_t klen, kw w)
{
    if (s->klen != klen)
        return false;
    if (klen <= INLINE_MAX)
        return ((s->k.u[0] ^ w.a) | (s->k.u[1] ^ w.b)) == 0;
    return long_eq(s->k.ptr, key, klen);
}

static inline kw slot_words(const slot *s)
{
    return s->klen <= INLINE_MAX ? (kw){s->k.u[0], s->k.u[1]} : (kw){0, 0};
}

static inline slot *find(const table *t, const void *key, size_t klen, kw w, uint64_t h)
{
    size_t mask = t->gmask, g = (size_t)(h >> 7) & mask;
    uint8_t tag = (uint8_t)(h & 0x7f);
    for (size_t step = 1;; step++) {
        grp c = grp_load(t->ctrl + g * GROUP);
        for (uint32_t bits = grp_match(c, tag); bits; bits &= bits - 1) {
            slot *s = &t->slots[g * GROUP + (unsigned)__builtin_ctz(bits)];
            if (RG_LIKELY(slot_eq(s, key, klen, w)))
                return s;
        }
        if (RG_LIKELY(grp_empty(c)))
            return NULL;
        g = (g + step) & mask;
    }
}

/* ---------------------------------------------------------------------------
 * Tables: allocation, rebuild
 * ------------------------------------------------------------------------- */
static inline size_t cap_of(const table *t) { return (t->gmask + 1) * GROUP; }

static void *map_alloc(rg_map *m, size_t n)
{
    if (m->r) {
        void *p = rg_alloc(m->r, n);
        if (p)
            m->region_bytes += (n + 15) & ~(size_t)15;
        return p;
    }
    return rg_malloc(n);
}

static void table_release(rg_map *m, table *t)
{
    if (t == &empty_table || m->r)
        return; /* a region keeps it until reset */
    if (m->iters) {
        /* heap: the map keeps it reachable for the iterators, which are not
         * roots (rule 2 of regio/gc.h) */
        set_ptr(m, t, &t->next_retired, m->retired);
        set_ptr(m, m, &m->retired, t);
        return;
    }
    if (m->heap)
        return; /* the collector reclaims it once nothing reaches it */
    rg_free(t->log);
    rg_free(t);
}

static void retired_free(rg_map *m)
{
    if (m->heap) {
        if (m->retired)
            set_ptr(m, m, &m->retired, NULL);
        return;
    }
    while (m->retired) {
        table *t = m->retired;
        m->retired = t->next_retired;
        rg_free(t->log);
        rg_free(t);
    }
}

/* Groups for `live` entries: a power of two >= min_groups keeping the load
 * at or under 5/8 (10 of 16 slots).  0 when too big. */
static size_t groups_for(const rg_map *m, size_t live)
{
    size_t g = m->min_groups ? m->min_groups : 1;
    while (g * 10 < live) {
        if (g >= MAX_GROUPS)
            return 0;
        g *= 2;
    }
    return g;
}

/* A standalone or region table: header, control bytes and slots in one
 * block (`bytes`), the key log (standalone) apart.  NULL + errno. */
static table *block_table_new(rg_map *m, size_t cap, size_t bytes, size_t log_cap)
{
    table *t = map_alloc(m, bytes);
    if (t == NULL)
        return NULL;
    memset(t, 0, sizeof *t);
    t->ctrl = (uint8_t *)t + TABLE_HDR;
    t->slots = (slot *)(void *)(t->ctrl + CTRL_BYTES(cap));
    if (!m->r) {
        if (log_cap) {
            t->log = rg_malloc(log_cap);
            if (t->log == NULL) {
                int e = errno;
                rg_free(t);
                errno = e;
                return NULL;
            }
        }
        t->bytes = rg_usable_size(t) + (t->log ? rg_usable_size(t->log) : 0);
    }
    return t;
}

/* A heap table: four heap objects (see map_type).  They are held in locals
 * only until linked, with no safepoint in between (rule 2 of regio/gc.h);
 * on failure the collector reclaims what was made.  NULL + errno. */
static table *heap_table_new(size_t cap, size_t log_cap)
{
    table *t = rg_new(&table_type);
    uint8_t *ctrl = t ? rg_new_array(&bytes_type, cap) : NULL;
    slot *slots = ctrl ? rg_new_array(&slot_type, cap) : NULL;
    uint8_t *log = slots && log_cap ? rg_new_array(&bytes_type, log_cap) : NULL;
    if (slots == NULL || (log_cap && log == NULL))
        return NULL;
    if (RG_UNLIKELY(((uintptr_t)ctrl & 15) != 0))
        rgi_corrupt("rg_map: heap control bytes %p not 16-byte aligned", (void *)ctrl);
    rg_write(t, &t->ctrl, ctrl);
    rg_write(t, &t->slots, slots);
    rg_write(t, &t->log, log);
    t->bytes = sizeof(table) + cap * (1 + sizeof(slot)) + log_cap;
    return t;
}

/* Key-log capacity for a table that can hold max_used entries now holding
 * `live` of which `long_bytes` are long-key bytes, plus room for `extra`:
 * enough for the table to fill up at the current average key length, and at
 * least half again the live bytes, so dead bytes from deletes pay for the
 * next compaction. */
static size_t log_cap_for(size_t long_bytes, size_t live, size_t max_used, size_t extra)
{
    if (long_bytes == 0 && extra == 0)
        return 0;
    u128 want = (u128)long_bytes * 3 / 2;
    if (live) {
        u128 scaled = (u128)long_bytes * max_used / live;
        if (scaled > want)
            want = scaled;
    }
    want += extra;
    if (want < 256)
        want = 256;
    if (want > (u128)PTRDIFF_MAX)
        return SIZE_MAX;
    return ((size_t)want + 63) & ~(size_t)63;
}

/* Rebuilds the table for `need` live entries (>= live) with `extra` more
 * key-log bytes: grows, shrinks, drops tombstones and compacts the log.
 * Returns 0 or -ENOMEM (-EOVERFLOW for absurd sizes); the map is unchanged
 * on failure. */
static RGI_NOINLINE int rebuild(rg_map *m, size_t need, size_t extra)
{
    table *old = m->t;
    size_t ng = groups_for(m, need);
    if (ng == 0)
        return -ENOMEM;
    if (m->r && old != &empty_table && ng < old->gmask + 1)
        ng = old->gmask + 1; /* a region map never shrinks: it would only cost more region */
    size_t cap = ng * GROUP, bytes, log_cap = 0;
    if (__builtin_mul_overflow(cap, sizeof(slot), &bytes) ||
        __builtin_add_overflow(bytes, TABLE_HDR + CTRL_BYTES(cap), &bytes) || bytes > PTRDIFF_MAX)
        return -ENOMEM;
    if (!m->r) {
        log_cap = log_cap_for(old->long_bytes, old->live, cap - cap / 8, extra);
        if (log_cap == SIZE_MAX)
            return -ENOMEM;
    }
    table *t = m->heap ? heap_table_new(cap, log_cap) : block_table_new(m, cap, bytes, log_cap);
    if (t == NULL)
        return -errno;
    t->gmask = ng - 1;
    t->max_used = cap - cap / 8;
    t->log_cap = log_cap;
    memset(t->ctrl, CTRL_EMPTY, cap);
    /* move every entry; the new table has no tombstones, so each goes to
     * the first free slot of its probe sequence */
    size_t mask = t->gmask;
    for (size_t og = 0; og <= old->gmask; og++) {
        uint32_t full = ~grp_free(grp_load(old->ctrl + og * GROUP)) & 0xffff;
        for (; full; full &= full - 1) {
            size_t oi = og * GROUP + (unsigned)__builtin_ctz(full);
            const slot *s = &old->slots[oi];
            size_t g = s->hhi & mask;
            uint32_t fr;
            for (size_t step = 1; (fr = grp_free(grp_load(t->ctrl + g * GROUP))) == 0; step++)
                g = (g + step) & mask;
            size_t ni = g * GROUP + (unsigned)__builtin_ctz(fr);
            slot *d = &t->slots[ni];
            d->k = s->k;
            d->klen = s->klen;
            d->hhi = s->hhi;
            set_val(m, t, d, s->val);
            if (s->klen > INLINE_MAX && !m->r) {
                uint8_t *k = t->log + t->log_used;
                memcpy(k, s->k.ptr, s->klen);
                t->log_used += s->klen;
                d->k.ptr = k;
            }
            t->ctrl[ni] = old->ctrl[oi];
        }
    }
    t->live = t->used = old->live;
    t->long_bytes = old->long_bytes;
    set_ptr(m, m, &m->t, t);
    table_release(m, old);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------------- */
static inline bool map_ok(const rg_map *m, const void *key, size_t klen, const char *call)
{
    if (RG_LIKELY(m != NULL && m->magic == MAP_MAGIC && (key != NULL || klen == 0) &&
                  klen <= RG_MAP_KEY_MAX))
        return true;
    if (RG_DEBUG_CHECKS)
        rgi_diag(call, "map %p%s, key %p, klen %zu", (const void *)m,
                 m && m->magic != MAP_MAGIC ? " (freed or not a map)" : "", key, klen);
    return false;
}

rg_map *rg_map_new_hint(rg_region *r, size_t hint)
{
    rg_map *m = r ? rg_alloc(r, sizeof *m) : rg_malloc(sizeof *m);
    if (m == NULL)
        return NULL;
    memset(m, 0, sizeof *m);
    m->t = &empty_table;
    m->r = r;
    m->magic = MAP_MAGIC;
    if (r)
        m->region_bytes = (sizeof *m + 15) & ~(size_t)15;
    map_seed(m);
    if (hint) {
        m->min_groups = groups_for(m, hint);
        int rc = m->min_groups ? rebuild(m, hint, 0) : -EOVERFLOW;
        if (rc < 0) {
            if (!r)
                rg_free(m);
            else
                m->magic = 0;
            errno = -rc;
            return NULL;
        }
    }
    return m;
}

rg_map *rg_map_new(rg_region *r)
{
    return rg_map_new_hint(r, 0);
}

rg_map *rg_map_new_heap(size_t hint)
{
    /* zeroed by rg_new; the pointer fields are written through the barrier
     * (a store of a static or NULL pointer shades nothing) */
    rg_map *m = rg_new(&map_type);
    if (m == NULL)
        return NULL;
    rg_write(m, &m->t, &empty_table);
    m->heap = true;
    m->magic = MAP_MAGIC;
    map_seed(m);
    if (hint) {
        m->min_groups = groups_for(m, hint);
        int rc = m->min_groups ? rebuild(m, hint, 0) : -EOVERFLOW;
        if (rc < 0) {
            m->magic = 0; /* the collector reclaims it */
            errno = -rc;
            return NULL;
        }
    }
    return m;
}

/* A heap map's value must be NULL or a heap object (checked in every build:
 * the collector would otherwise be asked to follow a foreign pointer).  The
 * collector's check also shades the object while marking, which the barrier
 * in set_val does anyway. */
static RGI_NOINLINE bool heap_val_ok(const void *val, const char *call)
{
    bool (*is_obj)(const void *) = __atomic_load_n(&rgi_gc_is_object, __ATOMIC_ACQUIRE);
    if (val == NULL || (is_obj && is_obj(val)))
        return true;
    if (RG_DEBUG_CHECKS)
        rgi_diag(call, "value %p is not an object of the collected heap (a heap map stores "
                       "only NULL or pointers returned by rg_new/rg_new_array/rg_clone)", val);
    return false;
}

static int put(rg_map *m, const void *key, size_t klen, kw w, uint64_t h, void *val)
{
    uint8_t tag = (uint8_t)(h & 0x7f);
    for (;;) {
        table *t = m->t;
        size_t mask = t->gmask, g = (size_t)(h >> 7) & mask, cand = SIZE_MAX;
        for (size_t step = 1;; step++) {
            grp c = grp_load(t->ctrl + g * GROUP);
            for (uint32_t bits = grp_match(c, tag); bits; bits &= bits - 1) {
                slot *s = &t->slots[g * GROUP + (unsigned)__builtin_ctz(bits)];
                if (slot_eq(s, key, klen, w)) {
                    set_val(m, t, s, val);
                    return 0;
                }
            }
            if (cand == SIZE_MAX) {
                uint32_t fr = grp_free(c);
                if (fr)
                    cand = g * GROUP + (unsigned)__builtin_ctz(fr);
            }
            if (grp_empty(c))
                break;
            g = (g + step) & mask;
        }
        bool was_empty = t->ctrl[cand] == CTRL_EMPTY;
        bool longk = klen > INLINE_MAX;
        if ((was_empty && t->used >= t->max_used) ||
            (longk && !m->r && t->log_cap - t->log_used < klen)) {
            int rc = rebuild(m, t->live + 1, longk ? klen : 0);
            if (rc < 0)
                return rc;
            continue; /* probe the new table */
        }
        slot *s = &t->slots[cand];
        if (!longk) {
            s->k.u[0] = w.a;
            s->k.u[1] = w.b;
        } else {
            uint8_t *k;
            if (m->r) {
                k = map_alloc(m, klen);
                if (k == NULL)
                    return -errno;
            } else {
                k = t->log + t->log_used;
                t->log_used += klen;
            }
            memcpy(k, key, klen);
            s->k.ptr = k;
            t->long_bytes += klen;
        }
        s->klen = (uint32_t)klen;
        s->hhi = (uint32_t)(h >> 7);
        set_val(m, t, s, val);
        t->ctrl[cand] = tag;
        t->live++;
        t->used += was_empty;
        return 1;
    }
}

static void del_slot(rg_map *m, table *t, slot *s)
{
    size_t i = (size_t)(s - t->slots);
    grp c = grp_load(t->ctrl + (i & ~(size_t)(GROUP - 1)));
    /* no probe ever passed a group that has an EMPTY byte: EMPTY is safe */
    if (grp_empty(c)) {
        t->ctrl[i] = CTRL_EMPTY;
        t->used--;
    } else {
        t->ctrl[i] = CTRL_DELETED;
    }
    t->live--;
    if (s->klen > INLINE_MAX)
        t->long_bytes -= s->klen; /* the bytes stay in the log until a rebuild */
    set_val(m, t, s, NULL);  /* heap: the value is no longer kept alive */
    /* shrink below 5/16 load (standalone only); a failed shrink is harmless */
    if (!m->r && t->live * 16 < cap_of(t) * 5 && t->gmask + 1 > (m->min_groups ? m->min_groups : 1))
        (void)rebuild(m, t->live, 0);
}

int rg_map_put(rg_map *m, const void *key, size_t klen, void *val)
{
    if (!map_ok(m, key, klen, "rg_map_put"))
        return -EINVAL;
    if (RG_UNLIKELY(m->heap) && !heap_val_ok(val, "rg_map_put"))
        return -EINVAL;
    kw w = klen <= INLINE_MAX ? key_words(key, klen) : (kw){0, 0};
    return put(m, key, klen, w, hash_key(m, key, klen, w), val);
}

int rg_map_find(const rg_map *m, const void *key, size_t klen, void **val)
{
    if (!map_ok(m, key, klen, "rg_map_find"))
        return 0;
    kw w = klen <= INLINE_MAX ? key_words(key, klen) : (kw){0, 0};
    slot *s = find(m->t, key, klen, w, hash_key(m, key, klen, w));
    if (s == NULL)
        return 0;
    if (val)
        *val = s->val;
    return 1;
}

void *rg_map_get(const rg_map *m, const void *key, size_t klen)
{
    if (!map_ok(m, key, klen, "rg_map_get"))
        return NULL;
    kw w = klen <= INLINE_MAX ? key_words(key, klen) : (kw){0, 0};
    slot *s = find(m->t, key, klen, w, hash_key(m, key, klen, w));
    return s ? s->val : NULL;
}

int rg_map_del(rg_map *m, const void *key, size_t klen)
{
    if (!map_ok(m, key, klen, "rg_map_del"))
        return -EINVAL;
    kw w = klen <= INLINE_MAX ? key_words(key, klen) : (kw){0, 0};
    table *t = m->t;
    slot *s = find(t, key, klen, w, hash_key(m, key, klen, w));
    if (s == NULL)
        return 0;
    del_slot(m, t, s);
    return 1;
}

int rg_map_put_u64(rg_map *m, uint64_t key, void *val)
{
    if (!map_ok(m, &key, 8, "rg_map_put_u64"))
        return -EINVAL;
    if (RG_UNLIKELY(m->heap) && !heap_val_ok(val, "rg_map_put_u64"))
        return -EINVAL;
    return put(m, &key, 8, (kw){key, 0}, hash_small(m, (kw){key, 0}, 8), val);
}

int rg_map_find_u64(const rg_map *m, uint64_t key, void **val)
{
    if (!map_ok(m, &key, 8, "rg_map_find_u64"))
        return 0;
    slot *s = find(m->t, &key, 8, (kw){key, 0}, hash_small(m, (kw){key, 0}, 8));
    if (s == NULL)
        return 0;
    if (val)
        *val = s->val;
    return 1;
}

void *rg_map_get_u64(const rg_map *m, uint64_t key)
{
    if (!map_ok(m, &key, 8, "rg_map_get_u64"))
        return NULL;
    slot *s = find(m->t, &key, 8, (kw){key, 0}, hash_small(m, (kw){key, 0}, 8));
    return s ? s->val : NULL;
}

int rg_map_del_u64(rg_map *m, uint64_t key)
{
    if (!map_ok(m, &key, 8, "rg_map_del_u64"))
        return -EINVAL;
    table *t = m->t;
    slot *s = find(t, &key, 8, (kw){key, 0}, hash_small(m, (kw){key, 0}, 8));
    if (s == NULL)
        return 0;
    del_slot(m, t, s);
    return 1;
}

size_t rg_map_len(const rg_map *m)
{
    if (!map_ok(m, NULL, 0, "rg_map_len"))
        return 0;
    return m->t->live;
}

size_t rg_map_capacity(const rg_map *m)
{
    if (!map_ok(m, NULL, 0, "rg_map_capacity"))
        return 0;
    return m->t == &empty_table ? 0 : cap_of(m->t);
}

size_t rg_map_mem(const rg_map *m)
{
    if (!map_ok(m, NULL, 0, "rg_map_mem"))
        return 0;
    if (m->r)
        return m->region_bytes;
    size_t n = (m->heap ? sizeof *m : rg_usable_size(m)) + m->t->bytes;
    for (const table *t = m->retired; t; t = t->next_retired)
        n += t->bytes;
    return n;
}

void rg_map_clear(rg_map *m)
{
    if (!map_ok(m, NULL, 0, "rg_map_clear"))
        return;
    table *t = m->t;
    if (t == &empty_table)
        return;
    if (m->r && !m->iters) {
        /* reuse the region's table: nothing else would give its bytes back */
        memset(t->ctrl, CTRL_EMPTY, cap_of(t));
        t->live = t->used = t->long_bytes = 0;
        return;
    }
    set_ptr(m, m, &m->t, &empty_table);
    table_release(m, t);
}

void rg_map_free(rg_map *m)
{
    if (m == NULL)
        return;
    if (!map_ok(m, NULL, 0, "rg_map_free"))
        return;
    m->magic = 0;
    if (m->r)
        return; /* the region owns every byte */
    table *t = m->t;
    set_ptr(m, m, &m->t, &empty_table);
    m->iters = 0;
    table_release(m, t);
    retired_free(m);
    if (!m->heap)
        rg_free(m); /* heap: the header goes when nothing reaches it */
}

/* Checks the table invariants (see struct table) and that every entry is
 * found by a lookup.  For tests and debug builds: O(capacity). */
bool rgi_map_is_valid(const rg_map *m);
bool rgi_map_is_valid(const rg_map *m)
{
    if (m == NULL || m->magic != MAP_MAGIC)
        return false;
    const table *t = m->t;
    if (t == &empty_table)
        return t->live == 0 && t->used == 0 && t->max_used == 0;
    size_t cap = cap_of(t), full = 0, del = 0, longb = 0;
    for (size_t i = 0; i < cap; i++) {
        uint8_t c = t->ctrl[i];
        if (c == CTRL_DELETED) {
            del++;
        } else if (c != CTRL_EMPTY) {
            if (c & 0x80)
                return false; /* not a control byte */
            const slot *s = &t->slots[i];
            full++;
            if (s->klen > INLINE_MAX) {
                longb += s->klen;
                if (!m->r && (s->k.ptr < t->log || s->k.ptr + s->klen > t->log + t->log_used))
                    return false;
            }
            const void *kp = s->klen <= INLINE_MAX ? (const void *)s->k.u : (const void *)s->k.ptr;
            uint64_t h = hash_key(m, kp, s->klen, slot_words(s));
            if ((h & 0x7f) != c || (uint32_t)(h >> 7) != s->hhi)
                return false;
            if (find(t, kp, s->klen, slot_words(s), h) != s)
                return false;
        }
    }
    return full == t->live && full + del == t->used && t->used <= t->max_used &&
           t->max_used < cap && longb == t->long_bytes && t->log_used <= t->log_cap;
}

/* ---------------------------------------------------------------------------
 * Iteration
 * ------------------------------------------------------------------------- */
void rg_map_iter_init(rg_map_iter *it, rg_map *m)
{
    if (it == NULL)
        return;
    memset(it, 0, sizeof *it);
    if (!map_ok(m, NULL, 0, "rg_map_iter_init"))
        return;
    it->m = m;
    it->tab = m->t;
    it->active = 1;
    m->iters++;
}

void rg_map_iter_end(rg_map_iter *it)
{
    if (it == NULL || !it->active)
        return;
    it->active = 0;
    rg_map *m = it->m;
    if (--m->iters == 0)
        retired_free(m);
}

int rg_map_iter_next(rg_map_iter *it, const void **key, size_t *klen, void **val)
{
    if (it == NULL || !it->active)
        return 0;
    rg_map *m = it->m;
    table *t = it->tab;
    size_t cap = t == &empty_table ? 0 : cap_of(t);
    while (it->pos < cap) {
        size_t i = it->pos++;
        if (t->ctrl[i] & 0x80)
            continue;
        const slot *s = &t->slots[i];
        if (t != m->t) {
            /* the table was rebuilt since the iteration began: this table is
             * frozen; the entry counts only if the map still has it */
            const void *kp = s->klen <= INLINE_MAX ? (const void *)s->k.u : (const void *)s->k.ptr;
            uint64_t h = ((uint64_t)s->hhi << 7) | t->ctrl[i];
            s = find(m->t, kp, s->klen, slot_words(s), h);
            if (s == NULL)
                continue;
        }
        if (s->klen <= INLINE_MAX) {
            it->kbuf[0] = s->k.u[0]; /* the slot may be reused once this entry is deleted */
            it->kbuf[1] = s->k.u[1];
            it->cur_key = it->kbuf;
        } else {
            it->cur_key = s->k.ptr;
        }
        it->cur_klen = s->klen;
        if (key)
            *key = it->cur_key;
        if (klen)
            *klen = s->klen;
        if (val)
            *val = s->val;
        return 1;
    }
    rg_map_iter_end(it);
    return 0;
}

int rg_map_iter_del(rg_map_iter *it)
{
    if (it == NULL || !it->active || it->cur_key == NULL)
        return 0;
    int rc = rg_map_del(it->m, it->cur_key, it->cur_klen);
    it->cur_key = NULL;
    return rc > 0;
}
