/*
 * The option parsers of every command (declared in cli_args.h): argv in, an options struct or
 * one error line out. Each flag is one line of an if-chain; a flag with a value takes it with
 * take_*, which reports a missing value ("-n needs a value") and passes numbers through the
 * strict parsers of cli_opts.c. Checks that need no file (required arguments, one prompt
 * source, a token list's syntax) are made here too, so a command fails with status 2 before it
 * loads anything.
 */
#include "cli/cli_args.h"
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/err.h"

#include <string.h>

/* argv as the parsers walk it: argv[i] is the flag being read. */
typedef struct argv_cursor {
    int argc;
    char **argv; /* borrowed */
    int i;
} argv_cursor;

/* a is the flag `name` or its other spelling `alias` (NULL: none). */
static bool is(const char *a, const char *name, const char *alias) {
    return !strcmp(a, name) || (alias && !strcmp(a, alias));
}

static bool is_help(const char *a) { return is(a, "-h", "--help"); }

/* -h/--help: the rest of argv is not checked, the command prints its usage. */
static ob_status help(bool *flag) {
    *flag = true;
    return OB_OK;
}

/* An argument no parser knows: an option, or a positional argument where none is taken. */
static ob_status unknown(const char *a, ob_err *err) {
    char sh[CLI_SHOWN_SIZE];
    cli_shown(a, sh);
    if (a[0] == '-' && a[1]) return ob_fail(err, OB_ERR_ARG, "unknown option '%s'", sh);
    return ob_fail(err, OB_ERR_ARG, "unexpected argument '%s'", sh);
}

/* The value after the flag at c->i; steps past it. */
static ob_status take_str(argv_cursor *c, const char **out, ob_err *err) {
    if (c->i + 1 >= c->argc) return ob_fail(err, OB_ERR_ARG, "%s needs a value", c->argv[c->i]);
    *out = c->argv[++c->i];
    return OB_OK;
}

static ob_status take_i64(argv_cursor *c, int64_t min, int64_t max, int64_t *out, ob_err *err) {
    const char *flag = c->argv[c->i], *v = NULL;
    ob_status st = take_str(c, &v, err);
    return st ? st : cli_parse_i64(flag, v, min, max, out, err);
}

static ob_status take_gpu_layers(argv_cursor *c, int64_t *out, ob_err *err) {
    const char *flag = c->argv[c->i], *v = NULL;
    ob_status st = take_str(c, &v, err);
    return st ? st : cli_parse_gpu_layers(flag, v, out, err);
}

static ob_status take_size(argv_cursor *c, uint64_t *out, ob_err *err) {
    const char *flag = c->argv[c->i], *v = NULL;
    ob_status st = take_str(c, &v, err);
    return st ? st : cli_parse_size(flag, v, 1 << 20, 1ull << 50, out, err);
}

static ob_status take_link(argv_cursor *c, double *gbps, double *latency_us, ob_err *err) {
    const char *flag = c->argv[c->i], *v = NULL;
    ob_status st = take_str(c, &v, err);
    return st ? st : cli_parse_link(flag, v, gbps, latency_us, err);
}

static ob_status take_stream(argv_cursor *c, int64_t *out, ob_err *err) {
    const char *flag = c->argv[c->i], *v = NULL;
    ob_status st = take_str(c, &v, err);
    return st ? st : cli_parse_stream(flag, v, out, err);
}

static ob_status take_experts(argv_cursor *c, ob_experts *out, ob_err *err) {
    const char *flag = c->argv[c->i], *v = NULL;
    ob_status st = take_str(c, &v, err);
    return st ? st : cli_parse_experts(flag, v, out, err);
}

static ob_status take_int(argv_cursor *c, int min, int max, int *out, ob_err *err) {
    int64_t v = 0;
    ob_status st = take_i64(c, min, max, &v, err);
    if (!st) *out = (int)v;
    return st;
}

