/*
 * Q2_K and Q3_K weights repacked 8 rows at a time, NEON with I8MM: the K-quant
 * counterpart of repack_i8mm_neon.c (read that first) on the layouts and activation rows of
 * repack_k_neon.c and repack_q23_k_neon.c, whose SDOT kernels take a single activation row.
 * Q4_K, Q5_K and Q6_K have kernels of their own (repack_k_prefill_i8mm_neon.c), entered from
 * this file's dispatch. IQ4_XS has none: its SDOT prefill (repack_k_prefill_neon.c) retires
 * fewer instructions than a 2 x 2 tile kernel on its layout did (64 x 2048 under qemu: 49k
 * against 76k at 2 activation rows, 578k against 585k at 32), so CPUs with I8MM run that.
 *
 * Per sub-block, 2 x 2 SMMLA tiles (rows 2i, 2i + 1 x activation rows 2p, 2p + 1) sum its
 * quant products; the tile meets the rows' scales as [s0, s0, s1, s1] in one multiply-add. The
 * Q2_K min term is formed per activation row as in the SDOT kernel and zipped into tile order;
 * Q3_K's -4 * bsum starts each sub-block's tile. The float folding is the SDOT kernel's,
 * element for element, so a row's result does not depend on the kernel.
 *
 * One pass over a group's weights serves up to 8 activation rows (4 pairs), one half of the
 * group (4 rows) at a time: a half's accumulators, super-block sums and tiles for 4 pairs take
 * 24 of the 32 vector registers, and each unpacked weight piece then serves twice the rows of a
 * 4-row pass.
 *
 * That fits only without gcc's scheduling before register allocation, which hoists the loads
 * and unpacking of later pieces and spills the tiles: without it these kernels retire 3-17%
 * fewer instructions under qemu.
 */
#pragma GCC optimize("no-schedule-insns")
#include "quant/repack_k_neon.h"

enum {
    RKM_COLS = 8,             /* the most activation rows one pass over a group's weights serves */
    RKM_PAIRS = RKM_COLS / 2, /* their SMMLA row pairs */
};

/* The two activation rows of pair p (the last row twice when RY is odd). */
RN_INLINE void rkm_pair(const uint8_t *y, size_t ys, int RY, int p, const uint8_t **t0,
                        const uint8_t **t1) {
    *t0 = y + 2 * p * ys;
    *t1 = 2 * p + 1 < RY ? *t0 + ys : *t0;
}

/* 16 quants at byte `at` of rows t0, t1 as two SMMLA operands (elements 0..7, 8..15). */
RN_INLINE void rkm_b16(const uint8_t *t0, const uint8_t *t1, int at, int8x16_t b[2]) {
    const int64x2_t a0 = vreinterpretq_s64_s8(vld1q_s8((const int8_t *)t0 + at)),
                    a1 = vreinterpretq_s64_s8(vld1q_s8((const int8_t *)t1 + at));
    b[0] = vreinterpretq_s8_s64(vzip1q_s64(a0, a1));
    b[1] = vreinterpretq_s8_s64(vzip2q_s64(a0, a1));
}

/* [dy(t0), dy(t1), dy(t0), dy(t1)]. */
RN_INLINE float32x4_t rkm_dyy(const uint8_t *t0, const uint8_t *t1) {
    return vreinterpretq_f32_s32(rn_pair_s32(t0, t1));
}

/* The SMMLA operands of quants at..at+15 of each of the RY activation rows' pairs. */
RN_INLINE void rkm_ops16(int RY, const uint8_t *y, size_t ys, int at, int8x16_t b[RKM_PAIRS][2]) {
#pragma GCC unroll 4
    for (int p = 0; p < (RY + 1) / 2; p++) {
        const uint8_t *t0, *t1;
        rkm_pair(y, ys, RY, p, &t0, &t1);
        rkm_b16(t0, t1, at, b[p]);
    }
}

/* One Q2_K or Q3_K super-block column of half h against RY (2..RKM_COLS) activation rows:
 * sub-blocks of 16, two SMMLA steps each; Q3_K's tiles start at -4 * bsum, Q2_K's min term is
 * formed per activation row (as in repack_q23_k_neon.c) and zipped into tile order. */
