/*
 * The Jinja parser: tokens -> syntax tree. Recursive descent with jinja2's precedence, lowest
 * first: `x if c else y`, or, and, not, comparisons (== != < <= > >= in, not in), + -, ~,
 * * / // %, **, unary - +, then postfix (.attr, [item], [a:b:c], call) and filters/tests
 * (|f(args), is [not] t). Unknown filters and tests are refused here, as jinja2 refuses them
 * when it compiles. Nesting is bounded (CHAT_JINJA_MAX_NESTING) so a hostile template cannot
 * exhaust the C stack: the parser's own recursion (brackets, unary operators) by P->depth, and
 * the tree it builds by each node's depth, since left-associative chains (`1+1+1...`,
 * `a.b.c...`, `x|f|f...`) are parsed by loops but make trees as deep as they are long, which
 * the evaluator then walks recursively.
 */
#include "chat/jinja_int.h"

#include <stdio.h>
#include <string.h>

const jtok *chat_jp_cur(jparser *P) {
    return &P->t[P->i];
}
const jtok *chat_jp_peek(jparser *P, size_t k) {
    return P->i + k < P->n ? &P->t[P->i + k] : &P->t[P->n - 1];
}

ob_status chat_jp_pfail_at(jparser *P, const jtok *t, const char *fmt, const char *arg) {
    if (P->failed) return OB_ERR_FORMAT;
    P->failed = true;
    P->status = OB_ERR_FORMAT;
    char msg[300];
    snprintf(msg, sizeof msg, fmt, arg);
    return ob_fail(P->err, OB_ERR_FORMAT, "%s:%u:%u: %s", P->name, t->line, t->col, msg);
}

void chat_jp_nomem(jparser *P) {
    if (P->failed) return;
    P->failed = true;
    const jtok *t = chat_jp_cur(P);
    if (chat_arena_over_cap(P->a)) {
        P->status = ob_fail(P->err, OB_ERR_LIMIT,
                            "%s:%u:%u: parsing the template needs more than %u MiB of memory",
                            P->name, t->line, t->col, CHAT_JINJA_MAX_PARSE_MEMORY >> 20);
        return;
    }
    P->status = ob_fail(P->err, OB_ERR_NOMEM, "%s:%u:%u: out of memory while parsing", P->name,
                        t->line, t->col);
}

/* "expression nested deeper than N levels" at t. */
static void too_deep(jparser *P, const jtok *t) {
    char lim[16];
    snprintf(lim, sizeof lim, "%d", CHAT_JINJA_MAX_NESTING);
    chat_jp_pfail_at(P, t, "expression nested deeper than %s levels", lim);
}

static int node_depth(const jnode *n) {
    return n ? n->depth : 0;
}

