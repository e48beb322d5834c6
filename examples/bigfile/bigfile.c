/* examples/bigfile — count lines, words and bytes of a large file, like wc,
 * three ways: an rg_mapfile scanned in place by every core, a read() loop
 * with 64 KiB buffers (the copy every read() pays), and `wc` itself (run by
 * the load script).
 *
 * Algorithm: the file is cut into one contiguous part per thread (2 MiB
 * aligned); each part is scanned 64 bytes at a time with SIMD compares
 * (AVX2, or SSE2 when the CPU lacks AVX2; chosen at run time), giving 64-bit
 * masks of newlines, of word separators and of printable bytes.  Lines are
 * popcount(newline mask); words follow wc's rule exactly (see byte_class and
 * words_block: one 64-bit add carries the in-word state across transparent
 * bytes), the state entering a part being found by looking back from it.
 * No per-line call, no copy.  The map is 2 MiB-aligned and advised for file
 * THP (RG_MAP_HUGEPAGE), so the page cache's 2 MiB folios are mapped with
 * one PMD entry each; --populate has each thread fault its part in with one
 * MADV_POPULATE_READ before scanning it.
 *
 * Why the page cache's folios decide everything here (measured on the
 * 2-vCPU Firecracker VMs of perf/RESULTS.md, kernel 6.18): through 4 KiB
 * entries every page of a 2 GiB scan costs a TLB miss of ~1-2 us under
 * nested paging — even with the entries already populated — so a mapped
 * scan runs at 1-4 GB/s and loses to a read() loop (~5-10 GB/s, the kernel
 * copies through its own huge direct map).  Through 2 MiB entries the same
 * scan runs at ~20 GB/s per core.  The cache holds 2 MiB folios for a file
 * read from disk (read-ahead of 2 MiB or more, or faults through a
 * hugepage-advised map), small ones for a file written and still cached;
 * no madvise maps small folios with PMDs.
 *
 * --mode=auto (the default) looks at a sample of the map with
 * rg_mapfile_backing_of (choose_mode) and scans the map when it is mapped
 * 2 MiB at a time, else runs pread.  --reload (with mmap or auto) first
 * makes the cache hold the file in 2 MiB folios
 * (RG_ADVICE_HUGE_RELOAD: a disk read of the blocks that were small, once),
 * then scans the map.
 * A fourth way, --mode=pread, reads the parts in parallel with pread into
 * per-thread 64 KiB buffers (see run_pread for when that wins).
 *
 * Usage: bigfile [-l] [-q] [--mode=auto|mmap|read|pread|touch] [--threads=N] [--populate] [--reload] FILE
 * Prints "lines words bytes FILE" (like wc; -l: lines only) on stdout and the
 * scan rate on stderr.
 */
#define _GNU_SOURCE
#include <regio.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef struct counts {
    uint64_t lines, words, bytes;
} counts;

/* wc's word rule in the C locale (GNU coreutils 9.1, the single-byte path):
 * the separators \t \n \v \f \r and space end a word; a printable non-space
 * byte (0x21..0x7e) starts one; every other byte (controls, DEL, 0x80..0xff)
 * is transparent: it neither starts nor ends a word.  So "a\x01b" is one
 * word and " \x01 " is none. */
enum { CL_TRANSPARENT = 0, CL_SEP = 1, CL_PRINT = 2 };
static int byte_class(unsigned char c)
{
    if (c == ' ' || (unsigned char)(c - 9) <= 4)
        return CL_SEP;
    return c > 0x20 && c < 0x7f ? CL_PRINT : CL_TRANSPARENT;
}

/* Scalar tail and reference; *in_word: inside a word before p (wc's state). */
static void scan_scalar(const unsigned char *p, size_t n, bool *in_word, bool lines_only, counts *c)
{
    bool w = *in_word;
    for (size_t i = 0; i < n; i++) {
        c->lines += p[i] == '\n';
        if (!lines_only) {
            int k = byte_class(p[i]);
            c->words += !w && k == CL_PRINT;
            w = k == CL_PRINT ? true : k == CL_SEP ? false : w;
        }
    }
    *in_word = w;
}

