/*
 * Inside the Vulkan backend: the device context (instance, physical and logical device, one
 * compute queue), buffers, the embedded shaders' pipelines, and the command stream every op
 * records into. Only the files of src/vulkan include this header; the rest of outboard sees
 * vulkan_backend.h, which carries no Vulkan types.
 *
 * Execution model. Ops record dispatches into one command buffer, a global memory barrier
 * between each two, and nothing runs until vulkan_flush submits it (signalling the timeline
 * semaphore) and waits for it. Host data an op borrows (token ids, positions, block tables,
 * norm vectors) is copied into the staging arena, a host-visible buffer that is reused after
 * each flush; results the host must see are copied out of it after the flush (readbacks).
 * Every dispatch binds the same descriptor-set layout of VULKAN_BINDINGS storage buffers and
 * the same push-constant block: the first VULKAN_BINDINGS words are the element offsets (in
 * 32-bit words) of each binding within its aligned slice, the rest the op's parameters.
 *
 * Errors stick: the first failure is kept in ctx->st / ctx->err and every later call returns
 * it, so a device lost mid-step surfaces once, where the caller next looks.
 */
#ifndef OB_VULKAN_IMPL_H
#define OB_VULKAN_IMPL_H

#include "core/err.h"
#include "vulkan/vulkan_backend.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

#define VULKAN_BINDINGS       6
#define VULKAN_PC_WORDS       32 /* 128 bytes: the push-constant size every device offers */
#define VULKAN_MAX_PIPES      48
#define VULKAN_SETS_PER_FLUSH 1024

/* A buffer and its memory. map is the host address of the whole buffer when its memory is
 * host-visible (staging, and everything on unified-memory devices), else NULL. */
typedef struct vulkan_buf {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize size;
    void *map;
} vulkan_buf;

/* A slice of a buffer an op binds: byte offset and size (both multiples of 4). */
typedef struct vulkan_ref {
    VkBuffer buf;
    VkDeviceSize off, size;
} vulkan_ref;

/* A result copied from the staging arena to host memory after the next flush. */
typedef struct vulkan_readback {
    void *host;
    size_t off, bytes;
} vulkan_readback;

typedef struct vulkan_pipe {
    const char *name;
    VkPipeline pipe;
} vulkan_pipe;

typedef struct vulkan_ctx {
    bool serving;   /* the backend is made: submits count for OB_VK_LOSE_AFTER */
    VkInstance inst;
    VkDebugUtilsMessengerEXT messenger; /* VK_NULL_HANDLE without validation */
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    vulkan_device_info info; /* what `outboard devices` shows for it */
    VkPhysicalDeviceMemoryProperties memp;
    VkDeviceSize align;     /* minStorageBufferOffsetAlignment */
    VkDeviceSize max_range; /* maxStorageBufferRange (or OB_VK_MAX_RANGE) */
    uint32_t max_groups;    /* maxComputeWorkGroupCount[0] */
    uint32_t subgroup_size; /* 0 when the device reports no compute subgroups */
    bool subgroup_arith;    /* subgroupAdd and kin in compute shaders */
    bool unmapped;          /* OB_VK_UNMAPPED: device buffers never mapped (discrete) */
    bool unified;           /* some memory type is device-local and host-visible */

    VkPipelineCache pcache;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    vulkan_pipe pipes[VULKAN_MAX_PIPES];
    int n_pipes;

    VkCommandPool cpool;
    VkCommandBuffer cmd;
    bool recording;
    uint32_t n_recorded; /* dispatches and copies since the last flush */
    VkDescriptorPool dpool;
    uint32_t n_sets; /* sets taken from dpool since the last flush */
    VkSemaphore timeline;
    uint64_t timeline_value;

    vulkan_buf dummy; /* bound to the bindings an op leaves unused */
    vulkan_buf arena; /* host-visible staging, reused after each flush */
    size_t arena_used;
    vulkan_readback *readbacks;
    size_t n_readbacks, readbacks_cap;

    uint64_t device_bytes; /* device memory allocated through vulkan_buf_new */
    ob_status st;          /* first failure, OB_OK while all is well */
    ob_err err;
} vulkan_ctx;

/* vulkan_context.c ---------------------------------------------------------------------- */

/* A context on device `index` of vulkan_devices_list (-1: the first GPU). *out owned by the
 * caller (vulkan_ctx_close, which waits for the device first). */
ob_status vulkan_ctx_open(int index, vulkan_ctx **out, ob_err *err);
void vulkan_ctx_close(vulkan_ctx *c);

/* vulkan_device.c ------------------------------------------------------------------------ */

/* Records the result of Vulkan call `what` (a VkResult): OB_OK for VK_SUCCESS, else the
 * context's first failure, "vulkan: <what>: <result name>" (OB_ERR_DEVICE, or OB_ERR_NOMEM
 * for out-of-memory results). */
ob_status vulkan_check(vulkan_ctx *c, VkResult r, const char *what);

/* The name of a VkResult ("VK_ERROR_DEVICE_LOST"). */
const char *vulkan_result_name(VkResult r);

