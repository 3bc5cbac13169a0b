/*
 * Tests of the CPU ops the model families add (Gemma 3, Qwen2): GeGLU against the tanh-GELU
 * definition in double (within its F16 rounding), scale and bias add exactly, and sliding-window
 * attention over a ring cache against a double-precision version that reads a plain cache and
 * applies the window itself.
 */
#include "core/alloc.h"
#include "cpu/ops.h"
#include "cpu/pool.h"
#include "test.h"

#include <math.h>

static uint64_t rng_state = 777;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xffffff) / (float)(1 << 23) - 1.0f;
}

static double gelu_def(double x) {
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

TEST(geglu_matches_definition) {
    enum { N = 3000 };
    float *g = ob_alloc(N, sizeof(float)), *u = ob_alloc(N, sizeof(float));
    float *out = ob_alloc(N, sizeof(float));
    for (int i = 0; i < N; i++) {
        g[i] = frand() * 14.0f; /* reaches both saturated ends */
        u[i] = frand() * 2.0f;
    }
    g[0] = -10.0f, g[1] = 10.0f, g[2] = 0.0f, g[3] = -12.0f, g[4] = 25.0f;
    cpu_pool *p;
    CHECK(cpu_pool_new(2, &p, NULL) == OB_OK);
    cpu_geglu(p, out, g, u, N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double want = (g[i] <= -10 ? 0.0 : g[i] >= 10 ? g[i] : gelu_def(g[i])) * u[i];
        /* F16 of the input and of the GELU: 2 x 2^-11 relative, plus the slope near 0 */
        double tol = 2e-3 * fabs(gelu_def(g[i]) * u[i]) + 1e-3 * fabs(u[i]) + 1e-6;
        double err = fabs(out[i] - want);
        CHECK_MSG(err <= tol, "geglu(%g) * %g = %g, want %g", g[i], u[i], out[i], want);
        if (err > worst) worst = err;
    }
    CHECK(out[0] == 0.0f && out[1] == 10.0f * u[1] && out[2] == 0.0f && out[3] == 0.0f);
    CHECK(out[4] == 25.0f * u[4]);
    /* out may alias gate */
    float *g2 = ob_alloc(N, sizeof(float));
    memcpy(g2, g, N * sizeof(float));
    cpu_geglu(p, g2, g2, u, N);
    CHECK(memcmp(g2, out, N * sizeof(float)) == 0);
    CHECK(cpu_gelu_tanh(1.0f) > 0.8411f && cpu_gelu_tanh(1.0f) < 0.8413f); /* 0.841192 */
    /* the table gives, bit for bit, the F16 rounding of the formula at the F16 of the input */
    for (int i = 0; i < N; i++) {
        if (!(g[i] > -10.0f && g[i] < 10.0f)) continue;
        const float x = cpu_f16_to_f32(cpu_f32_to_f16(g[i]));
        const float want = cpu_f16_to_f32(cpu_f32_to_f16(cpu_gelu_tanh(x))) * u[i];
        CHECK_MSG(out[i] == want, "geglu(%g): %g, formula %g", g[i], out[i], want);
    }
    cpu_pool_free(p);
    ob_free(g), ob_free(u), ob_free(out), ob_free(g2);
}

TEST(scale_and_bias) {
    enum { ROWS = 37, N = 300 };
    float *x = ob_alloc(ROWS * N, sizeof(float)), *y = ob_alloc(ROWS * N, sizeof(float));
    float *b = ob_alloc(N, sizeof(float));
    for (int i = 0; i < ROWS * N; i++) x[i] = y[i] = frand();
    for (int i = 0; i < N; i++) b[i] = frand();
    cpu_pool *p;
    CHECK(cpu_pool_new(3, &p, NULL) == OB_OK);
    cpu_scale(p, x, ROWS * N, 25.3f);
    for (int i = 0; i < ROWS * N; i++) CHECK(x[i] == y[i] * 25.3f);
    memcpy(x, y, ROWS * N * sizeof(float));
    cpu_add_bias(p, x, b, ROWS, N);
    for (int r = 0; r < ROWS; r++)
        for (int i = 0; i < N; i++) CHECK(x[r * N + i] == y[r * N + i] + b[i]);
    cpu_pool_free(p);
    ob_free(x), ob_free(y), ob_free(b);
}

/* Attention in double over a plain cache (row = position), window applied here. */
static void attn_window_double(const cpu_attn_args *a, const uint16_t *k, const uint16_t *v,
                               double *out) {
    const int64_t hd = a->head_dim, grp = a->n_head / a->n_head_kv;
    double *s = ob_alloc((size_t)(a->pos0 + a->n_tok), sizeof(double));
    for (int64_t t = 0; t < a->n_tok; t++)
        for (int64_t h = 0; h < a->n_head; h++) {
            const int64_t p = a->pos0 + t, g = h / grp;
            const int64_t lo = p - a->n_swa + 1 > 0 ? p - a->n_swa + 1 : 0;
            const float *q = a->q + (t * a->n_head + h) * hd;
            double mx = -1e300, sum = 0;
            for (int64_t j = lo; j <= p; j++) {
                double d = 0;
                for (int64_t c = 0; c < hd; c++)
                    d += q[c] * (double)cpu_f16_to_f32(k[j * a->kv_stride + g * hd + c]);
                s[j] = d * a->scale;
                if (s[j] > mx) mx = s[j];
            }
            for (int64_t j = lo; j <= p; j++) sum += (s[j] = exp(s[j] - mx));
            for (int64_t c = 0; c < hd; c++) {
                double acc = 0;
                for (int64_t j = lo; j <= p; j++)
                    acc += s[j] / sum * cpu_f16_to_f32(v[j * a->kv_stride + g * hd + c]);
                out[(t * a->n_head + h) * hd + c] = acc;
            }
        }
    ob_free(s);
}

TEST(sliding_window_ring_matches_plain_cache) {
    /* 40 queries at positions 300..339 with a window of 50 over a ring of 90 rows: the ring has
     * wrapped three times, and the batch's first queries see rows written before the batch. */
    enum { NH = 4, NKV = 2, HD = 16, POS0 = 300, NT = 40, SWA = 50, RING = 90 };
    const int64_t stride = NKV * HD, npos = POS0 + NT;
    float *q = ob_alloc(NT * NH * HD, sizeof(float));
    float *o1 = ob_alloc(NT * NH * HD, sizeof(float)), *o2 = ob_alloc(NT * NH * HD, 4);
    double *o3 = ob_alloc(NT * NH * HD, sizeof(double));
    uint16_t *k = ob_alloc((size_t)(npos * stride), 2), *v = ob_alloc((size_t)(npos * stride), 2);
    uint16_t *kr = ob_alloc(RING * stride, 2), *vr = ob_alloc(RING * stride, 2);
    for (int i = 0; i < NT * NH * HD; i++) q[i] = frand() * 2;
    for (int64_t i = 0; i < npos * stride; i++) {
        k[i] = cpu_f32_to_f16(frand() * 2);
        v[i] = cpu_f32_to_f16(frand());
    }
    for (int64_t p = 0; p < npos; p++) { /* the ring as kv_store leaves it */
        memcpy(kr + (p % RING) * stride, k + p * stride, (size_t)stride * 2);
        memcpy(vr + (p % RING) * stride, v + p * stride, (size_t)stride * 2);
    }
    cpu_pool *p;
    CHECK(cpu_pool_new(2, &p, NULL) == OB_OK);
    float *scratch = ob_alloc(cpu_attn_scratch_floats(npos, HD, 2), sizeof(float));
    cpu_attn_args a = {q,    kr,   vr,   o1,   NT, POS0, NH, NKV, HD, stride, 0.25f, scratch, SWA,
                       RING, NULL, NULL, NULL, 0,  0};
    cpu_attention(p, &a);
    a.out = o2;
    cpu_attention_ref(&a);
    attn_window_double(&a, k, v, o3);
    double worst_ref = 0, worst_dbl = 0;
    for (int i = 0; i < NT * NH * HD; i++) {
        worst_ref = fmax(worst_ref, fabs(o1[i] - o2[i]));
        worst_dbl = fmax(worst_dbl, fabs(o1[i] - o3[i]));
    }
    CHECK_MSG(worst_ref < 1e-3, "pooled vs one-head: %g", worst_ref);
    CHECK_MSG(worst_dbl < 5e-3, "vs double with the window: %g", worst_dbl);
    /* Without the window the same queries see everything: the results must differ, or the
     * test above proved nothing. */
    a.n_swa = 0, a.n_rows = 0, a.k = k, a.v = v, a.out = o2;
    cpu_attention(p, &a);
    double moved = 0;
    for (int i = 0; i < NT * NH * HD; i++) moved = fmax(moved, fabs(o1[i] - o2[i]));
    CHECK_MSG(moved > 1e-2, "window changed nothing: %g", moved);
    cpu_pool_free(p);
    ob_free(q), ob_free(o1), ob_free(o2), ob_free(o3), ob_free(k), ob_free(v), ob_free(kr);
    ob_free(vr), ob_free(scratch);
}

int main(void) {
    RUN(geglu_matches_definition);
    RUN(scale_and_bias);
    RUN(sliding_window_ring_matches_plain_cache);
    return t_summary();
}
