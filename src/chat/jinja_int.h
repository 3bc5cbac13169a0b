/*
 * Internals of the Jinja interpreter shared by its files: tokens (jinja_lex.c), the syntax tree
 * (jinja_parse.c), the render context (jinja_eval.c, jinja_expr.c) and the filter, test and
 * method tables (jinja_filters.c, jinja_tests.c, jinja_methods.c). Not for use outside
 * src/chat/.
 */
#ifndef OB_CHAT_JINJA_INT_H
#define OB_CHAT_JINJA_INT_H

#include "chat/jinja.h"
#include "chat/value.h"
#include "core/err.h"
#include "core/str.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- tokens ---------------------------------------------------------------------------- */

typedef enum jtok_type {
    JT_EOF = 0,
    JT_TEXT,        /* template data between tags (already whitespace-trimmed) */
    JT_VAR_BEGIN,   /* {{ */
    JT_VAR_END,     /* }} */
    JT_BLOCK_BEGIN, /* {% */
    JT_BLOCK_END,   /* %} */
    JT_NAME,
    JT_STRING, /* decoded value in `str` */
    JT_INT,
    JT_FLOAT,
    JT_OP, /* text in `text` */
} jtok_type;

typedef struct jtok {
    jtok_type type;
    uint32_t line, col;
    ob_str text; /* the source bytes (TEXT: the data; STRING: the decoded value) */
    int64_t i;
    double f;
} jtok;

typedef struct jtok_list {
    jtok *toks; /* (n) tokens, the last one JT_EOF; owned (ob_free), since the tree does not
                 * refer to them and they are half of a template's parse memory */
    size_t n;
} jtok_list;

/* Splits a template into tokens with transformers' whitespace settings (trim_blocks,
 * lstrip_blocks). Decoded strings and the normalized source are made in `a` (the tree refers
 * to them); out->toks is new (ob_free it), NULL on error. OB_ERR_LIMIT past
 * CHAT_JINJA_MAX_TOKENS or CHAT_JINJA_MAX_PARSE_MEMORY, naming the line and column. */
ob_status chat_jinja_lex(const char *src, size_t len, const char *name, chat_arena *a,
                         jtok_list *out, ob_err *err);

/* ---- syntax tree ----------------------------------------------------------------------- */

typedef enum jn_kind {
    /* expressions */
    JN_CONST,   /* val */
    JN_NAME,    /* name */
    JN_LIST,    /* kids */
    JN_TUPLE,   /* kids */
    JN_DICT,    /* kids: key, value, key, value ... */
    JN_GETATTR, /* a.name */
    JN_GETITEM, /* a[b] */
    JN_SLICE,   /* a[b:c:d], each of b c d may be NULL */
    JN_CALL,    /* a(kids), names[i] set for keyword arguments */
    JN_FILTER,  /* a | name(kids); a NULL inside {% filter %} */
    JN_TEST,    /* a is [not] name(kids); op = 1 for `is not` */
    JN_UNARY,   /* op a: JOP_NOT, JOP_NEG, JOP_POS */
    JN_BINOP,   /* a op b */
    JN_AND,
    JN_OR,
    JN_COND, /* a if b else c (c may be NULL) */
    /* statements */
    JN_BODY,        /* kids */
    JN_TEXT,        /* val */
    JN_OUTPUT,      /* {{ a }} */
    JN_IF,          /* if a: body else: orelse (an elif is an IF inside orelse) */
    JN_FOR,         /* for b in a [if c]: body else: orelse */
    JN_SET,         /* set b = a */
    JN_SETBLOCK,    /* set b: body, then filter a (a JN_FILTER chain with a NULL input, or NULL) */
    JN_MACRO,       /* macro name(names = kids defaults, NULL where none): body */
    JN_CALLBLOCK,   /* call(names = kids) a: body */
    JN_FILTERBLOCK, /* filter a: body */
    JN_WITH,        /* with names = kids: body, in a new scope */
    JN_BREAK,
    JN_CONTINUE,
} jn_kind;

typedef enum jop {
    JOP_NONE = 0,
    JOP_ADD,
    JOP_SUB,
    JOP_MUL,
    JOP_DIV,
    JOP_FLOORDIV,
    JOP_MOD,
    JOP_POW,
    JOP_CONCAT,
    JOP_EQ,
    JOP_NE,
    JOP_LT,
    JOP_LE,
    JOP_GT,
    JOP_GE,
    JOP_IN,
    JOP_NOTIN,
    JOP_NOT,
    JOP_NEG,
    JOP_POS,
} jop;

