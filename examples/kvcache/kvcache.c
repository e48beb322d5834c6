/* examples/kvcache — a memcached-compatible (ASCII protocol) cache server on
 * regio.
 *
 * Threads: -t N event loops, one per thread; a connection stays on the loop
 * that accepted it.  Built with regio's `uring` feature, each loop is an
 * io_uring: a multishot accept on the shared listener, one multishot recv
 * per connection fed by a provided buffer ring whose buffers come from an
 * rg_objpool (regio/uring.h), commands parsed in place in the lent buffer,
 * replies sent from the batch's region with one send in flight, the region
 * reset when the batch is on the wire.  Where io_uring is unavailable (or
 * with -E) each loop is an epoll instance over the shared listener
 * (EPOLLEXCLUSIVE) and its connections.  The first line of stdout says
 * which: "loop io_uring" or "loop epoll".
 *
 * Memory:
 *   - every reply of a batch of pipelined requests is assembled in a region
 *     the loop lends the connection for that batch; it is reset once the
 *     batch is sent and goes back to the loop's cache, so parsing and
 *     response assembly never call malloc and an idle connection holds only
 *     its conn struct (a command line cut by a read is kept in a
 *     per-connection buffer, allocated only then; a value that comes in
 *     pieces goes straight into its new item, as memcached does);
 *   - items (header, key, value) are objects of the collected heap
 *     (rg_new_array), the values of 16 heap maps (rg_map_new_heap, one
 *     mutex each; each map is a root) keyed by a seeded 64-bit hash of the
 *     key (colliding keys go to one overflow map keyed by their bytes), so
 *     a set, delete, eviction or flush_all just drops the map's reference
 *     and the collector reclaims the item.  A get sends the value straight from the item (sendmsg
 *     iovecs, no copy) and pins the item in the batch's region
 *     (rg_region_keep): an item replaced or evicted while its bytes are on
 *     their way stays alive until the send completes and the region
 *     resets — no reference counts, no copies.  Each loop thread is
 *     attached to the collector, passes a safepoint at every turn of its
 *     loop and between commands, and is parked while it waits for events.
 *   - -m MiB bounds the process: regio's hard limit (rg_set_memory_limit)
 *     is -m + 4% less what the process holds outside regio (libraries,
 *     rings), measured at start, so RSS stays under -m + 5%.  Items are
 *     evicted per shard once the heap blocks they take (size-class
 *     rounding counted) pass 70% of regio's limit: the most that stays
 *     clearly below the collector's latest trigger under a limit (90% of
 *     the room the limit leaves the heap), so that a cycle frees the
 *     garbage of about half a second of stores instead of running back to
 *     back (measured: main, where the budget is set).  That is 1.7x the
 *     items of the former 35% of -m, about 60% of -m in the clients'
 *     bytes; memcached, whose -m counts only its item slabs and whose RSS
 *     passes -m by 8%, holds nearly all of -m.  Items are evicted again
 *     whenever an allocation
 *     fails (then with a safepoint, so the cycle that frees what was
 *     evicted can finish), so under a normal load a store never fails.
 *     Eviction is CLOCK (second chance): a get sets the item's reference
 *     bit instead of moving it in the LRU list, and the eviction scan moves
 *     the tail's referenced items back to the head once.
 *
 * Protocol: memcached's ASCII protocol (protocol.txt of memcached): get,
 * gets, set, add, replace, append, prepend, cas, delete, incr, decr, touch,
 * flush_all, stats, version, verbosity, quit, noreply.  Exptime: 0 never,
 * negative already expired, up to 30 days relative, beyond that a Unix time.
 *
 * Usage: kvcache [-p PORT] [-t THREADS] [-m MiB] [-l 127.0.0.1] [-D ADDR] [-E]
 *   -p 0 takes an ephemeral port; the port is printed as "port N".
 *   -D ADDR serves regio's debug endpoint and live dashboard (/debug/regio,
 *   rg_debug_serve) on ADDR, e.g. 127.0.0.1:0; printed as "debug port N".
 *   -E uses the epoll loop even where io_uring works.
 */
#define _GNU_SOURCE
#include <regio.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef KV_URING
#include <regio/uring.h>
#endif

#define KEY_MAX 250
#define ITEM_MAX (1024 * 1024)     /* largest value, like memcached's -I 1m */
#define LINE_MAX_LEN 8192          /* longest command line */
#define NSHARD 16
#define REL_MAX 2592000            /* 30 days: exptimes above are absolute */
#define ITEM_PCT 70                /* items' budget, % of regio's limit (main) */
#define RSS_PCT 104                /* the process's RSS bound, % of -m (main) */

/* An item is one object of the collected heap (rg_new_array of a byte
 * type: no traced fields).  Items never change once linked (a store makes a
 * new one; only exp and the CLOCK bit are touched in place), so a reply can
 * send the value straight from the item, pinned in the batch's region.
 * prev/next are plain, untraced addresses: they only ever point at items in
 * the shard's maps, which keep those alive; an item leaves the LRU when it
 * leaves the maps.  The header is 64 bytes, so a lookup that checks the key
 * touches the header's cache line and the key's. */
typedef struct item {
    struct item *prev, *next; /* shard LRU, head = most recently linked */
    uint64_t hash;            /* hash_key() of the key: its shard, its key in the shard's map */
    uint64_t cas;
    int64_t exp;              /* absolute seconds, 0 = never */
    int64_t stime;            /* when stored, for delayed flush_all */
    uint32_t flags, nkey, nbytes; /* nbytes without the trailing \r\n */
    uint8_t active;           /* CLOCK reference bit: read since it last reached the LRU tail */
    uint8_t in_ovf;           /* keyed by its bytes in the shard's overflow map (hash collision) */
    char data[];              /* key, then value + "\r\n" */
} item;
_Static_assert(sizeof(item) == 64, "item header: one cache line");

static const rg_type item_type = { "kvcache item", 1, NULL, 0, NULL };

/* A shard's index: the items keyed by their 64-bit key hash in a heap map
 * (an 8-byte key lives inside the map's slot, so a lookup reads no key
 * storage of the map's and compares the key once, in the item it found),
 * and, for the rare key whose hash another key of the shard already holds
 * there, the overflow heap map, keyed by the key's bytes (one for all
 * shards: collisions of a seeded 64-bit hash are rare enough that its lock
 * is never busy).  A key is in exactly one of the two; a lookup tries the
 * hash map first and the overflow map only when the item found there has
 * another key (or none) and the shard has keys in the overflow map. */
typedef struct shard {
    pthread_mutex_t mu;
    rg_map *map;           /* hash -> item; rg_map_new_heap: traces its values
                            * (the items); a root, written once by main */
    size_t novf;           /* this shard's entries in ovf_map */
    item *head, *tail;
    size_t bytes;          /* the items' sizes (memcached's `bytes`) */
    size_t held;           /* the heap blocks they take (heap_block()): the budget's measure */
} shard;

static shard shards[NSHARD];
static rg_map *ovf_map;    /* key bytes -> item, for hash collisions; a heap
                            * map like the shards', a root written once by main */
static pthread_mutex_t ovf_mu = PTHREAD_MUTEX_INITIALIZER; /* ovf_map; taken under a shard's */
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

