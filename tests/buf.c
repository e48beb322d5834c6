/* tests/buf.c — rg_buf (Go's bytes.Buffer): contents, Go's append growth,
 * reset/truncate, pooled backing arrays, the right-sized copy that keeps no
 * big array alive, and bad input. */
#include "cu.h"
#include "internal.h"

#include <stdint.h>

static void test_write_and_contents(void)
{
    rg_buf b = RG_BUF_INIT;
    CU_ASSERT_EQUAL(rg_buf_len(&b), 0);
    CU_ASSERT_EQUAL(rg_buf_cap(&b), 0);
    CU_ASSERT_EQUAL(rg_buf_write_str(&b, "hello, "), 0);
    CU_ASSERT_EQUAL(rg_buf_write(&b, "world", 5), 0);
    CU_ASSERT_EQUAL(rg_buf_write_byte(&b, '!'), 0);
    CU_ASSERT_EQUAL(rg_buf_len(&b), 13);
    CU_ASSERT(memcmp(rg_buf_bytes(&b), "hello, world!", 13) == 0);
    CU_ASSERT(rg_buf_cap(&b) >= 13);
    for (int i = 0; i < 100000; i++)
        CU_ASSERT_EQUAL_FATAL(rg_buf_write_byte(&b, (unsigned char)i), 0);
    int bad = 0;
    for (int i = 0; i < 100000; i++)
        bad += rg_buf_bytes(&b)[13 + i] != (unsigned char)i;
    CU_ASSERT_EQUAL(bad, 0);
    rg_buf_free(&b);
    CU_ASSERT_EQUAL(rg_buf_len(&b), 0);
    CU_ASSERT_PTR_NULL(rg_buf_bytes(&b));
}

static void test_go_growth(void)
{
    rg_buf b;
    rg_buf_init(&b);
    size_t prev = 0;
    int steps = 0, small_ok = 1, big_ok = 1;
    for (size_t i = 0; i < (1u << 20); i++) {
        rg_buf_write_byte(&b, 1);
        size_t cap = rg_buf_cap(&b);
        if (cap == prev)
            continue;
        steps++;
        if (prev && prev < 256 && cap < 2 * prev)
            small_ok = 0; /* doubles while small */
        if (prev >= 4096 && (double)cap > 1.5 * (double)prev)
            big_ok = 0; /* about 1.25x once big (plus class rounding) */
        if (prev >= 4096 && (double)cap < 1.2 * (double)prev)
            big_ok = 0;
        prev = cap;
    }
    CU_ASSERT(small_ok);
    CU_ASSERT(big_ok);
    CU_ASSERT(steps > 15 && steps < 60);
    /* a big single write jumps straight to what it needs */
    rg_buf c = RG_BUF_INIT;
    rg_buf_write_byte(&c, 1);
    CU_ASSERT_EQUAL(rg_buf_grow(&c, 10000), 0);
    CU_ASSERT(rg_buf_cap(&c) >= 10001 && rg_buf_cap(&c) < 13000);
    size_t cap = rg_buf_cap(&c);
    CU_ASSERT_EQUAL(rg_buf_grow(&c, 100), 0); /* room already: no change */
    CU_ASSERT_EQUAL(rg_buf_cap(&c), cap);
    rg_buf_free(&c);
    rg_buf_free(&b);
}

static void test_reset_truncate(void)
{
    rg_buf b = RG_BUF_INIT;
    rg_buf_write_str(&b, "abcdef");
    size_t cap = rg_buf_cap(&b);
    CU_ASSERT_EQUAL(rg_buf_truncate(&b, 3), 0);
    CU_ASSERT_EQUAL(rg_buf_len(&b), 3);
    CU_ASSERT_EQUAL(rg_buf_truncate(&b, 4), -EINVAL);
    rg_buf_write_str(&b, "XY");
    CU_ASSERT(memcmp(rg_buf_bytes(&b), "abcXY", 5) == 0);
    rg_buf_reset(&b);
    CU_ASSERT_EQUAL(rg_buf_len(&b), 0);
    CU_ASSERT_EQUAL(rg_buf_cap(&b), cap); /* the array is kept */
    rg_buf_free(&b);
}

