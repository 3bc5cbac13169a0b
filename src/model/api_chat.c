/*
 * The public chat API (outboard.h, "chat") over src/chat: the template that renders a
 * conversation, the tokenization of the rendered prompt, and the output parser of the model's
 * family. `outboard chat` and `outboard serve` both go through it, so the two cannot pick
 * different templates or add BOS differently.
 *
 * The template is chosen in this order: the caller's; the GGUF's tokenizer.chat_template; the
 * built-in one for the architecture; generic ChatML. BOS and EOS texts always come from the
 * model, so a caller's template sees the same bos_token the model's own would.
 */
#include "chat/output.h"
#include "chat/template.h"
#include "chat/template_builtin.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/str.h"
#include "model/model.h"

#include <jansson.h>
#include <string.h>

struct ob_chat {
    const ob_model *model;
    chat_template *tmpl;
    char *source;   /* the template's text, owned */
    size_t source_len;
    ob_chat_source origin;
    chat_family family;
    char *bos, *eos; /* the model's BOS/EOS token texts, owned, NULL when absent */
    int32_t bos_id;
    bool add_bos;    /* the vocabulary starts a text with BOS */
};

struct ob_chat_parser {
    chat_output_stream *stream;
};

/* The text of the token whose id is under `key`, or NULL (key or token absent: the template
 * then gets no such variable). The loader has already warned about ids out of range. */
static char *token_text(const gguf_file *f, const char *key) {
    uint32_t id;
    const gguf_kv *toks;
    if (!gguf_kv_find(f, key) || gguf_get_u32(f, key, &id, NULL) ||
        gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VTYPE_STRING, &toks, NULL) ||
        id >= toks->arr_len)
        return NULL;
    ob_str s = gguf_arr_str(toks, id);
    return ob_strndup(s.ptr, s.len);
}

/* The template text: the caller's, the file's, the architecture's built-in, or ChatML. */
static ob_status pick_source(ob_chat *c, const char *tmpl, size_t len, ob_err *err) {
    const gguf_file *f = c->model->file;
    ob_str src = {tmpl, len};
    c->origin = OB_CHAT_SOURCE_CALLER;
    if (!tmpl) {
        c->origin = OB_CHAT_SOURCE_MODEL;
        if (!gguf_kv_find(f, "tokenizer.chat_template")) {
            const char *arch = c->model->hp.arch_name;
            const char *builtin = chat_template_builtin(arch, strlen(arch));
            c->origin = builtin ? OB_CHAT_SOURCE_BUILTIN : OB_CHAT_SOURCE_GENERIC;
            src = ob_str_from_cstr(builtin ? builtin : CHAT_TEMPLATE_CHATML);
        } else {
            ob_status st = gguf_get_str(f, "tokenizer.chat_template", &src, err);
            if (st) return st;
        }
    }
    c->source = ob_strndup(src.ptr ? src.ptr : "", src.len);
    c->source_len = src.len;
    return c->source ? OB_OK : ob_fail(err, OB_ERR_NOMEM, "chat template: out of memory");
}

ob_status ob_chat_new(const ob_model *m, const char *tmpl, size_t tmpl_len, const char *name,
                      ob_chat **out, ob_err *err) {
    *out = NULL;
    ob_chat *c = ob_calloc(1, sizeof *c);
    if (!c) return ob_fail(err, OB_ERR_NOMEM, "chat: out of memory");
    c->model = m;
    ob_status st = pick_source(c, tmpl, tmpl_len, err);
    if (!st) {
        const char *label = tmpl ? (name ? name : "template")
                            : c->origin == OB_CHAT_SOURCE_MODEL ? gguf_name(m->file)
                            : c->origin == OB_CHAT_SOURCE_BUILTIN ? "built-in template"
                                                                  : "generic ChatML";
        st = chat_template_new(c->source, c->source_len, label, &c->tmpl, err);
    }
    if (st) {
        ob_chat_free(c);
        return st;
    }
    c->bos = token_text(m->file, "tokenizer.ggml.bos_token_id");
    c->eos = token_text(m->file, "tokenizer.ggml.eos_token_id");
    c->family = chat_output_detect(c->source, c->source_len, m->hp.arch_name);
    c->bos_id = m->bos_id;
    /* Whether the vocabulary adds BOS by itself: what it does to an empty text. */
    int32_t *ids = NULL;
    size_t n = 0;
    if (ob_tokenize(m, "", 0, true, false, &ids, &n, NULL) == OB_OK)
        c->add_bos = n > 0 && c->bos_id >= 0 && ids[0] == c->bos_id;
    ob_tokens_free(ids);
    *out = c;
    return OB_OK;
}

void ob_chat_free(ob_chat *c) {
    if (!c) return;
    chat_template_free(c->tmpl);
    ob_free(c->source);
    ob_free(c->bos);
    ob_free(c->eos);
    ob_free(c);
}

ob_chat_source ob_chat_get_source(const ob_chat *c) { return c->origin; }

const char *ob_chat_template(const ob_chat *c, size_t *len) {
    if (len) *len = c->source_len;
    return c->source;
}

const char *ob_chat_format(const ob_chat *c) { return chat_family_name(c->family); }

