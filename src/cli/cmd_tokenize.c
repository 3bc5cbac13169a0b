/*
 * `outboard tokenize -m MODEL.gguf [options] TEXT`: shows how the model's vocabulary cuts a
 * text into tokens (id and piece per line, or the id list), or with --detokenize turns ids back
 * into text. Reads only the metadata of the file (the vocabulary), never the weights.
 */
#include "cli/cli.h"
#include "core/alloc.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *to) {
    fprintf(to,
            "usage: outboard tokenize -m MODEL.gguf [options] [TEXT]\n\n"
            "  -m, --model PATH     GGUF file whose vocabulary to use\n"
            "  -f, --file PATH      read the text from a file ('-' = standard input)\n"
            "      --ids            print only the ids, as [1, 2, 3]\n"
            "      --no-bos         do not add BOS/EOS (special tokens around the text)\n"
            "      --parse-special  turn special-token text such as <|im_start|> into tokens\n"
            "      --detokenize     TEXT is a list of ids (\"1 2 3\" or \"[1, 2, 3]\"): "
            "print the text\n"
            "      --bench N        tokenize N times and report the CPU time per run on stderr\n");
}

typedef struct tok_args {
    const char *model, *file, *text;
    bool ids_only, no_bos, parse_special, detok;
    long bench;
} tok_args;

static int parse_args(int argc, char **argv, tok_args *a) {
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        bool has_next = i + 1 < argc;
        if ((!strcmp(s, "-m") || !strcmp(s, "--model")) && has_next) a->model = argv[++i];
        else if ((!strcmp(s, "-f") || !strcmp(s, "--file")) && has_next) a->file = argv[++i];
        else if (!strcmp(s, "--ids")) a->ids_only = true;
        else if (!strcmp(s, "--no-bos")) a->no_bos = true;
        else if (!strcmp(s, "--parse-special")) a->parse_special = true;
        else if (!strcmp(s, "--detokenize")) a->detok = true;
        else if (!strcmp(s, "--bench") && has_next) a->bench = strtol(argv[++i], NULL, 10);
        else if (!strcmp(s, "-h") || !strcmp(s, "--help")) return usage(stdout), 0;
        else if (s[0] == '-' && s[1]) {
            fprintf(stderr, "outboard tokenize: unknown option '%s'\n", s);
            return usage(stderr), 2;
        } else if (!a->text) a->text = s;
        else {
            fprintf(stderr, "outboard tokenize: more than one TEXT ('%s')\n", s);
            return 2;
        }
    }
    if (!a->model || (!a->text == !a->file)) {
        fprintf(stderr, "outboard tokenize: need -m MODEL and exactly one of TEXT or --file\n");
        return usage(stderr), 2;
    }
    return -1;
}

/* Reads a whole file (or stdin for "-") into a new buffer. */
static char *read_all(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "outboard tokenize: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = ob_alloc(cap, 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = ob_realloc(buf, cap * 2, 1);
        if (!nb) ob_free(buf);
        buf = nb;
        cap *= 2;
    }
    if (f != stdin) fclose(f);
    if (!buf) fprintf(stderr, "outboard tokenize: %s: out of memory\n", path);
    *len = n;
    return buf;
}

static int detokenize(const tok_vocab *v, const char *s) {
    size_t cap = strlen(s) / 2 + 1, n = 0;
    int32_t *ids = ob_alloc(cap, sizeof *ids);
    if (!ids) return 1;
    for (const char *p = s; *p;) {
        if ((*p < '0' || *p > '9') && *p != '-') {
            p++;
            continue;
        }
        char *end;
        long x = strtol(p, &end, 10);
        if (x < 0 || x >= tok_n_vocab(v)) {
            fprintf(stderr, "outboard tokenize: id %ld out of range [0, %lld)\n", x,
                    (long long)tok_n_vocab(v));
            ob_free(ids);
            return 1;
        }
        if (n < cap) ids[n++] = (int32_t)x;
        p = end;
    }
    char *text;
    size_t len;
    ob_err err = {{0}};
    ob_status st = tok_decode_all(v, ids, n, false, &text, &len, &err);
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

static void bench(const tok_vocab *v, const tok_args *a, const char *text, size_t len) {
    struct timespec t0, t1;
    size_t n = 0;
    /* process CPU time: on a shared machine, time spent descheduled is not counted */
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    for (long r = 0; r < a->bench; r++) {
        int32_t *ids = NULL;
        if (!tok_encode(v, text, len, !a->no_bos, a->parse_special, &ids, &n, NULL)) ob_free(ids);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) /
                (double)a->bench;
    fprintf(stderr, "tokenize: %zu bytes -> %zu tokens in %.3f ms per run (%ld runs, %.1f MB/s)\n",
            len, n, ms, a->bench, (double)len / (ms * 1e3));
}

int cli_cmd_tokenize(int argc, char **argv) {
    tok_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    ob_err err = {{0}};
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    if (gguf_open(a.model, &f, &err) || tok_vocab_load(f, &v, &err)) {
        fprintf(stderr, "outboard tokenize: %s\n", err.msg);
        gguf_close(f);
        return 1;
    }
    gguf_close(f);
    size_t len = a.text ? strlen(a.text) : 0;
    char *owned = a.file ? read_all(a.file, &len) : NULL;
    const char *text = a.file ? owned : a.text;
    if (!text) rc = 1;
    else if (a.detok) rc = detokenize(v, text);
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
