/*
 * OpenAI Responses answers (serve_task.h): the response object, and its stream of named events,
 * each with a sequence_number, those about an output item with its output_index:
 *
 *   response.created, response.in_progress                  {response: status in_progress}
 *   per output item, in the order the model wrote them:
 *     reasoning:      output_item.added, reasoning_text.delta..., reasoning_text.done,
 *                     output_item.done
 *     message:        output_item.added, content_part.added, output_text.delta...,
 *                     output_text.done, content_part.done, output_item.done
 *     function_call:  output_item.added, function_call_arguments.delta,
 *                     function_call_arguments.done, output_item.done
 *   response.completed (or response.incomplete at max_output_tokens) {response: whole}
 *
 * A function call is complete when the output parser hands it over, so its arguments come in
 * one delta. Items have ids (rs_, msg_, fc_) and calls a separate call_id, as Codex expects.
 */
#include "serve/serve_task.h"

#include "core/alloc.h"
#include "serve/serve_response.h"

#include <stdio.h>
#include <string.h>

enum { ITEM_REASONING = 1, ITEM_MESSAGE };

static const char *id_tail(const serve_task *t) {
    const char *dash = strchr(t->id, '-');
    return dash ? dash + 1 : t->id;
}

static void item_id(const serve_task *t, const char *kind, int index, char *out, size_t cap) {
    snprintf(out, cap, "%s_%s_%d", kind, id_tail(t), index);
}

static bool incomplete(const serve_seq *q) { return q->finish && !strcmp(q->finish, "length"); }

static json_t *usage_json(const serve_task *t, const serve_seq *q) {
    int64_t in = t->prompt_tokens, out = q->n_gen;
    json_t *v = json_pack("{s:I, s:{s:I}, s:I, s:{s:I}, s:I}", "input_tokens", (json_int_t)in,
                          "input_tokens_details", "cached_tokens", (json_int_t)t->cached_tokens,
                          "output_tokens", (json_int_t)out, "output_tokens_details",
                          "reasoning_tokens", (json_int_t)0, "total_tokens",
                          (json_int_t)(in + out));
    if (v && t->route[0]) json_object_set_new(v, "outboard_route", json_string(t->route));
    return v;
}

/* The response object; status "in_progress" (no usage yet), "completed" or "incomplete". */
static json_t *response_obj(const serve_task *t, const serve_seq *q, const char *status,
                            json_t *output) {
    char id[96];
    snprintf(id, sizeof id, "resp_%s", id_tail(t));
    const serve_gen_req *r = t->req;
    json_t *v = json_pack("{s:s, s:s, s:I, s:s, s:s, s:o, s:b, s:f, s:f, s:[], s:n, s:n, s:b,"
                          " s:{s:{s:s}}, s:s, s:{}}",
                          "id", id, "object", "response", "created_at", (json_int_t)t->created,
                          "status", status, "model", t->model, "output", output,
                          "parallel_tool_calls", r->parallel_tool_calls, "temperature",
                          (double)r->sampling.temperature, "top_p", (double)r->sampling.top_p,
                          "tools", "error", "previous_response_id", "store", 0, "text",
                          "format", "type", "text", "truncation", "disabled", "metadata");
    if (!v) return NULL;
    const char *choice = r->tool_choice == SERVE_TOOL_CHOICE_NONE       ? "none"
                         : r->tool_choice == SERVE_TOOL_CHOICE_REQUIRED ? "required"
                                                                        : "auto";
    json_object_set_new(v, "tool_choice", json_string(choice));
    json_object_set_new(v, "max_output_tokens",
                        r->max_tokens > 0 ? json_integer(r->max_tokens) : json_null());
    json_object_set_new(v, "incomplete_details",
                        !strcmp(status, "incomplete")
                            ? json_pack("{s:s}", "reason", "max_output_tokens")
                            : json_null());
    json_object_set_new(v, "usage",
                        strcmp(status, "in_progress") ? usage_json(t, q) : json_null());
    return v;
}

/* Sends an event of `type` whose fields are in v (consumed): type and sequence_number set. */
static void event(serve_task *t, serve_seq *q, const char *type, json_t *v) {
    if (!v) return;
    json_object_set_new(v, "type", json_string(type));
    json_object_set_new(v, "sequence_number", json_integer(q->n_events++));
    serve_emit_event(t, type, v);
}