/* One 64-byte block as bit masks: sep (separators) and prt (printable
 * non-space).  The in-word state after each byte is "the last non-
 * transparent byte so far was printable": seeds at printable bytes, carried
 * upward through every byte that is not a separator.  With M = ~sep and the
 * seeds P (P is inside M), the carries of the addition M + P + carry_in are
 * exactly the positions a seed (or the previous block's state) reaches, so
 * state = (P | carries) & M with carries = (M + P + cin) ^ M ^ P.  Words are
 * the rising edges of the state.  Branch-free, no per-byte loop. */
static inline uint64_t words_block(uint64_t sep, uint64_t prt, uint64_t *state_in)
{
    uint64_t m = ~sep, cin = *state_in;
    uint64_t carries = (m + prt + cin) ^ m ^ prt;
    uint64_t state = (prt | carries) & m;
    uint64_t w = (uint64_t)__builtin_popcountll(state & ~(state << 1 | cin));
    *state_in = state >> 63;
    return w;
}

#if defined(__x86_64__)
__attribute__((target("avx2,popcnt"))) static void scan_avx2(const unsigned char *p, size_t n, bool *in_word,
                                                             counts *c)
{
    const __m256i nl = _mm256_set1_epi8('\n'), sp = _mm256_set1_epi8(' ');
    const __m256i nine = _mm256_set1_epi8(9), four = _mm256_set1_epi8(4);
    const __m256i lo = _mm256_set1_epi8(0x20), hi = _mm256_set1_epi8(0x7f);
    uint64_t state = *in_word, lines = 0, words = 0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(p + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(p + i + 32));
        uint64_t ml = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, nl)) |
                      (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, nl)) << 32;
        /* separator: c == ' ' or (c - 9) <= 4 unsigned, i.e. min(c - 9, 4) == c - 9 */
        __m256i ta = _mm256_sub_epi8(a, nine), tb = _mm256_sub_epi8(b, nine);
        __m256i sa = _mm256_or_si256(_mm256_cmpeq_epi8(a, sp), _mm256_cmpeq_epi8(_mm256_min_epu8(ta, four), ta));
        __m256i sb = _mm256_or_si256(_mm256_cmpeq_epi8(b, sp), _mm256_cmpeq_epi8(_mm256_min_epu8(tb, four), tb));
        /* printable non-space: 0x20 < c < 0x7f as signed bytes (0x80..0xff are negative) */
        __m256i pa = _mm256_and_si256(_mm256_cmpgt_epi8(a, lo), _mm256_cmpgt_epi8(hi, a));
        __m256i pb = _mm256_and_si256(_mm256_cmpgt_epi8(b, lo), _mm256_cmpgt_epi8(hi, b));
        uint64_t ms = (uint32_t)_mm256_movemask_epi8(sa) | (uint64_t)(uint32_t)_mm256_movemask_epi8(sb) << 32;
        uint64_t mp = (uint32_t)_mm256_movemask_epi8(pa) | (uint64_t)(uint32_t)_mm256_movemask_epi8(pb) << 32;
        lines += (uint64_t)__builtin_popcountll(ml);
        words += words_block(ms, mp, &state);
    }
    c->lines += lines;
    c->words += words;
    bool w = state != 0;
    scan_scalar(p + i, n - i, &w, false, c);
    *in_word = w;
}

static void scan_sse2(const unsigned char *p, size_t n, bool *in_word, counts *c)
{
    const __m128i nl = _mm_set1_epi8('\n'), sp = _mm_set1_epi8(' ');
    const __m128i nine = _mm_set1_epi8(9), four = _mm_set1_epi8(4);
    const __m128i lo = _mm_set1_epi8(0x20), hi = _mm_set1_epi8(0x7f);
    uint64_t state = *in_word, lines = 0, words = 0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        uint64_t ml = 0, ms = 0, mp = 0;
        for (int k = 0; k < 4; k++) {
            __m128i a = _mm_loadu_si128((const __m128i *)(p + i + 16 * k));
            __m128i t = _mm_sub_epi8(a, nine);
            __m128i s = _mm_or_si128(_mm_cmpeq_epi8(a, sp), _mm_cmpeq_epi8(_mm_min_epu8(t, four), t));
            __m128i q = _mm_and_si128(_mm_cmpgt_epi8(a, lo), _mm_cmpgt_epi8(hi, a));
            ml |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(a, nl)) << (16 * k);
            ms |= (uint64_t)(uint16_t)_mm_movemask_epi8(s) << (16 * k);
            mp |= (uint64_t)(uint16_t)_mm_movemask_epi8(q) << (16 * k);
        }
        lines += (uint64_t)__builtin_popcountll(ml);
        words += words_block(ms, mp, &state);
    }
    c->lines += lines;
    c->words += words;
    bool w = state != 0;
    scan_scalar(p + i, n - i, &w, false, c);
    *in_word = w;
}
#endif

