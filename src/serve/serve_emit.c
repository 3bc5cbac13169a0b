/*
 * What a generation looks like on the wire (serve_task.h): OpenAI SSE chunks and bodies,
 * Ollama NDJSON lines and final objects. The scheduler calls these from the engine thread as
 * text becomes final; nothing here touches the engine.
 */
#include "serve/serve_task.h"

#include "core/alloc.h"
#include "serve/serve_response.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t serve_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static bool is_openai(const serve_task *t) {
    return t->req->dialect == SERVE_DIALECT_OPENAI;
}
static bool is_chat(const serve_task *t) {
    return t->req->kind == SERVE_KIND_CHAT;
}
static bool is_anthropic(const serve_task *t) {
    return t->req->dialect == SERVE_DIALECT_ANTHROPIC;
}
static bool is_responses(const serve_task *t) {
    return t->req->dialect == SERVE_DIALECT_RESPONSES;
}
static bool is_llamacpp(const serve_task *t) {
    return t->req->dialect == SERVE_DIALECT_LLAMACPP;
}

/* llama.cpp's server's completion object: {"index", "content", "stop"} while streaming, and
 * with the counts and why it stopped at the end. */
static json_t *llamacpp_obj(const serve_task *t, const serve_seq *q, const char *text,
                            size_t len, bool final) {
    json_t *v = json_pack("{s:i, s:s%, s:b}", "index", q->index, "content", text ? text : "",
                          text ? len : 0, "stop", final);
    if (!v || !final) return v;
    const char *type = !q->finish || !strcmp(q->finish, "length") ? "limit"
                       : q->stop && serve_stop_hit(q->stop) >= 0  ? "word"
                                                                  : "eos";
    json_t *more = json_pack("{s:s, s:I, s:I, s:s, s:b}", "model", t->model, "tokens_predicted",
                             (json_int_t)q->n_gen, "tokens_evaluated",
                             (json_int_t)t->prompt_tokens, "stop_type", type, "truncated", 0);
    json_object_update(v, more);
    json_decref(more);
    return v;
}

void serve_emit_event(serve_task *t, const char *event, json_t *v) {
    if (!v) return;
    size_t len = 0;
    char *s = serve_sse_event_frame(event, v, &len);
    json_decref(v);
    if (s) serve_stream_write(t->stream, s, len);
    ob_free(s);
}

/* Writes v to the stream as an SSE event (OpenAI) or an NDJSON line (Ollama); consumes v. A
 * failed write means the client left: the scheduler sees the stream cancelled. */
static void send_json(serve_task *t, json_t *v) {
    if (!v) return;
    size_t len = 0;
    char *s = t->req->dialect != SERVE_DIALECT_OLLAMA ? serve_sse_frame(v, &len)
                                                      : serve_ndjson_line(v, &len);
    json_decref(v);
    if (s) serve_stream_write(t->stream, s, len);
    ob_free(s);
}

/* An OpenAI tool call; delta form carries its index in the message's list. */
static json_t *oai_call(const ob_tool_call *c, int index, bool delta) {
    char id[64];
    if (c->id)
        snprintf(id, sizeof id, "%s", c->id);
    else
        snprintf(id, sizeof id, "call_%d", index);
    json_t *v = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function", "function",
                          "name", c->name, "arguments", c->arguments);
    if (v && delta) json_object_set_new(v, "index", json_integer(index));
    return v;
}

/* Ollama's form: arguments as an object. */
static json_t *ollama_call(const ob_tool_call *c) {
    json_t *args = json_loads(c->arguments, 0, NULL);
    if (!args) args = json_object();
    return json_pack("{s:{s:s, s:o}}", "function", "name", c->name, "arguments", args);
}

static json_t *calls_array(const serve_seq *q, const ob_tool_call *calls, size_t n, bool openai) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, openai ? oai_call(&calls[i], q->n_calls_sent + (int)i, true)
                                          : ollama_call(&calls[i]));
    return arr;
}

/* The legacy completions form of the entries (OpenAI's /v1/completions logprobs). */
static json_t *legacy_logprobs(serve_seq *q, json_t *entries) {
    json_t *toks = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        json_t *top = json_object(), *alt;
        size_t j;
        json_array_foreach(json_object_get(e, "top_logprobs"), j, alt) json_object_set(
            top, json_string_value(json_object_get(alt, "token")), json_object_get(alt, "logprob"));
        json_array_append(toks, json_object_get(e, "token"));
        json_array_append(lps, json_object_get(e, "logprob"));
        json_array_append_new(tops, top);
        json_array_append_new(offs, json_integer(q->lp_offset));
        q->lp_offset += (int64_t)json_array_size(json_object_get(e, "bytes"));
    }
    return json_pack("{s:o, s:o, s:o, s:o}", "tokens", toks, "token_logprobs", lps, "top_logprobs",
                     tops, "text_offset", offs);
}

