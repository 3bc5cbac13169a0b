/*
 * Tool-call bodies that carry JSON: Hermes-style <tool_call>{..}</tool_call> (Qwen2.5, QwQ,
 * Qwen3, SmolLM3, and Qwen3-Coder's XML inside the same tag), Llama 3's bare JSON and
 * <|python_tag|>, Mistral's [TOOL_CALLS] in both its JSON-list and name[ARGS] forms, and the
 * tag-then-JSON-list forms of Granite (<|tool_call|>) and Command-R7B (<|START_ACTION|>).
 *
 * Each parser gets the whole body (opening marker included, closing marker dropped) through the
 * sink and records every call it reads, or the part it could not read, so one bad call in a
 * list does not hide the good ones.
 */
#include "chat/output_internal.h"

#include <string.h>

/* Narrows [*from, *to) to the inside of a ``` fence (```json ... ```) when there is one. */
static void strip_fence(const char *p, size_t *from, size_t *to) {
    size_t i = chat_skip_space(p, *to, *from);
    size_t e = *to;
    while (e > i && chat_is_space(p[e - 1])) e--;
    if (e - i >= 3 && memcmp(p + i, "```", 3) == 0) {
        size_t nl = i + chat_find(p + i, e - i, "\n");
        i = nl < e ? nl + 1 : e;
        if (e - i >= 3 && memcmp(p + e - 3, "```", 3) == 0) e -= 3;
    }
    *from = i;
    *to = e;
}

/* Skips a known opening tag at the body's start. */
static size_t skip_tag(const char *p, size_t n, const char *tag) {
    size_t m = strlen(tag);
    return n >= m && memcmp(p, tag, m) == 0 ? m : 0;
}

ob_status chat_body_hermes(chat_call_sink *s, bool *as_content) {
    const char *p = s->body;
    size_t n = s->body_len;
    size_t from = skip_tag(p, n, "<tool_call>"), to = n;
    strip_fence(p, &from, &to);
    if (from >= to) return chat_sink_bad(s, 0, n, "empty tool call");
    /* Qwen3-Coder and Qwen3.5 write XML inside the same tag; some Qwen2.5 fine-tunes do too. */
    if (to - from >= 10 && memcmp(p + from, "<function=", 10) == 0)
        return chat_xml_function(s, from, to);
    /* No tag: the scanner opened this body on a JSON start, which may be the answer itself. */
    if (from == chat_skip_space(p, n, 0)) return chat_body_json_guess(s, from, to, as_content);
    return chat_sink_json_run(s, from, to);
}

/* True when v looks like a call: an object (or list of objects) that names a function and
 * carries arguments, or OpenAI's {"function": ..} shape. A plain JSON answer such as
 * {"name": "Ada", "age": 36} names no arguments and stays text. */
static bool names_function(json_t *v) {
    if (json_is_array(v)) v = json_array_get(v, 0);
    if (!json_is_object(v)) return false;
    if (json_object_get(v, "function")) return true;
    json_t *name = json_object_get(v, "name");
    if (!name) name = json_object_get(v, "tool_name");
    return json_is_string(name) &&
           (json_object_get(v, "parameters") || json_object_get(v, "arguments"));
}

ob_status chat_body_json_guess(chat_call_sink *s, size_t from, size_t to, bool *as_content) {
    size_t used = 0;
    json_t *v = chat_json_prefix(s->body + from, to - from, &used);
    bool call = v && names_function(v);
    bool json = v != NULL;
    json_decref(v);
    if (json && !call) {
        *as_content = true;
        return OB_OK;
    }
    return chat_sink_json_run(s, from, to);
}

/* The decision once a call-like first key is there: parse the whole value. */
static int json_call_decision(const char *p, size_t n, bool eof) {
    json_error_t je;
    json_t *v = json_loadb(p, n, JSON_DISABLE_EOF_CHECK, &je);
    if (v) {
        bool call = names_function(v);
        json_decref(v);
        return call ? 1 : 0;
    }
    if (!eof) {
        /* The parser ran into the end of what has arrived: the value may be cut off anywhere,
         * not only where jansson says "premature end" (it calls `"\` an invalid escape and
         * `1.` or `tru` an invalid token), or mid-character (a chunk may end inside a UTF-8
         * sequence, which it reports as invalid UTF-8 before the end). Wait for more bytes, so
         * the decision does not depend on where the chunks were cut: an error found before the
         * end stays an error whatever follows. */
        if (je.position >= 0 && (size_t)je.position >= n) return -1;
        if (json_error_code(&je) == json_error_invalid_utf8 && chat_utf8_complete(p, n) < n)
            return -1;
    }
    return 1;
}

