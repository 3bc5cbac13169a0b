/*
 * Q4_K, Q5_K and Q6_K repacked 8 rows at a time (repack_k_neon.c: layouts and arithmetic),
 * NEON with I8MM: prefill as 2 x 2 SMMLA tiles (rows 2i, 2i + 1 x activation rows 2p, 2p + 1),
 * up to 8 activation rows (4 pairs) per pass over a group's weights, one half (4 rows) of the
 * group at a time. repack_k_i8mm_neon.c hands these types' products here.
 *
 * The activation side is arranged once per run of 8 activation rows and chunk of super-blocks
 * (rkq_pair, on the stack) and read by every 8-row group of the call: each pair's quants
 * zipped into SMMLA operands, its [dy t0, dy t1] in tile order, and the per-type extras (Q6_K:
 * each sub-block's tile start -32 * bsum; Q4_K / Q5_K: the min term's operands). Zipping in the
 * kernel instead cost two loads and two zips per 16 quants and pair in every half of every
 * group, more than the SMMLAs themselves.
 *
 * Integers: Q6_K's tiles start at -32 * bsum per sub-block and meet the rows' int8 scales in
 * one multiply-add, as the SDOT kernels do. Q4_K / Q5_K run summation by parts over the
 * sub-blocks (repack_k_prefill_neon.c): the tiles are never reset and meet the scale differences
 * sc_j - sc_{j+1}; the min term is 64 * (mins . hi) + (mins . lo) over the activation sub-block
 * sums split as 64 hi + lo (rkn_msum_bytes), two SMMLAs per tile. Each tile's int32 sums are
 * the SDOT kernels' and the float steps per super-block the same, in the same order (the
 * groups' accumulators carry across chunks in memory), so a row's result does not depend on
 * the kernel or the number of activation rows.
 *
 * Without gcc's scheduling before register allocation, as repack_k_i8mm_neon.c: it hoists
 * loads and unpacking of later pieces and spills the tiles.
 */
#pragma GCC optimize("no-schedule-insns")
#include "quant/repack_k_neon.h"

enum {
    RKQ_PAIRS = 4,  /* activation-row pairs per pass: 8 tiles and 8 sums of a half in registers */
    RKQ_CHUNK = 8,  /* super-blocks arranged at a time: 4 pairs x 8 x 784 bytes = 25 KiB */
    RKQ_GROUPS = 8, /* 8-row groups sharing one arrangement: accumulators 8 x 16 x 16 bytes */
};

/* One activation-row pair's super-block in SMMLA order. */
typedef struct {
    int8x16_t q[32];   /* q[k]: elements 8k..8k+7 of row t0, then of row t1 */
    int32x4_t aux[16]; /* Q6_K: aux[j] sub-block j's tile start; Q4_K / Q5_K: aux[0] the hi
                        * bytes of sub-block sums 0..7 of t0 then t1, aux[1] the lo bytes */
    float32x4_t dyy;   /* [dy t0, dy t1, dy t0, dy t1] */
} rkq_pair;

/* Blocks [0, nb) of RY (2..8) activation rows at y (ys apart) into pr[p * RKQ_CHUNK + b] for
 * pairs p; an odd last row is paired with itself (that tile column is not stored). */
