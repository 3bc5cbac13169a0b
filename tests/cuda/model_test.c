/*
 * Whole models on the CUDA backend against the CPU backend through the public API:
 * stories260K (F32) and tiny synthetic models (`outboard synth`) of every family (llama with
 * Llama 3 rope factors, qwen2's biases, qwen3's q/k norms, gemma3's GeGLU, scaled embeddings
 * and sliding window) in several tensor types. Every prompt position's logits (prefill) and
 * every greedy decode step's agree within a stated share of the logits' range, and the greedy
 * tokens are the same (the CPU quantizes activations to Q8 for quantized weights, the device
 * does not, so the tolerance is set by the weight type). Two sequences in one batch through
 * the KV pool, and layers split between the CPU and the device. Then faults: a model larger
 * than the free memory, the device out of memory at creation, and a kernel failing in the
 * middle of a run, each a clear error after which a CPU context on the same model still runs;
 * a mixture-of-experts model with its experts on the host, refused by name with them on the
 * device, and a recurrent model refused by name. Without a GPU every test skips.
 */
#include "outboard.h"

#include "test.h"
#include "cuda_test.h"
#include "device_models.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

TEST(stories260k_matches_cpu) {
    NEED_CUDA(dev);
    ob_model *m = dm_load_stories();
    if (!m) SKIP("models/stories260K.gguf not in the shared folder");
    CHECK(dm_compare(m, OB_DEVICE_CUDA, dev, 20, 12, 1e-3, "stories260K F32"));
    ob_model_free(m);
}

/* Tolerances as for the Vulkan backend: 1e-3 of the logits' range for F32/F16/BF16 weights
 * (the CPU rounds activations to F16 for F16 weights and attention weights to F16
 * everywhere; the device does not), 3e-2 for quantized ones (the CPU's Q8 activations). Prompts
 * of 13 tokens take the matrix-matrix path (more than 8 rows), decode the matrix-vector one. */
static void family(const char *arch, const char *type, const char *extra) {
    NEED_CUDA(dev);
    ob_model *m = dm_load_synth(arch, type, extra);
    CHECK_MSG(m, "outboard synth --arch %s --type %s %s", arch, type, extra);
    char what[96];
    snprintf(what, sizeof what, "synth %s %s %s", arch, type, extra);
    const bool flt = type[0] == 'f' || type[0] == 'b';
    CHECK(dm_compare(m, OB_DEVICE_CUDA, dev, 13, 6, flt ? 1e-3 : 3e-2, what));
    ob_model_free(m);
}

TEST(llama_q4_k) {
    family("llama", "q4_k", "");
}
TEST(llama_q8_0_rope_factors) {
    family("llama", "q8_0", "--rope-freqs");
}
TEST(llama_f16_window) {
    family("llama", "f16", "--swa 5");
}
TEST(qwen2_q5_0) {
    family("qwen2", "q5_0", "");
}
TEST(qwen3_q6_k) {
    family("qwen3", "q6_k", "");
}
TEST(qwen3_iq4_xs) {
    family("qwen3", "iq4_xs", "");
}
TEST(gemma3_bf16) {
    family("gemma3", "bf16", "");
}
TEST(gemma3_q4_0_window) {
    family("gemma3", "q4_0", "--swa 4");
}

/* The default model (Gemma 3 270M Q4_K_M, when OB_DEFAULT_MODEL names it): greedy decoding
 * on the device picks the CPU's token at every step, and at each step the CPU's gap between
 * its top two tokens exceeds how far the device moved those two logits, so the agreement is
 * not luck; logits within 5e-2 of their range (the CPU's Q8_K activations over 18 layers,
 * the same bound as on Vulkan). */
TEST(default_model_greedy_matches_cpu) {
    NEED_CUDA(dev);
    dm_default_model_greedy(OB_DEVICE_CUDA, dev);
}

/* Two sequences in one batch (a shared prefix forked, then both decoding side by side, with
 * the prefix cache of the KV pool): every entry's logits as the CPU's. */
TEST(two_sequences_in_one_batch) {
    NEED_CUDA(dev);
    dm_two_sequences_match(OB_DEVICE_CUDA, dev);
}

/* Layers split: the first on the CPU, the rest on the device, only the hidden state
 * crossing; logits as a CPU context's. */
