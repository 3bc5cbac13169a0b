/*
 * Q4_K, Q5_K and Q6_K weights repacked 8 rows at a time, AVX2: the K-quant counterpart of
 * repack_avx2.c (read that first), for decode and prefill.
 *
 * Layouts (repack_layout.c at 8 rows, 32-byte pieces), one super-block column of the group:
 *   Q4_K, 1152 bytes (8 x 144): f16 d[8], dmin[8]; the rows' three 4-byte scale words as three
 *     pieces; then 4 chunks of 8 pieces, piece g of chunk c holding row r's
 *     qs[32c + 4g .. 32c + 4g + 3] (low nibbles: sub-block 2c, high nibbles: sub-block 2c + 1).
 *   Q5_K, 1408 bytes (8 x 176): Q4_K's, with each chunk's two pieces of fifth bits in front of
 *     its quants (layout comment of repack_k_avx512.c's Q5_K, at 8 rows).
 *   Q6_K, 1680 bytes (8 x 210): f16 d[8]; int8 scale pairs (2k, 2k + 1) of the 8 rows for each
 *     k < 8; then 8 chunks of 32 elements, each two pieces of high bits and four of low nibbles
 *     (layout comment of repack_k_avx512.c's Q6_K, at 8 rows).
 * Activation rows are plain Q8_K blocks (float d; int8 qs[256]; int16 bsums[16]); Q6_K's carry
 * offset words after each block (RK2_Q6_ABLOCK in repack_k_avx2.h).
 *
 * Int16 bounds: a Q4_K nibble times an activation quant pairs to at most 2 * 15 * 127 = 3810,
 * so a sub-block's 8 VPMADDUBSW sums stay in int16 (30480) and meet the rows' 6-bit scales in
 * one VPMADDWD against (scale, scale) pairs; Q5_K's 5-bit quants pair to at most 7874, so they
 * meet the scales after every 4 products (31496). Q6_K quants are taken unsigned (u = q + 32, up
 * to 63; a pair sums to at most 2 * 63 * 127 = 16002, below VPMADDUBSW's saturation), and a
 * sub-block's four VPMADDUBSW are summed in int16 with wrapping adds, then the activation's
 * offset word 32 * (its quants under that int16) is subtracted: what remains is the sum of
 * (u - 32) * a over 8 products, at most 8 * 32 * 127 = 32512 in magnitude, so the wrapped
 * partial sums come out exact, and one VPMADDWD per sub-block meets the int8 scales (on CPUs
 * whose vector multiplies share one pipe, the multiplies per 32 products fall from 3.25 to 2.5).
 * Every sum is exact in int32; results equal the reference vec_dot up to float rounding order.
 */
#include "quant/pack.h"
#include "quant/q8_k.h"
#include "quant/repack_k_avx2.h"


/* ---- load-time repacking and activations ---- */

static void rk2_pack_q4_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q4_k(src, stride, dst, n, R2_ROWS);
}

static void rk2_pack_q5_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q5_k(src, stride, dst, n, R2_ROWS);
}

static void rk2_pack_q6_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q6_k(src, stride, dst, n, R2_ROWS);
}

static size_t rk2_act_size(int64_t n) { return (size_t)(n / QK_K) * RK2_ABLOCK; }

/* ---- Q4_K and Q5_K ---- */

/* pshufb patterns per row dword: byte j as the int16 pair (b_j, b_j) */
#define DUP(j) j, 0x80, j, 0x80
#define DUP_LANE(j) DUP(j), DUP(j + 4), DUP(j + 8), DUP(j + 12)
static const uint8_t RK2_DUP[4][32] __attribute__((aligned(32))) = {
    {DUP_LANE(0), DUP_LANE(0)}, {DUP_LANE(1), DUP_LANE(1)},
    {DUP_LANE(2), DUP_LANE(2)}, {DUP_LANE(3), DUP_LANE(3)},
};
#undef DUP_LANE
#undef DUP

/* The 8 rows' scales sc[j] and mins mn[j] (j < 8) as (v, v) int16 pairs in each row's lane. */
R2_INLINE void rk2_scales(const uint8_t *p, __m256i sc[8], __m256i mn[8]) {
    __m256i r[4];
    rk2_scale_bytes(p, r);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const __m256i sel = _mm256_load_si256((const __m256i *)RK2_DUP[j]);
        sc[j] = _mm256_shuffle_epi8(r[0], sel);
        sc[j + 4] = _mm256_shuffle_epi8(r[1], sel);
        mn[j] = _mm256_shuffle_epi8(r[2], sel);
        mn[j + 4] = _mm256_shuffle_epi8(r[3], sel);
    }
}

/* Q4_K, or Q5_K when five (constant after inlining): the same walk with the fifth bits merged
 * in and the int16 sums flushed every 4 pieces instead of 8. */