/* A buffer of `size` bytes (at least 4). host: memory the host can map (staging, the
 * activation buffers); otherwise device-local, host-visible too where the device has such
 * memory (unified memory, lavapipe), so uploads are a memcpy. `what` names it in errors,
 * which give the bytes asked for and the heap's size. */
ob_status vulkan_buf_new(vulkan_ctx *c, VkDeviceSize size, bool host, const char *what,
                         vulkan_buf *out);

/* Frees b's buffer and memory (waits for nothing: the caller has flushed); NULL-safe. */
void vulkan_buf_free(vulkan_ctx *c, vulkan_buf *b);

/* Copies bytes from host to b at off: directly when b is mapped, else through the staging
 * arena and a recorded transfer (flushed before returning). */
ob_status vulkan_buf_upload(vulkan_ctx *c, vulkan_buf *b, VkDeviceSize off, const void *src,
                            size_t bytes);

/* vulkan_buf_upload without the flush: the transfer is recorded behind what is already
 * recorded and runs at the next flush (the arena flushes by itself when full), so many small
 * uploads share a submission. The caller flushes before b is read back or freed. */
ob_status vulkan_buf_upload_queued(vulkan_ctx *c, vulkan_buf *b, VkDeviceSize off,
                                   const void *src, size_t bytes);

/* Bytes of device-local memory free (VK_EXT_memory_budget) or, without it, the largest
 * device-local heap's size. */
uint64_t vulkan_free_bytes(vulkan_ctx *c);

/* vulkan_instance.c ---------------------------------------------------------------------- */

/* Creates the instance (with the validation layer when OB_VK_VALIDATE=1), fills the device
 * list (vulkan_devices_list's), and picks the physical device `index` of it. */
ob_status vulkan_instance_open(vulkan_ctx *c, int index, ob_err *err);

/* Validation messages seen since the process started (errors and warnings). */
uint64_t vulkan_validation_count(void);

/* vulkan_pipeline.c ---------------------------------------------------------------------- */

/* Descriptor-set layout, pipeline layout, pipeline cache and every embedded shader's
 * pipeline. */
ob_status vulkan_pipelines_new(vulkan_ctx *c);
void vulkan_pipelines_free(vulkan_ctx *c);

/* The pipeline of shader `name`, or -1 (the context then holds OB_ERR_UNSUPPORTED naming
 * it). */
int vulkan_pipe_find(vulkan_ctx *c, const char *name);

/* vulkan_cmd.c --------------------------------------------------------------------------- */

ob_status vulkan_cmd_new(vulkan_ctx *c);
void vulkan_cmd_free(vulkan_ctx *c);

/* Records pipeline `pipe` over groups (gx, gy, gz) with refs bound to bindings 0..n_refs-1
 * and pc (n_pc words) after the binding offsets in the push constants. A barrier follows it.
 * Flushes first when the descriptor pool is spent. */
ob_status vulkan_dispatch(vulkan_ctx *c, int pipe, const vulkan_ref *refs, int n_refs,
                          const uint32_t *pc, int n_pc, uint32_t gx, uint32_t gy, uint32_t gz);

/* Records a buffer-to-buffer copy (and a barrier). */
ob_status vulkan_copy(vulkan_ctx *c, VkBuffer dst, VkDeviceSize dst_off, VkBuffer src,
                      VkDeviceSize src_off, VkDeviceSize bytes);

/* Starts an op that will stage at most stage_bytes and record a few dispatches: flushes (and
 * grows the arena) now if they might not fit, so nothing flushes between the op's staging and
 * its dispatches (which would reuse its staged data and hand its results back early). */
ob_status vulkan_op_begin(vulkan_ctx *c, size_t stage_bytes);

/* Room for `bytes` (rounded up to the offset alignment) in the staging arena: *ref the slice,
 * *host its mapped address. Flushes (and grows the arena) when it is full. */
ob_status vulkan_stage(vulkan_ctx *c, size_t bytes, vulkan_ref *ref, void **host);

/* vulkan_stage filled with a copy of src. */
ob_status vulkan_stage_in(vulkan_ctx *c, const void *src, size_t bytes, vulkan_ref *ref);

/* Notes that after the next flush the staged slice at arena offset off goes to host. */
ob_status vulkan_readback_add(vulkan_ctx *c, void *host, size_t off, size_t bytes);

/* Submits what was recorded, waits for it on the timeline semaphore, runs the readbacks and
 * resets the arena and descriptor pool. Returns the context's status. */
ob_status vulkan_flush(vulkan_ctx *c);

/* True once when vulkan_fault_set(kind) asked for a fault (and clears it). */
bool vulkan_fault_take(int kind);
/* OB_VK_LOSE_AFTER=N (tests of a whole server): true at the N-th submit of a serving backend
 * in this process, which then reports a lost device, as a card pulled out mid-run would. */
bool vulkan_fault_lose_due(void);
/* OB_VK_ATTACH_AFTER_S=S (tests of a whole server): every listing of devices comes back empty
 * until S seconds after the first one, as if the card were plugged in only then. */
bool vulkan_fault_detached(void);

#endif
