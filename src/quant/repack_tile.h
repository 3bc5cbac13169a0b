/*
 * The loop every repacked dot-product kernel shares (repack_x86.h for AVX-512, repack_avx2.h
 * for AVX2, the NEON files): weight rows in groups of ROWS interleaved rows, activation rows
 * four at a time (or up to eight, for kernels whose unpacking more rows should share), the
 * group kernel instantiated once per activation-row count.
 */
#ifndef OB_QUANT_REPACK_TILE_H
#define OB_QUANT_REPACK_TILE_H

#include <stddef.h>
#include <stdint.h>

/* Defines NAME, a quant_dot_tile_fn on repacked weights: nx rows (nx / ROWS groups, xstride
 * bytes apart) x ny activation rows, four at a time, through
 *     GROUP(KIND, RY, n, out, os, x, y, ys)
 * with RY (1..4) a constant, so the group kernel is compiled once per row count. */
#define REPACK_DEFINE_DOT(NAME, GROUP, KIND, ROWS)                                              \
    static void NAME(int64_t n, int64_t nx, int64_t ny, float *out, size_t os, const void *xv,  \
                     size_t xstride, const void *yv, size_t ystride) {                         \
        const uint8_t *x = xv, *y = yv;                                                        \
        for (int64_t r = 0; r < nx; r += (ROWS)) {                                             \
            const uint8_t *xr = x + (r / (ROWS)) * xstride;                                    \
            for (int64_t c = 0; c < ny; c += 4) {                                              \
                const uint8_t *yc = y + c * ystride;                                           \
                float *oc = out + c * os + r;                                                  \
                switch (ny - c) {                                                              \
                case 1: GROUP(KIND, 1, n, oc, os, xr, yc, ystride); break;                     \
                case 2: GROUP(KIND, 2, n, oc, os, xr, yc, ystride); break;                     \
                case 3: GROUP(KIND, 3, n, oc, os, xr, yc, ystride); break;                     \
                default: GROUP(KIND, 4, n, oc, os, xr, yc, ystride);                           \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

/* NAME as REPACK_DEFINE_DOT, activation rows COLS at a time (COLS <= 8; an expression of KIND
 * when the run length differs by type), through GROUP with RY (1..8) a constant. */
#define REPACK_DEFINE_DOT8(NAME, GROUP, KIND, ROWS, COLS)                                       \
    static void NAME(int64_t n, int64_t nx, int64_t ny, float *out, size_t os, const void *xv,  \
                     size_t xstride, const void *yv, size_t ystride) {                         \
        const uint8_t *x = xv, *y = yv;                                                        \
        for (int64_t r = 0; r < nx; r += (ROWS)) {                                             \
            const uint8_t *xr = x + (r / (ROWS)) * xstride;                                    \
            for (int64_t c = 0; c < ny; c += (COLS)) {                                         \
                const uint8_t *yc = y + c * ystride;                                           \
                float *oc = out + c * os + r;                                                  \
                switch (ny - c < (COLS) ? ny - c : (COLS)) {                                   \
                case 1: GROUP(KIND, 1, n, oc, os, xr, yc, ystride); break;                     \
                case 2: GROUP(KIND, 2, n, oc, os, xr, yc, ystride); break;                     \
                case 3: GROUP(KIND, 3, n, oc, os, xr, yc, ystride); break;                     \
                case 4: GROUP(KIND, 4, n, oc, os, xr, yc, ystride); break;                     \
                case 5: GROUP(KIND, 5, n, oc, os, xr, yc, ystride); break;                     \
                case 6: GROUP(KIND, 6, n, oc, os, xr, yc, ystride); break;                     \
                case 7: GROUP(KIND, 7, n, oc, os, xr, yc, ystride); break;                     \
                default: GROUP(KIND, 8, n, oc, os, xr, yc, ystride);                           \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

#endif
