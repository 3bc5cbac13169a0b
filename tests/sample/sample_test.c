/*
 * Sampler tests on hand-made logits: greedy picks the argmax (lowest id on ties), top-k and
 * top-p and min-p keep exactly the tokens their definitions keep, the repeat penalty divides
 * positive and multiplies negative logits of recent tokens, draws follow the softmax (a
 * chi-square-style bound over many draws), and a seed fixes the sequence.
 */
#include "outboard.h"
#include "test.h"

#include <math.h>

static ob_sampler *make(float temp, int top_k, float top_p, float min_p, float rep,
                        uint64_t seed, int64_t n_vocab) {
    ob_sampler_params p;
    ob_sampler_params_init(&p);
    p.temp = temp, p.top_k = top_k, p.top_p = top_p, p.min_p = min_p;
    p.repeat_penalty = rep, p.seed = seed;
    ob_sampler *s = NULL;
    ob_sampler_new(&p, n_vocab, &s, NULL);
    return s;
}

TEST(greedy_is_argmax_lowest_id_on_ties) {
    float l[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 0.0f};
    ob_sampler *s = make(0.0f, 40, 0.95f, 0.05f, 1.0f, 1, 6);
    CHECK(s);
    CHECK_EQ_INT(ob_sampler_sample(s, l), 1);
    ob_sampler_free(s);
}

/* Counts of each token over n draws. */
static void histogram(ob_sampler *s, const float *l, int64_t nv, int n, int *counts) {
    memset(counts, 0, (size_t)nv * sizeof *counts);
    for (int i = 0; i < n; i++) counts[ob_sampler_sample(s, l)]++;
}

TEST(top_k_top_p_min_p_keep_what_they_define) {
    float l[5] = {3.0f, 2.0f, 1.0f, 0.0f, -1.0f}; /* probs .64 .23 .086 .032 .012 */
    int counts[5];
    ob_sampler *s = make(1.0f, 2, 1.0f, 0.0f, 1.0f, 3, 5); /* top-k 2 */
    histogram(s, l, 5, 4000, counts);
    CHECK(counts[0] > 0 && counts[1] > 0 && counts[2] + counts[3] + counts[4] == 0);
    ob_sampler_free(s);
    s = make(1.0f, 0, 0.9f, 0.0f, 1.0f, 3, 5); /* top-p 0.9: .64 + .23 + .086 >= .9 */
    histogram(s, l, 5, 4000, counts);
    CHECK(counts[2] > 0 && counts[3] + counts[4] == 0);
    ob_sampler_free(s);
    s = make(1.0f, 0, 1.0f, 0.1f, 1.0f, 3, 5); /* min-p 0.1: p >= .064 keeps 0, 1, 2 */
    histogram(s, l, 5, 4000, counts);
    CHECK(counts[2] > 0 && counts[3] + counts[4] == 0);
    ob_sampler_free(s);
}

TEST(draws_follow_the_distribution) {
    float l[4] = {1.0f, 0.0f, 0.5f, -0.5f};
    const float temp = 0.7f;
    double z = 0, p[4];
    for (int i = 0; i < 4; i++) z += p[i] = exp(l[i] / temp);
    int counts[4], n = 20000;
    ob_sampler *s = make(temp, 0, 1.0f, 0.0f, 1.0f, 11, 4);
    histogram(s, l, 4, n, counts);
    for (int i = 0; i < 4; i++) {
        double expect = n * p[i] / z, sd = sqrt(expect * (1 - p[i] / z));
        CHECK_MSG(fabs(counts[i] - expect) < 5 * sd, "token %d: %d draws, expected %.0f", i,
                  counts[i], expect);
    }
    ob_sampler_free(s);
}

TEST(repeat_penalty_changes_recent_tokens) {
    float l[3] = {2.0f, 1.9f, -3.0f};
    ob_sampler *s = make(0.0f, 0, 1.0f, 0.0f, 1.5f, 1, 3);
    ob_sampler_accept(s, 0);
    CHECK_EQ_INT(ob_sampler_sample(s, l), 1); /* 2.0 / 1.5 < 1.9 */
    ob_sampler_free(s);
    float m[3] = {-1.0f, -1.2f, -5.0f};
    s = make(0.0f, 0, 1.0f, 0.0f, 1.5f, 1, 3);
    ob_sampler_accept(s, 0);
    CHECK_EQ_INT(ob_sampler_sample(s, m), 1); /* -1.0 * 1.5 < -1.2 */
    ob_sampler_free(s);
}

