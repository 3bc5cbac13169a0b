/*
 * Anthropic Messages request bodies: POST /v1/messages and /v1/messages/count_tokens into a
 * serve_gen_req (serve_request.h), so a client such as Claude Code (ANTHROPIC_BASE_URL) runs
 * on the same engine as the OpenAI and Ollama routes.
 *
 * The conversation becomes the OpenAI-style messages the chat template reads:
 *   system (a string or text blocks)            -> a leading "system" message
 *   user text blocks                            -> the user's content
 *   user tool_result blocks                     -> "tool" messages (tool_call_id), before the
 *                                                  user's own text, in the order given
 *   assistant text / thinking / tool_use blocks -> content, reasoning_content, tool_calls
 * cache_control is accepted and has no effect beyond the server's own prefix cache. Images
 * and documents are refused with a 400 naming the block: the models served read text.
 *
 * Claude Code starts its system prompt with a block "x-anthropic-billing-header: ...; cch=..."
 * whose text changes on every request. It tells the model nothing, and at the head of the
 * prompt it would make every request miss the prefix cache, so such blocks are dropped.
 */
#include "serve/serve_request.h"

#include "core/alloc.h"
#include "serve/serve_json.h"

#include <stdio.h>
#include <string.h>

static int missing(serve_error *e, const char *path) {
    return serve_error_bad(e, "missing_field", path, "%s: required, got nothing", path);
}

/* block.type at path p, which must be one of the types the caller handles. */
static int block_type(const json_t *b, const char *p, const char **type, serve_error *e) {
    if (!json_is_object(b)) return serve_json_type_error(e, p, "a content block object", b);
    *type = NULL;
    if (serve_json_get_string(b, p, "type", SERVE_MAX_NAME, type, NULL, e) < 0) return -1;
    char tp[SERVE_PATH_MAX];
    serve_path_key(tp, sizeof tp, p, "type");
    return *type ? 0 : missing(e, tp);
}

/* Appends block.text (required) to buf. */
static int text_of(const json_t *b, const char *p, json_t *buf, serve_error *e) {
    const char *text = NULL;
    size_t n = 0;
    if (serve_json_get_string(b, p, "text", SERVE_MAX_TEXT, &text, &n, e) < 0) return -1;
    char tp[SERVE_PATH_MAX];
    serve_path_key(tp, sizeof tp, p, "text");
    if (!text) return missing(e, tp);
    json_t *s = json_stringn(text, n);
    return !s || json_array_append_new(buf, s) ? serve_req_nomem(e, "the messages") : 0;
}

/* The strings of parts joined with sep, as a new string value. */
static json_t *joined(const json_t *parts, const char *sep) {
    size_t total = 0, i;
    json_t *s;
    json_array_foreach(parts, i, s) total += json_string_length(s) + strlen(sep);
    char *buf = ob_alloc(total + 1, 1);
    if (!buf) return NULL;
    size_t at = 0;
    json_array_foreach(parts, i, s) {
        if (i) {
            memcpy(buf + at, sep, strlen(sep));
            at += strlen(sep);
        }
        memcpy(buf + at, json_string_value(s), json_string_length(s));
        at += json_string_length(s);
    }
    json_t *v = json_stringn(buf, at);
    ob_free(buf);
    return v;
}

static const char VOLATILE_HEADER[] = "x-anthropic-billing-header:";

/* A text block that changes on every request and means nothing to the model. */
static bool volatile_block(const json_t *b) {
    const char *text = json_string_value(json_object_get(b, "text"));
    return text && !strncmp(text, VOLATILE_HEADER, strlen(VOLATILE_HEADER));
}

/* A string, or an array of text blocks, at key of obj (path p), into a string value; *out
 * NULL when absent. */
