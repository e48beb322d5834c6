/* core/debug_http.c — the debug HTTP endpoint: net/http/pprof and expvar for
 * C servers, plus a live dashboard.
 *
 * Routes (GET only):
 *   /debug/pprof/            index
 *   /debug/pprof/heap        heap profile, pprof protobuf gzipped (inuse_space default)
 *   /debug/pprof/allocs      same samples, alloc_space default
 *   /debug/vars              expvar-style JSON: {"cmdline": [...], "memstats": {...}}
 *   /debug/regio             the dashboard: one self-contained page (inline JS,
 *                            canvas, no external resource) that polls
 *                            /debug/vars and plots heap, limit, RSS, GC pauses
 *                            and pool hit rates over time.
 *
 * Server: libmicrohttpd with its own polling thread (MHD_USE_AUTO picks
 * epoll/poll), so the application needs no event loop.  The profile and the
 * JSON are built per request on that thread; regio's own buffers come from
 * the arenas and libmicrohttpd copies them (its memory is its own, outside
 * the limit, like any other library's).  Reference: Go's net/http/pprof and
 * expvar packages for the URL layout `go tool pprof` expects.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#if RG_HAVE_MHD
#include <microhttpd.h>

static pthread_mutex_t srv_lock = PTHREAD_MUTEX_INITIALIZER;
static struct MHD_Daemon *srv;
static int srv_port = -ENOTCONN;

/* The page is one literal (core/dashboard.html, embedded at build time). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"
static const char dashboard_html[] =
#include "dashboard.html.h"
    ;
#pragma GCC diagnostic pop

static const char index_html[] =
    "<!DOCTYPE html><html><head><title>/debug/pprof/</title></head><body>"
    "<h1>regio debug</h1><ul>"
    "<li><a href=\"/debug/pprof/heap\">heap</a>: sampled live objects (go tool pprof URL)</li>"
    "<li><a href=\"/debug/pprof/allocs\">allocs</a>: all sampled allocations</li>"
    "<li><a href=\"/debug/vars\">vars</a>: memstats as JSON</li>"
    "<li><a href=\"/debug/regio\">regio</a>: live dashboard</li>"
    "</ul></body></html>";

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *type,
                                const void *buf, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)buf, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return send_buf(c, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

/* /proc/self/cmdline as a JSON array of strings (escaped). */
static size_t cmdline_json(char *out, size_t cap)
{
    char raw[1024];
    size_t len = 0, o = 0;
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, raw, sizeof raw - 1);
        close(fd);
        len = n > 0 ? (size_t)n : 0;
    }
    out[o++] = '[';
    bool open_str = false;
    for (size_t i = 0; i < len && o + 8 < cap; i++) {
        if (!open_str) {
            if (o > 1) out[o++] = ',';
            out[o++] = '"';
            open_str = true;
        }
        unsigned char ch = (unsigned char)raw[i];
        if (ch == 0) {
            out[o++] = '"';
            open_str = false;
        } else if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20) {
            out[o++] = ' ';
        } else {
            out[o++] = (char)ch;
        }
    }
    if (open_str)
        out[o++] = '"';
    out[o++] = ']';
    out[o] = '\0';
    return o;
}

static enum MHD_Result send_vars(struct MHD_Connection *c)
{
    rg_memstats *ms = rgi_arena_malloc(sizeof *ms);
    size_t cap = 16384;
    char *buf = rgi_arena_malloc(cap);
    if (ms == NULL || buf == NULL) {
        rgi_arena_free(ms);
        rgi_arena_free(buf);
        return send_text(c, 503, "out of memory\n");
    }
    rg_read_memstats(ms);
    size_t o = (size_t)snprintf(buf, cap, "{\"cmdline\":");
    o += cmdline_json(buf + o, 1200);
    o += (size_t)snprintf(buf + o, cap - o, ",\"memstats\":");
    int n = rg_memstats_json(ms, buf + o, cap - o - 4);
    if (n < 0 || (size_t)n >= cap - o - 4) {
        rgi_arena_free(ms);
        rgi_arena_free(buf);
        return send_text(c, 500, "memstats too large\n");
    }
    o += (size_t)n;
    buf[o++] = '}';
    buf[o++] = '\n';
    enum MHD_Result r = send_buf(c, 200, "application/json; charset=utf-8", buf, o);
    rgi_arena_free(ms);
    rgi_arena_free(buf);
    return r;
}

