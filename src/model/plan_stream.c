/*
 * Weight streaming in the plan (stream.h): from which size a pass's products of the host's
 * layers go to the device, the buffer that takes one weight at a time there, and the bytes a
 * streamed chunk sends over the link. With OB_STREAM_AUTO the choice compares, per pass size,
 * the host's layers on the CPU against the same layers with their products on the device,
 * costed as the prediction costs them (plan_stream_cost_of): the CPU's rate for a chunk's
 * multiply-adds, the device's, and the link's bandwidth and latency for each product's
 * weight and rows. The difference of the two is linear in the rows (the weight crosses once
 * whatever their number; each row adds its multiply-adds and its input and output floats),
 * so a bisection finds the smallest size from which streaming stays faster.
 */
#include "core/alloc.h"
#include "cuda/cuda_backend.h"
#include "gguf/qtype.h"
#include "model/calib.h"
#include "model/context.h"
#include "model/stream.h"
#include "vulkan/vulkan_backend.h"

#include <stdio.h>
#include <string.h>

bool model_plan_streams(const char *device) {
    return !strcmp(device, "vulkan") || !strcmp(device, "cuda");
}

uint64_t model_stream_buffer_bytes(const ob_model *m, int64_t lo, int64_t hi) {
    const model_backend_weights *ws = &m->w.for_backends;
    uint64_t most = 0;
    for (int64_t i = 0; i < ws->n; i++) {
        const model_weight *w = ws->table[i];
        const uint64_t bytes = (uint64_t)w->n_out * w->row_size;
        if (model_weight_streamable(w, lo, hi) && bytes > most) most = bytes;
    }
    return most;
}

/* The first product weight of layers [lo, hi) that device kind `device` has no kernel for,
 * NULL when it runs them all. */
static const model_weight *unstreamable(const ob_model *m, const char *device, int64_t lo,
                                        int64_t hi) {
    const model_backend_weights *ws = &m->w.for_backends;
    const bool cuda = !strcmp(device, "cuda");
    for (int64_t i = 0; i < ws->n; i++) {
        const model_weight *w = ws->table[i];
        if (!model_weight_streamable(w, lo, hi)) continue;
        if (!(cuda ? cuda_type_supported(w->type) : vulkan_type_supported(w->type))) return w;
    }
    return NULL;
}

/* Whether streaming a pass of n rows beats the CPU, the two costs in *cpu_s and *stream_s. */
static bool pays(const ob_model *m, const ob_context_params *p, const ob_plan *plan,
                 const calib *c, int64_t n, double *cpu_s, double *stream_s) {
    plan_stream_cost sc;
    plan_stream_cost_of(m, p, plan, c, n, &sc);
    *cpu_s = sc.cpu_s;
    *stream_s = sc.rest_s + sc.device_s + sc.link_s;
    return *stream_s < *cpu_s;
}

/* The smallest pass size from which streaming pays, 0 when not even at n_batch; *why says so
 * with the figures of a full chunk. */
static int64_t auto_min(const ob_model *m, const ob_context_params *p, const ob_plan *plan,
                        bool is_cpu, char *why, size_t cap) {
    calib *c = ob_alloc(1, sizeof *c);
    if (c && calib_load(NULL, c, NULL)) {
        ob_free(c);
        c = NULL;
    }
    const bool measured = c && calib_backend_find(c, plan->device_key, 0);
    int64_t found = 0;
    double cpu_s, stream_s;
    const int64_t n_batch = p->n_batch;
    if (is_cpu && !measured) {
        /* the defaults describe a GPU; this device is the host's own cores */
        snprintf(why, cap, "never: the device is a CPU implementation, not calibrated");
    } else if (n_batch < 2 || !pays(m, p, plan, c, n_batch, &cpu_s, &stream_s)) {
        if (n_batch < 2) cpu_s = stream_s = 0;
        snprintf(why, cap, "never: the CPU is faster even at %lld rows (%.3g s against %.3g s "
                 "streamed%s)", (long long)n_batch, cpu_s, stream_s,
                 measured ? "" : ", uncalibrated");
    } else {
        int64_t lo = 1, hi = n_batch; /* streaming pays at hi, not at lo (or lo is 1) */
        while (hi - lo > 1) {
            const int64_t mid = lo + (hi - lo) / 2;
            double a, b;
            if (pays(m, p, plan, c, mid, &a, &b)) hi = mid;
            else lo = mid;
        }
        found = hi < 2 ? 2 : hi;
        snprintf(why, cap, "from %lld rows the device beats the CPU (a chunk of %lld: %.3g s "
                 "streamed against %.3g s%s)", (long long)found, (long long)n_batch, stream_s,
                 cpu_s, measured ? "" : ", uncalibrated");
    }
    ob_free(c);
    return found;
}

void model_plan_stream(const ob_model *m, const ob_context_params *p, bool has_device,
                       bool is_cpu, ob_plan *plan) {
    const int64_t host_layers = plan->host.layer_hi - plan->host.layer_lo;
    char *why = plan->stream_why;
    const size_t cap = sizeof plan->stream_why;
    const model_weight *bad;
    plan->stream_min_tok = 0;
    plan->stream_chunk = 0;
    plan->device.stream = 0;
    if (p->stream_min_tok == 0) snprintf(why, cap, "off, as asked");
    else if (!has_device) snprintf(why, cap, "no device");
    else if (host_layers <= 0) snprintf(why, cap, "every layer is on the device");
    else if (!model_plan_streams(plan->device.device))
        snprintf(why, cap, "the %s backend does not stream host weights", plan->device.device);
    else if ((bad = unstreamable(m, plan->device.device, plan->host.layer_lo,
                                 plan->host.layer_hi)))
        snprintf(why, cap, "never: the %s backend has no kernel for %s (tensor %.60s)",
                 plan->device.device, gguf_qtype_name(bad->type), bad->name);
    else if (p->stream_min_tok == OB_STREAM_AUTO && p->n_gpu_layers == 0)
        snprintf(why, cap, "off: --gpu-layers 0 keeps the CPU alone (ask for a size to stream)");
    else if (p->stream_min_tok > 0) {
        plan->stream_min_tok = p->stream_min_tok;
        snprintf(why, cap, "passes of %lld+ rows, as asked", (long long)p->stream_min_tok);
    } else {
        plan->stream_min_tok = auto_min(m, p, plan, is_cpu, why, cap);
    }
    if (plan->stream_min_tok == 0) return;
    plan->device.stream =
        model_stream_buffer_bytes(m, plan->host.layer_lo, plan->host.layer_hi);
    if (p->n_batch < plan->stream_min_tok) return; /* no chunk is that long */
    plan_work w;
    plan_work_of(m, plan->host.layer_lo, plan->host.layer_hi, p->n_batch, &w);
    const double rows = (double)p->n_batch * 4;
    plan->stream_chunk = (uint64_t)w.stream_weight_bytes;
    plan->link_chunk +=
        (uint64_t)(w.stream_weight_bytes + rows * w.stream_in + rows * w.stream_out);
}
