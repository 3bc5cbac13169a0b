/*
 * JSON schema -> GBNF, so structured output is enforced by the same matcher as any grammar.
 *
 * Supported: type (one or a list), enum, const, properties / required / additionalProperties
 * (false, true or a schema; absent counts as false when properties are declared, so the output
 * has exactly those, in their order, the optional ones skippable, and as true when none are;
 * a required name not declared is added with the additional properties' schema), items /
 * minItems / maxItems,
 * anyOf and oneOf (as alternatives: oneOf's exclusivity is not enforced), allOf of object
 * schemas (merged), $ref into the same document (#, #/$defs/..., #/definitions/..., recursion
 * allowed), minLength / maxLength, pattern (a regular-expression subset, schema_regex.c),
 * format date / time / date-time / uuid (other formats are annotations), minimum / maximum /
 * exclusiveMinimum / exclusiveMaximum on integers and numbers (exact: integer parts are
 * digit-range patterns, a number with a range has no exponent). Annotations (title,
 * description, default, examples, ...) are ignored. Anything else fails with
 * OB_ERR_UNSUPPORTED naming the keyword and where it is, never silently unenforced.
 *
 * The same translation writes Gemma 4's literals instead of JSON (schema_gemma.c) when given
 * their string delimiter: the structure is the same, only strings, keys and constants are
 * spelled differently, and "pattern" (translated over JSON-escaped text) is refused there.
 */
#include "grammar/schema_int.h"

#include "core/alloc.h"
#include "core/err.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SCHEMA_MAX_DEPTH 64
#define SCHEMA_MAX_BOUND 1e15 /* numeric bounds beyond this are refused */
#define PATH_MAX_LEN     256

typedef struct conv {
    const char *p; /* rule-name prefix */
    const char *quote; /* Gemma 4 mode: the GBNF expression of its string delimiter; NULL: JSON */
    json_t *root;
    sb rules;
    int next;
    json_t *refs; /* "$ref" text -> rule name, so a recursive schema refers to itself */
    ob_err *err;
    ob_status st;
    int depth;
} conv;

static int fail(conv *c, ob_status st, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(conv *c, ob_status st, const char *path, const char *fmt, ...) {
    if (c->st) return -1;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->st = ob_fail(c->err, st, "%s: %s", path, msg);
    return -1;
}

static void new_name(conv *c, char *name, size_t cap) {
    snprintf(name, cap, "%s-%d", c->p, ++c->next);
}

static void sub_path(char *out, const char *path, const char *key) {
    size_t a = strlen(path), k = strlen(key);
    if (a > PATH_MAX_LEN - 2) a = PATH_MAX_LEN - 2;
    if (k > PATH_MAX_LEN - 2 - a) k = PATH_MAX_LEN - 2 - a;
    memmove(out, path, a);
    out[a] = '.';
    memcpy(out + a + 1, key, k);
    out[a + 1 + k] = 0;
}

static const char *const known[] = {
    "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
    "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions", "minLength",
    "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "title", "description", "$schema", "$id", "$comment", "default",
    "examples", "deprecated", "readOnly", "writeOnly", "uniqueItems",
    "contentMediaType", "contentEncoding",
};

static int check_keywords(conv *c, json_t *s, const char *path) {
    const char *key;
    json_t *v;
    json_object_foreach(s, key, v) {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof *known && !ok; i++) ok = !strcmp(key, known[i]);
        if (!strcmp(key, "uniqueItems") && json_is_true(v)) ok = false;
        if (!ok)
            return fail(c, OB_ERR_UNSUPPORTED, path, "keyword '%.64s' is not supported", key);
    }
    return 0;
}

static int gen(conv *c, json_t *s, const char *path, char *name, size_t cap);

/* ---- leaves ------------------------------------------------------------------------------ */

