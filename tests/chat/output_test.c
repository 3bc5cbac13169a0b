/*
 * Tests for chat output parsing (src/chat/output_*.c). The cases are data: each file in
 * tests/chat/output_cases/ holds one family's model outputs with the content, reasoning and tool
 * calls an API must return for them. Every case is run
 *  - in one piece, lenient and strict (a case with unreadable calls must fail strict with
 *    OB_ERR_FORMAT naming the family and the byte offset);
 *  - streamed, cut in two at every byte boundary and fed byte by byte: the final result must be
 *    the same, and the deltas must concatenate to the content and reasoning exactly.
 * Then: family detection on the real templates in ../shared/templates, prompt flags, argument
 * errors and an allocation-failure sweep.
 */
#include "test.h"

#include "chat/output.h"
#include "core/alloc.h"

#include <dirent.h>
#include <jansson.h>

#define CASE_DIR "tests/chat/output_cases"

static int n_cases_run;

/* ---- comparing a result with a case ---- */

static const char *str_or(json_t *o, const char *key, const char *dflt) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static unsigned case_flags(json_t *c) {
    unsigned f = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(c, "flags"), i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), "think_open") == 0)
            f |= CHAT_OUTPUT_THINK_OPEN;
    }
    return f;
}

/* Empty string when the result matches the case, else a description of the first difference
 * (static buffer). */
static const char *diff(json_t *c, const chat_output *o) {
    static char why[1024];
    const char *content = str_or(c, "content", ""), *reasoning = str_or(c, "reasoning", "");
    if (strcmp(o->content, content) != 0) {
        snprintf(why, sizeof why, "content \"%s\", expected \"%s\"", o->content, content);
        return why;
    }
    if (strcmp(o->reasoning, reasoning) != 0) {
        snprintf(why, sizeof why, "reasoning \"%s\", expected \"%s\"", o->reasoning, reasoning);
        return why;
    }
    json_t *calls = json_object_get(c, "tool_calls");
    if (o->n_calls != json_array_size(calls)) {
        snprintf(why, sizeof why, "%zu calls, expected %zu (first name %s)", o->n_calls,
                 json_array_size(calls), o->n_calls ? o->calls[0].name : "-");
        return why;
    }
    for (size_t i = 0; i < o->n_calls; i++) {
        json_t *e = json_array_get(calls, i);
        json_error_t je;
        json_t *got = json_loads(o->calls[i].arguments, 0, &je);
        int same = got && json_equal(got, json_object_get(e, "arguments"));
        json_decref(got);
        const char *id = str_or(e, "id", NULL);
        if (strcmp(o->calls[i].name, str_or(e, "name", "")) != 0 || !same ||
            (id == NULL) != (o->calls[i].id == NULL) || (id && strcmp(id, o->calls[i].id))) {
            snprintf(why, sizeof why, "call %zu: %s(%s) id %s, expected %s", i, o->calls[i].name,
                     o->calls[i].arguments, o->calls[i].id ? o->calls[i].id : "-",
                     str_or(e, "name", ""));
            return why;
        }
    }
    json_t *inv = json_object_get(c, "invalid");
    size_t n_inv = json_is_integer(inv) ? (size_t)json_integer_value(inv) : 0;
    if (o->n_invalid != n_inv) {
        snprintf(why, sizeof why, "%zu invalid calls, expected %zu (%s)", o->n_invalid, n_inv,
                 o->n_invalid ? o->invalid[0].reason : "-");
        return why;
    }
    json_t *off = json_object_get(c, "invalid_offset");
    if (json_is_integer(off) && (o->n_invalid == 0 ||
                                 o->invalid[0].offset != (size_t)json_integer_value(off))) {
        snprintf(why, sizeof why, "first invalid call at %zu, expected %lld",
                 o->n_invalid ? o->invalid[0].offset : 0, (long long)json_integer_value(off));
        return why;
    }
    if (o->reasoning_reclassified != json_is_true(json_object_get(c, "reclassified"))) {
        snprintf(why, sizeof why, "reasoning_reclassified %d", o->reasoning_reclassified);
        return why;
    }
    return "";
}

