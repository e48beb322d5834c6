/* tests/page.c — the page layer: option parsing, the hard limit and its
 * ladder, fault injection, the scavenger, backing reports, fork safety. */
#include "cu.h"
#include "internal.h"

#include <sys/wait.h>
#include <unistd.h>

static void test_parse_bytes(void)
{
    int64_t v;
    CU_ASSERT_EQUAL(rgi_parse_bytes("512MiB", &v), 0);
    CU_ASSERT_EQUAL(v, 512LL << 20);
    CU_ASSERT_EQUAL(rgi_parse_bytes("4GiB", &v), 0);
    CU_ASSERT_EQUAL(v, 4LL << 30);
    CU_ASSERT_EQUAL(rgi_parse_bytes("1000", &v), 0);
    CU_ASSERT_EQUAL(v, 1000);
    CU_ASSERT_EQUAL(rgi_parse_bytes("10KB", &v), 0);
    CU_ASSERT_EQUAL(v, 10000);
    CU_ASSERT_EQUAL(rgi_parse_bytes("off", &v), 0);
    CU_ASSERT_EQUAL(v, RG_MEMLIMIT_OFF);
    CU_ASSERT_EQUAL(rgi_parse_bytes("", &v), -EINVAL);
    CU_ASSERT_EQUAL(rgi_parse_bytes("-5", &v), -EINVAL);
    CU_ASSERT_EQUAL(rgi_parse_bytes("12XB", &v), -EINVAL);
    CU_ASSERT_EQUAL(rgi_parse_bytes("99999999999999999999", &v), -EINVAL);
    CU_ASSERT_EQUAL(rgi_parse_bytes("9999999999TiB", &v), -EINVAL);
    CU_ASSERT_EQUAL(rgi_parse_bytes(NULL, &v), -EINVAL);
}

static void test_init_bad_config(void)
{
    rg_config c;
    rg_config_default(&c);
    c.hugepages = 42;
    CU_ASSERT_EQUAL(rg_init(&c), -EINVAL);
    rg_config_default(&c);
    c.memory_limit = -5;
    CU_ASSERT_EQUAL(rg_init(&c), -EINVAL);
    rg_config_default(&c);
    CU_ASSERT_EQUAL(rg_init(&c), 0);
    CU_ASSERT_EQUAL(rg_init(NULL), 0);
}

static void test_set_limit_returns_previous(void)
{
    int64_t prev = rg_set_memory_limit(RG_MEMLIMIT_OFF);
    CU_ASSERT_EQUAL(rg_set_memory_limit(-1), RG_MEMLIMIT_OFF); /* negative only queries */
    CU_ASSERT_EQUAL(rg_set_memory_limit(1LL << 40), RG_MEMLIMIT_OFF);
    CU_ASSERT_EQUAL(rg_set_memory_limit(prev), 1LL << 40);
    rg_memstats st;
    rg_set_memory_limit(RG_MEMLIMIT_OFF);
    rg_read_memstats(&st);
    CU_ASSERT_EQUAL(st.limit, -1);
    rg_set_memory_limit(64 << 20);
    rg_read_memstats(&st);
    CU_ASSERT_EQUAL(st.limit, 64 << 20);
    rg_set_memory_limit(RG_MEMLIMIT_OFF);
}

static void test_limit_never_crossed(void)
{
    rg_release_memory();
    rg_memstats st;
    rg_read_memstats(&st);
    int64_t lim = (int64_t)st.sys + (40 << 20);
    rg_set_memory_limit(lim);
    static void *p[4096];
    int n = 0, failed = 0;
    for (; n < 4096; n++) {
        errno = 0;
        p[n] = rg_malloc((size_t)(n % 3 == 0 ? 3 << 20 : 100 << 10));
        if (p[n] == NULL) {
            CU_ASSERT_EQUAL(errno, ENOMEM);
            failed++;
            if (failed > 20)
                break;
        }
        rg_read_memstats(&st);
        CU_ASSERT(st.sys <= (uint64_t)lim);
    }
    CU_ASSERT(failed > 0);
    CU_ASSERT(st.oom_fails > 0);
    CU_ASSERT(rgi_page_is_valid());
    for (int i = 0; i < n; i++)
        rg_free(p[i]);
    CU_ASSERT(rgi_page_is_valid());
    /* after freeing, allocation works again */
    void *q = rg_malloc(3 << 20);
    CU_ASSERT_PTR_NOT_NULL(q);
    rg_free(q);
    rg_set_memory_limit(RG_MEMLIMIT_OFF);
}

static size_t hook_calls;
static void *hook_stash[64];
static size_t hook_release(size_t need, void *arg)
{
    (void)need;
    (void)arg;
    hook_calls++;
    size_t freed = 0;
    for (int i = 0; i < 64; i++) {
        if (hook_stash[i]) {
            rg_free(hook_stash[i]);
            hook_stash[i] = NULL;
            freed += 1 << 20;
        }
    }
    return freed;
}

static int oom_calls;
static int oom_handler(size_t need, void *arg)
{
    (void)need;
    (void)arg;
    oom_calls++;
    return 0;
}

