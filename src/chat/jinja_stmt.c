/*
 * The Jinja parser, statements: template data, {{ output }}, and the block tags chat templates
 * use: if/elif/else, for (with an `if` filter and an else branch), set (plain, to a namespace
 * attribute, tuple unpacking, and the block form), macro, call, filter, break/continue
 * (jinja2's loopcontrols extension), with, and transformers' {% generation %}. Any other tag name
 * is an error naming it.
 */
#include "chat/jinja_int.h"

#include <stdio.h>
#include <string.h>

static jnode *parse_body(jparser *P, const char *const *ends, const jtok *opener, int *which);

static bool expect_end(jparser *P) {
    if (chat_jp_cur(P)->type == JT_BLOCK_END) {
        P->i++;
        return true;
    }
    chat_jp_unexpected(P, "end of block tag '%}'");
    return false;
}

static bool expect_name(jparser *P, ob_str *out) {
    if (chat_jp_cur(P)->type != JT_NAME) {
        chat_jp_unexpected(P, "a name");
        return false;
    }
    *out = chat_jp_cur(P)->text;
    P->i++;
    return true;
}

/* Body up to one of `ends`; consumes the end tag's name and `%}`. *which = the index. */
static jnode *body_until(jparser *P, const char *const *ends, const jtok *opener, int *which) {
    jnode *b = parse_body(P, ends, opener, which);
    if (!b) return NULL;
    P->i++; /* the end tag's name */
    return b;
}

/* An if statement is a soft frame (jinja_int.h), its tests and branches alike. */
static jnode *parse_if_branches(jparser *P, const jtok *at);

static jnode *parse_if(jparser *P, const jtok *at) {
    const bool soft = P->soft;
    P->soft = true;
    jnode *n = parse_if_branches(P, at);
    P->soft = soft;
    return n;
}

/* The bodies of loops, macros, call, filter, with and set blocks are frames of their own,
 * never soft, whatever surrounds them. */
static jnode *body_hard(jparser *P, const char *const *ends, const jtok *opener, int *which);

static jnode *parse_if_branches(jparser *P, const jtok *at) {
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    jnode *top = chat_jp_node(P, JN_IF, at), *n = top;
    if (!n) return NULL;
    for (;;) {
        n->a = chat_jp_parse_tuple(P, false, false);
        if (!n->a || !expect_end(P)) return NULL;
        int which;
        n->body = body_until(P, ends, at, &which);
        if (!n->body) return NULL;
        if (which == 0) { /* elif */
            jnode *next = chat_jp_node(P, JN_IF, chat_jp_peek(P, 0));
            if (!next) return NULL;
            n->orelse = next;
            n = next;
            continue;
        }
        if (which == 1) { /* else */
            static const char *const ends2[] = {"endif", NULL};
            if (!expect_end(P)) return NULL;
            n->orelse = body_until(P, ends2, at, &which);
            if (!n->orelse) return NULL;
        }
        return expect_end(P) ? top : NULL;
    }
}

static jnode *parse_for(jparser *P, const jtok *at) {
    static const char *const ends[] = {"else", "endfor", NULL};
    static const char *const ends2[] = {"endfor", NULL};
    jnode *n = chat_jp_node(P, JN_FOR, at);
    if (!n) return NULL;
    n->b = chat_jp_parse_tuple(P, false, true);
    if (!n->b) return NULL;
    if (!chat_jp_skip_name(P, "in")) {
        chat_jp_unexpected(P, "'in'");
        return NULL;
    }
    n->a = chat_jp_parse_tuple(P, false, false);
    if (!n->a) return NULL;
    if (chat_jp_skip_name(P, "if")) {
        const bool soft = P->soft;
        P->soft = false;
        n->c = chat_jp_parse_expr(P, true);
        P->soft = soft;
        if (!n->c) return NULL;
    }
    if (chat_jp_skip_name(P, "recursive")) {
        chat_jp_pfail_at(P, chat_jp_cur(P), "%s", "recursive for loops are not supported");
        return NULL;
    }
    if (!expect_end(P)) return NULL;
    int which;
    n->body = body_hard(P, ends, at, &which);
    if (!n->body) return NULL;
    if (which == 0) {
        if (!expect_end(P)) return NULL;
        n->orelse = body_hard(P, ends2, at, &which);
        if (!n->orelse) return NULL;
    }
    return expect_end(P) ? n : NULL;
}

