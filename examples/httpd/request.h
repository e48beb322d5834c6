/* examples/httpd/request.h — the request path, free of I/O: parse one
 * header block, decide the answer's status, resolve the path and the Range.
 * Shared by the server and the fuzz target (tests/httpd_fuzz.c). */
#ifndef HTTPD_REQUEST_H
#define HTTPD_REQUEST_H

#include <regio.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPD_MAX_HEADER 8192 /* request line + headers; more is 431 */

typedef struct req {
    int status;         /* 0: serve the file; else the error status to answer */
    bool head;          /* HEAD: no body */
    bool keepalive;     /* the connection may serve another request */
    char *path;         /* decoded, relative to the root ("" = the root); in the region */
    const char *range;  /* the Range header value, NUL-terminated, or NULL */
} req;

/* Parses the header block buf[0, n) (ending in CRLF CRLF) into *q, with
 * strings in region r (malloc when r is NULL; free with req_free).
 * Statuses: 400 malformed or a path leaving the root, 405 method,
 * 413 a request body, 505 HTTP version.  Always returns 0 or -ENOMEM. */
int req_parse(const char *buf, size_t n, rg_region *r, req *q);
void req_free(req *q, rg_region *r);

/* Resolves a Range header against a file of `size` bytes: 0 = no usable
 * range (serve all: absent, malformed or several ranges, which RFC 9110
 * lets a server ignore), 206 with [*from, *to] inclusive, 416 unsatisfiable. */
int req_range(const char *range, uint64_t size, uint64_t *from, uint64_t *to);

/* Index of the end of the header block (just past CRLF CRLF) in buf[0, n),
 * or 0 if it is not complete yet. */
size_t req_header_end(const char *buf, size_t n);

#endif
