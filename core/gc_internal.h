/* core/gc_internal.h — the collector's seams for stats and tests.  Never
 * installed.
 *
 * Glossary (collector)
 * --------------------
 *  gspan      the collector's span: blocks of one (type, size class) carved
 *             from an arena span (RGI_SPAN_USER, gspan in span->user), or one
 *             large object on its own arena span or run.  Mark bits, alloc
 *             bits and finalizer bits live on the side, in the gspan.
 *  tclass     central lists of gspans for one (type, size class): partial
 *             (swept, has free blocks), full, unswept.
 *  cache      a thread's spans, one per (type, class) it allocates, taken
 *             from the central lists; no lock while allocating from them.
 *  white/gray/black   unmarked / marked and waiting in a gray buffer /
 *             marked and scanned (or allocated black: fields all zero).
 *  handshake  a request every attached, unparked thread acknowledges at its
 *             next safepoint; the collector acknowledges for parked ones.
 *  sweepgen   Go's sweep generation: a span with sweepgen == G - 2 is
 *             unswept, G - 1 being swept, G swept; G grows by 2 per cycle.
 */
#ifndef REGIO_GC_INTERNAL_H
#define REGIO_GC_INTERNAL_H

#include "internal.h"

typedef struct rgi_gc_stats {
    uint64_t num_gc, pause_total_ns, last_gc_ns, next_gc;
    uint64_t pause_ns[256];
    double gc_cpu_fraction;
    uint64_t live_bytes, live_objects, mallocs, frees, total_alloc, span_bytes;
    uint64_t marked_bytes, finalizers_run, forced_by_limit;
    uint64_t term_rounds;  /* mark-termination rounds, all cycles (a cycle takes at least one) */
    uint64_t assist_scanned; /* bytes scanned by allocation assists and safepoint steps */
    uint64_t gray_shares;    /* times a drain gave half its gray work to paced assists */
} rgi_gc_stats;
void rgi_gc_read_stats(rgi_gc_stats *st);
/* Adds the collector's numbers to memstats (called by rg_read_memstats). */
void rgi_gc_fill_memstats(rg_memstats *out);

/* Heap verifier: every root target is marked and no marked object points to
 * an unmarked one.  Valid only between mark termination and sweep, with
 * every other thread parked; rg_gc() calls it there in debug builds and when
 * rgi_gc_verify_next is set.  Returns the number of violations found
 * (printed through rgi_diag). */
extern atomic_int rgi_gc_verify_next;
extern atomic_uint_fast64_t rgi_gc_verify_failures; /* violations found so far */
extern atomic_uint_fast64_t rgi_gc_verify_runs;     /* verifications run so far */

/* Runs the verifier now (tests): meaningful only where described above;
 * outside a cycle every root target is unmarked, which it must report. */
unsigned rgi_gc_verify_now(void);

/* Test seam: while non-zero, growing the gray set fails as if the hard
 * limit refused the memory (exercises the overflow rescan). */
extern atomic_int rgi_gc_fail_gray;

/* Completed cycles. */
uint64_t rgi_gc_cycles(void);

/* Test seam: a cycle like rg_gc(), minor when full is false and the
 * generational mode is on (gc.h rule 9).  Returns true when it is on. */
bool rgi_gc_collect(bool full);
/* Completed minor cycles. */
uint64_t rgi_gc_minor_cycles(void);

/* Is obj the start of a live-looking heap block?  (Installed as
 * rgi_gc_is_object; while marking it also shades obj, which makes a region
 * pin a barrier-protected root store.) */
bool rgi_gc_object_check(const void *obj);

/* Test seam: mark state of a heap object (1 marked, 0 not, -1 not a heap
 * object). */
int rgi_gc_is_marked(const void *obj);

#endif /* REGIO_GC_INTERNAL_H */
