/* regio/pool.h — object pools: rg_syncpool (Go's sync.Pool), rg_objpool
 * (a bounded pool with per-thread caches, the rte_mempool shape) and rg_buf
 * (Go's bytes.Buffer on pooled backing arrays).
 *
 * ---------------------------------------------------------------------------
 * Contract of this section
 * ---------------------------------------------------------------------------
 * Every object a pool creates comes from regio and counts against the hard
 * limit; memstats.pool_cached counts the bytes of idle objects pools hold.
 * Under limit pressure the page layer asks the pools to let go before any
 * allocation fails: syncpools free their idle objects, objpools free the idle
 * objects of their rings and per-thread caches (they are created again on
 * demand, within capacity).
 *
 * Per-thread caches are touched by their owner with plain loads and stores;
 * another thread (a flush, an epoch, the limit ladder) takes their objects
 * through an asymmetric fence (membarrier(2)), so no object is stranded in
 * the cache of a thread that went idle.  A thread's caches are given back
 * when it exits.  A pool must not be used by any thread once *_free starts.
 *
 * Debug builds (-Ddebug_checks=true) detect, name the pool and the object,
 * and refuse: a double put, a put of a pointer the pool did not hand out,
 * and a write to an object after its put (the object is poisoned while idle:
 * ASan/Valgrind fault at once; otherwise the bytes are checked at the next
 * get).
 */
