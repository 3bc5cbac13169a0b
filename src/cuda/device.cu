/*
 * The CUDA device layer: finding devices (a machine without a GPU or driver gets a clean
 * "no CUDA device: using the CPU" status, never a crash), contexts (device, stream, scratch,
 * cuBLAS), device buffers with out-of-memory messages that give bytes needed and free, and the
 * one counted host<->device copy path.
 *
 * The CUDA runtime is linked statically (libcudart_static), so a binary built with CUDA starts
 * on a machine that has no CUDA installed at all; the runtime then finds no driver and every
 * entry point here reports that. cuBLAS is not linked: it is opened with dlopen when a context
 * is created, for the same reason, and prefill falls back to our own kernel when it is absent.
 */
#include "cuda/cuda_impl.cuh"

#include <cublas_v2.h>
#include <dlfcn.h>
#include <atomic>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "core/alloc.h"
}

/* ---- errors ------------------------------------------------------------------------------ */

ob_status cuda_fail_call(ob_err *err, const char *call, cudaError_t e, const char *file,
                         int line) {
    /* file is a path under src/; the base name is enough to find the call */
    const char *base = strrchr(file, '/');
    return ob_fail(err, OB_ERR_CUDA, "cuda: %s: %s (%s:%d)", call, cudaGetErrorString(e),
                   base ? base + 1 : file, line);
}

ob_status cuda_fail_launch(ob_err *err, const char *kernel, cudaError_t e) {
    return ob_fail(err, OB_ERR_CUDA, "cuda: launch %s: %s", kernel, cudaGetErrorString(e));
}

/* ---- faults injected by tests (cuda_fault_set) ---------------------------------------- */

static std::atomic<int> g_fault;

extern "C" void cuda_fault_set(int kind) { g_fault.store(kind); }

/* Whether fault `kind` is pending; it is taken (cleared) when it is. */
static bool fault_take(int kind) {
    int k = kind;
    return g_fault.compare_exchange_strong(k, 0);
}

/* ---- devices ----------------------------------------------------------------------------- */

extern "C" bool cuda_compiled(void) { return true; }

extern "C" ob_status cuda_device_count(int *n, ob_err *err) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    *n = 0;
    if (e == cudaErrorNoDevice || (e == cudaSuccess && count == 0))
        return ob_fail(err, OB_ERR_UNSUPPORTED, "no CUDA device: using the CPU (no device found)");
    if (e == cudaErrorInsufficientDriver)
        return ob_fail(err, OB_ERR_UNSUPPORTED,
                       "no CUDA device: using the CPU (no NVIDIA driver, or one older than "
                       "CUDA %d.%d)",
                       CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
    if (e != cudaSuccess) {
        /* the runtime keeps the error for cudaGetLastError; clear it so later calls start clean */
        (void)cudaGetLastError();
        return ob_fail(err, OB_ERR_UNSUPPORTED, "no CUDA device: using the CPU (%s)",
                       cudaGetErrorString(e));
    }
    *n = count;
    return OB_OK;
}

extern "C" ob_status cuda_device_get_info(int dev, cuda_device_info *out, ob_err *err) {
    int n = 0;
    ob_status st = cuda_device_count(&n, err);
    if (st) return st;
    if (dev < 0 || dev >= n)
        return ob_fail(err, OB_ERR_ARG, "cuda: device %d: there are %d device(s)", dev, n);
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
    memset(out, 0, sizeof *out);
    out->id = dev;
    snprintf(out->name, sizeof out->name, "%s", p.name);
    out->cc_major = p.major;
    out->cc_minor = p.minor;
    out->sm_count = p.multiProcessorCount;
    out->managed = p.managedMemory != 0;
    out->concurrent_managed = p.concurrentManagedAccess != 0;
    CUDA_CHECK(cudaDriverGetVersion(&out->driver_version));
    CUDA_CHECK(cudaSetDevice(dev));
    CUDA_CHECK(cudaMemGetInfo(&out->mem_free, &out->mem_total));
    if (fault_take(3)) out->mem_free = (size_t)64 << 10;
    return OB_OK;
}

