/*
 * Vulkan memory: buffers in device-local memory (host-visible too where the device offers
 * that, as unified-memory GPUs and lavapipe do, so uploads are a memcpy), host-visible
 * buffers for staging and activations, uploads, the free-memory query, result names, and the
 * fault-injection hook the tests use.
 */
#include "vulkan/vulkan_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_fault; /* vulkan_fault_set: 1 out of memory, 2 device lost, 3 1 MiB free */

void vulkan_fault_set(int kind) {
    g_fault = kind;
}

bool vulkan_fault_take(int kind) {
    if (g_fault != kind) return false;
    g_fault = 0;
    return true;
}

bool vulkan_fault_lose_due(void) {
    static atomic_long left = -2; /* -2 before the environment is read, -1 never */
    long n = atomic_load(&left);
    if (n == -2) {
        const char *e = getenv("OB_VK_LOSE_AFTER");
        long want = e ? strtol(e, NULL, 10) : -1;
        n = want > 0 ? want : -1;
        long expect = -2;
        if (!atomic_compare_exchange_strong(&left, &expect, n)) n = expect;
    }
    return n > 0 && atomic_fetch_sub(&left, 1) == 1;
}

static double g_attach_at = -1; /* monotonic seconds; -1: no injection, 0 before the first look */
static pthread_once_t g_attach_once = PTHREAD_ONCE_INIT;

static double monotonic_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void attach_read(void) {
    const char *e = getenv("OB_VK_ATTACH_AFTER_S");
    const double s = e ? strtod(e, NULL) : 0;
    if (s > 0) g_attach_at = monotonic_s() + s;
}

bool vulkan_fault_detached(void) {
    pthread_once(&g_attach_once, attach_read);
    return g_attach_at > 0 && monotonic_s() < g_attach_at;
}

const char *vulkan_result_name(VkResult r) {
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT (the device did not finish)";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    default: return "VkResult (unknown)";
    }
}

ob_status vulkan_check(vulkan_ctx *c, VkResult r, const char *what) {
    if (c->st) return c->st;
    if (r == VK_SUCCESS) return OB_OK;
    const ob_status st = r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY
                             ? OB_ERR_NOMEM
                             : OB_ERR_DEVICE;
    c->st = ob_fail(&c->err, st, "vulkan (%s): %s: %s", c->info.name, what, vulkan_result_name(r));
    return c->st;
}

/* A memory type allowed by bits with all of `want`, preferring those with `prefer` too. */
static int memory_type(const vulkan_ctx *c, uint32_t bits, VkMemoryPropertyFlags want,
                       VkMemoryPropertyFlags prefer) {
    int found = -1;
    for (uint32_t i = 0; i < c->memp.memoryTypeCount; i++) {
        const VkMemoryPropertyFlags f = c->memp.memoryTypes[i].propertyFlags;
        if (!(bits & (1u << i)) || (f & want) != want) continue;
        if ((f & prefer) == prefer) return (int)i;
        if (found < 0) found = (int)i;
    }
    return found;
}

uint64_t vulkan_free_bytes(vulkan_ctx *c) {
    if (vulkan_fault_take(3)) return 1 << 20; /* the test of a model too large */
    VkPhysicalDeviceMemoryBudgetPropertiesEXT b = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 p = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2, .pNext = &b};
    vkGetPhysicalDeviceMemoryProperties2(c->phys, &p);
    uint64_t best = 0;
    for (uint32_t h = 0; h < p.memoryProperties.memoryHeapCount; h++) {
        if (!(p.memoryProperties.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)) continue;
        /* without the extension the budget stays 0: the heap's size is all we know */
        uint64_t have = b.heapBudget[h]
                            ? b.heapBudget[h] - (b.heapBudget[h] > b.heapUsage[h] ? b.heapUsage[h]
                                                                                  : b.heapBudget[h])
                            : p.memoryProperties.memoryHeaps[h].size;
        if (have > best) best = have;
    }
    return best;
}

