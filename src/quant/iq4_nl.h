/*
 * Non-linear 4-bit quants: IQ4_NL (blocks of 32, one fp16 scale) and IQ4_XS (super-blocks of
 * 256 with 6-bit sub-block scales). A 4-bit index selects one of 16 fixed int8 levels spaced
 * more densely near zero, where trained weights cluster; layouts are GGUF's byte for byte.
 *
 * IQ4_NL rows are dotted with Q8_0 activations (its block is 32 like Q8_0's), IQ4_XS rows with
 * Q8_K. As with the K-quants, each kernel forms exact int32 sums per block and folds them into
 * the float result in one fixed order, so SIMD kernels equal the scalar reference exactly.
 */
#ifndef OB_QUANT_IQ4_NL_H
#define OB_QUANT_IQ4_NL_H

#include "quant/q8_k.h"
#include "quant/quant_impl.h"

#include <stdint.h>

#define QK4_NL 32

/* The 16 levels (index -> value); sorted ascending. */
extern const int8_t quant_iq4_levels[16];

/* 4.5 bits/weight. 18 bytes. */
typedef struct block_iq4_nl {
    uint16_t d;             /* fp16 scale */
    uint8_t qs[QK4_NL / 2]; /* (16) element l in the low nibble of qs[l], l+16 in the high */
} block_iq4_nl;

/* 4.25 bits/weight. 136 bytes. */
typedef struct block_iq4_xs {
    uint16_t d;                  /* fp16 super-scale */
    uint16_t scales_h;           /* top 2 bits of the 8 6-bit scales, 2 per sub-block */
    uint8_t scales_l[QK_K / 64]; /* (4) low 4 bits, 2 sub-blocks per byte */
    uint8_t qs[QK_K / 2];        /* (128) 16 bytes per sub-block of 32, as in IQ4_NL */
} block_iq4_xs;

_Static_assert(sizeof(block_iq4_nl) == 18, "IQ4_NL block layout");
_Static_assert(sizeof(block_iq4_xs) == 136, "IQ4_XS block layout");

/* Sub-block ib's 6-bit IQ4_XS scale, minus 32 (in -32..31). */
static inline int iq4_xs_scale(const block_iq4_xs *x, int ib) {
    int lo = (x->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF;
    int hi = (x->scales_h >> (2 * ib)) & 3;
    return (lo | (hi << 4)) - 32;
}

/* A block's contribution: acc + d * isum, in the one order every kernel uses. */
static inline float iq4_fold(float acc, float d, int32_t isum) {
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
    return acc + d * (float)isum;
}

/* Scalar reference entry points (quant.h signatures). IQ4_NL's vec_dot takes Q8_0 in y. */
void quant_iq4_nl_to_f32(const void *src, float *dst, int64_t n);
void quant_iq4_nl_from_f32(const float *src, void *dst, int64_t n);
void quant_iq4_nl_vec_dot(int64_t n, float *out, const void *x, const void *y);
void quant_iq4_xs_to_f32(const void *src, float *dst, int64_t n);
void quant_iq4_xs_from_f32(const float *src, void *dst, int64_t n);
void quant_iq4_xs_vec_dot(int64_t n, float *out, const void *x, const void *y);

/* Shared by both quantizers (iq4_nl.c): quantizes one super-block of `nsub` sub-blocks of 32
 * (nsub 1: IQ4_NL, 8: IQ4_XS). Writes the fp16 scale, the 4-bit indices (16 bytes per
 * sub-block) and, for nsub > 1, the 6-bit sub-block scales. */
void quant_iq4_quantize_block(const float *x, int nsub, uint16_t *dh, uint8_t *qs,
                              uint16_t *scales_h, uint8_t *scales_l);

#define IQ4_DECLARE_ISA(isa)                                                                       \
    void quant_iq4_nl_vec_dot_##isa(int64_t n, float *out, const void *x, const void *y);          \
    void quant_iq4_xs_vec_dot_##isa(int64_t n, float *out, const void *x, const void *y);

IQ4_DECLARE_ISA(avx2)
IQ4_DECLARE_ISA(avx512)
IQ4_DECLARE_ISA(neon)

#endif
