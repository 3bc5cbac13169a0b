/*
 * Text in and out of the engine commands: the prompt as token ids (from --tokens, or text
 * through the model's tokenizer) and generated ids streamed as UTF-8 text. Without a usable
 * tokenizer the ids themselves are printed, so the engine stays usable on a model whose
 * vocabulary cannot be loaded.
 */
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cli_text {
    const ob_model *model; /* borrowed */
    ob_detok *detok;       /* NULL: print ids */
};

ob_status cli_text_new(const ob_model *m, cli_text **out, ob_err *err) {
    *out = ob_calloc(1, sizeof **out);
    if (!*out) return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    (*out)->model = m;
    if (ob_detok_new(m, false, &(*out)->detok, NULL) == OB_OK) ob_detok_continue((*out)->detok);
    return OB_OK;
}

void cli_text_free(cli_text *t) {
    if (!t) return;
    ob_detok_free(t->detok);
    ob_free(t);
}

void cli_text_put(cli_text *t, int32_t id) {
    if (!t->detok) {
        printf("[%d]", id);
        return;
    }
    char buf[256];
    size_t n;
    while ((n = ob_detok_push(t->detok, id, buf, sizeof buf)) > 0) {
        fwrite(buf, 1, n, stdout);
        if (n < sizeof buf) break;
        id = -1; /* more queued: drain it with flush below */
        while ((n = ob_detok_flush(t->detok, buf, sizeof buf)) > 0) fwrite(buf, 1, n, stdout);
        break;
    }
}

void cli_text_flush(cli_text *t) {
    if (!t->detok) return;
    char buf[256];
    size_t n;
    while ((n = ob_detok_flush(t->detok, buf, sizeof buf)) > 0) fwrite(buf, 1, n, stdout);
}

bool cli_text_is_eog(const cli_text *t, int32_t id, int32_t eos) {
    (void)eos;
    return ob_token_is_eog(t->model, id);
}

ob_status cli_prompt_tokens(const ob_model *m, const char *text, size_t len, const char *tokens,
                            int32_t **ids, size_t *n, ob_err *err) {
    if (tokens) return cli_parse_ids("--tokens", tokens, INT32_MAX, ids, n, err);
    ob_status st = ob_tokenize(m, text, len, true, false, ids, n, err);
    if (!st && *n == 0) st = ob_fail(err, OB_ERR_ARG, "the prompt is empty");
    return st;
}
