/* pool/debug.c — the pools' misuse detector for debug_checks builds: a
 * registry of the objects a pool knows (out or idle), so a double put and a
 * put of a pointer the pool never handed out are diagnosed without reading
 * the pointer's memory, and a hash of each idle object's bytes (FNV-1a), so
 * a write after put is caught at the next get even without ASan (under ASan
 * the idle bytes are poisoned instead and fault at once).  The
 * diagnostic names the call, the pool and the object.
 *
 * The table is open addressing with linear probing and tombstones, under a
 * mutex; it grows with memory allocated outside the mutex, because an
 * allocation may run the limit ladder, which drains (and so locks) pools.
 */
#include "pool_internal.h"

#define TOMB ((uintptr_t)1)

void rgi_objreg_init(rgi_objreg *r, const char *kind, const char *name, const void *pool)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->kind = kind;
    r->name = name;
    r->pool = pool;
}

void rgi_objreg_fini(rgi_objreg *r)
{
    rgi_arena_free(r->t);
    r->t = NULL;
    pthread_mutex_destroy(&r->lock);
}

static inline size_t hash_ptr(uintptr_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k;
}

static struct rgi_objreg_ent *find_locked(rgi_objreg *r, uintptr_t key, bool for_insert)
{
    if (r->cap == 0)
        return NULL;
    struct rgi_objreg_ent *tomb = NULL;
    for (size_t i = hash_ptr(key) & (r->cap - 1);; i = (i + 1) & (r->cap - 1)) {
        struct rgi_objreg_ent *e = &r->t[i];
        if (e->key == key)
            return e;
        if (e->key == TOMB && tomb == NULL)
            tomb = e;
        if (e->key == 0)
            return for_insert ? (tomb ? tomb : e) : NULL;
    }
}

static void rehash_into_locked(rgi_objreg *r, struct rgi_objreg_ent *t, size_t cap)
{
    struct rgi_objreg_ent *old = r->t;
    size_t oldcap = r->cap;
    memset(t, 0, cap * sizeof *t);
    r->t = t;
    r->cap = cap;
    r->used = r->n;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key > TOMB)
            *find_locked(r, old[i].key, true) = old[i];
    r->t = t;
    (void)old;
}

int rgi_objreg_state(rgi_objreg *r, const void *obj)
{
    pthread_mutex_lock(&r->lock);
    struct rgi_objreg_ent *e = find_locked(r, (uintptr_t)obj, false);
    int st = e ? (int)e->state : -1;
    pthread_mutex_unlock(&r->lock);
    return st;
}

int rgi_objreg_set(rgi_objreg *r, const void *obj, int state, uint64_t sum)
{
    for (;;) {
        pthread_mutex_lock(&r->lock);
        struct rgi_objreg_ent *e = find_locked(r, (uintptr_t)obj, false);
        if (e == NULL && (r->used + 1) * 10 < r->cap * 7) {
            e = find_locked(r, (uintptr_t)obj, true);
            r->used += e->key == 0;
            r->n++;
            e->key = (uintptr_t)obj;
        }
        if (e != NULL) {
            e->state = (uint32_t)state;
            e->sum = sum;
            pthread_mutex_unlock(&r->lock);
            return 0;
        }
        size_t cap = r->cap ? r->cap : 64;
        while ((r->n + 1) * 10 >= cap * 5)
            cap *= 2;
        pthread_mutex_unlock(&r->lock);
        struct rgi_objreg_ent *t = rgi_arena_malloc(cap * sizeof *t);
        if (t == NULL)
            return -ENOMEM;
        pthread_mutex_lock(&r->lock);
        struct rgi_objreg_ent *old = r->t;
        if (cap > r->cap || (r->used + 1) * 10 >= r->cap * 7) {
            rehash_into_locked(r, t, cap);
            t = old;
        }
        pthread_mutex_unlock(&r->lock);
        rgi_arena_free(t);
    }
}

void rgi_objreg_del(rgi_objreg *r, const void *obj)
{
    pthread_mutex_lock(&r->lock);
    struct rgi_objreg_ent *e = find_locked(r, (uintptr_t)obj, false);
    if (e) {
        e->key = TOMB;
        r->n--;
    }
    pthread_mutex_unlock(&r->lock);
}

static uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

int rgi_objreg_put(rgi_objreg *r, const char *call, void *obj, size_t n, bool must_know)
{
    int st = rgi_objreg_state(r, obj);
    if (st == RGI_OBJ_IDLE) {
        rgi_diag(call, "%s \"%s\" (%p): double put of object %p (it is already in the pool)",
                 r->kind, r->name, r->pool, obj);
        return -EINVAL;
    }
    if (st < 0 && must_know) {
        rgi_diag(call, "%s \"%s\" (%p): put of foreign pointer %p (this pool did not hand it out)",
                 r->kind, r->name, r->pool, obj);
        return -EINVAL;
    }
    uint64_t sum = n ? fnv1a(obj, n) : 0;
    if (rgi_objreg_set(r, obj, RGI_OBJ_IDLE, sum) != 0)
        return 0; /* out of memory for the checker: check less, never fail the put */
    /* Only ASan poisons here: the other poisoning modes overwrite the bytes,
     * and a pooled object keeps its contents (reset_fn may have prepared
     * them); the hash catches a write after put there. */
    if (n && RGI_ASAN)
        rgi_poison(obj, n);
    return 0;
}

void rgi_objreg_get(rgi_objreg *r, const char *call, void *obj, size_t n, bool keep)
{
    if (n && RGI_ASAN)
        rgi_unpoison(obj, n);
    pthread_mutex_lock(&r->lock);
    struct rgi_objreg_ent *e = find_locked(r, (uintptr_t)obj, false);
    uint64_t sum = e ? e->sum : 0;
    int st = e ? (int)e->state : -1;
    pthread_mutex_unlock(&r->lock);
    if (st == RGI_OBJ_IDLE && n && !RGI_ASAN && fnv1a(obj, n) != sum)
        rgi_diag(call, "%s \"%s\" (%p): object %p was written after it was put (use after put)",
                 r->kind, r->name, r->pool, obj);
    if (keep)
        rgi_objreg_set(r, obj, RGI_OBJ_OUT, 0);
    else
        rgi_objreg_del(r, obj);
}