RN_INLINE void rkq_arrange(int kind, int RY, int64_t nb, const uint8_t *y, size_t ys,
                           rkq_pair *pr) {
    for (int p = 0; p < (RY + 1) / 2; p++) {
        const uint8_t *r0 = y + 2 * p * ys, *r1 = 2 * p + 1 < RY ? r0 + ys : r0;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *t0 = r0 + b * RKN_ABLOCK, *t1 = r1 + b * RKN_ABLOCK;
            rkq_pair *o = pr + p * RKQ_CHUNK + b;
            const uint8_t *a0 = t0 + 4, *a1 = t1 + 4;
            int8x16_t *q = o->q;
            for (int m = 0; m < 4; m++) { /* elements 64m..64m+63 */
                const int8x16x4_t u = rn_ld1x4(&a0), w = rn_ld1x4(&a1);
#pragma GCC unroll 4
                for (int i = 0; i < 4; i++) {
                    const int64x2_t u64 = vreinterpretq_s64_s8(u.val[i]),
                                    w64 = vreinterpretq_s64_s8(w.val[i]);
                    q[2 * i] = vreinterpretq_s8_s64(vzip1q_s64(u64, w64));
                    q[2 * i + 1] = vreinterpretq_s8_s64(vzip2q_s64(u64, w64));
                }
                q += 8;
            }
            o->dyy = vreinterpretq_f32_s32(rn_pair_s32(t0, t1));
            if (kind == RKN_Q6_K) {
#pragma GCC unroll 4
                for (int e = 0; e < 4; e++) { /* sub-blocks 4e..4e+3 */
                    const int32x4_t s0 = vmull_n_s16(vld1_s16((const int16_t *)(t0 + 260) + 4 * e),
                                                     -32),
                                    s1 = vmull_n_s16(vld1_s16((const int16_t *)(t1 + 260) + 4 * e),
                                                     -32);
                    const int64x2_t z0 = vreinterpretq_s64_s32(vzip1q_s32(s0, s1)),
                                    z1 = vreinterpretq_s64_s32(vzip2q_s32(s0, s1));
                    o->aux[4 * e] = vreinterpretq_s32_s64(vdupq_laneq_s64(z0, 0));
                    o->aux[4 * e + 1] = vreinterpretq_s32_s64(vdupq_laneq_s64(z0, 1));
                    o->aux[4 * e + 2] = vreinterpretq_s32_s64(vdupq_laneq_s64(z1, 0));
                    o->aux[4 * e + 3] = vreinterpretq_s32_s64(vdupq_laneq_s64(z1, 1));
                }
            } else {
                const int64x2_t m0 = vreinterpretq_s64_s8(rkn_msum_bytes(t0)),
                                m1 = vreinterpretq_s64_s8(rkn_msum_bytes(t1));
                o->aux[0] = vreinterpretq_s32_s64(vzip1q_s64(m0, m1));
                o->aux[1] = vreinterpretq_s32_s64(vzip2q_s64(m0, m1));
            }
        }
    }
}

/* The tiles s of two SMMLA steps of a sub-block: row pairs' operands m0, m1 against the pairs'
 * operands k, k + 1 of the arranged blocks at pr (pair p at pr[p * RKQ_CHUNK]), which one LDP
 * loads. */
RN_INLINE void rkq_mm2(int np, const int8x16_t m0[2], const int8x16_t m1[2], const rkq_pair *pr,
                       int k, int32x4_t s[2][RKQ_PAIRS]) {
#pragma GCC unroll 4
    for (int p = 0; p < np; p++) {
        int8x16_t b0, b1;
        /* gcc forms no LDP here: the pairs lie 6 KiB apart, past its offset range, so it
         * addresses all from one base by single loads */
        __asm__("ldp %q0, %q1, [%2, %3]"
                : "=w"(b0), "=w"(b1)
                : "r"(&pr[p * RKQ_CHUNK]), "i"(16 * k), "m"(pr[p * RKQ_CHUNK].q[k]),
                  "m"(pr[p * RKQ_CHUNK].q[k + 1]));
        s[0][p] = vmmlaq_s32(vmmlaq_s32(s[0][p], m0[0], b0), m1[0], b1);
        s[1][p] = vmmlaq_s32(vmmlaq_s32(s[1][p], m0[1], b0), m1[1], b1);
    }
}

/* isum[i][p] += s[i][p] * sc[i] for np pairs. */
RN_INLINE void rkq_scale(int np, int32x4_t isum[2][RKQ_PAIRS], int32x4_t s[2][RKQ_PAIRS],
                         const int32x4_t sc[2]) {
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
#pragma GCC unroll 4
        for (int p = 0; p < np; p++)
            isum[i][p] = vmlaq_s32(isum[i][p], s[i][p], sc[i]);
}

/* ---- Q6_K ---- */

/* Half h of one Q6_K super-block column at xb against np arranged pairs at pr: acc (tiles
 * acc[4i + p], in memory) += float(isum) * (dx dy). Chunk k's nibble pieces serve both its
 * sub-blocks; the high nibbles (2k + 1) are taken first, as SRI leaves the piece intact and SLI
 * does not. */
