/* regio/mapfile.h — zero-copy file maps (Go's golang.org/x/exp/mmap) and
 * views: pointer+length slices that never copy.
 *
 * ---------------------------------------------------------------------------
 * Contract of this section
 * ---------------------------------------------------------------------------
 * rg_mapfile_open maps a whole file read-only (or shared-writable with
 * RG_MAP_WRITE) and hands out its bytes without copying them.
 *
 *  - Placement: a whole-file map of 2 MiB or more starts at a 2 MiB-aligned
 *    address, so that the kernel maps page-cache folios of 2 MiB with one
 *    page-table entry (PMD).  Whether a map gets PMD entries depends on the
 *    folios the page cache already holds for the file, not on any advice:
 *    ext4 (Linux 6.16+) and read-ahead of 2 MiB or more give a file read
 *    from disk 2 MiB folios; a file written in pieces and still cached
 *    keeps small ones.  RG_MAP_HUGEPAGE (MADV_HUGEPAGE) makes the blocks
 *    that faults through the map read in come as 2 MiB folios;
 *    rg_mapfile_backing_of tells what a map got, and RG_ADVICE_HUGE_RELOAD
 *    turns a small-folio file into a 2 MiB one (a disk read, once).  It
 *    matters: on the 2-vCPU VMs of perf/RESULTS.md (nested paging) a scan
 *    through 4 KiB entries pays ~1-2 us per page in TLB misses (1-4 GB/s,
 *    slower than read()), through 2 MiB entries ~20 GB/s per core, 1.8x a
 *    read() loop on two cores.  Choose between the map and pread with
 *    rg_mapfile_backing_of, as examples/bigfile's --mode=auto does.
 *  - Length: rg_mapfile_len is the file's size when it was opened.  An empty
 *    file maps to a valid, non-NULL zero-length area.  The map does not grow
 *    or shrink with the file.
 *  - Address-space budget: maps share one process-wide budget of address
 *    space (default: 1 TiB, or half of RLIMIT_AS when that is set; see
 *    rg_mapfile_set_budget).  A file that does not fit in what is left, or a
 *    file opened with RG_MAP_WINDOWED, is served through a sliding window of
 *    `window` bytes (default 64 MiB): rg_mapfile_data returns NULL with errno
 *    EFBIG, and the bytes are reached with rg_mapfile_read_at (pread, thread
 *    safe) or rg_mapfile_window (maps the window holding a range).
 *  - Accounting: mapped bytes are page-cache pages, not heap; by default they
 *    are counted apart from the hard limit and reported by
 *    rg_mapfile_read_stats.  RG_MAP_CHARGE counts the whole mapped length
 *    (or the window) against the hard limit too; an open that would cross
 *    the limit fails with ENOMEM after running the limit ladder.
 *  - Truncation.  A file truncated (by anyone) while mapped makes the pages
 *    past its new end raise SIGBUS on access.  regio's own accessors —
 *    rg_mapfile_read_at, rg_mapfile_write_at, the rg_mapfile_* scanning
 *    helpers and any function run through rg_mapfile_guard — never die of
 *    it: they run under a per-thread recovery point (sigsetjmp) that regio's
 *    SIGBUS handler jumps to when the faulting address lies in the map being
 *    accessed, and report a short count or -EIO.  The handler is installed
 *    once, at the first open, with SA_NODEFER|SA_SIGINFO; any other SIGBUS is
 *    passed on to the handler that was installed before (or to the default
 *    action, which ends the process as it would have without regio).  An
 *    application that installs its own SIGBUS handler after opening a map
 *    replaces regio's: then the guarantee holds only if it chains to the
 *    previous handler.
 *    Direct access through rg_mapfile_data (or a view) is a plain memory
 *    access: it is as fast as memory and promises nothing if the file
 *    shrinks under it — the process gets SIGBUS.  Use it for files nobody
 *    truncates (or that you replace by rename, which never shrinks the
 *    mapped inode), or wrap the access in rg_mapfile_guard.
 *    Functions run under a guard must not take locks, allocate, or do
 *    anything that a jump out of them would leave half done.
 *  - Writes (RG_MAP_WRITE) go to the page cache at once and to the disk at
 *    rg_mapfile_sync (msync) or later; the file's size never changes.
 *  - Threads: read_at, data, len, views and guard are safe from any number
 *    of threads.  rg_mapfile_window, advise, sync and close are for one
 *    thread at a time per map.
 *
 * Errors: open returns NULL with errno (what open/fstat/mmap said, ENOMEM
 * for the hard limit, EINVAL for bad flags, EISDIR for a directory, ENODEV
 * for anything else that is not a regular file);
 * int-returning calls return 0 or a count, or -errno.
 *
 * Refinements of DESIGN.md §3: rg_mapfile_open takes the RG_MAP_* flags
 * below; rg_mapfile_open_opts adds the window size; rg_mapfile_data returns
 * NULL (errno EFBIG) for windowed maps.
 */
