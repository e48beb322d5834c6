/* tests/uring.c — io_uring glue: fixed buffers on region and pool memory
 * (READ_FIXED/WRITE_FIXED), a provided buffer ring fed by an rg_objpool that
 * re-arms on put and survives running dry (-ENOBUFS) without losing data,
 * and SEND_ZC of mapped file ranges (buffer reuse only after the
 * notification; a truncated file fails the send, not the process).
 * Exits 77 when the kernel refuses io_uring, or under Valgrind memcheck
 * (it cannot see the kernel's writes through io_uring). */
#define _GNU_SOURCE
#include "cu.h"
#include "internal.h"
#include "regio/uring.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

static char tmpdir[256];
static struct io_uring ring;

static const char *tpath(const char *name)
{
    static char b[4][320];
    static int i;
    char *p = b[i++ & 3];
    snprintf(p, sizeof b[0], "%s/%s", tmpdir, name);
    return p;
}

/* Submits what is queued and waits for one CQE; copies it out. */
static int wait_one(struct io_uring_cqe *out)
{
    io_uring_submit(&ring);
    struct io_uring_cqe *cqe;
    int rc = io_uring_wait_cqe(&ring, &cqe);
    if (rc < 0)
        return rc;
    *out = *cqe;
    io_uring_cqe_seen(&ring, cqe);
    return 0;
}