static int body_const(conv *c, json_t *v, sb *b, const char *path) {
    if (c->quote) {
        if (sb_gemma_literal(b, v, c->quote))
            return fail(c, OB_ERR_UNSUPPORTED, path, "enum / const: a value whose text holds "
                        "\"<|\" or \"<t\" or ends in '<' cannot be written in Gemma 4's "
                        "tool-call literals");
        return 0;
    }
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) return fail(c, OB_ERR_NOMEM, path, "out of memory");
    sb_literal(b, text, strlen(text));
    free(text);
    return 0;
}

static int body_enum(conv *c, json_t *e, sb *b, const char *path) {
    if (!json_is_array(e) || json_array_size(e) == 0)
        return fail(c, OB_ERR_FORMAT, path, "enum: expected a non-empty array");
    sb_puts(b, "(");
    for (size_t i = 0; i < json_array_size(e); i++) {
        if (i) sb_puts(b, " | ");
        if (body_const(c, json_array_get(e, i), b, path)) return -1;
    }
    sb_puts(b, ")");
    return 0;
}

static int get_count(conv *c, json_t *s, const char *key, const char *path, int64_t *v) {
    json_t *x = json_object_get(s, key);
    if (!x) return 0;
    if (!json_is_integer(x) || json_integer_value(x) < 0)
        return fail(c, OB_ERR_FORMAT, path, "%s: expected a non-negative integer", key);
    if (json_integer_value(x) > GRAM_MAX_REPEAT)
        return fail(c, OB_ERR_UNSUPPORTED, path, "%s: %lld is over the limit of %d", key,
                    (long long)json_integer_value(x), GRAM_MAX_REPEAT);
    *v = json_integer_value(x);
    return 0;
}

static int body_string(conv *c, json_t *s, sb *b, const char *path) {
    const char *p = c->p;
    const char *fmt = json_string_value(json_object_get(s, "format"));
    json_t *pat = json_object_get(s, "pattern");
    /* the string's delimiter: a JSON quote, or Gemma 4's <|"|> */
    const char *q = c->quote ? c->quote : "\"\\\"\"";
    if (pat && c->quote)
        return fail(c, OB_ERR_UNSUPPORTED, path, "keyword 'pattern' is not supported in Gemma "
                    "4's tool-call literals");
    if (pat) {
        if (!json_is_string(pat)) return fail(c, OB_ERR_FORMAT, path, "pattern: expected a string");
        char why[200];
        sb_puts(b, "\"\\\"\" ");
        if (gram_regex_to_gbnf(json_string_value(pat), json_string_length(pat), p, b, why,
                               sizeof why))
            return fail(c, OB_ERR_UNSUPPORTED, path, "pattern: %s", why);
        sb_puts(b, " \"\\\"\"");
        return 0;
    }
    if (fmt && !strcmp(fmt, "uuid")) {
        sb_printf(b, "%s [0-9a-f]{8} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} "
                     "\"-\" [0-9a-f]{12} %s", q, q);
        return 0;
    }
    const char *date = "[0-9]{4} \"-\" (\"0\" [1-9] | \"1\" [0-2]) \"-\" (\"0\" [1-9] | [12] "
                       "[0-9] | \"3\" [01])";
    const char *time = "([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" "
                       "[0-9]{1,6})? (\"Z\" | [+-] ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9])";
    if (fmt && !strcmp(fmt, "date")) return sb_printf(b, "%s %s %s", q, date, q), 0;
    if (fmt && !strcmp(fmt, "time")) return sb_printf(b, "%s %s %s", q, time, q), 0;
    if (fmt && !strcmp(fmt, "date-time"))
        return sb_printf(b, "%s %s \"T\" %s %s", q, date, time, q), 0;
    int64_t lo = 0, hi = -1;
    if (get_count(c, s, "minLength", path, &lo) || get_count(c, s, "maxLength", path, &hi))
        return -1;
    if (hi >= 0 && hi < lo) return fail(c, OB_ERR_FORMAT, path, "maxLength below minLength");
    if (lo == 0 && hi < 0) return sb_printf(b, "%s-string", p), 0;
    if (hi < 0) sb_printf(b, "%s %s-char{%lld,} %s", q, p, (long long)lo, q);
    else sb_printf(b, "%s %s-char{%lld,%lld} %s", q, p, (long long)lo, (long long)hi, q);
    return 0;
}

