/*
 * A mixture-of-experts model (synthetic qwen3moe) on the Vulkan device with its MoE blocks on
 * the host CPU (moe_host.h), or on the device (vulkan_moe.c), through the public API, against
 * the CPU alone:
 *   - logits with the layers split at 0, half and all of them, experts on the host or on the
 *     device, equal the CPU's within tolerance at every prompt position (two passes) and
 *     decode step, with the same greedy tokens, in three weight types (one with each expert's
 *     gate and up merged), and with every expert used by every token; again with device
 *     buffers unmapped, so that the weights go up through staging as on a discrete card;
 *   - the bytes counted over the link per prompt chunk and per decoded token equal the plan's,
 *     exactly, and so do the copies (the hidden state once per pass when split, and each
 *     device layer's MoE output);
 *   - the device's memory holds its part of the plan and not the experts;
 *   - the planner: a budget that holds every layer only without its experts puts every layer
 *     on the device with the experts on the host, one byte less one layer fewer; the parts add
 *     up to the file's tensors; with room for them the experts go to the device, whose memory
 *     then holds its part of the plan, experts included, and only the hidden state crosses;
 *   - the placement line says where the MoE blocks run;
 *   - a device lost at a MoE block fails the step cleanly.
 */
#include "model/context.h"
#include "outboard.h"
#include "vulkan/vulkan_be.h"

#include "test.h"
#include "device_models.h"
#include "vk_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void params(ob_context_params *p, ob_device device, int dev, int64_t gpu_layers,
                   ob_experts experts, uint64_t budget) {
    ob_context_params_init(p);
    p->n_ctx = 64;
    p->n_batch = 8; /* a prompt of 13 is two passes */
    p->n_threads = 1;
    p->device = device;
    p->device_index = dev;
    p->n_gpu_layers = gpu_layers;
    p->experts = experts;
    p->vram_budget = budget;
}

static ob_context *ctx_new(ob_model *m, const ob_context_params *p) {
    ob_err err = {{0}};
    ob_context *c = NULL;
    if (ob_context_new(m, p, &c, &err)) {
        fprintf(stderr, "  context (%lld device layers): %s\n", (long long)p->n_gpu_layers,
                err.msg);
        return NULL;
    }
    return c;
}

static uint64_t total(const ob_plan_part *p) {
    return p->weights + p->kv + p->state + p->activations;
}

static double g_worst;
static uint32_t g_max_groups; /* with a value, what the device's grid allows */

/* A 13-token prompt (all logits) and 4 greedy steps on the CPU and on the device with g
 * layers there and the experts where `experts` says. */
