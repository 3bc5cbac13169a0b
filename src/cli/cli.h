/*
 * The outboard command line: one file per subcommand (src/cli/cmd_<name>.c), each exposing
 * `int cli_cmd_<name>(int argc, char **argv)` where argv[0] is the subcommand's name. A command
 * returns the process exit status: 0 on success, 1 on a runtime failure, 2 on bad usage.
 * This is the only code that may print to the terminal for the user or exit().
 */
#ifndef OB_CLI_H
#define OB_CLI_H

#include "outboard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int cli_cmd_info(int argc, char **argv);
int cli_cmd_tokenize(int argc, char **argv);
int cli_cmd_template(int argc, char **argv);
int cli_cmd_quantize(int argc, char **argv);
int cli_cmd_synth(int argc, char **argv);
int cli_cmd_eval(int argc, char **argv);
int cli_cmd_run(int argc, char **argv);
int cli_cmd_bench(int argc, char **argv);
int cli_cmd_chat(int argc, char **argv);

/* ---- helpers shared by the engine commands (cmd_run.c, cli_text.c) ---- */

/* Seconds on a monotonic clock. */
double cli_now(void);
/* "1,2,3" -> new array (*out, ob_free) of *n ids; prints the problem and returns -1 if bad. */
int cli_parse_tokens(const char *s, int32_t **out, size_t *n);
/* ob_model_load with a progress bar on stderr when loading takes a moment; prints errors. */
int cli_load_model(const char *path, ob_model **out);

/* Prompt ids from --tokens, -p text or -f file (text through the model's tokenizer). */
ob_status cli_prompt_tokens(const ob_model *m, const char *prompt, const char *file,
                            const char *tokens, int32_t **ids, size_t *n, ob_err *err);
/* Streams generated ids to stdout as text (complete UTF-8 characters only). */
typedef struct cli_text cli_text;
ob_status cli_text_new(const ob_model *m, cli_text **out, ob_err *err);
void cli_text_put(cli_text *t, int32_t id);
void cli_text_flush(cli_text *t);
bool cli_text_is_eog(const cli_text *t, int32_t id, int32_t eos);
void cli_text_free(cli_text *t);

/* Engine flags shared by run and chat (cli_opts.c): --temp --top-k --top-p --min-p
 * --repeat-penalty --seed into sp, --ctx --threads --device into cp. Returns 1 when `a` is one of
 * them (its value v consumed), 0 when it is not, -1 after printing why v is bad. */
int cli_parse_engine_opt(const char *a, const char *v, ob_sampler_params *sp,
                         ob_context_params *cp);
/* Their usage lines, for a command's help text. */
extern const char CLI_ENGINE_OPTS_HELP[];
/* Reads a whole file into *out (new, NUL-terminated, ob_free) of *len bytes (cli_text.c). */
ob_status cli_read_file(const char *path, char **out, size_t *len, ob_err *err);

/* --device cpu|cuda|auto (cli_device.c); prints the problem and returns -1 if bad. */
int cli_parse_device(const char *s, ob_device *out);
/* One line on `to` with the host<->device copies so far; nothing when there were none. */
void cli_device_report(FILE *to);

#endif
