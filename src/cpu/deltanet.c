/*
 * Gated DeltaNet kernels (deltanet.h): the one-step recurrence, its chunked form, the causal
 * convolution and the small element-wise helpers. Plain C loops whose inner loops run over
 * contiguous key or value elements, which the compiler vectorises.
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

static float dot(const float *a, const float *b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void cpu_dnet_step(const cpu_dnet_head *h) {
    const int64_t dk = h->dk, dv = h->dv;
    for (int64_t t = 0; t < h->n; t++) {
        const int64_t r = h->rows[t];
        const float *q = h->q + r * h->qk_stride, *k = h->k + r * h->qk_stride;
        const float *v = h->v + r * h->v_stride;
        const float decay = expf(h->g[r * h->gb_stride]), beta = h->beta[r * h->gb_stride];
        float *o = h->out + r * h->out_stride;
        for (int64_t j = 0; j < dv; j++) {
            float *s = h->state + j * dk;
            for (int64_t i = 0; i < dk; i++) s[i] *= decay;
            const float u = beta * (v[j] - dot(s, k, dk));
            axpy(s, u, k, dk);
            o[j] = dot(s, q, dk);
        }
    }
}

size_t cpu_dnet_scratch_floats(int64_t dk, int64_t dv) {
    const size_t c = CPU_DNET_CHUNK;
    return c + 2 * c * c + c * (size_t)(dv + dk);
}

/* One chunk of n <= CPU_DNET_CHUNK tokens starting at h->rows[t0]. */
static void chunk_run(const cpu_dnet_head *h, int64_t t0, int64_t n, float *scratch) {
    const int64_t dk = h->dk, dv = h->dv, C = CPU_DNET_CHUNK, w = dv + dk;
    float *G = scratch, *L = G + C, *QK = L + C * C, *Y = QK + C * C; /* Y (n, dv + dk) */
    const int32_t *rows = h->rows + t0;
#define Q(t) (h->q + (int64_t)rows[t] * h->qk_stride)
#define K(t) (h->k + (int64_t)rows[t] * h->qk_stride)
    float acc = 0.0f;
    for (int64_t t = 0; t < n; t++) G[t] = acc += h->g[rows[t] * h->gb_stride];
    for (int64_t t = 0; t < n; t++) {
        const float beta = h->beta[rows[t] * h->gb_stride];
        for (int64_t s = 0; s <= t; s++) {
            const float e = expf(G[t] - G[s]);
            L[t * C + s] = s < t ? beta * e * dot(K(t), K(s), dk) : 0.0f;
            QK[t * C + s] = e * dot(Q(t), K(s), dk);
        }
        /* row t of [beta v | beta Gamma k], then forward substitution against the rows
         * before it: Y_t = X_t - sum_{s<t} L[t][s] Y_s */
        float *y = Y + t * w;
        const float *v = h->v + (int64_t)rows[t] * h->v_stride, bg = beta * expf(G[t]);
        for (int64_t j = 0; j < dv; j++) y[j] = beta * v[j];
        for (int64_t i = 0; i < dk; i++) y[dv + i] = bg * K(t)[i];
        for (int64_t s = 0; s < t; s++) axpy(y, -L[t * C + s], Y + s * w, w);
    }
    /* U = W - Kc S0^T, in place of W; then the outputs, which need S0 still */
    for (int64_t t = 0; t < n; t++) {
        float *y = Y + t * w;
        for (int64_t j = 0; j < dv; j++) y[j] -= dot(y + dv, h->state + j * dk, dk);
    }
    for (int64_t t = 0; t < n; t++) {
        float *o = h->out + (int64_t)rows[t] * h->out_stride;
        const float gamma = expf(G[t]);
        for (int64_t j = 0; j < dv; j++) o[j] = gamma * dot(Q(t), h->state + j * dk, dk);
        for (int64_t s = 0; s <= t; s++) axpy(o, QK[t * C + s], Y + s * w, dv);
    }
    /* S = Gamma_C S0 + sum_s exp(G_C - G_s) u_s k_s^T */
    const float g_last = G[n - 1], gamma_c = expf(g_last);
    for (int64_t j = 0; j < dv; j++) {
        float *st = h->state + j * dk;
        for (int64_t i = 0; i < dk; i++) st[i] *= gamma_c;
        for (int64_t s = 0; s < n; s++) axpy(st, expf(g_last - G[s]) * Y[s * w + j], K(s), dk);
    }
#undef Q
#undef K
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
