/*
 * Small AVX2 building blocks shared by the x86 kernel files (legacy_avx2.c, legacy_avx512.c,
 * float_*.c). Only included from files compiled with at least -mavx2 -mfma -mf16c.
 */
#ifndef OB_QUANT_SIMD_X86_H
#define OB_QUANT_SIMD_X86_H

#include "quant/quant_impl.h"

#include <immintrin.h>
#include <stdbool.h>

/* 16 bytes of nibbles -> 32 bytes 0..15: low nibbles in bytes 0..15, high nibbles in 16..31,
 * which is the element order of a 32-element block. */
static inline __m256i x86_nibbles32(const uint8_t *qs) {
    __m128i t = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}

/* A little-endian u32 of bits -> 32 bytes, byte j = 0xff when bit j is set, else 0. */
static inline __m256i x86_bits32(const uint8_t *qh) {
    __m256i v = _mm256_set1_epi32((int)quant_load_u32(qh));
    /* byte j takes byte j / 8 of the word, then every byte but bit (j % 8) is forced to 1 */
    const __m256i spread = _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101,
                                              0x0202020202020202, 0x0303030303030303);
    v = _mm256_shuffle_epi8(v, spread);
    v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1));
}

/* Signed int8 x int8, 32 pairs -> 8 int32 partial sums. |x|, |y| <= 127 (so the int16 pair
 * sums of maddubs cannot saturate). With AVX-512 VNNI one VPDPBUSD does the multiply-add. */
static inline __m256i x86_dot_i8(__m256i x, __m256i y) {
    __m256i ax = _mm256_sign_epi8(x, x), sy = _mm256_sign_epi8(y, x);
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sy);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
#endif
}

/* Unsigned x (<= 31) times signed int8 y, 32 pairs -> 8 int32 partial sums. */
static inline __m256i x86_dot_u8(__m256i x, __m256i y) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), x, y);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
#endif
}

static inline float x86_hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int x86_hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static inline float x86_f16(uint16_t h) { return _cvtsh_ss(h); }

/* roundf on 8 lanes (half away from zero), bit-exact: the fraction v - trunc(v) is exact. */
static inline __m256 x86_roundf(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, sign));
    return _mm256_add_ps(t, _mm256_and_ps(up, one));
}

/* One block of 32 floats -> Q8 quants. d = max|x| / 127 either way; the quants are
 *   act false: roundf(x * (1 / d)), the file format's reference quantizer (ties away from 0);
 *   act true:  x * (127 / max|x|) rounded to nearest, ties to even, as ggml's x86 CPU backend
 *              quantizes activations (quantize_row_q8_0/q8_1). Gemma 3's activations hit exact
 *              ties often enough that the other rule moved its embeddings by 1e-3.
 * Writes the 32 quants, returns d and their sum. */
static inline float x86_quantize_q8_block(const float *x, int8_t *qs, int *sum, bool act) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4], m = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float amax = _mm_cvtss_f32(m4);
    float d = amax / 127, id;
    if (act) id = amax != 0.0f ? 127.0f / amax : 0.0f;
    else id = d != 0.0f ? 1.0f / d : 0.0f;
    __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; k++) {
        __m256 p = _mm256_mul_ps(v[k], vid);
        p = act ? _mm256_round_ps(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
                : x86_roundf(p);
        q[k] = _mm256_cvttps_epi32(p);
    }
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    *sum = x86_hsum_epi32(s);
    /* packs work per 128-bit lane; the permute puts the 4-byte groups back in order */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)qs, p);
    return d;
}

/* An activation row for the repacked kernels (repack_avx2.c, repack_avx512.c): per 32 values a
 * block of `ablock` bytes holding the Q8 quants, at byte 32 the scale as a Q8_0 block stores it
 * (f32 of its f16) and at byte 36 the offset -off * sum(quants) that undoes unsigned weights
 * whose zero point is `off`. */
static inline void x86_repack_act(const float *src, uint8_t *dst, int64_t n, int off,
                                  size_t ablock) {
    for (int64_t b = 0; b < n / 32; b++, dst += ablock) {
        int sum;
        float d = x86_quantize_q8_block(src + 32 * b, (int8_t *)dst, &sum, true);
        d = x86_f16(quant_to_f16(d)); /* the value a Q8_0 block stores */
        /* in unsigned arithmetic: a NaN activation (a broken model file) makes `sum` garbage,
         * and the garbage must wrap, not be undefined; the NaN check of the logits reports it */
        int32_t start = (int32_t)(0u - (uint32_t)off * (uint32_t)sum);
        memcpy(dst + 32, &d, 4);
        memcpy(dst + 36, &start, 4);
    }
}

#endif
