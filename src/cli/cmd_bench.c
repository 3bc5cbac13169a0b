/*
 * `outboard bench -m MODEL.gguf -p 512 -n 128 -r 3 [-d DEPTH] [-t THREADS] [--json]`: prompt
 * processing (pp: one pass over p tokens) and text generation (tg: n single-token passes)
 * speed, from an empty cache or, with -d, after DEPTH tokens already in it (evaluated before
 * each run, untimed: what a long conversation's next turn costs), measured the way llama-bench
 * measures them (random token ids, one warm-up run unless --no-warmup, then r timed runs;
 * llama-bench's -d is the same depth), printed as a markdown table or JSON. The table
 * gives the median of the runs (what BENCHMARKS.md quotes on a shared, noisy machine) and the
 * mean with its standard deviation.
 */
#include "cli/cli.h"
#include "cli/cli_args.h"
#include "core/alloc.h"
#include "outboard.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_result {
    const char *test; /* "pp" or "tg" */
    int64_t n;
    double *ts;       /* (reps) tokens per second of each run */
    double median, mean, sd;
} bench_result;

static int usage(FILE *to) {
    fprintf(to, "usage: outboard bench -m MODEL.gguf [-p 512] [-n 128] [-r 5] [-d DEPTH] [-t THREADS] "
                "[--device cpu|cuda[:N]|vulkan[:N]|auto] [--gpu-layers N|auto]\n"
                "  [--vram-budget SIZE] [--link-emulate GBPS[,LATENCY_US]]\n"
                "  [--experts host|device|auto] [--stream-weights auto|off|N]\n"
                "  [--no-warmup] [--json]\n");
    return to == stdout ? 0 : 2;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarize(bench_result *r, int64_t reps) {
    double *sorted = ob_alloc((size_t)reps, sizeof *sorted);
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < reps; i++) sum += r->ts[i];
    r->mean = sum / (double)reps;
    for (int64_t i = 0; i < reps; i++) sq += (r->ts[i] - r->mean) * (r->ts[i] - r->mean);
    r->sd = reps > 1 ? sqrt(sq / (double)(reps - 1)) : 0.0;
    if (sorted) {
        memcpy(sorted, r->ts, (size_t)reps * sizeof *sorted);
        qsort(sorted, (size_t)reps, sizeof *sorted, cmp_double);
        r->median = reps % 2 ? sorted[reps / 2] : (sorted[reps / 2 - 1] + sorted[reps / 2]) / 2;
        ob_free(sorted);
    }
}

/* One timed run after `depth` tokens (evaluated first, in passes of `batch`, untimed): pp
 * evaluates all n tokens in one call, tg one token per call. The cache starts empty each run
 * (a recurrent state cannot be cut back to the depth). Returns tok/s. */
static ob_status run_once(ob_context *c, const int32_t *toks, int64_t depth, int64_t batch,
                          int64_t n, bool pp, double *ts, ob_err *err) {
    ob_status st = ob_context_truncate(c, 0, err);
    for (int64_t at = 0; !st && at < depth; at += batch)
        st = ob_eval(c, toks + at, depth - at < batch ? depth - at : batch, false, err);
    if (st) return st;
    const int32_t *run = toks + depth;
    double t0 = cli_now();
    if (pp) st = ob_eval(c, run, n, false, err);
    for (int64_t i = 0; !pp && !st && i < n; i++) st = ob_eval(c, run + i, 1, false, err);
    *ts = (double)n / (cli_now() - t0);
    return st;
}

static ob_status measure(ob_context *c, const int32_t *toks, int64_t depth, int64_t batch,
                         bench_result *r, int64_t reps, bool warm_up, ob_err *err) {
    bool pp = r->test[0] == 'p';
    double warm;
    ob_status st = warm_up ? run_once(c, toks, depth, batch, r->n, pp, &warm, err) : OB_OK;
    for (int64_t i = 0; !st && i < reps; i++)
        st = run_once(c, toks, depth, batch, r->n, pp, &r->ts[i], err);
    if (!st) summarize(r, reps);
    return st;
}

