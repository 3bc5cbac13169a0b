/*
 * One speculative step (src/spec/spec_step.c) on stories260K against plain one-token decoding
 * on the same context:
 *  - greedy output is token for token the plain output, with drafts proposed and accepted;
 *  - at temperature 1 the same seed gives the same tokens (the sampler records only kept
 *    tokens, so its random stream moves as in plain decoding);
 *  - the distribution: over 4000 seeds the first token drawn after a draft follows the
 *    target's softmax, and so does the second given the first draft token was accepted
 *    (chi-square goodness of fit at significance 0.001; the seeds are fixed, so the statistic
 *    is the same number every run and cannot flake, and the same counts against a wrong
 *    distribution exceed the bound, so the test can fail);
 *  - edge cases: a draft whose first token is rejected, a step stopped mid-draft by its
 *    caller (end of generation, a length limit), the context limit, and a step cancelled by
 *    the abort callback mid-verification leaving cache, history and sampler untouched.
 */
#include "spec/spec.h"

#include "test.h"

#include <math.h>

#define CTX 256

typedef struct fixture {
    ob_model *m;
    ob_context *c;
    int64_t n_vocab;
} fixture;

static bool open_fixture(fixture *f, int64_t n_ctx) {
    const char *path = t_shared_path("models/stories260K.gguf");
    if (!path) return false;
    ob_err err = {{0}};
    ob_model_params mp;
    ob_model_params_init(&mp);
    mp.prefault = false;
    if (ob_model_load(path, &mp, &f->m, &err)) return false;
    ob_context_params cp;
    ob_context_params_init(&cp);
    cp.n_ctx = n_ctx;
    cp.n_threads = 1;
    if (ob_context_new(f->m, &cp, &f->c, &err)) return false;
    ob_model_info info;
    ob_model_get_info(f->m, &info);
    f->n_vocab = info.n_vocab;
    return true;
}

static void close_fixture(fixture *f) {
    ob_context_free(f->c);
    ob_model_free(f->m);
}

static size_t tokens(const fixture *f, const char *text, int32_t *out, size_t cap) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (ob_tokenize(f->m, text, strlen(text), true, false, &ids, &n, NULL)) return 0;
    if (n > cap) n = cap;
    memcpy(out, ids, n * sizeof *ids);
    ob_tokens_free(ids);
    return n;
}

static ob_sampler *sampler(const fixture *f, float temp, uint64_t seed) {
    ob_sampler_params p;
    ob_sampler_params_init(&p);
    p.temp = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = seed;
    ob_sampler *s = NULL;
    return ob_sampler_new(&p, f->n_vocab, &s, NULL) ? NULL : s;
}

/* Collects emitted tokens; stops after `limit` of them. */
typedef struct sink {
    int32_t got[512];
    int n, limit;
} sink;

static bool take(void *user, int32_t tok) {
    sink *k = user;
    k->got[k->n++] = tok;
    return k->n < k->limit;
}

/* Plain decoding: n tokens after prompt[0..np), one ob_eval per token. */
static int plain(fixture *f, const int32_t *prompt, size_t np, float temp, uint64_t seed, int n,
                 int32_t *out) {
    ob_sampler *s = sampler(f, temp, seed);
    int got = 0;
    if (s && !ob_context_truncate(f->c, 0, NULL) &&
        !ob_eval(f->c, prompt, (int64_t)np, false, NULL)) {
        while (got < n) {
            out[got] = ob_sampler_sample(s, ob_logits(f->c, -1));
            if (++got < n && ob_eval(f->c, &out[got - 1], 1, false, NULL)) break;
        }
    }
    ob_sampler_free(s);
    return got;
}

