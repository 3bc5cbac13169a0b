/*
 * The routing policy's decision (serve_policy_decide) rule by rule, its reader's errors, and
 * the reader of upstream streams (serve_upstream_reader) on both dialects, fed whole and one
 * byte at a time (the result must not depend on how the body was split).
 */
#include "serve/serve_policy.h"
#include "serve/serve_upstream.h"

#include "core/alloc.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

static const char POLICY[] =
    "{\"upstreams\": {\"team\": {\"base_url\": \"http://10.0.0.5:8080/\", \"models\": "
    "{\"big\": \"qwen3-235b\"}},"
    "                 \"hosted\": {\"base_url\": \"https://api.example\", \"dialect\": "
    "\"anthropic\"}},"
    " \"local_only_keys\": [\"lk\"],"
    " \"never_leave\": {\"headers\": [\"X-Private\"], \"patterns\": [\"SECRET-[0-9]+\"]},"
    " \"rules\": ["
    "  {\"name\": \"big\", \"upstream\": \"team\", \"models\": [\"big\"]},"
    "  {\"name\": \"claude\", \"upstream\": \"hosted\", \"models\": [\"claude-*\"], "
    "\"api_keys\": [\"k1\"]},"
    "  {\"name\": \"missing\", \"upstream\": \"team\", \"when\": {\"model_missing\": true}},"
    "  {\"name\": \"busy\", \"upstream\": \"team\", \"when\": {\"queue_over\": 8, "
    "\"prompt_over_context\": true, \"speed_below\": 5}},"
    "  {\"name\": \"asked\", \"upstream\": \"hosted\", \"requested\": true}]}";

static serve_policy *load(void) {
    serve_policy *p = NULL;
    serve_error e;
    if (serve_policy_parse(POLICY, strlen(POLICY), &p, &e))
        fprintf(stderr, "policy: %s\n", e.message);
    return p;
}

static serve_route_facts facts(const char *model, bool local) {
    serve_route_facts f = {.model = model, .model_local = local, .prompt_tokens = -1,
                           .local_ctx = 4096};
    return f;
}

/* The rule's name, "local" or "refused". */
static const char *where(const serve_policy *p, const serve_route_facts *f) {
    serve_route_decision d;
    serve_policy_decide(p, f, &d);
    if (!d.why[0]) return "(no reason given)";
    if (d.action == SERVE_ROUTE_REFUSE) return "refused";
    if (d.action == SERVE_ROUTE_TO_LOCAL) return "local";
    if (!d.rule || d.upstream != serve_policy_upstream_at(p, d.rule->upstream))
        return "(upstream and rule disagree)";
    return d.rule->name;
}

TEST(reads_a_policy) {
    serve_policy *p = load();
    CHECK(p);
    if (!p) return;
    CHECK_EQ_INT(serve_policy_n_upstreams(p), 2);
    CHECK_EQ_INT(serve_policy_n_rules(p), 5);
    const serve_policy_upstream *u = serve_policy_upstream_at(p, 0);
    CHECK_EQ_STR(u->name, "team"); /* in the order written */
    CHECK(serve_policy_upstream_at(p, 1)->dialect == SERVE_UPSTREAM_ANTHROPIC);
    CHECK_EQ_STR(u->base_url, "http://10.0.0.5:8080"); /* trailing '/' dropped */
    CHECK_EQ_STR(serve_policy_map_model(u, "big"), "qwen3-235b");
    CHECK_EQ_STR(serve_policy_map_model(u, "other"), "other");
    CHECK(serve_policy_needs_prompt_tokens(p));
    CHECK(serve_policy_knows_key(p, "lk") && serve_policy_knows_key(p, "k1"));
    CHECK(!serve_policy_knows_key(p, "k2") && !serve_policy_knows_key(p, NULL));
    serve_policy_free(p);
}

