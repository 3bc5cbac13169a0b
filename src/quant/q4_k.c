/*
 * Q4_K, scalar reference: 256 weights per super-block in 8 sub-blocks of 32, each with a 6-bit
 * scale and a 6-bit min (w = d*sc*q - dmin*m, q in 0..15). The quants are stored in 64-element
 * chunks of 32 bytes: low nibbles hold the chunk's first 32 weights, high nibbles the next 32.
 * Layout and block comments: q8_k.h.
 */
#include "quant/q8_k.h"
#include "quant/quant_impl.h"

#include <math.h>

void quant_q4_k_to_f32(const void *src, float *dst, int64_t n) {
    const block_q4_k *x = src;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d = quant_f16(x[b].d), dmin = quant_f16(x[b].dmin);
        const uint8_t *q = x[b].qs;
        for (int c = 0; c < 4; c++, q += 32) {
            uint8_t sc, m;
            kq_scale_min_k4(2 * c, x[b].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            kq_scale_min_k4(2 * c + 1, x[b].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++)
                *dst++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++)
                *dst++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

/* Packs 8 6-bit scales and 8 6-bit mins into the 12-byte Q4_K/Q5_K layout (see
 * kq_scale_min_k4 for the inverse). Shared with Q5_K through q8_k.h's declaration below. */
void quant_kq_pack_scales_k4(const uint8_t ls[8], const uint8_t lm[8], uint8_t out[12]) {
    memset(out, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            out[j] = ls[j];
            out[j + 4] = lm[j];
        } else {
            out[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            out[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            out[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* Per-sub-block (scale, min) search shared by Q4_K and Q5_K (nmax 15 or 31), then 6-bit
 * quantization of the scales and mins against the super-block maxima, then the final levels
 * re-derived from the quantized scales. L receives QK_K levels in 0..nmax. */
void quant_kq_quantize_k4(const float *x, int nmax, float rmin, int nstep, uint16_t *d_out,
                          uint16_t *dmin_out, uint8_t scales[12], uint8_t L[QK_K]) {
    float mins[QK_K / 32], sc[QK_K / 32], weights[32];
    uint8_t laux[32], ls[8], lm[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        /* Weights favour large values and the group's RMS, as the reference quantizer does. */
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            weights[l] = av_x + fabsf(x[32 * j + l]);
        sc[j] = quant_kq_make_qkx2(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], laux, rmin,
                                   0.1f, nstep, 0);
        if (sc[j] > max_scale) max_scale = sc[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; j++) {
        int a = kq_nearest_int(inv_scale * sc[j]), b = kq_nearest_int(inv_min * mins[j]);
        ls[j] = (uint8_t)(a > 63 ? 63 : a);
        lm[j] = (uint8_t)(b > 63 ? 63 : b);
    }
    quant_kq_pack_scales_k4(ls, lm, scales);
    *d_out = quant_to_f16(max_scale / 63.f);
    *dmin_out = quant_to_f16(max_min / 63.f);
    const float dd = quant_f16(*d_out), dm = quant_f16(*dmin_out);
    for (int j = 0; j < QK_K / 32; j++) {
        const float d = dd * ls[j];
        if (!d) continue;
        const float m = dm * lm[j];
        for (int i = 0; i < 32; i++) {
            int l = kq_nearest_int((x[32 * j + i] + m) / d);
            L[32 * j + i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        }
    }
}

void quant_q4_k_from_f32(const float *src, void *dst, int64_t n) {
    block_q4_k *y = dst;
    uint8_t L[QK_K];
    for (int64_t b = 0; b < n / QK_K; b++, src += QK_K) {
        quant_kq_quantize_k4(src, 15, -1.f, 20, &y[b].d, &y[b].dmin, y[b].scales, L);
        uint8_t *q = y[b].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

void quant_q4_k_vec_dot(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q4_k *x = vx;
    const block_q8_k *y = vy;
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *q4 = x[b].qs;
        const int8_t *q8 = y[b].qs;
        int32_t isum = 0, msum = 0;
        for (int c = 0; c < 4; c++, q4 += 32, q8 += 64) {
            uint8_t sc0, m0, sc1, m1;
            kq_scale_min_k4(2 * c, x[b].scales, &sc0, &m0);
            kq_scale_min_k4(2 * c + 1, x[b].scales, &sc1, &m1);
            int32_t s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += (q4[l] & 0xF) * q8[l];
                s1 += (q4[l] >> 4) * q8[l + 32];
            }
            isum += sc0 * s0 + sc1 * s1;
            msum += m0 * (y[b].bsums[4 * c] + y[b].bsums[4 * c + 1]) +
                    m1 * (y[b].bsums[4 * c + 2] + y[b].bsums[4 * c + 3]);
        }
        acc = kq_fold(acc, quant_f16(x[b].d) * y[b].d, isum, quant_f16(x[b].dmin) * y[b].d, msum);
    }
    *out = acc;
}

const quant_impl quant_q4_k_scalar = {quant_q4_k_to_f32, quant_q4_k_from_f32, quant_q4_k_vec_dot,
                                      NULL, 0};
