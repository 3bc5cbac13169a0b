/*
 * Tests of the CPU ops against naive versions written here from the definitions (in double
 * where that is the point): thread pool, F16 conversion, RMSNorm, RoPE (normal, NeoX, frequency
 * factors, partial rotation), softmax, SwiGLU, and attention (pooled vs one-head-at-a-time vs a
 * double-precision version without the F16 rounding).
 */
#include "core/alloc.h"
#include "cpu/ops.h"
#include "cpu/pool.h"
#include "cpu/vec.h"
#include "quant/quant.h"
#include "test.h"

#include <math.h>
#include <stdatomic.h>
#include <time.h>

static uint64_t rng_state = 12345;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xffffff) / (float)(1 << 23) - 1.0f;
}

/* ---- pool ------------------------------------------------------------------------------ */

typedef struct count_task {
    atomic_int hits[8];
    atomic_llong sum;
} count_task;

static void count_run(void *arg, int ith, int nth) {
    count_task *t = arg;
    atomic_fetch_add(&t->hits[ith], 1);
    atomic_fetch_add(&t->sum, nth);
}

TEST(pool_runs_every_thread_once_per_call) {
    for (int nth = 1; nth <= 4; nth++) {
        cpu_pool *p;
        ob_err err;
        CHECK(cpu_pool_new(nth, &p, &err) == OB_OK);
        count_task t;
        memset(&t, 0, sizeof t);
        const int runs = 3000;
        for (int r = 0; r < runs; r++) cpu_pool_run(p, count_run, &t);
        for (int i = 0; i < nth; i++) CHECK_EQ_INT(atomic_load(&t.hits[i]), runs);
        CHECK_EQ_INT(atomic_load(&t.sum), (long long)runs * nth * nth);
        cpu_pool_free(p);
    }
}

TEST(pool_survives_sleeping_workers) {
    cpu_pool *p;
    CHECK(cpu_pool_new(3, &p, NULL) == OB_OK);
    count_task t;
    memset(&t, 0, sizeof t);
    for (int r = 0; r < 5; r++) {
        struct timespec ts = {0, 30 * 1000 * 1000}; /* long enough for workers to sleep */
        nanosleep(&ts, NULL);
        cpu_pool_run(p, count_run, &t);
    }
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(atomic_load(&t.hits[i]), 5);
    cpu_pool_free(p);
}

TEST(pool_rejects_bad_thread_count) {
    cpu_pool *p;
    ob_err err;
    CHECK_STATUS(cpu_pool_new(0, &p, &err), OB_ERR_ARG, &err, "0 threads");
    CHECK(p == NULL);
    CHECK(cpu_physical_cores() >= 1);
}

/* ---- f16 ------------------------------------------------------------------------------- */

TEST(f16_matches_quant_module) {
    for (uint32_t h = 0; h < 65536; h++) {
        float a = cpu_f16_to_f32((uint16_t)h), b = quant_f16_to_f32((uint16_t)h);
        if (isnan(a)) {
            CHECK(isnan(b));
            continue;
        }
        CHECK_MSG(memcmp(&a, &b, 4) == 0, "half 0x%04x: %g vs %g", h, a, b);
        CHECK_MSG(cpu_f32_to_f16(a) == h, "half 0x%04x round trip", h);
    }
    for (int i = 0; i < 200000; i++) {
        float f = frand() * powf(2.0f, (float)(i % 40) - 26.0f);
        CHECK_MSG(cpu_f32_to_f16(f) == quant_f32_to_f16(f), "%.9g", f);
    }
    CHECK(cpu_f32_to_f16(70000.0f) == 0x7c00);
}

/* ---- rmsnorm, softmax, swiglu ------------------------------------------------------------ */

TEST(rmsnorm_matches_definition) {
    cpu_pool *p;
    CHECK(cpu_pool_new(2, &p, NULL) == OB_OK);
    enum { R = 5, N = 67 };
    float x[R * N], w[N], out[R * N];
    for (int i = 0; i < R * N; i++) x[i] = frand() * 3;
    for (int i = 0; i < N; i++) w[i] = frand();
    cpu_rmsnorm(p, out, x, w, R, N, 1e-5f);
    for (int r = 0; r < R; r++) {
        double ss = 0;
        for (int i = 0; i < N; i++) ss += (double)x[r * N + i] * x[r * N + i];
        double s = 1.0 / sqrt(ss / N + 1e-5);
        for (int i = 0; i < N; i++)
            CHECK(fabs(out[r * N + i] - x[r * N + i] * s * w[i]) < 1e-5);
    }
    cpu_pool_free(p);
}

