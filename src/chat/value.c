/*
 * Template values: the arena, constructors, lists and dicts, and Python's truthiness, equality,
 * ordering, str() and repr(). JSON in and out lives in value_json.c.
 */
#include "chat/value.h"

#include "core/alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ----------------------------------------------------------------------------- */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t size, used;
    /* followed by `size` bytes of storage */
} arena_chunk;

struct chat_arena {
    arena_chunk *head;
    size_t total, cap;
    bool over_cap;
};

#define ARENA_CHUNK 65536
#define ARENA_ALIGN 16

chat_arena *chat_arena_new(size_t cap) {
    chat_arena *a = ob_calloc(1, sizeof *a);
    if (a) a->cap = cap;
    return a;
}

void chat_arena_free(chat_arena *a) {
    if (!a) return;
    for (arena_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        ob_free(c);
    }
    ob_free(a);
}

bool chat_arena_over_cap(const chat_arena *a) {
    return a->over_cap;
}

void *chat_arena_alloc(chat_arena *a, size_t size) {
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (size == 0) size = ARENA_ALIGN;
    arena_chunk *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t want = size > ARENA_CHUNK / 4 ? size : ARENA_CHUNK;
        if (want > a->cap || a->total > a->cap - want) {
            a->over_cap = true;
            return NULL;
        }
        /* The header is padded to ARENA_ALIGN so the storage after it stays aligned. */
        size_t hdr = (sizeof(arena_chunk) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
        c = ob_alloc(1, hdr + want);
        if (!c) return NULL;
        c->size = want;
        c->used = 0;
        a->total += want;
        if (size > ARENA_CHUNK / 4 && a->head) {
            /* A big block gets its own chunk behind the current one, which stays in use. */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
        c->used = size;
        return (char *)c + hdr;
    }
    size_t hdr = (sizeof(arena_chunk) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    void *p = (char *)c + hdr + c->used;
    c->used += size;
    return p;
}

/* ---- constructors ---------------------------------------------------------------------- */

chat_val chat_val_undef(const char *hint) {
    chat_val v = {.type = CHAT_UNDEF};
    v.u.hint = hint ? hint : "";
    return v;
}

chat_val chat_val_none(void) {
    return (chat_val){.type = CHAT_NONE};
}

chat_val chat_val_bool(bool b) {
    chat_val v = {.type = CHAT_BOOL};
    v.u.b = b;
    return v;
}

chat_val chat_val_int(int64_t i) {
    chat_val v = {.type = CHAT_INT};
    v.u.i = i;
    return v;
}

chat_val chat_val_float(double f) {
    chat_val v = {.type = CHAT_FLOAT};
    v.u.f = f;
    return v;
}

/* The failure marker: an undefined value with a NULL hint (never made otherwise). */
static chat_val failed_val(void) {
    return (chat_val){.type = CHAT_UNDEF};
}

chat_val chat_val_fail(void) {
    return failed_val();
}

bool chat_val_failed(chat_val v) {
    return v.type == CHAT_UNDEF && v.u.hint == NULL;
}

chat_val chat_val_str_view(const char *p, size_t n) {
    chat_val v = {.type = CHAT_STR};
    v.u.s.p = n ? p : "";
    v.u.s.n = n;
    return v;
}

chat_val chat_val_str(chat_arena *a, const char *p, size_t n) {
    if (n == 0) return chat_val_str_view("", 0);
    char *q = chat_arena_alloc(a, n);
    if (!q) return failed_val();
    memcpy(q, p, n);
    return chat_val_str_view(q, n);
}

chat_val chat_val_cstr(chat_arena *a, const char *s) {
    return chat_val_str(a, s, strlen(s));
}

chat_val chat_val_list(chat_arena *a, size_t cap) {
    chat_list *l = chat_arena_alloc(a, sizeof *l);
    if (!l) return failed_val();
    l->n = 0;
    l->cap = cap ? cap : 4;
    l->items = chat_arena_alloc(a, l->cap * sizeof(chat_val));
    if (!l->items || l->cap > SIZE_MAX / sizeof(chat_val)) return failed_val();
    chat_val v = {.type = CHAT_LIST};
    v.u.l = l;
    return v;
}

chat_val chat_val_dict(chat_arena *a, size_t cap) {
    chat_dict *d = chat_arena_alloc(a, sizeof *d);
    if (!d) return failed_val();
    d->n = 0;
    d->cap = cap ? cap : 4;
    if (d->cap > SIZE_MAX / sizeof(chat_val)) return failed_val();
    d->keys = chat_arena_alloc(a, d->cap * sizeof(chat_val));
    d->vals = chat_arena_alloc(a, d->cap * sizeof(chat_val));
    if (!d->keys || !d->vals) return failed_val();
    chat_val v = {.type = CHAT_DICT};
    v.u.d = d;
    return v;
}

/* Grows an arena array of chat_val from *cap to twice that, copying n entries. */
static chat_val *grow(chat_arena *a, chat_val *old, size_t n, size_t *cap) {
    size_t ncap = *cap * 2 + 4;
    if (ncap > SIZE_MAX / sizeof(chat_val)) return NULL;
    chat_val *p = chat_arena_alloc(a, ncap * sizeof(chat_val));
    if (!p) return NULL;
    if (n) memcpy(p, old, n * sizeof(chat_val));
    *cap = ncap;
    return p;
}

int chat_list_push(chat_arena *a, chat_list *l, chat_val v) {
    if (l->n == l->cap) {
        chat_val *p = grow(a, l->items, l->n, &l->cap);
        if (!p) return -1;
        l->items = p;
    }
    l->items[l->n++] = v;
    return 0;
}

/* Dict keys hash the Python way for equal numbers (1 == 1.0 == True), so lookups use
 * chat_val_equal; dicts in templates are small, so a linear scan is fine. */
chat_val *chat_dict_find(const chat_dict *d, chat_val key) {
    for (size_t i = 0; i < d->n; i++)
        if (chat_val_equal(d->keys[i], key)) return &d->vals[i];
    return NULL;
}

chat_val *chat_dict_find_cstr(const chat_dict *d, const char *key) {
    size_t n = strlen(key);
    for (size_t i = 0; i < d->n; i++) {
        const chat_val *k = &d->keys[i];
        if (k->type == CHAT_STR && k->u.s.n == n && memcmp(k->u.s.p, key, n) == 0)
            return &d->vals[i];
    }
    return NULL;
}

int chat_dict_set(chat_arena *a, chat_dict *d, chat_val key, chat_val v) {
    chat_val *slot = chat_dict_find(d, key);
    if (slot) {
        *slot = v;
        return 0;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap;
        chat_val *k = grow(a, d->keys, d->n, &cap);
        size_t cap2 = d->cap;
        chat_val *vv = grow(a, d->vals, d->n, &cap2);
        if (!k || !vv) return -1;
        d->keys = k;
        d->vals = vv;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = v;
    d->n++;
    return 0;
}

int chat_dict_set_cstr(chat_arena *a, chat_dict *d, const char *key, chat_val v) {
    chat_val k = chat_val_cstr(a, key);
    if (chat_val_failed(k)) return -1;
    return chat_dict_set(a, d, k, v);
}

int chat_dict_del(chat_dict *d, chat_val key) {
    for (size_t i = 0; i < d->n; i++) {
        if (!chat_val_equal(d->keys[i], key)) continue;
        memmove(&d->keys[i], &d->keys[i + 1], (d->n - i - 1) * sizeof(chat_val));
        memmove(&d->vals[i], &d->vals[i + 1], (d->n - i - 1) * sizeof(chat_val));
        d->n--;
        return 1;
    }
    return 0;
}

/* ---- Python semantics ------------------------------------------------------------------ */

bool chat_val_truthy(chat_val v) {
    switch ((chat_vtype)v.type) {
    case CHAT_UNDEF:
    case CHAT_NONE: return false;
    case CHAT_BOOL: return v.u.b;
    case CHAT_INT: return v.u.i != 0;
    case CHAT_FLOAT: return v.u.f != 0.0;
    case CHAT_STR: return v.u.s.n != 0;
    case CHAT_LIST: return v.u.l->n != 0;
    case CHAT_DICT: return (v.flags & CHAT_F_NS) || v.u.d->n != 0;
    case CHAT_FUNC:
    case CHAT_LOOP: return true;
    }
    return false;
}

static bool is_num(chat_val v) {
    return v.type == CHAT_INT || v.type == CHAT_FLOAT || v.type == CHAT_BOOL;
}

static double num_f(chat_val v) {
    return v.type == CHAT_FLOAT ? v.u.f : v.type == CHAT_INT ? (double)v.u.i : (double)v.u.b;
}

static int64_t num_i(chat_val v) {
    return v.type == CHAT_INT ? v.u.i : (int64_t)v.u.b;
}

bool chat_val_equal(chat_val a, chat_val b) {
    if (is_num(a) && is_num(b)) {
        if (a.type == CHAT_FLOAT || b.type == CHAT_FLOAT) return num_f(a) == num_f(b);
        return num_i(a) == num_i(b);
    }
    if (a.type != b.type) return false;
    switch ((chat_vtype)a.type) {
    case CHAT_UNDEF:
    case CHAT_NONE: return true;
    case CHAT_STR: return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    case CHAT_LIST:
        if ((a.flags & CHAT_F_TUPLE) != (b.flags & CHAT_F_TUPLE)) return false;
        if (a.u.l->n != b.u.l->n) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!chat_val_equal(a.u.l->items[i], b.u.l->items[i])) return false;
        return true;
    case CHAT_DICT:
        if (a.u.d == b.u.d) return true;
        if ((a.flags | b.flags) & CHAT_F_NS) return false;
        if (a.u.d->n != b.u.d->n) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            chat_val *o = chat_dict_find(b.u.d, a.u.d->keys[i]);
            if (!o || !chat_val_equal(a.u.d->vals[i], *o)) return false;
        }
        return true;
    case CHAT_FUNC: return a.u.fn == b.u.fn;
    case CHAT_LOOP: return a.u.loop == b.u.loop;
    default: return false;
    }
}

int chat_val_compare(chat_val a, chat_val b, int *cmp) {
    if (is_num(a) && is_num(b)) {
        if (a.type == CHAT_FLOAT || b.type == CHAT_FLOAT) {
            double x = num_f(a), y = num_f(b);
            *cmp = x < y ? -1 : x > y ? 1 : 0;
        } else {
            int64_t x = num_i(a), y = num_i(b);
            *cmp = x < y ? -1 : x > y ? 1 : 0;
        }
        return 0;
    }
    if (a.type == CHAT_STR && b.type == CHAT_STR) {
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int c = n ? memcmp(a.u.s.p, b.u.s.p, n) : 0;
        if (c == 0) c = a.u.s.n < b.u.s.n ? -1 : a.u.s.n > b.u.s.n ? 1 : 0;
        *cmp = c < 0 ? -1 : c > 0 ? 1 : 0;
        return 0;
    }
    if (a.type == CHAT_LIST && b.type == CHAT_LIST &&
        (a.flags & CHAT_F_TUPLE) == (b.flags & CHAT_F_TUPLE)) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (chat_val_equal(a.u.l->items[i], b.u.l->items[i])) continue;
            return chat_val_compare(a.u.l->items[i], b.u.l->items[i], cmp);
        }
        *cmp = a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n ? 1 : 0;
        return 0;
    }
    return -1;
}

