/*
 * Q6_K, scalar reference: 16 sub-blocks of 16 with int8 scales, quants in -32..31 stored as
 * 4 low bits (ql) and 2 high bits (qh). Per 128-element half: ql[l] holds elements l (low
 * nibble) and l+64 (high), ql[l+32] elements l+32 and l+96; qh[l] holds the high bits of
 * l, l+32, l+64, l+96 in bit pairs 0, 2, 4, 6. Layout: q8_k.h.
 */
#include "quant/q8_k.h"
#include "quant/quant_impl.h"

#include <math.h>

/* Element (h*128 + l + 32*k) of a Q6_K block as a signed value, k in 0..3, l in 0..31. */
static inline int q6_value(const uint8_t *ql, const uint8_t *qh, int l, int k) {
    int lo = (k & 1 ? ql[l + 32] : ql[l]) >> (k & 2 ? 4 : 0) & 0xF;
    return (lo | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
}

void quant_q6_k_to_f32(const void *src, float *dst, int64_t n) {
    const block_q6_k *x = src;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d = quant_f16(x[b].d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[b].ql + 64 * h, *qh = x[b].qh + 32 * h;
            const int8_t *sc = x[b].scales + 8 * h;
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < 32; l++)
                    dst[128 * h + 32 * k + l] = d * sc[l / 16 + 2 * k] * q6_value(ql, qh, l, k);
        }
        dst += QK_K;
    }
}

void quant_q6_k_from_f32(const float *src, void *dst, int64_t n) {
    block_q6_k *y = dst;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t b = 0; b < n / QK_K; b++, src += QK_K) {
        float max_scale = 0, max_abs = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = quant_kq_make_qx(16, 32, src + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > max_abs) {
                max_abs = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        memset(&y[b], 0, sizeof y[b]);
        if (max_abs < 1e-15f) continue; /* all zero: d = 0 */
        /* The int8 scales use -128 for the extreme, as the quants do. */
        const float iscale = -128.f / max_scale;
        y[b].d = quant_to_f16(1 / iscale);
        for (int j = 0; j < QK_K / 16; j++) {
            int v = kq_nearest_int(iscale * scales[j]);
            y[b].scales[j] = (int8_t)(v > 127 ? 127 : v);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = quant_f16(y[b].d) * y[b].scales[j];
            if (!d) continue;
            for (int i = 0; i < 16; i++) {
                int l = kq_nearest_int(src[16 * j + i] / d);
                L[16 * j + i] = (int8_t)((l < -32 ? -32 : l > 31 ? 31 : l) + 32);
            }
        }
        for (int h = 0; h < 2; h++) {
            uint8_t *ql = y[b].ql + 64 * h, *qh = y[b].qh + 32 * h;
            const int8_t *Lh = L + 128 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
                ql[l + 32] = (uint8_t)((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
                qh[l] = (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) |
                                  ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
            }
        }
    }
}

void quant_q6_k_vec_dot(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q6_k *x = vx;
    const block_q8_k *y = vy;
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32_t isum = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[b].ql + 64 * h, *qh = x[b].qh + 32 * h;
            const int8_t *q8 = y[b].qs + 128 * h, *sc = x[b].scales + 8 * h;
            for (int k = 0; k < 4; k++) {
                for (int s = 0; s < 2; s++) {
                    int32_t sum = 0;
                    for (int l = 16 * s; l < 16 * s + 16; l++)
                        sum += q6_value(ql, qh, l, k) * q8[32 * k + l];
                    isum += sc[2 * k + s] * sum;
                }
            }
        }
        acc = kq_fold(acc, quant_f16(x[b].d) * y[b].d, isum, 0.f, 0);
    }
    *out = acc;
}

const quant_impl quant_q6_k_scalar = {quant_q6_k_to_f32, quant_q6_k_from_f32, quant_q6_k_vec_dot,
                                      NULL, 0};
