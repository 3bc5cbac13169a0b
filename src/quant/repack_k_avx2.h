/*
 * The unpacking steps of the repacked Q4_K, Q5_K and Q6_K layouts at 8 rows (layout comment
 * of repack_k_avx2.c) that the AVX2 kernels and the AVX-VNNI ones (repack_k_avxvnni.c) share.
 * Included only by files compiled with the AVX2 flags.
 */
#ifndef OB_QUANT_REPACK_K_AVX2_H
#define OB_QUANT_REPACK_K_AVX2_H

#include "quant/repack_avx2.h"

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

#endif
