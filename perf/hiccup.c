/* perf/hiccup.c — how long this machine stalls a running thread with no
 * context switch.  A thread reads the clock and its own context-switch
 * count in a loop for the given seconds; a gap between two reads with no
 * context switch between them is time the thread lost while it stayed on
 * its CPU: an interrupt or softirq handled on it (loopback networking runs
 * there), or, in a virtual machine, the host running something else on
 * the vCPU.  Benchmarks here classify a slow operation by the thread's
 * context switches (perf/bench_churn.c: "clean" when it had none); this
 * shows how long a clean stall the machine alone can cause.  Prints the
 * count, the longest and a histogram of such gaps over 0.2 ms.
 * Usage: hiccup [seconds (10)] */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long switches(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_nivcsw + ru.ru_nvcsw;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 10;
    if (!(secs > 0 && secs < 86400)) {
        fprintf(stderr, "usage: hiccup [seconds]\n");
        return 2;
    }
    static const uint64_t edge_us[] = {500, 1000, 2000, 5000, 10000};
    uint64_t hist[6] = {0}, n = 0, max = 0, loops = 0;
    uint64_t last = now_ns(), end = last + (uint64_t)(secs * 1e9);
    long cs0 = switches(), cs_total = 0;
    for (;;) {
        long cs = switches();
        uint64_t t = now_ns(), gap = t - last;
        if (cs == cs0 && gap > 200000) {
            unsigned b = 0;
            while (b < 5 && gap >= edge_us[b] * 1000)
                b++;
            hist[b]++;
            n++;
            if (gap > max)
                max = gap;
        }
        cs_total += cs - cs0;
        cs0 = cs;
        last = t;
        loops++;
        if (t >= end)
            break;
    }
    printf("hiccup secs=%.0f loops=%llu context_switches=%ld clean_gaps_over_0.2ms=%llu clean_max_ms=%.2f "
           "hist_ms[0.2-0.5,0.5-1,1-2,2-5,5-10,>=10]=%llu,%llu,%llu,%llu,%llu,%llu\n",
           secs, (unsigned long long)loops, cs_total, (unsigned long long)n, (double)max / 1e6,
           (unsigned long long)hist[0], (unsigned long long)hist[1], (unsigned long long)hist[2],
           (unsigned long long)hist[3], (unsigned long long)hist[4], (unsigned long long)hist[5]);
    return 0;
}
