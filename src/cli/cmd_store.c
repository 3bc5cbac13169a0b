/*
 * `outboard list [--json]`, `outboard rm NAME`, `outboard show NAME`: the local model store
 * (src/store). list reads each model's GGUF header for what a person chooses by
 * (quantization, architecture, context length); show prints what `info` says, the chat
 * template and the manifest.
 */
#include "cli/cli.h"
#include "cli/cli_args.h"
#include "core/err.h"
#include "gguf/gguf.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The facts list shows from a model's GGUF header; "-" / -1 when absent. */
typedef struct model_facts {
    char arch[64], quant[32];
    int64_t ctx;
} model_facts;

static void read_facts(const store_entry *e, model_facts *f) {
    snprintf(f->arch, sizeof f->arch, "-");
    snprintf(f->quant, sizeof f->quant, "-");
    f->ctx = -1;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", e->dir, e->m.files[0].name);
    gguf_file *g = NULL;
    if (gguf_open(path, &g, NULL)) return;
    const gguf_kv *arch = gguf_kv_find(g, "general.architecture");
    if (arch && arch->type == GGUF_VTYPE_STRING) {
        snprintf(f->arch, sizeof f->arch, "%.*s", OB_STR_FMT(arch->str));
        char key[128];
        uint32_t ctx = 0;
        snprintf(key, sizeof key, "%s.context_length", f->arch);
        if (!gguf_get_u32(g, key, &ctx, NULL)) f->ctx = ctx;
    }
    gguf_close(g);
    /* The quantization is the tag the model was pulled as (the file name's own). */
    const char *colon = strrchr(e->m.name, ':');
    if (colon) snprintf(f->quant, sizeof f->quant, "%s", colon + 1);
}

static void when(int64_t t, char *buf, size_t cap) {
    if (t <= 0) {
        snprintf(buf, cap, "never");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M UTC", &tm);
}

static int list_json(const store_entry *v, size_t n) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        model_facts f;
        read_facts(&v[i], &f);
        json_t *m = store_manifest_json(&v[i].m);
        if (!m) break;
        json_object_set_new(m, "path", json_string(v[i].dir));
        json_object_set_new(m, "quantization", json_string(f.quant));
        json_object_set_new(m, "architecture", json_string(f.arch));
        json_object_set_new(m, "context_length", f.ctx >= 0 ? json_integer(f.ctx) : json_null());
        json_array_append_new(arr, m);
    }
    char *text = arr ? json_dumps(arr, JSON_INDENT(2)) : NULL;
    json_decref(arr);
    if (!text) return 1;
    printf("%s\n", text);
    free(text);
    return 0;
}

static int cmd_list(const char *root, const cli_store_args *o) {
    store_entry *v = NULL;
    size_t n = 0;
    ob_err err = {{0}};
    if (store_list(root, &v, &n, &err)) {
        fprintf(stderr, "outboard list: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (o->json) {
        rc = list_json(v, n);
    } else if (n == 0) {
        printf("no models in %s (`outboard pull org/repo:QUANT` fetches one)\n", root);
    } else {
        printf("%-44s %10s %-8s %-10s %8s  %s\n", "NAME", "SIZE", "QUANT", "ARCH", "CONTEXT",
               "LAST USED");
        for (size_t i = 0; i < n; i++) {
            model_facts f;
            char size[32], used[40];
            read_facts(&v[i], &f);
            snprintf(size, sizeof size, "%.1f MiB", (double)v[i].m.size / (1024.0 * 1024.0));
            when(v[i].m.last_used, used, sizeof used);
            printf("%-44s %10s %-8s %-10s %8lld  %s\n", v[i].m.name, size, f.quant, f.arch,
                   (long long)f.ctx, used);
        }
    }
    store_list_free(v, n);
    return rc;
}

/* The GGUF's own template, or what the engine would use instead. */
static void print_template(const char *path) {
    gguf_file *g = NULL;
    if (gguf_open(path, &g, NULL)) return;
    const gguf_kv *t = gguf_kv_find(g, "tokenizer.chat_template");
    printf("\nchat template:\n");
    if (t && t->type == GGUF_VTYPE_STRING) printf("%.*s\n", OB_STR_FMT(t->str));
    else printf("  (none in the file: a built-in template for the architecture is used)\n");
    gguf_close(g);
}

static int cmd_show(const char *root, const cli_store_args *o) {
    store_entry e;
    ob_err err = {{0}};
    if (store_find(root, o->ref, &e, &err)) {
        fprintf(stderr, "outboard show: %s\n", err.msg);
        return 1;
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", e.dir, e.m.files[0].name);
    char *info_argv[] = {"info", path, NULL};
    fflush(stdout);
    int rc = cli_cmd_info(2, info_argv);
    fflush(stdout);
    if (!rc) {
        print_template(path);
        json_t *m = store_manifest_json(&e.m);
        char *text = m ? json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        printf("\nmanifest (%s/manifest.json):\n%s\n", e.dir, text ? text : "?");
        free(text);
        json_decref(m);
    }
    store_manifest_clear(&e.m);
    return rc;
}

static int usage(const char *cmd, FILE *to) {
    if (!strcmp(cmd, "list"))
        fprintf(to, "usage: outboard list [--json]\n\nThe models in the local store: name, "
                    "size, quantization, architecture, context, last used.\n");
    else if (!strcmp(cmd, "rm"))
        fprintf(to, "usage: outboard rm NAME\n\nRemoves a model from the local store.\n");
    else
        fprintf(to, "usage: outboard show NAME\n\nWhat `outboard info` says about a stored "
                    "model, its chat template and its manifest.\n");
    return to == stdout ? 0 : 2;
}

int cli_cmd_store(int argc, char **argv) {
    cli_store_args o;
    ob_err err = {{0}};
    const char *cmd = argv[0];
    if (cli_store_args_parse(argc, argv, &o, &err)) {
        fprintf(stderr, "outboard %s: %s\n", cmd, err.msg);
        return usage(cmd, stderr);
    }
    if (o.help) return usage(cmd, stdout);
    char root[4096];
    if (store_root(root, sizeof root, &err)) {
        fprintf(stderr, "outboard %s: %s\n", cmd, err.msg);
        return 1;
    }
    if (!strcmp(cmd, "list")) return cmd_list(root, &o);
    if (!strcmp(cmd, "show")) return cmd_show(root, &o);
    if (store_remove(root, o.ref, &err)) {
        fprintf(stderr, "outboard rm: %s\n", err.msg);
        return 1;
    }
    printf("removed %s\n", o.ref);
    return 0;
}
