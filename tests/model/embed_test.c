/*
 * ob_embed on random-weight tiny models (outboard synth, F32): the pooling against the causal
 * model's own definition, batches against inputs one at a time, the cache left as found, and
 * errors. (Against llama.cpp's embeddings: tests/serve/test_serve_embeddings.py.)
 *
 * The pooling check needs no second engine: attention is causal, so the hidden state of token t
 * of an input is the last-token embedding of the input's first t + 1 tokens. Hence
 *   mean(S) = the average over t of last(S[..t]),   cls(S) = last(S[..0]),
 * which pins which rows each pooling reads and how it averages them.
 *
 * Tolerance: a batch puts other row counts through the matrix products than one input alone,
 * which sums in other orders (tests/model/batch_test.c); in F32 that is rounding, 1e-5 of the
 * largest element.
 */
#include "outboard.h"

#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#define N_IN 5
#define TOL 1e-5f

static char tmp_dir[256];

/* A tiny synthetic model (arch, F32, pooling written when non-NULL), made once per run. */
static ob_model *load_synth(const char *arch, const char *pooling) {
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ob_embed_test_XXXXXX");
        if (!mkdtemp(tmp_dir)) return NULL;
    }
    const char *build = getenv("OB_BUILD");
    char path[512], cmd[1400];
    snprintf(path, sizeof path, "%s/%s-%s.gguf", tmp_dir, arch, pooling ? pooling : "nopool");
    if (access(path, R_OK) != 0) {
        snprintf(cmd, sizeof cmd, "%s/outboard synth --arch %s --shape tiny --type f32 %s%s "
                 "-o %s >/dev/null 2>&1", build ? build : "build", arch,
                 pooling ? "--pooling " : "", pooling ? pooling : "", path);
        if (system(cmd) != 0) return NULL;
    }
    ob_model *m = NULL;
    ob_err err = {{0}};
    if (ob_model_load(path, NULL, &m, &err)) {
        fprintf(stderr, "load %s: %s\n", path, err.msg);
        return NULL;
    }
    return m;
}

static ob_context *new_ctx(ob_model *m, int32_t n_seq, int64_t n_ctx, int64_t kv_size) {
    ob_context_params p;
    ob_context_params_init(&p);
    p.n_ctx = n_ctx;
    p.n_threads = 2;
    p.n_seq_max = n_seq;
    p.kv_size = kv_size;
    p.n_batch = 64; /* inputs longer than this go in several passes */
    ob_context *c = NULL;
    ob_err err = {{0}};
    if (ob_context_new(m, &p, &c, &err)) fprintf(stderr, "context: %s\n", err.msg);
    return c;
}

/* Inputs of lengths 1, 7, 33, 100, 64 with random ids. */
static int32_t g_tok[N_IN][128];
static int64_t g_len[N_IN] = {1, 7, 33, 100, 64};
static const int32_t *g_in[N_IN];

static void make_inputs(const ob_model *m) {
    ob_model_info in;
    ob_model_get_info(m, &in);
    srand(7);
    for (int i = 0; i < N_IN; i++) {
        for (int64_t t = 0; t < g_len[i]; t++) g_tok[i][t] = rand() % (int32_t)in.n_vocab;
        g_in[i] = g_tok[i];
    }
}

static float max_abs_diff(const float *a, const float *b, int64_t n, float *scale) {
    float d = 0, s = 1;
    for (int64_t j = 0; j < n; j++) {
        if (fabsf(a[j] - b[j]) > d) d = fabsf(a[j] - b[j]);
        if (fabsf(b[j]) > s) s = fabsf(b[j]);
    }
    *scale = s;
    return d;
}

