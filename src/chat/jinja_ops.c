/*
 * Binary operators with Python's semantics: int arithmetic stays int (overflow is an error,
 * Python would grow), `/` always gives a float, `//` and `%` round toward negative infinity,
 * `+` joins strings and lists, `*` repeats them, `~` joins anything as text, comparisons order
 * numbers with numbers and strings with strings, and `in` looks into strings (substring),
 * lists (an equal item) and dicts (a key).
 */
#include "chat/jinja_int.h"

#include "core/alloc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Python allows any width; real templates use a few digits, and a bound keeps the buffer fixed. */
#define FORMAT_FIELD_MAX 100

/* %s and %r as Python applies them: precision keeps that many characters (code points),
 * width pads with spaces on the left, or on the right with the '-' flag. */
static void add_padded(chat_text *b, const char *p, size_t n, int width, bool left, int prec) {
    size_t keep = 0;
    int chars = 0;
    while (keep < n && (prec < 0 || chars < prec)) {
        keep++;
        while (keep < n && ((unsigned char)p[keep] & 0xC0) == 0x80)
            keep++;
        chars++;
    }
    for (int i = chars; !left && i < width; i++)
        chat_text_add(b, " ", 1);
    chat_text_add(b, p, keep);
    for (int i = chars; left && i < width; i++)
        chat_text_add(b, " ", 1);
}

static const char *op_text(int op) {
    static const char *t[] = {"",   "+",  "-", "*",  "/", "//", "%",  "**",    "~",
                              "==", "!=", "<", "<=", ">", ">=", "in", "not in"};
    return op >= 0 && op <= JOP_NOTIN ? t[op] : "?";
}

static bool is_int(chat_val v) {
    return v.type == CHAT_INT || v.type == CHAT_BOOL;
}
static bool is_num(chat_val v) {
    return is_int(v) || v.type == CHAT_FLOAT;
}
static int64_t as_i(chat_val v) {
    return v.type == CHAT_INT ? v.u.i : v.u.b;
}
static double as_f(chat_val v) {
    return v.type == CHAT_FLOAT ? v.u.f : (double)as_i(v);
}

ob_status chat_jx_equal(jctx *c, const jnode *at, chat_val x, chat_val y, bool *out) {
    int r = chat_val_eq(x, y);
    if (r == CHAT_VAL_TOO_DEEP)
        return chat_jx_fail(c, at, OB_ERR_LIMIT, "comparing values nested deeper than %d levels",
                            CHAT_VAL_MAX_DEPTH);
    *out = r == 1;
    return OB_OK;
}

ob_status chat_jx_compare_fail(jctx *c, const jnode *at, int r, const char *op, chat_val x,
                               chat_val y) {
    if (r == CHAT_VAL_TOO_DEEP)
        return chat_jx_fail(c, at, OB_ERR_LIMIT, "comparing values nested deeper than %d levels",
                            CHAT_VAL_MAX_DEPTH);
    return chat_jx_fail(c, at, OB_ERR_FORMAT,
                        "'%s' not supported between instances of '%s' and '%s'", op,
                        chat_val_type_name(x), chat_val_type_name(y));
}

static ob_status unsupported(jctx *c, const jnode *at, int op, chat_val x, chat_val y) {
    if (op >= JOP_LT && op <= JOP_GE)
        return chat_jx_fail(c, at, OB_ERR_FORMAT,
                            "'%s' not supported between instances of '%s' and '%s'", op_text(op),
                            chat_val_type_name(x), chat_val_type_name(y));
    return chat_jx_fail(c, at, OB_ERR_FORMAT, "unsupported operand type(s) for %s: '%s' and '%s'",
                        op_text(op), chat_val_type_name(x), chat_val_type_name(y));
}

/* seq * n for strings and lists. */
/* seq * n for strings and lists, in one allocation of the exact size (an empty sequence gives an
 * empty result at once, however large n is). */
