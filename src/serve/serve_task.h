/*
 * One generation request inside the scheduler (serve_task) and one of its choices, a sequence
 * in the engine (serve_seq). The scheduler (serve_sched.c) moves sequences through waiting ->
 * prefill -> decode -> done; the emitter (serve_emit.c) turns their text into each dialect's
 * stream chunks or final body.
 *
 * Ownership: a streamed task belongs to the engine thread, which frees it when its last
 * sequence ends; a non-streamed task is handed back to the HTTP thread waiting on `cv`, which
 * builds the body and frees it.
 */
#ifndef OB_SERVE_TASK_H
#define OB_SERVE_TASK_H

#include "serve/serve_buf.h"
#include "serve/serve_request.h"
#include "serve/serve_stop.h"
#include "serve/serve_stream.h"
#include "spec/spec.h"

#include <pthread.h>
#include <stdatomic.h>

typedef enum serve_seq_phase {
    SERVE_SEQ_WAITING = 0, /* queued for a slot */
    SERVE_SEQ_PREFILL,     /* has a slot; prompt (or recompute) tokens still to evaluate */
    SERVE_SEQ_DECODE,      /* generating one token per step */
    SERVE_SEQ_DONE,
} serve_seq_phase;

struct serve_task;

typedef struct serve_seq {
    struct serve_task *task;  /* borrowed: the task owns its seqs */
    int index;                /* choice index in the response */
    struct serve_seq *leader; /* n > 1: the prompt's first choice, whose cache this one forks
                                 instead of evaluating the same prompt again; NULL once done */
    serve_seq_phase phase;
    int32_t slot;    /* engine sequence id while it has one, else -1 */
    int64_t order;   /* admission order: the youngest is preempted first */
    int32_t *tokens; /* owned (cap): prompt, then generated tokens */
    size_t n_tokens, cap;
    size_t n_prompt; /* tokens of the original prompt */
    int64_t n_past;  /* positions of tokens[] in the engine's cache */
    int64_t n_gen;
    int64_t n_cached;          /* prompt positions taken from the prefix cache */
    ob_sampler *sampler;       /* owned */
    ob_detok *detok;           /* owned */
    serve_stop *stop;          /* owned */
    ob_chat_parser *out;       /* owned, chat requests: reasoning and tool calls */
    int32_t *counts;           /* owned (n_vocab) or NULL: generated-token counts (penalties) */
    float *scratch;            /* owned (n_vocab) or NULL: logits after bias and penalties */
    serve_buf text, reasoning; /* whole answer, for non-streamed responses */
    json_t *calls;             /* owned array of OpenAI tool calls (arguments as strings) */
    int n_calls_sent;
    json_t *lp;         /* owned array or NULL: logprobs entries not yet sent (stream) or
                           all of them (whole body), serve_oai_logprob objects */
    int64_t lp_offset;  /* text_offset of the next entry (completions' legacy form) */
    const char *finish; /* "stop", "length", "tool_calls"; static */
    bool sent_role;
    /* Anthropic's content blocks: the one open (-1: none), its kind, how many were opened */
    int block, block_kind, n_blocks;
    bool started; /* message_start / response.created sent */
    /* the Responses API: output items finished so far (owned array), events sent, where the
     * open message item's text begins in `text` */
    json_t *items;
    int64_t n_events;
    size_t item_from;
    int64_t t_first_ns, t_last_ns;
    ob_matcher *matcher; /* owned or NULL: the grammar its sampler follows */
    bool matcher_waits;  /* the prompt left a reasoning block open: the grammar constrains
                            the answer after it, so the matcher joins the sampler once the
                            output parser has seen the reasoning close */
    spec_seq spec;       /* speculative decoding: draft length, acceptance, counters */
    int64_t verify_at;   /* this step: the batch entry of its pending token, -1 when it is
                            not decoding */
    int n_draft;         /* this step: draft tokens after the pending one in the batch */
    int32_t draft[SPEC_MAX_DRAFT];
    /* reasoning budget: thinking tokens generated so far; the closing tokens still to write
     * in place of sampled ones (think_close[forced_at..n_think_close) of the scheduler) */
    int64_t n_think;
    size_t forced_at;
    bool forcing, think_closed;
} serve_seq;

typedef struct serve_task {
    serve_gen_req *req; /* owned */
    serve_seq *seqs;    /* owned (n_seqs) */
    int n_seqs, n_done;
    serve_stream *stream; /* one reference, or NULL for a whole-body answer */
    pthread_mutex_t mu;   /* guards done (whole-body answers) */
    pthread_cond_t cv;
    bool done;
    atomic_bool cancelled; /* the client of a whole-body answer left */
    bool failed;
    serve_error err; /* when failed */
    char id[48];
    const char *model;  /* borrowed: the name the client used, or the server's id */
    int64_t created;    /* Unix seconds */
    int64_t t_start_ns; /* monotonic */
    int64_t prompt_tokens, cached_tokens;
    char *prompt_text; /* owned or NULL: echoed prompt (completions, echo) */
    ob_grammar *grammar; /* owned or NULL: what the output must follow (serve_constraint.h) */
    char route[160];     /* "" for a local answer; "upstream=NAME; rule=NAME" for one relayed
                            by the routing policy (shown in usage) */
} serve_task;

/* Monotonic nanoseconds. */
int64_t serve_now_ns(void);

/* ---- emission (serve_emit.c) ---- */

/* The choice's logprobs in its API's form, taking q->lp (chat: {"content": [...]}; legacy
 * completions: {"tokens", "token_logprobs", "top_logprobs", "text_offset"}); NULL when none. */
json_t *serve_emit_logprobs(serve_task *t, serve_seq *q);

/* New text of a choice: streamed as a chunk or kept for the body. calls: completed tool calls
 * of this step (may be NULL). */
void serve_emit_delta(serve_task *t, serve_seq *q, const char *content, size_t clen,
                      const char *reasoning, size_t rlen, const ob_tool_call *calls,
                      size_t n_calls);
/* A choice ended (q->finish set): its closing chunk when streaming. */
void serve_emit_finish(serve_task *t, serve_seq *q);
/* Every choice ended: usage and the end marker when streaming, then the stream closes. */
void serve_emit_end(serve_task *t);
/* A failure mid-stream: the dialect's error object as an event/line. */
void serve_emit_error(serve_task *t, const serve_error *e);
/* The whole-body answer of a finished task: new string (ob_free), NULL when out of memory. */
char *serve_emit_body(serve_task *t, size_t *len);

/* ---- Anthropic Messages (serve_anthropic_emit.c), called by the functions above ---- */
void serve_anthropic_delta(serve_task *t, serve_seq *q, const char *content, size_t clen,
                           const char *reasoning, size_t rlen, const ob_tool_call *calls,
                           size_t n_calls);
void serve_anthropic_finish(serve_task *t, serve_seq *q);
void serve_anthropic_error(serve_task *t, const serve_error *e);
json_t *serve_anthropic_body(serve_task *t);
/* ---- OpenAI Responses (serve_responses_emit.c) ---- */
void serve_responses_delta(serve_task *t, serve_seq *q, const char *content, size_t clen,
                           const char *reasoning, size_t rlen, const ob_tool_call *calls,
                           size_t n_calls);
void serve_responses_finish(serve_task *t, serve_seq *q);
void serve_responses_error(serve_task *t, const serve_error *e);
json_t *serve_responses_body(serve_task *t);

/* Writes one named event (consumes v). */
void serve_emit_event(serve_task *t, const char *event, json_t *v);

#endif
