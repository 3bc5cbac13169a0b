/*
 * The placement planner (ob_plan_context) with the Vulkan device of the tests (lavapipe in
 * CI) standing in for a card:
 *   - automatic placement puts on the device exactly the most layers whose bytes fit the
 *     budget: for each count g, a budget of the device part's total for g gives g, one byte
 *     less gives g - 1 (the bytes for a given count come from explicit placements);
 *   - the parts add up: KV bytes of host and device equal what a context allocates, weights
 *     equal the tensors' bytes (the embedding counted on both sides of a split);
 *   - the bytes counted over the link per prompt chunk and per decoded token equal the plan's,
 *     exactly, on contexts split at several points and on the device alone, dense and MoE
 *     (experts on the host);
 *   - without a budget the placement fits the device's memory;
 *   - with streaming asked for, the placement leaves room for the streaming buffer;
 *   - an emulated link makes each copy take at least what that link would.
 */
#include "model/context.h"
#include "outboard.h"

#include "test.h"
#include "device_models.h"
#include "vk_test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void params(ob_context_params *p, int dev, int64_t gpu_layers, uint64_t budget) {
    ob_context_params_init(p);
    p->n_ctx = 64;
    p->n_batch = 16;
    p->n_threads = 1;
    p->n_seq_max = 2;
    p->kv_size = 128;
    p->device = OB_DEVICE_VULKAN;
    p->device_index = dev;
    p->n_gpu_layers = gpu_layers;
    p->vram_budget = budget;
}

static uint64_t total(const ob_plan_part *p) {
    return p->weights + p->kv + p->state + p->activations;
}

static void auto_placement_boundaries(const char *arch) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth(arch, "q8_0", "");
    CHECK(m);
    ob_model_info in;
    ob_model_get_info(m, &in);
    ob_err err = {{0}};
    ob_context_params p;
    for (int64_t g = 1; g <= in.n_layer; g++) {
        ob_plan fixed, got;
        params(&p, dev, g, 1ull << 40);
        CHECK_MSG(!ob_plan_context(m, &p, &fixed, &err), "%s", err.msg);
        CHECK_EQ_INT(fixed.n_gpu_layers, g);
        const uint64_t need = total(&fixed.device);
        params(&p, dev, OB_GPU_LAYERS_AUTO, need);
        CHECK(!ob_plan_context(m, &p, &got, &err));
        CHECK_MSG(got.n_gpu_layers == g, "%s: budget %llu: %lld layers, expected %lld", arch,
                  (unsigned long long)need, (long long)got.n_gpu_layers, (long long)g);
        params(&p, dev, OB_GPU_LAYERS_AUTO, need - 1);
        CHECK(!ob_plan_context(m, &p, &got, &err));
        CHECK_MSG(got.n_gpu_layers == g - 1, "%s: budget %llu: %lld layers, expected %lld",
                  arch, (unsigned long long)(need - 1), (long long)got.n_gpu_layers,
                  (long long)(g - 1));
        CHECK(total(&got.device) <= need - 1);
    }
    ob_model_free(m);
}

TEST(auto_placement_fills_the_budget_llama) {
    auto_placement_boundaries("llama");
}

TEST(auto_placement_fills_the_budget_gemma3) {
    auto_placement_boundaries("gemma3");
}

