/*
 * The Jinja interpreter, expressions: names, literals, attribute and item access (jinja2's
 * rules: `a.b` tries the attribute first, `a[b]` the item first; a missing one is undefined,
 * an undefined one used further is an error), slicing with steps, Python's arithmetic and
 * comparisons, `and`/`or` returning an operand, calls to macros, methods and the global
 * functions (range, namespace, dict, raise_exception, strftime_now).
 */
#include "chat/jinja_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

chat_val chat_jx_lookup(jctx *c, ob_str name);
ob_status chat_jx_call_macro(jctx *c, const jnode *at, chat_func *f, const jargs *args,
                             chat_val *out);

#define MAX_RANGE 1000000 /* items a range() may make */

chat_val chat_jx_arg(const jargs *args, size_t pos, const char *kw, chat_val def) {
    if (pos < args->npos) return args->pos[pos];
    for (size_t i = 0; kw && i < args->nkw; i++)
        if (ob_str_eq_cstr(args->kwn[i], kw)) return args->kwv[i];
    return def;
}

ob_status chat_jx_to_str(jctx *c, const jnode *at, chat_val v, chat_val *out) {
    if (v.type == CHAT_STR) {
        *out = v;
        return OB_OK;
    }
    chat_text b;
    chat_text_init(&b, c->a);
    chat_val_write_str(&b, v);
    if (b.failed) return chat_jx_nomem(c, at);
    *out = chat_text_val(&b);
    return chat_jx_work(c, at, *out);
}

static chat_val bound_method(jctx *c, chat_val self, ob_str name) {
    chat_func *f = chat_arena_alloc(c->a, sizeof *f);
    if (!f) return chat_val_fail();
    memset(f, 0, sizeof *f);
    f->kind = JF_METHOD;
    f->name = name;
    f->self = self;
    chat_val v = {.type = CHAT_FUNC};
    v.u.fn = f;
    return v;
}

static const char *obj_name(chat_val v) {
    switch (v.type) {
    case CHAT_DICT: return v.flags & CHAT_F_NS ? "Namespace object" : "dict object";
    case CHAT_LIST: return v.flags & CHAT_F_TUPLE ? "tuple object" : "list object";
    case CHAT_STR: return "str object";
    case CHAT_INT: return "int object";
    case CHAT_FLOAT: return "float object";
    case CHAT_BOOL: return "bool object";
    case CHAT_NONE: return "None";
    default: return "object";
    }
}

static ob_status loop_attr(jctx *c, chat_loop *lp, ob_str name, chat_val *out) {
    int64_t i = (int64_t)lp->index0, n = (int64_t)lp->items->n;
    if (ob_str_eq_cstr(name, "index"))
        *out = chat_val_int(i + 1);
    else if (ob_str_eq_cstr(name, "index0"))
        *out = chat_val_int(i);
    else if (ob_str_eq_cstr(name, "revindex"))
        *out = chat_val_int(n - i);
    else if (ob_str_eq_cstr(name, "revindex0"))
        *out = chat_val_int(n - i - 1);
    else if (ob_str_eq_cstr(name, "first"))
        *out = chat_val_bool(i == 0);
    else if (ob_str_eq_cstr(name, "last"))
        *out = chat_val_bool(i == n - 1);
    else if (ob_str_eq_cstr(name, "length"))
        *out = chat_val_int(n);
    else if (ob_str_eq_cstr(name, "depth"))
        *out = chat_val_int(lp->depth);
    else if (ob_str_eq_cstr(name, "depth0"))
        *out = chat_val_int(lp->depth - 1);
    else if (ob_str_eq_cstr(name, "previtem"))
        *out = i > 0 ? lp->items->items[i - 1] : chat_jx_undef(c, "there is no previous item");
    else if (ob_str_eq_cstr(name, "nextitem"))
        *out = i + 1 < n ? lp->items->items[i + 1] : chat_jx_undef(c, "there is no next item");
    else if (ob_str_eq_cstr(name, "cycle")) {
        chat_func *f = chat_arena_alloc(c->a, sizeof *f);
        if (!f) return chat_jx_nomem(c, NULL);
        memset(f, 0, sizeof *f);
        f->kind = JF_CYCLE;
        f->name = name;
        f->loop = lp;
        out->type = CHAT_FUNC;
        out->flags = 0;
        out->u.fn = f;
    } else {
        *out = chat_jx_undef(c, "'LoopContext object' has no attribute '%.*s'", OB_STR_FMT(name));
    }
    return OB_OK;
}

