/*
 * Decode-time dot products on 8-bit integers, written once for the GPU kernel (matvec_q8.cu)
 * and the host test (tests/cuda/q8dot_test.c), like cuda_blocks.h.
 *
 * A decode step's products are memory-bound, and decoding every weight to a float left the
 * card far from its bandwidth (an 8B model's products ran at 250-750 GB/s on a 4.8 TB/s card):
 * four instructions per weight. Here the activation row is quantized once per product to int8
 * in 32-element chunks (scale dx, and sx = dx * the sum of the chunk's int8 values), and a
 * weight chunk is unpacked with a few 32-bit operations into 32 signed bytes, so that a chunk's
 * dot product is eight DP4A instructions (four products and a sum each).
 *
 * A weight chunk in this form (cq_chunk) is q[8]: int i holds elements 4i..4i+3, low byte
 * first, as signed bytes; its dot with an activation chunk (xq, dx, sx) is
 *     dx * (a[0] * dot(q[0..3], xq[0..3]) + a[1] * dot(q[4..7], xq[4..7])) + b * sx
 * (two scales for Q6_K's 16-element sub-blocks; b carries the block minimum of the types that
 * have one). Every unpacker must reproduce cb_chunk_* of cuda_blocks.h exactly.
 *
 * Loads: a 32-bit load needs a 4-byte aligned address on the device, and blocks of 18, 22, 34
 * and 210 bytes are only 2-byte aligned, so those read 16-bit halves (cq_ld32_a2).
 */
#ifndef OB_CUDA_Q8_H
#define OB_CUDA_Q8_H

#include "cuda/cuda_blocks.h"

#include <math.h>
#include <stdint.h>

typedef struct cq_chunk {
    int32_t q[8];
    float a[2];
    float b;
} cq_chunk;

/* ---- loads and byte-wise integer operations --------------------------------------------- */

#ifdef __CUDA_ARCH__
CB_FN uint32_t cq_ld32(const uint8_t *p) { return *(const uint32_t *)p; }
CB_FN uint32_t cq_ld32_a2(const uint8_t *p) {
    const uint16_t *h = (const uint16_t *)p;
    return (uint32_t)h[0] | ((uint32_t)h[1] << 16);
}
CB_FN uint16_t cq_ld16(const uint8_t *p) { return *(const uint16_t *)p; }
CB_FN int32_t cq_dp4a(int32_t a, int32_t b, int32_t c) { return __dp4a(a, b, c); }
CB_FN uint32_t cq_vsub4(uint32_t a, uint32_t b) { return __vsub4(a, b); }
#else
CB_FN uint32_t cq_ld32(const uint8_t *p) { return cb_u32(p); }
CB_FN uint32_t cq_ld32_a2(const uint8_t *p) { return cb_u32(p); }
CB_FN uint16_t cq_ld16(const uint8_t *p) { return cb_u16(p); }
CB_FN int32_t cq_dp4a(int32_t a, int32_t b, int32_t c) {
    for (int k = 0; k < 4; k++)
        c += (int32_t)(int8_t)((uint32_t)a >> (8 * k)) * (int32_t)(int8_t)((uint32_t)b >> (8 * k));
    return c;
}
CB_FN uint32_t cq_vsub4(uint32_t a, uint32_t b) { /* per byte, modulo 256 */
    uint32_t r = 0;
    for (int k = 0; k < 4; k++) r |= ((((a >> (8 * k)) - (b >> (8 * k))) & 0xffu) << (8 * k));
    return r;
}
#endif

/* Bits 0..3 of h to bit 4 of bytes 0..3 (the fifth bit of Q5_0/Q5_1 quants). */
CB_FN uint32_t cq_spread4(uint32_t h) {
    return ((h & 1u) << 4) | ((h & 2u) << 11) | ((h & 4u) << 18) | ((h & 8u) << 25);
}

/* Four IQ4 nibbles (one per byte) to their signed code points. */
CB_FN uint32_t cq_iq4_map4(uint32_t n) {
    uint32_t r = 0;
    for (int k = 0; k < 4; k++) r |= ((uint32_t)cb_iq4_value((int)(n >> (8 * k)) & 15) & 0xffu) << (8 * k);
    return r;
}

/* ---- activations ------------------------------------------------------------------------ */

