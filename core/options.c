/* core/options.c — the one table of options, lazy init, diagnostics.
 *
 * Every option is listed here once: its environment variable, its API
 * setter and its default.  A bad value warns on stderr and is ignored
 * (the default stays), it never aborts.
 *
 *   RG_MEMLIMIT    rg_set_memory_limit  off     "512MiB", "4GiB", "off", bytes
 *   RG_GC_PERCENT  rg_set_gc_percent    100     integer, "off" = -1
 *   RG_HUGEPAGES   rg_config.hugepages  explicit if reserved, else thp
 *   RG_RESERVE     rg_config.reserve_bytes  256GiB  address space reserved
 *   RG_SCAVENGE_DELAY rg_config.scavenge_delay_ns  1s   "250ms", "2s", "off"
 *   RG_DEBUG       rg_config.debug      ""      gctrace=1,gcstress=1,
 *                                               scavtrace=1,poison=1 (poison=0:
 *                                               off under Valgrind too),
 *                                               hugepages=0,memtrace=30s
 *   RG_MEMPROFILERATE rg_set_memprofile_rate 512KiB  heap profile sampling
 *                                               rate in bytes, 0 = off
 *                                               (read in core/profile.c)
 *   RG_GC_THREADS  rg_set_gc_threads    1 (CPUs/4 from 8 CPUs)  background
 *                                               mark threads, 0..64; 0 = only
 *                                               assists and safepoints
 *                                               (read in core/gc.c)
 *   RG_GC_ASSIST   (environment only)   auto    "paced": allocation assists
 *                                               sized so marking ends near
 *                                               the goal (Go's pacer);
 *                                               "light": twice the bytes
 *                                               allocated; auto: paced
 *                                               without a memory limit
 *   RG_GC_GEN      (environment only)   1       "0": no minor cycles, no
 *                                               cards (regio/gc.h rule 9)
 *                                               (read in core/gc.c)
 */
#include "internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#if RGI_ASAN
#include <sanitizer/asan_interface.h>
#endif
#include <valgrind/memcheck.h>

rgi_options rgi_opt = {
    .hugepages = RG_HUGEPAGES_DEFAULT,
    .reserve_bytes = (size_t)256 << 30,
    .scavenge_delay_ns = 1000000000LL,
    .gc_percent = 100,
};
atomic_int rgi_inited;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

uint64_t rgi_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int rgi_cond_wait_ns(pthread_cond_t *cv, pthread_mutex_t *lock, uint64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* the clock pthread_cond_timedwait uses by default */
    ts.tv_sec += (time_t)(ns / 1000000000ull);
    ts.tv_nsec += (long)(ns % 1000000000ull);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(cv, lock, &ts);
}

void rgi_corrupt(const char *fmt, ...)
{
    va_list ap;
    fputs("regio: heap corruption detected: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void rgi_diag(const char *call, const char *fmt, ...)
{
    va_list ap;
    int saved = errno;
    fprintf(stderr, "regio: %s: ", call);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    errno = saved;
}

static void warn_bad(const char *var, const char *val)
{
    fprintf(stderr, "regio: ignoring %s=\"%s\": not understood\n", var, val);
}

/* Go's GOMEMLIMIT syntax: an integer with an optional B, KiB, MiB, GiB, TiB
 * suffix (also KB/MB/GB/TB as powers of ten, and k/m/g as binary shorthands). */
int rgi_parse_bytes(const char *s, int64_t *out)
{
    static const struct { const char *sfx; uint64_t mul; } units[] = {
        {"", 1}, {"B", 1},
        {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40},
        {"KB", 1000ull}, {"MB", 1000000ull}, {"GB", 1000000000ull}, {"TB", 1000000000000ull},
        {"k", 1ull << 10}, {"K", 1ull << 10}, {"m", 1ull << 20}, {"M", 1ull << 20},
        {"g", 1ull << 30}, {"G", 1ull << 30},
    };
    if (s == NULL || *s == '\0')
        return -EINVAL;
    if (strcmp(s, "off") == 0 || strcmp(s, "none") == 0) {
        *out = RG_MEMLIMIT_OFF;
        return 0;
    }
    const char *p = s;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p++ - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].sfx) == 0) {
            if (units[i].mul != 1 && v > (uint64_t)INT64_MAX / units[i].mul)
                return -EINVAL;
            v *= units[i].mul;
            if (v > (uint64_t)INT64_MAX)
                return -EINVAL;
            *out = (int64_t)v;
            return 0;
        }
    }
    return -EINVAL;
}

