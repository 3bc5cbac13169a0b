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
 * mixture-of-experts and recurrent models refused by name. Without a GPU every test skips.
 */
#include "outboard.h"

#include "test.h"
#include "cuda_test.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

static char tmp_dir[256];

/* A tiny synthetic model, made once per run (NULL when that fails). */
static ob_model *load_synth(const char *arch, const char *type, const char *extra) {
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ob_cuda_model_test_XXXXXX");
        if (!mkdtemp(tmp_dir)) return NULL;
    }
    const char *build = getenv("OB_BUILD");
    char path[512], cmd[1400];
    snprintf(path, sizeof path, "%s/%s-%s%s.gguf", tmp_dir, arch, type, extra[0] ? "-x" : "");
    snprintf(cmd, sizeof cmd,
             "%s/outboard synth --arch %s --shape tiny --type %s %s -o %s "
             ">/dev/null 2>&1",
             build ? build : "build", arch, type, extra, path);
    if (system(cmd) != 0) return NULL;
    ob_model *m = NULL;
    ob_err err = {{0}};
    if (ob_model_load(path, NULL, &m, &err)) {
        fprintf(stderr, "  load %s: %s\n", path, err.msg);
        return NULL;
    }
    unlink(path);
    return m;
}

static ob_model *load_stories(void) {
    const char *path = t_shared_path("models/stories260K.gguf");
    ob_model *m = NULL;
    ob_err err;
    if (!path || ob_model_load(path, NULL, &m, &err)) return NULL;
    return m;
}

static ob_context *ctx_new(ob_model *m, ob_device dev, int index, ob_status *st, ob_err *err) {
    ob_context_params p;
    ob_context_params_init(&p);
    p.n_ctx = 64;
    p.n_threads = 1;
    p.device = dev;
    p.device_index = index;
    ob_context *c = NULL;
    *st = ob_context_new(m, &p, &c, err);
    return c;
}

static int32_t argmax(const float *x, int64_t n, float *gap) {
    int64_t best = 0, second = -1;
    for (int64_t i = 1; i < n; i++) {
        if (x[i] > x[best])
            second = best, best = i;
        else if (second < 0 || x[i] > x[second])
            second = i;
    }
    *gap = x[best] - x[second];
    return (int32_t)best;
}

/* Largest |a - b| over n, relative to the range of b. */
static double rel_diff(const float *a, const float *b, int64_t n) {
    float lo = b[0], hi = b[0];
    double d = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        d = fmax(d, fabs((double)a[i] - b[i]));
        lo = fminf(lo, b[i]);
        hi = fmaxf(hi, b[i]);
    }
    return d / fmax(hi - lo, 1e-6);
}

static double g_worst; /* largest relative difference seen, for the report */

/* n_prompt positions of prefill, then n_steps greedy decode steps, on a Vulkan and a CPU
 * context; logits within tol of their range everywhere and the same greedy tokens (a step
 * whose CPU top-2 gap is below the difference seen counts as a tie and follows the CPU). */
