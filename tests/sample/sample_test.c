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

int main(void) {
    RUN(greedy_is_argmax_lowest_id_on_ties);
    RUN(top_k_top_p_min_p_keep_what_they_define);
    RUN(draws_follow_the_distribution);
    RUN(repeat_penalty_changes_recent_tokens);
    RUN(seed_fixes_the_sequence);
    RUN(bad_parameters_are_named);
    return t_summary();
}