/* The same with spec_step in ngram mode; *ss gets the final drafting state. */
static int speculative(fixture *f, const int32_t *prompt, size_t np, float temp, uint64_t seed,
                       int n, int32_t *out, spec_seq *ss) {
    spec_params p = {SPEC_MODE_NGRAM, 8};
    spec_seq_init(ss, &p, f->c);
    ob_sampler *s = sampler(f, temp, seed);
    static int32_t hist[CTX + SPEC_MAX_DRAFT + 2];
    memcpy(hist, prompt, np * sizeof *hist);
    int64_t nh = (int64_t)np;
    sink k = {.limit = n};
    if (s && !ob_context_truncate(f->c, 0, NULL) &&
        !ob_eval(f->c, prompt, (int64_t)np, false, NULL)) {
        hist[nh++] = ob_sampler_sample(s, ob_logits(f->c, -1));
        take(&k, hist[nh - 1]);
        bool stopped = k.n >= n;
        while (!stopped && !spec_step(f->c, 0, ss, s, hist, &nh, take, &k, &stopped, NULL)) {
        }
    }
    ob_sampler_free(s);
    memcpy(out, k.got, (size_t)k.n * sizeof *out);
    return k.n;
}

static const char *PROMPTS[] = {
    "Once upon a time, there was a little girl named Lily. Once upon a time, there was a",
    "The cat sat on the mat. The dog sat on the log. The cat sat on the",
    "Tom had a red ball. He liked to play with the ball. One day, Tom",
};

TEST(greedy_and_seeded_output_equal_plain) {
    fixture f;
    if (!open_fixture(&f, CTX)) SKIP("stories260K.gguf not in the shared folder");
    int64_t drafted = 0, accepted = 0;
    for (size_t i = 0; i < sizeof PROMPTS / sizeof PROMPTS[0]; i++) {
        int32_t prompt[128], a[160], b[160];
        size_t np = tokens(&f, PROMPTS[i], prompt, 128);
        for (int temp10 = 0; temp10 <= 10; temp10 += 10) {
            const float temp = (float)temp10 / 10.0f;
            int na = plain(&f, prompt, np, temp, 7 + i, 150, a);
            spec_seq ss;
            int nb = speculative(&f, prompt, np, temp, 7 + i, 150, b, &ss);
            CHECK_EQ_INT(na, 150);
            CHECK_EQ_INT(nb, 150);
            for (int j = 0; j < na; j++)
                CHECK_MSG(a[j] == b[j], "prompt %zu temp %g: token %d: plain %d, speculative %d", i,
                          temp, j, a[j], b[j]);
            drafted += ss.n_drafted;
            accepted += ss.n_accepted;
            CHECK(ss.n_passes < 150); /* some passes produced more than one token */
        }
    }
    CHECK(drafted > 0 && accepted > 0 && accepted < drafted);
    close_fixture(&f);
}

/* Chi-square statistic of counts against probabilities p (n draws), bins with an expected
 * count of at least 5, the rest pooled; *df gets the degrees of freedom. */
static double chi_square(const int *count, const double *p, int64_t nv, int n, int *df) {
    double chi = 0, rest_e = 0, rest_o = 0;
    int bins = 0;
    for (int64_t v = 0; v < nv; v++) {
        const double e = p[v] * n;
        if (e >= 5) {
            chi += (count[v] - e) * (count[v] - e) / e;
            bins++;
        } else {
            rest_e += e;
            rest_o += count[v];
        }
    }
    if (rest_e > 0) {
        chi += (rest_o - rest_e) * (rest_o - rest_e) / (rest_e > 1e-9 ? rest_e : 1e-9);
        bins++;
    }
    *df = bins - 1;
    return chi;
}

/* Upper 0.001 point of the chi-square distribution with df degrees of freedom
 * (Wilson-Hilferty; z = 3.0902 is the normal distribution's upper 0.001 point). */
static double chi_bound(int df) {
    const double k = df, z = 3.0902;
    const double t = 1 - 2 / (9 * k) + z * sqrt(2 / (9 * k));
    return k * t * t * t;
}

static void softmax(const float *logits, int64_t nv, double temp, double *p) {
    double mx = -INFINITY, sum = 0;
    for (int64_t v = 0; v < nv; v++)
        mx = logits[v] > mx ? logits[v] : mx;
    for (int64_t v = 0; v < nv; v++)
        sum += p[v] = exp((logits[v] - mx) / temp);
    for (int64_t v = 0; v < nv; v++)
        p[v] /= sum;
}

