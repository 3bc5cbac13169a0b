/*
 * libFuzzer entry point for the command-line option parsers (src/cli/cli_args.c and the value
 * parsers of src/cli/cli_opts.c). The input, split at NUL bytes, is an argv after the command
 * name; it goes to every command's parser, and each piece goes to the number and token-list
 * parsers. No file is opened and no model loaded: the parsers only read argv.
 *
 * Besides memory errors (ASan/UBSan), it checks what the parsers promise: success leaves the
 * required fields set and every number inside its range; failure is OB_ERR_ARG with a message
 * that fits the error buffer.
 *
 * Seeds: tests/fuzz_corpus/opts_fuzz/ (argvs that pass and that fail each parser).
 */
#include "../../src/cli/cli_args.c"
#include "../../src/cli/cli_opts.c"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Past this many arguments the parsers only repeat what they already did. */
#define FUZZ_MAX_ARGS 64

#define FUZZ_ASSERT(c)                                                                          \
    do {                                                                                        \
        if (!(c)) __builtin_trap();                                                             \
    } while (0)

/* A failed parse says why, in one line that fits the buffer. */
static void check_failure(ob_status st, const ob_err *e) {
    FUZZ_ASSERT(st == OB_ERR_ARG || st == OB_ERR_NOMEM);
    FUZZ_ASSERT(e->msg[0] && memchr(e->msg, 0, sizeof e->msg) && !strchr(e->msg, '\n'));
}

static void engine_in_range(const ob_sampler_params *sp, const ob_context_params *cp) {
    FUZZ_ASSERT(sp->temp >= 0 && sp->temp <= CLI_MAX_TEMP);
    FUZZ_ASSERT(sp->top_p > 0 && sp->top_p <= 1 && sp->min_p >= 0 && sp->min_p <= 1);
    FUZZ_ASSERT(sp->repeat_penalty > 0 && sp->repeat_penalty <= CLI_MAX_REPEAT_PENALTY);
    FUZZ_ASSERT(sp->top_k >= 0 && cp->n_ctx >= 0 && cp->n_ctx <= CLI_MAX_CTX);
    FUZZ_ASSERT(cp->n_threads >= 0 && cp->n_threads <= CLI_MAX_THREADS);
    FUZZ_ASSERT(cp->experts >= OB_EXPERTS_AUTO && cp->experts <= OB_EXPERTS_HOST);
}

static void engine_commands(int argc, char **argv) {
    ob_err e = {{0}};
    cli_run_args r;
    ob_status st = cli_run_args_parse(argc, argv, &r, &e);
    if (st) check_failure(st, &e);
    else if (!r.help) {
        FUZZ_ASSERT(r.model && !!r.prompt + !!r.file + !!r.tokens == 1);
        FUZZ_ASSERT(r.n_predict >= 0 && r.n_predict <= CLI_MAX_CTX);
        engine_in_range(&r.sp, &r.cp);
    }
    cli_chat_args c;
    memset(&e, 0, sizeof e);
    st = cli_chat_args_parse(argc, argv, &c, &e);
    if (st) check_failure(st, &e);
    else if (!c.help) {
        FUZZ_ASSERT(c.model && !(c.system && c.system_file) && c.n_predict >= -1);
        engine_in_range(&c.sp, &c.cp);
    }
    cli_bench_args b;
    memset(&e, 0, sizeof e);
    st = cli_bench_args_parse(argc, argv, &b, &e);
    if (st) check_failure(st, &e);
    else if (!b.help)
        FUZZ_ASSERT(b.model && b.reps >= 1 && b.reps <= CLI_MAX_BENCH_REPS &&
                    b.experts >= OB_EXPERTS_AUTO && b.experts <= OB_EXPERTS_HOST);
    cli_eval_args v;
    memset(&e, 0, sizeof e);
    st = cli_eval_args_parse(argc, argv, &v, &e);
    if (st) check_failure(st, &e);
    else if (!v.help) FUZZ_ASSERT(v.model && v.tokens && v.chunk >= 0);
}