ob_status vulkan_buf_new(vulkan_ctx *c, VkDeviceSize size, bool host, const char *what,
                         vulkan_buf *out) {
    memset(out, 0, sizeof *out);
    if (c->st) return c->st;
    if (size < 4) size = 4;
    size = (size + 3) & ~(VkDeviceSize)3;
    if (vulkan_fault_take(1)) return vulkan_check(c, VK_ERROR_OUT_OF_DEVICE_MEMORY, what);
    const VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                                   .size = size,
                                   .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                            VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                            VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                                   .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = vkCreateBuffer(c->dev, &bi, NULL, &out->buf);
    if (vulkan_check(c, r, what)) return c->st;
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(c->dev, out->buf, &req);
    const VkMemoryPropertyFlags hv =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    /* Device memory the host can also map is taken where it is the device's own (integrated
     * GPUs, lavapipe); on a discrete card it is the small BAR window, kept for staging. */
    const VkMemoryPropertyFlags dl = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    int type = host ? memory_type(c, req.memoryTypeBits, hv, VK_MEMORY_PROPERTY_HOST_CACHED_BIT)
                    : memory_type(c, req.memoryTypeBits, dl, c->info.is_discrete ? 0 : hv);
    if (type < 0) type = memory_type(c, req.memoryTypeBits, 0, 0);
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)type};
    r = vkAllocateMemory(c->dev, &ai, NULL, &out->mem);
    const int plain = host ? -1 : memory_type(c, req.memoryTypeBits, dl, 0);
    if (r != VK_SUCCESS && plain >= 0 && plain != type) { /* its heap full: any device memory */
        ai.memoryTypeIndex = (uint32_t)(type = plain);
        r = vkAllocateMemory(c->dev, &ai, NULL, &out->mem);
    }
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(c->dev, out->buf, NULL);
        out->buf = VK_NULL_HANDLE;
        c->st = ob_fail(&c->err, OB_ERR_NOMEM,
                        "vulkan (%s): %s: %.1f MiB of device memory: "
                        "%s (%.1f MiB free)",
                        c->info.name, what, (double)size / 1048576.0, vulkan_result_name(r),
                        (double)vulkan_free_bytes(c) / 1048576.0);
        return c->st;
    }
    out->size = size;
    if (vulkan_check(c, vkBindBufferMemory(c->dev, out->buf, out->mem, 0), what)) return c->st;
    if ((c->memp.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) &&
        (host || !c->unmapped)) {
        if (vulkan_check(c, vkMapMemory(c->dev, out->mem, 0, VK_WHOLE_SIZE, 0, &out->map), what))
            return c->st;
    }
    c->device_bytes += size;
    return OB_OK;
}

void vulkan_buf_free(vulkan_ctx *c, vulkan_buf *b) {
    if (!b || !c->dev) return;
    if (b->buf) vkDestroyBuffer(c->dev, b->buf, NULL);
    if (b->mem) {
        vkFreeMemory(c->dev, b->mem, NULL);
        c->device_bytes -= b->size;
    }
    memset(b, 0, sizeof *b);
}

ob_status vulkan_buf_upload_queued(vulkan_ctx *c, vulkan_buf *b, VkDeviceSize off,
                                   const void *src, size_t bytes) {
    if (c->st) return c->st;
    if (b->map) {
        memcpy((char *)b->map + off, src, bytes);
        return OB_OK;
    }
    /* through the arena in pieces no larger than 64 MiB, so it never has to grow past that */
    const size_t piece = (size_t)64 << 20;
    for (size_t done = 0; done < bytes; done += piece) {
        const size_t n = bytes - done < piece ? bytes - done : piece;
        vulkan_ref r;
        if (vulkan_stage_in(c, (const char *)src + done, n, &r) ||
            vulkan_copy(c, b->buf, off + done, r.buf, r.off, (n + 3) & ~(size_t)3))
            return c->st;
    }
    return OB_OK;
}

ob_status vulkan_buf_upload(vulkan_ctx *c, vulkan_buf *b, VkDeviceSize off, const void *src,
                            size_t bytes) {
    if (vulkan_buf_upload_queued(c, b, off, src, bytes)) return c->st;
    return b->map ? OB_OK : vulkan_flush(c);
}