TEST(split_between_cpu_and_device) {
    NEED_CUDA(dev);
    ob_model *m = dm_load_synth("qwen3", "q8_0", "");
    CHECK(m);
    ob_context_params p;
    ob_context_params_init(&p);
    p.n_ctx = 64;
    p.n_threads = 1;
    p.device = OB_DEVICE_CUDA;
    p.device_index = dev;
    ob_model_info info;
    ob_model_get_info(m, &info);
    p.n_gpu_layers = info.n_layer - 1; /* layer 0 on the CPU, the rest on the device */
    ob_context *g = NULL, *c = NULL;
    ob_status st;
    ob_err err = {{0}};
    CHECK_MSG(ob_context_new(m, &p, &g, &err) == OB_OK, "%s", err.msg);
    c = dm_ctx_new(m, OB_DEVICE_CPU, -1, &st, &err);
    CHECK(c);
    const int32_t prompt[9] = {1, 5, 9, 13, 17, 21, 25, 29, 33};
    CHECK(ob_eval(g, prompt, 9, true, &err) == OB_OK && ob_eval(c, prompt, 9, true, &err) == OB_OK);
    for (int64_t t = 0; t < 9; t++) {
        const double d = dm_rel_diff(ob_logits(g, t), ob_logits(c, t), info.n_vocab);
        CHECK_MSG(d <= 3e-2, "position %lld: logits differ by %.3g of their range", (long long)t,
                  d);
    }
    ob_transfer_stats x; /* one hidden-state copy for the prompt's one pass */
    ob_context_transfer_stats(g, &x);
    CHECK(x.copies == 1 && x.bytes == (uint64_t)(9 * info.n_embd) * 4);
    ob_context_free(g);
    ob_context_free(c);
    ob_model_free(m);
}

/* Weight streaming: the CPU's layers' products of the prompt run on the device, each weight
 * copied into the streaming buffer (on a split and on a device holding no layers); logits as
 * a CPU context's, and the products counted. */
TEST(streamed_prompt_matches_cpu) {
    NEED_CUDA(dev);
    ob_model *m = dm_load_synth("qwen3", "q8_0", "");
    CHECK(m);
    ob_model_info info;
    ob_model_get_info(m, &info);
    const int64_t gs[] = {0, info.n_layer / 2};
    for (size_t k = 0; k < 2; k++) {
        ob_context_params p;
        ob_context_params_init(&p);
        p.n_ctx = 64;
        p.n_threads = 1;
        p.device = OB_DEVICE_CUDA;
        p.device_index = dev;
        p.n_gpu_layers = gs[k];
        p.stream_min_tok = 2;
        ob_context *g = NULL, *c = NULL;
        ob_status st;
        ob_err err = {{0}};
        CHECK_MSG(ob_context_new(m, &p, &g, &err) == OB_OK, "%s", err.msg);
        c = dm_ctx_new(m, OB_DEVICE_CPU, -1, &st, &err);
        CHECK(c);
        const int32_t prompt[9] = {1, 5, 9, 13, 17, 21, 25, 29, 33};
        CHECK(ob_eval(g, prompt, 9, true, &err) == OB_OK &&
              ob_eval(c, prompt, 9, true, &err) == OB_OK);
        for (int64_t t = 0; t < 9; t++) {
            const double d = dm_rel_diff(ob_logits(g, t), ob_logits(c, t), info.n_vocab);
            CHECK_MSG(d <= 3e-2, "%lld device layers, position %lld: logits differ by %.3g",
                      (long long)gs[k], (long long)t, d);
        }
        ob_transfer_stats x;
        ob_context_transfer_stats(g, &x);
        CHECK(x.streamed > 0 && x.weight_bytes > 0);
        ob_context_free(g);
        ob_context_free(c);
    }
    ob_model_free(m);
}

/* A model larger than the device's free memory is refused before anything is uploaded, with
 * both figures in the message. */
TEST(too_large_for_the_device) {
    NEED_CUDA(dev);
    ob_model *m = dm_load_stories();
    if (!m) SKIP("models/stories260K.gguf not in the shared folder");
    ob_status st;
    ob_err err = {{0}};
    cuda_fault_set(3);
    ob_context *g = dm_ctx_new(m, OB_DEVICE_CUDA, dev, &st, &err);
    cuda_fault_set(0);
    CHECK(g == NULL);
    CHECK_STATUS(st, OB_ERR_LIMIT, &err, "MiB free");
    CHECK(strstr(err.msg, "need"));
    ob_model_free(m);
}

/* Out of device memory while the backend is made: a clear error, nothing half-made, and a CPU
 * context on the same model runs. */
TEST(out_of_memory_is_reported) {
    NEED_CUDA(dev);
    ob_model *m = dm_load_stories();
    if (!m) SKIP("models/stories260K.gguf not in the shared folder");
    ob_status st;
    ob_err err = {{0}};
    cuda_fault_set(1);
    ob_context *g = dm_ctx_new(m, OB_DEVICE_CUDA, dev, &st, &err);
    cuda_fault_set(0);
    CHECK(g == NULL);
    CHECK_STATUS(st, OB_ERR_NOMEM, &err, "out of device memory");
    ob_context *c = dm_ctx_new(m, OB_DEVICE_CPU, -1, &st, &err);
    const int32_t tok[3] = {1, 403, 407};
    CHECK(c && ob_eval(c, tok, 3, false, &err) == OB_OK);
    ob_context_free(c);
    ob_model_free(m);
}

