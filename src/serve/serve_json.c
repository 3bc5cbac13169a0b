/*
 * Typed JSON field access with path-naming errors (serve_json.h). The request parsers of both
 * dialects are written with these, so every message has one form.
 */
#include "serve/serve_json.h"

#include "core/alloc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Set when an allocation for jansson failed on this thread: jansson reports some of those as
 * syntax errors, so a parser asks here before blaming the client. */
static _Thread_local bool json_oom;

static void *json_alloc(size_t size) {
    void *p = ob_alloc(1, size);
    if (!p) json_oom = true;
    return p;
}

bool serve_json_take_oom(void) {
    bool was = json_oom;
    json_oom = false;
    return was;
}

void serve_json_alloc_init(void) { json_set_alloc_funcs(json_alloc, ob_free); }

void serve_path_key(char *buf, size_t cap, const char *parent, const char *key) {
    if (parent && parent[0])
        snprintf(buf, cap, "%s.%s", parent, key);
    else
        snprintf(buf, cap, "%s", key);
}

void serve_path_index(char *buf, size_t cap, const char *parent, size_t i) {
    snprintf(buf, cap, "%s[%zu]", parent ? parent : "", i);
}

const char *serve_json_type(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

int serve_json_type_error(serve_error *e, const char *path, const char *what, const json_t *v) {
    return serve_error_bad(e, "invalid_type", path, "%s: expected %s, got %s", path, what,
                           serve_json_type(v));
}

/* obj[key] unless absent or null; fills path. */
static json_t *field(const json_t *obj, const char *parent, const char *key, char *path) {
    serve_path_key(path, SERVE_PATH_MAX, parent, key);
    json_t *v = json_object_get(obj, key);
    return v && !json_is_null(v) ? v : NULL;
}

int serve_json_get_string(const json_t *obj, const char *parent, const char *key, size_t max_len,
                          const char **out, size_t *out_len, serve_error *e) {
    char path[SERVE_PATH_MAX];
    json_t *v = field(obj, parent, key, path);
    if (!v) return 0;
    if (!json_is_string(v)) return serve_json_type_error(e, path, "a string", v);
    size_t n = json_string_length(v);
    if (n > max_len)
        return serve_error_bad(e, "limit_exceeded", path,
                               "%s: string of %zu bytes, the limit is %zu", path, n, max_len);
    *out = json_string_value(v);
    if (out_len) *out_len = n;
    return 1;
}

int serve_json_get_bool(const json_t *obj, const char *parent, const char *key, bool *out,
                        serve_error *e) {
    char path[SERVE_PATH_MAX];
    json_t *v = field(obj, parent, key, path);
    if (!v) return 0;
    if (!json_is_boolean(v)) return serve_json_type_error(e, path, "a boolean", v);
    *out = json_is_true(v);
    return 1;
}

int serve_json_get_number(const json_t *obj, const char *parent, const char *key, double lo,
                          double hi, double *out, serve_error *e) {
    char path[SERVE_PATH_MAX];
    json_t *v = field(obj, parent, key, path);
    if (!v) return 0;
    if (!json_is_number(v)) return serve_json_type_error(e, path, "a number", v);
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi)
        return serve_error_bad(e, "invalid_value", path,
                               "%s: expected a number from %g to %g, got %g", path, lo, hi, x);
    *out = x;
    return 1;
}

bool serve_json_whole(const json_t *v, int64_t *out) {
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    if (!json_is_real(v)) return false;
    double x = json_real_value(v);
    /* 2^63 is the first double past int64's range; the comparison is exact. */
    if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0) || x != floor(x)) return false;
    *out = (int64_t)x;
    return true;
}

int serve_json_get_int(const json_t *obj, const char *parent, const char *key, int64_t lo,
                       int64_t hi, int64_t *out, serve_error *e) {
    char path[SERVE_PATH_MAX];
    json_t *v = field(obj, parent, key, path);
    if (!v) return 0;
    int64_t x;
    if (!json_is_number(v)) return serve_json_type_error(e, path, "an integer", v);
    if (!serve_json_whole(v, &x))
        return serve_error_bad(e, "invalid_type", path, "%s: expected an integer, got %g", path,
                               json_number_value(v));
    if (x < lo || x > hi)
        return serve_error_bad(e, "invalid_value", path,
                               "%s: expected an integer from %lld to %lld, got %lld", path,
                               (long long)lo, (long long)hi, (long long)x);
    *out = x;
    return 1;
}

int serve_json_get_object(const json_t *obj, const char *parent, const char *key, json_t **out,
                          serve_error *e) {
    char path[SERVE_PATH_MAX];
    json_t *v = field(obj, parent, key, path);
    if (!v) return 0;
    if (!json_is_object(v)) return serve_json_type_error(e, path, "an object", v);
    *out = v;
    return 1;
}

int serve_json_get_array(const json_t *obj, const char *parent, const char *key, json_t **out,
                         serve_error *e) {
    char path[SERVE_PATH_MAX];
    json_t *v = field(obj, parent, key, path);
    if (!v) return 0;
    if (!json_is_array(v)) return serve_json_type_error(e, path, "an array", v);
    *out = v;
    return 1;
}