static ob_status take_u64(argv_cursor *c, uint64_t *out, ob_err *err) {
    const char *flag = c->argv[c->i], *v = NULL;
    ob_status st = take_str(c, &v, err);
    return st ? st : cli_parse_u64(flag, v, UINT64_MAX, out, err);
}

static ob_status take_device(argv_cursor *c, ob_device *out, int *index, ob_err *err) {
    const char *flag = c->argv[c->i], *v = NULL;
    ob_status st = take_str(c, &v, err);
    return st ? st : cli_parse_device(flag, v, out, index, err);
}

/* A token list checked for syntax now (the vocabulary bounds come later, from the model). */
static ob_status take_ids(argv_cursor *c, const char **out, ob_err *err) {
    const char *flag = c->argv[c->i];
    ob_status st = take_str(c, out, err);
    int32_t *ids = NULL;
    size_t n = 0;
    if (!st) st = cli_parse_ids(flag, *out, INT32_MAX, &ids, &n, err);
    ob_free(ids);
    return st;
}

/* An engine flag (cli_opts.c) with its value, or the argument is unknown. */
static ob_status take_engine(argv_cursor *c, ob_sampler_params *sp, ob_context_params *cp,
                             ob_err *err) {
    const char *flag = c->argv[c->i], *v = NULL;
    if (!cli_engine_opt_known(flag)) return unknown(flag, err);
    ob_status st = take_str(c, &v, err);
    return st ? st : cli_engine_opt_set(flag, v, sp, cp, err);
}

/* --spec MODE, --spec-max N and --model-draft FILE, shared by run and chat; false when a is
 * none of them. */
static bool take_spec(argv_cursor *c, spec_params *p, const char **draft, ob_status *st,
                      ob_err *err) {
    const char *a = c->argv[c->i], *v = NULL;
    if (is(a, "--model-draft", NULL)) {
        *st = take_str(c, draft, err);
        return true;
    }
    if (is(a, "--spec-max", NULL)) {
        *st = take_int(c, 1, SPEC_MAX_DRAFT, &p->max_draft, err);
        return true;
    }
    if (!is(a, "--spec", NULL)) return false;
    *st = take_str(c, &v, err);
    if (!*st) {
        *st = spec_mode_parse(v, &p->mode, err);
        if (*st) ob_err_prefix(err, "--spec");
    }
    return true;
}

/* --spec draft without a draft model has nothing to draft with. */
static ob_status check_spec(const spec_params *p, const char *draft, ob_err *err) {
    if (p->mode == SPEC_MODE_DRAFT && !draft)
        return ob_fail(err, OB_ERR_ARG, "--spec draft needs a draft model: --model-draft FILE");
    return OB_OK;
}

static ob_status required(const char *what, ob_err *err) {
    return ob_fail(err, OB_ERR_ARG, "%s is required", what);
}

/* ---- engine commands --------------------------------------------------------------------- */

ob_status cli_run_args_parse(int argc, char **argv, cli_run_args *o, ob_err *err) {
    memset(o, 0, sizeof *o);
    o->n_predict = 128;
    ob_sampler_params_init(&o->sp);
    ob_context_params_init(&o->cp);
    spec_params_init(&o->spec);
    argv_cursor c = {argc, argv, 1};
    for (; c.i < argc; c.i++) {
        const char *a = argv[c.i];
        ob_status st = OB_OK;
        if (is_help(a)) return help(&o->help);
        else if (take_spec(&c, &o->spec, &o->model_draft, &st, err)) {}
        else if (is(a, "--verbose", "-v")) o->verbose = true;
        else if (is(a, "--ids", NULL)) o->ids = true;
        else if (is(a, "--ignore-eos", NULL)) o->ignore_eos = true;
        else if (is(a, "-m", NULL)) st = take_str(&c, &o->model, err);
        else if (is(a, "-p", NULL)) st = take_str(&c, &o->prompt, err);
        else if (is(a, "-f", NULL)) st = take_str(&c, &o->file, err);
        else if (is(a, "--tokens", NULL)) st = take_ids(&c, &o->tokens, err);
        else if (is(a, "-n", NULL)) st = take_i64(&c, 0, CLI_MAX_CTX, &o->n_predict, err);
        else if (is(a, "--grammar", NULL)) st = take_str(&c, &o->grammar_file, err);
        else if (is(a, "--json-schema", NULL)) st = take_str(&c, &o->schema_file, err);
        else st = take_engine(&c, &o->sp, &o->cp, err);
        if (st) return st;
    }
    if (!o->model) return required("-m MODEL.gguf", err);
    if (!!o->prompt + !!o->file + !!o->tokens != 1)
        return ob_fail(err, OB_ERR_ARG, "give exactly one of -p PROMPT, -f FILE, --tokens IDS");
    if (o->grammar_file && o->schema_file)
        return ob_fail(err, OB_ERR_ARG, "give at most one of --grammar FILE, --json-schema FILE");
    return check_spec(&o->spec, o->model_draft, err);
}

