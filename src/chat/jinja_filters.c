/*
 * Jinja filters on scalars and strings, and the filter table. Sequence filters (map, select,
 * sort, join, ...) are in jinja_seqfilters.c. Each filter follows jinja2 3.1's builtin of the
 * same name, except tojson, which is the transformers one: json.dumps with ensure_ascii=False
 * and no HTML escaping, and from_json, which jinja2 lacks and DeepSeek's templates (V3.2 on)
 * use to read a tool call's arguments when they come as a JSON string: Python's json.loads.
 */
#include "chat/jinja_int.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef ob_status (*chat_jx_filter_fn)(jctx *c, const jnode *at, chat_val in, const jargs *a,
                                       chat_val *out);

/* From jinja_seqfilters.c. */
ob_status chat_jx_f_first(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_last(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_join(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_list(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_items(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_reverse(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_map(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_select(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_reject(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_selectattr(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_rejectattr(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_sort(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_unique(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_dictsort(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_batch(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_sum(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_min(jctx *, const jnode *, chat_val, const jargs *, chat_val *);
ob_status chat_jx_f_max(jctx *, const jnode *, chat_val, const jargs *, chat_val *);

/* The input as text (jinja2's soft_str: undefined is ""). */
static ob_status text_of(jctx *c, const jnode *at, chat_val in, chat_val *out) {
    return chat_jx_to_str(c, at, in, out);
}

static ob_status f_trim(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_val s, chars = chat_jx_arg(a, 0, "chars", chat_val_none());
    ob_status st = text_of(c, at, in, &s);
    if (st) return st;
    *out = chat_jx_strip(s, chars.type == CHAT_STR ? &chars : NULL, 3);
    return OB_OK;
}

static ob_status f_case(jctx *c, const jnode *at, chat_val in, int how, chat_val *out) {
    chat_val s;
    ob_status st = text_of(c, at, in, &s);
    if (st) return st;
    *out = chat_jx_case(c->a, s, how);
    return chat_val_failed(*out) ? chat_jx_nomem(c, at) : OB_OK;
}
static ob_status f_upper(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    return f_case(c, at, in, JX_UPPER, out);
}
static ob_status f_lower(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    return f_case(c, at, in, JX_LOWER, out);
}
static ob_status f_title(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    return f_case(c, at, in, JX_TITLE, out);
}
static ob_status f_capitalize(jctx *c, const jnode *at, chat_val in, const jargs *a,
                              chat_val *out) {
    return f_case(c, at, in, JX_CAPITALIZE, out);
}

static ob_status f_length(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    switch (in.type) {
    case CHAT_STR: *out = chat_val_int((int64_t)chat_jx_utf8_len(in.u.s.p, in.u.s.n)); return OB_OK;
    case CHAT_LIST: *out = chat_val_int((int64_t)in.u.l->n); return OB_OK;
    case CHAT_DICT: *out = chat_val_int((int64_t)in.u.d->n); return OB_OK;
    case CHAT_UNDEF: *out = chat_val_int(0); return OB_OK;
    default:
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "object of type '%s' has no len()",
                            chat_val_type_name(in));
    }
}

static ob_status f_string(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    return text_of(c, at, in, out);
}

static ob_status f_safe(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    ob_status st = text_of(c, at, in, out);
    out->flags |= CHAT_F_SAFE;
    return st;
}

static ob_status f_escape(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_val s;
    ob_status st = text_of(c, at, in, &s);
    if (st) return st;
    if (in.flags & CHAT_F_SAFE) {
        *out = s;
        return OB_OK;
    }
    chat_text b;
    chat_text_init(&b, c->a);
    for (size_t i = 0; i < s.u.s.n; i++) {
        char ch = s.u.s.p[i];
        const char *r = ch == '&'    ? "&amp;"
                        : ch == '<'  ? "&lt;"
                        : ch == '>'  ? "&gt;"
                        : ch == '"'  ? "&#34;"
                        : ch == '\'' ? "&#39;"
                                     : NULL;
        if (r)
            chat_text_adds(&b, r);
        else
            chat_text_add(&b, &ch, 1);
    }
    if (b.failed) return chat_jx_nomem(c, at);
    *out = chat_text_val(&b);
    out->flags |= CHAT_F_SAFE;
    return OB_OK;
}

static ob_status f_default(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_val def = chat_jx_arg(a, 0, "default_value", chat_val_str_view("", 0));
    bool boolean = chat_val_truthy(chat_jx_arg(a, 1, "boolean", chat_val_bool(false)));
    *out = in.type == CHAT_UNDEF || (boolean && !chat_val_truthy(in)) ? def : in;
    return OB_OK;
}

/* Python int(text) for the int filter: optional sign, digits, underscores between digits. */
static bool parse_int_text(chat_val s, int64_t base, int64_t *out) {
    chat_val t = chat_jx_strip(s, NULL, 3);
    char buf[80];
    if (t.u.s.n == 0 || t.u.s.n >= sizeof buf) return false;
    size_t k = 0;
    for (size_t i = 0; i < t.u.s.n; i++)
        if (t.u.s.p[i] != '_') buf[k++] = t.u.s.p[i];
    buf[k] = 0;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, (int)base);
    if (*end || errno || end == buf) return false;
    *out = v;
    return true;
}

static ob_status f_int(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_val def = chat_jx_arg(a, 0, "default", chat_val_int(0));
    chat_val base = chat_jx_arg(a, 1, "base", chat_val_int(10));
    int64_t v;
    *out = def;
    if (in.type == CHAT_INT || in.type == CHAT_BOOL)
        *out = chat_val_int(in.type == CHAT_INT ? in.u.i : in.u.b);
    else if (in.type == CHAT_FLOAT && isfinite(in.u.f) && fabs(in.u.f) < 9.2e18)
        *out = chat_val_int((int64_t)in.u.f);
    else if (in.type == CHAT_STR) {
        if (parse_int_text(in, base.type == CHAT_INT ? base.u.i : 10, &v))
            *out = chat_val_int(v);
        else {
            char buf[80], *end;
            chat_val t = chat_jx_strip(in, NULL, 3);
            if (t.u.s.n && t.u.s.n < sizeof buf) {
                memcpy(buf, t.u.s.p, t.u.s.n);
                buf[t.u.s.n] = 0;
                double f = strtod(buf, &end);
                if (!*end && isfinite(f) && fabs(f) < 9.2e18) *out = chat_val_int((int64_t)f);
            }
        }
    }
    return OB_OK;
}

static ob_status f_float(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    *out = chat_jx_arg(a, 0, "default", chat_val_float(0.0));
    if (in.type == CHAT_FLOAT)
        *out = in;
    else if (in.type == CHAT_INT || in.type == CHAT_BOOL)
        *out = chat_val_float(in.type == CHAT_INT ? (double)in.u.i : in.u.b);
    else if (in.type == CHAT_STR) {
        char buf[80], *end;
        chat_val t = chat_jx_strip(in, NULL, 3);
        if (t.u.s.n && t.u.s.n < sizeof buf) {
            memcpy(buf, t.u.s.p, t.u.s.n);
            buf[t.u.s.n] = 0;
            double f = strtod(buf, &end);
            if (!*end) *out = chat_val_float(f);
        }
    }
    return OB_OK;
}

static ob_status f_abs(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    if (in.type == CHAT_INT)
        *out = chat_val_int(in.u.i < 0 ? -in.u.i : in.u.i);
    else if (in.type == CHAT_BOOL)
        *out = chat_val_int(in.u.b);
    else if (in.type == CHAT_FLOAT)
        *out = chat_val_float(fabs(in.u.f));
    else
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "bad operand type for abs(): '%s'",
                            chat_val_type_name(in));
    return OB_OK;
}

static ob_status f_round(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_val pv = chat_jx_arg(a, 0, "precision", chat_val_int(0));
    chat_val mv = chat_jx_arg(a, 1, "method", chat_val_str_view("common", 6));
    int64_t prec = pv.type == CHAT_INT ? pv.u.i : 0;
    if (in.type == CHAT_INT || in.type == CHAT_BOOL) {
        if (mv.type == CHAT_STR && ob_str_eq_cstr((ob_str){mv.u.s.p, mv.u.s.n}, "common")) {
            *out = chat_val_int(in.type == CHAT_INT ? in.u.i : in.u.b);
            return OB_OK;
        }
        in = chat_val_float(in.type == CHAT_INT ? (double)in.u.i : in.u.b);
    }
    if (in.type != CHAT_FLOAT)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "round: expected a number, got %s",
                            chat_val_type_name(in));
    if (prec < 0 || prec > 30)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "round: precision out of range");
    ob_str m = mv.type == CHAT_STR ? (ob_str){mv.u.s.p, mv.u.s.n} : (ob_str){"", 0};
    double scale = pow(10.0, (double)prec), r;
    if (ob_str_eq_cstr(m, "common")) {
        /* Python's round(): correctly rounded, ties to even on the exact binary value, which is
         * what printf's %.Nf does. */
        char buf[400];
        snprintf(buf, sizeof buf, "%.*f", (int)prec, in.u.f);
        r = strtod(buf, NULL);
    } else if (ob_str_eq_cstr(m, "ceil")) {
        r = ceil(in.u.f * scale) / scale;
    } else if (ob_str_eq_cstr(m, "floor")) {
        r = floor(in.u.f * scale) / scale;
    } else {
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "method must be common, ceil or floor");
    }
    *out = chat_val_float(r);
    return OB_OK;
}

static ob_status f_replace(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_val s, old, neu;
    ob_status st = text_of(c, at, in, &s);
    if (!st) st = chat_jx_to_str(c, at, chat_jx_arg(a, 0, "old", chat_val_str_view("", 0)), &old);
    if (!st) st = chat_jx_to_str(c, at, chat_jx_arg(a, 1, "new", chat_val_str_view("", 0)), &neu);
    if (st) return st;
    chat_val cnt = chat_jx_arg(a, 2, "count", chat_val_none());
    *out = chat_jx_replace(c->a, s, old, neu, cnt.type == CHAT_INT ? cnt.u.i : -1);
    return chat_val_failed(*out) ? chat_jx_nomem(c, at) : OB_OK;
}

/* jinja2's indent: every line but the first (unless first=True) gets the prefix; blank lines
 * only with blank=True. */
static ob_status f_indent(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_val s, w = chat_jx_arg(a, 0, "width", chat_val_int(4));
    bool first = chat_val_truthy(chat_jx_arg(a, 1, "first", chat_val_bool(false)));
    bool blank = chat_val_truthy(chat_jx_arg(a, 2, "blank", chat_val_bool(false)));
    /* jinja2 appends "\n" to the input, which only a string allows. */
    if (in.type != CHAT_STR)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "indent: expected a string, got %s",
                            chat_val_type_name(in));
    s = in;
    chat_val pre;
    if (w.type == CHAT_STR)
        pre = w;
    else {
        int64_t n = w.type == CHAT_INT ? w.u.i : 4;
        if (n < 0) n = 0;
        if (n > 4096)
            return chat_jx_fail(c, at, OB_ERR_LIMIT, "indent width %lld over 4096", (long long)n);
        char *sp = chat_arena_alloc(c->a, (size_t)n + 1);
        if (!sp) return chat_jx_nomem(c, at);
        memset(sp, ' ', (size_t)n);
        pre = chat_val_str_view(sp, (size_t)n);
    }
    chat_text b;
    chat_text_init(&b, c->a);
    if (first) chat_text_add(&b, pre.u.s.p, pre.u.s.n);
    /* Lines as str.splitlines(s + "\n") gives them: a trailing newline makes an empty line. */
    size_t i = 0, n = s.u.s.n;
    for (bool line_one = true;; line_one = false) {
        size_t e = i;
        while (e < n && s.u.s.p[e] != '\n' && s.u.s.p[e] != '\r')
            e++;
        if (!line_one) {
            chat_text_add(&b, "\n", 1);
            if (blank || e > i) chat_text_add(&b, pre.u.s.p, pre.u.s.n);
        }
        chat_text_add(&b, s.u.s.p + i, e - i);
        if (e >= n) break;
        i = e + (s.u.s.p[e] == '\r' && e + 1 < n && s.u.s.p[e + 1] == '\n' ? 2 : 1);
    }
    if (b.failed) return chat_jx_nomem(c, at);
    *out = chat_text_val(&b);
    return OB_OK;
}

static ob_status f_wordcount(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_val s;
    ob_status st = text_of(c, at, in, &s);
    if (st) return st;
    int64_t words = 0;
    bool in_word = false;
    for (size_t i = 0; i < s.u.s.n; i++) {
        unsigned char ch = (unsigned char)s.u.s.p[i];
        bool w = ch >= 0x80 || ch == '_' || (ch >= '0' && ch <= '9') ||
                 ((ch | 32) >= 'a' && (ch | 32) <= 'z');
        if (w && !in_word) words++;
        in_word = w;
    }
    *out = chat_val_int(words);
    return OB_OK;
}

static ob_status f_tojson(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_val ind = chat_jx_arg(a, 0, "indent", chat_val_none());
    chat_val asc = chat_jx_arg(a, 1, "ensure_ascii", chat_val_bool(false));
    chat_val sep = chat_jx_arg(a, 2, "separators", chat_val_none());
    chat_val sk = chat_jx_arg(a, 3, "sort_keys", chat_val_bool(false));
    int indent = ind.type == CHAT_INT ? (int)(ind.u.i < 0 ? 0 : ind.u.i > 64 ? 64 : ind.u.i) : -1;
    char item_sep[32], key_sep[32];
    const char *is = NULL, *ks = NULL;
    if (sep.type == CHAT_LIST && sep.u.l->n == 2 && sep.u.l->items[0].type == CHAT_STR &&
        sep.u.l->items[1].type == CHAT_STR) {
        snprintf(item_sep, sizeof item_sep, "%.*s", (int)(sep.u.l->items[0].u.s.n & 31),
                 sep.u.l->items[0].u.s.p);
        snprintf(key_sep, sizeof key_sep, "%.*s", (int)(sep.u.l->items[1].u.s.n & 31),
                 sep.u.l->items[1].u.s.p);
        is = item_sep;
        ks = key_sep;
    } else if (sep.type != CHAT_NONE) {
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "tojson: separators must be a pair of strings");
    }
    chat_text b;
    chat_text_init(&b, c->a);
    char why[64] = "";
    int r =
        chat_val_to_json(&b, in, chat_val_truthy(asc), indent, is, ks, chat_val_truthy(sk), why);
    if (r)
        return chat_jx_fail(c, at, r == CHAT_VAL_TOO_DEEP ? OB_ERR_LIMIT : OB_ERR_FORMAT,
                            "tojson: %s", why);
    if (b.failed) return chat_jx_nomem(c, at);
    *out = chat_text_val(&b);
    return OB_OK;
}

/* json.loads of a string: objects keep their key order (the last of a repeated key wins, as in
 * Python); anything but a string, or text that is not one JSON value, is an error. */
static ob_status f_from_json(jctx *c, const jnode *at, chat_val in, const jargs *a,
                             chat_val *out) {
    if (in.type != CHAT_STR)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "from_json: expected a string, got %s",
                            chat_val_type_name(in));
    json_error_t je;
    json_t *j = json_loadb(in.u.s.p, in.u.s.n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "from_json: invalid JSON at character %d: %s",
                            je.position, je.text);
    ob_err why = {{0}}; /* not c->err: the failure message is written there from this one */
    ob_status st = chat_val_from_json(c->a, j, out, &why);
    json_decref(j);
    return st ? chat_jx_fail(c, at, st, "from_json: %s", why.msg) : OB_OK;
}

static ob_status f_attr(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_val nm = chat_jx_arg(a, 0, "name", chat_val_undef(""));
    if (nm.type != CHAT_STR)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "attr: name must be a string");
    /* Python getattr only: a dict's keys are not attributes. */
    if (in.type == CHAT_DICT && !(in.flags & CHAT_F_NS) &&
        !chat_jx_method_exists(in, (ob_str){nm.u.s.p, nm.u.s.n})) {
        *out = chat_jx_undef(c, "'dict object' has no attribute '%.*s'", (int)nm.u.s.n, nm.u.s.p);
        return OB_OK;
    }
    return chat_jx_getattr(c, at, in, (ob_str){nm.u.s.p, nm.u.s.n}, out);
}

/* "%s ..."|format(args): Python's str % (args,). */
static ob_status f_format(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_val s, tup = chat_val_list(c->a, a->npos);
    ob_status st = text_of(c, at, in, &s);
    if (st) return st;
    if (chat_val_failed(tup)) return chat_jx_nomem(c, at);
    tup.flags = CHAT_F_TUPLE;
    for (size_t i = 0; i < a->npos; i++)
        if (chat_list_push(c->a, tup.u.l, a->pos[i])) return chat_jx_nomem(c, at);
    return chat_jx_binop(c, at, JOP_MOD, s, tup, out);
}

typedef struct filter_entry {
    const char *name;
    chat_jx_filter_fn fn;
} filter_entry;

static const filter_entry FILTERS[] = {{"abs", f_abs},
                                       {"attr", f_attr},
                                       {"batch", chat_jx_f_batch},
                                       {"capitalize", f_capitalize},
                                       {"count", f_length},
                                       {"d", f_default},
                                       {"default", f_default},
                                       {"dictsort", chat_jx_f_dictsort},
                                       {"e", f_escape},
                                       {"escape", f_escape},
                                       {"first", chat_jx_f_first},
                                       {"float", f_float},
                                       {"format", f_format},
                                       {"from_json", f_from_json},
                                       {"indent", f_indent},
                                       {"int", f_int},
                                       {"items", chat_jx_f_items},
                                       {"join", chat_jx_f_join},
                                       {"last", chat_jx_f_last},
                                       {"length", f_length},
                                       {"list", chat_jx_f_list},
                                       {"lower", f_lower},
                                       {"map", chat_jx_f_map},
                                       {"max", chat_jx_f_max},
                                       {"min", chat_jx_f_min},
                                       {"reject", chat_jx_f_reject},
                                       {"rejectattr", chat_jx_f_rejectattr},
                                       {"replace", f_replace},
                                       {"reverse", chat_jx_f_reverse},
                                       {"round", f_round},
                                       {"safe", f_safe},
                                       {"select", chat_jx_f_select},
                                       {"selectattr", chat_jx_f_selectattr},
                                       {"sort", chat_jx_f_sort},
                                       {"string", f_string},
                                       {"sum", chat_jx_f_sum},
                                       {"title", f_title},
                                       {"tojson", f_tojson},
                                       {"trim", f_trim},
                                       {"unique", chat_jx_f_unique},
                                       {"upper", f_upper},
                                       {"wordcount", f_wordcount},
                                       {NULL, NULL}};

static chat_jx_filter_fn find_filter(ob_str name) {
    for (const filter_entry *f = FILTERS; f->name; f++)
        if (ob_str_eq_cstr(name, f->name)) return f->fn;
    return NULL;
}

bool chat_jx_filter_exists(ob_str name) {
    return find_filter(name) != NULL;
}

ob_status chat_jx_filter(jctx *c, const jnode *at, ob_str name, chat_val in, const jargs *args,
                         chat_val *out) {
    chat_jx_filter_fn fn = find_filter(name);
    if (!fn) return chat_jx_fail(c, at, OB_ERR_FORMAT, "unknown filter '%.*s'", OB_STR_FMT(name));
    /* Filters other than default/length/string-likes refuse undefined input, as jinja2's do
     * when they touch it; the text filters print it as "". */
    ob_status st = chat_jx_work(c, at, in);
    return st ? st : fn(c, at, in, args, out);
}
