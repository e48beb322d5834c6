/* regio/gc.h — the collected heap: typed objects, a write barrier, roots,
 * safepoints and an incremental tri-color collector with no stop-the-world.
 *
 * ---------------------------------------------------------------------------
 * Contract of this section (DESIGN.md §4, as implemented)
 * ---------------------------------------------------------------------------
 * C has no stack maps, so the collector asks for a small discipline instead
 * of scanning stacks (the deal Lua, OCaml and JNI make with C code):
 *
 *  1. Objects are typed.  rg_type gives the size and the offsets of the
 *     pointer fields (each 8-byte aligned, inside size); marking is precise.
 *     A pointer field holds NULL or a pointer into a heap object (an
 *     interior pointer keeps its whole object); never a pointer into a
 *     region or rg_malloc memory (the marker would read that memory's
 *     allocator metadata).  Every store of a pointer into a heap object
 *     goes through rg_write().
 *  2. A heap pointer held in a local variable stays valid until the thread's
 *     next rg_safepoint(), rg_park() or rg_gc().  To keep it longer, reach it
 *     from a root, another heap object, or pin it with rg_region_keep().
 *  3. Roots are explicit (rg_root_add).  A root slot behaves like a slot of
 *     its thread's stack: write it only from the thread that registered it
 *     (refinement: the collector reads a thread's roots at that thread's
 *     safepoints, which is what keeps it race-free without stopping the
 *     world).  A pointer shared between threads lives in a heap object
 *     reached from a root, and is written with rg_write().  Roots are
 *     scanned at mark start and again at every mark-termination round.
 *     Region pins are roots while their region lives.
 *  4. Marking is incremental: allocation pays assist work in proportion to
 *     the bytes it allocates (bounded per call), rg_safepoint() does a
 *     bounded step, and background mark threads (RG_GC_THREADS, see
 *     rg_set_gc_threads) drain the rest.  Objects allocated while marking
 *     are allocated black, from the moment every thread has the barrier on
 *     (each thread switches at its next span refill; refinement: before,
 *     only once it had handed over its roots).  Refinement: assists are
 *     paced as Go's pacer does (marking ends near the heap goal, and the
 *     collector shares its gray work with them) when no memory limit is
 *     set, and light under a limit, which caps the heap anyway (twice the
 *     bytes allocated, and none when there is no gray work to take: a
 *     spare core's collector thread marks while the mutators run at full
 *     speed, for a lower op latency on the churn).  RG_GC_ASSIST=paced or
 *     light chooses one for every cycle (perf/RESULTS.md, binary-trees).
 *  5. No stop-the-world.  Each phase change is a ragged handshake: every
 *     attached, unparked thread acknowledges it at its next safepoint (the
 *     ones that do not need the thread's locals dead — barrier on,
 *     termination rounds, sweep — already at its next allocation slow path,
 *     about every 64 KiB it allocates: refinement, so a cycle waits for one
 *     safepoint per thread, the roots handover); a
 *     parked thread is acknowledged for by the collector, so it never delays
 *     a cycle, and rg_unpark() syncs with the current phase before the
 *     thread touches the heap again.  The handshakes are: barrier on
 *     (before any object is blackened), roots (each thread hands over its
 *     roots), termination rounds (each thread rescans its roots and flushes
 *     its gray buffer; the cycle ends when a full round shades nothing and
 *     the gray set is empty), and sweep (threads give back the spans they
 *     allocated black in).  A thread's pause is its acknowledgement.  A
 *     thread that never reaches a safepoint delays the cycle; gctrace names
 *     it.
 *  6. The barrier is Go's hybrid one (Yuasa deletion + Dijkstra insertion:
 *     while marking, rg_write shades the old and the new value), which is
 *     what lets roots be handed over one thread at a time.  When the
 *     collector is idle its fast path is one predictable branch (inline
 *     below); while it marks, a store into a slot that held NULL of NULL
 *     or of an object the thread just allocated black (filling in a new
 *     object) shades nothing and is inline too (refinement: on
 *     binary-trees the out-of-line call was a quarter of the mutator's
 *     time while marking).
 *  7. Sweeping is lazy (per span, when an allocating thread needs one) and
 *     finished in the background by the collector; freed objects are
 *     poisoned under ASan and Valgrind.  Finalizers run after the sweep, at
 *     safepoints (and at the end of rg_gc), never inside the collector.  An
 *     object with a finalizer is kept, with everything it reaches, for one
 *     more cycle; its memory is reused only when it is found unreachable
 *     again after its finalizer ran.  Finalizers must not resurrect.
 *  8. Pacing: the heap goal is heap_marked * (1 + GC_PERCENT/100) (at
 *     least 4 MiB; memstats next_gc), where heap_marked counts what the
 *     last cycle's marking reached, not the objects allocated black while
 *     it ran (refinement: with the collector thread marking beside mutators
 *     at full speed those are about a cycle's allocation, and counting
 *     them doubled it into every goal; survivors among them count from the
 *     next cycle on); a cycle starts before it, early enough
 *     that the allocation the last cycle saw ends near the goal (between 60%
 *     and 95% of the way from heap_marked to the goal); rg_set_gc_percent
 *     / RG_GC_PERCENT (-1 / off disables it); the memory limit moves the
 *     trigger earlier: the heap's room under the limit is its spans, its
 *     free pages and the whole 2 MiB segments still committable, and a
 *     cycle starts when the heap comes within 1.5x the last cycle's
 *     allocation (at least a tenth of the room, and one 2 MiB segment) of
 *     it.  The collector is the
 *     RGI_PRESSURE_GC rung of the limit ladder: an allocation that meets the
 *     limit sweeps what the last cycle found dead (empty spans and segments
 *     go back to the page layer at once), then waits (at most 200 ms) for a
 *     cycle that can finish without the allocating thread's safepoint — one
 *     marking after that thread handed over its roots, or sweeping, or any
 *     cycle when it is parked or not attached.  The one case the contract
 *     makes impossible: a running thread that has not handed over its roots
 *     in the current cycle (or that meets the limit before any cycle
 *     started) holds locals the collector cannot see (rule 2), so no cycle
 *     can end before its next safepoint; its allocation gets only what
 *     earlier cycles freed, and fails with ENOMEM when that is not enough:
 *     park a moment (rg_park: the collector acknowledges for a parked
 *     thread, so the cycle the refusal asked for can run) and retry, a
 *     bounded number of times.
 *     The trigger exists to make this rare: with one safepoint per thread
 *     per cycle (see rule 5) every thread has normally handed its roots
 *     over long before the heap reaches the limit.  A thread that allocates a lot without a
 *     safepoint (a long loop of rg_new with no rg_safepoint) shrinks that
 *     margin; so does a live set that leaves less than about two segments
 *     plus two cycles' allocation between it and the limit.  GC CPU driven by
 *     the limit is capped at 50% of the process's CPU while the heap keeps
 *     clear of the limit (no death spiral).  Each cycle ends a pool epoch.  memstats gc_cpu_fraction is, as Go's GCCPUFraction, the
 *     collector's CPU (its threads' CPU time plus the mutators' assist and
 *     safepoint mark work) over wall time times the CPUs the process may
 *     use, since start.
 *  9. Generations (refinement: DESIGN.md §4 describes one kind of cycle;
 *     on binary-trees every cycle re-marked the 32 MiB long-lived tree, and
 *     marking was 90% of the collector's CPU).  Marks are sticky: an
 *     object a full cycle marked stays marked ("old") through the minor
 *     cycles after it, which mark only from the roots and from the old
 *     objects on marked cards, until the next full cycle clears every mark
 *     and traces the whole heap (the sticky mark bits of Demers et al.,
 *     PLDI 1990, as Boehm GC's generational mode and WebKit's Riptide use
 *     them).  rg_write marks the card (RG_GC_CARD_BYTES of address space)
 *     of the slot it writes; a minor cycle scans the old objects of the
 *     marked cards once every thread runs the barrier, and clears each
 *     card unless one of them points to a young object.  Minor cycles
 *     promote nothing: what they trace, and what any cycle allocates
 *     black, is young again after the sweep (refinement: promoting them
 *     made each minor cycle's half-built tree and floating garbage old on
 *     binary-trees, and every fifth cycle full); the kept cards and the
 *     cards marked while the cycle ran find them again.  A cycle is full
 *     when rg_gc() asks for it, when the memory limit or its ladder forced
 *     it, when the minor cycles since the last full one traced as much as
 *     that one did (promoting what keeps being traced), when a minor
 *     cycle left the heap past the goal, and after a minor cycle that
 *     freed less than it kept young (a heap being built: then 1, 2, 4 ...
 *     up to 64 full cycles before the next minor one).  An old object
 *     that died is only freed by a full cycle; the goal's base between
 *     full cycles is what the last full one traced.  Finalizers of old
 *     objects run after a full cycle.
 *     RG_GC_GEN=0 (read once at init) turns the mode off: every cycle is
 *     full and rg_write marks no card.  The card table is address space
 *     reserved without backing: a byte per 512 bytes of heap touched
 *     (0.2%), outside the limit's count.
 *
 * fork(): safe at any time.  The forking thread is parked for the fork and
 * the collector's locks are taken, so a cycle in flight finishes first (a
 * thread that never reaches a safepoint delays fork() as it delays the
 * cycle).  In the child only the forking thread is attached; the other
 * threads' roots become global roots, as at thread exit, and the collector
 * threads start again with the next cycle: the child allocates and
 * collects as the parent did.
 *
 * Threads: a thread that uses the heap without rg_thread_attach() is
 * attached on first use (and detached at thread exit); it then owes the
 * collector safepoints like any attached thread.  Wrap blocking calls in
 * rg_park()/rg_unpark().  regio's own blocking waits (rg_chan's and
 * rg_objpool's when they sleep) park and unpark by themselves, and so count
 * as rg_park() for rule 2.
 *
 * Errors: allocations return NULL with errno ENOMEM (the hard limit or the
 * OS), EINVAL (NULL type, bad pointer map) or EOVERFLOW (array size).
 * Debug builds (debug_checks) diagnose a slot outside its object in
 * rg_write, a bad pointer map, a foreign root slot, and verify the heap
 * after each quiescent mark termination (no black -> white edge, every root
 * target marked).
 */
