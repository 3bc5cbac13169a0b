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
#include "serve/serve_tool_grammar.h"

#include <stdio.h>
#include <string.h>

int serve_req_parse_grammar(serve_gen_req *r, const json_t *body, serve_error *e) {
    const char *g = NULL;
    size_t n = 0;
    if (serve_json_get_string(body, "", "grammar", SERVE_MAX_TEXT, &g, &n, e) < 0) return -1;
    if (!g || !n) return 0;
    return serve_req_strdup(&r->grammar, g, n, e);
}

/* ---- building ------------------------------------------------------------------------ */

static int compile_error(serve_gen_req *r, ob_status st, const ob_err *err, const char *param,
                         serve_error *e) {
    if (st == OB_ERR_NOMEM) return serve_req_nomem(e, "the grammar");
    return serve_error_bad(e, st == OB_ERR_UNSUPPORTED ? "unsupported_schema" : "invalid_value",
                           param, "%s: %s", param, err->msg);
}

/* Whether r demands a tool call (tool_choice "required" or a named function). */
static bool forced_call(const serve_gen_req *r) {
    return r->kind == SERVE_KIND_CHAT && r->tools &&
           (r->tool_choice == SERVE_TOOL_CHOICE_REQUIRED ||
            r->tool_choice == SERVE_TOOL_CHOICE_FUNCTION);
}

bool serve_constraint_wanted(const serve_gen_req *r) {
    return forced_call(r) || r->grammar || r->response_format;
}

int serve_constraint_build(const serve_gen_req *r, const ob_chat *chat,
                           const ob_vocab_trie *trie, ob_grammar **out, serve_error *e) {
    *out = NULL;
    ob_err err = {{0}};
    ob_status st;
    bool tools = forced_call(r);
    if (tools + (r->grammar != NULL) + (r->response_format != NULL) > 1)
        return serve_error_bad(e, "invalid_value", r->grammar ? "grammar" : "response_format",
                               "grammar, response_format / format and a required tool_choice "
                               "constrain the output each; give at most one");
    if (tools) {
        char *g = serve_tool_grammar(r, ob_chat_format(chat), trie, e);
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
