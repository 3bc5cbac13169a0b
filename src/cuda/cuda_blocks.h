/*
 * Decoding of GGUF tensor blocks, 32 elements at a time, written once for both the GPU kernels
 * and the host. Under nvcc the functions are __host__ __device__; under a C compiler they are
 * plain static inline C, so tests/cuda/blocks_test.c checks every type's decoding against the
 * scalar reference in src/quant (quant_traits_ref) on a machine without a GPU. The kernels in
 * matmul.cu call nothing else to read weights, so what the host test shows holds for them.
 *
 * A "chunk" is 32 consecutive elements of a row: chunk c covers elements [32c, 32c + 32). Every
 * block type here has a block size that is a multiple of 32, so a chunk never straddles two
 * blocks, and each type's decoder finds its chunk's block, scales and bits directly. Plain
 * float types (F32, F16, BF16) have no blocks; their last chunk may be short (guarded by n).
 *
 * Layouts are GGUF's byte for byte (the same as src/quant/quant_impl.h and gguf/quants.py);
 * multi-byte fields are little-endian and read byte by byte, since blocks are not aligned.
 */
#ifndef OB_CUDA_BLOCKS_H
#define OB_CUDA_BLOCKS_H

#include <stdint.h>

#ifdef __CUDACC__
#define CB_FN static __host__ __device__ __forceinline__
#else
#define CB_FN static inline
#endif

/* Bytes per block and elements per block of the types the CUDA kernels decode. */
#define CB_QK 32   /* legacy quants and IQ4_NL */
#define CB_QKK 256 /* K-quants and IQ4_XS */

CB_FN uint16_t cb_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

CB_FN uint32_t cb_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

/* IEEE half to float by bit manipulation (subnormals, infinities and NaN included), so host
 * and device agree exactly without depending on cuda_fp16.h in C. */
CB_FN float cb_f16(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {
        /* subnormal: value = man * 2^-24, renormalised */
        exp = 113;
        while (!(man & 0x400)) {
            man <<= 1;
            exp--;
        }
        bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
    }
    union {
        uint32_t u;
        float f;
    } v;
    v.u = bits;
    return v.f;
}

CB_FN float cb_bf16(uint16_t h) {
    union {
        uint32_t u;
        float f;
    } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}

/* The 16 IQ4 code points (ggml's kvalues_iq4nl), fixed by the format: -127, -104, -83, -65,
 * -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113, packed as bytes of two 64-bit constants
 * so the lookup stays in registers (an indexed array would live in slow local memory). */
CB_FN int cb_iq4_value(int q) {
    const uint64_t lo = 0xf6eaddcfbfad9881ull, hi = 0x7159453526190d01ull;
    return (int8_t)(((q & 8) ? hi : lo) >> (8 * (q & 7)));
}

/* ---- plain float types: chunk c of a row of n elements; a short last chunk is zero-padded */

CB_FN void cb_chunk_f32(const uint8_t *row, int64_t c, int64_t n, float *y) {
    const float *x = (const float *)row; /* F32 rows are 4-byte aligned in GGUF */
    for (int i = 0; i < 32; i++) y[i] = 32 * c + i < n ? x[32 * c + i] : 0.0f;
}

CB_FN void cb_chunk_f16(const uint8_t *row, int64_t c, int64_t n, float *y) {
    const uint16_t *x = (const uint16_t *)row;
    for (int i = 0; i < 32; i++) y[i] = 32 * c + i < n ? cb_f16(x[32 * c + i]) : 0.0f;
}

CB_FN void cb_chunk_bf16(const uint8_t *row, int64_t c, int64_t n, float *y) {
    const uint16_t *x = (const uint16_t *)row;
    for (int i = 0; i < 32; i++) y[i] = 32 * c + i < n ? cb_bf16(x[32 * c + i]) : 0.0f;
}

/* ---- legacy quants: one 32-element block per chunk ---------------------------------------- */

/* Q8_0 (34 bytes): f16 d, int8 qs[32]; x = q * d. */
CB_FN void cb_chunk_q8_0(const uint8_t *row, int64_t c, int64_t n, float *y) {
    const uint8_t *b = row + c * 34;
    float d = cb_f16(cb_u16(b));
    for (int i = 0; i < 32; i++) y[i] = d * (float)(int8_t)b[2 + i];
}

/* Q4_0 (18 bytes): f16 d, qs[16]; low nibble of qs[j] = element j, high = j + 16; x = (q-8)d. */
CB_FN void cb_chunk_q4_0(const uint8_t *row, int64_t c, int64_t n, float *y) {
    const uint8_t *b = row + c * 18;
    float d = cb_f16(cb_u16(b));
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((b[2 + j] & 15) - 8);
        y[j + 16] = d * (float)((b[2 + j] >> 4) - 8);
    }
}

