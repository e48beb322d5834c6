/* examples/httpd — an HTTP/1.1 static file server on io_uring and regio.
 *
 * One thread per worker, each with its own ring and its own SO_REUSEPORT
 * listener (the kernel spreads connections).  Per connection, at most one
 * receive and one send are in flight.  Memory:
 *   - connections and output buffers (16 KiB) are objects of rg_objpools;
 *   - input buffers (8 KiB) are objects of an rg_objpool that feeds the
 *     worker's provided buffer ring (rg_uring_bufring): a connection waiting
 *     for a request holds no buffer at all; the kernel picks one when bytes
 *     arrive (recv with IOSQE_BUFFER_SELECT), the connection keeps it while
 *     it answers, and gives it back (re-armed at once) when its input is
 *     empty.  Only a request split over several packets receives the rest
 *     into the buffer it already holds.  A ring that runs dry answers
 *     -ENOBUFS: the connection re-arms from the pool, or parks until a buffer
 *     comes back, and is resumed then: reads slow down, nothing is dropped;
 *   - each request parses into a per-connection rg_region, reset after the
 *     answer is sent;
 *   - files are rg_mapfiles in a per-worker cache (revalidated with fstatat
 *     once a second).  Bodies up to 12 KiB are copied next to the header and
 *     sent with one send; larger ones go out with one sendmsg of two iovecs,
 *     the header and the body straight from the map (MSG_WAITALL: one
 *     completion per answer).  From --zc-min bytes on (default 1 MiB) the
 *     body goes with SENDMSG_ZC in 1 MiB chunks, each chunk issued as soon
 *     as the previous one's result arrives; the answer is done (header buffer
 *     reused, map released) only after every notification.  Where the
 *     kernel copies anyway (loopback: the notification says so), SENDMSG_ZC
 *     only adds a completion per chunk and loses 2-2.5x to plain sendmsg
 *     (measured at 1 and 8 MiB, perf/RESULTS.md), so a connection whose
 *     notification reports a copy switches to plain sendmsg for good.
 *   - idle connections are closed: a request header must be complete within
 *     --header-timeout ms of its first byte (or of the accept), a kept-alive
 *     connection may sit idle (or leave an answer unread) for --idle-timeout
 *     ms.  One timer per worker sweeps the connection list a few times per
 *     timeout (no per-request timer SQEs).
 * A file truncated while it is served: small bodies are copied with
 * rg_mapfile_read_at (a short count becomes a 500 before anything is sent);
 * a send of a vanished range fails with -EFAULT and the connection is closed
 * (the header is gone already).  Either way the cache entry is dropped and
 * the server carries on.
 *
 * --alloc=malloc runs the same loop on malloc/free and open+read() per
 * request, with plain sends: the comparison point.
 *
 * Usage: httpd [--root=DIR] [--addr=IP] [--port=N] [--port-file=PATH]
 *              [--workers=N] [--alloc=regio|malloc] [--quiet]
 *              [--header-timeout=MS] [--idle-timeout=MS] [--in-bufs=N]
 *              [--zc-min=BYTES] [--sndbuf=BYTES]
 */
#define _GNU_SOURCE
#include "request.h"

#include <regio.h>
#include <regio/uring.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define IN_CAP HTTPD_MAX_HEADER
#define OUT_CAP (16 << 10)
#define SMALL_BODY (12 << 10)
#define SEND_CHUNK (4u << 20)
#define ZC_CHUNK (1u << 20)
#define MAX_CONNS 4096
#define CACHE_SLOTS 1024
#define RECV_BGID 7
#define ZC_REPORT_USAGE (1U << 3)  /* IORING_SEND_ZC_REPORT_USAGE, missing in liburing 2.3 */
#define ZC_NOTIF_COPIED (1U << 31) /* IORING_NOTIF_USAGE_ZC_COPIED */

enum op { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3, OP_ZC = 4, OP_TIMER = 5 };

static struct {
    const char *root;
    int rootfd;
    bool use_malloc;
    bool quiet;
    int workers;
    struct sockaddr_in addr;
    uint64_t header_ns, idle_ns; /* timeouts */
    unsigned in_bufs;            /* input buffers per worker: the pool's capacity */
    uint64_t zc_min;             /* bodies of this many bytes or more go with SENDMSG_ZC */
    int sndbuf;                  /* SO_SNDBUF of accepted sockets; 0 = the kernel's autotuning */
} cfg;

/* ---------------------------------------------------------------------------
 * Per-worker file cache: path -> rg_mapfile, refcounted by sends in flight.
 * ------------------------------------------------------------------------- */
