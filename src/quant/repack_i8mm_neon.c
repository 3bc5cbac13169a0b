/*
 * Q4_0, Q5_0, Q8_0 and IQ4_NL weights repacked 8 rows at a time, NEON with I8MM: prefill as
 * 2 x 2 tiles of SMMLA (vmmlaq_s32: a 2 x 8 block of weight quants times a 2 x 8 block of
 * activation quants into 4 int32 sums), twice the multiply-adds of SDOT per instruction. Same
 * repacked layout and activation rows as the SDOT kernels (repack_neon.h); a single activation
 * row (decode, and the last of an odd count) goes to the SDOT kernel, where half of every
 * SMMLA tile would be wasted. Compiled with +i8mm (the Makefile's rule for *_i8mm_neon.c) and
 * chosen only on CPUs that report I8MM.
 *
 * Registers: an SMMLA operand holds 8 consecutive quants of 2 rows. Two neighbouring pieces g,
 * g + 1 of the layout (elements 4g.. and 4g + 4.. of 4 rows, one row per int32 lane) zipped by
 * 32-bit lanes give rows (0, 1) and, from the second zip, rows (2, 3), elements 4g..4g + 7; the
 * activation side is the 64-bit zip of two rows' quants. A tile's sums come out as
 * [r0 t0, r0 t1, r1 t0, r1 t1] and are scaled by [dx0 dy0, dx0 dy1, dx1 dy0, dx1 dy1], the same
 * products the SDOT kernel forms, and put back in row order when stored.
 *
 * The activation side (zipped quants, [dy t0, dy t1, ..] and start vectors) is arranged once
 * per chunk of 64 blocks into a stack buffer and read by up to 4 groups of 8 rows (32 rows; the
 * matmul passes 16 per call), rather than rebuilt for every group; the groups' accumulators
 * carry across chunks in memory, so each row still gets one fma per block in block order.
 */
#include "quant/repack_neon.h"

/* A pair of activation rows' block in SMMLA order, arranged once for several 8-row groups:
 * q[k] elements 8k..8k+7 of row t0 then of row t1, dyy [dy t0, dy t1, dy t0, dy t1], start
 * likewise (a tile's activation order). */
typedef struct {
    int8x16_t q[4];
    float32x4_t dyy;
    int32x4_t start;
} rm_pair_block;

#define RM_CHUNK 64  /* blocks arranged at a time: 2 pairs x 64 x 96 bytes = 12 KiB of stack */
#define RM_GROUPS 4  /* 8-row groups sharing one arrangement: 4 x 8 accumulators = 512 bytes */

/* Blocks [0, nb) of RY (2..4) activation rows at y (row stride ys) into pr[p * RM_CHUNK + b]
 * for pairs p; the pair of an odd last row repeats it (that result is not stored). */
RN_INLINE void rm_arrange(int RY, int64_t nb, const uint8_t *y, size_t ys, rm_pair_block *pr) {
    const int np = (RY + 1) / 2;
#pragma GCC unroll 2
    for (int p = 0; p < np; p++) {
        const uint8_t *r0 = y + 2 * p * ys, *r1 = 2 * p + 1 < RY ? r0 + ys : r0;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *t0 = r0 + b * RN_ABLOCK, *t1 = r1 + b * RN_ABLOCK;
            const int64x2_t a00 = vreinterpretq_s64_s8(vld1q_s8((const int8_t *)t0)),
                            a01 = vreinterpretq_s64_s8(vld1q_s8((const int8_t *)t0 + 16)),
                            a10 = vreinterpretq_s64_s8(vld1q_s8((const int8_t *)t1)),
                            a11 = vreinterpretq_s64_s8(vld1q_s8((const int8_t *)t1 + 16));
            rm_pair_block *o = pr + p * RM_CHUNK + b;
            o->q[0] = vreinterpretq_s8_s64(vzip1q_s64(a00, a10)); /* elements 0..7 */
            o->q[1] = vreinterpretq_s8_s64(vzip2q_s64(a00, a10)); /* 8..15 */
            o->q[2] = vreinterpretq_s8_s64(vzip1q_s64(a01, a11)); /* 16..23 */
            o->q[3] = vreinterpretq_s8_s64(vzip2q_s64(a01, a11)); /* 24..31 */
            o->dyy = vreinterpretq_f32_s32(rn_pair_s32(t0 + 32, t1 + 32));
            o->start = rn_pair_s32(t0 + 36, t1 + 36);
        }
    }
}