static void test_pooled_arrays_reused(void)
{
    rg_buf a = RG_BUF_INIT;
    rg_buf_grow(&a, 3000);
    unsigned char *arr = rg_buf_bytes(&a);
    rg_buf_free(&a); /* back to its class pool */
    rg_buf b = RG_BUF_INIT;
    rg_buf_grow(&b, 3000);
    CU_ASSERT_PTR_EQUAL(rg_buf_bytes(&b), arr);
    rg_buf_free(&b);
    /* above 32 KiB: straight from regio */
    rg_buf big = RG_BUF_INIT;
    CU_ASSERT_EQUAL(rg_buf_grow(&big, 100000), 0);
    CU_ASSERT_EQUAL(rg_buf_cap(&big) % 4096, 0);
    rg_buf_free(&big);
}

static void test_copy_is_right_sized(void)
{
    rg_buf b = RG_BUF_INIT;
    for (int i = 0; i < 30000; i++)
        rg_buf_write_byte(&b, (unsigned char)('a' + i % 26));
    char *piece = rg_buf_copy(&b, 26, 10);
    CU_ASSERT_PTR_NOT_NULL_FATAL(piece);
    CU_ASSERT(memcmp(piece, "abcdefghij", 10) == 0);
    CU_ASSERT(rg_usable_size(piece) < 64); /* not the 30 KB array */
    rg_buf_free(&b);                       /* the big array goes back ... */
    CU_ASSERT(memcmp(piece, "abcdefghij", 10) == 0); /* ... the piece lives on */
    rg_free(piece);
    rg_buf_write_str(&b, "xy");
    errno = 0;
    CU_ASSERT_PTR_NULL(rg_buf_copy(&b, 1, 2));
    CU_ASSERT_EQUAL(errno, EINVAL);
    void *empty = rg_buf_copy(&b, 2, 0);
    CU_ASSERT_PTR_NOT_NULL(empty);
    rg_free(empty);
    rg_buf_free(&b);
}

static void test_bad_input(void)
{
    CU_ASSERT_EQUAL(rg_buf_grow(NULL, 1), -EINVAL);
    CU_ASSERT_EQUAL(rg_buf_write(NULL, "x", 1), -EINVAL);
    rg_buf b = RG_BUF_INIT;
    CU_ASSERT_EQUAL(rg_buf_write(&b, NULL, 1), -EINVAL);
    CU_ASSERT_EQUAL(rg_buf_write(&b, NULL, 0), 0);
    CU_ASSERT_EQUAL(rg_buf_write_str(&b, NULL), -EINVAL);
    CU_ASSERT_EQUAL(rg_buf_grow(&b, SIZE_MAX), -EOVERFLOW);
    CU_ASSERT_EQUAL(rg_buf_truncate(NULL, 0), -EINVAL);
    CU_ASSERT_PTR_NULL(rg_buf_copy(NULL, 0, 0));
    CU_ASSERT_EQUAL(rg_buf_len(NULL), 0);
    CU_ASSERT_EQUAL(rg_buf_cap(NULL), 0);
    rg_buf_reset(NULL);
    rg_buf_free(NULL);
    rg_buf_init(NULL);
    rg_buf_free(&b);
}

int main(void)
{
    static const cu_test tests[] = {
        {"write, contents, len", test_write_and_contents},
        {"Go's append growth", test_go_growth},
        {"reset keeps the array, truncate", test_reset_truncate},
        {"backing arrays are pooled", test_pooled_arrays_reused},
        {"copy is right-sized and outlives the buffer", test_copy_is_right_sized},
        {"bad input is refused", test_bad_input},
        {NULL, NULL},
    };
    return cu_run("buf", tests);
}