ob_status cli_chat_args_parse(int argc, char **argv, cli_chat_args *o, ob_err *err) {
    memset(o, 0, sizeof *o);
    o->n_predict = -1;
    ob_sampler_params_init(&o->sp);
    ob_context_params_init(&o->cp);
    spec_params_init(&o->spec);
    argv_cursor c = {argc, argv, 1};
    for (; c.i < argc; c.i++) {
        const char *a = argv[c.i];
        ob_status st = OB_OK;
        if (is_help(a)) return help(&o->help);
        else if (take_spec(&c, &o->spec, &o->model_draft, &st, err)) {}
        else if (is(a, "--show-prompt", NULL)) o->show_prompt = true;
        else if (is(a, "--verbose", "-v")) o->verbose = true;
        else if (is(a, "--ignore-eos", NULL)) o->ignore_eos = true;
        else if (is(a, "-m", "--model")) st = take_str(&c, &o->model, err);
        else if (is(a, "--template", NULL)) st = take_str(&c, &o->template_file, err);
        else if (is(a, "--system", NULL)) st = take_str(&c, &o->system, err);
        else if (is(a, "--system-file", NULL)) st = take_str(&c, &o->system_file, err);
        else if (is(a, "-n", NULL)) st = take_i64(&c, -1, CLI_MAX_CTX, &o->n_predict, err);
        else st = take_engine(&c, &o->sp, &o->cp, err);
        if (st) return st;
    }
    if (!o->model) return required("-m MODEL.gguf", err);
    if (o->system && o->system_file)
        return ob_fail(err, OB_ERR_ARG, "give one of --system and --system-file, not both");
    return check_spec(&o->spec, o->model_draft, err);
}

ob_status cli_bench_args_parse(int argc, char **argv, cli_bench_args *o, ob_err *err) {
    *o = (cli_bench_args){.n_prompt = 512, .n_gen = 128, .reps = 5, .device_index = -1,
                          .gpu_layers = -1, .stream_min_tok = OB_STREAM_AUTO};
    argv_cursor c = {argc, argv, 1};
    for (; c.i < argc; c.i++) {
        const char *a = argv[c.i];
        ob_status st = OB_OK;
        if (is_help(a)) return help(&o->help);
        else if (is(a, "--json", NULL)) o->json = true;
        else if (is(a, "--no-warmup", NULL)) o->no_warmup = true;
        else if (is(a, "-m", NULL)) st = take_str(&c, &o->model, err);
        else if (is(a, "-p", NULL)) st = take_i64(&c, 0, CLI_MAX_CTX, &o->n_prompt, err);
        else if (is(a, "-n", NULL)) st = take_i64(&c, 0, CLI_MAX_CTX, &o->n_gen, err);
        else if (is(a, "-r", NULL)) st = take_i64(&c, 1, CLI_MAX_BENCH_REPS, &o->reps, err);
        else if (is(a, "-d", "--depth")) st = take_i64(&c, 0, CLI_MAX_CTX, &o->depth, err);
        else if (is(a, "-t", NULL)) st = take_int(&c, 0, CLI_MAX_THREADS, &o->threads, err);
        else if (is(a, "--device", NULL)) st = take_device(&c, &o->device, &o->device_index, err);
        else if (is(a, "--gpu-layers", "-ngl")) st = take_gpu_layers(&c, &o->gpu_layers, err);
        else if (is(a, "--vram-budget", NULL)) st = take_size(&c, &o->vram_budget, err);
        else if (is(a, "--link-emulate", NULL))
            st = take_link(&c, &o->link_gbps, &o->link_latency_us, err);
        else if (is(a, "--experts", NULL)) st = take_experts(&c, &o->experts, err);
        else if (is(a, "--stream-weights", NULL)) st = take_stream(&c, &o->stream_min_tok, err);
        else st = unknown(a, err);
        if (st) return st;
    }
    return o->model ? OB_OK : required("-m MODEL.gguf", err);
}

