/*
 * Q2_K, scalar reference: 16 sub-blocks of 16 weights, each with a 4-bit scale and a 4-bit
 * min (w = d*sc*q - dmin*m, q in 0..3). Quants are packed 4 per byte: for 128-element half h,
 * byte qs[32h + l] holds elements l, l+32, l+64, l+96 in bit pairs 0, 2, 4, 6. Layout: q8_k.h.
 */
#include "quant/q8_k.h"
#include "quant/quant_impl.h"

#include <math.h>

void quant_q2_k_to_f32(const void *src, float *dst, int64_t n) {
    const block_q2_k *x = src;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d = quant_f16(x[b].d), dmin = quant_f16(x[b].dmin);
        for (int j = 0; j < QK_K / 16; j++) {
            /* Sub-block j: half j/8, bit pair (j%8)/2, bytes 16*(j%2).. of that half. */
            const uint8_t *q = x[b].qs + 32 * (j / 8) + 16 * (j % 2);
            const int shift = 2 * ((j % 8) / 2);
            const uint8_t sc = x[b].scales[j];
            const float dl = d * (sc & 0xF), ml = dmin * (sc >> 4);
            for (int l = 0; l < 16; l++)
                *dst++ = dl * ((q[l] >> shift) & 3) - ml;
        }
    }
}

void quant_q2_k_from_f32(const float *src, void *dst, int64_t n) {
    block_q2_k *y = dst;
    uint8_t L[QK_K], laux[16];
    float weights[16], mins[QK_K / 16], scales[QK_K / 16];
    const float q4scale = 15.f;
    for (int64_t b = 0; b < n / QK_K; b++, src += QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            for (int l = 0; l < 16; l++)
                weights[l] = fabsf(src[16 * j + l]);
            /* Two-bit levels are coarse: minimise absolute (not squared) error. */
            scales[j] = quant_kq_make_qkx2(16, 3, src + 16 * j, weights, L + 16 * j, &mins[j], laux,
                                           -0.5f, 0.1f, 15, 1);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        memset(y[b].scales, 0, sizeof y[b].scales);
        y[b].d = quant_to_f16(0.f);
        y[b].dmin = quant_to_f16(0.f);
        if (max_scale > 0) {
            float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; j++)
                y[b].scales[j] = (uint8_t)kq_nearest_int(iscale * scales[j]);
            y[b].d = quant_to_f16(max_scale / q4scale);
        }
        if (max_min > 0) {
            float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; j++)
                y[b].scales[j] |= (uint8_t)(kq_nearest_int(iscale * mins[j]) << 4);
            y[b].dmin = quant_to_f16(max_min / q4scale);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = quant_f16(y[b].d) * (y[b].scales[j] & 0xF);
            if (!d) continue;
            const float dm = quant_f16(y[b].dmin) * (y[b].scales[j] >> 4);
            for (int i = 0; i < 16; i++) {
                int l = kq_nearest_int((src[16 * j + i] + dm) / d);
                L[16 * j + i] = (uint8_t)(l < 0 ? 0 : l > 3 ? 3 : l);
            }
        }
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; l++)
                y[b].qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) |
                                               (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
}

void quant_q2_k_vec_dot(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q2_k *x = vx;
    const block_q8_k *y = vy;
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const int8_t *q8 = y[b].qs;
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            const uint8_t *q = x[b].qs + 32 * (j / 8) + 16 * (j % 2);
            const int shift = 2 * ((j % 8) / 2);
            int32_t s = 0;
            for (int l = 0; l < 16; l++)
                s += ((q[l] >> shift) & 3) * q8[16 * j + l];
            isum += (x[b].scales[j] & 0xF) * s;
            msum += (x[b].scales[j] >> 4) * y[b].bsums[j];
        }
        acc = kq_fold(acc, quant_f16(x[b].d) * y[b].d, isum, quant_f16(x[b].dmin) * y[b].d, msum);
    }
    *out = acc;
}

const quant_impl quant_q2_k_scalar = {quant_q2_k_to_f32, quant_q2_k_from_f32, quant_q2_k_vec_dot,
                                      NULL, 0};
