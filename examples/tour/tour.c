/* examples/tour — Go's memory management, section by section, in C on regio.
 *
 * Users come to regio from a text that teaches Go's memory management: stack
 * and heap, the tri-color collector and its knobs, make and new, slice and
 * map growth, channels, sync.Pool and channel-backed pools, preallocation,
 * struct layout, pprof, memstats, race detection, leaks from goroutines,
 * channels and timers, memory-mapped files, unsafe string/byte conversion,
 * and its best practices.  This program walks that text in order and shows
 * each idea's counterpart in regio, running: every section checks what it
 * claims (exit status 1 and a FAIL line if a claim does not hold), so the
 * tour is also a test (`meson test tour`).
 *
 * Read it beside README.md's table "The idea"; each section names the header
 * whose contract governs the call.
 */
#define _GNU_SOURCE
#include <regio.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            failures++;                                                        \
            printf("  FAIL %s:%d: %s — ", __FILE__, __LINE__, #cond);          \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
        }                                                                      \
    } while (0)

static void section(const char *go, const char *regio)
{
    printf("\n== %s\n   regio: %s\n", go, regio);
}

/* ------------------------------------------------------------------------
 * Memory layout: the stack becomes a region, the heap stays a heap
 * ---------------------------------------------------------------------- */

typedef struct user {
    struct user *friend; /* a traced pointer field */
    int64_t id;
    char name[16];
} user;

static const size_t user_ptrs[] = {offsetof(user, friend)};
static const rg_type user_type = {"user", sizeof(user), user_ptrs, 1, NULL};

static const rg_type int_type = {"int", sizeof(int), NULL, 0, NULL};

/* Go: func heapExample() *int { x := 42; return &x } — x escapes.  In C the
 * escape is explicit: the value is built where it is cheap and copied out
 * through the door (rg_clone) when it must outlive the request. */
static int *heap_example(rg_region *req)
{
    int *x = rg_alloc(req, sizeof *x); /* "stack": dies with the request */
    *x = 42;
    return rg_clone(&int_type, x, sizeof *x); /* escapes to the heap */
}

static void tour_layout(void)
{
    section("Memory layout: stack vs heap, escape analysis",
            "rg_region per request (bump, freed at once) / rg_new + rg_clone for what escapes");
    rg_region *req = rg_region_new();
    CHECK(req != NULL, "rg_region_new: %s", strerror(errno));
    if (!req)
        return;
    int *arr = rg_calloc(req, 10, sizeof(int)); /* arr := [10]int{} */
    CHECK(arr && arr[9] == 0, "zeroed array from the region");
    int *escaped = heap_example(req);
    rg_root *root = rg_root_add(&escaped); /* a local the collector can see */
    rg_region_reset(req);                  /* the whole request, freed in one step */
    rg_gc();
    CHECK(escaped && *escaped == 42, "the escaped value outlives the region and a collection");
    printf("   region used after reset: %zu B; escaped value: %d\n", rg_region_used(req),
           escaped ? *escaped : -1);
    rg_root_remove(root);
    rg_region_free(req);
}

/* ------------------------------------------------------------------------
 * Garbage collection: tri-color mark and sweep, its phases and knobs
 * ---------------------------------------------------------------------- */

static int finalized;
static void count_final(void *obj)
{
    (void)obj;
    __atomic_add_fetch(&finalized, 1, __ATOMIC_RELAXED);
}
static const size_t node_ptrs[] = {0};
static const rg_type node_type = {"node", 32, node_ptrs, 1, count_final};

