/*
 * Layers split between the CPU and the Vulkan device (ob_context_params.n_gpu_layers) against
 * the CPU alone, through the public API: for stories260K and tiny synthetic llama and gemma3
 * models (gemma3 with its sliding window and scaled embedding), every split point from none
 * on the device to all of them gives logits within tolerance of the CPU's at every prompt
 * position and every decode step, the same greedy tokens, and exactly one hidden-state copy
 * of n_tok * n_embd floats per forward pass when the split is real (none otherwise). Then
 * two sequences in one batch on a split context, one a fork of the other sharing its cache
 * blocks (copy-on-write on both backends), and the placement line.
 */
#include "outboard.h"

#include "test.h"
#include "device_models.h"
#include "vk_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ob_context *ctx_new(ob_model *m, ob_device dev, int index, int64_t gpu_layers,
                           int32_t n_seq, ob_err *err) {
    ob_context_params p;
    ob_context_params_init(&p);
    p.n_ctx = 64;
    p.n_threads = 1;
    p.n_batch = 8; /* a prompt of 13 is two passes */
    p.device = dev;
    p.device_index = index;
    p.n_gpu_layers = gpu_layers;
    p.n_seq_max = n_seq;
    p.kv_size = 64 * n_seq;
    ob_context *c = NULL;
    if (ob_context_new(m, &p, &c, err)) return NULL;
    return c;
}

static double g_worst;

/* The CPU's logits for a 13-token prompt and 4 greedy steps against the split context's. */
static bool compare_split(ob_model *m, int dev, int64_t gpu_layers, double tol,
                          const char *what) {
    ob_err err = {{0}};
    ob_context *s = ctx_new(m, OB_DEVICE_VULKAN, dev, gpu_layers, 1, &err);
    if (!s) {
        fprintf(stderr, "  %s, %lld device layers: %s\n", what, (long long)gpu_layers, err.msg);
        return false;
    }
    ob_context *c = ctx_new(m, OB_DEVICE_CPU, -1, -1, 1, &err);
    ob_model_info info;
    ob_model_get_info(m, &info);
    const int64_t nv = info.n_vocab, n_prompt = 13, n_steps = 4;
    int32_t prompt[13];
    for (int64_t i = 0; i < n_prompt; i++) prompt[i] = (int32_t)(1 + (i * 37 + 11) % (nv - 1));
    bool ok = c && !ob_eval(s, prompt, n_prompt, true, &err) &&
              !ob_eval(c, prompt, n_prompt, true, &err);
    if (!ok) fprintf(stderr, "  %s: prefill: %s\n", what, err.msg);
    for (int64_t t = 0; ok && t < n_prompt; t++) {
        const double d = dm_rel_diff(ob_logits(s, t), ob_logits(c, t), nv);
        g_worst = fmax(g_worst, d);
        if (!(d <= tol)) {
            fprintf(stderr, "  %s, %lld device layers: position %lld differs by %.3g "
                    "(tolerance %.3g)\n", what, (long long)gpu_layers, (long long)t, d, tol);
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
                    "tokens %d and %d %s\n", what, (long long)gpu_layers, (long long)step, d,
                    a, next, err.msg);
            ok = false;
        }
    }
    /* passes: the prompt in two (n_batch 8), then one per step; one copy each when split */
    ob_transfer_stats x;
    ob_context_transfer_stats(s, &x);
    const bool split = gpu_layers > 0 && gpu_layers < info.n_layer;
    const uint64_t want_bytes = split ? (uint64_t)(n_prompt + n_steps) * info.n_embd * 4 : 0;
    if (ok && (x.copies != (split ? 2u + (uint64_t)n_steps : 0u) || x.bytes != want_bytes)) {
        fprintf(stderr, "  %s, %lld device layers: %llu copies of %llu bytes, expected %llu "
                "bytes\n", what, (long long)gpu_layers, (unsigned long long)x.copies,
                (unsigned long long)x.bytes, (unsigned long long)want_bytes);
        ok = false;
    }
    ob_context_free(s);
    ob_context_free(c);
    return ok;
}

/* Every split point of m, from none of the layers on the device to all of them. */
static void every_split(ob_model *m, int dev, double tol, const char *what) {
    ob_model_info info;
    ob_model_get_info(m, &info);
    for (int64_t g = 0; g <= info.n_layer; g++)
        CHECK_MSG(compare_split(m, dev, g, tol, what), "%s, %lld device layers", what,
                  (long long)g);
}

TEST(stories260k_every_split) {
    NEED_VULKAN(dev);
    const char *path = t_shared_path("models/stories260K.gguf");
    ob_model *m = NULL;
    ob_err err;
    if (!path || ob_model_load(path, NULL, &m, &err))
        SKIP("models/stories260K.gguf not in the shared folder");
    every_split(m, dev, 1e-3, "stories260K F32");
    ob_model_free(m);
}

