/* tests/dpdk_static.c — the "regio" ops in a static link, used the way a
 * DPDK program that only knows the name does: rte_mempool_set_ops_byname(mp,
 * "regio", NULL) and nothing else from regio.  This file references no
 * regio symbol; it links libregio.a with the flags regio.pc gives
 * (-Wl,-u,rg_dpdk_ops_register, see include/regio/dpdk.h), which must be
 * enough to pull the driver in.  Skips (77) when EAL cannot start here, and
 * under ThreadSanitizer (an EAL start takes 10-15 s there; the static link
 * is no concern of TSan's).
 */
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mempool.h>

#include "cu.h"
#include "support.h"
#include "regio/dpdk.h" /* RG_DPDK_OPS_NAME only: a macro, no symbol */

#include <string.h>

#if TU_UNDER_TSAN
#define SLOW_EAL 1
#endif

#ifdef SLOW_EAL
#pragma GCC diagnostic ignored "-Wunused-function" /* the case this build leaves out */
#endif

static void test_by_name(void)
{
    int found = 0;
    for (uint32_t i = 0; i < rte_mempool_ops_table.num_ops; i++)
        found += strcmp(rte_mempool_ops_table.ops[i].name, RG_DPDK_OPS_NAME) == 0;
    CU_ASSERT_EQUAL(found, 1); /* registered, once */

    struct rte_mempool *mp = rte_mempool_create_empty("static", 255, 64, 0, 0, SOCKET_ID_ANY, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mp);
    CU_ASSERT_EQUAL_FATAL(rte_mempool_set_ops_byname(mp, RG_DPDK_OPS_NAME, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(rte_mempool_populate_default(mp), 255);
    CU_ASSERT_STRING_EQUAL(rte_mempool_get_ops(mp->ops_index)->name, "regio");
    void *objs[255];
    CU_ASSERT_EQUAL(rte_mempool_get_bulk(mp, objs, 255), 0);
    CU_ASSERT_EQUAL(rte_mempool_avail_count(mp), 0);
    rte_mempool_put_bulk(mp, objs, 255);
    CU_ASSERT_EQUAL(rte_mempool_avail_count(mp), 255);
    rte_mempool_free(mp);
}

int main(void)
{
#ifdef SLOW_EAL
    printf("dpdk_static: skipped under ThreadSanitizer\n");
    return CU_SKIP_EXIT;
#else
    char *argv[] = {"test_dpdk_static", "--no-huge", "--no-pci", "-m", "256", "--no-shconf",
                    "--lcores=0@(0-1)", "--no-telemetry", "--log-level=lib.eal:warning", NULL};
    if (rte_eal_init((int)(sizeof argv / sizeof argv[0]) - 1, argv) < 0) {
        printf("dpdk_static: EAL cannot start here, skipping\n");
        return CU_SKIP_EXIT;
    }
    static const cu_test tests[] = {
        {"set_ops_byname(\"regio\") in a static link", test_by_name},
        {NULL, NULL},
    };
    int rc = cu_run("dpdk_static", tests);
    rte_eal_cleanup();
    return rc;
#endif
}
