/*
 * Tests of the CUDA device layer (src/cuda/device.cu, or src/cuda/stub.c in a build without
 * nvcc). Without a GPU: device queries and context creation fail cleanly with OB_ERR_UNSUPPORTED
 * and "no CUDA device: using the CPU (<why>)", leave outputs empty, and the copy statistics
 * stay at zero. With a GPU: device properties, buffers, the counted copy path (bytes and count
 * per direction), the out-of-memory message, and the checked-call message.
 */
#include "cuda/cuda_backend.h"

#include "gguf/qtype.h"
#include "test.h"

#include <stdint.h>

/* Under AddressSanitizer the CUDA driver maps memory where ASan's shadow gap would be; this is
 * the documented setting that lets the two coexist (it has no effect without ASan). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "protect_shadow_gap=0"; }

static cuda_ctx *g_ctx;
static ob_err g_why;

/* The context shared by the GPU tests, or NULL (with g_why saying why). */
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

TEST(build_flag_matches) {
#ifdef OB_HAVE_CUDA
    CHECK(cuda_compiled());
#else
    CHECK(!cuda_compiled());
#endif
}

/* Either there is a device, or the status and message say there is none and why. */
TEST(device_count_is_clean) {
    ob_err err = {{0}};
    int n = -1;
    ob_status st = cuda_device_count(&n, &err);
    if (st == OB_OK) {
        CHECK(n > 0);
        return;
    }
    CHECK_EQ_INT(n, 0);
    CHECK_STATUS(st, OB_ERR_UNSUPPORTED, &err, "no CUDA device: using the CPU (");
    CHECK(strncmp(err.msg, "no CUDA device: using the CPU (", 31) == 0);
    fprintf(stderr, "  (%s)\n", err.msg);
#ifndef OB_HAVE_CUDA
    CHECK(strstr(err.msg, "built without CUDA") != NULL);
#endif
}

/* With no device, a context is refused with the same message and nothing is left allocated;
 * the other entry points tolerate the empty handles. */
TEST(no_device_context_refused) {
    int n = 0;
    ob_err e1 = {{0}}, e2 = {{0}};
    if (cuda_device_count(&n, &e1) == OB_OK) SKIP("a GPU is present; the no-device path is not reachable");
    cuda_ctx *c = (cuda_ctx *)(uintptr_t)1;
    CHECK_STATUS(cuda_ctx_new(0, &c, &e2), OB_ERR_UNSUPPORTED, &e2, "no CUDA device: using the CPU");
    CHECK(c == NULL);
    CHECK_EQ_STR(e1.msg, e2.msg);
    cuda_device_info info;
    ob_err e3 = {{0}};
    CHECK_STATUS(cuda_device_get_info(0, &info, &e3), OB_ERR_UNSUPPORTED, &e3, "no CUDA device");
    cuda_ctx_free(NULL);
    cuda_buf_free(NULL, NULL);
    cuda_weight_free(NULL, NULL);
}

TEST(copy_stats_start_at_zero_and_reset) {
    cuda_copy_stats s;
    cuda_copy_stats_reset();
    cuda_copy_stats_get(&s);
    CHECK(s.h2d_bytes == 0 && s.h2d_count == 0 && s.d2h_bytes == 0 && s.d2h_count == 0);
}

/* Zero-length weights or types without kernels are refused before touching the device. */
TEST(type_support_table) {
    if (!cuda_compiled()) {
        CHECK(!cuda_type_supported(OB_QTYPE_Q4_0));
        return;
    }
    static const uint32_t yes[] = {OB_QTYPE_F32,  OB_QTYPE_F16,  OB_QTYPE_BF16,   OB_QTYPE_Q4_0,
                                   OB_QTYPE_Q4_1, OB_QTYPE_Q5_0, OB_QTYPE_Q5_1,   OB_QTYPE_Q8_0,
                                   OB_QTYPE_Q2_K, OB_QTYPE_Q3_K, OB_QTYPE_Q4_K,   OB_QTYPE_Q5_K,
                                   OB_QTYPE_Q6_K, OB_QTYPE_IQ4_NL, OB_QTYPE_IQ4_XS};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) CHECK(cuda_type_supported(yes[i]));
    CHECK(!cuda_type_supported(OB_QTYPE_Q8_K));
    CHECK(!cuda_type_supported(OB_QTYPE_IQ2_XXS));
    CHECK(!cuda_type_supported(12345));
}

/* ---- with a GPU --------------------------------------------------------------------------- */

