/*
 * Weight streaming (src/model/stream.h) with the Vulkan device of the tests (lavapipe in CI)
 * standing in for a card: the host's layers' matrix products of a prompt chunk run on the
 * device, their weights shipped per product.
 *   - logits of a prompt in two chunks and of decode steps after it equal the CPU alone's
 *     within tolerance, for a llama and a gemma3 (sliding window) model split at several
 *     points, on a device holding none of the layers too, and for a MoE model with its experts
 *     on the host, all layers on the device included; the prompt's products went to the
 *     device, the MoE model's routed experts' among them, the decode steps' did not;
 *   - the bytes counted over the link per prompt chunk (weights included) and per decoded
 *     token equal what the plan said, exactly, and the weight bytes its stream_chunk; for a
 *     MoE model whose tokens use every expert, the routed experts' bytes too, and for one
 *     whose routing picks, the rest exactly and the experts' in whole matrices;
 *   - the plan and the placement line say what streams; auto never streams to an uncalibrated
 *     CPU implementation; a bad stream_min_tok is refused;
 *   - a device lost in the middle of a streamed product fails that pass with the device's
 *     error, and nothing leaks or crashes.
 */
#include "model/context.h"
#include "outboard.h"

#include "test.h"
#include "device_models.h"
#include "vk_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void params(ob_context_params *p, ob_device device, int dev, int64_t gpu_layers,
                   int64_t stream_min_tok) {
    ob_context_params_init(p);
    p->n_ctx = 64;
    p->n_batch = 8; /* a prompt of 13 is a chunk of 8 (streamed) and one of 5 */
    p->n_threads = 1;
    p->device = device;
    p->device_index = dev;
    p->n_gpu_layers = gpu_layers;
    p->stream_min_tok = stream_min_tok;
}

/* The CPU's logits for a 13-token prompt and 3 greedy steps against a context streaming
 * passes of 6+ rows with gpu_layers on the device. */
static bool compare(ob_model *m, int dev, int64_t gpu_layers, ob_experts experts, double tol,
                    const char *what) {
    const bool moe = experts != OB_EXPERTS_AUTO;
    ob_err err = {{0}};
    ob_context_params p;
    ob_context *s = NULL, *c = NULL;
    params(&p, OB_DEVICE_VULKAN, dev, gpu_layers, 6);
    p.experts = experts;
    if (ob_context_new(m, &p, &s, &err)) {
        fprintf(stderr, "  %s, %lld device layers: %s\n", what, (long long)gpu_layers, err.msg);
        return false;
    }
    params(&p, OB_DEVICE_CPU, -1, -1, 0);
    bool ok = !ob_context_new(m, &p, &c, &err);
    ob_model_info info;
    ob_model_get_info(m, &info);
    const int64_t nv = info.n_vocab, n_prompt = 13;
    int32_t prompt[13];
    for (int64_t i = 0; i < n_prompt; i++) prompt[i] = (int32_t)(1 + (i * 37 + 11) % (nv - 1));
    ok = ok && !ob_eval(s, prompt, n_prompt, true, &err) &&
         !ob_eval(c, prompt, n_prompt, true, &err);
    if (!ok) fprintf(stderr, "  %s: prefill: %s\n", what, err.msg);
    for (int64_t t = 0; ok && t < n_prompt; t++) {
        const double d = dm_rel_diff(ob_logits(s, t), ob_logits(c, t), nv);
        if (!(d <= tol)) {
            fprintf(stderr, "  %s, %lld device layers: position %lld differs by %.3g\n", what,
                    (long long)gpu_layers, (long long)t, d);
            ok = false;
        }
    }
    ob_transfer_stats after_prompt, after_steps;
    ob_context_transfer_stats(s, &after_prompt);
    int32_t next = ok ? dm_argmax(ob_logits(c, -1), nv, NULL) : 0;
    for (int step = 0; ok && step < 3; step++) {
        ok = !ob_eval(s, &next, 1, false, &err) && !ob_eval(c, &next, 1, false, &err);
        const double d = ok ? dm_rel_diff(ob_logits(s, -1), ob_logits(c, -1), nv) : INFINITY;
        const int32_t a = ok ? dm_argmax(ob_logits(s, -1), nv, NULL) : -1;
        next = ok ? dm_argmax(ob_logits(c, -1), nv, NULL) : 0;
        if (!(d <= tol) || a != next) {
            fprintf(stderr, "  %s, %lld device layers: step %d: difference %.3g, tokens %d "
                    "and %d %s\n", what, (long long)gpu_layers, step, d, a, next, err.msg);
            ok = false;
        }
    }
    ob_context_transfer_stats(s, &after_steps);
    /* only the chunk of 8 streamed (the 5 after it, and single rows, stay on the CPU) */
    if (ok && (after_prompt.streamed == 0 || after_prompt.weight_bytes == 0 ||
               after_steps.streamed != after_prompt.streamed ||
               (moe && after_prompt.expert_weight_bytes == 0))) {
        fprintf(stderr, "  %s, %lld device layers: %llu products streamed in the prompt "
                "(%llu bytes of experts), %llu after the steps\n", what, (long long)gpu_layers,
                (unsigned long long)after_prompt.streamed,
                (unsigned long long)after_prompt.expert_weight_bytes,
                (unsigned long long)after_steps.streamed);
        ok = false;
    }
    ob_context_free(s);
    ob_context_free(c);
    return ok;
}

