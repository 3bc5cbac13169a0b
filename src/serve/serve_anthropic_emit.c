/*
 * Anthropic Messages responses (serve_task.h): the whole message object, and its stream as
 * Anthropic's named SSE events:
 *
 *   message_start {message: {id, role, model, content: [], usage}}   once, first
 *   ping
 *   content_block_start {index, content_block: thinking | text | tool_use}
 *   content_block_delta {index, delta: thinking_delta | text_delta | input_json_delta}
 *   content_block_stop {index}                                       for every block
 *   message_delta {delta: {stop_reason, stop_sequence}, usage: {output_tokens}}
 *   message_stop
 *
 * Reasoning, text and each tool call are blocks in the order the model wrote them; a block
 * closes when the next kind begins. A tool call is complete when the parser hands it over, so
 * its input arrives as one input_json_delta.
 */
#include "serve/serve_task.h"

#include "core/alloc.h"
#include "serve/serve_response.h"

#include <stdio.h>
#include <string.h>

enum { BLOCK_THINKING = 1, BLOCK_TEXT, BLOCK_TOOL };

static json_t *usage_json(const serve_task *t, int64_t output) {
    json_t *v = json_pack("{s:I, s:I, s:I, s:I}", "input_tokens",
                     (json_int_t)(t->prompt_tokens - t->cached_tokens), "output_tokens",
                     (json_int_t)output, "cache_read_input_tokens",
                     (json_int_t)t->cached_tokens, "cache_creation_input_tokens", (json_int_t)0);
    if (v && t->route[0]) json_object_set_new(v, "outboard_route", json_string(t->route));
    return v;
}

/* "msg_..." from the task's id, and tool ids "toolu_..." that are unique per message. */
static void message_id(const serve_task *t, char *out, size_t cap) {
    const char *dash = strchr(t->id, '-');
    snprintf(out, cap, "msg_%s", dash ? dash + 1 : t->id);
}

static void tool_id(const serve_task *t, const ob_tool_call *c, int index, char *out, size_t cap) {
    const char *dash = strchr(t->id, '-');
    if (c->id) snprintf(out, cap, "%s", c->id);
    else snprintf(out, cap, "toolu_%s_%d", dash ? dash + 1 : t->id, index);
}

static json_t *tool_block(const serve_task *t, const ob_tool_call *c, int index, bool input) {
    char id[96];
    tool_id(t, c, index, id, sizeof id);
    json_t *args = input ? json_loads(c->arguments, 0, NULL) : NULL;
    if (!args) args = json_object();
    return json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id", id, "name", c->name,
                     "input", args);
}

static void start(serve_task *t, serve_seq *q) {
    if (q->started) return;
    q->started = true;
    char id[80];
    message_id(t, id, sizeof id);
    serve_emit_event(t, "message_start",
                     json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:[], s:n, s:n, s:o}}", "type",
                               "message_start", "message", "id", id, "type", "message", "role",
                               "assistant", "model", t->model, "content", "stop_reason",
                               "stop_sequence", "usage", usage_json(t, 0)));
    serve_emit_event(t, "ping", json_pack("{s:s}", "type", "ping"));
}

static void close_block(serve_task *t, serve_seq *q) {
    if (q->block < 0) return;
    serve_emit_event(t, "content_block_stop",
                     json_pack("{s:s, s:i}", "type", "content_block_stop", "index", q->block));
    q->block = -1;
    q->block_kind = 0;
}

/* Makes a block of kind the open one, opening it with `block` (consumed). */
static void open_block(serve_task *t, serve_seq *q, int kind, json_t *block) {
    close_block(t, q);
    q->block = q->n_blocks++;
    q->block_kind = kind;
    serve_emit_event(t, "content_block_start",
                     json_pack("{s:s, s:i, s:o}", "type", "content_block_start", "index",
                               q->block, "content_block", block));
}

static void delta(serve_task *t, serve_seq *q, json_t *d) {
    serve_emit_event(t, "content_block_delta", json_pack("{s:s, s:i, s:o}", "type",
                                                         "content_block_delta", "index",
                                                         q->block, "delta", d));
}

