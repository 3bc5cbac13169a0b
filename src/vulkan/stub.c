/*
 * The Vulkan backend's entry points in a build without Vulkan (VULKAN=0, or no loader,
 * headers or glslc at build time): the device list is empty and the backend reports
 * OB_ERR_UNSUPPORTED, so callers link and run the same either way. A Vulkan build defines
 * OB_HAVE_VULKAN and this file compiles to nothing.
 */
#ifndef OB_HAVE_VULKAN

#include "core/err.h"
#include "model/backend.h"
#include "vulkan/vulkan_backend.h"

ob_status vulkan_devices_list(vulkan_device_info *out, int cap, int *n, ob_err *err) {
    (void)out, (void)cap;
    *n = 0;
    return ob_fail(err, OB_ERR_UNSUPPORTED, "no Vulkan device: built without Vulkan");
}

int vulkan_device_default(const vulkan_device_info *list, int n, bool discrete_only) {
    (void)list, (void)n, (void)discrete_only;
    return -1;
}

bool vulkan_type_supported(uint32_t type) {
    (void)type;
    return false;
}

bool vulkan_moe_supported(int64_t n_expert, int64_t n_used, int64_t n_ff_shexp) {
    (void)n_expert, (void)n_used, (void)n_ff_shexp;
    return false;
}

uint64_t vulkan_validation_messages(void) {
    return 0;
}

void vulkan_fault_set(int kind) {
    (void)kind;
}

ob_status model_backend_vulkan_new(const model_backend_shape *shape, int64_t layer_lo, int dev,
                                   model_backend **out, ob_err *err) {
    (void)shape, (void)layer_lo, (void)dev;
    *out = NULL;
    return ob_fail(err, OB_ERR_UNSUPPORTED, "no Vulkan device: built without Vulkan");
}

#else
typedef int vulkan_stub_unused; /* ISO C wants a translation unit to declare something */
#endif
