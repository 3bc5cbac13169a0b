/*
 * The MTP drafter (src/spec/spec_mtp.c) on a synthetic qwen35 file with a multi-token-
 * prediction block (`outboard synth --nextn 1`): after the context's history changes the way
 * speculative decoding changes it (a prompt, a verification pass whose draft is accepted in
 * part, one rejected from its first token), the block's logits for the pending token equal
 * those of the block evaluated afresh over the whole history with the hidden states of a fresh
 * evaluation of the target (model_mtp_eval, which test_qwen35_mtp.py checks against numpy). So
 * the drafter pairs each token with the right state, keeps the entries of accepted positions,
 * replaces those of rejected ones, and its own further draft entries do not leak into them.
 */
#include "spec/spec_mtp.c"

#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#define CTX 128
#define TOL 1e-4

static ob_model *model;
static char dir[64];

static ob_model *load(void) {
    snprintf(dir, sizeof dir, "/tmp/ob_spec_mtp_test_XXXXXX");
    if (!mkdtemp(dir)) return NULL;
    const char *build = getenv("OB_BUILD");
    char path[128], cmd[512];
    snprintf(path, sizeof path, "%s/nextn.gguf", dir);
    snprintf(cmd, sizeof cmd, "%s/outboard synth --arch qwen35 --shape tiny --type f32 "
             "--nextn 1 --seed 4 -o %s >/dev/null 2>&1", build ? build : "build", path);
    if (system(cmd) != 0) return NULL;
    ob_model *m = NULL;
    ob_err err = {{0}};
    if (ob_model_load(path, NULL, &m, &err)) fprintf(stderr, "load: %s\n", err.msg);
    unlink(path);
    rmdir(dir);
    return m;
}

static ob_context *context(void) {
    ob_context_params p;
    ob_context_params_init(&p);
    p.n_ctx = CTX;
    p.n_threads = 1;
    p.n_seq_max = 2;
    p.kv_size = 2 * CTX;
    ob_context *c = NULL;
    ob_err err = {{0}};
    if (ob_context_new(model, &p, &c, &err)) fprintf(stderr, "context: %s\n", err.msg);
    return c;
}

/* The block's logits for entry n - 1 of hist evaluated afresh: the target over hist[0..n-2],
 * then the block over every entry in one pass. */
static bool reference(const int32_t *hist, int64_t n, float *logits) {
    const int64_t e = model->hp.n_embd;
    ob_context *c = context();
    model_mtp_ctx *x = NULL;
    float *h = calloc((size_t)(n * e), sizeof *h);
    bool ok = c && h;
    if (ok) model_context_keep_hidden(c, true);
    ok = ok && !ob_eval(c, hist, n - 1, false, NULL) &&
         !model_mtp_ctx_new(model, 1, CTX, n, 1, &x, NULL);
    for (int64_t p = 1; ok && p < n; p++)
        memcpy(h + p * e, model_context_hidden(c, 0, p - 1), (size_t)e * sizeof *h);
    ok = ok && !model_mtp_eval(x, 0, 0, hist, h, n, NULL, logits, NULL);
    free(h);
    model_mtp_ctx_free(x);
    ob_context_free(c);
    return ok;
}

static double rel_diff(const float *a, const float *b, int64_t n) {
    float lo = b[0], hi = b[0], worst = 0;
    for (int64_t i = 0; i < n; i++) {
        lo = fminf(lo, b[i]);
        hi = fmaxf(hi, b[i]);
        worst = fmaxf(worst, fabsf(a[i] - b[i]));
    }
    return worst / (hi - lo);
}

/* Drafts 4 tokens after hist, then asks again for 1 (the pending token's entry once more):
 * its logits and the first draft token against the reference. */
static void check_drafter(spec_mtp *d, const int32_t *hist, int64_t n) {
    const int64_t nv = model->hp.n_vocab;
    float *ref = malloc((size_t)nv * sizeof *ref);
    int32_t out[4];
    CHECK(ref && reference(hist, n, ref));
    CHECK(spec_mtp_draft(d, 0, hist, n, 4, out) >= 1); /* fewer after an end token */
    CHECK_EQ_INT(spec_mtp_draft(d, 0, hist, n, 1, out + 1), 1);
    CHECK_EQ_INT(out[0], out[1]);
    CHECK_EQ_INT(out[0], argmax(ref, nv));
    const double diff = rel_diff(d->logits, ref, nv);
    CHECK_MSG(diff < TOL, "position %lld: logits differ by %g of their range", (long long)n - 1,
              diff);
    free(ref);
}

static void decode(ob_context *c, const int32_t *toks, int64_t n, int64_t pos) {
    ob_batch *b = NULL;
    ob_err err = {{0}};
    CHECK(!ob_batch_new(n, &b, &err));
    for (int64_t i = 0; b && i < n; i++) ob_batch_add(b, toks[i], pos + i, 0, true, NULL);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    ob_batch_free(b);
}