ob_status chat_jx_getattr(jctx *c, const jnode *at, chat_val obj, ob_str name, chat_val *out) {
    ob_status st = chat_jx_check_defined(c, at, obj);
    if (st) return st;
    if (obj.type == CHAT_LOOP) return loop_attr(c, obj.u.loop, name, out);
    if (chat_jx_method_exists(obj, name)) {
        *out = bound_method(c, obj, name);
        return chat_val_failed(*out) ? chat_jx_nomem(c, at) : OB_OK;
    }
    if (obj.type == CHAT_DICT) {
        chat_val *v = chat_dict_find(obj.u.d, chat_val_str_view(name.ptr, name.len));
        if (v) {
            *out = *v;
            return OB_OK;
        }
    }
    *out = chat_jx_undef(c, "'%s' has no attribute '%.*s'", obj_name(obj), OB_STR_FMT(name));
    return OB_OK;
}

/* Python's index normalisation: negative counts from the end; -1 when out of range. */
static int64_t norm_index(int64_t i, size_t n) {
    if (i < 0) i += (int64_t)n;
    return i < 0 || i >= (int64_t)n ? -1 : i;
}

ob_status chat_jx_getitem(jctx *c, const jnode *at, chat_val obj, chat_val key, chat_val *out) {
    ob_status st = chat_jx_check_defined(c, at, obj);
    if (st || (obj.type == CHAT_STR && (st = chat_jx_work(c, at, obj)))) return st;
    if (obj.type == CHAT_DICT && !(obj.flags & CHAT_F_NS)) {
        chat_val *v = chat_dict_find(obj.u.d, key);
        if (v) {
            *out = *v;
            return OB_OK;
        }
    } else if ((obj.type == CHAT_LIST || obj.type == CHAT_STR) &&
               (key.type == CHAT_INT || key.type == CHAT_BOOL)) {
        int64_t k = key.type == CHAT_INT ? key.u.i : key.u.b;
        if (obj.type == CHAT_LIST) {
            int64_t i = norm_index(k, obj.u.l->n);
            if (i >= 0) {
                *out = obj.u.l->items[i];
                return OB_OK;
            }
        } else {
            size_t len = chat_jx_utf8_len(obj.u.s.p, obj.u.s.n);
            int64_t i = norm_index(k, len);
            if (i >= 0) {
                size_t b = chat_jx_utf8_offset(obj.u.s.p, obj.u.s.n, (size_t)i);
                size_t e = chat_jx_utf8_offset(obj.u.s.p, obj.u.s.n, (size_t)i + 1);
                *out = chat_val_str_view(obj.u.s.p + b, e - b);
                return OB_OK;
            }
        }
    }
    if (key.type == CHAT_STR)
        return chat_jx_getattr(c, at, obj, (ob_str){key.u.s.p, key.u.s.n}, out);
    chat_text b;
    chat_text_init(&b, c->a);
    chat_val_write_repr(&b, key);
    chat_text_add(&b, "", 1);
    *out = chat_jx_undef(c, "'%s' has no attribute %s", obj_name(obj), b.failed ? "?" : b.p);
    return OB_OK;
}