static void splits(const char *arch, const char *type, const char *extra, ob_experts experts,
                   double tol) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth(arch, type, extra);
    CHECK(m);
    ob_model_info in;
    ob_model_get_info(m, &in);
    /* every layer on the device streams only a MoE model's experts kept on the host */
    const int64_t gs[] = {0, 1, in.n_layer / 2, in.n_layer - 1, in.n_layer};
    const size_t n_gs = sizeof gs / sizeof gs[0] - (experts == OB_EXPERTS_AUTO);
    for (size_t k = 0; k < n_gs; k++)
        CHECK_MSG(compare(m, dev, gs[k], experts, tol, arch), "%s %s, %lld device layers", arch,
                  type, (long long)gs[k]);
    ob_model_free(m);
}

TEST(llama_streamed_prompt_matches_the_cpu) {
    splits("llama", "q8_0", "", OB_EXPERTS_AUTO, 3e-2);
}

TEST(gemma3_window_streamed_prompt_matches_the_cpu) {
    splits("gemma3", "q4_k", "--swa 4", OB_EXPERTS_AUTO, 3e-2);
}

TEST(moe_streamed_prompt_matches_the_cpu) {
    splits("qwen3moe", "q8_0", "", OB_EXPERTS_HOST, 3e-2);
}

/* A prompt chunk, then decoded tokens: what crossed is what the plan said, to the byte. With
 * routed experts that the routing picks (routed), their streamed products' bytes are the
 * routing's: the rest is still the plan's to the byte, and they ship whole matrices of the
 * experts (each of `matrix` bytes). */
