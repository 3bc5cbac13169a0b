/*
 * libFuzzer target for the Jinja interpreter: the input is a template; it is parsed and, when
 * it parses, rendered with a fixed conversation (messages with tool calls, tools, extra flags)
 * under a small step limit, wall-clock budget and memory cap, so slow or greedy inputs end
 * quickly. Any status is fine; a crash, a leak or a sanitizer report is a bug.
 */
#include "chat/jinja.h"
#include "chat/value.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

static const char *VARS =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"},"
    " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"hi\"}]},"
    " {\"role\": \"assistant\", \"content\": null, \"reasoning_content\": \"think\","
    "  \"tool_calls\": [{\"id\": \"c1\", \"function\": {\"name\": \"f\", \"arguments\": {\"a\": "
    "1.5}}}]},"
    " {\"role\": \"tool\", \"content\": \"{\\\"r\\\": 2}\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {}}}],"
    " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"enable_thinking\": false}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    chat_jinja *t;
    if (chat_jinja_parse((const char *)data, size, "fuzz", &t, NULL)) return 0;
    chat_arena *a = chat_arena_new(64u << 20);
    json_t *j = json_loads(VARS, 0, NULL);
    chat_val v;
    if (a && j && !chat_val_from_json(a, j, &v, NULL)) {
        chat_jinja_opts o = {.now = 1741953600, .max_steps = 200000, .max_seconds = 0.5};
        const char *out;
        size_t n;
        chat_jinja_render(t, a, v, &o, &out, &n, NULL);
    }
    json_decref(j);
    chat_arena_free(a);
    chat_jinja_free(t);
    return 0;
}