typedef struct fentry {
    char *path;          /* rg_malloc'd; NULL = empty slot */
    rg_mapfile *m;
    struct stat st;
    uint64_t checked_ns;
    int refs;            /* answers in flight using m */
    bool stale;          /* dropped from the cache; closed at refs == 0 */
} fentry;

typedef struct conn conn;

typedef struct worker {
    struct io_uring ring;
    int lfd;
    rg_objpool *conns, *inbufs, *outbufs;
    rg_uring_bufring *br;  /* receive buffers, fed by inbufs (regio mode) */
    conn *all;             /* every open connection: the timeout sweep walks it */
    conn *parked, *parked_tail; /* FIFO of connections waiting for a receive buffer */
    struct __kernel_timespec tick;
    fentry *cache;       /* CACHE_SLOTS, open addressing by hash */
    char date[64];
    time_t date_sec;
    uint64_t now_ns;
} worker;

struct conn {
    worker *w;
    conn *prev, *next;   /* in w->all */
    conn *pnext;         /* in w->parked */
    bool parked;
    int fd;
    int inflight;        /* operations whose result CQE is still due */
    int notifs;          /* SENDMSG_ZC notifications still due */
    bool closing;
    bool sent;           /* the answer is out; waiting for notifications */
    uint64_t deadline;   /* monotonic ns; 0 = none */
    char *in;            /* NULL while waiting for a request (regio mode) */
    size_t inlen;
    size_t consumed;     /* bytes of `in` belonging to the request being answered */
    rg_region *r;        /* per-request scratch (regio mode) */
    char *out;
    size_t outlen, outoff;
    /* body: from a map (regio) or a malloc'd copy (malloc mode) */
    fentry *file;
    char *mbody;
    const char *body;
    size_t bodylen, bodyoff;
    bool zc_copied;      /* a notification said the kernel copied: plain sends from now on */
    struct msghdr msg;   /* header + body in one sendmsg */
    struct iovec iov[2];
    bool keepalive;
};

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static int open_beneath(const char *path)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    int fd = (int)syscall(SYS_openat2, cfg.rootfd, path[0] ? path : ".", &how, sizeof how);
    if (fd < 0 && errno == ENOSYS) /* kernels before 5.6: the lexical check in request.c stands alone */
        fd = openat(cfg.rootfd, path[0] ? path : ".", O_RDONLY | O_CLOEXEC);
    return fd;
}

/* Opens path beneath the root; a directory serves its index.html.  Returns
 * an fd with *st filled, or -errno. */
static int open_file(const char *path, struct stat *st, char *resolved, size_t rcap)
{
    int fd = open_beneath(path);
    if (fd < 0)
        return -errno;
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    snprintf(resolved, rcap, "%s", path);
    if (S_ISDIR(st->st_mode)) {
        close(fd);
        snprintf(resolved, rcap, "%s%sindex.html", path, path[0] && path[strlen(path) - 1] != '/' ? "/" : "");
        fd = open_beneath(resolved);
        if (fd < 0)
            return -errno;
        if (fstat(fd, st) != 0) {
            int e = errno;
            close(fd);
            return -e;
        }
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return -ENOENT;
    }
    return fd;
}

/* Drops a cache entry: closed now if no answer uses it, else marked stale
 * (never found again) and closed by the last release_file. */
static void cache_drop(fentry *f)
{
    if (f->refs > 0) {
        f->stale = true;
        return;
    }
    rg_mapfile_close(f->m);
    rg_free(f->path);
    memset(f, 0, sizeof *f);
}