static void print_results(const cli_bench_args *o, const ob_model_info *info, const char *name,
                          bench_result *rs, int n_rs, int threads, const char *backend) {
    if (o->json) {
        printf("[\n");
        for (int i = 0; i < n_rs; i++) {
            printf("  {\"model\": \"%s\", \"type\": \"%s\", \"n_params\": %llu, \"size\": %llu, "
                   "\"n_threads\": %d, \"backend\": \"%s\", \"test\": \"%s%lld\", "
                   "\"n_depth\": %lld, \"samples_ts\": [", name, info->type_name,
                   (unsigned long long)info->n_params, (unsigned long long)info->n_bytes,
                   threads, backend, rs[i].test, (long long)rs[i].n, (long long)o->depth);
            for (int64_t k = 0; k < o->reps; k++) printf("%s%.3f", k ? ", " : "", rs[i].ts[k]);
            printf("], \"median_ts\": %.3f, \"avg_ts\": %.3f, \"stddev_ts\": %.3f}%s\n",
                   rs[i].median, rs[i].mean, rs[i].sd, i + 1 < n_rs ? "," : "");
        }
        printf("]\n");
        return;
    }
    printf("| model | type | size | params | backend | threads | test | t/s (median) | t/s (mean ± sd) |\n");
    printf("| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
    for (int i = 0; i < n_rs; i++) {
        char test[64];
        if (o->depth > 0)
            snprintf(test, sizeof test, "%s%lld @ d%lld", rs[i].test, (long long)rs[i].n,
                     (long long)o->depth);
        else snprintf(test, sizeof test, "%s%lld", rs[i].test, (long long)rs[i].n);
        printf("| %s | %s | %.2f GiB | %.2f B | %s | %d | %s | %.2f | %.2f ± %.2f |\n",
               name, info->type_name, (double)info->n_bytes / 1073741824.0,
               (double)info->n_params / 1e9, backend, threads, test, rs[i].median, rs[i].mean,
               rs[i].sd);
    }
}

int cli_cmd_bench(int argc, char **argv) {
    cli_bench_args o;
    ob_err err = {{0}};
    if (cli_bench_args_parse(argc, argv, &o, &err)) {
        fprintf(stderr, "outboard bench: %s\n", err.msg);
        return usage(stderr);
    }
    if (o.help) return usage(stdout);
    ob_model *m = NULL;
    if (cli_load_model(o.model, &m)) return 1;
    ob_model_info info;
    ob_model_get_info(m, &info);
    int64_t n_max = o.n_prompt > o.n_gen ? o.n_prompt : o.n_gen;
    ob_context_params cp;
    ob_context_params_init(&cp);
    cp.n_ctx = o.depth + (n_max > 0 ? n_max : 1);
    /* the depth is filled in passes of up to 512 tokens, or of the prompt when longer */
    const int64_t fill = o.depth < 512 ? o.depth : 512;
    cp.n_batch = o.n_prompt > fill ? o.n_prompt : fill > 0 ? fill : 1;
    cp.n_threads = o.threads;
    cp.device = o.device;
    cp.device_index = o.device_index;
    cp.n_gpu_layers = o.gpu_layers;
    cp.vram_budget = o.vram_budget;
    cp.link_gbps = o.link_gbps;
    cp.link_latency_us = o.link_latency_us;
    cp.experts = o.experts;
    cp.stream_min_tok = o.stream_min_tok;
    ob_context *c = NULL;
    int32_t *toks = ob_alloc((size_t)cp.n_ctx, sizeof *toks);
    double *ts = ob_alloc((size_t)o.reps * 2, sizeof *ts);
    bench_result rs[2];
    int n_rs = 0, rc = 1;
    cli_ctx_warn("bench", m, cp.n_ctx);
    if (!toks || !ts || cli_context_new(m, &cp, &c, &err)) goto done;
    uint64_t rng = 1234567;
    for (int64_t i = 0; i < cp.n_ctx; i++) { /* random ids, as llama-bench uses */
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((rng >> 33) % (uint64_t)info.n_vocab);
    }
    if (o.n_prompt > 0) rs[n_rs++] = (bench_result){"pp", o.n_prompt, ts, 0, 0, 0};
    if (o.n_gen > 0) rs[n_rs++] = (bench_result){"tg", o.n_gen, ts + o.reps, 0, 0, 0};
    for (int i = 0; i < n_rs; i++)
        if (measure(c, toks, o.depth, cp.n_batch, &rs[i], o.reps, !o.no_warmup, &err))
            goto done;
    const char *name = strrchr(o.model, '/') ? strrchr(o.model, '/') + 1 : o.model;
    print_results(&o, &info, name, rs, n_rs, ob_context_n_threads(c), ob_context_placement(c));
    cli_device_report(stderr, c);
    rc = 0;
done:
    if (rc) fprintf(stderr, "outboard bench: %s\n", err.msg[0] ? err.msg : "out of memory");
    ob_context_free(c);
    ob_free(toks);
    ob_free(ts);
    ob_model_free(m);
    return rc;
}
