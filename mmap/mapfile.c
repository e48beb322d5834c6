/* mmap/mapfile.c — rg_mapfile: zero-copy read-only (or shared-writable)
 * file maps, sliding windows for files beyond the address-space budget,
 * views, and a SIGBUS guard that turns a truncated file into -EIO.
 *
 * Algorithm.  A whole-file map is one mmap of the file (PROT_READ,
 * MAP_PRIVATE; or PROT_READ|PROT_WRITE, MAP_SHARED).  A process-wide budget
 * of address space is reserved with a compare-and-swap at open; a file that
 * does not fit is windowed: reads go through pread, scans through one window
 * of `window` bytes that moves with munmap + mmap.
 *
 * Truncation guard.  Touching a page past the end of a file that shrank
 * raises SIGBUS (mmap(2)).  Each accessor runs its memory accesses under a
 * thread-local recovery point — a chain of {sigjmp_buf, address range}
 * records — and a SIGBUS handler (SA_SIGINFO|SA_NODEFER, so the signal is
 * not left blocked after the jump; sigsetjmp is called with savemask 0 to
 * keep the fast path free of a sigprocmask system call) jumps to the
 * innermost record whose range holds si_addr.  Faults outside every record
 * go to the previously installed handler, or, if that was the default
 * action, the handler restores SIG_DFL and returns: the faulting access
 * re-executes and the process ends exactly as it would have without regio.
 * Copies are done in 64 KiB steps whose progress is kept in a volatile
 * counter, so a fault yields a short count of whole steps copied.
 * Reference: the same technique is used by Go's runtime (debug.SetPanicOnFault
 * turns such faults into a recoverable panic) and by databases that map files
 * (LMDB documents the SIGBUS; PostgreSQL's and Chromium's guarded copies).
 *
 * Backing.  A scan through a map is as fast as its page-table entries: a
 * 2 MiB-aligned map gets one PMD per 2 MiB page-cache folio, 4 KiB entries
 * for smaller folios (~10x slower to scan on nested-paging VMs, see
 * perf/RESULTS.md).  rg_mapfile_backing_of reads which entries a range has
 * with PAGEMAP_SCAN (Linux 6.7); RG_ADVICE_HUGE_RELOAD drops small-folio
 * blocks from the cache and faults them back through the MADV_HUGEPAGE map,
 * whose read-ahead then allocates PMD-sized folios (mm/filemap.c,
 * do_sync_mmap_readahead).
 *
 * Accounting.  Mapped bytes are page cache, not heap: they are counted in
 * mapped_bytes (rg_mapfile_read_stats) and, with RG_MAP_CHARGE, also charged
 * against the hard limit through rgi_page_charge.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "regio/mapfile.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RGI_X86 1
#else
#define RGI_X86 0
#endif

#define WINDOW_DEFAULT ((size_t)64 << 20)
#define WINDOW_ALIGN ((size_t)2 << 20)
#define COPY_STEP ((size_t)64 << 10)

struct rg_mapfile {
    char *base;       /* whole map: the file's first byte; windowed: window start */
    size_t len;       /* file size at open */
    size_t maplen;    /* bytes of address space mapped (page-rounded); 0 = none */
    int fd;           /* kept open: windows, pread, fstat after a fault */
    unsigned flags;
    bool windowed;
    off_t win_off;    /* windowed: file offset of base */
    size_t window;    /* windowed: window size */
    size_t budgeted;  /* whole maps: bytes reserved from the budget */
    size_t charged;   /* bytes charged against the hard limit */
    char empty[16];   /* the zero-length area of an empty file */
};

/* Counters.  All relaxed: statistics only, nothing is published through
 * them; the budget CAS below orders nothing else either. */
static atomic_size_t budget_limit;  /* 0 = not yet computed */
static atomic_size_t budget_used;
static atomic_uint_fast64_t mapped_bytes, st_charged, st_maps, st_windowed, st_moves, st_sigbus;

static size_t page_size(void)
{
    static atomic_size_t ps; /* relaxed: idempotent cache of sysconf */
    size_t p = atomic_load_explicit(&ps, memory_order_relaxed);
    if (p == 0) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : RGI_OS_PAGE;
        atomic_store_explicit(&ps, p, memory_order_relaxed);
    }
    return p;
}

static size_t round_up(size_t n, size_t a)
{
    return (n + a - 1) & ~(a - 1);
}

/* ---------------------------------------------------------------------------
 * The SIGBUS guard
 * ------------------------------------------------------------------------- */
