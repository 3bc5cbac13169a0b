/*
 * Vulkan instance and device discovery: the instance (the validation layer on request, the
 * portability enumeration MoltenVK needs), the list of physical devices with what `outboard
 * devices` prints, the merging of one GPU seen through two drivers (same deviceUUID, e.g.
 * RADV and AMDVLK), and the logical device with one compute queue.
 */
#include "vulkan/vulkan_impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t g_validation_msgs;

uint64_t vulkan_validation_messages(void) {
    return g_validation_msgs;
}
uint64_t vulkan_validation_count(void) {
    return g_validation_msgs;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                 VkDebugUtilsMessageTypeFlagsEXT type,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *d,
                                                 void *user) {
    (void)type, (void)user;
    if (sev & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
               VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)) {
        g_validation_msgs++;
        fprintf(stderr, "vulkan validation: %s\n", d && d->pMessage ? d->pMessage : "?");
    }
    return VK_FALSE;
}

static bool want_validation(void) {
    const char *v = getenv("OB_VK_VALIDATE");
    return v && !strcmp(v, "1");
}

static bool has_layer(const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0) return false;
    VkLayerProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = !strcmp(p[i].layerName, name);
    free(p);
    return found;
}

static bool has_instance_ext(const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && vkEnumerateInstanceExtensionProperties(NULL, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = !strcmp(p[i].extensionName, name);
    free(p);
    return found;
}

/* An instance for Vulkan 1.2; with validate, the Khronos layer and a messenger that counts. */
static ob_status instance_new(bool validate, VkInstance *inst, VkDebugUtilsMessengerEXT *msgr,
                              ob_err *err) {
    const char *exts[3], *layers[1];
    uint32_t n_ext = 0, n_layer = 0;
    VkInstanceCreateFlags flags = 0;
    if (has_instance_ext(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        exts[n_ext++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    if (validate && !has_layer("VK_LAYER_KHRONOS_validation")) {
        fprintf(stderr, "vulkan: OB_VK_VALIDATE=1 but VK_LAYER_KHRONOS_validation is not "
                        "installed; running without it\n");
        validate = false;
    }
    if (validate) {
        layers[n_layer++] = "VK_LAYER_KHRONOS_validation";
        exts[n_ext++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    }
    const VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                                   .pApplicationName = "outboard",
                                   .apiVersion = VK_API_VERSION_1_2};
    const VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                                     .flags = flags,
                                     .pApplicationInfo = &app,
                                     .enabledLayerCount = n_layer,
                                     .ppEnabledLayerNames = layers,
                                     .enabledExtensionCount = n_ext,
                                     .ppEnabledExtensionNames = exts};
    *msgr = VK_NULL_HANDLE;
    VkResult r = vkCreateInstance(&ci, NULL, inst);
    if (r != VK_SUCCESS)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "no Vulkan: vkCreateInstance: %s",
                       vulkan_result_name(r));
    if (!validate) return OB_OK;
    PFN_vkCreateDebugUtilsMessengerEXT create =
        (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(*inst,
                                                                  "vkCreateDebugUtilsMessengerEXT");
    const VkDebugUtilsMessengerCreateInfoEXT mi = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_message};
    if (create) create(*inst, &mi, NULL, msgr);
    return OB_OK;
}


/* ---- device descriptions --------------------------------------------------------------- */

static const char *vendor_name(uint32_t id, char *buf, size_t cap) {
    switch (id) {
    case 0x10de: return "NVIDIA";
    case 0x1002: return "AMD";
    case 0x8086: return "Intel";
    case 0x106b: return "Apple";
    case 0x10005: return "Mesa";
    default: snprintf(buf, cap, "0x%04x", id); return buf;
    }
}

static const char *type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

static bool has_device_ext(VkPhysicalDevice pd, const char *name) {
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && vkEnumerateDeviceExtensionProperties(pd, NULL, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = !strcmp(p[i].extensionName, name);
    free(p);
    return found;
}

/* PCIe link generation from sysfs's current_link_speed ("16.0 GT/s PCIe"). */
static int link_gen(double gts) {
    static const double speeds[] = {2.5, 5.0, 8.0, 16.0, 32.0, 64.0};
    for (int i = 0; i < 6; i++)
        if (gts > speeds[i] - 0.1 && gts < speeds[i] + 0.1) return i + 1;
    return 0;
}

static void read_pcie_link(vulkan_device_info *d) {
    char path[128];
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/current_link_speed", d->pci);
    FILE *f = fopen(path, "r");
    double gts = 0;
    if (f) {
        if (fscanf(f, "%lf", &gts) != 1) gts = 0;
        fclose(f);
    }
    d->pcie_gen = link_gen(gts);
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/current_link_width", d->pci);
    f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%d", &d->pcie_width) != 1) d->pcie_width = 0;
        fclose(f);
    }
}

/* Fills d from pd; uuid receives its deviceUUID. */
static void describe(VkPhysicalDevice pd, int index, vulkan_device_info *d, uint8_t uuid[16]) {
    VkPhysicalDevicePCIBusInfoPropertiesEXT pci = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PCI_BUS_INFO_PROPERTIES_EXT};
    VkPhysicalDeviceSubgroupProperties sg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceDriverProperties drv = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES, .pNext = &sg};
    VkPhysicalDeviceIDProperties id = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES,
                                       .pNext = &drv};
    const bool has_pci = has_device_ext(pd, VK_EXT_PCI_BUS_INFO_EXTENSION_NAME);
    if (has_pci) pci.pNext = &id;
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = has_pci ? (void *)&pci : (void *)&id};
    vkGetPhysicalDeviceProperties2(pd, &p2);
    const VkPhysicalDeviceProperties *p = &p2.properties;
    char vbuf[16];
    memset(d, 0, sizeof *d);
    d->index = index;
    snprintf(d->name, sizeof d->name, "%s", p->deviceName);
    snprintf(d->vendor, sizeof d->vendor, "%s", vendor_name(p->vendorID, vbuf, sizeof vbuf));
    snprintf(d->type, sizeof d->type, "%s", type_name(p->deviceType));
    snprintf(d->driver, sizeof d->driver, "%.60s %.90s", drv.driverName, drv.driverInfo);
    snprintf(d->api, sizeof d->api, "%u.%u.%u", VK_API_VERSION_MAJOR(p->apiVersion),
             VK_API_VERSION_MINOR(p->apiVersion), VK_API_VERSION_PATCH(p->apiVersion));
    d->is_cpu = p->deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    d->is_discrete = p->deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
    d->subgroup_size = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) ? sg.subgroupSize : 0;
    memcpy(uuid, id.deviceUUID, 16);
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    for (uint32_t h = 0; h < mp.memoryHeapCount; h++)
        if ((mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            mp.memoryHeaps[h].size > d->mem_bytes)
            d->mem_bytes = mp.memoryHeaps[h].size;
    if (has_pci && !d->is_cpu) {
        snprintf(d->pci, sizeof d->pci, "%04x:%02x:%02x.%x", pci.pciDomain & 0xffff,
                 pci.pciBus & 0xff, pci.pciDevice & 0x1f, pci.pciFunction & 0x7);
        read_pcie_link(d);
    }
}