static void file_commands(int argc, char **argv) {
    ob_err e = {{0}};
    cli_quantize_args q;
    ob_status st = cli_quantize_args_parse(argc, argv, &q, &e);
    if (st) check_failure(st, &e);
    else if (!q.help) FUZZ_ASSERT(q.in && q.out && q.type && q.threads >= 1);
    cli_synth_args s;
    memset(&e, 0, sizeof e);
    st = cli_synth_args_parse(argc, argv, &s, &e);
    if (st) check_failure(st, &e);
    else if (!s.help) FUZZ_ASSERT(s.out && s.swa >= -1 && s.swa <= CLI_MAX_CTX);
    cli_tokenize_args t;
    memset(&e, 0, sizeof e);
    st = cli_tokenize_args_parse(argc, argv, &t, &e);
    if (st) check_failure(st, &e);
    else if (!t.help) FUZZ_ASSERT(t.model && !t.text != !t.file && t.bench >= 0);
    cli_template_args p;
    memset(&e, 0, sizeof e);
    st = cli_template_args_parse(argc, argv, &p, &e);
    if (st) check_failure(st, &e);
    else if (!p.help) FUZZ_ASSERT(p.input && !p.model != !p.file && p.now >= 0);
    cli_info_args i;
    memset(&e, 0, sizeof e);
    st = cli_info_args_parse(argc, argv, &i, &e);
    if (st) check_failure(st, &e);
    else if (!i.help) FUZZ_ASSERT(i.path);
    /* The store's commands take their flags by name: each name in turn as argv[0]. */
    static const char *const STORE_CMDS[] = {"pull", "list", "rm", "show"};
    char *const cmd = argv[0];
    for (size_t k = 0; k < sizeof STORE_CMDS / sizeof STORE_CMDS[0]; k++) {
        cli_store_args sa;
        argv[0] = (char *)STORE_CMDS[k];
        memset(&e, 0, sizeof e);
        st = cli_store_args_parse(argc, argv, &sa, &e);
        if (st) check_failure(st, &e);
        else if (!sa.help) FUZZ_ASSERT(k == 1 ? !sa.ref : sa.ref != NULL);
        if (!st && k != 0) FUZZ_ASSERT(!sa.name && !sa.revision && !sa.offline);
    }
    argv[0] = cmd;
}

/* One piece through every value parser, with the ranges the commands use. */
static void values(const char *s) {
    ob_err e = {{0}};
    int64_t i = 0;
    ob_status st = cli_parse_i64("-n", s, -1, CLI_MAX_CTX, &i, &e);
    if (st) check_failure(st, &e);
    else FUZZ_ASSERT(i >= -1 && i <= CLI_MAX_CTX);
    memset(&e, 0, sizeof e);
    if ((st = cli_parse_i64("-x", s, INT64_MIN, INT64_MAX, &i, &e))) check_failure(st, &e);
    uint64_t u = 0;
    memset(&e, 0, sizeof e);
    if ((st = cli_parse_u64("--seed", s, 1000, &u, &e))) check_failure(st, &e);
    else FUZZ_ASSERT(u <= 1000);
    double d = 0;
    memset(&e, 0, sizeof e);
    st = cli_parse_f64("--top-p", s, 0, 1, true, &d, &e);
    if (st) check_failure(st, &e);
    else FUZZ_ASSERT(isfinite(d) && d > 0 && d <= 1);
    int32_t *ids = NULL;
    size_t n = 0;
    memset(&e, 0, sizeof e);
    st = cli_parse_ids("--tokens", s, 511, &ids, &n, &e);
    if (st) check_failure(st, &e);
    for (size_t k = 0; k < n; k++) FUZZ_ASSERT(ids[k] >= 0 && ids[k] <= 511);
    FUZZ_ASSERT(st ? ids == NULL && n == 0 : n >= 1);
    ob_free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    /* argv[0] is the command's name, as main passes it; the input is the rest. */
    char *argv[FUZZ_MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = (char *)"cmd";
    for (size_t off = 0; off <= size && argc <= FUZZ_MAX_ARGS; off += strlen(buf + off) + 1)
        argv[argc++] = buf + off;
    argv[argc] = NULL;
    engine_commands(argc, argv);
    file_commands(argc, argv);
    for (int k = 1; k < argc; k++) values(argv[k]);
    free(buf);
    return 0;
}
