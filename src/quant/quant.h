/*
 * Block formats of tensor elements: dequantize, quantize and dot products, one set of kernels
 * per type and per ISA, chosen at run time.
 *
 * Every type has a scalar reference implementation (quant_traits_ref) that is the definition of
 * correct; SIMD variants (AVX2, AVX-512 with VNNI, NEON with dot product) are tested against it.
 * quant_traits_get returns the fastest variant this CPU can run, after the OB_ISA cap
 * (src/core/cpu_features.h).
 *
 * Layouts are exactly GGUF's (ggml's): a row of n elements is n / block_size blocks of
 * type_size bytes. A dot product multiplies a row of a weight type by a row of activations of
 * that type's vec_dot_type (which the caller first produces with the vec_dot_type's
 * act_from_f32).
 *
 * Integer quants (Q8_0, Q8_1 and the int8 parts of others) are assumed to lie in [-127, 127],
 * as every quantizer here and in ggml writes them; -128 may saturate in SIMD dot products.
 */
#ifndef OB_QUANT_QUANT_H
#define OB_QUANT_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "gguf/qtype.h"

/* src: n / block_size blocks; dst: (n) f32. n % block_size == 0. */
typedef void (*quant_to_f32_fn)(const void *src, float *dst, int64_t n);
/* src: (n) f32; dst: n / block_size blocks. n % block_size == 0. */
typedef void (*quant_from_f32_fn)(const float *src, void *dst, int64_t n);
/* x: a row of this type, y: a row of vec_dot_type, both n elements; *out = sum x[i] * y[i]. */
typedef void (*quant_vec_dot_fn)(int64_t n, float *out, const void *x, const void *y);
/*
 * Several dot products in one call (matrix-vector and small matrix-matrix products):
 *     out[j * out_stride + i] = dot(x + i * x_stride, y + j * y_stride)   i < nx, j < ny
 * x: nx rows of this type, x_stride bytes apart; y: ny rows of vec_dot_type, y_stride bytes
 * apart; out: f32, out_stride floats between the results of consecutive y rows. Each result is
 * what this variant's vec_dot returns for the same pair, up to float summation order.
 * Faster than nx * ny vec_dot calls because a kernel shares the loads and the unpacking of one
 * operand across several rows of the other. Call it through quant_dot_tile().
 */
typedef void (*quant_dot_tile_fn)(int64_t n, int64_t nx, int64_t ny, float *out,
                                  size_t out_stride, const void *x, size_t x_stride,
                                  const void *y, size_t y_stride);

/* Bytes of one packed activation row of n elements (see act_pack). */
typedef size_t (*quant_pack_size_fn)(int64_t n);
/* Repacks rp_rows weight rows of n elements (src_stride bytes apart) into one group of the
 * variant's interleaved layout, rp_rows * row bytes long. */
typedef void (*quant_repack_fn)(const void *src, size_t src_stride, void *dst, int64_t n);

