/*
 * Gated DeltaNet kernels (deltanet.h): the one-step recurrence, its chunked form, the causal
 * convolution and the small element-wise helpers. Plain C whose inner loops run over
 * contiguous key or value elements in fixed blocks of lanes, the form the compiler vectorises
 * at -O2 on every target: written as plain running sums these loops stayed scalar, and the
 * DeltaNet layers took a quarter of a Qwen3.5-27B-shaped prefill (25 ms per head per 512
 * tokens, now 5-6 ms; decode 37 us per head per token, now 8-10 us; one core, x86-64 baseline).
 */
#include "cpu/deltanet.h"

#include <math.h>
#include <string.h>

float cpu_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

void cpu_l2norm(float *x, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)x[i] * x[i];
    const float norm = sqrtf((float)sum), scale = 1.0f / (norm > eps ? norm : eps);
    for (int64_t i = 0; i < n; i++) x[i] *= scale;
}

/* Sixteen partial sums: a single running sum is one long chain of dependent adds, which
 * neither the CPU nor the compiler (no reassociation of float adds) can overlap; sixteen
 * independent lanes are what the compiler turns into vector multiply-adds. */
#define DOT_LANES 16
static float dot(const float *a, const float *b, int64_t n) {
    float acc[DOT_LANES] = {0};
    int64_t i = 0;
    for (; i + DOT_LANES <= n; i += DOT_LANES)
        for (int l = 0; l < DOT_LANES; l++) acc[l] += a[i + l] * b[i + l];
    float s = 0.0f;
    for (; i < n; i++) s += a[i] * b[i];
    for (int l = 0; l < DOT_LANES; l++) s += acc[l];
    return s;
}

/* The element-wise loops below run in blocks of DOT_LANES with restrict pointers: in that
 * form -O2 vectorises them (a plain loop of unknown length over pointers that may alias stays
 * scalar there, and these loops are most of a prefill's DeltaNet time). */
static void axpy(float *restrict y, float a, const float *restrict x, int64_t n) {
    int64_t i = 0;
    for (; i + DOT_LANES <= n; i += DOT_LANES)
        for (int l = 0; l < DOT_LANES; l++) y[i + l] += a * x[i + l];
    for (; i < n; i++) y[i] += a * x[i];
}

/* out[r] = a_r . b for four rows a_r at a + r * as: b is loaded once for the four (separate
 * named accumulators, so they stay in registers). */
