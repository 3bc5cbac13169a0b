/*
 * Prompt lookup (src/spec/spec_ngram.c) and the drafting policy (src/spec/spec_seq.c) on
 * token arrays, without a model: longest match, the most recent of equal matches, the
 * shortest match that drafts, caps; draft length growing and shrinking, auto mode pausing
 * drafts that do not pay and ngram mode never pausing; mode names.
 */
#include "spec/spec.h"

#include "test.h"

TEST(longest_match_wins) {
    /* ... 1 2 3 [7 8] ... 9 2 3 [5 6] ... 1 2 3: the suffix 1 2 3 matches 3 long at the start
     * and only 2 long (2 3) in the middle, so the start's continuation is drafted. */
    const int32_t h[] = {1, 2, 3, 7, 8, 9, 2, 3, 5, 6, 1, 2, 3};
    int32_t out[8];
    int len = 0;
    int n = spec_ngram_draft(h, 13, 8, out, &len);
    CHECK_EQ_INT(len, 3);
    CHECK(n == 8);
    CHECK_EQ_INT(out[0], 7);
    CHECK_EQ_INT(out[1], 8);
    CHECK_EQ_INT(out[7], 1); /* the draft runs on to the end of the history */
}

TEST(most_recent_of_equal_matches) {
    const int32_t h[] = {4, 5, 10, 4, 5, 11, 4, 5};
    int32_t out[4];
    int len = 0;
    int n = spec_ngram_draft(h, 8, 1, out, &len);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(len, 2);
    CHECK_EQ_INT(out[0], 11);
}

TEST(short_or_absent_match_drafts_nothing) {
    const int32_t one[] = {4, 9, 7, 4}; /* only the last token recurs: below SPEC_NGRAM_MIN */
    int32_t out[4];
    int len = 7;
    CHECK_EQ_INT(spec_ngram_draft(one, 4, 4, out, &len), 0);
    CHECK_EQ_INT(len, 0);
    const int32_t none[] = {1, 2, 3, 4, 5};
    CHECK_EQ_INT(spec_ngram_draft(none, 5, 4, out, NULL), 0);
    CHECK_EQ_INT(spec_ngram_draft(none, 2, 4, out, NULL), 0);
    CHECK_EQ_INT(spec_ngram_draft(none, 0, 4, out, NULL), 0);
    const int32_t rep[] = {3, 3, 3, 3};
    CHECK_EQ_INT(spec_ngram_draft(rep, 4, 0, out, NULL), 0); /* no room */
    /* a run of one token: the match overlapping the suffix still proposes the run */
    CHECK_EQ_INT(spec_ngram_draft(rep, 4, 4, out, &len), 1);
    CHECK_EQ_INT(out[0], 3);
    CHECK_EQ_INT(len, 3);
}

TEST(match_length_is_capped) {
    int32_t h[200], out[4];
    for (int i = 0; i < 200; i++)
        h[i] = i % 50; /* period 50: matches as long as allowed */
    int len = 0;
    CHECK_EQ_INT(spec_ngram_draft(h, 200, 4, out, &len), 4);
    CHECK_EQ_INT(len, SPEC_NGRAM_MAX);
    CHECK_EQ_INT(out[0], 0); /* 199 % 50 = 49 is followed by 0 */
}

/* spec_seq_init reads the context only for n_batch and recurrent state: none needed here, so
 * the policy is tested on a zeroed state set up by hand. */
static void policy(spec_seq *s, spec_mode mode, int max) {
    memset(s, 0, sizeof *s);
    s->p.mode = mode;
    s->p.max_draft = max;
    s->enabled = true;
    s->k = 4;
    s->accept = 1.0;
    s->backoff = 8;
}

TEST(draft_length_adapts) {
    spec_seq s;
    policy(&s, SPEC_MODE_NGRAM, 16);
    spec_seq_update(&s, 4, 4, 5, 0);
    CHECK_EQ_INT(s.k, 8);
    spec_seq_update(&s, 8, 8, 9, 0);
    CHECK_EQ_INT(s.k, 16);
    spec_seq_update(&s, 16, 16, 17, 0);
    CHECK_EQ_INT(s.k, 16); /* capped */
    spec_seq_update(&s, 16, 2, 3, 0);
    CHECK_EQ_INT(s.k, 3);
    CHECK_EQ_INT(s.n_passes, 4);
    CHECK_EQ_INT(s.n_drafted, 44);
    CHECK_EQ_INT(s.n_accepted, 30);
    CHECK_EQ_INT(s.n_tokens, 34);
    for (int i = 0; i < 20; i++)
        spec_seq_update(&s, 3, 0, 1, 0);
    CHECK_EQ_INT(s.pause, 0); /* ngram mode drafts whatever its acceptance */
}