/* Finds (or maps) the file for path; NULL + errno. */
static fentry *cache_get(worker *w, const char *path)
{
    uint64_t h = hash_str(path);
    fentry *victim = NULL;
    for (unsigned i = 0; i < 8; i++) {
        fentry *f = &w->cache[(h + i) & (CACHE_SLOTS - 1)];
        if (f->path && !f->stale && strcmp(f->path, path) == 0) {
            if (w->now_ns - f->checked_ns < 1000000000u)
                return f;
            struct stat st;
            if (fstatat(cfg.rootfd, f->path, &st, 0) == 0 && st.st_ino == f->st.st_ino &&
                st.st_size == f->st.st_size && st.st_mtim.tv_sec == f->st.st_mtim.tv_sec &&
                st.st_mtim.tv_nsec == f->st.st_mtim.tv_nsec) {
                f->checked_ns = w->now_ns;
                return f;
            }
            cache_drop(f); /* changed on disk: map it again (elsewhere while busy) */
            if (f->path == NULL) {
                victim = f;
                break;
            }
            continue;
        }
        if (victim == NULL && (f->path == NULL || (!f->stale && f->refs == 0)))
            victim = f;
    }
    if (victim == NULL) {
        errno = EBUSY;
        return NULL;
    }
    struct stat st;
    char resolved[4200];
    int fd = open_file(path, &st, resolved, sizeof resolved);
    if (fd < 0) {
        errno = -fd;
        return NULL;
    }
    close(fd); /* rg_mapfile opens by path, beneath the root checked just now */
    char full[4600];
    snprintf(full, sizeof full, "%s/%s", cfg.root, resolved);
    rg_mapfile *m = rg_mapfile_open(full, 0);
    if (m == NULL)
        return NULL;
    if (victim->path)
        cache_drop(victim); /* unreferenced: cleared at once */
    size_t pl = strlen(path);
    victim->path = rg_malloc(pl + 1);
    if (victim->path == NULL) {
        rg_mapfile_close(m);
        errno = ENOMEM;
        return NULL;
    }
    memcpy(victim->path, path, pl + 1);
    victim->m = m;
    victim->st = st;
    victim->checked_ns = w->now_ns;
    victim->refs = 0;
    victim->stale = false;
    return victim;
}

static void release_file(conn *c)
{
    if (c->file) {
        fentry *f = c->file;
        c->file = NULL;
        if (--f->refs == 0 && f->stale) {
            rg_mapfile_close(f->m);
            rg_free(f->path);
            memset(f, 0, sizeof *f);
        }
    }
}

/* ---------------------------------------------------------------------------
 * Allocation: regio pools, or malloc for --alloc=malloc
 * ------------------------------------------------------------------------- */
static void *obj_get(rg_objpool *p, size_t n)
{
    return cfg.use_malloc ? malloc(n) : rg_objpool_get(p);
}
static void obj_put(rg_objpool *p, void *o)
{
    if (cfg.use_malloc)
        free(o);
    else if (o)
        rg_objpool_put(p, o);
}

/* ---------------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------------- */
static struct io_uring_sqe *sqe_get(worker *w)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    if (sqe == NULL) {
        io_uring_submit(&w->ring);
        sqe = io_uring_get_sqe(&w->ring);
    }
    return sqe;
}

static void *tag(void *p, enum op o)
{
    return (void *)((uintptr_t)p | (uintptr_t)o);
}

