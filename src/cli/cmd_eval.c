/*
 * `outboard eval -m MODEL.gguf --tokens 1,2,3 --logits OUT.bin [--chunk N] [--ctx N]
 * [--threads N] [--batch N]`: a developer command (not listed in the help) that evaluates the
 * given token ids and writes the logits of every position as raw little-endian f32,
 * (n_tokens, n_vocab) row-major. --chunk N feeds the tokens N at a time (1 = decode one token
 * per call), so tests can check that prefill and decode agree with each other and with
 * llama.cpp. Prints "n_tokens n_vocab" on stdout.
 */
#include "cli/cli.h"
#include "cli/cli_args.h"
#include "core/alloc.h"
#include "outboard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(FILE *to) {
    fprintf(to, "usage: outboard eval -m MODEL.gguf --tokens 1,2,3 [--logits OUT.bin] "
                "[--chunk N] [--ctx N] [--threads N] [--batch N]\n"
                "  [--device cpu|cuda[:N]|vulkan[:N]|auto] [--gpu-layers N]\n");
    return to == stdout ? 0 : 2;
}

int cli_cmd_eval(int argc, char **argv) {
    cli_eval_args o;
    ob_err err = {{0}};
    if (cli_eval_args_parse(argc, argv, &o, &err)) {
        fprintf(stderr, "outboard eval: %s\n", err.msg);
        return usage(stderr);
    }
    if (o.help) return usage(stdout);
    int32_t *toks = NULL;
    size_t n_toks = 0;
    if (cli_parse_ids("--tokens", o.tokens, INT32_MAX, &toks, &n_toks, &err)) {
        fprintf(stderr, "outboard eval: %s\n", err.msg);
        return 2;
    }
    ob_model *m = NULL;
    ob_context *c = NULL;
    FILE *out = NULL;
    int rc = 1;
    char *path = cli_model_path("eval", o.model);
    if (!path) {
        ob_free(toks);
        return 1;
    }
    ob_status lst = ob_model_load(path, NULL, &m, &err);
    ob_free(path);
    if (lst) goto done;
    cli_ctx_warn("eval", m, o.cp.n_ctx);
    if (cli_context_new(m, &o.cp, &c, &err)) goto done;
    ob_model_info info;
    ob_model_get_info(m, &info);
    if (o.logits && !(out = fopen(o.logits, "wb"))) {
        snprintf(err.msg, sizeof err.msg, "%s: cannot open for writing", o.logits);
        goto done;
    }
    int64_t chunk = o.chunk > 0 ? o.chunk : (int64_t)n_toks;
    for (size_t i = 0; i < n_toks; i += (size_t)chunk) {
        int64_t n = (int64_t)n_toks - (int64_t)i < chunk ? (int64_t)n_toks - (int64_t)i : chunk;
        if (ob_eval(c, toks + i, n, true, &err)) goto done;
        for (int64_t t = 0; out && t < n; t++)
            if (fwrite(ob_logits(c, t), sizeof(float), (size_t)info.n_vocab, out) !=
                (size_t)info.n_vocab) {
                snprintf(err.msg, sizeof err.msg, "%s: write failed", o.logits);
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