#ifndef REGIO_POOL_H
#define REGIO_POOL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * rg_syncpool — Go's sync.Pool
 *
 * A cache of interchangeable objects that may be dropped at any time.  Get
 * looks in the calling thread's private slot, then its small cache, then the
 * shared lock-free list, then the victim list, and only then creates an
 * object (new_fn(arg), or obj_size bytes from regio).  Put keeps the object
 * in the same places in reverse order, and frees it when the shared list is
 * full.  At each pool epoch (a collection once the collector exists; until
 * then a 1 s timer and limit pressure) the primary lists become the victim
 * and the old victim is freed, with free_fn(obj, arg) or back to regio.
 * (A child of fork() has no timer thread: its epochs come from limit
 * pressure, and from the collector once it exists.)
 *
 * Refinement of DESIGN.md §3: the options gain `name` (diagnostics) and
 * `shared_cap` (objects the shared list holds, 0 = 1024); zero-initialized
 * options keep the DESIGN.md meaning.  obj_size == 0 needs a new_fn; objects
 * from new_fn without a free_fn must come from rg_malloc (they are rg_free'd).
 * Objects are at least pointer-sized (the pool links idle objects through
 * their first word when it frees them).  free_fn may run on any thread (the
 * epoch timer, an allocating thread under limit pressure) while the pools'
 * registry lock is held: it must not call rg_syncpool_* or rg_objpool_*.
 * ------------------------------------------------------------------------- */
typedef struct rg_syncpool rg_syncpool;
typedef struct rg_syncpool_opts {
    size_t obj_size;                       /* 0 = objects come from new_fn */
    void *(*new_fn)(void *arg);            /* creates an object; NULL = rg_malloc(obj_size) */
    void (*free_fn)(void *obj, void *arg); /* frees one; NULL = rg_free */
    void *arg;
    const char *name;                      /* for diagnostics; NULL = "syncpool" */
    size_t shared_cap;                     /* 0 = 1024 */
} rg_syncpool_opts;

/* NULL + errno: EINVAL (o NULL, or obj_size 0 without new_fn), ENOMEM. */
RG_EXPORT rg_syncpool *rg_syncpool_new(const rg_syncpool_opts *o);
/* rg_syncpool_get (inline, at the end of this header): an object from the
 * pool or a new one (contents undefined, as in Go).
 * NULL + errno: ENOMEM (creation failed), EINVAL (p NULL).
 *     static inline void *rg_syncpool_get(rg_syncpool *p);
 * rg_syncpool_put (inline): gives obj back (it may be freed at any time from
 * now on).  NULL obj does nothing.  Debug builds diagnose a double put or a
 * foreign pointer and ignore the call.
 *     static inline void rg_syncpool_put(rg_syncpool *p, void *obj);
 * Refinement of DESIGN.md §3: both are inline fast paths over the exported
 * rg_syncpool_get_slow / rg_syncpool_put_slow, which do the same work in
 * full (they may be called directly, e.g. through a function pointer). */
RG_EXPORT void *rg_syncpool_get_slow(rg_syncpool *p);
RG_EXPORT void rg_syncpool_put_slow(rg_syncpool *p, void *obj);
/* Frees every idle object and the pool.  Objects still out are the
 * caller's (free them with free_fn or rg_free). */
RG_EXPORT void rg_syncpool_free(rg_syncpool *p);

typedef struct rg_syncpool_stats {
    uint64_t gets, puts;           /* calls */
    uint64_t hits_local;           /* gets served by the private slot or thread cache */
    uint64_t hits_shared, hits_victim;
    uint64_t news, frees;          /* objects created / freed by the pool */
    uint64_t epochs;               /* epochs this pool went through */
    uint64_t cached;               /* idle objects held now (primary + victim + caches) */
} rg_syncpool_stats;
RG_EXPORT void rg_syncpool_read_stats(rg_syncpool *p, rg_syncpool_stats *st);

/* ---------------------------------------------------------------------------
 * rg_objpool — a bounded object pool (the seed's channel-backed BufferPool,
 * grown up; the rte_mempool shape)
 *
 * At most `capacity` objects are alive at once (created and not freed), ever.
 * Get takes from the calling thread's cache, then the shared ring (Vyukov's
 * bounded MPMC queue), then creates an object if fewer than capacity are
 * alive (init_fn runs once per created object).  When none can be had, the
 * policy decides: RG_POOL_FAIL returns NULL/EAGAIN, RG_POOL_BLOCK waits (on
 * a futex) up to timeout_ns for a put, then NULL/ETIMEDOUT.  While it
 * sleeps, an attached thread is parked for the collector (regio/gc.h).
 * Put runs reset_fn, keeps the object in the thread's cache, or the ring; if
 * the ring is full (ring_size < capacity) it drops (frees) the object, which
 * makes room under capacity for a later create.
 * While a thread waits (RG_POOL_BLOCK), every thread's cache is flushed to
 * the ring at its next put, so objects cached elsewhere reach the waiter.
 *
 * Refinement of DESIGN.md §3: the options gain `name`, `ring_size` (idle
 * objects the ring keeps, 0 = capacity, rounded up to a power of two) and
 * `prefill` (objects created by rg_objpool_new); cache_size is clamped to
 * 512.  Zero-initialized extras keep the DESIGN.md meaning.
 * ------------------------------------------------------------------------- */
enum rg_pool_policy { RG_POOL_FAIL = 0, RG_POOL_BLOCK = 1 };

typedef struct rg_objpool rg_objpool;
typedef struct rg_objpool_opts {
    size_t obj_size, capacity;      /* capacity: a hard bound on live objects */
    size_t cache_size;              /* per-thread cache, 0 = none */
    int policy;                     /* RG_POOL_FAIL, RG_POOL_BLOCK */
    int64_t timeout_ns;             /* for RG_POOL_BLOCK, -1 = forever */
    void (*init_fn)(void *obj, void *arg), (*reset_fn)(void *obj, void *arg);
    void *arg;
    const char *name;               /* for diagnostics; NULL = "objpool" */
    size_t ring_size;               /* 0 = capacity */
    size_t prefill;                 /* created at once, <= capacity */
} rg_objpool_opts;

/* NULL + errno: EINVAL (o NULL, obj_size or capacity 0, capacity above
 * 2^30, prefill > capacity, bad policy), ENOMEM (limit or OS, including the
 * prefill). */
RG_EXPORT rg_objpool *rg_objpool_new(const rg_objpool_opts *o);
/* The four calls below are inline fast paths (at the end of this header:
 * the calling thread's cache, no call) over the exported *_slow functions,
 * which do the same work in full and may be called directly.  Refinement of
 * DESIGN.md §3: same names, signatures and errors; inline.
 *
 * rg_objpool_get: NULL + errno only when no object can be had: EAGAIN
 * (RG_POOL_FAIL, all capacity objects are out), ETIMEDOUT (RG_POOL_BLOCK),
 * ENOMEM (creation failed under the limit), EINVAL.
 *     static inline void *rg_objpool_get(rg_objpool *p);
 * rg_objpool_put: 0, or -EINVAL (NULL arguments; in debug builds also a
 * double put or a pointer this pool did not hand out, diagnosed and ignored).
 *     static inline int rg_objpool_put(rg_objpool *p, void *obj);
 * rg_objpool_get_bulk: all or nothing: returns n with n objects in objs, or
 * 0 with errno set as for rg_objpool_get (EINVAL when n > capacity).
 * n == 0 returns 0, errno 0.
 *     static inline unsigned rg_objpool_get_bulk(rg_objpool *p, void **objs, unsigned n);
 * rg_objpool_put_bulk: puts n objects; 0 or -EINVAL (checked as for
 * rg_objpool_put; in debug builds the bad objects are diagnosed and
 * skipped, the rest are put).
 *     static inline int rg_objpool_put_bulk(rg_objpool *p, void *const *objs, unsigned n);
 */
RG_EXPORT void *rg_objpool_get_slow(rg_objpool *p);
RG_EXPORT int rg_objpool_put_slow(rg_objpool *p, void *obj);
RG_EXPORT unsigned rg_objpool_get_bulk_slow(rg_objpool *p, void **objs, unsigned n);
RG_EXPORT int rg_objpool_put_bulk_slow(rg_objpool *p, void *const *objs, unsigned n);
/* Frees every idle object and the pool; objects still out must not be put
 * afterwards (they stay allocated: free them with rg_free). */
RG_EXPORT void rg_objpool_free(rg_objpool *p);

typedef struct rg_objpool_stats {
    uint64_t gets, puts;            /* objects, bulk calls count each object */
    uint64_t hits;                  /* gets served from a thread cache or the ring */
    uint64_t misses;                /* gets that found nothing idle */
    uint64_t creates, drops;        /* objects created / freed by the pool */
    uint64_t fails, waits;          /* gets that failed / that blocked */
    uint64_t live;                  /* objects alive now (<= capacity) */
    uint64_t capacity;
    uint64_t in_ring, in_caches;    /* idle objects now */
    uint64_t threads;               /* thread caches */
} rg_objpool_stats;
RG_EXPORT void rg_objpool_read_stats(rg_objpool *p, rg_objpool_stats *st);

typedef struct rg_objpool_cache_info {
    int tid;                        /* owner thread (gettid) */
    unsigned cached;                /* objects in its cache now */
    uint64_t gets, puts;            /* served by the cache alone (its hits); the
                                       slow paths' gets, hits and misses are
                                       counted per pool (rg_objpool_stats) */
} rg_objpool_cache_info;
/* Fills up to n entries, one per thread cache; returns the number of thread
 * caches (which may exceed n), or -EINVAL. */
RG_EXPORT int rg_objpool_caches(rg_objpool *p, rg_objpool_cache_info *out, unsigned n);
/* Moves every thread's cached objects to the ring now (the owners need not
 * cooperate); returns the number moved, or -EINVAL. */
RG_EXPORT int rg_objpool_flush(rg_objpool *p);

/* ---------------------------------------------------------------------------
 * rg_buf — a growable byte buffer (Go's bytes.Buffer)
 *
 * Backing arrays up to 32 KiB come from per-size-class syncpools and go back
 * to them on reset-to-empty (rg_buf_free); larger ones from regio directly.
 * Growth follows Go's append: double while under 256 bytes, then about
 * 1.25x, then rounded up to the size class.  rg_buf_copy returns a
 * right-sized copy so keeping a small piece never keeps a big backing array
 * alive (the seed's slice-of-a-pooled-buffer leak).  A zeroed rg_buf (or
 * RG_BUF_INIT) is an empty buffer.  Not safe for concurrent writers.
 * ------------------------------------------------------------------------- */
typedef struct rg_buf {
    unsigned char *data;   /* bytes [0, len) are the contents */
    size_t len, cap;
} rg_buf;
#define RG_BUF_INIT {NULL, 0, 0}

RG_EXPORT void rg_buf_init(rg_buf *b);
/* Makes room for n more bytes without another allocation.
 * 0, -ENOMEM, -EOVERFLOW, -EINVAL (b NULL). */
RG_EXPORT int rg_buf_grow(rg_buf *b, size_t n);
/* Appends n bytes; 0 or as rg_buf_grow. */
RG_EXPORT int rg_buf_write(rg_buf *b, const void *p, size_t n);
RG_EXPORT int rg_buf_write_byte(rg_buf *b, unsigned char c);
RG_EXPORT int rg_buf_write_str(rg_buf *b, const char *s);
/* Empties the buffer, keeping its backing array. */
RG_EXPORT void rg_buf_reset(rg_buf *b);
/* Keeps the first n bytes; 0 or -EINVAL (n > len). */
RG_EXPORT int rg_buf_truncate(rg_buf *b, size_t n);
RG_EXPORT unsigned char *rg_buf_bytes(const rg_buf *b);
RG_EXPORT size_t rg_buf_len(const rg_buf *b);
RG_EXPORT size_t rg_buf_cap(const rg_buf *b);
/* A right-sized copy of bytes [off, off + n), from rg_malloc (free with
 * rg_free); n == 0 gives a unique minimal block.  NULL + errno: EINVAL (range
 * outside the contents), ENOMEM. */
RG_EXPORT void *rg_buf_copy(const rg_buf *b, size_t off, size_t n);
/* Gives the backing array back to its pool; b is empty afterwards. */
RG_EXPORT void rg_buf_free(rg_buf *b);

/* ---------------------------------------------------------------------------
 * Inline fast paths (the layout below is shared with the library; it is not
 * API and may change with any release)
 *
 * Each pool has a small id; each thread an initial-exec TLS vector of its
 * per-thread caches, indexed by that id.  A fast path is: one TLS load, the
 * vector slot, the guard (a plain store of busy, a load of reclaim; the rare
 * reclaimer pays a membarrier(2), see pool/pool_internal.h), the cache
 * access, and busy = 0.  No atomic read-modify-write, no call, and no
 * counter of its own: the fast paths count in the word they write anyway
 * (see lenw and priv below), so their statistics cost no store and no
 * load-add-store chain from one call to the next.  Whatever does not fit
 * (no cache yet, empty or full cache, a reclaimer at work, waiters, debug
 * checks, reset_fn, a count about to overflow) calls the *_slow function,
 * which redoes the whole operation.
 *
 * Counting in the written word.  rg_objpool: lenw holds the cache's length
 * in its low 16 bits and, above them, the objects the fast paths put since
 * the last fold; a put adds n * (1 + 2^16), a get subtracts n.  So puts are
 * the high part, and gets = puts + base - len, where base is the length at
 * the last fold.  rg_syncpool: priv holds the private slot's object in its
 * low 47 bits (user-space addresses) and, above them, the fast gets and
 * puts since the last fold; they alternate on the slot (a get empties it, a
 * put fills it), so the count and the slot's state now give both.  The
 * library folds these counts into gets/puts under the guard (every slow
 * path that touches the cache, every reclaimer) and decodes them when stats
 * are read, so stats stay exact.
 * ------------------------------------------------------------------------- */
typedef struct rg_pool_tc {
    unsigned busy;             /* guard, owner: 1 during an operation */
    unsigned reclaim;          /* guard, another thread: 1 while it takes objects */
    uint64_t lenw;             /* bits 0-15: objects in the array after this struct;
                                  16-63: objects the fast paths put since the last fold */
    unsigned cap;              /* the array's size (<= 512) */
    unsigned base;             /* the length at the last fold */
    uint64_t gets, puts;       /* folded counts (written under the guard) */
    uintptr_t priv;            /* rg_syncpool's private slot: object | fast ops << 47 */
    /* the library's bookkeeping */
    void *pool;                /* owning pool; NULL once the pool was freed */
    struct rg_pool_tc *next, *prev, **list;
    const void *cls;
    int tid;
    uint32_t id;
    unsigned pub;              /* objects last published to memstats.pool_cached */
    unsigned pad[7];           /* to 128 bytes: the array starts on a cache line (the
                                  library allocates caches 64-byte aligned), so bulk
                                  copies of 8k pointers never straddle one */
    /* void *objs[cap] */
} rg_pool_tc;

#define RG_POOL_LEN_BITS 16
#define RG_POOL_LEN_MASK ((uint64_t)0xffff)
/* what a fast put of n adds to lenw: n to the length, n to the count */
#define RG_POOL_PUT_STEP(n) ((uint64_t)(n) * (((uint64_t)1 << RG_POOL_LEN_BITS) + 1))
#define RG_POOL_SIGN ((uint64_t)1 << 63)
#define RG_POOL_PRIV_BITS 47
#define RG_POOL_PRIV_PTR (((uintptr_t)1 << RG_POOL_PRIV_BITS) - 1)
#define RG_POOL_PRIV_ONE ((uintptr_t)1 << RG_POOL_PRIV_BITS)

/* Each thread's caches by pool id: RG_POOL_FAST_IDS slots, always there.
 * A thread starts on a shared read-only vector whose slots all point to a
 * cache that is never enterable (reclaim is always 1), so the fast path
 * needs no bound check and no NULL check: an unknown pool is a failed
 * enter.  Slot 0 is never a cache: a pool whose fast paths are off (debug
 * checks, reset_fn, or more than RG_POOL_FAST_IDS pools alive) has id 0. */
#define RG_POOL_FAST_IDS 512
extern RG_EXPORT __thread rg_pool_tc **rg_pool_tls __attribute__((tls_model("initial-exec")));

/* The pool a thread's slow path used last and its cache (only pools whose
 * fast paths are on).  The fast paths try it first: two TLS loads and a
 * compare instead of the chain pool -> id -> vector slot, which measured
 * a third of a bulk get+put.  A stale entry is harmless: a freed pool's
 * caches keep reclaim = 1 until their owner frees them, and the owner
 * clears this entry before it frees the cache it names. */
typedef struct rg_pool_last {
    const void *pool;
    rg_pool_tc *tc;
} rg_pool_last;
extern RG_EXPORT __thread rg_pool_last rg_pool_tls_last __attribute__((tls_model("initial-exec")));

/* The first fields of rg_objpool and rg_syncpool. */
typedef struct rg_pool_head {
    uint32_t id;               /* slot in every thread's vector; 0 = fast paths off */
    uint32_t tcid;             /* the library's id for the pool's caches */
    unsigned nwaiters;         /* rg_objpool: blocked getters (puts bypass the caches) */
    unsigned spare;
} rg_pool_head;

#if defined(__SANITIZE_THREAD__)
#define RG_POOL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RG_POOL_TSAN 1
#endif
#endif
#ifndef RG_POOL_TSAN
#define RG_POOL_TSAN 0
#endif

#define RG_POOL_TC_OBJS(tc) ((void **)((tc) + 1))

/* The owner's side of the cache guard (a Dekker pair with a reclaimer, see
 * pool/tcache.c): marks tc busy and returns 1, or 0 (tc left idle) when a
 * reclaimer holds it.  The library's own slow paths and the DPDK ops driver
 * use the same guard. */
static inline int rg_pool_tc_try(rg_pool_tc *tc)
{
#if RG_POOL_TSAN
    __atomic_store_n(&tc->busy, 1, __ATOMIC_SEQ_CST);
    if (RG_UNLIKELY(__atomic_load_n(&tc->reclaim, __ATOMIC_SEQ_CST))) {
#else
    /* Caches exist only when membarrier works, so the CPU fence of this
     * Dekker pair is the reclaimer's membarrier; the compiler must still
     * keep the store before the load. */
    __atomic_store_n(&tc->busy, 1, __ATOMIC_RELAXED);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    /* acquire: pairs with the reclaimer's release of reclaim = 0, so the
     * owner sees what the reclaimer left in the cache */
    if (RG_UNLIKELY(__atomic_load_n(&tc->reclaim, __ATOMIC_ACQUIRE))) {
#endif
        __atomic_store_n(&tc->busy, 0, __ATOMIC_RELEASE);
        return 0;
    }
    return 1;
}

/* The calling thread's cache of the pool with this id, entered; NULL when
 * there is none yet or a reclaimer holds it.  Leave with rg_pool_tc_leave. */
static inline rg_pool_tc *rg_pool_tc_enter(uint32_t id)
{
    rg_pool_tc *tc = rg_pool_tls[id];
    return rg_pool_tc_try(tc) ? tc : NULL;
}

/* As rg_pool_tc_enter for pool h, trying the thread's last pool first
 * (the pool's id is loaded only when it is another pool). */
static inline rg_pool_tc *rg_pool_tc_enter_pool(const rg_pool_head *h)
{
    rg_pool_tc *tc = rg_pool_tls_last.tc;
    if (RG_UNLIKELY(rg_pool_tls_last.pool != (const void *)h))
        tc = rg_pool_tls[h->id];
    return rg_pool_tc_try(tc) ? tc : NULL;
}

/* release: pairs with the reclaimer's acquire load of busy */
static inline void rg_pool_tc_leave(rg_pool_tc *tc)
{
    __atomic_store_n(&tc->busy, 0, __ATOMIC_RELEASE);
}

/* lenw and priv are read by stats from other threads: relaxed atomics
 * (plain moves on x86-64). */
#define RG_POOL_LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define RG_POOL_ST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* Fast path budget: the TLS vector slot, the guard, an array pop, the
 * length's store (no counter: a get is counted by the length it takes). */
static inline void *rg_objpool_get(rg_objpool *p)
{
    const rg_pool_head *h = (const rg_pool_head *)(const void *)p;
    rg_pool_tc *tc;
    if (RG_LIKELY(p != NULL) && RG_LIKELY((tc = rg_pool_tc_enter_pool(h)) != NULL)) {
        uint64_t w = RG_POOL_LD(tc->lenw);
        if (RG_LIKELY((w & RG_POOL_LEN_MASK) != 0)) {
            void *o = RG_POOL_TC_OBJS(tc)[(w & RG_POOL_LEN_MASK) - 1];
            RG_POOL_ST(tc->lenw, w - 1);
            rg_pool_tc_leave(tc);
            return o;
        }
        rg_pool_tc_leave(tc);
    }
    return rg_objpool_get_slow(p);
}

/* Fast path budget: as get, plus the waiters check.  The length test also
 * refuses a count about to reach bit 63 (the slow path folds it). */
static inline int rg_objpool_put(rg_objpool *p, void *obj)
{
    const rg_pool_head *h = (const rg_pool_head *)(const void *)p;
    rg_pool_tc *tc;
    if (RG_LIKELY((p != NULL) & (obj != NULL)) &&
        RG_LIKELY((tc = rg_pool_tc_enter_pool(h)) != NULL)) {
        uint64_t w = RG_POOL_LD(tc->lenw);
        /* relaxed: a put that misses a new waiter is caught by the waiter's
         * flush of every cache (pool/objpool.c) */
        if (RG_LIKELY(((w & (RG_POOL_SIGN | RG_POOL_LEN_MASK)) < tc->cap) &
                      (__atomic_load_n(&h->nwaiters, __ATOMIC_RELAXED) == 0))) {
            RG_POOL_TC_OBJS(tc)[w & RG_POOL_LEN_MASK] = obj;
            RG_POOL_ST(tc->lenw, w + RG_POOL_PUT_STEP(1));
            rg_pool_tc_leave(tc);
            return 0;
        }
        rg_pool_tc_leave(tc);
    }
    return rg_objpool_put_slow(p, obj);
}

/* Fast path budget: as get, with one copy loop and one length store for
 * all n (rte_mempool's shape). */
static inline unsigned rg_objpool_get_bulk(rg_objpool *p, void **objs, unsigned n)
{
    const rg_pool_head *h = (const rg_pool_head *)(const void *)p;
    rg_pool_tc *tc;
    if (RG_LIKELY(p != NULL && objs != NULL && n != 0) &&
        RG_LIKELY((tc = rg_pool_tc_enter_pool(h)) != NULL)) {
        uint64_t w = RG_POOL_LD(tc->lenw);
        unsigned len = (unsigned)(w & RG_POOL_LEN_MASK);
        if (RG_LIKELY(len >= n)) {
            /* the cache is a LIFO: hand out its top n, in stack order */
            void **src = RG_POOL_TC_OBJS(tc) + (len - n);
            for (unsigned i = 0; i < n; i++)
                objs[i] = src[i];
            RG_POOL_ST(tc->lenw, w - n);
            rg_pool_tc_leave(tc);
            return n;
        }
        rg_pool_tc_leave(tc);
    }
    return rg_objpool_get_bulk_slow(p, objs, n);
}

static inline int rg_objpool_put_bulk(rg_objpool *p, void *const *objs, unsigned n)
{
    const rg_pool_head *h = (const rg_pool_head *)(const void *)p;
    rg_pool_tc *tc;
    if (RG_LIKELY(p != NULL && objs != NULL) &&
        RG_LIKELY((tc = rg_pool_tc_enter_pool(h)) != NULL)) {
        uint64_t w = RG_POOL_LD(tc->lenw);
        /* n <= cap - len, written so that a huge n or a count at bit 63 fails */
        if (RG_LIKELY(((w & (RG_POOL_SIGN | RG_POOL_LEN_MASK)) + n <= tc->cap) &
                      (__atomic_load_n(&h->nwaiters, __ATOMIC_RELAXED) == 0))) {
            void **dst = RG_POOL_TC_OBJS(tc) + (w & RG_POOL_LEN_MASK);
            for (unsigned i = 0; i < n; i++)
                dst[i] = objs[i];
            RG_POOL_ST(tc->lenw, w + RG_POOL_PUT_STEP(n));
            rg_pool_tc_leave(tc);
            return 0;
        }
        rg_pool_tc_leave(tc);
    }
    return rg_objpool_put_bulk_slow(p, objs, n);
}

/* Fast path budget: the TLS vector slot, the guard, the private slot (one
 * load, one store; the count rides in the slot's word). */
static inline void *rg_syncpool_get(rg_syncpool *p)
{
    const rg_pool_head *h = (const rg_pool_head *)(const void *)p;
    rg_pool_tc *tc;
    if (RG_LIKELY(p != NULL) && RG_LIKELY((tc = rg_pool_tc_enter_pool(h)) != NULL)) {
        uintptr_t w = RG_POOL_LD(tc->priv);
        uintptr_t o = w & RG_POOL_PRIV_PTR;
        /* an object there, and the count below 2^16 (bit 63 clear) */
        if (RG_LIKELY((o != 0) & ((intptr_t)w >= 0))) {
            RG_POOL_ST(tc->priv, w - o + RG_POOL_PRIV_ONE);
            rg_pool_tc_leave(tc);
            return (void *)o;
        }
        rg_pool_tc_leave(tc);
    }
    return rg_syncpool_get_slow(p);
}

static inline void rg_syncpool_put(rg_syncpool *p, void *obj)
{
    const rg_pool_head *h = (const rg_pool_head *)(const void *)p;
    rg_pool_tc *tc;
    /* p set, and obj neither NULL nor above the slot's 47 address bits */
    if (RG_LIKELY((p != NULL) & ((uintptr_t)obj - 1 < RG_POOL_PRIV_PTR)) &&
        RG_LIKELY((tc = rg_pool_tc_enter_pool(h)) != NULL)) {
        uintptr_t w = RG_POOL_LD(tc->priv);
        /* the slot empty, and the count below 2^16 */
        if (RG_LIKELY((w & (RG_POOL_PRIV_PTR | ((uintptr_t)1 << 63))) == 0)) {
            RG_POOL_ST(tc->priv, w + (uintptr_t)obj + RG_POOL_PRIV_ONE);
            rg_pool_tc_leave(tc);
            return;
        }
        rg_pool_tc_leave(tc);
    }
    rg_syncpool_put_slow(p, obj);
}

#ifdef __cplusplus
}
#endif
#endif /* REGIO_POOL_H */