RN_INLINE void rkm_q23_block(int kind, int RY, float32x4_t acc[2][RKM_PAIRS], int h,
                             const uint8_t *xb, const uint8_t *y, size_t ys) {
    const int np = (RY + 1) / 2;
    int32x4_t isum[2][RKM_PAIRS],
        msum[RKM_PAIRS][2]; /* msum[p][t]: per row, activation row 2p + t */
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
#pragma GCC unroll 4
        for (int p = 0; p < np; p++)
            isum[i][p] = msum[p][i] = vdupq_n_s32(0);
    for (int k = 0; k < 8; k++) { /* 32 elements: sub-blocks 2k (hi 0) and 2k + 1 (hi 1) */
        const uint8_t *cb = xb + (kind == RKN_Q3_K ? 112 + 96 * k : 160 + 64 * k);
#pragma GCC unroll 2
        for (int hi = 0; hi < 2; hi++) {
            const int j = 2 * k + hi;
            int8x16_t b[RKM_PAIRS][2];
            int32x4_t s[2][RKM_PAIRS];
#pragma GCC unroll 4
            for (int p = 0; p < np; p++) {
                const uint8_t *t0, *t1;
                rkm_pair(y, ys, RY, p, &t0, &t1);
                rkm_b16(t0, t1, 4 + 16 * j, b[p]);
                const int32_t b0 = kind == RKN_Q3_K ? -4 * rkn_ysum16(t0, j) : 0,
                              b1 = kind == RKN_Q3_K ? -4 * rkn_ysum16(t1, j) : 0;
                const int32_t st[4] = {b0, b1, b0, b1};
                s[0][p] = s[1][p] = vld1q_s32(st);
            }
#pragma GCC unroll 2
            for (int kc = 0; kc < 2; kc++) {
                const int g = 4 * hi + 2 * kc;
                int8x16_t m[2];
                if (kind == RKN_Q3_K)
                    rkn_mm_rows(rkn_q3_piece(cb, g, h), rkn_q3_piece(cb, g + 1, h), m);
                else
                    rkn_mm_rows(rkn_q2_piece(cb, g, h), rkn_q2_piece(cb, g + 1, h), m);
#pragma GCC unroll 2
                for (int i = 0; i < 2; i++)
#pragma GCC unroll 4
                    for (int p = 0; p < np; p++)
                        s[i][p] = vmmlaq_s32(s[i][p], m[i], b[p][kc]);
            }
            int32x4_t sc, mn = vdupq_n_s32(0);
            if (kind == RKN_Q3_K)
                sc = rkn_q3_scale(xb, j, h);
            else
                rkn_q2_scale(xb, j, h, &sc, &mn);
#pragma GCC unroll 2
            for (int i = 0; i < 2; i++)
#pragma GCC unroll 4
                for (int p = 0; p < np; p++)
                    isum[i][p] = vmlaq_s32(isum[i][p], s[i][p], rkn_mm_tile_s32(sc, i));
            if (kind == RKN_Q2_K) {
#pragma GCC unroll 4
                for (int p = 0; p < np; p++) {
                    const uint8_t *t0, *t1;
                    rkm_pair(y, ys, RY, p, &t0, &t1);
                    msum[p][0] = vmlaq_n_s32(msum[p][0], mn, rkn_ysum16(t0, j));
                    msum[p][1] = vmlaq_n_s32(msum[p][1], mn, rkn_ysum16(t1, j));
                }
            }
        }
    }
    const float32x4_t dx = rkn_half_scales(xb, h), mx = rkn_half_scales(xb + 16, h);
#pragma GCC unroll 4
    for (int p = 0; p < np; p++) {
        const uint8_t *t0, *t1;
        rkm_pair(y, ys, RY, p, &t0, &t1);
        const float32x4_t dyy = rkm_dyy(t0, t1);
#pragma GCC unroll 2
        for (int i = 0; i < 2; i++) {
            float32x4_t *a = &acc[i][p];
            *a = vfmaq_f32(*a, vcvtq_f32_s32(isum[i][p]), vmulq_f32(rkn_mm_tile_f32(dx, i), dyy));
            if (kind == RKN_Q2_K) {
                const int32x4_t mt =
                    i ? vzip2q_s32(msum[p][0], msum[p][1]) : vzip1q_s32(msum[p][0], msum[p][1]);
                *a = vfmsq_f32(*a, vcvtq_f32_s32(mt), vmulq_f32(rkn_mm_tile_f32(mx, i), dyy));
            }
        }
    }
}

/* The SDOT kernel of each type, for a single activation row. */
static const quant_repack_impl *const RKM_SDOT[] = {
    [RKN_Q4_K] = &quant_q4_k_repack_neon, [RKN_Q5_K] = &quant_q5_k_repack_neon,
    [RKN_Q6_K] = &quant_q6_k_repack_neon, [RKN_IQ4_XS] = &quant_iq4_xs_repack_neon,
    [RKN_Q2_K] = &quant_q2_k_repack_neon, [RKN_Q3_K] = &quant_q3_k_repack_neon,
};

/* One group of 8 rows against RY (1..RKM_COLS, constant after inlining) activation rows, one
 * half (4 rows) at a time so that a half's accumulators and tiles for up to RKM_PAIRS
 * activation-row pairs fit the 32 vector registers: each unpacked weight piece then serves up to
 * RKM_COLS activation rows. */
