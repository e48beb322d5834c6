/* tests/profile.c — heap profile sampling, the side table of sampled
 * addresses, memstats/JSON, memtrace, the leak report, and the pprof
 * writer checked with `go tool pprof -top` (exit 77 when go is missing and
 * everything else passed).
 */
#include "internal.h"
#include "cu.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[64];
static bool have_go;

#define NBIG 160
#define NSMALL 40
static void *big[NBIG], *small[NSMALL];

/* The allocation sites the profile must name: not inlined, not tail calls,
 * and global (this file's name is also a regio source's, and regio's own
 * static functions are told apart by file name). */
void test_big_allocator(void);
void test_small_allocator(void);
void test_region_user(void);
__attribute__((noinline)) void test_big_allocator(void)
{
    for (int i = 0; i < NBIG; i++) {
        big[i] = rg_malloc(8192);
        __asm__ volatile("" ::"r"(big[i]) : "memory");
    }
}

__attribute__((noinline)) void test_small_allocator(void)
{
    for (int i = 0; i < NSMALL; i++) {
        small[i] = rg_malloc(64);
        __asm__ volatile("" ::"r"(small[i]) : "memory");
    }
}

static rg_region *reg;
__attribute__((noinline)) void test_region_user(void)
{
    reg = rg_region_new();
    for (int i = 0; i < 64; i++) {
        char *p = rg_alloc(reg, 4000);
        __asm__ volatile("" ::"r"(p) : "memory");
    }
    char *large = rg_alloc(reg, 200 << 10);
    __asm__ volatile("" ::"r"(large) : "memory");
}

static void test_rate(void)
{
    int64_t prev = rg_set_memprofile_rate(-1);
    CU_ASSERT_EQUAL(prev, 1); /* main set it before any allocation */
    CU_ASSERT_EQUAL(rg_set_memprofile_rate(4096), 1);
    CU_ASSERT_EQUAL(rg_set_memprofile_rate(1), 4096);
    rg_memstats ms;
    rg_read_memstats(&ms);
    CU_ASSERT_EQUAL(ms.profile_rate, 1);
}

static void *free_thread(void *p)
{
    rg_free(p);
    return NULL;
}

