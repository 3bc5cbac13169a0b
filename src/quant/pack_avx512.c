/*
 * Q4_0 and Q8_0 weights against packed activations, AVX-512 VNNI: the matmul's hot path on
 * CPUs with VPDPBUSD.
 *
 * The activation row is quantized exactly as Q8_0 (same d, same quants) but laid out for the
 * kernel: groups of 16 blocks, each group holding
 *     float d[16]                    the blocks' scales (0 past the end of the row)
 *     8 pairs of { int8 qs[64]; int32 init[16]; }
 * so one 512-bit load gives two blocks' quants, and `init` is the int32 accumulator that
 * VPDPBUSD starts from: -off * sum(qs) of block 2p in lane 0 and of block 2p + 1 in lane 8.
 * VPDPBUSD multiplies unsigned by signed bytes, so the weights enter offset to unsigned (Q4_0:
 * the raw nibble q = w + 8; Q8_0: w ^ 0x80 = w + 128) and the start value removes the offset
 * (off = 8 or 128): each block's lanes then sum to the exact integer dot product, with no sign
 * juggling in the inner loop.
 *
 * Per pair of blocks the kernel does one weight unpack, and per activation row one VPDPBUSD,
 * one int->float conversion, one scale permute and one FMA into 16 float lanes; the 16 weight
 * scales of a group come from word permutes of plain loads. Up to 4 activation rows share each weight unpack.
 * Results equal the Q8_0 reference vec_dot up to float summation order.
 */
#include "quant/pack.h"

#include "quant/simd_x86.h"

#define PK_INLINE static inline __attribute__((always_inline))

enum { PK_Q4_0, PK_Q8_0 };

/* Bytes of one packed row of n elements (n % 32 == 0); a multiple of 64. */
static size_t pk_size(int64_t n) {
    return (size_t)((n / 32 + PK_GROUP - 1) / PK_GROUP) * PK_GROUP_BYTES;
}

/* Quantizes one row (as Q8_0's act_from_f32 does) into the packed layout, start values for a
 * weight offset `off`. n % 32 == 0. */
static void pk_pack(const float *src, uint8_t *dst, int64_t n, int off) {
    const int64_t nb = n / 32;
    if (nb % PK_GROUP) /* the last group's unused blocks must read as zero */
        memset(dst + (nb / PK_GROUP) * PK_GROUP_BYTES, 0, PK_GROUP_BYTES);
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *g = dst + (b / PK_GROUP) * PK_GROUP_BYTES;
        const int j = (int)(b % PK_GROUP);
        uint8_t *pair = g + 64 + (j / 2) * 128;
        int sum;
        float d = x86_quantize_q8_block(src + 32 * b, (int8_t *)pair + 32 * (j & 1), &sum, true);
        d = x86_f16(quant_to_f16(d)); /* the value a Q8_0 block stores */
        memcpy(g + 4 * j, &d, 4);
        /* wrapping, not undefined, when a NaN activation made `sum` garbage */
        const int32_t start = (int32_t)(0u - (uint32_t)off * (uint32_t)sum);
        const __m256i init = _mm256_setr_epi32(start, 0, 0, 0, 0, 0, 0, 0);
        _mm256_storeu_si256((__m256i *)(pair + 64 + 32 * (j & 1)), init);
    }
}

static void pk_pack_q4_0(const float *src, void *dst, int64_t n) { pk_pack(src, dst, n, 8); }
static void pk_pack_q8_0(const float *src, void *dst, int64_t n) { pk_pack(src, dst, n, 128); }

PK_INLINE size_t pk_xsize(int kind) { return kind == PK_Q4_0 ? 18 : 34; }

/* vpermt2w indices that pick block scales out of 128-byte windows of a full group (the f16 d
 * of block j sits at byte j * block size, always an even byte):
 *   Q4_0 (18 bytes): blocks 0-7 from bytes 0..127, blocks 8-15 from bytes 144..271;
 *   Q8_0 (34 bytes): blocks 4k..4k+3 from bytes 128k..128k+127.
 * Lane j of the result (j < 16) is block j's d; the other lanes are not used. */
static const uint16_t Q40_SEL[2][32] __attribute__((aligned(64))) = {
    {0, 9, 18, 27, 36, 45, 54, 63},
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 18, 27, 36, 45, 54, 63}};
static const uint16_t Q80_SEL[4][32] __attribute__((aligned(64))) = {
    {0, 17, 34, 51},
    {0, 0, 0, 0, 4, 21, 38, 55},
    {0, 0, 0, 0, 0, 0, 0, 0, 8, 25, 42, 59},
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 29, 46, 63}};

/* Words of the 128-byte window at x picked by sel. */
PK_INLINE __m512i pk_window(const uint8_t *x, const uint16_t *sel) {
    return _mm512_permutex2var_epi16(_mm512_loadu_si512(x), _mm512_load_si512(sel),
                                     _mm512_loadu_si512(x + 64));
}

/* Scales of the group's first m blocks as floats (lanes >= m are 0). A full group takes them
 * with word permutes of plain loads (a gather is several times slower). */
PK_INLINE __m512 pk_xscales(int kind, const uint8_t *x, int m) {
    if (m == PK_GROUP) {
        __m512i d;
        if (kind == PK_Q4_0) {
            d = _mm512_mask_blend_epi16(0xFF00, pk_window(x, Q40_SEL[0]),
                                        pk_window(x + 144, Q40_SEL[1]));
        } else {
            d = pk_window(x, Q80_SEL[0]);
            d = _mm512_mask_blend_epi16(0x00F0, d, pk_window(x + 128, Q80_SEL[1]));
            d = _mm512_mask_blend_epi16(0x0F00, d, pk_window(x + 256, Q80_SEL[2]));
            d = _mm512_mask_blend_epi16(0xF000, d, pk_window(x + 384, Q80_SEL[3]));
        }
        return _mm512_cvtph_ps(_mm512_castsi512_si256(d));
    }
    uint16_t h[PK_GROUP] = {0};
    for (int j = 0; j < m; j++) memcpy(&h[j], x + j * pk_xsize(kind), 2);
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)h));
}