static ob_status repeat(jctx *c, const jnode *at, chat_val seq, int64_t n, chat_val *out) {
    size_t len = seq.type == CHAT_STR ? seq.u.s.n : seq.u.l->n;
    size_t unit = seq.type == CHAT_STR ? 1 : sizeof(chat_val);
    if (n < 0 || len == 0) n = 0;
    if (n && (uint64_t)n > CHAT_JINJA_MAX_MEMORY / (len * unit))
        return chat_jx_fail(c, at, OB_ERR_LIMIT, "%s repeated %lld times is over the memory limit",
                            seq.type == CHAT_STR ? "string" : "list", (long long)n);
    size_t total = len * (size_t)n; /* items */
    if (seq.type == CHAT_STR) {
        char *p = total ? chat_arena_alloc(c->a, total) : NULL;
        if (total && !p) return chat_jx_nomem(c, at);
        /* Copy once, then double the filled part. */
        if (total) memcpy(p, seq.u.s.p, len);
        for (size_t done = len; done < total; done *= 2)
            memcpy(p + done, p, done < total - done ? done : total - done);
        *out = chat_val_str_view(p, total);
        return OB_OK;
    }
    *out = chat_val_list(c->a, total);
    if (chat_val_failed(*out)) return chat_jx_nomem(c, at);
    out->flags = seq.flags & CHAT_F_TUPLE;
    for (int64_t i = 0; i < n; i++)
        for (size_t k = 0; k < len; k++)
            if (chat_list_push(c->a, out->u.l, seq.u.l->items[k])) return chat_jx_nomem(c, at);
    return OB_OK;
}

/* x + y for strings. When x is exactly a string an earlier concatenation made and its buffer
 * has room, y goes in place after it (see jgrow); else the result gets a new buffer, with twice
 * the room when x was such a string already (so a string built up in a loop doubles its buffer
 * and the copying is linear overall, while one-off joins take only what they need). */
static ob_status concat_str(jctx *c, const jnode *at, chat_val x, chat_val y, chat_val *out) {
    size_t need;
    if (ob_add_size(x.u.s.n, y.u.s.n, &need) || need > CHAT_JINJA_MAX_MEMORY)
        return chat_jx_fail(c, at, OB_ERR_LIMIT,
                            "string of %zu + %zu bytes is over the memory limit", x.u.s.n, y.u.s.n);
    bool grown = false;
    for (int i = 0; i < JX_GROW_SLOTS; i++) {
        jgrow *g = &c->grow[i];
        if (!g->p || x.u.s.p != g->p || x.u.s.n != g->n) continue;
        if (g->cap - g->n >= y.u.s.n) {
            memmove(g->p + g->n, y.u.s.p, y.u.s.n);
            g->n += y.u.s.n;
            *out = chat_val_str_view(g->p, g->n);
            return OB_OK;
        }
        grown = true;
        g->p = NULL; /* replaced below */
    }
    size_t cap = grown && need <= CHAT_JINJA_MAX_MEMORY / 2 ? 2 * need : need;
    char *p = chat_arena_alloc(c->a, cap ? cap : 1);
    if (!p) return chat_jx_nomem(c, at);
    memcpy(p, x.u.s.p, x.u.s.n);
    memcpy(p + x.u.s.n, y.u.s.p, y.u.s.n);
    jgrow *g = &c->grow[c->grow_next++ % JX_GROW_SLOTS];
    *g = (jgrow){p, need, cap};
    *out = chat_val_str_view(p, need);
    return OB_OK;
}

static ob_status concat(jctx *c, const jnode *at, chat_val x, chat_val y, chat_val *out) {
    if (x.type == CHAT_STR) return concat_str(c, at, x, y, out);
    *out = chat_val_list(c->a, x.u.l->n + y.u.l->n);
    if (chat_val_failed(*out)) return chat_jx_nomem(c, at);
    out->flags = x.flags & CHAT_F_TUPLE;
    for (size_t i = 0; i < x.u.l->n; i++)
        if (chat_list_push(c->a, out->u.l, x.u.l->items[i])) return chat_jx_nomem(c, at);
    for (size_t i = 0; i < y.u.l->n; i++)
        if (chat_list_push(c->a, out->u.l, y.u.l->items[i])) return chat_jx_nomem(c, at);
    return OB_OK;
}

