/*
 * Q2_K x Q8_K dot product, NEON with the dot-product extension. Quants 0..3 sixteen at a time
 * (one 16-weight sub-block per sdot), weighted by the 4-bit scales; the 4-bit mins act through
 * the activation's 16-sums. Equals quant_q2_k_vec_dot exactly.
 */
#include "quant/q8_k.h"
#include "quant/quant_impl.h"

#include <arm_neon.h>

void quant_q2_k_vec_dot_neon(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q2_k *x = vx;
    const block_q8_k *y = vy;
    const uint8x16_t m3 = vdupq_n_u8(3);
    const int32x4_t zero = vdupq_n_s32(0);
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8x16_t raw = vld1q_u8(x[b].scales);
        const int16x8_t mlo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(vshrq_n_u8(raw, 4))));
        const int16x8_t mhi = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(vshrq_n_u8(raw, 4))));
        int32x4_t ms = vmull_s16(vget_low_s16(mlo), vld1_s16(y[b].bsums));
        ms = vmlal_s16(ms, vget_high_s16(mlo), vld1_s16(y[b].bsums + 4));
        ms = vmlal_s16(ms, vget_low_s16(mhi), vld1_s16(y[b].bsums + 8));
        ms = vmlal_s16(ms, vget_high_s16(mhi), vld1_s16(y[b].bsums + 12));
        int32x4_t sum = zero;
        for (int h = 0; h < 2; h++) {
            uint8x16x2_t qs = vld1q_u8_x2(x[b].qs + 32 * h);
            const int8_t *q8 = y[b].qs + 128 * h;
            for (int k = 0; k < 4; k++) {
                for (int s = 0; s < 2; s++) {
                    const int8x16_t v = vreinterpretq_s8_u8(vandq_u8(qs.val[s], m3));
                    const int32x4_t d = vdotq_s32(zero, v, vld1q_s8(q8 + 32 * k + 16 * s));
                    sum = vmlaq_n_s32(sum, d, x[b].scales[8 * h + 2 * k + s] & 0xF);
                    qs.val[s] = vshrq_n_u8(qs.val[s], 2);
                }
            }
        }
        acc = kq_fold(acc, quant_f16(x[b].d) * y[b].d, vaddvq_s32(sum),
                      quant_f16(x[b].dmin) * y[b].d, vaddvq_s32(ms));
    }
    *out = acc;
}

const quant_impl quant_q2_k_neon = {NULL, NULL, quant_q2_k_vec_dot_neon, NULL, 0};
