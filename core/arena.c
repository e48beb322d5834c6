/* core/arena.c — per-thread arenas: size-class spans, page runs, large runs,
 * and the cross-thread free inbox.
 *
 * Algorithm.  Each thread owns an arena (TLS).  An arena owns 2 MiB segments
 * cut into 32 pages of 64 KiB; a span is a run of pages holding blocks of one
 * size class (40 classes, 16 B .. 32 KiB, four per doubling as in mimalloc),
 * one medium object (<= 960 KiB), or another allocator's data (the
 * collector's spans).  Allocation pops the class's current span's free list;
 * an empty list is refilled by carving never-used blocks lazily (so fresh
 * pages are touched only when handed out).  Objects above 960 KiB get a run
 * of segments from the page layer.
 *
 * Cross-thread frees push the block on the owner arena's inbox, a Treiber
 * stack that is only pushed by others and taken whole (exchange with NULL) by
 * the owner, so there is no ABA.  The owner drains it on its slow path.
 *
 * Thread exit orphans the arena (owned = 0); the next thread without an arena
 * adopts it whole, and a thread that needs a fresh segment first reaps
 * orphans: it drains their inboxes and gives their empty spans and segments
 * back to the page layer, so an orphan's memory is never stranded.
 *
 * Guarantee: no lock on the malloc or local free fast path; a remote free is
 * one CAS.  Every byte comes from the page layer and is counted there.
 */
#include "internal.h"

#include <sys/mman.h>
#include <unistd.h>

/* Arena.  Invariant (owner): for every class c, every span in avail[c] has
 * in_list == 1 and kind SMALL; a span with free blocks or bump space is in
 * its class list, except transiently inside the slow path. */
struct rgi_arena {
    rgi_span *avail[RGI_NCLASSES];
    _Atomic(void *) inbox;      /* remote frees; pushed by others, taken by the owner */
    rgi_segment *segs;          /* segments owned, doubly linked */
    size_t nsegs;
    atomic_int owned;           /* 1 while a live thread owns it */
    struct rgi_arena *next_all; /* global list, append only */
    /* statistics: written by the owner only, read by anyone (relaxed) */
    atomic_uint_fast64_t mallocs, frees, bytes_alloc, bytes_freed, drained;
    int64_t prof_left;          /* heap-profile countdown in bytes (owner only; core/profile.c) */
    bool detached;              /* no thread owns it, ever (rgi_arena_new_detached): never orphaned */
};

static pthread_mutex_t arenas_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(rgi_arena *) arenas;  /* head of the global list */
static atomic_size_t narenas, nabandoned;
static rgi_arena *arena_free_slots;  /* carved but never used, under arenas_lock */
static size_t arena_free_nslots;

static __thread rgi_arena *tls_arena;
static pthread_key_t arena_key;
static pthread_once_t arena_key_once = PTHREAD_ONCE_INIT;

/* Owner-only counter bump: a plain add, atomic only so readers are race-free. */
#define OWNER_ADD(ctr, v) atomic_store_explicit(&(ctr), atomic_load_explicit(&(ctr), memory_order_relaxed) + (v), memory_order_relaxed)

/* ---------------------------------------------------------------------------
 * Size classes: 16..128 step 16, then four classes per doubling to 32 KiB.
 * ------------------------------------------------------------------------- */
unsigned rgi_size_class(size_t n)
{
    return rgi_size_class_inl(n);
}

size_t rgi_class_size(unsigned c)
{
    if (c < 8)
        return (size_t)(c + 1) * 16;
    unsigned k = c - 8, b = 7 + k / 4;
    return ((size_t)1 << b) + (size_t)(k % 4 + 1) * ((size_t)1 << (b - 2));
}

static inline unsigned class_pages(unsigned c)
{
    return rgi_class_size(c) > 8192 ? 4 : 1;
}

/* ---------------------------------------------------------------------------
 * Pages inside segments
 * ------------------------------------------------------------------------- */
#define ALL_PAGES 0xffffffffu

static inline char *page_addr(rgi_segment *s, unsigned page)
{
    return (char *)s + ((size_t)page << RGI_PAGE_SHIFT) + (page == 0 ? RGI_SEG_HDR : 0);
}

