/*
 * One sequence's drafting policy (spec.h): how long a draft to propose and whether to draft at
 * all. The draft length doubles while whole drafts are accepted and falls to just past the
 * accepted part on a rejection, so a run of copied text is taken in long strides and prose
 * that only now and then repeats a phrase wastes little. When passes are timed, it is also
 * held at the length that maximises the expected tokens per second (best_length).
 *
 * Whether drafting pays is measured, not assumed: a pass of k + 1 rows costs more than a pass
 * of one (on a small model on a CPU, a few tens of percent: the head's matrix product grows
 * with the rows), so in auto mode the tokens per second of drafting passes are compared with
 * the plain passes' rate when the caller times its passes (run, chat), else the accepted
 * fraction with a floor (the server, whose passes mix sequences). When drafting loses it
 * pauses for a number of passes that doubles with each failure, then tries again.
 */
#include "spec/spec.h"

#include "core/err.h"
#include "model/context.h"

#include <string.h>

/* Auto mode without timings: drafting pays when at least this fraction of it is kept. */
#define SPEC_MIN_ACCEPT 0.35
/* Pauses (passes without drafting) after drafting did not pay: first and longest. */
#define SPEC_BACKOFF_MIN 8
#define SPEC_BACKOFF_MAX 512
/* Auto mode: the shortest match of the recent tokens it drafts from. */
#define SPEC_AUTO_MIN_MATCH 4
/* Weight of the newest pass in the running means. */
#define SPEC_EMA 0.3

ob_status spec_mode_parse(const char *text, spec_mode *out, ob_err *err) {
    static const struct {
        const char *name;
        spec_mode mode;
    } modes[] = {{"auto", SPEC_MODE_AUTO},
                 {"off", SPEC_MODE_OFF},
                 {"ngram", SPEC_MODE_NGRAM},
                 {"draft", SPEC_MODE_DRAFT},
                 {"mtp", SPEC_MODE_MTP}};
    for (size_t i = 0; text && i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(text, modes[i].name)) {
            *out = modes[i].mode;
            return OB_OK;
        }
    /* The value as typed, cut and with control bytes shown as '?', so the message stays one
     * line whatever the caller passed. */
    char shown[41];
    size_t n = 0;
    for (; text && text[n] && n < sizeof shown - 1; n++)
        shown[n] = (unsigned char)text[n] < 0x20 || text[n] == 0x7f ? '?' : text[n];
    shown[n] = 0;
    return ob_fail(err, OB_ERR_ARG,
                   "speculative mode '%s': expected auto, off, ngram, draft or mtp", shown);
}

const char *spec_mode_name(spec_mode m) {
    switch (m) {
    case SPEC_MODE_OFF: return "off";
    case SPEC_MODE_AUTO: return "auto";
    case SPEC_MODE_NGRAM: return "ngram";
    case SPEC_MODE_DRAFT: return "draft";
    case SPEC_MODE_MTP: return "mtp";
    }
    return "?";
}

void spec_params_init(spec_params *p) {
    *p = (spec_params){.mode = SPEC_MODE_AUTO, .max_draft = 16};
}

void spec_seq_init(spec_seq *s, const spec_params *p, const ob_context *c) {
    memset(s, 0, sizeof *s);
    s->p = *p;
    if (s->p.max_draft < 1) s->p.max_draft = 1;
    if (s->p.max_draft > SPEC_MAX_DRAFT) s->p.max_draft = SPEC_MAX_DRAFT;
    /* The whole draft and the pending token in one pass of the context's batch. */
    if (s->p.max_draft > c->n_batch - 1) s->p.max_draft = (int)(c->n_batch - 1);
    s->enabled = p->mode != SPEC_MODE_OFF && s->p.max_draft >= 1;
    s->k = s->p.max_draft < 8 ? s->p.max_draft : 8;
    s->accept = 1.0;
    s->backoff = SPEC_BACKOFF_MIN;
}

void spec_seq_set_drafter(spec_seq *s, spec_drafter *d, int32_t seq) {
    s->drafter = d;
    s->seq = seq;
}

void spec_seq_set_mtp(spec_seq *s, spec_mtp *d, int32_t seq) {
    s->mtp = d;
    s->seq = seq;
}

bool spec_seq_uses_mtp(const spec_seq *s) {
    return s->enabled && s->mtp &&
           (s->p.mode == SPEC_MODE_MTP || (s->p.mode == SPEC_MODE_AUTO && !s->drafter));
}