RN_INLINE void rkq_q6_block(int np, float32x4_t *acc, int h, const uint8_t *xb,
                            const rkq_pair *pr) {
    int32x4_t isum[2][RKQ_PAIRS];
#pragma GCC unroll 4
    for (int p = 0; p < np; p++)
        isum[0][p] = isum[1][p] = vdupq_n_s32(0);
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        const uint8_t *ch = xb + 144 + 192 * k + 16 * h;
        uint8x16_t v[4];
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++)
            v[g] = vld1q_u8(ch + 64 + 32 * g);
        /* the rows' int8 scale pairs (2k, 2k + 1), row 4h + r at int16 lane r; sc[hi][i] in
         * row pair i's tile order */
        const int16x4_t pr16 = vld1_s16((const int16_t *)(xb + 16 + 16 * k) + 4 * h);
        int32x4_t sc[2][2];
#pragma GCC unroll 2
        for (int i = 0; i < 2; i++) {
            const int32x4_t w = vmovl_s16(i ? vzip2_s16(pr16, pr16) : vzip1_s16(pr16, pr16));
            sc[0][i] = vshrq_n_s32(vshlq_n_s32(w, 24), 24);
            sc[1][i] = vshrq_n_s32(w, 8);
        }
#pragma GCC unroll 2
        for (int e = 0; e < 2; e++) {
            const int hi = 1 - e, j = 2 * k + hi;
            uint8x16_t t[2];
            rkn1_q6_planes(vld1q_u8(ch + 32 * hi), t);
            int32x4_t s[2][RKQ_PAIRS];
#pragma GCC unroll 4
            for (int p = 0; p < np; p++)
                s[0][p] = s[1][p] = pr[p * RKQ_CHUNK].aux[j];
            uint8x16_t u[4];
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++)
                u[g] = hi ? rkn1_q6_hi(v[g], t, g) : rkn1_q6_lo(v[g], t, g);
            int8x16_t m[2][2]; /* elements 8kc..8kc+7: pieces 2kc, 2kc + 1 */
#pragma GCC unroll 2
            for (int kc = 0; kc < 2; kc++)
                rkn_mm_rows(vreinterpretq_s8_u8(u[2 * kc]), vreinterpretq_s8_u8(u[2 * kc + 1]),
                            m[kc]);
            rkq_mm2(np, m[0], m[1], pr, 2 * j, s);
            rkq_scale(np, isum, s, sc[hi]);
        }
    }
    const float32x4_t dx = rkn_half_scales(xb, h);
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) {
        const float32x4_t dxx = rkn_mm_tile_f32(dx, i);
#pragma GCC unroll 4
        for (int p = 0; p < np; p++)
            acc[4 * i + p] = vfmaq_f32(acc[4 * i + p], vcvtq_f32_s32(isum[i][p]),
                                       vmulq_f32(dxx, pr[p * RKQ_CHUNK].dyy));
    }
}

/* ---- Q4_K and Q5_K ---- */

/* Half h of one Q4_K / Q5_K super-block column at xb against np arranged pairs at pr, as
 * rkq_q6_block, the min term subtracted after. */