static int text_or_blocks(const json_t *obj, const char *p, const char *key, json_t **out,
                          serve_error *e) {
    char kp[SERVE_PATH_MAX];
    serve_path_key(kp, sizeof kp, p, key);
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v)) {
        if (json_string_length(v) > SERVE_MAX_TEXT)
            return serve_error_bad(e, "limit_exceeded", kp, "%s: %zu bytes, the limit is %u", kp,
                                   json_string_length(v), SERVE_MAX_TEXT);
        *out = json_incref((json_t *)v);
        return 0;
    }
    if (!json_is_array(v)) return serve_json_type_error(e, kp, "a string or an array of blocks", v);
    json_t *parts = json_array();
    if (!parts) return serve_req_nomem(e, "the messages");
    size_t i;
    json_t *b;
    json_array_foreach(v, i, b) {
        char bp[SERVE_PATH_MAX];
        const char *type;
        serve_path_index(bp, sizeof bp, kp, i);
        if (block_type(b, bp, &type, e)) goto fail;
        if (strcmp(type, "text")) {
            serve_error_bad(e, "invalid_value", bp, "%s: a %.32s block where only text blocks "
                            "are read", bp, type);
            goto fail;
        }
        if (!strcmp(key, "system") && !*p && volatile_block(b)) continue;
        if (text_of(b, bp, parts, e)) goto fail;
    }
    *out = joined(parts, "\n");
    json_decref(parts);
    return *out ? 0 : serve_req_nomem(e, "the messages");
fail:
    json_decref(parts);
    return -1;
}

/* An assistant's tool_use block as an OpenAI tool call (arguments as an object). */
static int tool_use(const json_t *b, const char *p, json_t *calls, serve_error *e) {
    const char *id = NULL, *name = NULL;
    json_t *input = NULL;
    char fp[SERVE_PATH_MAX];
    if (serve_json_get_string(b, p, "id", SERVE_MAX_NAME, &id, NULL, e) < 0 ||
        serve_json_get_string(b, p, "name", SERVE_MAX_NAME, &name, NULL, e) < 0 ||
        serve_json_get_object(b, p, "input", &input, e) < 0)
        return -1;
    serve_path_key(fp, sizeof fp, p, !id ? "id" : "name");
    if (!id || !name) return missing(e, fp);
    if (input && !json_is_object(input)) {
        serve_path_key(fp, sizeof fp, p, "input");
        return serve_json_type_error(e, fp, "an object", input);
    }
    /* "o" takes the reference: one of the request's, or a new empty object */
    json_t *c = json_pack("{s:s, s:s, s:{s:s, s:o}}", "id", id, "type", "function", "function",
                          "name", name, "arguments", input ? json_incref(input) : json_object());
    return !c || json_array_append_new(calls, c) ? serve_req_nomem(e, "the messages") : 0;
}

/* A user's tool_result block as a "tool" message. */
static int tool_result(const json_t *b, const char *p, json_t *out, serve_error *e) {
    const char *id = NULL;
    if (serve_json_get_string(b, p, "tool_use_id", SERVE_MAX_NAME, &id, NULL, e) < 0) return -1;
    char fp[SERVE_PATH_MAX];
    serve_path_key(fp, sizeof fp, p, "tool_use_id");
    if (!id) return missing(e, fp);
    json_t *content = NULL;
    if (text_or_blocks(b, p, "content", &content, e)) return -1;
    bool is_error = false;
    if (serve_json_get_bool(b, p, "is_error", &is_error, e) < 0) {
        json_decref(content);
        return -1;
    }
    json_t *m = json_pack("{s:s, s:s, s:o}", "role", "tool", "tool_call_id", id, "content",
                          content ? content : json_string(""));
    if (m && is_error) json_object_set_new(m, "is_error", json_true());
    return !m || json_array_append_new(out, m) ? serve_req_nomem(e, "the messages") : 0;
}