/* A numeric bound: *has and *v; exclusive says which keyword gave it. */
static int get_bound(conv *c, json_t *s, const char *incl, const char *excl, const char *path,
                     bool *has, double *v, bool *exclusive) {
    json_t *a = json_object_get(s, incl), *x = json_object_get(s, excl);
    *has = false;
    if (x && !json_is_number(x))
        return fail(c, OB_ERR_UNSUPPORTED, path, "keyword '%s' is supported as a number only", excl);
    if (a && !json_is_number(a)) return fail(c, OB_ERR_FORMAT, path, "%s: expected a number", incl);
    json_t *use = x ? x : a;
    if (!use) return 0;
    *v = json_number_value(use);
    *exclusive = x != NULL;
    *has = true;
    if (fabs(*v) > SCHEMA_MAX_BOUND)
        return fail(c, OB_ERR_UNSUPPORTED, path, "%s: %g is beyond the supported magnitude 1e15",
                    x ? excl : incl, *v);
    return 0;
}

/* Integers lo..hi (has_lo/has_hi false: unbounded) as alternatives appended to b; *any says
 * whether something was written. */
static void int_range(sb *b, bool has_lo, int64_t lo, bool has_hi, int64_t hi, bool *any) {
    if (has_lo && has_hi && lo > hi) return;
    if (!has_hi || hi >= 0) { /* the non-negative part */
        sb_puts(b, *any ? " | " : "");
        sb_uint_range(b, has_lo && lo > 0 ? lo : 0, has_hi ? hi : -1);
        *any = true;
    }
    if (!has_lo || lo < 0) { /* "-" then 1..-lo */
        sb_puts(b, *any ? " | \"-\" " : "\"-\" ");
        sb_uint_range(b, has_hi && hi < -1 ? -hi : 1, has_lo ? -lo : -1);
        *any = true;
    }
}

static int body_number(conv *c, json_t *s, bool integer, sb *b, const char *path) {
    bool has_lo, has_hi, ex_lo = false, ex_hi = false;
    double lo = 0, hi = 0;
    if (get_bound(c, s, "minimum", "exclusiveMinimum", path, &has_lo, &lo, &ex_lo) ||
        get_bound(c, s, "maximum", "exclusiveMaximum", path, &has_hi, &hi, &ex_hi))
        return -1;
    if (!has_lo && !has_hi) return sb_printf(b, "%s-%s", c->p, integer ? "int" : "number"), 0;
    /* integers in range */
    int64_t ilo = has_lo ? (int64_t)(ex_lo ? floor(lo) + 1 : ceil(lo)) : 0;
    int64_t ihi = has_hi ? (int64_t)(ex_hi ? ceil(hi) - 1 : floor(hi)) : 0;
    bool any = false;
    sb_puts(b, "(");
    int_range(b, has_lo, ilo, has_hi, ihi, &any);
    if (!integer) {
        /* i.f with i >= 0 lies in [i, i + 1): i >= the bound (i > it when exclusive, as f may
         * be 0) and i + 1 <= the upper bound */
        int64_t blo = has_lo ? (ex_lo ? (int64_t)floor(lo) + 1 : (int64_t)ceil(lo)) : 0;
        int64_t bhi = has_hi ? (int64_t)floor(hi) - 1 : -1;
        if (blo < 0) blo = 0;
        if (!has_hi || bhi >= blo) {
            sb_puts(b, any ? " | " : "");
            sb_uint_range(b, blo, has_hi ? bhi : -1);
            sb_printf(b, " \".\" [0-9]{1,15}");
            any = true;
        }
        /* -k.f lies in (-(k + 1), -k]: -(k + 1) >= the lower bound, -k <= the upper one
         * (-k < it when exclusive) */
        int64_t klo = has_hi ? (ex_hi ? (int64_t)floor(-hi) + 1 : (int64_t)ceil(-hi)) : 0;
        int64_t khi = has_lo ? (int64_t)floor(-lo) - 1 : -1;
        if (klo < 0) klo = 0;
        if (!has_lo || khi >= klo) {
            sb_puts(b, any ? " | \"-\" " : "\"-\" ");
            sb_uint_range(b, klo, has_lo ? khi : -1);
            sb_printf(b, " \".\" [0-9]{1,15}");
            any = true;
        }
    }
    sb_puts(b, ")");
    if (!any) return fail(c, OB_ERR_UNSUPPORTED, path, "minimum/maximum: no %s lies in the range",
                          integer ? "integer" : "number");
    return 0;
}

