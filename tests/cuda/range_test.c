/*
 * Tests of src/cuda/range.c: KV-cache sizing (runs anywhere), and with a GPU the cache
 * allocation and its out-of-memory message, weights uploaded once per host address, and the
 * staging of host activations (copies counted) versus device activations (no copies), checked
 * end to end through an op.
 */
#include "cuda/cuda_range.h"

#include "gguf/qtype.h"
#include "test.h"

#include <stdint.h>

const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "protect_shadow_gap=0"; } /* see device_test.c */

static cuda_ctx *g_ctx;
static ob_err g_why;

static cuda_ctx *gpu(void) {
    static int tried;
    if (!tried) {
        tried = 1;
        if (cuda_ctx_new(0, &g_ctx, &g_why)) g_ctx = NULL;
    }
    return g_ctx;
}

#define NEED_GPU(c)                                                                            \
    cuda_ctx *c = gpu();                                                                        \
    if (!c) SKIP("skipped: no GPU (%s)", g_why.msg)

/* 8B shape: 32 layers x 8192 positions x 8 KV heads x 128 x 2 bytes x (K, V) = 1 GiB. */
TEST(kv_bytes) {
    cuda_range_shape s = {32, 8192, 8, 128};
    size_t b = 0;
    ob_err err;
    CHECK_EQ_INT(cuda_range_kv_bytes(&s, &b, &err), OB_OK);
    CHECK(b == (size_t)1 << 30);
    s.n_ctx = INT64_MAX / 4;
    CHECK_STATUS(cuda_range_kv_bytes(&s, &b, &err), OB_ERR_LIMIT, &err, "KV cache");
    s.n_ctx = -1;
    CHECK_STATUS(cuda_range_kv_bytes(&s, &b, &err), OB_ERR_LIMIT, &err, "overflows");
}

TEST(host_pointers_are_not_device) {
    static float x[16];
    CHECK(!cuda_ptr_is_device(x));
    CHECK(!cuda_ptr_is_device(NULL));
    float y = 0;
    CHECK(!cuda_ptr_is_device(&y));
}

TEST(cache_layout_and_oom) {
    NEED_GPU(c);
    cuda_range_shape s = {3, 100, 2, 64};
    cuda_range *r = NULL;
    ob_err err;
    CHECK_EQ_INT(cuda_range_new(c, &s, &r, &err), OB_OK);
    CHECK(cuda_ptr_is_device(cuda_range_k(r, 0)) && cuda_ptr_is_device(cuda_range_v(r, 2)));
    CHECK(cuda_range_k(r, 1) - cuda_range_k(r, 0) == 100 * 2 * 64);
    CHECK(cuda_range_v(r, 0) != cuda_range_k(r, 0));
    cuda_range_free(r);
    cuda_device_info info;
    CHECK_EQ_INT(cuda_device_get_info(0, &info, &err), OB_OK);
    s.n_ctx = (int64_t)(info.mem_total / (3 * 2 * 64 * 2)) + 1000; /* K alone exceeds memory */
    CHECK_STATUS(cuda_range_new(c, &s, &r, &err), OB_ERR_NOMEM, &err, "KV cache (K): out of device memory: need ");
    CHECK(r == NULL);
}

