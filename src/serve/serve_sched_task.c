/*
 * Tasks and the text path of a sequence (serve_sched_int.h). A task is built entirely on the
 * HTTP thread (templates and tokenization are not the engine's work), so the engine thread
 * only ever evaluates, samples and emits.
 */
#include "serve/serve_sched_int.h"

#include "core/alloc.h"
#include "serve/serve_constraint.h"
#include "serve/serve_response.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void sched_task_free(serve_task *t) {
    if (!t) return;
    for (int i = 0; i < t->n_seqs; i++) {
        serve_seq *q = &t->seqs[i];
        ob_free(q->tokens);
        ob_sampler_free(q->sampler);
        ob_matcher_free(q->matcher);
        ob_detok_free(q->detok);
        serve_stop_free(q->stop);
        ob_chat_parser_free(q->out);
        ob_free(q->counts);
        ob_free(q->scratch);
        serve_buf_clear(&q->text);
        serve_buf_clear(&q->reasoning);
        json_decref(q->calls);
        json_decref(q->items);
        json_decref(q->lp);
    }
    ob_free(t->seqs);
    serve_stream_unref(t->stream);
    serve_gen_req_free(t->req);
    ob_free(t->prompt_text);
    ob_grammar_free(t->grammar);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    ob_free(t);
}

static int seq_sampler(serve_sched *s, serve_seq *q, serve_error *e) {
    const serve_sampling *sp = &q->task->req->sampling;
    ob_sampler_params p;
    ob_sampler_params_init(&p);
    p.temp = sp->temperature;
    p.top_k = sp->top_k;
    p.top_p = sp->top_p;
    p.min_p = sp->min_p;
    p.repeat_penalty = sp->repeat_penalty;
    p.repeat_last_n = sp->repeat_last_n < 0 ? (int32_t)s->n_ctx : sp->repeat_last_n;
    /* Without a seed every choice draws differently; with one, choice i uses seed + i so n > 1
     * gives n answers that are each reproducible. */
    p.seed = sp->has_seed ? sp->seed + (uint64_t)q->index
                          : (uint64_t)serve_now_ns() ^ ((uint64_t)q->index << 32);
    ob_err err;
    if (ob_sampler_new(&p, s->n_vocab, &q->sampler, &err))
        return serve_error_bad(e, "invalid_value", NULL, "sampling parameters: %s", err.msg);
    spec_params spec = s->o.spec;
    if (q->task->req->speculative == SPEC_MODE_DRAFT && !s->o.drafter)
        return serve_error_bad(e, "invalid_value", "speculative", "speculative: 'draft' needs a "
                               "draft model, which this server does not load for this model "
                               "(serve --model-draft); expected auto, off or ngram");
    if (q->task->req->speculative == SPEC_MODE_MTP && !s->o.mtp)
        return serve_error_bad(e, "invalid_value", "speculative", "speculative: 'mtp' needs the "
                               "model's multi-token-prediction block, which this server does "
                               "not run for this model (a model with nextn layers, serve --spec "
                               "auto or mtp); expected auto, off or ngram");
    if (q->task->req->speculative >= 0) spec.mode = (spec_mode)q->task->req->speculative;
    spec_seq_init(&q->spec, &spec, s->o.ctx); /* reads only what the context fixed at its start */
    for (size_t i = 0; i < q->n_prompt; i++)
        ob_sampler_accept(q->sampler, q->tokens[i]);
    if (!q->task->grammar) return 0;
    ob_status st = ob_matcher_new(q->task->grammar, s->trie, &q->matcher, &err);
    if (st == OB_ERR_ARG) /* a token element that names no token of this vocabulary */
        return serve_error_bad(e, "invalid_value", "grammar", "%s", err.msg);
    if (st) return serve_req_nomem(e, "the grammar matcher");
    ob_sampler_set_matcher(q->sampler, q->matcher);
    return 0;
}