/* wc's in-word state just before offset off: the class of the last byte
 * before it that is not transparent (usually the byte right before). */
static bool state_before(const unsigned char *base, size_t off)
{
    while (off > 0) {
        int k = byte_class(base[--off]);
        if (k != CL_TRANSPARENT)
            return k == CL_PRINT;
    }
    return false;
}

static bool have_avx2;

/* Counts [p, p+n); *in_word: wc's state before p, updated. */
static void scan(const unsigned char *p, size_t n, bool *in_word, bool lines_only, counts *c)
{
    c->bytes += n;
    if (lines_only) {
        c->lines += rg_view_count_byte(rg_view_make(p, n), '\n');
        return;
    }
#if defined(__x86_64__)
    if (have_avx2)
        scan_avx2(p, n, in_word, c);
    else
        scan_sse2(p, n, in_word, c);
#else
    scan_scalar(p, n, in_word, false, c);
#endif
}

typedef struct part {
    rg_mapfile *m;
    bool populate;
    const unsigned char *base; /* the whole map */
    size_t off, len;
    bool lines_only;
    counts c;
} part;

static void *scan_part(void *arg)
{
    part *pt = arg;
    if (pt->populate) /* this thread's own faults, in one call: see run_mmap */
        rg_mapfile_advise_range(pt->m, (off_t)pt->off, pt->len, RG_ADVICE_POPULATE);
    bool w = state_before(pt->base, pt->off);
    scan(pt->base + pt->off, pt->len, &w, pt->lines_only, &pt->c);
    return NULL;
}

