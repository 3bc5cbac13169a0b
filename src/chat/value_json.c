/*
 * JSON for template values: reading jansson trees into chat_val (objects keep their key order,
 * as Python's json.loads does) and writing chat_val as Python's json.dumps writes it, which is
 * what the transformers `tojson` filter calls (ensure_ascii=False by default, so non-ASCII text
 * stays as it is).
 */
#include "chat/value.h"

#include "core/alloc.h"
#include "core/err.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing --------------------------------------------------------------------------- */

/* Decodes one UTF-8 sequence at p[0..n); returns its length (1 for a stray byte, taken as
 * U+FFFD, which is what Python would have refused earlier anyway). */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp) {
    unsigned char c = p[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || len > n) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (p[i] & 0x3f);
    }
    *cp = v;
    return len;
}

static void json_write_string(chat_text *b, const char *s, size_t n, bool ensure_ascii) {
    const unsigned char *p = (const unsigned char *)s;
    char tmp[16];
    chat_text_add(b, "\"", 1);
    size_t start = 0, i = 0;
    while (i < n) {
        unsigned char c = p[i];
        const char *esc = NULL;
        size_t adv = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c == '\b')
            esc = "\\b";
        else if (c == '\f')
            esc = "\\f";
        else if (c < 0x20 || (ensure_ascii && c == 0x7f)) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            esc = tmp;
        } else if (ensure_ascii && c >= 0x80) {
            uint32_t cp;
            adv = utf8_decode(p + i, n - i, &cp);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", 0xd800 + (cp >> 10),
                         0xdc00 + (cp & 0x3ff));
            } else {
                snprintf(tmp, sizeof tmp, "\\u%04x", cp);
            }
            esc = tmp;
        }
        if (esc) {
            chat_text_add(b, s + start, i - start);
            chat_text_adds(b, esc);
            start = i + adv;
        }
        i += adv;
    }
    chat_text_add(b, s + start, n - start);
    chat_text_add(b, "\"", 1);
}

typedef struct json_opts {
    bool ensure_ascii, sort_keys;
    int indent;
    const char *item_sep, *key_sep;
    char *why;
    const void **path; /* (CHAT_VAL_MAX_DEPTH) the lists and dicts being written, outermost
                        * first: one met again contains itself */
} json_opts;

static void json_newline(chat_text *b, const json_opts *o, int level) {
    if (o->indent < 0) return;
    chat_text_add(b, "\n", 1);
    for (int i = 0; i < level * o->indent; i++)
        chat_text_add(b, " ", 1);
}

static int json_write(chat_text *b, chat_val v, const json_opts *o, int level);

/* A dict key as json.dumps converts it: strings as they are, numbers, bools and None as their
 * JSON text. */
static int json_key(chat_text *b, chat_val k, const json_opts *o) {
    char tmp[40];
    switch (k.type) {
    case CHAT_STR: json_write_string(b, k.u.s.p, k.u.s.n, o->ensure_ascii); return 0;
    case CHAT_INT: snprintf(tmp, sizeof tmp, "\"%lld\"", (long long)k.u.i); break;
    case CHAT_BOOL: snprintf(tmp, sizeof tmp, "\"%s\"", k.u.b ? "true" : "false"); break;
    case CHAT_NONE: snprintf(tmp, sizeof tmp, "\"null\""); break;
    case CHAT_FLOAT: {
        char f[32];
        chat_float_repr(k.u.f, f);
        snprintf(tmp, sizeof tmp, "\"%s\"", f);
        break;
    }
    default:
        snprintf(o->why, 64, "keys must be str, int, float, bool or None, not %s",
                 chat_val_type_name(k));
        return -1;
    }
    chat_text_adds(b, tmp);
    return 0;
}

static int json_write_dict(chat_text *b, chat_dict *d, const json_opts *o, int level) {
    if (d->n == 0) {
        chat_text_adds(b, "{}");
        return 0;
    }
    /* (n) visiting order: insertion order, or sorted by key for sort_keys (then with n more
     * entries of scratch for the sort). */
    size_t *order = NULL;
    if (o->sort_keys) {
        order = ob_alloc(d->n, 2 * sizeof *order);
        if (!order) {
            b->failed = true; /* the caller reports it as out of memory */
            return 0;
        }
        for (size_t i = 0; i < d->n; i++)
            order[i] = i;
        size_t bad[2];
        int r = chat_val_sort_index(d->keys, order, order + d->n, d->n, false, bad);
        if (r) {
            if (r == CHAT_VAL_TOO_DEEP)
                snprintf(o->why, 64, "keys nested deeper than %d", CHAT_VAL_MAX_DEPTH);
            else
                snprintf(o->why, 64, "'<' not supported between instances of '%s' and '%s'",
                         chat_val_type_name(d->keys[bad[1]]), chat_val_type_name(d->keys[bad[0]]));
            ob_free(order);
            return r == CHAT_VAL_TOO_DEEP ? r : -1;
        }
    }
    int st = 0;
    chat_text_adds(b, "{");
    for (size_t i = 0; i < d->n && !st; i++) {
        size_t k = order ? order[i] : i;
        if (i) chat_text_adds(b, o->item_sep);
        json_newline(b, o, level + 1);
        st = json_key(b, d->keys[k], o);
        chat_text_adds(b, o->key_sep);
        if (!st) st = json_write(b, d->vals[k], o, level + 1);
    }
    ob_free(order);
    if (st) return st;
    json_newline(b, o, level);
    chat_text_adds(b, "}");
    return 0;
}

