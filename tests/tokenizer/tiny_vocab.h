/*
 * Tiny vocabularies built in memory with the GGUF writer, for tests and the fuzz target that
 * must run without ../shared: a SentencePiece one (byte fallback, a few merges by score, control
 * and user-defined tokens) and a byte-level BPE one (the 256 GPT-2 alphabet symbols, a few
 * merges, the gpt-2 pre-tokenizer). Returns a new GGUF image (free with ob_free) or NULL.
 */
#ifndef OB_TESTS_TINY_VOCAB_H
#define OB_TESTS_TINY_VOCAB_H

#include "core/alloc.h"
#include "gguf/gguf.h"
#include "tokenizer/tok_impl.h"

#include <stdio.h>
#include <string.h>

static uint8_t *tiny_vocab_gguf(bool bpe, size_t *size) {
    static const char *const extra_spm[] = {"\xe2\x96\x81", "\xe2\x96\x81t", "he",
                                            "\xe2\x96\x81the", "\xe2\x96\x81\x61", "<|im_start|>",
                                            "<|im_end|>", "  "};
    static const float extra_score[] = {-1, -2, -3, -0.5f, -4, 0, 0, 0};
    static const int32_t extra_type[] = {1, 1, 1, 1, 1, 3, 3, 4};
    static const char *const merges[] = {"\xc4\xa0 t", "h e", "\xc4\xa0t he", "\xc4\xa0 a"};
    char texts[300][16];
    ob_str toks[300];
    float scores[300];
    int32_t types[300];
    size_t n = 0;
    gguf_writer *w = gguf_writer_new();
    if (!w) return NULL;
    if (!bpe) {
        const char *head[3] = {"<unk>", "<s>", "</s>"};
        for (int i = 0; i < 3; i++, n++) {
            snprintf(texts[n], sizeof texts[n], "%s", head[i]);
            scores[n] = 0, types[n] = i == 0 ? 2 : 3;
        }
    }
    for (int b = 0; b < 256; b++, n++) {
        if (bpe) {
            size_t k = tok_utf8_put(tok_byte_to_cp((uint8_t)b), texts[n]);
            texts[n][k] = 0;
        } else {
            snprintf(texts[n], sizeof texts[n], "<0x%02X>", b);
        }
        scores[n] = 0, types[n] = bpe ? 1 : 6;
    }
    if (bpe) {
        const char *more[] = {"\xc4\xa0t", "he", "\xc4\xa0the", "\xc4\xa0\x61", "<|endoftext|>"};
        for (int i = 0; i < 5; i++, n++) {
            snprintf(texts[n], sizeof texts[n], "%s", more[i]);
            scores[n] = 0, types[n] = i == 4 ? 3 : 1;
        }
    } else {
        for (int i = 0; i < 8; i++, n++) {
            snprintf(texts[n], sizeof texts[n], "%s", extra_spm[i]);
            scores[n] = extra_score[i], types[n] = extra_type[i];
        }
    }
    for (size_t i = 0; i < n; i++) toks[i] = ob_str_from_cstr(texts[i]);
    gguf_writer_set_str(w, "general.architecture", bpe ? "gpt2" : "llama");
    gguf_writer_set_str(w, "tokenizer.ggml.model", bpe ? "gpt2" : "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, n);
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VTYPE_FLOAT32, scores, n);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VTYPE_INT32, types, n);
    if (bpe) {
        ob_str m[4];
        for (int i = 0; i < 4; i++) m[i] = ob_str_from_cstr(merges[i]);
        gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", m, 4);
        gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2");
        gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)(n - 1));
        gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)(n - 1));
    }
    uint8_t *buf = NULL;
    if (gguf_writer_to_buffer(w, &buf, size, NULL)) buf = NULL;
    gguf_writer_free(w);
    return buf;
}

#endif