TEST(softmax_matches_definition) {
    float x[50];
    double e[50], sum = 0;
    for (int i = 0; i < 50; i++) x[i] = frand() * 10;
    x[7] = -INFINITY;
    for (int i = 0; i < 50; i++) {
        e[i] = i == 7 ? 0 : exp(0.5 * x[i]);
        sum += e[i];
    }
    cpu_softmax_row(x, 50, 0.5f);
    double total = 0;
    for (int i = 0; i < 50; i++) {
        CHECK(fabs(x[i] - e[i] / sum) < 1e-6);
        total += x[i];
    }
    CHECK(x[7] == 0.0f);
    CHECK(fabs(total - 1.0) < 1e-5);
}

TEST(swiglu_and_add) {
    cpu_pool *p;
    CHECK(cpu_pool_new(2, &p, NULL) == OB_OK);
    enum { N = 1000 };
    float g[N], u[N], out[N], y[N];
    for (int i = 0; i < N; i++) g[i] = frand() * 8, u[i] = frand(), y[i] = frand();
    cpu_swiglu(p, out, g, u, N);
    for (int i = 0; i < N; i++)
        CHECK(fabs(out[i] - g[i] / (1 + exp(-(double)g[i])) * u[i]) < 1e-5);
    memcpy(g, out, sizeof out);
    cpu_add(p, out, y, N);
    for (int i = 0; i < N; i++) CHECK(out[i] == g[i] + y[i]);
    cpu_pool_free(p);
}

/* ---- rope ------------------------------------------------------------------------------ */

/* Rotation by theta_i = pos * scale * base^(-2i/n_dims) / factor_i, in double. */
static void rope_naive(double *x, int64_t hd, int32_t pos, const cpu_rope_params *rp) {
    for (int64_t i = 0; i < rp->n_dims / 2; i++) {
        double ff = rp->freq_factors ? rp->freq_factors[i] : 1.0;
        double th = rp->freq_scale * pos * pow(rp->freq_base, -2.0 * i / rp->n_dims) / ff;
        int64_t a = rp->neox ? i : 2 * i, b = rp->neox ? i + rp->n_dims / 2 : 2 * i + 1;
        double x0 = x[a], x1 = x[b];
        x[a] = x0 * cos(th) - x1 * sin(th);
        x[b] = x0 * sin(th) + x1 * cos(th);
    }
    (void)hd;
}

TEST(rope_matches_definition) {
    cpu_pool *p;
    CHECK(cpu_pool_new(2, &p, NULL) == OB_OK);
    enum { T = 4, H = 3, HD = 16 };
    float factors[6] = {1, 1, 2, 4, 8, 8};
    const cpu_rope_params cases[] = {
        {HD, 10000.0f, 1.0f, NULL, false},
        {HD, 500000.0f, 1.0f, NULL, true},
        {12, 10000.0f, 0.25f, factors, false}, /* partial rotation: dims 12..15 pass through */
        {12, 10000.0f, 1.0f, factors, true},
    };
    int32_t pos[T] = {0, 1, 17, 300};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float x[T * H * HD];
        double ref[T * H * HD];
        for (int i = 0; i < T * H * HD; i++) ref[i] = x[i] = frand();
        cpu_rope(p, x, T, H, HD, pos, &cases[c]);
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) rope_naive(ref + (t * H + h) * HD, HD, pos[t], &cases[c]);
        for (int i = 0; i < T * H * HD; i++)
            CHECK_MSG(fabs(x[i] - ref[i]) < 2e-4, "case %zu elem %d: %g vs %g", c, i, x[i],
                      ref[i]);
    }
    cpu_pool_free(p);
}

/* ---- attention ------------------------------------------------------------------------- */

/* Causal GQA in double with no F16 rounding of q or the probabilities. */

static void attn_double(const cpu_attn_args *a, double *out) {
    const int64_t hd = a->head_dim, grp = a->n_head / a->n_head_kv;
    double s[256];
    for (int64_t t = 0; t < a->n_tok; t++)
        for (int64_t h = 0; h < a->n_head; h++) {
            int64_t n_see = a->pos0 + t + 1, g = h / grp;
            const float *q = a->q + (t * a->n_head + h) * hd;
            double mx = -1e300, sum = 0;
            for (int64_t j = 0; j < n_see; j++) {
                double d = 0;
                for (int64_t k = 0; k < hd; k++)
                    d += q[k] * (double)cpu_f16_to_f32(a->k[j * a->kv_stride + g * hd + k]);
                s[j] = d * a->scale;
                if (s[j] > mx) mx = s[j];
            }
            for (int64_t j = 0; j < n_see; j++) sum += (s[j] = exp(s[j] - mx));
            for (int64_t k = 0; k < hd; k++) {
                double acc = 0;
                for (int64_t j = 0; j < n_see; j++)
                    acc += s[j] / sum * cpu_f16_to_f32(a->v[j * a->kv_stride + g * hd + k]);
                out[(t * a->n_head + h) * hd + k] = acc;
            }
        }
}