static bool compare(ob_model *m, int dev, int64_t n_prompt, int n_steps, double tol,
                    const char *what) {
    ob_status st;
    ob_err err = {{0}};
    ob_context *g = ctx_new(m, OB_DEVICE_CUDA, dev, &st, &err);
    if (!g) {
        fprintf(stderr, "  %s: %s\n", what, err.msg);
        return false;
    }
    ob_context *c = ctx_new(m, OB_DEVICE_CPU, -1, &st, &err);
    ob_model_info info;
    ob_model_get_info(m, &info);
    const int64_t nv = info.n_vocab;
    int32_t prompt[32];
    for (int64_t i = 0; i < n_prompt; i++)
        prompt[i] = (int32_t)(1 + (i * 37 + 11) % (nv - 1));
    bool ok = c && ob_eval(g, prompt, n_prompt, true, &err) == OB_OK &&
              ob_eval(c, prompt, n_prompt, true, &err) == OB_OK;
    if (!ok) fprintf(stderr, "  %s: prefill: %s\n", what, err.msg);
    for (int64_t t = 0; ok && t < n_prompt; t++) {
        const double d = rel_diff(ob_logits(g, t), ob_logits(c, t), nv);
        g_worst = fmax(g_worst, d);
        if (!(d <= tol)) {
            fprintf(stderr,
                    "  %s: prompt position %lld: logits differ by %.3g of their range "
                    "(tolerance %.3g)\n",
                    what, (long long)t, d, tol);
            ok = false;
        }
    }
    float gap;
    int32_t next = ok ? argmax(ob_logits(c, -1), nv, &gap) : 0;
    for (int step = 0; ok && step < n_steps; step++) {
        if (ob_eval(g, &next, 1, false, &err) || ob_eval(c, &next, 1, false, &err)) {
            fprintf(stderr, "  %s: decode step %d: %s\n", what, step, err.msg);
            ok = false;
            break;
        }
        const double d = rel_diff(ob_logits(g, -1), ob_logits(c, -1), nv);
        g_worst = fmax(g_worst, d);
        float ggap;
        const int32_t a = argmax(ob_logits(g, -1), nv, &ggap),
                      b = argmax(ob_logits(c, -1), nv, &gap);
        if (!(d <= tol) || (a != b && gap > 2 * d * 1.0)) {
            fprintf(stderr,
                    "  %s: decode step %d: logits differ by %.3g of their range, "
                    "greedy %d vs CPU %d (CPU top-2 gap %g)\n",
                    what, step, d, a, b, gap);
            ok = false;
        }
        next = b;
    }
    ob_context_free(g);
    ob_context_free(c);
    return ok;
}

TEST(stories260k_matches_cpu) {
    NEED_CUDA(dev);
    ob_model *m = load_stories();
    if (!m) SKIP("models/stories260K.gguf not in the shared folder");
    CHECK(compare(m, dev, 20, 12, 1e-3, "stories260K F32"));
    ob_model_free(m);
}

/* Tolerances as for the Vulkan backend: 1e-3 of the logits' range for F32/F16/BF16 weights
 * (the CPU rounds activations to F16 for F16 weights and attention weights to F16
 * everywhere; the device does not), 3e-2 for quantized ones (the CPU's Q8 activations). Prompts
 * of 13 tokens take the matrix-matrix path (more than 8 rows), decode the matrix-vector one. */
static void family(const char *arch, const char *type, const char *extra) {
    NEED_CUDA(dev);
    ob_model *m = load_synth(arch, type, extra);
    CHECK_MSG(m, "outboard synth --arch %s --type %s %s", arch, type, extra);
    char what[96];
    snprintf(what, sizeof what, "synth %s %s %s", arch, type, extra);
    const bool flt = type[0] == 'f' || type[0] == 'b';
    CHECK(compare(m, dev, 13, 6, flt ? 1e-3 : 3e-2, what));
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
    const char *path = getenv("OB_DEFAULT_MODEL");
    ob_model *m = NULL;
    ob_err err = {{0}};
    if (!path || access(path, R_OK) || ob_model_load(path, NULL, &m, &err))
        SKIP("the default model is not there (scripts/fetch-default-model.sh)");
    ob_status st;
    ob_context *g = ctx_new(m, OB_DEVICE_CUDA, dev, &st, &err);
    CHECK_MSG(g, "%s", err.msg);
    ob_context *c = ctx_new(m, OB_DEVICE_CPU, -1, &st, &err);
    ob_model_info info;
    ob_model_get_info(m, &info);
    const char *text = "One, two, three, four,"; /* a clear continuation: gaps of 1.6..2.3 */
    int32_t *prompt = NULL;
    size_t n = 0;
    CHECK(ob_tokenize(m, text, strlen(text), true, false, &prompt, &n, &err) == OB_OK);
    const bool ran = ob_eval(g, prompt, (int64_t)n, false, &err) == OB_OK &&
                     ob_eval(c, prompt, (int64_t)n, false, &err) == OB_OK;
    ob_tokens_free(prompt);
    CHECK_MSG(ran, "%s", err.msg);
    for (int step = 0; step < 3; step++) {
        float gap, ggap;
        const float *lg = ob_logits(g, -1), *lc = ob_logits(c, -1);
        const int32_t a = argmax(lg, info.n_vocab, &ggap), b = argmax(lc, info.n_vocab, &gap);
        int64_t second = b == 0 ? 1 : 0;
        for (int64_t i = 0; i < info.n_vocab; i++)
            if (i != b && lc[i] > lc[second]) second = i;
        const double moved = fabs((double)lg[b] - lc[b]) + fabs((double)lg[second] - lc[second]);
        const double d = rel_diff(lg, lc, info.n_vocab);
        fprintf(stderr, "default model step %d: token %d, CPU top-2 gap %.3f, moved %.3f, "
                "logits within %.3g of their range\n", step, b, gap, moved, d);
        CHECK_MSG(d <= 5e-2, "step %d: logits differ by %.3g of their range", step, d);
        CHECK_MSG(a == b && gap > moved, "step %d: device %d, CPU %d (CPU gap %g, the two "
                  "logits moved by %g)", step, a, b, gap, moved);
        CHECK(ob_eval(g, &b, 1, false, &err) == OB_OK && ob_eval(c, &b, 1, false, &err) == OB_OK);
    }
    ob_context_free(g);
    ob_context_free(c);
    ob_model_free(m);
}

