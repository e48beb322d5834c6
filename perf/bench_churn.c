/* perf/bench_churn.c — a server-shaped churn on regio's collected heap: a
 * live set of small objects (a hash table, about 1 GiB by default) that
 * several threads keep replacing at a steady rate, each thread timing its
 * own operation so that any pause it suffers shows up as latency.  The same
 * workload in Go is perf/go/churn; perf/run_churn.py runs both side by side.
 *
 * Workload.  Entries of 64, 128, 192 or 256 bytes (uniform: 160 B mean),
 * one rg_type per size with two pointer fields: `next` (the hash chain) and
 * `friend` (the entry of the partner key, key ^ 1, which lives in an
 * unrelated bucket: a pointer across the heap).  Buckets are one array of
 * 2^k slots on the heap (or several arrays, --bucket-chunk), reached from a
 * root.  Keys are owned in pairs by threads ((key >> 1) % threads), so a
 * thread replaces only its own entries and re-points the partner's friend
 * to the new entry: every current entry's friend is current, and a
 * replaced entry is garbage at once (no stale retention).  Chains are
 * shared (a bucket holds keys of every thread): writers take one of 4096
 * striped mutexes; readers walk chains without locks (acquire loads against
 * rg_write's release store; a replaced entry a reader still holds stays
 * valid until that reader's next safepoint, rule 2 of regio/gc.h).
 *
 * One operation = replace one of the thread's own entries (allocate, fill,
 * link, unlink the old one) + look up --lookups random keys of any thread,
 * checking each found entry and its friend (key, check word, last payload
 * byte: a use-after-free would show here) + rg_safepoint().  A thread runs
 * at --rate operations per second (0 = as fast as it can), sleeping parked
 * (rg_park/rg_unpark) when more than 1 ms ahead of its schedule; it times
 * every operation (CLOCK_MONOTONIC, from before the allocation to after the
 * safepoint), every rg_new (with the fill) and every rg_safepoint() call alone, into log-linear
 * histograms (32 sub-buckets per power of two: within 3%).  On a shared
 * 2-core machine an op can be slow because the OS ran something else, so
 * each op over 20 us is classified by the thread's context switches
 * (getrusage(RUSAGE_THREAD), read after slow ops and after sleeps, since it
 * costs microseconds): "blocked" (a voluntary switch: the thread waited on a
 * lock or futex, e.g. inside regio), "preempted" (only involuntary ones: the
 * OS took the CPU, from another process or from the collector's thread), or
 * "clean" (no switch: the time was the op's own work, e.g. a mark assist or
 * a safepoint step).  The "clean" histogram is what regio's code path made
 * a thread wait; the full one is what a user of this machine would see.
 *
 * Limit and monitoring.  The hard limit is --limit-factor (1.25) times the
 * nominal live set (entries + bucket array), set before the first
 * allocation.  A monitor thread (not attached to the collector) samples
 * /proc/self/statm every 2 ms and counts samples above the limit, and reads
 * rg_memstats and rg_gc_read_pauses every 50 ms to collect each cycle's
 * pause from the PauseNs ring (a cycle's pause is its longest per-thread
 * handshake acknowledgement), the same cycle's longest "clean" ack (no
 * context switch inside it: the collector's own work, not the OS's
 * preemption) and the peak committed bytes; the summary gives both, and
 * how many acks in the window were preempted or blocked.  Peak RSS is also read
 * from getrusage (VmHWM) at the end.
 *
 * GC CPU.  Three figures: memstats' gc_cpu_fraction over the churn window
 * (regio's definition: the collector thread's CPU per wall second; divided
 * here by the CPUs the process may use, Go's denominator, as gc_cpu), the
 * process CPU per operation, and the CPU no mutator thread spent
 * (process CPU - mutator threads' CPU - the monitor's, over wall x CPUs).
 * --gc-off runs the same operations with the collector off and no limit:
 * the runner subtracts it to get the whole cost of collecting.
 *
 * Usage: bench_churn [--live BYTES] [--threads N] [--secs S] [--rate OPS]
 *        [--lookups N] [--limit-factor F] [--bucket-chunk SLOTS] [--gc-off]
 *        [--hist FILE] [--seed N] [--trace-slow US] [--label NAME]
 * --trace-slow US prints each op slower than US microseconds to stderr with
 * its time on regio's clock, to line up with RG_DEBUG=gctrace=1's cycles.
 * BYTES takes K/M/G suffixes (powers of 1024).  Prints one `thread` line
 * per thread and one `summary` line (key=value); exits 1 if an allocation
 * failed or a lookup found a missing or damaged entry, so a smoke run can
 * fail. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "regio.h"

/* ---------------------------------------------------------------------------
 * Clock and histograms
 * ------------------------------------------------------------------------- */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define HSUB 32 /* sub-buckets per power of two */
