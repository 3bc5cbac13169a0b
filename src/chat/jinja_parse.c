/*
 * The Jinja parser: tokens -> syntax tree. Recursive descent with jinja2's precedence, lowest
 * first: `x if c else y`, or, and, not, comparisons (== != < <= > >= in, not in), + -, ~,
 * * / // %, **, unary - +, then postfix (.attr, [item], [a:b:c], call) and filters/tests
 * (|f(args), is [not] t). Unknown filters and tests are refused here, as jinja2 refuses them
 * when it compiles. Nesting is bounded (CHAT_JINJA_MAX_NESTING) so a hostile template cannot
 * exhaust the C stack.
 */
#include "chat/jinja_int.h"

#include <stdio.h>
#include <string.h>

const jtok *jp_cur(jparser *P) { return &P->t[P->i]; }
const jtok *jp_peek(jparser *P, size_t k) {
    return P->i + k < P->n ? &P->t[P->i + k] : &P->t[P->n - 1];
}

ob_status jp_pfail_at(jparser *P, const jtok *t, const char *fmt, const char *arg) {
    if (P->failed) return OB_ERR_FORMAT;
    P->failed = true;
    char msg[300];
    snprintf(msg, sizeof msg, fmt, arg);
    return ob_fail(P->err, OB_ERR_FORMAT, "%s:%u:%u: %s", P->name, t->line, t->col, msg);
}

static const char *tok_desc(const jtok *t) {
    switch (t->type) {
    case JT_EOF: return "end of template";
    case JT_TEXT: return "template data";
    case JT_VAR_BEGIN: return "'{{'";
    case JT_VAR_END: return "'}}'";
    case JT_BLOCK_BEGIN: return "'{%'";
    case JT_BLOCK_END: return "'%}'";
    case JT_STRING: return "string";
    case JT_INT: return "integer";
    case JT_FLOAT: return "float";
    default: return NULL;
    }
}

/* "unexpected X" naming the token. */
ob_status jp_unexpected(jparser *P, const char *expected) {
    const jtok *t = jp_cur(P);
    char what[200];
    const char *d = tok_desc(t);
    if (d) snprintf(what, sizeof what, "%s", d);
    else snprintf(what, sizeof what, "'%.*s'", OB_STR_FMT(t->text));
    char msg[300];
    snprintf(msg, sizeof msg, "unexpected %s%s%s", what, expected ? ", expected " : "",
             expected ? expected : "");
    return jp_pfail_at(P, t, "%s", msg);
}

bool jp_is_op(const jtok *t, const char *op) {
    return t->type == JT_OP && t->text.len == strlen(op) && !memcmp(t->text.ptr, op, t->text.len);
}
bool jp_is_name(const jtok *t, const char *nm) {
    return t->type == JT_NAME && t->text.len == strlen(nm) && !memcmp(t->text.ptr, nm, t->text.len);
}
bool jp_skip_op(jparser *P, const char *op) {
    if (!jp_is_op(jp_cur(P), op)) return false;
    P->i++;
    return true;
}
bool jp_skip_name(jparser *P, const char *nm) {
    if (!jp_is_name(jp_cur(P), nm)) return false;
    P->i++;
    return true;
}
ob_status jp_expect_op(jparser *P, const char *op) {
    if (jp_skip_op(P, op)) return OB_OK;
    char e[16];
    snprintf(e, sizeof e, "'%s'", op);
    return jp_unexpected(P, e);
}