#ifndef REGIO_GC_H
#define REGIO_GC_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A heap type.  The collector keeps the pointer; it must outlive every
 * object of the type (a static const is typical). */
typedef struct rg_type {
    const char *name;
    size_t size;               /* bytes of one object (0 is treated as 1) */
    const size_t *ptr_offsets; /* byte offsets of the pointer fields */
    size_t nptrs;
    void (*finalize)(void *obj); /* NULL = none */
} rg_type;

typedef struct rg_root rg_root;

/* A new zeroed object of type t (like Go's new(T)).
 * NULL + errno: EINVAL (t NULL or a pointer offset outside the object or
 * misaligned), ENOMEM. */
RG_EXPORT RG_MALLOC_ATTR void *rg_new(const rg_type *t);

/* A zeroed array of n objects of type t (like make([]T, n)).  n == 0 gives a
 * valid unique object.  NULL + errno: EINVAL, EOVERFLOW, ENOMEM. */
RG_EXPORT RG_MALLOC_ATTR void *rg_new_array(const rg_type *t, size_t n);

/* The escape door: a new heap object (an array of t, enough elements for n
 * bytes) holding a copy of n bytes at src, e.g. bytes built in a region that
 * must outlive the request.  Pointer fields copied are shaded as rg_write
 * would.  NULL + errno: EINVAL (t or src NULL), EOVERFLOW, ENOMEM. */
