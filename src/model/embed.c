/*
 * ob_embed: one vector per input from the model's final hidden states. The inputs of a call
 * are spread over the context's empty sequences and evaluated as multi-sequence batches
 * through model_decode_run with hidden rows (the output norm applied, the vocabulary
 * projection skipped); each input's rows are then pooled as its GGUF names it (mean, first
 * or last token, as llama.cpp pools) and L2-normalised on request. The sequences are emptied
 * afterwards, so a call leaves the cache as it found it (their full blocks stay as prefix
 * cache like any freed sequence's).
 */
#include "core/alloc.h"
#include "core/err.h"
#include "model/context.h"

#include <math.h>
#include <string.h>

static const char *const POOLING_NAMES[] = {"none", "mean", "cls", "last"};

const char *ob_pooling_name(ob_pooling p) {
    return p >= OB_POOLING_NONE && p <= OB_POOLING_LAST ? POOLING_NAMES[p] : "unknown";
}

bool ob_pooling_parse(const char *name, ob_pooling *out) {
    for (int i = OB_POOLING_NONE; i <= OB_POOLING_LAST; i++)
        if (name && !strcmp(name, POOLING_NAMES[i])) {
            *out = (ob_pooling)i;
            return true;
        }
    return false;
}

ob_pooling ob_model_pooling(const ob_model *m) { return m->hp.pooling; }

/* Every input non-empty, within the vocabulary and within n_ctx and the pool. */
static ob_status check_inputs(const ob_context *c, const int32_t *const *tokens,
                              const int64_t *n_tokens, int64_t n_inputs, ob_err *err) {
    const int64_t n_vocab = c->model->hp.n_vocab;
    const int64_t pool_positions = kv_pool_n_blocks(c->pool) * KV_BLOCK;
    for (int64_t i = 0; i < n_inputs; i++) {
        const int64_t n = n_tokens[i];
        if (n < 1 || !tokens[i])
            return ob_fail(err, OB_ERR_ARG, "embed: input %lld is empty", (long long)i);
        if (n > c->n_ctx || n > pool_positions)
            return ob_fail(err, OB_ERR_LIMIT, "embed: input %lld has %lld tokens, the context "
                           "holds %lld", (long long)i, (long long)n,
                           (long long)(c->n_ctx < pool_positions ? c->n_ctx : pool_positions));
        for (int64_t t = 0; t < n; t++)
            if (tokens[i][t] < 0 || tokens[i][t] >= n_vocab)
                return ob_fail(err, OB_ERR_ARG, "embed: input %lld: token %lld is id %d, "
                               "expected 0..%lld", (long long)i, (long long)t, tokens[i][t],
                               (long long)(n_vocab - 1));
    }
    return OB_OK;
}

/* Pools rows (n, e) of one input into out (e) and normalises it on request. Sums in double:
 * a mean over thousands of rows keeps its low bits. */
static void pool_rows(const float *rows, int64_t n, int64_t e, ob_pooling pooling,
                      bool normalize, float *out) {
    if (pooling == OB_POOLING_MEAN) {
        for (int64_t j = 0; j < e; j++) {
            double sum = 0;
            for (int64_t t = 0; t < n; t++) sum += rows[t * e + j];
            out[j] = (float)(sum / (double)n);
        }
    } else {
        const float *row = pooling == OB_POOLING_CLS ? rows : rows + (n - 1) * e;
        memcpy(out, row, (size_t)e * sizeof(float));
    }
    if (!normalize) return;
    double ss = 0;
    for (int64_t j = 0; j < e; j++) ss += (double)out[j] * out[j];
    if (ss <= 0) return; /* a zero vector stays zero, as llama.cpp leaves it */
    const float inv = (float)(1.0 / sqrt(ss));
    for (int64_t j = 0; j < e; j++) out[j] *= inv;
}

/* Evaluates inputs [i0, i1) on sequences seqs[0..] as one batch of hidden rows and pools
 * each into its row of out. entries: scratch arrays sized for the group's tokens. */
