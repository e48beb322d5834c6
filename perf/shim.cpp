// perf/shim.cpp — the C++ half of perf/shim.h: registers C benchmark bodies
// with Google Benchmark and forwards the loop and reporting calls.
//
// Why a shim: regio and its benchmark bodies are C; Google Benchmark's API is
// C++ templates.  Each C body runs inside a lambda that wraps the harness's
// State in an rgb_state; the loop call is out of line, so bodies batch their
// iterations (rgb_keep_running_batch) to keep the call off the measured cost.
// Count mode runs the same bodies without the harness, for callgrind.
#include "shim.h"

#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <regex.h>
#include <string>
#include <vector>

struct rgb_state {
    benchmark::State *gb; // NULL in count mode
    const rgb_def *def;
    int64_t range;
    uint64_t left;        // count mode: iterations still to run
    uint64_t done;        // count mode: iterations run
    double items;         // items per iteration, from rgb_set_items_per_iteration
};

extern "C" void rgb_counted_run(rgb_body *body, rgb_state *st);

namespace {

struct entry {
    std::string name;
    rgb_def def;
    std::vector<int> threads;
    std::vector<int64_t> args;
};

std::vector<entry> &registry()
{
    static std::vector<entry> r;
    return r;
}

benchmark::Counter::Flags map_flags(unsigned f)
{
    int out = 0;
    if (f & RGB_COUNTER_RATE) out |= benchmark::Counter::kIsRate;
    if (f & RGB_COUNTER_AVG_THREADS) out |= benchmark::Counter::kAvgThreads;
    if (f & RGB_COUNTER_ITERATION_INVARIANT) out |= benchmark::Counter::kIsIterationInvariant;
    if (f & RGB_COUNTER_AVG_ITERATIONS) out |= benchmark::Counter::kAvgIterations;
    if (f & RGB_COUNTER_INVERT) out |= benchmark::Counter::kInvert;
    return static_cast<benchmark::Counter::Flags>(out);
}

int run_count_mode(const char *spec)
{
    // REGEX:N, split at the last ':' so the regex may contain colons.
    const char *colon = std::strrchr(spec, ':');
    if (colon == nullptr || colon[1] == '\0') {
        std::fprintf(stderr, "rgb: --rgb_count wants REGEX:ITERATIONS, got '%s'\n", spec);
        return 1;
    }
    std::string re_src(spec, static_cast<size_t>(colon - spec));
    char *endp = nullptr;
    unsigned long long n = std::strtoull(colon + 1, &endp, 10);
    if (*endp != '\0' || n == 0) {
        std::fprintf(stderr, "rgb: bad iteration count in '%s'\n", spec);
        return 1;
    }
    regex_t re;
    if (regcomp(&re, re_src.c_str(), REG_EXTENDED | REG_NOSUB) != 0) {
        std::fprintf(stderr, "rgb: bad regex '%s'\n", re_src.c_str());
        return 1;
    }
    int ran = 0;
    for (const entry &e : registry()) {
        size_t nruns = e.args.empty() ? 1 : e.args.size();
        for (size_t i = 0; i < nruns; i++) {
            std::string name = e.name;
            if (!e.args.empty())
                name += "/" + std::to_string(e.args[i]);
            if (regexec(&re, name.c_str(), 0, nullptr, 0) != 0)
                continue;
            rgb_state st{};
            st.def = &e.def;
            st.range = e.args.empty() ? 0 : e.args[i];
            st.left = n;
            rgb_counted_run(e.def.body, &st);
            std::printf("rgb_count %s %llu %.0f\n", name.c_str(), (unsigned long long)st.done,
                        (double)st.done * st.items);
            ran++;
        }
    }
    regfree(&re);
    if (ran == 0) {
        std::fprintf(stderr, "rgb: no benchmark matches '%s'\n", re_src.c_str());
        return 2;
    }
    return 0;
}

} // namespace

