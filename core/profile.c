/* core/profile.c — heap profiling: sampled allocations with call stacks, and
 * the pprof writer (protobuf via protobuf-c, gzip via zlib).
 *
 * Algorithm.  Go's MemProfileRate sampling (runtime/malloc.go nextSample,
 * runtime/mprof.go): each thread counts down an exponentially distributed
 * number of bytes with mean `rate`; the allocation that takes the count
 * below zero is sampled.  The countdown lives in the arena (core/arena.c),
 * so the fast path pays one subtract and one predictable branch.  A sample
 * captures the stack (libunwind's unw_backtrace, else glibc backtrace),
 * finds or adds its bucket (one per distinct stack: cumulative allocated and
 * freed counts and bytes), and enters the address in a side table (an
 * open-addressing hash set, linear probing, backward-shift deletion).  The
 * arena counts the live samples of each span (or large run), so a free looks
 * in the side table only while its span holds a sample: an unsampled free
 * elsewhere pays one predictable branch.
 *
 * Writing: the buckets are copied under the lock, then each stack is
 * symbolized from the ELF symbol tables of the loaded objects (read with
 * pread, static functions included), regio's own frames are cut from the
 * leaf end, and the profile is encoded as pprof's Profile message with
 * values scaled like Go's scaleHeapSample: a bucket of n samples of average
 * size s stands for n / (1 - exp(-s/rate)) allocations.
 *
 * Guarantee: sampling never allocates from the arenas (the side tables are
 * mmapped and charged to the limit), never recurses (a per-thread busy
 * flag), and drops a sample rather than failing the allocation when the
 * limit refuses table memory.  Reference: pprof's profile.proto; Go's
 * runtime/mprof.go.
 */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include "internal.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <math.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <unwind.h>
#include <valgrind/valgrind.h>
#if RG_HAVE_LIBUNWIND
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#endif
#if RG_HAVE_PPROF
#include <zlib.h>
#include "profile.pb-c.h"
#endif

#define MAX_DEPTH 48
#define DEFAULT_RATE ((int64_t)512 << 10)
#define NBHEADS 4096

/* -1 until read from RG_MEMPROFILERATE. */
static _Atomic int64_t prof_rate = -1;
static _Atomic int64_t last_rate = DEFAULT_RATE; /* for scaling after a switch-off */
atomic_uint_fast64_t rgi_prof_samples;
static atomic_uint_fast64_t prof_dropped;
static __thread uint64_t prng;
static __thread int prof_busy;

int64_t rgi_prof_rate(void)
{
    int64_t r = atomic_load_explicit(&prof_rate, memory_order_relaxed);
    if (RG_LIKELY(r >= 0))
        return r;
    r = DEFAULT_RATE;
    const char *v = getenv("RG_MEMPROFILERATE");
    if (v) {
        int64_t b;
        if (rgi_parse_bytes(v, &b) == 0)
            r = b == RG_MEMLIMIT_OFF ? 0 : b;
        else
            fprintf(stderr, "regio: ignoring RG_MEMPROFILERATE=\"%s\": not understood\n", v);
    }
    int64_t expect = -1;
    /* relaxed: the rate is a hint read racily by every thread, like Go's */
    atomic_compare_exchange_strong_explicit(&prof_rate, &expect, r, memory_order_relaxed, memory_order_relaxed);
    r = atomic_load_explicit(&prof_rate, memory_order_relaxed);
    if (r > 0)
        atomic_store_explicit(&last_rate, r, memory_order_relaxed);
    return r;
}

int64_t rg_set_memprofile_rate(int64_t bytes)
{
    int64_t prev = rgi_prof_rate();
    if (bytes >= 0) {
        atomic_store_explicit(&prof_rate, bytes, memory_order_relaxed);
        if (bytes > 0)
            atomic_store_explicit(&last_rate, bytes, memory_order_relaxed);
    }
    return prev;
}

int64_t rgi_prof_next(void)
{
    int64_t rate = rgi_prof_rate();
    if (rate == 0)
        return RGI_PROF_OFF_COUNTDOWN;
    if (prng == 0)
        prng = (uint64_t)(uintptr_t)&prng ^ rgi_now_ns() ^ 0x9e3779b97f4a7c15ull;
    /* xorshift64*: a uniform in (0, 1] for the exponential draw */
    prng ^= prng >> 12;
    prng ^= prng << 25;
    prng ^= prng >> 27;
    uint64_t x = (prng * 0x2545f4914f6cdd1dull) >> 11;
    double u = ((double)x + 1.0) / 9007199254740993.0;
    double next = -log(u) * (double)rate;
    if (next > (double)((int64_t)1 << 40))
        next = (double)((int64_t)1 << 40);
    return (int64_t)next;
}

