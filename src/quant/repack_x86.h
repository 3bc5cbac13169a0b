/*
 * What every repacked AVX-512 kernel (repack_*avx512.c) shares: the 4-byte activation
 * broadcast, the IQ4 levels as unsigned bytes, and the walk over groups of 16 weight rows and
 * activation rows in fours that calls a file's own group kernel with a constant row count.
 * Included only by files compiled with the AVX-512 flags.
 */
#ifndef OB_QUANT_REPACK_X86_H
#define OB_QUANT_REPACK_X86_H

#include "quant/repack_tile.h"
#include "quant/iq4_nl.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define RP_GROUP_ROWS 16 /* weight rows per repacked group */

/* Four activation bytes at p in every int32 lane. */
static inline __attribute__((always_inline)) __m512i rp_bcast4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* The 16 IQ4 levels plus 128 (1..241) in every 128-bit lane, so that VPSHUFB turns a nibble
 * into an unsigned byte VPDPBUSD can take (the 128 is taken back from the activation side). */
static inline __attribute__((always_inline)) __m512i rp_iq4_levels(void) {
    uint8_t lv[16];
    for (int i = 0; i < 16; i++) lv[i] = (uint8_t)(quant_iq4_levels[i] + 128);
    return _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)lv));
}

/* NAME: a quant_dot_tile_fn over groups of 16 rows (repack_tile.h). */
#define RP_DEFINE_DOT(NAME, GROUP, KIND) REPACK_DEFINE_DOT(NAME, GROUP, KIND, RP_GROUP_ROWS)

#endif
