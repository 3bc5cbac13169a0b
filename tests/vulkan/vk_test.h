/*
 * What the Vulkan tests share: the device they run on (the first one listed, which on CI is
 * Mesa's lavapipe; OB_VK_TEST_DEVICE=N picks another), the validation layer switched on, and
 * random data. A test finding no Vulkan device skips with a message.
 */
#ifndef OB_TESTS_VK_TEST_H
#define OB_TESTS_VK_TEST_H

#include "vulkan/vulkan_backend.h"

#include <stdint.h>
#include <stdlib.h>

/* Under `make check`: Mesa's lavapipe runs shaders as JIT-compiled code that keeps a few
 * per-thread buffers to the end; LeakSanitizer sees them as leaks it cannot attribute (no
 * symbols), so leak detection is off in the Vulkan tests. AddressSanitizer's other checks
 * stay on. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) {
    return "detect_leaks=0";
}

/* The device index to test on, or -1 (with the reason in *why). Turns validation on. */
static int vk_test_device(const char **why) {
    static int dev = -2;
    static char reason[600];
    if (dev == -2) {
        setenv("OB_VK_VALIDATE", "1", 0);
        vulkan_device_info list[VULKAN_MAX_DEVICES];
        int n = 0;
        ob_err err = {{0}};
        if (vulkan_devices_list(list, VULKAN_MAX_DEVICES, &n, &err) || n == 0) {
            snprintf(reason, sizeof reason, "%s",
                     n == 0 && !err.msg[0] ? "no Vulkan device" : err.msg);
            dev = -1;
        } else {
            const char *pick = getenv("OB_VK_TEST_DEVICE");
            dev = pick ? atoi(pick) : 0;
            if (dev < 0 || dev >= n) dev = 0;
        }
    }
    *why = reason;
    return dev;
}

#define NEED_VULKAN(dev)                                                                           \
    const char *vk_why_;                                                                           \
    const int dev = vk_test_device(&vk_why_);                                                      \
    if (dev < 0) SKIP("skipped: no Vulkan device (%s)", vk_why_)

static uint64_t vk_rng_state = 0x9e3779b97f4a7c15ull;
static inline uint32_t vk_rng32(void) {
    vk_rng_state ^= vk_rng_state << 13;
    vk_rng_state ^= vk_rng_state >> 7;
    vk_rng_state ^= vk_rng_state << 17;
    return (uint32_t)(vk_rng_state >> 16);
}
static inline float vk_rngf(void) {
    return (float)vk_rng32() / 4294967296.0f * 2.0f - 1.0f;
}
static inline void vk_fill(float *x, int64_t n, float amp) {
    for (int64_t i = 0; i < n; i++)
        x[i] = vk_rngf() * amp;
}

#endif
