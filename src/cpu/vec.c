/*
 * Portable vector kernels and the run-time choice between them and the AVX2 or NEON ones
 * (vec.h).
 */
#include "cpu/vec.h"

#include "core/cpu_features.h"
#include "cpu/ops.h"

#include <math.h>

static void scores_c(float *out, int64_t ldo, const float *q, int64_t n_q, const uint16_t *k,
                     int64_t ks, int64_t n, int64_t hd) {
    for (int64_t i = 0; i < n_q; i++)
        for (int64_t j = 0; j < n; j++) {
            float s = 0.0f;
            for (int64_t d = 0; d < hd; d++) s += q[i * hd + d] * cpu_f16_to_f32(k[j * ks + d]);
            out[i * ldo + j] = s;
        }
}

static void mix_c(float *out, const float *p, int64_t ldp, int64_t n_q, const uint16_t *v,
                  int64_t vs, int64_t n, int64_t hd) {
    for (int64_t i = 0; i < n_q; i++)
        for (int64_t j = 0; j < n; j++)
            for (int64_t d = 0; d < hd; d++)
                out[i * hd + d] += p[i * ldp + j] * cpu_f16_to_f32(v[j * vs + d]);
}

static double exp_sum_c(float *x, int64_t n, float mx) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = x[i] == -INFINITY ? 0.0f : expf(x[i] - mx);
        sum += (double)x[i];
    }
    return sum;
}

static void swiglu_c(float *out, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void round_f16_c(const float *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = cpu_f16_to_f32(cpu_f32_to_f16(src[i]));
}

static const cpu_vec_ops VEC_C = {scores_c, mix_c, exp_sum_c, swiglu_c, round_f16_c, "c"};

const cpu_vec_ops *cpu_vec_ref(void) { return &VEC_C; }

const cpu_vec_ops *cpu_vec_get(void) {
#if defined(__x86_64__) || defined(_M_X64)
    const ob_cpu_features *f = ob_cpu_features_get();
    if (f->avx2 && f->fma && f->f16c) return &cpu_vec_avx2;
#elif defined(__aarch64__) || defined(_M_ARM64)
    if (ob_cpu_features_get()->neon) return &cpu_vec_neon; /* OB_ISA=scalar clears it */
#endif
    return &VEC_C;
}