static void tour_gc(void)
{
    section("Garbage collection: tri-color concurrent mark & sweep, phases, tuning",
            "rg_gc(), RG_GC_PERCENT/rg_set_gc_percent, RG_MEMLIMIT/rg_set_memory_limit, "
            "RG_DEBUG=gctrace=1, rg_read_memstats");
    rg_memstats before, after;
    rg_read_memstats(&before);

    /* A chain of 1000 objects reachable from one root, and 1000 garbage. */
    void *head = NULL;
    rg_root *root = rg_root_add(&head);
    for (int i = 0; i < 1000; i++) {
        void *n = rg_new(&node_type);
        if (!n)
            break;
        rg_write(n, n, head); /* n->next = head, through the barrier */
        head = n;
        if (!rg_new(&node_type)) /* unreachable at once */
            break;
    }
    finalized = 0;
    rg_gc(); /* runtime.GC(): mark, sweep, run due finalizers */
    rg_gc();
    rg_read_memstats(&after);
    size_t live = 0;
    for (void **n = head; n; n = *n)
        live++;
    printf("   NumGC %" PRIu64 " -> %" PRIu64 ", finalized %d garbage objects, chain of %zu intact\n",
           before.num_gc, after.num_gc, finalized, live);
    CHECK(after.num_gc >= before.num_gc + 2, "rg_gc runs a cycle");
    CHECK(live == 1000, "reachable objects survive");
    CHECK(finalized >= 1000, "unreachable objects are swept (finalized %d)", finalized);
    head = NULL;
    rg_root_remove(root);

    int old = rg_set_gc_percent(50); /* debug.SetGCPercent(50) */
    CHECK(rg_set_gc_percent(old) == 50, "rg_set_gc_percent returns the previous value");
    int64_t lim = rg_set_memory_limit(-1); /* negative: query */
    int64_t prev = rg_set_memory_limit((int64_t)1 << 30); /* debug.SetMemoryLimit(1 GiB) */
    CHECK(prev == lim, "rg_set_memory_limit returns the previous limit");
    CHECK(rg_set_memory_limit(-1) == (int64_t)1 << 30, "the limit is set (and hard)");
    rg_set_memory_limit(lim);
}

/* ------------------------------------------------------------------------
 * make vs new; slices; maps; channels
 * ---------------------------------------------------------------------- */

static void tour_make_new(void)
{
    section("make() and new()", "rg_slice_make, rg_map_new, rg_chan_new / rg_new (zeroed)");
    rg_slice s;
    CHECK(rg_slice_make(&s, NULL, sizeof(int), 10, 20) == 0, "make([]int, 10, 20)");
    CHECK(s.len == 10 && s.cap == 20, "len %zu cap %zu", s.len, s.cap);
    rg_map *m = rg_map_new(NULL);
    CHECK(m && rg_map_len(m) == 0, "make(map[string]int)");
    rg_chan *ch = rg_chan_new(sizeof(int), 5);
    CHECK(ch && rg_chan_cap(ch) == 5, "make(chan int, 5)");
    user *u = rg_new(&user_type); /* new(User): all fields zero */
    CHECK(u && u->id == 0 && u->friend == NULL && u->name[0] == 0, "new(User) is zeroed");
    rg_slice_free(&s);
    rg_map_free(m);
    rg_chan_free(ch);
}

static void tour_slices(void)
{
    section("Slice growth and the small-slice-of-a-big-array leak",
            "rg_slice_append (Go's exact growth), rg_slice_clone (copy out)");
    rg_slice s;
    rg_slice_make(&s, NULL, sizeof(int), 0, 1);
    size_t caps[10];
    printf("  ");
    for (int i = 0; i < 10; i++) {
        caps[i] = s.cap;
        printf(" len=%zu cap=%zu;", s.len, s.cap);
        CHECK(rg_slice_append(&s, &i) != NULL, "append");
    }
    printf("\n");
    CHECK(caps[0] == 1 && caps[1] == 1 && caps[2] == 2 && caps[3] == 4 && caps[5] == 8 &&
              caps[9] == 16,
          "growth 1 -> 2 -> 4 -> 8 -> 16");
    rg_slice_free(&s);

    rg_slice data, small;
    CHECK(rg_slice_make(&data, NULL, 1, 1 << 20, 1 << 20) == 0, "a 1 MiB array");
    memset(data.ptr, 'x', data.len);
    CHECK(rg_slice_clone(&small, &data, 100, 110, NULL) == 0, "clone(data[100:110])");
    rg_slice_free(&data); /* the big array can go: small does not point into it */
    CHECK(small.len == 10 && small.cap == 10 && ((char *)small.ptr)[9] == 'x',
          "the clone holds exactly 10 bytes");
    rg_slice_free(&small);
}

