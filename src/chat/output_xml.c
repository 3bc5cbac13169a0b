/*
 * Tool-call bodies in notations other than a JSON object per call:
 *  - Qwen3-Coder / Qwen3.5 XML: <function=name><parameter=p>value</parameter></function>;
 *  - DeepSeek: <｜tool▁call▁begin｜>name<｜tool▁sep｜>{args}<｜tool▁call▁end｜> (V3.1) and
 *    <｜tool▁call▁begin｜>function<｜tool▁sep｜>name\n```json\n{args}\n```<｜tool▁call▁end｜> (R1);
 *  - Gemma 4: <|tool_call>call:name{key:<|"|>text<|"|>,n:5}, its own literal syntax;
 *  - Harmony (gpt-oss): a header naming to=functions.name, then <|message|>{args};
 *  - Llama 3's builtin tools: <|python_tag|>name.call(key="value").
 * Each turns its notation into a JSON arguments object and hands it to the sink.
 */
#include "chat/output_internal.h"

#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

#define DS_CALL_BEGIN "<｜tool▁call▁begin｜>"
#define DS_CALL_END "<｜tool▁call▁end｜>"
#define DS_SEP "<｜tool▁sep｜>"
#define GEMMA_QUOTE "<|\"|>"

/* Trims whitespace around [*a, *b). */
static void trim(const char *p, size_t *a, size_t *b) {
    *a = chat_skip_space(p, *b, *a);
    while (*b > *a && chat_is_space(p[*b - 1])) (*b)--;
}

/* ---- Qwen3-Coder XML ---- */

/* True when a parameter's JSON schema says it is text: "type": "string", or a list of types
 * that holds "string" and nothing that parses (["string", "null"]). */
static bool schema_is_string(json_t *schema) {
    json_t *type = json_object_get(schema, "type");
    if (json_is_string(type)) return strcmp(json_string_value(type), "string") == 0;
    size_t i;
    json_t *t;
    bool str = false;
    json_array_foreach(type, i, t) {
        const char *v = json_string_value(t);
        if (v && strcmp(v, "string") == 0) str = true;
        else if (v && strcmp(v, "null") != 0) return false;
    }
    return str;
}

/* A parameter's text as a JSON value. With the tool's schema (`schema` may be NULL) a string
 * parameter stays text, even "123"; otherwise numbers, booleans, null, arrays and objects are
 * read when the text is exactly one of those, and anything else is the text itself. */
static json_t *xml_value(const char *p, size_t a, size_t b, json_t *schema) {
    /* The template writes "<parameter=p>\nvalue\n</parameter>": one newline each side is layout. */
    if (a < b && p[a] == '\n') a++;
    if (b > a && p[b - 1] == '\n') b--;
    size_t ta = a, tb = b, used = 0;
    trim(p, &ta, &tb);
    if (ta < tb && !schema_is_string(schema)) {
        json_t *v = chat_json_prefix(p + ta, tb - ta, &used);
        if (v && used == tb - ta && !json_is_string(v)) return v;
        json_decref(v);
    }
    return json_stringn(p + a, b - a);
}

/* Reads <parameter=...> elements in [i, end) into args, typed by props (the tool's schema
 * properties, may be NULL); returns the status. */
static ob_status xml_params(chat_call_sink *s, size_t i, size_t end, json_t *args,
                            json_t *props) {
    const char *p = s->body;
    for (;;) {
        i = chat_skip_space(p, end, i);
        if (i >= end) return OB_OK;
        if (end - i < 11 || memcmp(p + i, "<parameter=", 11) != 0)
            return chat_sink_bad(s, i, end - i, "expected <parameter=");
        size_t ka = i + 11, gt = ka + chat_find(p + ka, end - ka, ">");
        if (gt >= end) return chat_sink_bad(s, i, end - i, "unterminated <parameter=");
        size_t kb = gt;
        trim(p, &ka, &kb);
        size_t va = gt + 1;
        /* A missing </parameter> ends at the next parameter or at the end of the function. */
        size_t close = va + chat_find(p + va, end - va, "</parameter>");
        size_t next = va + chat_find(p + va, end - va, "<parameter=");
        size_t vb = close < next ? close : next;
        if (!chat_utf8_valid(p + ka, kb - ka))
            return chat_sink_bad(s, i, gt - i, "parameter name is not UTF-8 text");
        char *key = ob_strndup(p + ka, kb - ka);
        if (!key) return OB_ERR_NOMEM;
        json_t *v = xml_value(p, va, vb, json_object_get(props, key));
        /* json_object_set_new takes v even when it fails. */
        if (!v || json_object_set_new(args, key, v)) {
            ob_free(key);
            return v ? OB_ERR_NOMEM : chat_sink_bad(s, va, vb - va, "value is not UTF-8");
        }
        ob_free(key);
        i = close < next ? close + 12 : next;
    }
}