/* The key hash: a multiply-mix over 16-byte blocks (wyhash's construction,
 * W. Yi), keyed with a random seed drawn at start, so a client that does
 * not know the seed cannot pick keys that collide (collisions stay correct,
 * they only cost a lookup in the overflow map).  KVCACHE_TEST_HASH_BITS=N
 * keeps only N bits, so that tests/kvcache.sh can run the protocol suite
 * with the overflow maps in constant use. */
static uint64_t hseed[3];
static uint64_t hmask = ~(uint64_t)0;

static inline uint64_t mix(uint64_t a, uint64_t b)
{
    __uint128_t m = (__uint128_t)a * b;
    return (uint64_t)m ^ (uint64_t)(m >> 64);
}

static uint64_t hash_key(const char *k, size_t n)
{
    uint64_t h = hseed[0] ^ n;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint64_t a, b;
        memcpy(&a, k + i, 8);
        memcpy(&b, k + i + 8, 8);
        h = mix(a ^ hseed[1], b ^ h);
    }
    if (i < n) { /* the last 1..15 bytes, zero-padded */
        uint64_t t[2] = { 0, 0 };
        memcpy(t, k + i, n - i);
        h = mix(t[0] ^ hseed[1], t[1] ^ h);
    }
    return mix(h ^ hseed[2], n ^ 0x9e3779b97f4a7c15ull) & hmask;
}

/* the shard takes the low bits (so a test's shortened hash still spreads
 * over the shards): the map hashes its u64 keys again with its own seed,
 * so a shard's keys still spread over its whole table */
static shard *shard_for(uint64_t h) { return &shards[h % NSHARD]; }

static size_t item_size(const item *it) { return sizeof(item) + it->nkey + it->nbytes + 2; }

/* The bytes an object of n bytes takes in regio's collected heap: its size
 * class (16-byte steps to 128 B, then four classes per doubling to 32 KiB,
 * as DESIGN.md's arena), whole pages above.  A memcaslap item of 1,154
 * bytes takes 1,280: the budget counts what the heap holds, not what the
 * client sent. */
static size_t heap_block(size_t n)
{
    if (n <= 128) return (n + 15) & ~(size_t)15;
    if (n > 32768) return (n + 4095) & ~(size_t)4095;
    unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
    size_t step = (size_t)1 << (b - 2);
    return (n + step - 1) & ~(step - 1);
}

static int key_is(const item *it, const char *k, size_t n)
{
    return it->nkey == n && memcmp(it->data, k, n) == 0;
}

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

/* A hit: CLOCK's reference bit instead of a move to the LRU head, so a get
 * writes one byte of the item it already read (only when the bit is clear)
 * instead of relinking it and touching three other items' cache lines
 * under the shard's lock; the eviction scan gives the bit's items a second
 * chance (victim below).  Lock held. */
static void item_touch(item *it)
{
    if (!it->active) it->active = 1;
}

/* Removes it from s (maps, LRU, byte count).  Lock held.  The collector
 * reclaims it once no reply in flight pins it. */
static void item_drop(shard *s, item *it)
{
    if (it->in_ovf) {
        pthread_mutex_lock(&ovf_mu);
        rg_map_del(ovf_map, it->data, it->nkey);
        pthread_mutex_unlock(&ovf_mu);
        s->novf--;
    }
    else rg_map_del_u64(s->map, it->hash);
    lru_unlink(s, it);
    s->bytes -= item_size(it);
    s->held -= heap_block(item_size(it));
}

/* The next item to evict: the LRU tail once the items read since they
 * last reached it have had their second chance (moved to the head, bit
 * cleared) — CLOCK's approximation of LRU (F. J. Corbato, 1968), at most 64
 * moves per victim so that a store's time stays bounded.  Lock held. */
static item *victim(shard *s)
{
    for (int i = 0; i < 64 && s->tail && s->tail->active; i++) {
        item *t = s->tail;
        t->active = 0;
        lru_unlink(s, t);
        lru_push(s, t);
    }
    return s->tail;
}

static int item_live(const item *it, int64_t now)
{
    if (it->exp && it->exp <= now) return 0;
    int64_t f = atomic_load_explicit(&flush_at, memory_order_relaxed);
    if (f && now >= f && it->stime <= f) return 0;
    return 1;
}

/* The item for key k (hash h), live or not, or NULL.  Lock held. */
static item *find(shard *s, uint64_t h, const char *k, size_t n)
{
    item *it = rg_map_get_u64(s->map, h);
    if (it && key_is(it, k, n)) return it;
    if (!s->novf) return NULL;
    pthread_mutex_lock(&ovf_mu);
    it = rg_map_get(ovf_map, k, n);
    pthread_mutex_unlock(&ovf_mu);
    return it;
}

/* The live item for key, or NULL (an expired one is dropped).  Lock held. */
static item *lookup(shard *s, uint64_t h, const char *k, size_t n, int64_t now)
{
    item *it = find(s, h, k, n);
    if (!it) return NULL;
    if (!item_live(it, now)) { item_drop(s, it); return NULL; }
    return it;
}

static int evict_for(size_t need);
static int reclaim(size_t n, int tries);

/* A new item, evicting from s's LRU tail when over budget or when the
 * allocation fails.  Lock held.  NULL when nothing is left to evict. */
static item *item_alloc(shard *s, uint64_t h, const char *k, size_t nk, size_t nbytes)
{
    size_t sz = sizeof(item) + nk + nbytes + 2;
    while (s->tail && s->held + heap_block(sz) > shard_budget) { item_drop(s, victim(s)); BUMP(st_evict); }
    item *it;
    for (int tries = 0; !(it = rg_new_array(&item_type, sz)); tries++) { /* zeroed */
        if (tries > 300) return NULL; /* ~1.4 s without room: a real shortage */
        /* The limit refused: what was evicted is garbage only once a cycle
         * has seen it, and the cycle needs this thread's roots.  Every heap
         * pointer the callers hold here (old) is still in its map, so a
         * safepoint is safe. */
        if (s->tail) { item_drop(s, victim(s)); BUMP(st_evict); }
        else reclaim(sz, tries); /* the other shards' oldest; a cycle's time */
        rg_safepoint();
        if (tries > 8 && s->tail) { /* evicted plenty: the cycle that frees it needs time */
            rg_park();
            usleep(tries < 20 ? 1000 : 5000); /* a slow collector (sanitizers): longer */
            rg_unpark();
        }
    }
    it->hash = h;
    it->nkey = (uint32_t)nk;
    it->nbytes = (uint32_t)nbytes;
    memcpy(it->data, k, nk);
    return it;
}

/* Puts it in its map (the overflow map when it->in_ovf).  Lock held. */
static int map_put_item(shard *s, item *it)
{
    if (!it->in_ovf) return rg_map_put_u64(s->map, it->hash, it);
    pthread_mutex_lock(&ovf_mu);
    int rc = rg_map_put(ovf_map, it->data, it->nkey, it);
    pthread_mutex_unlock(&ovf_mu);
    return rc;
}

