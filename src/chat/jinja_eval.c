/*
 * The Jinja interpreter, statements: scopes, output, if/for/set/macro/call/filter blocks, and
 * the render entry point. Scoping follows jinja2 where chat templates can see it: a for loop's
 * body has its own scope (a `set` inside it is gone after the loop, hence namespace()), `if`
 * blocks do not, and a macro body runs in a new scope whose parent is where it was defined.
 */
#include "chat/jinja_int.h"

#include "core/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

ob_status chat_jx_fail(jctx *c, const jnode *at, ob_status st, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at) return ob_fail(c->err, st, "%s:%u:%u: %s", c->t->name, at->line, at->col, msg);
    return ob_fail(c->err, st, "%s: %s", c->t->name, msg);
}

ob_status chat_jx_step_limit(jctx *c, const jnode *at) {
    return chat_jx_fail(c, at, OB_ERR_LIMIT, "template ran more than %lld steps (an endless loop?)",
                        (long long)c->max_steps);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

ob_status chat_jx_check_clock(jctx *c, const jnode *at) {
    if (now_ns() < c->deadline_ns) return OB_OK;
    return chat_jx_fail(c, at, OB_ERR_LIMIT, "template rendering took longer than %g s",
                        c->max_seconds);
}

ob_status chat_jx_nomem(jctx *c, const jnode *at) {
    if (chat_arena_take_too_deep(c->a))
        return chat_jx_fail(c, at, OB_ERR_LIMIT, "value nested deeper than %d levels",
                            CHAT_VAL_MAX_DEPTH);
    if (chat_arena_over_cap(c->a))
        return chat_jx_fail(c, at, OB_ERR_LIMIT, "render used more than %u MiB of memory",
                            (unsigned)(CHAT_JINJA_MAX_MEMORY >> 20));
    return chat_jx_fail(c, at, OB_ERR_NOMEM, "out of memory");
}

chat_val chat_jx_undef(jctx *c, const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *h = chat_arena_alloc(c->a, strlen(msg) + 1);
    if (h) strcpy(h, msg);
    return chat_val_undef(h ? h : "undefined value");
}

ob_status chat_jx_check_defined(jctx *c, const jnode *at, chat_val v) {
    if (v.type != CHAT_UNDEF) return OB_OK;
    return chat_jx_fail(c, at, OB_ERR_FORMAT, "%s", *v.u.hint ? v.u.hint : "value is undefined");
}

/* ---- scopes ---------------------------------------------------------------------------- */

static jscope *scope_new(jctx *c, jscope *parent) {
    jscope *s = chat_arena_alloc(c->a, sizeof *s);
    if (!s) return NULL;
    memset(s, 0, sizeof *s);
    s->parent = parent;
    return s;
}

static chat_val *scope_find(jscope *s, ob_str name) {
    chat_val key = chat_val_str_view(name.ptr, name.len);
    for (; s; s = s->parent) {
        if (s->vars.n == 0) continue;
        chat_val *v = chat_dict_find(&s->vars, key);
        if (v) return v;
    }
    return NULL;
}

static ob_status scope_set(jctx *c, const jnode *at, jscope *s, ob_str name, chat_val v) {
    if (s->vars.cap == 0) {
        chat_val d = chat_val_dict(c->a, 8);
        if (chat_val_failed(d)) return chat_jx_nomem(c, at);
        s->vars = *d.u.d;
    }
    if (chat_dict_set(c->a, &s->vars, chat_val_str_view(name.ptr, name.len), v))
        return chat_jx_nomem(c, at);
    return OB_OK;
}

/* Name lookup for expressions (jinja_expr.c). */
chat_val chat_jx_lookup(jctx *c, ob_str name);
chat_val chat_jx_lookup(jctx *c, ob_str name) {
    chat_val *v = scope_find(c->scope, name);
    if (v) return *v;
    return chat_jx_undef(c, "'%.*s' is undefined", OB_STR_FMT(name));
}

/* ---- assignment ------------------------------------------------------------------------ */

JX_NOINLINE static ob_status assign(jctx *c, const jnode *target, chat_val v) {
    if (target->kind == JN_NAME) return scope_set(c, target, c->scope, target->name, v);
    if (target->kind == JN_TUPLE) {
        if (v.type != CHAT_LIST)
            return chat_jx_fail(c, target, OB_ERR_FORMAT, "cannot unpack a %s into %zu names",
                                chat_val_type_name(v), target->nkids);
        if (v.u.l->n != target->nkids)
            return chat_jx_fail(c, target, OB_ERR_FORMAT, "expected %zu values to unpack, got %zu",
                                target->nkids, v.u.l->n);
        for (size_t i = 0; i < target->nkids; i++) {
            ob_status st = assign(c, target->kids[i], v.u.l->items[i]);
            if (st) return st;
        }
        return OB_OK;
    }
    /* ns.attr = value */
    chat_val ns = chat_jx_lookup(c, target->a->name);
    if (ns.type != CHAT_DICT || !(ns.flags & CHAT_F_NS))
        return chat_jx_fail(c, target, OB_ERR_FORMAT,
                            "cannot assign attribute on non-namespace object");
    chat_val key = chat_val_str_view(target->name.ptr, target->name.len);
    if (chat_dict_set(c->a, ns.u.d, key, v)) return chat_jx_nomem(c, target);
    return OB_OK;
}

/* ---- blocks ---------------------------------------------------------------------------- */

/* Runs `body` with output going to a fresh buffer; *out is the text. */
static ob_status capture(jctx *c, const jnode *body, chat_val *out) {
    chat_text buf, *saved = c->out;
    chat_text_init(&buf, c->a);
    c->out = &buf;
    ob_status st = chat_jx_exec(c, body);
    c->out = saved;
    if (st) return st;
    if (buf.failed) return chat_jx_nomem(c, body);
    *out = chat_text_val(&buf);
    return OB_OK;
}

/* Applies a filter chain whose innermost input is NULL (set blocks, filter blocks). */
static ob_status apply_chain(jctx *c, const jnode *f, chat_val in, chat_val *out) {
    if (!f) {
        *out = in;
        return OB_OK;
    }
    chat_val inner;
    ob_status st = apply_chain(c, f->a, in, &inner);
    if (st) return st;
    /* Evaluate the filter node with its input replaced: a shallow copy with a constant. */
    jnode konst = {.kind = JN_CONST, .line = f->line, .col = f->col, .val = inner};
    jnode copy = *f;
    copy.a = &konst;
    return chat_jx_eval(c, &copy, out);
}

JX_NOINLINE static ob_status exec_for(jctx *c, const jnode *s) {
    chat_val seq;
    ob_status st = chat_jx_eval(c, s->a, &seq);
    if (st) return st;
    chat_list *items;
    if ((st = chat_jx_iterate(c, s->a, seq, &items))) return st;
    jscope *outer = c->scope, *inner = scope_new(c, outer);
    if (!inner) return chat_jx_nomem(c, s);
    c->scope = inner;
    if (s->c) { /* for x in y if cond: the filter runs before loop.* counts */
        chat_val kept = chat_val_list(c->a, items->n);
        if (chat_val_failed(kept)) return chat_jx_nomem(c, s);
        for (size_t i = 0; i < items->n && !st; i++) {
            chat_val ok;
            if ((st = assign(c, s->b, items->items[i]))) break;
            if ((st = chat_jx_eval(c, s->c, &ok))) break;
            if (chat_val_truthy(ok) && chat_list_push(c->a, kept.u.l, items->items[i]))
                st = chat_jx_nomem(c, s);
        }
        items = kept.u.l;
    }
    chat_loop *lp = chat_arena_alloc(c->a, sizeof *lp);
    if (!st && !lp) st = chat_jx_nomem(c, s);
    if (!st) {
        lp->items = items;
        lp->depth = 1; /* only recursive loops (not supported) go deeper in jinja2 */
        chat_val lv = {.type = CHAT_LOOP};
        lv.u.loop = lp;
        st = scope_set(c, s, inner, (ob_str){"loop", 4}, lv);
    }
    for (size_t i = 0; !st && i < items->n; i++) {
        lp->index0 = i;
        if ((st = assign(c, s->b, items->items[i]))) break;
        st = chat_jx_exec(c, s->body);
        if (c->loop_ctl == 1) {
            c->loop_ctl = 0;
            break;
        }
        c->loop_ctl = 0;
    }
    c->scope = outer;
    if (!st && items->n == 0 && s->orelse) st = chat_jx_exec(c, s->orelse);
    return st;
}

JX_NOINLINE static ob_status exec_callblock(jctx *c, const jnode *s) {
    chat_func *caller = chat_arena_alloc(c->a, sizeof *caller);
    if (!caller) return chat_jx_nomem(c, s);
    memset(caller, 0, sizeof *caller);
    caller->kind = JF_MACRO;
    caller->name = (ob_str){"caller", 6};
    caller->macro = s;
    caller->closure = c->scope;
    caller->self = chat_val_undef("no caller");
    chat_val cv = {.type = CHAT_FUNC};
    cv.u.fn = caller;
    const jnode *call = s->a;
    chat_val fn;
    ob_status st = chat_jx_eval(c, call->a, &fn);
    if (st) return st;
    /* (nkids + 1) arguments: the call's own, then caller=. */
    chat_val *vals = chat_arena_alloc(c->a, (call->nkids + 1) * sizeof(chat_val));
    ob_str *kwn = chat_arena_alloc(c->a, (call->nkids + 1) * sizeof(ob_str));
    if (!vals || !kwn) return chat_jx_nomem(c, s);
    jargs args = {.pos = vals, .kwn = kwn};
    size_t nk = 0;
    for (size_t i = 0; i < call->nkids; i++)
        if (!call->names[i].ptr) args.npos++;
    args.kwv = vals + args.npos;
    for (size_t i = 0, p = 0; i < call->nkids; i++) {
        chat_val v;
        if ((st = chat_jx_eval(c, call->kids[i], &v))) return st;
        if (call->names[i].ptr) {
            kwn[nk] = call->names[i];
            args.kwv[nk++] = v;
        } else {
            vals[p++] = v;
        }
    }
    kwn[nk] = (ob_str){"caller", 6};
    args.kwv[nk++] = cv;
    args.nkw = nk;
    chat_val out;
    if ((st = chat_jx_call(c, call, fn, &args, &out))) return st;
    chat_val_write_str(c->out, out);
    return OB_OK;
}

/* {% with %}: every value is computed in the enclosing scope (none sees another), then the
 * body runs in a new scope holding them. */
JX_NOINLINE static ob_status exec_with(jctx *c, const jnode *s) {
    jscope *outer = c->scope, *inner = scope_new(c, outer);
    if (!inner) return chat_jx_nomem(c, s);
    ob_status st = OB_OK;
    for (size_t i = 0; i < s->nkids && !st; i++) {
        chat_val v;
        if (!(st = chat_jx_eval(c, s->kids[i], &v))) st = scope_set(c, s, inner, s->names[i], v);
    }
    c->scope = inner;
    if (!st) st = chat_jx_exec(c, s->body);
    c->scope = outer;
    return st;
}

JX_NOINLINE static ob_status exec_macro_def(jctx *c, const jnode *s) {
    chat_func *f = chat_arena_alloc(c->a, sizeof *f);
    if (!f) return chat_jx_nomem(c, s);
    memset(f, 0, sizeof *f);
    f->kind = JF_MACRO;
    f->name = s->name;
    f->macro = s;
    f->closure = c->scope;
    f->self = chat_val_undef("no caller");
    chat_val v = {.type = CHAT_FUNC};
    v.u.fn = f;
    return scope_set(c, s, c->scope, s->name, v);
}

/* {% set x | filters %}...{% endset %} and {% filter f %}...{% endfilter %}. */
JX_NOINLINE static ob_status exec_capture_block(jctx *c, const jnode *s) {
    chat_val v;
    ob_status st = capture(c, s->body, &v);
    if (!st) st = apply_chain(c, s->a, v, &v);
    if (st) return st;
    if (s->kind == JN_SETBLOCK) return assign(c, s->b, v);
    chat_val_write_str(c->out, v);
    return OB_OK;
}

/* One statement; chat_jx_exec wraps it with the step and depth accounting. */
static ob_status exec_node(jctx *c, const jnode *s) {
    ob_status st = OB_OK;
    chat_val v;
    switch ((jn_kind)s->kind) {
    case JN_BODY:
        for (size_t i = 0; i < s->nkids && !st && !c->loop_ctl; i++)
            st = chat_jx_exec(c, s->kids[i]);
        break;
    case JN_TEXT: chat_text_add(c->out, s->val.u.s.p, s->val.u.s.n); break;
    case JN_OUTPUT:
        if (!(st = chat_jx_eval(c, s->a, &v))) chat_val_write_str(c->out, v);
        break;
    case JN_IF:
        if ((st = chat_jx_eval(c, s->a, &v))) break;
        if (chat_val_truthy(v))
            st = chat_jx_exec(c, s->body);
        else if (s->orelse)
            st = chat_jx_exec(c, s->orelse);
        break;
    case JN_FOR: st = exec_for(c, s); break;
    case JN_SET:
        if (!(st = chat_jx_eval(c, s->a, &v))) st = assign(c, s->b, v);
        break;
    case JN_SETBLOCK:
    case JN_FILTERBLOCK: st = exec_capture_block(c, s); break;
    case JN_WITH: st = exec_with(c, s); break;
    case JN_MACRO: st = exec_macro_def(c, s); break;
    case JN_CALLBLOCK: st = exec_callblock(c, s); break;
    case JN_BREAK: c->loop_ctl = 1; break;
    case JN_CONTINUE: c->loop_ctl = 2; break;
    default:
        return chat_jx_fail(c, s, OB_ERR_FORMAT, "internal: node %d is not a statement", s->kind);
    }
    if (!st && c->out->failed) return chat_jx_nomem(c, s);
    return st;
}

ob_status chat_jx_exec(jctx *c, const jnode *s) {
    ob_status st = chat_jx_step(c, s);
    if (st) return st;
    if (c->nest >= CHAT_JINJA_MAX_EVAL_DEPTH)
        return chat_jx_fail(c, s, OB_ERR_LIMIT, "template evaluation nested deeper than %d levels",
                            CHAT_JINJA_MAX_EVAL_DEPTH);
    c->nest++;
    st = exec_node(c, s);
    c->nest--;
    return st;
}

/* Calls a macro (or a call block's caller): binds parameters in a new scope, runs the body. */
ob_status chat_jx_call_macro(jctx *c, const jnode *at, chat_func *f, const jargs *args,
                             chat_val *out);
ob_status chat_jx_call_macro(jctx *c, const jnode *at, chat_func *f, const jargs *args,
                             chat_val *out) {
    const jnode *m = f->macro;
    char nm[64];
    snprintf(nm, sizeof nm, "%.*s", OB_STR_FMT(f->name));
    if (c->depth >= CHAT_JINJA_MAX_CALL_DEPTH)
        return chat_jx_fail(c, at, OB_ERR_LIMIT, "macro '%s': calls nested deeper than %d", nm,
                            CHAT_JINJA_MAX_CALL_DEPTH);
    if (args->npos > m->nkids)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "macro '%s' takes not more than %zu argument(s)",
                            nm, m->nkids);
    jscope *s = scope_new(c, f->closure), *saved = c->scope;
    if (!s) return chat_jx_nomem(c, at);
    c->scope = s;
    ob_status st = OB_OK;
    for (size_t i = 0; i < m->nkids && !st; i++) {
        chat_val v = chat_val_undef(NULL);
        bool have = i < args->npos;
        if (have) v = args->pos[i];
        for (size_t k = 0; k < args->nkw && !have; k++)
            if (ob_str_eq(args->kwn[k], m->names[i])) v = args->kwv[k], have = true;
        if (!have) {
            if (m->kids[i])
                st = chat_jx_eval(c, m->kids[i], &v);
            else
                v = chat_jx_undef(c, "parameter '%.*s' was not provided", OB_STR_FMT(m->names[i]));
        }
        if (!st) st = scope_set(c, at, s, m->names[i], v);
    }
    chat_val caller = f->self;
    for (size_t k = 0; k < args->nkw && !st; k++) {
        if (ob_str_eq_cstr(args->kwn[k], "caller")) {
            caller = args->kwv[k];
            continue;
        }
        bool known = false;
        for (size_t i = 0; i < m->nkids; i++)
            known |= ob_str_eq(args->kwn[k], m->names[i]);
        if (!known)
            st = chat_jx_fail(c, at, OB_ERR_FORMAT, "macro '%s' takes no keyword argument '%.*s'",
                              nm, OB_STR_FMT(args->kwn[k]));
    }
    if (!st && m->kind == JN_MACRO) st = scope_set(c, at, s, (ob_str){"caller", 6}, caller);
    c->depth++;
    if (!st) st = capture(c, m->body, out);
    c->depth--;
    c->scope = saved;
    return st;
}