typedef struct guard {
    sigjmp_buf env;
    uintptr_t lo, hi;
    struct guard *prev;
} guard;

/* Read by the signal handler on the same thread: a compiler barrier
 * (atomic_signal_fence) orders the store before the guarded accesses. */
static __thread guard *volatile tls_guard;
static struct sigaction prev_bus;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static bool handler_ok;

static void bus_handler(int sig, siginfo_t *si, void *uctx)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    for (guard *g = tls_guard; g != NULL; g = g->prev)
        if (a >= g->lo && a < g->hi)
            siglongjmp(g->env, 1);
    /* Not ours: behave as if regio had never installed a handler. */
    if (prev_bus.sa_flags & SA_SIGINFO) {
        if (prev_bus.sa_sigaction != NULL) {
            prev_bus.sa_sigaction(sig, si, uctx);
            return;
        }
    } else if (prev_bus.sa_handler != SIG_DFL && prev_bus.sa_handler != SIG_IGN) {
        prev_bus.sa_handler(sig);
        return;
    }
    /* Default (or ignored, which the kernel overrides for a real fault):
     * restore it and return, so the access faults again and ends the process. */
    signal(SIGBUS, SIG_DFL);
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = bus_handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    handler_ok = sigaction(SIGBUS, &sa, &prev_bus) == 0;
}

/* Runs fn(arg) with accesses to [lo, hi) guarded; -EIO if one faulted. */
static long run_guarded(uintptr_t lo, uintptr_t hi, long (*fn)(void *), void *arg)
{
    guard g;
    g.lo = lo;
    g.hi = hi;
    g.prev = tls_guard;
    if (sigsetjmp(g.env, 0)) {
        tls_guard = g.prev;
        /* SA_NODEFER keeps SIGBUS unblocked, but a sanitizer that wraps
         * handlers (TSan) may not pass the flag on: unblock it here, on the
         * slow path, rather than pay a sigprocmask in every sigsetjmp. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGBUS);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        atomic_fetch_add_explicit(&st_sigbus, 1, memory_order_relaxed);
        return -EIO;
    }
    tls_guard = &g;
    atomic_signal_fence(memory_order_seq_cst); /* pairs with bus_handler's read on this thread */
    long r = fn(arg);
    atomic_signal_fence(memory_order_seq_cst);
    tls_guard = g.prev;
    return r;
}

/* ---------------------------------------------------------------------------
 * Budget
 * ------------------------------------------------------------------------- */
static size_t budget_get(void)
{
    size_t b = atomic_load_explicit(&budget_limit, memory_order_relaxed);
    if (b)
        return b;
    b = (size_t)1 << 40;
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 2 < b)
        b = (size_t)(rl.rlim_cur / 2);
    if (b == 0)
        b = 1;
    size_t zero = 0;
    atomic_compare_exchange_strong_explicit(&budget_limit, &zero, b, memory_order_relaxed, memory_order_relaxed);
    return atomic_load_explicit(&budget_limit, memory_order_relaxed);
}

size_t rg_mapfile_set_budget(size_t bytes)
{
    size_t prev = budget_get();
    if (bytes)
        atomic_store_explicit(&budget_limit, bytes, memory_order_relaxed);
    return prev;
}

