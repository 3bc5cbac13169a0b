/*
 * Q4_K x Q8_K dot product, AVX-512 (BW + VNNI). One 64-weight chunk per 512-bit register: the
 * chunk's low nibbles (sub-block 2c) fill the lower half and its high nibbles (2c+1) the upper
 * half, matching the 64 contiguous activation bytes. maddubs forms i16 pair products and
 * VNNI's dpwssd multiplies them by the per-half scale and accumulates in int32 in one step;
 * two accumulators let the chains overlap. Exact integer sums folded as the scalar code does
 * (kq_loop_x86): equals quant_q4_k_vec_dot bit for bit.
 */
#include "quant/q8_k.h"
#include "quant/q8_k_x86.h"
#include "quant/quant_impl.h"

#include <stddef.h>

/* vpermw indices for chunk c: scale 2c for lanes 0-15, 2c+1 for lanes 16-31. */
#define SEL16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
static const int16_t CHUNK_SEL[4][32] __attribute__((aligned(64))) = {
    {SEL16(0), SEL16(1)}, {SEL16(2), SEL16(3)}, {SEL16(4), SEL16(5)}, {SEL16(6), SEL16(7)}};
#undef SEL16

static inline void q4k_block(const void *vx, const void *vy, __m256i *isum, __m256i *msum) {
    const block_q4_k *x = vx;
    const block_q8_k *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const __m128i sm = kq_unpack_k4_x86(x->scales); /* 8 scales, 8 mins */
    /* The 8 scales as int16, repeated in each 128-bit lane for vpermw. */
    const __m512i scales = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(sm));
    const __m128i mins16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
    *msum = _mm256_madd_epi16(
        _mm256_loadu_si256((const __m256i *)y->bsums),
        _mm256_set_m128i(_mm_unpackhi_epi16(mins16, mins16), _mm_unpacklo_epi16(mins16, mins16)));
    __m512i sum[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * c));
        const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(q, m4)),
                                             _mm256_and_si256(_mm256_srli_epi16(q, 4), m4), 1);
        const __m512i p = _mm512_maddubs_epi16(z, _mm512_loadu_si512(y->qs + 64 * c));
        sum[c & 1] = _mm512_dpwssd_epi32(
            sum[c & 1], p, _mm512_permutexvar_epi16(_mm512_load_si512(CHUNK_SEL[c]), scales));
    }
    const __m512i s = _mm512_add_epi32(sum[0], sum[1]);
    *isum = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
}

void quant_q4_k_vec_dot_avx512(int64_t n, float *out, const void *vx, const void *vy) {
    *out = kq_loop_x86(n / QK_K, vx, sizeof(block_q4_k), vy, q4k_block, offsetof(block_q4_k, d),
                       offsetof(block_q4_k, dmin), 1);
}

const quant_impl quant_q4_k_avx512 = {NULL, NULL, quant_q4_k_vec_dot_avx512, NULL, 0};
