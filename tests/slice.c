/* tests/slice.c — Go-style slices: every call, Go's growth sequence, the
 * clone leak fix, views, bounds and overflow, on a region and standalone. */
#include "cu.h"
#include "internal.h"

#include <stdint.h>

/* Capacities Go 1.19 reports for one-at-a-time appends to a nil slice
 * (printed by a Go program: cap() after each append, first 16 changes). */
static const size_t go_caps_1[] = {8, 16, 32, 64, 128, 256, 512, 896, 1408, 2048, 3072, 4096,
                                   5376, 6912, 9472, 12288, 16384, 21760, 28672, 40960, 57344,
                                   73728, 98304, 131072, 172032, 221184};
static const size_t go_caps_8[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 848, 1280, 1792, 2560,
                                   3408, 5120, 7168, 9216, 12288, 16384, 21504, 27648, 34816,
                                   44032, 55296, 69632, 88064, 110592, 139264, 175104, 219136};
static const size_t go_caps_24[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 853, 1365, 2048, 3072,
                                    4096, 5461, 7168, 9216, 11946, 15360, 19456, 24576, 31061,
                                    39253, 49493, 62122, 78165, 97962, 122880, 153941, 192853};
static const size_t go_caps_12[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 853, 1365, 2048, 3413,
                                    4778, 6826, 8874, 11605, 15018, 19114, 24576, 31402, 39594,
                                    49834, 62805, 79189, 99669, 124928, 157013, 196608};
static const size_t go_caps_100[] = {1, 2, 4, 8, 17, 34, 69, 143, 286, 573, 983, 1474, 2048,
                                     2785, 3686, 4833, 6307, 8110, 10403, 13271, 16793, 21217,
                                     26787, 33751, 42434, 53248};
static const size_t go_caps_3[] = {2, 5, 10, 21, 42, 85, 170, 341, 682, 1066, 1621, 2261, 3157,
                                   4522, 6144, 8192, 10922, 16384, 21845, 30037, 38229, 49152,
                                   62805};

static void check_growth(rg_region *r, size_t es, const size_t *want, size_t nwant)
{
    rg_slice s;
    CU_ASSERT_EQUAL_FATAL(rg_slice_make(&s, r, es, 0, 0), 0);
    unsigned char elem[128];
    size_t seen = 0, last = 0;
    size_t total = want[nwant - 1];
    for (size_t i = 0; i < total; i++) {
        memset(elem, (int)(i & 0xff), es);
        unsigned char *p = rg_slice_append(&s, elem);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        if (s.cap != last) {
            last = s.cap;
            CU_ASSERT_FATAL(seen < nwant);
            if (s.cap != want[seen])
                fprintf(stderr, "elem_size %zu: change %zu: cap %zu, Go %zu\n", es, seen, s.cap, want[seen]);
            CU_ASSERT_EQUAL(s.cap, want[seen]);
            seen++;
        }
    }
    CU_ASSERT_EQUAL(seen, nwant);
    CU_ASSERT_EQUAL(s.len, total);
    /* contents survived every copy */
    int bad = 0;
    for (size_t i = 0; i < total; i++)
        bad += ((unsigned char *)rg_slice_at(&s, i))[es - 1] != (unsigned char)(i & 0xff);
    CU_ASSERT_EQUAL(bad, 0);
    rg_slice_free(&s);
}

#define N(a) (sizeof(a) / sizeof(a[0]))

static void test_growth_matches_go(void)
{
    check_growth(NULL, 1, go_caps_1, N(go_caps_1));
    check_growth(NULL, 8, go_caps_8, N(go_caps_8));
    check_growth(NULL, 24, go_caps_24, N(go_caps_24));
    check_growth(NULL, 12, go_caps_12, N(go_caps_12));
    check_growth(NULL, 100, go_caps_100, N(go_caps_100));
    check_growth(NULL, 3, go_caps_3, N(go_caps_3));
    rg_region *r = rg_region_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    check_growth(r, 8, go_caps_8, N(go_caps_8));
    check_growth(r, 24, go_caps_24, N(go_caps_24));
    rg_region_free(r);
}