void serve_anthropic_delta(serve_task *t, serve_seq *q, const char *content, size_t clen,
                           const char *reasoning, size_t rlen, const ob_tool_call *calls,
                           size_t n_calls) {
    start(t, q);
    if (reasoning) {
        if (q->block_kind != BLOCK_THINKING)
            open_block(t, q, BLOCK_THINKING, json_pack("{s:s, s:s, s:s}", "type", "thinking",
                                                       "thinking", "", "signature", ""));
        delta(t, q, json_pack("{s:s, s:s%}", "type", "thinking_delta", "thinking", reasoning,
                              rlen));
    }
    if (content) {
        if (q->block_kind != BLOCK_TEXT)
            open_block(t, q, BLOCK_TEXT, json_pack("{s:s, s:s}", "type", "text", "text", ""));
        delta(t, q, json_pack("{s:s, s:s%}", "type", "text_delta", "text", content, clen));
    }
    for (size_t i = 0; i < n_calls; i++) {
        open_block(t, q, BLOCK_TOOL, tool_block(t, &calls[i], q->n_calls_sent + (int)i, false));
        delta(t, q, json_pack("{s:s, s:s}", "type", "input_json_delta", "partial_json",
                              calls[i].arguments));
        close_block(t, q);
    }
}

/* Anthropic's stop_reason for the choice's finish, and the stop string that ended it. */
static const char *stop_reason(const serve_seq *q, const char **sequence) {
    *sequence = NULL;
    if (!q->finish || !strcmp(q->finish, "stop")) {
        int hit = q->stop ? serve_stop_hit(q->stop) : -1;
        if (hit >= 0) {
            *sequence = q->task->req->stop[hit];
            return "stop_sequence";
        }
        return "end_turn";
    }
    if (!strcmp(q->finish, "length")) return "max_tokens";
    if (!strcmp(q->finish, "tool_calls")) return "tool_use";
    return "end_turn";
}

void serve_anthropic_finish(serve_task *t, serve_seq *q) {
    start(t, q);
    close_block(t, q);
    const char *seq;
    const char *reason = stop_reason(q, &seq);
    json_t *d = json_pack("{s:s, s:s?}", "stop_reason", reason, "stop_sequence", seq);
    if (d && !seq) json_object_set_new(d, "stop_sequence", json_null());
    serve_emit_event(t, "message_delta",
                     json_pack("{s:s, s:o, s:o}", "type", "message_delta", "delta", d, "usage",
                               usage_json(t, q->n_gen)));
    serve_emit_event(t, "message_stop", json_pack("{s:s}", "type", "message_stop"));
}

void serve_anthropic_error(serve_task *t, const serve_error *e) {
    size_t len = 0;
    char *body = serve_error_body(e, SERVE_DIALECT_ANTHROPIC, &len);
    if (body) serve_emit_event(t, "error", json_loadb(body, len, 0, NULL));
    ob_free(body);
}

json_t *serve_anthropic_body(serve_task *t) {
    serve_seq *q = &t->seqs[0];
    json_t *content = json_array();
    if (!content) return NULL;
    if (q->reasoning.len)
        json_array_append_new(content, json_pack("{s:s, s:s%, s:s}", "type", "thinking",
                                                 "thinking", q->reasoning.data,
                                                 q->reasoning.len, "signature", ""));
    if (q->text.len || !q->calls)
        json_array_append_new(content, json_pack("{s:s, s:s%}", "type", "text", "text",
                                                 q->text.data ? q->text.data : "",
                                                 q->text.len));
    size_t i;
    json_t *c;
    json_array_foreach(q->calls, i, c) { /* kept in OpenAI's form by serve_emit_delta */
        json_t *fn = json_object_get(c, "function");
        ob_tool_call call = {(char *)json_string_value(json_object_get(c, "id")),
                             (char *)json_string_value(json_object_get(fn, "name")),
                             (char *)json_string_value(json_object_get(fn, "arguments"))};
        if (call.name && call.arguments)
            json_array_append_new(content, tool_block(t, &call, (int)i, true));
    }
    char id[80];
    message_id(t, id, sizeof id);
    const char *seq;
    const char *reason = stop_reason(q, &seq);
    json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:o}", "id", id, "type", "message",
                          "role", "assistant", "model", t->model, "content", content,
                          "stop_reason", reason, "usage", usage_json(t, q->n_gen));
    if (v) json_object_set_new(v, "stop_sequence", seq ? json_string(seq) : json_null());
    return v;
}
