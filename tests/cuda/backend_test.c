/*
 * The CUDA backend behind the public API (ob_context_params.device, src/model/backend_cuda.c).
 * Anywhere: asking for CUDA without a device fails with "no CUDA device", and auto falls back
 * to the CPU and gives the CPU's logits. With a GPU: the same model (stories260K, F32) through
 * a CPU and a CUDA context, prompt logits of every token (20 tokens: the GemmEx path) within
 * 2% of the logit range, then greedy decode steps whose logits agree within 0.2% and whose
 * argmax is the same token.
 */
#include "outboard.h"

#include "test.h"

#include <math.h>

const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "protect_shadow_gap=0"; } /* see device_test.c */

static ob_model *load(void) {
    const char *path = t_shared_path("models/stories260K.gguf");
    ob_model *m = NULL;
    ob_err err;
    if (!path || ob_model_load(path, NULL, &m, &err)) return NULL;
    return m;
}

static ob_context *open_ctx(ob_model *m, ob_device dev, ob_status *st, ob_err *err) {
    ob_context_params p;
    ob_context_params_init(&p);
    p.n_ctx = 64;
    p.n_threads = 1;
    p.device = dev;
    ob_context *c = NULL;
    *st = ob_context_new(m, &p, &c, err);
    return c;
}

static const int32_t PROMPT[20] = {1, 403, 407, 261, 378, 363, 270, 309, 284, 268,
                                   292, 344, 295, 261, 313, 270, 400, 271, 289, 262};

TEST(explicit_cuda_without_device_fails_cleanly) {
    ob_model *m = load();
    if (!m) SKIP("models/stories260K.gguf not in the shared folder");
    ob_status st;
    ob_err err = {{0}};
    ob_context *c = open_ctx(m, OB_DEVICE_CUDA, &st, &err);
    if (st == OB_OK) {
        ob_context_free(c);
        ob_model_free(m);
        SKIP("a GPU is present; the no-device path is not reachable");
    }
    CHECK_STATUS(st, OB_ERR_UNSUPPORTED, &err, "no CUDA device");
    CHECK(c == NULL);
    ob_model_free(m);
}

/* auto on a machine without a GPU is the CPU: threads reported, logits equal to a CPU context's. */
TEST(auto_falls_back_to_cpu) {
    ob_model *m = load();
    if (!m) SKIP("models/stories260K.gguf not in the shared folder");
    ob_status st;
    ob_err err = {{0}};
    ob_context *a = open_ctx(m, OB_DEVICE_AUTO, &st, &err);
    CHECK_MSG(st == OB_OK, "%s", err.msg);
    if (ob_context_n_threads(a) == 0) { /* a GPU was taken: compared in the next test */
        ob_context_free(a);
        ob_model_free(m);
        SKIP("a GPU is present; auto chose it");
    }
    ob_context *c = open_ctx(m, OB_DEVICE_CPU, &st, &err);
    CHECK(st == OB_OK);
    CHECK(ob_eval(a, PROMPT, 5, false, &err) == OB_OK && ob_eval(c, PROMPT, 5, false, &err) == OB_OK);
    ob_model_info info;
    ob_model_get_info(m, &info);
    CHECK(memcmp(ob_logits(a, -1), ob_logits(c, -1), (size_t)info.n_vocab * 4) == 0);
    ob_context_free(a);
    ob_context_free(c);
    ob_model_free(m);
}

/* Largest |a - b| over n, and the largest |b| (the scale of the logits). */
static float max_diff(const float *a, const float *b, int64_t n, float *scale) {
    float d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(a[i])) return INFINITY;
        d = fmaxf(d, fabsf(a[i] - b[i]));
        s = fmaxf(s, fabsf(b[i]));
    }
    *scale = s;
    return d;
}

static int32_t argmax(const float *x, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

TEST(cuda_matches_cpu) {
    ob_model *m = load();
    if (!m) SKIP("models/stories260K.gguf not in the shared folder");
    ob_status st;
    ob_err err = {{0}};
    ob_context *g = open_ctx(m, OB_DEVICE_CUDA, &st, &err);
    if (st) {
        ob_model_free(m);
        SKIP("skipped: no GPU (%s)", err.msg);
    }
    ob_context *c = open_ctx(m, OB_DEVICE_CPU, &st, &err);
    CHECK(st == OB_OK);
    ob_model_info info;
    ob_model_get_info(m, &info);
    const int64_t nv = info.n_vocab;
    CHECK_MSG(ob_eval(g, PROMPT, 20, true, &err) == OB_OK, "%s", err.msg);
    CHECK(ob_eval(c, PROMPT, 20, true, &err) == OB_OK);
    for (int64_t t = 0; t < 20; t++) {
        float scale, d = max_diff(ob_logits(g, t), ob_logits(c, t), nv, &scale);
        CHECK_MSG(d <= 0.02f * scale, "prompt token %lld: logits differ by %g (scale %g)",
                  (long long)t, d, scale);
    }
    int32_t next = argmax(ob_logits(c, -1), nv);
    for (int step = 0; step < 8; step++) {
        CHECK_MSG(ob_eval(g, &next, 1, false, &err) == OB_OK, "%s", err.msg);
        CHECK(ob_eval(c, &next, 1, false, &err) == OB_OK);
        float scale, d = max_diff(ob_logits(g, -1), ob_logits(c, -1), nv, &scale);
        CHECK_MSG(d <= 0.002f * scale, "decode step %d: logits differ by %g (scale %g)", step, d,
                  scale);
        int32_t a = argmax(ob_logits(g, -1), nv), b = argmax(ob_logits(c, -1), nv);
        CHECK_EQ_INT(a, b);
        next = b;
    }
    ob_context_free(g);
    ob_context_free(c);
    ob_model_free(m);
}

int main(void) {
    RUN(explicit_cuda_without_device_fails_cleanly);
    RUN(auto_falls_back_to_cpu);
    RUN(cuda_matches_cpu);
    return t_summary();
}
