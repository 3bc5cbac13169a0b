/*
 * Speculative decoding: guess several next tokens cheaply, evaluate them in one forward pass
 * (the weights are read once whatever the number of rows), and keep the guesses the model
 * itself would have produced. Decode of one stream is bound by memory bandwidth, so a pass of
 * a few tokens costs little more than a pass of one.
 *
 * Drafts come from prompt lookup (spec_ngram.c): the longest earlier occurrence of the most
 * recent tokens in the prompt and the generated text proposes what followed it there, which
 * pays when the answer repeats its input (an edit of a file, a quote); from a draft model
 * (spec_draft.c), a smaller model with the same vocabulary drafting greedily; or from the
 * model's own multi-token-prediction block (spec_mtp.c, Qwen3.5's nextn layers), which reads
 * the target's final hidden states.
 *
 * Verification (spec_step.c, and the server's scheduler the same way): the pass evaluates the
 * pending token and the draft d1..dK; the sampler draws the token after the pending one from
 * row 0 as plain decoding would, and while that draw equals the next draft token it draws
 * again from the next row. For a draft that is a point mass q = [d], accepting d with
 * probability p(d) and otherwise drawing from the residual (p - q)+ renormalised is exactly
 * "draw t ~ p; accept when t == d, else keep t": the standard rejection rule. Drawing with
 * the caller's own sampler composes it with every stage of its chain (penalties, top-k/p,
 * min-p, a grammar that forbids the draft token), and the sampler only ever records tokens
 * that are kept, so its state (penalty window, grammar, random stream) moves exactly as in
 * plain decoding: the same seed gives the same tokens, speculation on or off, whenever the
 * engine's batched rows equal its one-token rows (they do on the CPU backend).
 *
 * Rejected positions are dropped with ob_seq_truncate. A sliding-window ring holds n_batch
 * positions beyond its window, so a draft of at most n_batch - 1 tokens can always be taken
 * back. A recurrent state (qwen35's DeltaNet) summarises every position, so it goes back to
 * the checkpoint the verification pass kept and the kept positions are evaluated again (in
 * ob_seq_truncate); its verification and replay passes run the recurrence token by token, as
 * plain decoding does, so the state after them is the same.
 */
#ifndef OB_SPEC_SPEC_H
#define OB_SPEC_SPEC_H

#include "outboard.h"

#include <stdbool.h>
#include <stdint.h>

/* Longest draft a sequence ever proposes (--spec-max is capped here). */
#define SPEC_MAX_DRAFT 64

typedef enum spec_mode {
    SPEC_MODE_OFF = 0,
    SPEC_MODE_AUTO,  /* the best drafter there is (the draft model when one is loaded, else
                        the model's MTP block when it has one, else prompt lookup), dropped
                        while it does not pay */
    SPEC_MODE_NGRAM, /* prompt lookup, kept on whatever its acceptance */
    SPEC_MODE_DRAFT, /* the draft model (spec_drafter), kept on whatever its acceptance */
    SPEC_MODE_MTP,   /* the model's multi-token-prediction block (spec_mtp), kept on */
} spec_mode;

/* "auto", "off", "ngram", "draft", "mtp" -> *out. OB_ERR_ARG naming the value and the choices
 * otherwise. Whether a draft model is loaded is the caller's to check. */
ob_status spec_mode_parse(const char *text, spec_mode *out, ob_err *err);
/* The mode's name ("auto"), static storage. */
const char *spec_mode_name(spec_mode m);

typedef struct spec_params {
    spec_mode mode; /* SPEC_MODE_AUTO */
    int max_draft;  /* most draft tokens per pass, 1..SPEC_MAX_DRAFT (16) */
} spec_params;

void spec_params_init(spec_params *p);

/* ---- prompt lookup (spec_ngram.c) ---- */

/* Shortest match of the most recent tokens that proposes a draft, and the longest compared
 * (a longer one is as good: the comparison stops there). */
#define SPEC_NGRAM_MIN 2
#define SPEC_NGRAM_MAX 32