TEST(pooling_names_and_the_file_key) {
    ob_pooling p;
    for (int i = OB_POOLING_NONE; i <= OB_POOLING_LAST; i++) {
        CHECK(ob_pooling_parse(ob_pooling_name((ob_pooling)i), &p));
        CHECK_EQ_INT(p, i);
    }
    CHECK(!ob_pooling_parse("rank", &p));
    CHECK(!ob_pooling_parse("", &p));
    ob_model *last = load_synth("qwen3", "last"), *none = load_synth("qwen3", NULL);
    if (!last || !none) SKIP("synthetic models unavailable");
    CHECK_EQ_INT(ob_model_pooling(last), OB_POOLING_LAST);
    CHECK_EQ_INT(ob_model_pooling(none), OB_POOLING_NONE); /* absent: none, as llama.cpp */
    ob_model_free(last);
    ob_model_free(none);
}

/* mean and cls from last-token embeddings of prefixes, all unnormalised. */
static void check_pooling_definition(const char *arch) {
    ob_model *m = load_synth(arch, NULL);
    if (!m) SKIP("synthetic model unavailable");
    make_inputs(m);
    ob_context *c = new_ctx(m, 4, 256, 0);
    CHECK(c);
    ob_model_info in;
    ob_model_get_info(m, &in);
    const int64_t e = in.n_embd, n = g_len[2];
    float *mean = calloc((size_t)e, 4), *cls = calloc((size_t)e, 4), *avg = calloc((size_t)e, 4);
    float *pre = calloc((size_t)e, 4);
    ob_err err = {{0}};
    CHECK_STATUS(ob_embed(c, &g_in[2], &n, 1, OB_POOLING_MEAN, false, mean, &err), OB_OK, &err,
                 "");
    CHECK_STATUS(ob_embed(c, &g_in[2], &n, 1, OB_POOLING_CLS, false, cls, &err), OB_OK, &err, "");
    for (int64_t t = 1; t <= n; t++) {
        CHECK_STATUS(ob_embed(c, &g_in[2], &t, 1, OB_POOLING_LAST, false, pre, &err), OB_OK,
                     &err, "");
        for (int64_t j = 0; j < e; j++) avg[j] += pre[j] / (float)n;
        float s = 1, d = t == 1 ? max_abs_diff(cls, pre, e, &s) : 0;
        CHECK_MSG(d <= TOL * s, "cls vs last of the first token: %g", d);
    }
    float s, d = max_abs_diff(mean, avg, e, &s);
    CHECK_MSG(d <= TOL * s, "%s mean vs average of prefixes' last: %g (scale %g)", arch, d, s);
    free(mean);
    free(cls);
    free(avg);
    free(pre);
    ob_context_free(c);
    ob_model_free(m);
}

TEST(mean_and_cls_follow_from_last_llama) { check_pooling_definition("llama"); }
TEST(mean_and_cls_follow_from_last_gemma3) { check_pooling_definition("gemma3"); }

/* Five inputs on 4 sequences (a batch of 4, then 1), or on a pool of 96 positions (inputs
 * in groups that fit), against each input alone; normalised rows have length 1. */
static void check_batch(int32_t n_seq, int64_t kv_size, ob_pooling pooling) {
    ob_model *m = load_synth("qwen3", "last");
    if (!m) SKIP("synthetic model unavailable");
    make_inputs(m);
    ob_context *c = new_ctx(m, n_seq, 128, kv_size);
    CHECK(c);
    ob_model_info in;
    ob_model_get_info(m, &in);
    const int64_t e = in.n_embd;
    float *all = calloc((size_t)(N_IN * e), 4), *one = calloc((size_t)e, 4);
    ob_err err = {{0}};
    CHECK_STATUS(ob_embed(c, g_in, g_len, N_IN, pooling, true, all, &err), OB_OK, &err, "");
    for (int i = 0; i < N_IN; i++) {
        CHECK_STATUS(ob_embed(c, &g_in[i], &g_len[i], 1, pooling, true, one, &err), OB_OK, &err,
                     "");
        float s, d = max_abs_diff(all + i * e, one, e, &s);
        CHECK_MSG(d <= TOL * s, "input %d: batch vs alone %g", i, d);
        double ss = 0;
        for (int64_t j = 0; j < e; j++) ss += (double)one[j] * one[j];
        CHECK_MSG(fabs(sqrt(ss) - 1) < 1e-5, "input %d: length %g", i, sqrt(ss));
    }
    for (int32_t q = 0; q < n_seq; q++) CHECK_EQ_INT(ob_seq_n_past(c, q), 0);
    free(all);
    free(one);
    ob_context_free(c);
    ob_model_free(m);
}

