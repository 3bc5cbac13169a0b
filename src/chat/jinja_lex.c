/*
 * The Jinja lexer: template source -> tokens. It follows jinja2's lexer rule for rule, because
 * the output must match byte for byte and whitespace control is where renderers differ most:
 *  - "\r\n" and "\r" become "\n", and one trailing newline of the template is dropped;
 *  - trim_blocks: the first newline after a block tag `%}` (and a comment `#}`, and `endraw`)
 *    is removed; never after `}}`;
 *  - lstrip_blocks: spaces and tabs from the start of a line up to a block or comment tag are
 *    removed (only when nothing else precedes the tag on its line); `{%+` keeps them;
 *  - `{%-`, `{{-`, `{#-` strip all whitespace before; `-%}`, `-}}`, `-#}` all after;
 *  - `}}` and `%}` end a tag only where brackets are balanced, so `{{ {'a': {}} }}` works;
 *  - {% raw %} ... {% endraw %} is data.
 */
#include "chat/jinja_int.h"

#include "core/alloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    const char *s; /* normalized source */
    size_t n, pos;
    uint32_t line;
    size_t line_start; /* offset of the current line's first byte */
    const char *name;
    chat_arena *a;
    jtok *toks;
    size_t ntok, cap;
    bool line_starting; /* the previous tag's match ended with a newline */
    ob_err *err;
    ob_status st; /* the error push() or lex_nomem() wrote */
} lexer;

/* Writes "NAME:LINE:COL: msg extra" for byte `at` with status st. */
static ob_status lex_fail_st(lexer *L, ob_status st, size_t at, const char *msg,
                             const char *extra) {
    uint32_t line = 1;
    size_t ls = 0;
    for (size_t i = 0; i < at && i < L->n; i++)
        if (L->s[i] == '\n') line++, ls = i + 1;
    return ob_fail(L->err, st, "%s:%u:%zu: %s%s", L->name, line, at - ls + 1, msg,
                   extra ? extra : "");
}

static ob_status lex_fail(lexer *L, size_t at, const char *msg, const char *extra) {
    return lex_fail_st(L, OB_ERR_FORMAT, at, msg, extra);
}

/* An allocation failed at byte `at`: OB_ERR_LIMIT naming the parse memory cap when the arena is
 * over it (with the line:column reached, for templates of very many tokens), else NOMEM. */
static ob_status lex_nomem(lexer *L, size_t at) {
    if (!chat_arena_over_cap(L->a))
        return L->st = ob_fail(L->err, OB_ERR_NOMEM, "%s: out of memory", L->name);
    char msg[80];
    snprintf(msg, sizeof msg, "parsing the template needs more than %u MiB of memory",
             CHAT_JINJA_MAX_PARSE_MEMORY >> 20);
    return L->st = lex_fail_st(L, OB_ERR_LIMIT, at, msg, NULL);
}

/* Moves pos to `to`, counting lines. */
static void advance(lexer *L, size_t to) {
    for (size_t i = L->pos; i < to; i++)
        if (L->s[i] == '\n') L->line++, L->line_start = i + 1;
    L->pos = to;
}

/* A new token; NULL with L->st and the error written when over CHAT_JINJA_MAX_TOKENS or out
 * of memory. */
static jtok *push(lexer *L, jtok_type type, size_t at, const char *p, size_t len) {
    if (L->ntok == CHAT_JINJA_MAX_TOKENS) {
        char msg[64];
        snprintf(msg, sizeof msg, "template has more than %u tokens", CHAT_JINJA_MAX_TOKENS);
        L->st = lex_fail_st(L, OB_ERR_LIMIT, at, msg, NULL);
        return NULL;
    }
    if (L->ntok == L->cap) {
        size_t ncap = L->cap * 2 + 64;
        if (ncap > CHAT_JINJA_MAX_TOKENS) ncap = CHAT_JINJA_MAX_TOKENS;
        jtok *t = ob_alloc(ncap, sizeof *t);
        if (!t) {
            L->st = ob_fail(L->err, OB_ERR_NOMEM, "%s: out of memory", L->name);
            return NULL;
        }
        if (L->ntok) memcpy(t, L->toks, L->ntok * sizeof *t);
        ob_free(L->toks);
        L->toks = t;
        L->cap = ncap;
    }
    jtok *t = &L->toks[L->ntok++];
    memset(t, 0, sizeof *t);
    t->type = type;
    /* The line/col of byte `at` (at >= L->line_start is kept by callers for tag tokens). */
    uint32_t line = L->line;
    size_t ls = L->line_start;
    for (size_t i = L->pos; i < at; i++)
        if (L->s[i] == '\n') line++, ls = i + 1;
    t->line = line;
    t->col = (uint32_t)(at - ls + 1);
    t->text.ptr = p;
    t->text.len = len;
    return t;
}

