/*
 * Chat templates: a parsed Jinja template plus the model's BOS/EOS texts, and the render call
 * that builds transformers' variables from a conversation object. Each render gets its own
 * arena, so a render leaves nothing behind but the returned text.
 */
#include "chat/template.h"

#include "chat/jinja.h"
#include "chat/template_builtin.h"
#include "chat/value.h"
#include "core/alloc.h"
#include "core/err.h"

#include <jansson.h>
#include <string.h>

struct chat_template {
    chat_jinja *jinja;
    char *bos, *eos; /* owned, or NULL */
};

ob_status chat_template_new(const char *src, size_t len, const char *name, chat_template **out,
                            ob_err *err) {
    *out = NULL;
    chat_template *t = ob_calloc(1, sizeof *t);
    if (!t) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", name ? name : "template");
    ob_status st = chat_jinja_parse(src, len, name, &t->jinja, err);
    if (st) {
        ob_free(t);
        return st;
    }
    *out = t;
    return OB_OK;
}

void chat_template_free(chat_template *t) {
    if (!t) return;
    chat_jinja_free(t->jinja);
    ob_free(t->bos);
    ob_free(t->eos);
    ob_free(t);
}

const char *chat_template_bos(const chat_template *t) {
    return t->bos;
}
const char *chat_template_eos(const chat_template *t) {
    return t->eos;
}

/* The text of token `key` (an id) in tokenizer.ggml.tokens; NULL result when absent. */
static ob_status token_text(const gguf_file *f, const char *key, char **out, ob_err *err) {
    *out = NULL;
    if (!gguf_kv_find(f, key)) return OB_OK;
    uint32_t id;
    const gguf_kv *toks;
    ob_status st = gguf_get_u32(f, key, &id, err);
    if (!st) st = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VTYPE_STRING, &toks, err);
    if (st) return st;
    if (id >= toks->arr_len)
        return ob_fail(err, OB_ERR_FORMAT, "%s: %s = %u, but the vocabulary has %llu tokens",
                       gguf_name(f), key, id, (unsigned long long)toks->arr_len);
    ob_str s = gguf_arr_str(toks, id);
    *out = ob_strndup(s.ptr, s.len);
    return *out ? OB_OK : ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", gguf_name(f));
}

ob_status chat_template_from_gguf(const gguf_file *f, chat_template **out, ob_err *err) {
    *out = NULL;
    ob_str src, arch = {"", 0};
    ob_status st;
    if (!gguf_kv_find(f, "tokenizer.chat_template")) {
        /* No template in the file: a built-in one for the architecture, as the model's maker
         * publishes it, else the error names the missing key. */
        if (gguf_kv_find(f, "general.architecture") &&
            (st = gguf_get_str(f, "general.architecture", &arch, err)))
            return st;
        const char *builtin = chat_template_builtin(arch.ptr, arch.len);
        if (!builtin)
            return ob_fail(err, OB_ERR_FORMAT,
                           "%s: key 'tokenizer.chat_template' not found and no built-in template "
                           "for architecture '%.*s'",
                           gguf_name(f), OB_STR_FMT(arch));
        src = ob_str_from_cstr(builtin);
    } else if ((st = gguf_get_str(f, "tokenizer.chat_template", &src, err))) {
        return st;
    }
    chat_template *t;
    if ((st = chat_template_new(src.ptr, src.len, gguf_name(f), &t, err))) return st;
    if ((st = token_text(f, "tokenizer.ggml.bos_token_id", &t->bos, err)) ||
        (st = token_text(f, "tokenizer.ggml.eos_token_id", &t->eos, err))) {
        chat_template_free(t);
        return st;
    }
    *out = t;
    return OB_OK;
}

/* Sets vars[key] from conv[key] when present, else from `fallback` (a C string, NULL =
 * leave unset). */
static ob_status set_token(chat_arena *a, chat_dict *vars, const json_t *conv, const char *key,
                           const char *fallback, ob_err *err) {
    const json_t *j = json_object_get(conv, key);
    chat_val v;
    if (j) {
        ob_status st = chat_val_from_json(a, j, &v, err);
        if (st) return st;
    } else if (fallback) {
        v = chat_val_cstr(a, fallback);
        if (chat_val_failed(v)) return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    } else {
        return OB_OK;
    }
    return chat_dict_set_cstr(a, vars, key, v) ? ob_fail(err, OB_ERR_NOMEM, "out of memory")
                                               : OB_OK;
}

/* Builds the variables apply_chat_template would pass. */
static ob_status build_vars(const chat_template *t, chat_arena *a, const json_t *conv,
                            const chat_template_opts *o, chat_val *vars, ob_err *err) {
    if (!json_is_object(conv))
        return ob_fail(err, OB_ERR_ARG, "conversation: expected a JSON object");
    const json_t *msgs = json_object_get(conv, "messages");
    if (!json_is_array(msgs))
        return ob_fail(err, OB_ERR_ARG, "conversation: \"messages\" must be an array");
    *vars = chat_val_dict(a, 16);
    if (chat_val_failed(*vars)) return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    chat_dict *d = vars->u.d;
    const char *key;
    json_t *val;
    /* Defaults first; the conversation's own keys then replace them in place. */
    bool agp = o ? o->add_generation_prompt : false;
    if (chat_dict_set_cstr(a, d, "messages", chat_val_none()) ||
        chat_dict_set_cstr(a, d, "tools", chat_val_none()) ||
        chat_dict_set_cstr(a, d, "documents", chat_val_none()) ||
        chat_dict_set_cstr(a, d, "add_generation_prompt", chat_val_bool(agp)))
        return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    ob_status st =
        set_token(a, d, conv, "bos_token", o && o->bos_token ? o->bos_token : t->bos, err);
    if (!st)
        st = set_token(a, d, conv, "eos_token", o && o->eos_token ? o->eos_token : t->eos, err);
    if (st) return st;
    json_object_foreach((json_t *)conv, key, val) {
        if (!strcmp(key, "bos_token") || !strcmp(key, "eos_token")) continue;
        chat_val v;
        if ((st = chat_val_from_json(a, val, &v, err))) return st;
        if (chat_dict_set_cstr(a, d, key, v)) return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    }
    return OB_OK;
}

ob_status chat_template_render(const chat_template *t, const struct json_t *conv,
                               const chat_template_opts *opts, char **out, size_t *out_len,
                               ob_err *err) {
    *out = NULL;
    *out_len = 0;
    chat_arena *a = chat_arena_new(CHAT_JINJA_MAX_MEMORY);
    if (!a) return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    chat_val vars;
    ob_status st = build_vars(t, a, (const json_t *)conv, opts, &vars, err);
    const char *text = NULL;
    size_t n = 0;
    chat_jinja_opts jo = {0};
    if (opts) {
        jo.now = opts->now;
        jo.max_steps = opts->max_steps;
        jo.max_seconds = opts->max_seconds;
    }
    if (!st) st = chat_jinja_render(t->jinja, a, vars, &jo, &text, &n, err);
    if (!st) {
        *out = ob_strndup(text, n);
        if (!*out)
            st = ob_fail(err, OB_ERR_NOMEM, "out of memory");
        else
            *out_len = n;
    }
    chat_arena_free(a);
    return st;
}

const char CHAT_TEMPLATE_CHATML[] =
    "{%- for message in messages -%}\n"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string %}{{ message['content'] }}{% endif -%}\n"
    "{{ '<|im_end|>\\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif -%}\n";
