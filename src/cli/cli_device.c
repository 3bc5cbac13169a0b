/*
 * The --device option shared by the commands that run a model: cpu (the default), cuda (the
 * first CUDA device, an error without one) or auto (CUDA when present, else the CPU). With
 * --verbose-style reporting in mind, cli_device_report prints what crossed the host<->device
 * link, from the CUDA layer's counted copy path.
 */
#include "cli/cli.h"

#include "cuda/cuda_backend.h"

#include <stdio.h>
#include <string.h>

int cli_parse_device(const char *s, ob_device *out) {
    if (!strcmp(s, "cpu")) *out = OB_DEVICE_CPU;
    else if (!strcmp(s, "cuda")) *out = OB_DEVICE_CUDA;
    else if (!strcmp(s, "auto")) *out = OB_DEVICE_AUTO;
    else {
        fprintf(stderr, "outboard: --device '%s': expected cpu, cuda or auto\n", s);
        return -1;
    }
    return 0;
}

void cli_device_report(FILE *to) {
    cuda_copy_stats s;
    cuda_copy_stats_get(&s);
    if (!s.h2d_count && !s.d2h_count) return;
    fprintf(to, "link: %llu copies, %.1f MiB to the device; %llu copies, %.1f MiB back\n",
            (unsigned long long)s.h2d_count, (double)s.h2d_bytes / 1048576.0,
            (unsigned long long)s.d2h_count, (double)s.d2h_bytes / 1048576.0);
}
