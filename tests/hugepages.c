/* tests/hugepages.c — segment backing: explicit hugepages when reserved
 * (reserves a few as root and restores the previous count), THP otherwise,
 * 4 KiB when switched off.  Skips (77) when hugepages cannot be reserved. */
#include "cu.h"
#include "support.h"
#include "internal.h"

#include <sys/wait.h>
#include <unistd.h>

/* Runs `mode` in a fresh child (regio initializes once per process) and
 * returns the bytes committed with each backing after a 6 MiB allocation. */
static int child_backing(const char *mode, uint64_t out[3])
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        rg_config c;
        rg_config_default(&c);
        c.hugepages = strcmp(mode, "explicit") == 0 ? RG_HUGEPAGES_EXPLICIT
                    : strcmp(mode, "thp") == 0 ? RG_HUGEPAGES_THP : RG_HUGEPAGES_OFF;
        /* the parent already initialized regio: a child cannot re-init, so
         * it uses the internal knob the way rg_init would before first use */
        rgi_opt.hugepages = c.hugepages;
        void *p[6];
        for (int i = 0; i < 6; i++) {
            p[i] = rg_malloc(900 << 10);
            if (p[i])
                memset(p[i], 1, 900 << 10);
        }
        rg_memstats st;
        rg_read_memstats(&st);
        uint64_t v[3] = {st.bytes_4k, st.bytes_thp, st.bytes_hugetlb};
        ssize_t w = write(fds[1], v, sizeof v);
        _exit(w == sizeof v ? 0 : 1);
    }
    close(fds[1]);
    ssize_t r = read(fds[0], out, 3 * sizeof(uint64_t));
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    return r == 3 * sizeof(uint64_t) && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static void test_thp_and_off(void)
{
    uint64_t b[3];
    CU_ASSERT_EQUAL_FATAL(child_backing("off", b), 0);
    CU_ASSERT_EQUAL(b[RG_BACKING_HUGETLB], 0);
    CU_ASSERT(b[RG_BACKING_4K] >= (4u << 20));
    CU_ASSERT_EQUAL_FATAL(child_backing("thp", b), 0);
    CU_ASSERT(b[RG_BACKING_THP] >= (4u << 20));
}

static long saved = -1;

static void test_explicit(void)
{
    uint64_t b[3];
    CU_ASSERT_EQUAL_FATAL(child_backing("explicit", b), 0);
    CU_ASSERT(b[RG_BACKING_HUGETLB] >= (4u << 20));
}

int main(void)
{
    rg_init(NULL);
    saved = tu_read_long(TU_NR_HUGEPAGES);
    bool have = false;
    if (saved >= 0 && tu_hugepages_raise(saved, saved + 8) == 0)
        have = true;
    static const cu_test with[] = {
        {"THP and 4 KiB backings are reported", test_thp_and_off},
        {"explicit hugepages are used when reserved", test_explicit},
        {NULL, NULL},
    };
    static const cu_test without[] = {
        {"THP and 4 KiB backings are reported", test_thp_and_off},
        {NULL, NULL},
    };
    int rc = cu_run("hugepages", have ? with : without);
    if (have)
        tu_hp_restore(); /* the previous reservation, before the verdict */
    if (!have && rc == 0) {
        printf("hugepages: cannot reserve explicit hugepages here (not root?): explicit case skipped\n");
        return CU_SKIP_EXIT;
    }
    return rc;
}
