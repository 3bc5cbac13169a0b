/*
 * The backends of a context (context.h): which devices run which layers, their activation
 * buffers, the forward pass through them in turn, and the cache operations every one of them
 * takes part in. A context runs all its layers on one backend, or the first layers on
 * the CPU and the rest on a device; only the hidden state (n_tok, n_embd) f32 crosses, once
 * per pass, through one copy that is counted (ob_context_transfer_stats). The context's
 * activations are per stage, so each backend keeps its own in memory it reads in place. A
 * device stage of a mixture-of-experts model may run its layers' MoE blocks on the host
 * (moe_host.h, as the plan says): those rows cross through the same counted copy.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "model/context.h"
#include "model/moe_host.h"
#include "model/stream.h"
#include "vulkan/vulkan_backend.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- activation buffers ---------------------------------------------------------------- */

/* Frees the activation buffers; from_be: they belong to the backend (ops->host_buf). */
static void buffers_free(model_buffers *b, bool from_be) {
    float **fs[] = {&b->x,    &b->xn,   &b->q,    &b->k,  &b->v,
                    &b->attn, &b->proj, &b->gate, &b->up, &b->extra};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) {
        if (!from_be) ob_free_aligned(*fs[i]);
        *fs[i] = NULL;
    }
    ob_free(b->pos);
    b->pos = NULL;
}

/* Floats per row of each activation buffer, in the order of `fields` below. */
#define N_BUFFERS 10
static void buffer_widths(const model_hparams *hp, int64_t *w) {
    const int64_t q = hp->n_head * hp->head_dim, kv = hp->n_head_kv * hp->head_dim;
    const int64_t widths[N_BUFFERS] = {hp->n_embd, hp->n_embd, q, kv, kv, q, hp->n_embd,
                                       hp->n_ff, hp->n_ff, hp->n_extra > 0 ? hp->n_extra : 1};
    memcpy(w, widths, sizeof widths);
}

size_t model_buffers_bytes(const model_hparams *hp, int64_t n_batch) {
    int64_t w[N_BUFFERS];
    buffer_widths(hp, w);
    size_t floats = 0;
    for (int i = 0; i < N_BUFFERS; i++) floats += (size_t)w[i];
    return (size_t)n_batch * (floats * sizeof(float) + sizeof(int32_t));
}

/* The activation buffers of a pass of n rows: from the backend when it hands them out (a
 * device backend then keeps them on the device), else from the heap. */
static ob_status buffers_new(model_buffers *b, model_backend *be, const model_hparams *hp,
                             int64_t n, ob_err *err) {
    float **fields[N_BUFFERS] = {&b->x,    &b->xn,   &b->q,    &b->k,  &b->v,
                                 &b->attn, &b->proj, &b->gate, &b->up, &b->extra};
    int64_t w[N_BUFFERS];
    buffer_widths(hp, w);
    memset(b, 0, sizeof *b);
    for (int i = 0; i < N_BUFFERS; i++) {
        size_t bytes;
        if (ob_mul_size((size_t)n * sizeof(float), (size_t)w[i], &bytes) ||
            !(*fields[i] = be->ops->host_buf ? be->ops->host_buf(be, bytes)
                                              : ob_alloc_aligned(64, bytes))) {
            buffers_free(b, be->ops->host_buf != NULL);
            return ob_fail(err, OB_ERR_NOMEM, "context: out of memory for a batch of %lld",
                           (long long)n);
        }
    }
    b->pos = ob_alloc((size_t)n, sizeof(int32_t));
    if (!b->pos) {
        buffers_free(b, be->ops->host_buf != NULL);
        return ob_fail(err, OB_ERR_NOMEM, "context: out of memory for a batch of %lld",
                       (long long)n);
    }
    return OB_OK;
}

/* ---- backends -------------------------------------------------------------------------- */

/* Reports a backend's weight preparation as the caller's fraction. */
static bool bind_progress(uint64_t done, uint64_t total, void *user) {
    const ob_context_params *p = user;
    return p->progress((float)((double)done / (double)(total ? total : 1)), p->progress_user);
}

/* The device backend p asks for, over layers [lo, lo + shape->n_layer). auto: a CUDA
 * device, else a discrete Vulkan GPU, else NULL with OB_OK (the caller uses the CPU). */
