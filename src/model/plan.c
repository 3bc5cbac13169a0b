/*
 * Placement and memory of a context before it is made (ob_plan_context): which layers go to
 * the device, and the bytes each backend will allocate for them, from the same functions the
 * backends size their allocations with (model_backend_weight_bytes, model_kv_bytes,
 * model_rs_bytes, model_buffers_bytes). With OB_GPU_LAYERS_AUTO the device gets the most of
 * the last layers that fit its budget: the device's memory, less a reserve for the driver and
 * other programs, unless the caller gives one. A mixture-of-experts model's device layers may
 * keep their MoE blocks on the host (moe_host.h): the device part then holds the rest of
 * those layers, and the experts part the blocks' weights and host scratch.
 */
#include "core/err.h"
#include "cuda/cuda_backend.h"
#include "model/context.h"
#include "model/moe_host.h"
#include "vulkan/vulkan_backend.h"

#include <stdio.h>
#include <string.h>

/* Device memory left to other programs and the driver's own use when no budget is given:
 * 5% of it, at least 512 MiB. */
static uint64_t reserve_of(uint64_t mem) {
    const uint64_t floor = 512ull << 20, share = mem / 20;
    return share > floor ? share : floor;
}

int64_t model_plan_gpu_layers(const ob_context_params *p, int64_t n_layer) {
    if (p->device == OB_DEVICE_CPU || p->n_gpu_layers == 0) return 0;
    if (p->n_gpu_layers < 0 || p->n_gpu_layers > n_layer) return n_layer;
    return p->n_gpu_layers;
}

/* The device p names (auto: a CUDA device, else the default discrete Vulkan GPU, as the
 * context picks it): its kind in `name`, kind, name and driver in `key` (as a calibration
 * names it) and its memory (free memory for CUDA, the largest device-local heap for Vulkan)
 * in *mem; false when there is none. */
static bool device_of(const ob_context_params *p, char name[16], char key[160], uint64_t *mem,
                      bool *is_cpu) {
    *is_cpu = false;
    int n = 0;
    if (p->device == OB_DEVICE_CUDA || p->device == OB_DEVICE_AUTO) {
        cuda_device_info ci;
        const int dev = p->device == OB_DEVICE_CUDA && p->device_index >= 0 ? p->device_index : 0;
        if (!cuda_device_count(&n, NULL) && dev < n && !cuda_device_get_info(dev, &ci, NULL)) {
            snprintf(name, 16, "cuda");
            /* the driver's version as Vulkan's key has it: a driver update changes the
             * kernels' speed, so it starts a calibration of its own */
            snprintf(key, 160, "cuda %.130s | driver %d.%d", ci.name, ci.driver_version / 1000,
                     ci.driver_version % 1000 / 10);
            *mem = ci.mem_free;
            return true;
        }
        if (p->device == OB_DEVICE_CUDA) return false;
    }
    vulkan_device_info list[VULKAN_MAX_DEVICES];
    if (vulkan_devices_list(list, VULKAN_MAX_DEVICES, &n, NULL) || n == 0) return false;
    int dev = p->device == OB_DEVICE_VULKAN && p->device_index >= 0
                  ? p->device_index
                  : vulkan_device_default(list, n, p->device == OB_DEVICE_AUTO);
    if (dev < 0 || dev >= n) return false;
    snprintf(name, 16, "vulkan");
    snprintf(key, 160, "vulkan %.80s | %.60s", list[dev].name, list[dev].driver);
    *mem = list[dev].mem_bytes;
    *is_cpu = list[dev].is_cpu;
    return true;
}

/* The part of a backend holding shape->part of layers [lo, hi) (shape: the whole model's, or
 * one of model_moe_host_shapes'); on a device, its MoE blocks' rows too. */
static void part_of(const ob_model *m, const model_backend_shape *shape, int64_t lo, int64_t hi,
                    bool device, ob_plan_part *out) {
    model_backend_shape s = *shape;
    s.n_layer = hi - lo;
    out->layer_lo = lo;
    out->layer_hi = hi;
    if (hi == lo) return;
    out->weights = model_backend_weight_bytes(&s, lo);
    out->kv = model_kv_bytes(&s, lo);
    out->state = model_rs_bytes(&s, lo);
    out->activations = s.part == MODEL_PART_MOE ? model_moe_host_bytes(&s)
                                                : model_buffers_bytes(&m->hp, s.n_batch);
    if (device) out->activations += model_moe_device_bytes(&s);
}

