/* core/region.c — per-request regions (the "stack" of DESIGN.md §1).
 *
 * Algorithm.  A region is a chain of chunks from the calling thread's arena;
 * the region's own header lives at the start of the first chunk (one
 * allocation per region, as in APR).  rg_alloc bumps a pointer inside the
 * current chunk (inline in regio/region.h); the slow path moves to the next
 * kept chunk or appends a new one twice as large (up to max_chunk).
 * Requests of RG_REGION_LARGE_MIN bytes or more get their own block from the
 * arena, listed in the region and freed on reset.  Reset keeps chunks up to
 * `retain` bytes, so a request loop reaches a steady state with no arena
 * traffic at all.
 *
 * Mark/release pop the region like a stack: the mark records the chunk, the
 * bump pointer and the heads of the large, cleanup and pin lists; release
 * runs/frees everything newer.
 *
 * Pins (rg_region_keep) are roots of the collector while their region
 * lives: a region joins a registry at its first pin and leaves it when
 * freed; its pin list has its own small lock, so a request's pins and the
 * reset that drops them never touch a lock other threads' requests share
 * (see pins_lock below).
 *
 * Poisoning: when rgi_poisoning() holds at creation, the region keeps
 * `end == cur` so the inline fast path always falls through to the slow
 * path, which unpoisons exactly what it hands out; reset/release poison what
 * they take back.  A use after reset then faults in ASan / Valgrind, or reads
 * 0xdb bytes in debug_checks builds.
 *
 * Invariant: held == sum(chunk sizes) + sum(large block sizes), and
 *            first <= ... <= chunk along `next`, with cur in [data(chunk), real_end].
 */
#include "internal.h"

#include <sched.h>

#define REGION_ALIVE 0x7265676eu /* "regn" */
#define REGION_DEAD 0x64656164u  /* "dead" */
#define PINS_PER_BLOCK 30

typedef struct chunk {
    struct chunk *next;
    size_t size; /* bytes including this header */
} chunk;

typedef struct large_blk {
    struct large_blk *next;
    void *base; /* what the arena handed out */
    size_t size;
    size_t pad;
} large_blk;

typedef struct cleanup {
    struct cleanup *next;
    void (*fn)(void *);
    void *arg;
} cleanup;

typedef struct pin_block {
    struct pin_block *next;
    size_t pad;
    void *obj[PINS_PER_BLOCK];
} pin_block;

struct rg_region {
    rg_region_head h;       /* must stay first: the inline fast path reads it */
    char *real_end;         /* end of the current chunk */
    chunk *cur_chunk;
    chunk *first;
    chunk *home;            /* where each cycle starts: first, or the merged chunk */
    large_blk *large;
    cleanup *cleanups;
    pin_block *pins, *pins_tail;
    size_t npins;
    size_t held;            /* chunk + large bytes */
    size_t next_size, max_chunk, retain;
    uint32_t magic;
    uint8_t poisoning, registered;
    atomic_bool pins_busy;  /* this region's pin lock (pins_lock_region) */
    struct rg_region *reg_next, *reg_prev; /* pin registry links */
#if RG_DEBUG_CHECKS
    struct rg_region *live_next, *live_prev; /* live-region registry (leak report) */
    const void *born;                        /* call site of rg_region_new* */
#endif
};

#define CHUNK_HDR sizeof(chunk)
#define ROUND16(n) (((n) + 15) & ~(size_t)15)
#define REGION_HDR ROUND16(sizeof(struct rg_region))

atomic_uint_fast64_t rgi_region_bytes;
bool (*rgi_gc_is_object)(const void *obj);

/* Regions that have held pins, for the collector's root scan.  Two locks:
 * pins_lock guards the registry (the list of regions and its links); each
 * region's pins_busy guards its pin list (pins, pins_tail, npins) against
 * the collector's scan.  A region joins the registry at its first pin and
 * leaves it only when freed, so the per-request work — a pin, the reset
 * that drops the pins — takes only the region's own lock, which only the
 * collector's scan ever contends: no global lock shared by every thread's
 * requests.  Order: pins_lock, then a region's pins_busy. */
static pthread_mutex_t pins_lock = PTHREAD_MUTEX_INITIALIZER;
static rg_region *pinned_regions;

static inline void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* The region's pin lock: a test-and-set spin lock.  Held for a few stores
 * by the owner, or by the collector for one region's scan.  The acquiring
 * exchange pairs with pins_unlock_region's release store, so whoever takes
 * the lock sees the pin list the last holder left. */