/* ---------------------------------------------------------------------------
 * Buckets and the side table.  Memory: mmapped, charged; never from the
 * arenas (a sample happens inside an allocation).
 * ------------------------------------------------------------------------- */
typedef struct bucket {
    struct bucket *next_hash, *next_all;
    uint64_t hash;
    uint64_t alloc_n, alloc_bytes, free_n, free_bytes;
    uint32_t depth, pad;
    uintptr_t pcs[]; /* immutable once published */
} bucket;

typedef struct addr_ent {
    uintptr_t addr; /* 0 = empty */
    size_t size;
    bucket *b;
} addr_ent;

static pthread_mutex_t prof_lock = PTHREAD_MUTEX_INITIALIZER;
static bucket *bheads[NBHEADS];
static bucket *ball;
static size_t nbuckets;
static char *bchunk, *bchunk_end;
static addr_ent *atab;
static size_t acap, alen;

static void *table_map(size_t bytes)
{
    if (rgi_page_charge(bytes) != 0)
        return NULL;
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        rgi_page_uncharge(bytes);
        return NULL;
    }
    return m;
}

static void table_unmap(void *m, size_t bytes)
{
    munmap(m, bytes);
    rgi_page_uncharge(bytes);
}

static inline uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static bucket *bucket_get_locked(const uintptr_t *pcs, unsigned depth)
{
    uint64_t h = depth;
    for (unsigned i = 0; i < depth; i++)
        h = mix(h ^ pcs[i]) + i;
    for (bucket *b = bheads[h % NBHEADS]; b; b = b->next_hash)
        if (b->hash == h && b->depth == depth && memcmp(b->pcs, pcs, depth * sizeof *pcs) == 0)
            return b;
    size_t need = (sizeof(bucket) + depth * sizeof(uintptr_t) + 15) & ~(size_t)15;
    if (bchunk == NULL || (size_t)(bchunk_end - bchunk) < need) {
        size_t sz = (size_t)256 << 10;
        char *m = table_map(sz);
        if (m == NULL)
            return NULL;
        bchunk = m;
        bchunk_end = m + sz;
    }
    bucket *b = (bucket *)bchunk;
    bchunk += need;
    memset(b, 0, sizeof *b);
    b->hash = h;
    b->depth = depth;
    memcpy(b->pcs, pcs, depth * sizeof *pcs);
    b->next_hash = bheads[h % NBHEADS];
    bheads[h % NBHEADS] = b;
    b->next_all = ball;
    ball = b;
    nbuckets++;
    return b;
}

static inline size_t aslot(uintptr_t a, size_t cap)
{
    return (size_t)mix((uint64_t)a) & (cap - 1);
}

static bool atab_grow_locked(void)
{
    size_t ncap = acap ? acap * 2 : 4096;
    addr_ent *n = table_map(ncap * sizeof *n);
    if (n == NULL)
        return false;
    for (size_t i = 0; i < acap; i++) {
        if (atab[i].addr == 0)
            continue;
        size_t j = aslot(atab[i].addr, ncap);
        while (n[j].addr)
            j = (j + 1) & (ncap - 1);
        n[j] = atab[i];
    }
    if (atab)
        table_unmap(atab, acap * sizeof *atab);
    atab = n;
    acap = ncap;
    return true;
}

static void atab_insert_locked(uintptr_t a, size_t size, bucket *b)
{
    size_t j = aslot(a, acap);
    while (atab[j].addr && atab[j].addr != a)
        j = (j + 1) & (acap - 1);
    if (atab[j].addr == 0)
        alen++;
    atab[j] = (addr_ent){a, size, b};
}

