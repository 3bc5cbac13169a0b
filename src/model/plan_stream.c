/*
 * Weight streaming in the plan (stream.h): from which size a pass's products of what the host
 * runs (its layers, and the MoE blocks of device layers whose experts stay on the host) go to
 * the device, the buffer that takes one weight at a time there, and the bytes a streamed chunk
 * sends over the link. A layer's own product gets every row of a pass; a routed expert's gets
 * the rows routed to it, and streams when those reach the same size: a product's cost is
 * linear in its rows on either side, with slopes set by its type's rates and the link, so its
 * break-even in rows hardly depends on its size. With OB_STREAM_AUTO the choice compares, per
 * size, those products on the CPU against the same products on the device, costed as the
 * prediction costs them (plan_stream_cost_of, each product given that many rows): the CPU's
 * rate for their multiply-adds, the device's, and the link's bandwidth and latency for each
 * product's weight and rows. The difference of the two is linear in the rows (the weight
 * crosses once whatever their number; each row adds its multiply-adds and its input and output
 * floats), so a bisection finds the smallest size from which streaming stays faster. A chunk's
 * routed experts are counted by expectation (plan_routed_rows).
 */
#include "core/alloc.h"
#include "cuda/cuda_backend.h"
#include "gguf/qtype.h"
#include "model/calib.h"
#include "model/context.h"
#include "model/stream.h"
#include "vulkan/vulkan_backend.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

bool model_plan_streams(const char *device) {
    return !strcmp(device, "vulkan") || !strcmp(device, "cuda");
}

/* Whether the host runs product weight w of a plan whose host layers are [lo, hi) and whose
 * device layers from moe_lo (n_layer: none) keep their MoE blocks on the host, and may stream
 * it. */
static bool host_streams(const model_weight *w, int64_t lo, int64_t hi, int64_t moe_lo,
                         int64_t n_layer) {
    return model_weight_streamable(w, lo, hi) ||
           (w->expert && model_weight_streamable(w, moe_lo, n_layer));
}

/* The largest weight host_streams takes. */
static uint64_t buffer_bytes(const ob_model *m, int64_t lo, int64_t hi, int64_t moe_lo) {
    const model_backend_weights *ws = &m->w.for_backends;
    uint64_t most = 0;
    for (int64_t i = 0; i < ws->n; i++) {
        const model_weight *w = ws->table[i];
        const uint64_t bytes = (uint64_t)w->n_out * w->row_size;
        if (host_streams(w, lo, hi, moe_lo, m->hp.n_layer) && bytes > most) most = bytes;
    }
    return most;
}

uint64_t model_stream_buffer_bytes(const ob_model *m, int64_t lo, int64_t hi) {
    return buffer_bytes(m, lo, hi, m->hp.n_layer);
}

/* The first weight host_streams takes that device kind `device` has no kernel for, NULL when
 * it runs them all. */
static const model_weight *unstreamable(const ob_model *m, const char *device, int64_t lo,
                                        int64_t hi, int64_t moe_lo) {
    const model_backend_weights *ws = &m->w.for_backends;
    const bool cuda = !strcmp(device, "cuda");
    for (int64_t i = 0; i < ws->n; i++) {
        const model_weight *w = ws->table[i];
        if (!host_streams(w, lo, hi, moe_lo, m->hp.n_layer)) continue;
        if (!(cuda ? cuda_type_supported(w->type) : vulkan_type_supported(w->type))) return w;
    }
    return NULL;
}

/* Whether streaming products of n rows beats running them on the CPU, the two costs of a pass
 * in which every product gets n rows in *cpu_s and *stream_s. */
static bool pays(const ob_model *m, const ob_context_params *p, const ob_plan *plan,
                 const calib *c, int64_t n, double *cpu_s, double *stream_s) {
    plan_stream_cost sc;
    plan_stream_cost_of(m, p, plan, c, n, 0, &sc);
    *cpu_s = sc.moved_s;
    *stream_s = sc.device_s + sc.link_s;
    return *stream_s < *cpu_s;
}

/* A pass of a chunk of n rows whose products of min_tok rows or more stream: on the CPU alone
 * (*cpu_s) and so (*stream_s). */
static void chunk_costs(const ob_model *m, const ob_context_params *p, const ob_plan *plan,
                        const calib *c, int64_t n, int64_t min_tok, double *cpu_s,
                        double *stream_s) {
    plan_stream_cost sc;
    plan_stream_cost_of(m, p, plan, c, n, min_tok, &sc);
    *cpu_s = sc.cpu_s;
    *stream_s = sc.rest_s + sc.device_s + sc.link_s;
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
        snprintf(why, cap, "never: the CPU is faster even at %lld rows (its products %.3g s "
                 "against %.3g s streamed%s)", (long long)n_batch, cpu_s, stream_s,
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
        chunk_costs(m, p, plan, c, n_batch, found, &cpu_s, &stream_s);
        snprintf(why, cap, "from %lld rows the device beats the CPU (a chunk of %lld: %.3g s "
                 "streamed against %.3g s%s)", (long long)found, (long long)n_batch, stream_s,
                 cpu_s, measured ? "" : ", uncalibrated");
    }
    ob_free(c);
    return found;
}

void model_plan_stream(const ob_model *m, const ob_context_params *p, bool has_device,
                       bool is_cpu, ob_plan *plan) {
    const int64_t n_layer = m->hp.n_layer;
    const int64_t lo = plan->host.layer_lo, hi = plan->host.layer_hi;
    /* the device's layers whose routed experts the host runs: from moe_lo */
    const int64_t moe_lo = plan->experts_on_host ? plan->experts.layer_lo : n_layer;
    char *why = plan->stream_why;
    const size_t cap = sizeof plan->stream_why;
    const model_weight *bad;
    plan->stream_min_tok = 0;
    plan->stream_chunk = plan->stream_experts = plan->link_experts = 0;
    plan->device.stream = 0;
    if (p->stream_min_tok == 0) snprintf(why, cap, "off, as asked");
    else if (!has_device) snprintf(why, cap, "no device");
    else if (hi <= lo && moe_lo >= n_layer) snprintf(why, cap, "every layer is on the device");
    else if (!model_plan_streams(plan->device.device))
        snprintf(why, cap, "the %s backend does not stream host weights", plan->device.device);
    else if ((bad = unstreamable(m, plan->device.device, lo, hi, moe_lo)))
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
    plan->device.stream = buffer_bytes(m, lo, hi, moe_lo);
    if (p->n_batch < plan->stream_min_tok) return; /* no chunk is that long */
    plan_stream_cost sc; /* its bytes need no rates */
    plan_stream_cost_of(m, p, plan, NULL, p->n_batch, plan->stream_min_tok, &sc);
    /* the layers' own products exactly (whole numbers), the routed experts' expected */
    plan->stream_experts = (uint64_t)llround(sc.expert_weight);
    plan->link_experts = (uint64_t)llround(sc.expert_over + sc.expert_back);
    plan->stream_chunk = (uint64_t)sc.weight_bytes + plan->stream_experts;
    plan->link_chunk += (uint64_t)(sc.over_bytes + sc.back_bytes) + plan->link_experts;
}