#define HBUCKETS (64 * HSUB)

typedef struct hist {
    uint64_t n, max, b[HBUCKETS];
} hist;

static unsigned hidx(uint64_t v)
{
    if (v < HSUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 5 */
    return (e - 4) * HSUB + (unsigned)((v >> (e - 5)) & (HSUB - 1));
}

/* The largest value that falls in bucket i. */
static uint64_t hupper(unsigned i)
{
    if (i < HSUB)
        return i;
    unsigned e = i / HSUB + 4, sub = i % HSUB;
    return (((uint64_t)HSUB + sub) << (e - 5)) + ((uint64_t)1 << (e - 5)) - 1;
}

static void hadd(hist *h, uint64_t v)
{
    h->b[hidx(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

static void hmerge(hist *into, const hist *h)
{
    for (unsigned i = 0; i < HBUCKETS; i++)
        into->b[i] += h->b[i];
    into->n += h->n;
    if (h->max > into->max)
        into->max = h->max;
}

/* Value at quantile q: the upper edge of the bucket holding that rank
 * (never above the exact maximum). */
static uint64_t hq(const hist *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->n);
    if (rank >= h->n)
        rank = h->n - 1;
    uint64_t c = 0;
    for (unsigned i = 0; i < HBUCKETS; i++) {
        c += h->b[i];
        if (c > rank)
            return hupper(i) < h->max ? hupper(i) : h->max;
    }
    return h->max;
}

/* One row per non-empty bucket: value_ns count (for the runner's plot). */
static void hdump(FILE *f, const char *sys, int nthreads, const char *who, const char *kind, const hist *h)
{
    for (unsigned i = 0; i < HBUCKETS; i++)
        if (h->b[i])
            fprintf(f, "%s\t%d\t%s\t%s\t%llu\t%llu\n", sys, nthreads, who, kind,
                    (unsigned long long)(hupper(i) < h->max ? hupper(i) : h->max), (unsigned long long)h->b[i]);
}

/* ---------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------- */
typedef struct entry {
    struct entry *next;   /* hash chain */
    struct entry *friend; /* the current entry of key ^ 1 */
    uint64_t key;
    uint32_t size;
    uint32_t check;
    unsigned char payload[]; /* size - 24 bytes, filled from the key */
} entry;

#define HDR_BYTES offsetof(entry, payload)
#define NSIZES 4
static const size_t entry_offs[] = {offsetof(entry, next), offsetof(entry, friend)};
static const rg_type entry_t[NSIZES] = {
    {"entry64", 64, entry_offs, 2, NULL},
    {"entry128", 128, entry_offs, 2, NULL},
    {"entry192", 192, entry_offs, 2, NULL},
    {"entry256", 256, entry_offs, 2, NULL},
};
static const size_t slot_offs[] = {0};
static const rg_type slot_t = {"bucket", sizeof(void *), slot_offs, 1, NULL};

#define NSTRIPES 4096
static pthread_mutex_t stripes[NSTRIPES];

static void **g_dir;       /* root: the bucket array, or the array of bucket arrays */
static unsigned g_bits;    /* log2 of the bucket count */
static unsigned g_chunk_bits; /* log2 of slots per bucket array; == g_bits: one array */
static uint64_t g_nkeys;   /* keys 0 .. g_nkeys-1, g_nkeys = 2 * pairs */
static int g_threads;

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static inline uint64_t bucket_of(uint64_t k) { return mix64(k) >> (64 - g_bits); }
static inline uint32_t check_of(uint64_t k, uint32_t size) { return (uint32_t)(mix64(k ^ 0x5bd1e995u) >> 32) ^ size; }
static inline unsigned char byte_of(uint64_t k) { return (unsigned char)(k * 131u + 7u); }

static inline void *load_acq(void *const *slot) { return __atomic_load_n((void **)slot, __ATOMIC_ACQUIRE); }

/* The array holding bucket b and the slot in it. */
static inline void **bucket_slot(uint64_t b, void **arr_out)
{
    void **arr;
    if (g_chunk_bits == g_bits)
        arr = g_dir;
    else
        arr = load_acq(&g_dir[b >> g_chunk_bits]);
    *arr_out = arr;
    return &arr[b & (((uint64_t)1 << g_chunk_bits) - 1)];
}

static entry *find(uint64_t k)
{
    void *arr;
    void **slot = bucket_slot(bucket_of(k), &arr);
    entry *e = load_acq(slot);
    while (e && e->key != k)
        e = load_acq((void **)&e->next);
    return e;
}

static bool entry_ok(const entry *e, uint64_t k)
{
    return e->key == k && e->size >= 64 && e->size <= 256 && e->check == check_of(k, e->size) &&
           e->payload[e->size - HDR_BYTES - 1] == byte_of(k);
}

static entry *new_entry(uint64_t k, unsigned c)
{
    entry *e = rg_new(&entry_t[c]);
    if (e == NULL)
        return NULL;
    e->key = k;
    e->size = (uint32_t)entry_t[c].size;
    e->check = check_of(k, e->size);
    memset(e->payload, byte_of(k), e->size - HDR_BYTES);
    return e;
}

/* Puts e in the table in place of the entry with its key (or at the head of
 * its chain).  Returns the entry it replaced, or NULL. */
static entry *insert(entry *e)
{
    uint64_t b = bucket_of(e->key);
    pthread_mutex_t *m = &stripes[b & (NSTRIPES - 1)];
    pthread_mutex_lock(m);
    void *obj;
    void **slot = bucket_slot(b, &obj);
    entry *x = *slot;
    while (x && x->key != e->key) {
        obj = x;
        slot = (void **)&x->next;
        x = x->next;
    }
    if (x) {
        rg_write(e, &e->next, x->next);
    } else {
        void *arr;
        slot = bucket_slot(b, &arr);
        obj = arr;
        rg_write(e, &e->next, *slot);
    }
    rg_write(obj, slot, e); /* publishes e (release) */
    pthread_mutex_unlock(m);
    return x;
}

/* ---------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------- */
typedef struct worker {
    pthread_t th;
    int id;
    uint64_t rng;
    uint64_t ops, fails, missing, damaged, late, replaced;
    uint64_t unpark_max, cpu;
    uint64_t slow_clean, slow_preempted, slow_blocked; /* ops over SLOW_NS, by class */
    long nvcsw, nivcsw;                                 /* context switches at the last read */
    hist lat, sp, clean, alloc;
} worker;

/* Ops slower than this are classified by the context switches the thread
 * had since the counters were last read (getrusage costs microseconds here,
 * so it is read only after a slow op and after every sleep). */
#define SLOW_NS 20000u

static void read_switches(long *v, long *iv)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    *v = ru.ru_nvcsw;
    *iv = ru.ru_nivcsw;
}

static atomic_int g_stop;
static uint64_t g_trace_slow_ns; /* --trace-slow: print ops slower than this */
static uint64_t g_t_init;        /* ~ regio's start: gctrace's @ times */
static double g_rate;
static int g_lookups;

static inline uint64_t rnd(worker *w)
{
    /* splitmix64 */
    uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void op(worker *w)
{
    uint64_t r = rnd(w);
    uint64_t pairs_mine = g_nkeys / 2 / (uint64_t)g_threads;
    uint64_t pair = (r % pairs_mine) * (uint64_t)g_threads + (uint64_t)w->id;
    uint64_t k = 2 * pair + ((r >> 62) & 1);
    unsigned c = (unsigned)(r >> 60) & 3;
    uint64_t a0 = now_ns();
    entry *e = new_entry(k, c);
    hadd(&w->alloc, now_ns() - a0);
    if (e == NULL) {
        w->fails++;
        return;
    }
    entry *f = find(k ^ 1); /* ours: nobody else replaces it */
    rg_write(e, &e->friend, f);
    if (insert(e))
        w->replaced++;
    if (f)
        rg_write(f, &f->friend, e);
    for (int i = 0; i < g_lookups; i++) {
        uint64_t q = rnd(w) % g_nkeys;
        entry *x = find(q);
        if (x == NULL) {
            w->missing++;
            continue;
        }
        entry *y = load_acq((void **)&x->friend);
        if (!entry_ok(x, q) || (y && !entry_ok(y, q ^ 1)))
            w->damaged++;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    rg_thread_attach();
    uint64_t cpu0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t interval = g_rate > 0 ? (uint64_t)(1e9 / g_rate) : 0;
    uint64_t next = now_ns();
    read_switches(&w->nvcsw, &w->nivcsw);
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        uint64_t t0 = now_ns();
        op(w);
        uint64_t t1 = now_ns();
        rg_safepoint();
        uint64_t t2 = now_ns();
        hadd(&w->lat, t2 - t0);
        hadd(&w->sp, t2 - t1);
        w->ops++;
        if (t2 - t0 > SLOW_NS) {
            long v, iv;
            read_switches(&v, &iv);
            const char *cls = "clean";
            if (v != w->nvcsw) {
                w->slow_blocked++;
                cls = "blocked";
            } else if (iv != w->nivcsw) {
                w->slow_preempted++;
                cls = "preempted";
            } else {
                w->slow_clean++;
                hadd(&w->clean, t2 - t0);
            }
            if (g_trace_slow_ns && t2 - t0 > g_trace_slow_ns)
                fprintf(stderr, "slow op: thread %d @%.3fs (regio's clock) %.3f ms, safepoint %.3f ms, %s\n", w->id,
                        (double)(t0 - g_t_init) / 1e9, (double)(t2 - t0) / 1e6, (double)(t2 - t1) / 1e6, cls);
            w->nvcsw = v;
            w->nivcsw = iv;
        } else {
            hadd(&w->clean, t2 - t0);
        }
        if (interval == 0)
            continue;
        next += interval;
        if (next > t2 + 1000000) {
            /* ahead by more than 1 ms: sleep parked, so the collector never
             * waits for us */
            struct timespec ts = {(time_t)((next - t2) / 1000000000u), (long)((next - t2) % 1000000000u)};
            rg_park();
            nanosleep(&ts, NULL);
            uint64_t u0 = now_ns();
            rg_unpark();
            uint64_t u = now_ns() - u0;
            if (u > w->unpark_max)
                w->unpark_max = u;
            read_switches(&w->nvcsw, &w->nivcsw);
        } else if (t2 > next + 10000000) {
            next = t2; /* 10 ms behind: do not burst to catch up */
            w->late++;
        }
    }
    w->cpu = cpu_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    rg_thread_detach();
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Monitor
 * ------------------------------------------------------------------------- */
typedef struct monitor {
    pthread_t th;
    int64_t limit;
    atomic_int stop;
    atomic_uint_fast64_t first_cycle; /* pauses of cycles from here on are kept; UINT64_MAX = none yet */
    uint64_t rss_max, rss_samples, rss_over, sys_max, cpu;
    uint64_t seen_gc, lost;
    uint64_t *pauses, *clean; /* per cycle: longest ack, longest ack with no context switch */
    size_t npauses, cap;
} monitor;

static uint64_t read_rss(int fd)
{
    char buf[128];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    unsigned long long size, res;
    if (sscanf(buf, "%llu %llu", &size, &res) != 2)
        return 0;
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void monitor_pauses(monitor *m, const rg_gc_pauses *gp)
{
    uint64_t from = atomic_load(&m->first_cycle);
    if (from == UINT64_MAX)
        return;
    if (m->seen_gc < from)
        m->seen_gc = from;
    if (gp->num_gc > m->seen_gc + 256) {
        m->lost += gp->num_gc - 256 - m->seen_gc;
        m->seen_gc = gp->num_gc - 256;
    }
    for (; m->seen_gc < gp->num_gc; m->seen_gc++) {
        if (m->npauses == m->cap) {
            m->cap = m->cap ? 2 * m->cap : 1024;
            m->pauses = realloc(m->pauses, m->cap * sizeof *m->pauses);
            m->clean = realloc(m->clean, m->cap * sizeof *m->clean);
            if (m->pauses == NULL || m->clean == NULL) {
                perror("realloc");
                exit(2);
            }
        }
        m->clean[m->npauses] = gp->clean_ns[m->seen_gc % 256];
        m->pauses[m->npauses++] = gp->pause_ns[m->seen_gc % 256];
    }
}

static void *monitor_main(void *arg)
{
    monitor *m = arg;
    uint64_t cpu0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    rg_memstats ms;
    for (unsigned i = 0;; i++) {
        bool last = atomic_load(&m->stop);
        uint64_t rss = fd >= 0 ? read_rss(fd) : 0;
        m->rss_samples++;
        if (rss > m->rss_max)
            m->rss_max = rss;
        if (m->limit > 0 && rss > (uint64_t)m->limit)
            m->rss_over++;
        if (i % 25 == 0 || last) {
            rg_read_memstats(&ms);
            if (ms.sys > m->sys_max)
                m->sys_max = ms.sys;
            rg_gc_pauses gp;
            rg_gc_read_pauses(&gp);
            monitor_pauses(m, &gp);
        }
        if (last)
            break;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    if (fd >= 0)
        close(fd);
    m->cpu = cpu_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------------------------
 * Main
 * ------------------------------------------------------------------------- */
static uint64_t parse_bytes(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
    default: break;
    }
    return (uint64_t)v;
}

static uint64_t cpu_process(void)
{
    return cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
}

int main(int argc, char **argv)
{
    uint64_t live = (uint64_t)1 << 30;
    double secs = 20, limit_factor = 1.25;
    int threads = 2;
    unsigned chunk_slots = 0;
    bool gc_off = false;
    const char *hist_path = NULL, *label = NULL;
    uint64_t seed = 42;
    g_rate = 100000;
    g_lookups = 4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--gc-off")) {
            gc_off = true;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "bench_churn: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--live"))
            live = parse_bytes(v);
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--secs"))
            secs = atof(v);
        else if (!strcmp(a, "--rate"))
            g_rate = atof(v);
        else if (!strcmp(a, "--lookups"))
            g_lookups = atoi(v);
        else if (!strcmp(a, "--limit-factor"))
            limit_factor = atof(v);
        else if (!strcmp(a, "--bucket-chunk"))
            chunk_slots = (unsigned)atoi(v);
        else if (!strcmp(a, "--hist"))
            hist_path = v;
        else if (!strcmp(a, "--label"))
            label = v;
        else if (!strcmp(a, "--trace-slow"))
            g_trace_slow_ns = (uint64_t)(atof(v) * 1e3);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 0);
        else {
            fprintf(stderr, "bench_churn: unknown option %s\n", a);
            return 2;
        }
    }
    if (threads < 1 || threads > 64 || live < ((uint64_t)1 << 20) || secs <= 0) {
        fprintf(stderr, "bench_churn: bad arguments\n");
        return 2;
    }
    g_threads = threads;

    /* Size: N entries of 160 B mean plus 2^bits bucket slots = live. */
    uint64_t n0 = live / 168;
    unsigned bits = 1;
    while (((uint64_t)1 << bits) < n0)
        bits++;
    uint64_t nb = (uint64_t)1 << bits;
    uint64_t nkeys = (live - nb * sizeof(void *)) / 160;
    uint64_t pairs = nkeys / 2 / (uint64_t)threads * (uint64_t)threads;
    g_nkeys = 2 * pairs;
    g_bits = bits;
    g_chunk_bits = bits;
    if (chunk_slots) {
        unsigned cb = 0;
        while (((uint64_t)2 << cb) <= chunk_slots)
            cb++;
        if (cb < bits)
            g_chunk_bits = cb;
    }
    int64_t limit = gc_off ? -1 : (int64_t)((double)live * limit_factor);
    for (int i = 0; i < NSTRIPES; i++)
        pthread_mutex_init(&stripes[i], NULL);

    /* regio's clock for gc_cpu_fraction starts at the collector's init,
     * which the first rg_new does: t_init is within microseconds of it */
    /* the process before regio holds anything: binary, libc, stacks */
    int sfd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    uint64_t rss_base = sfd >= 0 ? read_rss(sfd) : 0;
    if (sfd >= 0)
        close(sfd);
    if (gc_off)
        rg_set_gc_percent(RG_GC_OFF);
    else if (limit_factor > 0)
        rg_set_memory_limit(limit);
    rg_thread_attach();
    uint64_t t_init = now_ns();
    g_t_init = t_init;
    g_dir = NULL;
    rg_root *root = rg_root_add(&g_dir);
    if (root == NULL) {
        perror("rg_root_add");
        return 2;
    }
    if (g_chunk_bits == g_bits) {
        g_dir = rg_new_array(&slot_t, nb);
    } else {
        g_dir = rg_new_array(&slot_t, nb >> g_chunk_bits);
        for (uint64_t i = 0; g_dir && i < (nb >> g_chunk_bits); i++) {
            void **ch = rg_new_array(&slot_t, (size_t)1 << g_chunk_bits);
            if (ch == NULL) {
                perror("rg_new_array (bucket chunk)");
                return 1;
            }
            rg_write(g_dir, &g_dir[i], ch);
            if (i % 64 == 0)
                rg_safepoint();
        }
    }
    if (g_dir == NULL) {
        perror("rg_new_array (buckets)");
        return 1;
    }

    monitor mon = {.limit = limit};
    atomic_store(&mon.first_cycle, UINT64_MAX);
    pthread_create(&mon.th, NULL, monitor_main, &mon);

    /* Build: pairs (2p, 2p+1), each the other's friend. */
    uint64_t tb0 = now_ns(), rng = seed, build_fails = 0, built = 0;
    for (uint64_t p = 0; p < pairs; p++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        entry *a = new_entry(2 * p, (unsigned)(rng >> 60) & 3);
        entry *b = new_entry(2 * p + 1, (unsigned)(rng >> 56) & 3);
        if (a == NULL || b == NULL) {
            build_fails++;
            break;
        }
        built += a->size + b->size;
        rg_write(a, &a->friend, b);
        rg_write(b, &b->friend, a);
        insert(a);
        insert(b);
        if (p % 256 == 0)
            rg_safepoint();
    }
    double build_s = (double)(now_ns() - tb0) / 1e9;
    if (build_fails) {
        int err = errno;
        rg_memstats fm;
        rg_read_memstats(&fm);
        fprintf(stderr,
                "bench_churn: allocation failed while building (%s) after %.1f MiB of entries: sys %.1f MiB, "
                "heap_alloc %.1f, heap_inuse %.1f, idle %.1f, metadata %.1f MiB, %llu segments, %llu cycles, "
                "limit %.1f MiB\n",
                strerror(err), (double)built / 1048576.0, fm.sys / 1048576.0, fm.heap_alloc / 1048576.0,
                fm.heap_inuse / 1048576.0, fm.heap_idle / 1048576.0, fm.metadata / 1048576.0,
                (unsigned long long)fm.segments, (unsigned long long)fm.num_gc, (double)limit / 1048576.0);
        atomic_store(&mon.stop, 1);
        pthread_join(mon.th, NULL);
        return 1;
    }
    rg_thread_detach(); /* the root stays; the collector scans it */

    /* Churn. */
    rg_memstats ms0, ms1;
    static rg_gc_pauses gp0, gp1;
    rg_gc_read_pauses(&gp0);
    rg_read_memstats(&ms0);
    atomic_store(&mon.first_cycle, ms0.num_gc);
    worker *w = calloc((size_t)threads, sizeof *w);
    if (w == NULL) {
        perror("calloc");
        return 2;
    }
    uint64_t t0 = now_ns(), pc0 = cpu_process();
    for (int i = 0; i < threads; i++) {
        w[i].id = i;
        w[i].rng = seed * 1000003u + (uint64_t)i * 0x632be59bd9b4e019ull + 1;
        pthread_create(&w[i].th, NULL, worker_main, &w[i]);
    }
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    atomic_store(&g_stop, 1);
    for (int i = 0; i < threads; i++)
        pthread_join(w[i].th, NULL);
    uint64_t t1 = now_ns(), pc1 = cpu_process();
    rg_read_memstats(&ms1);
    rg_gc_read_pauses(&gp1);
    atomic_store(&mon.stop, 1);
    pthread_join(mon.th, NULL);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    /* Report. */
    double wall = (double)(t1 - t0) / 1e9;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t ops = 0, fails = 0, missing = 0, damaged = 0, mut_cpu = 0;
    hist *all = calloc(3, sizeof *all);
    uint64_t slow[3] = {0, 0, 0};
    const char *sys = label ? label : gc_off ? "regio-gcoff" : "regio";
    FILE *hf = hist_path ? fopen(hist_path, "a") : NULL;
    for (int i = 0; i < threads; i++) {
        worker *x = &w[i];
        printf("thread %s threads=%d id=%d ops=%llu ops_per_s=%.0f lat_p50_us=%.2f lat_p99_us=%.2f lat_p999_us=%.2f "
               "lat_max_us=%.1f clean_p99_us=%.2f clean_p999_us=%.2f clean_max_us=%.1f slow_clean=%llu "
               "slow_preempted=%llu slow_blocked=%llu sp_p50_us=%.2f sp_p99_us=%.2f sp_max_us=%.1f "
               "alloc_p99_us=%.2f alloc_p999_us=%.2f alloc_max_us=%.1f unpark_max_us=%.1f late=%llu cpu_s=%.3f\n",
               sys, threads, i, (unsigned long long)x->ops, (double)x->ops / wall, hq(&x->lat, 0.5) / 1e3,
               hq(&x->lat, 0.99) / 1e3, hq(&x->lat, 0.999) / 1e3, x->lat.max / 1e3, hq(&x->clean, 0.99) / 1e3,
               hq(&x->clean, 0.999) / 1e3, x->clean.max / 1e3, (unsigned long long)x->slow_clean,
               (unsigned long long)x->slow_preempted, (unsigned long long)x->slow_blocked, hq(&x->sp, 0.5) / 1e3,
               hq(&x->sp, 0.99) / 1e3, x->sp.max / 1e3, hq(&x->alloc, 0.99) / 1e3, hq(&x->alloc, 0.999) / 1e3,
               x->alloc.max / 1e3, x->unpark_max / 1e3, (unsigned long long)x->late,
               x->cpu / 1e9);
        ops += x->ops;
        fails += x->fails;
        missing += x->missing;
        damaged += x->damaged;
        mut_cpu += x->cpu;
        hmerge(&all[0], &x->lat);
        hmerge(&all[1], &x->sp);
        hmerge(&all[2], &x->clean);
        slow[0] += x->slow_clean;
        slow[1] += x->slow_preempted;
        slow[2] += x->slow_blocked;
        if (hf) {
            char who[16];
            snprintf(who, sizeof who, "t%d", i);
            hdump(hf, sys, threads, who, "op", &x->lat);
            hdump(hf, sys, threads, who, "safepoint", &x->sp);
            hdump(hf, sys, threads, who, "op_clean", &x->clean);
            hdump(hf, sys, threads, who, "alloc", &x->alloc);
        }
    }
    qsort(mon.pauses, mon.npauses, sizeof *mon.pauses, cmp_u64);
    uint64_t pmax = 0, p50 = 0, p99 = 0;
    if (mon.npauses) {
        pmax = mon.pauses[mon.npauses - 1];
        p50 = mon.pauses[mon.npauses / 2];
        p99 = mon.pauses[(mon.npauses * 99) / 100];
    }
    /* the same cycles' longest clean acks (no context switch inside) */
    qsort(mon.clean, mon.npauses, sizeof *mon.clean, cmp_u64);
    uint64_t cmax = 0, c50 = 0;
    if (mon.npauses) {
        cmax = mon.clean[mon.npauses - 1];
        c50 = mon.clean[mon.npauses / 2];
    }
    if (hf) {
        for (size_t i = 0; i < mon.npauses; i++)
            fprintf(hf, "%s\t%d\tall\tcycle_pause\t%llu\t1\n", sys, threads, (unsigned long long)mon.pauses[i]);
        fclose(hf);
    }
    /* memstats' gc_cpu_fraction is collector CPU / wall since init: take
     * the churn window's share out of the two readings */
    double s0 = (double)(t0 - t_init), s1 = (double)(t1 - t_init);
    double gc_cpu_wall = (ms1.gc_cpu_fraction * s1 - ms0.gc_cpu_fraction * s0) / (s1 - s0);
    double proc_cpu = (double)(pc1 - pc0) / 1e9;
    double other = (proc_cpu - (double)mut_cpu / 1e9 - (double)mon.cpu / 1e9) / (wall * (double)ncpu);
    printf("summary %s threads=%d live_mib=%.0f keys=%llu buckets=%llu bucket_arrays=%llu limit_mib=%.0f secs=%.1f "
           "build_s=%.2f rate=%.0f ops=%llu ops_per_s=%.0f cycles=%llu pauses_seen=%zu pauses_lost=%llu "
           "pause_p50_us=%.1f pause_p99_us=%.1f pause_max_us=%.1f pause_clean_p50_us=%.1f pause_clean_max_us=%.1f "
           "acks=%llu acks_preempted=%llu acks_blocked=%llu lat_p50_us=%.2f lat_p99_us=%.2f "
           "lat_p999_us=%.2f lat_max_us=%.1f clean_p999_us=%.2f clean_max_us=%.1f slow_clean=%llu slow_preempted=%llu "
           "slow_blocked=%llu sp_max_us=%.1f gc_cpu_memstats=%.4f gc_cpu=%.4f nonmutator_cpu=%.4f "
           "proc_cpu_s=%.2f cpu_us_per_op=%.3f rss_base_mib=%.1f peak_rss_mib=%.1f rss_max_sampled_mib=%.1f rss_samples=%llu "
           "rss_over_limit=%llu sys_max_mib=%.1f limit_hits=%llu oom_fails=%llu alloc_fails=%llu missing=%llu "
           "damaged=%llu\n",
           sys, threads, live / 1048576.0, (unsigned long long)g_nkeys, (unsigned long long)nb,
           (unsigned long long)(g_chunk_bits == g_bits ? 1 : nb >> g_chunk_bits), limit > 0 ? limit / 1048576.0 : -1.0,
           wall, build_s, g_rate, (unsigned long long)ops, (double)ops / wall,
           (unsigned long long)(ms1.num_gc - ms0.num_gc), mon.npauses, (unsigned long long)mon.lost, p50 / 1e3,
           p99 / 1e3, pmax / 1e3, c50 / 1e3, cmax / 1e3, (unsigned long long)(gp1.acks - gp0.acks),
           (unsigned long long)(gp1.acks_preempted - gp0.acks_preempted),
           (unsigned long long)(gp1.acks_blocked - gp0.acks_blocked), hq(&all[0], 0.5) / 1e3, hq(&all[0], 0.99) / 1e3, hq(&all[0], 0.999) / 1e3,
           all[0].max / 1e3, hq(&all[2], 0.999) / 1e3, all[2].max / 1e3, (unsigned long long)slow[0],
           (unsigned long long)slow[1], (unsigned long long)slow[2], all[1].max / 1e3, gc_cpu_wall, gc_cpu_wall / (double)ncpu, other, proc_cpu,
           ops ? proc_cpu * 1e6 / (double)ops : 0, rss_base / 1048576.0, ru.ru_maxrss / 1024.0, mon.rss_max / 1048576.0,
           (unsigned long long)mon.rss_samples, (unsigned long long)mon.rss_over, mon.sys_max / 1048576.0,
           (unsigned long long)(ms1.limit_hits - ms0.limit_hits), (unsigned long long)ms1.oom_fails,
           (unsigned long long)fails, (unsigned long long)missing, (unsigned long long)damaged);
    bool over = limit > 0 && (mon.rss_over || (uint64_t)ru.ru_maxrss * 1024 > (uint64_t)limit);
    if (over)
        fprintf(stderr, "bench_churn: RSS went above the limit\n");
    rg_root_remove(root);
    free(all);
    free(w);
    free(mon.pauses);
    free(mon.clean);
    return (fails || missing || damaged) ? 1 : 0;
}
