/*
 * Q4_K, Q5_K and Q6_K weights repacked 16 rows at a time, AVX-512 VNNI: the K-quant
 * counterpart of repack_avx512.c (read that first), for decode and prefill.
 *
 * Repacked layout of one super-block column (256 elements) of a group of 16 rows, 2304 bytes
 * (16 x 144, as in the file):
 *     uint16 d[16], dmin[16]     the rows' f16 super-scales
 *     uint32 sc[3][16]           word k of row r's 12 packed scale bytes at sc[k][r], so the
 *                                6-bit scales and mins of 16 rows unpack in a few vector ops
 *     quants                     4 chunks of 64 elements, each 8 x 64 bytes: piece g of chunk c
 *                                holds row r's qs[32c + 4g .. 32c + 4g + 3] at bytes 4r..4r+3
 *                                (low nibbles: elements 64c + 4g.., sub-block 2c; high
 *                                nibbles: 64c + 32 + 4g.., sub-block 2c + 1)
 * One VPDPBUSD adds 4 nibbles x 4 activation quants to 16 row sums; each sub-block's 16 sums
 * are multiplied by the rows' 6-bit scales in int32 (VPMULLD), and the min term comes from
 * VPDPWSSD on (min, min) pairs against the activation's sub-block sums. All integer sums are
 * exact; each super-block is folded as d * dy * isum - dmin * dy * msum, so results equal the
 * Q4_K reference vec_dot up to float rounding order.
 *
 * Q5_K (2816 bytes, 16 x 176) is Q4_K's layout with each chunk's fifth bits in front of its
 * quants (chunk c at 256 + 640c): two 64-byte planes H0, H1 where bit g of byte 4r + k is the
 * fifth bit of row r's element 64c + 4g + k (H0, under the low nibbles) or 64c + 32 + 4g + k
 * (H1), so piece g shifts its plane by 4 - g and masks bit 4 to complete its 5-bit quants.
 * The planes lie in reading order: placed after all the quants they were read ~2 KB ahead of
 * the stream, missed the prefetchers every time and ran decode at a third of the speed.
 *
 * Activation rows (rp_act): Q8_K's quantization (same d, same quants) in 292-byte blocks
 * { int8 qs[256]; float d; int16 ys[8]; pad } where ys[j] is the sum of sub-block j's 32 quants.
 */
#include "quant/pack.h"
#include "quant/q8_k.h"
#include "quant/repack_x86.h"

#define RK_INLINE static inline __attribute__((always_inline))
#define RK_ROWS 16
#define RK_ABLOCK 292 /* bytes of one activation super-block */

/* ---- load-time repacking ---- */

/* Chunk c's quants of a super-block column: Q4_K's right after the scales, Q5_K's each behind
 * its 128 bytes of fifth bits. */
#define RK_CHUNK(five, c) (256 + ((five) ? 640 : 512) * (c) + ((five) ? 128 : 0))

/* The layouts above (repack_layout.c writes them for any group height). */
static void rk_pack_q4_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q4_k(src, stride, dst, n, RK_ROWS);
}

static void rk_pack_q5_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q5_k(src, stride, dst, n, RK_ROWS);
}

/* ---- activations ---- */

size_t quant_rk_act_size(int64_t n) { return (size_t)(n / QK_K) * RK_ABLOCK; }

void quant_rk_act_k4(const float *src, void *dst, int64_t n) {
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / QK_K; b++, o += RK_ABLOCK) {
        block_q8_k q;
        quant_q8_k_from_f32_avx512(src + b * QK_K, &q, QK_K);
        memcpy(o, q.qs, QK_K);
        memcpy(o + 256, &q.d, 4);
        int16_t ys[8];
        for (int j = 0; j < 8; j++) ys[j] = (int16_t)(q.bsums[2 * j] + q.bsums[2 * j + 1]);
        memcpy(o + 260, ys, sizeof ys);
        memset(o + 276, 0, RK_ABLOCK - 276);
    }
}

/* ---- kernel ---- */

/* pshufb patterns (per 128-bit lane, so per row dword): byte j of each dword zero-extended to
 * the dword (scale j), and bytes (2k, 2k+1) as the int16 pair (m, m)... see rk_scales. */