/* set target: a name, ns.attr, or names separated by commas. */
static jnode *parse_set_target(jparser *P) {
    const jtok *t = chat_jp_cur(P);
    if (t->type == JT_NAME && chat_jp_is_op(chat_jp_peek(P, 1), ".") &&
        chat_jp_peek(P, 2)->type == JT_NAME) {
        jnode *obj = chat_jp_node(P, JN_NAME, t),
              *n = chat_jp_node(P, JN_GETATTR, chat_jp_peek(P, 1));
        if (!obj || !n) return NULL;
        obj->name = t->text;
        n->a = obj;
        n->name = chat_jp_peek(P, 2)->text;
        P->i += 3;
        return n;
    }
    jkids k;
    chat_jp_kids_init(&k);
    do {
        t = chat_jp_cur(P);
        if (t->type != JT_NAME) {
            chat_jp_unexpected(P, "a name to assign to");
            return NULL;
        }
        jnode *nm = chat_jp_node(P, JN_NAME, t);
        if (nm) nm->name = t->text;
        if (!chat_jp_kids_push(P, &k, nm, (ob_str){NULL, 0})) return NULL;
        P->i++;
    } while (chat_jp_skip_op(P, ","));
    if (k.n == 1) return k.v[0];
    jnode *tup = chat_jp_node(P, JN_TUPLE, t);
    return tup && chat_jp_kids_store(P, &k, tup) ? tup : NULL;
}

static jnode *parse_set(jparser *P, const jtok *at) {
    jnode *target = parse_set_target(P);
    if (!target) return NULL;
    if (chat_jp_skip_op(P, "=")) {
        jnode *n = chat_jp_node(P, JN_SET, at);
        if (!n) return NULL;
        n->b = target;
        n->a = chat_jp_parse_tuple(P, true, false);
        return n->a && expect_end(P) ? n : NULL;
    }
    static const char *const ends[] = {"endset", NULL};
    jnode *n = chat_jp_node(P, JN_SETBLOCK, at);
    if (!n) return NULL;
    if (target->kind != JN_NAME) {
        chat_jp_pfail_at(P, at, "%s", "a block set assigns to one name");
        return NULL;
    }
    n->b = target;
    if (chat_jp_is_op(chat_jp_cur(P), "|")) {
        n->a = chat_jp_parse_filter(P, NULL, false);
        if (!n->a) return NULL;
    }
    int which;
    if (!expect_end(P)) return NULL;
    n->body = body_hard(P, ends, at, &which);
    return n->body && expect_end(P) ? n : NULL;
}

/* (a, b=default, ...) of a macro or a call block. */
static bool parse_params(jparser *P, jnode *into) {
    jkids k;
    chat_jp_kids_init(&k);
    if (chat_jp_expect_op(P, "(")) return false;
    while (!chat_jp_is_op(chat_jp_cur(P), ")")) {
        if (k.n && chat_jp_expect_op(P, ",")) return false;
        ob_str nm;
        if (!expect_name(P, &nm)) return false;
        jnode *def = NULL;
        if (chat_jp_skip_op(P, "=")) {
            def = chat_jp_parse_expr(P, true);
            if (!def) return false;
        }
        /* A placeholder keeps push from refusing NULL; a parameter without default is NULL. */
        if (!chat_jp_kids_push(P, &k, into, nm)) return false;
        k.v[k.n - 1] = def;
    }
    P->i++;
    return chat_jp_kids_store(P, &k, into);
}

static jnode *parse_macro(jparser *P, const jtok *at) {
    static const char *const ends[] = {"endmacro", NULL};
    jnode *n = chat_jp_node(P, JN_MACRO, at);
    if (!n || !expect_name(P, &n->name) || !parse_params(P, n) || !expect_end(P)) return NULL;
    int which;
    n->body = body_hard(P, ends, at, &which);
    return n->body && expect_end(P) ? n : NULL;
}

