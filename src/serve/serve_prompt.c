/*
 * Prompt preparation (serve_prompt.h). Rendering follows `outboard chat` (src/cli/chat_*.c):
 * the template's text is tokenized with special tokens parsed, and one BOS is added only when
 * the vocabulary wants it and the template did not write it already.
 */
#include "serve/serve_prompt.h"

#include "core/alloc.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>

ob_status serve_prompter_init(serve_prompter *p, const ob_model *m, int64_t n_ctx, ob_err *err) {
    memset(p, 0, sizeof *p);
    p->model = m;
    p->n_ctx = n_ctx;
    ob_status st = ob_chat_new(m, NULL, 0, NULL, &p->chat, err);
    if (!st) p->generic_template = ob_chat_get_source(p->chat) == OB_CHAT_SOURCE_GENERIC;
    return st;
}

void serve_prompter_clear(serve_prompter *p) {
    ob_chat_free(p->chat);
    memset(p, 0, sizeof *p);
}

/* Completion text: special-token text stays text. */
static int tokenize_text(const serve_prompter *p, const char *text, size_t len, int32_t **ids,
                         size_t *n, serve_error *e) {
    ob_err err;
    if (ob_chat_tokenize(p->chat, text, len, false, ids, n, &err))
        return serve_error_set(e, 500, "server_error", "tokenizer_error", NULL, "prompt: %s",
                               err.msg);
    return 0;
}

/* The conversation object the template reads: messages, tools and the thinking switches. */
static json_t *conversation(const serve_gen_req *r, json_t *messages) {
    json_t *conv = json_pack("{s:O}", "messages", messages);
    if (!conv) return NULL;
    if (r->template_kwargs) json_object_update(conv, r->template_kwargs);
    /* tool_choice "none": the model is not shown the tools, so it does not call them. */
    if (r->tools && r->tool_choice != SERVE_TOOL_CHOICE_NONE)
        json_object_set(conv, "tools", r->tools);
    if (r->think >= 0) json_object_set_new(conv, "enable_thinking", json_boolean(r->think));
    if (r->reasoning_effort)
        json_object_set_new(conv, "reasoning_effort", json_string(r->reasoning_effort));
    return conv;
}

/* Ollama /api/generate without raw: the prompt (and system) as one user turn. */
static json_t *generate_messages(const serve_gen_req *r, size_t i) {
    json_t *m = json_array();
    if (r->system)
        json_array_append_new(m, json_pack("{s:s, s:s}", "role", "system", "content", r->system));
    json_array_append_new(m, json_pack("{s:s, s:s%}", "role", "user", "content", r->prompts[i].text,
                                       r->prompts[i].text_len));
    return m;
}

static int render(const serve_prompter *p, const serve_gen_req *r, json_t *messages, int32_t **ids,
                  size_t *n, char **text_out, serve_error *e) {
    json_t *conv = conversation(r, messages);
    char *conv_text = conv ? json_dumps(conv, JSON_COMPACT) : NULL;
    json_decref(conv);
    if (!conv_text) return serve_req_nomem(e, "the conversation");
    char *text = NULL;
    size_t len = 0;
    ob_err err;
    ob_status st = ob_chat_render(p->chat, conv_text, strlen(conv_text), NULL, &text, &len, &err);
    free(conv_text);
    if (st)
        return serve_error_bad(e, "template_error", "messages",
                               "messages: the model's chat template refused them: %s", err.msg);
    if (ob_chat_tokenize(p->chat, text, len, true, ids, n, &err)) {
        ob_string_free(text);
        return serve_error_set(e, 500, "server_error", "tokenizer_error", NULL, "prompt: %s",
                               err.msg);
    }
    if (text_out) *text_out = text;
    else ob_string_free(text);
    return 0;
}

static int prompt_any(const serve_prompter *p, const serve_gen_req *r, size_t i, int32_t **ids,
                      size_t *n, char **text, serve_error *e) {
    if (r->kind == SERVE_KIND_CHAT) return render(p, r, r->messages, ids, n, text, e);
    if (r->fim) return serve_fim_tokens(p, r, i, ids, n, e);
    const serve_prompt *pr = &r->prompts[i];
    if (pr->tokens) {
        *ids = ob_alloc(pr->n_tokens + 1, sizeof **ids);
        if (!*ids) return serve_req_nomem(e, "the prompt");
        memcpy(*ids, pr->tokens, pr->n_tokens * sizeof **ids);
        *n = pr->n_tokens;
        return 0;
    }
    if (r->dialect == SERVE_DIALECT_OLLAMA && !r->raw && !p->generic_template) {
        json_t *m = generate_messages(r, i);
        int rc = m ? render(p, r, m, ids, n, NULL, e) : serve_req_nomem(e, "prompt");
        json_decref(m);
        return rc;
    }
    return tokenize_text(p, pr->text, pr->text_len, ids, n, e);
}

/* Drops what prompt_any made. */
static void drop(int32_t **ids, char **text) {
    ob_free(*ids);
    *ids = NULL;
    if (text) {
        ob_string_free(*text);
        *text = NULL;
    }
}

int serve_prompt_tokens(const serve_prompter *p, const serve_gen_req *r, size_t i, int32_t **ids,
                        size_t *n, char **text, serve_error *e) {
    *ids = NULL;
    if (text) *text = NULL;
    if (prompt_any(p, r, i, ids, n, text, e)) return -1;
    if (*n == 0) {
        drop(ids, text);
        return serve_error_bad(e, "invalid_value", "prompt",
                               "prompt: no tokens to start from (empty text and no BOS)");
    }
    if ((int64_t)*n >= p->n_ctx) {
        int64_t got = (int64_t)*n;
        drop(ids, text);
        return serve_error_bad(e, "context_length_exceeded",
                               r->kind == SERVE_KIND_CHAT ? "messages" : "prompt",
                               "%s: %lld tokens, the context holds %lld (--ctx); at least one "
                               "position must stay free for the answer",
                               r->kind == SERVE_KIND_CHAT ? "messages" : "prompt", (long long)got,
                               (long long)p->n_ctx);
    }
    return 0;
}