static bool is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool starts(const lexer *L, size_t at, const char *lit) {
    size_t k = strlen(lit);
    return at + k <= L->n && memcmp(L->s + at, lit, k) == 0;
}

/* Length of a tag end at `at` ("-%}" + whitespace, "+%}", "%}" + optional newline), or 0. */
static size_t tag_end(const lexer *L, size_t at, char second, bool trim_nl) {
    char end[3] = {second, '}', 0};
    if (L->s[at] == '-' && starts(L, at + 1, end)) {
        size_t e = at + 3;
        while (e < L->n && is_ws(L->s[e]))
            e++;
        return e - at;
    }
    if (L->s[at] == '+' && second != '}' && starts(L, at + 1, end)) return 3;
    if (starts(L, at, end)) {
        size_t e = at + 2;
        if (trim_nl && e < L->n && L->s[e] == '\n') e++;
        return e - at;
    }
    return 0;
}

/* The data before a tag, trimmed as the tag's sign and lstrip_blocks say. */
static size_t trim_data(const lexer *L, size_t from, size_t to, char sign, bool lstrip_ok) {
    if (sign == '-') {
        while (to > from && is_ws(L->s[to - 1]))
            to--;
        return to;
    }
    if (sign == '+' || !lstrip_ok) return to;
    size_t lpos = to;
    while (lpos > from && L->s[lpos - 1] != '\n')
        lpos--;
    if (lpos == from && !L->line_starting) return to;
    for (size_t i = lpos; i < to; i++)
        if (!is_ws(L->s[i])) return to;
    return lpos;
}

static ob_status emit_text(lexer *L, size_t from, size_t to) {
    if (to <= from) return OB_OK;
    if (!push(L, JT_TEXT, from, L->s + from, to - from)) return L->st;
    return OB_OK;
}