static ob_status device_new(const ob_context_params *p, const model_backend_shape *shape,
                            int64_t lo, model_backend **out, ob_err *err) {
    const int index = p->device_index;
    *out = NULL;
    switch (p->device) {
    case OB_DEVICE_CUDA:
        return model_backend_cuda_new(shape, lo, index < 0 ? 0 : index, out, err);
    case OB_DEVICE_VULKAN: return model_backend_vulkan_new(shape, lo, index, out, err);
    case OB_DEVICE_AUTO: {
        if (!model_backend_cuda_new(shape, lo, 0, out, NULL)) return OB_OK;
        vulkan_device_info list[VULKAN_MAX_DEVICES];
        int n = 0, gpu = -1;
        if (!vulkan_devices_list(list, VULKAN_MAX_DEVICES, &n, NULL))
            gpu = vulkan_device_default(list, n, true);
        if (gpu >= 0 && !model_backend_vulkan_new(shape, lo, gpu, out, NULL)) return OB_OK;
        *out = NULL;
        return OB_OK;
    }
    default: return OB_OK;
    }
}

/* The backend of layers [lo, hi) of the whole shape: the device p asks for (device), or the
 * CPU. *out stays NULL when auto finds no device. */
static ob_status backend_of(const ob_context_params *p, const model_backend_shape *whole,
                            int64_t lo, int64_t hi, bool device, model_backend **out,
                            ob_err *err) {
    model_backend_shape shape = *whole;
    shape.n_layer = hi - lo;
    *out = NULL;
    return device ? device_new(p, &shape, lo, out, err)
                  : model_backend_cpu_new(&shape, lo, p->n_threads, out, err);
}

/* Appends be and moe_host (both owned from here on; moe_host may be NULL) as the next stage,
 * after checking that it runs every kind of layer the model has, with its activation
 * buffers. */
static ob_status stage_push(ob_context *c, model_backend *be, model_moe_host *moe_host,
                            ob_err *err) {
    model_stage *st = &c->stage[c->n_stage++];
    st->be = be;
    st->moe_host = moe_host;
    be->moe_host = moe_host;
    const model_hparams *hp = &c->model->hp;
    const char *name = be->ops->name;
    if (hp->moe.n_expert > 0 && !be->ops->moe_ffn && !moe_host)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "%s backend: architecture '%s' has "
                       "mixture-of-experts layers, which this backend does not run (use "
                       "--experts host or --device cpu)", name, hp->arch_name);
    if (hp->recurrent && !be->ops->deltanet)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "context: the %s backend has no "
                       "recurrent-layer ops, which architecture '%s' needs (use --device cpu)",
                       name, hp->arch_name);
    return buffers_new(&st->buf, be, hp, c->n_batch, err);
}

static void placement_describe(ob_context *c, int64_t stream_min_tok, const char *stream_dev) {
    size_t used = 0;
    for (int i = 0; i < c->n_stage && used < sizeof c->placement; i++) {
        const model_backend *be = c->stage[i].be;
        int k = snprintf(c->placement + used, sizeof c->placement - used,
                         "%s%s: layers %lld-%lld%s", i ? ", " : "", be->ops->name,
                         (long long)be->layer_lo, (long long)be->layer_hi - 1,
                         c->stage[i].moe_host ? " (MoE blocks on the cpu)" : "");
        if (k < 0) break;
        used += (size_t)k;
    }
    if (c->stream && used < sizeof c->placement)
        snprintf(c->placement + used, sizeof c->placement - used,
                 "; passes of %lld+ rows stream the cpu's products to %s",
                 (long long)stream_min_tok, stream_dev);
}

/* Weight streaming of the host stage cpu (or NULL) and of the host's MoE blocks of the device's
 * layers (moe_host, or NULL) to the device stage dev, or to a device holding no layers made
 * for it (dev NULL), as the plan says. */
static ob_status stream_new(ob_context *c, const ob_context_params *p,
                            const model_backend_shape *whole, const ob_plan *plan,
                            model_backend *cpu, model_moe_host *moe_host, model_backend *dev,
                            ob_err *err) {
    const int64_t n_layer = c->model->hp.n_layer;
    model_backend *own = NULL;
    if (!dev) {
        model_backend_shape none, unused; /* binds nothing: no layers, no MoE blocks */
        model_moe_host_shapes(whole, &none, &unused);
        none.stream_bytes = plan->device.stream;
        ob_status st = backend_of(p, &none, n_layer, n_layer, true, &own, err);
        if (st) return st;
        if (!own) return OB_OK; /* auto found no device after all: the CPU runs them */
    }
    ob_status st = model_stream_new(c, dev ? dev : own, own != NULL, plan->stream_min_tok,
                                    &c->stream, err);
    if (st) return st;
    if (cpu) cpu->stream = c->stream;
    if (moe_host) model_moe_host_set_stream(moe_host, c->stream);
    return OB_OK;
}

