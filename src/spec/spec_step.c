/*
 * One speculative step of one sequence (spec.h): the pending token and a draft in one
 * ob_decode, then tokens drawn row by row while they agree with the draft, then the rejected
 * positions dropped. With no draft this is exactly a plain decode step.
 */
#include "spec/spec.h"

#include "core/err.h"

#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

ob_status spec_step(ob_context *c, int32_t seq, spec_seq *ss, ob_sampler *sampler, int32_t *hist,
                    int64_t *n, spec_emit_fn emit, void *user, bool *stopped, ob_err *err) {
    *stopped = false;
    const int64_t n_past = ob_seq_n_past(c, seq);
    /* Positions after the pending token's that the context still has. */
    const int64_t room = ob_context_n_ctx(c) - n_past - 1;
    int32_t tok[SPEC_MAX_DRAFT + 1], sq[SPEC_MAX_DRAFT + 1];
    int64_t pos[SPEC_MAX_DRAFT + 1];
    bool want[SPEC_MAX_DRAFT + 1];
    const double t0 = now_s(); /* the draft's own cost counts (a draft model's passes) */
    const int d = spec_seq_draft(ss, hist, *n, room, tok + 1);
    tok[0] = hist[*n - 1];
    for (int i = 0; i <= d; i++) {
        pos[i] = n_past + i;
        sq[i] = seq;
        want[i] = true;
    }
    ob_batch b = {
        .n = d + 1, .capacity = d + 1, .token = tok, .pos = pos, .seq = sq, .logits = want};
    ob_status st = ob_decode(c, &b, err);
    if (st) return st;
    /* Row i holds the distribution of the token after tok[i]; the draw from it is kept, and
     * the next row is looked at only while that draw equals the draft's next token. */
    int m = 0, accepted = 0;
    for (;; m++) {
        const int32_t t = ob_sampler_sample(sampler, ob_batch_logits(c, m));
        if (t < 0) {
            ob_seq_truncate(c, seq, n_past + 1 + m, NULL);
            return ob_fail(err, OB_ERR_NUMERIC,
                           "position %lld: no logit is finite, nothing "
                           "to sample",
                           (long long)(n_past + 1 + m));
        }
        hist[(*n)++] = t;
        const bool agrees = m < d && t == tok[m + 1];
        accepted += agrees;
        if (!emit(user, t)) {
            *stopped = true;
            break;
        }
        if (!agrees) break;
    }
    /* Kept: the pending token and the m draft tokens before the last draw, which is the new
     * pending token. */
    if (n_past + 1 + m < ob_seq_n_past(c, seq) &&
        (st = ob_seq_truncate(c, seq, n_past + 1 + m, err)))
        return st;
    spec_seq_update(ss, d, accepted, m + 1, now_s() - t0);
    return OB_OK;
}
