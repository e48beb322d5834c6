/* tests/contract.c — DESIGN.md §3 as a user reads it: every name of the API
 * contract, called exactly as spelled there, through <regio.h> only (no
 * internal header), with the semantics the contract states. */
#include "cu.h"

#include <regio.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static void test_lifecycle_and_tuning(void)
{
    CU_ASSERT_EQUAL(rg_init(NULL), 0);
    int64_t prev = rg_set_memory_limit(1LL << 40);
    CU_ASSERT_EQUAL(rg_set_memory_limit(prev), 1LL << 40);
    int p = rg_set_gc_percent(50);
    CU_ASSERT_EQUAL(rg_set_gc_percent(p), 50);
    rg_memstats st;
    rg_read_memstats(&st);
    CU_ASSERT(st.sys > 0);
    CU_ASSERT(st.rss > 0);
    CU_ASSERT(st.bytes_hugetlb + st.bytes_thp + st.bytes_4k <= st.sys);
}

static void cleanup_fn(void *arg) { (*(int *)arg)++; }

static void test_regions(void)
{
    rg_region *r = rg_region_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    void *a = rg_alloc(r, 100);
    CU_ASSERT(a != NULL && (uintptr_t)a % 16 == 0);
    void *b = rg_alloc_aligned(r, 100, 256);
    CU_ASSERT(b != NULL && (uintptr_t)b % 256 == 0);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_calloc(r, SIZE_MAX, 2));
    CU_ASSERT(errno != 0);
    CU_ASSERT_STRING_EQUAL(rg_strdup(r, "x"), "x");
    rg_mark m = rg_region_mark(r);
    rg_alloc(r, 64);
    rg_region_release(r, m);
    int ran = 0;
    CU_ASSERT_EQUAL(rg_region_on_reset(r, cleanup_fn, &ran), 0);
    static const rg_type t = {.name = "pinned", .size = 16};
    void *obj = rg_new(&t);
    rg_region_keep(r, obj);
    rg_region_reset(r);
    CU_ASSERT_EQUAL(ran, 1);
    rg_region_free(r);
}

typedef struct node { struct node *next; uint64_t v; } node;
static const size_t node_ptrs[] = {offsetof(node, next)};
static const rg_type node_type = {"node", sizeof(node), node_ptrs, 1, NULL};

static void test_collected_heap(void)
{
    rg_thread_attach();
    node *head = rg_new(&node_type);
    CU_ASSERT_PTR_NOT_NULL_FATAL(head);
    CU_ASSERT_EQUAL(head->v, 0); /* zeroed, like new(T) */
    rg_root *root = rg_root_add(&head);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    node *cur = head;
    for (int i = 1; i < 1000; i++) {
        node *n = rg_new(&node_type);
        n->v = (uint64_t)i;
        rg_write(cur, &cur->next, n);
        cur = n;
    }
    node *arr = rg_new_array(&node_type, 10);
    CU_ASSERT_PTR_NOT_NULL(arr);
    rg_safepoint();
    rg_gc();
    rg_gc();
    uint64_t sum = 0;
    int count = 0;
    for (node *n = head; n; n = n->next, count++)
        sum += n->v;
    CU_ASSERT_EQUAL(count, 1000);
    CU_ASSERT_EQUAL(sum, 999ull * 1000 / 2);
    rg_memstats st;
    rg_read_memstats(&st);
    CU_ASSERT(st.num_gc >= 2);
    rg_park();
    rg_unpark();
    rg_root_remove(root);
    rg_thread_detach();
}

static void test_pools_and_channels(void)
{
    rg_syncpool_opts so = {.obj_size = 128};
    rg_syncpool *sp = rg_syncpool_new(&so);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sp);
    void *x = rg_syncpool_get(sp);
    CU_ASSERT_PTR_NOT_NULL(x);
    rg_syncpool_put(sp, x);
    rg_syncpool_free(sp);

    rg_objpool_opts oo = {.obj_size = 64, .capacity = 8, .cache_size = 2, .policy = RG_POOL_FAIL};
    rg_objpool *op = rg_objpool_new(&oo);
    CU_ASSERT_PTR_NOT_NULL_FATAL(op);
    void *objs[8];
    CU_ASSERT_EQUAL(rg_objpool_get_bulk(op, objs, 8), 8);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_objpool_get(op)); /* the hard capacity */
    CU_ASSERT_EQUAL(errno, EAGAIN);
    CU_ASSERT_EQUAL(rg_objpool_get_bulk(op, objs, 1), 0); /* all or nothing */
    CU_ASSERT_EQUAL(rg_objpool_put_bulk(op, objs, 7), 0);
    CU_ASSERT_EQUAL(rg_objpool_put(op, objs[7]), 0);
    rg_objpool_free(op);

    rg_chan *c = rg_chan_new(sizeof(int), 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    int v = 7, out = 0;
    CU_ASSERT_EQUAL(rg_chan_send(c, &v), 0);
    CU_ASSERT_EQUAL(rg_chan_try_send(c, &v), 0);
    CU_ASSERT_EQUAL(rg_chan_try_send(c, &v), -EAGAIN);
    CU_ASSERT_EQUAL(rg_chan_send_timeout(c, &v, 1000000), -ETIMEDOUT);
    CU_ASSERT_EQUAL(rg_chan_len(c), 2);
    CU_ASSERT_EQUAL(rg_chan_cap(c), 2);
    rg_chan_close(c);
    CU_ASSERT_EQUAL(rg_chan_send(c, &v), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_recv(c, &out), 0);
    CU_ASSERT_EQUAL(out, 7);
    CU_ASSERT_EQUAL(rg_chan_try_recv(c, &out), 0);
    CU_ASSERT_EQUAL(rg_chan_recv(c, &out), -EPIPE);
    CU_ASSERT_EQUAL(rg_chan_recv_timeout(c, &out, 1000), -EPIPE);
    rg_chan_free(c);
}

