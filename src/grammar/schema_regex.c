/*
 * A JSON schema "pattern" (an ECMA-262 regular expression) -> a GBNF expression for the
 * *encoded* content of a JSON string, when the regex is within the subset a grammar can state
 * exactly: literals, escapes (\d \w \s \D \W \S and escaped punctuation), classes with ranges
 * and negation, `.`, groups ( ) and (?: ), alternation, and the quantifiers * + ? {m} {m,}
 * {m,n}, anchored by ^ and $ at the ends (a pattern without them is generated as if anchored,
 * which a search also accepts). Lookaround, backreferences and lazy quantifiers are refused.
 *
 * Characters that JSON must escape are kept out: `"` and `\` are written as the escapes \" and
 * \\ where the regex names them literally, and left out of negated classes, `.` and \S; \s is
 * a space. The output is then always a valid JSON string matching the pattern.
 */
#include "grammar/schema_int.h"

#include <stdio.h>
#include <string.h>

typedef struct rx {
    const char *s;
    size_t n, i;
    const char *p; /* rule prefix */
    sb *b;
    char *why;
    size_t why_cap;
    int depth;
} rx;

static int rx_fail(rx *r, const char *what) {
    snprintf(r->why, r->why_cap, "%s at offset %zu of the regular expression", what, r->i);
    return -1;
}

/* One literal code point (as UTF-8 bytes) in its JSON-escaped form. */
static void rx_lit(rx *r, const char *s, size_t n) {
    if (n == 1 && (s[0] == '"' || s[0] == '\\')) {
        char e[2] = {'\\', s[0]};
        sb_literal(r->b, e, 2);
    } else {
        sb_literal(r->b, s, n);
    }
}

/* A class item for code point text s[0..n) inside [...]: escaped for GBNF. */
static void cls_char(rx *r, const char *s, size_t n) {
    if (n == 1 && (s[0] == ']' || s[0] == '[' || s[0] == '^' || s[0] == '-'))
        sb_printf(r->b, "\\%c", s[0]);
    else if (n == 1 && (unsigned char)s[0] < 0x20)
        sb_printf(r->b, "\\x%02X", (unsigned char)s[0]);
    else
        sb_put(r->b, s, n);
}

static size_t utf8_len(unsigned char c) {
    return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
}

/* \d \w \s and their negations as class bodies (without brackets). */
static const char *shorthand(char c, bool *neg) {
    *neg = c == 'D' || c == 'W' || c == 'S';
    switch (c) {
    case 'd': case 'D': return "0-9";
    case 'w': case 'W': return "a-zA-Z0-9_";
    case 's': case 'S': return " ";
    default: return NULL;
    }
}

static int rx_class(rx *r) {
    r->i++; /* [ */
    bool neg = r->i < r->n && r->s[r->i] == '^';
    if (neg) r->i++;
    sb_puts(r->b, neg ? "[^\"\\\\\\x00-\\x1F" : "[");
    bool first = true;
    while (r->i < r->n && (r->s[r->i] != ']' || first)) {
        first = false;
        if (r->s[r->i] == '\\') {
            if (r->i + 1 >= r->n) return rx_fail(r, "a trailing backslash");
            bool sneg;
            const char *sh = shorthand(r->s[r->i + 1], &sneg);
            if (sh && sneg) return rx_fail(r, "a negated shorthand inside a class");
            if (sh) sb_puts(r->b, sh);
            else if (r->s[r->i + 1] != '"' && r->s[r->i + 1] != '\\')
                cls_char(r, r->s + r->i + 1, 1);
            r->i += 2;
            continue;
        }
        size_t k = utf8_len((unsigned char)r->s[r->i]);
        if (r->i + k > r->n) return rx_fail(r, "invalid UTF-8");
        if (!(k == 1 && (r->s[r->i] == '"' || r->s[r->i] == '\\'))) cls_char(r, r->s + r->i, k);
        r->i += k;
        if (r->i + 1 < r->n && r->s[r->i] == '-' && r->s[r->i + 1] != ']') {
            sb_puts(r->b, "-");
            r->i++;
            k = utf8_len((unsigned char)r->s[r->i]);
            if (r->s[r->i] == '\\' || r->i + k > r->n) return rx_fail(r, "an unsupported range end");
            cls_char(r, r->s + r->i, k);
            r->i += k;
        }
    }
    if (r->i >= r->n) return rx_fail(r, "an unclosed character class");
    r->i++;
    sb_puts(r->b, "]");
    return 0;
}

