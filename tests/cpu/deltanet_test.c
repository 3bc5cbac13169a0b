/*
 * Gated DeltaNet kernels (src/cpu/deltanet.c): the chunked form agrees with the one-step
 * recurrence and both with a double-precision version of the definition, over lengths that
 * cross several chunk boundaries and are not multiples of the chunk, from a non-zero state,
 * with rows spread through a batch; the causal convolution fed in one piece or in several
 * equals its definition.
 */
#include "cpu/deltanet.h"
#include "test.h"

#include <math.h>

static uint64_t rng_state = 777;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xffffff) / (float)(1 << 23) - 1.0f;
}

enum { DK = 16, DV = 16, MAXN = 200, STRIDE_ROWS = 2 };

typedef struct seq_data {
    float q[MAXN * STRIDE_ROWS][DK], k[MAXN * STRIDE_ROWS][DK], v[MAXN * STRIDE_ROWS][DV];
    float g[MAXN * STRIDE_ROWS], beta[MAXN * STRIDE_ROWS];
    int32_t rows[MAXN];
    float state0[DV * DK];
} seq_data;

static void fill(seq_data *d, int64_t n) {
    for (int64_t t = 0; t < n * STRIDE_ROWS; t++) {
        for (int i = 0; i < DK; i++) d->q[t][i] = frand(), d->k[t][i] = frand();
        for (int j = 0; j < DV; j++) d->v[t][j] = frand();
        cpu_l2norm(d->q[t], DK, 1e-6f);
        cpu_l2norm(d->k[t], DK, 1e-6f);
        d->g[t] = -0.3f * (frand() + 1.0f);
        d->beta[t] = 0.5f + 0.45f * frand();
    }
    for (int64_t t = 0; t < n; t++) d->rows[t] = (int32_t)(t * STRIDE_ROWS + 1);
    for (int i = 0; i < DV * DK; i++) d->state0[i] = 0.3f * frand();
}

static cpu_dnet_head head_of(seq_data *d, int64_t n, float (*out)[DV], float *state) {
    return (cpu_dnet_head){.n = n, .rows = d->rows, .dk = DK, .dv = DV, .q = d->q[0],
                           .k = d->k[0], .qk_stride = DK, .v = d->v[0], .v_stride = DV,
                           .g = d->g, .beta = d->beta, .gb_stride = 1, .out = out[0],
                           .out_stride = DV, .state = state};
}

/* The definition in double. */
static void reference(const seq_data *d, int64_t n, double (*out)[DV], double *s) {
    for (int i = 0; i < DV * DK; i++) s[i] = d->state0[i];
    for (int64_t t = 0; t < n; t++) {
        const int64_t r = d->rows[t];
        const double decay = exp((double)d->g[r]);
        for (int j = 0; j < DV; j++) {
            double *sj = s + j * DK, sk = 0.0, o = 0.0;
            for (int i = 0; i < DK; i++) sk += (sj[i] *= decay) * d->k[r][i];
            const double u = d->beta[r] * (d->v[r][j] - sk);
            for (int i = 0; i < DK; i++) o += (sj[i] += u * d->k[r][i]) * d->q[r][i];
            out[r][j] = o;
        }
    }
}

