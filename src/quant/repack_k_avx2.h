/*
 * The unpacking steps of the repacked super-block layouts at 8 rows that the AVX2 kernels
 * (repack_k_avx2.c: Q4_K, Q5_K, Q6_K; repack_q2_k_avx2.c, repack_q3_k_avx2.c,
 * repack_iq4_avx2.c: IQ4_XS; their layout comments say where each field sits) and the AVX-VNNI
 * ones (repack_k_avxvnni.c, repack_q23_k_avxvnni.c, repack_iq4_avxvnni.c) share. Included only
 * by files compiled with the AVX2 flags.
 */
#ifndef OB_QUANT_REPACK_K_AVX2_H
#define OB_QUANT_REPACK_K_AVX2_H

#include "quant/repack_avx2.h"
#include "quant/q8_k.h"

#define RK2_ABLOCK ((size_t)sizeof(block_q8_k)) /* d at 0, qs at 4, bsums at 260 */

/* Q6_K's activation block (repack_k_avx2.c's rk2_act_q6_k, read by its kernel and by the
 * AVX-VNNI one): a Q8_K block, then for each sub-block j of 16 quants two int16 offset words
 * at RK2_ABLOCK + 4j, 32 * the sum of quants 4g and 4g + 1 over g < 4, and 32 * that of 4g + 2
 * and 4g + 3: what VPMADDUBSW's two int16 in a row's lane gather from the sub-block's four
 * 4-quant broadcasts, times the Q6_K offset. */
#define RK2_Q6_ABLOCK (RK2_ABLOCK + 2 * sizeof(int16_t) * (QK_K / 16))

/* The 8 rows' 6-bit sub-block scales and mins from a Q4_K/Q5_K super-block column's three
 * scale pieces at p, unpacked as the reference does per row: in each row's lane, byte j of
 * r[0] is scale j, of r[1] scale 4 + j, of r[2] min j, of r[3] min 4 + j (j < 4). */
R2_INLINE void rk2_scale_bytes(const uint8_t *p, __m256i r[4]) {
    const __m256i u0 = _mm256_loadu_si256((const __m256i *)p),
                  u1 = _mm256_loadu_si256((const __m256i *)(p + 32)),
                  u2 = _mm256_loadu_si256((const __m256i *)(p + 64));
    const __m256i m6 = _mm256_set1_epi8(0x3f), m4 = _mm256_set1_epi8(0x0f),
                  m2 = _mm256_set1_epi8(0x03);
    r[0] = _mm256_and_si256(u0, m6);
    r[1] = _mm256_or_si256(_mm256_and_si256(u2, m4),
        _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(u0, 6), m2), 4));
    r[2] = _mm256_and_si256(u1, m6);
    r[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u2, 4), m4),
        _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(u1, 6), m2), 4));
}

/* Fifth bits of piece g from plane h, at bit 4 of each byte (shifts within 16-bit lanes: what
 * crosses from the neighbour byte lands outside bit 4 and is masked off). */
R2_INLINE __m256i rk2_fifth(__m256i h, int g) {
    const __m256i m = _mm256_set1_epi8(0x10);
    if (g < 4) return _mm256_and_si256(_mm256_slli_epi16(h, 4 - g), m);
    if (g == 4) return _mm256_and_si256(h, m);
    return _mm256_and_si256(_mm256_srli_epi16(h, g - 4), m);
}

/* 8 rows' Q6_K high bits for piece g placed at bits 4..5 of each byte (shifts within 16-bit
 * lanes: what crosses from the neighbour byte lands outside bits 4..5 and is masked off). */
R2_INLINE __m256i rk2_q6_high(__m256i h, int g) {
    const __m256i m = _mm256_set1_epi8(0x30);
    switch (g) {
    case 0: return _mm256_and_si256(_mm256_slli_epi16(h, 4), m);
    case 1: return _mm256_and_si256(_mm256_slli_epi16(h, 2), m);
    case 2: return _mm256_and_si256(h, m);
    default: return _mm256_and_si256(_mm256_srli_epi16(h, 2), m);
    }
}

/* The 8 rows' unsigned Q6_K quants u (0..63) of half `half` of the chunk at cb (its sub-block
 * 2c + half): q[g] holds elements 16 half + 4g..+3 of each row, low (half 0) or high nibbles
 * with their two high bits. */