/* Unsigned quants of blocks b0 and b1 (b1 NULL: zeros) as the 64 bytes of a pair. */
PK_INLINE __m512i pk_pair(int kind, const uint8_t *b0, const uint8_t *b1) {
    if (kind == PK_Q4_0) {
        /* lanes: b0 low nibbles, b0 high nibbles, b1 low, b1 high (element order) */
        __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(b0 + 2)));
        v = b1 ? _mm512_mask_broadcast_i32x4(v, 0xFF00, _mm_loadu_si128((const __m128i *)(b1 + 2)))
               : _mm512_maskz_mov_epi32(0x00FF, v);
        const __m512i shift = _mm512_setr_epi64(0, 0, 0x0004000400040004, 0x0004000400040004,
                                                0, 0, 0x0004000400040004, 0x0004000400040004);
        return _mm512_and_si512(_mm512_srlv_epi16(v, shift), _mm512_set1_epi8(0x0F));
    }
    const __m256i lo = _mm256_loadu_si256((const __m256i *)(b0 + 2));
    const __m256i hi = b1 ? _mm256_loadu_si256((const __m256i *)(b1 + 2)) : _mm256_setzero_si256();
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1),
                            _mm512_set1_epi8((char)0x80));
}

/* One group (m blocks) of one weight row against RY packed rows: acc[c][0..1] += products. */
PK_INLINE void pk_group(int kind, int RY, int m, __m512 acc[][2], const uint8_t *x,
                        const uint8_t *y, size_t ys) {
    const size_t xs = pk_xsize(kind);
    const __m512 dx = pk_xscales(kind, x, m);
    __m512 d[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) d[c] = _mm512_mul_ps(dx, _mm512_loadu_ps(y + c * ys));
#pragma GCC unroll 8
    for (int p = 0; 2 * p < m; p++) {
        const __m512i q = pk_pair(kind, x + 2 * p * xs, 2 * p + 1 < m ? x + (2 * p + 1) * xs : NULL);
        const __m512i sel = _mm512_add_epi32(
            _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
            _mm512_set1_epi32(2 * p));
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) {
            const uint8_t *yp = y + c * ys + 64 + p * 128;
            const __m512i s = _mm512_dpbusd_epi32(_mm512_loadu_si512(yp + 64), q,
                                                  _mm512_loadu_si512(yp));
            acc[c][p & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s),
                                            _mm512_permutexvar_ps(sel, d[c]), acc[c][p & 1]);
        }
    }
}

/* One weight row against RY (1..4, constant after inlining) packed rows. */
PK_INLINE void pk_row(int kind, int RY, int64_t nb, float *out, size_t os, const uint8_t *x,
                      const uint8_t *y, size_t ys) {
    __m512 acc[4][2];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c][0] = acc[c][1] = _mm512_setzero_ps();
    const size_t xg = PK_GROUP * pk_xsize(kind);
    int64_t g = 0;
    for (; (g + 1) * PK_GROUP <= nb; g++)
        pk_group(kind, RY, PK_GROUP, acc, x + g * xg, y + g * PK_GROUP_BYTES, ys);
    if (g * PK_GROUP < nb)
        pk_group(kind, RY, (int)(nb - g * PK_GROUP), acc, x + g * xg, y + g * PK_GROUP_BYTES, ys);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++)
        out[c * os] = _mm512_reduce_add_ps(_mm512_add_ps(acc[c][0], acc[c][1]));
}

/* nx weight rows x ny packed rows: activation rows in fours, each weight row streamed once per
 * four (its unpacking shared by the four). */
PK_INLINE void pk_tile(int kind, int64_t n, int64_t nx, int64_t ny, float *out, size_t os,
                       const void *xv, size_t xstride, const void *yv, size_t ystride) {
    const uint8_t *x = xv, *y = yv;
    const int64_t nb = n / 32;
    for (int64_t c = 0; c < ny; c += 4) {
        const uint8_t *yc = y + c * ystride;
        float *oc = out + c * os;
        for (int64_t r = 0; r < nx; r++) {
            const uint8_t *xr = x + r * xstride;
            switch (ny - c) {
            case 1: pk_row(kind, 1, nb, oc + r, os, xr, yc, ystride); break;
            case 2: pk_row(kind, 2, nb, oc + r, os, xr, yc, ystride); break;
            case 3: pk_row(kind, 3, nb, oc + r, os, xr, yc, ystride); break;
            default: pk_row(kind, 4, nb, oc + r, os, xr, yc, ystride);
            }
        }
    }
}

static void pk_dot_q4_0(int64_t n, int64_t nx, int64_t ny, float *out, size_t os,
                        const void *x, size_t xs, const void *y, size_t ys) {
    pk_tile(PK_Q4_0, n, nx, ny, out, os, x, xs, y, ys);
}

static void pk_dot_q8_0(int64_t n, int64_t nx, int64_t ny, float *out, size_t os,
                        const void *x, size_t xs, const void *y, size_t ys) {
    pk_tile(PK_Q8_0, n, nx, ny, out, os, x, xs, y, ys);
}

const quant_pack_impl quant_q4_0_pack_avx512 = {pk_size, pk_pack_q4_0, pk_dot_q4_0};
const quant_pack_impl quant_q8_0_pack_avx512 = {pk_size, pk_pack_q8_0, pk_dot_q8_0};
