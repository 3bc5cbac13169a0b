/*
 * A draft model (spec.h): a smaller model with the target's vocabulary proposes the next
 * tokens greedily, one cheap forward pass each, in a context of its own with one sequence per
 * target sequence. Before drafting, a sequence's draft cache is brought to the target's
 * history: the longest common prefix is kept (what it drafted and the target accepted is
 * already there), the rest is evaluated in one batch. A draft is only a proposal: whatever goes
 * wrong here (a truncation a sliding-window ring refuses, a full context) means a shorter or
 * no draft, never a wrong answer.
 */
#include "spec/spec.h"

#include "core/alloc.h"
#include "core/err.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

#include <string.h>

struct spec_drafter {
    ob_model *model; /* borrowed */
    ob_context *ctx; /* owned */
    int32_t n_seq;
    int64_t n_ctx;
    int32_t *cached;   /* (n_seq, n_ctx) tokens in each sequence's draft cache */
    int64_t *n_cached; /* (n_seq) */
};

/* Same number of tokens and the same text for every one (the scores and merges may differ:
 * only ids cross between the models). */
static ob_status check_vocab(const ob_model *target, const ob_model *draft, ob_err *err) {
    const char *dname = gguf_name(draft->file);
    if (!target->vocab || !draft->vocab)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "draft model %s: %s has no usable vocabulary",
                       dname, target->vocab ? "the draft model" : "the target model");
    const int64_t nt = tok_n_vocab(target->vocab), nd = tok_n_vocab(draft->vocab);
    if (nt != nd)
        return ob_fail(err, OB_ERR_ARG,
                       "draft model %s: its vocabulary has %lld tokens, the "
                       "target's (%s) %lld: a draft model needs the same vocabulary",
                       dname, (long long)nd, gguf_name(target->file), (long long)nt);
    for (int64_t id = 0; id < nt; id++) {
        const ob_str a = tok_piece(target->vocab, (int32_t)id);
        const ob_str b = tok_piece(draft->vocab, (int32_t)id);
        if (a.len != b.len || memcmp(a.ptr, b.ptr, a.len))
            return ob_fail(err, OB_ERR_ARG,
                           "draft model %s: token %lld is '%.*s', in the "
                           "target (%s) '%.*s': a draft model needs the same vocabulary",
                           dname, (long long)id, (int)(b.len < 40 ? b.len : 40), b.ptr,
                           gguf_name(target->file), (int)(a.len < 40 ? a.len : 40), a.ptr);
    }
    if (draft->hp.n_vocab != target->hp.n_vocab)
        return ob_fail(err, OB_ERR_ARG, "draft model %s: %lld output rows, the target %lld", dname,
                       (long long)draft->hp.n_vocab, (long long)target->hp.n_vocab);
    return OB_OK;
}

ob_status spec_drafter_new(const ob_model *target, ob_model *draft, int32_t n_seq, int64_t n_ctx,
                           int n_threads, spec_drafter **out, ob_err *err) {
    *out = NULL;
    ob_status st = check_vocab(target, draft, err);
    if (st) return st;
    spec_drafter *d = ob_calloc(1, sizeof *d);
    if (!d) return ob_fail(err, OB_ERR_NOMEM, "out of memory for the draft model");
    d->model = draft;
    d->n_seq = n_seq;
    d->n_ctx = n_ctx;
    ob_context_params cp;
    ob_context_params_init(&cp);
    cp.n_ctx = n_ctx;
    cp.n_threads = n_threads;
    cp.n_seq_max = n_seq;
    cp.kv_size = n_ctx * n_seq; /* each sequence may draft over a whole context */
    if ((st = ob_context_new(draft, &cp, &d->ctx, err))) {
        ob_err_prefix(err, "draft model");
        spec_drafter_free(d);
        return st;
    }
    d->cached = ob_alloc((size_t)n_seq * (size_t)n_ctx, sizeof *d->cached);
    d->n_cached = ob_calloc((size_t)n_seq, sizeof *d->n_cached);
    if (!d->cached || !d->n_cached) {
        spec_drafter_free(d);
        return ob_fail(err, OB_ERR_NOMEM, "out of memory for the draft model's %lld positions",
                       (long long)n_ctx);
    }
    *out = d;
    return OB_OK;
}

void spec_drafter_free(spec_drafter *d) {
    if (!d) return;
    ob_context_free(d->ctx);
    ob_free(d->cached);
    ob_free(d->n_cached);
    ob_free(d);
}

void spec_drafter_forget(spec_drafter *d, int32_t seq) {
    if (!d || seq < 0 || seq >= d->n_seq) return;
    ob_seq_free(d->ctx, seq);
    d->n_cached[seq] = 0;
}

static int32_t argmax(const float *l, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return (int32_t)best;
}

/* Evaluates toks (n) at positions pos.. of seq; the last one's logits kept. */
static bool eval(spec_drafter *d, int32_t seq, const int32_t *toks, int64_t n, int64_t pos) {
    ob_batch *b = NULL;
    if (ob_batch_new(n, &b, NULL)) return false;
    for (int64_t i = 0; i < n; i++)
        ob_batch_add(b, toks[i], pos + i, seq, i == n - 1, NULL);
    const bool ok = !ob_decode(d->ctx, b, NULL);
    ob_batch_free(b);
    return ok;
}

int spec_drafter_draft(spec_drafter *d, int32_t seq, const int32_t *hist, int64_t n, int max,
                       int32_t *out) {
    if (seq < 0 || seq >= d->n_seq || n < 1 || max < 1) return 0;
    if (n + max > d->n_ctx) max = (int)(d->n_ctx - n);
    if (max < 1) return 0;
    int32_t *cached = d->cached + (size_t)seq * (size_t)d->n_ctx;
    int64_t keep = 0;
    while (keep < d->n_cached[seq] && keep < n && cached[keep] == hist[keep])
        keep++;
    if (keep == n) keep = n - 1; /* the last token is evaluated again, for its logits */
    if (ob_seq_truncate(d->ctx, seq, keep, NULL)) { /* a ring that cannot go back: start over */
        ob_seq_free(d->ctx, seq);
        keep = 0;
    }
    d->n_cached[seq] = keep;
    if (!eval(d, seq, hist + keep, n - keep, keep)) {
        spec_drafter_forget(d, seq);
        return 0;
    }
    memcpy(cached + keep, hist + keep, (size_t)(n - keep) * sizeof *hist);
    d->n_cached[seq] = n;
    const int64_t nv = d->model->hp.n_vocab;
    int got = 0;
    int64_t row = n - keep - 1; /* the entry whose logits come next: the prefill's last */
    for (;;) {
        const float *l = ob_batch_logits(d->ctx, row);
        if (!l) break;
        row = 0; /* from now on one entry per pass */
        out[got] = argmax(l, nv);
        got++;
        if (got == max || ob_token_is_eog(d->model, out[got - 1])) break;
        if (!eval(d, seq, &out[got - 1], 1, n + got - 1)) break;
        cached[n + got - 1] = out[got - 1];
        d->n_cached[seq] = n + got;
    }
    return got;
}