json_t *serve_emit_logprobs(serve_task *t, serve_seq *q) {
    if (!q->lp || !json_array_size(q->lp)) return NULL;
    json_t *entries = q->lp;
    q->lp = NULL;
    json_t *v = is_chat(t) ? json_pack("{s:O}", "content", entries) : legacy_logprobs(q, entries);
    json_decref(entries);
    return v;
}

static void stream_delta(serve_task *t, serve_seq *q, const char *c, size_t cl, const char *r,
                         size_t rl, const ob_tool_call *calls, size_t n_calls) {
    json_t *tc = n_calls ? calls_array(q, calls, n_calls, is_openai(t)) : NULL;
    serve_choice ch = {.index = q->index,
                       .text = c,
                       .text_len = cl,
                       .reasoning = r,
                       .reasoning_len = rl,
                       .tool_calls = tc};
    serve_resp_meta m = {t->id, t->created, t->model};
    json_t *lp = is_openai(t) ? serve_emit_logprobs(t, q) : NULL;
    ch.logprobs = lp;
    if (!is_openai(t)) {
        if (!ch.text) ch.text = "";
        send_json(t, is_chat(t) ? serve_ollama_chat(t->model, wall_ns(), &ch, NULL)
                                : serve_ollama_generate(t->model, wall_ns(), &ch, NULL));
    } else if (is_chat(t)) {
        ch.role = !q->sent_role;
        q->sent_role = true;
        send_json(t, serve_oai_chat_chunk(&m, &ch));
    } else {
        send_json(t, serve_oai_text_chunk(&m, &ch));
    }
    json_decref(tc);
    json_decref(lp);
}

void serve_emit_delta(serve_task *t, serve_seq *q, const char *content, size_t clen,
                      const char *reasoning, size_t rlen, const ob_tool_call *calls,
                      size_t n_calls) {
    if (!clen) content = NULL;
    if (!rlen) reasoning = NULL;
    if (!content && !reasoning && !n_calls) return;
    if (t->stream && is_anthropic(t)) {
        serve_anthropic_delta(t, q, content, clen, reasoning, rlen, calls, n_calls);
    } else if (t->stream && is_responses(t)) {
        serve_responses_delta(t, q, content, clen, reasoning, rlen, calls, n_calls);
    } else if (t->stream && is_llamacpp(t)) {
        if (content) send_json(t, llamacpp_obj(t, q, content, clen, false));
    } else if (t->stream) {
        stream_delta(t, q, content, clen, reasoning, rlen, calls, n_calls);
    } else {
        if (content) serve_buf_append(&q->text, content, clen);
        if (reasoning) serve_buf_append(&q->reasoning, reasoning, rlen);
        for (size_t i = 0; i < n_calls; i++) {
            if (!q->calls) q->calls = json_array();
            json_array_append_new(
                q->calls, t->req->dialect != SERVE_DIALECT_OLLAMA
                              ? oai_call(&calls[i], q->n_calls_sent + (int)i, false)
                              : ollama_call(&calls[i]));
        }
    }
    q->n_calls_sent += (int)n_calls;
}

static serve_usage usage_of(const serve_task *t) {
    serve_usage u = {t->prompt_tokens, 0, t->cached_tokens, t->route[0] ? t->route : NULL};
    for (int i = 0; i < t->n_seqs; i++)
        u.completion_tokens += t->seqs[i].n_gen;
    return u;
}

static serve_ollama_stats stats_of(const serve_task *t, const serve_seq *q) {
    int64_t now = serve_now_ns();
    int64_t first = q->t_first_ns ? q->t_first_ns : now;
    serve_ollama_stats st = {
        now - t->t_start_ns,   0,        t->prompt_tokens - t->cached_tokens,
        first - t->t_start_ns, q->n_gen, (q->t_last_ns ? q->t_last_ns : now) - first};
    return st;
}

void serve_emit_finish(serve_task *t, serve_seq *q) {
    if (!t->stream) return;
    if (is_anthropic(t)) {
        serve_anthropic_finish(t, q);
        return;
    }
    if (is_responses(t)) {
        serve_responses_finish(t, q);
        return;
    }
    if (is_llamacpp(t)) {
        send_json(t, llamacpp_obj(t, q, NULL, 0, true));
        return;
    }
    serve_choice ch = {.index = q->index, .finish_reason = q->finish};
    serve_resp_meta m = {t->id, t->created, t->model};
    json_t *lp = is_openai(t) ? serve_emit_logprobs(t, q) : NULL; /* held-back entries */
    ch.logprobs = lp;
    if (!is_openai(t)) {
        serve_ollama_stats st = stats_of(t, q);
        ch.text = "";
        send_json(t, is_chat(t) ? serve_ollama_chat(t->model, wall_ns(), &ch, &st)
                                : serve_ollama_generate(t->model, wall_ns(), &ch, &st));
    } else if (is_chat(t)) {
        ch.role = !q->sent_role;
        q->sent_role = true;
        send_json(t, serve_oai_chat_chunk(&m, &ch));
    } else {
        send_json(t, serve_oai_text_chunk(&m, &ch));
    }
    json_decref(lp);
}

