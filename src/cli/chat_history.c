/*
 * The conversation of `outboard chat`: a JSON array of OpenAI-style messages ({"role",
 * "content"}, plus "reasoning_content" and "tool_calls" on answers), exactly what the chat
 * template reads. Saving writes {"messages": [...]}, the input of `outboard template --input`,
 * so a saved chat can be rendered again outside the chat; loading accepts that or a bare array.
 */
#include "cli/chat.h"
#include "cli/cli.h"
#include "core/err.h"

#include <string.h>

ob_status cli_chat_history_add(json_t *messages, const char *role, const char *text,
                               ob_err *err) {
    json_t *m = json_pack("{s:s, s:s}", "role", role, "content", text);
    if (!m || json_array_append_new(messages, m))
        return ob_fail(err, OB_ERR_NOMEM, "out of memory (or the message is not UTF-8)");
    return OB_OK;
}

/* The calls as transformers passes them to templates: {"type": "function", "function":
 * {"name", "arguments"}} with the arguments as a JSON object (templates write it with tojson). */
static json_t *calls_json(const ob_chat_reply *out) {
    json_t *calls = json_array();
    for (size_t i = 0; calls && i < out->n_calls; i++) {
        const ob_tool_call *c = &out->calls[i];
        json_t *args = json_loads(c->arguments, JSON_DECODE_ANY, NULL);
        json_t *call = json_pack("{s:s, s:{s:s, s:o}}", "type", "function", "function", "name",
                                 c->name, "arguments", args ? args : json_object());
        if (call && c->id) json_object_set_new(call, "id", json_string(c->id));
        if (!call || json_array_append_new(calls, call)) {
            json_decref(calls);
            return NULL;
        }
    }
    return calls;
}

ob_status cli_chat_history_add_reply(json_t *messages, const ob_chat_reply *out, ob_err *err) {
    json_t *m = json_pack("{s:s, s:s}", "role", "assistant", "content",
                          out->content ? out->content : "");
    if (m && out->reasoning && out->reasoning_len)
        json_object_set_new(m, "reasoning_content", json_string(out->reasoning));
    if (m && out->n_calls) {
        json_t *calls = calls_json(out);
        if (!calls || json_object_set_new(m, "tool_calls", calls)) {
            json_decref(m);
            m = NULL;
        }
    }
    if (!m || json_array_append_new(messages, m))
        return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    return OB_OK;
}

static bool is_role(const json_t *m, const char *role) {
    const char *r = json_string_value(json_object_get(m, "role"));
    return r && !strcmp(r, role);
}

ob_status cli_chat_history_set_system(json_t *messages, const char *text, ob_err *err) {
    bool has = json_array_size(messages) && is_role(json_array_get(messages, 0), "system");
    if (!text || !*text) {
        if (has) json_array_remove(messages, 0);
        return OB_OK;
    }
    json_t *m = json_pack("{s:s, s:s}", "role", "system", "content", text);
    if (!m || (has ? json_array_set_new(messages, 0, m) : json_array_insert_new(messages, 0, m)))
        return ob_fail(err, OB_ERR_NOMEM, "out of memory (or the text is not UTF-8)");
    return OB_OK;
}

void cli_chat_history_reset(json_t *messages) {
    size_t keep = json_array_size(messages) && is_role(json_array_get(messages, 0), "system");
    while (json_array_size(messages) > keep) json_array_remove(messages, keep);
}

size_t cli_chat_history_drop_oldest(json_t *messages) {
    size_t n = json_array_size(messages);
    size_t first = n && is_role(json_array_get(messages, 0), "system");
    /* The exchange runs from `first` to just before the next user message; the last user
     * message (the one being answered) must stay. */
    size_t next = first + 1;
    while (next < n && !is_role(json_array_get(messages, next), "user")) next++;
    if (next >= n) return 0;
    for (size_t i = first; i < next; i++) json_array_remove(messages, first);
    return next - first;
}

ob_status cli_chat_history_save(const json_t *messages, const char *path, ob_err *err) {
    json_t *conv = json_pack("{s:O}", "messages", (json_t *)messages);
    if (!conv) return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    int rc = json_dump_file(conv, path, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(conv);
    return rc ? ob_fail(err, OB_ERR_IO, "%s: cannot write", path) : OB_OK;
}

/* Checks that every message is an object with a string role. */
static ob_status check_messages(const char *path, const json_t *msgs, ob_err *err) {
    if (!json_is_array(msgs))
        return ob_fail(err, OB_ERR_FORMAT, "%s: expected {\"messages\": [...]} or an array",
                       path);
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role")))
            return ob_fail(err, OB_ERR_FORMAT,
                           "%s: message %zu: expected an object with a string \"role\"", path,
                           i);
    }
    return OB_OK;
}

ob_status cli_chat_history_load(const char *path, json_t **out, ob_err *err) {
    *out = NULL;
    json_t *doc = NULL;
    const cli_file_use use = {"/load", CLI_MAX_CONVERSATION_FILE, false};
    ob_status st = cli_read_json(path, &use, &doc, err);
    if (st) return st;
    json_t *msgs = json_is_object(doc) ? json_object_get(doc, "messages") : doc;
    st = check_messages(path, msgs, err);
    if (!st) *out = json_incref(msgs);
    json_decref(doc);
    return st;
}
