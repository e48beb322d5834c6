/* tests/dashboard.c — the live dashboard (/debug/regio) in headless
 * Chromium against this process while a worker thread allocates: the page
 * must fetch /debug/vars, plot, and mark <body data-points="N"> (read with
 * --dump-dom after a virtual-time budget).  Exit 77 when chromium or
 * libmicrohttpd is missing.  Set RG_DASHBOARD_SCREENSHOT=FILE.png to also
 * save a screenshot for a person to look at.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "cu.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_bool stop_work;
static rg_syncpool *req_pool; /* a real pool, so the pool chart has a series */
static const char *chromium;

static void *worker(void *arg)
{
    (void)arg;
    void *keep[512] = {0};
    unsigned i = 0;
    while (!atomic_load(&stop_work)) {
        rg_region *r = rg_region_new();
        for (int k = 0; k < 200; k++)
            rg_alloc(r, 512);
        unsigned slot = i++ % 512;
        rg_free(keep[slot]);
        keep[slot] = rg_malloc(1024 + (i % 64) * 256);
        rg_region_free(r);
        /* hit rate drifting between 50% and 100%: an object not put back
         * makes the next get a miss */
        void *o = rg_syncpool_get(req_pool);
        if (i % 16 < 8 + (i >> 10) % 8)
            rg_syncpool_put(req_pool, o);
        else
            rg_free(o);
        if (i % 64 == 0)
            usleep(2000);
    }
    for (int k = 0; k < 512; k++)
        rg_free(keep[k]);
    return NULL;
}

/* Runs chromium with args, capturing stdout into out, killing it (by PID)
 * after limit_s.  Returns the exit status or -1. */
static int run_chromium(char *const argv[], char *out, size_t cap, int limit_s)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(pfd[1], 1);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t len = 0;
    uint64_t deadline = rgi_now_ns() + (uint64_t)limit_s * 1000000000ull;
    for (;;) {
        if (rgi_now_ns() > deadline) {
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd p = {pfd[0], POLLIN, 0};
        if (poll(&p, 1, 500) <= 0)
            continue;
        ssize_t r = read(pfd[0], out + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == cap - 1)
            break;
    }
    close(pfd[0]);
    out[len] = '\0';
    int st;
    /* bounded: after EOF chromium exits; after SIGKILL it is gone */
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_dashboard_plots(void)
{
    pthread_t t;
    rg_syncpool_opts po = {.obj_size = 256, .name = "requests"};
    req_pool = rg_syncpool_new(&po);
    CU_ASSERT_PTR_NOT_NULL_FATAL(req_pool);
    rg_set_memory_limit((int64_t)64 << 20); /* so the limit line shows */
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, worker, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(rg_debug_serve("127.0.0.1:0"), 0);
    char url[128], profile[] = "/tmp/regio-chromium-XXXXXX", udd[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/debug/regio?interval=200", rg_debug_port());
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(profile));
    snprintf(udd, sizeof udd, "--user-data-dir=%s", profile);
    char *argv[] = {(char *)chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--no-first-run", udd,
                    "--virtual-time-budget=8000", "--window-size=1280,900", "--dump-dom", url, NULL};
    static char dom[1 << 20];
    int st = run_chromium(argv, dom, sizeof dom, 120);
    CU_ASSERT_EQUAL(st, 0);
    const char *shot = getenv("RG_DASHBOARD_SCREENSHOT");
    if (shot) {
        char sarg[300];
        snprintf(sarg, sizeof sarg, "--screenshot=%s", shot);
        char *sargv[] = {(char *)chromium, "--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-background-networking", "--no-first-run", udd,
                         "--virtual-time-budget=8000", "--window-size=1280,900", sarg, url, NULL};
        static char junk[4096];
        run_chromium(sargv, junk, sizeof junk, 120);
    }
    atomic_store(&stop_work, true);
    pthread_join(t, NULL);
    rg_debug_stop();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", profile);
    CU_ASSERT_EQUAL(system(cmd), 0);

    const char *a = strstr(dom, "data-points=\"");
    int points = a ? atoi(a + strlen("data-points=\"")) : -1;
    const char *h = strstr(dom, "data-heap-max=\"");
    double heap_max = h ? atof(h + strlen("data-heap-max=\"")) : -1;
    if (points < 5 || heap_max <= 0)
        printf("\n  dumped DOM (%zu bytes): %s\n", strlen(dom), strstr(dom, "<body") ? strstr(dom, "<body") : dom);
    CU_ASSERT(points >= 5);
    CU_ASSERT(heap_max > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(dom, "regio dashboard:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dom, "<div id=\"err\"></div>")); /* no failed poll shown */
}

int main(void)
{
    static const char *const candidates[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser", NULL};
    for (int i = 0; candidates[i]; i++)
        if (access(candidates[i], X_OK) == 0) {
            chromium = candidates[i];
            break;
        }
    if (chromium == NULL) {
        printf("dashboard: chromium is missing\n");
        return CU_SKIP_EXIT;
    }
    if (rg_debug_serve("127.0.0.1:0") == -ENOTSUP) {
        printf("dashboard: built without libmicrohttpd\n");
        return CU_SKIP_EXIT;
    }
    rg_debug_stop();
    static const cu_test tests[] = {
        {"dashboard plots in headless chromium", test_dashboard_plots},
        {NULL, NULL},
    };
    return cu_run("dashboard", tests);
}