/* Removes a; returns its entry (addr 0 when absent). */
static addr_ent atab_remove_locked(uintptr_t a)
{
    addr_ent out = {0, 0, NULL};
    if (acap == 0)
        return out;
    size_t j = aslot(a, acap);
    while (atab[j].addr && atab[j].addr != a)
        j = (j + 1) & (acap - 1);
    if (atab[j].addr == 0)
        return out;
    out = atab[j];
    /* backward-shift deletion keeps every probe chain unbroken */
    size_t hole = j;
    for (size_t k = (j + 1) & (acap - 1); atab[k].addr; k = (k + 1) & (acap - 1)) {
        size_t home = aslot(atab[k].addr, acap);
        bool movable = hole <= k ? (home <= hole || home > k) : (home <= hole && home > k);
        if (movable) {
            atab[hole] = atab[k];
            hole = k;
        }
    }
    atab[hole].addr = 0;
    alen--;
    return out;
}

#if !RG_HAVE_LIBUNWIND
typedef struct uw_walk {
    uintptr_t *pcs;
    unsigned n;
} uw_walk;

static _Unwind_Reason_Code uw_step(struct _Unwind_Context *ctx, void *arg)
{
    uw_walk *w = arg;
    uintptr_t ip = _Unwind_GetIP(ctx);
    if (ip == 0 || w->n == MAX_DEPTH)
        return _URC_END_OF_STACK;
    w->pcs[w->n++] = ip;
    return _URC_NO_REASON;
}
#endif

/* Return addresses, innermost first: libunwind's unw_backtrace (cached
 * unwind info) when present, else the compiler's unwinder (what glibc's
 * backtrace uses).  libunwind checks that stack words are readable by
 * passing them to write(2); Valgrind would report each probe, so its error
 * reporting is off for the walk (the probes are deliberate and safe). */
static unsigned capture(uintptr_t *pcs)
{
    unsigned n;
    bool vg = RUNNING_ON_VALGRIND;
    if (vg)
        VALGRIND_DISABLE_ERROR_REPORTING;
#if RG_HAVE_LIBUNWIND
    int got = unw_backtrace((void **)pcs, MAX_DEPTH);
    n = got > 0 ? (unsigned)got : 0;
#else
    uw_walk w = {pcs, 0};
    _Unwind_Backtrace(uw_step, &w);
    n = w.n;
#endif
    if (vg)
        VALGRIND_ENABLE_ERROR_REPORTING;
    return n;
}

/* fork: the child must not inherit the lock held by a thread it lost.
 * Registered after the page layer's handlers, so prepare runs first and
 * takes the locks in their usual order (prof_lock, then the page lock that
 * table_map's charge takes). */
static pthread_once_t prof_atfork_once = PTHREAD_ONCE_INIT;
static void prof_lock_acquire(void)
{
    pthread_mutex_lock(&prof_lock);
}
static void prof_lock_release(void)
{
    pthread_mutex_unlock(&prof_lock);
}
static void prof_atfork_register(void)
{
    pthread_atfork(prof_lock_acquire, prof_lock_release, prof_lock_release);
    /* libunwind initializes itself lazily on the first walk, and threads
     * that walk meanwhile read its state unlocked; one walk here, inside the
     * once every sample passes first, finishes that before any concurrent
     * walk (the once orders it for TSan too). */
    uintptr_t warm[MAX_DEPTH];
    (void)capture(warm);
}

/* Registers the profile's fork handlers now (the collector calls it before
 * registering its own, whose locks nest outside prof_lock). */
void rgi_prof_atfork_init(void)
{
    pthread_once(&prof_atfork_once, prof_atfork_register);
}

void rgi_prof_record(void *p, size_t size)
{
    if (prof_busy || p == NULL)
        return;
    prof_busy = 1;
    pthread_once(&prof_atfork_once, prof_atfork_register);
    uintptr_t pcs[MAX_DEPTH];
    unsigned depth = capture(pcs);
    pthread_mutex_lock(&prof_lock);
    bucket *b = bucket_get_locked(pcs, depth);
    if (b && (alen + 1) * 2 > acap && !atab_grow_locked())
        b = NULL;
    if (b) {
        b->alloc_n++;
        b->alloc_bytes += size;
        atab_insert_locked((uintptr_t)p, size, b);
    }
    pthread_mutex_unlock(&prof_lock);
    if (b)
        atomic_fetch_add_explicit(&rgi_prof_samples, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&prof_dropped, 1, memory_order_relaxed);
    prof_busy = 0;
}