ob_status chat_xml_function(chat_call_sink *s, size_t from, size_t to) {
    const char *p = s->body;
    size_t i = from;
    while ((i = chat_skip_space(p, to, i)) < to) {
        if (to - i < 10 || memcmp(p + i, "<function=", 10) != 0)
            return chat_sink_bad(s, i, to - i, "expected <function=");
        size_t na = i + 10, gt = na + chat_find(p + na, to - na, ">");
        if (gt >= to) return chat_sink_bad(s, i, to - i, "unterminated <function=");
        size_t fend = gt + 1 + chat_find(p + gt + 1, to - gt - 1, "</function>");
        size_t body_a = gt + 1, after = fend < to ? fend + 11 : to;
        size_t ja = chat_skip_space(p, fend, body_a);
        ob_status st;
        if (ja < fend && p[ja] == '{') {
            /* <function=name>{json}</function>: a JSON object instead of parameters. */
            size_t used = 0;
            json_t *v = chat_json_prefix(p + ja, fend - ja, &used);
            st = v ? chat_sink_call(s, p + na, gt - na, NULL, v, i)
                   : chat_sink_bad(s, i, after - i, "invalid JSON arguments");
            json_decref(v);
        } else {
            json_t *args = json_object();
            if (!args) return OB_ERR_NOMEM;
            size_t before = s->n_bad;
            size_t nb = gt;
            trim(p, &na, &nb);
            json_t *props = chat_tool_properties(s->tools, p + na, nb - na);
            st = xml_params(s, body_a, fend, args, props);
            if (!st && s->n_bad == before) st = chat_sink_call(s, p + na, gt - na, NULL, args, i);
            json_decref(args);
        }
        if (st) return st;
        i = after;
    }
    return OB_OK;
}

/* ---- DeepSeek ---- */

/* One call between begin and end markers: body[a..b). */
static ob_status deepseek_one(chat_call_sink *s, size_t a, size_t b) {
    const char *p = s->body;
    size_t sep = a + chat_find(p + a, b - a, DS_SEP);
    if (sep >= b) return chat_sink_bad(s, a, b - a, "no <｜tool▁sep｜> in the call");
    size_t la = a, lb = sep, ra = sep + strlen(DS_SEP), rb = b;
    trim(p, &la, &lb);
    size_t na = la, nb = lb;
    if (lb - la == 8 && memcmp(p + la, "function", 8) == 0) {
        /* R1: the type comes first, the name is the next line, the arguments a ```json fence. */
        na = ra;
        nb = ra + chat_find(p + ra, rb - ra, "\n");
        ra = nb;
    }
    size_t fa = chat_skip_space(p, rb, ra);
    if (rb - fa >= 3 && memcmp(p + fa, "```", 3) == 0) {
        size_t nl = fa + chat_find(p + fa, rb - fa, "\n");
        ra = nl < rb ? nl + 1 : rb;
        size_t close = ra + chat_find(p + ra, rb - ra, "```");
        rb = close;
    }
    size_t used = 0;
    json_t *v = chat_json_prefix(p + ra, rb - ra, &used);
    if (!v) return chat_sink_bad(s, a, b - a, "arguments are not JSON");
    size_t rest = chat_skip_space(p, rb, ra + used);
    ob_status st = rest < rb ? chat_sink_bad(s, a, b - a, "text after the arguments")
                             : chat_sink_call(s, p + na, nb - na, NULL, v, a);
    json_decref(v);
    return st;
}

ob_status chat_body_deepseek(chat_call_sink *s, bool *as_content) {
    const char *p = s->body;
    size_t n = s->body_len, blen = strlen(DS_CALL_BEGIN);
    size_t i = chat_find(p, n, DS_CALL_BEGIN);
    if (i >= n) return chat_sink_bad(s, 0, n, "no <｜tool▁call▁begin｜>");
    while (i < n) {
        size_t a = i + blen;
        size_t end = a + chat_find(p + a, n - a, DS_CALL_END);
        size_t next = a + chat_find(p + a, n - a, DS_CALL_BEGIN);
        size_t b = end < next ? end : next;
        ob_status st = deepseek_one(s, a, b);
        if (st) return st;
        i = b == end && end < n ? end + strlen(DS_CALL_END) : b;
        size_t j = chat_skip_space(p, n, i);
        if (j >= n) break;
        if (n - j < blen || memcmp(p + j, DS_CALL_BEGIN, blen) != 0) {
            size_t k = j + chat_find(p + j, n - j, DS_CALL_BEGIN);
            if ((st = chat_sink_bad(s, j, k - j, "text between tool calls"))) return st;
            j = k;
        }
        i = j;
    }
    return OB_OK;
}

