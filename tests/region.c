/* tests/region.c — per-request regions: every call of the region API, its
 * bad inputs, and use-after-reset detection. */
#include "cu.h"
#include "internal.h"

#include <stdint.h>
#include <sys/wait.h>
#include <valgrind/memcheck.h>
#include <unistd.h>

static void test_alloc_alignment(void)
{
    rg_region *r = rg_region_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    for (size_t n = 0; n < 5000; n += 7) {
        char *p = rg_alloc(r, n);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_EQUAL((uintptr_t)p % 16, 0);
        memset(p, 0xab, n);
    }
    CU_ASSERT(rg_region_size(r) > 8192);
    CU_ASSERT(rg_region_used(r) > 0);
    rg_region_free(r);
}

static void test_distinct_and_intact(void)
{
    rg_region *r = rg_region_new();
    enum { N = 20000 };
    static uint32_t *ptrs[N];
    for (uint32_t i = 0; i < N; i++) {
        ptrs[i] = rg_alloc(r, 4 + (i % 50) * 4);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ptrs[i]);
        ptrs[i][0] = i;
    }
    int bad = 0;
    for (uint32_t i = 0; i < N; i++)
        bad += ptrs[i][0] != i;
    CU_ASSERT_EQUAL(bad, 0);
    rg_region_free(r);
}

static void test_aligned(void)
{
    rg_region *r = rg_region_new();
    size_t aligns[] = {1, 2, 16, 32, 64, 4096, 65536, 1 << 20, 2 << 20};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        void *p = rg_alloc_aligned(r, 100, aligns[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_EQUAL((uintptr_t)p % aligns[i], 0);
        memset(p, 1, 100);
    }
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_alloc_aligned(r, 16, 3));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_alloc_aligned(r, 16, 0));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_alloc_aligned(r, 16, (size_t)1 << 40));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_alloc_aligned(r, 16, (SIZE_MAX >> 1) + 1));
    CU_ASSERT_EQUAL(errno, EINVAL);
    rg_region_free(r);
}

static void test_calloc_overflow(void)
{
    rg_region *r = rg_region_new();
    unsigned char *p = rg_calloc(r, 100, 10);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    int nonzero = 0;
    for (int i = 0; i < 1000; i++)
        nonzero += p[i] != 0;
    CU_ASSERT_EQUAL(nonzero, 0);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_calloc(r, SIZE_MAX / 2, 3));
    CU_ASSERT_EQUAL(errno, EOVERFLOW);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_calloc(r, (size_t)1 << 33, (size_t)1 << 33));
    CU_ASSERT_EQUAL(errno, EOVERFLOW);
    CU_ASSERT_PTR_NOT_NULL(rg_calloc(r, 0, 16));
    rg_region_free(r);
}

static void test_huge_sizes(void)
{
    rg_region *r = rg_region_new();
    size_t sizes[] = {SIZE_MAX, SIZE_MAX - 15, SIZE_MAX - 16, SIZE_MAX / 2, (size_t)1 << 62};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        CU_ASSERT_PTR_NULL(rg_alloc(r, sizes[i]));
        CU_ASSERT_EQUAL(errno, ENOMEM);
        errno = 0;
        CU_ASSERT_PTR_NULL(rg_alloc_aligned(r, sizes[i], 64));
        CU_ASSERT_EQUAL(errno, ENOMEM);
    }
    /* the region still works afterwards */
    char *p = rg_alloc(r, 32);
    CU_ASSERT_PTR_NOT_NULL(p);
    rg_region_free(r);
}

static void test_zero_size(void)
{
    rg_region *r = rg_region_new();
    void *a = rg_alloc(r, 0);
    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_EQUAL((uintptr_t)a % 16, 0);
    rg_region_free(r);
}

static void test_null_args(void)
{
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_alloc(NULL, 16));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_alloc_aligned(NULL, 16, 64));
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_PTR_NULL(rg_calloc(NULL, 1, 1));
    CU_ASSERT_PTR_NULL(rg_strdup(NULL, "x"));
    rg_region *r = rg_region_new();
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_strdup(r, NULL));
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_EQUAL(rg_region_on_reset(NULL, free, NULL), -EINVAL);
    CU_ASSERT_EQUAL(rg_region_on_reset(r, NULL, NULL), -EINVAL);
    CU_ASSERT_EQUAL(rg_region_keep(NULL, r), -EINVAL);
    CU_ASSERT_EQUAL(rg_region_keep(r, NULL), -EINVAL);
    rg_region_reset(NULL);
    rg_region_free(NULL);
    rg_mark m = rg_region_mark(NULL);
    rg_region_release(NULL, m);
    CU_ASSERT_EQUAL(rg_region_size(NULL), 0);
    rg_region_free(r);
}