static void tour_maps(void)
{
    section("Map growth and shrinking", "rg_map shrinks by itself (Go's maps never do)");
    enum { N = 200000 };
    rg_map *m = rg_map_new(NULL);
    if (!m)
        return;
    char key[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "key%d", i);
        rg_map_put(m, key, (size_t)n, (void *)(intptr_t)(i + 1));
    }
    size_t full = rg_map_mem(m);
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "key%d", i);
        rg_map_del(m, key, (size_t)n);
    }
    size_t empty = rg_map_mem(m);
    printf("   %d keys: %zu KiB; after deleting all: %zu KiB\n", N, full >> 10, empty >> 10);
    CHECK(rg_map_len(m) == 0, "empty");
    CHECK(empty * 100 < full, "memory falls with the keys (%zu of %zu)", empty, full);
    rg_map_free(m);
}

static void *handoff_worker(void *arg)
{
    rg_chan *ch = arg;
    int job;
    if (rg_chan_recv(ch, &job) == 0) { /* job := <-ch */
        int reply = job * 2;
        rg_chan_send(ch, &reply); /* ch <- reply: waits for main to receive it */
    }
    return NULL;
}

static void tour_channels(void)
{
    section("Channel lifecycle", "rg_chan_new / rg_chan_close / rg_chan_free");
    rg_chan *ch = rg_chan_new(sizeof(const char *), 1000); /* make(chan string, 1000) */
    if (!ch)
        return;
    const char *msg = "hello";
    CHECK(rg_chan_send(ch, &msg) == 0, "send");
    rg_chan_close(ch); /* close(ch) */
    CHECK(rg_chan_send(ch, &msg) == -EPIPE, "send on a closed channel is -EPIPE, not a panic");
    const char *got = NULL;
    CHECK(rg_chan_recv(ch, &got) == 0 && got == msg, "buffered values are still received");
    CHECK(rg_chan_recv(ch, &got) == -EPIPE, "then -EPIPE: closed and drained");
    rg_chan_free(ch); /* ch = nil: the buffer goes back at once */

    /* make(chan int): unbuffered, a hand-off.  A send returns once a
     * receiver has the value, so the worker owns the job when it returns. */
    rg_chan *handoff = rg_chan_new(sizeof(int), 0);
    CHECK(handoff && rg_chan_cap(handoff) == 0, "make(chan int): capacity 0, an unbuffered channel");
    if (!handoff)
        return;
    int job = 21, reply = 0;
    CHECK(rg_chan_try_send(handoff, &job) == -EAGAIN, "nothing is buffered: no receiver waits, no send");
    pthread_t t;
    if (pthread_create(&t, NULL, handoff_worker, handoff) == 0) {
        CHECK(rg_chan_send(handoff, &job) == 0, "ch <- job returns once the worker has taken it");
        CHECK(rg_chan_recv(handoff, &reply) == 0 && reply == 42, "its reply comes back the same way (%d)", reply);
        pthread_join(t, NULL);
    }
    CHECK(rg_chan_len(handoff) == 0, "len is always 0");
    rg_chan_free(handoff);
}

/* ------------------------------------------------------------------------
 * Object pooling and reuse
 * ---------------------------------------------------------------------- */

static void *new_buffer(void *arg)
{
    (void)arg;
    return rg_malloc(1024); /* New: func() interface{} { return make([]byte, 0, 1024) } */
}

