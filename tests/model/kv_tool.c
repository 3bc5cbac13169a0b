/*
 * A helper the model-family tests drive: `kv_tool MODEL.gguf N_CTX [N_EVAL TRUNCATE_TO]` opens
 * a context of N_CTX positions and prints the bytes of its K and V cache next to what a cache
 * of every layer at N_CTX positions would take ("kv_bytes N", "full_bytes N"); with N_EVAL it
 * evaluates that many tokens (id 1..) and then truncates to TRUNCATE_TO, printing
 * "truncate ok" or "truncate error: <message>".
 */
#include "model/model.h"
#include "outboard.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: kv_tool MODEL.gguf N_CTX [N_EVAL TRUNCATE_TO]\n");
        return 2;
    }
    ob_err err = {{0}};
    ob_model *m = NULL;
    ob_context *c = NULL;
    ob_context_params cp;
    ob_context_params_init(&cp);
    cp.n_ctx = atoll(argv[2]);
    cp.n_threads = 1;
    int rc = 1;
    if (ob_model_load(argv[1], NULL, &m, &err) || ob_context_new(m, &cp, &c, &err)) goto done;
    const model_hparams *hp = &m->hp;
    printf("kv_bytes %zu\nfull_bytes %lld\n", model_context_kv_bytes(c),
           (long long)(hp->n_layer * cp.n_ctx * hp->n_head_kv * hp->head_dim * 2 * 2));
    if (argc == 5) {
        const int64_t n = atoll(argv[3]);
        int32_t *toks = malloc((size_t)n * sizeof *toks);
        for (int64_t i = 0; i < n; i++) toks[i] = (int32_t)(1 + i % (hp->n_vocab - 1));
        ob_status st = ob_eval(c, toks, n, false, &err);
        free(toks);
        if (st) goto done;
        if (ob_context_truncate(c, atoll(argv[4]), &err)) printf("truncate error: %s\n", err.msg);
        else printf("truncate ok\n");
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "kv_tool: %s\n", err.msg);
    ob_context_free(c);
    ob_model_free(m);
    return rc;
}