R2_INLINE void rk2_k4_block(int five, int RY, __m256 *acc, const uint8_t *xb, const uint8_t *y,
                            size_t ys) {
    __m256i sc[8], mn[8], isum[4];
    rk2_scales(xb + 32, sc, mn);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = _mm256_setzero_si256();
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const int span = five ? 4 : 8; /* pieces per int16 sum */
#pragma GCC unroll 1
    for (int cc = 0; cc < 4; cc++) {
        const uint8_t *qc = xb + (five ? 128 + 64 + 320 * cc : 128 + 256 * cc);
        __m256i h0 = _mm256_setzero_si256(), h1 = _mm256_setzero_si256();
        if (five) {
            h0 = _mm256_loadu_si256((const __m256i *)(qc - 64));
            h1 = _mm256_loadu_si256((const __m256i *)(qc - 32));
        }
#pragma GCC unroll 2
        for (int g0 = 0; g0 < 8; g0 += span) {
            __m256i slo[4], shi[4];
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) slo[c] = shi[c] = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int g = g0; g < g0 + span; g++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(qc + 32 * g));
                __m256i lo = _mm256_and_si256(v, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                if (five) {
                    lo = _mm256_or_si256(lo, rk2_fifth(h0, g));
                    hi = _mm256_or_si256(hi, rk2_fifth(h1, g));
                }
#pragma GCC unroll 4
                for (int c = 0; c < RY; c++) {
                    const uint8_t *q = y + c * ys + 4 + 64 * cc + 4 * g;
                    slo[c] = _mm256_add_epi16(slo[c], _mm256_maddubs_epi16(lo, r2_bcast4(q)));
                    shi[c] = _mm256_add_epi16(shi[c], _mm256_maddubs_epi16(hi, r2_bcast4(q + 32)));
                    R2_KEEP(slo[c]);
                    R2_KEEP(shi[c]);
                }
            }
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++)
                isum[c] = _mm256_add_epi32(isum[c],
                    _mm256_add_epi32(_mm256_madd_epi16(slo[c], sc[2 * cc]),
                                     _mm256_madd_epi16(shi[c], sc[2 * cc + 1])));
        }
    }
    const __m256 dx = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)xb));
    const __m256 mx = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(xb + 16)));
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const uint8_t *yb = y + c * ys;
        /* sub-block j's activation sum is bsums[2j] + bsums[2j + 1]: one (m_j, m_j) pair */
        __m256i msum = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++)
            msum = _mm256_add_epi32(msum, _mm256_madd_epi16(mn[j], r2_bcast4(yb + 260 + 4 * j)));
        const __m256 vdy = _mm256_set1_ps(r2_load_f32(yb));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(dx, vdy), acc[c]);
        acc[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(mx, vdy), acc[c]);
    }
}

/* ---- Q6_K ---- */

/* Q6_K's activation rows: Q8_K blocks (the bsums stay for the AVX-VNNI kernel, which shares
 * them), each followed by its sub-blocks' offset words (RK2_Q6_ABLOCK, repack_k_avx2.h). */
static size_t rk2_act_size_q6(int64_t n) { return (size_t)(n / QK_K) * RK2_Q6_ABLOCK; }

static void rk2_act_q6_k(const float *src, void *dst, int64_t n) {
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint8_t *blk = (uint8_t *)dst + b * RK2_Q6_ABLOCK;
        quant_q8_k_from_f32_avx2(src + b * QK_K, blk, QK_K);
        const int8_t *qs = (const int8_t *)(blk + 4);
        int16_t off[2 * QK_K / 16];
        for (int j = 0; j < QK_K / 16; j++) {
            int even = 0, odd = 0; /* quants 4g, 4g + 1 and 4g + 2, 4g + 3 of the sub-block */
            for (int g = 0; g < 4; g++) {
                even += qs[16 * j + 4 * g] + qs[16 * j + 4 * g + 1];
                odd += qs[16 * j + 4 * g + 2] + qs[16 * j + 4 * g + 3];
            }
            off[2 * j] = (int16_t)(32 * even);
            off[2 * j + 1] = (int16_t)(32 * odd);
        }
        memcpy(blk + RK2_ABLOCK, off, sizeof off);
    }
}

/* Q6_K against RY (1..8) activation rows, one sub-block of 16 (a half of a chunk) at a time:
 * its four pieces of unsigned quants u = q + 32 are unpacked once for all the rows; each row
 * sums its four VPMADDUBSW in int16 (wrapping), takes the sub-block's offset word off (the
 * -32 comes back there), and meets the scales in one VPMADDWD. */
