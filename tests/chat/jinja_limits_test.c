/*
 * Unit tests for the Jinja interpreter against hostile templates: operator chains as long as
 * the source allows, values nested a million deep or containing themselves, token floods,
 * templates that run too long, and the paths that were quadratic (dict inserts, building a
 * string in a loop, sorting, unique, slicing, searching). Each must end with the right output
 * in bounded time, or with an error naming the limit and the template's line and column; none
 * may exhaust the C stack (`make check` runs this under AddressSanitizer). Output that jinja2
 * can produce too is compared with it in test_jinja_features.py.
 */
#include "chat/jinja.h"
#include "chat/template.h"
#include "chat/value.h"
#include "core/alloc.h"
#include "core/err.h"
#include "gguf/gguf.h"
#include "test.h"

#include <jansson.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parses and renders src (len bytes) with no variables under `o` (NULL: defaults); fills err
 * and, on success, out (truncated to out_size) and *out_len. */
static ob_status run_opts(const char *src, size_t len, const chat_jinja_opts *o, char *out,
                          size_t out_size, size_t *out_len, ob_err *err) {
    chat_jinja *t;
    ob_err_clear(err);
    ob_status st = chat_jinja_parse(src, len, "t", &t, err);
    if (st) return st;
    chat_arena *a = chat_arena_new(CHAT_JINJA_MAX_MEMORY);
    chat_val vars = a ? chat_val_dict(a, 4) : chat_val_fail();
    const char *text = NULL;
    size_t n = 0;
    st = chat_val_failed(vars) ? OB_ERR_NOMEM : chat_jinja_render(t, a, vars, o, &text, &n, err);
    if (!st && out) snprintf(out, out_size, "%.*s", (int)n, text);
    if (!st && out_len) *out_len = n;
    chat_arena_free(a);
    chat_jinja_free(t);
    return st;
}

static ob_status run(const char *src, char *out, size_t out_size, ob_err *err) {
    chat_jinja_opts o = {.now = 1741953600};
    return run_opts(src, strlen(src), &o, out, out_size, NULL, err);
}

/* "{{ <head><link * n><tail> }}" in a new buffer (free()). */
static char *repeat_src(const char *head, const char *link, size_t n, const char *tail) {
    size_t hl = strlen(head), ll = strlen(link), tl = strlen(tail);
    char *s = malloc(hl + ll * n + tl + 8);
    if (!s) return NULL;
    size_t k = 0;
    memcpy(s + k, "{{ ", 3), k += 3;
    memcpy(s + k, head, hl), k += hl;
    for (size_t i = 0; i < n; i++)
        memcpy(s + k, link, ll), k += ll;
    memcpy(s + k, tail, tl), k += tl;
    memcpy(s + k, " }}", 4);
    return s;
}

/* 100,000 links of every chaining construct: each tree would be 100,000 deep, and each is
 * refused while parsing at the first node past the limit, with its position. */
