/* examples/httpd/request.c — parsing with Node's http-parser (Debian's
 * libhttp-parser), then path decoding and the traversal check: the decoded
 * path is split on '/', and any ".." segment, NUL byte or backslash is a
 * 400; the server then opens it beneath the root with RESOLVE_BENEATH, so a
 * symlink cannot leave the root either. */
#define _GNU_SOURCE
#include "request.h"

#include <errno.h>
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

typedef struct pctx {
    rg_region *r;
    const char *url;
    size_t url_len;
    const char *hfield;
    size_t hfield_len;
    const char *range;
    size_t range_len;
    int nranges;
    bool in_range;
    bool done;
} pctx;

static int on_url(http_parser *p, const char *at, size_t len)
{
    pctx *c = p->data;
    if (c->url == NULL)
        c->url = at;
    c->url_len = (size_t)(at + len - c->url); /* the block is contiguous */
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    pctx *c = p->data;
    c->in_range = len == 5 && strncasecmp(at, "range", 5) == 0;
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    pctx *c = p->data;
    if (c->in_range) {
        c->range = at;
        c->range_len = len;
        c->nranges++;
        c->in_range = false;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    ((pctx *)p->data)->done = true;
    return 0;
}

static char *dup_n(rg_region *r, const char *s, size_t n)
{
    if (r)
        return rg_strndup(r, s, n);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decodes p in place; false on a bad escape or a NUL. */
static bool decode(char *p)
{
    char *w = p;
    for (char *s = p; *s; s++) {
        if (*s == '%') {
            int h = hexval(s[1]), l = h >= 0 ? hexval(s[2]) : -1;
            if (l < 0 || (h == 0 && l == 0))
                return false;
            *w++ = (char)(h * 16 + l);
            s += 2;
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
    return true;
}

/* Removes the leading '/', refuses any ".." segment or backslash. */
static bool safe_path(char *p, char **out)
{
    if (p[0] != '/')
        return false;
    if (strchr(p, '\\'))
        return false;
    for (char *s = p; *s;) {
        while (*s == '/')
            s++;
        char *e = strchrnul(s, '/');
        if (e - s == 2 && s[0] == '.' && s[1] == '.')
            return false;
        s = e;
    }
    while (*p == '/')
        p++;
    *out = p;
    return true;
}

size_t req_header_end(const char *buf, size_t n)
{
    const char *e = memmem(buf, n, "\r\n\r\n", 4);
    return e ? (size_t)(e - buf) + 4 : 0;
}

int req_parse(const char *buf, size_t n, rg_region *r, req *q)
{
    static http_parser_settings settings = {
        .on_url = on_url, .on_header_field = on_field, .on_header_value = on_value,
        .on_headers_complete = on_headers_complete};
    memset(q, 0, sizeof *q);
    http_parser p;
    http_parser_init(&p, HTTP_REQUEST);
    pctx c;
    memset(&c, 0, sizeof c);
    c.r = r;
    p.data = &c;
    http_parser_execute(&p, &settings, buf, n);
    if (HTTP_PARSER_ERRNO(&p) != HPE_OK || !c.done || c.url == NULL) {
        q->status = 400;
        return 0;
    }
    q->keepalive = http_should_keep_alive(&p) != 0;
    if (p.http_major != 1) {
        q->status = 505;
        q->keepalive = false;
        return 0;
    }
    bool body = (p.flags & F_CHUNKED) || (p.content_length != 0 && p.content_length != UINT64_MAX);
    if (p.method != HTTP_GET && p.method != HTTP_HEAD) {
        q->status = 405;
        if (body)
            q->keepalive = false; /* its body is not read: the stream is lost */
        return 0;
    }
    if (body) {
        q->status = 413;
        q->keepalive = false;
        return 0;
    }
    q->head = p.method == HTTP_HEAD;
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(c.url, c.url_len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH))) {
        q->status = 400;
        return 0;
    }
    char *path = dup_n(r, c.url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    if (path == NULL)
        return -ENOMEM;
    char *rel;
    if (!decode(path) || !safe_path(path, &rel)) {
        q->status = 400;
        if (!r)
            free(path);
        return 0;
    }
    q->path = path;
    memmove(path, rel, strlen(rel) + 1);
    if (c.nranges == 1) {
        char *rg = dup_n(r, c.range, c.range_len);
        if (rg == NULL)
            return -ENOMEM;
        q->range = rg;
    }
    return 0;
}

void req_free(req *q, rg_region *r)
{
    if (r == NULL) {
        free(q->path);
        free((char *)q->range);
    }
    q->path = NULL;
    q->range = NULL;
}

static bool parse_u64(const char **s, uint64_t *v)
{
    const char *p = *s;
    uint64_t x = 0;
    if (*p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9') {
        if (x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(*p++ - '0');
    }
    *s = p;
    *v = x;
    return true;
}

int req_range(const char *range, uint64_t size, uint64_t *from, uint64_t *to)
{
    if (range == NULL)
        return 0;
    const char *s = range;
    while (*s == ' ')
        s++;
    if (strncasecmp(s, "bytes=", 6) != 0)
        return 0;
    s += 6;
    if (strchr(s, ','))
        return 0; /* several ranges: serve the whole file */
    uint64_t a, b;
    if (*s == '-') { /* suffix: the last b bytes */
        s++;
        if (!parse_u64(&s, &b) || *s)
            return 0;
        if (b == 0 || size == 0)
            return 416;
        *from = b >= size ? 0 : size - b;
        *to = size - 1;
        return 206;
    }
    if (!parse_u64(&s, &a) || *s != '-')
        return 0;
    s++;
    if (*s == '\0') {
        b = UINT64_MAX;
    } else if (!parse_u64(&s, &b) || *s || b < a) {
        return 0;
    }
    if (a >= size)
        return 416;
    *from = a;
    *to = b >= size ? size - 1 : b;
    return 206;
}