void serve_emit_end(serve_task *t) {
    if (!t->stream) return;
    if (is_openai(t)) {
        serve_resp_meta m = {t->id, t->created, t->model};
        serve_usage u = usage_of(t);
        if (t->req->include_usage)
            send_json(t, serve_oai_usage_chunk(
                             &m, is_chat(t) ? "chat.completion.chunk" : "text_completion", &u));
        serve_stream_write(t->stream, SERVE_SSE_DONE, strlen(SERVE_SSE_DONE));
    }
    serve_stream_close(t->stream);
}

void serve_emit_error(serve_task *t, const serve_error *e) {
    if (!t->stream) return;
    if (is_anthropic(t) || is_responses(t)) {
        if (is_anthropic(t)) serve_anthropic_error(t, e);
        else serve_responses_error(t, e);
        serve_stream_close(t->stream);
        return;
    }
    size_t len = 0;
    char *body = serve_error_body(e, t->req->dialect, &len);
    if (body) {
        json_t *v = json_loadb(body, len, 0, NULL);
        send_json(t, v);
        ob_free(body);
    }
    if (is_openai(t)) serve_stream_write(t->stream, SERVE_SSE_DONE, strlen(SERVE_SSE_DONE));
    serve_stream_close(t->stream);
}

/* The choice as a serve_choice over the seq's buffers. */
static serve_choice choice_of(const serve_task *t, serve_seq *q) {
    serve_choice ch = {.index = q->index,
                       .text = q->text.data ? q->text.data : "",
                       .text_len = q->text.len,
                       .finish_reason = q->finish,
                       .tool_calls = q->calls};
    if (q->reasoning.len) {
        ch.reasoning = q->reasoning.data;
        ch.reasoning_len = q->reasoning.len;
    }
    /* OpenAI: an answer that only calls tools has "content": null. */
    if (is_openai(t) && is_chat(t) && q->calls && !q->text.len) ch.text = NULL;
    return ch;
}

char *serve_emit_body(serve_task *t, size_t *len) {
    serve_resp_meta m = {t->id, t->created, t->model};
    serve_usage u = usage_of(t);
    json_t *v = NULL;
    if (is_anthropic(t)) {
        v = serve_anthropic_body(t);
    } else if (is_responses(t)) {
        v = serve_responses_body(t);
    } else if (is_llamacpp(t)) {
        serve_seq *q = &t->seqs[0];
        v = llamacpp_obj(t, q, q->text.data ? q->text.data : "", q->text.len, true);
    } else if (!is_openai(t)) {
        serve_choice ch = choice_of(t, &t->seqs[0]);
        serve_ollama_stats st = stats_of(t, &t->seqs[0]);
        v = is_chat(t) ? serve_ollama_chat(t->model, wall_ns(), &ch, &st)
                       : serve_ollama_generate(t->model, wall_ns(), &ch, &st);
    } else {
        serve_choice *chs = ob_calloc((size_t)t->n_seqs, sizeof *chs);
        if (!chs) return NULL;
        for (int i = 0; i < t->n_seqs; i++) {
            chs[i] = choice_of(t, &t->seqs[i]);
            chs[i].logprobs = serve_emit_logprobs(t, &t->seqs[i]);
        }
        /* echo: the prompt's text before the answer (completions only) */
        serve_buf echoed[1] = {{0}};
        if (!is_chat(t) && t->req->echo && t->prompt_text && t->n_seqs == 1) {
            serve_buf_puts(echoed, t->prompt_text);
            serve_buf_append(echoed, chs[0].text, chs[0].text_len);
            chs[0].text = echoed->data;
            chs[0].text_len = echoed->len;
        }
        v = is_chat(t) ? serve_oai_chat_completion(&m, chs, (size_t)t->n_seqs, &u)
                       : serve_oai_text_completion(&m, chs, (size_t)t->n_seqs, &u);
        serve_buf_clear(echoed);
        for (int i = 0; i < t->n_seqs; i++)
            json_decref(chs[i].logprobs);
        ob_free(chs);
    }
    char *body = v ? serve_json_body(v, len) : NULL;
    json_decref(v);
    return body;
}