typedef struct jnode jnode;
struct jnode {
    uint8_t kind;   /* jn_kind */
    uint8_t op;     /* jop, or a flag as noted above */
    uint16_t depth; /* expressions: 1 + the deepest operand (<= CHAT_JINJA_MAX_NESTING) */
    uint32_t line, col;
    chat_val val;
    ob_str name;
    jnode *a, *b, *c, *d;
    jnode *body, *orelse;
    jnode **kids;
    ob_str *names; /* (nkids) keyword names or parameter names; NULL entries (ptr) = none */
    size_t nkids;
};

struct chat_jinja {
    chat_arena *arena; /* tokens, tree and source copy */
    char *name;        /* for messages (NUL-terminated, in arena) */
    jnode *root;
};

/* Builds the tree from tokens into `a`. */
ob_status chat_jinja_build(const jtok_list *toks, const char *name, chat_arena *a, jnode **root,
                           ob_err *err);

/* ---- parser internals (jinja_parse.c: expressions, jinja_stmt.c: statements) ----------- */

typedef struct jparser {
    const jtok *t; /* (n) tokens, the last JT_EOF */
    size_t n, i;
    chat_arena *a;
    const char *name;
    ob_err *err;
    int depth;        /* expression parse functions in progress that nest (brackets, unary) */
    int blocks;       /* block bodies in progress */
    bool failed;      /* an error is already written; later ones keep the first */
    ob_status status; /* the first error's status */
    /* Unknown filters and tests are an error at parse time only outside an if statement or a
     * conditional expression (jinja2's "soft" frames); inside one they fail when evaluated.
     * soft: such a frame is being parsed; pending: the first unknown name met outside one,
     * held until the statement ends, since a conditional expression learns it is one only
     * after its first operand. */
    bool soft;
    const jtok *pending;
    char pending_what[96];
} jparser;

/* An unknown filter or test named in `what` ("filter 'x'") at t: an error at the end of the
 * statement unless a soft frame covers it. */
void chat_jp_unknown_name(jparser *P, const jtok *t, const char *what, ob_str name);

/* A growable child list, copied into its node by chat_jp_kids_store. */
typedef struct jkids {
    jnode *small[16];
    ob_str small_names[16];
    jnode **v;
    ob_str *names;
    size_t n, cap;
} jkids;

const jtok *chat_jp_cur(jparser *P);
const jtok *chat_jp_peek(jparser *P, size_t k);
ob_status chat_jp_pfail_at(jparser *P, const jtok *t, const char *fmt, const char *arg);
ob_status chat_jp_unexpected(jparser *P, const char *expected);
bool chat_jp_is_op(const jtok *t, const char *op);
bool chat_jp_is_name(const jtok *t, const char *nm);
bool chat_jp_skip_op(jparser *P, const char *op);
bool chat_jp_skip_name(jparser *P, const char *nm);
ob_status chat_jp_expect_op(jparser *P, const char *op);
jnode *chat_jp_node(jparser *P, jn_kind kind, const jtok *at);
/* Sets an expression node's depth from its operands (a b c d and kids) once they are in place;
 * NULL with "expression nested deeper than N" at the node when past CHAT_JINJA_MAX_NESTING.
 * Every recursive walk of the tree (evaluation) is bounded by that. NULL in, NULL out. */
jnode *chat_jp_deepen(jparser *P, jnode *n);
/* The parse error for an allocation that failed: OB_ERR_LIMIT naming the parse memory cap and
 * the token's line:column when the arena is over it, else OB_ERR_NOMEM. */
void chat_jp_nomem(jparser *P);
void chat_jp_kids_init(jkids *k);
bool chat_jp_kids_push(jparser *P, jkids *k, jnode *x, ob_str nm);
bool chat_jp_kids_store(jparser *P, jkids *k, jnode *into);
jnode *chat_jp_parse_expr(jparser *P, bool with_cond);
/* for_target: names only, stopping at `in`. */
jnode *chat_jp_parse_tuple(jparser *P, bool with_cond, bool for_target);
/* Filters after `|` (or, with start_inline, a filter name right away as in {% filter %}). */
jnode *chat_jp_parse_filter(jparser *P, jnode *e, bool start_inline);
bool chat_jp_parse_call_args(jparser *P, jnode *into);

/* ---- rendering ------------------------------------------------------------------------- */

typedef struct jscope jscope;
struct jscope {
    jscope *parent;
    chat_dict vars;
};