bool rgi_prof_forget(void *p)
{
    pthread_mutex_lock(&prof_lock);
    addr_ent e = atab_remove_locked((uintptr_t)p);
    if (e.addr) {
        e.b->free_n++;
        e.b->free_bytes += e.size;
    }
    pthread_mutex_unlock(&prof_lock);
    return e.addr != 0;
}

uint64_t rgi_prof_inuse_samples(void)
{
    pthread_mutex_lock(&prof_lock);
    size_t n = alen;
    pthread_mutex_unlock(&prof_lock);
    return n;
}

/* ---------------------------------------------------------------------------
 * Symbolization: ELF symbol tables of the loaded objects.
 * ------------------------------------------------------------------------- */
typedef struct sym {
    uintptr_t addr;
    size_t size;
    const char *name;
    bool regio;
} sym;

typedef struct module {
    uintptr_t bias, lo, hi;
    char path[512];
    bool loaded, regio_lib;
    sym *syms;
    size_t nsyms;
    char *strtab;
    uint64_t mapping_id;
} module;

#define MAX_MODULES 256
typedef struct symctx {
    module mods[MAX_MODULES];
    size_t nmods;
} symctx;

static int phdr_cb(struct dl_phdr_info *info, size_t sz, void *arg)
{
    (void)sz;
    symctx *cx = arg;
    if (cx->nmods == MAX_MODULES)
        return 1;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo) lo = a;
        if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
    }
    if (hi == 0)
        return 0;
    module *m = &cx->mods[cx->nmods++];
    memset(m, 0, sizeof *m);
    m->bias = info->dlpi_addr;
    m->lo = lo;
    m->hi = hi;
    const char *name = info->dlpi_name;
    if (name == NULL || name[0] == '\0') {
        ssize_t n = readlink("/proc/self/exe", m->path, sizeof m->path - 1);
        m->path[n > 0 ? n : 0] = '\0';
    } else {
        snprintf(m->path, sizeof m->path, "%s", name);
    }
    /* every frame in regio's shared library, or in the unwinder, is regio's */
    m->regio_lib = strstr(m->path, "libregio.so") != NULL || strstr(m->path, "libunwind") != NULL;
    return 0;
}

/* Static functions of regio's own sources, told apart by the STT_FILE
 * symbol that precedes an object's local symbols. */
static bool regio_file(const char *f)
{
    static const char *const files[] = {
        "options.c", "page.c", "arena.c", "region.c", "stats.c", "profile.c", "monitor.c",
        "debug_http.c", "slice.c", "map.c", "syncpool.c", "objpool.c", "chan.c", "buf.c",
        "mapfile.c", "uring.c", "profile.pb-c.c",
    };
    const char *base = strrchr(f, '/');
    base = base ? base + 1 : f;
    if (strncmp(base, "gc", 2) == 0 && strstr(base, ".c"))
        return true;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (strcmp(base, files[i]) == 0)
            return true;
    return false;
}

static bool regio_name(const char *n)
{
    return strncmp(n, "rg_", 3) == 0 || strncmp(n, "rgi_", 4) == 0;
}

static int sym_cmp(const void *a, const void *b)
{
    const sym *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static bool pread_all(int fd, void *buf, size_t n, off_t off)
{
    char *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n, off);
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return true;
}