/* The physical devices of inst, merged by deviceUUID, at most cap: pds[i] describes out[i]. */
static int enumerate(VkInstance inst, VkPhysicalDevice *pds, vulkan_device_info *out, int cap) {
    uint32_t n = 0;
    if (vulkan_fault_detached()) return 0;
    if (vkEnumeratePhysicalDevices(inst, &n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkPhysicalDevice *all = calloc(n, sizeof *all);
    uint8_t(*uuids)[16] = calloc(n, 16);
    int kept = 0;
    if (all && uuids && vkEnumeratePhysicalDevices(inst, &n, all) == VK_SUCCESS) {
        for (uint32_t i = 0; i < n && kept < cap; i++) {
            describe(all[i], kept, &out[kept], uuids[kept]);
            bool dup = false;
            for (int j = 0; j < kept && !dup; j++)
                dup = !memcmp(uuids[j], uuids[kept], 16);
            if (dup) continue; /* the same GPU through a second driver: the first one stays */
            pds[kept++] = all[i];
        }
    }
    free(all);
    free(uuids);
    return kept;
}

/* The instance that lists devices, made once and kept for the life of the process. Listing
 * happens whenever a context looks for a device (--device auto); keeping it avoids loading
 * and unloading every driver each time, and it keeps the drivers loaded while contexts come
 * and go: Mesa's lavapipe leaves a buffer behind each time it is unloaded. */
static pthread_once_t g_list_once = PTHREAD_ONCE_INIT;
static VkInstance g_list_inst;
static ob_err g_list_err;
static ob_status g_list_st;

static void list_instance_open(void) {
    VkDebugUtilsMessengerEXT msgr = VK_NULL_HANDLE;
    g_list_st = instance_new(false, &g_list_inst, &msgr, &g_list_err);
}

ob_status vulkan_devices_list(vulkan_device_info *out, int cap, int *n, ob_err *err) {
    VkPhysicalDevice pds[VULKAN_MAX_DEVICES];
    *n = 0;
    pthread_once(&g_list_once, list_instance_open);
    if (g_list_st) {
        if (err) *err = g_list_err;
        return g_list_st;
    }
    *n = enumerate(g_list_inst, pds, out, cap < VULKAN_MAX_DEVICES ? cap : VULKAN_MAX_DEVICES);
    return OB_OK;
}

int vulkan_device_default(const vulkan_device_info *list, int n, bool discrete_only) {
    for (int i = 0; i < n; i++)
        if (list[i].is_discrete) return i;
    if (discrete_only) return -1;
    for (int i = 0; i < n; i++)
        if (!list[i].is_cpu) return i;
    return -1;
}

/* ---- opening one device ---------------------------------------------------------------- */

static ob_status pick_queue(vulkan_ctx *c, ob_err *err) {
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(c->phys, &n, NULL);
    VkQueueFamilyProperties *q = calloc(n ? n : 1, sizeof *q);
    if (!q) return ob_fail(err, OB_ERR_NOMEM, "vulkan: out of memory");
    vkGetPhysicalDeviceQueueFamilyProperties(c->phys, &n, q);
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
        /* a compute-only family first (AMD's async compute), else any with compute */
        if (best == UINT32_MAX || !(q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) best = i;
    }
    free(q);
    if (best == UINT32_MAX)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "vulkan: %s has no compute queue", c->info.name);
    c->qfam = best;
    return OB_OK;
}

static ob_status device_new(vulkan_ctx *c, ob_err *err) {
    ob_status st = pick_queue(c, err);
    if (st) return st;
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                    .pNext = &f12};
    vkGetPhysicalDeviceFeatures2(c->phys, &f2);
    if (!f12.timelineSemaphore)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "vulkan: %s lacks timeline semaphores",
                       c->info.name);
    VkPhysicalDeviceVulkan12Features on12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
        .timelineSemaphore = VK_TRUE};
    const float prio = 1.0f;
    const VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                        .queueFamilyIndex = c->qfam,
                                        .queueCount = 1,
                                        .pQueuePriorities = &prio};
    const char *exts[2];
    uint32_t n_ext = 0;
    if (has_device_ext(c->phys, "VK_KHR_portability_subset"))
        exts[n_ext++] = "VK_KHR_portability_subset"; /* required where offered (MoltenVK) */
    if (has_device_ext(c->phys, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME))
        exts[n_ext++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
    const VkDeviceCreateInfo di = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                                   .pNext = &on12,
                                   .queueCreateInfoCount = 1,
                                   .pQueueCreateInfos = &qi,
                                   .enabledExtensionCount = n_ext,
                                   .ppEnabledExtensionNames = exts};
    VkResult r = vkCreateDevice(c->phys, &di, NULL, &c->dev);
    if (r != VK_SUCCESS)
        return ob_fail(err, OB_ERR_DEVICE, "vulkan: vkCreateDevice (%s): %s", c->info.name,
                       vulkan_result_name(r));
    vkGetDeviceQueue(c->dev, c->qfam, 0, &c->queue);
    return OB_OK;
}