/* A map that could not grow because the limit refused its new table:
 * evict, pass a safepoint so the cycle that frees the evicted items can
 * finish, and try again.  The new item is in no map yet, so for the
 * safepoint it is held in a root of this thread's (rooted once); old is
 * kept out of eviction's reach.  Lock held.  The put's result. */
static int map_put_retry(shard *s, item *it, item *old)
{
    static __thread void *hold;
    static __thread int rooted;
    if (!rooted) {
        if (!rg_root_add(&hold)) return -ENOMEM;
        rooted = 1;
    }
    hold = it;
    if (old) lru_unlink(s, old);
    int rc = -ENOMEM;
    for (int tries = 0; rc < 0 && tries < 300; tries++) {
        if (s->tail) { item_drop(s, victim(s)); BUMP(st_evict); }
        else reclaim(4096, tries);
        rg_safepoint();
        if (tries > 8) {
            rg_park();
            usleep(tries < 20 ? 1000 : 5000);
            rg_unpark();
        }
        rc = map_put_item(s, it);
    }
    if (old) lru_push(s, old);
    hold = NULL;
    return rc;
}

/* Links a new item in place of old (may be NULL: then no item has its key).
 * Lock held.  Returns 0 or -ENOMEM (a map could not grow even after
 * evictions: the new item is garbage, old stays). */
static int item_link(shard *s, item *it, item *old, int64_t now)
{
    it->cas = atomic_fetch_add_explicit(&cas_next, 1, memory_order_relaxed);
    it->stime = now;
    /* the key stays where it is; a new key goes to the hash map unless
     * another key holds its hash there */
    it->in_ovf = old ? old->in_ovf : rg_map_get_u64(s->map, it->hash) != NULL;
    int rc = map_put_item(s, it);
    if (rc == -ENOMEM) rc = map_put_retry(s, it, old);
    if (rc < 0) return -ENOMEM;
    if (it->in_ovf && rc == 1) s->novf++;
    if (old) { /* old: garbage unless pinned */
        lru_unlink(s, old);
        s->bytes -= item_size(old);
        s->held -= heap_block(item_size(old));
    }
    lru_push(s, it);
    s->bytes += item_size(it);
    s->held += heap_block(item_size(it));
    return 0;
}

/* Frees about need bytes of items, oldest first across the shards, for a
 * connection buffer the limit refused.  0 if anything was freed. */
static int evict_for(size_t need)
{
    static _Atomic unsigned rr; /* relaxed: only spreads the victims */
    size_t freed = 0;
    for (int i = 0; i < NSHARD * 64 && freed < need; i++) {
        shard *s = &shards[atomic_fetch_add_explicit(&rr, 1, memory_order_relaxed) % NSHARD];
        if (pthread_mutex_trylock(&s->mu)) continue; /* busy, or the caller's own */
        item *v = victim(s);
        if (v) { freed += item_size(v); item_drop(s, v); BUMP(st_evict); }
        pthread_mutex_unlock(&s->mu);
    }
    return freed ? 0 : -1;
}

/* After the limit refused n bytes: evict, and pass a safepoint so the
 * collector can finish the cycle that frees what was evicted.  Callers hold
 * no heap pointer that is not in a map or pinned.  -1 after enough tries. */
static int reclaim(size_t n, int tries)
{
    evict_for(n);
    rg_safepoint();
    if (tries > 4) { /* give a cycle in flight time to finish */
        rg_park();
        usleep(1000);
        rg_unpark();
    }
    return tries < 100 ? 0 : -1;
}

/* ---- connections ---------------------------------------------------- */

#define OUT_BATCH (256 * 1024)     /* stop parsing a batch once its replies pass this */
#define IN_HIGH (2 * 1024 * 1024)  /* uring: stop receiving above this much kept input */
#define IN_MAX (8 * 1024 * 1024)   /* kept input that closes the connection */
#define RCACHE 64                  /* idle regions a loop keeps for its next batches */

typedef struct worker worker;

typedef struct conn {
    worker *w;
    int fd;
    rg_region *r;          /* replies of the current batch; NULL while idle */
    char *in; size_t in_len, in_cap; /* input kept between reads (lazily allocated) */
    /* the batch's replies: iovecs over text built in the region (tb) and
     * over pinned items' values; [iov_head, niov) is still to send */
    struct iovec *iov; unsigned niov, iov_cap, iov_head, iov_frozen;
    char *tb; size_t tb_len, tb_cap;
    size_t pending;        /* bytes still to send */
    int last_text;         /* iov[niov-1] is text in tb (may grow in place) */
    struct msghdr msg;     /* uring: the sendmsg in flight */
    size_t swallow;        /* bytes of a rejected value still to skip */
    /* A value that did not come whole with its command line goes straight
     * into its new item as it arrives (no staging in c->in: a 1 MiB value
     * costs the item only, from the same heap the items live in). */
    item *rd;              /* the item being filled (in rd_root), NULL none */
    rg_root *rd_root;      /* added on the first such value, for the conn's life */
    size_t rd_have;        /* bytes of value + "\r\n" received so far */
    uint64_t rd_cas;
    int64_t rd_exp;
    uint32_t rd_flags;
    int rd_cmd, rd_noreply;
    int closing;           /* 1: close once the replies are sent, 2: at once */
    int want_out;          /* epoll: registered for EPOLLOUT instead of EPOLLIN */
    int dead;              /* uring: shut down, freed when inflight reaches 0 */
    int sending;           /* uring: a send of out is in flight */
    int recv_armed;        /* uring: the multishot recv is active */
    int recv_paused;       /* uring: recv cancelled until kept input drains */
    int inflight;          /* uring: operations whose last CQE is still due */
    struct conn *parked;   /* uring: next connection waiting for a buffer */
    int is_parked;         /* uring: on its loop's park list (counted in inflight) */
} conn;

/* One event loop: its connections never migrate, so everything here is
 * touched by its own thread only. */
struct worker {
    rg_region *rcache[RCACHE];
    int nr;
    char *scratch;         /* epoll: the buffer recv reads into */
#ifdef KV_URING
    struct io_uring ring;
    rg_objpool *bufs;      /* receive buffers: the provided buffer ring's supply */
    rg_uring_bufring *br;
    conn *parked;          /* connections whose recv found the ring empty */
    int64_t poll_ns;       /* busy poll budget before sleeping (ur_spin) */
#endif
};

/* The region a batch's replies are built in: the loop's cache first, so an
 * idle connection holds no region at all (10,000 idle clients cost their
 * conn structs only). */
static rg_region *region_get(worker *w)
{
    if (w->nr) return w->rcache[--w->nr];
    return rg_region_new();
}

/* The batch is sent: its memory goes at once (and its pins with it: the
 * items it sent may now be collected), the region back to the cache. */
static void region_done(conn *c)
{
    rg_region *r = c->r;
    c->r = NULL;
    c->iov = NULL; c->niov = c->iov_cap = c->iov_head = c->iov_frozen = 0;
    c->tb = NULL; c->tb_len = c->tb_cap = 0;
    c->pending = 0; c->last_text = 0;
    if (!r) return;
    rg_region_reset(r);
    if (c->w->nr < RCACHE) c->w->rcache[c->w->nr++] = r;
    else rg_region_free(r);
}

