/*
 * AVX2 (+FMA, F16C) kernel sets for F32, F16 and BF16: dot products with four 8-wide FMA
 * accumulators, and F16/BF16 row conversions (the activation conversion for F16/BF16 weights).
 * Conversions are bit-exact with the reference: F16C rounds to nearest even like
 * quant_f32_to_f16, and BF16 uses the same integer rounding as quant_f32_to_bf16.
 */
#include "quant/simd_x86.h"

/* ---- F32 ---- */

static void f32_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const float *a = x, *b = y;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * k), _mm256_loadu_ps(b + i + 8 * k),
                                     acc[k]);
    for (; i + 8 <= n; i += 8)
        acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc[0]);
    float s = x86_hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]),
                                        _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) s += a[i] * b[i];
    *out = s;
}

const quant_impl quant_f32_avx2 = {.vec_dot = f32_vec_dot};

/* ---- F16 ---- */

static inline __m256 load_f16x8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static void f16_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const uint16_t *a = x, *b = y;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(load_f16x8(a + i + 8 * k), load_f16x8(b + i + 8 * k), acc[k]);
    for (; i + 8 <= n; i += 8)
        acc[0] = _mm256_fmadd_ps(load_f16x8(a + i), load_f16x8(b + i), acc[0]);
    float s = x86_hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]),
                                        _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) s += x86_f16(a[i]) * x86_f16(b[i]);
    *out = s;
}

static void f16_to_f32(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_f16x8(s + i));
    for (; i < n; i++) dst[i] = x86_f16(s[i]);
}

static void f16_from_f32(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(d + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) d[i] = quant_to_f16(src[i]);
}

const quant_impl quant_f16_avx2 = {f16_to_f32, f16_from_f32, f16_vec_dot, NULL, 0};

/* ---- BF16 ---- */

static inline __m256 load_bf16x8(const uint16_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

static void bf16_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const uint16_t *a = x, *b = y;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(load_bf16x8(a + i + 8 * k), load_bf16x8(b + i + 8 * k),
                                     acc[k]);
    for (; i + 8 <= n; i += 8)
        acc[0] = _mm256_fmadd_ps(load_bf16x8(a + i), load_bf16x8(b + i), acc[0]);
    float s = x86_hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]),
                                        _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) s += quant_bf16(a[i]) * quant_bf16(b[i]);
    *out = s;
}

static void bf16_to_f32(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_bf16x8(s + i));
    for (; i < n; i++) dst[i] = quant_bf16(s[i]);
}

/* Eight floats -> eight bf16 (in the low halves of the 32-bit lanes), as quant_to_bf16. */
static inline __m256i to_bf16x8(__m256 f) {
    __m256i u = _mm256_castps_si256(f);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(odd,
                                  _mm256_set1_epi32(0x7fff))), 16);
    __m256i abs = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
    __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
    return _mm256_blendv_epi8(r, quiet, nan);
}

static void bf16_from_f32(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i lo = to_bf16x8(_mm256_loadu_ps(src + i));
        __m256i hi = to_bf16x8(_mm256_loadu_ps(src + i + 8));
        /* values fit 16 bits unsigned; packus works per lane, the permute restores order */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8);
        _mm256_storeu_si256((__m256i *)(d + i), p);
    }
    for (; i < n; i++) d[i] = quant_to_bf16(src[i]);
}

const quant_impl quant_bf16_avx2 = {bf16_to_f32, bf16_from_f32, bf16_vec_dot, NULL, 0};
