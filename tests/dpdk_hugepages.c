/* tests/dpdk_hugepages.c — the memzone page source on EAL's hugepages:
 * regio's segments cut from a memzone backed by 2 MiB hugepages, reported
 * as hugetlb, zero when fresh, under the hard limit, and idle ones kept
 * (hugepage memory cannot be purged).  Reserves hugepages as root and
 * restores /proc/sys/vm/nr_hugepages to its previous value; skips (77) when
 * they cannot be reserved or EAL cannot start with them, and under
 * ThreadSanitizer (an EAL start takes 10-15 s there).
 */
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_memory.h>
#include <rte_memzone.h>

#include "cu.h"
#include "support.h"
#include "regio.h"
#include "regio/dpdk.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if TU_UNDER_TSAN
#define SLOW_EAL 1
#endif

#ifdef SLOW_EAL
#pragma GCC diagnostic ignored "-Wunused-function" /* the cases this build leaves out */
#endif

enum { MZ_MB = 128, EXTRA_PAGES = 96 }; /* the memzone and EAL's own memory */

#define CHECK(c) TU_CHECK(c)

static uint64_t hugetlb_bytes(void)
{
    return tu_memstats()->bytes_hugetlb;
}

/* In the child: EAL on hugepages, then regio on a memzone. */
static void body(void)
{
    char *argv[] = {"test_dpdk_hugepages", "--no-pci", "--in-memory", "-l", "0", "--no-telemetry",
                    "--log-level=lib.eal:warning", NULL};
    if (rte_eal_init((int)(sizeof argv / sizeof argv[0]) - 1, argv) < 0)
        _exit(77);
    int rc = rg_dpdk_use_memzone_source((size_t)MZ_MB << 20);
    if (rc == -ENOMEM) /* EAL started, but the pages went elsewhere */
        _exit(77);
    CHECK(rc == 0);
    const struct rte_memzone *mz = rte_memzone_lookup("regio_segments");
    CHECK(mz != NULL && mz->len >= ((size_t)MZ_MB << 20));
    CHECK(mz->hugepage_sz >= ((size_t)2 << 20)); /* the hugepage path */
    char *lo = mz->addr, *hi = lo + mz->len;

    char *p = rg_malloc(1000);
    CHECK(p != NULL && p >= lo && p < hi);
    CHECK(hugetlb_bytes() > 0); /* segments reported as hugetlb */
    rg_region *r = rg_region_new();
    CHECK(r != NULL);
    char *q = rg_alloc(r, 100000);
    CHECK(q != NULL && q >= lo && q < hi);
    CHECK(rte_mem_virt2memseg(q, NULL) != NULL);

    /* Hugepage memory cannot be purged, so a segment regio gives back and
     * takes again still holds what was written there, and DPDK memory may
     * come dirty: the source's commit must clear it.  Dirty the memzone's
     * upper half, which regio has not committed yet (it cuts segments from
     * the bottom), then take fresh 1 MiB blocks up into it: zero. */
    size_t half = mz->len / 2;
    CHECK(p < lo + half && q < lo + half && tu_memstats()->sys < half / 2);
    memset(lo + half, 0xa5, mz->len - half);
    enum { NB = 48 }; /* up to a segment each: 96 MiB */
    static char *big[NB];
    int dirty_seen = 0, in_upper = 0;
    for (int i = 0; i < NB; i++) {
        big[i] = rg_malloc(1 << 20);
        CHECK(big[i] != NULL && big[i] >= lo && big[i] + (1 << 20) <= hi);
        if (big[i] < lo + half)
            continue;
        in_upper++;
        for (size_t off = 0; off < (1u << 20); off += 4096)
            dirty_seen += big[i][off] != 0 || big[i][off + 4095] != 0;
    }
    CHECK(in_upper > 0);
    CHECK(dirty_seen == 0);
    for (int i = 0; i < NB; i++)
        rg_free(big[i]);
    rg_release_memory(); /* hugepages decline the purge */
    CHECK(hugetlb_bytes() > 0);

    /* the limit still holds on DPDK memory: allocate until refused, never above it */
    CHECK(tu_limit_holds(lo, hi) == 0);
    rg_region_free(r);
    rg_free(p);
    rte_eal_cleanup();
    _exit(0);
}

static long saved_nr = -1;
static int child_rc = -1;

static void test_hugepage_memzone(void)
{
    CU_ASSERT_EQUAL(child_rc, 0);
    /* the reservation is back where it was */
    CU_ASSERT_EQUAL(tu_read_long(TU_NR_HUGEPAGES), saved_nr);
}

int main(void)
{
#ifdef SLOW_EAL
    printf("dpdk_hugepages: skipped under ThreadSanitizer\n");
    return CU_SKIP_EXIT;
#else
    saved_nr = tu_read_long(TU_NR_HUGEPAGES);
    long free_pages = tu_read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
    if (saved_nr < 0 || free_pages < 0) {
        printf("dpdk_hugepages: no 2 MiB hugepages here, skipping\n");
        return CU_SKIP_EXIT;
    }
    bool raised = false;
    if (free_pages < EXTRA_PAGES) {
        long want = saved_nr + (EXTRA_PAGES - free_pages);
        if (tu_hugepages_raise(saved_nr, want) != 0) {
            printf("dpdk_hugepages: cannot reserve %d hugepages (needs root and free memory), skipping\n",
                   EXTRA_PAGES);
            return CU_SKIP_EXIT;
        }
        raised = true;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0)
        body();
    int st = 0;
    child_rc = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : 2;
    if (raised)
        tu_hp_restore();
    if (child_rc == 77) {
        printf("dpdk_hugepages: EAL cannot start on hugepages here, skipping\n");
        return CU_SKIP_EXIT;
    }
    static const cu_test tests[] = {
        {"memzone source on hugepages", test_hugepage_memzone},
        {NULL, NULL},
    };
    return cu_run("dpdk_hugepages", tests);
#endif
}