TEST(rules_in_order_filters_and_conditions) {
    serve_policy *p = load();
    serve_route_facts f = facts("big", false);
    CHECK_EQ_STR(where(p, &f), "big");
    f = facts("claude-4", false);
    CHECK_EQ_STR(where(p, &f), "missing"); /* claude needs key k1 */
    f.api_key = "k1";
    CHECK_EQ_STR(where(p, &f), "claude");
    f = facts("small", true);
    CHECK_EQ_STR(where(p, &f), "local");
    f.queue_waiting = 8;
    CHECK_EQ_STR(where(p, &f), "local");
    f.queue_waiting = 9;
    CHECK_EQ_STR(where(p, &f), "busy");
    f = facts("small", true);
    f.prompt_tokens = 4096;
    CHECK_EQ_STR(where(p, &f), "busy");
    f.prompt_tokens = 4095;
    CHECK_EQ_STR(where(p, &f), "local");
    f.local_tok_s = 4.5;
    CHECK_EQ_STR(where(p, &f), "busy");
    f.local_tok_s = 0; /* not measured: the floor cannot hold */
    CHECK_EQ_STR(where(p, &f), "local");
    f.pref = SERVE_ROUTE_UPSTREAM;
    CHECK_EQ_STR(where(p, &f), "asked");
    serve_policy_free(p);
}

TEST(pins_come_before_every_rule) {
    serve_policy *p = load();
    serve_route_facts f = facts("big", false);
    f.pref = SERVE_ROUTE_LOCAL;
    CHECK_EQ_STR(where(p, &f), "refused");
    f = facts("big", false);
    f.api_key = "lk";
    CHECK_EQ_STR(where(p, &f), "refused");
    f = facts("big", false);
    f.marked_header = true;
    CHECK_EQ_STR(where(p, &f), "refused");
    f = facts("big", false);
    f.body = "{\"content\": \"SECRET-99\"}";
    f.body_len = strlen(f.body);
    CHECK_EQ_STR(where(p, &f), "refused");
    /* served here when it can be, whatever asks for upstream */
    f = facts("small", true);
    f.pref = SERVE_ROUTE_UPSTREAM;
    f.marked_header = true;
    CHECK_EQ_STR(where(p, &f), "local");
    /* without a policy, always local */
    f = facts("big", false);
    serve_route_decision d;
    serve_policy_decide(NULL, &f, &d);
    CHECK(d.action == SERVE_ROUTE_TO_LOCAL);
    serve_policy_free(p);
}

TEST(route_header_values) {
    serve_route_pref r;
    CHECK(serve_route_pref_parse(NULL, &r) == 0 && r == SERVE_ROUTE_AUTO);
    CHECK(serve_route_pref_parse("Local", &r) == 0 && r == SERVE_ROUTE_LOCAL);
    CHECK(serve_route_pref_parse("UPSTREAM", &r) == 0 && r == SERVE_ROUTE_UPSTREAM);
    CHECK(serve_route_pref_parse("elsewhere", &r) == -1);
}

