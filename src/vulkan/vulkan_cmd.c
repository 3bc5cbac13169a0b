/*
 * The command stream: one command buffer that ops record into, descriptor sets taken from a
 * pool that is reset at each flush, the staging arena, and the flush itself, which submits,
 * waits on the timeline semaphore and hands staged results back to the host.
 *
 * A global memory barrier follows every dispatch and copy. The forward step is a chain in
 * which nearly every op reads what the one before wrote, so finer barriers would buy little.
 */
#include "vulkan/vulkan_impl.h"

#include "core/alloc.h"

#include <string.h>

/* How long a flush waits before it calls the device hung (ns). A software device (lavapipe)
 * runs the work on the host's cores, shared with whatever else runs there: on a slow or busy
 * host one long prompt's command buffer has been seen to take over two minutes, so such a
 * device is slow rather than hung, and it gets an hour. */
#define VULKAN_FLUSH_TIMEOUT_NS     (120ull * 1000000000ull)
#define VULKAN_CPU_FLUSH_TIMEOUT_NS (3600ull * 1000000000ull)
#define VULKAN_ARENA_MIN        ((size_t)4 << 20)
/* Recorded commands after which an op flushes by itself, so one long prompt never builds an
 * unbounded command buffer. */
#define VULKAN_MAX_RECORDED 4096
/* Dispatches one op may record after vulkan_op_begin without the stream flushing under it. */
#define VULKAN_OP_DISPATCHES 64

static ob_status begin(vulkan_ctx *c) {
    if (c->st || c->recording) return c->st;
    const VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                         .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    if (vulkan_check(c, vkBeginCommandBuffer(c->cmd, &bi), "vkBeginCommandBuffer")) return c->st;
    c->recording = true;
    return OB_OK;
}

static ob_status pool_new(vulkan_ctx *c) {
    const VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                     .descriptorCount = VULKAN_SETS_PER_FLUSH * VULKAN_BINDINGS};
    const VkDescriptorPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                           .maxSets = VULKAN_SETS_PER_FLUSH,
                                           .poolSizeCount = 1,
                                           .pPoolSizes = &ps};
    return vulkan_check(c, vkCreateDescriptorPool(c->dev, &pi, NULL, &c->dpool),
                        "vkCreateDescriptorPool");
}

ob_status vulkan_cmd_new(vulkan_ctx *c) {
    const VkCommandPoolCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                        .queueFamilyIndex = c->qfam};
    if (vulkan_check(c, vkCreateCommandPool(c->dev, &ci, NULL, &c->cpool), "vkCreateCommandPool"))
        return c->st;
    const VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                            .commandPool = c->cpool,
                                            .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                            .commandBufferCount = 1};
    if (vulkan_check(c, vkAllocateCommandBuffers(c->dev, &ai, &c->cmd), "vkAllocateCommandBuffers"))
        return c->st;
    const VkSemaphoreTypeCreateInfo ti = {.sType = VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO,
                                          .semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE};
    const VkSemaphoreCreateInfo si = {.sType = VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO,
                                      .pNext = &ti};
    if (vulkan_check(c, vkCreateSemaphore(c->dev, &si, NULL, &c->timeline), "vkCreateSemaphore") ||
        pool_new(c) || vulkan_buf_new(c, 256, true, "dummy binding", &c->dummy) ||
        vulkan_buf_new(c, VULKAN_ARENA_MIN, true, "staging arena", &c->arena))
        return c->st;
    return begin(c);
}

void vulkan_cmd_free(vulkan_ctx *c) {
    if (!c->dev) return;
    vulkan_buf_free(c, &c->arena);
    vulkan_buf_free(c, &c->dummy);
    if (c->dpool) vkDestroyDescriptorPool(c->dev, c->dpool, NULL);
    if (c->timeline) vkDestroySemaphore(c->dev, c->timeline, NULL);
    if (c->cpool) vkDestroyCommandPool(c->dev, c->cpool, NULL);
    ob_free(c->readbacks);
    c->readbacks = NULL;
}

static void barrier(vulkan_ctx *c) {
    const VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                         VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    const VkPipelineStageFlags st =
        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(c->cmd, st, st, 0, 1, &mb, 0, NULL, 0, NULL);
}