static jnode *parse_callblock(jparser *P, const jtok *at) {
    static const char *const ends[] = {"endcall", NULL};
    jnode *n = chat_jp_node(P, JN_CALLBLOCK, at);
    if (!n) return NULL;
    if (chat_jp_is_op(chat_jp_cur(P), "(") && !parse_params(P, n)) return NULL;
    n->a = chat_jp_parse_expr(P, true);
    if (!n->a) return NULL;
    if (n->a->kind != JN_CALL) {
        chat_jp_pfail_at(P, at, "%s", "{% call %} needs a macro call");
        return NULL;
    }
    if (!expect_end(P)) return NULL;
    int which;
    n->body = body_hard(P, ends, at, &which);
    return n->body && expect_end(P) ? n : NULL;
}

static jnode *parse_simple_body(jparser *P, const jtok *at, jn_kind kind, const char *end) {
    const char *const ends[] = {end, NULL};
    jnode *n = chat_jp_node(P, kind, at);
    if (!n) return NULL;
    if (kind == JN_FILTERBLOCK) { /* the block's filter belongs to its own frame */
        const bool soft = P->soft;
        P->soft = false;
        n->a = chat_jp_parse_filter(P, NULL, true);
        P->soft = soft;
        if (!n->a) return NULL;
    }
    if (!expect_end(P)) return NULL;
    int which;
    n->body = kind == JN_FILTERBLOCK ? body_hard(P, ends, at, &which)
                                     : body_until(P, ends, at, &which);
    if (!n->body || !expect_end(P)) return NULL;
    return kind == JN_BODY ? n->body : n; /* {% generation %} is just its body */
}

/* {% with a = 1, b = a + 1 %} ... {% endwith %} */
static jnode *parse_with(jparser *P, const jtok *at) {
    static const char *const ends[] = {"endwith", NULL};
    jnode *n = chat_jp_node(P, JN_WITH, at);
    if (!n) return NULL;
    jkids k;
    chat_jp_kids_init(&k);
    while (chat_jp_cur(P)->type != JT_BLOCK_END) {
        ob_str nm;
        if (k.n && chat_jp_expect_op(P, ",")) return NULL;
        if (!expect_name(P, &nm) || chat_jp_expect_op(P, "=")) return NULL;
        if (!chat_jp_kids_push(P, &k, chat_jp_parse_expr(P, true), nm)) return NULL;
    }
    if (!chat_jp_kids_store(P, &k, n) || !expect_end(P)) return NULL;
    int which;
    n->body = body_hard(P, ends, at, &which);
    return n->body && expect_end(P) ? n : NULL;
}

static jnode *body_hard(jparser *P, const char *const *ends, const jtok *opener, int *which) {
    const bool soft = P->soft;
    P->soft = false;
    jnode *b = body_until(P, ends, opener, which);
    P->soft = soft;
    return b;
}

/* One {% tag %} after the name token. */
static jnode *parse_statement(jparser *P) {
    const jtok *at = chat_jp_cur(P);
    if (at->type != JT_NAME) {
        chat_jp_unexpected(P, "a tag name");
        return NULL;
    }
    P->i++;
    if (chat_jp_is_name(at, "if")) return parse_if(P, at);
    if (chat_jp_is_name(at, "for")) return parse_for(P, at);
    if (chat_jp_is_name(at, "set")) return parse_set(P, at);
    if (chat_jp_is_name(at, "macro")) return parse_macro(P, at);
    if (chat_jp_is_name(at, "call")) return parse_callblock(P, at);
    if (chat_jp_is_name(at, "filter")) return parse_simple_body(P, at, JN_FILTERBLOCK, "endfilter");
    if (chat_jp_is_name(at, "with")) return parse_with(P, at);
    if (chat_jp_is_name(at, "generation"))
        return parse_simple_body(P, at, JN_BODY, "endgeneration");
    if (chat_jp_is_name(at, "break") || chat_jp_is_name(at, "continue")) {
        jnode *n = chat_jp_node(P, chat_jp_is_name(at, "break") ? JN_BREAK : JN_CONTINUE, at);
        return n && expect_end(P) ? n : NULL;
    }
    char nm[80];
    snprintf(nm, sizeof nm, "%.*s", OB_STR_FMT(at->text));
    chat_jp_pfail_at(P, at, "unknown tag '%s'", nm);
    return NULL;
}

