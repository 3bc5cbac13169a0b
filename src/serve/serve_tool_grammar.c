/*
 * Forced tool calls as grammars (serve_tool_grammar.h), one per tool-call format:
 *
 *   hermes       <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>
 *   llama3       {"name": "f", "parameters": {...}}
 *   qwen3-coder  <tool_call>\n<function=f>\n<parameter=p>\nvalue\n</parameter>\n...
 *                </function>\n</tool_call>
 *
 * JSON arguments come from the JSON-schema translation of the tool's parameters. The XML form
 * writes a parameter whose schema is a string as raw text (the parser keeps it text) and any
 * other value as JSON, which the parser reads back; so a string parameter's grammar is text
 * that cannot end the parameter early (no "</parameter>" inside), bounded or enumerated as its
 * schema says, and every other parameter is that schema's JSON grammar. Parameters come in the
 * schema's order, the required ones always, the others optionally, nothing undeclared.
 */
#include "serve/serve_tool_grammar.h"

#include "core/alloc.h"
#include "serve/serve_buf.h"

#include <stdio.h>
#include <string.h>

/* ---- text ------------------------------------------------------------------------------ */

/* A GBNF string literal of s. */
static void put_literal(serve_buf *b, const char *s, size_t n) {
    serve_buf_puts(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') serve_buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7F) serve_buf_printf(b, "\\x%02X", c);
        else serve_buf_append(b, (const char *)&c, 1);
    }
    serve_buf_puts(b, "\"");
}

/* A GBNF character class member for byte c (escaped where the class syntax needs it). */
static void put_class_char(serve_buf *b, char c) {
    if (c == ']' || c == '[' || c == '\\' || c == '^' || c == '-') serve_buf_printf(b, "\\%c", c);
    else serve_buf_append(b, &c, 1);
}

/* Rules NAME-0 .. NAME-(L-1), NAME-0 the start: any text that does not contain `stop`, whose
 * first character appears nowhere else in it (true of "</parameter>"), so after a mismatch the
 * only partial match that can start again is that character itself. State i has matched the
 * first i characters of stop at the end of the text so far; any state may end. */
static void rules_text_without(serve_buf *b, const char *name, const char *stop) {
    const size_t n = strlen(stop);
    for (size_t i = 0; i < n; i++) {
        serve_buf_printf(b, "%s-%zu ::= \"\" | [^", name, i);
        put_class_char(b, stop[0]);
        if (i > 0) put_class_char(b, stop[i]);
        serve_buf_printf(b, "] %s-0", name);
        if (n > 1) {
            serve_buf_puts(b, " | ");
            put_literal(b, stop, 1);
            serve_buf_printf(b, " %s-1", name);
        }
        if (i > 0 && i + 1 < n) {
            serve_buf_puts(b, " | ");
            put_literal(b, stop + i, 1);
            serve_buf_printf(b, " %s-%zu", name, i + 1);
        }
        serve_buf_puts(b, "\n");
    }
}

/* ---- schemas --------------------------------------------------------------------------- */

/* Whether the parser keeps a parameter of this schema as text: "type" "string", or a list of
 * "string" with "null" (the rule of output_xml.c's schema_is_string). */
static bool is_text_schema(const json_t *s) {
    const json_t *type = json_object_get(s, "type");
    if (json_is_string(type)) return !strcmp(json_string_value(type), "string");
    size_t i;
    const json_t *t;
    bool text = false;
    json_array_foreach(type, i, t) {
        const char *v = json_string_value(t);
        if (v && !strcmp(v, "string")) text = true;
        else if (!v || strcmp(v, "null")) return false;
    }
    return text;
}

/* Where schemas keep the definitions their "#/..." references name. */
static const char *const DEFS_KEYS[] = {"$defs", "definitions"};

/* The schema s as a stand-alone document: the tool's $defs / definitions come along, so a
 * "#/$defs/..." reference inside it still resolves. New reference. */
static json_t *standalone(const json_t *s, const json_t *params) {
    json_t *d = json_deep_copy(s);
    if (!d || !json_is_object(d)) return d;
    for (size_t i = 0; i < 2; i++) {
        json_t *defs = json_object_get(params, DEFS_KEYS[i]);
        if (defs && !json_object_get(d, DEFS_KEYS[i])) json_object_set(d, DEFS_KEYS[i], defs);
    }
    return d;
}