static int rx_alt(rx *r);

static int rx_atom(rx *r) {
    char c = r->s[r->i];
    if (c == '(') {
        if (++r->depth > 64) return rx_fail(r, "groups nested too deeply");
        r->i++;
        if (r->i + 1 < r->n && r->s[r->i] == '?') {
            if (r->s[r->i + 1] != ':') return rx_fail(r, "lookaround or a named group");
            r->i += 2;
        }
        sb_puts(r->b, "(");
        if (rx_alt(r)) return -1;
        if (r->i >= r->n || r->s[r->i] != ')') return rx_fail(r, "an unclosed group");
        r->i++;
        r->depth--;
        sb_puts(r->b, ")");
        return 0;
    }
    if (c == '[') return rx_class(r);
    if (c == '.') {
        r->i++;
        sb_puts(r->b, "[^\"\\\\\\x00-\\x1F]");
        return 0;
    }
    if (c == '\\') {
        if (r->i + 1 >= r->n) return rx_fail(r, "a trailing backslash");
        char e = r->s[r->i + 1];
        bool neg;
        const char *sh = shorthand(e, &neg);
        r->i += 2;
        if (sh) return sb_printf(r->b, neg ? "[^\"\\\\\\x00-\\x1F%s]" : "[%s]", sh), 0;
        if ((e >= '0' && e <= '9') || e == 'b' || e == 'B' || e == 'k')
            return rx_fail(r, "a backreference or word boundary");
        if (e == 'n' || e == 't' || e == 'r') {
            char j[2] = {'\\', e};
            sb_literal(r->b, j, 2);
            return 0;
        }
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z'))
            return rx_fail(r, "an unsupported escape");
        rx_lit(r, &e, 1);
        return 0;
    }
    if (c == '*' || c == '+' || c == '?' || c == '{') return rx_fail(r, "a quantifier with nothing before it");
    if (c == '^' || c == '$') return rx_fail(r, "an anchor inside the expression");
    size_t k = utf8_len((unsigned char)c);
    if (r->i + k > r->n) return rx_fail(r, "invalid UTF-8");
    rx_lit(r, r->s + r->i, k);
    r->i += k;
    return 0;
}

static int rx_quant(rx *r) {
    if (r->i >= r->n) return 0;
    char c = r->s[r->i];
    if (c == '*' || c == '+' || c == '?') {
        r->i++;
        sb_put(r->b, &c, 1);
    } else if (c == '{') {
        size_t end = r->i;
        while (end < r->n && r->s[end] != '}') end++;
        if (end >= r->n) return rx_fail(r, "an unclosed {");
        for (size_t k = r->i + 1; k < end; k++)
            if (!(r->s[k] >= '0' && r->s[k] <= '9') && r->s[k] != ',') return rx_fail(r, "a bad {m,n}");
        sb_put(r->b, r->s + r->i, end - r->i + 1);
        r->i = end + 1;
    } else {
        return 0;
    }
    if (r->i < r->n && (r->s[r->i] == '?' || r->s[r->i] == '+'))
        return rx_fail(r, "a lazy or possessive quantifier");
    return 0;
}

static int rx_seq(rx *r) {
    bool any = false;
    while (r->i < r->n && r->s[r->i] != '|' && r->s[r->i] != ')') {
        if (r->s[r->i] == '$' && r->i + 1 == r->n) {
            r->i++;
            break;
        }
        sb_puts(r->b, "(");
        if (rx_atom(r)) return -1;
        sb_puts(r->b, ")");
        if (rx_quant(r)) return -1;
        sb_puts(r->b, " ");
        any = true;
    }
    if (!any) sb_puts(r->b, "\"\" ");
    return 0;
}

static int rx_alt(rx *r) {
    if (rx_seq(r)) return -1;
    while (r->i < r->n && r->s[r->i] == '|') {
        r->i++;
        sb_puts(r->b, "| ");
        if (rx_seq(r)) return -1;
    }
    return 0;
}

/* Appends "(...)" for regex re[0..len) to b; on failure writes why and returns -1. */
int gram_regex_to_gbnf(const char *re, size_t len, const char *p, sb *b, char *why, size_t cap) {
    rx r = {.s = re, .n = len, .p = p, .b = b, .why = why, .why_cap = cap};
    if (r.n && re[0] == '^') r.i++;
    sb_puts(b, "(");
    if (rx_alt(&r)) return -1;
    if (r.i < r.n) return rx_fail(&r, "an unmatched )");
    sb_puts(b, ")");
    return 0;
}