/* ---- cuBLAS, opened at run time -------------------------------------------------------- */

typedef cublasStatus_t (*cublas_create_fn)(cublasHandle_t *);
typedef cublasStatus_t (*cublas_destroy_fn)(cublasHandle_t);
typedef cublasStatus_t (*cublas_set_stream_fn)(cublasHandle_t, cudaStream_t);
typedef cublasStatus_t (*cublas_gemm_ex_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t,
                                           int, int, int, const void *, const void *,
                                           cudaDataType, int, const void *, cudaDataType, int,
                                           const void *, void *, cudaDataType, int,
                                           cublasComputeType_t, cublasGemmAlgo_t);

static struct {
    void *lib;
    cublas_create_fn create;
    cublas_destroy_fn destroy;
    cublas_set_stream_fn set_stream;
    cublas_gemm_ex_fn gemm_ex;
} cublas_api;

/* Opens the cuBLAS of the major version these headers describe; false when it is absent (the
 * caller then does without). Called with contexts being created, which the caller serialises. */
static bool cublas_load(void) {
    if (cublas_api.gemm_ex) return true;
    char soname[64];
    snprintf(soname, sizeof soname, "libcublas.so.%d", CUBLAS_VER_MAJOR);
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) return false;
    cublas_api.create = (cublas_create_fn)dlsym(lib, "cublasCreate_v2");
    cublas_api.destroy = (cublas_destroy_fn)dlsym(lib, "cublasDestroy_v2");
    cublas_api.set_stream = (cublas_set_stream_fn)dlsym(lib, "cublasSetStream_v2");
    cublas_api.gemm_ex = (cublas_gemm_ex_fn)dlsym(lib, "cublasGemmEx");
    if (!cublas_api.create || !cublas_api.destroy || !cublas_api.set_stream ||
        !cublas_api.gemm_ex) {
        memset(&cublas_api, 0, sizeof cublas_api);
        dlclose(lib);
        return false;
    }
    cublas_api.lib = lib;
    return true;
}

ob_status cuda_cublas_gemm_f16(cuda_ctx *c, int m, int n, int k, const void *a, int lda,
                               const void *b, int ldb, float *cm, int ldc, ob_err *err) {
    const float one = 1.0f, zero = 0.0f;
    c->gen++;
    cublasStatus_t s = cublas_api.gemm_ex((cublasHandle_t)c->cublas, CUBLAS_OP_T, CUBLAS_OP_N, m,
                                          n, k, &one, a, CUDA_R_16F, lda, b, CUDA_R_16F, ldb,
                                          &zero, cm, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F,
                                          CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS)
        return ob_fail(err, OB_ERR_CUDA, "cuda: cublasGemmEx (%d x %d x %d): status %d", m, n, k,
                       (int)s);
    return OB_OK;
}

/* ---- contexts ---------------------------------------------------------------------------- */

extern "C" ob_status cuda_ctx_new(int dev, cuda_ctx **out, ob_err *err) {
    *out = NULL;
    cuda_device_info info;
    ob_status st = cuda_device_get_info(dev, &info, err);
    if (st) return st;
    cuda_ctx *c = (cuda_ctx *)ob_calloc(1, sizeof *c);
    if (!c) return ob_fail(err, OB_ERR_NOMEM, "cuda: device %d: no memory for a context", dev);
    c->dev = dev;
    c->sm_count = info.sm_count;
    cudaError_t e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        ob_free(c);
        return cuda_fail_call(err, "cudaStreamCreateWithFlags", e, __FILE__, __LINE__);
    }
    cublasHandle_t h = NULL;
    if (cublas_load() && cublas_api.create(&h) == CUBLAS_STATUS_SUCCESS) {
        cublas_api.set_stream(h, c->stream);
        c->cublas = h;
    }
    *out = c;
    return OB_OK;
}

