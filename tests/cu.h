/* tests/cu.h — the CUnit runner every suite shares.
 *
 * CUnit's basic runner returns success even when assertions fail, so
 * cu_run() reads the failure counts itself and exits non-zero; a suite that
 * needs a missing kernel feature exits 77 (meson's "skipped").
 */
#ifndef REGIO_TESTS_CU_H
#define REGIO_TESTS_CU_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct cu_test { const char *name; void (*fn)(void); } cu_test;

#define CU_SKIP_EXIT 77

static inline int cu_run(const char *suite, const cu_test *tests)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);
    if (s == NULL)
        return 2;
    for (const cu_test *t = tests; t->name; t++)
        if (CU_add_test(s, t->name, t->fn) == NULL)
            return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    unsigned suites_failed = CU_get_number_of_suites_failed();
    unsigned tests_failed = CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    printf("%s: %u tests run, %u failed, %u assertion failures\n", suite, run, tests_failed, failures);
    return (failures || suites_failed || tests_failed) ? 1 : 0;
}

#endif