static void test_bad_opts(void)
{
    rg_region_opts o = {.first_chunk = 1 << 20, .max_chunk = 64 << 10};
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_region_new_opts(&o));
    CU_ASSERT_EQUAL(errno, EINVAL);
    rg_region_opts tiny = {.first_chunk = 16};
    CU_ASSERT_PTR_NULL(rg_region_new_opts(&tiny));
    rg_region_opts ok = {.first_chunk = 4096, .max_chunk = 65536, .retain = 65536};
    rg_region *r = rg_region_new_opts(&ok);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    for (int i = 0; i < 100; i++)
        CU_ASSERT_PTR_NOT_NULL(rg_alloc(r, 1000));
    rg_region_free(r);
}

static void test_strdup(void)
{
    rg_region *r = rg_region_new();
    char *s = rg_strdup(r, "hello, regio");
    CU_ASSERT_STRING_EQUAL(s, "hello, regio");
    char *t = rg_strndup(r, "abcdef", 3);
    CU_ASSERT_STRING_EQUAL(t, "abc");
    char *e = rg_strdup(r, "");
    CU_ASSERT_STRING_EQUAL(e, "");
    int v[3] = {1, 2, 3};
    int *d = rg_memdup(r, v, sizeof v);
    CU_ASSERT(d && d[2] == 3);
    rg_region_free(r);
}

static int order[16], norder;
static void record(void *arg) { order[norder++] = (int)(intptr_t)arg; }

static void test_cleanups_order(void)
{
    rg_region *r = rg_region_new();
    norder = 0;
    for (int i = 1; i <= 5; i++)
        CU_ASSERT_EQUAL(rg_region_on_reset(r, record, (void *)(intptr_t)i), 0);
    rg_region_reset(r);
    CU_ASSERT_EQUAL(norder, 5);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(order[i], 5 - i);
    /* cleanups are gone after they ran */
    rg_region_reset(r);
    CU_ASSERT_EQUAL(norder, 5);
    /* and they run on free too */
    rg_region_on_reset(r, record, (void *)(intptr_t)9);
    rg_region_free(r);
    CU_ASSERT_EQUAL(norder, 6);
    CU_ASSERT_EQUAL(order[5], 9);
}

static void test_mark_release(void)
{
    rg_region *r = rg_region_new();
    char *a = rg_alloc(r, 100);
    strcpy(a, "kept");
    norder = 0;
    rg_region_on_reset(r, record, (void *)1);
    rg_mark m = rg_region_mark(r);
    rg_region_on_reset(r, record, (void *)2);
    size_t before = rg_region_size(r);
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_PTR_NOT_NULL(rg_alloc(r, 500));
    void *big = rg_alloc(r, 1 << 20);
    CU_ASSERT_PTR_NOT_NULL(big);
    CU_ASSERT(rg_region_size(r) > before + (1 << 20));
    rg_region_release(r, m);
    CU_ASSERT_EQUAL(norder, 1); /* only the cleanup registered after the mark ran */
    CU_ASSERT_EQUAL(order[0], 2);
    CU_ASSERT_STRING_EQUAL(a, "kept");
    /* the large block went back at once; chunks stay for reuse */
    CU_ASSERT(rg_region_size(r) < before + (1 << 20));
    char *b = rg_alloc(r, 16);
    CU_ASSERT_PTR_EQUAL(b, m.cur);
    /* nested marks */
    rg_mark m1 = rg_region_mark(r);
    rg_alloc(r, 64);
    rg_mark m2 = rg_region_mark(r);
    rg_alloc(r, 64);
    rg_region_release(r, m2);
    rg_region_release(r, m1);
    CU_ASSERT_PTR_EQUAL(rg_alloc(r, 1), m1.cur);
    /* a mark from another region is refused */
    rg_region *o = rg_region_new();
    rg_mark foreign = rg_region_mark(o);
    errno = 0;
    rg_region_release(r, foreign);
    CU_ASSERT_EQUAL(errno, EINVAL);
    rg_region_free(o);
    rg_region_free(r);
    CU_ASSERT_EQUAL(norder, 2);
}

