/*
 * Constrained output for requests: the `grammar` field (GBNF, both dialects), OpenAI
 * response_format json_object / json_schema, Ollama format "json" / a schema, and tool_choice
 * "required" or a named function, which constrain the answer to a call of a declared tool in
 * the model's own tool-call format with arguments that match the tool's parameter schema.
 *
 * A request's grammar is compiled once, on the HTTP thread when the task is built; every
 * choice gets its own matcher over the model's vocabulary trie, which is built the first time
 * a request needs it and then shared.
 */
#include "serve/serve_constraint.h"

#include "core/alloc.h"
#include "serve/serve_json.h"

#include <stdio.h>
#include <string.h>

int serve_req_parse_grammar(serve_gen_req *r, const json_t *body, serve_error *e) {
    const char *g = NULL;
    size_t n = 0;
    if (serve_json_get_string(body, "", "grammar", SERVE_MAX_TEXT, &g, &n, e) < 0) return -1;
    if (!g || !n) return 0;
    return serve_req_strdup(&r->grammar, g, n, e);
}

/* ---- tool calls ------------------------------------------------------------------------ */

/* The schema of one call of tool t: {"name": const, "<args key>": parameters}. */
static json_t *call_schema(const json_t *tool, const char *args_key) {
    const json_t *fn = json_object_get(tool, "function");
    json_t *params = json_object_get(fn, "parameters");
    params = params ? json_incref(params) : json_pack("{s:s}", "type", "object");
    return json_pack("{s:s,s:{s:{s:O},s:o},s:[s,s]}", "type", "object", "properties", "name",
                     "const", json_object_get(fn, "name"), args_key, params, "required", "name",
                     args_key);
}

/* GBNF for the calls tool_choice allows in the model's format; NULL with e set. */
static char *tool_grammar(const serve_gen_req *r, const char *format, serve_error *e) {
    bool hermes = !strcmp(format, "hermes");
    if (!hermes && strcmp(format, "llama3")) {
        serve_error_bad(e, "unsupported_value", "tool_choice",
                        "tool_choice: constraining the output to a tool call is supported for "
                        "the hermes and llama3 tool-call formats; this model's format is \"%s\"",
                        format);
        return NULL;
    }
    json_t *any = json_array();
    for (size_t i = 0; any && i < json_array_size(r->tools); i++) {
        const json_t *t = json_array_get(r->tools, i);
        const char *name = json_string_value(json_object_get(json_object_get(t, "function"), "name"));
        if (r->tool_choice == SERVE_TOOL_CHOICE_FUNCTION && strcmp(name, r->tool_choice_name))
            continue;
        json_array_append_new(any, call_schema(t, hermes ? "arguments" : "parameters"));
    }
    json_t *schema = json_pack("{s:o}", "anyOf", any);
    char *text = schema ? json_dumps(schema, JSON_COMPACT) : NULL;
    json_decref(schema);
    char *gbnf = NULL;
    size_t len = 0;
    ob_err err = {{0}};
    ob_status st = text ? ob_json_schema_to_gbnf(text, strlen(text), "call", &gbnf, &len, &err)
                        : OB_ERR_NOMEM;
    free(text);
    if (st) {
        if (st == OB_ERR_NOMEM) serve_req_nomem(e, "the tool-call grammar");
        else serve_error_bad(e, "unsupported_schema", "tools",
                             "tools: a parameters schema cannot be enforced: %s", err.msg);
        return NULL;
    }
    /* Hermes: <tool_call>{json}</tool_call>; Llama 3: the JSON object alone. One call per
     * answer: a small model left free to add calls tends to start another one and run out of
     * tokens inside it. */
    const char *root = hermes ? "root ::= \"<tool_call>\" [ \\n]{0,2} call [ \\n]{0,2} "
                                "\"</tool_call>\"\n"
                              : "root ::= call\n";
    size_t rl = strlen(root);
    char *all = ob_alloc(rl + len + 1, 1);
    if (!all) {
        ob_string_free(gbnf);
        serve_req_nomem(e, "the tool-call grammar");
        return NULL;
    }
    memcpy(all, root, rl);
    memcpy(all + rl, gbnf, len + 1);
    ob_string_free(gbnf);
    return all;
}

/* ---- building ------------------------------------------------------------------------ */

static int compile_error(serve_gen_req *r, ob_status st, const ob_err *err, const char *param,
                         serve_error *e) {
    if (st == OB_ERR_NOMEM) return serve_req_nomem(e, "the grammar");
    return serve_error_bad(e, st == OB_ERR_UNSUPPORTED ? "unsupported_schema" : "invalid_value",
                           param, "%s: %s", param, err->msg);
}

int serve_constraint_build(const serve_gen_req *r, const ob_chat *chat, ob_grammar **out,
                           serve_error *e) {
    *out = NULL;
    ob_err err = {{0}};
    ob_status st;
    bool tools = r->kind == SERVE_KIND_CHAT && r->tools &&
                 (r->tool_choice == SERVE_TOOL_CHOICE_REQUIRED ||
                  r->tool_choice == SERVE_TOOL_CHOICE_FUNCTION);
    if (tools + (r->grammar != NULL) + (r->response_format != NULL) > 1)
        return serve_error_bad(e, "invalid_value", r->grammar ? "grammar" : "response_format",
                               "grammar, response_format / format and a required tool_choice "
                               "constrain the output each; give at most one");
    if (tools) {
        char *g = tool_grammar(r, ob_chat_format(chat), e);
        if (!g) return -1;
        st = ob_grammar_new(g, strlen(g), NULL, out, &err);
        ob_free(g);
        return st ? compile_error((serve_gen_req *)r, st, &err, "tools", e) : 0;
    }
    if (r->grammar) {
        st = ob_grammar_new(r->grammar, strlen(r->grammar), NULL, out, &err);
        return st ? compile_error((serve_gen_req *)r, st, &err, "grammar", e) : 0;
    }
    if (!r->response_format) return 0;
    const char *param = r->dialect == SERVE_DIALECT_OLLAMA ? "format"
                                                            : "response_format.json_schema.schema";
    json_t *schema = json_object_get(r->response_format, "schema");
    char *text = schema ? json_dumps(schema, JSON_COMPACT) : NULL;
    if (schema && !text) return serve_req_nomem(e, "the schema");
    st = ob_grammar_from_json_schema(text, text ? strlen(text) : 0, out, &err);
    free(text);
    return st ? compile_error((serve_gen_req *)r, st, &err, param, e) : 0;
}