ob_status model_stages_new(ob_context *c, const ob_context_params *p,
                           const model_backend_shape *shape, ob_err *err) {
    const int64_t n_layer = c->model->hp.n_layer;
    c->weights = c->model->w.for_backends;
    if (p->progress) {
        c->weights.progress = bind_progress;
        c->weights.progress_user = (void *)p; /* used only while the backends are made */
    }
    model_backend_shape whole = *shape;
    whole.weights = &c->weights;
    whole.n_layer_model = n_layer;
    ob_status st = OB_OK;
    int64_t on_device = model_plan_gpu_layers(p, n_layer);
    bool experts_on_host = false;
    ob_plan plan;
    memset(&plan, 0, sizeof plan);
    /* as the planner places the layers (auto), a MoE model's experts (always) and weight
     * streaming */
    if (p->device != OB_DEVICE_CPU) {
        if ((st = model_plan(c->model, p, &whole, &plan, err))) return st;
        if (p->n_gpu_layers == OB_GPU_LAYERS_AUTO) on_device = plan.n_gpu_layers;
        experts_on_host = plan.experts_on_host;
    }
    model_backend_shape dev_shape = whole, host_experts;
    if (experts_on_host) model_moe_host_shapes(&whole, &dev_shape, &host_experts);
    if (plan.stream_min_tok > 0) dev_shape.stream_bytes = plan.device.stream;
    /* the device first: when auto finds none, every layer goes to one CPU stage */
    int64_t host = n_layer - on_device;
    model_backend *dev = NULL, *cpu = NULL;
    model_moe_host *moe_host = NULL;
    if (host < n_layer &&
        !(st = backend_of(p, &dev_shape, host, n_layer, true, &dev, err)) && !dev)
        host = n_layer;
    if (!st && dev && experts_on_host)
        st = model_moe_host_new(c, &host_experts, host, n_layer, p->n_threads, &moe_host, err);
    if (!st && host > 0) st = backend_of(p, &whole, 0, host, false, &cpu, err);
    if (!st && cpu) st = stage_push(c, cpu, NULL, err); /* the stage owns it, even on failure */
    if (dev && !st) {
        st = stage_push(c, dev, moe_host, err);
    } else {
        if (dev) dev->ops->free(dev);
        model_moe_host_free(moe_host);
    }
    /* a device that auto did not find streams nothing either */
    moe_host = !st && dev ? c->stage[c->n_stage - 1].moe_host : NULL; /* the stage's now */
    if (!st && (cpu || moe_host) && plan.stream_min_tok > 0 && (dev || on_device == 0))
        st = stream_new(c, p, &whole, &plan, cpu, moe_host, dev, err);
    c->weights.progress = NULL;
    c->weights.progress_user = NULL;
    c->link_gbps = p->link_gbps;
    c->link_latency_us = p->link_latency_us;
    if (!st)
        placement_describe(c, plan.stream_min_tok,
                           c->stream ? model_stream_device(c->stream)->ops->name : "");
    return st;
}

void model_stages_free(ob_context *c) {
    model_stream_free(c->stream); /* before the stages: it may stream to one of them */
    c->stream = NULL;
    for (int i = 0; i < c->n_stage; i++) {
        model_stage *st = &c->stage[i];
        buffers_free(&st->buf, st->be->ops->host_buf != NULL);
        st->be->ops->free(st->be);
        st->be = NULL;
        model_moe_host_free(st->moe_host);
        st->moe_host = NULL;
    }
    c->n_stage = 0;
}

bool model_stages_paged(const ob_context *c) {
    for (int i = 0; i < c->n_stage; i++)
        if (!c->stage[i].be->caps.paged_kv) return false;
    return true;
}

/* ---- the forward pass ------------------------------------------------------------------ */

uint64_t model_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* With an emulated link: waits until a copy of `bytes` that started at t0 has taken as long
 * as that link would take. */
