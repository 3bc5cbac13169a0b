/*
 * From a generation request to the prompt's token ids: chat messages through the model's own
 * chat template (a generic ChatML one when the GGUF has none), completion text straight to the
 * tokenizer, token ids as given; then the context check, so a prompt that cannot fit is a 400
 * naming both token counts instead of a silent cut.
 */
#ifndef OB_SERVE_PROMPT_H
#define OB_SERVE_PROMPT_H

#include "chat/output.h"
#include "chat/template.h"
#include "serve/serve_request.h"

typedef struct serve_prompter {
    const ob_model *model; /* borrowed */
    chat_template *tmpl;   /* owned */
    chat_family family;    /* how the model marks reasoning and tool calls */
    bool generic_template; /* the GGUF had none: ChatML is used */
    int32_t bos;
    bool add_bos; /* the vocabulary puts BOS before a text */
    int64_t n_ctx;
} serve_prompter;

/* Reads the chat template of the model file at path. Errors: OB_ERR_IO (file), OB_ERR_FORMAT
 * (a template that does not parse, with its line). */
ob_status serve_prompter_init(serve_prompter *p, const ob_model *m, const char *path, int64_t n_ctx,
                              ob_err *err);
void serve_prompter_clear(serve_prompter *p);

/* Prompt `i` of r as token ids (*ids new, ob_free; *n of them). For chat requests i is 0 and
 * *flags gets chat_output_prompt_flags for the rendered text. Errors: 400
 * context_length_exceeded ("prompt: 5000 tokens, the context holds 4096 (--ctx); at least one
 * position must stay free for the answer"), 400 template_error (the template refused the
 * conversation, its message quoted), 500 otherwise. */
int serve_prompt_tokens(const serve_prompter *p, const serve_gen_req *r, size_t i, int32_t **ids,
                        size_t *n, unsigned *flags, serve_error *e);

#endif
