/*
 * `outboard tokenize -m MODEL.gguf [options] TEXT`: shows how the model's vocabulary cuts a
 * text into tokens (id and piece per line, or the id list), or with --detokenize turns ids back
 * into text. Reads only the metadata of the file (the vocabulary), never the weights.
 */
#include "cli/cli.h"
#include "cli/cli_args.h"
#include "core/alloc.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void usage(FILE *to) {
    fprintf(to,
            "usage: outboard tokenize -m MODEL.gguf [options] [TEXT]\n\n"
            "  -m, --model PATH     GGUF file whose vocabulary to use\n"
            "  -f, --file PATH      read the text from a file ('-' = standard input; 64 MiB)\n"
            "      --ids            print only the ids, as [1, 2, 3]\n"
            "      --no-bos         do not add BOS/EOS (special tokens around the text)\n"
            "      --parse-special  turn special-token text such as <|im_start|> into tokens\n"
            "      --detokenize     TEXT is a list of ids (\"1 2 3\" or \"[1, 2, 3]\"): "
            "print the text\n"
            "      --bench N        tokenize N times and report the CPU time per run on stderr\n"
            "      --               what follows is TEXT, even when it starts with '-'\n");
}

/* Detokenizes the ids in s (any of "1 2 3", "1,2,3", "[1, 2, 3]"); each must be in the
 * vocabulary, and a bad one is named. */
static int detokenize(const tok_vocab *v, const char *s) {
    int32_t *ids = NULL;
    size_t n = 0;
    ob_err err = {{0}};
    char *text = NULL;
    size_t len = 0;
    if (!s[strspn(s, " \t\r\n,[]")]) { /* "[]": the empty text, as tokenize prints it */
        putchar('\n');
        return 0;
    }
    ob_status st = cli_parse_ids("--detokenize", s, tok_n_vocab(v) - 1, &ids, &n, &err);
    if (!st) st = tok_decode_all(v, ids, n, false, &text, &len, &err);
    ob_free(ids);
    if (st) {
        fprintf(stderr, "outboard tokenize: %s\n", err.msg);
        return 1;
    }
    fwrite(text, 1, len, stdout);
    putchar('\n');
    ob_free(text);
    return 0;
}

static void print_ids(const tok_vocab *v, const int32_t *ids, size_t n, bool ids_only) {
    if (ids_only) {
        putchar('[');
        for (size_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
        printf("]\n");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        ob_str s = tok_token_text(v, ids[i], true);
        printf("%6d -> '%.*s'\n", ids[i], OB_STR_FMT(s));
    }
}

static void bench(const tok_vocab *v, const cli_tokenize_args *a, const char *text, size_t len) {
    struct timespec t0, t1;
    size_t n = 0;
    /* process CPU time: on a shared machine, time spent descheduled is not counted */
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    for (int64_t r = 0; r < a->bench; r++) {
        int32_t *ids = NULL;
        if (!tok_encode(v, text, len, !a->no_bos, a->parse_special, &ids, &n, NULL)) ob_free(ids);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) /
                (double)a->bench;
    fprintf(stderr, "tokenize: %zu bytes -> %zu tokens in %.3f ms per run (%lld runs, %.1f MB/s)\n",
            len, n, ms, (long long)a->bench, (double)len / (ms * 1e3));
}

int cli_cmd_tokenize(int argc, char **argv) {
    cli_tokenize_args a;
    ob_err err = {{0}};
    if (cli_tokenize_args_parse(argc, argv, &a, &err)) {
        fprintf(stderr, "outboard tokenize: %s\n", err.msg);
        usage(stderr);
        return 2;
    }
    if (a.help) {
        usage(stdout);
        return 0;
    }
    size_t len = a.text ? strlen(a.text) : 0;
    char *owned = NULL;
    const cli_file_use use = {"--file", CLI_MAX_PROMPT_FILE, true};
    /* The text first: a bad --file fails before the vocabulary loads. */
    if (a.file && cli_read_file(a.file, &use, &owned, &len, &err)) {
        fprintf(stderr, "outboard tokenize: %s\n", err.msg);
        return 1;
    }
    const char *text = a.file ? owned : a.text;
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    char *path = cli_model_path("tokenize", a.model);
    if (!path || gguf_open(path, &f, &err) || tok_vocab_load(f, &v, &err)) {
        if (path) fprintf(stderr, "outboard tokenize: %s\n", err.msg);
        ob_free(path);
        gguf_close(f);
        ob_free(owned);
        return 1;
    }
    gguf_close(f);
    ob_free(path);
    int rc;
    if (a.detok) rc = detokenize(v, text);
    else {
        int32_t *ids = NULL;
        size_t n = 0;
        if (a.bench > 0) bench(v, &a, text, len);
        if (tok_encode(v, text, len, !a.no_bos, a.parse_special, &ids, &n, &err)) {
            fprintf(stderr, "outboard tokenize: %s\n", err.msg);
            rc = 1;
        } else {
            print_ids(v, ids, n, a.ids_only);
            rc = 0;
        }
        ob_free(ids);
    }
    ob_free(owned);
    tok_vocab_free(v);
    return rc;
}