/* 32 floats to int8 (round to nearest, scale amax / 127), packed four to an int. */
CB_FN void cq_quantize_chunk(const float *x, int32_t *xq, float *dx, float *sx) {
    float amax = 0.0f;
    for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
    const float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int i = 0; i < 8; i++) {
        uint32_t packed = 0;
        for (int k = 0; k < 4; k++) {
            float r = rintf(x[4 * i + k] * id);
            int q = (int)fminf(127.0f, fmaxf(-127.0f, r));
            sum += q;
            packed |= ((uint32_t)q & 0xffu) << (8 * k);
        }
        xq[i] = (int32_t)packed;
    }
    *dx = d;
    *sx = d * (float)sum;
}

/* The chunk's dot with an activation chunk (see the top of this file). */
CB_FN float cq_dot(const cq_chunk *w, const int32_t *xq, float dx, float sx) {
    int32_t s0 = 0, s1 = 0;
    for (int i = 0; i < 4; i++) {
        s0 = cq_dp4a(w->q[i], xq[i], s0);
        s1 = cq_dp4a(w->q[4 + i], xq[4 + i], s1);
    }
    return dx * (w->a[0] * (float)s0 + w->a[1] * (float)s1) + w->b * sx;
}

/* ---- weight chunks: chunk c of a row, as cb_chunk_* reads it ------------------------------ */

CB_FN void cq_chunk_q4_0(const uint8_t *row, int64_t c, cq_chunk *w) {
    const uint8_t *b = row + c * 18;
    const float d = cb_f16(cq_ld16(b));
    for (int i = 0; i < 4; i++) {
        uint32_t v = cq_ld32_a2(b + 2 + 4 * i);
        w->q[i] = (int32_t)cq_vsub4(v & 0x0f0f0f0fu, 0x08080808u);
        w->q[4 + i] = (int32_t)cq_vsub4((v >> 4) & 0x0f0f0f0fu, 0x08080808u);
    }
    w->a[0] = w->a[1] = d;
    w->b = 0.0f;
}

CB_FN void cq_chunk_q4_1(const uint8_t *row, int64_t c, cq_chunk *w) {
    const uint8_t *b = row + c * 20;
    const float d = cb_f16(cq_ld16(b)), m = cb_f16(cq_ld16(b + 2));
    for (int i = 0; i < 4; i++) {
        uint32_t v = cq_ld32(b + 4 + 4 * i);
        w->q[i] = (int32_t)(v & 0x0f0f0f0fu);
        w->q[4 + i] = (int32_t)((v >> 4) & 0x0f0f0f0fu);
    }
    w->a[0] = w->a[1] = d;
    w->b = m;
}

CB_FN void cq_chunk_q5_0(const uint8_t *row, int64_t c, cq_chunk *w) {
    const uint8_t *b = row + c * 22;
    const float d = cb_f16(cq_ld16(b));
    const uint32_t qh = cq_ld32_a2(b + 2);
    for (int i = 0; i < 4; i++) {
        uint32_t v = cq_ld32_a2(b + 6 + 4 * i);
        uint32_t lo = (v & 0x0f0f0f0fu) | cq_spread4((qh >> (4 * i)) & 15u);
        uint32_t hi = ((v >> 4) & 0x0f0f0f0fu) | cq_spread4((qh >> (16 + 4 * i)) & 15u);
        w->q[i] = (int32_t)cq_vsub4(lo, 0x10101010u);
        w->q[4 + i] = (int32_t)cq_vsub4(hi, 0x10101010u);
    }
    w->a[0] = w->a[1] = d;
    w->b = 0.0f;
}

CB_FN void cq_chunk_q5_1(const uint8_t *row, int64_t c, cq_chunk *w) {
    const uint8_t *b = row + c * 24;
    const float d = cb_f16(cq_ld16(b)), m = cb_f16(cq_ld16(b + 2));
    const uint32_t qh = cq_ld32(b + 4);
    for (int i = 0; i < 4; i++) {
        uint32_t v = cq_ld32(b + 8 + 4 * i);
        w->q[i] = (int32_t)((v & 0x0f0f0f0fu) | cq_spread4((qh >> (4 * i)) & 15u));
        w->q[4 + i] = (int32_t)(((v >> 4) & 0x0f0f0f0fu) | cq_spread4((qh >> (16 + 4 * i)) & 15u));
    }
    w->a[0] = w->a[1] = d;
    w->b = m;
}

CB_FN void cq_chunk_q8_0(const uint8_t *row, int64_t c, cq_chunk *w) {
    const uint8_t *b = row + c * 34;
    const float d = cb_f16(cq_ld16(b));
    for (int i = 0; i < 8; i++) w->q[i] = (int32_t)cq_ld32_a2(b + 2 + 4 * i);
    w->a[0] = w->a[1] = d;
    w->b = 0.0f;
}

