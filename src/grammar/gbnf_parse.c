/*
 * GBNF (the grammar dialect llama.cpp reads) -> a compiled grammar (grammar.h).
 *
 *     root  ::= "{" ws pair (ws "," ws pair)* ws "}"   # a comment
 *     pair  ::= [a-z]+ ws ":" ws ("true" | "false")
 *     ws    ::= [ \t\n]{0,4}
 *
 * A rule is `name ::= alternatives`, ended by a newline outside parentheses. Items: string
 * literals with escapes (\n \t \r \\ \" \[ \] \/ \xHH \uHHHH \UHHHHHHHH), character classes
 * with ranges and ^ negation, `.` for any character, rule names, groups, the postfix
 * operators * + ? {m} {m,} {m,n}, and token elements as llama.cpp reads them: <[42]> (token
 * 42), <|im_end|> (the one token whose text, brackets included, is that), and !<...> (any one
 * token but that one). Every error names line:column of the source. Repetitions
 * become helper rules here, so the matcher sees only sequences, alternatives and references.
 */
#include "grammar/grammar.h"

#include "core/alloc.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

typedef struct ebuf {
    gram_elem *v;
    size_t n, cap;
} ebuf;

typedef struct prule {
    char *name; /* owned */
    bool defined;
    size_t ref_at; /* offset of the first reference, for "undefined rule" */
    ebuf body;     /* alternatives, each ended by GRAM_END */
} prule;

typedef struct parser {
    const char *s;
    size_t len, i;
    prule *rules;
    size_t n_rules, cap_rules;
    gram_class *classes;
    size_t n_classes, cap_classes;
    gram_range *ranges;
    size_t n_ranges, cap_ranges;
    gram_token *tokens;
    size_t n_tokens, cap_tokens;
    size_t n_elems; /* over all rules, against GRAM_MAX_ELEMS */
    int depth;
    ob_err *err;
    ob_status st; /* first failure */
} parser;

/* ---- errors and buffers ---------------------------------------------------------------- */

