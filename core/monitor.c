/* core/monitor.c — the memtrace monitor thread and the leak report.
 *
 * Memtrace (RG_DEBUG=memtrace=30s, or rg_monitor_start): an opt-in thread
 * that wakes every interval, reads memstats (cheap: counters summed, no
 * stop-the-world) and prints one line to stderr — the monitorMemory
 * goroutine every Go server grows, built in.  It sleeps on a condition
 * variable so rg_monitor_stop returns at once.
 *
 * Leak report (in the spirit of LeakSanitizer's summary): live regions (the
 * debug-build registry in core/region.c, with the call site that created
 * each), arena objects never freed, pool objects handed out and never
 * returned (the pools' rows), threads attached to the collector and never
 * detached.  Debug builds print it at exit when anything is left.
 */
#include "internal.h"

#include <dlfcn.h>
#include <time.h>

atomic_long rgi_gc_threads_attached;

static pthread_mutex_t mon_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mon_cond;
static pthread_t mon_thread;
static bool mon_running, mon_stop;
static int64_t mon_interval_ns;

static double mib(uint64_t b)
{
    return (double)b / 1048576.0;
}

/* One memtrace line; prev (may be NULL) gives the rates. */
static void trace_line(FILE *out, const rg_memstats *ms, const rg_memstats *prev, double dt_s, double since_s)
{
    char limit[32], rate[48], hit[24];
    if (ms->limit < 0 || ms->limit == RG_MEMLIMIT_OFF)
        snprintf(limit, sizeof limit, "none");
    else
        snprintf(limit, sizeof limit, "%.1f MiB", mib((uint64_t)ms->limit));
    if (prev && dt_s > 0)
        snprintf(rate, sizeof rate, "%+.1f MiB/s", mib(ms->total_alloc - prev->total_alloc) / dt_s);
    else
        snprintf(rate, sizeof rate, "first");
    uint64_t gets = ms->pool_hits + ms->pool_misses;
    if (gets)
        snprintf(hit, sizeof hit, "%.1f%%", 100.0 * (double)ms->pool_hits / (double)gets);
    else
        snprintf(hit, sizeof hit, "-");
    fprintf(out,
            "regio: mem @%.1fs: sys %.1f MiB (limit %s), rss %.1f MiB, heap %.1f MiB in %llu objs (alloc %s), "
            "regions %.1f MiB, pools %.1f MiB (hit %s), idle %.1f MiB, released %.1f MiB, "
            "gc %llu (%.3f ms paused), %llu arenas, %llu samples\n",
            since_s, mib(ms->sys), limit, mib(ms->rss), mib(ms->heap_alloc), (unsigned long long)ms->heap_objects,
            rate, mib(ms->region_inuse), mib(ms->pool_cached), hit, mib(ms->heap_idle), mib(ms->heap_released),
            (unsigned long long)ms->num_gc, (double)ms->pause_total_ns / 1e6, (unsigned long long)ms->arenas,
            (unsigned long long)ms->profile_samples);
    fflush(out);
}

static void *monitor_main(void *arg)
{
    (void)arg;
    rg_memstats *cur = rgi_arena_malloc(sizeof *cur), *prev = rgi_arena_malloc(sizeof *prev);
    if (cur == NULL || prev == NULL) {
        rgi_arena_free(cur);
        rgi_arena_free(prev);
        return NULL;
    }
    uint64_t start = rgi_now_ns(), last = start;
    bool have_prev = false;
    pthread_mutex_lock(&mon_lock);
    while (!mon_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + mon_interval_ns;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        while (!mon_stop && pthread_cond_timedwait(&mon_cond, &mon_lock, &ts) != ETIMEDOUT)
            ;
        if (mon_stop)
            break;
        pthread_mutex_unlock(&mon_lock);
        rg_read_memstats(cur);
        uint64_t now = rgi_now_ns();
        trace_line(stderr, cur, have_prev ? prev : NULL, (double)(now - last) / 1e9, (double)(now - start) / 1e9);
        rg_memstats *t = prev;
        prev = cur;
        cur = t;
        have_prev = true;
        last = now;
        pthread_mutex_lock(&mon_lock);
    }
    pthread_mutex_unlock(&mon_lock);
    rgi_arena_free(cur);
    rgi_arena_free(prev);
    return NULL;
}