/* "250ms", "2s", "1m", plain integer = seconds; "off" = -1. */
static int parse_duration_ns(const char *s, int64_t *out)
{
    char *end;
    if (strcmp(s, "off") == 0 || strcmp(s, "never") == 0) {
        *out = -1;
        return 0;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    uint64_t mul;
    if (*end == '\0' || strcmp(end, "s") == 0) mul = 1000000000ull;
    else if (strcmp(end, "ms") == 0) mul = 1000000ull;
    else if (strcmp(end, "us") == 0) mul = 1000ull;
    else if (strcmp(end, "ns") == 0) mul = 1ull;
    else if (strcmp(end, "m") == 0) mul = 60000000000ull;
    else return -EINVAL;
    if (v > (uint64_t)INT64_MAX / mul)
        return -EINVAL;
    *out = (int64_t)(v * mul);
    return 0;
}

int rgi_parse_debug(const char *s)
{
    int rc = 0;
    char buf[256];
    if (s == NULL)
        return 0;
    if (strlen(s) >= sizeof buf)
        return -EINVAL;
    strcpy(buf, s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        const char *val = eq ? eq + 1 : "1";
        if (eq)
            *eq = '\0';
        int64_t ns;
        int iv = atoi(val);
        if (strcmp(tok, "gctrace") == 0) rgi_opt.gctrace = iv;
        else if (strcmp(tok, "gcstress") == 0) rgi_opt.gcstress = iv;
        else if (strcmp(tok, "scavtrace") == 0) rgi_opt.scavtrace = iv;
        else if (strcmp(tok, "poison") == 0) rgi_opt.poison = iv ? 1 : -1; /* -1: off even under Valgrind */
        else if (strcmp(tok, "hugepages") == 0) { if (iv == 0) rgi_opt.hugepages = RG_HUGEPAGES_OFF; }
        else if (strcmp(tok, "memtrace") == 0 && parse_duration_ns(val, &ns) == 0)
            rgi_opt.memtrace_s = ns < 0 ? 0 : (int)(ns / 1000000000);
        else {
            warn_bad("RG_DEBUG", tok);
            rc = -EINVAL;
        }
    }
    return rc;
}

void rg_config_default(rg_config *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->memory_limit = RG_MEMLIMIT_UNSET;
    cfg->gc_percent = RG_GC_PERCENT_UNSET;
}

void rgi_options_from_env(rg_config *cfg)
{
    const char *v;
    if (cfg->memory_limit == RG_MEMLIMIT_UNSET && (v = getenv("RG_MEMLIMIT")) != NULL) {
        int64_t b;
        if (rgi_parse_bytes(v, &b) == 0) cfg->memory_limit = b;
        else warn_bad("RG_MEMLIMIT", v);
    }
    if (cfg->gc_percent == RG_GC_PERCENT_UNSET && (v = getenv("RG_GC_PERCENT")) != NULL) {
        char *end;
        long p = strtol(v, &end, 10);
        if (strcmp(v, "off") == 0) cfg->gc_percent = RG_GC_OFF;
        else if (*v && *end == '\0' && p >= -1 && p <= 1000000) cfg->gc_percent = (int)p;
        else warn_bad("RG_GC_PERCENT", v);
    }
    if (cfg->hugepages == RG_HUGEPAGES_DEFAULT && (v = getenv("RG_HUGEPAGES")) != NULL) {
        if (strcmp(v, "explicit") == 0) cfg->hugepages = RG_HUGEPAGES_EXPLICIT;
        else if (strcmp(v, "thp") == 0) cfg->hugepages = RG_HUGEPAGES_THP;
        else if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0) cfg->hugepages = RG_HUGEPAGES_OFF;
        else warn_bad("RG_HUGEPAGES", v);
    }
    if (cfg->reserve_bytes == 0 && (v = getenv("RG_RESERVE")) != NULL) {
        int64_t b;
        if (rgi_parse_bytes(v, &b) == 0 && b >= (int64_t)(64 * RGI_SEG_SIZE) && b != RG_MEMLIMIT_OFF)
            cfg->reserve_bytes = (size_t)b;
        else warn_bad("RG_RESERVE", v);
    }
    if (cfg->scavenge_delay_ns == 0 && (v = getenv("RG_SCAVENGE_DELAY")) != NULL) {
        int64_t ns;
        if (parse_duration_ns(v, &ns) == 0 && ns != 0) cfg->scavenge_delay_ns = ns;
        else warn_bad("RG_SCAVENGE_DELAY", v);
    }
    if (cfg->debug == NULL)
        cfg->debug = getenv("RG_DEBUG");
}

