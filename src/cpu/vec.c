/*
 * Portable vector kernels and the run-time choice between them and the AVX2 ones (vec.h).
 */
#include "cpu/vec.h"

#include "core/cpu_features.h"
#include "cpu/ops.h"

static float dot_c(const float *a, const float *b, int64_t n) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy_c(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void f16_to_f32_c(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = cpu_f16_to_f32(src[i]);
}

static void round_f16_c(const float *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = cpu_f16_to_f32(cpu_f32_to_f16(src[i]));
}

static const cpu_vec_ops VEC_C = {dot_c, axpy_c, f16_to_f32_c, round_f16_c, "c"};

const cpu_vec_ops *cpu_vec_ref(void) { return &VEC_C; }

const cpu_vec_ops *cpu_vec_get(void) {
#if defined(__x86_64__) || defined(_M_X64)
    const ob_cpu_features *f = ob_cpu_features_get();
    if (f->avx2 && f->fma && f->f16c) return &cpu_vec_avx2;
#endif
    return &VEC_C;
}