extern "C" void cuda_ctx_free(cuda_ctx *c) {
    if (!c) return;
    /* errors are ignored here: there is nobody to report them to, and each free is independent */
    cudaSetDevice(c->dev);
    cudaStreamSynchronize(c->stream);
    if (c->cublas) cublas_api.destroy((cublasHandle_t)c->cublas);
    cuda_buf_free(c, c->gemm_ws);
    cuda_buf_free(c, c->attn_ws);
    cuda_buf_free(c, c->q8_ws);
    cudaStreamDestroy(c->stream);
    ob_free(c);
}

extern "C" ob_status cuda_ctx_sync(cuda_ctx *c, ob_err *err) {
    CUDA_USE(c);
    if (fault_take(2))
        return cuda_fail_call(err, "cudaStreamSynchronize(c->stream)", cudaErrorLaunchFailure,
                              __FILE__, __LINE__);
    c->gen++;
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    return OB_OK;
}

extern "C" bool cuda_ctx_has_cublas(const cuda_ctx *c) { return c && c->cublas; }

/* ---- buffers ----------------------------------------------------------------------------- */

/* Records a new allocation for cuda_ptr_is_device; without room for the record it is freed. */
static ob_status recorded(void **out, size_t bytes, const char *what, ob_err *err) {
    if (cuda_dev_ptrs_add(*out, bytes)) return OB_OK;
    cudaFree(*out);
    *out = NULL;
    return ob_fail(err, OB_ERR_NOMEM, "cuda: %s: out of host memory to record it", what);
}

extern "C" ob_status cuda_buf_alloc(cuda_ctx *c, size_t bytes, const char *what, void **out,
                                    ob_err *err) {
    *out = NULL;
    CUDA_CHECK(cudaSetDevice(c->dev));
    /* cudaMalloc(0) returns NULL with success; one byte keeps "allocated" and "non-NULL" equal */
    cudaError_t e = fault_take(1) ? cudaErrorMemoryAllocation : cudaMalloc(out, bytes ? bytes : 1);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        *out = NULL;
        return ob_fail(err, OB_ERR_NOMEM,
                       "cuda: %s: out of device memory: need %zu bytes, %zu free of %zu", what,
                       bytes, fr, tot);
    }
    if (e != cudaSuccess) {
        *out = NULL;
        return cuda_fail_call(err, what, e, __FILE__, __LINE__);
    }
    return recorded(out, bytes, what, err);
}

extern "C" ob_status cuda_managed_alloc(cuda_ctx *c, size_t bytes, const char *what, void **out,
                                        ob_err *err) {
    *out = NULL;
    CUDA_USE(c);
    const size_t n = bytes ? bytes : 1;
    cudaError_t e = cudaMallocManaged(out, n, cudaMemAttachGlobal);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        *out = NULL;
        if (e == cudaErrorMemoryAllocation)
            return ob_fail(err, OB_ERR_NOMEM,
                           "cuda: %s: out of managed memory: need %zu bytes, %zu free of %zu",
                           what, bytes, fr, tot);
        return cuda_fail_call(err, what, e, __FILE__, __LINE__);
    }
    /* Advice is a hint: a device that ignores it still works, more slowly, so its failures
     * are not errors. The pages live on the device; the host maps them when it reads. */
#if CUDART_VERSION >= 13000
    cudaMemLocation on_dev = {cudaMemLocationTypeDevice, c->dev};
    cudaMemLocation on_host = {cudaMemLocationTypeHost, 0};
    if (cudaMemAdvise(*out, n, cudaMemAdviseSetPreferredLocation, on_dev) != cudaSuccess ||
        cudaMemAdvise(*out, n, cudaMemAdviseSetAccessedBy, on_host) != cudaSuccess ||
        cudaMemPrefetchAsync(*out, n, on_dev, 0, c->stream) != cudaSuccess)
        (void)cudaGetLastError();
