/*
 * Prompt preparation (serve_prompt.h). Rendering follows `outboard chat` (src/cli/chat_*.c):
 * the template's text is tokenized with special tokens parsed, and one BOS is added only when
 * the vocabulary wants it and the template did not write it already.
 */
#include "serve/serve_prompt.h"

#include "core/alloc.h"
#include "core/err.h"
#include "gguf/gguf.h"

#include <string.h>

ob_status serve_prompter_init(serve_prompter *p, const ob_model *m, const char *path, int64_t n_ctx,
                              ob_err *err) {
    memset(p, 0, sizeof *p);
    p->model = m;
    p->n_ctx = n_ctx;
    ob_model_info info;
    ob_model_get_info(m, &info);
    p->bos = info.bos_id;
    int32_t *ids = NULL;
    size_t n = 0;
    /* Whether the vocabulary adds BOS by itself: what it does to an empty text. */
    if (ob_tokenize(m, "", 0, true, false, &ids, &n, NULL) == OB_OK)
        p->add_bos = n > 0 && p->bos >= 0 && ids[0] == p->bos;
    ob_tokens_free(ids);
    gguf_file *g = NULL;
    ob_status st = gguf_open(path, &g, err);
    if (st) return st;
    ob_str src = {NULL, 0};
    if (gguf_kv_find(g, "tokenizer.chat_template"))
        gguf_get_str(g, "tokenizer.chat_template", &src, NULL);
    if (src.ptr) {
        st = chat_template_from_gguf(g, &p->tmpl, err);
    } else {
        p->generic_template = true;
        st = chat_template_new(CHAT_TEMPLATE_CHATML, strlen(CHAT_TEMPLATE_CHATML),
                               "generic ChatML", &p->tmpl, err);
    }
    p->family = chat_output_detect(src.ptr, src.len, info.arch);
    gguf_close(g);
    return st;
}

void serve_prompter_clear(serve_prompter *p) {
    chat_template_free(p->tmpl);
    memset(p, 0, sizeof *p);
}

static int tokenize(const serve_prompter *p, const char *text, size_t len, bool special,
                    int32_t **ids, size_t *n, serve_error *e) {
    int32_t *raw = NULL;
    size_t n_raw = 0;
    ob_err err;
    if (ob_tokenize(p->model, text, len, false, special, &raw, &n_raw, &err))
        return serve_error_set(e, 500, "server_error", "tokenizer_error", NULL, "prompt: %s",
                               err.msg);
    bool add = p->add_bos && (n_raw == 0 || raw[0] != p->bos);
    int32_t *out = ob_alloc(n_raw + add + 1, sizeof *out);
    if (!out) {
        ob_tokens_free(raw);
        return serve_req_nomem(e, "the prompt");
    }
    if (add) out[0] = p->bos;
    if (n_raw) memcpy(out + add, raw, n_raw * sizeof *raw);
    ob_tokens_free(raw);
    *ids = out;
    *n = n_raw + add;
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
                  size_t *n, unsigned *flags, serve_error *e) {
    json_t *conv = conversation(r, messages);
    if (!conv) return serve_req_nomem(e, "the conversation");
    chat_template_opts o = {.add_generation_prompt = true};
    char *text = NULL;
    size_t len = 0;
    ob_err err;
    ob_status st = chat_template_render(p->tmpl, conv, &o, &text, &len, &err);
    json_decref(conv);
    if (st)
        return serve_error_bad(e, "template_error", "messages",
                               "messages: the model's chat template refused them: %s", err.msg);
    if (flags) *flags = chat_output_prompt_flags(p->family, text, len);
    int rc = tokenize(p, text, len, true, ids, n, e);
    ob_free(text);
    return rc;
}

static int prompt_any(const serve_prompter *p, const serve_gen_req *r, size_t i, int32_t **ids,
                      size_t *n, unsigned *flags, serve_error *e) {
    if (flags) *flags = 0;
    if (r->kind == SERVE_KIND_CHAT) return render(p, r, r->messages, ids, n, flags, e);
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
        int rc = m ? render(p, r, m, ids, n, flags, e) : serve_req_nomem(e, "prompt");
        json_decref(m);
        return rc;
    }
    return tokenize(p, pr->text, pr->text_len, false, ids, n, e);
}

int serve_prompt_tokens(const serve_prompter *p, const serve_gen_req *r, size_t i, int32_t **ids,
                        size_t *n, unsigned *flags, serve_error *e) {
    if (prompt_any(p, r, i, ids, n, flags, e)) return -1;
    if (*n == 0) {
        ob_free(*ids);
        *ids = NULL;
        return serve_error_bad(e, "invalid_value", "prompt",
                               "prompt: no tokens to start from (empty text and no BOS)");
    }
    if ((int64_t)*n >= p->n_ctx) {
        int64_t got = (int64_t)*n;
        ob_free(*ids);
        *ids = NULL;
        return serve_error_bad(e, "context_length_exceeded",
                               r->kind == SERVE_KIND_CHAT ? "messages" : "prompt",
                               "%s: %lld tokens, the context holds %lld (--ctx); at least one "
                               "position must stay free for the answer",
                               r->kind == SERVE_KIND_CHAT ? "messages" : "prompt", (long long)got,
                               (long long)p->n_ctx);
    }
    return 0;
}
