/*
 * A request for an upstream (serve_upstream.h), built from the internal request whatever
 * dialect it came in: OpenAI chat completions or completions, or Anthropic Messages. The
 * upstream is always asked to stream, so one reader handles every answer and a client that
 * asked for a whole body gets it assembled here.
 */
#include "serve/serve_upstream.h"

#include <math.h>
#include <string.h>

/* Sampling fields both dialects share, where the client set them. */
static void common_sampling(json_t *b, const serve_gen_req *r, bool anthropic) {
    const serve_sampling *s = &r->sampling;
    double temp = s->temperature;
    if (anthropic && temp > 1) temp = 1; /* Anthropic's range is 0..1 */
    json_object_set_new(b, "temperature", json_real(temp));
    if (s->top_p < 1) json_object_set_new(b, "top_p", json_real(s->top_p));
    if (anthropic && s->top_k > 0) json_object_set_new(b, "top_k", json_integer(s->top_k));
    if (r->n_stop) {
        json_t *stop = json_array();
        for (size_t i = 0; i < r->n_stop; i++) json_array_append_new(stop, json_string(r->stop[i]));
        json_object_set_new(b, anthropic ? "stop_sequences" : "stop", stop);
    }
}

/* ---- OpenAI ---- */

/* The internal message form keeps tool-call arguments as objects; OpenAI wants text. */
static json_t *openai_message(const json_t *m) {
    json_t *out = json_deep_copy(m);
    json_t *calls = json_object_get(out, "tool_calls");
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c) {
        json_t *fn = json_object_get(c, "function");
        json_t *args = json_object_get(fn, "arguments");
        if (args && !json_is_string(args)) {
            char *text = json_dumps(args, JSON_COMPACT);
            json_object_set_new(fn, "arguments", json_string(text ? text : "{}"));
            free(text);
        }
    }
    return out;
}

static json_t *openai_tool_choice(const serve_gen_req *r) {
    switch (r->tool_choice) {
    case SERVE_TOOL_CHOICE_NONE: return json_string("none");
    case SERVE_TOOL_CHOICE_REQUIRED: return json_string("required");
    case SERVE_TOOL_CHOICE_FUNCTION:
        return json_pack("{s:s, s:{s:s}}", "type", "function", "function", "name",
                         r->tool_choice_name);
    default: return json_string("auto");
    }
}

static json_t *openai_body(const serve_gen_req *r, const char *model, const char **path) {
    json_t *b = json_pack("{s:s, s:b, s:{s:b}}", "model", model, "stream", 1, "stream_options",
                          "include_usage", 1);
    if (!b) return NULL;
    common_sampling(b, r, false);
    const serve_sampling *s = &r->sampling;
    if (s->presence_penalty != 0)
        json_object_set_new(b, "presence_penalty", json_real(s->presence_penalty));
    if (s->frequency_penalty != 0)
        json_object_set_new(b, "frequency_penalty", json_real(s->frequency_penalty));
    if (s->has_seed) json_object_set_new(b, "seed", json_integer((json_int_t)s->seed));
    if (r->max_tokens >= 0) json_object_set_new(b, "max_tokens", json_integer(r->max_tokens));
    if (r->kind == SERVE_KIND_COMPLETION) {
        *path = "/v1/completions";
        const serve_prompt *p = &r->prompts[0];
        if (p->text) {
            json_object_set_new(b, "prompt", json_stringn(p->text, p->text_len));
        } else {
            json_t *ids = json_array();
            for (size_t i = 0; i < p->n_tokens; i++)
                json_array_append_new(ids, json_integer(p->tokens[i]));
            json_object_set_new(b, "prompt", ids);
        }
        if (r->suffix) json_object_set_new(b, "suffix", json_string(r->suffix));
        return b;
    }
    *path = "/v1/chat/completions";
    json_t *msgs = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(r->messages, i, m) json_array_append_new(msgs, openai_message(m));
    json_object_set_new(b, "messages", msgs);
    if (r->tools && json_array_size(r->tools)) {
        json_object_set(b, "tools", r->tools);
        json_object_set_new(b, "tool_choice", openai_tool_choice(r));
        json_object_set_new(b, "parallel_tool_calls", json_boolean(r->parallel_tool_calls));
    }
    if (r->response_format) {
        const char *type = json_string_value(json_object_get(r->response_format, "type"));
        json_t *schema = json_object_get(r->response_format, "schema");
        if (type && !strcmp(type, "json_schema") && schema)
            json_object_set_new(b, "response_format",
                                json_pack("{s:s, s:{s:s, s:O, s:b}}", "type", "json_schema",
                                          "json_schema", "name", "output", "schema", schema,
                                          "strict", 1));
        else if (type)
            json_object_set_new(b, "response_format", json_pack("{s:s}", "type", type));
    }
    if (r->reasoning_effort)
        json_object_set_new(b, "reasoning_effort", json_string(r->reasoning_effort));
    return b;
}

/* ---- Anthropic ---- */

static const char *text_of(const json_t *m) {
    const char *s = json_string_value(json_object_get(m, "content"));
    return s ? s : "";
}

/* Appends block to the last message when it has the same role (Anthropic wants the roles to
 * alternate, and tool results of one turn in one user message), else a new message. */
static void append_block(json_t *msgs, const char *role, json_t *block) {
    json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
    if (last && !strcmp(json_string_value(json_object_get(last, "role")), role)) {
        json_array_append_new(json_object_get(last, "content"), block);
        return;
    }
    json_array_append_new(msgs, json_pack("{s:s, s:[o]}", "role", role, "content", block));
}