static enum MHD_Result send_profile(struct MHD_Connection *c, bool allocs)
{
    unsigned char *buf;
    size_t len;
    int rc = rgi_prof_build(allocs, &buf, &len);
    if (rc != 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "profile unavailable: %s\n", strerror(-rc));
        return send_text(c, rc == -ENOTSUP ? 501 : 500, msg);
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_COPY);
    rgi_arena_free(buf);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/octet-stream");
    MHD_add_response_header(r, "Content-Disposition",
                            allocs ? "attachment; filename=\"allocs\"" : "attachment; filename=\"heap\"");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **state)
{
    (void)cls;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)state;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return send_text(c, 405, "method not allowed\n");
    if (strcmp(url, "/debug/pprof/heap") == 0)
        return send_profile(c, false);
    if (strcmp(url, "/debug/pprof/allocs") == 0)
        return send_profile(c, true);
    if (strcmp(url, "/debug/vars") == 0)
        return send_vars(c);
    if (strcmp(url, "/debug/regio") == 0 || strcmp(url, "/debug/regio/") == 0)
        return send_buf(c, 200, "text/html; charset=utf-8", dashboard_html, sizeof dashboard_html - 1);
    if (strcmp(url, "/debug/pprof") == 0 || strcmp(url, "/debug/pprof/") == 0 || strcmp(url, "/") == 0)
        return send_buf(c, 200, "text/html; charset=utf-8", index_html, sizeof index_html - 1);
    return send_text(c, 404, "not found\n");
}

/* "host:port", "[v6]:port", ":port" into a socket address.  0 or -EINVAL. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, bool *v6)
{
    char host[128];
    const char *colon;
    if (addr == NULL)
        return -EINVAL;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - addr - 1) >= sizeof host)
            return -EINVAL;
        memcpy(host, addr + 1, (size_t)(close - addr - 1));
        host[close - addr - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
            return -EINVAL;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno || port < 0 || port > 65535)
        return -EINVAL;
    memset(ss, 0, sizeof *ss);
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (host[0] == '\0') {
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        s4->sin_port = htons((uint16_t)port);
        *v6 = false;
    } else if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *v6 = false;
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *v6 = true;
    } else {
        return -EINVAL;
    }
    return 0;
}

int rg_debug_serve(const char *addr)
{
    struct sockaddr_storage ss;
    bool v6;
    int rc = parse_addr(addr, &ss, &v6);
    if (rc != 0)
        return rc;
    rgi_ensure_init();
    pthread_mutex_lock(&srv_lock);
    if (srv) {
        pthread_mutex_unlock(&srv_lock);
        return -EALREADY;
    }
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    errno = 0;
    struct MHD_Daemon *d = MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL,
                                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                                            MHD_OPTION_END);
    if (d == NULL) {
        rc = errno == EADDRINUSE ? -EADDRINUSE : errno ? -errno : -EADDRINUSE;
        pthread_mutex_unlock(&srv_lock);
        return rc;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    srv_port = info && info->port ? (int)info->port : -ENOTCONN;
    if (srv_port < 0) {
        info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
        struct sockaddr_storage got;
        socklen_t gl = sizeof got;
        if (info && getsockname(info->listen_fd, (struct sockaddr *)&got, &gl) == 0)
            srv_port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                       : ((struct sockaddr_in *)&got)->sin_port);
    }
    srv = d;
    pthread_mutex_unlock(&srv_lock);
    return 0;
}

int rg_debug_port(void)
{
    pthread_mutex_lock(&srv_lock);
    int p = srv ? srv_port : -ENOTCONN;
    pthread_mutex_unlock(&srv_lock);
    return p;
}

void rg_debug_stop(void)
{
    pthread_mutex_lock(&srv_lock);
    struct MHD_Daemon *d = srv;
    srv = NULL;
    srv_port = -ENOTCONN;
    pthread_mutex_unlock(&srv_lock);
    if (d)
        MHD_stop_daemon(d);
}

#else /* !RG_HAVE_MHD */

int rg_debug_serve(const char *addr)
{
    (void)addr;
    return -ENOTSUP;
}

int rg_debug_port(void)
{
    return -ENOTCONN;
}

void rg_debug_stop(void)
{
}

#endif
