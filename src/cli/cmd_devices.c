/*
 * `outboard devices`: every device a model could run on, one line each with the facts that
 * decide the choice: the CPU (cores, memory), CUDA devices, and Vulkan devices (name, vendor,
 * type, memory, driver; for PCIe devices on Linux the link generation and width from sysfs).
 * The index printed for Vulkan is what --device vulkan:N takes.
 */
#include "cli/cli.h"

#include "cpu/pool.h"
#include "cuda/cuda_backend.h"
#include "vulkan/vulkan_backend.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static double gib(double bytes) {
    return bytes / (1024.0 * 1024.0 * 1024.0);
}

/* The CPU's model name from /proc/cpuinfo (Linux), or "CPU". */
static void cpu_name(char *out, size_t cap) {
    snprintf(out, cap, "CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) || !colon) continue;
        colon += 1 + (colon[1] == ' ');
        colon[strcspn(colon, "\n")] = 0;
        snprintf(out, cap, "%s", colon);
        break;
    }
    fclose(f);
}

static void list_cpu(void) {
    char name[256];
    cpu_name(name, sizeof name);
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    printf("cpu        %s: %d cores, %.1f GiB memory\n", name, cpu_physical_cores(),
           pages > 0 && page > 0 ? gib((double)pages * (double)page) : 0.0);
}

static void list_cuda(void) {
    int n = 0;
    ob_err err = {{0}};
    if (cuda_device_count(&n, &err)) {
        printf("cuda       none (%s)\n", err.msg);
        return;
    }
    for (int i = 0; i < n; i++) {
        cuda_device_info d;
        if (cuda_device_get_info(i, &d, &err)) continue;
        printf("cuda:%-5d %s: compute %d.%d, %d SMs, %.1f GiB (%.1f free), driver CUDA %d.%d\n", i,
               d.name, d.cc_major, d.cc_minor, d.sm_count, gib((double)d.mem_total),
               gib((double)d.mem_free), d.driver_version / 1000, d.driver_version % 1000 / 10);
    }
}

static void list_vulkan(void) {
    vulkan_device_info list[VULKAN_MAX_DEVICES];
    int n = 0;
    ob_err err = {{0}};
    if (vulkan_devices_list(list, VULKAN_MAX_DEVICES, &n, &err) || n == 0) {
        printf("vulkan     none (%s)\n", err.msg[0] ? err.msg : "no Vulkan device");
        return;
    }
    for (int i = 0; i < n; i++) {
        const vulkan_device_info *d = &list[i];
        char link[64] = "";
        if (d->pcie_gen > 0)
            snprintf(link, sizeof link, ", PCIe %s gen %d x%d", d->pci, d->pcie_gen, d->pcie_width);
        else if (d->pci[0])
            snprintf(link, sizeof link, ", PCI %s", d->pci);
        printf("vulkan:%-3d %s: %s %s, %.1f GiB, Vulkan %s, driver %s%s%s\n", i, d->name, d->vendor,
               d->type, gib((double)d->mem_bytes), d->api, d->driver, link,
               d->is_cpu ? " (CPU implementation: only by index)" : "");
    }
}

int cli_cmd_devices(int argc, char **argv) {
    (void)argv;
    if (argc > 1) {
        printf("usage: outboard devices\n\nLists the CPU, CUDA and Vulkan devices; "
               "--device cpu|cuda[:N]|vulkan[:N]|auto picks one.\n");
        return strcmp(argv[1], "--help") && strcmp(argv[1], "-h") ? 2 : 0;
    }
    list_cpu();
    list_cuda();
    list_vulkan();
    return 0;
}