extern "C" {

// Out of line and with C linkage so callgrind's --toggle-collect can name it.
__attribute__((noinline)) void rgb_counted_run(rgb_body *body, rgb_state *st);
__attribute__((noinline)) void rgb_counted_run(rgb_body *body, rgb_state *st)
{
    body(st);
    __asm__ volatile("" ::: "memory"); // not a tail call: the toggle must see the return
}

int rgb_register(const rgb_def *d)
{
    if (d == nullptr || d->name == nullptr || d->body == nullptr)
        return -EINVAL;
    entry e;
    e.name = d->name;
    e.def = *d;
    for (const int *t = d->threads; t && *t; t++)
        e.threads.push_back(*t);
    if (e.threads.empty())
        e.threads.push_back(1);
    for (int i = 0; i < d->nargs; i++)
        e.args.push_back(d->args[i]);
    e.def.threads = nullptr; // the caller's arrays need not outlive this call
    e.def.args = nullptr;
    registry().push_back(std::move(e));
    return 0;
}

void rgb_add_context(const char *key, const char *value)
{
    benchmark::AddCustomContext(key, value);
}

int rgb_main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (std::strncmp(argv[i], "--rgb_count=", 12) == 0)
            return run_count_mode(argv[i] + 12);

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    for (const entry &e : registry()) {
        const rgb_def *def = &e.def; // registry() is complete: addresses are stable now
        bool has_arg = !e.args.empty();
        benchmark::internal::Benchmark *b = benchmark::RegisterBenchmark(
            e.name.c_str(), [def, has_arg](benchmark::State &gs) {
                rgb_state st{};
                st.gb = &gs;
                st.def = def;
                st.range = has_arg ? gs.range(0) : 0; // range(0) without an Arg aborts
                def->body(&st);
            });
        for (int64_t a : e.args)
            b->Arg(a);
        for (int t : e.threads)
            b->Threads(t);
        if (e.def.min_time > 0)
            b->MinTime(e.def.min_time);
        if (e.def.real_time)
            b->UseRealTime();
    }
    size_t ran = benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    if (ran == 0) {
        std::fprintf(stderr, "rgb: no benchmark matched the filter\n");
        return 2;
    }
    return 0;
}

bool rgb_keep_running(rgb_state *st)
{
    return rgb_keep_running_batch(st, 1);
}

bool rgb_keep_running_batch(rgb_state *st, uint64_t n)
{
    if (st->gb)
        return st->gb->KeepRunningBatch(static_cast<benchmark::IterationCount>(n));
    if (st->left == 0)
        return false;
    st->left = st->left > n ? st->left - n : 0;
    st->done += n;
    return true;
}

void *rgb_arg(const rgb_state *st) { return st->def->arg; }
int rgb_thread_index(const rgb_state *st) { return st->gb ? st->gb->thread_index() : 0; }
int rgb_threads(const rgb_state *st) { return st->gb ? st->gb->threads() : 1; }
int64_t rgb_range(const rgb_state *st) { return st->range; }
bool rgb_counting(const rgb_state *st) { return st->gb == nullptr; }

void rgb_set_items_per_iteration(rgb_state *st, double k)
{
    st->items = k;
    if (!st->gb)
        return;
    st->gb->SetItemsProcessed(static_cast<int64_t>(k * static_cast<double>(st->gb->iterations())));
    // Summed over threads, then: / time, / threads, * iterations, inverted
    // = time per item, as one thread sees it.
    st->gb->counters["per_item"] = benchmark::Counter(
        k, static_cast<benchmark::Counter::Flags>(benchmark::Counter::kIsIterationInvariantRate |
                                                  benchmark::Counter::kAvgThreads |
                                                  benchmark::Counter::kInvert));
}

void rgb_set_bytes_processed(rgb_state *st, int64_t bytes)
{
    if (st->gb)
        st->gb->SetBytesProcessed(bytes);
}

void rgb_counter(rgb_state *st, const char *name, double value, unsigned flags)
{
    if (st->gb)
        st->gb->counters[name] = benchmark::Counter(value, map_flags(flags));
}

void rgb_set_label(rgb_state *st, const char *label)
{
    if (st->gb)
        st->gb->SetLabel(label);
}

void rgb_skip_with_error(rgb_state *st, const char *msg)
{
    if (st->gb)
        st->gb->SkipWithError(msg);
    else {
        std::fprintf(stderr, "rgb: %s\n", msg);
        st->left = 0;
    }
}

void rgb_pause_timing(rgb_state *st)
{
    if (st->gb)
        st->gb->PauseTiming();
}

void rgb_resume_timing(rgb_state *st)
{
    if (st->gb)
        st->gb->ResumeTiming();
}

} // extern "C"
