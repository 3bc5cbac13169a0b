/*
 * Packed activation rows (pack_avx512.c): the Q8_0 quantization of an activation row laid out
 * for the AVX-512 VNNI kernels of Q4_0 and Q8_0 weights, which quant_traits offers as
 * act_pack / dot_packed. The layout is private to those kernels: only the matching
 * dot_packed reads a row that act_pack wrote.
 */
#ifndef OB_QUANT_PACK_H
#define OB_QUANT_PACK_H

#include "quant/quant_impl.h"

#define PK_GROUP 16        /* blocks of 32 per group */
#define PK_GROUP_BYTES 1088 /* 16 float scales + 8 pairs of (64 quants + 16 int32 starts) */

/* The three entry points of quant_traits' packed activations, for one type and ISA. */
typedef struct quant_pack_impl {
    quant_pack_size_fn size;
    quant_from_f32_fn pack;
    quant_dot_tile_fn dot;
} quant_pack_impl;

#if defined(__x86_64__) || defined(_M_X64)
extern const quant_pack_impl quant_q4_0_pack_avx512, quant_q8_0_pack_avx512;
#endif

#endif
