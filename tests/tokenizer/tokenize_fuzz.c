/*
 * libFuzzer target for the tokenizer: arbitrary bytes go through tok_encode and back through
 * the streaming decoder. The first byte picks the vocabulary (shared vocabulary files found via
 * OB_SHARED or ../shared: SentencePiece, byte-level BPE with two pre-tokenizers, WordPiece; the
 * tiny built-in ones when those are absent) and the special-token switches. Any input must
 * tokenize, every id must be in range, and the decoder must write valid UTF-8; on the GPT-2
 * vocabulary valid UTF-8 without special parsing must come back byte for byte.
 */
#include "tiny_vocab.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>

#define MAX_VOCABS 8

static tok_vocab *vocabs[MAX_VOCABS];
static bool exact[MAX_VOCABS]; /* decode(encode(s)) == s for valid UTF-8 s */
static size_t n_vocabs;

static void add_file(const char *root, const char *rel, bool is_exact) {
    char path[1024];
    snprintf(path, sizeof path, "%s/models/vocab/%s", root, rel);
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    if (!gguf_open(path, &f, NULL) && !tok_vocab_load(f, &v, NULL) && n_vocabs < MAX_VOCABS) {
        exact[n_vocabs] = is_exact;
        vocabs[n_vocabs++] = v;
    } else {
        tok_vocab_free(v);
    }
    gguf_close(f);
}

static void add_tiny(bool bpe) {
    size_t size = 0;
    uint8_t *buf = tiny_vocab_gguf(bpe, &size);
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    if (buf && !gguf_parse(buf, size, "tiny.gguf", &f, NULL) && !tok_vocab_load(f, &v, NULL))
        vocabs[n_vocabs++] = v;
    gguf_close(f);
    ob_free(buf);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *root = getenv("OB_SHARED");
    if (!root || !*root) root = "../shared";
    add_file(root, "ggml-vocab-llama-spm.gguf", false);
    add_file(root, "ggml-vocab-gpt-2.gguf", true);
    add_file(root, "ggml-vocab-deepseek-llm.gguf", false);
    add_file(root, "ggml-vocab-bert-bge.gguf", false);
    add_file(root, "ggml-vocab-phi-3.gguf", false);
    add_tiny(false);
    add_tiny(true);
    return 0;
}

static bool valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3
                 : c >= 0xF0 && c < 0xF5 ? 4 : 0;
        if (!k || i + k > n) return false;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return false;
        if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F) ||
            (c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F))
            return false;
        i += k;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || n_vocabs == 0) return 0;
    size_t which = data[0] % n_vocabs;
    bool add_special = data[0] & 0x40, parse_special = data[0] & 0x80;
    const tok_vocab *v = vocabs[which];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int32_t *ids = NULL;
    size_t n = 0;
    if (tok_encode(v, text, len, add_special, parse_special, &ids, &n, NULL)) abort();
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tok_n_vocab(v)) abort();
    tok_decoder *d = tok_decoder_new(v, parse_special);
    char *out = malloc(len * 8 + 64 * n + 64);
    size_t got = 0;
    if (!d || !out) abort();
    for (size_t i = 0; i < n; i++) got += tok_decoder_push(d, ids[i], out + got, 7);
    for (size_t w; (w = tok_decoder_flush(d, out + got, 5)) > 0;) got += w;
    if (!valid_utf8((const unsigned char *)out, got)) abort();
    if (exact[which] && !add_special && !parse_special && valid_utf8(data + 1, len) &&
        (got != len || memcmp(out, text, len)))
        abort();
    free(out);
    tok_decoder_free(d);
    ob_free(ids);
    return 0;
}
