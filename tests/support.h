/* tests/support.h — small helpers several suites share: the sanitizer a
 * build runs under, a check that ends a forked child, /proc and /sys
 * number files, an nr_hugepages raise that is undone even when the test is
 * stopped, a memstats reader, and the
 * "allocate until the limit refuses, never above it" probe.  Header-only,
 * static inline, so a suite pays only for what it uses. */
#ifndef REGIO_TESTS_SUPPORT_H
#define REGIO_TESTS_SUPPORT_H

#include "regio.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Raises /proc/sys/vm/nr_hugepages to `want` and puts `saved` back at exit
 * and on SIGTERM, SIGINT or SIGHUP (meson's timeout sends SIGTERM), so a
 * test that is stopped half-way never leaves pages reserved.  Forked
 * children inherit the handlers but only the process that raised restores.
 * Returns 0, or -1 when the kernel refused (nothing is left changed). */
static long tu_hp_saved = -1;
static pid_t tu_hp_owner;
static char tu_hp_text[24];
static size_t tu_hp_len;

static inline void tu_hp_restore(void)
{
    if (tu_hp_saved < 0 || getpid() != tu_hp_owner)
        return;
    int fd = open(TU_NR_HUGEPAGES, O_WRONLY); /* async-signal-safe calls only */
    if (fd >= 0) {
        if (write(fd, tu_hp_text, tu_hp_len) < 0) {
            /* nothing more a handler can do */
        }
        close(fd);
    }
    tu_hp_saved = -1;
}

static inline void tu_hp_on_signal(int sig)
{
    tu_hp_restore();
    signal(sig, SIG_DFL);
    raise(sig);
}

static inline int tu_hugepages_raise(long saved, long want)
{
    tu_hp_len = (size_t)snprintf(tu_hp_text, sizeof tu_hp_text, "%ld\n", saved);
    tu_hp_owner = getpid();
    tu_hp_saved = saved;
    static int hooked;
    if (!hooked) {
        hooked = 1;
        atexit(tu_hp_restore);
        signal(SIGTERM, tu_hp_on_signal);
        signal(SIGINT, tu_hp_on_signal);
        signal(SIGHUP, tu_hp_on_signal);
    }
    if (tu_write_long(TU_NR_HUGEPAGES, want) != 0 || tu_read_long(TU_NR_HUGEPAGES) < want) {
        tu_hp_restore();
        return -1;
    }
    return 0;
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