RG_EXPORT RG_MALLOC_ATTR void *rg_clone(const rg_type *t, const void *src, size_t n);

/* The barrier's state: non-zero while the collector marks.  Read by the
 * inline rg_write below; written only by the collector. */
RG_EXPORT extern int rg_gc_barrier_on;

/* Out-of-line part of rg_write: shades the old and the new value. */
RG_EXPORT void rg_write_slow(void *obj, void *slot, void *val);

/* The calling thread's fresh window: [lo, lo + len) holds only blocks this
 * thread allocated black in the current cycle (or free blocks, which no
 * valid pointer names), so storing such a pointer into a slot that held
 * NULL shades nothing and rg_write does it inline.  Written by the
 * collector for this thread only (len 0 when the thread has no window);
 * not API: code that inlines rg_write must be rebuilt with the library. */
typedef struct rg_gc_fresh {
    uintptr_t lo, len;
} rg_gc_fresh;
extern RG_EXPORT __thread rg_gc_fresh rg_gc_tls_fresh __attribute__((tls_model("initial-exec")));

/* The card table of the generational mode (rule 9): a byte per
 * RG_GC_CARD_BYTES of the heap's address range, from lo, n bytes (n is 0
 * when the mode is off, and rg_write then marks nothing).  Written by the
 * collector at init; not API: code that inlines rg_write must be rebuilt
 * with the library. */