ob_status cli_eval_args_parse(int argc, char **argv, cli_eval_args *o, ob_err *err) {
    memset(o, 0, sizeof *o);
    ob_context_params_init(&o->cp);
    argv_cursor c = {argc, argv, 1};
    for (; c.i < argc; c.i++) {
        const char *a = argv[c.i];
        ob_status st = OB_OK;
        if (is_help(a)) return help(&o->help);
        else if (is(a, "-m", NULL)) st = take_str(&c, &o->model, err);
        else if (is(a, "--tokens", NULL)) st = take_ids(&c, &o->tokens, err);
        else if (is(a, "--logits", NULL)) st = take_str(&c, &o->logits, err);
        else if (is(a, "--chunk", NULL)) st = take_i64(&c, 0, CLI_MAX_CTX, &o->chunk, err);
        else if (is(a, "--ctx", NULL)) st = take_i64(&c, 0, CLI_MAX_CTX, &o->cp.n_ctx, err);
        else if (is(a, "--batch", NULL)) st = take_i64(&c, 0, CLI_MAX_CTX, &o->cp.n_batch, err);
        else if (is(a, "--threads", NULL))
            st = take_int(&c, 0, CLI_MAX_THREADS, &o->cp.n_threads, err);
        else if (is(a, "--device", NULL))
            st = take_device(&c, &o->cp.device, &o->cp.device_index, err);
        else if (is(a, "--gpu-layers", NULL)) st = take_gpu_layers(&c, &o->cp.n_gpu_layers, err);
        else if (is(a, "--stream-weights", NULL)) st = take_stream(&c, &o->cp.stream_min_tok, err);
        else if (is(a, "--link-emulate", NULL))
            st = take_link(&c, &o->cp.link_gbps, &o->cp.link_latency_us, err);
        else st = unknown(a, err);
        if (st) return st;
    }
    if (!o->model) return required("-m MODEL.gguf", err);
    return o->tokens ? OB_OK : required("--tokens IDS", err);
}

/* ---- model file commands ----------------------------------------------------------------- */

ob_status cli_quantize_args_parse(int argc, char **argv, cli_quantize_args *o, ob_err *err) {
    memset(o, 0, sizeof *o);
    o->threads = 2;
    const char **pos[3] = {&o->in, &o->out, &o->type};
    int npos = 0;
    argv_cursor c = {argc, argv, 1};
    for (; c.i < argc; c.i++) {
        const char *a = argv[c.i];
        ob_status st = OB_OK;
        if (is_help(a)) return help(&o->help);
        else if (is(a, "-t", "--threads"))
            st = take_int(&c, 1, CLI_MAX_QUANT_THREADS, &o->threads, err);
        else if (is(a, "--pure", NULL)) o->pure = true;
        else if (is(a, "--allow-requantize", NULL)) o->allow_requant = true;
        else if (is(a, "-q", "--quiet")) o->quiet = true;
        else if ((a[0] == '-' && a[1]) || npos == 3) st = unknown(a, err);
        else *pos[npos++] = a;
        if (st) return st;
    }
    return npos == 3 ? OB_OK : required("IN.gguf OUT.gguf TYPE", err);
}