#define RK_B(j) j, 0x80, 0x80, 0x80
#define RK_LANE(a, b, c, d) a, b, c, d
static const uint8_t RK_BYTE[4][64] __attribute__((aligned(64))) = {
#define RK_ROW(j) RK_B(j), RK_B(j + 4), RK_B(j + 8), RK_B(j + 12)
    {RK_ROW(0), RK_ROW(0), RK_ROW(0), RK_ROW(0)},
    {RK_ROW(1), RK_ROW(1), RK_ROW(1), RK_ROW(1)},
    {RK_ROW(2), RK_ROW(2), RK_ROW(2), RK_ROW(2)},
    {RK_ROW(3), RK_ROW(3), RK_ROW(3), RK_ROW(3)},
#undef RK_ROW
};
/* bytes (j, j+1) of each dword as two zero-extended int16: the min pair (m_j, m_j+1) */
#define RK_P(j) j, 0x80, j + 1, 0x80
static const uint8_t RK_PAIR[2][64] __attribute__((aligned(64))) = {
#define RK_ROW(j) RK_P(j), RK_P(j + 4), RK_P(j + 8), RK_P(j + 12)
    {RK_ROW(0), RK_ROW(0), RK_ROW(0), RK_ROW(0)},
    {RK_ROW(2), RK_ROW(2), RK_ROW(2), RK_ROW(2)},
#undef RK_ROW
};
#undef RK_B
#undef RK_P
#undef RK_LANE

/* The 16 rows' scales sc[j] (int32 lanes, j < 8) and min pairs mp[k] ((m_2k, m_2k+1) int16
 * pairs, k < 4), unpacked from the three scale words as kq_unpack_k4 does per row. */
RK_INLINE void rk_scales(const uint8_t *p, __m512i sc[8], __m512i mp[4]) {
    const __m512i u0 = _mm512_loadu_si512(p), u1 = _mm512_loadu_si512(p + 64),
                  u2 = _mm512_loadu_si512(p + 128);
    const __m512i m6 = _mm512_set1_epi8(0x3f), m4 = _mm512_set1_epi8(0x0f),
                  m2 = _mm512_set1_epi8(0x03);
    const __m512i r0 = _mm512_and_si512(u0, m6); /* scales 0-3 */
    const __m512i r1 = _mm512_or_si512(_mm512_and_si512(u2, m4), /* scales 4-7 */
                                       _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, 6), m2), 4));
    const __m512i r2 = _mm512_and_si512(u1, m6); /* mins 0-3 */
    const __m512i r3 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 4), m4), /* mins 4-7 */
                                       _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u1, 6), m2), 4));
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const __m512i sel = _mm512_load_si512(RK_BYTE[j]);
        sc[j] = _mm512_shuffle_epi8(r0, sel);
        sc[j + 4] = _mm512_shuffle_epi8(r1, sel);
    }
    mp[0] = _mm512_shuffle_epi8(r2, _mm512_load_si512(RK_PAIR[0]));
    mp[1] = _mm512_shuffle_epi8(r2, _mm512_load_si512(RK_PAIR[1]));
    mp[2] = _mm512_shuffle_epi8(r3, _mm512_load_si512(RK_PAIR[0]));
    mp[3] = _mm512_shuffle_epi8(r3, _mm512_load_si512(RK_PAIR[1]));
}

/* Fifth bits of piece g from plane h, at bit 4 of each byte (shifts within 16-bit lanes: what
 * crosses from the neighbour byte lands outside bit 4 and is masked off). */
RK_INLINE __m512i rk_fifth(__m512i h, int g) {
    const __m512i m = _mm512_set1_epi8(0x10);
    if (g < 4) return _mm512_and_si512(_mm512_slli_epi16(h, 4 - g), m);
    if (g == 4) return _mm512_and_si512(h, m);
    return _mm512_and_si512(_mm512_srli_epi16(h, g - 4), m);
}

/* One super-block column of 16 rows against RY activation rows: acc[c] += products. Q4_K, or
 * Q5_K when five (constant after inlining): the same walk with the fifth bits merged in. */
