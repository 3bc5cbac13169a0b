/*
 * Cost of grammar masking on a real vocabulary: builds the token trie of MODEL, compiles a
 * JSON schema, then walks the tokens of a document that satisfies it, timing at every step
 * the full mask (ob_matcher_mask) and the one-token check the sampler tries first
 * (ob_matcher_allows). Prints the trie build time and the mean / max per token.
 *
 * Then the greedy sampler's cost per token along the same document, against the same sampler
 * without a grammar: at every position the document's next token is given the rank 1 (the
 * draw stands after one check), 2 (one refused token above it: the sampler checks its next
 * candidates) or 100 (99 refused tokens above it, more than the sampler checks one by one: the
 * whole vocabulary is masked).
 *
 *     build/bench/grammar_mask MODEL.gguf SCHEMA.json DOCUMENT.json
 *
 * bench/grammar/person_schema.json and person.json are the pair BENCHMARKS.md uses.
 */
#include "outboard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 20);
    *len = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf) buf[*len] = 0;
    return buf;
}

/* Logits for a position: 0 everywhere, the document's token `want` at 5, and rank - 1 tokens
 * the grammar refuses here above it. */
static void ranked_logits(ob_matcher *mt, float *logits, int64_t n_vocab, int32_t want,
                          int rank) {
    for (int64_t v = 0; v < n_vocab; v++) logits[v] = 0;
    logits[want] = 5;
    int above = 0;
    for (int64_t v = 1000; v < n_vocab && above < rank - 1; v += 37) {
        if (v == want || ob_matcher_allows(mt, (int32_t)v)) continue;
        logits[v] = 6 + 0.001f * (float)above++;
    }
}

/* Mean seconds of one greedy ob_sampler_sample along the document's tokens with the
 * document's token at `rank` (grammar: under the schema; else none); -1 when a pick differs
 * from the document. */
static double sample_cost(const ob_grammar *g, const ob_vocab_trie *t, const int32_t *ids,
                          size_t n, int64_t n_vocab, int rank, bool grammar, float *logits) {
    ob_sampler_params p;
    ob_sampler_params_init(&p);
    p.temp = 0;
    ob_sampler *s = NULL;
    ob_matcher *mt = NULL, *shadow = NULL; /* shadow: finds refused tokens without timing */
    if (ob_sampler_new(&p, n_vocab, &s, NULL) || ob_matcher_new(g, t, &mt, NULL) ||
        ob_matcher_new(g, t, &shadow, NULL))
        return -1;
    if (grammar) ob_sampler_set_matcher(s, mt);
    double sum = 0;
    for (size_t i = 0; i < n && sum >= 0; i++) {
        ranked_logits(shadow, logits, n_vocab, ids[i], rank);
        double a = now();
        int32_t got = ob_sampler_sample(s, logits);
        sum += now() - a;
        /* Without the grammar only the top token is the document's. */
        bool must_follow = grammar || rank == 1;
        if ((must_follow && got != ids[i]) || ob_matcher_accept(shadow, ids[i], NULL)) sum = -1;
    }
    ob_sampler_free(s);
    ob_matcher_free(mt);
    ob_matcher_free(shadow);
    return sum < 0 ? -1 : sum / (double)n;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL.gguf SCHEMA.json DOCUMENT.json\n", argv[0]);
        return 2;
    }
    ob_err err = {{0}};
    ob_model *m = NULL;
    size_t slen = 0, dlen = 0;
    char *schema = slurp(argv[2], &slen), *doc = slurp(argv[3], &dlen);
    if (!schema || !doc || ob_model_load(argv[1], NULL, &m, &err)) {
        fprintf(stderr, "grammar_mask: %s\n", err.msg[0] ? err.msg : "cannot read the files");
        return 1;
    }
    while (dlen && (doc[dlen - 1] == '\n' || doc[dlen - 1] == ' ')) doc[--dlen] = 0;
    ob_grammar *g = NULL;
    ob_vocab_trie *t = NULL;
    ob_matcher *mt = NULL;
    double t0 = now();
    if (ob_vocab_trie_new(m, &t, &err)) goto fail;
    double t1 = now();
    if (ob_grammar_from_json_schema(schema, slen, &g, &err) || ob_matcher_new(g, t, &mt, &err))
        goto fail;
    int32_t *ids = NULL;
    size_t n = 0;
    if (ob_tokenize(m, doc, dlen, false, false, &ids, &n, &err)) goto fail;
    ob_model_info info;
    ob_model_get_info(m, &info);
    float *logits = malloc((size_t)info.n_vocab * sizeof *logits);
    double mask_sum = 0, mask_max = 0, check_sum = 0;
    size_t allowed_sum = 0;
    for (size_t i = 0; i < n; i++) {
        for (int64_t v = 0; v < info.n_vocab; v++) logits[v] = 0;
        double a = now();
        if (ob_matcher_mask(mt, logits, &err)) goto fail;
        double b = now();
        bool ok = ob_matcher_allows(mt, ids[i]);
        double c = now();
        for (int64_t v = 0; v < info.n_vocab; v++) allowed_sum += logits[v] == 0;
        if (!ok || ob_matcher_accept(mt, ids[i], &err)) {
            fprintf(stderr, "grammar_mask: token %zu (%d) of the document is refused: %s\n", i,
                    ids[i], err.msg);
            return 1;
        }
        mask_sum += b - a;
        check_sum += c - b;
        if (b - a > mask_max) mask_max = b - a;
    }
    printf("vocab %lld tokens: trie built in %.1f ms\n", (long long)info.n_vocab,
           (t1 - t0) * 1e3);
    printf("document: %zu tokens, grammar may end after it: %s\n", n,
           ob_matcher_can_end(mt) ? "yes" : "no");
    printf("full mask: mean %.3f ms, max %.3f ms per token (%.0f tokens allowed on average)\n",
           mask_sum / (double)n * 1e3, mask_max * 1e3, (double)allowed_sum / (double)n);
    printf("one-token check: mean %.2f us per token\n", check_sum / (double)n * 1e6);
    printf("greedy sampler per token (ms), without a grammar / under it:\n");
    for (int k = 0; k < 3; k++) {
        static const int ranks[] = {1, 2, 100};
        double plain = sample_cost(g, t, ids, n, info.n_vocab, ranks[k], false, logits);
        double under = sample_cost(g, t, ids, n, info.n_vocab, ranks[k], true, logits);
        if (plain < 0 || under < 0) {
            fprintf(stderr, "grammar_mask: the sampler did not follow the document\n");
            return 1;
        }
        printf("  document token at rank %3d: %.3f / %.3f\n", ranks[k], plain * 1e3,
               under * 1e3);
    }
    return 0;
fail:
    fprintf(stderr, "grammar_mask: %s\n", err.msg);
    return 1;
}
