/*
 * libFuzzer target: GBNF compilation and matching. The input is grammar text, a NUL byte, then
 * bytes to walk: each byte is fed when the grammar allows it (skipped when not), and every few
 * bytes the token mask over a small fixed vocabulary is computed and compared with token-by-
 * token checks, and a sampler under the grammar (greedy or top-k, logits from the next bytes)
 * must pick what drawing again from the masked logits picks; a 0xFF byte (never in UTF-8) makes
 * the next byte a whole token to accept (control tokens included), which must succeed exactly
 * when the matcher allows it, so token elements (<|im_end|>, <[3]>, !<...>) are walked. Without a NUL the whole input is also tried as a JSON
 * schema.
 */
#include "grammar/grammar_int.h"

#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

static const char *const fuzz_vocab[] = {"a", "ab", "{", "}", "\"", ":", ",", " ", "1", "-",
                                         "\xc3", "\xa9", "\xc3\xa9", "x\"", "[", "]", "true",
                                         "<a>", "<|im_end|>", "[TOOL_CALLS]", "<|call|>"};
#define FUZZ_N ((int64_t)(sizeof fuzz_vocab / sizeof *fuzz_vocab) + 1)
#define FUZZ_CONTROL (FUZZ_N - 4) /* "<|im_end|>" and "[TOOL_CALLS]": control tokens */
#define FUZZ_CALL (FUZZ_N - 2)    /* "<|call|>": an end-of-generation token with a text */

static ob_vocab_trie *fuzz_trie(void) {
    ob_vocab_trie *t = ob_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n_vocab = FUZZ_N;
    t->kind = ob_calloc(FUZZ_N, 1);
    t->text = ob_calloc(FUZZ_N, sizeof *t->text);
    t->text_len = ob_calloc(FUZZ_N, sizeof *t->text_len);
    if (!t->kind || !t->text || !t->text_len) {
        ob_vocab_trie_free(t);
        return NULL;
    }
    for (int64_t i = 0; i < FUZZ_N - 1; i++) {
        t->text[i] = fuzz_vocab[i];
        t->text_len[i] = (uint32_t)strlen(fuzz_vocab[i]);
        t->kind[i] = i == FUZZ_CALL ? VT_EOG : i >= FUZZ_CONTROL ? VT_NEVER : VT_TEXT;
    }
    t->text[FUZZ_N - 1] = "";
    t->kind[FUZZ_N - 1] = VT_EOG;
    if (gram_trie_build(t, NULL)) {
        ob_vocab_trie_free(t);
        return NULL;
    }
    return t;
}

/* A sampler under a copy of m picks from logits made of d[0..n) (n >= 1) what the rule picks:
 * the same chain without the grammar, drawn again from the masked logits when its pick is
 * refused. */
static void sample_like_mask(const ob_matcher *m, const uint8_t *d, size_t n) {
    float logits[FUZZ_N], masked[FUZZ_N];
    for (int64_t k = 0; k < FUZZ_N; k++) logits[k] = (float)(d[k % (int64_t)n] % 16) - 4;
    ob_sampler_params p;
    ob_sampler_params_init(&p);
    p.temp = d[0] & 1 ? 0.0f : 0.9f;
    p.top_k = d[0] >> 4;
    p.seed = d[n - 1];
    ob_matcher *c = NULL, *ref_m = NULL;
    ob_sampler *s = NULL, *ref = NULL;
    if (ob_matcher_clone(m, &c, NULL) || ob_matcher_clone(m, &ref_m, NULL) ||
        ob_sampler_new(&p, FUZZ_N, &s, NULL) || ob_sampler_new(&p, FUZZ_N, &ref, NULL))
        goto done;
    ob_sampler_set_matcher(s, c);
    int32_t want = ob_sampler_sample(ref, logits);
    if (want >= 0 && !ob_matcher_allows(ref_m, want)) {
        memcpy(masked, logits, sizeof masked);
        if (ob_matcher_mask(ref_m, masked, NULL)) goto done; /* a grammar past the limits */
        want = ob_sampler_sample(ref, masked);
    }
    if (ob_sampler_sample(s, logits) != want) abort();
done:
    ob_sampler_free(s);
    ob_sampler_free(ref);
    ob_matcher_free(c);
    ob_matcher_free(ref_m);
}

static void walk(const ob_grammar *g, const ob_vocab_trie *t, const uint8_t *d, size_t n) {
    ob_matcher *m = NULL;
    if (ob_matcher_new(g, t, &m, NULL)) return;
    float logits[FUZZ_N];
    for (size_t i = 0; i < n && i < 4096; i++) {
        if (i % 8 == 0) {
            for (int64_t k = 0; k < FUZZ_N; k++) logits[k] = 0;
            if (ob_matcher_mask(m, logits, NULL) == OB_OK)
                for (int64_t k = 0; k < FUZZ_N; k++)
                    if ((logits[k] == 0) != ob_matcher_allows(m, (int32_t)k)) abort();
            sample_like_mask(m, d + i, n - i);
        }
        if (d[i] == 0xFF && i + 1 < n) {
            int32_t tok = (int32_t)(d[++i] % FUZZ_N);
            bool allowed = ob_matcher_allows(m, tok);
            if ((ob_matcher_accept(m, tok, NULL) == OB_OK) != allowed) abort();
            continue;
        }
        ob_matcher_accept_text(m, (const char *)d + i, 1, NULL);
    }
    (void)ob_matcher_can_end(m);
    ob_matcher_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ob_vocab_trie *t;
    if (!t && !(t = fuzz_trie())) return 0;
    const uint8_t *nul = memchr(data, 0, size);
    size_t glen = nul ? (size_t)(nul - data) : size;
    ob_grammar *g = NULL;
    if (ob_grammar_new((const char *)data, glen, NULL, &g, NULL) == OB_OK) {
        walk(g, t, nul ? nul + 1 : data, nul ? size - glen - 1 : 0);
        ob_grammar_free(g);
    }
    if (!nul && ob_grammar_from_json_schema((const char *)data, size, &g, NULL) == OB_OK) {
        walk(g, t, (const uint8_t *)"{\"a\": [1, true]}", 16);
        ob_grammar_free(g);
    }
    return 0;
}