static ob_status int_arith(jctx *c, const jnode *at, int op, int64_t a, int64_t b, chat_val *out) {
    int64_t r = 0;
    bool ovf = false;
    switch (op) {
    case JOP_ADD: ovf = __builtin_add_overflow(a, b, &r); break;
    case JOP_SUB: ovf = __builtin_sub_overflow(a, b, &r); break;
    case JOP_MUL: ovf = __builtin_mul_overflow(a, b, &r); break;
    case JOP_FLOORDIV:
    case JOP_MOD:
        if (b == 0) return chat_jx_fail(c, at, OB_ERR_FORMAT, "integer division or modulo by zero");
        if (a == INT64_MIN && b == -1) {
            ovf = true;
            break;
        }
        r = op == JOP_FLOORDIV ? a / b : a % b;
        if (op == JOP_FLOORDIV && (a % b != 0) && ((a < 0) != (b < 0))) r--;
        if (op == JOP_MOD && r != 0 && ((r < 0) != (b < 0))) r += b;
        break;
    case JOP_POW:
        if (b < 0) {
            *out = chat_val_float(pow((double)a, (double)b));
            return OB_OK;
        }
        r = 1;
        for (int64_t i = 0; i < b && !ovf; i++) {
            ovf = __builtin_mul_overflow(r, a, &r);
            if (r == 0 || r == 1) break;
            if (r == -1) {
                r = (b % 2) ? -1 : 1;
                break;
            }
        }
        break;
    }
    if (ovf) return chat_jx_fail(c, at, OB_ERR_FORMAT, "integer overflow in '%s'", op_text(op));
    *out = chat_val_int(r);
    return OB_OK;
}

static ob_status float_arith(jctx *c, const jnode *at, int op, double a, double b, chat_val *out) {
    double r;
    switch (op) {
    case JOP_ADD: r = a + b; break;
    case JOP_SUB: r = a - b; break;
    case JOP_MUL: r = a * b; break;
    case JOP_DIV:
        if (b == 0) return chat_jx_fail(c, at, OB_ERR_FORMAT, "division by zero");
        r = a / b;
        break;
    case JOP_FLOORDIV:
    case JOP_MOD:
        if (b == 0) return chat_jx_fail(c, at, OB_ERR_FORMAT, "float modulo or division by zero");
        r = fmod(a, b);
        if (r != 0 && ((r < 0) != (b < 0))) r += b;
        if (op == JOP_FLOORDIV) r = floor(a / b);
        break;
    default: r = pow(a, b); break;
    }
    *out = chat_val_float(r);
    return OB_OK;
}

static ob_status contains(jctx *c, const jnode *at, chat_val item, chat_val box, bool *out) {
    switch (box.type) {
    case CHAT_STR:
        if (item.type != CHAT_STR)
            return chat_jx_fail(c, at, OB_ERR_FORMAT,
                                "'in <string>' requires string as left operand, not %s",
                                chat_val_type_name(item));
        *out = item.u.s.n == 0 ||
               (item.u.s.n <= box.u.s.n && memmem(box.u.s.p, box.u.s.n, item.u.s.p, item.u.s.n));
        return OB_OK;
    case CHAT_LIST:
        *out = false;
        for (size_t i = 0; i < box.u.l->n && !*out; i++) {
            ob_status st = chat_jx_equal(c, at, box.u.l->items[i], item, out);
            if (st) return st;
        }
        return OB_OK;
    case CHAT_DICT:
        if ((item.type == CHAT_LIST && !(item.flags & CHAT_F_TUPLE)) || item.type == CHAT_DICT)
            return chat_jx_fail(c, at, OB_ERR_FORMAT, "unhashable type: '%s'",
                                chat_val_type_name(item));
        *out = chat_dict_find(box.u.d, item) != NULL;
        return OB_OK;
    case CHAT_UNDEF: *out = false; return OB_OK; /* iterating Undefined yields nothing */
    default:
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "argument of type '%s' is not iterable",
                            chat_val_type_name(box));
    }
}