/* ---- Gemma 4 literals ---- */

static json_t *gemma_value(const char *p, size_t n, size_t *i, int depth);

/* A key: <|"|>text<|"|> or bare text up to ':'. */
static char *gemma_key(const char *p, size_t n, size_t *i) {
    size_t q = strlen(GEMMA_QUOTE);
    if (n - *i >= q && memcmp(p + *i, GEMMA_QUOTE, q) == 0) {
        size_t a = *i + q, e = a + chat_find(p + a, n - a, GEMMA_QUOTE);
        if (e >= n) return NULL;
        *i = e + q;
        return ob_strndup(p + a, e - a);
    }
    size_t a = *i, e = a;
    while (e < n && p[e] != ':' && p[e] != '}' && p[e] != ',') e++;
    size_t b = e;
    trim(p, &a, &b);
    *i = e;
    return a < b ? ob_strndup(p + a, b - a) : NULL;
}

static json_t *gemma_container(const char *p, size_t n, size_t *i, int depth, bool obj) {
    json_t *out = obj ? json_object() : json_array();
    char close = obj ? '}' : ']';
    (*i)++;
    while (out) {
        *i = chat_skip_space(p, n, *i);
        if (*i < n && p[*i] == close) {
            (*i)++;
            return out;
        }
        char *key = NULL;
        if (obj) {
            key = gemma_key(p, n, i);
            *i = chat_skip_space(p, n, *i);
            if (!key || *i >= n || p[*i] != ':') {
                ob_free(key);
                goto fail;
            }
            (*i)++;
        }
        json_t *v = gemma_value(p, n, i, depth + 1);
        int bad = !v || (obj ? json_object_set_new(out, key, v) : json_array_append_new(out, v));
        ob_free(key);
        if (bad) goto fail;
        *i = chat_skip_space(p, n, *i);
        if (*i < n && p[*i] == ',') (*i)++;
        else if (*i >= n || p[*i] != close) goto fail;
    }
    return NULL;
fail:
    json_decref(out);
    return NULL;
}

static json_t *gemma_value(const char *p, size_t n, size_t *i, int depth) {
    size_t q = strlen(GEMMA_QUOTE);
    *i = chat_skip_space(p, n, *i);
    if (*i >= n || depth > 64) return NULL;
    if (p[*i] == '{' || p[*i] == '[') return gemma_container(p, n, i, depth, p[*i] == '{');
    if (n - *i >= q && memcmp(p + *i, GEMMA_QUOTE, q) == 0) {
        size_t a = *i + q, e = a + chat_find(p + a, n - a, GEMMA_QUOTE);
        if (e >= n) return NULL;
        *i = e + q;
        return json_stringn(p + a, e - a);
    }
    size_t a = *i, e = a;
    while (e < n && p[e] != ',' && p[e] != '}' && p[e] != ']') e++;
    size_t b = e;
    trim(p, &a, &b);
    *i = e;
    if (a == b) return NULL;
    size_t used = 0;
    json_t *v = chat_json_prefix(p + a, b - a, &used);
    if (v && used == b - a && !json_is_string(v)) return v;
    json_decref(v);
    return json_stringn(p + a, b - a); /* a bare word: the model dropped the quotes */
}

ob_status chat_body_gemma4(chat_call_sink *s, bool *as_content) {
    const char *p = s->body;
    size_t n = s->body_len, tag = strlen("<|tool_call>");
    size_t i = chat_skip_space(p, n, n >= tag && memcmp(p, "<|tool_call>", tag) == 0 ? tag : 0);
    if (n - i < 5 || memcmp(p + i, "call:", 5) != 0)
        return chat_sink_bad(s, 0, n, "expected call:");
    size_t na = i + 5, brace = na + chat_find(p + na, n - na, "{");
    if (brace >= n) return chat_sink_bad(s, 0, n, "no '{' after the name");
    size_t j = brace;
    json_t *args = gemma_container(p, n, &j, 0, true);
    if (!args) return chat_sink_bad(s, 0, n, "unreadable arguments");
    size_t rest = chat_skip_space(p, n, j);
    ob_status st = rest < n ? chat_sink_bad(s, rest, n - rest, "text after the arguments")
                            : chat_sink_call(s, p + na, brace - na, NULL, args, 0);
    json_decref(args);
    return st;
}

/* ---- Harmony ---- */

