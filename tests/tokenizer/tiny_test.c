/*
 * The tokenizer on tiny in-memory vocabularies (tiny_vocab.h), with ids worked out by hand from
 * the merge rules: SentencePiece merges by score with byte fallback and the dummy prefix, BPE
 * merges by rank over GPT-2 pre-tokenizer pieces, special and user-defined token cutting, and
 * an allocation-failure sweep over loading and encoding (every failure is OB_ERR_NOMEM, nothing
 * leaks: the sanitizer build checks that).
 */
#include "test.h"
#include "tiny_vocab.h"
#include "tokenizer/tokenizer.h"

static tok_vocab *tiny(bool bpe, ob_status *st) {
    size_t size = 0;
    uint8_t *buf = tiny_vocab_gguf(bpe, &size);
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    *st = OB_ERR_NOMEM;
    if (buf && !gguf_parse(buf, size, "tiny.gguf", &f, NULL)) *st = tok_vocab_load(f, &v, NULL);
    gguf_close(f);
    ob_free(buf);
    return v;
}

static bool ids_are(const tok_vocab *v, const char *text, bool add, bool special,
                    const int32_t *want, size_t n_want) {
    int32_t *ids = NULL;
    size_t n = 0;
    bool ok = !tok_encode(v, text, strlen(text), add, special, &ids, &n, NULL) && n == n_want &&
              (n == 0 || !memcmp(ids, want, n * sizeof *ids));
    if (!ok) {
        fprintf(stderr, "     '%s':", text);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    ob_free(ids);
    return ok;
}

/* ids: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0xXX>, 259 U+2581, 260 "_t", 261 "he", 262 "_the",
 * 263 "_a", 264 <|im_start|>, 265 <|im_end|>, 266 "  " (user-defined) */
TEST(spm_merges_by_score) {
    ob_status st;
    tok_vocab *v = tiny(false, &st);
    CHECK(v);
    CHECK(ids_are(v, "the a", true, false, (int32_t[]){1, 262, 263}, 3));
    CHECK(ids_are(v, "x", false, false, (int32_t[]){259, 3 + 'x'}, 2)); /* byte fallback */
    CHECK(ids_are(v, "", true, false, (int32_t[]){1}, 1));
    CHECK(ids_are(v, "<|im_start|>the", false, true, (int32_t[]){264, 262}, 2));
    /* user-defined text is cut even without special parsing; the dummy prefix follows it */
    CHECK(ids_are(v, "a  b", false, false, (int32_t[]){263, 266, 259, 3 + 'b'}, 4));
    CHECK(tok_is_eog(v, 2));
    CHECK(tok_is_eog(v, 265)); /* <|im_end|> by its text */
    CHECK(!tok_is_eog(v, 264));
    tok_vocab_free(v);
}

/* ids: 0..255 the byte alphabet, 256 "Gt", 257 "he", 258 "Gthe", 259 "Ga", 260 <|endoftext|> */
TEST(bpe_merges_by_rank) {
    ob_status st;
    tok_vocab *v = tiny(true, &st);
    CHECK(v);
    CHECK(ids_are(v, "the a", false, false, (int32_t[]){'t', 257, 259}, 3));
    CHECK(ids_are(v, " the", false, false, (int32_t[]){258}, 1));
    CHECK(ids_are(v, "<|endoftext|> the", false, true, (int32_t[]){260, 258}, 2));
    CHECK(!tok_add_bos(v));
    CHECK(tok_is_eog(v, 260));
    tok_vocab_free(v);
}

TEST(alloc_failure_sweep) {
    for (int bpe = 0; bpe < 2; bpe++) {
        bool finished = false;
        for (int64_t n = 0; n < 100000 && !finished; n++) {
            ob_alloc_fail_after(n);
            ob_status st;
            tok_vocab *v = tiny(bpe, &st);
            int32_t *ids = NULL;
            size_t k = 0;
            if (v) st = tok_encode(v, "the <|im_start|> a  x", 21, true, true, &ids, &k, NULL);
            ob_alloc_fail_after(-1);
            CHECK_MSG(st == OB_OK || st == OB_ERR_NOMEM, "fail after %lld: status %s",
                      (long long)n, ob_status_name(st));
            finished = st == OB_OK;
            ob_free(ids);
            tok_vocab_free(v);
        }
        CHECK(finished);
    }
}

int main(void) {
    RUN(spm_merges_by_score);
    RUN(bpe_merges_by_rank);
    RUN(alloc_failure_sweep);
    return t_summary();
}