static bool compare(ob_model *m, int dev, int64_t g, ob_experts experts, double tol,
                    const char *what) {
    ob_context_params p;
    params(&p, OB_DEVICE_VULKAN, dev, g, experts, 0);
    ob_context *s = ctx_new(m, &p);
    if (s && g > 0 && g_max_groups) /* a device with a small grid: work in several dispatches */
        ((vulkan_backend *)s->stage[s->n_stage - 1].be)->c->max_groups = g_max_groups;
    params(&p, OB_DEVICE_CPU, -1, 0, OB_EXPERTS_AUTO, 0);
    ob_context *c = ctx_new(m, &p);
    ob_model_info info;
    ob_model_get_info(m, &info);
    const int64_t nv = info.n_vocab, n_prompt = 13, n_steps = 4;
    int32_t prompt[13];
    for (int64_t i = 0; i < n_prompt; i++) prompt[i] = (int32_t)(1 + (i * 37 + 11) % (nv - 1));
    ob_err err = {{0}};
    bool ok = s && c && !ob_eval(s, prompt, n_prompt, true, &err) &&
              !ob_eval(c, prompt, n_prompt, true, &err);
    if (!ok) fprintf(stderr, "  %s, %lld device layers: prefill: %s\n", what, (long long)g,
                     err.msg);
    for (int64_t t = 0; ok && t < n_prompt; t++) {
        const double d = dm_rel_diff(ob_logits(s, t), ob_logits(c, t), nv);
        g_worst = fmax(g_worst, d);
        if (!(d <= tol)) {
            fprintf(stderr, "  %s, %lld device layers: position %lld differs by %.3g "
                    "(tolerance %.3g)\n", what, (long long)g, (long long)t, d, tol);
            ok = false;
        }
    }
    int32_t next = ok ? dm_argmax(ob_logits(c, -1), nv, NULL) : 0;
    for (int64_t step = 0; ok && step < n_steps; step++) {
        ok = !ob_eval(s, &next, 1, false, &err) && !ob_eval(c, &next, 1, false, &err);
        const double d = ok ? dm_rel_diff(ob_logits(s, -1), ob_logits(c, -1), nv) : INFINITY;
        g_worst = fmax(g_worst, d);
        const int32_t a = ok ? dm_argmax(ob_logits(s, -1), nv, NULL) : -1;
        next = ok ? dm_argmax(ob_logits(c, -1), nv, NULL) : 0;
        if (!(d <= tol) || a != next) {
            fprintf(stderr, "  %s, %lld device layers: decode step %lld: difference %.3g, "
                    "tokens %d and %d %s\n", what, (long long)g, (long long)step, d, a, next,
                    err.msg);
            ok = false;
        }
    }
    if (s && g > 0 && experts == OB_EXPERTS_HOST) { /* the blocks' rows crossed */
        ob_transfer_stats x;
        ob_context_transfer_stats(s, &x);
        const uint64_t rows = (uint64_t)(n_prompt + n_steps) * (uint64_t)info.n_embd * 4;
        if (ok && x.bytes < (uint64_t)g * rows) {
            fprintf(stderr, "  %s, %lld device layers: %llu bytes to the device, expected at "
                    "least %llu\n", what, (long long)g, (unsigned long long)x.bytes,
                    (unsigned long long)(g * rows));
            ok = false;
        }
    }
    ob_context_free(s);
    ob_context_free(c);
    return ok;
}

static void every_split(const char *type, const char *extra, ob_experts experts, double tol) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("qwen3moe", type, extra);
    CHECK(m);
    ob_model_info info;
    ob_model_get_info(m, &info);
    const int64_t gs[] = {0, info.n_layer / 2, info.n_layer};
    for (size_t k = 0; k < sizeof gs / sizeof gs[0]; k++)
        CHECK_MSG(compare(m, dev, gs[k], experts, tol, type),
                  "qwen3moe %s %s, %lld device layers, experts %s", type, extra,
                  (long long)gs[k], experts == OB_EXPERTS_HOST ? "host" : "device");
    ob_model_free(m);
}

/* The files and tolerances of both placements: gate and up of each expert in one merged tensor
 * (ffn_gate_up_exps) in the F16 one; every token to every expert in the F32 one, where the
 * routing has no choice left and the CPU multiplies without quantizing the rows (in Q8_0,
 * eight experts' sums of quantized products differ by enough to turn a near tie the other
 * way). */
static const struct {
    const char *type, *extra;
    double tol;
} FILES[] = {{"q8_0", "", 3e-2},
             {"q4_k", "", 3e-2},
             {"f16", "--merged-experts", 1e-2},
             {"f32", "--experts-used 8", 1e-3}};

TEST(experts_on_host_match_the_cpu) {
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++)
        every_split(FILES[i].type, FILES[i].extra, OB_EXPERTS_HOST, FILES[i].tol);
}

TEST(experts_on_device_match_the_cpu) {
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++)
        every_split(FILES[i].type, FILES[i].extra, OB_EXPERTS_DEVICE, FILES[i].tol);
}

/* A grid of 5 groups a dimension: a prompt chunk's 16 entries go in runs of 4 (whole tokens
 * of 2 entries), and every other op spreads over x and y. */
TEST(experts_on_device_in_a_small_grid) {
    g_max_groups = 5;
    every_split("q8_0", "", OB_EXPERTS_DEVICE, 3e-2);
    g_max_groups = 0;
}

/* Device buffers left unmapped (OB_VK_UNMAPPED), as on a discrete card: every weight and
 * expert goes up through the staging arena, the experts' copies sharing submissions. */
