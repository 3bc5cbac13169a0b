/*
 * Which chat template renders a `outboard chat` conversation, and rendering it. In order:
 * --template FILE; the GGUF's tokenizer.chat_template (what the model was trained on); the
 * built-in template for the architecture (Gemma 3 GGUFs often ship without one); a generic
 * ChatML template. The choice and the rendering are the library's (ob_chat); the last two are
 * guesses, so t->note says which one is used and the chat prints it.
 */
#include "chat/template.h"
#include "cli/chat.h"
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ob_status cli_chat_tmpl_read(const char *file, cli_chat_tmpl *t, ob_err *err) {
    memset(t, 0, sizeof *t);
    if (!file) return OB_OK;
    const cli_file_use use = {"--template", CLI_MAX_TEMPLATE_FILE, false};
    ob_status st = cli_read_file(file, &use, &t->file_src, &t->file_len, err);
    /* Parsed once here so that a bad template fails before the model loads. */
    chat_template *check = NULL;
    if (!st) st = chat_template_new(t->file_src, t->file_len, file, &check, err);
    chat_template_free(check);
    if (st) {
        cli_chat_tmpl_clear(t);
        return st;
    }
    t->file = file;
    return OB_OK;
}

ob_status cli_chat_tmpl_bind(cli_chat_tmpl *t, const ob_model *m, const char *model_path,
                             ob_err *err) {
    ob_status st = ob_chat_new(m, t->file_src, t->file_len, t->file, &t->chat, err);
    if (st) return st;
    ob_chat_source src = ob_chat_get_source(t->chat);
    if (src == OB_CHAT_SOURCE_BUILTIN || src == OB_CHAT_SOURCE_GENERIC) {
        ob_model_info info;
        ob_model_get_info(m, &info);
        bool gemma = !strncmp(info.arch, "gemma", 5);
        snprintf(t->note, sizeof t->note,
                 "%s has no chat template (tokenizer.chat_template); using %s%s%s "
                 "(--template FILE to choose another)",
                 model_path, src == OB_CHAT_SOURCE_GENERIC ? "a generic ChatML template"
                                                           : "the built-in ",
                 src == OB_CHAT_SOURCE_BUILTIN && !gemma ? info.arch : "",
                 src == OB_CHAT_SOURCE_GENERIC ? "" : gemma ? "Gemma 3 template" : " template");
    }
    return OB_OK;
}

void cli_chat_tmpl_clear(cli_chat_tmpl *t) {
    ob_chat_free(t->chat);
    ob_free(t->file_src);
    memset(t, 0, sizeof *t);
}

ob_status cli_chat_tmpl_render(const cli_chat_tmpl *t, json_t *messages, bool add_gen,
                               char **out, size_t *len, ob_err *err) {
    json_t *conv = json_object();
    char *text = NULL;
    if (conv && !json_object_set(conv, "messages", messages))
        text = json_dumps(conv, JSON_COMPACT);
    json_decref(conv);
    if (!text) return ob_fail(err, OB_ERR_NOMEM, "out of memory");
    ob_chat_render_params p;
    ob_chat_render_params_init(&p);
    p.add_generation_prompt = add_gen;
    ob_status st = ob_chat_render(t->chat, text, strlen(text), &p, out, len, err);
    free(text);
    return st;
}
