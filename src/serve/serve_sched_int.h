/*
 * What the scheduler's two files share (serve_sched.c: the engine thread; serve_sched_task.c:
 * building tasks on the HTTP thread and the text path of one sequence). Private to them.
 */
#ifndef OB_SERVE_SCHED_INT_H
#define OB_SERVE_SCHED_INT_H

#include "serve/serve_sched.h"
#include "serve/serve_task.h"

#include <stdatomic.h>

struct serve_sched {
    serve_sched_opts o;
    int64_t n_vocab, n_ctx;
    ob_transfer_stats xfer_seen; /* the context's hidden-state copies already in the metrics */
    serve_sched_speed speed;     /* the engine's passes by kind; guarded by mu */
    pthread_t thread;
    bool started;
    atomic_bool stopping;
    pthread_mutex_t mu; /* guards waiting, n_running (for admission), task ids */
    pthread_cond_t cv;
    serve_seq **waiting; /* owned array (cap_waiting) of borrowed seqs, FIFO from index 0 */
    size_t n_waiting, cap_waiting;
    serve_seq **running; /* owned array (n_parallel); engine thread only */
    int n_running;
    bool *slot_used; /* (n_parallel) */
    int64_t next_order;
    bool hold; /* a sequence was preempted: admit nothing until one finishes */
    uint64_t next_id;
    ob_batch *batch;   /* owned */
    serve_seq **entry; /* owned (batch capacity): the seq of each batch entry */
    pthread_mutex_t trie_mu; /* guards trie's first build */
    ob_vocab_trie *trie;     /* owned or NULL until a constrained request comes */
    /* the tokens that close reasoning ("\n</think>\n\n"), written when a sequence's thinking
     * reaches its budget; NULL when the chat format has no closable reasoning */
    int32_t *think_close;
    size_t n_think_close;
    /* the model's end-of-generation tokens, listed at the first request that ignores them */
    int32_t *eog;
    size_t n_eog;
    bool eog_listed;
};

/* ---- serve_sched_task.c ---- */

/* Builds the task of request r (taken): prompts tokenized, one seq per choice with its
 * sampler, detokenizer, stop matcher and output parser. -1 with e filled (r freed). */
int sched_task_new(serve_sched *s, serve_gen_req *r, serve_task **out, serve_error *e);
void sched_task_free(serve_task *t);
/* The sampled token's text through detokenizer, stop strings and output parser to the
 * emitter. Returns true when a stop string ended the answer. */
bool sched_seq_text(serve_sched *s, serve_seq *q, int32_t token);
/* Ends the answer's text: held-back bytes, the parser's last delta, the finish reason. */
void sched_seq_flush(serve_sched *s, serve_seq *q, const char *reason);
/* Records the logprob of the sampled token and the top_logprobs alternatives. */
void sched_seq_logprobs(serve_sched *s, serve_seq *q, const float *logits, int32_t tok);
/* The logits the sampler sees: logit_bias and presence/frequency penalties applied. */
const float *sched_seq_logits(serve_sched *s, serve_seq *q, const float *logits);

/* ---- serve_sched_plan.c ---- */

/* Whether every row of the built batch is a prompt row (1), every sequence decodes one token
 * without drafts (2), or neither (0). */
int sched_batch_kind(const serve_sched *s, int64_t n_drafts);
/* Counts a pass of n rows of that kind that started at t0 (serve_now_ns). */
void sched_speed_add(serve_sched *s, int kind, int64_t n, int64_t t0);
/* Waits (s->mu held) for work; with a replug callback at most watch_s: true when that time
 * passed with nothing queued or running. */
bool sched_idle_wait(serve_sched *s);
/* An idle moment with --watch-devices: the context moves to the device if it is there. */
void sched_replug(serve_sched *s);

#endif