static int end_index(const jtok *t, const char *const *ends) {
    for (int i = 0; ends && ends[i]; i++)
        if (chat_jp_is_name(t, ends[i])) return i;
    return -1;
}

/* Statements until one of `ends` (a NULL list: until the end of the template). Leaves the
 * parser on the end tag's name. */
static jnode *parse_body(jparser *P, const char *const *ends, const jtok *opener, int *which) {
    jnode *body = chat_jp_node(P, JN_BODY, chat_jp_cur(P));
    if (!body) return NULL;
    if (++P->blocks > CHAT_JINJA_MAX_NESTING) {
        char lim[16];
        snprintf(lim, sizeof lim, "%d", CHAT_JINJA_MAX_NESTING);
        chat_jp_pfail_at(P, opener ? opener : chat_jp_cur(P), "blocks nested deeper than %s levels",
                         lim);
        return NULL;
    }
    jkids k;
    chat_jp_kids_init(&k);
    for (;;) {
        const jtok *t = chat_jp_cur(P);
        jnode *s = NULL;
        if (t->type == JT_EOF) {
            if (ends) {
                char msg[120];
                snprintf(msg, sizeof msg, "'%.*s' is never closed (expected '%s')",
                         OB_STR_FMT(opener->text), ends[0]);
                for (int i = 0; ends[i]; i++)
                    if (!strncmp(ends[i], "end", 3)) {
                        snprintf(msg, sizeof msg, "'%.*s' is never closed (expected '%s')",
                                 OB_STR_FMT(opener->text), ends[i]);
                        break;
                    }
                chat_jp_pfail_at(P, opener, "%s", msg);
                return NULL;
            }
            break;
        }
        if (t->type == JT_TEXT) {
            s = chat_jp_node(P, JN_TEXT, t);
            if (s) s->val = chat_val_str_view(t->text.ptr, t->text.len);
            P->i++;
        } else if (t->type == JT_VAR_BEGIN) {
            P->i++;
            s = chat_jp_node(P, JN_OUTPUT, t);
            if (s) s->a = chat_jp_parse_tuple(P, true, false);
            if (!s || !s->a) return NULL;
            if (chat_jp_cur(P)->type != JT_VAR_END) {
                chat_jp_unexpected(P, "end of print statement '}}'");
                return NULL;
            }
            P->i++;
        } else if (t->type == JT_BLOCK_BEGIN) {
            int idx = end_index(chat_jp_peek(P, 1), ends);
            if (idx >= 0) {
                P->i++;
                *which = idx;
                break;
            }
            P->i++;
            s = parse_statement(P);
        } else {
            chat_jp_unexpected(P, NULL);
            return NULL;
        }
        if (s && P->pending) { /* an unknown name outside any soft frame */
            chat_jp_pfail_at(P, P->pending, "%s", P->pending_what);
            return NULL;
        }
        if (!chat_jp_kids_push(P, &k, s, (ob_str){NULL, 0})) return NULL;
    }
    P->blocks--;
    return chat_jp_kids_store(P, &k, body) ? body : NULL;
}

ob_status chat_jinja_build(const jtok_list *toks, const char *name, chat_arena *a, jnode **root,
                           ob_err *err) {
    jparser P = {.t = toks->toks, .n = toks->n, .a = a, .name = name, .err = err};
    int which = -1;
    *root = parse_body(&P, NULL, NULL, &which);
    if (*root) return OB_OK;
    if (!P.failed) return ob_fail(err, OB_ERR_FORMAT, "%s: parse error", name);
    return P.status;
}