TEST(bad_policies_name_the_field) {
    static const struct {
        const char *doc, *words;
    } CASES[] = {
        {"[]", "the policy: expected an object, got array"},
        {"{\"rules\": [}", "not valid JSON at line 1"},
        {"{\"rules\": [], \"rules\": []}", "duplicate object key"},
        {"{\"rules\": 3}", "rules: expected an array"},
        {"{\"upstreams\": {\"u\": {}}}", "upstreams.u.base_url: required"},
        {"{\"upstreams\": {\"u\": {\"base_url\": \"http://a b\"}}}", "must not contain spaces"},
        {"{\"upstreams\": {\"u\": {\"base_url\": \"http://a\", \"timeout_s\": -1}}}",
         "upstreams.u.timeout_s"},
        {"{\"upstreams\": {\"u\": {\"base_url\": \"http://a\", \"models\": {\"a\": 1}}}}",
         "upstreams.u.models.a"},
        {"{\"upstreams\": {\"u\": {\"base_url\": \"http://a\"}}, \"rules\": [{\"name\": \"a\", "
         "\"upstream\": \"u\"}, {\"name\": \"a\", \"upstream\": \"u\"}]}",
         "rules[1].name: \"a\" names rules[0] too"},
        {"{\"upstreams\": {\"u\": {\"base_url\": \"http://a\"}}, \"rules\": [{\"upstream\": "
         "\"u\"}]}",
         "rules[0].name: required"},
        {"{\"upstreams\": {\"u\": {\"base_url\": \"http://a\"}}, \"rules\": [{\"name\": \"a\", "
         "\"upstream\": \"u\", \"models\": []}]}",
         "rules[0].models: expected 1 to"},
        {"{\"upstreams\": {\"u\": {\"base_url\": \"http://a\"}}, \"rules\": [{\"name\": \"a\", "
         "\"upstream\": \"u\", \"when\": {\"queue_over\": -2}}]}",
         "rules[0].when.queue_over"},
        {"{\"never_leave\": {\"patterns\": [\"a(\"]}}", "never_leave.patterns[0]:"},
        {"{\"local_only_keys\": [\"\"]}", "local_only_keys[0]: must be a non-empty string"},
        {"{\"rules\": [], \"extra\": 1}", "extra: unknown field"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        serve_policy *p = NULL;
        serve_error e;
        CHECK_MSG(serve_policy_parse(CASES[i].doc, strlen(CASES[i].doc), &p, &e) == -1,
                  "accepted: %s", CASES[i].doc);
        CHECK_MSG(strstr(e.message, CASES[i].words), "%s -> %s", CASES[i].doc, e.message);
        CHECK(p == NULL);
    }
}

/* ---- streams ---- */

typedef struct seen {
    char text[512], reasoning[512], calls[512], finish[16], error[128];
    int64_t prompt, completion;
} seen;

static void s_text(void *u, const char *c, size_t cl, const char *r, size_t rl) {
    seen *s = u;
    strncat(s->text, c ? c : "", cl);
    strncat(s->reasoning, r ? r : "", rl);
}
static void s_call(void *u, const ob_tool_call *c) {
    seen *s = u;
    char one[200];
    snprintf(one, sizeof one, "%s/%s%s;", c->id ? c->id : "-", c->name, c->arguments);
    strcat(s->calls, one);
}
static void s_finish(void *u, const char *reason) {
    snprintf(((seen *)u)->finish, 16, "%s", reason);
}
static void s_usage(void *u, int64_t p, int64_t c, int64_t k) {
    ((seen *)u)->prompt = p;
    ((seen *)u)->completion = c;
}
static void s_error(void *u, const char *m) {
    snprintf(((seen *)u)->error, 128, "%s", m);
}

static void read_stream(serve_upstream_dialect d, const char *body, size_t stride, seen *s,
                        bool *finished) {
    memset(s, 0, sizeof *s);
    serve_upstream_sink sink = {s, s_text, s_call, s_finish, s_usage, s_error};
    serve_upstream_reader *r = serve_upstream_reader_new(d, &sink);
    size_t n = strlen(body);
    for (size_t i = 0; i < n; i += stride)
        CHECK(serve_upstream_reader_feed(r, body + i, n - i < stride ? n - i : stride) == 0);
    *finished = serve_upstream_reader_finish(r);
    serve_upstream_reader_free(r);
}

static const char OPENAI_STREAM[] =
    "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"reasoning_content\":\"hmm\"}}]}\r\n\r\n"
    ": keep-alive\n\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hi \\u00e9\"}}]}\n\n"
    "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":"
    "{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":\"}},{\"index\":1,\"id\":\"c2\",\"function\":"
    "{\"name\":\"g\",\"arguments\":\"\"}}]}}]}\n\n"
    "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
    "\" 1}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7}}\n\n"
    "data: [DONE]\n\n";

static const char ANTHROPIC_STREAM[] =
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":"
    "{\"input_tokens\":9}}}\n\n"
    "event: ping\ndata: {\"type\":\"ping\"}\n\n"
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
    "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
    "{\"type\":\"thinking_delta\",\"thinking\":\"plan\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
    "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
    "{\"type\":\"text_delta\",\"text\":\"Sure\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,"
    "\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu\",\"name\":\"h\",\"input\":{}}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":"
    "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"q\\\": [1,\"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":"
    "{\"type\":\"input_json_delta\",\"partial_json\":\" 2]}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
    "\"tool_use\"},\"usage\":{\"output_tokens\":6}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

TEST(openai_stream_any_split) {
    for (size_t stride = 1; stride <= strlen(OPENAI_STREAM); stride = stride * 3 + 1) {
        seen s;
        bool fin;
        read_stream(SERVE_UPSTREAM_OPENAI, OPENAI_STREAM, stride, &s, &fin);
        CHECK(fin);
        CHECK_EQ_STR(s.text, "Hi \xc3\xa9");
        CHECK_EQ_STR(s.reasoning, "hmm");
        CHECK_EQ_STR(s.calls, "c1/f{\"a\":1};c2/g{};");
        CHECK_EQ_STR(s.finish, "tool_calls");
        CHECK(s.prompt == 11 && s.completion == 7);
        CHECK_EQ_STR(s.error, "");
    }
}

TEST(anthropic_stream_any_split) {
    for (size_t stride = 1; stride <= strlen(ANTHROPIC_STREAM); stride = stride * 3 + 1) {
        seen s;
        bool fin;
        read_stream(SERVE_UPSTREAM_ANTHROPIC, ANTHROPIC_STREAM, stride, &s, &fin);
        CHECK(fin);
        CHECK_EQ_STR(s.text, "Sure");
        CHECK_EQ_STR(s.reasoning, "plan");
        CHECK_EQ_STR(s.calls, "tu/h{\"q\":[1,2]};");
        CHECK_EQ_STR(s.finish, "tool_calls");
        CHECK(s.prompt == 9 && s.completion == 6);
    }
}

TEST(broken_streams) {
    seen s;
    bool fin;
    /* cut off: no finish, a call still open is handed over whole or not at all */
    read_stream(SERVE_UPSTREAM_OPENAI,
                "data: {\"choices\":[{\"delta\":{\"content\":\"Hal\"}}]}\n\ndata: {\"choi", 5, &s,
                &fin);
    CHECK(!fin);
    CHECK_EQ_STR(s.text, "Hal");
    read_stream(SERVE_UPSTREAM_OPENAI, "data: {\"error\":{\"message\":\"overloaded\"}}\n\n", 7, &s,
                &fin);
    CHECK_EQ_STR(s.error, "overloaded");
    read_stream(SERVE_UPSTREAM_ANTHROPIC,
                "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                "\"message\":\"busy\"}}\n\n",
                3, &s, &fin);
    CHECK_EQ_STR(s.error, "busy");
    /* arguments that are not a JSON object become {} */
    read_stream(SERVE_UPSTREAM_OPENAI,
                "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":"
                "\"f\",\"arguments\":\"[1\"}}]},\"finish_reason\":\"stop\"}]}\n\n",
                64, &s, &fin);
    CHECK_EQ_STR(s.calls, "-/f{};");
    /* garbage and wrong types are skipped */
    read_stream(SERVE_UPSTREAM_ANTHROPIC,
                "data: nonsense\n\ndata: {\"type\":5}\n\ndata: {\"type\":\"content_block_delta\","
                "\"delta\":{\"text\":7}}\n\n",
                4, &s, &fin);
    CHECK(!fin && !s.text[0]);
    /* an event over the limit fails the reader */
    serve_upstream_sink sink = {&s, s_text, s_call, s_finish, s_usage, s_error};
    serve_upstream_reader *r = serve_upstream_reader_new(SERVE_UPSTREAM_OPENAI, &sink);
    size_t big = SERVE_UPSTREAM_MAX_EVENT + 16;
    char *blob = ob_alloc(big, 1);
    memset(blob, 'x', big);
    memcpy(blob, "data: ", 6);
    CHECK(serve_upstream_reader_feed(r, blob, big) == -1);
    CHECK(serve_upstream_reader_feed(r, "\n\n", 2) == -1);
    ob_free(blob);
    serve_upstream_reader_free(r);
}

int main(void) {
    RUN(reads_a_policy);
    RUN(rules_in_order_filters_and_conditions);
    RUN(pins_come_before_every_rule);
    RUN(route_header_values);
    RUN(bad_policies_name_the_field);
    RUN(openai_stream_any_split);
    RUN(anthropic_stream_any_split);
    RUN(broken_streams);
    return t_summary();
}