static void pins_lock_region(rg_region *r)
{
    for (unsigned spins = 0;
         atomic_exchange_explicit(&r->pins_busy, true, memory_order_acquire); spins++) {
        if (spins > 64)
            sched_yield(); /* the collector is scanning a long pin list */
        else
            spin_pause();
    }
}

static void pins_unlock_region(rg_region *r)
{
    atomic_store_explicit(&r->pins_busy, false, memory_order_release); /* pairs with the exchange above */
}

static inline char *chunk_data(const rg_region *r, chunk *c)
{
    return (char *)c + CHUNK_HDR + (c == r->first ? REGION_HDR : 0);
}

/* Returns a chunk to the arena, unpoisoned: the arena may hand it out again. */
static void chunk_release(rg_region *r, chunk *c)
{
    atomic_fetch_sub_explicit(&rgi_region_bytes, c->size, memory_order_relaxed);
    if (r->poisoning)
        rgi_unpoison((char *)c + CHUNK_HDR, c->size - CHUNK_HDR);
    rgi_arena_free(c);
}

static inline bool region_ok(const rg_region *r, const char *call)
{
    if (RG_UNLIKELY(r == NULL)) {
        errno = EINVAL;
        return false;
    }
    if (RG_UNLIKELY(r->magic != REGION_ALIVE)) {
        rgi_diag(call, "region %p is %s", (const void *)r,
                 r->magic == REGION_DEAD ? "already freed" : "not a region");
        errno = EINVAL;
        return false;
    }
    return true;
}

static inline void set_cursor(rg_region *r, chunk *c, char *cur)
{
    r->cur_chunk = c;
    r->h.cur = cur;
    r->real_end = (char *)c + c->size;
    r->h.end = r->poisoning ? cur : r->real_end;
}

#if RG_DEBUG_CHECKS
/* Live regions, for the leak report (core/monitor.c). */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static rg_region *live_regions;

static void live_add(rg_region *r, const void *site)
{
    r->born = site;
    pthread_mutex_lock(&live_lock);
    r->live_prev = NULL;
    r->live_next = live_regions;
    if (live_regions)
        live_regions->live_prev = r;
    live_regions = r;
    pthread_mutex_unlock(&live_lock);
}

static void live_remove(rg_region *r)
{
    pthread_mutex_lock(&live_lock);
    if (r->live_prev) r->live_prev->live_next = r->live_next; else live_regions = r->live_next;
    if (r->live_next) r->live_next->live_prev = r->live_prev;
    pthread_mutex_unlock(&live_lock);
}
#endif

#if RG_DEBUG_CHECKS
static size_t quarantine_count(size_t *bytes);
#endif

bool rgi_region_live_foreach(void (*fn)(const void *r, size_t held, size_t nblocks, const void *site, void *arg),
                             void *arg, size_t *quarantined, size_t *quarantined_bytes)
{
    *quarantined = *quarantined_bytes = 0;
#if RG_DEBUG_CHECKS
    pthread_mutex_lock(&live_lock);
    for (rg_region *r = live_regions; r; r = r->live_next) {
        size_t n = 0;
        for (chunk *c = r->first; c; c = c->next)
            n++;
        for (large_blk *lb = r->large; lb; lb = lb->next)
            n++;
        fn(r, r->held, n, r->born, arg);
    }
    pthread_mutex_unlock(&live_lock);
    *quarantined = quarantine_count(quarantined_bytes);
    return true;
#else
    (void)fn;
    (void)arg;
    return false;
#endif
}

static rg_region *region_new_at(const rg_region_opts *o, const void *site);

rg_region *rg_region_new_opts(const rg_region_opts *o)
{
    return region_new_at(o, __builtin_return_address(0));
}

