/*
 * One speculative step (src/spec/spec_step.c) on a model with recurrent layers: a synthetic
 * qwen35 file (stories260K's vocabulary) drafted for by the same weights in Q4_0, which agree
 * with it on part of the tokens, so passes accept whole drafts, part of one, or nothing. A
 * rejected draft takes the DeltaNet state back to the checkpoint of the pass and evaluates the
 * kept positions again; a wrong or stale state changes the next tokens at once. Checked
 * against plain one-token decoding on a context of its own:
 *  - greedy and seeded (temperature 1) output token for token, with drafts accepted and
 *    rejected, the first token of a draft among them;
 *  - every other step cancelled mid-verification by the abort callback first: the cache, the
 *    state, the history and the sampler stay as they were, and the output is still plain
 *    decoding's;
 *  - a context that ends inside a draft: the steps stop at the limit with plain's tokens.
 */
#include "spec/spec.h"

#include "test.h"

#include <stdlib.h>
#include <unistd.h>

#define CTX 160

static ob_model *target, *draft;
static int cancel_faults; /* cancelled steps that changed something */

static ob_model *synth(const char *dir, const char *type) {
    const char *build = getenv("OB_BUILD"), *vocab = t_shared_path("models/stories260K.gguf");
    if (!vocab) return NULL;
    char path[128], cmd[4400];
    snprintf(path, sizeof path, "%s/qwen35-%s.gguf", dir, type);
    snprintf(cmd, sizeof cmd, "%s/outboard synth --arch qwen35 --shape tiny --type %s --seed 7 "
             "--vocab %s -o %s >/dev/null 2>&1", build ? build : "build", type, vocab, path);
    ob_model *m = NULL;
    if (system(cmd) == 0 && ob_model_load(path, NULL, &m, NULL)) m = NULL;
    unlink(path);
    return m;
}

static ob_context *context(ob_model *m, int64_t n_ctx) {
    ob_context_params p;
    ob_context_params_init(&p);
    p.n_ctx = n_ctx;
    p.n_threads = 1;
    ob_context *c = NULL;
    return ob_context_new(m, &p, &c, NULL) ? NULL : c;
}

static ob_sampler *sampler(float temp, uint64_t seed) {
    ob_sampler_params p;
    ob_sampler_params_init(&p);
    p.temp = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = seed;
    ob_sampler *s = NULL;
    ob_model_info info;
    ob_model_get_info(target, &info);
    return ob_sampler_new(&p, info.n_vocab, &s, NULL) ? NULL : s;
}

typedef struct sink {
    int32_t got[512];
    int n, limit;
} sink;

static bool take(void *user, int32_t tok) {
    sink *k = user;
    k->got[k->n++] = tok;
    return k->n < k->limit;
}

static bool always_abort(void *user) {
    (void)user;
    return true;
}

static const int32_t PROMPT[] = {1, 403, 407, 261, 378, 285, 265, 330, 412, 307, 265, 403};
#define NP ((int64_t)(sizeof PROMPT / sizeof PROMPT[0]))

/* Plain decoding of up to n tokens (fewer at the context's end). */
static int plain(float temp, uint64_t seed, int64_t n_ctx, int n, int32_t *out) {
    ob_context *c = context(target, n_ctx);
    ob_sampler *s = sampler(temp, seed);
    int got = 0;
    if (c && s && !ob_eval(c, PROMPT, NP, false, NULL)) {
        while (got < n) {
            out[got] = ob_sampler_sample(s, ob_logits(c, -1));
            if (++got < n && ob_eval(c, &out[got - 1], 1, false, NULL)) break;
        }
    }
    ob_sampler_free(s);
    ob_context_free(c);
    return got;
}

/* The same with spec_step drafting from the Q4_0 copy; every other step first cancelled
 * when cancel is set. */