static void module_load(module *m)
{
    m->loaded = true;
    int fd = open(m->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ElfW(Ehdr) eh;
    ElfW(Shdr) *sh = NULL;
    ElfW(Sym) *st = NULL;
    if (!pread_all(fd, &eh, sizeof eh, 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_shentsize != sizeof(ElfW(Shdr)) || eh.e_shnum == 0)
        goto out;
    sh = rgi_arena_malloc(eh.e_shnum * sizeof *sh);
    if (sh == NULL || !pread_all(fd, sh, eh.e_shnum * sizeof *sh, (off_t)eh.e_shoff))
        goto out;
    int symi = -1;
    for (int pass = 0; pass < 2 && symi < 0; pass++)
        for (int i = 0; i < eh.e_shnum; i++)
            if (sh[i].sh_type == (pass == 0 ? SHT_SYMTAB : SHT_DYNSYM)) {
                symi = i;
                break;
            }
    if (symi < 0 || sh[symi].sh_link >= eh.e_shnum)
        goto out;
    const ElfW(Shdr) *ss = &sh[symi], *sst = &sh[ss->sh_link];
    size_t nst = ss->sh_size / sizeof(ElfW(Sym));
    st = rgi_arena_malloc(ss->sh_size ? ss->sh_size : 1);
    m->strtab = rgi_arena_malloc(sst->sh_size + 1);
    m->syms = rgi_arena_malloc((nst ? nst : 1) * sizeof(sym));
    if (st == NULL || m->strtab == NULL || m->syms == NULL ||
        !pread_all(fd, st, ss->sh_size, (off_t)ss->sh_offset) ||
        !pread_all(fd, m->strtab, sst->sh_size, (off_t)sst->sh_offset))
        goto out;
    m->strtab[sst->sh_size] = '\0';
    bool file_regio = false;
    for (size_t i = 0; i < nst; i++) {
        unsigned type = ELF64_ST_TYPE(st[i].st_info), bind = ELF64_ST_BIND(st[i].st_info);
        if (st[i].st_name >= sst->sh_size)
            continue;
        const char *name = m->strtab + st[i].st_name;
        if (type == STT_FILE) {
            file_regio = regio_file(name);
            continue;
        }
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || st[i].st_shndx == SHN_UNDEF || st[i].st_value == 0)
            continue;
        sym *s = &m->syms[m->nsyms++];
        s->addr = m->bias + st[i].st_value;
        s->size = st[i].st_size;
        s->name = name;
        s->regio = m->regio_lib || regio_name(name) || (bind == STB_LOCAL && file_regio);
    }
    qsort(m->syms, m->nsyms, sizeof(sym), sym_cmp);
out:
    rgi_arena_free(sh);
    rgi_arena_free(st);
    close(fd);
}

static module *module_of(symctx *cx, uintptr_t pc)
{
    for (size_t i = 0; i < cx->nmods; i++)
        if (pc >= cx->mods[i].lo && pc < cx->mods[i].hi)
            return &cx->mods[i];
    return NULL;
}

static const sym *sym_of(symctx *cx, uintptr_t pc, module **mp)
{
    module *m = module_of(cx, pc);
    *mp = m;
    if (m == NULL)
        return NULL;
    if (!m->loaded)
        module_load(m);
    size_t lo = 0, hi = m->nsyms;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->syms[mid].addr <= pc) lo = mid + 1; else hi = mid;
    }
    if (lo == 0)
        return NULL;
    const sym *s = &m->syms[lo - 1];
    /* a zero-size symbol (hand-written asm) covers up to the next one */
    if (s->size && pc >= s->addr + s->size)
        return NULL;
    return s;
}

static void symctx_free(symctx *cx)
{
    for (size_t i = 0; i < cx->nmods; i++) {
        rgi_arena_free(cx->mods[i].syms);
        rgi_arena_free(cx->mods[i].strtab);
    }
}

/* ---------------------------------------------------------------------------
 * The pprof writer
 * ------------------------------------------------------------------------- */
#if RG_HAVE_PPROF
typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__ValueType ValueType;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Mapping Mapping;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Line Line;
typedef Perftools__Profiles__Function Function;

/* A uintptr -> id map (open addressing; ids start at 1, 0 = empty). */
typedef struct idmap {
    uintptr_t *keys;
    uint64_t *vals;
    size_t cap;
} idmap;

static bool idmap_init(idmap *m, size_t n)
{
    m->cap = 64;
    while (m->cap < n * 2)
        m->cap *= 2;
    m->keys = rgi_arena_malloc(m->cap * sizeof *m->keys);
    m->vals = rgi_arena_malloc(m->cap * sizeof *m->vals);
    if (!m->keys || !m->vals)
        return false;
    memset(m->vals, 0, m->cap * sizeof *m->vals);
    return true;
}

/* Returns the slot for k (vals[slot] == 0 when new). */
static size_t idmap_slot(idmap *m, uintptr_t k)
{
    size_t j = (size_t)mix(k) & (m->cap - 1);
    while (m->vals[j] && m->keys[j] != k)
        j = (j + 1) & (m->cap - 1);
    m->keys[j] = k;
    return j;
}

static void idmap_free(idmap *m)
{
    rgi_arena_free(m->keys);
    rgi_arena_free(m->vals);
}

/* String table: interned by content through an idmap keyed on a hash. */
typedef struct strtab {
    char **s;
    size_t n, cap;
    idmap h; /* hash -> index + 1 (collisions fall back to a scan) */
} strtab;