static void where(const parser *p, size_t at, size_t *line, size_t *col) {
    *line = 1;
    *col = 1;
    for (size_t k = 0; k < at && k < p->len; k++) {
        if (p->s[k] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Records the first failure at offset `at`: "grammar:LINE:COL: what". Returns -1. */
static int fail_at(parser *p, size_t at, ob_status st, const char *what) {
    if (p->st) return -1;
    size_t line, col;
    where(p, at, &line, &col);
    p->st = ob_fail(p->err, st, "grammar:%zu:%zu: %s", line, col, what);
    return -1;
}

static int nomem(parser *p) { return fail_at(p, p->i, OB_ERR_NOMEM, "out of memory"); }

static bool grow(void **v, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need) c *= 2;
    void *g = ob_realloc(*v, c, size);
    if (!g) return false;
    *v = g;
    *cap = c;
    return true;
}

static int emit(parser *p, ebuf *b, gram_op op, uint32_t arg) {
    if (++p->n_elems > GRAM_MAX_ELEMS) {
        char m[96];
        snprintf(m, sizeof m, "grammar too large: over %u elements", GRAM_MAX_ELEMS);
        return fail_at(p, p->i, OB_ERR_LIMIT, m);
    }
    if (!grow((void **)&b->v, &b->cap, b->n + 1, sizeof *b->v)) return nomem(p);
    b->v[b->n++] = (gram_elem){op, arg};
    return 0;
}

static int emit_all(parser *p, ebuf *b, const ebuf *src) {
    for (size_t k = 0; k < src->n; k++)
        if (emit(p, b, src->v[k].op, src->v[k].arg)) return -1;
    return 0;
}

/* A new class with room for ranges added by class_range; returns its id or -1. */
static int64_t class_new(parser *p, bool negated) {
    if (!grow((void **)&p->classes, &p->cap_classes, p->n_classes + 1, sizeof *p->classes))
        return nomem(p);
    p->classes[p->n_classes] = (gram_class){(uint32_t)p->n_ranges, 0, negated};
    return (int64_t)p->n_classes++;
}

static int class_range(parser *p, uint32_t lo, uint32_t hi) {
    if (!grow((void **)&p->ranges, &p->cap_ranges, p->n_ranges + 1, sizeof *p->ranges))
        return nomem(p);
    p->ranges[p->n_ranges++] = (gram_range){lo, hi};
    p->classes[p->n_classes - 1].n++;
    return 0;
}

static int64_t rule_new(parser *p, const char *s, size_t n, size_t at);

/* The id of the rule named s[0..n), made (undefined) when new; -1 on no memory. */
static int64_t rule_id(parser *p, const char *s, size_t n, size_t at) {
    for (size_t r = 0; r < p->n_rules; r++)
        if (strlen(p->rules[r].name) == n && !memcmp(p->rules[r].name, s, n)) return (int64_t)r;
    return rule_new(p, s, n, at);
}

static int64_t rule_new(parser *p, const char *s, size_t n, size_t at) {
    if (!grow((void **)&p->rules, &p->cap_rules, p->n_rules + 1, sizeof *p->rules))
        return nomem(p);
    char *name = ob_alloc(n + 1, 1);
    if (!name) return nomem(p);
    memcpy(name, s, n);
    name[n] = 0;
    p->rules[p->n_rules] = (prule){.name = name, .ref_at = at};
    return (int64_t)p->n_rules++;
}

/* A helper rule for a group or repetition inside rule `parent`: "parent/K", a name no rule of
 * the source can have ('/' is not a name character), so it never meets a user's rule. */
static int64_t rule_helper(parser *p, uint32_t parent) {
    char name[320];
    snprintf(name, sizeof name, "%.256s/%zu", p->rules[parent].name, p->n_rules);
    int64_t id = rule_new(p, name, strlen(name), p->i);
    if (id >= 0) p->rules[id].defined = true;
    return id;
}

/* ---- lexing ------------------------------------------------------------------------------ */

static bool word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* Skips blanks and comments; newlines too when newline_ok (inside parentheses, between rules). */
static void skip_space(parser *p, bool newline_ok) {
    while (p->i < p->len) {
        char c = p->s[p->i];
        if (c == ' ' || c == '\t') {
            p->i++;
        } else if (c == '#') {
            while (p->i < p->len && p->s[p->i] != '\n') p->i++;
        } else if (newline_ok && (c == '\n' || c == '\r')) {
            p->i++;
        } else {
            break;
        }
    }
}

static int hex_digits(parser *p, int n, uint32_t *cp) {
    uint32_t v = 0;
    for (int k = 0; k < n; k++) {
        char c = p->i < p->len ? p->s[p->i] : 0;
        int d = c >= '0' && c <= '9' ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return fail_at(p, p->i, OB_ERR_FORMAT, "expected a hexadecimal digit");
        v = v * 16 + (uint32_t)d;
        p->i++;
    }
    if (v > 0x10FFFF) return fail_at(p, p->i, OB_ERR_FORMAT, "code point above U+10FFFF");
    *cp = v;
    return 0;
}

/* One character of a literal or class: an escape or one UTF-8 code point. */
static int read_char(parser *p, uint32_t *cp) {
    if (p->i >= p->len) return fail_at(p, p->i, OB_ERR_FORMAT, "unexpected end of grammar");
    unsigned char c = (unsigned char)p->s[p->i];
    if (c == '\\') {
        size_t at = p->i++;
        char e = p->i < p->len ? p->s[p->i++] : 0;
        switch (e) {
        case 'x': return hex_digits(p, 2, cp);
        case 'u': return hex_digits(p, 4, cp);
        case 'U': return hex_digits(p, 8, cp);
        case 'n': *cp = '\n'; return 0;
        case 'r': *cp = '\r'; return 0;
        case 't': *cp = '\t'; return 0;
        case '\\': case '"': case '[': case ']': case '/': case '-': case '^':
            *cp = (uint32_t)e;
            return 0;
        default: return fail_at(p, at, OB_ERR_FORMAT, "unknown escape");
        }
    }
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!n || p->i + n > p->len) return fail_at(p, p->i, OB_ERR_FORMAT, "invalid UTF-8");
    uint32_t v = n == 1 ? c : c & (0x7F >> n);
    for (size_t k = 1; k < n; k++) {
        unsigned char b = (unsigned char)p->s[p->i + k];
        if ((b & 0xC0) != 0x80) return fail_at(p, p->i, OB_ERR_FORMAT, "invalid UTF-8");
        v = (v << 6) | (b & 0x3F);
    }
    p->i += n;
    *cp = v;
    return 0;
}

/* ---- items ------------------------------------------------------------------------------- */

static int parse_alternates(parser *p, uint32_t rule, ebuf *out, bool nested);

static int parse_literal(parser *p, ebuf *item) {
    size_t at = p->i++;
    while (p->i < p->len && p->s[p->i] != '"') {
        uint32_t cp;
        if (read_char(p, &cp)) return -1;
        int64_t c = class_new(p, false);
        if (c < 0 || class_range(p, cp, cp) || emit(p, item, GRAM_CLASS, (uint32_t)c)) return -1;
    }
    if (p->i >= p->len) return fail_at(p, at, OB_ERR_FORMAT, "unterminated string literal");
    p->i++;
    return 0;
}

static int parse_class(parser *p, ebuf *item) {
    size_t at = p->i++;
    bool neg = p->i < p->len && p->s[p->i] == '^';
    if (neg) p->i++;
    int64_t c = class_new(p, neg);
    if (c < 0) return -1;
    while (p->i < p->len && p->s[p->i] != ']') {
        uint32_t lo, hi;
        if (read_char(p, &lo)) return -1;
        hi = lo;
        if (p->i + 1 < p->len && p->s[p->i] == '-' && p->s[p->i + 1] != ']') {
            p->i++;
            if (read_char(p, &hi)) return -1;
            if (hi < lo) return fail_at(p, p->i, OB_ERR_FORMAT, "range end below its start");
        }
        if (class_range(p, lo, hi)) return -1;
    }
    if (p->i >= p->len) return fail_at(p, at, OB_ERR_FORMAT, "unterminated character class");
    p->i++;
    return emit(p, item, GRAM_CLASS, (uint32_t)c);
}

static int parse_group(parser *p, uint32_t rule, ebuf *item) {
    size_t at = p->i++;
    if (++p->depth > GRAM_MAX_DEPTH)
        return fail_at(p, at, OB_ERR_LIMIT, "groups nested too deeply");
    int64_t h = rule_helper(p, rule);
    if (h < 0) return -1;
    ebuf body = {0};
    skip_space(p, true);
    int rc = parse_alternates(p, rule, &body, true);
    p->rules[h].body = body;
    p->depth--;
    if (rc) return -1;
    if (p->i >= p->len || p->s[p->i] != ')')
        return fail_at(p, at, OB_ERR_FORMAT, "unclosed '(': expected ')'");
    p->i++;
    return emit(p, item, GRAM_REF, (uint32_t)h);
}

/* A token element at p->i: <[id]>, <text> or either after '!'. The text keeps its brackets, as
 * llama.cpp tokenizes the whole "<...>" with special tokens enabled. */
static int parse_token(parser *p, ebuf *item) {
    size_t at = p->i;
    bool negated = p->s[p->i] == '!';
    if (negated && (++p->i >= p->len || p->s[p->i] != '<'))
        return fail_at(p, p->i, OB_ERR_FORMAT, "expected '<' after '!' (a token element)");
    size_t open = p->i++;
    gram_token tk = {.id = -1};
    if (p->i < p->len && p->s[p->i] == '[') {
        p->i++;
        size_t digits = p->i;
        uint64_t id = 0;
        while (p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '9' && id <= INT32_MAX)
            id = id * 10 + (uint64_t)(p->s[p->i++] - '0');
        if (p->i == digits) return fail_at(p, p->i, OB_ERR_FORMAT, "expected a token id after '<['");
        if (id > INT32_MAX) return fail_at(p, digits, OB_ERR_LIMIT, "token id too large");
        if (p->i + 1 >= p->len || p->s[p->i] != ']' || p->s[p->i + 1] != '>')
            return fail_at(p, p->i, OB_ERR_FORMAT, "expected ']>' after the token id");
        p->i += 2;
        tk.id = (int64_t)id;
    } else {
        while (p->i < p->len && p->s[p->i] != '>' && p->s[p->i] != '\n') p->i++;
        if (p->i >= p->len || p->s[p->i] != '>')
            return fail_at(p, open, OB_ERR_FORMAT, "unterminated token element: expected '>'");
        p->i++;
        if (p->i - open == 2) return fail_at(p, open, OB_ERR_FORMAT, "empty token element '<>'");
        tk.len = (uint32_t)(p->i - open);
        if (!(tk.text = ob_alloc(tk.len + 1, 1))) return nomem(p);
        memcpy(tk.text, p->s + open, tk.len);
        tk.text[tk.len] = 0;
    }
    size_t line, col;
    where(p, at, &line, &col);
    tk.line = (uint32_t)line;
    tk.col = (uint32_t)col;
    if (!grow((void **)&p->tokens, &p->cap_tokens, p->n_tokens + 1, sizeof *p->tokens)) {
        ob_free(tk.text);
        return nomem(p);
    }
    p->tokens[p->n_tokens] = tk;
    return emit(p, item, negated ? GRAM_TOKEN_NOT : GRAM_TOKEN, (uint32_t)p->n_tokens++);
}

static int parse_primary(parser *p, uint32_t rule, ebuf *item) {
    char c = p->s[p->i];
    if (c == '"') return parse_literal(p, item);
    if (c == '<' || c == '!') return parse_token(p, item);
    if (c == '[') return parse_class(p, item);
    if (c == '(') return parse_group(p, rule, item);
    if (c == '.') {
        p->i++;
        int64_t k = class_new(p, true);
        return k < 0 ? -1 : emit(p, item, GRAM_CLASS, (uint32_t)k);
    }
    if (!word_char(c)) {
        char m[64];
        snprintf(m, sizeof m, "unexpected character '%c'", c >= 32 && c < 127 ? c : '?');
        return fail_at(p, p->i, OB_ERR_FORMAT, m);
    }
    size_t at = p->i;
    while (p->i < p->len && word_char(p->s[p->i])) p->i++;
    int64_t r = rule_id(p, p->s + at, p->i - at, at);
    return r < 0 ? -1 : emit(p, item, GRAM_REF, (uint32_t)r);
}

/* ---- repetition ----------------------------------------------------------------------- */

/* x as one element: a single element stays, a longer run becomes a helper rule. */
static int single(parser *p, uint32_t rule, ebuf *item, gram_elem *x) {
    if (item->n == 1) {
        *x = item->v[0];
        return 0;
    }
    int64_t h = rule_helper(p, rule);
    if (h < 0 || emit_all(p, &p->rules[h].body, item) || emit(p, &p->rules[h].body, GRAM_END, 0))
        return -1;
    *x = (gram_elem){GRAM_REF, (uint32_t)h};
    return 0;
}

/* R ::= x R | ""  (star) or  R ::= x next | ""  (one optional link of x{m,n}). */
static int64_t rule_loop(parser *p, uint32_t rule, gram_elem x, int64_t next, bool star) {
    int64_t h = rule_helper(p, rule);
    if (h < 0) return -1;
    ebuf *b = &p->rules[h].body;
    if (emit(p, b, x.op, x.arg) ||
        (star && emit(p, b, GRAM_REF, (uint32_t)h)) ||
        (!star && next >= 0 && emit(p, b, GRAM_REF, (uint32_t)next)) || emit(p, b, GRAM_END, 0) ||
        emit(p, b, GRAM_END, 0))
        return -1;
    return h;
}

static int read_count(parser *p, uint64_t *v) {
    size_t at = p->i;
    *v = 0;
    while (p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
        *v = *v * 10 + (uint64_t)(p->s[p->i++] - '0');
        if (*v > GRAM_MAX_REPEAT) {
            char m[80];
            snprintf(m, sizeof m, "repetition count over the limit of %d", GRAM_MAX_REPEAT);
            return fail_at(p, at, OB_ERR_LIMIT, m);
        }
    }
    return p->i == at ? fail_at(p, at, OB_ERR_FORMAT, "expected a number") : 0;
}

/* {m}, {m,}, {m,n} after an item: *max = UINT64_MAX for no bound. */
static int parse_braces(parser *p, uint64_t *min, uint64_t *max) {
    size_t at = p->i++;
    skip_space(p, true);
    if (read_count(p, min)) return -1;
    skip_space(p, true);
    *max = *min;
    if (p->i < p->len && p->s[p->i] == ',') {
        p->i++;
        skip_space(p, true);
        *max = UINT64_MAX;
        if (p->i < p->len && p->s[p->i] != '}' && read_count(p, max)) return -1;
        skip_space(p, true);
    }
    if (p->i >= p->len || p->s[p->i] != '}')
        return fail_at(p, at, OB_ERR_FORMAT, "unclosed '{': expected '}'");
    p->i++;
    if (*max < *min) return fail_at(p, at, OB_ERR_FORMAT, "{m,n} with n below m");
    return 0;
}

/* Appends item with its postfix operator (if any) to out. */
static int parse_postfix(parser *p, uint32_t rule, ebuf *item, ebuf *out) {
    char op = p->i < p->len ? p->s[p->i] : 0;
    uint64_t min, max;
    if (op == '*' || op == '+' || op == '?') {
        p->i++;
        min = op == '+' ? 1 : 0;
        max = op == '?' ? 1 : UINT64_MAX;
    } else if (op == '{') {
        if (parse_braces(p, &min, &max)) return -1;
    } else {
        return emit_all(p, out, item);
    }
    if (item->n == 0) return 0; /* "" repeated is still "" */
    gram_elem x;
    if (single(p, rule, item, &x)) return -1;
    for (uint64_t k = 0; k < min; k++)
        if (emit(p, out, x.op, x.arg)) return -1;
    int64_t tail = -1;
    if (max == UINT64_MAX) {
        tail = rule_loop(p, rule, x, -1, true);
    } else {
        for (uint64_t k = min; k < max; k++) /* built from the last link back */
            if ((tail = rule_loop(p, rule, x, tail, false)) < 0) return -1;
    }
    if (max != min && tail < 0) return -1;
    return tail >= 0 ? emit(p, out, GRAM_REF, (uint32_t)tail) : 0;
}

/* ---- sequences, alternatives, rules ------------------------------------------------------ */

static int parse_sequence(parser *p, uint32_t rule, ebuf *out, bool nested) {
    for (;;) {
        skip_space(p, nested);
        if (p->i >= p->len) return 0;
        char c = p->s[p->i];
        if (c == '|' || c == ')' || c == '\n' || c == '\r') return 0;
        ebuf item = {0};
        int rc = parse_primary(p, rule, &item);
        if (!rc) rc = parse_postfix(p, rule, &item, out);
        ob_free(item.v);
        if (rc) return -1;
    }
}

static int parse_alternates(parser *p, uint32_t rule, ebuf *out, bool nested) {
    for (;;) {
        if (parse_sequence(p, rule, out, nested) || emit(p, out, GRAM_END, 0)) return -1;
        if (p->i >= p->len || p->s[p->i] != '|') return 0;
        p->i++;
        skip_space(p, true);
    }
}

static int parse_rule(parser *p) {
    size_t at = p->i;
    while (p->i < p->len && word_char(p->s[p->i])) p->i++;
    if (p->i == at) return fail_at(p, at, OB_ERR_FORMAT, "expected a rule name");
    size_t name_end = p->i;
    skip_space(p, false);
    if (p->len - p->i < 3 || memcmp(p->s + p->i, "::=", 3))
        return fail_at(p, p->i, OB_ERR_FORMAT, "expected '::=' after the rule name");
    int64_t r = rule_id(p, p->s + at, name_end - at, at);
    if (r < 0) return -1;
    if (p->rules[r].defined) {
        char m[320];
        snprintf(m, sizeof m, "rule '%.256s' is defined twice", p->rules[r].name);
        return fail_at(p, at, OB_ERR_FORMAT, m);
    }
    p->rules[r].defined = true;
    p->i += 3;
    skip_space(p, true);
    ebuf body = {0};
    int rc = parse_alternates(p, (uint32_t)r, &body, false);
    p->rules[r].body = body;
    if (rc) return -1;
    if (p->i < p->len && p->s[p->i] != '\n' && p->s[p->i] != '\r')
        return fail_at(p, p->i, OB_ERR_FORMAT, "expected a newline or the end after the rule");
    return 0;
}

/* ---- checks and layout ------------------------------------------------------------------ */

/* nullable[r]: rule r can match the empty string (a fixpoint over all rules). */
static void find_nullable(const parser *p, bool *nullable) {
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t r = 0; r < p->n_rules; r++) {
            if (nullable[r]) continue;
            const ebuf *b = &p->rules[r].body;
            bool alt_null = true;
            for (size_t k = 0; k < b->n && !nullable[r]; k++) {
                const gram_elem *e = &b->v[k];
                if (e->op == GRAM_END) {
                    if (alt_null) nullable[r] = changed = true;
                    alt_null = true;
                } else if (e->op != GRAM_REF || !nullable[e->arg]) {
                    alt_null = false;
                }
            }
        }
    }
}