/* Python slice bounds for a sequence of n items. */
static ob_status slice_bounds(jctx *c, const jnode *at, chat_val v[3], size_t n, int64_t *start,
                              int64_t *stop, int64_t *step) {
    int64_t idx[3];
    bool given[3];
    for (int k = 0; k < 3; k++) {
        given[k] = v[k].type != CHAT_UNDEF && v[k].type != CHAT_NONE;
        if (given[k] && v[k].type != CHAT_INT && v[k].type != CHAT_BOOL)
            return chat_jx_fail(c, at, OB_ERR_FORMAT, "slice indices must be integers, not %s",
                                chat_val_type_name(v[k]));
        idx[k] = given[k] ? (v[k].type == CHAT_INT ? v[k].u.i : v[k].u.b) : 0;
    }
    *step = given[2] ? idx[2] : 1;
    if (*step == 0) return chat_jx_fail(c, at, OB_ERR_FORMAT, "slice step cannot be zero");
    int64_t len = (int64_t)n;
    for (int k = 0; k < 2; k++) {
        int64_t *dst = k == 0 ? start : stop;
        if (!given[k]) {
            *dst = *step > 0 ? (k == 0 ? 0 : len) : (k == 0 ? len - 1 : -1);
            continue;
        }
        int64_t i = idx[k];
        if (i < 0) i += len;
        if (*step > 0)
            i = i < 0 ? 0 : i > len ? len : i;
        else
            i = i < -1 ? -1 : i > len - 1 ? len - 1 : i;
        *dst = i;
    }
    return OB_OK;
}

/* A string slice in one pass over the string (indexing each code point from the start would be
 * quadratic): a step-1 slice is a view, others collect every step-th code point. */
static ob_status slice_str(jctx *c, const jnode *at, chat_val s, int64_t start, int64_t stop,
                           int64_t step, chat_val *out) {
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    if (step == 1) {
        size_t b = start < stop ? chat_jx_utf8_offset(p, n, (size_t)start) : 0;
        size_t e = start < stop ? b + chat_jx_utf8_offset(p + b, n - b, (size_t)(stop - start)) : 0;
        *out = chat_val_str_view(p + b, e - b);
        return OB_OK;
    }
    chat_text b;
    chat_text_init(&b, c->a);
    /* Walk code points in the direction of the step, numbering them as Python does. */
    int64_t idx = step > 0 ? 0 : (int64_t)chat_jx_utf8_len(p, n) - 1;
    size_t pos = step > 0 ? 0 : n;
    while (step > 0 ? idx < stop : idx > stop) {
        size_t cp_start, cp_len;
        if (step > 0) {
            if (pos >= n) break;
            cp_start = pos;
            cp_len = chat_jx_utf8_offset(p + pos, n - pos, 1);
            pos += cp_len;
        } else {
            if (pos == 0) break;
            size_t q = pos - 1;
            while (q > 0 && ((unsigned char)p[q] & 0xC0) == 0x80)
                q--;
            cp_start = q;
            cp_len = pos - q;
            pos = q;
        }
        bool in_range = step > 0 ? idx >= start : idx <= start;
        if (in_range && (idx - start) % step == 0) chat_text_add(&b, p + cp_start, cp_len);
        idx += step > 0 ? 1 : -1;
    }
    if (b.failed) return chat_jx_nomem(c, at);
    *out = chat_text_val(&b);
    return OB_OK;
}

JX_NOINLINE static ob_status eval_slice(jctx *c, const jnode *e, chat_val *out) {
    chat_val obj, v[3] = {chat_val_undef(""), chat_val_undef(""), chat_val_undef("")};
    ob_status st = chat_jx_eval(c, e->a, &obj);
    const jnode *parts[3] = {e->b, e->c, e->d};
    for (int k = 0; k < 3 && !st; k++)
        if (parts[k]) st = chat_jx_eval(c, parts[k], &v[k]);
    if (st || (st = chat_jx_check_defined(c, e, obj)) || (st = chat_jx_work(c, e, obj))) return st;
    if (obj.type != CHAT_LIST && obj.type != CHAT_STR)
        return chat_jx_fail(c, e, OB_ERR_FORMAT, "'%s' object is not subscriptable",
                            chat_val_type_name(obj));
    bool is_str = obj.type == CHAT_STR;
    size_t n = is_str ? chat_jx_utf8_len(obj.u.s.p, obj.u.s.n) : obj.u.l->n;
    int64_t start = 0, stop = 0, step = 1;
    if ((st = slice_bounds(c, e, v, n, &start, &stop, &step))) return st;
    if (is_str) return slice_str(c, e, obj, start, stop, step, out);
    chat_val res = chat_val_list(c->a, 0);
    if (chat_val_failed(res)) return chat_jx_nomem(c, e);
    res.flags = obj.flags & CHAT_F_TUPLE;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
        if (chat_list_push(c->a, res.u.l, obj.u.l->items[i])) return chat_jx_nomem(c, e);
    *out = res;
    return OB_OK;
}

