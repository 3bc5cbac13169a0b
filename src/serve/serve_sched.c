/*
 * The engine thread (serve_sched.h). One loop: admit waiting sequences into free slots while
 * the KV pool has blocks, build one batch (every decoding sequence's next token first, then
 * prefill chunks in admission order up to n_batch entries), ob_decode it, sample for every
 * entry that asked for logits, emit text, and retire finished or cancelled sequences. Only
 * this thread touches the context, so the engine needs no locks; the queue is the one thing
 * HTTP threads share with it, under `mu`.
 */
#include "serve/serve_sched_int.h"

#include "core/alloc.h"
#include "serve/serve_app.h"

#include "serve/serve_response.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Most prompt tokens in a step that also carries decoding streams (see build_batch). */
#define SCHED_PREFILL_WHILE_DECODING 128

/* ---- finishing ---- */

static void task_complete(serve_sched *s, serve_task *t) {
    if (s->o.metrics) {
        int64_t gen = 0;
        for (int i = 0; i < t->n_seqs; i++)
            gen += t->seqs[i].n_gen;
        serve_metrics_tokens(s->o.metrics, t->prompt_tokens, gen);
    }
    if (t->stream) {
        if (t->failed)
            serve_emit_error(t, &t->err);
        else
            serve_emit_end(t);
        sched_task_free(t); /* a streamed task belongs to this thread */
        return;
    }
    pthread_mutex_lock(&t->mu);
    t->done = true; /* the HTTP thread takes it from here */
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* Takes q out of the engine (its cache dropped, the prefix kept in the pool). */
static void seq_unslot(serve_sched *s, serve_seq *q) {
    if (q->slot < 0) return;
    ob_seq_free(s->o.ctx, q->slot);
    spec_drafter_forget(s->o.drafter, q->slot); /* its draft cache went with the slot */
    spec_mtp_forget(s->o.mtp, q->slot);
    s->slot_used[q->slot] = false;
    q->slot = -1;
    for (int i = 0; i < s->n_running; i++)
        if (s->running[i] == q) {
            s->running[i] = s->running[--s->n_running];
            break;
        }
}

static void seq_done(serve_sched *s, serve_seq *q, const char *reason) {
    serve_task *t = q->task;
    if (!t->failed && reason) {
        sched_seq_flush(s, q, reason);
        serve_emit_finish(t, q);
    }
    pthread_mutex_lock(&s->mu);
    if (q->slot >= 0) s->hold = false; /* its blocks are free now */
    seq_unslot(s, q);
    pthread_mutex_unlock(&s->mu);
    q->phase = SERVE_SEQ_DONE;
    if (++t->n_done == t->n_seqs) task_complete(s, t);
}

/* Fails the whole task; its seqs end as the loop meets them (running ones at once). */
static void task_fail(serve_sched *s, serve_task *t, const serve_error *e) {
    if (!t->failed) {
        t->failed = true;
        t->err = *e;
    }
}

static bool task_gone(serve_task *t) {
    return t->failed || atomic_load(&t->cancelled) ||
           (t->stream && serve_stream_cancelled(t->stream));
}

/* ---- admission ---- */

/* Whether the pool can hold q's tokens plus one (blocks that only cache a prefix count as
 * free: the pool evicts them on demand). With nothing running, admit anyway: the pool is
 * never smaller than one context. */
static bool pool_has_room(serve_sched *s, const serve_seq *q) {
    if (s->n_running == 0) return true;
    ob_kv_stats st;
    ob_kv_stats_get(s->o.ctx, &st);
    int64_t bs = st.block_size > 0 ? st.block_size : 1;
    int64_t need = ((int64_t)q->n_tokens + 1 + bs - 1) / bs;
    return st.blocks_free + st.blocks_cached >= need;
}

/* Moves waiting seqs into free slots; called with mu held. Cancelled ones are retired. */
static void admit(serve_sched *s) {
    while (s->n_waiting > 0) {
        serve_seq *q = s->waiting[0];
        bool gone = task_gone(q->task);
        /* After a preemption the pool is known to be short: readmitting the preempted
         * sequence at once would take back the blocks the others need (and it would be
         * preempted again, for ever), so admission waits until a sequence finishes. */
        if (s->n_running == 0) s->hold = false;
        if (!gone && (s->hold || s->n_running >= s->o.n_parallel || !pool_has_room(s, q))) break;
        memmove(s->waiting, s->waiting + 1, --s->n_waiting * sizeof *s->waiting);
        if (gone) {
            pthread_mutex_unlock(&s->mu);
            seq_done(s, q, NULL);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        /* a free slot whose writing keeps other prompts' cached windows (a side request
         * between two turns of an agent must not cost the next turn its prefix) */
        int slot = ob_seq_pick(s->o.ctx, s->slot_used, (int32_t)s->o.n_parallel, q->tokens,
                               (int64_t)q->n_tokens);
        if (slot < 0) {
            slot = 0;
            while (s->slot_used[slot])
                slot++;
        }
        s->slot_used[slot] = true;
        q->slot = slot;
        /* the draft model's sequence is the slot's (a preempted sequence may come back in
         * another one) */
        if (s->o.drafter) spec_seq_set_drafter(&q->spec, s->o.drafter, slot);
        if (s->o.mtp) spec_seq_set_mtp(&q->spec, s->o.mtp, slot);
        q->phase = SERVE_SEQ_PREFILL;
        /* A preempted sequence keeps its first admission's place: age decides who yields. */
        if (!q->order) q->order = ++s->next_order;
        s->running[s->n_running++] = q;
    }
}

/* The pool ran out mid-step: the youngest sequence gives its blocks back and waits at the
 * front of the queue; its tokens so far are evaluated again when it returns, and its sampler,
 * stop matcher and parser carry on where they were. */
static serve_seq *youngest_running(const serve_sched *s) {
    serve_seq *young = NULL;
    for (int i = 0; i < s->n_running; i++)
        if (!young || s->running[i]->order > young->order) young = s->running[i];
    return young;
}

/* With mu held: q leaves its slot (its cache dropped) for the front of the queue. */
static void requeue_front(serve_sched *s, serve_seq *q) {
    seq_unslot(s, q);
    q->phase = SERVE_SEQ_WAITING;
    q->n_past = 0;
    memmove(s->waiting + 1, s->waiting, s->n_waiting * sizeof *s->waiting);
    s->waiting[0] = q;
    s->n_waiting++;
}

static void preempt_youngest(serve_sched *s) {
    serve_seq *young = youngest_running(s);
    pthread_mutex_lock(&s->mu);
    requeue_front(s, young);
    s->hold = true;
    if (s->o.metrics) serve_metrics_preempt(s->o.metrics);
    pthread_mutex_unlock(&s->mu);
}

/* ---- one step ---- */

static void batch_add(serve_sched *s, serve_seq *q, int32_t tok, int64_t pos, bool logits) {
    ob_batch *b = s->batch;
    s->entry[b->n] = q;
    ob_batch_add(b, tok, pos, q->slot, logits, NULL);
}

/* A prompt entering the engine first takes what the prefix cache has of it. */
static void attach_prefix(serve_sched *s, serve_seq *q) {
    int64_t got = 0;
    if (ob_seq_attach_prefix(s->o.ctx, q->slot, q->tokens, (int64_t)q->n_tokens, &got, NULL) ||
        got <= 0)
        return;
    q->n_past = got;
    if (q->n_gen == 0) {
        q->n_cached = got;
        q->task->cached_tokens += got;
    }
    if (s->o.metrics) serve_metrics_prefix_hit(s->o.metrics, got);
}

/* n > 1: a later choice of a prompt starts from the first choice's cache (blocks shared,
 * copied on write) once that one has evaluated the prompt, then evaluates only the prompt's
 * last token again for its own logits. Returns false while it should wait for that. When the
 * first choice is not there to share (ended, preempted, waiting), it evaluates on its own. */
static bool follow_leader(serve_sched *s, serve_seq *q) {
    serve_seq *l = q->leader;
    if (!l || q->n_gen > 0 || q->n_past > 0) return true;
    int64_t np = (int64_t)q->n_prompt;
    if (l->phase == SERVE_SEQ_PREFILL && l->slot >= 0 && l->n_past < np) return false;
    q->leader = NULL;
    if (l->phase == SERVE_SEQ_DONE || l->slot < 0 || l->n_past < np) return true;
    if (ob_seq_fork(s->o.ctx, l->slot, q->slot, NULL) ||
        ob_seq_truncate(s->o.ctx, q->slot, np - 1, NULL)) {
        ob_seq_free(s->o.ctx, q->slot); /* back to an empty sequence: evaluate it all */
        return true;
    }
    q->n_past = np - 1;
    return true;
}

/* A decoding sequence's entries: its pending token, then the draft prompt lookup proposes (at
 * most max tokens, none when drafting is off for this step). */
static void add_decoding(serve_sched *s, serve_seq *q, int64_t max, bool drafting) {
    q->verify_at = s->batch->n;
    q->n_draft = 0;
    const int64_t room = s->n_ctx - q->n_past - 1; /* positions after the pending token's */
    if (drafting)
        q->n_draft = spec_seq_draft(&q->spec, q->tokens, (int64_t)q->n_tokens,
                                    room < max ? room : max, q->draft);
    batch_add(s, q, q->tokens[q->n_tokens - 1], q->n_past, true);
    for (int j = 0; j < q->n_draft; j++)
        batch_add(s, q, q->draft[j], q->n_past + 1 + j, true);
}

/* drafting: whether decoding sequences may add drafts (false when a step with drafts did not
 * fit the KV pool). Returns the draft entries added. */
static int64_t build_batch(serve_sched *s, bool drafting) {
    ob_batch_clear(s->batch);
    int64_t budget = s->o.n_batch, n_decoding = 0, n_drafts = 0;
    for (int i = 0; i < s->n_running; i++) {
        s->running[i]->verify_at = -1;
        n_decoding += s->running[i]->phase == SERVE_SEQ_DECODE;
    }
    /* Drafts share what the step has beyond one entry per stream, leaving a prompt chunk room
     * so that speculation never starves admission. */
    const int64_t spare = s->o.n_batch - n_decoding - SCHED_PREFILL_WHILE_DECODING;
    const int64_t per_seq = n_decoding && spare > 0 ? spare / n_decoding : 0;
    for (int i = 0; i < s->n_running; i++) {
        serve_seq *q = s->running[i];
        if (q->phase != SERVE_SEQ_DECODE) continue;
        add_decoding(s, q, per_seq, drafting);
        budget -= 1 + q->n_draft;
        n_drafts += q->n_draft;
    }
    /* Every decoding stream waits for the whole step, prefill chunk included: while streams
     * decode, a prompt is taken in smaller chunks so their inter-token gap stays short. */
    if (n_decoding && budget > SCHED_PREFILL_WHILE_DECODING)
        budget = SCHED_PREFILL_WHILE_DECODING;
    for (int i = 0; i < s->n_running && budget > 0; i++) {
        serve_seq *q = s->running[i];
        if (q->phase != SERVE_SEQ_PREFILL || !follow_leader(s, q)) continue;
        if (q->n_past == 0) attach_prefix(s, q);
        int64_t left = (int64_t)q->n_tokens - q->n_past;
        int64_t take = left < budget ? left : budget;
        for (int64_t k = 0; k < take; k++)
            batch_add(s, q, q->tokens[q->n_past + k], q->n_past + k, k == left - 1);
        budget -= take;
    }
    return n_drafts;
}

static bool seq_push(serve_seq *q, int32_t tok) {
    if (q->n_tokens == q->cap) {
        int32_t *grown = ob_realloc(q->tokens, q->cap * 2, sizeof *grown);
        if (!grown) return false;
        q->tokens = grown;
        q->cap *= 2;
    }
    q->tokens[q->n_tokens++] = tok;
    return true;
}

static void timing(serve_sched *s, serve_seq *q) {
    int64_t now = serve_now_ns();
    if (s->o.metrics) {
        if (!q->t_first_ns)
            serve_metrics_ttft(s->o.metrics, (now - q->task->t_start_ns) / 1e9);
        else
            serve_metrics_itl(s->o.metrics, (now - q->t_last_ns) / 1e9);
    }
    if (!q->t_first_ns) q->t_first_ns = now;
    q->t_last_ns = now;
}

/* The reasoning budget of q's request (its own, else the server's), -1 for none. */
static int64_t think_budget(const serve_sched *s, const serve_seq *q) {
    const int64_t own = q->task->req->reasoning_budget;
    return own >= 0 ? own : s->o.reasoning_budget;
}

/* Whether q's next token is one of the closing tokens the engine writes in place of a sampled
 * one: once its thinking has reached the budget, the format's end of reasoning goes into the
 * answer token by token (each evaluated like a sampled one) and the model continues after it.
 * Constrained sequences are left alone (their grammar decides every token) unless the grammar
 * waits for the reasoning to end. */
static bool next_is_forced(serve_sched *s, serve_seq *q) {
    if (q->forcing) return true;
    if (q->think_closed || !s->think_close || (q->matcher && !q->matcher_waits) || !q->out)
        return false;
    const int64_t budget = think_budget(s, q);
    if (budget < 0 || q->n_think < budget || !ob_chat_parser_in_reasoning(q->out)) return false;
    q->forcing = q->think_closed = true;
    q->forced_at = 0;
    return true;
}

static int32_t forced_token(serve_sched *s, serve_seq *q) {
    int32_t tok = s->think_close[q->forced_at++];
    if (q->forced_at == s->n_think_close) q->forcing = false;
    return tok;
}

/* Samples q's next token from its logits and moves its text on. Returns false when q ended:
 * its task may then be freed already (by this thread when streamed, else by the HTTP thread),
 * so the caller must not touch q again. */
static bool sample(serve_sched *s, serve_seq *q, const float *logits) {
    const serve_gen_req *r = q->task->req;
    if (task_gone(q->task)) {
        seq_done(s, q, NULL);
        return false;
    }
    if (r->max_tokens == 0) {
        seq_done(s, q, "length");
        return false;
    }
    const float *seen = sched_seq_logits(s, q, logits);
    const bool forced = next_is_forced(s, q);
    int32_t tok = forced ? forced_token(s, q) : ob_sampler_sample(q->sampler, seen);
    if (tok < 0 || !seq_push(q, tok)) {
        serve_error e;
        serve_error_set(&e, 500, "server_error", "numeric_error", NULL,
                        "the model produced no finite logit at position %lld",
                        (long long)q->n_tokens);
        task_fail(s, q->task, &e);
        seq_done(s, q, NULL);
        return false;
    }
    timing(s, q);
    if (r->logprobs) sched_seq_logprobs(s, q, seen, tok);
    q->n_gen++;
    if (q->counts) q->counts[tok]++;
    q->phase = SERVE_SEQ_DECODE;
    const char *end = NULL;
    /* with ignore_eos none is drawn; one that still comes (a draft accepted past the mask,
     * a grammar's end) is text like any other */
    if ((!r->sampling.ignore_eos && ob_token_is_eog(s->o.model, tok)) ||
        sched_seq_text(s, q, tok))
        end = "stop";
    else if ((r->max_tokens > 0 && q->n_gen >= r->max_tokens) || (int64_t)q->n_tokens >= s->n_ctx)
        end = "length";
    if (!end && !forced && q->out && ob_chat_parser_in_reasoning(q->out)) q->n_think++;
    if (!end && q->matcher_waits && !ob_chat_parser_in_reasoning(q->out)) {
        ob_sampler_set_matcher(q->sampler, q->matcher);
        q->matcher_waits = false;
    }
    if (end) seq_done(s, q, end);
    return !end;
}

static void fail_running(serve_sched *s, const char *what, const ob_err *err) {
    serve_error e;
    serve_error_set(&e, 500, "server_error", "engine_error", NULL, "%s: %s", what, err->msg);
    while (s->n_running > 0) {
        serve_seq *q = s->running[0];
        task_fail(s, q->task, &e);
        seq_done(s, q, NULL);
    }
}

/* A decoding sequence's rows after the step: draws from its pending token's row, then from
 * each next draft row while the draw equals that draft token (spec.h: the rejection rule with
 * the sequence's own sampler). The rejected positions are dropped by drop_rejected once every
 * row of the step is read (truncating sequence 0 forgets the step's logits). */
static void verify(serve_sched *s, serve_seq *q, int64_t i0) {
    const int d = q->n_draft;
    const int64_t base = q->n_past - (d + 1); /* positions before this step */
    int m = 0, accepted = 0;
    bool ended = false;
    for (;; m++) {
        if (!sample(s, q, ob_batch_logits(s->o.ctx, i0 + m))) {
            ended = true; /* q is not to be touched again */
            break;
        }
        const bool agrees = m < d && q->tokens[q->n_tokens - 1] == q->draft[m];
        accepted += agrees;
        if (!agrees) break;
    }
    if (s->o.metrics) serve_metrics_spec(s->o.metrics, d, accepted, m + 1);
    if (ended) return;
    spec_seq_update(&q->spec, d, accepted, m + 1, 0);
    q->n_past = base + 1 + m; /* the cache follows in drop_rejected */
}

/* Brings every running sequence's cache back to its n_past after verify. */
static void drop_rejected(serve_sched *s) {
    for (int i = 0; i < s->n_running;) {
        serve_seq *q = s->running[i];
        ob_err err;
        if (q->slot < 0 || ob_seq_n_past(s->o.ctx, q->slot) <= q->n_past ||
            !ob_seq_truncate(s->o.ctx, q->slot, q->n_past, &err)) {
            i++;
            continue;
        }
        serve_error e;
        serve_error_set(&e, 500, "server_error", "engine_error", NULL, "ob_seq_truncate: %s",
                        err.msg);
        task_fail(s, q->task, &e);
        seq_done(s, q, NULL); /* removes it from running[] */
    }
}

/* The context's device is gone: every running sequence goes back to the front of the queue,
 * oldest first, as a preempted one does (its tokens are evaluated again when it returns), and
 * the engine carries on with the context replan gives it. When there is none, they end with
 * the error and the engine stops trying. */
static void device_lost(serve_sched *s, const ob_err *why) {
    fprintf(stderr, "outboard serve: %s: %s: its layers move to what remains\n",
            s->o.model_id, why->msg);
    pthread_mutex_lock(&s->mu);
    int moved = 0;
    /* the youngest first to the front, so the oldest ends first; the old context's
     * bookkeeping is done before it goes */
    for (; s->n_running > 0; moved++) requeue_front(s, youngest_running(s));
    s->hold = false;
    pthread_mutex_unlock(&s->mu);
    ob_context *fresh = NULL;
    ob_err err;
    if (!s->o.replan(s->o.replan_user, &fresh, &err)) {
        s->o.ctx = fresh;
        s->xfer_seen = (ob_transfer_stats){0};
        pthread_mutex_lock(&s->mu); /* the new placement's speed from now on */
        s->speed = (serve_sched_speed){0};
        pthread_mutex_unlock(&s->mu);
        if (s->o.metrics) serve_metrics_device_lost(s->o.metrics);
        return;
    }
    s->o.replan = NULL;
    serve_error e;
    serve_error_set(&e, 500, "server_error", "engine_error", NULL, "the device was lost (%s) "
                    "and nothing else could take the model: %s", why->msg, err.msg);
    for (; moved > 0; moved--) {
        pthread_mutex_lock(&s->mu);
        serve_seq *q = s->waiting[0];
        memmove(s->waiting, s->waiting + 1, --s->n_waiting * sizeof *s->waiting);
        pthread_mutex_unlock(&s->mu);
        task_fail(s, q->task, &e);
        seq_done(s, q, NULL);
    }
}

static void step(serve_sched *s) {
    const int64_t n_drafts = build_batch(s, true);
    ob_batch *b = s->batch;
    if (b->n == 0) return;
    ob_err err;
    const int kind = sched_batch_kind(s, n_drafts);
    const int64_t t0 = serve_now_ns();
    ob_status st = ob_decode(s->o.ctx, b, &err);
    if (!st) sched_speed_add(s, kind, b->n, t0);
    if (st == OB_ERR_LIMIT && n_drafts > 0) { /* the pool is short: the same step undrafted */
        build_batch(s, false);
        st = ob_decode(s->o.ctx, b, &err);
    }
    if (st == OB_ERR_LIMIT && s->n_running > 1) {
        preempt_youngest(s);
        return;
    }
    if (st == OB_ERR_CANCELLED) return; /* shutting down */
    if (st == OB_ERR_DEVICE && s->o.replan) {
        device_lost(s, &err);
        return;
    }
    if (st) {
        fail_running(s, "ob_decode", &err);
        return;
    }
    for (int64_t i = 0; i < b->n; i++)
        s->entry[i]->n_past++;
    for (int i = 0; s->o.mtp && i < s->n_running; i++) { /* a prompt chunk's states */
        serve_seq *q = s->running[i];
        if (q->phase == SERVE_SEQ_PREFILL && q->slot >= 0 && q->n_past > 0 &&
            spec_seq_uses_mtp(&q->spec))
            spec_mtp_observe(s->o.mtp, q->slot, q->tokens, q->n_past);
    }
    for (int64_t i = 0; i < b->n; i++) {
        serve_seq *q = s->entry[i];
        if (!b->logits[i] || q->phase == SERVE_SEQ_DONE) continue;
        if (q->verify_at != i) {
            sample(s, q, ob_batch_logits(s->o.ctx, i));
            continue;
        }
        /* A decoding sequence's entries are contiguous: skip its draft rows, which verify
         * reads, without looking at q again (it may have ended and been freed). */
        const int64_t n_draft = q->n_draft;
        verify(s, q, i);
        i += n_draft;
    }
    if (n_drafts > 0) drop_rejected(s);
}

/* Running sequences whose task failed or whose client left. */
static void retire_gone(serve_sched *s) {
    for (int i = 0; i < s->n_running;) {
        serve_seq *q = s->running[i];
        if (task_gone(q->task))
            seq_done(s, q, NULL); /* removes it from running[] */
        else
            i++;
    }
}

static void update_gauges(serve_sched *s) {
    if (!s->o.metrics) return;
    ob_kv_stats st;
    ob_kv_stats_get(s->o.ctx, &st);
    serve_metrics_set_kv(s->o.metrics, st.blocks_used, st.blocks_total);
    serve_metrics_set_queue(s->o.metrics, (int64_t)s->n_waiting, s->n_running);
    ob_transfer_stats x;
    ob_context_transfer_stats(s->o.ctx, &x);
    const ob_transfer_stats delta = {
        .copies = x.copies - s->xfer_seen.copies, .bytes = x.bytes - s->xfer_seen.bytes,
        .ns = x.ns - s->xfer_seen.ns, .bytes_back = x.bytes_back - s->xfer_seen.bytes_back,
        .weight_bytes = x.weight_bytes - s->xfer_seen.weight_bytes,
        .streamed = x.streamed - s->xfer_seen.streamed,
        .expert_bytes = x.expert_bytes - s->xfer_seen.expert_bytes,
        .expert_weight_bytes = x.expert_weight_bytes - s->xfer_seen.expert_weight_bytes};
    serve_metrics_transfer(s->o.metrics, &delta);
    s->xfer_seen = x;
}

bool serve_sched_idle(serve_sched *s) {
    pthread_mutex_lock(&s->mu);
    bool idle = s->n_waiting == 0 && s->n_running == 0;
    pthread_mutex_unlock(&s->mu);
    return idle;
}

/* Shutdown: every queued and running request ends with a 503. */
static void drain(serve_sched *s) {
    serve_error e;
    serve_error_set(&e, 503, "server_error", "shutting_down", NULL, "the server is shutting down");
    pthread_mutex_lock(&s->mu);
    while (s->n_waiting > 0) {
        serve_seq *q = s->waiting[--s->n_waiting];
        task_fail(s, q->task, &e);
        pthread_mutex_unlock(&s->mu);
        seq_done(s, q, NULL);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    while (s->n_running > 0) {
        task_fail(s, s->running[0]->task, &e);
        seq_done(s, s->running[0], NULL);
    }
}

static void *engine_main(void *arg) {
    serve_sched *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        admit(s);
        update_gauges(s);
        bool stop = atomic_load(&s->stopping), watch = false;
        if (!stop && s->n_running == 0) watch = sched_idle_wait(s);
        pthread_mutex_unlock(&s->mu);
        if (stop) break;
        if (watch) sched_replug(s);
        retire_gone(s);
        if (s->n_running > 0) step(s);
    }
    drain(s);
    return NULL;
}

/* ---- the HTTP side ---- */

static bool abort_cb(void *user) {
    return atomic_load(&((serve_sched *)user)->stopping);
}

/* The tokens written to close reasoning at a budget: the format's end marker on its own line
 * followed by a blank line, as thinking templates lay it out ("\n</think>\n\n"); its
 * special-token text becomes the special token. */
static void think_close_tokens(serve_sched *s) {
    const char *close = ob_chat_reasoning_close(s->o.prompter->chat);
    char text[64];
    if (!close || snprintf(text, sizeof text, "\n%s\n\n", close) >= (int)sizeof text) return;
    size_t n = 0;
    if (ob_tokenize(s->o.model, text, strlen(text), false, true, &s->think_close, &n, NULL) ||
        n == 0) {
        ob_tokens_free(s->think_close);
        s->think_close = NULL;
        return;
    }
    s->n_think_close = n;
}

ob_status serve_sched_start(const serve_sched_opts *o, serve_sched **out, ob_err *err) {
    if (o->n_parallel < 1 || o->n_batch < 1)
        return ob_fail(err, OB_ERR_ARG, "scheduler: n_parallel %d and n_batch %lld must be >= 1",
                       o->n_parallel, (long long)o->n_batch);
    serve_sched *s = ob_calloc(1, sizeof *s);
    if (!s) return ob_fail(err, OB_ERR_NOMEM, "out of memory for the scheduler");
    s->o = *o;
    ob_model_info info;
    ob_model_get_info(o->model, &info);
    s->n_vocab = info.n_vocab;
    s->n_ctx = ob_context_n_ctx(o->ctx);
    think_close_tokens(s);
    atomic_init(&s->stopping, false);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->trie_mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    /* Admission keeps the queue within max_queue + free slots; preempted seqs come back from
     * the running ones: this bound is never passed. */
    s->cap_waiting = (size_t)o->max_queue + 2 * (size_t)o->n_parallel + 1;
    s->waiting = ob_calloc(s->cap_waiting, sizeof *s->waiting);
    s->running = ob_calloc((size_t)o->n_parallel, sizeof *s->running);
    s->slot_used = ob_calloc((size_t)o->n_parallel, sizeof *s->slot_used);
    s->entry = ob_calloc((size_t)(o->n_batch + o->n_parallel), sizeof *s->entry);
    ob_status st = !s->waiting || !s->running || !s->slot_used || !s->entry
                       ? ob_fail(err, OB_ERR_NOMEM, "out of memory for the scheduler")
                       : ob_batch_new(o->n_batch + o->n_parallel, &s->batch, err);
    /* Before the thread starts: from then on only the engine thread touches the context. */
    if (!st) ob_context_set_abort(o->ctx, abort_cb, s);
    if (!st && pthread_create(&s->thread, NULL, engine_main, s))
        st = ob_fail(err, OB_ERR_NOMEM, "scheduler: cannot start the engine thread");
    if (st) {
        ob_context_set_abort(o->ctx, NULL, NULL);
        serve_sched_free(s);
        return st;
    }
    s->started = true;
    *out = s;
    return OB_OK;
}

void serve_sched_stop(serve_sched *s) {
    if (!s || !s->started) return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stopping, true);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->started = false;
    ob_context_set_abort(s->o.ctx, NULL, NULL);
}

void serve_sched_free(serve_sched *s) {
    if (!s) return;
    serve_sched_stop(s);
    ob_batch_free(s->batch);
    ob_free(s->waiting);
    ob_free(s->running);
    ob_free(s->slot_used);
    ob_free(s->entry);
    ob_free(s->eog);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->trie_mu);
    ob_vocab_trie_free(s->trie);
    ob_tokens_free(s->think_close);
    pthread_cond_destroy(&s->cv);
    ob_free(s);
}

