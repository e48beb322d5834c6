/* tests/debug_http.c — the debug HTTP endpoint on loopback: addresses and
 * ports, /debug/vars JSON, the dashboard page, 404/405, and
 * `go tool pprof -top http://127.0.0.1:PORT/debug/pprof/heap` (exit 77 when
 * the library has no libmicrohttpd, or go is missing and all else passed).
 */
#define _GNU_SOURCE /* memmem */
#include "internal.h"
#include "cu.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

static char tmpdir[64];
static bool have_go;

void http_test_hot_allocator(void);
static void *hot[200];
/* The allocation site the profile must put on top (global: see tests/profile.c). */
__attribute__((noinline)) void http_test_hot_allocator(void)
{
    for (int i = 0; i < 200; i++) {
        hot[i] = rg_malloc(16384);
        __asm__ volatile("" ::"r"(hot[i]) : "memory");
    }
}

/* A minimal HTTP/1.0 GET on 127.0.0.1 with a 10 s bound.  Returns the
 * status code (body in out) or -1. */
static int http_get(int port, const char *path, const char *method, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t len = 0;
    uint64_t deadline = rgi_now_ns() + 10000000000ull;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (rgi_now_ns() > deadline || poll(&p, 1, 1000) < 0)
            break;
        if (p.revents == 0)
            continue;
        ssize_t r = read(fd, out + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == cap - 1)
            break;
    }
    close(fd);
    out[len] = '\0';
    int status = -1;
    if (sscanf(out, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    char *body = strstr(out, "\r\n\r\n");
    if (body)
        memmove(out, body + 4, strlen(body + 4) + 1);
    return status;
}

static void test_addresses(void)
{
    CU_ASSERT_EQUAL(rg_debug_port(), -ENOTCONN);
    CU_ASSERT_EQUAL(rg_debug_serve(NULL), -EINVAL);
    CU_ASSERT_EQUAL(rg_debug_serve("127.0.0.1"), -EINVAL);
    CU_ASSERT_EQUAL(rg_debug_serve("127.0.0.1:99999"), -EINVAL);
    CU_ASSERT_EQUAL(rg_debug_serve("not-an-ip:80"), -EINVAL);
    CU_ASSERT_EQUAL(rg_debug_serve("127.0.0.1:"), -EINVAL);
    /* IPv6 loopback, when the machine has it */
    int rc = rg_debug_serve("[::1]:0");
    if (rc == 0) {
        CU_ASSERT(rg_debug_port() > 0);
        rg_debug_stop();
    }
    CU_ASSERT_EQUAL_FATAL(rg_debug_serve("127.0.0.1:0"), 0);
    int port = rg_debug_port();
    CU_ASSERT(port > 0);
    CU_ASSERT_EQUAL(rg_debug_serve("127.0.0.1:0"), -EALREADY);
    /* the same port a second time is in use */
    rg_debug_stop();
    CU_ASSERT_EQUAL(rg_debug_port(), -ENOTCONN);
    rg_debug_stop(); /* no-op */
}

static void test_routes(void)
{
    CU_ASSERT_EQUAL_FATAL(rg_debug_serve("localhost:0"), 0);
    int port = rg_debug_port();
    static char body[1 << 20];
    CU_ASSERT_EQUAL(http_get(port, "/debug/vars", "GET", body, sizeof body), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"cmdline\":[\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"memstats\":{\"Alloc\":"));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"HeapSys\":"));
    CU_ASSERT_EQUAL(http_get(port, "/debug/regio", "GET", body, sizeof body), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "<canvas id=\"mem\""));
    CU_ASSERT_PTR_NULL(strstr(body, "http://")); /* self-contained: no external resource */
    CU_ASSERT_PTR_NULL(strstr(body, "https://"));
    CU_ASSERT_EQUAL(http_get(port, "/debug/pprof/", "GET", body, sizeof body), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "/debug/pprof/heap"));
    CU_ASSERT_EQUAL(http_get(port, "/nope", "GET", body, sizeof body), 404);
    CU_ASSERT_EQUAL(http_get(port, "/debug/vars", "DELETE", body, sizeof body), 405);
    int st = http_get(port, "/debug/pprof/heap", "GET", body, sizeof body);
    CU_ASSERT(st == 200 || st == 501);
    if (st == 200)
        CU_ASSERT((unsigned char)body[0] == 0x1f && (unsigned char)body[1] == 0x8b);
    rg_debug_stop();
    CU_ASSERT_EQUAL(http_get(port, "/debug/vars", "GET", body, sizeof body), -1); /* stopped */
}

static void test_go_pprof_url(void)
{
    if (!have_go)
        return;
    rg_set_memprofile_rate(1);
    http_test_hot_allocator();
    CU_ASSERT_EQUAL_FATAL(rg_debug_serve("127.0.0.1:0"), 0);
    int port = rg_debug_port();
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "HOME=%s PPROF_TMPDIR=%s timeout 120 go tool pprof -top http://127.0.0.1:%d/debug/pprof/heap 2>&1",
             tmpdir, tmpdir, port);
    FILE *f = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static char out[1 << 16];
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    CU_ASSERT_EQUAL(pclose(f), 0);
    rg_debug_stop();
    const char *h = strstr(out, "flat%");
    const char *line = h ? strchr(h, '\n') : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    line++;
    size_t len = strcspn(line, "\n");
    bool on_top = memmem(line, len, "http_test_hot_allocator", strlen("http_test_hot_allocator")) != NULL;
    if (!on_top)
        printf("\n  pprof output:\n%s\n", out);
    CU_ASSERT(on_top);
    for (int i = 0; i < 200; i++)
        rg_free(hot[i]);
}

int main(void)
{
    rg_set_memprofile_rate(1);
    if (rg_debug_serve("127.0.0.1:0") == -ENOTSUP) {
        printf("debug_http: built without libmicrohttpd\n");
        return CU_SKIP_EXIT;
    }
    rg_debug_stop();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/regio-http-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 2;
    have_go = system("go version >/dev/null 2>&1") == 0;
    static const cu_test tests[] = {
        {"addresses and ports", test_addresses},
        {"routes", test_routes},
        {"go tool pprof URL", test_go_pprof_url},
        {NULL, NULL},
    };
    int rc = cu_run("debug_http", tests);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0 && rc == 0)
        rc = 1;
    if (rc == 0 && !have_go) {
        printf("debug_http: go is missing, `go tool pprof` check skipped\n");
        return CU_SKIP_EXIT;
    }
    return rc;
}