/* n bytes of the batch's region, evicting items if the limit refuses. */
static void *out_alloc(conn *c, size_t n)
{
    if (!c->r && !(c->r = region_get(c->w))) { c->closing = 2; return NULL; }
    void *p;
    for (int t = 0; !(p = rg_alloc(c->r, n)); t++)
        if (reclaim(n, t) < 0) { c->closing = 2; return NULL; }
    return p;
}

/* Appends [p, p+n) to the batch.  Text may extend the last iovec in place,
 * unless that one is in a send in flight (iov_frozen). */
static void out_iov(conn *c, const void *p, size_t n, int text)
{
    if (text && c->last_text && c->niov > c->iov_frozen &&
        (const char *)c->iov[c->niov - 1].iov_base + c->iov[c->niov - 1].iov_len == (const char *)p) {
        c->iov[c->niov - 1].iov_len += n;
    } else {
        if (c->niov == c->iov_cap) { /* grown by copy: an array a send in flight uses stays intact */
            unsigned cap = c->iov_cap ? c->iov_cap * 2 : 32;
            struct iovec *v = out_alloc(c, cap * sizeof *v);
            if (!v) return;
            if (c->niov) memcpy(v, c->iov, c->niov * sizeof *v);
            c->iov = v; c->iov_cap = cap;
        }
        c->iov[c->niov].iov_base = (void *)p;
        c->iov[c->niov].iov_len = n;
        c->niov++;
    }
    c->last_text = text;
    c->pending += n;
}

/* Room for n more bytes of text at the end of the batch's text buffer (a
 * new buffer when it is full), or NULL when the connection is closing. */
static char *out_room(conn *c, size_t n)
{
    if (c->closing == 2) return NULL;
    if (c->tb_len + n > c->tb_cap) {
        size_t cap = n > 4096 ? n : 4096;
        char *b = out_alloc(c, cap);
        if (!b) return NULL;
        c->tb = b; c->tb_len = 0; c->tb_cap = cap;
    }
    return c->tb + c->tb_len;
}

/* n bytes written at dst (from out_room) join the batch. */
static void out_commit(conn *c, char *dst, size_t n)
{
    c->tb_len += n;
    out_iov(c, dst, n, 1);
}

static void out_put(conn *c, const void *p, size_t n)
{
    char *dst = out_room(c, n);
    if (!dst) return;
    memcpy(dst, p, n);
    out_commit(c, dst, n);
}

/* n bytes of the batch went out. */
static void out_advance(conn *c, size_t n)
{
    c->pending -= n;
    while (n) {
        struct iovec *v = &c->iov[c->iov_head];
        if (n >= v->iov_len) { n -= v->iov_len; c->iov_head++; }
        else { v->iov_base = (char *)v->iov_base + n; v->iov_len -= n; n = 0; }
    }
}

static unsigned out_iovcnt(const conn *c)
{
    unsigned k = c->niov - c->iov_head;
    return k > 1024 ? 1024 : k; /* IOV_MAX */
}

static void out_str(conn *c, const char *s) { out_put(c, s, strlen(s)); }