static void arm_accept(worker *w)
{
    struct io_uring_sqe *sqe = sqe_get(w);
    io_uring_prep_multishot_accept(sqe, w->lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data(sqe, tag(w, OP_ACCEPT));
}

static void arm_recv(conn *c)
{
    worker *w = c->w;
    struct io_uring_sqe *sqe = sqe_get(w);
    if (c->in == NULL) { /* waiting for a request: the kernel picks the buffer when bytes arrive */
        io_uring_prep_recv(sqe, c->fd, NULL, IN_CAP, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = rg_uring_bufring_bgid(w->br);
    } else { /* the rest of a request: into the buffer it already holds */
        io_uring_prep_recv(sqe, c->fd, c->in + c->inlen, IN_CAP - c->inlen, 0);
    }
    io_uring_sqe_set_data(sqe, tag(c, OP_RECV));
    c->inflight++;
}

/* Waits for a receive buffer: FIFO, resumed by in_release. */
static void park(conn *c)
{
    worker *w = c->w;
    c->parked = true;
    c->pnext = NULL;
    c->deadline = 0; /* waiting for the server, not for the client */
    if (w->parked_tail)
        w->parked_tail->pnext = c;
    else
        w->parked = c;
    w->parked_tail = c;
}

static void unpark_one(worker *w)
{
    conn *c = w->parked;
    if (c == NULL)
        return;
    w->parked = c->pnext;
    if (w->parked == NULL)
        w->parked_tail = NULL;
    c->parked = false;
    c->deadline = w->now_ns + cfg.header_ns;
    arm_recv(c);
}

static void unlink_parked(conn *c)
{
    worker *w = c->w;
    conn **pp = &w->parked, *prev = NULL;
    while (*pp && *pp != c) {
        prev = *pp;
        pp = &(*pp)->pnext;
    }
    if (*pp == c) {
        *pp = c->pnext;
        if (w->parked_tail == c)
            w->parked_tail = prev;
    }
    c->parked = false;
}

/* Gives the input buffer back: re-armed in the ring (then a parked
 * connection may receive again) or returned to the pool. */
static void in_release(conn *c)
{
    if (c->in == NULL || cfg.use_malloc)
        return;
    void *b = c->in;
    c->in = NULL;
    c->inlen = c->consumed = 0;
    if (rg_uring_bufring_put(c->w->br, b) == 1)
        unpark_one(c->w);
}

static void arm_send(conn *c)
{
    struct io_uring_sqe *sqe = sqe_get(c->w);
    size_t hrem = c->outlen - c->outoff, brem = c->bodylen - c->bodyoff;
    if (brem == 0) {
        io_uring_prep_send(sqe, c->fd, c->out + c->outoff, hrem, MSG_NOSIGNAL);
        io_uring_sqe_set_data(sqe, tag(c, OP_SEND));
        c->inflight++;
        return;
    }
    /* header (what is left of it) and body in one message */
    bool zc = !c->mbody && c->bodylen >= cfg.zc_min && !c->zc_copied;
    size_t cap = zc ? ZC_CHUNK : SEND_CHUNK, n = brem < cap ? brem : cap;
    int k = 0;
    if (hrem)
        c->iov[k++] = (struct iovec){c->out + c->outoff, hrem};
    c->iov[k++] = (struct iovec){(void *)(c->body + c->bodyoff), n};
    memset(&c->msg, 0, sizeof c->msg);
    c->msg.msg_iov = c->iov;
    c->msg.msg_iovlen = (size_t)k;
    if (zc) {
        io_uring_prep_sendmsg_zc(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
        sqe->ioprio |= ZC_REPORT_USAGE; /* the notification says whether the kernel copied */
        io_uring_sqe_set_data(sqe, tag(c, OP_ZC));
    } else {
        /* MSG_WAITALL: io_uring retries a short send itself, one CQE per answer */
        io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL | MSG_WAITALL);
        io_uring_sqe_set_data(sqe, tag(c, OP_SEND));
    }
    c->inflight++;
}

static void conn_free(conn *c)
{
    worker *w = c->w;
    if (c->parked)
        unlink_parked(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->fd >= 0)
        close(c->fd);
    release_file(c);
    free(c->mbody);
    if (cfg.use_malloc)
        free(c->in);
    else
        in_release(c);
    obj_put(w->outbufs, c->out);
    if (c->r)
        rg_region_free(c->r);
    obj_put(w->conns, c);
}

static void conn_close(conn *c)
{
    c->closing = true;
    if (c->inflight == 0 && c->notifs == 0) {
        conn_free(c);
        return;
    }
    shutdown(c->fd, SHUT_RDWR); /* makes the pending recv and send complete */
    c->deadline = c->w->now_ns + cfg.idle_ns; /* then conn_abort, see sweep */
}

/* A closing connection still waiting (its peer does not read, so queued
 * zero-copy data is never freed and its notifications never come): reset
 * it.  SO_LINGER 0 makes close() drop the queued data, which releases the
 * buffers and posts the notifications; operations in flight hold their own
 * reference to the socket and still complete. */
static void conn_abort(conn *c)
{
    if (c->fd < 0)
        return;
    struct linger l = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(c->fd);
    c->fd = -1;
    c->deadline = 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

static const char *mime(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot == NULL)
        return "application/octet-stream";
    static const char *const t[][2] = {{".html", "text/html"}, {".htm", "text/html"}, {".txt", "text/plain"},
                                       {".css", "text/css"}, {".js", "text/javascript"}, {".json", "application/json"},
                                       {".png", "image/png"}, {".jpg", "image/jpeg"}, {".svg", "image/svg+xml"}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcasecmp(dot, t[i][0]) == 0)
            return t[i][1];
    return "application/octet-stream";
}

static void update_date(worker *w)
{
    time_t s = time(NULL);
    if (s != w->date_sec) {
        struct tm tm;
        gmtime_r(&s, &tm);
        strftime(w->date, sizeof w->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        w->date_sec = s;
    }
}

static void answer_error(conn *c, int status, uint64_t size)
{
    char body[96];
    int bl = snprintf(body, sizeof body, "%d %s\n", status, reason(status));
    if (status >= 400 && status != 404 && status != 416)
        c->keepalive = c->keepalive && status != 400 && status != 431;
    char extra[96] = "";
    if (status == 405)
        snprintf(extra, sizeof extra, "Allow: GET, HEAD\r\n");
    else if (status == 416)
        snprintf(extra, sizeof extra, "Content-Range: bytes */%llu\r\n", (unsigned long long)size);
    c->outlen = (size_t)snprintf(c->out, OUT_CAP,
                                 "HTTP/1.1 %d %s\r\nServer: regio-httpd\r\nDate: %s\r\nContent-Type: text/plain\r\n"
                                 "Content-Length: %d\r\n%s%s\r\n%s",
                                 status, reason(status), c->w->date, bl, extra,
                                 c->keepalive ? "" : "Connection: close\r\n", body);
    c->outoff = 0;
    c->body = NULL;
    c->bodylen = c->bodyoff = 0;
}

/* Builds the answer for the request in c->in[0, hdr_end). */
static void answer(conn *c, size_t hdr_end)
{
    worker *w = c->w;
    req q;
    rg_region *r = cfg.use_malloc ? NULL : c->r;
    update_date(w);
    if (req_parse(c->in, hdr_end, r, &q) != 0) {
        c->keepalive = false;
        answer_error(c, 500, 0);
        return;
    }
    c->keepalive = q.keepalive;
    if (q.status) {
        answer_error(c, q.status, 0);
        req_free(&q, r);
        return;
    }
    struct stat st;
    uint64_t size;
    const char *data = NULL;
    int mfd = -1;
    char resolved[4200];
    if (cfg.use_malloc) {
        mfd = open_file(q.path, &st, resolved, sizeof resolved);
        if (mfd < 0) {
            answer_error(c, mfd == -ENOENT || mfd == -ENOTDIR || mfd == -EXDEV || mfd == -ELOOP ? 404 : 500, 0);
            req_free(&q, r);
            return;
        }
        size = (uint64_t)st.st_size;
    } else {
        fentry *f = cache_get(w, q.path);
        if (f == NULL) {
            int e = errno;
            answer_error(c, e == ENOENT || e == ENOTDIR || e == EXDEV || e == ELOOP || e == EISDIR ? 404 : 500, 0);
            req_free(&q, r);
            return;
        }
        c->file = f;
        f->refs++;
        size = rg_mapfile_len(f->m);
        data = rg_mapfile_data(f->m);
        snprintf(resolved, sizeof resolved, "%s", f->path);
    }
    uint64_t from = 0, to = size ? size - 1 : 0;
    int rs = req_range(q.range, size, &from, &to);
    if (rs == 416) {
        if (mfd >= 0)
            close(mfd);
        release_file(c);
        answer_error(c, 416, size);
        req_free(&q, r);
        return;
    }
    uint64_t len = size == 0 ? 0 : to - from + 1;
    char crange[96] = "";
    if (rs == 206)
        snprintf(crange, sizeof crange, "Content-Range: bytes %llu-%llu/%llu\r\n", (unsigned long long)from,
                 (unsigned long long)to, (unsigned long long)size);
    int hl = snprintf(c->out, OUT_CAP,
                      "HTTP/1.1 %d %s\r\nServer: regio-httpd\r\nDate: %s\r\nContent-Type: %s\r\n"
                      "Content-Length: %llu\r\nAccept-Ranges: bytes\r\n%s%s\r\n",
                      rs == 206 ? 206 : 200, rs == 206 ? "Partial Content" : "OK", w->date, mime(resolved),
                      (unsigned long long)len, crange, c->keepalive ? "" : "Connection: close\r\n");
    c->outlen = (size_t)hl;
    c->outoff = 0;
    c->body = NULL;
    c->bodylen = c->bodyoff = 0;
    req_free(&q, r);
    if (q.head || len == 0) {
        if (mfd >= 0)
            close(mfd);
        release_file(c);
        return;
    }
    if (cfg.use_malloc) { /* the comparison point: read() the range into a fresh buffer */
        if (len <= OUT_CAP - (size_t)hl) {
            ssize_t k = pread(mfd, c->out + hl, len, (off_t)from);
            close(mfd);
            if (k != (ssize_t)len) {
                c->keepalive = false;
                answer_error(c, 500, 0);
                return;
            }
            c->outlen += len;
            return;
        }
        c->mbody = malloc(len);
        size_t got = 0;
        while (c->mbody && got < len) {
            ssize_t k = pread(mfd, c->mbody + got, len - got, (off_t)(from + got));
            if (k <= 0)
                break;
            got += (size_t)k;
        }
        close(mfd);
        if (c->mbody == NULL || got != len) {
            free(c->mbody);
            c->mbody = NULL;
            c->keepalive = false;
            answer_error(c, 500, 0);
            return;
        }
        c->body = c->mbody;
        c->bodylen = len;
        return;
    }
    if (len <= SMALL_BODY) { /* one send: header and body together */
        ssize_t k = rg_mapfile_read_at(c->file->m, c->out + hl, len, (off_t)from);
        fentry *f = c->file;
        release_file(c);
        if (k != (ssize_t)len) { /* truncated under us: nothing was sent yet */
            if (f->path && !f->stale)
                cache_drop(f);
            c->keepalive = false;
            answer_error(c, 500, 0);
            return;
        }
        c->outlen += len;
        return;
    }
    c->body = data + from;
    c->bodylen = len;
}

/* Answers every complete request in the input, one at a time. */
static void process(conn *c)
{
    if (c->closing)
        return;
    size_t end = c->in ? req_header_end(c->in, c->inlen) : 0;
    if (end == 0) {
        if (c->inlen >= IN_CAP) { /* header block too large */
            c->keepalive = false;
            update_date(c->w);
            answer_error(c, 431, 0);
            c->consumed = c->inlen;
            c->deadline = c->w->now_ns + cfg.idle_ns;
            arm_send(c);
            return;
        }
        arm_recv(c);
        return;
    }
    c->consumed = end;
    answer(c, end);
    if (c->consumed == c->inlen) /* parsed, nothing pipelined behind: the input buffer goes back now */
        in_release(c);
    c->deadline = c->w->now_ns + cfg.idle_ns; /* the client must read the answer */
    arm_send(c);
}

/* The answer is out: reset the request scope, go on with the next one. */
static void answer_done(conn *c)
{
    release_file(c);
    free(c->mbody);
    c->mbody = NULL;
    if (c->r)
        rg_region_reset(c->r);
    if (!c->keepalive) {
        conn_close(c);
        return;
    }
    if (c->in && c->inlen > c->consumed) { /* pipelined: the next request is here already */
        memmove(c->in, c->in + c->consumed, c->inlen - c->consumed);
        c->inlen -= c->consumed;
        c->consumed = 0;
        c->deadline = c->w->now_ns + cfg.header_ns;
    } else {
        in_release(c); /* idle: hold no buffer */
        c->inlen = c->consumed = 0;
        c->deadline = c->w->now_ns + cfg.idle_ns;
    }
    process(c);
}

static void on_accept(worker *w, struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        arm_accept(w);
    if (cqe->res < 0)
        return;
    int fd = cqe->res;
    conn *c = obj_get(w->conns, sizeof(conn));
    char *out = c ? obj_get(w->outbufs, OUT_CAP) : NULL;
    char *in = out && cfg.use_malloc ? malloc(IN_CAP) : NULL;
    if (out == NULL || (cfg.use_malloc && in == NULL)) { /* at capacity: refuse this one, keep serving the others */
        obj_put(w->outbufs, out);
        obj_put(w->conns, c);
        close(fd);
        return;
    }
    memset(c, 0, sizeof *c);
    c->w = w;
    c->fd = fd;
    c->in = in;
    c->out = out;
    c->next = w->all;
    if (w->all)
        w->all->prev = c;
    w->all = c;
    if (!cfg.use_malloc) {
        c->r = rg_region_new();
        if (c->r == NULL) {
            conn_free(c);
            return;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (cfg.sndbuf > 0) /* room for a whole answer: one send, no wait for the window to open */
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cfg.sndbuf, sizeof cfg.sndbuf);
    c->deadline = w->now_ns + cfg.header_ns;
    arm_recv(c);
}

static void arm_timer(worker *w)
{
    struct io_uring_sqe *sqe = sqe_get(w);
    io_uring_prep_timeout(sqe, &w->tick, 0, 0);
    io_uring_sqe_set_data(sqe, tag(w, OP_TIMER));
}

/* Closes every connection past its deadline. */
static void sweep(worker *w)
{
    for (conn *c = w->all, *next; c; c = next) {
        next = c->next; /* conn_close may free c */
        if (!c->deadline || w->now_ns <= c->deadline)
            continue;
        if (c->closing) {
            conn_abort(c);
        } else {
            c->keepalive = false;
            conn_close(c);
        }
    }
}

static void on_recv(conn *c, struct io_uring_cqe *cqe)
{
    worker *w = c->w;
    int res = cqe->res;
    if (cqe->flags & IORING_CQE_F_BUFFER) { /* a ring buffer: ours now, whatever happens next */
        size_t len;
        char *b = rg_uring_bufring_take(w->br, cqe, &len);
        if (b && (c->closing || c->in != NULL || res <= 0)) {
            if (rg_uring_bufring_put(w->br, b) == 1)
                unpark_one(w);
            b = NULL;
        }
        if (b) {
            c->in = b;
            c->inlen = 0;
        }
    }
    if (c->closing) {
        if (c->inflight == 0 && c->notifs == 0)
            conn_free(c);
        return;
    }
    if (res == -ENOBUFS) { /* the ring ran dry: re-arm from the pool, or wait for a buffer */
        if (rg_uring_bufring_enobufs(w->br) > 0)
            arm_recv(c);
        else
            park(c);
        return;
    }
    if (res <= 0 || c->in == NULL) {
        conn_close(c);
        return;
    }
    if (c->inlen == 0)
        c->deadline = w->now_ns + cfg.header_ns; /* a request starts: its header has this long */
    c->inlen += (size_t)res;
    process(c);
}

static void on_cqe(worker *w, struct io_uring_cqe *cqe)
{
    uintptr_t ud = (uintptr_t)io_uring_cqe_get_data(cqe);
    enum op o = (enum op)(ud & 7);
    if (o == OP_ACCEPT) {
        on_accept(w, cqe);
        return;
    }
    if (o == OP_TIMER) {
        sweep(w);
        arm_timer(w);
        return;
    }
    conn *c = (conn *)(ud & ~(uintptr_t)7);
    if (o == OP_ZC && (cqe->flags & IORING_CQE_F_NOTIF)) { /* the kernel let go of a chunk */
        c->notifs--;
        if ((uint32_t)cqe->res & ZC_NOTIF_COPIED)
            c->zc_copied = true;
        if (c->closing) {
            if (c->inflight == 0 && c->notifs == 0)
                conn_free(c);
        } else if (c->sent && c->notifs == 0) {
            c->sent = false;
            answer_done(c);
        }
        return;
    }
    c->inflight--;
    if (o == OP_ZC && (cqe->flags & IORING_CQE_F_MORE))
        c->notifs++;
    if (o == OP_RECV) {
        on_recv(c, cqe);
        return;
    }
    if (c->closing) {
        if (c->inflight == 0 && c->notifs == 0)
            conn_free(c);
        return;
    }
    int res = cqe->res;
    if (res < 0) { /* the peer left, or the mapped file vanished (-EFAULT) */
        if (res == -EFAULT && c->file)
            c->file->stale = true; /* closed once the last answer lets go of it */
        c->keepalive = false;
        conn_close(c);
        return;
    }
    size_t k = (size_t)res, h = c->outlen - c->outoff;
    if (h) {
        size_t t = k < h ? k : h;
        c->outoff += t;
        k -= t;
    }
    c->bodyoff += k;
    if (res > 0)
        c->deadline = w->now_ns + cfg.idle_ns; /* progress: the client reads */
    if (c->outoff < c->outlen || c->bodyoff < c->bodylen) {
        arm_send(c);
    } else if (c->notifs > 0) {
        c->sent = true; /* the header buffer and the map are the kernel's until the notifications */
    } else {
        answer_done(c);
    }
}

static int listen_on(struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)a, sizeof *a) != 0 || listen(fd, 1024) != 0) {
        perror("httpd: bind/listen");
        exit(1);
    }
    socklen_t l = sizeof *a;
    getsockname(fd, (struct sockaddr *)a, &l);
    return fd;
}

static rg_objpool *pool(size_t size, const char *name, size_t capacity)
{
    if (cfg.use_malloc)
        return NULL;
    rg_objpool_opts o = {.obj_size = size, .capacity = capacity, .cache_size = 0, .name = name};
    rg_objpool *p = rg_objpool_new(&o);
    if (p == NULL) {
        fprintf(stderr, "httpd: pool %s: %s\n", name, strerror(errno));
        exit(1);
    }
    return p;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
    int rc = io_uring_queue_init_params(1024, &w->ring, &params);
    if (rc < 0) {
        memset(&params, 0, sizeof params);
        rc = io_uring_queue_init_params(1024, &w->ring, &params);
    }
    if (rc < 0) {
        fprintf(stderr, "httpd: io_uring: %s\n", strerror(-rc));
        exit(1);
    }
    w->conns = pool(sizeof(conn), "conns", MAX_CONNS);
    w->outbufs = pool(OUT_CAP, "outbufs", MAX_CONNS);
    if (!cfg.use_malloc) {
        w->inbufs = pool(IN_CAP, "inbufs", cfg.in_bufs);
        unsigned entries = 1;
        while (entries * 2 <= cfg.in_bufs && entries < 64) /* armed at once; more come from the pool on -ENOBUFS */
            entries *= 2;
        rg_uring_bufring_opts bo = {.entries = entries, .bgid = RECV_BGID, .pool = w->inbufs, .buf_size = IN_CAP};
        w->br = rg_uring_bufring_new(&w->ring, &bo);
        if (w->br == NULL) {
            fprintf(stderr, "httpd: provided buffer ring: %s\n", strerror(errno));
            exit(1);
        }
    }
    w->cache = calloc(CACHE_SLOTS, sizeof *w->cache);
    uint64_t t = (cfg.header_ns < cfg.idle_ns ? cfg.header_ns : cfg.idle_ns) / 4;
    t = t < 5000000u ? 5000000u : t > 1000000000u ? 1000000000u : t;
    w->tick.tv_sec = (long long)(t / 1000000000u);
    w->tick.tv_nsec = (long long)(t % 1000000000u);
    w->now_ns = now_ns();
    arm_accept(w);
    arm_timer(w);
    for (;;) {
        io_uring_submit_and_wait(&w->ring, 1);
        w->now_ns = now_ns();
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&w->ring, head, cqe)
        {
            on_cqe(w, cqe);
            n++;
        }
        io_uring_cq_advance(&w->ring, n);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    cfg.root = ".";
    cfg.workers = 1;
    cfg.addr.sin_family = AF_INET;
    cfg.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const char *port_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--root=", 7) == 0)
            cfg.root = a + 7;
        else if (strncmp(a, "--port=", 7) == 0)
            cfg.addr.sin_port = htons((uint16_t)atoi(a + 7));
        else if (strncmp(a, "--addr=", 7) == 0)
            inet_pton(AF_INET, a + 7, &cfg.addr.sin_addr);
        else if (strncmp(a, "--port-file=", 12) == 0)
            port_file = a + 12;
        else if (strncmp(a, "--workers=", 10) == 0)
            cfg.workers = atoi(a + 10);
        else if (strcmp(a, "--alloc=malloc") == 0)
            cfg.use_malloc = true;
        else if (strcmp(a, "--alloc=regio") == 0)
            cfg.use_malloc = false;
        else if (strcmp(a, "--quiet") == 0)
            cfg.quiet = true;
        else if (strncmp(a, "--header-timeout=", 17) == 0)
            cfg.header_ns = strtoull(a + 17, NULL, 10) * 1000000u;
        else if (strncmp(a, "--idle-timeout=", 15) == 0)
            cfg.idle_ns = strtoull(a + 15, NULL, 10) * 1000000u;
        else if (strncmp(a, "--in-bufs=", 10) == 0)
            cfg.in_bufs = (unsigned)strtoul(a + 10, NULL, 10);
        else if (strncmp(a, "--zc-min=", 9) == 0)
            cfg.zc_min = strtoull(a + 9, NULL, 10);
        else if (strncmp(a, "--sndbuf=", 9) == 0)
            cfg.sndbuf = atoi(a + 9);
        else {
            fprintf(stderr, "usage: httpd [--root=DIR] [--addr=IP] [--port=N] [--port-file=PATH] [--workers=N] "
                            "[--alloc=regio|malloc] [--quiet] [--header-timeout=MS] [--idle-timeout=MS] "
                            "[--in-bufs=N] [--zc-min=BYTES] [--sndbuf=BYTES]\n");
            return 2;
        }
    }
    if (cfg.header_ns == 0)
        cfg.header_ns = 10000000000u;
    if (cfg.idle_ns == 0)
        cfg.idle_ns = 60000000000u;
    if (cfg.in_bufs == 0 || cfg.in_bufs > MAX_CONNS)
        cfg.in_bufs = MAX_CONNS;
    if (cfg.zc_min == 0)
        cfg.zc_min = (uint64_t)1 << 20;
    if (cfg.workers < 1 || cfg.workers > 64)
        cfg.workers = 1;
    signal(SIGPIPE, SIG_IGN);
    cfg.rootfd = open(cfg.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cfg.rootfd < 0) {
        perror("httpd: root");
        return 1;
    }
    worker *ws = calloc((size_t)cfg.workers, sizeof *ws);
    for (int i = 0; i < cfg.workers; i++)
        ws[i].lfd = listen_on(&cfg.addr); /* the first bind fixes an ephemeral port for the rest */
    if (port_file) {
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "%d\n", ntohs(cfg.addr.sin_port));
            fclose(f);
            rename(tmp, port_file);
        }
    }
    if (!cfg.quiet)
        fprintf(stderr, "httpd: serving %s on %s:%d, %d worker(s), alloc=%s\n", cfg.root, inet_ntoa(cfg.addr.sin_addr),
                ntohs(cfg.addr.sin_port), cfg.workers, cfg.use_malloc ? "malloc" : "regio");
    pthread_t t;
    for (int i = 1; i < cfg.workers; i++)
        pthread_create(&t, NULL, worker_main, &ws[i]);
    worker_main(&ws[0]);
    return 0;
}