/* ---- streaming ---- */

/* Feeds text cut at the given offsets (ascending, ending with len); checks the result and that
 * the deltas add up. Returns NULL on success or what went wrong. */
static const char *stream_run(chat_family fam, unsigned flags, json_t *c, const char *text,
                              size_t len, const size_t *cuts, size_t n_cuts, const char *tools) {
    static char why[1200];
    chat_output_stream *s = chat_output_stream_new(fam, flags);
    if (!s) return "stream_new failed";
    if (chat_output_stream_set_tools(s, tools, tools ? strlen(tools) : 0, NULL)) {
        chat_output_stream_free(s);
        return "set_tools failed";
    }
    char *dc = calloc(len + 1, 1), *dr = calloc(len + 1, 1);
    size_t ndc = 0, ndr = 0, ncalls = 0, at = 0;
    ob_err err = {{0}};
    chat_output out = {0};
    chat_output_delta d;
    const char *res = NULL;
    for (size_t k = 0; k <= n_cuts && !res; k++) {
        ob_status st = k < n_cuts
                           ? chat_output_stream_feed(s, text + at, cuts[k] - at, &d, &err)
                           : chat_output_stream_finish(s, &d, &out, &err);
        if (st) {
            snprintf(why, sizeof why, "stream failed at cut %zu: %s", k, err.msg);
            res = why;
            break;
        }
        if (k < n_cuts) at = cuts[k];
        if (ndc + d.content_len > len || ndr + d.reasoning_len > len) {
            res = "deltas longer than the text";
            break;
        }
        memcpy(dc + ndc, d.content, d.content_len);
        memcpy(dr + ndr, d.reasoning, d.reasoning_len);
        ndc += d.content_len;
        ndr += d.reasoning_len;
        ncalls += d.n_calls;
    }
    if (!res) {
        const char *dd = diff(c, &out);
        if (*dd) {
            snprintf(why, sizeof why, "streamed result: %s", dd);
            res = why;
        } else if (!out.reasoning_reclassified && strcmp(dc, out.content) != 0) {
            snprintf(why, sizeof why, "content deltas \"%s\" != \"%s\"", dc, out.content);
            res = why;
        } else if (strcmp(dr, out.reasoning) != 0) {
            snprintf(why, sizeof why, "reasoning deltas \"%s\" != \"%s\"", dr, out.reasoning);
            res = why;
        } else if (ncalls != out.n_calls) {
            res = "call deltas do not add up";
        }
    }
    chat_output_clear(&out);
    chat_output_stream_free(s);
    free(dc);
    free(dr);
    return res;
}

/* ---- one case ---- */

static void run_case_with(const char *file, chat_family fam, json_t *c, const char *text,
                          size_t len, unsigned flags, const char *tools, size_t tlen);

static void run_case(const char *file, chat_family fam, json_t *c) {
    const char *name = str_or(c, "name", "?");
    const char *text = str_or(c, "text", NULL);
    CHECK_MSG(text, "%s: case %s has no text", file, name);
    size_t len = strlen(text);
    unsigned flags = case_flags(c);
    n_cases_run++;
    /* Optional: the request's tools, whose schemas type bare-text parameters. */
    json_t *tj = json_object_get(c, "tools");
    char *tools = tj ? json_dumps(tj, JSON_COMPACT) : NULL;
    size_t tlen = tools ? strlen(tools) : 0;
    run_case_with(file, fam, c, text, len, flags, tools, tlen);
    free(tools);
}

