/*
 * Forced tool calls as grammars (serve_tool_grammar.h), one per tool-call format:
 *
 *   hermes         <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>
 *   llama3         {"name": "f", "parameters": {...}}
 *   qwen3-coder    <tool_call>\n<function=f>\n<parameter=p>\nvalue\n</parameter>\n...
 *                  </function>\n</tool_call>
 *   mistral        [TOOL_CALLS]f[ARGS]{...}  (Small 3.x, Magistral), or
 *                  [TOOL_CALLS][{"name": "f", "arguments": {...}}]  (Nemo)
 *   granite        <|tool_call|>[{"name": "f", "arguments": {...}}]
 *   command-r7b    <|START_ACTION|>[{"tool_call_id": "0", "tool_name": "f",
 *                  "parameters": {...}}]<|END_ACTION|>
 *   deepseek-v3.1  <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{...}
 *                  <｜tool▁call▁end｜><｜tool▁calls▁end｜>
 *   deepseek-r1    <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f
 *                  ```json\n{...}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>
 *   gpt-oss        <|channel|>commentary to=functions.f <|constrain|>json<|message|>{...}
 *                  <|call|>
 *   gemma4         <|tool_call>call:f{key:<|"|>text<|"|>,n:5}<tool_call|>
 *
 * The markers of the last six (Gemma 4's string delimiter <|"|> too) are control tokens in
 * their models' vocabularies, which the detokenizer writes as text but the tokenizer never
 * makes from text: a marker that is a control token of the model becomes a token element
 * (<[id]>), any other stays a literal.
 *
 * JSON arguments come from the JSON-schema translation of the tool's parameters. The XML form
 * writes a parameter whose schema is a string as raw text (the parser keeps it text) and any
 * other value as JSON, which the parser reads back; so a string parameter's grammar is text
 * that cannot end the parameter early (no "</parameter>" inside), bounded or enumerated as its
 * schema says, and every other parameter is that schema's JSON grammar. Parameters come in the
 * schema's order, the required ones always, the others optionally, nothing undeclared.
 * Gemma 4's arguments are the same translation written in its own literals (schema_gemma.c).
 */
#include "serve/serve_tool_grammar.h"

#include "core/alloc.h"
#include "grammar/grammar.h"
#include "serve/serve_buf.h"

#include <stdio.h>
#include <string.h>

#define GEMMA_QUOTE "<|\"|>"

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

/* A marker of the format: its control token when the vocabulary has one with that text (the
 * model can write it only as that token), else the text. */
static void put_marker(serve_buf *b, const ob_vocab_trie *trie, const char *text) {
    int32_t id = trie ? gram_vocab_special(trie, text, strlen(text)) : -1;
    if (id >= 0) serve_buf_printf(b, " <[%d]> ", (int)id);
    else {
        serve_buf_puts(b, " ");
        put_literal(b, text, strlen(text));
        serve_buf_puts(b, " ");
    }
}

/* Gemma 4's string delimiter as a GBNF expression (put_marker's choice). New (ob_free), or
 * NULL when memory runs out. */
