/*
 * Reading a policy file (serve_policy.h): strict, every field's type checked, unknown keys
 * refused (a misspelt "when" must not silently widen what leaves the machine), every error
 * naming the field's path.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "serve/serve_policy_int.h"

#include "core/alloc.h"
#include "serve/serve_json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void strv_free(char **v, size_t n) {
    for (size_t i = 0; v && i < n; i++) ob_free(v[i]);
    ob_free(v);
}

void serve_policy_free(serve_policy *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_ups; i++) {
        serve_policy_upstream *u = &p->ups[i];
        ob_free(u->name);
        ob_free(u->base_url);
        ob_free(u->api_key_env);
        strv_free(u->map_from, u->n_map);
        strv_free(u->map_to, u->n_map);
    }
    ob_free(p->ups);
    for (size_t i = 0; i < p->n_rules; i++) {
        serve_policy_rule *r = &p->rules[i];
        ob_free(r->name);
        strv_free(r->models, r->n_models);
        strv_free(r->api_keys, r->n_api_keys);
    }
    ob_free(p->rules);
    strv_free(p->local_keys, p->n_local_keys);
    strv_free(p->private_headers, p->n_private_headers);
    for (size_t i = 0; i < p->n_patterns; i++) pcre2_code_free(p->patterns[i]);
    ob_free(p->patterns);
    ob_free(p);
}

static int nomem(serve_error *e) {
    return serve_error_set(e, 500, "server_error", "out_of_memory", NULL,
                           "out of memory while reading the policy");
}

static int dup_into(char **dst, const char *s, serve_error *e) {
    if (!(*dst = ob_strndup(s, strlen(s)))) return nomem(e);
    return 0;
}

/* Refuses keys of obj that are not in allowed (NULL-terminated). */
static int only_keys(const json_t *obj, const char *path, const char *const *allowed,
                     serve_error *e) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++) ok = !strcmp(k, allowed[i]);
        if (!ok) {
            char p[SERVE_PATH_MAX];
            serve_path_key(p, sizeof p, path, k);
            return serve_error_bad(e, "unknown_field", p, "%s: unknown field", p);
        }
    }
    return 0;
}

/* A non-empty string at obj[key] (required or not), copied. */
static int get_str(const json_t *obj, const char *path, const char *key, bool required,
                   char **out, serve_error *e) {
    const char *s = NULL;
    size_t n = 0;
    int rc = serve_json_get_string(obj, path, key, SERVE_POLICY_MAX_STRING, &s, &n, e);
    if (rc < 0) return -1;
    char p[SERVE_PATH_MAX];
    serve_path_key(p, sizeof p, path, key);
    if (rc == 0) {
        if (!required) return 0;
        return serve_error_bad(e, "missing_field", p, "%s: required", p);
    }
    if (n == 0 || strlen(s) != n)
        return serve_error_bad(e, "invalid_value", p, "%s: must be a non-empty string without NUL",
                               p);
    return dup_into(out, s, e);
}

/* An array of non-empty strings at obj[key]; absent leaves *out NULL. */
static int get_strv(const json_t *obj, const char *path, const char *key, char ***out, size_t *n,
                    serve_error *e) {
    json_t *arr = NULL;
    int rc = serve_json_get_array(obj, path, key, &arr, e);
    if (rc <= 0) return rc;
    char p[SERVE_PATH_MAX], pi[SERVE_PATH_MAX];
    serve_path_key(p, sizeof p, path, key);
    size_t len = json_array_size(arr);
    if (len == 0 || len > SERVE_POLICY_MAX_LIST)
        return serve_error_bad(e, "invalid_value", p, "%s: expected 1 to %d entries, got %zu", p,
                               SERVE_POLICY_MAX_LIST, len);
    char **v = ob_calloc(len, sizeof *v);
    if (!v) return nomem(e);
    for (size_t i = 0; i < len; i++) {
        json_t *s = json_array_get(arr, i);
        serve_path_index(pi, sizeof pi, p, i);
        if (!json_is_string(s)) {
            strv_free(v, i);
            return serve_json_type_error(e, pi, "a string", s);
        }
        size_t sl = json_string_length(s);
        if (sl == 0 || sl > SERVE_POLICY_MAX_STRING || strlen(json_string_value(s)) != sl) {
            strv_free(v, i);
            return serve_error_bad(e, "invalid_value", pi,
                                   "%s: must be a non-empty string without NUL, at most %d bytes",
                                   pi, SERVE_POLICY_MAX_STRING);
        }
        if (dup_into(&v[i], json_string_value(s), e)) {
            strv_free(v, i);
            return -1;
        }
    }
    *out = v;
    *n = len;
    return 1;
}