/* One block column of 8 rows against RY (2..4) activation rows arranged in pr (pair p at
 * pr[p * RM_CHUNK]). acc[rp][p]: rows 2rp, 2rp + 1 x rows 2p, 2p + 1 of the activations. */
RN_INLINE void rm_block(int kind, int RY, float32x4_t acc[4][2], const uint8_t *xb,
                        const rm_pair_block *pr, int8x16_t levels) {
    const int np = (RY + 1) / 2;
    const uint8_t *q = xb + 2 * RN_ROWS;
    int32x4_t s[4][2];
#pragma GCC unroll 2
    for (int p = 0; p < np; p++)
#pragma GCC unroll 4
        for (int rp = 0; rp < 4; rp++) s[rp][p] = pr[p * RM_CHUNK].start;
#pragma GCC unroll 4
    for (int kc = 0; kc < 4; kc++) { /* elements 8kc..8kc+7: pieces 2kc, 2kc + 1 */
        int8x16_t w0[2], w1[2];
        rn_piece(kind, q, 2 * kc, levels, w0);
        rn_piece(kind, q, 2 * kc + 1, levels, w1);
        int8x16_t m[4];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const int32x4_t u0 = vreinterpretq_s32_s8(w0[h]), u1 = vreinterpretq_s32_s8(w1[h]);
            m[2 * h] = vreinterpretq_s8_s32(vzip1q_s32(u0, u1));
            m[2 * h + 1] = vreinterpretq_s8_s32(vzip2q_s32(u0, u1));
        }
#pragma GCC unroll 4
        for (int rp = 0; rp < 4; rp++)
#pragma GCC unroll 2
            for (int p = 0; p < np; p++)
                s[rp][p] = vmmlaq_s32(s[rp][p], m[rp], pr[p * RM_CHUNK].q[kc]);
    }
    float32x4_t dx[2];
    rn_dx(xb, dx);
#pragma GCC unroll 4
    for (int rp = 0; rp < 4; rp++) {
        /* [dx 2rp, dx 2rp, dx 2rp+1, dx 2rp+1] */
        const float32x4_t dxx = rp % 2 ? vzip2q_f32(dx[rp / 2], dx[rp / 2])
                                       : vzip1q_f32(dx[rp / 2], dx[rp / 2]);
#pragma GCC unroll 2
        for (int p = 0; p < np; p++)
            acc[rp][p] = vfmaq_f32(acc[rp][p], vcvtq_f32_s32(s[rp][p]),
                                   vmulq_f32(dxx, pr[p * RM_CHUNK].dyy));
    }
}

/* Blocks [0, nb) of one group of 8 rows (x at its first block) against the arranged pairs:
 * accs (4 x 2 tiles) loaded from and stored back to acc_mem, which carries them across chunks. */
RN_INLINE void rm_group_chunk(int kind, int RY, int64_t nb, float32x4_t *acc_mem,
                              const uint8_t *x, const rm_pair_block *pr) {
    const int np = (RY + 1) / 2;
    const int8x16_t levels = rn_levels(kind);
    float32x4_t acc[4][2];
#pragma GCC unroll 4
    for (int rp = 0; rp < 4; rp++)
#pragma GCC unroll 2
        for (int p = 0; p < np; p++) acc[rp][p] = acc_mem[2 * rp + p];
    const size_t xb = RN_ROWS * rn_xsize(kind);
    for (int64_t b = 0; b < nb; b++) rm_block(kind, RY, acc, x + b * xb, pr + b, levels);
#pragma GCC unroll 4
    for (int rp = 0; rp < 4; rp++)
#pragma GCC unroll 2
        for (int p = 0; p < np; p++) acc_mem[2 * rp + p] = acc[rp][p];
}

/* Rows [0, 8 ng) (ng <= RM_GROUPS groups at x, stride xs) against RY (2..4) activation rows:
 * the activations are arranged one chunk of blocks at a time and every group runs over the
 * chunk; a row's per-block fma order is that of one group alone. */