RK_INLINE void rk4_block(int five, int RY, __m512 *acc, const uint8_t *xb, const uint8_t *y,
                         size_t ys) {
    __m512i sc[8], mp[4], isum[4];
    rk_scales(xb + 64, sc, mp);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = _mm512_setzero_si512();
    const __m512i m4 = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 1
    for (int cc = 0; cc < 4; cc++) {
        __m512i slo[4], shi[4];
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) slo[c] = shi[c] = _mm512_setzero_si512();
        __m512i h0 = _mm512_setzero_si512(), h1 = _mm512_setzero_si512();
        if (five) {
            h0 = _mm512_loadu_si512(xb + RK_CHUNK(1, cc) - 128);
            h1 = _mm512_loadu_si512(xb + RK_CHUNK(1, cc) - 64);
        }
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m512i v = _mm512_loadu_si512(xb + RK_CHUNK(five, cc) + 64 * g);
            __m512i lo, hi;
            if (five) { /* (nibble & 15) | fifth bit, one ternary-logic op each */
                lo = _mm512_ternarylogic_epi32(v, rk_fifth(h0, g), m4, 0xEC);
                hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), rk_fifth(h1, g), m4, 0xEC);
            } else {
                lo = _mm512_and_si512(v, m4);
                hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            }
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const uint8_t *q = y + c * ys + 64 * cc + 4 * g;
                slo[c] = _mm512_dpbusd_epi32(slo[c], lo, rp_bcast4(q));
                shi[c] = _mm512_dpbusd_epi32(shi[c], hi, rp_bcast4(q + 32));
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++)
            isum[c] = _mm512_add_epi32(isum[c], _mm512_add_epi32(
                _mm512_mullo_epi32(slo[c], sc[2 * cc]), _mm512_mullo_epi32(shi[c], sc[2 * cc + 1])));
    }
    const __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)xb));
    const __m512 mx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(xb + 32)));
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const uint8_t *yb = y + c * ys;
        __m512i msum = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) msum = _mm512_dpwssd_epi32(msum, mp[k], rp_bcast4(yb + 260 + 4 * k));
        float dy;
        memcpy(&dy, yb + 256, 4);
        const __m512 vdy = _mm512_set1_ps(dy);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), _mm512_mul_ps(dx, vdy), acc[c]);
        acc[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(mx, vdy), acc[c]);
    }
}


/* ==== Q6_K ================================================================================
 * Repacked layout of one super-block column of 16 rows, 3360 bytes (16 x 210):
 *     uint16 d[16]
 *     int8 sc[8][16][2]      pair k of row r: (scale 2k, scale 2k + 1)
 *     8 chunks of 32 elements, 384 bytes each, u = the 6-bit quant + 32 (0..63):
 *       H[2][64]             row r, byte k: bits 2g..2g+1 = u[32c + 4g + k] >> 4 (H[0]) and
 *                            u[32c + 16 + 4g + k] >> 4 (H[1])
 *       L[4][64]             piece g, row r, byte k: low nibble u[32c + 4g + k] & 15, high
 *                            nibble u[32c + 16 + 4g + k] & 15
 *     (the high bits first, as the kernel reads them: every load follows the last in memory)
 * The -32 offset is applied as 32 * sum(scale_j * bsum_j) (VPDPWSSD on the scale pairs against
 * the activation's 16-element sums), exact in int32 like everything else.
 * Activation rows: Q8_K's quantization as { int8 qs[256]; float d; int16 bsums[16] }.
 */

/* The layout above (repack_layout.c writes it for any group height). */
static void rk_pack_q6_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q6_k(src, stride, dst, n, RK_ROWS);
}

void quant_rk_act_b16(const float *src, void *dst, int64_t n) {
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / QK_K; b++, o += RK_ABLOCK) {
        block_q8_k q;
        quant_q8_k_from_f32_avx512(src + b * QK_K, &q, QK_K);
        memcpy(o, q.qs, QK_K);
        memcpy(o + 256, &q.d, 4);
        memcpy(o + 260, q.bsums, sizeof q.bsums);
    }
}

/* 16 rows' high bits for piece g placed at bits 4..5 of each byte. */
RK_INLINE __m512i rk_q6_high(__m512i h, int g) {
    const __m512i m = _mm512_set1_epi8(0x30);
    switch (g) {
    case 0: return _mm512_and_si512(_mm512_slli_epi16(h, 4), m);
    case 1: return _mm512_and_si512(_mm512_slli_epi16(h, 2), m);
    case 2: return _mm512_and_si512(h, m);
    default: return _mm512_and_si512(_mm512_srli_epi16(h, 2), m);
    }
}