static int parse_base_url(serve_policy_upstream *u, const json_t *obj, const char *path,
                          serve_error *e) {
    if (get_str(obj, path, "base_url", true, &u->base_url, e)) return -1;
    char p[SERVE_PATH_MAX];
    serve_path_key(p, sizeof p, path, "base_url");
    const char *s = u->base_url;
    if (strncmp(s, "http://", 7) && strncmp(s, "https://", 8))
        return serve_error_bad(e, "invalid_value", p, "%s: must start with http:// or https://",
                               p);
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return serve_error_bad(e, "invalid_value", p,
                                   "%s: must not contain spaces or control characters", p);
    size_t n = strlen(s);
    while (n > 8 && s[n - 1] == '/') u->base_url[--n] = 0;
    return 0;
}

static int parse_model_map(serve_policy_upstream *u, const json_t *obj, const char *path,
                           serve_error *e) {
    json_t *map = NULL;
    int rc = serve_json_get_object(obj, path, "models", &map, e);
    if (rc <= 0) return rc;
    char p[SERVE_PATH_MAX], pk[SERVE_PATH_MAX];
    serve_path_key(p, sizeof p, path, "models");
    if (!json_is_object(map)) return serve_json_type_error(e, p, "an object", map);
    size_t n = json_object_size(map);
    if (n > SERVE_POLICY_MAX_LIST)
        return serve_error_bad(e, "limit_exceeded", p, "%s: %zu entries, the limit is %d", p, n,
                               SERVE_POLICY_MAX_LIST);
    if (!(u->map_from = ob_calloc(n ? n : 1, sizeof(char *))) ||
        !(u->map_to = ob_calloc(n ? n : 1, sizeof(char *))))
        return nomem(e);
    const char *k;
    json_t *v;
    json_object_foreach(map, k, v) {
        serve_path_key(pk, sizeof pk, p, k);
        if (!json_is_string(v) || json_string_length(v) == 0)
            return serve_json_type_error(e, pk, "a non-empty string", v);
        if (dup_into(&u->map_from[u->n_map], k, e)) return -1;
        if (dup_into(&u->map_to[u->n_map], json_string_value(v), e)) {
            ob_free(u->map_from[u->n_map]);
            return -1;
        }
        u->n_map++;
    }
    return 0;
}

static int parse_upstream(serve_policy_upstream *u, const char *name, const json_t *obj,
                          const char *path, serve_error *e) {
    static const char *const keys[] = {"base_url", "dialect", "api_key_env", "models",
                                       "connect_timeout_s", "timeout_s", NULL};
    if (!json_is_object(obj)) return serve_json_type_error(e, path, "an object", obj);
    if (only_keys(obj, path, keys, e)) return -1;
    if (dup_into(&u->name, name, e)) return -1;
    if (parse_base_url(u, obj, path, e)) return -1;
    const char *dialect = "openai";
    if (serve_json_get_string(obj, path, "dialect", 32, &dialect, NULL, e) < 0) return -1;
    if (!strcmp(dialect, "openai")) u->dialect = SERVE_UPSTREAM_OPENAI;
    else if (!strcmp(dialect, "anthropic")) u->dialect = SERVE_UPSTREAM_ANTHROPIC;
    else {
        char p[SERVE_PATH_MAX];
        serve_path_key(p, sizeof p, path, "dialect");
        return serve_error_bad(e, "invalid_value", p,
                               "%s: expected \"openai\" or \"anthropic\", got \"%s\"", p, dialect);
    }
    if (get_str(obj, path, "api_key_env", false, &u->api_key_env, e)) return -1;
    if (parse_model_map(u, obj, path, e) < 0) return -1;
    u->connect_timeout_s = 10;
    u->timeout_s = 600;
    if (serve_json_get_number(obj, path, "connect_timeout_s", 0.001, 3600, &u->connect_timeout_s,
                              e) < 0 ||
        serve_json_get_number(obj, path, "timeout_s", 0.001, 86400, &u->timeout_s, e) < 0)
        return -1;
    return 0;
}