static void tour_pools(void)
{
    section("sync.Pool", "rg_syncpool: private slot, per-thread cache, shared list, victim");
    rg_syncpool_opts so = {.new_fn = new_buffer, .name = "buffers"};
    rg_syncpool *sp = rg_syncpool_new(&so);
    if (!sp)
        return;
    void *a = rg_syncpool_get(sp);
    rg_syncpool_put(sp, a);
    void *b = rg_syncpool_get(sp);
    CHECK(a && a == b, "a put object comes back to the next get");
    rg_syncpool_put(sp, b);
    rg_syncpool_stats st;
    rg_syncpool_read_stats(sp, &st);
    printf("   gets %" PRIu64 ", served locally %" PRIu64 ", created %" PRIu64 "\n", st.gets,
           st.hits_local, st.news);
    CHECK(st.gets == 2 && st.hits_local == 1 && st.news == 1, "one creation, one reuse");
    rg_syncpool_free(sp);

    section("Custom object pool (the channel-backed BufferPool)",
            "rg_objpool: a hard capacity, per-thread caches over a shared ring; rg_buf");
    rg_objpool_opts oo = {.obj_size = 2048, .capacity = 4, .cache_size = 0,
                          .policy = RG_POOL_FAIL, .name = "BufferPool"};
    rg_objpool *op = rg_objpool_new(&oo);
    if (!op)
        return;
    void *objs[4];
    CHECK(rg_objpool_get_bulk(op, objs, 4) == 4, "capacity objects");
    errno = 0;
    CHECK(rg_objpool_get(op) == NULL && errno == EAGAIN,
          "the fifth is refused: live objects never exceed the capacity");
    CHECK(rg_objpool_put_bulk(op, objs, 4) == 0, "all back");
    rg_objpool_free(op);

    rg_buf buf = RG_BUF_INIT; /* bytes.Buffer, backing arrays pooled */
    rg_buf_write_str(&buf, "hello, ");
    rg_buf_write_str(&buf, "regio");
    size_t cap = rg_buf_cap(&buf);
    rg_buf_reset(&buf); /* buf.Reset(): length 0, the array is kept */
    CHECK(rg_buf_len(&buf) == 0 && rg_buf_cap(&buf) == cap, "reset keeps the capacity");
    rg_buf_free(&buf);
}

struct bad_struct { bool flag1; int64_t count; bool flag2; int64_t value; };
struct good_struct { int64_t count; int64_t value; bool flag1; bool flag2; };

static void tour_reuse(void)
{
    section("Preallocate slices; struct field ordering",
            "rg_slice_make with a capacity, rg_map_new_hint; C lays structs out as Go does");
    enum { N = 1000 };
    rg_slice s;
    rg_slice_make(&s, NULL, sizeof(int), 0, N); /* make([]string, 0, len(items)) */
    void *first = s.ptr;
    for (int i = 0; i < N; i++)
        rg_slice_append(&s, &i);
    CHECK(s.ptr == first && s.len == N, "one allocation for %d appends", N);
    rg_slice_free(&s);
    /* The seed says 32 and 18 bytes; alignment rounds the second to 24, in Go
     * too (unsafe.Sizeof).  pahole (Debian: dwarves) and -Wpadded find holes. */
    printf("   sizeof(BadStruct) = %zu, sizeof(GoodStruct) = %zu\n", sizeof(struct bad_struct),
           sizeof(struct good_struct));
    CHECK(sizeof(struct bad_struct) == 32 && sizeof(struct good_struct) == 24, "field order");
}

/* ------------------------------------------------------------------------
 * Profiling and monitoring
 * ---------------------------------------------------------------------- */

static int http_get_status(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int status = -EIO;
    char req[256], resp[64] = {0};
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && write(fd, req, (size_t)n) == n &&
        read(fd, resp, sizeof resp - 1) > 12)
        status = atoi(resp + 9); /* "HTTP/1.x NNN" */
    close(fd);
    return status;
}

static void tour_profiling(void)
{
    section("pprof: net/http/pprof, go tool pprof, pprof.WriteHeapProfile",
            "rg_debug_serve (/debug/pprof/heap, /debug/vars, /debug/regio), rg_write_heap_profile");
    int rc = rg_debug_serve("127.0.0.1:0");
    if (rc == -ENOTSUP) {
        printf("   built without libmicrohttpd: skipped\n");
    } else {
        CHECK(rc == 0, "rg_debug_serve: %s", strerror(-rc));
        int port = rg_debug_port();
        int st = http_get_status(port, "/debug/pprof/heap");
        printf("   go tool pprof http://127.0.0.1:%d/debug/pprof/heap  (GET -> %d)\n", port, st);
        CHECK(st == 200, "the heap profile is served");
        rg_debug_stop();
    }
    char path[] = "/tmp/regio-tour-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return;
    unlink(path);
    rg_gc(); /* runtime.GC() before profiling, as the seed does */
    rc = rg_write_heap_profile(fd);
    if (rc == -ENOTSUP) {
        printf("   built without protobuf-c/zlib: skipped\n");
    } else {
        unsigned char magic[2] = {0};
        CHECK(rc == 0 && pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b,
              "a gzipped pprof profile (rc %d)", rc);
    }
    close(fd);
}