/* The longest match of the last tokens of hist (n of them) at an earlier place in hist, at
 * least SPEC_NGRAM_MIN tokens long (the most recent place among equally long ones): what
 * followed it there, at most max tokens, goes to out. Returns the number written (0: no
 * match); *match_len (may be NULL) gets the match's length. */
int spec_ngram_draft(const int32_t *hist, int64_t n, int max, int32_t *out, int *match_len);

/* ---- a draft model (spec_draft.c) ---- */

/* A smaller model with the target's vocabulary, drafting greedily in a context of its own with
 * n_seq sequences of n_ctx positions (sequence ids as the target's). One thread at a time. */
typedef struct spec_drafter spec_drafter;

/* Checks that draft's vocabulary is the target's (every token's text; OB_ERR_ARG naming the
 * first difference) and makes its context. Borrows both models. *out: spec_drafter_free. */
ob_status spec_drafter_new(const ob_model *target, ob_model *draft, int32_t n_seq, int64_t n_ctx,
                           int n_threads, spec_drafter **out, ob_err *err);
void spec_drafter_free(spec_drafter *d);
/* Sequence seq ended: its draft cache is dropped. */
void spec_drafter_forget(spec_drafter *d, int32_t seq);
/* Up to max greedy draft tokens after hist (n tokens) into out; the count (0 when the draft
 * context cannot take them). Stops after an end-of-generation token. */
int spec_drafter_draft(spec_drafter *d, int32_t seq, const int32_t *hist, int64_t n, int max,
                       int32_t *out);

/* ---- the model's multi-token-prediction block (spec_mtp.c) ---- */

/* Drafts greedily with m's MTP block (model_mtp_available) for n_seq sequences of target,
 * a context of m, whose final hidden states it has kept from now on. Borrows both. *out:
 * spec_mtp_free. OB_ERR_UNSUPPORTED naming the reason when m has no usable block. */
typedef struct spec_mtp spec_mtp;
ob_status spec_mtp_new(const ob_model *m, ob_context *target, int32_t n_seq, int n_threads,
                       spec_mtp **out, ob_err *err);
void spec_mtp_free(spec_mtp *d);
/* Sequence seq ended: its entries are dropped. */
void spec_mtp_forget(spec_mtp *d, int32_t seq);
/* The sequences now decode in target, a context that replaced the one d was made for (the
 * server's after a lost device): it keeps its hidden states from now on and every sequence's
 * entries are dropped. d may be NULL. */
void spec_mtp_attach(spec_mtp *d, ob_context *target);
/* The last decode evaluated part of seq's prompt, whose first n tokens (hist) are now in the
 * target's cache: the entries follow, and the state at n - 1 is kept for the next part (a
 * prompt the server takes in chunks). d may be NULL. */
void spec_mtp_observe(spec_mtp *d, int32_t seq, const int32_t *hist, int64_t n);
/* The MTP drafter speculation under p wants on target (a context of m): made in mtp mode, and
 * in auto mode when m has a usable block and no draft model (have_drafter) is loaded; else
 * *out NULL. OB_ERR_UNSUPPORTED naming the reason in mtp mode on a model without a block. */
ob_status spec_mtp_for(const spec_params *p, const ob_model *m, ob_context *target,
                       bool have_drafter, int32_t n_seq, spec_mtp **out, ob_err *err);
/* Up to max draft tokens after hist (n tokens, the pending one last, the others evaluated in
 * the target) into out; the count (0 when the target's last decode did not keep what it
 * needs). Stops after an end-of-generation token. */
int spec_mtp_draft(spec_mtp *d, int32_t seq, const int32_t *hist, int64_t n, int max,
                   int32_t *out);

/* ---- one sequence's drafting state (spec_seq.c) ---- */

/* Per sequence: the adaptive draft length, whether drafting pays, and the counters reported
 * (--verbose, /metrics). Plain data: zero it with spec_seq_init, nothing to free. */