static void start(serve_task *t, serve_seq *q) {
    if (q->started) return;
    q->started = true;
    q->items = json_array();
    event(t, q, "response.created",
          json_pack("{s:o}", "response", response_obj(t, q, "in_progress", json_array())));
    event(t, q, "response.in_progress",
          json_pack("{s:o}", "response", response_obj(t, q, "in_progress", json_array())));
}

/* The open item as it stands finished. */
static json_t *open_item(const serve_task *t, const serve_seq *q, const char *status) {
    char id[96];
    if (q->block_kind == ITEM_REASONING) {
        item_id(t, "rs", q->block, id, sizeof id);
        json_t *content = json_array();
        if (q->reasoning.len)
            json_array_append_new(content, json_pack("{s:s, s:s%}", "type", "reasoning_text",
                                                     "text", q->reasoning.data,
                                                     q->reasoning.len));
        return json_pack("{s:s, s:s, s:[], s:o}", "type", "reasoning", "id", id, "summary",
                         "content", content);
    }
    item_id(t, "msg", q->block, id, sizeof id);
    const char *text = q->text.data ? q->text.data + q->item_from : "";
    size_t len = q->text.len - q->item_from;
    return json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s%, s:[], s:[]}]}", "type", "message",
                     "id", id, "status", status, "role", "assistant", "content", "type",
                     "output_text", "text", text, len, "annotations", "logprobs");
}

static void close_item(serve_task *t, serve_seq *q) {
    if (q->block < 0) return;
    char id[96];
    item_id(t, q->block_kind == ITEM_REASONING ? "rs" : "msg", q->block, id, sizeof id);
    if (q->block_kind == ITEM_REASONING) {
        event(t, q, "response.reasoning_text.done",
              json_pack("{s:s, s:i, s:i, s:s%}", "item_id", id, "output_index", q->block,
                        "content_index", 0, "text", q->reasoning.data ? q->reasoning.data : "",
                        q->reasoning.len));
    } else {
        const char *text = q->text.data ? q->text.data + q->item_from : "";
        size_t len = q->text.len - q->item_from;
        event(t, q, "response.output_text.done",
              json_pack("{s:s, s:i, s:i, s:s%, s:[]}", "item_id", id, "output_index", q->block,
                        "content_index", 0, "text", text, len, "logprobs"));
        event(t, q, "response.content_part.done",
              json_pack("{s:s, s:i, s:i, s:{s:s, s:s%, s:[]}}", "item_id", id, "output_index",
                        q->block, "content_index", 0, "part", "type", "output_text", "text",
                        text, len, "annotations"));
    }
    json_t *item = open_item(t, q, "completed");
    event(t, q, "response.output_item.done",
          json_pack("{s:i, s:O}", "output_index", q->block, "item", item));
    json_array_append_new(q->items, item);
    q->block = -1;
    q->block_kind = 0;
}

static void open_kind(serve_task *t, serve_seq *q, int kind) {
    if (q->block_kind == kind) return;
    close_item(t, q);
    q->block = q->n_blocks++;
    q->block_kind = kind;
    char id[96];
    if (kind == ITEM_REASONING) {
        serve_buf_clear(&q->reasoning);
        item_id(t, "rs", q->block, id, sizeof id);
        event(t, q, "response.output_item.added",
              json_pack("{s:i, s:{s:s, s:s, s:[], s:[]}}", "output_index", q->block, "item",
                        "type", "reasoning", "id", id, "summary", "content"));
        return;
    }
    q->item_from = q->text.len;
    item_id(t, "msg", q->block, id, sizeof id);
    event(t, q, "response.output_item.added",
          json_pack("{s:i, s:{s:s, s:s, s:s, s:s, s:[]}}", "output_index", q->block, "item",
                    "type", "message", "id", id, "status", "in_progress", "role", "assistant",
                    "content"));
    event(t, q, "response.content_part.added",
          json_pack("{s:s, s:i, s:i, s:{s:s, s:s, s:[]}}", "item_id", id, "output_index",
                    q->block, "content_index", 0, "part", "type", "output_text", "text", "",
                    "annotations"));
}

static json_t *call_item(const serve_task *t, const ob_tool_call *c, int index, int call_no,
                         const char *args, const char *status) {
    char id[96], call_id[96];
    item_id(t, "fc", index, id, sizeof id);
    if (c->id) snprintf(call_id, sizeof call_id, "%s", c->id);
    else snprintf(call_id, sizeof call_id, "call_%s_%d", id_tail(t), call_no);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "function_call", "id", id,
                     "call_id", call_id, "name", c->name, "arguments", args, "status", status);
}