static void link_bytes_of(const char *arch, const char *extra, bool routed) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth(arch, "q8_0", extra);
    CHECK(m);
    ob_model_info in;
    ob_model_get_info(m, &in);
    const bool moe = !strcmp(arch, "qwen3moe");
    const uint64_t matrix = 512 * (in.n_embd / 32) * 34; /* an expert's Q8_0 matrix */
    const int64_t gs[] = {0, 1, in.n_layer / 2, in.n_layer};
    const size_t n_gs = sizeof gs / sizeof gs[0] - !moe;
    int32_t toks[12];
    for (int i = 0; i < 12; i++) toks[i] = (int32_t)(5 + i * 7 % (in.n_vocab - 5));
    for (size_t k = 0; k < n_gs; k++) {
        ob_err err = {{0}};
        ob_context_params p;
        /* routed: experts of 2 rows of the 8 stream, so some surely do */
        params(&p, OB_DEVICE_VULKAN, dev, gs[k], routed ? 2 : 4);
        p.experts = moe ? OB_EXPERTS_HOST : OB_EXPERTS_AUTO;
        ob_plan plan;
        ob_context *c = NULL;
        CHECK_MSG(!ob_plan_context(m, &p, &plan, &err), "%s", err.msg);
        CHECK_EQ_INT(plan.stream_min_tok, routed ? 2 : 4);
        CHECK(plan.device.stream > 0 && plan.stream_chunk > 0);
        CHECK(plan.link_chunk > plan.stream_chunk);
        CHECK_MSG(!ob_context_new(m, &p, &c, &err), "%s", err.msg);
        ob_transfer_stats a, b, d;
        ob_context_transfer_stats(c, &a);
        CHECK(!ob_eval(c, toks, 8, false, &err)); /* one chunk of n_batch */
        ob_context_transfer_stats(c, &b);
        const uint64_t link = (b.bytes + b.bytes_back) - (a.bytes + a.bytes_back);
        const uint64_t weights = b.weight_bytes - a.weight_bytes;
        const uint64_t experts = b.expert_bytes - a.expert_bytes;
        const uint64_t expert_weights = b.expert_weight_bytes - a.expert_weight_bytes;
        CHECK_EQ_INT(link - experts, plan.link_chunk - plan.link_experts);
        CHECK_EQ_INT(weights - expert_weights, plan.stream_chunk - plan.stream_experts);
        if (!routed) { /* every expert gets every row: the plan's figures are exact */
            CHECK_EQ_INT(link, plan.link_chunk);
            CHECK_EQ_INT(weights, plan.stream_chunk);
            CHECK_EQ_INT(expert_weights, plan.stream_experts);
        } else {
            CHECK(expert_weights > 0 && expert_weights % matrix == 0);
            CHECK(plan.stream_experts > 0 && plan.link_experts > plan.stream_experts);
        }
        CHECK(moe == (expert_weights > 0));
        for (int t = 8; t < 12; t++) CHECK(!ob_eval(c, &toks[t], 1, false, &err));
        ob_context_transfer_stats(c, &d);
        CHECK_EQ_INT((d.bytes + d.bytes_back) - (b.bytes + b.bytes_back), 4 * plan.link_token);
        CHECK_EQ_INT(d.streamed, b.streamed);
        ob_context_free(c);
    }
    ob_model_free(m);
}

TEST(streamed_link_bytes_equal_the_plan) {
    link_bytes_of("llama", "", false);
}

TEST(streamed_link_bytes_equal_the_plan_moe_every_expert_used) {
    link_bytes_of("qwen3moe", "--experts-used 8", false);
}

TEST(streamed_link_bytes_equal_the_plan_moe_routed) {
    link_bytes_of("qwen3moe", "", true);
}