static void segment_init(rgi_segment *s, rgi_arena *a, bool fresh, int backing_unused)
{
    (void)backing_unused;
    if (!fresh)
        memset(s, 0, offsetof(rgi_segment, spans));
    s->magic = RGI_SEG_MAGIC ^ (uintptr_t)s;
    s->kind = RGI_SEG_ARENA;
    s->committed = RGI_SEG_SIZE;
    s->nsegs = 1;
    s->arena = a;
    s->free_pages = ALL_PAGES;
    s->used_pages = 0;
    s->next = a->segs;
    s->prev = NULL;
    if (a->segs)
        a->segs->prev = s;
    a->segs = s;
    a->nsegs++;
}

static void segment_unlink(rgi_arena *a, rgi_segment *s)
{
    if (s->prev) s->prev->next = s->next; else a->segs = s->next;
    if (s->next) s->next->prev = s->prev;
    a->nsegs--;
}

/* First run of n free pages in s, or -1. */
static int find_pages(const rgi_segment *s, unsigned n)
{
    uint32_t m = s->free_pages;
    for (unsigned k = 1; k < n && m; k++)
        m &= s->free_pages >> k;
    if (n > 1)
        m &= ALL_PAGES >> (n - 1); /* the run must end inside the segment */
    return m ? __builtin_ctz(m) : -1;
}

static void reap_orphans(rgi_arena *self);

/* npages pages from a's segments (or a new one).  NULL + errno. */
static rgi_span *pages_alloc(rgi_arena *a, unsigned npages, unsigned kind)
{
    rgi_segment *s;
    int page = -1;
    for (s = a->segs; s; s = s->next)
        if (s->free_pages && (page = find_pages(s, npages)) >= 0)
            break;
    if (s == NULL) {
        reap_orphans(a);
        bool fresh;
        s = rgi_segment_alloc(&fresh);
        if (s == NULL)
            return NULL;
        segment_init(s, a, fresh, 0);
        page = 0;
    }
    uint32_t bits = (npages == 32 ? ALL_PAGES : ((1u << npages) - 1)) << page;
    s->free_pages &= ~bits;
    s->used_pages += npages;
    for (unsigned i = 0; i < npages; i++)
        s->page_span[page + (int)i] = (uint8_t)page;
    rgi_span *sp = &s->spans[page];
    memset(sp, 0, sizeof *sp);
    sp->kind = (uint8_t)kind;
    sp->page = (uint8_t)page;
    sp->npages = (uint8_t)npages;
    sp->start = page_addr(s, (unsigned)page);
    sp->end = (char *)s + ((size_t)(page + (int)npages) << RGI_PAGE_SHIFT);
    return sp;
}

static void pages_free(rgi_arena *a, rgi_span *sp)
{
    rgi_segment *s = rgi_segment_of(sp);
    uint32_t bits = (sp->npages == 32 ? ALL_PAGES : ((1u << sp->npages) - 1)) << sp->page;
    RG_ASSERT((s->free_pages & bits) == 0);
    s->free_pages |= bits;
    s->used_pages -= sp->npages;
    sp->kind = RGI_SPAN_FREE;
    /* An empty segment goes back to the page layer, unless it is the arena's
     * last one: keeping one avoids a segment round trip per request. */
    if (s->free_pages == ALL_PAGES && a->nsegs > 1) {
        segment_unlink(a, s);
        s->magic = 0;
        rgi_segment_free(s);
    }
}

/* ---------------------------------------------------------------------------
 * Class lists
 * ------------------------------------------------------------------------- */
static inline void list_push(rgi_arena *a, rgi_span *sp)
{
    sp->prev = NULL;
    sp->next = a->avail[sp->sclass];
    if (sp->next)
        sp->next->prev = sp;
    a->avail[sp->sclass] = sp;
    sp->in_list = 1;
}

static inline void list_remove(rgi_arena *a, rgi_span *sp)
{
    if (sp->prev) sp->prev->next = sp->next; else a->avail[sp->sclass] = sp->next;
    if (sp->next) sp->next->prev = sp->prev;
    sp->next = sp->prev = NULL;
    sp->in_list = 0;
}

/* Local free of a block into its small span (owner only). */
static inline void small_free_local(rgi_arena *a, rgi_span *sp, void *b)
{
    *(void **)b = sp->free;
    sp->free = b;
    sp->nfree++;
    sp->used--;
    if (!sp->in_list)
        list_push(a, sp);
    else if (sp->used == 0 && a->avail[sp->sclass] != sp) {
        /* empty and not the class's current span: its pages go back */
        list_remove(a, sp);
        pages_free(a, sp);
    }
}