typedef struct spec_seq {
    spec_params p;
    spec_drafter *drafter; /* borrowed or NULL: drafts come from it in auto and draft mode */
    spec_mtp *mtp;         /* borrowed or NULL: drafts come from it in mtp mode, and in auto
                              mode when there is no drafter */
    int32_t seq;           /* the sequence id in the drafter's context */
    bool enabled;          /* false: mode off or the context cannot roll back */
    int k;                 /* draft length for the next pass, 1..p.max_draft */
    double accept;         /* running mean of the accepted fraction of recent drafts */
    int64_t pause;         /* passes left without drafting (auto mode, after drafts did not pay) */
    int64_t backoff;       /* the next pause's length: doubles each time drafting fails again */
    double t_plain;        /* running mean of seconds per pass without a draft, 0 = not timed */
    double spec_rate;      /* running mean of tokens per second of passes with a draft, 0 = none */
    double t_row;          /* running mean of the seconds a draft token adds to a pass, 0 = none */
    double w_accepted, w_rejected; /* decaying sums: draft tokens kept, drafts cut short */
    /* counters */
    int64_t n_passes;              /* forward passes this sequence took part in while generating */
    int64_t n_tokens;              /* tokens those passes produced */
    int64_t n_drafted, n_accepted; /* draft tokens proposed / kept */
} spec_seq;

/* Sets up s for a new sequence under p on context c (its batch size caps the draft). Draft
 * mode without a drafter (spec_seq_set_drafter) drafts nothing. */
void spec_seq_init(spec_seq *s, const spec_params *p, const ob_context *c);
/* Drafts of sequence seq come from d (borrowed; NULL: prompt lookup). */
void spec_seq_set_drafter(spec_seq *s, spec_drafter *d, int32_t seq);
/* Drafts of sequence seq come from the MTP block's d (borrowed; NULL: none). */
void spec_seq_set_mtp(spec_seq *s, spec_mtp *d, int32_t seq);
/* Whether s drafts with its MTP drafter (mtp mode, or auto without a draft model): its prompt
 * is then worth following (spec_mtp_observe). */
bool spec_seq_uses_mtp(const spec_seq *s);

/* The draft for the next pass after hist (n tokens: prompt, generated, and the pending token
 * last), at most room tokens (what the context and the batch have space for): written to out
 * (SPEC_MAX_DRAFT entries), the count returned, 0 when not drafting now. */
int spec_seq_draft(spec_seq *s, const int32_t *hist, int64_t n, int64_t room, int32_t *out);

/* A pass ended: it carried n_draft draft tokens, n_accepted of them were kept, it produced
 * n_out tokens and took seconds (<= 0: not timed). Adapts the draft length and, in auto mode,
 * pauses drafting that does not pay. */
void spec_seq_update(spec_seq *s, int n_draft, int n_accepted, int n_out, double seconds);

/* ---- one speculative step on one sequence (spec_step.c), for run and chat ---- */

/* Receives each token the step produces, in order; returns false to stop at this token (end
 * of generation, a length limit): the step then draws no further token. */
typedef bool (*spec_emit_fn)(void *user, int32_t token);

/* hist (n tokens) ends with the pending token: sampled, not yet evaluated, at position
 * ob_seq_n_past(c, seq). Evaluates it with a draft (spec_seq_draft) in one ob_decode, draws
 * tokens with sampler as described above, hands each to emit, and drops the rejected
 * positions. *next gets the last token produced (the new pending token) and *stopped whether
 * emit stopped. hist must have room for SPEC_MAX_DRAFT + 1 more tokens: the step appends
 * what it produces (*n grows). Errors: those of ob_decode and ob_seq_truncate; OB_ERR_NUMERIC
 * when no logit is finite. The cache then holds at most the positions it held before. */
ob_status spec_step(ob_context *c, int32_t seq, spec_seq *ss, ob_sampler *sampler, int32_t *hist,
                    int64_t *n, spec_emit_fn emit, void *user, bool *stopped, ob_err *err);

#endif