RN_INLINE void rkq_k4_block(int five, int np, float32x4_t *acc, int h, const uint8_t *xb,
                            const rkq_pair *pr) {
    uint8x16_t sc[2], mn[2];
    rkn_scales(xb + 32 + 16 * h, sc, mn);
    int8x16_t dd[2];
    rkn_scale_diffs(sc, dd);
    int32x4_t S[2][RKQ_PAIRS], isum[2][RKQ_PAIRS];
#pragma GCC unroll 4
    for (int p = 0; p < np; p++)
        S[0][p] = S[1][p] = isum[0][p] = isum[1][p] = vdupq_n_s32(0);
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        const uint8_t *qc = xb + (five ? 192 + 320 * k : 128 + 256 * k) + 16 * h;
#pragma GCC unroll 2
        for (int hi = 0; hi < 2; hi++) { /* sub-block 2k + hi */
            const int j = 2 * k + hi;
            const uint8x16_t f = five ? vld1q_u8(qc - 64 + 32 * hi) : vdupq_n_u8(0);
#pragma GCC unroll 2
            for (int kk = 0; kk < 4; kk += 2) {
                int8x16_t m[2][2]; /* elements 8kc..8kc+7 (kc = kk, kk + 1): pieces 2kc, 2kc + 1 */
#pragma GCC unroll 2
                for (int e = 0; e < 2; e++) {
                    const int kc = kk + e;
                    rkn_mm_rows(rkn1_k4_w(five, vld1q_u8(qc + 64 * kc), hi, 2 * kc, f),
                                rkn1_k4_w(five, vld1q_u8(qc + 64 * kc + 32), hi, 2 * kc + 1, f),
                                m[e]);
                }
                rkq_mm2(np, m[0], m[1], pr, 4 * j + kk, S);
            }
            const int32x4_t dj = rkn_sbyte(dd[j / 4], j % 4);
            const int32x4_t d2[2] = {rkn_mm_tile_s32(dj, 0), rkn_mm_tile_s32(dj, 1)};
            rkq_scale(np, isum, S, d2);
        }
    }
    const float32x4_t dx = rkn_half_scales(xb, h), mx = rkn_half_scales(xb + 16, h);
    /* row pair i's mins 0..7, an SMMLA operand */
    const int32x4_t n0 = vreinterpretq_s32_u8(mn[0]), n1 = vreinterpretq_s32_u8(mn[1]);
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) {
        const int8x16_t mi = vreinterpretq_s8_s32(i ? vzip2q_s32(n0, n1) : vzip1q_s32(n0, n1));
        const float32x4_t dxx = rkn_mm_tile_f32(dx, i), mxx = rkn_mm_tile_f32(mx, i);
#pragma GCC unroll 4
        for (int p = 0; p < np; p++) {
            const rkq_pair *o = pr + p * RKQ_CHUNK;
            int32x4_t ms = vmmlaq_s32(vdupq_n_s32(0), mi, vreinterpretq_s8_s32(o->aux[0]));
            ms = vmmlaq_s32(vshlq_n_s32(ms, 6), mi, vreinterpretq_s8_s32(o->aux[1]));
            float32x4_t a = acc[4 * i + p];
            a = vfmaq_f32(a, vcvtq_f32_s32(isum[i][p]), vmulq_f32(dxx, o->dyy));
            acc[4 * i + p] = vfmsq_f32(a, vcvtq_f32_s32(ms), vmulq_f32(mxx, o->dyy));
        }
    }
}

/* ---- runs of activation rows ---- */

/* Rows [0, nx) (groups at x, xs apart) against RY (2..8) activation rows at y: per chunk of
 * super-blocks, one arrangement read by up to RKQ_GROUPS groups, both halves of each. */
RN_INLINE void rkq_run(int kind, int RY, int64_t n, int64_t nx, float *out, size_t os,
                       const uint8_t *x, size_t xs, const uint8_t *y, size_t ys) {
    const int np = (RY + 1) / 2;
    const size_t xb = RN_ROWS * (kind == RKN_Q4_K   ? sizeof(block_q4_k)
                                 : kind == RKN_Q5_K ? sizeof(block_q5_k)
                                                    : sizeof(block_q6_k));
    const int64_t nsb = n / QK_K;
    rkq_pair pr[RKQ_PAIRS * RKQ_CHUNK];
    float32x4_t acc[RKQ_GROUPS][16]; /* group g, half h: tile (i, p) at [8h + 4i + p] */
    for (int64_t g0 = 0; g0 < nx / RN_ROWS; g0 += RKQ_GROUPS) {
        const int ng = nx / RN_ROWS - g0 < RKQ_GROUPS ? (int)(nx / RN_ROWS - g0) : RKQ_GROUPS;
        for (int g = 0; g < ng; g++)
            for (int i = 0; i < 16; i++)
                acc[g][i] = vdupq_n_f32(0);
        for (int64_t b0 = 0; b0 < nsb; b0 += RKQ_CHUNK) {
            const int64_t nb = nsb - b0 < RKQ_CHUNK ? nsb - b0 : RKQ_CHUNK;
            rkq_arrange(kind, RY, nb, y + b0 * RKN_ABLOCK, ys, pr);
            for (int g = 0; g < ng; g++) {
                const uint8_t *xg = x + (g0 + g) * xs + b0 * xb;
                for (int h = 0; h < 2; h++)
                    for (int64_t b = 0; b < nb; b++) {
                        if (kind == RKN_Q6_K)
                            rkq_q6_block(np, acc[g] + 8 * h, h, xg + b * xb, pr + b);
                        else
                            rkq_k4_block(kind == RKN_Q5_K, np, acc[g] + 8 * h, h, xg + b * xb,
                                         pr + b);
                    }
            }
        }
        for (int g = 0; g < ng; g++) {
            float *og = out + (g0 + g) * RN_ROWS;
            for (int h = 0; h < 2; h++)
                for (int p = 0; p < np; p++) {
                    const float32x4_t a = acc[g][8 * h + p], c = acc[g][8 * h + 4 + p];
                    vst1q_f32(og + 2 * p * os + 4 * h, vuzp1q_f32(a, c));
                    if (2 * p + 1 < RY) vst1q_f32(og + (2 * p + 1) * os + 4 * h, vuzp2q_f32(a, c));
                }
        }
    }
}