/* Bytes a block occupies, for the statistics. */
static inline size_t block_bytes(const rgi_span *sp)
{
    return sp->kind == RGI_SPAN_SMALL ? sp->block_size : (size_t)(sp->end - sp->start);
}

/* Frees p into its span (owner only).  Statistics are counted by whoever
 * called rg_free (see count_free), not here, so that mallocs - frees is
 * exact even while blocks wait in an inbox. */
static inline __attribute__((always_inline)) void free_local(rgi_arena *a, rgi_segment *s, void *p)
{
    rgi_span *sp = rgi_span_of(s, p);
    switch (sp->kind) {
    case RGI_SPAN_SMALL:
        small_free_local(a, sp, p);
        break;
    case RGI_SPAN_MEDIUM:
    case RGI_SPAN_USER:
        pages_free(a, sp);
        break;
    default:
        rgi_corrupt("arena: free of %p in a free span (double free?)", p);
    }
}

/* Frees by threads that have no arena (e.g. in late TLS destructors). */
static atomic_uint_fast64_t stray_frees, stray_bytes;

static inline void count_free(size_t bytes)
{
    rgi_arena *me = tls_arena;
    if (RG_LIKELY(me != NULL)) {
        OWNER_ADD(me->frees, 1);
        OWNER_ADD(me->bytes_freed, bytes);
    } else {
        atomic_fetch_add_explicit(&stray_frees, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&stray_bytes, bytes, memory_order_relaxed);
    }
}

/* Takes the whole inbox and frees each block locally. */
static void drain_inbox(rgi_arena *a)
{
    if (atomic_load_explicit(&a->inbox, memory_order_relaxed) == NULL)
        return;
    /* acquire: pairs with the release CAS in free_remote, so the pushers'
     * writes of the link words (and of the blocks) are visible */
    void *b = atomic_exchange_explicit(&a->inbox, NULL, memory_order_acquire);
    uint64_t n = 0;
    while (b) {
        void *next = *(void **)b;
        rgi_segment *s = rgi_segment_of(b);
        if (RG_UNLIKELY(!rgi_segment_check(s) || s->arena != a))
            rgi_corrupt("arena: inbox block %p has a bad segment header", b);
        free_local(a, s, b);
        b = next;
        n++;
    }
    OWNER_ADD(a->drained, n);
}

static void free_remote(rgi_arena *owner, void *p)
{
    void *head = atomic_load_explicit(&owner->inbox, memory_order_relaxed);
    do {
        *(void **)p = head;
        /* release: publishes the link word; pairs with the owner's acquire exchange */
    } while (!atomic_compare_exchange_weak_explicit(&owner->inbox, &head, p,
                                                    memory_order_release, memory_order_relaxed));
}

/* ---------------------------------------------------------------------------
 * Arena lifecycle: creation, orphaning at thread exit, adoption, reaping.
 * ------------------------------------------------------------------------- */
static void arena_thread_exit(void *arg)
{
    rgi_arena *a = arg;
    if (a == NULL)
        return;
    drain_inbox(a);
    RG_ASSERT(rgi_arena_is_valid(a));
    tls_arena = NULL;
    atomic_fetch_add(&nabandoned, 1);
    /* release: the next owner (acquire CAS in arena_adopt) sees our writes */
    atomic_store_explicit(&a->owned, 0, memory_order_release);
}

static void make_key(void)
{
    pthread_key_create(&arena_key, arena_thread_exit);
}

