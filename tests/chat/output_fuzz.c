/*
 * libFuzzer target for chat output parsing: arbitrary bytes through every family's parser, in
 * one piece (lenient and strict) and streamed in chunks whose sizes come from the input. The
 * streamed result must equal the batch result and its deltas must add up to it; any difference
 * traps, as do the sanitizers on a memory error.
 *
 * Input layout: byte 0 picks the family (and THINK_OPEN, and whether a tools schema is
 * given), byte 1 seeds the chunk sizes, the rest is the model's text.
 */
#include "chat/output.h"

#include <stdint.h>

/* A schema with a string, a number and a nullable-string parameter for the tools path. */
static const char TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"properties\":"
    "{\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"number\"},"
    "\"c\":{\"type\":[\"string\",\"null\"]}}}}}]";
#include <stdlib.h>
#include <string.h>

static void same_or_trap(const chat_output *a, const chat_output *b) {
    if (strcmp(a->content, b->content) || strcmp(a->reasoning, b->reasoning) ||
        a->n_calls != b->n_calls || a->n_invalid != b->n_invalid)
        __builtin_trap();
    for (size_t i = 0; i < a->n_calls; i++) {
        if (strcmp(a->calls[i].name, b->calls[i].name) ||
            strcmp(a->calls[i].arguments, b->calls[i].arguments))
            __builtin_trap();
    }
}

/* Streams text in chunks of 1..16 bytes (sizes from a small generator seeded by `seed`). */
static void stream(chat_family fam, unsigned flags, const char *text, size_t len, uint8_t seed,
                   const char *tools, const chat_output *batch) {
    chat_output_stream *s = chat_output_stream_new(fam, flags);
    if (!s) return;
    if (chat_output_stream_set_tools(s, tools, tools ? strlen(tools) : 0, NULL)) __builtin_trap();
    char *content = malloc(len + 1);
    size_t nc = 0, at = 0, ncalls = 0;
    uint32_t x = seed * 2654435761u + 1;
    chat_output_delta d;
    ob_err err;
    while (at < len) {
        x = x * 1664525u + 1013904223u;
        size_t n = 1 + (x >> 28);
        if (n > len - at) n = len - at;
        if (chat_output_stream_feed(s, text + at, n, &d, &err)) __builtin_trap();
        memcpy(content + nc, d.content, d.content_len);
        nc += d.content_len;
        ncalls += d.n_calls;
        at += n;
    }
    chat_output out;
    if (chat_output_stream_finish(s, &d, &out, &err)) __builtin_trap();
    memcpy(content + nc, d.content, d.content_len);
    nc += d.content_len;
    ncalls += d.n_calls;
    content[nc] = 0;
    same_or_trap(batch, &out);
    if (ncalls != out.n_calls) __builtin_trap();
    if (!out.reasoning_reclassified && strcmp(content, out.content)) __builtin_trap();
    chat_output_clear(&out);
    chat_output_stream_free(s);
    free(content);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    chat_family fam = (chat_family)(data[0] % CHAT_FAMILY_COUNT);
    unsigned flags = (data[0] / CHAT_FAMILY_COUNT) & 1 ? CHAT_OUTPUT_THINK_OPEN : 0;
    const char *tools = (data[0] / CHAT_FAMILY_COUNT) & 2 ? TOOLS : NULL;
    size_t tlen = tools ? strlen(tools) : 0;
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    ob_err err;
    chat_output batch, strict;
    if (chat_output_parse_tools(fam, text, len, flags, tools, tlen, &batch, &err)) __builtin_trap();
    ob_status st = chat_output_parse_tools(fam, text, len, flags | CHAT_OUTPUT_STRICT, tools, tlen,
                                           &strict, &err);
    /* Strict fails exactly when lenient found an unreadable call. */
    if ((st == OB_ERR_FORMAT) != (batch.n_invalid > 0)) __builtin_trap();
    if (st == OB_OK) {
        same_or_trap(&batch, &strict);
        chat_output_clear(&strict);
    }
    stream(fam, flags, text, len, data[1], tools, &batch);
    chat_output_clear(&batch);
    return 0;
}