#define RG_GC_CARD_SHIFT 9
#define RG_GC_CARD_BYTES ((uintptr_t)1 << RG_GC_CARD_SHIFT)
typedef struct rg_gc_cards {
    unsigned char *map;
    uintptr_t lo, n;
} rg_gc_cards;
RG_EXPORT extern rg_gc_cards rg_gc_card_table;

/* The card byte of slot, or NULL outside the table (the mode off). */
static inline unsigned char *rg_gc_card(const void *slot)
{
    uintptr_t c = ((uintptr_t)slot - rg_gc_card_table.lo) >> RG_GC_CARD_SHIFT;
    return RG_LIKELY(c < rg_gc_card_table.n) ? &rg_gc_card_table.map[c] : (unsigned char *)0;
}

/* The write barrier: *(void **)slot = val, where slot is a pointer field of
 * the heap object obj.  The store is atomic with release order, so another
 * thread that loads the slot with acquire order (__atomic_load_n(slot,
 * __ATOMIC_ACQUIRE)) or under the user's own lock sees val initialized.
 * Fast path when the collector is idle: the slot's card byte marked unless
 * it is (a bounds check, a byte load, rarely a byte store: rule 9), one
 * load and one predictable branch for the barrier, one store (a plain mov
 * on x86-64). */
static inline void rg_write(void *obj, void *slot, void *val)
{
    /* remember the slot for the next minor cycle (rule 9); a card already
     * marked is not written again (threads writing near each other would
     * otherwise pass the card's cache line back and forth) */
    unsigned char *card = rg_gc_card(slot);
    if (card && !__atomic_load_n(card, __ATOMIC_RELAXED))
        __atomic_store_n(card, (unsigned char)1, __ATOMIC_RELAXED);
    if (RG_UNLIKELY(__atomic_load_n(&rg_gc_barrier_on, __ATOMIC_RELAXED))) {
        /* while marking: a slot that held NULL and gets NULL or an object
         * this thread just allocated black (a new object being filled in)
         * needs no shade; anything else takes the slow path */
        if (__atomic_load_n((void **)slot, __ATOMIC_RELAXED) != NULL ||
            (val != NULL && (uintptr_t)val - __atomic_load_n(&rg_gc_tls_fresh.lo, __ATOMIC_RELAXED) >=
                                __atomic_load_n(&rg_gc_tls_fresh.len, __ATOMIC_RELAXED))) {
            rg_write_slow(obj, slot, val);
            return;
        }
    }
    /* release store: the marker reads this slot concurrently (acquire) and
     * then the object val points to; the store publishes val's contents */
    __atomic_store_n((void **)slot, val, __ATOMIC_RELEASE);
}