TEST(attention_matches_naive) {
    enum { NH = 8, NKV = 2, HD = 16, POS0 = 57, NT = 70, NKVROWS = POS0 + NT };
    const int64_t stride = NKV * HD;
    float *q = ob_alloc(NT * NH * HD, sizeof(float));
    float *o1 = ob_alloc(NT * NH * HD, sizeof(float)), *o2 = ob_alloc(NT * NH * HD, 4);
    double *o3 = ob_alloc(NT * NH * HD, sizeof(double));
    uint16_t *k = ob_alloc(NKVROWS * stride, 2), *v = ob_alloc(NKVROWS * stride, 2);
    for (int i = 0; i < NT * NH * HD; i++) q[i] = frand() * 2;
    for (int i = 0; i < NKVROWS * stride; i++) {
        k[i] = cpu_f32_to_f16(frand() * 2);
        v[i] = cpu_f32_to_f16(frand());
    }
    cpu_pool *p;
    CHECK(cpu_pool_new(3, &p, NULL) == OB_OK);
    float *scratch = ob_alloc(cpu_attn_scratch_floats(NKVROWS, HD, 3), sizeof(float));
    cpu_attn_args a = {q, k, v, o1, NT, POS0, NH, NKV, HD, stride, 0.25f, scratch, 0, 0,
                       NULL, NULL, NULL, 0, 0};
    cpu_attention(p, &a);
    a.out = o2;
    cpu_attention_ref(&a);
    attn_double(&a, o3);
    double worst_ref = 0, worst_dbl = 0;
    for (int i = 0; i < NT * NH * HD; i++) {
        worst_ref = fmax(worst_ref, fabs(o1[i] - o2[i]));
        worst_dbl = fmax(worst_dbl, fabs(o1[i] - o3[i]));
    }
    /* The pooled version adds in 8 lanes with FMA, the one-head version in order; a last-bit
     * difference in a probability can move its F16 rounding by 2^-11 relative, so ~1e-4 here.
     * A wrong head, row or mask would be off by 1e-1. */
    CHECK_MSG(worst_ref < 1e-3, "pooled vs one-head: %g", worst_ref);
    /* F16 rounding of q and of the probabilities: a few 1e-3 at most on unit-scale values. */
    CHECK_MSG(worst_dbl < 5e-3, "vs double: %g", worst_dbl);
    /* Decode (one token at the end) agrees with the last row of the batch. */
    a.q = q + (NT - 1) * NH * HD;
    a.n_tok = 1;
    a.pos0 = POS0 + NT - 1;
    a.out = o2;
    cpu_attention(p, &a);
    for (int i = 0; i < NH * HD; i++) CHECK(fabs(o2[i] - o1[(NT - 1) * NH * HD + i]) < 1e-5);
    cpu_pool_free(p);
    ob_free(q), ob_free(o1), ob_free(o2), ob_free(o3), ob_free(k), ob_free(v), ob_free(scratch);
}

