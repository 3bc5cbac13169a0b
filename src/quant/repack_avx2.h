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

#include "quant/repack_tile.h"
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

/* NAME: a quant_dot_tile_fn over groups of 8 rows (repack_tile.h). */
#define R2_DEFINE_DOT(NAME, GROUP, KIND) REPACK_DEFINE_DOT(NAME, GROUP, KIND, R2_ROWS)

#endif