static void test_ladder_hooks_and_oom_handler(void)
{
    static bool registered;
    if (!registered) {
        CU_ASSERT_EQUAL(rgi_pressure_register(RGI_PRESSURE_POOLS, hook_release, NULL), 0);
        registered = true;
    }
    CU_ASSERT_EQUAL(rgi_pressure_register(5, NULL, NULL), -EINVAL);
    rg_release_memory();
    rg_memstats st;
    rg_read_memstats(&st);
    rg_set_memory_limit((int64_t)st.sys + (30 << 20));
    /* a "pool" holds memory the hook can give back */
    for (int i = 0; i < 8; i++) {
        hook_stash[i] = rg_malloc(3 << 20);
        CU_ASSERT_PTR_NOT_NULL(hook_stash[i]);
    }
    hook_calls = 0;
    void *big = rg_malloc(10 << 20);
    CU_ASSERT_PTR_NOT_NULL(big); /* only possible because the hook let go */
    CU_ASSERT(hook_calls >= 1);
    rg_set_oom_handler(oom_handler, NULL);
    oom_calls = 0;
    errno = 0;
    void *too_big = rg_malloc(64 << 20);
    CU_ASSERT_PTR_NULL(too_big);
    CU_ASSERT_EQUAL(errno, ENOMEM);
    CU_ASSERT_EQUAL(oom_calls, 1);
    rg_set_oom_handler(NULL, NULL);
    rg_free(big);
    rg_set_memory_limit(RG_MEMLIMIT_OFF);
}

static void test_fault_injection(void)
{
    rg_release_memory();
    /* nth commit fails once, then it works again */
    rgi_fault_inject(1, 0, 0);
    errno = 0;
    void *p = rg_malloc(5 << 20);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_EQUAL(errno, ENOMEM);
    p = rg_malloc(5 << 20);
    CU_ASSERT_PTR_NOT_NULL(p);
    rg_free(p);
    /* random faults with a seed: allocations fail cleanly, nothing leaks */
    rg_memstats before, after;
    rg_read_memstats(&before);
    uint64_t n0 = rgi_fault_inject(0, 300, 12345);
    int fails = 0;
    for (int i = 0; i < 200; i++) {
        void *q = rg_malloc((size_t)(1 + i % 5) << 20);
        if (q == NULL)
            fails++;
        else
            rg_free(q);
        rg_region *r = rg_region_new();
        if (r) {
            for (int k = 0; k < 50; k++)
                (void)rg_alloc(r, 200000);
            rg_region_free(r);
        }
    }
    uint64_t injected = rgi_fault_inject(0, 0, 0) - n0;
    CU_ASSERT(rgi_page_is_valid());
    CU_ASSERT(fails > 0);
    CU_ASSERT(injected > 0);
    rg_release_memory();
    rg_read_memstats(&after);
    CU_ASSERT(after.sys <= before.sys);
}

static void test_scavenger_returns_memory(void)
{
    rg_config c;
    rg_config_default(&c);
    rg_init(&c);
    /* Fill and free many segments on a thread that exits: the segments go
     * idle and the scavenger (1 s delay by default, RG_SCAVENGE_DELAY in
     * meson's test env: 50ms) purges them without any further call. */
    static void *blocks[64];
    for (int i = 0; i < 64; i++)
        blocks[i] = rg_malloc(900 << 10);
    for (int i = 0; i < 64; i++)
        rg_free(blocks[i]);
    rg_memstats st;
    rg_read_memstats(&st);
    uint64_t released0 = st.heap_released;
    CU_ASSERT(st.heap_idle > 0);
    for (int i = 0; i < 300; i++) {
        usleep(10000);
        rg_read_memstats(&st);
        if (st.heap_idle == 0)
            break;
    }
    CU_ASSERT_EQUAL(st.heap_idle, 0);
    CU_ASSERT(st.heap_released > released0);
    CU_ASSERT(rgi_page_is_valid());
}

static void test_memstats_backing_and_rss(void)
{
    void *p = rg_malloc(4 << 20);
    memset(p, 1, 4 << 20);
    rg_memstats st;
    rg_read_memstats(&st);
    CU_ASSERT(st.sys > 0);
    CU_ASSERT(st.rss > 0);
    CU_ASSERT(st.bytes_4k + st.bytes_thp + st.bytes_hugetlb + st.metadata <= st.sys);
    CU_ASSERT(st.bytes_4k + st.bytes_thp + st.bytes_hugetlb >= 4 << 20);
    CU_ASSERT(st.metadata > 0);
    rg_free(p);
}

static void test_fork(void)
{
    void *parent_block = rg_malloc(1000);
    rg_region *r = rg_region_new();
    rg_alloc(r, 100);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        /* the child allocates, frees and uses regions */
        rg_region *cr = rg_region_new();
        for (int i = 0; i < 1000; i++)
            if (!rg_alloc(cr, 1000))
                _exit(2);
        rg_region_free(cr);
        void *q = rg_malloc(5 << 20);
        if (!q)
            _exit(3);
        rg_free(q);
        rg_free(parent_block);
        rg_region_free(r);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* the parent keeps working */
    CU_ASSERT_PTR_NOT_NULL(rg_alloc(r, 100));
    rg_region_free(r);
    rg_free(parent_block);
}

int main(void)
{
    static const cu_test tests[] = {
        {"memory sizes parse like GOMEMLIMIT", test_parse_bytes},
        {"rg_init rejects bad config", test_init_bad_config},
        {"rg_set_memory_limit returns the previous limit", test_set_limit_returns_previous},
        {"the limit is never crossed", test_limit_never_crossed},
        {"the ladder runs hooks, then the OOM handler", test_ladder_hooks_and_oom_handler},
        {"fault injection fails commits cleanly", test_fault_injection},
        {"the scavenger returns idle memory", test_scavenger_returns_memory},
        {"memstats report backing and RSS", test_memstats_backing_and_rss},
        {"fork: child allocates, parent goes on", test_fork},
        {NULL, NULL},
    };
    return cu_run("page", tests);
}