TEST(distribution_at_temperature_one_is_the_targets) {
    fixture f;
    if (!open_fixture(&f, CTX)) SKIP("stories260K.gguf not in the shared folder");
    int32_t prompt[128];
    size_t np = tokens(&f, "One day, a girl went to the park. One day, a", prompt, 128);
    const int64_t nv = f.n_vocab;
    /* The draft prompt lookup makes here, and the target distributions of its rows: p1 after
     * the prompt, p2 after the prompt and the first draft token. */
    int32_t draft[SPEC_MAX_DRAFT];
    int d = spec_ngram_draft(prompt, (int64_t)np, 4, draft, NULL);
    CHECK(d >= 2);
    double *p1 = calloc((size_t)nv, sizeof *p1), *p2 = calloc((size_t)nv, sizeof *p2);
    double *wrong = calloc((size_t)nv, sizeof *wrong);
    int *c1 = calloc((size_t)nv, sizeof *c1), *c2 = calloc((size_t)nv, sizeof *c2);
    CHECK(p1 && p2 && wrong && c1 && c2);
    CHECK(!ob_context_truncate(f.c, 0, NULL) && !ob_eval(f.c, prompt, (int64_t)np, false, NULL));
    softmax(ob_logits(f.c, -1), nv, 1.0, p1);
    softmax(ob_logits(f.c, -1), nv, 0.7, wrong);
    CHECK(!ob_eval(f.c, &draft[0], 1, false, NULL));
    softmax(ob_logits(f.c, -1), nv, 1.0, p2);
    fprintf(stderr, "spec_step_test: draft token %d has p = %.3f, the next %d p = %.3f\n", draft[0],
            p1[draft[0]], draft[1], p2[draft[1]]);
    /* A moderate p(draft) exercises both acceptance and the residual draw. */
    CHECK(p1[draft[0]] > 0.05 && p1[draft[0]] < 0.95);
    /* The prompt but its last token is cached; each trial drafts from there afresh. */
    CHECK(!ob_context_truncate(f.c, (int64_t)np - 1, NULL));
    const int N = 4000;
    int n2 = 0;
    spec_params sp = {SPEC_MODE_NGRAM, 4};
    for (int trial = 0; trial < N; trial++) {
        spec_seq ss;
        spec_seq_init(&ss, &sp, f.c);
        ss.k = 4;
        ob_sampler *s = sampler(&f, 1.0f, 1000 + (uint64_t)trial);
        static int32_t hist[CTX + SPEC_MAX_DRAFT + 2];
        memcpy(hist, prompt, np * sizeof *hist);
        int64_t nh = (int64_t)np;
        sink k = {.limit = 2};
        bool stopped = false;
        ob_status st = spec_step(f.c, 0, &ss, s, hist, &nh, take, &k, &stopped, NULL);
        ob_sampler_free(s);
        CHECK(st == OB_OK && ss.n_drafted == 4);
        c1[k.got[0]]++;
        if (k.got[0] == draft[0]) { /* the second token came from the draft's row */
            CHECK(k.n == 2);
            c2[k.got[1]]++;
            n2++;
        } else {
            CHECK(k.n == 1);
        }
        CHECK(!ob_context_truncate(f.c, (int64_t)np - 1, NULL));
    }
    int df1 = 0, df2 = 0, dfw = 0;
    const double x1 = chi_square(c1, p1, nv, N, &df1);
    const double x2 = chi_square(c2, p2, nv, n2, &df2);
    const double xw = chi_square(c1, wrong, nv, N, &dfw);
    fprintf(stderr,
            "spec_step_test: first token chi2 %.1f (df %d, bound %.1f); second chi2 %.1f "
            "(df %d over %d draws, bound %.1f); against temperature 0.7: %.1f (bound %.1f)\n",
            x1, df1, chi_bound(df1), x2, df2, n2, chi_bound(df2), xw, chi_bound(dfw));
    CHECK(df1 >= 2 && df2 >= 1 && n2 > 200);
    CHECK(x1 < chi_bound(df1));
    CHECK(x2 < chi_bound(df2));
    CHECK(xw > chi_bound(dfw)); /* the test tells a wrong distribution apart */
    free(p1), free(p2), free(wrong), free(c1), free(c2);
    close_fixture(&f);
}

