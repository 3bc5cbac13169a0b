/*
 * OpenAI Responses request bodies: POST /v1/responses into a serve_gen_req
 * (serve_request.h), stateless, as Codex CLI sends them (store: false, the whole conversation
 * in `input` every time).
 *
 * The conversation becomes the messages the chat template reads:
 *   instructions, and every system or developer message     -> one leading "system" message
 *                                                              (templates accept one, first)
 *   message items (content a string or input_text / output_text parts) -> user / assistant
 *   function_call items -> tool_calls of the assistant message they follow (a new one when
 *                          none does); function_call_output items -> "tool" messages
 *   reasoning items     -> their reasoning_text, as the next assistant message's reasoning
 * Items and tools of other types (web_search, local_shell, custom, ...) are skipped, not
 * refused, since agents send them routinely and a local model has no use for them; images are
 * refused with a 400 naming the part. previous_response_id is refused: nothing is stored.
 */
#include "serve/serve_request.h"

#include "core/alloc.h"
#include "serve/serve_json.h"

#include <stdio.h>
#include <string.h>

static int missing(serve_error *e, const char *path) {
    return serve_error_bad(e, "missing_field", path, "%s: required, got nothing", path);
}

static int nomem(serve_error *e) { return serve_req_nomem(e, "the input"); }

/* Appends text to the string under key of obj ("" when absent), with sep between. */
static int append_text(json_t *obj, const char *key, const char *text, size_t n,
                       const char *sep, serve_error *e) {
    const json_t *old = json_object_get(obj, key);
    size_t ol = json_string_length(old), sl = ol ? strlen(sep) : 0;
    char *buf = ob_alloc(ol + sl + n + 1, 1);
    if (!buf) return nomem(e);
    if (ol) memcpy(buf, json_string_value(old), ol);
    memcpy(buf + ol, sep, sl);
    memcpy(buf + ol + sl, text, n);
    int rc = json_object_set_new(obj, key, json_stringn(buf, ol + sl + n)) ? nomem(e) : 0;
    ob_free(buf);
    return rc;
}

/* A message's content (a string or parts) appended to msg.content. */
static int content_parse(const json_t *c, const char *cp, json_t *msg, serve_error *e) {
    if (json_is_string(c)) {
        if (json_string_length(c) > SERVE_MAX_TEXT)
            return serve_error_bad(e, "limit_exceeded", cp, "%s: %zu bytes, the limit is %u", cp,
                                   json_string_length(c), SERVE_MAX_TEXT);
        return append_text(msg, "content", json_string_value(c), json_string_length(c), "", e);
    }
    if (!json_is_array(c)) return serve_json_type_error(e, cp, "a string or an array of parts", c);
    if (json_array_size(c) > SERVE_MAX_CONTENT_PARTS)
        return serve_error_bad(e, "limit_exceeded", cp, "%s: %zu parts, the limit is %d", cp,
                               json_array_size(c), SERVE_MAX_CONTENT_PARTS);
    size_t i;
    json_t *part;
    json_array_foreach(c, i, part) {
        char pp[SERVE_PATH_MAX];
        serve_path_index(pp, sizeof pp, cp, i);
        if (!json_is_object(part)) return serve_json_type_error(e, pp, "a content part", part);
        const char *type = NULL, *text = NULL;
        size_t n = 0;
        if (serve_json_get_string(part, pp, "type", SERVE_MAX_NAME, &type, NULL, e) < 0 ||
            serve_json_get_string(part, pp, "text", SERVE_MAX_TEXT, &text, &n, e) < 0)
            return -1;
        if (type && (!strcmp(type, "input_text") || !strcmp(type, "output_text") ||
                     !strcmp(type, "text"))) {
            if (!text) {
                char tp[SERVE_PATH_MAX];
                serve_path_key(tp, sizeof tp, pp, "text");
                return missing(e, tp);
            }
            if (append_text(msg, "content", text, n, "", e)) return -1;
        } else if (type && !strcmp(type, "refusal")) {
            continue;
        } else {
            return serve_error_bad(e, "unsupported_content", pp, "%s: \"%.32s\" parts are not "
                                   "supported (input_text, output_text)", pp, type ? type : "?");
        }
    }
    return 0;
}