static void link_wait(const ob_context *c, uint64_t bytes, uint64_t t0) {
    if (c->link_gbps <= 0) return;
    const double want = (double)bytes / (c->link_gbps * 1e9) + c->link_latency_us * 1e-6;
    const double left = want - (double)(model_now_ns() - t0) * 1e-9;
    if (left <= 0) return;
    struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

void model_link_copy(ob_context *c, void *dst, const void *src, size_t bytes, bool to_device,
                     uint64_t t0) {
    const uint64_t t1 = model_now_ns();
    memcpy(dst, src, bytes);
    link_wait(c, bytes, t1);
    if (!to_device) {
        c->xfer.bytes_back += bytes;
        return;
    }
    c->xfer.copies++;
    c->xfer.bytes += bytes;
    c->xfer.ns += model_now_ns() - t0;
}

void model_link_shipped(ob_context *c, uint64_t over, uint64_t back, uint64_t weight_bytes,
                        bool expert, uint64_t t0) {
    /* both copies ran inside the device's op: an emulated link adds all of their time */
    link_wait(c, over, model_now_ns());
    link_wait(c, back, model_now_ns());
    c->xfer.copies++;
    c->xfer.bytes += over;
    c->xfer.bytes_back += back;
    c->xfer.weight_bytes += weight_bytes;
    c->xfer.streamed++;
    if (expert) {
        c->xfer.expert_bytes += over + back;
        c->xfer.expert_weight_bytes += weight_bytes;
    }
    c->xfer.ns += model_now_ns() - t0;
}

static ob_status stage_sync(model_stage *st, ob_err *err) {
    return st->be->ops->sync ? st->be->ops->sync(st->be, err) : OB_OK;
}

/* The hidden state of the pass from one stage's buffers to the next's: the source has run
 * its layers first. Activations cross between backends only here and in moe_host.c, both
 * through model_link_copy. */
static ob_status hidden_copy(ob_context *c, model_stage *from, model_stage *to, int64_t n_tok,
                             ob_err *err) {
    const uint64_t t0 = model_now_ns();
    ob_status st = stage_sync(from, err);
    if (st) return st;
    const size_t bytes = (size_t)(n_tok * c->model->hp.n_embd) * sizeof(float);
    model_link_copy(c, to->buf.x, from->buf.x, bytes, true, t0);
    return OB_OK;
}

ob_status model_stages_forward(ob_context *c, const model_step *s, ob_err *err) {
    const ob_model *m = c->model;
    const int64_t n_tok = s->kv.n_tok;
    ob_status st = OB_OK;
    bool done = true;
    for (int i = 0; i < c->n_stage && done && !st; i++) {
        model_stage *sg = &c->stage[i];
        for (int64_t t = 0; t < n_tok; t++) sg->buf.pos[t] = s->kv.pos[t];
        if (i == 0) model_embed_of(m)(m, sg->be, &sg->buf, s);
        else st = hidden_copy(c, &c->stage[i - 1], sg, n_tok, err);
        if (!st) done = model_layers_of(m)(m, sg->be, &sg->buf, s);
    }
    model_stage *last = &c->stage[c->n_stage - 1];
    if (!st && done) model_forward_logits(m, last->be, &last->buf, s);
    for (int i = 0; i < c->n_stage; i++) { /* the first failure wins; every stage is idle after */
        ob_err e2;
        ob_status s2 = stage_sync(&c->stage[i], st ? &e2 : err);
        if (!st) st = s2;
    }
    model_backend *own = model_stream_own_device(c->stream);
    if (own) { /* a streaming device that is not a stage: its products' failures */
        ob_err e2;
        ob_status s2 = own->ops->sync(own, st ? &e2 : err);
        if (!st) st = s2;
    }
    if (!st && done && last->be->caps.device_memory) { /* the rows came back over the link */
        const int64_t width = s->hidden ? m->hp.n_embd : m->hp.n_vocab;
        const uint64_t back = (uint64_t)(s->n_out * width) * sizeof(float);
        /* the copy itself ran inside the device's work: an emulated link adds all of it */
        link_wait(c, back, model_now_ns());
        c->xfer.bytes_back += back;
    }
    if (!st && !done) st = OB_ERR_CANCELLED; /* the caller words the message */
    return st;
}

/* ---- cache operations ------------------------------------------------------------------ */

void model_stages_kv_copy(ob_context *c, const kv_copy *copies, int64_t n) {
    for (int i = 0; i < c->n_stage; i++) c->stage[i].be->ops->kv_copy(c->stage[i].be, copies, n);
}

void model_stages_seq_copy(ob_context *c, int32_t src, int32_t dst) {
    for (int i = 0; i < c->n_stage; i++) c->stage[i].be->ops->seq_copy(c->stage[i].be, src, dst);
}

void model_stages_rs_copy(ob_context *c, int32_t src, int src_slot, int32_t dst, int dst_slot) {
    for (int i = 0; i < c->n_stage; i++)
        c->stage[i].be->ops->rs_copy(c->stage[i].be, src, src_slot, dst, dst_slot);
}