CB_FN void cq_chunk_iq4_nl(const uint8_t *row, int64_t c, cq_chunk *w) {
    const uint8_t *b = row + c * 18;
    const float d = cb_f16(cq_ld16(b));
    for (int i = 0; i < 4; i++) {
        uint32_t v = cq_ld32_a2(b + 2 + 4 * i);
        w->q[i] = (int32_t)cq_iq4_map4(v & 0x0f0f0f0fu);
        w->q[4 + i] = (int32_t)cq_iq4_map4((v >> 4) & 0x0f0f0f0fu);
    }
    w->a[0] = w->a[1] = d;
    w->b = 0.0f;
}

CB_FN void cq_chunk_q4_k(const uint8_t *row, int64_t c, cq_chunk *w) {
    const uint8_t *b = row + (c / 8) * 144;
    const int j = (int)(c % 8), shift = 4 * (j % 2);
    int sc, mn;
    cb_scale_min_k4(j, b + 4, &sc, &mn);
    const uint8_t *q = b + 16 + 32 * (j / 2);
    for (int i = 0; i < 8; i++) w->q[i] = (int32_t)((cq_ld32(q + 4 * i) >> shift) & 0x0f0f0f0fu);
    w->a[0] = w->a[1] = cb_f16(cq_ld16(b)) * (float)sc;
    w->b = -cb_f16(cq_ld16(b + 2)) * (float)mn;
}

CB_FN void cq_chunk_q5_k(const uint8_t *row, int64_t c, cq_chunk *w) {
    const uint8_t *b = row + (c / 8) * 176;
    const int j = (int)(c % 8), shift = 4 * (j % 2);
    int sc, mn;
    cb_scale_min_k4(j, b + 4, &sc, &mn);
    const uint8_t *qh = b + 16, *q = b + 48 + 32 * (j / 2);
    for (int i = 0; i < 8; i++) {
        uint32_t v = (cq_ld32(q + 4 * i) >> shift) & 0x0f0f0f0fu;
        uint32_t h = ((cq_ld32(qh + 4 * i) >> j) & 0x01010101u) << 4;
        w->q[i] = (int32_t)(v | h);
    }
    w->a[0] = w->a[1] = cb_f16(cq_ld16(b)) * (float)sc;
    w->b = -cb_f16(cq_ld16(b + 2)) * (float)mn;
}

CB_FN void cq_chunk_q6_k(const uint8_t *row, int64_t c, cq_chunk *w) {
    const uint8_t *b = row + (c / 8) * 210;
    const int half = (int)(c % 8) / 4, g = (int)(c % 4);
    const float d = cb_f16(cq_ld16(b + 208));
    const uint8_t *ql = b + 64 * half + 32 * (g & 1), *qh = b + 128 + 32 * half;
    const int8_t *sc = (const int8_t *)(b + 192 + 8 * half + 2 * g);
    for (int i = 0; i < 8; i++) {
        uint32_t lo = (cq_ld32_a2(ql + 4 * i) >> (4 * (g / 2))) & 0x0f0f0f0fu;
        uint32_t hi = ((cq_ld32_a2(qh + 4 * i) >> (2 * g)) & 0x03030303u) << 4;
        w->q[i] = (int32_t)cq_vsub4(lo | hi, 0x20202020u);
    }
    w->a[0] = d * (float)sc[0];
    w->a[1] = d * (float)sc[1];
    w->b = 0.0f;
}

CB_FN void cq_chunk_iq4_xs(const uint8_t *row, int64_t c, cq_chunk *w) {
    const uint8_t *b = row + (c / 8) * 136;
    const int j = (int)(c % 8);
    const int ls = ((b[4 + j / 2] >> (4 * (j % 2))) & 15) | (((cq_ld16(b + 2) >> (2 * j)) & 3) << 4);
    const uint8_t *q = b + 8 + 16 * j;
    for (int i = 0; i < 4; i++) {
        uint32_t v = cq_ld32(q + 4 * i);
        w->q[i] = (int32_t)cq_iq4_map4(v & 0x0f0f0f0fu);
        w->q[4 + i] = (int32_t)cq_iq4_map4((v >> 4) & 0x0f0f0f0fu);
    }
    w->a[0] = w->a[1] = cb_f16(cq_ld16(b)) * (float)(ls - 32);
    w->b = 0.0f;
}

#endif
