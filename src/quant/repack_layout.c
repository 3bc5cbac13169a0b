/*
 * The interleaved weight layouts of the repacked kernels, written for any group height: the
 * AVX2 kernels take groups of 8 rows (one int32 lane per row in a 256-bit register), and the
 * AVX-512 kernels' layouts (repack_avx512.c, repack_k_avx512.c, which describe them in full)
 * are the same ones at 16 rows. Plain C: repacking runs once at load, on any CPU.
 *
 * A "piece" is 4 * rows bytes: 4 consecutive quants of each row, row r at bytes 4r..4r+3, so
 * one register holds the same 4 elements of every row of the group and a 4-byte broadcast of
 * activation quants meets all of them at once.
 */
#include "quant/pack.h"

#include "quant/iq4_nl.h"
#include "quant/q8_k.h"

void quant_rp_pack_q4_0(const void *src, size_t stride, void *dst, int64_t n, int rows) {
    const size_t piece = 4 * (size_t)rows;
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / 32; b++, o += (size_t)rows * 18) {
        for (int r = 0; r < rows; r++) {
            const uint8_t *blk = (const uint8_t *)src + r * stride + b * 18;
            memcpy(o + 2 * r, blk, 2);
            for (int g = 0; g < 4; g++) memcpy(o + 2 * rows + piece * g + 4 * r, blk + 2 + 4 * g, 4);
        }
    }
}

void quant_rp_pack_q5_0(const void *src, size_t stride, void *dst, int64_t n, int rows) {
    const size_t piece = 4 * (size_t)rows;
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / 32; b++, o += (size_t)rows * 22) {
        for (int r = 0; r < rows; r++) {
            const quant_block_q5_0 *x =
                (const quant_block_q5_0 *)((const uint8_t *)src + r * stride) + b;
            uint32_t qh;
            memcpy(&qh, x->qh, 4);
            memcpy(o + 2 * r, &x->d, 2);
            for (int g = 0; g < 4; g++) memcpy(o + 2 * rows + piece * g + 4 * r, x->qs + 4 * g, 4);
            for (int k = 0; k < 4; k++) {
                uint8_t h = 0;
                for (int g = 0; g < 4; g++)
                    h |= (uint8_t)(((qh >> (4 * g + k)) & 1) << g |
                                   ((qh >> (16 + 4 * g + k)) & 1) << (4 + g));
                o[2 * rows + piece * 4 + 4 * r + k] = h;
            }
        }
    }
}

void quant_rp_pack_q8_0(const void *src, size_t stride, void *dst, int64_t n, int rows,
                        uint8_t flip) {
    const size_t piece = 4 * (size_t)rows;
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / 32; b++, o += (size_t)rows * 34) {
        for (int r = 0; r < rows; r++) {
            const uint8_t *blk = (const uint8_t *)src + r * stride + b * 34;
            memcpy(o + 2 * r, blk, 2);
            for (int g = 0; g < 8; g++)
                for (int k = 0; k < 4; k++)
                    o[2 * rows + piece * g + 4 * r + k] = (uint8_t)(blk[2 + 4 * g + k] ^ flip);
        }
    }
}

/* Byte offset of chunk c's quants in a Q4_K (five 0) or Q5_K (five 1) super-block column of
 * `rows` rows: Q4_K's right after the 16 * rows bytes of scales, Q5_K's each behind its two
 * pieces of fifth bits (so every load of the kernel follows the last in memory). */
static size_t k4_chunk(int five, int c, int rows) {
    return (size_t)rows * (16 + (five ? 40 : 32) * (size_t)c + (five ? 8 : 0));
}

/* Row r's d, dmin, scale words and nibbles into a Q4_K or Q5_K super-block column. */
static void k4_pack_row(uint8_t *o, int five, int r, int rows, const uint16_t *d,
                        const uint16_t *dmin, const uint8_t *scales, const uint8_t *qs) {
    const size_t piece = 4 * (size_t)rows;
    memcpy(o + 2 * r, d, 2);
    memcpy(o + 2 * rows + 2 * r, dmin, 2);
    for (int k = 0; k < 3; k++) memcpy(o + piece * (1 + k) + 4 * r, scales + 4 * k, 4);
    for (int c = 0; c < 4; c++)
        for (int g = 0; g < 8; g++)
            memcpy(o + k4_chunk(five, c, rows) + piece * g + 4 * r, qs + 32 * c + 4 * g, 4);
}

