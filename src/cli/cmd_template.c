/*
 * `outboard template (-m MODEL.gguf | --file T.jinja) --input CONV.json`: renders a
 * conversation with a chat template and prints exactly the text (no newline added), the
 * prompt a model would see. Errors go to stderr with exit status 1 (2 for bad usage).
 */
#include "chat/template.h"
#include "cli/cli.h"
#include "cli/cli_args.h"
#include "core/alloc.h"
#include "gguf/gguf.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *to) {
    fprintf(to,
            "usage: outboard template (-m MODEL.gguf | --file T.jinja) --input CONV.json\n\n"
            "  -m, --model PATH   use the GGUF's tokenizer.chat_template and BOS/EOS tokens\n"
            "      --file PATH    use a Jinja template file (at most 16 MiB); '-' = standard\n"
            "                     input\n"
            "  -i, --input PATH   conversation: {\"messages\": [...], \"tools\": [...],\n"
            "                     \"add_generation_prompt\": bool, \"bos_token\": ..., other\n"
            "                     keys become template variables}; '-' = standard input;\n"
            "                     at most 64 MiB\n"
            "      --now SECONDS  fix the clock strftime_now reads (seconds since the epoch)\n");
}

static chat_template *load_template(const char *model, const char *file, ob_err *err) {
    chat_template *t = NULL;
    if (model) {
        gguf_file *g;
        char *path = NULL;
        ob_status st = store_resolve_model(model, &path, err);
        if (!st) st = gguf_open(path, &g, err);
        ob_free(path);
        if (st) return NULL;
        chat_template_from_gguf(g, &t, err);
        gguf_close(g);
        return t;
    }
    size_t len;
    char *src = NULL;
    const cli_file_use use = {"--file", CLI_MAX_TEMPLATE_FILE, true};
    if (cli_read_file(file, &use, &src, &len, err)) return NULL;
    chat_template_new(src, len, file, &t, err);
    ob_free(src);
    return t;
}

int cli_cmd_template(int argc, char **argv) {
    cli_template_args a;
    ob_err err = {{0}};
    if (cli_template_args_parse(argc, argv, &a, &err)) {
        fprintf(stderr, "outboard template: %s\n", err.msg);
        usage(stderr);
        return 2;
    }
    if (a.help) {
        usage(stdout);
        return 0;
    }
    chat_template *t = load_template(a.model, a.file, &err);
    if (!t) {
        fprintf(stderr, "outboard template: %s\n", err.msg);
        return 1;
    }
    json_t *conv = NULL;
    const cli_file_use use = {"--input", CLI_MAX_CONVERSATION_FILE, true};
    if (cli_read_json(a.input, &use, &conv, &err)) {
        fprintf(stderr, "outboard template: %s\n", err.msg);
        chat_template_free(t);
        return 1;
    }
    chat_template_opts opts = {.now = a.now};
    char *text;
    size_t n;
    ob_status st = chat_template_render(t, conv, &opts, &text, &n, &err);
    json_decref(conv);
    chat_template_free(t);
    if (st) {
        fprintf(stderr, "outboard template: %s\n", err.msg);
        return 1;
    }
    fwrite(text, 1, n, stdout);
    ob_free(text);
    return fflush(stdout) ? 1 : 0;
}