/* Flushes when the pool or the command count is spent (the arena checks itself). */
static ob_status room(vulkan_ctx *c) {
    if (c->n_sets >= VULKAN_SETS_PER_FLUSH || c->n_recorded >= VULKAN_MAX_RECORDED)
        return vulkan_flush(c);
    return begin(c);
}

ob_status vulkan_dispatch(vulkan_ctx *c, int pipe, const vulkan_ref *refs, int n_refs,
                          const uint32_t *pc, int n_pc, uint32_t gx, uint32_t gy, uint32_t gz) {
    if (c->st || pipe < 0 || room(c)) return c->st ? c->st : OB_ERR_ARG;
    if (n_refs > VULKAN_BINDINGS || VULKAN_BINDINGS + n_pc > VULKAN_PC_WORDS || gx == 0 ||
        gy == 0 || gz == 0)
        return OB_OK; /* nothing to do (an empty grid), or our bug: the op table never asks */
    VkDescriptorSet set;
    const VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                            .descriptorPool = c->dpool,
                                            .descriptorSetCount = 1,
                                            .pSetLayouts = &c->dsl};
    if (vulkan_check(c, vkAllocateDescriptorSets(c->dev, &ai, &set), "vkAllocateDescriptorSets"))
        return c->st;
    c->n_sets++;
    VkDescriptorBufferInfo bi[VULKAN_BINDINGS];
    VkWriteDescriptorSet w[VULKAN_BINDINGS];
    uint32_t words[VULKAN_PC_WORDS] = {0};
    for (int i = 0; i < VULKAN_BINDINGS; i++) {
        if (i < n_refs && refs[i].buf) {
            /* bind from the aligned offset below; the shader adds the rest in words */
            const VkDeviceSize base = refs[i].off & ~(c->align - 1);
            VkDeviceSize range = refs[i].size + (refs[i].off - base);
            if (range > c->max_range) range = c->max_range;
            bi[i] = (VkDescriptorBufferInfo){refs[i].buf, base, range ? range : 4};
            words[i] = (uint32_t)((refs[i].off - base) / 4);
        } else {
            bi[i] = (VkDescriptorBufferInfo){c->dummy.buf, 0, VK_WHOLE_SIZE};
        }
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstSet = set,
                                      .dstBinding = (uint32_t)i,
                                      .descriptorCount = 1,
                                      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = &bi[i]};
    }
    vkUpdateDescriptorSets(c->dev, VULKAN_BINDINGS, w, 0, NULL);
    if (n_pc > 0) memcpy(words + VULKAN_BINDINGS, pc, (size_t)n_pc * 4);
    vkCmdBindPipeline(c->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, c->pipes[pipe].pipe);
    vkCmdBindDescriptorSets(c->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, c->layout, 0, 1, &set, 0, NULL);
    vkCmdPushConstants(c->cmd, c->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof words, words);
    vkCmdDispatch(c->cmd, gx, gy, gz);
    barrier(c);
    c->n_recorded++;
    return OB_OK;
}

ob_status vulkan_copy(vulkan_ctx *c, VkBuffer dst, VkDeviceSize dst_off, VkBuffer src,
                      VkDeviceSize src_off, VkDeviceSize bytes) {
    if (c->st || room(c)) return c->st;
    if (bytes == 0) return OB_OK;
    const VkBufferCopy r = {.srcOffset = src_off, .dstOffset = dst_off, .size = bytes};
    vkCmdCopyBuffer(c->cmd, src, dst, 1, &r);
    barrier(c);
    c->n_recorded++;
    return OB_OK;
}

/* A bigger arena (after a flush, so nothing in flight uses the old one). */
static ob_status arena_grow(vulkan_ctx *c, size_t need) {
    size_t cap = c->arena.size * 2;
    while (cap < need)
        cap *= 2;
    vulkan_buf_free(c, &c->arena);
    return vulkan_buf_new(c, cap, true, "staging arena", &c->arena);
}

ob_status vulkan_op_begin(vulkan_ctx *c, size_t stage_bytes) {
    if (c->st) return c->st;
    const size_t need = stage_bytes + (VULKAN_BINDINGS + 2) * (size_t)c->align;
    if (c->arena_used + need > c->arena.size ||
        c->n_sets + VULKAN_OP_DISPATCHES > VULKAN_SETS_PER_FLUSH ||
        c->n_recorded + VULKAN_OP_DISPATCHES > VULKAN_MAX_RECORDED) {
        if (vulkan_flush(c)) return c->st;
        if (need > c->arena.size && arena_grow(c, need)) return c->st;
    }
    return begin(c);
}