static void atfork_prepare(void)
{
    rgi_arena_atfork_prepare();
    rgi_page_atfork_prepare();
}
static void atfork_parent(void)
{
    rgi_page_atfork_parent();
    rgi_arena_atfork_parent();
}
static void atfork_child(void)
{
    rgi_page_atfork_child();
    rgi_arena_atfork_child();
}

static int validate(const rg_config *c)
{
    if (c->hugepages < RG_HUGEPAGES_DEFAULT || c->hugepages > RG_HUGEPAGES_OFF)
        return -EINVAL;
    if (c->gc_percent != RG_GC_PERCENT_UNSET && c->gc_percent < -1)
        return -EINVAL;
    if (c->memory_limit != RG_MEMLIMIT_UNSET && c->memory_limit < 0)
        return -EINVAL;
    if (c->reserve_bytes != 0 && c->reserve_bytes < 64 * RGI_SEG_SIZE)
        return -EINVAL;
    if (c->scavenge_delay_ns < -1)
        return -EINVAL;
    return 0;
}

int rgi_init_slow(const rg_config *user)
{
    rg_config cfg;
    int rc = 0;
    if (user) {
        cfg = *user;
        if ((rc = validate(&cfg)) != 0)
            return rc;
    } else {
        rg_config_default(&cfg);
    }
    pthread_mutex_lock(&init_lock);
    if (atomic_load_explicit(&rgi_inited, memory_order_relaxed) == 2) {
        pthread_mutex_unlock(&init_lock);
        /* Already running: only the dynamic settings apply. */
        if (user) {
            if (cfg.memory_limit != RG_MEMLIMIT_UNSET)
                rg_set_memory_limit(cfg.memory_limit);
            if (cfg.gc_percent != RG_GC_PERCENT_UNSET)
                rg_set_gc_percent(cfg.gc_percent);
            if (cfg.debug)
                rc = rgi_parse_debug(cfg.debug);
        }
        return rc;
    }
    rgi_options_from_env(&cfg);
    if (cfg.debug)
        (void)rgi_parse_debug(cfg.debug); /* bad tokens warn and are ignored */
    if (cfg.hugepages != RG_HUGEPAGES_DEFAULT && rgi_opt.hugepages != RG_HUGEPAGES_OFF)
        rgi_opt.hugepages = cfg.hugepages;
    if (cfg.reserve_bytes)
        rgi_opt.reserve_bytes = cfg.reserve_bytes;
    if (cfg.scavenge_delay_ns)
        rgi_opt.scavenge_delay_ns = cfg.scavenge_delay_ns;
    if (cfg.gc_percent != RG_GC_PERCENT_UNSET)
        rgi_opt.gc_percent = cfg.gc_percent;
    rc = rgi_page_init();
    if (rc == 0) {
        if (cfg.memory_limit != RG_MEMLIMIT_UNSET)
            rgi_page_set_limit(cfg.memory_limit);
        static bool atfork_done;
        if (!atfork_done) {
            pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
            atfork_done = true;
        }
        /* release: pairs with the acquire in rgi_ensure_init */
        atomic_store_explicit(&rgi_inited, 2, memory_order_release);
    }
    pthread_mutex_unlock(&init_lock);
    if (rc == 0)
        rgi_observe_init(); /* outside the lock: it may start a thread that allocates */
    return rc;
}

int rg_init(const rg_config *cfg)
{
    return rgi_init_slow(cfg);
}

int rg_set_gc_percent(int percent)
{
    rgi_ensure_init();
    if (percent < -1)
        percent = -1;
    /* atomic: the collector's pacer reads it from any thread (core/gc.c) */
    return __atomic_exchange_n(&rgi_opt.gc_percent, percent, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------------------
 * Poisoning seam
 * ------------------------------------------------------------------------- */
bool rgi_poisoning(void)
{
    /* poison=0 lets callgrind count the fast path Valgrind would otherwise divert */
    return RGI_ASAN || RG_DEBUG_CHECKS || rgi_opt.poison > 0 || (rgi_opt.poison == 0 && RUNNING_ON_VALGRIND);
}

void rgi_poison(void *p, size_t n)
{
#if RGI_ASAN
    ASAN_POISON_MEMORY_REGION(p, n);
#else
    if (RUNNING_ON_VALGRIND) {
        VALGRIND_MAKE_MEM_NOACCESS(p, n);
    } else if (RG_DEBUG_CHECKS || rgi_opt.poison > 0) {
        memset(p, 0xdb, n); /* "dead bytes": a use after reset reads garbage */
    }
#endif
}

void rgi_unpoison(void *p, size_t n)
{
#if RGI_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
    if (RUNNING_ON_VALGRIND)
        VALGRIND_MAKE_MEM_UNDEFINED(p, n);
#endif
    (void)p;
    (void)n;
}