static void tour_monitoring(void)
{
    section("runtime.ReadMemStats, custom metrics, monitorMemory",
            "rg_read_memstats, rg_memstats_json (/debug/vars), rg_monitor_start / RG_DEBUG=memtrace=30s");
    rg_slice samples; /* MemoryTracker.samples */
    rg_slice_make(&samples, NULL, sizeof(rg_memstats), 0, 0);
    for (int i = 0; i < 3; i++) {
        rg_memstats m;
        rg_read_memstats(&m);
        rg_slice_append(&samples, &m);
    }
    const rg_memstats *latest = rg_slice_at(&samples, samples.len - 1);
    CHECK(latest != NULL, "samples kept");
    if (!latest)
        return;
    printf("   Alloc = %" PRIu64 " KB  TotalAlloc = %" PRIu64 " KB  Sys = %" PRIu64
           " KB  NumGC = %" PRIu64 "  RSS = %" PRIu64 " KB\n",
           latest->heap_alloc >> 10, latest->total_alloc >> 10, latest->sys >> 10, latest->num_gc,
           latest->rss >> 10);
    CHECK(latest->sys > 0 && latest->total_alloc > 0, "memstats are fed");
    char json[8192];
    int n = rg_memstats_json(latest, json, sizeof json);
    CHECK(n > 0 && strstr(json, "\"NumGC\"") != NULL, "memstats as JSON (%d)", n);
    rg_slice_free(&samples);
    /* monitorMemory: a ticker that logs memstats, stopped like ticker.Stop() */
    CHECK(rg_monitor_start(20 * 1000000) == 0, "monitor started");
    usleep(50000);
    rg_monitor_stop();
}

/* ------------------------------------------------------------------------
 * Memory safety: races, goroutine/channel/timer leaks
 * ---------------------------------------------------------------------- */

static void *worker(void *arg)
{
    rg_chan *done = arg;
    long ticks = 0;
    /* for { select { case <-ctx.Done(): return; default: work } } */
    while (rg_chan_recv_timeout(done, NULL, 1000000) == -ETIMEDOUT)
        ticks++;
    return (void *)ticks;
}

static void *producer(void *arg)
{
    rg_chan *ch = arg;
    for (int i = 0; i < 10; i++)
        rg_chan_send(ch, &i);
    rg_chan_close(ch); /* defer close(ch) */
    return NULL;
}

static void tour_safety(void)
{
    section("Race detection; context cancellation; closing channels; timer cleanup",
            "scripts/test's TSan build; rg_chan_close as ctx.Done(); timeouts on every wait");
    printf("   go test -race  ->  scripts/test (its third build runs every suite under TSan)\n");

    rg_chan *done = rg_chan_new(1, 1); /* ctx, cancel := context.WithCancel(...) */
    pthread_t t;
    if (done && pthread_create(&t, NULL, worker, done) == 0) {
        usleep(5000);
        rg_chan_close(done); /* cancel(): every receiver wakes with -EPIPE */
        void *ticks;
        pthread_join(t, &ticks);
        printf("   worker stopped by close after %ld ticks\n", (long)ticks);
    }
    rg_chan_free(done);

    rg_chan *ch = rg_chan_new(sizeof(int), 2);
    int sum = 0, v, rc;
    if (ch && pthread_create(&t, NULL, producer, ch) == 0) {
        while ((rc = rg_chan_recv(ch, &v)) == 0) /* for v := range ch */
            sum += v;
        pthread_join(t, NULL);
        CHECK(rc == -EPIPE && sum == 45, "range over a closed channel ends (sum %d)", sum);
    }

    /* select { case <-ctx.Done(): case r := <-someChannel: } with a timeout:
     * nothing to Stop() afterwards — a deadline is an argument, not an object. */
    rg_chan *other = rg_chan_new(sizeof(int), 1);
    rg_chan_case cases[] = {{ch, RG_CHAN_RECV, &v, 0}, {other, RG_CHAN_RECV, &v, 0}};
    rc = rg_chan_select(cases + 1, 1, 1000000);
    CHECK(rc == -ETIMEDOUT, "select times out (%d)", rc);
    rc = rg_chan_select(cases, 2, 1000000);
    CHECK(rc == 0 && cases[0].result == -EPIPE, "a closed channel fires at once (%d)", rc);
    rg_chan_free(other);
    rg_chan_free(ch);
}