ob_status chat_jx_iterate(jctx *c, const jnode *at, chat_val v, chat_list **out) {
    chat_val l;
    ob_status st = chat_jx_work(c, at, v);
    if (st) return st;
    switch (v.type) {
    case CHAT_LIST: *out = v.u.l; return OB_OK;
    case CHAT_UNDEF:
    case CHAT_DICT:
        l = chat_val_list(c->a, v.type == CHAT_DICT ? v.u.d->n : 0);
        if (chat_val_failed(l)) return chat_jx_nomem(c, at);
        for (size_t i = 0; v.type == CHAT_DICT && i < v.u.d->n; i++)
            if (chat_list_push(c->a, l.u.l, v.u.d->keys[i])) return chat_jx_nomem(c, at);
        *out = l.u.l;
        return OB_OK;
    case CHAT_STR:
        l = chat_val_list(c->a, v.u.s.n);
        if (chat_val_failed(l)) return chat_jx_nomem(c, at);
        for (size_t i = 0; i < v.u.s.n;) {
            size_t e = chat_jx_utf8_offset(v.u.s.p + i, v.u.s.n - i, 1);
            if (chat_list_push(c->a, l.u.l, chat_val_str_view(v.u.s.p + i, e)))
                return chat_jx_nomem(c, at);
            i += e;
        }
        *out = l.u.l;
        return OB_OK;
    default:
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "'%s' object is not iterable",
                            chat_val_type_name(v));
    }
}

/* ---- calls ----------------------------------------------------------------------------- */

static ob_status builtin_range(jctx *c, const jnode *at, const jargs *a, chat_val *out) {
    int64_t v[3] = {0, 0, 1};
    if (a->npos < 1 || a->npos > 3)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "range expected 1 to 3 arguments, got %zu",
                            a->npos);
    for (size_t i = 0; i < a->npos; i++) {
        if (a->pos[i].type != CHAT_INT && a->pos[i].type != CHAT_BOOL)
            return chat_jx_fail(c, at, OB_ERR_FORMAT,
                                "range: '%s' object cannot be interpreted as an integer",
                                chat_val_type_name(a->pos[i]));
        v[a->npos == 1 ? 1 : i] = a->pos[i].type == CHAT_INT ? a->pos[i].u.i : a->pos[i].u.b;
    }
    if (v[2] == 0) return chat_jx_fail(c, at, OB_ERR_FORMAT, "range() arg 3 must not be zero");
    double count = ceil(((double)v[1] - (double)v[0]) / (double)v[2]);
    if (count > MAX_RANGE)
        return chat_jx_fail(c, at, OB_ERR_LIMIT, "range of %.0f items, limit %d", count, MAX_RANGE);
    *out = chat_val_list(c->a, count > 0 ? (size_t)count : 0);
    if (chat_val_failed(*out)) return chat_jx_nomem(c, at);
    for (int64_t i = v[0]; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2])
        if (chat_list_push(c->a, out->u.l, chat_val_int(i))) return chat_jx_nomem(c, at);
    return OB_OK;
}

static ob_status builtin_dict(jctx *c, const jnode *at, const jargs *a, bool ns, chat_val *out) {
    *out = chat_val_dict(c->a, a->nkw);
    if (chat_val_failed(*out)) return chat_jx_nomem(c, at);
    if (ns) out->flags |= CHAT_F_NS;
    if (a->npos > 1)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "expected at most 1 positional argument");
    if (a->npos == 1) {
        if (a->pos[0].type != CHAT_DICT)
            return chat_jx_fail(c, at, OB_ERR_FORMAT, "cannot make a dict from a %s",
                                chat_val_type_name(a->pos[0]));
        chat_dict *d = a->pos[0].u.d;
        for (size_t i = 0; i < d->n; i++)
            if (chat_dict_set(c->a, out->u.d, d->keys[i], d->vals[i])) return chat_jx_nomem(c, at);
    }
    for (size_t i = 0; i < a->nkw; i++)
        if (chat_dict_set(c->a, out->u.d, chat_val_str_view(a->kwn[i].ptr, a->kwn[i].len),
                          a->kwv[i]))
            return chat_jx_nomem(c, at);
    return OB_OK;
}