/* v in decimal at p; returns the end. */
static char *put_u64(char *p, uint64_t v)
{
    char t[20];
    int n = 0;
    do { t[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) *p++ = t[--n];
    return p;
}

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

/* Splits the NUL-terminated line at spaces (runs of them), in place.
 * Returns the token count, or max + 1 when there are more.  memchr finds
 * the ends (a get's line is mostly its key). */
static int tokenize(char *line, char **tok, int max)
{
    int n = 0;
    char *p = line, *end = line + strlen(line);
    while (p < end) {
        while (*p == ' ') p++;
        if (p == end) break;
        if (n == max) return max + 1;
        tok[n++] = p;
        char *sp = memchr(p, ' ', (size_t)(end - p));
        if (!sp) break;
        *sp = 0;
        p = sp + 1;
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
        uint64_t h = hash_key(tok[i], nk);
        shard *s = shard_for(h);
        BUMP(st_get);
        pthread_mutex_lock(&s->mu);
        item *it = lookup(s, h, tok[i], nk, now);
        if (it) item_touch(it);
        pthread_mutex_unlock(&s->mu);
        /* it stays valid until this thread's next safepoint even if another
         * thread replaces it now (gc.h rule 2); the pin keeps it until the
         * reply is sent */
        if (it) {
            BUMP(st_hits);
            if (!c->r && !(c->r = region_get(c->w))) { c->closing = 2; return; }
            if (rg_region_keep(c->r, it) < 0) { /* pinned first: formatting may pass a safepoint */
                c->closing = 2;
                return;
            }
            /* "VALUE key flags bytes [cas]\r\n" by hand: printf took a
             * quarter of a get's instructions */
            char *d = out_room(c, 6 + nk + 3 * 21 + 2);
            if (!d) return;
            char *e = d;
            memcpy(e, "VALUE ", 6); e += 6;
            memcpy(e, tok[i], nk); e += nk;
            *e++ = ' '; e = put_u64(e, it->flags);
            *e++ = ' '; e = put_u64(e, it->nbytes);
            if (with_cas) { *e++ = ' '; e = put_u64(e, it->cas); }
            *e++ = '\r'; *e++ = '\n';
            out_commit(c, d, (size_t)(e - d));
            out_iov(c, it->data + it->nkey, it->nbytes + 2, 0); /* no copy: the pin keeps it */
        }
    }
    out_str(c, "END\r\n");
}

/* A storage command whose data block (nbytes + "\r\n") is at data.  pre:
 * NULL, or an unlinked item the value was received into (key and data then
 * point into it, and the caller keeps it reachable): a set, add, replace or
 * cas links it as it is; append and prepend copy from it. */
static void do_store(conn *c, int cmd, const char *key, size_t nk, uint32_t flags, int64_t exptime,
                     const char *data, size_t nbytes, uint64_t casv, int noreply, item *pre)
{
    const char *reply;
    int64_t now = now_s();
    uint64_t h = hash_key(key, nk);
    shard *s = shard_for(h);
    BUMP(st_set);
    pthread_mutex_lock(&s->mu);
    item *old = lookup(s, h, key, nk, now);
    item *it = NULL;
    if ((cmd == CMD_ADD && old) || ((cmd == CMD_REPLACE || cmd == CMD_APPEND || cmd == CMD_PREPEND) && !old)) {
        reply = "NOT_STORED\r\n";
        if (old && cmd == CMD_ADD) item_touch(old);
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
        int whole = pre && cmd != CMD_APPEND && cmd != CMD_PREPEND;
        if (whole) it = pre;
        else {
            /* Keep old out of eviction's reach while the new one is allocated. */
            if (old) lru_unlink(s, old);
            it = item_alloc(s, h, key, nk, total);
            if (old) lru_push(s, old);
        }
        if (!it) { reply = "SERVER_ERROR out of memory storing object\r\n"; goto out; }
        char *v = it->data + nk;
        if (whole) {
            /* received in place, "\r\n" included */
        } else if (cmd == CMD_APPEND) {
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

/* A storage command whose data block is still to come: its item is
 * allocated now and process() fills it (stream_feed).  0 when no root could
 * be had for it: the caller waits for the whole block in c->in instead. */
static int stream_begin(conn *c, int cmd, const char *key, uint32_t flags, int64_t exptime,
                        size_t nbytes, uint64_t casv, int noreply)
{
    if (!c->rd_root && !(c->rd_root = rg_root_add(&c->rd))) return 0;
    size_t nk = strlen(key);
    uint64_t h = hash_key(key, nk);
    shard *s = shard_for(h);
    pthread_mutex_lock(&s->mu);
    item *it = item_alloc(s, h, key, nk, nbytes);
    pthread_mutex_unlock(&s->mu);
    if (!it) { /* the value is skipped, as memcached does */
        BUMP(st_set);
        if (!noreply) out_str(c, "SERVER_ERROR out of memory storing object\r\n");
        c->swallow = nbytes + 2;
        return 1;
    }
    c->rd = it;
    c->rd_have = 0;
    c->rd_cmd = cmd; c->rd_flags = flags; c->rd_exp = exptime; c->rd_cas = casv; c->rd_noreply = noreply;
    return 1;
}

/* Copies what p holds of the value being received into its item; stores it
 * once the block is whole.  Returns the bytes taken. */
static size_t stream_feed(conn *c, const char *p, size_t avail)
{
    item *it = c->rd;
    size_t block = (size_t)it->nbytes + 2;
    size_t k = block - c->rd_have < avail ? block - c->rd_have : avail;
    memcpy(it->data + it->nkey + c->rd_have, p, k);
    c->rd_have += k;
    if (c->rd_have < block) return k;
    const char *v = it->data + it->nkey;
    if (v[it->nbytes] != '\r' || v[it->nbytes + 1] != '\n')
        out_str(c, "CLIENT_ERROR bad data chunk\r\n");
    else
        do_store(c, c->rd_cmd, it->data, it->nkey, c->rd_flags, c->rd_exp, v, it->nbytes,
                 c->rd_cas, c->rd_noreply, it);
    c->rd = NULL; /* linked by now, or garbage */
    return k;
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
    uint64_t h = hash_key(tok[1], nk);
    shard *s = shard_for(h);
    char buf[32];
    const char *reply = buf;
    pthread_mutex_lock(&s->mu);
    item *old = lookup(s, h, tok[1], nk, now);
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
    item *it = item_alloc(s, h, tok[1], nk, (size_t)n - 2);
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
        items += rg_map_len(shards[i].map) + shards[i].novf;
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
    out_fmt(c, "STAT regio_next_gc %" PRIu64 "\r\n", ms.next_gc);
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

/* Runs the complete commands in buf[0..len) until the batch's replies pass
 * OUT_BATCH.  Returns the bytes consumed.  Nothing refers to buf afterwards
 * (stores copy the value), so buf may be a receive buffer lent by the
 * kernel's buffer ring. */
static size_t process(conn *c, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len && !c->closing && c->pending < OUT_BATCH) {
        /* between commands no item is held in a local (replies pin theirs):
         * a safepoint here lets a cycle through during a long pipeline */
        rg_safepoint();
        const char *p = buf + off;
        size_t avail = len - off;
        if (c->swallow) {
            size_t k = avail < c->swallow ? avail : c->swallow;
            c->swallow -= k; off += k;
            continue;
        }
        if (c->rd) { off += stream_feed(c, p, avail); continue; }
        const char *nl = memchr(p, '\n', avail);
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
        if (cmd[0] == 'g' && cmd[1] == 'e' && cmd[2] == 't' && cmd[3] == 0) {
            off += used; /* the common command first: no compare chain */
            do_get(c, tok, nt, 0);
            continue;
        }
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
            if (avail < used + (size_t)nb + 2) { /* the data block comes later */
                if (!stream_begin(c, store, tok[1], (uint32_t)fl, ex, (size_t)nb, casv, noreply))
                    break; /* wait for it in c->in */
                off += used;
                continue;
            }
            const char *data = p + used;
            if (data[nb] != '\r' || data[nb + 1] != '\n') {
                out_str(c, "CLIENT_ERROR bad data chunk\r\n");
                off += used + (size_t)nb + 2;
                continue;
            }
            do_store(c, store, tok[1], strlen(tok[1]), (uint32_t)fl, ex, data, (size_t)nb, casv,
                     noreply, NULL);
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
            uint64_t h = hash_key(tok[1], nk);
            shard *s = shard_for(h);
            pthread_mutex_lock(&s->mu);
            item *it = lookup(s, h, tok[1], nk, now_s());
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
            uint64_t h = hash_key(tok[1], nk);
            shard *s = shard_for(h);
            pthread_mutex_lock(&s->mu);
            item *it = lookup(s, h, tok[1], nk, now);
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

/* ---- input common to both loops --------------------------------------- */

static void in_consume(conn *c, size_t used)
{
    if (!used) return;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    if (c->in_len == 0 && c->in_cap > 16384) { rg_free(c->in); c->in = NULL; c->in_cap = 0; }
}

/* Takes n bytes the socket delivered.  While no replies are pending they
 * are parsed where they lie (no copy); what is left — a command cut by the
 * read, or everything while a batch is still being sent — is kept in c->in.
 * Returns -1 when the connection must close (it holds too much input). */
static int conn_input(conn *c, const char *data, size_t n)
{
    atomic_fetch_add_explicit(&st_rd, n, memory_order_relaxed);
    if (c->in_len == 0 && !c->closing) {
        size_t used = process(c, data, n);
        data += used;
        n -= used;
    }
    if (!n || c->closing == 2) return 0;
    if (c->in_len + n > IN_MAX) return -1;
    if (c->in_len + n > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : 4096;
        while (cap < c->in_len + n) cap *= 2;
        char *b;
        for (int t = 0; !(b = rg_realloc(c->in, cap)); t++)
            if (reclaim(cap, t) < 0) return -1;
        c->in = b; c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, data, n);
    c->in_len += n;
    return 0;
}

static void conn_free(conn *c)
{
    if (c->fd >= 0) close(c->fd);
    region_done(c);
    rg_root_remove(c->rd_root); /* a value cut short is garbage now */
    rg_free(c->in);
    rg_free(c);
    atomic_fetch_sub_explicit(&st_curr_conns, 1, memory_order_relaxed);
}

static conn *conn_new(worker *w, int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = rg_malloc_zeroed(1, sizeof *c);
    if (!c) { close(fd); return NULL; }
    c->w = w;
    c->fd = fd;
    BUMP(st_curr_conns); BUMP(st_total_conns);
    return c;
}

/* ---- the epoll loop (the fallback where io_uring is unavailable) -------- */

#define SCRATCH (64 * 1024)

static void ep_interest(int ep, conn *c, int out)
{
    if (c->want_out == out) return; /* a syscall only when the interest changes */
    c->want_out = out;
    struct epoll_event ev = { .events = out ? EPOLLOUT : EPOLLIN, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends what is pending.  1 all sent (the batch's region is reset), 0 would
 * block, -1 error. */
static int ep_flush(conn *c)
{
    while (c->pending) {
        struct msghdr m = { .msg_iov = c->iov + c->iov_head, .msg_iovlen = out_iovcnt(c) };
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? 0 : -1;
        }
        atomic_fetch_add_explicit(&st_wr, (uint64_t)n, memory_order_relaxed);
        out_advance(c, (size_t)n);
    }
    region_done(c);
    return 1;
}

/* Sends replies and runs kept input until both run out or the socket would
 * block.  -1: close the connection. */
static int ep_pump(int ep, conn *c)
{
    for (;;) {
        if (c->closing == 2) return -1;
        if (c->pending) {
            int w = ep_flush(c);
            if (w < 0) return -1;
            if (w == 0) { ep_interest(ep, c, 1); return 0; }
        }
        if (c->closing) return -1;
        if (!c->in_len) break;
        in_consume(c, process(c, c->in, c->in_len));
        if (!c->pending && !c->closing) break; /* the rest waits for more input */
    }
    ep_interest(ep, c, 0);
    return 0;
}

static void ep_close(int ep, conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    conn_free(c);
}

static void ep_loop(worker *w)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) < 0) { perror("epoll"); exit(1); }
    if (!(w->scratch = rg_malloc(SCRATCH))) { perror("kvcache"); exit(1); }
    struct epoll_event evs[64];
    for (;;) {
        rg_safepoint(); /* item pointers held in locals end here */
        rg_park();      /* a blocked loop never delays the collector */
        int n = epoll_wait(ep, evs, 64, -1);
        rg_unpark();
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!c) {
                int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0 || !(c = conn_new(w, fd))) continue;
                struct epoll_event cev = { .events = EPOLLIN, .data.ptr = c };
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) conn_free(c);
                continue;
            }
            int rc = 0;
            if (!c->want_out) {
                ssize_t k = recv(c->fd, w->scratch, SCRATCH, 0);
                if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) rc = -1;
                else if (k > 0) rc = conn_input(c, w->scratch, (size_t)k);
            }
            if (rc == 0) rc = ep_pump(ep, c);
            if (rc < 0) ep_close(ep, c);
        }
    }
}

