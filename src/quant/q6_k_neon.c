/*
 * Q6_K x Q8_K dot product, NEON with the dot-product extension. Quants are rebuilt as signed
 * int8 (4 low bits | 2 high bits << 4, minus 32) sixteen at a time, so each sdot covers one
 * 16-weight sub-block, weighted by its int8 scale. Equals quant_q6_k_vec_dot exactly.
 */
#include "quant/q8_k.h"
#include "quant/quant_impl.h"

#include <arm_neon.h>

void quant_q6_k_vec_dot_neon(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q6_k *x = vx;
    const block_q8_k *y = vy;
    const uint8x16_t m4 = vdupq_n_u8(0xF), m3 = vdupq_n_u8(3);
    const int8x16_t m32 = vdupq_n_s8(32);
    const int32x4_t zero = vdupq_n_s32(0);
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32x4_t sum = zero;
        for (int h = 0; h < 2; h++) {
            const uint8x16x4_t ql = vld1q_u8_x4(x[b].ql + 64 * h);
            const uint8x16x2_t qh = vld1q_u8_x2(x[b].qh + 32 * h);
            const int8_t *q8 = y[b].qs + 128 * h;
            const int8_t *sc = x[b].scales + 8 * h;
            for (int k = 0; k < 4; k++) {
                for (int s = 0; s < 2; s++) {
                    /* weights 32k + 16s .. +15: ql[l] (k even) or ql[l+32] (k odd), low nibble
                     * for k < 2, high nibble after; high bits at 2k of qh[l]. */
                    const uint8x16_t l = ql.val[(k & 1) * 2 + s];
                    const uint8x16_t lo = k < 2 ? vandq_u8(l, m4) : vshrq_n_u8(l, 4);
                    uint8x16_t hi;
                    switch (k) {
                    case 0: hi = vandq_u8(qh.val[s], m3); break;
                    case 1: hi = vandq_u8(vshrq_n_u8(qh.val[s], 2), m3); break;
                    case 2: hi = vandq_u8(vshrq_n_u8(qh.val[s], 4), m3); break;
                    default: hi = vshrq_n_u8(qh.val[s], 6); break;
                    }
                    const int8x16_t q =
                        vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, vshlq_n_u8(hi, 4))), m32);
                    const int32x4_t d = vdotq_s32(zero, q, vld1q_s8(q8 + 32 * k + 16 * s));
                    sum = vmlaq_n_s32(sum, d, sc[2 * k + s]);
                }
            }
        }
        acc = kq_fold(acc, quant_f16(x[b].d) * y[b].d, vaddvq_s32(sum), 0.f, 0);
    }
    *out = acc;
}

const quant_impl quant_q6_k_neon = {NULL, NULL, quant_q6_k_vec_dot_neon, NULL, 0};