static bool budget_take(size_t n)
{
    size_t lim = budget_get();
    size_t used = atomic_load_explicit(&budget_used, memory_order_relaxed);
    do {
        if (n > lim || used > lim - n)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&budget_used, &used, used + n, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

static void budget_give(size_t n)
{
    atomic_fetch_sub_explicit(&budget_used, n, memory_order_relaxed);
}

static void mapped_add(size_t n)
{
    atomic_fetch_add_explicit(&mapped_bytes, n, memory_order_relaxed);
}
static void mapped_sub(size_t n)
{
    atomic_fetch_sub_explicit(&mapped_bytes, n, memory_order_relaxed);
}

/* ---------------------------------------------------------------------------
 * Open / close
 * ------------------------------------------------------------------------- */
static int charge(rg_mapfile *m, size_t n)
{
    if (!(m->flags & RG_MAP_CHARGE) || n == 0)
        return 0;
    int rc = rgi_page_charge(n);
    if (rc)
        return rc;
    m->charged = n;
    atomic_fetch_add_explicit(&st_charged, n, memory_order_relaxed);
    return 0;
}

static void uncharge(rg_mapfile *m)
{
    if (m->charged) {
        rgi_page_uncharge(m->charged);
        atomic_fetch_sub_explicit(&st_charged, m->charged, memory_order_relaxed);
        m->charged = 0;
    }
}

/* Maps len bytes of fd at a 2 MiB-aligned address when len >= 2 MiB: a
 * PROT_NONE reservation of maplen + 2 MiB, the file mapped MAP_FIXED at the
 * first aligned address in it, the slack on both sides unmapped.  An
 * unaligned map can never hold PMD mappings of large page-cache folios. */
static void *map_aligned(size_t len, size_t maplen, int prot, int mflags, int fd)
{
    const size_t huge = (size_t)2 << 20;
    if (len < huge)
        return mmap(NULL, len, prot, mflags, fd, 0);
    size_t span = maplen + huge;
    void *r = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED)
        return mmap(NULL, len, prot, mflags, fd, 0);
    uintptr_t lo = (uintptr_t)r, a = (lo + huge - 1) & ~(uintptr_t)(huge - 1);
    void *p = mmap((void *)a, len, prot, mflags | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        munmap(r, span);
        errno = e;
        return MAP_FAILED;
    }
    if (a > lo)
        munmap(r, a - lo);
    if (lo + span > a + maplen)
        munmap((void *)(a + maplen), lo + span - (a + maplen));
    return p;
}

rg_mapfile *rg_mapfile_open(const char *path, unsigned flags)
{
    rg_mapfile_opts o = {flags, 0};
    return rg_mapfile_open_opts(path, &o);
}

rg_mapfile *rg_mapfile_open_opts(const char *path, const rg_mapfile_opts *o)
{
    if (path == NULL || o == NULL || (o->flags & ~RG_MAP_FLAGS_ALL)) {
        errno = EINVAL;
        return NULL;
    }
    if (rgi_ensure_init() != 0) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_once(&handler_once, install_handler);
    bool wr = (o->flags & RG_MAP_WRITE) != 0;
    int fd = open(path, (wr ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0)
        goto fail_fd;
    if (!S_ISREG(st.st_mode)) {
        errno = S_ISDIR(st.st_mode) ? EISDIR : ENODEV;
        goto fail_fd;
    }
    rg_mapfile *m = rg_malloc(sizeof *m);
    if (m == NULL)
        goto fail_fd;
    memset(m, 0, sizeof *m);
    m->fd = fd;
    m->flags = o->flags;
    m->len = (size_t)st.st_size;
    m->window = round_up(o->window ? o->window : WINDOW_DEFAULT, WINDOW_ALIGN);
    size_t ps = page_size();
    int prot = PROT_READ | (wr ? PROT_WRITE : 0);
    int mflags = (wr ? MAP_SHARED : MAP_PRIVATE) | ((o->flags & RG_MAP_POPULATE) ? MAP_POPULATE : 0);

    if (m->len == 0) {
        m->base = m->empty;
    } else if (!(o->flags & RG_MAP_WINDOWED) && budget_take(round_up(m->len, ps))) {
        m->budgeted = round_up(m->len, ps);
        int rc = charge(m, m->budgeted);
        if (rc) {
            budget_give(m->budgeted);
            errno = -rc;
            goto fail_m;
        }
        void *p = map_aligned(m->len, m->budgeted, prot, mflags, fd);
        if (p == MAP_FAILED) {
            int e = errno;
            uncharge(m);
            budget_give(m->budgeted);
            errno = e;
            goto fail_m;
        }
        m->base = p;
        m->maplen = m->budgeted;
        mapped_add(m->maplen);
        if (o->flags & RG_MAP_HUGEPAGE)
            madvise(p, m->maplen, MADV_HUGEPAGE); /* a hint: kernels without file THP just say EINVAL */
        /* fd stays open: after a SIGBUS, fstat tells what is left of the file */
    } else {
        m->windowed = true;
        m->base = NULL;
        int rc = charge(m, m->window);
        if (rc) {
            errno = -rc;
            goto fail_m;
        }
        atomic_fetch_add_explicit(&st_windowed, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&st_maps, 1, memory_order_relaxed);
    return m;

fail_m: {
    int e = errno;
    rg_free(m);
    errno = e;
}
fail_fd: {
    int e = errno;
    close(fd);
    errno = e;
    return NULL;
}
}

static void window_drop(rg_mapfile *m)
{
    if (m->windowed && m->base) {
        munmap(m->base, m->maplen);
        mapped_sub(m->maplen);
        m->base = NULL;
        m->maplen = 0;
    }
}

void rg_mapfile_close(rg_mapfile *m)
{
    if (m == NULL)
        return;
    if (m->windowed) {
        window_drop(m);
        atomic_fetch_sub_explicit(&st_windowed, 1, memory_order_relaxed);
    } else if (m->maplen) {
        munmap(m->base, m->maplen);
        mapped_sub(m->maplen);
        budget_give(m->budgeted);
    }
    uncharge(m);
    if (m->fd >= 0)
        close(m->fd);
    atomic_fetch_sub_explicit(&st_maps, 1, memory_order_relaxed);
    rg_free(m);
}

/* ---------------------------------------------------------------------------
 * Access
 * ------------------------------------------------------------------------- */
const void *rg_mapfile_data(const rg_mapfile *m)
{
    if (m == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (m->windowed) {
        errno = EFBIG;
        return NULL;
    }
    return m->base;
}

void *rg_mapfile_wdata(rg_mapfile *m)
{
    if (m == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (!(m->flags & RG_MAP_WRITE)) {
        errno = EPERM;
        return NULL;
    }
    if (m->windowed) {
        errno = EFBIG;
        return NULL;
    }
    return m->base;
}

size_t rg_mapfile_len(const rg_mapfile *m)
{
    return m ? m->len : 0;
}

bool rg_mapfile_windowed(const rg_mapfile *m)
{
    return m && m->windowed;
}

typedef struct copy_job {
    char *dst;
    const char *src;
    size_t n;
    volatile size_t done; /* whole steps copied; read after a jump */
} copy_job;

static long copy_steps(void *arg)
{
    copy_job *j = arg;
    while (j->done < j->n) {
        size_t k = j->n - j->done < COPY_STEP ? j->n - j->done : COPY_STEP;
        memcpy(j->dst + j->done, j->src + j->done, k);
        j->done += k;
    }
    return (long)j->done;
}

/* Guarded copy of n bytes at file offset off between a map and a buffer
 * (to_map: buf -> map).  On a fault, the file's current size says how much
 * still exists: copy exactly that (a short count), or -EIO if nothing at off
 * does.  The kernel zero-fills the last page past the new end without a
 * fault, so those bytes may read as zeros if the file shrinks meanwhile. */
static ssize_t guarded_copy(const rg_mapfile *m, char *buf, size_t n, off_t off, bool to_map)
{
    char *mp = m->base + off;
    copy_job j = {to_map ? mp : buf, to_map ? buf : mp, n, 0};
    long r = run_guarded((uintptr_t)m->base, (uintptr_t)m->base + m->maplen, copy_steps, &j);
    if (r >= 0)
        return r;
    struct stat st;
    if (fstat(m->fd, &st) != 0 || st.st_size <= off)
        return -EIO;
    size_t left = (size_t)(st.st_size - off);
    if (left >= n)
        return -EIO; /* faulted although the file is long enough: a hole we cannot read */
    copy_job k = {j.dst, j.src, left, 0};
    r = run_guarded((uintptr_t)m->base, (uintptr_t)m->base + m->maplen, copy_steps, &k);
    if (r >= 0)
        return r;
    return k.done ? (ssize_t)k.done : -EIO;
}

static int check_rw_args(const rg_mapfile *m, const void *buf, size_t n, off_t off)
{
    if (m == NULL || off < 0 || (buf == NULL && n > 0))
        return -EINVAL;
    return 0;
}

ssize_t rg_mapfile_read_at(const rg_mapfile *m, void *dst, size_t n, off_t off)
{
    int rc = check_rw_args(m, dst, n, off);
    if (rc)
        return rc;
    if (n == 0 || (uint64_t)off >= m->len)
        return 0;
    if (n > m->len - (size_t)off)
        n = m->len - (size_t)off;
    if (!m->windowed)
        return guarded_copy(m, dst, n, off, false);
    size_t done = 0;
    while (done < n) {
        ssize_t k = pread(m->fd, (char *)dst + done, n - done, off + (off_t)done);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return done ? (ssize_t)done : -errno;
        }
        if (k == 0) /* the file shrank under us */
            return done ? (ssize_t)done : -EIO;
        done += (size_t)k;
    }
    return (ssize_t)done;
}

ssize_t rg_mapfile_write_at(rg_mapfile *m, const void *src, size_t n, off_t off)
{
    int rc = check_rw_args(m, src, n, off);
    if (rc)
        return rc;
    if (!(m->flags & RG_MAP_WRITE))
        return -EPERM;
    if (n == 0 || (uint64_t)off >= m->len)
        return 0;
    if (n > m->len - (size_t)off)
        n = m->len - (size_t)off;
    if (!m->windowed)
        return guarded_copy(m, (char *)src, n, off, true);
    size_t done = 0;
    while (done < n) {
        ssize_t k = pwrite(m->fd, (const char *)src + done, n - done, off + (off_t)done);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return done ? (ssize_t)done : -errno;
        }
        if (k == 0)
            return done ? (ssize_t)done : -EIO;
        done += (size_t)k;
    }
    return (ssize_t)done;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14; older headers lack it */
#endif
static const int advice_table[] = {MADV_NORMAL,   MADV_SEQUENTIAL, MADV_RANDOM,       MADV_WILLNEED,
                                   MADV_DONTNEED, MADV_HUGEPAGE,   MADV_POPULATE_READ};

/* ---------------------------------------------------------------------------
 * How the map is backed: PAGEMAP_SCAN (Linux 6.7) walks this process's page
 * tables over a range and returns runs of pages sharing the categories we
 * ask for; "huge" is set for entries that map 2 MiB (a PMD) at once.  The
 * argument layout is the kernel's ABI (include/uapi/linux/fs.h), written
 * out here because the C library's headers may predate it.
 * ------------------------------------------------------------------------- */
typedef struct pm_region {
    uint64_t start, end, categories;
} pm_region;
typedef struct pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
} pm_scan_arg;
#define PM_SCAN_IOCTL _IOWR('f', 16, pm_scan_arg)
#define PM_IS_PRESENT (1u << 3)
#define PM_IS_HUGE (1u << 6)

/* Sums present and huge bytes of [lo, hi) (page-aligned addresses). */
static int backing_scan(uintptr_t lo, uintptr_t hi, rg_mapfile_backing *out)
{
    out->present = out->huge = 0;
    /* Opened per call: a descriptor kept across fork would describe the
     * parent's page tables. */
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    pm_region vec[64];
    int rc = 0;
    while (lo < hi) {
        pm_scan_arg a;
        memset(&a, 0, sizeof a);
        a.size = sizeof a;
        a.start = lo;
        a.end = hi;
        a.vec = (uintptr_t)vec;
        a.vec_len = sizeof vec / sizeof vec[0];
        a.category_mask = PM_IS_PRESENT; /* only present entries ... */
        a.return_mask = PM_IS_PRESENT | PM_IS_HUGE; /* ... split into runs by hugeness */
        int n = ioctl(fd, PM_SCAN_IOCTL, &a);
        if (n < 0) {
            rc = errno == ENOTTY || errno == EINVAL ? -EOPNOTSUPP : -errno;
            break;
        }
        for (int i = 0; i < n; i++) {
            out->present += vec[i].end - vec[i].start;
            if (vec[i].categories & PM_IS_HUGE)
                out->huge += vec[i].end - vec[i].start;
        }
        if (a.walk_end <= lo) { /* no progress: never loop forever on a kernel quirk */
            rc = -EOPNOTSUPP;
            break;
        }
        lo = (uintptr_t)a.walk_end;
    }
    close(fd);
    return rc;
}

int rg_mapfile_backing_of(const rg_mapfile *m, off_t off, size_t len, rg_mapfile_backing *out)
{
    if (m == NULL || out == NULL || off < 0 || m->windowed || (uint64_t)off > m->len)
        return -EINVAL;
    out->present = out->huge = 0;
    if (len == 0 || len > m->len - (size_t)off)
        len = m->len - (size_t)off;
    if (len == 0 || m->maplen == 0)
        return 0;
    size_t ps = page_size(), lo = (size_t)off & ~(ps - 1), hi = round_up((size_t)off + len, ps);
    return backing_scan((uintptr_t)m->base + lo, (uintptr_t)m->base + hi, out);
}

/* RG_ADVICE_HUGE_RELOAD over the map bytes [lo, hi): block by block, fault
 * the block in, and if it is not PMD-mapped, unmap it here, write back and
 * drop its cached pages and fault it back through the MADV_HUGEPAGE map,
 * whose fault path reads ahead in PMD-sized folios.  Returns the blocks
 * that are PMD-mapped now and were not before. */
static int huge_reload(rg_mapfile *m, size_t lo, size_t hi)
{
    const size_t huge = WINDOW_ALIGN;
    int reloaded = 0;
    for (size_t b = lo & ~(huge - 1); b < hi; b += huge) {
        size_t e = b + huge < m->maplen ? b + huge : m->maplen;
        char *p = m->base + b;
        if (e - b < huge)
            break; /* the file's tail: too short for a PMD, nothing to gain */
        if (madvise(p, e - b, MADV_POPULATE_READ) != 0)
            return -errno;
        rg_mapfile_backing bk;
        int rc = backing_scan((uintptr_t)p, (uintptr_t)p + (e - b), &bk);
        if (rc)
            return rc;
        if (bk.huge == e - b)
            continue;
        if (madvise(p, e - b, MADV_DONTNEED) != 0)
            return -errno;
        /* The kernel drops only clean pages that nobody maps: write dirty
         * ones back first (what writeback would do within seconds). */
        sync_file_range(m->fd, (off_t)b, (off_t)(e - b),
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
        posix_fadvise(m->fd, (off_t)b, (off_t)(e - b), POSIX_FADV_DONTNEED);
        if (madvise(p, e - b, MADV_POPULATE_READ) != 0)
            return -errno;
        rc = backing_scan((uintptr_t)p, (uintptr_t)p + (e - b), &bk);
        if (rc)
            return rc;
        reloaded += bk.huge == e - b; /* another process's map keeps old folios alive */
    }
    return reloaded;
}

int rg_mapfile_advise(rg_mapfile *m, int advice)
{
    if (m == NULL || advice < 0 || advice > RG_ADVICE_HUGE_RELOAD)
        return -EINVAL;
    if (advice == RG_ADVICE_HUGE_RELOAD)
        return rg_mapfile_advise_range(m, 0, 0, advice);
    if (m->base == NULL || m->maplen == 0)
        return 0; /* empty file or no window yet: nothing mapped to advise */
    if (madvise(m->base, m->maplen, advice_table[advice]) != 0)
        return -errno;
    return 0;
}

int rg_mapfile_advise_range(rg_mapfile *m, off_t off, size_t len, int advice)
{
    if (m == NULL || off < 0 || advice < 0 || advice > RG_ADVICE_HUGE_RELOAD || m->windowed)
        return -EINVAL;
    if ((uint64_t)off > m->len)
        return -EINVAL;
    if (advice == RG_ADVICE_HUGE_RELOAD && !(m->flags & RG_MAP_HUGEPAGE))
        return -EINVAL;
    if (len == 0 || len > m->len - (size_t)off)
        len = m->len - (size_t)off;
    if (len == 0 || m->maplen == 0)
        return 0;
    size_t ps = page_size(), lo = (size_t)off & ~(ps - 1), hi = round_up((size_t)off + len, ps);
    if (advice == RG_ADVICE_HUGE_RELOAD)
        return huge_reload(m, lo, hi);
    if (madvise((char *)m->base + lo, hi - lo, advice_table[advice]) != 0)
        return -errno;
    return 0;
}

int rg_mapfile_sync(rg_mapfile *m, off_t off, size_t len, bool async)
{
    if (m == NULL || off < 0)
        return -EINVAL;
    if (!(m->flags & RG_MAP_WRITE))
        return -EPERM;
    if (m->windowed)
        return fdatasync(m->fd) == 0 ? 0 : -errno;
    if ((uint64_t)off >= m->len)
        return m->len == 0 && off == 0 ? 0 : -EINVAL;
    if (len == 0 || len > m->len - (size_t)off)
        len = m->len - (size_t)off;
    size_t ps = page_size();
    size_t start = (size_t)off & ~(ps - 1);
    size_t end = (size_t)off + len;
    if (msync(m->base + start, end - start, async ? MS_ASYNC : MS_SYNC) != 0)
        return -errno;
    return 0;
}

const void *rg_mapfile_window(rg_mapfile *m, off_t off, size_t *len)
{
    if (m == NULL || len == NULL || off < 0) {
        errno = EINVAL;
        return NULL;
    }
    if ((uint64_t)off >= m->len) {
        errno = ENXIO;
        return NULL;
    }
    size_t want = *len;
    if (want > m->len - (size_t)off)
        want = m->len - (size_t)off;
    if (!m->windowed) {
        *len = want;
        return m->base + off;
    }
    if (want > m->window)
        want = m->window;
    size_t o = (size_t)off;
    if (m->base == NULL || o < (size_t)m->win_off || o + want > (size_t)m->win_off + m->maplen) {
        size_t ps = page_size();
        size_t start = o & ~(WINDOW_ALIGN - 1);
        if (o + want > start + m->window)
            start = o & ~(ps - 1);
        size_t wl = m->len - start < m->window ? m->len - start : m->window;
        window_drop(m);
        bool wr = (m->flags & RG_MAP_WRITE) != 0;
        void *p = mmap(NULL, wl, PROT_READ | (wr ? PROT_WRITE : 0),
                       (wr ? MAP_SHARED : MAP_PRIVATE) | ((m->flags & RG_MAP_POPULATE) ? MAP_POPULATE : 0), m->fd,
                       (off_t)start);
        if (p == MAP_FAILED)
            return NULL;
        m->base = p;
        m->maplen = round_up(wl, ps);
        m->win_off = (off_t)start;
        mapped_add(m->maplen);
        atomic_fetch_add_explicit(&st_moves, 1, memory_order_relaxed);
    }
    size_t avail = (size_t)m->win_off + m->maplen - o;
    if (avail > m->len - o)
        avail = m->len - o;
    *len = want < avail ? want : avail;
    return m->base + (o - (size_t)m->win_off);
}

/* ---------------------------------------------------------------------------
 * Views and scanning
 * ------------------------------------------------------------------------- */
rg_view rg_mapfile_view(const rg_mapfile *m, size_t off, size_t n)
{
    if (m == NULL || m->windowed || off >= m->len)
        return rg_view_make(m && !m->windowed ? m->base + m->len : NULL, 0);
    return rg_view_sub(rg_view_make(m->base, m->len), off, n > m->len - off ? m->len : off + n);
}

ssize_t rg_view_index_byte(rg_view v, int c)
{
    if (v.len == 0)
        return -1;
    const char *p = memchr(v.ptr, c, v.len);
    return p ? p - v.ptr : -1;
}

ssize_t rg_view_find(rg_view v, rg_view needle)
{
    if (needle.len == 0)
        return 0;
    if (v.len < needle.len)
        return -1;
    const char *p = memmem(v.ptr, v.len, needle.ptr, needle.len);
    return p ? p - v.ptr : -1;
}

bool rg_view_cut(rg_view v, int sep, rg_view *before, rg_view *after)
{
    ssize_t i = rg_view_index_byte(v, sep);
    rg_view b = v, a = rg_view_make(v.ptr ? v.ptr + v.len : NULL, 0);
    if (i >= 0) {
        b = rg_view_make(v.ptr, (size_t)i);
        a = rg_view_make(v.ptr + i + 1, v.len - (size_t)i - 1);
    }
    if (before)
        *before = b;
    if (after)
        *after = a;
    return i >= 0;
}

bool rg_view_next(rg_view *rest, int sep, rg_view *rec)
{
    if (rest == NULL || rest->len == 0)
        return false;
    rg_view b, a;
    if (!rg_view_cut(*rest, sep, &b, &a))
        a = rg_view_make(rest->ptr + rest->len, 0);
    if (rec)
        *rec = b;
    *rest = a;
    return true;
}

/* Byte counting: compare 32 (or 16) bytes at a time, accumulate the 0/-1
 * results in byte lanes for at most 63 steps of 4 vectors (252 fits a byte),
 * then fold them into 64-bit sums with psadbw. */
static size_t count_scalar(const unsigned char *p, size_t n, unsigned char c)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i] == c;
    return k;
}

#if RGI_X86
__attribute__((target("avx2"))) static size_t count_avx2(const unsigned char *p, size_t n, unsigned char c)
{
    const __m256i needle = _mm256_set1_epi8((char)c);
    const __m256i zero = _mm256_setzero_si256();
    __m256i total = zero;
    size_t i = 0;
    while (n - i >= 128) {
        __m256i acc = zero;
        size_t steps = (n - i) / 128;
        if (steps > 63)
            steps = 63; /* 4 per step per lane: 63 * 4 = 252 fits a byte */
        for (size_t s = 0; s < steps; s++, i += 128) {
            __m256i a = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + i)), needle);
            __m256i b = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + i + 32)), needle);
            __m256i d = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + i + 64)), needle);
            __m256i e = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + i + 96)), needle);
            acc = _mm256_sub_epi8(acc, _mm256_add_epi8(a, b));
            acc = _mm256_sub_epi8(acc, _mm256_add_epi8(d, e));
        }
        total = _mm256_add_epi64(total, _mm256_sad_epu8(acc, zero));
    }
    size_t k = (size_t)_mm256_extract_epi64(total, 0) + (size_t)_mm256_extract_epi64(total, 1) +
               (size_t)_mm256_extract_epi64(total, 2) + (size_t)_mm256_extract_epi64(total, 3);
    return k + count_scalar(p + i, n - i, c);
}

