/*
 * Template values: the arena, constructors, lists, and Python's truthiness, equality, ordering,
 * str() and repr(). Dicts live in value_dict.c, JSON in and out in value_json.c.
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
    bool too_deep; /* a value printed into this arena passed CHAT_VAL_MAX_DEPTH */
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

void chat_arena_set_too_deep(chat_arena *a) {
    a->too_deep = true;
}

bool chat_arena_take_too_deep(chat_arena *a) {
    bool r = a->too_deep;
    a->too_deep = false;
    return r;
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
    d->index = NULL;
    d->index_cap = 0;
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

/* Equality `depth` levels down: the walk stops at CHAT_VAL_MAX_DEPTH. The same list or dict
 * on both sides is equal without looking inside, as Python's identity shortcut makes it, so
 * `x == x` holds even for a list that contains itself. */
static int eq_at(chat_val a, chat_val b, int depth) {
    if (is_num(a) && is_num(b)) {
        if (a.type == CHAT_FLOAT || b.type == CHAT_FLOAT) return num_f(a) == num_f(b);
        return num_i(a) == num_i(b);
    }
    if (a.type != b.type) return 0;
    switch ((chat_vtype)a.type) {
    case CHAT_UNDEF:
    case CHAT_NONE: return 1;
    case CHAT_STR: return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    case CHAT_LIST:
        if ((a.flags & CHAT_F_TUPLE) != (b.flags & CHAT_F_TUPLE)) return 0;
        if (a.u.l == b.u.l) return 1;
        if (a.u.l->n != b.u.l->n) return 0;
        if (depth >= CHAT_VAL_MAX_DEPTH) return CHAT_VAL_TOO_DEEP;
        for (size_t i = 0; i < a.u.l->n; i++) {
            int r = eq_at(a.u.l->items[i], b.u.l->items[i], depth + 1);
            if (r != 1) return r;
        }
        return 1;
    case CHAT_DICT:
        if (a.u.d == b.u.d) return 1;
        if ((a.flags | b.flags) & CHAT_F_NS) return 0;
        if (a.u.d->n != b.u.d->n) return 0;
        if (depth >= CHAT_VAL_MAX_DEPTH) return CHAT_VAL_TOO_DEEP;
        for (size_t i = 0; i < a.u.d->n; i++) {
            chat_val *o = chat_dict_find(b.u.d, a.u.d->keys[i]);
            if (!o) return 0;
            int r = eq_at(a.u.d->vals[i], *o, depth + 1);
            if (r != 1) return r;
        }
        return 1;
    case CHAT_FUNC: return a.u.fn == b.u.fn;
    case CHAT_LOOP: return a.u.loop == b.u.loop;
    default: return 0;
    }
}

int chat_val_eq(chat_val a, chat_val b) {
    return eq_at(a, b, 0);
}

static int compare_at(chat_val a, chat_val b, int *cmp, int depth) {
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
        if (depth >= CHAT_VAL_MAX_DEPTH) return CHAT_VAL_TOO_DEEP;
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            int r = eq_at(a.u.l->items[i], b.u.l->items[i], depth + 1);
            if (r == 1) continue;
            if (r < 0) return r;
            return compare_at(a.u.l->items[i], b.u.l->items[i], cmp, depth + 1);
        }
        *cmp = a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n ? 1 : 0;
        return 0;
    }
    return -1;
}

int chat_val_compare(chat_val a, chat_val b, int *cmp) {
    return compare_at(a, b, cmp, 0);
}