/* ---- objects and arrays ------------------------------------------------------------------ */

/* One "key": value pair, value trailing whitespace included. */
static int kv_rule(conv *c, const char *key, json_t *schema, const char *path, char *name) {
    char vname[96];
    if (gen(c, schema, path, vname, sizeof vname)) return -1;
    if (c->quote) { /* key:value */
        new_name(c, name, 96);
        sb_printf(&c->rules, "%s ::= ", name);
        if (sb_gemma_key(&c->rules, key, c->quote))
            return fail(c, OB_ERR_UNSUPPORTED, path, "a property name holding '<' cannot be "
                        "written in Gemma 4's tool-call literals");
        sb_printf(&c->rules, " \":\" %s\n", vname);
        return 0;
    }
    json_t *k = json_string(key);
    char *text = k ? json_dumps(k, JSON_ENCODE_ANY) : NULL;
    json_decref(k);
    if (!text) return fail(c, OB_ERR_NOMEM, path, "out of memory");
    new_name(c, name, 96);
    sb_printf(&c->rules, "%s ::= ", name);
    sb_literal(&c->rules, text, strlen(text));
    sb_printf(&c->rules, " %s-ws \":\" %s-ws %s %s-ws\n", c->p, c->p, vname, c->p);
    free(text);
    return 0;
}

static int object_rules(conv *c, json_t *props, json_t *req, json_t *extra, sb *b,
                        const char *path);

static bool is_required(json_t *req, const char *key) {
    for (size_t i = 0; i < json_array_size(req); i++)
        if (json_is_string(json_array_get(req, i)) &&
            !strcmp(json_string_value(json_array_get(req, i)), key))
            return true;
    return false;
}

/* The properties in order, each required or skippable. first[i] continues from property i
 * when nothing was written yet, rest[i] when something was (a comma first). After the last
 * declared one come the additional properties, when allowed. */
static int body_object(conv *c, json_t *s, sb *b, const char *path) {
    json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    json_t *extra = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props))
        return fail(c, OB_ERR_FORMAT, path, "properties: expected an object");
    if (req && !json_is_array(req)) return fail(c, OB_ERR_FORMAT, path, "required: expected an array");
    /* Without declared properties an object schema means any object; with them, only those. */
    json_t *any_extra = NULL;
    if (!extra && !props) extra = any_extra = json_true();
    /* A required name that is not declared is declared here, with the additional properties'
     * schema, so the output has it. */
    json_t *all = props ? json_copy(props) : json_object();
    int rc = all ? 0 : fail(c, OB_ERR_NOMEM, path, "out of memory");
    for (size_t i = 0; i < json_array_size(req) && !rc; i++) {
        const char *k = json_string_value(json_array_get(req, i));
        if (!k) rc = fail(c, OB_ERR_FORMAT, path, "required[%zu]: expected a string", i);
        else if (!json_object_get(all, k) && json_is_false(extra))
            rc = fail(c, OB_ERR_UNSUPPORTED, path,
                      "required: \"%.64s\" is neither declared nor allowed as an additional "
                      "property", k);
        else if (!json_object_get(all, k))
            json_object_set_new(all, k, extra && !json_is_true(extra) ? json_incref(extra)
                                                                     : json_true());
    }
    if (!rc) rc = object_rules(c, all, req, extra, b, path);
    json_decref(all);
    json_decref(any_extra);
    return rc;
}