/* Two sequences in one batch (a shared prefix forked, then both decoding side by side, with
 * the prefix cache of the KV pool): every entry's logits as the CPU's. */
static bool two_sequences(ob_model *m, int dev, ob_device kind, float *out, int64_t nv) {
    ob_context_params p;
    ob_context_params_init(&p);
    p.n_ctx = 64;
    p.n_threads = 1;
    p.n_seq_max = 2;
    p.kv_size = 4 * 32;
    p.device = kind;
    p.device_index = kind == OB_DEVICE_CUDA ? dev : -1;
    ob_context *c = NULL;
    ob_batch *b = NULL;
    ob_err err = {{0}};
    bool ok = !ob_context_new(m, &p, &c, &err) && !ob_batch_new(16, &b, &err);
    for (int32_t i = 0; ok && i < 9; i++)
        ok = !ob_batch_add(b, 1 + i * 5, i, 0, false, &err);
    ok = ok && !ob_decode(c, b, &err) && !ob_seq_fork(c, 0, 1, &err);
    for (int step = 0; ok && step < 3; step++) {
        ob_batch_clear(b);
        ok = !ob_batch_add(b, 7 + step, 9 + step, 0, true, &err) &&
             !ob_batch_add(b, 40 + step, 9 + step, 1, true, &err) && !ob_decode(c, b, &err);
        for (int e = 0; ok && e < 2; e++)
            memcpy(out + (step * 2 + e) * nv, ob_batch_logits(c, e), (size_t)nv * sizeof(float));
    }
    if (!ok) fprintf(stderr, "  two sequences on %s: %s\n", ob_context_device(c), err.msg);
    ob_batch_free(b);
    ob_context_free(c);
    return ok;
}

TEST(two_sequences_in_one_batch) {
    NEED_CUDA(dev);
    ob_model *m = load_synth("llama", "q8_0", "");
    CHECK(m);
    ob_model_info info;
    ob_model_get_info(m, &info);
    const int64_t nv = info.n_vocab;
    float *a = calloc((size_t)(6 * nv), sizeof(float)),
          *b = calloc((size_t)(6 * nv), sizeof(float));
    CHECK(two_sequences(m, dev, OB_DEVICE_CUDA, a, nv) &&
          two_sequences(m, dev, OB_DEVICE_CPU, b, nv));
    for (int r = 0; r < 6; r++) {
        const double d = rel_diff(a + r * nv, b + r * nv, nv);
        CHECK_MSG(d <= 3e-2, "entry %d: logits differ by %.3g of their range", r, d);
    }
    free(a);
    free(b);
    ob_model_free(m);
}

/* Layers split: the first on the CPU, the rest on the device, only the hidden state
 * crossing; logits as a CPU context's. */
