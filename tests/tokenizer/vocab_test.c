/*
 * Tokenizer against llama.cpp's tokenizer test vectors: every vocabulary GGUF under
 * ../shared/models that has .inp/.out files (test-tokenizer-0 format: inputs separated by
 * "\n__ggml_vocab_test__\n", one line of ids per input, no BOS, no special parsing) must give
 * exactly the recorded ids. Also: decode(encode(s)) == s where the vocabulary can represent s,
 * the streaming decoder never emits half a character, special tokens and end-of-generation ids.
 */
#include "core/alloc.h"
#include "gguf/gguf.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#define SEP "\n__ggml_vocab_test__\n"

typedef struct vec_file {
    const char *gguf, *vectors; /* relative to ../shared/models */
} vec_file;

static const vec_file FILES[] = {
    {"vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-llama-spm.gguf"},
    {"vocab/ggml-vocab-phi-3.gguf", "vocab/ggml-vocab-phi-3.gguf"},
    {"vocab/ggml-vocab-bert-bge.gguf", "vocab/ggml-vocab-bert-bge.gguf"},
    {"vocab/ggml-vocab-deepseek-coder.gguf", "vocab/ggml-vocab-deepseek-coder.gguf"},
    {"vocab/ggml-vocab-deepseek-llm.gguf", "vocab/ggml-vocab-deepseek-llm.gguf"},
    {"vocab/ggml-vocab-falcon.gguf", "vocab/ggml-vocab-falcon.gguf"},
    {"vocab/ggml-vocab-gpt-2.gguf", "vocab/ggml-vocab-gpt-2.gguf"},
    {"vocab/ggml-vocab-mpt.gguf", "vocab/ggml-vocab-mpt.gguf"},
    {"vocab/ggml-vocab-refact.gguf", "vocab/ggml-vocab-refact.gguf"},
    {"vocab/ggml-vocab-starcoder.gguf", "vocab/ggml-vocab-starcoder.gguf"},
    {"vocab/ggml-vocab-baichuan.gguf", "generated/ggml-vocab-baichuan.gguf"},
    {"llama-2-tiny-random.gguf", "generated/llama-2-tiny-random.gguf"},
    {"stories260K.gguf", "generated/stories260K.gguf"},
};

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (buf) buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static tok_vocab *load(const char *rel) {
    char path[512];
    snprintf(path, sizeof path, "models/%s", rel);
    const char *full = t_shared_path(path);
    if (!full) return NULL;
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    ob_err err = {{0}};
    if (gguf_open(full, &f, &err) || tok_vocab_load(f, &v, &err))
        fprintf(stderr, "load %s: %s\n", rel, err.msg);
    gguf_close(f);
    return v;
}

/* Runs one vector file; returns cases passed, *total the number of cases. */
static int run_vectors(const vec_file *vf, int *total) {
    char rel[512];
    *total = 0;
    snprintf(rel, sizeof rel, "models/%s.inp", vf->vectors);
    const char *p = t_shared_path(rel);
    size_t inp_len = 0, out_len = 0;
    char *inp = p ? slurp(p, &inp_len) : NULL;
    snprintf(rel, sizeof rel, "models/%s.out", vf->vectors);
    p = t_shared_path(rel);
    char *out = p ? slurp(p, &out_len) : NULL;
    tok_vocab *v = inp && out ? load(vf->gguf) : NULL;
    int passed = 0;
    if (inp && out && !v) *total = 1; /* vectors but no vocabulary: a failure, not a skip */
    if (!inp || !out || !v) goto done;
    char *in_at = inp, *out_at = out;
    for (;;) {
        char *end = strstr(in_at, SEP), *eol = strchr(out_at, '\n');
        if (!end || !eol) break;
        (*total)++;
        int32_t *ids = NULL;
        size_t n = 0;
        ob_err err = {{0}};
        bool ok = !tok_encode(v, in_at, (size_t)(end - in_at), false, false, &ids, &n, &err);
        char *q = out_at;
        for (size_t i = 0; ok && i < n; i++) ok = strtol(q, &q, 10) == ids[i];
        while (ok && q < eol && *q == ' ') q++;
        ok = ok && q == eol;
        if (ok) passed++;
        else {
            fprintf(stderr, "  %s case %d: '%.*s'\n    got:", vf->gguf, *total,
                    (int)(end - in_at), in_at);
            for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n    exp:%.*s\n", (int)(eol - out_at), out_at);
        }
        ob_free(ids);
        in_at = end + strlen(SEP);
        out_at = eol + 1;
    }
done:
    tok_vocab_free(v);
    free(inp);
    free(out);
    return passed;
}

