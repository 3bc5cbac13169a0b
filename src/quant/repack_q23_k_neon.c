/*
 * Q2_K and Q3_K weights repacked 8 rows at a time, NEON with SDOT: the low-bit K-quants on the
 * layouts of repack_q2_k_avx2.c and repack_q3_k_avx2.c (8 rows, from repack_layout.c), read
 * through the piece and scale helpers of repack_k_neon.h, for decode and prefill.
 *
 * Both have sub-blocks of 16 elements: four SDOTs by element per half (4 rows) and activation
 * row, whose int32 sum meets the rows' sub-block scale in one multiply-add. Q2_K's quants
 * (0..3) subtract min * bsum per sub-block, folded as d * dy * isum - dmin * dy * msum; Q3_K's
 * are taken as u = q + 4 (0..7) with each sub-block sum starting at -4 * bsum. Sums are exact
 * in int32; results equal the reference vec_dot up to float order, whatever the number of
 * activation rows. Activation rows are plain Q8_K.
 */
#include "quant/repack_k_neon.h"

/* Piece g of sub-block j (16 elements) against RY activation rows (a[c]: their 16 quants);
 * g is a literal where the lane must be one. */
#define RQN_SDOT(g)                                                                            \
    do {                                                                                       \
        const int8x16_t w = kind == RKN_Q3_K ? rkn_q3_piece(cb, 4 * hi + (g), h)               \
                                             : rkn_q2_piece(cb, 4 * hi + (g), h);              \
        _Pragma("GCC unroll 4")                                                                \
        for (int c = 0; c < RY; c++) s[c] = vdotq_laneq_s32(s[c], w, a[c], (g));               \
    } while (0)

/* One super-block column of half h (rows 4h..4h+3) against RY activation rows. */
RN_INLINE void rqn_block(int kind, int RY, float32x4_t acc[4][2], int h, const uint8_t *xb,
                         const uint8_t *y, size_t ys) {
    int32x4_t isum[4], msum[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = msum[c] = vdupq_n_s32(0);
    for (int k = 0; k < 8; k++) { /* 32 elements: sub-blocks 2k (hi 0) and 2k + 1 (hi 1) */
        const uint8_t *cb = xb + (kind == RKN_Q3_K ? 112 + 96 * k : 160 + 64 * k);
#pragma GCC unroll 2
        for (int hi = 0; hi < 2; hi++) {
            const int j = 2 * k + hi;
            int8x16_t a[4];
            int32x4_t s[4];
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const uint8_t *yb = y + c * ys;
                a[c] = vld1q_s8((const int8_t *)yb + 4 + 16 * j);
                s[c] = vdupq_n_s32(kind == RKN_Q3_K ? -4 * rkn_ysum16(yb, j) : 0);
            }
            RQN_SDOT(0);
            RQN_SDOT(1);
            RQN_SDOT(2);
            RQN_SDOT(3);
            if (kind == RKN_Q3_K) {
                const int32x4_t sc = rkn_q3_scale(xb, j, h);
#pragma GCC unroll 4
                for (int c = 0; c < RY; c++) isum[c] = vmlaq_s32(isum[c], s[c], sc);
            } else {
                int32x4_t sc, mn;
                rkn_q2_scale(xb, j, h, &sc, &mn);
#pragma GCC unroll 4
                for (int c = 0; c < RY; c++) {
                    isum[c] = vmlaq_s32(isum[c], s[c], sc);
                    msum[c] = vmlaq_n_s32(msum[c], mn, rkn_ysum16(y + c * ys, j));
                }
            }
        }
    }
    const float32x4_t dx = rkn_half_scales(xb, h);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const float dy = rn_load_f32(y + c * ys);
        acc[c][h] = vfmaq_f32(acc[c][h], vcvtq_f32_s32(isum[c]), vmulq_n_f32(dx, dy));
        if (kind == RKN_Q2_K)
            acc[c][h] = vfmsq_f32(acc[c][h], vcvtq_f32_s32(msum[c]),
                                  vmulq_n_f32(rkn_half_scales(xb + 16, h), dy));
    }
}

/* One group of 8 rows against RY (1..4, constant after inlining) activation rows. */
RN_INLINE void rqn_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                         const uint8_t *y, size_t ys) {
    const size_t xb = RN_ROWS * (kind == RKN_Q3_K ? sizeof(block_q3_k) : sizeof(block_q2_k));
    float32x4_t acc[4][2];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c][0] = acc[c][1] = vdupq_n_f32(0);
    for (int64_t b = 0; b < n / QK_K; b++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) rqn_block(kind, RY, acc, h, x + b * xb, y + b * RKN_ABLOCK, ys);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        vst1q_f32(out + c * os, acc[c][0]);
        vst1q_f32(out + c * os + 4, acc[c][1]);
    }
}

#define RQN_DEFINE_DOT(NAME, KIND) REPACK_DEFINE_DOT(NAME, rqn_group, KIND, RN_ROWS)

RQN_DEFINE_DOT(rqn_dot_q2_k, RKN_Q2_K)
RQN_DEFINE_DOT(rqn_dot_q3_k, RKN_Q3_K)

const quant_repack_impl quant_q2_k_repack_neon = {RN_ROWS, rkn_pack_q2_k, rkn_act_size,
                                                 quant_q8_k_from_f32_neon, rqn_dot_q2_k};
const quant_repack_impl quant_q3_k_repack_neon = {RN_ROWS, rkn_pack_q3_k, rkn_act_size,
                                                 quant_q8_k_from_f32_neon, rqn_dot_q3_k};