#ifndef REGIO_MAPFILE_H
#define REGIO_MAPFILE_H

#include "common.h"

#include <stdbool.h>
#include <string.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rg_mapfile rg_mapfile;

/* rg_mapfile_open flags */
#define RG_MAP_READ     0u  /* read-only, private (the default) */
#define RG_MAP_WRITE    1u  /* open O_RDWR and map shared and writable */
#define RG_MAP_POPULATE 2u  /* fault every page in at open (MAP_POPULATE) */
#define RG_MAP_CHARGE   4u  /* count the mapped bytes against the hard limit */
#define RG_MAP_WINDOWED 8u  /* always serve through a sliding window */
#define RG_MAP_HUGEPAGE 16u /* madvise(MADV_HUGEPAGE) at open: what faults read in comes as 2 MiB
                               folios (PMD-mapped); needed by RG_ADVICE_HUGE_RELOAD */
#define RG_MAP_FLAGS_ALL 31u

/* rg_mapfile_advise advice */
enum rg_map_advice {
    RG_ADVICE_NORMAL = 0,
    RG_ADVICE_SEQUENTIAL,  /* aggressive read-ahead, pages dropped behind */
    RG_ADVICE_RANDOM,      /* no read-ahead */
    RG_ADVICE_WILLNEED,    /* start reading the whole map in now */
    RG_ADVICE_DONTNEED,    /* drop the process's mappings of the pages (they stay cached) */
    RG_ADVICE_HUGEPAGE,    /* file THP: -EINVAL where the kernel or file system refuses */
    RG_ADVICE_POPULATE,    /* fault the range in now, no copy (MADV_POPULATE_READ, Linux 5.14;
                              -EINVAL before); -EIO if part of it is past a truncated end */
    RG_ADVICE_HUGE_RELOAD  /* make the page cache hold the range in 2 MiB folios: see below */
};

typedef struct rg_mapfile_opts {
    unsigned flags;  /* RG_MAP_* */
    size_t window;   /* sliding window size when windowed; rounded up to 2 MiB; 0 = 64 MiB */
} rg_mapfile_opts;

/* Maps the file at path.  NULL + errno: the open/fstat/mmap error, EINVAL
 * (path NULL, unknown flags), EISDIR, ENODEV (not a regular file), ENOMEM (hard limit with RG_MAP_CHARGE,
 * or no memory for the handle). */
RG_EXPORT rg_mapfile *rg_mapfile_open(const char *path, unsigned flags);
RG_EXPORT rg_mapfile *rg_mapfile_open_opts(const char *path, const rg_mapfile_opts *o);

/* The first byte of the file; never NULL for a whole-file map (an empty file
 * gives a valid zero-length area).  NULL + errno=EFBIG for a windowed map,
 * EINVAL for m == NULL.  Read-only: write through rg_mapfile_wdata. */
RG_EXPORT const void *rg_mapfile_data(const rg_mapfile *m);
/* Writable bytes of a RG_MAP_WRITE whole-file map; NULL + EPERM otherwise. */
RG_EXPORT void *rg_mapfile_wdata(rg_mapfile *m);
/* Size of the file at open; 0 for m == NULL. */
RG_EXPORT size_t rg_mapfile_len(const rg_mapfile *m);
/* True if the map is served through a sliding window. */
RG_EXPORT bool rg_mapfile_windowed(const rg_mapfile *m);

/* Copies up to n bytes at off into dst, like Go's mmap.ReaderAt.ReadAt and
 * pread(2): returns the number of bytes copied, which is less than n only at
 * the end of the map or of a range that vanished; 0 when off >= len (end of
 * file) or n == 0.  -EINVAL: m NULL, off < 0, dst NULL with n > 0.  -EIO:
 * the file was truncated under the map and not one byte at off could be
 * read (the bytes at off vanished).  Never raises SIGBUS.  After a
 * truncation the count follows the file's current size (fstat after the
 * fault), except that the kernel zero-fills the rest of the new last page
 * without faulting: bytes there read as zeros. */
RG_EXPORT ssize_t rg_mapfile_read_at(const rg_mapfile *m, void *dst, size_t n, off_t off);
/* Copies n bytes from src to off of a RG_MAP_WRITE map; the same counts and
 * errors as read_at, plus -EPERM for a read-only map.  Never extends the
 * file. */
RG_EXPORT ssize_t rg_mapfile_write_at(rg_mapfile *m, const void *src, size_t n, off_t off);