typedef enum jfn_kind {
    JF_BUILTIN, /* a global function: range, namespace, dict, raise_exception, ... */
    JF_MACRO,
    JF_METHOD, /* self.name(...) on a str, list or dict */
    JF_CYCLE,  /* loop.cycle */
} jfn_kind;

struct chat_func {
    jfn_kind kind;
    ob_str name;
    chat_val self;      /* JF_METHOD: the object; JF_MACRO: the `caller` passed, or undef */
    const jnode *macro; /* JF_MACRO: the JN_MACRO or JN_CALLBLOCK node */
    jscope *closure;    /* JF_MACRO: the scope it was defined in */
    int builtin;        /* JF_BUILTIN: which one */
    chat_loop *loop;    /* JF_CYCLE */
};

struct chat_loop {
    chat_list *items;
    size_t index0;
    int64_t depth;
};

/* Arguments of one call: positional first, then keywords. */
typedef struct jargs {
    chat_val *pos;
    size_t npos;
    const ob_str *kwn;
    chat_val *kwv;
    size_t nkw;
} jargs;

/* A string made by `~` or `+` whose buffer has room after it: the next concatenation onto that
 * exact string appends in place instead of copying, so `{% set s = s ~ x %}` in a loop is
 * linear, not quadratic. Strings are immutable views, and the bytes after `n` are written by
 * no one else, so other holders of the shorter string never see the change. */
typedef struct jgrow {
    char *p;
    size_t n, cap;
} jgrow;

#define JX_GROW_SLOTS 4 /* strings growing at once (a few accumulators in one loop) */

typedef struct jctx {
    const chat_jinja *t;
    chat_arena *a;
    ob_err *err;
    jscope *scope;
    jscope *globals;
    chat_text *out;
    int64_t steps, max_steps;
    int depth;    /* macro calls in progress */
    int nest;     /* chat_jx_eval / chat_jx_exec frames in progress */
    int loop_ctl; /* 1 = break, 2 = continue, pending */
    int64_t now;
    double max_seconds;
    int64_t deadline_ns; /* CLOCK_MONOTONIC time at which the render gives up */
    size_t work;         /* bytes charged by chat_jx_work since the clock was last read */
    jgrow grow[JX_GROW_SLOTS];
    unsigned grow_next;
} jctx;

/* Writes "NAME:LINE:COL: message" (at `at`, which may be NULL) and returns st. */
ob_status chat_jx_fail(jctx *c, const jnode *at, ob_status st, const char *fmt, ...)
    OB_PRINTF(4, 5);
/* The step-limit error (a template that runs too long). */
ob_status chat_jx_step_limit(jctx *c, const jnode *at);
/* OB_ERR_LIMIT "template rendering took longer than X s" once the deadline has passed. */
ob_status chat_jx_check_clock(jctx *c, const jnode *at);

/* Keeps a helper's locals out of the recursive evaluator's frames (chat_jx_eval, chat_jx_exec):
 * the stack one level of template nesting takes is what CHAT_JINJA_MAX_EVAL_DEPTH multiplies,
 * and inlined helpers would add all their locals to every level. */
#define JX_NOINLINE __attribute__((noinline))

/* Counts one step (each statement and expression evaluated) at `at`: the step limit, and every
 * 1024 steps the wall clock (a clock read costs about as much as a few dozen steps). */
static inline ob_status chat_jx_step(jctx *c, const jnode *at) {
    if (++c->steps > c->max_steps) return chat_jx_step_limit(c, at);
    if ((c->steps & 1023) == 0) return chat_jx_check_clock(c, at);
    return OB_OK;
}

/* Charges the size of a value one step works over: operators, filters, tests, methods, slices
 * and loops call it with their operands, and every 64 MiB charged reads the clock. One step can
 * scan a string of hundreds of megabytes (s.find(x) repeated in a loop allocates nothing, so
 * the memory cap does not stop it); counted in steps alone, 1024 of them could outrun the
 * budget by minutes. */
static inline ob_status chat_jx_work(jctx *c, const jnode *at, chat_val v) {
    size_t bytes = v.type == CHAT_STR    ? v.u.s.n
                   : v.type == CHAT_LIST ? v.u.l->n * sizeof(chat_val)
                   : v.type == CHAT_DICT ? v.u.d->n * 2 * sizeof(chat_val)
                                         : 0;
    if ((c->work += bytes) < (64u << 20)) return OB_OK;
    c->work = 0;
    return chat_jx_check_clock(c, at);
}
/* The out-of-memory error (over the memory cap: OB_ERR_LIMIT). */
ob_status chat_jx_nomem(jctx *c, const jnode *at);

