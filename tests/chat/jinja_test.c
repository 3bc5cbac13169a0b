/*
 * Unit tests for the Jinja interpreter's failure paths and limits: malformed templates give
 * OB_ERR_FORMAT naming line and column; runtime errors name where they happened;
 * raise_exception carries the template's message; endless loops, runaway recursion, deep
 * nesting and huge strings stop with OB_ERR_LIMIT; every allocation failure during parse and
 * render is reported, never a crash or a leak. Rendering output itself is compared with jinja2
 * in test_jinja_features.py and test_template_golden.py.
 */
#include "chat/jinja.h"
#include "chat/template.h"
#include "chat/value.h"
#include "core/alloc.h"
#include "core/err.h"
#include "test.h"

#include <jansson.h>

/* Parses and renders `src` with variables from JSON `vars`; returns the status, fills err and
 * (on success) out. */
static ob_status render_opts(const char *src, const char *vars, int64_t max_steps, size_t mem_cap,
                             char *out, size_t out_size, ob_err *err) {
    chat_jinja *t;
    ob_err_clear(err);
    ob_status st = chat_jinja_parse(src, strlen(src), "t", &t, err);
    if (st) return st;
    chat_arena *a = chat_arena_new(mem_cap ? mem_cap : CHAT_JINJA_MAX_MEMORY);
    json_t *j = json_loads(vars ? vars : "{}", 0, NULL);
    chat_val v;
    st = a && j ? chat_val_from_json(a, j, &v, err) : OB_ERR_NOMEM;
    const char *text = NULL;
    size_t n = 0;
    chat_jinja_opts o = {.now = 1741953600, .max_steps = max_steps};
    if (!st) st = chat_jinja_render(t, a, v, &o, &text, &n, err);
    if (!st && out) snprintf(out, out_size, "%.*s", (int)n, text);
    json_decref(j);
    chat_arena_free(a);
    chat_jinja_free(t);
    return st;
}

static ob_status render(const char *src, const char *vars, char *out, size_t out_size,
                        ob_err *err) {
    return render_opts(src, vars, 0, 0, out, out_size, err);
}

