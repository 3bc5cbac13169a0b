/*
 * The CUDA backend's paged KV cache and attention against the CPU backend's on the same
 * batches: stores to pool slots through shuffled block tables of two sequences interleaved in
 * one batch, decode steps after a prefill, copy-on-write block copies, sliding-window layers
 * whose per-sequence rings wrap, with forks, and a long cache that decode splits across
 * blocks. Outputs agree within 2e-3 of their largest value (the CPU rounds the softmax
 * weights to F16 before mixing V, the device does not). The operands are plain host memory,
 * staged by each op; without a GPU every test skips.
 */
#include "model/backend.h"

#include "core/alloc.h"
#include "test.h"
#include "cuda_test.h"
#include "device_attention.h"

#include <math.h>

TEST(pool_blocks_and_decode) {
    NEED_CUDA(dev);
    da_pool_blocks_and_decode(model_backend_cuda_new, dev);
}

TEST(sliding_window_rings) {
    NEED_CUDA(dev);
    da_sliding_window_rings(model_backend_cuda_new, dev);
}

/* One sequence 600 positions deep through a reversed block table, then decode steps: few
 * query rows over a long cache, which the device splits across blocks and merges; then a
 * window of 300 over the same depth (rings of 300 + 48 rows). */
TEST(long_cache_split_decode) {
    NEED_CUDA(dev);
    enum { DEPTH = 600, BLOCKS = (DEPTH + 8 + KV_BLOCK - 1) / KV_BLOCK };
    static int32_t table[2 * BLOCKS], none[2 * BLOCKS];
    for (int32_t j = 0; j < 2 * BLOCKS; j++) table[j] = 2 * BLOCKS - 1 - j;
    const int32_t *tables[2] = {table, none};
    for (int window = 0; window < 2; window++) {
        const bool swa[1] = {true};
        model_backend_shape s = window ? da_shape(300, swa, 640) : da_shape(0, NULL, 640);
        pair p;
        CHECK(pair_new(model_backend_cuda_new, dev, &s, &p));
        int32_t seq[MAX_TOK] = {0}, pos[MAX_TOK];
        for (int32_t p0 = 0; p0 < DEPTH; p0 += MAX_TOK) {
            const int64_t n = DEPTH - p0 < MAX_TOK ? DEPTH - p0 : MAX_TOK;
            for (int64_t t = 0; t < n; t++) pos[t] = p0 + (int32_t)t;
            CHECK_MSG(step(&p, seq, pos, n, tables, window ? "window prefill" : "prefill"),
                      "positions %d..", p0);
        }
        for (int32_t i = 0; i < 4; i++) {
            int32_t ds[1] = {0}, dp[1] = {DEPTH + i};
            CHECK_MSG(step(&p, ds, dp, 1, tables, window ? "window decode" : "deep decode"),
                      "step %d", i);
        }
        pair_free(&p);
    }
}

int main(void) {
    RUN(pool_blocks_and_decode);
    RUN(sliding_window_rings);
    RUN(long_cache_split_decode);
    return t_summary();
}