/* Decodes a string literal body the way Python's "unicode-escape" codec does. */
static ob_status decode_string(lexer *L, size_t at, size_t from, size_t to, jtok *t) {
    char *o = chat_arena_alloc(L->a, to - from + 1);
    if (!o) return lex_nomem(L, at);
    size_t n = 0;
    for (size_t i = from; i < to; i++) {
        char c = L->s[i];
        if (c != '\\' || i + 1 >= to) {
            o[n++] = c;
            continue;
        }
        char e = L->s[++i];
        char simple = e == 'n'    ? '\n'
                      : e == 't'  ? '\t'
                      : e == 'r'  ? '\r'
                      : e == 'b'  ? '\b'
                      : e == 'f'  ? '\f'
                      : e == 'v'  ? '\v'
                      : e == 'a'  ? '\a'
                      : e == '\\' ? '\\'
                      : e == '\'' ? '\''
                      : e == '"'  ? '"'
                                  : 0;
        if (simple) {
            o[n++] = simple;
        } else if (e == '\n') {
            /* backslash-newline continues the line */
        } else if (e == 'x' || e == 'u' || e == 'U') {
            int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int k = 0; k < digits; k++) {
                char h = i + 1 + k < to ? L->s[i + 1 + k] : 0;
                if (!isxdigit((unsigned char)h))
                    return lex_fail(L, at, "bad escape in string", NULL);
                cp = cp * 16 +
                     (uint32_t)(isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10));
            }
            i += (size_t)digits;
            if (cp > 0x10FFFF) return lex_fail(L, at, "bad escape in string", NULL);
            if (cp < 0x80)
                o[n++] = (char)cp;
            else if (cp < 0x800)
                o[n++] = (char)(0xC0 | (cp >> 6)), o[n++] = (char)(0x80 | (cp & 0x3F));
            else if (cp < 0x10000) {
                o[n++] = (char)(0xE0 | (cp >> 12));
                o[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                o[n++] = (char)(0x80 | (cp & 0x3F));
            } else {
                o[n++] = (char)(0xF0 | (cp >> 18));
                o[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                o[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                o[n++] = (char)(0x80 | (cp & 0x3F));
            }
        } else if (e >= '0' && e <= '7') {
            uint32_t v = 0;
            int k = 0;
            for (; k < 3 && i < to && L->s[i] >= '0' && L->s[i] <= '7'; k++, i++)
                v = v * 8 + (uint32_t)(L->s[i] - '0');
            i--;
            if (v < 0x80)
                o[n++] = (char)v;
            else
                o[n++] = (char)(0xC0 | (v >> 6)), o[n++] = (char)(0x80 | (v & 0x3F));
        } else {
            /* Unknown escapes keep their backslash, as Python's codec does. */
            o[n++] = '\\';
            o[n++] = e;
        }
    }
    t->text.ptr = o;
    t->text.len = n;
    return OB_OK;
}

/* One token inside {{ }} or {% %}: number, name, string or operator. One piece because each
 * branch is a few lines of jinja2's token regexes, read top to bottom in its rule order. */
static ob_status lex_one(lexer *L, int *balance, char *stack) {
    size_t at = L->pos;
    const char *s = L->s;
    char c = s[at];
    jtok *t;
    if (isdigit((unsigned char)c)) {
        size_t e = at;
        while (e < L->n && (isdigit((unsigned char)s[e]) || s[e] == '_'))
            e++;
        bool is_float = false;
        if (e + 1 < L->n && s[e] == '.' && isdigit((unsigned char)s[e + 1])) {
            is_float = true;
            e++;
            while (e < L->n && (isdigit((unsigned char)s[e]) || s[e] == '_'))
                e++;
        }
        if (e < L->n && (s[e] == 'e' || s[e] == 'E')) {
            size_t x = e + 1;
            if (x < L->n && (s[x] == '+' || s[x] == '-')) x++;
            if (x < L->n && isdigit((unsigned char)s[x])) {
                is_float = true;
                e = x;
                while (e < L->n && isdigit((unsigned char)s[e]))
                    e++;
            }
        }
        char buf[64];
        size_t k = 0;
        for (size_t i = at; i < e && k < sizeof buf - 1; i++)
            if (s[i] != '_') buf[k++] = s[i];
        buf[k] = 0;
        t = push(L, is_float ? JT_FLOAT : JT_INT, at, s + at, e - at);
        if (!t) goto nomem;
        if (is_float)
            t->f = strtod(buf, NULL);
        else {
            errno = 0;
            t->i = strtoll(buf, NULL, 10);
            if (errno) return lex_fail(L, at, "integer literal too large", NULL);
        }
        advance(L, e);
        return OB_OK;
    }
    if (isalpha((unsigned char)c) || c == '_') {
        size_t e = at;
        while (e < L->n && (isalnum((unsigned char)s[e]) || s[e] == '_'))
            e++;
        if (!push(L, JT_NAME, at, s + at, e - at)) goto nomem;
        advance(L, e);
        return OB_OK;
    }
    if (c == '\'' || c == '"') {
        size_t e = at + 1;
        while (e < L->n && s[e] != c)
            e += s[e] == '\\' ? 2 : 1;
        if (e >= L->n) return lex_fail(L, at, "unterminated string", NULL);
        t = push(L, JT_STRING, at, NULL, 0);
        if (!t) goto nomem;
        ob_status st = decode_string(L, at, at + 1, e, t);
        if (st) return st;
        advance(L, e + 1);
        return OB_OK;
    }
    static const char *ops[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/",
                                "*",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                ">",  "<",  "=",  ".",  ":",  "|",  ",", ";"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (!starts(L, at, ops[i])) continue;
        size_t k = strlen(ops[i]);
        if (k == 1 && strchr("[({", c)) {
            if (*balance >= 255) return lex_fail(L, at, "brackets nested too deeply", NULL);
            stack[(*balance)++] = c == '[' ? ']' : c == '(' ? ')' : '}';
        } else if (k == 1 && strchr("])}", c)) {
            if (*balance == 0)
                return lex_fail(L, at, "unexpected '", c == ']' ? "]'" : c == ')' ? ")'" : "}'");
            if (stack[--*balance] != c)
                return lex_fail(L, at, "unexpected closing bracket ",
                                c == ']'   ? "']'"
                                : c == ')' ? "')'"
                                           : "'}'");
        }
        if (!push(L, JT_OP, at, s + at, k)) goto nomem;
        advance(L, at + k);
        return OB_OK;
    }
    char what[8] = {'\'', c, '\'', 0};
    return lex_fail(L, at, "unexpected character ", what);
nomem:
    return L->st;
}

/* The inside of {{ ... }} or {% ... %}, up to and including its end. */
static ob_status lex_tag(lexer *L, bool is_block, size_t open_at) {
    int balance = 0;
    char stack[256];
    for (;;) {
        if (L->pos >= L->n)
            return lex_fail(L, open_at, is_block ? "unclosed block tag '{%'" : "unclosed '{{'",
                            NULL);
        size_t e = balance ? 0 : tag_end(L, L->pos, is_block ? '%' : '}', is_block);
        if (e && !(!is_block && L->s[L->pos] == '+')) {
            if (!push(L, is_block ? JT_BLOCK_END : JT_VAR_END, L->pos, L->s + L->pos, e))
                return L->st;
            L->line_starting = L->s[L->pos + e - 1] == '\n';
            advance(L, L->pos + e);
            return OB_OK;
        }
        if (is_ws(L->s[L->pos])) {
            advance(L, L->pos + 1);
            continue;
        }
        ob_status st = lex_one(L, &balance, stack);
        if (st) return st;
    }
}

/* {% raw %}: finds the {% endraw %} and makes everything between one data token. */
static ob_status lex_raw(lexer *L, size_t open_at) {
    for (size_t i = L->pos; i + 1 < L->n; i++) {
        if (L->s[i] != '{' || L->s[i + 1] != '%') continue;
        size_t j = i + 2;
        char sign = 0;
        if (j < L->n && (L->s[j] == '-' || L->s[j] == '+')) sign = L->s[j++];
        while (j < L->n && is_ws(L->s[j]))
            j++;
        if (!starts(L, j, "endraw")) continue;
        j += 6;
        while (j < L->n && is_ws(L->s[j]))
            j++;
        size_t e = j < L->n ? tag_end(L, j, '%', true) : 0;
        if (!e) continue;
        size_t to = trim_data(L, L->pos, i, sign, true);
        ob_status st = emit_text(L, L->pos, to);
        if (st) return st;
        L->line_starting = L->s[j + e - 1] == '\n';
        advance(L, j + e);
        return OB_OK;
    }
    return lex_fail(L, open_at, "missing end of raw directive", NULL);
}

/* Is there `raw` at the start of this block tag (after the sign)? Returns the end of the
 * opening tag, or 0. */
static size_t raw_open(const lexer *L, size_t j) {
    while (j < L->n && is_ws(L->s[j]))
        j++;
    if (!starts(L, j, "raw")) return 0;
    j += 3;
    size_t k = j;
    while (k < L->n && is_ws(L->s[k]))
        k++;
    if (k == j && k < L->n && L->s[k] != '-' && L->s[k] != '%') return 0;
    if (L->s[k] == '-' && starts(L, k + 1, "%}")) {
        k += 3;
        while (k < L->n && is_ws(L->s[k]))
            k++;
        return k;
    }
    return starts(L, k, "%}") ? k + 2 : 0;
}

static ob_status lex_comment(lexer *L, size_t open_at) {
    for (size_t i = L->pos; i < L->n; i++) {
        size_t e = 0;
        if (L->s[i] == '+' && starts(L, i + 1, "#}"))
            e = 3;
        else if (L->s[i] == '-' || L->s[i] == '#')
            e = tag_end(L, i, '#', true);
        if (!e) continue;
        L->line_starting = L->s[i + e - 1] == '\n';
        advance(L, i + e);
        return OB_OK;
    }
    return lex_fail(L, open_at, "missing end of comment tag", NULL);
}

/* Copies src with newlines normalized and one trailing newline dropped. */
static char *normalize(chat_arena *a, const char *src, size_t len, size_t *out_len) {
    char *o = chat_arena_alloc(a, len + 1);
    if (!o) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            o[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            o[n++] = src[i];
        }
    }
    if (n && o[n - 1] == '\n') n--;
    o[n] = 0;
    *out_len = n;
    return o;
}