jnode *chat_jp_deepen(jparser *P, jnode *n) {
    if (!n) return NULL;
    int d = node_depth(n->a);
    const jnode *more[3] = {n->b, n->c, n->d};
    for (int i = 0; i < 3; i++)
        if (node_depth(more[i]) > d) d = node_depth(more[i]);
    for (size_t i = 0; i < n->nkids; i++)
        if (node_depth(n->kids[i]) > d) d = node_depth(n->kids[i]);
    if (d + 1 > CHAT_JINJA_MAX_NESTING) {
        jtok at = {.line = n->line, .col = n->col};
        too_deep(P, &at);
        return NULL;
    }
    n->depth = (uint16_t)(d + 1);
    return n;
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
ob_status chat_jp_unexpected(jparser *P, const char *expected) {
    const jtok *t = chat_jp_cur(P);
    char what[200];
    const char *d = tok_desc(t);
    if (d)
        snprintf(what, sizeof what, "%s", d);
    else
        snprintf(what, sizeof what, "'%.*s'", OB_STR_FMT(t->text));
    char msg[300];
    snprintf(msg, sizeof msg, "unexpected %s%s%s", what, expected ? ", expected " : "",
             expected ? expected : "");
    return chat_jp_pfail_at(P, t, "%s", msg);
}

bool chat_jp_is_op(const jtok *t, const char *op) {
    return t->type == JT_OP && t->text.len == strlen(op) && !memcmp(t->text.ptr, op, t->text.len);
}
bool chat_jp_is_name(const jtok *t, const char *nm) {
    return t->type == JT_NAME && t->text.len == strlen(nm) && !memcmp(t->text.ptr, nm, t->text.len);
}
bool chat_jp_skip_op(jparser *P, const char *op) {
    if (!chat_jp_is_op(chat_jp_cur(P), op)) return false;
    P->i++;
    return true;
}
bool chat_jp_skip_name(jparser *P, const char *nm) {
    if (!chat_jp_is_name(chat_jp_cur(P), nm)) return false;
    P->i++;
    return true;
}
ob_status chat_jp_expect_op(jparser *P, const char *op) {
    if (chat_jp_skip_op(P, op)) return OB_OK;
    char e[16];
    snprintf(e, sizeof e, "'%s'", op);
    return chat_jp_unexpected(P, e);
}

jnode *chat_jp_node(jparser *P, jn_kind kind, const jtok *at) {
    jnode *n = chat_arena_alloc(P->a, sizeof *n);
    if (!n) {
        chat_jp_nomem(P);
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->depth = 1;
    n->line = at->line;
    n->col = at->col;
    return n;
}

/* A growable child list, copied into the node when done. */
void chat_jp_kids_init(jkids *k) {
    k->v = k->small;
    k->names = k->small_names;
    k->n = 0;
    k->cap = 16;
}

bool chat_jp_kids_push(jparser *P, jkids *k, jnode *x, ob_str nm) {
    if (!x) return false;
    if (k->n == k->cap) {
        size_t ncap = k->cap * 2;
        jnode **v = chat_arena_alloc(P->a, ncap * sizeof *v);
        ob_str *names = chat_arena_alloc(P->a, ncap * sizeof *names);
        if (!v || !names) {
            chat_jp_nomem(P);
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

bool chat_jp_kids_store(jparser *P, jkids *k, jnode *into) {
    into->nkids = k->n;
    if (!k->n) return true;
    into->kids = chat_arena_alloc(P->a, k->n * sizeof(jnode *));
    into->names = chat_arena_alloc(P->a, k->n * sizeof(ob_str));
    if (!into->kids || !into->names) {
        chat_jp_nomem(P);
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
bool chat_jp_parse_call_args(jparser *P, jnode *into) {
    jkids k;
    chat_jp_kids_init(&k);
    if (chat_jp_expect_op(P, "(")) return false;
    while (!chat_jp_is_op(chat_jp_cur(P), ")")) {
        if (k.n && chat_jp_expect_op(P, ",")) return false;
        if (chat_jp_is_op(chat_jp_cur(P), ")")) break;
        ob_str nm = NO_NAME;
        if (chat_jp_cur(P)->type == JT_NAME && chat_jp_is_op(chat_jp_peek(P, 1), "=")) {
            nm = chat_jp_cur(P)->text;
            P->i += 2;
        } else if (k.n && k.names[k.n - 1].ptr) {
            chat_jp_pfail_at(P, chat_jp_cur(P), "%s",
                             "positional argument after a keyword argument");
            return false;
        }
        if (!chat_jp_kids_push(P, &k, chat_jp_parse_expr(P, true), nm)) return false;
    }
    P->i++;
    return chat_jp_kids_store(P, &k, into);
}

static jnode *parse_list_or_dict(jparser *P, bool dict) {
    const jtok *at = chat_jp_cur(P);
    jnode *n = chat_jp_node(P, dict ? JN_DICT : JN_LIST, at);
    if (!n) return NULL;
    P->i++;
    jkids k;
    chat_jp_kids_init(&k);
    const char *close = dict ? "}" : "]";
    while (!chat_jp_is_op(chat_jp_cur(P), close)) {
        if (k.n && chat_jp_expect_op(P, ",")) return NULL;
        if (chat_jp_is_op(chat_jp_cur(P), close)) break;
        if (!chat_jp_kids_push(P, &k, chat_jp_parse_expr(P, true), NO_NAME)) return NULL;
        if (dict) {
            if (chat_jp_expect_op(P, ":")) return NULL;
            if (!chat_jp_kids_push(P, &k, chat_jp_parse_expr(P, true), NO_NAME)) return NULL;
        }
    }
    P->i++;
    return chat_jp_kids_store(P, &k, n) ? chat_jp_deepen(P, n) : NULL;
}

static jnode *parse_primary(jparser *P) {
    const jtok *t = chat_jp_cur(P);
    jnode *n;
    switch (t->type) {
    case JT_NAME:
        n = chat_jp_node(P, JN_CONST, t);
        if (!n) return NULL;
        if (chat_jp_is_name(t, "true") || chat_jp_is_name(t, "True"))
            n->val = chat_val_bool(true);
        else if (chat_jp_is_name(t, "false") || chat_jp_is_name(t, "False"))
            n->val = chat_val_bool(false);
        else if (chat_jp_is_name(t, "none") || chat_jp_is_name(t, "None"))
            n->val = chat_val_none();
        else {
            n->kind = JN_NAME;
            n->name = t->text;
        }
        P->i++;
        return n;
    case JT_STRING: {
        /* Adjacent string literals join, as in Python. */
        n = chat_jp_node(P, JN_CONST, t);
        if (!n) return NULL;
        chat_text b;
        chat_text_init(&b, P->a);
        size_t count = 0;
        while (chat_jp_cur(P)->type == JT_STRING) {
            chat_text_add(&b, chat_jp_cur(P)->text.ptr, chat_jp_cur(P)->text.len);
            P->i++;
            count++;
        }
        if (b.failed) {
            chat_jp_nomem(P);
            return NULL;
        }
        n->val = count == 1 ? chat_val_str_view(t->text.ptr, t->text.len) : chat_text_val(&b);
        return n;
    }
    case JT_INT:
    case JT_FLOAT:
        n = chat_jp_node(P, JN_CONST, t);
        if (!n) return NULL;
        n->val = t->type == JT_INT ? chat_val_int(t->i) : chat_val_float(t->f);
        P->i++;
        return n;
    case JT_OP:
        if (chat_jp_is_op(t, "(")) {
            P->i++;
            if (chat_jp_skip_op(P, ")")) return chat_jp_node(P, JN_TUPLE, t);
            n = chat_jp_parse_tuple(P, true, false);
            if (!n || chat_jp_expect_op(P, ")")) return NULL;
            return n;
        }
        if (chat_jp_is_op(t, "[")) return parse_list_or_dict(P, false);
        if (chat_jp_is_op(t, "{")) return parse_list_or_dict(P, true);
        /* fall through */
    default: chat_jp_unexpected(P, NULL); return NULL;
    }
}

/* [b:c:d] after `[`; returns a JN_SLICE (or the plain index for JN_GETITEM). */
static jnode *parse_subscript(jparser *P, jnode *obj, const jtok *at) {
    jnode *part[3] = {NULL, NULL, NULL};
    int idx = 0;
    bool is_slice = false;
    while (!chat_jp_is_op(chat_jp_cur(P), "]")) {
        if (chat_jp_skip_op(P, ":")) {
            is_slice = true;
            if (++idx > 2) {
                chat_jp_unexpected(P, "']'");
                return NULL;
            }
            continue;
        }
        if (part[idx]) {
            chat_jp_unexpected(P, "']'");
            return NULL;
        }
        part[idx] = chat_jp_parse_expr(P, true);
        if (!part[idx]) return NULL;
    }
    P->i++;
    jnode *n = chat_jp_node(P, is_slice ? JN_SLICE : JN_GETITEM, at);
    if (!n) return NULL;
    n->a = obj;
    if (!is_slice && !part[0]) {
        chat_jp_pfail_at(P, at, "%s", "empty subscript");
        return NULL;
    }
    n->b = part[0];
    n->c = part[1];
    n->d = part[2];
    return chat_jp_deepen(P, n);
}

static jnode *parse_postfix(jparser *P, jnode *e) {
    while (e) {
        const jtok *t = chat_jp_cur(P);
        if (chat_jp_is_op(t, ".")) {
            P->i++;
            const jtok *nt = chat_jp_cur(P);
            if (nt->type == JT_NAME) {
                jnode *n = chat_jp_node(P, JN_GETATTR, t);
                if (!n) return NULL;
                n->a = e;
                n->name = nt->text;
                e = chat_jp_deepen(P, n);
            } else if (nt->type == JT_INT) {
                jnode *n = chat_jp_node(P, JN_GETITEM, t), *k = chat_jp_node(P, JN_CONST, nt);
                if (!n || !k) return NULL;
                k->val = chat_val_int(nt->i);
                n->a = e;
                n->b = k;
                e = chat_jp_deepen(P, n);
            } else {
                chat_jp_unexpected(P, "a name after '.'");
                return NULL;
            }
            P->i++;
        } else if (chat_jp_is_op(t, "[")) {
            P->i++;
            e = parse_subscript(P, e, t);
        } else if (chat_jp_is_op(t, "(")) {
            jnode *n = chat_jp_node(P, JN_CALL, t);
            if (!n || !chat_jp_parse_call_args(P, n)) return NULL;
            n->a = e;
            e = chat_jp_deepen(P, n);
        } else {
            break;
        }
    }
    return e;
}

/* A dotted name after | or is. */
static bool parse_dotted(jparser *P, ob_str *out) {
    if (chat_jp_cur(P)->type != JT_NAME) {
        chat_jp_unexpected(P, "a name");
        return false;
    }
    *out = chat_jp_cur(P)->text;
    P->i++;
    while (chat_jp_is_op(chat_jp_cur(P), ".") && chat_jp_peek(P, 1)->type == JT_NAME) {
        out->len = (size_t)(chat_jp_peek(P, 1)->text.ptr + chat_jp_peek(P, 1)->text.len - out->ptr);
        P->i += 2;
    }
    return true;
}

void chat_jp_unknown_name(jparser *P, const jtok *t, const char *what, ob_str name) {
    if (P->soft || P->pending) return;
    P->pending = t;
    snprintf(P->pending_what, sizeof P->pending_what, "unknown %s '%.*s'", what,
             (int)(name.len < 64 ? name.len : 64), name.ptr);
}

jnode *chat_jp_parse_filter(jparser *P, jnode *e, bool start_inline) {
    while (start_inline || chat_jp_is_op(chat_jp_cur(P), "|")) {
        if (!start_inline) P->i++;
        start_inline = false;
        const jtok *at = chat_jp_cur(P);
        jnode *n = chat_jp_node(P, JN_FILTER, at);
        if (!n || !parse_dotted(P, &n->name)) return NULL;
        if (!chat_jx_filter_exists(n->name)) chat_jp_unknown_name(P, at, "filter", n->name);
        if (chat_jp_is_op(chat_jp_cur(P), "(") && !chat_jp_parse_call_args(P, n)) return NULL;
        n->a = e;
        if (!(e = chat_jp_deepen(P, n))) return NULL;
    }
    return e;
}

static jnode *parse_test(jparser *P, jnode *e) {
    const jtok *at = chat_jp_cur(P);
    P->i++; /* is */
    jnode *n = chat_jp_node(P, JN_TEST, at);
    if (!n) return NULL;
    if (chat_jp_skip_name(P, "not")) n->op = 1;
    const jtok *nt = chat_jp_cur(P);
    if (!parse_dotted(P, &n->name)) return NULL;
    if (!chat_jx_test_exists(n->name)) chat_jp_unknown_name(P, nt, "test", n->name);
    n->a = e;
    const jtok *t = chat_jp_cur(P);
    if (chat_jp_is_op(t, "(")) {
        if (!chat_jp_parse_call_args(P, n)) return NULL;
    } else if ((t->type == JT_NAME || t->type == JT_STRING || t->type == JT_INT ||
                t->type == JT_FLOAT || chat_jp_is_op(t, "[") || chat_jp_is_op(t, "{")) &&
               !chat_jp_is_name(t, "else") && !chat_jp_is_name(t, "or") &&
               !chat_jp_is_name(t, "and") && !chat_jp_is_name(t, "if")) {
        if (chat_jp_is_name(t, "is")) {
            chat_jp_pfail_at(P, t, "%s", "cannot chain tests with 'is'");
            return NULL;
        }
        jnode *arg = parse_postfix(P, parse_primary(P));
        if (!arg) return NULL;
        n->kids = chat_arena_alloc(P->a, sizeof(jnode *));
        n->names = chat_arena_alloc(P->a, sizeof(ob_str));
        if (!n->kids || !n->names) {
            chat_jp_nomem(P);
            return NULL;
        }
        n->kids[0] = arg;
        n->names[0] = NO_NAME;
        n->nkids = 1;
    }
    return chat_jp_deepen(P, n);
}

static jnode *parse_filter_expr(jparser *P, jnode *e) {
    while (e) {
        if (chat_jp_is_op(chat_jp_cur(P), "|"))
            e = chat_jp_parse_filter(P, e, false);
        else if (chat_jp_is_name(chat_jp_cur(P), "is"))
            e = parse_test(P, e);
        else if (chat_jp_is_op(chat_jp_cur(P), "("))
            e = parse_postfix(P, e);
        else
            break;
    }
    return e;
}

static jnode *parse_unary(jparser *P, bool with_filter) {
    const jtok *t = chat_jp_cur(P);
    jnode *e;
    if (chat_jp_is_op(t, "-") || chat_jp_is_op(t, "+")) {
        P->i++;
        if (++P->depth > CHAT_JINJA_MAX_NESTING) {
            too_deep(P, t);
            return NULL;
        }
        jnode *inner = parse_unary(P, false);
        P->depth--;
        e = inner ? chat_jp_node(P, JN_UNARY, t) : NULL;
        if (!e) return NULL;
        e->op = chat_jp_is_op(t, "-") ? JOP_NEG : JOP_POS;
        e->a = inner;
        e = chat_jp_deepen(P, e);
    } else {
        e = parse_primary(P);
    }
    e = parse_postfix(P, e);
    return with_filter ? parse_filter_expr(P, e) : e;
}

static jnode *binop(jparser *P, jn_kind kind, int op, const jtok *at, jnode *x, jnode *y) {
    if (!x || !y) return NULL;
    jnode *n = chat_jp_node(P, kind, at);
    if (!n) return NULL;
    n->op = (uint8_t)op;
    n->a = x;
    n->b = y;
    return chat_jp_deepen(P, n);
}

static jnode *parse_pow(jparser *P) {
    jnode *e = parse_unary(P, true);
    while (e && chat_jp_is_op(chat_jp_cur(P), "**")) {
        const jtok *at = chat_jp_cur(P);
        P->i++;
        e = binop(P, JN_BINOP, JOP_POW, at, e, parse_unary(P, true));
    }
    return e;
}

static jnode *parse_math2(jparser *P) {
    jnode *e = parse_pow(P);
    for (;;) {
        const jtok *at = chat_jp_cur(P);
        int op = chat_jp_is_op(at, "*")    ? JOP_MUL
                 : chat_jp_is_op(at, "/")  ? JOP_DIV
                 : chat_jp_is_op(at, "//") ? JOP_FLOORDIV
                 : chat_jp_is_op(at, "%")  ? JOP_MOD
                                           : 0;
        if (!e || !op) return e;
        P->i++;
        e = binop(P, JN_BINOP, op, at, e, parse_pow(P));
    }
}

static jnode *parse_concat(jparser *P) {
    jnode *e = parse_math2(P);
    while (e && chat_jp_is_op(chat_jp_cur(P), "~")) {
        const jtok *at = chat_jp_cur(P);
        P->i++;
        e = binop(P, JN_BINOP, JOP_CONCAT, at, e, parse_math2(P));
    }
    return e;
}

static jnode *parse_math1(jparser *P) {
    jnode *e = parse_concat(P);
    for (;;) {
        const jtok *at = chat_jp_cur(P);
        int op = chat_jp_is_op(at, "+") ? JOP_ADD : chat_jp_is_op(at, "-") ? JOP_SUB : 0;
        if (!e || !op) return e;
        P->i++;
        e = binop(P, JN_BINOP, op, at, e, parse_concat(P));
    }
}

/* Comparisons chain as in Python: a < b < c is (a < b) and (b < c). */
static jnode *parse_compare(jparser *P) {
    jnode *e = parse_math1(P), *prev = e, *result = e;
    for (;;) {
        const jtok *at = chat_jp_cur(P);
        int op = chat_jp_is_op(at, "==")     ? JOP_EQ
                 : chat_jp_is_op(at, "!=")   ? JOP_NE
                 : chat_jp_is_op(at, "<")    ? JOP_LT
                 : chat_jp_is_op(at, "<=")   ? JOP_LE
                 : chat_jp_is_op(at, ">")    ? JOP_GT
                 : chat_jp_is_op(at, ">=")   ? JOP_GE
                 : chat_jp_is_name(at, "in") ? JOP_IN
                                             : 0;
        if (!op && chat_jp_is_name(at, "not") && chat_jp_is_name(chat_jp_peek(P, 1), "in")) {
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
    const jtok *t = chat_jp_cur(P);
    if (!chat_jp_is_name(t, "not")) return parse_compare(P);
    P->i++;
    if (++P->depth > CHAT_JINJA_MAX_NESTING) {
        too_deep(P, t);
        return NULL;
    }
    jnode *inner = parse_not(P);
    P->depth--;
    jnode *n = inner ? chat_jp_node(P, JN_UNARY, t) : NULL;
    if (!n) return NULL;
    n->op = JOP_NOT;
    n->a = inner;
    return chat_jp_deepen(P, n);
}

static jnode *parse_and(jparser *P) {
    jnode *e = parse_not(P);
    while (e && chat_jp_is_name(chat_jp_cur(P), "and")) {
        const jtok *at = chat_jp_cur(P);
        P->i++;
        e = binop(P, JN_AND, 0, at, e, parse_not(P));
    }
    return e;
}

static jnode *parse_or(jparser *P) {
    jnode *e = parse_and(P);
    while (e && chat_jp_is_name(chat_jp_cur(P), "or")) {
        const jtok *at = chat_jp_cur(P);
        P->i++;
        e = binop(P, JN_OR, 0, at, e, parse_and(P));
    }
    return e;
}

jnode *chat_jp_parse_expr(jparser *P, bool with_cond) {
    const jtok *start = chat_jp_cur(P);
    if (++P->depth > CHAT_JINJA_MAX_NESTING) {
        too_deep(P, start);
        return NULL;
    }
    const jtok *pending = P->pending;
    jnode *e = parse_or(P);
    while (with_cond && e && chat_jp_is_name(chat_jp_cur(P), "if")) {
        const jtok *at = chat_jp_cur(P);
        P->i++;
        jnode *n = chat_jp_node(P, JN_COND, at);
        if (!n) return NULL;
        /* a conditional expression is soft as a whole, its first operand included */
        P->pending = pending;
        const bool soft = P->soft;
        P->soft = true;
        n->a = e;
        n->b = parse_or(P);
        bool has_else = n->b && chat_jp_skip_name(P, "else");
        if (has_else) n->c = chat_jp_parse_expr(P, true);
        P->soft = soft;
        if (!n->b || (has_else && !n->c)) return NULL;
        if (!(e = chat_jp_deepen(P, n))) return NULL;
    }
    P->depth--;
    return e;
}

/* A comma-separated expression list: one item without a comma is the item itself. For a
 * for-loop target, items are plain names and parsing stops at `in`. */
jnode *chat_jp_parse_tuple(jparser *P, bool with_cond, bool for_target) {
    const jtok *at = chat_jp_cur(P);
    jkids k;
    chat_jp_kids_init(&k);
    bool comma = false;
    for (;;) {
        if (k.n) {
            if (!chat_jp_skip_op(P, ",")) break;
            comma = true;
        }
        const jtok *t = chat_jp_cur(P);
        if (chat_jp_is_op(t, ")") || t->type == JT_VAR_END || t->type == JT_BLOCK_END ||
            (for_target && chat_jp_is_name(t, "in")) ||
            (!for_target && k.n && chat_jp_is_op(t, "=")))
            break;
        jnode *item;
        if (for_target) {
            if (t->type != JT_NAME) {
                chat_jp_unexpected(P, "a name");
                return NULL;
            }
            item = chat_jp_node(P, JN_NAME, t);
            if (item) item->name = t->text;
            P->i++;
        } else {
            item = chat_jp_parse_expr(P, with_cond);
        }
        if (!chat_jp_kids_push(P, &k, item, NO_NAME)) return NULL;
    }
    if (k.n == 0) {
        chat_jp_unexpected(P, "an expression");
        return NULL;
    }
    if (k.n == 1 && !comma) return k.v[0];
    jnode *n = chat_jp_node(P, JN_TUPLE, at);
    return n && chat_jp_kids_store(P, &k, n) ? chat_jp_deepen(P, n) : NULL;
}