bool ob_chat_markup_is_special(const ob_chat *c) {
    /* Only these families write nothing but plain text around the answer. */
    return c->family != CHAT_FAMILY_PLAIN && c->family != CHAT_FAMILY_GEMMA;
}

void ob_chat_render_params_init(ob_chat_render_params *p) {
    memset(p, 0, sizeof *p);
    p->add_generation_prompt = true;
}

ob_status ob_chat_render(const ob_chat *c, const char *conversation, size_t len,
                         const ob_chat_render_params *p, char **text, size_t *text_len,
                         ob_err *err) {
    *text = NULL;
    if (text_len) *text_len = 0;
    ob_chat_render_params defaults;
    if (!p) {
        ob_chat_render_params_init(&defaults);
        p = &defaults;
    }
    json_error_t je;
    json_t *conv = json_loadb(conversation ? conversation : "", len, 0, &je);
    if (!conv)
        return ob_fail(err, OB_ERR_FORMAT, "conversation: %s at byte %d", je.text,
                       je.position);
    chat_template_opts o = {.bos_token = c->bos, .eos_token = c->eos,
                            .add_generation_prompt = p->add_generation_prompt, .now = p->now,
                            .max_seconds = p->max_seconds};
    size_t n = 0;
    ob_status st = chat_template_render(c->tmpl, conv, &o, text, &n, err);
    json_decref(conv);
    if (!st && text_len) *text_len = n;
    return st;
}

void ob_string_free(char *s) { ob_free(s); }

ob_status ob_chat_tokenize(const ob_chat *c, const char *text, size_t len, bool parse_special,
                           int32_t **ids, size_t *n_ids, ob_err *err) {
    *ids = NULL;
    *n_ids = 0;
    int32_t *raw = NULL;
    size_t n_raw = 0;
    ob_status st = ob_tokenize(c->model, text, len, false, parse_special, &raw, &n_raw, err);
    if (st) return st;
    /* A template that writes {{ bos_token }} already produced it; add one only otherwise, as
     * a single BOS is what the model saw in training. */
    bool add = c->add_bos && (n_raw == 0 || raw[0] != c->bos_id);
    if (!add) {
        *ids = raw;
        *n_ids = n_raw;
        return OB_OK;
    }
    int32_t *with = ob_alloc(n_raw + 1, sizeof *with);
    if (!with) {
        ob_tokens_free(raw);
        return ob_fail(err, OB_ERR_NOMEM, "prompt: out of memory");
    }
    with[0] = c->bos_id;
    if (n_raw) memcpy(with + 1, raw, n_raw * sizeof *raw);
    ob_tokens_free(raw);
    *ids = with; /* ob_tokens_free is ob_free, as for the tokenizer's own arrays */
    *n_ids = n_raw + 1;
    return OB_OK;
}

void ob_chat_reply_clear(ob_chat_reply *r) { chat_output_clear(r); }

static unsigned parse_flags(const ob_chat *c, const ob_chat_parse_params *p) {
    unsigned flags = p && p->strict ? CHAT_OUTPUT_STRICT : 0;
    if (p && p->prompt) flags |= chat_output_prompt_flags(c->family, p->prompt, p->prompt_len);
    return flags;
}

ob_status ob_chat_parse(const ob_chat *c, const ob_chat_parse_params *p, const char *text,
                        size_t len, ob_chat_reply *out, ob_err *err) {
    return chat_output_parse_tools(c->family, text, len, parse_flags(c, p),
                                   p ? p->tools : NULL, p ? p->tools_len : 0, out, err);
}

ob_status ob_chat_parser_new(const ob_chat *c, const ob_chat_parse_params *p,
                             ob_chat_parser **out, ob_err *err) {
    *out = NULL;
    ob_chat_parser *ps = ob_calloc(1, sizeof *ps);
    if (ps) ps->stream = chat_output_stream_new(c->family, parse_flags(c, p));
    if (!ps || !ps->stream) {
        ob_free(ps);
        return ob_fail(err, OB_ERR_NOMEM, "chat output parser: out of memory");
    }
    if (p && p->tools) {
        ob_status st = chat_output_stream_set_tools(ps->stream, p->tools, p->tools_len, err);
        if (st) {
            ob_chat_parser_free(ps);
            return st;
        }
    }
    *out = ps;
    return OB_OK;
}

bool ob_chat_parser_in_reasoning(const ob_chat_parser *ps) {
    return chat_output_stream_in_reasoning(ps->stream);
}

const char *ob_chat_reasoning_close(const ob_chat *c) {
    return chat_family_think_close(c->family);
}

ob_status ob_chat_parser_feed(ob_chat_parser *ps, const char *text, size_t len,
                              ob_chat_delta *delta, ob_err *err) {
    return chat_output_stream_feed(ps->stream, text, len, delta, err);
}

ob_status ob_chat_parser_finish(ob_chat_parser *ps, ob_chat_delta *delta, ob_chat_reply *out,
                                ob_err *err) {
    return chat_output_stream_finish(ps->stream, delta, out, err);
}

void ob_chat_parser_free(ob_chat_parser *ps) {
    if (!ps) return;
    chat_output_stream_free(ps->stream);
    ob_free(ps);
}