TEST(vectors_all_vocabularies) {
    int files = 0;
    bool all = true;
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        int total = 0, passed = run_vectors(&FILES[i], &total);
        if (total == 0) continue;
        files++;
        fprintf(stderr, "  %-40s %d/%d\n", FILES[i].gguf, passed, total);
        all = all && passed == total;
    }
    if (files == 0) SKIP("no vocabulary vectors under OB_SHARED/models");
    CHECK(all);
}

/* decode(encode(s)) == s for every vector input on vocabularies that can represent it. */
TEST(round_trip) {
    static const char *names[] = {
        "vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-gpt-2.gguf",
        "vocab/ggml-vocab-falcon.gguf", "vocab/ggml-vocab-deepseek-llm.gguf",
        "vocab/ggml-vocab-starcoder.gguf", "vocab/ggml-vocab-phi-3.gguf"};
    const char *p = t_shared_path("models/vocab/ggml-vocab-gpt-2.gguf.inp");
    if (!p) SKIP("no vectors");
    size_t len;
    char *inp = slurp(p, &len);
    CHECK(inp);
    int bad = 0, n_cases = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        tok_vocab *v = load(names[k]);
        if (!v) continue;
        for (char *at = inp, *end; (end = strstr(at, SEP)); at = end + strlen(SEP)) {
            int32_t *ids = NULL;
            size_t n = 0, tl = 0;
            char *text = NULL;
            CHECK(!tok_encode(v, at, (size_t)(end - at), true, false, &ids, &n, NULL));
            CHECK(!tok_decode_all(v, ids, n, false, &text, &tl, NULL));
            n_cases++;
            if (tl != (size_t)(end - at) || memcmp(text, at, tl)) {
                bad++;
                fprintf(stderr, "  %s: '%.*s' -> '%s'\n", names[k], (int)(end - at), at, text);
            }
            ob_free(ids);
            ob_free(text);
        }
        tok_vocab_free(v);
    }
    free(inp);
    if (n_cases == 0) SKIP("no vocabularies");
    CHECK_EQ_INT(bad, 0);
}

/* Byte-fallback tokens of one emoji: nothing comes out until the character is whole. */
TEST(decoder_holds_partial_characters) {
    tok_vocab *v = load("vocab/ggml-vocab-llama-spm.gguf");
    if (!v) SKIP("no llama-spm vocabulary");
    const char *s = "a\xf0\x9f\xa6\x99"; /* "a" + U+1F999, which has no token of its own */
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(!tok_encode(v, s, strlen(s), false, false, &ids, &n, NULL));
    CHECK(n >= 5);
    tok_decoder *d = tok_decoder_new(v, false);
    CHECK(d);
    char out[64];
    size_t got = 0;
    for (size_t i = 0; i < n; i++) {
        size_t w = tok_decoder_push(d, ids[i], out + got, sizeof out - got);
        /* every chunk handed out ends on a character boundary */
        CHECK(w == 0 || (unsigned char)out[got + w - 1] < 0x80 ||
              (i == n - 1 && (unsigned char)out[got + w - 1] >= 0x80));
        got += w;
    }
    got += tok_decoder_flush(d, out + got, sizeof out - got);
    CHECK_EQ_INT(got, strlen(s));
    CHECK(!memcmp(out, s, got));
    /* a lone lead byte that never completes comes out as U+FFFD on flush */
    int32_t lead = -1;
    for (int32_t i = 0; i < tok_n_vocab(v); i++)
        if (tok_piece(v, i).len == 6 && !memcmp(tok_piece(v, i).ptr, "<0xE4>", 6)) lead = i;
    CHECK(lead >= 0);
    CHECK_EQ_INT(tok_decoder_push(d, lead, out, sizeof out), 0);
    CHECK_EQ_INT(tok_decoder_flush(d, out, sizeof out), 3);
    CHECK(!memcmp(out, "\xEF\xBF\xBD", 3));
    tok_decoder_free(d);
    ob_free(ids);
    tok_vocab_free(v);
}