/* ---- entry ----------------------------------------------------------------------------- */

/* The global functions every template sees, shadowed by variables of the same name. */
static const char *const BUILTINS[] = {"range",           "namespace",    "dict",
                                       "raise_exception", "strftime_now", NULL};

static ob_status add_builtins(jctx *c, jscope *s) {
    for (int i = 0; BUILTINS[i]; i++) {
        chat_func *f = chat_arena_alloc(c->a, sizeof *f);
        if (!f) return chat_jx_nomem(c, NULL);
        memset(f, 0, sizeof *f);
        f->kind = JF_BUILTIN;
        f->name = ob_str_from_cstr(BUILTINS[i]);
        f->builtin = i;
        chat_val v = {.type = CHAT_FUNC};
        v.u.fn = f;
        ob_status st = scope_set(c, NULL, s, f->name, v);
        if (st) return st;
    }
    return OB_OK;
}

ob_status chat_jinja_render(const chat_jinja *t, chat_arena *arena, chat_val vars,
                            const chat_jinja_opts *opts, const char **out, size_t *out_len,
                            ob_err *err) {
    jctx c = {.t = t, .a = arena, .err = err};
    c.now = opts && opts->now ? opts->now : (int64_t)time(NULL);
    c.max_steps = opts && opts->max_steps > 0 ? opts->max_steps : CHAT_JINJA_MAX_STEPS;
    c.max_seconds = opts && opts->max_seconds > 0 ? opts->max_seconds : CHAT_JINJA_MAX_SECONDS;
    /* Budgets past a year are a year: the deadline must not overflow. */
    double ns = (c.max_seconds < 3.2e7 ? c.max_seconds : 3.2e7) * 1e9;
    c.deadline_ns = now_ns() + (int64_t)ns;
    if (vars.type != CHAT_DICT)
        return chat_jx_fail(&c, NULL, OB_ERR_ARG, "variables must be a dict");
    jscope *builtins = scope_new(&c, NULL), *globals = builtins ? scope_new(&c, builtins) : NULL;
    if (!globals) return chat_jx_nomem(&c, NULL);
    ob_status st = add_builtins(&c, builtins);
    if (st) return st;
    for (size_t i = 0; i < vars.u.d->n; i++) {
        chat_val k = vars.u.d->keys[i];
        if (k.type != CHAT_STR) continue;
        if ((st = scope_set(&c, NULL, globals, (ob_str){k.u.s.p, k.u.s.n}, vars.u.d->vals[i])))
            return st;
    }
    chat_text buf;
    chat_text_init(&buf, arena);
    c.out = &buf;
    c.scope = c.globals = globals;
    if ((st = chat_jx_exec(&c, t->root))) return st;
    if (buf.failed) return chat_jx_nomem(&c, NULL);
    *out = buf.p ? buf.p : "";
    *out_len = buf.n;
    return OB_OK;
}

