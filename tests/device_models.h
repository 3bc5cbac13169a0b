/*
 * What the whole-model tests of the device backends (tests/vulkan, tests/cuda) share: tiny
 * synthetic models written by `outboard synth` into one temporary folder per run,
 * stories260K, contexts, the comparisons of logits rows, and a device context against a CPU
 * one over a prefill and greedy decode steps.
 */
#ifndef OB_TESTS_DEVICE_MODELS_H
#define OB_TESTS_DEVICE_MODELS_H

#include "outboard.h"
#include "test.h"

#include <math.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dm_tmp_dir[256];

/* A tiny synthetic model of arch in type, with synth's extra flags ("" for none); NULL when it
 * cannot be written or loaded (the reason on stderr). */
static inline ob_model *dm_load_synth(const char *arch, const char *type, const char *extra) {
    if (!dm_tmp_dir[0]) {
        snprintf(dm_tmp_dir, sizeof dm_tmp_dir, "/tmp/ob_device_model_XXXXXX");
        if (!mkdtemp(dm_tmp_dir)) return NULL;
    }
    const char *build = getenv("OB_BUILD");
    char path[512], cmd[1400];
    snprintf(path, sizeof path, "%s/%s-%s%s.gguf", dm_tmp_dir, arch, type, extra[0] ? "-x" : "");
    snprintf(cmd, sizeof cmd,
             "%s/outboard synth --arch %s --shape tiny --type %s %s -o %s >/dev/null 2>&1",
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

/* Removes the folder of dm_load_synth (at the end of main). */
static inline void dm_models_done(void) {
    if (dm_tmp_dir[0]) rmdir(dm_tmp_dir);
}

/* The largest of x (n), and in *gap (may be NULL) how far it is above the second. */
static inline int32_t dm_argmax(const float *x, int64_t n, float *gap) {
    int64_t best = 0, second = -1;
    for (int64_t i = 1; i < n; i++) {
        if (x[i] > x[best])
            second = best, best = i;
        else if (second < 0 || x[i] > x[second])
            second = i;
    }
    if (gap) *gap = second >= 0 ? x[best] - x[second] : INFINITY;
    return (int32_t)best;
}

/* Largest |a - b| over n, relative to the range of b. */
static inline double dm_rel_diff(const float *a, const float *b, int64_t n) {
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

/* stories260K from the shared folder, or NULL. */
static inline ob_model *dm_load_stories(void) {
    const char *path = t_shared_path("models/stories260K.gguf");
    ob_model *m = NULL;
    ob_err err;
    if (!path || ob_model_load(path, NULL, &m, &err)) return NULL;
    return m;
}

/* A context of 64 positions and one thread on device dev (index: which one of that kind). */
static inline ob_context *dm_ctx_new(ob_model *m, ob_device dev, int index, ob_status *st,
                                     ob_err *err) {
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

static double dm_worst; /* largest relative difference seen, for the report */

/* n_prompt positions of prefill, then n_steps greedy decode steps, on a context of device
 * `kind` (index dev) and a CPU context; logits within tol of their range everywhere and the same greedy tokens (a step
 * whose CPU top-2 gap is below the difference seen counts as a tie and follows the CPU). */
static inline bool dm_compare(ob_model *m, ob_device kind, int dev, int64_t n_prompt,
                              int n_steps, double tol, const char *what) {
    ob_status st;
    ob_err err = {{0}};
    ob_context *g = dm_ctx_new(m, kind, dev, &st, &err);
    if (!g) {
        fprintf(stderr, "  %s: %s\n", what, err.msg);
        return false;
    }
    ob_context *c = dm_ctx_new(m, OB_DEVICE_CPU, -1, &st, &err);
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
        const double d = dm_rel_diff(ob_logits(g, t), ob_logits(c, t), nv);
        dm_worst = fmax(dm_worst, d);
        if (!(d <= tol)) {
            fprintf(stderr,
                    "  %s: prompt position %lld: logits differ by %.3g of their range "
                    "(tolerance %.3g)\n",
                    what, (long long)t, d, tol);
            ok = false;
        }
    }
    float gap;
    int32_t next = ok ? dm_argmax(ob_logits(c, -1), nv, &gap) : 0;
    for (int step = 0; ok && step < n_steps; step++) {
        if (ob_eval(g, &next, 1, false, &err) || ob_eval(c, &next, 1, false, &err)) {
            fprintf(stderr, "  %s: decode step %d: %s\n", what, step, err.msg);
            ok = false;
            break;
        }
        const double d = dm_rel_diff(ob_logits(g, -1), ob_logits(c, -1), nv);
        dm_worst = fmax(dm_worst, d);
        float ggap;
        const int32_t a = dm_argmax(ob_logits(g, -1), nv, &ggap),
                      b = dm_argmax(ob_logits(c, -1), nv, &gap);
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

/* The default model (OB_DEFAULT_MODEL) on device `kind` against the CPU: greedy decoding picks
 * the CPU's token at every step, with the CPU's top-2 gap above how far the device moved
 * those two logits, and logits within 5e-2 of their range. Skips without the model. */
static inline void dm_default_model_greedy(ob_device kind, int dev) {
    const char *path = getenv("OB_DEFAULT_MODEL");
    ob_model *m = NULL;
    ob_err err = {{0}};
    if (!path || access(path, R_OK) || ob_model_load(path, NULL, &m, &err))
        SKIP("the default model is not there (scripts/fetch-default-model.sh)");
    ob_status st;
    ob_context *g = dm_ctx_new(m, kind, dev, &st, &err);
    CHECK_MSG(g, "%s", err.msg);
    ob_context *c = dm_ctx_new(m, OB_DEVICE_CPU, -1, &st, &err);
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
        const int32_t a = dm_argmax(lg, info.n_vocab, &ggap), b = dm_argmax(lc, info.n_vocab, &gap);
        int64_t second = b == 0 ? 1 : 0;
        for (int64_t i = 0; i < info.n_vocab; i++)
            if (i != b && lc[i] > lc[second]) second = i;
        const double moved = fabs((double)lg[b] - lc[b]) + fabs((double)lg[second] - lc[second]);
        const double d = dm_rel_diff(lg, lc, info.n_vocab);
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
static inline bool dm_two_sequences(ob_model *m, int dev, ob_device kind, float *out, int64_t nv) {
    ob_context_params p;
    ob_context_params_init(&p);
    p.n_ctx = 64;
    p.n_threads = 1;
    p.n_seq_max = 2;
    p.kv_size = 4 * 32;
    p.device = kind;
    p.device_index = kind == OB_DEVICE_CPU ? -1 : dev;
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

/* dm_two_sequences on device `kind` against the CPU: every entry within 3e-2 of the range. */
static inline void dm_two_sequences_match(ob_device kind, int dev) {
    ob_model *m = dm_load_synth("llama", "q8_0", "");
    CHECK(m);
    ob_model_info info;
    ob_model_get_info(m, &info);
    const int64_t nv = info.n_vocab;
    float *a = calloc((size_t)(6 * nv), sizeof(float)),
          *b = calloc((size_t)(6 * nv), sizeof(float));
    CHECK(dm_two_sequences(m, dev, kind, a, nv) &&
          dm_two_sequences(m, dev, OB_DEVICE_CPU, b, nv));
    for (int r = 0; r < 6; r++) {
        const double d = dm_rel_diff(a + r * nv, b + r * nv, nv);
        CHECK_MSG(d <= 3e-2, "entry %d: logits differ by %.3g of their range", r, d);
    }
    free(a);
    free(b);
    ob_model_free(m);
}

#endif