void quant_rp_pack_q4_k(const void *src, size_t stride, void *dst, int64_t n, int rows) {
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / QK_K; b++, o += (size_t)rows * sizeof(block_q4_k)) {
        for (int r = 0; r < rows; r++) {
            const block_q4_k *x = (const block_q4_k *)((const uint8_t *)src + r * stride) + b;
            k4_pack_row(o, 0, r, rows, &x->d, &x->dmin, x->scales, x->qs);
        }
    }
}

void quant_rp_pack_q5_k(const void *src, size_t stride, void *dst, int64_t n, int rows) {
    const size_t piece = 4 * (size_t)rows;
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / QK_K; b++, o += (size_t)rows * sizeof(block_q5_k)) {
        for (int c = 0; c < 4; c++) memset(o + k4_chunk(1, c, rows) - 2 * piece, 0, 2 * piece);
        for (int r = 0; r < rows; r++) {
            const block_q5_k *x = (const block_q5_k *)((const uint8_t *)src + r * stride) + b;
            k4_pack_row(o, 1, r, rows, &x->d, &x->dmin, x->scales, x->qs);
            for (int c = 0; c < 4; c++)
                for (int g = 0; g < 8; g++)
                    for (int k = 0; k < 4; k++) {
                        const int l = 4 * g + k; /* qh[l]: bits 2c, 2c + 1 */
                        uint8_t *h = o + k4_chunk(1, c, rows) - 2 * piece + 4 * r + k;
                        h[0] |= (uint8_t)(((x->qh[l] >> (2 * c)) & 1) << g);
                        h[piece] |= (uint8_t)(((x->qh[l] >> (2 * c + 1)) & 1) << g);
                    }
        }
    }
}

/* The 256 quants of a Q6_K super-block as unsigned 0..63, in element order (the reference
 * dequantization's walk: two halves of 128, each four runs of 32). */
