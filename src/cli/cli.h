/*
 * The outboard command line: one file per subcommand (src/cli/cmd_<name>.c), each exposing
 * `int cli_cmd_<name>(int argc, char **argv)` where argv[0] is the subcommand's name. A command
 * returns the process exit status: 0 on success, 1 on a runtime failure, 2 on bad usage.
 * This is the only code that may print to the terminal for the user or exit().
 */
#ifndef OB_CLI_H
#define OB_CLI_H

#include "outboard.h"

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int cli_cmd_info(int argc, char **argv);
int cli_cmd_devices(int argc, char **argv);
int cli_cmd_tokenize(int argc, char **argv);
int cli_cmd_template(int argc, char **argv);
int cli_cmd_quantize(int argc, char **argv);
int cli_cmd_synth(int argc, char **argv);
int cli_cmd_eval(int argc, char **argv);
int cli_cmd_run(int argc, char **argv);
int cli_cmd_bench(int argc, char **argv);
int cli_cmd_chat(int argc, char **argv);
int cli_cmd_serve(int argc, char **argv);
int cli_cmd_policy(int argc, char **argv);
int cli_cmd_plan(int argc, char **argv);
/* `outboard plan --calibrate` (cmd_calibrate.c): measures the CPU at cp's thread count, cp's
 * device and link, for the weight types in the comma-separated list (NULL: a default list),
 * into the user's calibration file. Returns the process exit code. */
int cli_plan_calibrate(const ob_context_params *cp, const char *types);
int cli_cmd_pull(int argc, char **argv);
int cli_cmd_store(int argc, char **argv); /* list, rm, show */

/* A -m argument as a GGUF path (new, ob_free): an existing file as it is, else a model name
 * in the local store (store_resolve_model). NULL after printing "outboard CMD: why" (cmd may
 * be NULL: "outboard: why"). */
char *cli_model_path(const char *cmd, const char *arg);

/* ---- helpers shared by the engine commands (cmd_run.c, cli_text.c) ---- */

/* Seconds on a monotonic clock. */
double cli_now(void);
/* ob_model_load with a progress bar on stderr when loading takes a moment; prints errors. */
int cli_load_model(const char *path, ob_model **out);

/* A progress bar on stderr, drawn once its work has taken half a second and only on a
 * terminal: "loading  [#####     ]  50%". */
typedef struct cli_bar {
    const char *label;
    double start;
    int drawn; /* percent last drawn, -1 before the first */
} cli_bar;
void cli_bar_start(cli_bar *b, const char *label);
bool cli_bar_progress(float p, void *user); /* an ob_progress_fn over a cli_bar */
void cli_bar_end(cli_bar *b);               /* ends the line of a bar cut short */

/* Hooks a bar (started here; cli_bar_end it) to p's weight preparation: "preparing" on the
 * CPU, "weights" for a device. */
void cli_bar_for_context(cli_bar *bar, ob_context_params *p);

/* ob_context_new with a bar while the backends prepare the weights (repacking on the CPU,
 * uploading to a device), then the line cli_device_chosen prints. */
ob_status cli_context_new(ob_model *m, const ob_context_params *cp, ob_context **out,
                          ob_err *err);

/* Prompt ids (new, ob_free) from the --tokens list when tokens is non-NULL, else from text
 * (len bytes: -p or the -f file's contents) through the model's tokenizer. OB_ERR_ARG names a
 * bad id or says the prompt is empty. */
ob_status cli_prompt_tokens(const ob_model *m, const char *text, size_t len, const char *tokens,
                            int32_t **ids, size_t *n, ob_err *err);
/* Streams generated ids to stdout as text (complete UTF-8 characters only). */
typedef struct cli_text cli_text;
ob_status cli_text_new(const ob_model *m, cli_text **out, ob_err *err);
void cli_text_put(cli_text *t, int32_t id);
void cli_text_flush(cli_text *t);
bool cli_text_is_eog(const cli_text *t, int32_t id, int32_t eos);
void cli_text_free(cli_text *t);

