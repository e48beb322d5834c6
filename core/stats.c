/* core/stats.c — rg_read_memstats: the page layer's counters, the arenas'
 * per-thread counters summed (no stop-the-world, no lock on any fast path),
 * and the process RSS from /proc/self/statm for comparison.
 */
#include "internal.h"
#include "gc_internal.h"

#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

atomic_uint_fast64_t rgi_pool_cached_bytes;
atomic_uint_fast64_t rgi_chans_live;

/* Per-pool row sources (pool/ registers its enumerators). */
#define MAX_POOL_SOURCES 8
static struct { rgi_pool_rows_fn fn; void *arg; } pool_sources[MAX_POOL_SOURCES];
static atomic_int npool_sources;
static pthread_mutex_t pool_sources_lock = PTHREAD_MUTEX_INITIALIZER;

int rgi_stats_pool_source(rgi_pool_rows_fn fn, void *arg)
{
    pthread_mutex_lock(&pool_sources_lock);
    int n = atomic_load_explicit(&npool_sources, memory_order_relaxed);
    if (n == MAX_POOL_SOURCES) {
        pthread_mutex_unlock(&pool_sources_lock);
        return -ENOSPC;
    }
    pool_sources[n].fn = fn;
    pool_sources[n].arg = arg;
    /* release: publishes the entry; pairs with the acquire in rgi_stats_pool_rows */
    atomic_store_explicit(&npool_sources, n + 1, memory_order_release);
    pthread_mutex_unlock(&pool_sources_lock);
    return 0;
}

size_t rgi_stats_pool_rows(rgi_pool_row *rows, size_t max)
{
    size_t got = 0;
    int n = atomic_load_explicit(&npool_sources, memory_order_acquire);
    for (int i = 0; i < n && got < max; i++)
        got += pool_sources[i].fn(rows + got, max - got, pool_sources[i].arg);
    return got;
}

/* /proc/self/statm stays open: a pread at offset 0 regenerates it, which
 * costs a third of open+read+close.  A forked child must not read its
 * parent's file: the atfork handler drops the descriptor there. */
static atomic_int statm_fd = -1;
static pthread_once_t statm_once = PTHREAD_ONCE_INIT;

static void statm_atfork_child(void)
{
    int fd = atomic_exchange_explicit(&statm_fd, -1, memory_order_relaxed);
    if (fd >= 0)
        close(fd);
}

static void statm_register(void)
{
    pthread_atfork(NULL, NULL, statm_atfork_child);
}

static uint64_t read_rss(void)
{
    char buf[128];
    int fd = atomic_load_explicit(&statm_fd, memory_order_relaxed);
    if (fd < 0) {
        pthread_once(&statm_once, statm_register);
        int nfd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
        if (nfd < 0)
            return 0;
        int expect = -1;
        /* relaxed: the descriptor number is the whole message */
        if (atomic_compare_exchange_strong_explicit(&statm_fd, &expect, nfd, memory_order_relaxed,
                                                    memory_order_relaxed))
            fd = nfd;
        else {
            close(nfd);
            fd = expect;
        }
    }
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    unsigned long long size, resident;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Cost: the arenas' per-thread counters summed (one pass over the arena
 * list, relaxed loads, no lock), the page layer's atomics, and one read of
 * /proc/self/statm.  perf/bench_memstats measures it with threads busy. */
void rg_read_memstats(rg_memstats *out)
{
    if (out == NULL)
        return;
    rgi_ensure_init();
    uint64_t t0 = rgi_now_ns();
    memset(out, 0, sizeof *out);
    rgi_page_stats ps;
    rgi_page_read_stats(&ps);
    rgi_arena_stats as;
    rgi_arena_read_stats(&as);
    out->sys = ps.committed;
    out->rss = read_rss();
    out->limit = ps.limit;
    out->bytes_4k = ps.by_backing[RG_BACKING_4K];
    out->bytes_thp = ps.by_backing[RG_BACKING_THP];
    out->bytes_hugetlb = ps.by_backing[RG_BACKING_HUGETLB];
    out->heap_idle = ps.idle;
    out->heap_released = ps.released_total;
    out->metadata = ps.metadata;
    out->segments = ps.segments;
    out->limit_hits = ps.limit_hits;
    out->oom_fails = ps.oom_fails;
    out->mallocs = as.mallocs;
    out->frees = as.frees;
    out->total_alloc = as.bytes_alloc;
    out->heap_objects = as.mallocs >= as.frees ? as.mallocs - as.frees : 0;
    out->heap_alloc = as.bytes_alloc >= as.bytes_freed ? as.bytes_alloc - as.bytes_freed : 0;
    out->heap_inuse = ps.committed - ps.idle - ps.metadata;
    out->region_inuse = atomic_load_explicit(&rgi_region_bytes, memory_order_relaxed);
    out->pool_cached = atomic_load_explicit(&rgi_pool_cached_bytes, memory_order_relaxed);
    out->next_gc = 0;
    rgi_gc_fill_memstats(out); /* the collector's fields (core/gc.c) */
    out->heap_sys = ps.committed - ps.metadata;
    out->arenas = as.arenas;
    out->arenas_orphaned = as.abandoned;
    rgi_pool_row rows[64];
    size_t nrows = rgi_stats_pool_rows(rows, 64);
    for (size_t i = 0; i < nrows; i++) {
        out->pool_hits += rows[i].hits;
        out->pool_misses += rows[i].misses;
    }
    out->chans = atomic_load_explicit(&rgi_chans_live, memory_order_relaxed);
    out->profile_rate = (uint64_t)rgi_prof_rate();
    out->profile_samples = atomic_load_explicit(&rgi_prof_samples, memory_order_relaxed);
    out->read_ns = rgi_now_ns() - t0;
}

