/*
 * ob_decode over many sequences against ob_eval of each sequence alone, on random-weight tiny
 * models of every architecture (outboard synth; gemma3 with its sliding window of 64 over
 * sequences of up to 150 positions, so its per-sequence rings wrap; qwen3moe, whose batches
 * group their rows by expert), in F32 and Q8_0:
 * sequences of different lengths mixing prefill and decode in one batch and split into passes,
 * fork then diverge, truncate then evaluate again, prefix attach then evaluate the rest, a
 * cancelled batch and a pool too small for a batch leaving every cache as it was, and argument
 * errors naming the entry. qwen35 (Gated DeltaNet layers with a recurrent state per sequence,
 * one gated full-attention layer) runs the same: its state follows forks, is restored after a
 * cancelled batch, and goes back only to a checkpoint (the start of the sequence's last decode)
 * or to 0; its prefix cache is off.
 *
 * Tolerance: the batched and the single-sequence runs put different numbers of rows through
 * each matrix product, and the matmul kernels pick their path (one row, a few rows, repacked
 * tiles) by row count, summing in different orders; attention, the F16 cache and everything
 * per row are identical. So the logits may differ by the rounding of a sum: max |a - b| <=
 * TOL * max(1, max |b|), TOL 1e-5 for F32 and 1e-4 for Q8_0 (blocks of rows go through other
 * kernels than one row). Measured on AVX-512: F32 identical, Q8_0 at most 1.7e-7. qwen35's
 * recurrence runs one step at a time for a sequence whose every row wants logits (as here and
 * in the reference: a speculative verification must leave plain decoding's state) and in
 * chunks of 64 for a prompt, which sum in other orders (up to 2.1e-5 in F32); measured
 * identical here (tolerance 1e-4). In 8-bit types such a difference can flip the rounding of an activation, which moves
 * logits by a few percent, so qwen35 runs in F32 and F16 (activations rounded to F16 before
 * the products: 1.3e-3 measured, tolerance 5e-3, the F16 tolerance against llama.cpp); a wrong
 * or stale state differs by far more.
 */
#include "model/model.h"
#include "outboard.h"

#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_LEN 160
#define N_SEQ 4

static char tmp_dir[256];

/* A tiny synthetic model of arch and type, made once per run (NULL when that fails). */
static ob_model *load_synth(const char *arch, const char *type) {
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ob_batch_test_XXXXXX");
        if (!mkdtemp(tmp_dir)) return NULL;
    }
    const char *build = getenv("OB_BUILD");
    char path[512], cmd[1400];
    snprintf(path, sizeof path, "%s/%s-%s.gguf", tmp_dir, arch, type);
    if (access(path, R_OK) != 0) {
        snprintf(cmd, sizeof cmd, "%s/outboard synth --arch %s --shape tiny --type %s -o %s "
                 ">/dev/null 2>&1", build ? build : "build", arch, type, path);
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

static ob_context *ctx_new(ob_model *m, int32_t n_seq, int64_t kv_size, int64_t n_batch) {
    ob_context_params p;
    ob_context_params_init(&p);
    p.n_ctx = 256;
    p.n_threads = 2;
    p.n_seq_max = n_seq;
    p.kv_size = kv_size;
    p.n_batch = n_batch;
    ob_context *c = NULL;
    ob_err err = {{0}};
    if (ob_context_new(m, &p, &c, &err)) fprintf(stderr, "context: %s\n", err.msg);
    return c;
}

/* Logits (n, n_vocab) of tokens evaluated alone from position 0, all rows; owned by caller. */
static float *ref_logits(ob_model *m, const int32_t *toks, int64_t n) {
    ob_context *c = ctx_new(m, 1, 0, 512);
    const int64_t nv = m->hp.n_vocab;
    float *out = malloc((size_t)(n * nv) * sizeof *out);
    ob_err err = {{0}};
    if (!c || !out || ob_eval(c, toks, n, true, &err)) {
        fprintf(stderr, "reference: %s\n", err.msg);
        free(out);
        ob_context_free(c);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        memcpy(out + i * nv, ob_logits(c, i), (size_t)nv * sizeof *out);
    ob_context_free(c);
    return out;
}

/* max |a - b| / max(1, max |b|) over n floats. */
static double rel_diff(const float *a, const float *b, int64_t n) {
    double d = 0.0, scale = 1.0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs((double)b[i]) > scale) scale = fabs((double)b[i]);
        if (!(fabs((double)a[i] - (double)b[i]) <= d)) d = fabs((double)a[i] - (double)b[i]);
    }
    return d / scale;
}

static void make_tokens(int32_t *toks, int64_t n, uint32_t seed) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        toks[i] = 3 + (int32_t)((seed >> 8) % 250);
    }
}