ob_status chat_jinja_parse(const char *src, size_t len, const char *name, chat_jinja **out,
                           ob_err *err) {
    *out = NULL;
    if (!name) name = "template";
    if (len > CHAT_JINJA_MAX_SOURCE)
        return ob_fail(err, OB_ERR_LIMIT, "%s: template of %zu bytes, limit %u", name, len,
                       CHAT_JINJA_MAX_SOURCE);
    /* The tree takes a few times the source for real templates, and at most about 128 bytes a
     * token for the densest (`[-1,-1,...]`): the token limit keeps that under the cap, which
     * backs it up. */
    chat_arena *a = chat_arena_new(CHAT_JINJA_MAX_PARSE_MEMORY);
    chat_jinja *t = a ? chat_arena_alloc(a, sizeof *t) : NULL;
    char *nm = t ? chat_arena_alloc(a, strlen(name) + 1) : NULL;
    if (!nm) {
        chat_arena_free(a);
        return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", name);
    }
    strcpy(nm, name);
    t->arena = a;
    t->name = nm;
    jtok_list toks;
    ob_status st = chat_jinja_lex(src, len, nm, a, &toks, err);
    if (!st) st = chat_jinja_build(&toks, nm, a, &t->root, err);
    ob_free(toks.toks);
    if (st) {
        chat_arena_free(a);
        return st;
    }
    *out = t;
    return OB_OK;
}

void chat_jinja_free(chat_jinja *t) {
    if (t) chat_arena_free(t->arena);
}
