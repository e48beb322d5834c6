/* tests/arena.c — per-thread arenas: size classes, local and cross-thread
 * frees, orphaning and adoption at thread exit, the counting invariants. */
#include "cu.h"
#include "internal.h"

#include <stdint.h>

static void test_size_classes(void)
{
    CU_ASSERT_EQUAL(rgi_size_class(0), 0);
    CU_ASSERT_EQUAL(rgi_class_size(rgi_size_class(1)), 16);
    size_t prev = 0;
    for (unsigned c = 0; c < RGI_NCLASSES; c++) {
        size_t sz = rgi_class_size(c);
        CU_ASSERT(sz > prev);
        CU_ASSERT_EQUAL(sz % 16, 0);
        CU_ASSERT_EQUAL(rgi_size_class(sz), c);
        CU_ASSERT_EQUAL(rgi_size_class(prev + 1), c);
        prev = sz;
    }
    CU_ASSERT_EQUAL(rgi_class_size(RGI_NCLASSES - 1), RGI_SMALL_MAX);
    /* waste is bounded: at most 25% above 128 bytes */
    for (size_t n = 129; n <= RGI_SMALL_MAX; n += 13)
        CU_ASSERT(rgi_class_size(rgi_size_class(n)) * 4 <= n * 5 + 64);
}

static void test_malloc_free_sizes(void)
{
    static void *p[3000];
    size_t sizes[] = {0, 1, 15, 16, 17, 100, 128, 129, 1000, 4096, 8193, 32768, 32769, 65536,
                      500000, 983040, 983041, 3000000, 10000000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        for (int i = 0; i < 5; i++) {
            p[i] = rg_malloc(sizes[k]);
            CU_ASSERT_PTR_NOT_NULL_FATAL(p[i]);
            CU_ASSERT_EQUAL((uintptr_t)p[i] % 16, 0);
            CU_ASSERT(rg_usable_size(p[i]) >= sizes[k]);
            CU_ASSERT(rg_owns(p[i]));
            memset(p[i], 0x5a, sizes[k]);
        }
        for (int i = 0; i < 5; i++)
            rg_free(p[i]);
    }
    for (int i = 0; i < 3000; i++) {
        p[i] = rg_malloc((size_t)(i * 7919) % 20000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p[i]);
        *(int *)p[i] = i;
    }
    int bad = 0;
    for (int i = 0; i < 3000; i++) {
        bad += *(int *)p[i] != i;
        rg_free(p[i]);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(rgi_arena_is_valid(rgi_arena_get()));
}

static void test_zeroed_and_overflow(void)
{
    unsigned char *z = rg_malloc_zeroed(1000, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(z);
    int nz = 0;
    for (int i = 0; i < 3000; i++)
        nz += z[i] != 0;
    CU_ASSERT_EQUAL(nz, 0);
    rg_free(z);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_malloc_zeroed(SIZE_MAX, 2));
    CU_ASSERT_EQUAL(errno, EOVERFLOW);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_malloc(SIZE_MAX));
    CU_ASSERT_EQUAL(errno, ENOMEM);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_malloc(SIZE_MAX - 4096));
    CU_ASSERT_EQUAL(errno, ENOMEM);
}

static void test_aligned(void)
{
    size_t aligns[] = {16, 32, 64, 128, 256, 4096, 8192, 65536, 1 << 20, 2 << 20};
    size_t sizes[] = {1, 100, 5000, 40000, 2000000};
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            void *p = rg_malloc_aligned(sizes[s], aligns[a]);
            CU_ASSERT_PTR_NOT_NULL_FATAL(p);
            CU_ASSERT_EQUAL((uintptr_t)p % aligns[a], 0);
            CU_ASSERT(rg_usable_size(p) >= sizes[s]);
            memset(p, 1, sizes[s]);
            rg_free(p);
        }
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_malloc_aligned(10, 24));
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_PTR_NULL(rg_malloc_aligned(10, 0));
    CU_ASSERT_PTR_NULL(rg_malloc_aligned(10, (size_t)1 << 30));
}

static void test_realloc(void)
{
    char *p = rg_realloc(NULL, 10);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    strcpy(p, "123456789");
    for (size_t n = 20; n < 3000000; n *= 3) {
        p = rg_realloc(p, n);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_STRING_EQUAL(p, "123456789");
    }
    p = rg_realloc(p, 16);
    CU_ASSERT_EQUAL(memcmp(p, "1234567890", 9), 0);
    rg_free(p);
}

