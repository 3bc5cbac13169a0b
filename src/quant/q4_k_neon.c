/*
 * Q4_K x Q8_K dot product, NEON with the dot-product extension. Each 64-weight chunk's 32
 * bytes give 32 low nibbles (sub-block 2c) and 32 high nibbles (2c+1); sdot multiplies them
 * with the int8 activations four at a time into int32 lanes, which are then weighted by the
 * sub-block scale. The mins use the activation's 16-sums. Equals quant_q4_k_vec_dot exactly.
 */
#include "quant/q8_k.h"
#include "quant/quant_impl.h"

#include <arm_neon.h>

/* sum over sub-blocks of min * (its two bsums): bsums (16) paired, times the 8 mins. */
static inline int32_t k4_min_sum(const int16_t *bsums, const uint8_t *mins) {
    const int16x8_t pairs = vpaddq_s16(vld1q_s16(bsums), vld1q_s16(bsums + 8));
    const int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mins)));
    int32x4_t s = vmull_s16(vget_low_s16(pairs), vget_low_s16(m));
    s = vmlal_s16(s, vget_high_s16(pairs), vget_high_s16(m));
    return vaddvq_s32(s);
}

void quant_q4_k_vec_dot_neon(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q4_k *x = vx;
    const block_q8_k *y = vy;
    const uint8x16_t m4 = vdupq_n_u8(0xF);
    const int32x4_t zero = vdupq_n_s32(0);
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint8_t sm[16];
        kq_unpack_k4(x[b].scales, sm);
        const int32_t msum = k4_min_sum(y[b].bsums, sm + 8);
        const uint8_t *q4 = x[b].qs;
        const int8_t *q8 = y[b].qs;
        int32x4_t sum = zero;
        for (int c = 0; c < 4; c++, q4 += 32, q8 += 64) {
            const uint8x16x2_t q = vld1q_u8_x2(q4);
            const int8x16x4_t a = vld1q_s8_x4(q8);
            int32x4_t s0 = vdotq_s32(zero, vreinterpretq_s8_u8(vandq_u8(q.val[0], m4)), a.val[0]);
            s0 = vdotq_s32(s0, vreinterpretq_s8_u8(vandq_u8(q.val[1], m4)), a.val[1]);
            int32x4_t s1 = vdotq_s32(zero, vreinterpretq_s8_u8(vshrq_n_u8(q.val[0], 4)), a.val[2]);
            s1 = vdotq_s32(s1, vreinterpretq_s8_u8(vshrq_n_u8(q.val[1], 4)), a.val[3]);
            sum = vmlaq_n_s32(sum, s0, sm[2 * c]);
            sum = vmlaq_n_s32(sum, s1, sm[2 * c + 1]);
        }
        acc = kq_fold(acc, quant_f16(x[b].d) * y[b].d, vaddvq_s32(sum),
                      quant_f16(x[b].dmin) * y[b].d, msum);
    }
    *out = acc;
}

const quant_impl quant_q4_k_neon = {NULL, NULL, quant_q4_k_vec_dot_neon, NULL, 0};
