/*
 * What the CUDA backend tests share: the device they run on (device 0, or OB_CUDA_TEST_DEVICE=N),
 * a skip with the reason when there is none, the sanitizer setting the CUDA driver needs, and
 * random data.
 */
#ifndef OB_TESTS_CUDA_TEST_H
#define OB_TESTS_CUDA_TEST_H

#include "cuda/cuda_backend.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Under AddressSanitizer the CUDA driver maps memory where ASan's shadow gap would be (see
 * device_test.c); no effect without ASan. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "protect_shadow_gap=0"; }

/* The device index to test on, or -1 (with the reason in *why). */
static int cu_test_device(const char **why) {
    static int dev = -2;
    static char reason[600];
    if (dev == -2) {
        int n = 0;
        ob_err err = {{0}};
        if (cuda_device_count(&n, &err) || n == 0) {
            snprintf(reason, sizeof reason, "%s", err.msg[0] ? err.msg : "no CUDA device");
            dev = -1;
        } else {
            const char *pick = getenv("OB_CUDA_TEST_DEVICE");
            dev = pick ? atoi(pick) : 0;
            if (dev < 0 || dev >= n) dev = 0;
        }
    }
    *why = reason;
    return dev;
}

#define NEED_CUDA(dev)                                                                           \
    const char *cu_why_;                                                                         \
    const int dev = cu_test_device(&cu_why_);                                                    \
    if (dev < 0) SKIP("skipped: no GPU (%s)", cu_why_)

static uint64_t cu_rng_state = 0x9e3779b97f4a7c15ull;
static inline uint32_t cu_rng32(void) {
    cu_rng_state ^= cu_rng_state << 13;
    cu_rng_state ^= cu_rng_state >> 7;
    cu_rng_state ^= cu_rng_state << 17;
    return (uint32_t)(cu_rng_state >> 16);
}
static inline float cu_rngf(void) { return (float)cu_rng32() / 4294967296.0f * 2.0f - 1.0f; }
static inline void cu_fill(float *x, int64_t n, float amp) {
    for (int64_t i = 0; i < n; i++) x[i] = cu_rngf() * amp;
}

#endif
