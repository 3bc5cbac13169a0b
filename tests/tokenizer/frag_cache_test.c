/*
 * tok_vocab_cache_fragments: a vocabulary that remembers long fragments gives exactly the ids
 * the same vocabulary gives without remembering, for a fragment seen again, at the start of
 * the text and after a special token (SentencePiece's dummy prefix differs there), with a
 * budget that forces evictions, and from several threads at once; and a repeated long
 * fragment is found rather than tokenized again.
 */
#include "core/alloc.h"
#include "gguf/gguf.h"
#include "test.h"
#include "tokenizer/frag_cache.h"
#include "tokenizer/tokenizer.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static tok_vocab *load(const char *rel) {
    const char *full = t_shared_path(rel);
    if (!full) return NULL;
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    ob_err err = {{0}};
    if (gguf_open(full, &f, &err) || tok_vocab_load(f, &v, &err))
        fprintf(stderr, "load %s: %s\n", rel, err.msg);
    gguf_close(f);
    return v;
}

/* A long text of words, digits, punctuation and a few multi-byte characters; seed varies it. */
static size_t make_text(char *buf, size_t cap, unsigned seed) {
    static const char *const words[] = {"the", "build", "fails", "in", "src/main.c:42", "when",
                                        "  indented", "x = y + 3;", "naïve", "über", "日本語",
                                        "\n", "(a, b)", "tokens", "repository", "—", "42"};
    size_t n = 0;
    unsigned r = seed;
    while (n + 32 < cap) {
        r = r * 1103515245u + 12345u;
        const char *w = words[(r >> 16) % (sizeof words / sizeof *words)];
        n += (size_t)snprintf(buf + n, cap - n, "%s ", w);
    }
    return n;
}

static bool same_ids(const tok_vocab *cached, const tok_vocab *plain, const char *text,
                     size_t len, bool parse_special) {
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    bool ok = !tok_encode(cached, text, len, true, parse_special, &a, &na, NULL) &&
              !tok_encode(plain, text, len, true, parse_special, &b, &nb, NULL) && na == nb &&
              !memcmp(a, b, na * sizeof *a);
    ob_free(a);
    ob_free(b);
    return ok;
}

static const char *const VOCABS[] = {"models/vocab/ggml-vocab-llama-spm.gguf",
                                     "models/vocab/ggml-vocab-gpt-2.gguf",
                                     "models/vocab/ggml-vocab-bert-bge.gguf"};

TEST(cached_ids_equal_encoded_ids) {
    static char text[6000], twice[13000];
    int ran = 0;
    for (size_t k = 0; k < sizeof VOCABS / sizeof *VOCABS; k++) {
        tok_vocab *cached = load(VOCABS[k]), *plain = load(VOCABS[k]);
        if (!cached || !plain) {
            tok_vocab_free(cached);
            tok_vocab_free(plain);
            continue;
        }
        ran++;
        tok_vocab_cache_fragments(cached, (size_t)1 << 20);
        const size_t n = make_text(text, sizeof text, 7 + (unsigned)k);
        CHECK_MSG(same_ids(cached, plain, text, n, false), "%s: first", VOCABS[k]);
        CHECK_MSG(same_ids(cached, plain, text, n, false), "%s: again", VOCABS[k]);
        uint64_t hits, misses;
        tok_frag_cache_stats(cached->frag_cache, &hits, &misses);
        CHECK_EQ_INT(hits, 1);
        /* the same fragment again after a special token (with the same dummy prefix, as
         * SentencePiece writes one at the start and after every special token) */
        ob_str special = {0};
        for (int32_t id = 0; id < tok_n_vocab(plain) && !special.len; id++)
            if (tok_is_control(plain, id)) special = tok_piece(plain, id);
        const size_t ns = special.len;
        CHECK(ns > 0 && ns < 64);
        memcpy(twice, text, n);
        memcpy(twice + n, special.ptr, ns);
        memcpy(twice + n + ns, text, n);
        CHECK_MSG(same_ids(cached, plain, twice, 2 * n + ns, true), "%s: around a special",
                  VOCABS[k]);
        CHECK_MSG(same_ids(cached, plain, twice, 2 * n + ns, true), "%s: again", VOCABS[k]);
        /* short fragments are not remembered */
        tok_frag_cache_stats(cached->frag_cache, &hits, &misses);
        CHECK(same_ids(cached, plain, "a short one", 11, false));
        uint64_t hits2, misses2;
        tok_frag_cache_stats(cached->frag_cache, &hits2, &misses2);
        CHECK(hits2 == hits && misses2 == misses);
        tok_vocab_free(cached);
        tok_vocab_free(plain);
    }
    if (!ran) SKIP("no vocabularies under OB_SHARED/models/vocab");
}

TEST(evictions_keep_results_exact) {
    tok_vocab *cached = load(VOCABS[0]), *plain = load(VOCABS[0]);
    if (!cached || !plain) {
        tok_vocab_free(cached);
        tok_vocab_free(plain);
        SKIP("no llama-spm vocabulary");
    }
    tok_vocab_cache_fragments(cached, 64 << 10); /* a few texts' worth: most are evicted */
    static char text[5000];
    for (unsigned round = 0; round < 3; round++)
        for (unsigned s = 0; s < 12; s++) {
            const size_t n = make_text(text, 1200 + 300 * s, 100 + s);
            CHECK_MSG(same_ids(cached, plain, text, n, false), "text %u round %u", s, round);
        }
    tok_vocab_free(cached);
    tok_vocab_free(plain);
}

typedef struct worker {
    const tok_vocab *cached, *plain;
    unsigned seed;
    int bad;
} worker;

static void *encode_many(void *arg) {
    worker *w = arg;
    static _Thread_local char text[4000];
    for (unsigned i = 0; i < 20; i++) {
        const size_t n = make_text(text, sizeof text, w->seed + i % 3);
        if (!same_ids(w->cached, w->plain, text, n, false)) w->bad++;
    }
    return NULL;
}

TEST(threads_share_the_cache) {
    tok_vocab *cached = load(VOCABS[0]), *plain = load(VOCABS[0]);
    if (!cached || !plain) {
        tok_vocab_free(cached);
        tok_vocab_free(plain);
        SKIP("no llama-spm vocabulary");
    }
    tok_vocab_cache_fragments(cached, (size_t)1 << 20);
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){cached, plain, 500u + (unsigned)(i % 2), 0};
        CHECK(pthread_create(&th[i], NULL, encode_many, &w[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(w[i].bad, 0);
    }
    uint64_t hits, misses;
    tok_frag_cache_stats(cached->frag_cache, &hits, &misses);
    CHECK(hits > 0);
    tok_vocab_free(cached);
    tok_vocab_free(plain);
}

int main(void) {
    RUN(cached_ids_equal_encoded_ids);
    RUN(evictions_keep_results_exact);
    RUN(threads_share_the_cache);
    return t_summary();
}