/* Jinja's dictsort: keys compared with ASCII letters folded to lower case, then as bytes. */
static int by_key_without_case(const void *x, const void *y) {
    const char *a = *(const char *const *)x, *b = *(const char *const *)y;
    const int folded = strcasecmp(a, b);
    return folded ? folded : strcmp(a, b);
}

static int object_rules(conv *c, json_t *props, json_t *req, json_t *extra, sb *b,
                        const char *path) {
    size_t n = json_object_size(props);
    char(*kv)[96] = ob_calloc(n + 1, sizeof *kv);
    bool *must = ob_calloc(n + 1, sizeof *must);
    if (!kv || !must) {
        ob_free(kv);
        ob_free(must);
        return fail(c, OB_ERR_NOMEM, path, "out of memory");
    }
    int rc = 0;
    size_t i = 0;
    const char *key;
    json_t *v;
    char pp[PATH_MAX_LEN], ppk[PATH_MAX_LEN];
    sub_path(pp, path, "properties");
    const char **keys = ob_calloc(n + 1, sizeof *keys);
    if (!keys) rc = fail(c, OB_ERR_NOMEM, path, "out of memory");
    json_object_foreach(props, key, v) if (keys) keys[i++] = key;
    /* Gemma 4's template writes a call's arguments through dictsort (keys compared without
     * case): the order the model has seen its calls in */
    if (keys && c->quote) qsort(keys, n, sizeof *keys, by_key_without_case);
    for (i = 0; keys && i < n && !rc; i++) {
        sub_path(ppk, pp, keys[i]);
        rc = kv_rule(c, keys[i], json_object_get(props, keys[i]), ppk, kv[i]);
        must[i] = is_required(req, keys[i]);
    }
    ob_free(keys);
    char extra_kv[96] = "";
    if (!rc && extra && !json_is_false(extra)) {
        char xp[PATH_MAX_LEN], vname[96];
        sub_path(xp, path, "additionalProperties");
        rc = gen(c, json_is_true(extra) ? NULL : extra, xp, vname, sizeof vname);
        if (!rc) {
            new_name(c, extra_kv, sizeof extra_kv);
            sb_printf(&c->rules, "%s ::= %s-%s %s-ws \":\" %s-ws %s %s-ws\n", extra_kv, c->p,
                      c->quote ? "key" : "string", c->p, c->p, vname, c->p);
        }
    }
    /* rules first_i / rest_i from the back: names base-f-i / base-r-i */
    char base[96];
    new_name(c, base, sizeof base);
    for (size_t k = n + 1; k-- > 0 && !rc;) {
        if (k == n) {
            if (extra_kv[0]) {
                sb_printf(&c->rules, "%s-f-%zu ::= (%s (\",\" %s-ws %s)*)?\n", base, k, extra_kv,
                          c->p, extra_kv);
                sb_printf(&c->rules, "%s-r-%zu ::= (\",\" %s-ws %s)*\n", base, k, c->p, extra_kv);
            } else {
                sb_printf(&c->rules, "%s-f-%zu ::= \"\"\n%s-r-%zu ::= \"\"\n", base, k, base, k);
            }
            continue;
        }
        sb_printf(&c->rules, "%s-f-%zu ::= %s %s-r-%zu%s", base, k, kv[k], base, k + 1,
                  must[k] ? "\n" : "");
        if (!must[k]) sb_printf(&c->rules, " | %s-f-%zu\n", base, k + 1);
        sb_printf(&c->rules, "%s-r-%zu ::= \",\" %s-ws %s %s-r-%zu%s", base, k, c->p, kv[k], base,
                  k + 1, must[k] ? "\n" : "");
        if (!must[k]) sb_printf(&c->rules, " | %s-r-%zu\n", base, k + 1);
    }
    if (!rc) sb_printf(b, "\"{\" %s-ws %s-f-0 \"}\"", c->p, base);
    ob_free(kv);
    ob_free(must);
    return rc;
}