/* strftime_now(format): transformers' datetime.now().strftime(format). datetime first replaces
 * %z and %Z (empty for a naive time) and %f (microseconds: 000000 for a whole-second clock) and
 * stops at a NUL byte; time.strftime then formats with the C library, in a buffer that doubles
 * from 1 KiB until the text fits or reaches 256 bytes per format byte (an empty result stays
 * empty). The same here, so the output is the whole text however long the format. */
static ob_status builtin_strftime(jctx *c, const jnode *at, const jargs *a, chat_val *out) {
    chat_val fmt = chat_jx_arg(a, 0, "format", chat_val_undef(""));
    if (fmt.type != CHAT_STR)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "strftime_now needs a format string");
    const char *p = fmt.u.s.p;
    size_t n = fmt.u.s.n, k = 0;
    const char *nul = memchr(p, 0, n);
    if (nul) n = (size_t)(nul - p);
    /* (3n + 1) bytes: %f (2 bytes) becomes 6; the rest shrink or stay. */
    char *f = n <= CHAT_JINJA_MAX_MEMORY / 3 ? chat_arena_alloc(c->a, 3 * n + 1) : NULL;
    if (!f) return chat_jx_nomem(c, at);
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%' || i + 1 == n) {
            f[k++] = p[i];
        } else if (p[i + 1] == 'z' || p[i + 1] == 'Z' || p[i + 1] == 'f') {
            if (p[i + 1] == 'f') memcpy(f + k, "000000", 6), k += 6;
            i++;
        } else {
            f[k++] = p[i];
            f[k++] = p[++i];
        }
    }
    f[k] = 0;
    time_t now = (time_t)c->now;
    struct tm tm;
    if (!localtime_r(&now, &tm))
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "strftime_now: bad time");
    size_t len = 0;
    char *buf = NULL;
    for (size_t size = 1024; k; size *= 2) {
        if (size > CHAT_JINJA_MAX_MEMORY)
            return chat_jx_fail(c, at, OB_ERR_LIMIT, "strftime_now: text over %u MiB",
                                (unsigned)(CHAT_JINJA_MAX_MEMORY >> 20));
        if (!(buf = chat_arena_alloc(c->a, size))) return chat_jx_nomem(c, at);
        len = strftime(buf, size, f, &tm);
        if (len > 0 || size / 256 >= k) break;
    }
    *out = len ? chat_val_str_view(buf, len) : chat_val_str_view("", 0);
    return OB_OK;
}

JX_NOINLINE static ob_status call_builtin(jctx *c, const jnode *at, chat_func *f, const jargs *a,
                                          chat_val *out) {
    switch (f->builtin) {
    case 0: return builtin_range(c, at, a, out);
    case 1: return builtin_dict(c, at, a, true, out);
    case 2: return builtin_dict(c, at, a, false, out);
    case 3: {
        chat_val m = chat_jx_arg(a, 0, "message", chat_val_str_view("", 0));
        chat_val s;
        ob_status st = chat_jx_to_str(c, at, m, &s);
        if (st) return st;
        return chat_jx_fail(c, at, OB_ERR_ARG, "%.*s", OB_STR_FMT(((ob_str){s.u.s.p, s.u.s.n})));
    }
    case 4: return builtin_strftime(c, at, a, out);
    }
    return chat_jx_fail(c, at, OB_ERR_FORMAT, "internal: unknown builtin");
}

ob_status chat_jx_call(jctx *c, const jnode *at, chat_val fn, const jargs *args, chat_val *out) {
    ob_status st = chat_jx_check_defined(c, at, fn);
    if (st) return st;
    if (fn.type != CHAT_FUNC)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "'%s' object is not callable",
                            chat_val_type_name(fn));
    chat_func *f = fn.u.fn;
    switch (f->kind) {
    case JF_BUILTIN: return call_builtin(c, at, f, args, out);
    case JF_MACRO: return chat_jx_call_macro(c, at, f, args, out);
    case JF_METHOD: return chat_jx_method(c, at, f->self, f->name, args, out);
    case JF_CYCLE:
        if (args->npos == 0)
            return chat_jx_fail(c, at, OB_ERR_FORMAT, "no items for cycling given");
        *out = args->pos[f->loop->index0 % args->npos];
        return OB_OK;
    }
    return chat_jx_fail(c, at, OB_ERR_FORMAT, "internal: bad function");
}