TEST(split_between_cpu_and_device) {
    NEED_CUDA(dev);
    ob_model *m = load_synth("qwen3", "q8_0", "");
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
    c = ctx_new(m, OB_DEVICE_CPU, -1, &st, &err);
    CHECK(c);
    const int32_t prompt[9] = {1, 5, 9, 13, 17, 21, 25, 29, 33};
    CHECK(ob_eval(g, prompt, 9, true, &err) == OB_OK && ob_eval(c, prompt, 9, true, &err) == OB_OK);
    for (int64_t t = 0; t < 9; t++) {
        const double d = rel_diff(ob_logits(g, t), ob_logits(c, t), info.n_vocab);
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

/* A model larger than the device's free memory is refused before anything is uploaded, with
 * both figures in the message. */
TEST(too_large_for_the_device) {
    NEED_CUDA(dev);
    ob_model *m = load_stories();
    if (!m) SKIP("models/stories260K.gguf not in the shared folder");
    ob_status st;
    ob_err err = {{0}};
    cuda_fault_set(3);
    ob_context *g = ctx_new(m, OB_DEVICE_CUDA, dev, &st, &err);
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
    ob_model *m = load_stories();
    if (!m) SKIP("models/stories260K.gguf not in the shared folder");
    ob_status st;
    ob_err err = {{0}};
    cuda_fault_set(1);
    ob_context *g = ctx_new(m, OB_DEVICE_CUDA, dev, &st, &err);
    cuda_fault_set(0);
    CHECK(g == NULL);
    CHECK_STATUS(st, OB_ERR_NOMEM, &err, "out of device memory");
    ob_context *c = ctx_new(m, OB_DEVICE_CPU, -1, &st, &err);
    const int32_t tok[3] = {1, 403, 407};
    CHECK(c && ob_eval(c, tok, 3, false, &err) == OB_OK);
    ob_context_free(c);
    ob_model_free(m);
}

/* A kernel failing between two steps: that step and every later one fail naming the CUDA
 * error, the sequence is as it was, and the CPU keeps working. */
TEST(kernel_failure_is_reported) {
    NEED_CUDA(dev);
    ob_model *m = load_stories();
    if (!m) SKIP("models/stories260K.gguf not in the shared folder");
    ob_status st;
    ob_err err = {{0}};
    ob_context *g = ctx_new(m, OB_DEVICE_CUDA, dev, &st, &err);
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
    ob_context *c = ctx_new(m, OB_DEVICE_CPU, -1, &st, &err);
    CHECK(c && ob_eval(c, tok, 3, false, &err) == OB_OK);
    ob_context_free(c);
    ob_model_free(m);
}

/* Mixture-of-experts and recurrent (DeltaNet) models are refused when the backend is made,
 * naming the kind of layer, and run on the CPU. */
TEST(moe_and_recurrent_refused) {
    NEED_CUDA(dev);
    const char *arch[2] = {"qwen3moe", "qwen35"}, *kind[2] = {"mixture-of-experts", "recurrent"};
    for (int i = 0; i < 2; i++) {
        ob_model *m = load_synth(arch[i], "q8_0", "");
        CHECK_MSG(m, "outboard synth --arch %s", arch[i]);
        ob_status st;
        ob_err err = {{0}};
        ob_context *g = ctx_new(m, OB_DEVICE_CUDA, dev, &st, &err);
        CHECK(g == NULL);
        CHECK_STATUS(st, OB_ERR_UNSUPPORTED, &err, kind[i]);
        ob_context *c = ctx_new(m, OB_DEVICE_CPU, -1, &st, &err);
        const int32_t tok[3] = {1, 5, 9};
        CHECK(c && ob_eval(c, tok, 3, false, &err) == OB_OK);
        ob_context_free(c);
        ob_model_free(m);
    }
}

TEST(report) {
    NEED_CUDA(dev);
    (void)dev;
    fprintf(stderr, "largest logits difference: %.3g of the range\n", g_worst);
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
    RUN(too_large_for_the_device);
    RUN(out_of_memory_is_reported);
    RUN(kernel_failure_is_reported);
    RUN(moe_and_recurrent_refused);
    RUN(report);
    if (tmp_dir[0]) rmdir(tmp_dir);
    return t_summary();
}