static void dot4(float out[4], const float *a, int64_t as, const float *restrict b, int64_t n) {
    enum { W = DOT_LANES }; /* dot's lanes and order: the same sums to the bit */
    const float *restrict a0 = a, *restrict a1 = a + as, *restrict a2 = a + 2 * as,
                *restrict a3 = a + 3 * as;
    float c0[W] = {0}, c1[W] = {0}, c2[W] = {0}, c3[W] = {0};
    int64_t i = 0;
    for (; i + W <= n; i += W)
        for (int l = 0; l < W; l++) {
            const float bl = b[i + l];
            c0[l] += a0[i + l] * bl;
            c1[l] += a1[i + l] * bl;
            c2[l] += a2[i + l] * bl;
            c3[l] += a3[i + l] * bl;
        }
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    for (; i < n; i++) {
        s0 += a0[i] * b[i];
        s1 += a1[i] * b[i];
        s2 += a2[i] * b[i];
        s3 += a3[i] * b[i];
    }
    for (int l = 0; l < W; l++) s0 += c0[l], s1 += c1[l], s2 += c2[l], s3 += c3[l];
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

/* y = y * c + sum_r f[r] x_r for four rows x_r at x + r * xs: y is loaded and stored once. */
static void scale_axpy4(float *restrict y, float c, const float f[4], const float *restrict x,
                        int64_t xs, int64_t n) {
    const float *restrict x1 = x + xs, *restrict x2 = x + 2 * xs, *restrict x3 = x + 3 * xs;
    int64_t i = 0;
    for (; i + DOT_LANES <= n; i += DOT_LANES)
        for (int l = 0; l < DOT_LANES; l++)
            y[i + l] = y[i + l] * c + f[0] * x[i + l] + f[1] * x1[i + l] + f[2] * x2[i + l] +
                       f[3] * x3[i + l];
    for (; i < n; i++) y[i] = y[i] * c + f[0] * x[i] + f[1] * x1[i] + f[2] * x2[i] + f[3] * x3[i];
}

/* y = y * c + a x */
static void scale_axpy1(float *restrict y, float c, float a, const float *restrict x,
                        int64_t n) {
    int64_t i = 0;
    for (; i + DOT_LANES <= n; i += DOT_LANES)
        for (int l = 0; l < DOT_LANES; l++) y[i + l] = y[i + l] * c + a * x[i + l];
    for (; i < n; i++) y[i] = y[i] * c + a * x[i];
}

/* One step per token in two passes over each state row S_j (dk): with S' = decay * S,
 *   S'_j . k = decay (S_j . k),  u_j = beta (v_j - S'_j . k),  S_j <- S'_j + u_j k,
 *   o_j = S_j . q = decay (S_j . q) + u_j (k . q)   (S_j before the update on the right),
 * so both dots read the old row in one pass and the update writes it in the other. */
void cpu_dnet_step(const cpu_dnet_head *h) {
    const int64_t dk = h->dk, dv = h->dv;
    for (int64_t t = 0; t < h->n; t++) {
        const int64_t r = h->rows[t];
        const float *q = h->q + r * h->qk_stride, *k = h->k + r * h->qk_stride;
        const float *v = h->v + r * h->v_stride;
        const float decay = expf(h->g[r * h->gb_stride]), beta = h->beta[r * h->gb_stride];
        const float kq = dot(k, q, dk);
        float *o = h->out + r * h->out_stride;
        for (int64_t j = 0; j < dv; j++) {
            float *s = h->state + j * dk;
            float sk[DOT_LANES] = {0}, sq[DOT_LANES] = {0};
            int64_t i = 0;
            for (; i + DOT_LANES <= dk; i += DOT_LANES)
                for (int l = 0; l < DOT_LANES; l++) {
                    sk[l] += s[i + l] * k[i + l];
                    sq[l] += s[i + l] * q[i + l];
                }
            float dk_s = 0.0f, dq_s = 0.0f;
            for (; i < dk; i++) dk_s += s[i] * k[i], dq_s += s[i] * q[i];
            for (int l = 0; l < DOT_LANES; l++) dk_s += sk[l], dq_s += sq[l];
            const float u = beta * (v[j] - decay * dk_s);
            scale_axpy1(s, decay, u, k, dk);
            o[j] = decay * dq_s + u * kq;
        }
    }
}

size_t cpu_dnet_scratch_floats(int64_t dk, int64_t dv) {
    const size_t c = CPU_DNET_CHUNK;
    return 3 * c + 2 * c * c + c * (size_t)(dv + dk) + 2 * c * (size_t)dk;
}

/* One chunk of n <= CPU_DNET_CHUNK tokens starting at h->rows[t0]. The chunk's q and k rows
 * are first copied together (Qc, Kc: n rows of dk) so the products below walk contiguous
 * rows four at a time. */
static void chunk_run(const cpu_dnet_head *h, int64_t t0, int64_t n, float *scratch) {
    const int64_t dk = h->dk, dv = h->dv, C = CPU_DNET_CHUNK, w = dv + dk;
    float *G = scratch, *E = G + C, *Gam = E + C;  /* E: exp(G_last - G_t), Gam: exp(G_t) */
    float *L = Gam + C, *QK = L + C * C;
    float *Y = QK + C * C, *Qc = Y + C * w, *Kc = Qc + C * dk;   /* Y (n, dv + dk) */
    const int32_t *rows = h->rows + t0;
    float acc = 0.0f;
    for (int64_t t = 0; t < n; t++) {
        G[t] = acc += h->g[rows[t] * h->gb_stride];
        memcpy(Qc + t * dk, h->q + (int64_t)rows[t] * h->qk_stride, (size_t)dk * sizeof(float));
        memcpy(Kc + t * dk, h->k + (int64_t)rows[t] * h->qk_stride, (size_t)dk * sizeof(float));
    }
    /* the rows padded to a multiple of four (zeros) so dot4 may run past n */
    const int64_t n4 = (n + 3) & ~(int64_t)3;
    memset(Qc + n * dk, 0, (size_t)((n4 - n) * dk) * sizeof(float));
    memset(Kc + n * dk, 0, (size_t)((n4 - n) * dk) * sizeof(float));
    for (int64_t t = 0; t < n; t++) {
        const float beta = h->beta[rows[t] * h->gb_stride];
        for (int64_t s = 0; s <= t; s += 4) { /* rows past t read Kc's padding or later rows */
            float kk[4], qk[4];
            dot4(kk, Kc + s * dk, dk, Kc + t * dk, dk);
            dot4(qk, Kc + s * dk, dk, Qc + t * dk, dk);
            for (int64_t r = 0; r < 4 && s + r <= t; r++) {
                const float e = expf(G[t] - G[s + r]);
                L[t * C + s + r] = s + r < t ? beta * e * kk[r] : 0.0f;
                QK[t * C + s + r] = e * qk[r];
            }
        }
        /* row t of [beta v | beta Gamma k], then forward substitution against the rows
         * before it: Y_t = X_t - sum_{s<t} L[t][s] Y_s */
        float *y = Y + t * w;
        const float *v = h->v + (int64_t)rows[t] * h->v_stride, bg = beta * expf(G[t]);
        for (int64_t j = 0; j < dv; j++) y[j] = beta * v[j];
        for (int64_t i = 0; i < dk; i++) y[dv + i] = bg * Kc[t * dk + i];
        for (int64_t s = 0; s < t; s++) axpy(y, -L[t * C + s], Y + s * w, w);
    }
    /* U = W - Kc S0^T, in place of W, and the outputs' inter-chunk part gamma_t q_t S0^T,
     * which need S0 still: per state row, four tokens at a time */
    for (int64_t t = 0; t < n; t++) Gam[t] = expf(G[t]);
    for (int64_t j = 0; j < dv; j++) {
        const float *sj = h->state + j * dk;
        for (int64_t t = 0; t < n; t += 4) {
            float kw[4], qs[4];
            const float *wk = Y + t * w + dv;
            if (t + 4 <= n) dot4(kw, wk, w, sj, dk);
            else
                for (int r = 0; r < 4; r++) kw[r] = t + r < n ? dot(wk + r * w, sj, dk) : 0.0f;
            dot4(qs, Qc + t * dk, dk, sj, dk);
            for (int r = 0; r < 4 && t + r < n; r++) {
                Y[(t + r) * w + j] -= kw[r];
                h->out[(int64_t)rows[t + r] * h->out_stride + j] = Gam[t + r] * qs[r];
            }
        }
    }
    for (int64_t t = 0; t < n; t++) {
        float *o = h->out + (int64_t)rows[t] * h->out_stride;
        for (int64_t s = 0; s <= t; s++) axpy(o, QK[t * C + s], Y + s * w, dv);
    }
    /* S = Gamma_C S0 + sum_s exp(G_C - G_s) u_s k_s^T, four tokens per pass over a row */
    const float g_last = G[n - 1], gamma_c = expf(g_last);
    for (int64_t s = 0; s < n4; s++) E[s] = s < n ? expf(g_last - G[s]) : 0.0f;
    for (int64_t j = 0; j < dv; j++) {
        float *st = h->state + j * dk;
        for (int64_t s = 0; s < n4; s += 4) {
            float f[4];
            for (int r = 0; r < 4; r++) f[r] = s + r < n ? E[s + r] * Y[(s + r) * w + j] : 0.0f;
            scale_axpy4(st, s == 0 ? gamma_c : 1.0f, f, Kc + s * dk, dk, dk);
        }
    }
}

void cpu_dnet_chunked(const cpu_dnet_head *h, float *scratch) {
    for (int64_t t0 = 0; t0 < h->n; t0 += CPU_DNET_CHUNK) {
        const int64_t n = h->n - t0 < CPU_DNET_CHUNK ? h->n - t0 : CPU_DNET_CHUNK;
        chunk_run(h, t0, n, scratch);
    }
}

void cpu_dnet_conv(float *x, int64_t x_stride, const int32_t *rows, int64_t n, const float *w,
                   int64_t K, float *state, int64_t n_ch, int64_t c0, int64_t c1) {
    const int64_t hist = K - 1;
    for (int64_t c = c0; c < c1; c++) {
        const float *wc = w + c * K;
        /* the last K - 1 inputs (state, then the rows), kept before x is overwritten */
        float keep[16], win[16]; /* K <= 16 (checked at load) */
        for (int64_t j = 0; j < hist; j++) {
            const int64_t t = n - hist + j; /* input index; < 0 reads the state */
            keep[j] = t >= 0 ? x[(int64_t)rows[t] * x_stride + c]
                             : state[(hist + t) * n_ch + c];
        }
        /* backwards, so each output overwrites an input no later output reads */
        for (int64_t t = n - 1; t >= 0; t--) {
            for (int64_t j = 0; j < K; j++) {
                const int64_t ti = t - hist + j;
                win[j] = ti >= 0 ? x[(int64_t)rows[ti] * x_stride + c]
                                 : state[(hist + ti) * n_ch + c];
            }
            float s = 0.0f;
            for (int64_t j = 0; j < K; j++) s += wc[j] * win[j];
            x[(int64_t)rows[t] * x_stride + c] = s / (1.0f + expf(-s));
        }
        for (int64_t j = 0; j < hist; j++) state[j * n_ch + c] = keep[j];
    }
}
