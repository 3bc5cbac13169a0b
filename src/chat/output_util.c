/*
 * Helpers for chat output parsing: growable buffers, the sink that collects parsed tool calls
 * (and unreadable ones), and the JSON handling every family shares: decoding one value from a
 * prefix of the text and turning the many ways models spell a call into {name, arguments}.
 * Arguments are normalised to compact JSON text with jansson so that callers can compare them.
 */
#include "chat/output_internal.h"

#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffers and text ---- */

ob_status chat_buf_add(chat_buf *b, const char *s, size_t n) {
    size_t need;
    if (ob_add_size(b->len, n, &need) || ob_add_size(need, 1, &need)) return OB_ERR_NOMEM;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        char *p = ob_realloc(b->p, cap, 1);
        if (!p) return OB_ERR_NOMEM;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return OB_OK;
}

void chat_buf_free(chat_buf *b) {
    ob_free(b->p);
    memset(b, 0, sizeof *b);
}

size_t chat_find(const char *p, size_t n, const char *needle) {
    size_t m = strlen(needle);
    if (m == 0) return 0;
    for (size_t i = 0; i + m <= n; i++) {
        if (p[i] == needle[0] && memcmp(p + i, needle, m) == 0) return i;
    }
    return n;
}

size_t chat_skip_space(const char *p, size_t n, size_t i) {
    while (i < n && chat_is_space(p[i])) i++;
    return i;
}

bool chat_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
        if (k == 9 || (k == 1 && c < 0xc2) || i + k >= n + (k == 0)) return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80) return false;
        }
        unsigned d = k ? p[i + 1] : 0;
        /* Overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
        if ((c == 0xe0 && d < 0xa0) || (c == 0xed && d >= 0xa0) || (c == 0xf0 && d < 0x90) ||
            (c == 0xf4 && d >= 0x90) || c > 0xf4)
            return false;
        i += k + 1;
    }
    return true;
}

size_t chat_utf8_complete(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    /* Walk back over at most 3 continuation bytes to the lead byte of the last sequence. */
    size_t i = n, back = 0;
    while (i > 0 && back < 3 && (p[i - 1] & 0xc0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0) return n;
    unsigned c = p[i - 1];
    size_t want = (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 0;
    return want > back ? i - 1 : n;
}

/* ---- JSON ---- */

json_t *chat_json_prefix(const char *p, size_t n, size_t *used) {
    size_t i = chat_skip_space(p, n, 0);
    if (i >= n) return NULL;
    json_error_t je;
    /* DISABLE_EOF_CHECK: stop after one value and report how far it read (je.position). */
    json_t *v = json_loadb(p + i, n - i, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &je);
    if (!v) return NULL;
    size_t pos = (size_t)je.position;
    if (pos > n - i) pos = n - i;
    /* A bare number or literal may have been read up to the end of the buffer only: the caller
     * sees that as fully used, which is what a trailing value means here. */
    *used = i + pos;
    return v;
}

json_t *chat_tool_properties(json_t *tools, const char *name, size_t name_len) {
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        json_t *fn = json_object_get(t, "function");
        if (!json_is_object(fn)) fn = t; /* {"name", "parameters"} without the wrapper */
        json_t *n = json_object_get(fn, "name");
        if (json_is_string(n) && json_string_length(n) == name_len &&
            memcmp(json_string_value(n), name, name_len) == 0) {
            json_t *props = json_object_get(json_object_get(fn, "parameters"), "properties");
            return json_is_object(props) ? props : NULL;
        }
    }
    return NULL;
}

/* Copies a string with its length (NUL-terminated). */
static char *dup_n(const char *s, size_t n) {
    return ob_strndup(s, n);
}

static ob_status grow(void **arr, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return OB_OK;
    size_t c = *cap ? *cap * 2 : 4;
    void *p = ob_realloc(*arr, c, elem);
    if (!p) return OB_ERR_NOMEM;
    *arr = p;
    *cap = c;
    return OB_OK;
}

ob_status chat_sink_bad(chat_call_sink *s, size_t rel_off, size_t len, const char *why) {
    if (grow((void **)&s->bad, &s->cap_bad, s->n_bad, sizeof *s->bad)) return OB_ERR_NOMEM;
    if (rel_off > s->body_len) rel_off = s->body_len;
    if (len > s->body_len - rel_off) len = s->body_len - rel_off;
    chat_output_invalid *b = &s->bad[s->n_bad];
    b->offset = s->base + rel_off;
    b->text = dup_n(s->body ? s->body + rel_off : "", s->body ? len : 0);
    b->reason = dup_n(why, strlen(why));
    if (!b->text || !b->reason) {
        ob_free(b->text);
        ob_free(b->reason);
        return OB_ERR_NOMEM;
    }
    s->n_bad++;
    return OB_OK;
}

/* Compact JSON text of an arguments value: an object, or a string that holds one. NULL with
 * *why set when it is neither; NULL with *why NULL when out of memory. */
