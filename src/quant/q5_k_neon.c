/*
 * Q5_K x Q8_K dot product, NEON with the dot-product extension: the Q4_K kernel
 * (q4_k_neon.c) with each quant's fifth bit from qh (bit 2c for chunk c's low nibbles, 2c+1
 * for its high nibbles). Equals quant_q5_k_vec_dot exactly.
 */
#include "quant/q8_k.h"
#include "quant/quant_impl.h"

#include <arm_neon.h>

void quant_q5_k_vec_dot_neon(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q5_k *x = vx;
    const block_q8_k *y = vy;
    const uint8x16_t m4 = vdupq_n_u8(0xF), m1 = vdupq_n_u8(1), m2 = vdupq_n_u8(2);
    const int32x4_t zero = vdupq_n_s32(0);
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint8_t sm[16];
        kq_unpack_k4(x[b].scales, sm);
        const int16x8_t pairs = vpaddq_s16(vld1q_s16(y[b].bsums), vld1q_s16(y[b].bsums + 8));
        const int16x8_t mins = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(sm + 8)));
        int32x4_t ms = vmull_s16(vget_low_s16(pairs), vget_low_s16(mins));
        ms = vmlal_s16(ms, vget_high_s16(pairs), vget_high_s16(mins));
        uint8x16x2_t qh = vld1q_u8_x2(x[b].qh);
        const uint8_t *ql = x[b].qs;
        const int8_t *q8 = y[b].qs;
        int32x4_t sum = zero;
        for (int c = 0; c < 4; c++, ql += 32, q8 += 64) {
            const uint8x16x2_t q = vld1q_u8_x2(ql);
            const int8x16x4_t a = vld1q_s8_x4(q8);
            int8x16_t v[4];
            for (int h = 0; h < 2; h++) {
                v[h] = vreinterpretq_s8_u8(
                    vorrq_u8(vandq_u8(q.val[h], m4), vshlq_n_u8(vandq_u8(qh.val[h], m1), 4)));
                v[2 + h] = vreinterpretq_s8_u8(
                    vorrq_u8(vshrq_n_u8(q.val[h], 4), vshlq_n_u8(vandq_u8(qh.val[h], m2), 3)));
                qh.val[h] = vshrq_n_u8(qh.val[h], 2);
            }
            const int32x4_t s0 = vdotq_s32(vdotq_s32(zero, v[0], a.val[0]), v[1], a.val[1]);
            const int32x4_t s1 = vdotq_s32(vdotq_s32(zero, v[2], a.val[2]), v[3], a.val[3]);
            sum = vmlaq_n_s32(sum, s0, sm[2 * c]);
            sum = vmlaq_n_s32(sum, s1, sm[2 * c + 1]);
        }
        acc = kq_fold(acc, quant_f16(x[b].d) * y[b].d, vaddvq_s32(sum),
                      quant_f16(x[b].dmin) * y[b].d, vaddvq_s32(ms));
    }
    *out = acc;
}

const quant_impl quant_q5_k_neon = {NULL, NULL, quant_q5_k_vec_dot_neon, NULL, 0};