/* ---- the io_uring loop -------------------------------------------------
 * One ring per thread.  A multishot accept on the shared listener; per
 * connection one multishot recv whose buffers come from the loop's provided
 * buffer ring, itself fed from an rg_objpool (regio/uring.h): a recv CQE
 * lends a buffer, the commands in it run in place, the buffer goes straight
 * back into the ring.  Replies are built in the batch's region and sent
 * from it with one send in flight per connection; the region is reset when
 * the send completes.  Input that arrives meanwhile waits in c->in. */
#ifdef KV_URING

#define RBUF_SIZE (16 * 1024)   /* one receive buffer */
static unsigned rbuf_count;     /* buffers per loop: about 1/32 of the limit
                                 * over all loops, 8..256, charged to it */

/* -B: the busy poll's bound; off by default — it trades CPU for fewer
 * wake-ups (at 20,000 requests/s on one connection the loop thread spent
 * 2.1x the CPU with -B 50), and on 2 shared cores it did not show a
 * reliable TPS gain (perf/RESULTS.md) */
static int64_t poll_max_ns;

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3, OP_CANCEL = 4 };

static void *tag(void *p, int op) { return (void *)((uintptr_t)p | (uintptr_t)op); }

static struct io_uring_sqe *sqe_get(worker *w)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    while (!sqe) { /* the submission queue is full: hand it over and retry */
        io_uring_submit(&w->ring);
        sqe = io_uring_get_sqe(&w->ring);
    }
    return sqe;
}

static void ur_arm_accept(worker *w)
{
    struct io_uring_sqe *sqe = sqe_get(w);
    io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data(sqe, tag(NULL, OP_ACCEPT));
}

static void ur_arm_recv(conn *c)
{
    struct io_uring_sqe *sqe = sqe_get(c->w);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = rg_uring_bufring_bgid(c->w->br);
    io_uring_sqe_set_data(sqe, tag(c, OP_RECV));
    c->recv_armed = 1;
    c->inflight++;
}

static void ur_send(conn *c)
{
    struct io_uring_sqe *sqe = sqe_get(c->w);
    memset(&c->msg, 0, sizeof c->msg);
    c->msg.msg_iov = c->iov + c->iov_head;
    c->msg.msg_iovlen = out_iovcnt(c);
    c->iov_frozen = c->iov_head + (unsigned)c->msg.msg_iovlen; /* the kernel reads these at submit */
    io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, tag(c, OP_SEND));
    c->sending = 1;
    c->inflight++;
}

/* Ends a connection: shutdown makes the pending recv complete, so the conn
 * is freed once its last CQE is in (a CQE must never find it gone). */
static void ur_shut(conn *c)
{
    if (c->dead) return;
    c->dead = 1;
    shutdown(c->fd, SHUT_RDWR);
    if (c->inflight == 0) conn_free(c);
}

/* Backpressure: a client that sends faster than its replies drain (or never
 * reads them) must not make the server hold its input without bound, and a
 * multishot recv keeps reading until it is cancelled. */
static void ur_pause_recv(conn *c)
{
    struct io_uring_sqe *sqe = sqe_get(c->w);
    io_uring_prep_cancel(sqe, tag(c, OP_RECV), 0);
    io_uring_sqe_set_data(sqe, tag(c, OP_CANCEL));
    c->recv_paused = 1;
    c->inflight++;
}

/* Runs kept input while the batch has room, keeps one send in flight, and
 * resets the batch's region once everything it holds is on the wire.
 * Replies appended during a send land behind it in the same region (a
 * grown buffer is a copy; the one being sent stays valid until the reset). */
static void ur_pump(conn *c)
{
    if (c->dead) return;
    if (c->in_len && !c->closing && c->pending < OUT_BATCH)
        in_consume(c, process(c, c->in, c->in_len));
    if (c->closing == 2) { ur_shut(c); return; }
    if (c->sending) return;
    if (c->pending) { ur_send(c); return; }
    region_done(c); /* all sent: the batch's memory goes now */
    if (c->closing) { ur_shut(c); return; }
    if (c->recv_paused && !c->recv_armed && c->in_len < IN_HIGH / 2) {
        c->recv_paused = 0;
        ur_arm_recv(c);
    }
}

static void ur_on_recv(worker *w, conn *c, struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE)) { c->recv_armed = 0; c->inflight--; }
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        size_t len;
        void *b = rg_uring_bufring_take(w->br, cqe, &len);
        if (b && !c->dead && cqe->res > 0 && conn_input(c, b, len) < 0) ur_shut(c);
        if (b && rg_uring_bufring_put(w->br, b) == 1 && w->parked) {
            conn *p = w->parked; /* a buffer is armed again: a parked recv may go */
            w->parked = p->parked;
            p->parked = NULL;
            p->is_parked = 0;
            p->inflight--;
            if (!p->dead) ur_arm_recv(p);
            else if (p->inflight == 0 && p != c) conn_free(p);
        }
    }
    if (c->dead) {
        if (c->inflight == 0) conn_free(c);
        return;
    }
    if (c->recv_paused) { /* cancelled on purpose (or data that came before) */
        if (cqe->res > 0) ur_pump(c);
        else if (cqe->res == 0) ur_shut(c);
        return;
    }
    if (cqe->res == -ENOBUFS) {
        /* the ring ran dry: the data waits in the socket, nothing is lost */
        if (rg_uring_bufring_enobufs(w->br) > 0) ur_arm_recv(c);
        else { c->parked = w->parked; w->parked = c; c->is_parked = 1; c->inflight++; /* the list holds it */ }
        return;
    }
    if (cqe->res <= 0) { ur_shut(c); return; } /* EOF or error */
    ur_pump(c);
    if (c->dead) return;
    if (c->in_len > IN_HIGH && c->recv_armed) ur_pause_recv(c);
    else if (!c->recv_armed && !c->is_parked && !c->recv_paused) ur_arm_recv(c);
}

