/*
 * Small x86 helpers shared by the K-quant / IQ4 SIMD kernels (included only from *_avx2.c and
 * *_avx512.c files, which are compiled with the matching ISA flags).
 */
#ifndef OB_QUANT_Q8_K_X86_H
#define OB_QUANT_Q8_K_X86_H

#include <immintrin.h>
#include <stdint.h>

/* Sum of the 8 int32 lanes. */
static inline int32_t kq_hsum_i32_256(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* Sums of the 8 int32 lanes of a and of b, in one reduction. */
static inline void kq_hsum2_i32_256(__m256i a, __m256i b, int32_t *sa, int32_t *sb) {
    __m256i t = _mm256_hadd_epi32(a, b); /* a01 a23 b01 b23 | a45 a67 b45 b67 */
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    s = _mm_hadd_epi32(s, s); /* a, b, a, b */
    *sa = _mm_cvtsi128_si32(s);
    *sb = _mm_extract_epi32(s, 1);
}

/* fp16 -> f32 with F16C (exact, so equal to quant_f16_to_f32). */
static inline float kq_f16(uint16_t h) { return _cvtsh_ss(h); }

/* Kernels written once for 256-bit registers (the *_x86.h bodies) are compiled twice: in the
 * _avx2.c file plainly, in the _avx512.c file with VNNI, where dpwssd fuses the i16 x i16 pair
 * multiply and the int32 accumulate. The file's ISA flags pick the name and the instruction. */
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define KQ_ISA(name) name##_avx512
#define KQ_MADD_ACC(acc, a, b) _mm256_dpwssd_epi32((acc), (a), (b))
#else
#define KQ_ISA(name) name##_avx2
#define KQ_MADD_ACC(acc, a, b) _mm256_add_epi32((acc), _mm256_madd_epi16((a), (b)))
#endif

/* The 128-bit lane h (0 or 1) of v copied into both lanes. */
static inline __m256i kq_bcast_lane(__m256i v, int h) {
    return h ? _mm256_permute2x128_si256(v, v, 0x11) : _mm256_permute2x128_si256(v, v, 0x00);
}

/* pshufb masks for kq_pair_scales: int16 entry 2k in the low lane, 2k+1 in the high lane. */
#define KQ_PM(a) a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1
static const uint8_t KQ_PAIR_MASKS[4][32] __attribute__((aligned(32))) = {
    {KQ_PM(0), KQ_PM(2)}, {KQ_PM(4), KQ_PM(6)}, {KQ_PM(8), KQ_PM(10)}, {KQ_PM(12), KQ_PM(14)}};
#undef KQ_PM

/* Selects, from 8 int16 scales broadcast to both 128-bit lanes, scale 2k for the low lane and
 * 2k+1 for the high lane (8 copies each): the scales of two 16-weight sub-blocks side by side. */
static inline __m256i kq_pair_scales(__m256i sc8x2, int k) {
    return _mm256_shuffle_epi8(sc8x2, _mm256_load_si256((const __m256i *)KQ_PAIR_MASKS[k]));
}

/* Signed int8 x signed int8 pair products to int16: maddubs needs an unsigned left side, so
 * move a's sign onto b (|a| * sign(a) * b). Pairs stay within 2 * 127 * 127. */
static inline __m256i kq_mul_s8(__m256i a, __m256i b) {
    return _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

#endif