/* madvise on the whole map (the current window for windowed maps).
 * Returns 0, -EINVAL (bad advice, or the kernel refused it: e.g. hugepage
 * advice on a file system without file THP), or what madvise said;
 * RG_ADVICE_HUGE_RELOAD returns a count of blocks (see below). */
RG_EXPORT int rg_mapfile_advise(rg_mapfile *m, int advice);
/* The same for the bytes [off, off+len) of a whole-file map only (widened
 * to whole pages; len 0: to the end), so that each thread can advise (e.g.
 * RG_ADVICE_POPULATE) the part it is about to scan.  0, -EINVAL (bad
 * advice or range, windowed map, refused by the kernel), or what madvise
 * said (-EIO, -EFAULT for a range past a truncated end). */
RG_EXPORT int rg_mapfile_advise_range(rg_mapfile *m, off_t off, size_t len, int advice);

/* How the bytes [off, off+len) of a whole-file map (widened to whole
 * pages; len 0: to the end) are mapped in this process right now, read
 * from the kernel's page tables (PAGEMAP_SCAN on /proc/self/pagemap, Linux
 * 6.7).  `present`: bytes with a page-table entry; `huge`: of those, bytes
 * mapped by 2 MiB (PMD) entries.  Only what has been touched or populated
 * is present: fault a sample in first (RG_ADVICE_POPULATE) to learn how the
 * page cache holds the file.  Why it matters: a scan through 4 KiB entries
 * pays a TLB miss per page — ~1-2 us under nested paging on the VMs
 * perf/RESULTS.md measured, against 0.03-0.1 us per 4 KiB page through
 * 2 MiB entries — so `huge` says whether a mapped scan will beat read().
 * 0, -EINVAL (m or out NULL, off < 0 or past the end, windowed map),
 * -EOPNOTSUPP (a kernel without PAGEMAP_SCAN), or what open/ioctl said.
 * Safe from any number of threads. */
typedef struct rg_mapfile_backing {
    uint64_t present; /* bytes of the range mapped now */
    uint64_t huge;    /* of which mapped 2 MiB at a time */
} rg_mapfile_backing;
RG_EXPORT int rg_mapfile_backing_of(const rg_mapfile *m, off_t off, size_t len, rg_mapfile_backing *out);

/* RG_ADVICE_HUGE_RELOAD (rg_mapfile_advise_range or rg_mapfile_advise on a
 * whole-file map opened with RG_MAP_HUGEPAGE).  The page cache keeps a
 * file's pages in the folios it first made for them: a file read from disk
 * (read() or faults, with read-ahead of 2 MiB or more) gets 2 MiB folios,
 * which an aligned map maps with one PMD each; a file that was written
 * (and stayed cached) usually holds small folios, mapped 4 KiB at a time,
 * and no madvise changes that (MADV_COLLAPSE needs
 * CONFIG_READ_ONLY_THP_FOR_FS for regular files).  This advice, for each
 * 2 MiB block of the range that is not mapped by a PMD: drops this map's
 * entries for it, writes its dirty pages back (sync_file_range, what
 * writeback does within seconds anyway), asks the kernel to drop its
 * cached pages (POSIX_FADV_DONTNEED), and faults it back through the
 * hugepage-advised map, so read-ahead brings it in as one 2 MiB folio.
 * Cost: a disk read of those blocks, once; it pays for maps scanned more
 * than once or twice.  Side effects: other processes lose those cached
 * pages (they fault them back, in large folios); pages that someone else
 * maps stay as they were.  The bytes never change.  Returns the number of
 * blocks it turned into 2 MiB mappings (0: nothing to do, or the file
 * system keeps small folios), -EINVAL (windowed map,
 * not RG_MAP_HUGEPAGE, bad range), -EOPNOTSUPP (no PAGEMAP_SCAN), or what
 * madvise said (-EIO, -EFAULT past a truncated end). */

/* msync of [off, off+len) (len 0: to the end); async: MS_ASYNC instead of
 * MS_SYNC.  0, -EPERM (read-only map), -EINVAL, -EIO. */
RG_EXPORT int rg_mapfile_sync(rg_mapfile *m, off_t off, size_t len, bool async);

/* Makes the bytes [off, off + *len) reachable and returns a pointer to the
 * byte at off; *len is reduced to what is reachable there (the end of the
 * file or of the window).  Whole-file maps return data + off without any
 * system call.  Windowed maps move their window (one munmap + mmap) when
 * the range is outside it; the pointer stays valid until the next
 * rg_mapfile_window call on m or rg_mapfile_close.  *len larger than the
 * window is clamped to the window.  NULL + errno: EINVAL (bad arguments),
 * ENXIO (off >= len), what mmap said. */
RG_EXPORT const void *rg_mapfile_window(rg_mapfile *m, off_t off, size_t *len);

/* Unmaps and closes; NULL is ignored. */
RG_EXPORT void rg_mapfile_close(rg_mapfile *m);