void serve_responses_delta(serve_task *t, serve_seq *q, const char *content, size_t clen,
                           const char *reasoning, size_t rlen, const ob_tool_call *calls,
                           size_t n_calls) {
    start(t, q);
    char id[96];
    if (reasoning) {
        open_kind(t, q, ITEM_REASONING);
        serve_buf_append(&q->reasoning, reasoning, rlen);
        item_id(t, "rs", q->block, id, sizeof id);
        event(t, q, "response.reasoning_text.delta",
              json_pack("{s:s, s:i, s:i, s:s%}", "item_id", id, "output_index", q->block,
                        "content_index", 0, "delta", reasoning, rlen));
    }
    if (content) {
        open_kind(t, q, ITEM_MESSAGE);
        serve_buf_append(&q->text, content, clen);
        item_id(t, "msg", q->block, id, sizeof id);
        event(t, q, "response.output_text.delta",
              json_pack("{s:s, s:i, s:i, s:s%, s:[]}", "item_id", id, "output_index", q->block,
                        "content_index", 0, "delta", content, clen, "logprobs"));
    }
    for (size_t i = 0; i < n_calls; i++) {
        close_item(t, q);
        const int index = q->n_blocks++, no = q->n_calls_sent + (int)i;
        item_id(t, "fc", index, id, sizeof id);
        event(t, q, "response.output_item.added",
              json_pack("{s:i, s:o}", "output_index", index, "item",
                        call_item(t, &calls[i], index, no, "", "in_progress")));
        event(t, q, "response.function_call_arguments.delta",
              json_pack("{s:s, s:i, s:s}", "item_id", id, "output_index", index, "delta",
                        calls[i].arguments));
        event(t, q, "response.function_call_arguments.done",
              json_pack("{s:s, s:i, s:s, s:s}", "item_id", id, "output_index", index, "name",
                        calls[i].name, "arguments", calls[i].arguments));
        json_t *item = call_item(t, &calls[i], index, no, calls[i].arguments, "completed");
        event(t, q, "response.output_item.done",
              json_pack("{s:i, s:O}", "output_index", index, "item", item));
        json_array_append_new(q->items, item);
    }
}

void serve_responses_finish(serve_task *t, serve_seq *q) {
    start(t, q);
    close_item(t, q);
    const char *status = incomplete(q) ? "incomplete" : "completed";
    char type[40];
    snprintf(type, sizeof type, "response.%s", status);
    event(t, q, type,
          json_pack("{s:o}", "response", response_obj(t, q, status, json_incref(q->items))));
}

void serve_responses_error(serve_task *t, const serve_error *e) {
    serve_seq *q = &t->seqs[0];
    event(t, q, "error",
          json_pack("{s:s, s:s, s:s?}", "code", e->code ? e->code : "server_error", "message",
                    e->message, "param", e->param[0] ? e->param : NULL));
}

json_t *serve_responses_body(serve_task *t) {
    serve_seq *q = &t->seqs[0];
    json_t *out = json_array();
    if (!out) return NULL;
    int index = 0;
    char id[96];
    if (q->reasoning.len) {
        item_id(t, "rs", index++, id, sizeof id);
        json_array_append_new(out, json_pack("{s:s, s:s, s:[], s:[{s:s, s:s%}]}", "type",
                                             "reasoning", "id", id, "summary", "content", "type",
                                             "reasoning_text", "text", q->reasoning.data,
                                             q->reasoning.len));
    }
    if (q->text.len || !q->calls) {
        item_id(t, "msg", index++, id, sizeof id);
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s%, s:[], s:[]}]}",
                                             "type", "message", "id", id, "status", "completed",
                                             "role", "assistant", "content", "type",
                                             "output_text", "text",
                                             q->text.data ? q->text.data : "", q->text.len,
                                             "annotations", "logprobs"));
    }
    size_t i;
    json_t *c;
    json_array_foreach(q->calls, i, c) { /* kept in chat's form by serve_emit_delta */
        json_t *fn = json_object_get(c, "function");
        ob_tool_call call = {NULL, (char *)json_string_value(json_object_get(fn, "name")),
                             (char *)json_string_value(json_object_get(fn, "arguments"))};
        if (call.name && call.arguments)
            json_array_append_new(out, call_item(t, &call, index++, (int)i, call.arguments,
                                                 "completed"));
    }
    return response_obj(t, q, incomplete(q) ? "incomplete" : "completed", out);
}