/* Depth-first search over "rule r may start with rule s" edges; a rule met again while still
 * on the path is left-recursive, which a top-down matcher would expand for ever. */
static int left_dfs(parser *p, const bool *nullable, uint8_t *mark, uint32_t r) {
    mark[r] = 1;
    const ebuf *b = &p->rules[r].body;
    bool at_start = true;
    for (size_t k = 0; k < b->n; k++) {
        const gram_elem *e = &b->v[k];
        if (e->op == GRAM_END) {
            at_start = true;
            continue;
        }
        if (!at_start) continue;
        if (e->op != GRAM_REF) { /* a class or a token consumes input */
            at_start = false;
            continue;
        }
        if (mark[e->arg] == 1) {
            char m[700];
            snprintf(m, sizeof m,
                     "rule '%.200s' is left-recursive: it reaches '%.200s' again before "
                     "consuming input (a repetition of something that can match nothing does "
                     "this too)",
                     p->rules[r].name, p->rules[e->arg].name);
            return fail_at(p, p->rules[e->arg].ref_at, OB_ERR_FORMAT, m);
        }
        if (!mark[e->arg] && left_dfs(p, nullable, mark, e->arg)) return -1;
        at_start = nullable[e->arg];
    }
    mark[r] = 2;
    return 0;
}

