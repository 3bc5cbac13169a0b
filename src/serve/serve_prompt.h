/*
 * From a generation request to the prompt's token ids: chat messages through the model's own
 * chat template (a generic ChatML one when the GGUF has none), completion text straight to the
 * tokenizer, token ids as given; then the context check, so a prompt that cannot fit is a 400
 * naming both token counts instead of a silent cut.
 */
#ifndef OB_SERVE_PROMPT_H
#define OB_SERVE_PROMPT_H

#include "serve/serve_request.h"

typedef struct serve_prompter {
    const ob_model *model; /* borrowed */
    ob_chat *chat;         /* owned: template, prompt tokenization, output format */
    bool generic_template; /* the GGUF had none and no built-in fits: ChatML is used */
    int64_t n_ctx;
} serve_prompter;

/* The model's chat format (ob_chat_new: its own template, a built-in one, or ChatML).
 * Errors: OB_ERR_FORMAT (a template that does not parse, with its line). */
ob_status serve_prompter_init(serve_prompter *p, const ob_model *m, int64_t n_ctx, ob_err *err);
void serve_prompter_clear(serve_prompter *p);

/* Prompt `i` of r as token ids (*ids new, ob_free; *n of them). For chat requests i is 0 and
 * *text (when text is non-NULL) gets the rendered prompt (new, ob_free), which the output
 * parser reads; otherwise *text is NULL. Errors: 400 context_length_exceeded ("prompt: 5000
 * tokens, the context holds 4096 (--ctx); at least one position must stay free for the
 * answer"), 400 template_error (the template refused the conversation, its message quoted),
 * 500 otherwise. */
int serve_prompt_tokens(const serve_prompter *p, const serve_gen_req *r, size_t i, int32_t **ids,
                        size_t *n, char **text, serve_error *e);

/* serve_fim.c: prompt `i` of a fill-in-the-middle request (r->fim) as token ids, laid out as
 * llama.cpp's server lays out /infill (*ids new, ob_free). Errors: 400 when the model has no
 * FIM tokens, 500 when out of memory. */
int serve_fim_tokens(const serve_prompter *p, const serve_gen_req *r, size_t i, int32_t **ids,
                     size_t *n, serve_error *e);

#endif