/* One message's blocks into the messages array. */
static int blocks_parse(const json_t *blocks, const char *cp, bool assistant, json_t *out,
                        json_t *msg, serve_error *e) {
    json_t *text = json_array(), *thinking = json_array(), *calls = json_array();
    int rc = !text || !thinking || !calls ? serve_req_nomem(e, "the messages") : 0;
    size_t i;
    json_t *b;
    json_array_foreach(blocks, i, b) {
        if (rc) break;
        char bp[SERVE_PATH_MAX];
        const char *type;
        serve_path_index(bp, sizeof bp, cp, i);
        if ((rc = block_type(b, bp, &type, e))) break;
        if (!strcmp(type, "text")) rc = text_of(b, bp, text, e);
        else if (assistant && !strcmp(type, "thinking")) {
            const char *t = NULL;
            size_t n = 0;
            rc = serve_json_get_string(b, bp, "thinking", SERVE_MAX_TEXT, &t, &n, e) < 0;
            if (!rc && t) json_array_append_new(thinking, json_stringn(t, n));
        } else if (assistant && !strcmp(type, "redacted_thinking")) {
            continue; /* opaque: nothing a local model can read */
        } else if (assistant && !strcmp(type, "tool_use")) rc = tool_use(b, bp, calls, e);
        else if (!assistant && !strcmp(type, "tool_result")) rc = tool_result(b, bp, out, e);
        else
            rc = serve_error_bad(e, "invalid_value", bp, "%s: \"%.32s\" blocks are not "
                                 "supported in %s messages (only text%s)", bp, type,
                                 assistant ? "assistant" : "user",
                                 assistant ? ", thinking, tool_use" : ", tool_result");
    }
    if (!rc && (json_array_size(text) || !json_array_size(calls))) {
        json_t *s = joined(text, "");
        rc = !s || json_object_set_new(msg, "content", s) ? serve_req_nomem(e, "messages") : 0;
    }
    if (!rc && json_array_size(thinking)) {
        json_t *s = joined(thinking, "");
        rc = !s || json_object_set_new(msg, "reasoning_content", s) ? serve_req_nomem(e, "m") : 0;
    }
    if (!rc && json_array_size(calls)) rc = json_object_set(msg, "tool_calls", calls) ? -1 : 0;
    json_decref(text);
    json_decref(thinking);
    json_decref(calls);
    return rc;
}

static int message_parse(const json_t *m, const char *p, json_t *out, serve_error *e) {
    if (!json_is_object(m)) return serve_json_type_error(e, p, "a message object", m);
    const char *role = NULL;
    char fp[SERVE_PATH_MAX];
    if (serve_json_get_string(m, p, "role", SERVE_MAX_NAME, &role, NULL, e) < 0) return -1;
    serve_path_key(fp, sizeof fp, p, "role");
    if (!role) return missing(e, fp);
    const bool assistant = !strcmp(role, "assistant");
    if (!assistant && strcmp(role, "user"))
        return serve_error_bad(e, "invalid_value", fp, "%s: expected \"user\" or \"assistant\", "
                               "got \"%.64s\"", fp, role);
    const json_t *c = json_object_get(m, "content");
    serve_path_key(fp, sizeof fp, p, "content");
    json_t *msg = json_pack("{s:s}", "role", role);
    if (!msg) return serve_req_nomem(e, "the messages");
    int rc;
    if (json_is_string(c)) {
        json_t *t = NULL;
        rc = text_or_blocks(m, p, "content", &t, e);
        if (!rc) json_object_set_new(msg, "content", t);
    } else if (json_is_array(c)) {
        if (json_array_size(c) > SERVE_MAX_CONTENT_PARTS) {
            json_decref(msg);
            return serve_error_bad(e, "limit_exceeded", fp, "%s: %zu blocks, the limit is %d", fp,
                                   json_array_size(c), SERVE_MAX_CONTENT_PARTS);
        }
        rc = blocks_parse(c, fp, assistant, out, msg, e);
    } else {
        rc = c ? serve_json_type_error(e, fp, "a string or an array of blocks", c)
               : missing(e, fp);
    }
    /* A user turn made only of tool results adds no user message of its own. */
    const char *last = json_array_size(out) ? json_string_value(json_object_get(
                           json_array_get(out, json_array_size(out) - 1), "role"))
                                            : NULL;
    bool empty_user = !assistant && !rc && json_is_array(c) &&
                      !json_string_length(json_object_get(msg, "content")) && last &&
                      !strcmp(last, "tool");
    if (!rc && !empty_user && json_array_append(out, msg)) rc = serve_req_nomem(e, "messages");
    json_decref(msg);
    return rc;
}