/* Enters a list or dict at `level`: -1 with the reason when it contains itself, CHAT_VAL_TOO_DEEP
 * when it is too deep. */
static int json_enter(const json_opts *o, const void *self, int level) {
    for (int i = 0; i < level; i++)
        if (o->path[i] == self) return snprintf(o->why, 64, "Circular reference detected"), -1;
    if (level >= CHAT_VAL_MAX_DEPTH)
        return snprintf(o->why, 64, "nesting deeper than %d", CHAT_VAL_MAX_DEPTH),
               CHAT_VAL_TOO_DEEP;
    o->path[level] = self;
    return 0;
}

static int json_write(chat_text *b, chat_val v, const json_opts *o, int level) {
    char tmp[40];
    int st;
    if ((v.type == CHAT_LIST || (v.type == CHAT_DICT && !(v.flags & CHAT_F_NS))) &&
        (st =
             json_enter(o, v.type == CHAT_LIST ? (const void *)v.u.l : (const void *)v.u.d, level)))
        return st;
    switch ((chat_vtype)v.type) {
    case CHAT_NONE: chat_text_adds(b, "null"); return 0;
    case CHAT_BOOL: chat_text_adds(b, v.u.b ? "true" : "false"); return 0;
    case CHAT_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i);
        chat_text_adds(b, tmp);
        return 0;
    case CHAT_FLOAT:
        if (isnan(v.u.f))
            chat_text_adds(b, "NaN");
        else if (isinf(v.u.f))
            chat_text_adds(b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else {
            chat_float_repr(v.u.f, tmp);
            chat_text_adds(b, tmp);
        }
        return 0;
    case CHAT_STR: json_write_string(b, v.u.s.p, v.u.s.n, o->ensure_ascii); return 0;
    case CHAT_LIST:
        if (v.u.l->n == 0) {
            chat_text_adds(b, "[]");
            return 0;
        }
        chat_text_adds(b, "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) chat_text_adds(b, o->item_sep);
            json_newline(b, o, level + 1);
            if ((st = json_write(b, v.u.l->items[i], o, level + 1))) return st;
        }
        json_newline(b, o, level);
        chat_text_adds(b, "]");
        return 0;
    case CHAT_DICT:
        if (!(v.flags & CHAT_F_NS)) return json_write_dict(b, v.u.d, o, level);
        break; /* a namespace is not JSON */
    default: break;
    }
    snprintf(o->why, 64, "Object of type %s is not JSON serializable", chat_val_type_name(v));
    return -1;
}

int chat_val_to_json(chat_text *b, chat_val v, bool ensure_ascii, int indent, const char *item_sep,
                     const char *key_sep, bool sort_keys, char *why) {
    json_opts o = {ensure_ascii, sort_keys, indent, item_sep, key_sep, why, NULL};
    if (!o.item_sep) o.item_sep = indent >= 0 ? "," : ", ";
    if (!o.key_sep) o.key_sep = ": ";
    if (v.type != CHAT_LIST && v.type != CHAT_DICT) return json_write(b, v, &o, 0);
    o.path = ob_alloc(CHAT_VAL_MAX_DEPTH, sizeof *o.path);
    if (!o.path) {
        b->failed = true; /* reported as out of memory by the caller's check of b */
        return 0;
    }
    int r = json_write(b, v, &o, 0);
    ob_free(o.path);
    return r;
}

/* ---- reading --------------------------------------------------------------------------- */

static ob_status from_json(chat_arena *a, const json_t *j, chat_val *out, int depth, ob_err *err) {
    if (depth > 1000) return ob_fail(err, OB_ERR_LIMIT, "JSON nested deeper than 1000 levels");
    switch (json_typeof(j)) {
    case JSON_NULL: *out = chat_val_none(); return OB_OK;
    case JSON_TRUE: *out = chat_val_bool(true); return OB_OK;
    case JSON_FALSE: *out = chat_val_bool(false); return OB_OK;
    case JSON_INTEGER: *out = chat_val_int((int64_t)json_integer_value(j)); return OB_OK;
    case JSON_REAL: *out = chat_val_float(json_real_value(j)); return OB_OK;
    case JSON_STRING: *out = chat_val_str(a, json_string_value(j), json_string_length(j)); break;
    case JSON_ARRAY: {
        *out = chat_val_list(a, json_array_size(j));
        if (chat_val_failed(*out)) break;
        for (size_t i = 0; i < json_array_size(j); i++) {
            chat_val item;
            ob_status st = from_json(a, json_array_get(j, i), &item, depth + 1, err);
            if (st) return st;
            if (chat_list_push(a, out->u.l, item))
                return ob_fail(err, OB_ERR_NOMEM, "JSON: out of memory");
        }
        return OB_OK;
    }
    case JSON_OBJECT: {
        *out = chat_val_dict(a, json_object_size(j));
        if (chat_val_failed(*out)) break;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)j, key, val) {
            chat_val item;
            ob_status st = from_json(a, val, &item, depth + 1, err);
            if (st) return st;
            chat_val k = chat_val_cstr(a, key);
            if (chat_val_failed(k) || chat_dict_set(a, out->u.d, k, item))
                return ob_fail(err, OB_ERR_NOMEM, "JSON: out of memory");
        }
        return OB_OK;
    }
    }
    if (chat_val_failed(*out)) return ob_fail(err, OB_ERR_NOMEM, "JSON: out of memory");
    return OB_OK;
}

ob_status chat_val_from_json(chat_arena *a, const void *json, chat_val *out, ob_err *err) {
    return from_json(a, (const json_t *)json, out, 0, err);
}
