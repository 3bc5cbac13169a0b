/*
 * Chat messages (serve_messages.h). OpenAI and Ollama differ in a few spellings: OpenAI sends
 * content parts and tool-call arguments as a JSON string, Ollama sends "thinking", "images",
 * "tool_name" and arguments as an object. Both are checked field by field and rewritten into
 * the form chat templates expect (transformers' apply_chat_template conventions), so the
 * template code never sees a dialect.
 */
#include "serve/serve_messages.h"

#include "core/alloc.h"
#include "serve/serve_json.h"

#include <string.h>

static const char *const ROLES[] = {"system", "developer", "user", "assistant", "tool", "function"};

static int role_parse(const json_t *m, const char *p, const char **role, serve_error *e) {
    char rp[SERVE_PATH_MAX];
    serve_path_key(rp, sizeof rp, p, "role");
    int got = serve_json_get_string(m, p, "role", SERVE_MAX_NAME, role, NULL, e);
    if (got < 0) return -1;
    if (!got) return serve_error_bad(e, "missing_field", rp, "%s: required, got nothing", rp);
    for (size_t i = 0; i < sizeof ROLES / sizeof ROLES[0]; i++)
        if (!strcmp(*role, ROLES[i])) return 0;
    return serve_error_bad(e, "invalid_value", rp,
                           "%s: expected system, developer, user, assistant or tool, got "
                           "\"%.64s\"",
                           rp, *role);
}

/* One content part: {"type": "text", "text": "..."}; other kinds are refused by name. */
static int part_text(const json_t *part, const char *pp, const char **text, size_t *len,
                     serve_error *e) {
    if (!json_is_object(part)) return serve_json_type_error(e, pp, "a content part object", part);
    const char *type = NULL;
    char tp[SERVE_PATH_MAX];
    serve_path_key(tp, sizeof tp, pp, "type");
    if (serve_json_get_string(part, pp, "type", SERVE_MAX_NAME, &type, NULL, e) < 0) return -1;
    if (!type) return serve_error_bad(e, "missing_field", tp, "%s: required, got nothing", tp);
    if (!strcmp(type, "image_url") || !strcmp(type, "input_audio") || !strcmp(type, "file"))
        return serve_error_bad(e, "unsupported_content", tp,
                               "%s: this server's model reads text only, got \"%s\"", tp, type);
    if (strcmp(type, "text"))
        return serve_error_bad(e, "invalid_value", tp, "%s: expected \"text\", got \"%.64s\"", tp,
                               type);
    char xp[SERVE_PATH_MAX];
    serve_path_key(xp, sizeof xp, pp, "text");
    int got = serve_json_get_string(part, pp, "text", SERVE_MAX_TEXT, text, len, e);
    if (got < 0) return -1;
    if (!got) return serve_error_bad(e, "missing_field", xp, "%s: required, got nothing", xp);
    return 0;
}

/* Joins the text parts into one string: what OpenAI does with a multi-part message, and what
 * every chat template can read. */
static int content_parts(const json_t *parts, const char *cp, json_t **out, serve_error *e) {
    size_t n = json_array_size(parts), total = 0;
    if (n > SERVE_MAX_CONTENT_PARTS)
        return serve_error_bad(e, "limit_exceeded", cp, "%s: %zu content parts, the limit is %d",
                               cp, n, SERVE_MAX_CONTENT_PARTS);
    char pp[SERVE_PATH_MAX];
    for (size_t j = 0; j < n; j++) {
        const char *t;
        size_t len;
        serve_path_index(pp, sizeof pp, cp, j);
        if (part_text(json_array_get(parts, j), pp, &t, &len, e)) return -1;
        total += len;
    }
    if (total > SERVE_MAX_TEXT)
        return serve_error_bad(e, "limit_exceeded", cp, "%s: %zu bytes of text, the limit is %u",
                               cp, total, SERVE_MAX_TEXT);
    char *buf = ob_alloc(total + 1, 1);
    if (!buf) return serve_req_nomem(e, cp);
    size_t at = 0;
    for (size_t j = 0; j < n; j++) {
        json_t *text = json_object_get(json_array_get(parts, j), "text");
        memcpy(buf + at, json_string_value(text), json_string_length(text));
        at += json_string_length(text);
    }
    *out = json_stringn_nocheck(buf, at); /* parts were valid UTF-8, and so is their join */
    ob_free(buf);
    return *out ? 0 : serve_req_nomem(e, cp);
}