/* ---------------------------------------------------------------------------
 * JSON (for /debug/vars, the dashboard and tools): one flat object, the Go
 * MemStats names where a field has a Go counterpart.
 * ------------------------------------------------------------------------- */
typedef struct jbuf {
    char *p;
    size_t cap, len;
} jbuf;

static void jput(jbuf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jput(jbuf *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = j->len < j->cap ? j->cap - j->len : 0;
    int n = vsnprintf(room ? j->p + j->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        j->len += (size_t)n;
}

int rg_memstats_json(const rg_memstats *ms, char *buf, size_t cap)
{
    if (ms == NULL || (buf == NULL && cap))
        return -EINVAL;
    jbuf j = {buf, cap, 0};
    if (cap)
        buf[0] = '\0';
#define U(name, field) jput(&j, "\"%s\":%llu,", name, (unsigned long long)ms->field)
    jput(&j, "{");
    U("Alloc", heap_alloc);
    U("TotalAlloc", total_alloc);
    U("Sys", sys);
    U("Mallocs", mallocs);
    U("Frees", frees);
    U("HeapAlloc", heap_alloc);
    U("HeapSys", heap_sys);
    U("HeapIdle", heap_idle);
    U("HeapInuse", heap_inuse);
    U("HeapReleased", heap_released);
    U("HeapObjects", heap_objects);
    U("NumGC", num_gc);
    U("PauseTotalNs", pause_total_ns);
    U("LastGC", last_gc_ns);
    U("NextGC", next_gc);
    jput(&j, "\"GCCPUFraction\":%.6f,", ms->gc_cpu_fraction);
    jput(&j, "\"PauseNs\":[");
    for (int i = 0; i < 256; i++)
        jput(&j, "%s%llu", i ? "," : "", (unsigned long long)ms->pause_ns[i]);
    jput(&j, "],");
    U("RSS", rss);
    jput(&j, "\"Limit\":%lld,", (long long)ms->limit);
    U("RegionInuse", region_inuse);
    U("PoolCached", pool_cached);
    U("PoolHits", pool_hits);
    U("PoolMisses", pool_misses);
    U("Chans", chans);
    U("BytesHugetlb", bytes_hugetlb);
    U("BytesTHP", bytes_thp);
    U("Bytes4K", bytes_4k);
    U("Metadata", metadata);
    U("Segments", segments);
    U("LimitHits", limit_hits);
    U("OOMFails", oom_fails);
    U("Arenas", arenas);
    U("ArenasOrphaned", arenas_orphaned);
    U("ProfileRate", profile_rate);
    U("ProfileSamples", profile_samples);
    U("ReadNs", read_ns);
#undef U
    rgi_pool_row rows[32];
    size_t n = rgi_stats_pool_rows(rows, 32);
    jput(&j, "\"Pools\":[");
    for (size_t i = 0; i < n; i++) {
        char name[64];
        /* names are the caller's: keep only characters that need no escaping */
        size_t k = 0;
        for (const char *c = rows[i].name ? rows[i].name : ""; *c && k < sizeof name - 1; c++)
            name[k++] = (*c >= 0x20 && *c != '"' && *c != '\\') ? *c : '_';
        name[k] = '\0';
        jput(&j, "%s{\"kind\":\"%s\",\"name\":\"%s\",\"hits\":%llu,\"misses\":%llu,\"cached\":%llu,\"live\":%llu}",
             i ? "," : "", rows[i].kind ? rows[i].kind : "pool", name, (unsigned long long)rows[i].hits,
             (unsigned long long)rows[i].misses, (unsigned long long)rows[i].cached_bytes,
             (unsigned long long)rows[i].live);
    }
    jput(&j, "]}");
    return j.len > INT32_MAX ? -EOVERFLOW : (int)j.len;
}