static size_t count_sse2(const unsigned char *p, size_t n, unsigned char c)
{
    const __m128i needle = _mm_set1_epi8((char)c);
    const __m128i zero = _mm_setzero_si128();
    __m128i total = zero;
    size_t i = 0;
    while (n - i >= 64) {
        __m128i acc = zero;
        size_t steps = (n - i) / 64;
        if (steps > 63)
            steps = 63; /* 4 per step per lane: 63 * 4 = 252 fits a byte */
        for (size_t s = 0; s < steps; s++, i += 64) {
            __m128i a = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + i)), needle);
            __m128i b = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + i + 16)), needle);
            __m128i d = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + i + 32)), needle);
            __m128i e = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + i + 48)), needle);
            acc = _mm_sub_epi8(acc, _mm_add_epi8(a, b));
            acc = _mm_sub_epi8(acc, _mm_add_epi8(d, e));
        }
        total = _mm_add_epi64(total, _mm_sad_epu8(acc, zero));
    }
    size_t k = (size_t)_mm_cvtsi128_si64(total) + (size_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(total, total));
    return k + count_scalar(p + i, n - i, c);
}
#endif

size_t rg_view_count_byte(rg_view v, int c)
{
    if (v.len == 0)
        return 0;
#if RGI_X86
    if (__builtin_cpu_supports("avx2"))
        return count_avx2((const unsigned char *)v.ptr, v.len, (unsigned char)c);
    return count_sse2((const unsigned char *)v.ptr, v.len, (unsigned char)c);
#else
    return count_scalar((const unsigned char *)v.ptr, v.len, (unsigned char)c);
#endif
}