/* Q4_1 (20 bytes): f16 d, f16 m, qs[16]; x = q * d + m. */
CB_FN void cb_chunk_q4_1(const uint8_t *row, int64_t c, int64_t n, float *y) {
    const uint8_t *b = row + c * 20;
    float d = cb_f16(cb_u16(b)), m = cb_f16(cb_u16(b + 2));
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)(b[4 + j] & 15) + m;
        y[j + 16] = d * (float)(b[4 + j] >> 4) + m;
    }
}

/* Q5_0 (22 bytes): f16 d, u32 qh, qs[16]; bit j of qh is bit 4 of element j; x = (q-16)d. */
CB_FN void cb_chunk_q5_0(const uint8_t *row, int64_t c, int64_t n, float *y) {
    const uint8_t *b = row + c * 22;
    float d = cb_f16(cb_u16(b));
    uint32_t qh = cb_u32(b + 2);
    for (int j = 0; j < 16; j++) {
        int lo = (b[6 + j] & 15) | (int)(((qh >> j) << 4) & 0x10);
        int hi = (b[6 + j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
        y[j] = d * (float)(lo - 16);
        y[j + 16] = d * (float)(hi - 16);
    }
}

/* Q5_1 (24 bytes): f16 d, f16 m, u32 qh, qs[16]; x = q * d + m. */
CB_FN void cb_chunk_q5_1(const uint8_t *row, int64_t c, int64_t n, float *y) {
    const uint8_t *b = row + c * 24;
    float d = cb_f16(cb_u16(b)), m = cb_f16(cb_u16(b + 2));
    uint32_t qh = cb_u32(b + 4);
    for (int j = 0; j < 16; j++) {
        int lo = (b[8 + j] & 15) | (int)(((qh >> j) << 4) & 0x10);
        int hi = (b[8 + j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
        y[j] = d * (float)lo + m;
        y[j + 16] = d * (float)hi + m;
    }
}

/* IQ4_NL (18 bytes): f16 d, qs[16] of 4-bit indices into the code points; x = d * kv[q]. */
CB_FN void cb_chunk_iq4_nl(const uint8_t *row, int64_t c, int64_t n, float *y) {
    const uint8_t *b = row + c * 18;
    float d = cb_f16(cb_u16(b));
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)cb_iq4_value(b[2 + j] & 15);
        y[j + 16] = d * (float)cb_iq4_value(b[2 + j] >> 4);
    }
}

/* ---- K-quants and IQ4_XS: 256-element super-blocks, 8 chunks each ------------------------- */

/* Q2_K (84 bytes): scales[16] (low nibble scale, high nibble min), qs[64], f16 d, f16 dmin.
 * Each 128-element half uses qs[32]; chunk k of the half takes 2-bit field k of those bytes,
 * elements 0..15 from qs[0..16) with scale 2k, 16..31 from qs[16..32) with scale 2k + 1. */
CB_FN void cb_chunk_q2_k(const uint8_t *row, int64_t c, int64_t n, float *y) {
    const uint8_t *b = row + (c / 8) * 84;
    int half = (int)(c % 8) / 4, k = (int)(c % 4), shift = 2 * k;
    float d = cb_f16(cb_u16(b + 80)), dmin = cb_f16(cb_u16(b + 82));
    const uint8_t *q = b + 16 + 32 * half;
    for (int g = 0; g < 2; g++) {
        uint8_t sc = b[half * 8 + 2 * k + g];
        float dl = d * (float)(sc & 15), ml = dmin * (float)(sc >> 4);
        for (int l = 0; l < 16; l++) y[16 * g + l] = dl * (float)((q[16 * g + l] >> shift) & 3) - ml;
    }
}

/* Q3_K (110 bytes): hmask[32], qs[64], scales[12] (16 packed 6-bit scales, offset 32), f16 d.
 * Same walk as Q2_K; a clear hmask bit (bit 4 * half + k) subtracts 4 from the 2-bit value. */
CB_FN void cb_chunk_q3_k(const uint8_t *row, int64_t c, int64_t n, float *y) {
    const uint8_t *b = row + (c / 8) * 110;
    int half = (int)(c % 8) / 4, k = (int)(c % 4), shift = 2 * k;
    float d = cb_f16(cb_u16(b + 108));
    const uint8_t *hm = b, *q = b + 32 + 32 * half, *s = b + 96;
    uint8_t m = (uint8_t)(1u << (4 * half + k));
    for (int g = 0; g < 2; g++) {
        int is = half * 8 + 2 * k + g;
        /* scale is: low 4 bits from s[is % 8] (nibble is / 8), high 2 bits from s[8 + is % 4]
         * (bit pair is / 4) */
        int lo = (s[is % 8] >> (4 * (is / 8))) & 15;
        int hi = (s[8 + is % 4] >> (2 * (is / 4))) & 3;
        float dl = d * (float)((lo | (hi << 4)) - 32);
        for (int l = 0; l < 16; l++) {
            int i = 16 * g + l;
            int v = ((q[i] >> shift) & 3) - ((hm[i] & m) ? 0 : 4);
            y[i] = dl * (float)v;
        }
    }
}

/* The 6-bit scale and min of sub-block j (0..7) of Q4_K / Q5_K (ggml's get_scale_min_k4). */
CB_FN void cb_scale_min_k4(int j, const uint8_t *q, int *sc, int *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q4_K (144 bytes): f16 d, f16 dmin, scales[12], qs[128]. Chunk c (sub-block c) reads
 * qs[32 * (c / 2) ..][32], low nibbles for even c, high for odd; x = d*sc*q - dmin*m. */
CB_FN void cb_chunk_q4_k(const uint8_t *row, int64_t c, int64_t n, float *y) {
    const uint8_t *b = row + (c / 8) * 144;
    int j = (int)(c % 8), sc, mn;
    cb_scale_min_k4(j, b + 4, &sc, &mn);
    float d = cb_f16(cb_u16(b)) * (float)sc, m = cb_f16(cb_u16(b + 2)) * (float)mn;
    const uint8_t *q = b + 16 + 32 * (j / 2);
    int shift = 4 * (j % 2);
    for (int l = 0; l < 32; l++) y[l] = d * (float)((q[l] >> shift) & 15) - m;
}

/* Q5_K (176 bytes): f16 d, f16 dmin, scales[12], qh[32], qs[128]; as Q4_K with bit j of
 * qh[l] as the fifth bit. */
CB_FN void cb_chunk_q5_k(const uint8_t *row, int64_t c, int64_t n, float *y) {
    const uint8_t *b = row + (c / 8) * 176;
    int j = (int)(c % 8), sc, mn;
    cb_scale_min_k4(j, b + 4, &sc, &mn);
    float d = cb_f16(cb_u16(b)) * (float)sc, m = cb_f16(cb_u16(b + 2)) * (float)mn;
    const uint8_t *qh = b + 16, *q = b + 48 + 32 * (j / 2);
    int shift = 4 * (j % 2);
    for (int l = 0; l < 32; l++) {
        int v = ((q[l] >> shift) & 15) | (((qh[l] >> j) & 1) << 4);
        y[l] = d * (float)v - m;
    }
}

/* Q6_K (210 bytes): ql[128], qh[64], int8 scales[16], f16 d. Each 128-element half uses
 * ql[64], qh[32], scales[8]; its group g (0..3) of 32 takes ql[l + 32 * (g & 1)], nibble g / 2,
 * and bits 2g..2g+1 of qh[l]; scale index l / 16 + 2g; x = d * scale * (q - 32). */
CB_FN void cb_chunk_q6_k(const uint8_t *row, int64_t c, int64_t n, float *y) {
    const uint8_t *b = row + (c / 8) * 210;
    int half = (int)(c % 8) / 4, g = (int)(c % 4);
    float d = cb_f16(cb_u16(b + 208));
    const uint8_t *ql = b + 64 * half + 32 * (g & 1), *qh = b + 128 + 32 * half;
    const int8_t *sc = (const int8_t *)(b + 192 + 8 * half);
    for (int l = 0; l < 32; l++) {
        int v = ((ql[l] >> (4 * (g / 2))) & 15) | (((qh[l] >> (2 * g)) & 3) << 4);
        y[l] = d * (float)sc[l / 16 + 2 * g] * (float)(v - 32);
    }
}

/* IQ4_XS (136 bytes): f16 d, u16 scales_h, scales_l[4], qs[128]. Sub-block j has the 6-bit
 * scale (nibble j%2 of scales_l[j/2]) | (bits 2j..2j+1 of scales_h) << 4, offset 32, and its
 * 16 bytes of qs hold elements l (low nibble) and l + 16 (high nibble). */
CB_FN void cb_chunk_iq4_xs(const uint8_t *row, int64_t c, int64_t n, float *y) {
    const uint8_t *b = row + (c / 8) * 136;
    int j = (int)(c % 8);
    int ls = ((b[4 + j / 2] >> (4 * (j % 2))) & 15) | (((cb_u16(b + 2) >> (2 * j)) & 3) << 4);
    float dl = cb_f16(cb_u16(b)) * (float)(ls - 32);
    const uint8_t *q = b + 8 + 16 * j;
    for (int l = 0; l < 16; l++) {
        y[l] = dl * (float)cb_iq4_value(q[l] & 15);
        y[l + 16] = dl * (float)cb_iq4_value(q[l] >> 4);
    }
}

#endif