static int run_mmap(const char *path, int threads, bool populate, bool reload, bool quiet, bool lines_only,
                    counts *out)
{
    /* RG_MAP_HUGEPAGE: the map is 2 MiB-aligned and advised for file THP,
     * so the large folios the page cache holds are mapped 2 MiB at a time.
     * Without it, each 4 KiB page costs a TLB miss that nested paging makes
     * very expensive (perf/RESULTS.md: ~1 GB/s vs ~20 GB/s here). */
    rg_mapfile *m = rg_mapfile_open(path, RG_MAP_HUGEPAGE);
    if (m == NULL) {
        fprintf(stderr, "bigfile: %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t len = rg_mapfile_len(m);
    const unsigned char *base = rg_mapfile_data(m);
    if (base == NULL) { /* beyond the address-space budget: walk the windows */
        bool w = false;
        for (size_t off = 0; off < len;) {
            size_t k = len - off;
            const unsigned char *p = rg_mapfile_window(m, (off_t)off, &k);
            if (p == NULL) {
                fprintf(stderr, "bigfile: window: %s\n", strerror(errno));
                rg_mapfile_close(m);
                return 1;
            }
            scan(p, k, &w, lines_only, out);
            off += k;
        }
        rg_mapfile_close(m);
        return 0;
    }
    if (reload) { /* once: the page cache then holds the file in 2 MiB folios */
        int r = rg_mapfile_advise(m, RG_ADVICE_HUGE_RELOAD);
        if (r < 0)
            fprintf(stderr, "bigfile: reload: %s\n", strerror(-r));
        else if (!quiet)
            fprintf(stderr, "bigfile: reload: %d blocks of 2 MiB read back as 2 MiB folios\n", r);
    }
    rg_mapfile_advise(m, RG_ADVICE_SEQUENTIAL);
    if (threads < 1)
        threads = 1;
    if (len < ((size_t)1 << 20))
        threads = 1;
    part pts[64];
    pthread_t tid[64];
    size_t chunk = (len / (size_t)threads + ((size_t)2 << 20) - 1) & ~(((size_t)2 << 20) - 1);
    for (int i = 0; i < threads; i++) {
        size_t off = (size_t)i * chunk;
        if (off > len)
            off = len;
        size_t n = len - off < chunk ? len - off : chunk;
        pts[i] = (part){m, populate, base, off, n, lines_only, {0, 0, 0}};
    }
    for (int i = 1; i < threads; i++)
        pthread_create(&tid[i], NULL, scan_part, &pts[i]);
    scan_part(&pts[0]);
    for (int i = 1; i < threads; i++)
        pthread_join(tid[i], NULL);
    for (int i = 0; i < threads; i++) {
        out->lines += pts[i].c.lines;
        out->words += pts[i].c.words;
        out->bytes += pts[i].c.bytes;
    }
    rg_mapfile_close(m);
    return 0;
}

/* --mode=pread: every core preads its own part in 64 KiB steps into a
 * buffer that stays in L2 and scans it there.  When the page cache holds
 * the file in small folios, a map pays a TLB miss per 4 KiB (see the file
 * header) and the kernel's copy into a hot buffer is the faster way. */
typedef struct ppart {
    int fd;
    size_t off, len;
    bool lines_only;
    counts c;
    int err;
} ppart;

static void *pread_part(void *arg)
{
    ppart *pt = arg;
    enum { BUF = 64 << 10 };
    unsigned char *buf = rg_malloc(BUF + 1);
    if (buf == NULL) {
        pt->err = ENOMEM;
        return NULL;
    }
    bool w = false; /* wc's state before the part: scan back block by block */
    for (size_t end = pt->off; end > 0;) {
        size_t k = end < BUF ? end : BUF;
        if (pread(pt->fd, buf, k, (off_t)(end - k)) != (ssize_t)k) {
            pt->err = EIO;
            break;
        }
        size_t i = k;
        while (i > 0 && byte_class(buf[i - 1]) == CL_TRANSPARENT)
            i--;
        if (i > 0) {
            w = byte_class(buf[i - 1]) == CL_PRINT;
            break;
        }
        end -= k;
    }
    for (size_t done = 0; done < pt->len;) {
        size_t want = pt->len - done < BUF ? pt->len - done : BUF;
        ssize_t k = pread(pt->fd, buf, want, (off_t)(pt->off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            pt->err = k < 0 ? errno : EIO;
            break;
        }
        scan(buf, (size_t)k, &w, pt->lines_only, &pt->c);
        done += (size_t)k;
    }
    rg_free(buf);
    return NULL;
}

static int run_pread(const char *path, int threads, bool lines_only, counts *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "bigfile: %s: %s\n", path, strerror(errno));
        return 1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return 1;
    }
    size_t len = (size_t)st.st_size;
    if (len < ((size_t)1 << 20))
        threads = 1;
    ppart pts[64];
    pthread_t tid[64];
    size_t chunk = (len / (size_t)threads + 65535) & ~(size_t)65535;
    for (int i = 0; i < threads; i++) {
        size_t off = (size_t)i * chunk < len ? (size_t)i * chunk : len;
        pts[i] = (ppart){fd, off, len - off < chunk ? len - off : chunk, lines_only, {0, 0, 0}, 0};
    }
    for (int i = 1; i < threads; i++)
        pthread_create(&tid[i], NULL, pread_part, &pts[i]);
    pread_part(&pts[0]);
    int rc = 0;
    for (int i = 0; i < threads; i++) {
        if (i)
            pthread_join(tid[i], NULL);
        if (pts[i].err) {
            fprintf(stderr, "bigfile: pread: %s\n", strerror(pts[i].err));
            rc = 1;
        }
        out->lines += pts[i].c.lines;
        out->words += pts[i].c.words;
        out->bytes += pts[i].c.bytes;
    }
    close(fd);
    return rc;
}

/* --mode=touch: what the mapping itself costs.  Maps the file as run_mmap
 * does and reads one byte per 4 KiB page, twice; prints ns per page.  On a
 * machine where the first pass costs far more than the second, the first
 * access to each 4 KiB of a mapping is what a mapped scan pays (a TLB or
 * shadow page-table fill the guest cannot avoid, even with 2 MiB folios),
 * and read() — which copies through the kernel's own long-lived mapping —
 * wins for one-shot scans.  Last, how much of the map is mapped 2 MiB at a
 * time (rg_mapfile_backing_of): where that is all of it, both passes are
 * cheap. */
static int run_touch(const char *path, counts *out)
{
    rg_mapfile *m = rg_mapfile_open(path, RG_MAP_HUGEPAGE);
    if (m == NULL || rg_mapfile_data(m) == NULL) {
        fprintf(stderr, "bigfile: %s: %s\n", path, strerror(errno));
        rg_mapfile_close(m);
        return 1;
    }
    const volatile unsigned char *p = rg_mapfile_data(m);
    size_t len = rg_mapfile_len(m), pages = (len + 4095) / 4096;
    for (int pass = 0; pass < 2; pass++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        unsigned sum = 0;
        for (size_t i = 0; i < len; i += 4096)
            sum += p[i];
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
        fprintf(stderr, "bigfile: touch pass %d: %zu pages, %.0f ns/page (sum %u)\n", pass + 1, pages,
                pages ? ns / (double)pages : 0.0, sum);
    }
    rg_mapfile_backing b;
    int rc = rg_mapfile_backing_of(m, 0, 0, &b);
    if (rc == 0)
        fprintf(stderr, "bigfile: touch: %llu MiB mapped, %llu MiB of it 2 MiB at a time\n",
                (unsigned long long)(b.present >> 20), (unsigned long long)(b.huge >> 20));
    else
        fprintf(stderr, "bigfile: touch: backing unknown: %s\n", strerror(-rc));
    out->bytes = len;
    rg_mapfile_close(m);
    return 0;
}

/* --mode=auto (the default) decides by how the page cache holds the file,
 * which is what a mapped scan's speed depends on (perf/RESULTS.md): it maps
 * the file as run_mmap does, faults in 16 blocks of 2 MiB spread over it
 * (RG_ADVICE_POPULATE: one PMD each when the cache holds 2 MiB folios, 512
 * PTEs otherwise; ~1 ms at most) and asks rg_mapfile_backing_of how much
 * of them is mapped 2 MiB at a time.  A 4 KiB-mapped page costs a mapped
 * scan ~1-2 us in TLB misses here against ~0.4 us for pread to copy and
 * scan it, a 2 MiB-mapped one 0.03-0.1 us: the map wins when at least 7/8
 * of the sample is huge.  Where the kernel cannot tell (no PAGEMAP_SCAN,
 * before Linux 6.7), it falls back to timing the first touch of the first
 * 2 MiB in CPU time (a preempted run must not flip the choice).  Files
 * under 64 MiB always take the map: nothing to gain either way. */
static const char *choose_mode(const char *path, bool verbose)
{
    rg_mapfile *m = rg_mapfile_open(path, RG_MAP_HUGEPAGE);
    if (m == NULL)
        return "pread";
    const volatile unsigned char *p = rg_mapfile_data(m);
    size_t len = rg_mapfile_len(m);
    const size_t blk = (size_t)2 << 20;
    if (p == NULL || len < ((size_t)64 << 20)) {
        rg_mapfile_close(m);
        return "mmap";
    }
    size_t nblk = len / blk;
    uint64_t present = 0, huge = 0;
    int rc = 0;
    for (size_t i = 0; i < 16 && rc == 0; i++) {
        off_t off = (off_t)((nblk * i / 16) * blk);
        rg_mapfile_advise_range(m, off, blk, RG_ADVICE_POPULATE);
        rg_mapfile_backing b;
        rc = rg_mapfile_backing_of(m, off, blk, &b);
        present += b.present;
        huge += b.huge;
    }
    const char *mode;
    if (rc == 0) {
        mode = huge * 8 >= present * 7 && present > 0 ? "mmap" : "pread";
        if (verbose)
            fprintf(stderr, "bigfile: auto: %.0f%% of a 32 MiB sample is mapped 2 MiB at a time: %s\n",
                    present ? 100.0 * (double)huge / (double)present : 0.0, mode);
    } else {
        struct timespec t0, t1;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
        unsigned sum = 0;
        for (size_t i = 0; i < blk; i += 4096)
            sum += p[(size_t)2 * blk + i]; /* a block the sample above did not touch */
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
        double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
        double per_page = ns / (double)(blk / 4096) + (double)(sum & 0);
        mode = per_page > 400.0 ? "pread" : "mmap";
        if (verbose)
            fprintf(stderr, "bigfile: auto: no page-table query (%s); first touch %.0f ns/page: %s\n", strerror(-rc),
                    per_page, mode);
    }
    rg_mapfile_close(m);
    return mode;
}

static int run_read(const char *path, bool lines_only, counts *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "bigfile: %s: %s\n", path, strerror(errno));
        return 1;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    enum { BUF = 64 << 10 };
    unsigned char *buf = rg_malloc(BUF);
    if (buf == NULL) {
        close(fd);
        return 1;
    }
    bool w = false;
    for (;;) {
        ssize_t k = read(fd, buf, BUF);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            fprintf(stderr, "bigfile: read: %s\n", strerror(errno));
            break;
        }
        if (k == 0)
            break;
        scan(buf, (size_t)k, &w, lines_only, out);
    }
    rg_free(buf);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    bool lines_only = false, populate = false, reload = false, quiet = false;
    const char *mode = "auto", *path = NULL;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-l") == 0)
            lines_only = true;
        else if (strcmp(argv[i], "-q") == 0)
            quiet = true;
        else if (strncmp(argv[i], "--mode=", 7) == 0)
            mode = argv[i] + 7;
        else if (strncmp(argv[i], "--threads=", 10) == 0)
            threads = atol(argv[i] + 10);
        else if (strcmp(argv[i], "--populate") == 0)
            populate = true;
        else if (strcmp(argv[i], "--reload") == 0)
            reload = true;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: bigfile [-l] [-q] [--mode=auto|mmap|read|pread|touch] [--threads=N] [--populate] [--reload] FILE\n");
            return 2;
        } else
            path = argv[i];
    }
    if (path == NULL || threads < 1 || threads > 64) {
        fprintf(stderr, "usage: bigfile [-l] [-q] [--mode=auto|mmap|read|pread|touch] [--threads=N] [--populate] [--reload] FILE\n");
        return 2;
    }