static int body_array(conv *c, json_t *s, sb *b, const char *path) {
    if (json_object_get(s, "prefixItems"))
        return fail(c, OB_ERR_UNSUPPORTED, path, "keyword 'prefixItems' is not supported");
    json_t *items = json_object_get(s, "items");
    if (items && json_is_array(items))
        return fail(c, OB_ERR_UNSUPPORTED, path, "items: an array of schemas is not supported");
    int64_t lo = 0, hi = -1;
    if (get_count(c, s, "minItems", path, &lo) || get_count(c, s, "maxItems", path, &hi)) return -1;
    if (hi >= 0 && hi < lo) return fail(c, OB_ERR_FORMAT, path, "maxItems below minItems");
    char ip[PATH_MAX_LEN], item[96];
    sub_path(ip, path, "items");
    if (hi == 0) return sb_printf(b, "\"[\" %s-ws \"]\"", c->p), 0;
    if (gen(c, items, ip, item, sizeof item)) return -1;
    sb_printf(b, "\"[\" %s-ws (%s %s-ws (\",\" %s-ws %s %s-ws)", c->p, item, c->p, c->p, item, c->p);
    int64_t rlo = lo > 0 ? lo - 1 : 0;
    if (hi < 0) sb_printf(b, "{%lld,}", (long long)rlo);
    else sb_printf(b, "{%lld,%lld}", (long long)rlo, (long long)(hi - 1));
    sb_printf(b, ")%s \"]\"", lo == 0 ? "?" : "");
    return 0;
}

/* ---- combinators, references, types ----------------------------------------------------- */

static int body_alts(conv *c, json_t *list, const char *kw, sb *b, const char *path) {
    if (!json_is_array(list) || json_array_size(list) == 0)
        return fail(c, OB_ERR_FORMAT, path, "%s: expected a non-empty array", kw);
    sb_puts(b, "(");
    for (size_t i = 0; i < json_array_size(list); i++) {
        char sp[PATH_MAX_LEN], name[96];
        snprintf(sp, sizeof sp, "%s.%s[%zu]", path, kw, i);
        if (gen(c, json_array_get(list, i), sp, name, sizeof name)) return -1;
        sb_printf(b, "%s%s", i ? " | " : "", name);
    }
    sb_puts(b, ")");
    return 0;
}

/* The schema a local "$ref" points at ("#", "#/$defs/x", any JSON pointer into the document). */
static json_t *resolve(conv *c, const char *ref, const char *path) {
    if (ref[0] != '#') {
        fail(c, OB_ERR_UNSUPPORTED, path, "$ref \"%.64s\": only references into the same "
             "document (#...) are supported", ref);
        return NULL;
    }
    json_t *at = c->root;
    const char *p = ref + 1;
    while (at && *p == '/') {
        char tok[256];
        size_t n = 0;
        for (p++; *p && *p != '/' && n + 1 < sizeof tok; p++) {
            if (p[0] == '~' && p[1] == '1') tok[n++] = '/', p++;
            else if (p[0] == '~' && p[1] == '0') tok[n++] = '~', p++;
            else tok[n++] = *p;
        }
        tok[n] = 0;
        at = json_is_array(at) ? json_array_get(at, (size_t)strtoull(tok, NULL, 10))
                               : json_object_get(at, tok);
    }
    if (!at || *p) fail(c, OB_ERR_FORMAT, path, "$ref \"%.64s\" points at nothing", ref);
    return at && !*p ? at : NULL;
}