const char *chat_val_type_name(chat_val v) {
    switch ((chat_vtype)v.type) {
    case CHAT_UNDEF: return "Undefined";
    case CHAT_NONE: return "NoneType";
    case CHAT_BOOL: return "bool";
    case CHAT_INT: return "int";
    case CHAT_FLOAT: return "float";
    case CHAT_STR: return "str";
    case CHAT_LIST: return v.flags & CHAT_F_TUPLE ? "tuple" : "list";
    case CHAT_DICT: return v.flags & CHAT_F_NS ? "Namespace" : "dict";
    case CHAT_FUNC: return "function";
    case CHAT_LOOP: return "LoopContext";
    }
    return "object";
}

/* ---- text ------------------------------------------------------------------------------ */

void chat_text_init(chat_text *b, chat_arena *a) {
    memset(b, 0, sizeof *b);
    b->a = a;
}

void chat_text_add(chat_text *b, const char *p, size_t n) {
    if (b->failed || n == 0) return;
    if (b->cap - b->n < n) {
        size_t need;
        if (ob_add_size(b->n, n, &need)) {
            b->failed = true;
            return;
        }
        size_t ncap = b->cap * 2 > need ? b->cap * 2 : need + 64;
        char *q = chat_arena_alloc(b->a, ncap);
        if (!q) {
            b->failed = true;
            return;
        }
        if (b->n) memcpy(q, b->p, b->n);
        b->p = q;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void chat_text_adds(chat_text *b, const char *s) {
    chat_text_add(b, s, strlen(s));
}

chat_val chat_text_val(const chat_text *b) {
    return chat_val_str_view(b->p, b->n);
}

/* Python's repr of a str: single quotes unless the text has ' and no ", escapes for the quote,
 * backslash and control characters; other characters as they are. */
static void write_str_repr(chat_text *b, const char *p, size_t n) {
    bool has_sq = memchr(p, '\'', n) != NULL, has_dq = memchr(p, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    chat_text_add(b, &q, 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        const char *esc = NULL;
        char tmp[8];
        if (c == (unsigned char)q)
            esc = q == '\'' ? "\\'" : "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof tmp, "\\x%02x", c);
            esc = tmp;
        }
        if (!esc) continue;
        chat_text_add(b, p + start, i - start);
        chat_text_adds(b, esc);
        start = i + 1;
    }
    chat_text_add(b, p + start, n - start);
    chat_text_add(b, &q, 1);
}

static void write_any(chat_text *b, chat_val v, bool repr) {
    char tmp[40];
    switch ((chat_vtype)v.type) {
    case CHAT_UNDEF: chat_text_adds(b, repr ? "Undefined" : ""); return;
    case CHAT_NONE: chat_text_adds(b, "None"); return;
    case CHAT_BOOL: chat_text_adds(b, v.u.b ? "True" : "False"); return;
    case CHAT_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i);
        chat_text_adds(b, tmp);
        return;
    case CHAT_FLOAT:
        chat_float_repr(v.u.f, tmp);
        chat_text_adds(b, tmp);
        return;
    case CHAT_STR:
        if (repr)
            write_str_repr(b, v.u.s.p, v.u.s.n);
        else
            chat_text_add(b, v.u.s.p, v.u.s.n);
        return;
    case CHAT_LIST: {
        bool tup = v.flags & CHAT_F_TUPLE;
        chat_text_adds(b, tup ? "(" : "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) chat_text_adds(b, ", ");
            write_any(b, v.u.l->items[i], true);
        }
        if (tup && v.u.l->n == 1) chat_text_adds(b, ",");
        chat_text_adds(b, tup ? ")" : "]");
        return;
    }
    case CHAT_DICT:
        chat_text_adds(b, v.flags & CHAT_F_NS ? "<Namespace {" : "{");
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) chat_text_adds(b, ", ");
            write_any(b, v.u.d->keys[i], true);
            chat_text_adds(b, ": ");
            write_any(b, v.u.d->vals[i], true);
        }
        chat_text_adds(b, v.flags & CHAT_F_NS ? "}>" : "}");
        return;
    case CHAT_FUNC: chat_text_adds(b, "<function>"); return;
    case CHAT_LOOP: chat_text_adds(b, "<LoopContext>"); return;
    }
}