/* One model under test. */
typedef struct fixture {
    const char *arch, *type;
    ob_model *m;
    double tol;
    bool swa;       /* sliding window: no prefix cache */
    bool recurrent; /* recurrent layers: no prefix cache, truncation only to a checkpoint */
} fixture;

static fixture fx;
static double worst;

/* Every entry of b asked for logits: each must match ref[seq] at its position. */
static bool check_batch(ob_context *c, const ob_batch *b, float *const *ref) {
    const int64_t nv = fx.m->hp.n_vocab;
    for (int64_t i = 0; i < b->n; i++) {
        const float *got = ob_batch_logits(c, i);
        if (!got) return false;
        const double d = rel_diff(got, ref[b->seq[i]] + b->pos[i] * nv, nv);
        if (d > worst) worst = d;
        if (d > fx.tol) {
            fprintf(stderr, "%s %s: entry %lld (seq %d pos %lld): diff %g > %g\n", fx.arch,
                    fx.type, (long long)i, b->seq[i], (long long)b->pos[i], d, fx.tol);
            return false;
        }
    }
    return true;
}

/* Adds the next k tokens of sequence s (from toks[s]) to b. */
static void add_run(ob_batch *b, ob_context *c, int32_t s, int32_t *const *toks, int64_t k,
                    int64_t *next) {
    (void)c;
    for (int64_t j = 0; j < k; j++, next[s]++)
        ob_batch_add(b, toks[s][next[s]], next[s], s, true, NULL);
}

/* Three sequences of 150, 90 and 40 tokens fed in batches that mix prefill and decode, passes
 * of 32 entries; every entry's logits checked. */