/* Python's printf-style str % args for the common conversions: %s %r %d %i %f %x %%, with
 * flags, width and precision. A dict or undefined right side with no conversions is allowed,
 * as Python treats a mapping argument. */
static ob_status str_format(jctx *c, const jnode *at, chat_val fmt, chat_val args, chat_val *out) {
    bool tuple = args.type == CHAT_LIST && (args.flags & CHAT_F_TUPLE);
    size_t nargs = tuple ? args.u.l->n : 1, used = 0;
    chat_text b;
    chat_text_init(&b, c->a);
    const char *p = fmt.u.s.p, *end = p + fmt.u.s.n;
    while (p < end) {
        const char *pct = memchr(p, '%', (size_t)(end - p));
        if (!pct) pct = end;
        chat_text_add(&b, p, (size_t)(pct - p));
        if (pct == end) break;
        const char *q = pct + 1;
        bool left = false, has_prec = false;
        while (q < end && strchr("-+ #0", *q))
            left |= *q++ == '-';
        /* Width and precision are read here rather than handed to printf unchecked: a spec
         * such as "%.5.f" is undefined for printf, and a huge width would allocate. */
        int width = 0, prec = 0;
        while (q < end && *q >= '0' && *q <= '9' && width <= FORMAT_FIELD_MAX)
            width = width * 10 + (*q++ - '0');
        if (q < end && *q == '.') {
            q++;
            has_prec = true;
            while (q < end && *q >= '0' && *q <= '9' && prec <= FORMAT_FIELD_MAX)
                prec = prec * 10 + (*q++ - '0');
        }
        if (width > FORMAT_FIELD_MAX || prec > FORMAT_FIELD_MAX)
            return chat_jx_fail(c, at, OB_ERR_FORMAT, "format width or precision above %d",
                                FORMAT_FIELD_MAX);
        if (q >= end || (q - pct) > 20)
            return chat_jx_fail(c, at, OB_ERR_FORMAT, "incomplete format");
        char conv = *q, spec[32];
        p = q + 1;
        if (conv == '%') {
            chat_text_add(&b, "%", 1);
            continue;
        }
        if (used >= nargs)
            return chat_jx_fail(c, at, OB_ERR_FORMAT, "not enough arguments for format string");
        chat_val v = tuple ? args.u.l->items[used] : args;
        used++;
        snprintf(spec, sizeof spec, "%.*s", (int)(q - pct), pct);
        char buf[FORMAT_FIELD_MAX + 360]; /* widest %f of a double plus the padding */
        if (conv == 's' || conv == 'r') {
            chat_text t;
            chat_text_init(&t, c->a);
            if (conv == 'r')
                chat_val_write_repr(&t, v);
            else
                chat_val_write_str(&t, v);
            if (t.failed) return chat_jx_nomem(c, at);
            add_padded(&b, t.p, t.n, width, left, has_prec ? prec : -1);
        } else if (strchr("dixXf", conv) &&
                   (v.type == CHAT_INT || v.type == CHAT_BOOL || v.type == CHAT_FLOAT)) {
            double f = v.type == CHAT_FLOAT ? v.u.f : (double)(v.type == CHAT_INT ? v.u.i : v.u.b);
            if (v.type == CHAT_FLOAT && conv != 'f' && !(fabs(f) < 0x1p63)) {
                /* beyond long long: Python prints %d of the truncated value exactly and
                 * refuses infinities, NaN and %x of such a float */
                if (!isfinite(f) || conv == 'x' || conv == 'X')
                    return chat_jx_fail(c, at, OB_ERR_FORMAT, "cannot format float %g with '%%%c'",
                                        f, conv);
                snprintf(buf, sizeof buf, "%.0f", trunc(f));
                add_padded(&b, buf, strlen(buf), width, left, -1);
                continue;
            }
            char full[40];
            if (conv == 'f') {
                snprintf(full, sizeof full, "%sf", spec);
                snprintf(buf, sizeof buf, full, f);
            } else { /* a float here is within long long (checked above) */
                const long long i = v.type == CHAT_INT ? v.u.i : (long long)f;
                snprintf(full, sizeof full, "%sll%c", spec, conv == 'i' ? 'd' : conv);
                snprintf(buf, sizeof buf, full, i);
            }
            chat_text_adds(&b, buf);
        } else {
            return chat_jx_fail(c, at, OB_ERR_FORMAT, "unsupported format '%%%c' for %s", conv,
                                chat_val_type_name(v));
        }
    }
    bool mapping = !tuple && (args.type == CHAT_DICT || args.type == CHAT_UNDEF);
    if (used < nargs && !(used == 0 && mapping))
        return chat_jx_fail(c, at, OB_ERR_FORMAT,
                            "not all arguments converted during string formatting");
    if (b.failed) return chat_jx_nomem(c, at);
    *out = chat_text_val(&b);
    return OB_OK;
}