TEST(auto_mode_pauses_what_does_not_pay) {
    spec_seq s;
    policy(&s, SPEC_MODE_AUTO, 16);
    const int32_t h[] = {1, 2, 3, 4, 9, 1, 2, 3, 4};
    const int32_t short_match[] = {1, 2, 3, 9, 1, 2, 3};
    int32_t out[SPEC_MAX_DRAFT];
    /* auto mode drafts from copies, not from a 3-token phrase seen before */
    CHECK_EQ_INT(spec_seq_draft(&s, short_match, 7, 16, out), 0);
    s.p.mode = SPEC_MODE_NGRAM;
    CHECK(spec_seq_draft(&s, short_match, 7, 16, out) > 0);
    s.p.mode = SPEC_MODE_AUTO;
    int passes = 0;
    while (s.pause == 0 && passes < 20) {
        spec_seq_update(&s, 4, 0, 1, 0); /* untimed: judged by the accepted fraction */
        passes++;
    }
    CHECK(passes < 20);
    CHECK_EQ_INT(s.pause, 8);
    /* paused: no draft for 8 passes although the history matches, then a new try */
    for (int i = 0; i < 8; i++)
        CHECK_EQ_INT(spec_seq_draft(&s, h, 9, 16, out), 0);
    CHECK(spec_seq_draft(&s, h, 9, 16, out) > 0);
    while (s.pause == 0)
        spec_seq_update(&s, 4, 0, 1, 0);
    CHECK_EQ_INT(s.pause, 16); /* each failure pauses twice as long */
    /* timed: the drafting rate against the plain passes' decides */
    policy(&s, SPEC_MODE_AUTO, 16);
    spec_seq_update(&s, 0, 0, 1, 0.010); /* plain: 100 tokens/s */
    spec_seq_update(&s, 8, 8, 9, 0.030); /* 300 tokens/s: pays */
    CHECK_EQ_INT(s.pause, 0);
    for (int i = 0; i < 10 && s.pause == 0; i++)
        spec_seq_update(&s, 8, 0, 1, 0.014); /* 71 tokens/s: loses */
    CHECK(s.pause > 0);
}

TEST(timed_draft_length_follows_the_cost) {
    /* A plain pass of 17 ms, each draft row 2.5 ms more, drafts cut after 9 tokens (a draft
     * token kept with probability 0.9): a draft of 16 expects 8.1 tokens in 57 ms, one of 8
     * 6.1 in 37 ms, so the length settles below the maximum; with rows nearly free it goes to
     * the maximum. */
    spec_seq s;
    policy(&s, SPEC_MODE_NGRAM, 16);
    spec_seq_update(&s, 0, 0, 1, 0.017);
    for (int i = 0; i < 40; i++) {
        const int d = s.k, a = d < 9 ? d : 9;
        spec_seq_update(&s, d, a, a + 1, 0.017 + 0.0025 * d);
    }
    CHECK_MSG(s.k >= 4 && s.k <= 12, "k = %d", s.k);
    policy(&s, SPEC_MODE_NGRAM, 16);
    spec_seq_update(&s, 0, 0, 1, 0.017);
    for (int i = 0; i < 40; i++) {
        const int d = s.k, a = d < 9 ? d : 9;
        spec_seq_update(&s, d, a, a + 1, 0.017 + 0.00005 * d);
    }
    CHECK_MSG(s.k >= 8, "k = %d", s.k);
}

TEST(room_limits_the_draft) {
    spec_seq s;
    policy(&s, SPEC_MODE_NGRAM, 16);
    s.k = 16;
    const int32_t h[] = {1, 2, 3, 4, 5, 6, 7, 1, 2};
    int32_t out[SPEC_MAX_DRAFT];
    CHECK_EQ_INT(spec_seq_draft(&s, h, 9, 2, out), 2);
    CHECK_EQ_INT(spec_seq_draft(&s, h, 9, 0, out), 0);
    s.enabled = false;
    CHECK_EQ_INT(spec_seq_draft(&s, h, 9, 16, out), 0);
}

TEST(mode_names) {
    spec_mode m = SPEC_MODE_OFF;
    ob_err err = {{0}};
    CHECK(spec_mode_parse("ngram", &m, &err) == OB_OK && m == SPEC_MODE_NGRAM);
    CHECK(spec_mode_parse("off", &m, &err) == OB_OK && m == SPEC_MODE_OFF);
    CHECK(spec_mode_parse("auto", &m, &err) == OB_OK && m == SPEC_MODE_AUTO);
    CHECK(spec_mode_parse("draft", &m, &err) == OB_OK && m == SPEC_MODE_DRAFT);
    CHECK(spec_mode_parse("mtp", &m, &err) == OB_OK && m == SPEC_MODE_MTP);
    CHECK_STATUS(spec_mode_parse("fast", &m, &err), OB_ERR_ARG, &err,
                 "'fast': expected auto, off, ngram, draft or mtp");
    CHECK_STATUS(spec_mode_parse(NULL, &m, &err), OB_ERR_ARG, &err, "expected auto");
    CHECK_EQ_STR(spec_mode_name(SPEC_MODE_NGRAM), "ngram");
    CHECK_EQ_STR(spec_mode_name(SPEC_MODE_DRAFT), "draft");
    CHECK_EQ_STR(spec_mode_name(SPEC_MODE_MTP), "mtp");
}

int main(void) {
    RUN(longest_match_wins);
    RUN(most_recent_of_equal_matches);
    RUN(short_or_absent_match_drafts_nothing);
    RUN(match_length_is_capped);
    RUN(draft_length_adapts);
    RUN(auto_mode_pauses_what_does_not_pay);
    RUN(timed_draft_length_follows_the_cost);
    RUN(room_limits_the_draft);
    RUN(mode_names);
    return t_summary();
}