TEST(every_chain_stops_at_the_nesting_limit) {
    static const struct {
        const char *head, *link, *tail, *what;
    } cases[] = {
        {"1", " + 1", "", "nested deeper than 200 levels"},
        {"1", " - 1", "", "nested deeper than 200 levels"},
        {"1", " * 1", "", "nested deeper than 200 levels"},
        {"1", " // 1", "", "nested deeper than 200 levels"},
        {"2", " ** 1", "", "nested deeper than 200 levels"},
        {"'a'", " ~ 'a'", "", "nested deeper than 200 levels"},
        {"1", " == 1", "", "nested deeper than 200 levels"},
        {"1", " < 2", "", "nested deeper than 200 levels"},
        {"1", " in x", "", "nested deeper than 200 levels"},
        {"1", " and 1", "", "nested deeper than 200 levels"},
        {"1", " or 1", "", "nested deeper than 200 levels"},
        {"x", "[0]", "", "nested deeper than 200 levels"},
        {"x", "[1:]", "", "nested deeper than 200 levels"},
        {"x", ".a", "", "nested deeper than 200 levels"},
        {"x", ".0 ", "", "nested deeper than 200 levels"},
        {"x", "()", "", "nested deeper than 200 levels"},
        {"1", "|string", "", "nested deeper than 200 levels"},
        {"1", "|default(2)", "", "nested deeper than 200 levels"},
        {"", "-", "1", "nested deeper than 200 levels"},
        {"", "not ", "1", "nested deeper than 200 levels"},
        {"", "1 if 0 else ", "1", "nested deeper than 200 levels"},
        {"", "(", "1", "brackets nested too deeply"},
        {"", "[", "1", "brackets nested too deeply"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *src = repeat_src(cases[i].head, cases[i].link, 100000, cases[i].tail);
        CHECK(src);
        ob_err err;
        chat_jinja *t = NULL;
        ob_status st = chat_jinja_parse(src, strlen(src), "t", &t, &err);
        free(src);
        CHECK_MSG(st == OB_ERR_FORMAT && !t, "case %zu (%s): %s", i, cases[i].link,
                  ob_status_name(st));
        CHECK_MSG(strncmp(err.msg, "t:1:", 4) == 0 && strstr(err.msg, cases[i].what),
                  "case %zu (%s): '%s'", i, cases[i].link, err.msg);
    }
}

/* Just under the limit a chain parses and renders; one link more does not. */
TEST(a_chain_at_the_limit_still_renders) {
    char out[32];
    ob_err err;
    char *src = repeat_src("1", " + 1", CHAT_JINJA_MAX_NESTING - 1, "");
    CHECK(src);
    ob_status st = run(src, out, sizeof out, &err);
    free(src);
    CHECK_EQ_INT(st, OB_OK);
    CHECK_EQ_STR(out, "200");
    src = repeat_src("1", " + 1", CHAT_JINJA_MAX_NESTING, "");
    CHECK(src);
    st = run(src, out, sizeof out, &err);
    free(src);
    CHECK_STATUS(st, OB_ERR_FORMAT, &err, "t:1:");
    CHECK(strstr(err.msg, "expression nested deeper than 200 levels"));
}

/* The same chain inside a model file: the error names the file and the chain's line. */
TEST(a_chain_in_a_gguf_template_is_refused_with_its_position) {
    char *chain = repeat_src("1", "+1", 100000, "");
    CHECK(chain);
    size_t n = strlen(chain) + 64;
    char *src = malloc(n);
    CHECK(src);
    snprintf(src, n, "{%% for m in messages %%}\n{{ m.content }}\n%s{%% endfor %%}", chain);
    free(chain);
    gguf_writer *w = gguf_writer_new();
    uint8_t *buf = NULL;
    size_t size = 0;
    ob_err err;
    CHECK(w);
    CHECK_EQ_INT(gguf_writer_set_str(w, "general.architecture", "llama"), OB_OK);
    CHECK_EQ_INT(gguf_writer_set_str(w, "tokenizer.chat_template", src), OB_OK);
    CHECK_EQ_INT(gguf_writer_to_buffer(w, &buf, &size, &err), OB_OK);
    gguf_writer_free(w);
    free(src);
    gguf_file *g = NULL;
    chat_template *t = NULL;
    CHECK_EQ_INT(gguf_parse(buf, size, "model.gguf", &g, &err), OB_OK);
    ob_status st = chat_template_from_gguf(g, &t, &err);
    gguf_close(g);
    ob_free(buf);
    CHECK_STATUS(st, OB_ERR_FORMAT, &err, "model.gguf:3:");
    CHECK(strstr(err.msg, "expression nested deeper than 200 levels"));
    CHECK(!t);
}

/* Nesting that no single expression shows: a macro calling itself from inside 150 blocks. */
TEST(evaluation_depth_is_bounded) {
    char *src = malloc(150 * 32 + 200);
    CHECK(src);
    size_t k = (size_t)sprintf(src, "{%% macro r(n) %%}");
    for (int i = 0; i < 150; i++)
        k += (size_t)sprintf(src + k, "{%% if n >= 0 %%}");
    k += (size_t)sprintf(src + k, "{{ r(n + 1) }}");
    for (int i = 0; i < 150; i++)
        k += (size_t)sprintf(src + k, "{%% endif %%}");
    sprintf(src + k, "{%% endmacro %%}{{ r(0) }}");
    ob_err err;
    ob_status st = run(src, NULL, 0, &err);
    free(src);
    CHECK_STATUS(st, OB_ERR_LIMIT, &err, "template evaluation nested deeper than 2000 levels");
    CHECK(strncmp(err.msg, "t:1:", 4) == 0);
}

/* A list nested `depth` deep, built in a loop, then `expr` on it (v, and w another such). */
static ob_status deep_value(int depth, const char *expr, char *out, size_t out_size, ob_err *err) {
    char src[400];
    snprintf(src, sizeof src,
             "{%% set ns = namespace(v=[], w=[]) %%}{%% for i in range(%d) %%}"
             "{%% set ns.v = [ns.v] %%}{%% set ns.w = [ns.w] %%}{%% endfor %%}"
             "{%% set v = ns.v %%}{%% set w = ns.w %%}\n{{ %s }}",
             depth, expr);
    return run(src, out, out_size, err);
}

TEST(deep_values_fail_cleanly) {
    static const struct {
        const char *expr, *what;
    } cases[] = {
        {"v", "value nested deeper than 512 levels"},
        {"v|string", "value nested deeper than 512 levels"},
        {"'%s' % (v,)", "value nested deeper than 512 levels"},
        {"[v]|join", "value nested deeper than 512 levels"},
        {"v ~ 'x'", "value nested deeper than 512 levels"},
        {"v|tojson", "tojson: nesting deeper than 512"},
        {"{'k': v}|tojson(sort_keys=true)", "tojson: nesting deeper than 512"},
        {"v == w", "comparing values nested deeper than 512 levels"},
        {"v != w", "comparing values nested deeper than 512 levels"},
        {"v < w", "comparing values nested deeper than 512 levels"},
        {"v in [w]", "comparing values nested deeper than 512 levels"},
        {"[w].index(v)", "comparing values nested deeper than 512 levels"},
        {"[v, w]|sort", "comparing values nested deeper than 512 levels"},
        {"[v, w]|max", "comparing values nested deeper than 512 levels"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ob_err err;
        ob_status st = deep_value(100000, cases[i].expr, NULL, 0, &err);
        CHECK_MSG(st == OB_ERR_LIMIT && strncmp(err.msg, "t:2:", 4) == 0 &&
                      strstr(err.msg, cases[i].what),
                  "case %zu (%s): %s '%s'", i, cases[i].expr, ob_status_name(st), err.msg);
    }
    /* A million deep, and the same value compared with itself (no walk needed). */
    char out[64];
    ob_err err;
    CHECK_STATUS(deep_value(1000000, "v|string", NULL, 0, &err), OB_ERR_LIMIT, &err,
                 "nested deeper than 512");
    CHECK_EQ_INT(deep_value(100000, "v == v", out, sizeof out, &err), OB_OK);
    CHECK_EQ_STR(out, "True");
    CHECK_EQ_INT(deep_value(100000, "[v, w]|unique|list|length", out, sizeof out, &err), OB_OK);
    CHECK_EQ_INT(
        deep_value(500, "(v|tojson|length, v|string|length, v == w)", out, sizeof out, &err),
        OB_OK);
    CHECK_EQ_STR(out, "(1002, 1002, True)");
}

/* Python prints a list or dict inside itself as [...] / {...}; JSON refuses it. */
TEST(values_containing_themselves) {
    char out[128];
    ob_err err;
    CHECK_EQ_INT(run("{% set x = [1] %}{% set _ = x.append(x) %}{% set d = {} %}"
                     "{% set _ = d.update({'me': d, 'x': x}) %}{{ x }} {{ d }} {{ x == x }}",
                     out, sizeof out, &err),
                 OB_OK);
    CHECK_EQ_STR(out, "[1, [...]] {'me': {...}, 'x': [1, [...]]} True");
    CHECK_STATUS(run("{% set x = [] %}{% set _ = x.append(x) %}\n  {{ x|tojson }}", NULL, 0, &err),
                 OB_ERR_FORMAT, &err, "t:2:");
    CHECK(strstr(err.msg, "Circular reference detected"));
    CHECK_STATUS(run("{% set x = [] %}{% set _ = x.append(x) %}{% set y = [] %}"
                     "{% set _ = y.append(y) %}{{ x == y }}",
                     NULL, 0, &err),
                 OB_ERR_LIMIT, &err, "comparing values nested deeper than 512 levels");
}

/* A flood of tokens stops at CHAT_JINJA_MAX_TOKENS with the position reached; the densest
 * template under that limit still fits the parse memory cap. */
TEST(token_floods_stop_at_the_token_limit) {
    size_t items = CHAT_JINJA_MAX_TOKENS / 2 + 10;
    char *flood = repeat_src("[", "1,", items, "1]");
    CHECK(flood);
    char *src = malloc(strlen(flood) + 8);
    CHECK(src);
    sprintf(src, "\n\n%s", flood);
    free(flood);
    ob_err err;
    chat_jinja *t = NULL;
    ob_status st = chat_jinja_parse(src, strlen(src), "t", &t, &err);
    free(src);
    CHECK_STATUS(st, OB_ERR_LIMIT, &err, "t:3:");
    CHECK(strstr(err.msg, "template has more than 1048576 tokens"));
    /* `-1,` is three tokens and three nodes' worth of tree: the most memory per token. */
    char *dense = repeat_src("[", "-1,", CHAT_JINJA_MAX_TOKENS / 3 - 4, "1]");
    CHECK(dense);
    st = chat_jinja_parse(dense, strlen(dense), "t", &t, &err);
    free(dense);
    CHECK_MSG(st == OB_OK, "%s", err.msg);
    chat_jinja_free(t);
}

/* A template that would run for hours stops at its wall-clock budget, wherever it is. */
TEST(rendering_stops_at_the_time_budget) {
    const char *src = "{% for i in range(1000000) %}{% for j in range(1000000) %}\n"
                      "{% set x = i * j %}{% endfor %}{% endfor %}";
    chat_jinja_opts o = {.max_steps = INT64_MAX, .max_seconds = 0.2};
    ob_err err;
    double t0 = now_s();
    ob_status st = run_opts(src, strlen(src), &o, NULL, 0, NULL, &err);
    double dt = now_s() - t0;
    CHECK_STATUS(st, OB_ERR_LIMIT, &err, "template rendering took longer than 0.2 s");
    CHECK_MSG(strncmp(err.msg, "t:", 2) == 0 && dt < 2.0, "'%s' after %.2f s", err.msg, dt);
    /* Steps that each scan 100 MB: the clock is read by the bytes scanned, not only by steps. */
    const char *scan = "{% set s = 'a' * 100000000 %}{% for i in range(1000000) %}"
                       "{% if 'b' in s or s.find('b') > 0 %}{% endif %}{% endfor %}";
    t0 = now_s();
    st = run_opts(scan, strlen(scan), &o, NULL, 0, NULL, &err);
    dt = now_s() - t0;
    CHECK_STATUS(st, OB_ERR_LIMIT, &err, "template rendering took longer than 0.2 s");
    CHECK_MSG(dt < 3.0, "'%s' after %.2f s", err.msg, dt);
    /* The chat_template API passes the budget through. */
    chat_template *t;
    CHECK_EQ_INT(chat_template_new(src, strlen(src), "t.jinja", &t, &err), OB_OK);
    json_t *conv = json_loads("{\"messages\": []}", 0, NULL);
    chat_template_opts to = {.max_steps = INT64_MAX, .max_seconds = 0.1};
    char *out = NULL;
    size_t n;
    st = chat_template_render(t, conv, &to, &out, &n, &err);
    json_decref(conv);
    chat_template_free(t);
    CHECK_STATUS(st, OB_ERR_LIMIT, &err, "t.jinja:");
    CHECK(strstr(err.msg, "took longer than 0.1 s"));
}

/* Renders src and checks it finishes within `limit` seconds with output `want` (the render's
 * own budget is set past the limit, so a loaded machine reports the time, not a failure). */
static void check_fast(const char *name, const char *src, const char *want, double limit) {
    char out[256];
    ob_err err;
    chat_jinja_opts o = {.max_seconds = 10 * limit};
    double t0 = now_s();
    ob_status st = run_opts(src, strlen(src), &o, out, sizeof out, NULL, &err);
    double dt = now_s() - t0;
    if (st) {
        t_report(__FILE__, __LINE__, name);
        fprintf(stderr, "     %s: %s\n", ob_status_name(st), err.msg);
    } else if (strcmp(out, want) != 0 || dt > limit) {
        t_report(__FILE__, __LINE__, name);
        fprintf(stderr, "     got \"%s\" in %.2f s, want \"%s\" within %.1f s\n", out, dt, want,
                limit);
    }
}

/* Work that was quadratic (or worse) and is now linear or n log n. The bounds are ten times
 * what a sanitizer build takes; the old code took minutes to hours, or hit a limit. */
TEST(linear_paths_stay_linear) {
    /* 40,000 inserts took 6.4 s with a scan per insert. */
    check_fast("dict.update in a loop",
               "{% set d = {} %}{% for i in range(200000) %}{% set _ = d.update({i|string: i}) %}"
               "{% endfor %}{{ d|length }} {{ d['199999'] }} {{ '77' in d }} {{ 77 in d }}",
               "200000 199999 True False", 30);
    check_fast("namespace attributes and dict lookups",
               "{% set ns = namespace(n=0) %}{% set d = dict(a=1) %}{% for i in range(100000) %}"
               "{% set _ = d.update({i: i}) %}{% set ns.n = ns.n + d[i // 2] %}{% endfor %}"
               "{{ ns.n }}",
               "2499950000", 30);
    /* 300,000 appends to one string copied 90 GB before; it now doubles its buffer. */
    check_fast("string built in a loop",
               "{% set ns = namespace(s='', t='') %}{% for i in range(300000) %}"
               "{% set ns.s = ns.s ~ 'xy' %}{% set ns.t = ns.t + 'z' %}{% endfor %}"
               "{{ ns.s|length }} {{ ns.t|length }} {{ ns.s[-3:] }}",
               "600000 300000 yxy", 30);
    /* An insertion sort of 100,000 items ran into the step limit. */
    check_fast("sort",
               "{% set l = range(100000)|reverse|list %}{{ (l|sort)[:3] }} {{ (l|sort)[-1] }}",
               "[0, 1, 2] 99999", 30);
    check_fast("unique", "{{ (range(100000)|list + range(100000)|list)|unique|list|length }}",
               "100000", 30);
    /* Each slice walked the string from the start for every character. */
    check_fast("string slices",
               "{% set s = 'ab' * 500000 %}{% set ns = namespace() %}{% for i in range(20) %}"
               "{% set ns.t = s[1:] %}{% set ns.u = s[::-1] %}{% endfor %}"
               "{{ ns.t|length }} {{ ns.u[:3] }} {{ s[-4::2] }}",
               "999999 bab aa", 30);
    /* A backward scan comparing 100,000 bytes at each of a million offsets. */
    check_fast("searches",
               "{% set s = 'a' * 1000000 %}{% set n = 'a' * 100000 %}{{ s.rfind(n) }} "
               "{{ s.find(n ~ 'b') }} {{ s.count(n) }} {{ (s ~ 'b' ~ s).rsplit(n ~ 'b')|length }}",
               "900000 -1 10 2", 30);
}

/* `'' * 10**18` is empty at once (it looped 10**18 times); a big repeat is one allocation. */
TEST(repeats_are_sized_up_front) {
    char out[64];
    ob_err err;
    CHECK_EQ_INT(
        run("{{ ('' * 1000000000000000000)|length }} {{ ([] * 1000000000000000000)|length }} "
            "{{ ('ab' * 100000000)|length }} {{ 'ab' * 3 }} {{ (1,) * 2 }}",
            out, sizeof out, &err),
        OB_OK);
    CHECK_EQ_STR(out, "0 0 200000000 ababab (1, 1)");
    CHECK_STATUS(run("{{ 'ab' * 1000000000 }}", NULL, 0, &err), OB_ERR_LIMIT, &err,
                 "string repeated 1000000000 times is over the memory limit");
}

TEST(strftime_returns_the_whole_text) {
    char out[64];
    ob_err err;
    CHECK_EQ_INT(run("{{ strftime_now('%Y' * 100000)|length }}", out, sizeof out, &err), OB_OK);
    CHECK_EQ_STR(out, "400000");
    /* datetime's own codes for a whole-second naive time: no zone, zero microseconds. */
    CHECK_EQ_INT(
        run("[{{ strftime_now('%z|%Z|%f|%%|%') }}][{{ strftime_now('') }}]", out, sizeof out, &err),
        OB_OK);
    CHECK_EQ_STR(out, "[||000000|%|%][]");
}

/* Every allocation in turn fails on the new paths (hash index, growing strings, merge sort,
 * printing with the path of containers, long strftime, reversed search): OB_ERR_NOMEM each
 * time, no crash and no leak. */
TEST(allocation_failures_on_the_new_paths) {
    const char *src =
        "{% set d = {} %}{% set ns = namespace(s='') %}{% for i in range(40) %}"
        "{% set _ = d.update({i|string: [i]}) %}{% set ns.s = ns.s ~ i %}{% endfor %}"
        "{{ d['7'] }}{{ d|tojson(sort_keys=true)|length }}{{ (d.values()|list)|sort|first }}"
        "{{ [3, 1, 2, 1]|unique|list }}{{ ns.s[::-3] }}{{ strftime_now('%Y' * 600)|length }}"
        "{{ (ns.s * 3).rfind(ns.s[:20]) }}{{ (ns.s * 3).rsplit(ns.s[:20]) }}{{ [d] }}";
    bool done = false;
    for (int64_t n = 0; n < 100000 && !done; n++) {
        ob_alloc_fail_after(n);
        ob_err err;
        chat_jinja_opts o = {.now = 1741953600};
        ob_status st = run_opts(src, strlen(src), &o, NULL, 0, NULL, &err);
        ob_alloc_fail_after(-1);
        if (!st)
            done = true;
        else
            CHECK_MSG(st == OB_ERR_NOMEM, "fail after %lld: %s (%s)", (long long)n,
                      ob_status_name(st), err.msg);
    }
    CHECK(done);
}

int main(void) {
    RUN(every_chain_stops_at_the_nesting_limit);
    RUN(a_chain_at_the_limit_still_renders);
    RUN(a_chain_in_a_gguf_template_is_refused_with_its_position);
    RUN(evaluation_depth_is_bounded);
    RUN(deep_values_fail_cleanly);
    RUN(values_containing_themselves);
    RUN(token_floods_stop_at_the_token_limit);
    RUN(rendering_stops_at_the_time_budget);
    RUN(linear_paths_stay_linear);
    RUN(repeats_are_sized_up_front);
    RUN(strftime_returns_the_whole_text);
    RUN(allocation_failures_on_the_new_paths);
    return t_summary();
}