TEST(batch_of_sequences_equals_inputs_alone_mean) { check_batch(4, 0, OB_POOLING_MEAN); }
TEST(batch_of_sequences_equals_inputs_alone_last) { check_batch(4, 0, OB_POOLING_LAST); }
TEST(small_pool_splits_the_batch) { check_batch(8, 128, OB_POOLING_CLS); }

TEST(busy_sequences_are_left_alone) {
    ob_model *m = load_synth("qwen3", "last");
    if (!m) SKIP("synthetic model unavailable");
    make_inputs(m);
    ob_context *c = new_ctx(m, 2, 128, 0);
    CHECK(c);
    ob_err err = {{0}};
    float out[4096];
    CHECK_STATUS(ob_eval(c, g_tok[1], g_len[1], false, &err), OB_OK, &err, "");
    /* only sequence 1 is free: the inputs go one by one */
    CHECK_STATUS(ob_embed(c, g_in, g_len, 3, OB_POOLING_LAST, true, out, &err), OB_OK, &err, "");
    CHECK_EQ_INT(ob_seq_n_past(c, 0), g_len[1]);
    CHECK_EQ_INT(ob_seq_n_past(c, 1), 0);
    CHECK(ob_batch_logits(c, 0) == NULL); /* the rows were hidden states, not logits */
    CHECK_STATUS(ob_eval(c, g_tok[0], 1, false, &err), OB_OK, &err, "");
    CHECK(ob_logits(c, -1) != NULL);
    ob_context_free(c);
    ob_model_free(m);
}

TEST(errors_are_named) {
    ob_model *m = load_synth("qwen3", "last");
    if (!m) SKIP("synthetic model unavailable");
    make_inputs(m);
    ob_context *c = new_ctx(m, 1, 64, 0);
    CHECK(c);
    ob_err err = {{0}};
    float out[4096];
    CHECK_STATUS(ob_embed(c, g_in, g_len, 1, OB_POOLING_NONE, true, out, &err), OB_ERR_ARG, &err,
                 "pooling 'none'");
    int64_t zero = 0, long_len = g_len[3];
    CHECK_STATUS(ob_embed(c, g_in, &zero, 1, OB_POOLING_MEAN, true, out, &err), OB_ERR_ARG, &err,
                 "input 0 is empty");
    CHECK_STATUS(ob_embed(c, &g_in[3], &long_len, 1, OB_POOLING_MEAN, true, out, &err),
                 OB_ERR_LIMIT, &err, "input 0 has 100 tokens, the context holds 64");
    int32_t bad[2] = {1, 1 << 30};
    const int32_t *bad_in[2] = {g_in[0], bad};
    int64_t bad_len[2] = {1, 2};
    CHECK_STATUS(ob_embed(c, bad_in, bad_len, 2, OB_POOLING_LAST, true, out, &err), OB_ERR_ARG,
                 &err, "input 1: token 1 is id 1073741824");
    CHECK_STATUS(ob_eval(c, g_tok[0], 1, false, &err), OB_OK, &err, "");
    CHECK_STATUS(ob_embed(c, g_in, g_len, 1, OB_POOLING_LAST, true, out, &err), OB_ERR_LIMIT,
                 &err, "all 1 sequences of the context hold cache");
    ob_context_free(c);
    ob_model_free(m);
}

int main(void) {
    RUN(pooling_names_and_the_file_key);
    RUN(mean_and_cls_follow_from_last_llama);
    RUN(mean_and_cls_follow_from_last_gemma3);
    RUN(batch_of_sequences_equals_inputs_alone_mean);
    RUN(batch_of_sequences_equals_inputs_alone_last);
    RUN(small_pool_splits_the_batch);
    RUN(busy_sequences_are_left_alone);
    RUN(errors_are_named);
    if (tmp_dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
        if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp_dir);
    }
    return t_summary();
}