static void run_case_with(const char *file, chat_family fam, json_t *c, const char *text,
                          size_t len, unsigned flags, const char *tools, size_t tlen) {
    const char *name = str_or(c, "name", "?");
    ob_err err = {{0}};
    chat_output out;
    CHECK_STATUS(chat_output_parse_tools(fam, text, len, flags, tools, tlen, &out, &err), OB_OK,
                 &err, "");
    const char *d = diff(c, &out);
    size_t first_bad = out.n_invalid ? out.invalid[0].offset : 0;
    size_t n_invalid = out.n_invalid;
    chat_output_clear(&out);
    CHECK_MSG(*d == 0, "%s: %s: %s", file, name, d);

    /* Strict: same result, or a format error naming the family and the first bad offset. */
    ob_status st = chat_output_parse_tools(fam, text, len, flags | CHAT_OUTPUT_STRICT, tools,
                                           tlen, &out, &err);
    if (n_invalid) {
        char where[64];
        snprintf(where, sizeof where, "%s: tool call at byte %zu", chat_family_name(fam),
                 first_bad);
        CHECK_MSG(st == OB_ERR_FORMAT && strstr(err.msg, where), "%s: %s: strict gave %s (%s)",
                  file, name, ob_status_name(st), err.msg);
        CHECK_MSG(out.content == NULL && out.n_calls == 0, "%s: %s: strict error left a result",
                  file, name);
    } else {
        CHECK_MSG(st == OB_OK, "%s: %s: strict failed: %s", file, name, err.msg);
        d = diff(c, &out);
        chat_output_clear(&out);
        CHECK_MSG(*d == 0, "%s: %s: strict: %s", file, name, d);
    }

    /* Streamed: two pieces cut at every byte, then byte by byte. */
    size_t cut[2];
    for (size_t k = 0; k <= len; k++) {
        cut[0] = k;
        cut[1] = len;
        const char *r = stream_run(fam, flags, c, text, len, cut, 2, tools);
        CHECK_MSG(!r, "%s: %s: cut at %zu: %s", file, name, k, r);
    }
    size_t *bytes = malloc((len + 1) * sizeof *bytes);
    for (size_t k = 0; k < len; k++) bytes[k] = k + 1;
    const char *r = stream_run(fam, flags, c, text, len, bytes, len, tools);
    free(bytes);
    CHECK_MSG(!r, "%s: %s: byte by byte: %s", file, name, r);
}

static int n_files;

TEST(case_files) {
    DIR *dir = opendir(CASE_DIR);
    CHECK_MSG(dir, "cannot open %s (run from the repository root)", CASE_DIR);
    struct dirent *e;
    int seen[CHAT_FAMILY_COUNT] = {0};
    while ((e = readdir(dir))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", CASE_DIR, e->d_name);
        json_error_t je;
        json_t *root = json_load_file(path, 0, &je);
        if (!root) closedir(dir);
        CHECK_MSG(root, "%s:%d: %s", path, je.line, je.text);
        chat_family fam;
        ob_err err = {{0}};
        ob_status st = chat_family_from_name(str_or(root, "family", ""), &fam, &err);
        if (st) {
            json_decref(root);
            closedir(dir);
        }
        CHECK_MSG(st == OB_OK, "%s: %s", path, err.msg);
        size_t i;
        json_t *c;
        int before = t_cur_failed;
        json_array_foreach(json_object_get(root, "cases"), i, c) {
            run_case(e->d_name, fam, c);
            if (t_cur_failed && !before) break;
        }
        seen[fam] += (int)json_array_size(json_object_get(root, "cases"));
        printf("%-14s %2zu cases (%s)\n", chat_family_name(fam),
               json_array_size(json_object_get(root, "cases")), e->d_name);
        json_decref(root);
        n_files++;
        if (t_cur_failed) break;
    }
    closedir(dir);
    for (int f = 0; f < CHAT_FAMILY_COUNT && !t_cur_failed; f++)
        CHECK_MSG(seen[f] >= 8, "family %s has %d cases, want at least 8",
                  chat_family_name((chat_family)f), seen[f]);
}

/* ---- detection ---- */