static int64_t str_id(strtab *t, const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = s; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    size_t j = idmap_slot(&t->h, (uintptr_t)h);
    if (t->h.vals[j] && strcmp(t->s[t->h.vals[j] - 1], s) == 0)
        return (int64_t)(t->h.vals[j] - 1);
    if (t->h.vals[j] == 0) {
        if (t->n == t->cap)
            return 0; /* sized up front; never happens */
        t->s[t->n] = (char *)s;
        t->h.vals[j] = ++t->n;
        return (int64_t)(t->n - 1);
    }
    for (size_t i = 0; i < t->n; i++) /* hash collision: rare */
        if (strcmp(t->s[i], s) == 0)
            return (int64_t)i;
    if (t->n == t->cap)
        return 0;
    t->s[t->n++] = (char *)s;
    return (int64_t)(t->n - 1);
}

typedef struct snap {
    const bucket *b;
    uint64_t alloc_n, alloc_bytes, free_n, free_bytes;
} snap;

static void scale(uint64_t n, uint64_t bytes, int64_t rate, int64_t *on, int64_t *ob)
{
    if (n == 0 || bytes == 0) {
        *on = (int64_t)n;
        *ob = (int64_t)bytes;
        return;
    }
    if (rate <= 1) {
        *on = (int64_t)n;
        *ob = (int64_t)bytes;
        return;
    }
    double avg = (double)bytes / (double)n;
    double s = 1.0 / (1.0 - exp(-avg / (double)rate));
    *on = (int64_t)((double)n * s);
    *ob = (int64_t)((double)bytes * s);
}