/* A history whose lookup proposes, after "Once upon a", a token the model does not choose. */
TEST(rejected_first_token_keeps_only_the_pending_position) {
    fixture f;
    if (!open_fixture(&f, CTX)) SKIP("stories260K.gguf not in the shared folder");
    int32_t prompt[128], want[40], got[40];
    size_t np = tokens(&f, "Once upon a", prompt, 64);
    CHECK(np >= 3);
    const size_t stem = np;
    prompt[np++] = 400;                                           /* an unlikely continuation */
    memcpy(prompt + np, prompt + 1, (stem - 1) * sizeof *prompt); /* "Once upon a" again */
    np += stem - 1;
    int n = plain(&f, prompt, np, 0.0f, 1, 30, want);
    CHECK(n == 30 && want[0] != 400);
    /* The first step drafts 400 ...: rejected at once. */
    spec_params sp = {SPEC_MODE_NGRAM, 8};
    spec_seq ss;
    spec_seq_init(&ss, &sp, f.c);
    ob_sampler *s = sampler(&f, 0.0f, 1);
    static int32_t hist[CTX + SPEC_MAX_DRAFT + 2];
    CHECK(!ob_context_truncate(f.c, 0, NULL) &&
          !ob_eval(f.c, prompt, (int64_t)np - 1, false, NULL));
    memcpy(hist, prompt, np * sizeof *hist);
    int64_t nh = (int64_t)np;
    sink k = {.limit = 30};
    bool stopped = false;
    CHECK(!spec_step(f.c, 0, &ss, s, hist, &nh, take, &k, &stopped, NULL));
    CHECK(ss.n_drafted > 0 && ss.n_accepted == 0);
    CHECK_EQ_INT(k.n, 1);
    CHECK_EQ_INT(ob_seq_n_past(f.c, 0), (int64_t)np); /* the pending token only */
    CHECK_EQ_INT(nh, (int64_t)np + 1);
    while (!stopped && !spec_step(f.c, 0, &ss, s, hist, &nh, take, &k, &stopped, NULL)) {
    }
    memcpy(got, k.got, sizeof got);
    CHECK_EQ_INT(k.n, 30);
    /* plain decoding from the same cache state: the prompt's last token was pending */
    for (int j = 0; j < 30; j++)
        CHECK_MSG(got[j] == want[j], "token %d", j);
    ob_sampler_free(s);
    close_fixture(&f);
}

TEST(stop_mid_draft_and_context_limit) {
    fixture f;
    if (!open_fixture(&f, 64)) SKIP("stories260K.gguf not in the shared folder");
    int32_t prompt[64], want[64];
    /* The prompt holds a sentence, the model's own greedy continuation of it, and the sentence
     * again: the lookup then drafts that continuation, which the model repeats. */
    size_t np = tokens(&f, "The cat sat on the mat.", prompt, 16);
    const size_t stem = np;
    CHECK(plain(&f, prompt, np, 0.0f, 1, 8, prompt + np) == 8);
    np += 8;
    memcpy(prompt + np, prompt + 1, (stem - 1) * sizeof *prompt);
    np += stem - 1;
    /* plain fills the context: the token drawn from position n_ctx - 1 is the last, as its
     * own position would be n_ctx */
    int n = plain(&f, prompt, np, 0.0f, 1, 64, want);
    CHECK_EQ_INT(n, 64 - (int)np + 1);
    spec_params sp = {SPEC_MODE_NGRAM, 8};
    spec_seq ss;
    spec_seq_init(&ss, &sp, f.c);
    ob_sampler *s = sampler(&f, 0.0f, 1);
    static int32_t hist[CTX + SPEC_MAX_DRAFT + 2];
    CHECK(!ob_context_truncate(f.c, 0, NULL) && !ob_eval(f.c, prompt, (int64_t)np, false, NULL));
    memcpy(hist, prompt, np * sizeof *hist);
    int64_t nh = (int64_t)np;
    hist[nh++] = ob_sampler_sample(s, ob_logits(f.c, -1));
    /* a caller that stops after 2 tokens of a step whose draft agrees further */
    sink k = {.limit = 2};
    bool stopped = false;
    const int64_t before = ob_seq_n_past(f.c, 0);
    CHECK(!spec_step(f.c, 0, &ss, s, hist, &nh, take, &k, &stopped, NULL));
    CHECK(stopped && k.n == 2);
    CHECK(ss.n_drafted >= 2);
    CHECK_EQ_INT(ob_seq_n_past(f.c, 0), before + 2); /* pending + the first draft token */
    CHECK_EQ_INT(hist[nh - 1], k.got[1]);
    /* then on to the context's end: drafts shrink to the room left, never past n_ctx */
    k.limit = 1000;
    ob_err err = {{0}};
    ob_status st = OB_OK;
    while (!st)
        st = spec_step(f.c, 0, &ss, s, hist, &nh, take, &k, &stopped, &err);
    CHECK_MSG(st == OB_ERR_LIMIT, "%s: %s", ob_status_name(st), err.msg);
    CHECK_EQ_INT(1 + k.n, n);
    CHECK_EQ_INT(hist[np], want[0]);
    for (int j = 0; j < k.n; j++)
        CHECK_MSG(k.got[j] == want[1 + j], "token %d", j + 1);
    ob_sampler_free(s);
    close_fixture(&f);
}