RN_INLINE void rm_groups(int kind, int RY, int64_t n, int ng, float *out, size_t os,
                         const uint8_t *x, size_t xs, const uint8_t *y, size_t ys) {
    const int np = (RY + 1) / 2;
    rm_pair_block pr[2 * RM_CHUNK];
    float32x4_t acc[RM_GROUPS][8];
    for (int g = 0; g < ng; g++)
        for (int i = 0; i < 8; i++) acc[g][i] = vdupq_n_f32(0);
    const size_t xb = RN_ROWS * rn_xsize(kind);
    for (int64_t b0 = 0; b0 < n / 32; b0 += RM_CHUNK) {
        const int64_t nb = n / 32 - b0 < RM_CHUNK ? n / 32 - b0 : RM_CHUNK;
        rm_arrange(RY, nb, y + b0 * RN_ABLOCK, ys, pr);
        for (int g = 0; g < ng; g++)
            rm_group_chunk(kind, RY, nb, acc[g], x + g * xs + b0 * xb, pr);
    }
    for (int g = 0; g < ng; g++) {
        float *og = out + g * RN_ROWS;
#pragma GCC unroll 2
        for (int p = 0; p < np; p++) {
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) { /* rows 4h..4h+3 */
                const float32x4_t a = acc[g][2 * (2 * h) + p], c = acc[g][2 * (2 * h + 1) + p];
                vst1q_f32(og + 2 * p * os + 4 * h, vuzp1q_f32(a, c));
                if (2 * p + 1 < RY) vst1q_f32(og + (2 * p + 1) * os + 4 * h, vuzp2q_f32(a, c));
            }
        }
    }
}

/* rp_dot: nx rows (a multiple of 8) x ny activation rows, 4 activation rows at a time, each
 * against up to RM_GROUPS groups per arrangement. A single last row (decode's only one) goes to
 * the SDOT kernels' own rp_dot over all the rows, the code an SDOT-only CPU runs. */
#define RM_DEFINE_DOT(NAME, KIND, SDOT, ATTR)                                                  \
    static ATTR void NAME(int64_t n, int64_t nx, int64_t ny, float *out, size_t os, const void *xv, \
                     size_t xstride, const void *yv, size_t ystride) {                         \
        const uint8_t *x = xv, *y = yv;                                                        \
        for (int64_t c = 0; c < ny; c += 4) {                                                  \
            const uint8_t *yc = y + c * ystride;                                               \
            if (ny - c == 1) {                                                                 \
                (SDOT).dot(n, nx, 1, out + c * os, os, xv, xstride, yc, ystride);              \
                break;                                                                         \
            }                                                                                  \
            for (int64_t r = 0; r < nx; r += RN_ROWS * RM_GROUPS) {                            \
                const uint8_t *xr = x + (r / RN_ROWS) * xstride;                               \
                float *oc = out + c * os + r;                                                  \
                const int ng = nx - r < RN_ROWS * RM_GROUPS ? (int)((nx - r) / RN_ROWS)        \
                                                            : RM_GROUPS;                       \
                switch (ny - c) {                                                              \
                case 2: rm_groups(KIND, 2, n, ng, oc, os, xr, xstride, yc, ystride); break;    \
                case 3: rm_groups(KIND, 3, n, ng, oc, os, xr, xstride, yc, ystride); break;    \
                default: rm_groups(KIND, 4, n, ng, oc, os, xr, xstride, yc, ystride);          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

/* The 4-bit kinds' blocks, with their unpacking in flight, keep their tiles in registers only
 * without gcc's scheduling before register allocation, which hoists loads and spills: 5-6%
 * fewer instructions under qemu. Q8_0's retire 7% more that way, so it keeps the default. */
#define RM_NO_PRE_RA_SCHEDULE __attribute__((optimize("no-schedule-insns")))

RM_DEFINE_DOT(rm_dot_q4_0, RN_Q4_0, quant_q4_0_repack_neon, RM_NO_PRE_RA_SCHEDULE)
RM_DEFINE_DOT(rm_dot_q5_0, RN_Q5_0, quant_q5_0_repack_neon, RM_NO_PRE_RA_SCHEDULE)
RM_DEFINE_DOT(rm_dot_q8_0, RN_Q8_0, quant_q8_0_repack_neon, )
RM_DEFINE_DOT(rm_dot_iq4_nl, RN_IQ4_NL, quant_iq4_nl_repack_neon, RM_NO_PRE_RA_SCHEDULE)

const quant_repack_impl quant_q4_0_repack_i8mm = {RN_ROWS, rn_pack_q4_0, rn_act_size,
                                                 rn_act_q4_0, rm_dot_q4_0};
const quant_repack_impl quant_q5_0_repack_i8mm = {RN_ROWS, rn_pack_q5_0, rn_act_size,
                                                 rn_act_q5_0, rm_dot_q5_0};
const quant_repack_impl quant_q8_0_repack_i8mm = {RN_ROWS, rn_pack_q8_0, rn_act_size,
                                                 rn_act_signed, rm_dot_q8_0};
const quant_repack_impl quant_iq4_nl_repack_i8mm = {RN_ROWS, rn_pack_q4_0, rn_act_size,
                                                   rn_act_signed, rm_dot_iq4_nl};