static void test_sampling_and_frees(void)
{
    uint64_t before = atomic_load(&rgi_prof_samples);
    uint64_t inuse0 = rgi_prof_inuse_samples();
    test_big_allocator();
    test_small_allocator();
    uint64_t got = atomic_load(&rgi_prof_samples) - before;
    /* rate 1: every allocation is sampled */
    CU_ASSERT(got >= NBIG + NSMALL);
    CU_ASSERT(rgi_prof_inuse_samples() >= inuse0 + NBIG + NSMALL);
    uint64_t mid = rgi_prof_inuse_samples();
    for (int i = 0; i < NSMALL; i++)
        rg_free(small[i]);
    CU_ASSERT_EQUAL(rgi_prof_inuse_samples(), mid - NSMALL);
    /* a cross-thread free of a sampled object leaves the side table too */
    void *p = rg_malloc(100);
    uint64_t with = rgi_prof_inuse_samples();
    pthread_t t;
    CU_ASSERT_EQUAL(pthread_create(&t, NULL, free_thread, p), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(rgi_prof_inuse_samples(), with - 1);
    /* a large object (its own run) too */
    void *l = rg_malloc(3 << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_EQUAL(rgi_prof_inuse_samples(), with);
    rg_free(l);
    CU_ASSERT_EQUAL(rgi_prof_inuse_samples(), with - 1);
}

static void test_off_costs_no_samples(void)
{
    int64_t old = rg_set_memprofile_rate(0);
    /* the countdown of the old rate runs out first; then nothing is sampled */
    for (int i = 0; i < 64; i++)
        rg_free(rg_malloc(64));
    uint64_t before = atomic_load(&rgi_prof_samples);
    for (int i = 0; i < 20000; i++)
        rg_free(rg_malloc(256));
    CU_ASSERT_EQUAL(atomic_load(&rgi_prof_samples), before);
    rg_set_memprofile_rate(old);
    /* back on: picked up after at most RGI_PROF_OFF_COUNTDOWN bytes */
    for (int i = 0; i < 2100; i++)
        rg_free(rg_malloc(8192));
    CU_ASSERT(atomic_load(&rgi_prof_samples) > before);
}

/* A forked child keeps sampling (the profiler's lock is reset at fork) and
 * reads its own RSS. */
static void test_fork(void)
{
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        uint64_t before = atomic_load(&rgi_prof_samples);
        void *p = rg_malloc(4096);
        rg_memstats ms;
        rg_read_memstats(&ms);
        _exit(p && atomic_load(&rgi_prof_samples) > before && ms.rss > 0 ? 0 : 1);
    }
    int st;
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static bool read_file(const char *path, unsigned char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, cap);
    close(fd);
    *len = n > 0 ? (size_t)n : 0;
    return n > 0;
}

/* Runs cmd (through sh) with a time bound; returns its stdout in out. */
static int run_capture(const char *cmd, char *out, size_t cap)
{
    char full[1024];
    snprintf(full, sizeof full, "HOME=%s PPROF_TMPDIR=%s timeout 120 %s 2>&1", tmpdir, tmpdir, cmd);
    FILE *f = popen(full, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    return pclose(f);
}

/* The first data line of `pprof -top` output (after the "flat  flat%" header). */
static const char *top_line(const char *out, char *line, size_t cap)
{
    const char *h = strstr(out, "flat%");
    if (h == NULL)
        return NULL;
    const char *l = strchr(h, '\n');
    if (l == NULL)
        return NULL;
    l++;
    size_t n = strcspn(l, "\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(line, l, n);
    line[n] = '\0';
    return line;
}

static void test_write_profile(void)
{
    test_region_user();
    char path[128];
    snprintf(path, sizeof path, "%s/heap.pb.gz", tmpdir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    int rc = rg_write_heap_profile(fd);
    close(fd);
    if (rc == -ENOTSUP) {
        printf("\n  (built without protobuf-c/zlib: pprof writer not checked)\n");
        return;
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    static unsigned char buf[1 << 20];
    size_t len;
    CU_ASSERT_FATAL(read_file(path, buf, sizeof buf, &len));
    CU_ASSERT(len > 20);
    CU_ASSERT(buf[0] == 0x1f && buf[1] == 0x8b); /* gzip */
    CU_ASSERT_EQUAL(rg_write_heap_profile(-1), -EBADF);

    if (!have_go)
        return;
    static char out[1 << 16];
    char cmd[512], line[256];
    snprintf(cmd, sizeof cmd, "go tool pprof -top -nodefraction=0 %s", path);
    int st = run_capture(cmd, out, sizeof out);
    CU_ASSERT_EQUAL(st, 0);
    CU_ASSERT_PTR_NOT_NULL(top_line(out, line, sizeof line));
    if (top_line(out, line, sizeof line) == NULL || strstr(line, "test_big_allocator") == NULL)
        printf("\n  pprof -top output:\n%s\n", out);
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "test_big_allocator"));
    CU_ASSERT_PTR_NULL(strstr(out, "test_small_allocator")); /* all freed: not in use */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "test_region_user")); /* region chunks and large blocks */
    CU_ASSERT_PTR_NULL(strstr(out, "rgi_arena_malloc"));    /* regio's frames are cut */
    CU_ASSERT_PTR_NULL(strstr(out, "rgi_prof_record"));
    if (getenv("RG_TEST_VERBOSE"))
        printf("\n%s\n", out);
    /* the sample types pprof sees */
    snprintf(cmd, sizeof cmd, "go tool pprof -sample_index=alloc_objects -top %s", path);
    CU_ASSERT_EQUAL(run_capture(cmd, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "test_big_allocator"));
    rg_region_free(reg);
    for (int i = 0; i < NBIG; i++)
        rg_free(big[i]);
    /* allocs: freed objects still count */
    snprintf(path, sizeof path, "%s/allocs.pb.gz", tmpdir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_EQUAL(rg_write_allocs_profile(fd), 0);
    close(fd);
    snprintf(cmd, sizeof cmd, "go tool pprof -top %s", path);
    CU_ASSERT_EQUAL(run_capture(cmd, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "alloc_space"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "test_big_allocator"));
    snprintf(cmd, sizeof cmd, "go tool pprof -top -nodefraction=0 %s", path);
    CU_ASSERT_EQUAL(run_capture(cmd, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "test_small_allocator"));
}

static void test_memstats_json(void)
{
    rg_memstats ms;
    void *p = rg_malloc(1000);
    rg_read_memstats(&ms);
    CU_ASSERT(ms.sys > 0);
    CU_ASSERT(ms.heap_sys <= ms.sys);
    CU_ASSERT(ms.mallocs >= ms.frees);
    CU_ASSERT(ms.arenas >= 1);
    CU_ASSERT(ms.rss > 0);
    char buf[8192];
    int n = rg_memstats_json(&ms, buf, sizeof buf);
    CU_ASSERT(n > 0 && (size_t)n < sizeof buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"HeapAlloc\":"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"PauseNs\":["));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"Pools\":[]}"));
    char small_buf[16];
    CU_ASSERT_EQUAL(rg_memstats_json(&ms, small_buf, sizeof small_buf), n); /* like snprintf */
    CU_ASSERT_EQUAL(strlen(small_buf), sizeof small_buf - 1);
    CU_ASSERT_EQUAL(rg_memstats_json(NULL, buf, sizeof buf), -EINVAL);
    rg_free(p);
}