/* (a & 0x0f) | t, t holding only bits 4..5 of each byte. */
RK_INLINE __m512i rk_q6_merge(__m512i a, __m512i t) {
    return _mm512_ternarylogic_epi32(a, t, _mm512_set1_epi8(0x0f), 0xEC);
}

RK_INLINE void rk6_block(int RY, __m512 *acc, const uint8_t *xb, const uint8_t *y, size_t ys) {
    __m512i isum[4], msum[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = msum[c] = _mm512_setzero_si512();
#pragma GCC unroll 1
    for (int ch = 0; ch < 8; ch++) {
        const uint8_t *cb = xb + 288 + 384 * ch;
        const __m512i pair = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(xb + 32 + 32 * ch)));
        const __m512i sca = _mm512_srai_epi32(_mm512_slli_epi32(pair, 16), 16);
        const __m512i scb = _mm512_srai_epi32(pair, 16);
        const __m512i h0 = _mm512_loadu_si512(cb), h1 = _mm512_loadu_si512(cb + 64);
        __m512i sa[4], sb[4];
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) sa[c] = sb[c] = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            const __m512i l = _mm512_loadu_si512(cb + 128 + 64 * g);
            const __m512i qa = rk_q6_merge(l, rk_q6_high(h0, g));
            const __m512i qb = rk_q6_merge(_mm512_srli_epi16(l, 4), rk_q6_high(h1, g));
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const uint8_t *q = y + c * ys + 32 * ch + 4 * g;
                sa[c] = _mm512_dpbusd_epi32(sa[c], qa, rp_bcast4(q));
                sb[c] = _mm512_dpbusd_epi32(sb[c], qb, rp_bcast4(q + 16));
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) {
            isum[c] = _mm512_add_epi32(isum[c], _mm512_add_epi32(_mm512_mullo_epi32(sa[c], sca),
                                                                 _mm512_mullo_epi32(sb[c], scb)));
            msum[c] = _mm512_dpwssd_epi32(msum[c], pair, rp_bcast4(y + c * ys + 260 + 4 * ch));
        }
    }
    const __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)xb));
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        float dy;
        memcpy(&dy, y + c * ys + 256, 4);
        const __m512i t = _mm512_sub_epi32(isum[c], _mm512_slli_epi32(msum[c], 5));
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(dx, _mm512_set1_ps(dy)),
                                 acc[c]);
    }
}

/* ==== both types ========================================================================== */

enum { RK_Q4_K, RK_Q5_K, RK_Q6_K };

/* One group of 16 rows against RY (1..4, constant after inlining) activation rows. */
RK_INLINE void rk_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                        const uint8_t *y, size_t ys) {
    const int64_t nb = n / QK_K;
    const size_t xb = RK_ROWS * (kind == RK_Q4_K   ? sizeof(block_q4_k)
                                 : kind == RK_Q5_K ? sizeof(block_q5_k)
                                                   : sizeof(block_q6_k));
    __m512 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        if (kind == RK_Q6_K) rk6_block(RY, acc, x + b * xb, y + b * RK_ABLOCK, ys);
        else rk4_block(kind == RK_Q5_K, RY, acc, x + b * xb, y + b * RK_ABLOCK, ys);
    }
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) _mm512_storeu_ps(out + c * os, acc[c]);
}

RP_DEFINE_DOT(rk_dot_q4_k, rk_group, RK_Q4_K)
RP_DEFINE_DOT(rk_dot_q5_k, rk_group, RK_Q5_K)
RP_DEFINE_DOT(rk_dot_q6_k, rk_group, RK_Q6_K)

const quant_repack_impl quant_q4_k_repack_avx512 = {RK_ROWS, rk_pack_q4_k, quant_rk_act_size,
                                                   quant_rk_act_k4, rk_dot_q4_k};
/* Q5_K's activation rows are Q4_K's (the same sub-block sums meet the same mins). */
const quant_repack_impl quant_q5_k_repack_avx512 = {RK_ROWS, rk_pack_q5_k, quant_rk_act_size,
                                                   quant_rk_act_k4, rk_dot_q5_k};
const quant_repack_impl quant_q6_k_repack_avx512 = {RK_ROWS, rk_pack_q6_k, quant_rk_act_size,
                                                   quant_rk_act_b16, rk_dot_q6_k};