TEST(llama_q8_0_every_split) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("llama", "q8_0", "");
    CHECK(m);
    every_split(m, dev, 3e-2, "synth llama q8_0");
    ob_model_free(m);
}

TEST(gemma3_q4_k_window_every_split) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("gemma3", "q4_k", "--swa 4");
    CHECK(m);
    every_split(m, dev, 3e-2, "synth gemma3 q4_k");
    ob_model_free(m);
}

/* Two sequences decoded in one batch on a split context, the second a fork of the first: each
 * row's logits as a CPU context with the same calls gives them. */
TEST(two_sequences_and_a_fork_on_a_split) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("llama", "f16", "");
    CHECK(m);
    ob_err err = {{0}};
    ob_context *ctx[2] = {ctx_new(m, OB_DEVICE_VULKAN, dev, 1, 2, &err),
                          ctx_new(m, OB_DEVICE_CPU, -1, -1, 2, &err)};
    CHECK_MSG(ctx[0] && ctx[1], "%s", err.msg);
    ob_model_info info;
    ob_model_get_info(m, &info);
    int32_t toks[40];
    for (int i = 0; i < 40; i++) toks[i] = (int32_t)(3 + (i * 53) % (info.n_vocab - 3));
    const float *rows[2][3];
    ob_batch *b = NULL;
    CHECK(!ob_batch_new(64, &b, &err));
    for (int k = 0; k < 2; k++) {
        /* sequence 0: 36 tokens; sequence 1 a fork of it cut back to 20, sharing its cache
         * blocks, so its next row copies the block it writes into (copy-on-write on both
         * backends); both then decode in one batch */
        CHECK_MSG(!ob_eval(ctx[k], toks, 36, false, &err), "%s", err.msg);
        CHECK(!ob_seq_fork(ctx[k], 0, 1, &err));
        CHECK(!ob_seq_truncate(ctx[k], 1, 20, &err));
        ob_batch_clear(b);
        CHECK(!ob_batch_add(b, toks[36], 36, 0, true, &err));
        CHECK(!ob_batch_add(b, toks[37], 20, 1, true, &err));
        CHECK(!ob_batch_add(b, toks[38], 21, 1, true, &err));
        CHECK_MSG(!ob_decode(ctx[k], b, &err), "%s", err.msg);
        for (int i = 0; i < 3; i++) rows[k][i] = ob_batch_logits(ctx[k], i);
        for (int i = 0; i < 3 && k == 1; i++) {
            const double d = dm_rel_diff(rows[0][i], rows[1][i], info.n_vocab);
            CHECK_MSG(d <= 1e-3, "batch row %d differs by %.3g", i, d);
        }
    }
    ob_batch_free(b);
    ob_context_free(ctx[0]);
    ob_context_free(ctx[1]);
    ob_model_free(m);
}

TEST(placement_names_both_devices) {
    NEED_VULKAN(dev);
    ob_model *m = dm_load_synth("qwen3", "f32", "");
    CHECK(m);
    ob_model_info info;
    ob_model_get_info(m, &info);
    ob_err err = {{0}};
    char want[128];
    ob_context *c = ctx_new(m, OB_DEVICE_VULKAN, dev, 1, 1, &err);
    CHECK_MSG(c, "%s", err.msg);
    snprintf(want, sizeof want, "cpu: layers 0-%lld, vulkan: layers %lld-%lld",
             (long long)info.n_layer - 2, (long long)info.n_layer - 1,
             (long long)info.n_layer - 1);
    CHECK_MSG(!strcmp(ob_context_placement(c), want), "'%s', expected '%s'",
              ob_context_placement(c), want);
    CHECK(!strcmp(ob_context_device(c), "vulkan"));
    ob_context_free(c);
    c = ctx_new(m, OB_DEVICE_VULKAN, dev, 0, 1, &err); /* none on the device: the CPU alone */
    CHECK_MSG(c, "%s", err.msg);
    CHECK(!strcmp(ob_context_device(c), "cpu"));
    ob_context_free(c);
    /* auto with a share for a GPU that is not there (CI: lavapipe is not taken by auto): one
     * CPU stage for every layer, not two */
    c = ctx_new(m, OB_DEVICE_AUTO, -1, 1, 1, &err);
    CHECK_MSG(c, "%s", err.msg);
    snprintf(want, sizeof want, "cpu: layers 0-%lld", (long long)info.n_layer - 1);
    if (!strcmp(ob_context_device(c), "cpu"))
        CHECK_MSG(!strcmp(ob_context_placement(c), want), "'%s', expected '%s'",
                  ob_context_placement(c), want);
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
    RUN(stories260k_every_split);
    RUN(llama_q8_0_every_split);
    RUN(gemma3_q4_k_window_every_split);
    RUN(two_sequences_and_a_fork_on_a_split);
    RUN(placement_names_both_devices);
    RUN(validation_layer_silent);
    dm_models_done();
    return t_summary();
}