static uint64_t part_total(const ob_plan_part *p) {
    return p->weights + p->kv + p->state + p->activations;
}

/* Layers of [lo, hi) with a mixture-of-experts block. */
static int64_t moe_layers(const model_backend_shape *s, int64_t lo, int64_t hi) {
    int64_t n = 0;
    for (int64_t il = lo; s->weights && s->weights->moe && il < hi; il++)
        n += s->weights->moe[il] != NULL;
    return n;
}

/* Bytes over the link per pass of n_tok rows with one row of logits kept: the hidden state
 * into the device's layers, the logits row back, and with experts on the host each device
 * MoE layer's input rows out and its output rows in (model_stages_forward, moe_host.c). */
static uint64_t link_bytes(const ob_model *m, const model_backend_shape *s, int64_t on_device,
                           bool experts_on_host, int64_t n_tok) {
    const int64_t n_layer = m->hp.n_layer;
    if (on_device == 0) return 0;
    const uint64_t rows = (uint64_t)(n_tok * m->hp.n_embd) * 4;
    const uint64_t hidden = on_device < n_layer ? rows : 0;
    const uint64_t experts =
        experts_on_host ? 2 * rows * (uint64_t)moe_layers(s, n_layer - on_device, n_layer) : 0;
    return hidden + experts + (uint64_t)m->hp.n_vocab * 4;
}

/* Whether the GPU backend of kind `dev` ("cuda", "vulkan") runs the MoE blocks of m itself:
 * the Vulkan backend those vulkan_moe_supported takes; the CUDA backend refuses MoE shapes
 * (backend_cuda.c), so its MoE layers keep the blocks on the host. */
static bool device_runs_moe(const char *dev, const ob_model *m) {
    const model_moe_hparams *mo = &m->hp.moe;
    return !strcmp(dev, "vulkan") &&
           vulkan_moe_supported(mo->n_expert, mo->n_expert_used, mo->n_ff_shexp);
}

/* The most of the last layers whose part of shape s fits the budget; the part only grows with
 * the count. */
static int64_t most_layers(const ob_model *m, const model_backend_shape *s, uint64_t budget) {
    const int64_t n_layer = m->hp.n_layer;
    int64_t g = n_layer;
    for (ob_plan_part dev; g > 0; g--) {
        memset(&dev, 0, sizeof dev);
        part_of(m, s, n_layer - g, n_layer, true, &dev);
        if (part_total(&dev) <= budget) break;
    }
    return g;
}

/* Where the device's layers and their experts go, with the reason in out->why: out->budget
 * and out->device.device set; runs: the device's backend has MoE kernels. */