ob_status chat_jx_eval(jctx *c, const jnode *e, chat_val *out);
ob_status chat_jx_exec(jctx *c, const jnode *s);
ob_status chat_jx_call(jctx *c, const jnode *at, chat_val fn, const jargs *args, chat_val *out);

/* An argument by position or keyword name; `def` when absent. */
chat_val chat_jx_arg(const jargs *args, size_t pos, const char *kw, chat_val def);
/* str(v) as a new string value. */
ob_status chat_jx_to_str(jctx *c, const jnode *at, chat_val v, chat_val *out);
/* Python's obj.name / obj[key] as jinja2's environment does them; missing gives undefined. */
ob_status chat_jx_getattr(jctx *c, const jnode *at, chat_val obj, ob_str name, chat_val *out);
ob_status chat_jx_getitem(jctx *c, const jnode *at, chat_val obj, chat_val key, chat_val *out);
/* The values a for loop visits (list items, dict keys, string characters). */
ob_status chat_jx_iterate(jctx *c, const jnode *at, chat_val v, chat_list **out);
/* Fails with the undefined value's message when v is undefined (for uses jinja2 refuses). */
ob_status chat_jx_check_defined(jctx *c, const jnode *at, chat_val v);
/* Makes an undefined value whose message is the formatted text. */
chat_val chat_jx_undef(jctx *c, const char *fmt, ...) OB_PRINTF(2, 3);
/* Binary operators (arithmetic, comparisons, membership). */
ob_status chat_jx_binop(jctx *c, const jnode *at, int op, chat_val x, chat_val y, chat_val *out);
/* Python == (*out), failing with OB_ERR_LIMIT for values nested past CHAT_VAL_MAX_DEPTH. */
ob_status chat_jx_equal(jctx *c, const jnode *at, chat_val x, chat_val y, bool *out);
/* The error for chat_val_compare's failure r on x and y: unorderable types or too deep. */
ob_status chat_jx_compare_fail(jctx *c, const jnode *at, int r, const char *op, chat_val x,
                               chat_val y);

/* Filters, tests, methods: each returns OB_ERR_FORMAT naming an unknown name. */
ob_status chat_jx_filter(jctx *c, const jnode *at, ob_str name, chat_val in, const jargs *args,
                         chat_val *out);
bool chat_jx_filter_exists(ob_str name);
ob_status chat_jx_test(jctx *c, const jnode *at, ob_str name, chat_val in, const jargs *args,
                       bool *out);
bool chat_jx_test_exists(ob_str name);
/* 1 when `name` is a method of obj's type (then *is is set), else 0. */
bool chat_jx_method_exists(chat_val obj, ob_str name);
ob_status chat_jx_method(jctx *c, const jnode *at, chat_val self, ob_str name, const jargs *args,
                         chat_val *out);

/* ---- string helpers (jinja_str.c) ------------------------------------------------------ */

/* Number of code points in a UTF-8 string. */
size_t chat_jx_utf8_len(const char *p, size_t n);
/* Byte offset of code point `idx` (clamped to n). */
size_t chat_jx_utf8_offset(const char *p, size_t n, size_t idx);
/* Python's str.strip/lstrip/rstrip: chars NULL means whitespace. which: 1 left, 2 right. */
chat_val chat_jx_strip(chat_val s, const chat_val *chars, int which);
/* upper / lower / title / capitalize into a new string. */
chat_val chat_jx_case(chat_arena *a, chat_val s, int how);
enum { JX_UPPER, JX_LOWER, JX_TITLE, JX_CAPITALIZE };
/* s.replace(old, new, count) (count < 0: all). */
chat_val chat_jx_replace(chat_arena *a, chat_val s, chat_val old, chat_val neu, int64_t count);
/* s.split(sep, maxsplit) (sep undefined/none: runs of whitespace); rsplit when from_right. */
chat_val chat_jx_split(chat_arena *a, chat_val s, chat_val sep, int64_t maxsplit, bool from_right);
/* Byte offset of the last occurrence of needle[0..k) in hay[0..n): -1 when absent, -2 when out
 * of memory. Linear time (a backward scan comparing k bytes at each offset would be O(n*k)). */
int64_t chat_jx_rfind(chat_arena *a, const char *hay, size_t n, const char *needle, size_t k);
bool chat_jx_is_space(uint32_t cp);

#endif
