/*
 * `outboard template (-m MODEL.gguf | --file T.jinja) --input CONV.json`: renders a
 * conversation with a chat template and prints exactly the text (no newline added), the
 * prompt a model would see. Errors go to stderr with exit status 1 (2 for bad usage).
 */
#include "chat/template.h"
#include "cli/cli.h"
#include "core/alloc.h"
#include "gguf/gguf.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *to) {
    fprintf(to,
            "usage: outboard template (-m MODEL.gguf | --file T.jinja) --input CONV.json\n\n"
            "  -m, --model PATH   use the GGUF's tokenizer.chat_template and BOS/EOS tokens\n"
            "      --file PATH    use a Jinja template file\n"
            "  -i, --input PATH   conversation: {\"messages\": [...], \"tools\": [...],\n"
            "                     \"add_generation_prompt\": bool, \"bos_token\": ..., other\n"
            "                     keys become template variables}; '-' = standard input\n"
            "      --now SECONDS  fix the clock strftime_now reads (seconds since the epoch)\n");
}

/* Reads a whole file (or stdin for "-") into a new buffer. */
static char *read_all(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    size_t cap = 65536, n = 0;
    char *buf = ob_alloc(1, cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = cap > ((size_t)1 << 30) ? NULL : ob_realloc(buf, 2, cap);
        if (!nb) {
            ob_free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    bool bad = ferror(f);
    if (f != stdin) fclose(f);
    if (bad) {
        ob_free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static chat_template *load_template(const char *model, const char *file, ob_err *err) {
    chat_template *t = NULL;
    if (model) {
        gguf_file *g;
        if (gguf_open(model, &g, err)) return NULL;
        chat_template_from_gguf(g, &t, err);
        gguf_close(g);
        return t;
    }
    size_t len;
    char *src = read_all(file, &len);
    if (!src) {
        snprintf(err->msg, sizeof err->msg, "%s: cannot read the template", file);
        return NULL;
    }
    chat_template_new(src, len, file, &t, err);
    ob_free(src);
    return t;
}

int cli_cmd_template(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *input = NULL;
    long long now = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        bool next = i + 1 < argc;
        if ((!strcmp(s, "-m") || !strcmp(s, "--model")) && next)
            model = argv[++i];
        else if (!strcmp(s, "--file") && next)
            file = argv[++i];
        else if ((!strcmp(s, "-i") || !strcmp(s, "--input")) && next)
            input = argv[++i];
        else if (!strcmp(s, "--now") && next)
            now = atoll(argv[++i]);
        else if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "outboard template: unknown or incomplete option '%s'\n", s);
            usage(stderr);
            return 2;
        }
    }
    if (!input || (!model) == (!file)) {
        usage(stderr);
        return 2;
    }
    ob_err err = {{0}};
    chat_template *t = load_template(model, file, &err);
    if (!t) {
        fprintf(stderr, "outboard template: %s\n", err.msg);
        return 1;
    }
    json_error_t jerr;
    json_t *conv =
        !strcmp(input, "-") ? json_loadf(stdin, 0, &jerr) : json_load_file(input, 0, &jerr);
    if (!conv) {
        fprintf(stderr, "outboard template: %s:%d:%d: %s\n", input, jerr.line, jerr.column,
                jerr.text);
        chat_template_free(t);
        return 1;
    }
    chat_template_opts opts = {.now = now};
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