int rg_monitor_start(int64_t interval_ns)
{
    if (interval_ns < 1000000)
        return -EINVAL;
    rgi_ensure_init();
    pthread_mutex_lock(&mon_lock);
    if (mon_running) {
        pthread_mutex_unlock(&mon_lock);
        return -EALREADY;
    }
    static bool cond_ready;
    if (!cond_ready) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&mon_cond, &ca);
        pthread_condattr_destroy(&ca);
        cond_ready = true;
    }
    mon_interval_ns = interval_ns;
    mon_stop = false;
    int rc = pthread_create(&mon_thread, NULL, monitor_main, NULL);
    if (rc == 0)
        mon_running = true;
    pthread_mutex_unlock(&mon_lock);
    return -rc;
}

void rg_monitor_stop(void)
{
    pthread_mutex_lock(&mon_lock);
    if (!mon_running) {
        pthread_mutex_unlock(&mon_lock);
        return;
    }
    mon_stop = true;
    pthread_cond_signal(&mon_cond);
    pthread_t t = mon_thread;
    mon_running = false;
    pthread_mutex_unlock(&mon_lock);
    pthread_join(t, NULL);
}

/* ---------------------------------------------------------------------------
 * Leak report
 * ------------------------------------------------------------------------- */
typedef struct leak_ctx {
    FILE *out;
    long n;
    size_t bytes, blocks;
} leak_ctx;

static void region_leak(const void *r, size_t held, size_t nblocks, const void *site, void *arg)
{
    leak_ctx *lc = arg;
    lc->blocks += nblocks;
    if (lc->n < 10) {
        char name[160];
        rgi_prof_symbolize((uintptr_t)site, name, sizeof name);
        fprintf(lc->out, "regio:   region %p holding %zu bytes, created from %s\n", r, held, name);
    }
    lc->n++;
    lc->bytes += held;
}

long rg_leak_report(FILE *out)
{
    if (out == NULL)
        out = stderr;
    rgi_ensure_init();
    rg_memstats mstats; /* on the stack: a heap copy would count as live */
    rg_memstats *ms = &mstats;
    rg_read_memstats(ms);
    leak_ctx regions = {out, 0, 0, 0};
    size_t quarantined, quarantined_bytes;
    bool tracked = rgi_region_live_foreach(region_leak, &regions, &quarantined, &quarantined_bytes);
    /* Arena objects apart from regions' chunks (counted with the regions)
     * and the debug quarantine of freed regions (not leaks). */
    uint64_t objs = ms->heap_objects, obj_bytes = ms->heap_alloc;
    if (tracked) {
        uint64_t skip = regions.blocks + quarantined, skip_bytes = regions.bytes + quarantined_bytes;
        objs = objs > skip ? objs - skip : 0;
        obj_bytes = obj_bytes > skip_bytes ? obj_bytes - skip_bytes : 0;
    }
    if (regions.n > 10)
        fprintf(out, "regio:   ... and %ld more regions\n", regions.n - 10);
    rgi_pool_row rows[64];
    size_t nrows = rgi_stats_pool_rows(rows, 64);
    uint64_t pool_out = 0;
    for (size_t i = 0; i < nrows; i++)
        pool_out += rows[i].live;
    long threads = atomic_load_explicit(&rgi_gc_threads_attached, memory_order_relaxed);
    if (threads < 0)
        threads = 0;
    long total = regions.n + (long)objs + (long)pool_out + threads;
    fprintf(out,
            "regio: leak summary: %ld region%s never freed (%zu bytes)%s, %llu heap object%s never freed "
            "(%llu bytes%s), %llu pool object%s never returned, "
            "%ld thread%s attached and never detached\n",
            regions.n, regions.n == 1 ? "" : "s", regions.bytes,
            tracked ? "" : " [regions are tracked in debug_checks builds only]",
            (unsigned long long)objs, objs == 1 ? "" : "s", (unsigned long long)obj_bytes,
            tracked ? "" : ", region chunks included", (unsigned long long)pool_out, pool_out == 1 ? "" : "s",
            threads, threads == 1 ? "" : "s");
    return total;
}

#if RG_DEBUG_CHECKS
/* Prints the report only when something is left: it runs the count into a
 * scratch stream first. */
static void leak_at_exit(void)
{
    rg_monitor_stop();
    FILE *scratch = fopen("/dev/null", "w");
    long n = rg_leak_report(scratch ? scratch : stderr);
    if (scratch) {
        fclose(scratch);
        if (n > 0)
            rg_leak_report(stderr);
    }
}
#endif

void rgi_observe_init(void)
{
#if RG_DEBUG_CHECKS
    static bool registered;
    if (!registered) {
        registered = true;
        atexit(leak_at_exit);
    }
#endif
    if (rgi_opt.memtrace_s > 0)
        (void)rg_monitor_start((int64_t)rgi_opt.memtrace_s * 1000000000);
}