R2_INLINE void rk2_q6_half(const uint8_t *cb, int half, __m256i q[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i h = _mm256_loadu_si256((const __m256i *)(cb + 32 * half));
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        __m256i l = _mm256_loadu_si256((const __m256i *)(cb + 64 + 32 * g));
        if (half) l = _mm256_srli_epi16(l, 4);
        q[g] = _mm256_or_si256(_mm256_and_si256(l, m4), rk2_q6_high(h, g));
    }
}

/* ---- Q2_K ---- */

/* pshufb patterns per row dword, for byte b (0..3) of a scale word: (b, b) as an int16 pair,
 * and (b, b + 1) for the min pairs. */
#define DUP(b) b, 0x80, b, 0x80
#define PAIR(b) b, 0x80, b + 1, 0x80
#define LANE(f, b) f(b), f(b + 4), f(b + 8), f(b + 12)
static const uint8_t RQ2_DUP[4][32] __attribute__((aligned(32))) = {
    {LANE(DUP, 0), LANE(DUP, 0)}, {LANE(DUP, 1), LANE(DUP, 1)},
    {LANE(DUP, 2), LANE(DUP, 2)}, {LANE(DUP, 3), LANE(DUP, 3)},
};
static const uint8_t RQ2_PAIR[2][32] __attribute__((aligned(32))) = {
    {LANE(PAIR, 0), LANE(PAIR, 0)}, {LANE(PAIR, 2), LANE(PAIR, 2)},
};
#undef LANE
#undef PAIR
#undef DUP

/* ---- Q3_K ---- */

/* The 8 rows' scale of sub-block j (constant after inlining) as int32 in -32..31, from the
 * three scale words: low 4 bits in byte j % 8 (its high nibble for j >= 8), high 2 bits at bits
 * 2 (j / 4) of byte 8 + j % 4. */
R2_INLINE __m256i rq3_scale(__m256i u0, __m256i u1, __m256i u2, int j) {
    const __m256i w = (j % 8) / 4 ? u1 : u0;
    const __m256i lo = _mm256_and_si256(_mm256_srli_epi32(w, 8 * (j % 4) + 4 * (j / 8)),
                                        _mm256_set1_epi32(0xF));
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(u2, 8 * (j % 4) + 2 * (j / 4)),
                                        _mm256_set1_epi32(3));
    return _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32));
}

/* int16 pair (a, b) in each int32 lane from two int32 lanes of small signed values. */
R2_INLINE __m256i rq3_pair(__m256i a, __m256i b) {
    return _mm256_or_si256(_mm256_and_si256(a, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(b, 16));
}

/* Piece g's u (0..7) for 8 rows x 4 elements from the chunk's planes (shifts within 16-bit
 * lanes: what crosses from the neighbour byte lands outside the bits kept). */
R2_INLINE __m256i rq3_piece(__m256i h, __m256i l0, __m256i l1, int g) {
    const __m256i l = g < 4 ? l0 : l1;
    const int s = 2 * (g % 4);
    const __m256i low = s ? _mm256_srli_epi16(l, s) : l;
    const __m256i hb = g < 2 ? _mm256_slli_epi16(h, 2 - g) : g == 2 ? h : _mm256_srli_epi16(h, g - 2);
    return _mm256_or_si256(_mm256_and_si256(low, _mm256_set1_epi8(3)),
                           _mm256_and_si256(hb, _mm256_set1_epi8(4)));
}

/* ---- IQ4_XS ---- */

/* The 8 rows' IQ4_XS scale of sub-block s (-32..31) as int32 in each row's lane, from the
 * scales_l words sl and the scales_h halves sh widened to int32. */
R2_INLINE __m256i ri2_scale32(__m256i sl, __m256i sh, int s) {
    const __m256i lo4 = _mm256_and_si256(_mm256_srli_epi32(sl, 4 * s), _mm256_set1_epi32(0xF));
    const __m256i hi2 = _mm256_and_si256(_mm256_srli_epi32(sh, 2 * s), _mm256_set1_epi32(3));
    return _mm256_sub_epi32(_mm256_or_si256(lo4, _mm256_slli_epi32(hi2, 4)),
                            _mm256_set1_epi32(32));
}

/* ... and as the int16 pair (sc, sc) in each row's lane. */
R2_INLINE __m256i ri2_scale(__m256i sl, __m256i sh, int s) {
    const __m256i sc = ri2_scale32(sl, sh, s);
    return _mm256_or_si256(_mm256_and_si256(sc, _mm256_set1_epi32(0xFFFF)),
                           _mm256_slli_epi32(sc, 16));
}

#endif
