/*
 * The scheduler: one engine thread owns the context and runs continuous batching. Every step
 * is one ob_decode holding the next token of every running sequence plus a chunk of waiting
 * prompts' prefill; each sequence samples with its own sampler, stop strings and output
 * parser. Requests wait in a bounded queue (full: 503 with Retry-After), are admitted while the
 * KV pool has blocks for them, reuse cached prefixes, and when the pool runs out the youngest
 * sequence is preempted (its cache dropped, recomputed later from its tokens). A client that
 * disconnects cancels its sequences.
 */
#ifndef OB_SERVE_SCHED_H
#define OB_SERVE_SCHED_H

#include "serve/serve_http.h"
#include "serve/serve_metrics.h"
#include "serve/serve_prompt.h"
#include "serve/serve_request.h"
#include "spec/spec.h"

typedef struct serve_sched_opts {
    ob_model *model;                /* borrowed */
    ob_context *ctx;                /* borrowed; only the engine thread uses it from start on */
    const serve_prompter *prompter; /* borrowed */
    serve_metrics *metrics;         /* borrowed, may be NULL */
    const char *model_id;           /* borrowed: the name answers carry by default */
    int n_parallel;                 /* sequences in the engine at once (= n_seq_max) */
    int64_t max_queue;              /* sequences that may wait beyond free slots */
    int64_t n_batch;                /* entries per step (decode tokens + prefill chunk) */
    spec_params spec;               /* speculative decoding unless a request says otherwise */
    int64_t reasoning_budget;       /* thinking tokens after which the engine writes the
                                       format's end of reasoning itself; -1 = no limit (a
                                       request's own budget applies either way) */
    spec_drafter *drafter;          /* borrowed, or NULL: a draft model with a sequence per
                                       slot, used by the engine thread only */
    spec_mtp *mtp;                  /* borrowed, or NULL: the model's multi-token-prediction
                                       drafter with a sequence per slot, the same way */
    /* When ob_decode reports the context's device lost (OB_ERR_DEVICE): makes a context for
     * the same model on what remains, which replaces ctx (the old one is the callee's to
     * free); the running sequences then go back to the queue and are evaluated again there.
     * NULL, or a failure: they end with the error. Called on the engine thread. */
    ob_status (*replan)(void *user, ob_context **ctx, ob_err *err);
    void *replan_user;
    /* With --watch-devices: called with replan_user every watch_s seconds while nothing is
     * queued or running; when the device the server asked for is there (again, or at last),
     * makes a context on it, which replaces ctx (the old one is the callee's to free), and
     * returns OB_OK; any other status leaves ctx as it was. NULL: never called. */
    ob_status (*replug)(void *user, ob_context **ctx, ob_err *err);
    double watch_s;
} serve_sched_opts;

typedef struct serve_sched serve_sched;

/* Starts the engine thread. Errors: OB_ERR_NOMEM, OB_ERR_ARG (n_parallel < 1). */
ob_status serve_sched_start(const serve_sched_opts *o, serve_sched **out, ob_err *err);
/* Ends every queued and running request with a 503 "shutting down", stops and joins the engine
 * thread. Requests arriving afterwards get 503 at once. The struct stays valid until
 * serve_sched_free, so HTTP threads may still call in while the transport stops. */
void serve_sched_stop(serve_sched *s);
void serve_sched_free(serve_sched *s);

/* A serve_generate_fn (serve_app.h): renders and tokenizes the prompt (400 when it does not fit
 * the context), queues the request, and answers: a stream that the engine thread fills, or the
 * whole body once generation ends (this thread waits for it). Takes r. */
/* Whether no request is queued or running (a model with none may be unloaded). */
bool serve_sched_idle(serve_sched *s);

/* What the engine's own passes measured: prompt rows and seconds of passes holding only
 * prompt rows, and passes and seconds of passes in which every sequence decoded one token
 * (no drafts), so one stream's decode speed is passes / seconds. Mixed passes count in
 * neither. Counted since the model was loaded (or moved to another device). */
typedef struct serve_sched_speed {
    int64_t prefill_tokens, decode_passes;
    double prefill_s, decode_s;
} serve_sched_speed;
void serve_sched_speed_get(serve_sched *s, serve_sched_speed *out);
/* serve_app_config.count_tokens: the prompt tokens r would be answered from (chat template
 * and tokenizer, on the calling thread). */
int serve_sched_count_tokens(void *sched, const serve_gen_req *r, int64_t *n, serve_error *e);

void serve_sched_generate(void *sched, const serve_http_req *req, serve_gen_req *r,
                          serve_http_resp *resp);

#endif