ob_status cli_synth_args_parse(int argc, char **argv, cli_synth_args *o, ob_err *err) {
    *o = (cli_synth_args){.arch = "llama", .shape = "tiny", .type = "f32", .seed = 1,
                          .rope_freqs = -1, .swa = -1};
    argv_cursor c = {argc, argv, 1};
    for (; c.i < argc; c.i++) {
        const char *a = argv[c.i];
        ob_status st = OB_OK;
        if (is_help(a)) return help(&o->help);
        else if (is(a, "--rope-freqs", NULL)) o->rope_freqs = 1;
        else if (is(a, "--no-rope-freqs", NULL)) o->rope_freqs = 0;
        else if (is(a, "--merged-experts", NULL)) o->merged_experts = true;
        else if (is(a, "--quiet", NULL)) o->quiet = true;
        else if (is(a, "--arch", NULL)) st = take_str(&c, &o->arch, err);
        else if (is(a, "--shape", NULL)) st = take_str(&c, &o->shape, err);
        else if (is(a, "--type", NULL)) st = take_str(&c, &o->type, err);
        else if (is(a, "-o", NULL)) st = take_str(&c, &o->out, err);
        else if (is(a, "--vocab", NULL)) st = take_str(&c, &o->vocab, err);
        else if (is(a, "--seed", NULL)) st = take_u64(&c, &o->seed, err);
        /* llama.cpp runs one multi-token-prediction block on these models */
        else if (is(a, "--nextn", NULL)) st = take_i64(&c, 0, 1, &o->nextn, err);
        else if (is(a, "--experts-used", NULL)) st = take_i64(&c, 1, 512, &o->experts_used, err);
        else if (is(a, "--pooling", NULL)) {
            ob_pooling p;
            char sh[CLI_SHOWN_SIZE];
            if (!(st = take_str(&c, &o->pooling, err)) && !ob_pooling_parse(o->pooling, &p))
                st = ob_fail(err, OB_ERR_ARG, "--pooling: '%s', expected none, mean, cls or "
                             "last", cli_shown(o->pooling, sh));
        }
        /* The window is written as a u32 key and must fit a context. */
        else if (is(a, "--swa", NULL)) st = take_i64(&c, 0, CLI_MAX_CTX, &o->swa, err);
        /* widths in whole k-quant blocks, so every type can hold the matrices */
        else if (is(a, "--layers", NULL)) st = take_i64(&c, 1, 256, &o->layers, err);
        else if (is(a, "--embd", NULL)) {
            if (!(st = take_i64(&c, 256, 16384, &o->embd, err)) && o->embd % 256)
                st = ob_fail(err, OB_ERR_ARG, "--embd: %lld, expected a multiple of 256",
                             (long long)o->embd);
        }
        else st = unknown(a, err);
        if (st) return st;
    }
    return o->out ? OB_OK : required("-o FILE.gguf", err);
}

ob_status cli_tokenize_args_parse(int argc, char **argv, cli_tokenize_args *o, ob_err *err) {
    memset(o, 0, sizeof *o);
    bool options = true; /* until "--": after it every argument is TEXT */
    argv_cursor c = {argc, argv, 1};
    for (; c.i < argc; c.i++) {
        const char *a = argv[c.i];
        ob_status st = OB_OK;
        if (!options || a[0] != '-' || !a[1]) {
            char sh[CLI_SHOWN_SIZE];
            if (o->text)
                return ob_fail(err, OB_ERR_ARG, "more than one TEXT ('%s')",
                               cli_shown(a, sh));
            o->text = a;
        } else if (is(a, "--", NULL)) options = false;
        else if (is_help(a)) return help(&o->help);
        else if (is(a, "-m", "--model")) st = take_str(&c, &o->model, err);
        else if (is(a, "-f", "--file")) st = take_str(&c, &o->file, err);
        else if (is(a, "--ids", NULL)) o->ids_only = true;
        else if (is(a, "--no-bos", NULL)) o->no_bos = true;
        else if (is(a, "--parse-special", NULL)) o->parse_special = true;
        else if (is(a, "--detokenize", NULL)) o->detok = true;
        else if (is(a, "--bench", NULL))
            st = take_i64(&c, 0, CLI_MAX_TOKENIZE_RUNS, &o->bench, err);
        else st = unknown(a, err);
        if (st) return st;
    }
    if (!o->model) return required("-m MODEL.gguf", err);
    if (!o->text == !o->file)
        return ob_fail(err, OB_ERR_ARG, "give exactly one of TEXT and --file PATH");
    return OB_OK;
}