TEST(experts_on_device_uploaded_through_staging) {
    setenv("OB_VK_UNMAPPED", "1", 1);
    every_split("q4_k", "", OB_EXPERTS_DEVICE, 3e-2);
    unsetenv("OB_VK_UNMAPPED");
}

/* A prompt of one chunk, then decoded tokens: what the context counted crossing the link is
 * what the plan said, to the byte, and the copies to the device are one per crossing. */
TEST(link_bytes_equal_the_plan) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("qwen3moe", "q8_0", "");
    CHECK(m);
    ob_model_info in;
    ob_model_get_info(m, &in);
    const int64_t gs[] = {1, in.n_layer / 2, in.n_layer};
    int32_t toks[12];
    for (int i = 0; i < 12; i++) toks[i] = (int32_t)(5 + i * 7 % (in.n_vocab - 5));
    for (size_t k = 0; k < sizeof gs / sizeof gs[0]; k++) {
        ob_err err = {{0}};
        ob_context_params p;
        params(&p, OB_DEVICE_VULKAN, dev, gs[k], OB_EXPERTS_HOST, 0);
        ob_plan plan;
        CHECK_MSG(!ob_plan_context(m, &p, &plan, &err), "%s", err.msg);
        CHECK(plan.experts_on_host);
        ob_context *c = ctx_new(m, &p);
        CHECK(c);
        ob_transfer_stats a, b, d;
        ob_context_transfer_stats(c, &a);
        CHECK(!ob_eval(c, toks, 8, false, &err)); /* one chunk of n_batch */
        ob_context_transfer_stats(c, &b);
        CHECK_EQ_INT((b.bytes + b.bytes_back) - (a.bytes + a.bytes_back), plan.link_chunk);
        /* hand count: hidden state in when split, each layer's MoE rows out and back, one
         * logits row */
        const uint64_t split = gs[k] < in.n_layer, rows = 8 * (uint64_t)in.n_embd * 4;
        CHECK_EQ_INT(plan.link_chunk, split * rows + 2 * (uint64_t)gs[k] * rows +
                                          (uint64_t)in.n_vocab * 4);
        CHECK_EQ_INT(b.copies - a.copies, split + (uint64_t)gs[k]);
        for (int t = 8; t < 12; t++) CHECK(!ob_eval(c, &toks[t], 1, false, &err));
        ob_context_transfer_stats(c, &d);
        CHECK_EQ_INT((d.bytes + d.bytes_back) - (b.bytes + b.bytes_back), 4 * plan.link_token);
        CHECK_EQ_INT(d.copies - b.copies, 4 * (split + (uint64_t)gs[k]));
        ob_context_free(c);
    }
    ob_model_free(m);
}

/* The device's memory with every layer there: its part of the plan (weights, cache,
 * activations) and the staging arena; with the experts on the host not their weights, with
 * them on the device theirs and the rows of their block, and then a pass sends nothing over
 * the link but the logits row back. */
static void device_memory_holds_its_part(ob_experts experts) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("qwen3moe", "q8_0", "");
    CHECK(m);
    ob_err err = {{0}};
    ob_context_params p;
    params(&p, OB_DEVICE_VULKAN, dev, -1, experts, 0);
    ob_plan plan;
    CHECK(!ob_plan_context(m, &p, &plan, &err));
    const bool host = experts == OB_EXPERTS_HOST;
    CHECK(plan.experts_on_host == host);
    CHECK(host ? plan.experts.weights > 2 * plan.device.weights : plan.experts.weights == 0);
    ob_context *c = ctx_new(m, &p);
    CHECK(c);
    CHECK_EQ_INT(c->n_stage, 1);
    const vulkan_backend *vb = (const vulkan_backend *)c->stage[0].be;
    /* less the staging arena and the dummy binding every Vulkan context has */
    const uint64_t used = vb->c->device_bytes - vb->c->arena.size - vb->c->dummy.size;
    fprintf(stderr, "  device memory %llu bytes besides staging; plan: device part %llu, "
            "experts %llu\n", (unsigned long long)used, (unsigned long long)total(&plan.device),
            (unsigned long long)plan.experts.weights);
    CHECK(used >= plan.device.weights + plan.device.kv);
    CHECK_MSG(used <= total(&plan.device), "%llu bytes on the device", (unsigned long long)used);
    ob_model_info in;
    ob_model_get_info(m, &in);
    int32_t toks[8];
    for (int i = 0; i < 8; i++) toks[i] = (int32_t)(5 + i * 7 % (in.n_vocab - 5));
    ob_transfer_stats a, b;
    ob_context_transfer_stats(c, &a);
    CHECK(!ob_eval(c, toks, 8, false, &err));
    ob_context_transfer_stats(c, &b);
    CHECK_EQ_INT((b.bytes + b.bytes_back) - (a.bytes + a.bytes_back), plan.link_chunk);
    if (!host) CHECK_EQ_INT(plan.link_chunk, (uint64_t)in.n_vocab * 4);
    ob_context_free(c);
    ob_model_free(m);
}

