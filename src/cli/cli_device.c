/*
 * What crossed the host<->device link, for the commands that run a model with --device (its
 * value, cpu, cuda[:N], vulkan[:N] or auto, is parsed in cli_opts.c): which device auto took
 * (cli_device_chosen), and the CUDA layer's counted copies (cli_device_report).
 */
#include "cli/cli.h"

#include "cuda/cuda_backend.h"

#include <stdio.h>
#include <string.h>

void cli_device_chosen(FILE *to, const ob_context_params *cp, const ob_context *c) {
    if (cp->device != OB_DEVICE_AUTO) return;
    const char *dev = ob_context_device(c);
    fprintf(to, "device: auto -> %s%s\n", dev,
            !strcmp(dev, "cpu") ? " (no CUDA device or discrete Vulkan GPU)" : "");
}

void cli_device_report(FILE *to) {
    cuda_copy_stats s;
    cuda_copy_stats_get(&s);
    if (!s.h2d_count && !s.d2h_count) return;
    fprintf(to, "link: %llu copies, %.1f MiB to the device; %llu copies, %.1f MiB back\n",
            (unsigned long long)s.h2d_count, (double)s.h2d_bytes / 1048576.0,
            (unsigned long long)s.d2h_count, (double)s.d2h_bytes / 1048576.0);
}