static void test_fixed_buffers(void)
{
    rg_uring_bufs *t = rg_uring_bufs_new(64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_PTR_NULL(rg_uring_bufs_new(0));
    CU_ASSERT_PTR_NULL(rg_uring_bufs_new(RG_URING_MAX_FIXED + 1));
    rg_region *r = rg_region_new();
    void *rb = NULL;
    int ri = rg_uring_bufs_add_region(t, r, 16384, &rb);
    CU_ASSERT_EQUAL(ri, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rb);
    CU_ASSERT_EQUAL((uintptr_t)rb % 4096, 0);
    CU_ASSERT_EQUAL(rg_uring_bufs_add(t, (char *)rb + 100, 10), -EINVAL); /* overlap */
    CU_ASSERT_EQUAL(rg_uring_bufs_add(t, NULL, 10), -EINVAL);
    rg_objpool_opts po = {.obj_size = 4096, .capacity = 8};
    rg_objpool *pool = rg_objpool_new(&po);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    CU_ASSERT_EQUAL(rg_uring_bufs_add_objpool(t, pool, 4096, 8), 8);
    /* an index lookup before registration finds nothing */
    CU_ASSERT_EQUAL(rg_uring_bufs_index(t, rb, 1), -ENOENT);
    int rc = rg_uring_bufs_register(t, &ring);
    if (rc == -ENOMEM || rc == -EPERM || rc == -EOPNOTSUPP) {
        printf("(fixed buffers refused by the kernel: %d; skipped)\n", rc);
        goto out;
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(rg_uring_bufs_register(t, &ring), -EBUSY);
    CU_ASSERT_EQUAL(rg_uring_bufs_add(t, tmpdir, 1), -EBUSY);
    CU_ASSERT_EQUAL(rg_uring_bufs_index(t, rb, 16384), 0);
    CU_ASSERT_EQUAL(rg_uring_bufs_index(t, (char *)rb + 16383, 1), 0);
    CU_ASSERT_EQUAL(rg_uring_bufs_index(t, (char *)rb + 16383, 2), -ENOENT);
    CU_ASSERT_EQUAL(rg_uring_bufs_index(t, tmpdir, 1), -ENOENT);

    /* WRITE_FIXED from the region block, READ_FIXED into a pool object */
    memset(rb, 'r', 16384);
    memcpy(rb, "fixed!", 6);
    int fd = open(tpath("fixed"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    struct io_uring_cqe cqe;
    CU_ASSERT_EQUAL(rg_uring_prep_write_fixed(t, io_uring_get_sqe(&ring), fd, rb, 8192, 0), 0);
    CU_ASSERT_EQUAL(wait_one(&cqe), 0);
    CU_ASSERT_EQUAL(cqe.res, 8192);
    void *obj = rg_objpool_get(pool);
    CU_ASSERT_PTR_NOT_NULL_FATAL(obj);
    CU_ASSERT(rg_uring_bufs_index(t, obj, 4096) >= 1);
    CU_ASSERT_EQUAL(rg_uring_prep_read_fixed(t, io_uring_get_sqe(&ring), fd, obj, 4096, 0), 0);
    CU_ASSERT_EQUAL(wait_one(&cqe), 0);
    CU_ASSERT_EQUAL(cqe.res, 4096);
    CU_ASSERT(memcmp(obj, "fixed!rr", 8) == 0);
    char local[16];
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    CU_ASSERT_EQUAL(rg_uring_prep_read_fixed(t, sqe, fd, local, 16, 0), -ENOENT);
    io_uring_prep_nop(sqe); /* a refused prep leaves the SQE to the caller */
    CU_ASSERT_EQUAL(wait_one(&cqe), 0);
    rg_objpool_put(pool, obj);
    close(fd);
    io_uring_unregister_buffers(&ring);
out:
    rg_uring_bufs_free(t);
    rg_objpool_free(pool);
    rg_region_free(r);
}

/* The guarantee: a reader whose buffer ring runs dry slows down; it gets
 * every byte, in order, on the same connection. */
static void test_bufring_enobufs(void)
{
    enum { BUF = 64, NBUF = 2, MSGS = 16 };
    rg_objpool_opts po = {.obj_size = BUF, .capacity = NBUF};
    rg_objpool *pool = rg_objpool_new(&po);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    rg_uring_bufring_opts bo = {.entries = 4, .bgid = 7, .pool = pool, .buf_size = BUF};
    rg_uring_bufring *br = rg_uring_bufring_new(&ring, &bo);
    if (br == NULL && (errno == EINVAL || errno == EOPNOTSUPP)) {
        printf("(provided buffer rings refused: %s; skipped)\n", strerror(errno));
        rg_objpool_free(pool);
        return;
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(br);
    rg_uring_bufring_opts bad = bo;
    bad.entries = 3;
    CU_ASSERT_PTR_NULL(rg_uring_bufring_new(&ring, &bad));
    CU_ASSERT_EQUAL(errno, EINVAL);
    rg_uring_bufring_stats st;
    rg_uring_bufring_read_stats(br, &st);
    CU_ASSERT_EQUAL(st.armed, NBUF); /* the pool holds only NBUF */

    int sv[2];
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    char want[MSGS * BUF];
    for (size_t i = 0; i < sizeof want; i++)
        want[i] = (char)('A' + (i * 7 + i / 64) % 26);
    CU_ASSERT_EQUAL(write(sv[1], want, sizeof want), (ssize_t)sizeof want);
    shutdown(sv[1], SHUT_WR);

    char got[MSGS * BUF + 1];
    size_t ngot = 0;
    void *held[NBUF];
    int nheld = 0, parked = 0, enobufs = 0, rounds = 0;
    bool eof = false;
    while (!eof && rounds++ < 1000) {
        if (!parked) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            io_uring_prep_recv(sqe, sv[0], NULL, BUF, 0);
            sqe->flags |= IOSQE_BUFFER_SELECT;
            sqe->buf_group = rg_uring_bufring_bgid(br);
            struct io_uring_cqe cqe;
            CU_ASSERT_EQUAL_FATAL(wait_one(&cqe), 0);
            if (cqe.res == -ENOBUFS) {
                enobufs++;
                if (rg_uring_bufring_enobufs(br) == 0)
                    parked = 1; /* wait for a put; the data waits in the socket */
                continue;
            }
            CU_ASSERT_FATAL(cqe.res >= 0);
            size_t len;
            void *b = rg_uring_bufring_take(br, &cqe, &len);
            if (cqe.res == 0) {
                eof = true;
                if (b)
                    rg_uring_bufring_put(br, b);
                break;
            }
            CU_ASSERT_PTR_NOT_NULL_FATAL(b);
            memcpy(got + ngot, b, len);
            ngot += len;
            held[nheld++] = b; /* a slow consumer: keeps its buffers */
        }
        if (parked) {
            /* the consumer catches up only after the ring ran dry: every put
             * re-arms at once and the parked recv goes again */
            while (nheld > 0) {
                int rc = rg_uring_bufring_put(br, held[--nheld]);
                CU_ASSERT_EQUAL(rc, 1);
                if (rc == 1)
                    parked = 0;
            }
        }
    }
    CU_ASSERT_TRUE(eof);
    CU_ASSERT_EQUAL(ngot, sizeof want);
    CU_ASSERT(memcmp(got, want, sizeof want) == 0);
    CU_ASSERT(enobufs >= 1);
    rg_uring_bufring_read_stats(br, &st);
    CU_ASSERT_EQUAL(st.enobufs, (uint64_t)enobufs);
    CU_ASSERT(st.rearmed >= MSGS - NBUF);
    CU_ASSERT_PTR_NULL(rg_uring_bufring_take(br, &(struct io_uring_cqe){0}, NULL));
    while (nheld > 0)
        rg_uring_bufring_put(br, held[--nheld]);
    rg_uring_bufring_free(br);
    rg_objpool_stats ps;
    rg_objpool_read_stats(pool, &ps);
    CU_ASSERT_EQUAL(ps.in_ring + ps.in_caches, ps.live); /* every buffer came home */
    rg_objpool_free(pool);
    close(sv[0]);
    close(sv[1]);
}

static int tcp_pair(int fds[2])
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &al))
        return -1;
    fds[1] = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fds[1], (struct sockaddr *)&a, sizeof a))
        return -1;
    fds[0] = accept(l, NULL, NULL);
    close(l);
    return fds[0] >= 0 ? 0 : -1;
}