TEST(device_memory_holds_no_experts) {
    device_memory_holds_its_part(OB_EXPERTS_HOST);
}

TEST(device_memory_holds_the_experts) {
    device_memory_holds_its_part(OB_EXPERTS_DEVICE);
}

TEST(planner_moves_experts_to_the_host) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("qwen3moe", "q8_0", "");
    CHECK(m);
    ob_model_info in;
    ob_model_get_info(m, &in);
    ob_err err = {{0}};
    ob_context_params p;
    ob_plan cpu, fixed, got;
    params(&p, OB_DEVICE_VULKAN, dev, 0, OB_EXPERTS_AUTO, 0);
    CHECK(!ob_plan_context(m, &p, &cpu, &err));
    CHECK(!cpu.experts_on_host && cpu.experts.weights == 0);
    for (int64_t g = 1; g <= in.n_layer; g++) {
        params(&p, OB_DEVICE_VULKAN, dev, g, OB_EXPERTS_HOST, 1ull << 40);
        CHECK(!ob_plan_context(m, &p, &fixed, &err));
        CHECK(fixed.experts_on_host);
        CHECK_EQ_INT(fixed.experts.layer_lo, in.n_layer - g);
        CHECK_EQ_INT(fixed.experts.layer_hi, in.n_layer);
        CHECK(fixed.experts.kv == 0 && fixed.experts.state == 0 && fixed.experts.activations);
        /* each tensor once, the embedding on both sides of a split (tied or not, the host
         * embeds and the device projects) */
        const uint64_t sum = fixed.host.weights + fixed.device.weights + fixed.experts.weights;
        CHECK_MSG(g < in.n_layer ? sum >= cpu.host.weights : sum == cpu.host.weights,
                  "%lld layers: %llu bytes of weights, %llu on the CPU alone", (long long)g,
                  (unsigned long long)sum, (unsigned long long)cpu.host.weights);
        /* the cache stays with the layers, on the device */
        CHECK_EQ_INT(fixed.host.kv + fixed.device.kv, cpu.host.kv);
        /* a budget that holds g layers only without their experts: auto takes g of them and
         * leaves the experts on the host; one byte less, g - 1 */
        const uint64_t need = total(&fixed.device);
        params(&p, OB_DEVICE_VULKAN, dev, OB_GPU_LAYERS_AUTO, OB_EXPERTS_AUTO, need);
        CHECK(!ob_plan_context(m, &p, &got, &err));
        CHECK_MSG(got.n_gpu_layers == g && got.experts_on_host, "budget %llu: %lld layers",
                  (unsigned long long)need, (long long)got.n_gpu_layers);
        CHECK(strstr(got.why, "MoE blocks"));
        params(&p, OB_DEVICE_VULKAN, dev, OB_GPU_LAYERS_AUTO, OB_EXPERTS_AUTO, need - 1);
        CHECK(!ob_plan_context(m, &p, &got, &err));
        CHECK_EQ_INT(got.n_gpu_layers, g - 1);
        CHECK(total(&got.device) <= need - 1);
    }
    /* room for everything: auto keeps the experts with their layers on the device */
    params(&p, OB_DEVICE_VULKAN, dev, OB_GPU_LAYERS_AUTO, OB_EXPERTS_AUTO, 1ull << 40);
    CHECK(!ob_plan_context(m, &p, &got, &err));
    CHECK(got.n_gpu_layers == in.n_layer && !got.experts_on_host && got.experts.weights == 0);
    CHECK_EQ_INT(got.device.weights, cpu.host.weights);
    p.experts = (ob_experts)7;
    CHECK(ob_plan_context(m, &p, &got, &err) == OB_ERR_ARG);
    ob_model_free(m);
}

