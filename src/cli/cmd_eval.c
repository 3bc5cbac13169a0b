/*
 * `outboard eval -m MODEL.gguf --tokens 1,2,3 --logits OUT.bin [--chunk N] [--ctx N]
 * [--threads N] [--batch N]`: a developer command (not listed in the help) that evaluates the
 * given token ids and writes the logits of every position as raw little-endian f32,
 * (n_tokens, n_vocab) row-major. --chunk N feeds the tokens N at a time (1 = decode one token
 * per call), so tests can check that prefill and decode agree with each other and with
 * llama.cpp. Prints "n_tokens n_vocab" on stdout.
 */
#include "cli/cli.h"
#include "core/alloc.h"
#include "outboard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void) {
    fprintf(stderr, "usage: outboard eval -m MODEL.gguf --tokens 1,2,3 [--logits OUT.bin] "
                    "[--chunk N] [--ctx N] [--threads N] [--batch N]\n");
    return 2;
}

int cli_cmd_eval(int argc, char **argv) {
    const char *model_path = NULL, *tokens_arg = NULL, *out_path = NULL;
    int64_t chunk = 0;
    ob_context_params cp;
    ob_context_params_init(&cp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[++i] : NULL;
        if (!v) return usage();
        if (!strcmp(a, "-m")) model_path = v;
        else if (!strcmp(a, "--tokens")) tokens_arg = v;
        else if (!strcmp(a, "--logits")) out_path = v;
        else if (!strcmp(a, "--chunk")) chunk = atoll(v);
        else if (!strcmp(a, "--ctx")) cp.n_ctx = atoll(v);
        else if (!strcmp(a, "--threads")) cp.n_threads = atoi(v);
        else if (!strcmp(a, "--batch")) cp.n_batch = atoll(v);
        else return usage();
    }
    if (!model_path || !tokens_arg) return usage();
    int32_t *toks = NULL;
    size_t n_toks = 0;
    if (cli_parse_tokens(tokens_arg, &toks, &n_toks)) return 2;
    ob_err err = {{0}};
    ob_model *m = NULL;
    ob_context *c = NULL;
    FILE *out = NULL;
    int rc = 1;
    if (ob_model_load(model_path, NULL, &m, &err) || ob_context_new(m, &cp, &c, &err)) goto done;
    ob_model_info info;
    ob_model_get_info(m, &info);
    if (out_path && !(out = fopen(out_path, "wb"))) {
        snprintf(err.msg, sizeof err.msg, "%s: cannot open for writing", out_path);
        goto done;
    }
    if (chunk <= 0) chunk = (int64_t)n_toks;
    for (size_t i = 0; i < n_toks; i += (size_t)chunk) {
        int64_t n = (int64_t)n_toks - (int64_t)i < chunk ? (int64_t)n_toks - (int64_t)i : chunk;
        if (ob_eval(c, toks + i, n, true, &err)) goto done;
        for (int64_t t = 0; out && t < n; t++)
            if (fwrite(ob_logits(c, t), sizeof(float), (size_t)info.n_vocab, out) !=
                (size_t)info.n_vocab) {
                snprintf(err.msg, sizeof err.msg, "%s: write failed", out_path);
                goto done;
            }
    }
    printf("%zu %lld\n", n_toks, (long long)info.n_vocab);
    rc = 0;
done:
    if (out && fclose(out) && !rc) rc = 1;
    if (rc) fprintf(stderr, "outboard eval: %s\n", err.msg);
    ob_context_free(c);
    ob_model_free(m);
    ob_free(toks);
    return rc;
}
