/*
 * Micro-benchmark of the quantized dot products, the decode hot path: a matrix-vector product
 * over a weight set far larger than the caches, one thread, for every type and every ISA variant
 * this CPU runs. Prints weight bytes streamed per second (GB/s) and elements per second, plus
 * the speed of the activation quantizers.
 *
 *   build/bench/quant_bench [MB of weights per type, default 256] [seconds per case, 0.3]
 *                           [type names to run, e.g. Q4_0,Q8_0; default all]
 *                           [activation rows of the batched case, 1..32, default 4: prefill
 *                            calls the repacked kernels with 32]
 *   OB_ISA=avx2 build/bench/quant_bench        caps the ISAs as everywhere else
 */
#include "quant/quant.h"

#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU time of this thread: on a shared machine, time spent descheduled is not counted. */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static float rng_value(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)(rng_state >> 40) / 16777216.0f - 0.5f;
}

static const uint32_t TYPES[] = {OB_QTYPE_F32,  OB_QTYPE_F16,  OB_QTYPE_BF16, OB_QTYPE_Q4_0,
                                 OB_QTYPE_Q4_1, OB_QTYPE_Q5_0, OB_QTYPE_Q5_1, OB_QTYPE_Q8_0,
                                 OB_QTYPE_Q2_K, OB_QTYPE_Q3_K, OB_QTYPE_Q4_K, OB_QTYPE_Q5_K,
                                 OB_QTYPE_Q6_K, OB_QTYPE_IQ4_NL, OB_QTYPE_IQ4_XS};
static const char *const ISAS[] = {"scalar", "avx2", "avx512", "neon", "avxvnni"};

enum { N = 4096 }; /* elements per row: a typical hidden size */
enum { NY_MAX = 32 }; /* activation rows of the batched case: 4 unless the 4th argument says */
static int NY = 4;

static float g_sink;

/* Products of `rows` weight rows with `ny` activation rows until `secs` pass: by one vec_dot
 * call per pair (tile 0), through quant_dot_tile (1), through dot_packed on rows of `prow`
 * bytes packed by act_pack (2), or through rp_dot on repacked weights and rp_act rows of
 * `prow` bytes (3); returns GB/s of weights streamed. */
static double bench_run(const quant_traits *t, const uint8_t *w, int64_t rows, const void *qy,
                        size_t prow, int64_t ny, int tile, float *out, double secs,
                        double *gelem) {
    size_t row = (size_t)(N / t->block_size) * t->type_size;
    const quant_traits *ty = quant_traits_ref(t->vec_dot_type);
    size_t yrow = (size_t)(N / ty->block_size) * ty->type_size;
    int64_t passes = 0;
    double start = now(), elapsed;
    do {
        if (tile == 3) {
            t->rp_dot(N, rows, ny, out, (size_t)rows, w, row * (size_t)t->rp_rows, qy, prow);
        } else if (tile == 2) {
            t->dot_packed(N, rows, ny, out, (size_t)rows, w, row, qy, prow);
        } else if (tile) {
            quant_dot_tile(t, N, rows, ny, out, (size_t)rows, w, row, qy, yrow);
        } else {
            for (int64_t j = 0; j < ny; j++)
                for (int64_t r = 0; r < rows; r++)
                    t->vec_dot(N, &out[j * rows + r], w + (size_t)r * row,
                               (const uint8_t *)qy + j * yrow);
        }
        g_sink += out[passes % rows];
        passes++;
        elapsed = now() - start;
    } while (elapsed < secs);
    *gelem = (double)passes * (double)rows * (double)ny * N / elapsed * 1e-9;
    return (double)passes * (double)rows * (double)row / elapsed * 1e-9;
}

/* Products of `rows` weight rows with `ny` activation rows until `secs` pass, either by one
 * vec_dot call per pair or through quant_dot_tile; returns GB/s of weights streamed. */
static double bench_matvec(const quant_traits *t, const uint8_t *w, int64_t rows, const void *qy,
                           int64_t ny, int tile, float *out, double secs, double *gelem) {
    return bench_run(t, w, rows, qy, 0, ny, tile, out, secs, gelem);
}

/* The repacked kernels (rp_dot) on the same weights, repacked, for 1 and NY activation rows. */
static void bench_repacked(const quant_traits *t, const uint8_t *w, int64_t rows, float *x,
                           float *out, double secs) {
    size_t row = (size_t)(N / t->block_size) * t->type_size, arow = t->rp_act_size(N);
    int64_t groups = rows / t->rp_rows;
    uint8_t *rp = ob_alloc_aligned(64, (size_t)groups * t->rp_rows * row);
    uint8_t *act = ob_alloc_aligned(64, arow * NY);
    if (rp && act) {
        for (int64_t g = 0; g < groups; g++)
            t->rp_pack(w + g * t->rp_rows * row, row, rp + g * t->rp_rows * row, N);
        for (int j = 0; j < NY; j++) {
            for (int i = 0; i < N; i++) x[i] = rng_value();
            t->rp_act(x, act + j * arow, N);
        }
        double e1, e4;
        double g1 = bench_run(t, rp, groups * t->rp_rows, act, arow, 1, 3, out, secs, &e1);
        bench_run(t, rp, groups * t->rp_rows, act, arow, NY, 3, out, secs, &e4);
        printf("%-7s %-7s %8.2f %8s GB/s %8.2f %8s %8.2f Gelem/s (repacked)\n", t->name,
               t->isa, g1, "", e1, "", e4);
    }
    ob_free_aligned(rp);
    ob_free_aligned(act);
}