/* Evaluates a node's arguments (kids, names) into a jargs in the arena. */
static ob_status eval_args(jctx *c, const jnode *e, jargs *a) {
    memset(a, 0, sizeof *a);
    if (!e->nkids) return OB_OK;
    chat_val *vals = chat_arena_alloc(c->a, e->nkids * sizeof(chat_val));
    ob_str *kwn = chat_arena_alloc(c->a, e->nkids * sizeof(ob_str));
    if (!vals || !kwn) return chat_jx_nomem(c, e);
    for (size_t i = 0; i < e->nkids; i++)
        if (!e->names[i].ptr) a->npos++;
    a->pos = vals;
    a->kwv = vals + a->npos;
    a->kwn = kwn;
    for (size_t i = 0, p = 0; i < e->nkids; i++) {
        chat_val v;
        ob_status st = chat_jx_eval(c, e->kids[i], &v);
        if (st) return st;
        if (e->names[i].ptr) {
            kwn[a->nkw] = e->names[i];
            a->kwv[a->nkw++] = v;
        } else {
            vals[p++] = v;
        }
    }
    return OB_OK;
}

JX_NOINLINE static ob_status eval_call(jctx *c, const jnode *e, chat_val *out) {
    chat_val fn;
    ob_status st;
    jargs args;
    if (e->a->kind == JN_GETATTR) {
        /* obj.method(...) calls the method directly, without a bound-method value. */
        chat_val obj;
        if ((st = chat_jx_eval(c, e->a->a, &obj))) return st;
        if (obj.type != CHAT_UNDEF && obj.type != CHAT_LOOP &&
            chat_jx_method_exists(obj, e->a->name)) {
            if ((st = eval_args(c, e, &args))) return st;
            return chat_jx_method(c, e, obj, e->a->name, &args, out);
        }
        if ((st = chat_jx_getattr(c, e->a, obj, e->a->name, &fn))) return st;
    } else if ((st = chat_jx_eval(c, e->a, &fn))) {
        return st;
    }
    if ((st = eval_args(c, e, &args))) return st;
    return chat_jx_call(c, e, fn, &args, out);
}

/* ---- expressions ----------------------------------------------------------------------- */

JX_NOINLINE static ob_status eval_collection(jctx *c, const jnode *e, chat_val *out) {
    bool dict = e->kind == JN_DICT;
    *out = dict ? chat_val_dict(c->a, e->nkids / 2) : chat_val_list(c->a, e->nkids);
    if (chat_val_failed(*out)) return chat_jx_nomem(c, e);
    if (e->kind == JN_TUPLE) out->flags |= CHAT_F_TUPLE;
    for (size_t i = 0; i < e->nkids; i += dict ? 2 : 1) {
        chat_val k, v;
        ob_status st = chat_jx_eval(c, e->kids[i], &k);
        if (st) return st;
        if (dict) {
            if ((st = chat_jx_eval(c, e->kids[i + 1], &v))) return st;
            if (chat_dict_set(c->a, out->u.d, k, v)) return chat_jx_nomem(c, e);
        } else if (chat_list_push(c->a, out->u.l, k)) {
            return chat_jx_nomem(c, e);
        }
    }
    return OB_OK;
}

JX_NOINLINE static ob_status eval_unary(jctx *c, const jnode *e, chat_val *out) {
    chat_val v;
    ob_status st = chat_jx_eval(c, e->a, &v);
    if (st) return st;
    if (e->op == JOP_NOT) {
        *out = chat_val_bool(!chat_val_truthy(v));
        return OB_OK;
    }
    if ((st = chat_jx_check_defined(c, e, v))) return st;
    bool neg = e->op == JOP_NEG;
    if (v.type == CHAT_INT || v.type == CHAT_BOOL) {
        int64_t i = v.type == CHAT_INT ? v.u.i : v.u.b;
        if (neg && i == INT64_MIN) return chat_jx_fail(c, e, OB_ERR_FORMAT, "integer overflow");
        *out = chat_val_int(neg ? -i : i);
    } else if (v.type == CHAT_FLOAT) {
        *out = chat_val_float(neg ? -v.u.f : v.u.f);
    } else {
        return chat_jx_fail(c, e, OB_ERR_FORMAT, "bad operand type for unary %s: '%s'",
                            neg ? "-" : "+", chat_val_type_name(v));
    }
    return OB_OK;
}