ob_status cli_template_args_parse(int argc, char **argv, cli_template_args *o, ob_err *err) {
    memset(o, 0, sizeof *o);
    argv_cursor c = {argc, argv, 1};
    for (; c.i < argc; c.i++) {
        const char *a = argv[c.i];
        ob_status st = OB_OK;
        if (is_help(a)) return help(&o->help);
        else if (is(a, "-m", "--model")) st = take_str(&c, &o->model, err);
        else if (is(a, "--file", NULL)) st = take_str(&c, &o->file, err);
        else if (is(a, "-i", "--input")) st = take_str(&c, &o->input, err);
        else if (is(a, "--now", NULL)) st = take_i64(&c, 0, CLI_MAX_NOW, &o->now, err);
        else st = unknown(a, err);
        if (st) return st;
    }
    if (!o->input) return required("--input CONV.json", err);
    if (!o->model == !o->file)
        return ob_fail(err, OB_ERR_ARG, "give exactly one of -m MODEL.gguf and --file T.jinja");
    if (o->file && !strcmp(o->file, "-") && !strcmp(o->input, "-"))
        return ob_fail(err, OB_ERR_ARG, "--file and --input cannot both be standard input");
    return OB_OK;
}

ob_status cli_info_args_parse(int argc, char **argv, cli_info_args *o, ob_err *err) {
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) return help(&o->help);
        else if (is(a, "--tensors", NULL)) o->tensors = true;
        else if (is(a, "--kv", NULL)) o->kv = true;
        else if (is(a, "--json", NULL)) o->json = true;
        else if (a[0] == '-' && a[1]) return unknown(a, err);
        else if (o->path) {
            char sh1[CLI_SHOWN_SIZE], sh2[CLI_SHOWN_SIZE];
            return ob_fail(err, OB_ERR_ARG, "one model file at a time ('%s' and '%s')",
                           cli_shown(o->path, sh1),
                           cli_shown(a, sh2));
        }
        else o->path = a;
    }
    return o->path ? OB_OK : required("MODEL.gguf", err);
}

/* ---- the model store's commands ---------------------------------------------------------- */

ob_status cli_store_args_parse(int argc, char **argv, cli_store_args *o, ob_err *err) {
    memset(o, 0, sizeof *o);
    const char *cmd = argc > 0 ? argv[0] : "";
    bool pull = !strcmp(cmd, "pull"), list = !strcmp(cmd, "list");
    argv_cursor c = {argc, argv, 1};
    for (; c.i < argc; c.i++) {
        const char *a = argv[c.i];
        ob_status st = OB_OK;
        if (is_help(a)) return help(&o->help);
        else if (pull && is(a, "--name", NULL)) st = take_str(&c, &o->name, err);
        else if (pull && is(a, "--revision", NULL)) st = take_str(&c, &o->revision, err);
        else if (pull && is(a, "--offline", NULL)) o->offline = true;
        else if (list && is(a, "--json", NULL)) o->json = true;
        else if ((a[0] == '-' && a[1]) || list || o->ref) st = unknown(a, err);
        else o->ref = a;
        if (st) return st;
    }
    if (!list && !o->ref) return required(pull ? "REF (org/repo[:QUANT] or a URL)" : "NAME", err);
    return OB_OK;
}
