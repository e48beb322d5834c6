/* tests/support.h — small helpers several suites share: the sanitizer a
 * build runs under, a check that ends a forked child, /proc and /sys
 * number files (nr_hugepages save and restore), a memstats reader, and the
 * "allocate until the limit refuses, never above it" probe.  Header-only,
 * static inline, so a suite pays only for what it uses. */
#ifndef REGIO_TESTS_SUPPORT_H
#define REGIO_TESTS_SUPPORT_H

#include "regio.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* TU_UNDER_TSAN: 1 under ThreadSanitizer (gcc or clang), else 0. */
#if defined(__SANITIZE_THREAD__)
#define TU_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TU_UNDER_TSAN 1
#endif
#endif
#ifndef TU_UNDER_TSAN
#define TU_UNDER_TSAN 0
#endif

/* In a forked child: a failed check reports where and exits 1; the parent
 * asserts the child's exit status. */
#define TU_CHECK(c)                                                               \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            fflush(stderr);                                                       \
            _exit(1);                                                             \
        }                                                                         \
    } while (0)

#define TU_NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"

/* The number in a /proc or /sys file, -1 when it cannot be read. */
static inline long tu_read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* Writes a number to a /proc or /sys file: 0, or -1 when refused. */
static inline int tu_write_long(const char *path, long v)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int rc = fprintf(f, "%ld\n", v) > 0 ? 0 : -1;
    return fclose(f) == 0 ? rc : -1;
}

/* A fresh memstats snapshot (static: the struct is large). */
static inline const rg_memstats *tu_memstats(void)
{
    static rg_memstats ms;
    rg_read_memstats(&ms);
    return &ms;
}

/* Sets a limit 8 MiB above what regio holds now and allocates 1 MiB blocks
 * until it refuses: each block must lie in [lo, hi) (pass NULL, NULL for
 * anywhere), the committed bytes never exceed the limit, and the refusal is
 * ENOMEM before 64 blocks.  Frees everything and lifts the limit.  Returns
 * 0, or the line of the failed check. */
static inline int tu_limit_holds(const char *lo, const char *hi)
{
    int64_t lim = (int64_t)tu_memstats()->sys + (8 << 20);
    int bad = 0, k = 0;
    void *blocks[64];
    rg_set_memory_limit(lim);
    while (!bad && k < 64 && (blocks[k] = rg_malloc(1 << 20)) != NULL) {
        const char *b = blocks[k++];
        if (lo && (b < lo || b >= hi))
            bad = __LINE__;
        else if (tu_memstats()->sys > (uint64_t)lim)
            bad = __LINE__;
    }
    if (!bad && !(k > 0 && k < 64 && errno == ENOMEM))
        bad = __LINE__;
    while (k > 0)
        rg_free(blocks[--k]);
    rg_set_memory_limit(RG_MEMLIMIT_OFF);
    return bad;
}

#endif