ob_status vulkan_stage(vulkan_ctx *c, size_t bytes, vulkan_ref *ref, void **host) {
    if (c->st) return c->st;
    const size_t a = (size_t)c->align, size = (bytes + a - 1) / a * a;
    if (c->arena_used + size > c->arena.size) {
        if (vulkan_flush(c)) return c->st;
        if (size > c->arena.size && arena_grow(c, size)) return c->st;
    }
    *ref = (vulkan_ref){c->arena.buf, c->arena_used, size ? size : a};
    *host = (char *)c->arena.map + c->arena_used;
    c->arena_used += size;
    return OB_OK;
}

ob_status vulkan_stage_in(vulkan_ctx *c, const void *src, size_t bytes, vulkan_ref *ref) {
    void *host = NULL;
    if (vulkan_stage(c, bytes, ref, &host)) return c->st;
    memcpy(host, src, bytes);
    return OB_OK;
}

ob_status vulkan_readback_add(vulkan_ctx *c, void *host, size_t off, size_t bytes) {
    if (c->st) return c->st;
    if (c->n_readbacks == c->readbacks_cap) {
        const size_t cap = c->readbacks_cap ? c->readbacks_cap * 2 : 16;
        vulkan_readback *g = ob_realloc(c->readbacks, cap, sizeof *g);
        if (!g) {
            c->st = ob_fail(&c->err, OB_ERR_NOMEM, "vulkan: out of memory");
            return c->st;
        }
        c->readbacks = g;
        c->readbacks_cap = cap;
    }
    c->readbacks[c->n_readbacks++] = (vulkan_readback){host, off, bytes};
    return OB_OK;
}

/* Submits the command buffer and waits for the timeline to reach its new value. */
static ob_status submit_wait(vulkan_ctx *c) {
    if (vulkan_check(c, vkEndCommandBuffer(c->cmd), "vkEndCommandBuffer")) return c->st;
    c->recording = false;
    const uint64_t value = ++c->timeline_value;
    const VkTimelineSemaphoreSubmitInfo ti = {.sType =
                                                  VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO,
                                              .signalSemaphoreValueCount = 1,
                                              .pSignalSemaphoreValues = &value};
    const VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                             .pNext = &ti,
                             .commandBufferCount = 1,
                             .pCommandBuffers = &c->cmd,
                             .signalSemaphoreCount = 1,
                             .pSignalSemaphores = &c->timeline};
    VkResult r = vulkan_fault_take(2) || (c->serving && vulkan_fault_lose_due())
                     ? VK_ERROR_DEVICE_LOST
                     : vkQueueSubmit(c->queue, 1, &si, VK_NULL_HANDLE);
    if (vulkan_check(c, r, "vkQueueSubmit")) return c->st;
    const VkSemaphoreWaitInfo wi = {.sType = VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO,
                                    .semaphoreCount = 1,
                                    .pSemaphores = &c->timeline,
                                    .pValues = &value};
    const uint64_t timeout =
        c->info.is_cpu ? VULKAN_CPU_FLUSH_TIMEOUT_NS : VULKAN_FLUSH_TIMEOUT_NS;
    return vulkan_check(c, vkWaitSemaphores(c->dev, &wi, timeout), "vkWaitSemaphores");
}

ob_status vulkan_flush(vulkan_ctx *c) {
    if (c->st) return c->st;
    if (c->recording && c->n_recorded > 0 && submit_wait(c)) return c->st;
    if (c->recording && c->n_recorded == 0) {
        /* nothing recorded: the open command buffer stays as it is */
    } else if (vulkan_check(c, vkResetCommandBuffer(c->cmd, 0), "vkResetCommandBuffer")) {
        return c->st;
    }
    for (size_t i = 0; i < c->n_readbacks; i++)
        memcpy(c->readbacks[i].host, (char *)c->arena.map + c->readbacks[i].off,
               c->readbacks[i].bytes);
    c->n_readbacks = 0;
    c->arena_used = 0;
    c->n_recorded = 0;
    if (c->n_sets) {
        if (vulkan_check(c, vkResetDescriptorPool(c->dev, c->dpool, 0), "vkResetDescriptorPool"))
            return c->st;
        c->n_sets = 0;
    }
    return begin(c);
}