/* x|name(args) or x is [not] name(args). */
JX_NOINLINE static ob_status eval_filter_or_test(jctx *c, const jnode *e, chat_val *out) {
    jargs args;
    chat_val x;
    ob_status st;
    if ((st = chat_jx_eval(c, e->a, &x)) || (st = eval_args(c, e, &args))) return st;
    if (e->kind == JN_FILTER) return chat_jx_filter(c, e, e->name, x, &args, out);
    bool r;
    if ((st = chat_jx_test(c, e, e->name, x, &args, &r))) return st;
    *out = chat_val_bool(e->op ? !r : r);
    return OB_OK;
}

/* a.name, a[b], and the binary operators. */
JX_NOINLINE static ob_status eval_access_or_binop(jctx *c, const jnode *e, chat_val *out) {
    chat_val x, y;
    ob_status st;
    if ((st = chat_jx_eval(c, e->a, &x))) return st;
    if (e->kind == JN_GETATTR) return chat_jx_getattr(c, e, x, e->name, out);
    if ((st = chat_jx_eval(c, e->b, &y))) return st;
    if (e->kind == JN_GETITEM) return chat_jx_getitem(c, e, x, y, out);
    return chat_jx_binop(c, e, e->op, x, y, out);
}

/* One expression; chat_jx_eval wraps it with the step and depth accounting. */
static ob_status eval_node(jctx *c, const jnode *e, chat_val *out) {
    chat_val x;
    ob_status st;
    switch ((jn_kind)e->kind) {
    case JN_CONST: *out = e->val; return OB_OK;
    case JN_NAME: *out = chat_jx_lookup(c, e->name); return OB_OK;
    case JN_LIST:
    case JN_TUPLE:
    case JN_DICT: return eval_collection(c, e, out);
    case JN_GETATTR:
    case JN_GETITEM:
    case JN_BINOP: return eval_access_or_binop(c, e, out);
    case JN_SLICE: return eval_slice(c, e, out);
    case JN_CALL: return eval_call(c, e, out);
    case JN_FILTER:
    case JN_TEST: return eval_filter_or_test(c, e, out);
    case JN_UNARY: return eval_unary(c, e, out);
    case JN_AND:
    case JN_OR:
        if ((st = chat_jx_eval(c, e->a, &x))) return st;
        if (chat_val_truthy(x) == (e->kind == JN_OR)) {
            *out = x;
            return OB_OK;
        }
        return chat_jx_eval(c, e->b, out);
    case JN_COND:
        if ((st = chat_jx_eval(c, e->b, &x))) return st;
        if (chat_val_truthy(x)) return chat_jx_eval(c, e->a, out);
        if (e->c) return chat_jx_eval(c, e->c, out);
        *out = chat_jx_undef(c,
                             "the inline if-expression on line %u evaluated to false and no else "
                             "section was defined.",
                             e->line);
        return OB_OK;
    default:
        return chat_jx_fail(c, e, OB_ERR_FORMAT, "internal: node %d is not an expression", e->kind);
    }
}

ob_status chat_jx_eval(jctx *c, const jnode *e, chat_val *out) {
    ob_status st = chat_jx_step(c, e);
    if (st) return st;
    /* The parser bounds one expression's depth; this bounds everything nested at run time
     * (blocks, expressions, macro calls inside macro calls) against the C stack. */
    if (c->nest >= CHAT_JINJA_MAX_EVAL_DEPTH)
        return chat_jx_fail(c, e, OB_ERR_LIMIT, "template evaluation nested deeper than %d levels",
                            CHAT_JINJA_MAX_EVAL_DEPTH);
    c->nest++;
    st = eval_node(c, e, out);
    c->nest--;
    return st;
}