/* allOf whose members are object schemas (or references to them): one merged object. */
static int body_allof(conv *c, json_t *list, sb *b, const char *path) {
    if (!json_is_array(list) || json_array_size(list) == 0)
        return fail(c, OB_ERR_FORMAT, path, "allOf: expected a non-empty array");
    json_t *m = json_pack("{s:s,s:{},s:[]}", "type", "object", "properties", "required");
    if (!m) return fail(c, OB_ERR_NOMEM, path, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < json_array_size(list) && !rc; i++) {
        json_t *s = json_array_get(list, i);
        const char *ref = json_string_value(json_object_get(s, "$ref"));
        if (ref && !(s = resolve(c, ref, path))) rc = -1;
        json_t *props = json_object_get(s, "properties");
        if (!rc && (!json_is_object(s) || (!props && !json_object_get(s, "required"))))
            rc = fail(c, OB_ERR_UNSUPPORTED, path,
                      "allOf[%zu]: only object schemas with properties can be combined", i);
        if (!rc) {
            json_object_update(json_object_get(m, "properties"), props);
            json_array_extend(json_object_get(m, "required"), json_object_get(s, "required"));
        }
    }
    if (!rc) rc = body_object(c, m, b, path);
    json_decref(m);
    return rc;
}

static int body_type(conv *c, json_t *s, const char *type, sb *b, const char *path) {
    if (!strcmp(type, "string")) return body_string(c, s, b, path);
    if (!strcmp(type, "integer")) return body_number(c, s, true, b, path);
    if (!strcmp(type, "number")) return body_number(c, s, false, b, path);
    if (!strcmp(type, "boolean")) return sb_printf(b, "%s-boolean", c->p), 0;
    if (!strcmp(type, "null")) return sb_printf(b, "%s-null", c->p), 0;
    if (!strcmp(type, "object")) return body_object(c, s, b, path);
    if (!strcmp(type, "array")) return body_array(c, s, b, path);
    return fail(c, OB_ERR_FORMAT, path, "type: unknown type \"%.32s\"", type);
}

/* The expression for schema s (an object) into b. */
static int body(conv *c, json_t *s, sb *b, const char *path) {
    if (check_keywords(c, s, path)) return -1;
    json_t *v, *type = json_object_get(s, "type");
    if ((v = json_object_get(s, "const"))) return body_const(c, v, b, path);
    if ((v = json_object_get(s, "enum"))) return body_enum(c, v, b, path);
    if ((v = json_object_get(s, "anyOf"))) return body_alts(c, v, "anyOf", b, path);
    if ((v = json_object_get(s, "oneOf"))) return body_alts(c, v, "oneOf", b, path);
    if ((v = json_object_get(s, "allOf"))) return body_allof(c, v, b, path);
    if (json_is_string(type)) return body_type(c, s, json_string_value(type), b, path);
    if (json_is_array(type)) {
        sb_puts(b, "(");
        for (size_t i = 0; i < json_array_size(type); i++) {
            const char *t = json_string_value(json_array_get(type, i));
            if (!t) return fail(c, OB_ERR_FORMAT, path, "type[%zu]: expected a string", i);
            sb_puts(b, i ? " | (" : "(");
            if (body_type(c, s, t, b, path)) return -1;
            sb_puts(b, ")");
        }
        sb_puts(b, ")");
        return 0;
    }
    if (type) return fail(c, OB_ERR_FORMAT, path, "type: expected a string or an array");
    if (json_object_get(s, "properties") || json_object_get(s, "additionalProperties"))
        return body_object(c, s, b, path);
    if (json_object_get(s, "items")) return body_array(c, s, b, path);
    return sb_printf(b, "%s-value", c->p), 0;
}