/* A small output buffer: the rest is queued and comes out later, nothing is lost. */
TEST(decoder_small_buffer) {
    tok_vocab *v = load("vocab/ggml-vocab-gpt-2.gguf");
    if (!v) SKIP("no gpt-2 vocabulary");
    const char *s = "Hello wonderful world";
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(!tok_encode(v, s, strlen(s), false, false, &ids, &n, NULL));
    tok_decoder *d = tok_decoder_new(v, false);
    char out[64];
    size_t got = 0;
    for (size_t i = 0; i < n; i++) got += tok_decoder_push(d, ids[i], out + got, 2);
    while (got < strlen(s)) {
        size_t w = tok_decoder_flush(d, out + got, 2);
        if (!w) break;
        got += w;
    }
    CHECK_EQ_INT(got, strlen(s));
    CHECK(!memcmp(out, s, got));
    tok_decoder_free(d);
    ob_free(ids);
    tok_vocab_free(v);
}

TEST(special_tokens_and_eog) {
    tok_vocab *v = load("vocab/ggml-vocab-phi-3.gguf");
    if (!v) SKIP("no phi-3 vocabulary");
    CHECK_EQ_INT(tok_bos(v), 1);
    CHECK_EQ_INT(tok_eos(v), 32000);
    CHECK(tok_add_bos(v));
    CHECK(tok_is_eog(v, 32000)); /* <|endoftext|> */
    CHECK(tok_is_eog(v, 32007)); /* <|end|>, found by its text */
    CHECK(!tok_is_eog(v, 32010)); /* <|user|> */
    const char *s = "<|user|>\nHi<|end|>";
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(!tok_encode(v, s, strlen(s), true, true, &ids, &n, NULL));
    CHECK(n >= 4);
    CHECK_EQ_INT(ids[0], 1);
    CHECK_EQ_INT(ids[1], 32010);
    CHECK_EQ_INT(ids[n - 1], 32007);
    ob_free(ids);
    /* without parse_special the same text is plain text */
    CHECK(!tok_encode(v, s, strlen(s), false, false, &ids, &n, NULL));
    for (size_t i = 0; i < n; i++) CHECK(ids[i] < 32000);
    ob_free(ids);
    tok_vocab_free(v);
}

TEST(bad_metadata) {
    gguf_writer *w = gguf_writer_new();
    CHECK(w);
    uint8_t *buf = NULL;
    size_t size = 0;
    ob_err err = {{0}};
    gguf_writer_set_str(w, "tokenizer.ggml.model", "sentencepiece-v9");
    ob_str toks[2] = {{"a", 1}, {"b", 1}};
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 2);
    CHECK(!gguf_writer_to_buffer(w, &buf, &size, &err));
    gguf_file *f = NULL;
    CHECK(!gguf_parse(buf, size, "mem.gguf", &f, &err));
    tok_vocab *v = NULL;
    CHECK_STATUS(tok_vocab_load(f, &v, &err), OB_ERR_UNSUPPORTED, &err, "sentencepiece-v9");
    CHECK(v == NULL);
    gguf_close(f);
    ob_free(buf);
    /* duplicate token text */
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    ob_str dup[3] = {{"<unk>", 5}, {"x", 1}, {"x", 1}};
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", dup, 3);
    CHECK(!gguf_writer_to_buffer(w, &buf, &size, &err));
    CHECK(!gguf_parse(buf, size, "dup.gguf", &f, &err));
    CHECK_STATUS(tok_vocab_load(f, &v, &err), OB_ERR_FORMAT, &err, "duplicate");
    gguf_close(f);
    ob_free(buf);
    gguf_writer_free(w);
}

int main(void) {
    RUN(vectors_all_vocabularies);
    RUN(round_trip);
    RUN(decoder_holds_partial_characters);
    RUN(decoder_small_buffer);
    RUN(special_tokens_and_eog);
    RUN(bad_metadata);
    return t_summary();
}