TEST(mixed_prefill_and_decode_match_single_sequences) {
    int32_t buf[3][MAX_LEN], *toks[3] = {buf[0], buf[1], buf[2]};
    const int64_t len[3] = {150, 90, 40};
    float *ref[3] = {NULL, NULL, NULL};
    for (int s = 0; s < 3; s++) {
        make_tokens(toks[s], len[s], 7u + (uint32_t)s);
        ref[s] = ref_logits(fx.m, toks[s], len[s]);
    }
    ob_context *c = ctx_new(fx.m, N_SEQ, 1024, 32);
    ob_batch *b = NULL;
    ob_err err = {{0}};
    CHECK(ref[0] && ref[1] && ref[2] && c);
    CHECK_STATUS(ob_batch_new(256, &b, &err), OB_OK, &err, "");
    int64_t next[N_SEQ] = {0};
    /* step 1: seq 1 prefill 10, seq 0 prefill 70 (80 entries: three passes) */
    add_run(b, c, 1, toks, 10, next);
    add_run(b, c, 0, toks, 70, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    CHECK(check_batch(c, b, ref));
    /* step 2: seq 0 decodes one, seq 2 starts with 20, seq 1 continues with 60 */
    ob_batch_clear(b);
    add_run(b, c, 0, toks, 1, next);
    add_run(b, c, 2, toks, 20, next);
    add_run(b, c, 1, toks, 60, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    CHECK(check_batch(c, b, ref));
    /* decode steps of all three, seq 0 catching up by 15 a step, to the ends */
    while (next[0] < len[0] || next[1] < len[1] || next[2] < len[2]) {
        ob_batch_clear(b);
        for (int32_t s = 2; s >= 0; s--) {
            int64_t k = s == 0 ? 15 : 1;
            if (k > len[s] - next[s]) k = len[s] - next[s];
            add_run(b, c, s, toks, k, next);
        }
        CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
        CHECK(check_batch(c, b, ref));
    }
    CHECK_EQ_INT(ob_seq_n_past(c, 0), 150);
    CHECK_EQ_INT(ob_seq_n_past(c, 2), 40);
    ob_batch_free(b);
    ob_context_free(c);
    for (int s = 0; s < 3; s++) free(ref[s]);
}

/* Sequence 1 forks from 0 after 45 tokens; both continue differently in one batch. */
TEST(fork_then_diverge) {
    int32_t buf[2][MAX_LEN], *toks[2] = {buf[0], buf[1]};
    make_tokens(toks[0], 120, 11);
    memcpy(toks[1], toks[0], 45 * sizeof(int32_t));
    make_tokens(toks[1] + 45, 75, 12);
    float *ref[2] = {ref_logits(fx.m, toks[0], 120), ref_logits(fx.m, toks[1], 120)};
    ob_context *c = ctx_new(fx.m, N_SEQ, 0, 32);
    ob_batch *b = NULL;
    ob_err err = {{0}};
    CHECK(ref[0] && ref[1] && c);
    CHECK_STATUS(ob_batch_new(256, &b, &err), OB_OK, &err, "");
    int64_t next[N_SEQ] = {0};
    add_run(b, c, 0, toks, 45, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    CHECK_STATUS(ob_seq_fork(c, 0, 1, &err), OB_OK, &err, "");
    CHECK_EQ_INT(ob_seq_n_past(c, 1), 45);
    next[1] = 45;
    for (int step = 0; step < 3; step++) {
        ob_batch_clear(b);
        add_run(b, c, 0, toks, 1, next);
        add_run(b, c, 1, toks, step == 1 ? 70 : 1, next);
        CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
        CHECK(check_batch(c, b, ref));
    }
    /* forking onto a sequence that holds positions replaces them */
    CHECK_STATUS(ob_seq_fork(c, 1, 0, &err), OB_OK, &err, "");
    CHECK_EQ_INT(ob_seq_n_past(c, 0), ob_seq_n_past(c, 1));
    CHECK_STATUS(ob_seq_fork(c, 1, 1, &err), OB_ERR_ARG, &err, "both sequence 1");
    CHECK_STATUS(ob_seq_fork(c, 1, N_SEQ, &err), OB_ERR_ARG, &err, "expected 0..3");
    ob_batch_free(b);
    ob_context_free(c);
    free(ref[0]);
    free(ref[1]);
}

/* Truncating to 50 and evaluating other tokens equals evaluating those from scratch. The 80
 * tokens go in two decodes, 50 and 30, so a recurrent model has its checkpoint at 50; other
 * lengths are refused there by name. */
TEST(truncate_then_evaluate_equals_fresh) {
    int32_t buf[2][MAX_LEN], *toks[2] = {buf[0], buf[1]};
    make_tokens(toks[0], 80, 21);
    memcpy(toks[1], toks[0], 50 * sizeof(int32_t));
    make_tokens(toks[1] + 50, 30, 22);
    float *ref1 = ref_logits(fx.m, toks[1], 80);
    float *ref[2] = {ref1, ref1}; /* sequence 0 ends up with toks[1] */
    ob_context *c = ctx_new(fx.m, N_SEQ, 0, 32);
    ob_batch *b = NULL;
    ob_err err = {{0}};
    CHECK(ref1 && c);
    CHECK_STATUS(ob_batch_new(256, &b, &err), OB_OK, &err, "");
    int64_t next[N_SEQ] = {0};
    add_run(b, c, 0, toks, 50, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    ob_batch_clear(b);
    add_run(b, c, 0, toks, 30, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    if (fx.recurrent) /* the decodes kept the states at 32 and 64 too */
        CHECK_STATUS(ob_seq_truncate(c, 0, 49, &err), OB_ERR_UNSUPPORTED, &err,
                     "can return only to 0 or 50 (its last checkpoint), or a block boundary "
                     "whose state was kept: 32, 64");
    CHECK_STATUS(ob_seq_truncate(c, 0, 50, &err), OB_OK, &err, "");
    CHECK_STATUS(ob_seq_truncate(c, 0, 51, &err), OB_ERR_ARG, &err, "expected 0..50");
    ob_batch_clear(b);
    next[0] = 50;
    int32_t *t1[2] = {toks[1], toks[1]};
    add_run(b, c, 0, t1, 30, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    CHECK(check_batch(c, b, ref));
    ob_batch_free(b);
    ob_context_free(c);
    free(ref1);
}

/* A recurrent sequence truncated past its checkpoint (its length before its last decode, 0
 * here) goes back to the checkpoint and evaluates the kept positions again: it continues to
 * the logits of a fresh evaluation, and the rows of the decode before the truncation stay
 * readable (a server reads every sequence's rows, then drops each one's rejected draft).
 * Below the checkpoint, where no snapshot is, it is refused by name. */
TEST(recurrent_truncate_past_the_checkpoint_replays) {
    if (!fx.recurrent) return;
    int32_t buf[2][MAX_LEN], *toks[2] = {buf[0], buf[1]};
    make_tokens(toks[0], 80, 25);
    memcpy(toks[1], toks[0], 70 * sizeof(int32_t));
    make_tokens(toks[1] + 70, 10, 26);
    float *ref1 = ref_logits(fx.m, toks[1], 80);
    float *ref[2] = {ref1, ref1};
    ob_context *c = ctx_new(fx.m, N_SEQ, 0, 32);
    ob_batch *b = NULL;
    ob_err err = {{0}};
    const int64_t nv = fx.m->hp.n_vocab;
    float *last = malloc((size_t)nv * sizeof *last);
    CHECK(ref1 && c && last);
    CHECK_STATUS(ob_batch_new(256, &b, &err), OB_OK, &err, "");
    int64_t next[N_SEQ] = {0};
    add_run(b, c, 0, toks, 80, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    CHECK_STATUS(ob_seq_truncate(c, 0, 70, &err), OB_OK, &err, "");
    CHECK(ob_seq_n_past(c, 0) == 70);
    ob_batch_clear(b);
    next[0] = 70;
    int32_t *t1[2] = {toks[1], toks[1]};
    add_run(b, c, 0, t1, 10, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    CHECK(check_batch(c, b, ref));
    /* the checkpoint is now 70: below it, with no snapshot there, refused */
    CHECK_STATUS(ob_seq_truncate(c, 0, 69, &err), OB_ERR_UNSUPPORTED, &err,
                 "can return only to 0 or 70 (its last checkpoint)");
    /* the rows of the decode before a replay stay as they were */
    ob_batch_clear(b);
    add_run(b, c, 1, toks, 80, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    memcpy(last, ob_batch_logits(c, 79), (size_t)nv * sizeof *last);
    CHECK_STATUS(ob_seq_truncate(c, 1, 75, &err), OB_OK, &err, "");
    CHECK(ob_batch_logits(c, 79) &&
          !memcmp(ob_batch_logits(c, 79), last, (size_t)nv * sizeof *last));
    ob_batch_clear(b);
    next[1] = 75;
    add_run(b, c, 1, toks, 5, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    CHECK(check_batch(c, b, ref));
    ob_batch_free(b);
    ob_context_free(c);
    free(last);
    free(ref1);
}

/* A recurrent sequence truncated to a block boundary whose state a snapshot holds (the last
 * one its decode crossed) continues from there to the logits of a fresh evaluation; a
 * boundary without one is refused, naming the ones it can go back to. */
TEST(recurrent_truncate_to_a_kept_block_boundary) {
    if (!fx.recurrent) return;
    int32_t buf[2][MAX_LEN], *toks[2] = {buf[0], buf[1]};
    make_tokens(toks[0], 80, 23);
    memcpy(toks[1], toks[0], 64 * sizeof(int32_t));
    make_tokens(toks[1] + 64, 16, 24);
    float *ref1 = ref_logits(fx.m, toks[1], 80);
    float *ref[2] = {ref1, ref1};
    ob_context *c = ctx_new(fx.m, N_SEQ, 0, 32);
    ob_batch *b = NULL;
    ob_err err = {{0}};
    CHECK(ref1 && c);
    CHECK_STATUS(ob_batch_new(256, &b, &err), OB_OK, &err, "");
    int64_t next[N_SEQ] = {0};
    add_run(b, c, 0, toks, 80, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    CHECK_STATUS(ob_seq_truncate(c, 0, 64, &err), OB_OK, &err, "");
    ob_batch_clear(b);
    next[0] = 64;
    int32_t *t1[2] = {toks[1], toks[1]};
    add_run(b, c, 0, t1, 16, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    CHECK(check_batch(c, b, ref));
    ob_batch_free(b);
    ob_context_free(c);
    free(ref1);
}

/* A prompt whose first blocks were evaluated by a finished sequence attaches them and
 * evaluates the rest; its logits equal a full evaluation. On gemma3 (sliding window) the
 * freed sequence's ring (window 64 + batch 32 rows) holds the window of a 96-position prefix
 * only, not of the 64 positions shared here: nothing attaches, and evaluating it all still
 * agrees. On qwen35 (recurrent layers) the state was kept at 96 only, not at 64: nothing
 * attaches either. */
TEST(prefix_attach_then_evaluate_the_rest) {
    int32_t buf[2][MAX_LEN], *toks[2] = {buf[0], buf[1]};
    make_tokens(toks[0], 100, 31);
    memcpy(toks[1], toks[0], 100 * sizeof(int32_t));
    make_tokens(toks[1] + 70, 30, 32); /* shares 70 tokens: two whole blocks */
    float *ref[2] = {ref_logits(fx.m, toks[0], 100), ref_logits(fx.m, toks[1], 100)};
    ob_context *c = ctx_new(fx.m, N_SEQ, 0, 32);
    ob_batch *b = NULL;
    ob_err err = {{0}};
    CHECK(ref[0] && ref[1] && c);
    CHECK_STATUS(ob_batch_new(256, &b, &err), OB_OK, &err, "");
    int64_t next[N_SEQ] = {0};
    add_run(b, c, 0, toks, 100, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    ob_seq_free(c, 0);
    ob_kv_stats ks;
    ob_kv_stats_get(c, &ks);
    CHECK_EQ_INT(ks.blocks_used, 0);
    const bool no_prefix = fx.swa || fx.recurrent;
    CHECK_EQ_INT(ks.blocks_cached, 4); /* three full blocks and the tail of 4 positions */
    int64_t got = -1;
    CHECK_STATUS(ob_seq_attach_prefix(c, 1, toks[1], 100, &got, &err), OB_OK, &err, "");
    CHECK_EQ_INT(got, no_prefix ? 0 : 64);
    ob_kv_stats_get(c, &ks);
    CHECK_EQ_INT(ks.prefix_hit_tokens, got);
    if (!no_prefix)
        CHECK_STATUS(ob_seq_attach_prefix(c, 1, toks[1], 100, &got, &err), OB_ERR_ARG, &err,
                     "expected an empty sequence");
    ob_batch_clear(b);
    next[1] = ob_seq_n_past(c, 1);
    add_run(b, c, 1, toks, 100 - next[1], next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    CHECK(check_batch(c, b, ref));
    ob_batch_free(b);
    ob_context_free(c);
    free(ref[0]);
    free(ref[1]);
}

/* Evaluates the rest of sequence s (toks[s], n tokens) after what it holds; every entry's
 * logits must match ref. */
static void finish_seq(ob_context *c, ob_batch *b, int32_t s, int32_t *const *toks, int64_t n,
                       float *const *ref) {
    ob_err err = {{0}};
    int64_t next[N_SEQ] = {0};
    next[s] = ob_seq_n_past(c, s);
    ob_batch_clear(b);
    add_run(b, c, s, toks, n - next[s], next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    CHECK(check_batch(c, b, ref));
}

/* The next turn of a conversation: the whole previous sequence (but its last partial block)
 * comes from the cache, on gemma3 too, whose sliding-window layers then continue the freed
 * sequence's ring, copied into another slot or in its own. Once the freed slot is written
 * again its ring is gone, and gemma3 attaches nothing. */
TEST(prefix_continues_a_freed_conversation) {
    int32_t buf[N_SEQ][MAX_LEN], *toks[N_SEQ] = {buf[0], buf[1], buf[2], buf[3]};
    make_tokens(toks[0], 100, 41);
    memcpy(toks[1], toks[0], 100 * sizeof(int32_t));
    make_tokens(toks[1] + 100, 30, 42);
    memcpy(toks[2], toks[1], 130 * sizeof(int32_t));
    make_tokens(toks[2] + 130, 20, 43);
    make_tokens(toks[3], 60, 44);
    float *ref[N_SEQ] = {ref_logits(fx.m, toks[0], 100), ref_logits(fx.m, toks[1], 130),
                         ref_logits(fx.m, toks[2], 150), ref_logits(fx.m, toks[3], 60)};
    ob_context *c = ctx_new(fx.m, N_SEQ, 0, 32);
    ob_batch *b = NULL;
    ob_err err = {{0}};
    CHECK(ref[0] && ref[1] && ref[2] && ref[3] && c);
    CHECK_STATUS(ob_batch_new(256, &b, &err), OB_OK, &err, "");
    finish_seq(c, b, 0, toks, 100, ref);
    ob_seq_free(c, 0);
    /* Into another slot: 3 blocks and the 4 positions of the tail; the ring comes from slot
     * 0. Recurrent layers keep their state at block boundaries: the one at 96 comes along. */
    int64_t got = -1;
    CHECK_STATUS(ob_seq_attach_prefix(c, 1, toks[1], 130, &got, &err), OB_OK, &err, "");
    CHECK_EQ_INT(got, fx.recurrent ? 96 : 100);
    float *ref1[N_SEQ] = {NULL, ref[1], NULL, NULL};
    finish_seq(c, b, 1, toks, 130, ref1);
    /* The turn after, in its own slot: 4 blocks and the tail's 2 positions. */
    ob_seq_free(c, 1);
    CHECK_STATUS(ob_seq_attach_prefix(c, 1, toks[2], 150, &got, &err), OB_OK, &err, "");
    CHECK_EQ_INT(got, fx.recurrent ? 128 : 130);
    float *ref2[N_SEQ] = {NULL, ref[2], NULL, NULL};
    int32_t *t2[N_SEQ] = {NULL, toks[2], NULL, NULL};
    finish_seq(c, b, 1, t2, 150, ref2);
    /* Slot 0 was parked with the first 100 tokens; writing another prompt there drops it. */
    int32_t *t3[N_SEQ] = {toks[3], NULL, NULL, NULL};
    float *ref3[N_SEQ] = {ref[3], NULL, NULL, NULL};
    finish_seq(c, b, 0, t3, 60, ref3);
    ob_seq_free(c, 0);
    ob_seq_free(c, 1);
    /* toks[0] with another ending: its 3 cached blocks are continued by slot 0's ring only
     * (slot 1's holds the windows of 128 and more positions). */
    memcpy(toks[3], toks[0], 100 * sizeof(int32_t));
    make_tokens(toks[3] + 100, 20, 45);
    float *ref4[N_SEQ] = {NULL, NULL, ref_logits(fx.m, toks[3], 120), NULL};
    CHECK(ref4[2] != NULL);
    CHECK_STATUS(ob_seq_attach_prefix(c, 2, toks[3], 120, &got, &err), OB_OK, &err, "");
    CHECK_EQ_INT(got, fx.swa ? 0 : 96);
    int32_t *t4[N_SEQ] = {NULL, NULL, toks[3], NULL};
    finish_seq(c, b, 2, t4, 120, ref4);
    free(ref4[2]);
    if (fx.recurrent) {
        /* A prompt parting from toks[0] after 70 tokens: no state was kept at 64, so nothing
         * attaches, but its evaluation keeps one there; the next prompt sharing those 70
         * tokens attaches 64 positions and continues to the logits of a full evaluation. */
        ob_seq_free(c, 2);
        int32_t part[2][100], *tp[N_SEQ] = {NULL, NULL, NULL, NULL};
        float *rp[N_SEQ] = {NULL, NULL, NULL, NULL};
        for (int i = 0; i < 2; i++) {
            memcpy(part[i], toks[0], 70 * sizeof(int32_t));
            make_tokens(part[i] + 70, 30, 46 + i);
            tp[1 + i] = part[i];
            rp[1 + i] = ref_logits(fx.m, part[i], 100);
            CHECK(rp[1 + i] != NULL);
            CHECK_STATUS(ob_seq_attach_prefix(c, 1 + i, part[i], 100, &got, &err), OB_OK, &err,
                         "");
            CHECK_EQ_INT(got, i == 0 ? 0 : 64);
            finish_seq(c, b, 1 + i, tp, 100, rp);
        }
        free(rp[1]);
        free(rp[2]);
    }
    ob_batch_free(b);
    ob_context_free(c);
    for (int i = 0; i < N_SEQ; i++) free(ref[i]);
}

/* Which free sequence a prompt takes (ob_seq_pick): on gemma3, the one whose parked window
 * it continues, else one with nothing parked, else the one parked longest ago, so a request
 * in between does not cost a conversation its next turn's prefix; elsewhere the first free. */
TEST(pick_keeps_parked_windows) {
    int32_t a[130], bt[60], other[60];
    make_tokens(a, 100, 51);
    make_tokens(a + 100, 30, 52);
    make_tokens(bt, 60, 53);
    make_tokens(other, 60, 54);
    float *ra = ref_logits(fx.m, a, 100), *rb = ref_logits(fx.m, bt, 60);
    ob_context *c = ctx_new(fx.m, N_SEQ, 0, 32);
    ob_batch *b = NULL;
    ob_err err = {{0}};
    CHECK(ra && rb && c);
    CHECK_STATUS(ob_batch_new(256, &b, &err), OB_OK, &err, "");
    int32_t *t0[N_SEQ] = {a, NULL, NULL, NULL}, *t1[N_SEQ] = {NULL, bt, NULL, NULL};
    float *r0[N_SEQ] = {ra, NULL, NULL, NULL}, *r1[N_SEQ] = {NULL, rb, NULL, NULL};
    finish_seq(c, b, 0, t0, 100, r0); /* parked first */
    ob_seq_free(c, 0);
    finish_seq(c, b, 1, t1, 60, r1); /* parked second */
    ob_seq_free(c, 1);
    bool used[N_SEQ] = {false, false, false, true};
    CHECK_EQ_INT(ob_seq_pick(c, used, N_SEQ, other, 60), fx.swa ? 2 : 0); /* nothing parked */
    used[2] = true;
    CHECK_EQ_INT(ob_seq_pick(c, used, N_SEQ, other, 60), 0);  /* the oldest parked */
    used[0] = true;
    CHECK_EQ_INT(ob_seq_pick(c, used, N_SEQ, other, 60), 1);
    used[1] = true;
    CHECK_EQ_INT(ob_seq_pick(c, used, N_SEQ, other, 60), -1); /* all in use */
    /* the next turn of the first conversation goes back to slot 0, the one continuing it,
     * even with an empty slot at hand, and attaches its three full blocks */
    const bool free_two[N_SEQ] = {false, true, false, true};
    const int32_t pick = ob_seq_pick(c, free_two, N_SEQ, a, 130);
    CHECK_EQ_INT(pick, 0);
    int64_t got = -1;
    CHECK_STATUS(ob_seq_attach_prefix(c, pick, a, 130, &got, &err), OB_OK, &err, "");
    CHECK_EQ_INT(got, fx.recurrent ? 96 : 100); /* the tail too, but for recurrent layers */
    ob_batch_free(b);
    ob_context_free(c);
    free(ra);
    free(rb);
}

/* A context shorter than the sliding window (its rings hold the whole context) still parks
 * rings and attaches them. */
TEST(prefix_in_a_context_shorter_than_the_window) {
    ob_context_params p;
    ob_context_params_init(&p);
    p.n_ctx = 48;
    p.n_threads = 2;
    p.n_seq_max = 2;
    ob_context *c = NULL;
    ob_err err = {{0}};
    CHECK_STATUS(ob_context_new(fx.m, &p, &c, &err), OB_OK, &err, "");
    if (!c) return;
    int32_t toks[48];
    make_tokens(toks, 48, 51);
    CHECK_STATUS(ob_eval(c, toks, 40, false, &err), OB_OK, &err, "");
    ob_seq_free(c, 0);
    int64_t got = -1;
    CHECK_STATUS(ob_seq_attach_prefix(c, 1, toks, 48, &got, &err), OB_OK, &err, "");
    /* the block and the tail (recurrent layers: the state kept at 32 comes along) */
    CHECK_EQ_INT(got, fx.recurrent ? 32 : 40);
    ob_context_free(c);
}

static int abort_after; /* calls of the callback before it says stop */

static bool abort_cb(void *user) {
    (void)user;
    return abort_after-- <= 0;
}

/* A batch cancelled in its second pass leaves both sequences as they were; the same batch then
 * runs and agrees with the references. */
TEST(cancel_leaves_caches_unchanged) {
    int32_t buf[2][MAX_LEN], *toks[2] = {buf[0], buf[1]};
    make_tokens(toks[0], 100, 41);
    make_tokens(toks[1], 100, 42);
    float *ref[2] = {ref_logits(fx.m, toks[0], 100), ref_logits(fx.m, toks[1], 100)};
    ob_context *c = ctx_new(fx.m, N_SEQ, 0, 32);
    ob_batch *b = NULL;
    ob_err err = {{0}};
    CHECK(ref[0] && ref[1] && c);
    CHECK_STATUS(ob_batch_new(256, &b, &err), OB_OK, &err, "");
    int64_t next[N_SEQ] = {0};
    add_run(b, c, 0, toks, 30, next);
    add_run(b, c, 1, toks, 5, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    ob_batch_clear(b);

    add_run(b, c, 1, toks, 40, next);
    add_run(b, c, 0, toks, 3, next);
    ob_context_set_abort(c, abort_cb, NULL);
    abort_after = (int)fx.m->hp.n_layer + 1; /* into the second pass */
    CHECK_STATUS(ob_decode(c, b, &err), OB_ERR_CANCELLED, &err, "cancelled");
    CHECK_EQ_INT(ob_seq_n_past(c, 0), 30);
    CHECK_EQ_INT(ob_seq_n_past(c, 1), 5);
    CHECK(ob_batch_logits(c, 0) == NULL);
    ob_kv_stats ks;
    ob_kv_stats_get(c, &ks);
    CHECK_EQ_INT(ks.blocks_used, 2); /* 30 and 5 positions: one block each */
    ob_context_set_abort(c, NULL, NULL);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    CHECK(check_batch(c, b, ref));
    ob_batch_free(b);
    ob_context_free(c);
    free(ref[0]);
    free(ref[1]);
}

/* A pool of 3 blocks: a batch needing more fails with OB_ERR_LIMIT naming the counts and
 * changes nothing; after freeing a sequence it runs. A sequence may use far more than
 * kv_size / n_seq_max. */
TEST(pool_too_small_fails_and_changes_nothing) {
    int32_t buf[2][MAX_LEN], *toks[2] = {buf[0], buf[1]};
    make_tokens(toks[0], 100, 51);
    make_tokens(toks[1], 100, 52);
    float *ref[2] = {ref_logits(fx.m, toks[0], 100), ref_logits(fx.m, toks[1], 100)};
    ob_context *c = ctx_new(fx.m, N_SEQ, 96, 32);
    ob_batch *b = NULL;
    ob_err err = {{0}};
    CHECK(ref[0] && ref[1] && c);
    CHECK_STATUS(ob_batch_new(256, &b, &err), OB_OK, &err, "");
    int64_t next[N_SEQ] = {0};
    add_run(b, c, 0, toks, 70, next); /* 3 blocks: the whole pool for one of 4 sequences */
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    ob_batch_clear(b);
    add_run(b, c, 0, toks, 1, next);
    add_run(b, c, 1, toks, 10, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_ERR_LIMIT, &err, "needs 1 blocks");
    CHECK(strstr(err.msg, "0 are free") != NULL);
    CHECK_EQ_INT(ob_seq_n_past(c, 0), 70);
    CHECK_EQ_INT(ob_seq_n_past(c, 1), 0);
    if (!fx.recurrent) { /* a recurrent sequence cannot go back to 32 */
        ob_seq_truncate(c, 0, 32, &err);
        CHECK_STATUS(ob_decode(c, b, &err), OB_ERR_ARG, &err, "expected 32");
    }
    ob_seq_free(c, 0);
    ob_batch_clear(b);
    next[0] = next[1] = 0;
    add_run(b, c, 1, toks, 90, next);
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    CHECK(check_batch(c, b, ref));
    ob_batch_free(b);
    ob_context_free(c);
    free(ref[0]);
    free(ref[1]);
}

TEST(bad_entries_are_named) {
    ob_context *c = ctx_new(fx.m, 2, 0, 32);
    ob_batch *b = NULL;
    ob_err err = {{0}};
    CHECK(c);
    CHECK_STATUS(ob_batch_new(2, &b, &err), OB_OK, &err, "");
    CHECK_STATUS(ob_batch_add(b, 5, 0, 0, true, &err), OB_OK, &err, "");
    CHECK_STATUS(ob_batch_add(b, 5, 2, 0, true, &err), OB_OK, &err, "");
    CHECK_STATUS(ob_batch_add(b, 5, 2, 0, true, &err), OB_ERR_LIMIT, &err, "capacity of 2");
    CHECK_STATUS(ob_decode(c, b, &err), OB_ERR_ARG, &err, "entry 1: sequence 0 at position 2, "
                 "expected 1");
    b->seq[1] = 2;
    CHECK_STATUS(ob_decode(c, b, &err), OB_ERR_ARG, &err, "entry 1: sequence 2, expected 0..1");
    b->seq[1] = 1;
    b->pos[1] = 0;
    b->token[1] = 100000;
    CHECK_STATUS(ob_decode(c, b, &err), OB_ERR_ARG, &err, "entry 1: token id 100000");
    b->token[1] = 6;
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    CHECK(ob_batch_logits(c, 1) != NULL && ob_batch_logits(c, 2) == NULL);
    CHECK(ob_batch_logits(c, -1) == NULL);
    b->logits[0] = false;
    b->pos[0] = b->pos[1] = 1;
    CHECK_STATUS(ob_decode(c, b, &err), OB_OK, &err, "");
    CHECK(ob_batch_logits(c, 0) == NULL && ob_batch_logits(c, 1) != NULL);
    CHECK_EQ_INT(ob_context_n_past(c), 2); /* the single-sequence view is sequence 0 */
    ob_batch_free(b);
    ob_context_free(c);
}

/* twin: an F32 model of a family that also runs as Q8_0 here. */
static const struct {
    const char *arch, *type;
    double tol;
    bool twin;
} CASES[] = {
    {"llama", "f32", 1e-5, true},     {"llama", "q8_0", 1e-4, false},
    {"qwen2", "f32", 1e-5, true},     {"qwen2", "q8_0", 1e-4, false},
    {"qwen3", "f32", 1e-5, true},     {"qwen3", "q8_0", 1e-4, false},
    {"gemma3", "f32", 1e-5, true},    {"gemma3", "q8_0", 1e-4, false},
    {"qwen3moe", "f32", 1e-5, true},  {"qwen3moe", "q8_0", 1e-4, false},
    {"qwen35", "f32", 1e-4, false},   {"qwen35", "f16", 5e-3, false},
    {"qwen3next", "f32", 1e-4, false},
};

/* Under the sanitizers the twins are left out: they run the same batching and cache code as
 * their Q8_0 models, and instrumented F32 dot products take most of this program's time
 * there. `make test` runs them all. */
#ifdef __SANITIZE_ADDRESS__
static const bool skip_twins = true;
#else
static const bool skip_twins = false;
#endif

int main(void) {
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        if (skip_twins && CASES[i].twin) continue;
        fx = (fixture){CASES[i].arch, CASES[i].type, NULL, CASES[i].tol, false, false};
        fx.m = load_synth(fx.arch, fx.type);
        if (!fx.m) {
            fprintf(stderr, "skip %s %s: no synthetic model (build/outboard synth failed)\n",
                    fx.arch, fx.type);
            t_skipped++;
            continue;
        }
        fx.swa = fx.m->hp.n_swa > 0;
        fx.recurrent = fx.m->hp.recurrent != NULL;
        worst = 0.0;
        RUN(mixed_prefill_and_decode_match_single_sequences);
        RUN(fork_then_diverge);
        RUN(truncate_then_evaluate_equals_fresh);
        RUN(recurrent_truncate_to_a_kept_block_boundary);
        RUN(recurrent_truncate_past_the_checkpoint_replays);
        RUN(prefix_attach_then_evaluate_the_rest);
        RUN(prefix_continues_a_freed_conversation);
        RUN(pick_keeps_parked_windows);
        RUN(prefix_in_a_context_shorter_than_the_window);
        RUN(cancel_leaves_caches_unchanged);
        RUN(pool_too_small_fails_and_changes_nothing);
        RUN(bad_entries_are_named);
        fprintf(stderr, "%s %s: largest relative difference %.3g (tolerance %g)\n", fx.arch,
                fx.type, worst, fx.tol);
        ob_model_free(fx.m);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    if (tmp_dir[0] && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    return t_summary();
}
