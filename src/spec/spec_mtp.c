/*
 * The multi-token-prediction drafter (spec.h): Qwen3.5's MTP block (model/qwen35_mtp.h) drafts
 * from the target's own hidden states, as llama.cpp's draft-mtp does. Its entry at position p
 * pairs the token x_p with the target's hidden state at p - 1 (zeros before position 0) and
 * predicts x_{p+1}; its cache holds one entry per position the target kept.
 *
 * Before drafting, a sequence's entries are brought up to the target's history: the longest
 * prefix of it the entries were made for is kept, and the rest, up to and including the
 * pending token (whose entry pairs it with the hidden state of the last kept position, the
 * row that sampled it), is evaluated from the hidden states the target's last decode kept
 * (model_context_hidden): a prompt's prefill, or a verification pass whose accepted rows
 * these are. That entry's logits give the first draft token; each further one comes from an
 * entry of the token before it and the block's own output state, at the next position, and
 * is replaced by the target's next time. A prompt taken in several decodes (the server's
 * chunks) is followed decode by decode (spec_mtp_observe), keeping the state of each chunk's
 * last position for the next chunk's first entry. Where the states do not reach back far
 * enough, the entries start where they do and the earlier positions keep whatever the cache
 * held: the drafts may be worse, never the output.
 */
#include "spec/spec.h"

#include "core/alloc.h"
#include "core/err.h"
#include "model/context.h"
#include "model/qwen35_mtp.h"

#include <string.h>

struct spec_mtp {
    const ob_model *model;  /* borrowed */
    const ob_context *target; /* borrowed: the context whose hidden states it reads */
    model_mtp_ctx *x;       /* owned */
    int32_t n_seq;
    int64_t n_ctx, max_rows;
    int32_t *cached;        /* (n_seq, n_ctx) the token of each sequence's entries */
    int64_t *n_cached;      /* (n_seq) entries made for the target's history */
    float *h;               /* (max_rows, n_embd) the target's hidden states of a pass */
    float *h_last;          /* (n_embd) the block's output state of the last entry */
    float *kept;            /* (n_seq, n_embd) per sequence, the target's state at kept_pos */
    int64_t *kept_pos;      /* (n_seq) -1 = none */
    float *logits;          /* (n_vocab) */
};

ob_status spec_mtp_new(const ob_model *m, ob_context *target, int32_t n_seq, int n_threads,
                       spec_mtp **out, ob_err *err) {
    *out = NULL;
    const int64_t n_ctx = ob_context_n_ctx(target);
    const int64_t max_rows = target->n_batch > SPEC_MAX_DRAFT ? target->n_batch
                                                              : SPEC_MAX_DRAFT + 1;
    spec_mtp *d = ob_calloc(1, sizeof *d);
    if (!d) return ob_fail(err, OB_ERR_NOMEM, "out of memory for the MTP drafter");
    *d = (spec_mtp){.model = m, .target = target, .n_seq = n_seq, .n_ctx = n_ctx,
                    .max_rows = max_rows};
    ob_status st = model_mtp_ctx_new(m, n_seq, n_ctx, max_rows, n_threads, &d->x, err);
    if (st) {
        spec_mtp_free(d);
        return st;
    }
    const size_t e = (size_t)m->hp.n_embd;
    d->cached = ob_alloc((size_t)n_seq * (size_t)n_ctx, sizeof *d->cached);
    d->n_cached = ob_calloc((size_t)n_seq, sizeof *d->n_cached);
    d->h = ob_alloc((size_t)max_rows * e, sizeof *d->h);
    d->h_last = ob_alloc(e, sizeof *d->h_last);
    d->logits = ob_alloc((size_t)m->hp.n_vocab, sizeof *d->logits);
    d->kept = ob_alloc((size_t)n_seq * e, sizeof *d->kept);
    d->kept_pos = ob_alloc((size_t)n_seq, sizeof *d->kept_pos);
    for (int32_t s = 0; d->kept_pos && s < n_seq; s++) d->kept_pos[s] = -1;
    if (!d->cached || !d->n_cached || !d->h || !d->h_last || !d->logits || !d->kept ||
        !d->kept_pos) {
        spec_mtp_free(d);
        return ob_fail(err, OB_ERR_NOMEM, "out of memory for the MTP drafter");
    }
    model_context_keep_hidden(target, true);
    *out = d;
    return OB_OK;
}

ob_status spec_mtp_for(const spec_params *p, const ob_model *m, ob_context *target,
                       bool have_drafter, int32_t n_seq, spec_mtp **out, ob_err *err) {
    *out = NULL;
    const char *why = NULL;
    const bool have = model_mtp_available(m, &why);
    if (p->mode == SPEC_MODE_MTP && !have)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "--spec mtp: %s", why);
    if (p->mode == SPEC_MODE_MTP || (p->mode == SPEC_MODE_AUTO && have && !have_drafter))
        return spec_mtp_new(m, target, n_seq, ob_context_n_threads(target), out, err);
    return OB_OK;
}

