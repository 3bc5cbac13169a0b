/*
 * Q5_K, scalar reference: Q4_K's super-block (8 sub-blocks of 32, 6-bit scales and mins) with
 * a fifth bit per quant in qh (q in 0..31). For 64-element chunk c, bit 2c of qh[l] is the
 * high bit of element l and bit 2c+1 that of element l+32. Layout: q8_k.h.
 */
#include "quant/q8_k.h"
#include "quant/quant_impl.h"

void quant_q5_k_to_f32(const void *src, float *dst, int64_t n) {
    const block_q5_k *x = src;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d = quant_f16(x[b].d), dmin = quant_f16(x[b].dmin);
        const uint8_t *ql = x[b].qs, *qh = x[b].qh;
        for (int c = 0; c < 4; c++, ql += 32) {
            uint8_t sc, m;
            kq_scale_min_k4(2 * c, x[b].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            kq_scale_min_k4(2 * c + 1, x[b].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            const uint8_t u1 = (uint8_t)(1u << (2 * c)), u2 = (uint8_t)(2u << (2 * c));
            for (int l = 0; l < 32; l++)
                *dst++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *dst++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

void quant_q5_k_from_f32(const float *src, void *dst, int64_t n) {
    block_q5_k *y = dst;
    uint8_t L[QK_K];
    for (int64_t b = 0; b < n / QK_K; b++, src += QK_K) {
        quant_kq_quantize_k4(src, 31, -0.5f, 15, &y[b].d, &y[b].dmin, y[b].scales, L);
        memset(y[b].qh, 0, sizeof y[b].qh);
        uint8_t *ql = y[b].qs;
        for (int c = 0; c < 4; c++, ql += 32) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[64 * c + j], l2 = L[64 * c + j + 32];
                if (l1 > 15) y[b].qh[j] |= (uint8_t)(1u << (2 * c));
                if (l2 > 15) y[b].qh[j] |= (uint8_t)(2u << (2 * c));
                ql[j] = (uint8_t)((l1 & 0xF) | ((l2 & 0xF) << 4));
            }
        }
    }
}

void quant_q5_k_vec_dot(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q5_k *x = vx;
    const block_q8_k *y = vy;
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *ql = x[b].qs, *qh = x[b].qh;
        const int8_t *q8 = y[b].qs;
        int32_t isum = 0, msum = 0;
        for (int c = 0; c < 4; c++, ql += 32, q8 += 64) {
            uint8_t sc0, m0, sc1, m1;
            kq_scale_min_k4(2 * c, x[b].scales, &sc0, &m0);
            kq_scale_min_k4(2 * c + 1, x[b].scales, &sc1, &m1);
            int32_t s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += ((ql[l] & 0xF) | (((qh[l] >> (2 * c)) & 1) << 4)) * q8[l];
                s1 += ((ql[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4)) * q8[l + 32];
            }
            isum += sc0 * s0 + sc1 * s1;
            msum += m0 * (y[b].bsums[4 * c] + y[b].bsums[4 * c + 1]) +
                    m1 * (y[b].bsums[4 * c + 2] + y[b].bsums[4 * c + 3]);
        }
        acc = kq_fold(acc, quant_f16(x[b].d) * y[b].d, isum, quant_f16(x[b].dmin) * y[b].d, msum);
    }
    *out = acc;
}

const quant_impl quant_q5_k_scalar = {quant_q5_k_to_f32, quant_q5_k_from_f32, quant_q5_k_vec_dot,
                                      NULL, 0};