/* ---- strict values (cli_opts.c) ---- */

/* Ceilings of the numeric flags. CLI_MAX_CTX is the library's own limit on context positions
 * (src/model/context.c), so a bad --ctx fails while parsing, before a model is loaded. */
#define CLI_MAX_CTX            ((int64_t)1 << 24)
#define CLI_MAX_THREADS        1024
#define CLI_MAX_TEMP           100.0 /* above it sampling is uniform noise anyway */
#define CLI_MAX_REPEAT_PENALTY 100.0

/* A value as error messages echo it: at most CLI_SHOWN_MAX bytes of s with "..." after a cut,
 * control bytes as '?', so a message stays one line whatever argv holds. buf has room for
 * CLI_SHOWN_SIZE bytes; returns buf. */
#define CLI_SHOWN_MAX  48
#define CLI_SHOWN_SIZE (CLI_SHOWN_MAX + 4)
const char *cli_shown(const char *s, char *buf);

/* Each parser reads the whole of `text` as the value of `flag` (named in errors) and fails
 * with OB_ERR_ARG, writing `FLAG: 'TEXT' is not an integer` or `FLAG: TEXT is outside [MIN,
 * MAX]` into err, on NULL (a missing value), an empty string, leading blanks, trailing junk,
 * overflow, or a value out of range. *out is written only on success. */
ob_status cli_parse_i64(const char *flag, const char *text, int64_t min, int64_t max,
                        int64_t *out, ob_err *err);
ob_status cli_parse_u64(const char *flag, const char *text, uint64_t max, uint64_t *out,
                        ob_err *err);
/* Decimal or hex floating point; NaN and infinities are never accepted. min_open excludes min
 * itself ("(0, 1]"). */
ob_status cli_parse_f64(const char *flag, const char *text, double min, double max,
                        bool min_open, double *out, ob_err *err);
/* cli_parse_f64 stored as float: min and max must lie within float's range. */
ob_status cli_parse_f32(const char *flag, const char *text, double min, double max,
                        bool min_open, float *out, ob_err *err);
/* A size in bytes: a number with an optional K, M, G or T suffix (powers of 1024; "GiB" and
 * "GB" read as G), fractions allowed ("7.5G"), in [lo, hi]. */
ob_status cli_parse_size(const char *flag, const char *text, uint64_t lo, uint64_t hi,
                         uint64_t *out, ob_err *err);
/* --gpu-layers: a count, or "auto" (OB_GPU_LAYERS_AUTO). */
ob_status cli_parse_gpu_layers(const char *flag, const char *text, int64_t *out, ob_err *err);
/* --experts host|device|auto into *out (ob_experts). */
ob_status cli_parse_experts(const char *flag, const char *text, ob_experts *out, ob_err *err);
/* --stream-weights auto|off|N: ob_context_params.stream_min_tok (OB_STREAM_AUTO, 0, N >= 2). */
ob_status cli_parse_stream(const char *flag, const char *text, int64_t *out, ob_err *err);
/* --link-emulate GBPS[,LATENCY_US]. */
ob_status cli_parse_link(const char *flag, const char *text, double *gbps, double *latency_us,
                         ob_err *err);
/* cpu | cuda | auto. */
ob_status cli_parse_device(const char *flag, const char *text, ob_device *out, int *index,
                           ob_err *err);
/* A list of token ids in [0, max_id], separated by commas, blanks or brackets ("1,2,3",
 * "[1, 2, 3]"). *ids is new (ob_free) with *n >= 1 entries. OB_ERR_ARG names the flag and the
 * first bad id (as written); an empty list is an error too. */
ob_status cli_parse_ids(const char *flag, const char *text, int64_t max_id, int32_t **ids,
                        size_t *n, ob_err *err);

/* Engine flags shared by run and chat: --temp --top-k --top-p --min-p --repeat-penalty --seed
 * into sp, --ctx --threads --device into cp. Each takes a value. */
