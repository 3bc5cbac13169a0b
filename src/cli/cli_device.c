/*
 * What crossed the host<->device link, for the commands that run a model with --device (its
 * value, cpu, cuda or auto, is parsed in cli_opts.c): cli_device_report prints the CUDA
 * layer's counted copies.
 */
#include "cli/cli.h"

#include "cuda/cuda_backend.h"

#include <stdio.h>

void cli_device_report(FILE *to) {
    cuda_copy_stats s;
    cuda_copy_stats_get(&s);
    if (!s.h2d_count && !s.d2h_count) return;
    fprintf(to, "link: %llu copies, %.1f MiB to the device; %llu copies, %.1f MiB back\n",
            (unsigned long long)s.h2d_count, (double)s.h2d_bytes / 1048576.0,
            (unsigned long long)s.d2h_count, (double)s.d2h_bytes / 1048576.0);
}
