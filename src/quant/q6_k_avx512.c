/*
 * Q6_K x Q8_K dot product, AVX-512 (BW + VNNI). A 64-byte load of ql gives, in its low
 * nibbles, weights 0..63 of a 128-weight half and, in its high nibbles, weights 64..127; the
 * matching high bits come from qh and qh >> 2 placed side by side. Each 128-bit lane is one
 * 16-weight sub-block, so vpermw spreads the 16 scales lane by lane and dpwssd applies them.
 * The -32 offset returns as 32 * sum(sc * bsum). Exact integer sums folded as the scalar code
 * does (kq_loop_x86): equals quant_q6_k_vec_dot bit for bit.
 */
#include "quant/q8_k.h"
#include "quant/q8_k_x86.h"
#include "quant/quant_impl.h"

#include <stddef.h>

/* vpermw indices: int16 lane i of step s (64 weights) belongs to sub-block 4s + i/8. */
#define SEL8(v) v, v, v, v, v, v, v, v
static const int16_t STEP_SEL[4][32]
    __attribute__((aligned(64))) = {{SEL8(0), SEL8(1), SEL8(2), SEL8(3)},
                                    {SEL8(4), SEL8(5), SEL8(6), SEL8(7)},
                                    {SEL8(8), SEL8(9), SEL8(10), SEL8(11)},
                                    {SEL8(12), SEL8(13), SEL8(14), SEL8(15)}};
#undef SEL8

static inline void q6k_block(const void *vx, const void *vy, __m256i *isum, __m256i *msum) {
    const block_q6_k *x = vx;
    const block_q8_k *y = vy;
    const __m512i m4 = _mm512_set1_epi8(0xF), m3 = _mm512_set1_epi8(3);
    const __m512i m30 = _mm512_set1_epi8(0x30);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
    const __m512i scz = _mm512_castsi256_si512(sc16);
    const __m256i offs = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), sc16);
    __m512i sum[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m512i ql = _mm512_loadu_si512(x->ql + 64 * h);
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(x->qh + 32 * h));
        const __m512i qhz =
            _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
        const __m512i qa = _mm512_or_si512(_mm512_and_si512(ql, m4),
                                           _mm512_slli_epi16(_mm512_and_si512(qhz, m3), 4));
        const __m512i qb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                           _mm512_and_si512(qhz, m30));
        const int8_t *q8 = y->qs + 128 * h;
        const __m512i pa = _mm512_maddubs_epi16(qa, _mm512_loadu_si512(q8));
        const __m512i pb = _mm512_maddubs_epi16(qb, _mm512_loadu_si512(q8 + 64));
        sum[0] = _mm512_dpwssd_epi32(
            sum[0], pa, _mm512_permutexvar_epi16(_mm512_load_si512(STEP_SEL[2 * h]), scz));
        sum[1] = _mm512_dpwssd_epi32(
            sum[1], pb, _mm512_permutexvar_epi16(_mm512_load_si512(STEP_SEL[2 * h + 1]), scz));
    }
    const __m512i s = _mm512_add_epi32(sum[0], sum[1]);
    const __m256i s8 = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
    *isum = _mm256_sub_epi32(s8, _mm256_slli_epi32(offs, 5));
    *msum = _mm256_setzero_si256();
}

void quant_q6_k_vec_dot_avx512(int64_t n, float *out, const void *vx, const void *vy) {
    *out = kq_loop_x86(n / QK_K, vx, sizeof(block_q6_k), vy, q6k_block, offsetof(block_q6_k, d),
                       offsetof(block_q6_k, d), 0);
}

const quant_impl quant_q6_k_avx512 = {NULL, NULL, quant_q6_k_vec_dot_avx512, NULL, 0};