TEST(placement_says_where_the_experts_run) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("qwen3moe", "f32", "");
    CHECK(m);
    ob_model_info in;
    ob_model_get_info(m, &in);
    ob_context_params p;
    for (int host = 0; host < 2; host++) {
        params(&p, OB_DEVICE_VULKAN, dev, 1, host ? OB_EXPERTS_HOST : OB_EXPERTS_AUTO, 0);
        ob_context *c = ctx_new(m, &p);
        CHECK(c);
        char want[128];
        snprintf(want, sizeof want, "cpu: layers 0-%lld, vulkan: layers %lld-%lld%s",
                 (long long)in.n_layer - 2, (long long)in.n_layer - 1,
                 (long long)in.n_layer - 1, host ? " (MoE blocks on the cpu)" : "");
        CHECK_MSG(!strcmp(ob_context_placement(c), want), "'%s', expected '%s'",
                  ob_context_placement(c), want);
        CHECK(!strcmp(ob_context_device(c), "vulkan"));
        ob_context_free(c);
    }
    ob_model_free(m);
}

/* The device lost at the first MoE block of a step (its sync is the step's first submit):
 * the block is not run on the host, that step and the next fail naming the loss, the sequence
 * is as it was, and a CPU context on the model still runs. */
TEST(device_lost_at_a_moe_block) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("qwen3moe", "q8_0", "");
    CHECK(m);
    ob_context_params p;
    params(&p, OB_DEVICE_VULKAN, dev, -1, OB_EXPERTS_HOST, 0);
    ob_context *g = ctx_new(m, &p);
    CHECK(g);
    ob_err err = {{0}};
    const int32_t tok[3] = {1, 40, 70};
    CHECK(ob_eval(g, tok, 2, false, &err) == OB_OK);
    ob_transfer_stats before, after;
    ob_context_transfer_stats(g, &before);
    vulkan_fault_set(2);
    CHECK_STATUS(ob_eval(g, tok + 2, 1, false, &err), OB_ERR_DEVICE, &err,
                 "VK_ERROR_DEVICE_LOST");
    CHECK_EQ_INT(ob_context_n_past(g), 2);
    ob_context_transfer_stats(g, &after);
    CHECK_EQ_INT(after.bytes_back, before.bytes_back); /* no rows left the lost device */
    CHECK_STATUS(ob_eval(g, tok + 2, 1, false, &err), OB_ERR_DEVICE, &err,
                 "VK_ERROR_DEVICE_LOST");
    ob_context_free(g);
    params(&p, OB_DEVICE_CPU, -1, 0, OB_EXPERTS_AUTO, 0);
    ob_context *c = ctx_new(m, &p);
    CHECK(c && ob_eval(c, tok, 3, false, &err) == OB_OK);
    ob_context_free(c);
    ob_model_free(m);
}

TEST(validation_layer_silent) {
    NEED_VULKAN(dev);
    (void)dev;
    fprintf(stderr, "  worst logits difference seen: %.3g of the range\n", g_worst);
    CHECK_MSG(vulkan_validation_messages() == 0, "%llu validation messages",
              (unsigned long long)vulkan_validation_messages());
}

int main(void) {
    RUN(experts_on_host_match_the_cpu);
    RUN(experts_on_device_match_the_cpu);
    RUN(experts_on_device_in_a_small_grid);
    RUN(experts_on_device_uploaded_through_staging);
    RUN(link_bytes_equal_the_plan);
    RUN(device_memory_holds_no_experts);
    RUN(device_memory_holds_the_experts);
    RUN(planner_moves_experts_to_the_host);
    RUN(placement_says_where_the_experts_run);
    RUN(device_lost_at_a_moe_block);
    RUN(validation_layer_silent);
    dm_models_done();
    return t_summary();
}