static int parse_when(serve_policy_rule *r, const json_t *rule, const char *path,
                      serve_error *e) {
    static const char *const keys[] = {"model_missing", "prompt_over_context", "queue_over",
                                       "speed_below", NULL};
    json_t *w = NULL;
    int rc = serve_json_get_object(rule, path, "when", &w, e);
    if (rc <= 0) return rc;
    char p[SERVE_PATH_MAX];
    serve_path_key(p, sizeof p, path, "when");
    if (!json_is_object(w)) return serve_json_type_error(e, p, "an object", w);
    if (only_keys(w, p, keys, e)) return -1;
    if (serve_json_get_bool(w, p, "model_missing", &r->when_model_missing, e) < 0 ||
        serve_json_get_bool(w, p, "prompt_over_context", &r->when_prompt_over_context, e) < 0 ||
        serve_json_get_int(w, p, "queue_over", 0, INT32_MAX, &r->when_queue_over, e) < 0 ||
        serve_json_get_number(w, p, "speed_below", 1e-3, 1e9, &r->when_speed_below, e) < 0)
        return -1;
    r->has_when = r->when_model_missing || r->when_prompt_over_context ||
                  r->when_queue_over >= 0 || r->when_speed_below > 0;
    if (!r->has_when)
        return serve_error_bad(e, "invalid_value", p,
                               "%s: names no condition that can hold (leave it out for a rule "
                               "that always applies)",
                               p);
    return 0;
}

static int parse_rule(serve_policy *pol, size_t idx, const json_t *obj, const char *path,
                      serve_error *e) {
    static const char *const keys[] = {"name", "upstream", "models", "api_keys", "requested",
                                       "when", NULL};
    serve_policy_rule *r = &pol->rules[idx];
    r->when_queue_over = -1;
    if (!json_is_object(obj)) return serve_json_type_error(e, path, "an object", obj);
    if (only_keys(obj, path, keys, e)) return -1;
    if (get_str(obj, path, "name", true, &r->name, e)) return -1;
    char p[SERVE_PATH_MAX];
    for (size_t i = 0; i < idx; i++)
        if (!strcmp(pol->rules[i].name, r->name)) {
            serve_path_key(p, sizeof p, path, "name");
            return serve_error_bad(e, "invalid_value", p, "%s: \"%s\" names rules[%zu] too", p,
                                   r->name, i);
        }
    const char *up = NULL;
    serve_path_key(p, sizeof p, path, "upstream");
    int rc = serve_json_get_string(obj, path, "upstream", SERVE_POLICY_MAX_STRING, &up, NULL, e);
    if (rc < 0) return -1;
    if (rc == 0) return serve_error_bad(e, "missing_field", p, "%s: required", p);
    size_t u = 0;
    while (u < pol->n_ups && strcmp(pol->ups[u].name, up)) u++;
    if (u == pol->n_ups)
        return serve_error_bad(e, "invalid_value", p, "%s: no upstream named \"%s\"", p, up);
    r->upstream = u;
    if (get_strv(obj, path, "models", &r->models, &r->n_models, e) < 0 ||
        get_strv(obj, path, "api_keys", &r->api_keys, &r->n_api_keys, e) < 0 ||
        serve_json_get_bool(obj, path, "requested", &r->requested, e) < 0)
        return -1;
    return parse_when(r, obj, path, e);
}

static int parse_never_leave(serve_policy *p, const json_t *root, serve_error *e) {
    static const char *const keys[] = {"headers", "patterns", NULL};
    json_t *nl = NULL;
    int rc = serve_json_get_object(root, "", "never_leave", &nl, e);
    if (rc <= 0) return rc;
    if (!json_is_object(nl)) return serve_json_type_error(e, "never_leave", "an object", nl);
    if (only_keys(nl, "never_leave", keys, e)) return -1;
    if (get_strv(nl, "never_leave", "headers", &p->private_headers, &p->n_private_headers, e) < 0)
        return -1;
    char **src = NULL;
    size_t n = 0;
    if (get_strv(nl, "never_leave", "patterns", &src, &n, e) < 0) return -1;
    if (n && !(p->patterns = ob_calloc(n, sizeof *p->patterns))) {
        strv_free(src, n);
        return nomem(e);
    }
    for (size_t i = 0; i < n; i++) {
        int code;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)src[i], PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code,
                                       &off, NULL);
        if (!re) {
            char msg[160], path[SERVE_PATH_MAX];
            pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof msg);
            serve_path_index(path, sizeof path, "never_leave.patterns", i);
            serve_error_bad(e, "invalid_value", path, "%s: %s at offset %zu", path, msg,
                            (size_t)off);
            strv_free(src, n);
            return -1;
        }
        p->patterns[p->n_patterns++] = re;
    }
    strv_free(src, n);
    return 0;
}