/* Builds the gzipped profile into a regio buffer.  0 or -errno. */
int rgi_prof_build(bool allocs, unsigned char **out, size_t *outlen)
{
    int rc = -ENOMEM;
    *out = NULL;
    *outlen = 0;
    int busy_before = prof_busy;
    prof_busy = 1; /* the writer's own allocations are not sampled */

    /* 1. Snapshot the buckets. */
    pthread_mutex_lock(&prof_lock);
    size_t nb = nbuckets;
    snap *sn = rgi_arena_malloc((nb ? nb : 1) * sizeof *sn);
    if (sn) {
        size_t i = 0;
        for (const bucket *b = ball; b && i < nb; b = b->next_all, i++)
            sn[i] = (snap){b, b->alloc_n, b->alloc_bytes, b->free_n, b->free_bytes};
    }
    pthread_mutex_unlock(&prof_lock);
    if (sn == NULL) {
        prof_busy = busy_before;
        return -ENOMEM;
    }
    size_t totpcs = 0;
    for (size_t i = 0; i < nb; i++)
        totpcs += sn[i].b->depth;

    symctx *cx = rgi_arena_malloc(sizeof *cx);
    Sample *samples = rgi_arena_malloc((nb ? nb : 1) * sizeof *samples);
    Sample **psamples = rgi_arena_malloc((nb ? nb : 1) * sizeof *psamples);
    uint64_t *locids = rgi_arena_malloc((totpcs ? totpcs : 1) * sizeof *locids);
    int64_t *values = rgi_arena_malloc((nb ? nb : 1) * 4 * sizeof *values);
    Location *locs = rgi_arena_malloc((totpcs ? totpcs : 1) * sizeof *locs);
    Location **plocs = rgi_arena_malloc((totpcs ? totpcs : 1) * sizeof *plocs);
    Line *lines = rgi_arena_malloc((totpcs ? totpcs : 1) * sizeof *lines);
    Line **plines = rgi_arena_malloc((totpcs ? totpcs : 1) * sizeof *plines);
    Function *funcs = rgi_arena_malloc((totpcs ? totpcs : 1) * sizeof *funcs);
    Function **pfuncs = rgi_arena_malloc((totpcs ? totpcs : 1) * sizeof *pfuncs);
    Mapping *maps = rgi_arena_malloc(MAX_MODULES * sizeof *maps);
    Mapping **pmaps = rgi_arena_malloc(MAX_MODULES * sizeof *pmaps);
    char *hexnames = rgi_arena_malloc((totpcs ? totpcs : 1) * 20);
    strtab st = {0};
    st.cap = totpcs * 2 + MAX_MODULES + 32;
    st.s = rgi_arena_malloc(st.cap * sizeof *st.s);
    idmap locmap = {0}, funcmap = {0};
    unsigned char *pb = NULL, *gz = NULL;
    if (!cx || !samples || !psamples || !locids || !values || !locs || !plocs || !lines || !plines ||
        !funcs || !pfuncs || !maps || !pmaps || !hexnames || !st.s || !idmap_init(&st.h, st.cap) ||
        !idmap_init(&locmap, totpcs + 1) || !idmap_init(&funcmap, totpcs + 1))
        goto out;
    cx->nmods = 0;
    dl_iterate_phdr(phdr_cb, cx);

    str_id(&st, "");
    static const char *const vtn[4][2] = {
        {"alloc_objects", "count"}, {"alloc_space", "bytes"}, {"inuse_objects", "count"}, {"inuse_space", "bytes"}};
    ValueType vtl[4];
    ValueType *pvtl[4];
    for (int i = 0; i < 4; i++) {
        perftools__profiles__value_type__init(&vtl[i]);
        vtl[i].type = str_id(&st, vtn[i][0]);
        vtl[i].unit = str_id(&st, vtn[i][1]);
        pvtl[i] = &vtl[i];
    }
    ValueType period_type;
    perftools__profiles__value_type__init(&period_type);
    period_type.type = str_id(&st, "space");
    period_type.unit = str_id(&st, "bytes");

    int64_t rate = rgi_prof_rate();
    if (rate == 0)
        rate = atomic_load_explicit(&last_rate, memory_order_relaxed);
    size_t nloc = 0, nfunc = 0, nmap = 0, nsamp = 0, li = 0;
    for (size_t i = 0; i < nb; i++) {
        const bucket *b = sn[i].b;
        /* cut regio's frames at the leaf end; keep at least one frame */
        unsigned first = 0;
        while (first + 1 < b->depth) {
            module *m;
            uintptr_t pc = b->pcs[first] - (first ? 1 : 0);
            const sym *s = sym_of(cx, pc, &m);
            if (!(s && s->regio) && !(m && m->regio_lib))
                break;
            first++;
        }
        Sample *sa = &samples[nsamp];
        perftools__profiles__sample__init(sa);
        sa->location_id = &locids[li];
        for (unsigned k = first; k < b->depth; k++) {
            uintptr_t pc = b->pcs[k];
            size_t slot = idmap_slot(&locmap, pc);
            if (locmap.vals[slot] == 0) {
                module *m;
                const sym *s = sym_of(cx, pc - 1, &m);
                Location *L = &locs[nloc];
                perftools__profiles__location__init(L);
                L->id = nloc + 1;
                L->address = pc;
                if (m) {
                    if (m->mapping_id == 0) {
                        Mapping *M = &maps[nmap];
                        perftools__profiles__mapping__init(M);
                        M->id = nmap + 1;
                        M->memory_start = m->lo;
                        M->memory_limit = m->hi;
                        M->file_offset = 0;
                        M->filename = str_id(&st, m->path);
                        M->has_functions = 1;
                        pmaps[nmap++] = M;
                        m->mapping_id = M->id;
                    }
                    L->mapping_id = m->mapping_id;
                }
                uintptr_t fkey = s ? s->addr : pc;
                size_t fs = idmap_slot(&funcmap, fkey);
                if (funcmap.vals[fs] == 0) {
                    Function *F = &funcs[nfunc];
                    perftools__profiles__function__init(F);
                    F->id = nfunc + 1;
                    const char *name = s ? s->name : NULL;
                    if (name == NULL) {
                        char *hn = hexnames + nfunc * 20;
                        snprintf(hn, 20, "0x%lx", (unsigned long)pc);
                        name = hn;
                    }
                    F->name = F->system_name = str_id(&st, name);
                    F->filename = m ? str_id(&st, m->path) : 0;
                    pfuncs[nfunc++] = F;
                    funcmap.vals[fs] = F->id;
                }
                Line *ln = &lines[nloc];
                perftools__profiles__line__init(ln);
                ln->function_id = funcmap.vals[fs];
                plines[nloc] = ln;
                L->n_line = 1;
                L->line = &plines[nloc];
                plocs[nloc++] = L;
                locmap.vals[slot] = L->id;
            }
            locids[li++] = locmap.vals[slot];
            sa->n_location_id++;
        }
        int64_t *v = &values[nsamp * 4];
        scale(sn[i].alloc_n, sn[i].alloc_bytes, rate, &v[0], &v[1]);
        scale(sn[i].alloc_n - sn[i].free_n, sn[i].alloc_bytes - sn[i].free_bytes, rate, &v[2], &v[3]);
        sa->value = v;
        sa->n_value = 4;
        psamples[nsamp++] = sa;
    }

    Profile p;
    perftools__profiles__profile__init(&p);
    p.n_sample_type = 4;
    p.sample_type = pvtl;
    p.n_sample = nsamp;
    p.sample = psamples;
    p.n_mapping = nmap;
    p.mapping = pmaps;
    p.n_location = nloc;
    p.location = plocs;
    p.n_function = nfunc;
    p.function = pfuncs;
    p.period_type = &period_type;
    p.period = rate;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    p.time_nanos = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    p.default_sample_type = allocs ? vtl[1].type : vtl[3].type;
    p.n_string_table = st.n;
    p.string_table = st.s;

    size_t plen = perftools__profiles__profile__get_packed_size(&p);
    pb = rgi_arena_malloc(plen ? plen : 1);
    if (pb == NULL)
        goto out;
    perftools__profiles__profile__pack(&p, pb);

    uLong bound = compressBound((uLong)plen) + 64;
    gz = rgi_arena_malloc(bound);
    if (gz == NULL)
        goto out;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* windowBits 15 + 16: a gzip wrapper, which pprof expects */
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        rc = -ENOMEM;
        goto out;
    }
    zs.next_in = pb;
    zs.avail_in = (uInt)plen;
    zs.next_out = gz;
    zs.avail_out = (uInt)bound;
    int zr = deflate(&zs, Z_FINISH);
    size_t gzlen = zs.total_out;
    deflateEnd(&zs);
    if (zr != Z_STREAM_END) {
        rc = -EIO;
        goto out;
    }
    *out = gz;
    *outlen = gzlen;
    gz = NULL;
    rc = 0;