/* What the conversation is being built into. */
typedef struct conv {
    json_t *system;    /* {"role": "system", "content"} collecting instructions, or NULL */
    json_t *msgs;      /* the other messages */
    json_t *reasoning; /* string: reasoning for the next assistant message, or NULL */
} conv;

/* The last message if it is an assistant's, else a new assistant message appended. */
static json_t *assistant_msg(conv *cv, serve_error *e) {
    size_t n = json_array_size(cv->msgs);
    json_t *last = n ? json_array_get(cv->msgs, n - 1) : NULL;
    const char *role = json_string_value(json_object_get(last, "role"));
    if (role && !strcmp(role, "assistant")) return last;
    json_t *m = json_pack("{s:s, s:s}", "role", "assistant", "content", "");
    if (!m || json_array_append_new(cv->msgs, m)) {
        nomem(e);
        return NULL;
    }
    if (cv->reasoning) {
        json_object_set_new(m, "reasoning_content", cv->reasoning);
        cv->reasoning = NULL;
    }
    return m;
}

static int message_item(conv *cv, const json_t *it, const char *p, serve_error *e) {
    const char *role = NULL;
    char fp[SERVE_PATH_MAX];
    if (serve_json_get_string(it, p, "role", SERVE_MAX_NAME, &role, NULL, e) < 0) return -1;
    serve_path_key(fp, sizeof fp, p, "role");
    if (!role) return missing(e, fp);
    const json_t *c = json_object_get(it, "content");
    serve_path_key(fp, sizeof fp, p, "content");
    if (!c) return missing(e, fp);
    if (!strcmp(role, "system") || !strcmp(role, "developer")) {
        if (!cv->system && !(cv->system = json_pack("{s:s, s:s}", "role", "system", "content", "")))
            return nomem(e);
        json_t *tmp = json_pack("{s:s}", "content", "");
        int rc = !tmp ? nomem(e) : content_parse(c, fp, tmp, e);
        const json_t *t = json_object_get(tmp, "content");
        if (!rc && json_string_length(t))
            rc = append_text(cv->system, "content", json_string_value(t), json_string_length(t),
                             "\n\n", e);
        json_decref(tmp);
        return rc;
    }
    if (strcmp(role, "user") && strcmp(role, "assistant")) {
        serve_path_key(fp, sizeof fp, p, "role");
        return serve_error_bad(e, "invalid_value", fp, "%s: expected user, assistant, system or "
                               "developer, got \"%.32s\"", fp, role);
    }
    json_t *m = !strcmp(role, "assistant") ? assistant_msg(cv, e)
                                           : json_pack("{s:s, s:s}", "role", role, "content", "");
    if (!m) return nomem(e);
    if (strcmp(role, "assistant") && json_array_append_new(cv->msgs, m)) return nomem(e);
    /* an assistant message after its own tool calls starts a new one */
    if (!strcmp(role, "assistant") && json_object_get(m, "tool_calls")) {
        m = json_pack("{s:s, s:s}", "role", "assistant", "content", "");
        if (!m || json_array_append_new(cv->msgs, m)) return nomem(e);
    }
    return content_parse(c, fp, m, e);
}