ob_status chat_jx_binop(jctx *c, const jnode *at, int op, chat_val x, chat_val y, chat_val *out) {
    ob_status st;
    if ((st = chat_jx_work(c, at, x)) || (st = chat_jx_work(c, at, y))) return st;
    if (op == JOP_EQ || op == JOP_NE) {
        bool eq = false;
        if ((st = chat_jx_equal(c, at, x, y, &eq))) return st;
        *out = chat_val_bool(op == JOP_EQ ? eq : !eq);
        return OB_OK;
    }
    if (op == JOP_CONCAT) {
        chat_val a, b;
        if ((st = chat_jx_to_str(c, at, x, &a)) || (st = chat_jx_to_str(c, at, y, &b))) return st;
        return concat(c, at, a, b, out);
    }
    if (op == JOP_IN || op == JOP_NOTIN) {
        /* An undefined item is simply not found (Python compares with ==). */
        bool r = false;
        if ((st = contains(c, at, x, y, &r))) return st;
        *out = chat_val_bool(op == JOP_IN ? r : !r);
        return OB_OK;
    }
    if (op == JOP_MOD && x.type == CHAT_STR) return str_format(c, at, x, y, out);
    if ((st = chat_jx_check_defined(c, at, x)) || (st = chat_jx_check_defined(c, at, y))) return st;
    if (op >= JOP_LT && op <= JOP_GE) {
        int cmp, fail = chat_val_compare(x, y, &cmp);
        if (fail) return chat_jx_compare_fail(c, at, fail, op_text(op), x, y);
        bool r = op == JOP_LT   ? cmp < 0
                 : op == JOP_LE ? cmp <= 0
                 : op == JOP_GT ? cmp > 0
                                : cmp >= 0;
        *out = chat_val_bool(r);
        return OB_OK;
    }
    if (is_num(x) && is_num(y)) {
        if (is_int(x) && is_int(y) && op != JOP_DIV)
            return int_arith(c, at, op, as_i(x), as_i(y), out);
        return float_arith(c, at, op, as_f(x), as_f(y), out);
    }
    if (op == JOP_ADD && x.type == y.type && (x.type == CHAT_STR || x.type == CHAT_LIST))
        return concat(c, at, x, y, out);
    if (op == JOP_MUL && (x.type == CHAT_STR || x.type == CHAT_LIST) && is_int(y))
        return repeat(c, at, x, as_i(y), out);
    if (op == JOP_MUL && (y.type == CHAT_STR || y.type == CHAT_LIST) && is_int(x))
        return repeat(c, at, y, as_i(x), out);
    return unsupported(c, at, op, x, y);
}
