/*
 * Jinja tests (`x is name(args)`), as jinja2 3.1 defines them. Python's type rules show
 * through: a bool is a number but not an integer, strings and dicts are sequences, and
 * jinja2's Undefined is iterable (it iterates as empty), a sequence and callable.
 */
#include "chat/jinja_int.h"

#include <stdio.h>
#include <string.h>

static bool is_number(chat_val v) {
    return v.type == CHAT_INT || v.type == CHAT_FLOAT || v.type == CHAT_BOOL;
}

static ob_status compare_test(jctx *c, const jnode *at, int op, chat_val x, const jargs *a,
                              bool *out) {
    chat_val r;
    chat_val y = chat_jx_arg(a, 0, NULL, chat_val_undef(""));
    ob_status st = chat_jx_binop(c, at, op, x, y, &r);
    if (st) return st;
    *out = r.u.b;
    return OB_OK;
}

static bool str_cased(chat_val v, bool upper) {
    if (v.type != CHAT_STR) return false;
    bool any = false;
    for (size_t i = 0; i < v.u.s.n; i++) {
        char ch = v.u.s.p[i];
        if (upper ? (ch >= 'a' && ch <= 'z') : (ch >= 'A' && ch <= 'Z')) return false;
        any |= upper ? (ch >= 'A' && ch <= 'Z') : (ch >= 'a' && ch <= 'z');
    }
    return any;
}

static const char *const TESTS[] = {
    "defined", "undefined", "none",   "boolean", "false",    "true",        "integer",
    "float",   "number",    "string", "mapping", "sequence", "iterable",    "callable",
    "sameas",  "escaped",   "in",     "odd",     "even",     "divisibleby", "lower",
    "upper",   "equalto",   "eq",     "==",      "ne",       "!=",          "lt",
    "<",       "lessthan",  "le",     "<=",      "gt",       ">",           "greaterthan",
    "ge",      ">=",        NULL};

static int find_test(ob_str name) {
    for (int i = 0; TESTS[i]; i++)
        if (ob_str_eq_cstr(name, TESTS[i])) return i;
    return -1;
}

bool chat_jx_test_exists(ob_str name) {
    return find_test(name) >= 0;
}

/* One case per entry of TESTS, in the same order. */
ob_status chat_jx_test(jctx *c, const jnode *at, ob_str name, chat_val v, const jargs *a,
                       bool *out) {
    int t = find_test(name);
    ob_status st = chat_jx_work(c, at, v);
    if (st) return st;
    chat_val arg = chat_jx_arg(a, 0, NULL, chat_val_undef(""));
    switch (t) {
    case 0: *out = v.type != CHAT_UNDEF; return OB_OK;
    case 1: *out = v.type == CHAT_UNDEF; return OB_OK;
    case 2: *out = v.type == CHAT_NONE; return OB_OK;
    case 3: *out = v.type == CHAT_BOOL; return OB_OK;
    case 4: *out = v.type == CHAT_BOOL && !v.u.b; return OB_OK;
    case 5: *out = v.type == CHAT_BOOL && v.u.b; return OB_OK;
    case 6: *out = v.type == CHAT_INT; return OB_OK;
    case 7: *out = v.type == CHAT_FLOAT; return OB_OK;
    case 8: *out = is_number(v); return OB_OK;
    case 9: *out = v.type == CHAT_STR; return OB_OK;
    case 10: *out = v.type == CHAT_DICT && !(v.flags & CHAT_F_NS); return OB_OK;
    case 11:
        *out = v.type == CHAT_STR || v.type == CHAT_LIST || v.type == CHAT_UNDEF ||
               (v.type == CHAT_DICT && !(v.flags & CHAT_F_NS));
        return OB_OK;
    case 12:
        *out = v.type == CHAT_STR || v.type == CHAT_LIST || v.type == CHAT_DICT ||
               v.type == CHAT_UNDEF || v.type == CHAT_LOOP;
        return OB_OK;
    case 13: *out = v.type == CHAT_FUNC || v.type == CHAT_UNDEF; return OB_OK;
    case 14: /* sameas: identity; for values without identity, equality of the same type */
        *out = v.type == arg.type && (v.type == CHAT_LIST   ? v.u.l == arg.u.l
                                      : v.type == CHAT_DICT ? v.u.d == arg.u.d
                                                            : chat_val_eq(v, arg) == 1);
        return OB_OK;
    case 15: *out = (v.flags & CHAT_F_SAFE) != 0; return OB_OK;
    case 16: return compare_test(c, at, JOP_IN, v, a, out);
    case 17:
    case 18:
    case 19: { /* odd even divisibleby: Python's value % n == 0, floats included */
        chat_val r, n = t == 19 ? arg : chat_val_int(2);
        if ((st = chat_jx_binop(c, at, JOP_MOD, v, n, &r))) return st;
        bool zero = r.type == CHAT_FLOAT ? r.u.f == 0 : r.u.i == 0;
        *out = t == 17 ? !zero : zero;
        return OB_OK;
    }
    case 20: *out = str_cased(v, false); return OB_OK;
    case 21: *out = str_cased(v, true); return OB_OK;
    case 22:
    case 23:
    case 24: return compare_test(c, at, JOP_EQ, v, a, out);
    case 25:
    case 26: return compare_test(c, at, JOP_NE, v, a, out);
    case 27:
    case 28:
    case 29: return compare_test(c, at, JOP_LT, v, a, out);
    case 30:
    case 31: return compare_test(c, at, JOP_LE, v, a, out);
    case 32:
    case 33:
    case 34: return compare_test(c, at, JOP_GT, v, a, out);
    case 35:
    case 36: return compare_test(c, at, JOP_GE, v, a, out);
    }
    return chat_jx_fail(c, at, OB_ERR_FORMAT, "unknown test '%.*s'", OB_STR_FMT(name));
}
