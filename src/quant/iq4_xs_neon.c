/*
 * IQ4_XS x Q8_K and IQ4_NL x Q8_0 dot products, NEON with the dot-product extension. A table
 * lookup (tbl) turns 16 indices into 16 int8 levels; the low nibbles of a sub-block's 16 bytes
 * are its first 16 weights and the high nibbles the next 16, matching 32 contiguous activation
 * bytes. Both equal their scalar references exactly.
 */
#include "quant/iq4_nl.h"

#include <arm_neon.h>

/* sdot of one 32-weight sub-block (16 index bytes) with 32 activations. */
static inline int32x4_t iq4_dot32(const uint8_t *qs, const int8_t *q8, int8x16_t levels) {
    const uint8x16_t q = vld1q_u8(qs);
    const int8x16_t lo = vqtbl1q_s8(levels, vandq_u8(q, vdupq_n_u8(0xF)));
    const int8x16_t hi = vqtbl1q_s8(levels, vshrq_n_u8(q, 4));
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(q8)), hi, vld1q_s8(q8 + 16));
}

void quant_iq4_xs_vec_dot_neon(int64_t n, float *out, const void *vx, const void *vy) {
    const block_iq4_xs *x = vx;
    const block_q8_k *y = vy;
    const int8x16_t levels = vld1q_s8(quant_iq4_levels);
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32x4_t sum = vdupq_n_s32(0);
        for (int ib = 0; ib < QK_K / 32; ib++)
            sum = vmlaq_n_s32(sum, iq4_dot32(x[b].qs + 16 * ib, y[b].qs + 32 * ib, levels),
                              iq4_xs_scale(&x[b], ib));
        acc = iq4_fold(acc, quant_f16(x[b].d) * y[b].d, vaddvq_s32(sum));
    }
    *out = acc;
}

void quant_iq4_nl_vec_dot_neon(int64_t n, float *out, const void *vx, const void *vy) {
    const block_iq4_nl *x = vx;
    const quant_block_q8_0 *y = vy;
    const int8x16_t levels = vld1q_s8(quant_iq4_levels);
    float acc = 0;
    for (int64_t b = 0; b < n / QK4_NL; b++) {
        const int32_t s = vaddvq_s32(iq4_dot32(x[b].qs, y[b].qs, levels));
        acc = iq4_fold(acc, quant_f16(x[b].d) * quant_f16(y[b].d), s);
    }
    *out = acc;
}

const quant_impl quant_iq4_xs_neon = {NULL, NULL, quant_iq4_xs_vec_dot_neon, NULL, 0};
const quant_impl quant_iq4_nl_neon = {NULL, NULL, quant_iq4_nl_vec_dot_neon, NULL, 0};