static void ur_on_send(conn *c, struct io_uring_cqe *cqe)
{
    c->sending = 0;
    c->inflight--;
    if (c->dead) {
        if (c->inflight == 0) conn_free(c);
        return;
    }
    if (cqe->res < 0) { ur_shut(c); return; }
    atomic_fetch_add_explicit(&st_wr, (uint64_t)cqe->res, memory_order_relaxed);
    c->iov_frozen = 0;
    out_advance(c, (size_t)cqe->res);
    ur_pump(c);
}

static void ur_on_accept(worker *w, struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE)) ur_arm_accept(w);
    if (cqe->res < 0) return;
    conn *c = conn_new(w, cqe->res);
    if (c) ur_arm_recv(c);
}

/* Sets up w's ring and buffer ring; -errno when io_uring (or a provided
 * buffer ring) is not available here, and then nothing is left behind. */
static int ur_setup(worker *w, unsigned short bgid)
{
    struct io_uring_params pr;
    memset(&pr, 0, sizeof pr);
    /* TASKRUN_FLAG: the kernel flags pending completion work in the SQ
     * ring, so the busy poll below sees it without a system call */
    pr.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
               IORING_SETUP_TASKRUN_FLAG;
    pr.cq_entries = 16384;
    int rc = io_uring_queue_init_params(1024, &w->ring, &pr);
    if (rc < 0) {
        memset(&pr, 0, sizeof pr);
        pr.flags = IORING_SETUP_CQSIZE;
        pr.cq_entries = 16384;
        rc = io_uring_queue_init_params(1024, &w->ring, &pr);
    }
    if (rc < 0) return rc;
    struct io_uring_probe *probe = io_uring_get_probe_ring(&w->ring);
    int ok = probe && io_uring_opcode_supported(probe, IORING_OP_RECV) &&
             io_uring_opcode_supported(probe, IORING_OP_ACCEPT);
    if (probe) io_uring_free_probe(probe);
    if (!ok) { io_uring_queue_exit(&w->ring); return -EOPNOTSUPP; }
    rg_objpool_opts po = { .obj_size = RBUF_SIZE, .capacity = rbuf_count, .policy = RG_POOL_FAIL,
                           .name = "kvcache recv buffers" };
    w->bufs = rg_objpool_new(&po);
    rg_uring_bufring_opts bo = { .entries = rbuf_count, .bgid = bgid, .pool = w->bufs, .buf_size = RBUF_SIZE };
    w->br = w->bufs ? rg_uring_bufring_new(&w->ring, &bo) : NULL;
    if (!w->br) {
        rc = -errno;
        if (w->bufs) rg_objpool_free(w->bufs);
        w->bufs = NULL;
        io_uring_queue_exit(&w->ring);
        return rc;
    }
    return 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Busy poll (-B): before a loop sleeps it may spin for up to w->poll_ns
 * watching its rings, so a request that comes soon finds it awake: no
 * wake-up for the client's send to pay, no scheduling delay for the
 * reply.  The budget adapts as KVM's halt polling does: a sleep that
 * ended within the -B bound would have been caught by spinning, so the
 * budget grows (10 µs, doubling up to the bound); a longer one means the
 * loop is idle or lightly loaded, and the budget halves, down to no spin
 * at all — an idle server spins at most a few times after its last
 * request.  Returns 1 when completions (or completion work) came in. */
static int ur_spin(worker *w)
{
    if (!w->poll_ns) return 0;
    int64_t t0 = now_ns();
    for (unsigned i = 1;; i++) {
        if (io_uring_cq_ready(&w->ring)) return 1;
        if (IO_URING_READ_ONCE(*w->ring.sq.kflags) & IORING_SQ_TASKRUN) {
            io_uring_get_events(&w->ring); /* runs it: the CQEs post now */
            if (io_uring_cq_ready(&w->ring)) return 1;
        }
        __builtin_ia32_pause();
        if (!(i & 63)) {
            rg_safepoint(); /* a collector's handshake waits no longer than a turn's */
            if (now_ns() - t0 > w->poll_ns) return 0;
        }
    }
}

static void ur_poll_adapt(worker *w, int64_t slept_ns)
{
    if (slept_ns <= poll_max_ns) {
        w->poll_ns = w->poll_ns ? w->poll_ns * 2 : 10000;
        if (w->poll_ns > poll_max_ns) w->poll_ns = poll_max_ns;
    } else {
        w->poll_ns /= 2;
        if (w->poll_ns < 10000) w->poll_ns = 0;
    }
}

static void ur_loop(worker *w)
{
    ur_arm_accept(w);
    for (;;) {
        rg_safepoint(); /* item pointers held in locals end here */
        /* one system call a turn: completions already in (the common case
         * under load) only need the new requests submitted; with none, the
         * replies go out first, then the loop spins a little (-B) and only
         * then waits: the submit and the wait are one io_uring_enter,
         * parked (a blocked loop never delays the collector) */
        if (io_uring_cq_ready(&w->ring)) {
            io_uring_submit(&w->ring);
        } else if (poll_max_ns && (io_uring_submit(&w->ring), ur_spin(w))) {
            /* caught by the spin */
        } else {
            int64_t t0 = poll_max_ns ? now_ns() : 0;
            rg_park();
            io_uring_submit_and_wait(&w->ring, 1);
            rg_unpark();
            if (poll_max_ns) ur_poll_adapt(w, now_ns() - t0);
        }
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&w->ring, head, cqe) {
            uintptr_t ud = (uintptr_t)io_uring_cqe_get_data(cqe);
            conn *c = (conn *)(ud & ~(uintptr_t)7);
            switch ((int)(ud & 7)) {
            case OP_ACCEPT: ur_on_accept(w, cqe); break;
            case OP_RECV: ur_on_recv(w, c, cqe); break;
            case OP_SEND: ur_on_send(c, cqe); break;
            case OP_CANCEL: if (--c->inflight == 0 && c->dead) conn_free(c); break;
            default: break;
            }
            n++;
        }
        io_uring_cq_advance(&w->ring, n);
    }
}
#endif /* KV_URING */

static int use_uring;
static worker *workers;

static void *loop(void *arg)
{
    worker *w = arg;
    rg_thread_attach(); /* this loop reads items on the collected heap */
#ifdef KV_URING
    if (use_uring) {
        if (w != &workers[0]) { /* worker 0 was set up by main: that proved io_uring works */
            int rc = ur_setup(w, 0);
            if (rc < 0) { fprintf(stderr, "kvcache: io_uring: %s\n", strerror(-rc)); exit(1); }
        }
        ur_loop(w);
        return NULL;
    }
#endif
    ep_loop(w);
    return NULL;
}