bool cli_engine_opt_known(const char *flag);
/* Sets engine flag `flag` from `text`; OB_ERR_ARG naming the flag for a bad value or a flag
 * that is not an engine flag. */
ob_status cli_engine_opt_set(const char *flag, const char *text, ob_sampler_params *sp,
                             ob_context_params *cp, ob_err *err);
/* Their usage lines, for a command's help text. */
extern const char CLI_ENGINE_OPTS_HELP[];
/* Before a context is made: when n_ctx is above the context the model was trained on, warns on
 * stderr ("outboard CMD: warning: --ctx N is above ...") with the trained length and the most
 * the KV cache can take, so an absurd --ctx is explained before it is allocated. */
void cli_ctx_warn(const char *cmd, const ob_model *m, int64_t n_ctx);

/* ---- files given on the command line (cli_file.c) ---- */

/* The size limits of the files the commands read, one per use. */
#define CLI_MAX_PROMPT_FILE       ((size_t)64 << 20) /* run -f, tokenize -f: a prompt's text */
#define CLI_MAX_SYSTEM_FILE       ((size_t)16 << 20) /* chat --system-file, as a chat message */
#define CLI_MAX_CONVERSATION_FILE ((size_t)64 << 20) /* template --input, chat /load (JSON) */
/* Templates: CLI_MAX_TEMPLATE_FILE in cli_file.c is src/chat's CHAT_JINJA_MAX_SOURCE. */
extern const size_t CLI_MAX_TEMPLATE_FILE;

/* How one flag reads its file: the flag named in errors, the size limit, and whether "-"
 * means standard input. */
typedef struct cli_file_use {
    const char *flag; /* "--system-file" */
    size_t limit;     /* bytes */
    bool allow_stdin;
} cli_file_use;

/* Reads a whole file (or standard input for "-" when use->allow_stdin) into *out (new,
 * NUL-terminated, ob_free) of *len bytes. Regular files, pipes and character devices are read
 * (a FIFO's open waits for its writer, as a shell's `<` would); a directory, block device or
 * socket is refused before any read. Reading stops as soon as the file passes use->limit.
 * Errors, each starting "FLAG PATH: ": OB_ERR_IO (cannot open or read), OB_ERR_ARG (not a file
 * of a readable kind, or "-" where stdin is not accepted), OB_ERR_LIMIT (over the limit, which
 * is named), OB_ERR_NOMEM. */
ob_status cli_read_file(const char *path, const cli_file_use *use, char **out, size_t *len,
                        ob_err *err);
/* cli_read_file, then the text parsed as one JSON value into *out (new, json_decref). Errors:
 * those of cli_read_file, OB_ERR_FORMAT "FLAG PATH:LINE:COLUMN: what" for bad JSON. */
ob_status cli_read_json(const char *path, const cli_file_use *use, json_t **out, ob_err *err);

/* Lines on `to` with the host<->device copies so far (the CUDA layer's, and c's hidden-state
 * copies between the CPU and the device); nothing when there were none. */
void cli_device_report(FILE *to, const ob_context *c);

/* One line on `to` naming where the layers run ("device: cpu: layers 0-8, vulkan: layers
 * 9-17", with what --device auto took); nothing when all run on the CPU as asked. */
void cli_device_chosen(FILE *to, const ob_context_params *cp, const ob_context *c);
/* cmd_run_grammar.c: the grammar of `outboard run --grammar FILE | --json-schema FILE`. */
typedef struct cli_grammar {
    ob_grammar *grammar;   /* owned, NULL without a constraint */
    ob_vocab_trie *trie;   /* owned */
    ob_matcher *matcher;   /* owned */
} cli_grammar;
/* Reads and compiles the file (neither given: nothing to do). Errors name the file. */
ob_status cli_grammar_open(cli_grammar *g, const ob_model *m, const char *gbnf_file,
                           const char *schema_file, ob_err *err);
void cli_grammar_close(cli_grammar *g);

#endif