/* Queues every seq of t, or refuses: 503 with Retry-After when the queue is full or the
 * server is stopping. */
static int submit(serve_sched *s, serve_task *t, serve_error *e) {
    pthread_mutex_lock(&s->mu);
    int64_t free_slots = s->o.n_parallel - s->n_running;
    int rc = 0;
    if (atomic_load(&s->stopping)) {
        rc = serve_error_set(e, 503, "server_error", "shutting_down", NULL,
                             "the server is shutting down");
    } else if (t->n_seqs > s->o.max_queue + s->o.n_parallel) {
        /* never admissible, whatever the load: a client error, not a retry */
        rc = serve_error_bad(e, "limit_exceeded", "n",
                             "n: %d sequences (choices x prompts), this server holds at most "
                             "%lld at once (--parallel %d + --queue %lld)",
                             t->n_seqs, (long long)(s->o.max_queue + s->o.n_parallel),
                             s->o.n_parallel, (long long)s->o.max_queue);
    } else if ((int64_t)s->n_waiting + t->n_seqs >
               s->o.max_queue + (free_slots > 0 ? free_slots : 0)) {
        rc = serve_error_set(e, 503, "server_error", "queue_full", NULL,
                             "the queue is full: %zu sequences waiting, the limit is %lld "
                             "(--queue); retry later",
                             s->n_waiting, (long long)s->o.max_queue);
        e->retry_after = 1;
    } else {
        for (int i = 0; i < t->n_seqs; i++)
            s->waiting[s->n_waiting++] = &t->seqs[i];
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Ollama's "load the model" request (no prompt, no messages): done at once. */
static bool load_only(serve_sched *s, serve_gen_req *r, serve_http_resp *resp) {
    bool empty = r->kind == SERVE_KIND_CHAT ? json_array_size(r->messages) == 0 : r->n_prompts == 0;
    if (r->dialect != SERVE_DIALECT_OLLAMA || !empty) return false;
    serve_choice ch = {.text = "", .finish_reason = "load"};
    serve_ollama_stats st = {0};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    const char *model = r->model[0] ? r->model : s->o.model_id;
    json_t *v = r->kind == SERVE_KIND_CHAT ? serve_ollama_chat(model, now, &ch, &st)
                                           : serve_ollama_generate(model, now, &ch, &st);
    resp->status = 200;
    resp->body = v ? serve_ndjson_line(v, &resp->body_len) : NULL;
    json_decref(v);
    if (!resp->body) resp->status = 500;
    return true;
}

/* Waits for a whole-body task; a client that leaves meanwhile cancels it (checked every
 * 200 ms: the engine keeps running other requests, so this costs nothing but the wake-up). */
static void wait_done(serve_task *t, const serve_http_req *req) {
    pthread_mutex_lock(&t->mu);
    while (!t->done) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 200000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&t->cv, &t->mu, &until);
        if (!t->done && req && req->gone && !atomic_load(&t->cancelled) && req->gone(req))
            atomic_store(&t->cancelled, true);
    }
    pthread_mutex_unlock(&t->mu);
}