int spec_seq_draft(spec_seq *s, const int32_t *hist, int64_t n, int64_t room, int32_t *out) {
    if (!s->enabled) return 0;
    if (s->pause > 0) {
        s->pause--;
        return 0;
    }
    int max = s->k;
    if (room < max) max = room > 0 ? (int)room : 0;
    if (max < 1) return 0;
    const spec_mode mode = s->p.mode;
    /* auto: a draft model someone chose, else the model's own MTP block, else prompt lookup */
    if (s->drafter && (mode == SPEC_MODE_DRAFT || mode == SPEC_MODE_AUTO))
        return spec_drafter_draft(s->drafter, s->seq, hist, n, max, out);
    if (spec_seq_uses_mtp(s)) return spec_mtp_draft(s->mtp, s->seq, hist, n, max, out);
    if (mode == SPEC_MODE_DRAFT || mode == SPEC_MODE_MTP) return 0; /* no such drafter */
    int match = 0;
    const int got = spec_ngram_draft(hist, n, max, out, &match);
    /* Auto mode drafts only from a match long enough to be a copy, not a common phrase: a pass
     * with draft rows costs more than a plain one even when they are few, and short matches
     * in free text are mostly wrong. */
    return s->p.mode == SPEC_MODE_AUTO && match < SPEC_AUTO_MIN_MATCH ? 0 : got;
}

static double ema(double old, double x) {
    return old <= 0 ? x : old + SPEC_EMA * (x - old);
}

/* Timed passes: the draft length with the most expected tokens per second, when each draft
 * token is accepted with probability alpha once the ones before it were (estimated from the
 * accepted tokens and the rejections) and a pass with k draft tokens costs t_plain + t_row * k.
 * On a small model a row costs a good part of a pass (its vocabulary's product), and on a busy
 * CPU rows cost compute time that plain decoding does not pay. */
static int best_length(const spec_seq *s) {
    const double alpha = s->w_accepted / (s->w_accepted + s->w_rejected);
    double best_rate = 0, expect = 1, pa = 1;
    int best = 1;
    for (int k = 1; k <= s->p.max_draft; k++) {
        pa *= alpha;
        expect += pa; /* 1 + alpha + ... + alpha^k tokens per pass */
        const double rate = expect / (s->t_plain + s->t_row * k);
        if (rate > best_rate) {
            best_rate = rate;
            best = k;
        }
    }
    return best;
}

void spec_seq_update(spec_seq *s, int n_draft, int n_accepted, int n_out, double seconds) {
    s->n_passes++;
    s->n_tokens += n_out;
    if (n_draft == 0) {
        if (seconds > 0) s->t_plain = ema(s->t_plain, seconds);
        return;
    }
    s->n_drafted += n_draft;
    s->n_accepted += n_accepted;
    const double frac = (double)n_accepted / n_draft;
    s->accept = s->accept + SPEC_EMA * (frac - s->accept);
    if (seconds > 0 && n_out > 0) s->spec_rate = ema(s->spec_rate, n_out / seconds);
    /* recent passes weigh most: the sums decay by a tenth each pass */
    s->w_accepted = 0.9 * s->w_accepted + n_accepted;
    s->w_rejected = 0.9 * s->w_rejected + (n_accepted < n_draft);
    if (seconds > 0 && s->t_plain > 0) {
        const double row = (seconds - s->t_plain) / n_draft;
        s->t_row = ema(s->t_row, row > 1e-7 ? row : 1e-7);
    }
    if (n_accepted == n_draft)
        s->k = s->k * 2 < s->p.max_draft ? s->k * 2 : s->p.max_draft;
    else
        s->k = n_accepted + 1;
    if (s->t_row > 0 && s->w_accepted + s->w_rejected > 0) {
        const int best = best_length(s);
        if (s->k > best) s->k = best;
    }
    if (s->p.mode != SPEC_MODE_AUTO) return;
    const bool timed = s->t_plain > 0 && s->spec_rate > 0;
    const bool pays = timed ? s->spec_rate * s->t_plain >= 1.0 : s->accept >= SPEC_MIN_ACCEPT;
    if (!pays) {
        s->pause = s->backoff;
        s->backoff = s->backoff * 2 < SPEC_BACKOFF_MAX ? s->backoff * 2 : SPEC_BACKOFF_MAX;
        s->accept = 1.0; /* the next try starts afresh */
        s->spec_rate = 0;
    } else if (frac >= 0.5 && s->backoff > SPEC_BACKOFF_MIN) {
        s->backoff /= 2;
    }
}
