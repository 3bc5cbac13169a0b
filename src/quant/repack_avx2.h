/*
 * What the repacked AVX2 kernels (repack_avx2.c, repack_k_avx2.c) share: the 4-byte
 * activation broadcast and the walk over groups of 8 weight rows and activation rows in fours
 * that calls a file's own group kernel with a constant row count. Included only by files
 * compiled with the AVX2 flags.
 *
 * Without VPDPBUSD an int8 multiply-add is VPMADDUBSW (unsigned x signed bytes, pairs summed
 * into saturating int16) then VPMADDWD (int16 pairs into int32). The kernels keep the int16
 * sums below saturation by construction (each says its bound) and let several VPMADDUBSW
 * results share one VPMADDWD, which is where they gain over a per-block dot product.
 */
#ifndef OB_QUANT_REPACK_AVX2_H
#define OB_QUANT_REPACK_AVX2_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define R2_ROWS 8 /* weight rows per repacked group: one int32 lane each */
#define R2_INLINE static inline __attribute__((always_inline))

/* Four activation bytes at p in every int32 lane. */
R2_INLINE __m256i r2_bcast4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

R2_INLINE float r2_load_f32(const uint8_t *p) {
    float v;
    memcpy(&v, p, 4);
    return v;
}

/* Pins v in a register at this point. GCC otherwise reassociates a chain of integer adds into
 * a tree, computing every VPMADDUBSW of a block first and spilling most of them to the stack
 * (measured: half the speed); one empty asm per step keeps the chain a chain. */
#define R2_KEEP(v) __asm__("" : "+x"(v))

/* Defines NAME, a quant_dot_tile_fn on repacked weights: nx rows (nx / 8 groups, xstride bytes
 * apart) x ny activation rows, four at a time, through
 *     GROUP(KIND, RY, n, out, os, x, y, ys)
 * with RY (1..4) a constant, so the group kernel is compiled once per row count. */
#define R2_DEFINE_DOT(NAME, GROUP, KIND)                                                        \
    static void NAME(int64_t n, int64_t nx, int64_t ny, float *out, size_t os, const void *xv,  \
                     size_t xstride, const void *yv, size_t ystride) {                         \
        const uint8_t *x = xv, *y = yv;                                                        \
        for (int64_t r = 0; r < nx; r += R2_ROWS) {                                            \
            const uint8_t *xr = x + (r / R2_ROWS) * xstride;                                   \
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