/* The same host weight twice: one upload, the same device copy. */
TEST(weights_uploaded_once) {
    NEED_GPU(c);
    cuda_range_shape s = {1, 8, 1, 32};
    cuda_range *r = NULL;
    ob_err err;
    CHECK_EQ_INT(cuda_range_new(c, &s, &r, &err), OB_OK);
    static float w[200][64], norm[64];
    const cuda_weight *a = NULL, *b = NULL;
    cuda_copy_stats before, after;
    cuda_copy_stats_get(&before);
    for (int i = 0; i < 200; i++) /* enough entries to grow the table twice */
        CHECK_EQ_INT(cuda_range_weight(r, "w", w[i], OB_QTYPE_F32, 64, 1, &a, &err), OB_OK);
    CHECK_EQ_INT(cuda_range_weight(r, "w", w[7], OB_QTYPE_F32, 64, 1, &a, &err), OB_OK);
    CHECK_EQ_INT(cuda_range_weight(r, "w", w[7], OB_QTYPE_F32, 64, 1, &b, &err), OB_OK);
    CHECK(a == b && a->data_dev != NULL);
    const float *nd = NULL;
    CHECK_EQ_INT(cuda_range_vector(r, "norm", norm, 64, &nd, &err), OB_OK);
    cuda_copy_stats_get(&after);
    CHECK_EQ_INT(after.h2d_count - before.h2d_count, 201);
    CHECK_EQ_INT(cuda_range_weight_bytes(r), 201 * 64 * 4);
    cuda_range_free(r);
}

/* x += y through the staging path with host buffers (copies counted) and with device buffers
 * (no copies); the results agree with the host sum exactly. */
TEST(staging_host_and_device) {
    NEED_GPU(c);
    cuda_range_shape s = {1, 8, 1, 32};
    cuda_range *r = NULL;
    ob_err err;
    CHECK_EQ_INT(cuda_range_new(c, &s, &r, &err), OB_OK);
    enum { N = 1000 };
    static float x[N], y[N], want[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)i * 0.5f;
        y[i] = (float)(N - i);
        want[i] = x[i] + y[i];
    }
    cuda_copy_stats before, after;
    cuda_copy_stats_get(&before);
    const void *xd, *yd;
    void *od;
    CHECK_EQ_INT(cuda_range_stage_in(r, 0, x, sizeof x, &xd, &err), OB_OK);
    CHECK_EQ_INT(cuda_range_stage_in(r, 1, y, sizeof y, &yd, &err), OB_OK);
    CHECK_EQ_INT(cuda_range_stage_out(r, 0, x, sizeof x, &od, &err), OB_OK);
    CHECK(od == xd); /* in place: the output slot is the input's */
    CHECK_EQ_INT(cuda_add(c, od, yd, N, &err), OB_OK);
    CHECK_EQ_INT(cuda_range_stage_back(r, 0, x, sizeof x, &err), OB_OK);
    cuda_copy_stats_get(&after);
    CHECK_EQ_INT(after.h2d_count - before.h2d_count, 2);
    CHECK_EQ_INT(after.d2h_count - before.d2h_count, 1);
    CHECK(memcmp(x, want, sizeof x) == 0);
    /* device buffers pass through untouched and cost no copies */
    void *dx = NULL;
    CHECK_EQ_INT(cuda_buf_alloc(c, sizeof x, "dx", &dx, &err), OB_OK);
    cuda_copy_stats_get(&before);
    CHECK_EQ_INT(cuda_range_stage_in(r, 2, dx, sizeof x, &xd, &err), OB_OK);
    CHECK_EQ_INT(cuda_range_stage_out(r, 2, dx, sizeof x, &od, &err), OB_OK);
    CHECK_EQ_INT(cuda_range_stage_back(r, 2, dx, sizeof x, &err), OB_OK);
    cuda_copy_stats_get(&after);
    CHECK(xd == dx && od == dx);
    CHECK_EQ_INT(after.h2d_count + after.d2h_count, before.h2d_count + before.d2h_count);
    CHECK_STATUS(cuda_range_stage_in(r, CUDA_RANGE_SLOTS, x, 4, &xd, &err), OB_ERR_ARG, &err, "slot");
    cuda_buf_free(c, dx);
    cuda_range_free(r);
}

int main(void) {
    RUN(kv_bytes);
    RUN(host_pointers_are_not_device);
    RUN(cache_layout_and_oom);
    RUN(weights_uploaded_once);
    RUN(staging_host_and_device);
    cuda_ctx_free(g_ctx);
    return t_summary();
}