static void test_reset_keeps_first_chunk(void)
{
    rg_region *r = rg_region_new();
    /* a cycle that fits the first chunk restarts at the same address */
    char *first = rg_alloc(r, 16);
    rg_alloc(r, 1000);
    rg_region_reset(r);
    CU_ASSERT_PTR_EQUAL(rg_alloc(r, 16), first);
    CU_ASSERT_EQUAL(rg_region_used(r), 16);
    rg_region_free(r);
}

/* A cycle that spills over several chunks teaches the region its size: the
 * next cycle starts in one merged chunk and never hops, and the merged chunk
 * stays within the retain cap. */
static void test_reset_learns_request_size(void)
{
    rg_region *r = rg_region_new();
    for (int i = 0; i < 40; i++)
        rg_alloc(r, 1000);
    size_t spilled = rg_region_size(r);
    CU_ASSERT(spilled > 3 * 8192);
    rg_region_reset(r);
    CU_ASSERT(rg_region_size(r) <= spilled);
    char *start = rg_alloc(r, 1000);
    for (int i = 1; i < 40; i++) {
        char *p = rg_alloc(r, 1000);
        /* one chunk: every allocation follows the previous one */
        CU_ASSERT_PTR_EQUAL(p, start + (size_t)i * 1008);
    }
    rg_region_reset(r);
    CU_ASSERT_PTR_EQUAL(rg_alloc(r, 1000), start);
    /* a cycle bigger than the retain cap keeps a chain within the cap */
    rg_region_opts o = {.retain = 64 << 10};
    rg_region *s = rg_region_new_opts(&o);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 300; i++)
            CU_ASSERT_PTR_NOT_NULL(rg_alloc(s, 1000));
        rg_region_reset(s);
        CU_ASSERT(rg_region_size(s) <= (size_t)(64 << 10));
    }
    rg_region_free(s);
    rg_region_free(r);
}

static void test_steady_state_no_arena_traffic(void)
{
    rg_region *r = rg_region_new();
    rg_memstats before, after;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 64; i++)
            rg_alloc(r, 16 + (size_t)(i * 61) % 4000);
        rg_region_reset(r);
    }
    rg_read_memstats(&before);
    for (int round = 0; round < 1000; round++) {
        for (int i = 0; i < 64; i++)
            rg_alloc(r, 16 + (size_t)(i * 61) % 4000);
        rg_region_reset(r);
    }
    rg_read_memstats(&after);
    CU_ASSERT_EQUAL(after.mallocs, before.mallocs);
    rg_region_free(r);
}

/* A request loop that spills past the first chunk hops to kept chunks on
 * the slow path (without poisoning): every object stays distinct and intact. */
static void test_reset_loop_intact(void)
{
    rg_region *r = rg_region_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    enum { N = 64 };
    unsigned char *p[N];
    size_t n[N];
    uint32_t x = 12345;
    int bad = 0;
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < N; i++) {
            x = x * 1103515245u + 12345u;
            n[i] = 16 + (x >> 8) % ((x & 1) ? 4096 : 256);
            p[i] = rg_alloc(r, n[i]);
            CU_ASSERT_PTR_NOT_NULL_FATAL(p[i]);
            bad += (uintptr_t)p[i] % 16 != 0;
            memset(p[i], (unsigned char)(i + round), n[i]);
        }
        for (int i = 0; i < N; i++)
            for (size_t k = 0; k < n[i]; k++)
                bad += p[i][k] != (unsigned char)(i + round);
        rg_region_reset(r);
    }
    CU_ASSERT_EQUAL(bad, 0);
    rg_region_free(r);
}

static void test_retain_cap(void)
{
    rg_region_opts o = {.retain = 64 << 10};
    rg_region *r = rg_region_new_opts(&o);
    for (int i = 0; i < 4000; i++)
        rg_alloc(r, 1000);
    CU_ASSERT(rg_region_size(r) > (size_t)(1 << 20));
    rg_region_reset(r);
    CU_ASSERT(rg_region_size(r) <= (size_t)(64 << 10));
    rg_region_free(r);
}