static void test_append_many_matches_go(void)
{
    /* append(make([]int64, 5), make([]int64, 7)...) has cap 12 in Go 1.19 */
    rg_slice s;
    CU_ASSERT_EQUAL_FATAL(rg_slice_make(&s, NULL, 8, 5, 5), 0);
    CU_ASSERT_PTR_NOT_NULL(rg_slice_append_n(&s, NULL, 7));
    CU_ASSERT_EQUAL(s.len, 12);
    CU_ASSERT_EQUAL(s.cap, 12);
    rg_slice_free(&s);
    /* append([]byte{}, make([]byte, 1000)...) -> 1024 */
    CU_ASSERT_EQUAL_FATAL(rg_slice_make(&s, NULL, 1, 0, 0), 0);
    CU_ASSERT_PTR_NOT_NULL(rg_slice_append_n(&s, NULL, 1000));
    CU_ASSERT_EQUAL(s.cap, 1024);
    rg_slice_free(&s);
    /* append(make([]int64, 300), 10 more...) -> 608 */
    CU_ASSERT_EQUAL_FATAL(rg_slice_make(&s, NULL, 8, 300, 300), 0);
    CU_ASSERT_PTR_NOT_NULL(rg_slice_append_n(&s, NULL, 10));
    CU_ASSERT_EQUAL(s.cap, 608);
    rg_slice_free(&s);
    CU_ASSERT_EQUAL(rg_slice_next_cap(0, 1, 8), 1);
    CU_ASSERT_EQUAL(rg_slice_next_cap(SIZE_MAX / 2, SIZE_MAX / 2 + 1, 8), 0);
}

static void test_make_and_at(void)
{
    rg_slice s;
    CU_ASSERT_EQUAL_FATAL(rg_slice_make(&s, NULL, sizeof(int), 10, 100), 0);
    CU_ASSERT_EQUAL(s.len, 10);
    CU_ASSERT_EQUAL(s.cap, 100);
    CU_ASSERT_PTR_NOT_NULL(s.ptr);
    int zero = 0;
    for (size_t i = 0; i < 10; i++)
        zero += *(int *)rg_slice_at(&s, i) == 0;
    CU_ASSERT_EQUAL(zero, 10);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_slice_at(&s, 10));
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_PTR_NULL(rg_slice_at(&s, SIZE_MAX));
    CU_ASSERT_PTR_NULL(rg_slice_at(NULL, 0));
    /* preallocation: appends up to cap do not move the array */
    void *base = s.ptr;
    for (int i = 0; i < 90; i++)
        CU_ASSERT_PTR_NOT_NULL(rg_slice_append(&s, &i));
    CU_ASSERT_PTR_EQUAL(s.ptr, base);
    CU_ASSERT_EQUAL(s.len, 100);
    CU_ASSERT_EQUAL(*(int *)rg_slice_at(&s, 99), 89);
    int x = 7;
    int *p = rg_slice_append(&s, &x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(*p, 7);
    CU_ASSERT(s.cap > 100);
    CU_ASSERT_EQUAL(*(int *)rg_slice_at_unchecked(&s, 10), 0);
    rg_slice_free(&s);
    CU_ASSERT_PTR_NULL(s.ptr);
    CU_ASSERT_EQUAL(s.len, 0);
    rg_slice_free(NULL);

    /* cap 0: nothing allocated; a zero rg_slice with elem_size is a nil slice */
    CU_ASSERT_EQUAL(rg_slice_make(&s, NULL, 4, 0, 0), 0);
    CU_ASSERT_PTR_NULL(s.ptr);
    rg_slice nil = {.elem_size = 4};
    CU_ASSERT_PTR_NOT_NULL(rg_slice_append(&nil, &x));
    CU_ASSERT_EQUAL(nil.len, 1);
    rg_slice_free(&nil);
}