static void bench_type(uint32_t type, size_t mb, double secs) {
    const quant_traits *ref = quant_traits_ref(type);
    if (!ref) return;
    size_t row = (size_t)(N / ref->block_size) * ref->type_size;
    int64_t rows = (int64_t)(mb * 1024 * 1024 / row);
    uint8_t *w = ob_alloc_aligned(64, (size_t)rows * row);
    float *x = ob_alloc(N, sizeof(float)), *out = ob_alloc((size_t)rows * NY, sizeof(float));
    const quant_traits *ry = quant_traits_ref(ref->vec_dot_type);
    uint8_t *qy = ob_alloc((size_t)(N / ry->block_size) * NY, ry->type_size);
    if (!w || !x || !out || !qy) {
        fprintf(stderr, "quant_bench: out of memory for %s\n", ref->name);
        goto done;
    }
    /* 64 distinct quantized rows repeated over the set: real data, no cache reuse */
    for (int64_t r = 0; r < rows; r++) {
        if (r < 64) {
            for (int i = 0; i < N; i++) x[i] = rng_value();
            if (ref->from_f32) ref->from_f32(x, w + r * row, N);
            else memset(w + r * row, 0x11, row);
        } else {
            memcpy(w + r * row, w + (r % 64) * row, row);
        }
    }
    size_t yrow = (size_t)(N / ry->block_size) * ry->type_size;
    for (int j = 0; j < NY; j++) {
        for (int i = 0; i < N; i++) x[i] = rng_value();
        ry->from_f32(x, qy + j * yrow, N);
    }
    for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
        const quant_traits *t = quant_traits_isa(type, ISAS[k]);
        if (!t) continue;
        double e1, et, e4;
        double g1 = bench_matvec(t, w, rows, qy, 1, 0, out, secs, &e1);
        double gt = bench_matvec(t, w, rows, qy, 1, 1, out, secs, &et);
        bench_matvec(t, w, rows, qy, NY, 1, out, secs, &e4);
        printf("%-7s %-7s %8.2f %8.2f GB/s %8.2f %8.2f %8.2f Gelem/s\n", t->name, t->isa, g1,
               gt, e1, et, e4);
        if (t->dot_packed) {
            size_t prow = t->act_pack_size(N);
            uint8_t *qp = ob_alloc_aligned(64, prow * NY);
            for (int j = 0; j < NY && qp; j++) {
                for (int i = 0; i < N; i++) x[i] = rng_value();
                t->act_pack(x, qp + j * prow, N);
            }
            if (qp) {
                double p1 = bench_run(t, w, rows, qp, prow, 1, 2, out, secs, &e1);
                bench_run(t, w, rows, qp, prow, NY, 2, out, secs, &e4);
                printf("%-7s %-7s %8.2f %8s GB/s %8.2f %8s %8.2f Gelem/s (packed)\n", t->name,
                       t->isa, p1, "", e1, "", e4);
            }
            ob_free_aligned(qp);
        }
        if (t->rp_rows) bench_repacked(t, w, rows, x, out, secs);
    }
done:
    ob_free_aligned(w);
    ob_free(x);
    ob_free(out);
    ob_free(qy);
}

/* Activation quantizer speed: f32 bytes in per second, on a cache-resident row. */
static void bench_quantizer(uint32_t type, double secs) {
    float *x = ob_alloc(N, sizeof(float));
    void *q = ob_alloc(N, 4);
    for (int i = 0; i < N; i++) x[i] = rng_value();
    for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
        const quant_traits *t = quant_traits_isa(type, ISAS[k]);
        if (!t || !t->from_f32) continue;
        int64_t reps = 0;
        double start = now(), elapsed;
        do {
            t->from_f32(x, q, N);
            reps++;
            elapsed = now() - start;
        } while (elapsed < secs);
        printf("%-7s %-7s %8.2f GB/s of f32 quantized\n", t->name, t->isa,
               (double)reps * N * 4 / elapsed * 1e-9);
    }
    ob_free(x);
    ob_free(q);
}

int main(int argc, char **argv) {
    size_t mb = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 256;
    double secs = argc > 2 ? strtod(argv[2], NULL) : 0.3;
    if (argc > 4) NY = atoi(argv[4]);
    if (NY < 1 || NY > NY_MAX) {
        fprintf(stderr, "activation rows: 1..%d\n", NY_MAX);
        return 2;
    }
    if (mb == 0 || secs <= 0) {
        fprintf(stderr, "usage: quant_bench [MB of weights per type] [seconds per case] "
                        "[types] [rows]\n");
        return 1;
    }
    printf("rows of %d, %zu MB of weights per type, 1 thread, per second of thread CPU time\n"
           "columns: GB/s of weights for one activation row by vec_dot per row | by dot_tile;\n"
           "         Gelem/s (multiply-adds) for the same two | dot_tile on %d activation rows\n",
           N, mb, NY);
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++) {
        const quant_traits *r = quant_traits_ref(TYPES[i]);
        if (r && (argc <= 3 || strstr(argv[3], r->name))) bench_type(TYPES[i], mb, secs);
    }
    printf("activation quantizers, rows of %d\n", N);
    bench_quantizer(OB_QTYPE_Q8_0, secs);
    bench_quantizer(OB_QTYPE_Q8_1, secs);
    bench_quantizer(OB_QTYPE_F16, secs);
    bench_quantizer(OB_QTYPE_BF16, secs);
    return (int)(g_sink * 0.0f);
}