static size_t fake_pool_rows(rgi_pool_row *rows, size_t max, void *arg)
{
    (void)arg;
    if (max < 1)
        return 0;
    rows[0] = (rgi_pool_row){"objpool", "conn\"s", 90, 10, 4096, 3};
    return 1;
}

static void test_pool_rows_and_leaks(void)
{
    static bool registered;
    if (!registered) {
        CU_ASSERT_EQUAL(rgi_stats_pool_source(fake_pool_rows, NULL), 0);
        registered = true;
    }
    rg_memstats ms;
    rg_read_memstats(&ms);
    char buf[8192];
    rg_memstats_json(&ms, buf, sizeof buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"name\":\"conn_s\",\"hits\":90,\"misses\":10"));
    rg_region *r = rg_region_new();
    char path[128];
    snprintf(path, sizeof path, "%s/leaks.txt", tmpdir);
    FILE *f = fopen(path, "w+");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    long n = rg_leak_report(f);
    CU_ASSERT(n >= 1 + 3); /* at least our region's chunk (or region) and the 3 pool objects */
    rewind(f);
    char text[4096];
    size_t len = fread(text, 1, sizeof text - 1, f);
    text[len] = '\0';
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "leak summary"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "3 pool objects never returned"));
#if RG_DEBUG_CHECKS
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "created from test_pool_rows_and_leaks"));
#endif
    rg_region_free(r);
}

static void test_memtrace(void)
{
    /* the monitor prints to stderr: send it to a file for the check */
    char path[128];
    snprintf(path, sizeof path, "%s/memtrace.txt", tmpdir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0 && saved >= 0);
    dup2(fd, 2);
    close(fd);
    CU_ASSERT_EQUAL(rg_monitor_start(100), -EINVAL);
    CU_ASSERT_EQUAL(rg_monitor_start(20 * 1000000), 0);
    CU_ASSERT_EQUAL(rg_monitor_start(20 * 1000000), -EALREADY);
    for (int i = 0; i < 30; i++) {
        rg_free(rg_malloc(1 << 16));
        usleep(5000);
    }
    usleep(60 * 1000);
    rg_monitor_stop();
    rg_monitor_stop(); /* twice is fine */
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    unsigned char text[8192];
    size_t len = 0;
    CU_ASSERT_FATAL(read_file(path, text, sizeof text - 1, &len));
    text[len] = '\0';
    CU_ASSERT_PTR_NOT_NULL(strstr((char *)text, "regio: mem @"));
    CU_ASSERT_PTR_NOT_NULL(strstr((char *)text, "MiB/s"));
}

int main(void)
{
    /* before any allocation, so every arena's first countdown uses it */
    rg_set_memprofile_rate(1);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/regio-profile-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 2;
    have_go = system("go version >/dev/null 2>&1") == 0;
    static const cu_test tests[] = {
        {"rate", test_rate},
        {"sampling and frees", test_sampling_and_frees},
        {"off costs no samples", test_off_costs_no_samples},
        {"fork", test_fork},
        {"write profile, go tool pprof -top", test_write_profile},
        {"memstats json", test_memstats_json},
        {"pool rows and leak report", test_pool_rows_and_leaks},
        {"memtrace", test_memtrace},
        {NULL, NULL},
    };
    int rc = cu_run("profile", tests);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    if (rc == 0 && !have_go) {
        printf("profile: go is missing, `go tool pprof` checks skipped\n");
        return CU_SKIP_EXIT;
    }
    return rc;
}