jnode *jp_node(jparser *P, jn_kind kind, const jtok *at) {
    jnode *n = chat_arena_alloc(P->a, sizeof *n);
    if (!n) {
        if (!P->failed) ob_fail(P->err, OB_ERR_NOMEM, "%s: out of memory while parsing", P->name);
        P->failed = true;
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

/* A growable child list, copied into the node when done. */
void jp_kids_init(jkids *k) {
    k->v = k->small;
    k->names = k->small_names;
    k->n = 0;
    k->cap = 16;
}

bool jp_kids_push(jparser *P, jkids *k, jnode *x, ob_str nm) {
    if (!x) return false;
    if (k->n == k->cap) {
        size_t ncap = k->cap * 2;
        jnode **v = chat_arena_alloc(P->a, ncap * sizeof *v);
        ob_str *names = chat_arena_alloc(P->a, ncap * sizeof *names);
        if (!v || !names) {
            if (!P->failed) ob_fail(P->err, OB_ERR_NOMEM, "%s: out of memory while parsing", P->name);
            P->failed = true;
            return false;
        }
        memcpy(v, k->v, k->n * sizeof *v);
        memcpy(names, k->names, k->n * sizeof *names);
        k->v = v;
        k->names = names;
        k->cap = ncap;
    }
    k->v[k->n] = x;
    k->names[k->n] = nm;
    k->n++;
    return true;
}

bool jp_kids_store(jparser *P, jkids *k, jnode *into) {
    into->nkids = k->n;
    if (!k->n) return true;
    into->kids = chat_arena_alloc(P->a, k->n * sizeof(jnode *));
    into->names = chat_arena_alloc(P->a, k->n * sizeof(ob_str));
    if (!into->kids || !into->names) {
        if (!P->failed) ob_fail(P->err, OB_ERR_NOMEM, "%s: out of memory while parsing", P->name);
        P->failed = true;
        return false;
    }
    memcpy(into->kids, k->v, k->n * sizeof(jnode *));
    memcpy(into->names, k->names, k->n * sizeof(ob_str));
    return true;
}

static const ob_str NO_NAME = {NULL, 0};

static jnode *parse_unary(jparser *P, bool with_filter);

/* ---- expressions ----------------------------------------------------------------------- */

/* (args) of a call, filter or test: positional then name=value. */
bool jp_parse_call_args(jparser *P, jnode *into) {
    jkids k;
    jp_kids_init(&k);
    if (jp_expect_op(P, "(")) return false;
    while (!jp_is_op(jp_cur(P), ")")) {
        if (k.n && jp_expect_op(P, ",")) return false;
        if (jp_is_op(jp_cur(P), ")")) break;
        ob_str nm = NO_NAME;
        if (jp_cur(P)->type == JT_NAME && jp_is_op(jp_peek(P, 1), "=")) {
            nm = jp_cur(P)->text;
            P->i += 2;
        } else if (k.n && k.names[k.n - 1].ptr) {
            jp_pfail_at(P, jp_cur(P), "%s", "positional argument after a keyword argument");
            return false;
        }
        if (!jp_kids_push(P, &k, jp_parse_expr(P, true), nm)) return false;
    }
    P->i++;
    return jp_kids_store(P, &k, into);
}

static jnode *parse_list_or_dict(jparser *P, bool dict) {
    const jtok *at = jp_cur(P);
    jnode *n = jp_node(P, dict ? JN_DICT : JN_LIST, at);
    if (!n) return NULL;
    P->i++;
    jkids k;
    jp_kids_init(&k);
    const char *close = dict ? "}" : "]";
    while (!jp_is_op(jp_cur(P), close)) {
        if (k.n && jp_expect_op(P, ",")) return NULL;
        if (jp_is_op(jp_cur(P), close)) break;
        if (!jp_kids_push(P, &k, jp_parse_expr(P, true), NO_NAME)) return NULL;
        if (dict) {
            if (jp_expect_op(P, ":")) return NULL;
            if (!jp_kids_push(P, &k, jp_parse_expr(P, true), NO_NAME)) return NULL;
        }
    }
    P->i++;
    return jp_kids_store(P, &k, n) ? n : NULL;
}

static jnode *parse_primary(jparser *P) {
    const jtok *t = jp_cur(P);
    jnode *n;
    switch (t->type) {
    case JT_NAME:
        n = jp_node(P, JN_CONST, t);
        if (!n) return NULL;
        if (jp_is_name(t, "true") || jp_is_name(t, "True")) n->val = chat_val_bool(true);
        else if (jp_is_name(t, "false") || jp_is_name(t, "False")) n->val = chat_val_bool(false);
        else if (jp_is_name(t, "none") || jp_is_name(t, "None")) n->val = chat_val_none();
        else {
            n->kind = JN_NAME;
            n->name = t->text;
        }
        P->i++;
        return n;
    case JT_STRING: {
        /* Adjacent string literals join, as in Python. */
        n = jp_node(P, JN_CONST, t);
        if (!n) return NULL;
        chat_text b;
        chat_text_init(&b, P->a);
        size_t count = 0;
        while (jp_cur(P)->type == JT_STRING) {
            chat_text_add(&b, jp_cur(P)->text.ptr, jp_cur(P)->text.len);
            P->i++;
            count++;
        }
        n->val = count == 1 ? chat_val_str_view(t->text.ptr, t->text.len) : chat_text_val(&b);
        return n;
    }
    case JT_INT:
    case JT_FLOAT:
        n = jp_node(P, JN_CONST, t);
        if (!n) return NULL;
        n->val = t->type == JT_INT ? chat_val_int(t->i) : chat_val_float(t->f);
        P->i++;
        return n;
    case JT_OP:
        if (jp_is_op(t, "(")) {
            P->i++;
            if (jp_skip_op(P, ")")) return jp_node(P, JN_TUPLE, t);
            n = jp_parse_tuple(P, true, false);
            if (!n || jp_expect_op(P, ")")) return NULL;
            return n;
        }
        if (jp_is_op(t, "[")) return parse_list_or_dict(P, false);
        if (jp_is_op(t, "{")) return parse_list_or_dict(P, true);
        /* fall through */
    default: jp_unexpected(P, NULL); return NULL;
    }
}

/* [b:c:d] after `[`; returns a JN_SLICE (or the plain index for JN_GETITEM). */
static jnode *parse_subscript(jparser *P, jnode *obj, const jtok *at) {
    jnode *part[3] = {NULL, NULL, NULL};
    int idx = 0;
    bool is_slice = false;
    while (!jp_is_op(jp_cur(P), "]")) {
        if (jp_skip_op(P, ":")) {
            is_slice = true;
            if (++idx > 2) {
                jp_unexpected(P, "']'");
                return NULL;
            }
            continue;
        }
        if (part[idx]) {
            jp_unexpected(P, "']'");
            return NULL;
        }
        part[idx] = jp_parse_expr(P, true);
        if (!part[idx]) return NULL;
    }
    P->i++;
    jnode *n = jp_node(P, is_slice ? JN_SLICE : JN_GETITEM, at);
    if (!n) return NULL;
    n->a = obj;
    if (!is_slice && !part[0]) {
        jp_pfail_at(P, at, "%s", "empty subscript");
        return NULL;
    }
    n->b = part[0];
    n->c = part[1];
    n->d = part[2];
    return n;
}

static jnode *parse_postfix(jparser *P, jnode *e) {
    while (e) {
        const jtok *t = jp_cur(P);
        if (jp_is_op(t, ".")) {
            P->i++;
            const jtok *nt = jp_cur(P);
            if (nt->type == JT_NAME) {
                jnode *n = jp_node(P, JN_GETATTR, t);
                if (!n) return NULL;
                n->a = e;
                n->name = nt->text;
                e = n;
            } else if (nt->type == JT_INT) {
                jnode *n = jp_node(P, JN_GETITEM, t), *k = jp_node(P, JN_CONST, nt);
                if (!n || !k) return NULL;
                k->val = chat_val_int(nt->i);
                n->a = e;
                n->b = k;
                e = n;
            } else {
                jp_unexpected(P, "a name after '.'");
                return NULL;
            }
            P->i++;
        } else if (jp_is_op(t, "[")) {
            P->i++;
            e = parse_subscript(P, e, t);
        } else if (jp_is_op(t, "(")) {
            jnode *n = jp_node(P, JN_CALL, t);
            if (!n || !jp_parse_call_args(P, n)) return NULL;
            n->a = e;
            e = n;
        } else {
            break;
        }
    }
    return e;
}

/* A dotted name after | or is. */
static bool parse_dotted(jparser *P, ob_str *out) {
    if (jp_cur(P)->type != JT_NAME) {
        jp_unexpected(P, "a name");
        return false;
    }
    *out = jp_cur(P)->text;
    P->i++;
    while (jp_is_op(jp_cur(P), ".") && jp_peek(P, 1)->type == JT_NAME) {
        out->len = (size_t)(jp_peek(P, 1)->text.ptr + jp_peek(P, 1)->text.len - out->ptr);
        P->i += 2;
    }
    return true;
}

jnode *jp_parse_filter(jparser *P, jnode *e, bool start_inline) {
    while (start_inline || jp_is_op(jp_cur(P), "|")) {
        if (!start_inline) P->i++;
        start_inline = false;
        const jtok *at = jp_cur(P);
        jnode *n = jp_node(P, JN_FILTER, at);
        if (!n || !parse_dotted(P, &n->name)) return NULL;
        if (!jx_filter_exists(n->name)) {
            char nm[80];
            snprintf(nm, sizeof nm, "%.*s", OB_STR_FMT(n->name));
            jp_pfail_at(P, at, "unknown filter '%s'", nm);
            return NULL;
        }
        if (jp_is_op(jp_cur(P), "(") && !jp_parse_call_args(P, n)) return NULL;
        n->a = e;
        e = n;
    }
    return e;
}

static jnode *parse_test(jparser *P, jnode *e) {
    const jtok *at = jp_cur(P);
    P->i++; /* is */
    jnode *n = jp_node(P, JN_TEST, at);
    if (!n) return NULL;
    if (jp_skip_name(P, "not")) n->op = 1;
    const jtok *nt = jp_cur(P);
    if (!parse_dotted(P, &n->name)) return NULL;
    if (!jx_test_exists(n->name)) {
        char nm[80];
        snprintf(nm, sizeof nm, "%.*s", OB_STR_FMT(n->name));
        jp_pfail_at(P, nt, "unknown test '%s'", nm);
        return NULL;
    }
    n->a = e;
    const jtok *t = jp_cur(P);
    if (jp_is_op(t, "(")) {
        if (!jp_parse_call_args(P, n)) return NULL;
    } else if ((t->type == JT_NAME || t->type == JT_STRING || t->type == JT_INT ||
                t->type == JT_FLOAT || jp_is_op(t, "[") || jp_is_op(t, "{")) &&
               !jp_is_name(t, "else") && !jp_is_name(t, "or") && !jp_is_name(t, "and") &&
               !jp_is_name(t, "if")) {
        if (jp_is_name(t, "is")) {
            jp_pfail_at(P, t, "%s", "cannot chain tests with 'is'");
            return NULL;
        }
        jnode *arg = parse_postfix(P, parse_primary(P));
        if (!arg) return NULL;
        n->kids = chat_arena_alloc(P->a, sizeof(jnode *));
        n->names = chat_arena_alloc(P->a, sizeof(ob_str));
        if (!n->kids || !n->names) return NULL;
        n->kids[0] = arg;
        n->names[0] = NO_NAME;
        n->nkids = 1;
    }
    return n;
}

static jnode *parse_filter_expr(jparser *P, jnode *e) {
    while (e) {
        if (jp_is_op(jp_cur(P), "|")) e = jp_parse_filter(P, e, false);
        else if (jp_is_name(jp_cur(P), "is")) e = parse_test(P, e);
        else if (jp_is_op(jp_cur(P), "(")) e = parse_postfix(P, e);
        else break;
    }
    return e;
}

static jnode *parse_unary(jparser *P, bool with_filter) {
    const jtok *t = jp_cur(P);
    jnode *e;
    if (jp_is_op(t, "-") || jp_is_op(t, "+")) {
        P->i++;
        if (++P->depth > CHAT_JINJA_MAX_NESTING) {
            jp_pfail_at(P, t, "%s", "expression nested too deeply");
            return NULL;
        }
        jnode *inner = parse_unary(P, false);
        P->depth--;
        e = jp_node(P, JN_UNARY, t);
        if (!e || !inner) return NULL;
        e->op = jp_is_op(t, "-") ? JOP_NEG : JOP_POS;
        e->a = inner;
    } else {
        e = parse_primary(P);
    }
    e = parse_postfix(P, e);
    return with_filter ? parse_filter_expr(P, e) : e;
}

static jnode *binop(jparser *P, jn_kind kind, int op, const jtok *at, jnode *x, jnode *y) {
    if (!x || !y) return NULL;
    jnode *n = jp_node(P, kind, at);
    if (!n) return NULL;
    n->op = (uint8_t)op;
    n->a = x;
    n->b = y;
    return n;
}

static jnode *parse_pow(jparser *P) {
    jnode *e = parse_unary(P, true);
    while (e && jp_is_op(jp_cur(P), "**")) {
        const jtok *at = jp_cur(P);
        P->i++;
        e = binop(P, JN_BINOP, JOP_POW, at, e, parse_unary(P, true));
    }
    return e;
}

static jnode *parse_math2(jparser *P) {
    jnode *e = parse_pow(P);
    for (;;) {
        const jtok *at = jp_cur(P);
        int op = jp_is_op(at, "*") ? JOP_MUL : jp_is_op(at, "/") ? JOP_DIV : jp_is_op(at, "//") ? JOP_FLOORDIV
               : jp_is_op(at, "%") ? JOP_MOD : 0;
        if (!e || !op) return e;
        P->i++;
        e = binop(P, JN_BINOP, op, at, e, parse_pow(P));
    }
}

static jnode *parse_concat(jparser *P) {
    jnode *e = parse_math2(P);
    while (e && jp_is_op(jp_cur(P), "~")) {
        const jtok *at = jp_cur(P);
        P->i++;
        e = binop(P, JN_BINOP, JOP_CONCAT, at, e, parse_math2(P));
    }
    return e;
}

static jnode *parse_math1(jparser *P) {
    jnode *e = parse_concat(P);
    for (;;) {
        const jtok *at = jp_cur(P);
        int op = jp_is_op(at, "+") ? JOP_ADD : jp_is_op(at, "-") ? JOP_SUB : 0;
        if (!e || !op) return e;
        P->i++;
        e = binop(P, JN_BINOP, op, at, e, parse_concat(P));
    }
}

/* Comparisons chain as in Python: a < b < c is (a < b) and (b < c). */
static jnode *parse_compare(jparser *P) {
    jnode *e = parse_math1(P), *prev = e, *result = e;
    for (;;) {
        const jtok *at = jp_cur(P);
        int op = jp_is_op(at, "==") ? JOP_EQ : jp_is_op(at, "!=") ? JOP_NE : jp_is_op(at, "<") ? JOP_LT
               : jp_is_op(at, "<=") ? JOP_LE : jp_is_op(at, ">") ? JOP_GT : jp_is_op(at, ">=") ? JOP_GE
               : jp_is_name(at, "in") ? JOP_IN : 0;
        if (!op && jp_is_name(at, "not") && jp_is_name(jp_peek(P, 1), "in")) {
            op = JOP_NOTIN;
            P->i++;
        }
        if (!result || !op) return result;
        P->i++;
        jnode *rhs = parse_math1(P);
        jnode *cmp = binop(P, JN_BINOP, op, at, prev, rhs);
        result = result == prev && result == e ? cmp : binop(P, JN_AND, 0, at, result, cmp);
        e = NULL;
        prev = rhs;
    }
}

static jnode *parse_not(jparser *P) {
    const jtok *t = jp_cur(P);
    if (!jp_is_name(t, "not")) return parse_compare(P);
    P->i++;
    if (++P->depth > CHAT_JINJA_MAX_NESTING) {
        jp_pfail_at(P, t, "%s", "expression nested too deeply");
        return NULL;
    }
    jnode *inner = parse_not(P);
    P->depth--;
    jnode *n = jp_node(P, JN_UNARY, t);
    if (!n || !inner) return NULL;
    n->op = JOP_NOT;
    n->a = inner;
    return n;
}

static jnode *parse_and(jparser *P) {
    jnode *e = parse_not(P);
    while (e && jp_is_name(jp_cur(P), "and")) {
        const jtok *at = jp_cur(P);
        P->i++;
        e = binop(P, JN_AND, 0, at, e, parse_not(P));
    }
    return e;
}

static jnode *parse_or(jparser *P) {
    jnode *e = parse_and(P);
    while (e && jp_is_name(jp_cur(P), "or")) {
        const jtok *at = jp_cur(P);
        P->i++;
        e = binop(P, JN_OR, 0, at, e, parse_and(P));
    }
    return e;
}

jnode *jp_parse_expr(jparser *P, bool with_cond) {
    const jtok *start = jp_cur(P);
    if (++P->depth > CHAT_JINJA_MAX_NESTING) {
        jp_pfail_at(P, start, "%s", "expression nested too deeply");
        return NULL;
    }
    jnode *e = parse_or(P);
    while (with_cond && e && jp_is_name(jp_cur(P), "if")) {
        const jtok *at = jp_cur(P);
        P->i++;
        jnode *n = jp_node(P, JN_COND, at);
        if (!n) return NULL;
        n->a = e;
        n->b = parse_or(P);
        if (!n->b) return NULL;
        if (jp_skip_name(P, "else")) {
            n->c = jp_parse_expr(P, true);
            if (!n->c) return NULL;
        }
        e = n;
    }
    P->depth--;
    return e;
}

/* A comma-separated expression list: one item without a comma is the item itself. For a
 * for-loop target, items are plain names and parsing stops at `in`. */
jnode *jp_parse_tuple(jparser *P, bool with_cond, bool for_target) {
    const jtok *at = jp_cur(P);
    jkids k;
    jp_kids_init(&k);
    bool comma = false;
    for (;;) {
        if (k.n) {
            if (!jp_skip_op(P, ",")) break;
            comma = true;
        }
        const jtok *t = jp_cur(P);
        if (jp_is_op(t, ")") || t->type == JT_VAR_END || t->type == JT_BLOCK_END ||
            (for_target && jp_is_name(t, "in")) || (!for_target && k.n && jp_is_op(t, "=")))
            break;
        jnode *item;
        if (for_target) {
            if (t->type != JT_NAME) {
                jp_unexpected(P, "a name");
                return NULL;
            }
            item = jp_node(P, JN_NAME, t);
            if (item) item->name = t->text;
            P->i++;
        } else {
            item = jp_parse_expr(P, with_cond);
        }
        if (!jp_kids_push(P, &k, item, NO_NAME)) return NULL;
    }
    if (k.n == 0) {
        jp_unexpected(P, "an expression");
        return NULL;
    }
    if (k.n == 1 && !comma) return k.v[0];
    jnode *n = jp_node(P, JN_TUPLE, at);
    return n && jp_kids_store(P, &k, n) ? n : NULL;
}

