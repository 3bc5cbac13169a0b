/*
 * AVX-512 kernel sets for F32, F16 and BF16 dot products: 16-wide FMA with masked loads for
 * the tail, and for BF16 the AVX512-BF16 VDPBF16PS pair-dot (products of bf16 are exact in
 * f32, so only the accumulation order differs from the reference). Conversions come from the
 * AVX2 sets.
 */
#include "quant/simd_x86.h"

static inline __mmask16 tail_mask(int64_t left) {
    return (__mmask16)(left >= 16 ? 0xffff : (1u << left) - 1);
}

static void f32_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const float *a = x, *b = y;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i),
                               acc0);
    }
    *out = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

const quant_impl quant_f32_avx512 = {.vec_dot = f32_vec_dot};

static inline __m512 load_f16x16(const uint16_t *p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

static void f16_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const uint16_t *a = x, *b = y;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(load_f16x16(a + i, 0xffff), load_f16x16(b + i, 0xffff), acc0);
        acc1 = _mm512_fmadd_ps(load_f16x16(a + i + 16, 0xffff), load_f16x16(b + i + 16, 0xffff),
                               acc1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        acc0 = _mm512_fmadd_ps(load_f16x16(a + i, m), load_f16x16(b + i, m), acc0);
    }
    *out = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

const quant_impl quant_f16_avx512 = {.vec_dot = f16_vec_dot};

static void bf16_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const uint16_t *a = x, *b = y;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)_mm512_loadu_si512(a + i),
                                (__m512bh)_mm512_loadu_si512(b + i));
        acc1 = _mm512_dpbf16_ps(acc1, (__m512bh)_mm512_loadu_si512(a + i + 32),
                                (__m512bh)_mm512_loadu_si512(b + i + 32));
    }
    for (; i < n; i += 32) {
        int64_t left = n - i;
        __mmask32 m = (__mmask32)(left >= 32 ? 0xffffffffu : (1u << left) - 1);
        acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)_mm512_maskz_loadu_epi16(m, a + i),
                                (__m512bh)_mm512_maskz_loadu_epi16(m, b + i));
    }
    *out = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

const quant_impl quant_bf16_avx512 = {.vec_dot = bf16_vec_dot, .needs = QUANT_NEEDS_AVX512BF16};