static rg_region *region_new_at(const rg_region_opts *o, const void *site)
{
    (void)site;
    size_t first = 8 << 10, maxc = 1 << 20, retain = 256 << 10;
    if (o) {
        if (o->first_chunk) first = o->first_chunk;
        if (o->max_chunk) maxc = o->max_chunk;
        if (o->retain) retain = o->retain;
    }
    if (first < 1024 || first > maxc || maxc > ((size_t)64 << 20)) {
        errno = EINVAL;
        return NULL;
    }
    first = ROUND16(first);
    chunk *c = rgi_arena_malloc(first);
    if (c == NULL)
        return NULL;
    c->next = NULL;
    c->size = first;
    rg_region *r = (rg_region *)((char *)c + CHUNK_HDR);
    memset(r, 0, sizeof *r);
    r->first = c;
    r->home = c;
    r->held = first;
    r->next_size = first * 2 > maxc ? maxc : first * 2;
    r->max_chunk = maxc;
    r->retain = retain;
    r->magic = REGION_ALIVE;
    r->poisoning = rgi_poisoning();
    set_cursor(r, c, chunk_data(r, c));
    if (r->poisoning)
        rgi_poison(r->h.cur, (size_t)(r->real_end - r->h.cur));
    atomic_fetch_add_explicit(&rgi_region_bytes, first, memory_order_relaxed);
#if RG_DEBUG_CHECKS
    live_add(r, site);
#endif
    return r;
}

rg_region *rg_region_new(void)
{
    return region_new_at(NULL, __builtin_return_address(0));
}

static void *large_alloc(rg_region *r, size_t n, size_t align)
{
    size_t extra = sizeof(large_blk) + (align > 16 ? align : 0);
    if (n > SIZE_MAX - extra) {
        errno = ENOMEM;
        return NULL;
    }
    char *base = rgi_arena_malloc(n + extra);
    if (base == NULL)
        return NULL;
    uintptr_t obj = (uintptr_t)base + sizeof(large_blk);
    if (align > 16)
        obj = (obj + align - 1) & ~(uintptr_t)(align - 1);
    large_blk *lb = (large_blk *)(obj - sizeof(large_blk));
    lb->base = base;
    lb->size = n + extra;
    lb->next = r->large;
    r->large = lb;
    r->held += lb->size;
    atomic_fetch_add_explicit(&rgi_region_bytes, lb->size, memory_order_relaxed);
    return (void *)obj;
}

/* Moves to a chunk with at least `need` bytes (16-rounded) of room. */
static bool next_chunk(rg_region *r, size_t need)
{
    chunk *c = r->cur_chunk->next;
    while (c && c->size - CHUNK_HDR < need)
        c = c->next; /* a kept chunk too small for this request: skip it this time */
    if (c == NULL) {
        size_t size = r->next_size;
        if (size < need + CHUNK_HDR)
            size = ROUND16(need + CHUNK_HDR);
        c = rgi_arena_malloc(size);
        if (c == NULL)
            return false;
        c->size = size;
        c->next = r->cur_chunk->next;
        r->cur_chunk->next = c;
        r->held += size;
        atomic_fetch_add_explicit(&rgi_region_bytes, size, memory_order_relaxed);
        if (r->next_size < r->max_chunk)
            r->next_size = r->next_size * 2 > r->max_chunk ? r->max_chunk : r->next_size * 2;
        if (r->poisoning)
            rgi_poison((char *)c + CHUNK_HDR, size - CHUNK_HDR);
    }
    set_cursor(r, c, (char *)c + CHUNK_HDR);
    return true;
}

static RGI_NOINLINE void *bump_slow(rg_region *r, size_t n, size_t align)
{
    if (n >= RG_REGION_LARGE_MIN || align > RGI_PAGE_SIZE)
        return large_alloc(r, n, align);
    size_t sz = ROUND16(n);
    for (int tries = 0; tries < 2; tries++) {
        uintptr_t p = ((uintptr_t)r->h.cur + align - 1) & ~(uintptr_t)(align - 1);
        if (p <= (uintptr_t)r->real_end && sz <= (size_t)((uintptr_t)r->real_end - p)) {
            r->h.cur = (char *)p + sz;
            if (r->poisoning) {
                r->h.end = r->h.cur;
                rgi_unpoison((void *)p, sz);
            }
            return (void *)p;
        }
        if (tries == 0 && !next_chunk(r, sz + align - 16))
            return NULL;
    }
    errno = ENOMEM; /* unreachable: next_chunk made room */
    return NULL;
}

void *rg_alloc_slow(rg_region *r, size_t n)
{
    if (!region_ok(r, "rg_alloc"))
        return NULL;
    /* The slow call a steady request loop makes: the current chunk is full
     * and the next kept chunk has room.  Hop there directly (what bump_slow
     * and next_chunk would do, in half the instructions). */
    chunk *c = r->cur_chunk->next;
    if (c && n < RG_REGION_LARGE_MIN && !r->poisoning) {
        size_t sz = ROUND16(n);
        if (sz > (size_t)(r->real_end - r->h.cur) && sz <= c->size - CHUNK_HDR) {
            char *p = (char *)c + CHUNK_HDR; /* c is never the first chunk */
            set_cursor(r, c, p + sz);
            return p;
        }
    }
    return bump_slow(r, n, 16);
}