/* ---------------------------------------------------------------------------
 * Views: pointer + length, never copied, never owning.  The "string" and the
 * "[]byte" of the Go seed are the same thing here: a const char range.
 * ------------------------------------------------------------------------- */
typedef struct rg_view {
    const char *ptr;
    size_t len;
} rg_view;

static inline rg_view rg_view_make(const void *p, size_t n)
{
    rg_view v;
    v.ptr = (const char *)p;
    v.len = p ? n : 0;
    return v;
}
/* A view of a NUL-terminated string (without the NUL); NULL gives empty. */
static inline rg_view rg_view_str(const char *s)
{
    return rg_view_make(s, s ? strlen(s) : 0);
}
/* v[from:to], clamped to v (Go would panic; regio returns what exists). */
static inline rg_view rg_view_sub(rg_view v, size_t from, size_t to)
{
    if (to > v.len)
        to = v.len;
    if (from > to)
        from = to;
    return rg_view_make(v.ptr + from, to - from);
}
static inline bool rg_view_eq(rg_view a, rg_view b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}
static inline bool rg_view_has_prefix(rg_view v, rg_view p)
{
    return v.len >= p.len && (p.len == 0 || memcmp(v.ptr, p.ptr, p.len) == 0);
}

/* Bytes [off, off+n) of a whole-file map, clamped; empty for windowed maps.
 * Access through it is direct: see "Truncation" above. */
RG_EXPORT rg_view rg_mapfile_view(const rg_mapfile *m, size_t off, size_t n);

/* Index of the first byte c in v, or -1. */
RG_EXPORT ssize_t rg_view_index_byte(rg_view v, int c);
/* Index of the first occurrence of needle in v, or -1 (empty needle: 0). */
RG_EXPORT ssize_t rg_view_find(rg_view v, rg_view needle);
/* Number of bytes equal to c (SIMD, runtime dispatch: AVX2 or SSE2). */
RG_EXPORT size_t rg_view_count_byte(rg_view v, int c);
/* Go's strings.Cut: splits v around the first sep; false (before = v,
 * after empty) when sep is absent. */
RG_EXPORT bool rg_view_cut(rg_view v, int sep, rg_view *before, rg_view *after);
/* Scanner step: takes the next sep-terminated record off the front of
 * *rest into *rec (without the separator) and returns true; the last record
 * needs no separator; false when *rest is empty.  With sep '\n' a trailing
 * '\r' is kept (use rg_view_trim_cr). */
RG_EXPORT bool rg_view_next(rg_view *rest, int sep, rg_view *rec);
/* v without one trailing '\r'. */
static inline rg_view rg_view_trim_cr(rg_view v)
{
    if (v.len && v.ptr[v.len - 1] == '\r')
        v.len--;
    return v;
}

/* Runs fn(v, arg) under m's SIGBUS recovery point (see "Truncation"):
 * returns what fn returned, or -EIO if fn touched a part of m that vanished
 * (fn was abandoned at that point).  fn must only read memory and compute:
 * no locks, no allocation, no I/O.  -EINVAL for m or fn NULL.  Nested
 * guards on one thread are allowed. */
RG_EXPORT long rg_mapfile_guard(const rg_mapfile *m, long (*fn)(rg_view v, void *arg), rg_view v, void *arg);

/* Guarded helpers over [off, off+n) of a map (whole-file or windowed; a
 * windowed map is walked window by window, so these are single-threaded per
 * windowed map).  Return a count or index, or -EIO (range vanished), -EINVAL. */
RG_EXPORT ssize_t rg_mapfile_count_byte(rg_mapfile *m, off_t off, size_t n, int c);
RG_EXPORT ssize_t rg_mapfile_index_byte(rg_mapfile *m, off_t off, size_t n, int c);

/* ---------------------------------------------------------------------------
 * Budget and statistics
 * ------------------------------------------------------------------------- */
/* Sets the process-wide address-space budget for whole-file maps and
 * returns the previous one; 0 only queries.  Maps already open keep their
 * address space; new opens that do not fit are windowed. */
RG_EXPORT size_t rg_mapfile_set_budget(size_t bytes);

typedef struct rg_mapfile_stats {
    uint64_t mapped;        /* bytes of address space mapped now (whole maps + windows) */
    uint64_t charged;       /* of which counted against the hard limit (RG_MAP_CHARGE) */
    uint64_t maps;          /* maps open now */
    uint64_t windowed;      /* of which windowed */
    uint64_t window_moves;  /* cumulative window remaps */
    uint64_t sigbus_caught; /* cumulative SIGBUS faults turned into -EIO */
} rg_mapfile_stats;
RG_EXPORT void rg_mapfile_read_stats(rg_mapfile_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* REGIO_MAPFILE_H */