static int messages_parse(serve_gen_req *r, const json_t *b, serve_error *e) {
    json_t *msgs = NULL, *system = NULL;
    if (serve_json_get_array(b, "", "messages", &msgs, e) < 0) return -1;
    if (!msgs) return missing(e, "messages");
    if (json_array_size(msgs) > SERVE_MAX_MESSAGES)
        return serve_error_bad(e, "limit_exceeded", "messages",
                               "messages: %zu messages, the limit is %d", json_array_size(msgs),
                               SERVE_MAX_MESSAGES);
    if (text_or_blocks(b, "", "system", &system, e)) return -1;
    r->messages = json_array();
    if (!r->messages) return serve_req_nomem(e, "the messages");
    if (system && json_array_append_new(r->messages, json_pack("{s:s, s:o}", "role", "system",
                                                               "content", system)))
        return serve_req_nomem(e, "the messages");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        char p[SERVE_PATH_MAX];
        serve_path_index(p, sizeof p, "messages", i);
        if (message_parse(m, p, r->messages, e)) return -1;
    }
    return 0;
}

/* tools: [{name, description, input_schema}] as OpenAI function tools. */
static int tools_parse(serve_gen_req *r, const json_t *b, serve_error *e) {
    json_t *tools = NULL;
    if (serve_json_get_array(b, "", "tools", &tools, e) < 0) return -1;
    if (!tools || !json_array_size(tools)) return 0;
    if (json_array_size(tools) > SERVE_MAX_TOOLS)
        return serve_error_bad(e, "limit_exceeded", "tools", "tools: %zu tools, the limit is %d",
                               json_array_size(tools), SERVE_MAX_TOOLS);
    r->tools = json_array();
    if (!r->tools) return serve_req_nomem(e, "the tools");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        char p[SERVE_PATH_MAX], fp[SERVE_PATH_MAX];
        serve_path_index(p, sizeof p, "tools", i);
        if (!json_is_object(t)) return serve_json_type_error(e, p, "a tool object", t);
        const char *name = NULL, *desc = NULL, *type = NULL;
        json_t *schema = NULL;
        if (serve_json_get_string(t, p, "name", SERVE_MAX_TOOL_NAME, &name, NULL, e) < 0 ||
            serve_json_get_string(t, p, "description", SERVE_MAX_TEXT, &desc, NULL, e) < 0 ||
            serve_json_get_string(t, p, "type", SERVE_MAX_NAME, &type, NULL, e) < 0 ||
            serve_json_get_object(t, p, "input_schema", &schema, e) < 0)
            return -1;
        serve_path_key(fp, sizeof fp, p, "name");
        if (!name) return missing(e, fp);
        /* Server tools (web_search, bash, ...) run on Anthropic's side: not here. */
        if (type && strcmp(type, "custom")) continue;
        if (serve_req_add_function_tool(r, name, desc, schema, e)) return -1;
    }
    return 0;
}

/* tool_choice {"type": "auto" | "any" | "tool" (+ name) | "none"}. */
static int tool_choice_parse(serve_gen_req *r, const json_t *b, serve_error *e) {
    json_t *tc = NULL;
    if (serve_json_get_object(b, "", "tool_choice", &tc, e) < 0) return -1;
    if (!tc) return 0;
    const char *type = NULL, *name = NULL;
    size_t n = 0;
    bool no_parallel = false;
    if (serve_json_get_string(tc, "tool_choice", "type", SERVE_MAX_NAME, &type, NULL, e) < 0 ||
        serve_json_get_string(tc, "tool_choice", "name", SERVE_MAX_TOOL_NAME, &name, &n, e) < 0 ||
        serve_json_get_bool(tc, "tool_choice", "disable_parallel_tool_use", &no_parallel, e) < 0)
        return -1;
    if (!type) return missing(e, "tool_choice.type");
    r->parallel_tool_calls = !no_parallel;
    if (!strcmp(type, "auto")) r->tool_choice = SERVE_TOOL_CHOICE_AUTO;
    else if (!strcmp(type, "any")) r->tool_choice = SERVE_TOOL_CHOICE_REQUIRED;
    else if (!strcmp(type, "none")) r->tool_choice = SERVE_TOOL_CHOICE_NONE;
    else if (!strcmp(type, "tool")) {
        if (!name) return missing(e, "tool_choice.name");
        r->tool_choice = SERVE_TOOL_CHOICE_FUNCTION;
        return serve_req_strdup(&r->tool_choice_name, name, n, e);
    } else {
        return serve_error_bad(e, "invalid_value", "tool_choice.type", "tool_choice.type: "
                               "expected auto, any, tool or none, got \"%.32s\"", type);
    }
    return 0;
}

