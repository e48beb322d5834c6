/* perf/bench_observe.c — what observability costs.
 *
 *  - observe/memstats/busy:N   rg_read_memstats() while N other threads
 *    allocate and free as fast as they can (their arenas' counters are what
 *    it sums).  Wall time per call.  Goal: under 10 µs with 8 busy threads.
 *  - observe/malloc_request/RATE  the per-request shape of bench_request.c
 *    (64 objects, 94% 16..256 B, 6% 257..4096 B, one 8-byte write each)
 *    through rg_malloc/rg_free, with the heap profile sampling rate RATE
 *    (0 = off, 524288 = the default, 65536 = 8x denser).  Regions are not
 *    the subject here: a region in steady state asks the arena for nothing,
 *    so sampling cannot cost it anything; rg_malloc is where the countdown
 *    runs.  Goal: the default rate within 2% of off.
 *
 * Run: BUILD/perf/bench_observe [Google Benchmark flags]; see
 * perf/RESULTS.md ("Observability") for the command and the figures.
 */
#include "shim.h"

#include <regio.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define NALLOC 64
#define NSEQ 256
#define BATCH 16

static uint16_t sizes[NSEQ][NALLOC];

static void make_sizes(void)
{
    uint64_t s = UINT64_C(0x7265676970657266);
    for (int r = 0; r < NSEQ; r++)
        for (int i = 0; i < NALLOC; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            uint64_t x = s >> 33;
            sizes[r][i] = (uint16_t)(x % 100 < 94 ? 16 + (x >> 8) % 241 : 257 + (x >> 8) % 3840);
        }
}

/* --- memstats under load ------------------------------------------------ */
static atomic_bool churn_stop;

static void *churn(void *arg)
{
    (void)arg;
    void *keep[64] = {0};
    unsigned i = 0;
    while (!atomic_load_explicit(&churn_stop, memory_order_relaxed)) {
        unsigned k = i++ & 63;
        rg_free(keep[k]);
        keep[k] = rg_malloc(16 + (i * 37) % 2000);
    }
    for (int k = 0; k < 64; k++)
        rg_free(keep[k]);
    return NULL;
}

static void bm_memstats(rgb_state *st)
{
    int n = (int)rgb_range(st);
    pthread_t t[16];
    atomic_store(&churn_stop, false);
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, churn, NULL);
    rg_memstats ms;
    uint64_t inner = 0, calls = 0;
    while (rgb_keep_running(st)) {
        rg_read_memstats(&ms);
        inner += ms.read_ns;
        calls++;
    }
    atomic_store(&churn_stop, true);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    rgb_set_items_per_iteration(st, 1);
    rgb_counter(st, "read_ns", calls ? (double)inner / (double)calls : 0, 0);
}

/* --- sampling cost on the rg_malloc path --------------------------------- */
static void bm_malloc_request(rgb_state *st)
{
    rg_set_memprofile_rate(rgb_range(st));
    /* run out the countdown drawn at the old rate (at most 16 MiB when it was off) */
    for (int i = 0; i < 4096; i++)
        rg_free(rg_malloc(8192));
    void *objs[NALLOC];
    unsigned r = 0;
    while (rgb_keep_running_batch(st, BATCH)) {
        for (int b = 0; b < BATCH; b++) {
            const uint16_t *sz = sizes[r++ & (NSEQ - 1)];
            for (int i = 0; i < NALLOC; i++) {
                char *p = rg_malloc(sz[i]);
                *(volatile uint64_t *)p = i;
                objs[i] = p;
            }
            for (int i = 0; i < NALLOC; i++)
                rg_free(objs[i]);
        }
    }
    rgb_set_items_per_iteration(st, NALLOC);
}

int main(int argc, char **argv)
{
    make_sizes();
    static const int one[] = {1, 0};
    static const int64_t busy[] = {0, 2, 8};
    static const int64_t rates[] = {0, 524288, 65536};
    rgb_register(&(rgb_def){.name = "observe/memstats/busy", .body = bm_memstats, .threads = one,
                            .args = busy, .nargs = 3, .real_time = 1});
    rgb_register(&(rgb_def){.name = "observe/malloc_request", .body = bm_malloc_request, .threads = one,
                            .args = rates, .nargs = 3});
    return rgb_main(argc, argv);
}
