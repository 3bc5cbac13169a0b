/*
 * `outboard run -m MODEL.gguf -p "Once upon a time" -n 128`: prefill the prompt in one pass,
 * then sample and decode one token at a time, streaming text as it is produced; the last line
 * (stderr) gives prompt tokens, prompt tok/s, generated tokens and generation tok/s.
 * `--tokens 1,2,3` gives the prompt as token ids and `--ids` prints ids instead of text.
 * `--grammar FILE` (GBNF) or `--json-schema FILE` constrains the output (cmd_run_grammar).
 *
 * Also the helpers other engine commands share: the clock and model loading with a progress
 * bar that appears only when loading takes more than a moment.
 */
#include "cli/cli.h"
#include "cli/cli_args.h"
#include "core/alloc.h"
#include "core/err.h"
#include "outboard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct load_bar {
    double start;
    int drawn; /* percent last drawn, -1 before the first */
} load_bar;

/* Draws a bar on stderr once loading has taken half a second, and only on a terminal. */
static bool load_progress(float p, void *user) {
    load_bar *b = user;
    if (cli_now() - b->start < 0.5 || !isatty(2)) return true;
    int pct = (int)(p * 100.0f);
    if (pct == b->drawn) return true;
    b->drawn = pct;
    char bar[41];
    for (int i = 0; i < 40; i++) bar[i] = i < pct * 40 / 100 ? '#' : ' ';
    bar[40] = 0;
    fprintf(stderr, "\rloading [%s] %3d%%%s", bar, pct, pct >= 100 ? "\n" : "");
    return true;
}

int cli_load_model(const char *path, ob_model **out) {
    load_bar bar = {cli_now(), -1};
    ob_model_params mp;
    ob_model_params_init(&mp);
    mp.progress = load_progress;
    mp.progress_user = &bar;
    ob_err err = {{0}};
    if (ob_model_load(path, &mp, out, &err)) {
        if (bar.drawn >= 0 && bar.drawn < 100) fputc('\n', stderr);
        fprintf(stderr, "outboard: %s\n", err.msg);
        return -1;
    }
    for (const char *w = ob_model_warnings(*out); *w;) { /* lines ending in '\n' */
        const char *eol = strchr(w, '\n');
        int len = eol ? (int)(eol - w) : (int)strlen(w);
        fprintf(stderr, "outboard: warning: %.*s\n", len, w);
        w += len + (eol != NULL);
    }
    return 0;
}

static int usage(FILE *to) {
    fprintf(to,
            "usage: outboard run -m MODEL.gguf (-p PROMPT | -f FILE | --tokens 1,2,3) [-n N]\n"
            "  -f FILE: the prompt's text ('-' = standard input), at most 64 MiB\n"
            "  --grammar FILE (GBNF) | --json-schema FILE: constrain the output\n"
            "%s  --ids (print token ids)  --ignore-eos\n",
            CLI_ENGINE_OPTS_HELP);
    return to == stdout ? 0 : 2;
}

/* Generates up to n_predict tokens after the prompt; prints them as they come. */
static ob_status generate(ob_context *c, ob_sampler *s, cli_text *tx, const cli_run_args *o,
                          int32_t eos, int64_t *n_gen, ob_err *err) {
    *n_gen = 0;
    for (int64_t i = 0; i < o->n_predict; i++) {
        int32_t id = ob_sampler_sample(s, ob_logits(c, -1));
        if (id < 0)
            return ob_fail(err, OB_ERR_FORMAT, "token %lld: no logit is finite, nothing to "
                           "sample", (long long)i);
        ++*n_gen;
        if (!o->ignore_eos && cli_text_is_eog(tx, id, eos)) break;
        if (o->ids) printf("%s%d", i ? " " : "", id);
        else cli_text_put(tx, id);
        fflush(stdout);
        if (i + 1 == o->n_predict) break;
        ob_status st = ob_eval(c, &id, 1, false, err);
        if (st) return st;
    }
    if (!o->ids) cli_text_flush(tx);
    return OB_OK;
}

int cli_cmd_run(int argc, char **argv) {
    cli_run_args o;
    ob_err err = {{0}};
    if (cli_run_args_parse(argc, argv, &o, &err)) {
        fprintf(stderr, "outboard run: %s\n", err.msg);
        return usage(stderr);
    }
    if (o.help) return usage(stdout);
    ob_model *m = NULL;
    ob_context *c = NULL;
    ob_sampler *s = NULL;
    cli_grammar gr = {0};
    cli_text *tx = NULL;
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    int rc = 1;
    /* The prompt file before the model: a bad -f fails at once, not after a long load. */
    char *file_text = NULL;
    size_t len = o.prompt ? strlen(o.prompt) : 0;
    const cli_file_use use = {"-f", CLI_MAX_PROMPT_FILE, true};
    if (o.file && cli_read_file(o.file, &use, &file_text, &len, &err)) {
        fprintf(stderr, "outboard run: %s\n", err.msg);
        return 1;
    }
    if (cli_load_model(o.model, &m)) {
        ob_free(file_text);
        return 1;
    }
    ob_model_info info;
    ob_model_get_info(m, &info);
    if (cli_text_new(m, &tx, &err) ||
        cli_prompt_tokens(m, o.file ? file_text : o.prompt, len, o.tokens, &prompt, &n_prompt,
                          &err))
        goto done;
    cli_ctx_warn("run", m, o.cp.n_ctx);
    if (ob_context_new(m, &o.cp, &c, &err) || ob_sampler_new(&o.sp, info.n_vocab, &s, &err))
        goto done;
    cli_device_chosen(stderr, &o.cp, c);
    for (size_t i = 0; i < n_prompt; i++) ob_sampler_accept(s, prompt[i]);
    if (cli_grammar_open(&gr, m, o.grammar_file, o.schema_file, &err)) goto done;
    ob_sampler_set_matcher(s, gr.matcher);
    if (!o.ids && o.prompt) fputs(o.prompt, stdout); /* the generated text continues it */
    double t0 = cli_now();
    if (ob_eval(c, prompt, (int64_t)n_prompt, false, &err)) goto done;
    double t1 = cli_now();
    int64_t n_gen = 0;
    ob_status gen_st = generate(c, s, tx, &o, info.eos_id, &n_gen, &err);
    double t2 = cli_now();
    /* The text's last line ends, and reaches the terminal or pipe, before anything goes to
     * stderr: with both on one pipe (2>&1) a buffered stdout used to put its newline after the
     * speed line. */
    printf("\n");
    fflush(stdout);
    if (gen_st) goto done;
    /* The first sampled token came from the prompt pass, so n_gen - 1 decode passes ran. */
    fprintf(stderr, "prompt: %zu tokens, %.2f tok/s | generated: %lld tokens, %.2f tok/s\n",
            n_prompt, (double)n_prompt / (t1 - t0), (long long)n_gen,
            n_gen > 1 ? (double)(n_gen - 1) / (t2 - t1) : 0.0);
    rc = 0;
done:
    if (rc) fprintf(stderr, "outboard run: %s\n", err.msg);
    cli_text_free(tx);
    ob_free(file_text);
    ob_free(prompt);
    ob_sampler_free(s);
    cli_grammar_close(&gr);
    ob_context_free(c);
    ob_model_free(m);
    return rc;
}
