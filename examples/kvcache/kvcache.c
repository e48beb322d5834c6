/* examples/kvcache — a memcached-compatible (ASCII protocol) cache server on
 * regio.
 *
 * Threads: -t N event loops, each an epoll instance over the one shared
 * listening socket (EPOLLEXCLUSIVE, so one loop wakes per connection) and
 * the connections it accepted.  This first landing uses epoll, not io_uring:
 * a readiness loop was what could be made correct in the time; the io_uring
 * loop of examples/httpd is the next step.
 *
 * Memory:
 *   - each connection has an rg_region; every reply of a batch of pipelined
 *     requests is assembled in it and the region is reset once the batch is
 *     sent, so parsing and response assembly never call malloc;
 *   - items (header, key, value) are rg_malloc'd objects, indexed by a
 *     standalone rg_map per shard (16 shards, one mutex each: rg_map is
 *     single-threaded).  They are not on the collected heap yet: items have
 *     explicit lifetimes (delete, overwrite, evict), which rg_free expresses
 *     directly; moving them to rg_new + roots is left for a later landing.
 *   - -m MiB is regio's hard limit (rg_set_memory_limit).  Items are evicted
 *     per shard in LRU order once the items' bytes pass half the limit (the
 *     rest is headroom for size-class rounding, maps, regions and input
 *     buffers), and again whenever an allocation fails, so under a normal
 *     load a store never fails.
 *
 * Protocol: memcached's ASCII protocol (protocol.txt of memcached): get,
 * gets, set, add, replace, append, prepend, cas, delete, incr, decr, touch,
 * flush_all, stats, version, verbosity, quit, noreply.  Exptime: 0 never,
 * negative already expired, up to 30 days relative, beyond that a Unix time.
 *
 * Usage: kvcache [-p PORT] [-t THREADS] [-m MiB] [-l 127.0.0.1] [-D ADDR]
 *   -p 0 takes an ephemeral port; the port is printed as "port N".
 *   -D ADDR serves regio's debug endpoint and live dashboard (/debug/regio,
 *   rg_debug_serve) on ADDR, e.g. 127.0.0.1:0; printed as "debug port N".
 */
#define _GNU_SOURCE
#include <regio.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define KEY_MAX 250
#define ITEM_MAX (1024 * 1024)     /* largest value, like memcached's -I 1m */
#define LINE_MAX_LEN 8192          /* longest command line */
#define NSHARD 16
#define REL_MAX 2592000            /* 30 days: exptimes above are absolute */

typedef struct item {
    struct item *prev, *next; /* shard LRU, head = most recent */
    uint64_t cas;
    int64_t exp;              /* absolute seconds, 0 = never */
    int64_t stime;            /* when stored, for delayed flush_all */
    uint32_t flags, nkey, nbytes; /* nbytes without the trailing \r\n */
    char data[];              /* key, then value + "\r\n" */
} item;

typedef struct shard {
    pthread_mutex_t mu;
    rg_map *map;
    item *head, *tail;
    size_t bytes;
} shard;

static shard shards[NSHARD];
static size_t shard_budget;            /* item bytes per shard before eviction */
static _Atomic uint64_t cas_next = 1;  /* cas uniques; relaxed: only unique */
static _Atomic int64_t flush_at;       /* delayed flush_all deadline, 0 none */
static int64_t start_time;
static int listen_fd;
static int nthreads = 4;
static int64_t limit_mib = 64;

/* Counters: relaxed atomics, read only by `stats` (no ordering needed). */
static _Atomic uint64_t st_get, st_hits, st_set, st_evict, st_curr_conns, st_total_conns,
    st_del_hits, st_del_miss, st_incr_hits, st_incr_miss, st_decr_hits, st_decr_miss,
    st_cas_hits, st_cas_miss, st_cas_bad, st_touch_hits, st_touch_miss, st_flush, st_rd, st_wr;
#define BUMP(c) atomic_fetch_add_explicit(&(c), 1, memory_order_relaxed)
#define LOAD(c) atomic_load_explicit(&(c), memory_order_relaxed)

static int64_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return ts.tv_sec;
}

static uint64_t hash_key(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
    return h;
}