static rgi_arena *arena_adopt(void)
{
    if (atomic_load(&nabandoned) == 0)
        return NULL;
    for (rgi_arena *a = atomic_load_explicit(&arenas, memory_order_acquire); a; a = a->next_all) {
        int zero = 0;
        if (atomic_load_explicit(&a->owned, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(&a->owned, &zero, 1, memory_order_acquire, memory_order_relaxed)) {
            atomic_fetch_sub(&nabandoned, 1);
            return a;
        }
    }
    return NULL;
}

static rgi_arena *arena_create(void)
{
    pthread_mutex_lock(&arenas_lock);
    if (arena_free_nslots == 0) {
        /* Arena structs come 64 at a time from their own mapping, counted
         * against the limit as metadata. */
        size_t bytes = 64 * sizeof(rgi_arena);
        bytes = (bytes + RGI_OS_PAGE - 1) & ~(RGI_OS_PAGE - 1);
        if (rgi_page_charge(bytes) != 0) {
            pthread_mutex_unlock(&arenas_lock);
            errno = ENOMEM;
            return NULL;
        }
        void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            rgi_page_uncharge(bytes);
            pthread_mutex_unlock(&arenas_lock);
            errno = ENOMEM;
            return NULL;
        }
        arena_free_slots = m;
        arena_free_nslots = bytes / sizeof(rgi_arena);
    }
    rgi_arena *a = arena_free_slots++;
    arena_free_nslots--;
    atomic_init(&a->owned, 1);
    a->next_all = atomic_load_explicit(&arenas, memory_order_relaxed);
    /* release: readers walking the list (acquire) see an initialized arena */
    atomic_store_explicit(&arenas, a, memory_order_release);
    atomic_fetch_add(&narenas, 1);
    pthread_mutex_unlock(&arenas_lock);
    return a;
}

RGI_NOINLINE rgi_arena *rgi_arena_get(void)
{
    rgi_arena *a = tls_arena;
    if (RG_LIKELY(a != NULL))
        return a;
    if (rgi_ensure_init() != 0) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_once(&arena_key_once, make_key);
    a = arena_adopt();
    if (a == NULL && (a = arena_create()) == NULL)
        return NULL;
    tls_arena = a;
    pthread_setspecific(arena_key, a);
    a->prof_left = rgi_prof_next();
    return a;
}

/* Gives an orphan's reclaimable memory back: drains its inbox, frees empty
 * spans and segments.  Runs with the orphan temporarily owned. */
static void reap_one(rgi_arena *o)
{
    drain_inbox(o);
    for (unsigned c = 0; c < RGI_NCLASSES; c++) {
        rgi_span *sp = o->avail[c], *next;
        for (; sp; sp = next) {
            next = sp->next;
            if (sp->used == 0) {
                list_remove(o, sp);
                pages_free(o, sp);
            }
        }
    }
    rgi_segment *s = o->segs, *next;
    for (; s; s = next) {
        next = s->next;
        if (s->free_pages == ALL_PAGES) {
            segment_unlink(o, s);
            s->magic = 0;
            rgi_segment_free(s);
        }
    }
}

static void reap_orphans(rgi_arena *self)
{
    if (atomic_load_explicit(&nabandoned, memory_order_relaxed) == 0)
        return;
    for (rgi_arena *o = atomic_load_explicit(&arenas, memory_order_acquire); o; o = o->next_all) {
        int zero = 0;
        if (o == self || atomic_load_explicit(&o->owned, memory_order_relaxed) != 0)
            continue;
        if (!atomic_compare_exchange_strong_explicit(&o->owned, &zero, 1, memory_order_acquire, memory_order_relaxed))
            continue;
        reap_one(o);
        atomic_store_explicit(&o->owned, 0, memory_order_release);
    }
}

/* ---------------------------------------------------------------------------
 * Allocation
 * ------------------------------------------------------------------------- */
/* The heap-profile countdown ran out (core/profile.c): record p and count
 * it in the span or run holding it, so that frees there look in the side
 * table while it lives.  Only the owner increments a span's count; any
 * freeing thread decrements it (relaxed atomics: a free reads the count of
 * its own object's span, set before the object was handed out). */
static RGI_NOINLINE void *prof_hit(rgi_arena *a, void *p, size_t n)
{
    a->prof_left = rgi_prof_next();
    if (rgi_prof_rate() == 0)
        return p;
    if (rgi_page_kind(p) == RGI_SEG_LARGE) {
        rgi_segment *h = rgi_page_run_head(p);
        if (h)
            __atomic_store_n(&h->sampled, 1, __ATOMIC_RELAXED);
    } else {
        uint16_t *c = &rgi_span_of(rgi_segment_of(p), p)->sampled;
        if (__atomic_load_n(c, __ATOMIC_RELAXED) != UINT16_MAX) /* saturated: stays on */
            __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
    }
    rgi_prof_record(p, n);
    return p;
}

/* A free in a span that holds samples: drop p from the side table if it is
 * one.  Runs before the block can be reused. */