out:
    if (cx)
        symctx_free(cx);
    rgi_arena_free(cx);
    rgi_arena_free(sn);
    rgi_arena_free(samples);
    rgi_arena_free(psamples);
    rgi_arena_free(locids);
    rgi_arena_free(values);
    rgi_arena_free(locs);
    rgi_arena_free(plocs);
    rgi_arena_free(lines);
    rgi_arena_free(plines);
    rgi_arena_free(funcs);
    rgi_arena_free(pfuncs);
    rgi_arena_free(maps);
    rgi_arena_free(pmaps);
    rgi_arena_free(hexnames);
    rgi_arena_free(st.s);
    idmap_free(&st.h);
    idmap_free(&locmap);
    idmap_free(&funcmap);
    rgi_arena_free(pb);
    rgi_arena_free(gz);
    prof_busy = busy_before;
    return rc;
}
#else
int rgi_prof_build(bool allocs, unsigned char **out, size_t *outlen)
{
    (void)allocs;
    *out = NULL;
    *outlen = 0;
    (void)symctx_free;
    (void)sym_of;
    return -ENOTSUP;
}
#endif

static int write_profile(int fd, bool allocs)
{
    if (fd < 0)
        return -EBADF;
    rgi_ensure_init();
    unsigned char *buf;
    size_t len;
    int rc = rgi_prof_build(allocs, &buf, &len);
    if (rc != 0)
        return rc;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        off += (size_t)w;
    }
    rgi_arena_free(buf);
    return rc;
}

int rg_write_heap_profile(int fd)
{
    return write_profile(fd, false);
}

int rg_write_allocs_profile(int fd)
{
    return write_profile(fd, true);
}

void rgi_prof_symbolize(uintptr_t pc, char *buf, size_t n)
{
    int busy_before = prof_busy;
    prof_busy = 1;
    symctx *cx = rgi_arena_malloc(sizeof *cx);
    if (cx == NULL) {
        snprintf(buf, n, "%p", (void *)pc);
        prof_busy = busy_before;
        return;
    }
    cx->nmods = 0;
    dl_iterate_phdr(phdr_cb, cx);
    module *m;
    const sym *s = pc ? sym_of(cx, pc - 1, &m) : NULL;
    if (s)
        snprintf(buf, n, "%s+0x%lx", s->name, (unsigned long)(pc - s->addr));
    else
        snprintf(buf, n, "%p", (void *)pc);
    symctx_free(cx);
    rgi_arena_free(cx);
    prof_busy = busy_before;
}