TEST(entries_follow_accepted_and_rejected_drafts) {
    ob_context *c = context();
    spec_mtp *d = NULL;
    ob_err err = {{0}};
    CHECK(c);
    CHECK_STATUS(spec_mtp_new(model, c, 1, 1, &d, &err), OB_OK, &err, "");
    if (!c || !d) return;
    int32_t hist[64];
    for (int i = 0; i < 12; i++) hist[i] = 3 + 37 * i % 240;
    CHECK_STATUS(ob_eval(c, hist, 12, false, &err), OB_OK, &err, "");
    hist[12] = 77; /* the pending token sampled from the prompt */
    check_drafter(d, hist, 13);
    /* a verification pass of the pending token and 3 draft tokens; 2 of them accepted */
    const int32_t pass[4] = {77, 5, 6, 7};
    decode(c, pass, 4, 12);
    CHECK_STATUS(ob_seq_truncate(c, 0, 15, &err), OB_OK, &err, "");
    hist[13] = 5, hist[14] = 6, hist[15] = 91; /* 91 drawn in place of the third */
    check_drafter(d, hist, 16);
    /* a pass whose first draft token is rejected */
    const int32_t pass2[3] = {91, 8, 9};
    decode(c, pass2, 3, 15);
    CHECK_STATUS(ob_seq_truncate(c, 0, 16, &err), OB_OK, &err, "");
    hist[16] = 123;
    check_drafter(d, hist, 17);
    /* a pass whose draft is accepted whole */
    const int32_t pass3[3] = {123, 10, 11};
    decode(c, pass3, 3, 16);
    hist[17] = 10, hist[18] = 11, hist[19] = 200;
    check_drafter(d, hist, 20);
    /* the history rewritten behind the entries (a chat that renders its turns anew): they are
     * made again from where the tokens differ, which the last decode covers */
    ob_seq_free(c, 0);
    for (int i = 0; i < 20; i++) hist[i] = 240 - 11 * i;
    CHECK_STATUS(ob_eval(c, hist, 19, false, &err), OB_OK, &err, "");
    check_drafter(d, hist, 20);
    spec_mtp_free(d);
    ob_context_free(c);
}

/* A prompt evaluated in three decodes (the server's chunks), followed after each: the entries
 * are those of one evaluation, the first of each chunk paired with the state kept from the
 * chunk before. */
TEST(prompt_in_chunks) {
    ob_context *c = context();
    spec_mtp *d = NULL;
    ob_err err = {{0}};
    CHECK(c);
    CHECK_STATUS(spec_mtp_new(model, c, 2, 1, &d, &err), OB_OK, &err, "");
    if (!c || !d) return;
    int32_t hist[40];
    for (int i = 0; i < 30; i++) hist[i] = 7 + 29 * i % 230;
    ob_batch *b = NULL;
    CHECK(!ob_batch_new(16, &b, &err));
    for (int64_t at = 0; b && at < 29; at += 10) {
        const int64_t k = 29 - at < 10 ? 29 - at : 10;
        ob_batch_clear(b);
        for (int64_t i = 0; i < k; i++) ob_batch_add(b, hist[at + i], at + i, 1, i == k - 1, NULL);
        CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
        spec_mtp_observe(d, 1, hist, at + k);
    }
    ob_batch_free(b);
    /* sequence 1 of the drafter against the reference, through a copy on sequence 0's terms */
    const int64_t nv = model->hp.n_vocab;
    float *ref = malloc((size_t)nv * sizeof *ref);
    int32_t out[1];
    CHECK(ref && reference(hist, 30, ref));
    CHECK_EQ_INT(spec_mtp_draft(d, 1, hist, 30, 1, out), 1);
    const double diff = ref ? rel_diff(d->logits, ref, nv) : 1.0;
    CHECK_MSG(diff < TOL, "logits differ by %g of their range", diff);
    /* a drafter that did not follow the chunks has no entries before the last one */
    spec_mtp *late = NULL;
    CHECK_STATUS(spec_mtp_new(model, c, 2, 1, &late, &err), OB_OK, &err, "");
    CHECK(late && spec_mtp_draft(late, 1, hist, 30, 1, out) == 1);
    CHECK(late && rel_diff(late->logits, ref, nv) > 100 * TOL);
    spec_mtp_free(late);
    free(ref);
    spec_mtp_free(d);
    ob_context_free(c);
}

/* Without the hidden states it needs (its context has not evaluated the history: another one
 * did) the drafter drafts nothing rather than something from wrong states. */
TEST(no_states_no_draft) {
    ob_context *c = context(), *other = context();
    spec_mtp *d = NULL;
    ob_err err = {{0}};
    CHECK(c && other);
    CHECK_STATUS(spec_mtp_new(model, c, 1, 1, &d, &err), OB_OK, &err, "");
    if (!c || !other || !d) return;
    int32_t hist[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK_STATUS(ob_eval(other, hist, 7, false, &err), OB_OK, &err, "");
    int32_t out[4];
    CHECK_EQ_INT(spec_mtp_draft(d, 0, hist, 8, 4, out), 0);
    CHECK_EQ_INT(spec_mtp_draft(d, 5, hist, 8, 4, out), 0); /* no such sequence */
    spec_mtp_free(d);
    ob_context_free(c);
    ob_context_free(other);
}

int main(void) {
    model = load();
    if (!model) {
        fprintf(stderr, "skip: no synthetic model (build/outboard synth failed)\n");
        return 0;
    }
    RUN(entries_follow_accepted_and_rejected_drafts);
    RUN(prompt_in_chunks);
    RUN(no_states_no_draft);
    ob_model_free(model);
    return t_summary();
}