static int check(parser *p, const char *root, uint32_t *root_id) {
    bool found = false;
    for (size_t r = 0; r < p->n_rules; r++) {
        if (!p->rules[r].defined) {
            char m[320];
            snprintf(m, sizeof m, "undefined rule '%.256s'", p->rules[r].name);
            return fail_at(p, p->rules[r].ref_at, OB_ERR_FORMAT, m);
        }
        if (!strcmp(p->rules[r].name, root)) {
            *root_id = (uint32_t)r;
            found = true;
        }
    }
    if (!found) {
        char m[320];
        snprintf(m, sizeof m, "no rule named '%.256s' (the root)", root);
        return fail_at(p, p->len, OB_ERR_FORMAT, m);
    }
    bool *nullable = ob_calloc(p->n_rules, sizeof *nullable);
    uint8_t *mark = ob_calloc(p->n_rules, 1);
    int rc = nullable && mark ? 0 : nomem(p);
    if (!rc) find_nullable(p, nullable);
    for (size_t r = 0; r < p->n_rules && !rc; r++)
        if (!mark[r]) rc = left_dfs(p, nullable, mark, (uint32_t)r);
    ob_free(nullable);
    ob_free(mark);
    return rc;
}

/* Moves the parsed rules into one flat grammar. */
static int layout(parser *p, ob_grammar *g) {
    size_t n_alts = 0;
    for (size_t r = 0; r < p->n_rules; r++)
        for (size_t k = 0; k < p->rules[r].body.n; k++)
            n_alts += p->rules[r].body.v[k].op == GRAM_END;
    g->elems = ob_alloc(p->n_elems + 1, sizeof *g->elems);
    g->alts = ob_alloc(n_alts + 1, sizeof *g->alts);
    g->rules = ob_calloc(p->n_rules, sizeof *g->rules);
    if (!g->elems || !g->alts || !g->rules) return nomem(p);
    g->n_rules = p->n_rules;
    for (size_t r = 0; r < p->n_rules; r++) {
        const ebuf *b = &p->rules[r].body;
        g->rules[r].name = p->rules[r].name;
        p->rules[r].name = NULL;
        g->rules[r].alt_first = (uint32_t)g->n_alts;
        bool start = true;
        for (size_t k = 0; k < b->n; k++) {
            if (start) {
                g->alts[g->n_alts++] = (uint32_t)g->n_elems;
                g->rules[r].alt_n++;
            }
            g->elems[g->n_elems++] = b->v[k];
            start = b->v[k].op == GRAM_END;
        }
    }
    g->classes = p->classes;
    g->n_classes = p->n_classes;
    g->ranges = p->ranges;
    g->n_ranges = p->n_ranges;
    g->tokens = p->tokens;
    g->n_tokens = p->n_tokens;
    p->classes = NULL;
    p->ranges = NULL;
    p->tokens = NULL;
    p->n_tokens = 0;
    return 0;
}

