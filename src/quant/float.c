/*
 * Scalar reference kernels for the plain float types F32, F16 and BF16. Each is its own
 * vec_dot_type (activations are converted to the weight's type), as in ggml's CPU backend.
 * Dot products accumulate in double, as ggml's scalar paths do, so the reference is more
 * accurate than any SIMD variant and a fair yardstick for their tolerance.
 */
#include "quant/quant_impl.h"

/* ---- F32 ---- */

static void f32_to_f32(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f32_from_f32(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f32_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const float *a = x, *b = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(a[i] * b[i]);
    *out = (float)sum;
}

const quant_impl quant_f32_scalar = {f32_to_f32, f32_from_f32, f32_vec_dot, NULL, 0};

/* ---- F16 ---- */

static void f16_to_f32(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = quant_f16(s[i]);
}

static void f16_from_f32(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = quant_to_f16(src[i]);
}

static void f16_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const uint16_t *a = x, *b = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(quant_f16(a[i]) * quant_f16(b[i]));
    *out = (float)sum;
}

const quant_impl quant_f16_scalar = {f16_to_f32, f16_from_f32, f16_vec_dot, NULL, 0};

/* ---- BF16 ---- */

static void bf16_to_f32(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = quant_bf16(s[i]);
}

static void bf16_from_f32(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = quant_to_bf16(src[i]);
}

static void bf16_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const uint16_t *a = x, *b = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(quant_bf16(a[i]) * quant_bf16(b[i]));
    *out = (float)sum;
}

const quant_impl quant_bf16_scalar = {bf16_to_f32, bf16_from_f32, bf16_vec_dot, NULL, 0};
