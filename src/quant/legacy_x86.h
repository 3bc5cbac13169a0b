/*
 * x86 kernels for the 32-element block types, written once and compiled twice: by
 * legacy_avx2.c (AVX2: int8 products through VPMADDUBSW + VPMADDWD) and by legacy_avx512.c
 * (the same code where x86_dot_i8/x86_dot_u8 become AVX-512 VNNI VPDPBUSD). The including
 * file defines the kernel sets.
 *
 * A block pair gives 8 exact int32 partial sums, converted to float and accumulated as
 * scale * sums with FMA. Each kernel is one always-inlined body specialised by a constant
 * `kind`, so the switch statements fold away and each type gets straight-line code.
 *
 * The tile kernel unpacks each weight block once for up to four activation rows (batched
 * prompt processing) and reads the weights as one sequential stream.
 */
#ifndef OB_QUANT_LEGACY_X86_H
#define OB_QUANT_LEGACY_X86_H

#include "quant/simd_x86.h"

#define LEGACY_INLINE static inline __attribute__((always_inline))

enum { LK_Q4_0, LK_Q4_1, LK_Q5_0, LK_Q5_1, LK_Q8_0, LK_Q8_1 };

/* Bytes per weight block and per activation block. */
LEGACY_INLINE size_t lk_xsize(int kind) {
    static const size_t S[] = {18, 20, 22, 24, 34, 36};
    return S[kind];
}
LEGACY_INLINE size_t lk_ysize(int kind) {
    return kind == LK_Q4_1 || kind == LK_Q5_1 || kind == LK_Q8_1 ? 36 : 34;
}
/* Whether the pair has the m_x * s_y offset term (weight types with a minimum). */
LEGACY_INLINE int lk_has_min(int kind) { return kind == LK_Q4_1 || kind == LK_Q5_1; }

LEGACY_INLINE float lk_half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return x86_f16(h);
}

/* 8 int32 partial sums of one weight block (x) times one activation block (y). */
LEGACY_INLINE __m256i lk_block(int kind, const uint8_t *x, const uint8_t *y) {
    const __m256i qy = _mm256_loadu_si256((const __m256i *)(y + lk_ysize(kind) - 32));
    __m256i qx;
    switch (kind) {
    case LK_Q4_0:
        qx = _mm256_sub_epi8(x86_nibbles32(x + 2), _mm256_set1_epi8(8));
        return x86_dot_i8(qx, qy);
    case LK_Q4_1: return x86_dot_u8(x86_nibbles32(x + 4), qy);
    case LK_Q5_0:
        /* q - 16 as a signed byte: where the high bit is clear, OR-ing 0xf0 onto the nibble
         * gives exactly nibble - 16; where it is set, the nibble itself is q - 16 */
        qx = _mm256_or_si256(x86_nibbles32(x + 6),
                             _mm256_andnot_si256(x86_bits32(x + 2), _mm256_set1_epi8((char)0xf0)));
        return x86_dot_i8(qx, qy);
    case LK_Q5_1:
        qx = _mm256_or_si256(x86_nibbles32(x + 8),
                             _mm256_and_si256(x86_bits32(x + 4), _mm256_set1_epi8(0x10)));
        return x86_dot_u8(qx, qy);
    case LK_Q8_0: return x86_dot_i8(_mm256_loadu_si256((const __m256i *)(x + 2)), qy);
    default: return x86_dot_i8(_mm256_loadu_si256((const __m256i *)(x + 4)), qy);
    }
}

/* Sum over blocks of m_x * s_y (zero for types without a minimum). */
LEGACY_INLINE float lk_min_sum(int kind, int64_t nb, const uint8_t *x, const uint8_t *y) {
    float s = 0.0f;
    if (!lk_has_min(kind)) return s;
    for (int64_t i = 0; i < nb; i++)
        s += lk_half(x + i * lk_xsize(kind) + 2) * lk_half(y + i * lk_ysize(kind) + 2);
    return s;
}

/* One row pair, two accumulators to hide the FMA latency. */
LEGACY_INLINE float lk_vec_dot(int kind, int64_t n, const uint8_t *x, const uint8_t *y) {
    const size_t xs = lk_xsize(kind), ys = lk_ysize(kind);
    const int64_t nb = n / 32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        const uint8_t *x0 = x + i * xs, *y0 = y + i * ys;
        __m256 d0 = _mm256_set1_ps(lk_half(x0) * lk_half(y0));
        __m256 d1 = _mm256_set1_ps(lk_half(x0 + xs) * lk_half(y0 + ys));
        acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(lk_block(kind, x0, y0)), acc0);
        acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(lk_block(kind, x0 + xs, y0 + ys)), acc1);
    }
    if (i < nb) {
        __m256 d0 = _mm256_set1_ps(lk_half(x + i * xs) * lk_half(y + i * ys));
        acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(lk_block(kind, x + i * xs, y + i * ys)),
                               acc0);
    }
    return x86_hsum_ps(_mm256_add_ps(acc0, acc1)) + lk_min_sum(kind, nb, x, y);
}

/* One weight row x RY activation rows (RY <= 4, a constant after inlining):
 * out[c * os] = dot(x, y row c). Each weight block is unpacked once for all RY rows. Each row
 * accumulates exactly as lk_vec_dot does (even blocks in one accumulator, odd blocks in the
 * other, then their sum), so a token's result does not depend on how many tokens share the
 * matmul: a sequence decoded alone and one decoded in a batch get the same bits. */