/* Limits and capabilities the ops need. OB_VK_MAX_RANGE lowers maxStorageBufferRange (tests
 * use it to exercise split weights on any device); OB_VK_UNMAPPED=1 leaves device buffers
 * unmapped even where the host could map them, so that an integrated GPU or lavapipe takes the
 * path of a discrete card, whose uploads and reads go through the staging arena. */
static void read_limits(vulkan_ctx *c) {
    VkPhysicalDeviceSubgroupProperties sg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = &sg};
    vkGetPhysicalDeviceProperties2(c->phys, &p2);
    const VkPhysicalDeviceLimits *l = &p2.properties.limits;
    c->align = l->minStorageBufferOffsetAlignment < 4 ? 4 : l->minStorageBufferOffsetAlignment;
    c->max_range = l->maxStorageBufferRange;
    const char *env = getenv("OB_VK_MAX_RANGE");
    if (env && strtoull(env, NULL, 10) >= 4096 && strtoull(env, NULL, 10) < c->max_range)
        c->max_range = strtoull(env, NULL, 10);
    c->max_range &= ~(VkDeviceSize)(c->align - 1);
    const char *unmapped = getenv("OB_VK_UNMAPPED");
    c->unmapped = unmapped && !strcmp(unmapped, "1");
    c->max_groups = l->maxComputeWorkGroupCount[0];
    const bool compute = sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT;
    c->subgroup_size = compute ? sg.subgroupSize : 0;
    c->subgroup_arith = compute && (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    vkGetPhysicalDeviceMemoryProperties(c->phys, &c->memp);
    for (uint32_t i = 0; i < c->memp.memoryTypeCount; i++) {
        const VkMemoryPropertyFlags f = c->memp.memoryTypes[i].propertyFlags;
        if ((f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) &&
            (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) && (f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT))
            c->unified = true;
    }
}