/* Host and device parts against the context and the file. */
TEST(parts_add_up) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("qwen3", "f16", "");
    CHECK(m);
    ob_model_info in;
    ob_model_get_info(m, &in);
    ob_err err = {{0}};
    ob_context_params p;
    ob_plan all_cpu;
    params(&p, dev, 0, 0);
    CHECK(!ob_plan_context(m, &p, &all_cpu, &err));
    const uint64_t weights = all_cpu.host.weights;
    CHECK(weights > 0 && weights <= in.n_bytes);
    for (int64_t g = 0; g <= in.n_layer; g++) {
        ob_plan plan;
        params(&p, dev, g, 0);
        CHECK(!ob_plan_context(m, &p, &plan, &err));
        ob_context *c = NULL;
        CHECK_MSG(!ob_context_new(m, &p, &c, &err), "%s", err.msg);
        CHECK_EQ_INT(plan.host.kv + plan.device.kv, model_context_kv_bytes(c));
        /* a split holds a tied embedding on both sides; otherwise each tensor once */
        const bool split = g > 0 && g < in.n_layer;
        const uint64_t sum = plan.host.weights + plan.device.weights;
        CHECK_MSG(split ? sum >= weights : sum == weights, "%lld layers: %llu bytes of weights, "
                  "%llu on one device", (long long)g, (unsigned long long)sum,
                  (unsigned long long)weights);
        ob_context_free(c);
    }
    ob_model_free(m);
}

/* A prompt of one chunk, then decoded tokens: what the context counted crossing the link is
 * what the plan said, to the byte (for a MoE model with its experts on the host, with each
 * device layer's MoE rows crossing to the host and back). */
static void link_bytes_of(const char *arch, ob_experts experts) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth(arch, "q8_0", "");
    CHECK(m);
    ob_model_info in;
    ob_model_get_info(m, &in);
    const int64_t gs[] = {1, in.n_layer / 2, in.n_layer};
    int32_t toks[20];
    for (int i = 0; i < 20; i++) toks[i] = (int32_t)(5 + i * 7 % (in.n_vocab - 5));
    for (size_t k = 0; k < sizeof gs / sizeof gs[0]; k++) {
        ob_err err = {{0}};
        ob_context_params p;
        params(&p, dev, gs[k], 0);
        p.experts = experts;
        ob_plan plan;
        ob_context *c = NULL;
        CHECK(!ob_plan_context(m, &p, &plan, &err));
        CHECK(plan.experts_on_host == (experts == OB_EXPERTS_HOST));
        CHECK_MSG(!ob_context_new(m, &p, &c, &err), "%s", err.msg);
        ob_transfer_stats a, b, d;
        ob_context_transfer_stats(c, &a);
        CHECK(!ob_eval(c, toks, 16, false, &err)); /* one chunk of n_batch */
        ob_context_transfer_stats(c, &b);
        CHECK_EQ_INT((b.bytes + b.bytes_back) - (a.bytes + a.bytes_back), plan.link_chunk);
        for (int t = 16; t < 20; t++) CHECK(!ob_eval(c, &toks[t], 1, false, &err));
        ob_context_transfer_stats(c, &d);
        CHECK_EQ_INT((d.bytes + d.bytes_back) - (b.bytes + b.bytes_back), 4 * plan.link_token);
        ob_context_free(c);
    }
    ob_model_free(m);
}

TEST(link_bytes_equal_the_plan) {
    link_bytes_of("llama", OB_EXPERTS_AUTO);
}

TEST(link_bytes_equal_the_plan_experts_on_host) {
    link_bytes_of("qwen3moe", OB_EXPERTS_HOST);
}

TEST(unbudgeted_auto_fits_the_device) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("llama", "f32", "");
    CHECK(m);
    ob_err err = {{0}};
    ob_context_params p;
    params(&p, dev, OB_GPU_LAYERS_AUTO, 0);
    ob_plan plan;
    CHECK(!ob_plan_context(m, &p, &plan, &err));
    CHECK(plan.budget > 0);
    CHECK(total(&plan.device) <= plan.budget);
    ob_model_info in;
    ob_model_get_info(m, &in);
    CHECK_EQ_INT(plan.n_gpu_layers, in.n_layer); /* a tiny model fits whole */
    ob_context *c = NULL;
    CHECK_MSG(!ob_context_new(m, &p, &c, &err), "%s", err.msg);
    CHECK(!strcmp(ob_context_device(c), "vulkan"));
    ob_context_free(c);
    ob_model_free(m);
}

/* An emulated link of 1 MB/s and 3 ms: each hidden-state copy takes at least its bytes at that
 * rate plus the latency, counted in the copies' time. */