static shard *shard_of(const char *k, size_t n) { return &shards[hash_key(k, n) % NSHARD]; }

static size_t item_size(const item *it) { return sizeof(item) + it->nkey + it->nbytes + 2; }

static void lru_unlink(shard *s, item *it)
{
    if (it->prev) it->prev->next = it->next; else s->head = it->next;
    if (it->next) it->next->prev = it->prev; else s->tail = it->prev;
    it->prev = it->next = NULL;
}

static void lru_push(shard *s, item *it)
{
    it->prev = NULL;
    it->next = s->head;
    if (s->head) s->head->prev = it; else s->tail = it;
    s->head = it;
}

/* Removes it from s (map, LRU, byte count) and frees it.  Lock held. */
static void item_drop(shard *s, item *it)
{
    rg_map_del(s->map, it->data, it->nkey);
    lru_unlink(s, it);
    s->bytes -= item_size(it);
    rg_free(it);
}

static int item_live(const item *it, int64_t now)
{
    if (it->exp && it->exp <= now) return 0;
    int64_t f = atomic_load_explicit(&flush_at, memory_order_relaxed);
    if (f && now >= f && it->stime <= f) return 0;
    return 1;
}

/* The live item for key, or NULL (an expired one is dropped).  Lock held. */
static item *lookup(shard *s, const char *k, size_t n, int64_t now)
{
    item *it = rg_map_get(s->map, k, n);
    if (!it) return NULL;
    if (!item_live(it, now)) { item_drop(s, it); return NULL; }
    return it;
}

/* A new item, evicting from s's LRU tail when over budget or when the
 * allocation fails.  Lock held.  NULL when nothing is left to evict. */
static item *item_alloc(shard *s, const char *k, size_t nk, size_t nbytes)
{
    size_t sz = sizeof(item) + nk + nbytes + 2;
    while (s->tail && s->bytes + sz > shard_budget) { item_drop(s, s->tail); BUMP(st_evict); }
    item *it;
    while (!(it = rg_malloc(sz))) {
        if (!s->tail) return NULL;
        item_drop(s, s->tail);
        BUMP(st_evict);
    }
    memset(it, 0, sizeof *it);
    it->nkey = (uint32_t)nk;
    it->nbytes = (uint32_t)nbytes;
    memcpy(it->data, k, nk);
    return it;
}

/* Links a new item in place of old (may be NULL).  Lock held.  Returns 0 or
 * -ENOMEM (the map could not grow: the item is freed, old stays). */
static int item_link(shard *s, item *it, item *old, int64_t now)
{
    it->cas = atomic_fetch_add_explicit(&cas_next, 1, memory_order_relaxed);
    it->stime = now;
    if (rg_map_put(s->map, it->data, it->nkey, it) < 0) { rg_free(it); return -ENOMEM; }
    if (old) { lru_unlink(s, old); s->bytes -= item_size(old); rg_free(old); }
    lru_push(s, it);
    s->bytes += item_size(it);
    return 0;
}

/* ---- connections ---------------------------------------------------- */

typedef struct conn {
    int fd;
    rg_region *r;          /* replies of the current batch */
    char *in; size_t in_len, in_cap;
    char *out; size_t out_len, out_cap, out_off;
    size_t swallow;        /* bytes of a rejected value still to skip */
    int closing;
    int want_out;          /* registered for EPOLLOUT instead of EPOLLIN */
} conn;