void *rg_alloc_aligned(rg_region *r, size_t n, size_t align)
{
    if (!region_ok(r, "rg_alloc_aligned"))
        return NULL;
    if (align == 0 || (align & (align - 1)) || align > RG_REGION_MAX_ALIGN) {
        errno = EINVAL;
        return NULL;
    }
    if (align <= 16)
        return rg_alloc(r, n);
    return bump_slow(r, n, align);
}

void *rg_calloc(rg_region *r, size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = EOVERFLOW;
        return NULL;
    }
    void *p = rg_alloc(r, n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *rg_memdup(rg_region *r, const void *src, size_t n)
{
    if (src == NULL && n) {
        errno = EINVAL;
        return NULL;
    }
    void *p = rg_alloc(r, n);
    if (p && n)
        memcpy(p, src, n);
    return p;
}

char *rg_strndup(rg_region *r, const char *s, size_t n)
{
    if (s == NULL) {
        errno = EINVAL;
        return NULL;
    }
    size_t len = strnlen(s, n);
    char *p = rg_alloc(r, len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

char *rg_strdup(rg_region *r, const char *s)
{
    if (s == NULL) {
        errno = EINVAL;
        return NULL;
    }
    return rg_memdup(r, s, strlen(s) + 1);
}

/* ---------------------------------------------------------------------------
 * Cleanups and pins
 * ------------------------------------------------------------------------- */
int rg_region_on_reset(rg_region *r, void (*fn)(void *), void *arg)
{
    if (!region_ok(r, "rg_region_on_reset") || fn == NULL)
        return -EINVAL;
    cleanup *c = rg_alloc(r, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->fn = fn;
    c->arg = arg;
    c->next = r->cleanups;
    r->cleanups = c;
    return 0;
}

static void run_cleanups(rg_region *r, void *stop)
{
    while (r->cleanups && (void *)r->cleanups != stop) {
        cleanup *c = r->cleanups;
        r->cleanups = c->next; /* unlink first: a cleanup may register another */
        c->fn(c->arg);
    }
}

int rg_region_keep(rg_region *r, void *gc_obj)
{
    if (!region_ok(r, "rg_region_keep") || gc_obj == NULL)
        return -EINVAL;
    bool (*is_obj)(const void *) = __atomic_load_n(&rgi_gc_is_object, __ATOMIC_ACQUIRE);
    if (is_obj && !is_obj(gc_obj)) {
        if (RG_DEBUG_CHECKS)
            rgi_diag("rg_region_keep", "%p is not a collected-heap object", gc_obj);
        return -EINVAL;
    }
    /* The list always holds ceil(npins / PINS_PER_BLOCK) blocks, so a new
     * block is needed exactly when the count is a multiple of the block size. */
    pin_block *b = NULL;
    if (r->npins % PINS_PER_BLOCK == 0) {
        b = rg_alloc(r, sizeof *b);
        if (b == NULL)
            return -ENOMEM;
        b->next = NULL;
    }
    if (!r->registered) { /* once per region: it stays until rg_region_free */
        pthread_mutex_lock(&pins_lock);
        r->registered = 1;
        r->reg_prev = NULL;
        r->reg_next = pinned_regions;
        if (pinned_regions)
            pinned_regions->reg_prev = r;
        pinned_regions = r;
        pthread_mutex_unlock(&pins_lock);
    }
    pins_lock_region(r);
    if (b) {
        if (r->pins_tail) r->pins_tail->next = b; else r->pins = b;
        r->pins_tail = b;
    }
    r->pins_tail->obj[r->npins % PINS_PER_BLOCK] = gc_obj;
    r->npins++;
    pins_unlock_region(r);
    return 0;
}

/* Drops pins beyond `keep`; pin blocks past the needed count lie in memory
 * being released, so the list is cut there. */
static void truncate_pins(rg_region *r, size_t keep)
{
    if (r->npins == keep)
        return;
    pins_lock_region(r);
    r->npins = keep;
    size_t blocks = (keep + PINS_PER_BLOCK - 1) / PINS_PER_BLOCK;
    pin_block *b = r->pins, *last = NULL;
    for (size_t i = 0; i < blocks && b; i++) {
        last = b;
        b = b->next;
    }
    if (last) {
        last->next = NULL;
        r->pins_tail = last;
    } else {
        r->pins = r->pins_tail = NULL;
    }
    pins_unlock_region(r);
}

/* Takes a region that is being freed out of the pin registry. */
static void unregister_pins(rg_region *r)
{
    if (!r->registered)
        return;
    pthread_mutex_lock(&pins_lock);
    if (r->reg_prev) r->reg_prev->reg_next = r->reg_next; else pinned_regions = r->reg_next;
    if (r->reg_next) r->reg_next->reg_prev = r->reg_prev;
    r->registered = 0;
    pthread_mutex_unlock(&pins_lock);
}

void rgi_region_pins_foreach(void (*fn)(void *obj, void *arg), void *arg)
{
    pthread_mutex_lock(&pins_lock);
    for (rg_region *r = pinned_regions; r; r = r->reg_next) {
        pins_lock_region(r);
        size_t left = r->npins;
        for (pin_block *b = r->pins; b && left; b = b->next) {
            size_t n = left < PINS_PER_BLOCK ? left : PINS_PER_BLOCK;
            for (size_t i = 0; i < n; i++)
                fn(b->obj[i], arg);
            left -= n;
        }
        pins_unlock_region(r);
    }
    pthread_mutex_unlock(&pins_lock);
}

/* ---------------------------------------------------------------------------
 * Mark, release, reset, free
 * ------------------------------------------------------------------------- */
rg_mark rg_region_mark(rg_region *r)
{
    rg_mark m = {0};
    if (!region_ok(r, "rg_region_mark"))
        return m;
    m.chunk = r->cur_chunk;
    m.cur = r->h.cur;
    m.large = r->large;
    m.cleanups = r->cleanups;
    m.npins = r->npins;
    return m;
}

static void free_large_until(rg_region *r, void *stop)
{
    while (r->large && (void *)r->large != stop) {
        large_blk *lb = r->large;
        r->large = lb->next;
        r->held -= lb->size;
        atomic_fetch_sub_explicit(&rgi_region_bytes, lb->size, memory_order_relaxed);
        rgi_arena_free(lb->base);
    }
}

void rg_region_release(rg_region *r, rg_mark m)
{
    if (!region_ok(r, "rg_region_release"))
        return;
    /* The mark must name a chunk of this region at or before the current one,
     * and a cursor inside it. */
    chunk *c = r->first;
    while (c && c != (chunk *)m.chunk && c != r->cur_chunk)
        c = c->next;
    if (c == NULL || c != (chunk *)m.chunk || m.cur < chunk_data(r, c) || m.cur > (char *)c + c->size ||
        (c == r->cur_chunk && m.cur > r->h.cur) || m.npins > r->npins) {
        rgi_diag("rg_region_release", "mark does not belong to region %p (or was already released past)",
                 (void *)r);
        errno = EINVAL;
        return;
    }
    run_cleanups(r, m.cleanups);
    free_large_until(r, m.large);
    truncate_pins(r, m.npins);
    if (r->poisoning) {
        for (chunk *k = c; k; k = k->next) {
            char *from = k == c ? m.cur : (char *)k + CHUNK_HDR;
            rgi_poison(from, (size_t)((char *)k + k->size - from));
            if (k == r->cur_chunk)
                break;
        }
    }
    set_cursor(r, c, m.cur);
}

/* Frees every chunk after `after`. */
static void release_chunks_after(rg_region *r, chunk *after)
{
    chunk *c = after->next;
    after->next = NULL;
    while (c) {
        chunk *next = c->next;
        r->held -= c->size;
        chunk_release(r, c);
        c = next;
    }
}

/* The cycle that just ended spilled past its home chunk.  The region learns
 * the request's size: the chunks after the first are merged into one chunk
 * (at most `retain` bytes with the first), and the next cycle starts there,
 * so a steady request loop bumps through one chunk with no hop at all.  When
 * the merged chunk could not grow (the retain cap), the chunks are kept as a
 * chain within the cap instead, so a request larger than the cap does not
 * reallocate on every reset. */
static void rehome(rg_region *r)
{
    size_t spill = 0;
    for (chunk *c = r->first->next; c; c = c->next)
        spill += c->size;
    size_t cap = r->retain > r->first->size ? r->retain - r->first->size : 0;
    size_t want = spill < cap ? spill : cap;
    want &= ~(size_t)4095; /* whole pages: the arena rounds up anyway */
    size_t have = r->home == r->first ? 0 : r->home->size;
    if (want > have && want >= CHUNK_HDR + 4096) {
        chunk *m = rgi_arena_malloc(want);
        if (m != NULL) {
            release_chunks_after(r, r->first);
            m->size = want;
            m->next = NULL;
            r->first->next = m;
            r->home = m;
            r->held += want;
            atomic_fetch_add_explicit(&rgi_region_bytes, want, memory_order_relaxed);
            if (r->poisoning)
                rgi_poison((char *)m + CHUNK_HDR, want - CHUNK_HDR);
            return;
        }
    }
    /* Keep chunks in order while the total stays under `retain`. */
    size_t kept = r->first->size;
    chunk *prev = r->first, *c = r->first->next;
    while (c) {
        chunk *next = c->next;
        if (kept + c->size <= r->retain) {
            kept += c->size;
            prev = c;
        } else {
            prev->next = next;
            if (c == r->home)
                r->home = r->first;
            r->held -= c->size;
            chunk_release(r, c);
        }
        c = next;
    }
}

void rg_region_reset(rg_region *r)
{
    if (!region_ok(r, "rg_region_reset"))
        return;
    run_cleanups(r, NULL);
    free_large_until(r, NULL);
    if (r->npins) /* the common request pins nothing: no call */
        truncate_pins(r, 0);
    if (r->home->next)
        rehome(r);
    if (r->poisoning) {
        for (chunk *k = r->first; k; k = k->next) {
            char *from = chunk_data(r, k);
            rgi_poison(from, (size_t)((char *)k + k->size - from));
        }
    }
    set_cursor(r, r->home, chunk_data(r, r->home));
}

#if RG_DEBUG_CHECKS
/* Debug builds keep the last freed regions' first chunks in quarantine, so a
 * second free (or any call) on them is reported, not silently accepted. */
#define QUARANTINE 64
static pthread_mutex_t quarantine_lock = PTHREAD_MUTEX_INITIALIZER;
static chunk *quarantine[QUARANTINE];
static unsigned quarantine_pos;

/* First chunks held in quarantine (arena objects the leak report skips). */
static size_t quarantine_count(size_t *bytes)
{
    size_t n = 0;
    *bytes = 0;
    pthread_mutex_lock(&quarantine_lock);
    for (unsigned i = 0; i < QUARANTINE; i++)
        if (quarantine[i]) {
            n++;
            *bytes += quarantine[i]->size;
        }
    pthread_mutex_unlock(&quarantine_lock);
    return n;
}
#endif

void rg_region_free(rg_region *r)
{
    if (r == NULL)
        return;
    if (!region_ok(r, "rg_region_free"))
        return;
    run_cleanups(r, NULL);
    free_large_until(r, NULL);
    truncate_pins(r, 0);
    unregister_pins(r); /* before its memory goes: the registry links live in it */
    chunk *c = r->first->next;
    while (c) {
        chunk *next = c->next;
        chunk_release(r, c);
        c = next;
    }
    chunk *first = r->first;
    atomic_fetch_sub_explicit(&rgi_region_bytes, first->size, memory_order_relaxed);
    if (r->poisoning) {
        char *from = chunk_data(r, first);
        rgi_unpoison(from, (size_t)((char *)first + first->size - from));
    }
    r->magic = REGION_DEAD;
#if RG_DEBUG_CHECKS
    live_remove(r);
    pthread_mutex_lock(&quarantine_lock);
    chunk *old = quarantine[quarantine_pos];
    quarantine[quarantine_pos] = first;
    quarantine_pos = (quarantine_pos + 1) % QUARANTINE;
    pthread_mutex_unlock(&quarantine_lock);
    if (old)
        rgi_arena_free(old);
#else
    rgi_arena_free(first);
#endif
}

size_t rg_region_size(const rg_region *r)
{
    if (r == NULL || r->magic != REGION_ALIVE)
        return 0;
    return r->held;
}

size_t rg_region_used(const rg_region *r)
{
    if (r == NULL || r->magic != REGION_ALIVE)
        return 0;
    size_t used = 0;
    for (chunk *c = r->home; c; c = c->next) {
        if (c == r->cur_chunk) {
            used += (size_t)(r->h.cur - chunk_data(r, c));
            break;
        }
        used += (size_t)((char *)c + c->size - chunk_data(r, c));
    }
    for (large_blk *lb = r->large; lb; lb = lb->next)
        used += lb->size;
    return used;
}
