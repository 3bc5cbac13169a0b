/*
 * Model loading's progress callback (ob_model_params.progress): it runs through both passes of
 * ob_model_load (reading the weight pages, then binding the weights, where repacking happens),
 * never goes backwards, ends at exactly 1, and a callback that returns false cancels the load
 * from either pass with "loading cancelled" and no model (and, under make check, no leak).
 */
#include "outboard.h"

#include "test.h"

typedef struct seen {
    int calls;
    float first, last, max_step;
    int backwards;
    int above_half; /* reports in (0.5, 1): the binding pass reports too */
    float cancel_at; /* return false at the first report >= this (> 1: never) */
} seen;

static bool on_progress(float p, void *user) {
    seen *s = user;
    if (s->calls == 0) s->first = p;
    else if (p < s->last) s->backwards++;
    else if (p - s->last > s->max_step) s->max_step = p - s->last;
    s->last = p;
    s->calls++;
    if (p > 0.5f && p < 1.0f) s->above_half++;
    return p < s->cancel_at;
}

static ob_status load_with(seen *s, ob_model **m, ob_err *err) {
    const char *path = t_shared_path("models/stories260K.gguf");
    if (!path) return OB_ERR_IO;
    ob_model_params p;
    ob_model_params_init(&p);
    p.progress = on_progress;
    p.progress_user = s;
    return ob_model_load(path, &p, m, err);
}

TEST(progress_runs_through_both_passes_and_ends_at_one) {
    if (!t_shared_path("models/stories260K.gguf")) SKIP("stories260K.gguf not in the shared folder");
    seen s = {.cancel_at = 2.0f};
    ob_model *m = NULL;
    ob_err err = {{0}};
    CHECK_STATUS(load_with(&s, &m, &err), OB_OK, &err, "");
    CHECK(m != NULL);
    CHECK_MSG(s.calls >= 50, "only %d progress reports", s.calls);
    CHECK_MSG(s.backwards == 0, "progress went backwards %d times", s.backwards);
    CHECK_MSG(s.last == 1.0f, "last report %g, expected 1", (double)s.last);
    CHECK_MSG(s.above_half > 0, "no report between 0.5 and 1");
    CHECK_MSG(s.max_step < 0.2f, "progress jumped by %g at once", (double)s.max_step);
    ob_model_free(m);
}

static void cancel_at(float at) {
    seen s = {.cancel_at = at};
    static char sentinel;
    ob_model *m = (ob_model *)(void *)&sentinel; /* ob_model_load must set it to NULL */
    ob_err err = {{0}};
    CHECK_STATUS(load_with(&s, &m, &err), OB_ERR_ARG, &err, "loading cancelled");
    CHECK(m == NULL);
    CHECK(s.last >= at && s.last < 1.0f);
}

TEST(cancel_early) {
    if (!t_shared_path("models/stories260K.gguf")) SKIP("stories260K.gguf not in the shared folder");
    cancel_at(0.2f);
}

TEST(cancel_late) {
    if (!t_shared_path("models/stories260K.gguf")) SKIP("stories260K.gguf not in the shared folder");
    cancel_at(0.7f);
}

int main(void) {
    RUN(progress_runs_through_both_passes_and_ends_at_one);
    RUN(cancel_early);
    RUN(cancel_late);
    return t_summary();
}
