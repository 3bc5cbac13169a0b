/*
 * Each command's options as a struct, filled by one parser per command (cli_args.c). The
 * parsers only read argv: they open no file, load no model, print nothing and never exit, so a
 * command prints the message and its usage itself, and the option fuzzer
 * (tests/cli/opts_fuzz.c) can drive every parser directly.
 *
 * Every parser returns OB_OK with the struct filled (o->help set when -h/--help was given, in
 * which case nothing else is checked), or OB_ERR_ARG with one line in err naming the flag or
 * argument at fault: an unknown option, a missing value, a bad number (cli_parse_*), a missing
 * required argument. Strings in the structs borrow argv.
 */
#ifndef OB_CLI_ARGS_H
#define OB_CLI_ARGS_H

#include "outboard.h"
#include "spec/spec.h"

#include <stdbool.h>
#include <stdint.h>

#define CLI_MAX_BENCH_REPS    10000   /* bench -r: runs are timed one after another */
#define CLI_MAX_TOKENIZE_RUNS 1000000 /* tokenize --bench */
#define CLI_MAX_QUANT_THREADS 64      /* quantize --threads: its worker table */
/* template --now: the last second of year 9999, the furthest strftime's %Y writes as 4 digits. */
#define CLI_MAX_NOW           INT64_C(253402300799)

typedef struct cli_run_args {
    const char *model, *prompt, *file, *tokens; /* exactly one of prompt, file, tokens */
    int64_t n_predict;                          /* -n, 128 */
    bool ids, ignore_eos, verbose, help;
    ob_sampler_params sp;
    ob_context_params cp;
    spec_params spec; /* --spec MODE (auto), --spec-max N (16) */
    const char *model_draft; /* --model-draft FILE: a draft model, or NULL */
    const char *grammar_file, *schema_file; /* --grammar GBNF / --json-schema: at most one */
} cli_run_args;

typedef struct cli_chat_args {
    const char *model, *template_file, *system, *system_file; /* at most one system source */
    int64_t n_predict; /* -1: until end of generation or a full context */
    bool show_prompt, verbose, ignore_eos, help;
    ob_sampler_params sp;
    ob_context_params cp;
    spec_params spec; /* --spec MODE (auto), --spec-max N (16) */
    const char *model_draft; /* --model-draft FILE: a draft model, or NULL */
} cli_chat_args;

typedef struct cli_bench_args {
    const char *model;
    int64_t n_prompt, n_gen, reps; /* -p 512, -n 128, -r 5 */
    int64_t depth;                 /* -d N: tokens already in the cache before each test, 0 */
    int threads;                   /* 0: the physical cores */
    ob_device device;
    int device_index; /* --device kind:N, -1 without N */
    int64_t gpu_layers; /* --gpu-layers N|auto, -1: all */
    uint64_t vram_budget; /* --vram-budget SIZE, 0: the device's memory */
    double link_gbps, link_latency_us; /* --link-emulate GBPS[,LATENCY_US] */
    ob_experts experts; /* --experts host|device|auto */
    int64_t stream_min_tok; /* --stream-weights auto|off|N */
    bool no_warmup; /* --no-warmup: time the first run too (llama-bench's flag) */
    bool json, help;
} cli_bench_args;

typedef struct cli_eval_args {
    const char *model, *tokens, *logits; /* logits: NULL = not written */
    int64_t chunk;                       /* 0: all tokens in one call */
    ob_context_params cp;
    bool help;
} cli_eval_args;

typedef struct cli_quantize_args {
    const char *in, *out, *type; /* the three positional arguments */
    int threads;                 /* 1..CLI_MAX_QUANT_THREADS, 2 */
    bool pure, allow_requant, quiet, help;
} cli_quantize_args;

typedef struct cli_synth_args {
    const char *arch, *shape, *type, *out, *vocab;
    const char *pooling; /* --pooling: <arch>.pooling_type to write, NULL = none written */
    uint64_t seed;
    int rope_freqs; /* -1: as the shape says, 0/1: force */
    int64_t swa;    /* sliding window, -1: the architecture's default */
    int64_t layers, embd; /* --layers, --embd: the shape's layer count and width overridden
                             (the feed-forward width scaled with it), 0 = the shape's */
    bool help, quiet; /* --quiet: no summary line on success */
    bool merged_experts; /* --merged-experts: ffn_gate_up_exps instead of gate and up */
    int64_t nextn;  /* --nextn: multi-token-prediction blocks after the stack (qwen35 family) */
    int64_t experts_used; /* --experts-used: experts per token, 0 = the shape's */
} cli_synth_args;

typedef struct cli_tokenize_args {
    const char *model, *file, *text; /* exactly one of file, text */
    bool ids_only, no_bos, parse_special, detok, help;
    int64_t bench; /* runs to time, 0 = none */
} cli_tokenize_args;

typedef struct cli_template_args {
    const char *model, *file, *input; /* exactly one of model, file */
    int64_t now;                      /* 0: the clock */
    bool help;
} cli_template_args;

typedef struct cli_info_args {
    const char *path;
    bool tensors, kv, json, help;
} cli_info_args;

/* pull / list / rm / show: the model store's commands (cmd_pull.c, cmd_store.c). */
typedef struct cli_store_args {
    const char *ref;      /* pull: REF; rm, show: NAME; list: none */
    const char *name;     /* pull --name ORG/REPO:TAG */
    const char *revision; /* pull --revision REV */
    bool json, offline, help;
} cli_store_args;

ob_status cli_run_args_parse(int argc, char **argv, cli_run_args *o, ob_err *err);
ob_status cli_chat_args_parse(int argc, char **argv, cli_chat_args *o, ob_err *err);
ob_status cli_bench_args_parse(int argc, char **argv, cli_bench_args *o, ob_err *err);
ob_status cli_eval_args_parse(int argc, char **argv, cli_eval_args *o, ob_err *err);
ob_status cli_quantize_args_parse(int argc, char **argv, cli_quantize_args *o, ob_err *err);
ob_status cli_synth_args_parse(int argc, char **argv, cli_synth_args *o, ob_err *err);
ob_status cli_tokenize_args_parse(int argc, char **argv, cli_tokenize_args *o, ob_err *err);
ob_status cli_template_args_parse(int argc, char **argv, cli_template_args *o, ob_err *err);
ob_status cli_info_args_parse(int argc, char **argv, cli_info_args *o, ob_err *err);
/* argv[0] is the command ("pull", "list", "rm" or "show"), which decides the flags taken. */
ob_status cli_store_args_parse(int argc, char **argv, cli_store_args *o, ob_err *err);

#endif