#if defined(__x86_64__)
    have_avx2 = __builtin_cpu_supports("avx2");
#endif
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    counts c = {0, 0, 0};
    int rc;
    if (strcmp(mode, "auto") == 0) /* --reload makes the map the fast way: no need to look */
        mode = reload ? "mmap" : choose_mode(path, !quiet);
    if (strcmp(mode, "mmap") == 0)
        rc = run_mmap(path, (int)threads, populate, reload, quiet, lines_only, &c);
    else if (strcmp(mode, "read") == 0)
        rc = run_read(path, lines_only, &c);
    else if (strcmp(mode, "pread") == 0)
        rc = run_pread(path, (int)threads, lines_only, &c);
    else if (strcmp(mode, "touch") == 0)
        rc = run_touch(path, &c);
    else {
        fprintf(stderr, "bigfile: unknown mode %s\n", mode);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc)
        return rc;
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (lines_only)
        printf("%llu %s\n", (unsigned long long)c.lines, path);
    else
        printf("%llu %llu %llu %s\n", (unsigned long long)c.lines, (unsigned long long)c.words,
               (unsigned long long)c.bytes, path);
    if (!quiet)
        fprintf(stderr, "bigfile: %s %s%s: %.3f s, %.2f GB/s (%s)\n", mode, lines_only ? "-l" : "lines+words",
                strcmp(mode, "mmap") == 0 ? "" : "", s, s > 0 ? (double)c.bytes / s / 1e9 : 0.0,
                have_avx2 ? "avx2" : "sse2");
    return 0;
}