static int seq_init(serve_sched *s, serve_task *t, serve_seq *q, const int32_t *ids, size_t n,
                    const char *prompt_text, serve_error *e) {
    const serve_gen_req *r = t->req;
    q->task = t;
    q->slot = -1;
    q->block = -1;
    q->cap = n + 64;
    q->tokens = ob_alloc(q->cap, sizeof *q->tokens);
    if (!q->tokens) return serve_req_nomem(e, "the prompt");
    memcpy(q->tokens, ids, n * sizeof *ids);
    q->n_tokens = q->n_prompt = n;
    if (seq_sampler(s, q, e)) return -1;
    ob_err err;
    const ob_chat *chat = s->o.prompter->chat;
    bool special = r->kind == SERVE_KIND_CHAT && ob_chat_markup_is_special(chat);
    if (ob_detok_new(s->o.model, special, &q->detok, &err) ||
        serve_stop_new((const char *const *)r->stop, r->n_stop, &q->stop, &err))
        return serve_req_nomem(e, "the detokenizer");
    if (r->kind == SERVE_KIND_COMPLETION) ob_detok_continue(q->detok);
    if (r->kind == SERVE_KIND_CHAT) {
        bool with_tools = r->tools && r->tool_choice != SERVE_TOOL_CHOICE_NONE;
        char *tools = with_tools ? json_dumps(r->tools, JSON_COMPACT) : NULL;
        ob_chat_parse_params pp = {.prompt = prompt_text,
                                   .prompt_len = prompt_text ? strlen(prompt_text) : 0,
                                   .tools = tools, .tools_len = tools ? strlen(tools) : 0};
        ob_status st = ob_chat_parser_new(chat, &pp, &q->out, &err);
        free(tools);
        if (st) return serve_req_nomem(e, "the output parser");
        /* A thinking model whose prompt opened its reasoning thinks freely first: a schema,
         * grammar or forced tool call is what its answer after the reasoning must follow. */
        if (q->matcher && ob_chat_parser_in_reasoning(q->out)) {
            ob_sampler_set_matcher(q->sampler, NULL);
            q->matcher_waits = true;
        }
    }
    const serve_sampling *sp = &r->sampling;
    if (sp->presence_penalty != 0 || sp->frequency_penalty != 0) {
        q->counts = ob_calloc((size_t)s->n_vocab, sizeof *q->counts);
        if (!q->counts) return serve_req_nomem(e, "penalties");
    }
    if (q->counts || sp->n_logit_bias || sp->ignore_eos) {
        q->scratch = ob_alloc((size_t)s->n_vocab, sizeof *q->scratch);
        if (!q->scratch) return serve_req_nomem(e, "logit_bias");
    }
    return 0;
}

/* Tokenizes prompt p of r and makes its n choices (seqs from *at on). */
static int task_prompt(serve_sched *s, serve_task *t, size_t p, int *at, serve_error *e) {
    int32_t *ids = NULL;
    size_t n = 0;
    char *text = NULL;
    if (serve_prompt_tokens(s->o.prompter, t->req, p, &ids, &n, &text, e)) return -1;
    t->prompt_tokens += (int64_t)n;
    int rc = 0;
    serve_seq *first = &t->seqs[*at];
    for (int j = 0; j < t->req->n && !rc; j++) {
        serve_seq *q = &t->seqs[*at];
        q->index = (*at)++;
        q->leader = j ? first : NULL;
        rc = seq_init(s, t, q, ids, n, text, e);
    }
    ob_free(ids);
    ob_string_free(text);
    return rc;
}

/* The vocabulary trie the first time a request needs one, then the request's grammar (a
 * forced tool call writes the markers that are control tokens as those tokens). */
static int task_grammar(serve_sched *s, serve_task *t, serve_error *e) {
    if (!serve_constraint_wanted(t->req)) return 0;
    ob_err err = {{0}};
    pthread_mutex_lock(&s->trie_mu);
    ob_status st = s->trie ? OB_OK : ob_vocab_trie_new(s->o.model, &s->trie, &err);
    pthread_mutex_unlock(&s->trie_mu);
    if (st == OB_ERR_NOMEM) return serve_req_nomem(e, "the vocabulary trie");
    if (st)
        return serve_error_bad(e, "unsupported_value", "grammar", "constrained output: %s",
                               err.msg);
    if (serve_constraint_build(t->req, s->o.prompter->chat, s->trie, &t->grammar, e)) return -1;
    return 0;
}

