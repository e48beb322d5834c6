/* examples/bigfile — count lines, words and bytes of a large file, like wc,
 * three ways: an rg_mapfile scanned in place by every core, a read() loop
 * with 64 KiB buffers (the copy every read() pays), and `wc` itself (run by
 * the load script).
 *
 * Algorithm: the file is cut into one contiguous part per thread; each part
 * is scanned 64 bytes at a time with SIMD compares (AVX2, or SSE2 when the
 * CPU lacks AVX2; chosen at run time), giving 64-bit masks of newlines and
 * of white space.  Lines are popcount(newline mask); a word starts at a
 * non-space byte whose predecessor is a space (or the start of the file), so
 * words are popcount(~space & (space << 1 | carry)), the carry being the
 * last byte's class of the previous block — for a part, the byte just
 * before it in the map.  No per-line call, no copy.
 * White space is the C locale's: space, \t \n \v \f \r (what LC_ALL=C wc uses).
 *
 * A fourth way, --mode=pread, reads the parts in parallel with pread into
 * per-thread 64 KiB buffers (see run_pread for when that wins).
 *
 * Usage: bigfile [-l] [-c] [--mode=mmap|read|pread] [--threads=N] [--populate] FILE
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

static bool is_space(unsigned char c)
{
    return c == ' ' || (unsigned char)(c - 9) <= 4;
}

/* Scalar tail and reference; prev_space: the class of the byte before p. */
static void scan_scalar(const unsigned char *p, size_t n, bool *prev_space, bool lines_only, counts *c)
{
    bool ps = *prev_space;
    for (size_t i = 0; i < n; i++) {
        c->lines += p[i] == '\n';
        if (!lines_only) {
            bool s = is_space(p[i]);
            c->words += ps && !s;
            ps = s;
        }
    }
    *prev_space = ps;
}

#if defined(__x86_64__)
__attribute__((target("avx2,popcnt"))) static void scan_avx2(const unsigned char *p, size_t n, bool *prev_space,
                                                             counts *c)
{
    const __m256i nl = _mm256_set1_epi8('\n'), sp = _mm256_set1_epi8(' ');
    const __m256i nine = _mm256_set1_epi8(9), four = _mm256_set1_epi8(4);
    uint64_t carry = *prev_space, lines = 0, words = 0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(p + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(p + i + 32));
        uint64_t ml = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, nl)) |
                      (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, nl)) << 32;
        /* space: c == ' ' or (c - 9) <= 4 unsigned, i.e. min(c - 9, 4) == c - 9 */
        __m256i ta = _mm256_sub_epi8(a, nine), tb = _mm256_sub_epi8(b, nine);
        __m256i sa = _mm256_or_si256(_mm256_cmpeq_epi8(a, sp), _mm256_cmpeq_epi8(_mm256_min_epu8(ta, four), ta));
        __m256i sb = _mm256_or_si256(_mm256_cmpeq_epi8(b, sp), _mm256_cmpeq_epi8(_mm256_min_epu8(tb, four), tb));
        uint64_t ms = (uint32_t)_mm256_movemask_epi8(sa) | (uint64_t)(uint32_t)_mm256_movemask_epi8(sb) << 32;
        lines += (uint64_t)__builtin_popcountll(ml);
        words += (uint64_t)__builtin_popcountll(~ms & (ms << 1 | carry));
        carry = ms >> 63;
    }
    c->lines += lines;
    c->words += words;
    bool ps = carry != 0;
    scan_scalar(p + i, n - i, &ps, false, c);
    *prev_space = ps;
}

static void scan_sse2(const unsigned char *p, size_t n, bool *prev_space, counts *c)
{
    const __m128i nl = _mm_set1_epi8('\n'), sp = _mm_set1_epi8(' ');
    const __m128i nine = _mm_set1_epi8(9), four = _mm_set1_epi8(4);
    uint64_t carry = *prev_space, lines = 0, words = 0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        uint64_t ml = 0, ms = 0;
        for (int k = 0; k < 4; k++) {
            __m128i a = _mm_loadu_si128((const __m128i *)(p + i + 16 * k));
            __m128i t = _mm_sub_epi8(a, nine);
            __m128i s = _mm_or_si128(_mm_cmpeq_epi8(a, sp), _mm_cmpeq_epi8(_mm_min_epu8(t, four), t));
            ml |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(a, nl)) << (16 * k);
            ms |= (uint64_t)(uint16_t)_mm_movemask_epi8(s) << (16 * k);
        }
        lines += (uint64_t)__builtin_popcountll(ml);
        words += (uint64_t)__builtin_popcountll(~ms & (ms << 1 | carry));
        carry = ms >> 63;
    }
    c->lines += lines;
    c->words += words;
    bool ps = carry != 0;
    scan_scalar(p + i, n - i, &ps, false, c);
    *prev_space = ps;
}
#endif