/* Each malformed template fails to parse with a message naming "t:LINE:COL". */
TEST(malformed_templates_name_line_and_column) {
    static const struct {
        const char *src, *where, *what;
    } cases[] = {
        {"{% if x %}abc", "t:1:4:", "never closed"},
        {"a\n{% for i in l %}\n{{ i }}", "t:2:4:", "endfor"},
        {"{{ x ", "t:1:1:", "unclosed"},
        {"{{ 1 + }}", "t:1:8:", "unexpected"},
        {"{{ x|nofilter }}", "t:1:6:", "unknown filter 'nofilter'"},
        {"{{ x is nosuchtest }}", "t:1:9:", "unknown test 'nosuchtest'"},
        {"{% foo %}", "t:1:4:", "unknown tag 'foo'"},
        {"{% endif %}", "t:1:4:", "unknown tag 'endif'"},
        {"{% for x in %}{% endfor %}", "t:1:13:", "unexpected"},
        {"{{ 'abc }}", "t:1:4:", "unterminated string"},
        {"ok\n{# comment", "t:2:1:", "comment"},
        {"{% raw %}never ends", "t:1:1:", "raw"},
        {"line1\nline2 {{ ) }}", "t:2:10:", "unexpected"},
        {"{{ (1 }}", "t:1:7:", "unexpected"},
        {"{{ [1, 2 }}", "t:1:10:", "unexpected"},
        {"{% set %}", "t:1:8:", "unexpected"},
        {"{% macro m(a %}{% endmacro %}", "t:1:15:", "unexpected closing bracket"},
        {"{{ a.'x' }}", "t:1:6:", "unexpected"},
        {"{{ f(a=1, 2) }}", "t:1:11:", "positional argument after a keyword"},
        {"{% if x %}{% else %}{% else %}{% endif %}", "t:1:", "unknown tag 'else'"},
        {"{{ x @ y }}", "t:1:6:", "unexpected character '@'"},
        {"{% for x in y recursive %}{% endfor %}", "t:1:", "not supported"},
        {"{{ 99999999999999999999 }}", "t:1:4:", "too large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ob_err err;
        chat_jinja *t = NULL;
        ob_status st = chat_jinja_parse(cases[i].src, strlen(cases[i].src), "t", &t, &err);
        CHECK_MSG(st == OB_ERR_FORMAT && !t, "case %zu (%s): status %s", i, cases[i].src,
                  ob_status_name(st));
        CHECK_MSG(strstr(err.msg, cases[i].where) == err.msg, "case %zu: '%s' lacks %s", i, err.msg,
                  cases[i].where);
        CHECK_MSG(strstr(err.msg, cases[i].what), "case %zu: '%s' lacks %s", i, err.msg,
                  cases[i].what);
    }
}

TEST(runtime_errors_name_line_and_column) {
    ob_err err;
    CHECK_STATUS(render("{% for i in [1] %}\n  {{ i.x.y }}{% endfor %}", NULL, NULL, 0, &err),
                 OB_ERR_FORMAT, &err, "t:2:");
    CHECK(strstr(err.msg, "'int object' has no attribute 'x'"));
    CHECK_STATUS(render("{{ missing.attr }}", NULL, NULL, 0, &err), OB_ERR_FORMAT, &err,
                 "'missing' is undefined");
    CHECK_STATUS(render("\n\n   {{ 1 + 'a' }}", NULL, NULL, 0, &err), OB_ERR_FORMAT, &err, "t:3:");
    CHECK(strstr(err.msg, "unsupported operand type(s) for +: 'int' and 'str'"));
    CHECK_STATUS(render("{{ [1].nosuch() }}", NULL, NULL, 0, &err), OB_ERR_FORMAT, &err,
                 "has no attribute 'nosuch'");
    CHECK_STATUS(render("{{ 1 // 0 }}", NULL, NULL, 0, &err), OB_ERR_FORMAT, &err, "by zero");
    CHECK_STATUS(render("{% set a, b = [1] %}", NULL, NULL, 0, &err), OB_ERR_FORMAT, &err,
                 "expected 2 values to unpack, got 1");
    CHECK_STATUS(render("{% set x = 1 %}{% set x.y = 2 %}", NULL, NULL, 0, &err), OB_ERR_FORMAT,
                 &err, "non-namespace");
    CHECK_STATUS(render("{{ 9223372036854775807 + 1 }}", NULL, NULL, 0, &err), OB_ERR_FORMAT, &err,
                 "overflow");
}

TEST(raise_exception_carries_the_message) {
    ob_err err;
    const char *src = "{% if messages[0].role != 'user' %}\n"
                      "{{ raise_exception('Conversation must start with a user turn') }}\n"
                      "{% endif %}";
    CHECK_STATUS(render(src, "{\"messages\": [{\"role\": \"system\"}]}", NULL, 0, &err), OB_ERR_ARG,
                 &err, "t:2:");
    CHECK(strstr(err.msg, "Conversation must start with a user turn"));
    char out[64];
    CHECK_EQ_INT(render(src, "{\"messages\": [{\"role\": \"user\"}]}", out, sizeof out, &err),
                 OB_OK);
    CHECK_EQ_STR(out, "");
}

TEST(endless_loops_stop_at_the_step_limit) {
    ob_err err;
    const char *src =
        "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}"
        "{% endfor %}{% endfor %}{% endfor %}";
    CHECK_STATUS(render_opts(src, NULL, 100000, 0, NULL, 0, &err), OB_ERR_LIMIT, &err,
                 "more than 100000 steps");
    CHECK_STATUS(render("{{ range(100000000)|length }}", NULL, NULL, 0, &err), OB_ERR_LIMIT, &err,
                 "range of 100000000 items");
}

TEST(runaway_recursion_stops) {
    ob_err err;
    CHECK_STATUS(
        render("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", NULL, NULL, 0, &err),
        OB_ERR_LIMIT, &err, "macro 'r': calls nested deeper than");
}

TEST(deep_nesting_is_refused_while_parsing) {
    /* (2 * 5000 + 10) bytes: 5000 nested parentheses. */
    static char src[10100];
    size_t n = 0;
    n += (size_t)snprintf(src, sizeof src, "{{ ");
    for (int i = 0; i < 5000; i++)
        src[n++] = '(';
    src[n++] = '1';
    for (int i = 0; i < 5000; i++)
        src[n++] = ')';
    snprintf(src + n, sizeof src - n, " }}");
    ob_err err;
    chat_jinja *t;
    CHECK_EQ_INT(chat_jinja_parse(src, strlen(src), "t", &t, &err), OB_ERR_FORMAT);
    CHECK(strstr(err.msg, "nested deeper than 200 levels") || strstr(err.msg, "brackets nested"));
    /* Blocks nested too deep: 300 ifs. */
    static char blk[300 * 20 + 10];
    n = 0;
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(blk + n, sizeof blk - n, "{%% if 1 %%}");
    CHECK_EQ_INT(chat_jinja_parse(blk, n, "t", &t, &err), OB_ERR_FORMAT);
    CHECK(strstr(err.msg, "blocks nested deeper than 200 levels"));
}

TEST(huge_strings_hit_the_memory_cap) {
    ob_err err;
    CHECK_STATUS(render("{{ 'x' * 10000000000 }}", NULL, NULL, 0, &err), OB_ERR_LIMIT, &err,
                 "over the memory limit");
    const char *dbl = "{% set ns = namespace(s='0123456789abcdef') %}{% for i in range(40) %}"
                      "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}";
    CHECK_STATUS(render_opts(dbl, NULL, 0, 8u << 20, NULL, 0, &err), OB_ERR_LIMIT, &err,
                 "MiB of memory");
}

TEST(append_and_update_mutate_in_place) {
    /* transformers' sandbox refuses these; outboard allows them with Python's semantics. */
    ob_err err;
    char out[128];
    CHECK_EQ_INT(
        render("{% set x = [] %}{% for i in range(3) %}{% set _ = x.append(i * i) %}"
               "{% endfor %}{{ x }}{% set d = {} %}{% set _ = d.update({'k': x|length}) %}{{ d }}",
               NULL, out, sizeof out, &err),
        OB_OK);
    CHECK_EQ_STR(out, "[0, 1, 4]{'k': 3}");
}

TEST(float_repr_matches_python) {
    static const struct {
        double v;
        const char *py; /* Python's repr(v) */
    } cases[] = {
        {0.1, "0.1"},
        {1.0 / 3, "0.3333333333333333"},
        {100.0, "100.0"},
        {1e16, "1e+16"},
        {1e15, "1000000000000000.0"},
        {1e-5, "1e-05"},
        {0.0001, "0.0001"},
        {-0.0, "-0.0"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {123456789.125, "123456789.125"},
        {2.5e-7, "2.5e-07"},
        {1.5e300, "1.5e+300"},
        {0.30000000000000004, "0.30000000000000004"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        chat_float_repr(cases[i].v, buf);
        CHECK_EQ_STR(buf, cases[i].py);
    }
}

/* Every allocation during parse and render fails in turn: each run reports OB_ERR_NOMEM (or
 * succeeds once the failure point is past the end) and leaks nothing (ASan in `make check`). */
TEST(allocation_failures_are_reported) {
    const char *src = "{%- set ns = namespace(n=0) -%}\n"
                      "{% for m in messages if m.role != 'system' %}{% set ns.n = ns.n + 1 %}"
                      "<|{{ m.role }}|>{{ m.content|trim }}{{ m|tojson }}{% endfor %}"
                      "{% macro f(x) %}[{{ x|upper }}]{% endmacro %}{{ f('a') }}{{ ns.n }}"
                      "{{ messages|map(attribute='role')|join(',') }}{{ 'a b'.split() }}";
    const char *conv =
        "{\"messages\": [{\"role\": \"system\", \"content\": \" s \"}, "
        "{\"role\": \"user\", \"content\": \"hi\"}], \"add_generation_prompt\": true}";
    json_t *j = json_loads(conv, 0, NULL);
    CHECK(j);
    int64_t n;
    bool done = false;
    for (n = 0; n < 100000 && !done; n++) {
        ob_alloc_fail_after(n);
        ob_err err;
        chat_template *t = NULL;
        char *out = NULL;
        size_t len;
        ob_status st = chat_template_new(src, strlen(src), "t", &t, &err);
        if (!st) st = chat_template_render(t, j, NULL, &out, &len, &err);
        ob_alloc_fail_after(-1);
        chat_template_free(t);
        if (!st) {
            done = true;
            CHECK(out && strstr(out, "<|user|>hi"));
        } else {
            CHECK_MSG(st == OB_ERR_NOMEM, "fail after %lld: %s (%s)", (long long)n,
                      ob_status_name(st), err.msg);
        }
        ob_free(out);
    }
    json_decref(j);
    CHECK(done);
}

TEST(template_render_api) {
    const char *src =
        "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}{{ tools is none }}{{ extra }}";
    chat_template *t;
    ob_err err;
    CHECK_EQ_INT(chat_template_new(src, strlen(src), "t", &t, &err), OB_OK);
    json_t *conv = json_loads("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], "
                              "\"extra\": 5}",
                              0, NULL);
    chat_template_opts o = {.bos_token = "<s>", .add_generation_prompt = true};
    char *out;
    size_t n;
    CHECK_EQ_INT(chat_template_render(t, conv, &o, &out, &n, &err), OB_OK);
    CHECK_EQ_STR(out, "<s>user:hi;assistant:True5");
    CHECK_EQ_INT(n, strlen(out));
    ob_free(out);
    json_decref(conv);
    conv = json_loads("{\"msgs\": []}", 0, NULL);
    CHECK_STATUS(chat_template_render(t, conv, &o, &out, &n, &err), OB_ERR_ARG, &err, "messages");
    json_decref(conv);
    chat_template_free(t);
}

int main(void) {
    RUN(malformed_templates_name_line_and_column);
    RUN(runtime_errors_name_line_and_column);
    RUN(raise_exception_carries_the_message);
    RUN(endless_loops_stop_at_the_step_limit);
    RUN(runaway_recursion_stops);
    RUN(deep_nesting_is_refused_while_parsing);
    RUN(huge_strings_hit_the_memory_cap);
    RUN(append_and_update_mutate_in_place);
    RUN(float_repr_matches_python);
    RUN(allocation_failures_are_reported);
    RUN(template_render_api);
    return t_summary();
}