RN_INLINE void rkm_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                         const uint8_t *y, size_t ys) {
    const size_t xb = RN_ROWS * (kind == RKN_Q4_K   ? sizeof(block_q4_k)
                                 : kind == RKN_Q5_K ? sizeof(block_q5_k)
                                 : kind == RKN_Q6_K ? sizeof(block_q6_k)
                                 : kind == RKN_Q2_K ? sizeof(block_q2_k)
                                                    : sizeof(block_q3_k));
    if (RY == 1) {
        RKM_SDOT[kind]->dot(n, RN_ROWS, 1, out, os, x, xb * (size_t)(n / QK_K), y, ys);
        return;
    }
    const int np = (RY + 1) / 2;
    for (int h = 0; h < 2; h++) { /* rows 4h..4h+3 */
        float32x4_t acc[2][RKM_PAIRS];
#pragma GCC unroll 2
        for (int i = 0; i < 2; i++)
#pragma GCC unroll 4
            for (int p = 0; p < np; p++)
                acc[i][p] = vdupq_n_f32(0);
        for (int64_t b = 0; b < n / QK_K; b++) {
            const uint8_t *xr = x + b * xb, *yr = y + b * RKN_ABLOCK;
            rkm_q23_block(kind, RY, acc, h, xr, yr, ys);
        }
#pragma GCC unroll 4
        for (int p = 0; p < np; p++) {
            const float32x4_t a = acc[0][p], c = acc[1][p];
            vst1q_f32(out + 2 * p * os + 4 * h, vuzp1q_f32(a, c));
            if (2 * p + 1 < RY) vst1q_f32(out + (2 * p + 1) * os + 4 * h, vuzp2q_f32(a, c));
        }
    }
}

/* The dot over 8-row groups and runs of RKM_COLS activation rows; a single activation row
 * (decode) goes to the SDOT kernel over all the groups at once. */
#define RKM_DEFINE_DOT(NAME, KIND)                                                                 \
    REPACK_DEFINE_DOT8(NAME##_runs, rkm_group, KIND, RN_ROWS, RKM_COLS)                            \
    static void NAME(int64_t n, int64_t nx, int64_t ny, float *out, size_t os, const void *xv,     \
                     size_t xstride, const void *yv, size_t ystride) {                             \
        if (ny == 1)                                                                               \
            RKM_SDOT[KIND]->dot(n, nx, 1, out, os, xv, xstride, yv, ystride);                      \
        else                                                                                       \
            NAME##_runs(n, nx, ny, out, os, xv, xstride, yv, ystride);                             \
    }

/* Q4_K, Q5_K and Q6_K: repack_k_prefill_i8mm_neon.c. */
#define RKM_DEFINE_DOT_K(NAME, KIND)                                                               \
    static void NAME(int64_t n, int64_t nx, int64_t ny, float *out, size_t os, const void *xv,     \
                     size_t xstride, const void *yv, size_t ystride) {                             \
        quant_rkq_dot(KIND, n, nx, ny, out, os, xv, xstride, yv, ystride);                         \
    }

RKM_DEFINE_DOT_K(rkm_dot_q4_k, RKN_Q4_K)
RKM_DEFINE_DOT_K(rkm_dot_q5_k, RKN_Q5_K)
RKM_DEFINE_DOT_K(rkm_dot_q6_k, RKN_Q6_K)
RKM_DEFINE_DOT(rkm_dot_q2_k, RKN_Q2_K)
RKM_DEFINE_DOT(rkm_dot_q3_k, RKN_Q3_K)

const quant_repack_impl quant_q4_k_repack_i8mm = {RN_ROWS, rkn_pack_q4_k, rkn_act_size,
                                                  quant_q8_k_from_f32_neon, rkm_dot_q4_k};
const quant_repack_impl quant_q5_k_repack_i8mm = {RN_ROWS, rkn_pack_q5_k, rkn_act_size,
                                                  quant_q8_k_from_f32_neon, rkm_dot_q5_k};
const quant_repack_impl quant_q6_k_repack_i8mm = {RN_ROWS, rkn_pack_q6_k, rkn_act_size,
                                                  quant_q8_k_from_f32_neon, rkm_dot_q6_k};
const quant_repack_impl quant_q2_k_repack_i8mm = {RN_ROWS, rkn_pack_q2_k, rkn_act_size,
                                                  quant_q8_k_from_f32_neon, rkm_dot_q2_k};
const quant_repack_impl quant_q3_k_repack_i8mm = {RN_ROWS, rkn_pack_q3_k, rkn_act_size,
                                                  quant_q8_k_from_f32_neon, rkm_dot_q3_k};