int chat_match_json_call(const char *p, size_t n, bool eof, size_t *mlen) {
    static const char *const keys[] = {"name", "function", "type", "parameters", "arguments",
                                       "tool_name", NULL};
    if (n == 0 || (p[0] != '{' && p[0] != '[')) return 0;
    size_t i = 1;
    /* Too short to tell: wait, unless this is all there will be. */
    int short_text = eof ? 0 : -1;
    if (p[0] == '[') {
        i = chat_skip_space(p, n, i);
        if (i >= n) return short_text;
        if (p[i++] != '{') return 0;
    }
    i = chat_skip_space(p, n, i);
    if (i >= n) return short_text;
    if (p[i++] != '"') return 0;
    for (const char *const *k = keys; *k; k++) {
        size_t m = strlen(*k);
        size_t have = n - i < m + 1 ? n - i : m + 1;
        /* Compare the key and its closing quote with what has arrived so far. */
        if (memcmp(p + i, *k, have < m ? have : m) != 0) continue;
        if (have < m + 1) return short_text;
        if (p[i + m] == '"') {
            int r = json_call_decision(p, n, eof);
            *mlen = 1;
            return r;
        }
    }
    return 0;
}

ob_status chat_body_llama3(chat_call_sink *s, bool *as_content) {
    const char *p = s->body;
    size_t n = s->body_len;
    size_t tag = skip_tag(p, n, "<|python_tag|>");
    size_t from = tag, to = n;
    strip_fence(p, &from, &to);
    if (from >= to) return chat_sink_bad(s, 0, n, "empty tool call");
    if (p[from] == '{' || p[from] == '[') {
        /* Without the python tag the JSON was only a guess from its first key. */
        return tag ? chat_sink_json_run(s, from, to)
                   : chat_body_json_guess(s, from, to, as_content);
    }
    if (!tag) return chat_sink_bad(s, 0, n, "tool call is not JSON");
    /* Builtin tools: brave_search.call(query="...") */
    int r = chat_python_call(s, from, to);
    if (r < 0) return OB_ERR_NOMEM;
    if (r > 0) return OB_OK;
    /* Anything else after <|python_tag|> is code for the code interpreter, which Llama's
     * template names "python" (ipython environment). */
    json_t *args = json_object();
    json_t *code = json_stringn(p + from, to - from);
    if (!args || !code || json_object_set_new(args, "code", code)) {
        json_decref(args);
        return code ? OB_ERR_NOMEM : chat_sink_bad(s, from, to - from, "code is not UTF-8");
    }
    ob_status st = chat_sink_call(s, "python", 6, NULL, args, from);
    json_decref(args);
    return st;
}

/* One `name[CALL_ID]id[ARGS]{json}` item at body[from..to) (Mistral Small 3.x, Magistral). */
static ob_status mistral_named(chat_call_sink *s, size_t from, size_t to) {
    const char *p = s->body;
    size_t args = from + chat_find(p + from, to - from, "[ARGS]");
    if (args >= to) return chat_sink_bad(s, from, to - from, "no [ARGS] after the name");
    size_t name_end = from + chat_find(p + from, args - from, "[CALL_ID]");
    char id[64];
    const char *id_text = NULL;
    if (name_end < args) {
        size_t a = name_end + 9, b = args;
        a = chat_skip_space(p, b, a);
        while (b > a && chat_is_space(p[b - 1])) b--;
        if (b - a < sizeof id && b > a) {
            memcpy(id, p + a, b - a);
            id[b - a] = 0;
            id_text = id;
        }
    }
    size_t at = args + 6, used = 0;
    size_t afrom = at, ato = to;
    strip_fence(p, &afrom, &ato);
    json_t *v = chat_json_prefix(p + afrom, ato - afrom, &used);
    if (!v) return chat_sink_bad(s, from, to - from, "arguments after [ARGS] are not JSON");
    ob_status st = chat_sink_call(s, p + from, name_end - from, id_text, v, from);
    json_decref(v);
    if (st) return st;
    size_t rest = chat_skip_space(p, ato, afrom + used);
    if (rest < ato) return chat_sink_bad(s, rest, ato - rest, "text after the arguments");
    return OB_OK;
}

ob_status chat_body_mistral(chat_call_sink *s, bool *as_content) {
    const char *p = s->body;
    size_t n = s->body_len;
    size_t i = 0;
    if (!skip_tag(p, n, "[TOOL_CALLS]")) return chat_body_json_guess(s, 0, n, as_content);
    /* The body is every [TOOL_CALLS] up to the end of the answer: split at each tag. */
    while (i < n) {
        i += skip_tag(p + i, n - i, "[TOOL_CALLS]");
        size_t next = i + chat_find(p + i, n - i, "[TOOL_CALLS]");
        size_t a = chat_skip_space(p, next, i);
        ob_status st = OB_OK;
        if (a >= next) {
            st = chat_sink_bad(s, i, next - i, "empty [TOOL_CALLS]");
        } else if (p[a] == '[' || p[a] == '{') {
            st = chat_sink_json_run(s, a, next);
        } else {
            st = mistral_named(s, a, next);
        }
        if (st) return st;
        i = next;
    }
    return OB_OK;
}

ob_status chat_body_json_after_tag(chat_call_sink *s, bool *as_content) {
    const char *p = s->body;
    size_t n = s->body_len;
    /* Granite's <|tool_call|> and Command-R7B's <|START_ACTION|> both end in "|>". */
    size_t from = chat_find(p, n, "|>");
    from = from < n ? from + 2 : 0;
    size_t to = n;
    strip_fence(p, &from, &to);
    if (from >= to) return chat_sink_bad(s, 0, n, "empty tool call");
    return chat_sink_json_run(s, from, to);
}
