/*
 * Decode throughput of many sequences: N sequences, each with CTX cached positions, advance by
 * one token each, either in one ob_decode of N entries (every weight read once for all of
 * them) or as N single-entry ob_decode calls (every weight read N times). Prints, per N, the
 * best of R rounds as aggregate tok/s for both and their ratio. While decode stays bound by
 * memory bandwidth the batched rate approaches N times one stream's.
 *
 *   build/bench/batch_bench MODEL.gguf [threads 2] [ctx 256] [rounds 3] [N...: 1 4 8 16]
 */
#include "outboard.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX_N 64

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const char *what, const ob_err *err) {
    fprintf(stderr, "batch_bench: %s: %s\n", what, err->msg);
    return 1;
}

/* Fills sequences 0..n-1 with ctx positions each (prefill, one sequence per call). */
static ob_status prefill(ob_context *c, ob_batch *b, int n, int64_t ctx, ob_err *err) {
    for (int32_t s = 0; s < n; s++) {
        ob_seq_free(c, s);
        ob_batch_clear(b);
        for (int64_t p = 0; p < ctx; p++)
            ob_batch_add(b, 3 + (int32_t)((p * 7 + s * 13) % 200), p, s, p == ctx - 1, NULL);
        ob_status st = ob_decode(c, b, err);
        if (st) return st;
    }
    return OB_OK;
}

/* One step of n sequences: one batch (batched) or n batches of one. Seconds taken. */
static double step(ob_context *c, ob_batch *b, int n, bool batched, ob_err *err,
                   ob_status *st) {
    const double t0 = now();
    ob_batch_clear(b);
    for (int32_t s = 0; s < n; s++) {
        ob_batch_add(b, 5 + s, ob_seq_n_past(c, s), s, true, NULL);
        if (!batched) {
            if ((*st = ob_decode(c, b, err))) return 0;
            ob_batch_clear(b);
        }
    }
    if (batched && (*st = ob_decode(c, b, err))) return 0;
    return now() - t0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: batch_bench MODEL.gguf [threads] [ctx] [rounds] [N...]\n");
        return 2;
    }
    const int threads = argc > 2 ? atoi(argv[2]) : 2, rounds = argc > 4 ? atoi(argv[4]) : 3;
    const int64_t ctx = argc > 3 ? atoll(argv[3]) : 256;
    int ns[16] = {1, 4, 8, 16}, n_ns = 4;
    if (argc > 5) {
        n_ns = 0;
        for (int i = 5; i < argc && n_ns < 16; i++) ns[n_ns++] = atoi(argv[i]);
    }
    int max_n = 1;
    for (int i = 0; i < n_ns; i++) max_n = ns[i] > max_n ? ns[i] : max_n;
    if (max_n > MAX_N) max_n = MAX_N;
    ob_err err = {{0}};
    ob_model *m = NULL;
    ob_context *c = NULL;
    ob_batch *b = NULL;
    ob_context_params cp;
    ob_context_params_init(&cp);
    cp.n_threads = threads;
    cp.n_ctx = ctx + 2 * rounds + 8;
    cp.n_seq_max = max_n;
    cp.kv_size = (int64_t)max_n * (cp.n_ctx + 32); /* whole blocks for every sequence */
    if (ob_model_load(argv[1], NULL, &m, &err)) return fail("load", &err);
    if (ob_context_new(m, &cp, &c, &err)) return fail("context", &err);
    if (ob_batch_new(ctx > max_n ? ctx : max_n, &b, &err)) return fail("batch", &err);
    printf("%s, %d threads, %lld cached positions per sequence, best of %d\n", argv[1], threads,
           (long long)ctx, rounds);
    printf("%4s %14s %14s %8s\n", "N", "batched tok/s", "serial tok/s", "ratio");
    for (int i = 0; i < n_ns; i++) {
        const int n = ns[i] < max_n ? ns[i] : max_n;
        double best[2] = {1e30, 1e30};
        ob_status st = prefill(c, b, n, ctx, &err);
        for (int r = 0; r < rounds && !st; r++)
            for (int mode = 0; mode < 2 && !st; mode++) {
                double t = step(c, b, n, mode == 0, &err, &st);
                if (!st && t < best[mode]) best[mode] = t;
            }
        if (st) return fail("decode", &err);
        printf("%4d %14.2f %14.2f %8.2f\n", n, n / best[0], n / best[1], best[1] / best[0]);
        fflush(stdout);
    }
    ob_batch_free(b);
    ob_context_free(c);
    ob_model_free(m);
    return 0;
}
