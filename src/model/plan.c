/*
 * Placement and memory of a context before it is made (ob_plan_context): which layers go to
 * the device, and the bytes each backend will allocate for them, from the same functions the
 * backends size their allocations with (model_backend_weight_bytes, model_kv_bytes,
 * model_rs_bytes, model_buffers_bytes). With OB_GPU_LAYERS_AUTO the device gets the most of
 * the last layers that fit its budget: the device's memory, less a reserve for the driver and
 * other programs, unless the caller gives one.
 */
#include "core/err.h"
#include "cuda/cuda_backend.h"
#include "model/context.h"
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
static bool device_of(const ob_context_params *p, char name[16], char key[160], uint64_t *mem) {
    int n = 0;
    if (p->device == OB_DEVICE_CUDA || p->device == OB_DEVICE_AUTO) {
        cuda_device_info ci;
        const int dev = p->device == OB_DEVICE_CUDA && p->device_index >= 0 ? p->device_index : 0;
        if (!cuda_device_count(&n, NULL) && dev < n && !cuda_device_get_info(dev, &ci, NULL)) {
            snprintf(name, 16, "cuda");
            snprintf(key, 160, "cuda %.150s", ci.name);
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
    return true;
}

/* The part of a backend holding layers [lo, hi). */
static void part_of(const ob_model *m, const model_backend_shape *whole, int64_t lo, int64_t hi,
                    ob_plan_part *out) {
    model_backend_shape s = *whole;
    s.n_layer = hi - lo;
    out->layer_lo = lo;
    out->layer_hi = hi;
    if (hi == lo) return;
    out->weights = model_backend_weight_bytes(&s, lo);
    out->kv = model_kv_bytes(&s, lo);
    out->state = model_rs_bytes(&s, lo);
    out->activations = model_buffers_bytes(&m->hp, s.n_batch);
}

static uint64_t part_total(const ob_plan_part *p) {
    return p->weights + p->kv + p->state + p->activations;
}

/* Bytes over the link per pass of n_tok rows with one row of logits kept. */
static uint64_t link_bytes(const ob_model *m, int64_t n_layer, int64_t on_device, int64_t n_tok) {
    if (on_device == 0) return 0;
    const uint64_t hidden = on_device < n_layer ? (uint64_t)(n_tok * m->hp.n_embd) * 4 : 0;
    return hidden + (uint64_t)m->hp.n_vocab * 4;
}

ob_status model_plan(const ob_model *m, const ob_context_params *p,
                     const model_backend_shape *shape, ob_plan *out, ob_err *err) {
    const int64_t n_layer = m->hp.n_layer;
    memset(out, 0, sizeof *out);
    out->n_layer = n_layer;
    snprintf(out->host.device, sizeof out->host.device, "cpu");
    uint64_t mem = 0;
    const bool has_device =
        p->device != OB_DEVICE_CPU && device_of(p, out->device.device, out->device_key, &mem);
    int64_t g = has_device ? model_plan_gpu_layers(p, n_layer) : 0;
    out->budget = !has_device     ? 0
                  : p->vram_budget ? p->vram_budget
                  : mem > reserve_of(mem) ? mem - reserve_of(mem)
                                           : 0;
    ob_plan_part dev;
    memset(&dev, 0, sizeof dev);
    if (has_device && p->n_gpu_layers == OB_GPU_LAYERS_AUTO) {
        /* the device part grows from the last layer down; it only grows with g */
        for (g = n_layer; g > 0; g--) {
            part_of(m, shape, n_layer - g, n_layer, &dev);
            if (part_total(&dev) <= out->budget) break;
        }
        snprintf(out->why, sizeof out->why, "%lld of %lld layers fit the device's %.2f GiB "
                 "(weights, KV cache, state and activations)", (long long)g,
                 (long long)n_layer, (double)out->budget / (1 << 30));
    } else if (has_device) {
        snprintf(out->why, sizeof out->why, "%lld of %lld layers on the device, as asked",
                 (long long)g, (long long)n_layer);
    } else {
        snprintf(out->why, sizeof out->why, "%s", p->device == OB_DEVICE_CPU
                                                      ? "the CPU, as asked"
                                                      : "no such GPU: the CPU alone");
    }
    out->n_gpu_layers = g;
    part_of(m, shape, 0, n_layer - g, &out->host);
    part_of(m, shape, n_layer - g, n_layer, &out->device);
    if (!has_device) out->device.device[0] = '\0';
    out->link_token = link_bytes(m, n_layer, g, 1);
    out->link_chunk = link_bytes(m, n_layer, g, p->n_batch);
    /* the host holds its part's cache and activations (weights are the mapped file's) */
    const uint64_t host = out->host.kv + out->host.state + out->host.activations;
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