static void out_put(conn *c, const void *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap * 2 : 4096;
        while (cap < c->out_len + n) cap *= 2;
        char *o = rg_alloc(c->r, cap); /* the old buffer stays in the region until reset */
        if (!o) { c->closing = 1; return; }
        if (c->out_len) memcpy(o, c->out, c->out_len);
        c->out = o; c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static void out_str(conn *c, const char *s) { out_put(c, s, strlen(s)); }

static void out_fmt(conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_fmt(conn *c, const char *fmt, ...)
{
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    if (n > 0) out_put(c, b, (size_t)n < sizeof b ? (size_t)n : sizeof b - 1);
}

static int tokenize(char *line, char **tok, int max)
{
    int n = 0;
    char *p = line;
    while (*p) {
        while (*p == ' ') p++;
        if (!*p) break;
        if (n == max) return max + 1;
        tok[n++] = p;
        while (*p && *p != ' ') p++;
        if (*p) *p++ = 0;
    }
    return n;
}

static int parse_u64(const char *s, uint64_t *v)
{
    if (!*s || *s == '-') return -1;
    char *e;
    errno = 0;
    unsigned long long x = strtoull(s, &e, 10);
    if (*e || errno) return -1;
    *v = x;
    return 0;
}

static int parse_i64(const char *s, int64_t *v)
{
    if (!*s) return -1;
    char *e;
    errno = 0;
    long long x = strtoll(s, &e, 10);
    if (*e || errno) return -1;
    *v = x;
    return 0;
}

static int64_t abs_exp(int64_t e, int64_t now)
{
    if (e == 0) return 0;
    if (e < 0) return now - 1;
    if (e > REL_MAX) return e <= now ? now - 1 : e;
    return now + e;
}

enum { CMD_SET, CMD_ADD, CMD_REPLACE, CMD_APPEND, CMD_PREPEND, CMD_CAS };

static void do_get(conn *c, char **tok, int nt, int with_cas)
{
    int64_t now = now_s();
    if (nt < 2) { out_str(c, "ERROR\r\n"); return; }
    for (int i = 1; i < nt; i++) {
        size_t nk = strlen(tok[i]);
        if (nk > KEY_MAX) { out_str(c, "CLIENT_ERROR bad command line format\r\n"); return; }
        shard *s = shard_of(tok[i], nk);
        BUMP(st_get);
        pthread_mutex_lock(&s->mu);
        item *it = lookup(s, tok[i], nk, now);
        if (it) {
            BUMP(st_hits);
            lru_unlink(s, it); lru_push(s, it);
            if (with_cas)
                out_fmt(c, "VALUE %s %" PRIu32 " %" PRIu32 " %" PRIu64 "\r\n", tok[i], it->flags, it->nbytes, it->cas);
            else
                out_fmt(c, "VALUE %s %" PRIu32 " %" PRIu32 "\r\n", tok[i], it->flags, it->nbytes);
            out_put(c, it->data + it->nkey, it->nbytes + 2);
        }
        pthread_mutex_unlock(&s->mu);
    }
    out_str(c, "END\r\n");
}

/* A storage command whose data block (nbytes + "\r\n") is at data. */
static void do_store(conn *c, int cmd, const char *key, uint32_t flags, int64_t exptime,
                     const char *data, size_t nbytes, uint64_t casv, int noreply)
{
    const char *reply;
    int64_t now = now_s();
    size_t nk = strlen(key);
    shard *s = shard_of(key, nk);
    BUMP(st_set);
    pthread_mutex_lock(&s->mu);
    item *old = lookup(s, key, nk, now);
    item *it = NULL;
    if ((cmd == CMD_ADD && old) || ((cmd == CMD_REPLACE || cmd == CMD_APPEND || cmd == CMD_PREPEND) && !old)) {
        reply = "NOT_STORED\r\n";
        if (old && cmd == CMD_ADD) { lru_unlink(s, old); lru_push(s, old); }
    } else if (cmd == CMD_CAS && !old) {
        BUMP(st_cas_miss);
        reply = "NOT_FOUND\r\n";
    } else if (cmd == CMD_CAS && old->cas != casv) {
        BUMP(st_cas_bad);
        reply = "EXISTS\r\n";
    } else {
        size_t total = nbytes;
        if (cmd == CMD_APPEND || cmd == CMD_PREPEND) total += old->nbytes;
        if (total > ITEM_MAX) { reply = "SERVER_ERROR object too large for cache\r\n"; goto out; }
        /* Keep old out of eviction's reach while the new one is allocated. */
        if (old) lru_unlink(s, old);
        it = item_alloc(s, key, nk, total);
        if (old) lru_push(s, old);
        if (!it) { reply = "SERVER_ERROR out of memory storing object\r\n"; goto out; }
        char *v = it->data + nk;
        if (cmd == CMD_APPEND) {
            memcpy(v, old->data + old->nkey, old->nbytes);
            memcpy(v + old->nbytes, data, nbytes);
        } else if (cmd == CMD_PREPEND) {
            memcpy(v, data, nbytes);
            memcpy(v + nbytes, old->data + old->nkey, old->nbytes);
        } else {
            memcpy(v, data, nbytes);
        }
        memcpy(v + total, "\r\n", 2);
        if (cmd == CMD_APPEND || cmd == CMD_PREPEND) { it->flags = old->flags; it->exp = old->exp; }
        else { it->flags = flags; it->exp = abs_exp(exptime, now); }
        if (item_link(s, it, old, now) < 0) reply = "SERVER_ERROR out of memory storing object\r\n";
        else {
            reply = "STORED\r\n";
            if (cmd == CMD_CAS) BUMP(st_cas_hits);
        }
    }
out:
    pthread_mutex_unlock(&s->mu);
    if (!noreply) out_str(c, reply);
}

static void do_arith(conn *c, char **tok, int nt, int incr)
{
    int noreply = nt == 4 && !strcmp(tok[3], "noreply");
    if (nt != 3 && !noreply) { out_str(c, "ERROR\r\n"); return; }
    size_t nk = strlen(tok[1]);
    if (nk > KEY_MAX) { out_str(c, "CLIENT_ERROR bad command line format\r\n"); return; }
    uint64_t delta, v;
    if (parse_u64(tok[2], &delta)) { out_str(c, "CLIENT_ERROR invalid numeric delta argument\r\n"); return; }
    int64_t now = now_s();
    shard *s = shard_of(tok[1], nk);
    char buf[32];
    const char *reply = buf;
    pthread_mutex_lock(&s->mu);
    item *old = lookup(s, tok[1], nk, now);
    if (!old) {
        BUMP(*(incr ? &st_incr_miss : &st_decr_miss));
        reply = "NOT_FOUND\r\n";
        goto out;
    }
    char num[24];
    if (old->nbytes == 0 || old->nbytes > 20) goto nonnum;
    memcpy(num, old->data + old->nkey, old->nbytes);
    num[old->nbytes] = 0;
    /* memcached's decr pads in place with spaces: accept trailing blanks */
    for (int i = (int)old->nbytes - 1; i > 0 && num[i] == ' '; i--) num[i] = 0;
    if (parse_u64(num, &v)) goto nonnum;
    BUMP(*(incr ? &st_incr_hits : &st_decr_hits));
    if (incr) v += delta; /* wraps at 2^64, like memcached */
    else v = delta > v ? 0 : v - delta;
    int n = snprintf(buf, sizeof buf, "%" PRIu64 "\r\n", v);
    lru_unlink(s, old);
    item *it = item_alloc(s, tok[1], nk, (size_t)n - 2);
    lru_push(s, old);
    if (!it) { reply = "SERVER_ERROR out of memory\r\n"; goto out; }
    memcpy(it->data + nk, buf, (size_t)n);
    it->flags = old->flags;
    it->exp = old->exp;
    if (item_link(s, it, old, now) < 0) reply = "SERVER_ERROR out of memory\r\n";
    goto out;
nonnum:
    reply = "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
out:
    pthread_mutex_unlock(&s->mu);
    if (!noreply) out_str(c, reply);
}

static void do_flush(int64_t delay)
{
    int64_t now = now_s();
    if (delay > 0) {
        atomic_store_explicit(&flush_at, abs_exp(delay, now), memory_order_relaxed);
        return;
    }
    atomic_store_explicit(&flush_at, 0, memory_order_relaxed);
    for (int i = 0; i < NSHARD; i++) {
        shard *s = &shards[i];
        pthread_mutex_lock(&s->mu);
        while (s->tail) item_drop(s, s->tail);
        pthread_mutex_unlock(&s->mu);
    }
}

static void do_stats(conn *c)
{
    rg_memstats ms;
    rg_read_memstats(&ms);
    int64_t now = now_s();
    size_t items = 0, bytes = 0;
    for (int i = 0; i < NSHARD; i++) {
        pthread_mutex_lock(&shards[i].mu);
        items += rg_map_len(shards[i].map);
        bytes += shards[i].bytes;
        pthread_mutex_unlock(&shards[i].mu);
    }
    out_fmt(c, "STAT pid %d\r\n", (int)getpid());
    out_fmt(c, "STAT uptime %" PRId64 "\r\n", now - start_time);
    out_fmt(c, "STAT time %" PRId64 "\r\n", now);
    out_str(c, "STAT version 1.6.21-regio\r\n");
    out_fmt(c, "STAT pointer_size %d\r\n", (int)(8 * sizeof(void *)));
    out_fmt(c, "STAT curr_connections %" PRIu64 "\r\n", LOAD(st_curr_conns));
    out_fmt(c, "STAT total_connections %" PRIu64 "\r\n", LOAD(st_total_conns));
    out_fmt(c, "STAT cmd_get %" PRIu64 "\r\n", LOAD(st_get));
    out_fmt(c, "STAT cmd_set %" PRIu64 "\r\n", LOAD(st_set));
    out_fmt(c, "STAT cmd_flush %" PRIu64 "\r\n", LOAD(st_flush));
    out_fmt(c, "STAT get_hits %" PRIu64 "\r\n", LOAD(st_hits));
    out_fmt(c, "STAT get_misses %" PRIu64 "\r\n", LOAD(st_get) - LOAD(st_hits));
    out_fmt(c, "STAT delete_misses %" PRIu64 "\r\n", LOAD(st_del_miss));
    out_fmt(c, "STAT delete_hits %" PRIu64 "\r\n", LOAD(st_del_hits));
    out_fmt(c, "STAT incr_misses %" PRIu64 "\r\n", LOAD(st_incr_miss));
    out_fmt(c, "STAT incr_hits %" PRIu64 "\r\n", LOAD(st_incr_hits));
    out_fmt(c, "STAT decr_misses %" PRIu64 "\r\n", LOAD(st_decr_miss));
    out_fmt(c, "STAT decr_hits %" PRIu64 "\r\n", LOAD(st_decr_hits));
    out_fmt(c, "STAT cas_misses %" PRIu64 "\r\n", LOAD(st_cas_miss));
    out_fmt(c, "STAT cas_hits %" PRIu64 "\r\n", LOAD(st_cas_hits));
    out_fmt(c, "STAT cas_badval %" PRIu64 "\r\n", LOAD(st_cas_bad));
    out_fmt(c, "STAT touch_hits %" PRIu64 "\r\n", LOAD(st_touch_hits));
    out_fmt(c, "STAT touch_misses %" PRIu64 "\r\n", LOAD(st_touch_miss));
    out_fmt(c, "STAT bytes_read %" PRIu64 "\r\n", LOAD(st_rd));
    out_fmt(c, "STAT bytes_written %" PRIu64 "\r\n", LOAD(st_wr));
    out_fmt(c, "STAT limit_maxbytes %" PRId64 "\r\n", limit_mib << 20);
    out_fmt(c, "STAT threads %d\r\n", nthreads);
    out_fmt(c, "STAT bytes %zu\r\n", bytes);
    out_fmt(c, "STAT curr_items %zu\r\n", items);
    out_fmt(c, "STAT evictions %" PRIu64 "\r\n", LOAD(st_evict));
    /* regio's own figures beside memcached's */
    out_fmt(c, "STAT regio_limit %" PRId64 "\r\n", ms.limit);
    out_fmt(c, "STAT regio_sys %" PRIu64 "\r\n", ms.sys);
    out_fmt(c, "STAT regio_rss %" PRIu64 "\r\n", ms.rss);
    out_fmt(c, "STAT regio_heap_alloc %" PRIu64 "\r\n", ms.heap_alloc);
    out_fmt(c, "STAT regio_heap_inuse %" PRIu64 "\r\n", ms.heap_inuse);
    out_fmt(c, "STAT regio_heap_objects %" PRIu64 "\r\n", ms.heap_objects);
    out_fmt(c, "STAT regio_region_inuse %" PRIu64 "\r\n", ms.region_inuse);
    out_fmt(c, "STAT regio_num_gc %" PRIu64 "\r\n", ms.num_gc);
    out_fmt(c, "STAT regio_pause_total_ns %" PRIu64 "\r\n", ms.pause_total_ns);
    /* the longest thread pause of the last 256 cycles (memstats keeps one
     * figure per cycle: that cycle's longest ack-and-flush) */
    uint64_t pmax = 0;
    for (uint64_t i = 0; i < ms.num_gc && i < 256; i++)
        if (ms.pause_ns[i] > pmax) pmax = ms.pause_ns[i];
    out_fmt(c, "STAT regio_pause_max_ns %" PRIu64 "\r\n", pmax);
    out_fmt(c, "STAT regio_gc_cpu_fraction %.4f\r\n", ms.gc_cpu_fraction);
    out_fmt(c, "STAT regio_limit_hits %" PRIu64 "\r\n", ms.limit_hits);
    out_fmt(c, "STAT regio_oom_fails %" PRIu64 "\r\n", ms.oom_fails);
    out_str(c, "END\r\n");
}

/* Runs complete commands in c->in.  Returns the bytes consumed. */
static size_t process(conn *c)
{
    size_t off = 0;
    while (off < c->in_len && !c->closing) {
        char *p = c->in + off;
        size_t avail = c->in_len - off;
        if (c->swallow) {
            size_t k = avail < c->swallow ? avail : c->swallow;
            c->swallow -= k; off += k;
            continue;
        }
        char *nl = memchr(p, '\n', avail);
        if (!nl) {
            if (avail > LINE_MAX_LEN) { out_str(c, "CLIENT_ERROR line too long\r\n"); c->closing = 1; }
            break;
        }
        size_t ll = (size_t)(nl - p);
        if (ll > LINE_MAX_LEN) { out_str(c, "CLIENT_ERROR line too long\r\n"); c->closing = 1; break; }
        char line[LINE_MAX_LEN + 1];
        memcpy(line, p, ll);
        if (ll && line[ll - 1] == '\r') ll--;
        line[ll] = 0;
        /* a token and its separator take 2 bytes: a full line never overflows,
         * so "get" takes as many keys as fit in a line */
        char *tok[LINE_MAX_LEN / 2 + 2];
        int nt = tokenize(line, tok, LINE_MAX_LEN / 2 + 1);
        size_t used = (size_t)(nl - p) + 1;
        if (nt == 0) { out_str(c, "ERROR\r\n"); off += used; continue; }
        const char *cmd = tok[0];
        int store = -1;
        if (!strcmp(cmd, "set")) store = CMD_SET;
        else if (!strcmp(cmd, "add")) store = CMD_ADD;
        else if (!strcmp(cmd, "replace")) store = CMD_REPLACE;
        else if (!strcmp(cmd, "append")) store = CMD_APPEND;
        else if (!strcmp(cmd, "prepend")) store = CMD_PREPEND;
        else if (!strcmp(cmd, "cas")) store = CMD_CAS;
        if (store >= 0) {
            int want = store == CMD_CAS ? 6 : 5;
            int noreply = nt == want + 1 && !strcmp(tok[want], "noreply");
            uint64_t fl, casv = 0;
            int64_t ex, nb;
            if ((nt != want && !noreply) || parse_u64(tok[2], &fl) || fl > UINT32_MAX ||
                parse_i64(tok[3], &ex) || parse_i64(tok[4], &nb) || nb < 0 ||
                (store == CMD_CAS && parse_u64(tok[5], &casv))) {
                out_str(c, "CLIENT_ERROR bad command line format\r\n");
                off += used;
                continue;
            }
            if (strlen(tok[1]) > KEY_MAX) {
                out_str(c, "CLIENT_ERROR bad command line format\r\n");
                off += used;
                c->swallow = (size_t)nb + 2;
                continue;
            }
            if (nb > ITEM_MAX) {
                out_str(c, "SERVER_ERROR object too large for cache\r\n");
                off += used;
                c->swallow = (size_t)nb + 2;
                continue;
            }
            if (avail < used + (size_t)nb + 2) break; /* wait for the data block */
            const char *data = p + used;
            if (data[nb] != '\r' || data[nb + 1] != '\n') {
                out_str(c, "CLIENT_ERROR bad data chunk\r\n");
                off += used + (size_t)nb + 2;
                continue;
            }
            do_store(c, store, tok[1], (uint32_t)fl, ex, data, (size_t)nb, casv, noreply);
            off += used + (size_t)nb + 2;
            continue;
        }
        off += used;
        int noreply = nt > 1 && !strcmp(tok[nt - 1], "noreply");
        if (!strcmp(cmd, "get")) do_get(c, tok, nt, 0);
        else if (!strcmp(cmd, "gets")) do_get(c, tok, nt, 1);
        else if (!strcmp(cmd, "incr")) do_arith(c, tok, nt, 1);
        else if (!strcmp(cmd, "decr")) do_arith(c, tok, nt, 0);
        else if (!strcmp(cmd, "delete")) {
            int args = nt - noreply;
            if (args < 2 || args > 3 || (args == 3 && strcmp(tok[2], "0"))) {
                out_str(c, "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n");
                continue;
            }
            size_t nk = strlen(tok[1]);
            if (nk > KEY_MAX) { out_str(c, "CLIENT_ERROR bad command line format\r\n"); continue; }
            shard *s = shard_of(tok[1], nk);
            pthread_mutex_lock(&s->mu);
            item *it = lookup(s, tok[1], nk, now_s());
            if (it) item_drop(s, it);
            pthread_mutex_unlock(&s->mu);
            BUMP(*(it ? &st_del_hits : &st_del_miss));
            if (!noreply) out_str(c, it ? "DELETED\r\n" : "NOT_FOUND\r\n");
        } else if (!strcmp(cmd, "touch")) {
            int64_t ex;
            if (nt - noreply != 3 || parse_i64(tok[2], &ex)) { out_str(c, "ERROR\r\n"); continue; }
            size_t nk = strlen(tok[1]);
            if (nk > KEY_MAX) { out_str(c, "CLIENT_ERROR bad command line format\r\n"); continue; }
            int64_t now = now_s();
            shard *s = shard_of(tok[1], nk);
            pthread_mutex_lock(&s->mu);
            item *it = lookup(s, tok[1], nk, now);
            if (it) it->exp = abs_exp(ex, now);
            pthread_mutex_unlock(&s->mu);
            BUMP(*(it ? &st_touch_hits : &st_touch_miss));
            if (!noreply) out_str(c, it ? "TOUCHED\r\n" : "NOT_FOUND\r\n");
        } else if (!strcmp(cmd, "flush_all")) {
            int64_t d = 0;
            if (nt - noreply > 2 || (nt - noreply == 2 && (parse_i64(tok[1], &d) || d < 0))) {
                out_str(c, "CLIENT_ERROR bad command line format\r\n");
                continue;
            }
            BUMP(st_flush);
            do_flush(d);
            if (!noreply) out_str(c, "OK\r\n");
        } else if (!strcmp(cmd, "stats")) {
            if (nt == 2 && !strcmp(tok[1], "reset")) out_str(c, "RESET\r\n");
            else if (nt == 1) do_stats(c);
            else out_str(c, "ERROR\r\n"); /* no sub-statistics yet ("stats noreply" too) */
        } else if (!strcmp(cmd, "version")) {
            out_str(c, "VERSION 1.6.21-regio\r\n"); /* arguments ignored, as memcached 1.6 does */
        } else if (!strcmp(cmd, "verbosity")) {
            /* as memcached 1.6: "verbosity noreply" is silent, like "verbosity N noreply" */
            if (nt < 2 || nt > 3 || (nt == 3 && !noreply)) { out_str(c, "ERROR\r\n"); continue; }
            if (!noreply) out_str(c, "OK\r\n");
        } else if (!strcmp(cmd, "quit")) {
            c->closing = 2; /* close without a reply, whatever the arguments (memcached 1.6) */
        } else {
            out_str(c, "ERROR\r\n");
        }
    }
    return off;
}

static void conn_close(int ep, conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    rg_region_free(c->r);
    rg_free(c->in);
    rg_free(c);
    atomic_fetch_sub_explicit(&st_curr_conns, 1, memory_order_relaxed);
}

/* Sends what is pending.  1 all sent (region reset), 0 would block, -1 error. */
static int flush_out(conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? 0 : -1;
        }
        atomic_fetch_add_explicit(&st_wr, (uint64_t)n, memory_order_relaxed);
        c->out_off += (size_t)n;
    }
    c->out = NULL; c->out_len = c->out_cap = c->out_off = 0;
    rg_region_reset(c->r); /* the batch's replies are gone: its memory too */
    return 1;
}