static int speculative(float temp, uint64_t seed, int64_t n_ctx, int n, bool cancel,
                       int32_t *out, spec_seq *ss) {
    ob_context *c = context(target, n_ctx);
    ob_sampler *s = sampler(temp, seed);
    spec_drafter *d = NULL;
    spec_params p = {SPEC_MODE_DRAFT, 6};
    static int32_t hist[512 + SPEC_MAX_DRAFT + 2];
    memcpy(hist, PROMPT, sizeof PROMPT);
    int64_t nh = NP;
    sink k = {.limit = n};
    if (c && s && !spec_drafter_new(target, draft, 1, n_ctx, 1, &d, NULL) &&
        !ob_eval(c, PROMPT, NP, false, NULL)) {
        spec_seq_init(ss, &p, c);
        spec_seq_set_drafter(ss, d, 0);
        hist[nh++] = ob_sampler_sample(s, ob_logits(c, -1));
        take(&k, hist[nh - 1]);
        bool stopped = k.n >= n;
        while (!stopped) {
            if (cancel) {
                ob_context_set_abort(c, always_abort, NULL);
                const int64_t past = ob_seq_n_past(c, 0), nh0 = nh;
                const int kn = k.n;
                const ob_status st = spec_step(c, 0, ss, s, hist, &nh, take, &k, &stopped, NULL);
                cancel_faults += st != OB_ERR_CANCELLED || stopped || nh != nh0 || k.n != kn ||
                                 ob_seq_n_past(c, 0) != past;
                ob_context_set_abort(c, NULL, NULL);
            }
            if (spec_step(c, 0, ss, s, hist, &nh, take, &k, &stopped, NULL)) break;
        }
    }
    spec_drafter_free(d);
    ob_sampler_free(s);
    ob_context_free(c);
    memcpy(out, k.got, (size_t)k.n * sizeof *out);
    return k.n;
}

TEST(greedy_and_seeded_output_equal_plain) {
    for (int t = 0; t < 2; t++) {
        const float temp = t ? 1.0f : 0.0f;
        int32_t want[60], got[60];
        spec_seq ss;
        CHECK_EQ_INT(plain(temp, 9, CTX, 60, want), 60);
        CHECK_EQ_INT(speculative(temp, 9, CTX, 60, false, got, &ss), 60);
        for (int j = 0; j < 60; j++) CHECK_MSG(got[j] == want[j], "temp %g token %d", temp, j);
        CHECK(ss.n_drafted > 0);
        if (t == 0) CHECK(ss.n_accepted > 0 && ss.n_accepted < ss.n_drafted);
    }
}

TEST(cancelled_verification_changes_nothing) {
    int32_t want[40], got[40];
    spec_seq ss;
    CHECK_EQ_INT(plain(0.0f, 3, CTX, 40, want), 40);
    CHECK_EQ_INT(speculative(0.0f, 3, CTX, 40, true, got, &ss), 40);
    CHECK_EQ_INT(cancel_faults, 0);
    for (int j = 0; j < 40; j++) CHECK_MSG(got[j] == want[j], "token %d", j);
    CHECK(ss.n_accepted > 0);
}

TEST(context_limit_inside_a_draft) {
    int32_t want[64], got[64];
    spec_seq ss;
    const int n = plain(0.0f, 5, 30, 64, want); /* stops at the end of the context */
    CHECK(n > 10 && n < 64);
    CHECK_EQ_INT(speculative(0.0f, 5, 30, 64, false, got, &ss), n);
    for (int j = 0; j < n; j++) CHECK_MSG(got[j] == want[j], "token %d", j);
}

int main(void) {
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/ob_spec_rs_test_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    target = synth(dir, "f32");
    draft = synth(dir, "q4_0");
    rmdir(dir);
    if (!target || !draft) {
        fprintf(stderr, "skip: no synthetic models (stories260K or build/outboard missing)\n");
        ob_model_free(target);
        ob_model_free(draft);
        return 0;
    }
    RUN(greedy_and_seeded_output_equal_plain);
    RUN(cancelled_verification_changes_nothing);
    RUN(context_limit_inside_a_draft);
    ob_model_free(target);
    ob_model_free(draft);
    return t_summary();
}