static ob_status place(const ob_model *m, const ob_context_params *p,
                       const model_backend_shape *whole, const model_backend_shape *dev_shape,
                       bool runs, ob_plan *out, ob_err *err) {
    const int64_t n_layer = m->hp.n_layer;
    const bool moe = m->hp.moe.n_expert > 0;
    const double budget_gib = (double)out->budget / (1 << 30);
    if (moe && p->experts == OB_EXPERTS_DEVICE && !runs)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "plan: the %s backend has no "
                       "mixture-of-experts kernels for architecture '%s' (use --experts host "
                       "or auto)", out->device.device, m->hp.arch_name);
    char reason[96] = ""; /* why the experts would go to the host */
    if (p->experts == OB_EXPERTS_HOST) snprintf(reason, sizeof reason, "--experts host");
    else if (!runs)
        snprintf(reason, sizeof reason, "the %s backend has no MoE kernels", out->device.device);
    if (p->n_gpu_layers == OB_GPU_LAYERS_AUTO) {
        int64_t g = most_layers(m, whole, out->budget);
        const bool host = moe && (p->experts == OB_EXPERTS_HOST ||
                                  (p->experts == OB_EXPERTS_AUTO && (!runs || g < n_layer)));
        if (host && p->experts == OB_EXPERTS_AUTO && runs)
            snprintf(reason, sizeof reason, "with them only %lld fit", (long long)g);
        if (host) g = most_layers(m, dev_shape, out->budget);
        out->n_gpu_layers = g;
        out->experts_on_host = host && g > 0;
        snprintf(out->why, sizeof out->why, "%lld of %lld layers fit the device's %.2f GiB "
                 "(weights, KV cache, state and activations)%s", (long long)g,
                 (long long)n_layer, budget_gib, out->experts_on_host ? " without their MoE "
                 "blocks, which run on the host" : "");
    } else {
        const int64_t g = model_plan_gpu_layers(p, n_layer);
        ob_plan_part full;
        memset(&full, 0, sizeof full);
        part_of(m, whole, n_layer - g, n_layer, true, &full);
        const bool fits = part_total(&full) <= out->budget;
        out->n_gpu_layers = g;
        const bool asked = p->experts == OB_EXPERTS_HOST;
        out->experts_on_host =
            moe && g > 0 && (asked || (p->experts == OB_EXPERTS_AUTO && (!runs || !fits)));
        if (out->experts_on_host && p->experts == OB_EXPERTS_AUTO && runs)
            snprintf(reason, sizeof reason, "with them the layers need %.2f GiB",
                     (double)part_total(&full) / (1 << 30));
        snprintf(out->why, sizeof out->why, "%lld of %lld layers on the device, as asked%s",
                 (long long)g, (long long)n_layer,
                 out->experts_on_host ? ", their MoE blocks on the host" : "");
    }
    if (out->experts_on_host) {
        const size_t used = strlen(out->why);
        snprintf(out->why + used, sizeof out->why - used, " (%s)", reason);
    }
    return OB_OK;
}

/* The parts, link bytes and weight streaming of a placed plan (out->n_gpu_layers and
 * experts_on_host set). */
static void plan_finish(const ob_model *m, const ob_context_params *p,
                        const model_backend_shape *shape, const model_backend_shape *dev_shape,
                        const model_backend_shape *host_experts, bool has_device, bool is_cpu,
                        ob_plan *out) {
    const int64_t n_layer = m->hp.n_layer, g = out->n_gpu_layers;
    char name[sizeof out->device.device];
    memcpy(name, out->device.device, sizeof name);
    memset(&out->host, 0, sizeof out->host);
    memset(&out->device, 0, sizeof out->device);
    memset(&out->experts, 0, sizeof out->experts);
    snprintf(out->host.device, sizeof out->host.device, "cpu");
    if (has_device) memcpy(out->device.device, name, sizeof name);
    part_of(m, shape, 0, n_layer - g, false, &out->host);
    part_of(m, out->experts_on_host ? dev_shape : shape, n_layer - g, n_layer, true,
            &out->device);
    if (out->experts_on_host) {
        snprintf(out->experts.device, sizeof out->experts.device, "cpu");
        part_of(m, host_experts, n_layer - g, n_layer, false, &out->experts);
    }
    out->link_token = link_bytes(m, shape, g, out->experts_on_host, 1);
    out->link_chunk = link_bytes(m, shape, g, out->experts_on_host, p->n_batch);
    model_plan_stream(m, p, has_device, is_cpu, out);
}

/* A device that streams host weights also holds the buffer that takes one of them at a time
 * (device.stream), beside its layers. For an automatic placement: when the layers placed in the
 * whole budget leave the host layers streaming but no room for that buffer, the layers are
 * placed again in the budget less the largest buffer any split needs, and streaming is turned
 * off if even that leaves none; when they do not stream, a placement with room for the buffer
 * wins if it does stream (fewer layers on the device, the host's streamed to it per chunk). */
