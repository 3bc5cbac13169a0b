/*
 * Devices as the commands that run a model with --device show them (its value, cpu,
 * cuda[:N], vulkan[:N] or auto, and --gpu-layers are parsed in cli_opts.c): the context made
 * with a bar while weights are prepared (cli_context_new), where its layers run
 * (cli_device_chosen), and what crossed the host<->device link (cli_device_report).
 */
#include "cli/cli.h"

#include "cuda/cuda_backend.h"

#include <stdio.h>
#include <string.h>

void cli_device_chosen(FILE *to, const ob_context_params *cp, const ob_context *c) {
    if (cp->device == OB_DEVICE_CPU) return;
    const char *dev = ob_context_device(c);
    fprintf(to, "device: %s%s\n", cp->device == OB_DEVICE_AUTO ? "auto -> " : "",
            ob_context_placement(c));
    if (cp->device == OB_DEVICE_AUTO && !strcmp(dev, "cpu"))
        fprintf(to, "device: no CUDA device or discrete Vulkan GPU\n");
}

void cli_bar_for_context(cli_bar *bar, ob_context_params *p) {
    cli_bar_start(bar, p->device == OB_DEVICE_CPU ? "preparing" : "weights");
    p->progress = cli_bar_progress;
    p->progress_user = bar;
}

ob_status cli_context_new(ob_model *m, const ob_context_params *cp, ob_context **out,
                          ob_err *err) {
    cli_bar bar;
    ob_context_params p = *cp;
    cli_bar_for_context(&bar, &p);
    ob_status st = ob_context_new(m, &p, out, err);
    cli_bar_end(&bar);
    if (!st) cli_device_chosen(stderr, cp, *out);
    return st;
}

void cli_device_report(FILE *to, const ob_context *c) {
    cuda_copy_stats s;
    cuda_copy_stats_get(&s);
    if (s.h2d_count || s.d2h_count)
        fprintf(to, "link: %llu copies, %.1f MiB to the device; %llu copies, %.1f MiB back\n",
                (unsigned long long)s.h2d_count, (double)s.h2d_bytes / 1048576.0,
                (unsigned long long)s.d2h_count, (double)s.d2h_bytes / 1048576.0);
    ob_transfer_stats t;
    ob_context_transfer_stats(c, &t);
    if (t.copies)
        fprintf(to, "activations: %llu copies to the device, %.2f MiB, %.1f ms (waiting for "
                "the device included); %.2f MiB back\n", (unsigned long long)t.copies,
                (double)t.bytes / 1048576.0, (double)t.ns / 1e6,
                (double)t.bytes_back / 1048576.0);
}