static char *args_text(json_t *args, const char **why) {
    *why = NULL;
    json_t *owned = NULL;
    if (!args) return dup_n("{}", 2);
    if (json_is_string(args)) {
        const char *t = json_string_value(args);
        size_t n = json_string_length(args);
        size_t i = chat_skip_space(t, n, 0);
        if (i == n) return dup_n("{}", 2);
        json_error_t je;
        owned = json_loadb(t, n, 0, &je);
        if (!owned || !json_is_object(owned)) {
            json_decref(owned);
            *why = "arguments are a string that is not a JSON object";
            return NULL;
        }
        args = owned;
    }
    if (!json_is_object(args)) {
        *why = "arguments are not a JSON object";
        return NULL;
    }
    char *txt = json_dumps(args, JSON_COMPACT);
    json_decref(owned);
    if (!txt) return NULL;
    char *out = dup_n(txt, strlen(txt));
    free(txt); /* json_dumps allocates with jansson's allocator (malloc) */
    return out;
}

ob_status chat_sink_call(chat_call_sink *s, const char *name, size_t name_len, const char *id,
                         json_t *args, size_t rel_off) {
    size_t i = chat_skip_space(name, name_len, 0);
    while (name_len > i && chat_is_space(name[name_len - 1])) name_len--;
    name += i;
    name_len -= i;
    if (name_len == 0) return chat_sink_bad(s, rel_off, s->body_len - rel_off, "empty name");
    if (memchr(name, 0, name_len) || !chat_utf8_valid(name, name_len))
        return chat_sink_bad(s, rel_off, name_len, "name is not UTF-8 text");
    const char *why = NULL;
    char *a = args_text(args, &why);
    if (!a) return why ? chat_sink_bad(s, rel_off, s->body_len - rel_off, why) : OB_ERR_NOMEM;
    if (grow((void **)&s->calls, &s->cap_calls, s->n_calls, sizeof *s->calls)) {
        ob_free(a);
        return OB_ERR_NOMEM;
    }
    chat_tool_call *c = &s->calls[s->n_calls];
    c->arguments = a;
    c->name = dup_n(name, name_len);
    c->id = id ? dup_n(id, strlen(id)) : NULL;
    if (!c->name || (id && !c->id)) {
        ob_free(c->name);
        ob_free(c->id);
        ob_free(a);
        return OB_ERR_NOMEM;
    }
    s->n_calls++;
    return OB_OK;
}

/* First of the keys present in obj, or NULL. */
static json_t *get_any(json_t *obj, const char *const *keys) {
    for (; *keys; keys++) {
        json_t *v = json_object_get(obj, *keys);
        if (v) return v;
    }
    return NULL;
}

static ob_status sink_object(chat_call_sink *s, json_t *o, size_t rel_off, size_t len) {
    static const char *const name_keys[] = {"name", "tool_name", "function_name", NULL};
    static const char *const arg_keys[] = {"arguments", "parameters", "args", "input", NULL};
    static const char *const id_keys[] = {"id", "tool_call_id", "call_id", NULL};
    json_t *fn = json_object_get(o, "function");
    json_t *name = get_any(o, name_keys);
    json_t *args = get_any(o, arg_keys);
    /* OpenAI's own shape: {"type":"function","function":{"name":..,"arguments":..}}. */
    if (json_is_object(fn)) {
        name = name ? name : get_any(fn, name_keys);
        args = args ? args : get_any(fn, arg_keys);
    } else if (!name && json_is_string(fn)) {
        name = fn;
    }
    if (!json_is_string(name)) return chat_sink_bad(s, rel_off, len, "no function name");
    json_t *id = get_any(o, id_keys);
    char idbuf[32];
    const char *id_text = NULL;
    if (json_is_string(id)) {
        id_text = json_string_value(id);
    } else if (json_is_integer(id)) {
        snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(id));
        id_text = idbuf;
    }
    return chat_sink_call(s, json_string_value(name), json_string_length(name), id_text, args,
                          rel_off);
}

ob_status chat_sink_json(chat_call_sink *s, json_t *v, size_t rel_off, size_t len) {
    if (json_is_object(v)) return sink_object(s, v, rel_off, len);
    if (json_is_array(v)) {
        if (json_array_size(v) == 0) return OB_OK;
        size_t idx;
        json_t *item;
        json_array_foreach(v, idx, item) {
            ob_status st = json_is_object(item) ? sink_object(s, item, rel_off, len)
                                                : chat_sink_bad(s, rel_off, len,
                                                                "array item is not an object");
            if (st) return st;
        }
        return OB_OK;
    }
    return chat_sink_bad(s, rel_off, len, "tool call is not a JSON object");
}

ob_status chat_sink_json_run(chat_call_sink *s, size_t from, size_t to) {
    const char *p = s->body;
    size_t i = from;
    for (;;) {
        while (i < to && (chat_is_space(p[i]) || p[i] == ';' || p[i] == ',')) i++;
        if (i >= to) return OB_OK;
        size_t used = 0;
        json_t *v = chat_json_prefix(p + i, to - i, &used);
        if (!v) return chat_sink_bad(s, i, to - i, "invalid JSON");
        ob_status st = chat_sink_json(s, v, i, used);
        json_decref(v);
        if (st) return st;
        i += used;
    }
}

void chat_sink_free(chat_call_sink *s) {
    for (size_t i = 0; i < s->n_calls; i++) {
        ob_free(s->calls[i].id);
        ob_free(s->calls[i].name);
        ob_free(s->calls[i].arguments);
    }
    for (size_t i = 0; i < s->n_bad; i++) {
        ob_free(s->bad[i].text);
        ob_free(s->bad[i].reason);
    }
    ob_free(s->calls);
    ob_free(s->bad);
    memset(s, 0, sizeof *s);
}