static RGI_NOINLINE void prof_free(rgi_span *sp, void *p)
{
    if (rgi_prof_forget(p) && __atomic_load_n(&sp->sampled, __ATOMIC_RELAXED) != UINT16_MAX)
        __atomic_fetch_sub(&sp->sampled, 1, __ATOMIC_RELAXED);
}

/* Budget on the fast path: one subtract, one predictable branch. */
#define PROF_TICK(a, p, n) \
    do { if (RG_UNLIKELY(((a)->prof_left -= (int64_t)(n)) < 0)) return prof_hit((a), (p), (n)); } while (0)

/* Carves up to 64 never-used blocks (at most 4 KiB of fresh memory unless a
 * block is larger) into the free list. */
static void carve(rgi_span *sp)
{
    size_t bs = sp->block_size;
    size_t room = (size_t)(sp->end - sp->bump) / bs;
    size_t n = 4096 / bs;
    if (n == 0) n = 1;
    if (n > 64) n = 64;
    if (n > room) n = room;
    char *b = sp->bump;
    void *head = sp->free;
    for (size_t i = n; i-- > 0;) {
        char *blk = b + i * bs;
        *(void **)blk = head;
        head = blk;
    }
    sp->free = head;
    sp->bump = b + n * bs;
    sp->nfree += (uint32_t)n;
}

static RGI_NOINLINE void *small_slow(rgi_arena *a, unsigned c)
{
    drain_inbox(a);
#if RG_DEBUG_CHECKS
    static __thread unsigned refills;
    if ((++refills & 255) == 0 && !rgi_arena_is_valid(a))
        rgi_corrupt("arena %p: counting invariants broken", (void *)a);
#endif
    rgi_span *sp = a->avail[c];
    while (sp) {
        if (sp->free == NULL && sp->bump < sp->end && (size_t)(sp->end - sp->bump) >= sp->block_size)
            carve(sp);
        if (sp->free)
            break;
        rgi_span *next = sp->next;
        list_remove(a, sp); /* full: rejoins its list when a block comes back */
        sp = next;
    }
    if (sp == NULL) {
        sp = pages_alloc(a, class_pages(c), RGI_SPAN_SMALL);
        if (sp == NULL)
            return NULL;
        sp->sclass = (uint8_t)c;
        sp->block_size = (uint32_t)rgi_class_size(c);
        sp->bump = sp->start;
        sp->capacity = (uint32_t)((size_t)(sp->end - sp->start) / sp->block_size);
        list_push(a, sp);
        carve(sp);
    } else if (sp != a->avail[c]) {
        list_remove(a, sp);
        list_push(a, sp);
    }
    void *b = sp->free;
    sp->free = *(void **)b;
    sp->nfree--;
    sp->used++;
    OWNER_ADD(a->mallocs, 1);
    OWNER_ADD(a->bytes_alloc, sp->block_size);
    PROF_TICK(a, b, sp->block_size);
    return b;
}

static void *large_alloc(size_t n, size_t align)
{
    size_t off = align > RGI_SEG_HDR ? align : RGI_SEG_HDR;
    if (n > SIZE_MAX - off) {
        errno = ENOMEM;
        return NULL;
    }
    size_t committed;
    rgi_segment *s = rgi_run_alloc(n + off, &committed);
    if (s == NULL)
        return NULL;
    s->magic = RGI_SEG_MAGIC ^ (uintptr_t)s;
    s->kind = RGI_SEG_LARGE;
    s->committed = committed;
    s->nsegs = (committed + RGI_SEG_MASK) >> RGI_SEG_SHIFT;
    s->obj_size = n;
    s->arena = NULL;
    s->sampled = 0;
    rgi_arena *a = tls_arena;
    if (a) {
        OWNER_ADD(a->mallocs, 1);
        OWNER_ADD(a->bytes_alloc, n);
        PROF_TICK(a, (char *)s + off, n);
    }
    return (char *)s + off;
}

static void *medium_alloc(rgi_arena *a, size_t n)
{
    drain_inbox(a);
    unsigned npages = (unsigned)((n + RGI_PAGE_SIZE - 1) >> RGI_PAGE_SHIFT);
    rgi_span *sp = pages_alloc(a, npages, RGI_SPAN_MEDIUM);
    if (sp == NULL)
        return NULL;
    if ((size_t)(sp->end - sp->start) < n) {
        /* page 0 is short by the header: take one more page instead */
        pages_free(a, sp);
        if ((sp = pages_alloc(a, npages + 1, RGI_SPAN_MEDIUM)) == NULL)
            return NULL;
    }
    sp->capacity = 1;
    sp->used = 1;
    sp->block_size = (uint32_t)(sp->end - sp->start);
    OWNER_ADD(a->mallocs, 1);
    OWNER_ADD(a->bytes_alloc, sp->block_size);
    PROF_TICK(a, sp->start, sp->block_size);
    return sp->start;
}