/* One kernel per type and pair count; RY's parity only decides which results are stored. */
#define RKQ_RUN(NAME, KIND, NP)                                                                    \
    static __attribute__((noinline)) void NAME(int RY, int64_t n, int64_t nx, float *out,          \
                                               size_t os, const uint8_t *x, size_t xs,             \
                                               const uint8_t *y, size_t ys) {                      \
        if (RY == 2 * (NP))                                                                        \
            rkq_run(KIND, 2 * (NP), n, nx, out, os, x, xs, y, ys);                                 \
        else                                                                                       \
            rkq_run(KIND, 2 * (NP)-1, n, nx, out, os, x, xs, y, ys);                               \
    }
#define RKQ_RUNS(T, KIND)                                                                          \
    RKQ_RUN(rkq_run_##T##_1, KIND, 1)                                                              \
    RKQ_RUN(rkq_run_##T##_2, KIND, 2)                                                              \
    RKQ_RUN(rkq_run_##T##_3, KIND, 3)                                                              \
    RKQ_RUN(rkq_run_##T##_4, KIND, 4)                                                              \
    static void (*const rkq_runs_##T[4])(int, int64_t, int64_t, float *, size_t, const uint8_t *,  \
                                         size_t, const uint8_t *, size_t) = {                      \
        rkq_run_##T##_1, rkq_run_##T##_2, rkq_run_##T##_3, rkq_run_##T##_4};
RKQ_RUNS(q4_k, RKN_Q4_K)
RKQ_RUNS(q5_k, RKN_Q5_K)
RKQ_RUNS(q6_k, RKN_Q6_K)
#undef RKQ_RUNS
#undef RKQ_RUN

void quant_rkq_dot(int kind, int64_t n, int64_t nx, int64_t ny, float *out, size_t os,
                   const uint8_t *x, size_t xs, const uint8_t *y, size_t ys) {
    const quant_repack_impl *sdot = kind == RKN_Q4_K   ? &quant_q4_k_repack_neon
                                    : kind == RKN_Q5_K ? &quant_q5_k_repack_neon
                                                       : &quant_q6_k_repack_neon;
    for (int64_t c = 0; c < ny; c += 2 * RKQ_PAIRS) {
        const int RY = ny - c < 2 * RKQ_PAIRS ? (int)(ny - c) : 2 * RKQ_PAIRS;
        const uint8_t *yc = y + c * ys;
        float *oc = out + c * os;
        if (RY == 1)
            sdot->dot(n, nx, 1, oc, os, x, xs, yc, ys);
        else if (kind == RKN_Q4_K)
            rkq_runs_q4_k[(RY - 1) / 2](RY, n, nx, oc, os, x, xs, yc, ys);
        else if (kind == RKN_Q5_K)
            rkq_runs_q5_k[(RY - 1) / 2](RY, n, nx, oc, os, x, xs, yc, ys);
        else
            rkq_runs_q6_k[(RY - 1) / 2](RY, n, nx, oc, os, x, xs, yc, ys);
    }
}