static int call_item(conv *cv, const json_t *it, const char *p, serve_error *e) {
    const char *call_id = NULL, *name = NULL, *args = NULL;
    size_t an = 0;
    char fp[SERVE_PATH_MAX];
    if (serve_json_get_string(it, p, "call_id", SERVE_MAX_NAME, &call_id, NULL, e) < 0 ||
        serve_json_get_string(it, p, "name", SERVE_MAX_TOOL_NAME * 4, &name, NULL, e) < 0 ||
        serve_json_get_string(it, p, "arguments", SERVE_MAX_TEXT, &args, &an, e) < 0)
        return -1;
    serve_path_key(fp, sizeof fp, p, !call_id ? "call_id" : !name ? "name" : "arguments");
    if (!call_id || !name || !args) return missing(e, fp);
    json_t *m = assistant_msg(cv, e);
    if (!m) return -1;
    /* templates read arguments as an object; text that is not one stays a string */
    json_t *obj = json_loadb(args, an, 0, NULL);
    if (!json_is_object(obj)) {
        json_decref(obj);
        obj = json_stringn(args, an);
    }
    json_t *c = json_pack("{s:s, s:s, s:{s:s, s:o}}", "id", call_id, "type", "function",
                          "function", "name", name, "arguments", obj);
    json_t *calls = json_object_get(m, "tool_calls");
    if (!calls && (calls = json_array()) && json_object_set_new(m, "tool_calls", calls))
        calls = NULL;
    return !c || !calls || json_array_append_new(calls, c) ? nomem(e) : 0;
}

static int output_item(conv *cv, const json_t *it, const char *p, serve_error *e) {
    const char *call_id = NULL;
    char fp[SERVE_PATH_MAX];
    if (serve_json_get_string(it, p, "call_id", SERVE_MAX_NAME, &call_id, NULL, e) < 0) return -1;
    serve_path_key(fp, sizeof fp, p, "call_id");
    if (!call_id) return missing(e, fp);
    const json_t *out = json_object_get(it, "output");
    serve_path_key(fp, sizeof fp, p, "output");
    if (!out) return missing(e, fp);
    json_t *m = json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", call_id, "content",
                          "");
    if (!m || json_array_append_new(cv->msgs, m)) return nomem(e);
    return content_parse(out, fp, m, e);
}

/* A reasoning item's text (its reasoning_text content, else its summary) for the next
 * assistant message. */
static int reasoning_item(conv *cv, const json_t *it, serve_error *e) {
    const json_t *parts = json_object_get(it, "content");
    if (!json_array_size(parts)) parts = json_object_get(it, "summary");
    size_t i;
    json_t *part;
    json_t *acc = json_pack("{s:s}", "content", cv->reasoning ? json_string_value(cv->reasoning)
                                                              : "");
    if (!acc) return nomem(e);
    json_array_foreach(parts, i, part) {
        const char *t = json_string_value(json_object_get(part, "text"));
        if (t && append_text(acc, "content", t, strlen(t), "\n", e)) {
            json_decref(acc);
            return -1;
        }
    }
    json_decref(cv->reasoning);
    cv->reasoning = json_incref(json_object_get(acc, "content"));
    json_decref(acc);
    return 0;
}

static int item_parse(conv *cv, const json_t *it, const char *p, serve_error *e) {
    if (!json_is_object(it)) return serve_json_type_error(e, p, "an input item", it);
    const char *type = "message";
    if (serve_json_get_string(it, p, "type", SERVE_MAX_NAME, &type, NULL, e) < 0) return -1;
    if (!strcmp(type, "message")) return message_item(cv, it, p, e);
    if (!strcmp(type, "function_call")) return call_item(cv, it, p, e);
    if (!strcmp(type, "function_call_output")) return output_item(cv, it, p, e);
    if (!strcmp(type, "reasoning")) return reasoning_item(cv, it, e);
    return 0; /* another tool's call or output: skipped */
}

