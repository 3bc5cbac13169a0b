/*
 * A helper the perplexity test drives: `nll_tool MODEL.gguf N_CTX < WINDOWS` reads token-id
 * windows from standard input, one per line ("2,651,1034,..."), evaluates each from an empty
 * cache with logits at every position, and prints for each "nll SUM COUNT": the negative log
 * likelihood (natural log, log-softmax in double) of tokens 1..n-1 given those before them.
 */
#include "outboard.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -log softmax(logits)[target] over n_vocab logits. */
static double nll_of(const float *logits, int64_t n_vocab, int32_t target) {
    double mx = -INFINITY, sum = 0.0;
    for (int64_t i = 0; i < n_vocab; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (int64_t i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - mx);
    return log(sum) + mx - (double)logits[target];
}

/* Parses "1,2,3" into ids (at most cap); returns the count. */
static int64_t parse_ids(char *line, int32_t *ids, int64_t cap) {
    int64_t n = 0;
    for (char *tok = strtok(line, ",\n"); tok && n < cap; tok = strtok(NULL, ",\n"))
        ids[n++] = (int32_t)strtol(tok, NULL, 10);
    return n;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: nll_tool MODEL.gguf N_CTX < WINDOWS\n");
        return 2;
    }
    ob_err err = {{0}};
    ob_model *m = NULL;
    ob_context *c = NULL;
    ob_context_params cp;
    ob_context_params_init(&cp);
    cp.n_ctx = atoll(argv[2]);
    int rc = 1;
    static char line[1 << 20];
    int32_t *ids = malloc((size_t)cp.n_ctx * sizeof *ids);
    if (!ids || ob_model_load(argv[1], NULL, &m, &err) || ob_context_new(m, &cp, &c, &err))
        goto done;
    ob_model_info info;
    ob_model_get_info(m, &info);
    while (fgets(line, sizeof line, stdin)) {
        int64_t n = parse_ids(line, ids, cp.n_ctx);
        if (n < 2) continue;
        if (ob_context_truncate(c, 0, &err) || ob_eval(c, ids, n, true, &err)) goto done;
        double sum = 0.0;
        for (int64_t t = 0; t + 1 < n; t++) sum += nll_of(ob_logits(c, t), info.n_vocab, ids[t + 1]);
        printf("nll %.9f %lld\n", sum, (long long)(n - 1));
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "nll_tool: %s\n", err.msg);
    free(ids);
    ob_context_free(c);
    ob_model_free(m);
    return rc;
}