static bool always(void *user) {
    (void)user;
    return true;
}

TEST(cancelled_verification_changes_nothing) {
    fixture f;
    if (!open_fixture(&f, CTX)) SKIP("stories260K.gguf not in the shared folder");
    int32_t prompt[128], want[40];
    size_t np = tokens(&f, PROMPTS[1], prompt, 128);
    int n = plain(&f, prompt, np, 1.0f, 3, 40, want);
    CHECK(n == 40);
    spec_params sp = {SPEC_MODE_NGRAM, 8};
    spec_seq ss;
    spec_seq_init(&ss, &sp, f.c);
    ob_sampler *s = sampler(&f, 1.0f, 3);
    static int32_t hist[CTX + SPEC_MAX_DRAFT + 2];
    CHECK(!ob_context_truncate(f.c, 0, NULL) && !ob_eval(f.c, prompt, (int64_t)np, false, NULL));
    memcpy(hist, prompt, np * sizeof *hist);
    int64_t nh = (int64_t)np;
    hist[nh++] = ob_sampler_sample(s, ob_logits(f.c, -1));
    sink k = {.limit = 40};
    take(&k, hist[nh - 1]);
    bool stopped = false;
    int cancelled = 0;
    while (!stopped) {
        /* every other step is cancelled first: nothing may change, then it runs */
        ob_context_set_abort(f.c, always, NULL);
        const int64_t past = ob_seq_n_past(f.c, 0), nh0 = nh;
        const int kn = k.n;
        ob_err err = {{0}};
        CHECK_STATUS(spec_step(f.c, 0, &ss, s, hist, &nh, take, &k, &stopped, &err),
                     OB_ERR_CANCELLED, &err, "cancelled");
        CHECK(!stopped && nh == nh0 && k.n == kn && ob_seq_n_past(f.c, 0) == past);
        cancelled++;
        ob_context_set_abort(f.c, NULL, NULL);
        CHECK(!spec_step(f.c, 0, &ss, s, hist, &nh, take, &k, &stopped, NULL));
    }
    CHECK(cancelled > 3 && ss.n_accepted > 0);
    CHECK_EQ_INT(k.n, 40);
    for (int j = 0; j < 40; j++)
        CHECK_MSG(k.got[j] == want[j], "token %d", j);
    ob_sampler_free(s);
    close_fixture(&f);
}

int main(void) {
    RUN(greedy_and_seeded_output_equal_plain);
    RUN(distribution_at_temperature_one_is_the_targets);
    RUN(rejected_first_token_keeps_only_the_pending_position);
    RUN(stop_mid_draft_and_context_limit);
    RUN(cancelled_verification_changes_nothing);
    return t_summary();
}