static ob_status embed_group(ob_context *c, const int32_t *const *tokens,
                             const int64_t *n_tokens, int64_t i0, int64_t i1,
                             const int32_t *seqs, ob_pooling pooling, bool normalize,
                             float *out, ob_err *err) {
    int64_t total = 0;
    for (int64_t i = i0; i < i1; i++) total += n_tokens[i];
    const size_t n = (size_t)total;
    int32_t *tok = ob_alloc(n, sizeof *tok), *seq = ob_alloc(n, sizeof *seq);
    int64_t *pos = ob_alloc(n, sizeof *pos);
    bool *want = ob_alloc(n, sizeof *want);
    ob_status st = OB_OK;
    if (!tok || !seq || !pos || !want)
        st = ob_fail(err, OB_ERR_NOMEM, "embed: out of memory for %lld tokens",
                     (long long)total);
    int64_t k = 0;
    for (int64_t i = i0; !st && i < i1; i++)
        for (int64_t t = 0; t < n_tokens[i]; t++, k++) {
            tok[k] = tokens[i][t];
            pos[k] = t;
            seq[k] = seqs[i - i0];
            /* only the rows the pooling reads are normed and copied out */
            want[k] = pooling == OB_POOLING_MEAN || (pooling == OB_POOLING_CLS && t == 0) ||
                      (pooling == OB_POOLING_LAST && t == n_tokens[i] - 1);
        }
    if (!st) st = model_decode_run(c, tok, pos, seq, want, total, true, err);
    const int64_t e = c->model->hp.n_embd;
    k = 0;
    for (int64_t i = i0; !st && i < i1; i++) {
        /* an input's wanted rows are consecutive: entries are in order within the batch */
        int64_t first = k;
        while (!want[first]) first++;
        const int64_t n_rows = pooling == OB_POOLING_MEAN ? n_tokens[i] : 1;
        const float *rows = c->logits + (size_t)c->entry_row[first] * (size_t)e;
        pool_rows(rows, n_rows, e, pooling, normalize, out + (size_t)i * (size_t)e);
        k += n_tokens[i];
    }
    for (int64_t i = i0; i < i1; i++) ob_seq_free(c, seqs[i - i0]);
    ob_free(tok);
    ob_free(seq);
    ob_free(pos);
    ob_free(want);
    return st;
}

ob_status ob_embed(ob_context *c, const int32_t *const *tokens, const int64_t *n_tokens,
                   int64_t n_inputs, ob_pooling pooling, bool normalize, float *out,
                   ob_err *err) {
    if (pooling < OB_POOLING_MEAN || pooling > OB_POOLING_LAST)
        return ob_fail(err, OB_ERR_ARG, "embed: pooling '%s' gives no vector per input: "
                       "mean, cls or last is needed", ob_pooling_name(pooling));
    if (n_inputs < 1 || !tokens || !n_tokens || !out)
        return ob_fail(err, OB_ERR_ARG, "embed: %lld inputs, expected at least 1",
                       (long long)n_inputs);
    ob_status st = check_inputs(c, tokens, n_tokens, n_inputs, err);
    if (st) return st;
    int32_t *seqs = ob_alloc((size_t)c->n_seq, sizeof *seqs);
    if (!seqs) return ob_fail(err, OB_ERR_NOMEM, "embed: out of memory");
    int32_t n_free = 0;
    for (int32_t s = 0; s < c->n_seq; s++)
        if (kv_pool_seq_len(c->pool, s) == 0) seqs[n_free++] = s;
    if (n_free == 0)
        st = ob_fail(err, OB_ERR_LIMIT, "embed: all %d sequences of the context hold cache; "
                     "free one first", c->n_seq);
    /* Groups of consecutive inputs: at most one per empty sequence, and no more blocks than
     * the pool has (a lone input always fits: checked above). */
    const int64_t pool_blocks = kv_pool_n_blocks(c->pool);
    for (int64_t i0 = 0; !st && i0 < n_inputs;) {
        int64_t i1 = i0, blocks = 0;
        while (i1 < n_inputs && i1 - i0 < n_free) {
            const int64_t b = (n_tokens[i1] + KV_BLOCK - 1) / KV_BLOCK;
            if (i1 > i0 && blocks + b > pool_blocks) break;
            blocks += b;
            i1++;
        }
        st = embed_group(c, tokens, n_tokens, i0, i1, seqs, pooling, normalize, out, err);
        i0 = i1;
    }
    ob_free(seqs);
    return st;
}