static void anthropic_assistant(json_t *msgs, const json_t *m) {
    const char *text = text_of(m);
    if (*text) append_block(msgs, "assistant", json_pack("{s:s, s:s}", "type", "text", "text", text));
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(m, "tool_calls"), i, c) {
        json_t *fn = json_object_get(c, "function");
        json_t *args = json_object_get(fn, "arguments");
        json_t *input = json_is_object(args) ? json_incref(args) : NULL;
        if (!input && json_is_string(args)) input = json_loads(json_string_value(args), 0, NULL);
        if (!json_is_object(input)) {
            json_decref(input);
            input = json_object();
        }
        const char *id = json_string_value(json_object_get(c, "id"));
        char fallback[32];
        snprintf(fallback, sizeof fallback, "toolu_%zu", i);
        append_block(msgs, "assistant",
                     json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id", id ? id : fallback,
                               "name", json_string_value(json_object_get(fn, "name")), "input",
                               input));
    }
}

static json_t *anthropic_tools(const serve_gen_req *r) {
    json_t *out = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(r->tools, i, t) {
        json_t *fn = json_object_get(t, "function");
        json_t *params = json_object_get(fn, "parameters");
        json_t *tool = json_pack("{s:s, s:O}", "name", json_string_value(json_object_get(fn, "name")),
                                 "input_schema", params ? params : json_pack("{s:s}", "type", "object"));
        const char *desc = json_string_value(json_object_get(fn, "description"));
        if (desc) json_object_set_new(tool, "description", json_string(desc));
        json_array_append_new(out, tool);
    }
    return out;
}

static json_t *anthropic_body(const serve_gen_req *r, const char *model, const char **path) {
    *path = "/v1/messages";
    int64_t max = r->max_tokens >= 0 ? r->max_tokens : 4096;
    json_t *b = json_pack("{s:s, s:I, s:b}", "model", model, "max_tokens", (json_int_t)max,
                          "stream", 1);
    if (!b) return NULL;
    common_sampling(b, r, true);
    json_t *msgs = json_array();
    char *system = NULL;
    size_t sys_len = 0;
    size_t i;
    json_t *m;
    if (r->kind == SERVE_KIND_COMPLETION) {
        const serve_prompt *p = &r->prompts[0];
        append_block(msgs, "user", json_pack("{s:s, s:s%}", "type", "text", "text",
                                             p->text ? p->text : "", p->text ? p->text_len : 0));
    }
    json_array_foreach(r->messages, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role) continue;
        if (!strcmp(role, "system")) {
            const char *t = text_of(m);
            size_t n = strlen(t);
            char *grown = realloc(system, sys_len + n + 3);
            if (!grown) continue;
            system = grown;
            if (sys_len) memcpy(system + sys_len, "\n\n", 2), sys_len += 2;
            memcpy(system + sys_len, t, n + 1);
            sys_len += n;
        } else if (!strcmp(role, "assistant")) {
            anthropic_assistant(msgs, m);
        } else if (!strcmp(role, "tool")) {
            const char *id = json_string_value(json_object_get(m, "tool_call_id"));
            append_block(msgs, "user",
                         json_pack("{s:s, s:s, s:s}", "type", "tool_result", "tool_use_id",
                                   id ? id : "", "content", text_of(m)));
        } else {
            append_block(msgs, "user", json_pack("{s:s, s:s}", "type", "text", "text", text_of(m)));
        }
    }
    if (system) json_object_set_new(b, "system", json_string(system));
    free(system);
    json_object_set_new(b, "messages", msgs);
    if (r->tools && json_array_size(r->tools) && r->tool_choice != SERVE_TOOL_CHOICE_NONE) {
        json_object_set_new(b, "tools", anthropic_tools(r));
        json_t *tc = r->tool_choice == SERVE_TOOL_CHOICE_REQUIRED ? json_pack("{s:s}", "type", "any")
                     : r->tool_choice == SERVE_TOOL_CHOICE_FUNCTION
                         ? json_pack("{s:s, s:s}", "type", "tool", "name", r->tool_choice_name)
                         : json_pack("{s:s}", "type", "auto");
        if (!r->parallel_tool_calls) json_object_set_new(tc, "disable_parallel_tool_use", json_true());
        json_object_set_new(b, "tool_choice", tc);
    }
    return b;
}

int serve_upstream_body(const serve_gen_req *r, const serve_policy_upstream *u, json_t **body,
                        const char **path, serve_error *e) {
    if (r->n > 1)
        return serve_error_bad(e, "unsupported_value", "n",
                               "n: %d choices cannot be sent upstream; only one", r->n);
    if (r->kind == SERVE_KIND_COMPLETION && r->n_prompts != 1)
        return serve_error_bad(e, "unsupported_value", "prompt",
                               "prompt: %zu prompts cannot be sent upstream; only one",
                               r->n_prompts);
    if (r->fim || r->grammar)
        return serve_error_bad(e, "unsupported_value", r->fim ? "suffix" : "grammar",
                               "%s cannot be sent upstream", r->fim ? "fill-in-the-middle"
                                                                    : "a grammar");
    const char *model = serve_policy_map_model(u, r->model);
    *body = u->dialect == SERVE_UPSTREAM_ANTHROPIC ? anthropic_body(r, model, path)
                                                   : openai_body(r, model, path);
    if (!*body)
        return serve_error_set(e, 500, "server_error", "out_of_memory", NULL,
                               "out of memory while writing the upstream request");
    return 0;
}
