/*
 * Small x86 helpers shared by the K-quant / IQ4 SIMD kernels (included only from *_avx2.c and
 * *_avx512.c files, which are compiled with the matching ISA flags).
 */
#ifndef OB_QUANT_Q8_K_X86_H
#define OB_QUANT_Q8_K_X86_H

#include "quant/q8_k.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

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

/* kq_unpack_k4 kept in registers: bytes 0-7 the 8 scales, 8-15 the 8 mins. (Going through
 * memory would make the vector loads wait on four narrower stores.) */
static inline __m128i kq_unpack_k4_x86(const uint8_t *q) {
    uint32_t u[3];
    memcpy(u, q, 12);
    const uint32_t r0 = u[0] & 0x3f3f3f3fu;
    const uint32_t r1 = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    const uint32_t r2 = u[1] & 0x3f3f3f3fu;
    const uint32_t r3 = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    return _mm_set_epi32((int)r3, (int)r2, (int)r1, (int)r0);
}

/* The 8-lane sums of a, b, c and d in one reduction tree: lanes 0..3 of the result. */
static inline __m128i kq_hsum4_i32_256(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i t = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    return _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
}

/* kq_fold for two consecutive super-blocks whose sums are (isum0, msum0, isum1, msum1): the
 * conversions and products are done four at a time, element for element the same IEEE
 * operations as kq_fold, and the adds into acc keep their order, so the result is identical. */
static inline float kq_fold2_x86(float acc, __m128i sums, float d0, float dm0, float d1,
                                 float dm1) {
    const __m128 p = _mm_mul_ps(_mm_cvtepi32_ps(sums), _mm_setr_ps(d0, dm0, d1, dm1));
    float f[4];
    _mm_storeu_ps(f, p);
    acc = acc + (f[0] - f[1]);
    return acc + (f[2] - f[3]);
}

/* A super-block kernel's integer part: the 8-lane vectors whose sums are isum and msum. */
typedef void (*kq_block_fn)(const void *x, const void *y, __m256i *isum, __m256i *msum);

/* The super-block loop shared by the x86 K-quant kernels: two blocks per reduction (the
 * horizontal sums cost about as much as a block's multiplies), one at the end if odd.
 * d_of / dmin_of read a block's fp16 scales; xs / ys are the block sizes in bytes. */
__attribute__((always_inline)) static inline float kq_loop_x86(int64_t nb, const uint8_t *x,
                                                               size_t xs, const uint8_t *y,
                                                               kq_block_fn blk, size_t d_off,
                                                               size_t dmin_off, int has_min) {
    float acc = 0;
    int64_t b = 0;
    for (; b + 1 < nb; b += 2) {
        const uint8_t *x0 = x + b * xs, *x1 = x0 + xs;
        const block_q8_k *y0 = (const block_q8_k *)y + b, *y1 = y0 + 1;
        __m256i s0, m0, s1, m1;
        blk(x0, y0, &s0, &m0);
        blk(x1, y1, &s1, &m1);
        uint16_t h[4];
        memcpy(&h[0], x0 + d_off, 2);
        memcpy(&h[1], x0 + dmin_off, 2);
        memcpy(&h[2], x1 + d_off, 2);
        memcpy(&h[3], x1 + dmin_off, 2);
        acc = kq_fold2_x86(acc, kq_hsum4_i32_256(s0, m0, s1, m1), _cvtsh_ss(h[0]) * y0->d,
                           has_min ? _cvtsh_ss(h[1]) * y0->d : 0.f, _cvtsh_ss(h[2]) * y1->d,
                           has_min ? _cvtsh_ss(h[3]) * y1->d : 0.f);
    }
    if (b < nb) {
        const uint8_t *x0 = x + b * xs;
        const block_q8_k *y0 = (const block_q8_k *)y + b;
        __m256i s0, m0;
        blk(x0, y0, &s0, &m0);
        int32_t isum, msum;
        kq_hsum2_i32_256(s0, m0, &isum, &msum);
        uint16_t h[2];
        memcpy(&h[0], x0 + d_off, 2);
        memcpy(&h[1], x0 + dmin_off, 2);
        acc = kq_fold(acc, _cvtsh_ss(h[0]) * y0->d, isum, has_min ? _cvtsh_ss(h[1]) * y0->d : 0.f,
                      has_min ? msum : 0);
    }
    return acc;
}

/* fp16 -> f32 with F16C (exact, so equal to quant_f16_to_f32). */
static inline float kq_f16(uint16_t h) {
    return _cvtsh_ss(h);
}

/* Kernels written once for 256-bit registers (the *_x86.h bodies) are compiled twice: in the
 * _avx2.c file plainly, in the _avx512.c file with VNNI, where dpwssd fuses the i16 x i16 pair
 * multiply and the int32 accumulate. The file's ISA flags pick the name and the instruction. */
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define KQ_ISA(name)           name##_avx512
#define KQ_MADD_ACC(acc, a, b) _mm256_dpwssd_epi32((acc), (a), (b))
#else
#define KQ_ISA(name)           name##_avx2
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

/* pshufb masks broadcasting int16 entry j of a 128-bit lane to the whole lane. */
#define KQ_BC(j)                                                                                   \
    2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1,      \
        2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1
static const uint8_t KQ_BCAST16[8][32] __attribute__((aligned(32))) = {
    {KQ_BC(0), KQ_BC(0)}, {KQ_BC(1), KQ_BC(1)}, {KQ_BC(2), KQ_BC(2)}, {KQ_BC(3), KQ_BC(3)},
    {KQ_BC(4), KQ_BC(4)}, {KQ_BC(5), KQ_BC(5)}, {KQ_BC(6), KQ_BC(6)}, {KQ_BC(7), KQ_BC(7)}};
#undef KQ_BC

/* int16 entry j (of 8, repeated in both lanes of v) in all 16 lanes. */
static inline __m256i kq_bcast16(__m256i v, int j) {
    return _mm256_shuffle_epi8(v, _mm256_load_si256((const __m256i *)KQ_BCAST16[j]));
}

/* Signed int8 x signed int8 pair products to int16: maddubs needs an unsigned left side, so
 * move a's sign onto b (|a| * sign(a) * b). Pairs stay within 2 * 127 * 127. */
static inline __m256i kq_mul_s8(__m256i a, __m256i b) {
    return _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

#endif