static char *gemma_quote_expr(const ob_vocab_trie *trie) {
    serve_buf q = {0};
    put_marker(&q, trie, GEMMA_QUOTE);
    return serve_buf_take(&q, NULL);
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

/* Gives dst the definitions of params it lacks, so that params' "#/$defs/..." references
 * resolve with dst as the root. */
static void hoist_defs(json_t *dst, const json_t *params) {
    for (size_t i = 0; i < sizeof DEFS_KEYS / sizeof DEFS_KEYS[0]; i++) {
        json_t *defs = json_object_get(params, DEFS_KEYS[i]);
        if (defs && !json_object_get(dst, DEFS_KEYS[i])) json_object_set(dst, DEFS_KEYS[i], defs);
    }
}

/* The schema s as a stand-alone document, the tool's definitions with it. New reference. */
static json_t *standalone(const json_t *s, const json_t *params) {
    json_t *d = json_deep_copy(s);
    if (d && json_is_object(d)) hoist_defs(d, params);
    return d;
}

/* Appends the JSON grammar of schema s with its rules prefixed `prefix`; with gemma_quote
 * (the GBNF of its string delimiter), the grammar of s in Gemma 4's literals instead. */
static int schema_rules(serve_buf *b, const json_t *s, const json_t *params, const char *prefix,
                        const char *gemma_quote, const char *what, serve_error *e) {
    json_t *doc = standalone(s, params);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(doc);
    if (!text) return serve_req_nomem(e, "the tool-call grammar");
    char *gbnf = NULL;
    size_t len = 0;
    ob_err err = {{0}};
    ob_status st = gemma_quote ? gram_schema_to_gemma_gbnf(text, strlen(text), prefix,
                                                           gemma_quote, &gbnf, &len, &err)
                               : ob_json_schema_to_gbnf(text, strlen(text), prefix, &gbnf, &len,
                                                        &err);
    free(text);
    if (st == OB_ERR_NOMEM) return serve_req_nomem(e, "the tool-call grammar");
    if (st)
        return serve_error_bad(e, "unsupported_schema", "tools",
                               "tools: %s: a parameters schema cannot be enforced: %s", what,
                               err.msg);
    serve_buf_append(b, gbnf, len);
    ob_free(gbnf);
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

/* The keys of one JSON call object, in the order the model writes them. */
typedef struct json_call_keys {
    const char *id;   /* a short numeric call id ("0", "1", ...) first, or NULL */
    const char *name; /* the tool's name */
    const char *args; /* its arguments */
} json_call_keys;

/* call-I ::= one JSON call of tool t: {["<id>": "0",] "<name>": const, "<args>": parameters}. */
static int json_call_rules(serve_buf *b, const json_t *t, size_t i, json_call_keys keys,
                           serve_error *e) {
    json_t *params = tool_params(t);
    json_t *schema = params ? json_pack("{s:s,s:{},s:[]}", "type", "object", "properties",
                                        "required")
                            : NULL;
    json_t *props = json_object_get(schema, "properties"), *req = json_object_get(schema, "required");
    bool bad = !schema;
    if (!bad && keys.id)
        bad = json_object_set_new(props, keys.id, json_pack("{s:s,s:s}", "type", "string",
                                                         "pattern", "^[0-9]{1,3}$")) ||
              json_array_append_new(req, json_string(keys.id));
    if (!bad)
        bad = json_object_set_new(props, keys.name, json_pack("{s:s}", "const", tool_name(t))) ||
              json_object_set(props, keys.args, params) ||
              json_array_append_new(req, json_string(keys.name)) ||
              json_array_append_new(req, json_string(keys.args));
    if (bad) {
        json_decref(schema);
        schema = NULL;
    }
    if (schema) hoist_defs(schema, params); /* the wrapping schema is the references' root */
    json_decref(params);
    if (!schema) return serve_req_nomem(e, "the tool-call grammar");
    char prefix[32];
    snprintf(prefix, sizeof prefix, "call-%zu", i);
    int rc = schema_rules(b, schema, NULL, prefix, NULL, tool_name(t), e);
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
            rc = schema_rules(b, s, params, vname, NULL, what, e);
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

/* args-I ::= the grammar of tool t's parameters: JSON, or Gemma 4's literals with
 * gemma_quote. */
static int args_rules(serve_buf *b, const json_t *t, size_t i, const char *gemma_quote,
                      serve_error *e) {
    json_t *params = tool_params(t);
    if (!params) return serve_req_nomem(e, "the tool-call grammar");
    char prefix[32];
    snprintf(prefix, sizeof prefix, "args-%zu", i);
    int rc = schema_rules(b, params, params, prefix, gemma_quote, tool_name(t), e);
    json_decref(params);
    return rc;
}

/* ---- the formats ------------------------------------------------------------------------ */

typedef enum call_body {
    BODY_JSON,  /* call-I: a JSON object naming the tool */
    BODY_XML,   /* call-I: Qwen3-Coder's <function=...> */
    BODY_NAMED, /* named-I: the name and the arguments apart, with markers between */
} call_body;

/* One tool-call format: how a call's body is written, and how the calls are wrapped. */
typedef struct tool_format {
    const char *name;
    call_body body;
    json_call_keys keys; /* BODY_JSON */
    bool also_json;      /* BODY_NAMED that may also be a JSON list (Mistral's two forms) */
    bool one_call;       /* the format holds one call per answer */
} tool_format;

#define DS_CALLS_BEGIN "<｜tool▁calls▁begin｜>"
#define DS_CALLS_END "<｜tool▁calls▁end｜>"
#define DS_CALL_BEGIN "<｜tool▁call▁begin｜>"
#define DS_CALL_END "<｜tool▁call▁end｜>"
#define DS_SEP "<｜tool▁sep｜>"

static const tool_format FORMATS[] = {
    {"hermes", BODY_JSON, {NULL, "name", "arguments"}, false, false},
    {"llama3", BODY_JSON, {NULL, "name", "parameters"}, false, true},
    {"qwen3-coder", BODY_XML, {0}, false, false},
    {"mistral", BODY_NAMED, {NULL, "name", "arguments"}, true, false},
    {"granite", BODY_JSON, {NULL, "name", "arguments"}, false, false},
    {"command-r7b", BODY_JSON, {"tool_call_id", "tool_name", "parameters"}, false, false},
    {"deepseek-v3.1", BODY_NAMED, {0}, false, false},
    {"deepseek-r1", BODY_NAMED, {0}, false, false},
    /* <|call|> ends the model's turn: the next call would be a new turn after the result */
    {"gpt-oss", BODY_NAMED, {0}, false, true},
    {"gemma4", BODY_NAMED, {0}, false, false},
};

/* named-I ::= the markers and text around tool t's name and args-I, as format f writes them. */
static void named_rule(serve_buf *b, const tool_format *f, const ob_vocab_trie *trie,
                       const char *name, size_t i) {
    serve_buf_printf(b, "named-%zu ::=", i);
    const char *fmt = f->name;
    if (!strcmp(fmt, "mistral")) {
        put_marker(b, trie, "[TOOL_CALLS]");
        put_literal(b, name, strlen(name));
        put_marker(b, trie, "[ARGS]");
        serve_buf_printf(b, "args-%zu\n", i);
    } else if (!strcmp(fmt, "deepseek-v3.1")) {
        put_marker(b, trie, DS_CALL_BEGIN);
        put_literal(b, name, strlen(name));
        put_marker(b, trie, DS_SEP);
        serve_buf_printf(b, "args-%zu", i);
        put_marker(b, trie, DS_CALL_END);
        serve_buf_puts(b, "\n");
    } else if (!strcmp(fmt, "deepseek-r1")) {
        put_marker(b, trie, DS_CALL_BEGIN);
        serve_buf_puts(b, "\"function\"");
        put_marker(b, trie, DS_SEP);
        put_literal(b, name, strlen(name));
        serve_buf_printf(b, " \"\\n```json\\n\" args-%zu \"\\n```\"", i);
        put_marker(b, trie, DS_CALL_END);
        serve_buf_puts(b, "\n");
    } else if (!strcmp(fmt, "gemma4")) {
        put_marker(b, trie, "<|tool_call>");
        serve_buf_puts(b, "\"call:\"");
        put_literal(b, name, strlen(name));
        serve_buf_printf(b, " args-%zu", i);
        put_marker(b, trie, "<tool_call|>");
        serve_buf_puts(b, "\n");
    } else { /* gpt-oss */
        put_marker(b, trie, "<|channel|>");
        serve_buf_puts(b, "\"commentary to=functions.\"");
        put_literal(b, name, strlen(name));
        serve_buf_puts(b, " \" \"");
        put_marker(b, trie, "<|constrain|>");
        serve_buf_puts(b, "\"json\"");
        put_marker(b, trie, "<|message|>");
        serve_buf_printf(b, "args-%zu", i);
        put_marker(b, trie, "<|call|>");
        serve_buf_puts(b, "\n");
    }
}

/* A JSON list of calls, "[" call ("," call){0,%d} "]", with the spacing models write. */
#define JSON_LIST "\"[\" [ \\n]{0,5} call (\",\" [ \\n]{0,5} call){0,%d} [ \\n]{0,2} \"]\""

/* root ::= the calls of format f, at most `most` of them, wrapped as the format wraps them. */
static void root_rule(serve_buf *b, const tool_format *f, const ob_vocab_trie *trie, int most) {
    const char *fmt = f->name;
    if (!strcmp(fmt, "qwen3-coder")) {
        rules_text_without(b, "xml-text", "</parameter>");
        serve_buf_puts(b, "tagged ::= \"<tool_call>\\n\" call \"</tool_call>\"\n");
        serve_buf_printf(b, "root ::= tagged (\"\\n\" tagged){0,%d}\n", most - 1);
    } else if (!strcmp(fmt, "hermes")) {
        serve_buf_puts(b, "tagged ::= \"<tool_call>\" [ \\n]{0,2} call [ \\n]{0,2} "
                          "\"</tool_call>\"\n");
        serve_buf_printf(b, "root ::= tagged (\"\\n\" tagged){0,%d}\n", most - 1);
    } else if (!strcmp(fmt, "llama3")) {
        serve_buf_puts(b, "root ::= call\n");
    } else if (!strcmp(fmt, "mistral")) {
        serve_buf_printf(b, "root ::= named{1,%d} | ", most);
        put_marker(b, trie, "[TOOL_CALLS]");
        serve_buf_printf(b, JSON_LIST, most - 1);
        serve_buf_puts(b, "\n");
    } else if (!strcmp(fmt, "granite") || !strcmp(fmt, "command-r7b")) {
        bool cmdr = !strcmp(fmt, "command-r7b");
        serve_buf_puts(b, "root ::=");
        put_marker(b, trie, cmdr ? "<|START_ACTION|>" : "<|tool_call|>");
        serve_buf_printf(b, JSON_LIST, most - 1);
        if (cmdr) put_marker(b, trie, "<|END_ACTION|>");
        serve_buf_puts(b, "\n");
    } else if (!strcmp(fmt, "deepseek-v3.1") || !strcmp(fmt, "deepseek-r1")) {
        serve_buf_puts(b, "root ::=");
        put_marker(b, trie, DS_CALLS_BEGIN);
        serve_buf_printf(b, "named (%snamed){0,%d}", fmt[9] == 'r' ? "\"\\n\"? " : "",
                         most - 1);
        put_marker(b, trie, DS_CALLS_END);
        serve_buf_puts(b, "\n");
    } else if (!strcmp(fmt, "gemma4")) { /* calls follow one another with nothing between */
        serve_buf_printf(b, "root ::= named{1,%d}\n", most);
    } else { /* gpt-oss: the call may follow the reasoning the model writes first */
        serve_buf_puts(b, "analysis ::=");
        put_marker(b, trie, "<|channel|>");
        serve_buf_puts(b, "\"analysis\"");
        put_marker(b, trie, "<|message|>");
        serve_buf_puts(b, "oss-text");
        put_marker(b, trie, "<|end|>");
        put_marker(b, trie, "<|start|>");
        serve_buf_puts(b, "\"assistant\"\n");
        /* Plain text only: a control token inside the reasoning (<|start|>, <|channel|>, ...)
         * or text spelling one would be read by the Harmony parser as the message's
         * structure, and the call after it lost. Control tokens are allowed only where a token
         * element names them, so a text rule keeps them out; "<|" is kept out as text. */
        serve_buf_puts(b, "oss-text ::= oss-plain-0\n");
        rules_text_without(b, "oss-plain", "<|");
        serve_buf_puts(b, "root ::= analysis? named\n");
    }
}

static const tool_format *format_find(const char *name) {
    for (size_t i = 0; i < sizeof FORMATS / sizeof *FORMATS; i++)
        if (!strcmp(FORMATS[i].name, name)) return &FORMATS[i];
    return NULL;
}

/* Whether tool t may be called under r's tool_choice. */
static bool tool_allowed(const serve_gen_req *r, const json_t *t) {
    const char *name = tool_name(t);
    return name && (r->tool_choice != SERVE_TOOL_CHOICE_FUNCTION ||
                    !strcmp(name, r->tool_choice_name));
}

/* `rule ::= rule-I | ...` over the allowed tools; the number of them. */
static size_t alternatives(serve_buf *b, const serve_gen_req *r, const char *rule) {
    serve_buf_printf(b, "%s ::= ", rule);
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(r->tools); i++)
        if (tool_allowed(r, json_array_get(r->tools, i)))
            serve_buf_printf(b, "%s%s-%zu", n++ ? " | " : "", rule, i);
    serve_buf_puts(b, "\n");
    return n;
}

char *serve_tool_grammar(const serve_gen_req *r, const char *format, const ob_vocab_trie *trie,
                         serve_error *e) {
    const tool_format *f = format_find(format);
    if (!f) {
        serve_error_bad(e, "unsupported_value", "tool_choice",
                        "tool_choice: constraining the output to a tool call is supported for "
                        "the hermes, qwen3-coder, llama3, mistral, granite, command-r7b, "
                        "deepseek-r1, deepseek-v3.1, gpt-oss and gemma4 tool-call formats; this "
                        "model's format is \"%s\"", format);
        return NULL;
    }
    serve_buf b = {0};
    bool json = f->body != BODY_NAMED || f->also_json;
    size_t n = json ? alternatives(&b, r, "call") : 0;
    if (f->body == BODY_NAMED) n = alternatives(&b, r, "named");
    if (!n) {
        serve_buf_clear(&b);
        serve_error_bad(e, "invalid_value", "tool_choice", "tool_choice: no declared tool is "
                        "named \"%s\"", r->tool_choice_name ? r->tool_choice_name : "");
        return NULL;
    }
    char *quote = !strcmp(f->name, "gemma4") ? gemma_quote_expr(trie) : NULL;
    if (!strcmp(f->name, "gemma4") && !quote) {
        serve_buf_clear(&b);
        serve_req_nomem(e, "the tool-call grammar");
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(r->tools); i++) {
        const json_t *t = json_array_get(r->tools, i);
        if (!tool_allowed(r, t)) continue;
        int rc = 0;
        if (quote && strchr(tool_name(t), '{')) /* the reader ends the name at the first '{' */
            rc = serve_error_bad(e, "unsupported_value", "tools", "tools: %s: a name with '{' "
                                 "cannot be called in Gemma 4's tool-call format", tool_name(t));
        else if (f->body == BODY_XML) rc = xml_call_rules(&b, t, i, e);
        else if (json) rc = json_call_rules(&b, t, i, f->keys, e);
        if (!rc && f->body == BODY_NAMED && !(rc = args_rules(&b, t, i, quote, e)))
            named_rule(&b, f, trie, tool_name(t), i);
        if (rc) {
            ob_free(quote);
            serve_buf_clear(&b);
            return NULL;
        }
    }
    ob_free(quote);
    root_rule(&b, f, trie, f->one_call || !r->parallel_tool_calls ? 1 : SERVE_TOOL_MAX_CALLS);
    char *out = serve_buf_take(&b, NULL);
    if (!out) serve_req_nomem(e, "the tool-call grammar");
    return out;
}
