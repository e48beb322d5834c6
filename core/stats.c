/* core/stats.c — rg_read_memstats: the page layer's counters, the arenas'
 * per-thread counters summed (no stop-the-world, no lock on any fast path),
 * and the process RSS from /proc/self/statm for comparison.
 */
#include "internal.h"

#include <fcntl.h>
#include <unistd.h>

atomic_uint_fast64_t rgi_pool_cached_bytes;

static uint64_t read_rss(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    unsigned long long size, resident;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

void rg_read_memstats(rg_memstats *out)
{
    if (out == NULL)
        return;
    rgi_ensure_init();
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
}