TEST(seed_fixes_the_sequence) {
    float l[50];
    for (int i = 0; i < 50; i++) l[i] = (float)(i % 7) * 0.3f;
    int32_t a[30], b[30];
    int differ = 0;
    ob_sampler *s1 = make(1.0f, 0, 1.0f, 0.0f, 1.0f, 99, 50);
    ob_sampler *s2 = make(1.0f, 0, 1.0f, 0.0f, 1.0f, 99, 50);
    ob_sampler *s3 = make(1.0f, 0, 1.0f, 0.0f, 1.0f, 100, 50);
    for (int i = 0; i < 30; i++) {
        a[i] = ob_sampler_sample(s1, l);
        b[i] = ob_sampler_sample(s2, l);
        differ |= ob_sampler_sample(s3, l) != a[i];
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(differ);
    ob_sampler_free(s1), ob_sampler_free(s2), ob_sampler_free(s3);
}

TEST(bad_parameters_are_named) {
    ob_sampler_params p;
    ob_sampler_params_init(&p);
    p.top_p = 1.5f;
    ob_sampler *s;
    ob_err err;
    CHECK_STATUS(ob_sampler_new(&p, 10, &s, &err), OB_ERR_ARG, &err, "top_p 1.5");
}

TEST(nan_parameters_are_refused) {
    const float bad[] = {NAN, INFINITY, -1.0f};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ob_sampler_params p;
        ob_sampler *s = NULL;
        ob_sampler_params_init(&p);
        p.temp = bad[i];
        CHECK(ob_sampler_new(&p, 10, &s, NULL) == OB_ERR_ARG && !s);
        ob_sampler_params_init(&p);
        p.top_p = isinf(bad[i]) ? NAN : bad[i];
        CHECK(ob_sampler_new(&p, 10, &s, NULL) == OB_ERR_ARG && !s);
        ob_sampler_params_init(&p);
        p.min_p = bad[i];
        CHECK(ob_sampler_new(&p, 10, &s, NULL) == OB_ERR_ARG && !s);
        ob_sampler_params_init(&p);
        p.repeat_penalty = bad[i];
        CHECK(ob_sampler_new(&p, 10, &s, NULL) == OB_ERR_ARG && !s);
    }
}

/* The defect behind NaN logits: the selection compared with a relation that is not an order
 * and ran off the array. Every chain (greedy, top-k 0/1/40, top-p, min-p, penalty) on logits
 * holding NaN and infinities must return an id whose logit is not NaN. */
TEST(nan_and_inf_logits_are_never_drawn) {
    enum { NV = 97 };
    float l[NV];
    uint64_t x = 12345;
    const float temps[] = {0.0f, 0.8f, 1e-30f, 100.0f};
    const int top_ks[] = {0, 1, 40};
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < NV; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            unsigned r = (unsigned)(x >> 33) % 10;
            l[i] = r < 4 ? NAN : r == 4 ? INFINITY : r == 5 ? -INFINITY
                 : (float)((int)(x >> 40) % 2000) * 0.01f;
        }
        for (size_t t = 0; t < sizeof temps / sizeof temps[0]; t++)
            for (size_t k = 0; k < sizeof top_ks / sizeof top_ks[0]; k++) {
                ob_sampler *s = make(temps[t], top_ks[k], round % 2 ? 0.9f : 1.0f,
                                     round % 3 ? 0.05f : 0.0f, round % 5 ? 1.0f : 1.3f,
                                     (uint64_t)round, NV);
                CHECK(s);
                int32_t id = ob_sampler_sample(s, l);
                ob_sampler_free(s);
                CHECK_MSG(id >= 0 && id < NV && !isnan(l[id]), "round %d: id %d", round, id);
            }
    }
}

TEST(infinity_wins_and_all_nan_is_no_token) {
    float l[4] = {NAN, 1.0f, INFINITY, 2.0f};
    ob_sampler *s = make(0.8f, 40, 0.95f, 0.05f, 1.0f, 1, 4);
    CHECK(s);
    for (int i = 0; i < 20; i++) CHECK_EQ_INT(ob_sampler_sample(s, l), 2);
    float none[4] = {NAN, NAN, -INFINITY, NAN};
    CHECK_EQ_INT(ob_sampler_sample(s, none), -1);
    ob_sampler_free(s);
    ob_sampler *g = make(0.0f, 40, 0.95f, 0.05f, 1.0f, 1, 4);
    CHECK(g);
    CHECK_EQ_INT(ob_sampler_sample(g, none), -1);
    float one[4] = {NAN, NAN, 0.5f, NAN};
    CHECK_EQ_INT(ob_sampler_sample(g, one), 2);
    ob_sampler_free(g);
}

/* The penalty window is limited (its ring is allocated up front) and costs its length. */
TEST(repeat_window_is_bounded) {
    ob_sampler_params p;
    ob_sampler_params_init(&p);
    p.repeat_last_n = INT32_MAX;
    ob_sampler *s = NULL;
    ob_err err;
    CHECK_STATUS(ob_sampler_new(&p, 10, &s, &err), OB_ERR_ARG, &err, "repeat_last_n");
    p.repeat_last_n = 1 << 20;
    p.repeat_penalty = 1.1f;
    CHECK(!ob_sampler_new(&p, 10, &s, NULL));
    for (int i = 0; i < (1 << 20); i++) ob_sampler_accept(s, i % 10);
    float l[10] = {0};
    l[3] = 1.0f;
    CHECK(ob_sampler_sample(s, l) >= 0);
    ob_sampler_free(s);
}

int main(void) {
    RUN(greedy_is_argmax_lowest_id_on_ties);
    RUN(top_k_top_p_min_p_keep_what_they_define);
    RUN(draws_follow_the_distribution);
    RUN(repeat_penalty_changes_recent_tokens);
    RUN(seed_fixes_the_sequence);
    RUN(bad_parameters_are_named);
    RUN(nan_parameters_are_refused);
    RUN(nan_and_inf_logits_are_never_drawn);
    RUN(infinity_wins_and_all_nan_is_no_token);
    RUN(repeat_window_is_bounded);
    return t_summary();
}