static int input_parse(serve_gen_req *r, const json_t *b, serve_error *e) {
    const json_t *in = json_object_get(b, "input");
    const char *instr = NULL;
    size_t in_len = 0;
    if (serve_json_get_string(b, "", "instructions", SERVE_MAX_TEXT, &instr, &in_len, e) < 0)
        return -1;
    if (!in) return missing(e, "input");
    if (!json_is_string(in) && !json_is_array(in))
        return serve_json_type_error(e, "input", "a string or an array of items", in);
    if (json_is_array(in) && json_array_size(in) > SERVE_MAX_MESSAGES)
        return serve_error_bad(e, "limit_exceeded", "input", "input: %zu items, the limit is %d",
                               json_array_size(in), SERVE_MAX_MESSAGES);
    conv cv = {NULL, json_array(), NULL};
    int rc = cv.msgs ? 0 : nomem(e);
    if (!rc && instr && in_len) {
        cv.system = json_pack("{s:s, s:s%}", "role", "system", "content", instr, in_len);
        rc = cv.system ? 0 : nomem(e);
    }
    if (!rc && json_is_string(in)) {
        json_t *m = json_pack("{s:s, s:O}", "role", "user", "content", in);
        rc = !m || json_array_append_new(cv.msgs, m) ? nomem(e) : 0;
    }
    size_t i;
    json_t *it;
    if (json_is_array(in))
        json_array_foreach(in, i, it) {
            if (rc) break;
            char p[SERVE_PATH_MAX];
            serve_path_index(p, sizeof p, "input", i);
            rc = item_parse(&cv, it, p, e);
        }
    if (!rc && cv.system && json_array_insert(cv.msgs, 0, cv.system)) rc = nomem(e);
    if (!rc && !json_array_size(cv.msgs))
        rc = serve_error_bad(e, "invalid_value", "input", "input: no messages to answer");
    json_decref(cv.system);
    json_decref(cv.reasoning);
    if (rc) {
        json_decref(cv.msgs);
        return -1;
    }
    r->messages = cv.msgs;
    return 0;
}

/* tools: [{"type": "function", "name", "description", "parameters", "strict"}] as chat's
 * function tools; tools of other types are skipped. */
static int tools_parse(serve_gen_req *r, const json_t *b, serve_error *e) {
    json_t *tools = NULL;
    if (serve_json_get_array(b, "", "tools", &tools, e) < 0) return -1;
    if (!tools) return 0;
    if (json_array_size(tools) > SERVE_MAX_TOOLS)
        return serve_error_bad(e, "limit_exceeded", "tools", "tools: %zu tools, the limit is %d",
                               json_array_size(tools), SERVE_MAX_TOOLS);
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        char p[SERVE_PATH_MAX], fp[SERVE_PATH_MAX];
        serve_path_index(p, sizeof p, "tools", i);
        if (!json_is_object(t)) return serve_json_type_error(e, p, "a tool object", t);
        const char *type = NULL, *name = NULL, *desc = NULL;
        json_t *params = NULL;
        if (serve_json_get_string(t, p, "type", SERVE_MAX_NAME, &type, NULL, e) < 0) return -1;
        if (!type || strcmp(type, "function")) continue;
        if (serve_json_get_string(t, p, "name", SERVE_MAX_TOOL_NAME, &name, NULL, e) < 0 ||
            serve_json_get_string(t, p, "description", SERVE_MAX_TEXT, &desc, NULL, e) < 0 ||
            serve_json_get_object(t, p, "parameters", &params, e) < 0)
            return -1;
        serve_path_key(fp, sizeof fp, p, "name");
        if (!name) return missing(e, fp);
        if (serve_req_add_function_tool(r, name, desc, params, e)) return -1;
    }
    return 0;
}

/* tool_choice: "auto" | "none" | "required" | {"type": "function", "name"}. */
static int tool_choice_parse(serve_gen_req *r, const json_t *b, serve_error *e) {
    const json_t *tc = json_object_get(b, "tool_choice");
    if (!tc || json_is_null(tc)) return 0;
    const char *s = json_string_value(tc);
    if (s && !strcmp(s, "auto")) r->tool_choice = SERVE_TOOL_CHOICE_AUTO;
    else if (s && !strcmp(s, "none")) r->tool_choice = SERVE_TOOL_CHOICE_NONE;
    else if (s && !strcmp(s, "required")) r->tool_choice = SERVE_TOOL_CHOICE_REQUIRED;
    else if (json_is_object(tc)) {
        const char *name = NULL;
        size_t n = 0;
        if (serve_json_get_string(tc, "tool_choice", "name", SERVE_MAX_TOOL_NAME, &name, &n, e) < 0)
            return -1;
        if (!name) return 0; /* a built-in tool's choice: nothing to constrain here */
        r->tool_choice = SERVE_TOOL_CHOICE_FUNCTION;
        return serve_req_strdup(&r->tool_choice_name, name, n, e);
    } else {
        return serve_error_bad(e, "invalid_value", "tool_choice", "tool_choice: expected auto, "
                               "none, required or a function, got %s", serve_json_type(tc));
    }
    return 0;
}