static void test_bad_input(void)
{
    rg_slice s;
    CU_ASSERT_EQUAL(rg_slice_make(NULL, NULL, 4, 0, 0), -EINVAL);
    CU_ASSERT_EQUAL(rg_slice_make(&s, NULL, 0, 0, 10), -EINVAL);
    CU_ASSERT_EQUAL(rg_slice_make(&s, NULL, 4, 11, 10), -EINVAL);
    CU_ASSERT_EQUAL(rg_slice_make(&s, NULL, 16, 0, SIZE_MAX / 8), -EOVERFLOW);
    CU_ASSERT_EQUAL(rg_slice_make(&s, NULL, SIZE_MAX, 1, 2), -EOVERFLOW);
    CU_ASSERT_PTR_NULL(s.ptr);
    rg_slice_free(&s);
    /* a too-large array fails cleanly with ENOMEM (hard limit or OS) */
    int rc = rg_slice_make(&s, NULL, 1, 0, (size_t)1 << 46);
    CU_ASSERT(rc == -ENOMEM || rc == 0);
    rg_slice_free(&s);

    errno = 0;
    CU_ASSERT_PTR_NULL(rg_slice_append(NULL, NULL));
    CU_ASSERT_EQUAL(errno, EINVAL);
    rg_slice z = {0};
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_slice_append(&z, NULL)); /* elem_size 0 */
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_EQUAL_FATAL(rg_slice_make(&s, NULL, 8, 1, 1), 0);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_slice_append_n(&s, NULL, SIZE_MAX));
    CU_ASSERT_EQUAL(errno, EOVERFLOW);
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_slice_append_n(&s, NULL, SIZE_MAX / 16));
    CU_ASSERT_EQUAL(errno, EOVERFLOW);
    CU_ASSERT_EQUAL(s.len, 1); /* unchanged */
    CU_ASSERT_EQUAL(s.cap, 1);
    CU_ASSERT_EQUAL(rg_slice_grow(&s, SIZE_MAX), -EOVERFLOW);
    CU_ASSERT_EQUAL(rg_slice_grow(NULL, 1), -EINVAL);
    /* a corrupted header (len > cap) is refused, never used */
    rg_slice bad = s;
    bad.len = bad.cap + 1;
    CU_ASSERT_PTR_NULL(rg_slice_append(&bad, NULL));
    CU_ASSERT_EQUAL(rg_slice_set_len(&bad, 0), -EINVAL);
    rg_slice_free(&s);
}