TEST(link_emulation_slows_copies) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("llama", "f32", "");
    CHECK(m);
    ob_err err = {{0}};
    ob_context_params p;
    params(&p, dev, 1, 0);
    p.link_gbps = 0.001;
    p.link_latency_us = 3000;
    ob_context *c = NULL;
    CHECK_MSG(!ob_context_new(m, &p, &c, &err), "%s", err.msg);
    int32_t toks[16];
    for (int i = 0; i < 16; i++) toks[i] = 3 + i;
    CHECK(!ob_eval(c, toks, 16, false, &err));
    CHECK(!ob_eval(c, toks, 1, false, &err));
    ob_transfer_stats x;
    ob_context_transfer_stats(c, &x);
    CHECK_EQ_INT(x.copies, 2);
    const double want_ns = (double)x.bytes / 0.001 + 2 * 3000e3; /* bytes / (GB/s) = ns */
    CHECK_MSG((double)x.ns >= want_ns, "%llu ns for %llu bytes, expected at least %.0f",
              (unsigned long long)x.ns, (unsigned long long)x.bytes, want_ns);
    ob_context_free(c);
    p.link_gbps = -1;
    CHECK(ob_context_new(m, &p, &c, &err) == OB_ERR_ARG);
    ob_model_free(m);
}

/* With the host's layers streaming (--stream-weights 4), an automatic placement leaves room on
 * the device for the buffer that takes one host weight at a time: for each budget that holds g
 * layers exactly, fewer layers go to the device, the host's still stream, and the layers plus
 * the buffer fit the budget. A budget below the buffer itself turns streaming off, saying why. */
TEST(auto_placement_leaves_room_to_stream) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("llama", "q8_0", "");
    CHECK(m);
    ob_model_info in;
    ob_model_get_info(m, &in);
    ob_err err = {{0}};
    ob_context_params p;
    for (int64_t g = 1; g < in.n_layer; g++) {
        ob_plan fixed, got;
        params(&p, dev, g, 1ull << 40);
        CHECK_MSG(!ob_plan_context(m, &p, &fixed, &err), "%s", err.msg);
        const uint64_t need = total(&fixed.device);
        params(&p, dev, OB_GPU_LAYERS_AUTO, need);
        p.stream_min_tok = 4;
        CHECK_MSG(!ob_plan_context(m, &p, &got, &err), "%s", err.msg);
        CHECK_EQ_INT(got.stream_min_tok, 4);
        CHECK(got.device.stream > 0);
        CHECK_MSG(got.n_gpu_layers < g, "budget %llu: %lld layers and the buffer, g %lld",
                  (unsigned long long)need, (long long)got.n_gpu_layers, (long long)g);
        CHECK_MSG(total(&got.device) + got.device.stream <= need,
                  "budget %llu: the device part %llu plus the buffer %llu",
                  (unsigned long long)need, (unsigned long long)total(&got.device),
                  (unsigned long long)got.device.stream);
    }
    ob_plan got;
    params(&p, dev, OB_GPU_LAYERS_AUTO, 1);
    p.stream_min_tok = 4;
    CHECK_MSG(!ob_plan_context(m, &p, &got, &err), "%s", err.msg);
    CHECK_EQ_INT(got.n_gpu_layers, 0);
    CHECK_EQ_INT(got.stream_min_tok, 0);
    CHECK_EQ_INT(got.device.stream, 0);
    CHECK_MSG(strstr(got.stream_why, "no room") != NULL, "%s", got.stream_why);
    ob_model_free(m);
}

int main(void) {
    RUN(auto_placement_fills_the_budget_llama);
    RUN(auto_placement_fills_the_budget_gemma3);
    RUN(parts_add_up);
    RUN(link_bytes_equal_the_plan);
    RUN(link_bytes_equal_the_plan_experts_on_host);
    RUN(unbudgeted_auto_fits_the_device);
    RUN(auto_placement_leaves_room_to_stream);
    RUN(link_emulation_slows_copies);
    dm_models_done();
    return t_summary();
}