R2_INLINE void rk2_q6_k_block(int RY, __m256 *acc, const uint8_t *xb, const uint8_t *y,
                              size_t ys) {
    /* int16 pair (s, s) from the low / high int16 of each row's scale pair */
    const __m256i dup[2] = {
        _mm256_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13, 0, 1, 0, 1, 4, 5, 4,
                         5, 8, 9, 8, 9, 12, 13, 12, 13),
        _mm256_setr_epi8(2, 3, 2, 3, 6, 7, 6, 7, 10, 11, 10, 11, 14, 15, 14, 15, 2, 3, 2, 3, 6,
                         7, 6, 7, 10, 11, 10, 11, 14, 15, 14, 15)};
    __m256i isum[8];
#pragma GCC unroll 8
    for (int c = 0; c < RY; c++) isum[c] = _mm256_setzero_si256();
#pragma GCC unroll 1
    for (int ch = 0; ch < 8; ch++) {
        const uint8_t *cb = xb + 144 + 192 * ch;
        const __m256i pair =
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(xb + 16 + 16 * ch)));
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const __m256i sc = _mm256_shuffle_epi8(pair, dup[half]);
            __m256i q[4];
            rk2_q6_half(cb, half, q);
            const int j = 2 * ch + half;
#pragma GCC unroll 8
            for (int c = 0; c < RY; c++) {
                const uint8_t *yc = y + c * ys, *a = yc + 4 + 16 * j;
                __m256i t = _mm256_maddubs_epi16(q[0], r2_bcast4(a));
#pragma GCC unroll 3
                for (int g = 1; g < 4; g++) {
                    t = _mm256_add_epi16(t, _mm256_maddubs_epi16(q[g], r2_bcast4(a + 4 * g)));
                    R2_KEEP(t);
                }
                t = _mm256_sub_epi16(t, r2_bcast4(yc + RK2_ABLOCK + 4 * j));
                isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(t, sc));
                R2_KEEP(isum[c]);
            }
        }
    }
    const __m256 dx = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)xb));
#pragma GCC unroll 8
    for (int c = 0; c < RY; c++) {
        const __m256 vdy = _mm256_set1_ps(r2_load_f32(y + c * ys));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(dx, vdy), acc[c]);
    }
}

/* One group of 8 Q6_K rows against RY (1..8, constant after inlining) activation rows. */
R2_INLINE void rk2_group_q6(int kind, int RY, int64_t n, float *out, size_t os,
                            const uint8_t *x, const uint8_t *y, size_t ys) {
    (void)kind;
    const size_t xb = R2_ROWS * sizeof(block_q6_k);
    __m256 acc[8];
#pragma GCC unroll 8
    for (int c = 0; c < RY; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++)
        rk2_q6_k_block(RY, acc, x + b * xb, y + b * RK2_Q6_ABLOCK, ys);
#pragma GCC unroll 8
    for (int c = 0; c < RY; c++) _mm256_storeu_ps(out + c * os, acc[c]);
}

/* The Q6_K quant_dot_tile_fn: activation rows eight at a time (the other types take four,
 * repack_tile.h; their unpacking is cheaper, so more rows would not pay for the registers). */
REPACK_DEFINE_DOT8(rk2_dot_q6_k, rk2_group_q6, 0, R2_ROWS, 8)

/* ---- Q4_K and Q5_K groups ---- */

enum { RK2_Q4_K, RK2_Q5_K };

/* One group of 8 rows against RY (1..4, constant after inlining) activation rows. */
R2_INLINE void rk2_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                         const uint8_t *y, size_t ys) {
    const int64_t nb = n / QK_K;
    const size_t xb = R2_ROWS * (kind == RK2_Q4_K ? sizeof(block_q4_k) : sizeof(block_q5_k));
    __m256 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++)
        rk2_k4_block(kind == RK2_Q5_K, RY, acc, x + b * xb, y + b * RK2_ABLOCK, ys);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) _mm256_storeu_ps(out + c * os, acc[c]);
}

R2_DEFINE_DOT(rk2_dot_q4_k, rk2_group, RK2_Q4_K)
R2_DEFINE_DOT(rk2_dot_q5_k, rk2_group, RK2_Q5_K)

const quant_repack_impl quant_q4_k_repack_avx2 = {R2_ROWS, rk2_pack_q4_k, rk2_act_size,
                                                 quant_q8_k_from_f32_avx2, rk2_dot_q4_k};
const quant_repack_impl quant_q5_k_repack_avx2 = {R2_ROWS, rk2_pack_q5_k, rk2_act_size,
                                                 quant_q8_k_from_f32_avx2, rk2_dot_q5_k};
const quant_repack_impl quant_q6_k_repack_avx2 = {R2_ROWS, rk2_pack_q6_k, rk2_act_size_q6,
                                                 rk2_act_q6_k, rk2_dot_q6_k};