/* Appends the JSON grammar of schema s with its rules prefixed `prefix`. */
static int json_rules(serve_buf *b, const json_t *s, const json_t *params, const char *prefix,
                      const char *what, serve_error *e) {
    json_t *doc = standalone(s, params);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(doc);
    if (!text) return serve_req_nomem(e, "the tool-call grammar");
    char *gbnf = NULL;
    size_t len = 0;
    ob_err err = {{0}};
    ob_status st = ob_json_schema_to_gbnf(text, strlen(text), prefix, &gbnf, &len, &err);
    free(text);
    if (st == OB_ERR_NOMEM) return serve_req_nomem(e, "the tool-call grammar");
    if (st)
        return serve_error_bad(e, "unsupported_schema", "tools",
                               "tools: %s: a parameters schema cannot be enforced: %s", what,
                               err.msg);
    serve_buf_append(b, gbnf, len);
    ob_string_free(gbnf);
    return 0;
}

/* Rule `name` for the raw text of a string parameter of schema s: one of its enum / const
 * values, text of its length bounds without '<', or any text without "</parameter>". */
static int text_value_rule(serve_buf *b, const json_t *s, const char *name, const char *what,
                           serve_error *e) {
    if (json_object_get(s, "pattern"))
        return serve_error_bad(e, "unsupported_schema", "tools",
                               "tools: %s: keyword 'pattern' is not supported for a string "
                               "parameter in this model's XML tool-call format", what);
    const json_t *one = json_object_get(s, "const");
    const json_t *list = json_object_get(s, "enum");
    if (one || list) {
        serve_buf_printf(b, "%s ::= ", name);
        size_t n = one ? 1 : json_array_size(list), k = 0;
        for (size_t i = 0; i < n; i++) {
            const json_t *v = one ? one : json_array_get(list, i);
            if (!json_is_string(v)) continue; /* a null choice cannot be written as text */
            serve_buf_puts(b, k++ ? " | " : "");
            put_literal(b, json_string_value(v), json_string_length(v));
        }
        if (!k)
            return serve_error_bad(e, "unsupported_schema", "tools", "tools: %s: no string "
                                   "among its enum / const values", what);
        serve_buf_puts(b, "\n");
        return 0;
    }
    const json_t *lo = json_object_get(s, "minLength"), *hi = json_object_get(s, "maxLength");
    if (lo || hi) {
        json_int_t l = json_is_integer(lo) ? json_integer_value(lo) : 0;
        json_int_t h = json_is_integer(hi) ? json_integer_value(hi) : -1;
        if (l < 0 || (hi && h < l) || l > 4096 || h > 4096)
            return serve_error_bad(e, "unsupported_schema", "tools", "tools: %s: minLength / "
                                   "maxLength out of range (0..4096)", what);
        if (h >= 0) serve_buf_printf(b, "%s ::= [^<]{%lld,%lld}\n", name, (long long)l, (long long)h);
        else serve_buf_printf(b, "%s ::= [^<]{%lld,}\n", name, (long long)l);
        return 0;
    }
    serve_buf_printf(b, "%s ::= xml-text-0\n", name);
    return 0;
}

/* ---- formats --------------------------------------------------------------------------- */

/* The name of tool t, or NULL. */
static const char *tool_name(const json_t *t) {
    return json_string_value(json_object_get(json_object_get(t, "function"), "name"));
}

/* The parameters schema of tool t ({"type": "object"} when it has none). New reference. */
static json_t *tool_params(const json_t *t) {
    json_t *p = json_object_get(json_object_get(t, "function"), "parameters");
    return p ? json_incref(p) : json_pack("{s:s}", "type", "object");
}

/* call-I ::= one JSON call of tool t: {"name": const, "<args_key>": parameters}. */
static int json_call_rules(serve_buf *b, const json_t *t, size_t i, const char *args_key,
                           serve_error *e) {
    json_t *params = tool_params(t);
    json_t *schema = params ? json_pack("{s:s,s:{s:{s:s},s:O},s:[s,s]}", "type", "object",
                                        "properties", "name", "const", tool_name(t), args_key,
                                        params, "required", "name", args_key)
                            : NULL;
    /* the parameters' "#/$defs/..." references name the root of this wrapping schema */
    for (size_t k = 0; schema && k < 2; k++) {
        json_t *defs = json_object_get(params, DEFS_KEYS[k]);
        if (defs) json_object_set(schema, DEFS_KEYS[k], defs);
    }
    json_decref(params);
    if (!schema) return serve_req_nomem(e, "the tool-call grammar");
    char prefix[32];
    snprintf(prefix, sizeof prefix, "call-%zu", i);
    int rc = json_rules(b, schema, NULL, prefix, tool_name(t), e);
    json_decref(schema);
    return rc;
}