static int content_parse(const json_t *m, const char *p, const char *role, json_t *msg,
                         serve_error *e) {
    char cp[SERVE_PATH_MAX];
    serve_path_key(cp, sizeof cp, p, "content");
    json_t *c = json_object_get(m, "content"), *out = NULL;
    if (!c || json_is_null(c)) {
        /* An assistant turn that only calls tools has no content. */
        if (!strcmp(role, "assistant")) return json_object_set_new(msg, "content", json_null());
        return serve_error_bad(e, "missing_field", cp, "%s: required for role %s, got %s", cp, role,
                               c ? "null" : "nothing");
    }
    if (json_is_string(c)) {
        if (json_string_length(c) > SERVE_MAX_TEXT)
            return serve_error_bad(e, "limit_exceeded", cp,
                                   "%s: string of %zu bytes, the limit is %u", cp,
                                   json_string_length(c), SERVE_MAX_TEXT);
        out = json_incref(c);
    } else if (json_is_array(c)) {
        if (content_parts(c, cp, &out, e)) return -1;
    } else {
        return serve_json_type_error(e, cp, "a string or an array of content parts", c);
    }
    return json_object_set_new(msg, "content", out) ? serve_req_nomem(e, cp) : 0;
}

/* arguments: OpenAI sends a JSON string, Ollama an object; templates want the object. A string
 * that is not a JSON object stays a string (some models call tools with free text). */
static int arguments_norm(json_t *fn, const char *fp, json_t *out_fn, serve_error *e) {
    char ap[SERVE_PATH_MAX];
    serve_path_key(ap, sizeof ap, fp, "arguments");
    json_t *a = json_object_get(fn, "arguments"), *v;
    if (a && !json_is_null(a) && !json_is_object(a) && !json_is_string(a))
        return serve_json_type_error(e, ap, "a string or an object", a);
    if (json_is_string(a) && json_string_length(a) > SERVE_MAX_TEXT)
        return serve_error_bad(e, "limit_exceeded", ap, "%s: string of %zu bytes, the limit is %u",
                               ap, json_string_length(a), SERVE_MAX_TEXT);
    if (!a || json_is_null(a)) {
        v = json_object();
    } else if (json_is_object(a)) {
        v = json_incref(a);
    } else {
        v = json_loadb(json_string_value(a), json_string_length(a), 0, NULL);
        if (!json_is_object(v)) {
            json_decref(v);
            v = json_incref(a);
        }
    }
    return json_object_set_new(out_fn, "arguments", v) ? serve_req_nomem(e, ap) : 0;
}

static int tool_call_parse(const json_t *tc, const char *tp, json_t *out, serve_error *e) {
    if (!json_is_object(tc)) return serve_json_type_error(e, tp, "an object", tc);
    const char *id = NULL, *type = "function", *name = NULL;
    json_t *fn = NULL;
    char fp[SERVE_PATH_MAX], np[SERVE_PATH_MAX];
    serve_path_key(fp, sizeof fp, tp, "function");
    serve_path_key(np, sizeof np, fp, "name");
    if (serve_json_get_string(tc, tp, "id", SERVE_MAX_NAME, &id, NULL, e) < 0 ||
        serve_json_get_string(tc, tp, "type", SERVE_MAX_NAME, &type, NULL, e) < 0 ||
        serve_json_get_object(tc, tp, "function", &fn, e) < 0)
        return -1;
    if (strcmp(type, "function"))
        return serve_error_bad(e, "invalid_value", tp,
                               "%s.type: expected \"function\", got "
                               "\"%.64s\"",
                               tp, type);
    if (!fn) return serve_error_bad(e, "missing_field", fp, "%s: required, got nothing", fp);
    if (serve_json_get_string(fn, fp, "name", SERVE_MAX_NAME, &name, NULL, e) < 0) return -1;
    if (!name) return serve_error_bad(e, "missing_field", np, "%s: required, got nothing", np);
    json_t *ofn = json_pack("{s:s}", "name", name);
    json_t *call = json_pack("{s:s, s:o}", "type", "function", "function", ofn);
    if (!call || (id && json_object_set_new(call, "id", json_string(id))) ||
        json_array_append_new(out, call))
        return serve_req_nomem(e, tp);
    return arguments_norm(fn, fp, ofn, e);
}