static void test_foreign_pointer(void)
{
    int local;
    errno = 0;
    rg_free(&local); /* not regio's: ignored with EINVAL */
    CU_ASSERT_EQUAL(errno, EINVAL);
    char *m = malloc(100);
    errno = 0;
    rg_free(m);
    CU_ASSERT_EQUAL(errno, EINVAL);
    free(m);
    CU_ASSERT_FALSE(rg_owns(&local));
    CU_ASSERT_EQUAL(rg_usable_size(&local), 0);
    rg_free(NULL);
}

/* Producer allocates, consumer frees: every block travels the inbox. */
#define XN 20000
static void *xq[XN];
static atomic_int xhead;

static void *consumer(void *arg)
{
    (void)arg;
    int done = 0;
    while (done < XN) {
        int h = atomic_load_explicit(&xhead, memory_order_acquire);
        while (done < h) {
            if (*(int *)xq[done] != done)
                abort();
            rg_free(xq[done]);
            done++;
        }
    }
    return NULL;
}

static void test_cross_thread_free(void)
{
    rg_memstats before, after;
    rg_read_memstats(&before);
    pthread_t t;
    pthread_create(&t, NULL, consumer, NULL);
    for (int i = 0; i < XN; i++) {
        xq[i] = rg_malloc(16 + (size_t)(i % 200) * 8);
        CU_ASSERT_PTR_NOT_NULL_FATAL(xq[i]);
        *(int *)xq[i] = i;
        atomic_store_explicit(&xhead, i + 1, memory_order_release);
    }
    pthread_join(t, NULL);
    /* the owner reclaims its inbox on the next slow path */
    for (int i = 0; i < 100000; i++)
        rg_free(rg_malloc(16 + (size_t)(i % 200) * 8));
    rg_read_memstats(&after);
    CU_ASSERT_EQUAL(after.mallocs - before.mallocs, after.frees - before.frees);
    CU_ASSERT(rgi_arena_is_valid(rgi_arena_get()));
}

static void *alloc_and_exit(void *arg)
{
    void **out = arg;
    for (int i = 0; i < 1000; i++)
        out[i] = rg_malloc(100);
    return NULL;
}

static void test_orphan_adopt(void)
{
    static void *blocks[1000];
    rgi_arena_stats st0, st1;
    rgi_arena_read_stats(&st0);
    pthread_t t;
    pthread_create(&t, NULL, alloc_and_exit, blocks);
    pthread_join(t, NULL);
    rgi_arena_read_stats(&st1);
    CU_ASSERT(st1.abandoned >= 1);
    /* frees to an orphan go to its inbox */
    for (int i = 0; i < 1000; i++)
        rg_free(blocks[i]);
    /* the next thread adopts it instead of creating a new arena */
    pthread_create(&t, NULL, alloc_and_exit, blocks);
    pthread_join(t, NULL);
    rgi_arena_stats st2;
    rgi_arena_read_stats(&st2);
    CU_ASSERT_EQUAL(st2.arenas, st1.arenas);
    for (int i = 0; i < 1000; i++)
        rg_free(blocks[i]);
}

static void *churn(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    void *live[256] = {0};
    for (int i = 0; i < 200000; i++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)(seed >> 8) & 255;
        if (live[k]) {
            rg_free(live[k]);
            live[k] = NULL;
        } else {
            size_t n = (seed >> 16) % 3 == 0 ? (seed >> 12) % 100000 : (seed >> 12) % 512;
            live[k] = rg_malloc(n);
            if (live[k] && n)
                ((char *)live[k])[0] = 1;
        }
    }
    for (int k = 0; k < 256; k++)
        rg_free(live[k]);
    if (!rgi_arena_is_valid(rgi_arena_get()))
        abort();
    return NULL;
}

static void test_threads_churn(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CU_PASS("churn finished with valid arenas");
}

static void test_user_spans(void)
{
    rgi_span *s = rgi_arena_span_alloc(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->kind, RGI_SPAN_USER);
    CU_ASSERT((size_t)(s->end - s->start) >= RGI_PAGE_SIZE);
    memset(s->start, 0, (size_t)(s->end - s->start));
    rgi_arena_span_free(s);
    errno = 0;
    CU_ASSERT_PTR_NULL(rgi_arena_span_alloc(0));
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT(rgi_arena_is_valid(rgi_arena_get()));
}

int main(void)
{
    static const cu_test tests[] = {
        {"size classes", test_size_classes},
        {"malloc and free across sizes", test_malloc_free_sizes},
        {"zeroed and overflow", test_zeroed_and_overflow},
        {"aligned", test_aligned},
        {"realloc", test_realloc},
        {"foreign pointers are refused", test_foreign_pointer},
        {"cross-thread free through the inbox", test_cross_thread_free},
        {"orphaned arenas are adopted", test_orphan_adopt},
        {"four threads churn", test_threads_churn},
        {"spans for other allocators", test_user_spans},
        {NULL, NULL},
    };
    return cu_run("arena", tests);
}