TEST(plan_and_placement_say_what_streams) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("llama", "q8_0", "");
    CHECK(m);
    ob_model_info in;
    ob_model_get_info(m, &in);
    ob_err err = {{0}};
    ob_context_params p;
    ob_plan plan;
    /* auto: lavapipe is the host's own cores, and nothing says it is faster */
    setenv("OUTBOARD_CALIBRATION", "/nonexistent/outboard-calibration", 1);
    params(&p, OB_DEVICE_VULKAN, dev, 1, OB_STREAM_AUTO);
    CHECK(!ob_plan_context(m, &p, &plan, &err));
    CHECK_EQ_INT(plan.stream_min_tok, 0);
    CHECK_MSG(strstr(plan.stream_why, "CPU implementation") != NULL, "%s", plan.stream_why);
    CHECK_EQ_INT(plan.device.stream, 0);
    /* off, and nothing to stream when every layer is on the device */
    params(&p, OB_DEVICE_VULKAN, dev, 1, 0);
    CHECK(!ob_plan_context(m, &p, &plan, &err) && plan.stream_min_tok == 0);
    CHECK(strstr(plan.stream_why, "off") != NULL);
    params(&p, OB_DEVICE_VULKAN, dev, -1, 4);
    CHECK(!ob_plan_context(m, &p, &plan, &err) && plan.stream_min_tok == 0);
    CHECK(strstr(plan.stream_why, "every layer") != NULL);
    params(&p, OB_DEVICE_CPU, -1, -1, 4);
    CHECK(!ob_plan_context(m, &p, &plan, &err) && plan.stream_min_tok == 0);
    /* asked: the buffer is the largest host weight, and the placement line says so */
    params(&p, OB_DEVICE_VULKAN, dev, 0, 4);
    CHECK(!ob_plan_context(m, &p, &plan, &err));
    CHECK_EQ_INT(plan.stream_min_tok, 4);
    CHECK_EQ_INT(plan.device.stream, model_stream_buffer_bytes(m, 0, in.n_layer));
    ob_context *c = NULL;
    CHECK_MSG(!ob_context_new(m, &p, &c, &err), "%s", err.msg);
    CHECK_MSG(strstr(ob_context_placement(c), "passes of 4+ rows stream") != NULL, "%s",
              ob_context_placement(c));
    ob_context_free(c);
    /* refused: one row, or a negative count other than auto */
    const int64_t bad[] = {1, -5};
    for (size_t k = 0; k < 2; k++) {
        params(&p, OB_DEVICE_VULKAN, dev, 0, bad[k]);
        CHECK(ob_context_new(m, &p, &c, &err) == OB_ERR_ARG);
        CHECK(strstr(err.msg, "stream_min_tok") != NULL);
    }
    unsetenv("OUTBOARD_CALIBRATION");
    ob_model_free(m);
}

/* The device lost during the prompt's first streamed product: the pass fails with its error,
 * on a device that holds layers and on one that holds none. */
TEST(device_lost_mid_stream_fails_cleanly) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("llama", "q8_0", "");
    CHECK(m);
    ob_model_info in;
    ob_model_get_info(m, &in);
    int32_t toks[8];
    for (int i = 0; i < 8; i++) toks[i] = (int32_t)(3 + i * 11 % (in.n_vocab - 3));
    const int64_t gs[] = {0, in.n_layer / 2};
    for (size_t k = 0; k < 2; k++) {
        ob_err err = {{0}};
        ob_context_params p;
        ob_context *c = NULL;
        params(&p, OB_DEVICE_VULKAN, dev, gs[k], 2);
        CHECK_MSG(!ob_context_new(m, &p, &c, &err), "%s", err.msg);
        vulkan_fault_set(2); /* the next submit reports a lost device */
        const ob_status st = ob_eval(c, toks, 8, false, &err);
        CHECK_MSG(st == OB_ERR_DEVICE, "%s: %s", ob_status_name(st), err.msg);
        CHECK_MSG(strstr(err.msg, "VK_ERROR_DEVICE_LOST") != NULL, "%s", err.msg);
        ob_context_free(c);
    }
    ob_model_free(m);
}

int main(void) {
    RUN(llama_streamed_prompt_matches_the_cpu);
    RUN(gemma3_window_streamed_prompt_matches_the_cpu);
    RUN(moe_streamed_prompt_matches_the_cpu);
    RUN(streamed_link_bytes_equal_the_plan);
    RUN(streamed_link_bytes_equal_the_plan_moe_every_expert_used);
    RUN(streamed_link_bytes_equal_the_plan_moe_routed);
    RUN(plan_and_placement_say_what_streams);
    RUN(device_lost_mid_stream_fails_cleanly);
    dm_models_done();
    return t_summary();
}