void serve_sched_generate(void *user, const serve_http_req *req, serve_gen_req *r,
                          serve_http_resp *resp) {
    serve_sched *s = user;
    serve_dialect d = r->dialect;
    bool stream = r->stream;
    serve_task *t = NULL;
    serve_error e;
    if (load_only(s, r, resp)) {
        serve_gen_req_free(r);
        return;
    }
    if (sched_task_new(s, r, &t, &e)) { /* r is freed */
        serve_app_error(d, &e, resp);
        return;
    }
    if (stream && !(t->stream = serve_stream_new())) {
        sched_task_free(t);
        serve_req_nomem(&e, "the stream");
        serve_app_error(d, &e, resp);
        return;
    }
    serve_stream *st = t->stream;
    if (st) serve_stream_ref(st); /* the response's reference, taken before the engine runs */
    if (st && t->prompt_text && t->req->echo && t->n_seqs == 1) /* echo: the prompt first */
        serve_emit_delta(t, &t->seqs[0], t->prompt_text, strlen(t->prompt_text), NULL, 0, NULL, 0);
    if (submit(s, t, &e)) {
        serve_stream_unref(st);
        sched_task_free(t);
        serve_app_error(d, &e, resp);
        return;
    }
    if (st) {
        resp->status = 200;
        resp->content_type =
            d == SERVE_DIALECT_OLLAMA ? "application/x-ndjson" : "text/event-stream";
        resp->stream = st;
        return;
    }
    wait_done(t, req);
    if (t->failed) {
        serve_app_error(d, &t->err, resp);
    } else {
        resp->status = 200;
        resp->body = serve_emit_body(t, &resp->body_len);
        if (!resp->body) resp->status = 500;
    }
    sched_task_free(t);
}

int serve_sched_count_tokens(void *user, const serve_gen_req *r, int64_t *n, serve_error *e) {
    serve_sched *s = user;
    int32_t *ids = NULL;
    size_t got = 0;
    if (serve_prompt_tokens(s->o.prompter, r, 0, &ids, &got, NULL, e)) return -1;
    ob_free(ids);
    *n = (int64_t)got;
    return 0;
}
