/*
 * Kernel-specific layouts of the AVX-512 VNNI kernels, which quant_traits offers
 * as extensions: packed activation rows (pack_avx512.c: act_pack / dot_packed) and weights
 * repacked 16 rows at a time with their own activation rows (rp_*: repack_avx512.c for
 * Q4_0/Q5_0/Q8_0/IQ4_NL, repack_k_avx512.c for Q4_K/Q5_K/Q6_K, repack_q3_k_avx512.c,
 * repack_q2_k_avx512.c and repack_iq4_avx512.c for IQ4_XS). The layouts are private to those
 * kernels: only the matching dot reads what its pack wrote. The AVX2 and NEON kernels (listed
 * below) take the same layouts at 8 rows.
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

/* The entry points of quant_traits' repacked weights (repack_avx512.c). */
typedef struct quant_repack_impl {
    int64_t rows;
    quant_repack_fn pack;
    quant_pack_size_fn act_size;
    quant_from_f32_fn act;
    quant_dot_tile_fn dot;
} quant_repack_impl;

/* The repacked layouts for a group of `rows` rows (repack_layout.c): Q4_0 and IQ4_NL's, Q5_0's,
 * Q8_0's (each quant XOR flip: 0x80 makes them unsigned, 0 keeps them signed), Q2_K's, Q3_K's,
 * Q4_K's, Q5_K's, Q6_K's and IQ4_XS's. */
void quant_rp_pack_q4_0(const void *src, size_t stride, void *dst, int64_t n, int rows);
void quant_rp_pack_q5_0(const void *src, size_t stride, void *dst, int64_t n, int rows);
void quant_rp_pack_q8_0(const void *src, size_t stride, void *dst, int64_t n, int rows,
                        uint8_t flip);
void quant_rp_pack_q2_k(const void *src, size_t stride, void *dst, int64_t n, int rows);
void quant_rp_pack_q3_k(const void *src, size_t stride, void *dst, int64_t n, int rows);
void quant_rp_pack_q4_k(const void *src, size_t stride, void *dst, int64_t n, int rows);
void quant_rp_pack_q5_k(const void *src, size_t stride, void *dst, int64_t n, int rows);
void quant_rp_pack_q6_k(const void *src, size_t stride, void *dst, int64_t n, int rows);
void quant_rp_pack_iq4_xs(const void *src, size_t stride, void *dst, int64_t n, int rows);

#if defined(__x86_64__) || defined(_M_X64)
/* AVX2 kernels on groups of 8 rows (repack_avx2.c, repack_k_avx2.c, repack_iq4_avx2.c,
 * repack_q2_k_avx2.c, repack_q3_k_avx2.c). */
extern const quant_repack_impl quant_q4_0_repack_avx2, quant_q5_0_repack_avx2,
    quant_q8_0_repack_avx2,
    quant_iq4_nl_repack_avx2, quant_q4_k_repack_avx2, quant_q5_k_repack_avx2,
    quant_q6_k_repack_avx2,
    quant_iq4_xs_repack_avx2, quant_q2_k_repack_avx2, quant_q3_k_repack_avx2;

/* rp_dot on the AVX2 kernels' layouts and activation rows by VPDPBUSD (repack_avxvnni.h):
 * the AVX-VNNI (VEX) kernels, and their EVEX twins built from the same source (_evex). */
extern const quant_dot_tile_fn quant_q4_0_rp_dot_avxvnni, quant_q5_0_rp_dot_avxvnni,
    quant_q8_0_rp_dot_avxvnni, quant_iq4_nl_rp_dot_avxvnni, quant_q4_k_rp_dot_avxvnni,
    quant_q5_k_rp_dot_avxvnni, quant_q6_k_rp_dot_avxvnni, quant_q2_k_rp_dot_avxvnni,
    quant_q3_k_rp_dot_avxvnni, quant_iq4_xs_rp_dot_avxvnni;
extern const quant_dot_tile_fn quant_q4_0_rp_dot_avxvnni_evex, quant_q5_0_rp_dot_avxvnni_evex,
    quant_q8_0_rp_dot_avxvnni_evex, quant_iq4_nl_rp_dot_avxvnni_evex,
    quant_q4_k_rp_dot_avxvnni_evex, quant_q5_k_rp_dot_avxvnni_evex,
    quant_q6_k_rp_dot_avxvnni_evex, quant_q2_k_rp_dot_avxvnni_evex,
    quant_q3_k_rp_dot_avxvnni_evex, quant_iq4_xs_rp_dot_avxvnni_evex;

extern const quant_pack_impl quant_q4_0_pack_avx512, quant_q8_0_pack_avx512;
extern const quant_repack_impl quant_q4_0_repack_avx512, quant_q5_0_repack_avx512,
    quant_q8_0_repack_avx512, quant_iq4_nl_repack_avx512;
extern const quant_repack_impl quant_q4_k_repack_avx512, quant_q5_k_repack_avx512,
    quant_q6_k_repack_avx512, quant_iq4_xs_repack_avx512, quant_q3_k_repack_avx512,
    quant_q2_k_repack_avx512;

/* The activation rows of the repacked Q4_K, Q5_K and IQ4_XS kernels (repack_k_avx512.c): Q8_K's
 * quantization with the sums of each 32 quants. */
size_t quant_rk_act_size(int64_t n);
void quant_rk_act_k4(const float *src, void *dst, int64_t n);
/* ... and of the Q2_K, Q3_K and Q6_K kernels: the same quants with Q8_K's sums of each 16. */
void quant_rk_act_b16(const float *src, void *dst, int64_t n);
#endif

#if defined(__aarch64__) || defined(_M_ARM64)
/* NEON kernels on groups of 8 rows: SDOT (repack_neon.c, repack_k_neon.c,
 * repack_q23_k_neon.c) and, on CPUs with
 * I8MM, SMMLA (repack_i8mm_neon.c, repack_k_i8mm_neon.c) on the same layouts and activation
 * rows. */
extern const quant_repack_impl quant_q4_0_repack_neon, quant_q5_0_repack_neon,
    quant_q8_0_repack_neon, quant_iq4_nl_repack_neon, quant_q4_k_repack_neon,
    quant_q5_k_repack_neon, quant_q6_k_repack_neon, quant_iq4_xs_repack_neon,
    quant_q2_k_repack_neon, quant_q3_k_repack_neon;
extern const quant_repack_impl quant_q4_0_repack_i8mm, quant_q5_0_repack_i8mm,
    quant_q8_0_repack_i8mm, quant_iq4_nl_repack_i8mm, quant_q4_k_repack_i8mm,
    quant_q5_k_repack_i8mm, quant_q6_k_repack_i8mm, quant_q2_k_repack_i8mm,
    quant_q3_k_repack_i8mm;
#endif

#endif