TEST(vec_kernels_match_portable) {
    const cpu_vec_ops *fast = cpu_vec_get(), *ref = cpu_vec_ref();
    float y1[77], y2[77];
    for (int i = 0; i < 77; i++) y1[i] = y2[i] = frand();
    /* scores and mix: n_q queries (1..6: a partial and a second group of four) against n F16
     * rows of a cache with row stride KS (n <= 37: pairs and a lone last key), hd on the
     * vector path (multiples of 8) and off it (odd) */
    enum { KS = 80, NMAX = 37, QMAX = 6, LDO = 40 };
    static uint16_t kc[NMAX * KS];
    static float qv[QMAX * 72], s1[QMAX * LDO], s2[QMAX * LDO], m1[QMAX * 72], m2[QMAX * 72];
    for (int i = 0; i < NMAX * KS; i++) kc[i] = cpu_f32_to_f16(frand() * 2);
    for (int i = 0; i < QMAX * 72; i++) qv[i] = frand();
    const int hds[] = {8, 16, 24, 64, 72, 5};
    for (size_t hi = 0; hi < sizeof hds / sizeof *hds; hi++) {
        const int hd = hds[hi];
        for (int nq = 1; nq <= QMAX; nq++)
            for (int n = 0; n <= NMAX; n++) {
                fast->scores(s1, LDO, qv, nq, kc + 3, KS, n, hd);
                ref->scores(s2, LDO, qv, nq, kc + 3, KS, n, hd);
                for (int i = 0; i < nq; i++)
                    for (int j = 0; j < n; j++)
                        CHECK_MSG(fabsf(s1[i * LDO + j] - s2[i * LDO + j]) < 1e-4f,
                                  "scores hd %d nq %d n %d at (%d,%d)", hd, nq, n, i, j);
                /* mix accumulates onto what out holds; probabilities from the scores */
                for (int i = 0; i < nq * hd; i++) m1[i] = m2[i] = frand();
                fast->mix(m1, s2, LDO, nq, kc + 1, KS, n, hd);
                ref->mix(m2, s2, LDO, nq, kc + 1, KS, n, hd);
                for (int i = 0; i < nq * hd; i++)
                    CHECK_MSG(fabsf(m1[i] - m2[i]) < 1e-3f, "mix hd %d nq %d n %d at %d", hd,
                              nq, n, i);
            }
    }
    /* a key's score does not depend on its place in the run or its pairing */
    fast->scores(s1, LDO, qv, 4, kc, KS, 9, 64);
    for (int j = 0; j < 9; j++) {
        fast->scores(s2, LDO, qv, 4, kc + j * KS, KS, 1, 64);
        for (int i = 0; i < 4; i++) CHECK(s1[i * LDO + j] == s2[i * LDO]);
    }
    /* exp_sum and swiglu: within 4e-7 relative of libm's expf on the range they see, -inf and
     * the far tails included; a value does not depend on where in the row it sits */
    float e1[77], e2[77];
    for (int i = 0; i < 77; i++) e1[i] = e2[i] = (float)(i - 70) * 1.37f + frand();
    e1[3] = e2[3] = -INFINITY;
    e1[5] = e2[5] = -1e30f;
    e1[9] = e2[9] = 1.7f; /* the maximum */
    double sum1 = fast->exp_sum(e1, 77, 1.7f), sum2 = ref->exp_sum(e2, 77, 1.7f);
    CHECK(fabs(sum1 - sum2) <= 4e-7 * sum2);
    for (int i = 0; i < 77; i++)
        CHECK_MSG(fabsf(e1[i] - e2[i]) <= 4e-7f * e2[i] + 1e-37f, "exp at %d: %g vs %g", i, (double)e1[i],
                  (double)e2[i]);
    CHECK(e1[3] == 0.0f && e1[5] == 0.0f && e1[9] == 1.0f);
    float g[77], u[77];
    for (int i = 0; i < 77; i++) g[i] = (float)(i - 38) * 0.9f + frand(), u[i] = frand();
    g[0] = -1e30f, g[1] = 1e30f, g[2] = 100.0f, g[4] = -100.0f, g[6] = 0.0f;
    fast->swiglu(y1, g, u, 77);
    ref->swiglu(y2, g, u, 77);
    for (int i = 0; i < 77; i++)
        CHECK_MSG(fabsf(y1[i] - y2[i]) <= 1e-6f * fabsf(y2[i]) + 1e-30f, "swiglu at %d: %g vs %g",
                  i, (double)y1[i], (double)y2[i]);
    fast->swiglu(g, g, u, 77); /* in place */
    for (int i = 0; i < 77; i++) CHECK(g[i] == y1[i]);
    for (int off = 1; off < 8; off++) { /* the same elements, shifted against the vectors */
        float z[77];
        for (int i = 0; i < 77; i++) e1[i] = (float)(i - 70) * 1.37f;
        fast->exp_sum(e1, 77, 0.0f);
        for (int i = 0; i < 77 - off; i++) z[i] = (float)(i + off - 70) * 1.37f;
        fast->exp_sum(z, 77 - off, 0.0f);
        for (int i = 0; i < 77 - off; i++) CHECK(z[i] == e1[i + off]);
    }
    /* rounding through F16, bit for bit: ordinary values, ties, subnormals, overflow */
    float r[80], r1[80], r2[80];
    for (int i = 0; i < 77; i++) r[i] = frand() * (i % 3 == 0 ? 1e-5f : 3.0f);
    r[77] = 1.0f + 0x1p-11f, r[78] = 0x1p-25f * 3.0f, r[79] = 70000.0f;
    fast->round_f16(r, r1, 80);
    ref->round_f16(r, r2, 80);
    CHECK(memcmp(r1, r2, sizeof r1) == 0);
}

int main(void) {
    RUN(vec_kernels_match_portable);
    RUN(pool_runs_every_thread_once_per_call);
    RUN(pool_survives_sleeping_workers);
    RUN(pool_rejects_bad_thread_count);
    RUN(f16_matches_quant_module);
    RUN(rmsnorm_matches_definition);
    RUN(softmax_matches_definition);
    RUN(swiglu_and_add);
    RUN(rope_matches_definition);
    RUN(attention_matches_naive);
    return t_summary();
}