static void parser_free(parser *p) {
    for (size_t r = 0; r < p->n_rules; r++) {
        ob_free(p->rules[r].name);
        ob_free(p->rules[r].body.v);
    }
    ob_free(p->rules);
    ob_free(p->classes);
    ob_free(p->ranges);
    for (size_t k = 0; k < p->n_tokens; k++) ob_free(p->tokens[k].text);
    ob_free(p->tokens);
}

void gram_free(ob_grammar *g) {
    if (!g) return;
    for (size_t r = 0; r < g->n_rules; r++) ob_free(g->rules[r].name);
    ob_free(g->rules);
    ob_free(g->elems);
    ob_free(g->alts);
    ob_free(g->classes);
    ob_free(g->ranges);
    for (size_t k = 0; k < g->n_tokens; k++) ob_free(g->tokens[k].text);
    ob_free(g->tokens);
    ob_free(g);
}

ob_status gram_parse(const char *src, size_t len, const char *root, ob_grammar **out,
                     ob_err *err) {
    *out = NULL;
    if (len > GRAM_MAX_SOURCE)
        return ob_fail(err, OB_ERR_LIMIT, "grammar: %zu bytes, the limit is %u", len,
                       GRAM_MAX_SOURCE);
    parser p = {.s = src, .len = len, .err = err};
    skip_space(&p, true);
    while (p.i < p.len && !p.st) {
        if (parse_rule(&p)) break;
        skip_space(&p, true);
    }
    uint32_t root_id = 0;
    ob_grammar *g = NULL;
    if (!p.st && !check(&p, root ? root : "root", &root_id)) {
        g = ob_calloc(1, sizeof *g);
        if (!g) nomem(&p);
        else if (!layout(&p, g)) g->root = root_id;
    }
    parser_free(&p);
    if (p.st) {
        gram_free(g);
        return p.st;
    }
    *out = g;
    return OB_OK;
}