/* Registers *slot (a void * variable holding NULL or a heap pointer) as a
 * root of the calling thread.  Returns a handle, or NULL + errno (EINVAL for
 * a NULL slot, ENOMEM). */
RG_EXPORT rg_root *rg_root_add(void *slot);
/* Unregisters a root (any thread; NULL is ignored). */
RG_EXPORT void rg_root_remove(rg_root *root);

/* Attaches the calling thread to the collector (idempotent, counted: each
 * attach needs a detach).  Attached threads owe the collector safepoints. */
RG_EXPORT void rg_thread_attach(void);
/* Detaches the calling thread: its roots stay registered and are scanned by
 * the collector from then on. */
RG_EXPORT void rg_thread_detach(void);

/* Acknowledges pending handshakes, does a bounded step of marking work, runs
 * finalizers that are due.  Heap pointers held in locals die here. */
RG_EXPORT void rg_safepoint(void);

/* Around a blocking call: while parked, the thread must not touch the heap,
 * and the collector acknowledges handshakes on its behalf. */
RG_EXPORT void rg_park(void);
RG_EXPORT void rg_unpark(void);

/* A full collection, like runtime.GC(): marks, sweeps, queues finalizers,
 * then runs the due ones; returns when done.  A safepoint for the caller. */
RG_EXPORT void rg_gc(void);

/* Background mark threads (no DESIGN.md signature; the environment variable
 * RG_GC_THREADS, read once at init, sets the same count).  n threads: the
 * collector thread, which drives the cycles, marks, and n - 1 helpers mark
 * beside it.  0: the collector thread only drives the handshakes, and
 * marking is done by allocation assists and rg_safepoint() steps (it marks
 * itself only when no attached thread is running, and in rg_gc(), whose
 * caller waits anyway).  Default: one thread, or a quarter of the CPUs from
 * 8 CPUs on (Go's share).  Takes effect at the next cycle; helpers above a
 * lowered count stay idle.  n < 0 queries.  Returns the previous count, or
 * -EINVAL for n > RG_GC_THREADS_MAX, -ENOMEM when regio cannot initialize. */
#define RG_GC_THREADS_MAX 64
RG_EXPORT int rg_set_gc_threads(int n);

/* Handshake pauses, split by what the OS did during them (no DESIGN.md
 * signature; issue 5).  A thread's pause is its acknowledgement of a
 * handshake (rule 5 above): rg_memstats.pause_ns holds each cycle's longest.
 * regio brackets every acknowledgement a running thread makes with
 * getrusage(RUSAGE_THREAD): one with an involuntary context switch was
 * preempted (the OS ran something else: on a machine with fewer CPUs than
 * runnable threads a pause then includes a time slice), one with a
 * voluntary switch blocked (waited on a lock), and one with neither is
 * clean: its time is regio's own work.  Counts are since start; the rings
 * are indexed like rg_memstats.pause_ns (cycle number % 256). */
typedef struct rg_gc_pauses {
    uint64_t acks;            /* acknowledgements made by running threads */
    uint64_t acks_preempted;  /* ... with an involuntary context switch */
    uint64_t acks_blocked;    /* ... with a voluntary one */
    uint64_t max_ns;          /* the longest acknowledgement */
    uint64_t max_clean_ns;    /* the longest clean one */
    uint64_t num_gc;          /* completed cycles */
    uint64_t pause_ns[256];   /* per cycle: its longest acknowledgement (as rg_memstats) */
    uint64_t clean_ns[256];   /* per cycle: its longest clean acknowledgement */
} rg_gc_pauses;

/* Fills *out.  Returns 0, or -EINVAL for a NULL out. */
RG_EXPORT int rg_gc_read_pauses(rg_gc_pauses *out);

#ifdef __cplusplus
}
#endif
#endif /* REGIO_GC_H */
