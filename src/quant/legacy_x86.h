/*
 * x86 kernels for the 32-element block types, written once and compiled twice: by
 * legacy_avx2.c (AVX2: int8 products through VPMADDUBSW + VPMADDWD) and by legacy_avx512.c
 * (the same code where x86_dot_i8/x86_dot_u8 become AVX-512 VNNI VPDPBUSD). The including
 * file defines the kernel sets.
 *
 * Every dot product turns a block pair into 8 exact int32 partial sums, converts them to float
 * and accumulates scale * sums with FMA; two accumulators hide the FMA latency.
 */
#ifndef OB_QUANT_LEGACY_X86_H
#define OB_QUANT_LEGACY_X86_H

#include "quant/simd_x86.h"

/* ---- block products (8 int32 partial sums each) ---- */

static inline __m256i q4_0_block(const quant_block_q4_0 *x, const quant_block_q8_0 *y) {
    __m256i qx = _mm256_sub_epi8(x86_nibbles32(x->qs), _mm256_set1_epi8(8));
    return x86_dot_i8(qx, _mm256_loadu_si256((const __m256i *)y->qs));
}

static inline __m256i q4_1_block(const quant_block_q4_1 *x, const quant_block_q8_1 *y) {
    return x86_dot_u8(x86_nibbles32(x->qs), _mm256_loadu_si256((const __m256i *)y->qs));
}

static inline __m256i q5_0_block(const quant_block_q5_0 *x, const quant_block_q8_0 *y) {
    /* q - 16 as a signed byte: where the high bit is clear, OR-ing 0xf0 onto the nibble gives
     * exactly nibble - 16; where it is set, the nibble itself is q - 16 */
    __m256i hi = _mm256_andnot_si256(x86_bits32(x->qh), _mm256_set1_epi8((char)0xf0));
    __m256i qx = _mm256_or_si256(x86_nibbles32(x->qs), hi);
    return x86_dot_i8(qx, _mm256_loadu_si256((const __m256i *)y->qs));
}

static inline __m256i q5_1_block(const quant_block_q5_1 *x, const quant_block_q8_1 *y) {
    __m256i hi = _mm256_and_si256(x86_bits32(x->qh), _mm256_set1_epi8(0x10));
    __m256i qx = _mm256_or_si256(x86_nibbles32(x->qs), hi);
    return x86_dot_u8(qx, _mm256_loadu_si256((const __m256i *)y->qs));
}

static inline __m256i q8_0_block(const quant_block_q8_0 *x, const quant_block_q8_0 *y) {
    return x86_dot_i8(_mm256_loadu_si256((const __m256i *)x->qs),
                      _mm256_loadu_si256((const __m256i *)y->qs));
}

static inline __m256i q8_1_block(const quant_block_q8_1 *x, const quant_block_q8_1 *y) {
    return x86_dot_i8(_mm256_loadu_si256((const __m256i *)x->qs),
                      _mm256_loadu_si256((const __m256i *)y->qs));
}

/* ---- row dot products ---- */

/* acc += d_x * d_y * (int sums of block i), two blocks per step. */
#define LEGACY_DOT_LOOP(BLOCK, bx, by, nb, acc0, acc1)                                          \
    do {                                                                                        \
        int64_t i_ = 0;                                                                         \
        for (; i_ + 1 < (nb); i_ += 2) {                                                        \
            __m256 d0 = _mm256_set1_ps(x86_f16(bx[i_].d) * x86_f16(by[i_].d));                  \
            __m256 d1 = _mm256_set1_ps(x86_f16(bx[i_ + 1].d) * x86_f16(by[i_ + 1].d));          \
            acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(BLOCK(&bx[i_], &by[i_])), acc0);       \
            acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(BLOCK(&bx[i_ + 1], &by[i_ + 1])),     \
                                   acc1);                                                       \
        }                                                                                       \
        if (i_ < (nb)) {                                                                        \
            __m256 d0 = _mm256_set1_ps(x86_f16(bx[i_].d) * x86_f16(by[i_].d));                  \
            acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(BLOCK(&bx[i_], &by[i_])), acc0);       \
        }                                                                                       \
    } while (0)

/* Sum over blocks of m_x * s_y, the offset term of the _1 types. */
#define LEGACY_MIN_SUM(bx, by, nb, out)                                                         \
    do {                                                                                        \
        float s_ = 0.0f;                                                                        \
        for (int64_t i_ = 0; i_ < (nb); i_++) s_ += x86_f16(bx[i_].m) * x86_f16(by[i_].s);    \
        out = s_;                                                                               \
    } while (0)

static void x86_q4_0_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q4_0 *bx = x;
    const quant_block_q8_0 *by = y;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    LEGACY_DOT_LOOP(q4_0_block, bx, by, n / 32, acc0, acc1);
    *out = x86_hsum_ps(_mm256_add_ps(acc0, acc1));
}

static void x86_q4_1_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q4_1 *bx = x;
    const quant_block_q8_1 *by = y;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float ms;
    LEGACY_DOT_LOOP(q4_1_block, bx, by, n / 32, acc0, acc1);
    LEGACY_MIN_SUM(bx, by, n / 32, ms);
    *out = x86_hsum_ps(_mm256_add_ps(acc0, acc1)) + ms;
}

static void x86_q5_0_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q5_0 *bx = x;
    const quant_block_q8_0 *by = y;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    LEGACY_DOT_LOOP(q5_0_block, bx, by, n / 32, acc0, acc1);
    *out = x86_hsum_ps(_mm256_add_ps(acc0, acc1));
}

static void x86_q5_1_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q5_1 *bx = x;
    const quant_block_q8_1 *by = y;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float ms;
    LEGACY_DOT_LOOP(q5_1_block, bx, by, n / 32, acc0, acc1);
    LEGACY_MIN_SUM(bx, by, n / 32, ms);
    *out = x86_hsum_ps(_mm256_add_ps(acc0, acc1)) + ms;
}

static void x86_q8_0_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q8_0 *bx = x, *by = y;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    LEGACY_DOT_LOOP(q8_0_block, bx, by, n / 32, acc0, acc1);
    *out = x86_hsum_ps(_mm256_add_ps(acc0, acc1));
}

static void x86_q8_1_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q8_1 *bx = x, *by = y;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    LEGACY_DOT_LOOP(q8_1_block, bx, by, n / 32, acc0, acc1);
    *out = x86_hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* ---- activation quantizers (bit-exact with the reference) ---- */

static void x86_q8_0_from_f32(const float *src, void *dst, int64_t n) {
    quant_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int sum;
        b[i].d = quant_to_f16(x86_quantize_q8_block(src + 32 * i, b[i].qs, &sum));
    }
}

static void x86_q8_1_from_f32(const float *src, void *dst, int64_t n) {
    quant_block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int sum;
        float d = x86_quantize_q8_block(src + 32 * i, b[i].qs, &sum);
        b[i].d = quant_to_f16(d);
        b[i].s = quant_to_f16((float)sum * d);
    }
}

#endif
