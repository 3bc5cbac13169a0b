/*
 * The Vulkan backend as the rest of outboard sees it, without Vulkan types: the device list
 * (`outboard devices`, device selection) and test hooks. The backend itself is created with
 * model_backend_vulkan_new (model/backend.h). A build without Vulkan (VULKAN=0, or no
 * loader/headers/glslc) links src/vulkan/stub.c instead, whose list is empty and whose
 * backend reports "built without Vulkan".
 */
#ifndef OB_VULKAN_BACKEND_H
#define OB_VULKAN_BACKEND_H

#include "outboard.h"

#include <stdbool.h>
#include <stdint.h>

#define VULKAN_MAX_DEVICES 16

/* One physical device as the loader shows it (after merging a GPU seen through two drivers,
 * by deviceUUID). */
typedef struct vulkan_device_info {
    int index; /* what --device vulkan:N takes */
    char name[256];
    char vendor[32];    /* "NVIDIA", "AMD", "Intel", "Apple", "Mesa" or the PCI id */
    char type[16];      /* "discrete", "integrated", "virtual", "cpu", "other" */
    char driver[160];   /* driver name and version text */
    char api[16];       /* "1.3.239" */
    uint64_t mem_bytes; /* largest device-local heap */
    bool is_cpu, is_discrete;
    char pci[16];             /* "0000:01:00.0", or "" when the driver does not say */
    int pcie_gen, pcie_width; /* current link from sysfs (Linux), 0 when unknown */
    uint32_t subgroup_size;   /* 0 when compute shaders have no subgroups */
} vulkan_device_info;

/* Fills out[0..*n) (at most cap) with every Vulkan device, CPU implementations included.
 * Without a loader or devices: OB_OK with *n = 0 when the loader works, else
 * OB_ERR_UNSUPPORTED naming why. */
ob_status vulkan_devices_list(vulkan_device_info *out, int cap, int *n, ob_err *err);

/* The device --device vulkan (no index) and auto take: the first discrete, then integrated or
 * virtual GPU; -1 when there is none (CPU implementations such as lavapipe are taken only by
 * index). */
int vulkan_device_default(const vulkan_device_info *list, int n, bool discrete_only);

/* Whether the backend's matrix-product shaders read this ob_qtype. */
bool vulkan_type_supported(uint32_t type);

/* Whether the backend runs mixture-of-experts blocks of these sizes on the device (the op
 * moe_ffn): no shared expert, at most 64 experts per token and 1,024 experts. */
bool vulkan_moe_supported(int64_t n_expert, int64_t n_used, int64_t n_ff_shexp);

/* Validation-layer messages (warnings and errors) reported since the process started; the
 * layer is on when the environment sets OB_VK_VALIDATE=1. Tests require 0. */
uint64_t vulkan_validation_messages(void);

/* Test hook: kind 1 makes the next device allocation fail as out of device memory, kind 2
 * the next submit report a lost device, kind 3 the next free-memory query say 1 MiB. */
void vulkan_fault_set(int kind);

#endif