/* The recipient after "to=" in a header, without its "functions." namespace. */
static bool harmony_recipient(const char *h, size_t n, size_t *a, size_t *b) {
    size_t t = chat_find(h, n, "to=");
    if (t >= n) return false;
    *a = t + 3;
    *b = *a;
    while (*b < n && !chat_is_space(h[*b]) && h[*b] != '<') (*b)++;
    if (*b - *a > 10 && memcmp(h + *a, "functions.", 10) == 0) *a += 10;
    return *b > *a && !(*b - *a == 9 && memcmp(h + *a, "assistant", 9) == 0);
}

chat_seg chat_harmony_header(const char *h, size_t n) {
    size_t a, b;
    if (harmony_recipient(h, n, &a, &b)) return CHAT_SEG_TOOL;
    size_t c = chat_find(h, n, "<|channel|>");
    c = c < n ? c + 11 : n;
    c = chat_skip_space(h, n, c);
    if (n - c >= 8 && memcmp(h + c, "analysis", 8) == 0) return CHAT_SEG_REASONING;
    return CHAT_SEG_CONTENT;
}

ob_status chat_body_harmony(chat_call_sink *s, bool *as_content) {
    const char *p = s->body;
    size_t n = s->body_len;
    size_t m = chat_find(p, n, "<|message|>");
    size_t a, b;
    if (m >= n || !harmony_recipient(p, m, &a, &b))
        return chat_sink_bad(s, 0, n, "no recipient before <|message|>");
    size_t from = m + 11, used = 0;
    json_t *v = chat_json_prefix(p + from, n - from, &used);
    if (!v) return chat_sink_bad(s, 0, n, "arguments are not JSON");
    size_t rest = chat_skip_space(p, n, from + used);
    ob_status st = rest < n ? chat_sink_bad(s, rest, n - rest, "text after the arguments")
                            : chat_sink_call(s, p + a, b - a, NULL, v, 0);
    json_decref(v);
    return st;
}

/* ---- Python-style calls (Llama builtin tools) ---- */

/* A Python literal at p[*i..n): a quoted string, number, True/False/None. */
static json_t *py_literal(const char *p, size_t n, size_t *i) {
    *i = chat_skip_space(p, n, *i);
    if (*i >= n) return NULL;
    char q = p[*i];
    if (q == '"' || q == '\'') {
        chat_buf b = {0};
        size_t j = *i + 1;
        for (; j < n && p[j] != q; j++) {
            char c = p[j];
            if (c == '\\' && j + 1 < n) {
                c = p[++j];
                c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
            }
            if (chat_buf_add(&b, &c, 1)) break;
        }
        json_t *v = j < n ? json_stringn(b.p ? b.p : "", b.len) : NULL;
        chat_buf_free(&b);
        *i = j + 1;
        return v;
    }
    size_t a = *i, e = a;
    while (e < n && p[e] != ',' && p[e] != ')') e++;
    size_t bnd = e;
    trim(p, &a, &bnd);
    *i = e;
    if (bnd - a == 4 && memcmp(p + a, "True", 4) == 0) return json_true();
    if (bnd - a == 5 && memcmp(p + a, "False", 5) == 0) return json_false();
    if (bnd - a == 4 && memcmp(p + a, "None", 4) == 0) return json_null();
    size_t used = 0;
    json_t *v = a < bnd ? chat_json_prefix(p + a, bnd - a, &used) : NULL;
    if (v && (used != bnd - a || !json_is_number(v))) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

int chat_python_call(chat_call_sink *s, size_t from, size_t to) {
    const char *p = s->body;
    size_t dot = from + chat_find(p + from, to - from, ".call(");
    if (dot >= to) return 0;
    for (size_t k = from; k < dot; k++) {
        char c = p[k];
        bool word = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9');
        if (!word) return 0;
    }
    json_t *args = json_object();
    if (!args) return -1;
    size_t i = dot + 6;
    int ok = 0;
    for (;;) {
        i = chat_skip_space(p, to, i);
        if (i < to && p[i] == ')') {
            ok = chat_skip_space(p, to, i + 1) == to;
            break;
        }
        size_t ka = i;
        while (i < to && p[i] != '=' && p[i] != ')' && p[i] != ',') i++;
        size_t kb = i;
        trim(p, &ka, &kb);
        if (i >= to || p[i] != '=' || ka == kb) break;
        i++;
        json_t *v = py_literal(p, to, &i);
        char *key = ob_strndup(p + ka, kb - ka);
        if (!key) json_decref(v);
        int bad = !v || !key || json_object_set_new(args, key, v);
        ob_free(key);
        if (bad) break;
        i = chat_skip_space(p, to, i);
        if (i < to && p[i] == ',') i++;
    }
    int r = 0;
    if (ok) r = chat_sink_call(s, p + from, dot - from, NULL, args, from) ? -1 : 1;
    json_decref(args);
    return r;
}
