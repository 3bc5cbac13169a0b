/*
 * Random rows of GGUF blocks for the host tests of the CUDA block code (blocks_test.c,
 * q8dot_test.c): a small deterministic generator, and rows of random bytes whose f16 scale
 * fields are set to finite values, so that every bit pattern of quants, scales and high bits
 * is met without NaN or infinite scales.
 */
#ifndef OB_TESTS_CUDA_RANDOM_BLOCKS_H
#define OB_TESTS_CUDA_RANDOM_BLOCKS_H

#include "quant/quant.h"

#include <stdint.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint32_t rng32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rngf(void) { return (float)rng32() / 4294967296.0f * 2.0f - 1.0f; } /* [-1, 1) */

/* n elements of random blocks of ref's type into row; f16_at[0..1] are the byte offsets of the
 * block's f16 scale fields (-1: none), set to values up to amp in magnitude. */
static void random_block_row(const quant_traits *ref, const int f16_at[2], uint8_t *row,
                             int64_t n, float amp) {
    const size_t bytes = (size_t)(n / ref->block_size) * ref->type_size;
    for (size_t b = 0; b < bytes; b++) row[b] = (uint8_t)rng32();
    for (int64_t blk = 0; blk < n / ref->block_size; blk++)
        for (int f = 0; f < 2 && f16_at[f] >= 0; f++) {
            uint16_t h = quant_f32_to_f16(rngf() * amp);
            uint8_t *p = row + blk * ref->type_size + f16_at[f];
            p[0] = (uint8_t)h;
            p[1] = (uint8_t)(h >> 8);
        }
}

#endif