typedef struct guard_call {
    long (*fn)(rg_view v, void *arg);
    rg_view v;
    void *arg;
} guard_call;

static long call_user(void *arg)
{
    guard_call *g = arg;
    return g->fn(g->v, g->arg);
}

long rg_mapfile_guard(const rg_mapfile *m, long (*fn)(rg_view v, void *arg), rg_view v, void *arg)
{
    if (m == NULL || fn == NULL)
        return -EINVAL;
    guard_call g = {fn, v, arg};
    if (m->base == NULL || m->maplen == 0)
        return fn(v, arg);
    return run_guarded((uintptr_t)m->base, (uintptr_t)m->base + m->maplen, call_user, &g);
}

typedef struct scan_job {
    const unsigned char *p;
    size_t n;
    int c;
    bool index;
} scan_job;

static long scan_fn(void *arg)
{
    scan_job *j = arg;
    if (j->index) {
        const unsigned char *q = memchr(j->p, j->c, j->n);
        return q ? (long)(q - j->p) : -1;
    }
    return (long)rg_view_count_byte(rg_view_make(j->p, j->n), j->c);
}

/* Walks [off, off+n) window by window; stops early for index searches. */
static ssize_t scan(rg_mapfile *m, off_t off, size_t n, int c, bool index)
{
    if (m == NULL || off < 0)
        return -EINVAL;
    if ((uint64_t)off >= m->len || n == 0)
        return index ? -1 : 0;
    if (n > m->len - (size_t)off)
        n = m->len - (size_t)off;
    size_t done = 0, count = 0;
    while (done < n) {
        size_t k = n - done;
        const void *p = rg_mapfile_window(m, off + (off_t)done, &k);
        if (p == NULL)
            return -errno;
        scan_job j = {p, k, c, index};
        long r = run_guarded((uintptr_t)m->base, (uintptr_t)m->base + m->maplen, scan_fn, &j);
        if (r == -EIO)
            return -EIO;
        if (index) {
            if (r >= 0)
                return (ssize_t)(done + (size_t)r);
        } else {
            count += (size_t)r;
        }
        done += k;
    }
    return index ? -1 : (ssize_t)count;
}

ssize_t rg_mapfile_count_byte(rg_mapfile *m, off_t off, size_t n, int c)
{
    return scan(m, off, n, c, false);
}

ssize_t rg_mapfile_index_byte(rg_mapfile *m, off_t off, size_t n, int c)
{
    return scan(m, off, n, c, true);
}

void rg_mapfile_read_stats(rg_mapfile_stats *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    out->mapped = atomic_load_explicit(&mapped_bytes, memory_order_relaxed);
    out->charged = atomic_load_explicit(&st_charged, memory_order_relaxed);
    out->maps = atomic_load_explicit(&st_maps, memory_order_relaxed);
    out->windowed = atomic_load_explicit(&st_windowed, memory_order_relaxed);
    out->window_moves = atomic_load_explicit(&st_moves, memory_order_relaxed);
    out->sigbus_caught = atomic_load_explicit(&st_sigbus, memory_order_relaxed);
}