typedef struct quant_traits {
    uint32_t type;            /* ob_qtype id */
    const char *name;         /* "Q4_0" */
    int64_t block_size;       /* elements per block (1 for F32/F16/BF16) */
    size_t type_size;         /* bytes per block */
    uint32_t vec_dot_type;    /* what activations are converted to for vec_dot, as llama.cpp's
                                 CPU backend does: F32->F32, F16->F16, BF16->BF16,
                                 Q4_0/Q5_0/Q8_0/IQ4_NL->Q8_0, Q4_1/Q5_1/Q8_1->Q8_1,
                                 Q2_K..Q6_K/IQ4_XS->Q8_K */
    quant_to_f32_fn to_f32;   /* dequantize; never NULL */
    quant_from_f32_fn from_f32; /* quantize (the reference quantizer's result: what a GGUF
                                   file holds); NULL if none */
    /* Quantizes a row of activations for vec_dot: the same as from_f32 except for Q8_0 and
     * Q8_1, where it rounds x * (127 / max|x|) to nearest with ties to even, as llama.cpp's
     * x86 CPU backend does (the file format's reference rounds x / d with ties away from
     * zero). NULL exactly when from_f32 is. */
    quant_from_f32_fn act_from_f32;
    quant_vec_dot_fn vec_dot; /* never NULL */
    const char *isa;          /* "scalar", "avx2", "avx512", "neon" */
    /* Extensions beyond the agreed interface. */
    quant_dot_tile_fn dot_tile; /* NULL when the variant has none; quant_dot_tile() then loops
                                   over vec_dot */
    /* Packed activations (all NULL on variants without them): act_pack quantizes an f32 row
     * of n elements into act_pack_size(n) bytes of a layout private to this variant (the
     * same quants as vec_dot_type's from_f32, arranged for the kernel), and dot_packed is a
     * quant_dot_tile_fn whose y rows are in that layout, for any ny >= 1. Results equal
     * vec_dot on vec_dot_type rows up to float summation order. */
    quant_pack_size_fn act_pack_size;
    quant_from_f32_fn act_pack;
    quant_dot_tile_fn dot_packed;
    /* Repacked weights (rp_rows 0 on variants without them): rp_pack interleaves groups of
     * rp_rows rows once at load; rp_act quantizes an f32 activation row into rp_act_size(n)
     * bytes; rp_dot is a quant_dot_tile_fn whose x is nx / rp_rows repacked groups (nx a
     * multiple of rp_rows, x_stride bytes between groups) and whose y rows come from rp_act.
     * Results equal vec_dot up to float summation order. */
    int64_t rp_rows;
    quant_repack_fn rp_pack;
    quant_pack_size_fn rp_act_size;
    quant_from_f32_fn rp_act;
    quant_dot_tile_fn rp_dot;
    /* Weight rows a prefill rp_dot call should take at once, a multiple of rp_rows; 0: the
     * caller's default. Set where the kernel prepares the activations once per call and
     * shares them across the call's groups of rows, so more rows per call cost less each. */
    int64_t rp_prefill_rows;
} quant_traits;

/* Best variant for this CPU (after OB_ISA); NULL when the type is not supported. The result is
 * static and valid for the life of the process; thread-safe. */
const quant_traits *quant_traits_get(uint32_t type);

/* The scalar reference (the truth); NULL when the type is not supported. */
const quant_traits *quant_traits_ref(uint32_t type);

/* The variant for one ISA ("scalar", "avx2", "avx512", "neon", "avxvnni"); NULL when it is not
 * built for this architecture, has no kernels of its own for this type, or the CPU (after
 * OB_ISA) lacks it. Fields a variant does not accelerate come from the next ISA down (AVX-512 ->
 * AVX2 -> scalar), so every returned struct is complete. "avx512" needs F/BW/VL/DQ and VNNI;
 * "neon" needs the dot-product extension; "avxvnni" is the AVX2 variant with VPDPBUSD rp_dot
 * kernels (types with repacked rows only): the VEX ones where the CPU has AVX-VNNI, else their
 * EVEX twins where it has AVX512-VNNI with VL. It is quant_traits_get's answer when AVX-512 is
 * not (a CPU without it, or OB_ISA=avxvnni). */
const quant_traits *quant_traits_isa(uint32_t type, const char *isa);

/* Runs t->dot_tile, or nx * ny calls of t->vec_dot when the variant has none or ny == 1 (a
 * matrix-vector product, where vec_dot row by row is the fastest path). Arguments as
 * quant_dot_tile_fn. Thread-safe; callers split nx (or ny) across threads. */
void quant_dot_tile(const quant_traits *t, int64_t n, int64_t nx, int64_t ny, float *out,
                    size_t out_stride, const void *x, size_t x_stride, const void *y,
                    size_t y_stride);

/* IEEE half <-> float. f32->f16 rounds to nearest even, overflow goes to infinity, NaN stays a
 * quiet NaN keeping the top payload bits (what F16C and Arm FCVT do, so ggml agrees). */
float quant_f16_to_f32(uint16_t h);
uint16_t quant_f32_to_f16(float f);

/* bfloat16 <-> float, as ggml: round to nearest even, NaN forced quiet. */
float quant_bf16_to_f32(uint16_t h);
uint16_t quant_f32_to_bf16(float f);

#endif