LEGACY_INLINE void lk_micro_block(int kind, int RY, const uint8_t *xb, const uint8_t *y,
                                  size_t ystride, __m256 *acc) {
    const float dx = lk_half(xb);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const uint8_t *yb = y + c * ystride;
        acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(dx * lk_half(yb)),
                                 _mm256_cvtepi32_ps(lk_block(kind, xb, yb)), acc[c]);
    }
}

LEGACY_INLINE void lk_micro(int kind, int RY, int64_t nb, float *out, size_t os,
                            const uint8_t *x, const uint8_t *y, size_t ystride) {
    const size_t xs = lk_xsize(kind), ys = lk_ysize(kind);
    __m256 acc0[4], acc1[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc0[c] = acc1[c] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        lk_micro_block(kind, RY, x + i * xs, y + i * ys, ystride, acc0);
        lk_micro_block(kind, RY, x + (i + 1) * xs, y + (i + 1) * ys, ystride, acc1);
    }
    if (i < nb) lk_micro_block(kind, RY, x + i * xs, y + i * ys, ystride, acc0);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++)
        out[c * os] = x86_hsum_ps(_mm256_add_ps(acc0[c], acc1[c])) +
                      lk_min_sum(kind, nb, x, y + c * ystride);
}

/* The whole tile: activation rows in groups of four, weight rows one at a time, so the weights
 * are read as one sequential stream (which the hardware prefetcher follows; several
 * interleaved short row streams it does not) while the activation rows stay in L1. */
LEGACY_INLINE void lk_tile(int kind, int64_t n, int64_t nx, int64_t ny, float *out, size_t os,
                           const void *xv, size_t xstride, const void *yv, size_t ystride) {
    const uint8_t *x = xv, *y = yv;
    const int64_t nb = n / 32;
    for (int64_t c = 0; c < ny; c += 4) {
        const uint8_t *yc = y + c * ystride;
        float *oc = out + c * os;
        for (int64_t r = 0; r < nx; r++) {
            const uint8_t *xr = x + r * xstride;
            switch (ny - c) {
            case 1: oc[r] = lk_vec_dot(kind, n, xr, yc); break;
            case 2: lk_micro(kind, 2, nb, oc + r, os, xr, yc, ystride); break;
            case 3: lk_micro(kind, 3, nb, oc + r, os, xr, yc, ystride); break;
            default: lk_micro(kind, 4, nb, oc + r, os, xr, yc, ystride);
            }
        }
    }
}

/* ---- entry points ---- */

static void x86_q4_0_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    *out = lk_vec_dot(LK_Q4_0, n, x, y);
}
static void x86_q4_1_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    *out = lk_vec_dot(LK_Q4_1, n, x, y);
}
static void x86_q5_0_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    *out = lk_vec_dot(LK_Q5_0, n, x, y);
}
static void x86_q5_1_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    *out = lk_vec_dot(LK_Q5_1, n, x, y);
}
static void x86_q8_0_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    *out = lk_vec_dot(LK_Q8_0, n, x, y);
}
static void x86_q8_1_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    *out = lk_vec_dot(LK_Q8_1, n, x, y);
}

#define LEGACY_TILE_FN(name, kind)                                                              \
    static void name(int64_t n, int64_t nx, int64_t ny, float *out, size_t os, const void *x,   \
                     size_t xs, const void *y, size_t ys) {                                     \
        lk_tile(kind, n, nx, ny, out, os, x, xs, y, ys);                                        \
    }
LEGACY_TILE_FN(x86_q4_0_dot_tile, LK_Q4_0)
LEGACY_TILE_FN(x86_q4_1_dot_tile, LK_Q4_1)
LEGACY_TILE_FN(x86_q5_0_dot_tile, LK_Q5_0)
LEGACY_TILE_FN(x86_q5_1_dot_tile, LK_Q5_1)
LEGACY_TILE_FN(x86_q8_0_dot_tile, LK_Q8_0)
LEGACY_TILE_FN(x86_q8_1_dot_tile, LK_Q8_1)

/* ---- Q8_0 / Q8_1 quantizers (bit-exact with the scalar ones: act false the reference
 * from_f32, act true act_from_f32) ---- */

LEGACY_INLINE void lk_q8_0_quantize(const float *src, void *dst, int64_t n, bool act) {
    quant_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int sum;
        b[i].d = quant_to_f16(x86_quantize_q8_block(src + 32 * i, b[i].qs, &sum, act));
    }
}

LEGACY_INLINE void lk_q8_1_quantize(const float *src, void *dst, int64_t n, bool act) {
    quant_block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int sum;
        float d = x86_quantize_q8_block(src + 32 * i, b[i].qs, &sum, act);
        b[i].d = quant_to_f16(d);
        b[i].s = quant_to_f16((float)sum * d);
    }
}

static void x86_q8_0_from_f32(const float *src, void *dst, int64_t n) {
    lk_q8_0_quantize(src, dst, n, false);
}
static void x86_q8_0_act_from_f32(const float *src, void *dst, int64_t n) {
    lk_q8_0_quantize(src, dst, n, true);
}
static void x86_q8_1_from_f32(const float *src, void *dst, int64_t n) {
    lk_q8_1_quantize(src, dst, n, false);
}
static void x86_q8_1_act_from_f32(const float *src, void *dst, int64_t n) {
    lk_q8_1_quantize(src, dst, n, true);
}

#endif