int main(int argc, char **argv)
{
    int port = 11211, opt;
    const char *debug_addr = NULL;
    int force_epoll = 0;
    long busy_us = -1;
    while ((opt = getopt(argc, argv, "p:t:m:l:U:c:vD:EB:")) != -1) {
        switch (opt) {
        case 'E': force_epoll = 1; break;
        case 'B': { /* bad input: the usage below */
            char *e;
            busy_us = strtol(optarg, &e, 10);
            if (!*optarg || *e || busy_us < 0) busy_us = 1000001;
            break;
        }
        case 'p': port = atoi(optarg); break;
        case 't': nthreads = atoi(optarg); break;
        case 'm': limit_mib = atoll(optarg); break;
        case 'D': debug_addr = optarg; break;
        case 'l': if (strcmp(optarg, "127.0.0.1")) { fprintf(stderr, "kvcache: only 127.0.0.1\n"); return 2; } break;
        default: break; /* -U -c -v: accepted for memcached's command lines */
        }
    }
    if (nthreads < 1 || nthreads > 256 || limit_mib < 8 || port < 0 || port > 65535 || busy_us > 1000000) {
        fprintf(stderr, "usage: kvcache [-p PORT] [-t THREADS] [-m MiB>=8] [-B BUSY_POLL_US 0..1000000] [-D ADDR] [-E]\n");
        return 2;
    }
#ifdef KV_URING
    if (busy_us >= 0) poll_max_ns = busy_us * 1000;
#endif
    signal(SIGPIPE, SIG_IGN);
    /* one descriptor per client: take all the hard limit allows, as
     * memcached does for its -c */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    rg_set_memory_limit(limit_mib << 20);
    if (getrandom(hseed, sizeof hseed, 0) != (ssize_t)sizeof hseed) { /* no entropy: still a hash */
        hseed[0] = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
        hseed[1] = (uint64_t)getpid() * 0xbf58476d1ce4e5b9ull + 1;
        hseed[2] = (uint64_t)(uintptr_t)&hseed * 0x94d049bb133111ebull;
    }
    const char *hb = getenv("KVCACHE_TEST_HASH_BITS");
    if (hb && atoi(hb) > 0 && atoi(hb) < 64) hmask = ((uint64_t)1 << atoi(hb)) - 1;
    rg_thread_attach();
    start_time = now_s();
    if (!(ovf_map = rg_map_new_heap(0)) || !rg_root_add(&ovf_map)) {
        perror("rg_map_new_heap");
        return 1;
    }
    for (int i = 0; i < NSHARD; i++) {
        pthread_mutex_init(&shards[i].mu, NULL);
        if (!(shards[i].map = rg_map_new_heap(0)) || !rg_root_add(&shards[i].map)) {
            perror("rg_map_new_heap");
            return 1;
        }
    }
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(listen_fd, 4096) < 0 ||
        getsockname(listen_fd, (struct sockaddr *)&a, &al) < 0) {
        perror("kvcache: listen");
        return 1;
    }
    if (debug_addr) {
        int rc = rg_debug_serve(debug_addr);
        if (rc < 0) { fprintf(stderr, "kvcache: debug endpoint: %s\n", strerror(-rc)); return 1; }
        printf("debug port %d\n", rg_debug_port());
    }
    if (!(workers = rg_malloc_zeroed((size_t)nthreads, sizeof *workers))) { perror("kvcache"); return 1; }
#ifdef KV_URING
    rg_memstats m0;
    rg_read_memstats(&m0);
    rbuf_count = 8;
    while (rbuf_count < 256 && (uint64_t)rbuf_count * 2 * RBUF_SIZE * 32 * (uint64_t)nthreads <= (uint64_t)limit_mib << 20)
        rbuf_count *= 2;
    if (!force_epoll) {
        int rc = ur_setup(&workers[0], 0);
        if (rc == 0) {
            use_uring = 1;
            /* io_uring waits for the listener itself: a blocking socket
             * keeps its accepts off the -EAGAIN path */
            int fl = fcntl(listen_fd, F_GETFL);
            fcntl(listen_fd, F_SETFL, fl & ~O_NONBLOCK);
        } else {
            fprintf(stderr, "kvcache: io_uring unavailable (%s): epoll loop\n", strerror(-rc));
        }
    }
#endif
    (void)force_epoll;
    /* -m bounds the process, not only regio (the goal is RSS within 5% of
     * -m): regio's hard limit is -m + 4% less what the process holds outside
     * regio — its libraries' code and data, the rings the kernel maps —
     * measured now, each further loop counted like the first (its ring was
     * just set up), plus 1% of -m for thread stacks.  Without this the
     * heap may use the whole limit and RSS ends several MiB above -m.
     * The bound is -m + 4% (RSS_PCT): the goal is -m + 5%, and 1% is left
     * for what the estimate misses.  With the collector's margin under
     * the limit the heap commits ~90% of the limit, so RSS usually ends
     * near 94% of -m, but the limit is what holds it under a burst. */
    rg_memstats m1;
    rg_read_memstats(&m1);
    int64_t out0 = m0.rss > m0.sys ? (int64_t)(m0.rss - m0.sys) : 0;
    int64_t out1 = m1.rss > m1.sys ? (int64_t)(m1.rss - m1.sys) : 0;
    int64_t outside = out1 + (nthreads - 1) * (out1 > out0 ? out1 - out0 : 0) + (limit_mib << 20) / 100;
    int64_t lim = (limit_mib << 20) * RSS_PCT / 100 - outside;
    if (lim < (limit_mib << 20) / 2) lim = (limit_mib << 20) / 2;
    rg_set_memory_limit(lim);
    /* The items' budget: ITEM_PCT of regio's limit, counted in the heap
     * blocks the items take (heap_block()).  Under a limit the collector
     * starts a cycle at the latest when the heap reaches 90% of the room
     * the limit leaves it (its fixed margin for a collector thread that
     * does not run at once); what survives a cycle — the items and the
     * maps' tables — must stay clearly below that, or cycles run back to
     * back.  Measured at -m 64 with memcaslap's defaults (45 s, 1 thread):
     * 62% of the limit, 30,720 items, 39 cycles; 70%, 34,624 items, 80
     * cycles; 74%, 36,592 items, 209 cycles; 78%, 38,624 items, 4,123
     * cycles (live heap at the trigger, 4% of a CPU).  70% holds 1.7x the
     * items of the former 35% of -m (20,000) with a cycle every half
     * second or so.  KVCACHE_ITEM_PCT=N overrides it (tests use it to
     * check that the hit-ratio test can fail). */
    int item_pct = ITEM_PCT;
    const char *ip = getenv("KVCACHE_ITEM_PCT");
    if (ip && atoi(ip) > 0 && atoi(ip) <= 95) item_pct = atoi(ip);
    shard_budget = (size_t)lim / 100 * (size_t)item_pct / NSHARD;
    printf("loop %s\n", use_uring ? "io_uring" : "epoll");
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    pthread_t th;
    for (int i = 1; i < nthreads; i++) pthread_create(&th, NULL, loop, &workers[i]);
    loop(&workers[0]);
    return 0;
}