static void test_large_returned_on_reset(void)
{
    rg_region *r = rg_region_new();
    uint64_t base = atomic_load(&rgi_region_bytes);
    for (int i = 0; i < 8; i++) {
        char *p = rg_alloc(r, (size_t)(3 << 20) + (size_t)i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        p[0] = 1;
        p[(3 << 20) - 1] = 2;
    }
    rg_memstats st;
    rg_read_memstats(&st);
    CU_ASSERT(st.region_inuse >= base + 24 * (1 << 20));
    rg_region_reset(r);
    rg_read_memstats(&st);
    CU_ASSERT(st.region_inuse < base + (1 << 20));
    rg_region_free(r);
}

static void count_fn(void *o, void *arg)
{
    (void)o;
    (*(int *)arg)++;
}

static void test_keep(void)
{
    rg_region *r = rg_region_new();
    static int objs[100];
    for (int i = 0; i < 100; i++)
        CU_ASSERT_EQUAL(rg_region_keep(r, &objs[i]), 0);
    int count = 0;
    rgi_region_pins_foreach(count_fn, &count);
    CU_ASSERT_EQUAL(count, 100);
    rg_mark m = rg_region_mark(r);
    for (int i = 0; i < 40; i++)
        rg_region_keep(r, &objs[i]);
    count = 0;
    rgi_region_pins_foreach(count_fn, &count);
    CU_ASSERT_EQUAL(count, 140);
    rg_region_release(r, m);
    count = 0;
    rgi_region_pins_foreach(count_fn, &count);
    CU_ASSERT_EQUAL(count, 100);
    rg_region_reset(r);
    count = 0;
    rgi_region_pins_foreach(count_fn, &count);
    CU_ASSERT_EQUAL(count, 0);
    rg_region_keep(r, &objs[0]);
    rg_region_free(r);
    count = 0;
    rgi_region_pins_foreach(count_fn, &count);
    CU_ASSERT_EQUAL(count, 0);
}

/* Pins taken and dropped by request threads while the collector's scan
 * runs: the scan sees only pins that are live (objects of the threads'
 * arrays, never a freed pin block's bytes: ASan), with no data race (TSan).
 * Each batch pins more than fit in the first chunk, so reset gives pin
 * blocks back while the scanner may be walking them. */
#define PIN_THREADS 2
#define PIN_BATCHES 4000
static int pin_objs[PIN_THREADS][256];
static atomic_int pin_workers_done;

static void *pin_worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    rg_region *rs[4];
    for (int i = 0; i < 4; i++)
        rs[i] = rg_region_new();
    for (int b = 0; b < PIN_BATCHES; b++) {
        rg_region *r = rs[b % 4];
        int n = 1 + (b * 37) % 256;
        for (int i = 0; i < n; i++)
            if (rg_region_keep(r, &pin_objs[t][i]) != 0)
                return (void *)1;
        rg_alloc(r, 64 * 1024); /* a later chunk: reset releases what is past it */
        if (b % 16 == 0)
            rg_region_release(r, rg_region_mark(r));
        rg_region_reset(r);
        if (b % 1000 == 999) { /* a region freed while registered */
            rg_region_free(r);
            rs[b % 4] = rg_region_new();
        }
    }
    for (int i = 0; i < 4; i++)
        rg_region_free(rs[i]);
    atomic_fetch_add(&pin_workers_done, 1);
    return NULL;
}

static void check_pin_fn(void *o, void *arg)
{
    int ok = 0;
    for (int t = 0; t < PIN_THREADS; t++)
        if ((int *)o >= pin_objs[t] && (int *)o < pin_objs[t] + 256)
            ok = 1;
    if (!ok)
        (*(int *)arg)++;
}

static void test_keep_concurrent_scan(void)
{
    pthread_t th[PIN_THREADS];
    atomic_store(&pin_workers_done, 0);
    for (int t = 0; t < PIN_THREADS; t++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[t], NULL, pin_worker, (void *)(intptr_t)t), 0);
    int bad = 0;
    long scans = 0;
    while (atomic_load(&pin_workers_done) < PIN_THREADS && scans < 10000000) {
        rgi_region_pins_foreach(check_pin_fn, &bad);
        scans++;
    }
    for (int t = 0; t < PIN_THREADS; t++) {
        void *rc;
        pthread_join(th[t], &rc);
        CU_ASSERT_PTR_NULL(rc);
    }
    CU_ASSERT_EQUAL(bad, 0);
    int count = 0;
    rgi_region_pins_foreach(count_fn, &count);
    CU_ASSERT_EQUAL(count, 0); /* every region reset or freed: no pin left */
}

