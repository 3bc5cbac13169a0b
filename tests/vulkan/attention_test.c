/*
 * The Vulkan backend's KV cache and attention against the CPU backend's on the same batches:
 * stores to pool slots through shuffled block tables of two sequences interleaved in one
 * batch, decode steps after a prefill, copy-on-write block copies, and sliding-window layers
 * whose per-sequence rings wrap, with forks (device_attention.h). The validation layer is on
 * and must report nothing.
 */
#include "model/backend.h"

#include "test.h"
#include "device_attention.h"
#include "vk_test.h"

#include <math.h>

TEST(pool_blocks_and_decode) {
    NEED_VULKAN(dev);
    da_pool_blocks_and_decode(model_backend_vulkan_new, dev);
}

TEST(sliding_window_rings) {
    NEED_VULKAN(dev);
    da_sliding_window_rings(model_backend_vulkan_new, dev);
}

TEST(validation_layer_silent) {
    NEED_VULKAN(dev);
    (void)dev;
    CHECK_EQ_INT(vulkan_validation_messages(), 0);
}

int main(void) {
    RUN(pool_blocks_and_decode);
    RUN(sliding_window_rings);
    RUN(validation_layer_silent);
    return t_summary();
}