/* ------------------------------------------------------------------------
 * Memory-mapped files and unsafe conversions
 * ---------------------------------------------------------------------- */

static void tour_mmap(void)
{
    section("Memory-mapped files (x/exp/mmap); string <-> []byte without copying",
            "rg_mapfile_open/read_at (bounds-checked, SIGBUS-safe) and rg_view slices");
    char path[] = "/tmp/regio-tour-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return;
    for (int i = 0; i < 1000; i++)
        dprintf(fd, "line %d of a large file\n", i);
    close(fd);
    rg_mapfile *m = rg_mapfile_open(path, RG_MAP_READ);
    unlink(path);
    CHECK(m != NULL, "rg_mapfile_open: %s", strerror(errno));
    if (!m)
        return;
    char data[1024];
    ssize_t n = rg_mapfile_read_at(m, data, sizeof data, 0); /* r.ReadAt(data, 0) */
    CHECK(n == (ssize_t)sizeof data, "read_at %zd", n);
    CHECK(rg_mapfile_read_at(m, data, 1, (off_t)rg_mapfile_len(m) + 1) <= 0,
          "reads past the end are refused, not faults");
    rg_view all = rg_mapfile_view(m, 0, rg_mapfile_len(m));
    rg_view line;
    size_t lines = 0;
    while (rg_view_next(&all, '\n', &line)) /* no copy: views point into the map */
        lines++;
    CHECK(lines == 1000, "1000 lines seen through views (%zu)", lines);
    rg_view first = rg_mapfile_view(m, 0, 4);
    CHECK(first.ptr == (const char *)rg_mapfile_data(m), "a view shares the mapped bytes");
    rg_mapfile_close(m);
}

/* ------------------------------------------------------------------------
 * Best practices
 * ---------------------------------------------------------------------- */

static void tour_best(void)
{
    section("Best practices: prefer the stack, reuse memory, closures copy what they need",
            "regions for request data; rg_region_reset keeps its chunk; rg_memdup the one item");
    rg_region *r = rg_region_new();
    if (!r)
        return;
    size_t sizes[3];
    for (int req = 0; req < 3; req++) { /* the per-request loop */
        for (int i = 0; i < 64; i++)
            (void)rg_alloc(r, 16 + (size_t)i * 8);
        sizes[req] = rg_region_size(r);
        rg_region_reset(r);
    }
    CHECK(sizes[1] == sizes[2], "a steady request loop reuses the same memory");
    /* goodClosures: copy the item, not the whole array it sits in. */
    int big[1000] = {[500] = 7};
    int *item = rg_memdup(r, &big[500], sizeof big[500]);
    CHECK(item && *item == 7, "copied one element");
    rg_region_free(r);
}

int main(void)
{
    rg_thread_attach();
    printf("regio tour: Go's memory management, section by section\n");
    tour_layout();
    tour_gc();
    tour_make_new();
    tour_slices();
    tour_maps();
    tour_channels();
    tour_pools();
    tour_reuse();
    tour_profiling();
    tour_monitoring();
    tour_safety();
    tour_mmap();
    tour_best();
    rg_thread_detach();
    printf("\ntour: %s (%d failed checks)\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
}