static int tool_calls_parse(const json_t *m, const char *p, json_t *msg, serve_error *e) {
    json_t *tcs = NULL;
    char tp[SERVE_PATH_MAX], ip[SERVE_PATH_MAX];
    serve_path_key(tp, sizeof tp, p, "tool_calls");
    int got = serve_json_get_array(m, p, "tool_calls", &tcs, e);
    if (got <= 0) return got;
    if (json_array_size(tcs) > SERVE_MAX_TOOLS)
        return serve_error_bad(e, "limit_exceeded", tp, "%s: %zu calls, the limit is %d", tp,
                               json_array_size(tcs), SERVE_MAX_TOOLS);
    json_t *out = json_array();
    if (!out || json_object_set_new(msg, "tool_calls", out)) return serve_req_nomem(e, tp);
    for (size_t i = 0; i < json_array_size(tcs); i++) {
        serve_path_index(ip, sizeof ip, tp, i);
        if (tool_call_parse(json_array_get(tcs, i), ip, out, e)) return -1;
    }
    return 0;
}

/* Optional string fields copied as they are, and Ollama's spellings mapped to the template's. */
static int extras_parse(const json_t *m, const char *p, json_t *msg, serve_error *e) {
    static const char *const KEYS[][2] = {{"name", "name"},
                                          {"tool_call_id", "tool_call_id"},
                                          {"tool_name", "name"},
                                          {"reasoning_content", "reasoning_content"},
                                          {"thinking", "reasoning_content"}};
    for (size_t k = 0; k < sizeof KEYS / sizeof KEYS[0]; k++) {
        const char *s = NULL;
        size_t n = 0;
        size_t cap = strcmp(KEYS[k][1], "reasoning_content") ? SERVE_MAX_NAME : SERVE_MAX_TEXT;
        int got = serve_json_get_string(m, p, KEYS[k][0], cap, &s, &n, e);
        if (got < 0) return -1;
        if (got && json_object_set_new(msg, KEYS[k][1], json_stringn_nocheck(s, n)))
            return serve_req_nomem(e, p);
    }
    json_t *images = NULL;
    char ip[SERVE_PATH_MAX];
    serve_path_key(ip, sizeof ip, p, "images");
    if (serve_json_get_array(m, p, "images", &images, e) < 0) return -1;
    if (images && json_array_size(images) > 0)
        return serve_error_bad(e, "unsupported_content", ip,
                               "%s: this server's model reads text only, got %zu images", ip,
                               json_array_size(images));
    return 0;
}

static int message_parse(const json_t *m, const char *p, json_t *out, serve_error *e) {
    if (!json_is_object(m)) return serve_json_type_error(e, p, "a message object", m);
    const char *role;
    if (role_parse(m, p, &role, e)) return -1;
    /* Templates know system, user, assistant and tool; developer is OpenAI's new system. */
    json_t *msg = json_pack("{s:s}", "role", strcmp(role, "developer") ? role : "system");
    if (!msg || json_array_append_new(out, msg)) return serve_req_nomem(e, p);
    if (content_parse(m, p, role, msg, e) || extras_parse(m, p, msg, e)) return -1;
    return tool_calls_parse(m, p, msg, e);
}

int serve_messages_parse(serve_gen_req *r, const json_t *body, serve_error *e) {
    json_t *msgs = NULL;
    int got = serve_json_get_array(body, "", "messages", &msgs, e);
    if (got < 0) return -1;
    if (!got)
        return serve_error_bad(e, "missing_field", "messages", "messages: required, got nothing");
    size_t n = json_array_size(msgs);
    if (n == 0)
        return serve_error_bad(e, "invalid_value", "messages",
                               "messages: expected at least one message, got an empty array");
    if (n > SERVE_MAX_MESSAGES)
        return serve_error_bad(e, "limit_exceeded", "messages",
                               "messages: %zu messages, the limit is %d", n, SERVE_MAX_MESSAGES);
    json_t *out = json_array();
    if (!out) return serve_req_nomem(e, "messages");
    char p[SERVE_PATH_MAX];
    for (size_t i = 0; i < n; i++) {
        serve_path_index(p, sizeof p, "messages", i);
        if (message_parse(json_array_get(msgs, i), p, out, e)) {
            json_decref(out);
            return -1;
        }
    }
    r->messages = out;
    return 0;
}