TEST(detects_templates) {
    static const struct {
        const char *file;
        chat_family family;
    } t[] = {
        {"CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", CHAT_FAMILY_COMMAND_R7B},
        {"HuggingFaceTB-SmolLM3-3B.jinja", CHAT_FAMILY_HERMES},
        {"Mistral-Small-3.2-24B-Instruct-2506.jinja", CHAT_FAMILY_MISTRAL},
        {"Qwen-QwQ-32B.jinja", CHAT_FAMILY_HERMES},
        {"Qwen-Qwen2.5-7B-Instruct.jinja", CHAT_FAMILY_HERMES},
        {"Qwen-Qwen3-0.6B.jinja", CHAT_FAMILY_HERMES},
        {"Qwen3-Coder.jinja", CHAT_FAMILY_QWEN3_CODER},
        {"Qwen3.5-4B.jinja", CHAT_FAMILY_QWEN3_CODER},
        {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", CHAT_FAMILY_DEEPSEEK_R1},
        {"deepseek-ai-DeepSeek-V3.1.jinja", CHAT_FAMILY_DEEPSEEK_V31},
        {"google-gemma-2-2b-it.jinja", CHAT_FAMILY_GEMMA},
        {"google-gemma-4-31B-it.jinja", CHAT_FAMILY_GEMMA4},
        {"ibm-granite-granite-3.3-2B-Instruct.jinja", CHAT_FAMILY_GRANITE},
        {"meta-llama-Llama-3.1-8B-Instruct.jinja", CHAT_FAMILY_LLAMA3},
        {"meta-llama-Llama-3.2-3B-Instruct.jinja", CHAT_FAMILY_LLAMA3},
        {"meta-llama-Llama-3.3-70B-Instruct.jinja", CHAT_FAMILY_LLAMA3},
        {"microsoft-Phi-3.5-mini-instruct.jinja", CHAT_FAMILY_PLAIN},
        {"mistralai-Mistral-Nemo-Instruct-2407.jinja", CHAT_FAMILY_MISTRAL},
        {"openai-gpt-oss-120b.jinja", CHAT_FAMILY_GPT_OSS},
    };
    char rel[256];
    snprintf(rel, sizeof rel, "templates/%s", t[0].file);
    if (!t_shared_path(rel)) SKIP("../shared/templates not found");
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        snprintf(rel, sizeof rel, "templates/%s", t[i].file);
        const char *path = t_shared_path(rel);
        CHECK_MSG(path, "missing %s", rel);
        FILE *f = fopen(path, "rb");
        CHECK(f);
        static char buf[1 << 17];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        chat_family got = chat_output_detect(buf, n, NULL);
        CHECK_MSG(got == t[i].family, "%s: detected %s, expected %s", t[i].file,
                  chat_family_name(got), chat_family_name(t[i].family));
    }
}

TEST(detects_names) {
    CHECK_EQ_INT(chat_output_detect(NULL, 0, "gpt-oss"), CHAT_FAMILY_GPT_OSS);
    CHECK_EQ_INT(chat_output_detect(NULL, 0, "Qwen3-Coder-30B-A3B"), CHAT_FAMILY_QWEN3_CODER);
    CHECK_EQ_INT(chat_output_detect(NULL, 0, "qwen2"), CHAT_FAMILY_HERMES);
    CHECK_EQ_INT(chat_output_detect(NULL, 0, "gemma3"), CHAT_FAMILY_GEMMA);
    CHECK_EQ_INT(chat_output_detect(NULL, 0, "llama"), CHAT_FAMILY_LLAMA3);
    CHECK_EQ_INT(chat_output_detect(NULL, 0, "DeepSeek-R1-Distill-Qwen-7B"),
                 CHAT_FAMILY_DEEPSEEK_R1);
    CHECK_EQ_INT(chat_output_detect(NULL, 0, "something-else"), CHAT_FAMILY_PLAIN);
    /* The template wins over the name. */
    const char *t = "{{ '<|im_start|>' }}";
    CHECK_EQ_INT(chat_output_detect(t, strlen(t), "llama"), CHAT_FAMILY_HERMES);
}