void spec_mtp_free(spec_mtp *d) {
    if (!d) return;
    model_mtp_ctx_free(d->x);
    ob_free(d->cached);
    ob_free(d->n_cached);
    ob_free(d->h);
    ob_free(d->h_last);
    ob_free(d->logits);
    ob_free(d->kept);
    ob_free(d->kept_pos);
    ob_free(d);
}

void spec_mtp_forget(spec_mtp *d, int32_t seq) {
    if (!d || seq < 0 || seq >= d->n_seq) return;
    d->n_cached[seq] = 0;
    d->kept_pos[seq] = -1;
}

void spec_mtp_attach(spec_mtp *d, ob_context *target) {
    if (!d) return;
    d->target = target;
    model_context_keep_hidden(target, true);
    for (int32_t s = 0; s < d->n_seq; s++) spec_mtp_forget(d, s);
}

/* The target's final state at position pos of seq: from its last decode, or the one kept from
 * an earlier decode; NULL when neither has it. */
static const float *state_at(const spec_mtp *d, int32_t seq, int64_t pos) {
    const float *h = model_context_hidden(d->target, seq, pos);
    if (h || pos != d->kept_pos[seq]) return h;
    return d->kept + (size_t)seq * (size_t)d->model->hp.n_embd;
}

static int32_t argmax(const float *l, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return (int32_t)best;
}

/* The first position from which every entry up to n - 1 has its input state in the target's
 * last decode (at least keep); n when even the last has none. */
static int64_t catch_up_from(const spec_mtp *d, int32_t seq, int64_t keep, int64_t n) {
    int64_t from = n;
    while (from > keep && (from - 1 == 0 || state_at(d, seq, from - 2))) from--;
    return from;
}

/* Entries [from, n) of seq from hist and the target's hidden states; the last one's output
 * state and logits kept. */
static bool catch_up(spec_mtp *d, int32_t seq, const int32_t *hist, int64_t from, int64_t n) {
    const size_t e = (size_t)d->model->hp.n_embd;
    for (int64_t p0 = from; p0 < n; p0 += d->max_rows) {
        const int64_t k = n - p0 < d->max_rows ? n - p0 : d->max_rows;
        for (int64_t i = 0; i < k; i++) {
            const int64_t p = p0 + i;
            const float *h = p > 0 ? state_at(d, seq, p - 1) : NULL;
            if (h) memcpy(d->h + (size_t)i * e, h, e * sizeof(float));
            else memset(d->h + (size_t)i * e, 0, e * sizeof(float)); /* before position 0 */
        }
        const bool last = p0 + k == n;
        if (model_mtp_eval(d->x, seq, p0, hist + p0, d->h, k, last ? d->h_last : NULL,
                           last ? d->logits : NULL, NULL))
            return false;
    }
    return true;
}

/* Brings seq's entries up to hist (n tokens): those from the first that differs, as far back
 * as the target's states reach. False when not even entry n - 1 can be made. */
static bool follow(spec_mtp *d, int32_t seq, const int32_t *hist, int64_t n) {
    int32_t *cached = d->cached + (size_t)seq * (size_t)d->n_ctx;
    int64_t keep = 0;
    while (keep < d->n_cached[seq] && keep < n && cached[keep] == hist[keep]) keep++;
    if (keep == n) keep = n - 1; /* the last entry again, for its logits */
    const int64_t from = catch_up_from(d, seq, keep, n);
    if (from == n) return false;
    d->n_cached[seq] = 0;
    if (!catch_up(d, seq, hist, from, n)) return false;
    memcpy(cached + from, hist + from, (size_t)(n - from) * sizeof *hist);
    d->n_cached[seq] = n;
    return true;
}

void spec_mtp_observe(spec_mtp *d, int32_t seq, const int32_t *hist, int64_t n) {
    if (!d || seq < 0 || seq >= d->n_seq || n < 1 || n > d->n_ctx) return;
    const float *last = model_context_hidden(d->target, seq, n - 1);
    if (!last || !follow(d, seq, hist, n)) return;
    memcpy(d->kept + (size_t)seq * (size_t)d->model->hp.n_embd, last,
           (size_t)d->model->hp.n_embd * sizeof(float));
    d->kept_pos[seq] = n - 1;
}

int spec_mtp_draft(spec_mtp *d, int32_t seq, const int32_t *hist, int64_t n, int max,
                   int32_t *out) {
    if (seq < 0 || seq >= d->n_seq || n < 1 || n > d->n_ctx || max < 1) return 0;
    if (!follow(d, seq, hist, n)) return 0;
    const int64_t nv = d->model->hp.n_vocab;
    int got = 0;
    for (;;) {
        out[got] = argmax(d->logits, nv);
        got++;
        const int64_t pos = n + got - 1; /* the entry of the token just drafted */
        if (got == max || pos >= d->n_ctx || ob_token_is_eog(d->model, out[got - 1])) break;
        if (model_mtp_eval(d->x, seq, pos, &out[got - 1], d->h_last, 1, d->h_last, d->logits,
                           NULL))
            break;
    }
    return got;
}
