/*
 * Q2_K x Q8_K dot product for 256-bit x86 registers, compiled into q2_k_avx2.c and (with VNNI)
 * q2_k_avx512.c. Quants 0..3 go straight into maddubs; each 32-weight step covers two
 * 16-weight sub-blocks, one per 128-bit lane, weighted by their 4-bit scales. The mins act
 * through the activation's 16-sums. Exact integer sums folded as the scalar code does
 * (kq_loop_x86): equals quant_q2_k_vec_dot bit for bit.
 */
#include "quant/q8_k.h"
#include "quant/q8_k_x86.h"

#include <stddef.h>

static inline void q2k_block(const void *vx, const void *vy, __m256i *isum, __m256i *msum) {
    const block_q2_k *x = vx;
    const block_q8_k *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0xF);
    const __m128i raw = _mm_loadu_si128((const __m128i *)x->scales);
    const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(raw, m4));
    const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
    *msum = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), mn16);
    __m256i sum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m256i sch = kq_bcast_lane(sc16, h);
        __m256i qs = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * h));
        const int8_t *q8 = y->qs + 128 * h;
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            const __m256i q = _mm256_and_si256(qs, m3);
            qs = _mm256_srli_epi16(qs, 2);
            const __m256i p =
                _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)(q8 + 32 * k)));
            sum[k & 1] = KQ_MADD_ACC(sum[k & 1], p, kq_pair_scales(sch, k));
        }
    }
    *isum = _mm256_add_epi32(sum[0], sum[1]);
}

void KQ_ISA(quant_q2_k_vec_dot)(int64_t n, float *out, const void *vx, const void *vy) {
    *out = kq_loop_x86(n / QK_K, vx, sizeof(block_q2_k), vy, q2k_block, offsetof(block_q2_k, d),
                       offsetof(block_q2_k, dmin), 1);
}
