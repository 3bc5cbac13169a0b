/*
 * libFuzzer target for a chat template that arrives inside a model file, as `outboard chat`
 * takes it: the input becomes tokenizer.chat_template of a small GGUF written in memory (with a
 * vocabulary and BOS/EOS ids, so bos_token and eos_token come from the file), the GGUF is
 * parsed, the template is read from it (chat_template_from_gguf), its output family is detected
 * from its text, and a conversation with a system prompt, tool calls and a tool result is
 * rendered through chat_template_render, the call the chat command makes each turn. A small
 * step limit and wall-clock budget end slow inputs quickly. Any status is fine; a crash, a
 * leak, a hang or a sanitizer report is a bug.
 */
#include "chat/output.h"
#include "chat/template.h"
#include "core/alloc.h"
#include "gguf/gguf.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

static const char *CONV =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"You are terse.\"},"
    " {\"role\": \"user\", \"content\": \"Weather in Paris?\"},"
    " {\"role\": \"assistant\", \"content\": \"\", \"reasoning_content\": \"need a tool\","
    "  \"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\", \"function\": {\"name\": "
    "\"get_weather\", \"arguments\": {\"city\": \"Paris\"}}}]},"
    " {\"role\": \"tool\", \"tool_call_id\": \"c1\", \"content\": \"{\\\"temp\\\": 21.5}\"},"
    " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Thanks\"}]}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\","
    "  \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": "
    "\"string\"}}}}}],"
    " \"enable_thinking\": false}";

/* A GGUF holding the template, a three-token vocabulary and BOS/EOS ids; NULL on failure. */
static uint8_t *make_gguf(const uint8_t *data, size_t size, size_t *out_size) {
    gguf_writer *w = gguf_writer_new();
    if (!w) return NULL;
    static const ob_str vocab[] = {{"<unk>", 5}, {"<s>", 3}, {"</s>", 4}};
    uint8_t *buf = NULL;
    if (gguf_writer_set_str(w, "general.architecture", "llama") ||
        gguf_writer_set_strn(w, "tokenizer.chat_template", (ob_str){(const char *)data, size}) ||
        gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", vocab, 3) ||
        gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1) ||
        gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2) ||
        gguf_writer_to_buffer(w, &buf, out_size, NULL))
        buf = NULL;
    gguf_writer_free(w);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t gsize;
    uint8_t *gbuf = make_gguf(data, size, &gsize);
    gguf_file *g = NULL;
    chat_template *t = NULL;
    json_t *conv = json_loads(CONV, 0, NULL);
    if (gbuf && conv && !gguf_parse(gbuf, gsize, "fuzz.gguf", &g, NULL) &&
        !chat_template_from_gguf(g, &t, NULL)) {
        ob_str src;
        if (!gguf_get_str(g, "tokenizer.chat_template", &src, NULL))
            (void)chat_output_detect(src.ptr, src.len, "llama");
        for (int agp = 0; agp < 2; agp++) {
            chat_template_opts o = {.add_generation_prompt = agp,
                                    .now = 1741953600,
                                    .max_steps = 200000,
                                    .max_seconds = 0.5};
            char *out = NULL;
            size_t n;
            chat_template_render(t, conv, &o, &out, &n, NULL);
            ob_free(out);
        }
    }
    chat_template_free(t);
    gguf_close(g);
    ob_free(gbuf);
    json_decref(conv);
    return 0;
}