/* Processes input and sends replies until input runs out or the socket
 * would block.  Returns -1 when the connection must close. */
static int conn_run(int ep, conn *c)
{
    for (;;) {
        size_t used = process(c);
        if (used) {
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
        }
        if (c->closing == 2) return -1;
        int w = flush_out(c);
        if (w < 0 || c->closing) return -1;
        if (c->want_out != !w) { /* a syscall only when the interest changes */
            c->want_out = !w;
            struct epoll_event ev = { .events = w ? EPOLLIN : EPOLLOUT, .data.ptr = c };
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
        return 0;
    }
}

static int conn_read(conn *c)
{
    if (c->in_cap - c->in_len < 4096) {
        size_t cap = c->in_cap * 2;
        char *n = rg_realloc(c->in, cap);
        if (!n) return -1;
        c->in = n; c->in_cap = cap;
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (n == 0) return -1;
    if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    atomic_fetch_add_explicit(&st_rd, (uint64_t)n, memory_order_relaxed);
    c->in_len += (size_t)n;
    return 1;
}

static void *loop(void *arg)
{
    (void)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) < 0) { perror("epoll"); exit(1); }
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!c) {
                int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) continue;
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                c = rg_malloc_zeroed(1, sizeof *c);
                if (c) { c->r = rg_region_new(); c->in = rg_malloc(16384); c->in_cap = 16384; }
                if (!c || !c->r || !c->in) {
                    if (c) { if (c->r) rg_region_free(c->r); rg_free(c->in); rg_free(c); }
                    close(fd);
                    continue;
                }
                c->fd = fd;
                BUMP(st_curr_conns); BUMP(st_total_conns);
                struct epoll_event cev = { .events = EPOLLIN, .data.ptr = c };
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) {
                    close(fd); rg_region_free(c->r); rg_free(c->in); rg_free(c);
                    atomic_fetch_sub_explicit(&st_curr_conns, 1, memory_order_relaxed);
                }
                continue;
            }
            int rc = 0;
            if (c->out_len) { /* waiting for EPOLLOUT */
                rc = flush_out(c);
                if (rc > 0) rc = conn_run(ep, c);
                else if (rc == 0) continue;
            } else {
                rc = conn_read(c);
                if (rc > 0) rc = conn_run(ep, c);
            }
            if (rc < 0) conn_close(ep, c);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int port = 11211, opt;
    const char *debug_addr = NULL;
    while ((opt = getopt(argc, argv, "p:t:m:l:U:c:vD:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 't': nthreads = atoi(optarg); break;
        case 'm': limit_mib = atoll(optarg); break;
        case 'D': debug_addr = optarg; break;
        case 'l': if (strcmp(optarg, "127.0.0.1")) { fprintf(stderr, "kvcache: only 127.0.0.1\n"); return 2; } break;
        default: break; /* -U -c -v: accepted for memcached's command lines */
        }
    }
    if (nthreads < 1 || nthreads > 256 || limit_mib < 8 || port < 0 || port > 65535) {
        fprintf(stderr, "usage: kvcache [-p PORT] [-t THREADS] [-m MiB>=8]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    rg_set_memory_limit(limit_mib << 20);
    shard_budget = (size_t)(limit_mib << 20) / 2 / NSHARD;
    start_time = now_s();
    for (int i = 0; i < NSHARD; i++) {
        pthread_mutex_init(&shards[i].mu, NULL);
        if (!(shards[i].map = rg_map_new(NULL))) { perror("rg_map_new"); return 1; }
    }
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(listen_fd, 1024) < 0 ||
        getsockname(listen_fd, (struct sockaddr *)&a, &al) < 0) {
        perror("kvcache: listen");
        return 1;
    }
    if (debug_addr) {
        int rc = rg_debug_serve(debug_addr);
        if (rc < 0) { fprintf(stderr, "kvcache: debug endpoint: %s\n", strerror(-rc)); return 1; }
        printf("debug port %d\n", rg_debug_port());
    }
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    pthread_t th[256];
    for (int i = 1; i < nthreads; i++) pthread_create(&th[i], NULL, loop, NULL);
    loop(NULL);
    return 0;
}