TEST(prompt_flags) {
    const char *p1 = "<|im_start|>assistant\n<think>\n";
    const char *p2 = "<|im_start|>assistant\n<think>\n\n</think>\n\n";
    const char *p3 = "<｜Assistant｜><think>\n";
    const char *p4 = "<|turn>model\n<|channel>thought\n<channel|>";
    CHECK_EQ_INT(chat_output_prompt_flags(CHAT_FAMILY_HERMES, p1, strlen(p1)),
                 CHAT_OUTPUT_THINK_OPEN);
    CHECK_EQ_INT(chat_output_prompt_flags(CHAT_FAMILY_HERMES, p2, strlen(p2)), 0);
    CHECK_EQ_INT(chat_output_prompt_flags(CHAT_FAMILY_DEEPSEEK_R1, p3, strlen(p3)),
                 CHAT_OUTPUT_THINK_OPEN);
    CHECK_EQ_INT(chat_output_prompt_flags(CHAT_FAMILY_GEMMA4, p4, strlen(p4)), 0);
    CHECK_EQ_INT(chat_output_prompt_flags(CHAT_FAMILY_LLAMA3, p1, strlen(p1)), 0);
}

TEST(rejects_bad_arguments) {
    ob_err err = {{0}};
    chat_output out;
    CHECK_STATUS(chat_output_parse(CHAT_FAMILY_COUNT, "x", 1, 0, &out, &err), OB_ERR_ARG, &err,
                 "out of range");
    CHECK_STATUS(chat_output_parse(CHAT_FAMILY_HERMES, NULL, 3, 0, &out, &err), OB_ERR_ARG, &err,
                 "NULL");
    chat_family f;
    CHECK_STATUS(chat_family_from_name("nope", &f, &err), OB_ERR_ARG, &err, "'nope'");
    CHECK_STATUS(chat_output_parse_tools(CHAT_FAMILY_QWEN3_CODER, "x", 1, 0, "{\"a\":1}", 7,
                                         &out, &err),
                 OB_ERR_FORMAT, &err, "tools: not a JSON array");
    CHECK_STATUS(chat_output_parse_tools(CHAT_FAMILY_QWEN3_CODER, "x", 1, 0, "[1,", 3, &out, &err),
                 OB_ERR_FORMAT, &err, "tools:");
    CHECK(chat_output_stream_new(CHAT_FAMILY_COUNT, 0) == NULL);
    chat_output_stream *s = chat_output_stream_new(CHAT_FAMILY_HERMES, 0);
    CHECK(s);
    CHECK_STATUS(chat_output_stream_finish(s, NULL, &out, &err), OB_OK, &err, "");
    chat_output_clear(&out);
    CHECK_STATUS(chat_output_stream_feed(s, "x", 1, NULL, &err), OB_ERR_ARG, &err, "finished");
    chat_output_stream_free(s);
    chat_output_stream_free(NULL);
    chat_output_clear(NULL);
}

/* Every allocation in a parse fails in turn: a clean error each time, no leak, no crash. */
TEST(allocation_failures) {
    const char *text = "<think>hmm</think>Sure.<tool_call>{\"name\":\"f\",\"arguments\":{\"a\":1}}"
                       "</tool_call><tool_call>{bad</tool_call>";
    for (int64_t n = 0; n < 200; n++) {
        ob_err err = {{0}};
        chat_output out;
        ob_alloc_fail_after(n);
        ob_status st = chat_output_parse(CHAT_FAMILY_HERMES, text, strlen(text), 0, &out, &err);
        ob_alloc_fail_after(-1);
        if (st == OB_OK) {
            CHECK_EQ_INT(out.n_calls, 1);
            chat_output_clear(&out);
            return;
        }
        CHECK_MSG(st == OB_ERR_NOMEM, "n=%lld: %s", (long long)n, err.msg);
    }
    CHECK_MSG(0, "parse never succeeded");
}

int main(void) {
    RUN(case_files);
    RUN(detects_templates);
    RUN(detects_names);
    RUN(prompt_flags);
    RUN(rejects_bad_arguments);
    RUN(allocation_failures);
    printf("%d case files, %d cases\n", n_files, n_cases_run);
    return t_summary();
}
