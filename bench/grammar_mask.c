/*
 * Cost of grammar masking on a real vocabulary: builds the token trie of MODEL, compiles a
 * JSON schema, then walks the tokens of a document that satisfies it, timing at every step
 * the full mask (ob_matcher_mask) and the one-token check the sampler tries first
 * (ob_matcher_allows). Prints the trie build time and the mean / max per token.
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
    return 0;
fail:
    fprintf(stderr, "grammar_mask: %s\n", err.msg);
    return 1;
}
