/*
 * What the Vulkan whole-model tests share: tiny synthetic models written by `outboard synth`
 * into one temporary folder per run, and the comparisons of logits rows.
 */
#ifndef OB_TESTS_VK_MODELS_H
#define OB_TESTS_VK_MODELS_H

#include "outboard.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char vk_tmp_dir[256];

/* A tiny synthetic model of arch in type, with synth's extra flags ("" for none); NULL when it
 * cannot be written or loaded (the reason on stderr). */
static inline ob_model *vk_load_synth(const char *arch, const char *type, const char *extra) {
    if (!vk_tmp_dir[0]) {
        snprintf(vk_tmp_dir, sizeof vk_tmp_dir, "/tmp/ob_vk_model_XXXXXX");
        if (!mkdtemp(vk_tmp_dir)) return NULL;
    }
    const char *build = getenv("OB_BUILD");
    char path[512], cmd[1400];
    snprintf(path, sizeof path, "%s/%s-%s%s.gguf", vk_tmp_dir, arch, type, extra[0] ? "-x" : "");
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

/* Removes the folder of vk_load_synth (at the end of main). */
static inline void vk_models_done(void) {
    if (vk_tmp_dir[0]) rmdir(vk_tmp_dir);
}

/* The largest of x (n), and in *gap (may be NULL) how far it is above the second. */
static inline int32_t vk_argmax(const float *x, int64_t n, float *gap) {
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
static inline double vk_rel_diff(const float *a, const float *b, int64_t n) {
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

#endif
