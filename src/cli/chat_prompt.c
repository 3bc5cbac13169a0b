/*
 * Which chat template renders a `outboard chat` conversation, and rendering it. In order:
 * --template FILE; the GGUF's tokenizer.chat_template (what the model was trained on); the
 * built-in template src/chat has for the architecture (Gemma 3 GGUFs often ship without one);
 * a generic ChatML template. The last two are guesses, so t->note says which one is used and
 * the chat prints it. BOS/EOS token texts always come from the GGUF, so a template file sees
 * the same bos_token as the model's own would.
 */
#include "chat/template_builtin.h"
#include "cli/chat.h"
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/str.h"
#include "gguf/gguf.h"

#include <stdio.h>
#include <string.h>

/* The text of the token whose id is under `key`, or NULL (the key or vocabulary is absent or
 * does not hold it: the template then gets no such variable). */
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

/* The template text from the GGUF or the fallbacks; sets t->note for a fallback. */
static ob_status pick_source(const gguf_file *g, const char *model_path, cli_chat_tmpl *t,
                             ob_err *err) {
    ob_str src = {NULL, 0}, arch = {"", 0};
    if (gguf_kv_find(g, "tokenizer.chat_template")) {
        ob_status st = gguf_get_str(g, "tokenizer.chat_template", &src, err);
        if (st) return st;
    } else {
        if (gguf_kv_find(g, "general.architecture"))
            gguf_get_str(g, "general.architecture", &arch, NULL);
        const char *builtin = chat_template_builtin(arch.ptr, arch.len);
        bool gemma = arch.len >= 5 && !memcmp(arch.ptr, "gemma", 5);
        snprintf(t->note, sizeof t->note,
                 "%s has no chat template (tokenizer.chat_template); using %s%.*s%s "
                 "(--template FILE to choose another)",
                 model_path, !builtin ? "a generic ChatML template" : "the built-in ",
                 builtin && !gemma ? (int)arch.len : 0, arch.ptr,
                 !builtin ? "" : gemma ? "Gemma 3 template" : " template");
        src = ob_str_from_cstr(builtin ? builtin : CHAT_TEMPLATE_CHATML);
    }
    t->source = ob_strndup(src.ptr, src.len);
    return t->source ? OB_OK : ob_fail(err, OB_ERR_NOMEM, "out of memory");
}

ob_status cli_chat_tmpl_load(const char *model_path, const char *file, cli_chat_tmpl *t,
                             ob_err *err) {
    memset(t, 0, sizeof *t);
    /* The file first: a bad --template fails before the model is opened. */
    size_t len;
    const cli_file_use use = {"--template", CLI_MAX_TEMPLATE_FILE, false};
    if (file) {
        ob_status st = cli_read_file(file, &use, &t->source, &len, err);
        if (st) return st;
    }
    gguf_file *g;
    ob_status st = gguf_open(model_path, &g, err);
    if (st) {
        cli_chat_tmpl_clear(t);
        return st;
    }
    if (!file) st = pick_source(g, model_path, t, err);
    if (!st)
        st = chat_template_new(t->source, strlen(t->source), file ? file : model_path, &t->tmpl,
                               err);
    if (!st) {
        t->bos = token_text(g, "tokenizer.ggml.bos_token_id");
        t->eos = token_text(g, "tokenizer.ggml.eos_token_id");
        ob_str name = {NULL, 0};
        if (gguf_kv_find(g, "general.architecture"))
            gguf_get_str(g, "general.architecture", &name, NULL);
        char arch[64];
        snprintf(arch, sizeof arch, "%.*s", OB_STR_FMT(name));
        t->family = chat_output_detect(t->source, strlen(t->source), name.ptr ? arch : NULL);
    }
    gguf_close(g);
    if (st) cli_chat_tmpl_clear(t);
    return st;
}

void cli_chat_tmpl_clear(cli_chat_tmpl *t) {
    chat_template_free(t->tmpl);
    ob_free(t->source);
    ob_free(t->bos);
    ob_free(t->eos);
    memset(t, 0, sizeof *t);
}

ob_status cli_chat_tmpl_render(const cli_chat_tmpl *t, json_t *messages, bool add_gen,
                               char **out, size_t *len, ob_err *err) {
    json_t *conv = json_object();
    if (!conv || json_object_set(conv, "messages", messages)) {
        json_decref(conv);
        return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    }
    chat_template_opts o = {.bos_token = t->bos, .eos_token = t->eos,
                            .add_generation_prompt = add_gen};
    ob_status st = chat_template_render(t->tmpl, conv, &o, out, len, err);
    json_decref(conv);
    return st;
}