static RGI_NOINLINE void *malloc_slow(size_t n)
{
    rgi_arena *a = rgi_arena_get();
    if (a == NULL)
        return NULL;
    if (n <= RGI_SMALL_MAX) {
        unsigned c = rgi_size_class(n);
        rgi_span *sp = a->avail[c];
        if (sp && sp->free) {
            void *b = sp->free;
            sp->free = *(void **)b;
            sp->nfree--;
            sp->used++;
            OWNER_ADD(a->mallocs, 1);
            OWNER_ADD(a->bytes_alloc, sp->block_size);
            PROF_TICK(a, b, sp->block_size);
            return b;
        }
        return small_slow(a, c);
    }
    if (n <= RGI_MEDIUM_MAX)
        return medium_alloc(a, n);
    return large_alloc(n, 0);
}

void *rgi_arena_malloc(size_t n)
{
    rgi_arena *a = tls_arena;
    if (RG_LIKELY(a != NULL && n <= RGI_SMALL_MAX)) {
        unsigned c = rgi_size_class(n);
        rgi_span *sp = a->avail[c];
        void *b;
        if (RG_LIKELY(sp != NULL && (b = sp->free) != NULL)) {
            sp->free = *(void **)b;
            sp->nfree--;
            sp->used++;
            OWNER_ADD(a->mallocs, 1);
            OWNER_ADD(a->bytes_alloc, sp->block_size);
            PROF_TICK(a, b, sp->block_size);
            return b;
        }
        return small_slow(a, c);
    }
    return malloc_slow(n);
}

/* Segment header of p, or NULL when p is not regio's (diagnosed in debug). */
static rgi_segment *owner_segment(const void *p, const char *call)
{
    rgi_segment *s = rgi_segment_of(p);
#if RG_DEBUG_CHECKS
    if (!rgi_page_owns(p)) {
        rgi_diag(call, "%p was not allocated by regio (foreign pointer)", p);
        return NULL;
    }
#endif
    if (RG_LIKELY(rgi_page_kind(p) == RGI_SEG_ARENA && rgi_segment_check(s)))
        return s;
    if (rgi_page_kind(p) == RGI_SEG_LARGE) {
        s = rgi_page_run_head(p);
        if (s && rgi_segment_check(s))
            return s;
        rgi_corrupt("%s: run header of %p is damaged", call, p);
    }
    if (rgi_page_kind(p) == RGI_SEG_ARENA)
        rgi_corrupt("%s: segment header of %p is damaged", call, p);
    if (RG_DEBUG_CHECKS)
        rgi_diag(call, "%p was not allocated by regio (foreign pointer)", p);
    return NULL;
}

/* The rest of a free in a span that holds samples (counted already). */
static RGI_NOINLINE void free_sampled(rgi_segment *s, rgi_span *sp, void *p)
{
    prof_free(sp, p);
    rgi_arena *a = tls_arena;
    if (s->arena == a)
        free_local(a, s, p);
    else
        free_remote(s->arena, p);
}

void rgi_arena_free(void *p)
{
    if (p == NULL)
        return;
    rgi_segment *s = owner_segment(p, "rg_free");
    if (RG_UNLIKELY(s == NULL)) {
        errno = EINVAL;
        return;
    }
    if (s->kind == RGI_SEG_LARGE) {
        if (RG_UNLIKELY(s->sampled))
            rgi_prof_forget(p);
        count_free(s->obj_size);
        s->magic = 0;
        rgi_run_free(s, s->committed);
        return;
    }
    rgi_arena *a = tls_arena;
    rgi_span *sp = rgi_span_of(s, p);
    count_free(block_bytes(sp));
    /* one predictable branch for frees in spans without samples (prof_hit);
     * the sampled case is a tail call, so the hot path keeps no frame */
    if (RG_UNLIKELY(__atomic_load_n(&sp->sampled, __ATOMIC_RELAXED))) {
        free_sampled(s, sp, p);
        return;
    }
    if (RG_LIKELY(s->arena == a))
        free_local(a, s, p);
    else
        free_remote(s->arena, p);
}