static bool have_avx2;

/* Counts [p, p+n); prev_space: the class of the byte before p. */
static void scan(const unsigned char *p, size_t n, bool *prev_space, bool lines_only, counts *c)
{
    c->bytes += n;
    if (lines_only) {
        c->lines += rg_view_count_byte(rg_view_make(p, n), '\n');
        return;
    }
#if defined(__x86_64__)
    if (have_avx2)
        scan_avx2(p, n, prev_space, c);
    else
        scan_sse2(p, n, prev_space, c);
#else
    scan_scalar(p, n, prev_space, false, c);
#endif
}

typedef struct part {
    const unsigned char *base; /* the whole map */
    size_t off, len;
    bool lines_only;
    counts c;
} part;

static void *scan_part(void *arg)
{
    part *pt = arg;
    bool ps = pt->off == 0 ? true : is_space(pt->base[pt->off - 1]);
    scan(pt->base + pt->off, pt->len, &ps, pt->lines_only, &pt->c);
    return NULL;
}

static int run_mmap(const char *path, int threads, bool populate, bool lines_only, counts *out)
{
    rg_mapfile *m = rg_mapfile_open(path, populate ? RG_MAP_POPULATE : 0);
    if (m == NULL) {
        fprintf(stderr, "bigfile: %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t len = rg_mapfile_len(m);
    const unsigned char *base = rg_mapfile_data(m);
    if (base == NULL) { /* beyond the address-space budget: walk the windows */
        bool ps = true;
        for (size_t off = 0; off < len;) {
            size_t k = len - off;
            const unsigned char *p = rg_mapfile_window(m, (off_t)off, &k);
            if (p == NULL) {
                fprintf(stderr, "bigfile: window: %s\n", strerror(errno));
                rg_mapfile_close(m);
                return 1;
            }
            scan(p, k, &ps, lines_only, out);
            off += k;
        }
        rg_mapfile_close(m);
        return 0;
    }
    rg_mapfile_advise(m, RG_ADVICE_SEQUENTIAL);
    if (threads < 1)
        threads = 1;
    if (len < ((size_t)1 << 20))
        threads = 1;
    part pts[64];
    pthread_t tid[64];
    size_t chunk = (len / (size_t)threads + 4095) & ~(size_t)4095;
    for (int i = 0; i < threads; i++) {
        size_t off = (size_t)i * chunk;
        if (off > len)
            off = len;
        size_t n = len - off < chunk ? len - off : chunk;
        pts[i] = (part){base, off, n, lines_only, {0, 0, 0}};
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
 * buffer that stays in L2 and scans it there.  In VMs where user-space
 * loads from mapped page-cache pages are slow (see perf/RESULTS.md), the
 * kernel's copy into a hot buffer is the faster way through the page cache. */
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
    bool ps = true;
    if (pt->off > 0 && pread(pt->fd, buf, 1, (off_t)pt->off - 1) == 1)
        ps = is_space(buf[0]);
    for (size_t done = 0; done < pt->len;) {
        size_t want = pt->len - done < BUF ? pt->len - done : BUF;
        ssize_t k = pread(pt->fd, buf, want, (off_t)(pt->off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            pt->err = k < 0 ? errno : EIO;
            break;
        }
        scan(buf, (size_t)k, &ps, pt->lines_only, &pt->c);
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
    bool ps = true;
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
        scan(buf, (size_t)k, &ps, lines_only, out);
    }
    rg_free(buf);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    bool lines_only = false, populate = false, quiet = false;
    const char *mode = "mmap", *path = NULL;
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
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: bigfile [-l] [-q] [--mode=mmap|read|pread] [--threads=N] [--populate] FILE\n");
            return 2;
        } else
            path = argv[i];
    }
    if (path == NULL || threads < 1 || threads > 64) {
        fprintf(stderr, "usage: bigfile [-l] [-q] [--mode=mmap|read|pread] [--threads=N] [--populate] FILE\n");
        return 2;
    }
#if defined(__x86_64__)
    have_avx2 = __builtin_cpu_supports("avx2");
#endif
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    counts c = {0, 0, 0};
    int rc;
    if (strcmp(mode, "mmap") == 0)
        rc = run_mmap(path, (int)threads, populate, lines_only, &c);
    else if (strcmp(mode, "read") == 0)
        rc = run_read(path, lines_only, &c);
    else if (strcmp(mode, "pread") == 0)
        rc = run_pread(path, (int)threads, lines_only, &c);
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
