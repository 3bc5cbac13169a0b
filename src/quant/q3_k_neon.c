/*
 * Q3_K x Q8_K dot product, NEON with the dot-product extension. Quants are rebuilt as signed
 * int8 (2 low bits | hmask bit << 2, minus 4) sixteen at a time, so each sdot covers one
 * 16-weight sub-block, weighted by its signed 6-bit scale. Equals quant_q3_k_vec_dot exactly.
 */
#include "quant/q8_k.h"
#include "quant/quant_impl.h"

#include <arm_neon.h>

void quant_q3_k_vec_dot_neon(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q3_k *x = vx;
    const block_q8_k *y = vy;
    const uint8x16_t m3 = vdupq_n_u8(3), m1 = vdupq_n_u8(1);
    const int8x16_t m4 = vdupq_n_s8(4);
    const int32x4_t zero = vdupq_n_s32(0);
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int8_t sc[16];
        kq_q3_scales(x[b].scales, sc);
        uint8x16x2_t hm = vld1q_u8_x2(x[b].hmask);
        int32x4_t sum = zero;
        for (int h = 0; h < 2; h++) {
            uint8x16x2_t qs = vld1q_u8_x2(x[b].qs + 32 * h);
            const int8_t *q8 = y[b].qs + 128 * h;
            for (int k = 0; k < 4; k++) {
                for (int s = 0; s < 2; s++) {
                    /* hmask bit 4h+k of byte l is the high bit of weight 128h + 32k + l. */
                    const uint8x16_t q =
                        vorrq_u8(vandq_u8(qs.val[s], m3), vshlq_n_u8(vandq_u8(hm.val[s], m1), 2));
                    const int8x16_t v = vsubq_s8(vreinterpretq_s8_u8(q), m4);
                    const int32x4_t d = vdotq_s32(zero, v, vld1q_s8(q8 + 32 * k + 16 * s));
                    sum = vmlaq_n_s32(sum, d, sc[8 * h + 2 * k + s]);
                    qs.val[s] = vshrq_n_u8(qs.val[s], 2);
                    hm.val[s] = vshrq_n_u8(hm.val[s], 1);
                }
            }
        }
        acc = kq_fold(acc, quant_f16(x[b].d) * y[b].d, vaddvq_s32(sum), 0.f, 0);
    }
    *out = acc;
}

const quant_impl quant_q3_k_neon = {NULL, NULL, quant_q3_k_vec_dot_neon, NULL, 0};
