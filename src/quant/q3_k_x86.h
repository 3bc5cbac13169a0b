/*
 * Q3_K x Q8_K dot product for 256-bit x86 registers, compiled into q3_k_avx2.c and (with VNNI)
 * q3_k_avx512.c. Quants are used as unsigned 0..7 (2 low bits plus 4 * the hmask bit), which
 * maddubs can take; the -4 offset returns as 4 * sum(sc * bsum). Each 32-weight step covers two
 * 16-weight sub-blocks, one per 128-bit lane. Exact integer sums folded as the scalar code does
 * (kq_loop_x86): equals quant_q3_k_vec_dot bit for bit.
 */
#include "quant/q8_k.h"
#include "quant/q8_k_x86.h"

#include <stddef.h>

/* The 16 signed scales as int16, from the packed 12 bytes, in registers (kq_q3_scales). */
static inline __m256i q3k_scales16(const uint8_t *packed) {
    uint32_t a[3];
    memcpy(a, packed, 12);
    const uint32_t m4 = 0x0f0f0f0fu, m2 = 0x03030303u;
    const __m128i v = _mm_set_epi32((int)(((a[1] >> 4) & m4) | (((a[2] >> 6) & m2) << 4)),
                                    (int)(((a[0] >> 4) & m4) | (((a[2] >> 4) & m2) << 4)),
                                    (int)((a[1] & m4) | (((a[2] >> 2) & m2) << 4)),
                                    (int)((a[0] & m4) | ((a[2] & m2) << 4)));
    return _mm256_cvtepi8_epi16(_mm_sub_epi8(v, _mm_set1_epi8(32)));
}

static inline void q3k_block(const void *vx, const void *vy, __m256i *isum, __m256i *msum) {
    const block_q3_k *x = vx;
    const block_q8_k *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    const __m256i sc16 = q3k_scales16(x->scales);
    const __m256i offs = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), sc16);
    __m256i hm = _mm256_loadu_si256((const __m256i *)x->hmask);
    __m256i sum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m256i sch = kq_bcast_lane(sc16, h);
        __m256i qs = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * h));
        const int8_t *q8 = y->qs + 128 * h;
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            /* hmask bit 4h+k of byte l belongs to weight 128h + 32k + l. */
            const __m256i hb = _mm256_slli_epi16(_mm256_and_si256(hm, one), 2);
            const __m256i q = _mm256_or_si256(_mm256_and_si256(qs, m3), hb);
            qs = _mm256_srli_epi16(qs, 2);
            hm = _mm256_srli_epi16(hm, 1);
            const __m256i p =
                _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)(q8 + 32 * k)));
            sum[k & 1] = KQ_MADD_ACC(sum[k & 1], p, kq_pair_scales(sch, k));
        }
    }
    *isum = _mm256_sub_epi32(_mm256_add_epi32(sum[0], sum[1]), _mm256_slli_epi32(offs, 2));
    *msum = _mm256_setzero_si256();
}

void KQ_ISA(quant_q3_k_vec_dot)(int64_t n, float *out, const void *vx, const void *vy) {
    *out = kq_loop_x86(n / QK_K, vx, sizeof(block_q3_k), vy, q3k_block, offsetof(block_q3_k, d),
                       offsetof(block_q3_k, d), 0);
}