TEST(device_properties) {
    NEED_GPU(c);
    cuda_device_info info;
    ob_err err = {{0}};
    CHECK_EQ_INT(cuda_device_get_info(0, &info, &err), OB_OK);
    fprintf(stderr, "  device 0: %s, cc %d.%d, %d SMs, %zu of %zu bytes free, cuBLAS %s\n",
            info.name, info.cc_major, info.cc_minor, info.sm_count, info.mem_free,
            info.mem_total, cuda_ctx_has_cublas(c) ? "loaded" : "absent");
    CHECK(info.name[0] != 0);
    CHECK(info.sm_count > 0 && info.cc_major >= 5);
    /* the calibration key carries it; a driver that runs sm_80 kernels is CUDA 11 or later */
    CHECK_MSG(info.driver_version >= 11000, "driver version %d", info.driver_version);
    CHECK(info.mem_total > 0 && info.mem_free <= info.mem_total);
    int n = 0;
    CHECK_EQ_INT(cuda_device_count(&n, &err), OB_OK);
    CHECK_STATUS(cuda_device_get_info(n, &info, &err), OB_ERR_ARG, &err, "device");
}

/* Round trip through a device buffer; the statistics count exactly these bytes and calls. */
TEST(counted_copies_round_trip) {
    NEED_GPU(c);
    ob_err err = {{0}};
    enum { N = 100003 }; /* an odd size */
    static uint8_t src[N], dst[N];
    for (int i = 0; i < N; i++) src[i] = (uint8_t)(i * 7 + 3);
    void *d = NULL;
    CHECK_EQ_INT(cuda_buf_alloc(c, N, "test buffer", &d, &err), OB_OK);
    cuda_copy_stats_reset();
    CHECK_EQ_INT(cuda_copy_h2d(c, d, src, N, &err), OB_OK);
    CHECK_EQ_INT(cuda_copy_d2h(c, dst, d, N, &err), OB_OK);
    CHECK_EQ_INT(cuda_copy_d2h(c, dst, d, 10, &err), OB_OK);
    cuda_copy_stats s;
    cuda_copy_stats_get(&s);
    CHECK_EQ_INT(s.h2d_bytes, N);
    CHECK_EQ_INT(s.h2d_count, 1);
    CHECK_EQ_INT(s.d2h_bytes, N + 10);
    CHECK_EQ_INT(s.d2h_count, 2);
    CHECK(memcmp(src, dst, N) == 0);
    CHECK_EQ_INT(cuda_buf_zero(c, d, N, &err), OB_OK);
    CHECK_EQ_INT(cuda_copy_d2h(c, dst, d, N, &err), OB_OK);
    for (int i = 0; i < N; i++) CHECK(dst[i] == 0);
    cuda_buf_free(c, d);
}

/* Asking for more than the card has: OB_ERR_NOMEM naming the buffer, bytes needed and free. */
TEST(out_of_memory_message) {
    NEED_GPU(c);
    cuda_device_info info;
    ob_err err = {{0}};
    CHECK_EQ_INT(cuda_device_get_info(0, &info, &err), OB_OK);
    void *d = (void *)1;
    size_t want = info.mem_total + ((size_t)1 << 30);
    CHECK_STATUS(cuda_buf_alloc(c, want, "huge buffer", &d, &err), OB_ERR_NOMEM, &err,
                 "huge buffer: out of device memory: need ");
    char need[64];
    snprintf(need, sizeof need, "need %zu bytes", want);
    CHECK_MSG(strstr(err.msg, need) && strstr(err.msg, " free of "), "%s", err.msg);
    CHECK(d == NULL);
    /* the device is still usable afterwards */
    CHECK_EQ_INT(cuda_buf_alloc(c, 1024, "small buffer", &d, &err), OB_OK);
    cuda_buf_free(c, d);
}

/* A failing runtime call is reported with its call text and the runtime's error string. */
TEST(checked_call_message) {
    NEED_GPU(c);
    ob_err err = {{0}};
    CHECK_STATUS(cuda_buf_zero(c, NULL, 64, &err), OB_ERR_CUDA, &err, "cuda: cudaMemsetAsync(");
    CHECK_MSG(strstr(err.msg, "invalid") != NULL, "%s", err.msg);
    CHECK_EQ_INT(cuda_ctx_sync(c, &err), OB_OK);
}

int main(void) {
    RUN(build_flag_matches);
    RUN(device_count_is_clean);
    RUN(no_device_context_refused);
    RUN(copy_stats_start_at_zero_and_reset);
    RUN(type_support_table);
    RUN(device_properties);
    RUN(counted_copies_round_trip);
    RUN(out_of_memory_message);
    RUN(checked_call_message);
    cuda_ctx_free(g_ctx);
    return t_summary();
}