TEST(chunked_matches_step_and_definition) {
    static seq_data d;
    static float out_step[MAXN * STRIDE_ROWS][DV], out_chunk[MAXN * STRIDE_ROWS][DV];
    static double out_ref[MAXN * STRIDE_ROWS][DV];
    float scratch[16384];
    CHECK(cpu_dnet_scratch_floats(DK, DV) <= sizeof scratch / sizeof scratch[0]);
    const int64_t lengths[] = {1, 2, 5, 63, 64, 65, 129, 200};
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        const int64_t n = lengths[li];
        fill(&d, n);
        float s_step[DV * DK], s_chunk[DV * DK];
        double s_ref[DV * DK];
        memcpy(s_step, d.state0, sizeof s_step);
        memcpy(s_chunk, d.state0, sizeof s_chunk);
        cpu_dnet_head hs = head_of(&d, n, out_step, s_step);
        cpu_dnet_head hc = head_of(&d, n, out_chunk, s_chunk);
        cpu_dnet_step(&hs);
        cpu_dnet_chunked(&hc, scratch);
        reference(&d, n, out_ref, s_ref);
        double e_out = 0.0, e_state = 0.0, e_ref = 0.0;
        for (int64_t t = 0; t < n; t++) {
            const int64_t r = d.rows[t];
            for (int j = 0; j < DV; j++) {
                e_out = fmax(e_out, fabs(out_step[r][j] - out_chunk[r][j]));
                e_ref = fmax(e_ref, fabs(out_chunk[r][j] - out_ref[r][j]));
            }
        }
        for (int i = 0; i < DV * DK; i++) {
            e_state = fmax(e_state, fabs(s_step[i] - s_chunk[i]));
            e_ref = fmax(e_ref, fabs(s_chunk[i] - s_ref[i]));
        }
        CHECK_MSG(e_out < 1e-4 && e_state < 1e-4 && e_ref < 1e-4,
                  "n %lld: |step - chunked| out %g state %g, |chunked - definition| %g",
                  (long long)n, e_out, e_state, e_ref);
    }
}

TEST(conv_in_pieces_matches_definition) {
    enum { N = 37, CH = 5, K = 4 };
    float x[N][CH], in[N][CH], w[CH * K], state[(K - 1) * CH], hist[K - 1][CH];
    for (int t = 0; t < N; t++)
        for (int c = 0; c < CH; c++) in[t][c] = frand();
    for (int i = 0; i < CH * K; i++) w[i] = frand();
    for (int j = 0; j < K - 1; j++)
        for (int c = 0; c < CH; c++) hist[j][c] = frand();
    const int64_t pieces[][3] = {{N, 0, 0}, {1, 1, N - 2}, {2, 10, N - 12}};
    for (size_t p = 0; p < 3; p++) {
        memcpy(x, in, sizeof x);
        memcpy(state, hist, sizeof state);
        int32_t rows[N];
        for (int t = 0; t < N; t++) rows[t] = t;
        int64_t at = 0;
        for (int i = 0; i < 3 && at < N; i++) {
            const int64_t n = pieces[p][i];
            if (n == 0) continue;
            cpu_dnet_conv(x[0], CH, rows + at, n, w, K, state, CH, 0, 2);
            cpu_dnet_conv(x[0], CH, rows + at, n, w, K, state, CH, 2, CH);
            at += n;
        }
        CHECK(at == N);
        for (int t = 0; t < N; t++)
            for (int c = 0; c < CH; c++) {
                double s = 0.0;
                for (int j = 0; j < K; j++) {
                    const int ti = t - (K - 1) + j;
                    s += (double)w[c * K + j] * (ti >= 0 ? in[ti][c] : hist[K - 1 + ti][c]);
                }
                const double want = s / (1.0 + exp(-s));
                CHECK_MSG(fabs(x[t][c] - want) < 1e-5, "piece plan %zu, t %d, c %d: %g vs %g",
                          p, t, c, x[t][c], want);
            }
        for (int j = 0; j < K - 1; j++)
            for (int c = 0; c < CH; c++) CHECK(state[j * CH + c] == in[N - (K - 1) + j][c]);
    }
}

TEST(l2norm_and_softplus) {
    float x[3] = {3.0f, 0.0f, 4.0f}, z[2] = {0.0f, 0.0f};
    cpu_l2norm(x, 3, 1e-6f);
    CHECK(fabsf(x[0] - 0.6f) < 1e-6f && fabsf(x[2] - 0.8f) < 1e-6f);
    cpu_l2norm(z, 2, 1e-6f); /* a zero vector stays zero: the norm is clamped at eps */
    CHECK(z[0] == 0.0f && z[1] == 0.0f);
    CHECK(fabsf(cpu_softplus(0.0f) - logf(2.0f)) < 1e-6f);
    CHECK(cpu_softplus(30.0f) == 30.0f && cpu_softplus(-30.0f) > 0.0f);
}

int main(void) {
    RUN(chunked_matches_step_and_definition);
    RUN(conv_in_pieces_matches_definition);
    RUN(l2norm_and_softplus);
    return t_summary();
}