/* thinking {"type": "enabled", "budget_tokens": N} | {"type": "disabled"}. */
static int thinking_parse(serve_gen_req *r, const json_t *b, serve_error *e) {
    json_t *th = NULL;
    if (serve_json_get_object(b, "", "thinking", &th, e) < 0) return -1;
    if (!th) return 0;
    const char *type = NULL;
    int64_t budget = -1;
    if (serve_json_get_string(th, "thinking", "type", SERVE_MAX_NAME, &type, NULL, e) < 0 ||
        serve_json_get_int(th, "thinking", "budget_tokens", 0, INT32_MAX, &budget, e) < 0)
        return -1;
    if (!type) return missing(e, "thinking.type");
    if (strcmp(type, "enabled") && strcmp(type, "disabled") && strcmp(type, "adaptive"))
        return serve_error_bad(e, "invalid_value", "thinking.type", "thinking.type: expected "
                               "enabled or disabled, got \"%.32s\"", type);
    r->think = strcmp(type, "disabled") != 0;
    if (!strcmp(type, "enabled")) r->reasoning_budget = budget;
    return 0;
}

static int sampling_parse(serve_gen_req *r, const json_t *b, serve_error *e) {
    serve_sampling *s = &r->sampling;
    double x;
    int64_t k;
    int got;
    if ((got = serve_json_get_number(b, "", "temperature", 0, 1, &x, e)) < 0) return -1;
    if (got) s->temperature = (float)x;
    if ((got = serve_json_get_number(b, "", "top_p", 0, 1, &x, e)) < 0) return -1;
    if (got) s->top_p = (float)x;
    if ((got = serve_json_get_int(b, "", "top_k", 0, INT32_MAX, &k, e)) < 0) return -1;
    if (got) s->top_k = (int32_t)k;
    return serve_req_parse_stop(r, json_object_get(b, "stop_sequences"), "stop_sequences", e);
}

static int fill(serve_gen_req *r, const json_t *b, bool counting, serve_error *e) {
    int64_t k;
    int got;
    if (serve_req_parse_model(r, b, true, e) || messages_parse(r, b, e) || tools_parse(r, b, e) ||
        tool_choice_parse(r, b, e) || thinking_parse(r, b, e))
        return -1;
    if (counting) return 0;
    if ((got = serve_json_get_int(b, "", "max_tokens", 1, INT32_MAX, &k, e)) < 0) return -1;
    if (!got) return missing(e, "max_tokens");
    r->max_tokens = k;
    if (sampling_parse(r, b, e) || serve_json_get_bool(b, "", "stream", &r->stream, e) < 0)
        return -1;
    return 0;
}

static int fill_messages(serve_gen_req *r, const json_t *b, const serve_limits *lim,
                         serve_error *e) {
    return fill(r, b, false, e);
}

static int fill_count(serve_gen_req *r, const json_t *b, const serve_limits *lim,
                      serve_error *e) {
    return fill(r, b, true, e);
}

int serve_anthropic_messages_parse(const char *body, size_t len, const serve_limits *lim,
                                   serve_gen_req **out, serve_error *e) {
    return serve_req_parse_body(SERVE_DIALECT_ANTHROPIC, SERVE_KIND_CHAT, body, len,
                                fill_messages, lim, out, e);
}

int serve_anthropic_count_parse(const char *body, size_t len, const serve_limits *lim,
                                serve_gen_req **out, serve_error *e) {
    return serve_req_parse_body(SERVE_DIALECT_ANTHROPIC, SERVE_KIND_CHAT, body, len, fill_count,
                                lim, out, e);
}