ob_status vulkan_instance_open(vulkan_ctx *c, int index, ob_err *err) {
    pthread_once(&g_list_once, list_instance_open); /* the drivers stay loaded (see above) */
    ob_status st = instance_new(want_validation(), &c->inst, &c->messenger, err);
    if (st) return st;
    VkPhysicalDevice pds[VULKAN_MAX_DEVICES];
    vulkan_device_info list[VULKAN_MAX_DEVICES];
    const int n = enumerate(c->inst, pds, list, VULKAN_MAX_DEVICES);
    if (index < 0) index = vulkan_device_default(list, n, false);
    if (index < 0 || index >= n) {
        int cpu = -1;
        for (int i = 0; i < n && cpu < 0; i++)
            cpu = list[i].is_cpu ? i : -1;
        if (n == 0) return ob_fail(err, OB_ERR_UNSUPPORTED, "no Vulkan device");
        if (cpu >= 0 && index < 0)
            return ob_fail(err, OB_ERR_UNSUPPORTED,
                           "no Vulkan GPU: only the CPU "
                           "implementation '%s' (choose it with --device vulkan:%d)",
                           list[cpu].name, cpu);
        return ob_fail(err, OB_ERR_UNSUPPORTED,
                       "no Vulkan device %d (%d devices: see "
                       "`outboard devices`)",
                       index, n);
    }
    c->phys = pds[index];
    c->info = list[index];
    read_limits(c);
    return device_new(c, err);
}
