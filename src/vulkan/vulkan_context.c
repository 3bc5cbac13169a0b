/*
 * Opening and closing a Vulkan device context: instance and device (vulkan_instance.c), the
 * pipeline layout (vulkan_pipeline.c), the command stream and staging (vulkan_cmd.c).
 */
#include "vulkan/vulkan_impl.h"

#include "core/alloc.h"

#include <string.h>

ob_status vulkan_ctx_open(int index, vulkan_ctx **out, ob_err *err) {
    *out = NULL;
    vulkan_ctx *c = ob_calloc(1, sizeof *c);
    if (!c) return ob_fail(err, OB_ERR_NOMEM, "vulkan: out of memory");
    ob_status st = vulkan_instance_open(c, index, err);
    if (!st && (vulkan_pipelines_new(c) || vulkan_cmd_new(c))) {
        st = c->st;
        if (err) *err = c->err;
    }
    if (st) {
        vulkan_ctx_close(c);
        return st;
    }
    *out = c;
    return OB_OK;
}

void vulkan_ctx_close(vulkan_ctx *c) {
    if (!c) return;
    if (c->dev) {
        vkDeviceWaitIdle(c->dev);
        vulkan_cmd_free(c);
        vulkan_pipelines_free(c);
        vkDestroyDevice(c->dev, NULL);
    }
    if (c->messenger) {
        PFN_vkDestroyDebugUtilsMessengerEXT destroy =
            (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                c->inst, "vkDestroyDebugUtilsMessengerEXT");
        if (destroy) destroy(c->inst, c->messenger, NULL);
    }
    if (c->inst) vkDestroyInstance(c->inst, NULL);
    ob_free(c);
}
