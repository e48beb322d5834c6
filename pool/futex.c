/* pool/futex.c — the futex seam: waiting with absolute CLOCK_MONOTONIC
 * deadlines (FUTEX_WAIT_BITSET takes an absolute time, so a wait restarted
 * after a spurious wakeup or a signal never stretches the caller's timeout),
 * and futex_waitv(2) for select, with a polling fallback on kernels before
 * 5.16.  errno is converted to -errno here, once.
 */
#include "pool_internal.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 0x02
#endif
#ifndef FUTEX2_PRIVATE
#define FUTEX2_PRIVATE 128
#endif
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

static void to_timespec(uint64_t ns, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
}

int rgi_futex_wait(atomic_uint *word, unsigned val, uint64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != RGI_FOREVER) {
        if (rgi_now_ns() >= deadline)
            return -ETIMEDOUT;
        to_timespec(deadline, &ts);
        tsp = &ts;
    }
    int saved = errno;
    /* a thread asleep here holds no heap pointers the collector must wait for */
    bool parked = rgi_gc_park_for_wait();
    long r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET_PRIVATE, val, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
    int rc = r == 0 ? 0 : -errno;
    rgi_gc_unpark_after_wait(parked);
    errno = saved;
    return rc;
}

void rgi_futex_wake(atomic_uint *word, int n)
{
    int saved = errno;
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
    errno = saved;
}

struct rgi_waitv { /* struct futex_waitv, spelled out for older headers */
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};

static atomic_int waitv_missing;

int rgi_futex_waitv(atomic_uint **words, const unsigned *vals, unsigned n, uint64_t deadline)
{
    if (n == 0 || n > 128)
        return -EINVAL;
    int saved = errno;
    if (!atomic_load_explicit(&waitv_missing, memory_order_relaxed)) {
        struct rgi_waitv w[128];
        for (unsigned i = 0; i < n; i++) {
            w[i].val = vals[i];
            w[i].uaddr = (uint64_t)(uintptr_t)words[i];
            w[i].flags = FUTEX2_SIZE_U32 | FUTEX2_PRIVATE;
            w[i].reserved = 0;
        }
        struct timespec ts, *tsp = NULL;
        if (deadline != RGI_FOREVER) {
            if (rgi_now_ns() >= deadline)
                return -ETIMEDOUT;
            to_timespec(deadline, &ts);
            tsp = &ts;
        }
        bool parked = rgi_gc_park_for_wait();
        long r = syscall(SYS_futex_waitv, w, n, 0, tsp, CLOCK_MONOTONIC);
        int e = errno;
        rgi_gc_unpark_after_wait(parked);
        if (r >= 0) {
            errno = saved;
            return 0;
        }
        errno = saved;
        if (e != ENOSYS)
            return -e;
        atomic_store_explicit(&waitv_missing, 1, memory_order_relaxed);
    }
    /* Fallback: a short sleep, then the caller re-checks its cases.  Bounded
     * latency (1 ms), no core burnt. */
    for (unsigned i = 0; i < n; i++)
        if (atomic_load_explicit(words[i], memory_order_acquire) != vals[i])
            return -EAGAIN;
    uint64_t now = rgi_now_ns();
    if (now >= deadline)
        return -ETIMEDOUT;
    uint64_t nap = deadline - now < 1000000u ? deadline - now : 1000000u;
    struct timespec ts;
    to_timespec(nap, &ts);
    bool parked = rgi_gc_park_for_wait();
    nanosleep(&ts, NULL);
    rgi_gc_unpark_after_wait(parked);
    errno = saved;
    return 0;
}
