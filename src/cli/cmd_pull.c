/*
 * `outboard pull REF`: fetches a model into the local store (src/hub, src/store) with a
 * progress bar on stderr: bytes, rate and time left, redrawn in place on a terminal, a plain
 * line every 10% otherwise (logs, CI). Also the one place the CLI turns a -m argument that
 * may be a store name into a file path (cli_model_path).
 */
#include "cli/cli.h"
#include "cli/cli_args.h"
#include "core/alloc.h"
#include "core/err.h"
#include "hub/hub.h"
#include "store/store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *cli_model_path(const char *cmd, const char *arg) {
    char *path = NULL;
    ob_err err = {{0}};
    if (store_resolve_model(arg, &path, &err)) {
        fprintf(stderr, "outboard%s%s: %s\n", cmd ? " " : "", cmd ? cmd : "", err.msg);
        return NULL;
    }
    return path;
}

/* ---- progress ---------------------------------------------------------------------------- */

typedef struct bar {
    bool tty;
    double start, last_draw;
    uint64_t start_bytes; /* already on disk when this run began (a resume) */
    int last_tenth;       /* plain lines: the last 10% step printed */
    bool finished;        /* the 100% line is out (libcurl reports the end more than once) */
    char file[128];
} bar;

static void human(uint64_t b, char *out, size_t cap) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) v /= 1024, i++;
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static bool on_progress(const char *file, const char *sha256, uint64_t done, uint64_t total,
                        void *user) {
    (void)sha256;
    bar *b = user;
    double now = cli_now();
    if (strcmp(b->file, file)) { /* a new file */
        snprintf(b->file, sizeof b->file, "%s", file);
        b->start = now;
        b->start_bytes = done;
        b->last_tenth = -1;
        b->last_draw = 0;
        b->finished = false;
    }
    bool end = total && done >= total;
    if (b->finished) return true;
    b->finished = end;
    if (b->tty ? now - b->last_draw < 0.1 && !end : false) return true;
    int tenth = total ? (int)(done * 10 / total) : -1;
    if (!b->tty && (!total || tenth == b->last_tenth)) return true;
    b->last_draw = now;
    b->last_tenth = tenth;
    double secs = now - b->start, rate = secs > 0 ? (double)(done - b->start_bytes) / secs : 0;
    char d[32], t[32], r[40] = "", eta[32] = "-";
    human(done, d, sizeof d);
    human(total, t, sizeof t);
    if (rate >= 1) { /* nothing to say before a byte has been timed */
        human((uint64_t)rate, r, sizeof r - 2);
        strcat(r, "/s");
    }
    if (total && rate > 0) {
        long s = (long)((double)(total - done) / rate);
        snprintf(eta, sizeof eta, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    }
    int pct = total ? (int)(done * 100 / total) : 0;
    if (b->tty) {
        char fill[31];
        for (int i = 0; i < 30; i++) fill[i] = i < pct * 30 / 100 ? '#' : ' ';
        fill[30] = 0;
        fprintf(stderr, "\r%.40s [%s] %3d%% %s / %s %s ETA %s\033[K%s", file, fill, pct, d, t, r,
                eta, end ? "\n" : "");
    } else {
        fprintf(stderr, "%s: %3d%% %s / %s %s ETA %s\n", file, pct, d, t, r, eta);
    }
    return true;
}

static void on_status(const char *line, void *user) {
    bar *b = user;
    if (b->tty && b->file[0]) fputs("\r\033[K", stderr);
    fprintf(stderr, "%s\n", line);
}

/* ---- command ----------------------------------------------------------------------------- */

static int usage(FILE *to) {
    fprintf(to,
            "usage: outboard pull REF [--name ORG/REPO:TAG] [--revision REV] [--offline]\n\n"
            "Fetches a GGUF model into the local model store, checking its sha256.\n"
            "  REF: org/repo:QUANT on the hub (org/repo alone: Q4_K_M, else Q8_0, else the\n"
            "       first GGUF), or an http(s) URL of a .gguf file\n"
            "  --offline  never use the network (succeeds only if the model is in the store)\n"
            "The hub is OUTBOARD_HUB (%s), HF_TOKEN its token, the store OUTBOARD_MODELS\n"
            "(`outboard list` shows where); a transfer that sends nothing for\n"
            "OUTBOARD_HUB_TIMEOUT seconds (30) stops. An interrupted pull resumes when run again.\n",
            HUB_DEFAULT_BASE);
    return to == stdout ? 0 : 2;
}

int cli_cmd_pull(int argc, char **argv) {
    cli_store_args o;
    ob_err err = {{0}};
    if (cli_store_args_parse(argc, argv, &o, &err)) {
        fprintf(stderr, "outboard pull: %s\n", err.msg);
        return usage(stderr);
    }
    if (o.help) return usage(stdout);
    /* A file size limit (RLIMIT_FSIZE) must fail the write with EFBIG, not kill us. */
    signal(SIGXFSZ, SIG_IGN);
    char root[4096], name[STORE_NAME_MAX + 1] = "";
    if (store_root(root, sizeof root, &err)) {
        fprintf(stderr, "outboard pull: %s\n", err.msg);
        return 1;
    }
    bar b = {.tty = isatty(2) != 0, .last_tenth = -1};
    const char *token = getenv("HF_TOKEN"), *stall = getenv("OUTBOARD_HUB_TIMEOUT");
    int64_t stall_s = 0;
    if (stall && cli_parse_i64("OUTBOARD_HUB_TIMEOUT", stall, 1, 86400, &stall_s, &err)) {
        fprintf(stderr, "outboard pull: %s\n", err.msg);
        return 2;
    }
    hub_pull_opts po = {
        .revision = o.revision,
        .name = o.name,
        .offline = o.offline,
        .http = {.token = token, .progress = on_progress, .progress_user = &b,
                 .stall_timeout_s = (long)stall_s},
        .status = on_status,
        .status_user = &b,
    };
    if (hub_pull(root, o.ref, &po, name, &err)) {
        if (b.tty && b.file[0]) fputs("\r\033[K", stderr);
        fprintf(stderr, "outboard pull: %s\n", err.msg);
        return 1;
    }
    printf("%s\n", name);
    return 0;
}