/* Merges order[lo..mid) and order[mid..hi) into tmp[lo..hi). */
static int merge_runs(const chat_val *keys, const size_t *order, size_t *tmp, size_t lo, size_t mid,
                      size_t hi, bool rev, size_t bad[2]) {
    size_t i = lo, j = mid, k = lo;
    while (i < mid && j < hi) {
        int cmp, r = chat_val_compare(keys[order[i]], keys[order[j]], &cmp);
        if (r) {
            bad[0] = order[i];
            bad[1] = order[j];
            return r;
        }
        /* The right item goes first only when strictly before: equal items keep their order,
         * reversed or not, as Python's sorted(reverse=True) keeps them. */
        bool right_first = rev ? cmp < 0 : cmp > 0;
        tmp[k++] = right_first ? order[j++] : order[i++];
    }
    while (i < mid)
        tmp[k++] = order[i++];
    while (j < hi)
        tmp[k++] = order[j++];
    return 0;
}

int chat_val_sort_index(const chat_val *keys, size_t *order, size_t *tmp, size_t n, bool rev,
                        size_t bad[2]) {
    /* Bottom-up merge sort: O(n log n), no recursion. Runs alternate between order and tmp. */
    size_t *src = order, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            int r = merge_runs(keys, src, dst, lo, mid, hi, rev, bad);
            if (r) return r;
        }
        size_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != order) memcpy(order, src, n * sizeof *order);
    return 0;
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

/* The lists and dicts being printed, outermost first: one met again is inside itself. */
typedef struct write_path {
    const void *item[CHAT_VAL_MAX_DEPTH];
    int n;
} write_path;

static bool on_path(const write_path *path, const void *p) {
    for (int i = 0; i < path->n; i++)
        if (path->item[i] == p) return true;
    return false;
}

static void write_any(chat_text *b, chat_val v, bool repr, write_path *path) {
    char tmp[40];
    bool tup = v.flags & CHAT_F_TUPLE, ns = v.flags & CHAT_F_NS;
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
    case CHAT_FUNC: chat_text_adds(b, "<function>"); return;
    case CHAT_LOOP: chat_text_adds(b, "<LoopContext>"); return;
    case CHAT_LIST:
    case CHAT_DICT: break;
    }
    const void *self = v.type == CHAT_LIST ? (const void *)v.u.l : (const void *)v.u.d;
    if (on_path(path, self)) { /* Python's reprlib guard */
        chat_text_adds(b, v.type == CHAT_LIST ? (tup ? "(...)" : "[...]")
                          : ns                ? "<Namespace {...}>"
                                              : "{...}");
        return;
    }
    if (path->n >= CHAT_VAL_MAX_DEPTH) {
        b->failed = true;
        chat_arena_set_too_deep(b->a);
        return;
    }
    path->item[path->n++] = self;
    if (v.type == CHAT_LIST) {
        chat_text_adds(b, tup ? "(" : "[");
        for (size_t i = 0; i < v.u.l->n && !b->failed; i++) {
            if (i) chat_text_adds(b, ", ");
            write_any(b, v.u.l->items[i], true, path);
        }
        if (tup && v.u.l->n == 1) chat_text_adds(b, ",");
        chat_text_adds(b, tup ? ")" : "]");
    } else {
        chat_text_adds(b, ns ? "<Namespace {" : "{");
        for (size_t i = 0; i < v.u.d->n && !b->failed; i++) {
            if (i) chat_text_adds(b, ", ");
            write_any(b, v.u.d->keys[i], true, path);
            chat_text_adds(b, ": ");
            write_any(b, v.u.d->vals[i], true, path);
        }
        chat_text_adds(b, ns ? "}>" : "}");
    }
    path->n--;
}

/* Scalars print without the path (a 4 KiB array) on the stack. */
static void write_top(chat_text *b, chat_val v, bool repr) {
    if (v.type != CHAT_LIST && v.type != CHAT_DICT) {
        write_path none = {.n = 0};
        write_any(b, v, repr, &none);
        return;
    }
    write_path *path = ob_alloc(1, sizeof *path);
    if (!path) {
        b->failed = true;
        return;
    }
    path->n = 0;
    write_any(b, v, repr, path);
    ob_free(path);
}

void chat_val_write_str(chat_text *b, chat_val v) {
    write_top(b, v, false);
}
void chat_val_write_repr(chat_text *b, chat_val v) {
    write_top(b, v, true);
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