/* A kernel failing between two steps: that step and every later one fail naming the CUDA
 * error, the sequence is as it was, and the CPU keeps working. */
TEST(kernel_failure_is_reported) {
    NEED_CUDA(dev);
    ob_model *m = dm_load_stories();
    if (!m) SKIP("models/stories260K.gguf not in the shared folder");
    ob_status st;
    ob_err err = {{0}};
    ob_context *g = dm_ctx_new(m, OB_DEVICE_CUDA, dev, &st, &err);
    CHECK_MSG(g, "%s", err.msg);
    const int32_t tok[3] = {1, 403, 407};
    CHECK(ob_eval(g, tok, 2, false, &err) == OB_OK);
    cuda_fault_set(2);
    ob_status s1 = ob_eval(g, tok + 2, 1, false, &err);
    cuda_fault_set(0);
    CHECK(s1 != OB_OK);
    CHECK_MSG(strstr(err.msg, "cuda"), "%s", err.msg);
    CHECK_EQ_INT(ob_context_n_past(g), 2);
    CHECK(ob_eval(g, tok + 2, 1, false, &err) != OB_OK);
    ob_context_free(g);
    ob_context *c = dm_ctx_new(m, OB_DEVICE_CPU, -1, &st, &err);
    CHECK(c && ob_eval(c, tok, 3, false, &err) == OB_OK);
    ob_context_free(c);
    ob_model_free(m);
}

/* A mixture-of-experts model runs on the device with its MoE blocks on the host (the CUDA
 * backend has no MoE kernels), matching the CPU, and is refused naming the kind of layer when
 * the experts must be on the device; a recurrent (DeltaNet) model is refused when the backend
 * is made, and runs on the CPU. */
TEST(moe_on_host_and_recurrent_refused) {
    NEED_CUDA(dev);
    ob_model *m = dm_load_synth("qwen3moe", "q8_0", "");
    CHECK_MSG(m, "outboard synth --arch qwen3moe");
    CHECK(dm_compare(m, OB_DEVICE_CUDA, dev, 13, 4, 3e-2, "qwen3moe, experts on the host"));
    ob_context_params p;
    ob_context_params_init(&p);
    p.n_ctx = 64;
    p.device = OB_DEVICE_CUDA;
    p.device_index = dev;
    p.experts = OB_EXPERTS_DEVICE;
    ob_err err = {{0}};
    ob_context *g = NULL;
    ob_status st = ob_context_new(m, &p, &g, &err);
    CHECK(g == NULL);
    CHECK_STATUS(st, OB_ERR_UNSUPPORTED, &err, "mixture-of-experts");
    ob_model_free(m);
    m = dm_load_synth("qwen35", "q8_0", "");
    CHECK_MSG(m, "outboard synth --arch qwen35");
    g = dm_ctx_new(m, OB_DEVICE_CUDA, dev, &st, &err);
    CHECK(g == NULL);
    CHECK_STATUS(st, OB_ERR_UNSUPPORTED, &err, "recurrent");
    ob_context *c = dm_ctx_new(m, OB_DEVICE_CPU, -1, &st, &err);
    const int32_t tok[3] = {1, 5, 9};
    CHECK(c && ob_eval(c, tok, 3, false, &err) == OB_OK);
    ob_context_free(c);
    ob_model_free(m);
}

TEST(report) {
    NEED_CUDA(dev);
    (void)dev;
    fprintf(stderr, "largest logits difference: %.3g of the range\n", dm_worst);
}

int main(void) {
    RUN(stories260k_matches_cpu);
    RUN(llama_q4_k);
    RUN(llama_q8_0_rope_factors);
    RUN(llama_f16_window);
    RUN(qwen2_q5_0);
    RUN(qwen3_q6_k);
    RUN(qwen3_iq4_xs);
    RUN(gemma3_bf16);
    RUN(gemma3_q4_0_window);
    RUN(default_model_greedy_matches_cpu);
    RUN(two_sequences_in_one_batch);
    RUN(split_between_cpu_and_device);
    RUN(streamed_prompt_matches_cpu);
    RUN(too_large_for_the_device);
    RUN(out_of_memory_is_reported);
    RUN(kernel_failure_is_reported);
    RUN(moe_on_host_and_recurrent_refused);
    RUN(report);
    dm_models_done();
    return t_summary();
}
