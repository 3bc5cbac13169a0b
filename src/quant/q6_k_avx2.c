/*
 * Q6_K x Q8_K dot product, AVX2. The 6-bit quants are used unsigned (0..63) so maddubs can
 * multiply them with the int8 activations; the -32 offset comes back as 32 * sum(sc * bsum).
 * Each 32-weight step covers two 16-weight sub-blocks, one per 128-bit lane, with their two
 * scales selected by kq_pair_scales. Exact integer sums folded as the scalar code does
 * (kq_loop_x86): equals quant_q6_k_vec_dot bit for bit.
 */
#include "quant/q8_k.h"
#include "quant/q8_k_x86.h"
#include "quant/quant_impl.h"

#include <stddef.h>

static inline void q6k_block(const void *vx, const void *vy, __m256i *isum, __m256i *msum) {
    const block_q6_k *x = vx;
    const block_q8_k *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0xF), m3 = _mm256_set1_epi8(3);
    const __m256i m30 = _mm256_set1_epi8(0x30);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
    const __m256i offs = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), sc16);
    __m256i sum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = x->ql + 64 * h;
        const int8_t *q8 = y->qs + 128 * h;
        const __m256i sch = kq_bcast_lane(sc16, h);
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(x->qh + 32 * h));
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                               _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
        q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                               _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                               _mm256_and_si256(qh, m30));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            const __m256i p =
                _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(q8 + 32 * k)));
            sum[k & 1] = _mm256_add_epi32(sum[k & 1], _mm256_madd_epi16(p, kq_pair_scales(sch, k)));
        }
    }
    *isum = _mm256_sub_epi32(_mm256_add_epi32(sum[0], sum[1]), _mm256_slli_epi32(offs, 5));
    *msum = _mm256_setzero_si256();
}

void quant_q6_k_vec_dot_avx2(int64_t n, float *out, const void *vx, const void *vy) {
    *out = kq_loop_x86(n / QK_K, vx, sizeof(block_q6_k), vy, q6k_block, offsetof(block_q6_k, d),
                       offsetof(block_q6_k, d), 0);
}

const quant_impl quant_q6_k_avx2 = {NULL, NULL, quant_q6_k_vec_dot_avx2, NULL, 0};