static int task_setup(serve_sched *s, serve_task *t, serve_error *e) {
    serve_gen_req *r = t->req;
    size_t n_prompts = r->kind == SERVE_KIND_CHAT ? 1 : r->n_prompts;
    t->n_seqs = (int)n_prompts * r->n;
    t->seqs = ob_calloc((size_t)t->n_seqs, sizeof *t->seqs);
    if (!t->seqs) return serve_req_nomem(e, "the request");
    t->model = r->model[0] ? r->model : s->o.model_id;
    t->created = (int64_t)time(NULL);
    t->t_start_ns = serve_now_ns();
    pthread_mutex_lock(&s->mu);
    uint64_t id = ++s->next_id;
    pthread_mutex_unlock(&s->mu);
    snprintf(t->id, sizeof t->id, "%s-%llx%08llx", r->kind == SERVE_KIND_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)t->created, (unsigned long long)id);
    if (r->kind == SERVE_KIND_COMPLETION && r->n_prompts == 1 && r->prompts[0].text &&
        serve_req_strdup(&t->prompt_text, r->prompts[0].text, r->prompts[0].text_len, e))
        return -1;
    if (task_grammar(s, t, e)) return -1;
    int at = 0;
    for (size_t p = 0; p < n_prompts; p++)
        if (task_prompt(s, t, p, &at, e)) return -1;
    return 0;
}