void chat_val_write_str(chat_text *b, chat_val v) {
    write_any(b, v, false);
}
void chat_val_write_repr(chat_text *b, chat_val v) {
    write_any(b, v, true);
}

/* Python's float repr: the shortest %.{p}e that strtod reads back exactly, then laid out as
 * fixed notation when the decimal exponent is in [-4, 16), else as d.ddde+XX. */
void chat_float_repr(double f, char out[32]) {
    if (isnan(f)) {
        strcpy(out, "nan");
        return;
    }
    if (isinf(f)) {
        strcpy(out, f < 0 ? "-inf" : "inf");
        return;
    }
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    /* e is "[-]d.ddde[+-]XX": collect the digits and the exponent. */
    const char *s = e;
    bool neg = *s == '-';
    if (neg) s++;
    char digits[24];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') digits[nd++] = *s;
    int exp10 = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    int decpt = exp10 + 1; /* the value is 0.DIGITS * 10^decpt */
    char *o = out;
    if (neg) *o++ = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -decpt; i++)
                *o++ = '0';
            memcpy(o, digits, (size_t)nd);
            o += nd;
        } else {
            for (int i = 0; i < decpt; i++)
                *o++ = i < nd ? digits[i] : '0';
            *o++ = '.';
            if (nd > decpt) {
                memcpy(o, digits + decpt, (size_t)(nd - decpt));
                o += nd - decpt;
            } else {
                *o++ = '0';
            }
        }
        *o = 0;
        return;
    }
    *o++ = digits[0];
    if (nd > 1) {
        *o++ = '.';
        memcpy(o, digits + 1, (size_t)(nd - 1));
        o += nd - 1;
    }
    snprintf(o, 8, "e%c%02d", exp10 < 0 ? '-' : '+', (exp10 < 0 ? -exp10 : exp10) % 1000);
}
