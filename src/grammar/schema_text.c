/*
 * Pieces of GBNF text for the JSON-schema translator: a growable string, literal escaping, the
 * primitive JSON rules, and digit patterns for integer ranges (so minimum/maximum are enforced
 * exactly, not checked afterwards).
 */
#include "grammar/schema_int.h"

#include "core/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void sb_put(sb *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = ob_realloc(b->p, cap, 1);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void sb_puts(sb *b, const char *s) { sb_put(b, s, strlen(s)); }

void sb_printf(sb *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_put(b, tmp, (size_t)n);
        return;
    }
    char *big = ob_alloc((size_t)n + 1, 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_put(b, big, (size_t)n);
    ob_free(big);
}

/* s[0..n) as a GBNF string literal: quotes, backslashes and control bytes escaped, other
 * bytes (UTF-8 included) as they are. */
void sb_literal(sb *b, const char *s, size_t n) {
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(b, e, 2);
        } else if (c < 0x20 || c == 0x7F) {
            sb_printf(b, "\\x%02X", c);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

/* The rules JSON and Gemma 4's literals spell alike: numbers, booleans, null, and a value of
 * any kind (whose object, array and string rules each syntax writes its own way). */
void sb_shared_primitives(sb *b, const char *p) {
    sb_printf(b, "%s-int ::= \"-\"? ([0-9] | [1-9] [0-9]{1,15})\n", p);
    sb_printf(b, "%s-number ::= %s-int (\".\" [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})?\n", p, p);
    sb_printf(b, "%s-boolean ::= \"true\" | \"false\"\n", p);
    sb_printf(b, "%s-null ::= \"null\"\n", p);
    sb_printf(b, "%s-value ::= %s-object | %s-array | %s-string | %s-number | %s-boolean | "
                 "%s-null\n", p, p, p, p, p, p, p);
}

/* The primitive rules every translation may use, named PREFIX-ws, PREFIX-string, ... */
void sb_primitives(sb *b, const char *p) {
    sb_printf(b, "%s-ws ::= | \" \" | \"\\n\" [ \\t]{0,12}\n", p);
    sb_printf(b, "%s-char ::= [^\"\\\\\\x00-\\x1F\\x7F] | \"\\\\\" ([\"\\\\/bfnrt] | "
                 "\"u\" [0-9a-fA-F]{4})\n", p);
    sb_printf(b, "%s-string ::= \"\\\"\" %s-char* \"\\\"\"\n", p, p);
    sb_shared_primitives(b, p);
    sb_printf(b, "%s-object ::= \"{\" %s-ws (%s-string %s-ws \":\" %s-ws %s-value %s-ws "
                 "(\",\" %s-ws %s-string %s-ws \":\" %s-ws %s-value %s-ws)*)? \"}\"\n",
              p, p, p, p, p, p, p, p, p, p, p, p, p);
    sb_printf(b, "%s-array ::= \"[\" %s-ws (%s-value %s-ws (\",\" %s-ws %s-value %s-ws)*)? "
                 "\"]\"\n", p, p, p, p, p, p, p);
}

/* ---- integer ranges ------------------------------------------------------------------ */

/* Digits x..y (equal length, decimal strings) as a GBNF sequence/alternation. */
static void digits_range(sb *b, const char *x, const char *y, size_t n) {
    if (n == 0) return;
    if (x[0] == y[0]) {
        sb_printf(b, "\"%c\" ", x[0]);
        digits_range(b, x + 1, y + 1, n - 1);
        return;
    }
    bool x_zero = true, y_nine = true;
    for (size_t i = 1; i < n; i++) {
        x_zero &= x[i] == '0';
        y_nine &= y[i] == '9';
    }
    if (x_zero && y_nine) {
        sb_printf(b, "[%c-%c] ", x[0], y[0]);
        if (n > 1) sb_printf(b, "[0-9]{%zu} ", n - 1);
        return;
    }
    char nines[24], zeros[24];
    memset(nines, '9', sizeof nines);
    memset(zeros, '0', sizeof zeros);
    sb_puts(b, "(");
    char lo = x[0], hi = y[0];
    if (!x_zero) { /* x0 followed by x[1..]..99 */
        sb_printf(b, "\"%c\" ", lo);
        digits_range(b, x + 1, nines, n - 1);
        sb_puts(b, "| ");
        lo++;
    }
    if (!y_nine) hi--;
    if (lo <= hi) {
        sb_printf(b, "[%c-%c] ", lo, hi);
        if (n > 1) sb_printf(b, "[0-9]{%zu} ", n - 1);
        sb_puts(b, "| ");
    }
    if (!y_nine) {
        sb_printf(b, "\"%c\" ", y[0]);
        digits_range(b, zeros, y + 1, n - 1);
        sb_puts(b, "| ");
    }
    b->n -= 2; /* the last "| " */
    b->p[b->n] = 0;
    sb_puts(b, ") ");
}

/* Non-negative integers a..b (b < 0: no upper bound), without leading zeros, as one
 * parenthesised GBNF alternation. a, b < 10^15. */
void sb_uint_range(sb *b, int64_t lo, int64_t hi) {
    sb_puts(b, "(");
    int64_t pow = 1;
    bool first = true;
    for (int d = 1; d <= 16; d++, pow *= 10) {
        int64_t dmin = d == 1 ? 0 : pow, dmax = pow * 10 - 1;
        int64_t x = lo > dmin ? lo : dmin;
        if (hi >= 0 && hi < dmax) dmax = hi;
        if (x > dmax) continue;
        if (!first) sb_puts(b, "| ");
        first = false;
        if (hi < 0 && x == dmin && d > 1) { /* every longer number too */
            sb_printf(b, "[1-9] [0-9]{%d,15} ", d - 1);
            break;
        }
        char xs[24], ys[24];
        snprintf(xs, sizeof xs, "%lld", (long long)x);
        snprintf(ys, sizeof ys, "%lld", (long long)dmax);
        digits_range(b, xs, ys, strlen(xs));
        if (hi < 0 && d < 16 && dmax == pow * 10 - 1) {
            sb_printf(b, "| [1-9] [0-9]{%d,15} ", d);
            break;
        }
        if (hi >= 0 && dmax == hi) break;
    }
    if (first) sb_puts(b, "\"0\" "); /* unreachable for lo <= hi; keeps the text well-formed */
    sb_puts(b, ")");
}
