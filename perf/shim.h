/* perf/shim.h — a C face for Google Benchmark (1.7.x), so regio's benchmark
 * bodies are plain C while the harness stays the standard one.
 *
 * ---------------------------------------------------------------------------
 * Contract of this section
 * ---------------------------------------------------------------------------
 * A benchmark is a C function `void body(rgb_state *st)` that does its
 * per-thread setup, then loops while rgb_keep_running_batch() (or
 * rgb_keep_running()) says so, then tears down.  Register bodies with
 * rgb_register() from your own main(), then return rgb_main(argc, argv):
 *
 *     static void bm_thing(rgb_state *st) {
 *         thing *t = thing_new();                   // per thread, untimed
 *         while (rgb_keep_running_batch(st, 16))    // one call per 16 iterations
 *             for (int i = 0; i < 16; i++)
 *                 thing_op(t);
 *         thing_free(t);
 *         rgb_set_items_per_iteration(st, 1);
 *     }
 *     int main(int argc, char **argv) {
 *         static const int threads[] = {1, 2, 0};
 *         rgb_register(&(rgb_def){.name = "thing/op", .body = bm_thing, .threads = threads});
 *         return rgb_main(argc, argv);
 *     }
 *
 *  - Timing is Google Benchmark's: per-thread CPU time by default
 *    (rgb_def.real_time = 1 for wall time); multi-threaded runs call the body
 *    once per thread, concurrently; `iterations` in the output are summed over
 *    threads, so cpu_time per iteration is the cost one thread pays.
 *  - rgb_keep_running_batch(st, n) costs one out-of-line call per n
 *    iterations: use it when an iteration is a few nanoseconds.  Iteration
 *    counts are then multiples of n (Google Benchmark keeps the leftover).
 *  - rgb_set_items_per_iteration(st, k) sets items_processed (items/s in the
 *    console) and a counter `per_item`: seconds of CPU (or wall) time per
 *    item, averaged over threads ("842ps" in the console, 8.42e-10 in JSON).
 *  - Count mode, for instruction counts under callgrind: `--rgb_count=REGEX:N`
 *    runs, instead of Google Benchmark, every registered body whose name
 *    matches REGEX (POSIX extended), on one thread whatever its thread counts, for N
 *    iterations (rounded up to the batch size), inside the non-inlined
 *    function rgb_counted_run(), and prints "rgb_count NAME ITERATIONS ITEMS".
 *    Run it as `valgrind --tool=callgrind --collect-atstart=no
 *    --toggle-collect=rgb_counted_run BIN --rgb_count=...`; instructions per
 *    item = Ir / ITEMS.  The body's own setup is inside the count: keep N
 *    large enough that it vanishes.
 *  - rgb_main() returns 0 on success, 1 when arguments are unrecognised, and
 *    2 when no benchmark ran (a filter that matches nothing: Google
 *    Benchmark itself would exit 0).
 *  - Other flags are Google Benchmark's (Debian 1.7.1): --benchmark_filter,
 *    --benchmark_repetitions, --benchmark_min_time=0.2 (a plain number of
 *    seconds), --benchmark_format=json, --benchmark_out=FILE, ...
 */
#ifndef REGIO_PERF_SHIM_H
#define REGIO_PERF_SHIM_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rgb_state rgb_state;
typedef void rgb_body(rgb_state *st);

/* Flags of rgb_counter(), mirroring benchmark::Counter::Flags. */
enum {
    RGB_COUNTER_DEFAULT = 0,
    RGB_COUNTER_RATE = 1 << 0,                /* divided by the time */
    RGB_COUNTER_AVG_THREADS = 1 << 1,         /* divided by the thread count */
    RGB_COUNTER_ITERATION_INVARIANT = 1 << 2, /* multiplied by the iterations */
    RGB_COUNTER_AVG_ITERATIONS = 1 << 3,      /* divided by the iterations */
    RGB_COUNTER_INVERT = 1 << 4,              /* 1/x, last */
};

typedef struct rgb_def {
    const char *name;     /* shown as NAME/threads:T; copied */
    rgb_body *body;       /* called once per thread per run */
    void *arg;            /* rgb_arg() */
    const int *threads;   /* 0-terminated thread counts; NULL = {1} */
    const int64_t *args;  /* nargs values: one run each, named NAME/ARG, read by rgb_range() */
    int nargs;            /* 0 = one run without an argument */
    double min_time;      /* seconds; 0 = the harness default or --benchmark_min_time */
    int real_time;        /* 1: report wall time instead of CPU time */
} rgb_def;

/* Registers a benchmark; returns 0, or -EINVAL for a missing name/body.
 * Call before rgb_main(). */
int rgb_register(const rgb_def *d);

/* Adds key: value to the run's context (the console header and the JSON
 * "context" object), e.g. which library provides malloc.  Before rgb_main. */
void rgb_add_context(const char *key, const char *value);

/* Initializes Google Benchmark with argc/argv (or runs count mode), runs
 * the registered benchmarks, shuts down.  See the contract for the result. */
int rgb_main(int argc, char **argv);

/* The loop.  keep_running: one iteration per call; batch: n per call. */
bool rgb_keep_running(rgb_state *st);
bool rgb_keep_running_batch(rgb_state *st, uint64_t n);

/* Per-run facts. */
void *rgb_arg(const rgb_state *st);
int rgb_thread_index(const rgb_state *st);
int rgb_threads(const rgb_state *st);
int64_t rgb_range(const rgb_state *st); /* the rgb_def.args value of this run, else 0 */
bool rgb_counting(const rgb_state *st); /* true in count mode */

/* Reporting. */
void rgb_set_items_per_iteration(rgb_state *st, double k);
void rgb_set_bytes_processed(rgb_state *st, int64_t bytes);
void rgb_counter(rgb_state *st, const char *name, double value, unsigned flags);
void rgb_set_label(rgb_state *st, const char *label);
/* Marks the run as failed with msg; the body should then leave its loop
 * (rgb_keep_running* return false from then on). */
void rgb_skip_with_error(rgb_state *st, const char *msg);
void rgb_pause_timing(rgb_state *st);
void rgb_resume_timing(rgb_state *st);

/* Keep a value or all memory writes alive across the optimizer. */
static inline void rgb_do_not_optimize(const void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}
static inline void rgb_clobber_memory(void)
{
    __asm__ volatile("" : : : "memory");
}

#ifdef __cplusplus
}
#endif
#endif /* REGIO_PERF_SHIM_H */
