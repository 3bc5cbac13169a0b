/*
 * OpenAI response objects (serve_response.h), field for field as the API reference gives them,
 * so the official clients' models parse them: chat.completion, chat.completion.chunk and
 * text_completion, with usage and logprobs.
 */
#include "serve/serve_response.h"

#include "core/alloc.h"
#include "outboard.h"
#include "serve/serve_buf.h"

#include <string.h>

/* Strings released by serve_stop are whole UTF-8 characters; jansson checks anyway and gives
 * NULL for anything else, which the callers report as a failed build. */
static json_t *str_or_null(const char *s, size_t n) {
    return s ? json_stringn(s, n) : json_null();
}

json_t *serve_oai_usage(const serve_usage *u) {
    json_t *v = json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)u->prompt_tokens,
                          "completion_tokens", (json_int_t)u->completion_tokens, "total_tokens",
                          (json_int_t)(u->prompt_tokens + u->completion_tokens));
    if (v && u->cached_tokens)
        json_object_set_new(v, "prompt_tokens_details",
                            json_pack("{s:I}", "cached_tokens", (json_int_t)u->cached_tokens));
    if (v && u->route) json_object_set_new(v, "outboard_route", json_string(u->route));
    return v;
}

static json_t *base(const serve_resp_meta *m, const char *object) {
    return json_pack("{s:s, s:s, s:I, s:s, s:s}", "id", m->id, "object", object, "created",
                     (json_int_t)m->created, "model", m->model, "system_fingerprint",
                     "outboard-" OB_VERSION_STRING);
}

static json_t *finish(const serve_choice *c) {
    return c->finish_reason ? json_string(c->finish_reason) : json_null();
}

/* {"role": "assistant", "content", "reasoning_content", "tool_calls"}; a delta only carries
 * what it has. */
static json_t *message(const serve_choice *c, bool delta) {
    json_t *msg = json_object();
    if (!msg) return NULL;
    int bad = 0;
    if (!delta || c->role) bad |= json_object_set_new(msg, "role", json_string("assistant"));
    if (!delta || c->text)
        bad |= json_object_set_new(msg, "content", str_or_null(c->text, c->text_len));
    if (c->reasoning)
        bad |= json_object_set_new(msg, "reasoning_content",
                                   json_stringn(c->reasoning, c->reasoning_len));
    if (c->tool_calls && json_array_size(c->tool_calls))
        bad |= json_object_set(msg, "tool_calls", c->tool_calls);
    if (bad) {
        json_decref(msg);
        return NULL;
    }
    return msg;
}

static json_t *chat_choice(const serve_choice *c, bool delta) {
    json_t *msg = message(c, delta);
    if (!msg) return NULL;
    return json_pack("{s:i, s:o, s:O*, s:o}", "index", c->index, delta ? "delta" : "message", msg,
                     "logprobs", c->logprobs ? c->logprobs : json_null(), "finish_reason",
                     finish(c));
}

static json_t *with_choices(json_t *obj, const serve_choice *c, size_t n, bool delta, bool text) {
    json_t *arr = json_array();
    if (!obj || !arr || json_object_set_new(obj, "choices", arr)) {
        json_decref(arr);
        json_decref(obj);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *ch =
            text ? json_pack("{s:o, s:i, s:O*, s:o}", "text",
                             c[i].text ? json_stringn(c[i].text, c[i].text_len) : json_string(""),
                             "index", c[i].index, "logprobs",
                             c[i].logprobs ? c[i].logprobs : json_null(), "finish_reason",
                             finish(&c[i]))
                 : chat_choice(&c[i], delta);
        if (!ch || json_array_append_new(arr, ch)) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

static json_t *with_usage(json_t *obj, const serve_usage *u) {
    if (obj && u && json_object_set_new(obj, "usage", serve_oai_usage(u))) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

json_t *serve_oai_chat_completion(const serve_resp_meta *m, const serve_choice *c, size_t n,
                                  const serve_usage *u) {
    return with_usage(with_choices(base(m, "chat.completion"), c, n, false, false), u);
}

json_t *serve_oai_chat_chunk(const serve_resp_meta *m, const serve_choice *c) {
    return with_choices(base(m, "chat.completion.chunk"), c, 1, true, false);
}

json_t *serve_oai_text_completion(const serve_resp_meta *m, const serve_choice *c, size_t n,
                                  const serve_usage *u) {
    return with_usage(with_choices(base(m, "text_completion"), c, n, false, true), u);
}

json_t *serve_oai_text_chunk(const serve_resp_meta *m, const serve_choice *c) {
    return with_choices(base(m, "text_completion"), c, 1, true, true);
}

json_t *serve_oai_usage_chunk(const serve_resp_meta *m, const char *object, const serve_usage *u) {
    return with_usage(with_choices(base(m, object), NULL, 0, true, false), u);
}

json_t *serve_oai_logprob(const char *token, size_t len, double logprob, json_t *top) {
    json_t *bytes = json_array();
    for (size_t i = 0; bytes && i < len; i++)
        if (json_array_append_new(bytes, json_integer((unsigned char)token[i]))) {
            json_decref(bytes);
            bytes = NULL;
        }
    /* A token that is part of a character is not valid UTF-8 alone: its text is then the
     * replacement character, and "bytes" carries the truth (as OpenAI does). */
    json_t *text = json_stringn(token, len);
    if (!text) text = json_string("\xef\xbf\xbd");
    return json_pack("{s:o, s:f, s:o, s:o}", "token", text, "logprob", logprob, "bytes", bytes,
                     "top_logprobs", top ? json_incref(top) : json_array());
}

/* ---- framing ---- */

const char SERVE_SSE_DONE[] = "data: [DONE]\n\n";

static int buf_dump(const char *s, size_t n, void *b) {
    serve_buf_append(b, s, n);
    return 0;
}

static char *framed(const json_t *v, const char *pre, const char *post, size_t *len) {
    if (!v) return NULL;
    serve_buf b = {0};
    serve_buf_puts(&b, pre);
    if (json_dump_callback(v, buf_dump, &b, JSON_COMPACT)) b.failed = true;
    serve_buf_puts(&b, post);
    return serve_buf_take(&b, len);
}

char *serve_sse_frame(const json_t *v, size_t *len) {
    return framed(v, "data: ", "\n\n", len);
}
char *serve_sse_event_frame(const char *event, const json_t *v, size_t *len) {
    char pre[96];
    snprintf(pre, sizeof pre, "event: %s\ndata: ", event);
    return framed(v, pre, "\n\n", len);
}
char *serve_ndjson_line(const json_t *v, size_t *len) {
    return framed(v, "", "\n", len);
}
char *serve_json_body(const json_t *v, size_t *len) {
    return framed(v, "", "", len);
}