/* A use after reset must be caught where the library can see it: run the
 * bad access in a child and expect it to die under ASan/Valgrind, or read the
 * 0xdb poison in debug builds. */
static void test_use_after_reset_detected(void)
{
    if (!rgi_poisoning()) {
        /* plain release build, no poisoning: nothing to detect; say so */
        printf("(poisoning off in this build: use-after-reset check not applicable) ");
        return;
    }
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        rg_region *r = rg_region_new();
        volatile char *p = rg_alloc(r, 64);
        p[0] = 'x';
        rg_region_reset(r);
#if RGI_ASAN
        char c = p[0]; /* ASan aborts here */
        _exit(c == 42 ? 3 : 0);
#else
        if (RUNNING_ON_VALGRIND) /* memcheck names the first unaddressable byte */
            _exit(VALGRIND_CHECK_MEM_IS_ADDRESSABLE(p, 1) != 0 ? 1 : 0);
        _exit(p[0] == (char)0xdb || p[0] != 'x' ? 1 : 0);
#endif
    }
    int st;
    waitpid(pid, &st, 0);
    CU_ASSERT(!WIFEXITED(st) || WEXITSTATUS(st) != 0);
}

static void test_double_free_diagnosed(void)
{
#if RG_DEBUG_CHECKS
    rg_region *r = rg_region_new();
    rg_region_free(r);
    errno = 0;
    rg_region_free(r); /* diagnosed: "already freed" */
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_alloc(r, 10));
    CU_ASSERT_EQUAL(errno, EINVAL);
#else
    printf("(release build: double free is detected in debug_checks builds) ");
#endif
}

static void *thread_regions(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        rg_region *r = rg_region_new();
        for (int k = 0; k < 100; k++) {
            char *p = rg_alloc(r, 1 + (size_t)(k * 37) % 3000);
            if (p) p[0] = 1;
        }
        rg_region_free(r);
    }
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, thread_regions, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CU_PASS("threads done");
}

/* A region built on one thread may be handed to another and freed there. */
static void *free_other(void *arg)
{
    rg_region_free(arg);
    return NULL;
}

static void test_handoff(void)
{
    rg_region *r = rg_region_new();
    for (int i = 0; i < 100; i++)
        rg_alloc(r, 3000);
    rg_alloc(r, 200000);
    pthread_t t;
    pthread_create(&t, NULL, free_other, r);
    pthread_join(t, NULL);
    CU_PASS("handed off");
}

int main(void)
{
    static const cu_test tests[] = {
        {"alloc is 16-byte aligned", test_alloc_alignment},
        {"allocations are distinct and intact", test_distinct_and_intact},
        {"rg_alloc_aligned", test_aligned},
        {"rg_calloc zeroes and checks overflow", test_calloc_overflow},
        {"sizes near SIZE_MAX fail with ENOMEM", test_huge_sizes},
        {"zero size", test_zero_size},
        {"NULL arguments", test_null_args},
        {"bad options", test_bad_opts},
        {"strdup, strndup, memdup", test_strdup},
        {"on_reset cleanups run newest first", test_cleanups_order},
        {"mark and release", test_mark_release},
        {"reset keeps the first chunk", test_reset_keeps_first_chunk},
        {"reset learns the request size", test_reset_learns_request_size},
        {"steady request loop allocates nothing", test_steady_state_no_arena_traffic},
        {"reset loop keeps objects intact", test_reset_loop_intact},
        {"reset honours the retain cap", test_retain_cap},
        {"large blocks return on reset", test_large_returned_on_reset},
        {"keep pins until reset", test_keep},
        {"pins taken and dropped while the collector scans", test_keep_concurrent_scan},
        {"use after reset is detected", test_use_after_reset_detected},
        {"double free is diagnosed", test_double_free_diagnosed},
        {"regions on several threads", test_threads},
        {"a region freed by another thread", test_handoff},
        {NULL, NULL},
    };
    return cu_run("region", tests);
}