/* Runs one SEND_ZC to completion; returns z.res, or 1000 if it hung. */
static int zc_run(rg_uring_zc *z, int *ncqe)
{
    *ncqe = 0;
    for (int i = 0; i < 4; i++) {
        struct io_uring_cqe cqe;
        if (wait_one(&cqe) != 0)
            return 1000;
        (*ncqe)++;
        if (rg_uring_zc_cqe(z, &cqe))
            return z->res;
    }
    return 1000;
}

static void test_send_zc_map(void)
{
    if (!rg_uring_op_supported(&ring, IORING_OP_SEND_ZC)) {
        printf("(SEND_ZC not supported; skipped)\n");
        return;
    }
    const size_t n = 256 << 10;
    int fd = open(tpath("zc"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    char *want = malloc(n);
    for (size_t i = 0; i < n; i++)
        want[i] = (char)(i * 13 + 5);
    CU_ASSERT_EQUAL(write(fd, want, n), (ssize_t)n);
    rg_mapfile *m = rg_mapfile_open(tpath("zc"), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    int s[2] = {-1, -1};
    CU_ASSERT_FATAL(tcp_pair(s) == 0);
    rg_uring_zc z = {0};
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    CU_ASSERT_EQUAL(rg_uring_prep_send_zc_map(sqe, s[0], m, n - 10, 11, 0, &z), -EINVAL);
    CU_ASSERT_EQUAL(rg_uring_prep_send_zc_map(sqe, s[0], m, 1000, 40000, 0, &z), 0);
    CU_ASSERT_EQUAL(rg_uring_prep_send_zc(sqe, s[0], rg_view_make(want, 1), 0, &z), -EBUSY); /* in flight */
    int ncqe;
    CU_ASSERT_EQUAL(zc_run(&z, &ncqe), 40000);
    CU_ASSERT_EQUAL(ncqe, 2); /* the result, then the notification */
    char *buf = malloc(40000);
    size_t got = 0;
    while (got < 40000) {
        ssize_t k = read(s[1], buf + got, 40000 - got);
        CU_ASSERT_FATAL(k > 0);
        got += (size_t)k;
    }
    CU_ASSERT(memcmp(buf, want + 1000, 40000) == 0);

    /* the file shrinks under the map: the send fails, the process lives */
    CU_ASSERT_EQUAL(ftruncate(fd, 4096), 0);
    sqe = io_uring_get_sqe(&ring);
    CU_ASSERT_EQUAL(rg_uring_prep_send_zc_map(sqe, s[0], m, 128 << 10, 8192, 0, &z), 0);
    int res = zc_run(&z, &ncqe);
    CU_ASSERT(res == -EFAULT || (res >= 0 && res < 8192));
    rg_mapfile_close(m);
    close(s[0]);
    close(s[1]);
    close(fd);
    free(buf);
    free(want);
}

int main(void)
{
    if (RUNNING_ON_VALGRIND) {
        printf("uring: skipped under Valgrind (kernel writes are invisible to memcheck)\n");
        return CU_SKIP_EXIT;
    }
    int rc = io_uring_queue_init(64, &ring, 0);
    if (rc < 0) {
        printf("uring: io_uring_queue_init: %s; skipped\n", strerror(-rc));
        return CU_SKIP_EXIT;
    }
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/regio-uring-XXXXXX", t ? t : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return 2;
    static const cu_test tests[] = {
        {"fixed buffers on region and pool memory", test_fixed_buffers},
        {"buffer ring: re-arm on put, ENOBUFS slows down", test_bufring_enobufs},
        {"SEND_ZC of mapped ranges", test_send_zc_map},
        {NULL, NULL},
    };
    rc = cu_run("uring", tests);
    io_uring_queue_exit(&ring);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0 && rc == 0)
        rc = 2;
    return rc;
}
