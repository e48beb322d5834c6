/* tests/gc_nodes.h — the collector suites' test object: a node with two
 * heap pointers, an id and a checksum of the id, so a freed or overwritten
 * node shows up as a bad checksum; plus a pointer-array type. */
#ifndef REGIO_TESTS_GC_NODES_H
#define REGIO_TESTS_GC_NODES_H

#include "regio.h"

#include <stddef.h>
#include <stdint.h>

typedef struct node {
    struct node *a, *b;
    uint64_t id, check;
} node;
static const size_t node_ptrs[] = {offsetof(node, a), offsetof(node, b)};
static const rg_type node_t = {"node", sizeof(node), node_ptrs, 2, NULL};
static const size_t arr_off[] = {0};
static const rg_type ptr_t = {"ptrs", sizeof(void *), arr_off, 1, NULL};

/* A 64-bit finalizer mix (splitmix64's): the checksum of an id. */
static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    return x ^ (x >> 33);
}

/* A new node with its id and checksum; NULL (errno set) when refused. */
static inline node *mk(uint64_t id)
{
    node *n = rg_new(&node_t);
    if (n) {
        n->id = id;
        n->check = mix(id);
    }
    return n;
}

static inline int node_ok(const node *n)
{
    return n->check == mix(n->id);
}

#endif
