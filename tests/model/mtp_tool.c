/*
 * The tool test_qwen35_mtp.py drives: `mtp_tool MODEL.gguf IDS OUT.bin` evaluates the tokens
 * (comma-separated ids) in one decode with the hidden states kept, then runs the model's
 * multi-token-prediction block over every position the way the drafter does (entry p: token
 * p with the hidden state at p - 1, zeros before 0), one entry per call in sequence 0 and all
 * of them in one call in sequence 1. OUT.bin gets, as f32: the hidden states (n, n_embd), the
 * block's logits of every entry from sequence 0 (n, n_vocab), then the last entry's logits and
 * output state from sequence 1 (n_vocab, then n_embd). Prints "ok" or the error.
 */
#include "model/context.h"
#include "model/qwen35_mtp.h"
#include "outboard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t parse_ids(const char *s, int32_t *out, int64_t cap) {
    int64_t n = 0;
    for (char *end; *s && n < cap; s = *end ? end + 1 : end) {
        out[n++] = (int32_t)strtol(s, &end, 10);
        if (end == s) return -1;
    }
    return n;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: mtp_tool MODEL.gguf IDS OUT.bin\n");
        return 2;
    }
    ob_err err = {{0}};
    ob_model *m = NULL;
    ob_context *c = NULL;
    model_mtp_ctx *x = NULL;
    int32_t ids[512];
    const int64_t n = parse_ids(argv[2], ids, 512);
    if (n < 1) {
        fprintf(stderr, "mtp_tool: bad ids '%s'\n", argv[2]);
        return 2;
    }
    ob_context_params cp;
    ob_context_params_init(&cp);
    cp.n_ctx = 512;
    cp.n_threads = 1;
    int rc = 1;
    if (ob_model_load(argv[1], NULL, &m, &err) || ob_context_new(m, &cp, &c, &err)) goto done;
    model_context_keep_hidden(c, true);
    if (ob_eval(c, ids, n, false, &err) ||
        model_mtp_ctx_new(m, 2, 512, n, 1, &x, &err))
        goto done;
    const int64_t e = m->hp.n_embd, nv = m->hp.n_vocab;
    float *h = calloc((size_t)((n + 1) * e), sizeof *h); /* row p: the state at p - 1 */
    float *logits = malloc((size_t)((n + 1) * nv) * sizeof *logits);
    float *h_last = malloc((size_t)e * sizeof *h_last);
    for (int64_t p = 1; p < n; p++) memcpy(h + p * e, model_context_hidden(c, 0, p - 1),
                                         (size_t)e * sizeof *h);
    FILE *f = fopen(argv[3], "wb");
    if (!f) {
        fprintf(stderr, "mtp_tool: cannot write %s\n", argv[3]);
        goto done;
    }
    for (int64_t p = 0; p < n; p++)
        fwrite(model_context_hidden(c, 0, p), sizeof(float), (size_t)e, f);
    for (int64_t p = 0; p < n && !err.msg[0]; p++)
        model_mtp_eval(x, 0, p, ids + p, h + p * e, 1, NULL, logits + p * nv, &err);
    fwrite(logits, sizeof(float), (size_t)(n * nv), f);
    if (!err.msg[0]) model_mtp_eval(x, 1, 0, ids, h, n, h_last, logits + n * nv, &err);
    fwrite(logits + n * nv, sizeof(float), (size_t)nv, f);
    fwrite(h_last, sizeof(float), (size_t)e, f);
    fclose(f);
    free(h);
    free(logits);
    free(h_last);
    if (!err.msg[0]) rc = 0;
done:
    printf(rc ? "error: %s\n" : "ok\n", err.msg);
    model_mtp_ctx_free(x);
    ob_context_free(c);
    ob_model_free(m);
    return rc;
}
