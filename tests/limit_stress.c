/* tests/limit_stress.c — the hard limit under load: several threads mix
 * regions, large region blocks and large arena objects under a tight limit
 * (and, in a second round, random commit faults) while a monitor samples the
 * committed bytes; the limit must hold at every sample and every failure
 * must be a clean NULL/ENOMEM. */
#include "cu.h"
#include "internal.h"

#include <stdint.h>
#include <unistd.h>

static atomic_int stop;
static atomic_uint_fast64_t max_seen, samples, enomem, other_err, successes;
static int64_t the_limit;

static void *monitor(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        rg_memstats st;
        rg_read_memstats(&st);
        uint64_t m = atomic_load(&max_seen);
        if (st.sys > m)
            atomic_store(&max_seen, st.sys);
        atomic_fetch_add(&samples, 1);
        usleep(200);
    }
    return NULL;
}

static void *worker(void *arg)
{
    uint64_t seed = (uintptr_t)arg * 0x9e3779b97f4a7c15ull;
    void *held[8] = {0};
    for (int it = 0; it < 400 && !atomic_load(&stop); it++) {
        rg_region *r = rg_region_new();
        if (r == NULL) {
            atomic_fetch_add(errno == ENOMEM ? &enomem : &other_err, 1);
            continue;
        }
        for (int k = 0; k < 200; k++) {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            size_t n = (seed % 16 == 0) ? (size_t)(seed >> 20) % (2 << 20) : (size_t)(seed >> 20) % 2048;
            errno = 0;
            char *p = rg_alloc(r, n);
            if (p == NULL) {
                atomic_fetch_add(errno == ENOMEM ? &enomem : &other_err, 1);
                break;
            }
            if (n)
                p[0] = p[n - 1] = 1;
            atomic_fetch_add(&successes, 1);
        }
        int slot = (int)(seed % 8);
        rg_free(held[slot]);
        errno = 0;
        held[slot] = rg_malloc((size_t)(seed >> 24) % (6 << 20));
        if (held[slot] == NULL)
            atomic_fetch_add(errno == ENOMEM ? &enomem : &other_err, 1);
        if (it % 2)
            rg_region_reset(r);
        rg_region_free(r);
    }
    for (int i = 0; i < 8; i++)
        rg_free(held[i]);
    return NULL;
}

static void run_round(int nthreads, int64_t headroom)
{
    rg_release_memory();
    rg_memstats st;
    rg_read_memstats(&st);
    the_limit = (int64_t)st.sys + headroom;
    rg_set_memory_limit(the_limit);
    atomic_store(&stop, 0);
    atomic_store(&max_seen, 0);
    atomic_store(&enomem, 0);
    atomic_store(&other_err, 0);
    pthread_t mon, t[8];
    pthread_create(&mon, NULL, monitor, NULL);
    for (int i = 0; i < nthreads; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    atomic_store(&stop, 1);
    pthread_join(mon, NULL);
    rg_read_memstats(&st);
    printf("\n    limit %lld MiB: max committed %llu MiB over %llu samples, %llu ENOMEM, %llu allocations\n",
           (long long)(the_limit >> 20), (unsigned long long)(atomic_load(&max_seen) >> 20),
           (unsigned long long)atomic_load(&samples), (unsigned long long)atomic_load(&enomem),
           (unsigned long long)atomic_load(&successes));
    CU_ASSERT(atomic_load(&max_seen) <= (uint64_t)the_limit);
    CU_ASSERT(st.sys <= (uint64_t)the_limit);
    CU_ASSERT_EQUAL(atomic_load(&other_err), 0);
    CU_ASSERT(rgi_page_is_valid());
    CU_ASSERT(atomic_load(&enomem) > 0); /* the limit was really hit */
    rg_set_memory_limit(RG_MEMLIMIT_OFF);
}

static void test_limit_threads(void)
{
    run_round(4, 48 << 20);
}

static void test_limit_threads_with_faults(void)
{
    rgi_fault_inject(0, 100, 777);
    run_round(4, 64 << 20);
    CU_ASSERT(rgi_fault_inject(0, 0, 0) > 0);
}

int main(void)
{
    static const cu_test tests[] = {
        {"4 threads, regions + large blocks, 48 MiB headroom", test_limit_threads},
        {"same with random commit faults", test_limit_threads_with_faults},
        {NULL, NULL},
    };
    return cu_run("limit_stress", tests);
}
