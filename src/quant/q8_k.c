/*
 * Q8_K: the activation format for K-quant dot products. A row of floats becomes super-blocks
 * of 256 int8 values with one float scale, chosen so the element of largest magnitude maps to
 * -127 (never -128, so every value negates within int8), plus the sum of each 16 values,
 * which lets a K-quant kernel apply per-sub-block mins with one multiply.
 *
 * This scalar quantizer is the reference; the SIMD ones (q8_k_avx2.c, ...) produce the same
 * bytes. to_f32 exists for tests and tools.
 */
#include "quant/q8_k.h"
#include "quant/quant_impl.h"

#include <math.h>

void quant_q8_k_from_f32(const float *src, void *dst, int64_t n) {
    block_q8_k *y = dst;
    for (int64_t b = 0; b < n / QK_K; b++, src += QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++) {
            float ax = fabsf(src[j]);
            if (ax > amax) {
                amax = ax;
                max = src[j];
            }
        }
        if (!amax) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) {
            int v = kq_nearest_int(iscale * src[j]);
            y[b].qs[j] = (int8_t)(v > 127 ? 127 : v);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int i = 0; i < 16; i++)
                sum += y[b].qs[16 * j + i];
            y[b].bsums[j] = (int16_t)sum;
        }
        y[b].d = 1 / iscale;
    }
}

void quant_q8_k_to_f32(const void *src, float *dst, int64_t n) {
    const block_q8_k *x = src;
    for (int64_t b = 0; b < n / QK_K; b++)
        for (int j = 0; j < QK_K; j++)
            *dst++ = x[b].d * x[b].qs[j];
}

/* Q8_K x Q8_K: not used by models (Q8_K is only ever the activation side) but it completes
 * the type's entry, and tests use it to check the quantizer. */
static void q8_k_vec_dot(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q8_k *x = vx, *y = vy;
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32_t s = 0;
        for (int j = 0; j < QK_K; j++)
            s += x[b].qs[j] * y[b].qs[j];
        acc = kq_fold(acc, x[b].d * y[b].d, s, 0.f, 0);
    }
    *out = acc;
}

const quant_impl quant_q8_k_scalar = {quant_q8_k_to_f32, quant_q8_k_from_f32, q8_k_vec_dot, NULL,
                                      0};