/* A rule name for schema s (NULL or true: any value) in name[cap]. */
static int gen(conv *c, json_t *s, const char *path, char *name, size_t cap) {
    if (!s || json_is_true(s)) return snprintf(name, cap, "%s-value", c->p), 0;
    if (json_is_false(s))
        return fail(c, OB_ERR_UNSUPPORTED, path, "the schema false matches no value");
    if (!json_is_object(s)) return fail(c, OB_ERR_FORMAT, path, "expected a schema object");
    if (++c->depth > SCHEMA_MAX_DEPTH) {
        c->depth--;
        return fail(c, OB_ERR_LIMIT, path, "schemas nested deeper than %d", SCHEMA_MAX_DEPTH);
    }
    const char *ref = json_string_value(json_object_get(s, "$ref"));
    int rc = 0;
    if (ref) {
        const char *known_name = json_string_value(json_object_get(c->refs, ref));
        if (known_name) {
            snprintf(name, cap, "%s", known_name);
        } else {
            json_t *target = resolve(c, ref, path);
            new_name(c, name, cap);
            json_object_set_new(c->refs, ref, json_string(name));
            sb b = {0};
            rc = target ? body(c, target, &b, path) : -1;
            if (!rc) sb_printf(&c->rules, "%s ::= %s\n", name, b.p ? b.p : "\"\"");
            ob_free(b.p);
        }
    } else {
        sb b = {0};
        rc = body(c, s, &b, path);
        if (!rc) {
            new_name(c, name, cap);
            sb_printf(&c->rules, "%s ::= %s\n", name, b.p ? b.p : "\"\"");
        }
        if (b.oom) rc = fail(c, OB_ERR_NOMEM, path, "out of memory");
        ob_free(b.p);
    }
    c->depth--;
    return rc;
}

/* The translation of schema, as JSON (quote NULL) or as Gemma 4 literals. */
static ob_status convert(const char *schema, size_t len, const char *prefix, const char *quote,
                         char **gbnf, size_t *gbnf_len, ob_err *err) {
    *gbnf = NULL;
    *gbnf_len = 0;
    conv c = {.p = prefix ? prefix : "root", .quote = quote, .err = err};
    json_t *root = NULL;
    if (schema) {
        json_error_t je;
        root = json_loadb(schema, len, JSON_DECODE_ANY, &je);
        if (!root)
            return ob_fail(err, OB_ERR_FORMAT, "JSON schema: line %d, column %d: %s", je.line,
                           je.column, je.text);
    }
    c.root = root;
    c.refs = json_object();
    char top[96];
    if (!c.refs) fail(&c, OB_ERR_NOMEM, "schema", "out of memory");
    else if (!root) snprintf(top, sizeof top, "%s-object", c.p);
    else gen(&c, root, "schema", top, sizeof top);
    if (!c.st) {
        sb_printf(&c.rules, "%s ::= %s\n", c.p, top);
        if (quote) sb_gemma_primitives(&c.rules, c.p, quote);
        else sb_primitives(&c.rules, c.p);
        if (c.rules.oom) fail(&c, OB_ERR_NOMEM, "schema", "out of memory");
    }
    json_decref(root);
    json_decref(c.refs);
    if (c.st) {
        ob_free(c.rules.p);
        return c.st;
    }
    *gbnf = c.rules.p;
    *gbnf_len = c.rules.n;
    return OB_OK;
}

ob_status gram_schema_to_gbnf(const char *schema, size_t len, const char *prefix, char **gbnf,
                              size_t *gbnf_len, ob_err *err) {
    return convert(schema, len, prefix, NULL, gbnf, gbnf_len, err);
}

ob_status gram_schema_to_gemma_gbnf(const char *schema, size_t len, const char *prefix,
                                    const char *quote, char **gbnf, size_t *gbnf_len,
                                    ob_err *err) {
    return convert(schema, len, prefix, quote, gbnf, gbnf_len, err);
}
