/*
 * Q5_K x Q8_K dot product, AVX2: the Q4_K kernel (q4_k_avx2.c) with the fifth bit of each
 * quant taken from qh (bit 2c for chunk c's low nibbles, 2c+1 for its high nibbles) before
 * maddubs; quants stay within 0..31. Exact integer sums folded as the scalar code does
 * (kq_loop_x86): equals quant_q5_k_vec_dot bit for bit.
 */
#include "quant/q8_k.h"
#include "quant/q8_k_x86.h"
#include "quant/quant_impl.h"

#include <stddef.h>

static inline void q5k_block(const void *vx, const void *vy, __m256i *isum, __m256i *msum) {
    const block_q5_k *x = vx;
    const block_q8_k *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    const __m128i sm = kq_unpack_k4_x86(x->scales); /* 8 scales, 8 mins */
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
    const __m256i s16x2 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    *msum = _mm256_madd_epi16(
        _mm256_loadu_si256((const __m256i *)y->bsums),
        _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16)));
    __m256i qh = _mm256_loadu_si256((const __m256i *)x->qh);
    __m256i sum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * c));
        const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(qh, one), 4);
        const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4);
        qh = _mm256_srli_epi16(qh, 2); /* next chunk's bits to positions 0 and 1 */
        const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
        const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
        const int8_t *q8 = y->qs + 64 * c;
        const __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
        const __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
        const __m256i sc = kq_bcast16(s16x2, 2 * c), sc1 = kq_bcast16(s16x2, 2 * c + 1);
        sum[0] = _mm256_add_epi32(sum[0], _mm256_madd_epi16(p0, sc));
        sum[1] = _mm256_add_epi32(sum[1], _mm256_madd_epi16(p1, sc1));
    }
    *isum = _mm256_add_epi32(sum[0], sum[1]);
}

void quant_q5_k_vec_dot_avx2(int64_t n, float *out, const void *vx, const void *vy) {
    *out = kq_loop_x86(n / QK_K, vx, sizeof(block_q5_k), vy, q5k_block, offsetof(block_q5_k, d),
                       offsetof(block_q5_k, dmin), 1);
}

const quant_impl quant_q5_k_avx2 = {NULL, NULL, quant_q5_k_vec_dot_avx2, NULL, 0};