#else
    if (cudaMemAdvise(*out, n, cudaMemAdviseSetPreferredLocation, c->dev) != cudaSuccess ||
        cudaMemAdvise(*out, n, cudaMemAdviseSetAccessedBy, cudaCpuDeviceId) != cudaSuccess ||
        cudaMemPrefetchAsync(*out, n, c->dev, c->stream) != cudaSuccess)
        (void)cudaGetLastError();
#endif
    return recorded(out, n, what, err);
}

extern "C" ob_status cuda_copy_d2d(cuda_ctx *c, void *dst, const void *src, size_t bytes,
                                   ob_err *err) {
    CUDA_USE(c);
    if (!bytes || dst == src) return OB_OK;
    c->gen++;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream));
    return OB_OK;
}

extern "C" void cuda_buf_free(cuda_ctx *c, void *p) {
    if (!p) return;
    cuda_dev_ptrs_remove(p);
    cudaFree(p);
}

extern "C" ob_status cuda_buf_zero(cuda_ctx *c, void *p, size_t bytes, ob_err *err) {
    CUDA_USE(c);
    c->gen++;
    CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, c->stream));
    return OB_OK;
}

ob_status cuda_scratch(cuda_ctx *c, void **buf, size_t *have, size_t bytes, const char *what,
                       ob_err *err) {
    if (*have >= bytes) return OB_OK;
    /* kernels queued on the stream may still read the old buffer; what it held is gone */
    c->gen++;
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    cuda_buf_free(c, *buf);
    *buf = NULL;
    *have = 0;
    ob_status st = cuda_buf_alloc(c, bytes, what, buf, err);
    if (st) return st;
    *have = bytes;
    return OB_OK;
}

/* ---- the counted copy path --------------------------------------------------------------- */

static std::atomic<uint64_t> copy_h2d_bytes, copy_h2d_count, copy_d2h_bytes, copy_d2h_count;

extern "C" ob_status cuda_copy_h2d(cuda_ctx *c, void *dst, const void *src, size_t bytes,
                                   ob_err *err) {
    CUDA_USE(c);
    if (!bytes) return OB_OK;
    c->gen++;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream));
    /* synchronous: a pageable source must stay valid until the copy has read it */
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    copy_h2d_bytes.fetch_add(bytes);
    copy_h2d_count.fetch_add(1);
    return OB_OK;
}

extern "C" ob_status cuda_host_alloc(cuda_ctx *c, size_t bytes, void **out, ob_err *err) {
    *out = NULL;
    CUDA_USE(c);
    CUDA_CHECK(cudaMallocHost(out, bytes ? bytes : 1));
    return OB_OK;
}

extern "C" void cuda_host_free(void *p) {
    if (p) cudaFreeHost(p);
}

extern "C" ob_status cuda_copy_h2d_async(cuda_ctx *c, void *dst, const void *src, size_t bytes,
                                         ob_err *err) {
    CUDA_USE(c);
    if (!bytes) return OB_OK;
    c->gen++;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream));
    copy_h2d_bytes.fetch_add(bytes);
    copy_h2d_count.fetch_add(1);
    return OB_OK;
}

extern "C" ob_status cuda_copy_d2h(cuda_ctx *c, void *dst, const void *src, size_t bytes,
                                   ob_err *err) {
    CUDA_USE(c);
    if (!bytes) return OB_OK;
    c->gen++;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    copy_d2h_bytes.fetch_add(bytes);
    copy_d2h_count.fetch_add(1);
    return OB_OK;
}

extern "C" void cuda_copy_stats_get(cuda_copy_stats *out) {
    out->h2d_bytes = copy_h2d_bytes.load();
    out->h2d_count = copy_h2d_count.load();
    out->d2h_bytes = copy_d2h_bytes.load();
    out->d2h_count = copy_d2h_count.load();
}

extern "C" void cuda_copy_stats_reset(void) {
    copy_h2d_bytes.store(0);
    copy_h2d_count.store(0);
    copy_d2h_bytes.store(0);
    copy_d2h_count.store(0);
}