static void test_append_self_alias(void)
{
    /* append(s, s...): elems point into the array being grown */
    rg_slice s;
    CU_ASSERT_EQUAL_FATAL(rg_slice_make(&s, NULL, 4, 0, 4), 0);
    for (uint32_t i = 0; i < 4; i++)
        rg_slice_append(&s, &i);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rg_slice_append_n(&s, s.ptr, s.len));
    CU_ASSERT_EQUAL(s.len, 8);
    int bad = 0;
    for (uint32_t i = 0; i < 8; i++)
        bad += *(uint32_t *)rg_slice_at(&s, i) != i % 4;
    CU_ASSERT_EQUAL(bad, 0);
    /* single append of an element of itself at the growth point */
    while (s.len < s.cap)
        rg_slice_append(&s, rg_slice_at(&s, 0));
    uint32_t *p = rg_slice_append(&s, rg_slice_at(&s, 1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(*p, 1);
    rg_slice_free(&s);
}

static void test_clone_leak_fix(void)
{
    /* a small piece of a huge array: the clone must not point into it */
    rg_slice big, small;
    CU_ASSERT_EQUAL_FATAL(rg_slice_make(&big, NULL, 1, 4 << 20, 4 << 20), 0);
    memset(big.ptr, 'x', big.len);
    memcpy((char *)big.ptr + 1000, "hello", 5);
    CU_ASSERT_EQUAL_FATAL(rg_slice_clone(&small, &big, 1000, 1005, NULL), 0);
    CU_ASSERT_EQUAL(small.len, 5);
    CU_ASSERT_EQUAL(small.cap, 5);
    char *lo = big.ptr, *hi = lo + big.cap;
    CU_ASSERT((char *)small.ptr < lo || (char *)small.ptr >= hi);
    CU_ASSERT_EQUAL(memcmp(small.ptr, "hello", 5), 0);
    CU_ASSERT(rg_usable_size(small.ptr) < 4096);
    rg_slice_free(&big); /* the clone survives the big array */
    CU_ASSERT_EQUAL(memcmp(small.ptr, "hello", 5), 0);
    rg_slice_free(&small);

    /* clone onto a region, and dst == src (s = clone(s[a:b])) */
    rg_region *r = rg_region_new();
    CU_ASSERT_EQUAL_FATAL(rg_slice_make(&big, NULL, 4, 1000, 1000), 0);
    for (uint32_t i = 0; i < 1000; i++)
        *(uint32_t *)rg_slice_at(&big, i) = i;
    rg_slice onr;
    CU_ASSERT_EQUAL_FATAL(rg_slice_clone(&onr, &big, 10, 20, r), 0);
    CU_ASSERT_PTR_EQUAL(onr.r, r);
    CU_ASSERT_EQUAL(*(uint32_t *)rg_slice_at(&onr, 0), 10);
    CU_ASSERT_EQUAL_FATAL(rg_slice_clone(&big, &big, 500, 502, NULL), 0);
    CU_ASSERT_EQUAL(big.len, 2);
    CU_ASSERT_EQUAL(*(uint32_t *)rg_slice_at(&big, 1), 501);
    rg_slice empty;
    CU_ASSERT_EQUAL(rg_slice_clone(&empty, &big, 1, 1, NULL), 0);
    CU_ASSERT_EQUAL(empty.len, 0);
    CU_ASSERT_PTR_NULL(empty.ptr);
    CU_ASSERT_EQUAL(rg_slice_clone(&empty, &big, 2, 1, NULL), -EINVAL);
    CU_ASSERT_EQUAL(rg_slice_clone(&empty, &big, 0, 3, NULL), -EINVAL);
    CU_ASSERT_EQUAL(rg_slice_clone(NULL, &big, 0, 1, NULL), -EINVAL);
    rg_slice_free(&big);
    rg_region_free(r);
}

static void test_sub_slices(void)
{
    rg_slice s, v, w;
    CU_ASSERT_EQUAL_FATAL(rg_slice_make(&s, NULL, 4, 10, 16), 0);
    for (uint32_t i = 0; i < 10; i++)
        *(uint32_t *)rg_slice_at(&s, i) = i;
    CU_ASSERT_EQUAL_FATAL(rg_slice_sub(&v, &s, 2, 5), 0);
    CU_ASSERT_EQUAL(v.len, 3);
    CU_ASSERT_EQUAL(v.cap, 14);
    CU_ASSERT_EQUAL(*(uint32_t *)rg_slice_at(&v, 0), 2);
    CU_ASSERT_PTR_NULL(rg_slice_at(&v, 3));
    /* Go's aliasing: appending within cap writes the shared array */
    uint32_t x = 99;
    rg_slice_append(&v, &x);
    CU_ASSERT_EQUAL(*(uint32_t *)rg_slice_at(&s, 5), 99);
    /* full slice expression: cap limited, append reallocates */
    CU_ASSERT_EQUAL_FATAL(rg_slice_sub3(&w, &s, 2, 4, 4), 0);
    CU_ASSERT_EQUAL(w.cap, 2);
    rg_slice_append(&w, &x);
    CU_ASSERT_EQUAL(*(uint32_t *)rg_slice_at(&s, 4), 4); /* untouched */
    CU_ASSERT((char *)w.ptr < (char *)s.ptr || (char *)w.ptr >= (char *)s.ptr + 64);
    CU_ASSERT_EQUAL(w.flags & RG_SLICE_VIEW, 0); /* owns its new array */
    rg_slice_free(&w);
    /* a view that grows never frees the borrowed array (it first fills
     * s[6:16] in place, as Go's append would) */
    for (int i = 0; i < 40; i++)
        rg_slice_append(&v, &x);
    CU_ASSERT_EQUAL(*(uint32_t *)rg_slice_at(&s, 9), 99);
    CU_ASSERT_EQUAL(*(uint32_t *)rg_slice_at(&s, 1), 1);
    rg_slice_free(&v);
    /* bounds: to may exceed len up to cap, as in Go */
    CU_ASSERT_EQUAL(rg_slice_sub(&v, &s, 0, 16), 0);
    CU_ASSERT_EQUAL(v.len, 16);
    CU_ASSERT_EQUAL(rg_slice_sub(&v, &s, 0, 17), -EINVAL);
    CU_ASSERT_EQUAL(rg_slice_sub(&v, &s, 5, 4), -EINVAL);
    CU_ASSERT_EQUAL(rg_slice_sub3(&v, &s, 0, 5, 4), -EINVAL);
    CU_ASSERT_EQUAL(rg_slice_sub3(&v, &s, 0, 4, 17), -EINVAL);
    CU_ASSERT_EQUAL(rg_slice_sub(&v, NULL, 0, 0), -EINVAL);
    CU_ASSERT_EQUAL(rg_slice_sub(&v, &s, 16, 16), 0);
    CU_ASSERT_EQUAL(v.cap, 0);
    /* set_len */
    CU_ASSERT_EQUAL(rg_slice_set_len(&s, 3), 0);
    CU_ASSERT_PTR_NULL(rg_slice_at(&s, 3));
    CU_ASSERT_EQUAL(rg_slice_set_len(&s, 16), 0);
    CU_ASSERT_EQUAL(*(uint32_t *)rg_slice_at(&s, 2), 2); /* s[:n] exposes contents */
    CU_ASSERT_EQUAL(*(uint32_t *)rg_slice_at(&s, 15), 99);
    CU_ASSERT_EQUAL(rg_slice_set_len(&s, 17), -EINVAL);
    CU_ASSERT_EQUAL(rg_slice_grow(&s, 100), 0);
    CU_ASSERT(s.cap >= 116);
    CU_ASSERT_EQUAL(s.len, 16);
    CU_ASSERT_EQUAL(*(uint32_t *)rg_slice_at(&s, 2), 2);
    CU_ASSERT_EQUAL(rg_slice_set_len(&s, 116), 0);
    CU_ASSERT_EQUAL(*(uint32_t *)rg_slice_at(&s, 115), 0); /* growth zeroes [len, cap) */
    rg_slice_free(&s);
}

static void test_region_slices(void)
{
    rg_region *r = rg_region_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    rg_slice s;
    for (int round = 0; round < 3; round++) {
        CU_ASSERT_EQUAL_FATAL(rg_slice_make(&s, r, 8, 0, 0), 0);
        for (uint64_t i = 0; i < 100000; i++)
            CU_ASSERT_PTR_NOT_NULL_FATAL(rg_slice_append(&s, &i));
        CU_ASSERT(rg_owns(s.ptr));
        CU_ASSERT_EQUAL(*(uint64_t *)rg_slice_at(&s, 99999), 99999);
        CU_ASSERT(rg_region_size(r) >= s.cap * 8);
        rg_slice_free(&s); /* no-op on a region */
        rg_region_reset(r);
    }
    rg_region_free(r);
}

/* Heap slices: the collector traces the array through the rooted ptr and
 * each element's pointer field, across growth and collections. */
typedef struct hobj { uint64_t magic, pad; } hobj;
typedef struct helem { hobj *obj; uint64_t i; } helem;
static const rg_type hobj_t = {.name = "hobj", .size = sizeof(hobj)};
static const size_t helem_ptrs[] = {0};
static const rg_type helem_t = {.name = "helem", .size = sizeof(helem), .ptr_offsets = helem_ptrs, .nptrs = 1};

static void test_heap_slices(void)
{
    rg_slice s;
    CU_ASSERT_EQUAL(rg_slice_make_heap(&s, NULL, 0, 0), -EINVAL);
    CU_ASSERT_EQUAL(rg_slice_make_heap(&s, &helem_t, 2, 1), -EINVAL);
    CU_ASSERT_EQUAL_FATAL(rg_slice_make_heap(&s, &helem_t, 0, 0), 0);
    CU_ASSERT_EQUAL(s.elem_size, sizeof(helem));
    rg_root *root = rg_root_add(&s.ptr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    enum { N = 20000 };
    for (uint64_t i = 0; i < N; i++) {
        hobj *o = rg_new(&hobj_t);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        o->magic = i ^ 0x5a5a5a5a5a5a5a5aull;
        helem e = {o, i};
        CU_ASSERT_PTR_NOT_NULL_FATAL(rg_slice_append(&s, &e));
        if (i % 4000 == 3999)
            rg_gc(); /* collections while the slice grows */
    }
    rg_gc();
    rg_gc();
    int bad = 0;
    for (uint64_t i = 0; i < N; i++) {
        helem *e = rg_slice_at(&s, i);
        bad += e->i != i || e->obj == NULL || e->obj->magic != (i ^ 0x5a5a5a5a5a5a5a5aull);
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* views start at 0 only; a clone is plain memory */
    rg_slice v;
    CU_ASSERT_EQUAL(rg_slice_sub(&v, &s, 0, 10), 0);
    CU_ASSERT_EQUAL(rg_slice_sub(&v, &s, 1, 10), -EINVAL);
    rg_slice c;
    CU_ASSERT_EQUAL_FATAL(rg_slice_clone(&c, &s, 5, 7, NULL), 0);
    CU_ASSERT_PTR_NULL(c.type);
    CU_ASSERT_EQUAL(((helem *)rg_slice_at(&c, 1))->i, 6);
    rg_slice_free(&c);
    rg_slice_free(&s); /* forgets: the collector frees it */
    rg_root_remove(root);
    rg_gc();
}

int main(void)
{
    static const cu_test tests[] = {
        {"growth matches Go 1.19 for sizes 1, 3, 8, 12, 24, 100", test_growth_matches_go},
        {"append_n and next_cap match Go", test_append_many_matches_go},
        {"make, at, preallocation, nil slice", test_make_and_at},
        {"bad input: NULL, zero elem_size, overflow", test_bad_input},
        {"append of the slice's own elements", test_append_self_alias},
        {"clone copies out (the leak fix)", test_clone_leak_fix},
        {"sub-slices, views and set_len", test_sub_slices},
        {"slices on a region", test_region_slices},
        {"slices on the collected heap", test_heap_slices},
        {NULL, NULL},
    };
    return cu_run("slice", tests);
}