static void q6_unpack(const block_q6_k *x, uint8_t u[QK_K]) {
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = x->ql + 64 * h, *qh = x->qh + 32 * h;
        uint8_t *o = u + 128 * h;
        for (int l = 0; l < 32; l++) {
            o[l] = (uint8_t)((ql[l] & 0xF) | ((qh[l] & 3) << 4));
            o[l + 32] = (uint8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
            o[l + 64] = (uint8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
            o[l + 96] = (uint8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
        }
    }
}

void quant_rp_pack_q6_k(const void *src, size_t stride, void *dst, int64_t n, int rows) {
    const size_t piece = 4 * (size_t)rows, block = (size_t)rows * sizeof(block_q6_k);
    uint8_t *o = dst;
    uint8_t u[QK_K];
    for (int64_t b = 0; b < n / QK_K; b++, o += block) {
        memset(o, 0, block);
        for (int r = 0; r < rows; r++) {
            const block_q6_k *x = (const block_q6_k *)((const uint8_t *)src + r * stride) + b;
            q6_unpack(x, u);
            memcpy(o + 2 * r, &x->d, 2);
            for (int k = 0; k < 8; k++)
                memcpy(o + 2 * rows + 2 * rows * k + 2 * r, x->scales + 2 * k, 2);
            for (int c = 0; c < 8; c++) {
                uint8_t *ch = o + 18 * rows + 6 * piece * c;
                for (int g = 0; g < 4; g++)
                    for (int k = 0; k < 4; k++) {
                        const int ua = u[32 * c + 4 * g + k];
                        const int ub = u[32 * c + 16 + 4 * g + k];
                        ch[piece * (2 + g) + 4 * r + k] = (uint8_t)((ua & 15) | (ub & 15) << 4);
                        ch[4 * r + k] |= (uint8_t)((ua >> 4) << (2 * g));
                        ch[piece + 4 * r + k] |= (uint8_t)((ub >> 4) << (2 * g));
                    }
            }
        }
    }
}

void quant_rp_pack_iq4_xs(const void *src, size_t stride, void *dst, int64_t n, int rows) {
    const size_t piece = 4 * (size_t)rows;
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / QK_K; b++, o += (size_t)rows * sizeof(block_iq4_xs)) {
        for (int r = 0; r < rows; r++) {
            const block_iq4_xs *x = (const block_iq4_xs *)((const uint8_t *)src + r * stride) + b;
            memcpy(o + 2 * r, &x->d, 2);
            memcpy(o + 2 * rows + 4 * r, x->scales_l, 4);
            memcpy(o + 6 * rows + 2 * r, &x->scales_h, 2);
            for (int s = 0; s < 8; s++)
                for (int g = 0; g < 4; g++)
                    memcpy(o + 8 * rows + piece * (4 * s + g) + 4 * r, x->qs + 16 * s + 4 * g, 4);
        }
    }
}

void quant_rp_pack_q2_k(const void *src, size_t stride, void *dst, int64_t n, int rows) {
    const size_t piece = 4 * (size_t)rows, block = (size_t)rows * sizeof(block_q2_k);
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / QK_K; b++, o += block) {
        memset(o, 0, block);
        for (int r = 0; r < rows; r++) {
            const block_q2_k *x = (const block_q2_k *)((const uint8_t *)src + r * stride) + b;
            memcpy(o + 2 * r, &x->d, 2);
            memcpy(o + 2 * rows + 2 * r, &x->dmin, 2);
            for (int k = 0; k < 4; k++) memcpy(o + piece * (1 + k) + 4 * r, x->scales + 4 * k, 4);
            for (int j = 0; j < QK_K; j++) { /* element j: see q2_k.c */
                const int q = (x->qs[32 * (j / 128) + j % 32] >> (2 * ((j % 128) / 32))) & 3;
                const int c = j / 32, g = (j % 32) / 4, k = j % 4;
                o[piece * (5 + 2 * c + g / 4) + 4 * r + k] |= (uint8_t)(q << (2 * (g % 4)));
            }
        }
    }
}

/* The 256 quants of a Q3_K super-block as u = quant + 4 (0..7), in element order. */
static void q3_unpack(const block_q3_k *x, uint8_t u[QK_K]) {
    for (int j = 0; j < QK_K; j++) {
        const int half = j / 128, pair = (j % 128) / 32, l = j % 32;
        const int lo = (x->qs[32 * half + l] >> (2 * pair)) & 3;
        u[j] = (uint8_t)(lo | (((x->hmask[l] >> (j / 32)) & 1) << 2));
    }
}

void quant_rp_pack_q3_k(const void *src, size_t stride, void *dst, int64_t n, int rows) {
    const size_t piece = 4 * (size_t)rows, block = (size_t)rows * sizeof(block_q3_k);
    uint8_t *o = dst;
    uint8_t u[QK_K];
    for (int64_t b = 0; b < n / QK_K; b++, o += block) {
        memset(o, 0, block);
        for (int r = 0; r < rows; r++) {
            const block_q3_k *x = (const block_q3_k *)((const uint8_t *)src + r * stride) + b;
            q3_unpack(x, u);
            memcpy(o + 2 * r, &x->d, 2);
            for (int k = 0; k < 3; k++)
                memcpy(o + 2 * rows + piece * k + 4 * r, x->scales + 4 * k, 4);
            for (int c = 0; c < 8; c++) {
                uint8_t *ch = o + 14 * (size_t)rows + 3 * piece * c;
                for (int g = 0; g < 8; g++)
                    for (int k = 0; k < 4; k++) {
                        const int v = u[32 * c + 4 * g + k];
                        ch[4 * r + k] |= (uint8_t)((v >> 2) << g);
                        ch[piece * (1 + g / 4) + 4 * r + k] |= (uint8_t)((v & 3) << (2 * (g % 4)));
                    }
            }
        }
    }
}