size_t rgi_arena_usable(const void *p)
{
    if (p == NULL || !rgi_page_owns(p))
        return 0;
    rgi_segment *s = rgi_segment_of(p);
    if (rgi_page_kind(p) == RGI_SEG_LARGE) {
        s = rgi_page_run_head(p);
        if (s == NULL)
            return 0;
        return s->committed - (size_t)((const char *)p - (const char *)s);
    }
    rgi_span *sp = rgi_span_of(s, p);
    if (sp->kind == RGI_SPAN_SMALL)
        return sp->block_size;
    return (size_t)(sp->end - (const char *)p);
}

rgi_span *rgi_arena_span_alloc(size_t npages)
{
    if (npages == 0 || npages > RGI_PAGES_PER_SEG - 1) {
        errno = EINVAL;
        return NULL;
    }
    rgi_arena *a = rgi_arena_get();
    if (a == NULL)
        return NULL;
    drain_inbox(a);
    return pages_alloc(a, (unsigned)npages, RGI_SPAN_USER);
}

void rgi_arena_span_free(rgi_span *sp)
{
    rgi_segment *s = rgi_segment_of(sp);
    if (s->arena == tls_arena)
        pages_free(s->arena, sp);
    else
        free_remote(s->arena, sp->start); /* drain finds the span from its start */
}

/* Detached arenas (the collector's shared page heap): no thread owns one,
 * so it is never adopted or reaped; its caller serializes every call on it.
 * Pages freed into it are reusable by every thread at once, which per-thread
 * arenas cannot offer (their free pages wait for the owner). */
rgi_arena *rgi_arena_new_detached(void)
{
    if (rgi_ensure_init() != 0) {
        errno = ENOMEM;
        return NULL;
    }
    rgi_arena *a = arena_create(); /* owned stays 1: never adopted, never reaped */
    if (a != NULL)
        a->detached = true;
    return a;
}

rgi_span *rgi_arena_span_take(rgi_arena *a, size_t npages)
{
    if (npages == 0 || npages > RGI_PAGES_PER_SEG - 1) {
        errno = EINVAL;
        return NULL;
    }
    for (rgi_segment *s = a->segs; s; s = s->next)
        if (s->free_pages && find_pages(s, (unsigned)npages) >= 0)
            return pages_alloc(a, (unsigned)npages, RGI_SPAN_USER); /* finds the same run */
    errno = EAGAIN;
    return NULL;
}

void rgi_arena_segment_add(rgi_arena *a, void *seg, bool fresh)
{
    segment_init(seg, a, fresh, 0);
}

size_t rgi_arena_span_put(rgi_arena *a, rgi_span *sp)
{
    RG_ASSERT(rgi_segment_of(sp)->arena == a);
    size_t before = a->nsegs;
    pages_free(a, sp);
    return (before - a->nsegs) * RGI_SEG_SIZE;
}

size_t rgi_arena_trim(rgi_arena *a)
{
    size_t n = 0;
    for (rgi_segment *s = a->segs, *next; s; s = next) {
        next = s->next;
        if (s->free_pages == ALL_PAGES) {
            segment_unlink(a, s);
            s->magic = 0;
            rgi_segment_free(s);
            n += RGI_SEG_SIZE;
        }
    }
    return n;
}

/* ---------------------------------------------------------------------------
 * Public general-purpose API
 * ------------------------------------------------------------------------- */
void *rg_malloc(size_t n)
{
    return rgi_arena_malloc(n);
}