static void make_room_to_stream(const ob_model *m, const ob_context_params *p,
                                const model_backend_shape *shape,
                                const model_backend_shape *dev_shape,
                                const model_backend_shape *host_experts, bool runs, bool is_cpu,
                                ob_plan *out) {
    const int64_t n_layer = m->hp.n_layer;
    const uint64_t buffer = model_stream_buffer_bytes(m, 0, n_layer);
    const bool streams = out->stream_min_tok > 0;
    const bool over = streams && part_total(&out->device) + out->device.stream > out->budget;
    if (!over && (streams || out->n_gpu_layers == n_layer || p->stream_min_tok == 0 ||
                  !model_plan_streams(out->device.device)))
        return;
    ob_plan trial = *out;
    if (out->budget > buffer) {
        trial.budget -= buffer;
        if (!place(m, p, shape, dev_shape, runs, &trial, NULL)) {
            trial.budget = out->budget;
            plan_finish(m, p, shape, dev_shape, host_experts, true, is_cpu, &trial);
            if (over || trial.stream_min_tok > 0) *out = trial;
        }
    }
    if (out->stream_min_tok > 0 && part_total(&out->device) + out->device.stream > out->budget) {
        /* the device cannot hold the layers placed and a weight to stream: the same placement,
         * finished without streaming */
        const uint64_t need = out->device.stream;
        ob_context_params off = *p;
        off.stream_min_tok = 0;
        plan_finish(m, &off, shape, dev_shape, host_experts, true, is_cpu, out);
        snprintf(out->stream_why, sizeof out->stream_why,
                 "off: the device's %.2f GiB leave no room for its buffer (%.2f GiB)",
                 (double)out->budget / (1 << 30), (double)need / (1 << 30));
    }
}

ob_status model_plan(const ob_model *m, const ob_context_params *p,
                     const model_backend_shape *shape, ob_plan *out, ob_err *err) {
    const int64_t n_layer = m->hp.n_layer;
    memset(out, 0, sizeof *out);
    out->n_layer = n_layer;
    uint64_t mem = 0;
    bool is_cpu = false;
    const bool has_device = p->device != OB_DEVICE_CPU &&
                            device_of(p, out->device.device, out->device_key, &mem, &is_cpu);
    out->budget = !has_device     ? 0
                  : p->vram_budget ? p->vram_budget
                  : mem > reserve_of(mem) ? mem - reserve_of(mem)
                                           : 0;
    model_backend_shape dev_shape, host_experts;
    model_moe_host_shapes(shape, &dev_shape, &host_experts);
    if (has_device) {
        const bool runs = device_runs_moe(out->device.device, m);
        ob_status st = place(m, p, shape, &dev_shape, runs, out, err);
        if (st) return st;
        plan_finish(m, p, shape, &dev_shape, &host_experts, true, is_cpu, out);
        if (p->n_gpu_layers == OB_GPU_LAYERS_AUTO)
            make_room_to_stream(m, p, shape, &dev_shape, &host_experts, runs, is_cpu, out);
    } else {
        snprintf(out->why, sizeof out->why, "%s", p->device == OB_DEVICE_CPU
                                                      ? "the CPU, as asked"
                                                      : "no such GPU: the CPU alone");
        plan_finish(m, p, shape, &dev_shape, &host_experts, false, false, out);
    }
    /* the host holds its part's cache and activations, and the experts' rows and scratch
     * (weights are the mapped file's) */
    const uint64_t host = out->host.kv + out->host.state + out->host.activations +
                          out->experts.activations;
    const double have = model_host_memory();
    if (have > 0 && (double)host > have)
        return ob_fail(err, OB_ERR_LIMIT, "plan: the host part needs %.2f GiB (KV cache %.2f, "
                       "state %.2f), more than the machine's %.2f GiB", (double)host / (1 << 30),
                       (double)out->host.kv / (1 << 30), (double)out->host.state / (1 << 30),
                       have / (1 << 30));
    return OB_OK;
}

ob_status ob_plan_context(const ob_model *m, const ob_context_params *params, ob_plan *out,
                          ob_err *err) {
    ob_context_params p;
    if (params) p = *params;
    else ob_context_params_init(&p);
    ob_status st = model_context_params_check(m, &p, err);
    if (st) return st;
    model_backend_shape shape;
    model_context_shape(m, &p, &shape);
    return model_plan(m, &p, &shape, out, err);
}