/* call-I ::= <function=NAME>\n PARAMS </function>\n, the Qwen3-Coder XML form. */
static int xml_call_rules(serve_buf *b, const json_t *t, size_t i, serve_error *e) {
    json_t *params = tool_params(t);
    if (!params) return serve_req_nomem(e, "the tool-call grammar");
    const json_t *props = json_object_get(params, "properties");
    const json_t *req = json_object_get(params, "required");
    const char *key;
    json_t *s;
    size_t k = 0;
    int rc = 0;
    serve_buf seq = {0};
    json_object_foreach((json_t *)props, key, s) {
        char what[200], vname[48], pname[48];
        snprintf(what, sizeof what, "%s.%s", tool_name(t), key);
        snprintf(vname, sizeof vname, "call-%zu-v%zu", i, k);
        snprintf(pname, sizeof pname, "call-%zu-p%zu", i, k);
        if (is_text_schema(s)) {
            rc = text_value_rule(b, s, vname, what, e);
        } else {
            rc = json_rules(b, s, params, vname, what, e);
        }
        if (rc) break;
        serve_buf_printf(b, "%s ::= ", pname);
        char open[300];
        int n = snprintf(open, sizeof open, "<parameter=%s>\n", key);
        if (n < 0 || (size_t)n >= sizeof open) {
            rc = serve_error_bad(e, "unsupported_schema", "tools", "tools: %s: parameter name "
                                 "too long", what);
            break;
        }
        put_literal(b, open, (size_t)n);
        serve_buf_printf(b, " %s \"\\n</parameter>\\n\"\n", vname);
        bool must = false;
        for (size_t r = 0; r < json_array_size(req); r++)
            if (json_is_string(json_array_get(req, r)) &&
                !strcmp(json_string_value(json_array_get(req, r)), key))
                must = true;
        serve_buf_printf(&seq, " %s%s", pname, must ? "" : "?");
        k++;
    }
    if (!rc) {
        char open[300];
        int n = snprintf(open, sizeof open, "<function=%s>\n", tool_name(t));
        if (n < 0 || (size_t)n >= sizeof open) {
            rc = serve_error_bad(e, "unsupported_schema", "tools", "tools: function name too "
                                 "long");
        } else {
            serve_buf_printf(b, "call-%zu ::= ", i);
            put_literal(b, open, (size_t)n);
            serve_buf_printf(b, "%s \"</function>\\n\"\n", seq.data ? seq.data : "");
        }
    }
    serve_buf_clear(&seq);
    json_decref(params);
    return rc;
}

char *serve_tool_grammar(const serve_gen_req *r, const char *format, serve_error *e) {
    const bool hermes = !strcmp(format, "hermes"), llama3 = !strcmp(format, "llama3");
    const bool xml = !strcmp(format, "qwen3-coder");
    if (!hermes && !llama3 && !xml) {
        serve_error_bad(e, "unsupported_value", "tool_choice",
                        "tool_choice: constraining the output to a tool call is supported for "
                        "the hermes, qwen3-coder and llama3 tool-call formats; this model's "
                        "format is \"%s\"", format);
        return NULL;
    }
    serve_buf b = {0};
    serve_buf_puts(&b, "call ::= ");
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(r->tools); i++) {
        const char *name = tool_name(json_array_get(r->tools, i));
        if (!name || (r->tool_choice == SERVE_TOOL_CHOICE_FUNCTION &&
                      strcmp(name, r->tool_choice_name)))
            continue;
        serve_buf_printf(&b, "%scall-%zu", n++ ? " | " : "", i);
    }
    serve_buf_puts(&b, "\n");
    if (!n) {
        serve_buf_clear(&b);
        serve_error_bad(e, "invalid_value", "tool_choice", "tool_choice: no declared tool is "
                        "named \"%s\"", r->tool_choice_name ? r->tool_choice_name : "");
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(r->tools); i++) {
        const json_t *t = json_array_get(r->tools, i);
        const char *name = tool_name(t);
        if (!name || (r->tool_choice == SERVE_TOOL_CHOICE_FUNCTION &&
                      strcmp(name, r->tool_choice_name)))
            continue;
        int rc = xml ? xml_call_rules(&b, t, i, e)
                     : json_call_rules(&b, t, i, hermes ? "arguments" : "parameters", e);
        if (rc) {
            serve_buf_clear(&b);
            return NULL;
        }
    }
    /* Llama 3 writes one call per answer; the tagged formats may write several in a row. */
    const int most = llama3 || !r->parallel_tool_calls ? 1 : SERVE_TOOL_MAX_CALLS;
    if (xml) {
        rules_text_without(&b, "xml-text", "</parameter>");
        serve_buf_puts(&b, "tagged ::= \"<tool_call>\\n\" call \"</tool_call>\"\n");
    } else if (hermes) {
        serve_buf_puts(&b, "tagged ::= \"<tool_call>\" [ \\n]{0,2} call [ \\n]{0,2} "
                           "\"</tool_call>\"\n");
    }
    if (llama3) serve_buf_puts(&b, "root ::= call\n");
    else serve_buf_printf(&b, "root ::= tagged (\"\\n\" tagged){0,%d}\n", most - 1);
    char *out = serve_buf_take(&b, NULL);
    if (!out) serve_req_nomem(e, "the tool-call grammar");
    return out;
}