void *rg_malloc_zeroed(size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = EOVERFLOW;
        return NULL;
    }
    void *p = rgi_arena_malloc(n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *rg_malloc_aligned(size_t n, size_t align)
{
    if (align == 0 || (align & (align - 1)) || align > RG_REGION_MAX_ALIGN) {
        errno = EINVAL;
        return NULL;
    }
    if (align <= 16)
        return rgi_arena_malloc(n);
    if (align <= RGI_OS_PAGE) {
        /* A class whose size is a multiple of align: its blocks are aligned,
         * because spans start on 4 KiB boundaries. */
        if (n > RGI_SMALL_MAX - align) {
            if (rgi_arena_get() == NULL)
                return NULL;
            if (n <= RGI_MEDIUM_MAX - RGI_SEG_HDR) /* medium spans start page-aligned */
                return medium_alloc(tls_arena, n);
            return large_alloc(n, 0);
        }
        size_t want = (n + align - 1) & ~(align - 1);
        unsigned c = rgi_size_class(want);
        while (rgi_class_size(c) % align)
            c++;
        return rgi_arena_malloc(rgi_class_size(c));
    }
    if (rgi_arena_get() == NULL)
        return NULL;
    return large_alloc(n, align);
}

void rg_free(void *p)
{
    rgi_arena_free(p);
}

size_t rg_usable_size(const void *p)
{
    return rgi_arena_usable(p);
}

int rg_owns(const void *p)
{
    return rgi_page_owns(p);
}

void *rg_realloc(void *p, size_t n)
{
    if (p == NULL)
        return rgi_arena_malloc(n);
    size_t have = rgi_arena_usable(p);
    if (have == 0) {
        errno = EINVAL;
        return NULL;
    }
    if (n <= have && n >= have / 2)
        return p;
    void *q = rgi_arena_malloc(n);
    if (q == NULL)
        return NULL; /* p is untouched, as with realloc(3) */
    memcpy(q, p, n < have ? n : have);
    rgi_arena_free(p);
    return q;
}

/* ---------------------------------------------------------------------------
 * Stats, validation, fork
 * ------------------------------------------------------------------------- */
void rgi_arena_read_stats(rgi_arena_stats *st)
{
    memset(st, 0, sizeof *st);
    for (rgi_arena *a = atomic_load_explicit(&arenas, memory_order_acquire); a; a = a->next_all) {
        st->mallocs += atomic_load_explicit(&a->mallocs, memory_order_relaxed);
        st->frees += atomic_load_explicit(&a->frees, memory_order_relaxed);
        st->bytes_alloc += atomic_load_explicit(&a->bytes_alloc, memory_order_relaxed);
        st->bytes_freed += atomic_load_explicit(&a->bytes_freed, memory_order_relaxed);
        st->inbox_drained += atomic_load_explicit(&a->drained, memory_order_relaxed);
    }
    st->frees += atomic_load_explicit(&stray_frees, memory_order_relaxed);
    st->bytes_freed += atomic_load_explicit(&stray_bytes, memory_order_relaxed);
    st->arenas = atomic_load(&narenas);
    st->abandoned = atomic_load(&nabandoned);
}

bool rgi_arena_is_valid(const rgi_arena *a)
{
    for (const rgi_segment *s = a->segs; s; s = s->next) {
        if (!rgi_segment_check(s) || s->arena != a)
            return false;
        unsigned pages = (unsigned)__builtin_popcount(s->free_pages);
        for (unsigned i = 0; i < RGI_PAGES_PER_SEG;) {
            if (s->free_pages & (1u << i)) {
                i++;
                continue;
            }
            const rgi_span *sp = &s->spans[i];
            if (sp->page != i || sp->npages == 0 || sp->kind == RGI_SPAN_FREE)
                return false;
            if (sp->kind == RGI_SPAN_SMALL) {
                uint32_t nfree = 0;
                for (void *b = sp->free; b; b = *(void **)b)
                    nfree++;
                size_t bump_left = (size_t)(sp->end - sp->bump) / sp->block_size;
                if (nfree != sp->nfree || sp->used + nfree + bump_left != sp->capacity)
                    return false;
            }
            pages += sp->npages;
            i += sp->npages;
        }
        if (pages != RGI_PAGES_PER_SEG)
            return false;
    }
    return true;
}

rgi_arena *rgi_arena_current(void)
{
    return tls_arena;
}

void rgi_arena_atfork_prepare(void)
{
    pthread_mutex_lock(&arenas_lock);
}

void rgi_arena_atfork_parent(void)
{
    pthread_mutex_unlock(&arenas_lock);
}

void rgi_arena_atfork_child(void)
{
    /* Only the forking thread lives on: every other arena becomes an orphan
     * that later threads adopt or reap (a detached arena stays its user's). */
    size_t orphans = 0;
    for (rgi_arena *a = atomic_load(&arenas); a; a = a->next_all) {
        if (a != tls_arena && !a->detached && atomic_load(&a->owned)) {
            atomic_store(&a->owned, 0);
            orphans++;
        }
    }
    atomic_fetch_add(&nabandoned, orphans);
    pthread_mutex_unlock(&arenas_lock);
}