static int parse_root(serve_policy *p, const json_t *root, serve_error *e) {
    static const char *const keys[] = {"upstreams", "rules", "local_only_keys", "never_leave",
                                       NULL};
    if (!json_is_object(root)) return serve_json_type_error(e, "the policy", "an object", root);
    if (only_keys(root, "", keys, e)) return -1;
    json_t *ups = NULL, *rules = NULL;
    if (serve_json_get_object(root, "", "upstreams", &ups, e) < 0) return -1;
    if (ups && !json_is_object(ups)) return serve_json_type_error(e, "upstreams", "an object", ups);
    size_t nu = json_object_size(ups);
    if (nu > SERVE_POLICY_MAX_UPSTREAMS)
        return serve_error_bad(e, "limit_exceeded", "upstreams",
                               "upstreams: %zu entries, the limit is %d", nu,
                               SERVE_POLICY_MAX_UPSTREAMS);
    if (nu && !(p->ups = ob_calloc(nu, sizeof *p->ups))) return nomem(e);
    const char *k;
    json_t *v;
    char path[SERVE_PATH_MAX];
    json_object_foreach(ups, k, v) {
        serve_path_key(path, sizeof path, "upstreams", k);
        if (!*k) return serve_error_bad(e, "invalid_value", path, "upstreams: an empty name");
        p->n_ups++;
        if (parse_upstream(&p->ups[p->n_ups - 1], k, v, path, e)) return -1;
    }
    if (serve_json_get_array(root, "", "rules", &rules, e) < 0) return -1;
    size_t nr = json_array_size(rules);
    if (nr > SERVE_POLICY_MAX_RULES)
        return serve_error_bad(e, "limit_exceeded", "rules", "rules: %zu entries, the limit is %d",
                               nr, SERVE_POLICY_MAX_RULES);
    if (nr && !(p->rules = ob_calloc(nr, sizeof *p->rules))) return nomem(e);
    for (size_t i = 0; i < nr; i++) {
        serve_path_index(path, sizeof path, "rules", i);
        p->n_rules++;
        if (parse_rule(p, i, json_array_get(rules, i), path, e)) return -1;
    }
    if (get_strv(root, "", "local_only_keys", &p->local_keys, &p->n_local_keys, e) < 0) return -1;
    return parse_never_leave(p, root, e);
}

int serve_policy_parse(const char *text, size_t len, serve_policy **out, serve_error *e) {
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return serve_error_bad(e, "invalid_json", NULL, "not valid JSON at line %d, column %d: %s",
                               je.line, je.column, je.text);
    serve_policy *p = ob_calloc(1, sizeof *p);
    if (!p) {
        json_decref(root);
        return nomem(e);
    }
    int rc = parse_root(p, root, e);
    json_decref(root);
    if (rc) {
        serve_policy_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

int serve_policy_load(const char *path, serve_policy **out, serve_error *e) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return serve_error_set(e, 400, "invalid_request_error", "io", NULL, "%s: %s", path,
                               strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = ob_realloc(buf, ncap, 1);
            if (!nb) {
                ob_free(buf);
                fclose(f);
                return nomem(e);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, 4096, f);
        len += got;
        if (got < 4096) break;
        if (len > (16u << 20)) {
            ob_free(buf);
            fclose(f);
            return serve_error_set(e, 400, "invalid_request_error", "limit_exceeded", NULL,
                                   "%s: larger than 16 MiB", path);
        }
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        ob_free(buf);
        return serve_error_set(e, 400, "invalid_request_error", "io", NULL, "%s: read error",
                               path);
    }
    buf[len] = 0;
    int rc = serve_policy_parse(buf, len, out, e);
    ob_free(buf);
    if (rc) {
        char msg[sizeof e->message];
        snprintf(msg, sizeof msg, "%s", e->message);
        snprintf(e->message, sizeof e->message, "%.200s: %.300s", path, msg);
    }
    return rc;
}