/* The token loop of chat_jinja_lex; on error L->toks is left for the caller to free. */
static ob_status lex_all(lexer *L) {
    while (L->pos < L->n) {
        /* Find the next tag opening. */
        size_t at = L->pos;
        while (at + 1 < L->n && !(L->s[at] == '{' && strchr("{%#", L->s[at + 1])))
            at++;
        if (at + 1 >= L->n) {
            ob_status st = emit_text(L, L->pos, L->n);
            if (st) return st;
            advance(L, L->n);
            break;
        }
        char kind = L->s[at + 1];
        char sign =
            at + 2 < L->n && (L->s[at + 2] == '-' || L->s[at + 2] == '+') ? L->s[at + 2] : 0;
        size_t to = trim_data(L, L->pos, at, sign, kind != '{');
        ob_status st = emit_text(L, L->pos, to);
        if (st) return st;
        size_t body = at + 2 + (sign ? 1 : 0);
        size_t raw_end = kind == '%' ? raw_open(L, body) : 0;
        if (raw_end) {
            L->line_starting = L->s[raw_end - 1] == '\n';
            advance(L, raw_end);
            st = lex_raw(L, at);
        } else if (kind == '#') {
            advance(L, body);
            st = lex_comment(L, at);
        } else {
            if (!push(L, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, at, L->s + at, body - at))
                return L->st;
            advance(L, body);
            st = lex_tag(L, kind == '%', at);
        }
        if (st) return st;
    }
    if (!push(L, JT_EOF, L->n, L->s + L->n, 0)) return L->st;
    return OB_OK;
}

ob_status chat_jinja_lex(const char *src, size_t len, const char *name, chat_arena *a,
                         jtok_list *out, ob_err *err) {
    out->toks = NULL;
    out->n = 0;
    lexer L = {.name = name, .a = a, .line = 1, .line_starting = true, .err = err};
    L.s = normalize(a, src, len, &L.n);
    if (!L.s) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", name);
    ob_status st = lex_all(&L);
    if (st) {
        ob_free(L.toks);
        return st;
    }
    out->toks = L.toks;
    out->n = L.ntok;
    return OB_OK;
}
