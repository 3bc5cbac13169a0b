/*
 * What every repacked AVX-512 kernel (repack_*avx512.c) shares: the 4-byte activation
 * broadcast, the IQ4 levels as unsigned bytes, and the walk over groups of 16 weight rows and
 * activation rows in fours that calls a file's own group kernel with a constant row count.
 * Included only by files compiled with the AVX-512 flags.
 */
#ifndef OB_QUANT_REPACK_X86_H
#define OB_QUANT_REPACK_X86_H

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

/* Defines NAME, a quant_dot_tile_fn on repacked weights: nx rows (nx / 16 groups, xstride bytes
 * apart) x ny activation rows, four at a time, through
 *     GROUP(KIND, RY, n, out, os, x, y, ys)
 * with RY (1..4) a constant, so the group kernel is compiled once per row count. */
#define RP_DEFINE_DOT(NAME, GROUP, KIND)                                                        \
    static void NAME(int64_t n, int64_t nx, int64_t ny, float *out, size_t os, const void *xv,  \
                     size_t xstride, const void *yv, size_t ystride) {                         \
        const uint8_t *x = xv, *y = yv;                                                        \
        for (int64_t r = 0; r < nx; r += RP_GROUP_ROWS) {                                      \
            const uint8_t *xr = x + (r / RP_GROUP_ROWS) * xstride;                             \
            for (int64_t c = 0; c < ny; c += 4) {                                              \
                const uint8_t *yc = y + c * ystride;                                           \
                float *oc = out + c * os + r;                                                  \
                switch (ny - c) {                                                              \
                case 1: GROUP(KIND, 1, n, oc, os, xr, yc, ystride); break;                     \
                case 2: GROUP(KIND, 2, n, oc, os, xr, yc, ystride); break;                     \
                case 3: GROUP(KIND, 3, n, oc, os, xr, yc, ystride); break;                     \
                default: GROUP(KIND, 4, n, oc, os, xr, yc, ystride);                           \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

#endif
