/* tests/httpd_fuzz.c — libFuzzer target for examples/httpd's request path:
 * header-block detection, parsing, path decoding and the traversal check,
 * and Range resolution, on arbitrary bytes.  Invariants checked: an
 * accepted path never holds a ".." segment, a NUL or a backslash, and a
 * satisfiable range lies inside the file.
 * Build: clang with -Db_sanitize=none (meson builds it when supported);
 * run: httpd_fuzz -max_total_time=30 */
#define _GNU_SOURCE
#include "request.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rg_region *r;
    if (r == NULL)
        r = rg_region_new();
    const char *buf = (const char *)data;
    size_t end = req_header_end(buf, size);
    req q;
    if (req_parse(buf, end ? end : size, r, &q) == 0 && q.status == 0) {
        const char *p = q.path;
        if (strchr(p, '\\') || strstr(p, "/../") || strncmp(p, "../", 3) == 0 || strcmp(p, "..") == 0 ||
            (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0))
            abort();
        uint64_t sizes[] = {0, 1, 13, 1u << 20};
        for (int i = 0; i < 4; i++) {
            uint64_t from = 0, to = 0;
            int st = req_range(q.range, sizes[i], &from, &to);
            if (st == 206 && (from > to || to >= sizes[i]))
                abort();
        }
    }
    rg_region_reset(r);
    return 0;
}
