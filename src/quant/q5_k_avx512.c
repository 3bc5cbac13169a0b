/*
 * Q5_K x Q8_K dot product, AVX-512 (BW + VNNI): the Q4_K layout trick (q4_k_avx512.c), one
 * 64-weight chunk per register with low nibbles below and high nibbles above, plus the fifth
 * bits from qh. dpwssd applies the two sub-block scales. Exact integer sums folded as the
 * scalar code does (kq_loop_x86): equals quant_q5_k_vec_dot bit for bit.
 */
#include "quant/q8_k.h"
#include "quant/q8_k_x86.h"
#include "quant/quant_impl.h"

#include <stddef.h>

#define SEL16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
static const int16_t CHUNK_SEL[4][32] __attribute__((aligned(64))) = {
    {SEL16(0), SEL16(1)}, {SEL16(2), SEL16(3)}, {SEL16(4), SEL16(5)}, {SEL16(6), SEL16(7)}};
#undef SEL16

static inline void q5k_block(const void *vx, const void *vy, __m256i *isum, __m256i *msum) {
    const block_q5_k *x = vx;
    const block_q8_k *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    const __m128i sm = kq_unpack_k4_x86(x->scales);
    const __m512i scales = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(sm));
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
    *msum = _mm256_madd_epi16(
        _mm256_loadu_si256((const __m256i *)y->bsums),
        _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16)));
    __m256i qh = _mm256_loadu_si256((const __m256i *)x->qh);
    __m512i sum[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * c));
        const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(qh, one), 4);
        const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4);
        qh = _mm256_srli_epi16(qh, 2);
        const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
        const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
        const __m512i qq = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        const __m512i p = _mm512_maddubs_epi16(qq, _mm512_loadu_si512(y->qs + 64 * c));
        sum[c & 1] = _mm512_dpwssd_epi32(
            sum[c & 1], p, _mm512_permutexvar_epi16(_mm512_load_si512(CHUNK_SEL[c]), scales));
    }
    const __m512i s = _mm512_add_epi32(sum[0], sum[1]);
    *isum = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
}

void quant_q5_k_vec_dot_avx512(int64_t n, float *out, const void *vx, const void *vy) {
    *out = kq_loop_x86(n / QK_K, vx, sizeof(block_q5_k), vy, q5k_block, offsetof(block_q5_k, d),
                       offsetof(block_q5_k, dmin), 1);
}

const quant_impl quant_q5_k_avx512 = {NULL, NULL, quant_q5_k_vec_dot_avx512, NULL, 0};
