/*
 * The family table's binder and its freeing (src/model/family.c): each allocation of a model
 * load fails in turn, for a family of every row form and layer kind (dense attention, sliding
 * window, DeltaNet, experts separate and merged, a shared expert, 2-D vectors), and the load
 * either succeeds or fails with "out of memory" and no model; under make check (ASan) any
 * field the table frees wrongly or not at all is reported. The tiny synthetic files come
 * from `outboard synth`. Every family's table is checked for the rules the binder relies on.
 */
#include "outboard.h"

#include "core/alloc.h"
#include "model/family.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_dir[256];

/* A tiny synthetic model of arch (extra: more synth options), made once per run; NULL when
 * that fails. */
static const char *synth(const char *arch, const char *extra) {
    static char path[512];
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ob_family_test_XXXXXX");
        if (!mkdtemp(tmp_dir)) return NULL;
    }
    const char *build = getenv("OB_BUILD");
    char cmd[1400];
    snprintf(path, sizeof path, "%s/%s%s.gguf", tmp_dir, arch, extra[0] ? "-extra" : "");
    snprintf(cmd, sizeof cmd, "%s/outboard synth --arch %s --shape tiny --type q8_0 %s -o %s "
             ">/dev/null 2>&1", build ? build : "build", arch, extra, path);
    return system(cmd) == 0 ? path : NULL;
}

/* Fails the n-th allocation of a load of path, for every n up to a whole load's count. */
static void sweep(const char *arch, const char *extra) {
    const char *path = synth(arch, extra);
    if (!path) SKIP("outboard synth --arch %s failed (OB_BUILD unset?)", arch);
    ob_model *m = NULL;
    ob_err err = {{0}};
    const int64_t before = ob_alloc_count();
    CHECK_STATUS(ob_model_load(path, NULL, &m, &err), OB_OK, &err, "");
    const int64_t n_allocs = ob_alloc_count() - before;
    ob_model_free(m);
    int failed = 0;
    for (int64_t n = 0; n < n_allocs; n++) {
        m = NULL;
        err = (ob_err){{0}};
        ob_alloc_fail_after(n);
        ob_status st = ob_model_load(path, NULL, &m, &err);
        ob_alloc_fail_after(-1);
        if (st == OB_OK) {
            /* a tokenizer that could not be read is kept as vocab_err, not fatal */
            CHECK(m != NULL);
            ob_model_free(m);
            continue;
        }
        failed++;
        CHECK_MSG(st == OB_ERR_NOMEM && m == NULL, "%s: allocation %lld: status %s, model %p: %s",
                  arch, (long long)n, ob_status_name(st), (void *)m, err.msg);
        CHECK_MSG(strstr(err.msg, "out of memory") != NULL, "%s: allocation %lld: \"%s\"", arch,
                  (long long)n, err.msg);
    }
    CHECK_MSG(failed > 0, "%s: no failed allocation made the load fail", arch);
}

static const model_family *const FAMILIES[] = {
    &MODEL_FAMILY_LLAMA, &MODEL_FAMILY_QWEN2, &MODEL_FAMILY_QWEN3, &MODEL_FAMILY_GEMMA3,
    &MODEL_FAMILY_QWEN3MOE, &MODEL_FAMILY_QWEN35, &MODEL_FAMILY_QWEN35MOE, &MODEL_FAMILY_QWEN3NEXT,
};

/* What the binder takes for granted: a MoE block's fields are only on MoE layers, expert forms
 * only in the block, fields inside their struct, every row on some layer; and a tensor named
 * once per family (an alternative form is another name for the same field). */
TEST(every_table_keeps_the_binder_rules) {
    for (size_t f = 0; f < sizeof FAMILIES / sizeof FAMILIES[0]; f++) {
        const model_family *fam = FAMILIES[f];
        for (const model_tensor_row *const *g = fam->table; *g; g++) {
            for (const model_tensor_row *r = *g; r->suffix; r++) {
                const bool experts = r->form == MODEL_FORM_EXPERTS ||
                                     r->form == MODEL_FORM_EXPERTS_GATE_UP;
                CHECK_MSG(!r->in_moe || r->on == MODEL_ON_MOE, "%s: %s", fam->name, r->suffix);
                CHECK_MSG(!experts || r->in_moe, "%s: %s", fam->name, r->suffix);
                CHECK_MSG(r->field < (r->in_moe ? sizeof(model_moe_block) : sizeof(model_layer)),
                          "%s: %s", fam->name, r->suffix);
                CHECK_MSG(r->form != MODEL_FORM_VECTOR || !r->in_moe, "%s: %s", fam->name,
                          r->suffix);
                CHECK_MSG(r->on & MODEL_ANY_MIXER && r->on & MODEL_ANY_FFN, "%s: %s: no layer",
                          fam->name, r->suffix);
                /* the rows before this one (a group may be listed twice: compare positions) */
                for (const model_tensor_row *const *g2 = fam->table; g2 <= g; g2++)
                    for (const model_tensor_row *q = *g2; q->suffix && (g2 < g || q < r); q++)
                        CHECK_MSG(strcmp(q->suffix, r->suffix) != 0, "%s: %s listed twice",
                                  fam->name, r->suffix);
            }
        }
    }
}

TEST(gemma3_sliding_window_and_post_norms) { sweep("gemma3", ""); }
TEST(qwen2_biases) { sweep("qwen2", ""); }
TEST(qwen3moe_separate_experts) { sweep("qwen3moe", ""); }
TEST(qwen35moe_deltanet_merged_experts_shared_expert) {
    sweep("qwen35moe", "--merged-experts");
}
TEST(qwen3next_fused_beta_alpha) { sweep("qwen3next", ""); }

int main(void) {
    RUN(every_table_keeps_the_binder_rules);
    RUN(gemma3_sliding_window_and_post_norms);
    RUN(qwen2_biases);
    RUN(qwen3moe_separate_experts);
    RUN(qwen35moe_deltanet_merged_experts_shared_expert);
    RUN(qwen3next_fused_beta_alpha);
    if (tmp_dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    }
    return t_summary();
}