int sched_task_new(serve_sched *s, serve_gen_req *r, serve_task **out, serve_error *e) {
    serve_task *t = ob_calloc(1, sizeof *t);
    if (!t) {
        serve_gen_req_free(r);
        return serve_req_nomem(e, "the request");
    }
    t->req = r;
    atomic_init(&t->cancelled, false);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (task_setup(s, t, e)) {
        sched_task_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

/* Released text to the output parser (chat) or straight to the emitter. */
static void deliver(serve_seq *q, const char *text, size_t n) {
    if (!q->out) {
        serve_emit_delta(q->task, q, text, n, NULL, 0, NULL, 0);
        return;
    }
    ob_chat_delta d;
    memset(&d, 0, sizeof d);
    if (n && ob_chat_parser_feed(q->out, text, n, &d, NULL) == OB_OK)
        serve_emit_delta(q->task, q, d.content, d.content_len, d.reasoning, d.reasoning_len,
                         d.calls, d.n_calls);
}

bool sched_seq_text(serve_sched *s, serve_seq *q, int32_t token) {
    char buf[1024];
    size_t n = ob_detok_push(q->detok, token, buf, sizeof buf);
    const char *out;
    size_t k = serve_stop_push(q->stop, buf, n, &out);
    deliver(q, out, k);
    return serve_stop_hit(q->stop) >= 0;
}

void sched_seq_flush(serve_sched *s, serve_seq *q, const char *reason) {
    if (serve_stop_hit(q->stop) < 0) {
        char buf[64];
        size_t n = ob_detok_flush(q->detok, buf, sizeof buf);
        const char *out;
        size_t k = serve_stop_push(q->stop, buf, n, &out);
        deliver(q, out, k);
        k = serve_stop_flush(q->stop, &out);
        deliver(q, out, k);
    }
    q->finish = reason;
    if (!q->out) return;
    ob_chat_delta d;
    ob_chat_reply res;
    memset(&d, 0, sizeof d);
    memset(&res, 0, sizeof res);
    if (ob_chat_parser_finish(q->out, &d, &res, NULL) != OB_OK) return;
    serve_emit_delta(q->task, q, d.content, d.content_len, d.reasoning, d.reasoning_len, d.calls,
                     d.n_calls);
    if (!q->task->stream) {
        /* The whole answer as the parser gives it (trimmed), rather than the deltas. */
        serve_buf_clear(&q->text);
        serve_buf_clear(&q->reasoning);
        serve_buf_append(&q->text, res.content ? res.content : "", res.content_len);
        if (res.reasoning_len) serve_buf_append(&q->reasoning, res.reasoning, res.reasoning_len);
    }
    if (q->n_calls_sent > 0 && !strcmp(reason, "stop")) q->finish = "tool_calls";
    ob_chat_reply_clear(&res);
}

/* The model's end-of-generation tokens into s->eog (once; on the engine thread). */
static void list_eog(serve_sched *s) {
    if (s->eog_listed) return;
    s->eog_listed = true;
    size_t n = 0;
    for (int64_t v = 0; v < s->n_vocab; v++) n += ob_token_is_eog(s->o.model, (int32_t)v);
    s->eog = ob_alloc(n ? n : 1, sizeof *s->eog);
    for (int64_t v = 0; s->eog && v < s->n_vocab; v++)
        if (ob_token_is_eog(s->o.model, (int32_t)v)) s->eog[s->n_eog++] = (int32_t)v;
}

const float *sched_seq_logits(serve_sched *s, serve_seq *q, const float *logits) {
    if (!q->scratch) return logits;
    const serve_sampling *sp = &q->task->req->sampling;
    memcpy(q->scratch, logits, (size_t)s->n_vocab * sizeof *logits);
    if (sp->ignore_eos) {
        list_eog(s);
        for (size_t i = 0; i < s->n_eog; i++) q->scratch[s->eog[i]] = -INFINITY;
    }
    for (size_t i = 0; i < sp->n_logit_bias; i++) {
        const serve_logit_bias *b = &sp->logit_bias[i];
        if (b->token >= s->n_vocab) continue;
        /* OpenAI: -100 bans a token; anything else shifts its logit. */
        q->scratch[b->token] = b->bias <= -100.0f ? -INFINITY : q->scratch[b->token] + b->bias;
    }
    if (q->counts)
        for (int64_t v = 0; v < s->n_vocab; v++)
            if (q->counts[v])
                q->scratch[v] -= sp->presence_penalty + sp->frequency_penalty * (float)q->counts[v];
    return q->scratch;
}

/* The text of one token alone (a fresh detokenizer, leading space kept). */
static size_t token_piece(const ob_model *m, int32_t id, char *buf, size_t cap) {
    ob_detok *d = NULL;
    if (ob_detok_new(m, false, &d, NULL)) return 0;
    ob_detok_continue(d);
    size_t n = ob_detok_push(d, id, buf, cap);
    n += ob_detok_flush(d, buf + n, cap - n);
    ob_detok_free(d);
    return n;
}

static json_t *lp_entry(serve_sched *s, int32_t id, double lp, json_t *top) {
    char piece[256];
    size_t n = token_piece(s->o.model, id, piece, sizeof piece);
    json_t *e = serve_oai_logprob(piece, n, lp, top);
    if (e && !top) json_object_del(e, "top_logprobs");
    return e;
}

void sched_seq_logprobs(serve_sched *s, serve_seq *q, const float *logits, int32_t tok) {
    int k = q->task->req->top_logprobs;
    /* log-softmax: logprob(v) = logits[v] - (max + log(sum(exp(logits - max)))) */
    float max = -INFINITY;
    for (int64_t v = 0; v < s->n_vocab; v++)
        if (logits[v] > max) max = logits[v];
    double sum = 0;
    for (int64_t v = 0; v < s->n_vocab; v++)
        sum += exp((double)logits[v] - max);
    double lse = max + log(sum);
    json_t *top = json_array();
    int32_t picked[SERVE_MAX_TOP_LOGPROBS];
    /* k passes of a max scan: k <= 20, and n_vocab reads are cheap next to a forward pass */
    for (int j = 0; top && j < k; j++) {
        int32_t best = -1;
        for (int64_t v = 0; v < s->n_vocab; v++) {
            bool taken = false;
            for (int i = 0; i < j; i++)
                taken |= picked[i] == v;
            if (!taken && (best < 0 || logits[v] > logits[best])) best = (int32_t)v;
        }
        picked[j] = best;
        json_array_append_new(top, lp_entry(s, best, logits[best] - lse, NULL));
    }
    if (!q->lp) q->lp = json_array();
    json_array_append_new(q->lp, lp_entry(s, tok, logits[tok] - lse, top));
    json_decref(top);
}