static void test_containers(void)
{
    rg_region *r = rg_region_new();
    rg_slice s;
    CU_ASSERT_EQUAL(rg_slice_make(&s, r, sizeof(int), 0, 1), 0);
    for (int i = 0; i < 100; i++)
        CU_ASSERT_PTR_NOT_NULL(rg_slice_append(&s, &i));
    CU_ASSERT_EQUAL(s.len, 100);
    CU_ASSERT_EQUAL(*(int *)rg_slice_at(&s, 99), 99);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_slice_at(&s, 100));
    rg_slice d;
    CU_ASSERT_EQUAL(rg_slice_clone(&d, &s, 10, 20, NULL), 0);
    CU_ASSERT_EQUAL(d.len, 10);
    CU_ASSERT(d.ptr != s.ptr);
    rg_slice_free(&d);

    rg_map *m = rg_map_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    static int vals[3];
    CU_ASSERT_EQUAL(rg_map_put(m, "a", 1, &vals[0]), 1);
    CU_ASSERT_EQUAL(rg_map_put(m, "a", 1, &vals[1]), 0);
    CU_ASSERT_PTR_EQUAL(rg_map_get(m, "a", 1), &vals[1]);
    CU_ASSERT_PTR_NULL(rg_map_get(m, "b", 1));
    CU_ASSERT_EQUAL(rg_map_len(m), 1);
    CU_ASSERT(rg_map_mem(m) > 0);
    CU_ASSERT_EQUAL(rg_map_del(m, "a", 1), 1);
    CU_ASSERT_EQUAL(rg_map_del(m, "a", 1), 0);
    rg_map_free(m);
    rg_region_free(r);
}

static void test_files(void)
{
    char path[] = "/tmp/regio-contract-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, "hello\nworld\n", 12), 12);
    close(fd);
    rg_mapfile *mf = rg_mapfile_open(path, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mf);
    CU_ASSERT_EQUAL(rg_mapfile_len(mf), 12);
    CU_ASSERT_EQUAL(memcmp(rg_mapfile_data(mf), "hello", 5), 0);
    char buf[8];
    CU_ASSERT_EQUAL(rg_mapfile_read_at(mf, buf, 5, 6), 5);
    CU_ASSERT_EQUAL(memcmp(buf, "world", 5), 0);
    CU_ASSERT(rg_mapfile_read_at(mf, buf, 5, 100) <= 0); /* past the end */
    CU_ASSERT_EQUAL(rg_mapfile_advise(mf, 0), 0);
    rg_mapfile_close(mf);
    unlink(path);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_mapfile_open("/nonexistent/regio", 0));
    CU_ASSERT(errno != 0);
}

static void test_observability(void)
{
    char path[] = "/tmp/regio-profile-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    int rc = rg_write_heap_profile(fd);
    CU_ASSERT(rc == 0 || rc == -ENOTSUP);
    if (rc == 0)
        CU_ASSERT(lseek(fd, 0, SEEK_END) > 0);
    close(fd);
    unlink(path);
    rc = rg_debug_serve("127.0.0.1:0");
    CU_ASSERT(rc == 0 || rc == -ENOTSUP);
}

int main(void)
{
    static const cu_test tests[] = {
        {"lifecycle and tuning", test_lifecycle_and_tuning},
        {"regions", test_regions},
        {"the collected heap", test_collected_heap},
        {"pools and channels", test_pools_and_channels},
        {"slices and maps", test_containers},
        {"files", test_files},
        {"observability", test_observability},
        {NULL, NULL},
    };
    return cu_run("contract", tests);
}