/* reasoning {"effort"}, text {"format": {"type": "text" | "json_object" | "json_schema"}}. */
static int options_parse(serve_gen_req *r, const json_t *b, serve_error *e) {
    json_t *reasoning = NULL, *text = NULL, *format = NULL;
    const char *effort = NULL, *type = NULL, *prev = NULL;
    size_t n = 0;
    if (serve_json_get_object(b, "", "reasoning", &reasoning, e) < 0 ||
        serve_json_get_object(b, "", "text", &text, e) < 0 ||
        serve_json_get_string(b, "", "previous_response_id", SERVE_MAX_NAME, &prev, NULL, e) < 0)
        return -1;
    if (prev)
        return serve_error_bad(e, "invalid_value", "previous_response_id", "previous_response_id:"
                               " this server stores no responses; send the whole conversation "
                               "in input (store: false)");
    if (reasoning &&
        serve_json_get_string(reasoning, "reasoning", "effort", SERVE_MAX_NAME, &effort, &n, e) < 0)
        return -1;
    if (effort) {
        if (serve_req_strdup(&r->reasoning_effort, effort, n, e)) return -1;
        r->think = strcmp(effort, "none") != 0;
    }
    if (text && serve_json_get_object(text, "text", "format", &format, e) < 0) return -1;
    if (!format) return 0;
    if (serve_json_get_string(format, "text.format", "type", SERVE_MAX_NAME, &type, NULL, e) < 0)
        return -1;
    if (!type || !strcmp(type, "text")) return 0;
    json_t *schema = NULL;
    if (serve_json_get_object(format, "text.format", "schema", &schema, e) < 0) return -1;
    if (strcmp(type, "json_object") && strcmp(type, "json_schema"))
        return serve_error_bad(e, "invalid_value", "text.format.type", "text.format.type: "
                               "expected text, json_object or json_schema, got \"%.32s\"", type);
    r->response_format = json_pack("{s:s}", "type", schema ? "json_schema" : "json_object");
    if (!r->response_format || (schema && json_object_set(r->response_format, "schema", schema)))
        return nomem(e);
    return 0;
}

static int fill(serve_gen_req *r, const json_t *b, const serve_limits *lim, serve_error *e) {
    int64_t k;
    double x;
    int got;
    if (serve_req_parse_model(r, b, false, e) || input_parse(r, b, e) || tools_parse(r, b, e) ||
        tool_choice_parse(r, b, e) || options_parse(r, b, e) ||
        serve_json_get_bool(b, "", "parallel_tool_calls", &r->parallel_tool_calls, e) < 0 ||
        serve_json_get_bool(b, "", "stream", &r->stream, e) < 0)
        return -1;
    if ((got = serve_json_get_int(b, "", "max_output_tokens", 1, INT32_MAX, &k, e)) < 0) return -1;
    if (got) r->max_tokens = k;
    if ((got = serve_json_get_number(b, "", "temperature", 0, 2, &x, e)) < 0) return -1;
    if (got) r->sampling.temperature = (float)x;
    if ((got = serve_json_get_number(b, "", "top_p", 0, 1, &x, e)) < 0) return -1;
    if (got) r->sampling.top_p = (float)x;
    return 0;
}

int serve_responses_parse(const char *body, size_t len, const serve_limits *lim,
                          serve_gen_req **out, serve_error *e) {
    return serve_req_parse_body(SERVE_DIALECT_RESPONSES, SERVE_KIND_CHAT, body, len, fill, lim,
                                out, e);
}
